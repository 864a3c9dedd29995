-- One database's schemas (name → owner) and extensions (name → [schema, version]), read in that
-- database for pgops.plan_databases() and pgops.export_databases(). System schemas are left out.
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
SELECT pg_catalog.jsonb_build_object(
  'schemas', coalesce((SELECT pg_catalog.jsonb_object_agg(n.nspname::text, pg_catalog.pg_get_userbyid(n.nspowner)::text)
                       FROM pg_catalog.pg_namespace n
                       WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'), '{}'),
  'extensions', coalesce((SELECT pg_catalog.jsonb_object_agg(e.extname::text, pg_catalog.jsonb_build_array(n.nspname::text, e.extversion))
                          FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace), '{}'))
