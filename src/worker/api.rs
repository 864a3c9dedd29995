//! SQL surface of the worker backbone: `pgops.workers`, `pgops.installations()`,
//! `pgops.instance()`.

use pgrx::prelude::*;

use super::registry::Kind;
use super::{dbworker, shmem};
use crate::{gucs, identity};

use crate::error::{Code, fail};
use crate::pgutil::{non_empty as opt, timestamp as ts};

/// Rows of `pgops.workers`. Without preload: one row per static worker saying it is not running.
#[pg_extern(volatile, parallel_unsafe)]
fn _workers() -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(kind, String),
        name!(database, Option<String>),
        name!(pid, Option<i32>),
        name!(state, String),
        name!(started_at, Option<TimestampWithTimeZone>),
        name!(last_run_at, Option<TimestampWithTimeZone>),
        name!(runs, i64),
        name!(errors, i64),
        name!(last_error, Option<String>),
        name!(last_error_at, Option<TimestampWithTimeZone>),
        name!(starts, i32),
    ),
> {
    // The static workers the capabilities declared (registered with the postmaster when preloaded).
    let declared = super::statics::declared();
    let absent = |name: &str, why: &str| {
        (
            name.to_string(),
            Kind::Static.as_str().to_string(),
            Some(gucs::database()),
            None,
            why.to_string(),
            None,
            None,
            0,
            0,
            None,
            None,
            0,
        )
    };
    let Some(registry) = shmem::registry() else {
        return TableIterator::new(
            declared
                .iter()
                .map(|n| absent(n, "not running: pgops is not in shared_preload_libraries"))
                .collect::<Vec<_>>(),
        );
    };
    let slots: Vec<_> = registry.share().in_use().cloned().collect();
    let mut rows = Vec::with_capacity(slots.len() + declared.len());
    for name in declared {
        if !slots.iter().any(|s| s.kind == Kind::Static && s.name.as_str() == name) {
            rows.push(absent(
                name,
                "not started yet (or no free worker process: check max_worker_processes)",
            ));
        }
    }
    for s in slots {
        // A process that died without updating its slot (FATAL at connect, SIGKILL) shows as such.
        let alive = s.pid != 0 && unsafe { !pg_sys::BackendPidGetProc(s.pid).is_null() };
        let state = if s.pid != 0 && !alive {
            format!("exited unexpectedly (was: {})", s.state)
        } else {
            s.state.to_string()
        };
        rows.push((
            s.name.to_string(),
            s.kind.as_str().to_string(),
            opt(&s.database),
            alive.then_some(s.pid),
            state,
            ts(s.started_at),
            ts(s.last_run_at),
            s.runs as i64,
            s.errors as i64,
            opt(&s.last_error),
            ts(s.last_error_at),
            s.starts as i32,
        ));
    }
    TableIterator::new(rows)
}

/// This instance's identity: what pgops reports in HBA headers and etcd keys.
#[pg_extern(stable, parallel_safe)]
fn instance() -> TableIterator<
    'static,
    (
        name!(cluster, String),
        name!(instance, String),
        name!(role, String),
        name!(hostname, String),
        name!(preloaded, bool),
    ),
> {
    let (cluster, instance, host) = identity::current();
    let role = identity::role_name(unsafe { pg_sys::RecoveryInProgress() }).to_string();
    TableIterator::once((cluster, instance, role, host, shmem::preloaded()))
}

/// Which pgops version a database has (JSON null: not installed).
fn inventory() -> dbworker::Task {
    dbworker::Task::Query {
        label: "inventory".into(),
        sql: "SELECT to_jsonb((SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'pgops'))".into(),
        args: vec![],
        rows: false,
        closed: false,
    }
}

/// Where pgops is installed: one per-database worker per connectable database reports the
/// installed version (NULL: not installed). Needs preload.
#[pg_extern(volatile, parallel_unsafe)]
fn installations() -> TableIterator<
    'static,
    (
        name!(database, String),
        name!(installed_version, Option<String>),
        name!(error, Option<String>),
    ),
> {
    if !shmem::preloaded() {
        fail(
            Code::ObjectNotInPrerequisiteState,
            "pgops.installations() needs pgops in shared_preload_libraries",
            "It starts a worker in each database. Add pgops to shared_preload_libraries and restart the server.",
        );
    }
    let databases: Vec<String> = Spi::connect(|client| {
        client
            .select(
                "SELECT datname::text FROM pg_catalog.pg_database \
                 WHERE datallowconn AND NOT datistemplate ORDER BY datname",
                None,
                &[],
            )?
            .map(|row| row.get::<String>(1).map(|v| v.unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()
    })
    .unwrap_or_else(|e| crate::internal!("pgops.installations(): cannot list databases: {e}"));
    let jobs: Vec<(String, dbworker::Task)> = databases.into_iter().map(|db| (db, inventory())).collect();
    let rows: Vec<_> = jobs
        .iter()
        .zip(dbworker::run_many(&jobs, crate::gucs::parallel_reads()))
        .map(|((db, _), r)| match r {
            Ok(v) => (db.clone(), v.as_str().map(str::to_string), None),
            Err(e) => (db.clone(), None, Some(e.one_line())),
        })
        .collect();
    TableIterator::new(rows)
}

/// The settings SECURITY DEFINER functions of the extension carry as SET clauses (the install
/// script applies them; see `worker::session`).
#[pg_extern(immutable, parallel_safe)]
fn _function_pins() -> TableIterator<'static, (name!(name, String), name!(value, String))> {
    TableIterator::new(
        super::session::function_pins()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    )
}
