//! The work inside one declared database (schemas, extensions, the baseline), run by a
//! per-database worker connected to it. Each statement runs as the plan says:
//!
//! - as the superuser (the worker's bootstrap superuser), only after the worker has checked again,
//!   right before it, what the plan assumed: that no object in a database pgops just created
//!   belongs to a non-superuser, or that the schema an extension's script runs in is one only
//!   superusers could have filled;
//! - as the database owner, in a security-restricted context (PostgreSQL's own for running a
//!   table owner's code during maintenance): neither the statement nor any of the owner's objects
//!   it runs can SET ROLE back to the superuser, create temporary objects that outlive it, or
//!   change a setting past it.
//!
//! All statements of a batch run in one transaction; the first failure rolls the batch back and
//! says which statement it was. In a database pgops just created the worker enters before the
//! database accepts connections (`closed`).

use std::ffi::CString;

use pgrx::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::plan::{Guard, RunAs};
use crate::error::{Code, Error, Result};
use crate::worker::{dbworker, xact};

const INSIDE_SQL: &str = include_str!("../../sql/queries/databases_inside.sql");

#[derive(Debug, Serialize, Deserialize)]
pub struct Statement {
    pub sql: String,
    pub run_as: RunAs,
    pub guard: Guard,
    /// `search_path = public` for it (the baseline, the owner's statements); else pinned.
    #[serde(default)]
    pub public_path: bool,
    /// It creates this schema (as the superuser): later guards of the batch trust it.
    #[serde(default)]
    pub creates_schema: Option<String>,
    /// A script (a baseline): run as `psql -f` runs a file, statement by statement, each in its own
    /// transaction (at top level when it refuses a transaction block), stopping at the first error.
    #[serde(default)]
    pub script: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Batch {
    /// The database accepts no connections yet (pgops just created it): the worker enters anyway.
    #[serde(default)]
    pub closed: bool,
    pub statements: Vec<Statement>,
}

pub static HANDLER: dbworker::Handler = dbworker::Handler {
    name: "database inside",
    label: "inside a database",
    own_transactions: true,
    enters_closed_databases: true,
    run: |arg, _files| {
        let batch: Batch = serde_json::from_value(arg.clone())?;
        Ok(run(&batch))
    },
};

thread_local! {
    static AT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// `{"ok": true, "results": [...]}`: each statement's `{"applied": true}` or `{"error": …}` (a
/// schema or an extension fails alone, in its own subtransaction); `{"ok": false, "failed": <index>,
/// "error": …}` when a guard refused or a script stopped: nothing after it ran.
fn run(batch: &Batch) -> Value {
    let n = batch.statements.len();
    let mut results = vec![json!({"applied": true}); n];
    let stop = |at: usize, e: String, results: &[Value]| json!({ "ok": false, "failed": at, "error": e, "results": results });
    // The new database is checked once, before anything runs in it: what the batch then creates
    // (a schema handed to its owner, say) is pgops' own doing, and nobody else can connect. It
    // stays checked until someone else's code runs (a statement as the owner).
    let mut checked_clean = false;
    // Schemas this batch created, in its still uncommitted transaction: nobody else can have put
    // anything in them (a default privilege may already let others CREATE there later).
    let mut created: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut i = 0;
    while i < n {
        if batch.statements[i].script {
            let st = &batch.statements[i];
            let skip_guard = checked_clean && matches!(st.guard, Guard::NoForeignObjects);
            if let Err(e) = run_script(st, skip_guard) {
                return stop(i, e, &results);
            }
            checked_clean &= matches!(st.run_as, RunAs::Superuser);
            i += 1;
            continue;
        }
        let j = (i..n).find(|&k| batch.statements[k].script).unwrap_or(n);
        AT.with(|c| c.set(i));
        let outcome = xact::run("pgops inside a database", || {
            for (k, st) in batch.statements.iter().enumerate().take(j).skip(i) {
                AT.with(|c| c.set(k));
                match &st.guard {
                    Guard::None => {}
                    Guard::NoForeignObjects if checked_clean => {}
                    // Someone else may create in one of its schemas now: this statement alone is
                    // not run (the plan was made before; the next one says why).
                    Guard::SuperuserSchemas(list) => {
                        let rest: Vec<String> = list.iter().filter(|s| !created.contains(*s)).cloned().collect();
                        if let Err(e) = check(&Guard::SuperuserSchemas(rest)) {
                            results[k] = json!({ "error": e.one_line() });
                            continue;
                        }
                    }
                    g => {
                        check(g)?;
                        checked_clean = matches!(g, Guard::NoForeignObjects);
                    }
                }
                if matches!(st.run_as, RunAs::Owner(_)) {
                    checked_clean = false;
                    created.clear();
                }
                match xact::sub(|| statement(st)) {
                    Ok(()) => {
                        if let Some(sc) = &st.creates_schema {
                            created.insert(sc.clone());
                        }
                    }
                    Err(e) => results[k] = json!({ "error": e.one_line() }),
                }
            }
            Ok(())
        });
        if let Err(e) = outcome {
            return stop(AT.with(|c| c.get()), e.one_line(), &results);
        }
        // Committed: from now on others may use what this segment created.
        created.clear();
        i = j;
    }
    json!({ "ok": true, "results": results })
}

/// One statement in the current (sub)transaction, as its runner, with its search_path.
fn statement(st: &Statement) -> Result<()> {
    // Unqualified names in a baseline, and in what the owner runs, mean what they mean to the
    // database's users; every other statement names its schema and keeps the pinned path.
    if st.public_path {
        Spi::run("SET LOCAL search_path TO public")?;
    }
    match &st.run_as {
        RunAs::Superuser => Spi::run(&st.sql)?,
        RunAs::Owner(owner) => as_owner(owner, || Ok(Spi::run(&st.sql)?))?,
    }
    if st.public_path {
        Spi::run("SET LOCAL search_path TO pg_catalog, pg_temp")?;
    }
    Ok(())
}

/// A script's statements as the server's own parser splits them: (line, text, runs at top level).
fn split(sql: &str) -> Result<Vec<(usize, String, bool)>> {
    let c = CString::new(sql).map_err(|_| Error::invalid("the baseline contains a NUL byte"))?;
    // SAFETY: the raw parser in this worker's transaction; the list and nodes live in its memory
    // context and are read before it ends. stmt_location/stmt_len are byte offsets into `sql`.
    unsafe {
        let list = pg_sys::pg_parse_query(c.as_ptr());
        let mut out = vec![];
        if list.is_null() {
            return Ok(out);
        }
        for k in 0..(*list).length {
            let raw = (*(*list).elements.add(k as usize)).ptr_value as *mut pg_sys::RawStmt;
            let start = (*raw).stmt_location.max(0) as usize;
            let len = (*raw).stmt_len as usize;
            let end = if len == 0 { sql.len() } else { (start + len).min(sql.len()) };
            let text = sql.get(start..end).unwrap_or_default();
            let lead = text.len() - text.trim_start().len();
            let line = 1 + sql[..start + lead].matches('\n').count();
            let tag = (*(*raw).stmt).type_;
            // Each statement runs in a transaction of its own: a BEGIN or COMMIT in the file would
            // leave the worker inside a block (or end one it does not own).
            if tag == pg_sys::NodeTag::T_TransactionStmt {
                return Err(Error::invalid(format!(
                    "line {line}: transaction control (BEGIN, COMMIT, SAVEPOINT…) is not run in a baseline: each statement runs in its own transaction"
                )));
            }
            #[cfg(not(any(feature = "pg13", feature = "pg14")))]
            let merge = tag == pg_sys::NodeTag::T_MergeStmt;
            #[cfg(any(feature = "pg13", feature = "pg14"))]
            let merge = false;
            let plain = merge
                || matches!(
                    tag,
                    pg_sys::NodeTag::T_SelectStmt
                        | pg_sys::NodeTag::T_InsertStmt
                        | pg_sys::NodeTag::T_UpdateStmt
                        | pg_sys::NodeTag::T_DeleteStmt
                );
            out.push((line, text.trim().to_string(), !plain));
        }
        Ok(out)
    }
}

/// Runs a baseline as `psql -f` runs a file: each statement in its own transaction; a statement
/// that refuses a transaction block (VACUUM, CREATE INDEX CONCURRENTLY, ALTER SYSTEM, …) at top level
/// when the superuser runs the script; the first error stops it, naming the statement's line. As
/// with psql, a `SET` in the file lasts for the rest of it (for the superuser's script: the owner's
/// statements each start from `search_path = public`, their settings undone after each).
fn run_script(st: &Statement, skip_guard: bool) -> std::result::Result<(), String> {
    if !skip_guard && !matches!(st.guard, Guard::None) {
        xact::run("pgops baseline: check", || check(&st.guard)).map_err(|e| e.one_line())?;
    }
    let pieces = xact::run("pgops baseline: parse", || split(&st.sql)).map_err(|e| format!("nothing of the baseline ran: {}", e.one_line()))?;
    let toplevel = |sql: &str| super::super::worker::toplevel::run(sql).map_err(|(e, _)| e);
    let superuser = matches!(st.run_as, RunAs::Superuser);
    // The session's search_path for the script (a statement of the file may change it), pinned again after.
    if superuser && st.public_path {
        toplevel("SET search_path TO public")?;
    }
    let mut outcome = Ok(());
    for (line, text, utility) in pieces {
        let r = match (superuser, utility) {
            (true, true) => toplevel(&text),
            (true, false) => xact::run("pgops baseline", || Ok(Spi::run(&text)?)).map_err(|e| e.one_line()),
            (false, _) => xact::run("pgops baseline", || {
                statement(&Statement {
                    sql: text.clone(),
                    run_as: st.run_as.clone(),
                    guard: Guard::None,
                    public_path: st.public_path,
                    creates_schema: None,
                    script: false,
                })
            })
            .map_err(|e| e.one_line()),
        };
        if let Err(e) = r {
            outcome = Err(format!("line {line}: {e}"));
            break;
        }
    }
    if superuser {
        // Whatever the file set (settings, a role), the worker's own statements after it run as
        // the worker again, pinned.
        toplevel("DISCARD ALL")?;
        toplevel("SET search_path TO pg_catalog, pg_temp")?;
    }
    outcome
}

/// Reads the database as the plan did (pinned search_path) and refuses when a superuser
/// statement's assumption no longer holds.
fn check(guard: &Guard) -> Result<()> {
    let v = crate::spi::json(INSIDE_SQL, &[])?;
    let db = crate::pgutil::current_database();
    match guard {
        Guard::None => Ok(()),
        Guard::NoForeignObjects => {
            let count = v["foreign_objects"]["count"].as_i64().unwrap_or(i64::MAX);
            if count == 0 {
                return Ok(());
            }
            let examples: Vec<&str> = v["foreign_objects"]["examples"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            Err(Error::new(
                Code::InsufficientPrivilege,
                format!(
                    "database {} holds {count} object(s) non-superusers own ({}): nothing is run in it as a superuser",
                    crate::sqltext::ident(&db),
                    examples.join(", ")
                ),
            )
            .hint("Its template changed since the plan was made: plan again (a clone's statements then run as its owner)."))
        }
        Guard::SuperuserSchemas(schemas) => {
            for schema in schemas.iter().filter(|s| *s != "pg_catalog") {
                if v["schemas"].get(schema).is_none() {
                    return Err(Error::new(
                        Code::UndefinedObject,
                        format!("schema {} does not exist in database {}", crate::sqltext::ident(schema), crate::sqltext::ident(&db)),
                    ));
                }
                if let Some(why) = v["unsafe_schemas"].get(schema).and_then(Value::as_str) {
                    return Err(Error::new(
                        Code::InsufficientPrivilege,
                        format!(
                            "schema {} of database {}: {why}: an extension's script is not run there as a superuser",
                            crate::sqltext::ident(schema),
                            crate::sqltext::ident(&db)
                        ),
                    )
                    .hint("It changed since the plan was made: plan again."));
                }
            }
            Ok(())
        }
    }
}

/// Runs `f` as `owner` in a security-restricted context, with every setting it changes undone
/// afterwards. An ERROR inside aborts the transaction, which restores the user and the settings.
fn as_owner<R>(owner: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    let name = CString::new(owner).map_err(|_| Error::internal("a role name with a NUL byte"))?;
    // SAFETY: catalog lookup and the user/security-context switch PostgreSQL's own maintenance
    // commands use; called inside a transaction on the worker's main thread.
    unsafe {
        let oid = pg_sys::get_role_oid(name.as_ptr(), true);
        if oid == pg_sys::InvalidOid {
            return Err(Error::new(Code::UndefinedObject, format!("role {} does not exist", crate::sqltext::ident(owner))));
        }
        if pg_sys::superuser_arg(oid) {
            return Err(Error::new(
                Code::InsufficientPrivilege,
                format!(
                    "role {} became a superuser since the plan was made: statements planned to run as the owner are not run as a superuser",
                    crate::sqltext::ident(owner)
                ),
            )
            .hint("Plan again."));
        }
        let mut save_user = pg_sys::InvalidOid;
        let mut save_sec: std::ffi::c_int = 0;
        pg_sys::GetUserIdAndSecContext(&mut save_user, &mut save_sec);
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::SetUserIdAndSecContext(
            oid,
            save_sec | (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION) as std::ffi::c_int,
        );
        let out = f();
        pg_sys::AtEOXact_GUC(false, level);
        pg_sys::SetUserIdAndSecContext(save_user, save_sec);
        out
    }
}
