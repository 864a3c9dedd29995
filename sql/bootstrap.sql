-- The extension's bootstrap: the roles every capability grants to, and the schema grants. Runs
-- before any capability's SQL. Roles are cluster-wide, so a second database's CREATE EXTENSION
-- finds them; DROP EXTENSION leaves them (they may hold grants elsewhere).

-- pgops_admin: operators who run pgops without being superusers (HBA rules and apply, freeze
-- jobs, etcd pushes, the full security audit). What it may and may not do: SECURITY.md.
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgops_admin') THEN
        CREATE ROLE pgops_admin NOLOGIN;
    END IF;
END $$;
COMMENT ON ROLE pgops_admin IS 'May run pgops without being a superuser: HBA rules and apply_hba, freeze jobs, etcd pushes, the full security audit (see SECURITY.md)';
-- It audits too: the settings and sessions pg_monitor may read (pg_read_all_settings,
-- pg_read_all_stats) on top of the privileged facts the audit gives it.
GRANT pg_monitor TO pgops_admin;

-- pgops_orphans: the heir of dropped roles' objects (pgops.drop_reassign_to). Never a superuser,
-- whose rights a dropped role's SECURITY DEFINER functions would otherwise get.
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgops_orphans') THEN
        CREATE ROLE pgops_orphans NOLOGIN;
    END IF;
END $$;
COMMENT ON ROLE pgops_orphans IS 'Owns the objects of roles pgops.apply_roles() dropped (REASSIGN OWNED); not a superuser';

-- Nothing in schema pgops is PUBLIC's; pg_monitor (Grafana) and pgops_admin get what each
-- capability grants them.
GRANT USAGE ON SCHEMA pgops TO pg_monitor, pgops_admin;
