# pg_hba.conf from a table: golden render, validation, lock-out guard, rollback, real
# connections vs hba_match, role filter on a replica, lint, drift, permissions.

hba_sha() { sha256sum "${CL_DIR[$1]}/data/pg_hba.conf" | cut -d' ' -f1; }
probe() { # probe CLUSTER SOURCE USER DB [ssl]
  python3 "$PGOPS_ROOT/pg_test/pgprobe.py" 127.0.0.1 "${CL_PORT[$1]}" "$2" "$3" "$4" "${5:-}"
}

scenario_main() {
  local v=$1 C=hba d
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "password_encryption = 'scram-sha-256'" || { not_ok "initdb"; return 1; }
  d=${CL_DIR[$C]}/data
  # SSL when this build has it (Debian's PG 15 does; the PG 18 wheel does not).
  local ssl_build=0 c_auth=sha
  if ssl_build "$v"; then ssl_build=1 c_auth=ssl; cluster_ssl $C; fi
  cluster_start $C || { not_ok "server starts"; return 1; }
  sql $C postgres "CREATE EXTENSION pgops" >/dev/null

  # --- golden render of Pigsty's defaults (IPv4 only, as Pigsty renders) ----------------------
  check_eq "Pigsty's 12 default rules load" "$(sql $C postgres "SELECT pgops.load_pigsty_hba_defaults()")" 12
  local body
  body=$(sql $C postgres "SET pgops.hba_ipv6 = off; SELECT pgops.render_hba('primary')" | sed -n '/^# dbsu access/,$p' | grep -v '^# pgops-stamp: ' | tr -s ' ')
  local golden='# dbsu access via local os user ident [default]
local all postgres ident
# dbsu replication from local os ident [default]
local replication postgres ident
# replicator replication from localhost [default]
local replication replicator scram-sha-256
host replication replicator 127.0.0.1/32 scram-sha-256
# replicator replication from intranet [default]
host replication replicator 10.0.0.0/8 scram-sha-256
host replication replicator 172.16.0.0/12 scram-sha-256
host replication replicator 192.168.0.0/16 scram-sha-256
# replicator postgres db from intranet [default]
host postgres replicator 10.0.0.0/8 scram-sha-256
host postgres replicator 172.16.0.0/12 scram-sha-256
host postgres replicator 192.168.0.0/16 scram-sha-256
# monitor from localhost with password [default]
local all dbuser_monitor scram-sha-256
host all dbuser_monitor 127.0.0.1/32 scram-sha-256
# monitor from infra host with password [default]
host all dbuser_monitor 10.10.10.10/32 scram-sha-256
# admin @ infra nodes with pwd & ssl [default]
hostssl all dbuser_dba 10.10.10.10/32 scram-sha-256
# admin @ everywhere with ssl & pwd [default]
hostssl all dbuser_dba 0.0.0.0/0 scram-sha-256
# pgbouncer read/write via local socket [default]
local all +dbrole_readonly scram-sha-256
host all +dbrole_readonly 127.0.0.1/32 scram-sha-256
# read/write biz user via password [default]
host all +dbrole_readonly 10.0.0.0/8 scram-sha-256
host all +dbrole_readonly 172.16.0.0/12 scram-sha-256
host all +dbrole_readonly 192.168.0.0/16 scram-sha-256
# allow etl offline tasks from intranet [default]
host all +dbrole_offline 10.0.0.0/8 scram-sha-256
host all +dbrole_offline 172.16.0.0/12 scram-sha-256
host all +dbrole_offline 192.168.0.0/16 scram-sha-256'
  check_eq "render matches the seed's golden pg_hba.conf" "$body" "$golden"
  check "header names instance, role and pgops" bash -c "grep -q '^# Desc      : Postgres HBA Rules for .* \[primary\]' <<<\"\$1\" && grep -q 'managed by pgops' <<<\"\$1\"" _ \
    "$(sql $C postgres "SELECT pgops.render_hba()")"
  check_eq "IPv6: localhost also emits ::1/128" \
    "$(sql $C postgres "SELECT count(*) FROM regexp_split_to_table(pgops.render_hba(), E'\n') l WHERE l ~ '::1/128'")" 3

  # --- invalid rows are rejected at insert; the live file is untouched -------------------------
  local sha0; sha0=$(hba_sha $C)
  check_match "bad CIDR rejected naming the field" \
    "$(sql $C postgres "INSERT INTO pgops.hba_rule (title, addr) VALUES ('bad', '10.0.0.0/33')" 2>&1)" 'pgops.hba_rule id [0-9]+ \("bad"\): field "addr"'
  check_match "unknown method rejected naming the field" \
    "$(sql $C postgres "INSERT INTO pgops.hba_rule (title, addr, auth) VALUES ('bad', 'local', 'bogus')" 2>&1)" 'field "auth": "bogus"'
  check_match "bad raw line rejected with its line" \
    "$(sql $C postgres "INSERT INTO pgops.hba_rule (title, rules) VALUES ('raw', '{\"host all all 10.0.0.0/8 scram-sha-256\", \"hostx all all 1.2.3.4/32 md5\"}')" 2>&1)" 'field "rules", line 2'
  check_match "bad alias address rejected" "$(sql $C postgres "UPDATE pgops.hba_alias SET value = '{10.1.1.300}' WHERE name = 'infra'" 2>&1)" 'is not an IPv4/IPv6 address'
  check_eq "live file byte-for-byte unchanged" "$(hba_sha $C)" "$sha0"

  # --- the rules for the connection tests -----------------------------------------------------
  # md5 verifiers, so that an md5 line asks for md5 (with a SCRAM verifier or none, PostgreSQL
  # upgrades md5 lines to SCRAM).
  sql $C postgres "CREATE ROLE grp_a; SET password_encryption = 'md5'; CREATE ROLE user_a LOGIN IN ROLE grp_a PASSWORD 'a';
                   CREATE ROLE user_b LOGIN PASSWORD 'b'; CREATE ROLE user_c LOGIN PASSWORD 'c';
                   CREATE ROLE user_d LOGIN PASSWORD 'd'; CREATE ROLE user_r LOGIN REPLICATION PASSWORD 'r'" >/dev/null 2>&1
  sql $C postgres "CREATE DATABASE appdb" >/dev/null
  sql $C postgres "DELETE FROM pgops.hba_rule" >/dev/null
  sql $C postgres "SELECT pgops.load_hba_rules('[
    {\"title\": \"dbsu local\", \"user\": \"\${dbsu}\", \"addr\": \"local\", \"auth\": \"trust\", \"order\": 100},
    {\"title\": \"dbsu local replication\", \"user\": \"\${dbsu}\", \"db\": \"replication\", \"addr\": \"local\", \"auth\": \"trust\", \"order\": 110},
    {\"title\": \"group a from .2\", \"user\": \"+grp_a\", \"addr\": \"127.0.0.2/32\", \"auth\": \"trust\", \"order\": 200},
    {\"title\": \"b to appdb from .3\", \"user\": \"user_b\", \"db\": \"appdb\", \"addr\": \"127.0.0.3\", \"auth\": \"sha\", \"order\": 300},
    {\"title\": \"b elsewhere denied\", \"user\": \"user_b\", \"addr\": \"127.0.0.0/29\", \"auth\": \"deny\", \"order\": 400},
    {\"title\": \"c with ssl\", \"user\": \"user_c\", \"addr\": \"127.0.0.0/24\", \"auth\": \"$c_auth\", \"order\": 500},
    {\"title\": \"c without ssl denied\", \"rules\": [\"hostnossl all user_c 127.0.0.0/24 reject\"], \"order\": 600},
    {\"title\": \"replication from .4\", \"user\": \"user_r\", \"db\": \"replication\", \"addr\": \"127.0.0.4\", \"auth\": \"trust\", \"order\": 700},
    {\"title\": \"md5 range\", \"addr\": \"127.0.0.16/28\", \"auth\": \"md5\", \"order\": 800},
    {\"title\": \"postgres over tcp\", \"user\": \"postgres\", \"addr\": \"127.0.0.1\", \"auth\": \"trust\", \"order\": 900},
    {\"title\": \"only on replicas\", \"addr\": \"127.0.0.50\", \"auth\": \"trust\", \"role\": \"replica\", \"order\": 950}]')" >/dev/null
  local applied; applied=$(sql $C postgres "SELECT status || '|' || (backup_path IS NOT NULL) || '|' || rules || '|' || lines FROM pgops.apply_hba()")
  check_eq "apply writes, keeps a backup and reloads" "$applied" "applied and reloaded|true|11|10"
  check_eq "apply's sha256 is the file's" "$(sql $C postgres "SELECT sha256 FROM pgops.hba_apply ORDER BY id DESC LIMIT 1")" "$(hba_sha $C)"
  check_eq "the server sees no error in the new file" "$(sql $C postgres "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")" 0
  check_eq "the replica-only rule is commented out on the primary" \
    "$(grep -c '^# only on replicas \[replica\] \[DISABLED\]' "${CL_DIR[$C]}/data/pg_hba.conf")/$(grep -c '^#host all all 127.0.0.50/32' "${CL_DIR[$C]}/data/pg_hba.conf")" "1/1"
  # The reload is asynchronous: wait until the postmaster serves the new rules.
  local i; for i in $(seq 1 50); do [ "$(probe $C 127.0.0.2 user_a appdb)" = trust ] && break; sleep 0.1; done

  # --- real TCP connections vs hba_match ----------------------------------------------------
  local combos=0 agree=0 mismatches=()
  local u db src s want got
  for u in user_a user_b user_c user_d user_r; do
    for db in appdb postgres replication; do
      for src in 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.20 127.0.0.50 127.0.1.1; do
        for s in false true; do
          [ "$s" = true ] && { [ $ssl_build = 0 ] || { [ "$u" != user_c ] && [ "$u" != user_a ]; }; } && continue
          want=$(sql $C postgres "SELECT CASE WHEN matched THEN method WHEN line_number IS NULL THEN 'nomatch' ELSE 'reject' END
                                  FROM pgops.hba_match('$u', '$db', '$src', $s)")
          got=$(probe $C "$src" "$u" "$db" "$([ "$s" = true ] && echo ssl)")
          combos=$((combos + 1))
          if [ "$want" = "$got" ]; then agree=$((agree + 1)); else mismatches+=("$u/$db/$src/ssl=$s: hba_match $want, server $got"); fi
        done
      done
    done
  done
  if [ "$combos" -ge 20 ] && [ "$agree" = "$combos" ]; then ok "hba_match predicts the server for all $combos connections"
  else not_ok "hba_match predicts the server ($agree of $combos)" "${mismatches[*]:0:5}"; fi
  check_eq "outcomes cover trust, scram, md5, reject and no match" \
    "$(for x in trust scram-sha-256 md5 reject nomatch; do
         sql $C postgres "SELECT count(*) > 0 FROM (VALUES ('user_a','appdb','127.0.0.2'::inet,false),('user_b','appdb','127.0.0.3',false),('user_d','appdb','127.0.0.20',false),('user_b','postgres','127.0.0.2',false),('user_d','appdb','127.0.1.1',false)) v(u,d,a,s), pgops.hba_match(u, d, a, s) m WHERE CASE WHEN m.matched THEN m.method WHEN m.line_number IS NULL THEN 'nomatch' ELSE 'reject' END = '$x'"
       done | tr -d '\n')" "ttttt"
  check_eq "hba_match names the rule and line" \
    "$(sql $C postgres "SELECT rule || '|' || method FROM pgops.hba_match('user_a', 'appdb', '127.0.0.2')")" "group a from .2|trust"
  check_eq "hba_match reads the live file too" \
    "$(sql $C postgres "SELECT rule || '|' || line_number FROM pgops.hba_match('user_b', 'appdb', '127.0.0.3', source => 'live')")" \
    "$(sql $C postgres "SELECT rule || '|' || line_number FROM pgops.hba_match('user_b', 'appdb', '127.0.0.3')")"
  check_eq "local socket: the dbsu rule" "$(sql $C postgres "SELECT rule FROM pgops.hba_match('postgres', 'postgres', NULL)")" "dbsu local"

  # --- lock-out guard -------------------------------------------------------------------------
  local sha1; sha1=$(hba_sha $C)
  sql $C postgres "UPDATE pgops.hba_rule SET auth = 'deny' WHERE title = 'dbsu local'" >/dev/null
  check_match "a file that locks out the superuser is refused" "$(sql $C postgres "SELECT * FROM pgops.apply_hba()" 2>&1)" \
    'refusing a pg_hba.conf that locks out the bootstrap superuser "postgres": a local connection to database "postgres" hits reject'
  check_eq "refused apply left the file alone" "$(hba_sha $C)" "$sha1"
  sql $C postgres "UPDATE pgops.hba_rule SET auth = 'trust' WHERE title = 'dbsu local'" >/dev/null
  check_match "the caller's own TCP connection is protected" \
    "$(as_pg "$(psql_for "$v")" -X -At -h 127.0.0.1 -p "${CL_PORT[$C]}" -U postgres -d postgres \
        -c "UPDATE pgops.hba_rule SET addr = '127.0.0.9' WHERE title = 'postgres over tcp'" -c "SELECT * FROM pgops.apply_hba()" 2>&1)" \
    'locks you out: "postgres" connecting to "postgres" from 127.0.0.1'
  sql $C postgres "UPDATE pgops.hba_rule SET addr = '127.0.0.1' WHERE title = 'postgres over tcp'" >/dev/null

  # --- the server's own check: rejected file is rolled back -----------------------------------
  sql $C postgres "INSERT INTO pgops.hba_rule (title, rules, \"order\") VALUES ('ldap without server', '{\"host all all 127.0.0.9/32 ldap\"}', 50)" >/dev/null
  check_match "a file pg_hba_file_rules flags is rolled back, with the line and error" \
    "$(sql $C postgres "SELECT * FROM pgops.apply_hba()" 2>&1)" 'the server rejects the new pg_hba.conf \(line [0-9]+: .*ldap.*\); the previous file was restored; not reloaded'
  check_eq "rolled-back file is byte-for-byte the previous one" "$(hba_sha $C)" "$sha1"
  check_eq "dry run validates without writing" "$(sql $C postgres "DELETE FROM pgops.hba_rule WHERE title = 'ldap without server'; SELECT status FROM pgops.apply_hba(dry_run => true)")" "dry run: valid, not written"
  check_eq "dry run left the file alone" "$(hba_sha $C)" "$sha1"

  # --- lint --------------------------------------------------------------------------------
  sql $C postgres "INSERT INTO pgops.hba_rule (title, \"user\", db, addr, auth, \"order\") VALUES ('planted: never reached', 'user_b', 'appdb', '127.0.0.3', 'md5', 350)" >/dev/null
  check_match "lint finds the planted shadowed rule" \
    "$(sql $C postgres "SELECT string_agg(finding || ':' || rule, ',') FROM pgops.hba_lint WHERE finding = 'shadowed'")" "shadowed:planted: never reached"
  check "lint flags md5 while password_encryption is scram" bash -c "[ \"\$1\" -ge 1 ]" _ "$(sql $C postgres "SELECT count(*) FROM pgops.hba_lint WHERE finding = 'md5'")"
  sql $C postgres "DELETE FROM pgops.hba_rule WHERE title LIKE 'planted%'" >/dev/null

  # --- drift ---------------------------------------------------------------------------------
  check_eq "no drift after apply" "$(sql $C postgres "SELECT drifted FROM pgops.hba_drift")" f
  echo "# edited by hand" | as_pg tee -a "${CL_DIR[$C]}/data/pg_hba.conf" >/dev/null
  check_eq "a hand edit shows as drift" "$(sql $C postgres "SELECT drifted FROM pgops.hba_drift")" t
  local backups_before; backups_before=$(ls "${CL_DIR[$C]}/data/" | grep -c 'pg_hba.conf.pgops-')
  sql $C postgres "SELECT * FROM pgops.apply_hba()" >/dev/null
  check_eq "apply puts it back and drift clears" "$(sql $C postgres "SELECT drifted FROM pgops.hba_drift")" f
  check_eq "the hand-edited file was kept as a backup" \
    "$(grep -l '# edited by hand' "${CL_DIR[$C]}"/data/pg_hba.conf.pgops-* | wc -l)" 1

  # --- permissions -----------------------------------------------------------------------------
  sql $C postgres "CREATE ROLE ops_admin LOGIN IN ROLE pgops_admin; CREATE ROLE nobody LOGIN" >/dev/null
  check_eq "a pgops_admin member can apply" \
    "$(as_pg "$(psql_for "$v")" -X -At -h "${CL_DIR[$C]}" -p "${CL_PORT[$C]}" -U postgres -d postgres -q -c "SET ROLE ops_admin" -c "SELECT status FROM pgops.apply_hba()")" "unchanged"
  check_match "apply_hba() in a multi-statement string (an implicit transaction block) is refused too" \
    "$(sql $C postgres "SELECT 1; SELECT status FROM pgops.apply_hba()" 2>&1)" 'cannot run inside a transaction block'
  check_match "a plain role cannot" "$(sql $C postgres "SET ROLE nobody; SELECT * FROM pgops.apply_hba()" 2>&1)" "permission denied"
  check_match "apply_hba runs as definer with a pinned search_path and the settings that decide what SQL means" \
    "$(sql $C postgres "SELECT prosecdef || '|' || array_to_string(proconfig, ',') FROM pg_proc WHERE proname = 'apply_hba'")" \
    '^true\|search_path=pg_catalog, pgops, pg_temp,.*session_replication_role=origin,standard_conforming_strings=on,transform_null_equals=off'
  check_eq "every function of the extension has a search_path with pg_temp last and nothing but pg_catalog and pgops" \
    "$(sql $C postgres "SELECT count(*) FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
        AND d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgops')
      WHERE NOT EXISTS (SELECT FROM unnest(p.proconfig) c
        WHERE c IN ('search_path=pg_catalog, pg_temp', 'search_path=pg_catalog, pgops, pg_temp'))")" 0

  # --- role filter on a streaming replica -------------------------------------------------------
  cluster_standby hba_sb $C || { not_ok "standby starts"; return 1; }
  check_match "on the replica the replica-only rule is enabled" \
    "$(sql hba_sb postgres "SELECT pgops.render_hba()")" "# only on replicas \[replica\]
host +all +all +127.0.0.50/32 +trust"
  # pg_basebackup copied the primary's file and backups: the replica's launcher re-renders it for
  # the replica (pgops.hba_follow) and removes the other instance's backups.
  for i in $(seq 1 100); do
    [ "$(sql hba_sb postgres "SELECT state FROM pgops.hba_drift")" = current ] && break; sleep 0.1
  done
  check_eq "the copied file is re-rendered for the replica by its launcher, without a call" \
    "$(sql hba_sb postgres "SELECT state || '|' || rendered_role || '|' || drifted || '|' || foreign_backups FROM pgops.hba_drift")|$(grep -c '^host .*127.0.0.50/32' "${CL_DIR[hba_sb]}/data/pg_hba.conf")" \
    "current|replica|false|0|1"
  check_eq "the primary's backups copied with the data directory are gone, the replica's own remains" \
    "$(ls "${CL_DIR[hba_sb]}/data" | grep -c '^pg_hba.conf.pgops-')|$(ls "${CL_DIR[$C]}/data" | grep -c '^pg_hba.conf.pgops-')" \
    "1|$(ls "${CL_DIR[$C]}/data" | grep -c '^pg_hba.conf.pgops-')"
  check_match "the server log says why the launcher wrote the file" "$(cat "${CL_DIR[hba_sb]}/server.log")" \
    "pgops.apply_hba: the launcher \(the file was rendered for [^ ]+ as primary and copied here with the data directory\) wrote"
  check_eq "apply on the replica then finds the replica's own file" \
    "$(sql hba_sb postgres "SELECT status FROM pgops.apply_hba()")" "unchanged"
  for i in $(seq 1 50); do [ "$(probe hba_sb 127.0.0.50 user_d postgres)" = trust ] && break; sleep 0.1; done
  check_eq "the replica admits what its rule says, the primary does not" \
    "$(probe hba_sb 127.0.0.50 user_d postgres)/$(probe $C 127.0.0.50 user_d postgres)" "trust/nomatch"
}
