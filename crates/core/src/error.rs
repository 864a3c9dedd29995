//! The one error type of pgops: a SQLSTATE class, a message that names the object, and optionally
//! a detail and a hint saying what to do. Decided where the error happens (the code that refuses a
//! value knows it is the caller's mistake); turned into a PostgreSQL ERROR once, at the SQL
//! boundary (`src/error.rs` in the extension), and into a log line or a `pgops.workers` entry in
//! workers.
//!
//! Any other error type (I/O, JSON, SPI, HTTP) converts with `?` into `Code::Internal`: such a
//! failure is pgops' or the server's, never the caller's. Code that can tell the caller's mistake
//! apart says so with another code (`Error::invalid`, `Error::new`).

use std::fmt;

/// The SQLSTATEs pgops raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// 22023: a value the caller gave is not acceptable (a bad rule, role, schedule, setting).
    InvalidParameterValue,
    /// 23514: a config-table row breaks a rule (raised by the validation triggers).
    CheckViolation,
    /// 42501: the caller may not do this.
    InsufficientPrivilege,
    /// 42704: a named object (role, job, rule) does not exist.
    UndefinedObject,
    /// 3D000: a named database does not exist.
    InvalidCatalogName,
    /// 55000: something must be set up first (preload, an extension, a setting, a primary).
    ObjectNotInPrerequisiteState,
    /// 0A000: not possible on this server version or in this form.
    FeatureNotSupported,
    /// 25001: refused inside a transaction block.
    ActiveSqlTransaction,
    /// 25006: writes refused on a standby or in a read-only transaction.
    ReadOnlySqlTransaction,
    /// 55P03: a lock could not be taken in time.
    LockNotAvailable,
    /// 53000: no worker slot or worker process free.
    InsufficientResources,
    /// 08006: a remote service (etcd) could not be reached or refused.
    ConnectionFailure,
    /// 57014: a wait was given up (a worker did not answer in time).
    QueryCanceled,
    /// 55006: the object is busy (a job already running).
    ObjectInUse,
    /// 42809: the call was made in the wrong place (another database than the one holding it).
    WrongObjectType,
    /// 22000: stored data pgops cannot read (a config row edited past its triggers).
    DataException,
    /// F0000: a configuration file is not usable.
    ConfigFileError,
    /// 58030: a file could not be read or written.
    IoError,
    /// XX000: a bug, or the server answered what pgops did not expect. Never a caller's mistake.
    Internal,
}

impl Code {
    /// The five-character SQLSTATE.
    pub fn sqlstate(self) -> &'static str {
        match self {
            Code::InvalidParameterValue => "22023",
            Code::CheckViolation => "23514",
            Code::InsufficientPrivilege => "42501",
            Code::UndefinedObject => "42704",
            Code::InvalidCatalogName => "3D000",
            Code::ObjectNotInPrerequisiteState => "55000",
            Code::FeatureNotSupported => "0A000",
            Code::ActiveSqlTransaction => "25001",
            Code::ReadOnlySqlTransaction => "25006",
            Code::LockNotAvailable => "55P03",
            Code::InsufficientResources => "53000",
            Code::ConnectionFailure => "08006",
            Code::QueryCanceled => "57014",
            Code::ObjectInUse => "55006",
            Code::WrongObjectType => "42809",
            Code::DataException => "22000",
            Code::ConfigFileError => "F0000",
            Code::IoError => "58030",
            Code::Internal => "XX000",
        }
    }

    /// Every code (for tests and the SQL boundary's mapping).
    pub const ALL: [Code; 19] = [
        Code::InvalidParameterValue,
        Code::CheckViolation,
        Code::InsufficientPrivilege,
        Code::UndefinedObject,
        Code::InvalidCatalogName,
        Code::ObjectNotInPrerequisiteState,
        Code::FeatureNotSupported,
        Code::ActiveSqlTransaction,
        Code::ReadOnlySqlTransaction,
        Code::LockNotAvailable,
        Code::InsufficientResources,
        Code::ConnectionFailure,
        Code::QueryCanceled,
        Code::ObjectInUse,
        Code::WrongObjectType,
        Code::DataException,
        Code::ConfigFileError,
        Code::IoError,
        Code::Internal,
    ];
}

/// An error to report: SQLSTATE, message, detail, hint.
///
/// It deliberately does not implement `std::error::Error`, so that every type that does converts
/// into it with `?` (as `Code::Internal`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// The caller gave a value pgops cannot accept (22023).
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Code::InvalidParameterValue, message)
    }

    /// pgops' or the server's failure, not the caller's (XX000).
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(Code::Internal, message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Error {
        self.detail = Some(detail.into());
        self
    }

    /// The same error with `prefix: ` before its message (the object it happened to).
    pub fn context(mut self, prefix: impl fmt::Display) -> Error {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// The message with its detail, on one line (for logs and `pgops.workers`).
    pub fn one_line(&self) -> String {
        match &self.detail {
            Some(d) if !d.is_empty() => format!("{} ({d})", self.message),
            _ => self.message.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Error {
        Error::internal(e.to_string())
    }
}

/// `.context(…)` on any result whose error converts into `Error`.
pub trait Context<T> {
    /// Prefixes the error's message with `prefix: `.
    fn context(self, prefix: impl fmt::Display) -> Result<T>;
    /// Same, with the prefix computed only on error.
    fn with_context<D: fmt::Display>(self, prefix: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, prefix: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(prefix))
    }

    fn with_context<D: fmt::Display>(self, prefix: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.into().context(prefix()))
    }
}

/// `return Err(Error::invalid(format!(…)))`: the caller's value is refused.
#[macro_export]
macro_rules! bail_invalid {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::invalid(format!($($arg)*)))
    };
}

/// `Error::invalid(format!(…))`.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => {
        $crate::error::Error::invalid(format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_five_characters_and_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Code::ALL {
            let s = c.sqlstate();
            assert_eq!(s.len(), 5, "{c:?}");
            assert!(
                s.chars().all(|ch| ch.is_ascii_digit() || ch.is_ascii_uppercase()),
                "{c:?}"
            );
            assert!(seen.insert(s), "{c:?} repeats {s}");
        }
    }

    #[test]
    fn foreign_errors_are_internal_and_context_prefixes() {
        fn parse(s: &str) -> Result<serde_json::Value> {
            Ok(serde_json::from_str(s)?)
        }
        let e = parse("{").unwrap_err();
        assert_eq!(e.code, Code::Internal);
        let e = parse("{").context("reading the answer").unwrap_err();
        assert!(e.message.starts_with("reading the answer: "), "{}", e.message);
        let e = Error::invalid("rule 3: no address")
            .hint("Give addr.")
            .context("pgops.hba_rule");
        assert_eq!(
            (e.code.sqlstate(), e.message.as_str(), e.hint.as_deref()),
            ("22023", "pgops.hba_rule: rule 3: no address", Some("Give addr."))
        );
        assert_eq!(Error::internal("x").detail("y").one_line(), "x (y)");
    }
}
