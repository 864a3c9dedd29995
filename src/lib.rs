//! pgops: a PostgreSQL cluster's operations from inside the database.
//!
//! Layout (see README "Architecture"): pure logic in plain Rust modules with `#[test]`s; the
//! pgrx layer (`api`, catalog reads, worker loops) stays thin.

use pgrx::prelude::*;

/// A line in the server log, on every supported major. pgrx 0.18.1's own `log!` first asks, on
/// PostgreSQL 13, whether LOG is at least `log_min_messages` by number; LOG sorts above ERROR in
/// the server log, so with the default (`warning`) every line was dropped. This one goes straight
/// to `errstart()`, which decides as the server does (`10_backbone.sh` checks the lines arrive).
/// Defined before the modules, so every module can use it; pgops never calls pgrx's `log!`.
macro_rules! server_log {
    ($($arg:tt)*) => {
        ::pgrx::pg_sys::panic::ErrorReport::new(
            ::pgrx::pg_sys::errcodes::PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
            ::std::format!($($arg)*),
            ::pgrx::pg_sys::function_name!(),
        )
        .report(::pgrx::pg_sys::elog::PgLogLevel::LOG)
    };
}

/// A DEBUG1 line (shown with `log_min_messages = debug1`): what the hostile-tenant scenario reads
/// to see that every launcher turn ran while the tenant's objects were planted.
#[macro_export]
macro_rules! server_debug {
    ($($arg:tt)*) => {
        ::pgrx::pg_sys::panic::ErrorReport::new(
            ::pgrx::pg_sys::errcodes::PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
            ::std::format!($($arg)*),
            ::pgrx::pg_sys::function_name!(),
        )
        .report(::pgrx::pg_sys::elog::PgLogLevel::DEBUG1)
    };
}

pub mod audit;
pub mod databases;
pub mod error;
pub mod etcd;
pub mod fleet;
pub mod freeze;
pub mod gucs;
pub mod hba;
pub mod identity;
pub mod monitor;
pub mod patroni;
pub mod pigsty;
pub mod pgutil;
pub mod reconcile;
pub mod roles;
pub mod spi;
pub use pgops_core::sqltext;
pub mod worker;

::pgrx::pg_module_magic!();

// The SQL files: the shared roles first, the worker views and the pinning of every function last;
// each capability declares its own file in its module (e.g. src/hba/mod.rs).
extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!("../sql/workers.sql", name = "workers_views", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    let preloading = unsafe { pg_sys::process_shared_preload_libraries_in_progress };
    // No Rust backtrace ever reaches a client: pgrx attaches one to an error's DETAIL whenever
    // the server's environment enables capture (RUST_BACKTRACE=1). RUST_LIB_BACKTRACE decides
    // for std's Backtrace::capture before RUST_BACKTRACE does; processes forked later inherit it.
    // SAFETY: _PG_init runs on the process's only thread, before pgops starts any other.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    gucs::init(preloading);
    // The backbone first; then each capability registers its shared memory, static workers,
    // launcher turns and worker task handlers (in this order the launcher's turns run).
    worker::init(preloading);
    monitor::init(preloading);
    freeze::init(preloading);
    databases::init();
    roles::init();
    etcd::init(preloading);
    hba::init(preloading);
    reconcile::init(preloading);
    audit::init(preloading);
}

/// pgrx's `log!` and `info!` drop their line on PostgreSQL 13 (see `server_log!`): no source file
/// may call them. Reads `src/` as the hostile-names list does, so a later file is covered too.
#[cfg(test)]
mod logging_macro {
    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_log_line_goes_through_server_log() {
        let mut files = Vec::new();
        rust_files(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        assert!(files.len() > 20, "read src/: {} files", files.len());
        // Spelt in two halves so that this file does not match itself.
        let needles = [concat!("log", "!("), concat!("info", "!(")];
        let mut offenders = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            for (n, line) in text.lines().enumerate() {
                for found in needles.iter().flat_map(|needle| line.match_indices(needle)) {
                    let before = &line[..found.0];
                    if !before.ends_with("server_") && !before.trim_start().starts_with("//") {
                        offenders.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "use server_log! (pgrx's log!/info! drop lines on PG 13):\n{}", offenders.join("\n"));
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    include!("pg_tests.rs");
}

/// Used by `cargo pgrx test`: the test server preloads pgops with short intervals.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![
            "shared_preload_libraries='pgops'",
            "pgops.naptime='100ms'",
            "pgops.sample_interval='200ms'",
            "pgops.database='pgrx_tests'",
            "pgops.launcher_restart_time=1",
        ]
    }
}
