//! Indexes: btree (the layout REINDEX writes), hash (the buckets `hashbuild` allocates) and BRIN
//! (revmap and one summary tuple per range); no figure, with the reason, for GiST, GIN, SP-GiST and
//! access methods pgops does not know.

use super::{
    Column, Estimate, HEAP_TID, INDEX_NULL_BITMAP, INDEX_TUPLE_HEADER, ITEM_ID, Layout, PAGE_HEADER, Quality,
    TINY_PAGES, align_up, data_width, null_probability,
};

const BTREE_SPECIAL: f64 = 16.0;
const BTREE_NONLEAF_FILLFACTOR: f64 = 70.0;
const HASH_SPECIAL: f64 = 16.0;
const BRIN_SPECIAL: f64 = 8.0;

/// An index. `columns` are the index's columns in index order, key columns first, with the
/// statistics of the table column (or of the index expression) each one stores.
#[derive(Clone, Debug)]
pub struct IndexInput {
    /// Its access method (`pg_am.amname`).
    pub am: String,
    /// The operator class of each column (`pg_opclass.opcname`).
    pub opclasses: Vec<String>,
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
    /// The table's rows and pages (pg_class), for the kinds sized by the table (hash, BRIN).
    pub table_tuples: f64,
    pub table_pages: i64,
    /// BRIN's `pages_per_range`.
    pub pages_per_range: f64,
}

/// The fillfactor an index of access method `am` has when its reloptions do not set one.
pub fn default_fillfactor(am: &str) -> f64 {
    match am {
        "hash" => 75.0,
        "spgist" => 80.0,
        _ => 90.0,
    }
}

/// The estimate for an index of any access method: btree, hash and BRIN minmax are modelled; for
/// the others there is no honest figure from statistics, and the row says why.
pub fn estimate_index(ix: &IndexInput, l: Layout) -> Estimate {
    match ix.am.as_str() {
        "btree" => estimate_btree(ix, l),
        "hash" => estimate_hash(ix, l),
        "brin" => estimate_brin(ix, l),
        am => {
            let mut e = Estimate::new(ix.pages);
            e.flag(
                Quality::Unreliable,
                match am {
                    "gist" => "gist: how full its pages are depends on how it was built (sorted or by insertion) and on \
                               the keys' geometry, which statistics do not describe; verify_bloat measures it"
                        .to_string(),
                    "gin" => "gin: posting lists and trees depend on how many rows share each key element, which \
                              statistics do not describe; pgstattuple cannot measure GIN either"
                        .to_string(),
                    "spgist" => "spgist: its inner tuples follow the data's structure, which statistics do not \
                                 describe; pgstattuple cannot measure SP-GiST either"
                        .to_string(),
                    other => format!("{other}: access method not modelled"),
                },
            );
            e
        }
    }
}

/// What every index estimate says about its inputs: partial, stale, tiny.
fn flag_inputs(ix: &IndexInput, e: &mut Estimate) {
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
}

/// Statistics a table owner could have written (PG 18 imports them) that no estimate can use.
fn unusable(x: f64) -> bool {
    !(x >= 0.0 && x.is_finite())
}

pub fn estimate_btree(ix: &IndexInput, l: Layout) -> Estimate {
    let mut e = Estimate::new(ix.pages.max(0));
    if unusable(ix.tuples) {
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
    if !total.is_finite() {
        e.flag(Quality::Unreliable, "statistics out of range: run ANALYZE");
        return e;
    }
    while level > 1.0 {
        level = (level / fanout).ceil();
        total += level;
    }
    e.expected_pages = Some(total + 1.0); // + metapage
    flag_inputs(ix, &mut e);
    e
}


/// `_hash_spareindex`: the split point phase that holds bucket `n`.
fn hash_spare_index(n: u32) -> u32 {
    let group = 32 - (n.max(1) - 1).leading_zeros(); // ceil(log2(n))
    if group < 10 {
        return group;
    }
    10 + ((group - 10) << 2) + (((n - 1) >> (group - 3)) & 3)
}

/// `_hash_get_totalbuckets`: the buckets allocated up to split point phase `phase`.
fn hash_total_buckets(phase: u32) -> u64 {
    if phase < 10 {
        return 1 << phase;
    }
    let group = 10 + ((phase - 10) >> 2);
    let before = 1u64 << (group - 1);
    before + (before >> 2) * (((phase - 10) & 3) + 1) as u64
}

/// Buckets `hashbuild` allocates for `tuples` rows at `fillfactor`.
pub fn hash_buckets(tuples: f64, fillfactor: f64, l: Layout) -> f64 {
    let item = INDEX_TUPLE_HEADER + align_up(4.0, l.maxalign) + ITEM_ID;
    let ffactor = ((l.block_size * fillfactor / 100.0).floor() / item).floor().max(10.0);
    let wanted = tuples / ffactor;
    if wanted <= 2.0 {
        2.0
    } else {
        hash_total_buckets(hash_spare_index(wanted.min(1_073_741_824.0) as u32)) as f64
    }
}

/// A hash index after REINDEX: the metapage, the buckets sized from the table's rows, a bitmap
/// page, and overflow pages for keys with more rows than a bucket page holds.
pub fn estimate_hash(ix: &IndexInput, l: Layout) -> Estimate {
    let mut e = Estimate::new(ix.pages.max(0));
    if unusable(ix.tuples) || unusable(ix.table_tuples) {
        e.flag(Quality::Unreliable, "no statistics: never analyzed or vacuumed");
        return e;
    }
    let buckets = hash_buckets(ix.table_tuples, ix.fillfactor, l);
    let item = INDEX_TUPLE_HEADER + align_up(4.0, l.maxalign) + ITEM_ID;
    let per_page = ((l.block_size - PAGE_HEADER - HASH_SPECIAL) / item).floor();
    let overflow = match ix.distinct.first().copied().flatten() {
        Some(d) if d >= 1.0 => {
            let per_key = ix.tuples / d;
            if per_key > per_page {
                e.flag(
                    Quality::Approximate,
                    format!("duplicates (~{per_key:.1} rows per key): overflow pages modelled"),
                );
                d.min(buckets) * ((per_key / per_page).ceil() - 1.0)
            } else {
                0.0
            }
        }
        _ => 0.0,
    };
    let bitmap_bits = (l.block_size - PAGE_HEADER - HASH_SPECIAL) * 8.0;
    let bitmaps = 1.0 + (overflow / bitmap_bits).floor();
    e.expected_pages = Some(1.0 + buckets + bitmaps + overflow);
    flag_inputs(ix, &mut e);
    e
}

/// A BRIN index with minmax operator classes on fixed-width columns: the metapage, the range map
/// (one 6-byte pointer per range) and one summary tuple (the minimum and maximum of every column)
/// per range. Other operator classes (bloom, inclusion, multi-minmax) and variable-width columns
/// are not modelled.
pub fn estimate_brin(ix: &IndexInput, l: Layout) -> Estimate {
    let mut e = Estimate::new(ix.pages.max(0));
    let minmax = ix.opclasses.iter().all(|o| o.ends_with("_minmax_ops"))
        && ix.columns.iter().all(|c| c.len > 0)
        && !ix.columns.is_empty();
    if !minmax {
        e.flag(
            Quality::Unreliable,
            "brin: only minmax operator classes on fixed-width columns are modelled",
        );
        return e;
    }
    let ranges = (ix.table_pages.max(0) as f64 / ix.pages_per_range.max(1.0)).ceil();
    let revmap_per_page = ((l.block_size - PAGE_HEADER - BRIN_SPECIAL) / HEAP_TID).floor();
    let revmap = (ranges / revmap_per_page).ceil().max(1.0);
    let mut data = 0.0;
    for c in &ix.columns {
        data = align_up(data, c.align) + c.len as f64;
        data = align_up(data, c.align) + c.len as f64;
    }
    let any_null = ix.columns.iter().any(|c| c.null_frac() > 0.0);
    let header = align_up(5.0 + if any_null { (2 * ix.columns.len()).div_ceil(8) as f64 } else { 0.0 }, l.maxalign);
    let tuple = align_up(header + data, l.maxalign) + ITEM_ID;
    let per_page = ((l.block_size - PAGE_HEADER - BRIN_SPECIAL) / tuple).floor().max(1.0);
    let regular = (ranges / per_page).ceil().max(1.0);
    e.expected_pages = Some(1.0 + revmap + regular);
    if ix.pages < TINY_PAGES {
        e.flag(Quality::Approximate, format!("tiny: {} pages", ix.pages));
    }
    e
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
    fn heap_tuple_len(cols: &[Column], l: Layout) -> Option<f64> {
        super::super::heap_tuple_len(cols, l)
    }

    fn index(cols: Vec<Column>, tuples: f64, pages: i64, unique: bool) -> IndexInput {
        let n = cols.len();
        IndexInput {
            am: "btree".into(),
            opclasses: vec![],
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
            table_tuples: tuples,
            table_pages: 0,
            pages_per_range: 128.0,
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
    fn hash_buckets_follow_hashbuild() {
        // ffactor 307 at fillfactor 75: up to 614 rows two buckets; 60 000 rows want 195, the
        // split point phases allocate 256; 100 000 want 325: 512 (below 1 024 buckets the phases
        // double); 2 000 000 want 6 514: 7 168 (quarter steps from 4 096).
        assert_eq!(hash_buckets(600.0, 75.0, L), 2.0);
        assert_eq!(hash_buckets(60_000.0, 75.0, L), 256.0);
        assert_eq!(hash_buckets(100_000.0, 75.0, L), 512.0);
        assert_eq!(hash_buckets(2_000_000.0, 75.0, L), 7168.0);
        assert_eq!(hash_total_buckets(hash_spare_index(1100)), 1280);
        let mut ix = index(vec![int4()], 60_000.0, 258, true);
        ix.am = "hash".into();
        ix.fillfactor = 75.0;
        // Metapage, 256 buckets, a bitmap page: 258 pages, no bloat.
        let e = estimate_index(&ix, L);
        assert_eq!(e.expected_pages, Some(258.0));
        // 100 keys of 600 rows: each key's bucket needs a second page.
        ix.unique = false;
        ix.distinct = vec![Some(100.0)];
        let e = estimate_index(&ix, L);
        assert_eq!(e.expected_pages, Some(358.0));
        assert!(e.reason().unwrap().contains("overflow pages modelled"));
    }

    #[test]
    fn brin_minmax_and_the_rest() {
        // A timestamptz minmax BRIN over 100 000 table pages, 128 per range: 782 ranges, one revmap
        // page, summary tuples of 8 + 16 bytes (+ 4): 291 per page, 3 pages; and the metapage.
        let mut ix = index(vec![Column::fixed(8, 8.0)], 782.0, 5, false);
        ix.am = "brin".into();
        ix.opclasses = vec!["timestamptz_minmax_ops".into()];
        ix.table_pages = 100_000;
        assert_eq!(estimate_index(&ix, L).expected_pages, Some(5.0));
        ix.opclasses = vec!["int8_bloom_ops".into()];
        let e = estimate_index(&ix, L);
        assert_eq!((e.expected_pages, e.quality), (None, Quality::Unreliable));
        for am in ["gist", "gin", "spgist", "bloom"] {
            ix.am = am.into();
            let e = estimate_index(&ix, L);
            assert_eq!(e.expected_pages, None);
            assert!(e.reason().unwrap().starts_with(am), "{:?}", e.reason());
        }
        assert_eq!(default_fillfactor("hash"), 75.0);
        assert_eq!(default_fillfactor("btree"), 90.0);
    }

    #[test]
    fn imported_nonsense_statistics_give_no_figure() {
        // PG 18 lets a table owner import reltuples = Infinity or NaN: no endless loop, no figure.
        for t in [f64::INFINITY, f64::NAN, -5.0] {
            let mut ix = index(vec![int4()], t, 10, true);
            ix.table_tuples = t;
            for am in ["btree", "hash"] {
                ix.am = am.into();
                let e = estimate_index(&ix, L);
                assert_eq!((e.expected_pages, e.quality), (None, Quality::Unreliable), "{am} {t}");
            }
        }
        // Huge but finite: a figure (or none), never a hang.
        let mut ix = index(vec![int4()], 1e300, 10, false);
        ix.distinct = vec![Some(1e-300)];
        assert!(estimate_index(&ix, L).expected_pages.is_none_or(f64::is_finite));
    }
}
