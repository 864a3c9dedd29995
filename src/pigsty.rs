//! `pgops.load_pigsty(inventory, cluster)`: a whole Pigsty inventory (YAML), resolved for one
//! cluster by the core crate (`pgops_core::pigsty`), loaded into pgops' config tables in the
//! caller's transaction — roles, default privileges, databases, HBA rules and aliases — with a row
//! for everything loaded and everything left out (and why).

use pgrx::JsonB;
use pgrx::prelude::*;
use serde_json::{Value, json};

use crate::error::{Code, Error, fail, raise};
use pgops_core::pigsty;

type Row = (String, String, String, String);

fn row(kind: &str, name: impl Into<String>, action: &str, detail: impl Into<String>) -> Row {
    (kind.to_string(), name.into(), action.to_string(), detail.into())
}

/// Loads cluster `cluster` of a Pigsty inventory into pgops' config tables, in one transaction
/// (the caller's): nothing is applied; plan and apply as usual afterwards.
#[pg_extern(volatile, parallel_unsafe)]
fn load_pigsty(
    inventory: &str,
    cluster: &str,
) -> TableIterator<'static, (name!(kind, String), name!(name, String), name!(action, String), name!(detail, String))> {
    crate::error::require_primary("pgops.load_pigsty()", "Run it on the primary; pgops' tables replicate to standbys.");
    crate::error::require_superuser("pgops.load_pigsty()", "It declares roles, passwords, databases and pg_hba.conf rules.");
    let inv = pigsty::yaml_to_json(inventory)
        .unwrap_or_else(|e| raise(e.hint("Pass the inventory file's text: pgops.load_pigsty(pg_read_file('/etc/pigsty/pigsty.yml'), '<cluster>') keeps its passwords out of the statement.")));
    let c = pigsty::resolve(&inv, cluster).unwrap_or_else(|e| raise(e.hint("Name one of the inventory's clusters (its pg_cluster).")));
    let mut rows: Vec<Row> = vec![];

    crate::roles::api::load_role_items(&c.roles, true, "pgops.load_pigsty()");
    for r in &c.roles {
        let name = r["name"].as_str().unwrap_or_default();
        let declared: Vec<&str> = r.as_object().map(|o| o.keys().map(String::as_str).filter(|k| *k != "name" && *k != "password").collect()).unwrap_or_default();
        let pw = if r.get("password").is_some() { "; password stored as its SCRAM verifier" } else { "" };
        rows.push(row("role", name, "loaded", format!("declared: {}{pw}; what is not declared is not managed", declared.join(", "))));
    }
    for (lines, creators, database) in &c.default_privileges {
        let n = crate::roles::api::load_default_privileges(
            JsonB(json!(lines)),
            creators.clone(),
            false,
            Some(database.clone()),
        );
        let where_ = if database == "*" { "every database that allows connections".to_string() } else { format!("database {database}") };
        rows.push(row("default privileges", creators.join(", "), "loaded", format!("{n} rule(s) for objects they create, in {where_}")));
    }
    let dbs: Vec<Value> = c.databases.clone();
    crate::databases::api::load_databases(JsonB(Value::Array(dbs.clone())));
    for d in &dbs {
        let name = d["name"].as_str().unwrap_or_default();
        let mut detail = vec![];
        for k in ["schemas", "extensions"] {
            let n = d.get(k).and_then(Value::as_array).map_or(0, Vec::len);
            if n > 0 {
                detail.push(format!("{n} {k}"));
            }
        }
        if let Some(b) = d.get("baseline").and_then(Value::as_str) {
            detail.push(format!("baseline {}", if pgops_core::databases::model::looks_like_file(b) { b } else { "(SQL)" }));
        }
        rows.push(row("database", name, "loaded", detail.join(", ")));
    }
    // The rules an earlier load of this cluster wrote are replaced as a set: a rule removed or
    // narrowed in the inventory does not stay behind.
    let source = format!("pigsty:{}", c.name);
    Spi::run_with_args("DELETE FROM pgops.hba_rule WHERE source = $1", &[source.as_str().into()])
        .unwrap_or_else(|e| raise(Error::new(Code::InvalidParameterValue, format!("pgops.load_pigsty(): {e}"))));
    for r in &c.hba_rules {
        crate::hba::api::insert_hba_rules(std::slice::from_ref(r), Some(&source));
        rows.push(row(
            "hba rule",
            r["title"].as_str().unwrap_or_default(),
            "loaded",
            format!(
                "{} {} {} {} (order {})",
                r["user"].as_str().unwrap_or("all"),
                r["db"].as_str().unwrap_or("all"),
                r["addr"].as_str().unwrap_or("-"),
                r["auth"].as_str().unwrap_or("pwd"),
                r["order"]
            ),
        ));
    }
    for (name, values) in &c.aliases {
        Spi::run_with_args(
            "INSERT INTO pgops.hba_alias (name, value) VALUES ($1, $2)",
            &[name.as_str().into(), values.clone().into()],
        )
        .unwrap_or_else(|e| raise(Error::new(Code::InvalidParameterValue, format!("pgops.load_pigsty(): alias {name}: {e}"))));
        rows.push(row("hba alias", name.as_str(), "loaded", values.join(", ")));
    }
    for i in &c.ignored {
        rows.push(row(&i.kind, i.name.as_str(), "ignored", i.why.as_str()));
    }
    if rows.is_empty() {
        fail(Code::InvalidParameterValue, "pgops.load_pigsty(): nothing to load", "");
    }
    TableIterator::new(rows)
}

pgrx::extension_sql_file!(
    "../sql/pigsty.sql",
    name = "pigsty_load",
    requires = [
        load_pigsty,
        "roles_tables",
        "databases_tables",
        "hba_tables"
    ]
);
