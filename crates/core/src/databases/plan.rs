//! Declared × live databases → ordered statements, each with where it runs, why, and its risk.
//! Pure: the caller reads the catalog (and, per database, its schemas and extensions).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::{ALWAYS_PROTECTED, DatabaseSpec, State, normalise_privileges};
use crate::bail_invalid;
use crate::error::Result;
use crate::sqltext::{ident, literal, role as role_sql};

/// One entry of a database's ACL (default ACL expanded): `PUBLIC` for the public pseudo-role.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Privilege {
    pub grantee: String,
    pub privilege: String,
    pub grantable: bool,
}

/// A database as the catalog shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveDatabase {
    pub name: String,
    pub owner: String,
    pub encoding: String,
    pub collate: String,
    pub ctype: String,
    pub tablespace: String,
    pub is_template: bool,
    pub allowconn: bool,
    pub connlimit: i32,
    pub comment: Option<String>,
    pub privileges: Vec<Privilege>,
    /// `ALTER DATABASE … SET` settings (for every role).
    pub settings: BTreeMap<String, String>,
    /// Read inside the database when it is declared present and accepts connections: schema →
    /// owner, extension → (schema, version). None: not read.
    pub schemas: Option<BTreeMap<String, String>>,
    pub extensions: Option<BTreeMap<String, (String, String)>>,
    /// Sessions connected now (not part of the plan hash: they come and go).
    #[serde(skip_serializing)]
    pub sessions: i64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Live {
    pub databases: BTreeMap<String, LiveDatabase>,
    pub roles: BTreeSet<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Databases never dropped or recreated besides postgres, template0 and template1.
    pub protected: Vec<String>,
    /// pgops.database and the database the plan is made in.
    pub config_database: String,
    pub current_database: String,
    /// Roles that keep CONNECT where `revokeconn` takes it from PUBLIC (Pigsty: the replication,
    /// monitor and admin users); those that do not exist are skipped.
    pub revokeconn_roles: Vec<String>,
    /// `server_version_num`.
    pub server_version: i32,
}

/// Where a statement runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "database")]
pub enum Place {
    /// CREATE / DROP DATABASE: at top level, outside a transaction block.
    TopLevel,
    /// ALTER / COMMENT / GRANT on the database: in a transaction, from any database.
    Cluster,
    /// Schemas, extensions, baseline: in a transaction in the database itself.
    Inside(String),
    /// Nothing runs: a difference pgops reports and leaves (a creation-only field).
    Note,
}

pub use crate::risk::Risk;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub field: String,
    pub want: Option<String>,
    pub have: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The declared database the statement is for.
    pub database: String,
    pub place: Place,
    pub statement: String,
    pub reason: String,
    pub risk: Risk,
    pub diffs: Vec<Diff>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    /// Identifies this plan and the catalog state it was made from.
    pub fn hash(&self, live: &Live) -> String {
        let mut h = Sha256::new();
        for s in &self.steps {
            h.update(s.database.as_bytes());
            h.update([0]);
            h.update(serde_json::to_vec(&s.place).unwrap_or_default());
            h.update(s.statement.as_bytes());
            h.update([0]);
        }
        h.update(serde_json::to_vec(live).unwrap_or_default());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn drops(&self) -> bool {
        self.steps.iter().any(|s| s.risk == Risk::Drop)
    }
}

fn diff(field: &str, want: impl Into<Option<String>>, have: impl Into<Option<String>>) -> Vec<Diff> {
    vec![Diff {
        field: field.into(),
        want: want.into(),
        have: have.into(),
    }]
}

/// A setting name for ALTER DATABASE SET: `work_mem`, or `plugin.setting` quoted part by part.
fn setting(name: &str) -> String {
    name.split('.').map(ident).collect::<Vec<_>>().join(".")
}

/// Settings whose value is a list (GUC_LIST_INPUT) and that a database may set: each element
/// is its own literal, as in `SET search_path TO 'app', 'public'`.
const LIST_SETTINGS: [&str; 5] = [
    "search_path",
    "temp_tablespaces",
    "local_preload_libraries",
    "session_preload_libraries",
    "datestyle",
];

fn setting_value(name: &str, value: &str) -> String {
    if LIST_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) {
        value.split(',').map(|v| literal(v.trim())).collect::<Vec<_>>().join(", ")
    } else {
        literal(value)
    }
}

/// Declared databases in an order that creates a template before the databases cloned from it
/// (otherwise definition order).
fn ordered(specs: &[DatabaseSpec]) -> Result<Vec<&DatabaseSpec>> {
    let mut out: Vec<&DatabaseSpec> = vec![];
    let mut left: Vec<&DatabaseSpec> = specs.iter().collect();
    while !left.is_empty() {
        let before = left.len();
        let mut i = 0;
        while i < left.len() {
            let s = left[i];
            let waits = s.template.as_deref().is_some_and(|t| {
                t != s.name && left.iter().any(|o| o.name == t && o.state != State::Absent)
            });
            if waits {
                i += 1;
            } else {
                out.push(left.remove(i));
            }
        }
        if left.len() == before {
            let names: Vec<&str> = left.iter().map(|s| s.name.as_str()).collect();
            bail_invalid!("databases {} are each other's templates: break the cycle", names.join(", "));
        }
    }
    Ok(out)
}

fn create_statement(s: &DatabaseSpec, opts: &Options) -> String {
    let mut sql = format!("CREATE DATABASE {}", ident(&s.name));
    if let Some(o) = &s.owner {
        sql += &format!(" OWNER {}", ident(o));
    }
    if let Some(t) = &s.template {
        sql += &format!(" TEMPLATE {}", ident(t));
    }
    if let Some(st) = &s.strategy
        && opts.server_version >= 150000
    {
        sql += &format!(" STRATEGY {}", literal(&st.to_ascii_uppercase()));
    }
    // LOCALE cannot be given with LC_COLLATE or LC_CTYPE before PostgreSQL 15: it fills the one
    // that is not given.
    let (collate, ctype) = match (&s.lc_collate, &s.lc_ctype) {
        (None, None) => (None, None),
        (c, t) => (c.as_ref().or(s.locale.as_ref()), t.as_ref().or(s.locale.as_ref())),
    };
    let locale = if collate.is_none() && ctype.is_none() { s.locale.as_ref() } else { None };
    let v15 = opts.server_version >= 150000;
    for (kw, v, ok) in [
        ("ENCODING", s.encoding.as_ref(), true),
        ("LOCALE", locale, true),
        ("LC_COLLATE", collate, true),
        ("LC_CTYPE", ctype, true),
        ("LOCALE_PROVIDER", s.locale_provider.as_ref(), v15),
        ("ICU_LOCALE", s.icu_locale.as_ref(), v15),
        ("ICU_RULES", s.icu_rules.as_ref(), opts.server_version >= 160000),
        ("BUILTIN_LOCALE", s.builtin_locale.as_ref(), opts.server_version >= 170000),
    ] {
        if let (Some(v), true) = (v, ok) {
            sql += &format!(" {kw} {}", literal(v));
        }
    }
    if let Some(t) = &s.tablespace {
        sql += &format!(" TABLESPACE {}", ident(t));
    }
    if let Some(a) = s.allowconn {
        sql += &format!(" ALLOW_CONNECTIONS {a}");
    }
    if let Some(c) = s.connlimit {
        sql += &format!(" CONNECTION LIMIT {c}");
    }
    if let Some(t) = s.is_template {
        sql += &format!(" IS_TEMPLATE {t}");
    }
    sql
}

/// The privileges the database should grant, per grantee (only grantees pgops manages).
fn wanted_privileges(s: &DatabaseSpec, owner: &str, live: &Live, opts: &Options) -> Result<BTreeMap<String, BTreeMap<String, bool>>> {
    let mut want: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    if s.revokeconn == Some(true) {
        want.entry(owner.to_string()).or_default().insert("CONNECT".into(), true);
        for r in &opts.revokeconn_roles {
            if live.roles.contains(r) && r != owner {
                want.entry(r.clone()).or_default().insert("CONNECT".into(), false);
            }
        }
    }
    for g in &s.grants {
        let privs = normalise_privileges(&g.privileges)?;
        let e = want.entry(g.grantee.clone()).or_default();
        for p in privs {
            e.insert(p, g.grant_option);
        }
    }
    Ok(want)
}

/// Statements that make the database's settings, comment, owner, limits and privileges what is
/// declared; `live` is None for a database about to be created (its defaults are known).
fn converge_database(s: &DatabaseSpec, live_db: Option<&LiveDatabase>, live: &Live, opts: &Options, out: &mut Vec<Step>) -> Result<()> {
    let name = &s.name;
    let q = ident(name);
    let step = |statement: String, reason: String, risk: Risk, diffs: Vec<Diff>| Step {
        database: name.clone(),
        place: Place::Cluster,
        statement,
        reason,
        risk,
        diffs,
    };
    let owner = s
        .owner
        .clone()
        .or_else(|| live_db.map(|d| d.owner.clone()))
        .unwrap_or_else(|| "postgres".into());
    if let Some(d) = live_db {
        if let Some(o) = &s.owner
            && *o != d.owner
        {
            out.push(step(
                format!("ALTER DATABASE {q} OWNER TO {}", ident(o)),
                format!("owner is {}, declared {o}", d.owner),
                Risk::Safe,
                diff("owner", o.clone(), d.owner.clone()),
            ));
        }
        if let Some(c) = s.connlimit
            && c != d.connlimit
        {
            out.push(step(
                format!("ALTER DATABASE {q} WITH CONNECTION LIMIT {c}"),
                format!("connection limit is {}, declared {c}", d.connlimit),
                Risk::Safe,
                diff("connlimit", c.to_string(), d.connlimit.to_string()),
            ));
        }
        if let Some(a) = s.allowconn
            && a != d.allowconn
        {
            out.push(step(
                format!("ALTER DATABASE {q} WITH ALLOW_CONNECTIONS {a}"),
                format!("allowconn is {}, declared {a}", d.allowconn),
                if a { Risk::Safe } else { Risk::Revoke },
                diff("allowconn", a.to_string(), d.allowconn.to_string()),
            ));
        }
        if let Some(t) = s.is_template
            && t != d.is_template
        {
            out.push(step(
                format!("ALTER DATABASE {q} WITH IS_TEMPLATE {t}"),
                format!("is_template is {}, declared {t}", d.is_template),
                Risk::Safe,
                diff("is_template", t.to_string(), d.is_template.to_string()),
            ));
        }
    }
    if let Some(c) = &s.comment {
        let have = live_db.and_then(|d| d.comment.clone());
        let want = (!c.is_empty()).then(|| c.clone());
        if have != want {
            out.push(step(
                format!(
                    "COMMENT ON DATABASE {q} IS {}",
                    want.as_deref().map_or("NULL".into(), literal)
                ),
                "comment differs".into(),
                Risk::Safe,
                diff("comment", want, have),
            ));
        }
    }
    for (k, v) in &s.parameters {
        // PostgreSQL stores a setting under its own spelling (timezone as TimeZone).
        let have = live_db.and_then(|d| {
            d.settings
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        });
        if v.eq_ignore_ascii_case("DEFAULT") {
            if have.is_some() {
                out.push(step(
                    format!("ALTER DATABASE {q} RESET {}", setting(k)),
                    format!("{k} is set, declared DEFAULT"),
                    Risk::Safe,
                    diff(&format!("parameters.{k}"), None, have),
                ));
            }
        } else if have.as_deref() != Some(v.as_str()) {
            out.push(step(
                format!("ALTER DATABASE {q} SET {} TO {}", setting(k), setting_value(k, v)),
                match &have {
                    Some(h) => format!("{k} is {h}, declared {v}"),
                    None => format!("{k} is not set, declared {v}"),
                },
                Risk::Safe,
                diff(&format!("parameters.{k}"), v.clone(), have),
            ));
        }
    }
    // Privileges. A database created now has the default ACL: PUBLIC may connect and create
    // temporary tables, the owner holds everything.
    let have: Vec<Privilege> = match live_db {
        Some(d) => d.privileges.clone(),
        None => ["CONNECT", "TEMPORARY"]
            .iter()
            .map(|p| Privilege {
                grantee: "PUBLIC".into(),
                privilege: p.to_string(),
                grantable: false,
            })
            .chain(["CONNECT", "CREATE", "TEMPORARY"].iter().map(|p| Privilege {
                grantee: owner.clone(),
                privilege: p.to_string(),
                grantable: true,
            }))
            .collect(),
    };
    let public_connect = have.iter().any(|p| p.grantee == "PUBLIC" && p.privilege == "CONNECT");
    match s.revokeconn {
        Some(true) if public_connect => out.push(step(
            format!("REVOKE CONNECT ON DATABASE {q} FROM PUBLIC"),
            "revokeconn: only the owner and the listed roles may connect".into(),
            Risk::Revoke,
            diff("revokeconn", "PUBLIC without CONNECT".to_string(), "PUBLIC has CONNECT".to_string()),
        )),
        Some(false) if !public_connect => out.push(step(
            format!("GRANT CONNECT ON DATABASE {q} TO PUBLIC"),
            "revokeconn is false: every role may connect again".into(),
            Risk::Safe,
            diff("revokeconn", "PUBLIC has CONNECT".to_string(), "PUBLIC without CONNECT".to_string()),
        )),
        _ => {}
    }
    let want = wanted_privileges(s, &owner, live, opts)?;
    for (grantee, privs) in &want {
        if grantee != "PUBLIC" && !live.roles.contains(grantee) {
            out.push(Step {
                database: name.clone(),
                place: Place::Note,
                statement: format!("-- role {} does not exist: declare it in pgops.role and apply roles first", ident(grantee)),
                reason: format!("grantee {grantee} does not exist"),
                risk: Risk::Note,
                diffs: diff(&format!("grants.{grantee}"), "exists".to_string(), None),
            });
            continue;
        }
        let held: BTreeMap<&str, bool> = have
            .iter()
            .filter(|p| &p.grantee == grantee)
            .map(|p| (p.privilege.as_str(), p.grantable))
            .collect();
        let declared_by_grants = s.grants.iter().any(|g| &g.grantee == grantee);
        for (p, &grantable) in privs {
            match held.get(p.as_str()) {
                // The owner holds its privileges with the grant option implicitly.
                Some(_) if grantee == &owner => {}
                Some(&g) if g == grantable || (g && !declared_by_grants) => {}
                Some(true) => out.push(step(
                    format!("REVOKE GRANT OPTION FOR {p} ON DATABASE {q} FROM {}", role_sql(grantee)),
                    format!("{grantee} may grant {p} on, declared without grant option"),
                    Risk::Revoke,
                    diff(&format!("grants.{grantee}.{p}"), "without grant option".to_string(), "with grant option".to_string()),
                )),
                _ => out.push(step(
                    format!(
                        "GRANT {p} ON DATABASE {q} TO {}{}",
                        role_sql(grantee),
                        if grantable { " WITH GRANT OPTION" } else { "" }
                    ),
                    format!("{grantee} lacks {p}{}", if grantable { " with grant option" } else { "" }),
                    Risk::Safe,
                    diff(&format!("grants.{grantee}.{p}"), "granted".to_string(), held.get(p.as_str()).map(|_| "without grant option".to_string())),
                )),
            }
        }
        // Grantees declared in `grants` hold exactly what is declared.
        if declared_by_grants {
            for (p, _) in held.iter().filter(|(p, _)| !privs.contains_key(**p)) {
                out.push(step(
                    format!("REVOKE {p} ON DATABASE {q} FROM {}", role_sql(grantee)),
                    format!("{grantee} holds {p}, not declared"),
                    Risk::Revoke,
                    diff(&format!("grants.{grantee}.{p}"), None, "granted".to_string()),
                ));
            }
        }
    }
    Ok(())
}

/// Schemas and extensions inside the database, and the baseline right after creation.
fn converge_inside(s: &DatabaseSpec, live_db: Option<&LiveDatabase>, created: bool, out: &mut Vec<Step>) {
    let name = &s.name;
    let inside = |statement: String, reason: String, risk: Risk, diffs: Vec<Diff>| Step {
        database: name.clone(),
        place: Place::Inside(name.clone()),
        statement,
        reason,
        risk,
        diffs,
    };
    let reachable = s.allowconn.unwrap_or_else(|| live_db.is_none_or(|d| d.allowconn));
    let wants_inside = !s.schemas.is_empty() || !s.extensions.is_empty() || (created && s.baseline.is_some());
    if wants_inside && !reachable {
        out.push(Step {
            database: name.clone(),
            place: Place::Note,
            statement: "-- allowconn is false: schemas, extensions and baseline cannot be applied".into(),
            reason: "the database does not accept connections".into(),
            risk: Risk::Note,
            diffs: diff("allowconn", "connections for schemas/extensions".to_string(), "false".to_string()),
        });
        return;
    }
    let (schemas, extensions) = match (created, live_db) {
        // Not read (the caller may not start workers, or the database could not be read): no
        // guess about what is inside.
        (false, Some(d)) if d.schemas.is_none() || d.extensions.is_none() => return,
        (false, Some(d)) => (d.schemas.clone().unwrap_or_default(), d.extensions.clone().unwrap_or_default()),
        _ => (BTreeMap::new(), BTreeMap::new()),
    };
    for sc in &s.schemas {
        let q = ident(&sc.name);
        match (sc.present, schemas.get(&sc.name)) {
            (true, None) => out.push(inside(
                format!(
                    "CREATE SCHEMA IF NOT EXISTS {q}{}",
                    sc.owner.as_deref().map_or(String::new(), |o| format!(" AUTHORIZATION {}", ident(o)))
                ),
                format!("schema {} is missing", sc.name),
                Risk::Safe,
                diff(&format!("schemas.{}", sc.name), "present".to_string(), None),
            )),
            (true, Some(owner)) => {
                if let Some(o) = &sc.owner
                    && o != owner
                {
                    out.push(inside(
                        format!("ALTER SCHEMA {q} OWNER TO {}", ident(o)),
                        format!("schema {} is owned by {owner}, declared {o}", sc.name),
                        Risk::Safe,
                        diff(&format!("schemas.{}.owner", sc.name), o.clone(), owner.clone()),
                    ));
                }
            }
            (false, Some(_)) => out.push(inside(
                format!("DROP SCHEMA IF EXISTS {q} CASCADE"),
                format!("schema {} is declared absent", sc.name),
                Risk::Drop,
                diff(&format!("schemas.{}", sc.name), "absent".to_string(), "present".to_string()),
            )),
            (false, None) => {}
        }
    }
    for x in &s.extensions {
        let q = ident(&x.name);
        match (x.present, extensions.get(&x.name)) {
            (true, None) => out.push(inside(
                format!(
                    "CREATE EXTENSION IF NOT EXISTS {q}{}{} CASCADE",
                    x.schema.as_deref().map_or(String::new(), |s| format!(" SCHEMA {}", ident(s))),
                    x.version.as_deref().map_or(String::new(), |v| format!(" VERSION {}", literal(v)))
                ),
                format!("extension {} is missing", x.name),
                Risk::Safe,
                diff(&format!("extensions.{}", x.name), "present".to_string(), None),
            )),
            (true, Some((schema, version))) => {
                if let Some(v) = &x.version
                    && v != version
                {
                    out.push(inside(
                        format!("ALTER EXTENSION {q} UPDATE TO {}", literal(v)),
                        format!("extension {} is at {version}, declared {v}", x.name),
                        Risk::Safe,
                        diff(&format!("extensions.{}.version", x.name), v.clone(), version.clone()),
                    ));
                }
                if let Some(sc) = &x.schema
                    && sc != schema
                {
                    out.push(inside(
                        format!("ALTER EXTENSION {q} SET SCHEMA {}", ident(sc)),
                        format!("extension {} is in schema {schema}, declared {sc}", x.name),
                        Risk::Safe,
                        diff(&format!("extensions.{}.schema", x.name), sc.clone(), schema.clone()),
                    ));
                }
            }
            (false, Some(_)) => out.push(inside(
                format!("DROP EXTENSION IF EXISTS {q} CASCADE"),
                format!("extension {} is declared absent", x.name),
                Risk::Drop,
                diff(&format!("extensions.{}", x.name), "absent".to_string(), "present".to_string()),
            )),
            (false, None) => {}
        }
    }
    if created && let Some(b) = &s.baseline {
        out.push(inside(
            b.clone(),
            "baseline: runs once, right after the database is created".into(),
            Risk::Safe,
            vec![],
        ));
    }
}

/// Creation-only fields that differ from the live database: reported, never ignored.
fn creation_only(s: &DatabaseSpec, d: &LiveDatabase, out: &mut Vec<Step>) {
    let norm = |x: &str| x.to_ascii_lowercase().replace(['-', '_'], "");
    let checks: Vec<(&str, Option<&String>, &String)> = vec![
        ("encoding", s.encoding.as_ref(), &d.encoding),
        ("lc_collate", s.lc_collate.as_ref().or(s.locale.as_ref()), &d.collate),
        ("lc_ctype", s.lc_ctype.as_ref().or(s.locale.as_ref()), &d.ctype),
    ];
    for (field, want, have) in checks {
        if let Some(w) = want
            && norm(w) != norm(have)
        {
            out.push(Step {
                database: s.name.clone(),
                place: Place::Note,
                statement: format!(
                    "-- {field} is {have}, declared {w}: set state = 'recreate' to rebuild the database with it"
                ),
                reason: format!("{field} is fixed at creation"),
                risk: Risk::Note,
                diffs: diff(field, w.clone(), have.clone()),
            });
        }
    }
}

fn drop_steps(s: &DatabaseSpec, d: &LiveDatabase, why: &str, out: &mut Vec<Step>) {
    let q = ident(&s.name);
    if d.is_template {
        out.push(Step {
            database: s.name.clone(),
            place: Place::Cluster,
            statement: format!("ALTER DATABASE {q} WITH IS_TEMPLATE false"),
            reason: "a template database cannot be dropped: cleared first".into(),
            risk: Risk::Drop,
            diffs: vec![],
        });
    }
    let sessions = if d.sessions > 0 {
        if s.force {
            format!("; its {} session(s) are terminated (force)", d.sessions)
        } else {
            format!(
                "; it has {} session(s) and force is false: the DROP fails while they are connected",
                d.sessions
            )
        }
    } else {
        String::new()
    };
    out.push(Step {
        database: s.name.clone(),
        place: Place::TopLevel,
        statement: format!("DROP DATABASE {q}{}", if s.force { " WITH (FORCE)" } else { "" }),
        reason: format!("{why}{sessions}"),
        risk: Risk::Drop,
        diffs: diff("state", why.to_string(), "present".to_string()),
    });
}

pub fn plan(specs: &[DatabaseSpec], live: &Live, opts: &Options) -> Result<Plan> {
    let mut names = BTreeSet::new();
    for s in specs {
        if !names.insert(&s.name) {
            bail_invalid!("database \"{}\" is declared twice", s.name);
        }
        if s.state != State::Present {
            let protected = ALWAYS_PROTECTED.contains(&s.name.as_str())
                || opts.protected.contains(&s.name)
                || s.name == opts.config_database
                || s.name == opts.current_database;
            if protected {
                bail_invalid!(
                    "database \"{}\" is declared {}, but it is protected (postgres, template0, template1, pgops.database, \
                     the database this runs in, or pgops.protected_databases): nothing was planned",
                    s.name,
                    if s.state == State::Absent { "absent" } else { "recreate" }
                );
            }
        }
        if let Some(t) = &s.template
            && s.state != State::Absent
            && !live.databases.contains_key(t)
            && !specs.iter().any(|o| &o.name == t && o.state != State::Absent)
        {
            bail_invalid!("database \"{}\": template \"{t}\" does not exist and is not declared", s.name);
        }
    }
    let mut steps = vec![];
    for s in ordered(specs)? {
        let d = live.databases.get(&s.name);
        match (s.state, d) {
            (State::Absent, None) => {}
            (State::Absent, Some(d)) => drop_steps(s, d, "declared absent", &mut steps),
            (State::Present, Some(d)) => {
                creation_only(s, d, &mut steps);
                if let Some(t) = &s.tablespace
                    && *t != d.tablespace
                {
                    steps.push(Step {
                        database: s.name.clone(),
                        place: Place::TopLevel,
                        statement: format!("ALTER DATABASE {} SET TABLESPACE {}", ident(&s.name), ident(t)),
                        reason: format!(
                            "tablespace is {}, declared {t}: the files move (no other session may be connected)",
                            d.tablespace
                        ),
                        risk: Risk::Safe,
                        diffs: diff("tablespace", t.clone(), d.tablespace.clone()),
                    });
                }
                converge_database(s, Some(d), live, opts, &mut steps)?;
                converge_inside(s, Some(d), false, &mut steps);
            }
            (State::Recreate, Some(d)) => {
                drop_steps(s, d, "declared recreate", &mut steps);
                create(s, live, opts, &mut steps)?;
            }
            (_, None) => create(s, live, opts, &mut steps)?,
        }
    }
    Ok(Plan { steps })
}

fn create(s: &DatabaseSpec, live: &Live, opts: &Options, out: &mut Vec<Step>) -> Result<()> {
    for (field, given, needs) in [
        ("locale_provider", s.locale_provider.is_some(), 150000),
        ("icu_locale", s.icu_locale.is_some(), 150000),
        ("icu_rules", s.icu_rules.is_some(), 160000),
        ("builtin_locale", s.builtin_locale.is_some(), 170000),
    ] {
        if given && opts.server_version < needs {
            out.push(Step {
                database: s.name.clone(),
                place: Place::Note,
                statement: format!("-- {field} needs PostgreSQL {}: created without it", needs / 10000),
                reason: format!("CREATE DATABASE … {} exists from PostgreSQL {}", field.to_ascii_uppercase(), needs / 10000),
                risk: Risk::Note,
                diffs: vec![],
            });
        }
    }
    if s.strategy.is_some() && opts.server_version < 150000 {
        out.push(Step {
            database: s.name.clone(),
            place: Place::Note,
            statement: "-- strategy needs PostgreSQL 15: created without it".into(),
            reason: "CREATE DATABASE … STRATEGY exists from PostgreSQL 15".into(),
            risk: Risk::Note,
            diffs: vec![],
        });
    }
    out.push(Step {
        database: s.name.clone(),
        place: Place::TopLevel,
        statement: create_statement(s, opts),
        reason: if s.state == State::Recreate {
            "declared recreate: created again".into()
        } else {
            "declared, does not exist".into()
        },
        risk: Risk::Safe,
        diffs: diff("state", "present".to_string(), None),
    });
    converge_database(s, None, live, opts, out)?;
    converge_inside(s, None, true, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> DatabaseSpec {
        DatabaseSpec::parse(&v).unwrap()
    }
    fn opts() -> Options {
        Options {
            protected: vec!["keep".into()],
            config_database: "postgres".into(),
            current_database: "postgres".into(),
            revokeconn_roles: vec!["replicator".into(), "dbuser_monitor".into(), "dbuser_dba".into()],
            server_version: 180000,
        }
    }
    fn live_db(name: &str, owner: &str) -> LiveDatabase {
        LiveDatabase {
            name: name.into(),
            owner: owner.into(),
            encoding: "UTF8".into(),
            collate: "C".into(),
            ctype: "C".into(),
            tablespace: "pg_default".into(),
            allowconn: true,
            connlimit: -1,
            privileges: vec![
                Privilege { grantee: "PUBLIC".into(), privilege: "CONNECT".into(), grantable: false },
                Privilege { grantee: "PUBLIC".into(), privilege: "TEMPORARY".into(), grantable: false },
            ],
            schemas: Some(BTreeMap::new()),
            extensions: Some(BTreeMap::new()),
            ..Default::default()
        }
    }
    fn live(dbs: Vec<LiveDatabase>) -> Live {
        Live {
            databases: dbs.into_iter().map(|d| (d.name.clone(), d)).collect(),
            roles: ["postgres", "dbuser_meta", "replicator", "dbuser_monitor", "app"].iter().map(|s| s.to_string()).collect(),
        }
    }
    fn statements(p: &Plan) -> Vec<String> {
        p.steps.iter().map(|s| s.statement.clone()).collect()
    }

    #[test]
    fn a_new_database_with_every_field() {
        let s = spec(json!({"name": "meta", "owner": "dbuser_meta", "template": "template0", "strategy": "file_copy",
            "encoding": "UTF8", "locale": "C", "tablespace": "pg_default", "allowconn": true, "connlimit": 50,
            "is_template": false, "revokeconn": true, "comment": "it's meta", "schemas": ["pigsty"],
            "extensions": [{"name": "pg_trgm", "schema": "public", "version": "1.6"}],
            "parameters": {"work_mem": "64MB", "auto_explain.log_min_duration": "1s"}, "baseline": "CREATE TABLE pigsty.t (id int)"}));
        let p = plan(&[s], &live(vec![live_db("template0", "postgres")]), &opts()).unwrap();
        assert_eq!(
            statements(&p),
            vec![
                "CREATE DATABASE \"meta\" OWNER \"dbuser_meta\" TEMPLATE \"template0\" STRATEGY 'FILE_COPY' ENCODING 'UTF8' LOCALE 'C' TABLESPACE \"pg_default\" ALLOW_CONNECTIONS true CONNECTION LIMIT 50 IS_TEMPLATE false",
                "COMMENT ON DATABASE \"meta\" IS 'it''s meta'",
                "ALTER DATABASE \"meta\" SET \"auto_explain\".\"log_min_duration\" TO '1s'",
                "ALTER DATABASE \"meta\" SET \"work_mem\" TO '64MB'",
                "REVOKE CONNECT ON DATABASE \"meta\" FROM PUBLIC",
                "GRANT CONNECT ON DATABASE \"meta\" TO \"dbuser_monitor\"",
                "GRANT CONNECT ON DATABASE \"meta\" TO \"replicator\"",
                "CREATE SCHEMA IF NOT EXISTS \"pigsty\"",
                "CREATE EXTENSION IF NOT EXISTS \"pg_trgm\" SCHEMA \"public\" VERSION '1.6' CASCADE",
                "CREATE TABLE pigsty.t (id int)",
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
        );
        assert_eq!(p.steps[0].place, Place::TopLevel);
        assert_eq!(p.steps[7].place, Place::Inside("meta".into()));
        // The owner already holds CONNECT with grant option on a new database: no statement.
        assert!(!p.drops());
    }

    #[test]
    fn a_converged_database_plans_nothing_and_changes_converge() {
        let s = spec(json!({"name": "app", "owner": "app", "connlimit": 10, "comment": "c", "parameters": {"work_mem": "8MB"},
                             "schemas": [{"name": "s", "owner": "app"}], "revokeconn": false}));
        let mut d = live_db("app", "app");
        d.connlimit = 10;
        d.comment = Some("c".into());
        d.settings.insert("work_mem".into(), "8MB".into());
        d.schemas = Some(BTreeMap::from([("s".to_string(), "app".to_string())]));
        assert!(plan(&[s.clone()], &live(vec![d.clone()]), &opts()).unwrap().steps.is_empty());
        // Someone changed everything by hand.
        d.owner = "postgres".into();
        d.connlimit = 3;
        d.settings.insert("work_mem".into(), "1MB".into());
        d.privileges.retain(|p| p.privilege != "CONNECT");
        d.schemas = Some(BTreeMap::new());
        let p = plan(&[s], &live(vec![d]), &opts()).unwrap();
        assert_eq!(
            statements(&p),
            vec![
                "ALTER DATABASE \"app\" OWNER TO \"app\"",
                "ALTER DATABASE \"app\" WITH CONNECTION LIMIT 10",
                "ALTER DATABASE \"app\" SET \"work_mem\" TO '8MB'",
                "GRANT CONNECT ON DATABASE \"app\" TO PUBLIC",
                "CREATE SCHEMA IF NOT EXISTS \"s\" AUTHORIZATION \"app\"",
            ]
        );
    }

    #[test]
    fn revokeconn_drift_when_public_gets_connect_back() {
        let s = spec(json!({"name": "app", "owner": "app", "revokeconn": true}));
        let mut d = live_db("app", "app");
        d.privileges = vec![
            Privilege { grantee: "app".into(), privilege: "CONNECT".into(), grantable: true },
            Privilege { grantee: "replicator".into(), privilege: "CONNECT".into(), grantable: false },
            Privilege { grantee: "dbuser_monitor".into(), privilege: "CONNECT".into(), grantable: false },
        ];
        assert!(plan(&[s.clone()], &live(vec![d.clone()]), &opts()).unwrap().steps.is_empty());
        d.privileges.push(Privilege { grantee: "PUBLIC".into(), privilege: "CONNECT".into(), grantable: false });
        let p = plan(&[s], &live(vec![d]), &opts()).unwrap();
        assert_eq!(statements(&p), vec!["REVOKE CONNECT ON DATABASE \"app\" FROM PUBLIC"]);
        assert_eq!(p.steps[0].risk, Risk::Revoke);
    }

    #[test]
    fn grants_converge_both_ways() {
        let s = spec(json!({"name": "app", "grants": [{"grantee": "app", "privileges": ["connect", "temp"]}]}));
        let mut d = live_db("app", "postgres");
        d.privileges.push(Privilege { grantee: "app".into(), privilege: "CREATE".into(), grantable: false });
        let p = plan(&[s], &live(vec![d]), &opts()).unwrap();
        assert_eq!(
            statements(&p),
            vec![
                "GRANT CONNECT ON DATABASE \"app\" TO \"app\"",
                "GRANT TEMPORARY ON DATABASE \"app\" TO \"app\"",
                "REVOKE CREATE ON DATABASE \"app\" FROM \"app\"",
            ]
        );
    }

    #[test]
    fn creation_only_fields_are_reported_not_ignored() {
        let s = spec(json!({"name": "app", "encoding": "SQL_ASCII", "locale": "C"}));
        let p = plan(&[s], &live(vec![live_db("app", "postgres")]), &opts()).unwrap();
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].place, Place::Note);
        assert!(p.steps[0].statement.contains("encoding is UTF8, declared SQL_ASCII: set state = 'recreate'"));
    }

    #[test]
    fn retiring_is_guarded_and_ordered() {
        let mut d = live_db("old", "postgres");
        d.is_template = true;
        d.sessions = 2;
        let p = plan(&[spec(json!({"name": "old", "state": "absent"}))], &live(vec![d.clone()]), &opts()).unwrap();
        assert_eq!(statements(&p), vec!["ALTER DATABASE \"old\" WITH IS_TEMPLATE false", "DROP DATABASE \"old\""]);
        assert!(p.steps[1].reason.contains("2 session(s) and force is false"));
        assert!(p.drops());
        let p = plan(&[spec(json!({"name": "old", "state": "absent", "force": true}))], &live(vec![d.clone()]), &opts()).unwrap();
        assert_eq!(p.steps[1].statement, "DROP DATABASE \"old\" WITH (FORCE)");
        // Recreate: dropped, created, baseline again.
        let p = plan(
            &[spec(json!({"name": "old", "state": "recreate", "baseline": "SELECT 1", "force": true}))],
            &live(vec![d]),
            &opts(),
        )
        .unwrap();
        assert_eq!(
            statements(&p),
            vec![
                "ALTER DATABASE \"old\" WITH IS_TEMPLATE false",
                "DROP DATABASE \"old\" WITH (FORCE)",
                "CREATE DATABASE \"old\"",
                "SELECT 1"
            ]
        );
        // Protected names are refused outright.
        for name in ["keep", "postgres"] {
            let mut s = spec(json!({"name": "x", "state": "absent"}));
            s.name = name.into();
            let e = plan(&[s], &live(vec![live_db(name, "postgres")]), &opts()).unwrap_err();
            assert!(e.message.contains("protected"), "{}", e.message);
        }
    }

    #[test]
    fn templates_come_first_and_hostile_names_are_quoted() {
        let specs = vec![
            spec(json!({"name": "clone\"; DROP DATABASE x; --", "template": "tpl"})),
            spec(json!({"name": "tpl", "is_template": true})),
        ];
        let p = plan(&specs, &live(vec![]), &opts()).unwrap();
        assert_eq!(p.steps[0].statement, "CREATE DATABASE \"tpl\" IS_TEMPLATE true");
        assert_eq!(
            p.steps[1].statement,
            "CREATE DATABASE \"clone\"\"; DROP DATABASE x; --\" TEMPLATE \"tpl\""
        );
        let e = plan(&[spec(json!({"name": "a", "template": "nope"}))], &live(vec![]), &opts()).unwrap_err();
        assert!(e.message.contains("template \"nope\" does not exist"));
        let cycle = vec![spec(json!({"name": "a", "template": "b"})), spec(json!({"name": "b", "template": "a"}))];
        assert!(plan(&cycle, &live(vec![]), &opts()).unwrap_err().message.contains("cycle"));
    }

    #[test]
    fn list_settings_locales_and_moves() {
        let s = spec(json!({"name": "app", "parameters": {"search_path": "app, public", "timezone": "UTC"}, "tablespace": "fast"}));
        let mut d = live_db("app", "postgres");
        d.settings.insert("TimeZone".into(), "UTC".into());
        let p = plan(&[s], &live(vec![d]), &opts()).unwrap();
        assert_eq!(
            statements(&p),
            vec![
                "ALTER DATABASE \"app\" SET TABLESPACE \"fast\"",
                "ALTER DATABASE \"app\" SET \"search_path\" TO 'app', 'public'",
            ]
        );
        assert_eq!(p.steps[0].place, Place::TopLevel);
        // LOCALE fills in what LC_COLLATE / LC_CTYPE leave out (they cannot be combined on PG 13/14).
        let s = spec(json!({"name": "n", "locale": "C", "lc_ctype": "en_US.UTF-8", "locale_provider": "icu", "icu_locale": "en-US"}));
        let mut o = opts();
        o.server_version = 140000;
        let p = plan(&[s.clone()], &live(vec![]), &o).unwrap();
        assert_eq!(p.steps[0].statement, "-- locale_provider needs PostgreSQL 15: created without it");
        assert_eq!(p.steps[2].statement, "CREATE DATABASE \"n\" LC_COLLATE 'C' LC_CTYPE 'en_US.UTF-8'");
        let p = plan(&[s], &live(vec![]), &opts()).unwrap();
        assert_eq!(
            p.steps[0].statement,
            "CREATE DATABASE \"n\" LC_COLLATE 'C' LC_CTYPE 'en_US.UTF-8' LOCALE_PROVIDER 'icu' ICU_LOCALE 'en-US'"
        );
        // Schemas not read (a pg_monitor caller starts no workers): nothing guessed.
        let s = spec(json!({"name": "app", "schemas": ["s"]}));
        let mut d = live_db("app", "postgres");
        d.schemas = None;
        assert!(plan(&[s], &live(vec![d]), &opts()).unwrap().steps.is_empty());
    }

    #[test]
    fn sessions_do_not_change_the_hash() {
        let s = vec![spec(json!({"name": "app", "state": "absent"}))];
        let l1 = live(vec![live_db("app", "postgres")]);
        let mut l2 = l1.clone();
        l2.databases.get_mut("app").unwrap().sessions = 7;
        assert_eq!(plan(&s, &l1, &opts()).unwrap().hash(&l1), plan(&s, &l2, &opts()).unwrap().hash(&l2));
    }

    #[test]
    fn the_hash_changes_with_the_catalog() {
        let s = vec![spec(json!({"name": "app"}))];
        let l1 = live(vec![live_db("app", "postgres")]);
        let mut l2 = l1.clone();
        l2.databases.get_mut("app").unwrap().connlimit = 5;
        let (p1, p2) = (plan(&s, &l1, &opts()).unwrap(), plan(&s, &l2, &opts()).unwrap());
        assert_ne!(p1.hash(&l1), p2.hash(&l2));
        assert_eq!(p1.hash(&l1), plan(&s, &l1, &opts()).unwrap().hash(&l1));
    }
}
