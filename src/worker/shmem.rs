//! Shared-memory statics. Allocated only when pgops is preloaded; every accessor returns `None`
//! otherwise, so SQL functions can say "not running" instead of failing.
//!
//! Locking rule: a guard is held only to copy data in or out — never across SPI, HTTP, a latch
//! wait, or anything else that can block or raise an error.

use std::sync::atomic::{AtomicBool, Ordering};

use pgrx::lwlock::PgLwLock;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use pgrx::{pg_shmem_init, pg_sys};

use super::registry::{Registry, SampleRing};
use crate::etcd::status::EtcdStatus;

// SAFETY (both impls): plain fixed-size data — integers, enums, heapless strings and deques
// (heapless pinned to an exact version in Cargo.toml) — with no pointers, so any process that
// maps the segment sees valid values.
unsafe impl PGRXSharedMemory for Registry {}
unsafe impl PGRXSharedMemory for SampleRing {}
unsafe impl PGRXSharedMemory for EtcdStatus {}

static REGISTRY: PgLwLock<Registry> = unsafe { PgLwLock::new(c"pgops_worker_registry") };
static SAMPLES: PgLwLock<SampleRing> = unsafe { PgLwLock::new(c"pgops_xid_samples") };
static ETCD: PgLwLock<EtcdStatus> = unsafe { PgLwLock::new(c"pgops_etcd_status") };

/// Set in `_PG_init` under preload; inherited by every process the postmaster forks.
static PRELOADED: AtomicBool = AtomicBool::new(false);

/// Requests the shared memory. Call only from `_PG_init` while preloading.
pub fn init() {
    pg_shmem_init!(REGISTRY);
    pg_shmem_init!(SAMPLES);
    pg_shmem_init!(ETCD);
    PRELOADED.store(true, Ordering::Relaxed);
}

pub fn preloaded() -> bool {
    PRELOADED.load(Ordering::Relaxed)
}

pub fn registry() -> Option<&'static PgLwLock<Registry>> {
    preloaded().then_some(&REGISTRY)
}

pub fn samples() -> Option<&'static PgLwLock<SampleRing>> {
    preloaded().then_some(&SAMPLES)
}

pub fn etcd() -> Option<&'static PgLwLock<EtcdStatus>> {
    preloaded().then_some(&ETCD)
}

/// Runs `f` on one slot under the exclusive lock (no-op when not preloaded).
pub fn with_slot<R>(idx: usize, f: impl FnOnce(&mut super::registry::Slot) -> R) -> Option<R> {
    let reg = registry()?;
    let mut guard = reg.exclusive();
    guard.slots.get_mut(idx).map(f)
}

/// True while some dynamic worker's slot is claimed and not finished.
pub fn any_dynamic_running() -> bool {
    registry().is_some_and(|r| {
        r.share()
            .in_use()
            .any(|s| s.kind == super::registry::Kind::Dynamic && !s.finished)
    })
}
