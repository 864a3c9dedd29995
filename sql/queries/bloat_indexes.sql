-- What the index bloat estimators need per index of this database: access method, pages, tuples, fillfactor
-- (NULL: the access method's default), key columns in the index's order with their statistics and operator
-- classes, and the table's rows and pages (hash and BRIN are sized by the table).
-- Key types listed in the deduplication test are those whose equal values are bitwise equal
-- (btequalimage), so btree deduplication applies.
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
SELECT i.indexrelid, i.indrelid, n.nspname::text, c.relname::text, ic.relname::text,
       greatest(ic.relpages, 0)::bigint, ic.reltuples::float8,
       coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(ic.reloptions) o
                 WHERE o.option_name = 'fillfactor'))::float8,
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
       i.indkey[ia.attnum - 1] = 0 AND xs.starelid IS NULL,
       am.amname::text, (SELECT oc.opcname::text FROM pg_catalog.pg_opclass oc WHERE oc.oid = i.indclass[ia.attnum - 1]),
       c.reltuples::float8, greatest(c.relpages, 0)::bigint,
       coalesce((SELECT o.option_value FROM pg_catalog.pg_options_to_table(ic.reloptions) o
                 WHERE o.option_name = 'pages_per_range'), '128')::float8,
       ia.attstorage::text,
       CASE WHEN ia.attlen = -1 THEN
         CASE 1 WHEN coalesce(ts.stakind1, xs.stakind1) THEN coalesce(ts.stavalues1, xs.stavalues1)
                WHEN coalesce(ts.stakind2, xs.stakind2) THEN coalesce(ts.stavalues2, xs.stavalues2)
                WHEN coalesce(ts.stakind3, xs.stakind3) THEN coalesce(ts.stavalues3, xs.stavalues3)
                WHEN coalesce(ts.stakind4, xs.stakind4) THEN coalesce(ts.stavalues4, xs.stavalues4)
                WHEN coalesce(ts.stakind5, xs.stakind5) THEN coalesce(ts.stavalues5, xs.stavalues5) END END,
       CASE WHEN ia.attlen = -1 THEN
         CASE 1 WHEN coalesce(ts.stakind1, xs.stakind1) THEN coalesce(ts.stanumbers1, xs.stanumbers1)
                WHEN coalesce(ts.stakind2, xs.stakind2) THEN coalesce(ts.stanumbers2, xs.stanumbers2)
                WHEN coalesce(ts.stakind3, xs.stakind3) THEN coalesce(ts.stanumbers3, xs.stanumbers3)
                WHEN coalesce(ts.stakind4, xs.stakind4) THEN coalesce(ts.stanumbers4, xs.stanumbers4)
                WHEN coalesce(ts.stakind5, xs.stakind5) THEN coalesce(ts.stanumbers5, xs.stanumbers5) END::float8[] END,
       CASE WHEN ia.attlen = -1 THEN
         CASE 2 WHEN coalesce(ts.stakind1, xs.stakind1) THEN coalesce(ts.stavalues1, xs.stavalues1)
                WHEN coalesce(ts.stakind2, xs.stakind2) THEN coalesce(ts.stavalues2, xs.stavalues2)
                WHEN coalesce(ts.stakind3, xs.stakind3) THEN coalesce(ts.stavalues3, xs.stavalues3)
                WHEN coalesce(ts.stakind4, xs.stakind4) THEN coalesce(ts.stavalues4, xs.stavalues4)
                WHEN coalesce(ts.stakind5, xs.stakind5) THEN coalesce(ts.stavalues5, xs.stavalues5) END END
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid AND ic.relkind = 'i'
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute ia ON ia.attrelid = i.indexrelid AND ia.attnum > 0
LEFT JOIN pg_catalog.pg_statistic ts ON ts.starelid = i.indrelid AND ts.staattnum = i.indkey[ia.attnum - 1]
                                     AND i.indkey[ia.attnum - 1] <> 0 AND NOT ts.stainherit
LEFT JOIN pg_catalog.pg_statistic xs ON xs.starelid = i.indexrelid AND xs.staattnum = ia.attnum
                                     AND i.indkey[ia.attnum - 1] = 0 AND NOT xs.stainherit
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND n.nspname !~ '^pg_toast' AND i.indisvalid AND i.indisready
ORDER BY i.indexrelid, ia.attnum
