//! Every `pgops.*` setting, in one place, with its documentation.
//!
//! Settings are `SIGHUP` unless they size something the postmaster fixes at start (those are
//! defined only while pgops is being preloaded, because PostgreSQL refuses `PGC_POSTMASTER`
//! settings from a library loaded later).

use std::ffi::CString;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

pub static DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"postgres"));
pub static NAPTIME_MS: GucSetting<i32> = GucSetting::<i32>::new(5_000);
pub static SAMPLE_INTERVAL_MS: GucSetting<i32> = GucSetting::<i32>::new(60_000);
pub static CLUSTER_NAME: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static INSTANCE_NAME: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static LAUNCHER_RESTART_S: GucSetting<i32> = GucSetting::<i32>::new(5);
pub static DEBUG_LAUNCHER_ERROR: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static PROTECTED_ROLES: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres,replicator,dbuser_dba,dbuser_monitor"));
pub static PROTECTED_DATABASES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static REVOKECONN_ROLES: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"replicator,dbuser_monitor,dbuser_dba"));
pub static DROP_REASSIGN_TO: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static INSTANCE_ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static OFFLINE_QUERY: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static HBA_IPV6: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static HBA_BACKUPS: GucSetting<i32> = GucSetting::<i32>::new(5);
pub static HBA_FOLLOW: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static PATRONI_NAMESPACE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static PATRONI_SCOPE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static PATRONI_USERS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static BASELINE_DIRECTORY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static FREEZE_HISTORY_DAYS: GucSetting<i32> = GucSetting::<i32>::new(30);
pub static FREEZE_HISTORY_RUNS: GucSetting<i32> = GucSetting::<i32>::new(1000);
pub static FREEZE_MAX_WORKERS: GucSetting<i32> = GucSetting::<i32>::new(2);
pub static PARALLEL_READS: GucSetting<i32> = GucSetting::<i32>::new(4);
pub static VERIFY_BLOAT_MAX_PAGES: GucSetting<i32> = GucSetting::<i32>::new(131072);
pub static ETCD_ENDPOINTS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ETCD_PREFIX: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"/pg"));
pub static ETCD_TTL_S: GucSetting<i32> = GucSetting::<i32>::new(30);
pub static ETCD_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(10);
pub static ETCD_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(2_000);
pub static ETCD_USERNAME: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ETCD_PASSWORD_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ETCD_CACERT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ETCD_CERT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ETCD_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// How far the launcher reconciles one capability by itself (`pgops_core::reconcile::Policy`).
#[derive(pgrx::PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReconcilePolicy {
    #[name = c"off"]
    Off,
    #[name = c"report"]
    Report,
    #[name = c"safe"]
    Safe,
    #[name = c"all"]
    All,
}

impl ReconcilePolicy {
    pub fn core(self) -> pgops_core::reconcile::Policy {
        use pgops_core::reconcile::Policy;
        match self {
            ReconcilePolicy::Off => Policy::Off,
            ReconcilePolicy::Report => Policy::Report,
            ReconcilePolicy::Safe => Policy::Safe,
            ReconcilePolicy::All => Policy::All,
        }
    }
}

pub static RECONCILE_ROLES: GucSetting<ReconcilePolicy> = GucSetting::<ReconcilePolicy>::new(ReconcilePolicy::Off);
pub static RECONCILE_DATABASES: GucSetting<ReconcilePolicy> =
    GucSetting::<ReconcilePolicy>::new(ReconcilePolicy::Off);
pub static RECONCILE_HBA: GucSetting<ReconcilePolicy> = GucSetting::<ReconcilePolicy>::new(ReconcilePolicy::Off);
pub static RECONCILE_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(60);
pub static RECONCILE_HISTORY_RUNS: GucSetting<i32> = GucSetting::<i32>::new(1000);
pub static SECURITY_SCORE_INTERVAL_S: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub static FLEET_NAME: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static FLEET_TRUSTED_KEYS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static FLEET_MIN_GENERATION: GucSetting<i32> = GucSetting::<i32>::new(0);

/// Registers the settings. `preloading` is true inside `shared_preload_libraries` processing.
pub fn init(preloading: bool) {
    GucRegistry::define_string_guc(
        c"pgops.database",
        c"Database the pgops launcher connects to.",
        c"The launcher reads pgops' configuration tables in this database and records worker history \
          there. Changing it (then reloading) makes the launcher reconnect.",
        &DATABASE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgops.naptime",
        c"Longest time the pgops launcher sleeps between two turns.",
        c"The launcher also wakes when a sample or a job is due, or when a SQL function asks it to.",
        &NAPTIME_MS,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pgops.sample_interval",
        c"How often the launcher samples the next transaction ID and multixact ID.",
        c"Samples go to a fixed-size ring in shared memory (pgops.xid_samples); the wraparound \
          forecast computes burn rates from them.",
        &SAMPLE_INTERVAL_MS,
        100,
        86_400_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_string_guc(
        c"pgops.cluster_name",
        c"Cluster name pgops reports (HBA header, etcd keys).",
        c"Empty: the server's cluster_name setting, else 'pg'.",
        &CLUSTER_NAME,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgops.instance_name",
        c"Instance name pgops reports (HBA header, etcd keys).",
        c"Empty: '<cluster>-<hostname>'.",
        &INSTANCE_NAME,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pgops.debug_launcher_error",
        c"Developer option: make every launcher turn fail with an injected error.",
        c"Used by pgops' tests to prove that a failing turn is caught, logged, shown in \
          pgops.workers, and that the launcher goes on. Never needed in production.",
        &DEBUG_LAUNCHER_ERROR,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgops.protected_roles",
        c"Roles pgops.apply_roles() never drops (comma-separated).",
        c"The bootstrap superuser and the role running the apply are always protected too. Defaults to \
          Pigsty's system users.",
        &PROTECTED_ROLES,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgops.protected_databases",
        c"Databases pgops.apply_databases() never drops or recreates (comma-separated).",
        c"postgres, template0, template1, pgops.database and the database the apply runs in are always protected.",
        &PROTECTED_DATABASES,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgops.revokeconn_roles",
        c"Roles that keep CONNECT on a database declared with revokeconn (comma-separated).",
        c"Pigsty's replication, monitor and admin users by default; roles that do not exist are skipped. \
          The owner always keeps CONNECT WITH GRANT OPTION.",
        &REVOKECONN_ROLES,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgops.drop_reassign_to",
        c"Role that receives the objects of a role dropped by pgops.apply_roles().",
        c"Empty: pgops_orphans (NOLOGIN, created by CREATE EXTENSION). A superuser is refused.",
        &DROP_REASSIGN_TO,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgops.instance_role",
        c"Role of this instance for HBA rule filtering: primary, replica, offline, standby or delayed.",
        c"Empty: primary or replica, from pg_is_in_recovery().",
        &INSTANCE_ROLE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pgops.offline_query",
        c"This replica also serves offline queries (HBA rules for role 'offline' apply to it).",
        c"Pigsty's pg_offline_query.",
        &OFFLINE_QUERY,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pgops.hba_ipv6",
        c"Render IPv6 lines for the localhost and world aliases (::1/128, ::/0).",
        c"Off reproduces Pigsty's IPv4-only files.",
        &HBA_IPV6,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgops.hba_backups",
        c"How many previous pg_hba.conf files pgops.apply_hba() keeps next to the file.",
        c"Backups are named pg_hba.conf.pgops-<timestamp>-<instance>; another instance's backups (copied \
          with a data directory) are not counted, and are removed when the launcher re-renders the file.",
        &HBA_BACKUPS,
        1,
        1000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pgops.hba_follow",
        c"Re-render pg_hba.conf when this instance changes role or finds a file rendered for another instance.",
        c"The launcher checks the file's pgops stamp every two seconds; a file pgops wrote for this instance \
          in its other role, or for another instance (pg_basebackup, a reinit), is rendered and applied \
          again as pgops.apply_hba() does. A file edited by hand or written by Patroni is never replaced.",
        &HBA_FOLLOW,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgops.patroni_namespace",
        c"Patroni's namespace in etcd, read (never written) by the pgops etcd worker.",
        c"Empty: pgops.etcd_prefix (Pigsty uses /pg for both). Patroni's keys are read under \
          <namespace>/<scope>/: members (this server's member name, every member's address), leader, config.",
        &PATRONI_NAMESPACE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgops.baseline_directory",
        c"The directory a declared database's baseline file (Pigsty's baseline: cmdb.sql) is read from.",
        c"Only a superuser (or postgresql.conf) sets it; no file outside it is read. Empty: baselines that name a file are refused.",
        &BASELINE_DIRECTORY,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgops.patroni_scope",
        c"Patroni's scope (cluster name) whose keys pgops reads.",
        c"Empty: the cluster name pgops reports (Patroni sets cluster_name to its scope).",
        &PATRONI_SCOPE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgops.patroni_users",
        c"Users Patroni connects as over TCP to other members (superuser, rewind), comma-separated.",
        c"Empty: the bootstrap superuser. pg_hba.conf must admit them from every member's address; \
          replication users are taken from the ${repl} alias and from live replication connections.",
        &PATRONI_USERS,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgops.freeze_history_days",
        c"Days of VACUUM FREEZE history (pgops.freeze_run and its tables) the launcher keeps.",
        c"Older finished runs are deleted with their per-table rows; see also pgops.freeze_history_runs.",
        &FREEZE_HISTORY_DAYS,
        1,
        36500,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgops.freeze_history_runs",
        c"Most finished VACUUM FREEZE runs the launcher keeps in pgops.freeze_run.",
        c"The oldest finished runs beyond this many are deleted with their per-table rows.",
        &FREEZE_HISTORY_RUNS,
        1,
        1_000_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgops.freeze_max_workers",
        c"Most VACUUM FREEZE database workers running at once.",
        c"A job over every database queues one run per database; the others wait (their detail says \
          so), leaving max_worker_processes to parallel query and logical replication.",
        &FREEZE_MAX_WORKERS,
        1,
        64,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgops.parallel_reads",
        c"Most per-database workers one call starts at once to read or plan several databases.",
        c"plan_roles(), apply_roles(), plan_databases() and installations() read each database in a worker \
          of its own; this many run side by side (fewer when max_worker_processes has no room).",
        &PARALLEL_READS,
        1,
        16,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgops.verify_bloat_max_pages",
        c"Most pages pgops.verify_bloat() may read for a caller that is not a superuser.",
        c"pg_monitor may call verify_bloat, which runs as the extension's owner; this caps its max_pages.",
        &VERIFY_BLOAT_MAX_PAGES,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    define_etcd();
    define_reconcile();
    define_fleet();
    if preloading {
        GucRegistry::define_int_guc(
            c"pgops.launcher_restart_time",
            c"Seconds after which the postmaster restarts a launcher that exited or crashed.",
            c"Read at server start.",
            &LAUNCHER_RESTART_S,
            1,
            3_600,
            GucContext::Postmaster,
            GucFlags::UNIT_S,
        );
    }
    #[cfg(any(feature = "pg15", feature = "pg16", feature = "pg17", feature = "pg18"))]
    unsafe {
        // A typo such as `SET pgops.naptme = 1` is an error, not a silently ignored placeholder.
        pg_sys::MarkGUCPrefixReserved(c"pgops".as_ptr());
    }
    // PostgreSQL 13 and 14 cannot reserve a prefix: a typo is only warned about when the library
    // loads (the placeholder is kept, as the server does for any unknown prefix).
    #[cfg(any(feature = "pg13", feature = "pg14"))]
    unsafe {
        pg_sys::EmitWarningsOnPlaceholders(c"pgops".as_ptr());
    }
}

fn define_etcd() {
    let strings: [(&std::ffi::CStr, &std::ffi::CStr, &std::ffi::CStr, &'static GucSetting<Option<CString>>, GucFlags); 7] = [
        (
            c"pgops.etcd_endpoints",
            c"etcd endpoints the pgops etcd worker publishes to (comma-separated URLs); empty turns publishing off.",
            c"http(s)://host:port of each etcd member, tried in order; the one that answered last is tried first.",
            &ETCD_ENDPOINTS,
            GucFlags::default(),
        ),
        (
            c"pgops.etcd_prefix",
            c"etcd key prefix; pgops writes only under <prefix>/<cluster>/pgops/.",
            c"Patroni's namespace (Pigsty: /pg), so a per-cluster etcd user limited to <prefix>/<cluster>/ can write it.",
            &ETCD_PREFIX,
            GucFlags::default(),
        ),
        (
            c"pgops.etcd_username",
            c"etcd user for publishing (with pgops.etcd_password_file).",
            c"Empty: no authentication.",
            &ETCD_USERNAME,
            GucFlags::default(),
        ),
        (
            c"pgops.etcd_password_file",
            c"File holding the etcd user's password (first line), readable only by the server's OS user.",
            c"The password itself is never a setting or a table value. The file is re-read before each push.",
            &ETCD_PASSWORD_FILE,
            GucFlags::SUPERUSER_ONLY,
        ),
        (
            c"pgops.etcd_cacert",
            c"PEM file of the CA that signed etcd's certificates (https endpoints).",
            c"Only this CA is trusted; the system store is not used.",
            &ETCD_CACERT,
            GucFlags::SUPERUSER_ONLY,
        ),
        (
            c"pgops.etcd_cert",
            c"PEM client certificate for etcd (with pgops.etcd_key).",
            c"Empty: no client certificate.",
            &ETCD_CERT,
            GucFlags::SUPERUSER_ONLY,
        ),
        (
            c"pgops.etcd_key",
            c"PEM private key of the etcd client certificate.",
            c"Readable by the server's OS user only.",
            &ETCD_KEY,
            GucFlags::SUPERUSER_ONLY,
        ),
    ];
    for (name, short, long, setting, flags) in strings {
        GucRegistry::define_string_guc(name, short, long, setting, GucContext::Sighup, flags);
    }
    GucRegistry::define_int_guc(
        c"pgops.etcd_ttl",
        c"TTL of the etcd lease the member key is bound to.",
        c"The key disappears this long after the server stops without revoking it (crash, immediate stop). \
          Must be at least twice pgops.etcd_interval.",
        &ETCD_TTL_S,
        5,
        3_600,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"pgops.etcd_interval",
        c"How often the pgops etcd worker refreshes its lease and publishes the instance's state.",
        c"The lease is refreshed every interval; the document is rewritten only when its state changed, or its \
          progress (LSNs, lags, ages) at most every half TTL.",
        &ETCD_INTERVAL_S,
        1,
        1_800,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"pgops.etcd_timeout",
        c"Timeout of one etcd request (per endpoint).",
        c"A request that times out moves on to the next endpoint.",
        &ETCD_TIMEOUT_MS,
        100,
        60_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
}

fn define_reconcile() {
    for (name, short, setting) in [
        (
            c"pgops.reconcile_roles",
            c"Whether the launcher keeps roles, memberships and default privileges as declared, by itself.",
            &RECONCILE_ROLES,
        ),
        (
            c"pgops.reconcile_databases",
            c"Whether the launcher keeps databases as declared (pgops.database_spec), by itself.",
            &RECONCILE_DATABASES,
        ),
        (
            c"pgops.reconcile_hba",
            c"Whether the launcher keeps pg_hba.conf as rendered from pgops.hba_rule, by itself.",
            &RECONCILE_HBA,
        ),
    ] {
        GucRegistry::define_enum_guc(
            name,
            short,
            c"off: never. report: plans every pgops.reconcile_interval (and at once after a change to the \
              config tables) and records what it would do in pgops.reconcile_run. safe: applies what takes \
              nothing away and holds revokes. all: applies revokes too. Drops and baselines always wait for \
              a reviewed plan_hash. Only on a primary.",
            setting,
            GucContext::Sighup,
            GucFlags::default(),
        );
    }
    GucRegistry::define_int_guc(
        c"pgops.reconcile_interval",
        c"How often the launcher plans each capability whose pgops.reconcile_* is not off.",
        c"A committed change to pgops' config tables wakes it at once; a failing statement waits this \
          long, doubled per failure (at most an hour), before it is tried again.",
        &RECONCILE_INTERVAL_S,
        1,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"pgops.security_score_interval",
        c"How often the launcher records pgops.security_score in pgops.security_score_history (0: never).",
        c"In the launcher's database (pgops.database), on the primary; a row only when the score changed.",
        &SECURITY_SCORE_INTERVAL_S,
        0,
        604_800,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"pgops.reconcile_history_runs",
        c"How many rows pgops.reconcile_run keeps (the oldest go first).",
        c"A reconcile that finds what the last one found adds no row (and writes nothing).",
        &RECONCILE_HISTORY_RUNS,
        10,
        1_000_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
}

fn define_fleet() {
    GucRegistry::define_string_guc(
        c"pgops.fleet_name",
        c"The fleet this instance follows: the etcd worker loads its cluster's share of <etcd_prefix>/fleet/<name>.",
        c"Empty: no fleet. The document must be signed by a key in pgops.fleet_trusted_keys and newer than the \
          generation loaded; the primary loads its share into the config tables in one transaction, and the \
          reconcile policies apply it.",
        &FLEET_NAME,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pgops.fleet_trusted_keys",
        c"Ed25519 public keys (base64, comma-separated) whose signatures make a fleet document trusted.",
        c"Only postgresql.conf or ALTER SYSTEM (a superuser) set it: whoever can write etcd cannot. Make a key \
          pair with pgops-fleet keygen.",
        &FLEET_TRUSTED_KEYS,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pgops.fleet_min_generation",
        c"The oldest fleet document generation this instance may load (0: any).",
        c"An instance that has loaded nothing yet would take whichever signed document it finds, an old \
          one an etcd writer put back included: set this to the generation current when the instance \
          joins. Instances that have loaded a generation refuse anything older anyway.",
        &FLEET_MIN_GENERATION,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::default(),
    );
}

pub fn fleet_min_generation() -> i64 {
    i64::from(FLEET_MIN_GENERATION.get().max(0))
}

pub fn fleet_name() -> Option<String> {
    string(&FLEET_NAME)
}

pub fn fleet_trusted_keys() -> String {
    string(&FLEET_TRUSTED_KEYS).unwrap_or_default()
}

/// 0: the score is not recorded.
pub fn security_score_interval_ms() -> i64 {
    i64::from(SECURITY_SCORE_INTERVAL_S.get().max(0)) * 1000
}

pub fn reconcile_interval_ms() -> i64 {
    i64::from(RECONCILE_INTERVAL_S.get().max(1)) * 1000
}

pub fn reconcile_history_runs() -> i64 {
    i64::from(RECONCILE_HISTORY_RUNS.get().max(10))
}

fn string(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.trim().is_empty())
}

pub fn database() -> String {
    string(&DATABASE).unwrap_or_else(|| "postgres".into())
}

pub fn naptime() -> std::time::Duration {
    std::time::Duration::from_millis(NAPTIME_MS.get().max(10) as u64)
}

pub fn sample_interval_ms() -> i64 {
    SAMPLE_INTERVAL_MS.get().max(100) as i64
}

pub fn cluster_name_setting() -> Option<String> {
    string(&CLUSTER_NAME)
}

pub fn instance_name_setting() -> Option<String> {
    string(&INSTANCE_NAME)
}

pub fn launcher_restart_secs() -> u64 {
    LAUNCHER_RESTART_S.get().max(1) as u64
}

pub fn debug_launcher_error() -> bool {
    DEBUG_LAUNCHER_ERROR.get()
}

/// A comma-separated list setting: its non-empty items, trimmed.
fn list(setting: &GucSetting<Option<CString>>) -> Vec<String> {
    string(setting)
        .map(|s| {
            s.split(',')
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

pub fn protected_databases() -> Vec<String> {
    list(&PROTECTED_DATABASES)
}

pub fn revokeconn_roles() -> Vec<String> {
    list(&REVOKECONN_ROLES)
}

pub fn protected_roles() -> Vec<String> {
    list(&PROTECTED_ROLES)
}

pub fn drop_reassign_to() -> Option<String> {
    string(&DROP_REASSIGN_TO)
}

pub fn instance_role() -> Option<String> {
    string(&INSTANCE_ROLE)
}

pub fn offline_query() -> bool {
    OFFLINE_QUERY.get()
}

pub fn hba_ipv6() -> bool {
    HBA_IPV6.get()
}

pub fn verify_bloat_max_pages() -> i64 {
    VERIFY_BLOAT_MAX_PAGES.get() as i64
}

pub fn parallel_reads() -> usize {
    PARALLEL_READS.get().max(1) as usize
}

pub fn freeze_max_workers() -> i64 {
    FREEZE_MAX_WORKERS.get() as i64
}

pub fn freeze_history() -> (i32, i32) {
    (FREEZE_HISTORY_DAYS.get(), FREEZE_HISTORY_RUNS.get())
}

pub fn hba_follow() -> bool {
    HBA_FOLLOW.get()
}

pub fn patroni_namespace() -> Option<String> {
    string(&PATRONI_NAMESPACE)
}

pub fn baseline_directory() -> Option<String> {
    string(&BASELINE_DIRECTORY)
}

pub fn patroni_scope() -> Option<String> {
    string(&PATRONI_SCOPE)
}

pub fn patroni_users() -> Vec<String> {
    list(&PATRONI_USERS)
}

pub fn hba_backups() -> usize {
    HBA_BACKUPS.get().max(1) as usize
}

/// The etcd settings as the worker reads them.
pub use pgops_core::etcd::config::EtcdSettings;

pub fn etcd() -> EtcdSettings {
    EtcdSettings {
        endpoints: string(&ETCD_ENDPOINTS)
            .map(|s| {
                s.split(',')
                    .map(|e| e.trim().to_string())
                    .filter(|e| !e.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        prefix: string(&ETCD_PREFIX).unwrap_or_else(|| "/pg".into()),
        ttl_s: ETCD_TTL_S.get() as i64,
        interval_s: ETCD_INTERVAL_S.get() as i64,
        timeout_ms: ETCD_TIMEOUT_MS.get() as i64,
        username: string(&ETCD_USERNAME),
        password_file: string(&ETCD_PASSWORD_FILE),
        cacert: string(&ETCD_CACERT),
        cert: string(&ETCD_CERT),
        key: string(&ETCD_KEY),
    }
}
