//! The worker backbone's data: the status board (`registry`, kept in shared memory by the
//! extension) and the pinned-session decisions (`session`).

pub mod registry;
pub mod session;
