-- Security audit: the seeds' hardening practices (PostgreSQL's server-setup chapter, JuiceFS,
-- Percona's security talks, Pigsty's security config) as live checks an operator can alert on.
--
-- The checks run with the caller's privileges. What only a superuser may read (pg_hba_file_rules,
-- pg_authid, subscription conninfo, user mappings, pg_file_settings, pgops' own role config, the
-- server's files) comes from one SECURITY DEFINER function, pgops._audit_privileged(), executable
-- by superusers and pgops_admin only; anyone else gets status 'unknown' for those checks, never
-- 'pass'. It returns facts, never secrets: password *kinds*, not hashes; *that* a conninfo holds
-- a password, not the password.

CREATE TABLE pgops.security_check (
    check_id text PRIMARY KEY,
    category text NOT NULL,
    severity text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low', 'info')),
    title    text NOT NULL,
    fix_hint text NOT NULL,
    source   text NOT NULL,
    needs    text NOT NULL,
    cis_id   text UNIQUE CHECK (cis_id ~ '^[1-8](\.[0-9]+){1,2}$'),
    automation text NOT NULL DEFAULT 'automated' CHECK (automation IN ('automated', 'manual', 'host'))
);
COMMENT ON TABLE pgops.security_check IS
    'The checks pgops.security_audit runs: category, default severity, what each looks for, the fix, the source (a seed, or the CIS PostgreSQL 17 Benchmark control cis_id), what the caller needs to see it, and how it is decided (automated; manual: facts to review; host: needs the operating system, reported n/a). Not dumped: part of the extension, recreated by CREATE EXTENSION (thresholds live in pgops.security_config)';

INSERT INTO pgops.security_check VALUES
('AUTH-TRUST', 'authentication', 'critical', 'pg_hba.conf lines with trust: no password at all', 'Use peer for local connections and scram-sha-256 over TCP (pgops.hba_rule + pgops.apply_hba()); give superusers a password.', 'seed 001 L80; seed 002 L1', 'superuser or pgops_admin'),
('AUTH-CLEARTEXT', 'authentication', 'high', 'pg_hba.conf lines with password: the password crosses the network in clear text', 'Switch the lines to scram-sha-256.', 'seed 002 L4 (derived)', 'superuser or pgops_admin'),
('AUTH-MD5-HBA', 'authentication', 'medium', 'pg_hba.conf lines with md5', 'Use scram-sha-256 once every password is a SCRAM verifier (see PW-MD5-HASH).', 'seed 001 L80; seed 002 L4', 'superuser or pgops_admin'),
('HBA-ERROR', 'authentication', 'critical', 'pg_hba.conf lines the server cannot parse', 'Fix the line: the file will not reload, and the next start fails.', 'seed 002 L5 (analogous)', 'superuser or pgops_admin'),
('HBA-DRIFT', 'authentication', 'high', 'pg_hba.conf edited by hand since pgops.apply_hba() wrote it', 'Re-render with pgops.apply_hba(), or adopt the manual change into pgops.hba_rule.', 'seed 001 L80', 'superuser or pgops_admin'),
('NET-WIDE-HBA', 'network', 'high', 'pg_hba.conf host lines open to every address (all, 0.0.0.0/0, ::/0)', 'List the exact application and DBA hosts or subnets; end with reject.', 'seed 001 L98; seed 004 L63', 'superuser or pgops_admin'),
('PW-ENCRYPTION', 'passwords', 'high', 'password_encryption is not scram-sha-256', 'ALTER SYSTEM SET password_encryption = ''scram-sha-256''; reload; reset the passwords.', 'seed 002 L4; seed 001 L80', 'any role'),
('PW-MD5-HASH', 'passwords', 'high', 'roles whose stored password is an MD5 hash', 'Set those passwords again with password_encryption = scram-sha-256 (pgops.set_password()).', 'seed 001 L80; seed 002 L4', 'superuser or pgops_admin'),
('LOG-PW-LEAK', 'passwords', 'medium', 'log_statement logs DDL (ddl, mod and all do), so CREATE/ALTER ROLE … PASSWORD lands in the log', 'Set log_statement = none, or send SCRAM verifiers only (pgops.apply_roles() and pgops.set_password() do).', 'seed 000 L21', 'any role'),
('CRED-CONNINFO', 'credentials', 'medium', 'primary_conninfo carries a password', 'Use a passfile (~/.pgpass) or certificate authentication for replication.', 'seed 000 L21', 'pg_read_all_settings'),
('CRED-SUBSCRIPTION', 'credentials', 'medium', 'subscriptions whose connection string carries a password', 'Use a passfile or certificates.', 'seed 000 L21', 'superuser or pgops_admin'),
('CRED-USERMAPPING', 'credentials', 'low', 'user mappings (this database) that store a password option', 'Prefer certificate or passfile-based FDW authentication.', 'seed 000 L21', 'superuser or pgops_admin'),
('CRED-CMD', 'credentials', 'high', 'archive_command / restore_command / archive_cleanup_command / recovery_end_command carry a secret inline', 'Move credentials into the tool''s protected configuration file or environment.', 'seed 000 L21; seed 004 L72', 'pg_read_all_settings'),
('TLS-OFF', 'tls', 'high', 'ssl is off', 'Install a CA-signed certificate and key, ssl = on.', 'seed 000 L17; seed 001 L46; seed 002 L4', 'any role'),
('TLS-NONSSL-CONN', 'tls', 'medium', 'connections from other hosts without SSL or GSSAPI encryption', 'Use hostssl lines; clients use sslmode=verify-full.', 'seed 001 L46; seed 002 L4', 'pg_read_all_stats'),
('TLS-NULL-CIPHER', 'tls', 'high', 'ssl_ciphers lets NULL (unencrypted) or anonymous ciphers through', 'Remove the term (the default HIGH:MEDIUM:+3DES:!aNULL is fine).', 'seed 002 L4', 'pg_read_all_settings'),
('TLS-CERT-EXPIRY', 'tls', 'high', 'the server certificate expires soon (critical once expired)', 'Renew the certificate and reload; watch days_left in Grafana.', 'seed 002 L6', 'superuser or pgops_admin'),
('TLS-SELF-SIGNED', 'tls', 'medium', 'the server certificate is self-signed', 'Use a certificate signed by your CA so clients can verify-full.', 'seed 002 L6', 'superuser or pgops_admin'),
('TLS-KEY-PERMS', 'tls', 'high', 'ssl_key_file is readable by others', 'chmod 0600 (owned by the server user) or root:group 0640.', 'seed 002 L4', 'superuser or pgops_admin'),
('SPOOF-SOCKDIR', 'spoofing', 'medium', 'a Unix socket directory anyone can write to (e.g. /tmp)', 'Use a socket directory writable only by the server user; clients use requirepeer.', 'seed 002 L4', 'superuser or pgops_admin'),
('SPOOF-TCP-NON-HOSTSSL', 'spoofing', 'high', 'host (not hostssl) lines for remote addresses while ssl is on', 'Use hostssl (or hostgssenc) and end with hostnossl … reject; clients verify-full.', 'seed 002 L4', 'superuser or pgops_admin'),
('ROLE-SUPERUSERS', 'roles', 'high', 'superusers outside the allow-list (pgops.security_config superusers)', 'Demote them; give each application its own least-privilege role.', 'seed 001 L58, L78', 'any role'),
('ROLE-APP-OWNS-DB', 'roles', 'medium', 'databases owned by a LOGIN role that is not a superuser', 'Make a NOLOGIN owner role the owner (ALTER DATABASE … OWNER TO).', 'seed 004 L66', 'any role'),
('ROLE-ATTR-UNDECLARED', 'roles', 'medium', 'CREATEROLE / CREATEDB / BYPASSRLS / REPLICATION not declared in pgops.role', 'Revoke the attribute, or declare it in pgops.role and apply.', 'seed 004 L45, L66', 'superuser or pgops_admin'),
('PRIV-PUBLIC-CREATE', 'privileges', 'medium', 'schemas (this database) where PUBLIC may CREATE', 'REVOKE CREATE ON SCHEMA … FROM PUBLIC.', 'seed 004 L45 (derived)', 'any role'),
('PRIV-PUBLIC-CONNECT', 'privileges', 'low', 'databases any role may CONNECT to', 'REVOKE CONNECT ON DATABASE … FROM PUBLIC; grant it per application role.', 'seed 004 L45; seed 001 L78', 'any role'),
('PRIV-PUBLIC-TEMP', 'privileges', 'low', 'databases where any role may create temporary tables', 'REVOKE TEMPORARY ON DATABASE … FROM PUBLIC where not needed.', 'seed 004 L45', 'any role'),
('PRIV-SECDEF', 'privileges', 'medium', 'SECURITY DEFINER functions (this database) PUBLIC may execute; high without a fixed search_path', 'REVOKE EXECUTE … FROM PUBLIC and ALTER FUNCTION … SET search_path = pg_catalog, pg_temp.', 'seed 004 L45 (derived)', 'any role'),
('RLS-POLICY-INACTIVE', 'rls', 'high', 'tables (this database) with policies but row-level security disabled: the policies do nothing', 'ALTER TABLE … ENABLE ROW LEVEL SECURITY.', 'seed 001 L72; seed 004 L51', 'any role'),
('RLS-NO-POLICY', 'rls', 'info', 'tables (this database) with row-level security enabled and no policy: nobody but the owner sees a row', 'Add policies, or confirm the default-deny is intended.', 'seed 004 L45', 'any role'),
('RLS-BYPASS-ROLES', 'rls', 'medium', 'non-superuser roles with BYPASSRLS outside the allow-list (pgops.security_config bypassrls_roles)', 'ALTER ROLE … NOBYPASSRLS unless it is intended.', 'seed 001 L78', 'any role'),
('BAK-ARCHIVE-OFF', 'backups', 'high', 'WAL archiving is off on a primary: no point-in-time recovery', 'Set up pgBackRest or Barman with archive_mode = on.', 'seed 000 L39; seed 001 L116', 'any role'),
('BAK-ARCHIVE-FAILING', 'backups', 'critical', 'the last WAL archive attempt failed', 'Fix archive_command or the repository; WAL piles up in pg_wal meanwhile.', 'seed 001 L116', 'any role'),
('BAK-ARCHIVE-STALE', 'backups', 'high', 'no WAL archived for longer than archive_stale_seconds while WAL advances', 'Check the archiver (archive_command set?) and the backup tool.', 'seed 000 L39', 'any role'),
('HA-SLOT-INACTIVE', 'replication', 'medium', 'replication slots nobody is using: they hold WAL (and xmin) back', 'Drop the slot, or bring its consumer back.', 'seed 004 L84', 'any role'),
('CONF-PENDING', 'config', 'medium', 'settings changed that only take effect after a restart', 'Restart the server (or revert the change).', 'seed 001 L80 (derived)', 'any role'),
('CONF-FILE-ERROR', 'config', 'high', 'configuration file lines the server rejects', 'Fix the lines shown: a reload ignored them, and some errors stop the next start.', 'seed 001 L80 (derived)', 'superuser or pgops_admin'),
('FS-DATADIR-MODE', 'filesystem', 'high', 'the data directory is writable by its group or open to others: the next start fails', 'chmod 0700 the data directory (0750 for group backup access).', 'seed 002 L1; seed 001 L64', 'superuser or pgops_admin');

-- Thresholds and allow-lists. The defaults (the Pigsty baseline) belong to the extension; the
-- operator's choices go to pgops.security_config, which pg_dump keeps. Kept apart so that a
-- restore (CREATE EXTENSION inserts the defaults, then the dump's rows arrive) never collides.
CREATE TABLE pgops.security_default (
    name    text PRIMARY KEY,
    value   jsonb NOT NULL,
    comment text NOT NULL
);
COMMENT ON TABLE pgops.security_default IS
    'Defaults of the security audit''s thresholds and allow-lists (Pigsty baseline). Not dumped: part of the extension; override a value in pgops.security_config';
INSERT INTO pgops.security_default VALUES
    ('superusers', '["postgres", "dbuser_dba"]', 'Roles allowed to be superusers (Pigsty: the dbsu and the admin user)'),
    ('bypassrls_roles', '[]', 'Non-superuser roles allowed to have BYPASSRLS'),
    ('cert_expiry_days', '30', 'TLS-CERT-EXPIRY fails (high) when the server certificate expires within this many days'),
    ('archive_stale_seconds', '3600', 'BAK-ARCHIVE-STALE fails when no WAL was archived for this long while WAL advanced'),
    ('ignored_checks', '[]', 'Check ids reported as n/a (accepted risks)'),
    ('pg_releases', '{"as_of": "2026-12-07", "releases": {"13": {"latest": "13.23", "eol": "2025-11-13"}, "14": {"latest": "14.23", "eol": "2026-11-12"}, "15": {"latest": "15.20", "eol": "2027-11-11"}, "16": {"latest": "16.16", "eol": "2028-11-09"}, "17": {"latest": "17.12", "eol": "2029-11-08"}, "18": {"latest": "18.6", "eol": "2030-11-14"}}}',
     'CIS 1.5: the latest minor release of each major version and its end of life, as of the date given (replace it with a newer list as releases come out)'),
    ('trusted_extensions', '["bool_plperl", "btree_gin", "btree_gist", "citext", "cube", "dict_int", "fuzzystrmatch", "hstore", "hstore_plperl", "intarray", "isn", "jsonb_plperl", "lo", "ltree", "pg_trgm", "pgcrypto", "plperl", "plpgsql", "pltcl", "seg", "tablefunc", "tcn", "tsm_system_rows", "tsm_system_time", "unaccent", "uuid-ossp"]',
     'EXT-TRUSTED: trusted extensions database owners may install (default: those PostgreSQL ships trusted)'),
    ('score_history_rows', '1000', 'How many rows pgops.security_score_history keeps (a row per changed score, written by the launcher every pgops.security_score_interval)');

CREATE TABLE pgops.security_config (
    name    text PRIMARY KEY REFERENCES pgops.security_default (name),
    value   jsonb NOT NULL,
    comment text
);
COMMENT ON TABLE pgops.security_config IS
    'Your values for the security audit''s thresholds and allow-lists (see pgops.security_default for the names and defaults, pgops.security_settings for what is in effect)';

CREATE FUNCTION pgops._security_config_check() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pgops, pg_temp AS $$
BEGIN
    IF NEW.name IN ('superusers', 'bypassrls_roles', 'ignored_checks', 'trusted_extensions') THEN
        IF jsonb_typeof(NEW.value) <> 'array'
           OR EXISTS (SELECT FROM jsonb_array_elements(NEW.value) e WHERE jsonb_typeof(e) <> 'string') THEN
            RAISE EXCEPTION 'pgops.security_config "%": value must be a JSON array of strings, e.g. ["postgres", "dbuser_dba"]', NEW.name;
        END IF;
        IF NEW.name = 'ignored_checks' AND EXISTS (
            SELECT FROM jsonb_array_elements_text(NEW.value) e WHERE e NOT IN (SELECT check_id FROM pgops.security_check)) THEN
            RAISE EXCEPTION 'pgops.security_config "ignored_checks": unknown check id(s) %',
                (SELECT string_agg(e, ', ') FROM jsonb_array_elements_text(NEW.value) e
                 WHERE e NOT IN (SELECT check_id FROM pgops.security_check))
                USING HINT = 'See SELECT check_id FROM pgops.security_check.';
        END IF;
    ELSIF NEW.name IN ('cert_expiry_days', 'archive_stale_seconds') THEN
        IF jsonb_typeof(NEW.value) <> 'number' OR (NEW.value)::text::numeric <= 0 THEN
            RAISE EXCEPTION 'pgops.security_config "%": value must be a positive number', NEW.name;
        END IF;
    ELSIF NEW.name = 'score_history_rows' THEN
        IF jsonb_typeof(NEW.value) <> 'number' OR (NEW.value)::text !~ '^[1-9][0-9]{0,8}$' THEN
            RAISE EXCEPTION 'pgops.security_config "score_history_rows": value must be a positive whole number (at most 999999999)';
        END IF;
    ELSIF NEW.name = 'pg_releases' THEN
        IF jsonb_typeof(NEW.value) <> 'object' OR jsonb_typeof(NEW.value -> 'releases') IS DISTINCT FROM 'object'
           OR (NEW.value ->> 'as_of') !~ '^\d{4}-\d{2}-\d{2}$'
           OR EXISTS (SELECT FROM jsonb_each(NEW.value -> 'releases') r
                      WHERE r.key !~ '^\d{2}$' OR jsonb_typeof(r.value) <> 'object'
                         OR (r.value ->> 'latest') !~ ('^' || r.key || '\.\d+$') OR (r.value ->> 'eol') !~ '^\d{4}-\d{2}-\d{2}$') THEN
            RAISE EXCEPTION 'pgops.security_config "pg_releases": value must be {"as_of": "YYYY-MM-DD", "releases": {"17": {"latest": "17.12", "eol": "2029-11-08"}, …}}'
                USING HINT = 'Each major version: its latest minor release (major.minor) and its end-of-life date.';
        END IF;
        BEGIN
            PERFORM (NEW.value ->> 'as_of')::date, (SELECT max((r.value ->> 'eol')::date) FROM jsonb_each(NEW.value -> 'releases') r),
                    (SELECT max(split_part(r.value ->> 'latest', '.', 2)::int) FROM jsonb_each(NEW.value -> 'releases') r);
        EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR numeric_value_out_of_range THEN
            RAISE EXCEPTION 'pgops.security_config "pg_releases": %', SQLERRM
                USING HINT = 'Dates are YYYY-MM-DD and must exist; a minor release number is a whole number.';
        END;
    ELSE
        RAISE EXCEPTION 'pgops.security_config: unknown setting "%"', NEW.name
            USING HINT = 'Known: superusers, bypassrls_roles, ignored_checks, trusted_extensions, cert_expiry_days, archive_stale_seconds, pg_releases, score_history_rows.';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER security_config_check BEFORE INSERT OR UPDATE ON pgops.security_config
    FOR EACH ROW EXECUTE FUNCTION pgops._security_config_check();
SELECT pg_catalog.pg_extension_config_dump('pgops.security_config', '');

CREATE VIEW pgops.security_settings AS
SELECT d.name, coalesce(c.value, d.value) AS value, d.value AS default_value, c.name IS NOT NULL AS overridden,
       coalesce(c.comment, d.comment) AS comment
FROM pgops.security_default d LEFT JOIN pgops.security_config c USING (name);
COMMENT ON VIEW pgops.security_settings IS 'The security audit''s thresholds and allow-lists in effect: your value from pgops.security_config, else the default';

-- The facts only a superuser may read, as one jsonb document. Never secrets.
CREATE FUNCTION pgops._audit_privileged() RETURNS jsonb LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
SELECT jsonb_build_object(
  'hba', (SELECT coalesce(jsonb_agg(jsonb_build_object(
              'line', line_number, 'type', type, 'database', database, 'user_name', user_name,
              'address', address, 'netmask', netmask, 'auth_method', auth_method, 'error', error)
              ORDER BY line_number), '[]') FROM pg_hba_file_rules),
  'password_kinds', (SELECT coalesce(jsonb_agg(jsonb_build_object('role', rolname, 'kind',
              CASE WHEN rolpassword IS NULL THEN 'none'
                   WHEN rolpassword LIKE 'md5%' THEN 'md5'
                   WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram'
                   ELSE 'plaintext' END) ORDER BY rolname), '[]') FROM pg_authid),
  'subscriptions', (SELECT coalesce(jsonb_agg(jsonb_build_object('name', subname,
              'secret', pgops._inline_secret(subconninfo)) ORDER BY subname), '[]') FROM pg_subscription),
  'user_mappings', (SELECT coalesce(jsonb_agg(jsonb_build_object('server', srvname, 'user', usename,
              'password', EXISTS (SELECT FROM unnest(umoptions) o WHERE o ILIKE 'password=%'))), '[]')
              FROM pg_user_mappings),
  'command_lines', (SELECT coalesce(jsonb_agg(jsonb_build_object('name', name, 'file', sourcefile, 'line', sourceline,
              'secret', pgops._inline_secret(setting)) ORDER BY sourcefile, sourceline), '[]')
              FROM pg_file_settings
              WHERE name IN ('archive_command', 'restore_command', 'archive_cleanup_command', 'recovery_end_command')
                AND pgops._inline_secret(setting) IS NOT NULL),
  'file_errors', (SELECT coalesce(jsonb_agg(jsonb_build_object('file', f.sourcefile, 'line', f.sourceline,
              'name', f.name, 'error', f.error,
              'pending_restart', EXISTS (SELECT FROM pg_settings s WHERE s.name = f.name AND s.pending_restart))
              ORDER BY f.sourcefile, f.sourceline), '[]')
              FROM pg_file_settings f WHERE f.error IS NOT NULL),
  'declared_roles', (SELECT coalesce(jsonb_agg(jsonb_build_object('name', name, 'createrole', createrole,
              'createdb', createdb, 'bypassrls', bypassrls, 'replication', replication, 'superuser', superuser)), '[]')
              FROM pgops.role WHERE state = 'present'),
  'hba_drift', (SELECT to_jsonb(d) FROM pgops._hba_drift() d),
  'files', pgops._audit_files())
$$;

-- The checks. One row per offending object, or one 'pass' / 'n/a' / 'unknown' row per check.
CREATE FUNCTION pgops._security_audit()
RETURNS TABLE (check_id text, status text, object text, detail text, severity text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    priv jsonb;
    why_priv text := 'needs superuser or pgops_admin (reads pg_hba_file_rules, pg_authid and the server''s files)';
    s_ssl text;
    s_ciphers text;
    s_pwenc text;
    s_logstmt text;
    s_conninfo text;
    s_archive_mode text;
    allowed_super text[];
    allowed_bypass text[];
    expiry_days numeric;
    stale_seconds numeric;
    recovery boolean := pg_is_in_recovery();
    f jsonb;
BEGIN
    IF has_function_privilege('pgops._audit_privileged()', 'EXECUTE') THEN
        priv := pgops._audit_privileged();
    END IF;
    SELECT setting INTO s_ssl FROM pg_settings WHERE name = 'ssl';
    SELECT setting INTO s_ciphers FROM pg_settings WHERE name = 'ssl_ciphers';
    SELECT setting INTO s_pwenc FROM pg_settings WHERE name = 'password_encryption';
    SELECT setting INTO s_logstmt FROM pg_settings WHERE name = 'log_statement';
    SELECT setting INTO s_conninfo FROM pg_settings WHERE name = 'primary_conninfo';
    SELECT setting INTO s_archive_mode FROM pg_settings WHERE name = 'archive_mode';
    SELECT coalesce(array_agg(e), '{}') INTO allowed_super
        FROM pgops.security_settings c, jsonb_array_elements_text(c.value) e WHERE c.name = 'superusers';
    SELECT coalesce(array_agg(e), '{}') INTO allowed_bypass
        FROM pgops.security_settings c, jsonb_array_elements_text(c.value) e WHERE c.name = 'bypassrls_roles';
    SELECT value::text::numeric INTO expiry_days FROM pgops.security_settings WHERE name = 'cert_expiry_days';
    SELECT value::text::numeric INTO stale_seconds FROM pgops.security_settings WHERE name = 'archive_stale_seconds';
    f := priv -> 'files';

    -- ---------------------------------------------------------------- authentication / network
    IF priv IS NULL THEN
        RETURN QUERY SELECT c, 'unknown', NULL::text, why_priv, NULL::text
            FROM unnest(ARRAY['AUTH-TRUST', 'AUTH-CLEARTEXT', 'AUTH-MD5-HBA', 'HBA-ERROR', 'HBA-DRIFT', 'NET-WIDE-HBA',
                              'PW-MD5-HASH', 'CRED-SUBSCRIPTION', 'CRED-USERMAPPING', 'TLS-CERT-EXPIRY', 'TLS-SELF-SIGNED',
                              'TLS-KEY-PERMS', 'SPOOF-SOCKDIR', 'SPOOF-TCP-NON-HOSTSSL', 'ROLE-ATTR-UNDECLARED',
                              'CONF-FILE-ERROR', 'FS-DATADIR-MODE']) c;
    ELSE
        FOR check_id, severity, detail IN VALUES
            ('AUTH-TRUST', 'trust', 'no password or other proof is asked'),
            ('AUTH-CLEARTEXT', 'password', 'the password is sent in clear text'),
            ('AUTH-MD5-HBA', 'md5', 'md5 challenge: a stolen hash is as good as the password')
        LOOP
            RETURN QUERY SELECT check_id, 'fail',
                   format('line %s: %s', h.line, concat_ws(' ', h.type, array_to_string(h.database, ','), array_to_string(h.user_name, ','), h.address, h.auth_method)),
                   detail, NULL::text
              FROM jsonb_to_recordset(priv -> 'hba') AS h(line int, type text, database text[], user_name text[], address text, auth_method text, error text)
             WHERE h.auth_method = severity AND h.error IS NULL;
            IF NOT FOUND THEN
                RETURN QUERY SELECT check_id, 'pass', NULL::text, format('no %s lines', severity), NULL::text;
            END IF;
        END LOOP;
        severity := NULL;
        RETURN QUERY SELECT 'HBA-ERROR', 'fail', format('line %s', h.line), h.error, NULL::text
          FROM jsonb_to_recordset(priv -> 'hba') AS h(line int, error text) WHERE h.error IS NOT NULL;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'HBA-ERROR', 'pass', NULL::text, 'every line parses', NULL::text;
        END IF;
        RETURN QUERY SELECT 'HBA-DRIFT',
            CASE WHEN (priv #>> '{hba_drift,drifted}')::boolean THEN 'fail'
                 WHEN priv #>> '{hba_drift,state}' = 'current' THEN 'pass' ELSE 'n/a' END,
            priv #>> '{hba_drift,path}',
            format('%s: %s', priv #>> '{hba_drift,state}', priv #>> '{hba_drift,detail}'),
            NULL::text;
        RETURN QUERY SELECT 'NET-WIDE-HBA', 'fail',
               format('line %s: %s', h.line, concat_ws(' ', h.type, array_to_string(h.database, ','), array_to_string(h.user_name, ','), h.address || coalesce('/' || h.netmask, ''), h.auth_method)),
               'any address may try to connect', NULL::text
          FROM jsonb_to_recordset(priv -> 'hba') AS h(line int, type text, database text[], user_name text[], address text, netmask text, auth_method text, error text)
         WHERE h.type LIKE 'host%' AND h.auth_method <> 'reject' AND h.error IS NULL
           AND (h.address = 'all' OR h.netmask IN ('0.0.0.0', '::'));
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'NET-WIDE-HBA', 'pass', NULL::text, 'no host line accepts every address', NULL::text;
        END IF;
    END IF;

    -- ---------------------------------------------------------------- passwords
    RETURN QUERY SELECT 'PW-ENCRYPTION', CASE WHEN s_pwenc = 'scram-sha-256' THEN 'pass' ELSE 'fail' END,
        'password_encryption', format('password_encryption = %s', s_pwenc), NULL::text;
    IF priv IS NOT NULL THEN
        RETURN QUERY SELECT 'PW-MD5-HASH', 'fail', p.role, 'the stored password is an MD5 hash', NULL::text
          FROM jsonb_to_recordset(priv -> 'password_kinds') AS p(role text, kind text) WHERE p.kind = 'md5';
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'PW-MD5-HASH', 'pass', NULL::text, 'no MD5 password hashes', NULL::text;
        END IF;
    END IF;
    RETURN QUERY SELECT 'LOG-PW-LEAK', CASE WHEN s_logstmt IN ('ddl', 'mod', 'all') THEN 'fail' ELSE 'pass' END,
        'log_statement', format('log_statement = %s', s_logstmt), NULL::text;

    -- ---------------------------------------------------------------- credentials
    IF s_conninfo IS NULL THEN
        RETURN QUERY SELECT 'CRED-CONNINFO', 'unknown', NULL::text, 'needs pg_read_all_settings (primary_conninfo is hidden)', NULL::text;
    ELSE
        RETURN QUERY SELECT 'CRED-CONNINFO', CASE WHEN x.kind IS NULL THEN 'pass' ELSE 'fail' END,
            'primary_conninfo', coalesce('contains ' || x.kind, 'no inline password'), NULL::text
          FROM (SELECT pgops._inline_secret(s_conninfo) AS kind) x;
    END IF;
    IF priv IS NOT NULL THEN
        RETURN QUERY SELECT 'CRED-SUBSCRIPTION', 'fail', x.name, 'the connection string contains ' || x.secret, NULL::text
          FROM jsonb_to_recordset(priv -> 'subscriptions') AS x(name text, secret text) WHERE x.secret IS NOT NULL;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'CRED-SUBSCRIPTION', 'pass', NULL::text, 'no subscription holds a password', NULL::text;
        END IF;
        RETURN QUERY SELECT 'CRED-USERMAPPING', 'fail', format('%s for %s', x.server, x."user"), 'the mapping stores a password option', NULL::text
          FROM jsonb_to_recordset(priv -> 'user_mappings') AS x(server text, "user" text, password boolean) WHERE x.password;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'CRED-USERMAPPING', 'pass', NULL::text, 'no user mapping stores a password', NULL::text;
        END IF;
    END IF;
    -- The commands: the values in effect (pg_settings), and every line of the configuration files
    -- (with archive_mode off, archive_command shows as "(disabled)" but still sits in the file).
    IF priv IS NULL AND (NOT EXISTS (SELECT FROM pg_settings WHERE name = 'archive_command')
                         OR (SELECT setting FROM pg_settings WHERE name = 'archive_command') = '(disabled)') THEN
        RETURN QUERY SELECT 'CRED-CMD', 'unknown', NULL::text,
            'archive_mode is off, so archive_command is not shown; reading the configuration files needs superuser or pgops_admin', NULL::text;
    ELSE
        RETURN QUERY
            SELECT 'CRED-CMD', 'fail', s.name::text, 'contains ' || x.kind, NULL::text
              FROM pg_settings s, LATERAL (SELECT pgops._inline_secret(s.setting) AS kind) x
             WHERE s.name IN ('archive_command', 'restore_command', 'archive_cleanup_command', 'recovery_end_command')
               AND x.kind IS NOT NULL
            UNION ALL
            SELECT 'CRED-CMD', 'fail', format('%s (%s:%s)', l.name, l.file, l.line), 'contains ' || l.secret, NULL::text
              FROM jsonb_to_recordset(coalesce(priv -> 'command_lines', '[]')) AS l(name text, file text, line int, secret text);
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'CRED-CMD', 'pass', NULL::text, 'no inline secret in the archive and recovery commands', NULL::text;
        END IF;
    END IF;

    -- ---------------------------------------------------------------- TLS and spoofing
    RETURN QUERY SELECT 'TLS-OFF', CASE WHEN s_ssl = 'on' THEN 'pass' ELSE 'fail' END, 'ssl', format('ssl = %s', s_ssl), NULL::text;
    IF NOT (pg_has_role('pg_read_all_stats', 'USAGE') OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)) THEN
        RETURN QUERY SELECT 'TLS-NONSSL-CONN', 'unknown', NULL::text, 'needs pg_read_all_stats (other sessions'' addresses are hidden)', NULL::text;
    ELSE
        RETURN QUERY SELECT 'TLS-NONSSL-CONN', 'fail',
               format('%s@%s (pid %s, %s)', a.usename, host(a.client_addr), a.pid, coalesce(nullif(a.application_name, ''), a.backend_type)),
               'connected over TCP from another host without encryption', NULL::text
          FROM pg_stat_activity a
          JOIN pg_stat_ssl s ON s.pid = a.pid
          LEFT JOIN pg_stat_gssapi g ON g.pid = a.pid
         WHERE a.client_addr IS NOT NULL AND NOT (a.client_addr << inet '127.0.0.0/8' OR a.client_addr = inet '::1')
           AND NOT s.ssl AND NOT coalesce(g.encrypted, false);
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'TLS-NONSSL-CONN', 'pass', NULL::text, 'every remote connection is encrypted', NULL::text;
        END IF;
    END IF;
    IF s_ssl <> 'on' THEN
        RETURN QUERY SELECT c, 'n/a', NULL::text, 'ssl is off (see TLS-OFF)', NULL::text
          FROM unnest(ARRAY['TLS-NULL-CIPHER', 'TLS-CERT-EXPIRY', 'TLS-SELF-SIGNED', 'TLS-KEY-PERMS', 'SPOOF-TCP-NON-HOSTSSL']) c
         WHERE priv IS NOT NULL OR c = 'TLS-NULL-CIPHER';
    ELSE
        IF s_ciphers IS NULL THEN
            RETURN QUERY SELECT 'TLS-NULL-CIPHER', 'unknown', NULL::text, 'needs pg_read_all_settings (ssl_ciphers is hidden)', NULL::text;
        ELSE
            RETURN QUERY SELECT 'TLS-NULL-CIPHER', CASE WHEN x.why IS NULL THEN 'pass' ELSE 'fail' END,
                'ssl_ciphers', coalesce(x.why || format(' (ssl_ciphers = %s)', s_ciphers),
                                        format('ssl_ciphers = %s', s_ciphers)), NULL::text
              FROM (SELECT pgops._null_cipher_term(s_ciphers) AS why) x;
        END IF;
        IF priv IS NOT NULL THEN
            RETURN QUERY SELECT 'TLS-CERT-EXPIRY',
                CASE WHEN f #>> '{cert,error}' IS NOT NULL THEN 'unknown'
                     WHEN (f #>> '{cert,days_left}')::float8 < expiry_days THEN 'fail' ELSE 'pass' END,
                f #>> '{cert,path}',
                coalesce(f #>> '{cert,error}',
                         format('expires %s (%s days left)', f #>> '{cert,not_after}', round((f #>> '{cert,days_left}')::numeric, 1))),
                CASE WHEN (f #>> '{cert,days_left}')::float8 < 0 THEN 'critical' END;
            RETURN QUERY SELECT 'TLS-SELF-SIGNED',
                CASE WHEN f #>> '{cert,error}' IS NOT NULL THEN 'unknown'
                     WHEN (f #>> '{cert,self_signed}')::boolean THEN 'fail' ELSE 'pass' END,
                f #>> '{cert,path}',
                coalesce(f #>> '{cert,error}', format('subject %s, issuer %s', f #>> '{cert,subject}', f #>> '{cert,issuer}')), NULL::text;
            RETURN QUERY SELECT 'TLS-KEY-PERMS',
                CASE WHEN f #>> '{key,error}' IS NOT NULL THEN 'unknown'
                     WHEN (f #>> '{key,ok}')::boolean THEN 'pass' ELSE 'fail' END,
                f #>> '{key,path}',
                coalesce(f #>> '{key,error}', format('mode %s, owner uid %s (server uid %s)', f #>> '{key,mode}', f #>> '{key,owner_uid}', f ->> 'server_uid')),
                NULL::text;
            RETURN QUERY SELECT 'SPOOF-TCP-NON-HOSTSSL', 'fail',
                   format('line %s: %s', h.line, concat_ws(' ', h.type, array_to_string(h.database, ','), array_to_string(h.user_name, ','), h.address || coalesce('/' || h.netmask, ''), h.auth_method)),
                   'a remote client may connect without SSL, so it cannot tell the server is genuine', NULL::text
              FROM jsonb_to_recordset(priv -> 'hba') AS h(line int, type text, database text[], user_name text[], address text, netmask text, auth_method text, error text)
             WHERE h.type IN ('host', 'hostnossl') AND h.auth_method <> 'reject' AND h.error IS NULL
               AND NOT CASE WHEN h.address ~ '^\d{1,3}(\.\d{1,3}){3}$' OR h.address ~ '^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$'
                            THEN h.address::inet <<= inet '127.0.0.0/8' OR h.address::inet = inet '::1'
                            ELSE coalesce(h.address, '') IN ('samehost', 'localhost') END;
            IF NOT FOUND THEN
                RETURN QUERY SELECT 'SPOOF-TCP-NON-HOSTSSL', 'pass', NULL::text, 'remote clients must use SSL', NULL::text;
            END IF;
        END IF;
    END IF;
    IF priv IS NOT NULL THEN
        RETURN QUERY SELECT 'SPOOF-SOCKDIR',
            CASE WHEN d ->> 'error' IS NOT NULL THEN 'unknown' WHEN (d ->> 'ok')::boolean THEN 'pass' ELSE 'fail' END,
            d ->> 'path', coalesce(d ->> 'error', format('mode %s', d ->> 'mode')), NULL::text
          FROM jsonb_array_elements(f -> 'socket_dirs') d;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'SPOOF-SOCKDIR', 'n/a', NULL::text, 'no Unix socket directory', NULL::text;
        END IF;
    END IF;

    -- ---------------------------------------------------------------- roles
    RETURN QUERY SELECT 'ROLE-SUPERUSERS', 'fail', r.rolname::text, 'a superuser not in pgops.security_config superusers', NULL::text
      FROM pg_roles r WHERE r.rolsuper AND r.rolname <> ALL (allowed_super);
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'ROLE-SUPERUSERS', 'pass', NULL::text, format('superusers: %s', (SELECT string_agg(rolname, ', ' ORDER BY rolname) FROM pg_roles WHERE rolsuper)), NULL::text;
    END IF;
    RETURN QUERY SELECT 'ROLE-APP-OWNS-DB', 'fail', d.datname::text, format('owned by %s, a LOGIN role', r.rolname), NULL::text
      FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolcanlogin AND NOT r.rolsuper;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'ROLE-APP-OWNS-DB', 'pass', NULL::text, 'no database is owned by a login role', NULL::text;
    END IF;
    IF priv IS NOT NULL THEN
        IF jsonb_array_length(priv -> 'declared_roles') = 0 THEN
            RETURN QUERY SELECT 'ROLE-ATTR-UNDECLARED', 'n/a', NULL::text, 'no roles are declared in pgops.role', NULL::text;
        ELSE
            RETURN QUERY SELECT 'ROLE-ATTR-UNDECLARED', 'fail', r.rolname::text,
                   'undeclared: ' || array_to_string(ARRAY[
                       CASE WHEN r.rolcreaterole AND NOT coalesce(d.createrole, false) THEN 'CREATEROLE' END,
                       CASE WHEN r.rolcreatedb AND NOT coalesce(d.createdb, false) THEN 'CREATEDB' END,
                       CASE WHEN r.rolbypassrls AND NOT coalesce(d.bypassrls, false) THEN 'BYPASSRLS' END,
                       CASE WHEN r.rolreplication AND NOT coalesce(d.replication, false) THEN 'REPLICATION' END], ', ')
                   || CASE WHEN d.name IS NULL THEN ' (the role is not in pgops.role)' ELSE '' END, NULL::text
              FROM pg_roles r
              LEFT JOIN jsonb_to_recordset(priv -> 'declared_roles') AS d(name text, createrole boolean, createdb boolean, bypassrls boolean, replication boolean)
                ON d.name = r.rolname
             WHERE NOT r.rolsuper AND r.rolname NOT LIKE 'pg\_%'
               AND ((r.rolcreaterole AND NOT coalesce(d.createrole, false)) OR (r.rolcreatedb AND NOT coalesce(d.createdb, false))
                 OR (r.rolbypassrls AND NOT coalesce(d.bypassrls, false)) OR (r.rolreplication AND NOT coalesce(d.replication, false)));
            IF NOT FOUND THEN
                RETURN QUERY SELECT 'ROLE-ATTR-UNDECLARED', 'pass', NULL::text, 'every role attribute is declared', NULL::text;
            END IF;
        END IF;
    END IF;

    -- ---------------------------------------------------------------- privileges
    RETURN QUERY SELECT 'PRIV-PUBLIC-CREATE', 'fail', n.nspname::text, 'PUBLIC may create objects in this schema', NULL::text
      FROM pg_namespace n
     WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema' AND has_schema_privilege('public', n.oid, 'CREATE');
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'PRIV-PUBLIC-CREATE', 'pass', current_database()::text, 'PUBLIC may not create in any schema', NULL::text;
    END IF;
    RETURN QUERY SELECT 'PRIV-PUBLIC-CONNECT', 'fail', d.datname::text, 'any role may connect', NULL::text
      FROM pg_database d WHERE d.datallowconn AND NOT d.datistemplate AND has_database_privilege('public', d.oid, 'CONNECT');
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'PRIV-PUBLIC-CONNECT', 'pass', NULL::text, 'CONNECT is granted per role', NULL::text;
    END IF;
    RETURN QUERY SELECT 'PRIV-PUBLIC-TEMP', 'fail', d.datname::text, 'any role may create temporary tables', NULL::text
      FROM pg_database d WHERE d.datallowconn AND NOT d.datistemplate AND has_database_privilege('public', d.oid, 'TEMPORARY');
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'PRIV-PUBLIC-TEMP', 'pass', NULL::text, 'TEMPORARY is granted per role', NULL::text;
    END IF;
    RETURN QUERY SELECT 'PRIV-SECDEF', 'fail', p.oid::regprocedure::text,
           CASE WHEN sp THEN 'SECURITY DEFINER, executable by PUBLIC'
                ELSE 'SECURITY DEFINER, executable by PUBLIC, without a fixed search_path: a caller can hijack it' END,
           CASE WHEN sp THEN NULL ELSE 'high' END
      FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace
      CROSS JOIN LATERAL (SELECT EXISTS (SELECT FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%') AS sp) x
     WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND has_function_privilege('public', p.oid, 'EXECUTE');
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'PRIV-SECDEF', 'pass', current_database()::text, 'no SECURITY DEFINER function is executable by PUBLIC', NULL::text;
    END IF;

    -- ---------------------------------------------------------------- row-level security
    RETURN QUERY SELECT 'RLS-POLICY-INACTIVE', 'fail', c.oid::regclass::text,
           format('%s polic%s, row-level security disabled', count(*), CASE WHEN count(*) = 1 THEN 'y' ELSE 'ies' END), NULL::text
      FROM pg_class c JOIN pg_policy pol ON pol.polrelid = c.oid
     WHERE NOT c.relrowsecurity GROUP BY c.oid;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'RLS-POLICY-INACTIVE', 'pass', current_database()::text, 'every table with policies enforces them', NULL::text;
    END IF;
    RETURN QUERY SELECT 'RLS-NO-POLICY', 'fail', c.oid::regclass::text, 'row-level security enabled without a policy', NULL::text
      FROM pg_class c WHERE c.relrowsecurity AND NOT EXISTS (SELECT FROM pg_policy pol WHERE pol.polrelid = c.oid);
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'RLS-NO-POLICY', 'pass', current_database()::text, 'no table enforces row-level security without a policy', NULL::text;
    END IF;
    RETURN QUERY SELECT 'RLS-BYPASS-ROLES', 'fail', r.rolname::text, 'BYPASSRLS, not in pgops.security_config bypassrls_roles', NULL::text
      FROM pg_roles r WHERE r.rolbypassrls AND NOT r.rolsuper AND r.rolname <> ALL (allowed_bypass);
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'RLS-BYPASS-ROLES', 'pass', NULL::text, 'no unexpected BYPASSRLS role', NULL::text;
    END IF;

    -- ---------------------------------------------------------------- backups and replication
    IF recovery THEN
        RETURN QUERY SELECT c, 'n/a', NULL::text, 'a standby: WAL is archived by the primary', NULL::text
          FROM unnest(ARRAY['BAK-ARCHIVE-OFF', 'BAK-ARCHIVE-FAILING', 'BAK-ARCHIVE-STALE']) c;
    ELSIF s_archive_mode = 'off' THEN
        RETURN QUERY SELECT 'BAK-ARCHIVE-OFF', 'fail', 'archive_mode', 'archive_mode = off: no WAL archive, no point-in-time recovery', NULL::text;
        RETURN QUERY SELECT c, 'n/a', NULL::text, 'archiving is off (see BAK-ARCHIVE-OFF)', NULL::text
          FROM unnest(ARRAY['BAK-ARCHIVE-FAILING', 'BAK-ARCHIVE-STALE']) c;
    ELSE
        RETURN QUERY SELECT 'BAK-ARCHIVE-OFF', 'pass', 'archive_mode', format('archive_mode = %s', s_archive_mode), NULL::text;
        RETURN QUERY SELECT 'BAK-ARCHIVE-FAILING',
               CASE WHEN a.last_failed_time > coalesce(a.last_archived_time, '-infinity') THEN 'fail' ELSE 'pass' END,
               a.last_failed_wal,
               CASE WHEN a.last_failed_time > coalesce(a.last_archived_time, '-infinity')
                    THEN format('last attempt failed at %s (%s failures; last success %s)', a.last_failed_time, a.failed_count, coalesce(a.last_archived_time::text, 'never'))
                    ELSE format('%s WAL files archived, last at %s', a.archived_count, coalesce(a.last_archived_time::text, 'never')) END,
               NULL::text
          FROM pg_stat_archiver a;
        RETURN QUERY SELECT 'BAK-ARCHIVE-STALE',
               CASE WHEN behind AND since > stale_seconds THEN 'fail' ELSE 'pass' END,
               coalesce('last archived ' || a.last_archived_wal, 'nothing archived yet'),
               CASE WHEN behind THEN format('nothing archived for %s s (threshold %s s) while WAL advanced to %s', round(since), stale_seconds, cur)
                    ELSE 'the archive keeps up' END,
               NULL::text
          FROM pg_stat_archiver a,
               -- the last completed segment (the current one is archived only once it is finished)
               LATERAL (SELECT pg_walfile_name(pg_current_wal_lsn()) AS cur,
                               -- pg_lsn - numeric needs PG 14: go through the byte position
                               pg_walfile_name(format('%s/%s', to_hex((p / 4294967296)::bigint), to_hex((p % 4294967296)::bigint))::pg_lsn) AS prev
                        FROM (SELECT greatest(floor(pg_current_wal_lsn() - '0/0'::pg_lsn) - setting::numeric, 0) AS p
                              FROM pg_settings WHERE name = 'wal_segment_size') seg) w,
               LATERAL (SELECT coalesce(a.last_archived_wal, '') < w.prev AS behind,
                               extract(epoch FROM now() - coalesce(a.last_archived_time, pg_postmaster_start_time()))::numeric AS since) x;
    END IF;
    RETURN QUERY SELECT 'HA-SLOT-INACTIVE', 'fail', s.slot_name::text,
           format('%s slot, inactive; restart_lsn %s%s', s.slot_type, s.restart_lsn,
                  CASE WHEN s.wal_status IN ('unreserved', 'lost') THEN ', WAL ' || s.wal_status ELSE '' END),
           CASE WHEN s.wal_status IN ('unreserved', 'lost') THEN 'high' END
      FROM pg_replication_slots s WHERE NOT s.active;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'HA-SLOT-INACTIVE', 'pass', NULL::text, 'no inactive replication slot', NULL::text;
    END IF;

    -- ---------------------------------------------------------------- configuration and files
    RETURN QUERY SELECT 'CONF-PENDING', 'fail', s.name::text, format('changed to %s, needs a restart', s.setting), NULL::text
      FROM pg_settings s WHERE s.pending_restart;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'CONF-PENDING', 'pass', NULL::text, 'no setting waits for a restart', NULL::text;
    END IF;
    IF priv IS NOT NULL THEN
        RETURN QUERY SELECT 'CONF-FILE-ERROR', 'fail', format('%s:%s', e.file, e.line), format('%s: %s', e.name, e.error), NULL::text
          FROM jsonb_to_recordset(priv -> 'file_errors') AS e(file text, line int, name text, error text, pending_restart boolean)
         -- a restart-only change also reads "setting could not be applied": that is CONF-PENDING's
         WHERE NOT (e.pending_restart AND e.error = 'setting could not be applied');
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'CONF-FILE-ERROR', 'pass', NULL::text, 'the configuration files parse', NULL::text;
        END IF;
        RETURN QUERY SELECT 'FS-DATADIR-MODE',
            CASE WHEN f #>> '{data_directory,error}' IS NOT NULL THEN 'unknown'
                 WHEN (f #>> '{data_directory,ok}')::boolean THEN 'pass' ELSE 'fail' END,
            f #>> '{data_directory,path}',
            coalesce(f #>> '{data_directory,error}', format('mode %s', f #>> '{data_directory,mode}')), NULL::text;
    END IF;
END $$;

