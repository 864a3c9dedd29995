//! Scheduled VACUUM FREEZE: job schedules (pure), the plan (pure), the executor that runs in a
//! per-database worker, and the launcher's side (due jobs, progress, history).

pub mod api;
pub mod exec;
pub mod launcher;
pub use pgops_core::freeze::{plan, schedule};
