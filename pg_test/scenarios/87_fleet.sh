# A fleet declared once: a 3-member etcd and six PostgreSQL instances (three clusters, each a
# primary with a streaming replica). One signed document published with pgops-fleet: every
# primary loads its cluster's share and reconciles, replicas report and do not load; forged,
# unsigned, untrusted and replayed documents are refused with nothing changed; a publish while
# etcd has lost its quorum writes nothing and the fleet converges once it is back; a switchover's
# new primary carries on; drift by hand is reconciled per policy, risky rows held and shown;
# a declaration that conflicts with a local row is reported, the local row kept.

fleet_bin() { echo "$PGOPS_ROOT/target/debug/pgops-fleet"; }
fleet_dir_remove() { rm -rf "$FLEET_DIR"; }

scenario_main() {
  local v=$1 out c i dir key pk gen
  if [ ! -x "$(fleet_bin)" ]; then (cd "$PGOPS_ROOT" && cargo build -q -p pgops-fleet) || { not_ok "pgops-fleet builds"; return 1; }; fi
  etcd_start fx 3 || { not_ok "a 3-member etcd starts"; return 1; }
  local urls=${ETCD_URL[fx]}
  dir=$(mktemp -d /tmp/pgops-fleet.XXXXXX); FLEET_DIR=$dir; CLEANUP_CMDS+=(fleet_dir_remove)
  key=$dir/fleet.key
  pk=$("$(fleet_bin)" keygen --out "$key")
  check_eq "keygen: the private key is the owner's alone" "$(stat -c %a "$key")" 600
  fleet() { "$(fleet_bin)" "$@" --endpoints "$urls"; }
  status_wait() { # status_wait MEMBERS SECONDS — every instance converged on the newest generation
    fleet status --fleet prod --wait "$2" --members "$1" --quiet
  }

  # --- six instances: pg-a, pg-b, pg-c, a primary and a replica each ----------------------------
  for c in a b c; do
    cluster_init "p$c" "$v" "shared_preload_libraries = 'pgops'" "pgops.naptime = '200ms'" "wal_level = replica" \
      "cluster_name = 'pg-$c'" "pgops.instance_name = 'pg-$c-1'" "pgops.etcd_endpoints = '$urls'" \
      "pgops.etcd_interval = '1s'" "pgops.etcd_ttl = '5s'" "pgops.etcd_timeout = '500ms'" "pgops.fleet_name = 'prod'" "pgops.fleet_trusted_keys = '$pk'" \
      "pgops.reconcile_roles = 'safe'" "pgops.reconcile_databases = 'safe'" "pgops.reconcile_hba = 'all'" \
      "pgops.reconcile_interval = '2s'" "password_encryption = 'scram-sha-256'" || { not_ok "initdb p$c"; return 1; }
    cluster_start "p$c" || { not_ok "p$c starts"; return 1; }
    sql "p$c" postgres "CREATE EXTENSION pgops" >/dev/null
    cluster_standby "r$c" "p$c" "pgops.instance_name = 'pg-$c-2'" || { not_ok "r$c starts"; return 1; }
  done
  ok "three clusters of a primary and a streaming replica each"

  # --- the document: a Pigsty inventory, for all clusters and per cluster -------------------------
  cat > "$dir/fleet.yml" <<'YAML'
all:
  vars:
    patroni_password: Patroni.Secret.9
    pg_admin_password: DBUser.DBA.Fleet
    pg_users:
      - { name: dbuser_fleet, password: Fleet.Secret.1, roles: [ dbrole_readwrite ], comment: declared once for the fleet g1 }
    pg_default_hba_rules:
      - { user: '${dbsu}', db: all, addr: local, auth: trust, title: dbsu local, order: 100 }
      - { user: '${dbsu}', db: replication, addr: local, auth: trust, title: dbsu local replication, order: 150 }
      - { user: all, db: all, addr: local, auth: trust, title: local sockets for the tests, order: 200 }
  children:
    pg-a:
      hosts: { 127.0.0.11: { pg_seq: 1, pg_role: primary }, 127.0.0.12: { pg_seq: 2, pg_role: replica } }
      vars: { pg_cluster: pg-a, pg_databases: [ { name: app_a, owner: dbuser_fleet, comment: only in pg-a } ] }
    pg-b:
      hosts: { 127.0.0.21: { pg_seq: 1, pg_role: primary }, 127.0.0.22: { pg_seq: 2, pg_role: replica } }
      vars: { pg_cluster: pg-b }
    pg-c:
      hosts: { 127.0.0.31: { pg_seq: 1, pg_role: primary }, 127.0.0.32: { pg_seq: 2, pg_role: replica } }
      vars:
        pg_cluster: pg-c
        pg_users: [ { name: dbuser_c_only, password: C.Secret.1, comment: pg-c overrides the fleet's users } ]
YAML
  out=$(fleet publish --key "$key" --fleet prod "$dir/fleet.yml" 2>&1)
  check_match "publish signs generation 1 and writes it" "$out" 'published fleet prod generation 1 at /pg/fleet/prod'
  check_match "… with plaintext passwords replaced by SCRAM verifiers" "$out" '[0-9]+ plaintext password\(s\) replaced'
  check_eq "etcd holds no plaintext password, nor any other secret of the inventory" \
    "$(etcdctl_ fx get /pg/fleet/prod --print-value-only | grep -c 'Fleet.Secret.1\|C.Secret.1\|Patroni.Secret.9\|DBUser.DBA')" 0
  if status_wait 6 120; then ok "every instance converged on generation 1 (primaries loaded and reconciled, replicas replicated)"
  else not_ok "fleet converged" "$(fleet status --fleet prod)"; fi
  check_eq "the fleet's user exists in pg-a and pg-b, with its verifier" \
    "$(sql pa postgres "SELECT rolpassword LIKE 'SCRAM-SHA-256\$%' FROM pg_authid WHERE rolname = 'dbuser_fleet'")/$(sql pb postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'dbuser_fleet'")" "t/1"
  check_eq "pg-c's own list replaces the fleet's (Pigsty's scoping)" \
    "$(sql pc postgres "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('dbuser_fleet', 'dbuser_c_only')")" dbuser_c_only
  check_eq "app_a exists in pg-a only, owned by dbuser_fleet" \
    "$(sql pa postgres "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app_a'")/$(sql pb postgres "SELECT count(*) FROM pg_database WHERE datname = 'app_a'")" "dbuser_fleet/0"
  wait_sql ra postgres "SELECT count(*) = 1 FROM pg_database WHERE datname = 'app_a'" 20 && ok "the replicas have it by replication" || not_ok "app_a replicated"
  check_eq "… and loaded nothing themselves" "$(cat "${CL_DIR[ra]}/server.log" "${CL_DIR[rb]}/server.log" "${CL_DIR[rc]}/server.log" | grep -ac 'pgops fleet: loaded')" 0
  check_eq "each primary logged its load once" \
    "$(for c in a b c; do grep -ac 'pgops fleet: loaded generation 1 of fleet prod' "${CL_DIR[p$c]}/server.log"; done | tr '\n' ' ')" "1 1 1 "
  check_eq "the rows the fleet owns are marked (and pg_hba.conf rules carry fleet:prod)" \
    "$(sql pa postgres "SELECT count(*) FILTER (WHERE kind = 'role' AND name = 'dbuser_fleet') || '/' || (SELECT count(*) FROM pgops.hba_rule WHERE source = 'fleet:prod') FROM pgops.fleet_row")" "1/3"
  # (as rb's etcd worker last read it: within an interval)
  wait_sql rb postgres "SELECT string_agg(cluster || '/' || instance || '/' || role || '/' || generation || '/' || state, ' ' ORDER BY instance)
      = 'pg-a/pg-a-1/primary/1/converged pg-a/pg-a-2/replica/1/converged pg-b/pg-b-1/primary/1/converged pg-b/pg-b-2/replica/1/converged pg-c/pg-c-1/primary/1/converged pg-c/pg-c-2/replica/1/converged'
      FROM pgops.fleet_status" 20 && ok "pgops.fleet_status on any member (here a replica) shows the whole fleet" \
    || not_ok "fleet_status on a replica" "$(sql rb postgres "SELECT * FROM pgops.fleet_status")"
  check_eq "no reconcile failed on the way" \
    "$(for c in a b c; do sql "p$c" postgres "SELECT count(*) FROM pgops.reconcile_run WHERE state = 'failed'"; done | tr -d '\n')" 000
  check_match "pgops-fleet status says the same" "$(fleet status --fleet prod)" '6 of 6 instance\(s\) converged on generation 1'

  # --- refused: forged, unsigned, untrusted, replayed; nothing changes ----------------------------
  local good roles_before; good=$(etcdctl_ fx get /pg/fleet/prod --print-value-only)
  roles_before=$(sql pb postgres "SELECT count(*) FROM pg_roles")
  refused() { # refused WHAT DOCUMENT REGEX
    etcdctl_ fx put /pg/fleet/prod "$2" >/dev/null
    if wait_sql pb postgres "SELECT count(*) = 3 FROM pgops.fleet_status WHERE state = 'refused' AND role = 'primary' AND last_error ~ '$3'" 30; then
      check_match "$1: refused by every primary, saying why" \
        "$(sql pb postgres "SELECT last_error FROM pgops.fleet_status WHERE instance = 'pg-b-1'")" "$3"
    else
      not_ok "$1: refused" "$(fleet status --fleet prod)"
    fi
    check_eq "$1: nothing changed (generation 1 still loaded, the same roles)" \
      "$(sql pb postgres "SELECT generation FROM pgops.fleet_state")/$(sql pb postgres "SELECT count(*) FROM pg_roles")" "1/$roles_before"
  }
  local forged; forged=$(python3 -c 'import json,sys; e=json.loads(sys.argv[1]); p=json.loads(e["payload"]); p["generation"]=7; p["clusters"]["pg-b"]["roles"].append({"name": "intruder", "superuser": True}); e["payload"]=json.dumps(p); print(json.dumps(e))' "$good")
  refused "a forged document (payload changed after signing)" "$forged" 'signature does not verify'
  refused "an unsigned document" "$(python3 -c 'import json,sys; e=json.loads(sys.argv[1]); del e["signature"]; print(json.dumps(e))' "$good")" 'unsigned'
  "$(fleet_bin)" keygen --out "$dir/evil.key" >/dev/null
  refused "a document signed by a key nobody trusts" "$("$(fleet_bin)" sign --key "$dir/evil.key" --fleet prod --generation 50 "$dir/fleet.yml" 2>/dev/null)" 'not in pgops.fleet_trusted_keys'
  refused "malformed JSON" '{"payload": ' 'malformed'
  check_eq "no intruder anywhere" "$(for c in a b c; do sql "p$c" postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'intruder'"; done | tr -d '\n')" 000
  # A legitimate generation 2, then generation 1 replayed.
  sed -i 's/for the fleet g1/for the fleet g2/' "$dir/fleet.yml"
  out=$(fleet publish --key "$key" --fleet prod "$dir/fleet.yml" 2>&1)
  gen=$(grep -o 'generation [0-9]*' <<<"$out" | awk '{print $2}')
  check_match "after a bad document, publish takes the next generation" "$out" 'published fleet prod generation [0-9]+'
  status_wait 6 60 && ok "the fleet converged on generation $gen" || not_ok "converged on $gen" "$(fleet status --fleet prod)"
  roles_before=$(sql pb postgres "SELECT count(*) FROM pg_roles")
  etcdctl_ fx put /pg/fleet/prod "$good" >/dev/null
  if wait_sql pb postgres "SELECT count(*) = 3 FROM pgops.fleet_status WHERE state = 'refused' AND role = 'primary'" 30; then
    check_match "generation 1 replayed: refused as older than the one loaded" \
      "$(sql pb postgres "SELECT last_error FROM pgops.fleet_status WHERE instance = 'pg-a-1'")" "generation 1 is not newer than generation $gen"
  else not_ok "replay refused" "$(fleet status --fleet prod)"; fi
  check_eq "… and nothing changed" "$(sql pb postgres "SELECT generation FROM pgops.fleet_state")/$(sql pb postgres "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'dbuser_fleet'")" \
    "$gen/declared once for the fleet g2"

  # --- pgops.fleet_min_generation: a member that joins never takes an older document -------------
  cluster_conf pc "pgops.fleet_min_generation = 1000"; sql pc postgres "SELECT pg_reload_conf()" >/dev/null
  out=$(fleet publish --key "$key" --fleet prod "$dir/fleet.yml" 2>&1)
  gen=$(grep -o 'generation [0-9]*' <<<"$out" | awk '{print $2}')
  if wait_sql pb postgres "SELECT state = 'refused' AND last_error ~ 'not newer than generation 999' FROM pgops.fleet_status WHERE instance = 'pg-c-1'" 30; then
    ok "with pgops.fleet_min_generation = 1000 an older generation is refused"
  else not_ok "min generation" "$(fleet status --fleet prod)"; fi
  cluster_conf pc "pgops.fleet_min_generation = 0"; sql pc postgres "SELECT pg_reload_conf()" >/dev/null
  status_wait 6 60 && ok "back at 0 it loads and the fleet converges again" || not_ok "converged after min generation" "$(fleet status --fleet prod)"

  # --- etcd loses its quorum during a publish: nothing written, nothing half-loaded ---------------
  sed -i 's/for the fleet g2/for the fleet g3/' "$dir/fleet.yml"
  etcd_kill fx1; etcd_kill fx2
  out=$("$(fleet_bin)" publish --key "$key" --fleet prod "$dir/fleet.yml" --endpoints "$urls" --timeout-s 2 2>&1) && not_ok "publish without a quorum fails" "$out" || ok "publish without a quorum fails and says so"
  etcd_restart fx1; etcd_restart fx2
  check_eq "nothing was loaded meanwhile" "$(sql pa postgres "SELECT generation FROM pgops.fleet_state")" "$gen"
  out=$(fleet publish --key "$key" --fleet prod "$dir/fleet.yml" 2>&1)
  gen=$(grep -o 'generation [0-9]*' <<<"$out" | awk '{print $2}')
  status_wait 6 90 && ok "with the quorum back, a publish converges the fleet (generation $gen)" || not_ok "converged after etcd came back" "$(fleet status --fleet prod)"

  # --- drift by hand: reconciled per policy; a revoke is held and shown ----------------------------
  sql pb postgres "REVOKE dbrole_readwrite FROM dbuser_fleet" >/dev/null
  wait_sql pb postgres "SELECT pg_has_role('dbuser_fleet', 'dbrole_readwrite', 'MEMBER')" 30 \
    && ok "a membership revoked by hand is granted back (safe)" || not_ok "membership restored"
  sql pb postgres "GRANT pg_monitor TO dbuser_fleet" >/dev/null
  if wait_sql pb postgres "SELECT state = 'held' AND held >= 1 FROM pgops.fleet_status WHERE instance = 'pg-b-1'" 30; then
    ok "a membership granted by hand is a revoke: held under safe, and the fleet shows pg-b-1 held"
  else not_ok "held in the fleet status" "$(fleet status --fleet prod)"; fi
  check_match "pgops-fleet status shows it" "$(fleet status --fleet prod)" 'pg-b-1 +primary +[0-9]+ +[0-9]+ held'
  sql pb postgres "REVOKE pg_monitor FROM dbuser_fleet" >/dev/null

  # --- a conflict with a row declared locally: kept, reported ------------------------------------
  sql pc postgres "INSERT INTO pgops.role (name, login, comment) VALUES ('dbuser_c_local', true, 'declared here')" >/dev/null
  python3 - "$dir/fleet.yml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read().replace("pg_users: [ { name: dbuser_c_only,", "pg_users: [ { name: dbuser_c_local, comment: the fleet's }, { name: dbuser_c_only,")
open(p, "w").write(s)
PY
  fleet publish --key "$key" --fleet prod "$dir/fleet.yml" >/dev/null 2>&1
  if wait_sql pc postgres "SELECT state = 'held' AND last_error ~ 'conflict with rows declared locally' FROM pgops.fleet_status WHERE instance = 'pg-c-1'" 30; then
    ok "a fleet declaration with a local row's name is reported as a conflict"
  else not_ok "conflict reported" "$(fleet status --fleet prod)"; fi
  check_eq "… the local row is kept as it was" "$(sql pc postgres "SELECT comment FROM pgops.role WHERE name = 'dbuser_c_local'")" "declared here"
  check_match "… and listed in pgops.fleet_state" "$(sql pc postgres "SELECT conflicts::text FROM pgops.fleet_state")" 'role dbuser_c_local: declared locally, kept'
  sql pc postgres "DELETE FROM pgops.role WHERE name = 'dbuser_c_local'" >/dev/null

  # --- a switchover: the new primary carries on ----------------------------------------------------
  cluster_stop pa
  pg_ctl_c ra promote -w >/dev/null
  wait_sql ra postgres "SELECT NOT pg_is_in_recovery()" 30 && ok "pg-a-2 promoted" || not_ok "promote"
  sed -i 's/for the fleet g3/for the fleet g4/' "$dir/fleet.yml"
  out=$(fleet publish --key "$key" --fleet prod "$dir/fleet.yml" 2>&1)
  gen=$(grep -o 'generation [0-9]*' <<<"$out" | awk '{print $2}')
  # pg-a-1 is down: its key goes when its lease expires.
  status_wait 5 90 && ok "after the switchover the fleet converges on generation $gen without the old primary" \
    || not_ok "converged after the switchover" "$(fleet status --fleet prod)"
  check_eq "the new primary loaded it" \
    "$(grep -ac "pgops fleet: loaded generation $gen of fleet prod" "${CL_DIR[ra]}/server.log")/$(sql ra postgres "SELECT generation FROM pgops.fleet_state")" "1/$gen"
  check_eq "… and reconciled it" "$(sql ra postgres "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'dbuser_fleet'")" \
    "declared once for the fleet g4"
  # --- a fleet name that is not one: nothing followed, said once, no name in the log line --------
  cluster_conf pb "pgops.fleet_name = 'prod/../x'"; sql pb postgres "SELECT pg_reload_conf()" >/dev/null
  wait_until 20 grep -aq 'pgops.fleet_name is not a valid fleet name' "${CL_DIR[pb]}/server.log" \
    && ok "an invalid pgops.fleet_name is refused by the etcd worker, and no fleet is followed" || not_ok "invalid fleet name"
  check_eq "… pgops' log lines never carry the name" "$(grep -a 'pgops fleet\|pgops etcd' "${CL_DIR[pb]}/server.log" | grep -ac 'prod/\.\./x')" 0
}
