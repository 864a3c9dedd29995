//! Publishing the instance's state to etcd.
//!
//! Pure Rust, in the core crate (`pgops_core::etcd`, re-exported here): the client over etcd's JSON gateway (`client`), the member document, its key and the
//! push/backoff decisions (`state`), the lease-keeping session (`session`), the settings check
//! (`config`), the status board (`status`) and the I/O thread (`io`). PostgreSQL-facing and thin:
//! the state queries (`collect`), the worker loop (`worker`) and the SQL functions (`api`). Only
//! the worker's I/O thread talks to etcd.

pub mod api;
pub mod board;
pub mod worker;

/// The etcd capability's shared memory and static worker. Call from `_PG_init`.
pub fn init(preloading: bool) {
    if preloading {
        board::init();
    }
    worker::declare(preloading);
}
pub use pgops_core::etcd::{client, collect, config, io, session, state, status};

// This capability's SQL (tables, views, triggers, grants), after the functions it names
// (`requires` paths are pgrx's: matched against each function's module path).
pgrx::extension_sql_file!(
    "../../sql/etcd.sql",
    name = "etcd_views",
    requires = [
        etcd::api::_etcd_status,
        etcd::api::etcd_push_now,
        etcd::api::cluster_members
    ]
);
