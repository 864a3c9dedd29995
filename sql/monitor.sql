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
       pg_catalog.pg_stat_get_last_vacuum_time(c.oid) AS last_vacuum,
       pg_catalog.pg_stat_get_last_autovacuum_time(c.oid) AS last_autovacuum,
       pg_catalog.pg_stat_get_dead_tuples(c.oid) AS n_dead_tup
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
CROSS JOIN LATERAL (
    SELECT least(current_setting('autovacuum_freeze_max_age')::bigint,
                 coalesce(CASE WHEN c.reloptions IS NOT NULL THEN
                            (SELECT o.option_value::bigint FROM pg_catalog.pg_options_to_table(c.reloptions) o
                             WHERE o.option_name = 'autovacuum_freeze_max_age') END,
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

CREATE VIEW pgops.xid_samples AS
    SELECT * FROM pgops._xid_samples();
COMMENT ON VIEW pgops.xid_samples IS
    'Next transaction ID and multixact ID sampled by the launcher every pgops.sample_interval (ring in shared memory, oldest first)';
REVOKE ALL ON FUNCTION pgops._xid_samples() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgops._xid_samples() TO pg_monitor;
GRANT SELECT ON pgops.xid_samples TO pg_monitor;

CREATE VIEW pgops.wraparound_forecast AS SELECT * FROM pgops._wraparound_forecast();
COMMENT ON VIEW pgops.wraparound_forecast IS 'XID/MXID burn rates from pgops.xid_samples and the seconds until each database reaches the forced-freeze age, the failsafe age and the stop limit (NULL with a reason when unknown)';

GRANT SELECT ON pgops.database_age, pgops.table_age, pgops.xmin_blockers, pgops.wraparound_forecast TO pg_monitor;
GRANT EXECUTE ON FUNCTION pgops._wraparound_forecast() TO pg_monitor;
REVOKE EXECUTE ON FUNCTION pgops._wraparound_forecast() FROM PUBLIC;

-- Bloat. The estimators read pg_statistic directly: SECURITY DEFINER with a fixed search_path, so a
-- pg_monitor role sees every table (pg_stats would hide columns it may not SELECT). They return
-- sizes and ratios only, never values.
ALTER FUNCTION pgops._table_bloat() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION pgops._index_bloat() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON FUNCTION pgops._table_bloat(), pgops._index_bloat() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgops._table_bloat(), pgops._index_bloat() TO pg_monitor;

-- Latest exact measurement per relation (pgops.verify_bloat). Tied to the relation's file: a
-- rewrite (VACUUM FULL, REINDEX, CLUSTER) makes it obsolete, and the bloat view stops showing it.
CREATE TABLE pgops.bloat_verified (
    relid oid PRIMARY KEY,
    table_relid oid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('table', 'index')),
    schema text NOT NULL,
    relation text NOT NULL,
    filenode oid,
    size_bytes bigint NOT NULL,
    bloat_bytes bigint,
    free_bytes bigint,
    dead_bytes bigint,
    estimated_bloat_bytes bigint,
    method text NOT NULL,
    measured_at timestamptz NOT NULL
);
COMMENT ON TABLE pgops.bloat_verified IS 'Latest exact bloat measurement per table and index (pgops.verify_bloat: pgstattuple_approx and the TOAST chunks for tables, pgstatindex / pgstathashindex / pgstattuple for btree / hash / GiST indexes). Not dumped: rows refer to relations by OID, which a restore changes';

CREATE VIEW pgops.table_bloat AS
SELECT relid, schema, table_name, kind, fillfactor, tuples, size_bytes, toast_bytes, expected_bytes,
       bloat_bytes, bloat_ratio, quality, quality_reason, stats_time
FROM pgops._table_bloat();
COMMENT ON VIEW pgops.table_bloat IS 'Estimated bloat per table (heap and TOAST, fillfactor and column alignment aware): bytes a fresh copy would not need; quality says when not to trust it';

CREATE VIEW pgops.index_bloat AS
SELECT relid, indexrelid, schema, table_name, index_name, access_method, tuples, size_bytes, expected_bytes,
       bloat_bytes, bloat_ratio, quality, quality_reason, stats_time
FROM pgops._index_bloat();
COMMENT ON VIEW pgops.index_bloat IS 'Estimated bloat per index: btree (index column order, fillfactor, deduplication), hash (buckets, overflow pages) and BRIN minmax; other kinds have no figure and say why. Bytes a REINDEX would free; quality says when not to trust it';

-- Per table with its indexes summed, and the verified figures next to the estimates when
-- they are newer than the statistics behind the estimates and the files were not rewritten since.
CREATE VIEW pgops.bloat AS
WITH t AS (SELECT * FROM pgops._table_bloat()),
     -- Index kinds without a model (GiST, GIN, SP-GiST, BRIN other than minmax) count in the bytes
     -- but neither in the ratio's denominator nor in the quality: they are no worse for it.
     i AS (SELECT relid, count(*) AS indexes, sum(size_bytes) AS index_bytes, sum(bloat_bytes) AS index_bloat_bytes,
                  sum(size_bytes) FILTER (WHERE bloat_bytes IS NOT NULL) AS estimated_bytes,
                  count(*) FILTER (WHERE bloat_bytes IS NULL AND access_method NOT IN ('btree', 'hash')) AS not_modelled,
                  max(CASE quality WHEN 'good' THEN 1 WHEN 'approximate' THEN 2 ELSE 3 END)
                    FILTER (WHERE bloat_bytes IS NOT NULL OR access_method IN ('btree', 'hash')) AS q
           FROM pgops._index_bloat() GROUP BY relid),
     v AS (SELECT v.*, pg_catalog.pg_relation_filenode(v.relid) IS NOT DISTINCT FROM v.filenode AS current
           FROM pgops.bloat_verified v)
SELECT t.relid, t.schema, t.table_name, t.kind,
       t.size_bytes AS table_bytes, t.bloat_bytes AS table_bloat_bytes, t.bloat_ratio AS table_bloat_ratio,
       coalesce(i.indexes, 0) AS indexes, coalesce(i.not_modelled, 0) AS indexes_without_estimate,
       coalesce(i.index_bytes, 0)::bigint AS index_bytes,
       i.index_bloat_bytes::bigint AS index_bloat_bytes,
       round((i.index_bloat_bytes / nullif(i.estimated_bytes, 0))::numeric, 6)::float8 AS index_bloat_ratio,
       (coalesce(t.bloat_bytes, 0) + coalesce(i.index_bloat_bytes, 0))::bigint AS total_bloat_bytes,
       (ARRAY['good', 'approximate', 'unreliable'])[greatest(CASE t.quality WHEN 'good' THEN 1 WHEN 'approximate' THEN 2 ELSE 3 END, coalesce(i.q, 1))] AS quality,
       t.quality_reason,
       vt.bloat_bytes AS verified_table_bloat_bytes,
       round((vt.bloat_bytes::numeric / nullif(vt.size_bytes, 0)), 6)::float8 AS verified_table_bloat_ratio,
       vi.bloat_bytes AS verified_index_bloat_bytes,
       least(vt.measured_at, vi.measured_at) AS verified_at,
       t.stats_time
FROM t
LEFT JOIN i ON i.relid = t.relid
LEFT JOIN v vt ON vt.relid = t.relid AND vt.kind = 'table' AND vt.current
              AND (t.stats_time IS NULL OR vt.measured_at > t.stats_time)
LEFT JOIN LATERAL (SELECT sum(x.bloat_bytes)::bigint AS bloat_bytes, min(x.measured_at) AS measured_at
                   FROM v x WHERE x.table_relid = t.relid AND x.kind = 'index' AND x.current
                     AND (t.stats_time IS NULL OR x.measured_at > t.stats_time)
                   HAVING count(*) > 0) vi ON true;
COMMENT ON VIEW pgops.bloat IS 'Per table: estimated table and index bloat (indexes_without_estimate: GiST, GIN, SP-GiST and other kinds without a model, counted in index_bytes only), the worse quality of the two, and the pgops.verify_bloat figures when newer than the statistics';

-- verify_bloat stores its results: it runs as the extension owner so pg_monitor may call it; it
-- reads with pgstattuple's functions and one aggregate over each measured TOAST table, within the
-- caller's budgets (checked against the files' sizes).
ALTER FUNCTION pgops.verify_bloat(integer, bigint) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON FUNCTION pgops.verify_bloat(integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgops.verify_bloat(integer, bigint) TO pg_monitor;
GRANT SELECT ON pgops.table_bloat, pgops.index_bloat, pgops.bloat, pgops.bloat_verified TO pg_monitor;
