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
