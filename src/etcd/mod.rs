//! Publishing the instance's state to etcd: the client over etcd's JSON gateway and the member
//! document, its key and the push/backoff decisions (pure Rust; network only from worker
//! processes).

pub mod client;
pub mod state;
