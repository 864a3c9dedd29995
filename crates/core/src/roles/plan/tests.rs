use super::*;
use crate::roles::attributes::Attributes;
use crate::roles::live::{ExistingFact, LiveDatabase, ObjectTotal};

fn live() -> Live {
    let mut roles = BTreeMap::new();
    for n in ["postgres", "pg_monitor"] {
        roles.insert(
            n.to_string(),
            LiveRole {
                name: n.into(),
                attrs: Attributes {
                    superuser: n == "postgres",
                    login: n == "postgres",
                    inherit: true,
                    ..Default::default()
                },
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
        unreadable: BTreeMap::new(),
    }
}

#[test]
fn an_unreadable_database_is_a_note_and_the_others_are_planned() {
    let mut l = live();
    l.roles.insert("ro".into(), LiveRole { name: "ro".into(), ..Default::default() });
    l.unreadable.insert("broken".into(), "a schema's name is not valid UTF-8 here".into());
    let rule = |database: Option<&str>| DefaultPrivilege {
        creator: "postgres".into(),
        database: database.map(str::to_string),
        schema: None,
        kind: ObjKind::Tables,
        privileges: vec!["select".into()],
        grantee: "ro".into(),
        grant_option: false,
        existing: false,
    };
    let mut ro = RoleSpec::new("ro");
    ro.attrs.login = false;
    let d = Desired {
        roles: vec![ro],
        default_privileges: vec![rule(None), rule(Some("broken"))],
        valid_until: BTreeMap::new(),
    };
    let p = plan(&d, &l, &opts()).unwrap();
    // postgres is planned; nothing runs in the unreadable database, and it is not called missing
    assert!(statements(&p).iter().any(|s| s.contains("GRANT SELECT ON TABLES TO \"ro\"")), "{:?}", statements(&p));
    assert!(p.steps.iter().all(|s| s.database.as_deref() != Some("broken")));
    let notes: Vec<&Diff> = p.notes.iter().filter(|n| n.object.contains("\"broken\"")).collect();
    assert_eq!(notes.len(), 1, "{:?}", p.notes);
    assert_eq!(notes[0].want.as_deref(), Some("read"));
    assert!(notes[0].have.as_deref().unwrap_or("").contains("not valid UTF-8"), "{:?}", notes[0]);

    // A role marked absent is not dropped while a database is unreadable: nothing of its drop runs.
    l.roles.insert("gone".into(), LiveRole { name: "gone".into(), ..Default::default() });
    let mut gone = RoleSpec::new("gone");
    gone.present = false;
    let mut d2 = d.clone();
    d2.roles.push(gone);
    let p = plan(&d2, &l, &opts()).unwrap();
    assert!(statements(&p).iter().all(|s| !s.contains("\"gone\"")), "{:?}", statements(&p));
    let held: Vec<&Diff> = p.notes.iter().filter(|n| n.object == "role \"gone\"").collect();
    assert_eq!(held.len(), 1, "{:?}", p.notes);
    assert!(held[0].have.as_deref().unwrap_or("").contains("once every database can be read (not: broken)"));
    l.unreadable.clear();
    let p = plan(&d2, &l, &opts()).unwrap();
    assert!(statements(&p).iter().any(|s| s == "DROP ROLE \"gone\""), "{:?}", statements(&p));
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
        lr.attrs = r.attrs;
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
    ro.attrs.login = false;
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
            attrs: Attributes {
                superuser: true,
                login: false,
                inherit: true,
                ..Default::default()
            },
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
            attrs: Attributes {
                login: true,
                inherit: true,
                ..Default::default()
            },
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
            attrs: Attributes {
                login: true,
                inherit: true,
                ..Default::default()
            },
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
    ro.attrs.login = false;
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
            attrs: Attributes {
                login: true,
                ..Default::default()
            },
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

#[test]
fn steps_group_by_phase_and_database_in_first_appearance_order() {
    let step = |phase: Phase, db: Option<&str>| Step {
        phase,
        database: db.map(str::to_string),
        statement: String::new(),
        display: String::new(),
        reason: String::new(),
        risk: Risk::Safe,
        diffs: vec![],
    };
    let steps = [
        step(Phase::Cluster, None),
        step(Phase::Database, Some("b")),
        step(Phase::Cluster, None),
        step(Phase::Database, Some("a")),
        step(Phase::Database, Some("b")),
        step(Phase::ClusterFinal, None),
    ];
    let g: Vec<(Phase, Option<String>, Vec<usize>)> = groups(&steps)
        .into_iter()
        .map(|g| (g.phase, g.database, g.rows))
        .collect();
    assert_eq!(
        g,
        [
            (Phase::Cluster, None, vec![0, 2]),
            (Phase::Database, Some("b".into()), vec![1, 4]),
            (Phase::Database, Some("a".into()), vec![3]),
            (Phase::ClusterFinal, None, vec![5]),
        ]
    );
}

#[test]
fn undeclared_attributes_are_not_managed_and_the_bootstrap_superuser_is_never_stripped() {
    // Pigsty's `{name: postgres, superuser: true}` with everything else left NULL: nothing to do.
    let row = serde_json::json!({"name": "postgres", "state": "present", "login": null, "superuser": true,
        "createdb": null, "createrole": null, "inherit": null, "replication": null, "bypassrls": null,
        "connlimit": null, "password": null, "expire_in": null, "expire_at": null, "comment": null,
        "roles": [], "parameters": {}, "pgbouncer": false, "pool_mode": "transaction", "pool_connlimit": -1});
    let pg = crate::roles::model::role_from_row(&row).unwrap();
    assert!(pg.unmanaged.contains("createdb") && pg.unmanaged.contains("connlimit") && !pg.unmanaged.contains("superuser"));
    let mut l = live();
    l.roles.get_mut("postgres").unwrap().attrs.createdb = true;
    l.roles.get_mut("postgres").unwrap().attrs.replication = true;
    assert!(statements(&plan(&desired(vec![pg.clone()]), &l, &opts()).unwrap()).is_empty());
    // Declared false, the bootstrap superuser still keeps it (PostgreSQL's own bootstrap role).
    let mut strict = RoleSpec::new("postgres");
    strict.attrs.superuser = true;
    assert!(statements(&plan(&desired(vec![strict]), &l, &opts()).unwrap()).is_empty());
    // Any other role: a NULL attribute is left as it is, a declared one converges.
    let mut app = pg.clone();
    app.name = "app".into();
    app.attrs.superuser = false;
    let p = plan(&desired(vec![app.clone()]), &l, &opts()).unwrap();
    // Created as Pigsty's CREATE USER creates it: it may log in.
    assert_eq!(statements(&p), vec!["CREATE ROLE \"app\" WITH LOGIN NOSUPERUSER".to_string()]);
    let mut l2 = l.clone();
    l2.roles.insert(
        "app".into(),
        LiveRole { name: "app".into(), attrs: Attributes { createdb: true, superuser: true, ..Default::default() }, connlimit: 5, ..Default::default() },
    );
    let p = plan(&desired(vec![app]), &l2, &opts()).unwrap();
    assert_eq!(statements(&p), vec!["ALTER ROLE \"app\" WITH NOSUPERUSER".to_string()]);
}
