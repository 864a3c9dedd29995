//! Bloat estimation from the catalog and the planner statistics. Pure.
//!
//! "Bloat" is how much smaller a relation would be if its live rows were packed into a fresh copy
//! (VACUUM FULL for a table, REINDEX for an index) with the same fillfactor. The estimators model
//! how PostgreSQL lays rows out rather than summing widths:
//!
//! * [`heap`]: the tuple header with its null bitmap, every column aligned in column order (a short
//!   varlena is not aligned, an `int8` after an `int4` is), MAXALIGN of the whole tuple — over the
//!   distribution of widths the statistics' sample values give, not a truncated average width — the
//!   line pointer, and whole tuples per page below the fillfactor (`RelationGetBufferForTuple`);
//! * [`toast`]: chunks of at most `TOAST_MAX_CHUNK_SIZE` packed in order, at the density the TOAST
//!   table had when its chunks were written (its own insert counter and size), or a modelled one
//!   when that history cannot be used;
//! * [`index`]: btree (index column order, high key, special space, pivots, deduplication), hash
//!   (buckets as `hashbuild` sizes them, overflow pages for heavy keys), BRIN minmax (revmap and one
//!   tuple per range); no figure, with the reason, for the kinds no honest model exists for;
//! * [`verify`]: which tables `verify_bloat` measures, and bloat from pgstattuple's figures.
//!
//! Where an input is missing or stale the estimate says so in its quality instead of pretending.

pub mod heap;
pub mod index;
pub mod toast;
pub mod verify;

pub use heap::*;
pub use index::*;
pub use toast::*;
pub use verify::*;

/// Page geometry of the server the estimate is for.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub block_size: f64,
    pub maxalign: f64,
}

impl Layout {
    pub const DEFAULT: Layout = Layout {
        block_size: 8192.0,
        maxalign: 8.0,
    };
}

const PAGE_HEADER: f64 = 24.0;
const ITEM_ID: f64 = 4.0;
const HEAP_TUPLE_HEADER: f64 = 23.0;
const INDEX_TUPLE_HEADER: f64 = 8.0;
/// `INDEX_MAX_KEYS / 8`: the index null bitmap is always this wide when present.
const INDEX_NULL_BITMAP: f64 = 4.0;
const HEAP_TID: f64 = 6.0;
/// Varlenas up to this many bytes (header included) are stored with a 1-byte header, unaligned.
const SHORT_VARLENA_MAX: f64 = 127.0;
/// An out-of-line (TOAST) pointer as the heap stores it: 2-byte header and `varatt_external`.
const TOAST_POINTER: f64 = 18.0;
/// Below this many pages rounding dominates: percentages of tiny relations mislead.
pub const TINY_PAGES: i64 = 10;
/// More than this fraction of rows changed since the statistics were gathered: stale.
pub const STALE_FRACTION: f64 = 0.10;

fn align_up(x: f64, a: f64) -> f64 {
    if a <= 1.0 { x.ceil() } else { (x / a).ceil() * a }
}

/// Stored widths of a column's non-null values (bytes on disk, varlena header included) with the
/// share of rows each has; the shares add up to 1.
pub type Widths = Vec<(f64, f64)>;

/// One column as stored: `attlen`, `attalign` in bytes, its `attstorage`, and its statistics (None
/// when the column has no row in pg_statistic).
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub len: i16,
    pub align: f64,
    /// `attstorage`: `p` (plain: never a short header, never out of line), `m`, `x` or `e`.
    pub storage: char,
    pub null_frac: Option<f64>,
    /// `pg_statistic.stawidth`: the average stored width, truncated to an integer by ANALYZE.
    pub width: Option<f64>,
    /// Stored widths of the sample values the statistics keep (most common values and histogram
    /// bounds, see [`sample_widths`]); None when they keep none.
    pub samples: Option<Widths>,
    pub dropped: bool,
}

impl Column {
    pub fn fixed(len: i16, align: f64) -> Column {
        Column {
            len,
            align,
            storage: 'p',
            null_frac: Some(0.0),
            width: None,
            samples: None,
            dropped: false,
        }
    }
    pub fn varlena(width: f64) -> Column {
        Column {
            len: -1,
            align: 4.0,
            storage: 'x',
            null_frac: Some(0.0),
            width: Some(width),
            samples: None,
            dropped: false,
        }
    }
    pub fn nulls(mut self, frac: f64) -> Column {
        self.null_frac = Some(frac);
        self
    }
    pub fn with_samples(mut self, w: Widths) -> Column {
        self.samples = Some(w);
        self
    }
    fn null_frac(&self) -> f64 {
        self.null_frac.filter(|f| f.is_finite()).unwrap_or(0.0).clamp(0.0, 1.0)
    }
    /// The sample widths when they explain `stawidth` (their mean lies where the truncated
    /// average says the true mean is); samples that leave out wide, compressed or out-of-line
    /// values do not, and are not used for the layout.
    fn calibrated(&self) -> Option<&Widths> {
        let (w, a) = (self.samples.as_ref()?, self.width?);
        let mean = mean_width(w);
        (mean >= a - 0.5 && mean < a + 1.5 && w.iter().all(|(x, _)| *x <= 1024.0)).then_some(w)
    }
    /// Average bytes of a non-null value, or None when only statistics could say. `stawidth` is
    /// truncated: without samples the middle of the possible range is taken, except for exactly
    /// 18 bytes, the width of a column whose every value is out of line.
    fn value_width(&self) -> Option<f64> {
        if self.len > 0 {
            return Some(self.len as f64);
        }
        if let Some(w) = self.calibrated() {
            return Some(mean_width(w));
        }
        let a = self.width.filter(|w| w.is_finite() && *w >= 0.0)?;
        Some(if self.len == -1 && a == TOAST_POINTER { a } else { a + 0.5 })
    }
    /// (stored width, alignment, share) of the non-null values.
    fn distribution(&self) -> Option<Vec<(f64, f64, f64)>> {
        let align_of = |w: f64| match self.len {
            n if n > 0 => self.align,
            -1 if w <= SHORT_VARLENA_MAX && self.storage != 'p' => 1.0,
            -1 => self.align,
            _ => 1.0, // cstring
        };
        if self.len == -1
            && let Some(w) = self.calibrated()
        {
            return Some(w.iter().map(|&(x, p)| (x, align_of(x), p)).collect());
        }
        let w = self.value_width()?;
        Some(vec![(w, align_of(w), 1.0)])
    }
}

fn mean_width(w: &Widths) -> f64 {
    w.iter().map(|(x, p)| x * p).sum()
}

/// Stored widths from what pg_statistic keeps of a variable-width column: `mcv` are the most
/// common values as (payload bytes, frequency among all rows), `hist` the payload bytes of the
/// histogram bounds, which share evenly the non-null rows the common values leave. A payload of
/// `n` bytes is stored with a 1-byte header when `n + 1` fits in 127 bytes (not for `plain`
/// storage), otherwise with a 4-byte one. None when there is nothing to go on. At most
/// [`MAX_WIDTHS`] widths are kept (neighbours merged, their shares added).
pub fn sample_widths(null_frac: f64, mcv: &[(f64, f64)], hist: &[f64], plain: bool) -> Option<Widths> {
    let stored = |n: f64| if !plain && n + 1.0 <= SHORT_VARLENA_MAX { n + 1.0 } else { n + 4.0 };
    let null_frac = if null_frac.is_finite() { null_frac.clamp(0.0, 1.0) } else { 0.0 };
    let mcv: Vec<(f64, f64)> = mcv
        .iter()
        .filter(|(n, f)| n.is_finite() && f.is_finite())
        .map(|&(n, f)| (n.max(0.0), f.clamp(0.0, 1.0)))
        .collect();
    let non_null = (1.0 - null_frac).max(1e-9);
    let mcv_share: f64 = mcv.iter().map(|(_, f)| f).sum();
    let rest = (non_null - mcv_share).max(0.0);
    let mut w: Vec<(f64, f64)> = mcv.iter().map(|&(n, f)| (stored(n), f / non_null)).collect();
    if !hist.is_empty() {
        let each = rest / non_null / hist.len() as f64;
        w.extend(hist.iter().map(|&n| (stored(n), each)));
    } else if rest / non_null > 0.01 {
        return None; // part of the values is not represented
    }
    let total: f64 = w.iter().map(|(_, p)| p).sum();
    if w.is_empty() || total <= 0.0 {
        return None;
    }
    w.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Widths = vec![];
    for (x, p) in w {
        match out.last_mut() {
            Some(last) if last.0 == x => last.1 += p / total,
            _ => out.push((x, p / total)),
        }
    }
    // Too many distinct widths: merge neighbours into buckets of equal share, each at its
    // share-weighted mean width (the layout work grows with the number of widths).
    if out.len() > MAX_WIDTHS {
        let mut merged: Widths = vec![];
        let (mut acc_w, mut acc_p) = (0.0, 0.0);
        let step = 1.0 / MAX_WIDTHS as f64;
        for (x, p) in out {
            acc_w += x * p;
            acc_p += p;
            if acc_p >= step * (1.0 - 1e-9) {
                merged.push(((acc_w / acc_p).round(), acc_p));
                (acc_w, acc_p) = (0.0, 0.0);
            }
        }
        if acc_p > 0.0 {
            merged.push(((acc_w / acc_p).round(), acc_p));
        }
        out = merged;
    }
    Some(out)
}

/// The most distinct widths a column's distribution keeps.
pub const MAX_WIDTHS: usize = 64;

/// Expected bytes of the data area of a tuple holding `cols` in order, starting at an aligned
/// offset. A column null in a fraction `f` of the rows takes its aligned width in the other rows.
/// None when a variable-width column has no statistics.
fn data_width(cols: &[&Column]) -> Option<f64> {
    let mut off = 0.0;
    for c in cols {
        if c.dropped {
            continue;
        }
        let f = c.null_frac();
        let mut next = 0.0;
        for (w, align, p) in c.distribution()? {
            next += p * (align_up(off, align) + w);
        }
        off = f * off + (1.0 - f) * next;
    }
    Some(off)
}

/// Probability that a row has at least one NULL (and so a null bitmap).
fn null_probability(cols: &[&Column]) -> f64 {
    if cols.iter().any(|c| c.dropped) {
        return 1.0; // rows written after a DROP COLUMN store it as NULL
    }
    1.0 - cols.iter().map(|c| 1.0 - c.null_frac()).product::<f64>()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quality {
    Good,
    Approximate,
    Unreliable,
}

impl Quality {
    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Approximate => "approximate",
            Quality::Unreliable => "unreliable",
        }
    }
}

/// An estimate: the pages the relation has (as of its statistics) and would need fresh.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub pages: i64,
    /// None when the inputs cannot support a figure (the reason says which).
    pub expected_pages: Option<f64>,
    pub quality: Quality,
    pub reasons: Vec<String>,
}

impl Estimate {
    fn new(pages: i64) -> Estimate {
        Estimate {
            pages,
            expected_pages: None,
            quality: Quality::Good,
            reasons: vec![],
        }
    }
    fn flag(&mut self, q: Quality, reason: impl Into<String>) {
        self.quality = self.quality.max(q);
        self.reasons.push(reason.into());
    }
    pub fn bloat_pages(&self) -> Option<f64> {
        self.expected_pages.map(|e| (self.pages as f64 - e).max(0.0))
    }
    pub fn ratio(&self) -> Option<f64> {
        match self.pages {
            0 => self.expected_pages.map(|_| 0.0),
            p => self.bloat_pages().map(|b| b / p as f64),
        }
    }
    pub fn reason(&self) -> Option<String> {
        (!self.reasons.is_empty()).then(|| self.reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_widths_weigh_common_values_and_histogram() {
        // 20 % NULL; one common value of 5 bytes in 40 % of all rows; the other 40 % share two
        // histogram bounds of 3 and 200 bytes. Stored: 6 (short header), 4, 204 (4-byte header).
        let w = sample_widths(0.2, &[(5.0, 0.4)], &[3.0, 200.0], false).unwrap();
        assert_eq!(w, vec![(4.0, 0.25), (6.0, 0.5), (204.0, 0.25)]);
        // Plain storage never gets the short header.
        let w = sample_widths(0.0, &[], &[5.0], true).unwrap();
        assert_eq!(w, vec![(9.0, 1.0)]);
        // Hundreds of widths are merged into at most MAX_WIDTHS, keeping the mean.
        let hist: Vec<f64> = (0..500).map(|i| i as f64).collect();
        let w = sample_widths(0.0, &[], &hist, false).unwrap();
        assert!(w.len() <= MAX_WIDTHS);
        assert!((mean_width(&w) - (0..500).map(|i| if i < 127 { i + 1 } else { i + 4 }).sum::<i32>() as f64 / 500.0).abs() < 1.0);
        // Nonsense statistics (NaN, out of range) do not poison the result.
        let w = sample_widths(f64::NAN, &[(5.0, f64::NAN), (5.0, 2.0)], &[], false).unwrap();
        assert_eq!(w, vec![(6.0, 1.0)]);
        // Common values that do not cover the rows, and no histogram: nothing to go on.
        assert_eq!(sample_widths(0.0, &[(5.0, 0.5)], &[], false), None);
        assert_eq!(sample_widths(0.0, &[], &[], false), None);
    }

    #[test]
    fn samples_are_used_only_when_they_explain_the_average() {
        // stawidth 8 (truncated 8.9) and samples averaging 8.9: used.
        let c = Column::varlena(8.0).with_samples(vec![(8.0, 0.1), (9.0, 0.9)]);
        assert!((c.value_width().unwrap() - 8.9).abs() < 1e-9);
        // Samples averaging 30 for a stawidth of 18 (the wide values were out of line and left out
        // of the samples): not used; without samples the middle of [A, A + 1) is taken.
        let c = Column::varlena(40.0).with_samples(vec![(30.0, 1.0)]);
        assert_eq!(c.value_width(), Some(40.5));
        // Exactly 18: every value out of line, the pointer's width.
        assert_eq!(Column::varlena(18.0).value_width(), Some(18.0));
    }
}
