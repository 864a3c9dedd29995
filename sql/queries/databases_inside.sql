-- One database's schemas (name → owner), extensions (name → [schema, version]), the schemas a
-- non-superuser could have put objects in (name → why), who besides its owner may CREATE in each
-- schema, and the objects non-superusers own (how many, the first ten named), read in that database for pgops.plan_databases(),
-- pgops.export_databases() and before a superuser runs anything there (the worker's guards).
-- System schemas are left out. An owner `pg_database_owner` is the database's owner.
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
WITH dbo AS (
  SELECT d.datdba AS owner,
         (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = 'pg_database_owner') AS pg_database_owner
  FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()
), objects AS (
  -- `what` names the object; for relations, functions, operators and types it is rendered only for
  -- the few a non-superuser owns (`how` says how): rendering every function's signature costs more
  -- than the rest of the read.
  SELECT 'schema ' || pg_catalog.quote_ident(n.nspname) AS what, NULL::"char" AS how, n.oid, n.oid AS nsp, n.nspowner AS owner
  FROM pg_catalog.pg_namespace n
  UNION ALL
  SELECT CASE c.relkind WHEN 'r' THEN 'table ' WHEN 'p' THEN 'table ' WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view '
                        WHEN 'f' THEN 'foreign table ' WHEN 'S' THEN 'sequence ' WHEN 'i' THEN 'index ' WHEN 'I' THEN 'index '
                        ELSE 'relation ' END, 'c', c.oid, c.relnamespace, c.relowner
  FROM pg_catalog.pg_class c WHERE c.relkind <> 't'
  UNION ALL
  SELECT 'function ', 'p', p.oid, p.pronamespace, p.proowner FROM pg_catalog.pg_proc p
  UNION ALL
  SELECT 'operator ', 'o', o.oid, o.oprnamespace, o.oprowner FROM pg_catalog.pg_operator o
  UNION ALL
  SELECT 'type ', 't', t.oid, t.typnamespace, t.typowner
  FROM pg_catalog.pg_type t WHERE t.typrelid = 0 AND t.typelem = 0
  UNION ALL
  SELECT 'operator class ' || pg_catalog.quote_ident(oc.opcname), NULL, oc.oid, oc.opcnamespace, oc.opcowner FROM pg_catalog.pg_opclass oc
  UNION ALL
  SELECT 'operator family ' || pg_catalog.quote_ident(f.opfname), NULL, f.oid, f.opfnamespace, f.opfowner FROM pg_catalog.pg_opfamily f
  UNION ALL
  SELECT 'collation ' || pg_catalog.quote_ident(cl.collname), NULL, cl.oid, cl.collnamespace, cl.collowner FROM pg_catalog.pg_collation cl
  UNION ALL
  SELECT 'conversion ' || pg_catalog.quote_ident(cv.conname), NULL, cv.oid, cv.connamespace, cv.conowner FROM pg_catalog.pg_conversion cv
  UNION ALL
  SELECT 'text search dictionary ' || pg_catalog.quote_ident(td.dictname), NULL, td.oid, td.dictnamespace, td.dictowner FROM pg_catalog.pg_ts_dict td
  UNION ALL
  SELECT 'text search configuration ' || pg_catalog.quote_ident(tc.cfgname), NULL, tc.oid, tc.cfgnamespace, tc.cfgowner FROM pg_catalog.pg_ts_config tc
  UNION ALL
  SELECT 'statistics object ' || pg_catalog.quote_ident(se.stxname), NULL, se.oid, se.stxnamespace, se.stxowner FROM pg_catalog.pg_statistic_ext se
  UNION ALL
  SELECT 'extension ' || pg_catalog.quote_ident(e.extname), NULL, e.oid, e.extnamespace, e.extowner FROM pg_catalog.pg_extension e
  UNION ALL
  SELECT 'event trigger ' || pg_catalog.quote_ident(et.evtname), NULL, et.oid, 0::pg_catalog.oid, et.evtowner FROM pg_catalog.pg_event_trigger et
), foreign_objects AS (
  -- Owned by a role that is not a superuser (or that is gone), or by pg_database_owner (whoever
  -- owns the database some day: a previous owner may have handed its objects to it) — but for the
  -- standard public. The owners are joined once (not looked up per object).
  SELECT CASE o.how WHEN 'c' THEN o.what || o.oid::pg_catalog.regclass::text
                    WHEN 'p' THEN o.what || o.oid::pg_catalog.regprocedure::text
                    WHEN 'o' THEN o.what || o.oid::pg_catalog.regoperator::text
                    WHEN 't' THEN o.what || o.oid::pg_catalog.regtype::text
                    ELSE o.what END AS what,
         o.nsp,
         CASE WHEN o.owner = dbo.pg_database_owner THEN 'pg_database_owner' ELSE pg_catalog.pg_get_userbyid(o.owner)::text END AS owner
  FROM objects o CROSS JOIN dbo
  LEFT JOIN pg_catalog.pg_roles r ON r.oid = CASE WHEN o.owner = dbo.pg_database_owner THEN dbo.owner ELSE o.owner END
  WHERE (o.owner = dbo.pg_database_owner AND (o.how IS NOT NULL OR o.what <> 'schema public'))
     OR r.rolsuper IS NOT TRUE
), schemas AS (
  SELECT n.nspname::text AS name, n.oid,
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
  'unsafe_schemas', coalesce((
     SELECT pg_catalog.jsonb_object_agg(s.name, w.why)
     FROM schemas s,
     LATERAL (SELECT pg_catalog.concat_ws('; ',
                CASE WHEN NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = s.owner)
                     THEN 'owned by ' || pg_catalog.pg_get_userbyid(s.owner)::text END,
                (SELECT pg_catalog.string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END, ', ')
                        || ' may CREATE in it'
                 FROM pg_catalog.aclexplode(s.nspacl) a
                 WHERE a.privilege_type = 'CREATE' AND a.grantee <> s.raw_owner AND a.grantee <> s.owner
                   AND (a.grantee = 0 OR NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = a.grantee))),
                (SELECT 'holds ' || pg_catalog.count(*)::text || ' object(s) of ' || pg_catalog.string_agg(DISTINCT f.owner, ', ')
                 FROM foreign_objects f WHERE f.nsp = s.oid AND f.what NOT LIKE 'schema %')) AS why) w
     WHERE w.why <> ''), '{}'),
  'schema_create', coalesce((
     SELECT pg_catalog.jsonb_object_agg(s.name, g.grantees)
     FROM schemas s,
     LATERAL (SELECT coalesce(pg_catalog.jsonb_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END), '[]') AS grantees
              FROM pg_catalog.aclexplode(s.nspacl) a
              WHERE a.privilege_type = 'CREATE' AND a.grantee <> s.owner AND a.grantee <> s.raw_owner) g), '{}'),
  'foreign_objects', pg_catalog.jsonb_build_object(
     'count', (SELECT pg_catalog.count(*) FROM foreign_objects),
     'examples', coalesce((SELECT pg_catalog.jsonb_agg(x.what || ' owned by ' || x.owner)
                           FROM (SELECT f.what, f.owner FROM foreign_objects f ORDER BY f.what LIMIT 10) x), '[]')))
