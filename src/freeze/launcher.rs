//! The launcher's side of scheduled freezing, one pass per turn (primary only, in pgops.database):
//! follow running runs (progress into pgops.freeze_run_table, cancel requests, results, workers
//! that died), queue the runs of due jobs, start queued runs, trim history.

use chrono::{DateTime, Utc};
use pgrx::prelude::*;
use serde_json::Value;

use super::exec::{FreezeTask, TableResult};
use super::schedule::Schedule;
use crate::error::{Code, Result};
use crate::worker::dbworker::{self, Files, Poll, Task};
use crate::worker::launcher::{TurnContext, TurnHook};
use crate::worker::xact;

/// Runs in the launcher's turn transaction. Returns when the next job is due (for its sleep).
pub fn turn() -> Result<Option<DateTime<Utc>>> {
    follow_running()?;
    let next = schedule_due()?;
    start_queued()?;
    trim_history()?;
    Ok(next)
}

fn rows(query: &str, args: &[pgrx::datum::DatumWithOid]) -> Result<Vec<Value>> {
    Ok(crate::spi::rows(query, args)?)
}

fn follow_running() -> Result<()> {
    let running = rows(
        "SELECT id, worker_slot, worker_generation, cancel_requested FROM pgops.freeze_run WHERE status = 'running' ORDER BY id",
        &[],
    )?;
    for r in running {
        let id = r["id"].as_i64().unwrap_or(0);
        let (Some(idx), Some(generation)) = (r["worker_slot"].as_u64(), r["worker_generation"].as_u64()) else {
            finish(id, "failed", Some("no worker recorded for the run"), None)?;
            continue;
        };
        let (idx, generation) = (idx as usize, generation as u32);
        if r["cancel_requested"].as_bool() == Some(true) {
            Files::of(idx, generation).request_cancel();
        }
        ingest_progress(id, idx, generation)?;
        let state = dbworker::poll(idx, generation);
        if !matches!(state, Poll::Running { .. }) {
            // Lines written between the read above and the end of the worker.
            ingest_progress(id, idx, generation)?;
        }
        match state {
            Poll::Running { .. } => {}
            Poll::Finished(Ok(v)) => {
                let status = v["status"].as_str().unwrap_or("failed").to_string();
                finish(id, &status, v["error"].as_str(), Some(&v))?;
                dbworker::remove_files(idx, generation);
            }
            Poll::Finished(Err(e)) => {
                finish(id, "failed", Some(&e.one_line()), None)?;
                dbworker::remove_files(idx, generation);
            }
            Poll::Died(why) => {
                finish(id, "failed", Some(&format!("interrupted: {why}")), None)?;
                dbworker::remove_files(idx, generation);
            }
        }
    }
    Ok(())
}

/// Copies the worker's new progress lines into pgops.freeze_run_table and the run's counters.
fn ingest_progress(id: i64, idx: usize, generation: u32) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(Files::of(idx, generation).progress()) else {
        return Ok(());
    };
    let have = crate::spi::get_one_with_args::<i32>(
        "SELECT coalesce(max(seq), 0) FROM pgops.freeze_run_table WHERE run_id = $1",
        &[id.into()],
    )?
    .unwrap_or(0);
    for line in text.lines() {
        let Ok(t) = serde_json::from_str::<TableResult>(line) else {
            continue;
        };
        if t.seq <= have {
            continue;
        }
        Spi::run_with_args(
            "INSERT INTO pgops.freeze_run_table (run_id, seq, schema, table_name, outcome, error, started_at, seconds,
                 pages, urgency, xid_age_before, xid_age_after, mxid_age_before, mxid_age_after)
             VALUES ($1, $2, $3, $4, $5, $6, to_timestamp(946684800 + $7::float8 / 1e6), $8, $9, $10, $11, $12, $13, $14)",
            &[
                id.into(),
                t.seq.into(),
                t.schema.as_str().into(),
                t.table_name.as_str().into(),
                t.outcome.as_str().into(),
                t.error.clone().into(),
                t.started_at.into(),
                t.seconds.into(),
                t.pages.into(),
                t.urgency.into(),
                t.xid_age_before.into(),
                t.xid_age_after.into(),
                t.mxid_age_before.into(),
                t.mxid_age_after.into(),
            ],
        )?;
    }
    Spi::run_with_args(
        "UPDATE pgops.freeze_run r SET
            tables_done = s.done, tables_skipped = s.skipped, tables_failed = s.failed, pages = s.pages,
            max_table_age_before = s.age_before, max_table_age_after = s.age_after
         FROM (SELECT count(*) FILTER (WHERE outcome = 'frozen') AS done,
                      count(*) FILTER (WHERE outcome LIKE 'skipped%') AS skipped,
                      count(*) FILTER (WHERE outcome = 'failed') AS failed,
                      coalesce(sum(pages) FILTER (WHERE outcome = 'frozen'), 0) AS pages,
                      max(xid_age_before) AS age_before, max(xid_age_after) AS age_after
               FROM pgops.freeze_run_table WHERE run_id = $1) s
         WHERE r.id = $1",
        &[id.into()],
    )?;
    Ok(())
}

fn finish(id: i64, status: &str, detail: Option<&str>, summary: Option<&Value>) -> Result<()> {
    let get = |k: &str| summary.and_then(|v| v[k].as_i64());
    Spi::run_with_args(
        "UPDATE pgops.freeze_run SET status = $2, detail = $3, finished_at = now(),
                tables_planned = coalesce($4, tables_planned), xid_age_before = $5, xid_age_after = $6
         WHERE id = $1",
        &[
            id.into(),
            status.into(),
            detail.map(str::to_string).into(),
            get("planned").map(|v| v as i32).into(),
            get("xid_age_before").into(),
            get("xid_age_after").into(),
        ],
    )?;
    Ok(())
}

/// Queues a run per target database for every enabled job whose schedule fired since it last
/// ran; a job whose previous run is still going gets a "skipped" row instead. Returns the
/// earliest next occurrence.
fn schedule_due() -> Result<Option<DateTime<Utc>>> {
    let jobs = rows(
        "SELECT name, schedule, timezone, database,
                (extract(epoch FROM coalesce(last_scheduled_at, created_at)) * 1e6)::bigint AS since_us,
                EXISTS (SELECT FROM pgops.freeze_run r WHERE r.job = j.name AND r.status IN ('queued', 'running')) AS active
         FROM pgops.freeze_job j WHERE enabled ORDER BY name",
        &[],
    )?;
    let now = Utc::now();
    let mut next: Option<DateTime<Utc>> = None;
    for j in jobs {
        let name = j["name"].as_str().unwrap_or_default();
        let Ok(schedule) = Schedule::parse(
            j["schedule"].as_str().unwrap_or_default(),
            j["timezone"].as_str().unwrap_or("UTC"),
        ) else {
            continue; // the trigger validated it; a time zone database change could still break it
        };
        let since = DateTime::<Utc>::from_timestamp_micros(j["since_us"].as_i64().unwrap_or(0)).unwrap_or(now);
        if let Some(occurrence) = schedule.due(since, now) {
            if j["active"].as_bool() == Some(true) {
                Spi::run_with_args(
                    "INSERT INTO pgops.freeze_run (job, database, trigger, status, started_at, finished_at, detail)
                     VALUES ($1, $2, 'schedule', 'skipped: previous run still active', now(), now(),
                             'the schedule fired while an earlier run of this job was queued or running')",
                    &[name.into(), j["database"].as_str().unwrap_or("*").into()],
                )?;
            } else {
                Spi::run_with_args(
                    "INSERT INTO pgops.freeze_run (job, database, trigger)
                     SELECT $1, d.datname::text, 'schedule' FROM pg_catalog.pg_database d
                     WHERE d.datallowconn AND NOT d.datistemplate AND ($2 = '*' OR d.datname = $2) ORDER BY d.datname",
                    &[name.into(), j["database"].as_str().unwrap_or("*").into()],
                )?;
            }
            // The occurrence itself, not the transaction's start (which can precede it by the
            // time the turn took to get here): the next turn must not see it as due again.
            Spi::run_with_args(
                "UPDATE pgops.freeze_job SET last_scheduled_at = greatest(now(), to_timestamp($2::float8 / 1e6))
                 WHERE name = $1",
                &[name.into(), occurrence.timestamp_micros().into()],
            )?;
        }
        if let Some(n) = schedule.next_after(now) {
            next = Some(next.map_or(n, |m| m.min(n)));
        }
    }
    Ok(next)
}

fn start_queued() -> Result<()> {
    let queued = rows(
        "SELECT r.id, r.database, r.detail, j.name IS NOT NULL AS job_exists, j.min_age,
                (extract(epoch FROM j.max_duration) * 1000)::bigint AS max_duration_ms,
                (extract(epoch FROM j.lock_timeout) * 1000)::bigint AS lock_timeout_ms,
                j.cost_delay_ms, j.cost_limit, j.buffer_usage_limit
         FROM pgops.freeze_run r LEFT JOIN pgops.freeze_job j ON j.name = r.job
         WHERE r.status = 'queued' ORDER BY r.id",
        &[],
    )?;
    let limit = crate::gucs::freeze_max_workers();
    let mut running =
        crate::spi::get_one::<i64>("SELECT count(*) FROM pgops.freeze_run WHERE status = 'running'")?.unwrap_or(0);
    for q in queued {
        let id = q["id"].as_i64().unwrap_or(0);
        if q["job_exists"].as_bool() != Some(true) {
            finish(id, "failed", Some("the job was deleted before the run started"), None)?;
            continue;
        }
        if running >= limit {
            // Stays queued; say why (written once, not every turn: an idle wait takes no XID).
            let why = format!("waiting: {running} freeze worker(s) running, pgops.freeze_max_workers = {limit}");
            if q["detail"].as_str() != Some(why.as_str()) {
                Spi::run_with_args(
                    "UPDATE pgops.freeze_run SET detail = $2 WHERE id = $1",
                    &[id.into(), why.into()],
                )?;
            }
            continue;
        }
        let task = FreezeTask {
            run_id: id,
            min_age: q["min_age"].as_i64().unwrap_or(100_000_000),
            max_duration_ms: q["max_duration_ms"].as_i64().unwrap_or(0),
            lock_timeout_ms: q["lock_timeout_ms"].as_i64().unwrap_or(5000),
            cost_delay_ms: q["cost_delay_ms"].as_f64(),
            cost_limit: q["cost_limit"].as_i64().map(|v| v as i32),
            buffer_usage_limit: q["buffer_usage_limit"].as_str().map(str::to_string),
        };
        let database = q["database"].as_str().unwrap_or_default();
        let task = Task::Handler {
            name: super::exec::HANDLER.name.to_string(),
            arg: serde_json::to_value(&task)?,
        };
        match dbworker::start(database, &task) {
            Ok((idx, generation)) => {
                running += 1;
                Spi::run_with_args(
                    "UPDATE pgops.freeze_run SET status = 'running', started_at = now(), worker_slot = $2,
                            worker_generation = $3, detail = NULL
                     WHERE id = $1",
                    &[id.into(), (idx as i32).into(), (generation as i64).into()],
                )?
            }
            // Busy slots or no worker process free: stay queued, try again next turn.
            Err(e) if e.code == Code::InsufficientResources => Spi::run_with_args(
                "UPDATE pgops.freeze_run SET detail = $2 WHERE id = $1",
                &[id.into(), e.message.into()],
            )?,
            Err(e) => finish(id, "failed", Some(&e.one_line()), None)?,
        }
    }
    Ok(())
}

fn trim_history() -> Result<()> {
    let (days, keep) = crate::gucs::freeze_history();
    const OLD: &str = "FROM pgops.freeze_run WHERE status NOT IN ('queued', 'running')
           AND (finished_at < now() - make_interval(days => $1)
                OR id NOT IN (SELECT id FROM pgops.freeze_run WHERE status NOT IN ('queued', 'running')
                              ORDER BY id DESC LIMIT $2))";
    let args = || [days.into(), (keep as i64).into()];
    // Look before deleting: a DELETE through SPI assigns a transaction ID even when it deletes
    // nothing, and a launcher turning every few seconds must not age an idle cluster.
    if crate::spi::get_one_with_args::<bool>(&format!("SELECT EXISTS (SELECT {OLD})"), &args())?.unwrap_or(false) {
        Spi::run_with_args(&format!("DELETE {OLD}"), &args())?;
    }
    Ok(())
}

/// The freeze scheduler's part of every launcher turn.
pub static TURN: TurnHook = TurnHook {
    name: "freeze",
    run: run_turn,
};

/// A turn of freeze work in its own transaction: only once pgops is installed in the launcher's
/// database (the jobs live in its tables), and only on a primary. Returns the time until the
/// next job is due.
fn run_turn(ctx: &TurnContext) -> Result<Option<std::time::Duration>> {
    if !ctx.installed || !ctx.primary {
        return Ok(None);
    }
    let next = xact::run("pgops launcher: freeze", turn)?;
    Ok(next.map(|n| {
        (n - chrono::Utc::now())
            .to_std()
            .unwrap_or_default()
            .max(std::time::Duration::from_millis(10))
    }))
}
