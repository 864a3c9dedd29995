//! Dynamic per-database workers.
//!
//! A background worker connects to one database for its whole life, so work in another database
//! (default privileges, REASSIGN OWNED, VACUUM) runs in a worker started for it. The starter
//! claims a slot on the status board, writes the task (JSON) into the slot's mailbox, and starts
//! the worker with the slot index and generation as its argument; the worker connects, runs the
//! task in its own transaction, writes the result (JSON) back, and exits. It is never restarted.

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{shmem, xact};

/// What a per-database worker does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Task {
    /// Report the pgops version installed in the database (null when it is not installed).
    Inventory,
}

impl Task {
    pub fn label(&self) -> &'static str {
        match self {
            Task::Inventory => "inventory",
        }
    }
}

/// Packs a slot index and its generation into the worker's argument.
pub fn pack(idx: usize, generation: u32) -> i64 {
    ((idx as i64) << 32) | generation as i64
}

pub fn unpack(arg: i64) -> (usize, u32) {
    ((arg >> 32) as usize, (arg & 0xffff_ffff) as u32)
}

/// Starts a worker for `task` in `database` and waits for it to finish; returns its result.
/// Callable from a backend or from the launcher. Interruptible (statement_timeout, cancel).
pub fn run_and_wait(database: &str, task: &Task) -> Result<Value, String> {
    let registry = shmem::registry()
        .ok_or("per-database workers need pgops in shared_preload_libraries (then a server restart)")?;
    let name = format!("pgops {}", task.label());
    let task_json = serde_json::to_string(task).map_err(|e| e.to_string())?;
    let (idx, generation) = registry
        .exclusive()
        .claim_dynamic(&name, database, &task_json, xact::now())
        .ok_or("all pgops worker slots are busy; try again when running workers finish")?;

    let started = BackgroundWorkerBuilder::new(&format!("pgops {} in {}", task.label(), database))
        .set_type("pgops database worker")
        .set_library("pgops")
        .set_function("pgops_db_worker_main")
        .set_argument(Some(pack(idx, generation).into_datum().expect("an i64 is a datum")))
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .set_notify_pid(unsafe { pg_sys::MyProcPid })
        .load_dynamic();
    let handle = match started {
        Ok(h) => h,
        Err(_) => {
            registry.exclusive().release(idx, generation);
            return Err(format!(
                "could not start a worker for database \"{database}\": no free background worker slot \
                 (raise max_worker_processes)"
            ));
        }
    };
    let status = match handle.wait_for_shutdown() {
        Ok(()) => "stopped".to_string(),
        Err(s) => format!("{s:?}"),
    };
    let mut reg = registry.exclusive();
    let Some(slot) = reg.dynamic_slot(idx, generation) else {
        return Err("the worker's status slot was taken over while it ran".into());
    };
    if !slot.finished {
        // It died before reporting: could not connect (database dropped, connection limit) or crashed.
        let why =
            format!("the worker for database \"{database}\" exited before finishing ({status}); see the server log");
        let now = xact::now();
        slot.record_error(&why, now);
        slot.set_state("failed");
        slot.finished = true;
        slot.pid = 0;
        slot.last_run_at = now;
        return Err(why);
    }
    if slot.last_error_at != 0 && slot.errors > 0 {
        return Err(slot.last_error.to_string());
    }
    serde_json::from_str(slot.result.as_str()).map_err(|e| format!("unreadable worker result: {e}"))
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgops_db_worker_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    let (idx, generation) = unpack(arg.value() as i64);
    let pid = unsafe { pg_sys::MyProcPid };
    let claimed = shmem::registry().and_then(|r| {
        let mut reg = r.exclusive();
        let slot = reg.dynamic_slot(idx, generation)?;
        slot.pid = pid;
        slot.set_state("connecting");
        Some((slot.database.to_string(), slot.task.to_string()))
    });
    let Some((database, task_json)) = claimed else {
        log!("pgops database worker: slot {idx} generation {generation} is not mine; exiting");
        return;
    };
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    shmem::with_slot(idx, |s| s.set_state("running"));

    let outcome = match serde_json::from_str::<Task>(&task_json) {
        Ok(task) => xact::run(&format!("pgops {}", task.label()), || execute(&task)),
        Err(e) => Err(format!("unknown task {task_json}: {e}")),
    };
    let now = xact::now();
    if let Err(e) = &outcome {
        log!("pgops database worker in \"{database}\": {e}");
    }
    shmem::registry().map(|r| {
        let mut reg = r.exclusive();
        if let Some(slot) = reg.dynamic_slot(idx, generation) {
            slot.runs += 1;
            slot.last_run_at = now;
            slot.pid = 0;
            slot.finished = true;
            match &outcome {
                Ok(v) => {
                    super::registry::set_text(&mut slot.result, &v.to_string());
                    slot.set_state("done");
                }
                Err(e) => {
                    slot.record_error(e, now);
                    slot.set_state("failed");
                }
            }
        }
    });
}

/// Runs one task inside the worker's transaction.
fn execute(task: &Task) -> anyhow::Result<Value> {
    match task {
        Task::Inventory => {
            let version = Spi::get_one::<String>(
                "SELECT (SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'pgops')",
            )?;
            let database = Spi::get_one::<String>("SELECT current_database()::text")?;
            Ok(json!({ "database": database, "extversion": version }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_round_trips_slot_and_generation() {
        for (idx, generation) in [(0usize, 1u32), (31, u32::MAX), (7, 0)] {
            assert_eq!(unpack(pack(idx, generation)), (idx, generation));
        }
    }

    #[test]
    fn tasks_are_tagged_json() {
        let s = serde_json::to_string(&Task::Inventory).unwrap();
        assert_eq!(s, r#"{"task":"inventory"}"#);
        assert_eq!(serde_json::from_str::<Task>(&s).unwrap(), Task::Inventory);
        assert!(serde_json::from_str::<Task>(r#"{"task":"nope"}"#).is_err());
    }
}
