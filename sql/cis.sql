-- The CIS PostgreSQL 17 Benchmark in the security audit: its controls as checks (cis_id), the
-- checks pgops learned the hard way (look-alikes, search_path), the audit view over both, the
-- score and its bounded history (for the dashboard's trend panel), and the report a DBA hands
-- over (pgops.security_report()). Runs after security.sql (its tables and facts).

-- The CIS PostgreSQL 17 Benchmark (v1.0), control by control, numbered as the benchmark and
-- pgdsat 2.0 number them (pgdsat's own additions, marked "(pgdsat)" in source, included: the
-- same numbers, the same questions). automation: 'automated' — decided here; 'manual' — the
-- benchmark leaves the verdict to a person, pgops shows the facts to review (status manual,
-- never pass); 'host' — needs the operating system (status n/a, the detail says what to check).
INSERT INTO pgops.security_check (check_id, cis_id, automation, category, severity, title, fix_hint, source, needs) VALUES
('CIS-1.1', '1.1', 'host', 'installation', 'medium', 'Packages come from authorized repositories', 'List the enabled repositories (apt-cache policy, dnf repolist) and remove unknown ones.', 'CIS PG17 1.1 (Manual)', 'the host'),
('CIS-1.1.1', '1.1.1', 'automated', 'installation', 'low', 'PostgreSQL packages come from PGDG', 'Install PostgreSQL from apt.postgresql.org / download.postgresql.org (PGDG).', 'pgdsat 2.0 1.1.1 (pgdsat)', 'any role'),
('CIS-1.2', '1.2', 'host', 'installation', 'low', 'Only the required packages are installed', 'Review installed postgresql* packages and remove unused ones.', 'CIS PG17 1.2 (Manual)', 'the host'),
('CIS-1.3', '1.3', 'host', 'installation', 'low', 'The systemd service is enabled (not when Patroni starts PostgreSQL)', 'systemctl enable postgresql@NN-main (or leave it disabled under Patroni).', 'CIS PG17 1.3', 'the host'),
('CIS-1.4.1', '1.4.1', 'automated', 'installation', 'critical', 'The data directory was initialized (initdb)', 'Initialize the cluster with initdb.', 'CIS PG17 1.4', 'superuser or pgops_admin'),
('CIS-1.4.2', '1.4.2', 'automated', 'installation', 'critical', 'PG_VERSION in the data directory matches the server', 'Upgrade the data directory (pg_upgrade) or run the matching server.', 'CIS PG17 1.4', 'superuser or pgops_admin'),
('CIS-1.4.3', '1.4.3', 'automated', 'installation', 'medium', 'Data checksums are enabled', 'pg_checksums --enable on the stopped cluster (or initdb --data-checksums).', 'pgdsat 2.0 1.4.3 (pgdsat)', 'any role'),
('CIS-1.4.4', '1.4.4', 'automated', 'installation', 'low', 'WAL and temporary files are not on the data directory''s file system', 'Move pg_wal to another file system (initdb --waldir, or a symbolic link) and set temp_tablespaces to a tablespace there.', 'pgdsat 2.0 1.4.4 (pgdsat)', 'superuser or pgops_admin'),
('CIS-1.4.5', '1.4.5', 'host', 'installation', 'medium', 'The data directory''s partition is encrypted', 'Put the data directory on an encrypted block device (LUKS) and check with lsblk -f.', 'pgdsat 2.0 1.4.5 (pgdsat, Manual)', 'the host'),
('CIS-1.5', '1.5', 'automated', 'installation', 'high', 'PostgreSQL is the latest minor release of a supported major version', 'Install the latest minor release (a restart); plan the major upgrade before its end of life. The list of releases is pgops.security_settings pg_releases.', 'CIS PG17 1.5', 'any role'),
('CIS-1.6', '1.6', 'host', 'installation', 'high', 'PGPASSWORD is not set in users'' profiles', 'grep PGPASSWORD /home/*/.*rc /home/*/.*profile /root/.*rc /etc/environment /etc/profile*; use ~/.pgpass (0600).', 'CIS PG17 1.6', 'the host'),
('CIS-1.7', '1.7', 'host', 'installation', 'high', 'The PGPASSWORD environment variable is not in use', 'As root: grep -l PGPASSWORD /proc/*/environ; use ~/.pgpass instead. pgops checks the server''s own environment.', 'CIS PG17 1.7', 'the host'),
('CIS-1.8', '1.8', 'manual', 'installation', 'low', 'Unused extensions are removed', 'DROP EXTENSION the ones nothing uses (each database has its own).', 'CIS PG17 1.8 (Manual)', 'any role'),
('CIS-1.9', '1.9', 'automated', 'installation', 'low', 'Tablespaces are not inside the data directory', 'Move the tablespace (ALTER TABLE … SET TABLESPACE to a new one outside the data directory), then drop it.', 'CIS PG17 1.9', 'pg_read_all_settings'),
('CIS-2.1', '2.1', 'host', 'filesystem', 'medium', 'The file permission mask of the postgres account is 0077', 'Set umask 077 in the postgres account''s profile (the server itself creates files with data_directory_mode).', 'CIS PG17 2.1', 'the host'),
('CIS-2.2', '2.2', 'automated', 'filesystem', 'high', 'The extension directory is owned by root and writable by root only', 'chown root:root SHAREDIR/extension; chmod 0755 it: whoever writes there can add a trusted extension that runs as superuser.', 'CIS PG17 2.2', 'superuser or pgops_admin'),
('CIS-2.3', '2.3', 'host', 'filesystem', 'low', 'psql''s command history is disabled', 'ln -sf /dev/null ~/.psql_history for each account, or PSQL_HISTORY=/dev/null.', 'CIS PG17 2.3', 'the host'),
('CIS-2.4', '2.4', 'host', 'filesystem', 'high', 'No password in connection service files', 'Remove password= from .pg_service.conf / pg_service.conf; use ~/.pgpass.', 'CIS PG17 2.4', 'the host'),
('CIS-2.5', '2.5', 'automated', 'filesystem', 'high', 'pg_hba.conf is 0600 or 0640, owned by the server user or root', 'chmod 0640 pg_hba.conf (0600 is stricter).', 'pgdsat 2.0 2.5 (pgdsat)', 'superuser or pgops_admin'),
('CIS-2.6', '2.6', 'automated', 'filesystem', 'medium', 'The Unix socket is not open to every local user', 'unix_socket_permissions = 0770 (with unix_socket_group) or 0700; restart.', 'pgdsat 2.0 2.6 (pgdsat)', 'any role'),
('CIS-2.7', '2.7', 'automated', 'filesystem', 'high', 'The data directory is 0700', 'chmod 0700 the data directory.', 'pgdsat 2.0 2.7 (pgdsat)', 'superuser or pgops_admin'),
('CIS-2.8', '2.8', 'manual', 'filesystem', 'low', 'The data directory holds nothing PostgreSQL did not put there', 'Move foreign files out of the data directory; review its symbolic links.', 'pgdsat 2.0 2.8 (pgdsat, Manual)', 'superuser or pgops_admin'),
('CIS-3.1.1', '3.1.1', 'manual', 'logging', 'info', 'Logging rationale (read the benchmark: nothing to set)', 'Nothing to set: 3.1.2–3.1.27 are the settings.', 'CIS PG17 3.1.1', 'any role'),
('CIS-3.1.2', '3.1.2', 'automated', 'logging', 'medium', 'log_destination is set', 'log_destination = ''stderr'' (with the collector), ''csvlog'', ''jsonlog'' or ''syslog'' per your policy.', 'CIS PG17 3.1.2', 'any role'),
('CIS-3.1.3', '3.1.3', 'automated', 'logging', 'medium', 'The logging collector is enabled', 'logging_collector = on; restart.', 'CIS PG17 3.1.3', 'any role'),
('CIS-3.1.4', '3.1.4', 'automated', 'logging', 'medium', 'log_directory is set', 'log_directory = ''/var/log/postgresql'' (an absolute path outside the data directory).', 'CIS PG17 3.1.4', 'pg_read_all_settings'),
('CIS-3.1.5', '3.1.5', 'manual', 'logging', 'low', 'log_filename follows your policy', 'Set log_filename per your retention policy (e.g. postgresql-%a.log with truncation).', 'CIS PG17 3.1.5 (Manual)', 'any role'),
('CIS-3.1.6', '3.1.6', 'automated', 'logging', 'medium', 'Log files are 0600', 'log_file_mode = 0600; chmod 0600 the existing files.', 'CIS PG17 3.1.6', 'pg_read_all_settings'),
('CIS-3.1.7', '3.1.7', 'automated', 'logging', 'low', 'log_truncate_on_rotation is on', 'log_truncate_on_rotation = on.', 'CIS PG17 3.1.7', 'any role'),
('CIS-3.1.8', '3.1.8', 'manual', 'logging', 'low', 'log_rotation_age follows your policy', 'Set log_rotation_age per your policy (1d is common).', 'CIS PG17 3.1.8 (Manual)', 'any role'),
('CIS-3.1.9', '3.1.9', 'manual', 'logging', 'low', 'log_rotation_size follows your policy', 'Set log_rotation_size per your policy (0 with time-based rotation).', 'CIS PG17 3.1.9 (Manual)', 'any role'),
('CIS-3.1.10', '3.1.10', 'manual', 'logging', 'low', 'syslog_facility follows your policy', 'Set syslog_facility (LOCAL0–LOCAL7) per your syslog configuration.', 'CIS PG17 3.1.10 (Manual)', 'any role'),
('CIS-3.1.11', '3.1.11', 'automated', 'logging', 'low', 'syslog messages are numbered (syslog_sequence_numbers)', 'syslog_sequence_numbers = on.', 'CIS PG17 3.1.11', 'any role'),
('CIS-3.1.12', '3.1.12', 'automated', 'logging', 'low', 'Long syslog messages are split (syslog_split_messages)', 'syslog_split_messages = on.', 'CIS PG17 3.1.12', 'any role'),
('CIS-3.1.13', '3.1.13', 'manual', 'logging', 'low', 'syslog_ident follows your policy', 'Set syslog_ident so PostgreSQL''s messages can be told apart.', 'CIS PG17 3.1.13 (Manual)', 'any role'),
('CIS-3.1.14', '3.1.14', 'automated', 'logging', 'low', 'log_min_messages is warning', 'log_min_messages = warning.', 'CIS PG17 3.1.14', 'pg_read_all_settings'),
('CIS-3.1.15', '3.1.15', 'automated', 'logging', 'low', 'log_min_error_statement is error', 'log_min_error_statement = error.', 'CIS PG17 3.1.15', 'pg_read_all_settings'),
('CIS-3.1.16', '3.1.16', 'automated', 'logging', 'medium', 'debug_print_parse is off', 'debug_print_parse = off (query trees may show data).', 'CIS PG17 3.1.16', 'any role'),
('CIS-3.1.17', '3.1.17', 'automated', 'logging', 'medium', 'debug_print_rewritten is off', 'debug_print_rewritten = off.', 'CIS PG17 3.1.17', 'any role'),
('CIS-3.1.18', '3.1.18', 'automated', 'logging', 'medium', 'debug_print_plan is off', 'debug_print_plan = off.', 'CIS PG17 3.1.18', 'any role'),
('CIS-3.1.19', '3.1.19', 'automated', 'logging', 'info', 'debug_pretty_print is on', 'debug_pretty_print = on.', 'CIS PG17 3.1.19', 'any role'),
('CIS-3.1.20', '3.1.20', 'automated', 'logging', 'medium', 'Connections are logged (log_connections)', 'log_connections = on (PostgreSQL 18: ''all'' or at least authentication,authorization).', 'CIS PG17 3.1.20', 'pg_read_all_settings'),
('CIS-3.1.21', '3.1.21', 'automated', 'logging', 'medium', 'Disconnections are logged (log_disconnections)', 'log_disconnections = on.', 'CIS PG17 3.1.21', 'pg_read_all_settings'),
('CIS-3.1.22', '3.1.22', 'automated', 'logging', 'low', 'log_error_verbosity is verbose', 'log_error_verbosity = verbose.', 'CIS PG17 3.1.22', 'pg_read_all_settings'),
('CIS-3.1.23', '3.1.23', 'automated', 'logging', 'low', 'log_hostname is off', 'log_hostname = off (a DNS lookup per connection; addresses are logged anyway).', 'CIS PG17 3.1.23', 'any role'),
('CIS-3.1.24', '3.1.24', 'automated', 'logging', 'medium', 'log_line_prefix names the time, process, database, user, application and client', 'log_line_prefix = ''%m [%p]: db=%d,user=%u,app=%a,client=%h ''.', 'CIS PG17 3.1.24', 'any role'),
('CIS-3.1.25', '3.1.25', 'automated', 'logging', 'medium', 'log_statement logs at least DDL', 'log_statement = ''ddl'' — and send password verifiers, never passwords (pgops.set_password does; see LOG-PW-LEAK).', 'CIS PG17 3.1.25', 'pg_read_all_settings'),
('CIS-3.1.26', '3.1.26', 'automated', 'logging', 'low', 'log_timezone is UTC (or GMT)', 'log_timezone = ''UTC''.', 'CIS PG17 3.1.26', 'any role'),
('CIS-3.1.27', '3.1.27', 'automated', 'logging', 'low', 'log_directory is outside the data directory', 'log_directory = ''/var/log/postgresql'' (absolute, outside the data directory).', 'pgdsat 2.0 3.1.27 (pgdsat)', 'pg_read_all_settings'),
('CIS-3.2', '3.2', 'automated', 'logging', 'medium', 'pgAudit is loaded and logs DDL and writes', 'shared_preload_libraries = ''pgaudit''; pgaudit.log = ''ddl,write'' (at least).', 'CIS PG17 3.2', 'pg_read_all_settings'),
('CIS-4.1', '4.1', 'host', 'privileges', 'medium', 'The postgres OS account cannot log in interactively', 'Lock the account''s password (passwd -l postgres) and reach it through sudo only.', 'CIS PG17 4.1', 'the host'),
('CIS-4.2', '4.2', 'host', 'privileges', 'medium', 'sudo is configured correctly', 'Review /etc/sudoers(.d) for who may become postgres.', 'CIS PG17 4.2 (Manual)', 'the host'),
('CIS-4.3', '4.3', 'automated', 'privileges', 'high', 'Only one superuser (the bootstrap superuser)', 'ALTER ROLE … NOSUPERUSER; give DBAs predefined roles (pg_monitor, pg_signal_backend…) or pgops_admin.', 'CIS PG17 4.3', 'any role'),
('CIS-4.4', '4.4', 'manual', 'privileges', 'low', 'Accounts not in use are locked', 'ALTER ROLE … NOLOGIN (or VALID UNTIL) for accounts nobody uses; log_connections shows who logs in.', 'CIS PG17 4.4 (Manual)', 'any role'),
('CIS-4.5', '4.5', 'automated', 'privileges', 'high', 'No SECURITY DEFINER function owned by a superuser is executable by PUBLIC (this database)', 'REVOKE EXECUTE ON FUNCTION … FROM PUBLIC (grant it to the roles that need it), or make it SECURITY INVOKER.', 'CIS PG17 4.5 (Manual: pgops applies the benchmark''s rule)', 'any role'),
('CIS-4.6', '4.6', 'automated', 'privileges', 'high', 'PUBLIC holds no INSERT, UPDATE, DELETE or TRUNCATE on a table (this database)', 'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON … FROM PUBLIC; grant to the roles that need it.', 'CIS PG17 4.6 (Manual: pgops applies the benchmark''s rule)', 'any role'),
('CIS-4.7', '4.7', 'automated', 'privileges', 'medium', 'Row-level security is configured correctly (policies enforced, no stray BYPASSRLS)', 'ALTER TABLE … ENABLE ROW LEVEL SECURITY where policies exist; ALTER ROLE … NOBYPASSRLS.', 'CIS PG17 4.7 (Manual: pgops applies the benchmark''s rule)', 'any role'),
('CIS-4.8', '4.8', 'automated', 'privileges', 'low', 'The set_user extension is loaded', 'shared_preload_libraries = ''set_user''; CREATE EXTENSION set_user; let DBAs escalate through it (logged).', 'CIS PG17 4.8', 'pg_read_all_settings'),
('CIS-4.9', '4.9', 'manual', 'privileges', 'low', 'Predefined roles are used instead of superuser', 'Grant pg_monitor, pg_read_all_data, pg_signal_backend… instead of SUPERUSER.', 'CIS PG17 4.9 (Manual)', 'any role'),
('CIS-4.10', '4.10', 'automated', 'privileges', 'high', 'PUBLIC may not create in schema public (this database)', 'REVOKE CREATE ON SCHEMA public FROM PUBLIC (PostgreSQL 15+ does by default).', 'CIS PG17 4.10', 'any role'),
('CIS-5.1', '5.1', 'host', 'authentication', 'high', 'No password on a command line', 'As root: ps -few | grep ''postgresql://[^:]*:[^@]*@''; use ~/.pgpass.', 'CIS PG17 5.1', 'the host'),
('CIS-5.2', '5.2', 'automated', 'network', 'high', 'The server listens on named addresses, not every interface', 'listen_addresses = the addresses clients use (not * or 0.0.0.0); restart.', 'CIS PG17 5.2', 'any role'),
('CIS-5.3', '5.3', 'automated', 'authentication', 'high', 'Local (socket) logins need peer or a strong method', 'Use peer (or scram-sha-256) on local lines, never trust, password, md5 or ident.', 'CIS PG17 5.3', 'superuser or pgops_admin'),
('CIS-5.4', '5.4', 'automated', 'authentication', 'critical', 'TCP logins need scram-sha-256 or an external method', 'Use scram-sha-256 (or gss, sspi, ldap, radius, cert) on host lines, never trust, password, md5 or ident.', 'CIS PG17 5.4', 'superuser or pgops_admin'),
('CIS-5.5', '5.5', 'automated', 'authentication', 'low', 'Login roles have a connection limit', 'ALTER ROLE … CONNECTION LIMIT n for each login role.', 'CIS PG17 5.5', 'any role'),
('CIS-5.6', '5.6', 'automated', 'authentication', 'medium', 'Password complexity is enforced (passwordcheck or credcheck)', 'shared_preload_libraries = ''passwordcheck'' or ''credcheck'' (they judge passwords sent in clear; SCRAM verifiers are checked by whoever makes them).', 'CIS PG17 5.6', 'superuser or pgops_admin'),
('CIS-5.7', '5.7', 'automated', 'authentication', 'medium', 'Authentication has a timeout (≤ 60 s) and a failure delay', 'authentication_timeout = 60s; shared_preload_libraries = ''auth_delay'' with auth_delay.milliseconds (or credcheck.auth_delay_ms).', 'pgdsat 2.0 5.7 (pgdsat)', 'pg_read_all_settings'),
('CIS-5.8', '5.8', 'automated', 'tls', 'high', 'Clients connect over SSL (hostssl/hostgssenc, host rejected)', 'Use hostssl (or hostgssenc) lines and end with hostnossl all all all reject.', 'pgdsat 2.0 5.8 (pgdsat)', 'superuser or pgops_admin'),
('CIS-5.9', '5.9', 'automated', 'network', 'high', 'pg_hba.conf address ranges are not too large', 'List the client subnets (IPv4 /16 or narrower, IPv6 /64 or narrower), not 0.0.0.0/0.', 'pgdsat 2.0 5.9 (pgdsat)', 'superuser or pgops_admin'),
('CIS-5.10', '5.10', 'automated', 'authentication', 'low', 'pg_hba.conf names the databases and users (not all)', 'Name the database and user (or +group) on each host line.', 'pgdsat 2.0 5.10 (pgdsat)', 'superuser or pgops_admin'),
('CIS-5.11', '5.11', 'automated', 'authentication', 'high', 'Superusers cannot connect from other hosts', 'Let superusers in through local peer lines only; give remote DBAs predefined roles.', 'pgdsat 2.0 5.11 (pgdsat)', 'superuser or pgops_admin'),
('CIS-5.12', '5.12', 'automated', 'passwords', 'high', 'password_encryption is scram-sha-256', 'password_encryption = ''scram-sha-256''; set the passwords again.', 'pgdsat 2.0 5.12 (pgdsat)', 'any role'),
('CIS-6.1', '6.1', 'manual', 'config', 'info', 'Attack vectors and runtime parameters are understood (read the benchmark: nothing to set)', 'Nothing to set: 6.2–6.11 are the settings.', 'CIS PG17 6.1 (Manual)', 'any role'),
('CIS-6.2', '6.2', 'automated', 'config', 'high', 'Backend parameters are safe (no system-index bypass, JIT debugging or post-auth delay; connections logged)', 'ignore_system_indexes, jit_debugging_support, jit_profiling_support = off; post_auth_delay = 0; log_connections, log_disconnections = on.', 'CIS PG17 6.2', 'pg_read_all_settings'),
('CIS-6.3', '6.3', 'manual', 'config', 'low', 'Postmaster parameters are configured as intended', 'Review the postmaster settings that differ from the defaults.', 'CIS PG17 6.3 (Manual)', 'pg_read_all_settings'),
('CIS-6.4', '6.4', 'manual', 'config', 'low', 'SIGHUP parameters are configured as intended', 'Review the sighup settings that differ from the defaults.', 'CIS PG17 6.4 (Manual)', 'pg_read_all_settings'),
('CIS-6.5', '6.5', 'manual', 'config', 'low', 'Superuser parameters are configured as intended', 'Review the superuser settings that differ from the defaults.', 'CIS PG17 6.5 (Manual)', 'pg_read_all_settings'),
('CIS-6.6', '6.6', 'manual', 'config', 'low', 'User parameters are configured as intended', 'Review the user settings that differ from the defaults (and per-database and per-role settings).', 'CIS PG17 6.6 (Manual)', 'pg_read_all_settings'),
('CIS-6.7', '6.7', 'automated', 'tls', 'medium', 'FIPS 140 cryptography is enabled (the kernel''s FIPS mode)', 'Enable the system''s FIPS mode (fips-mode-setup --enable on RHEL; a FIPS-validated OpenSSL provider).', 'CIS PG17 6.7', 'superuser or pgops_admin'),
('CIS-6.8', '6.8', 'automated', 'tls', 'high', 'TLS is enabled and configured (ssl on, TLS 1.2 or newer, hostssl lines)', 'ssl = on with a CA-signed certificate, ssl_min_protocol_version = ''TLSv1.2'' (or 1.3), hostssl lines in pg_hba.conf.', 'CIS PG17 6.8', 'superuser or pgops_admin'),
('CIS-6.9', '6.9', 'automated', 'config', 'low', 'A cryptographic extension is available (pgcrypto or pgsodium)', 'Install the contrib package (pgcrypto) or pgsodium.', 'CIS PG17 6.9', 'any role'),
('CIS-6.10', '6.10', 'automated', 'tls', 'medium', 'Only forward-secret AEAD cipher suites are allowed', 'ssl_ciphers = ''ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256'' (TLS 1.3 suites are always forward-secret).', 'CIS PG17 6.10', 'pg_read_all_settings'),
('CIS-6.11', '6.11', 'automated', 'config', 'low', 'A data anonymization extension is loaded (anon or pg_anonymize)', 'session_preload_libraries = ''anon'' (PostgreSQL Anonymizer) where data is shared with non-production.', 'pgdsat 2.0 6.11 (pgdsat)', 'pg_read_all_settings'),
('CIS-7.1', '7.1', 'automated', 'replication', 'medium', 'A replication-only role (REPLICATION, not superuser) exists for streaming', 'CREATE ROLE replicator LOGIN REPLICATION; use it in primary_conninfo.', 'CIS PG17 7.1', 'any role'),
('CIS-7.2', '7.2', 'automated', 'replication', 'low', 'Replication commands are logged', 'log_replication_commands = on.', 'CIS PG17 7.2', 'pg_read_all_settings'),
('CIS-7.3', '7.3', 'host', 'backups', 'high', 'Base backups are configured and work', 'Check the backup tool''s last good backup (pgbackrest info, barman check) and restore one regularly.', 'CIS PG17 7.3', 'the host'),
('CIS-7.4', '7.4', 'automated', 'backups', 'high', 'WAL archiving is configured (archive_mode and a command or library)', 'archive_mode = on and archive_command (or archive_library) set; see BAK-ARCHIVE-FAILING for whether it works.', 'CIS PG17 7.4', 'pg_read_all_settings'),
('CIS-7.5', '7.5', 'automated', 'replication', 'high', 'A standby connects to its primary over TLS', 'primary_conninfo with sslmode=verify-full (or require / verify-ca).', 'CIS PG17 7.5', 'pg_read_all_settings'),
('CIS-8.1', '8.1', 'automated', 'filesystem', 'low', 'WAL, logs and temporary files live outside the data directory', 'Relocate pg_wal (initdb --waldir), log_directory and temp_tablespaces outside the data directory.', 'CIS PG17 8.1', 'superuser or pgops_admin'),
('CIS-8.2', '8.2', 'host', 'backups', 'medium', 'pgBackRest is installed and has a stanza', 'Install pgBackRest, create a stanza, check pgbackrest info.', 'CIS PG17 8.2', 'the host'),
('CIS-8.3', '8.3', 'manual', 'config', 'low', 'Miscellaneous settings (preload libraries, library path, socket directories, pid file) are as intended', 'Review the values shown.', 'CIS PG17 8.3 (Manual)', 'pg_read_all_settings'),
-- Beyond CIS: what pgops learned the hard way (a superuser's session in a tenant's database).
('LOOKALIKE-FUNC', NULL, 'automated', 'search_path', 'high', 'Functions and operators owned by non-superusers named like pg_catalog''s, or like a superuser''s in another schema (this database): the look-alike attack', 'Drop or rename them; in superuser sessions call pg_catalog.-qualified names and pin search_path = pg_catalog, pg_temp.', 'pgops (a tenant''s look-alike runs in a superuser''s unqualified call)', 'any role'),
('SEARCHPATH-SETTING', NULL, 'automated', 'search_path', 'high', 'Schemas non-superusers can write (or create) in the search_path a superuser''s session gets here: the server''s (medium), this database''s or a superuser role''s setting (high); "$user" is each superuser''s own schema', 'ALTER ROLE <superuser> SET search_path = pg_catalog, pg_temp (and qualify other names), or make the schema a superuser''s; RESET database settings that list schemas others write.', 'pgops (per-database settings reach every session, superusers'' too)', 'any role'),
('SECDEF-SEARCHPATH', NULL, 'automated', 'search_path', 'high', 'SECURITY DEFINER functions without a pinned search_path of schemas only superusers write, pg_temp last (this database)', 'ALTER FUNCTION … SET search_path = pg_catalog, pg_temp (pg_temp last, no schema others can write).', 'pgops (PostgreSQL docs: Writing SECURITY DEFINER Functions Safely)', 'any role'),
('EXT-TRUSTED', NULL, 'automated', 'extensions', 'medium', 'Trusted extensions outside the allow-list that any database owner can install (their scripts run as superuser)', 'Remove the package, or allow it in pgops.security_config trusted_extensions after reviewing its install script.', 'pgops (CREATE EXTENSION of a trusted extension by a database owner)', 'any role');

-- Why a schema is open to non-superusers (NULL: only superusers can write it): its owner is not a
-- superuser (pg_database_owner counts as the database's owner), PUBLIC or a non-superuser role may
-- CREATE in it, or it does not exist and the database's owner, not a superuser, may create it.
CREATE FUNCTION pgops._schema_open(nsp text) RETURNS text LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
SELECT CASE
    WHEN n.oid IS NULL THEN
        CASE WHEN NOT dbo.rolsuper THEN format('absent: %s, the database''s owner, may create it', dbo.rolname) END
    WHEN NOT CASE WHEN o.rolname = 'pg_database_owner' THEN dbo.rolsuper ELSE o.rolsuper END THEN
        format('owned by %s', CASE WHEN o.rolname = 'pg_database_owner' THEN dbo.rolname ELSE o.rolname END)
    WHEN has_schema_privilege('public', n.oid, 'CREATE') THEN 'PUBLIC may create in it'
    ELSE (SELECT format('%s may create in it', string_agg(CASE WHEN g.rolname = 'pg_database_owner' THEN dbo.rolname ELSE g.rolname END,
                                                          ', ' ORDER BY g.rolname))
            FROM aclexplode(n.nspacl) a JOIN pg_roles g ON g.oid = a.grantee
           WHERE a.privilege_type = 'CREATE'
             AND NOT CASE WHEN g.rolname = 'pg_database_owner' THEN dbo.rolsuper ELSE g.rolsuper END HAVING count(*) > 0)
    END
FROM (SELECT r.rolname, r.rolsuper FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = current_database()) dbo
LEFT JOIN pg_namespace n ON n.nspname = nsp
LEFT JOIN pg_roles o ON o.oid = n.nspowner
$$;

-- The CIS controls. One row per offending object (fail), else one row per control: pass, n/a
-- (host-only, or does not apply here, saying why), manual (the facts to review), unknown (the
-- caller may not look). Reads what pgops._security_audit() reads, with the same privileges.
CREATE FUNCTION pgops._cis_audit()
RETURNS TABLE (check_id text, status text, object text, detail text, severity text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    priv jsonb;
    f jsonb;
    s jsonb;                 -- every setting the caller may read: name -> setting
    why_priv text := 'needs superuser or pgops_admin (reads pg_hba_file_rules and the server''s files)';
    why_settings text := 'needs pg_read_all_settings (the setting is hidden)';
    hba jsonb;
    collector boolean;
    syslog boolean;
    data_dir text;
    supers text[];
    major int := current_setting('server_version_num')::int / 10000;
    minor int := current_setting('server_version_num')::int % 100;
    rel jsonb;
    r record;
    n int;
    v text;
    x text[];
BEGIN
    IF has_function_privilege('pgops._audit_privileged()', 'EXECUTE') THEN
        priv := pgops._audit_privileged();
        f := priv -> 'files';
        hba := priv -> 'hba';
    END IF;
    -- pgops pins some settings in its own functions (debug_print_*, row_security…): for those,
    -- what the server is configured with is the value a RESET would give.
    SELECT jsonb_object_agg(name, CASE WHEN name = ANY (pinned) THEN reset_val ELSE setting END) INTO s
      FROM pg_settings,
           (SELECT coalesce(array_agg(lower(split_part(c, '=', 1))), '{}') AS pinned
              FROM pg_proc p, unnest(p.proconfig) c WHERE p.oid = 'pgops._cis_audit()'::regprocedure) pf;
    collector := s ->> 'logging_collector' = 'on';
    syslog := (s ->> 'log_destination') ~ '(^|,)\s*syslog\s*($|,)';
    data_dir := s ->> 'data_directory';
    SELECT coalesce(array_agg(rolname::text ORDER BY rolname), '{}') INTO supers FROM pg_roles WHERE rolsuper;

    -- ------------------------------------------------------------------------- host-only controls
    FOR check_id, detail IN VALUES
        ('CIS-1.1', 'on the host: list the package repositories (apt-cache policy, dnf repolist) and check each is authorized'),
        ('CIS-1.2', 'on the host: list the installed postgresql* packages and remove the unused ones'),
        ('CIS-1.3', 'on the host: systemctl is-enabled postgresql@NN-main (disabled is right when Patroni starts PostgreSQL)'),
        ('CIS-1.4.5', 'on the host: lsblk -f — the data directory''s device should be encrypted (crypto_LUKS)'),
        ('CIS-1.6', 'on the host: grep PGPASSWORD in /home/*/.*rc, /home/*/.*profile, /root/.*rc, /etc/environment, /etc/profile*'),
        ('CIS-2.1', 'on the host: umask in the postgres account''s shell is 0077 (the server itself creates files with data_directory_mode)'),
        ('CIS-2.3', 'on the host: each account''s ~/.psql_history is a link to /dev/null (or PSQL_HISTORY=/dev/null)'),
        ('CIS-2.4', 'on the host: no password= in any .pg_service.conf or pg_service.conf'),
        ('CIS-4.1', 'on the host: the postgres account''s password is locked (passwd -S postgres shows L)'),
        ('CIS-4.2', 'on the host: review /etc/sudoers and /etc/sudoers.d for who may become postgres'),
        ('CIS-5.1', 'on the host (as root): ps -few shows no postgresql://user:password@ connection string'),
        ('CIS-7.3', 'on the host: the backup tool''s last good base backup (pgbackrest info, barman check), and a tested restore'),
        ('CIS-8.2', 'on the host: pgbackrest info lists a stanza for this cluster')
    LOOP
        status := 'n/a'; object := NULL; severity := NULL;
        RETURN NEXT;
    END LOOP;
    -- 1.7: the host's processes need root; the server's own environment it can read.
    check_id := 'CIS-1.7'; object := NULL; severity := NULL;
    IF f IS NULL THEN
        status := 'n/a'; detail := 'on the host (as root): grep -l PGPASSWORD /proc/*/environ';
    ELSIF (f ->> 'env_pgpassword')::boolean THEN
        status := 'fail'; object := 'the server''s environment'; detail := 'PGPASSWORD is set in the environment the server was started with';
    ELSE
        status := 'n/a'; detail := 'the server''s own environment has no PGPASSWORD; other processes: as root, grep -l PGPASSWORD /proc/*/environ';
    END IF;
    RETURN NEXT;

    -- ------------------------------------------------------------------------- 1 installation
    check_id := 'CIS-1.1.1'; object := 'version()'; severity := NULL; v := version();
    IF v ~* 'pgdg' THEN
        status := 'pass'; detail := v;
    ELSIF v ~ '\((Debian|Ubuntu) [^)]*\)' THEN
        status := 'fail'; detail := 'a distribution''s own package, not PGDG''s: ' || v;
    ELSE
        status := 'n/a'; detail := 'the version string names no package (a source or RPM build): check on the host with rpm -qi / dpkg -l; ' || v;
    END IF;
    RETURN NEXT;

    IF f IS NULL THEN
        RETURN QUERY SELECT c, 'unknown', NULL::text, why_priv, NULL::text
            FROM unnest(ARRAY['CIS-1.4.1', 'CIS-1.4.2', 'CIS-1.4.4', 'CIS-2.2', 'CIS-2.5', 'CIS-2.7', 'CIS-2.8',
                              'CIS-5.3', 'CIS-5.4', 'CIS-5.6', 'CIS-5.8', 'CIS-5.9', 'CIS-5.10', 'CIS-5.11',
                              'CIS-6.7', 'CIS-6.8', 'CIS-8.1']) c;
    ELSE
        check_id := 'CIS-1.4.1'; object := data_dir;
        status := CASE WHEN (f ->> 'base_dir')::boolean AND f ->> 'pg_version' IS NOT NULL THEN 'pass' ELSE 'fail' END;
        detail := CASE WHEN status = 'pass' THEN 'PG_VERSION and base/ are there'
                       ELSE concat_ws('; ', CASE WHEN NOT (f ->> 'base_dir')::boolean THEN 'no base/ directory' END, f ->> 'pg_version_error') END;
        RETURN NEXT;
        check_id := 'CIS-1.4.2'; object := data_dir || '/PG_VERSION';
        status := CASE WHEN f ->> 'pg_version' = major::text THEN 'pass' ELSE 'fail' END;
        detail := format('PG_VERSION %s, server %s', coalesce(f ->> 'pg_version', f ->> 'pg_version_error'), major);
        RETURN NEXT;
        -- 1.4.4: pg_wal on another device, temporary files in a tablespace on another device.
        check_id := 'CIS-1.4.4'; n := 0;
        IF (f #>> '{wal,same_device}')::boolean IS NOT FALSE THEN
            status := 'fail'; object := 'pg_wal'; n := n + 1;
            detail := format('pg_wal (%s) is on the data directory''s file system', f #>> '{wal,path}');
            RETURN NEXT;
        END IF;
        x := pgops._search_path_schemas(coalesce(s ->> 'temp_tablespaces', ''));
        IF cardinality(x) = 0 THEN
            status := 'fail'; object := 'temp_tablespaces'; n := n + 1;
            detail := 'temp_tablespaces is empty: temporary files go to the data directory';
            RETURN NEXT;
        ELSE
            FOR r IN SELECT t.spcname::text AS name, l FROM unnest(x) AS u(name)
                     LEFT JOIN pg_tablespace t ON t.spcname = u.name
                     LEFT JOIN LATERAL (SELECT e FROM jsonb_array_elements(f -> 'tablespaces') e
                                        WHERE e ->> 'name' = 'pg_tblspc/' || t.oid) j(l) ON true
            LOOP
                IF r.l IS NULL OR (r.l ->> 'same_device')::boolean IS NOT FALSE THEN
                    status := 'fail'; object := 'temp_tablespaces: ' || coalesce(r.name, '?'); n := n + 1;
                    detail := CASE WHEN r.name IN ('pg_default', 'pg_global') OR r.l IS NULL THEN 'in the data directory'
                                   ELSE format('%s is on the data directory''s file system', r.l ->> 'path') END;
                    RETURN NEXT;
                END IF;
            END LOOP;
        END IF;
        IF n = 0 THEN
            status := 'pass'; object := NULL;
            detail := format('pg_wal is %s, temporary files in %s: other file systems', f #>> '{wal,path}', s ->> 'temp_tablespaces');
            RETURN NEXT;
        END IF;
    END IF;

    check_id := 'CIS-1.4.3'; object := 'data_checksums';
    status := CASE WHEN NOT s ? 'data_checksums' THEN 'unknown' WHEN s ->> 'data_checksums' = 'on' THEN 'pass' ELSE 'fail' END;
    detail := coalesce('data_checksums = ' || (s ->> 'data_checksums'), why_settings);
    RETURN NEXT;

    -- 1.5: the list of releases (pgops.security_settings pg_releases) says how old it is.
    check_id := 'CIS-1.5'; object := current_setting('server_version');
    SELECT value INTO rel FROM pgops.security_settings WHERE name = 'pg_releases';
    v := format('the release list is of %s (%s days old; newer releases may exist: update pgops.security_config pg_releases)',
                rel ->> 'as_of', current_date - (rel ->> 'as_of')::date);
    IF rel #> ARRAY['releases', major::text] IS NULL THEN
        status := 'fail'; detail := format('PostgreSQL %s is not on the list of supported versions; %s', major, v);
    ELSIF (rel #>> ARRAY['releases', major::text, 'eol'])::date <= current_date THEN
        status := 'fail'; detail := format('PostgreSQL %s reached its end of life on %s; %s', major, rel #>> ARRAY['releases', major::text, 'eol'], v);
    ELSIF minor < split_part(rel #>> ARRAY['releases', major::text, 'latest'], '.', 2)::int THEN
        status := 'fail'; detail := format('%s.%s is older than %s; %s', major, minor, rel #>> ARRAY['releases', major::text, 'latest'], v);
    ELSE
        status := 'pass'; detail := format('%s.%s is the latest known minor release of %s (supported until %s); %s',
                                           major, minor, major, rel #>> ARRAY['releases', major::text, 'eol'], v);
    END IF;
    RETURN NEXT;

    -- 1.8: extensions installed here that no object outside them depends on.
    check_id := 'CIS-1.8'; object := current_database(); status := 'manual';
    SELECT string_agg(format('%s %s%s', e.extname, e.extversion,
                             CASE WHEN EXISTS (SELECT FROM pg_depend d
                                               JOIN pg_depend m ON m.refclassid = 'pg_extension'::regclass AND m.refobjid = e.oid
                                                               AND m.deptype = 'e' AND d.refclassid = m.classid AND d.refobjid = m.objid
                                               WHERE d.deptype = 'n'
                                                 AND d.classid IN ('pg_class'::regclass, 'pg_rewrite'::regclass, 'pg_attrdef'::regclass,
                                                                   'pg_constraint'::regclass, 'pg_trigger'::regclass, 'pg_proc'::regclass,
                                                                   'pg_type'::regclass, 'pg_foreign_server'::regclass, 'pg_policy'::regclass)
                                                 AND NOT EXISTS (SELECT FROM pg_depend o WHERE o.classid = d.classid AND o.objid = d.objid AND o.deptype = 'e'))
                                  THEN '' ELSE ' (nothing depends on it)' END), ', ' ORDER BY e.extname)
      INTO v FROM pg_extension e WHERE e.extname NOT IN ('plpgsql', 'pgops');
    detail := coalesce('review the extensions installed in this database: ' || v, 'no extension installed in this database besides plpgsql and pgops');
    IF v IS NULL THEN status := 'pass'; END IF;
    RETURN NEXT;

    -- 1.9: pg_tablespace_location is for anyone; the data directory needs pg_read_all_settings.
    check_id := 'CIS-1.9';
    IF data_dir IS NULL THEN
        status := 'unknown'; object := NULL; detail := why_settings; RETURN NEXT;
    ELSE
        n := 0;
        FOR r IN SELECT spcname::text AS name, pg_tablespace_location(oid) AS loc FROM pg_tablespace
                 WHERE pg_tablespace_location(oid) <> '' ORDER BY spcname LOOP
            IF r.loc = data_dir OR r.loc LIKE data_dir || '/%'
               OR EXISTS (SELECT FROM jsonb_array_elements(f -> 'tablespaces') e
                          WHERE e ->> 'name' = 'pg_tblspc/' || (SELECT oid FROM pg_tablespace WHERE spcname = r.name) AND (e ->> 'inside_data')::boolean) THEN
                status := 'fail'; object := r.name; detail := format('located at %s, inside the data directory', r.loc); n := n + 1;
                RETURN NEXT;
            END IF;
        END LOOP;
        IF n = 0 AND f IS NULL AND EXISTS (SELECT FROM pg_tablespace WHERE pg_tablespace_location(oid) <> '') THEN
            -- a location may be a link into the data directory: following it needs the files
            status := 'unknown'; object := NULL; detail := why_priv; RETURN NEXT;
        ELSIF n = 0 THEN
            status := 'pass'; object := NULL; detail := 'no tablespace inside the data directory'; RETURN NEXT;
        END IF;
    END IF;

    -- ------------------------------------------------------------------------- 2 files
    IF f IS NOT NULL THEN
        check_id := 'CIS-2.2'; object := f #>> '{extension_dir,path}';
        status := CASE WHEN f -> 'extension_dir' IS NULL OR f #>> '{extension_dir,error}' IS NOT NULL THEN 'unknown'
                       WHEN (f #>> '{extension_dir,ok}')::boolean THEN 'pass' ELSE 'fail' END;
        detail := coalesce(f #>> '{extension_dir,error}',
                           format('mode %s, owner uid %s%s', f #>> '{extension_dir,mode}', f #>> '{extension_dir,owner_uid}',
                                  CASE WHEN status = 'fail' THEN ': whoever may write here can add an extension a database owner then installs as superuser' ELSE '' END));
        RETURN NEXT;
        check_id := 'CIS-2.5'; object := f #>> '{hba_file,path}';
        status := CASE WHEN f #>> '{hba_file,error}' IS NOT NULL THEN 'unknown' WHEN (f #>> '{hba_file,ok}')::boolean THEN 'pass' ELSE 'fail' END;
        detail := coalesce(f #>> '{hba_file,error}', format('mode %s, owner uid %s (server uid %s)', f #>> '{hba_file,mode}', f #>> '{hba_file,owner_uid}', f ->> 'server_uid'));
        RETURN NEXT;
        check_id := 'CIS-2.7'; object := f #>> '{data_directory,path}';
        status := CASE WHEN f #>> '{data_directory,error}' IS NOT NULL THEN 'unknown'
                       WHEN (f #>> '{data_directory,mode}') IN ('0700', '2700') THEN 'pass' ELSE 'fail' END;
        detail := coalesce(f #>> '{data_directory,error}', format('mode %s (the benchmark wants 0700)', f #>> '{data_directory,mode}'));
        RETURN NEXT;
        check_id := 'CIS-2.8'; object := data_dir;
        IF f #>> '{data_entries,error}' IS NOT NULL THEN
            status := 'unknown'; detail := f #>> '{data_entries,error}';
        ELSIF jsonb_array_length(f #> '{data_entries,unexpected}') = 0 AND jsonb_array_length(f #> '{data_entries,links}') = 0 THEN
            status := 'pass'; detail := 'only what PostgreSQL creates, no symbolic link';
        ELSE
            status := 'manual';
            detail := concat_ws('; ',
                'review: ' || nullif((SELECT string_agg(e, ', ') FROM jsonb_array_elements_text(f #> '{data_entries,unexpected}') e), '') || ' (not PostgreSQL''s)',
                'symbolic links: ' || nullif((SELECT string_agg(e, ', ') FROM jsonb_array_elements_text(f #> '{data_entries,links}') e), ''));
        END IF;
        RETURN NEXT;
    END IF;
    -- Modes show in octal ('0777'): the last digit is for others.
    check_id := 'CIS-2.6'; object := 'unix_socket_permissions';
    status := CASE WHEN NOT s ? 'unix_socket_permissions' THEN 'unknown'
                   WHEN right(s ->> 'unix_socket_permissions', 1)::int & 6 <> 0 THEN 'fail' ELSE 'pass' END;
    detail := CASE WHEN status = 'unknown' THEN why_settings
                   ELSE format('unix_socket_permissions = %s%s', s ->> 'unix_socket_permissions',
                               CASE WHEN status = 'fail' THEN ': any local user may connect to the socket' ELSE '' END) END;
    RETURN NEXT;

    -- ------------------------------------------------------------------------- 3 logging
    check_id := 'CIS-3.1.1'; object := NULL; status := 'manual'; detail := 'informational: the rationale for 3.1.2–3.1.27'; RETURN NEXT;
    check_id := 'CIS-3.1.2'; object := 'log_destination';
    status := CASE WHEN NOT s ? 'log_destination' THEN 'unknown' WHEN s ->> 'log_destination' <> '' THEN 'pass' ELSE 'fail' END;
    detail := format('log_destination = %s', s ->> 'log_destination'); RETURN NEXT;
    check_id := 'CIS-3.1.3'; object := 'logging_collector';
    status := CASE WHEN collector IS NULL THEN 'unknown' WHEN collector THEN 'pass' ELSE 'fail' END;
    detail := coalesce('logging_collector = ' || (s ->> 'logging_collector'), why_settings); RETURN NEXT;
    -- The collector's settings: n/a when it is off (pgops says so rather than pass).
    FOR check_id, v IN VALUES ('CIS-3.1.4', 'log_directory'), ('CIS-3.1.6', 'log_file_mode'), ('CIS-3.1.7', 'log_truncate_on_rotation'),
                              ('CIS-3.1.27', 'log_directory') LOOP
        object := v;
        IF NOT collector THEN
            status := 'n/a'; detail := 'logging_collector is off'; RETURN NEXT; CONTINUE;
        ELSIF s ->> v IS NULL THEN
            status := 'unknown'; detail := why_settings; RETURN NEXT; CONTINUE;
        END IF;
        IF check_id = 'CIS-3.1.4' THEN
            status := CASE WHEN s ->> v <> '' THEN 'pass' ELSE 'fail' END; detail := format('log_directory = %s', s ->> v);
        ELSIF check_id = 'CIS-3.1.6' THEN
            status := CASE WHEN right(s ->> v, 2) = '00' THEN 'pass' ELSE 'fail' END;
            detail := format('log_file_mode = %s', s ->> v);
            IF status = 'pass' AND f IS NULL THEN
                status := 'unknown'; detail := format('log_file_mode = %s; the files'' own modes: %s', s ->> v, why_priv);
            ELSIF status = 'pass' AND jsonb_array_length(coalesce(f #> '{log_files,open}', '[]')) > 0 THEN
                RETURN QUERY SELECT 'CIS-3.1.6', 'fail', e ->> 'path', format('mode %s: the group or others may read it', e ->> 'mode'), NULL::text
                  FROM jsonb_array_elements(f #> '{log_files,open}') e;
                CONTINUE;
            END IF;
        ELSIF check_id = 'CIS-3.1.7' THEN
            status := CASE WHEN s ->> v = 'on' THEN 'pass' ELSE 'fail' END; detail := format('log_truncate_on_rotation = %s', s ->> v);
        ELSIF data_dir IS NULL THEN
            status := 'unknown'; detail := why_settings;
        ELSE
            status := CASE WHEN s ->> v LIKE '/%' AND data_dir IS NOT NULL AND s ->> v <> data_dir AND s ->> v NOT LIKE data_dir || '/%'
                                AND (f IS NULL OR (f #>> '{log_dir,inside_data}')::boolean IS NOT TRUE) THEN 'pass' ELSE 'fail' END;
            detail := format('log_directory = %s%s', s ->> v, CASE WHEN status = 'fail' THEN ' (inside the data directory)' ELSE '' END);
            IF status = 'pass' AND f IS NULL THEN
                -- it may be a link into the data directory: following it needs the files
                status := 'unknown'; detail := detail || '; where it leads: ' || why_priv;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
    FOR check_id, v IN VALUES ('CIS-3.1.5', 'log_filename'), ('CIS-3.1.8', 'log_rotation_age'), ('CIS-3.1.9', 'log_rotation_size') LOOP
        object := v; status := 'manual';
        detail := format('review against your policy: %s = %s%s', v, s ->> v, CASE WHEN collector THEN '' ELSE ' (logging_collector is off)' END);
        RETURN NEXT;
    END LOOP;
    FOR check_id, v, x IN VALUES ('CIS-3.1.10', 'syslog_facility', NULL::text[]), ('CIS-3.1.13', 'syslog_ident', NULL),
                                 ('CIS-3.1.11', 'syslog_sequence_numbers', ARRAY['on']), ('CIS-3.1.12', 'syslog_split_messages', ARRAY['on']) LOOP
        object := v;
        IF NOT syslog THEN
            status := 'n/a'; detail := 'log_destination has no syslog';
        ELSIF x IS NULL THEN
            status := 'manual'; detail := format('review against your syslog configuration: %s = %s', v, s ->> v);
        ELSE
            status := CASE WHEN s ->> v = ANY (x) THEN 'pass' ELSE 'fail' END; detail := format('%s = %s', v, s ->> v);
        END IF;
        RETURN NEXT;
    END LOOP;
    -- Settings with one right value (hidden ones are unknown).
    FOR check_id, v, x IN VALUES
        ('CIS-3.1.14', 'log_min_messages', ARRAY['warning']),
        ('CIS-3.1.15', 'log_min_error_statement', ARRAY['error']),
        ('CIS-3.1.16', 'debug_print_parse', ARRAY['off']),
        ('CIS-3.1.17', 'debug_print_rewritten', ARRAY['off']),
        ('CIS-3.1.18', 'debug_print_plan', ARRAY['off']),
        ('CIS-3.1.19', 'debug_pretty_print', ARRAY['on']),
        ('CIS-3.1.21', 'log_disconnections', ARRAY['on']),
        ('CIS-3.1.22', 'log_error_verbosity', ARRAY['verbose']),
        ('CIS-3.1.23', 'log_hostname', ARRAY['off']),
        ('CIS-5.12', 'password_encryption', ARRAY['scram-sha-256']),
        ('CIS-7.2', 'log_replication_commands', ARRAY['on'])
    LOOP
        object := v;
        IF s ->> v IS NULL THEN
            status := 'unknown'; detail := why_settings;
        ELSE
            status := CASE WHEN s ->> v = ANY (x) THEN 'pass' ELSE 'fail' END;
            detail := format('%s = %s%s', v, s ->> v, CASE WHEN status = 'fail' THEN format(' (the benchmark wants %s)', array_to_string(x, ' or ')) ELSE '' END);
        END IF;
        RETURN NEXT;
    END LOOP;
    check_id := 'CIS-3.1.20'; object := 'log_connections'; v := s ->> 'log_connections';
    IF v IS NULL THEN
        status := 'unknown'; detail := why_settings;
    ELSE
        -- PostgreSQL 18 takes a list (receipt, authentication, authorization, setup_durations, all).
        status := CASE WHEN v IN ('on', 'true', 'all') OR (v ~ 'authentication' AND v ~ 'authorization') THEN 'pass' ELSE 'fail' END;
        detail := format('log_connections = %s', coalesce(nullif(v, ''), '''''')); 
    END IF;
    RETURN NEXT;
    check_id := 'CIS-3.1.24'; object := 'log_line_prefix';
    x := pgops._log_line_prefix_missing(s ->> 'log_line_prefix');
    IF NOT s ?& ARRAY['log_line_prefix', 'log_destination'] THEN
        status := 'unknown'; detail := why_settings;
    ELSIF syslog AND (s ->> 'log_destination') !~ '(stderr|csvlog|jsonlog)' THEN
        status := 'pass'; detail := 'syslog adds the time and process; ' || format('log_line_prefix = %L', s ->> 'log_line_prefix');
    ELSE
        status := CASE WHEN cardinality(x) = 0 THEN 'pass' ELSE 'fail' END;
        detail := format('log_line_prefix = %L%s', s ->> 'log_line_prefix', CASE WHEN status = 'fail' THEN '; missing ' || array_to_string(x, ', ') ELSE '' END);
    END IF;
    RETURN NEXT;
    check_id := 'CIS-3.1.25'; object := 'log_statement';
    IF s ->> 'log_statement' IS NULL THEN status := 'unknown'; detail := why_settings;
    ELSE
        status := CASE WHEN s ->> 'log_statement' IN ('ddl', 'mod', 'all') THEN 'pass' ELSE 'fail' END;
        detail := format('log_statement = %s', s ->> 'log_statement');
    END IF;
    RETURN NEXT;
    check_id := 'CIS-3.1.26'; object := 'log_timezone';
    status := CASE WHEN NOT s ? 'log_timezone' THEN 'unknown' WHEN pgops._is_utc_zone(s ->> 'log_timezone') THEN 'pass' ELSE 'fail' END;
    detail := coalesce('log_timezone = ' || (s ->> 'log_timezone'), why_settings); RETURN NEXT;
    check_id := 'CIS-3.2'; object := 'shared_preload_libraries';
    IF s ->> 'shared_preload_libraries' IS NULL THEN status := 'unknown'; detail := why_settings;
    ELSIF 'pgaudit' <> ALL (pgops._search_path_schemas(s ->> 'shared_preload_libraries')) THEN
        status := 'fail'; detail := 'pgaudit is not in shared_preload_libraries';
    ELSE
        v := current_setting('pgaudit.log', true);
        status := CASE WHEN v ~* '(^|,)\s*(all|ddl)' AND v ~* '(^|,)\s*(all|write)' AND v !~* '-\s*(ddl|write|all)' THEN 'pass' ELSE 'fail' END;
        object := 'pgaudit.log'; detail := format('pgaudit.log = %s%s', coalesce(v, '(not set)'), CASE WHEN status = 'fail' THEN ' (the benchmark wants at least ddl and write)' ELSE '' END);
    END IF;
    RETURN NEXT;

    -- ------------------------------------------------------------------------- 4 access
    check_id := 'CIS-4.3'; n := 0;
    FOR r IN SELECT rolname::text AS name FROM pg_roles WHERE rolsuper AND oid <> 10 ORDER BY rolname LOOP
        status := 'fail'; object := r.name; detail := format('a superuser besides %s, the bootstrap superuser', (SELECT rolname FROM pg_roles WHERE oid = 10)); n := n + 1;
        RETURN NEXT;
    END LOOP;
    IF n = 0 THEN status := 'pass'; object := NULL; detail := format('one superuser: %s', (SELECT rolname FROM pg_roles WHERE oid = 10)); RETURN NEXT; END IF;
    check_id := 'CIS-4.4'; object := NULL; status := 'manual';
    SELECT count(*), string_agg(rolname || CASE WHEN rolvaliduntil IS NOT NULL THEN format(' (valid until %s)', rolvaliduntil::date) ELSE '' END, ', ' ORDER BY rolname)
      INTO n, v FROM pg_roles WHERE rolcanlogin AND rolname !~ '^pg_';
    detail := format('review the %s login roles for accounts nobody uses: %s', n, v); RETURN NEXT;
    check_id := 'CIS-4.5'; n := 0;
    FOR r IN SELECT p.oid::regprocedure::text AS fn, o.rolname::text AS owner FROM pg_proc p
             JOIN pg_namespace ns ON ns.oid = p.pronamespace JOIN pg_roles o ON o.oid = p.proowner
             WHERE p.prosecdef AND o.rolsuper AND ns.nspname NOT IN ('pg_catalog', 'information_schema')
               AND has_function_privilege('public', p.oid, 'EXECUTE')
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
             ORDER BY 1 LOOP
        status := 'fail'; object := r.fn; detail := format('SECURITY DEFINER, owned by superuser %s, executable by PUBLIC', r.owner); n := n + 1;
        RETURN NEXT;
    END LOOP;
    IF n = 0 THEN status := 'pass'; object := current_database(); detail := 'no superuser-owned SECURITY DEFINER function (outside extensions) is executable by PUBLIC'; RETURN NEXT; END IF;
    check_id := 'CIS-4.6'; n := 0;
    FOR r IN SELECT c.oid::regclass::text AS rel, string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS privs
             FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace, aclexplode(c.relacl) a
             WHERE c.relkind IN ('r', 'p', 'v', 'f', 'm') AND a.grantee = 0
               AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
               AND ns.nspname NOT IN ('pg_catalog', 'information_schema')
             GROUP BY c.oid ORDER BY 1 LOOP
        status := 'fail'; object := r.rel; detail := 'PUBLIC may ' || r.privs; n := n + 1;
        RETURN NEXT;
    END LOOP;
    IF n = 0 THEN status := 'pass'; object := current_database(); detail := 'PUBLIC holds no INSERT, UPDATE, DELETE or TRUNCATE on any table'; RETURN NEXT; END IF;
    check_id := 'CIS-4.7'; n := 0;
    FOR r IN SELECT c.oid::regclass::text AS rel, count(*) AS pols FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid
             WHERE NOT c.relrowsecurity GROUP BY c.oid ORDER BY 1 LOOP
        status := 'fail'; object := r.rel; detail := format('%s polic%s, row-level security disabled', r.pols, CASE WHEN r.pols = 1 THEN 'y' ELSE 'ies' END); n := n + 1;
        RETURN NEXT;
    END LOOP;
    FOR r IN SELECT rolname::text AS name FROM pg_roles WHERE rolbypassrls AND NOT rolsuper AND rolname !~ '^pg_' ORDER BY 1 LOOP
        status := 'fail'; object := r.name; detail := 'BYPASSRLS: row-level security does not apply to this role'; n := n + 1;
        RETURN NEXT;
    END LOOP;
    IF n = 0 THEN status := 'pass'; object := current_database(); detail := 'every table with policies enforces them; no non-superuser BYPASSRLS role'; RETURN NEXT; END IF;
    check_id := 'CIS-4.8'; object := 'shared_preload_libraries';
    IF s ->> 'shared_preload_libraries' IS NULL THEN status := 'unknown'; detail := why_settings;
    ELSE
        status := CASE WHEN 'set_user' = ANY (pgops._search_path_schemas(s ->> 'shared_preload_libraries')) THEN 'pass' ELSE 'fail' END;
        detail := format('shared_preload_libraries = %s', s ->> 'shared_preload_libraries');
    END IF;
    RETURN NEXT;
    check_id := 'CIS-4.9'; object := NULL; status := 'manual';
    SELECT string_agg(format('%s: %s', g.rolname, m), '; ' ORDER BY g.rolname) INTO v
      FROM pg_roles g, LATERAL (SELECT string_agg(u.rolname, ', ' ORDER BY u.rolname) AS m FROM pg_auth_members a JOIN pg_roles u ON u.oid = a.member WHERE a.roleid = g.oid) mm
     WHERE g.rolname ~ '^pg_' AND m IS NOT NULL;
    detail := format('superusers: %s; predefined roles in use: %s — could a superuser be a member of predefined roles instead?',
                     array_to_string(supers, ', '), coalesce(v, 'none'));
    RETURN NEXT;
    check_id := 'CIS-4.10'; object := 'public';
    IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'public') THEN
        status := 'pass'; detail := 'this database has no schema public';
    ELSE
        status := CASE WHEN has_schema_privilege('public', 'public', 'CREATE') THEN 'fail' ELSE 'pass' END;
        detail := format('%s (ACL %s)', CASE WHEN status = 'fail' THEN 'PUBLIC may create objects in schema public' ELSE 'PUBLIC may not create in schema public' END,
                         (SELECT coalesce(nspacl::text, 'default') FROM pg_namespace WHERE nspname = 'public'));
    END IF;
    RETURN NEXT;

    -- ------------------------------------------------------------------------- 5 connections
    check_id := 'CIS-5.2'; object := 'listen_addresses';
    status := CASE WHEN NOT s ? 'listen_addresses' THEN 'unknown'
                   WHEN (s ->> 'listen_addresses') ~ '(^|,)\s*(\*|0\.0\.0\.0|::)\s*($|,)' THEN 'fail' ELSE 'pass' END;
    detail := coalesce('listen_addresses = ' || (s ->> 'listen_addresses'), why_settings); RETURN NEXT;
    check_id := 'CIS-5.5'; n := 0;
    FOR r IN SELECT rolname::text AS name FROM pg_roles WHERE rolcanlogin AND NOT rolsuper AND rolconnlimit = -1 AND rolname !~ '^pg_' ORDER BY 1 LOOP
        status := 'fail'; object := r.name; detail := 'a login role without CONNECTION LIMIT'; n := n + 1;
        RETURN NEXT;
    END LOOP;
    IF n = 0 THEN status := 'pass'; object := NULL; detail := 'every non-superuser login role has a connection limit'; RETURN NEXT; END IF;
    check_id := 'CIS-5.7'; object := 'authentication_timeout';
    IF s ->> 'shared_preload_libraries' IS NULL THEN status := 'unknown'; detail := why_settings;
    ELSE
        x := pgops._search_path_schemas(s ->> 'shared_preload_libraries');
        -- (pg_settings shows them without units once the library is loaded)
        v := CASE WHEN 'auth_delay' = ANY (x) AND s ->> 'auth_delay.milliseconds' ~ '^[1-9][0-9]*$'
                  THEN 'auth_delay.milliseconds = ' || (s ->> 'auth_delay.milliseconds')
                  WHEN 'credcheck' = ANY (x) AND s ->> 'credcheck.auth_delay_ms' ~ '^[1-9][0-9]*$'
                  THEN 'credcheck.auth_delay_ms = ' || (s ->> 'credcheck.auth_delay_ms') END;
        status := CASE WHEN (s ->> 'authentication_timeout')::int <= 60 AND v IS NOT NULL THEN 'pass' ELSE 'fail' END;
        detail := format('authentication_timeout = %s s%s; %s', s ->> 'authentication_timeout',
                         CASE WHEN (s ->> 'authentication_timeout')::int > 60 THEN ' (more than 60 s)' ELSE '' END,
                         coalesce(v, 'no failure delay (auth_delay or credcheck with a delay)'));
    END IF;
    RETURN NEXT;

    IF hba IS NOT NULL THEN
        -- 5.3 / 5.4: weak methods on local and on TCP lines.
        FOR check_id, v IN VALUES ('CIS-5.3', 'local'), ('CIS-5.4', 'host') LOOP
            n := 0;
            FOR r IN SELECT h.* FROM jsonb_to_recordset(hba) AS h(line int, type text, database text[], user_name text[], address text, netmask text, auth_method text, error text)
                     WHERE h.error IS NULL AND (h.type = 'local') = (v = 'local') AND h.auth_method IN ('trust', 'password', 'md5', 'ident') ORDER BY h.line LOOP
                status := 'fail'; n := n + 1;
                object := format('line %s: %s', r.line, concat_ws(' ', r.type, array_to_string(r.database, ','), array_to_string(r.user_name, ','), r.address || coalesce('/' || r.netmask, ''), r.auth_method));
                detail := CASE r.auth_method WHEN 'trust' THEN 'trust: no password or other proof' WHEN 'password' THEN 'password: sent in clear text'
                                             WHEN 'md5' THEN 'md5: replayable, and a stolen hash is as good as the password' ELSE 'ident: trusts the client''s ident server' END;
                RETURN NEXT;
            END LOOP;
            IF n = 0 THEN status := 'pass'; object := NULL; detail := format('no %s line uses trust, password, md5 or ident', v); RETURN NEXT; END IF;
        END LOOP;
        -- 5.6: only matters where passwords are used.
        check_id := 'CIS-5.6'; object := 'shared_preload_libraries';
        IF NOT EXISTS (SELECT FROM jsonb_to_recordset(hba) AS h(auth_method text, error text) WHERE h.error IS NULL AND h.auth_method IN ('md5', 'scram-sha-256', 'password')) THEN
            status := 'n/a'; detail := 'no pg_hba.conf line authenticates with a password';
        ELSE
            x := pgops._search_path_schemas(coalesce(s ->> 'shared_preload_libraries', ''));
            status := CASE WHEN x && ARRAY['passwordcheck', 'credcheck'] THEN 'pass' ELSE 'fail' END;
            detail := format('shared_preload_libraries = %s%s', s ->> 'shared_preload_libraries',
                             CASE WHEN status = 'fail' THEN ': neither passwordcheck nor credcheck (password lines exist)' ELSE '' END);
        END IF;
        RETURN NEXT;
        -- 5.8: remote lines without SSL (loopback excepted: nobody can listen there but root).
        check_id := 'CIS-5.8'; n := 0;
        FOR r IN SELECT h.* FROM jsonb_to_recordset(hba) AS h(line int, type text, database text[], user_name text[], address text, netmask text, auth_method text, error text)
                 WHERE h.error IS NULL AND h.type IN ('host', 'hostnossl', 'hostnogssenc') AND h.auth_method <> 'reject'
                   AND NOT (h.address ~ '^127\.' OR h.address = '::1' OR h.address = 'localhost') ORDER BY h.line LOOP
            status := 'fail'; n := n + 1;
            object := format('line %s: %s', r.line, concat_ws(' ', r.type, array_to_string(r.database, ','), array_to_string(r.user_name, ','), r.address || coalesce('/' || r.netmask, ''), r.auth_method));
            detail := r.type || ' admits connections without encryption';
            RETURN NEXT;
        END LOOP;
        IF n = 0 THEN status := 'pass'; object := NULL; detail := 'every remote line is hostssl or hostgssenc (or rejects)'; RETURN NEXT; END IF;
        -- 5.9: more than 2^16 IPv4 or 2^64 IPv6 addresses, or every address.
        check_id := 'CIS-5.9'; n := 0;
        FOR r IN SELECT h.*, pgops._address_bits(h.netmask) AS bits FROM jsonb_to_recordset(hba) AS h(line int, type text, database text[], user_name text[], address text, netmask text, auth_method text, error text)
                 WHERE h.error IS NULL AND h.type <> 'local' AND h.auth_method <> 'reject' ORDER BY h.line LOOP
            -- an IPv4-mapped IPv6 range (::ffff:10.0.0.0/104) is judged as the IPv4 range it is
            IF r.address = 'all' OR r.bits > (CASE WHEN r.netmask LIKE '%:%' AND r.address !~* '^::ffff:[0-9.]+$' THEN 64 ELSE 16 END) THEN
                status := 'fail'; n := n + 1;
                object := format('line %s: %s', r.line, concat_ws(' ', r.type, array_to_string(r.database, ','), array_to_string(r.user_name, ','), r.address || coalesce('/' || r.netmask, ''), r.auth_method));
                detail := CASE WHEN r.address = 'all' OR r.bits IN (32, 128) THEN 'any address' ELSE format('2^%s addresses', r.bits) END;
                RETURN NEXT;
            END IF;
        END LOOP;
        IF n = 0 THEN status := 'pass'; object := NULL; detail := 'no line admits more than a /16 (IPv4) or /64 (IPv6)'; RETURN NEXT; END IF;
        -- 5.10 / 5.11: remote lines for every database or user; for superusers.
        check_id := 'CIS-5.10'; n := 0;
        FOR r IN SELECT h.* FROM jsonb_to_recordset(hba) AS h(line int, type text, database text[], user_name text[], address text, netmask text, auth_method text, error text)
                 WHERE h.error IS NULL AND h.type <> 'local' AND h.auth_method <> 'reject' AND ('all' = ANY (h.database) OR 'all' = ANY (h.user_name)) ORDER BY h.line LOOP
            status := 'fail'; n := n + 1;
            object := format('line %s: %s', r.line, concat_ws(' ', r.type, array_to_string(r.database, ','), array_to_string(r.user_name, ','), r.address || coalesce('/' || r.netmask, ''), r.auth_method));
            detail := 'all: every ' || concat_ws(' and every ', CASE WHEN 'all' = ANY (r.database) THEN 'database' END, CASE WHEN 'all' = ANY (r.user_name) THEN 'user' END);
            RETURN NEXT;
        END LOOP;
        IF n = 0 THEN status := 'pass'; object := NULL; detail := 'every remote line names its databases and users'; RETURN NEXT; END IF;
        check_id := 'CIS-5.11'; n := 0;
        -- +group matches the group's members, not superusers as such (PostgreSQL's own rule); a
        -- group that does not exist matches nobody.
        FOR r IN SELECT h.*, ARRAY(SELECT u FROM unnest(supers) u WHERE u = ANY (h.user_name) OR 'all' = ANY (h.user_name)
                                    OR EXISTS (SELECT FROM unnest(h.user_name) g
                                               WHERE g LIKE '+%' AND (substr(g, 2) = u OR EXISTS (
                                                   WITH RECURSIVE m(roleid) AS (
                                                       SELECT a.roleid FROM pg_auth_members a JOIN pg_roles ur ON ur.oid = a.member WHERE ur.rolname = u
                                                       UNION SELECT a.roleid FROM pg_auth_members a JOIN m ON a.member = m.roleid)
                                                   SELECT FROM m JOIN pg_roles gr ON gr.oid = m.roleid WHERE gr.rolname = substr(g, 2))))) AS who
                 FROM jsonb_to_recordset(hba) AS h(line int, type text, database text[], user_name text[], address text, netmask text, auth_method text, error text)
                 WHERE h.error IS NULL AND h.type <> 'local' AND h.auth_method <> 'reject'
                   AND NOT (h.address ~ '^127\.' OR h.address = '::1' OR h.address = 'localhost') ORDER BY h.line LOOP
            CONTINUE WHEN cardinality(r.who) = 0;
            status := 'fail'; n := n + 1;
            object := format('line %s: %s', r.line, concat_ws(' ', r.type, array_to_string(r.database, ','), array_to_string(r.user_name, ','), r.address || coalesce('/' || r.netmask, ''), r.auth_method));
            detail := 'superusers who may connect from other hosts: ' || array_to_string(r.who, ', ');
            RETURN NEXT;
        END LOOP;
        IF n = 0 THEN status := 'pass'; object := NULL; detail := 'no remote line admits a superuser'; RETURN NEXT; END IF;
    END IF;

    -- ------------------------------------------------------------------------- 6 settings
    check_id := 'CIS-6.1'; object := NULL; status := 'manual'; detail := 'informational: the attack vectors behind 6.2–6.6'; RETURN NEXT;
    check_id := 'CIS-6.2'; n := 0;
    FOR object, v IN VALUES ('ignore_system_indexes', 'off'), ('jit_debugging_support', 'off'), ('jit_profiling_support', 'off'),
                            ('post_auth_delay', '0'), ('log_disconnections', 'on') LOOP
        IF s ->> object IS NULL THEN
            status := 'unknown'; detail := why_settings; n := n + 1; RETURN NEXT;
        ELSIF s ->> object <> v THEN
            status := 'fail'; detail := format('%s = %s (the benchmark wants %s)', object, s ->> object, v); n := n + 1; RETURN NEXT;
        END IF;
    END LOOP;
    object := 'log_connections'; v := s ->> 'log_connections';
    IF v IS NULL THEN status := 'unknown'; detail := why_settings; n := n + 1; RETURN NEXT;
    ELSIF NOT (v IN ('on', 'true', 'all') OR (v ~ 'authentication' AND v ~ 'authorization')) THEN
        status := 'fail'; detail := format('log_connections = %s (the benchmark wants on)', coalesce(nullif(v, ''), '''''')); n := n + 1; RETURN NEXT;
    END IF;
    IF n = 0 THEN status := 'pass'; object := NULL; detail := 'backend parameters as the benchmark wants'; RETURN NEXT; END IF;
    FOR check_id, v IN VALUES ('CIS-6.3', 'postmaster'), ('CIS-6.4', 'sighup'), ('CIS-6.5', 'superuser'), ('CIS-6.6', 'user') LOOP
        object := v; status := 'manual';
        SELECT count(*), string_agg(CASE WHEN name ~* '(command|conninfo|passphrase|password|secret|key)' OR pgops._inline_secret(setting) IS NOT NULL
                                         THEN name || ' (value not shown: it may hold a secret)' ELSE format('%s = %s', name, setting) END, ', ' ORDER BY name)
          INTO n, detail
          FROM pg_settings WHERE context = v AND source NOT IN ('default', 'override', 'client', 'session');
        detail := format('review the %s %s settings changed from their defaults: %s', n, v, coalesce(detail, 'none'));
        RETURN NEXT;
    END LOOP;
    check_id := 'CIS-6.7'; object := '/proc/sys/crypto/fips_enabled';
    IF f IS NOT NULL THEN
        status := CASE WHEN f -> 'fips' = 'null' OR f -> 'fips' IS NULL THEN 'n/a' WHEN (f ->> 'fips')::boolean THEN 'pass' ELSE 'fail' END;
        detail := CASE status WHEN 'n/a' THEN 'the kernel has no FIPS flag: check the OpenSSL provider on the host (openssl list -providers)'
                              WHEN 'pass' THEN 'the kernel runs in FIPS mode' ELSE 'fips_enabled = 0: the system is not in FIPS mode' END;
        RETURN NEXT;
        check_id := 'CIS-6.8'; n := 0; object := 'ssl';
        IF s ->> 'ssl' <> 'on' THEN status := 'fail'; detail := 'ssl = off'; n := n + 1; RETURN NEXT; END IF;
        IF coalesce(s ->> 'ssl_min_protocol_version', '') NOT IN ('TLSv1.2', 'TLSv1.3') THEN
            status := 'fail'; object := 'ssl_min_protocol_version'; detail := format('ssl_min_protocol_version = %s (TLS 1.2 or newer)', s ->> 'ssl_min_protocol_version'); n := n + 1; RETURN NEXT;
        END IF;
        IF hba IS NOT NULL AND NOT EXISTS (SELECT FROM jsonb_to_recordset(hba) AS h(type text, auth_method text, error text)
                                           WHERE h.error IS NULL AND h.type IN ('hostssl', 'hostgssenc') AND h.auth_method <> 'reject') THEN
            status := 'fail'; object := 'pg_hba.conf'; detail := 'no hostssl or hostgssenc line: nothing requires TLS'; n := n + 1; RETURN NEXT;
        END IF;
        IF n = 0 THEN status := 'pass'; object := 'ssl'; detail := format('ssl = on, %s or newer, hostssl lines', s ->> 'ssl_min_protocol_version'); RETURN NEXT; END IF;
    END IF;
    check_id := 'CIS-6.9'; object := NULL;
    SELECT string_agg(name || CASE WHEN installed_version IS NOT NULL THEN ' (installed here)' ELSE '' END, ', ' ORDER BY name) INTO v
      FROM pg_available_extensions WHERE name IN ('pgcrypto', 'pgsodium');
    status := CASE WHEN v IS NOT NULL THEN 'pass' ELSE 'fail' END;
    detail := coalesce('available: ' || v, 'neither pgcrypto nor pgsodium is available'); RETURN NEXT;
    check_id := 'CIS-6.10'; object := 'ssl_ciphers';
    IF s ->> 'ssl_ciphers' IS NULL THEN status := 'unknown'; detail := why_settings;
    ELSE
        x := pgops._weak_cipher_terms(s ->> 'ssl_ciphers');
        status := CASE WHEN cardinality(x) = 0 THEN 'pass' ELSE 'fail' END;
        detail := format('ssl_ciphers = %s%s', s ->> 'ssl_ciphers', CASE WHEN status = 'fail' THEN '; lets in more than forward-secret AEAD suites: ' || array_to_string(x, ', ') ELSE '' END);
    END IF;
    RETURN NEXT;
    check_id := 'CIS-6.11'; object := 'session_preload_libraries';
    IF s ->> 'session_preload_libraries' IS NULL THEN status := 'unknown'; detail := why_settings;
    ELSE
        status := CASE WHEN pgops._search_path_schemas(s ->> 'session_preload_libraries') && ARRAY['anon', 'pg_anonymize'] THEN 'pass' ELSE 'fail' END;
        detail := format('session_preload_libraries = %s', s ->> 'session_preload_libraries');
    END IF;
    RETURN NEXT;

    -- ------------------------------------------------------------------------- 7 replication
    check_id := 'CIS-7.1';
    SELECT string_agg(rolname, ', ' ORDER BY rolname) INTO v FROM pg_roles WHERE rolreplication AND NOT rolsuper;
    status := CASE WHEN v IS NOT NULL THEN 'pass' ELSE 'fail' END; object := coalesce(v, 'REPLICATION');
    detail := CASE WHEN v IS NOT NULL THEN 'replication roles that are not superusers: ' || v ELSE 'only superusers may replicate' END;
    RETURN NEXT;
    check_id := 'CIS-7.4'; object := 'archive_mode';
    IF s ->> 'archive_command' IS NULL THEN status := 'unknown'; detail := why_settings;
    ELSE
        status := CASE WHEN s ->> 'archive_mode' <> 'off' AND (coalesce(s ->> 'archive_command', '') NOT IN ('', '(disabled)') OR coalesce(s ->> 'archive_library', '') <> '') THEN 'pass' ELSE 'fail' END;
        detail := format('archive_mode = %s, %s', s ->> 'archive_mode',
                         CASE WHEN coalesce(s ->> 'archive_library', '') <> '' THEN 'archive_library = ' || (s ->> 'archive_library')
                              WHEN coalesce(s ->> 'archive_command', '') NOT IN ('', '(disabled)') THEN 'archive_command set' ELSE 'no archive_command or archive_library' END);
    END IF;
    RETURN NEXT;
    check_id := 'CIS-7.5'; object := 'primary_conninfo'; v := s ->> 'primary_conninfo';
    IF v IS NULL THEN status := 'unknown'; detail := why_settings;
    ELSIF v = '' THEN status := 'n/a'; detail := 'no primary_conninfo: not a streaming standby';
    ELSE
        status := CASE WHEN v ~ 'sslmode\s*=\s*''?(require|verify-ca|verify-full)' THEN 'pass' ELSE 'fail' END;
        detail := CASE WHEN status = 'pass' THEN 'the standby connects with ' || substring(v FROM 'sslmode\s*=\s*''?[a-z-]+')
                       ELSE 'primary_conninfo does not require TLS (sslmode=verify-full)' END;
    END IF;
    RETURN NEXT;

    -- ------------------------------------------------------------------------- 8 special
    IF f IS NOT NULL THEN
        check_id := 'CIS-8.1'; n := 0;
        IF (f #>> '{wal,inside_data}')::boolean IS NOT FALSE THEN
            status := 'fail'; object := 'pg_wal'; detail := format('pg_wal is %s, inside the data directory', f #>> '{wal,path}'); n := n + 1; RETURN NEXT;
        END IF;
        IF collector AND (f #>> '{log_dir,inside_data}')::boolean IS NOT FALSE THEN
            status := 'fail'; object := 'log_directory'; detail := format('the logs go to %s, inside the data directory', f #>> '{log_dir,path}'); n := n + 1; RETURN NEXT;
        END IF;
        IF coalesce(s ->> 'temp_tablespaces', '') = '' THEN
            status := 'fail'; object := 'temp_tablespaces'; detail := 'empty: temporary files go to the data directory (base/pgsql_tmp)'; n := n + 1; RETURN NEXT;
        END IF;
        IF n = 0 THEN status := 'pass'; object := NULL; detail := 'WAL, logs and temporary files are outside the data directory'; RETURN NEXT; END IF;
    END IF;
    check_id := 'CIS-8.3'; object := NULL; status := 'manual';
    SELECT string_agg(CASE WHEN pgops._inline_secret(setting) IS NOT NULL THEN name || ' (value not shown: it may hold a secret)'
                           ELSE format('%s = %s', name, coalesce(nullif(setting, ''), '''''')) END, '; ' ORDER BY name) INTO detail
      FROM pg_settings WHERE name IN ('external_pid_file', 'unix_socket_directories', 'shared_preload_libraries', 'dynamic_library_path',
                                      'local_preload_libraries', 'session_preload_libraries');
    detail := 'review: ' || detail; RETURN NEXT;

    -- ------------------------------------------------------------------------- beyond CIS
    check_id := 'LOOKALIKE-FUNC'; n := 0;
    -- A function or operator a non-superuser owns, named like one a superuser's session may mean:
    -- any in pg_catalog, or one a superuser owns in another schema with as many arguments (an
    -- extension's digest(text, text), a DBA's helper). Extension members a superuser's CREATE
    -- EXTENSION made are the superuser's own.
    FOR r IN SELECT p.oid::regprocedure::text AS obj, o.rolname::text AS owner, 'function' AS kind,
                    (SELECT c.oid::regprocedure::text FROM pg_proc c JOIN pg_roles co ON co.oid = c.proowner
                      WHERE c.proname = p.proname AND c.pronamespace <> p.pronamespace
                        AND (c.pronamespace = 'pg_catalog'::regnamespace OR (co.rolsuper AND c.pronargs = p.pronargs))
                      ORDER BY c.pronamespace <> 'pg_catalog'::regnamespace, c.oid LIMIT 1) AS shadows
             FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace JOIN pg_roles o ON o.oid = p.proowner
             WHERE NOT o.rolsuper AND ns.nspname NOT IN ('pg_catalog', 'information_schema') AND ns.nspname !~ '^pg_(temp|toast)'
             UNION ALL
             SELECT op.oid::regoperator::text, o.rolname::text, 'operator',
                    (SELECT c.oid::regoperator::text FROM pg_operator c JOIN pg_roles co ON co.oid = c.oprowner
                      WHERE c.oprname = op.oprname AND c.oprnamespace <> op.oprnamespace
                        AND (c.oprnamespace = 'pg_catalog'::regnamespace OR co.rolsuper)
                      ORDER BY c.oprnamespace <> 'pg_catalog'::regnamespace, c.oid LIMIT 1)
             FROM pg_operator op JOIN pg_namespace ns ON ns.oid = op.oprnamespace JOIN pg_roles o ON o.oid = op.oprowner
             WHERE NOT o.rolsuper AND ns.nspname NOT IN ('pg_catalog', 'information_schema') AND ns.nspname !~ '^pg_(temp|toast)'
             ORDER BY 1 LOOP
        CONTINUE WHEN r.shadows IS NULL;
        status := 'fail'; object := r.obj; n := n + 1;
        detail := format('a %s owned by %s (not a superuser) named like %s: an unqualified call in a superuser''s session may run it',
                         r.kind, r.owner, r.shadows);
        RETURN NEXT;
    END LOOP;
    IF n = 0 THEN status := 'pass'; object := current_database(); detail := 'no function or operator of a non-superuser is named like pg_catalog''s or a superuser''s'; RETURN NEXT; END IF;
    -- The search_path a superuser's session gets here: the server's, this database's (or every
    -- database's) setting, a superuser role's own; "$user" is each superuser's own schema. Any
    -- schema in it a non-superuser owns or may create in (or, absent, may create) lets them put a
    -- better match ahead of what the superuser meant. Settings of other roles reach only them.
    check_id := 'SEARCHPATH-SETTING'; n := 0;
    FOR r IN WITH paths AS (
                 SELECT 'the server''s search_path' AS scope, NULL::text AS who,
                        CASE WHEN ps.source IN ('default', 'configuration file') THEN ps.reset_val ELSE ps.boot_val END AS value, 'medium' AS sev
                   FROM pg_settings ps WHERE ps.name = 'search_path'
                 UNION ALL
                 SELECT CASE WHEN d.setdatabase = 0 THEN 'every database' ELSE 'database ' || current_database() END
                        || CASE WHEN d.setrole = 0 THEN '' ELSE ', role ' || sr.rolname END,
                        sr.rolname::text, substr(c, length('search_path=') + 1), 'high'
                   FROM pg_db_role_setting d CROSS JOIN LATERAL unnest(d.setconfig) c LEFT JOIN pg_roles sr ON sr.oid = d.setrole
                  WHERE d.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
                    AND c LIKE 'search\_path=%' AND (d.setrole = 0 OR sr.rolsuper))
             SELECT p.scope, p.value, p.sev, x.schema, pgops._schema_open(x.schema) AS why
               FROM paths p
               CROSS JOIN LATERAL (SELECT DISTINCT CASE WHEN e = '$user' THEN u ELSE e END AS schema
                                     FROM unnest(pgops._search_path_schemas(p.value)) e,
                                          unnest(CASE WHEN p.who IS NOT NULL THEN ARRAY[p.who] ELSE supers END) u
                                    WHERE e NOT IN ('pg_catalog', 'pg_temp')) x
              WHERE pgops._schema_open(x.schema) IS NOT NULL
              ORDER BY 1, 4 LOOP
        status := 'fail'; object := r.scope; severity := r.sev; n := n + 1;
        detail := format('search_path = %s: schema %s — %s; a superuser''s unqualified names can resolve there', r.value, r.schema, r.why);
        RETURN NEXT;
    END LOOP;
    severity := NULL;
    IF n = 0 THEN status := 'pass'; object := current_database(); detail := 'no schema in a superuser''s search_path here is open to non-superusers'; RETURN NEXT; END IF;
    -- SECURITY DEFINER functions: a pinned search_path of schemas only superusers write, pg_temp last.
    check_id := 'SECDEF-SEARCHPATH'; n := 0;
    FOR r IN SELECT p.oid::regprocedure::text AS obj, o.rolname::text AS owner, o.rolsuper AS su,
                    (SELECT substr(c, length('search_path=') + 1) FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%') AS sp
             FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace JOIN pg_roles o ON o.oid = p.proowner
             WHERE p.prosecdef AND ns.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1 LOOP
        x := pgops._search_path_schemas(coalesce(r.sp, ''));
        object := r.obj; severity := CASE WHEN r.su THEN 'high' ELSE 'medium' END;
        IF r.sp IS NULL THEN
            status := 'fail'; n := n + 1;
            detail := format('SECURITY DEFINER (owner %s) without SET search_path: the caller''s search_path decides what it calls', r.owner);
            RETURN NEXT;
        ELSE
            SELECT string_agg(format('%s (%s)', e, pgops._schema_open(e)), ', ') INTO v
              FROM (SELECT DISTINCT CASE WHEN e = '$user' THEN r.owner ELSE e END AS e FROM unnest(x) e WHERE e NOT IN ('pg_catalog', 'pg_temp')) y
             WHERE pgops._schema_open(e) IS NOT NULL;
            IF v IS NOT NULL THEN
                status := 'fail'; n := n + 1;
                detail := format('SECURITY DEFINER (owner %s) with search_path = %s: others can write %s', r.owner, r.sp, v);
                RETURN NEXT;
            ELSIF array_position(x, 'pg_temp') IS DISTINCT FROM cardinality(x) THEN
                status := 'fail'; severity := 'medium'; n := n + 1;
                detail := format('search_path = %s: pg_temp is not last (unlisted, it is searched first for tables)', r.sp);
                RETURN NEXT;
            END IF;
        END IF;
    END LOOP;
    severity := NULL;
    IF n = 0 THEN status := 'pass'; object := current_database(); detail := 'every SECURITY DEFINER function pins a search_path of schemas only superusers write, pg_temp last'; RETURN NEXT; END IF;
    -- Trusted extensions outside the allow-list.
    check_id := 'EXT-TRUSTED'; n := 0;
    SELECT count(*) INTO n FROM pg_database d JOIN pg_roles o ON o.oid = d.datdba WHERE NOT o.rolsuper AND d.datallowconn;
    v := format('%s database%s owned by non-superusers', n, CASE WHEN n = 1 THEN ' is' ELSE 's are' END);
    n := 0;
    FOR r IN SELECT DISTINCT e.name::text AS name FROM pg_available_extension_versions e
             WHERE e.trusted AND e.superuser
               AND e.name::text NOT IN (SELECT jsonb_array_elements_text(value) FROM pgops.security_settings WHERE name = 'trusted_extensions')
             ORDER BY 1 LOOP
        status := 'fail'; object := r.name; n := n + 1;
        detail := format('trusted: any owner of a database (or role with CREATE on one) can install it, and its script runs as superuser; %s', v);
        RETURN NEXT;
    END LOOP;
    IF n = 0 THEN status := 'pass'; object := NULL; detail := 'every trusted extension available is on the allow-list (pgops.security_config trusted_extensions)'; RETURN NEXT; END IF;
END $$;

CREATE VIEW pgops.security_audit AS
SELECT a.check_id, c.cis_id, c.category,
       CASE WHEN ignored THEN c.severity ELSE coalesce(a.severity, c.severity) END AS severity,
       CASE WHEN ignored THEN 'n/a' ELSE a.status END AS status,
       a.object,
       CASE WHEN ignored THEN 'ignored (pgops.security_config ignored_checks): ' || a.detail ELSE a.detail END AS detail,
       c.fix_hint, c.source, c.title, now() AS checked_at, c.automation
FROM (SELECT * FROM pgops._security_audit() UNION ALL SELECT * FROM pgops._cis_audit()) a
JOIN pgops.security_check c USING (check_id)
CROSS JOIN LATERAL (SELECT EXISTS (SELECT FROM pgops.security_settings sc, jsonb_array_elements_text(sc.value) e
                                   WHERE sc.name = 'ignored_checks' AND e = a.check_id) AS ignored) i;
COMMENT ON VIEW pgops.security_audit IS
    'Security checks — the CIS PostgreSQL 17 Benchmark''s controls (cis_id) and pgops'' own: one row per offending object (status fail), or one pass / manual / n/a / unknown row per check; unknown when the caller may not look, manual when the benchmark leaves the verdict to a person (the detail lists what to review), n/a for what needs the host (the detail says what to check)';

-- One row for a Grafana stat panel: checks (not rows) by outcome, failures by severity, a score.
CREATE VIEW pgops.security_score AS
WITH audit AS (SELECT * FROM pgops.security_audit),
per_check AS (
    SELECT check_id,
           CASE WHEN bool_or(audit.status = 'fail') THEN 'fail' WHEN bool_or(audit.status = 'unknown') THEN 'unknown'
                WHEN bool_or(audit.status = 'manual') THEN 'manual'
                WHEN bool_and(audit.status = 'n/a') THEN 'n/a' ELSE 'pass' END AS status,
           (array_agg(audit.severity ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low', 'info'], audit.severity))
               FILTER (WHERE audit.status = 'fail'))[1] AS worst,
           max(c.severity) AS default_severity
    FROM audit JOIN pgops.security_check c USING (check_id, category) GROUP BY check_id),
weighted AS (
    SELECT *, CASE coalesce(worst, default_severity) WHEN 'critical' THEN 10 WHEN 'high' THEN 5 WHEN 'medium' THEN 3
                                                     WHEN 'low' THEN 1 ELSE 0 END AS weight
    FROM per_check)
SELECT count(*) AS checks,
       count(*) FILTER (WHERE status = 'pass') AS passed,
       count(*) FILTER (WHERE status = 'fail') AS failed,
       count(*) FILTER (WHERE status = 'unknown') AS unknown,
       count(*) FILTER (WHERE status = 'n/a') AS not_applicable,
       count(*) FILTER (WHERE status = 'manual') AS manual,
       count(*) FILTER (WHERE status = 'fail' AND worst = 'critical') AS critical,
       count(*) FILTER (WHERE status = 'fail' AND worst = 'high') AS high,
       count(*) FILTER (WHERE status = 'fail' AND worst = 'medium') AS medium,
       count(*) FILTER (WHERE status = 'fail' AND worst = 'low') AS low,
       count(*) FILTER (WHERE status = 'fail' AND worst = 'info') AS info,
       (SELECT count(*) FROM audit WHERE status = 'fail') AS failing_objects,
       round(100.0 * sum(weight) FILTER (WHERE status = 'pass') / nullif(sum(weight) FILTER (WHERE status IN ('pass', 'fail')), 0), 1) AS score,
       now() AS checked_at
FROM weighted;
COMMENT ON VIEW pgops.security_score IS
    'pgops.security_audit in one row: checks by status, failing checks by worst severity, and a score (share of the severity-weighted checks that pass, 0-100; manual, n/a and unknown checks do not count)';

-- The score over time: a row when it changed (the launcher records it every
-- pgops.security_score_interval; an unchanged score writes nothing), the oldest beyond
-- score_history_rows deleted.
CREATE TABLE pgops.security_score_history (
    recorded_at timestamptz PRIMARY KEY,
    database    text NOT NULL,
    score       numeric,
    checks      int NOT NULL,
    passed      int NOT NULL,
    failed      int NOT NULL,
    manual      int NOT NULL,
    unknown     int NOT NULL,
    critical    int NOT NULL,
    high        int NOT NULL
);
COMMENT ON TABLE pgops.security_score_history IS
    'pgops.security_score when it changed, recorded by the launcher every pgops.security_score_interval in its database (pgops.database); bounded by pgops.security_config score_history_rows. For the dashboard''s trend panel. Not dumped: history of this server''s audit';

CREATE FUNCTION pgops._security_score_record() RETURNS boolean LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur record;
    last record;
    keep int;
BEGIN
    SELECT * INTO cur FROM pgops.security_score;
    SELECT * INTO last FROM pgops.security_score_history ORDER BY recorded_at DESC LIMIT 1;
    IF FOUND AND (last.score, last.checks, last.passed, last.failed, last.manual, last.unknown, last.critical, last.high)
                 IS NOT DISTINCT FROM (cur.score, cur.checks::int, cur.passed::int, cur.failed::int, cur.manual::int,
                                       cur.unknown::int, cur.critical::int, cur.high::int)
       AND last.database = current_database() THEN
        RETURN false;
    END IF;
    INSERT INTO pgops.security_score_history
        VALUES (clock_timestamp(), current_database(), cur.score, cur.checks, cur.passed, cur.failed, cur.manual,
                cur.unknown, cur.critical, cur.high);
    SELECT value::text::int INTO keep FROM pgops.security_settings WHERE name = 'score_history_rows';
    DELETE FROM pgops.security_score_history
     WHERE recorded_at < (SELECT recorded_at FROM pgops.security_score_history ORDER BY recorded_at DESC OFFSET keep - 1 LIMIT 1);
    RETURN true;
END $$;

-- The report: the audit as one document, grouped by CIS section (rendered in Rust: every value
-- from the server escaped for the format).
CREATE FUNCTION pgops.security_report(format text DEFAULT 'markdown') RETURNS text LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
SELECT pgops._security_report_render(jsonb_build_object(
    'instance', (SELECT i.instance FROM pgops.instance() i),
    'version', current_setting('server_version'),
    'database', current_database(),
    'checked_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"'),
    'pgops_version', (SELECT extversion FROM pg_extension WHERE extname = 'pgops'),
    'rows', (SELECT coalesce(jsonb_agg(jsonb_build_object('check_id', a.check_id, 'cis_id', a.cis_id, 'title', a.title,
                                                          'severity', a.severity, 'status', a.status, 'object', a.object,
                                                          'detail', a.detail, 'fix_hint', a.fix_hint)), '[]')
             FROM pgops.security_audit a)), format)
$$;
COMMENT ON FUNCTION pgops.security_report(text) IS
    'The security audit as a document to hand over: grouped by CIS PostgreSQL 17 Benchmark section, each section''s score, every failure''s object and fix, what to review by hand; format ''markdown'' (default) or ''html''';

REVOKE ALL ON FUNCTION pgops._audit_privileged(), pgops._audit_files(), pgops._security_audit(), pgops._cis_audit(),
    pgops._inline_secret(text), pgops._null_cipher_term(text), pgops._security_config_check(), pgops._security_score_record(),
    pgops._weak_cipher_terms(text), pgops._log_line_prefix_missing(text), pgops._address_bits(text), pgops._is_utc_zone(text),
    pgops._search_path_schemas(text), pgops._security_report_render(jsonb, text), pgops.security_report(text), pgops._schema_open(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgops._security_audit(), pgops._cis_audit(), pgops._inline_secret(text), pgops._null_cipher_term(text),
    pgops._weak_cipher_terms(text), pgops._log_line_prefix_missing(text), pgops._address_bits(text), pgops._is_utc_zone(text),
    pgops._search_path_schemas(text), pgops._security_report_render(jsonb, text), pgops.security_report(text), pgops._schema_open(text) TO pg_monitor, pgops_admin;
GRANT EXECUTE ON FUNCTION pgops._audit_privileged() TO pgops_admin;
GRANT SELECT ON pgops.security_check, pgops.security_default, pgops.security_config, pgops.security_settings,
    pgops.security_audit, pgops.security_score, pgops.security_score_history TO pg_monitor, pgops_admin;
GRANT INSERT, UPDATE, DELETE ON pgops.security_config TO pgops_admin;
-- (pgops_admin is a member of pg_monitor: sql/bootstrap.sql.)
