-- The roles planner's snapshot of one database, next read: the tables (every relation kind granted
-- on as a table; relkind 'S' is a sequence) and functions (not procedures) in the schemas $1 (an
-- oid[] of the user schemas), each with its owner and ACL as stored (NULL: the default), read
-- through a cursor a batch at a time. A DBA can run it in psql with $1 replaced by e.g.
-- '{2200}'::oid[].
SELECT c.relnamespace, c.relkind = 'S', c.relowner, c.relacl
FROM pg_catalog.pg_class c
WHERE c.relnamespace = ANY ($1) AND c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S')
UNION ALL
SELECT p.pronamespace, NULL, p.proowner, p.proacl
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = ANY ($1) AND p.prokind <> 'p'
