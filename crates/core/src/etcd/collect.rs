//! The instance's state, read by the etcd worker in a short read-only transaction. The SQL is
//! here in full so a DBA can read exactly what runs every `pgops.etcd_interval`.

use serde_json::{Value, json};

use super::state::{MemberState, SCHEMA};

/// Server facts any instance has, primary or replica.
pub const SERVER_STATE_SQL: &str = r#"
SELECT jsonb_build_object(
  'role', CASE WHEN pg_is_in_recovery() THEN 'replica' ELSE 'primary' END,
  'timeline', CASE WHEN pg_is_in_recovery()
                   THEN coalesce((SELECT received_tli::bigint FROM pg_stat_wal_receiver),
                                 (SELECT timeline_id::bigint FROM pg_control_checkpoint()))
                   ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint END,
  'current_lsn', CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END,
  'receive_lsn', pg_last_wal_receive_lsn()::text,
  'replay_lsn', pg_last_wal_replay_lsn()::text,
  'replay_lag_seconds', CASE WHEN pg_is_in_recovery() THEN
        CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
             ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 END END,
  'replication', (SELECT coalesce(jsonb_agg(jsonb_build_object(
        'application_name', application_name,
        'client_addr', host(client_addr),
        'state', state,
        'sync_state', sync_state,
        'replay_lag_seconds', extract(epoch FROM replay_lag)::float8,
        'replay_lag_bytes', pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()
                                                 ELSE pg_current_wal_lsn() END, replay_lsn)::bigint)
        ORDER BY application_name, pid), '[]') FROM pg_stat_replication),
  'server_version', current_setting('server_version'),
  'started_at', pg_postmaster_start_time(),
  'port', current_setting('port')::bigint,
  'data_directory', current_setting('data_directory'),
  'system_identifier', (SELECT system_identifier::text FROM pg_control_system()),
  'max_xid_age', (SELECT max(age(datfrozenxid))::bigint FROM pg_database),
  'max_mxid_age', (SELECT max(mxid_age(datminmxid))::bigint FROM pg_database),
  'updated_at', clock_timestamp())
"#;

/// What pgops itself knows, when it is installed in the worker's database.
pub const PGOPS_STATE_SQL: &str = r#"
SELECT jsonb_build_object(
  'xids_per_second', (SELECT max(xids_per_second) FROM pgops.wraparound_forecast),
  'seconds_to_freeze_max_age', (SELECT min(seconds_to_freeze_max_age) FROM pgops.wraparound_forecast),
  'hba_drift', (SELECT drifted FROM pgops.hba_drift),
  'last_freeze', (SELECT jsonb_build_object('job', job, 'database', database, 'status', status,
                                            'finished_at', finished_at)
                  FROM pgops.freeze_run WHERE status NOT IN ('queued', 'running')
                  ORDER BY id DESC LIMIT 1))
"#;

/// The slow facts, read every `SLOW_FACTS_EVERY` rather than every push: database sizes (a stat
/// of every file of every database) and role drift (every role, membership and default privilege
/// in every database against pgops.role: a worker per other database).
pub const DATABASE_SIZES_SQL: &str = "SELECT jsonb_build_object(
  'databases', (SELECT coalesce(jsonb_agg(jsonb_build_object('name', datname, 'bytes', pg_database_size(oid))
                                          ORDER BY datname), '[]')
                FROM pg_database WHERE datallowconn),
  'databases_checked_at', clock_timestamp())";
pub const ROLE_DRIFT_SQL: &str = "SELECT jsonb_build_object('role_drift', differences, 'role_drift_checked_at', checked_at) FROM pgops.role_drift_summary";
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
pub fn member_state(cluster: &str, instance: &str, hostname: &str, server: Value, pgops: Option<Value>) -> Result<MemberState, String> {
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
                           "hba_drift": false, "last_freeze": null});
        let s = member_state("pg-meta", "pg-meta-2", "node2", server.clone(), Some(extra)).unwrap();
        assert_eq!((s.schema, s.role.as_str(), s.timeline), (1, "replica", Some(3)));
        assert_eq!((s.cluster.as_str(), s.instance.as_str(), s.hostname.as_str()), ("pg-meta", "pg-meta-2", "node2"));
        assert_eq!(s.xids_per_second, Some(2.5));
        assert_eq!(s.hba_drift, Some(false));
        assert_eq!(s.pgops_version, env!("CARGO_PKG_VERSION"));
        // Without pgops installed the pgops facts are absent, not invented.
        let bare = member_state("c", "i", "h", server, None).unwrap();
        assert_eq!((bare.role_drift, bare.xids_per_second), (None, None));
        assert!(member_state("c", "i", "h", json!([1]), None).is_err());
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
