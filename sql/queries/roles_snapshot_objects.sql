-- The roles planner's snapshot of one database, second read: the tables (every relation kind
-- granted on as a table), sequences and functions (not procedures) in the schemas $1 (an oid[]
-- of the first read's user schemas), each with its owner and ACL (the default's when NULL).
-- A DBA can run it in psql with $1 replaced by e.g. '{2200}'::oid[].
SELECT c.relnamespace, CASE c.relkind WHEN 'S' THEN 'sequences' ELSE 'tables' END,
       pg_catalog.pg_get_userbyid(c.relowner)::text,
       coalesce(c.relacl, pg_catalog.acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))::text[]
FROM pg_catalog.pg_class c
WHERE c.relnamespace = ANY ($1) AND c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S')
UNION ALL
SELECT p.pronamespace, 'functions', pg_catalog.pg_get_userbyid(p.proowner)::text,
       coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))::text[]
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = ANY ($1) AND p.prokind <> 'p'
