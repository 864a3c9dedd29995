-- The roles planner's snapshot of one database, first of three reads (roles_snapshot_*.sql): its
-- name, pgops' version there, and every schema with its owner and ACL (the default's when NULL).
-- Run in every connectable database (by a per-database worker for the others) as written here
-- (included at build time); pgops keeps the schemas that are not pg_*, information_schema or
-- pgops and aggregates in Rust (crates/core/src/roles/snapshot.rs). A DBA can run it in psql.
SELECT pg_catalog.current_database()::text,
       (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname = 'pgops'),
       n.oid, n.nspname::text, pg_catalog.pg_get_userbyid(n.nspowner)::text,
       coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))::text[]
FROM pg_catalog.pg_namespace n
