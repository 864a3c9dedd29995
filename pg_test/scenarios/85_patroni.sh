# Under Patroni (issue 15): three members with pgops preloaded on loopback ports, a loopback etcd,
# Patroni from PyPI in a virtualenv (pg_test/setup.sh). pgops reads Patroni's keys (member names
# become instance names; the lock-out guard knows every member's address), refuses a file that
# locks Patroni out, re-renders pg_hba.conf on both sides of a switchover and a failover (kill -9
# of the primary's postmaster; the old primary comes back through pg_rewind, over the very
# connection the guard kept), after a reinit, sees drift on primary and replica alike, refuses a
# file Patroni owns, publishes documents that follow the roles, runs freeze once per slot on the
# primary only, and writes less to etcd than Patroni itself on an idle cluster.

PATRONI_BIN=${PGOPS_PATRONI_DIR:-$( is_root && echo /opt/pgops/patroni || echo "$HOME/.pgops/patroni")}/bin

pat_ctl() { as_pg "$PATRONI_BIN/patronictl" -c "${CL_DIR[pat1]}/patroni.yml" "$@"; }

# pat_write NAME — the member's Patroni configuration.
pat_write() {
  local m=$1 base=${CL_DIR[$1]}
  as_pg tee "$base/patroni.yml" >/dev/null <<EOF
scope: pg-pat
namespace: /pg/
name: pg-pat-${m#pat}
restapi: {listen: 127.0.0.1:${PAT_API[$m]}, connect_address: 127.0.0.1:${PAT_API[$m]}}
etcd3: {hosts: "127.0.0.1:${ETCD_URL[pe]##*:}"}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 5
    primary_start_timeout: 0
    postgresql:
      use_pg_rewind: true
      parameters: {wal_level: replica, hot_standby: "on", wal_log_hints: "on", max_wal_senders: 10, max_replication_slots: 10}
  initdb: [{encoding: UTF8}, {locale: C}, {auth-local: trust}, {auth-host: scram-sha-256}]
postgresql:
  listen: 127.0.0.1:${CL_PORT[$m]}
  connect_address: 127.0.0.1:${CL_PORT[$m]}
  data_dir: $base/data
  bin_dir: $(pg_bindir "${CL_VER[$m]}")
  authentication:
    superuser: {username: postgres, password: pat-su-secret}
    replication: {username: replicator, password: pat-repl-secret}
  # A spread checkpoint paces the primary's writes over minutes: replicas are cloned at once.
  basebackup: [{checkpoint: fast}]
  parameters:
    unix_socket_directories: $base
    fsync: "off"
    logging_collector: "on"
    log_directory: $base/log
    log_filename: postgresql.log
    log_line_prefix: "%m [%p] %b "
    shared_preload_libraries: pgops
    pgops.etcd_endpoints: ${ETCD_URL[pe]}
    pgops.etcd_interval: 1
    pgops.etcd_ttl: 5
    pgops.etcd_timeout: 500
    pgops.naptime: 1000
EOF
  # SSL on where the build has it, as Pigsty's rules (hostssl lines) need; the certificate lives
  # outside the data directory.
  if [ "$PAT_SSL" = 1 ]; then
    printf '    ssl: "on"\n    ssl_cert_file: %s/server.crt\n    ssl_key_file: %s/server.key\n' "$base" "$base" \
      | as_pg tee -a "$base/patroni.yml" >/dev/null
  fi
}

pat_start() { # pat_start NAME — Patroni for member NAME, in the background
  local m=$1
  as_pg bash -c "nohup '$PATRONI_BIN/patroni' '${CL_DIR[$m]}/patroni.yml' >>'${CL_DIR[$m]}/patroni.out' 2>&1 & echo \$!" >"${CL_DIR[$m]}/patroni.pid"
}

pat_stop_all() {
  local m
  for m in pat1 pat2 pat3; do
    [ -f "${CL_DIR[$m]:-/nonexistent}/patroni.pid" ] && kill -9 "$(cat "${CL_DIR[$m]}/patroni.pid")" 2>/dev/null
  done
  return 0
}

# pat_role NAME — Patroni's view of the member: its role (leader, replica, sync_standby...) and state.
pat_members() { pat_ctl list -f json 2>/dev/null; }
pat_role() {
  pat_members | python3 -c "import json,sys; m=[x for x in json.load(sys.stdin) if x['Member']=='pg-pat-${1#pat}']; print((m[0]['Role']+'/'+m[0]['State']) if m else '')" 2>/dev/null
}
pat_leader() {
  pat_members | python3 -c "import json,sys; print(''.join('pat'+x['Member'].rsplit('-',1)[1] for x in json.load(sys.stdin) if x['Role']=='Leader' and x['State']=='running'))" 2>/dev/null
}
is_primary() { [ "$(sql "$1" postgres 'SELECT pg_is_in_recovery()')" = f ]; }
leader_is_not() { local l; l=$(pat_leader); [ -n "$l" ] && [ "$l" != "$1" ]; }
freeze_ran() { [ "$(sql "$1" postgres "SELECT count(*) > 0 FROM pgops.freeze_run WHERE job = 'pat' AND status = 'succeeded'")" = t ]; }
owner_is() { [ "$(sql "$1" postgres 'SELECT owner FROM pgops.hba_drift')" = "$2" ]; }
is_running_replica() { [[ "$(pat_role "$1")" =~ ^(Replica|Sync\ Standby)/streaming$ ]]; }
drift() { sql "$1" postgres "SELECT state || '|' || coalesce(rendered_role, '') || '|' || drifted FROM pgops.hba_drift"; }
drift_is() { [ "$(drift "$1")" = "$2" ]; }
doc_role() { etcdctl_ pe get "/pg/pg-pat/pgops/members/pg-pat-${1#pat}" --print-value-only 2>/dev/null \
  | python3 -c "import json,sys; print(json.load(sys.stdin)['role'])" 2>/dev/null; }
doc_role_is() { [ "$(doc_role "$1")" = "$2" ]; }
doc_hba() { etcdctl_ pe get "/pg/pg-pat/pgops/members/pg-pat-${1#pat}" --print-value-only 2>/dev/null \
  | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['hba_state'], d['hba_drift'])" 2>/dev/null; }
doc_hba_is() { [ "$(doc_hba "$1")" = "$2" ]; }

scenario_main() {
  local v=$1 m p l r other t0 out
  [ -x "$PATRONI_BIN/patroni" ] || { not_ok "Patroni is installed in $PATRONI_BIN (pg_test/setup.sh)"; return 1; }
  etcd_start pe || { not_ok "etcd starts"; return 1; }
  declare -gA PAT_API=()
  PAT_SSL=0; ssl_build "$v" && PAT_SSL=1
  CLEANUP_CMDS+=(pat_stop_all)
  for m in pat1 pat2 pat3; do
    local base; base=$(mktemp -d "/tmp/pgops-$m.XXXXXX"); chmod 0755 "$base"; is_root && chown postgres: "$base"
    CL_DIR[$m]=$base; CL_PORT[$m]=$(free_port); CL_VER[$m]=$v; PAT_API[$m]=$(free_port)
    as_pg openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
      -keyout "$base/server.key" -out "$base/server.crt" >/dev/null 2>&1 && as_pg chmod 600 "$base/server.key"
    pat_write $m
  done
  pat_start pat1
  wait_until 60 sql pat1 postgres "SELECT NOT pg_is_in_recovery()" || { not_ok "Patroni bootstraps the first member" "$(tail -20 "${CL_DIR[pat1]}/patroni.out")"; return 1; }
  pat_start pat2; pat_start pat3
  if wait_until 90 is_running_replica pat2 && wait_until 90 is_running_replica pat3; then
    ok "three members: a leader and two streaming replicas ($(pat_role pat1), $(pat_role pat2), $(pat_role pat3))"
  else
    not_ok "three members run" "$(pat_ctl list 2>&1)"; return 1
  fi
  sql pat1 postgres "CREATE EXTENSION pgops" >/dev/null

  # --- names: the Patroni member names, no collision, documents under them -----------------------
  wait_until 10 doc_role_is pat3 replica
  check_eq "each member publishes under its Patroni member name (no pgops.instance_name set)" \
    "$(etcdctl_ pe get /pg/pg-pat/pgops/members/ --prefix --keys-only | grep -v '^$' | sort | tr '\n' ' ')" \
    "/pg/pg-pat/pgops/members/pg-pat-1 /pg/pg-pat/pgops/members/pg-pat-2 /pg/pg-pat/pgops/members/pg-pat-3 "
  check_eq "pgops read Patroni's members and leader, and which member it is" \
    "$(python3 -c "import json; v=json.load(open('${CL_DIR[pat2]}/data/pg_stat_tmp/pgops.patroni.json')); print(len(v['members']), v['leader'], v['me'], v['pg_hba_in_config'])")" \
    "3 pg-pat-1 pg-pat-2 False"
  check "no member logged a key conflict" bash -c "! grep -h 'held by another instance' ${CL_DIR[pat1]}/log/postgresql.log ${CL_DIR[pat2]}/log/postgresql.log ${CL_DIR[pat3]}/log/postgresql.log"

  # --- never lock Patroni out ---------------------------------------------------------------------
  sql pat1 postgres "SELECT pgops.load_pigsty_hba_defaults()" >/dev/null
  # A build without SSL rejects a file with hostssl lines: Pigsty's SSL-only rules go there.
  [ "$PAT_SSL" = 1 ] || sql pat1 postgres "DELETE FROM pgops.hba_rule WHERE auth IN ('ssl', 'ssl-md5', 'ssl-sha', 'cert')" >/dev/null
  sql pat1 postgres "INSERT INTO pgops.hba_rule (title, \"user\", db, addr, auth, \"order\") VALUES ('local trust for the test', 'all', 'all', 'local', 'trust', 50);
    INSERT INTO pgops.hba_rule (title, rules, role, \"order\") VALUES ('only on replicas', '{host all all 127.0.0.50/32 trust}', 'replica', 60)" >/dev/null
  out=$(sql pat1 postgres "SELECT * FROM pgops.apply_hba()" 2>&1)
  check_match "Pigsty's defaults without a TCP line for Patroni's superuser are refused on the leader" "$out" \
    'locks Patroni out: superuser/rewind as "postgres" to "postgres" from member pg-pat-[123] \(127.0.0.1\)'
  check_eq "hba_lint names Patroni's denied connection" \
    "$(sql pat1 postgres "SELECT DISTINCT severity || '|' || finding FROM pgops.hba_lint WHERE finding LIKE 'patroni%'")" "error|patroni_lockout"
  check_eq "the refused file was not written" "$(grep -c pgops-stamp "${CL_DIR[pat1]}/data/pg_hba.conf")" 0
  sql pat1 postgres "INSERT INTO pgops.hba_rule (title, \"user\", db, addr, auth, \"order\")
    VALUES ('patroni superuser from the members', '\${dbsu}', 'all', 'localhost', 'pwd', 150)" >/dev/null
  check_eq "with the README's line for Patroni, hba_lint has no Patroni finding" \
    "$(sql pat1 postgres "SELECT count(*) FROM pgops.hba_lint WHERE finding LIKE 'patroni%'")" 0
  check_eq "the leader applies it" "$(sql pat1 postgres "SELECT status FROM pgops.apply_hba()")" "applied and reloaded"
  for m in pat2 pat3; do
    wait_until 10 sql $m postgres "SELECT 1 FROM pgops.hba_rule WHERE title = 'patroni superuser from the members'"
    check_eq "replica $m applies its own file (role replica)" \
      "$(sql $m postgres "SELECT status FROM pgops.apply_hba()")|$(drift $m)" "applied and reloaded|current|replica|false"
  done
  check_eq "the replica-only line is on the replicas, not on the leader" \
    "$(grep -c '^host.*127.0.0.50/32' "${CL_DIR[pat1]}/data/pg_hba.conf")$(grep -c '^host.*127.0.0.50/32' "${CL_DIR[pat2]}/data/pg_hba.conf")" "01"

  # --- roles applied on the primary reach the replicas --------------------------------------------
  sql pat1 postgres "SELECT pgops.load_roles('[{\"name\": \"dbuser_pat\", \"login\": true, \"comment\": \"from the leader\"}]'::jsonb)" >/dev/null
  sql pat1 postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  wait_until 10 sql pat3 postgres "SELECT 1 FROM pg_roles WHERE rolname = 'dbuser_pat'" \
    && ok "a role applied on the leader reaches the replicas" || not_ok "a role applied on the leader reaches the replicas"
  check_match "the replica refuses load_roles() cleanly" \
    "$(sql pat2 postgres "SELECT pgops.load_roles('[]'::jsonb)" 2>&1)" "cannot run on a standby"

  # --- a freeze job every minute, on whichever member is primary ----------------------------------
  sql pat1 postgres "INSERT INTO pgops.freeze_job (name, database, schedule, min_age) VALUES ('pat', 'postgres', '* * * * *', 0)" >/dev/null

  # --- switchover: both sides re-rendered by their launchers ---------------------------------------
  t0=$(date +%s.%N)
  pat_ctl switchover pg-pat --leader pg-pat-1 --candidate pg-pat-2 --force >/dev/null 2>&1
  if wait_until 60 is_primary pat2 && wait_until 60 is_running_replica pat1; then
    ok "switchover to pg-pat-2"
  else
    not_ok "switchover to pg-pat-2" "$(pat_ctl list 2>&1)"
  fi
  wait_until 10 drift_is pat2 "current|primary|false"
  wait_until 10 drift_is pat1 "current|replica|false"
  check_eq "after the switchover the new primary's file is rendered for a primary, the new replica's for a replica" \
    "$(drift pat2) $(drift pat1)" "current|primary|false current|replica|false"
  check_eq "the replica-only line moved with the role" \
    "$(grep -c '^host.*127.0.0.50/32' "${CL_DIR[pat1]}/data/pg_hba.conf")$(grep -c '^host.*127.0.0.50/32' "${CL_DIR[pat2]}/data/pg_hba.conf")" "10"
  check_eq "the new primary recorded why its launcher wrote the file" \
    "$(sql pat2 postgres "SELECT instance || '|' || role || '|' || (reason LIKE 'this instance is primary now%') FROM pgops.hba_apply ORDER BY id DESC LIMIT 1")" \
    "pg-pat-2|primary|true"
  wait_until 3 doc_role_is pat2 primary; wait_until 3 doc_role_is pat1 replica
  check_eq "the member documents follow within two intervals of the switchover" "$(doc_role pat1) $(doc_role pat2) $(doc_role pat3)" "replica primary replica"

  # --- drift on both sides after a hand edit --------------------------------------------------------
  for m in pat2 pat1; do
    echo "host all all 0.0.0.0/0 trust" | as_pg tee -a "${CL_DIR[$m]}/data/pg_hba.conf" >/dev/null
  done
  check_eq "a hand edit is drift on the primary and on the replica" "$(drift pat2) $(drift pat1)" "edited|primary|true edited|replica|true"
  wait_until 5 doc_hba_is pat1 "edited True"
  check_eq "the replica's etcd document says its file drifted" "$(doc_hba pat1)" "edited True"
  check_match "the security audit fails HBA-DRIFT on the replica" \
    "$(sql pat1 postgres "SELECT status || '|' || detail FROM pgops.security_audit WHERE check_id = 'HBA-DRIFT'")" "^fail\|edited: "
  sleep 3
  check "the launcher leaves a hand-edited file alone" grep -q '^host all all 0.0.0.0/0 trust' "${CL_DIR[pat1]}/data/pg_hba.conf"
  for m in pat2 pat1; do sql $m postgres "SELECT status FROM pgops.apply_hba()" >/dev/null; done
  check_eq "apply_hba() restores pgops' file on both" "$(drift pat2) $(drift pat1)" "current|primary|false current|replica|false"

  # --- failover: kill -9 of the primary's postmaster ------------------------------------------------
  kill -9 "$(head -1 "${CL_DIR[pat2]}/data/postmaster.pid")"
  if wait_until 90 leader_is_not pat2; then
    ok "failover after kill -9 of the primary's postmaster: $(pat_leader) leads"
  else
    not_ok "failover" "$(pat_ctl list 2>&1)"
  fi
  l=$(pat_leader); other=$([ "$l" = pat1 ] && echo pat3 || echo pat1)
  wait_until 10 drift_is $l "current|primary|false"
  check_eq "the promoted member's file is re-rendered for a primary" "$(drift $l)" "current|primary|false"
  if wait_until 120 is_running_replica pat2; then
    ok "the old primary rejoins as a replica (pg_rewind over Patroni's superuser connection)"
  else
    not_ok "the old primary rejoins" "$(pat_ctl list 2>&1; tail -20 "${CL_DIR[pat2]}/patroni.out")"
  fi
  wait_until 10 drift_is pat2 "current|replica|false"
  check_eq "the old primary's file is re-rendered for a replica" "$(drift pat2)" "current|replica|false"

  # --- reinit: the leader's file and backups arrive with pg_basebackup -------------------------------
  pat_ctl reinit pg-pat pg-pat-2 --force --wait >/dev/null 2>&1
  wait_until 120 is_running_replica pat2
  wait_until 15 drift_is pat2 "current|replica|false"
  check_eq "after a reinit the copied file is re-rendered for the member" \
    "$(sql pat2 postgres "SELECT state || '|' || rendered_for || '|' || rendered_role || '|' || foreign_backups FROM pgops.hba_drift")" \
    "current|pg-pat-2|replica|0"
  check_eq "no other member's backup is left in its data directory" \
    "$(ls "${CL_DIR[pat2]}/data" | grep '^pg_hba.conf.pgops-' | grep -vc -- '-pg-pat-2$')" 0

  # --- Patroni never locked out ---------------------------------------------------------------------
  check "no 'no pg_hba.conf entry' for Patroni's users in any member's log" bash -c \
    "! grep -hE 'no pg_hba.conf entry for .*user \"(postgres|replicator)\"' ${CL_DIR[pat1]}/log/postgresql.log ${CL_DIR[pat2]}/log/postgresql.log ${CL_DIR[pat3]}/log/postgresql.log"
  # A member that asks the leader while it is killed gets "connection refused" (nothing listens):
  # that is the failover above, not pg_hba.conf. Any other failure to reach it is.
  check "Patroni never failed to reach the leader (but while it was down)" bash -c \
    "! grep -h -A30 'Exception when working with leader' ${CL_DIR[pat1]}/patroni.out ${CL_DIR[pat2]}/patroni.out ${CL_DIR[pat3]}/patroni.out | grep 'OperationalError' | grep -v 'Connection refused'"

  # --- polite etcd traffic: idle writes, pgops against Patroni ---------------------------------------
  # Idle: no client writes; the last statement's WAL and the replicas' lag reports settle first.
  # (The freeze job has run at least once by now, or runs within its next slot.)
  wait_until 70 freeze_ran $l
  sql $l postgres "UPDATE pgops.freeze_job SET enabled = false WHERE name = 'pat'" >/dev/null
  sleep 12
  local keys before after secs=30
  keys() { etcdctl_ pe get /pg/pg-pat/ --prefix -w json | python3 -c "
import json,sys,base64
d=json.load(sys.stdin); p=0; o=0
for kv in d.get('kvs',[]):
    k=base64.b64decode(kv['key']).decode()
    if '/pgops/' in k: p+=int(kv.get('version',0))
    else: o+=int(kv.get('version',0))
print(p, o, d['header']['revision'])"; }
  local docs0 docs1
  docs0=$(etcdctl_ pe get /pg/pg-pat/pgops/members/ --prefix --print-value-only)
  before=$(keys); sleep $secs; after=$(keys)
  docs1=$(etcdctl_ pe get /pg/pg-pat/pgops/members/ --prefix --print-value-only)
  read -r p0 o0 r0 <<<"$before"; read -r p1 o1 r1 <<<"$after"
  local pw=$((p1 - p0)) ow=$((o1 - o0))
  if [ "$pw" -le "$ow" ]; then
    ok "idle for ${secs} s: pgops wrote its 3 documents $pw time(s), Patroni its keys $ow time(s) (revisions $((r1 - r0)))"
  else
    not_ok "idle for ${secs} s: pgops wrote its 3 documents $pw time(s), Patroni its keys $ow time(s)" "changed: $(python3 -c "
import json,sys
a=[json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]; b=[json.loads(l) for l in sys.argv[2].splitlines() if l.strip()]
for x,y in zip(a,b):
    print(x['instance'], {k:(x.get(k),y.get(k)) for k in set(x)|set(y) if x.get(k)!=y.get(k)})" "$docs0" "$docs1")"
  fi
  echo "  figure  idle etcd writes per minute: pgops $((pw * 60 / secs)) (3 members), Patroni $((ow * 60 / secs)) (loop_wait 1 s)"
  # Light load for comparison (a figure, not a check): one small committed write per second.
  sql $l postgres "CREATE TABLE public.pat_load (x int)" >/dev/null
  before=$(keys)
  for _ in $(seq 1 $secs); do sql $l postgres "INSERT INTO public.pat_load VALUES (1)" >/dev/null; sleep 1; done
  after=$(keys)
  read -r p0 o0 r0 <<<"$before"; read -r p1 o1 r1 <<<"$after"
  echo "  figure  etcd writes per minute under one write per second: pgops $(( (p1 - p0) * 60 / secs )) (3 members, interval 1 s), Patroni $(( (o1 - o0) * 60 / secs )) (loop_wait 1 s)"

  # --- freeze: once per slot, on the primary only -----------------------------------------------------
  check_eq "the freeze job never ran twice in one minute's slot across switchover and failover" \
    "$(sql $l postgres "SELECT count(*) FROM (SELECT date_trunc('minute', requested_at) FROM pgops.freeze_run WHERE job = 'pat' GROUP BY 1 HAVING count(*) > 1) d")" 0
  check_match "and it ran" "$(sql $l postgres "SELECT count(*) FROM pgops.freeze_run WHERE job = 'pat'")" '^[1-9]'

  # --- Patroni owns the file: pgops says so and refuses ------------------------------------------------
  printf 'postgresql:\n  pg_hba:\n  - local all all trust\n  - host all all 127.0.0.1/32 scram-sha-256\n  - host replication all 127.0.0.1/32 scram-sha-256\n' \
    | as_pg tee "${CL_DIR[pat1]}/hba-patch.yml" >/dev/null
  pat_ctl edit-config pg-pat --apply "${CL_DIR[pat1]}/hba-patch.yml" --force >/dev/null 2>&1
  wait_until 20 bash -c "head -1 '${CL_DIR[$l]}/data/pg_hba.conf' | grep -q 'Do not edit'"
  wait_until 10 owner_is $l patroni
  check_eq "with postgresql.pg_hba in Patroni's configuration, hba_drift says Patroni owns the file (drift: pgops wrote it before)" \
    "$(sql $l postgres "SELECT state || '|' || owner || '|' || drifted FROM pgops.hba_drift")" "patroni|patroni|true"
  check_match "apply_hba() refuses to write it, and says why" \
    "$(sql $l postgres "SELECT * FROM pgops.apply_hba()" 2>&1)" "pgops does not write .*pg_hba.conf: (Patroni wrote|Patroni's dynamic configuration)"
  check_eq "hba_lint warns" "$(sql $l postgres "SELECT count(*) FROM pgops.hba_lint WHERE finding = 'patroni_owns_file'")" 1
  check "the launcher leaves Patroni's file alone" bash -c "sleep 3; head -1 '${CL_DIR[$l]}/data/pg_hba.conf' | grep -q 'Do not edit'"
  pat_stop_all
}
