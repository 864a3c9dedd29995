//! The instance's state, read by the etcd worker in a short read-only transaction: the SQL is in
//! sql/queries/etcd_*.sql (included here at build time), so a DBA can read and run exactly what
//! runs every `pgops.etcd_interval`; this module builds the document from what it returns.

use serde_json::{Value, json};

use super::state::{MemberState, SCHEMA};

/// Server facts any instance has, primary or replica.
pub const SERVER_STATE_SQL: &str = include_str!("../../../../sql/queries/etcd_server_state.sql");

/// What pgops itself knows, when it is installed in the worker's database.
pub const PGOPS_STATE_SQL: &str = include_str!("../../../../sql/queries/etcd_pgops_state.sql");

/// The slow facts, read every `SLOW_FACTS_EVERY` rather than every push: database sizes (a stat
/// of every file of every database) and role drift (every role, membership and default privilege
/// in every database against pgops.role: a worker per other database).
pub const DATABASE_SIZES_SQL: &str = include_str!("../../../../sql/queries/etcd_database_sizes.sql");
pub const ROLE_DRIFT_SQL: &str = include_str!("../../../../sql/queries/etcd_role_drift.sql");
/// Declared databases that differ from the catalog (pgops.database_spec against every database).
pub const DATABASE_DRIFT_SQL: &str = include_str!("../../../../sql/queries/etcd_database_drift.sql");
pub const SLOW_FACTS_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Rounds to two significant digits: forecasts move a little with every sample, and a document
/// that changes every interval would be rewritten every interval.
pub fn two_digits(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// The member document from the two queries' results and the instance's names. Fails when the
/// server part does not have the document's shape.
pub fn member_state(
    cluster: &str,
    instance: &str,
    hostname: &str,
    server: Value,
    pgops: Option<Value>,
) -> Result<MemberState, String> {
    let mut doc = server;
    if !doc.is_object() {
        return Err(format!("state query returned {doc}"));
    }
    let obj = doc.as_object_mut().expect("checked");
    if let Some(Value::Object(extra)) = pgops {
        for (k, v) in extra {
            obj.insert(k, v);
        }
    }
    // Replication lag in hundredths of a second, and "no recent measurement" of a caught-up
    // standby (PostgreSQL shows NULL once an idle standby has replayed everything) as 0: the
    // sub-millisecond lags of an idle cluster's last reports are not a change worth a write.
    if let Some(Value::Array(peers)) = obj.get_mut("replication") {
        for p in peers.iter_mut().filter_map(Value::as_object_mut) {
            let caught_up = p.get("replay_lag_bytes").and_then(Value::as_i64) == Some(0);
            let lag = match p.get("replay_lag_seconds").and_then(Value::as_f64) {
                Some(x) => Some((x * 100.0).round() / 100.0),
                None if caught_up => Some(0.0),
                None => None,
            };
            p.insert("replay_lag_seconds".into(), json!(lag));
        }
    }
    for k in ["xids_per_second", "seconds_to_freeze_max_age"] {
        if let Some(x) = obj.get(k).and_then(Value::as_f64) {
            obj.insert(k.into(), json!(two_digits(x)));
        }
    }
    for (k, v) in [
        ("schema", json!(SCHEMA)),
        ("cluster", json!(cluster)),
        ("instance", json!(instance)),
        ("hostname", json!(hostname)),
        ("pgops_version", json!(env!("CARGO_PKG_VERSION"))),
    ] {
        obj.insert(k.into(), v);
    }
    serde_json::from_value(doc).map_err(|e| format!("state document: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_merges_server_facts_pgops_facts_and_names() {
        let server = json!({
            "role": "replica", "timeline": 3, "current_lsn": null, "receive_lsn": "0/3000060",
            "replay_lsn": "0/3000060", "replay_lag_seconds": 0.0, "replication": [],
            "server_version": "15.14", "started_at": "2026-11-21T10:00:00+00:00", "port": 5432,
            "data_directory": "/pg/data", "system_identifier": "7301",
            "databases": [{"name": "postgres", "bytes": 7500000}],
            "max_xid_age": 1200, "max_mxid_age": 1, "updated_at": "2026-11-21T10:00:05+00:00"
        });
        let extra = json!({"xids_per_second": 2.5, "seconds_to_freeze_max_age": null, "role_drift": 0,
                           "hba_drift": false, "hba_state": "current", "last_freeze": null});
        let s = member_state("pg-meta", "pg-meta-2", "node2", server.clone(), Some(extra)).unwrap();
        assert_eq!((s.schema, s.role.as_str(), s.timeline), (1, "replica", Some(3)));
        assert_eq!(
            (s.cluster.as_str(), s.instance.as_str(), s.hostname.as_str()),
            ("pg-meta", "pg-meta-2", "node2")
        );
        assert_eq!(s.xids_per_second, Some(2.5));
        assert_eq!(s.hba_drift, Some(false));
        assert_eq!(s.hba_state.as_deref(), Some("current"));
        assert_eq!(s.pgops_version, env!("CARGO_PKG_VERSION"));
        // Without pgops installed the pgops facts are absent, not invented.
        let bare = member_state("c", "i", "h", server, None).unwrap();
        assert_eq!((bare.role_drift, bare.xids_per_second), (None, None));
        assert!(member_state("c", "i", "h", json!([1]), None).is_err());
    }

    #[test]
    fn an_idle_standbys_lag_reports_are_not_a_change() {
        let server = |lag: Value| {
            json!({"role": "primary", "replication": [{"application_name": "s1", "state": "streaming",
                "sync_state": "async", "replay_lag_seconds": lag, "replay_lag_bytes": 0}],
                "server_version": "15", "started_at": "", "port": 1, "data_directory": "/d",
                "system_identifier": "1", "databases": [], "max_xid_age": 1, "max_mxid_age": 1, "updated_at": ""})
        };
        let digests: Vec<u64> = [json!(0.000437), json!(0.000379), Value::Null]
            .into_iter()
            .map(|l| member_state("c", "i", "h", server(l), None).unwrap().content_digest())
            .collect();
        assert!(digests.iter().all(|d| *d == digests[0]), "{digests:?}");
        let slow = member_state("c", "i", "h", server(json!(1.234)), None).unwrap();
        assert_eq!(slow.replication[0].replay_lag_seconds, Some(1.23));
        assert_ne!(slow.content_digest(), digests[0]);
    }

    #[test]
    fn forecasts_are_rounded_so_an_idle_server_is_not_rewritten() {
        assert_eq!(two_digits(2.4871), 2.5);
        assert_eq!(two_digits(79_999_123.0), 80_000_000.0);
        assert_eq!(two_digits(0.0123), 0.012);
        assert_eq!(two_digits(0.0), 0.0);
        let server = json!({"role": "primary", "replication": [], "server_version": "15", "started_at": "",
            "port": 1, "data_directory": "/d", "system_identifier": "1", "databases": [], "max_xid_age": 1,
            "max_mxid_age": 1, "updated_at": ""});
        let a = member_state("c", "i", "h", server.clone(), Some(json!({"xids_per_second": 2.4871}))).unwrap();
        let b = member_state("c", "i", "h", server, Some(json!({"xids_per_second": 2.4712}))).unwrap();
        assert_eq!(a.content_digest(), b.content_digest());
    }
}
