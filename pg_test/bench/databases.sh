#!/usr/bin/env bash
# Benchmark: pgops.plan_databases() / apply_databases() over 200 declared databases, against the
# same statements run by psql.
#
#   pg_test/bench/databases.sh [PG_VERSION] [DATABASES]      (default 15, 200; a few minutes)
#
# Each declared database has an owner, a comment, a connection limit, a setting, revokeconn and a
# schema (so a plan reads every one of them, in a worker connected to it). Two identical clusters:
# on one pgops plans and applies; on the other psql runs the very statements pgops planned (each
# CREATE DATABASE on its own, the rest in one transaction per database). Figures are seconds and
# ratios to the psql baseline measured in the same run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
v=${1:-15}
n=${2:-200}
trap cleanup_all EXIT
PGOPS_PROFILE=${PGOPS_PROFILE:-release} install_pgops "$v" >/dev/null   # figures from the optimised build

setup() { # setup CLUSTER
  local c=$1
  cluster_init "$c" "$v" "shared_preload_libraries = 'pgops'" "max_connections = 300" >/dev/null
  cluster_start "$c"
  sql "$c" postgres "CREATE EXTENSION pgops; CREATE ROLE app LOGIN; CREATE ROLE replicator LOGIN REPLICATION; CREATE ROLE dbuser_monitor LOGIN" >/dev/null
  sql "$c" postgres "INSERT INTO pgops.database_spec (name, owner, comment, connlimit, parameters, revokeconn, schemas)
                     SELECT 'db' || i, 'app', 'database ' || i, 50, '{\"work_mem\": \"8MB\"}', true, '[\"app\"]'
                     FROM generate_series(1, $n) i" >/dev/null
}

say "PG $v: two identical clusters, $n databases declared"
setup A
setup B
psql_b() { as_pg "$(psql_for "$v")" -X -q -v ON_ERROR_STOP=1 -h "${CL_DIR[B]}" -p "${CL_PORT[B]}" -U postgres "$@"; }

say "Plan from scratch, and the same statements written out for psql"
t0=$(now); planned=$(sql A postgres "SELECT count(*) FROM pgops.plan_databases()"); t1=$(now)
plan_scratch=$(secs "$t0" "$t1")
sql A postgres "SELECT database || chr(9) || runs || chr(9) || statement FROM pgops.plan_databases() ORDER BY seq" > "${CL_DIR[A]}/plan.tsv"

say "Apply from scratch: pgops vs psql running the same statements"
t0=$(now); applied=$(sql A postgres "SELECT count(*) FROM pgops.apply_databases() WHERE status = 'applied'"); t1=$(now)
apply_pgops=$(secs "$t0" "$t1")
# psql: per database, CREATE DATABASE alone, then its transaction, then its inside statements.
t0=$(now)
for i in $(seq 1 "$n"); do
  d=db$i
  awk -F"\t" -v d="$d" '$1 == d && $2 == "top level" { print $3 ";" }' "${CL_DIR[A]}/plan.tsv" | psql_b -d postgres >/dev/null
  { echo "BEGIN;"; awk -F'\t' -v d="$d" '$1 == d && $2 == "transaction" { print $3 ";" }' "${CL_DIR[A]}/plan.tsv"; echo "COMMIT;"; } | psql_b -d postgres >/dev/null
  { echo "BEGIN;"; awk -F'\t' -v d="$d" '$1 == d && $2 == "in " d { print $3 ";" }' "${CL_DIR[A]}/plan.tsv"; echo "COMMIT;"; } | psql_b -d "$d" >/dev/null
done
t1=$(now)
apply_psql=$(secs "$t0" "$t1")
left=$(sql A postgres "SELECT count(*) FROM pgops.plan_databases()")
same=$(diff <(sql A postgres "SELECT datname, datconnlimit, datacl FROM pg_database ORDER BY 1") <(sql B postgres "SELECT datname, datconnlimit, datacl FROM pg_database ORDER BY 1") >/dev/null && echo yes || echo no)

say "Converged: no-op plan and no-op apply (each best of 3)"
best() { # best CLUSTER SQL
  local b=999 i t0 t1 d
  for i in 1 2 3; do t0=$(now); sql "$1" postgres "$2" >/dev/null; t1=$(now); d=$(secs "$t0" "$t1"); b=$(python3 -c "print(min($b, $d))"); done
  echo "$b"
}
noop_plan=$(best A "SELECT count(*) FROM pgops.plan_databases()")
noop_apply=$(best A "SELECT count(*) FROM pgops.apply_databases()")
# What a planner must read, by psql: the catalog once, and a query in every database.
t0=$(now)
sql B postgres "SELECT count(*) FROM pg_database, aclexplode(coalesce(datacl, acldefault('d', datdba)))" >/dev/null
for i in $(seq 1 "$n"); do psql_b -d "db$i" -c "SELECT count(*) FROM pg_namespace" >/dev/null; done
t1=$(now)
read_psql=$(secs "$t0" "$t1")

echo
echo "pgops databases benchmark — PostgreSQL $v, $(nproc) cores, $n databases"
printf '  %-50s %8s\n' "statements planned from scratch" "$planned"
printf '  %-50s %8s\n' "statements applied by pgops" "$applied"
printf '  %-50s %8s\n' "statements left after one apply (must be 0)" "$left"
printf '  %-50s %8s\n' "pg_database the same on both clusters" "$same"
printf '  %-50s %8s s\n' "plan from scratch" "$plan_scratch"
printf '  %-50s %8s s   (baseline)\n' "apply: psql runs the same statements" "$apply_psql"
printf '  %-50s %8s s   %s× baseline\n' "apply: pgops.apply_databases() (plan + apply)" "$apply_pgops" "$(python3 -c "print(round($apply_pgops / $apply_psql, 2))")"
printf '  %-50s %8s s   (baseline)\n' "read: psql reads the catalog and every database" "$read_psql"
printf '  %-50s %8s s   %s× baseline\n' "no-op plan on the converged state" "$noop_plan" "$(python3 -c "print(round($noop_plan / $read_psql, 2))")"
printf '  %-50s %8s s   %s× baseline\n' "no-op apply on the converged state" "$noop_apply" "$(python3 -c "print(round($noop_apply / $read_psql, 2))")"
[ "$left" = 0 ] && [ "$same" = yes ]
