//! One database's snapshot for the roles planner, built from its catalog rows as read (schemas,
//! the ACLs of its tables, sequences and functions, its default ACLs) — the aggregation a single
//! big query used to do on the server, done here: every per-database worker planned and ran that
//! query cold, and its planning, hash tables and `aclexplode` rows were most of a worker's time.
//!
//! ACLs arrive as the text of each `aclitem` (`grantee=privileges/grantor`, PostgreSQL's own
//! output, `aclitemout`), NULL ACLs already replaced by `acldefault()` on the server.

use std::collections::{BTreeMap, BTreeSet};

use super::live::{DefaultAclEntry, ExistingFact, LiveDatabase, ObjectTotal};
use super::model::ObjKind;

/// The grantee of an ACL item: PUBLIC (written as an empty name) or a role by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grantee {
    Public,
    Role(String),
}

impl Grantee {
    /// As the planner names it: `PUBLIC`, or the role's name.
    pub fn name(&self) -> &str {
        match self {
            Grantee::Public => "PUBLIC",
            Grantee::Role(r) => r,
        }
    }
}

/// One `aclitem`: who, which privileges (each with its grant option), granted by whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclItem {
    pub grantee: Grantee,
    pub grantor: String,
    pub privileges: Vec<(&'static str, bool)>,
}

/// A privilege's letter in `aclitem` text (PostgreSQL's `ACL_ALL_RIGHTS_STR`) → its name, as
/// `aclexplode()` and GRANT name it.
fn privilege_name(c: char) -> Option<&'static str> {
    Some(match c {
        'a' => "INSERT",
        'r' => "SELECT",
        'w' => "UPDATE",
        'd' => "DELETE",
        'D' => "TRUNCATE",
        'x' => "REFERENCES",
        't' => "TRIGGER",
        'X' => "EXECUTE",
        'U' => "USAGE",
        'C' => "CREATE",
        'T' => "TEMPORARY",
        'c' => "CONNECT",
        's' => "SET",
        'A' => "ALTER SYSTEM",
        'm' => "MAINTAIN",
        _ => return None,
    })
}

/// A role name at the start of `s` as `aclitemout` writes it (double-quoted, `""` for a quote,
/// when it has anything but letters, digits and `_`); the rest of `s` after it.
fn role_name(s: &str) -> Result<(String, &str), String> {
    let Some(quoted) = s.strip_prefix('"') else {
        let end = s.find(['=', '/']).unwrap_or(s.len());
        return Ok((s[..end].to_string(), &s[end..]));
    };
    let mut name = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            name.push(c);
            continue;
        }
        if quoted[i + 1..].starts_with('"') {
            name.push('"');
            chars.next();
        } else {
            return Ok((name, &quoted[i + 1..]));
        }
    }
    Err("a quoted role name has no closing quote".into())
}

/// Parses one `aclitem` as PostgreSQL writes it.
pub fn parse_aclitem(item: &str) -> Result<AclItem, String> {
    let bad = |why: String| format!("unreadable ACL item {item:?}: {why}");
    let (grantee, rest) = if item.starts_with('=') { (String::new(), item) } else { role_name(item).map_err(bad)? };
    let rest = rest.strip_prefix('=').ok_or_else(|| bad("no '=' after the grantee".into()))?;
    let (privs, grantor) = rest.split_once('/').map_or((rest, ""), |(p, g)| (p, g));
    let mut privileges: Vec<(&'static str, bool)> = Vec::new();
    for c in privs.chars() {
        if c == '*' {
            match privileges.last_mut() {
                Some(last) => last.1 = true,
                None => return Err(bad("'*' before any privilege".into())),
            }
        } else {
            privileges.push((privilege_name(c).ok_or_else(|| bad(format!("unknown privilege letter {c:?}")))?, false));
        }
    }
    let grantor = if grantor.is_empty() {
        String::new()
    } else {
        let (g, tail) = role_name(grantor).map_err(bad)?;
        if !tail.is_empty() {
            return Err(bad("text after the grantor".into()));
        }
        g
    };
    Ok(AclItem {
        grantee: if grantee.is_empty() { Grantee::Public } else { Grantee::Role(grantee) },
        grantor,
        privileges,
    })
}

/// A schema the roles planner manages: not `pg_*`, `information_schema` or pgops' own.
pub fn user_schema(name: &str) -> bool {
    !name.starts_with("pg_") && name != "information_schema" && name != "pgops"
}

/// A row of `pg_namespace`: oid, name, owner's name, ACL (the default's when NULL).
#[derive(Clone, Debug)]
pub struct NamespaceRow {
    pub oid: u32,
    pub name: String,
    pub owner: String,
    pub acl: Vec<String>,
}

/// A table (any relation kind privileges are granted on as tables), sequence or function in a
/// user schema: its schema's oid, kind, owner's name, ACL (the default's when NULL).
#[derive(Clone, Debug)]
pub struct ObjectRow {
    pub namespace: u32,
    pub kind: ObjKind,
    pub owner: String,
    pub acl: Vec<String>,
}

/// A row of `pg_default_acl`: creator's name, schema (None: every schema), object type letter,
/// the ACL, and for a global entry the built-in default (`acldefault()`) it also stores.
#[derive(Clone, Debug)]
pub struct DefaultAclRow {
    pub creator: String,
    pub schema: Option<String>,
    pub objtype: String,
    pub acl: Vec<String>,
    pub builtin: Option<Vec<String>>,
}

fn default_acl_kind(objtype: &str) -> Option<ObjKind> {
    Some(match objtype {
        "r" => ObjKind::Tables,
        "S" => ObjKind::Sequences,
        "f" => ObjKind::Functions,
        "T" => ObjKind::Types,
        "n" => ObjKind::Schemas,
        _ => return None,
    })
}

/// Each (grantee, privilege, grant option) an ACL gives.
fn exploded(acl: &[String]) -> Result<Vec<(Grantee, &'static str, bool)>, String> {
    let mut out = Vec::new();
    for item in acl {
        let a = parse_aclitem(item)?;
        out.extend(a.privileges.into_iter().map(|(p, g)| (a.grantee.clone(), p, g)));
    }
    Ok(out)
}

/// The snapshot of database `name`. `grantees`: the roles whose privileges on existing objects
/// the config manages (`PUBLIC` is PUBLIC); for each, on how many objects of a kind in a schema it
/// holds each privilege, and how many such objects there are — objects it owns left out of both.
/// An object counts once for a privilege however many grantors gave it.
pub fn build(
    name: String,
    pgops_version: Option<String>,
    namespaces: &[NamespaceRow],
    objects: &[ObjectRow],
    default_acls: &[DefaultAclRow],
    grantees: &[String],
) -> Result<LiveDatabase, String> {
    let users: BTreeMap<u32, &NamespaceRow> = namespaces.iter().filter(|n| user_schema(&n.name)).map(|n| (n.oid, n)).collect();
    let mut schemas: Vec<String> = users.values().map(|n| n.name.clone()).collect();
    schemas.sort();
    let wanted: BTreeSet<Grantee> = grantees
        .iter()
        .map(|g| if g == "PUBLIC" { Grantee::Public } else { Grantee::Role(g.clone()) })
        .collect();
    let mut granted: BTreeMap<(String, ObjKind, String, &'static str), i64> = BTreeMap::new();
    let mut totals: BTreeMap<(String, ObjKind, String), i64> = BTreeMap::new();
    if !wanted.is_empty() {
        let schema_objects = users.values().map(|n| (n.name.as_str(), ObjKind::Schemas, n.owner.as_str(), &n.acl));
        let others = objects
            .iter()
            .filter_map(|o| users.get(&o.namespace).map(|n| (n.name.as_str(), o.kind, o.owner.as_str(), &o.acl)));
        for (schema, kind, owner, acl) in schema_objects.chain(others) {
            let not_owner = |g: &Grantee| g.name() != owner || *g == Grantee::Public;
            for g in wanted.iter().filter(|g| not_owner(g)) {
                *totals.entry((schema.to_string(), kind, g.name().to_string())).or_default() += 1;
            }
            let held: BTreeSet<(Grantee, &'static str)> = exploded(acl)?
                .into_iter()
                .filter(|(g, _, _)| wanted.contains(g) && not_owner(g))
                .map(|(g, p, _)| (g, p))
                .collect();
            for (g, p) in held {
                *granted.entry((schema.to_string(), kind, g.name().to_string(), p)).or_default() += 1;
            }
        }
    }
    let mut default_acl = Vec::new();
    for d in default_acls {
        let Some(kind) = default_acl_kind(&d.objtype) else { continue };
        let builtin = match &d.builtin {
            Some(b) => exploded(b)?,
            None => vec![],
        };
        for (g, privilege, grant_option) in exploded(&d.acl)? {
            if builtin.iter().any(|(bg, bp, bo)| *bg == g && *bp == privilege && *bo == grant_option) {
                continue;
            }
            default_acl.push(DefaultAclEntry {
                creator: d.creator.clone(),
                schema: d.schema.clone(),
                kind,
                grantee: g.name().to_string(),
                privilege: privilege.to_string(),
                grant_option,
            });
        }
    }
    Ok(LiveDatabase {
        name,
        pgops_version,
        schemas,
        default_acl,
        object_totals: totals
            .into_iter()
            .map(|((schema, kind, grantee), total)| ObjectTotal { schema, kind, grantee, total })
            .collect(),
        existing: granted
            .into_iter()
            .map(|((schema, kind, grantee, privilege), n)| ExistingFact {
                schema,
                kind,
                grantee,
                privilege: privilege.to_string(),
                granted: n,
            })
            .collect(),
        dependents: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn aclitems_parse_as_postgres_writes_them() {
        let a = parse_aclitem("alice=arw*/postgres").unwrap();
        assert_eq!(a.grantee, Grantee::Role("alice".into()));
        assert_eq!(a.grantor, "postgres");
        assert_eq!(a.privileges, vec![("INSERT", false), ("SELECT", false), ("UPDATE", true)]);
        let p = parse_aclitem("=X/owner").unwrap();
        assert_eq!(p.grantee, Grantee::Public);
        assert_eq!(p.privileges, vec![("EXECUTE", false)]);
        // Quoted names: anything but letters, digits and _; quotes doubled; '=' and '/' inside.
        let q = parse_aclitem(r#""we""ird=/x"=U*C/"gr/an=tor""#).unwrap();
        assert_eq!(q.grantee, Grantee::Role(r#"we"ird=/x"#.into()));
        assert_eq!(q.grantor, "gr/an=tor");
        assert_eq!(q.privileges, vec![("USAGE", true), ("CREATE", false)]);
        let u = parse_aclitem(r#""Ünïcode rôle"=r/postgres"#).unwrap();
        assert_eq!(u.grantee, Grantee::Role("Ünïcode rôle".into()));
        // A role named PUBLIC is a role (written unquoted); PUBLIC itself has an empty name.
        assert_eq!(parse_aclitem("PUBLIC=r/x").unwrap().grantee, Grantee::Role("PUBLIC".into()));
        for (every, letters) in [("arwdDxtm", 8), ("XUCTcsA", 7)] {
            assert_eq!(parse_aclitem(&format!("r={every}/r")).unwrap().privileges.len(), letters);
        }
    }

    #[test]
    fn bad_aclitems_say_what_is_wrong() {
        for (item, why) in [
            ("alice", "no '='"),
            (r#""alice=r/x"#, "no closing quote"),
            ("alice=q/x", "unknown privilege letter 'q'"),
            ("alice=*r/x", "'*' before"),
            (r#"alice=r/"x"y"#, "text after the grantor"),
        ] {
            let e = parse_aclitem(item).unwrap_err();
            assert!(e.contains(why), "{item}: {e}");
            assert!(e.contains("unreadable ACL item"), "{e}");
        }
    }

    fn ns(oid: u32, name: &str, owner: &str, a: &[&str]) -> NamespaceRow {
        NamespaceRow { oid, name: name.into(), owner: owner.into(), acl: acl(a) }
    }

    fn obj(namespace: u32, kind: ObjKind, owner: &str, a: &[&str]) -> ObjectRow {
        ObjectRow { namespace, kind, owner: owner.into(), acl: acl(a) }
    }

    #[test]
    fn existing_privileges_count_objects_not_owned_by_the_grantee() {
        let namespaces = [
            ns(11, "pg_catalog", "postgres", &["postgres=UC/postgres", "=U/postgres"]),
            ns(13000, "information_schema", "postgres", &["=U/postgres"]),
            ns(16400, "pgops", "postgres", &["reader=U/postgres"]),
            ns(2200, "public", "pg_database_owner", &["pg_database_owner=UC/pg_database_owner", "=U/pg_database_owner"]),
            ns(16500, "app", "owner", &["owner=UC/owner", "reader=U/owner"]),
        ];
        let objects = [
            obj(16500, ObjKind::Tables, "owner", &["owner=arwdDxt/owner", "reader=r/owner"]),
            // the same grant from two grantors: one object
            obj(16500, ObjKind::Tables, "owner", &["owner=arwdDxt/owner", "reader=r/owner", "reader=r*/admin"]),
            obj(16500, ObjKind::Tables, "owner", &["owner=arwdDxt/owner"]),
            // owned by the grantee: neither held nor counted
            obj(16500, ObjKind::Tables, "reader", &["reader=arwdDxt/reader"]),
            obj(16500, ObjKind::Sequences, "owner", &["owner=rwU/owner", "reader=rU/owner"]),
            obj(16500, ObjKind::Functions, "owner", &["=X/owner", "owner=X/owner"]),
            // not a user schema
            obj(11, ObjKind::Functions, "postgres", &["=X/postgres"]),
            obj(16400, ObjKind::Tables, "postgres", &["reader=r/postgres"]),
        ];
        let db = build(
            "app".into(),
            Some("0.1.0".into()),
            &namespaces,
            &objects,
            &[],
            &["reader".into(), "PUBLIC".into(), "ghost".into()],
        )
        .unwrap();
        assert_eq!(db.schemas, vec!["app", "public"]);
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
        assert_eq!(total("app", ObjKind::Tables, "reader"), Some(3));
        assert_eq!(total("app", ObjKind::Tables, "PUBLIC"), Some(4));
        assert_eq!(total("app", ObjKind::Tables, "ghost"), Some(4));
        assert_eq!(held("app", ObjKind::Sequences, "reader", "USAGE"), Some(1));
        assert_eq!(held("app", ObjKind::Functions, "PUBLIC", "EXECUTE"), Some(1));
        assert_eq!(held("app", ObjKind::Schemas, "reader", "USAGE"), Some(1));
        assert_eq!(held("public", ObjKind::Schemas, "PUBLIC", "USAGE"), Some(1));
        assert_eq!(total("public", ObjKind::Schemas, "reader"), Some(1));
        assert!(db.existing.iter().all(|f| f.grantee != "owner" && f.schema != "pgops" && f.schema != "pg_catalog"));
        assert!(db.existing.iter().all(|f| f.granted > 0));
        // no grantee managed: nothing counted
        let none = build("app".into(), None, &namespaces, &objects, &[], &[]).unwrap();
        assert!(none.existing.is_empty() && none.object_totals.is_empty());
        assert_eq!(none.schemas, vec!["app", "public"]);
    }

    #[test]
    fn default_acls_leave_out_the_builtin_defaults_of_global_entries() {
        let rows = [
            DefaultAclRow {
                creator: "dbrole_admin".into(),
                schema: None,
                objtype: "f".into(),
                acl: acl(&["dbrole_admin=X/dbrole_admin", "=X/dbrole_admin", "reader=X*/dbrole_admin"]),
                builtin: Some(acl(&["=X/dbrole_admin", "dbrole_admin=X/dbrole_admin"])),
            },
            DefaultAclRow {
                creator: "owner".into(),
                schema: Some("app".into()),
                objtype: "r".into(),
                acl: acl(&["reader=r/owner"]),
                builtin: None,
            },
            DefaultAclRow {
                creator: "owner".into(),
                schema: None,
                objtype: "L".into(),
                acl: acl(&["reader=U/owner"]),
                builtin: None,
            },
        ];
        let db = build("d".into(), None, &[], &[], &rows, &[]).unwrap();
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
            ]
        );
    }

    #[test]
    fn an_unreadable_acl_fails_the_snapshot() {
        let e = build(
            "d".into(),
            None,
            &[ns(16500, "app", "o", &["o=UC/o"])],
            &[obj(16500, ObjKind::Tables, "o", &["reader=?/o"])],
            &[],
            &["reader".into()],
        )
        .unwrap_err();
        assert!(e.contains("reader=?/o"), "{e}");
    }
}
