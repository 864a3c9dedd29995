-- What the btree bloat estimator needs per index of this database: pages, tuples, fillfactor, key columns in the index's order with their statistics.
-- Key types listed in the deduplication test are those whose equal values are bitwise equal
-- (btequalimage), so btree deduplication applies.
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
SELECT i.indexrelid, i.indrelid, n.nspname::text, c.relname::text, ic.relname::text,
       ic.relpages::bigint, ic.reltuples::float8,
       coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(ic.reloptions) o
                 WHERE o.option_name = 'fillfactor'), '90')::float8,
       i.indisunique, i.indnkeyatts::int, i.indpred IS NOT NULL,
       coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(ic.reloptions) o
                 WHERE o.option_name = 'deduplicate_items'), 'on') IN ('on', 'true', '1', 'yes'),
       pg_catalog.pg_stat_get_mod_since_analyze(c.oid)::float8 > 0.1 * greatest(c.reltuples, 0),
       greatest(pg_catalog.pg_stat_get_last_vacuum_time(c.oid), pg_catalog.pg_stat_get_last_autovacuum_time(c.oid),
                pg_catalog.pg_stat_get_last_analyze_time(c.oid), pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid)),
       ia.attlen, ia.attalign::text, false,
       coalesce(ts.stanullfrac, xs.stanullfrac)::float8, coalesce(ts.stawidth, xs.stawidth)::float8,
       (SELECT CASE WHEN d > 0 THEN d WHEN d < 0 THEN -d * greatest(c.reltuples, 0) END
          FROM coalesce(ts.stadistinct, xs.stadistinct) d)::float8,
       ia.atttypid IN (SELECT t.oid FROM pg_catalog.pg_type t WHERE t.typname IN ('bool','int2','int4','int8','oid','char','date','time','timestamp','timestamptz','uuid','text','varchar','bpchar','name','bytea','inet','cidr','macaddr','money') AND t.typnamespace = 'pg_catalog'::regnamespace)
         AND coalesce((SELECT co.collisdeterministic FROM pg_catalog.pg_collation co WHERE co.oid = ia.attcollation), true),
       i.indkey[ia.attnum - 1] = 0 AND xs.starelid IS NULL
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid AND ic.relkind = 'i'
JOIN pg_catalog.pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute ia ON ia.attrelid = i.indexrelid AND ia.attnum > 0
LEFT JOIN pg_catalog.pg_statistic ts ON ts.starelid = i.indrelid AND ts.staattnum = i.indkey[ia.attnum - 1]
                                     AND i.indkey[ia.attnum - 1] <> 0 AND NOT ts.stainherit
LEFT JOIN pg_catalog.pg_statistic xs ON xs.starelid = i.indexrelid AND xs.staattnum = ia.attnum
                                     AND i.indkey[ia.attnum - 1] = 0 AND NOT xs.stainherit
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND n.nspname !~ '^pg_toast' AND i.indisvalid AND i.indisready
ORDER BY i.indexrelid, ia.attnum
