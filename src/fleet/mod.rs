//! A fleet declared once in etcd: the etcd worker follows `<prefix>/fleet/<pgops.fleet_name>`,
//! verifies it (`pgops_core::fleet::verify`), and on the primary loads this cluster's share into
//! the config tables in one transaction (`load_share`); the reconcile policies apply it. What the
//! instance reports and what the whole fleet reports are here too.

use pgrx::JsonB;
use pgrx::prelude::*;
use serde_json::{Value, json};

use crate::error::Result;
use pgops_core::fleet::{MemberRow, Verified};

/// Where the etcd worker leaves the fleet as it last read it (every member's document).
pub const FLEET_FILE: &str = "pg_stat_tmp/pgops.fleet.json";

/// What one load did.
pub struct Loaded {
    pub roles: usize,
    pub databases: usize,
    pub hba_rules: usize,
    pub default_privileges: usize,
    pub conflicts: Vec<String>,
}

fn names(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> Result<Vec<String>> {
    Ok(crate::spi::get_one_with_args::<Vec<String>>(sql, args)?.unwrap_or_default())
}

/// The config tables whose rows a fleet declares by name.
#[derive(Clone, Copy)]
enum ByName {
    Role,
    Database,
}

impl ByName {
    /// (pgops.fleet_row kind, table) — constants, never input.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            ByName::Role => ("role", "pgops.role"),
            ByName::Database => ("database", "pgops.database_spec"),
        }
    }
}

/// Loads the share's entries of one kind declared by name: those a local row already has are
/// conflicts (kept, reported), those the fleet declared before and no longer does are removed
/// from the table, the rest are loaded by `load` (the kind's own loader) and listed as the
/// fleet's. Returns the names loaded.
fn load_by_name(
    fleet: &str,
    by: ByName,
    items: Vec<Value>,
    conflicts: &mut Vec<String>,
    load: impl FnOnce(&[Value]),
) -> Result<Vec<String>> {
    let (kind, table) = by.names();
    let name_of = |r: &Value| r["name"].as_str().map(str::to_string);
    let wanted: Vec<String> = items.iter().filter_map(name_of).collect();
    let owned = names(
        "SELECT coalesce(array_agg(name), '{}') FROM pgops.fleet_row WHERE fleet = $1 AND kind = $2",
        &[fleet.into(), kind.into()],
    )?;
    let local = names(
        &format!("SELECT coalesce(array_agg(name), '{{}}') FROM {table} WHERE name = ANY($1) AND name <> ALL($2)"),
        &[wanted.clone().into(), owned.clone().into()],
    )?;
    conflicts.extend(local.iter().map(|n| format!("{kind} {n}: declared locally, kept")));
    let gone: Vec<String> = owned.iter().filter(|n| !wanted.contains(n)).cloned().collect();
    Spi::run_with_args(&format!("DELETE FROM {table} WHERE name = ANY($1)"), &[gone.clone().into()])?;
    Spi::run_with_args(
        "DELETE FROM pgops.fleet_row WHERE fleet = $1 AND kind = $2 AND name = ANY($3)",
        &[fleet.into(), kind.into(), gone.into()],
    )?;
    let to_load: Vec<Value> = items
        .into_iter()
        .filter(|r| !local.iter().any(|n| Some(n.as_str()) == r["name"].as_str()))
        .collect();
    if !to_load.is_empty() {
        load(&to_load);
    }
    let loaded: Vec<String> = to_load.iter().filter_map(name_of).collect();
    Spi::run_with_args(
        "INSERT INTO pgops.fleet_row (fleet, kind, name) SELECT $1, $2, n FROM pg_catalog.unnest($3::text[]) n ON CONFLICT DO NOTHING",
        &[fleet.into(), kind.into(), loaded.clone().into()],
    )?;
    Ok(loaded)
}

/// Loads this cluster's share of a verified document, in the caller's transaction (the etcd
/// worker's: all of it or nothing). Rows the fleet declared last time and no longer does are
/// deleted (no longer declared: left as they are in the catalog, unmanaged); rows declared
/// locally are never touched, and a fleet declaration with a local row's name is a conflict,
/// reported and not loaded.
pub fn load_share(fleet: &str, v: &Verified, revision: i64, cluster: &str) -> Result<Loaded> {
    let share = v.payload.clusters.get(cluster);
    let mut conflicts = vec![];
    let fleet_arg = || -> pgrx::datum::DatumWithOid { fleet.into() };

    let roles = share.map(|c| c.roles.clone()).unwrap_or_default();
    let loaded_roles = load_by_name(fleet, ByName::Role, roles, &mut conflicts, |load| {
        crate::roles::api::load_role_items(load, true, "the fleet document");
    })?;
    let databases = share.map(|c| c.databases.clone()).unwrap_or_default();
    let loaded_dbs = load_by_name(fleet, ByName::Database, databases, &mut conflicts, |load| {
        crate::databases::api::load_databases(JsonB(Value::Array(load.to_vec())));
    })?;

    // Default privileges: the fleet's rows are replaced as a set; one with the key of a local row
    // is a conflict.
    Spi::run_with_args(
        "DELETE FROM pgops.default_privilege WHERE id::text IN
           (SELECT name FROM pgops.fleet_row WHERE fleet = $1 AND kind = 'default_privilege')",
        &[fleet_arg()],
    )?;
    Spi::run_with_args(
        "DELETE FROM pgops.fleet_row WHERE fleet = $1 AND kind = 'default_privilege'",
        &[fleet_arg()],
    )?;
    let version = crate::spi::get_one::<i32>("SELECT pg_catalog.current_setting('server_version_num')::int")?.unwrap_or(0);
    let mut privileges = 0;
    for (lines, creators, database) in share.map(|c| c.default_privileges.clone()).unwrap_or_default() {
        let database = (database != "*").then_some(database);
        for line in &lines {
            let (privs, kind, schema, grantee, grant_option) = crate::roles::model::parse_grant_line(line)?;
            let privs = crate::roles::model::normalise_privileges(&privs, kind, version)?;
            for creator in &creators {
                crate::roles::model::check_role_name(creator)?;
                let id = crate::spi::get_one_with_args::<i64>(
                    "INSERT INTO pgops.default_privilege (creator, database, schema, object_type, privileges, grantee, grant_option)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id",
                    &[
                        creator.as_str().into(),
                        database.clone().into(),
                        schema.clone().into(),
                        kind.as_str().into(),
                        privs.clone().into(),
                        grantee.as_str().into(),
                        grant_option.into(),
                    ],
                )?;
                match id {
                    Some(id) => {
                        privileges += 1;
                        Spi::run_with_args(
                            "INSERT INTO pgops.fleet_row (fleet, kind, name) VALUES ($1, 'default_privilege', $2) ON CONFLICT DO NOTHING",
                            &[fleet_arg(), id.to_string().into()],
                        )?;
                    }
                    None => conflicts.push(format!("default privilege \"{line}\" for {creator}: declared locally, kept")),
                }
            }
        }
    }

    // HBA rules: replaced as a set (source fleet:<name>). Aliases (pgops.hba_alias: the cluster's
    // members, the intranet…) are this cluster's facts and stay local: the fleet never writes them.
    let source = format!("fleet:{fleet}");
    Spi::run_with_args("DELETE FROM pgops.hba_rule WHERE source = $1", &[source.as_str().into()])?;
    let rules: Vec<Value> = share.map(|c| c.hba_rules.clone()).unwrap_or_default();
    if !rules.is_empty() {
        crate::hba::api::insert_hba_rules(&rules, Some(&source));
    }

    let loaded = Loaded {
        roles: loaded_roles.len(),
        databases: loaded_dbs.len(),
        hba_rules: rules.len(),
        default_privileges: privileges,
        conflicts,
    };
    Spi::run_with_args(
        "INSERT INTO pgops.fleet_state (fleet, generation, sha256, signed_by, signed_at, revision, loaded, conflicts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (fleet) DO UPDATE SET generation = EXCLUDED.generation, sha256 = EXCLUDED.sha256,
           signed_by = EXCLUDED.signed_by, signed_at = EXCLUDED.signed_at, revision = EXCLUDED.revision,
           loaded_at = pg_catalog.now(), loaded = EXCLUDED.loaded, conflicts = EXCLUDED.conflicts",
        &[
            fleet_arg(),
            v.payload.generation.into(),
            v.sha256.as_str().into(),
            v.key.as_str().into(),
            v.payload.signed_at.as_str().into(),
            revision.into(),
            JsonB(json!({"in_document": share.is_some(), "roles": loaded.roles, "databases": loaded.databases,
                         "hba_rules": loaded.hba_rules, "default_privileges": loaded.default_privileges}))
            .into(),
            JsonB(json!(loaded.conflicts)).into(),
        ],
    )?;
    Ok(loaded)
}

/// The generation and digest this cluster loaded (None: none yet, or pgops not installed).
pub fn loaded(fleet: &str) -> Result<Option<(i64, String)>> {
    let v = crate::spi::get_one_with_args::<JsonB>(
        "SELECT CASE WHEN pg_catalog.to_regclass('pgops.fleet_state') IS NULL THEN NULL
                ELSE (SELECT pg_catalog.jsonb_build_array(generation, sha256) FROM pgops.fleet_state WHERE fleet = $1) END",
        &[fleet.into()],
    )?;
    Ok(v.and_then(|j| Some((j.0.get(0)?.as_i64()?, j.0.get(1)?.as_str()?.to_string()))))
}

/// What this instance knows for its report: generation loaded, conflicts, and each reconcile
/// capability's (policy, state, rows held or failed).
pub fn facts(fleet: &str) -> Result<(Option<i64>, i64, Vec<(String, String, String, i64)>)> {
    let v = crate::spi::get_one_with_args::<JsonB>(
        "SELECT pg_catalog.jsonb_build_object(
            'generation', (SELECT generation FROM pgops.fleet_state WHERE fleet = $1),
            'conflicts', coalesce((SELECT pg_catalog.jsonb_array_length(conflicts) FROM pgops.fleet_state WHERE fleet = $1), 0),
            'reconcile', (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(capability, policy, state,
                                   coalesce(held, 0) + coalesce(failed, 0))) FROM pgops.reconcile_status))",
        &[fleet.into()],
    )?
    .map(|j| j.0)
    .unwrap_or(Value::Null);
    let reconcile = v["reconcile"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x[0].as_str().unwrap_or_default().to_string(),
                        x[1].as_str().unwrap_or_default().to_string(),
                        x[2].as_str().unwrap_or_default().to_string(),
                        x[3].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((v["generation"].as_i64(), v["conflicts"].as_i64().unwrap_or(0), reconcile))
}

/// Leaves the fleet as read (every member's document) for `pgops.fleet_status`.
pub fn write_fleet_file(fleet: &str, published: Option<i64>, rows: &[MemberRow]) -> std::result::Result<(), String> {
    let doc = json!({"fleet": fleet, "published_generation": published, "members": rows});
    let tmp = format!("{FLEET_FILE}.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&doc).map_err(|e| e.to_string())?)
        .and_then(|()| std::fs::rename(&tmp, FLEET_FILE))
        .map_err(|e| format!("cannot write {FLEET_FILE}: {e}"))
}

/// Rows of `pgops.fleet_status`: the fleet as the etcd worker last read it.
#[pg_extern(stable, parallel_safe)]
fn _fleet_status() -> TableIterator<
    'static,
    (
        name!(fleet, String),
        name!(cluster, String),
        name!(instance, String),
        name!(role, String),
        name!(generation, Option<i64>),
        name!(published_generation, Option<i64>),
        name!(state, Option<String>),
        name!(held, Option<i64>),
        name!(last_error, Option<String>),
        name!(updated_at, Option<String>),
    ),
> {
    // Nothing to show is a row that says why (a Grafana panel is never silently empty).
    let (cluster, instance, _) = crate::identity::current();
    let why = |fleet: &str, state: &str, why: &str| {
        TableIterator::new(vec![(
            fleet.to_string(),
            cluster.clone(),
            instance.clone(),
            crate::hba::api::current_role(),
            None,
            None,
            Some(state.to_string()),
            None,
            Some(why.to_string()),
            None,
        )])
    };
    let Some(fleet) = crate::gucs::fleet_name() else {
        return why("", "off", "pgops.fleet_name is empty: this instance follows no fleet");
    };
    let doc: Value = std::fs::read(FLEET_FILE)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    if doc["fleet"].as_str() != Some(fleet.as_str()) {
        return why(&fleet, "pending", "the etcd worker has not read the fleet yet (is pgops.etcd_endpoints set?)");
    }
    let published = doc["published_generation"].as_i64();
    let rows: Vec<MemberRow> = serde_json::from_value(doc["members"].clone()).unwrap_or_default();
    TableIterator::new(rows.into_iter().map(move |r| {
        (
            fleet.clone(),
            r.cluster,
            r.instance,
            r.role,
            r.generation,
            published,
            r.state,
            r.held,
            r.last_error,
            r.updated_at,
        )
    }))
}

pgrx::extension_sql_file!(
    "../../sql/fleet.sql",
    name = "fleet_tables",
    requires = ["roles_tables", "databases_tables", "hba_tables", "reconcile_tables", fleet::_fleet_status]
);
