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

  check_eq "38 checks, each reported" "$(sql $C postgres "SELECT count(DISTINCT check_id) FROM pgops.security_audit")" 38
  check_eq "every category the issue names is covered" \
    "$(sql $C postgres "SELECT string_agg(DISTINCT category, ',' ORDER BY category) FROM pgops.security_check")" \
    "authentication,backups,config,credentials,filesystem,network,passwords,privileges,replication,rls,roles,spoofing,tls"
  check_eq "every row names its severity, fix and source" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.security_audit WHERE severity IS NULL OR fix_hint IS NULL OR source IS NULL OR status NOT IN ('pass', 'fail', 'unknown', 'n/a')")" 0

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
  sql $C postgres "GRANT USAGE ON SCHEMA pgops TO aud_plain; GRANT SELECT ON pgops.security_audit, pgops.security_check, pgops.security_settings TO aud_plain; GRANT EXECUTE ON FUNCTION pgops._security_audit(), pgops._inline_secret(text), pgops._null_cipher_term(text) TO aud_plain" >/dev/null
  local unk
  unk=$(sql $C postgres "SET ROLE aud_monitor; SELECT string_agg(check_id, ',' ORDER BY check_id) FROM pgops.security_audit WHERE status = 'unknown'")
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

  # --- the score and the config table -------------------------------------------------------------
  check_eq "security_score counts checks, not rows" \
    "$(sql $C postgres "SELECT checks = 38 AND passed + failed + unknown + not_applicable = 38 AND failed = critical + high + medium + low + info FROM pgops.security_score")" t
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
    "archive_stale_seconds=true,bypassrls_roles=false,cert_expiry_days=false,ignored_checks=true,superusers=true"
  check_eq "pgops.security_config is dumped with pg_dump" \
    "$(sql $C postgres "SELECT count(*) FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'pgops' AND c = 'pgops.security_config'::regclass")" 1
  rm -rf "$sockdir"
}
