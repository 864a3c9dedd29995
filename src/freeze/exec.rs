//! The freeze executor: runs in a per-database worker, outside any transaction of its own.
//!
//! VACUUM refuses to run inside a transaction block or a function, so it cannot go through SPI.
//! Each table's `VACUUM (FREEZE, …)` is parsed, planned and run through `ProcessUtility` as a
//! top-level statement, the way a backend runs a client's query. VACUUM commits and starts
//! transactions itself, so the parse and plan trees live in a memory context of their own under
//! TopMemoryContext (in the first transaction's context they would be freed under its feet).
//! Reading ages before and after each table happens in short transactions of their own.

use std::ffi::CString;
use std::path::Path;
use std::time::{Duration, Instant};

use pgrx::PgTryBuilder;
use pgrx::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::plan::{Outcome, Stop, TableAge, final_status, plan};
use crate::sqltext::{ident, literal};
use crate::worker::xact;

/// What the launcher asks a freeze worker to do (travels as JSON in the task file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FreezeTask {
    pub run_id: i64,
    pub min_age: i64,
    pub max_duration_ms: i64,
    pub lock_timeout_ms: i64,
    pub cost_delay_ms: Option<f64>,
    pub cost_limit: Option<i32>,
    pub buffer_usage_limit: Option<String>,
}

/// One table's line in the progress file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableResult {
    pub seq: i32,
    pub schema: String,
    pub table_name: String,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub started_at: i64,
    pub seconds: f64,
    pub pages: i64,
    pub urgency: f64,
    pub xid_age_before: i64,
    pub xid_age_after: Option<i64>,
    pub mxid_age_before: i64,
    pub mxid_age_after: Option<i64>,
}

/// The catalog query behind the plan: every table of this database with its heap and TOAST
/// ages, the effective per-table limits, and its pages. Temporary tables (other sessions') and
/// partitioned parents (no storage) are left out.
pub const TABLE_AGES: &str = include_str!("../../sql/queries/freeze_table_ages.sql");

/// Every table of the current database with its ages (read-only SPI; call inside a transaction).
pub fn table_ages() -> anyhow::Result<Vec<TableAge>> {
    let mut out = vec![];
    Spi::connect(|c| {
        for row in c.select(TABLE_AGES, None, &[])? {
            out.push(TableAge {
                relid: row.get::<i64>(1)?.unwrap_or(0) as u32,
                schema: row.get(2)?.unwrap_or_default(),
                name: row.get(3)?.unwrap_or_default(),
                xid_age: row.get(4)?.unwrap_or(0),
                mxid_age: row.get(5)?.unwrap_or(0),
                freeze_max_age: row.get(6)?.unwrap_or(200_000_000),
                multixact_freeze_max_age: row.get(7)?.unwrap_or(400_000_000),
                pages: row.get(8)?.unwrap_or(0),
            });
        }
        Ok::<_, pgrx::spi::Error>(())
    })?;
    Ok(out)
}

/// The VACUUM statement for one table: identifiers quoted, options from the job.
pub fn vacuum_statement(schema: &str, table: &str, buffer_usage_limit: Option<&str>) -> String {
    let mut options = vec!["FREEZE".to_string(), "VERBOSE false".to_string()];
    if let Some(b) = buffer_usage_limit {
        options.push(format!("BUFFER_USAGE_LIMIT {}", literal(b)));
    }
    format!("VACUUM ({}) {}.{}", options.join(", "), ident(schema), ident(table))
}

/// Runs one utility statement at top level, in transactions of its own. Returns the error
/// message and SQLSTATE if it failed; the worker goes on either way.
pub fn run_toplevel(sql: &str) -> Result<(), (String, String)> {
    let c_sql = CString::new(sql).map_err(|_| ("statement contains a NUL byte".to_string(), "22021".to_string()))?;
    // SAFETY: called from a worker's main thread, outside any transaction. Every pointer handed
    // to PostgreSQL lives in `cxt`, which outlives the transactions VACUUM commits, and is
    // deleted after the last one ended.
    unsafe {
        let cxt = pg_sys::AllocSetContextCreateExtended(
            pg_sys::TopMemoryContext,
            c"pgops freeze statement".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        );
        let saved_portal = pg_sys::PortalContext;
        let activity = c_sql.clone();
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, activity.as_ptr());
        pg_sys::MemoryContextSwitchTo(cxt);
        // vacuum() makes its private context under PortalContext: keep it out of the transaction.
        pg_sys::PortalContext = cxt;
        let sql_ptr = pg_sys::pstrdup(c_sql.as_ptr());
        let result = PgTryBuilder::new(|| {
            let raw_list = pg_sys::pg_parse_query(sql_ptr);
            if raw_list.is_null() || (*raw_list).length != 1 {
                panic!("pgops freeze: expected exactly one statement");
            }
            let raw = (*(*raw_list).elements).ptr_value as *mut pg_sys::RawStmt;
            let queries =
                pg_sys::pg_analyze_and_rewrite_fixedparams(raw, sql_ptr, std::ptr::null_mut(), 0, std::ptr::null_mut());
            let plans = pg_sys::pg_plan_queries(queries, sql_ptr, 0, std::ptr::null_mut());
            let stmt = (*(*plans).elements).ptr_value as *mut pg_sys::PlannedStmt;
            if (*stmt).utilityStmt.is_null() {
                panic!("pgops freeze: expected a utility statement");
            }
            let mut qc = pg_sys::QueryCompletion::default();
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
            pg_sys::ProcessUtility(
                stmt,
                sql_ptr,
                false,
                pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                pg_sys::None_Receiver,
                &mut qc,
            );
            if pg_sys::ActiveSnapshotSet() {
                pg_sys::PopActiveSnapshot();
            }
            pg_sys::PortalContext = saved_portal;
            pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
            pg_sys::CommitTransactionCommand();
            Ok(())
        })
        .catch_others(|e| {
            pg_sys::PortalContext = saved_portal;
            pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
            pg_sys::AbortCurrentTransaction();
            let code = match &e {
                pg_sys::panic::CaughtError::PostgresError(r) | pg_sys::panic::CaughtError::ErrorReport(r) => {
                    format!("{:?}", r.sql_error_code())
                }
                _ => String::new(),
            };
            Err((xact::describe(&e), code))
        })
        .execute();
        pg_sys::MemoryContextDelete(cxt);
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null());
        result
    }
}

/// Ages of one table now (None when it no longer exists).
fn ages_of(relid: u32) -> Result<Option<(i64, i64, i64)>, String> {
    xact::run("pgops freeze: read ages", || {
        let row = crate::spi::get_one_with_args::<pgrx::JsonB>(
            "SELECT jsonb_build_array(greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0)),
                                      greatest(mxid_age(c.relminmxid), coalesce(mxid_age(t.relminmxid), 0)),
                                      c.relpages + coalesce(t.relpages, 0))
             FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
             WHERE c.oid = $1::oid",
            &[(relid as i64).into()],
        )?;
        Ok(row.and_then(|j| serde_json::from_value::<(i64, i64, i64)>(j.0).ok()))
    })
}

fn database_age() -> Option<i64> {
    xact::run("pgops freeze: database age", || {
        Ok(crate::spi::get_one::<i64>(
            "SELECT age(datfrozenxid)::bigint FROM pg_catalog.pg_database WHERE datname = current_database()",
        )?)
    })
    .ok()
    .flatten()
}

/// Sets a GUC for the rest of this worker's life.
fn set_session(name: &str, value: &str) -> Result<(), String> {
    xact::run("pgops freeze: settings", || {
        Spi::run_with_args(
            "SELECT pg_catalog.set_config($1, $2, false)",
            &[name.into(), value.into()],
        )?;
        Ok(())
    })
}

/// Runs a freeze task in this database. `progress` receives one JSON line per table;
/// `cancelled` says whether the launcher asked to stop. Returns the run's summary.
pub fn run(task: &FreezeTask, progress: &Path, cancelled: impl Fn() -> bool) -> Value {
    if unsafe { pg_sys::RecoveryInProgress() } {
        return json!({ "status": "skipped: standby", "planned": 0 });
    }
    let mut settings = vec![("lock_timeout", format!("{}ms", task.lock_timeout_ms))];
    if let Some(d) = task.cost_delay_ms {
        settings.push(("vacuum_cost_delay", format!("{d}ms")));
    }
    if let Some(l) = task.cost_limit {
        settings.push(("vacuum_cost_limit", l.to_string()));
    }
    for (name, value) in &settings {
        if let Err(e) = set_session(name, value) {
            return json!({ "status": "failed", "error": format!("setting {name}: {e}"), "planned": 0 });
        }
    }
    let db_age_before = database_age();
    let tables = match xact::run("pgops freeze: plan", table_ages) {
        Ok(t) => plan(t, task.min_age),
        Err(e) => return json!({ "status": "failed", "error": format!("reading the catalog: {e}"), "planned": 0 }),
    };
    let started = Instant::now();
    let budget = Duration::from_millis(task.max_duration_ms.max(0) as u64);
    let (mut frozen, mut skipped, mut failed, mut pages) = (0usize, 0usize, 0usize, 0i64);
    let mut stop = Stop::Done;
    let mut remaining = tables.len();
    for (i, t) in tables.iter().enumerate() {
        if cancelled() {
            stop = Stop::Cancelled;
            break;
        }
        if started.elapsed() >= budget {
            stop = Stop::Budget;
            break;
        }
        remaining -= 1;
        let t0 = Instant::now();
        let started_at = xact::now();
        let before = ages_of(t.relid);
        let (outcome, error, after) = match &before {
            Ok(None) => (Outcome::Gone, None, None),
            Err(e) => (Outcome::Failed, Some(e.clone()), None),
            Ok(Some(_)) => match run_toplevel(&vacuum_statement(
                &t.schema,
                &t.name,
                task.buffer_usage_limit.as_deref(),
            )) {
                Ok(()) => (Outcome::Frozen, None, ages_of(t.relid).ok().flatten()),
                // lock_not_available: lock_timeout expired waiting for another session's lock.
                Err((msg, code)) if code.contains("LOCK_NOT_AVAILABLE") => (Outcome::Locked, Some(msg), None),
                Err((msg, code)) if code.contains("UNDEFINED_TABLE") => (Outcome::Gone, Some(msg), None),
                Err((msg, _)) => (Outcome::Failed, Some(msg), None),
            },
        };
        match outcome {
            Outcome::Frozen => frozen += 1,
            Outcome::Locked | Outcome::Gone => skipped += 1,
            Outcome::Failed => failed += 1,
        }
        let table_pages = before.as_ref().ok().and_then(|b| b.map(|b| b.2)).unwrap_or(t.pages);
        if outcome == Outcome::Frozen {
            pages += table_pages;
        }
        let line = TableResult {
            seq: i as i32 + 1,
            schema: t.schema.clone(),
            table_name: t.name.clone(),
            outcome,
            error,
            started_at,
            seconds: t0.elapsed().as_secs_f64(),
            pages: table_pages,
            urgency: t.urgency(),
            xid_age_before: before.as_ref().ok().and_then(|b| b.map(|b| b.0)).unwrap_or(t.xid_age),
            xid_age_after: after.map(|a| a.0),
            mxid_age_before: before.as_ref().ok().and_then(|b| b.map(|b| b.1)).unwrap_or(t.mxid_age),
            mxid_age_after: after.map(|a| a.1),
        };
        append_line(progress, &line);
    }
    if stop == Stop::Done && remaining > 0 {
        stop = Stop::Budget;
    }
    json!({
        "status": final_status(stop, frozen, skipped, failed),
        "planned": tables.len(),
        "not_started": remaining,
        "frozen": frozen,
        "skipped": skipped,
        "failed": failed,
        "pages": pages,
        "xid_age_before": db_age_before,
        "xid_age_after": database_age(),
    })
}

fn append_line(path: &Path, line: &TableResult) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = serde_json::to_string(line).unwrap_or_default() + "\n";
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        log!("pgops freeze: cannot write progress to {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vacuum_statements_quote_everything() {
        assert_eq!(
            vacuum_statement("public", "t", None),
            r#"VACUUM (FREEZE, VERBOSE false) "public"."t""#
        );
        assert_eq!(
            vacuum_statement("we\"ird", "Tab le; DROP", Some("256MB")),
            r#"VACUUM (FREEZE, VERBOSE false, BUFFER_USAGE_LIMIT '256MB') "we""ird"."Tab le; DROP""#
        );
    }

    #[test]
    fn progress_lines_round_trip() {
        let l = TableResult {
            seq: 1,
            schema: "s".into(),
            table_name: "t".into(),
            outcome: Outcome::Locked,
            error: Some("canceling statement due to lock timeout".into()),
            started_at: 1,
            seconds: 0.5,
            pages: 10,
            urgency: 0.9,
            xid_age_before: 100,
            xid_age_after: None,
            mxid_age_before: 0,
            mxid_age_after: None,
        };
        let s = serde_json::to_string(&l).unwrap();
        assert!(s.contains(r#""outcome":"locked""#));
        assert_eq!(serde_json::from_str::<TableResult>(&s).unwrap(), l);
    }
}
