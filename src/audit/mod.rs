//! The security audit: the seeds' hardening practices as live checks (`pgops.security_audit`).
//!
//! The checks themselves are SQL (sql/security.sql: each reads what a DBA would read, with the
//! caller's privileges, and says `unknown` where the caller may not look). Rust supplies what SQL
//! cannot do well: the file system as the server sees it (certificate, key and directory modes)
//! and text heuristics (inline secrets, NULL ciphers), each pure and unit-tested.

pub mod api;
pub mod history;
pub use pgops_core::audit::{files, text};

/// Adds the score's recording to the launcher's turns. Call from `_PG_init` while preloading.
pub fn init(preloading: bool) {
    if preloading {
        crate::worker::launcher::register_turn(&history::TURN);
    }
}

// This capability's SQL (tables, views, triggers, grants), after the functions it names
// (`requires` paths are pgrx's: matched against each function's module path).
pgrx::extension_sql_file!(
    "../../sql/security.sql",
    name = "security_audit",
    requires = [
        "hba_tables",
        "roles_tables",
        audit::api::_inline_secret,
        audit::api::_null_cipher_term,
        audit::api::_audit_files,
        audit::api::_weak_cipher_terms,
        audit::api::_log_line_prefix_missing,
        audit::api::_address_bits,
        audit::api::_is_utc_zone,
        audit::api::_search_path_schemas,
        audit::api::_security_report_render
    ]
);

// The CIS benchmark's controls, the audit view over every check, the score, its history and the
// report (after security.sql: its tables and facts).
pgrx::extension_sql_file!(
    "../../sql/cis.sql",
    name = "security_cis",
    requires = ["security_audit", worker::api::instance]
);
