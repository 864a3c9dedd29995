#!/usr/bin/env bash
# Benchmark: what the pinned settings on every pgops function cost per call (issue: hostile
# tenants). Two databases with pgops, one as installed (pinned), one where every pgops function's
# SET clauses were removed (RESET ALL) — the baseline, measured in the same run, alternating.
#
#   pg_test/bench/pins.sh [PG_VERSION] [CALLS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
v=${1:-15}; n=${2:-20000}
trap cleanup_all EXIT
install_pgops "$v" >/dev/null
cluster_init P "$v" "shared_preload_libraries = 'pgops'" >/dev/null
cluster_start P
for db in pinned plain; do
  sql P postgres "CREATE DATABASE $db" >/dev/null
  sql P $db "CREATE EXTENSION pgops" >/dev/null
done
sql P plain "DO \$\$ DECLARE f regprocedure; BEGIN
  FOR f IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = 'pgops'::regnamespace AND p.prokind = 'f' LOOP
    EXECUTE format('ALTER FUNCTION %s RESET ALL', f); END LOOP; END \$\$" >/dev/null
echo "settings on pgops._inline_secret(): pinned $(sql P pinned "SELECT cardinality(proconfig) FROM pg_proc WHERE proname = '_inline_secret'"), plain $(sql P plain "SELECT coalesce(cardinality(proconfig), 0) FROM pg_proc WHERE proname = '_inline_secret'")"

timed() { # timed DB SQL → seconds
  local t0 t1; t0=$(now); sql P "$1" "$2" >/dev/null; t1=$(now); secs "$t0" "$t1"
}
measure() { # measure LABEL SQL — best of 5 each, alternating
  local label=$1 q=$2 bp=999 bb=999 i
  for i in 1 2 3 4 5; do
    bp=$(python3 -c "print(min($bp, $(timed pinned "$q")))")
    bb=$(python3 -c "print(min($bb, $(timed plain "$q")))")
  done
  python3 -c "print(f'| $label | {$bb:.3f} s | {$bp:.3f} s | {$bp/$bb:.2f}x | {($bp-$bb)/$n*1e6:.1f} µs |')"
}
echo "| $n calls | plain (no SET clauses) | pinned | pinned / plain | per call |"
echo "|---|---|---|---|---|"
measure "pgops._inline_secret(text) (trivial)" "SELECT count(pgops._inline_secret(g::text)) FROM generate_series(1, $n) g"
measure "pgops.hba_match(), empty rule set" "SELECT count(*) FROM generate_series(1, $n) g, LATERAL pgops.hba_match('postgres', 'postgres', ('10.0.0.' || g % 250)::inet) m"
