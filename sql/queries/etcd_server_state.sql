-- The instance's state the etcd worker publishes every pgops.etcd_interval (role, LSNs, replication, version, identity).
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
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
