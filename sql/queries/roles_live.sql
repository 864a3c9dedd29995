-- Every role of the cluster with its attributes, memberships and settings, as the roles planner reads them (superuser: pg_authid).
-- Run by pgops as written here (included at build time); a DBA can run it in psql.
-- The result is json, not jsonb: built as text, it costs a fraction at ten thousand roles.
-- Memberships, settings and comments are gathered once and joined (not a subquery per role: the
-- catalogs have no statistics, and a per-role scan of pg_auth_members grows with the square of
-- the number of roles).
WITH mem AS (
    SELECT m.member, json_agg(json_build_object('role', g.rolname, 'grantor', coalesce(gr.rolname, ''), 'admin', m.admin_option,
                                                 'inherit', to_jsonb(m) -> 'inherit_option', 'set', to_jsonb(m) -> 'set_option')
                              ORDER BY g.rolname, gr.rolname) AS list
    FROM pg_catalog.pg_auth_members m
    JOIN pg_catalog.pg_authid g ON g.oid = m.roleid
    LEFT JOIN pg_catalog.pg_authid gr ON gr.oid = m.grantor
    GROUP BY m.member),
setting AS (
    SELECT s.setrole, json_object_agg(split_part(c, '=', 1), substr(c, strpos(c, '=') + 1)) AS settings
    FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c
    WHERE s.setdatabase = 0
    GROUP BY s.setrole)
SELECT coalesce(json_agg(json_build_object(
    'name', r.rolname, 'login', r.rolcanlogin, 'superuser', r.rolsuper, 'createdb', r.rolcreatedb,
    'createrole', r.rolcreaterole, 'inherit', r.rolinherit, 'replication', r.rolreplication,
    'bypassrls', r.rolbypassrls, 'connlimit', r.rolconnlimit, 'password', r.rolpassword,
    'valid_until', CASE WHEN (r.rolvaliduntil) IS NULL THEN NULL WHEN (r.rolvaliduntil) = 'infinity' THEN 'infinity' ELSE to_char((r.rolvaliduntil) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' END,
    'comment', c.description,
    'memberships', coalesce(mem.list, '[]'::json),
    'settings', coalesce(setting.settings, '{}'::json))), '[]')
    FROM pg_catalog.pg_authid r
    LEFT JOIN pg_catalog.pg_shdescription c ON c.objoid = r.oid AND c.classoid = 'pg_catalog.pg_authid'::pg_catalog.regclass
    LEFT JOIN mem ON mem.member = r.oid
    LEFT JOIN setting ON setting.setrole = r.oid
