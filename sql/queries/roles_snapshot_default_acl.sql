-- The roles planner's snapshot of one database, third read: its default ACLs (tables, sequences,
-- functions, types, schemas), each with its creator, schema (NULL: every schema) and ACL; for a
-- global entry also the built-in default it stores (the owner's own rights, PUBLIC's EXECUTE or
-- USAGE), which pgops leaves out. A DBA can run it in psql.
SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::text, n.nspname::text, d.defaclobjtype::text,
       d.defaclacl::text[],
       CASE WHEN d.defaclnamespace = 0
            THEN pg_catalog.acldefault(CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END::"char",
                                       d.defaclrole)::text[] END
FROM pg_catalog.pg_default_acl d
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
WHERE d.defaclobjtype IN ('r', 'S', 'f', 'T', 'n')
