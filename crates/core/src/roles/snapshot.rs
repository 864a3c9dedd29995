//! One database's snapshot for the roles planner, aggregated here from its catalog rows as they
//! are read (schemas, the ACLs of its tables, sequences and functions, its default ACLs) — the
//! work a single big query used to do on the server: every per-database worker planned and ran
//! that query cold, and its planning, hash tables and `aclexplode` rows were most of a worker's
//! time.
//!
//! ACLs arrive as PostgreSQL stores them (`aclitem`: grantee and grantor OIDs, privilege and
//! grant-option bits), NULL ACLs already replaced by `acldefault()` on the server. Roles are
//! compared by OID, as the catalog does; names are looked up only for what the planner shows.
//! Rows are fed one at a time and only counts are kept, so memory does not grow with the size
//! of the ACLs a database's owner can write.

use std::collections::{BTreeMap, BTreeSet};

use super::live::{DefaultAclEntry, ExistingFact, LiveDatabase, ObjectTotal};
use super::model::ObjKind;

/// One `aclitem`: grantee OID (0: PUBLIC), privilege bits, grant-option bits (PostgreSQL's
/// `ACL_*` bit positions, the same in every major; the grant options already shifted down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AclBits {
    pub grantee: u32,
    pub privileges: u32,
    pub grant_options: u32,
}

/// PUBLIC's OID in an ACL.
pub const PUBLIC: u32 = 0;

/// The privilege of each `ACL_*` bit (`parsenodes.h`), named as `aclexplode()` and GRANT name
/// it. Bits a later PostgreSQL may add are not named, and not counted.
const PRIVILEGES: [&str; 15] = [
    "INSERT",
    "SELECT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
    "EXECUTE",
    "USAGE",
    "CREATE",
    "TEMPORARY",
    "CONNECT",
    "SET",
    "ALTER SYSTEM",
    "MAINTAIN",
];

/// The named privileges of `bits`, lowest bit first: (bit, name).
pub fn privileges(bits: u32) -> impl Iterator<Item = (u8, &'static str)> {
    PRIVILEGES
        .iter()
        .enumerate()
        .filter(move |(i, _)| bits & (1 << i) != 0)
        .map(|(i, name)| (i as u8, *name))
}

fn bit(name: &str) -> u32 {
    PRIVILEGES.iter().position(|p| *p == name).map_or(0, |i| 1 << i)
}

fn bits(names: &[&str]) -> u32 {
    names.iter().fold(0, |b, n| b | bit(n))
}

/// What PostgreSQL's `acldefault()` gives an object of `kind` owned by `owner` (its ACL while it
/// is NULL, and what a global `pg_default_acl` entry also stores): the owner's every right (on a
/// table MAINTAIN too, which only PostgreSQL 17 and later have), and PUBLIC's EXECUTE on
/// functions and USAGE on types.
pub fn acldefault(kind: ObjKind, owner: u32) -> Vec<AclBits> {
    let own = bits(kind.privileges(i32::MAX));
    let public = match kind {
        ObjKind::Functions => bit("EXECUTE"),
        ObjKind::Types => bit("USAGE"),
        _ => 0,
    };
    let mut acl = Vec::new();
    if public != 0 {
        acl.push(AclBits { grantee: PUBLIC, privileges: public, grant_options: 0 });
    }
    acl.push(AclBits { grantee: owner, privileges: own, grant_options: 0 });
    acl
}

/// A schema the roles planner manages: not `pg_*`, not `information_schema`, not the schema
/// pgops is installed in (the server applies the same rule in `roles_snapshot_schemas.sql`).
pub fn user_schema(name: &str, pgops_schema: bool) -> bool {
    !name.starts_with("pg_") && name != "information_schema" && !pgops_schema
}

/// A grantee the config manages privileges on existing objects for: its name in the config and
/// its OID here (PUBLIC: [`PUBLIC`]; None: no such role, so it owns and holds nothing).
#[derive(Clone, Debug)]
pub struct Grantee {
    pub name: String,
    pub oid: Option<u32>,
}

/// The aggregation of one database's rows. Feed schemas first, then objects and default ACLs
/// in any order; `finish` names what the planner shows.
#[derive(Debug)]
pub struct Snapshot {
    grantees: Vec<Grantee>,
    /// user schema OID → name
    schemas: BTreeMap<u32, String>,
    /// objects of a kind in a schema
    objects: BTreeMap<(u32, ObjKind), i64>,
    /// of those, owned by a managed grantee (grantee index)
    owned: BTreeMap<(u32, ObjKind, usize), i64>,
    /// objects on which a managed grantee holds a privilege (bit), each counted once
    held: BTreeMap<(u32, ObjKind, usize, u8), i64>,
    /// default ACL entries: creator OID, schema, kind, grantee OID, privilege bit, grant option
    defaults: Vec<(u32, Option<String>, ObjKind, u32, u8, bool)>,
}

impl Snapshot {
    pub fn new(grantees: Vec<Grantee>) -> Snapshot {
        Snapshot {
            grantees,
            schemas: BTreeMap::new(),
            objects: BTreeMap::new(),
            owned: BTreeMap::new(),
            held: BTreeMap::new(),
            defaults: Vec::new(),
        }
    }

    fn count(&mut self, schema: u32, kind: ObjKind, owner: u32, acl: Option<&[AclBits]>) {
        let default;
        let acl = match acl {
            Some(a) => a,
            None => {
                default = acldefault(kind, owner);
                &default[..]
            }
        };
        *self.objects.entry((schema, kind)).or_default() += 1;
        for (i, g) in self.grantees.iter().enumerate() {
            let Some(oid) = g.oid else { continue };
            if oid == owner && oid != PUBLIC {
                *self.owned.entry((schema, kind, i)).or_default() += 1;
                continue;
            }
            // Every item of this grantee (one per grantor): a privilege counts once per object.
            let bits = acl.iter().filter(|a| a.grantee == oid).fold(0, |b, a| b | a.privileges);
            for (bit, _) in privileges(bits) {
                *self.held.entry((schema, kind, i, bit)).or_default() += 1;
            }
        }
    }

    /// A user schema (its own ACL is counted as an object of kind `schemas` in itself). `acl`
    /// None: NULL, the default.
    pub fn schema(&mut self, oid: u32, name: String, owner: u32, acl: Option<&[AclBits]>) {
        self.schemas.insert(oid, name);
        self.count(oid, ObjKind::Schemas, owner, acl);
    }

    /// A table, sequence or function; left out unless its schema was given to [`Self::schema`].
    pub fn object(&mut self, schema: u32, kind: ObjKind, owner: u32, acl: Option<&[AclBits]>) {
        if self.schemas.contains_key(&schema) {
            self.count(schema, kind, owner, acl);
        }
    }

    /// A row of `pg_default_acl` (object type letter; schema None: every schema). A global entry
    /// also stores the built-in default (`acldefault`: the creator's own rights, PUBLIC's EXECUTE
    /// or USAGE), left out. Other object types are not managed and left out.
    pub fn default_acl(&mut self, creator: u32, schema: Option<String>, objtype: u8, acl: &[AclBits]) {
        let Some(kind) = ObjKind::from_catalog_code(&char::from(objtype).to_string()) else { return };
        let builtin = if schema.is_none() { acldefault(kind, creator) } else { vec![] };
        for a in acl {
            for (bit, _) in privileges(a.privileges) {
                let grant_option = a.grant_options & (1 << bit) != 0;
                let is_builtin = builtin.iter().any(|b| {
                    b.grantee == a.grantee && b.privileges & (1 << bit) != 0 && (b.grant_options & (1 << bit) != 0) == grant_option
                });
                if !is_builtin {
                    self.defaults.push((creator, schema.clone(), kind, a.grantee, bit, grant_option));
                }
            }
        }
    }

    /// The snapshot of database `name`; `role_name` names a role by OID (its text for a role that
    /// is gone, as `pg_get_userbyid` writes it: `unknown (OID=n)`).
    pub fn finish(
        self,
        name: String,
        pgops_version: Option<String>,
        mut role_name: impl FnMut(u32) -> Result<String, String>,
    ) -> Result<LiveDatabase, String> {
        let mut names: BTreeMap<u32, String> = BTreeMap::new();
        let mut named = |oid: u32| -> Result<String, String> {
            if oid == PUBLIC {
                return Ok("PUBLIC".into());
            }
            if let Some(n) = names.get(&oid) {
                return Ok(n.clone());
            }
            let n = role_name(oid)?;
            names.insert(oid, n.clone());
            Ok(n)
        };
        let mut default_acl = Vec::with_capacity(self.defaults.len());
        for (creator, schema, kind, grantee, bit, grant_option) in self.defaults {
            default_acl.push(DefaultAclEntry {
                creator: named(creator)?,
                schema,
                kind,
                grantee: named(grantee)?,
                privilege: PRIVILEGES[bit as usize].to_string(),
                grant_option,
            });
        }
        let schema_name = |oid: &u32| self.schemas.get(oid).cloned().unwrap_or_default();
        let mut object_totals = Vec::new();
        if !self.grantees.is_empty() {
            for ((schema, kind), n) in &self.objects {
                for (i, g) in self.grantees.iter().enumerate() {
                    let total = n - self.owned.get(&(*schema, *kind, i)).copied().unwrap_or(0);
                    if total > 0 {
                        object_totals.push(ObjectTotal {
                            schema: schema_name(schema),
                            kind: *kind,
                            grantee: g.name.clone(),
                            total,
                        });
                    }
                }
            }
        }
        let existing = self
            .held
            .iter()
            .map(|((schema, kind, i, bit), n)| ExistingFact {
                schema: schema_name(schema),
                kind: *kind,
                grantee: self.grantees[*i].name.clone(),
                privilege: PRIVILEGES[*bit as usize].to_string(),
                granted: *n,
            })
            .collect();
        let schemas: BTreeSet<String> = self.schemas.into_values().collect();
        Ok(LiveDatabase {
            name,
            pgops_version,
            schemas: schemas.into_iter().collect(),
            default_acl,
            object_totals,
            existing,
            dependents: BTreeMap::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: u32 = 10;
    const READER: u32 = 20;
    const ADMIN: u32 = 30;

    fn item(grantee: u32, privileges: &[&str], grantable: &[&str]) -> AclBits {
        let bits = |names: &[&str]| {
            names
                .iter()
                .map(|n| 1 << PRIVILEGES.iter().position(|p| p == n).unwrap_or_else(|| panic!("{n}")))
                .fold(0, |a, b| a | b)
        };
        AclBits { grantee, privileges: bits(privileges) | bits(grantable), grant_options: bits(grantable) }
    }

    fn grantees() -> Vec<Grantee> {
        vec![
            Grantee { name: "reader".into(), oid: Some(READER) },
            Grantee { name: "PUBLIC".into(), oid: Some(PUBLIC) },
            Grantee { name: "ghost".into(), oid: None },
        ]
    }

    #[test]
    fn privilege_bits_are_named_as_aclexplode_names_them() {
        let all: Vec<&str> = privileges(u32::MAX).map(|(_, n)| n).collect();
        assert_eq!(all.len(), 15);
        assert_eq!(&all[..3], ["INSERT", "SELECT", "UPDATE"]);
        assert_eq!(&all[10..], ["TEMPORARY", "CONNECT", "SET", "ALTER SYSTEM", "MAINTAIN"]);
        assert_eq!(privileges((1 << 7) | (1 << 8)).collect::<Vec<_>>(), vec![(7, "EXECUTE"), (8, "USAGE")]);
        // a bit a later PostgreSQL may add is neither named nor counted
        assert_eq!(privileges(1 << 20).count(), 0);
    }

    #[test]
    fn acldefault_is_postgres_own() {
        let f = acldefault(ObjKind::Functions, OWNER);
        assert_eq!(f, vec![item(PUBLIC, &["EXECUTE"], &[]), item(OWNER, &["EXECUTE"], &[])]);
        assert_eq!(acldefault(ObjKind::Types, OWNER)[0], item(PUBLIC, &["USAGE"], &[]));
        assert_eq!(acldefault(ObjKind::Schemas, OWNER), vec![item(OWNER, &["USAGE", "CREATE"], &[])]);
        assert_eq!(acldefault(ObjKind::Sequences, OWNER), vec![item(OWNER, &["SELECT", "UPDATE", "USAGE"], &[])]);
        assert_eq!(privileges(acldefault(ObjKind::Tables, OWNER)[0].privileges).count(), 8);
    }

    #[test]
    fn user_schemas_leave_out_the_system_ones_and_pgops_own() {
        assert!(user_schema("app", false) && user_schema("public", false) && user_schema("pgops", false));
        assert!(!user_schema("pg_catalog", false) && !user_schema("pg_toast_temp_1", false));
        assert!(!user_schema("information_schema", false) && !user_schema("ops", true));
    }

    #[test]
    fn existing_privileges_count_objects_not_owned_by_the_grantee() {
        let mut s = Snapshot::new(grantees());
        s.schema(2200, "public".into(), 1, Some(&[item(1, &["USAGE", "CREATE"], &[]), item(PUBLIC, &["USAGE"], &[])]));
        s.schema(16500, "app".into(), OWNER, Some(&[item(OWNER, &["USAGE", "CREATE"], &[]), item(READER, &["USAGE"], &[])]));
        // NULL: the owner's rights only
        s.schema(16600, "empty".into(), OWNER, None);
        let table = |extra: &[AclBits]| {
            let mut acl = vec![item(OWNER, &["INSERT", "SELECT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"], &[])];
            acl.extend_from_slice(extra);
            acl
        };
        s.object(16500, ObjKind::Tables, OWNER, Some(&table(&[item(READER, &["SELECT"], &[])])));
        // the same privilege from two grantors: one object
        s.object(16500, ObjKind::Tables, OWNER, Some(&table(&[item(READER, &["SELECT"], &[]), item(READER, &[], &["SELECT"])])));
        s.object(16500, ObjKind::Tables, OWNER, Some(&table(&[])));
        s.object(16500, ObjKind::Tables, OWNER, None);
        // owned by the grantee: neither held nor counted
        s.object(16500, ObjKind::Tables, READER, Some(&[item(READER, &["SELECT", "INSERT"], &[])]));
        s.object(16500, ObjKind::Sequences, OWNER, Some(&[item(OWNER, &["SELECT", "UPDATE", "USAGE"], &[]), item(READER, &["SELECT", "USAGE"], &[])]));
        s.object(16500, ObjKind::Functions, OWNER, Some(&[item(PUBLIC, &["EXECUTE"], &[]), item(OWNER, &["EXECUTE"], &[])]));
        // NULL: PUBLIC may execute a function
        s.object(16500, ObjKind::Functions, OWNER, None);
        s.object(16500, ObjKind::Functions, OWNER, Some(&[item(OWNER, &["EXECUTE"], &[])]));
        // not a user schema given before: left out
        s.object(11, ObjKind::Functions, 1, Some(&[item(PUBLIC, &["EXECUTE"], &[])]));
        let db = s.finish("app".into(), Some("0.1.0".into()), |oid| Ok(format!("r{oid}"))).unwrap();
        assert_eq!(db.schemas, vec!["app", "empty", "public"]);
        let held = |schema: &str, kind: ObjKind, g: &str, p: &str| {
            db.existing
                .iter()
                .find(|f| f.schema == schema && f.kind == kind && f.grantee == g && f.privilege == p)
                .map(|f| f.granted)
        };
        let total = |schema: &str, kind: ObjKind, g: &str| {
            db.object_totals.iter().find(|t| t.schema == schema && t.kind == kind && t.grantee == g).map(|t| t.total)
        };
        assert_eq!(held("app", ObjKind::Tables, "reader", "SELECT"), Some(2));
        assert_eq!(held("app", ObjKind::Tables, "reader", "INSERT"), None);
        assert_eq!(total("app", ObjKind::Tables, "reader"), Some(4));
        assert_eq!(total("app", ObjKind::Tables, "PUBLIC"), Some(5));
        assert_eq!(total("app", ObjKind::Tables, "ghost"), Some(5));
        assert_eq!(held("app", ObjKind::Sequences, "reader", "USAGE"), Some(1));
        assert_eq!(held("app", ObjKind::Functions, "PUBLIC", "EXECUTE"), Some(2));
        assert_eq!(total("app", ObjKind::Functions, "PUBLIC"), Some(3));
        assert_eq!(held("empty", ObjKind::Schemas, "reader", "USAGE"), None);
        assert_eq!(total("empty", ObjKind::Schemas, "reader"), Some(1));
        assert_eq!(held("app", ObjKind::Schemas, "reader", "USAGE"), Some(1));
        assert_eq!(held("public", ObjKind::Schemas, "PUBLIC", "USAGE"), Some(1));
        assert_eq!(total("public", ObjKind::Schemas, "reader"), Some(1));
        assert!(db.existing.iter().all(|f| f.grantee != "ghost" && f.granted > 0));
        assert!(db.object_totals.iter().all(|t| t.schema != "" && t.total > 0));
        // no grantee managed: nothing counted
        let mut none = Snapshot::new(vec![]);
        none.schema(16500, "app".into(), OWNER, None);
        none.object(16500, ObjKind::Tables, OWNER, Some(&table(&[])));
        let none = none.finish("app".into(), None, |_| Err("not asked".into())).unwrap();
        assert!(none.existing.is_empty() && none.object_totals.is_empty());
        assert_eq!(none.schemas, vec!["app"]);
    }

    #[test]
    fn a_role_is_its_oid_not_its_name() {
        // A role named like another's OID, or "PUBLIC": matched by OID only.
        let mut s = Snapshot::new(vec![Grantee { name: "28987".into(), oid: Some(40) }]);
        s.schema(16500, "app".into(), OWNER, None);
        s.object(16500, ObjKind::Tables, OWNER, Some(&[item(28987, &["SELECT"], &[])]));
        s.object(16500, ObjKind::Tables, OWNER, Some(&[item(40, &["SELECT"], &[])]));
        let db = s.finish("d".into(), None, |oid| Ok(format!("r{oid}"))).unwrap();
        assert_eq!(db.existing.len(), 1);
        let tables = db.object_totals.iter().find(|t| t.kind == ObjKind::Tables).map(|t| t.total);
        assert_eq!((db.existing[0].granted, tables), (1, Some(2)));
    }

    #[test]
    fn default_acls_leave_out_the_builtin_defaults_of_global_entries() {
        let mut s = Snapshot::new(vec![]);
        s.default_acl(
            ADMIN,
            None,
            b'f',
            &[item(ADMIN, &["EXECUTE"], &[]), item(PUBLIC, &["EXECUTE"], &[]), item(READER, &[], &["EXECUTE"])],
        );
        // in a schema nothing is built in: the creator's own grant is shown
        s.default_acl(OWNER, Some("app".into()), b'r', &[item(READER, &["SELECT"], &[]), item(OWNER, &["SELECT"], &[])]);
        // a granted-with-option built-in item is not the plain built-in one
        s.default_acl(OWNER, None, b'S', &[item(OWNER, &[], &["USAGE"]), item(OWNER, &["SELECT", "UPDATE"], &[])]);
        // a table's built-in rights, MAINTAIN included (PostgreSQL 17)
        s.default_acl(OWNER, None, b'r', &acldefault(ObjKind::Tables, OWNER));
        // large objects are not managed
        s.default_acl(OWNER, None, b'L', &[item(READER, &["SELECT"], &[])]);
        let names = |oid: u32| match oid {
            OWNER => Ok("owner".to_string()),
            READER => Ok("reader".to_string()),
            ADMIN => Ok("dbrole_admin".to_string()),
            _ => Err(format!("no role {oid}")),
        };
        let db = s.finish("d".into(), None, names).unwrap();
        let got: Vec<(String, Option<String>, ObjKind, String, String, bool)> = db
            .default_acl
            .into_iter()
            .map(|e| (e.creator, e.schema, e.kind, e.grantee, e.privilege, e.grant_option))
            .collect();
        assert_eq!(
            got,
            vec![
                ("dbrole_admin".into(), None, ObjKind::Functions, "reader".into(), "EXECUTE".into(), true),
                ("owner".into(), Some("app".into()), ObjKind::Tables, "reader".into(), "SELECT".into(), false),
                ("owner".into(), Some("app".into()), ObjKind::Tables, "owner".into(), "SELECT".into(), false),
                ("owner".into(), None, ObjKind::Sequences, "owner".into(), "USAGE".into(), true),
            ]
        );
    }

    #[test]
    fn a_name_that_cannot_be_read_fails_the_snapshot() {
        let mut s = Snapshot::new(vec![]);
        s.default_acl(OWNER, None, b'r', &[item(READER, &["SELECT"], &[])]);
        let e = s.finish("d".into(), None, |oid| Err(format!("role {oid}: not UTF-8"))).unwrap_err();
        assert!(e.contains("role 10"), "{e}");
    }
}
