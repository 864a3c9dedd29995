#!/usr/bin/env bash
# Benchmark: the monitoring views on a catalog of 10 000 tables and 20 000 indexes, against the
# seed's (Pigsty's) SQL bloat views on the same catalog in the same run.
#
#   PGOPS_PROFILE=release pg_test/bench/monitor.sh [PG_VERSION] [TABLES]
#
# Each figure is the best of 3 wall-clock runs of a query that renders every column of every row
# (sum(length(v::text))), so no view can skip work the other does. A query that runs longer than
# PGOPS_BENCH_TIMEOUT seconds (default 120) is cancelled and reported as "> N s".
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
v=${1:-15}
n=${2:-10000}
trap cleanup_all EXIT
install_pgops "$v" >/dev/null

cluster_init M "$v" "shared_preload_libraries = 'pgops'" "autovacuum = off" "max_locks_per_transaction = 256" >/dev/null
cluster_start M
sql M postgres "CREATE EXTENSION pgops" >/dev/null
sql_file M postgres "$(cat "$here/fixtures/seed_bloat.sql")" >/dev/null
say "creating $n tables with 2 indexes each"
sql M postgres "CREATE PROCEDURE make_tables(n int) LANGUAGE plpgsql AS \$\$
  BEGIN
    FOR i IN 1..n LOOP
      EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, n int8, label text, at timestamptz)', i);
      EXECUTE format('CREATE INDEX t%s_label ON t%s (label, n)', i, i);
      EXECUTE format('INSERT INTO t%s SELECT g, g * 2, md5(g::text), now() FROM generate_series(1, 50) g', i);
      IF i % 500 = 0 THEN COMMIT; END IF;
    END LOOP;
  END \$\$" >/dev/null
sql M postgres "CALL make_tables($n)" >/dev/null
say "ANALYZE"
sql M postgres "ANALYZE" >/dev/null
tables=$(sql M postgres "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")
indexes=$(sql M postgres "SELECT count(*) FROM pg_class WHERE relkind = 'i' AND relnamespace = 'public'::regnamespace")

limit=${PGOPS_BENCH_TIMEOUT:-120}
best() { # best VIEW → best of 3 wall times for rendering every row, or ">limit"
  local b=999999 i t0 t1
  for i in 1 2 3; do
    t0=$(now)
    if ! sql M postgres "SET statement_timeout = '${limit}s'; SELECT sum(length(v::text)) FROM $1 v" >/dev/null 2>&1; then
      echo ">$limit"; return
    fi
    t1=$(now)
    b=$(python3 -c "print(min($b, $(secs "$t0" "$t1")))")
  done
  echo "$b"
}
rows() { sql M postgres "SET statement_timeout = '${limit}s'; SELECT count(*) FROM $1" 2>/dev/null || echo "?"; }
ratio() { # ratio A B, where B may be ">N": then A / B is below A / N
  case $2 in
    ">"*) python3 -c "print('<', f'{$1 / ${2#>}:.2g}')" ;;
    *) python3 -c "print(f'{$1 / $2:.2g}')" ;;
  esac
}

declare -A T
for view in pgops.table_bloat seed.pg_table_bloat pgops.index_bloat seed.pg_index_bloat pgops.bloat seed.pg_bloat \
            pgops.table_age pgops.database_age pgops.xmin_blockers pgops.wraparound_forecast pg_catalog.pg_stat_user_tables; do
  T[$view]=$(best "$view")
done

echo
echo "pgops monitoring benchmark — PostgreSQL $v, $(nproc) cores, ${PGOPS_PROFILE:-dev} build, $tables tables, $indexes indexes"
printf '  %-26s %8s s %7s rows   %-26s %8s s %7s rows   %s\n' "pgops" "" "" "seed (Pigsty SQL)" "" "" "pgops / seed"
for pair in "table_bloat pg_table_bloat" "index_bloat pg_index_bloat" "bloat pg_bloat"; do
  set -- $pair
  if [ "${T[seed.$2]}" = ">$limit" ]; then local_rows="?"; else local_rows=$(rows seed.$2); fi
  printf '  %-26s %8s s %7s rows   %-26s %8s s %7s rows   %s×\n' "pgops.$1" "${T[pgops.$1]}" "$(rows pgops.$1)" \
    "seed.$2" "${T[seed.$2]}" "$local_rows" "$(ratio "${T[pgops.$1]}" "${T[seed.$2]}")"
done
echo "  ages and blockers, against pg_stat_user_tables (one row per table, like table_age):"
for view in pgops.table_age pgops.database_age pgops.xmin_blockers pgops.wraparound_forecast; do
  printf '  %-26s %8s s %7s rows   %s× pg_stat_user_tables (%s s)\n' "$view" "${T[$view]}" "$(rows $view)" \
    "$(ratio "${T[$view]}" "${T[pg_catalog.pg_stat_user_tables]}")" "${T[pg_catalog.pg_stat_user_tables]}"
done
