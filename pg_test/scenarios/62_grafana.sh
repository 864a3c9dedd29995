# The Grafana dashboard (grafana/pgops-dashboard.json): every panel query and variable query runs
# without error, as a pg_monitor-only role, against a server with data in every view.

scenario_main() {
  local v=$1 C=graf dir list
  # The datasource's database is also pgops.database, where the freeze jobs and their history live.
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "pgops.sample_interval = '200ms'" "pgops.naptime = '100ms'" "pgops.database = 'app'" \
    "max_prepared_transactions = 2" || { not_ok "initdb"; return 1; }
  cluster_start $C || { not_ok "server starts"; return 1; }
  sql $C postgres "CREATE EXTENSION pgops" >/dev/null; sql $C postgres "CREATE DATABASE app" >/dev/null
  sql $C app "CREATE EXTENSION pgops; CREATE EXTENSION pgstattuple;
              CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT i, md5(i::text) FROM generate_series(1, 20000) i;
              CREATE TABLE never_analyzed (id int, t text); INSERT INTO never_analyzed VALUES (1, 'x');
              CREATE ROLE grafana LOGIN IN ROLE pg_monitor" >/dev/null
  sql $C app "DELETE FROM orders WHERE id % 2 = 0" >/dev/null
  sql $C app "VACUUM ANALYZE orders" >/dev/null
  sql $C app "SELECT count(*) FROM pgops.verify_bloat(2)" >/dev/null
  sql $C app "DO \$\$ BEGIN FOR i IN 1..300 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END \$\$" >/dev/null
  sql_file $C app "BEGIN; CREATE TABLE p(i int); PREPARE TRANSACTION 'grafana_blocker';" >/dev/null
  sql $C app "INSERT INTO pgops.freeze_job (name, database, schedule, min_age, enabled) VALUES ('grafana', 'app', '0 3 * * 0', 0, false)" >/dev/null
  wait_sql $C app "SELECT state LIKE 'idle (pgops%' FROM pgops.workers WHERE name = 'pgops launcher'" 10
  sql $C app "SELECT count(*) FROM pgops.run_freeze('grafana')" >/dev/null
  wait_sql $C app "SELECT bool_and(status NOT IN ('queued', 'running')) FROM pgops.freeze_run" 30
  # The forecast needs samples spanning a second (not just five of them at 200 ms).
  wait_sql $C app "SELECT xids_per_second IS NOT NULL FROM pgops.wraparound_forecast WHERE database = 'app'" 10

  dir=$(mktemp -d "${CL_DIR[$C]}/grafana.XXXXXX"); chmod 755 "$dir"
  if ! list=$(python3 "$PGOPS_ROOT/pg_test/grafana_queries.py" "$PGOPS_ROOT/grafana/pgops-dashboard.json" "$dir" database=app); then
    not_ok "the dashboard's queries use only known variables and macros" "$list"; return 1
  fi
  chmod 644 "$dir"/*.sql
  local n=0 failed=0 rows=0 file fmt title out bad=() empty=()
  while IFS=$'\t' read -r file fmt title; do
    n=$((n + 1))
    if out=$(sql_file $C app "SET ROLE grafana;
\\pset footer off
\\pset format unaligned
\\i $file" 2>&1) && [[ "$out" != *"ERROR:"* ]]; then
      if [ "$(printf '%s\n' "$out" | wc -l)" -gt 1 ]; then rows=$((rows + 1)); else empty+=("$title"); fi
      if [ "$fmt" = time_series ] && [[ "$(printf '%s\n' "$out" | head -1)" != time\|* ]]; then
        failed=$((failed + 1)); bad+=("$title: a time series needs a first column named time")
      fi
    else
      failed=$((failed + 1)); bad+=("$title: $out")
    fi
  done <<<"$list"
  check "the dashboard has queries" test "$n" -ge 20
  if [ $failed = 0 ]; then ok "all $n dashboard queries run as a pg_monitor role"
  else not_ok "all $n dashboard queries run as a pg_monitor role" "$(printf '%s; ' "${bad[@]}")"; fi
  if [ "$rows" = "$n" ]; then ok "every query returns rows here (nothing silently empty)"
  else not_ok "every query returns rows here (nothing silently empty)" "empty: $(printf '%s; ' "${empty[@]}")"; fi
  check_match "the dashboard imports with a datasource input" \
    "$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['__inputs'][0]['pluginId'], d['uid'])" "$PGOPS_ROOT/grafana/pgops-dashboard.json")" \
    "^grafana-postgresql-datasource pgops-monitor$"
  sql $C app "ROLLBACK PREPARED 'grafana_blocker'" >/dev/null
}
