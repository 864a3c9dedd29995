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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Safe,
    Revoke,
    Drop,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Safe => "safe",
            Risk::Revoke => "revoke",
            Risk::Drop => "drop",
        }
    }
}

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
        h.update(serde_json::to_vec(live).unwrap_or_default());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn diffs(&self) -> impl Iterator<Item = (&Option<String>, &Diff)> {
        self.steps
            .iter()
            .flat_map(|s| s.diffs.iter().map(move |d| (&s.database, d)))
            .chain(self.notes.iter().map(|d| (&None, d)))
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

/// Validates the config against itself and the catalog. Errors name the object.
fn validate(desired: &Desired, live: &Live, opts: &Options) -> Result<()> {
    let mut seen = BTreeSet::new();
    for r in &desired.roles {
        check_role_name(&r.name)?;
        if !seen.insert(r.name.as_str()) {
            bail_invalid!("role \"{}\" is declared twice", r.name);
        }
        if r.present && !live.roles.contains_key(&r.name) {
            super::model::check_new_role_name(&r.name)?;
        }
        if r.connlimit < -1 {
            bail_invalid!(
                "role \"{}\": connlimit must be -1 (no limit) or more, got {}",
                r.name,
                r.connlimit
            );
        }
        if let Some(p) = &r.password {
            if !scram::is_verifier(p) {
                bail_invalid!(
                    "role \"{}\": the stored password is not a SCRAM-SHA-256 verifier; set it with pgops.set_password()",
                    r.name
                );
            }
        }
        if !r.present {
            let why = if r.name == live.bootstrap_superuser {
                Some("it is the bootstrap superuser")
            } else if r.name == live.current_user {
                Some("it is the current user")
            } else if opts.protected.iter().any(|p| p == &r.name) {
                Some("it is listed in pgops.protected_roles")
            } else {
                None
            };
            if let Some(why) = why {
                bail_invalid!("role \"{}\" is marked absent but cannot be dropped: {why}", r.name);
            }
        }
        for (k, _) in &r.parameters {
            if !k.contains('.') && !opts.known_settings.is_empty() && !opts.known_settings.contains(&k.to_lowercase()) {
                bail_invalid!("role \"{}\": unknown setting \"{k}\" in parameters", r.name);
            }
        }
    }
    let present: BTreeSet<&str> = desired
        .roles
        .iter()
        .filter(|r| r.present)
        .map(|r| r.name.as_str())
        .collect();
    let absent: BTreeSet<&str> = desired
        .roles
        .iter()
        .filter(|r| !r.present)
        .map(|r| r.name.as_str())
        .collect();
    let exists = |n: &str| present.contains(n) || (live.roles.contains_key(n) && !absent.contains(n));
    for r in desired.roles.iter().filter(|r| r.present) {
        for m in &r.memberships {
            if m.role == r.name {
                bail_invalid!("role \"{}\" cannot be a member of itself", r.name);
            }
            if absent.contains(m.role.as_str()) {
                bail_invalid!(
                    "role \"{}\" is a member of \"{}\", which is marked absent",
                    r.name,
                    m.role
                );
            }
            if !exists(&m.role) {
                bail_invalid!(
                    "role \"{}\" is a member of unknown role \"{}\": declare it in pgops.role or create it first",
                    r.name,
                    m.role
                );
            }
            if (m.inherit.is_some() || m.set.is_some()) && live.server_version_num < 160000 {
                bail_invalid!(
                    "role \"{}\", membership in \"{}\": the inherit and set options need PostgreSQL 16 or later (this server is {})",
                    r.name,
                    m.role,
                    live.server_version_num
                );
            }
        }
    }
    // Cycles: declared memberships of managed roles plus live memberships of the others.
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in desired.roles.iter().filter(|r| r.present) {
        edges
            .entry(&r.name)
            .or_default()
            .extend(r.memberships.iter().map(|m| m.role.as_str()));
    }
    for (name, lr) in &live.roles {
        if !seen.contains(name.as_str()) {
            edges
                .entry(name)
                .or_default()
                .extend(lr.memberships.iter().map(|m| m.role.as_str()));
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        bail_invalid!("memberships form a cycle: {}", cycle.join(" → "));
    }
    for d in &desired.default_privileges {
        let what = format!(
            "default privilege for creator \"{}\" on {} to \"{}\"",
            d.creator,
            d.kind.as_str(),
            d.grantee
        );
        if !exists(&d.creator) {
            bail_invalid!("{what}: unknown creator role \"{}\"", d.creator);
        }
        if d.grantee != "PUBLIC" && !exists(&d.grantee) {
            bail_invalid!("{what}: unknown grantee role \"{}\"", d.grantee);
        }
        normalise_privileges(&d.privileges, d.kind, live.server_version_num).map_err(|e| invalid!("{what}: {e}"))?;
        if let Some(db) = &d.database {
            if !live.databases.iter().any(|l| &l.name == db) {
                bail_invalid!("{what}: database \"{db}\" does not exist (or does not allow connections)");
            }
        }
    }
    Ok(())
}

fn find_cycle<'a>(edges: &BTreeMap<&'a str, Vec<&'a str>>) -> Option<Vec<&'a str>> {
    // 0 = unvisited, 1 = on stack, 2 = done
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    fn visit<'a>(
        n: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match state.get(n) {
            Some(1) => {
                let from = stack.iter().position(|s| *s == n).unwrap_or(0);
                let mut c = stack[from..].to_vec();
                c.push(n);
                return Some(c);
            }
            Some(2) => return None,
            _ => {}
        }
        state.insert(n, 1);
        stack.push(n);
        for next in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, edges, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n, 2);
        None
    }
    for n in edges.keys() {
        let mut stack = Vec::new();
        if let Some(c) = visit(n, edges, &mut state, &mut stack) {
            return Some(c);
        }
    }
    None
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
            Some(lr) => alter_role(&mut b, r, lr, desired.valid_until.get(&r.name)),
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
                let granted_by = if b.pg16 {
                    format!(" GRANTED BY {}", ident(&lm.grantor))
                } else {
                    String::new()
                };
                b.cluster(
                    format!("REVOKE {} FROM {}{granted_by}", ident(&lm.role), ident(&r.name)),
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
    let dropping: Vec<&RoleSpec> = desired
        .roles
        .iter()
        .filter(|r| !r.present && live.roles.contains_key(&r.name))
        .collect();
    for r in &dropping {
        let lr = &live.roles[&r.name];
        let obj = format!("role \"{}\"", r.name);
        if lr.login {
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
            let granted_by = if b.pg16 {
                format!(" GRANTED BY {}", ident(&lm.grantor))
            } else {
                String::new()
            };
            b.cluster(
                format!("REVOKE {} FROM {}{granted_by}", ident(&lm.role), ident(&r.name)),
                None,
                "role is marked absent".into(),
                Risk::Drop,
                vec![],
            );
        }
        let _ = obj;
    }

    // Per database: default privileges, existing objects, REASSIGN/DROP OWNED.
    let managed: BTreeSet<&str> = present.iter().map(|r| r.name.as_str()).collect();
    for db in &live.databases {
        if db.pgops_version.is_some() {
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

fn attributes(r: &RoleSpec) -> String {
    let f = |on: bool, yes: &str| if on { yes.to_string() } else { format!("NO{yes}") };
    [
        f(r.login, "LOGIN"),
        f(r.superuser, "SUPERUSER"),
        f(r.createdb, "CREATEDB"),
        f(r.createrole, "CREATEROLE"),
        f(r.inherit, "INHERIT"),
        f(r.replication, "REPLICATION"),
        f(r.bypassrls, "BYPASSRLS"),
        format!("CONNECTION LIMIT {}", r.connlimit),
    ]
    .join(" ")
}

fn create_role(b: &mut Builder, r: &RoleSpec, valid_until: Option<&String>) {
    let mut stmt = format!("CREATE ROLE {} WITH {}", ident(&r.name), attributes(r));
    let mut display = stmt.clone();
    if let Some(p) = &r.password {
        stmt.push_str(&format!(" PASSWORD {}", literal(p)));
        display.push_str(" PASSWORD '<redacted>'");
    }
    if let Some(v) = valid_until {
        let clause = format!(" VALID UNTIL {}", literal(v));
        stmt.push_str(&clause);
        display.push_str(&clause);
    }
    let obj = format!("role \"{}\"", r.name);
    b.cluster(
        stmt,
        Some(display),
        "role does not exist".into(),
        Risk::Safe,
        vec![diff(&obj, "state", Some("present".into()), Some("absent".into()))],
    );
}

fn alter_role(b: &mut Builder, r: &RoleSpec, lr: &LiveRole, valid_until: Option<&String>) {
    let obj = format!("role \"{}\"", r.name);
    let mut clauses = Vec::new();
    let mut diffs = Vec::new();
    let mut risk = Risk::Safe;
    let flags: [(&str, bool, bool, &str); 7] = [
        ("login", r.login, lr.login, "LOGIN"),
        ("superuser", r.superuser, lr.superuser, "SUPERUSER"),
        ("createdb", r.createdb, lr.createdb, "CREATEDB"),
        ("createrole", r.createrole, lr.createrole, "CREATEROLE"),
        ("inherit", r.inherit, lr.inherit, "INHERIT"),
        ("replication", r.replication, lr.replication, "REPLICATION"),
        ("bypassrls", r.bypassrls, lr.bypassrls, "BYPASSRLS"),
    ];
    for (field, want, have, kw) in flags {
        if want != have {
            clauses.push(if want { kw.to_string() } else { format!("NO{kw}") });
            diffs.push(diff(&obj, field, Some(yes_no(want)), Some(yes_no(have))));
            if !want {
                risk = Risk::Revoke;
            }
        }
    }
    if r.connlimit != lr.connlimit {
        clauses.push(format!("CONNECTION LIMIT {}", r.connlimit));
        diffs.push(diff(
            &obj,
            "connlimit",
            Some(r.connlimit.to_string()),
            Some(lr.connlimit.to_string()),
        ));
    }
    let want_until = valid_until.cloned();
    let have_until = lr.valid_until.clone();
    let never = |v: &Option<String>| v.as_deref().is_none_or(|s| s == "infinity");
    if want_until != have_until && !(never(&want_until) && never(&have_until)) {
        clauses.push(format!(
            "VALID UNTIL {}",
            literal(want_until.as_deref().unwrap_or("infinity"))
        ));
        diffs.push(diff(
            &obj,
            "valid_until",
            Some(want_until.clone().unwrap_or_else(|| "infinity".into())),
            have_until,
        ));
    }
    if !clauses.is_empty() {
        let reason = reason_of(&diffs);
        b.cluster(
            format!("ALTER ROLE {} WITH {}", ident(&r.name), clauses.join(" ")),
            None,
            reason,
            risk,
            diffs,
        );
    }
    if let Some(p) = &r.password {
        if lr.password.as_deref() != Some(p.as_str()) {
            let have = match lr.password.as_deref() {
                None => "none",
                Some(h) if scram::is_md5_verifier(h) => "md5 verifier",
                Some(_) => "another verifier",
            };
            let d = diff(&obj, "password", Some("configured verifier".into()), Some(have.into()));
            b.cluster(
                format!("ALTER ROLE {} WITH PASSWORD {}", ident(&r.name), literal(p)),
                Some(format!("ALTER ROLE {} WITH PASSWORD '<redacted>'", ident(&r.name))),
                format!("password: config has its verifier, catalog has {have}"),
                Risk::Safe,
                vec![d],
            );
        }
    }
}

fn comment(b: &mut Builder, r: &RoleSpec, lr: Option<&LiveRole>) {
    let have = lr.and_then(|l| l.comment.clone());
    if r.comment == have || (lr.is_none() && r.comment.is_none()) {
        return;
    }
    let value = r.comment.as_deref().map(literal).unwrap_or_else(|| "NULL".into());
    let d = diff(&format!("role \"{}\"", r.name), "comment", r.comment.clone(), have);
    b.cluster(
        format!("COMMENT ON ROLE {} IS {value}", ident(&r.name)),
        None,
        reason_of(std::slice::from_ref(&d)),
        Risk::Safe,
        vec![d],
    );
}

/// The value clause of `ALTER ROLE … SET name = …`.
fn setting_value(name: &str, value: &str) -> String {
    if LIST_SETTINGS.contains(&name.to_lowercase().as_str()) {
        value
            .split(',')
            .map(|v| literal(v.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        literal(value)
    }
}

/// How the server stores a value set by `setting_value` (for comparison).
fn stored_setting(name: &str, value: &str) -> String {
    if LIST_SETTINGS.contains(&name.to_lowercase().as_str()) {
        value.split(',').map(|v| v.trim()).collect::<Vec<_>>().join(", ")
    } else {
        value.to_string()
    }
}

fn settings(b: &mut Builder, r: &RoleSpec, lr: Option<&LiveRole>) {
    let empty = BTreeMap::new();
    let have = lr.map(|l| &l.settings).unwrap_or(&empty);
    let obj = format!("role \"{}\"", r.name);
    for (k, v) in &r.parameters {
        let current = have.get(k);
        match v {
            Some(v) if current.map(String::as_str) != Some(stored_setting(k, v).as_str()) => {
                let d = diff(
                    &obj,
                    &format!("setting {k}"),
                    Some(stored_setting(k, v)),
                    current.cloned(),
                );
                b.cluster(
                    format!(
                        "ALTER ROLE {} SET {} = {}",
                        ident(&r.name),
                        ident(k),
                        setting_value(k, v)
                    ),
                    None,
                    reason_of(std::slice::from_ref(&d)),
                    Risk::Safe,
                    vec![d],
                );
            }
            None if current.is_some() => {
                let d = diff(&obj, &format!("setting {k}"), None, current.cloned());
                b.cluster(
                    format!("ALTER ROLE {} RESET {}", ident(&r.name), ident(k)),
                    None,
                    "setting is DEFAULT in the config".into(),
                    Risk::Revoke,
                    vec![d],
                );
            }
            _ => {}
        }
    }
    for (k, v) in have {
        if !r.parameters.contains_key(k) {
            let d = diff(&obj, &format!("setting {k}"), None, Some(v.clone()));
            b.cluster(
                format!("ALTER ROLE {} RESET {}", ident(&r.name), ident(k)),
                None,
                "setting is not in the config".into(),
                Risk::Revoke,
                vec![d],
            );
        }
    }
}

type GrantRow = (String, String, Risk, Diff);

fn membership(b: &Builder, r: &RoleSpec, m: &Membership, have: Option<&LiveMembership>) -> Vec<GrantRow> {
    let obj = format!("role \"{}\"", r.name);
    let field = format!("member of \"{}\"", m.role);
    let (role_q, member_q) = (ident(&m.role), ident(&r.name));
    let Some(h) = have else {
        let mut opts = Vec::new();
        if m.admin {
            opts.push(if b.pg16 { "ADMIN TRUE" } else { "ADMIN OPTION" }.to_string());
        }
        if let Some(i) = m.inherit {
            opts.push(format!("INHERIT {}", i.to_string().to_uppercase()));
        }
        if let Some(s) = m.set {
            opts.push(format!("SET {}", s.to_string().to_uppercase()));
        }
        let with = if opts.is_empty() {
            String::new()
        } else {
            format!(" WITH {}", opts.join(", "))
        };
        let want = format!(
            "admin {}, inherit {}, set {}",
            m.admin,
            opt_bool(m.inherit),
            opt_bool(m.set)
        );
        return vec![(
            format!("GRANT {role_q} TO {member_q}{with}"),
            "membership is not granted".into(),
            Risk::Safe,
            diff(&obj, &field, Some(want), None),
        )];
    };
    let mut rows = Vec::new();
    let mut option = |name: &str, want: bool, have: bool| {
        if want == have {
            return;
        }
        let d = diff(
            &obj,
            &format!("{field} {name} option"),
            Some(yes_no(want)),
            Some(yes_no(have)),
        );
        let upper = name.to_uppercase();
        let (stmt, risk) = if want {
            let with = if name == "admin" && !b.pg16 {
                "ADMIN OPTION".to_string()
            } else {
                format!("{upper} TRUE")
            };
            (format!("GRANT {role_q} TO {member_q} WITH {with}"), Risk::Safe)
        } else {
            (
                format!("REVOKE {upper} OPTION FOR {role_q} FROM {member_q}"),
                Risk::Revoke,
            )
        };
        rows.push((stmt, reason_of(std::slice::from_ref(&d)), risk, d));
    };
    option("admin", m.admin, h.admin);
    if let (Some(want), Some(have)) = (m.inherit, h.inherit) {
        option("inherit", want, have);
    }
    if let (Some(want), Some(have)) = (m.set, h.set) {
        option("set", want, have);
    }
    rows
}

/// The (creator, schema, kind, grantee, privilege) → grant option entries wanted in `db`.
fn wanted_default_acl(
    desired: &Desired,
    db: &super::live::LiveDatabase,
    version: i32,
) -> BTreeMap<(String, Option<String>, ObjKind, String, String), bool> {
    let mut want = BTreeMap::new();
    for d in &desired.default_privileges {
        if d.database.as_ref().is_some_and(|n| n != &db.name) {
            continue;
        }
        if d.schema.as_ref().is_some_and(|s| !db.schemas.contains(s)) {
            continue;
        }
        if d.grantee == d.creator {
            // The creator owns what it creates: its own rights are implicit (PostgreSQL keeps them
            // in the built-in defaults, not as grants).
            continue;
        }
        for p in normalise_privileges(&d.privileges, d.kind, version).unwrap_or_default() {
            let e = want
                .entry((d.creator.clone(), d.schema.clone(), d.kind, d.grantee.clone(), p))
                .or_insert(false);
            *e |= d.grant_option;
        }
    }
    want
}

fn adp_prefix(creator: &str, schema: &Option<String>) -> String {
    let in_schema = schema
        .as_ref()
        .map(|s| format!(" IN SCHEMA {}", ident(s)))
        .unwrap_or_default();
    format!("ALTER DEFAULT PRIVILEGES FOR ROLE {}{in_schema}", ident(creator))
}

fn default_privileges(b: &mut Builder, desired: &Desired, managed: &BTreeSet<&str>, db: &super::live::LiveDatabase) {
    let want = wanted_default_acl(desired, db, b.live.server_version_num);
    for d in &desired.default_privileges {
        if let Some(s) = &d.schema {
            if !db.schemas.contains(s) && d.database.as_ref().is_none_or(|n| n == &db.name) {
                b.plan.notes.push(diff(
                    &format!("default privileges in database \"{}\"", db.name),
                    &format!("schema \"{s}\""),
                    Some("exists".into()),
                    Some("missing: rule skipped here".into()),
                ));
            }
        }
    }
    let have: BTreeMap<(String, Option<String>, ObjKind, String, String), bool> = db
        .default_acl
        .iter()
        .map(|e: &DefaultAclEntry| {
            (
                (
                    e.creator.clone(),
                    e.schema.clone(),
                    e.kind,
                    e.grantee.clone(),
                    e.privilege.clone(),
                ),
                e.grant_option,
            )
        })
        .collect();
    let object = |c: &str, s: &Option<String>, k: ObjKind| {
        format!(
            "default privileges for \"{c}\"{} on {}",
            s.as_ref().map(|s| format!(" in schema \"{s}\"")).unwrap_or_default(),
            k.as_str()
        )
    };
    // Revokes: entries involving a managed role that the config does not want.
    let mut revokes: BTreeMap<(String, Option<String>, ObjKind, String, bool), Vec<String>> = BTreeMap::new();
    for (k, &go) in &have {
        let involved = (managed.contains(k.0.as_str()) || managed.contains(k.3.as_str())) && k.0 != k.3;
        match want.get(k) {
            None if involved => revokes
                .entry((k.0.clone(), k.1.clone(), k.2, k.3.clone(), false))
                .or_default()
                .push(k.4.clone()),
            Some(false) if go => revokes
                .entry((k.0.clone(), k.1.clone(), k.2, k.3.clone(), true))
                .or_default()
                .push(k.4.clone()),
            _ => {}
        }
    }
    for ((creator, schema, kind, grantee, only_option), privs) in revokes {
        let what = if only_option { "GRANT OPTION FOR " } else { "" };
        let diffs = privs
            .iter()
            .map(|p| {
                diff(
                    &object(&creator, &schema, kind),
                    &format!("{p} to {grantee}"),
                    None,
                    Some(if only_option {
                        "granted with grant option".into()
                    } else {
                        "granted".into()
                    }),
                )
            })
            .collect();
        b.push(
            Phase::Database,
            Some(db.name.clone()),
            format!(
                "{} REVOKE {what}{} ON {} FROM {}",
                adp_prefix(&creator, &schema),
                privs.join(", "),
                kind.sql(),
                role_sql(&grantee)
            ),
            None,
            "default privilege is not in the config".into(),
            Risk::Revoke,
            diffs,
        );
    }
    // Grants: what the config wants and the catalog lacks (or lacks the grant option of).
    let mut grants: BTreeMap<(String, Option<String>, ObjKind, String, bool), Vec<String>> = BTreeMap::new();
    for (k, &go) in &want {
        let missing = match have.get(k) {
            None => true,
            Some(&had) => go && !had,
        };
        if missing {
            grants
                .entry((k.0.clone(), k.1.clone(), k.2, k.3.clone(), go))
                .or_default()
                .push(k.4.clone());
        }
    }
    for ((creator, schema, kind, grantee, go), privs) in grants {
        let with = if go { " WITH GRANT OPTION" } else { "" };
        let diffs = privs
            .iter()
            .map(|p| {
                diff(
                    &object(&creator, &schema, kind),
                    &format!("{p} to {grantee}"),
                    Some(if go {
                        "granted with grant option".into()
                    } else {
                        "granted".into()
                    }),
                    None,
                )
            })
            .collect();
        b.push(
            Phase::Database,
            Some(db.name.clone()),
            format!(
                "{} GRANT {} ON {} TO {}{with}",
                adp_prefix(&creator, &schema),
                privs.join(", "),
                kind.sql(),
                role_sql(&grantee)
            ),
            None,
            "default privilege is missing".into(),
            Risk::Safe,
            diffs,
        );
    }
}

fn existing_objects(b: &mut Builder, desired: &Desired, db: &super::live::LiveDatabase) {
    let version = b.live.server_version_num;
    // (schema, kind, grantee) → privilege → grant option, for rules that reach existing objects.
    let mut want: BTreeMap<(String, ObjKind, String), BTreeMap<String, bool>> = BTreeMap::new();
    let mut managed_grantees: BTreeSet<(String, ObjKind)> = BTreeSet::new();
    for d in desired
        .default_privileges
        .iter()
        .filter(|d| d.existing && d.kind.has_existing_form())
    {
        if d.database.as_ref().is_some_and(|n| n != &db.name) {
            continue;
        }
        managed_grantees.insert((d.grantee.clone(), d.kind));
        let schemas: Vec<&String> = match &d.schema {
            Some(s) => db.schemas.iter().filter(|x| *x == s).collect(),
            None => db.schemas.iter().collect(),
        };
        for s in schemas {
            for p in normalise_privileges(&d.privileges, d.kind, version).unwrap_or_default() {
                *want
                    .entry((s.clone(), d.kind, d.grantee.clone()))
                    .or_default()
                    .entry(p)
                    .or_insert(false) |= d.grant_option;
            }
        }
    }
    let facts: BTreeMap<(String, ObjKind, String, String), i64> = db
        .existing
        .iter()
        .map(|f| {
            (
                (f.schema.clone(), f.kind, f.grantee.clone(), f.privilege.clone()),
                f.granted,
            )
        })
        .collect();
    let totals: BTreeMap<(String, ObjKind, String), i64> = db
        .object_totals
        .iter()
        .map(|t| ((t.schema.clone(), t.kind, t.grantee.clone()), t.total))
        .collect();
    let on = |kind: ObjKind, schema: &str| match kind {
        ObjKind::Schemas => format!("SCHEMA {}", ident(schema)),
        other => format!("ALL {} IN SCHEMA {}", other.sql(), ident(schema)),
    };
    let object = |kind: ObjKind, schema: &str| match kind {
        ObjKind::Schemas => format!("schema \"{schema}\""),
        other => format!("existing {} in schema \"{schema}\"", other.as_str()),
    };
    // Revokes: privileges of managed grantees (those with `existing` rules for the kind) that no rule wants.
    let mut revokes: BTreeMap<(String, ObjKind, String), Vec<String>> = BTreeMap::new();
    for ((schema, kind, grantee, privilege), granted) in &facts {
        if *granted == 0 || !managed_grantees.contains(&(grantee.clone(), *kind)) {
            continue;
        }
        let wanted = want
            .get(&(schema.clone(), *kind, grantee.clone()))
            .is_some_and(|p| p.contains_key(privilege));
        if !wanted {
            revokes
                .entry((schema.clone(), *kind, grantee.clone()))
                .or_default()
                .push(privilege.clone());
        }
    }
    for ((schema, kind, grantee), privs) in revokes {
        let diffs = privs
            .iter()
            .map(|p| {
                diff(
                    &object(kind, &schema),
                    &format!("{p} to {grantee}"),
                    None,
                    Some("granted".into()),
                )
            })
            .collect();
        b.push(
            Phase::Database,
            Some(db.name.clone()),
            format!(
                "REVOKE {} ON {} FROM {}",
                privs.join(", "),
                on(kind, &schema),
                role_sql(&grantee)
            ),
            None,
            "privilege on existing objects is not in the config".into(),
            Risk::Revoke,
            diffs,
        );
    }
    for ((schema, kind, grantee), privs) in &want {
        let total = totals
            .get(&(schema.clone(), *kind, grantee.clone()))
            .copied()
            .unwrap_or(0);
        let mut missing: BTreeMap<bool, Vec<String>> = BTreeMap::new();
        for (p, go) in privs {
            let granted = facts
                .get(&(schema.clone(), *kind, grantee.clone(), p.clone()))
                .copied()
                .unwrap_or(0);
            if total > 0 && granted < total {
                missing.entry(*go).or_default().push(p.clone());
            }
        }
        for (go, ps) in missing {
            let with = if go { " WITH GRANT OPTION" } else { "" };
            let diffs = ps
                .iter()
                .map(|p| {
                    let granted = facts
                        .get(&(schema.clone(), *kind, grantee.clone(), p.clone()))
                        .copied()
                        .unwrap_or(0);
                    diff(
                        &object(*kind, schema),
                        &format!("{p} to {grantee}"),
                        Some(format!("{total} of {total}")),
                        Some(format!("{granted} of {total}")),
                    )
                })
                .collect();
            b.push(
                Phase::Database,
                Some(db.name.clone()),
                format!(
                    "GRANT {} ON {} TO {}{with}",
                    ps.join(", "),
                    on(*kind, schema),
                    role_sql(grantee)
                ),
                None,
                "existing objects lack a privilege the config grants by default".into(),
                Risk::Safe,
                diffs,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::live::{ExistingFact, LiveDatabase, ObjectTotal};
    use super::*;

    fn live() -> Live {
        let mut roles = BTreeMap::new();
        for n in ["postgres", "pg_monitor"] {
            roles.insert(
                n.to_string(),
                LiveRole {
                    name: n.into(),
                    superuser: n == "postgres",
                    login: n == "postgres",
                    inherit: true,
                    connlimit: -1,
                    ..Default::default()
                },
            );
        }
        Live {
            server_version_num: 150000,
            bootstrap_superuser: "postgres".into(),
            current_user: "postgres".into(),
            current_database: "postgres".into(),
            roles,
            databases: vec![LiveDatabase {
                name: "postgres".into(),
                pgops_version: Some("0.1.0".into()),
                schemas: vec!["public".into()],
                ..Default::default()
            }],
        }
    }

    fn opts() -> Options {
        Options {
            protected: vec!["dbuser_dba".into()],
            heir: "postgres".into(),
            known_settings: ["work_mem", "search_path"].iter().map(|s| s.to_string()).collect(),
        }
    }

    fn statements(p: &Plan) -> Vec<String> {
        p.steps.iter().map(|s| s.statement.clone()).collect()
    }

    fn desired(roles: Vec<RoleSpec>) -> Desired {
        Desired {
            roles,
            ..Default::default()
        }
    }

    fn apply(live: &mut Live, d: &Desired) {
        // A tiny catalog simulator for idempotence tests: what the statements would leave behind.
        for r in d.roles.iter().filter(|r| r.present) {
            let lr = live.roles.entry(r.name.clone()).or_default();
            lr.name = r.name.clone();
            (
                lr.login,
                lr.superuser,
                lr.createdb,
                lr.createrole,
                lr.inherit,
                lr.replication,
                lr.bypassrls,
            ) = (
                r.login,
                r.superuser,
                r.createdb,
                r.createrole,
                r.inherit,
                r.replication,
                r.bypassrls,
            );
            lr.connlimit = r.connlimit;
            if r.password.is_some() {
                lr.password = r.password.clone();
            }
            lr.valid_until = d.valid_until.get(&r.name).cloned();
            lr.comment = r.comment.clone();
            lr.settings = r
                .parameters
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), stored_setting(k, v))))
                .collect();
            lr.memberships = r
                .memberships
                .iter()
                .map(|m| LiveMembership {
                    role: m.role.clone(),
                    grantor: "postgres".into(),
                    admin: m.admin,
                    inherit: None,
                    set: None,
                })
                .collect();
        }
    }

    #[test]
    fn creates_then_converges_to_an_empty_plan() {
        let mut ro = RoleSpec::new("dbrole_readonly");
        ro.login = false;
        let mut app = RoleSpec::new("dbuser_app");
        app.memberships.push(Membership {
            role: "dbrole_readonly".into(),
            admin: false,
            inherit: None,
            set: None,
        });
        app.parameters.insert("search_path".into(), Some("app, public".into()));
        app.comment = Some("app's user".into());
        let d = desired(vec![ro, app]);
        let mut l = live();
        let p = plan(&d, &l, &opts()).unwrap();
        let s = statements(&p);
        assert_eq!(
            s[0],
            "CREATE ROLE \"dbrole_readonly\" WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1"
        );
        assert!(s.contains(&"COMMENT ON ROLE \"dbuser_app\" IS 'app''s user'".to_string()));
        assert!(s.contains(&"ALTER ROLE \"dbuser_app\" SET \"search_path\" = 'app', 'public'".to_string()));
        assert_eq!(s.last().unwrap(), "GRANT \"dbrole_readonly\" TO \"dbuser_app\"");
        apply(&mut l, &d);
        assert!(plan(&d, &l, &opts()).unwrap().steps.is_empty());
    }

    #[test]
    fn flags_converge_both_ways() {
        let mut l = live();
        l.roles.insert(
            "u".into(),
            LiveRole {
                name: "u".into(),
                superuser: true,
                login: false,
                inherit: true,
                connlimit: 5,
                ..Default::default()
            },
        );
        let d = desired(vec![RoleSpec::new("u")]);
        let p = plan(&d, &l, &opts()).unwrap();
        assert_eq!(
            statements(&p),
            vec!["ALTER ROLE \"u\" WITH LOGIN NOSUPERUSER CONNECTION LIMIT -1"]
        );
        assert_eq!(p.steps[0].risk, Risk::Revoke);
        let fields: Vec<_> = p.steps[0].diffs.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, vec!["login", "superuser", "connlimit"]);
        assert!(p.steps[0].reason.contains("superuser: config false ≠ catalog true"));
    }

    #[test]
    fn unmanaged_memberships_and_settings_are_revoked() {
        let mut l = live();
        l.server_version_num = 160000;
        l.roles.insert(
            "g".into(),
            LiveRole {
                name: "g".into(),
                ..Default::default()
            },
        );
        l.roles.insert(
            "u".into(),
            LiveRole {
                name: "u".into(),
                login: true,
                inherit: true,
                connlimit: -1,
                memberships: vec![LiveMembership {
                    role: "g".into(),
                    grantor: "admin x".into(),
                    admin: false,
                    inherit: Some(true),
                    set: Some(true),
                }],
                settings: [("work_mem".to_string(), "1GB".to_string())].into(),
                ..Default::default()
            },
        );
        let p = plan(&desired(vec![RoleSpec::new("u")]), &l, &opts()).unwrap();
        assert_eq!(
            statements(&p),
            vec![
                "ALTER ROLE \"u\" RESET \"work_mem\"",
                "REVOKE \"g\" FROM \"u\" GRANTED BY \"admin x\""
            ]
        );
        assert!(p.steps.iter().all(|s| s.risk == Risk::Revoke));
    }

    #[test]
    fn passwords_are_redacted_and_compared_by_verifier() {
        let v = scram::build("pw", b"0123456789abcdef", 4096);
        let mut r = RoleSpec::new("u");
        r.password = Some(v.clone());
        let mut l = live();
        let p = plan(&desired(vec![r.clone()]), &l, &opts()).unwrap();
        assert!(p.steps[0].statement.contains(&v));
        assert!(p.steps[0].display.ends_with("PASSWORD '<redacted>'"));
        assert!(!p.steps[0].display.contains("SCRAM"));
        l.roles.insert(
            "u".into(),
            LiveRole {
                name: "u".into(),
                login: true,
                inherit: true,
                connlimit: -1,
                password: Some("md5e8a48653851e28c69d0506508fb27fc5".into()),
                ..Default::default()
            },
        );
        let p = plan(&desired(vec![r.clone()]), &l, &opts()).unwrap();
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].display, "ALTER ROLE \"u\" WITH PASSWORD '<redacted>'");
        assert!(
            p.notes
                .iter()
                .any(|n| n.field == "password" && n.have.as_deref() == Some("md5 verifier"))
        );
        l.roles.get_mut("u").unwrap().password = Some(v);
        assert!(
            plan(&desired(vec![r]), &l, &opts()).unwrap().steps.is_empty(),
            "same verifier: nothing to do"
        );
    }

    #[test]
    fn errors_name_the_object_and_stop_the_plan() {
        let mut a = RoleSpec::new("a");
        a.memberships.push(Membership {
            role: "ghost".into(),
            admin: false,
            inherit: None,
            set: None,
        });
        let e = plan(&desired(vec![a]), &live(), &opts()).unwrap_err().to_string();
        assert!(e.contains("unknown role \"ghost\""), "{e}");

        let mut a = RoleSpec::new("a");
        let mut bb = RoleSpec::new("b");
        a.memberships.push(Membership {
            role: "b".into(),
            admin: false,
            inherit: None,
            set: None,
        });
        bb.memberships.push(Membership {
            role: "a".into(),
            admin: false,
            inherit: None,
            set: None,
        });
        let e = plan(&desired(vec![a, bb]), &live(), &opts()).unwrap_err().to_string();
        assert!(e.contains("cycle") && e.contains("a → b → a"), "{e}");

        let e = plan(&desired(vec![RoleSpec::new(&"é".repeat(32))]), &live(), &opts())
            .unwrap_err()
            .to_string();
        assert!(e.contains("64 bytes"), "{e}");

        let mut a = RoleSpec::new("a");
        a.memberships.push(Membership {
            role: "pg_monitor".into(),
            admin: false,
            inherit: Some(false),
            set: None,
        });
        let e = plan(&desired(vec![a]), &live(), &opts()).unwrap_err().to_string();
        assert!(e.contains("need PostgreSQL 16"), "{e}");

        let mut drop_me = RoleSpec::new("dbuser_dba");
        drop_me.present = false;
        let e = plan(&desired(vec![drop_me]), &live(), &opts()).unwrap_err().to_string();
        assert!(e.contains("protected_roles"), "{e}");

        let d = Desired {
            roles: vec![RoleSpec::new("a")],
            default_privileges: vec![DefaultPrivilege {
                creator: "postgres".into(),
                database: None,
                schema: None,
                kind: ObjKind::Sequences,
                privileges: vec!["EXECUTE".into()],
                grantee: "a".into(),
                grant_option: false,
                existing: false,
            }],
            ..Default::default()
        };
        let e = plan(&d, &live(), &opts()).unwrap_err().to_string();
        assert!(e.contains("EXECUTE is not valid on sequences"), "{e}");
    }

    #[test]
    fn default_privileges_grant_missing_and_revoke_unmanaged() {
        let mut l = live();
        l.roles.insert(
            "ro".into(),
            LiveRole {
                name: "ro".into(),
                ..Default::default()
            },
        );
        l.roles.insert(
            "other".into(),
            LiveRole {
                name: "other".into(),
                ..Default::default()
            },
        );
        let db = &mut l.databases[0];
        let e = |g: &str, p: &str| DefaultAclEntry {
            creator: "postgres".into(),
            schema: None,
            kind: ObjKind::Tables,
            grantee: g.into(),
            privilege: p.into(),
            grant_option: false,
        };
        db.default_acl = vec![e("ro", "SELECT"), e("ro", "DELETE"), e("other", "INSERT")];
        let mut ro = RoleSpec::new("ro");
        ro.login = false;
        let d = Desired {
            roles: vec![ro],
            default_privileges: vec![DefaultPrivilege {
                creator: "postgres".into(),
                database: None,
                schema: None,
                kind: ObjKind::Tables,
                privileges: vec!["select".into(), "update".into()],
                grantee: "ro".into(),
                grant_option: false,
                existing: false,
            }],
            ..Default::default()
        };
        let p = plan(&d, &l, &opts()).unwrap();
        let s: Vec<_> = p
            .steps
            .iter()
            .filter(|s| s.phase == Phase::Database)
            .map(|s| s.statement.as_str())
            .collect();
        assert_eq!(
            s,
            vec![
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"postgres\" REVOKE DELETE ON TABLES FROM \"ro\"",
                "ALTER DEFAULT PRIVILEGES FOR ROLE \"postgres\" GRANT UPDATE ON TABLES TO \"ro\"",
            ],
            "the grant to the unmanaged role \"other\" is left alone"
        );
        assert!(
            p.steps
                .iter()
                .filter(|s| s.phase == Phase::Database)
                .all(|s| s.database.as_deref() == Some("postgres"))
        );
    }

    #[test]
    fn existing_objects_get_grants_per_schema_and_lose_undeclared_ones() {
        let mut l = live();
        l.roles.insert(
            "ro".into(),
            LiveRole {
                name: "ro".into(),
                ..Default::default()
            },
        );
        let db = &mut l.databases[0];
        db.schemas = vec!["app".into(), "public".into()];
        let t = |s: &str, k, n| ObjectTotal {
            schema: s.into(),
            kind: k,
            grantee: "ro".into(),
            total: n,
        };
        db.object_totals = vec![
            t("app", ObjKind::Tables, 3),
            t("public", ObjKind::Tables, 2),
            t("app", ObjKind::Schemas, 1),
            t("public", ObjKind::Schemas, 1),
        ];
        let f = |s: &str, k, p: &str, n| ExistingFact {
            schema: s.into(),
            kind: k,
            grantee: "ro".into(),
            privilege: p.into(),
            granted: n,
        };
        db.existing = vec![
            f("app", ObjKind::Tables, "SELECT", 3),
            f("public", ObjKind::Tables, "SELECT", 1),
            f("public", ObjKind::Tables, "DELETE", 2),
            f("app", ObjKind::Schemas, "USAGE", 1),
        ];
        let rule = |k, p: &str| DefaultPrivilege {
            creator: "postgres".into(),
            database: None,
            schema: None,
            kind: k,
            privileges: vec![p.into()],
            grantee: "ro".into(),
            grant_option: false,
            existing: true,
        };
        let d = Desired {
            roles: vec![],
            default_privileges: vec![rule(ObjKind::Tables, "SELECT"), rule(ObjKind::Schemas, "USAGE")],
            ..Default::default()
        };
        let p = plan(&d, &l, &opts()).unwrap();
        let s: Vec<_> = p
            .steps
            .iter()
            .filter(|s| !s.statement.starts_with("ALTER DEFAULT"))
            .map(|s| s.statement.as_str())
            .collect();
        assert_eq!(
            s,
            vec![
                "REVOKE DELETE ON ALL TABLES IN SCHEMA \"public\" FROM \"ro\"",
                "GRANT SELECT ON ALL TABLES IN SCHEMA \"public\" TO \"ro\"",
                "GRANT USAGE ON SCHEMA \"public\" TO \"ro\"",
            ]
        );
    }

    #[test]
    fn dropping_a_role_reassigns_in_each_database_then_drops() {
        let mut l = live();
        l.roles.insert(
            "old".into(),
            LiveRole {
                name: "old".into(),
                login: true,
                memberships: vec![LiveMembership {
                    role: "pg_monitor".into(),
                    grantor: "postgres".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        l.databases.push(LiveDatabase {
            name: "app".into(),
            dependents: [("old".to_string(), 3)].into(),
            ..Default::default()
        });
        let mut old = RoleSpec::new("old");
        old.present = false;
        let p = plan(&desired(vec![old]), &l, &opts()).unwrap();
        let s: Vec<_> = p
            .steps
            .iter()
            .map(|s| (s.database.clone().unwrap_or_default(), s.statement.clone()))
            .collect();
        let want: Vec<(String, String)> = vec![
            ("", "ALTER ROLE \"old\" NOLOGIN"),
            (
                "",
                "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = 'old'",
            ),
            ("", "REVOKE \"pg_monitor\" FROM \"old\""),
            ("postgres", "REASSIGN OWNED BY \"old\" TO \"postgres\""),
            ("postgres", "DROP OWNED BY \"old\""),
            ("app", "REASSIGN OWNED BY \"old\" TO \"postgres\""),
            ("app", "DROP OWNED BY \"old\""),
            ("", "DROP ROLE \"old\""),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(s, want);
        assert!(p.steps.iter().all(|s| s.risk == Risk::Drop));
        let mut ghost = RoleSpec::new("never_existed");
        ghost.present = false;
        assert!(plan(&desired(vec![ghost]), &live(), &opts()).unwrap().steps.is_empty());
    }

    #[test]
    fn hostile_names_stay_inside_their_quotes() {
        let name = "\"; DROP ROLE postgres; --";
        let p = plan(&desired(vec![RoleSpec::new(name)]), &live(), &opts()).unwrap();
        assert!(
            p.steps[0]
                .statement
                .starts_with("CREATE ROLE \"\"\"; DROP ROLE postgres; --\" WITH")
        );
    }

    #[test]
    fn the_hash_changes_with_the_catalog() {
        let d = desired(vec![RoleSpec::new("a")]);
        let l = live();
        let h1 = plan(&d, &l, &opts()).unwrap().hash(&l);
        let mut l2 = l.clone();
        l2.roles.get_mut("postgres").unwrap().connlimit = 3;
        let h2 = plan(&d, &l2, &opts()).unwrap().hash(&l2);
        assert_ne!(h1, h2);
        assert_eq!(h1, plan(&d, &l, &opts()).unwrap().hash(&l));
    }

    #[test]
    fn every_schema_and_kind_of_a_global_rule_is_covered() {
        let mut l = Live {
            server_version_num: 150000,
            bootstrap_superuser: "postgres".into(),
            current_user: "postgres".into(),
            current_database: "postgres".into(),
            ..Default::default()
        };
        for n in ["postgres", "ro"] {
            l.roles.insert(
                n.into(),
                LiveRole {
                    name: n.into(),
                    ..Default::default()
                },
            );
        }
        let t = |s: &str, k, n| ObjectTotal {
            schema: s.into(),
            kind: k,
            grantee: "ro".into(),
            total: n,
        };
        l.databases = vec![LiveDatabase {
            name: "b1".into(),
            pgops_version: Some("0.1.0".into()),
            schemas: vec!["public".into(), "s1".into()],
            object_totals: vec![
                t("s1", ObjKind::Tables, 2),
                t("s1", ObjKind::Schemas, 1),
                t("public", ObjKind::Schemas, 1),
            ],
            ..Default::default()
        }];
        let rule = |k, p: &str| DefaultPrivilege {
            creator: "postgres".into(),
            database: None,
            schema: None,
            kind: k,
            privileges: vec![p.into()],
            grantee: "ro".into(),
            grant_option: false,
            existing: true,
        };
        let d = Desired {
            default_privileges: vec![
                rule(ObjKind::Schemas, "USAGE"),
                rule(ObjKind::Tables, "SELECT"),
                rule(ObjKind::Sequences, "SELECT"),
            ],
            ..Default::default()
        };
        let p = plan(
            &d,
            &l,
            &Options {
                heir: "postgres".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let s: Vec<_> = p
            .steps
            .iter()
            .filter(|s| !s.statement.starts_with("ALTER DEFAULT"))
            .map(|s| s.statement.as_str())
            .collect();
        assert_eq!(
            s,
            vec![
                "GRANT USAGE ON SCHEMA \"public\" TO \"ro\"",
                "GRANT SELECT ON ALL TABLES IN SCHEMA \"s1\" TO \"ro\"",
                "GRANT USAGE ON SCHEMA \"s1\" TO \"ro\"",
            ]
        );
    }
}
