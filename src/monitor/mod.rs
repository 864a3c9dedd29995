//! Monitoring views for Grafana: XID/MXID ages (SQL views), xmin-horizon blockers (SQL view), and
//! the wraparound forecast from XID samples the launcher's turns take (`sampler`; pure forecast
//! + thin SQL function).

pub mod api;
pub mod bloat_api;
pub mod sampler;
pub use pgops_core::monitor::{bloat, forecast, samples};

/// Registers the XID sampling (its ring and its launcher turn). Call from `_PG_init`.
pub fn init(preloading: bool) {
    if preloading {
        sampler::init();
    }
}

// This capability's SQL (tables, views, triggers, grants), after the functions it names
// (`requires` paths are pgrx's: matched against each function's module path).
pgrx::extension_sql_file!(
    "../../sql/monitor.sql",
    name = "monitor_views",
    requires = [
        monitor::api::_wraparound_forecast,
        monitor::sampler::_xid_samples,
        monitor::bloat_api::_table_bloat,
        monitor::bloat_api::_index_bloat,
        monitor::bloat_api::verify_bloat
    ]
);
