-- What the table bloat estimator needs per table of this database: pages, tuples, fillfactor, TOAST, statistics per column.
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relpages::bigint, c.reltuples::float8,
       coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(c.reloptions) o
                 WHERE o.option_name = 'fillfactor'), '100')::float8,
       coalesce(t.relpages, 0)::bigint, coalesce(t.reltuples, 0)::float8,
       pg_catalog.pg_stat_get_mod_since_analyze(c.oid)::float8,
       CASE WHEN t.oid IS NULL THEN 0
            ELSE pg_catalog.pg_stat_get_dead_tuples(t.oid) + pg_catalog.pg_stat_get_ins_since_vacuum(t.oid) END::float8,
       greatest(pg_catalog.pg_stat_get_last_vacuum_time(c.oid), pg_catalog.pg_stat_get_last_autovacuum_time(c.oid),
                pg_catalog.pg_stat_get_last_analyze_time(c.oid), pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid)),
       a.attlen, a.attalign::text, a.attisdropped, s.stanullfrac::float8, s.stawidth::float8
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
LEFT JOIN pg_catalog.pg_statistic s ON s.starelid = c.oid AND s.staattnum = a.attnum AND NOT s.stainherit
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND n.nspname !~ '^pg_toast'
ORDER BY c.oid, a.attnum
