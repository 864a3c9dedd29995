//! A Pigsty inventory, resolved for one cluster as Pigsty's playbooks resolve it, into what pgops
//! loads: roles, default privileges, databases, HBA rules and aliases — and what it leaves out,
//! with the reason.
//!
//! Variables resolve as Ansible resolves them for Pigsty: the `pgsql` role's defaults (pgops'
//! copy of Pigsty's), then `all.vars`, then the vars of each group on the way down to the
//! cluster's hosts (outer first), then the host's own vars; a list or a map at a higher level
//! replaces the lower one whole (Ansible's `hash_behaviour = replace`). A cluster is the set of
//! hosts whose resolved `pg_cluster` names it (a group may hold several clusters, a cluster's name
//! may be a host var); its cluster-wide variables are read as its primary host sees them.
//!
//! What Pigsty's templates do, and this module reproduces:
//! - users (`pg-init-roles.sql`, `pg-user.sql`): `pg_default_roles` then `pg_users`, an entry
//!   declared twice merged key by key; an attribute an entry does not declare is not managed; a
//!   user without a comment is `business user <name>`; the monitor user's `search_path` is
//!   `monitor,public` (`pg-init-template.sql`);
//! - databases (`pg-db.sql`): `business database <name>` unless commented; CREATE on the database
//!   and on its `public` schema for `dbrole_admin` (and from nobody else); with `revokeconn`, the
//!   admin user's CONNECT with the grant option; default privileges for the owner as creator;
//! - template1 and postgres (`pg-init-template.sql`): `pg_default_schemas`,
//!   `pg_default_extensions`, CREATE on `public` from nobody; default privileges for the dbsu, the
//!   admin user and `dbrole_admin` (pgops applies those in every database that allows
//!   connections, `database = '*'`);
//! - HBA (`pg_hba.conf`): `pg_default_hba_rules` + `pg_hba_rules`, ordered rules first (stable by
//!   `order`), the others after in declaration order; the aliases from the inventory.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use yaml_rust2::{Yaml, YamlLoader};

use crate::bail_invalid;
use crate::error::{Error, Result};

/// Something of the inventory pgops does not load, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ignored {
    pub kind: String,
    pub name: String,
    pub why: String,
}

/// One cluster's share of an inventory, in the shapes pgops' loaders take (also what a fleet
/// document carries per cluster).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cluster {
    pub name: String,
    /// Host → its role (`pg_role`), in inventory order.
    pub members: Vec<(String, String)>,
    /// Pigsty user objects (`pg_users` shape), in the order Pigsty creates them.
    pub roles: Vec<Value>,
    /// (`pg_default_privileges` lines, creators, database: `*` or a name).
    pub default_privileges: Vec<(Vec<String>, Vec<String>, String)>,
    /// Pigsty database objects (`pg_databases` shape), template1 and postgres first.
    pub databases: Vec<Value>,
    /// Pigsty HBA rule objects (`pg_hba_rules` shape), in the order Pigsty renders them.
    pub hba_rules: Vec<Value>,
    /// pgops.hba_alias values.
    pub aliases: BTreeMap<String, Vec<String>>,
    pub ignored: Vec<Ignored>,
}

/// Pigsty's `pgsql` role defaults that decide roles, privileges, databases and HBA (Pigsty 4.x,
/// `roles/pgsql/defaults/main.yml` and `roles/node/defaults`), as pgops' own copy.
const DEFAULTS: &str = r#"{
  "pg_dbsu": "postgres",
  "pg_replication_username": "replicator",
  "pg_admin_username": "dbuser_dba",
  "pg_monitor_username": "dbuser_monitor",
  "pg_pwd_enc": "scram-sha-256",
  "node_firewall_intranet": ["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12"],
  "pg_users": [], "pg_databases": [], "pg_hba_rules": [],
  "pg_default_roles": [
    {"name": "dbrole_readonly",  "login": false, "comment": "role for global read-only access"},
    {"name": "dbrole_offline",   "login": false, "comment": "role for restricted read-only access"},
    {"name": "dbrole_readwrite", "login": false, "roles": ["dbrole_readonly"], "comment": "role for global read-write access"},
    {"name": "dbrole_admin",     "login": false, "roles": ["pg_monitor", "dbrole_readwrite"], "comment": "role for object creation"},
    {"name": "postgres",         "superuser": true, "comment": "system superuser"},
    {"name": "replicator",       "replication": true, "roles": ["pg_monitor", "dbrole_readonly"], "comment": "system replicator"},
    {"name": "dbuser_dba",       "superuser": true, "roles": ["dbrole_admin"], "pgbouncer": true, "pool_mode": "session", "pool_connlimit": 16, "comment": "pgsql admin user"},
    {"name": "dbuser_monitor",   "roles": ["pg_monitor", "dbrole_readonly"], "pgbouncer": true, "parameters": {"log_min_duration_statement": 1000}, "pool_mode": "session", "pool_connlimit": 8, "comment": "pgsql monitor user"}
  ],
  "pg_default_privileges": [
    "GRANT USAGE ON SCHEMAS TO dbrole_readonly", "GRANT SELECT ON TABLES TO dbrole_readonly",
    "GRANT SELECT ON SEQUENCES TO dbrole_readonly", "GRANT EXECUTE ON FUNCTIONS TO dbrole_readonly",
    "GRANT USAGE ON SCHEMAS TO dbrole_offline", "GRANT SELECT ON TABLES TO dbrole_offline",
    "GRANT SELECT ON SEQUENCES TO dbrole_offline", "GRANT EXECUTE ON FUNCTIONS TO dbrole_offline",
    "GRANT INSERT ON TABLES TO dbrole_readwrite", "GRANT UPDATE ON TABLES TO dbrole_readwrite",
    "GRANT DELETE ON TABLES TO dbrole_readwrite", "GRANT USAGE ON SEQUENCES TO dbrole_readwrite",
    "GRANT UPDATE ON SEQUENCES TO dbrole_readwrite", "GRANT TRUNCATE ON TABLES TO dbrole_admin",
    "GRANT REFERENCES ON TABLES TO dbrole_admin", "GRANT TRIGGER ON TABLES TO dbrole_admin",
    "GRANT CREATE ON SCHEMAS TO dbrole_admin"
  ],
  "pg_default_schemas": ["monitor"],
  "pg_default_extensions": [
    {"name": "pg_stat_statements", "schema": "monitor"}, {"name": "pgstattuple", "schema": "monitor"},
    {"name": "pg_buffercache", "schema": "monitor"}, {"name": "pageinspect", "schema": "monitor"},
    {"name": "pg_prewarm", "schema": "monitor"}, {"name": "pg_visibility", "schema": "monitor"},
    {"name": "pg_freespacemap", "schema": "monitor"},
    {"name": "postgres_fdw", "schema": "public"}, {"name": "file_fdw", "schema": "public"},
    {"name": "btree_gist", "schema": "public"}, {"name": "btree_gin", "schema": "public"},
    {"name": "pg_trgm", "schema": "public"}, {"name": "intagg", "schema": "public"},
    {"name": "intarray", "schema": "public"}, {"name": "pg_repack"}
  ]
}"#;

/// The role fields pgops loads (`pgops.load_roles`); other keys of a user entry are reported.
const USER_FIELDS: &[&str] = &[
    "name", "state", "password", "connlimit", "expire_in", "expire_at", "comment", "roles", "parameters", "pgbouncer",
    "pool_mode", "pool_connlimit", "login", "superuser", "createdb", "createrole", "inherit", "replication", "bypassrls",
];
/// The database fields pgops loads (`pgops.load_databases`).
const DATABASE_FIELDS: &[&str] = &[
    "name", "state", "owner", "template", "strategy", "encoding", "locale", "lc_collate", "lc_ctype", "tablespace",
    "locale_provider", "icu_locale", "icu_rules", "builtin_locale", "is_template", "allowconn", "revokeconn", "connlimit",
    "comment", "schemas", "extensions", "parameters", "grants", "baseline", "force", "pgbouncer", "pool_auth_user",
    "pool_mode", "pool_size", "pool_size_reserve", "pool_size_min", "pool_max_db_conn", "pool_reserve", "pool_connlimit",
    "register_datasource",
];
const HBA_FIELDS: &[&str] = &["title", "user", "db", "addr", "auth", "rules", "role", "order"];
/// Roles Pigsty never drops (`tasks/user.yml`).
const NEVER_DROPPED: &[&str] = &["postgres", "replicator", "dbuser_dba", "dbuser_monitor"];

/// The first YAML document of `text` as JSON (anchors resolved, `<<` merge keys applied; keys
/// that are not strings are written as YAML writes them).
pub fn yaml_to_json(text: &str) -> Result<Value> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| Error::invalid(format!("the inventory is not YAML: {e}")))?;
    let Some(doc) = docs.into_iter().next() else {
        bail_invalid!("the inventory is empty");
    };
    convert(&doc)
}

fn key_text(k: &Yaml) -> String {
    match k {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Null => "null".into(),
        _ => format!("{k:?}"),
    }
}

fn convert(y: &Yaml) -> Result<Value> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(r) => r.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or_else(|| Value::String(r.clone()), Value::Number),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(a) => Value::Array(a.iter().map(convert).collect::<Result<_>>()?),
        Yaml::Hash(h) => {
            let mut out = Map::new();
            // `<<: *anchor` (or a list of them): merged in below the map's own keys.
            if let Some(m) = h.get(&Yaml::String("<<".into())) {
                let merged: Vec<&Yaml> = match m {
                    Yaml::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                for src in merged.into_iter().rev() {
                    if let Value::Object(o) = convert(src)? {
                        out.extend(o);
                    }
                }
            }
            for (k, v) in h {
                let k = key_text(k);
                if k != "<<" {
                    out.insert(k, convert(v)?);
                }
            }
            Value::Object(out)
        }
        Yaml::Alias(_) | Yaml::BadValue => bail_invalid!("the inventory has a value YAML could not resolve (an unknown alias?)"),
    })
}

/// A host with the vars it resolves to, and the groups it sits in.
struct Host {
    name: String,
    vars: Map<String, Value>,
    groups: Vec<String>,
}

fn overlay(into: &mut Map<String, Value>, from: Option<&Value>) {
    if let Some(Value::Object(o)) = from {
        for (k, v) in o {
            into.insert(k.clone(), v.clone());
        }
    }
}

fn walk(name: &str, node: &Value, vars: &Map<String, Value>, groups: &[String], out: &mut Vec<Host>) {
    let mut vars = vars.clone();
    overlay(&mut vars, node.get("vars"));
    let mut groups = groups.to_vec();
    groups.push(name.to_string());
    if let Some(Value::Object(hosts)) = node.get("hosts") {
        for (h, hv) in hosts {
            let mut v = vars.clone();
            overlay(&mut v, Some(hv));
            out.push(Host {
                name: h.clone(),
                vars: v,
                groups: groups.clone(),
            });
        }
    }
    if let Some(Value::Object(children)) = node.get("children") {
        for (child, c) in children {
            walk(child, c, &vars, &groups, out);
        }
    }
}

fn text(v: &Map<String, Value>, key: &str) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn list(v: &Map<String, Value>, key: &str) -> Vec<Value> {
    v.get(key).and_then(Value::as_array).cloned().unwrap_or_default()
}

fn name_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Keeps an object's known fields; the others go to `ignored`.
fn known(kind: &str, v: &Value, fields: &[&str], ignored: &mut Vec<Ignored>) -> Value {
    let Value::Object(o) = v else { return v.clone() };
    let name = name_of(v).or_else(|| o.get("title").and_then(Value::as_str).map(str::to_string)).unwrap_or_default();
    let mut out = Map::new();
    for (k, x) in o {
        if fields.contains(&k.as_str()) {
            out.insert(k.clone(), x.clone());
        } else {
            ignored.push(Ignored {
                kind: kind.into(),
                name: name.clone(),
                why: format!("field {k}: not something pgops manages"),
            });
        }
    }
    Value::Object(out)
}

/// Schemas or extensions as objects, without duplicates by name (the first wins).
fn merge_named(a: &[Value], b: &[Value]) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    a.iter()
        .chain(b)
        .filter(|v| name_of(v).is_none_or(|n| seen.insert(n)))
        .cloned()
        .collect()
}

/// The `pgsql` role's defaults, with its default HBA rules (the ones `load_pigsty_hba` loads too).
fn defaults() -> Result<Map<String, Value>> {
    let internal = |e: serde_json::Error| Error::internal(format!("Pigsty defaults: {e}"));
    let mut base = serde_json::from_str::<Map<String, Value>>(DEFAULTS).map_err(internal)?;
    base.insert("pg_default_hba_rules".into(), serde_json::from_str(crate::hba::rules::PIGSTY_DEFAULTS).map_err(internal)?);
    Ok(base)
}

/// The clusters an inventory defines (every resolved `pg_cluster`), sorted.
pub fn clusters(inventory: &Value) -> Vec<String> {
    let mut hosts = vec![];
    let base = defaults().unwrap_or_default();
    if let Some(all) = inventory.get("all") {
        walk("all", all, &base, &[], &mut hosts);
    }
    let set: BTreeSet<String> = hosts.iter().filter_map(|h| text(&h.vars, "pg_cluster")).collect();
    set.into_iter().collect()
}

/// Resolves `cluster` in `inventory` (the YAML as JSON).
pub fn resolve(inventory: &Value, cluster: &str) -> Result<Cluster> {
    let Some(all) = inventory.get("all").filter(|a| a.is_object()) else {
        bail_invalid!("the inventory has no `all:` group (a Pigsty inventory starts with all: children: …, vars: …)");
    };
    let base = defaults()?;
    let mut hosts = vec![];
    walk("all", all, &base, &[], &mut hosts);
    let members: Vec<&Host> = hosts.iter().filter(|h| text(&h.vars, "pg_cluster").as_deref() == Some(cluster)).collect();
    if members.is_empty() {
        let names = clusters(inventory);
        bail_invalid!(
            "cluster \"{cluster}\" is not in the inventory (no host resolves pg_cluster to it); its clusters: {}",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        );
    }
    // Cluster-wide variables as the primary sees them (else the first member).
    let primary = members
        .iter()
        .find(|h| text(&h.vars, "pg_role").as_deref() == Some("primary"))
        .copied()
        .unwrap_or(members[0]);
    let v = &primary.vars;
    let mut out = Cluster {
        name: cluster.to_string(),
        members: members
            .iter()
            .map(|h| (h.name.clone(), text(&h.vars, "pg_role").unwrap_or_else(|| "replica".into())))
            .collect(),
        ..Cluster::default()
    };
    let dbsu = text(v, "pg_dbsu").unwrap_or_else(|| "postgres".into());
    let admin = text(v, "pg_admin_username").unwrap_or_else(|| "dbuser_dba".into());
    let monitor = text(v, "pg_monitor_username").unwrap_or_else(|| "dbuser_monitor".into());
    let repl = text(v, "pg_replication_username").unwrap_or_else(|| "replicator".into());

    // --- roles ---------------------------------------------------------------------------------
    let mut roles: Vec<(String, Value)> = vec![];
    let defaults = list(v, "pg_default_roles");
    let users = list(v, "pg_users");
    for (from_users, entry) in defaults.iter().map(|e| (false, e)).chain(users.iter().map(|e| (true, e))) {
        let (Some(name), true) = (name_of(entry), entry.is_object()) else {
            // Never echoed: the entry may hold a password.
            out.ignored.push(Ignored { kind: "user".into(), name: name_of(entry).unwrap_or_default(), why: "not a user object with a name".into() });
            continue;
        };
        let mut e = known("user", entry, USER_FIELDS, &mut out.ignored);
        if from_users && e.get("comment").is_none() && !roles.iter().any(|(n, _)| *n == name) {
            e["comment"] = json!(format!("business user {name}"));
        }
        let absent = matches!(e.get("state").and_then(Value::as_str), Some("absent"));
        if absent && NEVER_DROPPED.contains(&name.as_str()) {
            out.ignored.push(Ignored { kind: "user".into(), name: name.clone(), why: "state absent: Pigsty never drops its system users".into() });
            continue;
        }
        match roles.iter_mut().find(|(n, _)| *n == name) {
            // Declared twice (a default role in pg_users): Pigsty runs both; the later keys win.
            Some((_, have)) => {
                if let (Value::Object(h), Value::Object(n)) = (have, &e) {
                    for (k, x) in n {
                        h.insert(k.clone(), x.clone());
                    }
                }
            }
            None => roles.push((name, e)),
        }
    }
    // pg-init-template.sql: ALTER USER <monitor> SET search_path TO monitor,public.
    if let Some((_, m)) = roles.iter_mut().find(|(n, _)| *n == monitor) {
        let params = m.as_object_mut().map(|o| o.entry("parameters").or_insert_with(|| json!({})));
        if let Some(Value::Object(p)) = params
            && !p.contains_key("search_path")
        {
            p.insert("search_path".into(), json!("monitor,public"));
        }
    }
    // The system users' passwords, where the inventory sets them (Pigsty's own defaults are public).
    for (user, var) in [(&repl, "pg_replication_password"), (&monitor, "pg_monitor_password"), (&admin, "pg_admin_password")] {
        let declared = inventory_declares(inventory, primary, var);
        match (text(v, var), declared) {
            (Some(p), true) if !p.is_empty() => {
                if let Some((_, r)) = roles.iter_mut().find(|(n, _)| n == user) {
                    r["password"] = json!(p);
                }
            }
            _ => out.ignored.push(Ignored {
                kind: "user".into(),
                name: user.clone(),
                why: format!("{var} is not set in the inventory: Pigsty's default password is public and is not set"),
            }),
        }
    }
    out.roles = roles.into_iter().map(|(_, r)| r).collect();

    // --- default privileges -----------------------------------------------------------------------
    let lines: Vec<String> = list(v, "pg_default_privileges").iter().filter_map(|l| l.as_str().map(str::to_string)).collect();
    out.default_privileges.push((lines.clone(), vec![dbsu.clone(), admin.clone(), "dbrole_admin".into()], "*".into()));

    // --- databases --------------------------------------------------------------------------------
    let default_schemas: Vec<Value> = list(v, "pg_default_schemas");
    let default_extensions: Vec<Value> = list(v, "pg_default_extensions");
    let public_admin = json!({"name": "public", "create": ["dbrole_admin"]});
    let public_none = json!({"name": "public", "create": []});
    let mut dbs: Vec<Value> = vec![];
    for name in ["template1", "postgres"] {
        dbs.push(json!({"name": name, "schemas": merge_named(&[public_none.clone()], &default_schemas), "extensions": default_extensions}));
    }
    for entry in list(v, "pg_databases") {
        let (Some(name), true) = (name_of(&entry), entry.is_object()) else {
            out.ignored.push(Ignored { kind: "database".into(), name: name_of(&entry).unwrap_or_default(), why: "not a database object with a name".into() });
            continue;
        };
        let mut e = known("database", &entry, DATABASE_FIELDS, &mut out.ignored);
        if e.get("comment").is_none() {
            e["comment"] = json!(format!("business database {name}"));
        }
        // pg-db.sql, always: CREATE on the database and on public for dbrole_admin only.
        let mut grants = e.get("grants").and_then(Value::as_array).cloned().unwrap_or_default();
        grants.push(json!({"grantee": "dbrole_admin", "privileges": ["CREATE"]}));
        if e.get("revokeconn").and_then(Value::as_bool) == Some(true) && e.get("owner").and_then(Value::as_str) != Some(admin.as_str()) {
            grants.push(json!({"grantee": admin, "privileges": ["CONNECT"], "grant_option": true}));
        }
        e["grants"] = Value::Array(grants);
        let schemas = e.get("schemas").and_then(Value::as_array).cloned().unwrap_or_default();
        e["schemas"] = Value::Array(merge_named(&[public_admin.clone()], &schemas));
        if let Some(owner) = e.get("owner").and_then(Value::as_str).filter(|_| !matches!(e.get("state").and_then(Value::as_str), Some("absent"))) {
            out.default_privileges.push((lines.clone(), vec![owner.to_string()], name.clone()));
        }
        match dbs.iter_mut().find(|d| name_of(d).as_deref() == Some(name.as_str())) {
            // postgres declared again: both templates run; its schemas and extensions add up.
            Some(have) => {
                let (hs, he) = (list(have.as_object().expect("an object"), "schemas"), list(have.as_object().expect("an object"), "extensions"));
                let (ns, ne) = (list(e.as_object().expect("an object"), "schemas"), list(e.as_object().expect("an object"), "extensions"));
                let mut merged = e.clone();
                merged["schemas"] = Value::Array(merge_named(&ns, &hs));
                merged["extensions"] = Value::Array(merge_named(&he, &ne));
                *have = merged;
            }
            None => dbs.push(e),
        }
    }
    out.databases = dbs;

    // --- HBA ----------------------------------------------------------------------------------------
    let mut rules: Vec<Value> = list(v, "pg_default_hba_rules");
    rules.extend(list(v, "pg_hba_rules"));
    let mut ordered: Vec<(i64, usize, Value)> = vec![];
    let mut unordered: Vec<Value> = vec![];
    for (i, r) in rules.iter().enumerate() {
        if !r.is_object() {
            out.ignored.push(Ignored { kind: "hba rule".into(), name: String::new(), why: format!("not a rule object: {r}") });
            continue;
        }
        let mut r = known("hba rule", r, HBA_FIELDS, &mut out.ignored);
        if let Some(a) = r.get("addr").and_then(Value::as_str) {
            let a = match a {
                "intranet" => "intra",
                "all" => "world",
                other => other,
            };
            r["addr"] = json!(a);
        }
        match r.get("order").and_then(Value::as_i64) {
            Some(o) => ordered.push((o, i, r)),
            None => unordered.push(r),
        }
    }
    ordered.sort_by_key(|(o, i, _)| (*o, *i));
    // Pigsty renders rules without an order after all the others, in declaration order.
    let last = ordered.iter().map(|(o, _, _)| *o).max().unwrap_or(0).max(1000);
    out.hba_rules = ordered.into_iter().map(|(_, _, r)| r).collect();
    for r in unordered {
        let mut r = r;
        r["order"] = json!(last + 1);
        out.hba_rules.push(r);
    }
    for k in ["pgb_hba_rules", "pgb_default_hba_rules"] {
        if v.get(k).and_then(Value::as_array).is_some_and(|a| !a.is_empty()) && inventory_declares(inventory, primary, k) {
            out.ignored.push(Ignored { kind: "hba rule".into(), name: k.into(), why: "pgbouncer's HBA file is pgbouncer's, not pg_hba.conf".into() });
        }
    }
    let ips = |hs: Vec<&Host>| -> Vec<String> {
        hs.iter().map(|h| h.name.clone()).filter(|n| crate::hba::line::parse_net(n).is_some()).collect()
    };
    out.aliases.insert("${dbsu}".into(), vec![dbsu]);
    out.aliases.insert("${repl}".into(), vec![repl]);
    out.aliases.insert("${admin}".into(), vec![admin]);
    out.aliases.insert("${monitor}".into(), vec![monitor]);
    if let Some(a) = text(v, "admin_ip") {
        out.aliases.insert("admin".into(), vec![a]);
    }
    let infra: Vec<&Host> = hosts.iter().filter(|h| h.groups.iter().any(|g| g == "infra")).collect();
    if !infra.is_empty() {
        out.aliases.insert("infra".into(), ips(infra));
    }
    out.aliases.insert("cluster".into(), ips(members.clone()));
    let intra: Vec<String> = list(v, "node_firewall_intranet").iter().filter_map(|x| x.as_str().map(str::to_string)).collect();
    out.aliases.insert("intra".into(), intra);
    for h in &members {
        if crate::hba::line::parse_net(&h.name).is_none() {
            out.ignored.push(Ignored {
                kind: "hba alias".into(),
                name: h.name.clone(),
                why: "a cluster member that is not an IP address: left out of the cluster alias".into(),
            });
        }
    }
    Ok(out)
}

/// Whether the inventory itself (not pgops' copy of Pigsty's defaults) sets `var` for this host.
fn inventory_declares(inventory: &Value, host: &Host, var: &str) -> bool {
    let mut found = inventory.pointer("/all/vars").and_then(|v| v.get(var)).is_some();
    fn in_groups(node: &Value, name: &str, groups: &[String], host: &str, var: &str, found: &mut bool) {
        if groups.first().map(String::as_str) != Some(name) {
            return;
        }
        if name != "all" && node.get("vars").and_then(|v| v.get(var)).is_some() {
            *found = true;
        }
        if groups.len() == 1 {
            if node.get("hosts").and_then(|h| h.get(host)).and_then(|h| h.get(var)).is_some() {
                *found = true;
            }
            return;
        }
        if let Some(Value::Object(children)) = node.get("children") {
            for (c, n) in children {
                in_groups(n, c, &groups[1..], host, var, found);
            }
        }
    }
    if let Some(all) = inventory.get("all") {
        in_groups(all, "all", &host.groups, &host.name, var, &mut found);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY: &str = r#"
all:
  children:
    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }
    pg-meta:
      hosts:
        10.10.10.11: { pg_seq: 1, pg_role: primary }
        10.10.10.12: { pg_seq: 2, pg_role: replica, pg_offline_query: true }
      vars:
        pg_cluster: pg-meta
        pg_users:
          - { name: dbuser_meta, password: DBUser.Meta, pgbouncer: true, roles: [ dbrole_admin ], comment: pigsty admin user }
          - { name: dbuser_view, password: DBUser.Viewer, roles: [ dbrole_readonly ] }
          - { name: dbuser_dba, connlimit: 32 }
        pg_databases:
          - { name: meta, baseline: cmdb.sql, comment: pigsty meta database, schemas: [ pigsty ], extensions: [ { name: vector }, postgis ] }
          - { name: grafana, owner: dbuser_grafana, revokeconn: true, register_datasource: false, xyz: 1 }
          - { name: postgres, baseline: supa.sql, owner: supabase_admin, schemas: [ extensions ] }
        pg_hba_rules:
          - { user: dbuser_view, db: all, addr: infra, auth: pwd, title: allow grafana dashboard access cmdb from infra nodes }
          - { user: all, db: all, addr: intranet, auth: md5, title: everyone from the intranet, order: 700 }
    pg-citus:
      hosts:
        10.10.10.21: { pg_cluster: pg-citus1, pg_seq: 1, pg_role: primary }
        10.10.10.22: { pg_cluster: pg-citus2, pg_seq: 1, pg_role: primary }
      vars: &citus
        pg_users: [ { name: dbuser_citus, password: x } ]
  vars:
    admin_ip: 10.10.10.10
    pg_admin_password: Adm1n.Secret
    node_firewall_intranet: [ 10.0.0.0/8 ]
"#;

    fn meta() -> Cluster {
        resolve(&yaml_to_json(INVENTORY).unwrap(), "pg-meta").unwrap()
    }

    #[test]
    fn clusters_are_found_by_their_resolved_name() {
        let inv = yaml_to_json(INVENTORY).unwrap();
        assert_eq!(clusters(&inv), vec!["pg-citus1", "pg-citus2", "pg-meta"]);
        let c = resolve(&inv, "pg-citus2").unwrap();
        assert_eq!(c.members, vec![("10.10.10.22".to_string(), "primary".to_string())]);
        assert!(c.roles.iter().any(|r| r["name"] == "dbuser_citus"));
        let e = resolve(&inv, "nope").unwrap_err();
        assert!(e.message.contains("cluster \"nope\" is not in the inventory") && e.message.contains("pg-citus1, pg-citus2, pg-meta"), "{}", e.message);
        assert!(yaml_to_json("all: [").is_err());
    }

    #[test]
    fn users_as_pigsty_creates_them() {
        let c = meta();
        let names: Vec<&str> = c.roles.iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(&names[..8], &["dbrole_readonly", "dbrole_offline", "dbrole_readwrite", "dbrole_admin", "postgres", "replicator", "dbuser_dba", "dbuser_monitor"]);
        // postgres: only what Pigsty declares (superuser), nothing stripped.
        assert_eq!(c.roles[4], json!({"name": "postgres", "superuser": true, "comment": "system superuser"}));
        // A default role declared again in pg_users: merged, key by key.
        let dba = c.roles.iter().find(|r| r["name"] == "dbuser_dba").unwrap();
        assert_eq!((dba["connlimit"].clone(), dba["superuser"].clone(), dba["password"].clone()), (json!(32), json!(true), json!("Adm1n.Secret")));
        let view = c.roles.iter().find(|r| r["name"] == "dbuser_view").unwrap();
        assert_eq!(view["comment"], "business user dbuser_view");
        let mon = c.roles.iter().find(|r| r["name"] == "dbuser_monitor").unwrap();
        assert_eq!(mon["parameters"], json!({"log_min_duration_statement": 1000, "search_path": "monitor,public"}));
        assert!(mon.get("password").is_none());
        assert!(c.ignored.iter().any(|i| i.name == "dbuser_monitor" && i.why.contains("pg_monitor_password is not set")));
    }

    #[test]
    fn databases_as_pigsty_builds_them() {
        let c = meta();
        let names: Vec<&str> = c.databases.iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["template1", "postgres", "meta", "grafana"]);
        let t1 = &c.databases[0];
        assert_eq!(t1["schemas"][0], json!({"name": "public", "create": []}));
        assert_eq!(t1["schemas"][1], json!("monitor"));
        assert_eq!(t1["extensions"].as_array().unwrap().len(), 15);
        // postgres declared again: its own fields, its schemas and the defaults together.
        let pg = &c.databases[1];
        assert_eq!((pg["owner"].clone(), pg["baseline"].clone()), (json!("supabase_admin"), json!("supa.sql")));
        let schemas: Vec<String> = pg["schemas"].as_array().unwrap().iter().map(|s| name_of(s).unwrap()).collect();
        assert_eq!(schemas, vec!["public", "extensions", "monitor"]);
        let meta = &c.databases[2];
        assert_eq!(meta["comment"], "pigsty meta database");
        assert_eq!(meta["grants"], json!([{"grantee": "dbrole_admin", "privileges": ["CREATE"]}]));
        let grafana = &c.databases[3];
        assert_eq!(grafana["comment"], "business database grafana");
        assert_eq!(grafana["grants"][1], json!({"grantee": "dbuser_dba", "privileges": ["CONNECT"], "grant_option": true}));
        assert!(c.ignored.iter().any(|i| i.kind == "database" && i.name == "grafana" && i.why.contains("field xyz")));
        // Default privileges: the three creators everywhere, each owner in its database.
        assert_eq!(c.default_privileges[0].1, vec!["postgres", "dbuser_dba", "dbrole_admin"]);
        assert_eq!(c.default_privileges[0].2, "*");
        let owners: Vec<(Vec<String>, String)> = c.default_privileges[1..].iter().map(|(_, o, d)| (o.clone(), d.clone())).collect();
        assert_eq!(owners, vec![(vec!["dbuser_grafana".to_string()], "grafana".to_string()), (vec!["supabase_admin".to_string()], "postgres".to_string())]);
    }

    #[test]
    fn hba_as_pigsty_orders_and_names_it() {
        let c = meta();
        let titles: Vec<&str> = c.hba_rules.iter().map(|r| r["title"].as_str().unwrap()).collect();
        assert_eq!(titles[0], "dbsu access via local os user ident");
        // order 700 among the defaults; the rule without an order last.
        assert_eq!(titles[12], "everyone from the intranet");
        assert_eq!(*titles.last().unwrap(), "allow grafana dashboard access cmdb from infra nodes");
        assert_eq!(c.hba_rules[12]["addr"], "intra");
        assert_eq!(c.aliases["infra"], vec!["10.10.10.10"]);
        assert_eq!(c.aliases["cluster"], vec!["10.10.10.11", "10.10.10.12"]);
        assert_eq!(c.aliases["intra"], vec!["10.0.0.0/8"]);
        assert_eq!(c.aliases["admin"], vec!["10.10.10.10"]);
        assert_eq!(c.aliases["${monitor}"], vec!["dbuser_monitor"]);
    }

    #[test]
    fn entries_that_are_not_objects_are_left_out_without_echoing_them() {
        let inv = yaml_to_json("all:\n  children:\n    c:\n      hosts: { 10.0.0.1: { pg_role: primary } }\n      vars: { pg_cluster: c, pg_users: [ alice, { password: S3cret } ], pg_databases: [ db1 ], pg_hba_rules: [ x ] }\n").unwrap();
        let c = resolve(&inv, "c").unwrap();
        assert!(c.roles.iter().all(|r| r["name"] != "alice"));
        assert!(c.ignored.iter().all(|i| !i.why.contains("S3cret")));
        assert!(c.ignored.iter().any(|i| i.kind == "database" && i.name == "db1"));
        assert!(c.ignored.iter().any(|i| i.kind == "hba rule"));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let v = yaml_to_json("a: &x { p: 1, q: 2 }\nb: { <<: *x, q: 3 }\nc: *x\n").unwrap();
        assert_eq!(v["b"], json!({"p": 1, "q": 3}));
        assert_eq!(v["c"], json!({"p": 1, "q": 2}));
    }
}
