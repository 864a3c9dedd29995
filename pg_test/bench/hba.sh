#!/usr/bin/env bash
# Benchmark: pgops.apply_hba() with 1 000 rules, and pgops.hba_match() lookups per second.
#
#   pg_test/bench/hba.sh [PG_VERSION]
#
# Baselines measured in the same run: for apply, what tools without validation do (copy the same
# rendered file over pg_hba.conf and pg_reload_conf()); for lookups, a trivial SQL function call.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
v=${1:-15}
trap cleanup_all EXIT
install_pgops "$v" >/dev/null

cluster_init H "$v" "shared_preload_libraries = 'pgops'" >/dev/null
cluster_start H
sql H postgres "CREATE EXTENSION pgops" >/dev/null
sql H postgres "INSERT INTO pgops.hba_rule (title, \"user\", addr, auth, \"order\") VALUES ('dbsu', 'postgres', 'local', 'trust', 1)" >/dev/null
sql H postgres "INSERT INTO pgops.hba_rule (title, \"user\", db, addr, auth, \"order\")
                SELECT 'rule ' || i, 'u_' || i, 'db_' || (i % 10), format('10.%s.%s.0/24', i / 256, i % 256), 'sha', 100 + i
                FROM generate_series(1, 999) i" >/dev/null
n=$(sql H postgres "SELECT count(*) FROM pgops.hba_rule")

best() { # best SQL → best of 3 wall times
  local b=999 i t0 t1 d
  for i in 1 2 3; do t0=$(now); sql H postgres "$1" >/dev/null; t1=$(now); d=$(secs "$t0" "$t1"); b=$(python3 -c "print(min($b, $d))"); done
  echo "$b"
}
render=$(best "SELECT length(pgops.render_hba())")
# Apply: force a rewrite each time by changing one rule's title.
apply_best=999
for i in 1 2 3; do
  sql H postgres "UPDATE pgops.hba_rule SET title = 'rule 1 v$i' WHERE title LIKE 'rule 1%' AND \"order\" = 101" >/dev/null
  t0=$(now); sql H postgres "SELECT status FROM pgops.apply_hba()" >/dev/null; t1=$(now)
  apply_best=$(python3 -c "print(min($apply_best, $(secs "$t0" "$t1")))")
done
hba=${CL_DIR[H]}/data/pg_hba.conf
sql H postgres "SELECT pgops.render_hba()" > "${CL_DIR[H]}/rendered.conf"
baseline=999
for i in 1 2 3; do
  t0=$(now); as_pg cp "${CL_DIR[H]}/rendered.conf" "$hba"; sql H postgres "SELECT pg_reload_conf()" >/dev/null; t1=$(now)
  baseline=$(python3 -c "print(min($baseline, $(secs "$t0" "$t1")))")
done
lines=$(sql H postgres "SELECT lines FROM pgops.hba_apply ORDER BY id DESC LIMIT 1")

N=300
t0=$(now); sql H postgres "SELECT count(*) FROM generate_series(1, $N) i, pgops.hba_match('u_' || (i % 999 + 1), 'db_' || (i % 10), format('10.%s.%s.7', (i % 999 + 1) / 256, (i % 999 + 1) % 256)::inet) m WHERE m.matched" >/dev/null; t1=$(now)
match=$(secs "$t0" "$t1")
t0=$(now); sql H postgres "SELECT count(*) FROM generate_series(1, $N) i, pg_catalog.current_setting('port') s" >/dev/null; t1=$(now)
trivial=$(secs "$t0" "$t1")
matched=$(sql H postgres "SELECT count(*) FROM generate_series(2, 51) i, pgops.hba_match('u_' || i, 'db_' || (i % 10), format('10.0.%s.7', i)::inet) m WHERE m.matched AND m.rule = 'rule ' || i")

echo
echo "pgops HBA benchmark — PostgreSQL $v, $(nproc) cores, $n rules, $lines lines"
printf '  %-52s %8s s\n' "render_hba()" "$render"
printf '  %-52s %8s s   (baseline)\n' "copy the same file + pg_reload_conf() (no validation)" "$baseline"
printf '  %-52s %8s s   %s× baseline\n' "apply_hba(): render, guard, write, check, reload" "$apply_best" "$(python3 -c "print(round($apply_best / $baseline, 1))")"
printf '  %-52s %8s /s  (%s lookups in %s s)\n' "hba_match() lookups" "$(python3 -c "print(round($N / $match))")" "$N" "$match"
printf '  %-52s %8s /s\n' "baseline: trivial function calls in the same query shape" "$(python3 -c "print(round($N / $trivial))")"
printf '  %-52s %8s\n' "spot check: lookups that hit the expected rule (of 50)" "$matched"
[ "$matched" = 50 ]
