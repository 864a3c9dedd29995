//! Monitoring views for Grafana: XID/MXID ages (SQL views), xmin-horizon blockers (SQL view), and
//! the wraparound forecast from the launcher's samples (pure forecast + thin SQL function).

pub mod api;
pub mod bloat_api;
pub use pgops_core::monitor::{bloat, forecast};
