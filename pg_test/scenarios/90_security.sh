# Security audit: every check made to fail by one setup and to pass by another, against a real
# server; a pg_monitor role sees 'unknown' (never 'pass') where it may not look; pgops_admin sees
# everything; the score; the config table. TLS checks that need ssl = on run where the build has
# SSL (Debian's PG 15; the PG 18 wheel has none).

# st CHECK [object] — the check's status (for one object when given; distinct statuses joined by ,)
st() {
  local where="check_id = '$1'"
  [ -n "${2:-}" ] && where="$where AND object = '$2'"
  sql $C postgres "SELECT string_agg(DISTINCT status, ',') FROM pgops.security_audit WHERE $where"
}
# fails CHECK OBJECT — true when the check fails for that object
fails() { [ "$(sql $C postgres "SELECT count(*) FROM pgops.security_audit WHERE check_id = '$1' AND status = 'fail' AND object LIKE '$2'")" -ge 1 ]; }
both() { # both "description" CHECK "make it fail" "make it pass" [object pattern]
  local d=$1 id=$2 bad=$3 good=$4 obj=${5:-%}
  eval "$bad" >/dev/null 2>&1
  if fails "$id" "$obj"; then ok "$id fails: $d"; else not_ok "$id fails: $d" "$(sql $C postgres "SELECT status, object, detail FROM pgops.security_audit WHERE check_id = '$id'")"; fi
  eval "$good" >/dev/null 2>&1
  local s; s=$(st "$id")
  if [ "$s" = pass ]; then ok "$id passes once fixed"; else not_ok "$id passes once fixed" "$(sql $C postgres "SELECT status, object, detail FROM pgops.security_audit WHERE check_id = '$id'")"; fi
}

scenario_main() {
  local v=$1 C=sec d hba ip sockdir
  ip=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' | grep -v '^127\.' | head -1)
  sockdir=$(mktemp -d /tmp/pgops-sock.XXXXXX); chmod 1777 "$sockdir"
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "wal_level = replica" \
    "password_encryption = 'md5'" "log_statement = 'ddl'" "listen_addresses = '127.0.0.1${ip:+,$ip}'" || { not_ok "initdb"; return 1; }
  d=${CL_DIR[$C]}/data; hba=$d/pg_hba.conf
  cluster_conf $C "unix_socket_directories = '${CL_DIR[$C]}, $sockdir'"
  [ -n "$ip" ] && echo "host all all $ip/32 trust" | as_pg tee -a "$hba" >/dev/null
  cluster_start $C || { not_ok "server starts"; return 1; }
  sql $C postgres "CREATE EXTENSION pgops" >/dev/null || { not_ok "CREATE EXTENSION"; return 1; }
  local hba_orig; hba_orig=$(cat "$hba")

  check_eq "133 checks (38 of pgops', 91 CIS controls, 4 beyond CIS), each reported" \
    "$(sql $C postgres "SELECT count(DISTINCT check_id) || ' ' || (SELECT count(*) FROM pgops.security_check) FROM pgops.security_audit")" "133 133"
  check_eq "every category the issue names is covered" \
    "$(sql $C postgres "SELECT string_agg(DISTINCT category, ',' ORDER BY category) FROM pgops.security_check")" \
    "authentication,backups,config,credentials,extensions,filesystem,installation,logging,network,passwords,privileges,replication,rls,roles,search_path,spoofing,tls"
  check_eq "every row names its severity, fix and source" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.security_audit WHERE severity IS NULL OR fix_hint IS NULL OR source IS NULL OR status NOT IN ('pass', 'fail', 'unknown', 'n/a', 'manual')")" 0

  # --- settings read by anyone ---------------------------------------------------------------------
  check_eq "TLS-OFF fails with ssl = off" "$(st TLS-OFF)" fail
  check_eq "… and the checks that need SSL say n/a, not pass" "$(st TLS-CERT-EXPIRY),$(st TLS-KEY-PERMS),$(st TLS-NULL-CIPHER)" "n/a,n/a,n/a"
  both "password_encryption = md5" PW-ENCRYPTION "true" \
    "sql $C postgres \"ALTER SYSTEM SET password_encryption = 'scram-sha-256'\"; sql $C postgres 'SELECT pg_reload_conf()'; sleep 0.3"
  # PW-MD5-HASH: a role whose password was stored under md5 (statement logging off for it)
  both "a role with an MD5 hash" PW-MD5-HASH \
    "sql_secret $C postgres \"SET password_encryption = 'md5'; CREATE ROLE app_md5 LOGIN PASSWORD 'Md5-Secret'\"" \
    "sql_secret $C postgres \"ALTER ROLE app_md5 PASSWORD 'Scram-Secret'\"" app_md5
  check "no password reached the server log" bash -c "! grep -q -e Md5-Secret -e Scram-Secret '${CL_DIR[$C]}/server.log'"
  both "log_statement = ddl" LOG-PW-LEAK "true" \
    "sql $C postgres \"ALTER SYSTEM SET log_statement = 'none'\"; sql $C postgres 'SELECT pg_reload_conf()'; sleep 0.3"

  # --- pg_hba.conf (read from the file on disk: no reload, no lock-out) --------------------------
  both "initdb's trust lines" AUTH-TRUST "true" \
    "printf 'local all all peer\nhostssl all all 10.0.0.0/8 scram-sha-256\n' | as_pg tee '$hba'" 'line %'
  printf 'local all all peer\nhost all all 10.1.0.0/16 password\nhost all all 10.2.0.0/16 md5\nhost all all 0.0.0.0/0 scram-sha-256\nhost all all 10.3.0.0/16 no-such-method\n' | as_pg tee "$hba" >/dev/null
  check "AUTH-CLEARTEXT fails on a password line" fails AUTH-CLEARTEXT 'line 2:%password'
  check "AUTH-MD5-HBA fails on an md5 line" fails AUTH-MD5-HBA 'line 3:%md5'
  check "NET-WIDE-HBA fails on 0.0.0.0/0" fails NET-WIDE-HBA 'line 4:%0.0.0.0/0.0.0.0%'
  check "HBA-ERROR fails on a line the server cannot parse" fails HBA-ERROR 'line 5'
  printf 'local all all peer\nhost all all 10.1.0.0/16 scram-sha-256\n' | as_pg tee "$hba" >/dev/null
  check_eq "… and all four pass with scram-sha-256 on listed networks" \
    "$(st AUTH-CLEARTEXT),$(st AUTH-MD5-HBA),$(st NET-WIDE-HBA),$(st HBA-ERROR)" "pass,pass,pass,pass"
  printf '%s\n' "$hba_orig" | as_pg tee "$hba" >/dev/null
  check_eq "HBA-DRIFT is n/a before pgops wrote the file" "$(st HBA-DRIFT)" "n/a"

  # --- credentials ------------------------------------------------------------------------------
  both "a password in primary_conninfo" CRED-CONNINFO \
    "sql $C postgres \"ALTER SYSTEM SET primary_conninfo = 'host=10.0.0.1 user=replicator password=Conn-Secret'\"; sql $C postgres 'SELECT pg_reload_conf()'; sleep 0.3" \
    "sql $C postgres 'ALTER SYSTEM RESET primary_conninfo'; sql $C postgres 'SELECT pg_reload_conf()'; sleep 0.3"
  both "a secret in archive_command" CRED-CMD \
    "sql $C postgres \"ALTER SYSTEM SET archive_command = 'AWS_SECRET_ACCESS_KEY=Cmd-Secret aws s3 cp %p s3://b/%f'\"; sql $C postgres 'SELECT pg_reload_conf()'; sleep 0.3" \
    "sql $C postgres 'ALTER SYSTEM RESET archive_command'; sql $C postgres 'SELECT pg_reload_conf()'; sleep 0.3" 'archive_command%' 
  both "a subscription with a password" CRED-SUBSCRIPTION \
    "sql $C postgres \"CREATE SUBSCRIPTION sub_pw CONNECTION 'host=127.0.0.1 port=1 dbname=x password=Sub-Secret' PUBLICATION p WITH (connect = false)\"" \
    "sql $C postgres \"ALTER SUBSCRIPTION sub_pw CONNECTION 'host=127.0.0.1 port=1 dbname=x passfile=/var/lib/postgresql/.pgpass'\"" sub_pw
  both "a user mapping with a password" CRED-USERMAPPING \
    "sql $C postgres \"CREATE EXTENSION postgres_fdw; CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '10.0.0.9'); CREATE USER MAPPING FOR postgres SERVER remote OPTIONS (user 'x', password 'Um-Secret')\"" \
    "sql $C postgres 'ALTER USER MAPPING FOR postgres SERVER remote OPTIONS (DROP password)'" 'remote for postgres'
  check_eq "no secret appears in the audit's output" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.security_audit WHERE concat(object, detail) ~ '(Conn|Cmd|Sub|Um|Md5|Scram)-Secret'")" 0

  # --- a connection from another address without SSL ---------------------------------------------
  if [ -n "$ip" ]; then
    as_pg "$(psql_for "$v")" -X -q -h "$ip" -p "${CL_PORT[$C]}" -U postgres -d postgres -c "SELECT pg_sleep(4)" >/dev/null 2>&1 &
    local bg=$!
    wait_sql $C postgres "SELECT count(*) > 0 FROM pg_stat_activity WHERE client_addr = '$ip'" 3
    check "TLS-NONSSL-CONN fails for a plain TCP session from $ip" fails TLS-NONSSL-CONN "postgres@$ip%"
    wait $bg
    check_eq "TLS-NONSSL-CONN passes once it is gone" "$(st TLS-NONSSL-CONN)" pass
  else
    not_ok "TLS-NONSSL-CONN: this machine has no non-loopback IPv4 address to connect from"
  fi

  # --- roles, privileges, row-level security -----------------------------------------------------
  allow_app_admin() { sql $C postgres "INSERT INTO pgops.security_config (name, value) SELECT name, value || '[\"app_admin\"]' FROM pgops.security_settings WHERE name = 'superusers'"; }
  both "a superuser outside the allow-list (fixed by allow-listing it)" ROLE-SUPERUSERS \
    "sql $C postgres 'CREATE ROLE app_admin SUPERUSER'" allow_app_admin app_admin
  both "a database owned by a login role" ROLE-APP-OWNS-DB \
    "sql $C postgres 'CREATE ROLE app_owner LOGIN; CREATE ROLE owner_app NOLOGIN'; sql $C postgres 'CREATE DATABASE appdb OWNER app_owner'" \
    "sql $C postgres 'ALTER DATABASE appdb OWNER TO owner_app'" appdb
  check_eq "ROLE-ATTR-UNDECLARED is n/a while pgops.role is empty" "$(st ROLE-ATTR-UNDECLARED)" "n/a"
  sql $C postgres "INSERT INTO pgops.role (name, createdb) VALUES ('app_declared', true)" >/dev/null
  sql $C postgres "CREATE ROLE app_declared LOGIN CREATEDB" >/dev/null
  both "CREATEROLE on a role pgops.role does not declare" ROLE-ATTR-UNDECLARED \
    "sql $C postgres 'CREATE ROLE rogue CREATEROLE'" "sql $C postgres 'ALTER ROLE rogue NOCREATEROLE'" rogue
  both "PUBLIC may create in schema public" PRIV-PUBLIC-CREATE "sql $C postgres 'GRANT CREATE ON SCHEMA public TO PUBLIC'" \
    "sql $C postgres 'REVOKE CREATE ON SCHEMA public FROM PUBLIC'" public
  both "PUBLIC may connect (initdb's default)" PRIV-PUBLIC-CONNECT "true" \
    "sql $C postgres 'REVOKE CONNECT ON DATABASE postgres, appdb FROM PUBLIC'" postgres
  both "PUBLIC may create temporary tables (initdb's default)" PRIV-PUBLIC-TEMP "true" \
    "sql $C postgres 'REVOKE TEMPORARY ON DATABASE postgres, appdb FROM PUBLIC'" postgres
  sql $C postgres "CREATE FUNCTION public.whoami() RETURNS text SECURITY DEFINER LANGUAGE sql AS 'SELECT current_user::text'" >/dev/null
  check_eq "PRIV-SECDEF fails, high, for a PUBLIC SECURITY DEFINER function without search_path" \
    "$(sql $C postgres "SELECT status || ',' || severity FROM pgops.security_audit WHERE check_id = 'PRIV-SECDEF' AND object = 'public.whoami()'")" "fail,high"
  sql $C postgres "ALTER FUNCTION public.whoami() SET search_path = pg_catalog, pg_temp" >/dev/null
  check_eq "… medium once its search_path is fixed" \
    "$(sql $C postgres "SELECT status || ',' || severity FROM pgops.security_audit WHERE check_id = 'PRIV-SECDEF' AND object = 'public.whoami()'")" "fail,medium"
  sql $C postgres "REVOKE EXECUTE ON FUNCTION public.whoami() FROM PUBLIC" >/dev/null
  check_eq "… and passes once PUBLIC may not execute it" "$(st PRIV-SECDEF)" pass
  both "a table with a policy and RLS disabled" RLS-POLICY-INACTIVE \
    "sql $C postgres 'CREATE TABLE accounts (owner text); CREATE POLICY own ON accounts USING (owner = current_user)'" \
    "sql $C postgres 'ALTER TABLE accounts ENABLE ROW LEVEL SECURITY'" public.accounts
  both "RLS enabled without a policy" RLS-NO-POLICY \
    "sql $C postgres 'CREATE TABLE ledger (v int); ALTER TABLE ledger ENABLE ROW LEVEL SECURITY'" \
    "sql $C postgres 'CREATE POLICY all_rows ON ledger USING (true)'" public.ledger
  both "a BYPASSRLS role outside the allow-list" RLS-BYPASS-ROLES "sql $C postgres 'CREATE ROLE etl BYPASSRLS'" \
    "sql $C postgres 'ALTER ROLE etl NOBYPASSRLS'" etl

  # --- replication slots, pending restarts, config files, the data directory -------------------
  both "an unused replication slot" HA-SLOT-INACTIVE "sql $C postgres \"SELECT pg_create_physical_replication_slot('forgotten')\"" \
    "sql $C postgres \"SELECT pg_drop_replication_slot('forgotten')\"" forgotten
  both "shared_buffers changed, not restarted" CONF-PENDING \
    "sql $C postgres \"ALTER SYSTEM SET shared_buffers = '200MB'\"; sql $C postgres 'SELECT pg_reload_conf()'; sleep 0.5" \
    "sql $C postgres 'ALTER SYSTEM RESET shared_buffers'; sql $C postgres 'SELECT pg_reload_conf()'; sleep 0.5" shared_buffers
  sql $C postgres "ALTER SYSTEM SET shared_buffers = '200MB'" >/dev/null
  check_eq "a restart-only change is CONF-PENDING's, not a CONF-FILE-ERROR" "$(st CONF-FILE-ERROR)" pass
  sql $C postgres "ALTER SYSTEM RESET shared_buffers" >/dev/null
  both "a bad line in postgresql.conf" CONF-FILE-ERROR "echo \"work_mem = 'banana'\" | as_pg tee -a '$d/postgresql.conf'" \
    "as_pg sed -i '/banana/d' '$d/postgresql.conf'" '%postgresql.conf:%'
  both "the data directory opened to others" FS-DATADIR-MODE "chmod 0755 '$d'" "chmod 0700 '$d'"
  both "a world-writable socket directory" SPOOF-SOCKDIR "true" \
    "cluster_stop $C; as_pg sed -i '/^unix_socket_directories/d' '$d/postgresql.conf'; cluster_conf $C \"unix_socket_directories = '${CL_DIR[$C]}'\"; cluster_start $C" "$sockdir"

  # --- who may look -------------------------------------------------------------------------------
  sql $C postgres "CREATE ROLE aud_monitor LOGIN IN ROLE pg_monitor; CREATE ROLE aud_admin LOGIN IN ROLE pgops_admin; CREATE ROLE aud_plain LOGIN" >/dev/null
  sql $C postgres "GRANT USAGE ON SCHEMA pgops TO aud_plain; GRANT SELECT ON pgops.security_audit, pgops.security_check, pgops.security_settings TO aud_plain; GRANT EXECUTE ON FUNCTION pgops._security_audit(), pgops._inline_secret(text), pgops._null_cipher_term(text), pgops._cis_audit(), pgops._search_path_schemas(text), pgops._log_line_prefix_missing(text), pgops._is_utc_zone(text), pgops._weak_cipher_terms(text), pgops._address_bits(text), pgops._schema_open(text) TO aud_plain" >/dev/null
  local unk
  unk=$(sql $C postgres "SET ROLE aud_monitor; SELECT string_agg(check_id, ',' ORDER BY check_id) FROM pgops.security_audit WHERE status = 'unknown' AND cis_id IS NULL")
  check_eq "pg_monitor: unknown where it needs superuser or pgops_admin" "$unk" \
    "AUTH-CLEARTEXT,AUTH-MD5-HBA,AUTH-TRUST,CONF-FILE-ERROR,CRED-CMD,CRED-SUBSCRIPTION,CRED-USERMAPPING,FS-DATADIR-MODE,HBA-DRIFT,HBA-ERROR,NET-WIDE-HBA,PW-MD5-HASH,ROLE-ATTR-UNDECLARED,SPOOF-SOCKDIR,SPOOF-TCP-NON-HOSTSSL,TLS-CERT-EXPIRY,TLS-KEY-PERMS,TLS-SELF-SIGNED"
  check_eq "pg_monitor: never a pass for those" \
    "$(sql $C postgres "SET ROLE aud_monitor; SELECT count(*) FROM pgops.security_audit WHERE status = 'pass' AND check_id IN ('AUTH-TRUST', 'PW-MD5-HASH', 'TLS-KEY-PERMS', 'FS-DATADIR-MODE')")" 0
  check_eq "pg_monitor still sees what pg_read_all_settings / pg_read_all_stats show" \
    "$(sql $C postgres "SET ROLE aud_monitor; SELECT string_agg(status, ',' ORDER BY check_id) FROM pgops.security_audit WHERE check_id IN ('CRED-CONNINFO', 'TLS-NONSSL-CONN')")" "pass,pass"
  check_eq "pgops_admin (a pg_monitor member) sees everything: no unknown" \
    "$(sql $C postgres "SET ROLE aud_admin; SELECT count(*) FROM pgops.security_audit WHERE status = 'unknown'") $(sql $C postgres "SET ROLE aud_admin; SELECT status FROM pgops.security_audit WHERE check_id = 'AUTH-TRUST' LIMIT 1")" "0 fail"
  check_eq "a role without pg_read_all_settings / stats: those are unknown too" \
    "$(sql $C postgres "SET ROLE aud_plain; SELECT string_agg(status, ',' ORDER BY check_id) FROM pgops.security_audit WHERE check_id IN ('CRED-CMD', 'CRED-CONNINFO', 'TLS-NONSSL-CONN')")" "unknown,unknown,unknown"
  check_match "… saying why" "$(sql $C postgres "SET ROLE aud_plain; SELECT detail FROM pgops.security_audit WHERE check_id = 'CRED-CMD'")" "archive_mode is off"
  check_match "PUBLIC cannot read the audit" "$(sql $C postgres "CREATE ROLE aud_nobody; SET ROLE aud_nobody; SELECT count(*) FROM pgops.security_audit" 2>&1)" "permission denied"

  # --- HBA drift: pgops writes the file, someone edits it ----------------------------------------
  sql $C postgres "SELECT pgops.load_hba_rules('[{\"title\": \"dbsu local\", \"user\": \"\${dbsu}\", \"addr\": \"local\", \"auth\": \"trust\", \"order\": 100},
    {\"title\": \"apps\", \"addr\": \"10.0.0.0/8\", \"auth\": \"sha\", \"order\": 200}]')" >/dev/null
  if sql $C postgres "SELECT count(*) FROM pgops.apply_hba()" >/dev/null 2>&1; then
    check_eq "HBA-DRIFT passes right after pgops.apply_hba()" "$(st HBA-DRIFT)" pass
    echo "host all all 10.99.0.0/16 trust   # added by hand" | as_pg tee -a "$hba" >/dev/null
    check_eq "HBA-DRIFT fails after a hand edit" "$(st HBA-DRIFT)" fail
  else
    not_ok "pgops.apply_hba() for the drift check" "$(sql $C postgres "SELECT * FROM pgops.apply_hba()" 2>&1 | tail -3)"
  fi
  printf '%s\n' "$hba_orig" | as_pg tee "$hba" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null

  # --- archiving (restart with archive_mode = on) ------------------------------------------------
  check_eq "BAK-ARCHIVE-OFF fails with archive_mode = off" "$(st BAK-ARCHIVE-OFF)" fail
  local archive=${CL_DIR[$C]}/archive; as_pg mkdir -p "$archive"
  cluster_stop $C
  cluster_conf $C "archive_mode = on" "archive_command = ''"
  cluster_start $C || { not_ok "restart with archive_mode = on"; return 1; }
  check_eq "BAK-ARCHIVE-OFF passes with archive_mode = on" "$(st BAK-ARCHIVE-OFF)" pass
  sql $C postgres "INSERT INTO pgops.security_config VALUES ('archive_stale_seconds', '1')" >/dev/null
  sql $C postgres "CREATE TABLE walgen AS SELECT g FROM generate_series(1, 10000) g; SELECT pg_switch_wal()" >/dev/null
  sql $C postgres "INSERT INTO walgen SELECT 1; SELECT pg_switch_wal()" >/dev/null
  sleep 3
  if fails BAK-ARCHIVE-STALE '%'; then ok "BAK-ARCHIVE-STALE fails: WAL completed, nothing archived for longer than the threshold"
  else not_ok "BAK-ARCHIVE-STALE fails" "$(sql $C postgres "SELECT status, object, detail FROM pgops.security_audit WHERE check_id LIKE 'BAK%'; SELECT * FROM pg_stat_archiver; SELECT pg_current_wal_lsn(), pg_walfile_name(pg_current_wal_lsn())")"; fi
  sql $C postgres "ALTER SYSTEM SET archive_command = 'false'" >/dev/null; sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  if wait_sql $C postgres "SELECT failed_count > 0 FROM pg_stat_archiver" 15; then
    check "BAK-ARCHIVE-FAILING fails when archive_command fails" fails BAK-ARCHIVE-FAILING '%'
  else
    not_ok "the archiver tried and failed"
  fi
  sql $C postgres "ALTER SYSTEM SET archive_command = 'test ! -f $archive/%f && cp %p $archive/%f'" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  if wait_sql $C postgres "SELECT last_archived_time > coalesce(last_failed_time, '-infinity') FROM pg_stat_archiver" 30; then
    check_eq "BAK-ARCHIVE-FAILING and BAK-ARCHIVE-STALE pass once archiving works" "$(st BAK-ARCHIVE-FAILING),$(st BAK-ARCHIVE-STALE)" "pass,pass"
  else
    not_ok "archiving recovers" "$(sql $C postgres "SELECT * FROM pg_stat_archiver")"
  fi

  # --- TLS with a certificate (builds with SSL) ------------------------------------------------
  if ssl_build "$v"; then
    local t=${CL_DIR[$C]}/tls; as_pg mkdir -p "$t"
    as_pg openssl req -x509 -newkey rsa:2048 -nodes -days 10 -subj /CN=localhost -keyout "$t/server.key" -out "$t/server.crt" >/dev/null 2>&1
    as_pg chmod 0600 "$t/server.key"
    cluster_conf $C "ssl = on" "ssl_cert_file = '$t/server.crt'" "ssl_key_file = '$t/server.key'"
    sql $C postgres "SELECT pg_reload_conf()" >/dev/null; sleep 0.5
    check_eq "TLS-OFF passes with ssl = on" "$(st TLS-OFF)" pass
    check_eq "TLS-CERT-EXPIRY fails, high, for a certificate expiring in 10 days" \
      "$(sql $C postgres "SELECT status || ',' || severity FROM pgops.security_audit WHERE check_id = 'TLS-CERT-EXPIRY'")" "fail,high"
    check_match "… saying when" "$(sql $C postgres "SELECT detail FROM pgops.security_audit WHERE check_id = 'TLS-CERT-EXPIRY'")" '\((9\.9|10\.0) days left\)'
    check "TLS-SELF-SIGNED fails for a self-signed certificate" fails TLS-SELF-SIGNED "$t/server.crt"
    # A CA-signed certificate valid for a year replaces it.
    as_pg bash -c "cd '$t' && openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=pgops-test-ca -keyout ca.key -out ca.crt && \
      openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout new.key -out new.csr && \
      openssl x509 -req -in new.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -out server.crt && mv new.key server.key && chmod 0600 server.key" >/dev/null 2>&1
    check_eq "TLS-CERT-EXPIRY and TLS-SELF-SIGNED pass with a CA-signed certificate for a year" "$(st TLS-CERT-EXPIRY),$(st TLS-SELF-SIGNED)" "pass,pass"
    # An expired one (openssl ca can backdate; the file on disk is what the audit reads).
    as_pg bash -c "cd '$t' && cp server.crt good.crt && openssl req -new -key server.key -subj /CN=localhost -out old.csr && \
      printf '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n' > ca.cnf && \
      touch index.txt && echo 01 > serial && \
      openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in old.csr -out server.crt -startdate 20200101000000Z -enddate 20200201000000Z" >/dev/null 2>&1
    check_eq "TLS-CERT-EXPIRY fails, critical, once the certificate has expired" \
      "$(sql $C postgres "SELECT status || ',' || severity FROM pgops.security_audit WHERE check_id = 'TLS-CERT-EXPIRY'")" "fail,critical"
    as_pg cp "$t/good.crt" "$t/server.crt"
    both "the key readable by others (0644)" TLS-KEY-PERMS "chmod 0644 '$t/server.key'" "chmod 0600 '$t/server.key'" "$t/server.key"
    both "ssl_ciphers with NULL" TLS-NULL-CIPHER \
      "sql $C postgres \"ALTER SYSTEM SET ssl_ciphers = 'HIGH:NULL'\"; sql $C postgres 'SELECT pg_reload_conf()'; sleep 0.3" \
      "sql $C postgres 'ALTER SYSTEM RESET ssl_ciphers'; sql $C postgres 'SELECT pg_reload_conf()'; sleep 0.3" ssl_ciphers
    both "a host (not hostssl) line for a remote network while ssl is on" SPOOF-TCP-NON-HOSTSSL \
      "printf 'local all all trust\nhost all all 10.0.0.0/8 scram-sha-256\n' | as_pg tee '$hba'" \
      "printf 'local all all trust\nhostssl all all 10.0.0.0/8 scram-sha-256\nhostnossl all all 10.0.0.0/8 reject\n' | as_pg tee '$hba'" 'line 2:%'
    printf '%s\n' "$hba_orig" | as_pg tee "$hba" >/dev/null
  else
    check_eq "no SSL in this build: the certificate checks stay n/a (TLS-OFF fails)" "$(st TLS-OFF),$(st TLS-CERT-EXPIRY)" "fail,n/a"
  fi

  cis_checks "$v"

  # --- the score and the config table -------------------------------------------------------------
  check_eq "security_score counts checks, not rows" \
    "$(sql $C postgres "SELECT checks = 133 AND passed + failed + unknown + not_applicable + manual = 133 AND failed = critical + high + medium + low + info FROM pgops.security_score")" t
  check_eq "… its failed count matches the audit" \
    "$(sql $C postgres "SELECT failed FROM pgops.security_score")" "$(sql $C postgres "SELECT count(DISTINCT check_id) FROM pgops.security_audit WHERE status = 'fail'")"
  check_match "… and a 0-100 score" "$(sql $C postgres "SELECT score FROM pgops.security_score")" '^[0-9]+(\.[0-9])?$'
  sql $C postgres "INSERT INTO pgops.security_config VALUES ('ignored_checks', '[\"AUTH-TRUST\"]')" >/dev/null
  check_match "an ignored check is reported n/a with the reason" \
    "$(sql $C postgres "SELECT DISTINCT status || ': ' || detail FROM pgops.security_audit WHERE check_id = 'AUTH-TRUST' LIMIT 1")" '^n/a: ignored \(pgops.security_config ignored_checks\)'
  check_match "the config table refuses an unknown check id, naming it" \
    "$(sql $C postgres "UPDATE pgops.security_config SET value = '[\"AUTH-TRUSTY\"]' WHERE name = 'ignored_checks'" 2>&1)" 'unknown check id\(s\) AUTH-TRUSTY'
  check_match "… and a value of the wrong type" \
    "$(sql $C postgres "UPDATE pgops.security_config SET value = '\"postgres\"' WHERE name = 'superusers'" 2>&1)" 'must be a JSON array of strings'
  check_match "… and a name that is not a setting" \
    "$(sql $C postgres "INSERT INTO pgops.security_config VALUES ('superuser', '[]')" 2>&1)" 'violates foreign key|unknown setting'
  check_eq "security_settings: your values over the defaults" \
    "$(sql $C postgres "SELECT string_agg(name || '=' || overridden, ',' ORDER BY name) FROM pgops.security_settings")" \
    "archive_stale_seconds=true,bypassrls_roles=false,cert_expiry_days=false,ignored_checks=true,pg_releases=false,score_history_rows=true,superusers=true,trusted_extensions=false"
  check_eq "pgops.security_config is dumped with pg_dump" \
    "$(sql $C postgres "SELECT count(*) FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'pgops' AND c = 'pgops.security_config'::regclass")" 1
  rm -rf "$sockdir"
}

# Every control of the CIS PostgreSQL 17 Benchmark (pgdsat 2.0's numbering, headings 1, 1.4, 2,
# 3, 3.1, 4, 5, 6, 7, 8 aside).
CIS_IDS="1.1 1.1.1 1.2 1.3 1.4.1 1.4.2 1.4.3 1.4.4 1.4.5 1.5 1.6 1.7 1.8 1.9 2.1 2.2 2.3 2.4 2.5 2.6 2.7 2.8 \
3.1.1 3.1.2 3.1.3 3.1.4 3.1.5 3.1.6 3.1.7 3.1.8 3.1.9 3.1.10 3.1.11 3.1.12 3.1.13 3.1.14 3.1.15 3.1.16 3.1.17 3.1.18 \
3.1.19 3.1.20 3.1.21 3.1.22 3.1.23 3.1.24 3.1.25 3.1.26 3.1.27 3.2 4.1 4.2 4.3 4.4 4.5 4.6 4.7 4.8 4.9 4.10 \
5.1 5.2 5.3 5.4 5.5 5.6 5.7 5.8 5.9 5.10 5.11 5.12 6.1 6.2 6.3 6.4 6.5 6.6 6.7 6.8 6.9 6.10 6.11 7.1 7.2 7.3 7.4 7.5 8.1 8.2 8.3"

# set_conf "name = value"... — ALTER SYSTEM each (a list value as written), then reload.
set_conf() {
  local s
  for s in "$@"; do sql $C postgres "ALTER SYSTEM SET $s" >/dev/null || not_ok "ALTER SYSTEM SET $s"; done
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null; sleep 0.4
}
# cis_is ID STATUS DESCRIPTION — the control's status (distinct statuses joined).
cis_is() { check_eq "CIS $1 is $2: $3" "$(st "CIS-$1")" "$2"; }
# cis_both ID "fail setup" "pass setup" DESCRIPTION
cis_both() { both "$4" "CIS-$1" "$2" "$3"; }

cis_checks() {
  local v=$1 d=${CL_DIR[$C]}/data hba=${CL_DIR[$C]}/data/pg_hba.conf libdir extdir
  libdir=$("$(pg_config_for "$v")" --pkglibdir); extdir=$("$(pg_config_for "$v")" --sharedir)/extension
  local hba_before; hba_before=$(cat "$hba")

  check_eq "every CIS control appears by its number" \
    "$(sql $C postgres "SELECT string_agg(cis_id, ' ' ORDER BY string_to_array(cis_id, '.')::int[]) FROM (SELECT DISTINCT cis_id FROM pgops.security_audit WHERE cis_id IS NOT NULL) x")" \
    "$CIS_IDS"
  check_eq "… each once in the catalog, automated, manual or host" \
    "$(sql $C postgres "SELECT count(*) || ' ' || string_agg(DISTINCT automation, ',' ORDER BY automation) FROM pgops.security_check WHERE cis_id IS NOT NULL")" \
    "91 automated,host,manual"
  check_eq "a control that needs the host is n/a and says what to check there, never pass" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.security_audit WHERE automation = 'host' AND (status NOT IN ('n/a', 'fail') OR detail !~ 'on the host|as root')")" 0
  check_eq "a manual control shows what to review, never pass unless there is nothing to review" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.security_audit WHERE automation = 'manual' AND status NOT IN ('manual', 'pass', 'n/a')")" 0

  # --- settings a reload changes ------------------------------------------------------------------
  set_conf "log_connections = off" "log_disconnections = off" "log_error_verbosity = default" "log_line_prefix = '%m [%p] '" \
    "log_statement = none" "log_timezone = 'Asia/Shanghai'" "log_min_messages = notice" "log_min_error_statement = warning" \
    "debug_print_parse = on" "debug_print_rewritten = on" "debug_print_plan = on" "debug_pretty_print = off" "log_hostname = on" \
    "log_replication_commands = off" "password_encryption = md5" "jit_debugging_support = on" "authentication_timeout = 120" \
    "ssl_ciphers = 'HIGH:MEDIUM:+3DES:!aNULL'" "archive_command = ''" "primary_conninfo = 'host=10.0.0.1 user=replicator sslmode=disable'"
  local id
  for id in 3.1.14 3.1.15 3.1.16 3.1.17 3.1.18 3.1.19 3.1.20 3.1.21 3.1.22 3.1.23 3.1.24 3.1.25 3.1.26 5.7 5.12 6.2 6.10 7.2 7.4 7.5; do
    cis_is "$id" fail "the setting the benchmark does not want"
  done
  check_match "… 3.1.24 names what log_line_prefix lacks" "$(sql $C postgres "SELECT detail FROM pgops.security_audit WHERE check_id = 'CIS-3.1.24'")" \
    "missing the database \(%d\), the user \(%u\), the application \(%a\), the client \(%h or %r\)"
  check_eq "… 6.2 names each backend parameter" \
    "$(sql $C postgres "SELECT string_agg(object, ',' ORDER BY object) FROM pgops.security_audit WHERE check_id = 'CIS-6.2'")" \
    "jit_debugging_support,log_connections,log_disconnections"
  set_conf "log_connections = on" "log_disconnections = on" "log_error_verbosity = verbose" \
    "log_line_prefix = '%m [%p]: db=%d,user=%u,app=%a,client=%h '" "log_statement = ddl" "log_timezone = 'Etc/UTC'" \
    "log_min_messages = warning" "log_min_error_statement = error" "debug_print_parse = off" "debug_print_rewritten = off" \
    "debug_print_plan = off" "debug_pretty_print = on" "log_hostname = off" "log_replication_commands = on" \
    "password_encryption = 'scram-sha-256'" "jit_debugging_support = off" \
    "ssl_ciphers = 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:!aNULL'" \
    "archive_command = 'test ! -f ${CL_DIR[$C]}/archive/%f && cp %p ${CL_DIR[$C]}/archive/%f'" \
    "primary_conninfo = 'host=10.0.0.1 user=replicator sslmode=verify-full'"
  for id in 3.1.14 3.1.15 3.1.16 3.1.17 3.1.18 3.1.19 3.1.20 3.1.21 3.1.22 3.1.23 3.1.24 3.1.25 3.1.26 5.12 6.2 6.10 7.2 7.4 7.5; do
    cis_is "$id" pass "the setting the benchmark wants"
  done
  set_conf "primary_conninfo = 'host=10.0.0.1 user=replicator password=Cis-Secret sslmode=require'" "ssl_passphrase_command = 'echo Cis-Passphrase'"
  check_eq "no secret in any CIS row (6.4 lists primary_conninfo and ssl_passphrase_command by name only)" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.security_audit WHERE concat(object, detail) ~ 'Cis-(Secret|Passphrase)'") $(sql $C postgres "SELECT pgops.security_report()" | grep -c 'Cis-')" "0 0"
  check_match "… naming them" "$(sql $C postgres "SELECT detail FROM pgops.security_audit WHERE check_id = 'CIS-6.4'")" \
    "primary_conninfo \(value not shown: it may hold a secret\)"
  set_conf "primary_conninfo = ''" "ssl_passphrase_command = ''"
  cis_is 7.5 n/a "a primary has no primary_conninfo"
  set_conf "log_destination = 'stderr,syslog'" "syslog_sequence_numbers = off" "syslog_split_messages = off"
  check_eq "CIS 3.1.11 and 3.1.12 fail with syslog and the switches off; 3.1.10 and 3.1.13 are manual" \
    "$(st CIS-3.1.11) $(st CIS-3.1.12) $(st CIS-3.1.10) $(st CIS-3.1.13)" "fail fail manual manual"
  set_conf "syslog_sequence_numbers = on" "syslog_split_messages = on"
  check_eq "… and pass with them on" "$(st CIS-3.1.11) $(st CIS-3.1.12)" "pass pass"
  set_conf "log_destination = stderr"
  check_eq "without syslog they are n/a" "$(st CIS-3.1.11) $(st CIS-3.1.13)" "n/a n/a"
  check_eq "CIS 6.11 fails without an anonymization library" "$(st CIS-6.11)" fail
  check_eq "… and passes with anon in session_preload_libraries" \
    "$(sql $C postgres "SET session_preload_libraries = anon; SELECT string_agg(DISTINCT status, ',') FROM pgops.security_audit WHERE check_id = 'CIS-6.11'")" pass

  # --- roles, privileges, this database's objects ---------------------------------------------------
  sql $C postgres "DO \$\$ DECLARE r record; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE rolsuper AND oid <> 10 LOOP
      EXECUTE format('ALTER ROLE %I NOSUPERUSER', r.rolname); END LOOP; END \$\$" >/dev/null
  cis_both 4.3 "sql $C postgres 'CREATE ROLE second_su SUPERUSER'" "sql $C postgres 'DROP ROLE second_su'" "a second superuser"
  sql $C postgres "DO \$\$ DECLARE r record; BEGIN FOR r IN SELECT rolname FROM pg_roles WHERE rolcanlogin AND NOT rolsuper AND rolname !~ '^pg_' LOOP
      EXECUTE format('ALTER ROLE %I CONNECTION LIMIT 20', r.rolname); END LOOP; END \$\$" >/dev/null
  cis_both 5.5 "sql $C postgres 'CREATE ROLE nolimit LOGIN'" "sql $C postgres 'ALTER ROLE nolimit CONNECTION LIMIT 5'" "a login role without a connection limit"
  cis_both 4.5 "sql $C postgres \"CREATE FUNCTION public.su_definer() RETURNS int SECURITY DEFINER SET search_path = pg_catalog, pg_temp LANGUAGE sql AS 'SELECT 1'\"" \
    "sql $C postgres 'REVOKE EXECUTE ON FUNCTION public.su_definer() FROM PUBLIC'" "a superuser's SECURITY DEFINER function PUBLIC may run"
  cis_both 4.6 "sql $C postgres 'CREATE TABLE public.open_t (v int); GRANT INSERT, DELETE ON public.open_t TO PUBLIC'" \
    "sql $C postgres 'REVOKE ALL ON public.open_t FROM PUBLIC'" "PUBLIC may write a table"
  sql $C postgres "ALTER ROLE etl NOBYPASSRLS" >/dev/null 2>&1
  cis_both 4.7 "sql $C postgres 'CREATE TABLE public.rls_t (v int); CREATE POLICY p ON public.rls_t USING (true); CREATE ROLE bypasser BYPASSRLS'" \
    "sql $C postgres 'ALTER TABLE public.rls_t ENABLE ROW LEVEL SECURITY; ALTER ROLE bypasser NOBYPASSRLS'" "a policy not enforced, a BYPASSRLS role"
  cis_both 4.10 "sql $C postgres 'GRANT CREATE ON SCHEMA public TO PUBLIC'" "sql $C postgres 'REVOKE CREATE ON SCHEMA public FROM PUBLIC'" "PUBLIC may create in schema public"
  cis_both 7.1 "true" "sql $C postgres 'CREATE ROLE replicator LOGIN REPLICATION CONNECTION LIMIT 5'" "no replication-only role"
  check_match "CIS 1.8 is manual with an extension nothing uses, saying so (postgres_fdw has a server)" \
    "$(sql $C postgres "CREATE EXTENSION pg_trgm"; sql $C postgres "SELECT status || ': ' || detail FROM pgops.security_audit WHERE check_id = 'CIS-1.8'")" \
    "^manual: review the extensions installed in this database: pg_trgm [0-9.]+ \(nothing depends on it\), postgres_fdw [0-9.]+$"
  sql $C postgres "DROP EXTENSION pg_trgm" >/dev/null
  cis_both 1.9 "as_pg mkdir -p '$d/inside_ts'; sql $C postgres \"CREATE TABLESPACE inside_ts LOCATION '$d/inside_ts'\"" \
    "sql $C postgres 'DROP TABLESPACE inside_ts'; as_pg rmdir '$d/inside_ts'" "a tablespace inside the data directory"
  # 1.5: the release list decides; an operator replaces it.
  local ver major minor
  ver=$(sql $C postgres "SELECT current_setting('server_version_num')::int"); major=$((ver / 10000)); minor=$((ver % 100))
  cis_both 1.5 "sql $C postgres \"INSERT INTO pgops.security_config VALUES ('pg_releases', '{\\\"as_of\\\": \\\"2026-12-01\\\", \\\"releases\\\": {\\\"$major\\\": {\\\"latest\\\": \\\"$major.$((minor + 1))\\\", \\\"eol\\\": \\\"2099-01-01\\\"}}}')\"" \
    "sql $C postgres \"UPDATE pgops.security_config SET value = jsonb_set(value, '{releases,$major,latest}', '\\\"$major.$minor\\\"') WHERE name = 'pg_releases'\"" \
    "an older minor release than the list's"
  check_match "… saying how old the list is" "$(sql $C postgres "SELECT detail FROM pgops.security_audit WHERE check_id = 'CIS-1.5'")" \
    "the release list is of 2026-12-01 \([0-9]+ days old"
  sql $C postgres "UPDATE pgops.security_config SET value = jsonb_set(value, '{releases,$major,eol}', '\"2020-01-01\"') WHERE name = 'pg_releases'" >/dev/null
  check_match "… and fails a major version past its end of life" "$(sql $C postgres "SELECT status || ': ' || detail FROM pgops.security_audit WHERE check_id = 'CIS-1.5'")" \
    "^fail: PostgreSQL $major reached its end of life on 2020-01-01"
  check_match "a date that does not exist is refused" \
    "$(sql $C postgres "UPDATE pgops.security_config SET value = jsonb_set(value, '{as_of}', '\"2026-02-30\"') WHERE name = 'pg_releases'" 2>&1)" \
    'pg_releases": date/time field value out of range'
  check_match "score_history_rows must be a whole number" \
    "$(sql $C postgres "INSERT INTO pgops.security_config VALUES ('score_history_rows', '100.5')" 2>&1)" 'must be a positive whole number'
  check_match "the release list is validated" \
    "$(sql $C postgres "UPDATE pgops.security_config SET value = '{\"as_of\": \"today\", \"releases\": {}}' WHERE name = 'pg_releases'" 2>&1)" \
    'must be \{"as_of": "YYYY-MM-DD"'
  sql $C postgres "DELETE FROM pgops.security_config WHERE name = 'pg_releases'" >/dev/null

  # --- pg_hba.conf (the file on disk) -----------------------------------------------------------------
  printf 'local all all trust\nlocal all all md5\nhost all all 0.0.0.0/0 md5\nhost all postgres 10.0.0.0/8 scram-sha-256\nhost app app 10.1.0.0/16 password\nhost all all 192.168.0.0 255.255.255.0 scram-sha-256\nhost app app fd00::/48 scram-sha-256\nhost all +gone_group 10.2.0.0/16 scram-sha-256\nhost app app ::ffff:10.0.0.0/104 scram-sha-256\n' | as_pg tee "$hba" >/dev/null
  check_eq "CIS 5.3 fails on local trust and md5 (the server reads local ident as peer)" "$(sql $C postgres "SELECT string_agg(object, ' | ' ORDER BY object) FROM pgops.security_audit WHERE check_id = 'CIS-5.3'")" \
    "line 1: local all all trust | line 2: local all all md5"
  check_eq "CIS 5.4 fails on host md5 and password" "$(sql $C postgres "SELECT string_agg(split_part(object, ':', 1), ' ' ORDER BY object) FROM pgops.security_audit WHERE check_id = 'CIS-5.4'")" "line 3 line 5"
  check_eq "CIS 5.8 fails on every remote host line" "$(sql $C postgres "SELECT count(*) FROM pgops.security_audit WHERE check_id = 'CIS-5.8' AND status = 'fail'")" 7
  check_eq "CIS 5.9 fails on 0.0.0.0/0, 10.0.0.0/8, an IPv6 /48 and an IPv4-mapped /8, not a /16 or a /24" \
    "$(sql $C postgres "SELECT string_agg(split_part(object, ':', 1) || '=' || detail, ', ' ORDER BY object) FROM pgops.security_audit WHERE check_id = 'CIS-5.9'")" \
    "line 3=any address, line 4=2^24 addresses, line 7=2^80 addresses, line 9=2^24 addresses"
  check_eq "CIS 5.10 fails on host lines for all" "$(sql $C postgres "SELECT string_agg(split_part(object, ':', 1), ' ' ORDER BY object) FROM pgops.security_audit WHERE check_id = 'CIS-5.10'")" "line 3 line 4 line 6 line 8"
  check_eq "CIS 5.11 fails where a superuser may come from another host (all, or by name; a +group of a role that is gone matches nobody)" \
    "$(sql $C postgres "SELECT string_agg(split_part(object, ':', 1), ' ' ORDER BY object) FROM pgops.security_audit WHERE check_id = 'CIS-5.11'")" "line 3 line 4 line 6"
  check_eq "CIS 5.6 fails: password lines, no passwordcheck or credcheck" "$(st CIS-5.6)" fail
  printf 'local all all peer\nhostssl app app 10.1.0.0/16 scram-sha-256\nhostssl app app 127.0.0.1/32 scram-sha-256\nhostnossl all all all reject\n' | as_pg tee "$hba" >/dev/null
  check_eq "… 5.3 5.4 5.8 5.9 5.10 5.11 pass with peer, hostssl for named users and subnets, then reject" \
    "$(st CIS-5.3) $(st CIS-5.4) $(st CIS-5.8) $(st CIS-5.9) $(st CIS-5.10) $(st CIS-5.11)" "pass pass pass pass pass pass"
  cis_both 2.5 "chmod 0644 '$hba'" "chmod 0640 '$hba'" "pg_hba.conf readable by others"
  printf 'local all all peer\nhost app app face.cafe scram-sha-256\n' | as_pg tee "$hba" >/dev/null
  check_eq "a host name made of hex letters is a host name, not an address (the audit still runs)" \
    "$(sql $C postgres "SELECT count(*) > 100 FROM pgops.security_audit" 2>&1)" t

  # --- files, and what needs a restart --------------------------------------------------------------
  cis_both 2.7 "chmod 0750 '$d'" "chmod 0700 '$d'" "the data directory open to its group (FS-DATADIR-MODE allows that, CIS does not)"
  check_eq "… while FS-DATADIR-MODE passes 0750 (the server starts with it)" "$(chmod 0750 "$d"; st FS-DATADIR-MODE; chmod 0700 "$d")" pass
  check_eq "CIS 2.8 is manual with a file PostgreSQL did not put there" \
    "$(as_pg touch "$d/notes.txt"; sql $C postgres "SELECT status || ': ' || detail FROM pgops.security_audit WHERE check_id = 'CIS-2.8'")" \
    "manual: review: notes.txt (not PostgreSQL's)"
  as_pg rm -f "$d/notes.txt"
  check_eq "… and passes without" "$(st CIS-2.8)" pass
  as_pg cp "$d/PG_VERSION" "${CL_DIR[$C]}/PG_VERSION.keep"
  check_eq "CIS 1.4.2 fails when PG_VERSION names another major" "$(echo 14 | as_pg tee "$d/PG_VERSION" >/dev/null; st CIS-1.4.2)" fail
  check_eq "CIS 1.4.1 fails without PG_VERSION" "$(as_pg rm -f "$d/PG_VERSION"; st CIS-1.4.1)" fail
  as_pg cp "${CL_DIR[$C]}/PG_VERSION.keep" "$d/PG_VERSION"
  check_eq "… both pass with the file back" "$(st CIS-1.4.1) $(st CIS-1.4.2)" "pass pass"
  if is_root && [ "$(stat -c %u "$extdir")" = 0 ]; then
    local mode; mode=$(stat -c %a "$extdir")
    cis_both 2.2 "chmod g+w '$extdir'" "chmod $mode '$extdir'" "the extension directory writable by its group"
  else
    check_eq "CIS 2.2 fails for an extension directory root does not own" "$(st CIS-2.2)" fail
  fi
  local sums; sums=$(sql $C postgres "SHOW data_checksums")
  cis_is 1.4.3 "$([ "$sums" = on ] && echo pass || echo fail)" "data_checksums = $sums"
  check_eq "before the restart: the socket, the collector, the libraries, WAL and temp files fail" \
    "$(for id in 1.4.4 2.6 3.1.3 3.2 4.8 5.7 8.1; do printf '%s ' "$(st CIS-$id)"; done)" "fail fail fail fail fail fail fail "
  check_eq "… and the collector's settings are n/a" "$(st CIS-3.1.4) $(st CIS-3.1.6) $(st CIS-3.1.7) $(st CIS-3.1.27)" "n/a n/a n/a n/a"
  set_conf "listen_addresses = '*'"
  cluster_stop $C; cluster_start $C
  cis_is 5.2 fail "listen_addresses = '*'"
  # The hardened restart: checksums on, pg_wal and temporary files on another file system (a tmpfs
  # when /dev/shm is one), the collector writing outside the data directory in 0600 files, the
  # libraries the benchmark asks for (where this build has them).
  local wal=/dev/shm/pgops-cis-wal-$$ ts=/dev/shm/pgops-cis-ts-$$ libs="pgops, passwordcheck, auth_delay"
  [ -f "$libdir/pgaudit.so" ] && libs="$libs, pgaudit"
  [ -f "$libdir/set_user.so" ] && libs="$libs, set_user"
  as_pg mkdir -p "$wal" "$ts" "${CL_DIR[$C]}/pglog"
  set_conf "listen_addresses = '127.0.0.1'" "unix_socket_permissions = '0770'" "logging_collector = on" \
    "log_directory = '${CL_DIR[$C]}/pglog'" "log_file_mode = '0640'" "log_truncate_on_rotation = off" \
    "shared_preload_libraries = $libs" "authentication_timeout = 30"
  # (the libraries' own settings are unknown to the server until it loads them: the file)
  cluster_conf $C "pgaudit.log = 'ddl, write'" "auth_delay.milliseconds = 100"
  cluster_stop $C
  [ "$sums" = on ] || as_pg "$(pg_bindir "$v")/pg_checksums" --enable -D "$d" >/dev/null 2>&1 || not_ok "pg_checksums --enable"
  as_pg mv "$d/pg_wal" "$wal/pg_wal" && as_pg ln -s "$wal/pg_wal" "$d/pg_wal"
  cluster_start $C || { not_ok "the hardened restart"; return; }
  sql $C postgres "CREATE TABLESPACE temp_ts LOCATION '$ts'" >/dev/null
  set_conf "temp_tablespaces = temp_ts"
  check_eq "after it: checksums, the socket, the collector, listen, failure delay, WAL and temp files outside pass" \
    "$(for id in 1.4.3 2.6 3.1.3 3.1.4 3.1.27 5.2 5.7 8.1; do printf '%s ' "$(st CIS-$id)"; done)" "pass pass pass pass pass pass pass pass "
  if [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$d")" ]; then
    cis_is 1.4.4 pass "pg_wal and temp_tablespaces on another file system"
  else
    cis_is 1.4.4 fail "/dev/shm is on the data directory's file system here"
  fi
  check_match "CIS 2.8 shows pg_wal's link for review" "$(sql $C postgres "SELECT detail FROM pgops.security_audit WHERE check_id = 'CIS-2.8'")" "symbolic links: pg_wal -> $wal/pg_wal"
  cis_both 3.1.6 "true" "set_conf \"log_file_mode = '0600'\"; chmod 0600 '${CL_DIR[$C]}'/pglog/*" "log files the group may read (0640)"
  cis_both 3.1.7 "true" "set_conf 'log_truncate_on_rotation = on'" "log_truncate_on_rotation off"
  if [ -f "$libdir/pgaudit.so" ] && [ -f "$libdir/set_user.so" ]; then
    check_eq "CIS 3.2 and 4.8 pass with pgaudit (ddl, write) and set_user loaded" "$(st CIS-3.2) $(st CIS-4.8)" "pass pass"
    set_conf "pgaudit.log = 'read'"
    cis_is 3.2 fail "pgaudit.log without ddl and write"
  else
    check_eq "no pgaudit or set_user in this build: 3.2 and 4.8 fail" "$(st CIS-3.2) $(st CIS-4.8)" "fail fail"
  fi
  printf 'local all all peer\nhost app app 10.1.0.0/16 scram-sha-256\n' | as_pg tee "$hba" >/dev/null
  cis_is 5.6 pass "passwordcheck loaded for the password lines"
  if ssl_build "$v" && [ "$(sql $C postgres "SHOW ssl")" = on ]; then
    printf 'local all all peer\nhostssl app app 10.1.0.0/16 scram-sha-256\n' | as_pg tee "$hba" >/dev/null
    cis_both 6.8 "set_conf \"ssl_min_protocol_version = 'TLSv1'\"" "set_conf \"ssl_min_protocol_version = 'TLSv1.2'\"" "TLS 1.0 allowed"
  else
    check_match "CIS 6.8 fails with ssl off" "$(sql $C postgres "SELECT string_agg(detail, '; ') FROM pgops.security_audit WHERE check_id = 'CIS-6.8'")" "ssl = off"
  fi
  printf '%s\n' "$hba_before" | as_pg tee "$hba" >/dev/null
  check_eq "CIS 6.7 follows the kernel's FIPS flag" "$(st CIS-6.7)" \
    "$(if [ -r /proc/sys/crypto/fips_enabled ]; then [ "$(cat /proc/sys/crypto/fips_enabled)" = 1 ] && echo pass || echo fail; else echo n/a; fi)"
  if [ -f "$extdir/pgcrypto.control" ]; then
    check_eq "CIS 6.9 passes: pgcrypto is available" "$(st CIS-6.9)" pass
  else
    check_eq "CIS 6.9 fails: this build has no pgcrypto (nor pgsodium)" "$(st CIS-6.9)" fail
  fi
  check_match "CIS 1.1.1 reads the package from version()" "$(st CIS-1.1.1)" '^(fail|n/a|pass)$'
  cluster_stop $C
  PGPASSWORD=Env-Secret cluster_start $C
  check_eq "CIS 1.7 fails when the server was started with PGPASSWORD in its environment (never showing it)" \
    "$(sql $C postgres "SELECT status || ': ' || detail FROM pgops.security_audit WHERE check_id = 'CIS-1.7'")" \
    "fail: PGPASSWORD is set in the environment the server was started with"
  cluster_stop $C; cluster_start $C
  check_eq "… n/a (what to check as root) once it was not" "$(st CIS-1.7)" "n/a"

  # --- beyond CIS -------------------------------------------------------------------------------------
  sql $C postgres "CREATE ROLE tenant LOGIN CONNECTION LIMIT 5; CREATE SCHEMA tenant AUTHORIZATION tenant" >/dev/null
  both "a tenant's function and operator named like pg_catalog's" LOOKALIKE-FUNC \
    "sql $C postgres \"SET ROLE tenant; CREATE FUNCTION tenant.lower(text) RETURNS text LANGUAGE sql AS 'SELECT \\\$1'; CREATE FUNCTION tenant.eq(int, int) RETURNS bool LANGUAGE sql AS 'SELECT true'; CREATE OPERATOR tenant.= (LEFTARG = int, RIGHTARG = int, FUNCTION = tenant.eq)\"" \
    "sql $C postgres 'DROP FUNCTION tenant.lower(text); DROP OPERATOR tenant.= (int, int)'" 'tenant.lower(text)'
  check_eq "… the operator too" "$(sql $C postgres "SET ROLE tenant; CREATE OPERATOR tenant.= (LEFTARG = int, RIGHTARG = int, FUNCTION = tenant.eq)"; sql $C postgres "SELECT object FROM pgops.security_audit WHERE check_id = 'LOOKALIKE-FUNC' AND object LIKE '%=(%'"; sql $C postgres 'DROP OPERATOR tenant.= (int, int)')" \
    "tenant.=(integer,integer)"
  both "a database's search_path with the tenant's schema before pg_catalog" SEARCHPATH-SETTING \
    "sql $C postgres 'ALTER DATABASE postgres SET search_path = tenant, pg_catalog'" "sql $C postgres 'ALTER DATABASE postgres RESET search_path'" 'database postgres'
  check_eq "… a superuser role's setting too, not another role's (it reaches only that role)" \
    "$(sql $C postgres "CREATE ROLE su_path SUPERUSER; ALTER ROLE su_path SET search_path = tenant; ALTER ROLE aud_plain SET search_path = tenant, public"; sql $C postgres "SELECT string_agg(object || '=' || severity, ', ' ORDER BY object) FROM pgops.security_audit WHERE check_id = 'SEARCHPATH-SETTING'")" \
    "every database, role su_path=high"
  sql $C postgres "DROP ROLE su_path; ALTER ROLE aud_plain RESET search_path" >/dev/null
  both "a schema named like a superuser, the tenant's: the default \"\$user\" in a superuser's path" SEARCHPATH-SETTING \
    "sql $C postgres 'CREATE SCHEMA postgres AUTHORIZATION tenant'" "sql $C postgres 'DROP SCHEMA postgres'" 'the server%search_path'
  both "a superuser's helper and a tenant's function of the same name and arity" LOOKALIKE-FUNC \
    "sql $C postgres \"CREATE FUNCTION public.su_helper(int) RETURNS int LANGUAGE sql AS 'SELECT 1'; SET ROLE tenant; CREATE FUNCTION tenant.su_helper(int) RETURNS int LANGUAGE sql AS 'SELECT 2'\"" \
    "sql $C postgres 'DROP FUNCTION tenant.su_helper(int)'" 'tenant.su_helper(integer)'
  check_match "… naming what it looks like" "$(sql $C postgres "CREATE FUNCTION tenant.su_helper(int) RETURNS int LANGUAGE sql AS 'SELECT 2'; ALTER FUNCTION tenant.su_helper(int) OWNER TO tenant"; sql $C postgres "SELECT detail FROM pgops.security_audit WHERE check_id = 'LOOKALIKE-FUNC'"; sql $C postgres "DROP FUNCTION tenant.su_helper(int), public.su_helper(int)")" \
    "owned by tenant \(not a superuser\) named like public.su_helper\(integer\)"
  both "a SECURITY DEFINER function without search_path" SECDEF-SEARCHPATH \
    "sql $C postgres \"CREATE FUNCTION public.no_path() RETURNS int SECURITY DEFINER LANGUAGE sql AS 'SELECT 1'\"" \
    "sql $C postgres 'ALTER FUNCTION public.no_path() SET search_path = pg_catalog, pg_temp'" 'public.no_path()'
  check_eq "… and one whose search_path leaves pg_temp first" \
    "$(sql $C postgres "ALTER FUNCTION public.no_path() SET search_path = pg_catalog"; sql $C postgres "SELECT status || ',' || severity FROM pgops.security_audit WHERE check_id = 'SECDEF-SEARCHPATH' AND object = 'public.no_path()'")" "fail,medium"
  check_match "… and a superuser's whose pinned search_path lists the tenant's schema" \
    "$(sql $C postgres "ALTER FUNCTION public.no_path() SET search_path = tenant, pg_temp"; sql $C postgres "SELECT status || ',' || severity || ': ' || detail FROM pgops.security_audit WHERE check_id = 'SECDEF-SEARCHPATH' AND object = 'public.no_path()'")" \
    "^fail,high: .*others can write tenant \(owned by tenant\)"
  sql $C postgres "DROP FUNCTION public.no_path()" >/dev/null
  both "trusted extensions not on the allow-list" EXT-TRUSTED \
    "sql $C postgres \"INSERT INTO pgops.security_config VALUES ('trusted_extensions', '[\\\"plpgsql\\\"]')\"" \
    "sql $C postgres \"DELETE FROM pgops.security_config WHERE name = 'trusted_extensions'\"" btree_gin

  # --- who may look: pg_monitor sees unknown where it needs files ---------------------------------
  check_eq "pg_monitor: the file-based CIS controls are unknown, never pass" \
    "$(sql $C postgres "SET ROLE aud_monitor; SELECT string_agg(DISTINCT status, ',') FROM pgops.security_audit WHERE check_id IN ('CIS-1.4.1', 'CIS-2.5', 'CIS-2.7', 'CIS-5.3', 'CIS-5.11', 'CIS-8.1')")" unknown
  check_eq "a role without pg_read_all_settings: hidden settings are unknown" \
    "$(sql $C postgres "SET ROLE aud_plain; SELECT string_agg(status, ',' ORDER BY check_id) FROM pgops.security_audit WHERE check_id IN ('CIS-1.9', 'CIS-4.8', 'CIS-7.5')")" "unknown,unknown,unknown"

  # --- the report -------------------------------------------------------------------------------------
  sql $C postgres "CREATE ROLE \"<b>x|y</b>\" SUPERUSER" >/dev/null
  local md html
  md=$(sql $C postgres "SELECT pgops.security_report()")
  html=$(sql $C postgres "SELECT pgops.security_report('html')")
  check_match "the Markdown report: a title, the score, a table per CIS section" "$md" \
    "^# Security report: .*\*\*Score: [0-9.]+ / 100\*\*.*## 1 Installation and patches.*## 8 Special configuration considerations.*## Beyond CIS"
  check_match "… each failure's object and the fix" "$md" "- \*\*4\.3\*\* Only one superuser.*  - \`<b>x\\\\\|y</b>\`: a superuser besides .*  - Fix: ALTER ROLE"
  check_match "the HTML report: a document, names escaped" "$html" "^<!DOCTYPE html>.*<code>&lt;b&gt;x\|y&lt;/b&gt;</code>.*</html>$"
  check "… no markup from a role's name" bash -c "! grep -qF '<b>x|y</b>' <<<\"\$1\"" _ "$html"
  check_match "an unknown format is refused, naming it" "$(sql $C postgres "SELECT pgops.security_report('pdf')" 2>&1)" \
    "unknown report format \"pdf\": use 'markdown' or 'html'"
  check_match "pg_monitor may read the report" "$(sql $C postgres "SET ROLE aud_monitor; SELECT left(pgops.security_report(), 18)")" "^# Security report:"
  sql $C postgres "DROP ROLE \"<b>x|y</b>\"" >/dev/null

  # --- the score's history: a row when it changes, bounded ------------------------------------------
  sql $C postgres "INSERT INTO pgops.security_config VALUES ('score_history_rows', '2')" >/dev/null
  set_conf "pgops.security_score_interval = 1"
  if wait_sql $C postgres "SELECT count(*) >= 1 FROM pgops.security_score_history" 30; then
    ok "the launcher records the score"
    local n0; n0=$(sql $C postgres "SELECT count(*) || ' ' || max(recorded_at) FROM pgops.security_score_history")
    sleep 3
    check_eq "… an unchanged score adds no row" "$(sql $C postgres "SELECT count(*) || ' ' || max(recorded_at) FROM pgops.security_score_history")" "$n0"
    sql $C postgres "CREATE ROLE history_su SUPERUSER" >/dev/null
    wait_sql $C postgres "SELECT count(*) = 2 FROM pgops.security_score_history" 15 || not_ok "a changed score adds a row"
    sql $C postgres "DROP ROLE history_su; CREATE ROLE history_su2 SUPERUSER" >/dev/null; sleep 3
    sql $C postgres "DROP ROLE history_su2" >/dev/null; sleep 3
    check_eq "… and the table keeps score_history_rows rows" "$(sql $C postgres "SELECT count(*) FROM pgops.security_score_history")" 2
    check_eq "… the last one is the score now" \
      "$(sql $C postgres "SELECT h.failed = s.failed AND h.score IS NOT DISTINCT FROM s.score FROM pgops.security_score s, (SELECT * FROM pgops.security_score_history ORDER BY recorded_at DESC LIMIT 1) h")" t
  else
    not_ok "the launcher records the score" "$(grep -a 'security score' "${CL_DIR[$C]}"/pglog/* 2>/dev/null | tail -3)"
  fi
  set_conf "pgops.security_score_interval = 0"
}
