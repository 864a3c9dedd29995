//! SQL surface of declared databases: plan, apply (CREATE / DROP DATABASE at top level in a
//! worker; ALTER, COMMENT, GRANT in a worker's transaction; schemas, extensions and the baseline in
//! a worker connected to the database), load, export, drift, and the config table's trigger.

use std::collections::BTreeMap;

use pgrx::prelude::*;
use serde_json::{Value, json};

use super::model::DatabaseSpec;
use super::plan::{Foreign, Live, LiveDatabase, Options, Place, Plan, Risk, Step};
use crate::error::{Code, Error, fail, raise, require_primary};
use crate::worker::{dbworker, shmem};

const APPLY_LOCK_KEY: u64 = 0x7067_6f70_7364_6273; // "pgopsdbs"
const LIVE_SQL: &str = include_str!("../../sql/queries/databases_live.sql");
const INSIDE_SQL: &str = include_str!("../../sql/queries/databases_inside.sql");
const SCHEMAS_SQL: &str = include_str!("../../sql/queries/databases_schemas.sql");

fn invalid(e: Error) -> ! {
    let e = if e.hint.is_none() {
        e.hint("Fix the row in pgops.database_spec; nothing was applied.")
    } else {
        e
    };
    raise(e)
}

fn require_superuser(what: &str) {
    crate::error::require_superuser(what, "It creates, changes and drops databases cluster-wide.");
}

fn json(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> Value {
    crate::spi::json(sql, args).unwrap_or_else(|e| raise(Error::internal(format!("pgops databases: {e}"))))
}

/// The config, in definition order.
fn desired() -> Vec<DatabaseSpec> {
    let rows = json(
        "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(d) - 'ordinal' ORDER BY d.ordinal, d.name), '[]')
         FROM pgops.database_spec d",
        &[],
    );
    rows.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| DatabaseSpec::parse(&strip_nulls(v)).unwrap_or_else(|e| invalid(e)))
        .collect()
}

/// A row as JSON without its NULL columns (NULL means "not declared").
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect()),
        other => other.clone(),
    }
}

/// What `databases_inside.sql` reads in one database (`databases_schemas.sql`, the light read:
/// not what non-superusers could have put there — None).
struct InsideRead {
    schemas: BTreeMap<String, String>,
    extensions: BTreeMap<String, (String, String)>,
    unsafe_schemas: Option<BTreeMap<String, String>>,
    schema_create: BTreeMap<String, Vec<String>>,
    foreign: Option<Foreign>,
}

fn field<T: serde::de::DeserializeOwned + Default>(v: &Value, key: &str, db: &str) -> Result<T, Error> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(T::default()),
        Some(x) => serde_json::from_value(x.clone()).map_err(|e| Error::internal(format!("database \"{db}\": {key}: {e}"))),
    }
}

/// A database's schemas and extensions, read in it (this database inline, others by a worker;
/// `closed`: also when it accepts no connections, for a template); with `full`, also the schemas
/// non-superusers could have filled and the objects they own.
fn inside(db: &str, closed: bool, full: bool) -> Result<InsideRead, Error> {
    let v = if db == crate::pgutil::current_database() {
        crate::spi::json(if full { INSIDE_SQL } else { SCHEMAS_SQL }, &[])?
    } else {
        dbworker::run_and_wait(db, &inside_task(closed, full))?
    };
    inside_read(db, &v)
}

fn inside_task(closed: bool, full: bool) -> dbworker::Task {
    dbworker::Task::Query {
        label: "database snapshot".into(),
        sql: if full { INSIDE_SQL } else { SCHEMAS_SQL }.into(),
        args: vec![],
        rows: false,
        closed,
    }
}

/// A database to read inside: its name, whether it may be closed (a template), whether in full.
type Wanted = (String, bool, bool);

/// Several databases' `inside` reads, the others' workers side by side; in the order given.
fn inside_many(wanted: &[Wanted]) -> Vec<Result<InsideRead, Error>> {
    let here = crate::pgutil::current_database();
    let jobs: Vec<(String, dbworker::Task)> = wanted
        .iter()
        .filter(|(db, _, _)| *db != here)
        .map(|(db, closed, full)| (db.clone(), inside_task(*closed, *full)))
        .collect();
    let mut read = dbworker::run_many(&jobs, crate::gucs::parallel_reads()).into_iter();
    wanted
        .iter()
        .map(|(db, closed, full)| {
            if *db == here {
                inside(db, *closed, *full)
            } else {
                read.next().unwrap_or_else(|| Err(Error::internal("not read"))).and_then(|v| inside_read(db, &v))
            }
        })
        .collect()
}

fn inside_read(db: &str, v: &Value) -> Result<InsideRead, Error> {
    Ok(InsideRead {
        schemas: field(v, "schemas", db)?,
        extensions: field(v, "extensions", db)?,
        unsafe_schemas: field::<Option<_>>(v, "unsafe_schemas", db)?,
        schema_create: field(v, "schema_create", db)?,
        foreign: field::<Option<_>>(v, "foreign_objects", db)?,
    })
}

const AVAILABLE_SQL: &str = "SELECT coalesce(pg_catalog.jsonb_object_agg(v.name::text, pg_catalog.jsonb_build_object(
         'trusted', v.trusted, 'schema', v.schema::text, 'requires', coalesce(pg_catalog.to_jsonb(v.requires::text[]), '[]'))), '{}')
     FROM pg_catalog.pg_available_extensions a
     JOIN pg_catalog.pg_available_extension_versions v ON v.name = a.name AND v.version = a.default_version";

/// The catalog: every database, the roles, and inside each declared database that needs it (and
/// accepts connections) its schemas and extensions, and inside each template a database is
/// about to be cloned from, what it holds. A database that cannot be read is noticed and planned
/// as if nothing was known of it (nothing that executes objects runs there as a superuser then).
fn live(specs: &[DatabaseSpec], read_inside: bool) -> Live {
    let dbs: Vec<LiveDatabase> = serde_json::from_value(json(LIVE_SQL, &[]))
        .unwrap_or_else(|e| raise(Error::internal(format!("pgops databases: reading pg_database: {e}"))));
    let roles = json(
        "SELECT pg_catalog.jsonb_build_object('all', coalesce(pg_catalog.jsonb_agg(rolname::text), '[]'),
                'super', coalesce(pg_catalog.jsonb_agg(rolname::text) FILTER (WHERE rolsuper), '[]'))
         FROM pg_catalog.pg_roles",
        &[],
    );
    let runs: BTreeMap<String, Vec<String>> = serde_json::from_value(json(
        "SELECT coalesce(pg_catalog.jsonb_object_agg(r.database, r.digests), '{}')
         FROM (SELECT b.database, pg_catalog.jsonb_agg(b.sha256) AS digests FROM pgops.baseline_run b GROUP BY b.database) r",
        &[],
    ))
    .unwrap_or_default();
    let mut live = Live {
        databases: dbs
            .into_iter()
            .map(|mut d| {
                d.baselines = runs.get(&d.name).cloned().unwrap_or_default();
                (d.name.clone(), d)
            })
            .collect(),
        roles: serde_json::from_value(roles["all"].clone()).unwrap_or_default(),
        superusers: serde_json::from_value(roles["super"].clone()).unwrap_or_default(),
        available: serde_json::from_value(json(AVAILABLE_SQL, &[])).unwrap_or_default(),
    };
    if !read_inside {
        return live;
    }
    let mut wanted: Vec<Wanted> = vec![];
    for s in specs {
        if s.state == super::model::State::Absent {
            continue;
        }
        let exists = live.databases.contains_key(&s.name);
        if exists && s.state == super::model::State::Present {
            if !s.schemas.is_empty() || !s.extensions.is_empty() || s.baseline.is_some() {
                // The light read; in full only where the plan turns out to have work inside.
                wanted.push((s.name.clone(), false, false));
            }
        } else {
            // Created (or created again): what its template holds decides who runs the work inside.
            let t = s.template.clone().unwrap_or_else(|| "template1".into());
            if t != "template0" {
                wanted.push((t, true, true));
            }
        }
    }
    // Each database once (a template of several, or declared and a template: in full), those
    // that can be entered.
    let mut once: Vec<Wanted> = vec![];
    for (db, closed, full) in wanted {
        match once.iter_mut().find(|w| w.0 == db) {
            Some(w) => {
                w.1 |= closed;
                w.2 |= full;
            }
            None => once.push((db, closed, full)),
        }
    }
    once.retain(|(db, closed, _)| live.databases.get(db).is_some_and(|d| d.allowconn || *closed));
    read_inside_into(&mut live, &once);
    live
}

/// Reads inside each wanted database and records what was read in `live`; a database that cannot
/// be read is noticed and left as it was.
fn read_inside_into(live: &mut Live, wanted: &[Wanted]) {
    let reads = inside_many(wanted);
    for ((db, _, full), read) in wanted.iter().zip(reads) {
        match read {
            Ok(r) => {
                let d = live.databases.get_mut(db).expect("looked up by the caller");
                d.schemas = Some(r.schemas);
                d.extensions = Some(r.extensions);
                d.unsafe_schemas = r.unsafe_schemas;
                d.schema_create = Some(r.schema_create);
                d.foreign_objects = r.foreign;
            }
            Err(e) if *full && live.databases.get(db).is_some_and(|d| d.schemas.is_some()) => notice!(
                "pgops databases: could not read what non-superusers could have put in database {}: {} \
                 (nothing there runs as a superuser)",
                crate::sqltext::ident(db),
                e.one_line()
            ),
            Err(e) => notice!(
                "pgops databases: could not read the schemas and extensions of database {}: {}",
                crate::sqltext::ident(db),
                e.one_line()
            ),
        }
    }
}

fn options() -> Options {
    Options {
        protected: crate::gucs::protected_databases(),
        config_database: crate::gucs::database(),
        current_database: crate::pgutil::current_database(),
        revokeconn_roles: crate::gucs::revokeconn_roles(),
        server_version: pg_sys::PG_VERSION_NUM as i32,
        bootstrap: crate::pgutil::bootstrap_superuser(),
    }
}

struct Computed {
    plan: Plan,
    hash: String,
    declared: usize,
}

fn compute() -> Computed {
    compute_with(true)
}

/// `read_inside`: read each declared database's schemas and extensions (a worker per database).
fn compute_with(read_inside: bool) -> Computed {
    let specs = desired();
    let mut live = live(&specs, read_inside);
    let opts = options();
    let mut plan = super::plan::plan(&specs, &live, &opts).unwrap_or_else(|e| invalid(e));
    // A database read lightly where the plan has work inside (or a note): what non-superusers
    // could have put there is read as well, and the plan made again with it. A converged
    // database costs the light read only.
    let full: Vec<Wanted> = live
        .databases
        .values()
        .filter(|d| d.schemas.is_some() && (d.unsafe_schemas.is_none() || d.foreign_objects.is_none()))
        .filter(|d| {
            plan.steps.iter().any(|s| {
                matches!(&s.place, Place::Inside(db) if *db == d.name)
                    || (s.database == d.name && matches!(s.place, Place::Inside(_) | Place::Note))
            })
        })
        .map(|d| (d.name.clone(), false, true))
        .collect();
    if !full.is_empty() {
        read_inside_into(&mut live, &full);
        plan = super::plan::plan(&specs, &live, &opts).unwrap_or_else(|e| invalid(e));
    }
    let hash = plan.hash(&live);
    Computed {
        plan,
        hash,
        declared: specs.len(),
    }
}

/// Where and as whom a statement runs, for the plan's `runs` column.
fn runs(s: &Step) -> String {
    match &s.place {
        Place::TopLevel => "top level".into(),
        Place::Cluster => "transaction".into(),
        Place::Inside(db) if s.window => format!("in {db}, closed, as {}", s.runner()),
        Place::Inside(db) => format!("in {db} as {}", s.runner()),
        Place::Note => "not run".into(),
    }
}

/// What `apply_databases()` would run, one statement a row in executable order.
#[pg_extern(volatile, parallel_unsafe)]
fn plan_databases() -> TableIterator<
    'static,
    (
        name!(seq, i32),
        name!(database, String),
        name!(runs, String),
        name!(statement, String),
        name!(reason, String),
        name!(risk, String),
        name!(plan_hash, String),
    ),
> {
    require_superuser("pgops.plan_databases()");
    let c = compute();
    let hash = c.hash.clone();
    TableIterator::new(c.plan.steps.into_iter().enumerate().map(move |(i, s)| {
        let r = runs(&s);
        (
            i as i32 + 1,
            s.database,
            r,
            s.statement,
            s.reason,
            s.risk.as_str().to_string(),
            hash.clone(),
        )
    }))
}

/// What a batch did: None when every statement succeeded; else the statement that stopped it
/// (None: before any) and the error; plus, inside a database, the statements that failed alone
/// (a schema or an extension: the others went on).
struct BatchOutcome {
    stopped: Option<(Option<usize>, String)>,
    failed_alone: Vec<(usize, String)>,
}

/// Runs one batch of steps in a worker (at top level, in a transaction, or inside their
/// database as each step's runner and guard say).
fn run_batch(home: &str, steps: &[Step]) -> BatchOutcome {
    let statements: Vec<String> = steps.iter().map(|s| s.statement.clone()).collect();
    let (database, task) = match &steps[0].place {
        Place::TopLevel => (
            home.to_string(),
            dbworker::Task::Utility {
                label: "apply databases".into(),
                statements,
            },
        ),
        Place::Inside(db) => (
            db.clone(),
            dbworker::Task::Handler {
                name: super::inside::HANDLER.name.into(),
                arg: serde_json::to_value(super::inside::Batch {
                    closed: steps[0].window,
                    statements: steps
                        .iter()
                        .map(|s| super::inside::Statement {
                            sql: s.statement.clone(),
                            run_as: s.run_as.clone(),
                            guard: s.guard.clone(),
                            public_path: s.public_path,
                            creates_schema: s.creates_schema.clone(),
                            script: s.baseline_digest.is_some(),
                        })
                        .collect(),
                })
                .unwrap_or(Value::Null),
            },
        ),
        Place::Cluster | Place::Note => (
            home.to_string(),
            dbworker::Task::Exec {
                label: "apply databases".into(),
                statements,
            },
        ),
    };
    let failed_alone = |v: &Value| -> Vec<(usize, String)> {
        v.get("results")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .enumerate()
                    .filter_map(|(i, r)| r.get("error").and_then(Value::as_str).map(|e| (i, e.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    match dbworker::run_and_wait(&database, &task) {
        Ok(v) if v.get("ok") == Some(&Value::Bool(true)) => BatchOutcome {
            stopped: None,
            failed_alone: failed_alone(&v),
        },
        Ok(v) => BatchOutcome {
            stopped: Some((
                v.get("failed").and_then(Value::as_u64).map(|n| n as usize),
                v.get("error").and_then(Value::as_str).unwrap_or("unknown error").to_string(),
            )),
            failed_alone: failed_alone(&v),
        },
        Err(e) => BatchOutcome {
            stopped: Some((None, e.one_line())),
            failed_alone: vec![],
        },
    }
}

/// Records that a baseline ran in a database (each content runs once).
fn record_baseline(database: &str, digest: &str) {
    let _ = pgrx::spi::Spi::run_with_args(
        "INSERT INTO pgops.baseline_run (database, sha256) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[database.into(), digest.into()],
    );
}

/// Creates, changes and retires databases as declared. Each database's statements run in order
/// (CREATE / DROP DATABASE at top level, the rest in transactions); a failure stops that
/// database's remaining statements and no other's. A plan that drops anything needs the
/// `plan_hash` of the plan the caller reviewed.
#[pg_extern(volatile, parallel_unsafe)]
fn apply_databases(
    dry_run: default!(bool, false),
    plan_hash: default!(Option<String>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(seq, i32),
        name!(database, String),
        name!(runs, String),
        name!(statement, String),
        name!(reason, String),
        name!(risk, String),
        name!(status, String),
    ),
> {
    require_superuser("pgops.apply_databases()");
    if !dry_run {
        require_primary(
            "pgops.apply_databases()",
            "Run it on the primary; databases replicate to standbys.",
        );
    }
    if !dry_run && !shmem::preloaded() {
        fail(
            Code::ObjectNotInPrerequisiteState,
            "pgops.apply_databases() needs pgops in shared_preload_libraries: CREATE and DROP DATABASE run in a worker",
            "Add pgops to shared_preload_libraries and restart, or run the statements of pgops.plan_databases() with psql.",
        );
    }
    // Databases and baselines are committed by workers; what the apply records (a baseline's
    // digest, a recreate's row) must not be rolled back with a transaction block around it.
    // SAFETY: reads this backend's transaction state.
    if !dry_run && unsafe { pg_sys::IsTransactionBlock() } {
        fail(
            Code::ActiveSqlTransaction,
            "pgops.apply_databases() cannot run inside a transaction block: the databases and baselines it makes \
             commit in workers, and what it records of them would be rolled back with the block",
            "Call it on its own (autocommit), or with dry_run => true inside the block.",
        );
    }
    crate::pgutil::cluster_lock(APPLY_LOCK_KEY);
    let c = crate::pgutil::with_fresh_snapshot(compute);
    if let Some(wanted) = plan_hash.as_deref()
        && wanted != c.hash
    {
        fail(
            Code::ObjectNotInPrerequisiteState,
            format!(
                "the catalog or the config changed since the plan was made (plan hash {wanted}, now {})",
                c.hash
            ),
            "Run pgops.plan_databases() again, review it, and pass its plan_hash.",
        );
    }
    if !dry_run && plan_hash.is_none() && c.plan.drops() {
        let drops: Vec<String> = c
            .plan
            .steps
            .iter()
            .filter(|s| s.risk.needs_review())
            .map(|s| match s.risk {
                Risk::Script => format!("the baseline of database {}", crate::sqltext::ident(&s.database)),
                _ => s.statement.clone(),
            })
            .collect();
        fail(
            Code::ObjectNotInPrerequisiteState,
            format!(
                "pgops.apply_databases(): the plan drops something or runs a baseline in a database that exists ({}); refused without the plan_hash of a plan you reviewed",
                drops.join("; ")
            ),
            "Run SELECT * FROM pgops.plan_databases(), review it, then pgops.apply_databases(plan_hash => '<its plan_hash>').",
        );
    }
    let steps = c.plan.steps;
    let status = run_plan(&steps, dry_run, &|_| None);
    TableIterator::new(steps.into_iter().zip(status).enumerate().map(|(i, (s, st))| {
        let r = runs(&s);
        (
            i as i32 + 1,
            s.database,
            r,
            s.statement,
            s.reason,
            s.risk.as_str().to_string(),
            st,
        )
    }))
}

/// Runs the plan's steps but those `hold` holds (Some(why): the row's status, not run; a held
/// CREATE or DROP holds the rest of its database); returns each row's status.
pub fn run_plan(steps: &[Step], dry_run: bool, hold: &dyn Fn(&Step) -> Option<String>) -> Vec<String> {
    let mut status: Vec<String> = steps
        .iter()
        .map(|s| {
            if let Some(why) = hold(s) {
                why
            } else if s.place == Place::Note {
                "not run: see the statement".into()
            } else if dry_run {
                "dry run".into()
            } else {
                "not run".into()
            }
        })
        .collect();
    if !dry_run {
        let home = crate::gucs::database();
        // Databases this apply creates: any failure leaves one closed and the superuser's, and
        // stops the rest of its statements (it is never opened half-made).
        let creating: std::collections::BTreeSet<String> = steps
            .iter()
            .filter(|s| s.place == Place::TopLevel && s.statement.starts_with("CREATE DATABASE"))
            .map(|s| s.database.clone())
            .collect();
        let mut failed_dbs: Vec<String> = vec![];
        let mut held_dbs: Vec<String> = vec![];
        let mut i = 0;
        while i < steps.len() {
            let s = &steps[i];
            if s.place == Place::Note {
                i += 1;
                continue;
            }
            if status[i].starts_with("held") {
                // Without its CREATE (or clone) the database's other statements cannot run.
                if s.place == Place::TopLevel && !held_dbs.contains(&s.database) {
                    held_dbs.push(s.database.clone());
                }
                i += 1;
                continue;
            }
            if held_dbs.contains(&s.database) {
                status[i] = "held: an earlier statement for this database is held".into();
                i += 1;
                continue;
            }
            // A batch: consecutive statements for the same database, run in the same place.
            let mut j = i + 1;
            while j < steps.len()
                && steps[j].database == s.database
                && steps[j].place == s.place
                && s.place != Place::TopLevel
                && !status[j].starts_with("held")
            {
                j += 1;
            }
            // A clone whose template failed to be created (or created again) is not made: the
            // name could by then be another database's.
            if let Some(t) = s.template.as_ref().filter(|t| failed_dbs.contains(t))
                && !failed_dbs.contains(&s.database)
            {
                failed_dbs.push(s.database.clone());
                status[i] = format!("skipped: its template {} was not created", crate::sqltext::ident(t));
                i += 1;
                continue;
            }
            if failed_dbs.contains(&s.database) {
                let why = if creating.contains(&s.database) {
                    format!(
                        "skipped: an earlier statement for this new database failed; it stays closed (allowconn false) and owned by {} until the cause is fixed and it is applied again",
                        crate::pgutil::bootstrap_superuser()
                    )
                } else {
                    "skipped: an earlier statement for this database failed".to_string()
                };
                for st in status.iter_mut().take(j).skip(i) {
                    *st = why.clone();
                }
                i = j;
                continue;
            }
            let top = s.place == Place::TopLevel;
            let outcome = run_batch(&home, &steps[i..j]);
            for (k, e) in &outcome.failed_alone {
                status[i + k] = format!("failed: {e}");
            }
            match outcome.stopped {
                None => {
                    for (k, st) in status.iter_mut().enumerate().take(j).skip(i) {
                        if !st.starts_with("failed") {
                            *st = "applied".into();
                            if let Some(d) = &steps[k].baseline_digest {
                                record_baseline(&steps[k].database, d);
                            }
                        }
                    }
                    // `recreate` is a request: once the database is created again, the row says
                    // present (a later failure must not make the next apply drop it again).
                    if top && s.statement.starts_with("CREATE DATABASE") {
                        mark_present(&s.database);
                    }
                    // A dropped database's baselines ran in a database that is gone.
                    if top && s.statement.starts_with("DROP DATABASE") {
                        let _ = pgrx::spi::Spi::run_with_args(
                            "DELETE FROM pgops.baseline_run WHERE database = $1",
                            &[s.database.as_str().into()],
                        );
                    }
                }
                Some((at, error)) => {
                    let inside = matches!(s.place, Place::Inside(_));
                    for (k, st) in status.iter_mut().enumerate().take(j).skip(i) {
                        if st.starts_with("failed") {
                            continue;
                        }
                        *st = match at {
                            Some(a) if a == k - i => format!("failed: {error}"),
                            // Inside a database what ran before the stop is committed (psql -f).
                            Some(a) if inside && k - i < a => {
                                if let Some(d) = &steps[k].baseline_digest {
                                    record_baseline(&steps[k].database, d);
                                }
                                "applied".into()
                            }
                            Some(_) if top || inside => "not run".into(),
                            Some(_) => "rolled back".into(),
                            None => format!("failed: {error}"),
                        };
                    }
                    // Without its CREATE or DROP the rest of the database's statements make no
                    // sense, and a new database is never opened half-made; in an existing one a
                    // failed transaction of settings does not stop its schemas.
                    if top || creating.contains(&s.database) {
                        failed_dbs.push(s.database.clone());
                    }
                    if steps[i..j].iter().any(|x| x.reason.starts_with("baseline")) {
                        warning!(
                            "pgops.apply_databases(): the baseline of database {} did not run (its transaction failed): \
                             fix the cause, then set its state to 'recreate' or run the baseline by hand",
                            crate::sqltext::ident(&s.database)
                        );
                    }
                }
            }
            i = j;
        }
        let failed = status.iter().filter(|s| s.starts_with("failed")).count();
        if failed > 0 {
            warning!("pgops.apply_databases(): {failed} statement(s) failed; see the status column");
        }
    }
    status
}

/// The launcher's reconcile of databases: plans under the same lock as `apply_databases()` (None
/// when another apply holds it: the next turn tries again) and runs what `hold` lets through.
pub fn reconcile(hold: &dyn Fn(&Step) -> Option<String>) -> Option<(Vec<Step>, Vec<String>)> {
    if !crate::pgutil::try_cluster_lock(APPLY_LOCK_KEY) {
        return None;
    }
    let c = crate::pgutil::with_fresh_snapshot(compute);
    let status = run_plan(&c.plan.steps, false, hold);
    Some((c.plan.steps, status))
}

/// Sets a `recreate` row back to `present` once its database was created again.
fn mark_present(d: &str) {
    let n = pgrx::spi::Spi::get_one_with_args::<i64>(
        "WITH u AS (UPDATE pgops.database_spec SET state = 'present' WHERE name = $1 AND state = 'recreate' RETURNING 1)
         SELECT pg_catalog.count(*) FROM u",
        &[d.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(0);
    if n > 0 {
        notice!(
            "pgops.apply_databases(): database {} was recreated; its row in pgops.database_spec says present again",
            crate::sqltext::ident(d)
        );
    }
}

/// Rows of `pgops.database_drift`: one per difference between the config and the catalog.
#[pg_extern(volatile, parallel_unsafe)]
fn _database_drift() -> TableIterator<
    'static,
    (
        name!(database, String),
        name!(field, String),
        name!(want, Option<String>),
        name!(have, Option<String>),
        name!(statement, String),
    ),
> {
    require_superuser("pgops.database_drift");
    let c = compute();
    TableIterator::new(c.plan.steps.into_iter().flat_map(|s| {
        let (db, st) = (s.database.clone(), s.statement.clone());
        s.diffs
            .into_iter()
            .map(move |d| (db.clone(), d.field, d.want, d.have, st.clone()))
    }))
}

/// The row of `pgops.database_drift_summary`.
#[pg_extern(volatile, parallel_unsafe)]
fn _database_drift_summary() -> TableIterator<
    'static,
    (
        name!(declared, i64),
        name!(databases_drifting, i64),
        name!(differences, i64),
        name!(to_create, i64),
        name!(to_drop, i64),
        name!(needs_recreate, i64),
        name!(inside_checked, bool),
        name!(checked_at, TimestampWithTimeZone),
    ),
> {
    // Runs as the extension owner. A caller that is not a superuser (Grafana's pg_monitor) gets
    // the catalog-level comparison only: no worker is started in any database on its behalf.
    // SAFETY: the role that called this SECURITY DEFINER function, and whether it is a superuser.
    let full = unsafe { pg_sys::superuser_arg(pg_sys::GetOuterUserId()) };
    let c = compute_with(full);
    let steps = &c.plan.steps;
    let drifting: std::collections::BTreeSet<&str> = steps.iter().map(|s| s.database.as_str()).collect();
    let count = |f: &dyn Fn(&super::plan::Step) -> bool| steps.iter().filter(|s| f(s)).count() as i64;
    let row = (
        c.declared as i64,
        drifting.len() as i64,
        steps.iter().map(|s| s.diffs.len().max(1) as i64).sum(),
        count(&|s| s.place == Place::TopLevel && s.statement.starts_with("CREATE")),
        count(&|s| s.place == Place::TopLevel && s.statement.starts_with("DROP")),
        count(&|s| s.place == Place::Note && s.statement.contains("recreate")),
        full,
        crate::spi::get_one::<TimestampWithTimeZone>("SELECT pg_catalog.now()")
            .ok()
            .flatten()
            .unwrap_or_else(|| raise(Error::internal("pgops databases: no current time"))),
    );
    TableIterator::new(std::iter::once(row))
}

/// Loads Pigsty's `pg_databases` (a list, or an object with a `pg_databases` list) into
/// pgops.database_spec: every entry is validated first (the error names it), then each is inserted
/// or replaces the row of the same name. Returns how many rows were loaded.
#[pg_extern(volatile, parallel_unsafe)]
pub(crate) fn load_databases(databases: pgrx::JsonB) -> i32 {
    require_superuser("pgops.load_databases()");
    let list = match &databases.0 {
        Value::Array(a) => a.clone(),
        Value::Object(m) if m.get("pg_databases").is_some_and(Value::is_array) => {
            m["pg_databases"].as_array().cloned().unwrap_or_default()
        }
        _ => fail(
            Code::InvalidParameterValue,
            "pgops.load_databases(): expected a list of databases (Pigsty's pg_databases), or an object with pg_databases",
            "Pass e.g. '[{\"name\": \"meta\", \"owner\": \"dbuser_meta\"}]'::jsonb.",
        ),
    };
    let mut rows = vec![];
    for (i, v) in list.iter().enumerate() {
        let v = &with_baseline_file(v).unwrap_or_else(|e| {
            raise(
                e.detail(format!("entry {} of the list", i + 1))
                    .hint("Nothing was loaded: set pgops.baseline_directory (a superuser) to where the file is, or fix the entry."),
            )
        });
        let spec = DatabaseSpec::parse(v).unwrap_or_else(|e| {
            raise(
                e.detail(format!("entry {} of the list", i + 1))
                    .hint("Nothing was loaded: fix the entry and load the list again."),
            )
        });
        let mut row = serde_json::to_value(&spec).unwrap_or_default();
        // Schemas and extensions are kept as written (names or objects); state in the table's words.
        row["schemas"] = v.get("schemas").cloned().filter(Value::is_array).unwrap_or(json!([]));
        row["extensions"] = v.get("extensions").cloned().filter(Value::is_array).unwrap_or(json!([]));
        rows.push(row);
    }
    for row in &rows {
        pgrx::spi::Spi::run_with_args(
            "INSERT INTO pgops.database_spec AS d (name, state, owner, template, strategy, encoding, locale, lc_collate, lc_ctype, tablespace, locale_provider, icu_locale, icu_rules, builtin_locale, is_template, allowconn, revokeconn, connlimit, comment, schemas, extensions, parameters, grants, baseline, baseline_file, force, pgbouncer, pool_auth_user, pool_mode, pool_size, pool_size_reserve, pool_size_min, pool_max_db_conn, register_datasource)
             SELECT r.name, r.state, r.owner, r.template, r.strategy, r.encoding, r.locale, r.lc_collate, r.lc_ctype, r.tablespace, r.locale_provider, r.icu_locale, r.icu_rules, r.builtin_locale, r.is_template, r.allowconn, r.revokeconn, r.connlimit, r.comment, r.schemas, r.extensions, r.parameters, r.grants, r.baseline, r.baseline_file, r.force, r.pgbouncer, r.pool_auth_user, r.pool_mode, r.pool_size, r.pool_size_reserve, r.pool_size_min, r.pool_max_db_conn, r.register_datasource
             FROM pg_catalog.jsonb_populate_record(NULL::pgops.database_spec, $1) r
             ON CONFLICT (name) DO UPDATE SET
               state = EXCLUDED.state, owner = EXCLUDED.owner, template = EXCLUDED.template, strategy = EXCLUDED.strategy,
               encoding = EXCLUDED.encoding, locale = EXCLUDED.locale, lc_collate = EXCLUDED.lc_collate,
               lc_ctype = EXCLUDED.lc_ctype, tablespace = EXCLUDED.tablespace, locale_provider = EXCLUDED.locale_provider,
               icu_locale = EXCLUDED.icu_locale, icu_rules = EXCLUDED.icu_rules, builtin_locale = EXCLUDED.builtin_locale,
               is_template = EXCLUDED.is_template,
               allowconn = EXCLUDED.allowconn, revokeconn = EXCLUDED.revokeconn, connlimit = EXCLUDED.connlimit,
               comment = EXCLUDED.comment, schemas = EXCLUDED.schemas, extensions = EXCLUDED.extensions,
               parameters = EXCLUDED.parameters, grants = EXCLUDED.grants, baseline = EXCLUDED.baseline, baseline_file = EXCLUDED.baseline_file,
               force = EXCLUDED.force, pgbouncer = EXCLUDED.pgbouncer, pool_auth_user = EXCLUDED.pool_auth_user,
               pool_mode = EXCLUDED.pool_mode, pool_size = EXCLUDED.pool_size, pool_size_reserve = EXCLUDED.pool_size_reserve,
               pool_size_min = EXCLUDED.pool_size_min, pool_max_db_conn = EXCLUDED.pool_max_db_conn,
               register_datasource = EXCLUDED.register_datasource",
            &[pgrx::JsonB(row.clone()).into()],
        )
        .unwrap_or_else(|e| raise(Error::internal(format!("pgops.load_databases(): {e}"))));
    }
    rows.len() as i32
}

/// An entry whose `baseline` names a file (Pigsty's `cmdb.sql`): the file's content, read from
/// `pgops.baseline_directory`, with its name in `baseline_file`. Other entries as they are.
pub(crate) fn with_baseline_file(v: &Value) -> Result<Value, Error> {
    let Some(name) = v.get("baseline").and_then(Value::as_str).filter(|b| super::model::looks_like_file(b)) else {
        return Ok(v.clone());
    };
    let name = name.trim();
    let db = v.get("name").and_then(Value::as_str).unwrap_or("?");
    let at = |m: String| Error::invalid(format!("database \"{db}\", field baseline: {m}"));
    super::model::check_baseline_file(name).map_err(|e| at(e.message))?;
    let dir = crate::gucs::baseline_directory()
        .ok_or_else(|| at(format!("\"{name}\" names a file, and pgops.baseline_directory is not set")))?;
    let dir = std::fs::canonicalize(&dir).map_err(|e| at(format!("pgops.baseline_directory {dir}: {e}")))?;
    let path = std::fs::canonicalize(dir.join(name)).map_err(|e| at(format!("{}: {e}", dir.join(name).display())))?;
    if !path.starts_with(&dir) {
        return Err(at(format!("\"{name}\" leads outside pgops.baseline_directory")));
    }
    // Opened once, then checked and read through the same handle (no swap between the checks and
    // the read); a file others than its owner may write is not run as a superuser's script.
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let file = std::fs::File::open(&path).map_err(|e| at(format!("{}: {e}", path.display())))?;
    let meta = file.metadata().map_err(|e| at(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(at(format!("{} is not a regular file", path.display())));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(at(format!(
            "{} may be written by its group or by anyone: fix its mode (chmod go-w) before pgops runs it",
            path.display()
        )));
    }
    let mut bytes = vec![];
    file.take((16 << 20) + 1).read_to_end(&mut bytes).map_err(|e| at(format!("{}: {e}", path.display())))?;
    if bytes.len() > 16 << 20 {
        return Err(at(format!("{} is larger than 16 MiB", path.display())));
    }
    let text = String::from_utf8(bytes).map_err(|_| at(format!("{} is not UTF-8 text", path.display())))?;
    if text.contains('\0') {
        return Err(at(format!("{} contains a NUL byte", path.display())));
    }
    let mut out = v.clone();
    out["baseline"] = Value::String(text);
    out["baseline_file"] = Value::String(name.to_string());
    Ok(out)
}

/// The live databases (template0 left out) in Pigsty's `pg_databases` shape: what to load to
/// start managing a cluster as it is.
#[pg_extern(volatile, parallel_unsafe)]
fn export_databases() -> pgrx::JsonB {
    require_superuser("pgops.export_databases()");
    let dbs: Vec<LiveDatabase> = serde_json::from_value(json(LIVE_SQL, &[])).unwrap_or_default();
    let mut out = vec![];
    for d in dbs.into_iter().filter(|d| d.name != "template0") {
        let revoked = !d.privileges.iter().any(|p| p.grantee == "PUBLIC" && p.privilege == "CONNECT");
        let mut e = json!({
            "name": d.name, "owner": d.owner, "encoding": d.encoding, "lc_collate": d.collate, "lc_ctype": d.ctype,
            "tablespace": d.tablespace, "is_template": d.is_template, "allowconn": d.allowconn, "revokeconn": revoked,
            "connlimit": d.connlimit,
        });
        if let Some(c) = &d.comment {
            e["comment"] = json!(c);
        }
        if !d.settings.is_empty() {
            e["parameters"] = json!(d.settings);
        }
        if d.allowconn {
            match inside(&d.name, false, false) {
                Ok(InsideRead { schemas, extensions, .. }) => {
                    let schemas: Vec<Value> = schemas
                        .into_iter()
                        .filter(|(n, _)| n != "public")
                        .map(|(name, owner)| json!({"name": name, "owner": owner}))
                        .collect();
                    let extensions: Vec<Value> = extensions
                        .into_iter()
                        .filter(|(n, _)| n != "plpgsql")
                        .map(|(name, (schema, version))| json!({"name": name, "schema": schema, "version": version}))
                        .collect();
                    if !schemas.is_empty() {
                        e["schemas"] = json!(schemas);
                    }
                    if !extensions.is_empty() {
                        e["extensions"] = json!(extensions);
                    }
                }
                Err(err) => notice!(
                    "pgops.export_databases(): schemas and extensions of {} left out: {}",
                    crate::sqltext::ident(&d.name),
                    err.one_line()
                ),
            }
        }
        out.push(e);
    }
    pgrx::JsonB(Value::Array(out))
}

/// Validates a row of pgops.database_spec (the trigger's check); the error names the database and
/// the field.
#[pg_extern(stable, parallel_safe)]
fn _check_database(row: pgrx::JsonB) {
    let mut v = strip_nulls(&row.0);
    if let Value::Object(m) = &mut v {
        m.remove("ordinal");
    }
    if let Err(e) = DatabaseSpec::parse(&v) {
        raise(
            Error::new(Code::CheckViolation, e.message)
                .hint("Fix the value; the row was not written."),
        );
    }
}
