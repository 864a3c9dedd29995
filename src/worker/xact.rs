//! Transactions for worker processes that survive errors.
//!
//! `BackgroundWorker::transaction` re-raises an ERROR without aborting the transaction, so the
//! worker dies (and the next `StartTransactionCommand` would fail anyway). `run` starts a
//! transaction, runs the body, commits on success, and on an ERROR or a Rust panic aborts the
//! transaction, restores the memory context, and returns the error (an ERROR caught from
//! PostgreSQL as `Code::Internal`: in a worker nobody but the log and `pgops.workers` sees it) —
//! the caller records it and the loop goes on.

use std::panic::AssertUnwindSafe;

use pgrx::PgTryBuilder;
use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;

use crate::error::{Error, Result};

/// The current time as a PostgreSQL `TimestampTz`.
pub fn now() -> i64 {
    unsafe { pg_sys::GetCurrentTimestamp() }
}

/// One line for the log and for `pgops.workers.last_error`.
pub fn describe(e: &CaughtError) -> String {
    let report = match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
        CaughtError::RustPanic { ereport, .. } => ereport,
    };
    match report.detail() {
        Some(detail) if !detail.is_empty() => format!("{} ({detail})", report.message()),
        _ => report.message().to_string(),
    }
}

/// Runs `body` in its own transaction, showing `activity` in pg_stat_activity meanwhile.
pub fn run<R>(activity: &str, body: impl FnOnce() -> Result<R>) -> Result<R> {
    let activity_c = std::ffi::CString::new(activity.replace('\0', " ")).unwrap_or_default();
    // SAFETY: called from a worker's main thread, outside any transaction.
    let outer_context = unsafe {
        let outer = pg_sys::CurrentMemoryContext;
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, activity_c.as_ptr());
        outer
    };
    let outcome = PgTryBuilder::new(AssertUnwindSafe(body))
        .catch_others(|e| Err(Error::internal(describe(&e))))
        .execute();
    // SAFETY: we own the transaction started above; on error it is still open (aborted state).
    unsafe {
        match &outcome {
            Ok(_) => {
                if pg_sys::ActiveSnapshotSet() {
                    pg_sys::PopActiveSnapshot();
                }
                pg_sys::CommitTransactionCommand();
                pg_sys::MemoryContextSwitchTo(outer_context);
            }
            Err(_) => {
                pg_sys::MemoryContextSwitchTo(outer_context);
                pg_sys::AbortCurrentTransaction();
            }
        }
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null());
    }
    outcome
}

/// Runs `body` in a subtransaction of the current transaction: an error rolls back only what
/// `body` did, and the transaction goes on.
pub fn sub<R>(body: impl FnOnce() -> Result<R>) -> Result<R> {
    // SAFETY: inside a transaction on the worker's main thread; the memory context and resource
    // owner are put back as PostgreSQL's own PL exception blocks do.
    unsafe {
        let cxt = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(cxt);
        let outcome = PgTryBuilder::new(AssertUnwindSafe(body))
            .catch_others(|e| Err(Error::internal(describe(&e))))
            .execute();
        match &outcome {
            Ok(_) => pg_sys::ReleaseCurrentSubTransaction(),
            Err(_) => pg_sys::RollbackAndReleaseCurrentSubTransaction(),
        }
        pg_sys::MemoryContextSwitchTo(cxt);
        pg_sys::CurrentResourceOwner = owner;
        outcome
    }
}
