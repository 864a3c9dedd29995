//! What the static workers (the launcher, the etcd worker) share: registration with the
//! postmaster, the start of their main function, and the exit that has them restarted.

use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::prelude::*;

use super::{shmem, xact};
use crate::gucs;

/// The static workers the capabilities declared (names), in declaration order.
static DECLARED: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

/// Declares a static worker (so `pgops.workers` lists it, running or not) and, while preloading,
/// registers it with the postmaster: started once the server is consistent, restarted
/// `pgops.launcher_restart_time` after it exits with status 1. Call from `_PG_init`.
pub fn declare(name: &'static str, function: &str, preloading: bool) {
    {
        let mut all = DECLARED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if all.contains(&name) {
            return;
        }
        all.push(name);
    }
    if preloading {
        BackgroundWorkerBuilder::new(name)
            .set_type(name)
            .set_library("pgops")
            .set_function(function)
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::ConsistentState)
            .set_restart_time(Some(Duration::from_secs(gucs::launcher_restart_secs())))
            .load();
    }
}

/// The names of the declared static workers.
pub fn declared() -> Vec<&'static str> {
    DECLARED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// The start of a static worker's main function: SIGHUP/SIGTERM handlers (they only set flags
/// and the latch), its slot on the status board, a connection to `pgops.database`, and its name
/// as application_name. Returns the slot and the database, or None (after a log line) when the
/// board has no free slot.
pub fn start(name: &str) -> Option<(usize, String)> {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = gucs::database();
    // SAFETY: set by the postmaster before the worker's main function runs.
    let pid = unsafe { pg_sys::MyProcPid };
    let Some(slot) = shmem::registry().and_then(|r| r.exclusive().claim_static(name, &database, pid, xact::now()))
    else {
        // Cannot happen with 32 slots and two static workers; refuse to run blind rather than crash.
        server_log!("{name}: no free status slot in shared memory; exiting");
        return None;
    };
    let unpinned = super::session::pin_before_connect();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    if !unpinned.is_empty() {
        server_log!("{name}: could not pin {} (see the WARNINGs above)", unpinned.join(", "));
    }
    if let Err(e) = super::session::after_connect() {
        server_log!("{name}: {e}; exiting");
        shmem::with_slot(slot, |s| s.record_error(&e, xact::now()));
        exit(slot, "failed: unsafe session");
    }
    let app = std::ffi::CString::new(name).unwrap_or_default();
    // SAFETY: a NUL-terminated string, copied by PostgreSQL.
    unsafe { pg_sys::pgstat_report_appname(app.as_ptr()) };
    Some((slot, database))
}

/// Records `state`, clears the pid and exits with status 1: the postmaster restarts the worker
/// after `pgops.launcher_restart_time`, unless the server is shutting down.
pub fn exit(slot: usize, state: &str) -> ! {
    shmem::with_slot(slot, |s| {
        s.set_state(state);
        s.pid = 0;
    });
    // (proc_exit is declared noreturn in some versions' bindings only.)
    #[allow(unreachable_code)]
    {
        unsafe { pg_sys::proc_exit(1) };
        unreachable!("proc_exit does not return")
    }
}
