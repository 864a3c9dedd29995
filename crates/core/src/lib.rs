//! pgops-core: everything in pgops that decides, as plain Rust with plain inputs — no PostgreSQL,
//! no pgrx. A planner takes two structs and returns statements; a renderer takes rules and returns
//! text; the etcd client takes bytes and returns bytes. `cargo test -p pgops-core` runs in seconds
//! without PostgreSQL installed (the etcd tests start a loopback etcd when one is installed).
//!
//! The extension crate (the repository root) is the glue: it reads the catalog and settings into
//! these types, runs what they decide, and re-exports these modules at the same paths
//! (`crate::roles::plan` there is `pgops_core::roles::plan`).

pub mod audit;
pub mod databases;
pub mod error;
pub mod etcd;
pub mod fleet;
pub mod freeze;
pub mod hba;
pub mod identity;
pub mod monitor;
pub mod patroni;
pub mod pigsty;
pub mod reconcile;
pub mod risk;
pub mod roles;
pub mod sqltext;
pub mod worker;
