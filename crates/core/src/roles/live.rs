//! The live state the planner compares against, as plain data. Filled by `catalog.rs` (SPI, in
//! this database and through per-database workers); serialisable so a worker can send it back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::attributes::Attributes;
use super::model::ObjKind;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveMembership {
    pub role: String,
    pub grantor: String,
    pub admin: bool,
    /// PG16+ only (None before).
    #[serde(alias = "inherit_option")]
    pub inherit: Option<bool>,
    #[serde(alias = "set_option")]
    pub set: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveRole {
    pub name: String,
    #[serde(flatten)]
    pub attrs: Attributes,
    pub connlimit: i32,
    pub password: Option<String>,
    /// Canonical UTC text (`YYYY-MM-DD HH24:MI:SS.US+00`), `infinity`, or None (no limit).
    pub valid_until: Option<String>,
    pub comment: Option<String>,
    pub memberships: Vec<LiveMembership>,
    /// Role-wide settings (`ALTER ROLE … SET`), name → value as stored.
    pub settings: BTreeMap<String, String>,
}

/// One explicit entry of `pg_default_acl`, with the hard-wired defaults (owner self-grants,
/// PUBLIC EXECUTE/USAGE) already subtracted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DefaultAclEntry {
    pub creator: String,
    pub schema: Option<String>,
    pub kind: ObjKind,
    pub grantee: String,
    pub privilege: String,
    pub grant_option: bool,
}

/// On how many objects of a kind in a schema `grantee` holds `privilege` (objects it owns not
/// counted: an owner needs no grant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExistingFact {
    pub schema: String,
    pub kind: ObjKind,
    pub grantee: String,
    pub privilege: String,
    pub granted: i64,
}

/// How many objects of a kind a schema has that `grantee` does not own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectTotal {
    pub schema: String,
    pub kind: ObjKind,
    pub grantee: String,
    pub total: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveDatabase {
    pub name: String,
    /// pgops' version in this database (None: not installed, default privileges not managed here).
    pub pgops_version: Option<String>,
    /// User schemas (not pg_*, information_schema, pgops).
    pub schemas: Vec<String>,
    pub default_acl: Vec<DefaultAclEntry>,
    /// Objects per (schema, kind, grantee) — the denominator for `existing`.
    pub object_totals: Vec<ObjectTotal>,
    pub existing: Vec<ExistingFact>,
    /// For roles being dropped: objects they own or privileges they hold here.
    pub dependents: BTreeMap<String, i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    pub server_version_num: i32,
    pub bootstrap_superuser: String,
    pub current_user: String,
    pub current_database: String,
    pub roles: BTreeMap<String, LiveRole>,
    pub databases: Vec<LiveDatabase>,
    /// Databases that could not be read (name → why): nothing is planned in them, and the plan
    /// says so; the others are planned as usual.
    #[serde(default)]
    pub unreadable: BTreeMap<String, String>,
}
