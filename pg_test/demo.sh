#!/usr/bin/env bash
# The pgops demo: builds and installs pgops, starts a throwaway PostgreSQL cluster (own data dir,
# free port, pgops preloaded) and a loopback etcd, shows each capability with real output, then
# shuts everything down.
#
#   pg_test/demo.sh                 PG 15
#   PGOPS_DEMO_PG=18 pg_test/demo.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
v=${PGOPS_DEMO_PG:-15}
trap cleanup_all EXIT

bash "$here/setup.sh"
say "Building and installing pgops for PostgreSQL $v"
install_pgops "$v"

say "Starting a loopback etcd"
etcd_start demo
ETCDCTL_API=3 etcdctl --endpoints "${ETCD_URL[demo]}" endpoint health

say "Starting a throwaway cluster with shared_preload_libraries = 'pgops'"
cluster_init demo "$v" "shared_preload_libraries = 'pgops'" "cluster_name = 'pg-demo'" \
  "pgops.naptime = '500ms'" "pgops.sample_interval = '1s'"
cluster_start demo
echo "data directory ${CL_DIR[demo]}/data, port ${CL_PORT[demo]}"

q() { echo; echo "postgres=# $*"; sql_pretty demo postgres "$*"; }

say "1. CREATE EXTENSION pgops — the worker backbone"
q "CREATE EXTENSION pgops"
q "SELECT * FROM pgops.instance()"
wait_sql demo postgres "SELECT state LIKE 'idle%' FROM pgops.workers WHERE name = 'pgops launcher'" 10
q "SELECT name, kind, database, pid, state, runs, errors, starts FROM pgops.workers"

say "XID samples accumulate (one per second here; pgops.sample_interval defaults to 60 s)"
sleep 2
q "SELECT count(*) AS samples, max(next_xid) AS next_xid, max(next_mxid) AS next_mxid FROM pgops.xid_samples"
echo; echo "(200 transactions)"
sql demo postgres "CREATE TABLE burn(i int)" >/dev/null
sql demo postgres "DO \$\$ BEGIN FOR i IN 1..200 LOOP INSERT INTO burn VALUES (i); COMMIT; END LOOP; END \$\$" >/dev/null
sleep 2
q "SELECT sampled_at, next_xid, next_mxid FROM pgops.xid_samples ORDER BY sampled_at DESC LIMIT 5"

say "Per-database workers: which databases have pgops, and which version"
sql demo postgres "CREATE DATABASE app" >/dev/null
q "SELECT * FROM pgops.installations()"

say "A terminated launcher comes back; the postmaster is untouched"
q "SELECT pg_terminate_backend(pid) FROM pgops.workers WHERE name = 'pgops launcher'"
wait_sql demo postgres "SELECT pid IS NOT NULL AND starts = 2 FROM pgops.workers WHERE name = 'pgops launcher'" 10
q "SELECT name, pid, state, starts, pg_postmaster_start_time() FROM pgops.workers WHERE name = 'pgops launcher'"

say "Shutting down"
t0=$(date +%s%N)
cluster_stop demo fast
echo "fast shutdown took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
cleanup_all
echo "demo finished: cluster and etcd removed"
