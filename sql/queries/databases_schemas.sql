-- One database's schemas (name → owner), extensions (name → [schema, version]) and who besides a
-- schema's owner may CREATE in it: the light read of pgops.plan_databases() for a database that
-- exists, read in that database. System schemas are left out; an owner `pg_database_owner` is the
-- database's owner. What non-superusers could have put in it (databases_inside.sql, which scans
-- every catalog) is read only for a database where the plan has work inside, and again right
-- before a superuser runs anything there.
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
WITH dbo AS (
  SELECT d.datdba AS owner,
         (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = 'pg_database_owner') AS pg_database_owner
  FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()
), schemas AS (
  SELECT n.nspname::text AS name,
         pg_catalog.pg_get_userbyid(n.nspowner)::text AS owner_name,
         CASE WHEN n.nspowner = dbo.pg_database_owner THEN dbo.owner ELSE n.nspowner END AS owner,
         n.nspowner AS raw_owner, n.nspacl
  FROM pg_catalog.pg_namespace n CROSS JOIN dbo
  WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
)
SELECT pg_catalog.jsonb_build_object(
  'schemas', coalesce((SELECT pg_catalog.jsonb_object_agg(s.name, s.owner_name) FROM schemas s), '{}'),
  'extensions', coalesce((SELECT pg_catalog.jsonb_object_agg(e.extname::text, pg_catalog.jsonb_build_array(n.nspname::text, e.extversion))
                          FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace), '{}'),
  'schema_create', coalesce((
     SELECT pg_catalog.jsonb_object_agg(s.name, g.grantees)
     FROM schemas s,
     LATERAL (SELECT coalesce(pg_catalog.jsonb_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END), '[]') AS grantees
              FROM pg_catalog.aclexplode(s.nspacl) a
              WHERE a.privilege_type = 'CREATE' AND a.grantee <> s.owner AND a.grantee <> s.raw_owner) g), '{}'))
