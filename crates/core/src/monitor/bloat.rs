//! Bloat estimation from the catalog and the planner statistics. Pure.
//!
//! "Bloat" is how much smaller a relation would be if its live rows were packed into a fresh copy
//! (VACUUM FULL for a table, REINDEX for an index) with the same fillfactor. The estimators model
//! how PostgreSQL lays rows out rather than summing widths:
//!
//! * heap: the tuple header with its null bitmap, every column aligned in column order (a short
//!   varlena is not aligned, an `int8` after an `int4` is), MAXALIGN of the whole tuple, the line
//!   pointer, and whole tuples per page below the fillfactor (`RelationGetBufferForTuple`); TOAST
//!   as chunks of at most `TOAST_MAX_CHUNK_SIZE`, four to a page;
//! * btree: index tuple header and null bitmap, key and INCLUDE columns aligned in index column
//!   order (the column mapping Pigsty's estimator gets wrong), leaf pages filled to the fillfactor
//!   with a high key and the btree special space, deduplication of equal keys into posting lists
//!   (PG13+), pivot pages at 70 %, the metapage.
//!
//! Where an input is missing or stale the estimate says so in its quality instead of pretending.

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
const BTREE_SPECIAL: f64 = 16.0;
const BTREE_NONLEAF_FILLFACTOR: f64 = 70.0;
const TOAST_TUPLES_PER_PAGE: f64 = 4.0;
const HEAP_TID: f64 = 6.0;
/// Varlenas up to this many bytes (header included) are stored with a 1-byte header, unaligned.
const SHORT_VARLENA_MAX: f64 = 127.0;
/// Below this many pages rounding dominates: percentages of tiny relations mislead.
pub const TINY_PAGES: i64 = 10;
/// More than this fraction of rows changed since the statistics were gathered: stale.
pub const STALE_FRACTION: f64 = 0.10;

fn align_up(x: f64, a: f64) -> f64 {
    if a <= 1.0 { x.ceil() } else { (x / a).ceil() * a }
}

/// One column as stored: `attlen`, `attalign` in bytes, and its statistics (None when the column
/// has no row in pg_statistic).
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub len: i16,
    pub align: f64,
    pub null_frac: Option<f64>,
    pub width: Option<f64>,
    pub dropped: bool,
}

impl Column {
    pub fn fixed(len: i16, align: f64) -> Column {
        Column {
            len,
            align,
            null_frac: Some(0.0),
            width: None,
            dropped: false,
        }
    }
    pub fn varlena(width: f64) -> Column {
        Column {
            len: -1,
            align: 4.0,
            null_frac: Some(0.0),
            width: Some(width),
            dropped: false,
        }
    }
    pub fn nulls(mut self, frac: f64) -> Column {
        self.null_frac = Some(frac);
        self
    }
    /// Average bytes of a non-null value, or None when only statistics could say.
    fn value_width(&self) -> Option<f64> {
        if self.len > 0 {
            Some(self.len as f64)
        } else {
            self.width
        }
    }
    fn null_frac(&self) -> f64 {
        self.null_frac.unwrap_or(0.0).clamp(0.0, 1.0)
    }
}

/// Expected bytes of the data area of a tuple holding `cols` in order, starting at an aligned
/// offset. A column null in a fraction `f` of the rows takes its aligned width in the other rows.
/// None when a variable-width column has no statistics.
fn data_width(cols: &[&Column]) -> Option<f64> {
    let mut off = 0.0;
    for c in cols {
        if c.dropped {
            continue;
        }
        let w = c.value_width()?;
        let align = match c.len {
            n if n > 0 => c.align,
            -1 if w <= SHORT_VARLENA_MAX => 1.0,
            -1 => c.align,
            _ => 1.0, // cstring
        };
        let f = c.null_frac();
        off = f * off + (1.0 - f) * (align_up(off, align) + w);
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

/// A table (or materialized view) with its TOAST table, as the catalog describes it.
#[derive(Clone, Debug)]
pub struct TableInput {
    /// pg_class.relpages / reltuples (reltuples < 0: never vacuumed or analyzed, PG14+).
    pub pages: i64,
    pub tuples: f64,
    pub fillfactor: f64,
    pub toast_pages: i64,
    pub toast_tuples: f64,
    pub columns: Vec<Column>,
    /// Rows inserted, updated or deleted since the last ANALYZE; for TOAST, chunks inserted or
    /// dead since its last VACUUM.
    pub modified: f64,
    pub toast_modified: f64,
}

/// Rows of `len` bytes (before MAXALIGN) that fit on a heap page below `fillfactor`.
pub fn heap_tuples_per_page(len: f64, fillfactor: f64, l: Layout) -> f64 {
    let tuple = align_up(len, l.maxalign) + ITEM_ID;
    let save = (l.block_size * (100.0 - fillfactor) / 100.0).floor();
    let max = ((l.block_size - PAGE_HEADER) / (align_up(HEAP_TUPLE_HEADER, l.maxalign) + ITEM_ID)).floor();
    ((l.block_size - PAGE_HEADER - save) / tuple).floor().clamp(1.0, max)
}

/// Expected bytes of a heap tuple (header, null bitmap, aligned data), before MAXALIGN.
pub fn heap_tuple_len(cols: &[Column], l: Layout) -> Option<f64> {
    let all: Vec<&Column> = cols.iter().collect();
    let data = data_width(&all)?;
    let p = null_probability(&all);
    let bitmap = ((cols.len() + 7) / 8) as f64;
    let hoff =
        p * align_up(HEAP_TUPLE_HEADER + bitmap, l.maxalign) + (1.0 - p) * align_up(HEAP_TUPLE_HEADER, l.maxalign);
    Some(hoff + data)
}

pub fn estimate_table(t: &TableInput, l: Layout) -> Estimate {
    let mut e = Estimate::new(t.pages + t.toast_pages);
    if t.tuples < 0.0 {
        e.flag(Quality::Unreliable, "no statistics: never analyzed or vacuumed");
        return e;
    }
    let Some(len) = heap_tuple_len(&t.columns, l) else {
        e.flag(
            Quality::Unreliable,
            "variable-width columns without statistics: run ANALYZE",
        );
        return e;
    };
    let heap = (t.tuples / heap_tuples_per_page(len, t.fillfactor, l)).ceil();
    let toast = if t.toast_pages == 0 {
        0.0
    } else if t.toast_tuples < 0.0 {
        e.flag(
            Quality::Approximate,
            "TOAST table never vacuumed: its bloat is not counted",
        );
        t.toast_pages as f64
    } else {
        // Full chunks pack four to a page; shorter last chunks can only need fewer pages, so an
        // estimate above the actual size is capped at it (no bloat counted).
        (t.toast_tuples / TOAST_TUPLES_PER_PAGE)
            .ceil()
            .min(t.toast_pages as f64)
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
    if t.toast_pages > 0 && t.toast_tuples > 0.0 && t.toast_modified > STALE_FRACTION * t.toast_tuples {
        e.flag(
            Quality::Approximate,
            "stale TOAST statistics: chunks changed since its last VACUUM",
        );
    }
    if t.toast_pages > t.pages {
        e.flag(Quality::Approximate, "TOAST-heavy: TOAST assumed packed in full chunks");
    }
    if e.pages < TINY_PAGES {
        e.flag(Quality::Approximate, format!("tiny: {} pages", e.pages));
    }
    e
}

/// A btree index. `columns` are the index's columns in index order, key columns first, with the
/// statistics of the table column (or of the index expression) each one stores.
#[derive(Clone, Debug)]
pub struct IndexInput {
    pub pages: i64,
    pub tuples: f64,
    pub fillfactor: f64,
    pub key_columns: usize,
    pub columns: Vec<Column>,
    /// Estimated distinct values per key column (pg_statistic.stadistinct resolved to a count),
    /// None when unknown.
    pub distinct: Vec<Option<f64>>,
    pub unique: bool,
    /// Deduplication possible: PG13+, deduplicate_items on, no INCLUDE, key types that allow it.
    pub dedup: bool,
    pub partial: bool,
    pub expression_without_stats: bool,
    /// The table's statistics are stale.
    pub stale: bool,
}

pub fn estimate_btree(ix: &IndexInput, l: Layout) -> Estimate {
    let mut e = Estimate::new(ix.pages);
    if ix.tuples < 0.0 {
        e.flag(Quality::Unreliable, "no statistics: never analyzed or vacuumed");
        return e;
    }
    if ix.expression_without_stats {
        e.flag(Quality::Unreliable, "index expression without statistics: run ANALYZE");
        return e;
    }
    let all: Vec<&Column> = ix.columns.iter().collect();
    let keys: Vec<&Column> = ix.columns.iter().take(ix.key_columns).collect();
    let (Some(data), Some(key_data)) = (data_width(&all), data_width(&keys)) else {
        e.flag(
            Quality::Unreliable,
            "variable-width columns without statistics: run ANALYZE",
        );
        return e;
    };
    let hdr = {
        let p = null_probability(&all);
        p * align_up(INDEX_TUPLE_HEADER + INDEX_NULL_BITMAP, l.maxalign) + (1.0 - p) * INDEX_TUPLE_HEADER
    };
    let usable = l.block_size - PAGE_HEADER - BTREE_SPECIAL;
    let leaf_target = usable - (l.block_size * (100.0 - ix.fillfactor) / 100.0).floor();
    let leaf_tuple = align_up(hdr + data, l.maxalign) + ITEM_ID;
    let key_tuple = align_up(hdr + key_data, l.maxalign) + ITEM_ID;

    // Distinct keys, assuming independent columns (as the planner does).
    let distinct = if ix.unique {
        ix.tuples
    } else {
        let mut d = 1.0;
        for n in &ix.distinct {
            match n {
                Some(n) if *n > 0.0 => d *= n,
                _ => {
                    d = ix.tuples;
                    break;
                }
            }
        }
        d.min(ix.tuples).max(1.0)
    };
    let per_key = ix.tuples / distinct;
    let leaves = if ix.dedup && per_key >= 1.5 {
        // Posting lists: one key and 6 bytes per heap TID, each list at most 10 % of a page.
        let max_posting = (l.block_size * 0.10 / l.maxalign).floor() * l.maxalign - ITEM_ID;
        let base = align_up(hdr + key_data, l.maxalign);
        let tids_per_list = ((max_posting - base) / HEAP_TID).floor().max(1.0);
        let lists = (per_key / tids_per_list).ceil();
        let bytes_per_key = lists * (base + ITEM_ID) + align_up(per_key * HEAP_TID, l.maxalign);
        e.flag(
            Quality::Approximate,
            format!("duplicates (~{per_key:.1} rows per key): deduplication modelled"),
        );
        (distinct * bytes_per_key / (leaf_target - key_tuple)).ceil()
    } else {
        let per_leaf = ((leaf_target - key_tuple) / leaf_tuple).floor().max(1.0) + 1.0;
        (ix.tuples / per_leaf).ceil()
    };
    // Pivot tuples carry the (truncated) key and, for non-unique indexes, often a heap TID.
    let pivot = align_up(hdr + key_data + if ix.unique { 0.0 } else { HEAP_TID }, l.maxalign) + ITEM_ID;
    let fanout = ((usable - (l.block_size * (100.0 - BTREE_NONLEAF_FILLFACTOR) / 100.0).floor()) / pivot)
        .floor()
        .max(2.0);
    let mut level = leaves.max(1.0);
    let mut total = level;
    while level > 1.0 {
        level = (level / fanout).ceil();
        total += level;
    }
    e.expected_pages = Some(total + 1.0); // + metapage
    if ix.partial {
        e.flag(
            Quality::Approximate,
            "partial index: column statistics are the whole table's",
        );
    }
    if ix.stale {
        e.flag(
            Quality::Approximate,
            "stale statistics: many rows changed since ANALYZE",
        );
    }
    if ix.pages < TINY_PAGES {
        e.flag(Quality::Approximate, format!("tiny: {} pages", ix.pages));
    }
    e
}

/// A table considered for exact measurement: its estimated waste (table and indexes) and the
/// pages a measurement would read.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub relid: u32,
    pub estimated_bloat_bytes: f64,
    pub pages: i64,
}

/// The tables `verify_bloat` measures: worst estimated waste first, at most `max_tables`, their
/// pages within `max_pages` (a table that does not fit is passed over for smaller ones). Returns
/// the chosen ones and how many were passed over for the budget.
pub fn choose_for_verification(mut c: Vec<Candidate>, max_tables: usize, max_pages: i64) -> (Vec<Candidate>, usize) {
    c.sort_by(|a, b| {
        b.estimated_bloat_bytes
            .total_cmp(&a.estimated_bloat_bytes)
            .then(b.pages.cmp(&a.pages))
            .then(a.relid.cmp(&b.relid))
    });
    let (mut chosen, mut passed, mut budget) = (vec![], 0, max_pages);
    for x in c {
        if chosen.len() == max_tables {
            break;
        }
        if x.pages > budget {
            passed += 1;
            continue;
        }
        budget -= x.pages;
        chosen.push(x);
    }
    (chosen, passed)
}

/// Measured table bloat from pgstattuple_approx figures: the bytes the live rows occupy (the
/// relation minus its free and dead space and page headers) packed into pages filled to the
/// fillfactor, against the pages the heap has; TOAST the same way (always filled to 100 %).
#[derive(Clone, Debug)]
pub struct Measured {
    pub table_len: f64,
    pub free: f64,
    pub dead: f64,
    pub toast_len: f64,
    pub toast_free: f64,
    pub toast_dead: f64,
}

pub fn measured_table_bloat(m: &Measured, fillfactor: f64, l: Layout) -> f64 {
    let part = |len: f64, free: f64, dead: f64, ff: f64| {
        let pages = (len / l.block_size).round();
        let live = (len - free - dead - pages * PAGE_HEADER).max(0.0);
        let per_page = l.block_size - PAGE_HEADER - (l.block_size * (100.0 - ff) / 100.0).floor();
        (pages - (live / per_page).ceil()).max(0.0)
    };
    (part(m.table_len, m.free, m.dead, fillfactor) + part(m.toast_len, m.toast_free, m.toast_dead, 100.0))
        * l.block_size
}

/// Measured btree bloat from pgstatindex: leaf pages at their measured density against leaves
/// filled to the fillfactor, plus empty and deleted pages.
pub fn measured_index_bloat(
    index_size: f64,
    leaf_pages: f64,
    empty_pages: f64,
    deleted_pages: f64,
    avg_leaf_density: f64,
    fillfactor: f64,
    l: Layout,
) -> f64 {
    if !avg_leaf_density.is_finite() || leaf_pages <= 0.0 {
        return ((empty_pages + deleted_pages) * l.block_size).min(index_size);
    }
    let fresh_leaves = (leaf_pages * (avg_leaf_density / fillfactor).min(1.0)).ceil();
    (((leaf_pages - fresh_leaves) + empty_pages + deleted_pages) * l.block_size).clamp(0.0, index_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    const L: Layout = Layout::DEFAULT;

    fn int4() -> Column {
        Column::fixed(4, 4.0)
    }
    fn int8() -> Column {
        Column::fixed(8, 8.0)
    }
    fn table(cols: Vec<Column>, tuples: f64, pages: i64) -> TableInput {
        TableInput {
            pages,
            tuples,
            fillfactor: 100.0,
            toast_pages: 0,
            toast_tuples: 0.0,
            columns: cols,
            modified: 0.0,
            toast_modified: 0.0,
        }
    }

    #[test]
    fn heap_layout_matches_postgres() {
        // (int4): 24 + 4 = 28 → 32 + 4 line pointer: 226 rows per 8 kB page.
        assert_eq!(heap_tuple_len(&[int4()], L), Some(28.0));
        assert_eq!(heap_tuples_per_page(28.0, 100.0, L), 226.0);
        // (int4, int8, int4): the int8 is aligned to 8, the tuple is 24 + 4 + 4 pad + 8 + 4 = 44 → 48.
        assert_eq!(heap_tuple_len(&[int4(), int8(), int4()], L), Some(44.0));
        // Column order matters: (int8, int4, int4) has no padding: 24 + 16 = 40.
        assert_eq!(heap_tuple_len(&[int8(), int4(), int4()], L), Some(40.0));
        // A short varlena is not aligned: (bool, text of 10 bytes) = 24 + 1 + 10.
        assert_eq!(
            heap_tuple_len(&[Column::fixed(1, 1.0), Column::varlena(10.0)], L),
            Some(35.0)
        );
        // A long one is aligned to 4: 24 + 1 + 3 pad + 200.
        assert_eq!(
            heap_tuple_len(&[Column::fixed(1, 1.0), Column::varlena(200.0)], L),
            Some(228.0)
        );
        // Every row has a NULL: the bitmap (9 columns → 2 bytes) pushes the header to 32.
        let nine: Vec<Column> = (0..9).map(|_| int4().nulls(1.0)).collect();
        assert_eq!(heap_tuple_len(&nine, L), Some(32.0));
        // No row fits more than MaxHeapTuplesPerPage (291).
        assert_eq!(heap_tuples_per_page(24.0, 100.0, L), 291.0);
    }

    #[test]
    fn fillfactor_leaves_room() {
        // 100-byte rows (104 + 4): 75 per page at 100, 52 at fillfactor 70 (2457 bytes kept free).
        assert_eq!(heap_tuples_per_page(100.0, 100.0, L), 75.0);
        assert_eq!(heap_tuples_per_page(100.0, 70.0, L), 52.0);
    }

    #[test]
    fn table_estimates() {
        // 226 000 int4 rows need 1 000 pages: a 2 000-page table is half bloat.
        let e = estimate_table(&table(vec![int4()], 226_000.0, 2000), L);
        assert_eq!(e.expected_pages, Some(1000.0));
        assert_eq!(e.ratio(), Some(0.5));
        assert_eq!(e.quality, Quality::Good);
        // Never analyzed: no figure, and it says why.
        let e = estimate_table(&table(vec![int4()], -1.0, 20), L);
        assert_eq!((e.ratio(), e.quality), (None, Quality::Unreliable));
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

    #[test]
    fn toast_counted_and_capped() {
        // 1 000 heap pages fully used; 8 000 live chunks need 2 000 TOAST pages of the 4 000.
        let mut t = table(vec![int4()], 226_000.0, 1000);
        t.toast_pages = 4000;
        t.toast_tuples = 8000.0;
        let e = estimate_table(&t, L);
        assert_eq!(e.expected_pages, Some(3000.0));
        assert!((e.ratio().unwrap() - 0.4).abs() < 1e-9);
        assert!(e.reason().unwrap().contains("TOAST-heavy"));
        // Short chunks pack more than four to a page: never counted as negative bloat.
        t.toast_tuples = 40_000.0;
        assert_eq!(estimate_table(&t, L).expected_pages, Some(5000.0));
        // A TOAST table never vacuumed is taken as it is, and flagged.
        t.toast_tuples = -1.0;
        let e = estimate_table(&t, L);
        assert_eq!(e.expected_pages, Some(5000.0));
        assert!(e.reason().unwrap().contains("never vacuumed"));
    }

    fn index(cols: Vec<Column>, tuples: f64, pages: i64, unique: bool) -> IndexInput {
        let n = cols.len();
        IndexInput {
            pages,
            tuples,
            fillfactor: 90.0,
            key_columns: n,
            columns: cols,
            distinct: vec![Some(tuples); n],
            unique,
            dedup: !unique,
            partial: false,
            expression_without_stats: false,
            stale: false,
        }
    }

    #[test]
    fn btree_layout_matches_a_fresh_build() {
        // A unique int4 index on 100 000 rows is 276 pages when freshly built (PG 13–18):
        // 367 tuples per leaf at fillfactor 90 → 273 leaves, a root, the metapage.
        let e = estimate_btree(&index(vec![int4()], 100_000.0, 276, true), L);
        let exp = e.expected_pages.unwrap();
        assert!((exp - 276.0).abs() <= 2.0, "{exp}");
        assert!(e.ratio().unwrap() < 0.01);
        // The same index at twice its size is about half bloat.
        let e = estimate_btree(&index(vec![int4()], 100_000.0, 552, true), L);
        assert!((e.ratio().unwrap() - 0.5).abs() < 0.01);
    }

    #[test]
    fn btree_dedup_shrinks_duplicates() {
        // 100 000 rows over 100 values: posting lists make the index far smaller than one tuple
        // per row would.
        let mut ix = index(vec![int4()], 100_000.0, 100, false);
        ix.distinct = vec![Some(100.0)];
        let dedup = estimate_btree(&ix, L).expected_pages.unwrap();
        ix.dedup = false;
        let plain = estimate_btree(&ix, L).expected_pages.unwrap();
        assert!(dedup * 3.0 < plain, "{dedup} vs {plain}");
        assert!(
            estimate_btree(&index(vec![int4()], 100_000.0, 100, false), L)
                .reasons
                .is_empty()
        );
    }

    #[test]
    fn btree_column_order_is_the_index_order() {
        // (int4, int8) pads 4 bytes; (int8, int4) does not: the estimate follows the index's order.
        let a = heap_tuple_len(&[int4(), int8()], L).unwrap();
        let b = heap_tuple_len(&[int8(), int4()], L).unwrap();
        assert_eq!((a, b), (40.0, 36.0));
        let ab = estimate_btree(&index(vec![int4(), int8()], 100_000.0, 1, true), L).expected_pages;
        let ba = estimate_btree(&index(vec![int8(), int4()], 100_000.0, 1, true), L).expected_pages;
        assert_eq!(ab, ba, "both MAXALIGN to 24 bytes of tuple here");
    }

    #[test]
    fn verification_choice_respects_budgets() {
        let c = |relid, bloat, pages| Candidate {
            relid,
            estimated_bloat_bytes: bloat,
            pages,
        };
        let all = vec![c(1, 10.0, 100), c(2, 500.0, 900), c(3, 300.0, 50), c(4, 0.0, 10)];
        let (chosen, passed) = choose_for_verification(all.clone(), 10, 1000);
        assert_eq!(chosen.iter().map(|x| x.relid).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(passed, 1, "table 1 no longer fits in the page budget");
        let (chosen, _) = choose_for_verification(all, 2, 10_000);
        assert_eq!(chosen.iter().map(|x| x.relid).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn measured_bloat_from_pgstattuple_figures() {
        // 2 000 pages, 1 000 of them free: 1 000 pages of waste at fillfactor 100.
        let m = Measured {
            table_len: 2000.0 * 8192.0,
            free: 1000.0 * 8168.0,
            dead: 0.0,
            toast_len: 400.0 * 8192.0,
            toast_free: 0.0,
            toast_dead: 100.0 * 8168.0,
        };
        assert_eq!(measured_table_bloat(&m, 100.0, L), 1100.0 * 8192.0);
        // At fillfactor 50 the same rows need all 2 000 pages: no waste in the heap.
        assert_eq!(measured_table_bloat(&m, 50.0, L), 100.0 * 8192.0);
        // Index: 100 leaves at 45 % density against a fillfactor of 90: 50 leaves of waste.
        assert_eq!(
            measured_index_bloat(102.0 * 8192.0, 100.0, 0.0, 0.0, 45.0, 90.0, L),
            50.0 * 8192.0
        );
        assert_eq!(
            measured_index_bloat(10.0 * 8192.0, 0.0, 2.0, 1.0, f64::NAN, 90.0, L),
            3.0 * 8192.0
        );
    }
}
