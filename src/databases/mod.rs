//! Declared databases (Pigsty's `pg_databases`): config table, plan, apply, drift, pgbouncer.
//!
//! model (pure) + live (catalog, and each database's schemas and extensions read in it) → plan
//! (pure) → api (execute: CREATE / DROP DATABASE at top level in a worker, the rest in
//! transactions, inside a database in a worker connected to it).

pub mod api;
pub mod inside;
pub use pgops_core::databases::{model, plan};

/// Registers the worker's handler for the work inside a database. Call from `_PG_init` (in every
/// process that loads pgops: the worker looks its task up by name).
pub fn init() {
    crate::worker::dbworker::register_handler(&inside::HANDLER);
}

pgrx::extension_sql_file!(
    "../../sql/databases.sql",
    name = "databases_tables",
    requires = [
        databases::api::_check_database,
        databases::api::plan_databases,
        databases::api::apply_databases,
        databases::api::load_databases,
        databases::api::export_databases,
        databases::api::_database_drift,
        databases::api::_database_drift_summary
    ]
);
