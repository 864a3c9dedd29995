//! Desired state: roles, memberships, settings and default privileges, with Pigsty's field names.
//! Pure: parsing of Pigsty-shaped JSON and of `GRANT … ON TABLES TO …` strings, validation.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Result;
use crate::{bail_invalid, invalid};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::attributes::{ATTRIBUTES, Attributes};

/// PostgreSQL's NAMEDATALEN - 1.
pub const MAX_NAME_BYTES: usize = 63;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The role granted.
    pub role: String,
    #[serde(default)]
    pub admin: bool,
    /// PG16+: INHERIT option (None: server default, the member's INHERIT attribute).
    #[serde(default)]
    pub inherit: Option<bool>,
    /// PG16+: SET option (None: server default, true).
    #[serde(default)]
    pub set: Option<bool>,
}

/// How VALID UNTIL is wanted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiry {
    /// `expire_in` days from today (Pigsty slides it forward on every apply).
    InDays(i32),
    /// `expire_at`: a date or timestamp as PostgreSQL reads it.
    At(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSpec {
    pub name: String,
    /// false: `state: absent`, drop the role.
    pub present: bool,
    #[serde(flatten)]
    pub attrs: Attributes,
    pub connlimit: i32,
    /// SCRAM-SHA-256 verifier; None leaves the password alone.
    pub password: Option<String>,
    pub expiry: Option<Expiry>,
    pub comment: Option<String>,
    pub memberships: Vec<Membership>,
    /// `ALTER ROLE … SET name = value`; a `None` value (Pigsty's `DEFAULT`) resets.
    pub parameters: BTreeMap<String, Option<String>>,
    pub pgbouncer: bool,
    pub pool_mode: String,
    pub pool_connlimit: i32,
    /// Attributes (and `connlimit`) the row leaves NULL: not managed, as Pigsty leaves an
    /// attribute its user entry does not declare (CREATE ROLE takes PostgreSQL's default; an
    /// existing role keeps what it has).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub unmanaged: BTreeSet<String>,
}

impl RoleSpec {
    pub fn new(name: &str) -> Self {
        RoleSpec {
            name: name.to_string(),
            present: true,
            attrs: Attributes::default(),
            connlimit: -1,
            password: None,
            expiry: None,
            comment: None,
            memberships: Vec::new(),
            parameters: BTreeMap::new(),
            pgbouncer: false,
            pool_mode: "transaction".into(),
            pool_connlimit: -1,
            unmanaged: BTreeSet::new(),
        }
    }
}

/// Object kinds of ALTER DEFAULT PRIVILEGES, with the privileges each accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjKind {
    Tables,
    Sequences,
    Functions,
    Types,
    Schemas,
}

impl ObjKind {
    pub fn parse(s: &str) -> Option<ObjKind> {
        Some(match s.to_ascii_lowercase().as_str() {
            "tables" | "table" => ObjKind::Tables,
            "sequences" | "sequence" => ObjKind::Sequences,
            "functions" | "function" | "routines" => ObjKind::Functions,
            "types" | "type" => ObjKind::Types,
            "schemas" | "schema" => ObjKind::Schemas,
            _ => return None,
        })
    }

    pub fn sql(self) -> &'static str {
        match self {
            ObjKind::Tables => "TABLES",
            ObjKind::Sequences => "SEQUENCES",
            ObjKind::Functions => "FUNCTIONS",
            ObjKind::Types => "TYPES",
            ObjKind::Schemas => "SCHEMAS",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObjKind::Tables => "tables",
            ObjKind::Sequences => "sequences",
            ObjKind::Functions => "functions",
            ObjKind::Types => "types",
            ObjKind::Schemas => "schemas",
        }
    }

    /// `pg_default_acl.defaclobjtype`.
    pub fn catalog_code(self) -> char {
        match self {
            ObjKind::Tables => 'r',
            ObjKind::Sequences => 'S',
            ObjKind::Functions => 'f',
            ObjKind::Types => 'T',
            ObjKind::Schemas => 'n',
        }
    }

    pub fn from_catalog_code(c: &str) -> Option<ObjKind> {
        Some(match c {
            "r" => ObjKind::Tables,
            "S" => ObjKind::Sequences,
            "f" => ObjKind::Functions,
            "T" => ObjKind::Types,
            "n" => ObjKind::Schemas,
            _ => return None,
        })
    }

    /// Privileges valid for this kind, in PostgreSQL's order. `MAINTAIN` on tables is PG17+.
    pub fn privileges(self, server_version_num: i32) -> &'static [&'static str] {
        match self {
            ObjKind::Tables if server_version_num >= 170000 => &[
                "INSERT",
                "SELECT",
                "UPDATE",
                "DELETE",
                "TRUNCATE",
                "REFERENCES",
                "TRIGGER",
                "MAINTAIN",
            ],
            ObjKind::Tables => &[
                "INSERT",
                "SELECT",
                "UPDATE",
                "DELETE",
                "TRUNCATE",
                "REFERENCES",
                "TRIGGER",
            ],
            ObjKind::Sequences => &["SELECT", "UPDATE", "USAGE"],
            ObjKind::Functions => &["EXECUTE"],
            ObjKind::Types => &["USAGE"],
            ObjKind::Schemas => &["USAGE", "CREATE"],
        }
    }

    /// Kinds whose existing objects `GRANT … ON ALL … IN SCHEMA` reaches (types cannot be).
    pub fn has_existing_form(self) -> bool {
        !matches!(self, ObjKind::Types)
    }
}

/// One default-privilege rule: `ALTER DEFAULT PRIVILEGES FOR ROLE creator [IN SCHEMA schema]
/// GRANT privileges ON kind TO grantee`, in `database` (None: every database with pgops).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultPrivilege {
    pub creator: String,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub kind: ObjKind,
    pub privileges: Vec<String>,
    /// A role name, or `PUBLIC`.
    pub grantee: String,
    pub grant_option: bool,
    /// Also grant on objects that already exist (GRANT … ON ALL … IN SCHEMA, schemas' USAGE/CREATE).
    pub existing: bool,
}

/// Normalises a privilege list for `kind`: upper-case, `ALL` expanded, duplicates removed, in
/// PostgreSQL's order. Errors name the privilege and the kind.
pub fn normalise_privileges(privs: &[String], kind: ObjKind, server_version_num: i32) -> Result<Vec<String>> {
    let valid = kind.privileges(server_version_num);
    let mut wanted = Vec::new();
    for p in privs {
        let p = p.trim().to_ascii_uppercase();
        let p = p.strip_suffix(" PRIVILEGES").unwrap_or(&p).to_string();
        if p == "ALL" {
            wanted.extend(valid.iter().map(|s| s.to_string()));
        } else if valid.contains(&p.as_str()) {
            wanted.push(p);
        } else {
            bail_invalid!(
                "privilege {p} is not valid on {} (valid: {})",
                kind.as_str(),
                valid.join(", ")
            );
        }
    }
    if wanted.is_empty() {
        bail_invalid!("no privilege given for {}", kind.as_str());
    }
    Ok(valid
        .iter()
        .filter(|v| wanted.iter().any(|w| w == *v))
        .map(|s| s.to_string())
        .collect())
}

/// Parses a Pigsty `pg_default_privileges` entry: `GRANT SELECT, UPDATE ON TABLES TO role
/// [WITH GRANT OPTION]`, optionally `… ON TABLES IN SCHEMA s TO …`.
pub fn parse_grant_line(line: &str) -> Result<(Vec<String>, ObjKind, Option<String>, String, bool)> {
    let err = || {
        invalid!(
            "cannot read default privilege \"{line}\": expected GRANT <privileges> ON <TABLES|SEQUENCES|FUNCTIONS|TYPES|SCHEMAS> [IN SCHEMA <schema>] TO <role> [WITH GRANT OPTION]"
        )
    };
    let words = split_words(line).ok_or_else(err)?;
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    if upper.first().map(String::as_str) != Some("GRANT") {
        return Err(err());
    }
    let on = upper.iter().position(|w| w == "ON").ok_or_else(err)?;
    let to = upper.iter().rposition(|w| w == "TO").ok_or_else(err)?;
    if on < 2 || to <= on + 1 || to + 1 >= words.len() {
        return Err(err());
    }
    let privileges: Vec<String> = words[1..on]
        .join(" ")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let kind = ObjKind::parse(&words[on + 1]).ok_or_else(err)?;
    let schema = match &upper[on + 2..to] {
        [] => None,
        [a, b, _] if a == "IN" && b == "SCHEMA" => Some(words[on + 4].clone()),
        _ => return Err(err()),
    };
    let tail = &upper[to + 1..];
    let grant_option = match tail.len() {
        1 => false,
        4 if tail[1..] == ["WITH", "GRANT", "OPTION"] => true,
        _ => return Err(err()),
    };
    let grantee = words[to + 1].clone();
    let grantee = if grantee.eq_ignore_ascii_case("public") && !line.contains("\"public\"") {
        "PUBLIC".to_string()
    } else {
        grantee
    };
    Ok((privileges, kind, schema, grantee, grant_option))
}

/// Splits on whitespace, keeping "double quoted" words together (quotes removed, "" → ").
fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut w = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        w.push('"');
                    }
                    '"' => break,
                    ch => w.push(ch),
                }
            }
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                w.push(ch);
                chars.next();
            }
        }
        words.push(w);
    }
    Some(words)
}

/// Checks a role name: 1 to 63 bytes. Anything else (quotes, spaces, unicode) is fine: every
/// statement quotes identifiers.
pub fn check_role_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail_invalid!("a role name is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        bail_invalid!(
            "role name \"{name}\" is {} bytes; PostgreSQL role names are at most {MAX_NAME_BYTES} bytes",
            name.len()
        );
    }
    Ok(())
}

/// Checks the name of a role pgops would create: besides `check_role_name`, PostgreSQL reserves
/// `public`, `none` and the `pg_` prefix.
pub fn check_new_role_name(name: &str) -> Result<()> {
    check_role_name(name)?;
    if name == "public" || name == "none" || name.starts_with("pg_") {
        bail_invalid!("role name \"{name}\" is reserved by PostgreSQL (public, none and names starting with pg_)");
    }
    Ok(())
}

/// The fields of a user object (and the columns of pgops.role) besides the attributes
/// (`attributes::ATTRIBUTES`).
pub const ROLE_FIELDS: &[&str] = &[
    "name",
    "state",
    "password",
    "connlimit",
    "expire_in",
    "expire_at",
    "comment",
    "roles",
    "parameters",
    "pgbouncer",
    "pool_mode",
    "pool_connlimit",
];

fn is_role_field(k: &str) -> bool {
    ROLE_FIELDS.contains(&k) || ATTRIBUTES.iter().any(|a| a.field == k)
}

/// A password as given in Pigsty config: plaintext (to be turned into a verifier) or a verifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordInput {
    Verifier(String),
    Plaintext(String),
}

/// What kind of JSON value `v` is (for errors that must not echo it).
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Reads one Pigsty user object (v4 shape with `parameters`, or the older shape with GUCs at the
/// top level). The password is returned apart, for the caller to turn into a verifier.
pub fn role_from_pigsty(v: &Value) -> Result<(RoleSpec, Option<PasswordInput>)> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid!("each role must be a JSON object, got a JSON {}", json_kind(v)))?;
    let name = obj.get("name").and_then(Value::as_str).ok_or_else(|| {
        // Never echo the object: it may hold a plaintext password.
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        invalid!("a role has no \"name\" (its fields: {})", keys.join(", "))
    })?;
    check_role_name(name)?;
    let ctx = |field: &str, what: &str| invalid!("role \"{name}\": field \"{field}\" {what}");
    let mut spec = RoleSpec::new(name);
    let boolean = |field: &str| -> Result<Option<bool>> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(ctx(field, &format!("must be true or false, got {other}"))),
        }
    };
    let int = |field: &str| -> Result<Option<i32>> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .map(Some)
                .ok_or_else(|| ctx(field, &format!("must be a whole number, got {n}"))),
            Some(other) => Err(ctx(field, &format!("must be a number, got {other}"))),
        }
    };
    let text = |field: &str| -> Result<Option<String>> {
        match obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // Never echo what might be a password.
            Some(_) if field == "password" => Err(ctx(field, "must be a string")),
            Some(other) => Err(ctx(field, &format!("must be a string, got {other}"))),
        }
    };
    spec.present = match text("state")?.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("create") | Some("present") => true,
        Some("absent") => false,
        Some(other) => {
            return Err(ctx(
                "state",
                &format!("must be create/present or absent, got \"{other}\""),
            ));
        }
    };
    for a in ATTRIBUTES {
        if let Some(b) = boolean(a.field)? {
            (a.set)(&mut spec.attrs, b);
        }
    }
    if let Some(b) = boolean("pgbouncer")? {
        spec.pgbouncer = b;
    }
    if let Some(n) = int("connlimit")? {
        spec.connlimit = n;
    }
    if let Some(n) = int("pool_connlimit")? {
        spec.pool_connlimit = n;
    }
    if let Some(m) = text("pool_mode")? {
        spec.pool_mode = m;
    }
    spec.comment = text("comment")?;
    spec.expiry = match (int("expire_in")?, text("expire_at")?) {
        (Some(days), _) => Some(Expiry::InDays(days)),
        (None, Some(at)) => Some(Expiry::At(at)),
        (None, None) => None,
    };
    let password = text("password")?.map(|p| {
        if super::scram::is_verifier(&p) {
            PasswordInput::Verifier(p)
        } else {
            PasswordInput::Plaintext(p)
        }
    });
    spec.memberships = memberships(name, obj.get("roles").unwrap_or(&Value::Null))?;
    let params: Map<String, Value> = match obj.get("parameters") {
        Some(Value::Object(p)) => p.clone(),
        Some(Value::Null) => Map::new(),
        Some(other) => return Err(ctx("parameters", &format!("must be an object, got {other}"))),
        // Older shape: settings at the top level.
        None => obj
            .iter()
            .filter(|(k, _)| !is_role_field(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    if obj.contains_key("parameters") {
        if let Some(unknown) = obj.keys().find(|k| !is_role_field(k)) {
            return Err(ctx(
                unknown,
                "is not a pgops/Pigsty user field (settings go under \"parameters\")",
            ));
        }
    }
    spec.parameters = parameters(name, &params)?;
    Ok((spec, password))
}

/// A role's memberships (`roles`: names, or objects with name/admin/inherit/set/state). An
/// entry in state absent/revoke is left out: memberships are authoritative, so it is revoked.
pub fn memberships(name: &str, v: &Value) -> Result<Vec<Membership>> {
    let ctx = |what: String| invalid!("role \"{name}\": field \"roles\" {what}");
    let entries = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => return Err(ctx(format!("must be an array, got {other}"))),
    };
    let mut out = Vec::new();
    for r in entries {
        match r {
            Value::String(s) => out.push(Membership {
                role: s.clone(),
                admin: false,
                inherit: None,
                set: None,
            }),
            Value::Object(m) => {
                let role = m
                    .get("name")
                    .or_else(|| m.get("role"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| ctx(format!("entry {r} has no name")))?;
                let state = m.get("state").and_then(Value::as_str).unwrap_or("grant");
                if matches!(state, "absent" | "revoke") {
                    continue;
                }
                let b = |k: &str| m.get(k).and_then(Value::as_bool);
                out.push(Membership {
                    role: role.to_string(),
                    admin: b("admin").unwrap_or(false),
                    inherit: b("inherit"),
                    set: b("set"),
                });
            }
            other => return Err(ctx(format!("entries must be strings or objects, got {other}"))),
        }
    }
    Ok(out)
}

/// A role's settings (`ALTER ROLE … SET`): strings, numbers and booleans; `DEFAULT` or null resets.
pub fn parameters(name: &str, params: &Map<String, Value>) -> Result<BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    for (k, v) in params {
        let value = match v {
            Value::String(s) if s.eq_ignore_ascii_case("default") => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(if *b { "on".into() } else { "off".into() }),
            Value::Null => None,
            other => {
                return Err(invalid!(
                    "role \"{name}\": field \"{k}\" setting value must be a string or number, got {other}"
                ));
            }
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

/// One row of pgops.role, as `to_jsonb(row)` gives it: the config table's own shape (typed
/// columns, `roles` and `parameters` as jsonb), read with serde — not Pigsty's input format.
#[derive(Clone, Debug, Deserialize)]
pub struct RoleRow {
    pub name: String,
    pub state: String,
    #[serde(flatten)]
    pub attrs: Attributes,
    pub connlimit: i32,
    pub password: Option<String>,
    pub expire_in: Option<i32>,
    pub expire_at: Option<String>,
    pub comment: Option<String>,
    #[serde(default)]
    pub roles: Value,
    #[serde(default)]
    pub parameters: Value,
    pub pgbouncer: bool,
    pub pool_mode: String,
    pub pool_connlimit: i32,
}

/// Columns of pgops.role that may be NULL, meaning "not managed": every attribute and connlimit.
pub fn unmanageable_columns() -> impl Iterator<Item = &'static str> {
    ATTRIBUTES.iter().map(|a| a.field).chain(std::iter::once("connlimit"))
}

/// A row of pgops.role as `to_jsonb(row)` gives it → the declared role; a NULL attribute or
/// connlimit is recorded as not managed.
pub fn role_from_row(row: &Value) -> Result<RoleSpec> {
    role_from_row_owned(row.clone())
}

/// [`role_from_row`] for a row the caller no longer needs (no copy of it is made).
pub fn role_from_row_owned(mut row: Value) -> Result<RoleSpec> {
    let mut unmanaged = BTreeSet::new();
    if let Value::Object(o) = &mut row {
        for a in ATTRIBUTES {
            if o.get(a.field).is_none_or(Value::is_null) {
                o.insert(a.field.into(), Value::Bool(a.default));
                unmanaged.insert(a.field.to_string());
            }
        }
        if o.get("connlimit").is_none_or(Value::is_null) {
            o.insert("connlimit".into(), Value::from(-1));
            unmanaged.insert("connlimit".to_string());
        }
    }
    let mut spec = serde_json::from_value::<RoleRow>(row)
        .map_err(|e| invalid!("pgops.role: {e}"))?
        .into_spec()?;
    spec.unmanaged = unmanaged;
    Ok(spec)
}

impl RoleRow {
    /// The desired role this row declares (the password, a verifier, carried as is).
    pub fn into_spec(self) -> Result<RoleSpec> {
        check_role_name(&self.name)?;
        let params = match &self.parameters {
            Value::Object(p) => p.clone(),
            Value::Null => Map::new(),
            other => {
                return Err(invalid!(
                    "role \"{}\": field \"parameters\" must be an object, got {other}",
                    self.name
                ));
            }
        };
        Ok(RoleSpec {
            present: match self.state.as_str() {
                "present" => true,
                "absent" => false,
                other => {
                    return Err(invalid!(
                        "role \"{}\": field \"state\" must be present or absent, got \"{other}\"",
                        self.name
                    ));
                }
            },
            attrs: self.attrs,
            connlimit: self.connlimit,
            password: self.password,
            expiry: match (self.expire_in, self.expire_at) {
                (Some(days), _) => Some(Expiry::InDays(days)),
                (None, Some(at)) => Some(Expiry::At(at)),
                (None, None) => None,
            },
            comment: self.comment,
            memberships: memberships(&self.name, &self.roles)?,
            parameters: parameters(&self.name, &params)?,
            pgbouncer: self.pgbouncer,
            pool_mode: self.pool_mode,
            pool_connlimit: self.pool_connlimit,
            name: self.name,
            unmanaged: BTreeSet::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_config_table_has_exactly_the_fields_and_attributes() {
        let sql = include_str!("../../../../sql/roles.sql");
        let table = &sql[sql.find("CREATE TABLE pgops.role (").unwrap()..];
        let table = &table[table.find('(').unwrap() + 1..table.find(");").unwrap()];
        let mut columns: Vec<&str> = table
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| !w.is_empty() && *w != "CONSTRAINT")
            .collect();
        let mut want: Vec<&str> = ROLE_FIELDS
            .iter()
            .copied()
            .chain(ATTRIBUTES.iter().map(|a| a.field))
            .collect();
        columns.sort_unstable();
        want.sort_unstable();
        assert_eq!(columns, want, "sql/roles.sql pgops.role vs ROLE_FIELDS + ATTRIBUTES");
    }

    #[test]
    fn a_config_row_reads_as_the_role_its_pigsty_object_declares() {
        let row = json!({
            "name": "dbuser_app", "state": "present", "login": true, "superuser": false, "createdb": true,
            "createrole": false, "inherit": true, "replication": false, "bypassrls": false, "connlimit": 10,
            "password": null, "expire_in": null, "expire_at": "2030-12-31T00:00:00+00:00", "comment": "app",
            "roles": ["dbrole_readwrite", {"name": "pg_monitor", "set": false}, {"name": "old", "state": "absent"}],
            "parameters": {"work_mem": "64MB", "statement_timeout": 0, "search_path": "DEFAULT"},
            "pgbouncer": true, "pool_mode": "session", "pool_connlimit": -1
        });
        let from_row = serde_json::from_value::<RoleRow>(row.clone())
            .unwrap()
            .into_spec()
            .unwrap();
        let (from_pigsty, _) = role_from_pigsty(&row).unwrap();
        assert_eq!(from_row, from_pigsty);
        assert!(from_row.attrs.createdb && !from_row.attrs.superuser);
        assert_eq!(from_row.memberships.len(), 2);
        assert_eq!(from_row.parameters["search_path"], None);
        let mut bad = row.clone();
        bad["roles"] = json!(7);
        let e = serde_json::from_value::<RoleRow>(bad).unwrap().into_spec().unwrap_err();
        assert_eq!(
            e.message,
            "role \"dbuser_app\": field \"roles\" must be an array, got 7"
        );
    }

    #[test]
    fn reads_the_v4_user_object() {
        let (r, pw) = role_from_pigsty(&json!({
            "name": "dbuser_meta", "password": "DBUser.Meta", "login": true, "superuser": false,
            "createdb": false, "createrole": false, "inherit": true, "replication": false, "bypassrls": false,
            "pgbouncer": true, "connlimit": -1, "expire_in": 3650, "expire_at": "2030-12-31",
            "comment": "pigsty admin user",
            "roles": ["dbrole_admin", {"name": "pg_monitor", "set": false}, {"name": "old", "state": "absent"},
                      {"name": "dbrole_readwrite", "admin": true}],
            "parameters": {"search_path": "public", "work_mem": "DEFAULT"},
            "pool_mode": "transaction", "pool_connlimit": -1
        }))
        .unwrap();
        assert_eq!(pw, Some(PasswordInput::Plaintext("DBUser.Meta".into())));
        assert_eq!(r.expiry, Some(Expiry::InDays(3650)), "expire_in wins over expire_at");
        assert!(r.pgbouncer && r.attrs.login && r.attrs.inherit);
        assert_eq!(r.memberships.len(), 3);
        assert_eq!(
            r.memberships[1],
            Membership {
                role: "pg_monitor".into(),
                admin: false,
                inherit: None,
                set: Some(false)
            }
        );
        assert!(r.memberships[2].admin);
        assert_eq!(r.parameters.get("search_path"), Some(&Some("public".into())));
        assert_eq!(r.parameters.get("work_mem"), Some(&None));
    }

    #[test]
    fn reads_the_older_shape_with_settings_at_the_top() {
        let (r, _) = role_from_pigsty(&json!({"name": "dbuser_x", "search_path": "public", "login": false})).unwrap();
        assert!(!r.attrs.login);
        assert_eq!(r.parameters.get("search_path"), Some(&Some("public".into())));
    }

    #[test]
    fn rejects_bad_fields_naming_role_and_field() {
        let e = role_from_pigsty(&json!({"name": "a", "login": "yes"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("role \"a\"") && e.contains("\"login\""), "{e}");
        let e = role_from_pigsty(&json!({"name": "a", "parameters": {}, "logn": true}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"logn\""), "{e}");
        let long = "x".repeat(64);
        let e = role_from_pigsty(&json!({ "name": long })).unwrap_err().to_string();
        assert!(e.contains("64 bytes"), "{e}");
        let e = role_from_pigsty(&json!({"name": "a", "state": "gone"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"state\""), "{e}");
    }

    #[test]
    fn parses_pigsty_default_privilege_lines() {
        let (p, k, s, g, o) = parse_grant_line("GRANT USAGE      ON SCHEMAS   TO dbrole_readonly").unwrap();
        assert_eq!(
            (p, k, s, g.as_str(), o),
            (
                vec!["USAGE".to_string()],
                ObjKind::Schemas,
                None,
                "dbrole_readonly",
                false
            )
        );
        let (p, k, s, g, o) = parse_grant_line(
            "grant insert,update, delete on tables in schema \"my app\" to \"Odd \"\"Role\" with grant option",
        )
        .unwrap();
        assert_eq!(p, vec!["insert", "update", "delete"]);
        assert_eq!(
            (k, s.as_deref(), g.as_str(), o),
            (ObjKind::Tables, Some("my app"), "Odd \"Role", true)
        );
        assert_eq!(
            parse_grant_line("GRANT EXECUTE ON FUNCTIONS TO public").unwrap().3,
            "PUBLIC"
        );
        assert!(parse_grant_line("GRANT SELECT ON VIEWS TO x").is_err());
        assert!(parse_grant_line("REVOKE SELECT ON TABLES FROM x").is_err());
    }

    #[test]
    fn privileges_are_checked_against_the_kind() {
        let all = normalise_privileges(&["ALL".into()], ObjKind::Sequences, 150000).unwrap();
        assert_eq!(all, vec!["SELECT", "UPDATE", "USAGE"]);
        let e = normalise_privileges(&["EXECUTE".into()], ObjKind::Tables, 150000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("EXECUTE is not valid on tables"), "{e}");
        assert!(normalise_privileges(&["maintain".into()], ObjKind::Tables, 150000).is_err());
        assert_eq!(
            normalise_privileges(&["maintain".into()], ObjKind::Tables, 170000).unwrap(),
            vec!["MAINTAIN"]
        );
        assert_eq!(
            normalise_privileges(
                &["update".into(), "select".into(), "SELECT".into()],
                ObjKind::Tables,
                150000
            )
            .unwrap(),
            vec!["SELECT", "UPDATE"]
        );
    }
}
