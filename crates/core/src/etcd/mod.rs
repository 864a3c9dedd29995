//! Publishing to etcd, the deciding part: the client over etcd's JSON gateway (`client`), the
//! member document, its key and the push/backoff decisions (`state`), the lease-keeping session
//! (`session`), the settings check (`config`), the status board (`status`), the I/O thread (`io`)
//! and the state queries with the document built from them (`collect`).

pub mod client;
pub mod collect;
pub mod config;
pub mod io;
pub mod session;
pub mod state;
pub mod status;
#[cfg(test)]
pub mod testing;
