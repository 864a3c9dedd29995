#!/usr/bin/env bash
# Benchmark: pushing the instance's state to a loopback etcd, and what the etcd worker costs idle.
#
#   PGOPS_PROFILE=release pg_test/bench/etcd.sh [PG_VERSION] [PUSHES] [IDLE_SECONDS]
#
# 1. PUSHES (default 1 000) calls of pgops.etcd_push_now() in one session. Each is a forced
#    publish: the worker reads the state (two short transactions), then refreshes its lease and
#    writes the document (two HTTP requests). Reported: the HTTP part as the worker timed it
#    (push_ms) and the whole call as SQL saw it, p50 / p99.
#    Baseline, same run, same etcd: a plain client (Python, one persistent HTTP connection) doing
#    the same two requests — lease keepalive + put of the same document — PUSHES times.
# 2. IDLE_SECONDS (default 600) with the default interval (10 s): CPU time of the etcd worker
#    (utime + stime from /proc), next to the launcher's over the same window.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
v=${1:-15}
pushes=${2:-1000}
idle=${3:-600}
trap cleanup_all EXIT
install_pgops "$v" >/dev/null

etcd_start b >/dev/null
cluster_init E "$v" "shared_preload_libraries = 'pgops'" "cluster_name = 'pg-bench'" \
  "pgops.instance_name = 'pg-bench-1'" "pgops.etcd_endpoints = '${ETCD_URL[b]}'" >/dev/null
cluster_start E
sql E postgres "CREATE EXTENSION pgops" >/dev/null
wait_sql E postgres "SELECT state = 'publishing' FROM pgops.etcd_status" 15
key=/pg/pg-bench/pgops/members/pg-bench-1

say "$pushes forced pushes through pgops.etcd_push_now()"
out=$(sql_file E postgres "
\\pset tuples_only on
\\pset format unaligned
CREATE TEMP TABLE lat (push_ms float8, call_ms float8);
DO \$\$ DECLARE t0 timestamptz; r record; BEGIN
  FOR i IN 1..$pushes LOOP
    t0 := clock_timestamp();
    SELECT * INTO r FROM pgops.etcd_push_now();
    IF NOT r.ok THEN RAISE EXCEPTION 'push % failed: %', i, r.error; END IF;
    INSERT INTO lat VALUES (r.push_ms, extract(epoch FROM clock_timestamp() - t0) * 1000);
  END LOOP; END \$\$;
SELECT format('%s|%s|%s|%s',
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY push_ms)::numeric, 3),
  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY push_ms)::numeric, 3),
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY call_ms)::numeric, 3),
  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY call_ms)::numeric, 3)) FROM lat;")
IFS='|' read -r push50 push99 call50 call99 <<<"$(echo "$out" | tail -1)"

say "baseline: a plain HTTP client doing keepalive + put of the same document $pushes times"
value=$(etcdctl_ b get $key --print-value-only)
lease=$(sql E postgres "SELECT lease_id FROM pgops.etcd_status")
base=$(python3 - "${ETCD_URL[b]}" "$key" "$value" "$lease" "$pushes" <<'EOF'
import base64, http.client, json, sys, time, urllib.parse
url, key, value, lease, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
u = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
b64 = lambda s: base64.b64encode(s.encode()).decode()
# the baseline writes a key of its own next to pgops' (same size, same lease)
put = json.dumps({"key": b64(key + "-baseline"), "value": b64(value), "lease": lease})
ka = json.dumps({"ID": lease})
def post(path, body):
    c.request("POST", path, body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
lat = []
for _ in range(n):
    t0 = time.perf_counter()
    post("/v3/lease/keepalive", ka)
    post("/v3/kv/put", put)
    lat.append((time.perf_counter() - t0) * 1000)
lat.sort()
print(f"{lat[len(lat) // 2]:.3f}|{lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.3f}")
EOF
)
IFS='|' read -r base50 base99 <<<"$base"
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

say "idle for $idle s (pgops.etcd_interval = 10 s)"
wpid=$(sql E postgres "SELECT pid FROM pgops.workers WHERE name = 'pgops etcd'")
lpid=$(sql E postgres "SELECT pid FROM pgops.workers WHERE name = 'pgops launcher'")
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
IFS='|' read -r p0 w0 <<<"$(sql E postgres "SELECT pushes, writes FROM pgops.etcd_status")"
wt0=$(ticks "$wpid"); lt0=$(ticks "$lpid"); s0=$(date +%s.%N)
sleep "$idle"
wt1=$(ticks "$wpid"); lt1=$(ticks "$lpid"); s1=$(date +%s.%N)
IFS='|' read -r p1 w1 <<<"$(sql E postgres "SELECT pushes, writes FROM pgops.etcd_status")"
wall=$(secs "$s0" "$s1")
wcpu=$(python3 -c "print(f'{($wt1 - $wt0) / $hz:.2f}')")
lcpu=$(python3 -c "print(f'{($lt1 - $lt0) / $hz:.2f}')")
wpct=$(python3 -c "print(f'{100 * ($wt1 - $wt0) / $hz / $wall:.3f}')")

echo
echo "PG $v, $pushes forced pushes to a loopback etcd (ms)"
printf '  %-44s %8s %8s\n' "" p50 p99
printf '  %-44s %8s %8s\n' "baseline: plain client, keepalive + put" "$base50" "$base99"
printf '  %-44s %8s %8s   (%s× / %s× baseline)\n' "pgops worker, keepalive + put (push_ms)" "$push50" "$push99" "$(ratio "$push50" "$base50")" "$(ratio "$push99" "$base99")"
printf '  %-44s %8s %8s   (%s× / %s× baseline)\n' "etcd_push_now() call, incl. reading the state" "$call50" "$call99" "$(ratio "$call50" "$base50")" "$(ratio "$call99" "$base99")"
echo
echo "idle ${wall} s: etcd worker CPU ${wcpu} s (${wpct} % of one core), launcher ${lcpu} s; $((p1 - p0)) pushes, $((w1 - w0)) writes"
