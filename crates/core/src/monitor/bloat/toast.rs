//! TOAST tables: how many pages their live chunks need in a fresh copy.
//!
//! A value moved out of line is cut into chunks of `TOAST_MAX_CHUNK_SIZE` bytes (1 996 with 8 kB
//! pages) and a last, shorter one; each chunk is a heap tuple of its own (`chunk_id`, `chunk_seq`,
//! `chunk_data` with a 4-byte header), so a chunk of `r` bytes takes `MAXALIGN(36 + r)` bytes and
//! a line pointer. A fresh copy writes them page after page, so how many fit on a page depends on
//! the sizes of the last chunks, which no statistic records: four full chunks fill a page, but a
//! full chunk and a short one, three times over, fit too. Assuming four per page (what every
//! SQL estimator does) makes a fresh copy look larger than it is and hides the bloat.
//!
//! The TOAST table's own counters say what density its pages were written at: chunks inserted
//! (pg_stat) per page. When nothing has reused freed space, truncated the file or rewritten it
//! since, that density is exact, and the live chunks at that density are the fresh size. The
//! density is checked against what the chunk counts allow (at most the density of values whose
//! last chunks are a byte long); when the history cannot be used, a density modelled from the
//! chunks per value with last chunks of every size is taken instead, and the estimate says so.

use super::heap::TableInput;
use super::{Column, Estimate, ITEM_ID, Layout, PAGE_HEADER, Quality, STALE_FRACTION, TOAST_POINTER, align_up};

/// What the catalog and the statistics collector say about a TOAST table.
#[derive(Clone, Debug, Default)]
pub struct ToastInput {
    /// pg_class.relpages / reltuples: pages, and live chunks as of its last VACUUM (< 0: never).
    pub pages: i64,
    pub chunks: f64,
    /// Chunks inserted since the statistics were last reset (`pg_stat_get_tuples_inserted`).
    pub inserted: f64,
    /// Dead chunks now, and chunks inserted since its last VACUUM.
    pub dead: f64,
    pub inserted_since_vacuum: f64,
    /// Its file was replaced since it was created (VACUUM FULL, CLUSTER, TRUNCATE): the counters
    /// describe files that are gone.
    pub rewritten: bool,
}

/// Bytes of chunk data in a full chunk: `TOAST_MAX_CHUNK_SIZE`.
pub fn toast_chunk_size(l: Layout) -> f64 {
    let tuple_max = ((l.block_size - align_up(PAGE_HEADER + 4.0 * ITEM_ID, l.maxalign)) / 4.0 / l.maxalign).floor()
        * l.maxalign;
    tuple_max - align_up(super::HEAP_TUPLE_HEADER, l.maxalign) - 4.0 - 4.0 - 4.0
}

/// Bytes a chunk of `r` data bytes takes on a page, line pointer included.
fn chunk_slot(r: f64, l: Layout) -> f64 {
    align_up(align_up(super::HEAP_TUPLE_HEADER, l.maxalign) + 12.0 + r, l.maxalign) + ITEM_ID
}

/// Values a density is simulated with, and the most chunks simulated in all: values of many chunks
/// are simulated with fewer values (their density is that of full chunks, nearly).
const SIMULATED_VALUES: usize = 400;
const SIMULATED_CHUNKS: f64 = 2400.0;
/// Chunks per value beyond which the last chunk no longer changes the density measurably.
const MAX_CHUNKS_PER_VALUE: f64 = 32.0;

/// Chunks per page when values of `k` chunks on average, the last one of value `i` holding
/// `last(i)` bytes, are written page after page (`fsm` false: a fresh copy, VACUUM FULL and CLUSTER
/// never look back) or as inserts do (`fsm` true: a chunk that does not fit on the page written last
/// goes to the first earlier page with room, as the free space map finds one).
pub fn toast_density(k: f64, last: impl Fn(usize) -> f64, fsm: bool, l: Layout) -> f64 {
    let (full, cap) = (toast_chunk_size(l), l.block_size - PAGE_HEADER);
    let smallest = chunk_slot(1.0, l);
    let k = if k.is_finite() { k.clamp(1.0, MAX_CHUNKS_PER_VALUE) } else { 1.0 };
    let extra = k - 1.0;
    let values = ((SIMULATED_CHUNKS / k) as usize).clamp(60, SIMULATED_VALUES);
    // Pages that can still take a chunk: (page, free bytes); the last one is the one written last.
    let (mut open, mut pages, mut chunks, mut current): (Vec<(usize, f64)>, usize, f64, Option<usize>) =
        (vec![], 0, 0.0, None);
    let mut put = |s: f64| {
        chunks += 1.0;
        let pos = current
            .and_then(|c| open.iter().position(|&(p, free)| p == c && free >= s))
            .or_else(|| if fsm { open.iter().position(|&(_, free)| free >= s) } else { None });
        let at = match pos {
            Some(i) => i,
            None => {
                if !fsm {
                    open.clear();
                }
                open.push((pages, cap));
                pages += 1;
                open.len() - 1
            }
        };
        open[at].1 -= s;
        current = Some(open[at].0);
        if open[at].1 < smallest {
            open.remove(at);
        }
    };
    for i in 0..values {
        let fulls = ((i + 1) as f64 * extra).floor() - (i as f64 * extra).floor();
        for _ in 0..fulls as usize {
            put(chunk_slot(full, l));
        }
        put(chunk_slot(last(i).clamp(1.0, full), l));
    }
    // The last page counts for the part of it that is used.
    let last_free = open.iter().find(|&&(p, _)| p + 1 == pages).map_or(0.0, |&(_, free)| free);
    chunks / (pages as f64 - last_free / cap).max(1e-9)
}

/// A deterministic, evenly spread pseudo-random number in [0, 1) for value `i` (SplitMix64), so
/// simulated sizes come in no particular order, as a table's values do.
pub fn unit(i: usize) -> f64 {
    let mut z = (i as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Last chunks spread as widely as a mean of `m` bytes allows.
fn spread(m: f64, full: f64) -> impl Fn(usize) -> f64 {
    let (lo, hi) = if m <= (full + 1.0) / 2.0 { (1.0, 2.0 * m - 1.0) } else { (2.0 * m - full, full) };
    move |i| lo + (hi - lo) * unit(i)
}

/// The density of a fresh copy, from the density the chunks were inserted at. Inserts fill gaps
/// on earlier pages with short last chunks, a fresh copy does not: when last chunks vary in size
/// the copy is less dense than the inserts were, when they are all alike it is as dense. Which of
/// the two a table holds is not recorded anywhere, so the figure is the middle of the two: the
/// inserted density, and the copy's density for widely spread last chunks that insert at it.
pub fn fresh_density(k: f64, inserted: f64, l: Layout) -> f64 {
    // Many tables share figures (and a dashboard asks every minute): remembered, rounded.
    thread_local! {
        static SEEN: std::cell::RefCell<std::collections::HashMap<(i64, i64, i64), f64>> = Default::default();
    }
    let key = ((k * 100.0).round() as i64, (inserted * 1000.0).round() as i64, l.block_size as i64);
    if let Some(d) = SEEN.with(|m| m.borrow().get(&key).copied()) {
        return d;
    }
    let d = fresh_density_uncached(k, inserted, l);
    SEEN.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() > 4096 {
            m.clear();
        }
        m.insert(key, d);
    });
    d
}

fn fresh_density_uncached(k: f64, inserted: f64, l: Layout) -> f64 {
    let full = toast_chunk_size(l);
    let (mut lo, mut hi) = (1.0, full); // mean last chunk: larger means fewer chunks per page
    for _ in 0..14 {
        let m = (lo + hi) / 2.0;
        if toast_density(k, spread(m, full), true, l) > inserted {
            lo = m;
        } else {
            hi = m;
        }
    }
    let m = (lo + hi) / 2.0;
    let copied = toast_density(k, spread(m, full), false, l).min(inserted);
    (inserted + copied) / 2.0
}

/// The share of a column's non-null values stored out of line, from its average stored width
/// (an out-of-line value counts the 18 bytes of its pointer) and the widths of the sample values
/// (which are all in line). None when the statistics cannot say.
fn out_of_line_share(c: &Column) -> Option<f64> {
    if c.len != -1 || c.storage == 'p' || c.dropped {
        return Some(0.0);
    }
    let a = c.width?;
    if a == TOAST_POINTER {
        return Some(1.0);
    }
    let inline = super::mean_width(c.samples.as_ref()?);
    let a = a + 0.5;
    if inline <= TOAST_POINTER + 1.0 || a >= inline {
        return Some(0.0);
    }
    Some(((inline - a) / (inline - TOAST_POINTER)).clamp(0.0, 1.0))
}

/// Expected pages of the TOAST table of `t` fresh; flags on `e` what the figure rests on.
pub fn estimate_toast(x: &ToastInput, t: &TableInput, e: &mut Estimate, l: Layout) -> f64 {
    if x.pages <= 0 {
        return 0.0;
    }
    if !(x.chunks >= 0.0 && x.chunks.is_finite()) {
        e.flag(
            Quality::Approximate,
            "TOAST table never vacuumed: its bloat is not counted",
        );
        return x.pages as f64;
    }
    if x.chunks == 0.0 {
        return 0.0;
    }
    let values: Option<f64> = t
        .columns
        .iter()
        .map(|c| out_of_line_share(c).map(|s| s * t.tuples.max(0.0) * (1.0 - c.null_frac())))
        .sum();
    let k = values.filter(|v| *v >= 1.0).map(|v| (x.chunks / v).max(1.0));
    let densest = k.map(|k| toast_density(k, |_| 1.0, true, l));
    let written = x.inserted / x.pages as f64;
    let unusable = if x.rewritten {
        Some("rewritten since its chunks were written")
    } else if x.inserted < x.chunks + x.dead {
        Some("its statistics were reset, or this is a standby")
    } else if written < 3.9 {
        Some("fewer than four chunks per page written")
    } else if densest.is_some_and(|d| written > d * 1.02) {
        Some("new chunks reused freed space")
    } else {
        None
    };
    let density = match unusable {
        None => k.map_or(written, |k| fresh_density(k, written, l)),
        Some(why) => {
            // Last chunks of every size; four full chunks per page when the values per chunk
            // cannot be told either (a lower bound on the bloat).
            let d = k.map_or(4.0, |k| toast_density(k, spread((toast_chunk_size(l) + 1.0) / 2.0, toast_chunk_size(l)), false, l));
            e.flag(
                Quality::Approximate,
                format!("TOAST packing modelled ({why}): its bloat may be under-counted"),
            );
            d
        }
    };
    if x.chunks > 0.0 && (x.dead + x.inserted_since_vacuum) > STALE_FRACTION * x.chunks {
        e.flag(
            Quality::Approximate,
            "stale TOAST statistics: chunks changed since its last VACUUM",
        );
    }
    (x.chunks / density).ceil().min(x.pages as f64)
}

#[cfg(test)]
mod tests {
    use super::super::heap::estimate_table;
    use super::*;
    const L: Layout = Layout::DEFAULT;

    fn doc_table(pages: i64, rows: f64, toast: ToastInput) -> TableInput {
        TableInput {
            pages,
            tuples: rows,
            fillfactor: 100.0,
            columns: vec![Column::fixed(4, 4.0), Column::varlena(18.0)],
            modified: 0.0,
            toast: Some(toast),
        }
    }

    #[test]
    fn chunk_geometry_matches_postgres() {
        // TOAST_MAX_CHUNK_SIZE is 1 996 with 8 kB pages; a full chunk takes 2 036 bytes, four fit.
        assert_eq!(toast_chunk_size(L), 1996.0);
        assert_eq!(chunk_slot(1996.0, L), 2036.0);
        // Full chunks only: four per page.
        assert!((toast_density(3.0, |_| 1996.0, false, L) - 4.0).abs() < 0.01);
        // One full chunk and a 504-byte one (548 bytes): three of each per page, inserted or copied.
        assert!((toast_density(2.0, |_| 504.0, false, L) - 6.0).abs() < 0.02);
        assert!((toast_density(2.0, |_| 504.0, true, L) - 6.0).abs() < 0.02);
        // Last chunks of 5 to 1 004 bytes in random order: inserts fill gaps with the short ones
        // (6.0 per page), a copy does not (5.85) — what VACUUM FULL does to such a table after 30 %
        // of the values were deleted: 28 % smaller, not 30 %.
        let last = |i: usize| 5.0 + (unit(i) * 1000.0).floor();
        let (ins, copy) = (toast_density(2.0, last, true, L), toast_density(2.0, last, false, L));
        assert!((ins - 6.0).abs() < 0.05 && (copy - 5.85).abs() < 0.05, "{ins} {copy}");
        // From the inserted density the fresh one is taken between the two.
        let f = fresh_density(2.0, 6.0, L);
        assert!(f > 5.85 && f < 5.99, "{f}");
    }

    #[test]
    fn two_to_three_kb_values_thirty_percent_deleted() {
        // 10 000 values of two chunks each written at 5.83 per page: 3 431 pages (and 64 heap
        // pages). 30 % deleted and vacuumed: 14 000 live chunks. Four per page would say 3 500
        // pages, more than there are: no bloat at all. The written density says 2 402 pages.
        let x = ToastInput {
            pages: 3431,
            chunks: 14_000.0,
            inserted: 20_000.0,
            ..Default::default()
        };
        let t = doc_table(64, 7000.0, x);
        let mut e = Estimate::new(3431);
        let fresh = estimate_toast(t.toast.as_ref().unwrap(), &t, &mut e, L);
        assert!((2402.0..2460.0).contains(&fresh), "{fresh}");
        assert_eq!(e.quality, Quality::Good, "{:?}", e.reasons);
        let whole = estimate_table(&t, L);
        assert!((whole.ratio().unwrap() - 0.29).abs() < 0.015, "{:?}", whole.ratio());
    }

    #[test]
    fn any_chunk_count_is_simulated_quickly() {
        // A billion chunks for one value (statistics say so, whatever the truth): full chunks,
        // four per page, from a bounded simulation.
        assert!((toast_density(1e9, |_| 1.0, true, L) - 4.0).abs() < 0.2);
        assert!(toast_density(f64::NAN, |_| 1.0, false, L) > 100.0);
        assert!(fresh_density(1e9, 4.0, L) >= 3.9);
    }

    #[test]
    fn unusable_histories_fall_back_to_a_model_and_say_so() {
        let base = ToastInput {
            pages: 2402,
            chunks: 14_000.0,
            inserted: 20_000.0,
            ..Default::default()
        };
        // VACUUM FULL: the counters describe the old file; 8.3 chunks per page written is more
        // than values of two chunks can reach (6).
        let x = ToastInput { rewritten: true, ..base.clone() };
        let t = doc_table(1, 7000.0, x.clone());
        let mut e = Estimate::new(2402);
        let fresh = estimate_toast(&x, &t, &mut e, L);
        assert_eq!(fresh, 2402.0, "modelled larger than it is: capped, no bloat");
        assert!(e.reason().unwrap().contains("rewritten since its chunks were written"));
        assert_eq!(e.quality, Quality::Approximate);
        // The same without the rewrite flag is caught by the density check.
        let x = ToastInput { rewritten: false, ..base.clone() };
        let mut e = Estimate::new(2402);
        estimate_toast(&x, &t, &mut e, L);
        assert!(e.reason().unwrap().contains("reused freed space"), "{:?}", e.reasons);
        // Reset counters (or a standby's).
        let x = ToastInput { inserted: 0.0, ..base };
        let mut e = Estimate::new(2402);
        estimate_toast(&x, &t, &mut e, L);
        assert!(e.reason().unwrap().contains("reset, or this is a standby"));
        // Never vacuumed: taken as it is.
        let x = ToastInput { chunks: -1.0, pages: 50, ..Default::default() };
        let mut e = Estimate::new(50);
        assert_eq!(estimate_toast(&x, &t, &mut e, L), 50.0);
        assert!(e.reason().unwrap().contains("never vacuumed"));
    }

    #[test]
    fn out_of_line_shares_from_widths() {
        assert_eq!(out_of_line_share(&Column::varlena(18.0)), Some(1.0));
        assert_eq!(out_of_line_share(&Column::fixed(8, 8.0)), Some(0.0));
        // Half the values out of line (18 bytes), half in line at 200: average 109.
        let c = Column::varlena(109.0).with_samples(vec![(200.0, 1.0)]);
        let s = out_of_line_share(&c).unwrap();
        assert!((s - 0.5).abs() < 0.01, "{s}");
        // No samples and not the pointer width: unknown.
        assert_eq!(out_of_line_share(&Column::varlena(300.0)), None);
    }
}
