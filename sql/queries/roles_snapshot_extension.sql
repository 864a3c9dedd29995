-- The roles planner's snapshot of one database, first read (roles_snapshot_*.sql): pgops' version
-- and schema here (no row when it is not installed). Run in every connectable database (by a
-- per-database worker for the others) as written here (included at build time); pgops aggregates
-- the reads in Rust (crates/core/src/roles/snapshot.rs, which also knows acldefault()). A DBA can
-- run it in psql.
SELECT e.extversion, e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'pgops'
