# Scheduled VACUUM FREEZE: validation, the plan, a due job run by the launcher alone, most urgent
# first, locked tables skipped, the budget, several databases, run now and cancel, fast shutdown
# during a run, a standby, history retention.

burn() { # burn CLUSTER N — consume N transaction IDs
  sql "$1" postgres "DO \$\$ BEGIN FOR i IN 1..$2 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END \$\$" >/dev/null
}
# run_done CLUSTER RUN_ID SECS — waits until the run has finished
run_done() { wait_sql "$1" postgres "SELECT status NOT IN ('queued', 'running') FROM pgops.freeze_run WHERE id = $2" "$3"; }

scenario_main() {
  local v=$1 C=frz out id
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "pgops.naptime = '100ms'" "pgops.sample_interval = '1s'" \
    "autovacuum = off" "wal_level = replica" || { not_ok "initdb"; return 1; }
  cluster_start $C || { not_ok "server starts"; return 1; }
  sql $C postgres "CREATE EXTENSION pgops" >/dev/null
  sql $C postgres "CREATE DATABASE app" >/dev/null

  # --- jobs are validated; the default is there and off -----------------------------------------
  check_eq "the default job: weekly, Sunday 03:00, every database, 4 hours, disabled" \
    "$(sql $C postgres "SELECT schedule || '|' || database || '|' || max_duration || '|' || enabled FROM pgops.freeze_job WHERE name = 'weekly'")" \
    "0 3 * * 0|*|04:00:00|false"
  check_match "a bad schedule is refused, naming the job" \
    "$(sql $C postgres "INSERT INTO pgops.freeze_job (name, schedule) VALUES ('bad', '0 3 * *')" 2>&1)" \
    'freeze job "bad": schedule "0 3 \* \*" has 4 fields; use 5'
  check_match "an unknown time zone is refused" \
    "$(sql $C postgres "INSERT INTO pgops.freeze_job (name, schedule, timezone) VALUES ('bad', '0 3 * * 0', 'Mars/Base')" 2>&1)" 'time zone "Mars/Base" is unknown'
  check_match "an unknown database is refused" \
    "$(sql $C postgres "INSERT INTO pgops.freeze_job (name, schedule, database) VALUES ('bad', '0 3 * * 0', 'nope')" 2>&1)" 'database "nope" does not exist'
  check_match "a zero budget is refused" \
    "$(sql $C postgres "INSERT INTO pgops.freeze_job (name, schedule, max_duration) VALUES ('bad', '0 3 * * 0', '0')" 2>&1)" 'max_duration must be positive'
  if [ "$v" -lt 16 ]; then
    check_match "BUFFER_USAGE_LIMIT needs PG16" \
      "$(sql $C postgres "INSERT INTO pgops.freeze_job (name, schedule, buffer_usage_limit) VALUES ('bad', '0 3 * * 0', '256MB')" 2>&1)" 'buffer_usage_limit needs PostgreSQL 16'
  else
    check_match "a bad BUFFER_USAGE_LIMIT is refused" \
      "$(sql $C postgres "INSERT INTO pgops.freeze_job (name, schedule, buffer_usage_limit) VALUES ('bad', '0 3 * * 0', '1TB')" 2>&1)" "buffer_usage_limit '1TB' is not valid"
  fi
  check_eq "nothing was stored" "$(sql $C postgres "SELECT count(*) FROM pgops.freeze_job")" 1

  # --- tables of three ages in app --------------------------------------------------------------
  sql $C app "CREATE TABLE oldest (id int, t text); INSERT INTO oldest SELECT i, md5(i::text) FROM generate_series(1, 2000) i" >/dev/null
  burn $C 3000
  sql $C app "CREATE TABLE \"Older table\" (id int, t text); INSERT INTO \"Older table\" SELECT i, md5(i::text) FROM generate_series(1, 2000) i" >/dev/null
  burn $C 3000
  sql $C app "CREATE TABLE young (id int); INSERT INTO young VALUES (1)" >/dev/null
  sql $C app "VACUUM FREEZE pg_catalog.pg_class" >/dev/null
  check_eq "freeze_plan from another database: most urgent first, young tables left out" \
    "$(sql $C postgres "SELECT string_agg(table_name, ',' ORDER BY seq) FROM pgops.freeze_plan('app', 2500) WHERE schema = 'public'")" \
    "oldest,Older table"
  check_eq "and in its own database, with urgency and pages" \
    "$(sql $C postgres "SELECT count(*) > 0 AND bool_and(urgency > 0 AND xid_age >= 2500) FROM pgops.freeze_plan(min_age => 2500)")" t

  # --- a job due in the next minute runs without anyone calling it -------------------------------
  sql $C postgres "INSERT INTO pgops.freeze_job (name, database, schedule, min_age) VALUES ('every minute', 'app', '* * * * *', 2500)" >/dev/null
  echo "  (job created at $(date -u +%T))"
  check_match "freeze_status shows when it runs next" \
    "$(sql $C postgres "SELECT (next_run > now() - interval '2 seconds' AND next_run <= now() + interval '61 seconds')::text FROM pgops.freeze_status WHERE job = 'every minute'")" "^true$"
  if wait_sql $C postgres "SELECT count(*) = 1 FROM pgops.freeze_run WHERE job = 'every minute' AND status NOT IN ('queued', 'running')" 75; then
    ok "the scheduled run happened on its own"
  else
    not_ok "the scheduled run happened on its own" "$(date -u +%T) runs: $(sql $C postgres "SELECT * FROM pgops.freeze_run") job: $(sql $C postgres "SELECT * FROM pgops.freeze_job WHERE name = 'every minute'") launcher: $(sql $C postgres "SELECT state, errors, last_error FROM pgops.workers WHERE name = 'pgops launcher'")"
  fi
  sleep 1
  check_eq "one run for the occurrence, not two" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.freeze_run WHERE job = 'every minute'")" 1
  sql $C postgres "UPDATE pgops.freeze_job SET enabled = false WHERE name = 'every minute'" >/dev/null
  check_eq "it froze the oldest first and succeeded" \
    "$(sql $C postgres "SELECT r.status || '|' || r.trigger || '|' || string_agg(t.table_name || ':' || t.outcome, ',' ORDER BY t.seq)
                        FROM pgops.freeze_run r JOIN pgops.freeze_run_table t ON t.run_id = r.id
                        WHERE r.job = 'every minute' AND t.schema = 'public' GROUP BY r.id")" \
    "succeeded|schedule|oldest:frozen,Older table:frozen"
  check_eq "the tables' ages fell below the target (checked in the catalog)" \
    "$(sql $C app "SELECT bool_and(age(relfrozenxid) < 2500) FROM pg_class WHERE relname IN ('oldest', 'Older table')")" t
  check_eq "the run recorded ages before and after" \
    "$(sql $C postgres "SELECT bool_and(t.xid_age_before >= 2500 AND t.xid_age_after < 2500) FROM pgops.freeze_run_table t JOIN pgops.freeze_run r ON r.id = t.run_id WHERE r.job = 'every minute' AND t.schema = 'public'")" t

  # --- a locked table is skipped and recorded, the rest continue ---------------------------------
  sql $C postgres "INSERT INTO pgops.freeze_job (name, database, schedule, min_age, lock_timeout, enabled) VALUES ('manual', 'app', '0 3 * * 0', 2500, '1s', false)" >/dev/null
  burn $C 3000
  sql_file $C app $'BEGIN;\nLOCK TABLE oldest IN ACCESS EXCLUSIVE MODE;\n\\! sleep 6\nCOMMIT;' >/dev/null &
  local bg=$!
  wait_sql $C app "SELECT count(*) = 1 FROM pg_locks WHERE relation = 'oldest'::regclass AND mode = 'AccessExclusiveLock'" 3
  id=$(sql $C postgres "SELECT run_id FROM pgops.run_freeze('manual')")
  run_done $C "$id" 20
  check_eq "a locked table is skipped after lock_timeout, the others are frozen" \
    "$(sql $C postgres "SELECT r.status || '|' || string_agg(t.table_name || ':' || t.outcome, ',' ORDER BY t.table_name) FROM pgops.freeze_run r
                        JOIN pgops.freeze_run_table t ON t.run_id = r.id WHERE r.id = $id AND t.schema = 'public' GROUP BY r.id")" \
    "partial|Older table:frozen,oldest:skipped: locked,young:frozen"
  check_match "with the reason" "$(sql $C postgres "SELECT error FROM pgops.freeze_run_table WHERE run_id = $id AND table_name = 'oldest'")" "lock timeout"
  wait $bg

  # --- run_freeze refuses a second concurrent run; cancel_freeze stops between tables --------------
  # big is made the most urgent (a low per-table limit) and slow to freeze (cost delay).
  sql $C app "CREATE TABLE big (id int, t text) WITH (autovacuum_freeze_max_age = 100000);
              INSERT INTO big SELECT i, md5(i::text) FROM generate_series(1, 60000) i" >/dev/null
  burn $C 3000
  sql $C postgres "UPDATE pgops.freeze_job SET cost_delay_ms = 5, cost_limit = 1 WHERE name = 'manual'" >/dev/null
  id=$(sql $C postgres "SELECT run_id FROM pgops.run_freeze('manual')")
  check_match "a second run of the same job is refused" \
    "$(sql $C postgres "SELECT * FROM pgops.run_freeze('manual')" 2>&1)" "freeze job \"manual\" is already running \\(run $id\\)"
  wait_sql $C postgres "SELECT status = 'running' FROM pgops.freeze_run WHERE id = $id" 5
  check_match "cancel_freeze on a running run" "$(sql $C postgres "SELECT pgops.cancel_freeze($id)")" "^cancelling"
  run_done $C "$id" 30
  check_eq "the run ends cancelled, before its last table" \
    "$(sql $C postgres "SELECT status || '|' || (tables_done + tables_skipped + tables_failed < tables_planned)::text FROM pgops.freeze_run WHERE id = $id")" "cancelled|true"
  check_match "a finished run cannot be cancelled" "$(sql $C postgres "SELECT pgops.cancel_freeze($id)" 2>&1)" "already finished \\(cancelled\\)"

  # --- the budget: a 1-second run stops after the current table ---------------------------------
  sql $C app "UPDATE big SET id = id" >/dev/null   # every page to visit again
  burn $C 3000
  sql $C postgres "UPDATE pgops.freeze_job SET max_duration = '1 second' WHERE name = 'manual'" >/dev/null
  id=$(sql $C postgres "SELECT run_id FROM pgops.run_freeze('manual')")
  run_done $C "$id" 40
  check_eq "a 1-second budget: one table frozen, the run says the budget was spent" \
    "$(sql $C postgres "SELECT r.status || '|' || r.tables_done || '|' || (r.tables_planned > 1)::text || '|' || t.table_name || '|' || (t.seconds > 1)::text
                        FROM pgops.freeze_run r JOIN pgops.freeze_run_table t ON t.run_id = r.id WHERE r.id = $id")" "budget spent|1|true|big|true"

  # --- several databases ------------------------------------------------------------------------
  # (with BUFFER_USAGE_LIMIT where the server has it)
  sql $C postgres "UPDATE pgops.freeze_job SET database = '*', max_duration = '1 hour', cost_delay_ms = NULL, cost_limit = NULL, min_age = 0,
                   buffer_usage_limit = CASE WHEN current_setting('server_version_num')::int >= 160000 THEN '256MB' END WHERE name = 'manual'" >/dev/null
  out=$(sql $C postgres "SELECT string_agg(database, ',' ORDER BY database) FROM pgops.run_freeze('manual')")
  check_eq "a job over every database queues a run in each" "$out" "app,postgres"
  wait_sql $C postgres "SELECT count(*) = 2 FROM pgops.freeze_run WHERE job = 'manual' AND database IN ('app', 'postgres') AND trigger = 'manual' AND status = 'succeeded' AND id > $id" 60
  check_eq "both ran and succeeded" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.freeze_run WHERE job = 'manual' AND id > $id AND status = 'succeeded'")" 2

  # --- bounded concurrency: never more than pgops.freeze_max_workers database workers -------------
  local d peak=0 n waiting=0
  for d in f1 f2 f3; do
    sql $C postgres "CREATE DATABASE $d" >/dev/null
    sql $C $d "CREATE TABLE t AS SELECT i, md5(i::text) AS m FROM generate_series(1, 20000) i" >/dev/null
  done
  sql $C postgres "ALTER SYSTEM SET pgops.freeze_max_workers = 1" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  sql $C postgres "UPDATE pgops.freeze_job SET database = '*', cost_delay_ms = 2, cost_limit = 200, min_age = 0, buffer_usage_limit = NULL
                   WHERE name = 'manual'" >/dev/null
  local ids; ids=$(sql $C postgres "SELECT string_agg(run_id::text, ',') FROM pgops.run_freeze('manual')")
  for _ in $(seq 1 600); do
    n=$(sql $C postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pgops database worker'")
    [ "$n" -gt "$peak" ] && peak=$n
    [ "$(sql $C postgres "SELECT count(*) FROM pgops.freeze_run WHERE job = 'manual' AND status = 'queued' AND detail LIKE 'waiting: 1 freeze worker(s) running, pgops.freeze_max_workers = 1'")" -gt 0 ] && waiting=1
    [ "$(sql $C postgres "SELECT count(*) FROM pgops.freeze_run WHERE job = 'manual' AND status IN ('queued', 'running')")" = 0 ] && break
    sleep 0.05
  done
  # The runs' own [started_at, finished_at) intervals say how many ran at once, whatever the
  # sampling above caught of short runs.
  local overlap
  overlap=$(sql $C postgres "SELECT max((SELECT count(*) FROM pgops.freeze_run r2 WHERE r2.id = ANY ('{$ids}'::bigint[])
                               AND r2.started_at <= r1.started_at AND r2.finished_at > r1.started_at))
                             FROM pgops.freeze_run r1 WHERE r1.id = ANY ('{$ids}'::bigint[])")
  check_eq "pgops.freeze_max_workers = 1: at most one freeze worker at a time over five databases (runs overlapping; workers seen at once ≤ 1)" \
    "$overlap|$([ "$peak" -le 1 ] && echo ok || echo "$peak seen")" "1|ok"
  check_eq "the others waited in the queue, saying why" "$waiting" 1
  check_eq "and every run succeeded" \
    "$(sql $C postgres "SELECT count(*) FILTER (WHERE status = 'succeeded') || '/' || count(*) FROM pgops.freeze_run WHERE id IN ($ids)")" "5/5"
  sql $C postgres "ALTER SYSTEM RESET pgops.freeze_max_workers" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null

  # --- fast shutdown during a run; the run is marked at the next start ----------------------------
  burn $C 2000
  sql $C postgres "UPDATE pgops.freeze_job SET database = 'app', cost_delay_ms = 50, cost_limit = 1, min_age = 1000 WHERE name = 'manual'" >/dev/null
  id=$(sql $C postgres "SELECT run_id FROM pgops.run_freeze('manual')")
  wait_sql $C postgres "SELECT status = 'running' FROM pgops.freeze_run WHERE id = $id" 5
  sleep 1
  local t0 ms
  t0=$(date +%s%N)
  cluster_stop $C fast
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  check "fast shutdown during a run takes under 5 s ($ms ms)" test "$ms" -lt 5000
  cluster_start $C
  if wait_sql $C postgres "SELECT status = 'failed' AND detail LIKE 'interrupted%' FROM pgops.freeze_run WHERE id = $id" 15; then
    ok "the interrupted run is marked failed at the next start"
  else
    not_ok "the interrupted run is marked failed at the next start" "$(sql $C postgres "SELECT status, detail FROM pgops.freeze_run WHERE id = $id")"
  fi

  # --- a standby runs nothing -------------------------------------------------------------------
  sql $C postgres "UPDATE pgops.freeze_job SET cost_delay_ms = NULL, cost_limit = NULL, enabled = true, schedule = '* * * * *' WHERE name = 'manual'" >/dev/null
  if cluster_standby frz_sb $C; then
    check_match "run_freeze on a standby: a clear error" \
      "$(sql frz_sb postgres "SELECT * FROM pgops.run_freeze('manual')" 2>&1)" "this server is a standby; freeze runs only on the primary"
    sleep 2
    check_eq "the standby's launcher starts no freeze worker" \
      "$(sql frz_sb postgres "SELECT count(*) FROM pgops.workers WHERE name = 'pgops freeze'")" 0
    cluster_stop frz_sb fast
  else
    not_ok "standby starts"
  fi
  sql $C postgres "UPDATE pgops.freeze_job SET enabled = false WHERE name = 'manual'" >/dev/null

  # --- history retention ------------------------------------------------------------------------
  local before
  before=$(sql $C postgres "SELECT count(*) FROM pgops.freeze_run")
  as_pg tee -a "${CL_DIR[$C]}/data/postgresql.conf" <<<"pgops.freeze_history_runs = 2" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  if wait_sql $C postgres "SELECT count(*) = 2 FROM pgops.freeze_run WHERE status NOT IN ('queued', 'running')" 10; then
    ok "retention trims the history to pgops.freeze_history_runs ($before → 2), per-table rows with it"
  else
    not_ok "retention trims the history" "$(sql $C postgres "SELECT count(*) FROM pgops.freeze_run")"
  fi
  check_eq "no per-table row outlives its run" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.freeze_run_table WHERE run_id NOT IN (SELECT id FROM pgops.freeze_run)")" 0

  # --- pg_monitor reads the status --------------------------------------------------------------
  sql $C postgres "CREATE ROLE grafana LOGIN IN ROLE pg_monitor" >/dev/null
  check_eq "pg_monitor reads freeze_status and the history" \
    "$(sql $C postgres "SET ROLE grafana; SELECT count(*) >= 2 FROM pgops.freeze_status WHERE last_status IS NOT NULL OR NOT enabled")" t
  check_match "PUBLIC may not run jobs" \
    "$(sql $C postgres "CREATE ROLE nobody; SET ROLE nobody; SELECT * FROM pgops.run_freeze('manual')" 2>&1)" "permission denied"
}
