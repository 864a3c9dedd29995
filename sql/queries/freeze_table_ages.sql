-- Every table's XID and MXID age (heap and TOAST) with its effective freeze_max_age, for the freeze plan.
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
SELECT c.oid::bigint AS relid, n.nspname::text AS schema, c.relname::text AS name,
       greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0))::bigint AS xid_age,
       greatest(mxid_age(c.relminmxid), coalesce(mxid_age(t.relminmxid), 0))::bigint AS mxid_age,
       least(current_setting('autovacuum_freeze_max_age')::bigint,
             coalesce(CASE WHEN c.reloptions IS NOT NULL THEN (SELECT o.option_value::bigint
                        FROM pg_catalog.pg_options_to_table(c.reloptions) o WHERE o.option_name = 'autovacuum_freeze_max_age') END,
                      current_setting('autovacuum_freeze_max_age')::bigint)) AS freeze_max_age,
       least(current_setting('autovacuum_multixact_freeze_max_age')::bigint,
             coalesce(CASE WHEN c.reloptions IS NOT NULL THEN (SELECT o.option_value::bigint
                        FROM pg_catalog.pg_options_to_table(c.reloptions) o WHERE o.option_name = 'autovacuum_multixact_freeze_max_age') END,
                      current_setting('autovacuum_multixact_freeze_max_age')::bigint)) AS multixact_freeze_max_age,
       (c.relpages + coalesce(t.relpages, 0))::bigint AS pages
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
