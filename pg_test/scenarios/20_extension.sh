# CREATE/DROP EXTENSION in several databases, with and without preload.

scenario_main() {
  local v=$1 C=ext
  cluster_init $C "$v" || { not_ok "initdb"; return 1; }
  cluster_start $C || { not_ok "server starts without preload"; return 1; }
  sql $C postgres "CREATE DATABASE app1" >/dev/null && sql $C postgres "CREATE DATABASE app2" >/dev/null

  # A misspelt setting, while nothing preloads pgops: PostgreSQL 15 reserves the prefix pgops. (an
  # error), 13 and 14 cannot (a placeholder nothing reads); on every major the library warns about
  # one it finds when it loads.
  check_match "a misspelt pgops setting found when the library loads is warned about" \
    "$(sql $C postgres "SET pgops.naptme = '1s'; LOAD 'pgops'" 2>&1)" 'WARNING: .*"pgops\.naptme"'
  if [ "$v" -ge 15 ]; then
    check_match "PG $v: a misspelt pgops setting is an error once pgops is loaded" \
      "$(sql $C postgres "LOAD 'pgops'; SET pgops.naptme = '1s'" 2>&1)" 'invalid configuration parameter name "pgops\.naptme"'
  else
    check_eq "PG $v: a misspelt pgops setting is a placeholder (no prefix can be reserved before 15)" \
      "$(sql $C postgres "LOAD 'pgops'; SET pgops.naptme = '1s'; SELECT current_setting('pgops.naptme')" 2>&1)" "1s"
  fi

  # Without preload: SQL features work, worker views say the workers are not running.
  check "CREATE EXTENSION without preload" sql $C app1 "CREATE EXTENSION pgops"
  check_eq "workers view says not running" \
    "$(sql $C app1 "SELECT string_agg(name || ': ' || state, ' / ' ORDER BY name) FROM pgops.workers")" \
    "pgops etcd: not running: pgops is not in shared_preload_libraries / pgops launcher: not running: pgops is not in shared_preload_libraries"
  check_eq "etcd_status says why nothing is published" \
    "$(sql $C app1 "SELECT enabled || ': ' || state FROM pgops.etcd_status")" \
    "false: not running: pgops is not in shared_preload_libraries"
  check_match "etcd_push_now() explains it needs preload" \
    "$(sql $C app1 "SELECT * FROM pgops.etcd_push_now()" 2>&1)" "needs pgops in shared_preload_libraries"
  # Without preload apply_roles() runs in the caller's transaction: a statement the server refuses
  # is reported with that statement's SQLSTATE (here 22023, a bad setting value), not as an
  # internal error, and nothing is applied.
  sql $C app1 "INSERT INTO pgops.role (name, login, parameters) VALUES ('bad_setting', false, '{\"work_mem\": \"1 parsec\"}')" >/dev/null
  check_match "a refused statement keeps its SQLSTATE (not XX000)" \
    "$(as_pg "$(psql_for "$v")" -X -q -At -v VERBOSITY=verbose -h "${CL_DIR[$C]}" -p "${CL_PORT[$C]}" -U postgres -d app1 -c "SELECT count(*) FROM pgops.apply_roles()" 2>&1)" \
    'ERROR:  22023: pgops.apply_roles\(\): statement [0-9]+ failed: .*work_mem'
  check_eq "and nothing was applied" "$(sql $C app1 "SELECT count(*) FROM pg_roles WHERE rolname = 'bad_setting'")" 0
  sql $C app1 "DELETE FROM pgops.role WHERE name = 'bad_setting'" >/dev/null

  # pg_dump keeps the configuration, and a restore brings it back — seeded rows included.
  sql $C app1 "UPDATE pgops.hba_alias SET value = '{10.1.1.1}' WHERE name = 'admin';
               UPDATE pgops.freeze_job SET enabled = true, schedule = '0 4 * * 6' WHERE name = 'weekly';
               INSERT INTO pgops.freeze_job (name, database, schedule) VALUES ('nightly', 'app1', '0 1 * * *');
               INSERT INTO pgops.security_config VALUES ('superusers', '[\"postgres\", \"ops\"]');
               INSERT INTO pgops.role (name, login) VALUES ('app_reader', true)" >/dev/null
  local dump=${CL_DIR[$C]}/app1.sql
  as_pg "$(pg_bindir "$v")/pg_dump" -h "${CL_DIR[$C]}" -p "${CL_PORT[$C]}" -U postgres -d app1 -f "$dump"
  sql $C postgres "CREATE DATABASE restored" >/dev/null
  local restore_out
  restore_out=$(as_pg "$(psql_for "$v")" -X -q -v ON_ERROR_STOP=1 -h "${CL_DIR[$C]}" -p "${CL_PORT[$C]}" -U postgres -d restored -f "$dump" 2>&1 >/dev/null)
  check_eq "a pg_dump of a database with pgops restores without an error" "$restore_out" ""
  check_eq "… with the configuration, seeded rows changed by the DBA included" \
    "$(sql $C restored "SELECT concat_ws(' | ',
        (SELECT value::text FROM pgops.hba_alias WHERE name = 'admin'),
        (SELECT string_agg(name || ':' || enabled || ':' || schedule, ',' ORDER BY name) FROM pgops.freeze_job),
        (SELECT value::text FROM pgops.security_settings WHERE name = 'superusers'),
        (SELECT string_agg(name, ',') FROM pgops.role))")" \
    '{10.1.1.1} | nightly:true:0 1 * * *,weekly:true:0 4 * * 6 | ["postgres", "ops"] | app_reader'
  sql $C postgres "DROP DATABASE restored" >/dev/null
  check_eq "xid_samples is empty, not an error" "$(sql $C app1 "SELECT count(*) FROM pgops.xid_samples")" 0
  check_eq "instance() works and reports no preload" \
    "$(sql $C app1 "SELECT role || ',' || preloaded FROM pgops.instance()")" "primary,false"
  # Two servers on one host (two Patroni members, a replica beside its primary) must not default
  # to one name: off port 5432 the default carries the port.
  check_eq "the default instance name is <cluster>-<short hostname>-<port> off port 5432" \
    "$(sql $C app1 "SELECT instance = cluster || '-' || split_part(hostname, '.', 1) || '-' || current_setting('port') FROM pgops.instance()")" t
  check_match "installations() explains it needs preload" \
    "$(sql $C app1 "SELECT * FROM pgops.installations()" 2>&1)" "needs pgops in shared_preload_libraries"

  # Preloaded: create in two databases, drop, re-create.
  cluster_stop $C
  cluster_conf $C "shared_preload_libraries = 'pgops'" "pgops.naptime = '200ms'" "pgops.database = 'app1'"
  # With backtraces enabled in the server's environment (as on many a developer's machine), pgrx
  # would attach one to the DETAIL of an error that crossed Rust code: pgops turns capture off.
  RUST_BACKTRACE=1 cluster_start $C || { not_ok "server starts with preload"; return 1; }
  check "CREATE EXTENSION in a second database" sql $C app2 "CREATE EXTENSION pgops"
  check "launcher idle in app1" \
    wait_sql $C app2 "SELECT state = 'idle (pgops 0.1.0)' AND database = 'app1' FROM pgops.workers WHERE name = 'pgops launcher'" 10
  check "DROP EXTENSION in app1" sql $C app1 "DROP EXTENSION pgops"
  check "launcher notices the drop" \
    wait_sql $C app2 "SELECT state = 'waiting: CREATE EXTENSION pgops in database \"app1\"' FROM pgops.workers WHERE name = 'pgops launcher'" 10
  # PostgreSQL creates a control-file schema outside the extension: the empty schema stays.
  check_eq "nothing of pgops is left in app1" \
    "$(sql $C app1 "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pgops'")+$(sql $C app1 "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'pgops'")" "0+0"
  check "re-CREATE EXTENSION in app1" sql $C app1 "CREATE EXTENSION pgops"
  check "launcher idle again" \
    wait_sql $C app1 "SELECT state = 'idle (pgops 0.1.0)' FROM pgops.workers WHERE name = 'pgops launcher'" 10
  check "DROP + re-CREATE in app2 while app1 keeps it" \
    sql $C app2 "DROP EXTENSION pgops; CREATE EXTENSION pgops; SELECT count(*) FROM pgops.workers"
  check_eq "config tables are registered for pg_dump (the others say why not)" \
    "$(sql $C app1 "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'pgops' AND c.relkind = 'r'
                      AND c.oid <> ALL (coalesce((SELECT extconfig FROM pg_extension WHERE extname = 'pgops'), '{}'))
                      AND coalesce(obj_description(c.oid, 'pg_class'), '') NOT LIKE '%Not dumped: %'")" 0
  # A caller's mistake is never reported as an internal error (XX000): each bad call below fails,
  # changes nothing, and carries the SQLSTATE that says what kind of mistake it is.
  local expect=(
    "SELECT pgops.load_roles('{\"x\": 1}')|22023"
    "SELECT pgops.load_roles('[{\"name\": \"a\", \"login\": \"yes\"}]')|22023"
    "SELECT pgops.load_roles('[{\"name\": \"pg_evil\"}]')|23514"
    "SELECT pgops.load_default_privileges('[\"GRANT FLY ON TABLES TO x\"]')|22023"
    "SELECT pgops.set_password('no_such_role', 'x')|42704"
    "INSERT INTO pgops.role (name, login, roles) VALUES ('x', NULL, NULL)|23502"
    "INSERT INTO pgops.freeze_job (name, database, schedule) VALUES ('bad', 'app1', '61 * * * *')|22023"
    "INSERT INTO pgops.freeze_job (name, database, schedule, timezone) VALUES ('bad', 'app1', '0 3 * * *', 'Mars/Olympus')|22023"
    "SELECT pgops.run_freeze('no_such_job')|42704"
    "SELECT pgops.cancel_freeze(987654)|42704"
    "SELECT count(*) FROM pgops.freeze_plan('no_such_db')|3D000"
    "SELECT count(*) FROM pgops.verify_bloat(-1)|22023"
    "INSERT INTO pgops.hba_rule (title, \"user\", db, addr, auth) VALUES ('bad', 'all', 'all', 'not-an-address', 'pwd')|23514"
    "SELECT count(*) FROM pgops.cluster_members()|55000"
    "SELECT count(*) FROM pgops.etcd_push_now()|55000"
  )
  local e stmt want got bad_codes=()
  for e in "${expect[@]}"; do
    stmt=${e%|*}; want=${e##*|}
    got=$(sql $C app1 "DO \$\$ DECLARE s text; BEGIN
        BEGIN EXECUTE \$q\$$stmt\$q\$; RAISE NOTICE 'no error';
        EXCEPTION WHEN OTHERS THEN GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE; RAISE NOTICE '%', s; END; END \$\$" 2>&1 | sed -n 's/^NOTICE: *//p')
    [ "$got" = "$want" ] || bad_codes+=("$stmt → $got (want $want)")
  done
  check_eq "${#expect[@]} bad calls fail with the SQLSTATE of the mistake, none as XX000" "$(printf '%s; ' "${bad_codes[@]}")" "; "
  check_eq "and changed nothing" \
    "$(sql $C app1 "SELECT (SELECT count(*) FROM pgops.role WHERE name IN ('x', 'a', 'pg_evil'))
                        + (SELECT count(*) FROM pgops.freeze_job WHERE name = 'bad')
                        + (SELECT count(*) FROM pgops.hba_rule WHERE title = 'bad')
                        + (SELECT count(*) FROM pgops.freeze_run)")" 0
  local verbose
  verbose=$(as_pg "$(psql_for "$v")" -X -q -At -v VERBOSITY=verbose -h "${CL_DIR[$C]}" -p "${CL_PORT[$C]}" -U postgres -d app1 \
    -c "SELECT pgops.load_roles('[{\"name\": \"bt\", \"connlimit\": -5}]')" 2>&1)
  if [[ "$verbose" == *"ERROR:  23514:"* && "$verbose" != *pgrx* && "$verbose" != *"DETAIL"* ]]; then
    ok "no Rust backtrace reaches the client (RUST_BACKTRACE=1 in the server's environment)"
  else
    not_ok "no Rust backtrace reaches the client (RUST_BACKTRACE=1 in the server's environment)" "$(printf '%s' "$verbose" | head -4)"
  fi
  check "the extension needs a superuser to create" \
    sql $C postgres "CREATE ROLE plain LOGIN; SET ROLE plain; DO \$\$ BEGIN
       BEGIN CREATE EXTENSION pgops; RAISE EXCEPTION 'a plain role created pgops';
       EXCEPTION WHEN insufficient_privilege THEN NULL; END; END \$\$"
}
