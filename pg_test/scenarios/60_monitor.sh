# Monitoring views: ages rise and fall, TOAST counted, every xmin blocker kind appears and goes,
# the wraparound forecast, pg_monitor access.

burn() { # burn CLUSTER DB N — consume N transaction IDs, one committed transaction each
  sql "$1" "$2" "DO \$\$ BEGIN FOR i IN 1..$3 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END \$\$" >/dev/null
}

scenario_main() {
  local v=$1 C=mon
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "pgops.sample_interval = '200ms'" "pgops.naptime = '100ms'" \
    "max_prepared_transactions = 5" "wal_level = logical" "wal_receiver_status_interval = 1s" "hot_standby_feedback = on" "autovacuum = off" \
    || { not_ok "initdb"; return 1; }
  cluster_start $C || { not_ok "server starts"; return 1; }
  sql $C postgres "CREATE EXTENSION pgops" >/dev/null
  sql $C postgres "CREATE DATABASE mon" >/dev/null
  sql $C mon "CREATE EXTENSION pgops; CREATE TABLE t(id int, doc text); ALTER TABLE t ALTER doc SET STORAGE EXTERNAL;
              INSERT INTO t SELECT i, repeat(md5(i::text), 200) FROM generate_series(1, 50) i" >/dev/null
  sql $C mon "VACUUM FREEZE" >/dev/null

  # --- ages rise with burnt XIDs and fall after VACUUM FREEZE -----------------------------------
  local a0; a0=$(sql $C mon "SELECT xid_age FROM pgops.database_age WHERE database = 'mon'")
  burn $C postgres 600
  check "database age rises with consumed XIDs" \
    wait_sql $C mon "SELECT xid_age >= $a0 + 600 AND xids_remaining = 2147483648 - 3000000 - xid_age AND xid_pct_of_wraparound > 0 FROM pgops.database_age WHERE database = 'mon'" 2
  check_eq "table age counts its TOAST table" \
    "$(sql $C mon "SELECT (xid_age >= 600)::text || ',' || (toast_xid_age IS NOT NULL)::text FROM pgops.table_age WHERE table_name = 't'")" "true,true"
  if [ "$v" -ge 14 ]; then
    sql $C mon "VACUUM (FREEZE, PROCESS_TOAST false) t" >/dev/null
    check_eq "after freezing only the heap, the TOAST age is the table's age" \
      "$(sql $C mon "SELECT (heap_xid_age < 10)::text || ',' || (xid_age = toast_xid_age)::text || ',' || (xid_age >= 600)::text FROM pgops.table_age WHERE table_name = 't'")" "true,true,true"
  fi
  sql $C mon "VACUUM FREEZE" >/dev/null
  check_eq "ages fall after VACUUM FREEZE" \
    "$(sql $C mon "SELECT (d.xid_age < 100)::text || ',' || (t.xid_age < 100)::text FROM pgops.database_age d, pgops.table_age t WHERE d.database = 'mon' AND t.table_name = 't'")" "true,true"
  check_eq "forced-vacuum headroom follows autovacuum_freeze_max_age" \
    "$(sql $C mon "SELECT freeze_max_age = current_setting('autovacuum_freeze_max_age')::bigint AND NOT wraparound_vacuum_due FROM pgops.table_age WHERE table_name = 't'")" t
  sql $C mon "ALTER TABLE t SET (autovacuum_freeze_max_age = 100000)" >/dev/null
  check_eq "a per-table autovacuum_freeze_max_age lowers the threshold" \
    "$(sql $C mon "SELECT freeze_max_age FROM pgops.table_age WHERE table_name = 't'")" 100000

  # --- xmin blockers: each kind appears while it exists and goes away -----------------------------
  sql_file $C mon "BEGIN; SELECT pg_current_xact_id(); SELECT pg_sleep(4); COMMIT;" >/dev/null &
  local bg=$!
  check "a long transaction shows as a blocker" \
    wait_sql $C postgres "SELECT count(*) = 1 FROM pgops.xmin_blockers WHERE kind = 'transaction' AND database = 'mon' AND xmin_age >= 0 AND seconds >= 0" 3
  wait $bg
  check "and is gone when it ends" wait_sql $C postgres "SELECT count(*) = 0 FROM pgops.xmin_blockers WHERE database = 'mon'" 3
  sql_file $C mon $'BEGIN;\nSELECT pg_current_xact_id();\n\\! sleep 3\nCOMMIT;' >/dev/null &
  bg=$!
  check "an idle-in-transaction session shows as one" \
    wait_sql $C postgres "SELECT count(*) = 1 FROM pgops.xmin_blockers WHERE kind = 'idle in transaction' AND database = 'mon'" 3
  wait $bg
  check "and is gone at commit" wait_sql $C postgres "SELECT count(*) = 0 FROM pgops.xmin_blockers WHERE database = 'mon'" 3
  sql_file $C mon "BEGIN; CREATE TABLE prepared_t(i int); PREPARE TRANSACTION 'pgops_test';" >/dev/null
  check_eq "a prepared transaction shows, with its gid" \
    "$(sql $C postgres "SELECT kind || '|' || holder || '|' || (xmin_age >= 0) FROM pgops.xmin_blockers WHERE database = 'mon'")" "prepared transaction|pgops_test|true"
  sql $C mon "COMMIT PREPARED 'pgops_test'" >/dev/null
  check_eq "and is gone once committed" "$(sql $C postgres "SELECT count(*) FROM pgops.xmin_blockers WHERE kind = 'prepared transaction'")" 0
  sql $C mon "SELECT pg_create_logical_replication_slot('pgops_slot', 'test_decoding')" >/dev/null
  check_eq "a logical slot shows with its catalog_xmin" \
    "$(sql $C postgres "SELECT kind || '|' || holder || '|' || (xmin IS NOT NULL) FROM pgops.xmin_blockers WHERE holder = 'pgops_slot'")" "replication slot (logical)|pgops_slot|true"
  sql $C mon "SELECT pg_drop_replication_slot('pgops_slot')" >/dev/null
  check_eq "and is gone once dropped" "$(sql $C postgres "SELECT count(*) FROM pgops.xmin_blockers WHERE holder = 'pgops_slot'")" 0
  if cluster_standby mon_sb $C; then
    sql_file mon_sb postgres $'BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT count(*) FROM pg_class;\n\\! sleep 5\nCOMMIT;' >/dev/null &
    bg=$!
    check "standby feedback shows while the standby holds a snapshot" \
      wait_sql $C postgres "SELECT count(*) = 1 FROM pgops.xmin_blockers WHERE kind = 'standby feedback'" 4
    wait $bg
    cluster_stop mon_sb fast
    check "and is gone without the standby" wait_sql $C postgres "SELECT count(*) = 0 FROM pgops.xmin_blockers WHERE kind = 'standby feedback'" 5
  else
    not_ok "standby starts"
  fi

  # --- forecast ---------------------------------------------------------------------------------
  check "samples span enough time" wait_sql $C postgres "SELECT count(*) >= 5 FROM pgops.xid_samples" 5
  burn $C postgres 2000
  sleep 1
  check_eq "forecast has a rate and times to every limit" \
    "$(sql $C postgres "SELECT (xids_per_second > 0)::text || ',' || (seconds_to_stop_limit > seconds_to_freeze_max_age)::text || ',' || coalesce(reason, 'ok') FROM pgops.wraparound_forecast WHERE database = 'mon'" | sed 's/vacuum_failsafe_age needs PostgreSQL 14/ok/')" "true,true,ok"
  check_eq "time to the stop limit = XIDs left / rate" \
    "$(sql $C postgres "SELECT abs(f.seconds_to_stop_limit * f.xids_per_second - d.xids_remaining) < 2 FROM pgops.wraparound_forecast f JOIN pgops.database_age d USING (database) WHERE database = 'mon'")" t

  # --- pg_monitor reads every view ------------------------------------------------------------------
  sql $C mon "CREATE ROLE grafana LOGIN IN ROLE pg_monitor" >/dev/null
  local views=0 view
  for view in database_age table_age xmin_blockers wraparound_forecast xid_samples workers; do
    sql $C mon "SET ROLE grafana; SELECT count(*) FROM pgops.$view" >/dev/null 2>&1 && views=$((views + 1))
  done
  check_eq "a pg_monitor-only role reads all 6 monitoring views" "$views" 6

  # --- without preload the forecast says why ------------------------------------------------------
  cluster_stop $C
  sed -i "s/^shared_preload_libraries = 'pgops'/#&/" "${CL_DIR[$C]}/data/postgresql.conf"
  cluster_start $C
  check_match "without preload the forecast is NULL with a reason" \
    "$(sql $C mon "SELECT coalesce(xids_per_second::text, 'NULL') || '|' || reason FROM pgops.wraparound_forecast WHERE database = 'mon'")" \
    "^NULL\|no samples: pgops is not in shared_preload_libraries$"
}
