//! Reads the config tables and the live catalog through SPI. Each reader is one query that builds
//! JSON on the server side; serde turns it into the planner's plain types.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Context, Error, Result};
use serde::Deserialize;
use pgrx::pg_sys;
use serde_json::Value;

use super::live::{Live, LiveDatabase, LiveRole};
use super::model::{DefaultPrivilege, ObjKind, RoleSpec};
use super::plan::{Desired, Options};
use crate::worker::{dbworker, shmem};

fn json(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> Result<Value> {
    Ok(crate::spi::json(sql, args)?)
}

/// `timestamptz` → the canonical text `LiveRole::valid_until` uses.
pub const CANONICAL_TS: &str = "to_char(({}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'";

fn canonical(expr: &str) -> String {
    format!(
        "CASE WHEN ({expr}) IS NULL THEN NULL WHEN ({expr}) = 'infinity' THEN 'infinity' ELSE {} END",
        CANONICAL_TS.replace("{}", expr)
    )
}

const ROLES_SQL: &str = include_str!("../../sql/queries/roles_live.sql");

#[derive(Deserialize)]
struct Header {
    server_version_num: i32,
    current_user: String,
    current_database: String,
    databases: Vec<String>,
}

/// The cluster-wide state, plus one snapshot per connectable database (through per-database
/// workers when pgops is preloaded; only this database otherwise). No role is being dropped.
pub fn live_state(grantees: &[String]) -> Result<(Live, Vec<String>)> {
    read(grantees, false).1
}

/// The config (desired state and options) and the live state it is planned against. The other
/// databases are read by workers while this backend reads the config, pg_authid and its own
/// database: the workers need only the grantees, read first. The config's error (a mistake in
/// it) and the catalog's are returned apart: the config's is the one to report first.
pub fn config_and_live_state() -> (Result<Config>, Result<(Live, Vec<String>)>) {
    let grantees = match crate::spi::get_one::<Vec<String>>(
        "SELECT coalesce(array_agg(g ORDER BY g COLLATE pg_catalog.\"C\"), '{}')
         FROM (SELECT DISTINCT grantee AS g FROM pgops.default_privilege WHERE existing) x",
    ) {
        Ok(g) => g.unwrap_or_default(),
        Err(e) => return (desired_state(), Err(Error::from(e).context("reading pgops.default_privilege"))),
    };
    let (config, live) = read(&grantees, true);
    // Not read when the catalog's first read failed: read now (same snapshot).
    let config = config.unwrap_or_else(desired_state);
    if let Ok((desired, _)) = &config {
        if existing_grantees(desired) != grantees {
            let e = Error::new(
                crate::error::Code::ObjectNotInPrerequisiteState,
                "pgops.default_privilege changed while it was read (a concurrent change in this transaction's \
                 READ COMMITTED reads); run the call again",
            );
            return (config, Err(e));
        }
    }
    (config, live)
}

pub type Config = (Desired, Options);

fn read(grantees: &[String], with_config: bool) -> (Option<Result<Config>>, Result<(Live, Vec<String>)>) {
    let mut config = None;
    let live = read_live(grantees, with_config.then_some(&mut config));
    (config, live)
}

/// The live state; with `config`, the config is read into it meanwhile.
fn read_live(grantees: &[String], config: Option<&mut Option<Result<Config>>>) -> Result<(Live, Vec<String>)> {
    let header: Header = serde_json::from_value(json(
        "SELECT jsonb_build_object(
            'server_version_num', current_setting('server_version_num')::int,
            'current_user', current_user, 'current_database', current_database(),
            'databases', (SELECT jsonb_agg(datname ORDER BY datname) FROM pg_catalog.pg_database WHERE datallowconn))",
        &[],
    )?)?;
    let mut notices = Vec::new();
    let names: Vec<String> = if shmem::preloaded() {
        header.databases.clone()
    } else {
        notices.push(
            "pgops is not in shared_preload_libraries: only this database is planned (per-database workers need preload)"
                .to_string(),
        );
        vec![header.current_database.clone()]
    };
    // The other databases through their own workers, several at a time; in name order. This
    // backend reads meanwhile, moving the workers on between its reads.
    let jobs: Vec<(String, dbworker::Task)> = names
        .iter()
        .filter(|db| **db != header.current_database)
        .map(|db| (db.clone(), snapshot_task(grantees)))
        .collect();
    let here = names.contains(&header.current_database);
    let want_config = config.is_some();
    // A mistake in the config, or a failed read here, stops the workers: their reads would not
    // be used.
    let ((read_config, local), read) = dbworker::run_many_alongside(&jobs, crate::gucs::parallel_reads(), |pump| {
        use std::ops::ControlFlow::{Break, Continue};
        let read_config = want_config.then(desired_state);
        if matches!(read_config, Some(Err(_))) {
            return Break((read_config, Err(Error::internal("not read: the config is in error"))));
        }
        pump();
        let mut read_here = || -> Result<(Vec<LiveRole>, Option<Result<LiveDatabase>>)> {
            let roles: Vec<LiveRole> = crate::spi::json_text(ROLES_SQL, &[])
                .context("reading pg_authid (pgops needs a superuser here)")?
                .unwrap_or_default();
            pump();
            let own = if here { Some(database_snapshot(grantees)) } else { None };
            Ok((roles, own))
        };
        match read_here() {
            Ok(x) => Continue((read_config, Ok(x))),
            Err(e) => Break((read_config, Err(e))),
        }
    });
    let dropping: Vec<String> = match &read_config {
        Some(Ok((d, _))) => d.roles.iter().filter(|r| !r.present).map(|r| r.name.clone()).collect(),
        _ => vec![],
    };
    if let Some(slot) = config {
        *slot = read_config;
    }
    let (roles, mut own) = local?;
    let mut read = read.into_iter();
    let mut databases = Vec::new();
    // A database whose data cannot be read (`database_snapshot`'s DataException) fails alone: it
    // is left out of the plan, which says so. Anything else (no worker, a crash, a cancel) fails
    // the call, as before.
    let mut unreadable = BTreeMap::new();
    if let Some(Err(e)) = &own {
        if e.code == crate::error::Code::DataException {
            unreadable.insert(header.current_database.clone(), e.message.clone());
        }
    }
    for db in names {
        let snapshot = if db == header.current_database {
            if unreadable.contains_key(&db) {
                continue;
            }
            own.take().ok_or_else(|| Error::internal("this database was not read"))??
        } else {
            let v = read.next().ok_or_else(|| Error::internal(format!("database \"{db}\" was not read")))?;
            let v = v.map_err(|e| Error::internal(format!("database \"{db}\": {e}")))?;
            if let Some(why) = v.get(UNREADABLE).and_then(Value::as_str) {
                unreadable.insert(db, why.to_string());
                continue;
            }
            serde_json::from_value(v).with_context(|| format!("database \"{db}\": unreadable snapshot"))?
        };
        databases.push(snapshot);
    }
    if !dropping.is_empty() {
        let deps = json(
            "SELECT coalesce(jsonb_object_agg(k, n), '{}') FROM (
                SELECT d.datname || '/' || r.rolname AS k, count(*) AS n
                FROM pg_catalog.pg_shdepend s
                JOIN pg_catalog.pg_database d ON d.oid = s.dbid
                JOIN pg_catalog.pg_authid r ON r.oid = s.refobjid
                WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass AND r.rolname = ANY($1)
                GROUP BY 1) x",
            &[dropping.to_vec().into()],
        )?;
        for db in &mut databases {
            for r in &dropping {
                if let Some(n) = deps.get(format!("{}/{r}", db.name)).and_then(Value::as_i64) {
                    db.dependents.insert(r.clone(), n);
                }
            }
        }
    }
    let live = Live {
        server_version_num: header.server_version_num,
        bootstrap_superuser: crate::pgutil::bootstrap_superuser(),
        current_user: header.current_user,
        current_database: header.current_database,
        roles: roles.into_iter().map(|r| (r.name.clone(), r)).collect(),
        databases,
        unreadable,
    };
    Ok((live, notices))
}

/// The role that receives a dropped role's objects unless pgops.drop_reassign_to names another
/// (created NOLOGIN by the install script).
pub const DEFAULT_HEIR: &str = "pgops_orphans";

/// What the planner needs from the current database. Runs in a per-database worker for other
/// databases. `grantees`: roles whose privileges on existing objects are managed here. A
/// `DataException` means this database's own data cannot be read (a name that is not UTF-8):
/// the database is then left out of the plan, alone.
pub fn database_snapshot(grantees: &[String]) -> Result<LiveDatabase> {
    use pgops_core::roles::snapshot::{self, Grantee, PUBLIC, Snapshot};
    use pgrx::pg_sys::Oid;
    use pgrx::spi::{Spi, SpiHeapTupleData};
    fn col<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(row: &SpiHeapTupleData, i: usize) -> Result<Option<T>> {
        row.get::<T>(i).map_err(|e| Error::internal(format!("the roles snapshot, column {i}: {e}")))
    }
    fn need<T>(v: Option<T>, what: &str) -> Result<T> {
        v.ok_or_else(|| Error::internal(format!("the roles snapshot: {what} is NULL")))
    }
    // Each config grantee's OID here (roles are cluster-wide: looked up by name, as stored).
    let wanted: Vec<Grantee> = grantees
        .iter()
        .map(|name| {
            let oid = if name == "PUBLIC" { Some(PUBLIC) } else { role_oid(name) };
            Grantee { name: name.clone(), oid }
        })
        .collect();
    let mut snapshot = Snapshot::new(wanted);
    let name = database_name()?;
    let version = Spi::connect(|c| -> Result<_> {
        let (mut version, mut home) = (None, None);
        each_row(c, SNAPSHOT_EXTENSION, &[], |row| {
            version = col::<String>(row, 1)?;
            home = col::<Oid>(row, 2)?;
            Ok(())
        })?;
        // Every schema's name (a default ACL names any); the user schemas are counted.
        let mut names: BTreeMap<u32, String> = BTreeMap::new();
        let mut users: Vec<Oid> = Vec::new();
        each_row(c, SNAPSHOT_SCHEMAS, &[], |row| {
            let oid = need(col::<Oid>(row, 1)?, "a schema's oid")?;
            let nspname = schema_name(row, 2, oid)?;
            if snapshot::user_schema(&nspname, home == Some(oid)) {
                let owner = need(col::<Oid>(row, 3)?, "a schema's owner")?;
                with_acl(row, 4, |acl| snapshot.schema(oid.to_u32(), nspname.clone(), owner.to_u32(), acl))?;
                users.push(oid);
            }
            names.insert(oid.to_u32(), nspname);
            Ok(())
        })?;
        each_row(c, SNAPSHOT_OBJECTS, &[users.into()], |row| {
            let kind = match col::<bool>(row, 2)? {
                Some(true) => ObjKind::Sequences,
                Some(false) => ObjKind::Tables,
                None => ObjKind::Functions,
            };
            let schema = need(col::<Oid>(row, 1)?, "an object's schema")?.to_u32();
            let owner = need(col::<Oid>(row, 3)?, "an object's owner")?.to_u32();
            with_acl(row, 4, |acl| snapshot.object(schema, kind, owner, acl))
        })?;
        each_row(c, SNAPSHOT_DEFAULT_ACL, &[], |row| {
            let creator = need(col::<Oid>(row, 1)?, "a default ACL's creator")?.to_u32();
            let schema = need(col::<Oid>(row, 2)?, "a default ACL's schema")?;
            let schema = if schema == pg_sys::InvalidOid { None } else { Some(names.get(&schema.to_u32()).cloned().unwrap_or_default()) };
            let objtype = need(col::<i8>(row, 3)?, "a default ACL's object type")? as u8;
            with_acl(row, 4, |acl| snapshot.default_acl(creator, schema, objtype, acl.unwrap_or(&[])))
        })?;
        Ok(version)
    })?;
    snapshot
        .finish(name, version, |oid| role_name(Oid::from(oid)))
        .map_err(|e| Error::new(crate::error::Code::DataException, format!("the roles snapshot: {e}")))
}

/// This database's name (a name that is not UTF-8 fails, saying so).
fn database_name() -> Result<String> {
    // SAFETY: this backend's database, connected; the name is palloc'd, NULL only if it is gone.
    let p = unsafe { pg_sys::get_database_name(pg_sys::MyDatabaseId) };
    if p.is_null() {
        return Err(Error::internal("this database has no name any more"));
    }
    // SAFETY: a NUL-terminated name palloc'd by get_database_name, freed once copied.
    let name = unsafe { std::ffi::CStr::from_ptr(p) }.to_str().map(str::to_string);
    unsafe { pg_sys::pfree(p.cast()) };
    name.map_err(|_| Error::new(crate::error::Code::DataException, "this database's name is not valid UTF-8; rename it"))
}

/// The `name` in column `i` of `row` (schema `oid`'s), converted from the database's encoding to
/// UTF-8; a name that is not UTF-8 after that (a SQL_ASCII database holding other bytes) is a
/// `DataException` naming the schema by OID: that database is then unreadable, alone.
fn schema_name(row: &pgrx::spi::SpiHeapTupleData, i: usize, oid: pg_sys::Oid) -> Result<String> {
    let Some(any) = row
        .get::<pgrx::datum::AnyElement>(i)
        .map_err(|e| Error::internal(format!("the roles snapshot, column {i}: {e}")))?
    else {
        return Err(Error::internal("the roles snapshot: a schema's name is NULL"));
    };
    let p = any.datum().cast_mut_ptr::<std::ffi::c_char>();
    // SAFETY: a `name` datum of this row: a NUL-terminated NameData alive while the batch is.
    let len = unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes().len();
    // SQL_ASCII stores bytes unchecked: they are checked here (PostgreSQL's own check would
    // raise). Any other encoding converts to UTF-8 without error (every one maps into it).
    // SAFETY: len bytes of that name; the result is the name itself or a palloc'd conversion.
    let utf8 = if unsafe { pg_sys::GetDatabaseEncoding() } == pg_sys::pg_enc::PG_SQL_ASCII as i32 {
        p
    } else {
        unsafe { pg_sys::pg_server_to_any(p, len as i32, pg_sys::pg_enc::PG_UTF8 as i32) }
    };
    // SAFETY: NUL-terminated (a conversion is too).
    let out = unsafe { std::ffi::CStr::from_ptr(utf8) }.to_str().map(str::to_string);
    if utf8 != p {
        // SAFETY: the conversion's palloc'd copy, not referenced any more.
        unsafe { pg_sys::pfree(utf8.cast()) };
    }
    out.map_err(|_| {
        Error::new(
            crate::error::Code::DataException,
            format!(
                "the name of schema {} is not valid UTF-8 (the database's encoding is SQL_ASCII); rename it",
                oid.to_u32()
            ),
        )
    })
}

/// A role's OID by its name as stored, None when there is none (a name with a NUL byte cannot be
/// one).
fn role_oid(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid C string; with missing_ok the lookup returns InvalidOid instead of raising.
    let oid = unsafe { pg_sys::get_role_oid(c.as_ptr(), true) };
    (oid != pg_sys::InvalidOid).then(|| oid.to_u32())
}

/// A role's name (`unknown (OID=n)` for a role that is gone, as `pg_get_userbyid` writes it); an
/// error when it is not UTF-8 (made from a database in another encoding).
fn role_name(oid: pg_sys::Oid) -> std::result::Result<String, String> {
    // SAFETY: a syscache lookup; with noerr it returns NULL for a role that is not there.
    let p = unsafe { pg_sys::GetUserNameFromId(oid, true) };
    if p.is_null() {
        return Ok(format!("unknown (OID={})", oid.to_u32()));
    }
    // SAFETY: a NUL-terminated name palloc'd by GetUserNameFromId, freed once copied.
    let name = unsafe { std::ffi::CStr::from_ptr(p) }.to_str().map(str::to_string);
    unsafe { pg_sys::pfree(p.cast()) };
    name.map_err(|_| format!("the name of role {} is not valid UTF-8; rename it", oid.to_u32()))
}

/// Runs a read-only query through a cursor, a batch of rows at a time (each batch's rows freed
/// before the next), and hands each row to `f`.
fn each_row(
    c: &pgrx::spi::SpiClient<'_>,
    query: &str,
    args: &[pgrx::datum::DatumWithOid],
    mut f: impl FnMut(&pgrx::spi::SpiHeapTupleData) -> Result<()>,
) -> Result<()> {
    let mut cursor = c.try_open_cursor(query, args)?;
    loop {
        let n = {
            let batch = cursor.fetch(500)?;
            let n = batch.len();
            for row in batch {
                f(&row)?;
            }
            n
        };
        // SAFETY: the batch just read is no longer referenced; SPI_freetuptable ignores a table
        // that is not this SPI connection's.
        unsafe {
            pg_sys::SPI_freetuptable(pg_sys::SPI_tuptable);
            pg_sys::SPI_tuptable = std::ptr::null_mut();
        }
        if n == 0 {
            return Ok(());
        }
    }
}

/// The `aclitem[]` in column `i` of `row`, as stored, handed to `f` (None for NULL); the detoasted
/// copy is freed after.
fn with_acl(
    row: &pgrx::spi::SpiHeapTupleData,
    i: usize,
    f: impl FnOnce(Option<&[pgops_core::roles::snapshot::AclBits]>),
) -> Result<()> {
    use pgops_core::roles::snapshot::AclBits;
    let Some(any) = row
        .get::<pgrx::datum::AnyArray>(i)
        .map_err(|e| Error::internal(format!("the roles snapshot, column {i}: {e}")))?
    else {
        f(None);
        return Ok(());
    };
    let stale = any.datum().cast_mut_ptr::<pg_sys::varlena>();
    // SAFETY: a non-NULL array datum of this row, alive while the batch is; detoasted (a copy
    // when it was compressed or out of line) before its header is read.
    let fresh = unsafe { pg_sys::pg_detoast_datum(stale) };
    let Some(ptr) = std::ptr::NonNull::new(fresh.cast::<pg_sys::ArrayType>()) else {
        return Err(Error::internal("the roles snapshot: an ACL could not be read"));
    };
    // SAFETY: a detoasted array this function owns until it returns.
    let mut raw = unsafe { pgrx::array::RawArray::from_ptr(ptr) };
    let out = if raw.oid() != pg_sys::ACLITEMOID || raw.dims().len() > 1 || raw.nulls().is_some() {
        Err(Error::internal("the roles snapshot: an ACL that is not a one-dimensional aclitem[] without NULLs"))
    } else {
        // AclMode holds the privileges in its low half and their grant options in its high half
        // (16 + 16 bits up to PG 15, 32 + 32 from PG 16).
        let half = std::mem::size_of::<pg_sys::AclMode>() * 4;
        // SAFETY: the element type was checked: aclitem, laid out as pg_sys::AclItem.
        let items: &[pg_sys::AclItem] = unsafe { raw.data::<pg_sys::AclItem>().as_ref() };
        let bits: Vec<AclBits> = items
            .iter()
            .map(|a| {
                let privs = a.ai_privs as u64;
                AclBits {
                    grantee: a.ai_grantee.to_u32(),
                    privileges: (privs & ((1u64 << half) - 1)) as u32,
                    grant_options: (privs >> half) as u32,
                }
            })
            .collect();
        f(Some(&bits));
        Ok(())
    };
    if fresh != stale {
        // SAFETY: the copy pg_detoast_datum made, not referenced any more.
        unsafe { pg_sys::pfree(fresh.cast()) };
    }
    out
}

/// The three reads behind `database_snapshot` (the aggregation is `pgops_core::roles::snapshot`).
const SNAPSHOT_EXTENSION: &str = include_str!("../../sql/queries/roles_snapshot_extension.sql");
const SNAPSHOT_SCHEMAS: &str = include_str!("../../sql/queries/roles_snapshot_schemas.sql");
const SNAPSHOT_OBJECTS: &str = include_str!("../../sql/queries/roles_snapshot_objects.sql");
const SNAPSHOT_DEFAULT_ACL: &str = include_str!("../../sql/queries/roles_snapshot_default_acl.sql");

/// The key of a worker's answer for a database whose data cannot be read (instead of a snapshot).
const UNREADABLE: &str = "unreadable";

/// The per-database worker's task reading one database's snapshot: `database_snapshot` run there,
/// its result sent back as JSON.
pub static SNAPSHOT_HANDLER: dbworker::Handler = dbworker::Handler {
    name: "role snapshot",
    label: "role snapshot",
    own_transactions: false,
    enters_closed_databases: false,
    run: |arg, _files| {
        let grantees: Vec<String> = serde_json::from_value(arg.clone())?;
        match database_snapshot(&grantees) {
            Ok(s) => Ok(serde_json::to_value(s)?),
            Err(e) if e.code == crate::error::Code::DataException => Ok(serde_json::json!({ UNREADABLE: e.message })),
            Err(e) => Err(e),
        }
    },
};

pub fn snapshot_task(grantees: &[String]) -> dbworker::Task {
    dbworker::Task::Handler {
        name: SNAPSHOT_HANDLER.name.into(),
        arg: serde_json::json!(grantees),
    }
}

#[derive(Deserialize)]
struct PrivilegeRow {
    creator: String,
    database: Option<String>,
    schema: Option<String>,
    object_type: String,
    privileges: Vec<String>,
    grantee: String,
    grant_option: bool,
    existing: bool,
}

/// The config tables as the planner's desired state, and the planning options.
pub fn desired_state() -> Result<(Desired, Options)> {
    // json, not jsonb: built as text, it costs a fraction at ten thousand roles.
    let rows: Vec<Value> = crate::spi::json_text(
        "SELECT coalesce(json_agg(row_to_json(r) ORDER BY r.name), '[]') FROM pgops.role r",
        &[],
    )?
    .unwrap_or_default();
    let roles = rows
        .into_iter()
        .map(super::model::role_from_row_owned)
        .collect::<Result<Vec<RoleSpec>>>()?;
    let valid_until: BTreeMap<String, String> = serde_json::from_value(json(
        &format!(
            "SELECT coalesce(jsonb_object_agg(name, {}), '{{}}') FROM pgops.role
             WHERE expire_in IS NOT NULL OR expire_at IS NOT NULL",
            canonical(
                "CASE WHEN expire_in IS NOT NULL THEN (current_date + expire_in)::timestamptz ELSE expire_at END"
            )
        ),
        &[],
    )?)?;
    let privs: Vec<PrivilegeRow> = serde_json::from_value(json(
        "SELECT coalesce(jsonb_agg(to_jsonb(d) ORDER BY d.id), '[]') FROM pgops.default_privilege d",
        &[],
    )?)?;
    let default_privileges = privs
        .into_iter()
        .map(|p| {
            Ok(DefaultPrivilege {
                kind: ObjKind::parse(&p.object_type).ok_or_else(|| {
                    Error::new(
                        crate::error::Code::DataException,
                        format!("pgops.default_privilege: unknown object_type {}", p.object_type),
                    )
                })?,
                creator: p.creator,
                database: p.database,
                schema: p.schema,
                privileges: p.privileges,
                grantee: p.grantee,
                grant_option: p.grant_option,
                existing: p.existing,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let known: Vec<String> =
        crate::spi::get_one::<Vec<String>>("SELECT array_agg(lower(name)) FROM pg_catalog.pg_settings")?
            .unwrap_or_default();
    // Who receives a dropped role's objects: never a superuser — the role's SECURITY DEFINER
    // functions and index expressions would then run as one (a role expecting to be dropped can
    // prepare them).
    let heir = crate::gucs::drop_reassign_to().unwrap_or_else(|| DEFAULT_HEIR.to_string());
    match crate::spi::get_one_with_args::<bool>(
        "SELECT rolsuper FROM pg_catalog.pg_authid WHERE rolname = $1",
        &[heir.as_str().into()],
    )? {
        None => {
            return Err(Error::new(
                crate::error::Code::ObjectNotInPrerequisiteState,
                format!(
                    "pgops.drop_reassign_to: role \"{heir}\" does not exist; create it (NOLOGIN, not a superuser) or reset the setting"
                ),
            ));
        }
        Some(true) => {
            return Err(Error::invalid(format!(
                "pgops.drop_reassign_to: role \"{heir}\" is a superuser; a dropped role's SECURITY DEFINER functions and \
             index expressions would run as a superuser — name a role that is not one (default {DEFAULT_HEIR})"
            )));
        }
        Some(false) => {}
    }
    let options = Options {
        protected: crate::gucs::protected_roles(),
        heir,
        known_settings: known.into_iter().collect::<BTreeSet<_>>(),
    };
    Ok((
        Desired {
            roles,
            default_privileges,
            valid_until,
        },
        options,
    ))
}

/// Grantees whose privileges on existing objects the config manages.
pub fn existing_grantees(desired: &Desired) -> Vec<String> {
    let set: BTreeSet<String> = desired
        .default_privileges
        .iter()
        .filter(|d| d.existing)
        .map(|d| d.grantee.clone())
        .collect();
    set.into_iter().collect()
}
