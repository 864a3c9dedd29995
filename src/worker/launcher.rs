//! The launcher: one static background worker, started with the postmaster.
//!
//! Each turn it samples the XID counters when a sample is due and checks that the extension
//! exists in its database (it starts before anyone runs `CREATE EXTENSION`, and work that reads
//! pgops' tables waits for it). A turn that fails is caught, logged, recorded in
//! `pgops.workers`, and the loop goes on. SIGTERM ends it at once; it then exits with status 1,
//! so `pg_terminate_backend()` or a crash has the postmaster start it again after
//! `pgops.launcher_restart_time` (at shutdown the postmaster starts nothing).

use std::time::Duration;

use pgrx::bgworkers::BackgroundWorker;
use pgrx::prelude::*;

use super::registry::XidSample;
use super::{shmem, xact};
use crate::gucs;

pub const NAME: &str = "pgops launcher";

/// Registers the launcher with the postmaster. Call from `_PG_init` while preloading.
pub fn register() {
    super::statics::register(NAME, "pgops_launcher_main");
}

/// What the launcher knows between turns.
struct Launcher {
    slot: usize,
    database: String,
    /// When the next freeze job is due (the launcher sleeps no longer than that).
    next_freeze: Option<chrono::DateTime<chrono::Utc>>,
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgops_launcher_main(_arg: pg_sys::Datum) {
    let Some((slot, database)) = super::statics::start(NAME) else { return };
    let pid = unsafe { pg_sys::MyProcPid };
    if !shmem::any_dynamic_running() {
        super::dbworker::remove_leftover_files();
    }
    log!("pgops launcher started (database \"{database}\", pid {pid})");

    let mut me = Launcher {
        slot,
        database,
        next_freeze: None,
    };
    loop {
        if BackgroundWorker::sighup_received() {
            // pgrx's handler only raises a flag: re-reading the configuration is ours to do.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            let wanted = gucs::database();
            if wanted != me.database {
                log!(
                    "pgops launcher: pgops.database changed from \"{}\" to \"{wanted}\"; restarting to reconnect",
                    me.database
                );
                exit_for_restart(&me, "restarting: pgops.database changed");
            }
        }
        me.turn();
        let sleep = me.sleep_time();
        if !BackgroundWorker::wait_latch(Some(sleep)) {
            break;
        }
    }
    exit_for_restart(&me, "stopped (SIGTERM)");
}

fn exit_for_restart(me: &Launcher, state: &str) -> ! {
    super::statics::exit(me.slot, state)
}

impl Launcher {
    fn turn(&mut self) {
        let now = xact::now();
        let result = self
            .sample_if_due(now)
            .and_then(|()| self.check_extension())
            .and_then(|state| {
                // Freeze jobs live in pgops' tables: only once installed, and only on a primary.
                if !state.starts_with("idle (pgops") || unsafe { pg_sys::RecoveryInProgress() } {
                    return Ok(state);
                }
                self.next_freeze = crate::freeze::launcher::run_turn()?;
                Ok(state)
            });
        shmem::with_slot(self.slot, |s| {
            s.runs += 1;
            s.last_run_at = now;
            match &result {
                Ok(state) => s.set_state(state),
                Err(e) => {
                    s.record_error(e, now);
                    s.set_state("idle (last turn failed)");
                }
            }
        });
        if let Err(e) = result {
            log!("pgops launcher: turn failed: {e}");
        }
    }

    /// Samples the next XID and MXID into the ring. Reads shared counters only: no transaction,
    /// no XID consumed.
    fn sample_if_due(&self, now: i64) -> Result<(), String> {
        let Some(ring) = shmem::samples() else { return Ok(()) };
        let interval_us = gucs::sample_interval_ms() * 1000;
        if !ring.share().due(now, interval_us) {
            return Ok(());
        }
        let sample = unsafe {
            XidSample {
                sampled_at: now,
                next_xid: pg_sys::ReadNextFullTransactionId().value,
                next_mxid: pg_sys::ReadNextMultiXactId().into(),
            }
        };
        ring.exclusive().push(sample);
        Ok(())
    }

    /// One short transaction: is pgops installed here? Returns the state to show.
    fn check_extension(&self) -> Result<String, String> {
        let database = self.database.clone();
        xact::run("pgops launcher: check extension", move || {
            if gucs::debug_launcher_error() {
                // A real ERROR raised inside the transaction, to exercise the recovery path.
                error!("injected launcher error (pgops.debug_launcher_error is on)");
            }
            let version = crate::spi::get_one::<String>(
                "SELECT (SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'pgops')",
            )?;
            Ok(match version {
                Some(v) => format!("idle (pgops {v})"),
                None => format!("waiting: CREATE EXTENSION pgops in database \"{database}\""),
            })
        })
    }

    fn sleep_time(&self) -> Duration {
        let mut naptime = gucs::naptime();
        if let Some(next) = self.next_freeze {
            let until = (next - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::from_millis(10));
            naptime = naptime.min(until.max(Duration::from_millis(10)));
        }
        let Some(ring) = shmem::samples() else { return naptime };
        let until_sample = ring.share().until_due(xact::now(), gucs::sample_interval_ms() * 1000);
        naptime.min(Duration::from_micros(until_sample.max(1_000) as u64))
    }
}
