//! The SQL boundary of pgops' errors: an `Error` (core crate: SQLSTATE, message, detail, hint)
//! becomes a PostgreSQL ERROR here and nowhere else.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

pub use pgops_core::error::{Code, Context, Error, Result};

/// PostgreSQL's error code for a pgops code.
fn pg_code(code: Code) -> PgSqlErrorCode {
    use PgSqlErrorCode::*;
    match code {
        Code::InvalidParameterValue => ERRCODE_INVALID_PARAMETER_VALUE,
        Code::CheckViolation => ERRCODE_CHECK_VIOLATION,
        Code::InsufficientPrivilege => ERRCODE_INSUFFICIENT_PRIVILEGE,
        Code::UndefinedObject => ERRCODE_UNDEFINED_OBJECT,
        Code::InvalidCatalogName => ERRCODE_INVALID_CATALOG_NAME,
        Code::ObjectNotInPrerequisiteState => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        Code::FeatureNotSupported => ERRCODE_FEATURE_NOT_SUPPORTED,
        Code::ActiveSqlTransaction => ERRCODE_ACTIVE_SQL_TRANSACTION,
        Code::ReadOnlySqlTransaction => ERRCODE_READ_ONLY_SQL_TRANSACTION,
        Code::LockNotAvailable => ERRCODE_LOCK_NOT_AVAILABLE,
        Code::InsufficientResources => ERRCODE_INSUFFICIENT_RESOURCES,
        Code::ConnectionFailure => ERRCODE_CONNECTION_FAILURE,
        Code::QueryCanceled => ERRCODE_QUERY_CANCELED,
        Code::ObjectInUse => ERRCODE_OBJECT_IN_USE,
        Code::WrongObjectType => ERRCODE_WRONG_OBJECT_TYPE,
        Code::DataException => ERRCODE_DATA_EXCEPTION,
        Code::ConfigFileError => ERRCODE_CONFIG_FILE_ERROR,
        Code::IoError => ERRCODE_IO_ERROR,
        Code::Internal => ERRCODE_INTERNAL_ERROR,
    }
}

/// The five-character SQLSTATE of a PostgreSQL error code (MAKE_SQLSTATE packs six bits a
/// character).
pub fn sqlstate(code: PgSqlErrorCode) -> String {
    let packed = code as i32;
    (0..5)
        .map(|i| (((packed >> (6 * i)) & 0x3f) as u8 + b'0') as char)
        .collect()
}

/// Raises `e` as an ERROR: its SQLSTATE, message, detail and hint.
#[track_caller]
pub fn raise(e: Error) -> ! {
    let mut report = ErrorReport::new(pg_code(e.code), e.message, "pgops");
    if let Some(d) = e.detail.filter(|d| !d.is_empty()) {
        report = report.set_detail(d);
    }
    if let Some(h) = e.hint.filter(|h| !h.is_empty()) {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR does not return")
}

/// Refuses a caller who is not a superuser: `what` needs one, `why` says what it touches.
pub fn require_superuser(what: &str, why: &str) {
    // SAFETY: reads the current user's superuser flag.
    if !unsafe { pg_sys::superuser() } {
        fail(Code::InsufficientPrivilege, format!("{what} needs a superuser"), why);
    }
}

/// Raises an ERROR with a code, a message naming the object, and a hint saying what to do.
#[track_caller]
pub fn fail(code: Code, message: impl Into<String>, hint: &str) -> ! {
    raise(Error::new(code, message).hint(hint))
}

/// Re-raises a PostgreSQL error caught while running a statement, with context in the message
/// but the statement's own SQLSTATE (a missing schema, a lock timeout, a read-only
/// transaction…): what went wrong is the caller's to see, not an internal error.
#[track_caller]
pub fn reraise(caught: &pgrx::pg_sys::panic::CaughtError, message: String, hint: &str) -> ! {
    use pgrx::pg_sys::panic::CaughtError;
    let code = match caught {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r.sql_error_code(),
        CaughtError::RustPanic { ereport, .. } => ereport.sql_error_code(),
    };
    let mut report = ErrorReport::new(code, message, "pgops");
    if !hint.is_empty() {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR does not return")
}

/// Refuses to run on a standby (25006), first thing: before the function reads, writes or
/// could fail on anything else — so no later error (with the statement and its arguments, such as
/// a plaintext password) is ever raised for it there.
#[track_caller]
pub fn require_primary(what: &str, hint: &str) {
    // SAFETY: reads shared recovery state.
    if unsafe { pg_sys::RecoveryInProgress() } {
        fail(
            Code::ReadOnlySqlTransaction,
            format!("{what} cannot run on a standby: this server is in recovery"),
            hint,
        );
    }
}

/// The value, or the error raised (at the SQL boundary).
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T, E: Into<Error>> OrRaise<T> for std::result::Result<T, E> {
    #[track_caller]
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| raise(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_its_sqlstate() {
        for c in Code::ALL {
            assert_eq!(sqlstate(pg_code(c)), c.sqlstate(), "{c:?}");
        }
    }
}

/// Raises a failure that is pgops' or the server's, never the caller's (XX000): an SPI call that
/// should not fail, an answer of the wrong shape.
#[macro_export]
macro_rules! internal {
    ($($arg:tt)*) => {
        $crate::error::raise($crate::error::Error::internal(format!($($arg)*)))
    };
}
