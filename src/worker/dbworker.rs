//! Dynamic per-database workers.
//!
//! A background worker connects to one database for its whole life, so work in another database
//! (default privileges, REASSIGN OWNED, VACUUM) runs in a worker started for it. The starter
//! claims a slot on the status board, writes the task (JSON) to a file, and starts the worker
//! with the slot index and generation as its argument; the worker connects, runs the task in its
//! own transaction, writes the result (JSON) to a file, marks the slot finished and exits. It is
//! never restarted. Files live in `pg_stat_tmp/` (every server process runs in the data
//! directory; base backups skip that directory), are private to the server's OS user, and are
//! removed by the starter; the launcher removes leftovers at start.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{shmem, xact};
use crate::error::{Code, Context, Error, Result};

/// What a per-database worker does. The backbone knows no capability: a task is SQL to run, or
/// the name of a handler a capability registered (`register_handler`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Task {
    /// One query in one transaction. `sql` is pgops' own constant text (never a caller's): values
    /// go in `args`, bound as jsonb parameters `$1`, `$2`, …. The
    /// result is the query's single jsonb value (JSON null without a row), or with `rows` every
    /// row as a JSON object (column name → value).
    Query {
        label: String,
        sql: String,
        #[serde(default)]
        args: Vec<Value>,
        #[serde(default)]
        rows: bool,
        /// Read a database that accepts no connections (a closed template, a database pgops is
        /// creating): the query is pgops' own and read-only.
        #[serde(default)]
        closed: bool,
    },
    /// Statements in one transaction: all or nothing. The result says which one failed.
    Exec { label: String, statements: Vec<String> },
    /// Utility statements that refuse a transaction block (VACUUM, CREATE DATABASE, …), each run
    /// at top level in turn; the first failure stops the rest. The result says which one failed.
    Utility { label: String, statements: Vec<String> },
    /// A capability's handler (registered under `name`) with its argument.
    Handler { name: String, arg: Value },
}

impl Task {
    /// The worker's name in `pgops.workers` is "pgops <label>".
    /// Whether the worker may enter its database although it accepts no connections
    /// (`BGWORKER_BYPASS_ALLOWCONN`): a read-only query that asks to, or a handler registered for
    /// it whose argument says `"closed": true`.
    pub fn enters_closed(&self) -> bool {
        match self {
            Task::Query { closed, .. } => *closed,
            Task::Handler { name, arg } => {
                handler(name).is_some_and(|h| h.enters_closed_databases) && arg.get("closed") == Some(&Value::Bool(true))
            }
            _ => false,
        }
    }

    pub fn label(&self) -> String {
        match self {
            Task::Query { label, .. } | Task::Exec { label, .. } | Task::Utility { label, .. } => label.clone(),
            Task::Handler { name, .. } => handler(name).map_or_else(|| name.clone(), |h| h.label.to_string()),
        }
    }
}

/// A task a capability runs in a per-database worker, registered by the capability's `init`
/// (called from `_PG_init`, so every pgops process knows it).
pub struct Handler {
    /// What `Task::Handler` names.
    pub name: &'static str,
    /// Shown in `pgops.workers` as "pgops <label>".
    pub label: &'static str,
    /// The handler opens and ends its own transactions (it runs top-level statements, see
    /// `worker::toplevel`); otherwise the worker runs it inside one transaction.
    pub own_transactions: bool,
    /// The handler works in databases that accept no connections yet (pgops creating one).
    pub enters_closed_databases: bool,
    /// Runs the task: its argument and the worker's files; returns the result (any JSON).
    pub run: fn(&Value, &Files) -> Result<Value>,
}

static HANDLERS: std::sync::Mutex<Vec<&'static Handler>> = std::sync::Mutex::new(Vec::new());

/// Makes `handler` runnable as `Task::Handler { name: handler.name, .. }`. Registering a name
/// twice keeps the first.
pub fn register_handler(handler: &'static Handler) {
    let mut all = HANDLERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !all.iter().any(|h| h.name == handler.name) {
        all.push(handler);
    }
}

fn handler(name: &str) -> Option<&'static Handler> {
    let all = HANDLERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    all.iter().find(|h| h.name == name).copied()
}

/// The files of one worker: what a handler may read and write besides its result.
pub struct Files {
    idx: usize,
    generation: u32,
}

impl Files {
    pub fn of(idx: usize, generation: u32) -> Files {
        Files { idx, generation }
    }

    /// Where the worker appends progress lines for its starter to follow.
    pub fn progress(&self) -> PathBuf {
        file(self.idx, self.generation, "progress")
    }

    /// True once the starter asked the worker to stop (`request_cancel`).
    pub fn cancel_requested(&self) -> bool {
        file(self.idx, self.generation, "cancel").exists()
    }

    /// Asks the worker to stop at its next check (a handler decides where it checks).
    pub fn request_cancel(&self) {
        let _ = write_private(&file(self.idx, self.generation, "cancel"), b"{}");
    }
}

/// Packs a slot index and its generation into the worker's argument.
pub fn pack(idx: usize, generation: u32) -> i64 {
    ((idx as i64) << 32) | generation as i64
}

pub fn unpack(arg: i64) -> (usize, u32) {
    ((arg >> 32) as usize, (arg & 0xffff_ffff) as u32)
}

const FILE_DIR: &str = "pg_stat_tmp";
const FILE_PREFIX: &str = "pgops.";

fn file(idx: usize, generation: u32, what: &str) -> PathBuf {
    PathBuf::from(FILE_DIR).join(format!("{FILE_PREFIX}{idx}.{generation}.{what}.json"))
}

fn write_private(path: &PathBuf, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// Removes task and result files left by workers of a previous server life.
pub fn remove_leftover_files() {
    if let Ok(entries) = std::fs::read_dir(FILE_DIR) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(FILE_PREFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Removes a worker's files (task, result, progress, cancel) once its starter is done with it,
/// and marks its slot collected: from then on it may be handed to another worker.
pub fn remove_files(idx: usize, generation: u32) {
    for what in ["task", "result", "progress", "cancel"] {
        let _ = std::fs::remove_file(file(idx, generation, what));
    }
    if let Some(registry) = shmem::registry() {
        if let Some(slot) = registry.exclusive().dynamic_slot(idx, generation) {
            slot.collected = true;
        }
    }
}

/// Starts a worker for `task` in `database` without waiting for it: returns its slot and
/// generation, to `poll` later. For long tasks run by the launcher.
pub fn start(database: &str, task: &Task) -> Result<(usize, u32)> {
    let (idx, generation) = claim(database, task)?;
    match launch(database, task, idx, generation, false) {
        Ok(_) => Ok((idx, generation)),
        Err(e) => {
            remove_files(idx, generation);
            Err(e)
        }
    }
}

/// Where a worker started with `start` stands.
#[derive(Debug, PartialEq)]
pub enum Poll {
    /// Not finished (or not started yet: `since` µs ago it was launched).
    Running { pid: i32, since: i64 },
    /// Finished: its result, or the error it reported.
    Finished(Result<Value>),
    /// Gone without a result (killed, crashed, could not connect), or its slot was reused.
    Died(String),
}

/// How long a launched worker may take to appear before it is declared dead.
const START_GRACE_US: i64 = 60_000_000;

pub fn poll(idx: usize, generation: u32) -> Poll {
    let Some(registry) = shmem::registry() else {
        return Poll::Died("no shared memory".into());
    };
    let now = xact::now();
    let (finished, pid, started_at) = {
        let mut reg = registry.exclusive();
        let Some(slot) = reg.dynamic_slot(idx, generation) else {
            return Poll::Died(
                "its worker is not running on this server (the server restarted, or the run was started on the \
                 primary before a switchover or failover)"
                    .into(),
            );
        };
        (slot.finished, slot.pid, slot.started_at)
    };
    if finished {
        return Poll::Finished(read_result(idx, generation));
    }
    let alive = pid != 0 && unsafe { libc::kill(pid, 0) } == 0;
    if alive || (pid == 0 && now - started_at < START_GRACE_US) {
        return Poll::Running {
            pid,
            since: now - started_at,
        };
    }
    let why = if pid == 0 {
        "the worker never started (max_worker_processes?)".to_string()
    } else {
        format!("the worker (pid {pid}) exited without a result; see the server log")
    };
    if let Some(slot) = registry.exclusive().dynamic_slot(idx, generation) {
        slot.died(&why, now);
    }
    Poll::Died(why)
}

thread_local! {
    /// The latest time a wait for workers may last (`with_deadline`): then the workers are
    /// stopped as on a cancel.
    static DEADLINE: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

fn past_deadline() -> bool {
    DEADLINE.with(|d| d.get().is_some_and(|t| std::time::Instant::now() >= t))
}

/// Runs `f` with every wait for per-database workers in it bounded: past `limit` the workers are
/// stopped (their transactions roll back) and the wait fails as a cancel does. For unattended
/// callers (the launcher's reconcile), so that a lock held elsewhere cannot stall the launcher.
pub fn with_deadline<R>(limit: std::time::Duration, f: impl FnOnce() -> R) -> R {
    let before = DEADLINE.with(|d| d.replace(Some(std::time::Instant::now() + limit)));
    let r = f();
    DEADLINE.with(|d| d.set(before));
    r
}

/// Starts a worker for `task` in `database` and waits for it to finish; returns its result.
/// Callable from a backend or from the launcher. Interruptible (statement_timeout, cancel).
///
/// A cancel, a statement timeout or a termination of the caller while it waits stops the worker
/// first (its transaction rolls back) and only then raises the caller's error: the caller's locks
/// are never released while a worker it started could still commit. The task and result files
/// (which may hold password verifiers) are removed in every outcome.
pub fn run_and_wait(database: &str, task: &Task) -> Result<Value> {
    let (idx, generation) = claim(database, task)?;
    let outcome = start_and_wait(database, task, idx, generation);
    remove_files(idx, generation);
    match outcome {
        Ok(v) => Ok(v),
        Err(Stop::Error(e)) => Err(e),
        Err(Stop::Interrupted) => {
            // Raises the pending cancel / timeout / termination error now that the worker is gone.
            pgrx::check_for_interrupts!();
            Err(Error::new(
                Code::QueryCanceled,
                "interrupted while waiting for the worker",
            ))
        }
        // An ERROR raised while this backend absorbed a barrier in the wait: raised now that the
        // worker is gone and its files are removed.
        Err(Stop::Raised(e)) => e.rethrow(),
    }
}

/// Why a wait for a worker ended without its result.
enum Stop {
    Error(Error),
    /// A cancel, timeout or termination of the caller is pending (the worker is stopped).
    Interrupted,
    /// An ERROR raised in the wait (the worker is stopped); to raise again.
    Raised(pgrx::pg_sys::panic::CaughtError),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Error(e)
    }
}

/// What a wait for workers started with this backend as their notify pid waits on.
trait Waiter {
    /// Whether the wait is over (called after every wake-up; may start more workers).
    fn done(&mut self) -> Result<bool, Stop>;
    /// Terminates every worker still running and waits for each to exit.
    fn stop(&mut self);
}

/// One worker: over when it has stopped.
struct One(Option<pgrx::bgworkers::DynamicBackgroundWorker>);

impl Waiter for One {
    fn done(&mut self) -> Result<bool, Stop> {
        use pgrx::bgworkers::BackgroundWorkerStatus;
        match self.0.as_ref().map(|h| h.pid()) {
            None | Some(Err(BackgroundWorkerStatus::Stopped)) => Ok(true),
            Some(Err(BackgroundWorkerStatus::PostmasterDied)) => Err(Stop::Error(Error::internal("the postmaster died"))),
            _ => Ok(false),
        }
    }

    fn stop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.terminate().wait_for_shutdown();
        }
    }
}

/// Waits until `w` is done. Interrupts are held meanwhile, so a cancel or termination of this
/// backend only sets its flag; when one is pending, or an ERROR is raised while absorbing a
/// procsignal barrier, every worker is terminated and waited for (without a time limit: the
/// caller's locks outlive them) before the wait returns.
fn wait_holding_interrupts(w: &mut dyn Waiter) -> Result<(), Stop> {
    // SAFETY: the interrupt hold-off counter of this backend, raised and lowered in pairs below.
    unsafe { pg_sys::InterruptHoldoffCount += 1 };
    let outcome = loop {
        // An ERROR in `done` (it starts workers: shared memory, a registration) ends the wait like
        // a cancel: every worker is stopped before it is raised again.
        let done = pgrx::PgTryBuilder::new(std::panic::AssertUnwindSafe(|| w.done()))
            .catch_others(|e| {
                // errfinish() reset the hold-off counter for the ERROR: take this wait's hold back.
                unsafe { pg_sys::InterruptHoldoffCount = 1 };
                Err(Stop::Raised(e))
            })
            .execute();
        match done {
            Ok(true) => break Ok(()),
            Err(e) => break Err(e),
            Ok(false) => {}
        }
        // SAFETY: flags set by this backend's signal handlers; read only.
        let pending = unsafe {
            let timeout = {
                #[cfg(any(feature = "pg17", feature = "pg18"))]
                {
                    std::ptr::read_volatile(&raw const pg_sys::TransactionTimeoutPending) != 0
                }
                #[cfg(not(any(feature = "pg17", feature = "pg18")))]
                {
                    false
                }
            };
            std::ptr::read_volatile(&raw const pg_sys::QueryCancelPending) != 0
                || std::ptr::read_volatile(&raw const pg_sys::ProcDiePending) != 0
                || timeout
                // The launcher (reconcile, freeze): its SIGTERM only sets pgrx's flag.
                || super::terminating()
                || past_deadline()
        };
        if pending {
            break Err(Stop::Interrupted);
        }
        // A procsignal barrier (DROP DATABASE, ALTER DATABASE … SET TABLESPACE, …) waits for
        // every backend to absorb it, and held interrupts do not: absorb it here, or a worker
        // that drops a database would wait for this backend while it waits for the worker. Only
        // under this wait's own hold (not inside an outer hold-off or a critical section).
        // SAFETY: flags of this backend; the barrier functions are safe wherever interrupts
        // could be processed, as in this wait.
        let absorb = unsafe {
            std::ptr::read_volatile(&raw const pg_sys::ProcSignalBarrierPending) != 0
                && pg_sys::InterruptHoldoffCount == 1
                && pg_sys::CritSectionCount == 0
        };
        if absorb {
            let raised = pgrx::PgTryBuilder::new(|| {
                unsafe { pg_sys::ProcessProcSignalBarrier() };
                None
            })
            .catch_others(|e| {
                // errfinish() reset the hold-off counter for the ERROR: take this wait's hold back.
                unsafe { pg_sys::InterruptHoldoffCount = 1 };
                Some(e)
            })
            .execute();
            if let Some(e) = raised {
                break Err(Stop::Raised(e));
            }
        }
        // SAFETY: this backend's own latch; the notify pid and the signal handlers set it.
        unsafe {
            pg_sys::WaitLatch(
                pg_sys::MyLatch,
                (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                100,
                pg_sys::PG_WAIT_EXTENSION,
            );
            pg_sys::ResetLatch(pg_sys::MyLatch);
        }
    };
    if matches!(outcome, Err(Stop::Interrupted | Stop::Raised(_))) {
        w.stop();
    }
    // SAFETY: pairs with the increment above.
    unsafe { pg_sys::InterruptHoldoffCount -= 1 };
    outcome
}

/// A status slot for a new worker running `task` in `database`.
fn claim(database: &str, task: &Task) -> Result<(usize, u32)> {
    if let Task::Handler { name, .. } = task {
        if handler(name).is_none() {
            return Err(Error::internal(format!("no task handler \"{name}\" is registered")));
        }
    }
    let registry = shmem::registry().ok_or_else(|| {
        Error::new(
            Code::ObjectNotInPrerequisiteState,
            "per-database workers need pgops in shared_preload_libraries (then a server restart)",
        )
    })?;
    let name = format!("pgops {}", task.label());
    Ok(registry
        .exclusive()
        .claim_dynamic(&name, database, xact::now())
        .ok_or_else(|| {
            Error::new(
                Code::InsufficientResources,
                "all pgops worker slots are busy; try again when running workers finish",
            )
        })?)
}

/// The result a finished worker wrote: its value, or the error it reported.
fn read_result(idx: usize, generation: u32) -> Result<Value> {
    let path = file(idx, generation, "result");
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let reply: Value = serde_json::from_slice(&bytes).context("unreadable worker result")?;
    match reply.get("error").and_then(Value::as_str) {
        Some(e) => Err(Error::internal(e)),
        None => Ok(reply.get("result").cloned().unwrap_or(Value::Null)),
    }
}

fn start_and_wait(database: &str, task: &Task, idx: usize, generation: u32) -> Result<Value, Stop> {
    let handle = launch(database, task, idx, generation, true)?.expect("launched with notify");
    let status = match wait_holding_interrupts(&mut One(Some(handle))) {
        Ok(()) => "stopped".to_string(),
        Err(stop @ (Stop::Interrupted | Stop::Raised(_))) => {
            cancelled(idx, generation);
            return Err(stop);
        }
        Err(Stop::Error(e)) => e.message,
    };
    Ok(collect(database, idx, generation, &status)?)
}

/// Marks the slot of a worker stopped because its caller was cancelled.
fn cancelled(idx: usize, generation: u32) {
    let registry = shmem::registry().expect("checked by the caller");
    if let Some(slot) = registry.exclusive().dynamic_slot(idx, generation) {
        if !slot.finished {
            slot.died("stopped: the caller was cancelled while it waited", xact::now());
        }
    }
}

/// The result of a worker that has exited (`status`: how the wait saw it end).
fn collect(database: &str, idx: usize, generation: u32, status: &str) -> Result<Value> {
    let registry = shmem::registry().expect("checked by the caller");
    {
        let mut reg = registry.exclusive();
        let Some(slot) = reg.dynamic_slot(idx, generation) else {
            return Err(Error::internal("the worker's status slot was taken over while it ran"));
        };
        if !slot.finished {
            // It died before reporting: could not connect (database dropped, connection limit) or crashed.
            let why = format!(
                "the worker for database \"{database}\" exited before finishing ({status}); see the server log"
            );
            slot.died(&why, xact::now());
            return Err(Error::internal(why));
        }
    }
    read_result(idx, generation)
}

/// Runs one task per `(database, task)`, up to `parallel` workers at a time, and returns each
/// result in the order of `jobs`: a read of many databases costs about the slowest few of them,
/// not their sum. Each worker is the one `run_and_wait` starts (its own session, pinned, in one
/// database). A worker that cannot start for want of a worker process or a status slot while
/// others run starts when one of them has ended. A cancel, timeout or termination of the caller
/// stops every running worker and waits for it before the error is raised; the files are removed
/// in every outcome.
pub fn run_many(jobs: &[(String, Task)], parallel: usize) -> Vec<Result<Value>> {
    run_many_alongside(jobs, parallel, |_| std::ops::ControlFlow::Continue(())).1
}

/// `run_many`, with `local` run in this backend while the workers read: the first workers start
/// before it, and each call of the pump it receives collects those that have finished and starts
/// the next ones (call it between long steps, never inside `Spi::connect`: the worker handles live
/// in the current memory context). `local` returns `Continue` to wait for every worker, or
/// `Break` when their results are not wanted any more (a mistake in the config): the running
/// ones are stopped and the rest never start. An ERROR or panic in `local` (a cancel included)
/// stops every running worker and waits for it, removes the files, and is raised again; a FATAL
/// (a terminated backend, a lost client) has them told to stop as the backend exits.
pub fn run_many_alongside<T>(
    jobs: &[(String, Task)],
    parallel: usize,
    local: impl FnOnce(&mut dyn FnMut()) -> std::ops::ControlFlow<T, T>,
) -> (T, Vec<Result<Value>>) {
    use std::ops::ControlFlow;
    let batch = std::cell::RefCell::new(Batch {
        jobs,
        next: 0,
        parallel: parallel.max(1),
        running: vec![],
        results: jobs.iter().map(|_| None).collect(),
    });
    // A pump never waits: what has stopped is collected, free places are filled. An error it
    // meets (no slot, a dead postmaster) is met again by the wait below.
    let mut pump = || {
        let _ = batch.borrow_mut().done();
    };
    at_exit::arm(&batch);
    let on_error = std::panic::AssertUnwindSafe(&batch);
    let out = pgrx::PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
        pump();
        local(&mut pump)
    }))
    .catch_others(move |e| {
        let on_error = &on_error; // the whole wrapper, not its field (closures capture fields)
        at_exit::disarm();
        abandon(&mut on_error.0.borrow_mut(), true);
        e.rethrow()
    })
    .execute();
    at_exit::disarm();
    let mut batch = batch.into_inner();
    match out {
        ControlFlow::Continue(out) => {
            let outcome = wait_holding_interrupts(&mut batch);
            (out, finish(batch, outcome))
        }
        ControlFlow::Break(out) => {
            abandon(&mut batch, true);
            let results = batch
                .results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(Error::internal("not read: the caller stopped the read"))))
                .collect();
            (out, results)
        }
    }
}

/// Stops every running worker of a batch (`wait`: and waits for each to exit, holding
/// interrupts — after an ERROR errfinish() has cleared the hold-off, and a pending cancel must not
/// cut the wait short), marks its slot stopped by its caller and removes its files; what was not
/// started never starts.
fn abandon(b: &mut Batch<'_>, wait: bool) {
    b.next = b.jobs.len();
    if wait {
        // SAFETY: this backend's hold-off counter, raised and lowered in a pair.
        unsafe { pg_sys::InterruptHoldoffCount += 1 };
        b.stop();
        unsafe { pg_sys::InterruptHoldoffCount -= 1 };
    } else {
        for r in b.running.iter_mut() {
            if let Some(h) = r.handle.take() {
                let _ = h.terminate();
            }
        }
    }
    for r in b.running.drain(..) {
        cancelled(r.idx, r.generation);
        remove_files(r.idx, r.generation);
    }
}

/// The batch `run_many_alongside` runs beside its caller's own reads, for the backend's exit: a
/// FATAL there never returns to it (PostgreSQL's PG_ENSURE_ERROR_CLEANUP, kept registered once
/// per backend and armed only while a batch runs: a callback cannot be cancelled once another
/// was registered after it).
mod at_exit {
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

    use pgrx::pg_sys;

    use super::Batch;

    static ARMED: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());
    static REGISTERED: AtomicBool = AtomicBool::new(false);

    pub(super) fn arm(batch: &RefCell<Batch<'_>>) {
        if !REGISTERED.swap(true, Ordering::SeqCst) {
            // SAFETY: a plain callback for this backend's exit; it only touches the armed batch.
            unsafe { pg_sys::before_shmem_exit(Some(on_exit), pg_sys::Datum::from(0usize)) };
        }
        ARMED.store(batch as *const RefCell<Batch<'_>> as *mut (), Ordering::SeqCst);
    }

    pub(super) fn disarm() {
        ARMED.store(std::ptr::null_mut(), Ordering::SeqCst);
    }

    #[pgrx::pg_guard]
    unsafe extern "C-unwind" fn on_exit(_code: std::ffi::c_int, _arg: pg_sys::Datum) {
        let p = ARMED.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if p.is_null() {
            return;
        }
        // SAFETY: armed only while `run_many_alongside`'s frame (which owns the batch) is on the
        // stack, and a FATAL exits from inside that frame; only `running` is touched (the
        // lifetime of the job list does not matter). Busy (the FATAL came inside a pump): left.
        let batch = unsafe { &*(p as *const RefCell<Batch<'static>>) };
        if let Ok(mut b) = batch.try_borrow_mut() {
            super::abandon(&mut b, false);
        }
    }
}

/// Cleans up after a batch's wait and returns its results in the order of its jobs.
fn finish(mut batch: Batch<'_>, outcome: Result<(), Stop>) -> Vec<Result<Value>> {
    for r in batch.running.drain(..) {
        cancelled(r.idx, r.generation);
        remove_files(r.idx, r.generation);
    }
    match outcome {
        Ok(()) => {}
        Err(Stop::Error(e)) => {
            for slot in batch.results.iter_mut().filter(|r| r.is_none()) {
                *slot = Some(Err(e.clone()));
            }
        }
        Err(Stop::Interrupted) => {
            pgrx::check_for_interrupts!();
            raise_cancelled();
        }
        Err(Stop::Raised(e)) => e.rethrow(),
    }
    batch
        .results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::internal("the worker was not run"))))
        .collect()
}

fn raise_cancelled() -> ! {
    crate::error::raise(Error::new(Code::QueryCanceled, "interrupted while waiting for the workers"))
}

/// A worker `run_many` started.
struct Started {
    job: usize,
    idx: usize,
    generation: u32,
    handle: Option<pgrx::bgworkers::DynamicBackgroundWorker>,
}

struct Batch<'a> {
    jobs: &'a [(String, Task)],
    next: usize,
    parallel: usize,
    running: Vec<Started>,
    results: Vec<Option<Result<Value>>>,
}

impl Batch<'_> {
    /// Starts workers up to the limit.
    fn fill(&mut self) {
        while self.running.len() < self.parallel && self.next < self.jobs.len() {
            let (database, task) = &self.jobs[self.next];
            let started = claim(database, task).and_then(|(idx, generation)| {
                match launch(database, task, idx, generation, true) {
                    Ok(handle) => Ok((idx, generation, handle)),
                    Err(e) => {
                        remove_files(idx, generation);
                        Err(e)
                    }
                }
            });
            match started {
                Ok((idx, generation, handle)) => self.running.push(Started {
                    job: self.next,
                    idx,
                    generation,
                    handle,
                }),
                // No worker process or slot free: again when one of ours has ended.
                Err(e) if e.code == Code::InsufficientResources && !self.running.is_empty() => return,
                Err(e) => self.results[self.next] = Some(Err(e)),
            }
            self.next += 1;
        }
    }
}

impl Waiter for Batch<'_> {
    fn done(&mut self) -> Result<bool, Stop> {
        use pgrx::bgworkers::BackgroundWorkerStatus;
        let mut k = 0;
        while k < self.running.len() {
            match self.running[k].handle.as_ref().map(|h| h.pid()) {
                None | Some(Err(BackgroundWorkerStatus::Stopped)) => {
                    let r = self.running.swap_remove(k);
                    let out = collect(&self.jobs[r.job].0, r.idx, r.generation, "stopped");
                    remove_files(r.idx, r.generation);
                    self.results[r.job] = Some(out);
                }
                Some(Err(BackgroundWorkerStatus::PostmasterDied)) => {
                    return Err(Stop::Error(Error::internal("the postmaster died")));
                }
                _ => k += 1,
            }
        }
        self.fill();
        Ok(self.running.is_empty() && self.next >= self.jobs.len())
    }

    fn stop(&mut self) {
        // Every one told to stop first, then each waited for.
        let stopping: Vec<_> = self.running.iter_mut().filter_map(|r| r.handle.take()).map(|h| h.terminate()).collect();
        for h in stopping {
            let _ = h.wait_for_shutdown();
        }
    }
}

/// Writes the task file and starts the worker; releases the slot when it cannot. With `notify`
/// the handle is returned to wait on (it lives in the current memory context).
fn launch(
    database: &str,
    task: &Task,
    idx: usize,
    generation: u32,
    notify: bool,
) -> Result<Option<pgrx::bgworkers::DynamicBackgroundWorker>> {
    let registry = shmem::registry().expect("checked by the caller");
    let task_file = &file(idx, generation, "task");
    let body = serde_json::to_vec(task)?;
    if let Err(e) = write_private(task_file, &body) {
        registry.exclusive().release(idx, generation);
        return Err(Error::new(
            Code::IoError,
            format!("cannot write {}: {e}", task_file.display()),
        ));
    }
    let mut builder = BackgroundWorkerBuilder::new(&format!("pgops {} in {}", task.label(), database));
    builder = builder
        .set_type("pgops database worker")
        .set_library("pgops")
        .set_function("pgops_db_worker_main")
        .set_argument(Some(pack(idx, generation).into_datum().expect("an i64 is a datum")))
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::ConsistentState)
        .set_restart_time(None);
    if notify {
        builder = builder.set_notify_pid(unsafe { pg_sys::MyProcPid });
    }
    match builder.load_dynamic() {
        Ok(h) => Ok(notify.then_some(h)),
        Err(_) => {
            registry.exclusive().release(idx, generation);
            Err(Error::new(
                Code::InsufficientResources,
                format!(
                    "could not start a worker for database \"{database}\": no free background worker slot \
                     (raise max_worker_processes)"
                ),
            ))
        }
    }
}

unsafe extern "C-unwind" {
    /// PostgreSQL's own SIGTERM handler for backends (tcop/postgres.c), the raw symbol.
    #[link_name = "die"]
    fn postgres_die(signal: std::ffi::c_int);
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgops_db_worker_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    // A task can run long statements (REASSIGN OWNED, VACUUM): with PostgreSQL's own handler a
    // SIGTERM (fast shutdown, pg_terminate_backend) cancels the running statement at its next
    // interrupt check instead of waiting for it to finish.
    unsafe {
        #[cfg(not(feature = "pg18"))]
        pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(postgres_die));
        #[cfg(feature = "pg18")]
        pg_sys::pqsignal_be(pg_sys::SIGTERM as i32, Some(postgres_die));
    }
    let (idx, generation) = unpack(arg.value() as i64);
    let pid = unsafe { pg_sys::MyProcPid };
    let claimed = shmem::registry().and_then(|r| {
        let mut reg = r.exclusive();
        let slot = reg.dynamic_slot(idx, generation)?;
        slot.pid = pid;
        slot.set_state("connecting");
        Some(slot.database.to_string())
    });
    let Some(database) = claimed else {
        server_log!("pgops database worker: slot {idx} generation {generation} is not mine; exiting");
        return;
    };
    // The task is read before connecting: it says whether the worker may enter a database that
    // accepts no connections yet.
    let task = std::fs::read(file(idx, generation, "task"))
        .context("cannot read the task")
        .and_then(|b| serde_json::from_slice::<Task>(&b).context("unreadable task"));
    let closed = task.as_ref().is_ok_and(Task::enters_closed);
    let unpinned = super::session::pin_before_connect();
    connect(&database, closed);
    if !unpinned.is_empty() {
        server_log!(
            "pgops database worker in \"{database}\": could not pin {} (see the WARNINGs above)",
            unpinned.join(", ")
        );
    }
    shmem::with_slot(idx, |s| s.set_state("running"));

    let task = super::session::after_connect().map_err(Error::internal).and(task);
    let outcome = task.and_then(|task| perform(&task, &Files::of(idx, generation)));
    let now = xact::now();
    let reply = match &outcome {
        Ok(v) => json!({ "result": v }),
        Err(e) => {
            server_log!("pgops database worker in \"{database}\": {}", e.one_line());
            json!({ "error": e.one_line() })
        }
    };
    let written = write_private(&file(idx, generation, "result"), reply.to_string().as_bytes());
    if let Some(r) = shmem::registry() {
        let mut reg = r.exclusive();
        if let Some(slot) = reg.dynamic_slot(idx, generation) {
            slot.runs += 1;
            slot.last_run_at = now;
            slot.pid = 0;
            slot.finished = written.is_ok();
            match (&outcome, &written) {
                (Ok(_), Ok(())) => slot.set_state("done"),
                (Err(e), _) => {
                    slot.record_error(&e.one_line(), now);
                    slot.set_state("failed");
                }
                (_, Err(e)) => {
                    slot.record_error(&format!("cannot write the result: {e}"), now);
                    slot.set_state("failed");
                }
            }
        }
    }
}

/// Connects this worker to `database` as the bootstrap superuser; with `closed`, also when the
/// database does not accept connections (`datallowconn = false`).
fn connect(database: &str, closed: bool) {
    if !closed {
        BackgroundWorker::connect_worker_to_spi(Some(database), None);
        return;
    }
    let db = std::ffi::CString::new(database).unwrap_or_default();
    // SAFETY: a background worker's one connection, made before any transaction, with the flag
    // PostgreSQL provides for it; the name is a valid C string for the call's length.
    unsafe {
        pg_sys::BackgroundWorkerInitializeConnection(db.as_ptr(), std::ptr::null(), pg_sys::BGWORKER_BYPASS_ALLOWCONN);
    }
}

/// Runs one task in this worker; the error is the message the starter gets.
fn perform(task: &Task, files: &Files) -> Result<Value> {
    let activity = format!("pgops {}", task.label());
    match task {
        Task::Query { sql, args, rows, .. } => xact::run(&activity, || {
            let args: Vec<pgrx::datum::DatumWithOid> = args.iter().map(|a| pgrx::JsonB(a.clone()).into()).collect();
            if *rows {
                Ok(Value::Array(crate::spi::rows(sql, &args)?))
            } else {
                Ok(crate::spi::json(sql, &args)?)
            }
        }),
        Task::Exec { statements, .. } => match xact::run(&activity, || run_statements(statements)) {
            Ok(()) => Ok(json!({ "ok": true })),
            // The transaction was rolled back; say which statement failed.
            Err(e) => Ok(json!({ "ok": false, "failed": failed_statement(), "error": e.one_line() })),
        },
        Task::Utility { statements, .. } => {
            for (i, statement) in statements.iter().enumerate() {
                if let Err((e, sqlstate)) = super::toplevel::run(statement) {
                    return Ok(json!({ "ok": false, "failed": i, "error": e, "sqlstate": sqlstate }));
                }
            }
            Ok(json!({ "ok": true }))
        }
        Task::Handler { name, arg } => {
            let h =
                handler(name).ok_or_else(|| Error::internal(format!("no task handler \"{name}\" is registered")))?;
            if h.own_transactions {
                (h.run)(arg, files)
            } else {
                xact::run(&activity, || (h.run)(arg, files))
            }
        }
    }
}

thread_local! {
    /// Index of the statement `run_statements` is executing (read after an ERROR aborted it).
    static EXEC_AT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs statements in order in the current transaction. An ERROR propagates (the caller's
/// transaction aborts: all or nothing); `failed_statement()` then tells which one it was.
pub fn run_statements(statements: &[String]) -> Result<()> {
    for (i, s) in statements.iter().enumerate() {
        EXEC_AT.with(|c| c.set(i));
        Spi::run(s)?;
    }
    Ok(())
}

pub fn failed_statement() -> usize {
    EXEC_AT.with(|c| c.get())
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
        let q = Task::Query {
            label: "inventory".into(),
            sql: "SELECT 1".into(),
            args: vec![],
            rows: false,
            closed: false,
        };
        let s = serde_json::to_string(&q).unwrap();
        assert_eq!(
            s,
            r#"{"task":"query","label":"inventory","sql":"SELECT 1","args":[],"rows":false,"closed":false}"#
        );
        assert_eq!(serde_json::from_str::<Task>(&s).unwrap(), q);
        let e = Task::Exec {
            label: "apply".into(),
            statements: vec!["SELECT 1".into()],
        };
        assert_eq!(
            serde_json::from_str::<Task>(&serde_json::to_string(&e).unwrap()).unwrap(),
            e
        );
        assert!(serde_json::from_str::<Task>(r#"{"task":"nope"}"#).is_err());
    }

    #[test]
    fn an_unregistered_handler_is_labelled_by_its_name() {
        let t = Task::Handler {
            name: "no such handler".into(),
            arg: Value::Null,
        };
        assert_eq!(t.label(), "no such handler");
    }

    #[test]
    fn files_are_per_slot_and_generation() {
        assert_eq!(file(3, 9, "task"), PathBuf::from("pg_stat_tmp/pgops.3.9.task.json"));
        assert_ne!(file(3, 9, "result"), file(3, 10, "result"));
    }
}
