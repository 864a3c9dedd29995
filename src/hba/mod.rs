//! pg_hba.conf from a config table: rules and aliases (Pigsty's vocabulary), render, lint,
//! validate-then-reload with rollback, and a simulator that says which line a connection hits.
//!
//! line (parse, match) + rules (aliases, render) + lint + stamp are pure; api does SPI and file
//! I/O; follow is the launcher's turn that re-renders the file after a role change or a copy.

pub mod api;
pub mod follow;
pub use pgops_core::hba::{file, line, lint, rules, stamp};

/// Registers the launcher's turn that follows the instance's role. Call from `_PG_init`.
pub fn init(preloading: bool) {
    if preloading {
        crate::worker::launcher::register_turn(&follow::TURN);
    }
}

// This capability's SQL (tables, views, triggers, grants), after the functions it names
// (`requires` paths are pgrx's: matched against each function's module path).
pgrx::extension_sql_file!(
    "../../sql/hba.sql",
    name = "hba_tables",
    requires = [
        hba::api::_check_hba_rule,
        hba::api::_check_hba_rule_old,
        hba::api::_check_hba_alias,
        hba::api::_apply_hba,
        hba::api::_hba_lint,
        hba::api::_hba_drift,
        hba::api::render_hba,
        hba::api::hba_match,
        hba::api::load_hba_rules,
        hba::api::load_pigsty_hba_defaults
    ]
);
