//! Desired × live → ordered statements, each with the reason and the differences behind it.
//! Pure: no PostgreSQL here; the caller supplies both sides as plain data.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Result;
use crate::{bail_invalid, invalid};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::live::{DefaultAclEntry, Live, LiveMembership, LiveRole};
use super::model::{DefaultPrivilege, Membership, ObjKind, RoleSpec, check_role_name, normalise_privileges};
use super::scram;
use crate::sqltext::{ident, literal, role as role_sql};

mod privileges;
mod role;
#[cfg(test)]
mod tests;
mod validate;

use privileges::*;
use role::*;
use validate::*;

/// Where and when a statement runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Phase {
    /// Roles, memberships, settings (cluster-wide), before per-database work.
    Cluster,
    /// Default privileges, grants on existing objects, REASSIGN/DROP OWNED (one database).
    Database,
    /// DROP ROLE, after every database released the role.
    ClusterFinal,
}

pub use crate::risk::Risk;

/// One difference between config and catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub object: String,
    pub field: String,
    pub want: Option<String>,
    pub have: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub phase: Phase,
    /// None: cluster-wide (runs in any database).
    pub database: Option<String>,
    /// What runs. May contain a password verifier: never show it, show `display`.
    #[serde(skip)]
    pub statement: String,
    pub display: String,
    pub reason: String,
    pub risk: Risk,
    pub diffs: Vec<Diff>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Differences reported without a statement (md5 verifiers, schemas that do not exist).
    pub notes: Vec<Diff>,
}

impl Plan {
    /// Identifies this plan and the catalog state it was made from.
    pub fn hash(&self, live: &Live) -> String {
        let mut h = Sha256::new();
        for s in &self.steps {
            h.update(s.database.as_deref().unwrap_or("").as_bytes());
            h.update([0]);
            h.update(s.statement.as_bytes());
            h.update([0]);
        }
        // Streamed into the hash: the live state of ten thousand roles is never one buffer.
        let _ = serde_json::to_writer(HashWriter(&mut h), live);
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn diffs(&self) -> impl Iterator<Item = (&Option<String>, &Diff)> {
        self.steps
            .iter()
            .flat_map(|s| s.diffs.iter().map(move |d| (&s.database, d)))
            .chain(self.notes.iter().map(|d| (&None, d)))
    }
}

/// `io::Write` into a SHA-256 state.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What pgops is asked to make true.
#[derive(Clone, Debug, Default)]
pub struct Desired {
    pub roles: Vec<RoleSpec>,
    pub default_privileges: Vec<DefaultPrivilege>,
    /// VALID UNTIL per role, already rendered by the server in the live format.
    pub valid_until: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Roles that may never be dropped (besides the bootstrap superuser and the current user).
    pub protected: Vec<String>,
    /// Who receives the objects of a dropped role (REASSIGN OWNED).
    pub heir: String,
    /// Setting names the server knows (custom `a.b` names are always accepted).
    pub known_settings: BTreeSet<String>,
}

/// Settings whose value is a list: `ALTER ROLE … SET` takes one literal per element.
const LIST_SETTINGS: &[&str] = &[
    "search_path",
    "temp_tablespaces",
    "session_preload_libraries",
    "local_preload_libraries",
    "log_destination",
];

fn yes_no(b: bool) -> String {
    b.to_string()
}

fn opt_bool(b: Option<bool>) -> String {
    b.map(|b| b.to_string()).unwrap_or_else(|| "default".into())
}

struct Builder<'a> {
    live: &'a Live,
    pg16: bool,
    plan: Plan,
}

impl Builder<'_> {
    fn cluster(&mut self, statement: String, display: Option<String>, reason: String, risk: Risk, diffs: Vec<Diff>) {
        self.push(Phase::Cluster, None, statement, display, reason, risk, diffs);
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        phase: Phase,
        database: Option<String>,
        statement: String,
        display: Option<String>,
        reason: String,
        risk: Risk,
        diffs: Vec<Diff>,
    ) {
        let display = display.unwrap_or_else(|| statement.clone());
        self.plan.steps.push(Step {
            phase,
            database,
            statement,
            display,
            reason,
            risk,
            diffs,
        });
    }
}

fn diff(object: &str, field: &str, want: Option<String>, have: Option<String>) -> Diff {
    Diff {
        object: object.to_string(),
        field: field.to_string(),
        want,
        have,
    }
}

fn reason_of(diffs: &[Diff]) -> String {
    diffs
        .iter()
        .map(|d| {
            format!(
                "{}: config {} ≠ catalog {}",
                d.field,
                d.want.as_deref().unwrap_or("(none)"),
                d.have.as_deref().unwrap_or("(none)")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Statements that run in one transaction: one phase in one database (None: cluster-wide).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub database: Option<String>,
    pub phase: Phase,
    /// Indexes into the plan's steps, in plan order.
    pub rows: Vec<usize>,
}

/// The plan's steps grouped by (phase, database), in the order each group first appears: an
/// apply runs each group all-or-nothing.
pub fn groups(steps: &[Step]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        match out.iter_mut().find(|g| g.phase == s.phase && g.database == s.database) {
            Some(g) => g.rows.push(i),
            None => out.push(Group {
                database: s.database.clone(),
                phase: s.phase,
                rows: vec![i],
            }),
        }
    }
    out
}

/// Plans the statements that make the catalog match the config.
pub fn plan(desired: &Desired, live: &Live, opts: &Options) -> Result<Plan> {
    validate(desired, live, opts)?;
    let mut b = Builder {
        live,
        pg16: live.server_version_num >= 160000,
        plan: Plan::default(),
    };
    let present: Vec<&RoleSpec> = desired.roles.iter().filter(|r| r.present).collect();

    // 1. Create missing roles, 2. converge attributes of existing ones.
    for r in &present {
        match live.roles.get(&r.name) {
            None => create_role(&mut b, r, desired.valid_until.get(&r.name)),
            Some(lr) => alter_role(&mut b, r, lr, desired.valid_until.get(&r.name), r.name == live.bootstrap_superuser),
        }
    }
    for r in &present {
        let lr = live.roles.get(&r.name);
        comment(&mut b, r, lr);
        settings(&mut b, r, lr);
    }
    // Memberships: revokes first, then grants (all roles exist by now).
    let mut grants = Vec::new();
    for r in &present {
        let have: &[LiveMembership] = live.roles.get(&r.name).map(|l| l.memberships.as_slice()).unwrap_or(&[]);
        for lm in have {
            if !r.memberships.iter().any(|m| m.role == lm.role) {
                b.cluster(
                    revoke_membership(b.pg16, lm, &r.name),
                    None,
                    format!("membership in \"{}\" is not in the config", lm.role),
                    Risk::Revoke,
                    vec![diff(
                        &format!("role \"{}\"", r.name),
                        &format!("member of \"{}\"", lm.role),
                        None,
                        Some(format!("granted by {}", lm.grantor)),
                    )],
                );
            }
        }
        for m in &r.memberships {
            grants.extend(membership(&b, r, m, have.iter().find(|lm| lm.role == m.role)));
        }
    }
    for (statement, reason, risk, d) in grants {
        b.cluster(statement, None, reason, risk, vec![d]);
    }
    // md5 verifiers are drift whatever the config says about the password.
    for (name, lr) in &live.roles {
        if lr.password.as_deref().is_some_and(scram::is_md5_verifier) {
            b.plan.notes.push(diff(
                &format!("role \"{name}\""),
                "password",
                Some("SCRAM-SHA-256 verifier".into()),
                Some("md5 verifier".into()),
            ));
        }
    }

    // Drops, first half: no new logins, sessions ended, memberships revoked.
    let mut dropping: Vec<&RoleSpec> = desired
        .roles
        .iter()
        .filter(|r| !r.present && live.roles.contains_key(&r.name))
        .collect();
    // A role is dropped only when every database was read: its objects and privileges in an
    // unreadable one could not be handed over, and the other databases' REASSIGN/DROP OWNED would
    // be done for nothing before DROP ROLE failed.
    if !live.unreadable.is_empty() {
        let waiting: Vec<&str> = live.unreadable.keys().map(String::as_str).collect();
        for r in dropping.drain(..) {
            b.plan.notes.push(diff(
                &format!("role \"{}\"", r.name),
                "state",
                Some("absent".into()),
                Some(format!(
                    "present: dropped once every database can be read (not: {})",
                    waiting.join(", ")
                )),
            ));
        }
    }
    for r in &dropping {
        let lr = &live.roles[&r.name];
        let obj = format!("role \"{}\"", r.name);
        if lr.attrs.login {
            b.cluster(
                format!("ALTER ROLE {} NOLOGIN", ident(&r.name)),
                None,
                "role is marked absent: no new logins while it is dropped".into(),
                Risk::Drop,
                vec![],
            );
        }
        b.cluster(
            format!(
                "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = {}",
                literal(&r.name)
            ),
            None,
            "role is marked absent: end its sessions".into(),
            Risk::Drop,
            vec![],
        );
        for lm in &lr.memberships {
            b.cluster(
                revoke_membership(b.pg16, lm, &r.name),
                None,
                "role is marked absent".into(),
                Risk::Drop,
                vec![],
            );
        }
        let _ = obj;
    }

    // Per database: default privileges, existing objects, REASSIGN/DROP OWNED.
    for (db, why) in &live.unreadable {
        b.plan.notes.push(diff(
            &format!("roles' privileges in database \"{db}\""),
            "database",
            Some("read".into()),
            Some(format!("could not be read, nothing is planned there: {why}")),
        ));
    }
    let mut pending = BTreeSet::new();
    for d in &desired.default_privileges {
        if let Some(db) = d.database.as_deref().filter(|db| {
            *db != "*" && !live.databases.iter().any(|l| l.name == *db) && !live.unreadable.contains_key(*db)
        }) && pending.insert(db)
        {
            b.plan.notes.push(diff(
                &format!("default privileges in database \"{db}\""),
                "database",
                Some("exists and allows connections".into()),
                Some("missing: applied once it exists (apply roles again after apply_databases creates it)".into()),
            ));
        }
    }
    let managed: BTreeSet<&str> = present.iter().map(|r| r.name.as_str()).collect();
    for db in &live.databases {
        if db.pgops_version.is_some() || desired.default_privileges.iter().any(|d| privileges::applies(d, db)) {
            default_privileges(&mut b, desired, &managed, db);
            existing_objects(&mut b, desired, db);
        }
        for r in &dropping {
            if db.dependents.get(&r.name).copied().unwrap_or(0) > 0 || db.name == live.current_database {
                for stmt in [
                    format!("REASSIGN OWNED BY {} TO {}", ident(&r.name), ident(&opts.heir)),
                    format!("DROP OWNED BY {}", ident(&r.name)),
                ] {
                    b.push(
                        Phase::Database,
                        Some(db.name.clone()),
                        stmt,
                        None,
                        format!(
                            "role \"{}\" is marked absent: its objects go to \"{}\", its privileges go away",
                            r.name, opts.heir
                        ),
                        Risk::Drop,
                        vec![],
                    );
                }
            }
        }
    }
    for r in &dropping {
        b.push(
            Phase::ClusterFinal,
            None,
            format!("DROP ROLE {}", ident(&r.name)),
            None,
            "role is marked absent".into(),
            Risk::Drop,
            vec![diff(
                &format!("role \"{}\"", r.name),
                "state",
                Some("absent".into()),
                Some("present".into()),
            )],
        );
    }
    Ok(b.plan)
}
