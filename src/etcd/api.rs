//! SQL surface of etcd publishing: `pgops.etcd_status`, `pgops.etcd_push_now()`,
//! `pgops.cluster_members()`. No HTTP here: these functions ask the etcd worker through shared
//! memory and wait for its answer.

use std::time::{Duration, Instant};

use pgrx::prelude::*;

use super::status::EtcdStatus;
use super::worker::{MEMBERS_FILE, NAME};
use crate::error::{Code, fail};
use crate::gucs;
use crate::worker::shmem;

use crate::pgutil::{non_empty as opt, timestamp as ts};

/// Rows of `pgops.etcd_status` (one row).
#[pg_extern(volatile, parallel_unsafe)]
fn _etcd_status() -> TableIterator<
    'static,
    (
        name!(enabled, bool),
        name!(state, String),
        name!(endpoints, Option<String>),
        name!(connected_endpoint, Option<String>),
        name!(key, Option<String>),
        name!(lease_id, Option<i64>),
        name!(lease_ttl, Option<i64>),
        name!(interval_seconds, Option<i64>),
        name!(last_attempt_at, Option<TimestampWithTimeZone>),
        name!(last_push_at, Option<TimestampWithTimeZone>),
        name!(last_write_at, Option<TimestampWithTimeZone>),
        name!(revision, Option<i64>),
        name!(next_push_at, Option<TimestampWithTimeZone>),
        name!(last_error, Option<String>),
        name!(last_error_at, Option<TimestampWithTimeZone>),
        name!(pushes, i64),
        name!(writes, i64),
        name!(failures, i64),
        name!(consecutive_failures, i32),
        name!(leases_granted, i64),
        name!(last_push_ms, Option<f64>),
        name!(last_collect_ms, Option<f64>),
    ),
> {
    let s: EtcdStatus = match super::board::board() {
        Some(l) => l.share().0.clone(),
        None => EtcdStatus {
            state: {
                let mut t = crate::worker::registry::Text::new();
                crate::worker::registry::set_text(&mut t, "not running: pgops is not in shared_preload_libraries");
                t
            },
            ..EtcdStatus::default()
        },
    };
    let alive = worker_pid().is_some();
    let state = if shmem::preloaded() && !alive {
        format!("worker not running (was: {}); see pgops.workers", s.state)
    } else if s.state.is_empty() {
        "not started yet".to_string()
    } else {
        s.state.to_string()
    };
    let nz = |v: i64| (v != 0).then_some(v);
    let ms = |us: i64| (us != 0).then_some(us as f64 / 1000.0);
    TableIterator::once((
        s.enabled,
        state,
        opt(&s.endpoints),
        opt(&s.endpoint),
        opt(&s.key),
        nz(s.lease_id),
        nz(s.lease_ttl),
        nz(s.interval_s),
        ts(s.last_attempt_at),
        ts(s.last_push_at),
        ts(s.last_write_at),
        nz(s.revision),
        ts(s.next_push_at),
        opt(&s.last_error),
        ts(s.last_error_at),
        s.pushes as i64,
        s.writes as i64,
        s.failures as i64,
        s.consecutive_failures as i32,
        s.leases_granted as i64,
        ms(s.last_push_us),
        ms(s.last_collect_us),
    ))
}

fn worker_pid() -> Option<i32> {
    let pid = shmem::registry()?
        .share()
        .in_use()
        .find(|s| s.name.as_str() == NAME && s.pid != 0)
        .map(|s| s.pid)?;
    // SAFETY: reads the proc array under its own lock.
    let alive = unsafe { !pg_sys::BackendPidGetProc(pid).is_null() };
    alive.then_some(pid)
}

/// Common checks: preloaded, the worker alive, publishing configured. Returns the worker's pid.
fn ready(what: &str) -> i32 {
    if !shmem::preloaded() {
        fail(
            Code::ObjectNotInPrerequisiteState,
            format!("pgops.{what} needs pgops in shared_preload_libraries"),
            "The etcd worker is started by the postmaster: add pgops to shared_preload_libraries and restart.",
        );
    }
    let Some(pid) = worker_pid() else {
        fail(
            Code::ObjectNotInPrerequisiteState,
            format!("pgops.{what}: the pgops etcd worker is not running"),
            "See pgops.workers (max_worker_processes may be too low); it is restarted after pgops.launcher_restart_time.",
        );
    };
    let (enabled, error) = super::board::board()
        .map(|l| {
            let s = l.share();
            (s.enabled, s.last_error.to_string())
        })
        .unwrap_or_default();
    if !enabled {
        if gucs::etcd().endpoints.is_empty() {
            fail(
                Code::ObjectNotInPrerequisiteState,
                format!("pgops.{what}: etcd publishing is off (pgops.etcd_endpoints is empty)"),
                "Set pgops.etcd_endpoints (ALTER SYSTEM SET pgops.etcd_endpoints = 'http://127.0.0.1:2379') and reload.",
            );
        }
        fail(
            Code::InvalidParameterValue,
            format!("pgops.{what}: etcd publishing is off: {error}"),
            "Correct the pgops.etcd_* setting named above and reload (SELECT pg_reload_conf()); pgops.etcd_status shows the state.",
        );
    }
    pid
}

/// Asks the worker for one piece of work and waits for it: `bump` numbers the request, `done`
/// reads how far the worker got.
fn request(what: &str, pid: i32, bump: fn(&mut EtcdStatus) -> u64, done: fn(&EtcdStatus) -> u64) {
    let lock = super::board::board().expect("checked by ready()");
    let seq = bump(&mut lock.exclusive());
    // SAFETY: signals a live process we found in the registry; SIGUSR1 sets its latch.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    let s = gucs::etcd();
    let wait = Duration::from_millis((s.timeout_ms.max(100) as u64) * (s.endpoints.len().max(1) as u64) * 7 + 5_000);
    let deadline = Instant::now() + wait;
    loop {
        if done(&lock.share()) >= seq {
            return;
        }
        if Instant::now() >= deadline {
            fail(
                Code::QueryCanceled,
                format!(
                    "pgops.{what}: the etcd worker did not answer within {} s",
                    wait.as_secs()
                ),
                "See pgops.etcd_status and pgops.workers.",
            );
        }
        std::thread::sleep(Duration::from_millis(5));
        pg_sys::check_for_interrupts!();
    }
}

/// Publishes now: the worker reads the state and writes it (even if unchanged), and this returns
/// what happened.
#[pg_extern(volatile, parallel_unsafe)]
fn etcd_push_now() -> TableIterator<
    'static,
    (
        name!(ok, bool),
        name!(wrote, bool),
        name!(key, Option<String>),
        name!(endpoint, Option<String>),
        name!(lease_id, Option<i64>),
        name!(revision, Option<i64>),
        name!(error, Option<String>),
        name!(push_ms, f64),
    ),
> {
    let pid = ready("etcd_push_now()");
    request(
        "etcd_push_now()",
        pid,
        |s| {
            s.push_requested += 1;
            s.push_requested
        },
        |s| s.push_done,
    );
    let s = super::board::board().expect("checked").share().clone();
    let nz = |v: i64| (v != 0).then_some(v);
    TableIterator::once((
        s.push_ok,
        s.push_wrote,
        opt(&s.key),
        opt(&s.endpoint),
        nz(s.lease_id),
        nz(s.revision).filter(|_| s.push_wrote),
        opt(&s.push_error),
        s.push_us as f64 / 1000.0,
    ))
}

fn parse_time(v: &serde_json::Value) -> Option<TimestampWithTimeZone> {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
    // PostgreSQL timestamps count microseconds from 2000-01-01 UTC.
    ts(t.timestamp_micros() - 946_684_800_000_000)
}

/// Every instance of this cluster that publishes to etcd, read back from etcd (through the
/// worker), one row each.
#[pg_extern(volatile, parallel_unsafe)]
fn cluster_members() -> TableIterator<
    'static,
    (
        name!(instance, String),
        name!(role, Option<String>),
        name!(hostname, Option<String>),
        name!(port, Option<i64>),
        name!(timeline, Option<i64>),
        name!(lsn, Option<String>),
        name!(replay_lag_seconds, Option<f64>),
        name!(server_version, Option<String>),
        name!(started_at, Option<TimestampWithTimeZone>),
        name!(updated_at, Option<TimestampWithTimeZone>),
        name!(max_xid_age, Option<i64>),
        name!(pgops_version, Option<String>),
        name!(is_self, bool),
        name!(lease_id, i64),
        name!(key, String),
        name!(state, Option<pgrx::JsonB>),
    ),
> {
    let pid = ready("cluster_members()");
    request(
        "cluster_members()",
        pid,
        |s| {
            s.read_requested += 1;
            s.read_requested
        },
        |s| s.read_done,
    );
    let (error, own_key, prefix) = {
        let s = super::board::board().expect("checked").share();
        (
            s.read_error.to_string(),
            s.key.to_string(),
            s.members_prefix.to_string(),
        )
    };
    if !error.is_empty() {
        fail(
            Code::ConnectionFailure,
            format!("pgops.cluster_members(): cannot read {prefix} from etcd: {error}"),
            "See pgops.etcd_status for the endpoints and the last error.",
        );
    }
    let text = std::fs::read(MEMBERS_FILE).unwrap_or_else(|e| {
        fail(
            Code::IoError,
            format!("pgops.cluster_members(): cannot read the worker's answer {MEMBERS_FILE}: {e}"),
            "Retry; see the server log.",
        )
    });
    let kvs: Vec<serde_json::Value> = serde_json::from_slice(&text).unwrap_or_default();
    const MAX_MEMBER_DOCUMENT_BYTES: usize = 64 << 10;
    let rows: Vec<_> = kvs
        .into_iter()
        .map(|kv| {
            let key = kv["key"].as_str().unwrap_or_default().to_string();
            // Documents are written by peers: only a JSON object of bounded size is read; fields
            // of the wrong type read as NULL.
            let doc: Option<serde_json::Value> = kv["value"]
                .as_str()
                .filter(|v| v.len() <= MAX_MEMBER_DOCUMENT_BYTES)
                .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
                .filter(serde_json::Value::is_object);
            let d = doc.clone().unwrap_or_default();
            let s = |f: &str| d[f].as_str().map(str::to_string);
            let instance = key.strip_prefix(&prefix).unwrap_or(&key).to_string();
            let lsn = s("current_lsn").or_else(|| s("replay_lsn"));
            (
                instance,
                s("role"),
                s("hostname"),
                d["port"].as_i64(),
                d["timeline"].as_i64(),
                lsn,
                d["replay_lag_seconds"].as_f64(),
                s("server_version"),
                parse_time(&d["started_at"]),
                parse_time(&d["updated_at"]),
                d["max_xid_age"].as_i64(),
                s("pgops_version"),
                key == own_key,
                kv["lease"].as_i64().unwrap_or(0),
                key,
                doc.map(pgrx::JsonB),
            )
        })
        .collect();
    TableIterator::new(rows)
}
