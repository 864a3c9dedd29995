-- The roles planner's snapshot of one database, next read: every schema with its owner and ACL as
-- stored (NULL: the default). pgops keeps the schemas that are not pg_*, information_schema or its
-- own, and converts each name from the database's encoding to UTF-8 itself (a name that cannot be
-- makes this database unreadable, alone). A DBA can run it in psql.
SELECT n.oid, n.nspname, n.nspowner, n.nspacl FROM pg_catalog.pg_namespace n
