-- What the table bloat estimator needs per table of this database: pages, tuples, fillfactor, the
-- TOAST table's size and counters, and per column its layout and statistics, with the sample values
-- (most common values and histogram bounds) of variable-width columns, whose widths pgops reads.
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, greatest(c.relpages, 0)::bigint, c.reltuples::float8,
       coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(c.reloptions) o
                 WHERE o.option_name = 'fillfactor'), '100')::float8,
       greatest(t.relpages, 0)::bigint, t.reltuples::float8,
       pg_catalog.pg_stat_get_mod_since_analyze(c.oid)::float8,
       pg_catalog.pg_stat_get_tuples_inserted(t.oid)::float8,
       greatest(pg_catalog.pg_stat_get_last_vacuum_time(c.oid), pg_catalog.pg_stat_get_last_autovacuum_time(c.oid),
                pg_catalog.pg_stat_get_last_analyze_time(c.oid), pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid)),
       a.attlen, a.attalign::text, a.attisdropped, s.stanullfrac::float8, s.stawidth::float8, a.attstorage::text,
       CASE WHEN a.attlen = -1 THEN
         CASE 1 WHEN s.stakind1 THEN s.stavalues1 WHEN s.stakind2 THEN s.stavalues2 WHEN s.stakind3 THEN s.stavalues3
                WHEN s.stakind4 THEN s.stavalues4 WHEN s.stakind5 THEN s.stavalues5 END END,
       CASE WHEN a.attlen = -1 THEN
         CASE 1 WHEN s.stakind1 THEN s.stanumbers1 WHEN s.stakind2 THEN s.stanumbers2 WHEN s.stakind3 THEN s.stanumbers3
                WHEN s.stakind4 THEN s.stanumbers4 WHEN s.stakind5 THEN s.stanumbers5 END::float8[] END,
       CASE WHEN a.attlen = -1 THEN
         CASE 2 WHEN s.stakind1 THEN s.stavalues1 WHEN s.stakind2 THEN s.stavalues2 WHEN s.stakind3 THEN s.stavalues3
                WHEN s.stakind4 THEN s.stavalues4 WHEN s.stakind5 THEN s.stavalues5 END END,
       pg_catalog.pg_stat_get_dead_tuples(t.oid)::float8, pg_catalog.pg_stat_get_ins_since_vacuum(t.oid)::float8,
       t.relfilenode <> t.oid
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
LEFT JOIN pg_catalog.pg_statistic s ON s.starelid = c.oid AND s.staattnum = a.attnum AND NOT s.stainherit
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND n.nspname !~ '^pg_toast'
ORDER BY c.oid, a.attnum
