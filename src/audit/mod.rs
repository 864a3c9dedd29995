//! The security audit: the seeds' hardening practices as live checks (`pgops.security_audit`).
//!
//! The checks themselves are SQL (sql/security.sql: each reads what a DBA would read, with the
//! caller's privileges, and says `unknown` where the caller may not look). Rust supplies what SQL
//! cannot do well: the file system as the server sees it (certificate, key and directory modes)
//! and text heuristics (inline secrets, NULL ciphers), each pure and unit-tested.

pub mod api;
pub use pgops_core::audit::{files, text};

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
        audit::api::_audit_files
    ]
);
