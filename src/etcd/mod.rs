//! Publishing the instance's state to etcd: the client over etcd's JSON gateway (pure Rust,
//! network only; used by worker processes).

pub mod client;
