//! Declarative roles, memberships, role settings and default privileges.
//!
//! model (desired, pure) + live (catalog, plain data) → plan (pure) → api (execute, thin).

pub mod api;
pub mod catalog;
pub use pgops_core::roles::{live, model, plan, scram};
