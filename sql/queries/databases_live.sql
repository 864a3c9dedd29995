-- Every database as pgops.plan_databases() compares it with the config: owner, encoding, collation,
-- tablespace, flags, comment, privileges (the default ACL expanded), ALTER DATABASE settings, sessions.
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
         'name', d.datname::text, 'owner', pg_catalog.pg_get_userbyid(d.datdba)::text,
         'encoding', pg_catalog.pg_encoding_to_char(d.encoding)::text,
         'collate', coalesce(d.datcollate::text, ''), 'ctype', coalesce(d.datctype::text, ''),
         'tablespace', t.spcname::text, 'is_template', d.datistemplate, 'allowconn', d.datallowconn,
         'connlimit', d.datconnlimit, 'comment', c.description,
         'privileges', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                  'grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END,
                  'privilege', a.privilege_type, 'grantable', a.is_grantable))
                FROM pg_catalog.aclexplode(coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))) a), '[]'),
         'settings', coalesce((SELECT pg_catalog.jsonb_object_agg(pg_catalog.split_part(c, '=', 1),
                                      pg_catalog.substr(c, pg_catalog.strpos(c, '=') + 1))
                               FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c
                               WHERE s.setdatabase = d.oid AND s.setrole = 0), '{}'),
         'sessions', (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a
                      WHERE a.datid = d.oid AND a.pid <> pg_catalog.pg_backend_pid()))), '[]')
FROM pg_catalog.pg_database d
JOIN pg_catalog.pg_tablespace t ON t.oid = d.dattablespace
-- a join, not shobj_description() (a SQL function call per database)
LEFT JOIN pg_catalog.pg_shdescription c ON c.objoid = d.oid AND c.classoid = 'pg_catalog.pg_database'::pg_catalog.regclass
