#!/usr/bin/env bash
# Benchmark: a pgops freeze run against a whole-database VACUUM FREEZE (Pigsty's weekly cron).
#
#   PGOPS_PROFILE=release pg_test/bench/freeze.sh [PG_VERSION] [TABLES] [ROWS]
#
# Two databases built the same way: TABLES tables of ROWS rows (default 20 000); 10 % of them are left old
# (transaction IDs consumed after they were written), the other 90 % are frozen again and then
# touched (a tenth of their rows updated), as autovacuum would have kept them. In one database a
# pgops job (min_age below the old tables' age) runs; in the other, VACUUM FREEZE. For each:
# pages visited (heap + TOAST + index buffer hits and reads from pg_statio), WAL written, wall
# time, and the oldest table age left.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/lib.sh"
v=${1:-15}
n=${2:-200}
rows=${3:-20000}
old=$((n / 10))
trap cleanup_all EXIT
install_pgops "$v" >/dev/null

cluster_init F "$v" "shared_preload_libraries = 'pgops'" "pgops.naptime = '100ms'" "autovacuum = off" \
  "max_wal_size = '4GB'" "shared_buffers = '256MB'" >/dev/null
cluster_start F
sql F postgres "CREATE EXTENSION pgops" >/dev/null
for db in with_pgops with_vacuum; do
  sql F postgres "CREATE DATABASE $db" >/dev/null
  sql F $db "DO \$\$ BEGIN FOR i IN 1..$n LOOP
               EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, n int8, label text)', i);
               EXECUTE format('INSERT INTO t%s SELECT g, g, md5(g::text) FROM generate_series(1, $rows) g', i);
             END LOOP; END \$\$" >/dev/null
done
say "consuming 200 000 transaction IDs"
sql F postgres "DO \$\$ BEGIN FOR i IN 1..200000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END \$\$" >/dev/null
for db in with_pgops with_vacuum; do
  for i in $(seq $((old + 1)) "$n"); do
    sql F $db "VACUUM FREEZE t$i" >/dev/null
    sql F $db "UPDATE t$i SET n = n + 1 WHERE id % 10 = 0" >/dev/null
  done
  sql F $db "CHECKPOINT" >/dev/null
done

measure() { # measure DB COMMAND... → "pages wal_bytes seconds max_age"
  local db=$1; shift
  local p0 w0 t0 t1 p1 w1
  p0=$(sql F "$db" "SELECT sum(coalesce(heap_blks_read,0) + coalesce(heap_blks_hit,0) + coalesce(idx_blks_read,0) + coalesce(idx_blks_hit,0)
                           + coalesce(toast_blks_read,0) + coalesce(toast_blks_hit,0)) FROM pg_statio_all_tables")
  w0=$(sql F postgres "SELECT pg_current_wal_lsn()")
  t0=$(now); "$@"; t1=$(now)
  sleep 1   # statistics are flushed about once a second
  p1=$(sql F "$db" "SELECT sum(coalesce(heap_blks_read,0) + coalesce(heap_blks_hit,0) + coalesce(idx_blks_read,0) + coalesce(idx_blks_hit,0)
                           + coalesce(toast_blks_read,0) + coalesce(toast_blks_hit,0)) FROM pg_statio_all_tables")
  w1=$(sql F postgres "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$w0')")
  echo "$((p1 - p0)) $w1 $(secs "$t0" "$t1") $(sql F "$db" "SELECT max(age(relfrozenxid)) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")"
}
pgops_run() {
  local id
  id=$(sql F postgres "SELECT run_id FROM pgops.run_freeze('bench')")
  wait_sql F postgres "SELECT status NOT IN ('queued', 'running') FROM pgops.freeze_run WHERE id = $id" 3600
}
sql F postgres "INSERT INTO pgops.freeze_job (name, database, schedule, min_age, max_duration, enabled)
                VALUES ('bench', 'with_pgops', '0 3 * * 0', 150000, '1 hour', false)" >/dev/null
planned=$(sql F with_pgops "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND age(relfrozenxid) >= 150000")
before=$(sql F with_pgops "SELECT max(age(relfrozenxid)) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")
read -r pp pw pt pa <<<"$(measure with_pgops pgops_run)"
read -r vp vw vt va <<<"$(measure with_vacuum sql F with_vacuum "VACUUM FREEZE")"
done_tables=$(sql F postgres "SELECT tables_done FROM pgops.freeze_run WHERE job = 'bench' ORDER BY id DESC LIMIT 1")
own=$(sql F postgres "SELECT round(extract(epoch FROM finished_at - started_at)::numeric, 3) FROM pgops.freeze_run WHERE job = 'bench' ORDER BY id DESC LIMIT 1")
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

echo
echo "pgops freeze benchmark — PostgreSQL $v, $(nproc) cores, ${PGOPS_PROFILE:-dev} build, $n tables ($old old), oldest age before $before"
printf '  %-40s %12s %14s %10s %14s\n' "" "pages" "WAL bytes" "seconds" "max age after"
printf '  %-40s %12s %14s %10s %14s\n' "VACUUM FREEZE (whole database)" "$vp" "$vw" "$vt" "$va"
printf '  %-40s %12s %14s %10s %14s\n' "pgops run ($done_tables tables of $planned planned)" "$pp" "$pw" "$pt" "$pa"
printf '  %-40s %12s %14s %10s\n' "pgops / VACUUM FREEZE" "$(ratio "$pp" "$vp")" "$(ratio "$pw" "$vw")" "$(ratio "$pt" "$vt")"
echo "  (pgops' seconds: from run_freeze() until the run is seen finished; the run itself, start to finish in the worker: $own s)"
