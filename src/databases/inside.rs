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

/// `{"ok": true}`, or `{"ok": false, "failed": <index>, "error": …}` (the batch rolled back).
fn run(batch: &Batch) -> Value {
    AT.with(|c| c.set(0));
    match xact::run("pgops inside a database", || {
        // What the superuser checked stays true until someone else's code runs.
        let mut checked_clean = false;
        for (i, st) in batch.statements.iter().enumerate() {
            AT.with(|c| c.set(i));
            match &st.guard {
                Guard::None => {}
                Guard::NoForeignObjects if checked_clean => {}
                g => {
                    check(g)?;
                    checked_clean = matches!(g, Guard::NoForeignObjects);
                }
            }
            // Unqualified names in a baseline, and in what the owner runs, mean what they mean to
            // the database's users; every other statement names its schema and keeps the pinned path.
            if st.public_path {
                Spi::run("SET LOCAL search_path TO public")?;
            }
            match &st.run_as {
                RunAs::Superuser => Spi::run(&st.sql)?,
                RunAs::Owner(owner) => {
                    checked_clean = false;
                    as_owner(owner, || Ok(Spi::run(&st.sql)?))?
                }
            }
            if st.public_path {
                Spi::run("SET LOCAL search_path TO pg_catalog, pg_temp")?;
            }
        }
        Ok(())
    }) {
        Ok(()) => json!({ "ok": true }),
        Err(e) => json!({ "ok": false, "failed": AT.with(|c| c.get()), "error": e.one_line() }),
    }
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
