//! Background-worker backbone: the launcher (static), per-database workers (dynamic), their
//! status board and the XID sample ring in shared memory, and the SQL views over them.

pub mod api;
pub mod dbworker;
pub mod launcher;
pub use pgops_core::worker::registry;
pub mod session;
pub mod shmem;
pub mod statics;
pub mod xact;
