//! The etcd status board in shared memory: what the etcd worker last did and what SQL functions
//! ask of it (`status::EtcdStatus`, pure, in the core crate).

use pgrx::lwlock::PgLwLock;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;

use super::status::EtcdStatus;
use crate::worker::shmem::{self, Shared};

// SAFETY: fixed-size data (integers, enums, heapless strings) with no pointers.
unsafe impl PGRXSharedMemory for Shared<EtcdStatus> {}

static ETCD: PgLwLock<Shared<EtcdStatus>> = unsafe { PgLwLock::new(c"pgops_etcd_status") };

/// Requests the board. Call from `_PG_init` while preloading.
pub fn init() {
    pgrx::pg_shmem_init!(ETCD);
}

/// The board; None when pgops is not preloaded.
pub fn board() -> Option<&'static PgLwLock<Shared<EtcdStatus>>> {
    shmem::preloaded().then_some(&ETCD)
}
