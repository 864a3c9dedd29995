//! pg_hba.conf from a config table: rules and aliases (Pigsty's vocabulary), render, lint,
//! validate-then-reload with rollback, and a simulator that says which line a connection hits.
//!
//! line (parse, match) + rules (aliases, render) + lint are pure; api does SPI and file I/O.

pub mod api;
pub use pgops_core::hba::{line, lint, rules};
