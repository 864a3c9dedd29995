//! Verification: which tables `verify_bloat` measures, and the bloat pgstattuple's figures show.

use super::{Layout, PAGE_HEADER};

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

/// What `verify_bloat` measured of a table: the heap with pgstattuple_approx (length, free and
/// dead bytes, live rows), the TOAST table by reading its chunks' sizes.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub table_len: f64,
    pub free: f64,
    pub dead: f64,
    pub tuples: f64,
    pub toast: Option<MeasuredToast>,
}

/// A TOAST table as read: its pages, live chunks, values (chunks with `chunk_seq` 0), and the
/// chunks shorter than a full one as (data bytes, how many).
#[derive(Clone, Debug, Default)]
pub struct MeasuredToast {
    pub pages: f64,
    pub chunks: f64,
    pub values: f64,
    pub short_chunks: Vec<(f64, f64)>,
}

/// Pages a fresh copy of the measured TOAST table needs: its values written in order, each with
/// its full chunks and a last chunk whose size is drawn, spread evenly, from the measured ones.
pub fn measured_toast_pages(t: &MeasuredToast, l: Layout) -> f64 {
    if t.values < 1.0 || t.chunks < 1.0 {
        return 0.0;
    }
    let full = super::toast_chunk_size(l);
    // Last chunks: the short ones, and a full one for values whose size is a multiple of a chunk.
    let mut lasts: Vec<(f64, f64)> = t.short_chunks.clone();
    let short: f64 = lasts.iter().map(|(_, n)| n).sum();
    if t.values > short {
        lasts.push((full, t.values - short));
    }
    lasts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = lasts.iter().map(|(_, n)| n).sum();
    let quantile = |q: f64| {
        let mut acc = 0.0;
        for (r, n) in &lasts {
            acc += n;
            if acc >= q * total {
                return *r;
            }
        }
        full
    };
    let density = super::toast_density(
        t.chunks / t.values,
        |i| quantile(super::unit(i)),
        false,
        l,
    );
    (t.chunks / density).ceil()
}

/// Measured table bloat: the live rows (their measured bytes per row, line pointers and padding
/// included) repacked whole into pages filled to the fillfactor, and the TOAST chunks repacked in
/// order, against the pages there are.
pub fn measured_table_bloat(m: &Measured, fillfactor: f64, l: Layout) -> f64 {
    let pages = (m.table_len / l.block_size).round();
    let live = (m.table_len - m.free - m.dead - pages * PAGE_HEADER).max(0.0);
    let fresh = if m.tuples >= 1.0 {
        (m.tuples / super::heap_rows_per_page(live / m.tuples, fillfactor, l)).ceil()
    } else {
        let per_page = l.block_size - PAGE_HEADER - (l.block_size * (100.0 - fillfactor) / 100.0).floor();
        (live / per_page).ceil()
    };
    let toast = m.toast.as_ref().map_or(0.0, |t| (t.pages - measured_toast_pages(t, l)).max(0.0));
    ((pages - fresh).max(0.0) + toast) * l.block_size
}

/// Measured hash index bloat from pgstathashindex: pages beyond the metapage, the bitmap pages,
/// the buckets a REINDEX would allocate for the live items and the overflow pages VACUUM kept
/// (it squeezes buckets, so those hold rows).
pub fn measured_hash_bloat(
    size: f64,
    bitmap_pages: f64,
    overflow_pages: f64,
    live_items: f64,
    fillfactor: f64,
    l: Layout,
) -> f64 {
    let fresh = 1.0 + bitmap_pages + super::hash_buckets(live_items, fillfactor, l) + overflow_pages;
    ((size / l.block_size - fresh).max(0.0) * l.block_size).min(size)
}

/// Measured GiST bloat from pgstattuple: free and dead bytes beyond what pages filled to the
/// fillfactor leave free.
pub fn measured_gist_bloat(size: f64, free: f64, dead: f64, fillfactor: f64, l: Layout) -> f64 {
    let pages = (size / l.block_size).round();
    let allowance = pages * (l.block_size - PAGE_HEADER - 16.0) * (100.0 - fillfactor) / 100.0;
    let waste = (free + dead - allowance).max(0.0);
    ((waste / l.block_size).floor() * l.block_size).min(size)
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
        // 2 000 pages holding 226 000 rows of 36 bytes (line pointer included) and 1 000 pages of
        // free space: a fresh copy needs 1 000 pages.
        let m = Measured {
            table_len: 2000.0 * 8192.0,
            free: 1000.0 * 8168.0,
            dead: 0.0,
            tuples: 226_000.0,
            toast: None,
        };
        assert_eq!(measured_table_bloat(&m, 100.0, L), 1000.0 * 8192.0);
        // 1 500-byte rows, five to a page: the tail of each page is not bloat (repacking bytes
        // alone said 8 % was).
        let m = Measured {
            table_len: 1200.0 * 8192.0,
            free: 1200.0 * (8168.0 - 5.0 * 1508.0),
            dead: 0.0,
            tuples: 6000.0,
            toast: None,
        };
        assert_eq!(measured_table_bloat(&m, 100.0, L), 0.0);
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

    #[test]
    fn measured_toast_repacks_chunks_in_order() {
        // 7 000 values of a full chunk and a last one of 5 to 1 004 bytes in random order: a page
        // takes three full and three last chunks only when those three are short, 5.85 per page
        // on average: 2 390 pages for 14 000 chunks.
        let t = MeasuredToast {
            pages: 3431.0,
            chunks: 14_000.0,
            values: 7000.0,
            short_chunks: (0..1000).map(|i| (5.0 + i as f64, 7.0)).collect(),
        };
        let fresh = measured_toast_pages(&t, L);
        assert!((fresh - 2390.0).abs() <= 20.0, "{fresh}");
        // Full chunks only: four per page.
        let t = MeasuredToast {
            pages: 1000.0,
            chunks: 4000.0,
            values: 2000.0,
            short_chunks: vec![],
        };
        assert_eq!(measured_toast_pages(&t, L), 1000.0);
    }

    #[test]
    fn measured_hash_and_gist() {
        // 258 pages for 60 000 rows is fresh; 30 000 live rows need 1 + 1 + 128 pages.
        assert_eq!(measured_hash_bloat(258.0 * 8192.0, 1.0, 0.0, 60_000.0, 75.0, L), 0.0);
        assert_eq!(measured_hash_bloat(258.0 * 8192.0, 1.0, 0.0, 30_000.0, 75.0, L), 128.0 * 8192.0);
        // 100 GiST pages with 10 % free: fresh at fillfactor 90; half free: 40 pages of waste.
        let usable = 8192.0 - 24.0 - 16.0;
        assert_eq!(measured_gist_bloat(100.0 * 8192.0, 100.0 * usable * 0.1, 0.0, 90.0, L), 0.0);
        let b = measured_gist_bloat(100.0 * 8192.0, 100.0 * usable * 0.5, 0.0, 90.0, L);
        assert!((b / 8192.0 - 39.0).abs() <= 1.0, "{}", b / 8192.0);
    }
}
