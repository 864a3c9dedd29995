#!/usr/bin/env bash
# Benchmark: declarative roles across many databases — what one database more costs pgops, against
# the least any tool must do: connect to each database and read its ACLs.
#
#   pg_test/bench/scale.sh [PG_VERSION] [DATABASES] [TABLES] [ROLES]   (default 15 50 40 1000; release build)
#   PGOPS_BENCH_PGROLES=0 leaves out the pgroles 0.15 comparison (installed with cargo on first use).
#
# Workload (issue 26): ROLES roles (Pigsty's 4 dbrole_* groups and the rest login users in them),
# Pigsty's default privileges for its creators, applied to the objects that exist too, in DATABASES
# databases of TABLES tables each (pgops installed in postgres only; `database = '*'` rows reach
# every database). Each figure is the median of 3 runs; ratios are to the catalog-read baseline
# measured in the same run on the same server: one psql session that connects to each database
# in turn (\c) and reads pg_default_acl and the ACLs of its schemas, tables, sequences and
# functions — the floor for anything that plans privileges per database.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
v=${1:-15}
dbs=${2:-50}
tables=${3:-40}
nroles=${4:-1000}
trap cleanup_all EXIT
PGOPS_PROFILE=${PGOPS_PROFILE:-release} install_pgops "$v" >/dev/null   # figures from the optimised build

say "PG $v: $dbs databases × $tables tables, $nroles roles declared"
C=scale
cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "max_connections = 200" "max_locks_per_transaction = 1024" \
  "max_worker_processes = 16" >/dev/null
cluster_start $C
sql $C postgres "CREATE EXTENSION pgops" >/dev/null
sql $C template1 "CREATE SCHEMA app;
  DO \$\$ BEGIN FOR i IN 1..$tables LOOP EXECUTE format('CREATE TABLE app.t%s (id bigserial PRIMARY KEY, v text)', i); END LOOP; END \$\$;
  CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'SELECT 1'" >/dev/null
for i in $(seq 1 "$dbs"); do sql $C postgres "CREATE DATABASE db$i" >/dev/null; done
sql $C postgres "SELECT pgops.load_pigsty_baseline()" >/dev/null
sql $C postgres "UPDATE pgops.default_privilege SET existing = true, database = '*'" >/dev/null
sql $C postgres "INSERT INTO pgops.role (name, roles)
                 SELECT 'user_' || i, jsonb_build_array((ARRAY['dbrole_readonly', 'dbrole_readwrite', 'dbrole_admin', 'dbrole_offline'])[1 + i % 4])
                 FROM generate_series(1, $nroles - (SELECT count(*) FROM pgops.role)) i" >/dev/null

median() { # median SECONDS... (3 values)
  python3 -c "import sys, statistics; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"
}
timed() { # timed DATABASE SQL — seconds for one psql call
  local t0 t1
  t0=$(now); sql $C "$1" "$2" >/dev/null; t1=$(now); secs "$t0" "$t1"
}
med3() { median "$(timed "$@")" "$(timed "$@")" "$(timed "$@")"; }

say "First apply"
first=$(timed postgres "SELECT count(*) FROM pgops.apply_roles()")
left=$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()")

say "Converged: no-op apply, plan, drift summary (median of 3 each)"
noop=$(med3 postgres "SELECT count(*) FROM pgops.apply_roles()")
plan=$(med3 postgres "SELECT count(*) FROM pgops.plan_roles()")
drift=$(med3 postgres "SELECT * FROM pgops.role_drift_summary")
serial=$(med3 postgres "SET pgops.parallel_reads = 1; SELECT count(*) FROM pgops.apply_roles()")

say "Baseline: one psql session, \\c to each database, reading its ACLs"
script="${CL_DIR[$C]}/catalog_read.sql"
{
  for db in postgres template1 $(seq -f 'db%g' 1 "$dbs"); do
    echo "\\c $db"
    echo "SELECT count(*) FROM pg_catalog.pg_default_acl;"
    echo "SELECT count(*) FROM pg_catalog.pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner)));"
    echo "SELECT count(*) FROM pg_catalog.pg_class c, aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner))) WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S');"
    echo "SELECT count(*) FROM pg_catalog.pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)));"
  done
} > "$script"
chmod a+r "$script"
read_once() {
  local t0 t1
  t0=$(now)
  as_pg "$(psql_for "$v")" -X -q -At -h "${CL_DIR[$C]}" -p "${CL_PORT[$C]}" -U postgres -d postgres -v ON_ERROR_STOP=1 -f "$script" >/dev/null
  t1=$(now); secs "$t0" "$t1"
}
base=$(median "$(read_once)" "$(read_once)" "$(read_once)")

# The peer: pgroles 0.15 from crates.io (PGOPS_BENCH_PGROLES=0 leaves it out). Its manifest is
# generated from the state pgops converged (`pgroles generate`), so both tools hold the same
# declaration; pgroles reads one database per connection, so it runs once per database that has the
# workload's objects (db1…dbN — pgops plans those and postgres and template1 too).
peer=${PGOPS_BENCH_PGROLES:-1}
if [ "$peer" = 1 ]; then
  pgroles_root=${PGOPS_PGROLES_ROOT:-/opt/pgops/pgroles}
  if ! "$pgroles_root/bin/pgroles" --version 2>/dev/null | grep -q ' 0\.15\.0$'; then
    say "Installing pgroles-cli 0.15.0 from crates.io into $pgroles_root"
    cargo install pgroles-cli --version 0.15.0 --locked --root "$pgroles_root" >/dev/null 2>&1
  fi
  pgroles=$pgroles_root/bin/pgroles
  url() { echo "postgres://postgres@127.0.0.1:${CL_PORT[$C]}/$1"; }
  manifest="${CL_DIR[$C]}/pgroles.yaml"
  "$pgroles" generate --database-url "$(url db1)" -o "$manifest" >/dev/null 2>&1
  say "pgroles: its diff of every database is empty (the same state), then apply and diff timed"
  peer_all() { # peer_all apply|diff — one pgroles run per database, in turn; seconds
    local t0 t1 db
    t0=$(now)
    for db in $(seq -f 'db%g' 1 "$dbs"); do
      if [ "$1" = apply ]; then "$pgroles" apply -f "$manifest" --database-url "$(url "$db")" >/dev/null 2>"$manifest.log"
      else "$pgroles" diff -f "$manifest" --database-url "$(url "$db")" --exit-code >"$manifest.diff" 2>"$manifest.log"; fi
    done
    t1=$(now); secs "$t0" "$t1"
  }
  peer_all diff >/dev/null || { echo "pgroles sees differences from the state pgops converged:" >&2; cat "$manifest.diff" "$manifest.log" >&2; exit 1; }
  peer_apply=$(median "$(peer_all apply)" "$(peer_all apply)" "$(peer_all apply)")
  peer_diff=$(median "$(peer_all diff)" "$(peer_all diff)" "$(peer_all diff)")
  left_after_peer=$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()")
fi

# Where a database's time goes: a worker's start, pinned session, one-row read and exit
# (pgops.installations(): a worker in each database but the templates, one at a time); the roles
# snapshot's four reads (sql/queries/roles_snapshot_*.sql) as the first queries of a new session
# in each database (psql's \timing, server side; the Rust aggregation after them is not in it);
# and once, in this backend, pg_authid and the config read.
say "Parts: worker start and exit, the snapshot reads cold, pg_authid and the config"
workers_serial=$(med3 postgres "SET pgops.parallel_reads = 1; SELECT count(*) FROM pgops.installations()")
nworkers=$(sql $C postgres "SELECT count(*) FROM pg_database WHERE datallowconn AND NOT datistemplate")
parts="${CL_DIR[$C]}/parts.sql"
python3 - "$here/../sql/queries" "$dbs" > "$parts" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
schemas = "ARRAY(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname !~ '^pg_' AND nspname NOT IN ('information_schema', 'pgops'))"
reads = [r for f in ("extension", "schemas", "objects", "default_acl")
         for r in open(f"{d}/roles_snapshot_{f}.sql").read().replace("$1", schemas).split(";\n") if r.strip()]
for i in range(1, n + 1):
    print(f"\\c db{i}\n\\timing on")
    for r in reads:
        print(f"{r.strip().rstrip(';')};")
    print("\\timing off")
print("\\c postgres\n\\timing on")
print("SELECT length(x::text) FROM (" + open(d + "/roles_live.sql").read() + ") s(x);")
print("SELECT length(coalesce(json_agg(row_to_json(r) ORDER BY r.name), '[]')::text) FROM pgops.role r;")
PY
chmod a+r "$parts"
times=$(as_pg "$(psql_for "$v")" -X -q -At -h "${CL_DIR[$C]}" -p "${CL_PORT[$C]}" -U postgres -d postgres -v ON_ERROR_STOP=1 -f "$parts" | awk '/^Time:/ {print $2}')
snap_ms=$(head -n "$((dbs * 4))" <<<"$times" | python3 -c "import sys; v=[float(x) for x in sys.stdin]; print(round(sum(v)/(len(v)/4), 1))")
own_ms=$(tail -n 2 <<<"$times" | python3 -c "import sys; print(round(sum(float(x) for x in sys.stdin), 1))")

ratio() { python3 -c "print(round($1 / $2, 2))"; }
per_db() { python3 -c "print(round($1 / ($dbs + 2) * 1000, 1))"; }
echo
echo "pgops at $dbs databases — PostgreSQL $v, $(nproc) cores, $nroles roles, $tables tables a database"
printf '  %-58s %8s\n' "statements left after the first apply (must be 0)" "$left"
printf '  %-58s %8s s   %6s ms a database   (baseline)\n' "psql: \\c to each database, read its ACLs" "$base" "$(per_db "$base")"
printf '  %-58s %8s s   %6s ms a database   %s× baseline\n' "apply_roles() on the converged state (no-op)" "$noop" "$(per_db "$noop")" "$(ratio "$noop" "$base")"
printf '  %-58s %8s s   %6s ms a database   %s× baseline\n' "plan_roles() on the converged state" "$plan" "$(per_db "$plan")" "$(ratio "$plan" "$base")"
printf '  %-58s %8s s   %6s ms a database   %s× baseline\n' "… no-op apply, one database at a time (parallel_reads = 1)" "$serial" "$(per_db "$serial")" "$(ratio "$serial" "$base")"
printf '  %-58s %8s s   %6s ms a database   %s× baseline\n' "role_drift_summary" "$drift" "$(per_db "$drift")" "$(ratio "$drift" "$base")"
printf '  %-58s %8s s\n' "apply_roles() from scratch" "$first"
echo "  where the time goes:"
printf '  %-58s %8s ms a database\n' "  a worker: start, pinned session, one-row read, exit" "$(python3 -c "print(round($workers_serial / $nworkers * 1000, 1))")"
printf '  %-58s %8s ms a database\n' "  the roles snapshot's four reads, first in a new session" "$snap_ms"
printf '  %-58s %8s ms once\n' "  pg_authid and the config, read in this backend" "$own_ms"
if [ "$peer" = 1 ]; then
  echo
  echo "against pgroles 0.15 (one run per database, db1…db$dbs; pgops covers postgres and template1 too)"
  printf '  %-58s %8s s\n' "pgroles apply, converged (no-op)" "$peer_apply"
  printf '  %-58s %8s s\n' "pgroles diff, converged" "$peer_diff"
  printf '  %-58s %8s×\n' "pgops no-op apply_roles() / pgroles no-op apply" "$(ratio "$noop" "$peer_apply")"
  printf '  %-58s %8s×\n' "pgops plan_roles() / pgroles diff" "$(ratio "$plan" "$peer_diff")"
  printf '  %-58s %8s\n' "pgops statements left after pgroles' runs (must be 0)" "$left_after_peer"
  [ "$left_after_peer" = 0 ]
fi
[ "$left" = 0 ]
