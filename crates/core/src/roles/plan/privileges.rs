//! Default privileges (ALTER DEFAULT PRIVILEGES) and grants on existing objects, per database.

use super::*;

/// Whether a default-privilege row applies in `db`: `database` NULL → every database where pgops
/// is installed; `*` → every database that allows connections, template1 included, whether or not
/// pgops is installed there (as Pigsty applies them); a name → that database.
pub(super) fn applies(d: &DefaultPrivilege, db: &crate::roles::live::LiveDatabase) -> bool {
    match d.database.as_deref() {
        None => db.pgops_version.is_some(),
        Some("*") => true,
        Some(n) => n == db.name,
    }
}

/// The (creator, schema, kind, grantee, privilege) → grant option entries wanted in `db`.
pub(super) fn wanted_default_acl(
    desired: &Desired,
    db: &crate::roles::live::LiveDatabase,
    version: i32,
) -> BTreeMap<(String, Option<String>, ObjKind, String, String), bool> {
    let mut want = BTreeMap::new();
    for d in &desired.default_privileges {
        if !applies(d, db) {
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

pub(super) fn adp_prefix(creator: &str, schema: &Option<String>) -> String {
    let in_schema = schema
        .as_ref()
        .map(|s| format!(" IN SCHEMA {}", ident(s)))
        .unwrap_or_default();
    format!("ALTER DEFAULT PRIVILEGES FOR ROLE {}{in_schema}", ident(creator))
}

pub(super) fn default_privileges(
    b: &mut Builder,
    desired: &Desired,
    managed: &BTreeSet<&str>,
    db: &crate::roles::live::LiveDatabase,
) {
    let want = wanted_default_acl(desired, db, b.live.server_version_num);
    for d in &desired.default_privileges {
        if let Some(s) = &d.schema {
            if !db.schemas.contains(s) && applies(d, db) {
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

pub(super) fn existing_objects(b: &mut Builder, desired: &Desired, db: &crate::roles::live::LiveDatabase) {
    let version = b.live.server_version_num;
    // (schema, kind, grantee) → privilege → grant option, for rules that reach existing objects.
    let mut want: BTreeMap<(String, ObjKind, String), BTreeMap<String, bool>> = BTreeMap::new();
    let mut managed_grantees: BTreeSet<(String, ObjKind)> = BTreeSet::new();
    for d in desired
        .default_privileges
        .iter()
        .filter(|d| d.existing && d.kind.has_existing_form())
    {
        if !applies(d, db) {
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
