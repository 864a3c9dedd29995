-- Monitoring views: numeric columns for Grafana's PostgreSQL datasource, readable by pg_monitor.

-- Per database: XID and multixact ages against the hard limit (2^31), autovacuum's forced-freeze
-- ages, and what is left before PostgreSQL refuses new IDs (3 million short of wraparound, PG14+).
CREATE VIEW pgops.database_age AS
SELECT d.datname::text AS database,
       age(d.datfrozenxid)::bigint AS xid_age,
       mxid_age(d.datminmxid)::bigint AS mxid_age,
       round(100.0 * age(d.datfrozenxid) / 2147483648, 6) AS xid_pct_of_wraparound,
       round(100.0 * age(d.datfrozenxid) / current_setting('autovacuum_freeze_max_age')::bigint, 6) AS xid_pct_of_freeze_max_age,
       round(100.0 * mxid_age(d.datminmxid) / 2147483648, 6) AS mxid_pct_of_wraparound,
       round(100.0 * mxid_age(d.datminmxid) / current_setting('autovacuum_multixact_freeze_max_age')::bigint, 6) AS mxid_pct_of_freeze_max_age,
       (2147483648 - 3000000 - age(d.datfrozenxid))::bigint AS xids_remaining,
       (2147483648 - 3000000 - mxid_age(d.datminmxid))::bigint AS mxids_remaining,
       d.datallowconn AS allows_connections
FROM pg_catalog.pg_database d;
COMMENT ON VIEW pgops.database_age IS 'XID/MXID age per database, as percent of wraparound and of autovacuum_(multixact_)freeze_max_age, and IDs left before the stop limit';

-- Per table of this database: the older of heap and TOAST ages, and when anti-wraparound
-- autovacuum is forced (a per-table autovacuum_freeze_max_age can only lower the global one).
CREATE VIEW pgops.table_age AS
SELECT n.nspname::text AS schema,
       c.relname::text AS table_name,
       c.relkind::text AS kind,
       greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0))::bigint AS xid_age,
       age(c.relfrozenxid)::bigint AS heap_xid_age,
       age(t.relfrozenxid)::bigint AS toast_xid_age,
       greatest(mxid_age(c.relminmxid), coalesce(mxid_age(t.relminmxid), 0))::bigint AS mxid_age,
       pg_catalog.pg_total_relation_size(c.oid) AS total_bytes,
       f.freeze_max_age,
       greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0)) > f.freeze_max_age AS wraparound_vacuum_due,
       (f.freeze_max_age - greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0)))::bigint AS xids_until_forced_vacuum,
       s.last_vacuum, s.last_autovacuum, s.n_dead_tup
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
CROSS JOIN LATERAL (
    SELECT least(current_setting('autovacuum_freeze_max_age')::bigint,
                 coalesce((SELECT o.option_value::bigint FROM pg_catalog.pg_options_to_table(c.reloptions) o
                           WHERE o.option_name = 'autovacuum_freeze_max_age'),
                          current_setting('autovacuum_freeze_max_age')::bigint)) AS freeze_max_age) f
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't';
COMMENT ON VIEW pgops.table_age IS 'XID/MXID age per table (TOAST included), size, and when anti-wraparound autovacuum is forced';

-- Everything that holds back the xmin horizon (what VACUUM may remove and freeze).
CREATE VIEW pgops.xmin_blockers AS
SELECT CASE WHEN a.state LIKE 'idle in transaction%' THEN 'idle in transaction' ELSE 'transaction' END AS kind,
       a.pid::text AS holder, a.datname::text AS database, a.usename::text AS role_name,
       coalesce(a.backend_xid, a.backend_xmin) AS xmin,
       age(coalesce(a.backend_xid, a.backend_xmin))::bigint AS xmin_age,
       a.xact_start AS since,
       extract(epoch FROM now() - a.xact_start)::float8 AS seconds,
       format('%s %s: %s', a.backend_type, a.state, left(a.query, 200)) AS detail
FROM pg_catalog.pg_stat_activity a
WHERE coalesce(a.backend_xid, a.backend_xmin) IS NOT NULL AND a.pid <> pg_catalog.pg_backend_pid()
UNION ALL
SELECT 'prepared transaction', p.gid, p.database::text, p.owner::text, p.transaction, age(p.transaction)::bigint,
       p.prepared, extract(epoch FROM now() - p.prepared)::float8, 'COMMIT PREPARED or ROLLBACK PREPARED it'
FROM pg_catalog.pg_prepared_xacts p
UNION ALL
SELECT 'replication slot (' || s.slot_type || ')', s.slot_name::text, s.database::text, NULL,
       CASE WHEN s.xmin IS NULL OR age(s.catalog_xmin) > age(s.xmin) THEN s.catalog_xmin ELSE s.xmin END,
       greatest(age(s.xmin), age(s.catalog_xmin))::bigint, NULL, NULL,
       format('active %s, xmin %s, catalog_xmin %s', s.active, s.xmin, s.catalog_xmin)
FROM pg_catalog.pg_replication_slots s
WHERE s.xmin IS NOT NULL OR s.catalog_xmin IS NOT NULL
UNION ALL
SELECT 'standby feedback', coalesce(r.application_name, '') || ' ' || coalesce(host(r.client_addr), 'local'), NULL,
       r.usename::text, r.backend_xmin, age(r.backend_xmin)::bigint, r.backend_start,
       extract(epoch FROM now() - r.backend_start)::float8, 'hot_standby_feedback from a standby: ' || r.state
FROM pg_catalog.pg_stat_replication r
WHERE r.backend_xmin IS NOT NULL;
COMMENT ON VIEW pgops.xmin_blockers IS 'Long and idle-in-transaction sessions, prepared transactions, replication slots and standby feedback holding back the xmin horizon, with their age in XIDs and seconds';

CREATE VIEW pgops.wraparound_forecast AS SELECT * FROM pgops._wraparound_forecast();
COMMENT ON VIEW pgops.wraparound_forecast IS 'XID/MXID burn rates from pgops.xid_samples and the seconds until each database reaches the forced-freeze age, the failsafe age and the stop limit (NULL with a reason when unknown)';

GRANT SELECT ON pgops.database_age, pgops.table_age, pgops.xmin_blockers, pgops.wraparound_forecast TO pg_monitor;
GRANT EXECUTE ON FUNCTION pgops._wraparound_forecast() TO pg_monitor;
REVOKE EXECUTE ON FUNCTION pgops._wraparound_forecast() FROM PUBLIC;
