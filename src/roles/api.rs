//! SQL surface of declarative roles. Thin: read (catalog.rs), decide (plan.rs), execute.

use pgrx::JsonB;
use pgrx::prelude::*;
use serde_json::{Map, Value, json};

use super::attributes::ATTRIBUTES;
use super::model::{
    Expiry, ObjKind, PasswordInput, ROLE_FIELDS, RoleSpec, check_role_name, normalise_privileges,
    parse_grant_line, role_from_pigsty,
};
use super::plan::{Phase, Plan, Step, groups};
use super::{catalog, plan, scram};
use crate::error::{Code, Error, fail, raise, require_primary};

/// Where a config-table write belongs.
const TABLES_HINT: &str = "Run it on the primary; pgops' tables replicate to standbys.";
use crate::worker::{dbworker, shmem};

/// Key of the cluster-wide lock that serialises applies (shows in pg_locks as an advisory lock
/// with database 0).
const APPLY_LOCK_KEY: u64 = 0x7067_6f70_7372_6f6c; // "pgopsrol"

/// Raises a planning or loading error with its own SQLSTATE (a bad row is the caller's; a failed
/// catalog read is not) and a hint when it has none.
fn invalid(e: impl Into<Error>) -> ! {
    let e = e.into();
    let e = if e.hint.is_none() {
        e.hint("Fix the row in pgops.role / pgops.default_privilege; nothing was applied.")
    } else {
        e
    };
    raise(e)
}

fn require_superuser(what: &str) {
    crate::error::require_superuser(what, "It reads pg_authid and changes roles cluster-wide.");
}

pub struct Computed {
    pub plan: Plan,
    /// The live state the plan was made from (for its hash, made only when one is asked for:
    /// streaming ten thousand roles into SHA-256 is a tenth of a no-op apply's own CPU).
    live: super::live::Live,
}

impl Computed {
    pub fn hash(&self) -> String {
        self.plan.hash(&self.live)
    }
}

/// Roles are cluster-wide: plan and apply work from any database, with the config tables of the
/// database they are called in. Keeping that config in `pgops.database` (the launcher's) is the
/// convention; a call elsewhere says so, so two configs do not fight unnoticed.
fn note_config_database(what: &str) {
    let home = crate::gucs::database();
    let here = crate::pgutil::current_database();
    if here != home {
        notice!("{what} uses the role config of database \"{here}\"; pgops.database is \"{home}\"");
    }
}

/// Reads config and catalog (every database), plans. Validation errors are raised here.
pub fn compute() -> Computed {
    let (config, live) = catalog::config_and_live_state();
    let (desired, opts) = config.unwrap_or_else(|e| invalid(e));
    let (live, notices) = live.unwrap_or_else(|e| {
        fail(
            Code::ObjectNotInPrerequisiteState,
            format!("{e:#}"),
            "Nothing was applied.",
        )
    });
    for n in notices {
        notice!("{n}");
    }
    for (db, why) in &live.unreadable {
        warning!("database \"{db}\" could not be read ({why}); nothing is planned there until it can be");
    }
    let plan = plan::plan(&desired, &live, &opts).unwrap_or_else(|e| invalid(e));
    Computed { plan, live }
}

/// What `apply_roles()` would run, one statement a row in executable order. `database` NULL:
/// cluster-wide. Passwords show as `'<redacted>'`.
#[pg_extern(volatile, parallel_unsafe)]
fn plan_roles() -> TableIterator<
    'static,
    (
        name!(seq, i32),
        name!(database, Option<String>),
        name!(statement, String),
        name!(reason, String),
        name!(risk, String),
        name!(plan_hash, String),
    ),
> {
    require_superuser("pgops.plan_roles()");
    note_config_database("pgops.plan_roles()");
    let c = compute();
    let hash = c.hash();
    TableIterator::new(c.plan.steps.into_iter().enumerate().map(move |(i, s)| {
        (
            i as i32 + 1,
            s.database,
            s.display,
            s.reason,
            s.risk.as_str().to_string(),
            hash.clone(),
        )
    }))
}

/// Converges roles, memberships, settings and default privileges to the config.
///
/// With pgops preloaded, cluster-wide statements commit first (in a worker), then each database's
/// statements in a worker connected to it, then DROP ROLE; each group is all-or-nothing and the
/// status column says what happened. Without preload everything runs in this transaction, in
/// this database only.
#[pg_extern(volatile, parallel_unsafe)]
fn apply_roles(
    dry_run: default!(bool, false),
    plan_hash: default!(Option<String>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(seq, i32),
        name!(database, Option<String>),
        name!(statement, String),
        name!(reason, String),
        name!(risk, String),
        name!(status, String),
    ),
> {
    require_superuser("pgops.apply_roles()");
    require_primary(
        "pgops.apply_roles()",
        "Run it on the primary; roles replicate to standbys.",
    );
    note_config_database("pgops.apply_roles()");
    crate::pgutil::cluster_lock(APPLY_LOCK_KEY);
    // Plan from what is committed now, after the wait for the lock: reads run read-only on the
    // active snapshot, which the calling statement took before the wait.
    let c = crate::pgutil::with_fresh_snapshot(compute);
    if let Some(wanted) = plan_hash.as_deref() {
        let now = c.hash();
        if wanted != now {
            fail(
                Code::ObjectNotInPrerequisiteState,
                format!(
                    "the catalog or the config changed since the plan was made (plan hash {wanted}, now {now})"
                ),
                "Run pgops.plan_roles() again, review it, and pass its plan_hash.",
            );
        }
    }
    let steps = c.plan.steps;
    let status = run_plan(&steps, dry_run, &|_| None);
    let failed = status.iter().filter(|s| s.starts_with("failed")).count();
    if failed > 0 {
        warning!("pgops.apply_roles(): {failed} statement(s) failed; see the status column");
    }
    TableIterator::new(steps.into_iter().zip(status).enumerate().map(|(i, (s, st))| {
        (
            i as i32 + 1,
            s.database,
            s.display,
            s.reason,
            s.risk.as_str().to_string(),
            st,
        )
    }))
}

/// Runs the plan's steps but those `hold` holds (Some(why): shown as the row's status, not
/// run); returns each row's status.
pub fn run_plan(steps: &[Step], dry_run: bool, hold: &dyn Fn(&Step) -> Option<String>) -> Vec<String> {
    let mut status: Vec<String> = steps
        .iter()
        .map(|s| match hold(s) {
            Some(why) => why,
            None if dry_run => "dry run".into(),
            None => "not run".into(),
        })
        .collect();
    if !dry_run && status.iter().any(|s| s == "not run") {
        if shmem::preloaded() {
            run_in_workers(steps, &mut status);
        } else {
            run_inline(steps, &mut status);
        }
    }
    status
}

/// The launcher's reconcile of roles: plans under the same lock as `apply_roles()` (None when
/// another apply holds it: the next turn tries again) and runs what `hold` lets through.
pub fn reconcile(hold: &dyn Fn(&Step) -> Option<String>) -> Option<(Vec<Step>, Vec<String>)> {
    if !crate::pgutil::try_cluster_lock(APPLY_LOCK_KEY) {
        return None;
    }
    let c = crate::pgutil::with_fresh_snapshot(compute);
    let status = run_plan(&c.plan.steps, false, hold);
    Some((c.plan.steps, status))
}

fn run_in_workers(steps: &[Step], status: &mut [String]) {
    let here = crate::pgutil::current_database();
    let mut cluster_failed = false;
    let mut database_failed = false;
    for g in groups(steps) {
        let blocked = match g.phase {
            Phase::Cluster => false,
            Phase::Database => cluster_failed,
            Phase::ClusterFinal => cluster_failed || database_failed,
        };
        // Rows held back (by the reconcile policy) are not run and fail nothing.
        let rows: Vec<usize> = g.rows.iter().copied().filter(|&i| status[i] == "not run").collect();
        if rows.is_empty() {
            continue;
        }
        if blocked {
            for &i in &rows {
                status[i] = "skipped: an earlier group failed".into();
            }
            continue;
        }
        let statements: Vec<String> = rows.iter().map(|&i| steps[i].statement.clone()).collect();
        let db = g.database.clone().unwrap_or_else(|| here.clone());
        let outcome = dbworker::run_and_wait(
            &db,
            &dbworker::Task::Exec {
                label: "apply".into(),
                statements,
            },
        );
        let failure = match outcome {
            Ok(v) if v.get("ok") == Some(&Value::Bool(true)) => None,
            Ok(v) => Some((
                v.get("failed").and_then(Value::as_u64).map(|n| n as usize),
                v.get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_string(),
            )),
            Err(e) => Some((None, e.one_line())),
        };
        match failure {
            None => {
                for &i in &rows {
                    status[i] = "applied".into();
                }
            }
            Some((at, error)) => {
                for (k, &i) in rows.iter().enumerate() {
                    status[i] = match at {
                        Some(a) if a == k => format!("failed: {error}"),
                        Some(_) => "rolled back".into(),
                        None => format!("failed: {error}"),
                    };
                }
                match g.phase {
                    Phase::Cluster => cluster_failed = true,
                    _ => database_failed = true,
                }
            }
        }
    }
}

fn run_inline(steps: &[Step], status: &mut [String]) {
    let rows: Vec<usize> = (0..steps.len()).filter(|&i| status[i] == "not run").collect();
    let statements: Vec<String> = rows.iter().map(|&i| steps[i].statement.clone()).collect();
    PgTryBuilder::new(|| dbworker::run_statements(&statements))
        .catch_others(|e| {
            let at = dbworker::failed_statement();
            let shown = rows.get(at).map(|&i| steps[i].display.as_str()).unwrap_or("?");
            // The statement's own SQLSTATE (a missing schema, a lock timeout, a read-only
            // transaction…): what went wrong is the user's to see, not an internal error.
            crate::error::reraise(
                &e,
                format!(
                    "pgops.apply_roles(): statement {} failed: {}: {shown}",
                    at + 1,
                    crate::worker::xact::describe(&e)
                ),
                "Nothing was applied (the whole apply runs in this transaction).",
            )
        })
        .execute()
        .unwrap_or_else(|e| invalid(e.hint("Nothing was applied.")));
    for &i in &rows {
        status[i] = "applied".into();
    }
}

/// Rows of `pgops.role_drift`: one per difference between config and catalog.
#[pg_extern(volatile, parallel_unsafe)]
fn _role_drift() -> TableIterator<
    'static,
    (
        name!(database, Option<String>),
        name!(object, String),
        name!(field, String),
        name!(want, Option<String>),
        name!(have, Option<String>),
    ),
> {
    require_superuser("pgops.role_drift");
    note_config_database("pgops.role_drift");
    let c = compute();
    let rows: Vec<_> = c
        .plan
        .diffs()
        .map(|(db, d)| {
            (
                db.clone(),
                d.object.clone(),
                d.field.clone(),
                d.want.clone(),
                d.have.clone(),
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// The one row of `pgops.role_drift_summary`, for a Grafana stat panel or an alert.
#[pg_extern(volatile, parallel_unsafe)]
fn _role_drift_summary() -> TableIterator<
    'static,
    (
        name!(differences, i64),
        name!(statements, i64),
        name!(roles_to_create, i64),
        name!(roles_to_drop, i64),
        name!(revokes, i64),
        name!(md5_passwords, i64),
        name!(checked_at, TimestampWithTimeZone),
    ),
> {
    require_superuser("pgops.role_drift_summary");
    note_config_database("pgops.role_drift_summary");
    let c = compute();
    let count = |f: &dyn Fn(&Step) -> bool| c.plan.steps.iter().filter(|s| f(s)).count() as i64;
    let row = (
        c.plan.diffs().count() as i64,
        c.plan.steps.len() as i64,
        count(&|s| s.statement.starts_with("CREATE ROLE")),
        count(&|s| s.statement.starts_with("DROP ROLE")),
        count(&|s| s.risk == plan::Risk::Revoke),
        c.plan.notes.iter().filter(|n| n.field == "password").count() as i64,
        TimestampWithTimeZone::try_from(unsafe { pg_sys::GetCurrentTimestamp() }).expect("now is a valid timestamp"),
    );
    TableIterator::once(row)
}

/// The iteration count of new verifiers: the session's `scram_iterations` (PG16+), never fewer
/// than PostgreSQL's default 4096 — a database or session that set it to 1 must not weaken them.
fn scram_iterations() -> u32 {
    crate::spi::get_one::<String>("SELECT current_setting('scram_iterations', true)")
        .ok()
        .flatten()
        .and_then(|s| s.parse().ok())
        .unwrap_or(scram::DEFAULT_ITERATIONS)
        .max(scram::DEFAULT_ITERATIONS)
}

fn verifier_for(role: &str, input: PasswordInput) -> String {
    match input {
        PasswordInput::Verifier(v) => v,
        PasswordInput::Plaintext(p) if scram::is_md5_verifier(&p) => fail(
            Code::InvalidParameterValue,
            format!("role \"{role}\": the password is an md5 verifier; pgops stores only SCRAM-SHA-256 verifiers"),
            "Give the plaintext (pgops converts it and keeps only the verifier) or a SCRAM-SHA-256 verifier.",
        ),
        PasswordInput::Plaintext(p) => {
            // The same password given again keeps the verifier it has (the role's in the catalog,
            // else the one declared): a fresh salt would be a change for the next apply to make.
            for q in [
                "SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1",
                "SELECT password FROM pgops.role WHERE name = $1",
            ] {
                let have = Spi::get_one_with_args::<String>(q, &[role.into()]).ok().flatten();
                // Only at the iteration count pgops would use: a role may set its own verifier,
                // and one with 2^31 iterations must not make this call compute it.
                let usual = have.as_deref().and_then(scram::parse).is_some_and(|v| v.iterations == scram_iterations());
                if let Some(v) = have.filter(|v| usual && scram::matches(v, &p)) {
                    return v;
                }
            }
            scram::new_verifier(&p, scram_iterations()).unwrap_or_else(|e| invalid(e))
        }
    }
}

fn warn_if_logged(what: &str) {
    let logged = crate::spi::get_one::<bool>(
        "SELECT current_setting('log_statement') = 'all' OR current_setting('log_min_duration_statement') <> '-1'
                OR current_setting('log_min_duration_sample') <> '-1'",
    )
    .ok()
    .flatten()
    .unwrap_or(false);
    if logged {
        warning!(
            "{what}: this server logs statements (log_statement = all, or their duration), so the call that passed a plaintext \
             password may be in the server log; run SET log_statement = 'none' and log_min_duration_statement = -1 in the \
             session first, pass SCRAM verifiers, or pass the inventory with pg_read_file() so its text is not in the statement"
        );
    }
}

/// The row of pgops.role for `spec` as JSON with every column.
fn role_row(spec: &RoleSpec, password: Option<String>) -> Value {
    let (expire_in, expire_at) = match &spec.expiry {
        Some(Expiry::InDays(d)) => (json!(d), Value::Null),
        Some(Expiry::At(at)) => (Value::Null, json!(at)),
        None => (Value::Null, Value::Null),
    };
    let roles: Vec<Value> = spec
        .memberships
        .iter()
        .map(|m| {
            if !m.admin && m.inherit.is_none() && m.set.is_none() {
                json!(m.role)
            } else {
                let mut o = Map::new();
                o.insert("name".into(), json!(m.role));
                if m.admin {
                    o.insert("admin".into(), json!(true));
                }
                if let Some(i) = m.inherit {
                    o.insert("inherit".into(), json!(i));
                }
                if let Some(s) = m.set {
                    o.insert("set".into(), json!(s));
                }
                Value::Object(o)
            }
        })
        .collect();
    let mut row = json!({
        "name": spec.name, "state": if spec.present { "present" } else { "absent" },
        "connlimit": spec.connlimit, "password": password,
        "expire_in": expire_in, "expire_at": expire_at, "comment": spec.comment,
        "roles": roles, "parameters": spec.parameters,
        "pgbouncer": spec.pgbouncer, "pool_mode": spec.pool_mode, "pool_connlimit": spec.pool_connlimit,
    });
    for (a, on) in spec.attrs.iter() {
        row[a.field] = json!(on);
    }
    row
}

/// Inserts or replaces one row of pgops.role ($1: the row as JSON); a row without a password
/// keeps the stored verifier. Every column but the name and the password is replaced.
fn upsert_role_sql() -> String {
    let columns = ROLE_FIELDS
        .iter()
        .copied()
        .filter(|c| !matches!(*c, "name" | "password"))
        .chain(ATTRIBUTES.iter().map(|a| a.field));
    let set: Vec<String> = columns.map(|c| format!("{c} = EXCLUDED.{c}")).collect();
    format!(
        "INSERT INTO pgops.role SELECT * FROM jsonb_populate_record(NULL::pgops.role, $1)
         ON CONFLICT (name) DO UPDATE SET {}, password = coalesce(EXCLUDED.password, pgops.role.password)",
        set.join(", ")
    )
}

/// Loads Pigsty `pg_users` / `pg_default_roles` objects into pgops.role (insert or replace each
/// named role; other rows stay). Plaintext passwords become SCRAM verifiers; only those are kept.
#[pg_extern(volatile, parallel_unsafe)]
fn load_roles(roles: JsonB) -> i32 {
    require_primary("pgops.load_roles()", TABLES_HINT);
    require_superuser("pgops.load_roles()");
    let Value::Array(items) = roles.0 else {
        fail(
            Code::InvalidParameterValue,
            "pgops.load_roles() takes a JSON array of role objects",
            "Pass Pigsty's pg_users list as jsonb.",
        )
    };
    load_role_items(&items, false, "pgops.load_roles()")
}

/// Inserts or replaces each role object; with `undeclared_null`, an attribute or connlimit the
/// object does not declare is stored NULL (not managed, as Pigsty leaves it).
pub(crate) fn load_role_items(items: &[Value], undeclared_null: bool, caller: &str) -> i32 {
    let mut plaintext = false;
    for item in items {
        let (spec, password) = role_from_pigsty(item).unwrap_or_else(|e| invalid(e));
        plaintext |= matches!(password, Some(PasswordInput::Plaintext(_)));
        let password = password.map(|p| verifier_for(&spec.name, p));
        let mut row = role_row(&spec, password);
        if undeclared_null && let Value::Object(o) = &mut row {
            for field in super::model::unmanageable_columns() {
                if item.get(field).is_none_or(Value::is_null) {
                    o.insert(field.into(), Value::Null);
                }
            }
        }
        Spi::run_with_args(&upsert_role_sql(), &[JsonB(row).into()]).unwrap_or_else(|e| invalid(e));
    }
    if plaintext {
        warn_if_logged(caller);
    }
    items.len() as i32
}

/// Stores the SCRAM-SHA-256 verifier of `password` for a declared role (never the plaintext).
/// The next apply sets it; an unchanged password plans nothing.
#[pg_extern(volatile, parallel_unsafe)]
fn set_password(role: &str, password: &str) {
    require_primary("pgops.set_password()", TABLES_HINT);
    require_superuser("pgops.set_password()");
    let verifier = verifier_for(
        role,
        if scram::is_verifier(password) {
            PasswordInput::Verifier(password.into())
        } else {
            PasswordInput::Plaintext(password.into())
        },
    );
    let updated = Spi::get_one_with_args::<i64>(
        "WITH u AS (UPDATE pgops.role SET password = $2 WHERE name = $1 RETURNING 1) SELECT count(*) FROM u",
        &[role.into(), verifier.into()],
    )
    .unwrap_or_else(|e| invalid(e))
    .unwrap_or(0);
    if updated == 0 {
        fail(
            Code::UndefinedObject,
            format!("role \"{role}\" is not declared in pgops.role"),
            "Declare it first (INSERT INTO pgops.role or pgops.load_roles()).",
        );
    }
    if !scram::is_verifier(password) {
        warn_if_logged("pgops.set_password()");
    }
}

const UPSERT_PRIVILEGE: &str = "INSERT INTO pgops.default_privilege
      (creator, database, schema, object_type, privileges, grantee, grant_option, existing)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (creator, (coalesce(database, '')), (coalesce(schema, '')), object_type, grantee, grant_option, privileges)
    DO UPDATE SET existing = EXCLUDED.existing";

/// Loads Pigsty `pg_default_privileges` lines (`GRANT SELECT ON TABLES TO dbrole_readonly`) for
/// each creator role in `owners`.
#[pg_extern(volatile, parallel_unsafe)]
pub(crate) fn load_default_privileges(
    privileges: JsonB,
    owners: default!(Vec<String>, "ARRAY['postgres', 'dbuser_dba', 'dbrole_admin']"),
    existing: default!(bool, false),
    database: default!(Option<String>, "NULL"),
) -> i32 {
    require_primary("pgops.load_default_privileges()", TABLES_HINT);
    require_superuser("pgops.load_default_privileges()");
    let Value::Array(lines) = privileges.0 else {
        fail(
            Code::InvalidParameterValue,
            "pgops.load_default_privileges() takes a JSON array of strings",
            "Pass Pigsty's pg_default_privileges list as jsonb.",
        )
    };
    let version = crate::spi::get_one::<i32>("SELECT current_setting('server_version_num')::int")
        .ok()
        .flatten()
        .unwrap_or(0);
    let mut n = 0;
    for line in &lines {
        let text = line.as_str().unwrap_or_else(|| {
            invalid(Error::invalid(format!(
                "default privileges must be strings, got {line}"
            )))
        });
        let (privs, kind, schema, grantee, grant_option) = parse_grant_line(text).unwrap_or_else(|e| invalid(e));
        let privs =
            normalise_privileges(&privs, kind, version).unwrap_or_else(|e| invalid(e.context(format!("\"{text}\""))));
        for owner in &owners {
            check_role_name(owner).unwrap_or_else(|e| invalid(e));
            Spi::run_with_args(
                UPSERT_PRIVILEGE,
                &[
                    owner.clone().into(),
                    database.clone().into(),
                    schema.clone().into(),
                    kind.as_str().into(),
                    privs.clone().into(),
                    grantee.clone().into(),
                    grant_option.into(),
                    existing.into(),
                ],
            )
            .unwrap_or_else(|e| invalid(e));
            n += 1;
        }
    }
    n
}

/// Pigsty's `pg_default_roles` (from its defaults; `postgres` also keeps the attributes initdb
/// gives the bootstrap superuser, so converging does not strip them).
const PIGSTY_ROLES: &str = r#"[
  {"name": "dbrole_readonly",  "login": false, "comment": "role for global read-only access"},
  {"name": "dbrole_offline",   "login": false, "comment": "role for restricted read-only access"},
  {"name": "dbrole_readwrite", "login": false, "roles": ["dbrole_readonly"], "comment": "role for global read-write access"},
  {"name": "dbrole_admin",     "login": false, "roles": ["pg_monitor", "dbrole_readwrite"], "comment": "role for object creation"},
  {"name": "postgres",         "superuser": true, "createdb": true, "createrole": true, "replication": true, "bypassrls": true, "comment": "system superuser"},
  {"name": "replicator",       "replication": true, "roles": ["pg_monitor", "dbrole_readonly"], "comment": "system replicator"},
  {"name": "dbuser_dba",       "superuser": true, "roles": ["dbrole_admin"], "pgbouncer": true, "pool_mode": "session", "pool_connlimit": 16, "comment": "pgsql admin user"},
  {"name": "dbuser_monitor",   "roles": ["pg_monitor", "dbrole_readonly"], "pgbouncer": true, "parameters": {"log_min_duration_statement": 1000}, "pool_mode": "session", "pool_connlimit": 8, "comment": "pgsql monitor user"}
]"#;

/// Pigsty's `pg_default_privileges` (verbatim).
const PIGSTY_DEFAULT_PRIVILEGES: &[&str] = &[
    "GRANT USAGE ON SCHEMAS TO dbrole_readonly",
    "GRANT SELECT ON TABLES TO dbrole_readonly",
    "GRANT SELECT ON SEQUENCES TO dbrole_readonly",
    "GRANT EXECUTE ON FUNCTIONS TO dbrole_readonly",
    "GRANT USAGE ON SCHEMAS TO dbrole_offline",
    "GRANT SELECT ON TABLES TO dbrole_offline",
    "GRANT SELECT ON SEQUENCES TO dbrole_offline",
    "GRANT EXECUTE ON FUNCTIONS TO dbrole_offline",
    "GRANT INSERT ON TABLES TO dbrole_readwrite",
    "GRANT UPDATE ON TABLES TO dbrole_readwrite",
    "GRANT DELETE ON TABLES TO dbrole_readwrite",
    "GRANT USAGE ON SEQUENCES TO dbrole_readwrite",
    "GRANT UPDATE ON SEQUENCES TO dbrole_readwrite",
    "GRANT TRUNCATE ON TABLES TO dbrole_admin",
    "GRANT REFERENCES ON TABLES TO dbrole_admin",
    "GRANT TRIGGER ON TABLES TO dbrole_admin",
    "GRANT CREATE ON SCHEMAS TO dbrole_admin",
];

/// Loads Pigsty's 8 default roles and its 17 default privileges for the creators Pigsty uses
/// (postgres, dbuser_dba, dbrole_admin). Returns the number of rows loaded (8 + 51).
#[pg_extern(volatile, parallel_unsafe)]
fn load_pigsty_baseline() -> i32 {
    require_primary("pgops.load_pigsty_baseline()", TABLES_HINT);
    let roles: Value = serde_json::from_str(PIGSTY_ROLES).expect("the baseline is valid JSON");
    let n = load_roles(JsonB(roles));
    n + load_default_privileges(
        JsonB(json!(PIGSTY_DEFAULT_PRIVILEGES)),
        vec!["postgres".into(), "dbuser_dba".into(), "dbrole_admin".into()],
        false,
        None,
    )
}

/// The live roles as Pigsty-shaped JSON (loadable by load_roles(): export → load → plan is empty).
/// Built-in `pg_*` roles are left out. Verifiers only with `include_passwords`.
#[pg_extern(volatile, parallel_unsafe)]
fn export_roles(include_passwords: default!(bool, false)) -> JsonB {
    require_superuser("pgops.export_roles()");
    let (live, _) = catalog::live_state(&[]).unwrap_or_else(|e| invalid(e));
    let mut out = Vec::new();
    for r in live.roles.values().filter(|r| !r.name.starts_with("pg_")) {
        let mut o = Map::new();
        o.insert("name".into(), json!(r.name));
        for (a, on) in r.attrs.iter() {
            o.insert(a.field.into(), json!(on));
        }
        o.insert("connlimit".into(), json!(r.connlimit));
        if let Some(v) = r.valid_until.as_ref().filter(|v| v.as_str() != "infinity") {
            o.insert("expire_at".into(), json!(v));
        }
        if let Some(c) = &r.comment {
            o.insert("comment".into(), json!(c));
        }
        if include_passwords {
            if let Some(p) = &r.password {
                o.insert("password".into(), json!(p));
            }
        }
        let roles: Vec<Value> = r
            .memberships
            .iter()
            .map(|m| {
                if m.admin {
                    json!({"name": m.role, "admin": true})
                } else {
                    json!(m.role)
                }
            })
            .collect();
        o.insert("roles".into(), json!(roles));
        o.insert("parameters".into(), json!(r.settings));
        out.push(Value::Object(o));
    }
    JsonB(Value::Array(out))
}

/// Validates a pgops.role row (called by its trigger). Errors name the role and the field.
#[pg_extern(stable, parallel_safe)]
fn _check_role(row: JsonB) {
    let name = row.0.get("name").and_then(Value::as_str).unwrap_or("?").to_string();
    let prefix = |m: String| format!("pgops.role \"{name}\": {m}");
    // A NULL in a NOT NULL column: the constraint (checked after this BEFORE trigger) refuses the
    // row with 23502 naming the column.
    // Attributes and connlimit may be NULL: not managed.
    const NULLABLE: [&str; 4] = ["password", "expire_in", "expire_at", "comment"];
    let unmanageable: Vec<&str> = super::model::unmanageable_columns().collect();
    if row.0.as_object().is_some_and(|o| {
        o.iter()
            .any(|(k, v)| v.is_null() && !NULLABLE.contains(&k.as_str()) && !unmanageable.contains(&k.as_str()))
    }) {
        return;
    }
    let spec = super::model::role_from_row(&row.0)
        .unwrap_or_else(|e| {
            fail(
                Code::CheckViolation,
                format!("pgops.role: {e}"),
                "Fix the value; the row was not stored.",
            )
        });
    if let Err(e) = super::model::check_new_role_name(&spec.name) {
        fail(
            Code::CheckViolation,
            format!("pgops.role: {e}"),
            "Choose another name; the row was not stored.",
        );
    }
    if let Some(p) = row.0.get("password").and_then(Value::as_str) {
        if !scram::is_verifier(p) {
            let what = if scram::is_md5_verifier(p) {
                "an md5 verifier"
            } else {
                "not a SCRAM-SHA-256 verifier"
            };
            fail(
                Code::CheckViolation,
                prefix(format!(
                    "field \"password\" is {what}; pgops stores only SCRAM-SHA-256 verifiers"
                )),
                "Use pgops.set_password(role, password): it stores the verifier, never the plaintext.",
            );
        }
    }
    let checks: [(bool, &str, String); 4] = [
        (
            spec.connlimit < -1,
            "connlimit",
            format!("must be -1 (no limit) or more, got {}", spec.connlimit),
        ),
        (
            spec.pool_connlimit < -1,
            "pool_connlimit",
            format!("must be -1 (no limit) or more, got {}", spec.pool_connlimit),
        ),
        (
            !["transaction", "session", "statement"].contains(&spec.pool_mode.as_str()),
            "pool_mode",
            format!("must be transaction, session or statement, got \"{}\"", spec.pool_mode),
        ),
        (
            spec.memberships.iter().any(|m| m.role.is_empty() || m.role.len() > 63),
            "roles",
            "has a role name that is empty or over 63 bytes".into(),
        ),
    ];
    for (bad, field, msg) in checks {
        if bad {
            fail(
                Code::CheckViolation,
                prefix(format!("field \"{field}\" {msg}")),
                "Fix the value; the row was not stored.",
            );
        }
    }
}

/// Validates a pgops.default_privilege row (called by its trigger).
#[pg_extern(stable, parallel_safe)]
fn _check_default_privilege(row: JsonB) {
    let v = &row.0;
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let what = format!(
        "pgops.default_privilege (creator \"{}\", grantee \"{}\")",
        s("creator"),
        s("grantee")
    );
    let kind = ObjKind::parse(&s("object_type")).unwrap_or_else(|| {
        fail(
            Code::CheckViolation,
            format!(
                "{what}: field \"object_type\" must be tables, sequences, functions, types or schemas, got \"{}\"",
                s("object_type")
            ),
            "Fix the value; the row was not stored.",
        )
    });
    let privs: Vec<String> = v
        .get("privileges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(String::from))
        .collect();
    let version = crate::spi::get_one::<i32>("SELECT current_setting('server_version_num')::int")
        .ok()
        .flatten()
        .unwrap_or(0);
    if let Err(e) = normalise_privileges(&privs, kind, version) {
        fail(
            Code::CheckViolation,
            format!("{what}: field \"privileges\": {e}"),
            "Fix the value; the row was not stored.",
        );
    }
    for field in ["creator", "grantee"] {
        if let Err(e) = check_role_name(&s(field)) {
            fail(
                Code::CheckViolation,
                format!("{what}: field \"{field}\": {e}"),
                "Fix the value; the row was not stored.",
            );
        }
    }
}
