//! SQL surface of the bloat estimates and their verification: reads the catalog and pg_statistic
//! (the functions run SECURITY DEFINER, so a pg_monitor role sees every table, not only those
//! whose columns it may read), hands the figures to the pure estimators in `bloat`, and measures
//! the worst tables with pgstattuple.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{Spi, SpiHeapTupleData};

use super::bloat::{
    Candidate, Column, Estimate, IndexInput, Layout, Measured, MeasuredToast, TableInput, ToastInput,
    choose_for_verification, default_fillfactor, estimate_index, estimate_table, measured_gist_bloat,
    measured_hash_bloat, measured_index_bloat, measured_table_bloat, sample_widths,
};
use crate::error::{Code, fail};

fn layout() -> Layout {
    Layout {
        block_size: pg_sys::BLCKSZ as f64,
        maxalign: pg_sys::MAXIMUM_ALIGNOF as f64,
    }
}

fn align_bytes(c: &str) -> f64 {
    match c {
        "d" => 8.0,
        "i" => 4.0,
        "s" => 2.0,
        _ => 1.0,
    }
}

fn get<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(row: &SpiHeapTupleData, i: usize) -> Option<T> {
    row.get::<T>(i)
        .unwrap_or_else(|e| crate::internal!("pgops bloat: reading column {i}: {e}"))
}

/// Runs a read-only query and hands each row to `f`.
fn each_row(query: &str, args: &[DatumWithOid], mut f: impl FnMut(&SpiHeapTupleData)) {
    Spi::connect(|c| {
        let rows = c.select(query, None, args)?;
        for row in rows {
            f(&row);
        }
        Ok::<_, pgrx::spi::Error>(())
    })
    .unwrap_or_else(|e| crate::internal!("pgops bloat: {e}"));
}

/// Relations whose bloat is estimated: tables and materialized views with storage, outside TOAST
/// schemas and other sessions' temporary schemas (system catalogs included: their bloat is real).
const TABLE_QUERY: &str = include_str!("../../sql/queries/bloat_tables.sql");

struct TableRow {
    relid: pg_sys::Oid,
    schema: String,
    name: String,
    kind: String,
    stats_time: Option<TimestampWithTimeZone>,
    input: TableInput,
}

/// Payload bytes of each element of an array of sample values (`pg_statistic.stavalues*`) of a
/// variable-width type; None when the array is NULL or of another kind of type.
fn payload_lengths(row: &SpiHeapTupleData, i: usize) -> Option<Vec<f64>> {
    let values = get::<pgrx::datum::AnyArray>(row, i)?;
    // SAFETY: the datum is a non-NULL array from pg_statistic, alive while the SPI tuple table is;
    // it is detoasted before its header is read, and its elements are deconstructed with the
    // length, by-value flag and alignment of the element type the array header names.
    unsafe {
        let a = pg_sys::pg_detoast_datum(values.datum().cast_mut_ptr::<pg_sys::varlena>()) as *mut pg_sys::ArrayType;
        let elem = (*a).elemtype;
        let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
        pg_sys::get_typlenbyvalalign(elem, &mut len, &mut byval, &mut align);
        if len != -1 {
            return None;
        }
        let (mut elems, mut nulls, mut n) = (std::ptr::null_mut(), std::ptr::null_mut(), 0);
        pg_sys::deconstruct_array(a, elem, len as i32, byval, align, &mut elems, &mut nulls, &mut n);
        let out = (0..n.max(0) as usize)
            .filter(|&k| !*nulls.add(k))
            .map(|k| pgrx::varlena::varsize_any_exhdr((*elems.add(k)).cast_mut_ptr::<pg_sys::varlena>()) as f64)
            .collect();
        // Every table's statistics pass through here in one query: free the copies at once.
        if !elems.is_null() {
            pg_sys::pfree(elems.cast());
        }
        if !nulls.is_null() {
            pg_sys::pfree(nulls.cast());
        }
        if a.cast::<std::ffi::c_void>() != values.datum().cast_mut_ptr::<std::ffi::c_void>() {
            pg_sys::pfree(a.cast());
        }
        Some(out)
    }
}

/// A column from `attlen, attalign, attisdropped, stanullfrac, stawidth` at `first` and
/// `attstorage, MCVs, their frequencies, histogram bounds` at `stats`.
fn column_from(row: &SpiHeapTupleData, first: usize, stats: usize) -> Option<Column> {
    let len = get::<i16>(row, first)?;
    let null_frac = get::<f64>(row, first + 3);
    let storage = get::<String>(row, stats).and_then(|s| s.chars().next()).unwrap_or('x');
    let samples = if len == -1 {
        let mcv = payload_lengths(row, stats + 1).unwrap_or_default();
        let freqs = get::<Vec<Option<f64>>>(row, stats + 2).unwrap_or_default();
        let hist = payload_lengths(row, stats + 3).unwrap_or_default();
        let mcv: Vec<(f64, f64)> = mcv.into_iter().zip(freqs.into_iter().map(|f| f.unwrap_or(0.0))).collect();
        sample_widths(null_frac.unwrap_or(0.0), &mcv, &hist, storage == 'p')
    } else {
        None
    };
    Some(Column {
        len,
        align: align_bytes(&get::<String>(row, first + 1).unwrap_or_default()),
        storage,
        dropped: get::<bool>(row, first + 2).unwrap_or(false),
        null_frac,
        width: get::<f64>(row, first + 4),
        samples,
    })
}

fn read_tables() -> Vec<TableRow> {
    let mut out: Vec<TableRow> = vec![];
    each_row(TABLE_QUERY, &[], |row| {
        let relid = get::<pg_sys::Oid>(row, 1).unwrap();
        if out.last().map(|t| t.relid) != Some(relid) {
            out.push(TableRow {
                relid,
                schema: get(row, 2).unwrap_or_default(),
                name: get(row, 3).unwrap_or_default(),
                kind: get(row, 4).unwrap_or_default(),
                stats_time: get(row, 12),
                input: TableInput {
                    pages: get(row, 5).unwrap_or(0),
                    tuples: get(row, 6).unwrap_or(-1.0),
                    fillfactor: get(row, 7).unwrap_or(100.0),
                    columns: vec![],
                    modified: get(row, 10).unwrap_or(0.0),
                    toast: get::<i64>(row, 8).map(|pages| ToastInput {
                        pages,
                        chunks: get(row, 9).unwrap_or(-1.0),
                        inserted: get(row, 11).unwrap_or(0.0),
                        dead: get(row, 22).unwrap_or(0.0),
                        inserted_since_vacuum: get(row, 23).unwrap_or(0.0),
                        rewritten: get(row, 24).unwrap_or(false),
                    }),
                },
            });
        }
        if let Some(col) = column_from(row, 13, 18) {
            out.last_mut().unwrap().input.columns.push(col);
        }
    });
    out
}

fn figures(e: &Estimate, l: Layout) -> (i64, Option<i64>, Option<i64>, Option<f64>) {
    (
        (e.pages as f64 * l.block_size) as i64,
        e.expected_pages.map(|p| (p.min(e.pages as f64) * l.block_size) as i64),
        e.bloat_pages().map(|b| (b * l.block_size) as i64),
        e.ratio().map(|r| (r * 1e6).round() / 1e6),
    )
}

/// Rows of `pgops.table_bloat`.
#[pg_extern(volatile, parallel_safe)]
fn _table_bloat() -> TableIterator<
    'static,
    (
        name!(relid, pg_sys::Oid),
        name!(schema, String),
        name!(table_name, String),
        name!(kind, String),
        name!(fillfactor, i32),
        name!(tuples, f64),
        name!(size_bytes, i64),
        name!(toast_bytes, i64),
        name!(expected_bytes, Option<i64>),
        name!(bloat_bytes, Option<i64>),
        name!(bloat_ratio, Option<f64>),
        name!(quality, String),
        name!(quality_reason, Option<String>),
        name!(stats_time, Option<TimestampWithTimeZone>),
    ),
> {
    let l = layout();
    let rows: Vec<_> = read_tables()
        .into_iter()
        .map(|t| {
            pgrx::check_for_interrupts!();
            let e = estimate_table(&t.input, l);
            let (size, expected, bloat, ratio) = figures(&e, l);
            (
                t.relid,
                t.schema,
                t.name,
                if t.kind == "m" {
                    "materialized view".into()
                } else {
                    "table".into()
                },
                t.input.fillfactor as i32,
                t.input.tuples.max(0.0),
                size,
                (t.input.toast.as_ref().map_or(0, |x| x.pages) as f64 * l.block_size) as i64,
                expected,
                bloat,
                ratio,
                e.quality.as_str().to_string(),
                e.reason(),
                t.stats_time,
            )
        })
        .collect();
    TableIterator::new(rows)
}

const INDEX_QUERY: &str = include_str!("../../sql/queries/bloat_indexes.sql");

struct IndexRow {
    indexrelid: pg_sys::Oid,
    relid: pg_sys::Oid,
    schema: String,
    table: String,
    name: String,
    stats_time: Option<TimestampWithTimeZone>,
    dedup_option: bool,
    input: IndexInput,
}

fn read_indexes() -> Vec<IndexRow> {
    let mut out: Vec<IndexRow> = vec![];
    let query = INDEX_QUERY;
    each_row(&query, &[], |row| {
        let indexrelid = get::<pg_sys::Oid>(row, 1).unwrap();
        if out.last().map(|t| t.indexrelid) != Some(indexrelid) {
            let unique = get(row, 9).unwrap_or(false);
            let am: String = get(row, 23).unwrap_or_default();
            out.push(IndexRow {
                indexrelid,
                relid: get(row, 2).unwrap(),
                schema: get(row, 3).unwrap_or_default(),
                table: get(row, 4).unwrap_or_default(),
                name: get(row, 5).unwrap_or_default(),
                stats_time: get(row, 14),
                dedup_option: get(row, 12).unwrap_or(true),
                input: IndexInput {
                    fillfactor: get(row, 8).unwrap_or_else(|| default_fillfactor(&am)),
                    am,
                    opclasses: vec![],
                    table_tuples: get(row, 25).unwrap_or(-1.0),
                    table_pages: get(row, 26).unwrap_or(0),
                    pages_per_range: get(row, 27).unwrap_or(128.0),
                    pages: get(row, 6).unwrap_or(0),
                    tuples: get(row, 7).unwrap_or(-1.0),
                    key_columns: get::<i32>(row, 10).unwrap_or(1) as usize,
                    columns: vec![],
                    distinct: vec![],
                    unique,
                    dedup: !unique,
                    partial: get(row, 11).unwrap_or(false),
                    expression_without_stats: false,
                    stale: get(row, 13).unwrap_or(false),
                },
            });
        }
        let ix = out.last_mut().unwrap();
        if let Some(col) = column_from(row, 15, 28) {
            ix.input.opclasses.push(get(row, 24).unwrap_or_default());
            let is_key = ix.input.columns.len() < ix.input.key_columns;
            if is_key {
                ix.input.distinct.push(get(row, 20));
                ix.input.dedup &= get::<bool>(row, 21).unwrap_or(false);
            }
            ix.input.expression_without_stats |= get::<bool>(row, 22).unwrap_or(false);
            ix.input.columns.push(col);
        }
    });
    for ix in &mut out {
        // INCLUDE columns rule deduplication out, as does the reloption; only btree deduplicates.
        ix.input.dedup &=
            ix.dedup_option && ix.input.columns.len() == ix.input.key_columns && ix.input.am == "btree";
    }
    out
}

/// Rows of `pgops.index_bloat` (every index; a figure for btree, hash and BRIN minmax).
#[pg_extern(volatile, parallel_safe)]
fn _index_bloat() -> TableIterator<
    'static,
    (
        name!(relid, pg_sys::Oid),
        name!(indexrelid, pg_sys::Oid),
        name!(schema, String),
        name!(table_name, String),
        name!(index_name, String),
        name!(access_method, String),
        name!(tuples, f64),
        name!(size_bytes, i64),
        name!(expected_bytes, Option<i64>),
        name!(bloat_bytes, Option<i64>),
        name!(bloat_ratio, Option<f64>),
        name!(quality, String),
        name!(quality_reason, Option<String>),
        name!(stats_time, Option<TimestampWithTimeZone>),
    ),
> {
    let l = layout();
    let rows: Vec<_> = read_indexes()
        .into_iter()
        .map(|ix| {
            pgrx::check_for_interrupts!();
            let e = estimate_index(&ix.input, l);
            let (size, expected, bloat, ratio) = figures(&e, l);
            (
                ix.relid,
                ix.indexrelid,
                ix.schema,
                ix.table,
                ix.name,
                ix.input.am,
                ix.input.tuples.max(0.0),
                size,
                expected,
                bloat,
                ratio,
                e.quality.as_str().to_string(),
                e.reason(),
                ix.stats_time,
            )
        })
        .collect();
    TableIterator::new(rows)
}

fn pgstattuple_schema() -> String {
    crate::spi::get_one::<String>(
        "SELECT n.nspname::text FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'pgstattuple'",
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        fail(
            Code::FeatureNotSupported,
            format!(
                "pgops.verify_bloat needs the pgstattuple extension in database {}",
                crate::sqltext::ident(&crate::pgutil::current_database())
            ),
            "Run CREATE EXTENSION pgstattuple; in this database (it ships with PostgreSQL's contrib), then call verify_bloat again.",
        )
    })
}

/// Takes AccessShareLock on a relation without waiting; false when someone holds a conflicting lock
/// (or the relation is gone).
fn try_share_lock(relid: pg_sys::Oid) -> bool {
    let got = unsafe { pg_sys::ConditionalLockRelationOid(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE) };
    got && crate::pgutil::with_fresh_snapshot(|| {
        crate::spi::get_one_with_args::<bool>("SELECT true FROM pg_catalog.pg_class WHERE oid = $1", &[relid.into()])
            .ok()
            .flatten()
            .unwrap_or(false)
    })
}

struct Measurement {
    relid: pg_sys::Oid,
    table_relid: pg_sys::Oid,
    kind: &'static str,
    schema: String,
    name: String,
    size_bytes: i64,
    estimated_bloat_bytes: Option<i64>,
    bloat_bytes: Option<i64>,
    free_bytes: Option<i64>,
    dead_bytes: Option<i64>,
    method: String,
}

/// The most tables a caller that is not a superuser may ask `verify_bloat` to measure.
const VERIFY_MAX_TABLES_UNPRIVILEGED: i32 = 100;

/// Measures the tables with the worst estimated bloat (table and btree indexes together) exactly,
/// within `max_tables` and `max_pages` (pages of table, TOAST and indexes together), and stores
/// the figures in pgops.bloat_verified (on a primary). Tables locked by others are skipped.
#[pg_extern(volatile, parallel_unsafe)]
fn verify_bloat(
    max_tables: default!(i32, 10),
    max_pages: default!(i64, 131072),
) -> TableIterator<
    'static,
    (
        name!(schema, String),
        name!(relation, String),
        name!(kind, String),
        name!(size_bytes, i64),
        name!(estimated_bloat_bytes, Option<i64>),
        name!(verified_bloat_bytes, Option<i64>),
        name!(verified_bloat_ratio, Option<f64>),
        name!(method, String),
        name!(stored, bool),
    ),
> {
    if max_tables < 0 || max_pages < 0 {
        fail(
            Code::InvalidParameterValue,
            format!("pgops.verify_bloat: max_tables ({max_tables}) and max_pages ({max_pages}) must not be negative"),
            "Pass how many tables, and how many pages in all, the measurement may read.",
        );
    }
    // The function runs as its owner (a superuser); the budget of a caller who is not one is capped
    // by a setting only a superuser can change.
    // SAFETY: the role that called this SECURITY DEFINER function, and whether it is a superuser.
    if !unsafe { pg_sys::superuser_arg(pg_sys::GetOuterUserId()) } {
        let cap = crate::gucs::verify_bloat_max_pages();
        if max_pages > cap || max_tables > VERIFY_MAX_TABLES_UNPRIVILEGED {
            fail(
                Code::InsufficientPrivilege,
                format!(
                    "pgops.verify_bloat: max_tables {max_tables} / max_pages {max_pages} is over what a role that is not a \
                     superuser may ask ({VERIFY_MAX_TABLES_UNPRIVILEGED} tables, pgops.verify_bloat_max_pages = {cap} pages)"
                ),
                "Pass a smaller budget, or ask a superuser to raise pgops.verify_bloat_max_pages.",
            );
        }
    }
    let schema = crate::sqltext::ident(&pgstattuple_schema());
    let l = layout();
    let tables: Vec<TableRow> = read_tables()
        .into_iter()
        .filter(|t| t.input.pages + t.input.toast.as_ref().map_or(0, |x| x.pages) > 0)
        .collect();
    let indexes = read_indexes();
    let candidates: Vec<Candidate> = tables
        .iter()
        .map(|t| {
            pgrx::check_for_interrupts!();
            let e = estimate_table(&t.input, l);
            let (mut bloat, mut pages) = (e.bloat_pages().unwrap_or(0.0), e.pages);
            for ix in indexes.iter().filter(|ix| ix.relid == t.relid) {
                let ie = estimate_index(&ix.input, l);
                bloat += ie.bloat_pages().unwrap_or(0.0);
                pages += ix.input.pages;
            }
            Candidate {
                relid: t.relid.to_u32(),
                estimated_bloat_bytes: bloat * l.block_size,
                pages,
            }
        })
        .collect();
    let (chosen, passed) = choose_for_verification(candidates, max_tables as usize, max_pages);
    if passed > 0 {
        notice!(
            "pgops.verify_bloat: {passed} table(s) with more estimated bloat did not fit in max_pages => {max_pages}; \
             raise it to measure them"
        );
    }
    let mut out: Vec<Measurement> = vec![];
    let mut spent: i64 = 0;
    for c in chosen {
        pgrx::check_for_interrupts!();
        let t = tables.iter().find(|t| t.relid.to_u32() == c.relid).unwrap();
        if !try_share_lock(t.relid) {
            notice!(
                "pgops.verify_bloat: skipped {}.{}: locked by another session",
                t.schema,
                t.name
            );
            continue;
        }
        // The budget holds for the files as they are, not for the catalog's figures (stale, or
        // written by a table owner on PG 18).
        let actual = actual_pages(t.relid);
        if spent + actual > max_pages {
            notice!(
                "pgops.verify_bloat: skipped {}.{}: its {actual} pages (table, TOAST and indexes) do not fit in what is \
                 left of max_pages => {max_pages}",
                t.schema,
                t.name
            );
            continue;
        }
        spent += actual;
        let e = estimate_table(&t.input, l);
        let heap = pgstattuple_approx(&schema, t.relid)
            .unwrap_or_else(|e| crate::internal!("pgops.verify_bloat: measuring {}.{}: {e}", t.schema, t.name));
        let toast = toast_relid(t.relid).map(|toast| {
            read_toast(toast).unwrap_or_else(|e| {
                crate::internal!(
                    "pgops.verify_bloat: measuring the TOAST table of {}.{}: {e}",
                    t.schema,
                    t.name
                )
            })
        });
        let toast_bytes = toast.as_ref().map_or(0.0, |x| x.pages * l.block_size);
        let m = Measured {
            table_len: heap.len,
            free: heap.free,
            dead: heap.dead,
            tuples: heap.tuples,
            toast,
        };
        out.push(Measurement {
            relid: t.relid,
            table_relid: t.relid,
            kind: "table",
            schema: t.schema.clone(),
            name: t.name.clone(),
            size_bytes: (heap.len + toast_bytes) as i64,
            estimated_bloat_bytes: e.bloat_pages().map(|b| (b * l.block_size) as i64),
            bloat_bytes: Some(measured_table_bloat(&m, t.input.fillfactor, l) as i64),
            free_bytes: Some(heap.free as i64),
            dead_bytes: Some(heap.dead as i64),
            method: if toast_bytes > 0.0 {
                "pgstattuple_approx; TOAST chunks read and repacked".into()
            } else {
                "pgstattuple_approx".into()
            },
        });
        for ix in indexes.iter().filter(|ix| ix.relid == t.relid) {
            if !matches!(ix.input.am.as_str(), "btree" | "hash" | "gist") {
                continue; // pgstattuple cannot measure GIN, SP-GiST, BRIN
            }
            if !try_share_lock(ix.indexrelid) {
                notice!(
                    "pgops.verify_bloat: skipped index {}.{}: locked by another session",
                    ix.schema,
                    ix.name
                );
                continue;
            }
            let (size, bloat, method) = measure_index(&schema, ix, l).unwrap_or_else(|e| {
                crate::internal!("pgops.verify_bloat: measuring index {}.{}: {e}", ix.schema, ix.name)
            });
            let ie = estimate_index(&ix.input, l);
            out.push(Measurement {
                relid: ix.indexrelid,
                table_relid: ix.relid,
                kind: "index",
                schema: ix.schema.clone(),
                name: ix.name.clone(),
                size_bytes: size as i64,
                estimated_bloat_bytes: ie.bloat_pages().map(|b| (b * l.block_size) as i64),
                bloat_bytes: Some(bloat as i64),
                free_bytes: None,
                dead_bytes: None,
                method: method.into(),
            });
        }
    }
    let stored = !unsafe { pg_sys::RecoveryInProgress() };
    if stored {
        for m in &out {
            Spi::run_with_args(
                "INSERT INTO pgops.bloat_verified AS v
                   (relid, table_relid, kind, schema, relation, filenode, size_bytes, bloat_bytes, free_bytes,
                    dead_bytes, estimated_bloat_bytes, method, measured_at)
                 VALUES ($1, $2, $3, $4, $5, pg_catalog.pg_relation_filenode($1), $6, $7, $8, $9, $10, $11, pg_catalog.clock_timestamp())
                 ON CONFLICT (relid) DO UPDATE SET table_relid = EXCLUDED.table_relid, kind = EXCLUDED.kind,
                   schema = EXCLUDED.schema, relation = EXCLUDED.relation, filenode = EXCLUDED.filenode,
                   size_bytes = EXCLUDED.size_bytes, bloat_bytes = EXCLUDED.bloat_bytes, free_bytes = EXCLUDED.free_bytes,
                   dead_bytes = EXCLUDED.dead_bytes, estimated_bloat_bytes = EXCLUDED.estimated_bloat_bytes,
                   method = EXCLUDED.method, measured_at = EXCLUDED.measured_at",
                &[
                    m.relid.into(),
                    m.table_relid.into(),
                    m.kind.into(),
                    m.schema.as_str().into(),
                    m.name.as_str().into(),
                    m.size_bytes.into(),
                    m.bloat_bytes.into(),
                    m.free_bytes.into(),
                    m.dead_bytes.into(),
                    m.estimated_bloat_bytes.into(),
                    m.method.as_str().into(),
                ],
            )
            .unwrap_or_else(|e| crate::internal!("pgops.verify_bloat: storing the result for {}.{}: {e}", m.schema, m.name));
        }
    } else if !out.is_empty() {
        notice!("pgops.verify_bloat: this server is a standby: results are returned, not stored");
    }
    TableIterator::new(out.into_iter().map(move |m| {
        let ratio = m
            .bloat_bytes
            .filter(|_| m.size_bytes > 0)
            .map(|b| (b as f64 / m.size_bytes as f64 * 1e6).round() / 1e6);
        (
            m.schema,
            m.name,
            m.kind.to_string(),
            m.size_bytes,
            m.estimated_bloat_bytes,
            m.bloat_bytes,
            ratio,
            m.method,
            stored,
        )
    }))
}

/// Pages of a table, its TOAST table and its indexes as the files are now.
fn actual_pages(relid: pg_sys::Oid) -> i64 {
    crate::spi::get_one_with_args::<i64>(
        "SELECT ((pg_catalog.pg_relation_size(c.oid) + coalesce(pg_catalog.pg_relation_size(nullif(c.reltoastrelid, 0)), 0)
                 + coalesce((SELECT pg_catalog.sum(pg_catalog.pg_relation_size(i.indexrelid)) FROM pg_catalog.pg_index i
                             WHERE i.indrelid = c.oid), 0)) / pg_catalog.current_setting('block_size')::bigint)::bigint
         FROM pg_catalog.pg_class c WHERE c.oid = $1",
        &[relid.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(i64::MAX / 2)
}

fn toast_relid(relid: pg_sys::Oid) -> Option<pg_sys::Oid> {
    crate::spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT reltoastrelid FROM pg_catalog.pg_class WHERE oid = $1",
        &[relid.into()],
    )
    .ok()
    .flatten()
    .filter(|o| *o != pg_sys::InvalidOid)
}

struct HeapFigures {
    len: f64,
    free: f64,
    dead: f64,
    tuples: f64,
}

/// pgstattuple_approx of a table: length, free bytes, dead bytes, live rows.
fn pgstattuple_approx(schema: &str, relid: pg_sys::Oid) -> Result<HeapFigures, pgrx::spi::Error> {
    Spi::connect(|cl| {
        let rows = cl.select(
            &format!(
                "SELECT table_len::float8, approx_free_space::float8, dead_tuple_len::float8, approx_tuple_count::float8
                 FROM {schema}.pgstattuple_approx($1::regclass)"
            ),
            Some(1),
            &[relid.into()],
        )?;
        let r = rows.first();
        Ok(HeapFigures {
            len: r.get(1)?.unwrap_or(0.0),
            free: r.get(2)?.unwrap_or(0.0),
            dead: r.get(3)?.unwrap_or(0.0),
            tuples: r.get(4)?.unwrap_or(0.0),
        })
    })
}

/// Reads a TOAST table's chunks: how many, how many values, and the sizes of the short ones. The
/// table is read once (one aggregate); its name comes from the catalog and is quoted.
fn read_toast(toast: pg_sys::Oid) -> Result<MeasuredToast, pgrx::spi::Error> {
    let (schema, name): (String, String) = Spi::connect(|cl| {
        let rows = cl.select(
            "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            Some(1),
            &[toast.into()],
        )?;
        let r = rows.first();
        Ok::<_, pgrx::spi::Error>((r.get(1)?.unwrap_or_default(), r.get(2)?.unwrap_or_default()))
    })?;
    let full = super::bloat::toast_chunk_size(layout());
    let rel = format!("{}.{}", crate::sqltext::ident(&schema), crate::sqltext::ident(&name));
    Spi::connect(|cl| {
        let rows = cl.select(
            &format!(
                "SELECT pg_catalog.octet_length(chunk_data)::float8, pg_catalog.count(*)::float8,
                        (pg_catalog.count(*) FILTER (WHERE chunk_seq = 0))::float8
                 FROM {rel} GROUP BY 1"
            ),
            None,
            &[],
        )?;
        let mut t = MeasuredToast {
            pages: crate::spi::get_one_with_args::<i64>("SELECT pg_catalog.pg_relation_size($1)", &[toast.into()])?
                .unwrap_or(0) as f64
                / pg_sys::BLCKSZ as f64,
            ..Default::default()
        };
        for r in rows {
            let (bytes, n, first) = (
                r.get::<f64>(1)?.unwrap_or(0.0),
                r.get::<f64>(2)?.unwrap_or(0.0),
                r.get::<f64>(3)?.unwrap_or(0.0),
            );
            t.chunks += n;
            t.values += first;
            if bytes < full {
                t.short_chunks.push((bytes, n));
            }
        }
        Ok(t)
    })
}

/// Measures an index with the pgstattuple function for its kind: (size, bloat bytes, method).
fn measure_index(schema: &str, ix: &IndexRow, l: Layout) -> Result<(f64, f64, &'static str), pgrx::spi::Error> {
    Spi::connect(|cl| {
        let one = |q: String| cl.select(&q, Some(1), &[ix.indexrelid.into()]);
        match ix.input.am.as_str() {
            "hash" => {
                let rows = one(format!(
                    "SELECT pg_catalog.pg_relation_size($1)::float8, bitmap_pages::float8, overflow_pages::float8,
                            live_items::float8 FROM {schema}.pgstathashindex($1::regclass)"
                ))?;
                let r = rows.first();
                let size = r.get::<f64>(1)?.unwrap_or(0.0);
                let (bitmaps, overflow, live) = (
                    r.get::<f64>(2)?.unwrap_or(0.0),
                    r.get::<f64>(3)?.unwrap_or(0.0),
                    r.get::<f64>(4)?.unwrap_or(0.0),
                );
                Ok((
                    size,
                    measured_hash_bloat(size, bitmaps, overflow, live, ix.input.fillfactor, l),
                    "pgstathashindex",
                ))
            }
            "gist" => {
                let rows = one(format!(
                    "SELECT table_len::float8, free_space::float8, dead_tuple_len::float8
                     FROM {schema}.pgstattuple($1::regclass)"
                ))?;
                let r = rows.first();
                let size = r.get::<f64>(1)?.unwrap_or(0.0);
                let (free, dead) = (r.get::<f64>(2)?.unwrap_or(0.0), r.get::<f64>(3)?.unwrap_or(0.0));
                Ok((size, measured_gist_bloat(size, free, dead, ix.input.fillfactor, l), "pgstattuple"))
            }
            _ => {
                let rows = one(format!(
                    "SELECT index_size::float8, leaf_pages::float8, empty_pages::float8, deleted_pages::float8,
                            avg_leaf_density::float8 FROM {schema}.pgstatindex($1::regclass)"
                ))?;
                let r = rows.first();
                let size = r.get::<f64>(1)?.unwrap_or(0.0);
                let bloat = measured_index_bloat(
                    size,
                    r.get::<f64>(2)?.unwrap_or(0.0),
                    r.get::<f64>(3)?.unwrap_or(0.0),
                    r.get::<f64>(4)?.unwrap_or(0.0),
                    r.get::<f64>(5)?.unwrap_or(f64::NAN),
                    ix.input.fillfactor,
                    l,
                );
                Ok((size, bloat, "pgstatindex"))
            }
        }
    })
}
