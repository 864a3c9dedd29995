//! Utility statements run at top level from a worker, outside any transaction of the worker's.
//!
//! VACUUM (and CREATE DATABASE, ALTER SYSTEM, …) refuse to run inside a transaction block or a
//! function, so they cannot go through SPI. `run` parses, plans and runs one statement through
//! `ProcessUtility` as a top-level statement, the way a backend runs a client's query. Such a
//! statement may commit and start transactions itself, so the parse and plan trees live in a
//! memory context of their own under TopMemoryContext (in the first transaction's context they
//! would be freed under its feet).

use std::ffi::CString;

use pgrx::PgTryBuilder;
use pgrx::prelude::*;

use super::xact;

/// Runs one utility statement at top level, in transactions of its own. Returns the error
/// message and SQLSTATE if it failed; the worker goes on either way.
pub fn run(sql: &str) -> Result<(), (String, String)> {
    let c_sql = CString::new(sql).map_err(|_| ("statement contains a NUL byte".to_string(), "22021".to_string()))?;
    // SAFETY: called from a worker's main thread, outside any transaction. Every pointer handed
    // to PostgreSQL lives in `cxt`, which outlives the transactions VACUUM commits, and is
    // deleted after the last one ended.
    unsafe {
        let cxt = pg_sys::AllocSetContextCreateExtended(
            pg_sys::TopMemoryContext,
            c"pgops top-level statement".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        );
        let saved_portal = pg_sys::PortalContext;
        let activity = c_sql.clone();
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, activity.as_ptr());
        pg_sys::MemoryContextSwitchTo(cxt);
        // vacuum() makes its private context under PortalContext: keep it out of the transaction.
        pg_sys::PortalContext = cxt;
        let sql_ptr = pg_sys::pstrdup(c_sql.as_ptr());
        let result = PgTryBuilder::new(|| {
            let raw_list = pg_sys::pg_parse_query(sql_ptr);
            if raw_list.is_null() || (*raw_list).length != 1 {
                panic!("pgops: expected exactly one statement");
            }
            let raw = (*(*raw_list).elements).ptr_value as *mut pg_sys::RawStmt;
            // PostgreSQL 15 renamed pg_analyze_and_rewrite (same arguments) to _fixedparams.
            #[cfg(any(feature = "pg13", feature = "pg14"))]
            let queries = pg_sys::pg_analyze_and_rewrite(raw, sql_ptr, std::ptr::null_mut(), 0, std::ptr::null_mut());
            #[cfg(not(any(feature = "pg13", feature = "pg14")))]
            let queries =
                pg_sys::pg_analyze_and_rewrite_fixedparams(raw, sql_ptr, std::ptr::null_mut(), 0, std::ptr::null_mut());
            let plans = pg_sys::pg_plan_queries(queries, sql_ptr, 0, std::ptr::null_mut());
            let stmt = (*(*plans).elements).ptr_value as *mut pg_sys::PlannedStmt;
            if (*stmt).utilityStmt.is_null() {
                panic!("pgops: expected a utility statement");
            }
            let mut qc = pg_sys::QueryCompletion::default();
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
            // PostgreSQL 14 added readOnlyTree (false: the tree is ours to modify).
            #[cfg(feature = "pg13")]
            pg_sys::ProcessUtility(
                stmt,
                sql_ptr,
                pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                pg_sys::None_Receiver,
                &mut qc,
            );
            #[cfg(not(feature = "pg13"))]
            pg_sys::ProcessUtility(
                stmt,
                sql_ptr,
                false,
                pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                pg_sys::None_Receiver,
                &mut qc,
            );
            if pg_sys::ActiveSnapshotSet() {
                pg_sys::PopActiveSnapshot();
            }
            pg_sys::PortalContext = saved_portal;
            pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
            pg_sys::CommitTransactionCommand();
            Ok(())
        })
        .catch_others(|e| {
            pg_sys::PortalContext = saved_portal;
            pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
            pg_sys::AbortCurrentTransaction();
            let code = match &e {
                pg_sys::panic::CaughtError::PostgresError(r) | pg_sys::panic::CaughtError::ErrorReport(r) => {
                    crate::error::sqlstate(r.sql_error_code())
                }
                _ => "XX000".to_string(),
            };
            Err((xact::describe(&e), code))
        })
        .execute();
        pg_sys::MemoryContextDelete(cxt);
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null());
        result
    }
}
