# Publishing to etcd: the state appears within one interval and matches the server; writes only
# when needed; nothing outside the prefix; a replica publishes too and cluster_members() shows
# both; the same instance name twice is a conflict; clean stop removes the key at once, immediate
# stop within the TTL; etcd down for three intervals leaves the server alone and pushes resume;
# a 3-member etcd losing the connected member; etcd auth with a per-cluster user, a wrong
# password, a password file others can read; bad settings; SIGTERM while etcd hangs.

doc() { # doc ETCD KEY — the member document (empty when absent)
  etcdctl_ "$1" get "$2" --print-value-only 2>/dev/null
}
field() { # field JSON EXPR — a python expression over d (the parsed document)
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); print($2)" "$1" 2>/dev/null
}
lease_of() { # lease_of ETCD KEY — the key's lease id (decimal)
  etcdctl_ "$1" get "$2" -w json 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['kvs'][0].get('lease', 0))" 2>/dev/null
}
wait_for() { # wait_for SECONDS command... — polls every 0.1 s until the command succeeds
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  while [ "$(date +%s%N)" -lt $deadline ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
has_key() { [ -n "$(doc "$1" "$2")" ]; }
no_key() { [ -z "$(doc "$1" "$2")" ]; }

scenario_main() {
  local v=$1 C=etp R=etr out t0 start0 key1=/pg/pg-e2e/pgops/members/pg-e2e-1 key2=/pg/pg-e2e/pgops/members/pg-e2e-2
  etcd_start e1 || { not_ok "etcd starts"; return 1; }
  etcdctl_ e1 put /pg/pg-e2e/leader patroni-node-1 >/dev/null   # Patroni's key: never touched
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "cluster_name = 'pg-e2e'" "wal_level = replica" \
    "pgops.instance_name = 'pg-e2e-1'" "pgops.etcd_endpoints = '${ETCD_URL[e1]}'" \
    "pgops.etcd_interval = '1s'" "pgops.etcd_ttl = '5s'" "pgops.etcd_timeout = '500ms'" \
    "pgops.launcher_restart_time = 1" || { not_ok "initdb"; return 1; }
  t0=$(date +%s%N)
  cluster_start $C || { not_ok "server starts"; return 1; }
  sql $C postgres "CREATE EXTENSION pgops" >/dev/null

  # --- the state appears within one interval and matches the server -----------------------------
  if wait_for 3 has_key e1 $key1; then
    ok "the member key appears within one interval of the server start ($(( ($(date +%s%N) - t0) / 1000000 )) ms incl. startup)"
  else
    not_ok "the member key appears" "$(sql $C postgres "SELECT * FROM pgops.etcd_status")"
  fi
  out=$(sql $C postgres "SELECT ok, wrote, key, error FROM pgops.etcd_push_now()")
  check_eq "etcd_push_now() publishes and reports it" "$out" "t|t|$key1|"
  out=$(doc e1 $key1)
  check_eq "the document: schema 1, cluster, instance, role primary, timeline 1" \
    "$(field "$out" "d['schema'], d['cluster'], d['instance'], d['role'], d['timeline']")" "1 pg-e2e pg-e2e-1 primary 1"
  check_eq "its LSN is the server's (no WAL written since the push)" \
    "$(sql $C postgres "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$(field "$out" "d['current_lsn']")') BETWEEN 0 AND 65536")" t
  check_eq "server version, start time, system identifier and port match" \
    "$(field "$out" "d['server_version'], d['port'], d['system_identifier']")" \
    "$(sql $C postgres "SELECT format('%s %s %s', current_setting('server_version'), current_setting('port'), system_identifier) FROM pg_control_system()")"
  check_eq "started_at is pg_postmaster_start_time()" \
    "$(sql $C postgres "SELECT '$(field "$out" "d['started_at']")'::timestamptz = pg_postmaster_start_time()")" t
  check_eq "databases with sizes, max XID age, pgops facts (drift, forecast fields), pgops version" \
    "$(field "$out" "sorted(x['name'] for x in d['databases']), d['max_xid_age'] > 0, d['role_drift'] is not None and d['hba_drift'] is False, d['database_drift'], d['pgops_version']")" \
    "['postgres', 'template1'] True True 0 0.1.0"
  check_eq "the key is bound to the worker's lease (etcd_status.lease_id)" \
    "$(lease_of e1 $key1)" "$(sql $C postgres "SELECT lease_id FROM pgops.etcd_status")"
  out=$(sql $C postgres "SELECT enabled, state, connected_endpoint, lease_ttl, pushes > 0, failures, last_error IS NULL FROM pgops.etcd_status")
  check_eq "etcd_status: enabled, publishing, endpoint, TTL, pushes, no failures" "$out" "t|publishing|${ETCD_URL[e1]}|5|t|0|t"
  check_eq "pgops.workers lists the etcd worker" \
    "$(sql $C postgres "SELECT kind || ',' || state || ',' || (pid IS NOT NULL) FROM pgops.workers WHERE name = 'pgops etcd'")" "static,publishing,true"

  # --- writes only when the content changed (progress alone at most every half TTL) ----------------
  local p0 w0 p1 w1
  IFS='|' read -r p0 w0 <<<"$(sql $C postgres "SELECT pushes, writes FROM pgops.etcd_status")"
  sleep 4.5
  IFS='|' read -r p1 w1 <<<"$(sql $C postgres "SELECT pushes, writes FROM pgops.etcd_status")"
  if [ $((p1 - p0)) -ge 3 ] && [ $((w1 - w0)) -lt $((p1 - p0)) ]; then
    ok "an idle server refreshes the lease every interval but rewrites less ($((p1 - p0)) pushes, $((w1 - w0)) writes)"
  else
    not_ok "fewer writes than pushes when idle" "pushes $p0→$p1 writes $w0→$w1"
  fi
  local x0; x0=$(sql $C postgres "SELECT pg_snapshot_xmax(pg_current_snapshot())")
  sleep 2.5
  check_eq "publishing consumes no transaction ID (two pushes, read-only)" \
    "$(sql $C postgres "SELECT pg_snapshot_xmax(pg_current_snapshot())")" "$x0"
  sql $C postgres "CREATE TABLE grow AS SELECT g FROM generate_series(1, 100000) g" >/dev/null
  local after; after=$(sql $C postgres "SELECT pg_current_wal_lsn()")
  lsn_reached() { local l; l=$(field "$(doc e1 $key1)" "d['current_lsn']"); [ "$(sql $C postgres "SELECT '$l'::pg_lsn >= '$after'::pg_lsn")" = t ]; }
  check "a change (new WAL, a bigger database) is written within half the TTL and an interval" wait_for 4 lsn_reached

  # --- a replica publishes too; the same name twice is refused ------------------------------------
  cluster_standby $R $C || { not_ok "standby starts"; return 1; }
  check "a second server under the same instance name: a conflict, visible, nothing overwritten" \
    wait_sql $R postgres "SELECT last_error LIKE '%key $key1 is held by another instance, %:${CL_PORT[$C]} (%pgops.instance_name%' FROM pgops.etcd_status" 6
  check_eq "the primary's key still holds the primary's document" "$(field "$(doc e1 $key1)" "d['role'], d['port']")" "primary ${CL_PORT[$C]}"
  # Retried every interval (1 s here), logged once: the same conflict is not a new log line.
  sleep 3
  check_eq "the conflict is logged once, not at every retry" \
    "$(grep -c "is held by another instance" "${CL_DIR[$R]}/server.log")" 1
  cluster_conf $R "pgops.instance_name = 'pg-e2e-2'"
  sql $R postgres "SELECT pg_reload_conf()" >/dev/null
  check "after a reload with its own name the replica publishes" wait_for 4 has_key e1 $key2
  out=$(doc e1 $key2)
  check_eq "the replica's document: role replica, timeline, receive/replay LSN, lag" \
    "$(field "$out" "d['role'], d['timeline'], d['current_lsn'], d['replay_lsn'] is not None, d['replay_lag_seconds'] is not None")" \
    "replica 1 None True True"
  check "the primary lists the replica among its peers" \
    wait_for 4 bash -c "ETCDCTL_API=3 etcdctl --endpoints ${ETCD_URL[e1]} get $key1 --print-value-only | grep -q '\"state\":\"streaming\"'"
  check_eq "cluster_members() on the primary: both, with their roles" \
    "$(sql $C postgres "SELECT string_agg(instance || ':' || role || ':' || is_self, ',' ORDER BY instance) FROM pgops.cluster_members()")" \
    "pg-e2e-1:primary:true,pg-e2e-2:replica:false"
  check_eq "cluster_members() on the replica: the same fleet" \
    "$(sql $R postgres "SELECT string_agg(instance || ':' || role || ':' || is_self, ',' ORDER BY instance) FROM pgops.cluster_members()")" \
    "pg-e2e-1:primary:false,pg-e2e-2:replica:true"
  check_eq "cluster_members(): LSN, timestamps and the whole document as jsonb" \
    "$(sql $C postgres "SELECT bool_and(lsn IS NOT NULL AND updated_at > now() - interval '1 minute' AND started_at IS NOT NULL AND state->>'schema' = '1') FROM pgops.cluster_members()")" t

  # --- clean stop: the key goes at once -----------------------------------------------------------
  cluster_stop $R fast
  check "after a clean stop the replica's key is gone at once (lease revoked)" no_key e1 $key2

  # --- nothing outside the prefix; Patroni's key untouched ---------------------------------------
  check_eq "every key in etcd is pgops' own or Patroni's leader key" \
    "$(etcdctl_ e1 get '' --prefix --keys-only | grep -v '^$' | grep -v "^/pg/pg-e2e/pgops/members/" | tr '\n' ' ')" "/pg/pg-e2e/leader "
  check_eq "Patroni's leader key is unchanged" "$(doc e1 /pg/pg-e2e/leader)" "patroni-node-1"

  # --- etcd down for three intervals --------------------------------------------------------------
  start0=$(sql $C postgres "SELECT pg_postmaster_start_time()")
  local f0; f0=$(sql $C postgres "SELECT failures FROM pgops.etcd_status")
  etcd_kill e1
  sleep 3.5
  out=$(sql $C postgres "SELECT failures > $f0, consecutive_failures >= 2, last_error LIKE '%etcd unreachable%', state FROM pgops.etcd_status")
  check_eq "etcd down: failures counted, the error shown" "$out" "t|t|t|retrying (see last_error)"
  check_eq "etcd down: etcd_push_now() says why, without an error" \
    "$(sql $C postgres "SELECT ok, error LIKE 'etcd unreachable: ${ETCD_URL[e1]}: %' FROM pgops.etcd_push_now()")" "f|t"
  check_eq "etcd down: the server was not restarted" "$(sql $C postgres "SELECT pg_postmaster_start_time()")" "$start0"
  check "etcd down: the worker logged the failures" grep -q "pgops etcd: push failed (attempt" "${CL_DIR[$C]}/server.log"
  etcd_restart e1 || { not_ok "etcd restarts"; return 1; }
  local back; back=$(date +%s%N)
  if wait_sql $C postgres "SELECT consecutive_failures = 0 AND state = 'publishing' FROM pgops.etcd_status" 3 && has_key e1 $key1; then
    ok "etcd back: pushes resume within two intervals ($(( ($(date +%s%N) - back) / 1000000 )) ms)"
  else
    not_ok "pushes resume" "$(sql $C postgres "SELECT * FROM pgops.etcd_status")"
  fi

  # --- immediate stop: the key expires with the lease ---------------------------------------------
  cluster_stop $C immediate
  check "after an immediate stop the key is still there (nobody revoked it)" has_key e1 $key1
  t0=$(date +%s%N)
  if wait_for 8 no_key e1 $key1; then
    ok "… and is gone within the TTL of 5 s ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
  else
    not_ok "the key expires within the TTL"
  fi
  cluster_start $C || { not_ok "server restarts"; return 1; }
  check "restarted, it publishes again" wait_for 4 has_key e1 $key1

  # --- a 3-member etcd cluster loses the member the worker talks to ------------------------------
  etcd_start ec 3 || { not_ok "3-member etcd starts"; return 1; }
  sql $C postgres "ALTER SYSTEM SET pgops.etcd_endpoints = '${ETCD_URL[ec]}'" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  check "after a reload it publishes to the new etcd cluster" wait_for 4 has_key ec $key1
  check "… and revoked its lease on the old one (key gone)" no_key e1 $key1
  check_eq "connected to the first member" "$(sql $C postgres "SELECT connected_endpoint FROM pgops.etcd_status")" "${ETCD_URL[ec0]}"
  etcd_kill ec0
  local kill_at; kill_at=$(sql $C postgres "SELECT now()")
  if wait_sql $C postgres "SELECT last_push_at > '$kill_at' AND connected_endpoint <> '${ETCD_URL[ec0]}' FROM pgops.etcd_status" 8; then
    ok "the connected member killed: pushes continue through $(sql $C postgres "SELECT connected_endpoint FROM pgops.etcd_status")"
  else
    not_ok "pushes continue through another member" "$(sql $C postgres "SELECT * FROM pgops.etcd_status")"
  fi
  check_eq "the same lease is kept (leases are cluster-wide)" \
    "$(ETCDCTL_API=3 etcdctl --endpoints "${ETCD_URL[ec1]}" get $key1 -w json | python3 -c "import json,sys; print(json.load(sys.stdin)['kvs'][0]['lease'])")" \
    "$(sql $C postgres "SELECT lease_id FROM pgops.etcd_status")"

  # --- SIGTERM is honoured at once even while etcd hangs -------------------------------------------
  sql $C postgres "ALTER SYSTEM SET pgops.etcd_timeout = '5s'" >/dev/null
  sql $C postgres "ALTER SYSTEM SET pgops.etcd_interval = '10s'" >/dev/null
  sql $C postgres "ALTER SYSTEM SET pgops.etcd_ttl = '30s'" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  sleep 1
  kill -STOP "${ETCD_PID[ec1]}" "${ETCD_PID[ec2]}"
  sql $C postgres "SELECT pgops.etcd_push_now()" >/dev/null 2>&1 &   # a push now hangs on etcd
  local bg=$!
  sleep 0.5
  t0=$(date +%s%N)
  cluster_stop $C fast
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  kill -CONT "${ETCD_PID[ec1]}" "${ETCD_PID[ec2]}"
  wait $bg 2>/dev/null
  if [ $ms -lt 3000 ]; then ok "fast shutdown while etcd hangs (timeout 5 s): ${ms} ms"; else not_ok "fast shutdown while etcd hangs" "${ms} ms"; fi
  check "the worker said the lease was left to expire" grep -q "lease not revoked at shutdown" "${CL_DIR[$C]}/server.log"
  cluster_start $C || { not_ok "server restarts"; return 1; }
  etcd_stop ec0; etcd_stop ec1; etcd_stop ec2

  # --- etcd with authentication: a per-cluster user limited to /pg/pg-e2e/ ------------------------
  etcd_start ea || { not_ok "etcd (auth) starts"; return 1; }
  {
    etcdctl_ ea user add root:rootpw && etcdctl_ ea role add pg-e2e &&
      etcdctl_ ea role grant-permission pg-e2e --prefix=true readwrite /pg/pg-e2e/ &&
      etcdctl_ ea user add pg-e2e:e2e-pw && etcdctl_ ea user grant-role pg-e2e pg-e2e &&
      etcdctl_ ea auth enable
  } >/dev/null 2>&1 || { not_ok "etcd auth set up"; return 1; }
  local pwfile=${CL_DIR[$C]}/etcd-password
  printf 'e2e-pw\n' | as_pg tee "$pwfile" >/dev/null; as_pg chmod 0600 "$pwfile"
  for s in "ALTER SYSTEM RESET pgops.etcd_timeout" "ALTER SYSTEM SET pgops.etcd_interval = '1s'" "ALTER SYSTEM SET pgops.etcd_ttl = '5s'" \
           "ALTER SYSTEM SET pgops.etcd_endpoints = '${ETCD_URL[ea]}'" "ALTER SYSTEM SET pgops.etcd_username = 'pg-e2e'" \
           "ALTER SYSTEM SET pgops.etcd_password_file = '$pwfile'"; do sql $C postgres "$s" >/dev/null; done
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  check "auth: the per-cluster user publishes under /pg/pg-e2e/" \
    wait_for 5 bash -c "ETCDCTL_API=3 etcdctl --endpoints ${ETCD_URL[ea]} --user root:rootpw get $key1 --print-value-only | grep -q pg-e2e-1"
  check_eq "auth: etcd_push_now() succeeds" "$(sql $C postgres "SELECT ok FROM pgops.etcd_push_now()")" t
  check_eq "auth: the password is in no setting pgops shows" \
    "$(sql $C postgres "SELECT count(*) FROM pg_settings WHERE setting LIKE '%e2e-pw%'") $(sql $C postgres "SELECT count(*) FROM pgops.etcd_status WHERE concat_ws(' ', endpoints, last_error) LIKE '%e2e-pw%'")" "0 0"
  local lease_before; lease_before=$(sql $C postgres "SELECT lease_id FROM pgops.etcd_status")
  printf 'wrong\n' | as_pg tee "$pwfile" >/dev/null
  out=$(sql $C postgres "SELECT ok, error FROM pgops.etcd_push_now()")
  check_match "auth: a wrong password is a clear error naming the user" "$out" '^f\|etcd authentication: user "pg-e2e": .*authentication failed'
  check "auth: … also in etcd_status" \
    wait_sql $C postgres "SELECT last_error LIKE '%user \"pg-e2e\"%authentication failed%' FROM pgops.etcd_status" 3
  printf 'e2e-pw\n' | as_pg tee "$pwfile" >/dev/null
  check "auth: the corrected password file is picked up without a reload" \
    wait_sql $C postgres "SELECT consecutive_failures = 0 FROM pgops.etcd_status" 4
  check_eq "auth: a password change keeps the lease (the key never went away)" \
    "$(sql $C postgres "SELECT lease_id FROM pgops.etcd_status")" "$lease_before"
  as_pg chmod 0644 "$pwfile"
  check "auth: a password file others can read is refused, saying how to fix it" \
    wait_sql $C postgres "SELECT NOT enabled AND last_error LIKE '%$pwfile is accessible by group or others (mode 0644); run chmod 0600%' FROM pgops.etcd_status" 4
  check_match "auth: etcd_push_now() then explains why publishing is off" \
    "$(sql $C postgres "SELECT * FROM pgops.etcd_push_now()" 2>&1)" "etcd publishing is off: pgops.etcd_password_file: .* run chmod 0600"
  as_pg chmod 0600 "$pwfile"
  check "auth: fixed, publishing resumes" wait_sql $C postgres "SELECT enabled AND state = 'publishing' FROM pgops.etcd_status" 4

  # --- bad settings are named; turning it off revokes -------------------------------------------
  sql $C postgres "ALTER SYSTEM SET pgops.etcd_interval = '3s'" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  check "a TTL shorter than two intervals is refused, naming both settings" \
    wait_sql $C postgres "SELECT NOT enabled AND last_error LIKE 'pgops.etcd_ttl (5 s) must be at least twice pgops.etcd_interval (3 s)%' FROM pgops.etcd_status" 4
  check "… and the lease was revoked when publishing stopped" \
    bash -c "[ -z \"\$(ETCDCTL_API=3 etcdctl --endpoints ${ETCD_URL[ea]} --user root:rootpw get $key1 --print-value-only)\" ]"
  sql $C postgres "ALTER SYSTEM RESET pgops.etcd_interval" >/dev/null
  sql $C postgres "ALTER SYSTEM RESET pgops.etcd_ttl" >/dev/null
  sql $C postgres "ALTER SYSTEM SET pgops.etcd_endpoints = ''" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  check "with pgops.etcd_endpoints empty, publishing is off" \
    wait_sql $C postgres "SELECT NOT enabled AND state = 'off (pgops.etcd_endpoints is empty)' FROM pgops.etcd_status" 4
  check_match "etcd_push_now() says how to turn it on" "$(sql $C postgres "SELECT * FROM pgops.etcd_push_now()" 2>&1)" \
    "etcd publishing is off \(pgops.etcd_endpoints is empty\)"

  # --- TLS: etcd over https requiring client certificates (Pigsty's etcd) ------------------------
  local tls=${CL_DIR[$C]}/etcd-tls
  etcd_start_tls et "$tls" || { not_ok "etcd with TLS starts"; return 1; }
  chown -R "$PG_OS_USER" "$tls" 2>/dev/null; chmod 0600 "$tls"/*.key
  for s in "ALTER SYSTEM RESET pgops.etcd_username" "ALTER SYSTEM RESET pgops.etcd_password_file" \
           "ALTER SYSTEM SET pgops.etcd_endpoints = '${ETCD_URL[et]}'" "ALTER SYSTEM SET pgops.etcd_cacert = '$tls/ca.crt'"; do
    sql $C postgres "$s" >/dev/null
  done
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  check "TLS: without a client certificate etcd refuses the handshake, and it says so" \
    wait_sql $C postgres "SELECT enabled AND consecutive_failures > 0 AND last_error LIKE 'etcd unreachable: ${ETCD_URL[et]}: %' FROM pgops.etcd_status" 5
  sql $C postgres "ALTER SYSTEM SET pgops.etcd_cert = '$tls/client.crt'" >/dev/null
  sql $C postgres "ALTER SYSTEM SET pgops.etcd_key = '$tls/client.key'" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  check "TLS: with pgops.etcd_cacert, etcd_cert and etcd_key the worker publishes over https" \
    wait_for 5 has_key et $key1
  check_eq "TLS: etcd_push_now() through https" "$(sql $C postgres "SELECT ok, endpoint FROM pgops.etcd_push_now()")" "t|${ETCD_URL[et]}"
  chmod 0644 "$tls/client.key"
  check "TLS: a client key others can read is refused, naming the setting and the fix" \
    wait_sql $C postgres "SELECT NOT enabled AND last_error LIKE 'pgops.etcd_key: $tls/client.key is accessible by group or others (mode 0644); run chmod 0600%' FROM pgops.etcd_status" 4
  chmod 0600 "$tls/client.key"
  for s in "ALTER SYSTEM RESET pgops.etcd_cert" "ALTER SYSTEM RESET pgops.etcd_key" "ALTER SYSTEM RESET pgops.etcd_cacert" \
           "ALTER SYSTEM SET pgops.etcd_endpoints = ''"; do
    sql $C postgres "$s" >/dev/null
  done
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null

  # --- privileges -------------------------------------------------------------------------------
  sql $C postgres "CREATE ROLE etcd_mon LOGIN IN ROLE pg_monitor; CREATE ROLE etcd_nobody LOGIN" >/dev/null
  check_eq "pg_monitor reads etcd_status" "$(sql $C postgres "SET ROLE etcd_mon; SELECT count(*) FROM pgops.etcd_status")" 1
  check_match "PUBLIC cannot push" "$(sql $C postgres "SET ROLE etcd_nobody; SELECT pgops.etcd_push_now()" 2>&1)" "permission denied"
  check_match "pg_monitor cannot push either" "$(sql $C postgres "SET ROLE etcd_mon; SELECT pgops.etcd_push_now()" 2>&1)" "permission denied"
}
