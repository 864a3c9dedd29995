//! Declarative roles, memberships, role settings and default privileges.
//!
//! model (desired, pure) + live (catalog, plain data) → plan (pure) → api (execute, thin).

pub mod api;
pub mod catalog;
pub use pgops_core::roles::{attributes, live, model, plan, scram};

/// Registers the task handler that reads a database's snapshot for the planner in its own worker.
/// Call from `_PG_init`.
pub fn init() {
    crate::worker::dbworker::register_handler(&catalog::SNAPSHOT_HANDLER);
}

// This capability's SQL (tables, views, triggers, grants), after the functions it names
// (`requires` paths are pgrx's: matched against each function's module path).
pgrx::extension_sql_file!(
    "../../sql/roles.sql",
    name = "roles_tables",
    requires = [
        roles::api::_check_role,
        roles::api::_check_default_privilege,
        roles::api::_role_drift,
        roles::api::_role_drift_summary,
        roles::api::plan_roles,
        roles::api::apply_roles,
        roles::api::load_roles,
        roles::api::set_password,
        roles::api::load_default_privileges,
        roles::api::load_pigsty_baseline,
        roles::api::export_roles
    ]
);
