//! The freeze executor: a task handler run by a per-database worker, outside any transaction of
//! its own (registered by `freeze::init`).
//!
//! VACUUM refuses to run inside a transaction block or a function: each table's
//! `VACUUM (FREEZE, …)` runs as a top-level statement through the backbone's `worker::toplevel`.
//! Reading ages before and after each table happens in short transactions of their own.

use std::path::Path;
use std::time::{Duration, Instant};

use pgrx::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::plan::{Outcome, Stop, TableAge, final_status, plan};
use crate::error::Result;
use crate::sqltext::{ident, literal};
use crate::worker::{dbworker, xact};

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
pub fn table_ages() -> crate::error::Result<Vec<TableAge>> {
    let rows = crate::spi::rows(TABLE_AGES, &[])?;
    Ok(serde_json::from_value(serde_json::Value::Array(rows))?)
}

/// The VACUUM statement for one table: identifiers quoted, options from the job. Never with
/// parallel workers (`PARALLEL 0`): a parallel worker connects to the database afresh and starts
/// with the settings its owner attached to it (a `transaction_timeout` of 1 ms ended one in the
/// hostile-tenant scenario) before it takes the worker's pinned ones.
pub fn vacuum_statement(schema: &str, table: &str, buffer_usage_limit: Option<&str>) -> String {
    let mut options = vec!["FREEZE".to_string(), "VERBOSE false".to_string(), "PARALLEL 0".to_string()];
    if let Some(b) = buffer_usage_limit {
        options.push(format!("BUFFER_USAGE_LIMIT {}", literal(b)));
    }
    format!("VACUUM ({}) {}.{}", options.join(", "), ident(schema), ident(table))
}

/// Ages of one table now (None when it no longer exists).
fn ages_of(relid: u32) -> Result<Option<(i64, i64, i64)>> {
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
fn set_session(name: &str, value: &str) -> Result<()> {
    xact::run("pgops freeze: settings", || {
        Spi::run_with_args(
            "SELECT pg_catalog.set_config($1, $2, false)",
            &[name.into(), value.into()],
        )?;
        Ok(())
    })
}

/// The per-database worker's freeze task: its argument is a `FreezeTask`; it runs VACUUM, so it
/// opens and ends its own transactions.
pub static HANDLER: dbworker::Handler = dbworker::Handler {
    name: "freeze",
    label: "freeze",
    own_transactions: true,
    enters_closed_databases: false,
    run: |arg, files| {
        let task: FreezeTask = serde_json::from_value(arg.clone())?;
        Ok(run(&task, &files.progress(), || files.cancel_requested()))
    },
};

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
            Err(e) => (Outcome::Failed, Some(e.one_line()), None),
            Ok(Some(_)) => match crate::worker::toplevel::run(&vacuum_statement(
                &t.schema,
                &t.name,
                task.buffer_usage_limit.as_deref(),
            )) {
                Ok(()) => (Outcome::Frozen, None, ages_of(t.relid).ok().flatten()),
                // lock_not_available: lock_timeout expired waiting for another session's lock.
                Err((msg, sqlstate)) if sqlstate == "55P03" => (Outcome::Locked, Some(msg), None),
                // undefined_table: dropped since the plan.
                Err((msg, sqlstate)) if sqlstate == "42P01" => (Outcome::Gone, Some(msg), None),
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
        server_log!("pgops freeze: cannot write progress to {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vacuum_statements_quote_everything() {
        assert_eq!(
            vacuum_statement("public", "t", None),
            r#"VACUUM (FREEZE, VERBOSE false, PARALLEL 0) "public"."t""#
        );
        assert_eq!(
            vacuum_statement("we\"ird", "Tab le; DROP", Some("256MB")),
            r#"VACUUM (FREEZE, VERBOSE false, PARALLEL 0, BUFFER_USAGE_LIMIT '256MB') "we""ird"."Tab le; DROP""#
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
