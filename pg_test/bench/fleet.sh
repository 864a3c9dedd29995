#!/usr/bin/env bash
# Benchmark: a fleet declared once in etcd.
#
#   pg_test/bench/fleet.sh [PG_VERSION] [IDLE_SECONDS]      (default 15 60; PGOPS_PROFILE=release optional)
#
# 1. Publish to converged: 1, 3, 6 and 10 instances (each its own cluster, one loopback etcd,
#    pgops.etcd_interval 1 s, reconcile_roles/_databases = safe, reconcile_hba = all). For each size, new instances
#    first take the whole declaration (Pigsty's defaults and the fleet's users), then one change
#    is timed: a new role and a new comment on the fleet's user, published with pgops-fleet, until
#    `pgops-fleet status --wait` sees every instance report the new generation converged.
#    Baseline, same run: the same change made by a loop of psql calls, one per cluster (what a DBA
#    or a script does today without pgops). Median of 3 each.
# 2. Idle: etcd writes per minute of 10 instances with the fleet followed and reconcile on, next to
#    Patroni's own writes (one member, Patroni's defaults: loop_wait 10 s, ttl 30 s) on the same
#    etcd over the same window (left out when Patroni is not installed: pg_test/setup.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
v=${1:-15}
idle=${2:-60}
trap cleanup_all EXIT
install_pgops "$v" >/dev/null
(cd "$PGOPS_ROOT" && cargo build -q -p pgops-fleet)
bin=$PGOPS_ROOT/target/debug/pgops-fleet

etcd_start fb >/dev/null
dir=$(mktemp -d /tmp/pgops-fleet-bench.XXXXXX)
bench_dir_remove() { rm -rf "$dir"; }
CLEANUP_CMDS+=(bench_dir_remove)
pk=$("$bin" keygen --out "$dir/key")
fleet() { "$bin" "$@" --endpoints "${ETCD_URL[fb]}"; }
median() { python3 -c "import sys, statistics; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"; }

started=0
start_instances() { # start_instances N — instances 1..N running
  local i
  for i in $(seq $((started + 1)) "$1"); do
    cluster_init "f$i" "$v" "shared_preload_libraries = 'pgops'" "pgops.naptime = '200ms'" "cluster_name = 'pg-$i'" \
      "pgops.instance_name = 'pg-$i-1'" "pgops.etcd_endpoints = '${ETCD_URL[fb]}'" "pgops.etcd_interval = '1s'" \
      "pgops.etcd_ttl = '5s'" "pgops.etcd_timeout = '500ms'" "pgops.fleet_name = 'bench'" "pgops.fleet_trusted_keys = '$pk'" \
      "pgops.reconcile_roles = 'safe'" "pgops.reconcile_databases = 'safe'" "pgops.reconcile_hba = 'all'" "max_connections = 30" "shared_buffers = '16MB'" >/dev/null
    cluster_start "f$i"
    sql "f$i" postgres "CREATE EXTENSION pgops" >/dev/null
  done
  started=$1
}
generation=0
inventory() { # inventory N G — clusters pg-1…pg-N; the change of generation G: role bench_gG, comment gG
  {
    echo "all:"
    echo "  vars:"
    echo "    pg_users:"
    echo "      - { name: bench_user, roles: [ dbrole_readonly ], comment: g$2 }"
    local g
    for g in $(seq 1 "$2"); do echo "      - { name: bench_g$g, roles: [ dbrole_readonly ] }"; done
    echo "    pg_default_hba_rules:"
    echo "      - { user: '\${dbsu}', db: all, addr: local, auth: trust, title: dbsu local }"
    echo "      - { user: all, db: all, addr: local, auth: trust, title: local sockets for the benchmark }"
    echo "  children:"
    local i
    for i in $(seq 1 "$1"); do
      echo "    pg-$i: { hosts: { 127.0.1.$i: { pg_seq: 1, pg_role: primary } }, vars: { pg_cluster: pg-$i } }"
    done
  } > "$dir/fleet.yml"
}
publish_and_wait() { # publish_and_wait N — seconds from the publish to N instances converged
  local t0 t1
  generation=$((generation + 1))
  inventory "$1" "$generation"
  t0=$(now)
  fleet publish --key "$dir/key" --fleet bench "$dir/fleet.yml" >/dev/null 2>&1
  fleet status --fleet bench --wait 180 --members "$1" --quiet >/dev/null || { echo "the fleet did not converge" >&2; fleet status --fleet bench >&2; exit 1; }
  t1=$(now); secs "$t0" "$t1"
}
psql_loop() { # psql_loop N G — the same change, one psql call per cluster; seconds
  local t0 t1 i
  t0=$(now)
  for i in $(seq 1 "$1"); do
    sql "f$i" postgres "CREATE ROLE bench_psql_$2 IN ROLE dbrole_readonly; COMMENT ON ROLE bench_user IS 'psql $2'" >/dev/null
  done
  t1=$(now); secs "$t0" "$t1"
}

declare -A FLEET PSQL
psql_round=0
for n in 1 3 6 10; do
  say "$n instance(s)"
  start_instances "$n"
  publish_and_wait "$n" >/dev/null   # new instances take the whole declaration first
  runs=(); base=()
  for _ in 1 2 3; do
    runs+=("$(publish_and_wait "$n")")
    psql_round=$((psql_round + 1)); base+=("$(psql_loop "$n" "$psql_round")")
  done
  FLEET[$n]=$(median "${runs[@]}"); PSQL[$n]=$(median "${base[@]}")
done

say "Idle: etcd writes per minute (10 instances, fleet followed, reconcile on)"
PATRONI_BIN=${PGOPS_PATRONI_DIR:-$(is_root && echo /opt/pgops/patroni || echo "$HOME/.pgops/patroni")}/bin
patroni=0
if [ -x "$PATRONI_BIN/patroni" ]; then
  base=$(mktemp -d /tmp/pgops-fleet-patroni.XXXXXX); chmod 0755 "$base"; is_root && chown postgres: "$base"
  pport=$(free_port); aport=$(free_port)
  CL_DIR[patb]=$base; CL_PORT[patb]=$pport; CL_VER[patb]=$v
  as_pg tee "$base/patroni.yml" >/dev/null <<EOF
scope: pg-patbench
namespace: /patbench/
name: patbench-1
restapi: {listen: 127.0.0.1:$aport, connect_address: 127.0.0.1:$aport}
etcd3: {hosts: "127.0.0.1:${ETCD_URL[fb]##*:}"}
bootstrap:
  dcs: {ttl: 30, loop_wait: 10, retry_timeout: 10}
  initdb: [{encoding: UTF8}, {auth-local: trust}]
postgresql:
  listen: 127.0.0.1:$pport
  connect_address: 127.0.0.1:$pport
  data_dir: $base/data
  bin_dir: $(pg_bindir "$v")
  authentication: {superuser: {username: postgres, password: bench-su}, replication: {username: replicator, password: bench-repl}}
  parameters: {unix_socket_directories: $base}
EOF
  as_pg bash -c "nohup '$PATRONI_BIN/patroni' '$base/patroni.yml' >>'$base/patroni.out' 2>&1 & echo \$!" > "$base/patroni.pid"
  kill_patroni_bench() { kill -9 "$(cat "${CL_DIR[patb]}/patroni.pid")" 2>/dev/null || true; }
  CLEANUP_CMDS+=(kill_patroni_bench)
  if wait_until 90 etcdctl_ fb get /patbench/pg-patbench/leader --print-value-only; then patroni=1; else echo "Patroni did not start: $(tail -5 "$base/patroni.out")" >&2; fi
fi
# Everything settles first, as it does by itself within minutes (autovacuum): the last
# generation's reconcile, then VACUUM and ANALYZE of what the loads changed — until then reads
# prune pages (WAL) and ANALYZE takes transaction IDs, and the documents report the moving LSN
# and XID age. Patroni's bootstrap meanwhile.
for i in $(seq 1 "$started"); do
  as_pg "$(pg_bindir "$v")/vacuumdb" -h "${CL_DIR[f$i]}" -p "${CL_PORT[f$i]}" -U postgres --all --analyze -q
done
sleep 20
versions() { # versions PREFIX — the sum of the versions of the keys under PREFIX (under /pg/: pgops' documents)
  etcdctl_ fb get "$1" --prefix -w json | python3 -c '
import base64, json, sys
d = json.load(sys.stdin)
keys = [(base64.b64decode(kv["key"]).decode(), int(kv.get("version", 0))) for kv in d.get("kvs", [])]
print(sum(v for k, v in keys if "/pgops/" in k or not sys.argv[1].startswith("/pg/")))' "$1"
}
p0=$(versions /pg/); q0=$( [ $patroni = 1 ] && versions /patbench/ || echo 0)
sleep "$idle"
p1=$(versions /pg/); q1=$( [ $patroni = 1 ] && versions /patbench/ || echo 0)
pw=$(( (p1 - p0) * 60 / idle )); qw=$(( (q1 - q0) * 60 / idle ))

ratio() { python3 -c "print(round($1 / $2, 2))"; }
echo
echo "A fleet declared once — PostgreSQL $v, $(nproc) cores, one loopback etcd, pgops.etcd_interval 1 s (median of 3)"
printf '  %-10s %16s %22s %8s\n' "instances" "publish→converged" "psql loop, same change" "ratio"
for n in 1 3 6 10; do
  printf '  %-10s %14s s %20s s %7s×\n' "$n" "${FLEET[$n]}" "${PSQL[$n]}" "$(ratio "${FLEET[$n]}" "${PSQL[$n]}")"
done
echo "  idle etcd writes per minute over ${idle} s, reconcile on: pgops $pw for 10 instances ($(python3 -c "print(round($pw / 10, 1))") each)"
if [ $patroni = 1 ]; then
  echo "  … Patroni, same window, one member with its defaults (loop_wait 10 s): $qw"
else
  echo "  … Patroni not measured: not installed (pg_test/setup.sh installs it)"
fi
