//! SQL surface of scheduled freezing: job validation, next run, the plan, run now, cancel.

use chrono::{DateTime, TimeZone, Utc};
use pgrx::prelude::*;
use serde::Deserialize;

use super::exec::table_ages;
use super::plan::{TableAge, plan};
use super::schedule::Schedule;
use crate::error::{Code, fail};
use crate::worker::{dbworker, shmem};

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

pub fn to_chrono(ts: TimestampWithTimeZone) -> DateTime<Utc> {
    let us: i64 = ts.into();
    Utc.timestamp_micros(us + PG_EPOCH_US).single().unwrap_or_else(Utc::now)
}

pub fn to_pg(t: DateTime<Utc>) -> Option<TimestampWithTimeZone> {
    TimestampWithTimeZone::try_from(t.timestamp_micros() - PG_EPOCH_US).ok()
}

/// A freeze_job row as the validation trigger sees it (intervals as text, read back by SQL).
#[derive(Deserialize)]
struct JobRow {
    name: String,
    database: String,
    schedule: String,
    timezone: String,
    min_age: i64,
    cost_delay_ms: Option<f64>,
    cost_limit: Option<i64>,
    buffer_usage_limit: Option<String>,
}

fn bad(job: &str, what: String, hint: &str) -> ! {
    fail(
        Code::InvalidParameterValue,
        format!("freeze job \"{job}\": {what}"),
        hint,
    )
}

/// Validates a pgops.freeze_job row (called by its trigger): a clear error naming the job and
/// the field, and nothing stored.
#[pg_extern(volatile)]
fn _check_freeze_job(row: pgrx::JsonB) {
    let raw = row.0.clone();
    let r: JobRow = serde_json::from_value(raw.clone()).unwrap_or_else(|e| {
        fail(
            Code::DataException,
            format!("pgops.freeze_job: unreadable row: {e}"),
            "Check the row: its columns have the types of pgops.freeze_job.",
        )
    });
    if let Err(e) = Schedule::parse(&r.schedule, &r.timezone) {
        bad(
            &r.name,
            e.message,
            "Use 5 cron fields, e.g. '0 3 * * 0' (Sundays 03:00) or '@daily', and an IANA time zone.",
        );
    }
    if r.database != "*" {
        let exists = crate::spi::get_one_with_args::<bool>(
            "SELECT datallowconn FROM pg_catalog.pg_database WHERE datname = $1",
            &[r.database.as_str().into()],
        )
        .ok()
        .flatten();
        match exists {
            None => bad(
                &r.name,
                format!("database \"{}\" does not exist", r.database),
                "Name an existing database, or '*' for every database that allows connections.",
            ),
            Some(false) => bad(
                &r.name,
                format!("database \"{}\" does not allow connections", r.database),
                "Name a database that allows connections, or '*'.",
            ),
            Some(true) => {}
        }
    }
    if !(0..=2_000_000_000).contains(&r.min_age) {
        bad(
            &r.name,
            format!("min_age {} is out of range", r.min_age),
            "Use 0 to 2000000000 (XIDs).",
        );
    }
    let ms = |field: &str| -> i64 {
        crate::spi::get_one_with_args::<i64>(
            "SELECT (extract(epoch FROM ($1::jsonb ->> $2)::interval) * 1000)::bigint",
            &[pgrx::JsonB(raw.clone()).into(), field.into()],
        )
        .ok()
        .flatten()
        .unwrap_or(-1)
    };
    if ms("max_duration") <= 0 {
        bad(
            &r.name,
            "max_duration must be positive".into(),
            "Give the run's budget, e.g. '4 hours'.",
        );
    }
    if ms("lock_timeout") < 0 {
        bad(
            &r.name,
            "lock_timeout must not be negative".into(),
            "Use e.g. '5 seconds' (0 waits for ever).",
        );
    }
    if let Some(d) = r.cost_delay_ms
        && !(0.0..=100.0).contains(&d)
    {
        bad(
            &r.name,
            format!("cost_delay_ms {d} is out of range"),
            "vacuum_cost_delay takes 0 to 100 ms.",
        );
    }
    if let Some(l) = r.cost_limit
        && !(1..=10000).contains(&l)
    {
        bad(
            &r.name,
            format!("cost_limit {l} is out of range"),
            "vacuum_cost_limit takes 1 to 10000.",
        );
    }
    if let Some(b) = &r.buffer_usage_limit {
        if pg_sys::PG_VERSION_NUM < 160000 {
            bad(
                &r.name,
                "buffer_usage_limit needs PostgreSQL 16".into(),
                "Leave it NULL on this server (VACUUM uses its ring buffer).",
            );
        }
        if !buffer_usage_limit_ok(b) {
            bad(
                &r.name,
                format!("buffer_usage_limit '{b}' is not valid"),
                "Use 0 (no limit) or 128 kB to 16 GB, e.g. '256MB'.",
            );
        }
    }
}

/// VACUUM's BUFFER_USAGE_LIMIT: 0, or 128 kB to 16 GB, as a number with an optional kB/MB/GB
/// unit (kB when none).
pub fn buffer_usage_limit_ok(v: &str) -> bool {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let Ok(n) = digits.parse::<u64>() else { return false };
    let kb = match unit.trim() {
        "" | "kB" => n,
        "MB" => n.saturating_mul(1024),
        "GB" => n.saturating_mul(1024 * 1024),
        _ => return false,
    };
    kb == 0 || (128..=16 * 1024 * 1024).contains(&kb)
}

/// The next time a schedule fires after `after` (NULL when it is not valid).
#[pg_extern(stable, parallel_safe)]
fn _freeze_next_run(schedule: &str, timezone: &str, after: TimestampWithTimeZone) -> Option<TimestampWithTimeZone> {
    let s = Schedule::parse(schedule, timezone).ok()?;
    let from = to_chrono(after).max(Utc::now() - chrono::Duration::seconds(1));
    s.next_after(from).and_then(to_pg)
}

/// The tables the next run would freeze in `database`, in order. Another database's catalog is
/// read by a per-database worker (needs preload).
#[pg_extern(volatile, parallel_unsafe)]
fn freeze_plan(
    database: default!(Option<String>, "NULL"),
    min_age: default!(i64, 100000000),
) -> TableIterator<
    'static,
    (
        name!(seq, i32),
        name!(schema, String),
        name!(table_name, String),
        name!(xid_age, i64),
        name!(mxid_age, i64),
        name!(freeze_max_age, i64),
        name!(urgency, f64),
        name!(estimated_pages, i64),
    ),
> {
    let current = crate::pgutil::current_database();
    let database = database.unwrap_or_else(|| current.clone());
    let tables: Vec<TableAge> = if database == current {
        table_ages().unwrap_or_else(|e| crate::internal!("pgops.freeze_plan: {e}"))
    } else {
        // The worker reads the other database as a superuser: the caller must be allowed to
        // connect there itself (pg_monitor alone does not grant CONNECT).
        let may_connect = crate::spi::get_one_with_args::<bool>(
            "SELECT has_database_privilege(d.oid, 'CONNECT') FROM pg_catalog.pg_database d WHERE d.datname = $1",
            &[database.as_str().into()],
        )
        .unwrap_or(None);
        match may_connect {
            None => fail(
                Code::InvalidCatalogName,
                format!("pgops.freeze_plan: database \"{database}\" does not exist"),
                "Pass the name of a database of this cluster.",
            ),
            Some(false) => fail(
                Code::InsufficientPrivilege,
                format!("pgops.freeze_plan: permission denied for database \"{database}\""),
                "The plan of another database is read there by a worker running as a superuser, so the caller \
                 needs CONNECT on that database; or call pgops.freeze_plan() in it.",
            ),
            Some(true) => {}
        }
        let task = dbworker::Task::Query {
            label: "freeze plan".into(),
            sql: super::exec::TABLE_AGES.into(),
            args: vec![],
            rows: true,
            closed: false,
        };
        let v = dbworker::run_and_wait(&database, &task).unwrap_or_else(|e| {
            fail(
                Code::ObjectNotInPrerequisiteState,
                format!("pgops.freeze_plan: cannot read database \"{database}\": {e}"),
                "Call it in that database, or check that it exists and pgops is preloaded.",
            )
        });
        serde_json::from_value(v)
            .unwrap_or_else(|e| crate::internal!("pgops.freeze_plan: unreadable worker answer: {e}"))
    };
    let rows: Vec<_> = plan(tables, min_age)
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let u = (t.urgency() * 1e6).round() / 1e6;
            (
                i as i32 + 1,
                t.schema,
                t.name,
                t.xid_age,
                t.mxid_age,
                t.freeze_max_age,
                u,
                t.pages,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// Wakes the launcher (SIGUSR1 sets its latch) so it looks at the freeze tables now.
pub fn wake_launcher() {
    if let Some(r) = shmem::registry() {
        let pid = r
            .share()
            .in_use()
            .find(|s| s.name.as_str() == crate::worker::launcher::NAME && s.pid != 0)
            .map(|s| s.pid);
        if let Some(pid) = pid {
            unsafe { libc::kill(pid, libc::SIGUSR1) };
        }
    }
}

fn require_launcher_database(what: &str) {
    if unsafe { pg_sys::RecoveryInProgress() } {
        fail(
            Code::ReadOnlySqlTransaction,
            format!("pgops.{what}: this server is a standby; freeze runs only on the primary"),
            "Call it on the primary.",
        );
    }
    let current = crate::pgutil::current_database();
    let home = crate::gucs::database();
    if current != home {
        fail(
            Code::WrongObjectType,
            format!("pgops.{what}: freeze jobs live in database \"{home}\" (pgops.database), not \"{current}\""),
            &format!("Connect to \"{home}\" and call it there."),
        );
    }
    if !shmem::preloaded() {
        fail(
            Code::ObjectNotInPrerequisiteState,
            format!("pgops.{what}: the launcher is not running: pgops is not in shared_preload_libraries"),
            "Add pgops to shared_preload_libraries and restart the server.",
        );
    }
}

/// Asks the launcher to run `job` now; returns the run of each target database.
#[pg_extern(volatile, parallel_unsafe)]
fn run_freeze(job: &str) -> TableIterator<'static, (name!(run_id, i64), name!(database, String))> {
    require_launcher_database("run_freeze");
    let target = Spi::get_one_with_args::<String>(
        "SELECT database FROM pgops.freeze_job WHERE name = $1 FOR UPDATE",
        &[job.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        fail(
            Code::UndefinedObject,
            format!("pgops.run_freeze: freeze job \"{job}\" does not exist"),
            "SELECT name FROM pgops.freeze_job; lists the jobs.",
        )
    });
    if let Some(active) = crate::spi::get_one_with_args::<i64>(
        "SELECT min(id) FROM pgops.freeze_run WHERE job = $1 AND status IN ('queued', 'running')",
        &[job.into()],
    )
    .ok()
    .flatten()
    {
        fail(
            Code::ObjectInUse,
            format!("pgops.run_freeze: freeze job \"{job}\" is already running (run {active})"),
            &format!("Wait for it (pgops.freeze_status), or SELECT pgops.cancel_freeze({active});"),
        );
    }
    let runs = Spi::connect_mut(|c| {
        let mut out = vec![];
        let rows = c.update(
            "INSERT INTO pgops.freeze_run (job, database, trigger)
             SELECT $1, d.datname::text, 'manual' FROM pg_catalog.pg_database d
             WHERE d.datallowconn AND NOT d.datistemplate AND ($2 = '*' OR d.datname = $2)
             ORDER BY d.datname RETURNING id, database",
            None,
            &[job.into(), target.as_str().into()],
        )?;
        for r in rows {
            out.push((r.get::<i64>(1)?.unwrap_or(0), r.get::<String>(2)?.unwrap_or_default()));
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap_or_else(|e| crate::internal!("pgops.run_freeze: {e}"));
    if runs.is_empty() {
        fail(
            Code::UndefinedObject,
            format!(
                "pgops.run_freeze: freeze job \"{job}\" targets \"{target}\", which matches no database that allows connections"
            ),
            "UPDATE pgops.freeze_job SET database = ... to an existing database.",
        );
    }
    wake_launcher();
    TableIterator::new(runs)
}

/// Asks a queued or running freeze run to stop (a running one stops between tables).
#[pg_extern(volatile, parallel_unsafe)]
fn cancel_freeze(run_id: i64) -> String {
    require_launcher_database("cancel_freeze");
    let status = Spi::get_one_with_args::<String>(
        "SELECT status FROM pgops.freeze_run WHERE id = $1 FOR UPDATE",
        &[run_id.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| {
        fail(
            Code::UndefinedObject,
            format!("pgops.cancel_freeze: there is no freeze run {run_id}"),
            "SELECT id, job, status FROM pgops.freeze_run ORDER BY id DESC; lists the runs.",
        )
    });
    let answer = match status.as_str() {
        "queued" => {
            Spi::run_with_args(
                "UPDATE pgops.freeze_run SET status = 'cancelled', cancel_requested = true, finished_at = now(),
                        detail = 'cancelled before it started' WHERE id = $1",
                &[run_id.into()],
            )
            .unwrap_or_else(|e| crate::internal!("pgops.cancel_freeze: {e}"));
            "cancelled"
        }
        "running" => {
            Spi::run_with_args(
                "UPDATE pgops.freeze_run SET cancel_requested = true WHERE id = $1",
                &[run_id.into()],
            )
            .unwrap_or_else(|e| crate::internal!("pgops.cancel_freeze: {e}"));
            "cancelling: the run stops after the table it is freezing"
        }
        done => fail(
            Code::ObjectNotInPrerequisiteState,
            format!("pgops.cancel_freeze: freeze run {run_id} already finished ({done})"),
            "Only queued or running runs can be cancelled.",
        ),
    };
    wake_launcher();
    answer.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_usage_limits() {
        for ok in ["0", "128", "128kB", "256MB", "16GB", " 1GB "] {
            assert!(buffer_usage_limit_ok(ok), "{ok}");
        }
        for bad in ["", "64kB", "17GB", "1TB", "abc", "-1", "1.5GB", "256mb"] {
            assert!(!buffer_usage_limit_ok(bad), "{bad}");
        }
    }

    #[test]
    fn timestamps_convert_both_ways() {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap();
        let us = t.timestamp_micros() - PG_EPOCH_US;
        assert_eq!(Utc.timestamp_micros(us + PG_EPOCH_US).unwrap(), t);
        assert_eq!(
            Utc.timestamp_micros(PG_EPOCH_US).unwrap(),
            Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()
        );
    }
}
