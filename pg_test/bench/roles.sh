#!/usr/bin/env bash
# Benchmark: pgops.plan_roles() / apply_roles() at scale, against the same statements run by psql.
#
#   pg_test/bench/roles.sh [PG_VERSION]      (default 15; takes a few minutes)
#
# Workload (issue #3): 1 000 roles (the 4 Pigsty groups + 996 login users in them), two databases
# of 5 schemas × 200 tables, the 17 Pigsty default privileges for 3 creators, applied to existing
# objects too (≈10 000 table grants). Two identical clusters are built: on one pgops plans and
# applies; on the other psql runs the very statements pgops planned (the "bare SQL" baseline).
# Figures are printed as seconds and as ratios to the baseline measured in the same run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
v=${1:-15}
trap cleanup_all EXIT
PGOPS_PROFILE=${PGOPS_PROFILE:-release} install_pgops "$v" >/dev/null   # figures from the optimised build


setup() { # setup CLUSTER
  local c=$1 db s
  cluster_init "$c" "$v" "shared_preload_libraries = 'pgops'" "max_locks_per_transaction = 1024" >/dev/null
  cluster_start "$c"
  sql "$c" postgres "CREATE EXTENSION pgops" >/dev/null
  for db in bench1 bench2; do
    sql "$c" postgres "CREATE DATABASE $db" >/dev/null
    sql "$c" "$db" "CREATE EXTENSION pgops" >/dev/null
    for s in 1 2 3 4 5; do
      sql "$c" "$db" "CREATE SCHEMA s$s" >/dev/null
      sql "$c" "$db" "DO \$\$ BEGIN FOR i IN 1..200 LOOP EXECUTE format('CREATE TABLE s$s.t%s (id bigint PRIMARY KEY, v text)', i); END LOOP; END \$\$" >/dev/null
    done
  done
  sql "$c" postgres "SELECT pgops.load_pigsty_baseline()" >/dev/null
  sql "$c" postgres "UPDATE pgops.default_privilege SET existing = true" >/dev/null
  sql "$c" postgres "INSERT INTO pgops.role (name, roles)
                     SELECT 'user_' || i, jsonb_build_array((ARRAY['dbrole_readonly', 'dbrole_readwrite', 'dbrole_admin', 'dbrole_offline'])[1 + i % 4])
                     FROM generate_series(1, 996) i" >/dev/null
}

say "PG $v: building two identical clusters (2 databases × 1 000 tables, 1 000 roles declared)"
setup A
setup B

say "Plan from scratch, and the same statements written out for psql"
t0=$(now); n=$(sql A postgres "SELECT count(*) FROM pgops.plan_roles()"); t1=$(now)
plan_scratch=$(secs "$t0" "$t1")
# One script per transaction group, in plan order: cluster-wide, each database, final.
sql A postgres "COPY (SELECT coalesce(database, '-') || E'\t' || statement FROM pgops.plan_roles() ORDER BY seq) TO STDOUT" > "${CL_DIR[A]}/plan.tsv"
grants=$(sql B postgres "SELECT 0") # warm-up connection on B

say "Apply from scratch: pgops vs psql running the same statements"
t0=$(now); applied=$(sql A postgres "SELECT count(*) FROM pgops.apply_roles() WHERE status = 'applied'"); t1=$(now)
apply_pgops=$(secs "$t0" "$t1")
left=$(sql A postgres "SELECT count(*) FROM pgops.plan_roles()")
t0=$(now)
for db in - bench1 bench2; do
  target=$db; [ "$db" = - ] && target=postgres
  awk -F'\t' -v d="$db" '$1 == d { print $2 ";" }' "${CL_DIR[A]}/plan.tsv" > "${CL_DIR[A]}/plan.$db.sql"
  { echo "BEGIN;"; cat "${CL_DIR[A]}/plan.$db.sql"; echo "COMMIT;"; } | as_pg "$(psql_for "$v")" -X -q -v ON_ERROR_STOP=1 \
      -h "${CL_DIR[B]}" -p "${CL_PORT[B]}" -U postgres -d "$target" >/dev/null
done
t1=$(now)
apply_psql=$(secs "$t0" "$t1")
grants=$(sql A bench1 "SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a WHERE c.relnamespace::regnamespace::text LIKE 's_' AND a.grantee <> c.relowner")

say "Converged: no-op plan and no-op apply (each best of 3)"
best() { # best CLUSTER SQL
  local b=999 i t0 t1 d
  for i in 1 2 3; do t0=$(now); sql "$1" postgres "$2" >/dev/null; t1=$(now); d=$(secs "$t0" "$t1"); b=$(python3 -c "print(min($b, $d))"); done
  echo "$b"
}
noop_plan=$(best A "SELECT count(*) FROM pgops.plan_roles()")
noop_apply=$(best A "SELECT count(*) FROM pgops.apply_roles()")
# The cost of merely reading what a planner must read (roles, memberships, ACLs of 2 000 tables).
catalog_read=$(best B "SELECT (SELECT count(*) FROM pg_authid), (SELECT count(*) FROM pg_auth_members), (SELECT count(*) FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))))")

echo
echo "pgops roles benchmark — PostgreSQL $v, $(nproc) cores"
printf '  %-46s %8s\n' "statements planned from scratch" "$n"
printf '  %-46s %8s\n' "statements applied by pgops" "$applied"
printf '  %-46s %8s\n' "table privileges granted in bench1" "$grants"
printf '  %-46s %8s\n' "statements left after one apply (must be 0)" "$left"
printf '  %-46s %8s s\n' "plan from scratch" "$plan_scratch"
printf '  %-46s %8s s   (baseline)\n' "apply: psql runs the same statements" "$apply_psql"
printf '  %-46s %8s s   %s× baseline\n' "apply: pgops.apply_roles() (plan + apply)" "$apply_pgops" "$(python3 -c "print(round($apply_pgops / $apply_psql, 2))")"
printf '  %-46s %8s s   %s× baseline\n' "no-op plan on the converged state" "$noop_plan" "$(python3 -c "print(round($noop_plan / $apply_psql, 2))")"
printf '  %-46s %8s s   %s× baseline\n' "no-op apply on the converged state" "$noop_apply" "$(python3 -c "print(round($noop_apply / $apply_psql, 2))")"
printf '  %-46s %8s s\n' "(reference: reading the catalog once, psql)" "$catalog_read"
[ "$left" = 0 ]
