-- The roles planner's snapshot of one database, last read: its default ACLs, each with its
-- creator, schema (0: every schema), object type and ACL as stored. A DBA can run it in psql.
SELECT d.defaclrole, d.defaclnamespace, d.defaclobjtype, d.defaclacl FROM pg_catalog.pg_default_acl d
