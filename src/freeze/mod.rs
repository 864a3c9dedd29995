//! Scheduled VACUUM FREEZE: job schedules (pure), the plan (pure), the executor that runs in a
//! per-database worker, and the launcher's side (due jobs, progress, history).

pub mod api;
pub mod exec;
pub mod launcher;
pub use pgops_core::freeze::{plan, schedule};

/// Registers the freeze worker's task handler and the scheduler's launcher turn. Call from
/// `_PG_init` (the handler also in processes that load pgops without preload).
pub fn init(preloading: bool) {
    crate::worker::dbworker::register_handler(&exec::HANDLER);
    if preloading {
        crate::worker::launcher::register_turn(&launcher::TURN);
    }
}

// This capability's SQL (tables, views, triggers, grants), after the functions it names
// (`requires` paths are pgrx's: matched against each function's module path).
pgrx::extension_sql_file!(
    "../../sql/freeze.sql",
    name = "freeze_tables",
    requires = [
        freeze::api::_check_freeze_job,
        freeze::api::_freeze_next_run,
        freeze::api::freeze_plan,
        freeze::api::run_freeze,
        freeze::api::cancel_freeze
    ]
);
