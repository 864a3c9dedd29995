//! The backbone's shared memory: the workers' status board, and the `Shared<T>` wrapper with which
//! capabilities keep their own structures there (each allocates its own from its `init`).
//! Allocated only when pgops is preloaded; every accessor returns `None` otherwise, so SQL
//! functions can say "not running" instead of failing.
//!
//! Locking rule: a guard is held only to copy data in or out — never across SPI, HTTP, a latch
//! wait, or anything else that can block or raise an error.

use std::sync::atomic::{AtomicBool, Ordering};

use pgrx::lwlock::PgLwLock;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use pgrx::{pg_shmem_init, pg_sys};

use super::registry::Registry;

/// A core type kept in shared memory. (The marker trait is pgrx's and the types are the core
/// crate's, so the impls go on this wrapper; it derefs to the type.)
#[derive(Clone, Default)]
#[repr(transparent)]
pub struct Shared<T>(pub T);

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

// SAFETY (this impl and the capabilities'): plain fixed-size data — integers, enums, heapless
// strings and deques (heapless pinned to an exact version in the core crate's Cargo.toml) — with
// no pointers, so any process that maps the segment sees valid values.
unsafe impl PGRXSharedMemory for Shared<Registry> {}

static REGISTRY: PgLwLock<Shared<Registry>> = unsafe { PgLwLock::new(c"pgops_worker_registry") };

/// Set in `_PG_init` under preload; inherited by every process the postmaster forks.
static PRELOADED: AtomicBool = AtomicBool::new(false);

/// Requests the shared memory. Call only from `_PG_init` while preloading.
pub fn init() {
    pg_shmem_init!(REGISTRY);
    PRELOADED.store(true, Ordering::Relaxed);
}

pub fn preloaded() -> bool {
    PRELOADED.load(Ordering::Relaxed)
}

pub fn registry() -> Option<&'static PgLwLock<Shared<Registry>>> {
    preloaded().then_some(&REGISTRY)
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
