//! pgops: a PostgreSQL cluster's operations from inside the database.
//!
//! Layout (see README "Architecture"): pure logic in plain Rust modules with `#[test]`s; the
//! pgrx layer (`api`, catalog reads, worker loops) stays thin.

use pgrx::prelude::*;

pub mod audit;
pub mod etcd;
pub mod freeze;
pub mod gucs;
pub mod hba;
pub mod identity;
pub mod monitor;
pub mod pgutil;
pub mod roles;
pub mod spi;
pub use pgops_core::sqltext;
pub mod worker;

::pgrx::pg_module_magic!();

extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!("../sql/workers.sql", name = "workers_views", finalize);
extension_sql_file!(
    "../sql/monitor.sql",
    name = "monitor_views",
    requires = [
        monitor::api::_wraparound_forecast,
        monitor::bloat_api::_table_bloat,
        monitor::bloat_api::_index_bloat,
        monitor::bloat_api::verify_bloat
    ]
);
extension_sql_file!(
    "../sql/hba.sql",
    name = "hba_tables",
    requires = [
        hba::api::_check_hba_rule,
        hba::api::_check_hba_alias,
        hba::api::_apply_hba,
        hba::api::_hba_lint,
        hba::api::_hba_drift,
        hba::api::render_hba,
        hba::api::hba_match,
        hba::api::load_hba_rules,
        hba::api::load_pigsty_hba_defaults
    ]
);
extension_sql_file!(
    "../sql/freeze.sql",
    name = "freeze_tables",
    requires = [
        freeze::api::_check_freeze_job,
        freeze::api::_freeze_next_run,
        freeze::api::freeze_plan,
        freeze::api::run_freeze,
        freeze::api::cancel_freeze
    ]
);
extension_sql_file!(
    "../sql/security.sql",
    name = "security_audit",
    requires = [
        "hba_tables",
        "roles_tables",
        audit::api::_inline_secret,
        audit::api::_null_cipher_term,
        audit::api::_audit_files
    ]
);
extension_sql_file!(
    "../sql/etcd.sql",
    name = "etcd_views",
    requires = [etcd::api::_etcd_status, etcd::api::etcd_push_now, etcd::api::cluster_members]
);
extension_sql_file!(
    "../sql/roles.sql",
    name = "roles_tables",
    requires = [
        roles::api::_check_role,
        roles::api::_check_default_privilege,
        roles::api::_role_drift,
        roles::api::_role_drift_summary,
        roles::api::plan_roles,
        roles::api::apply_roles,
        roles::api::load_roles,
        roles::api::set_password,
        roles::api::load_default_privileges,
        roles::api::load_pigsty_baseline,
        roles::api::export_roles
    ]
);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    let preloading = unsafe { pg_sys::process_shared_preload_libraries_in_progress };
    gucs::init(preloading);
    if preloading {
        worker::shmem::init();
        worker::launcher::register();
        etcd::worker::register();
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
