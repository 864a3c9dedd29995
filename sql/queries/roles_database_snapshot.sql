-- What the roles planner needs from one database: its schemas, its default ACLs, and for each
-- grantee in $1 (a jsonb array of role names) the privileges it holds on existing objects and how
-- many objects it could hold them on. Run in every connectable database (by a per-database worker
-- for the others) as written here (included at build time); a DBA can run it in psql with
-- $1 replaced by e.g. '["app_reader"]'::jsonb.
WITH g AS (
   -- a grantee that does not exist yet (created by the same apply) owns nothing, holds nothing
   SELECT x AS name, CASE WHEN x = 'PUBLIC' THEN 0::oid ELSE (SELECT r.oid FROM pg_catalog.pg_authid r WHERE r.rolname = x) END AS oid
   FROM pg_catalog.jsonb_array_elements_text($1) x),
sch AS (SELECT oid, nspname FROM pg_catalog.pg_namespace
        WHERE nspname !~ '^pg_' AND nspname NOT IN ('information_schema', 'pgops')),
objs AS MATERIALIZED (
   SELECT s.nspname AS schema, 'tables' AS kind, c.relowner AS owner, coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner)) AS acl
     FROM pg_catalog.pg_class c JOIN sch s ON s.oid = c.relnamespace WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
   UNION ALL
   SELECT s.nspname, 'sequences', c.relowner, coalesce(c.relacl, pg_catalog.acldefault('s', c.relowner))
     FROM pg_catalog.pg_class c JOIN sch s ON s.oid = c.relnamespace WHERE c.relkind = 'S'
   UNION ALL
   SELECT s.nspname, 'functions', p.proowner, coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))
     FROM pg_catalog.pg_proc p JOIN sch s ON s.oid = p.pronamespace WHERE p.prokind <> 'p'
   UNION ALL
   SELECT s.nspname, 'schemas', n.nspowner, coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))
     FROM pg_catalog.pg_namespace n JOIN sch s ON s.oid = n.oid)
SELECT jsonb_build_object(
  'name', current_database(),
  'pgops_version', (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pgops'),
  'schemas', coalesce((SELECT jsonb_agg(nspname ORDER BY nspname) FROM sch), '[]'),
  'default_acl', coalesce((
    SELECT jsonb_agg(jsonb_build_object(
        'creator', pg_catalog.pg_get_userbyid(d.defaclrole), 'schema', n.nspname,
        'kind', CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions'
                                     WHEN 'T' THEN 'types' ELSE 'schemas' END,
        'grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
        'privilege', a.privilege_type, 'grant_option', a.is_grantable))
    FROM pg_catalog.pg_default_acl d
    LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
    CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) a
    WHERE d.defaclobjtype IN ('r', 'S', 'f', 'T', 'n')
      -- a global entry stores the built-in defaults too (owner's own rights, PUBLIC EXECUTE/USAGE)
      AND NOT (d.defaclnamespace = 0 AND EXISTS (
        SELECT FROM pg_catalog.aclexplode(pg_catalog.acldefault(
            CASE d.defaclobjtype WHEN 'S' THEN 's'::"char" ELSE d.defaclobjtype END, d.defaclrole)) x
        WHERE x.grantee = a.grantee AND x.privilege_type = a.privilege_type
          AND x.is_grantable = a.is_grantable))), '[]'),
  'existing', CASE WHEN pg_catalog.jsonb_array_length($1) = 0 THEN '[]' ELSE coalesce((SELECT jsonb_agg(jsonb_build_object('schema', schema, 'kind', kind, 'grantee', grantee,
                                                            'privilege', privilege, 'granted', n))
      FROM (SELECT o.schema, o.kind, g.name AS grantee, a.privilege_type AS privilege, count(*) AS n
            FROM objs o CROSS JOIN LATERAL pg_catalog.aclexplode(o.acl) a JOIN g ON g.oid = a.grantee
            WHERE o.owner IS DISTINCT FROM g.oid GROUP BY 1, 2, 3, 4) e), '[]') END,
  'object_totals', CASE WHEN pg_catalog.jsonb_array_length($1) = 0 THEN '[]' ELSE coalesce((SELECT jsonb_agg(jsonb_build_object('schema', schema, 'kind', kind,
                                                                 'grantee', grantee, 'total', n))
      FROM (SELECT o.schema, o.kind, g.name AS grantee, count(*) AS n
            FROM objs o CROSS JOIN g WHERE o.owner IS DISTINCT FROM g.oid GROUP BY 1, 2, 3) t), '[]') END)
