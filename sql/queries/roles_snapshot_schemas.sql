-- The roles planner's snapshot of one database, first reads (roles_snapshot_*.sql): pgops'
-- version and schema here (no row when it is not installed), then every schema with its owner and
-- ACL as stored (NULL: the default), its name as UTF-8 bytes whatever the database's encoding.
-- pgops keeps the schemas that are not pg_*, information_schema or its own, and aggregates in
-- Rust (crates/core/src/roles/snapshot.rs, which also knows acldefault()). Run in every
-- connectable database (by a per-database worker for the others) as written here (included at
-- build time); a DBA can run it in psql.
SELECT e.extversion, e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'pgops';
SELECT n.oid, pg_catalog.convert_to(n.nspname::text, 'UTF8'), n.nspowner, n.nspacl FROM pg_catalog.pg_namespace n;
