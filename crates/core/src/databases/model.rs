//! Declared databases: Pigsty's `pg_databases` entries as plain data, parsed and validated.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::bail_invalid;
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Pigsty's `create` is accepted as `present`.
    #[serde(alias = "create")]
    Present,
    Absent,
    Recreate,
}

/// A schema inside a declared database (`"name"` or `{name, owner, state}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SchemaSpec {
    pub name: String,
    pub owner: Option<String>,
    pub present: bool,
    /// Roles besides its owner that hold CREATE on it (PUBLIC loses it unless listed; other
    /// roles' grants are left alone); None: not managed. Pigsty gives `public` to `dbrole_admin`
    /// and takes it from PUBLIC.
    pub create: Option<Vec<String>>,
}

/// An extension inside a declared database (`"name"` or `{name, schema, version, state}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExtensionSpec {
    pub name: String,
    pub schema: Option<String>,
    pub version: Option<String>,
    pub present: bool,
}

/// Database privileges a declared grantee holds: exactly these (CONNECT, CREATE, TEMPORARY).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    pub grantee: String,
    pub privileges: Vec<String>,
    #[serde(default)]
    pub grant_option: bool,
}

/// One declared database, with Pigsty's field names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSpec {
    pub name: String,
    #[serde(default = "present")]
    pub state: State,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub strategy: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub lc_collate: Option<String>,
    #[serde(default)]
    pub lc_ctype: Option<String>,
    #[serde(default)]
    pub tablespace: Option<String>,
    /// Pigsty v4: `libc`, `icu` or `builtin` (PG 15+ / builtin 17+), with `icu_locale`,
    /// `icu_rules` (PG 16+) and `builtin_locale` (PG 17+).
    #[serde(default)]
    pub locale_provider: Option<String>,
    #[serde(default)]
    pub icu_locale: Option<String>,
    #[serde(default)]
    pub icu_rules: Option<String>,
    #[serde(default)]
    pub builtin_locale: Option<String>,
    #[serde(default)]
    pub is_template: Option<bool>,
    #[serde(default)]
    pub allowconn: Option<bool>,
    #[serde(default)]
    pub revokeconn: Option<bool>,
    #[serde(default)]
    pub connlimit: Option<i32>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default, deserialize_with = "schemas")]
    pub schemas: Vec<SchemaSpec>,
    #[serde(default, deserialize_with = "extensions")]
    pub extensions: Vec<ExtensionSpec>,
    #[serde(default, deserialize_with = "parameters")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub grants: Vec<GrantSpec>,
    #[serde(default)]
    pub baseline: Option<String>,
    /// The file the baseline was read from (in `pgops.baseline_directory`), when it came from one.
    #[serde(default)]
    pub baseline_file: Option<String>,
    /// Drop with `WITH (FORCE)`: sessions connected to it are terminated. Without it, a database
    /// with sessions is not dropped (the statement fails and says so).
    #[serde(default)]
    pub force: bool,
    #[serde(default = "yes")]
    pub pgbouncer: bool,
    #[serde(default)]
    pub pool_auth_user: Option<String>,
    #[serde(default)]
    pub pool_mode: Option<String>,
    #[serde(default)]
    pub pool_size: Option<i32>,
    #[serde(default, alias = "pool_reserve")]
    pub pool_size_reserve: Option<i32>,
    #[serde(default)]
    pub pool_size_min: Option<i32>,
    #[serde(default, alias = "pool_connlimit")]
    pub pool_max_db_conn: Option<i32>,
    #[serde(default = "yes")]
    pub register_datasource: bool,
}

fn present() -> State {
    State::Present
}
fn yes() -> bool {
    true
}

fn state_of(v: Option<&Value>) -> std::result::Result<bool, String> {
    match v.and_then(Value::as_str) {
        None | Some("present") | Some("create") => Ok(true),
        Some("absent") => Ok(false),
        Some(other) => Err(format!("state \"{other}\" (present or absent)")),
    }
}

fn text(v: Option<&Value>, field: &str) -> std::result::Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("{field} must be a string, not {other}")),
    }
}

fn objects<'de, D: Deserializer<'de>>(d: D, kind: &str, fields: &[&str]) -> std::result::Result<Vec<serde_json::Map<String, Value>>, D::Error> {
    let v = Value::deserialize(d)?;
    let list = match v {
        Value::Null => return Ok(vec![]),
        Value::Array(a) => a,
        other => return Err(serde::de::Error::custom(format!("{kind} must be a list, not {other}"))),
    };
    let mut out = vec![];
    for item in list {
        let m = match item {
            Value::String(name) => serde_json::Map::from_iter([("name".to_string(), Value::String(name))]),
            Value::Object(m) => m,
            other => return Err(serde::de::Error::custom(format!("{kind} entries are names or objects, not {other}"))),
        };
        if let Some(k) = m.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(serde::de::Error::custom(format!(
                "{kind} entry has an unknown field \"{k}\" (known: {})",
                fields.join(", ")
            )));
        }
        out.push(m);
    }
    Ok(out)
}

/// A baseline that names a file (Pigsty's `cmdb.sql`) rather than holding SQL.
pub fn looks_like_file(b: &str) -> bool {
    let t = b.trim();
    t.ends_with(".sql") && !t.contains(char::is_whitespace) && !t.contains(';')
}

/// A baseline file name pgops may read inside `pgops.baseline_directory`: a relative path of
/// plain components (no `..`, no absolute path, no NUL or control character).
pub fn check_baseline_file(name: &str) -> Result<()> {
    let p = std::path::Path::new(name);
    let plain = !name.is_empty()
        && !name.chars().any(char::is_control)
        && p.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain {
        bail_invalid!("baseline \"{name}\": a file name inside pgops.baseline_directory (no absolute path, no ..)");
    }
    Ok(())
}

/// A baseline's digest: what `pgops.baseline_run` records, so each content runs once.
pub fn baseline_digest(sql: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(sql.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn schemas<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<SchemaSpec>, D::Error> {
    objects(d, "schemas", &["name", "owner", "state", "create"])?
        .into_iter()
        .map(|m| {
            let create = match m.get("create") {
                None | Some(Value::Null) => None,
                Some(Value::Array(a)) => Some(
                    a.iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<Vec<String>>>()
                        .ok_or_else(|| serde::de::Error::custom("schemas.create: a list of role names"))?,
                ),
                Some(_) => return Err(serde::de::Error::custom("schemas.create: a list of role names")),
            };
            Ok(SchemaSpec {
                name: text(m.get("name"), "schemas.name").map_err(serde::de::Error::custom)?.unwrap_or_default(),
                owner: text(m.get("owner"), "schemas.owner").map_err(serde::de::Error::custom)?,
                present: state_of(m.get("state")).map_err(serde::de::Error::custom)?,
                create,
            })
        })
        .collect()
}

fn extensions<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<ExtensionSpec>, D::Error> {
    objects(d, "extensions", &["name", "schema", "version", "state"])?
        .into_iter()
        .map(|m| {
            Ok(ExtensionSpec {
                name: text(m.get("name"), "extensions.name").map_err(serde::de::Error::custom)?.unwrap_or_default(),
                schema: text(m.get("schema"), "extensions.schema").map_err(serde::de::Error::custom)?,
                version: text(m.get("version"), "extensions.version").map_err(serde::de::Error::custom)?,
                present: state_of(m.get("state")).map_err(serde::de::Error::custom)?,
            })
        })
        .collect()
}

fn parameters<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                Value::Number(n) => Ok((k, n.to_string())),
                Value::Bool(b) => Ok((k, if b { "on".into() } else { "off".into() })),
                other => Err(serde::de::Error::custom(format!(
                    "parameters.{k} must be a string, number or boolean, not {other}"
                ))),
            })
            .collect(),
        other => Err(serde::de::Error::custom(format!(
            "parameters must be an object (setting → value), not {other}"
        ))),
    }
}

/// Database names pgops never drops or recreates, whatever the config says.
pub const ALWAYS_PROTECTED: [&str; 3] = ["postgres", "template0", "template1"];

const PRIVILEGES: [&str; 3] = ["CONNECT", "CREATE", "TEMPORARY"];

/// A name PostgreSQL accepts as an identifier: 1–63 bytes, no NUL.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        bail_invalid!("{what} \"{}\" must be 1 to 63 bytes without NUL", name.escape_debug());
    }
    Ok(())
}

/// The privilege names of a grant, upper case, TEMP spelled TEMPORARY; ALL expands.
pub fn normalise_privileges(list: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = vec![];
    for p in list {
        let p = p.trim().to_ascii_uppercase();
        let names: Vec<&str> = match p.as_str() {
            "ALL" | "ALL PRIVILEGES" => PRIVILEGES.to_vec(),
            "TEMP" => vec!["TEMPORARY"],
            x if PRIVILEGES.contains(&x) => vec![x],
            _ => bail_invalid!("privilege \"{p}\" is not a database privilege (CONNECT, CREATE, TEMPORARY or ALL)"),
        };
        for n in names {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

impl DatabaseSpec {
    /// Parses one Pigsty-shaped entry; the error names the field.
    pub fn parse(v: &Value) -> Result<DatabaseSpec> {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("?").to_string();
        let spec: DatabaseSpec = serde_json::from_value(v.clone())
            .map_err(|e| crate::invalid!("database \"{}\": {e}", name.escape_debug()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks every field; the error names the database and the field.
    pub fn validate(&self) -> Result<()> {
        let n = &self.name;
        let at = |field: &str, msg: String| crate::invalid!("database \"{}\", field {field}: {msg}", n.escape_debug());
        check_name("database", n)?;
        for (field, v) in [
            ("owner", &self.owner),
            ("template", &self.template),
            ("tablespace", &self.tablespace),
            ("pool_auth_user", &self.pool_auth_user),
        ] {
            if let Some(v) = v {
                check_name(field, v).map_err(|e| at(field, e.message))?;
            }
        }
        if let Some(s) = &self.strategy
            && !matches!(s.to_ascii_uppercase().as_str(), "WAL_LOG" | "FILE_COPY")
        {
            return Err(at("strategy", format!("\"{s}\" is not WAL_LOG or FILE_COPY")));
        }
        if let Some(p) = &self.locale_provider
            && !matches!(p.as_str(), "libc" | "icu" | "builtin")
        {
            return Err(at("locale_provider", format!("\"{p}\" is not libc, icu or builtin")));
        }
        for (field, v) in [
            ("encoding", &self.encoding),
            ("locale", &self.locale),
            ("lc_collate", &self.lc_collate),
            ("lc_ctype", &self.lc_ctype),
            ("icu_locale", &self.icu_locale),
            ("builtin_locale", &self.builtin_locale),
        ] {
            if let Some(v) = v
                && (v.is_empty() || v.len() > 128 || v.contains('\0'))
            {
                return Err(at(field, format!("\"{}\" is empty, too long or has a NUL", v.escape_debug())));
            }
        }
        if let Some(c) = self.connlimit
            && c < -1
        {
            return Err(at("connlimit", format!("{c} (-1 for no limit, or 0 and more)")));
        }
        for s in &self.schemas {
            check_name("schema", &s.name).map_err(|e| at("schemas", e.message))?;
            if let Some(o) = &s.owner {
                check_name("schema owner", o).map_err(|e| at("schemas", e.message))?;
            }
        }
        for x in &self.extensions {
            check_name("extension", &x.name).map_err(|e| at("extensions", e.message))?;
            if let Some(s) = &x.schema {
                check_name("extension schema", s).map_err(|e| at("extensions", e.message))?;
            }
            if let Some(v) = &x.version
                && (v.is_empty() || v.contains('\0'))
            {
                return Err(at("extensions", format!("version of \"{}\" is empty", x.name)));
            }
        }
        for (k, v) in &self.parameters {
            if k.split('.').any(|part| part.is_empty()) || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                return Err(at("parameters", format!("\"{}\" is not a setting name", k.escape_debug())));
            }
            if v.contains('\0') {
                return Err(at("parameters", format!("the value of {k} has a NUL")));
            }
        }
        for g in &self.grants {
            check_name("grantee", &g.grantee).map_err(|e| at("grants", e.message))?;
            if g.grantee.eq_ignore_ascii_case("public") {
                return Err(at(
                    "grants",
                    "PUBLIC is not a grantee here: revokeconn decides whether every role may connect".into(),
                ));
            }
            normalise_privileges(&g.privileges).map_err(|e| at("grants", e.message))?;
        }
        if let Some(b) = &self.baseline {
            if b.contains('\0') {
                return Err(at("baseline", "has a NUL".into()));
            }
            // Pigsty's baseline is a file name its playbook runs with psql -f; here it is the SQL.
            let t = b.trim();
            if self.baseline_file.is_none() && looks_like_file(t) {
                return Err(at(
                    "baseline",
                    format!(
                        "\"{t}\" looks like a file name: load it with pgops.load_databases() or pgops.load_pigsty(), \
                         which read it from pgops.baseline_directory, or put the SQL text itself here"
                    ),
                ));
            }
        }
        if let Some(m) = &self.pool_mode
            && !matches!(m.as_str(), "session" | "transaction" | "statement")
        {
            return Err(at("pool_mode", format!("\"{m}\" is not session, transaction or statement")));
        }
        for (field, v) in [
            ("pool_size", self.pool_size),
            ("pool_size_reserve", self.pool_size_reserve),
            ("pool_size_min", self.pool_size_min),
            ("pool_max_db_conn", self.pool_max_db_conn),
        ] {
            if let Some(v) = v
                && v < 0
            {
                return Err(at(field, format!("{v} must not be negative")));
            }
        }
        if self.state != State::Present && ALWAYS_PROTECTED.contains(&n.as_str()) {
            return Err(at(
                "state",
                format!("{n} is never dropped or recreated by pgops"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pigsty_entries_parse() {
        let d = DatabaseSpec::parse(&json!({
            "name": "meta", "baseline": "CREATE TABLE t (id int);", "schemas": ["pigsty", {"name": "x", "owner": "u", "state": "absent"}],
            "extensions": [{"name": "postgis", "schema": "public"}, "pg_trgm"], "comment": "pigsty meta database",
            "owner": "postgres", "template": "template1", "encoding": "UTF8", "locale": "C", "lc_collate": "C", "lc_ctype": "C",
            "tablespace": "pg_default", "allowconn": true, "revokeconn": false, "register_datasource": true, "connlimit": -1,
            "pool_auth_user": "dbuser_meta", "pool_mode": "transaction", "pool_size": 64, "pool_reserve": 32, "pool_size_min": 0,
            "pool_connlimit": 100, "parameters": {"work_mem": "64MB", "jit": false, "statement_timeout": 30000}, "state": "create",
            "strategy": "FILE_COPY", "is_template": false, "locale_provider": "icu", "icu_locale": "en-US"
        }))
        .unwrap();
        assert_eq!(d.state, State::Present);
        assert_eq!(d.schemas[1], SchemaSpec { name: "x".into(), owner: Some("u".into()), present: false, create: None });
        assert_eq!(d.extensions[1].name, "pg_trgm");
        assert_eq!((d.pool_size_reserve, d.pool_max_db_conn), (Some(32), Some(100)));
        assert_eq!(d.parameters["jit"], "off");
        assert_eq!(d.parameters["statement_timeout"], "30000");
        assert!(d.pgbouncer);
    }

    #[test]
    fn mistakes_name_the_database_and_field() {
        let e = |v: Value| DatabaseSpec::parse(&v).unwrap_err().message;
        assert!(e(json!({"name": "a", "strategy": "COPY"})).contains("database \"a\", field strategy"));
        assert!(e(json!({"name": "a", "connlimit": -5})).contains("field connlimit"));
        assert!(e(json!({"name": "a", "colour": 1})).contains("unknown field `colour`"));
        assert!(e(json!({"name": "a", "schemas": [{"nom": "x"}]})).contains("unknown field \"nom\""));
        assert!(e(json!({"name": "a", "parameters": {"bad name": "1"}})).contains("not a setting name"));
        assert!(e(json!({"name": "a", "grants": [{"grantee": "u", "privileges": ["SELECT"]}]})).contains("not a database privilege"));
        assert!(e(json!({"name": "postgres", "state": "absent"})).contains("never dropped"));
        assert!(e(json!({"name": "a", "pool_mode": "x"})).contains("field pool_mode"));
        assert!(e(json!({"name": "a", "baseline": "cmdb.sql"})).contains("looks like a file name"));
        assert!(DatabaseSpec::parse(&json!({"name": "a", "baseline": "cmdb.sql", "baseline_file": "cmdb.sql"})).is_ok());
        for bad in ["/etc/passwd", "../x.sql", "a/../../x.sql", "", "a\nb.sql"] {
            assert!(check_baseline_file(bad).is_err(), "{bad:?}");
        }
        assert!(check_baseline_file("cmdb.sql").is_ok() && check_baseline_file("app/schema.sql").is_ok());
        assert!(e(json!({"name": "a", "parameters": {"a..b": "1"}})).contains("not a setting name"));
        assert!(e(json!({"name": "a", "grants": [{"grantee": "public", "privileges": ["CONNECT"]}]})).contains("revokeconn decides"));
        assert!(e(json!({"name": "a", "locale_provider": "x"})).contains("field locale_provider"));
        assert!(e(json!({"name": "", "owner": "x"})).contains("1 to 63 bytes"));
    }

    #[test]
    fn privileges_normalise() {
        let p = |v: &[&str]| normalise_privileges(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        assert_eq!(p(&["temp", "connect"]), vec!["CONNECT", "TEMPORARY"]);
        assert_eq!(p(&["ALL"]), vec!["CONNECT", "CREATE", "TEMPORARY"]);
    }
}
