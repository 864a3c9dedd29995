//! XID sampling: a ring of the XID/MXID counters in shared memory, filled by a launcher turn hook
//! every `pgops.sample_interval`, read by the wraparound forecast and `pgops.xid_samples`.

use std::time::Duration;

use pgrx::lwlock::PgLwLock;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;

use super::samples::{SampleRing, XidSample};
use crate::gucs;
use crate::pgutil::timestamp as ts;
use crate::worker::launcher::{TurnContext, TurnHook, register_turn};
use crate::worker::shmem::{self, Shared};

// SAFETY: fixed-size data (integers in a heapless deque) with no pointers.
unsafe impl PGRXSharedMemory for Shared<SampleRing> {}

static SAMPLES: PgLwLock<Shared<SampleRing>> = unsafe { PgLwLock::new(c"pgops_xid_samples") };

static SAMPLE: TurnHook = TurnHook {
    name: "XID sampling",
    run: sample_if_due,
};

/// Requests the ring and adds the sampling to the launcher's turns. Call from `_PG_init` while
/// preloading.
pub fn init() {
    pgrx::pg_shmem_init!(SAMPLES);
    register_turn(&SAMPLE);
}

/// The ring; None when pgops is not preloaded.
pub fn ring() -> Option<&'static PgLwLock<Shared<SampleRing>>> {
    shmem::preloaded().then_some(&SAMPLES)
}

/// Samples the next XID and MXID into the ring when a sample is due. Reads shared counters only:
/// no transaction, no XID consumed. Returns the time until the next sample is due.
fn sample_if_due(_ctx: &TurnContext) -> crate::error::Result<Option<Duration>> {
    let Some(ring) = ring() else { return Ok(None) };
    let interval_us = gucs::sample_interval_ms() * 1000;
    // The time of the reading itself (the turn's start may be a while ago).
    let now = crate::worker::xact::now();
    if ring.share().due(now, interval_us) {
        // SAFETY: reads of the shared ID counters, under their own locks.
        let sample = unsafe {
            XidSample {
                sampled_at: now,
                next_xid: pg_sys::ReadNextFullTransactionId().value,
                next_mxid: pg_sys::ReadNextMultiXactId().into(),
            }
        };
        ring.exclusive().push(sample);
    }
    let until = ring.share().until_due(crate::worker::xact::now(), interval_us);
    Ok(Some(Duration::from_micros(until.max(1_000) as u64)))
}

/// Rows of `pgops.xid_samples`, oldest first. Empty without preload.
#[pg_extern(volatile, parallel_unsafe)]
fn _xid_samples() -> TableIterator<
    'static,
    (
        name!(sampled_at, Option<TimestampWithTimeZone>),
        name!(next_xid, i64),
        name!(next_mxid, i64),
    ),
> {
    let samples: Vec<_> = ring()
        .map(|r| r.share().samples.iter().copied().collect())
        .unwrap_or_default();
    TableIterator::new(
        samples
            .into_iter()
            .map(|s| (ts(s.sampled_at), s.next_xid as i64, i64::from(s.next_mxid))),
    )
}
