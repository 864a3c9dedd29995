# The worker backbone on a preloaded server: launcher, samples, restarts, errors, SIGHUP, shutdown.

scenario_main() {
  local v=$1 C=bb
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "pgops.naptime = '200ms'" \
    "pgops.sample_interval = '5s'" "pgops.launcher_restart_time = 1" || { not_ok "initdb"; return 1; }
  cluster_start $C || { not_ok "server starts with pgops preloaded"; cat "${CL_DIR[$C]}/server.log"; return 1; }
  ok "server starts with pgops preloaded"

  # Before CREATE EXTENSION the launcher runs and says what it waits for. The view needs the
  # extension, so read its state from pg_stat_activity and the server log.
  check "launcher runs before CREATE EXTENSION" \
    wait_sql $C postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgops launcher'" 10
  sql $C postgres "CREATE EXTENSION pgops" >/dev/null
  check "launcher turns idle once the extension exists" \
    wait_sql $C postgres "SELECT state = 'idle (pgops 0.1.0)' FROM pgops.workers WHERE name = 'pgops launcher'" 10
  check_eq "launcher connected to pgops.database" \
    "$(sql $C postgres "SELECT database FROM pgops.workers WHERE name = 'pgops launcher'")" postgres
  check "xid samples accumulate" wait_sql $C postgres "SELECT count(*) >= 2 FROM pgops.xid_samples" 12

  # The launcher reads without taking transaction IDs: an idle cluster does not age.
  # (pg_current_snapshot() reads the next XID without assigning one.)
  local x0; x0=$(sql $C postgres "SELECT pg_snapshot_xmax(pg_current_snapshot())")
  sleep 2
  check_eq "an idle launcher consumes no transaction ID (10 turns)" \
    "$(sql $C postgres "SELECT pg_snapshot_xmax(pg_current_snapshot())")" "$x0"

  # SIGHUP: a shorter sample interval takes effect without a restart.
  sql $C postgres "ALTER SYSTEM SET pgops.sample_interval = '100ms'" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  local n; n=$(sql $C postgres "SELECT count(*) FROM pgops.xid_samples")
  check "reloaded sample interval applies (10 more samples within 3 s)" \
    wait_sql $C postgres "SELECT count(*) >= $n + 10 FROM pgops.xid_samples" 3

  # The loop survives failing turns: errors counted and shown, same pid, runs go on.
  local pid0 start0; pid0=$(sql $C postgres "SELECT pid FROM pgops.workers WHERE name = 'pgops launcher'")
  start0=$(sql $C postgres "SELECT pg_postmaster_start_time()")
  sql $C postgres "ALTER SYSTEM SET pgops.debug_launcher_error = on" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  check "failing turns are recorded in pgops.workers" \
    wait_sql $C postgres "SELECT errors >= 3 AND last_error LIKE 'injected launcher error%' AND last_error_at IS NOT NULL FROM pgops.workers WHERE name = 'pgops launcher'" 10
  grep -q 'pgops launcher: turn failed: injected launcher error' "${CL_DIR[$C]}/server.log" \
    && ok "failing turns are logged" || not_ok "failing turns are logged"
  sql $C postgres "ALTER SYSTEM RESET pgops.debug_launcher_error" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  check "launcher recovers after the errors stop" \
    wait_sql $C postgres "SELECT state = 'idle (pgops 0.1.0)' FROM pgops.workers WHERE name = 'pgops launcher'" 10
  check_eq "errors did not restart the launcher (same pid)" \
    "$(sql $C postgres "SELECT pid FROM pgops.workers WHERE name = 'pgops launcher'")" "$pid0"

  # pg_terminate_backend: the launcher is back within its restart time; the postmaster did not restart.
  sql $C postgres "SELECT pg_terminate_backend($pid0)" >/dev/null
  check "terminated launcher is back within its restart time" \
    wait_sql $C postgres "SELECT pid IS NOT NULL AND pid <> $pid0 AND starts = 2 FROM pgops.workers WHERE name = 'pgops launcher'" 4
  check_eq "postmaster did not restart" "$(sql $C postgres "SELECT pg_postmaster_start_time()")" "$start0"
  check "samples kept across the launcher restart" \
    wait_sql $C postgres "SELECT count(*) >= $n + 10 FROM pgops.xid_samples" 2

  # Changing pgops.database makes the launcher reconnect to the new database.
  sql $C postgres "CREATE DATABASE ops" >/dev/null
  sql $C ops "CREATE EXTENSION pgops" >/dev/null
  sql $C postgres "ALTER SYSTEM SET pgops.database = 'ops'" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  check "launcher follows a reloaded pgops.database" \
    wait_sql $C postgres "SELECT database = 'ops' AND state = 'idle (pgops 0.1.0)' FROM pgops.workers WHERE name = 'pgops launcher'" 8

  # Per-database workers: one per connectable database, each reporting what is installed there.
  check_eq "installations() reports each database" \
    "$(sql $C postgres "SELECT string_agg(database || '=' || coalesce(installed_version, '-'), ',' ORDER BY database) FROM pgops.installations()")" \
    "ops=0.1.0,postgres=0.1.0"
  sql $C postgres "DROP EXTENSION pgops" >/dev/null
  check_eq "installations() sees the drop" \
    "$(sql $C ops "SELECT string_agg(database || '=' || coalesce(installed_version, '-'), ',' ORDER BY database) FROM pgops.installations()")" \
    "ops=0.1.0,postgres=-"

  # On a streaming standby the launcher runs too (read-only), and samples the replayed counters.
  sql $C postgres "CREATE EXTENSION pgops" >/dev/null
  if RUST_BACKTRACE=1 cluster_standby bb_sb $C; then
    check "launcher runs on a standby" \
      wait_sql bb_sb postgres "SELECT state = 'idle (pgops 0.1.0)' AND pid IS NOT NULL FROM pgops.workers WHERE name = 'pgops launcher'" 10
    check "xid samples accumulate on the standby" wait_sql bb_sb postgres "SELECT count(*) >= 3 FROM pgops.xid_samples" 5
    check_eq "per-database workers run on the standby" \
      "$(sql bb_sb postgres "SELECT string_agg(database || '=' || coalesce(installed_version, '-'), ',' ORDER BY database) FROM pgops.installations()")" \
      "ops=0.1.0,postgres=0.1.0"
    check_eq "the standby's launcher never failed" "$(sql bb_sb postgres "SELECT errors FROM pgops.workers WHERE name = 'pgops launcher'")" 0
    # Every function that writes refuses on a standby, first thing, with 25006 and what to do —
    # no internal error, no Rust backtrace, no plaintext argument in the standby's log.
    local writes=(
      "SELECT pgops.load_roles('[{\"name\": \"sb_user\", \"password\": \"Standby.Plain.Secret1\"}]')"
      "SELECT pgops.set_password('postgres', 'Standby.Plain.Secret2')"
      "SELECT pgops.load_default_privileges('[\"GRANT SELECT ON TABLES TO sb_user\"]')"
      "SELECT pgops.load_pigsty_baseline()"
      "SELECT pgops.load_hba_rules('[{\"title\": \"sb\", \"user\": \"all\", \"db\": \"all\", \"addr\": \"world\", \"auth\": \"pwd\"}]')"
      "SELECT pgops.load_pigsty_hba_defaults()"
      "SELECT count(*) FROM pgops.apply_roles()"
      "SELECT count(*) FROM pgops.run_freeze('weekly')"
    )
    local w out bad=()
    for w in "${writes[@]}"; do
      out=$(as_pg "$(psql_for "$v")" -X -q -At -v VERBOSITY=verbose -h "${CL_DIR[bb_sb]}" -p "${CL_PORT[bb_sb]}" -U postgres -d postgres -c "$w" 2>&1)
      [[ "$out" == *"ERROR:  25006:"*standby* && "$out" == *"HINT:"* && "$out" != *pgrx* && "$out" != *"DETAIL"* ]] \
        || bad+=("$w → $(printf '%s' "$out" | head -3 | tr '\n' ' ')")
    done
    check_eq "${#writes[@]} writing functions refuse on a standby with 25006 and a hint (no XX000, no backtrace)" \
      "$(printf '%s; ' "${bad[@]}")" "; "
    check_eq "no plaintext argument reached the standby's log" \
      "$(grep -c 'Standby.Plain.Secret' "${CL_DIR[bb_sb]}/server.log")" 0
    cluster_stop bb_sb fast
  else
    not_ok "standby starts"
  fi

  # A clean fast shutdown with pgops loaded takes well under 5 s.
  local t0 t1
  t0=$(date +%s%N)
  cluster_stop $C fast
  t1=$(date +%s%N)
  local ms=$(( (t1 - t0) / 1000000 ))
  if [ $ms -lt 5000 ]; then ok "fast shutdown in ${ms} ms (< 5000)"; else not_ok "fast shutdown took ${ms} ms"; fi
  grep -q 'terminated by signal\|server process .* was terminated' "${CL_DIR[$C]}/server.log" \
    && not_ok "no process crashed during the scenario" "$(grep -m3 'terminated by signal' "${CL_DIR[$C]}/server.log")" \
    || ok "no process crashed during the scenario"
}
