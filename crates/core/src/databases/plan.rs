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
    /// The full read inside (not the light one, which a converged database gets): schemas a
    /// non-superuser could have put objects in (it owns the schema, may CREATE in it, or owns an
    /// object in it) → why. None: not read (nothing there then runs as a superuser).
    pub unsafe_schemas: Option<BTreeMap<String, String>>,
    /// The full read inside: objects in the database that non-superusers own (how many, and the
    /// first few by name). A template with any is not cloned under a superuser's hand. None: not read.
    pub foreign_objects: Option<Foreign>,
    /// Read inside with the schemas: schema → the roles besides its owner that hold CREATE on it
    /// (`PUBLIC` for everyone).
    pub schema_create: Option<BTreeMap<String, Vec<String>>>,
    /// Digests of the baselines pgops ran in it (`pgops.baseline_run`).
    pub baselines: Vec<String>,
    /// Sessions connected now (not part of the plan hash: they come and go).
    #[serde(skip_serializing)]
    pub sessions: i64,
}

/// Objects a database holds that non-superusers own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Foreign {
    pub count: i64,
    /// The first few, as `function public.f(integer) owned by tenant`.
    pub examples: Vec<String>,
}

impl Foreign {
    /// The first three by name, and how many more.
    fn describe(&self) -> String {
        let shown = &self.examples[..self.examples.len().min(3)];
        let more = self.count - shown.len() as i64;
        let mut s = shown.join(", ");
        if more > 0 {
            s += &format!(" and {more} more");
        }
        s
    }
}

/// An extension this server can install (`pg_available_extension_versions`, default version).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Available {
    /// A trusted extension: a database owner may create it; its script still runs as the bootstrap
    /// superuser.
    pub trusted: bool,
    /// The schema its control file fixes (`schema = …`), if any.
    pub schema: Option<String>,
    /// The extensions it requires (`requires = …`): CASCADE creates the missing ones, and its
    /// script sees the schemas of all of them.
    pub requires: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Live {
    pub databases: BTreeMap<String, LiveDatabase>,
    pub roles: BTreeSet<String>,
    /// Roles with rolsuper.
    pub superusers: BTreeSet<String>,
    /// Extensions this server can install; empty: not read (no availability notes then).
    pub available: BTreeMap<String, Available>,
}

impl Live {
    fn is_superuser(&self, role: &str) -> bool {
        self.superusers.contains(role)
    }
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
    /// The bootstrap superuser: pgops' workers run as it, so a database pgops creates belongs to
    /// it until the inside work is done and it is handed to its declared owner.
    pub bootstrap: String,
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

/// Who runs a statement inside a database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "as", content = "role")]
pub enum RunAs {
    /// The worker's own role, the bootstrap superuser: statements that execute nothing a
    /// non-superuser made (CREATE SCHEMA, ALTER … OWNER, DROP), and those that do only where
    /// nothing but superusers could have put objects (`Guard` says what the worker re-checks).
    Superuser,
    /// The database owner (never a superuser), in a security-restricted context: what it runs,
    /// and any of its objects that run, cannot SET ROLE back or outlive the statement.
    Owner(String),
}

/// What the worker checks right before a superuser statement runs; a failed check stops the
/// database's batch (nothing of it is committed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "guard", content = "schema")]
pub enum Guard {
    None,
    /// No object in the database belongs to a non-superuser (a database pgops just created,
    /// connections still closed).
    NoForeignObjects,
    /// Each schema belongs to a superuser, no non-superuser may CREATE in it and none owns an
    /// object in it: the schemas an extension's script runs with (its own and those of the
    /// extensions it requires).
    SuperuserSchemas(Vec<String>),
}

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
    /// Inside a database: who runs it (elsewhere always the superuser).
    pub run_as: RunAs,
    pub guard: Guard,
    /// Inside a database pgops just created, before it is opened: the worker enters it although
    /// it does not accept connections yet.
    pub window: bool,
    /// Runs with `search_path = public` (the baseline, and what runs as the owner: names mean what
    /// they mean to the database's users); every other statement keeps the pinned path.
    pub public_path: bool,
    /// A `CREATE DATABASE … TEMPLATE`: the template (a failed creation of it stops this one).
    pub template: Option<String>,
    /// `CREATE SCHEMA` of this schema: for the rest of its batch (one transaction) nobody else can
    /// have put anything in it, whatever its privileges say.
    pub creates_schema: Option<String>,
    /// A baseline: run statement by statement as `psql -f` runs a file (each in its own
    /// transaction, those that refuse a transaction block at top level), stopping at the first
    /// error; on success its digest is recorded so it runs once per content.
    pub baseline_digest: Option<String>,
}

impl Step {
    fn new(database: &str, place: Place, statement: String, reason: String, risk: Risk, diffs: Vec<Diff>) -> Step {
        Step {
            database: database.to_string(),
            place,
            statement,
            reason,
            risk,
            diffs,
            run_as: RunAs::Superuser,
            guard: Guard::None,
            window: false,
            public_path: false,
            template: None,
            creates_schema: None,
            baseline_digest: None,
        }
    }

    fn note(database: &str, statement: String, reason: String, diffs: Vec<Diff>) -> Step {
        Step::new(database, Place::Note, statement, reason, Risk::Note, diffs)
    }

    /// Who runs it, in the words of the plan's `runs` column.
    pub fn runner(&self) -> String {
        match &self.run_as {
            RunAs::Superuser => "superuser".into(),
            RunAs::Owner(o) => format!("owner {o}"),
        }
    }
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
            h.update(serde_json::to_vec(&(&s.run_as, &s.guard, s.window, s.public_path)).unwrap_or_default());
            h.update(s.statement.as_bytes());
            h.update([0]);
        }
        h.update(serde_json::to_vec(live).unwrap_or_default());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn drops(&self) -> bool {
        self.steps.iter().any(|s| s.risk.needs_review())
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
    // Owned by the worker's role (the bootstrap superuser) and closed: nobody else can connect
    // and put objects in it before the work inside is done and it is handed over and opened.
    let mut sql = format!("CREATE DATABASE {}", ident(&s.name));
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
    sql += " ALLOW_CONNECTIONS false";
    if let Some(c) = s.connlimit {
        sql += &format!(" CONNECTION LIMIT {c}");
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
    let step = |statement: String, reason: String, risk: Risk, diffs: Vec<Diff>| {
        Step::new(name, Place::Cluster, statement, reason, risk, diffs)
    };
    let owner = s
        .owner
        .clone()
        .or_else(|| live_db.map(|d| d.owner.clone()))
        .unwrap_or_else(|| opts.bootstrap.clone());
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
        } else if s.allowconn.is_none()
            && !d.allowconn
            && d.owner == opts.bootstrap
            && s.owner.as_ref().is_some_and(|o| *o != opts.bootstrap)
        {
            // Still closed and the superuser's although declared for another owner: pgops'
            // creation of it stopped before the hand-over; it is opened once handed over.
            out.push(step(
                format!("ALTER DATABASE {q} WITH ALLOW_CONNECTIONS true"),
                format!(
                    "still closed and owned by {}: its creation did not finish; opened once handed to its owner",
                    opts.bootstrap
                ),
                Risk::Safe,
                diff("allowconn", "true".to_string(), "false".to_string()),
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
            out.push(Step::note(
                name,
                format!("-- role {} does not exist: declare it in pgops.role and apply roles first", ident(grantee)),
                format!("grantee {grantee} does not exist"),
                diff(&format!("grants.{grantee}"), "exists".to_string(), None),
            ));
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

/// How the statements inside one database are run (decided once per database).
struct Inside<'a> {
    spec: &'a DatabaseSpec,
    /// The owner the database has (or will have) when its inside statements run.
    owner: String,
    /// A database pgops creates in this plan: its inside batch runs before it is opened.
    created: bool,
    /// In a database just created from a template whose objects are all superusers': every
    /// statement runs as the superuser (the worker re-checks that nothing else got in).
    superuser_window: bool,
    /// Why the superuser may not run code there (a clone of a tenant's template).
    clone_why: Option<String>,
}

impl Inside<'_> {
    fn step(&self, statement: String, reason: String, risk: Risk, diffs: Vec<Diff>) -> Step {
        let mut st = Step::new(&self.spec.name, Place::Inside(self.spec.name.clone()), statement, reason, risk, diffs);
        st.window = self.created;
        if self.superuser_window {
            st.guard = Guard::NoForeignObjects;
        }
        st
    }

    /// A statement that executes objects (an extension's script, a baseline): as the superuser
    /// where only superusers could have put objects (`safe`: the schemas the worker re-checks;
    /// Err: why not), else as the owner when `owner_may` (what the owner could run itself), else a
    /// note saying why.
    #[allow(clippy::too_many_arguments)]
    fn executing(&self, statement: String, reason: String, diffs: Vec<Diff>, safe: std::result::Result<Vec<String>, String>, owner_may: bool, why_not: String, public_path: bool, live: &Live) -> Step {
        // In a new database from a clean template nothing but superusers' objects exist: only an
        // untrusted extension into a schema declared for someone else is left out (it would stay
        // where that owner can fill it).
        if self.superuser_window && (safe.is_ok() || owner_may) {
            let mut st = self.step(statement, reason, Risk::Safe, diffs);
            st.public_path = public_path;
            return st;
        }
        if let (Ok(schemas), None, false) = (&safe, &self.clone_why, self.superuser_window) {
            let mut st = self.step(statement, reason, Risk::Safe, diffs);
            st.guard = Guard::SuperuserSchemas(schemas.clone());
            st.public_path = public_path;
            return st;
        }
        if owner_may && !self.superuser_window && !live.is_superuser(&self.owner) {
            let mut st = self.step(statement, format!("{reason}; run as the owner {}: {why_not}", self.owner), Risk::Safe, diffs);
            st.run_as = RunAs::Owner(self.owner.clone());
            st.public_path = true;
            return st;
        }
        let owner_note = if owner_may && !self.superuser_window {
            format!("; its owner {} is a superuser, so it cannot run as the owner either: declare an owner that is not a superuser", self.owner)
        } else {
            String::new()
        };
        Step::note(
            &self.spec.name,
            format!("-- not run: {why_not}{owner_note}"),
            format!("{reason}: not run as a superuser where others could have put objects"),
            diffs,
        )
    }

    /// The schemas an extension's script runs with: `schema` (its own) and those of the extensions
    /// it requires, transitively — where they are installed, or where CASCADE creates the missing
    /// ones (their control file's schema, else `schema`). Err: why a superuser may not run it.
    fn script_schemas(&self, ext: &str, schema: &str, installed: &BTreeMap<String, (String, String)>, live_db: Option<&LiveDatabase>, live: &Live) -> std::result::Result<Vec<String>, String> {
        let mut out = vec![schema.to_string()];
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = live.available.get(ext).map(|a| a.requires.clone()).unwrap_or_default();
        while let Some(r) = todo.pop() {
            if !seen.insert(r.clone()) {
                continue;
            }
            if let Some((sch, _)) = installed.get(&r) {
                out.push(sch.clone());
            } else if let Some(a) = live.available.get(&r) {
                out.push(a.schema.clone().unwrap_or_else(|| schema.to_string()));
                todo.extend(a.requires.iter().cloned());
            } else if !live.available.is_empty() {
                return Err(format!("it requires extension {r}, which is not available on this server"));
            }
        }
        out.sort();
        out.dedup();
        for sch in &out {
            if let Some(why) = schema_risk(sch, live_db, self.spec, live) {
                return Err(if sch == schema { why } else { format!("it needs extension(s) in schema {sch} ({why})") });
            }
        }
        Ok(out)
    }
}

/// Why a schema is not one only superusers could have filled (None: it is), from the live read
/// or, for a schema this plan creates, from its declaration.
fn schema_risk(schema: &str, live_db: Option<&LiveDatabase>, spec: &DatabaseSpec, live: &Live) -> Option<String> {
    if schema == "pg_catalog" {
        return None;
    }
    let exists = live_db.and_then(|d| d.schemas.as_ref()).is_some_and(|m| m.contains_key(schema));
    if !exists {
        // Created by this plan, as the superuser, unless declared with another owner; in a
        // database being created, an undeclared schema comes from its template (the caller only
        // asks when that template holds nothing but superusers' objects).
        return match spec.schemas.iter().find(|sc| sc.name == schema && sc.present) {
            Some(sc) => match &sc.owner {
                Some(o) if !live.is_superuser(o) => Some(format!("schema {schema} is declared owned by {o}")),
                _ => None,
            },
            None if live_db.is_none() => None,
            None => Some(format!("schema {schema} does not exist and is not declared")),
        };
    }
    match live_db.and_then(|d| d.unsafe_schemas.as_ref()) {
        Some(m) => m.get(schema).map(|why| format!("schema {schema}: {why}")),
        None => Some(format!("what non-superusers could have put in database {} was not read", spec.name)),
    }
}

/// Schemas and extensions inside the database, and the baseline right after creation. Nothing
/// that executes objects runs as a superuser unless only superusers could have put them there.
fn converge_inside(s: &DatabaseSpec, live_db: Option<&LiveDatabase>, live: &Live, opts: &Options, clone_why: Option<String>, out: &mut Vec<Step>) {
    let start = out.len();
    inside_steps(s, live_db, live, opts, clone_why, out);
    // The notes after the statements: a database's inside work stays one batch (one transaction,
    // where a schema created at its start is trusted by the statements after it).
    let tail: Vec<Step> = out.drain(start..).collect();
    let (notes, steps): (Vec<Step>, Vec<Step>) = tail.into_iter().partition(|st| st.place == Place::Note);
    out.extend(steps);
    out.extend(notes);
}

fn inside_steps(s: &DatabaseSpec, live_db: Option<&LiveDatabase>, live: &Live, opts: &Options, clone_why: Option<String>, out: &mut Vec<Step>) {
    let name = &s.name;
    let created = live_db.is_none();
    let reachable = created || s.allowconn.unwrap_or_else(|| live_db.is_none_or(|d| d.allowconn));
    let digest = s.baseline.as_deref().map(super::model::baseline_digest);
    let baseline_due = digest.as_ref().is_some_and(|d| live_db.is_none_or(|l| !l.baselines.contains(d)));
    let wants_inside = !s.schemas.is_empty() || !s.extensions.is_empty() || baseline_due;
    if wants_inside && !reachable {
        out.push(Step::note(
            name,
            "-- allowconn is false: schemas, extensions and baseline cannot be applied".into(),
            "the database does not accept connections".into(),
            diff("allowconn", "connections for schemas/extensions".to_string(), "false".to_string()),
        ));
        return;
    }
    // A new database starts as a copy of its template (read when it was planned).
    let template_db = live_db
        .is_none()
        .then(|| live.databases.get(s.template.as_deref().unwrap_or("template1")))
        .flatten();
    let (schemas, extensions) = match live_db {
        // Not read (the caller may not start workers, or the database could not be read): no
        // guess about what is inside.
        Some(d) if d.schemas.is_none() || d.extensions.is_none() => return,
        Some(d) => (d.schemas.clone().unwrap_or_default(), d.extensions.clone().unwrap_or_default()),
        None => match template_db {
            Some(t) => (t.schemas.clone().unwrap_or_default(), t.extensions.clone().unwrap_or_default()),
            None => (BTreeMap::new(), BTreeMap::new()),
        },
    };
    let owner = s
        .owner
        .clone()
        .or_else(|| live_db.map(|d| d.owner.clone()))
        .unwrap_or_else(|| opts.bootstrap.clone());
    let cx = Inside {
        spec: s,
        owner: owner.clone(),
        created,
        superuser_window: created && clone_why.is_none(),
        clone_why,
    };
    // Who holds CREATE on a schema now: the live read, or for a new database its template's.
    let create_now = |schema: &str| -> Option<Vec<String>> {
        match live_db {
            Some(d) => d.schema_create.as_ref().map(|m| m.get(schema).cloned().unwrap_or_default()),
            None => match template_db {
                Some(t) if t.schemas.as_ref().is_some_and(|m| m.contains_key(schema)) => {
                    t.schema_create.as_ref().map(|m| m.get(schema).cloned().unwrap_or_default())
                }
                Some(t) if t.schemas.is_some() => Some(vec![]),
                _ => None,
            },
        }
    };
    for sc in &s.schemas {
        let q = ident(&sc.name);
        match (sc.present, schemas.get(&sc.name)) {
            (true, None) => {
                let mut st = cx.step(
                    format!(
                        "CREATE SCHEMA IF NOT EXISTS {q}{}",
                        sc.owner.as_deref().map_or(String::new(), |o| format!(" AUTHORIZATION {}", ident(o)))
                    ),
                    format!("schema {} is missing", sc.name),
                    Risk::Safe,
                    diff(&format!("schemas.{}", sc.name), "present".to_string(), None),
                );
                // Trusted by the batch's later statements only when this statement really creates
                // it: plain CREATE SCHEMA, which fails if someone made it in the meantime.
                if sc.owner.as_ref().is_none_or(|o| live.is_superuser(o)) {
                    st.creates_schema = Some(sc.name.clone());
                    st.statement = st.statement.replacen("CREATE SCHEMA IF NOT EXISTS ", "CREATE SCHEMA ", 1);
                }
                out.push(st);
            }
            (true, Some(have)) => {
                let expected = match &sc.owner {
                    Some(o) => have == o,
                    // No owner declared: a superuser's (pgops made it) or the database owner's
                    // standard `public`.
                    None => live.is_superuser(have) || have == "pg_database_owner",
                };
                if expected {
                    continue;
                }
                if live.is_superuser(have) || have == "pg_database_owner" {
                    // Handing a superuser's schema to its declared owner executes nothing.
                    let o = sc.owner.clone().unwrap_or_default();
                    out.push(cx.step(
                        format!("ALTER SCHEMA {q} OWNER TO {}", ident(&o)),
                        format!("schema {} is owned by {have}, declared {o}", sc.name),
                        Risk::Safe,
                        diff(&format!("schemas.{}.owner", sc.name), o.clone(), have.clone()),
                    ));
                } else {
                    out.push(Step::note(
                        name,
                        format!(
                            "-- schema {q} exists, owned by {}, not by {}: someone created it before pgops; it is left \
                             as it is and no extension is installed into it as a superuser (ALTER SCHEMA {q} OWNER TO … by hand if that is right)",
                            ident(have),
                            sc.owner.as_deref().map_or("a superuser".to_string(), ident)
                        ),
                        format!("schema {} has an owner nobody declared", sc.name),
                        diff(&format!("schemas.{}.owner", sc.name), sc.owner.clone().or(Some("a superuser".into())), have.clone()),
                    ));
                }
            }
            (false, Some(_)) => out.push(cx.step(
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
        let avail = live.available.get(&x.name);
        match (x.present, extensions.get(&x.name)) {
            (true, None) => {
                let diffs = diff(&format!("extensions.{}", x.name), "present".to_string(), None);
                if !live.available.is_empty() && avail.is_none() {
                    out.push(Step::note(
                        name,
                        format!("-- extension {q} is not available on this server: install its package, then apply again"),
                        format!("extension {} is not available", x.name),
                        diffs,
                    ));
                    continue;
                }
                // Where its script runs: the schema its control file fixes, the declared one, or
                // public, always written out (the statement never depends on a search_path).
                let fixed = avail.and_then(|a| a.schema.clone());
                let target = fixed.clone().or_else(|| x.schema.clone()).unwrap_or_else(|| "public".into());
                let safe = cx.script_schemas(&x.name, &target, &extensions, live_db, live);
                let trusted = avail.is_some_and(|a| a.trusted);
                let why_not = match (&cx.clone_why, &safe) {
                    (Some(c), _) => c.clone(),
                    (None, Err(r)) => r.clone(),
                    (None, Ok(_)) => String::new(),
                };
                let why_not = if trusted {
                    format!("{why_not}; {} is a trusted extension, which the owner may create itself", x.name)
                } else {
                    format!(
                        "{why_not}; {} is not a trusted extension: its script would run as a superuser among objects others \
                         may have put there. Create it yourself in a schema only superusers can write, or declare such a schema",
                        x.name
                    )
                };
                // Always written: CASCADE creates missing requirements in it too (unless their own
                // control file fixes a schema), never in whatever the search_path says.
                let schema_clause = format!(" SCHEMA {}", ident(x.schema.as_deref().unwrap_or(&target)));
                out.push(cx.executing(
                    format!(
                        "CREATE EXTENSION IF NOT EXISTS {q}{schema_clause}{} CASCADE",
                        x.version.as_deref().map_or(String::new(), |v| format!(" VERSION {}", literal(v)))
                    ),
                    format!("extension {} is missing", x.name),
                    diffs,
                    safe,
                    trusted,
                    why_not,
                    false,
                    live,
                ));
            }
            (true, Some((schema, version))) => {
                if let Some(v) = &x.version
                    && v != version
                {
                    let safe = cx.script_schemas(&x.name, schema, &extensions, live_db, live);
                    let trusted = avail.is_some_and(|a| a.trusted);
                    let why_not = format!(
                        "{}; its update script runs in schema {schema}",
                        cx.clone_why.clone().or(safe.clone().err()).unwrap_or_default()
                    );
                    out.push(cx.executing(
                        format!("ALTER EXTENSION {q} UPDATE TO {}", literal(v)),
                        format!("extension {} is at {version}, declared {v}", x.name),
                        diff(&format!("extensions.{}.version", x.name), v.clone(), version.clone()),
                        safe,
                        trusted,
                        why_not,
                        false,
                        live,
                    ));
                }
                if let Some(sc) = &x.schema
                    && sc != schema
                {
                    // Moving an untrusted extension into a schema others can fill leaves its
                    // objects where a later update script would run among theirs.
                    if let Some(why) = schema_risk(sc, live_db, s, live).filter(|_| !avail.is_some_and(|a| a.trusted)) {
                        out.push(Step::note(
                            name,
                            format!("-- not run: {why}; {} is not a trusted extension and is not moved there", x.name),
                            format!("extension {} is in schema {schema}, declared {sc}", x.name),
                            diff(&format!("extensions.{}.schema", x.name), sc.clone(), schema.clone()),
                        ));
                        continue;
                    }
                    out.push(cx.step(
                        format!("ALTER EXTENSION {q} SET SCHEMA {}", ident(sc)),
                        format!("extension {} is in schema {schema}, declared {sc}", x.name),
                        Risk::Safe,
                        diff(&format!("extensions.{}.schema", x.name), sc.clone(), schema.clone()),
                    ));
                }
            }
            (false, Some(_)) => out.push(cx.step(
                format!("DROP EXTENSION IF EXISTS {q} CASCADE"),
                format!("extension {} is declared absent", x.name),
                Risk::Drop,
                diff(&format!("extensions.{}", x.name), "absent".to_string(), "present".to_string()),
            )),
            (false, None) => {}
        }
    }
    // CREATE on the declared schemas, exactly the listed roles besides the owner — after the
    // extensions, as Pigsty's templates order it: their scripts ran before anyone else could
    // create there.
    for sc in s.schemas.iter().filter(|sc| sc.present) {
        let Some(want) = &sc.create else { continue };
        let q = ident(&sc.name);
        let have = create_now(&sc.name);
        for g in want {
            if have.as_ref().is_none_or(|h| !h.contains(g)) {
                out.push(cx.step(
                    format!("GRANT CREATE ON SCHEMA {q} TO {}", role_sql(g)),
                    format!("{g} may not create in schema {}", sc.name),
                    Risk::Safe,
                    diff(&format!("schemas.{}.create.{g}", sc.name), "granted".to_string(), None),
                ));
            }
        }
        // PUBLIC's CREATE is taken away unless declared (also when the schema could not be
        // read); other roles' grants are left alone, as Pigsty's pg-db.sql leaves them.
        let extra: Vec<String> = match &have {
            _ if want.iter().any(|g| g == "PUBLIC") => vec![],
            Some(h) => h.iter().filter(|g| *g == "PUBLIC").cloned().collect(),
            None => vec!["PUBLIC".to_string()],
        };
        for g in extra {
            out.push(cx.step(
                format!("REVOKE CREATE ON SCHEMA {q} FROM {}", role_sql(&g)),
                format!("{g} may create in schema {}, not declared", sc.name),
                Risk::Revoke,
                diff(&format!("schemas.{}.create.{g}", sc.name), None, "granted".to_string()),
            ));
        }
    }
    if let (true, Some(b), Some(d)) = (baseline_due, &s.baseline, &digest) {
        let what = match &s.baseline_file {
            Some(f) => format!("baseline {f} (sha256 {})", &d[..12]),
            None => format!("baseline (sha256 {})", &d[..12]),
        };
        let (reason, why_not) = if created {
            (
                format!("{what}: runs once, right after the database is created, before it accepts connections"),
                cx.clone_why.clone().unwrap_or_default(),
            )
        } else {
            (
                format!("{what}: declared, and this content has not run in the database yet (it runs once per content)"),
                format!("database {name} exists: others may have put objects in it"),
            )
        };
        // An existing database accepts connections: whoever may CREATE somewhere in it (Pigsty's
        // default privileges give dbrole_admin every new schema) could add objects between a
        // script's statements, so a baseline there runs as its owner, never as the superuser.
        let mut st = cx.executing(
            b.clone(),
            reason,
            vec![],
            Err(why_not.clone()),
            true,
            format!("{why_not}; the baseline runs as the owner {owner}, who could run it itself"),
            true,
            live,
        );
        if st.place != Place::Note {
            st.baseline_digest = Some(d.clone());
            // On a database that exists a baseline may change or remove anything (Pigsty's
            // cmdb.sql starts by dropping its schema): it waits for a reviewed plan.
            if !created {
                st.risk = Risk::Script;
            }
        }
        out.push(st);
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
            out.push(Step::note(
                &s.name,
                format!("-- {field} is {have}, declared {w}: set state = 'recreate' to rebuild the database with it"),
                format!("{field} is fixed at creation"),
                diff(field, w.clone(), have.clone()),
            ));
        }
    }
}

fn drop_steps(s: &DatabaseSpec, d: &LiveDatabase, why: &str, out: &mut Vec<Step>) {
    let q = ident(&s.name);
    if d.is_template {
        out.push(Step::new(
            &s.name,
            Place::Cluster,
            format!("ALTER DATABASE {q} WITH IS_TEMPLATE false"),
            "a template database cannot be dropped: cleared first".into(),
            Risk::Drop,
            vec![],
        ));
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
    out.push(Step::new(
        &s.name,
        Place::TopLevel,
        format!("DROP DATABASE {q}{}", if s.force { " WITH (FORCE)" } else { "" }),
        format!("{why}{sessions}"),
        Risk::Drop,
        diff("state", why.to_string(), "present".to_string()),
    ));
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
                    steps.push(Step::new(
                        &s.name,
                        Place::TopLevel,
                        format!("ALTER DATABASE {} SET TABLESPACE {}", ident(&s.name), ident(t)),
                        format!(
                            "tablespace is {}, declared {t}: the files move (no other session may be connected)",
                            d.tablespace
                        ),
                        Risk::Safe,
                        diff("tablespace", t.clone(), d.tablespace.clone()),
                    ));
                }
                converge_database(s, Some(d), live, opts, &mut steps)?;
                converge_inside(s, Some(d), live, opts, None, &mut steps);
            }
            (State::Recreate, Some(d)) => {
                drop_steps(s, d, "declared recreate", &mut steps);
                create(s, specs, live, opts, &mut steps)?;
            }
            (_, None) => create(s, specs, live, opts, &mut steps)?,
        }
    }
    Ok(Plan { steps })
}

/// Why cloning the template would bring objects non-superusers made into the new database
/// (None: only superusers could have put objects in it).
fn clone_risk(s: &DatabaseSpec, specs: &[DatabaseSpec], live: &Live) -> Option<String> {
    let t = s.template.as_deref().unwrap_or("template1");
    if t == "template0" {
        return None;
    }
    let Some(d) = live.databases.get(t) else {
        // A template declared in this plan is created like this one; once handed to an owner
        // that is not a superuser, that owner may fill it before it is cloned. (Either way the
        // worker re-checks the copy before anything runs in it as a superuser.)
        let owner = specs.iter().find(|o| o.name == t).and_then(|o| o.owner.clone());
        return owner
            .filter(|o| !live.is_superuser(o))
            .map(|o| format!("template {t}, which will belong to {o}, who is not a superuser"));
    };
    if !live.is_superuser(&d.owner) {
        let what = match &d.foreign_objects {
            Some(f) if f.count > 0 => format!(": {}", f.describe()),
            _ => String::new(),
        };
        return Some(format!("template {t} belongs to {}, who is not a superuser{what}", d.owner));
    }
    match &d.foreign_objects {
        Some(f) if f.count > 0 => Some(format!("template {t} holds objects non-superusers own: {}", f.describe())),
        Some(_) => None,
        None => Some(format!("the objects of template {t} could not be read")),
    }
}

fn create(s: &DatabaseSpec, specs: &[DatabaseSpec], live: &Live, opts: &Options, out: &mut Vec<Step>) -> Result<()> {
    for (field, given, needs) in [
        ("locale_provider", s.locale_provider.is_some(), 150000),
        ("icu_locale", s.icu_locale.is_some(), 150000),
        ("icu_rules", s.icu_rules.is_some(), 160000),
        ("builtin_locale", s.builtin_locale.is_some(), 170000),
    ] {
        if given && opts.server_version < needs {
            out.push(Step::note(
                &s.name,
                format!("-- {field} needs PostgreSQL {}: created without it", needs / 10000),
                format!("CREATE DATABASE … {} exists from PostgreSQL {}", field.to_ascii_uppercase(), needs / 10000),
                vec![],
            ));
        }
    }
    if s.strategy.is_some() && opts.server_version < 150000 {
        out.push(Step::note(
            &s.name,
            "-- strategy needs PostgreSQL 15: created without it".into(),
            "CREATE DATABASE … STRATEGY exists from PostgreSQL 15".into(),
            vec![],
        ));
    }
    let clone_why = clone_risk(s, specs, live);
    let q = ident(&s.name);
    let mut reason = if s.state == State::Recreate {
        "declared recreate: created again".to_string()
    } else {
        "declared, does not exist".to_string()
    };
    reason += &format!(
        "; created owned by {} with connections closed until the work inside is done",
        opts.bootstrap
    );
    let mut risk = Risk::Safe;
    if let Some(why) = &clone_why {
        risk = Risk::Clone;
        reason += &format!(
            "; it clones {why}: those objects, their code and data are copied, and nothing inside the copy runs as a superuser"
        );
    }
    let mut create = Step::new(
        &s.name,
        Place::TopLevel,
        create_statement(s, opts),
        reason,
        risk,
        diff("state", "present".to_string(), None),
    );
    create.template = s.template.clone();
    out.push(create);
    let mut inside = vec![];
    converge_inside(s, None, live, opts, clone_why.clone(), &mut inside);
    // Handed over (owner, template flag, comment, settings, privileges) while still closed.
    let mut handover = vec![];
    if let Some(o) = &s.owner
        && *o != opts.bootstrap
    {
        handover.push(Step::new(
            &s.name,
            Place::Cluster,
            format!("ALTER DATABASE {q} OWNER TO {}", ident(o)),
            format!("handed to its declared owner {o} (still closed)"),
            Risk::Safe,
            diff("owner", o.clone(), opts.bootstrap.clone()),
        ));
    }
    if s.is_template == Some(true) {
        handover.push(Step::new(
            &s.name,
            Place::Cluster,
            format!("ALTER DATABASE {q} WITH IS_TEMPLATE true"),
            "declared a template (set once the work inside is done)".into(),
            Risk::Safe,
            diff("is_template", "true".to_string(), "false".to_string()),
        ));
    }
    converge_database(s, None, live, opts, &mut handover)?;
    // A clone's inside statements run as its owner while the database is still closed and the
    // superuser's: the owner gets CREATE on it for that (ownership follows with the hand-over).
    let owner_runs = inside.iter().any(|st| matches!(st.run_as, RunAs::Owner(_)));
    if owner_runs && let Some(o) = &s.owner {
        out.push(Step::new(
            &s.name,
            Place::Cluster,
            format!("GRANT CREATE ON DATABASE {q} TO {}", ident(o)),
            format!("the owner {o} runs the work inside before the hand-over (the database stays closed and the superuser's)"),
            Risk::Safe,
            vec![],
        ));
    }
    out.extend(inside);
    out.extend(handover);
    if s.allowconn != Some(false) {
        out.push(Step::new(
            &s.name,
            Place::Cluster,
            format!("ALTER DATABASE {q} WITH ALLOW_CONNECTIONS true"),
            "opened last, once everything before it succeeded".into(),
            Risk::Safe,
            diff("allowconn", "true".to_string(), "false".to_string()),
        ));
    }
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
            bootstrap: "postgres".into(),
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
            unsafe_schemas: Some(BTreeMap::new()),
            foreign_objects: Some(Foreign::default()),
            ..Default::default()
        }
    }
    fn live(dbs: Vec<LiveDatabase>) -> Live {
        Live {
            databases: dbs.into_iter().map(|d| (d.name.clone(), d)).collect(),
            roles: ["postgres", "dbuser_meta", "replicator", "dbuser_monitor", "app"].iter().map(|s| s.to_string()).collect(),
            superusers: ["postgres".to_string()].into(),
            available: BTreeMap::new(),
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
                "CREATE DATABASE \"meta\" TEMPLATE \"template0\" STRATEGY 'FILE_COPY' ENCODING 'UTF8' LOCALE 'C' TABLESPACE \"pg_default\" ALLOW_CONNECTIONS false CONNECTION LIMIT 50",
                "CREATE SCHEMA \"pigsty\"",
                "CREATE EXTENSION IF NOT EXISTS \"pg_trgm\" SCHEMA \"public\" VERSION '1.6' CASCADE",
                "CREATE TABLE pigsty.t (id int)",
                "ALTER DATABASE \"meta\" OWNER TO \"dbuser_meta\"",
                "COMMENT ON DATABASE \"meta\" IS 'it''s meta'",
                "ALTER DATABASE \"meta\" SET \"auto_explain\".\"log_min_duration\" TO '1s'",
                "ALTER DATABASE \"meta\" SET \"work_mem\" TO '64MB'",
                "REVOKE CONNECT ON DATABASE \"meta\" FROM PUBLIC",
                "GRANT CONNECT ON DATABASE \"meta\" TO \"dbuser_monitor\"",
                "GRANT CONNECT ON DATABASE \"meta\" TO \"replicator\"",
                "ALTER DATABASE \"meta\" WITH ALLOW_CONNECTIONS true",
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
        );
        assert_eq!(p.steps[0].place, Place::TopLevel);
        // In the window: the superuser runs everything inside, the worker re-checks the copy.
        for st in &p.steps[1..4] {
            assert_eq!(st.place, Place::Inside("meta".into()));
            assert_eq!((&st.run_as, &st.guard, st.window), (&RunAs::Superuser, &Guard::NoForeignObjects, true));
        }
        assert_eq!(p.steps[4].place, Place::Cluster);
        assert_eq!(p.steps[0].risk, Risk::Safe);
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
                "CREATE DATABASE \"old\" ALLOW_CONNECTIONS false",
                "SELECT 1",
                "ALTER DATABASE \"old\" WITH ALLOW_CONNECTIONS true"
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
        assert_eq!(
            statements(&p),
            vec![
                "CREATE DATABASE \"tpl\" ALLOW_CONNECTIONS false",
                "ALTER DATABASE \"tpl\" WITH IS_TEMPLATE true",
                "ALTER DATABASE \"tpl\" WITH ALLOW_CONNECTIONS true",
                "CREATE DATABASE \"clone\"\"; DROP DATABASE x; --\" TEMPLATE \"tpl\" ALLOW_CONNECTIONS false",
                "ALTER DATABASE \"clone\"\"; DROP DATABASE x; --\" WITH ALLOW_CONNECTIONS true",
            ]
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
        assert_eq!(p.steps[2].statement, "CREATE DATABASE \"n\" LC_COLLATE 'C' LC_CTYPE 'en_US.UTF-8' ALLOW_CONNECTIONS false");
        let p = plan(&[s], &live(vec![]), &opts()).unwrap();
        assert_eq!(
            p.steps[0].statement,
            "CREATE DATABASE \"n\" LC_COLLATE 'C' LC_CTYPE 'en_US.UTF-8' LOCALE_PROVIDER 'icu' ICU_LOCALE 'en-US' ALLOW_CONNECTIONS false"
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

    fn tenant_template() -> LiveDatabase {
        let mut t = live_db("tenant_tpl", "tenant");
        t.foreign_objects = Some(Foreign {
            count: 3,
            examples: vec!["function public.f() owned by tenant".into(), "table public.app_settings owned by tenant".into()],
        });
        t
    }

    fn trusted_and_not() -> BTreeMap<String, Available> {
        BTreeMap::from([
            ("pg_trgm".to_string(), Available { trusted: true, schema: None, requires: vec![] }),
            ("pgstattuple".to_string(), Available { trusted: false, schema: None, requires: vec![] }),
            ("plpgsql".to_string(), Available { trusted: true, schema: Some("pg_catalog".into()), requires: vec![] }),
        ])
    }

    #[test]
    fn a_clone_of_a_tenants_database_is_its_own_risk_and_nothing_inside_runs_as_a_superuser() {
        let s = spec(json!({"name": "copy", "template": "tenant_tpl", "owner": "app", "schemas": ["s"],
            "extensions": ["pgstattuple", "pg_trgm"], "baseline": "UPDATE app_settings SET v = 1"}));
        let mut l = live(vec![tenant_template()]);
        l.roles.insert("tenant".into());
        l.available = trusted_and_not();
        let p = plan(&[s], &l, &opts()).unwrap();
        assert_eq!(p.steps[0].risk, Risk::Clone);
        assert!(p.steps[0].reason.contains("template tenant_tpl belongs to tenant, who is not a superuser: function public.f() owned by tenant, table public.app_settings owned by tenant and 1 more"), "{}", p.steps[0].reason);
        // Still closed and the superuser's: the owner may CREATE for the work inside, then the
        // hand-over, then it is opened.
        assert_eq!(p.steps[1].statement, "GRANT CREATE ON DATABASE \"copy\" TO \"app\"");
        let at = |st: &str| p.steps.iter().position(|x| x.statement == st).unwrap();
        assert!(at("UPDATE app_settings SET v = 1") < at("ALTER DATABASE \"copy\" OWNER TO \"app\""));
        let inside: Vec<(&str, String)> = p.steps.iter().filter(|st| matches!(st.place, Place::Inside(_))).map(|st| (st.statement.as_str(), st.runner())).collect();
        assert_eq!(inside[0], ("CREATE SCHEMA \"s\"", "superuser".to_string()));
        assert_eq!(inside[1], ("CREATE EXTENSION IF NOT EXISTS \"pg_trgm\" SCHEMA \"public\" CASCADE", "owner app".to_string()));
        assert_eq!(inside[2], ("UPDATE app_settings SET v = 1", "owner app".to_string()));
        let note = p.steps.iter().find(|st| st.place == Place::Note && st.statement.contains("pgstattuple")).unwrap();
        assert!(note.statement.starts_with("-- not run: template tenant_tpl belongs to tenant") && note.statement.contains("pgstattuple is not a trusted extension"), "{}", note.statement);
        assert!(p.steps.iter().filter(|st| st.run_as != RunAs::Superuser).all(|st| st.public_path));
        assert!(p.steps.iter().filter(|st| st.run_as == RunAs::Superuser && matches!(st.place, Place::Inside(_))).all(|st| !st.statement.starts_with("CREATE EXTENSION") && !st.statement.starts_with("UPDATE")));
        assert_eq!(p.steps.last().unwrap().statement, "ALTER DATABASE \"copy\" WITH ALLOW_CONNECTIONS true");
        // Without an owner that is not a superuser, the baseline is a note.
        let s = spec(json!({"name": "copy", "template": "tenant_tpl", "baseline": "UPDATE app_settings SET v = 1"}));
        let p = plan(&[s], &l, &opts()).unwrap();
        let b = p.steps.iter().find(|st| st.statement.contains("baseline") || st.statement.contains("UPDATE")).unwrap();
        assert_eq!(b.place, Place::Note);
        assert!(b.statement.contains("its owner postgres is a superuser"), "{}", b.statement);
    }

    #[test]
    fn a_superusers_template_with_a_tenants_objects_is_a_clone_too_and_an_unread_one_is_not_trusted() {
        let mut t1 = live_db("template1", "postgres");
        t1.foreign_objects = Some(Foreign { count: 1, examples: vec!["operator public.||(text,name) owned by tenant".into()] });
        let s = spec(json!({"name": "fresh", "owner": "app", "baseline": "SELECT 'a' || current_user"}));
        let p = plan(&[s.clone()], &live(vec![t1.clone()]), &opts()).unwrap();
        assert_eq!(p.steps[0].risk, Risk::Clone);
        assert!(p.steps[0].reason.contains("template template1 holds objects non-superusers own: operator public.||(text,name) owned by tenant"));
        assert_eq!(p.steps.iter().find(|st| st.statement.starts_with("SELECT")).unwrap().run_as, RunAs::Owner("app".into()));
        t1.foreign_objects = None;
        let p = plan(&[s.clone()], &live(vec![t1.clone()]), &opts()).unwrap();
        assert!(p.steps[0].reason.contains("the objects of template template1 could not be read"));
        t1.foreign_objects = Some(Foreign::default());
        let p = plan(&[s], &live(vec![t1]), &opts()).unwrap();
        assert_eq!(p.steps[0].risk, Risk::Safe);
        assert_eq!(p.steps[1].run_as, RunAs::Superuser);
        assert_eq!(p.steps[1].guard, Guard::NoForeignObjects);
    }

    #[test]
    fn in_an_existing_database_extensions_run_as_a_superuser_only_in_a_superusers_schema() {
        let s = spec(json!({"name": "app", "schemas": ["got_there_first", {"name": "handed", "owner": "app"}, "ext"],
            "extensions": [{"name": "pgstattuple", "schema": "ext"}, "pg_trgm", {"name": "pgstattuple2"}, "plpgsql",
                           {"name": "pgstattuple3", "schema": "got_there_first"}]}));
        let mut d = live_db("app", "tenant");
        d.schemas = Some(BTreeMap::from([
            ("public".to_string(), "pg_database_owner".to_string()),
            ("got_there_first".to_string(), "tenant".to_string()),
            ("handed".to_string(), "postgres".to_string()),
        ]));
        d.unsafe_schemas = Some(BTreeMap::from([
            ("public".to_string(), "owned by the database owner tenant".to_string()),
            ("got_there_first".to_string(), "owned by tenant".to_string()),
        ]));
        let mut l = live(vec![d]);
        l.roles.insert("tenant".into());
        let mut avail = trusted_and_not();
        avail.insert("pgstattuple3".into(), Available { trusted: false, schema: None, requires: vec![] });
        l.available = avail;
        let p = plan(&[s], &l, &opts()).unwrap();
        let find = |pre: &str| p.steps.iter().find(|st| st.statement.starts_with(pre)).unwrap_or_else(|| panic!("{pre}: {:?}", statements(&p)));
        // The tenant's schema is a note; a superuser's is handed to its declared owner.
        assert_eq!(find("-- schema \"got_there_first\" exists, owned by \"tenant\", not by a superuser").place, Place::Note);
        assert_eq!(find("ALTER SCHEMA \"handed\" OWNER TO \"app\"").run_as, RunAs::Superuser);
        let created = find("CREATE SCHEMA \"ext\"");
        assert_eq!(created.creates_schema.as_deref(), Some("ext"));
        // An untrusted extension into a schema this plan creates as the superuser: superuser, re-checked.
        assert_eq!(find("CREATE EXTENSION IF NOT EXISTS \"pgstattuple\" SCHEMA \"ext\" CASCADE").guard, Guard::SuperuserSchemas(vec!["ext".into()]));
        // A trusted one into the tenant's public: as the owner.
        assert_eq!(find("CREATE EXTENSION IF NOT EXISTS \"pg_trgm\" SCHEMA \"public\" CASCADE").runner(), "owner tenant");
        // Not available on the server: a note naming it.
        assert_eq!(find("-- extension \"pgstattuple2\" is not available").place, Place::Note);
        // plpgsql's control file puts it in pg_catalog: the superuser, re-checked.
        assert_eq!(find("CREATE EXTENSION IF NOT EXISTS \"plpgsql\"").guard, Guard::SuperuserSchemas(vec!["pg_catalog".into()]));
        // Untrusted into the tenant's schema: never.
        let n = p.steps.iter().find(|st| st.place == Place::Note && st.statement.contains("pgstattuple3 is not a trusted")).unwrap();
        assert!(n.statement.contains("schema got_there_first: owned by tenant"), "{}", n.statement);
        // Statements first, notes after them (one batch).
        let first_note = p.steps.iter().position(|st| st.place == Place::Note).unwrap();
        assert!(p.steps[first_note..].iter().all(|st| st.place == Place::Note));
        // No superuser row executes an extension script anywhere a non-superuser could write.
        for st in p.steps.iter().filter(|st| st.statement.starts_with("CREATE EXTENSION") && st.run_as == RunAs::Superuser) {
            assert!(matches!(&st.guard, Guard::SuperuserSchemas(s) if s == &["ext"] || s == &["pg_catalog"]));
            assert!(!st.public_path);
        }
    }

    /// The light read (`unsafe_schemas`, `foreign_objects` not read) is made in full only where
    /// its plan has work inside the database or a note for it: whatever the full read says, a
    /// database whose light plan has neither plans the same with it.
    #[test]
    fn a_light_read_is_enough_wherever_its_plan_has_nothing_inside() {
        let specs = [
            json!({"name": "app", "owner": "tenant"}),
            json!({"name": "app", "owner": "tenant", "schemas": ["app"]}),
            json!({"name": "app", "owner": "tenant", "schemas": ["app", {"name": "gone", "state": "absent"}]}),
            json!({"name": "app", "owner": "tenant", "extensions": ["pg_trgm"]}),
            json!({"name": "app", "owner": "tenant", "extensions": ["pgstattuple", {"name": "pg_trgm", "schema": "app"}]}),
            json!({"name": "app", "owner": "tenant", "schemas": [{"name": "app", "owner": "app"}], "extensions": ["pg_trgm"]}),
        ];
        let schemas = [
            BTreeMap::from([("public".to_string(), "tenant".to_string())]),
            BTreeMap::from([("public".to_string(), "tenant".to_string()), ("app".to_string(), "tenant".to_string())]),
            BTreeMap::from([("public".to_string(), "postgres".to_string()), ("app".to_string(), "app".to_string())]),
        ];
        let extensions = [
            BTreeMap::new(),
            BTreeMap::from([("pg_trgm".to_string(), ("public".to_string(), "1.6".to_string()))]),
            BTreeMap::from([
                ("pg_trgm".to_string(), ("app".to_string(), "1.6".to_string())),
                ("pgstattuple".to_string(), ("public".to_string(), "1.5".to_string())),
            ]),
        ];
        let fulls = [
            (BTreeMap::new(), Foreign::default()),
            (
                BTreeMap::from([("public".to_string(), "owned by tenant".to_string()), ("app".to_string(), "tenant may CREATE in it".to_string())]),
                Foreign { count: 3, examples: vec!["function public.f() owned by tenant".into()] },
            ),
        ];
        let mut checked = 0;
        for sv in &specs {
            let s = spec(sv.clone());
            for sc in &schemas {
                for ex in &extensions {
                    let mut d = live_db("app", "tenant");
                    d.schemas = Some(sc.clone());
                    d.extensions = Some(ex.clone());
                    d.schema_create = Some(BTreeMap::new());
                    d.unsafe_schemas = None;
                    d.foreign_objects = None;
                    let mut l = live(vec![d.clone()]);
                    l.roles.insert("tenant".into());
                    l.available = trusted_and_not();
                    let light = plan(std::slice::from_ref(&s), &l, &opts()).unwrap();
                    let inside = light.steps.iter().any(|st| matches!(st.place, Place::Inside(_) | Place::Note));
                    for (unsafe_schemas, foreign) in &fulls {
                        let mut f = d.clone();
                        f.unsafe_schemas = Some(unsafe_schemas.clone());
                        f.foreign_objects = Some(foreign.clone());
                        let lf = Live { databases: BTreeMap::from([("app".to_string(), f)]), ..l.clone() };
                        let full = plan(std::slice::from_ref(&s), &lf, &opts()).unwrap();
                        if !inside {
                            assert_eq!(statements(&light), statements(&full), "{sv} {sc:?} {ex:?}");
                            assert!(light.steps.iter().zip(&full.steps).all(|(a, b)| a.run_as == b.run_as && a.guard == b.guard));
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, specs.len() * schemas.len() * extensions.len() * fulls.len());
    }

    #[test]
    fn who_runs_it_is_part_of_the_hash() {
        let s = spec(json!({"name": "app", "extensions": ["pg_trgm"]}));
        let mut d = live_db("app", "tenant");
        d.unsafe_schemas = Some(BTreeMap::new());
        d.schemas = Some(BTreeMap::from([("public".to_string(), "postgres".to_string())]));
        let mut l = live(vec![d.clone()]);
        l.roles.insert("tenant".into());
        l.available = trusted_and_not();
        let a = plan(&[s.clone()], &l, &opts()).unwrap();
        assert_eq!(a.steps[0].run_as, RunAs::Superuser);
        d.unsafe_schemas = Some(BTreeMap::from([("public".to_string(), "tenant may CREATE in it".to_string())]));
        let l2 = Live { databases: BTreeMap::from([("app".to_string(), d)]), ..l.clone() };
        let b = plan(&[s], &l2, &opts()).unwrap();
        assert_eq!(b.steps[0].run_as, RunAs::Owner("tenant".into()));
        assert_eq!(a.steps[0].statement, b.steps[0].statement);
        assert_ne!(a.hash(&l), b.hash(&l));
    }

    #[test]
    fn a_creation_that_stopped_before_the_hand_over_is_finished_by_the_next_plan() {
        let s = spec(json!({"name": "half", "owner": "app"}));
        let mut d = live_db("half", "postgres");
        d.allowconn = false;
        let p = plan(&[s.clone()], &live(vec![d.clone()]), &opts()).unwrap();
        assert_eq!(statements(&p), vec!["ALTER DATABASE \"half\" OWNER TO \"app\"", "ALTER DATABASE \"half\" WITH ALLOW_CONNECTIONS true"]);
        // A database a DBA closed (its owner is not the superuser, or no owner is declared) stays closed.
        d.owner = "app".into();
        assert!(plan(&[s], &live(vec![d.clone()]), &opts()).unwrap().steps.is_empty());
        d.owner = "postgres".into();
        assert!(plan(&[spec(json!({"name": "half"}))], &live(vec![d]), &opts()).unwrap().steps.is_empty());
    }

    #[test]
    fn an_extensions_requirements_decide_too() {
        // postgis_topology's control file fixes schema topology and requires postgis: CASCADE
        // would create postgis (untrusted) in the schema the statement names.
        let mut l = live(vec![]);
        l.roles.insert("tenant".into());
        l.available = BTreeMap::from([
            ("postgis".to_string(), Available { trusted: false, schema: None, requires: vec![] }),
            ("postgis_topology".to_string(), Available { trusted: false, schema: Some("topology".into()), requires: vec!["postgis".into()] }),
            ("cube".to_string(), Available { trusted: true, schema: None, requires: vec![] }),
            ("earthdistance".to_string(), Available { trusted: false, schema: None, requires: vec!["cube".into()] }),
        ]);
        let mut d = live_db("app", "tenant");
        d.schemas = Some(BTreeMap::from([("public".to_string(), "pg_database_owner".to_string())]));
        d.unsafe_schemas = Some(BTreeMap::from([("public".to_string(), "owned by the database owner tenant".to_string())]));
        l.databases.insert("app".into(), d.clone());
        let s = spec(json!({"name": "app", "schemas": ["topology"], "extensions": ["postgis_topology"]}));
        let p = plan(&[s], &l, &opts()).unwrap();
        let st = p.steps.iter().find(|st| st.statement.contains("postgis_topology")).unwrap();
        assert_eq!(st.statement, "CREATE EXTENSION IF NOT EXISTS \"postgis_topology\" SCHEMA \"topology\" CASCADE");
        assert_eq!(st.guard, Guard::SuperuserSchemas(vec!["topology".into()]));
        // A requirement installed (by the tenant) in its public: the script would see public.
        d.extensions = Some(BTreeMap::from([("cube".to_string(), ("public".to_string(), "1.5".to_string()))]));
        l.databases.insert("app".into(), d);
        let s = spec(json!({"name": "app", "schemas": ["geo"], "extensions": [{"name": "earthdistance", "schema": "geo"}]}));
        let p = plan(&[s], &l, &opts()).unwrap();
        let st = p.steps.iter().find(|st| st.statement.contains("earthdistance")).unwrap();
        assert_eq!(st.place, Place::Note);
        assert!(st.statement.contains("it needs extension(s) in schema public"), "{}", st.statement);
    }

    #[test]
    fn in_a_new_database_an_untrusted_extension_is_not_put_in_a_schema_declared_for_someone_else() {
        let mut l = live(vec![]);
        l.available = trusted_and_not();
        let s = spec(json!({"name": "n", "owner": "app", "schemas": [{"name": "apps", "owner": "app"}],
            "extensions": [{"name": "pgstattuple", "schema": "apps"}, {"name": "pg_trgm", "schema": "apps"}]}));
        let p = plan(&[s], &l, &opts()).unwrap();
        let rows: Vec<(&str, &Place)> = p.steps.iter().map(|st| (st.statement.as_str(), &st.place)).collect();
        assert!(rows.iter().any(|(st, pl)| st.starts_with("-- not run: schema apps is declared owned by app") && **pl == Place::Note));
        assert!(rows.iter().any(|(st, pl)| *st == "CREATE EXTENSION IF NOT EXISTS \"pg_trgm\" SCHEMA \"apps\" CASCADE" && matches!(pl, Place::Inside(_))));
    }

    #[test]
    fn a_baseline_runs_once_per_content_and_where_it_may() {
        let s = spec(json!({"name": "app", "baseline": "CREATE TABLE t (id int)", "baseline_file": "app.sql"}));
        let digest = crate::databases::model::baseline_digest("CREATE TABLE t (id int)");
        // A new database: in the window, as the superuser, recorded by digest.
        let p = plan(&[s.clone()], &live(vec![]), &opts()).unwrap();
        let b = p.steps.iter().find(|st| st.statement.starts_with("CREATE TABLE")).unwrap();
        assert_eq!((b.run_as.clone(), b.window, b.baseline_digest.clone()), (RunAs::Superuser, true, Some(digest.clone())));
        assert!(b.reason.starts_with(&format!("baseline app.sql (sha256 {})", &digest[..12])));
        // An existing database where it has run: nothing; where it has not: planned.
        let mut d = live_db("app", "postgres");
        d.baselines = vec![digest.clone()];
        assert!(plan(&[s.clone()], &live(vec![d.clone()]), &opts()).unwrap().steps.is_empty());
        d.baselines.clear();
        // Open to connections: never as the superuser, however clean it looks now.
        let p = plan(&[s.clone()], &live(vec![d.clone()]), &opts()).unwrap();
        assert_eq!(p.steps[0].place, Place::Note);
        // Someone else may create in it: as its owner, or not at all when the owner is a superuser.
        let p = plan(&[s.clone()], &live(vec![d.clone()]), &opts()).unwrap();
        assert_eq!(p.steps[0].place, Place::Note);
        d.owner = "app".into();
        let p = plan(&[s], &live(vec![d]), &opts()).unwrap();
        assert_eq!(p.steps[0].run_as, RunAs::Owner("app".into()));
        assert!(p.steps[0].public_path && p.steps[0].baseline_digest.is_some());
        // It waits for a reviewed plan, like a drop.
        assert_eq!(p.steps[0].risk, Risk::Script);
        assert!(p.drops());
    }

    #[test]
    fn create_on_a_schema_for_the_declared_roles_and_not_public() {
        let s = spec(json!({"name": "app", "schemas": [{"name": "public", "create": ["dbrole_admin"]}]}));
        let mut d = live_db("app", "postgres");
        d.schemas = Some(BTreeMap::from([("public".to_string(), "pg_database_owner".to_string())]));
        d.schema_create = Some(BTreeMap::from([("public".to_string(), vec!["PUBLIC".to_string()])]));
        let p = plan(&[s.clone()], &live(vec![d.clone()]), &opts()).unwrap();
        assert_eq!(statements(&p), vec!["GRANT CREATE ON SCHEMA \"public\" TO \"dbrole_admin\"", "REVOKE CREATE ON SCHEMA \"public\" FROM PUBLIC"]);
        // Another role's grant (a baseline's) is left alone, as Pigsty leaves it.
        d.schema_create = Some(BTreeMap::from([("public".to_string(), vec!["dbrole_admin".to_string(), "project_admin".to_string()])]));
        assert!(plan(&[s], &live(vec![d]), &opts()).unwrap().steps.is_empty());
    }
}
