//! Background-worker backbone: the launcher (static) and its turn hooks, per-database workers
//! (dynamic) running generic tasks and registered handlers, the status board in shared memory,
//! and the SQL views over them. It names no capability: capabilities register with it from their
//! `init` (shared memory, static workers, turn hooks, task handlers).

pub mod api;
pub mod dbworker;
pub mod launcher;
pub use pgops_core::worker::registry;
pub mod session;
pub mod shmem;
pub mod statics;
pub mod toplevel;
pub mod xact;

/// The board, the launcher. Call from `_PG_init` before the capabilities' `init`.
pub fn init(preloading: bool) {
    if preloading {
        shmem::init();
    }
    launcher::declare(preloading);
}

/// SIGTERM seen by a background worker while it waited for per-database workers (pgrx's flag
/// is consumed when read, so it is kept here for the worker's own loop).
static TERM_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once this background worker (the launcher) has received SIGTERM; false in a backend.
pub fn terminating() -> bool {
    // SAFETY: reads this process's background-worker entry (null in a regular backend).
    let bgworker = unsafe { !pgrx::pg_sys::MyBgworkerEntry.is_null() };
    if bgworker && pgrx::bgworkers::BackgroundWorker::sigterm_received() {
        TERM_SEEN.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    TERM_SEEN.load(std::sync::atomic::Ordering::SeqCst)
}
