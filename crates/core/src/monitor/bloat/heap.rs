//! Heap tables: the tuple layout over the distribution of row lengths, rows per page, and the
//! table estimate (heap + TOAST).

use std::collections::BTreeMap;

use super::toast::{ToastInput, estimate_toast};
use super::{
    Column, Estimate, HEAP_TUPLE_HEADER, ITEM_ID, Layout, PAGE_HEADER, Quality, STALE_FRACTION, TINY_PAGES, align_up,
    data_width, null_probability,
};

/// A table (or materialized view) with its TOAST table, as the catalog describes it.
#[derive(Clone, Debug)]
pub struct TableInput {
    /// pg_class.relpages / reltuples (reltuples < 0: never vacuumed or analyzed, PG14+).
    pub pages: i64,
    pub tuples: f64,
    pub fillfactor: f64,
    pub columns: Vec<Column>,
    /// Rows inserted, updated or deleted since the last ANALYZE.
    pub modified: f64,
    /// None when the table has no TOAST table.
    pub toast: Option<ToastInput>,
}

/// More distinct row lengths than this and the layout is followed as a mean (rows this varied are
/// long, and MAXALIGN then adds half an alignment on average).
const MAX_LENGTHS: usize = 2048;

/// The lengths (header, null bitmap and aligned data, before MAXALIGN) the rows of `cols` take, with
/// the share of rows of each, following every column's width distribution and NULL probability.
/// The second value is true when the distribution was folded into its mean. None when a
/// variable-width column has no statistics.
pub fn heap_tuple_lengths(cols: &[Column], l: Layout) -> Option<(Vec<(f64, f64)>, bool)> {
    // (data offset in half bytes, a NULL seen) → share of rows.
    let mut states: BTreeMap<(i64, bool), f64> = BTreeMap::from([((0, false), 1.0)]);
    let mut folded = false;
    let key = |off: f64| (off * 2.0).round() as i64;
    for c in cols.iter().filter(|c| !c.dropped) {
        let f = c.null_frac();
        let mut dist = c.distribution()?;
        if folded {
            // The mean width with the mean padding its alignment adds.
            let mean: f64 = dist.iter().map(|(w, a, q)| q * (w + (a - 1.0).max(0.0) / 2.0)).sum();
            dist = vec![(mean, 1.0, 1.0)];
        }
        let mut next: BTreeMap<(i64, bool), f64> = BTreeMap::new();
        for (&(k, has_null), &p) in &states {
            let off = k as f64 / 2.0;
            if f > 0.0 {
                *next.entry((k, true)).or_default() += p * f;
            }
            for &(w, align, q) in &dist {
                let at = if folded { off } else { align_up(off, align) };
                *next.entry((key(at + w), has_null)).or_default() += p * (1.0 - f) * q;
            }
        }
        if next.len() > MAX_LENGTHS {
            // Fold into the mean per NULL flag; later columns add their mean widths.
            let mut m: BTreeMap<bool, (f64, f64)> = BTreeMap::new();
            for (&(k, n), &p) in &next {
                let e = m.entry(n).or_default();
                e.0 += p * k as f64;
                e.1 += p;
            }
            next = m
                .into_iter()
                .filter(|(_, (_, p))| *p > 0.0)
                .map(|(n, (s, p))| ((((s / p).round()) as i64, n), p))
                .collect();
            folded = true;
        }
        states = next;
    }
    let dropped = cols.iter().any(|c| c.dropped);
    let bitmap = cols.len().div_ceil(8) as f64;
    let out = states
        .into_iter()
        .map(|((k, has_null), p)| {
            let hoff = if has_null || dropped {
                align_up(HEAP_TUPLE_HEADER + bitmap, l.maxalign)
            } else {
                align_up(HEAP_TUPLE_HEADER, l.maxalign)
            };
            (hoff + k as f64 / 2.0, p)
        })
        .collect();
    Some((out, folded))
}

/// Expected bytes of a heap tuple (header, null bitmap, aligned data), before MAXALIGN.
pub fn heap_tuple_len(cols: &[Column], l: Layout) -> Option<f64> {
    let all: Vec<&Column> = cols.iter().collect();
    let data = data_width(&all)?;
    let p = null_probability(&all);
    let bitmap = cols.len().div_ceil(8) as f64;
    let hoff =
        p * align_up(HEAP_TUPLE_HEADER + bitmap, l.maxalign) + (1.0 - p) * align_up(HEAP_TUPLE_HEADER, l.maxalign);
    Some(hoff + data)
}

/// Expected bytes a row takes on a page: its MAXALIGNed length and its line pointer.
pub fn heap_slot(cols: &[Column], l: Layout) -> Option<f64> {
    let (lengths, folded) = heap_tuple_lengths(cols, l)?;
    Some(
        lengths
            .iter()
            .map(|&(len, p)| {
                let aligned = if folded { len + (l.maxalign - 1.0) / 2.0 } else { align_up(len, l.maxalign) };
                p * (aligned + ITEM_ID)
            })
            .sum(),
    )
}

/// Rows taking `slot` bytes each (MAXALIGNed tuple and line pointer) that fit on a heap page
/// below `fillfactor`.
pub fn heap_rows_per_page(slot: f64, fillfactor: f64, l: Layout) -> f64 {
    let save = (l.block_size * (100.0 - fillfactor) / 100.0).floor();
    let max = ((l.block_size - PAGE_HEADER) / (align_up(HEAP_TUPLE_HEADER, l.maxalign) + ITEM_ID)).floor();
    ((l.block_size - PAGE_HEADER - save) / slot).floor().clamp(1.0, max)
}

/// Rows of `len` bytes (before MAXALIGN) that fit on a heap page below `fillfactor`.
pub fn heap_tuples_per_page(len: f64, fillfactor: f64, l: Layout) -> f64 {
    heap_rows_per_page(align_up(len, l.maxalign) + ITEM_ID, fillfactor, l)
}

pub fn estimate_table(t: &TableInput, l: Layout) -> Estimate {
    let toast_pages = t.toast.as_ref().map_or(0, |x| x.pages);
    let mut e = Estimate::new(t.pages.max(0) + toast_pages.max(0));
    if !(t.tuples >= 0.0 && t.tuples.is_finite()) {
        e.flag(Quality::Unreliable, "no statistics: never analyzed or vacuumed");
        return e;
    }
    let Some(slot) = heap_slot(&t.columns, l) else {
        e.flag(
            Quality::Unreliable,
            "variable-width columns without statistics: run ANALYZE",
        );
        return e;
    };
    if !slot.is_finite() {
        e.flag(Quality::Unreliable, "statistics out of range: run ANALYZE");
        return e;
    }
    let heap = (t.tuples / heap_rows_per_page(slot, t.fillfactor, l)).ceil();
    let toast = match &t.toast {
        Some(x) if x.pages > 0 => estimate_toast(x, t, &mut e, l),
        _ => 0.0,
    };
    e.expected_pages = Some(heap + toast);
    if t.columns.iter().any(|c| c.dropped) {
        e.flag(Quality::Approximate, "dropped columns still stored in old rows");
    }
    if t.tuples > 0.0 && t.modified > STALE_FRACTION * t.tuples {
        e.flag(
            Quality::Approximate,
            format!(
                "stale statistics: {:.0}% of rows changed since ANALYZE",
                100.0 * t.modified / t.tuples
            ),
        );
    }
    if e.pages < TINY_PAGES {
        e.flag(Quality::Approximate, format!("tiny: {} pages", e.pages));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::bloat::Widths;
    const L: Layout = Layout::DEFAULT;

    pub(crate) fn int4() -> Column {
        Column::fixed(4, 4.0)
    }
    pub(crate) fn int8() -> Column {
        Column::fixed(8, 8.0)
    }
    pub(crate) fn table(cols: Vec<Column>, tuples: f64, pages: i64) -> TableInput {
        TableInput {
            pages,
            tuples,
            fillfactor: 100.0,
            columns: cols,
            modified: 0.0,
            toast: None,
        }
    }

    #[test]
    fn heap_layout_matches_postgres() {
        // (int4): 24 + 4 = 28 → 32 + 4 line pointer: 226 rows per 8 kB page.
        assert_eq!(heap_tuple_len(&[int4()], L), Some(28.0));
        assert_eq!(heap_tuples_per_page(28.0, 100.0, L), 226.0);
        assert_eq!(heap_slot(&[int4()], L), Some(36.0));
        // (int4, int8, int4): the int8 is aligned to 8, the tuple is 24 + 4 + 4 pad + 8 + 4 = 44 → 48.
        assert_eq!(heap_tuple_len(&[int4(), int8(), int4()], L), Some(44.0));
        // Column order matters: (int8, int4, int4) has no padding: 24 + 16 = 40.
        assert_eq!(heap_tuple_len(&[int8(), int4(), int4()], L), Some(40.0));
        // A short varlena is not aligned: (bool, text of 10 bytes) = 24 + 1 + 10.
        let ten = Column::varlena(10.0).with_samples(vec![(10.0, 1.0)]);
        assert_eq!(heap_tuple_len(&[Column::fixed(1, 1.0), ten], L), Some(35.0));
        // A long one is aligned to 4: 24 + 1 + 3 pad + 200.
        let long = Column::varlena(200.0).with_samples(vec![(200.0, 1.0)]);
        assert_eq!(heap_tuple_len(&[Column::fixed(1, 1.0), long], L), Some(228.0));
        // Every row has a NULL: the bitmap (9 columns → 2 bytes) pushes the header to 32.
        let nine: Vec<Column> = (0..9).map(|_| int4().nulls(1.0)).collect();
        assert_eq!(heap_tuple_len(&nine, L), Some(32.0));
        // No row fits more than MaxHeapTuplesPerPage (291).
        assert_eq!(heap_tuples_per_page(24.0, 100.0, L), 291.0);
    }

    #[test]
    fn widths_straddling_an_alignment_boundary() {
        // (int8, text) with the text stored in 8 bytes in 10 % of the rows and 9 in 90 %: ANALYZE
        // says 8 (8.9 truncated). Rows are 40 → 40 or 41 → 48 bytes; with line pointers 44 and 52,
        // 51.2 on average: 159 rows per page, not the 185 a width of 8 gives.
        let code = Column::varlena(8.0).with_samples(vec![(8.0, 0.1), (9.0, 0.9)]);
        let slot = heap_slot(&[int8(), code], L).unwrap();
        assert!((slot - 51.2).abs() < 1e-9, "{slot}");
        assert_eq!(heap_rows_per_page(slot, 100.0, L), 159.0);
        // 159 000 such rows in 1 000 pages are not bloated.
        let code = Column::varlena(8.0).with_samples(vec![(8.0, 0.1), (9.0, 0.9)]);
        let e = estimate_table(&table(vec![int8(), code], 159_000.0, 1000), L);
        assert_eq!(e.ratio(), Some(0.0));
        // A NULL in some rows gives those a bitmap: (int4 NULL in half the rows, int4).
        let (lens, _) = heap_tuple_lengths(&[int4().nulls(0.5), int4()], L).unwrap();
        assert_eq!(lens, vec![(28.0, 0.5), (32.0, 0.5)]);
    }

    #[test]
    fn fillfactor_leaves_room() {
        // 100-byte rows (104 + 4): 75 per page at 100, 52 at fillfactor 70 (2457 bytes kept free).
        assert_eq!(heap_tuples_per_page(100.0, 100.0, L), 75.0);
        assert_eq!(heap_tuples_per_page(100.0, 70.0, L), 52.0);
    }

    #[test]
    fn many_varied_columns_fold_into_the_mean() {
        // 12 nullable columns of thirty widths each: followed length by length.
        let varied = |n: usize, step: usize| -> Vec<Column> {
            (0..n)
                .map(|i| {
                    let w: Widths = (1..=30).map(|w| ((w * step + i % 3) as f64 + 10.0, 1.0 / 30.0)).collect();
                    let avg = super::super::mean_width(&w).floor();
                    Column::varlena(avg).with_samples(w).nulls(0.5)
                })
                .collect()
        };
        let (lens, folded) = heap_tuple_lengths(&varied(12, 2), L).unwrap();
        assert!(!folded && lens.len() > 100 && lens.len() <= MAX_LENGTHS, "{}", lens.len());
        // 100 columns up to 250 bytes: more lengths than are worth following; the mean is taken,
        // MAXALIGN adding half an alignment.
        let cols = varied(100, 8);
        let (lens, folded) = heap_tuple_lengths(&cols, L).unwrap();
        assert!(folded && lens.len() <= MAX_LENGTHS, "{}", lens.len());
        let slot = heap_slot(&cols, L).unwrap();
        let mean = heap_tuple_len(&cols, L).unwrap();
        assert!(slot > mean + 4.0 && slot < mean + 12.0, "{slot} vs {mean}");
    }

    #[test]
    fn table_estimates() {
        // 226 000 int4 rows need 1 000 pages: a 2 000-page table is half bloat.
        let e = estimate_table(&table(vec![int4()], 226_000.0, 2000), L);
        assert_eq!(e.expected_pages, Some(1000.0));
        assert_eq!(e.ratio(), Some(0.5));
        assert_eq!(e.quality, Quality::Good);
        // Never analyzed: no figure, and it says why; imported nonsense likewise.
        for t in [-1.0, f64::NAN, f64::INFINITY] {
            let e = estimate_table(&table(vec![int4()], t, 20), L);
            assert_eq!((e.ratio(), e.quality), (None, Quality::Unreliable));
        }
        let mut w = Column::varlena(10.0);
        w.width = Some(f64::NAN);
        assert_eq!(estimate_table(&table(vec![w], 100.0, 20), L).ratio(), None);
        // A text column without statistics: no figure either.
        let mut c = Column::varlena(0.0);
        c.width = None;
        let e = estimate_table(&table(vec![int4(), c], 1000.0, 20), L);
        assert_eq!(e.ratio(), None);
        assert!(e.reason().unwrap().contains("ANALYZE"));
        // Smaller than actual is never negative bloat.
        let e = estimate_table(&table(vec![int4()], 226_000.0, 900), L);
        assert_eq!(e.ratio(), Some(0.0));
        // Stale statistics and tiny tables are flagged, not hidden.
        let mut t = table(vec![int4()], 1000.0, 5);
        t.modified = 500.0;
        let e = estimate_table(&t, L);
        assert_eq!(e.quality, Quality::Approximate);
        assert!(e.reason().unwrap().contains("stale statistics: 50%") && e.reason().unwrap().contains("tiny"));
    }
}
