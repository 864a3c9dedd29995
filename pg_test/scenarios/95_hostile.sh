# Hostile tenants: a non-superuser database owner plants look-alikes of every function, aggregate
# and operator pgops' SQL mentions (derived from the sources by pg_test/hostile_names.py) in a
# database with pgops and in one without, sets hostile per-database settings, and fakes a pgops
# schema where the extension is not installed. Then every path that does work there runs — role
# plan/apply/drift/summary, installations(), freeze plans, a manual and a scheduled freeze run,
# bloat views and verify_bloat, table_age, the security audit, HBA render/lint/match/apply, the etcd
# worker's collection — and no planted code may run as a superuser, no role may change, and the
# other databases' planning still works. Negative controls show the plants are live and the check
# can fail. Also: control characters never reach pg_hba.conf, pgops_admin's limits, and no
# plaintext password in the server log when a call fails.
# Flows, not only queries: a clone of the tenant's database with a baseline, recreate, a database
# created for the tenant while it tries to get in, a failed hand-over, schemas and extensions the
# tenant got to first, HBA rows pgops_admin may not touch, Patroni keys written by a peer. Every
# worker task and launcher turn the code builds (pg_test/hostile_flows.py) must have run while the
# tenant's objects were planted.

# usql USER DB "statement" — as another role (trust on the socket)
usql() {
  local user=$1 db=$2; shift 2
  as_pg "$(psql_for "${CL_VER[$C]}")" -X -q -At -v ON_ERROR_STOP=1 \
    -h "${CL_DIR[$C]}" -p "${CL_PORT[$C]}" -U "$user" -d "$db" -c "$*"
}
# psql_as USER DB FILE [psql args] — a script as another role
psql_as() {
  local user=$1 db=$2 f=$3; shift 3
  as_pg "$(psql_for "${CL_VER[$C]}")" -X -q -At -v ON_ERROR_STOP=1 \
    -h "${CL_DIR[$C]}" -p "${CL_PORT[$C]}" -U "$user" -d "$db" "$@" -f "$f"
}
# calm USER DB "statement" — a caller who protects its own session from the database's timeouts,
# read-only default and role (the client's options beat the database's), nothing else: the hostile
# search_path and every other hostile setting still apply to its session, so its own statements
# qualify every function and operator (pg_catalog.count(*)): only pgops' functions may resolve
# names for it.
calm() {
  local user=$1 db=$2 extra=""; shift 2
  [ "${CL_VER[$C]}" -ge 17 ] && extra="-c transaction_timeout=0 "
  as_pg env PGOPTIONS="$extra-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 -c default_transaction_read_only=off -c exit_on_error=off -c default_transaction_isolation=read\\ committed -c role=none -c session_authorization=$user -c restrict_nonsystem_relation_kind=" \
    "$(psql_for "${CL_VER[$C]}")" -X -q -At -v ON_ERROR_STOP=1 \
    -h "${CL_DIR[$C]}" -p "${CL_PORT[$C]}" -U "$user" -d "$db" -c "$*"
}
# check_calm DESCRIPTION USER DB QUERY REGEX — a calm caller's query; its output (stdout) must match
check_calm() {
  local d=$1 user=$2 db=$3 q=$4 re=$5 out err
  err=$(mktemp)
  out=$(calm "$user" "$db" "$q" 2>"$err")
  if [[ "$out" =~ $re ]]; then ok "$d"; else not_ok "$d" "got [$out] $(grep -v 'permission denied to set role' "$err" | head -5)"; fi
  rm -f "$err"
}
server_log() { cat "${CL_DIR[$C]}/server.log"; }
superuser_traps() { server_log | grep -c 'pgops-hostile: .* (superuser t)'; }
roles_snapshot() {
  sql $C postgres "SELECT string_agg(format('%s:%s%s%s%s%s%s', rolname, rolsuper::int, rolcreaterole::int, rolcreatedb::int,
    rolreplication::int, rolbypassrls::int, rolcanlogin::int), ' ' ORDER BY rolname) FROM pg_authid WHERE rolname <> 'hostile_app'"
}

scenario_main() {
  local v=$1 out names before db f t_plants refused_settings=() applied_settings=()
  C=hos
  etcd_start hx || { not_ok "etcd starts"; return 1; }
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "pgops.naptime = '200ms'" "cluster_name = 'pg-hostile'" \
    "pgops.instance_name = 'pg-hostile-1'" "pgops.etcd_endpoints = '${ETCD_URL[hx]}'" "pgops.etcd_interval = '1s'" \
    "pgops.etcd_ttl = '5s'" "pgops.etcd_timeout = '500ms'" "pgops.launcher_restart_time = 1" "autovacuum = off" \
    "log_min_messages = debug1" || { not_ok "initdb"; return 1; }
  cluster_start $C || { not_ok "server starts"; return 1; }
  sql $C postgres "CREATE EXTENSION pgops; CREATE ROLE tenant LOGIN; CREATE ROLE watcher LOGIN IN ROLE pg_monitor;
    CREATE ROLE hbaadmin LOGIN IN ROLE pgops_admin" >/dev/null
  for db in with_pgops without_pgops; do sql $C postgres "CREATE DATABASE $db OWNER tenant" >/dev/null; done
  sql $C postgres "CREATE DATABASE bystander" >/dev/null
  sql $C with_pgops "CREATE EXTENSION pgops; CREATE EXTENSION pgstattuple" >/dev/null
  sql $C bystander "CREATE EXTENSION pgops; CREATE TABLE t (id int)" >/dev/null
  for db in with_pgops without_pgops; do
    usql tenant $db "CREATE TABLE public.ledger (id int PRIMARY KEY, note text);
      INSERT INTO public.ledger SELECT i, md5(i::text) FROM generate_series(1, 5000) i; DELETE FROM public.ledger WHERE id % 3 = 0;
      ANALYZE public.ledger" >/dev/null
  done

  # --- the tenant plants its look-alikes -----------------------------------------------------------
  names=$(python3 "$PGOPS_ROOT/pg_test/hostile_names.py" "$PGOPS_ROOT")
  check_match "names derived from pgops' sources (src/ and sql/)" \
    "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["functions"]) > 100, "jsonb_agg" in d["functions"], "=" in d["operators"])' <<<"$names")" \
    "True True True"
  f=$(mktemp "${CL_DIR[$C]}/plant.XXXXXX.sql")
  { printf "SELECT set_config('hostile.names', %s, false) \\\\g /dev/null\n" "'$names'"; cat "$PGOPS_ROOT/pg_test/fixtures/hostile_plant.sql"; } > "$f"
  chmod 644 "$f"
  for db in with_pgops without_pgops; do
    psql_as tenant $db "$f" >/dev/null || not_ok "planting in $db"
  done
  # The tenant's own objects the flows below must never run as a superuser: a settings table whose
  # trigger calls the trap (a superuser firing it would make the tenant one), and a schema it
  # created before anyone declared it, with a look-alike of an extension's function in it.
  usql tenant with_pgops "CREATE TABLE public.app_settings (k text PRIMARY KEY, v text);
    INSERT INTO public.app_settings VALUES ('theme', 'dark');
    CREATE FUNCTION public.settings_changed() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN PERFORM evil.trap(''app_settings trigger''); RETURN NEW; END';
    CREATE TRIGGER settings_changed AFTER UPDATE ON public.app_settings FOR EACH ROW EXECUTE FUNCTION public.settings_changed();
    CREATE SCHEMA ext_here;
    CREATE FUNCTION ext_here.pg_buffercache_pages() RETURNS SETOF record LANGUAGE sql AS 'SELECT NULL::record WHERE false'" >/dev/null \
    || not_ok "the tenant's settings table and schema"
  # Every flow below must run after this line of the server log (the flow coverage at the end).
  local planted_at; planted_at=$(( $(server_log | wc -l) + 1 ))
  out=$(usql tenant with_pgops "SELECT format('%s functions, %s aggregates, %s operators planted; %s refused to a non-superuser',
      count(*) FILTER (WHERE kind = 'function'), count(*) FILTER (WHERE kind = 'aggregate'),
      count(*) FILTER (WHERE kind = 'operator'), (SELECT count(*) FROM evil.refused)) FROM evil.planted")
  echo "  ($out)"
  check_eq "the issue's example is planted: public.jsonb_agg(name) and evil.=(name, name)" \
    "$(usql tenant with_pgops "SELECT count(*) FROM evil.planted WHERE signature IN ('public.jsonb_agg(name)', 'evil.=(name, name)')")" 2
  check_eq "casts between built-in types are refused to the owner" \
    "$(usql tenant with_pgops "SELECT count(*) FROM evil.refused WHERE kind = 'cast' AND error LIKE 'must be owner of type%'")" 6
  usql tenant with_pgops "SELECT * FROM evil.planted" > "${CL_DIR[$C]}/planted.txt"
  [ -n "${PGOPS_HOSTILE_LIST:-}" ] && cp "${CL_DIR[$C]}/planted.txt" "$PGOPS_HOSTILE_LIST"

  # A fake pgops schema where the extension is not installed: every pgops function and relation.
  sql $C postgres "SELECT format('CREATE FUNCTION pgops.%I(%s) RETURNS %s LANGUAGE plpgsql AS %L;', p.proname,
        pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
        format('BEGIN PERFORM evil.trap(%L); RETURN%s; END', 'pgops.' || p.proname,
               CASE WHEN p.proretset OR p.prorettype = 'void'::regtype OR p.proargmodes IS NOT NULL THEN '' ELSE ' NULL' END))
      FROM pg_proc p WHERE p.pronamespace = 'pgops'::regnamespace
      UNION ALL
      SELECT format('CREATE VIEW pgops.%I AS SELECT %s FROM (SELECT evil.trap(%L)) t;', c.relname,
        (SELECT string_agg(format('NULL::%s AS %I', format_type(a.atttypid, a.atttypmod), a.attname), ', ' ORDER BY a.attnum)
         FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), 'pgops.' || c.relname)
      FROM pg_class c WHERE c.relnamespace = 'pgops'::regnamespace AND c.relkind IN ('r', 'v')" > "${CL_DIR[$C]}/fake.sql"
  { echo "CREATE SCHEMA pgops;"; cat "${CL_DIR[$C]}/fake.sql"; } > "$f"
  as_pg "$(psql_for "$v")" -X -q -h "${CL_DIR[$C]}" -p "${CL_PORT[$C]}" -U tenant -d without_pgops -f "$f" >/dev/null 2>&1
  check_match "a fake pgops schema in the database without the extension" \
    "$(usql tenant without_pgops "SELECT count(*) > 50 FROM pg_proc WHERE pronamespace = 'pgops'::regnamespace")" t

  # --- hostile per-database settings (the owner may attach every user-settable one) -----------------
  for db in with_pgops without_pgops; do
    for s in "search_path = evil, pg_catalog, public" "statement_timeout = '1ms'" "lock_timeout = '1ms'" \
      "idle_in_transaction_session_timeout = '1ms'" "transaction_timeout = '1ms'" "default_transaction_read_only = on" \
      "default_transaction_isolation = 'serializable'" "default_transaction_deferrable = on" \
      "standard_conforming_strings = off" "transform_null_equals = on" "array_nulls = off" "\"DateStyle\" = 'SQL, DMY'" \
      "\"IntervalStyle\" = 'sql_standard'" "extra_float_digits = -15" "bytea_output = 'escape'" "quote_all_identifiers = on" \
      "check_function_bodies = off" "exit_on_error = on" "row_security = off" "\"TimeZone\" = 'Pacific/Chatham'" \
      "work_mem = '64kB'" "vacuum_cost_delay = 100" "vacuum_freeze_min_age = 1000000000" "synchronous_commit = off" \
      "plpgsql.extra_errors = 'all'" "xmloption = document" "role = tenant" "session_replication_role = replica" \
      "temp_tablespaces = 'nosuch'" "password_encryption = md5" "session_authorization = tenant" \
      "debug_print_parse = on" "restrict_nonsystem_relation_kind = 'view'" "scram_iterations = 1"; do
      if calm tenant $db "ALTER DATABASE $db SET $s" >/dev/null 2>&1; then
        [ $db = with_pgops ] && applied_settings+=("${s%% =*}")
      else
        [ $db = with_pgops ] && refused_settings+=("${s%% =*}")
      fi
    done
  done
  echo "  (settings the owner attached: ${applied_settings[*]})"
  echo "  (refused to the owner by PostgreSQL: ${refused_settings[*]:-none})"
  check_match "the owner could attach search_path, timeouts, read-only, standard_conforming_strings" \
    "${applied_settings[*]}" 'search_path statement_timeout lock_timeout .*default_transaction_read_only .*standard_conforming_strings'

  # Negative control 1: the plants are live — the tenant's own query in its database runs them.
  calm tenant with_pgops "SELECT jsonb_agg(rolname) FROM pg_roles" >/dev/null 2>&1
  check_match "negative control: the tenant's own query runs the planted jsonb_agg (as the tenant)" \
    "$(server_log | grep -c 'pgops-hostile: .* ran as tenant (superuser f) in with_pgops')" '^[1-9]'

  before=$(roles_snapshot)
  # --- every path that does work there ------------------------------------------------------------------
  sql $C postgres "INSERT INTO pgops.role (name, login) VALUES ('hostile_app', false);
    INSERT INTO pgops.default_privilege (creator, object_type, privileges, grantee, existing)
    VALUES ('tenant', 'tables', '{SELECT}', 'hostile_app', true)" >/dev/null
  check_match "plan_roles() plans every database, the hostile ones included" \
    "$(sql $C postgres "SELECT string_agg(DISTINCT coalesce(database, '-'), ',') FROM pgops.plan_roles()" 2>&1)" 'bystander.*with_pgops'
  out=$(sql $C postgres "SELECT string_agg(DISTINCT status, ',') FROM pgops.apply_roles()" 2>&1)
  check_eq "apply_roles() applies in every database" "$out" "applied"
  check_eq "the grant reached the tenant's table, through its hostile settings" \
    "$(calm postgres with_pgops "SELECT pg_catalog.has_table_privilege('hostile_app', 'public.ledger', 'SELECT')")" t
  check_eq "role_drift: converged" "$(sql $C postgres "SELECT count(*) FROM pgops.role_drift" 2>&1)" 0
  check_eq "role_drift_summary: zero differences" "$(sql $C postgres "SELECT differences FROM pgops.role_drift_summary" 2>&1)" 0
  # Declared databases: the tenant's database declared with a schema, a setting and a comment.
  sql $C postgres "INSERT INTO pgops.database_spec (name, schemas, parameters, comment)
                   VALUES ('with_pgops', '[\"hostile_managed\"]', '{\"work_mem\": \"8MB\"}', 'the tenant''s')" >/dev/null
  check_match "plan_databases() reads the tenant's database (its schemas, in it)" \
    "$(sql $C postgres "SELECT string_agg(runs || ':' || statement, ',' ORDER BY seq) FROM pgops.plan_databases()" 2>&1)" \
    'in with_pgops as superuser:CREATE SCHEMA "hostile_managed"'
  check_eq "apply_databases() applies there" "$(sql $C postgres "SELECT string_agg(DISTINCT status, ',') FROM pgops.apply_databases()" 2>&1)" "applied"
  check_eq "the schema reached the tenant's database, through its hostile settings" \
    "$(calm postgres with_pgops "SELECT pg_catalog.count(*) FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) 'hostile_managed'")" 1
  check_eq "database_drift: converged" "$(sql $C postgres "SELECT count(*) FROM pgops.database_drift" 2>&1)" 0
  check_match "export_databases() reads every database" \
    "$(sql $C postgres "SELECT string_agg(e->>'name', ',' ORDER BY e->>'name') FROM pg_catalog.jsonb_array_elements(pgops.export_databases()) e" 2>&1)" \
    'bystander.*with_pgops.*without_pgops'
  flows_reconcile
  flows_databases
  check_match "installations() reads every database" \
    "$(sql $C postgres "SELECT string_agg(database || '=' || coalesce(installed_version, '-') || coalesce(' ' || error, ''), ',' ORDER BY database) FROM pgops.installations()" 2>&1)" \
    '^(after_t1=-,)?bystander=0.1.0,fresh=-,half=-,postgres=0.1.0,tenant_clone=0.1.0,with_pgops=0.1.0,without_pgops=-$'
  for db in with_pgops without_pgops; do
    check_match "freeze_plan('$db') from postgres" \
      "$(sql $C postgres "SELECT count(*) > 0 FROM pgops.freeze_plan('$db', 0) WHERE table_name = 'ledger'" 2>&1)" '^t$'
  done
  sql $C postgres "INSERT INTO pgops.freeze_job (name, database, schedule, min_age, max_duration) VALUES
    ('hostile now', '*', '0 0 1 1 *', 0, '1 minute'), ('hostile scheduled', 'with_pgops', '* * * * *', 0, '1 minute')" >/dev/null
  sql $C postgres "SELECT * FROM pgops.run_freeze('hostile now')" >/dev/null
  if wait_sql $C postgres "SELECT count(*) >= 4 AND bool_and(status NOT IN ('queued', 'running')) FROM pgops.freeze_run WHERE job = 'hostile now'" 60; then
    local mr; mr=$(sql $C postgres "SELECT string_agg(database || '=' || status, ',' ORDER BY database) FROM pgops.freeze_run WHERE job = 'hostile now' AND database LIKE 'with%'")
    if [ "$mr" = "with_pgops=succeeded,without_pgops=succeeded" ]; then ok "a manual freeze run over every database succeeds in the hostile ones"
    else not_ok "a manual freeze run over every database succeeds in the hostile ones" "got [$mr]: $(sql $C postgres "SELECT string_agg(r.database || ': ' || t.schema || '.' || t.table_name || ' ' || t.outcome || coalesce(' ' || t.error, ''), '; ') FROM pgops.freeze_run r JOIN pgops.freeze_run_table t ON t.run_id = r.id WHERE r.job = 'hostile now' AND t.outcome <> 'frozen'" 2>&1)"; fi
  else
    not_ok "the manual freeze run finished" "$(sql $C postgres "SELECT database, status, detail FROM pgops.freeze_run")"
  fi
  check_match "the tenant's table was frozen by the run (its age is now small)" \
    "$(calm postgres with_pgops "SELECT pg_catalog.age(relfrozenxid) FROM pg_catalog.pg_class WHERE relname OPERATOR(pg_catalog.=) 'ledger'")" '^[0-9]{1,2}$'
  for user in postgres watcher; do
    for rel in pgops.table_bloat pgops.index_bloat pgops.bloat "pgops.verify_bloat()" pgops.table_age \
               pgops.security_audit "pgops.security_report()" "pgops.freeze_plan(min_age => 0)"; do
      check_calm "as $user in with_pgops: $rel" $user with_pgops "SELECT pg_catalog.count(*) FROM $rel" '^[0-9]+$'
    done
  done
  # The file apply_hba writes from with_pgops comes from with_pgops' own config: let every local
  # connection in (a superuser's trust rule), so the rest of the scenario can connect.
  calm postgres with_pgops "INSERT INTO pgops.hba_rule (title, \"user\", addr, auth) VALUES ('all local', 'all', 'local', 'trust'),
    ('app', 'app', '10.9.0.0/16', 'pwd')" >/dev/null
  check_calm "pwd follows the server's password_encryption, not the database's md5" postgres with_pgops \
    "SELECT pg_catalog.string_agg(l, ' ') FROM pg_catalog.regexp_split_to_table(pgops.render_hba(), E'\\n') l WHERE l OPERATOR(pg_catalog.~) '10.9.0.0'" \
    '^host all app 10.9.0.0/16 scram-sha-256$'
  check_calm "… nor the caller's session's md5" postgres with_pgops \
    "SET password_encryption = md5; SELECT pg_catalog.count(*) FROM pg_catalog.regexp_split_to_table(pgops.render_hba(), E'\\n') l WHERE l OPERATOR(pg_catalog.~) 'md5'" '^0$'
  calm postgres with_pgops "INSERT INTO pgops.role (name, login) VALUES ('hostile_app', false)" >/dev/null
  calm postgres with_pgops "SELECT pgops.set_password('hostile_app', 'Xyz.4096')" >/dev/null
  check_calm "new verifiers keep 4096 iterations whatever scram_iterations the database sets" postgres with_pgops \
    "SELECT pg_catalog.split_part(password, ':', 1) FROM pgops.role WHERE name OPERATOR(pg_catalog.=) 'hostile_app'" \
    '^SCRAM-SHA-256\$4096$'
  check_calm "apply_hba() refuses to write inside a transaction block" postgres with_pgops \
    "BEGIN; SELECT status FROM pgops.apply_hba(); COMMIT" '^$'
  check_match "… saying why" "$(calm postgres with_pgops "BEGIN; SELECT status FROM pgops.apply_hba(); COMMIT" 2>&1)" \
    'cannot run inside a transaction block: the file it writes would stay if the transaction rolled back'
  check_calm "… but checks one there with dry_run" postgres with_pgops \
    "BEGIN; SELECT status FROM pgops.apply_hba(dry_run => true); COMMIT" '^dry run'
  # A symbolic link at pg_hba.conf stays a link; the file it points to is replaced.
  local hba="${CL_DIR[$C]}/data/pg_hba.conf"
  as_pg mv "$hba" "${CL_DIR[$C]}/hba-managed.conf"
  as_pg ln -s "${CL_DIR[$C]}/hba-managed.conf" "$hba"
  for q in "pg_catalog.length(pgops.render_hba())|^[0-9]+$" "pg_catalog.count(*) FROM pgops.hba_lint|^[0-9]+$" \
           "matched FROM pgops.hba_match('postgres', 'postgres', NULL)|^t$" \
           "status FROM pgops.apply_hba()|^applied" "drifted FROM pgops.hba_drift|^f$"; do
    check_calm "in with_pgops: ${q%%|*}" postgres with_pgops "SELECT ${q%%|*}" "${q##*|}"
  done
  check "a symlinked pg_hba.conf is still a link after apply_hba()" test -L "$hba"
  check "… and the file it points to holds the rendered rules" grep -q '^host all app 10.9.0.0/16 scram-sha-256' "${CL_DIR[$C]}/hba-managed.conf"

  # --- what each role may reach at all ----------------------------------------------------------------
  check_eq "a login user (PUBLIC): no USAGE on schema pgops, no EXECUTE on any of its functions, no access to any relation" \
    "$(sql $C postgres "SELECT has_schema_privilege('tenant', 'pgops', 'USAGE')::text || ',' ||
        (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'pgops'::regnamespace AND has_function_privilege('tenant', p.oid, 'EXECUTE')) || ',' ||
        (SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'pgops'::regnamespace AND c.relkind IN ('r', 'v')
           AND has_table_privilege('tenant', c.oid, 'SELECT,INSERT,UPDATE,DELETE'))")" "false,0,0"
  for q in "SELECT count(*) FROM pgops.plan_roles()" "SELECT count(*) FROM pgops.apply_roles()" \
           "SELECT pgops.set_password('hostile_app', 'x')" "SELECT count(*) FROM pgops.installations()" \
           "SELECT count(*) FROM pgops.role_drift" "SELECT count(*) FROM pgops.role" \
           "SELECT count(*) FROM pgops.plan_databases()" "SELECT count(*) FROM pgops.database_spec"; do
    check_match "pgops_admin may not: ${q#SELECT }" "$(usql hbaadmin postgres "$q" 2>&1)" 'permission denied'
  done

  # --- pg_monitor's limits ----------------------------------------------------------------------------
  sql $C postgres "REVOKE CONNECT ON DATABASE without_pgops FROM PUBLIC" >/dev/null
  check_match "pg_monitor: freeze_plan of a database it may connect to" \
    "$(usql watcher postgres "SELECT count(*) >= 0 FROM pgops.freeze_plan('bystander', 0)" 2>&1)" '^t$'
  check_match "pg_monitor: no superuser worker in a database it may not connect to" \
    "$(usql watcher postgres "SELECT count(*) FROM pgops.freeze_plan('without_pgops', 0)" 2>&1)" 'permission denied for database "without_pgops"'
  check_match "pg_monitor: verify_bloat's budget is capped" \
    "$(usql watcher bystander "SELECT count(*) FROM pgops.verify_bloat(max_pages => 100000000)" 2>&1)" 'over what a role that is not a superuser may ask'
  check_match "pg_monitor: within the cap it measures" \
    "$(calm watcher with_pgops "SELECT pg_catalog.count(*) FROM pgops.verify_bloat(max_tables => 5, max_pages => 1000)" 2>/dev/null)" '^[0-9]+$'
  check_match "a superuser's budget is not capped" \
    "$(sql $C bystander "CREATE EXTENSION IF NOT EXISTS pgstattuple; SELECT count(*) FROM pgops.verify_bloat(max_pages => 100000000)" 2>&1)" '^[0-9]+$'

  # The etcd worker computes role drift over every database at its start (then every 5 minutes):
  # restart it now that the plants are there.
  # The old worker revokes its lease as it stops (the key disappears) and may have pushed just
  # before: wait for the new worker's document, the one whose drift was computed after the plants.
  t_plants=$(sql $C postgres "SELECT now()")
  sql $C postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pgops etcd'" >/dev/null
  local doc_check='import datetime,json,sys
try:
    d = json.loads(sys.argv[1])
    at = datetime.datetime.fromisoformat(d["role_drift_checked_at"]).timestamp()
    print(d["role_drift"], at > float(sys.argv[2]))
except Exception as e:
    print("no document yet:", type(e).__name__)'
  local t_epoch deadline=$((SECONDS + 30))
  t_epoch=$(sql $C postgres "SELECT extract(epoch FROM '$t_plants'::timestamptz)")
  while :; do
    out=$(etcdctl_ hx get /pg/pg-hostile/pgops/members/pg-hostile-1 --print-value-only 2>/dev/null)
    got=$(python3 -c "$doc_check" "$out" "$t_epoch")
    [[ "$got" == "0 True" || $SECONDS -ge $deadline ]] && break
    sleep 0.2
  done
  check_eq "the etcd worker's collection (role drift over every database, after the plants) publishes role_drift 0" \
    "$got" "0 True"
  if wait_sql $C postgres "SELECT count(*) > 0 FROM pgops.freeze_run WHERE job = 'hostile scheduled' AND status NOT IN ('queued', 'running')" 75; then
    local fr; fr=$(sql $C postgres "SELECT status FROM pgops.freeze_run WHERE job = 'hostile scheduled' ORDER BY id LIMIT 1")
    if [ "$fr" = succeeded ]; then ok "a scheduled freeze run in the hostile database succeeds"
    else not_ok "a scheduled freeze run in the hostile database succeeds" "got [$fr]: $(sql $C postgres "SELECT string_agg(t.schema || '.' || t.table_name || ' ' || t.outcome || coalesce(' ' || t.error, ''), '; ') FROM pgops.freeze_run_table t WHERE t.run_id = (SELECT id FROM pgops.freeze_run WHERE job = 'hostile scheduled' ORDER BY id LIMIT 1) AND t.outcome <> 'frozen'" 2>&1)"; fi
  else
    not_ok "the scheduled freeze run happened"
  fi

  # --- what must not have happened -------------------------------------------------------------------
  check_eq "no planted function, aggregate or operator ran as a superuser" "$(superuser_traps)" 0
  check_eq "no role changed (attributes of every role but the declared one)" "$(roles_snapshot)" "$before"
  check_eq "the tenant is still no superuser" "$(sql $C postgres "SELECT rolsuper FROM pg_roles WHERE rolname = 'tenant'")" f
  check_eq "workers report no unsafe session" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.workers WHERE last_error LIKE '%search_path%' OR last_error LIKE '%role set%'")" 0
  check_eq "the bystander database's planning still works" \
    "$(sql $C bystander "SELECT has_table_privilege('hostile_app', 't', 'SELECT')")" t

  # --- pg_hba.conf: no value adds a line -------------------------------------------------------------------
  local nl="E'x\\nhost all all 0.0.0.0/0 trust'"
  for field in title user db addr auth role; do
    out=$(sql $C postgres "INSERT INTO pgops.hba_rule (title, \"user\", db, addr, auth, role) SELECT
      CASE WHEN f = 'title' THEN $nl ELSE 't' END, CASE WHEN f = 'user' THEN $nl ELSE 'app' END,
      CASE WHEN f = 'db' THEN $nl ELSE 'app' END, CASE WHEN f = 'addr' THEN $nl ELSE '10.0.0.0/8' END,
      CASE WHEN f = 'auth' THEN $nl ELSE 'pwd' END, CASE WHEN f = 'role' THEN $nl ELSE 'common' END FROM (SELECT '$field' AS f) x" 2>&1)
    check_match "a newline in hba_rule.$field is refused, naming the field" "$out" "\"$field\" contains the control character U\\+000A"
  done
  for bad in "E'host all all 10.0.0.1/32 md5\\r'" "E'host all all 10.0.0.1/32 md5 \\x01'"; do
    check_match "a control character in a raw line is refused" \
      "$(sql $C postgres "INSERT INTO pgops.hba_rule (title, rules) VALUES ('raw', ARRAY[$bad])" 2>&1)" 'field "rules", line 1 contains the control character'
  done
  check_match "a newline in a user alias (\${monitor}) is refused" \
    "$(usql hbaadmin postgres "UPDATE pgops.hba_alias SET value = ARRAY[$nl] WHERE name = '\${monitor}'" 2>&1)" 'alias "\$\{monitor\}", value 1 contains the control character'
  check_match "an address alias must be an address" \
    "$(usql hbaadmin postgres "UPDATE pgops.hba_alias SET value = ARRAY['10.0.0.0/8', 'nowhere'] WHERE name = 'intra'" 2>&1)" 'alias "intra", value 2: "nowhere" is not an IPv4/IPv6 address or CIDR'
  check_eq "the rendered file has no trust line" "$(sql $C postgres "SELECT pgops.render_hba()" | grep -c '^host.*trust')" 0

  # --- pgops_admin's limits --------------------------------------------------------------------------------
  check_match "pgops_admin may not write trust" \
    "$(usql hbaadmin postgres "INSERT INTO pgops.hba_rule (title, addr, auth) VALUES ('x', 'local', 'trust')" 2>&1)" 'only a superuser may write trust'
  check_match "pgops_admin may not write ldap (another server decides)" \
    "$(usql hbaadmin postgres "INSERT INTO pgops.hba_rule (title, rules) VALUES ('x', ARRAY['host all all 0.0.0.0/0 ldap ldapserver=attacker.example ldapprefix=\"cn=\" ldapsuffix=\",\"'])" 2>&1)" 'only a superuser may write authentication by another server'
  check_match "pgops_admin may not write cleartext password" \
    "$(usql hbaadmin postgres "INSERT INTO pgops.hba_rule (title, addr, auth) VALUES ('x', 'world', 'password')" 2>&1)" 'only a superuser may write authentication by another server or in clear text'
  check_match "pgops_admin may not change an alias a superuser's trust rule uses" \
    "$(sql $C postgres "INSERT INTO pgops.hba_rule (title, \"user\", addr, auth) VALUES ('infra trust', 'postgres', 'infra', 'trust')" >/dev/null
       usql hbaadmin postgres "UPDATE pgops.hba_alias SET value = '{0.0.0.0/0}' WHERE name = 'infra'" 2>&1)" 'uses it with trust, which only a superuser may write'
  check_match "pgops_admin may not delete an alias a superuser's trust rule uses" \
    "$(usql hbaadmin postgres "DELETE FROM pgops.hba_alias WHERE name = 'infra'" 2>&1)" 'uses it with trust, which only a superuser may write'
  check_match "… nor rename it" \
    "$(usql hbaadmin postgres "UPDATE pgops.hba_alias SET name = 'admin' WHERE name = 'infra'" 2>&1)" 'uses it with trust, which only a superuser may write'
  sql $C postgres "DELETE FROM pgops.hba_rule WHERE title = 'infra trust'" >/dev/null
  check_match "pgops_admin may not write ident over TCP" \
    "$(usql hbaadmin postgres "INSERT INTO pgops.hba_rule (title, addr, auth) VALUES ('x', 'intra', 'ident')" 2>&1)" 'only a superuser may write ident over TCP'
  for l in "host all @/etc/passwd 10.0.0.1/32 md5|@file inclusions" "host all /^app 10.0.0.1/32 md5|regular expressions" \
           "host all all 10.0.0.1/32 trust|trust"; do
    check_match "pgops_admin may not write a raw line with ${l##*|}" \
      "$(usql hbaadmin postgres "INSERT INTO pgops.hba_rule (title, rules) VALUES ('raw', ARRAY['${l%%|*}'])" 2>&1)" "only a superuser may write ${l##*|}"
  done
  check_eq "pgops_admin may write a password rule" \
    "$(usql hbaadmin postgres "INSERT INTO pgops.hba_rule (title, \"user\", db, addr, auth) VALUES ('app', 'app', 'app', '10.1.0.0/16', 'pwd') RETURNING 1")" 1
  check_eq "a superuser may write a trust rule for the local socket" \
    "$(sql $C postgres "INSERT INTO pgops.hba_rule (title, \"user\", addr, auth, \"order\") VALUES ('local trust', 'postgres', 'local', 'trust', 1) RETURNING 1")" 1
  check_match "pgops_admin cannot change a superuser's trust rule" \
    "$(usql hbaadmin postgres "UPDATE pgops.hba_rule SET title = 'mine' WHERE title = 'local trust'" 2>&1)" 'only a superuser may change a rule with trust'
  flows_hba

  # --- no plaintext password in the server log when a call fails ------------------------------------------
  for level in default info; do
    local secret="S3cret-$level-$RANDOM"
    local set=""
    [ $level = info ] && set="SET log_min_error_statement = info;"
    sql $C postgres "$set SELECT pgops.set_password('nosuch', '$secret')" >/dev/null 2>&1
    sql $C postgres "$set SELECT pgops.load_roles('[{\"name\": \"bad name\", \"password\": \"$secret\", \"login\": 7}]')" >/dev/null 2>&1
    sql $C postgres "$set INSERT INTO pgops.role (name, password) VALUES ('plain', '$secret')" >/dev/null 2>&1
    sql $C postgres "$set SELECT pgops.load_roles('[{\"username\": \"x\", \"password\": \"$secret\"}]')" >/dev/null 2>&1
    check_eq "failed calls carrying a plaintext leave it out of the log (log_min_error_statement $level)" \
      "$(server_log | grep -c "$secret")" 0
  done
  sql $C postgres "SELECT 'S3cret-control'::int" >/dev/null 2>&1
  check_match "negative control: a failed ordinary statement is logged with its text" "$(server_log | grep -c 'S3cret-control')" '^[1-9]'

  flows_patroni_keys
  flows_security_score
  flows_coverage "$planted_at"

  # Negative control 2: a superuser session in the hostile database, unprotected, runs a plant —
  # the check above would have seen it.
  calm postgres without_pgops "SELECT jsonb_agg(datname) FROM pg_database" >/dev/null 2>&1
  check_match "negative control: an unpinned superuser session runs the plant and the check sees it" "$(superuser_traps)" '^[1-9]'
}


# Declared databases near the tenant's objects: clone, recreate, the creation window, a failed
# hand-over, schemas and extensions the tenant got to first.
# Reconcile runs the same plans unattended: with every policy at `all`, drift the tenant made by
# hand in its own database and a declared change there are put right by the launcher alone, and
# nothing of the tenant's runs as a superuser. Turned off again after (the flows below apply by
# hand and leave declared drift on purpose).
flows_reconcile() {
  local traps; traps=$(superuser_traps)
  calm tenant with_pgops "REVOKE SELECT ON public.ledger FROM hostile_app" >/dev/null
  check_eq "the tenant revoked the declared grant by hand" \
    "$(calm postgres with_pgops "SELECT pg_catalog.has_table_privilege('hostile_app', 'public.ledger', 'SELECT')")" f
  for s in "pgops.reconcile_interval = 1" "pgops.reconcile_roles = 'all'" "pgops.reconcile_databases = 'all'"; do
    sql $C postgres "ALTER SYSTEM SET $s" >/dev/null
  done
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  sql $C postgres "UPDATE pgops.database_spec SET schemas = '[\"hostile_managed\", \"reconciled\"]' WHERE name = 'with_pgops'" >/dev/null
  # Converged after each capability applied something: a databases run that converged before the
  # declared change was seen must not end the wait (it did on a loaded machine).
  wait_sql $C postgres "SELECT pg_catalog.bool_and(state = 'converged')
                          AND (SELECT count(DISTINCT capability) FROM pgops.reconcile_run
                               WHERE applied > 0 AND capability IN ('roles', 'databases')) = 2
                        FROM pgops.reconcile_status WHERE capability IN ('roles', 'databases')" 60 \
    || not_ok "reconcile converges with the tenant's objects planted" "$(sql $C postgres "SELECT * FROM pgops.reconcile_status")"
  check_eq "reconcile: the grant the tenant revoked by hand is back, through its hostile settings" \
    "$(calm postgres with_pgops "SELECT pg_catalog.has_table_privilege('hostile_app', 'public.ledger', 'SELECT')")" t
  check_eq "reconcile: the schema declared in the tenant's database was created there" \
    "$(calm postgres with_pgops "SELECT pg_catalog.count(*) FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) 'reconciled'")" 1
  check_match "reconcile: both runs are recorded as applied by the launcher" \
    "$(sql $C postgres "SELECT string_agg(DISTINCT capability, ',' ORDER BY capability) FROM pgops.reconcile_run WHERE applied > 0")" '^databases,roles$'
  check_eq "reconcile ran nothing of the tenant's as a superuser" "$(superuser_traps)" "$traps"
  for s in pgops.reconcile_interval pgops.reconcile_roles pgops.reconcile_databases; do
    sql $C postgres "ALTER SYSTEM RESET $s" >/dev/null
  done
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  # The launcher says when it has seen a policy change (the flows below must not race it).
  wait_until 20 bash -c "grep -aq 'pgops reconcile: pgops.reconcile_databases = off (was all)' '${CL_DIR[$C]}/server.log' && grep -aq 'pgops reconcile: pgops.reconcile_roles = off (was all)' '${CL_DIR[$C]}/server.log'" \
    && ok "reconcile is off again (the launcher logged it)" || not_ok "reconcile off again"
}

flows_databases() {
  local out hash
  # (1) A clone of the tenant's database, with a baseline that updates its settings table.
  sql $C postgres "INSERT INTO pgops.database_spec (name, template, owner, baseline)
                   VALUES ('tenant_clone', 'with_pgops', 'tenant', 'UPDATE app_settings SET v = v || current_user')" >/dev/null
  out=$(sql $C postgres "SELECT risk || '|' || runs || '|' || statement || '|' || reason FROM pgops.plan_databases() WHERE database = 'tenant_clone' ORDER BY seq" 2>&1)
  check_match "cloning the tenant's database is a plan row with its own risk, saying what is copied" "$out" \
    '^clone\|top level\|CREATE DATABASE "tenant_clone" TEMPLATE "with_pgops" ALLOW_CONNECTIONS false\|.*it clones template with_pgops belongs to tenant, who is not a superuser: .* owned by tenant'
  check_match "… its baseline runs as the owner in the closed copy, still the superuser's, handed over after" "$out" \
    'GRANT CREATE ON DATABASE "tenant_clone" TO "tenant".*safe\|in tenant_clone, closed, as owner tenant\|UPDATE app_settings.*ALTER DATABASE "tenant_clone" OWNER TO "tenant"'
  check_eq "apply_databases() makes the clone" \
    "$(sql $C postgres "SELECT string_agg(DISTINCT status, ',') FROM pgops.apply_databases() WHERE database = 'tenant_clone'" 2>&1)" applied
  check_match "the baseline fired the copied trigger as the tenant" \
    "$(server_log | grep -c 'pgops-hostile: app_settings trigger ran as tenant (superuser f) in tenant_clone')" '^[1-9]'
  check_eq "the clone is the tenant's and open; the baseline changed the row" \
    "$(sql $C postgres "SELECT pg_get_userbyid(datdba) || '|' || datallowconn FROM pg_database WHERE datname = 'tenant_clone'")|$(calm postgres tenant_clone "SELECT pg_catalog.count(*) FROM public.app_settings WHERE v IS DISTINCT FROM 'dark'")" "tenant|true|1"
  # (2) Recreate: dropped and cloned again, the baseline again as the owner.
  sql $C postgres "UPDATE pgops.database_spec SET state = 'recreate', force = true WHERE name = 'tenant_clone'" >/dev/null
  hash=$(sql $C postgres "SELECT DISTINCT plan_hash FROM pgops.plan_databases()")
  check_eq "recreate drops and clones again, the baseline as the owner" \
    "$(sql $C postgres "SELECT string_agg(DISTINCT status, ',') FROM pgops.apply_databases(plan_hash => '$hash') WHERE database = 'tenant_clone'" 2>/dev/null)|$(server_log | grep -c 'pgops-hostile: app_settings trigger ran as tenant (superuser f) in tenant_clone')" "applied|2"

  # (3) A database created for the tenant, with a baseline the superuser runs. The tenant tries to
  # get in the whole time to plant a look-alike of || the baseline would resolve: it stays out
  # until the baseline ran (the database is closed and the superuser's until then).
  local plant_op="CREATE FUNCTION public.catname(text, name) RETURNS text LANGUAGE plpgsql AS 'BEGIN RAISE LOG ''pgops-hostile: window plant ran as % (superuser %)'', current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user); RETURN \$1; END';
    CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = name, FUNCTION = public.catname)"
  sql $C postgres "INSERT INTO pgops.database_spec (name, owner, schemas, baseline) VALUES ('fresh', 'tenant', '[\"made\"]',
      'SELECT pg_catalog.pg_sleep(2); CREATE TABLE made.t AS SELECT ''x'' || current_user AS who')" >/dev/null
  local tries="${CL_DIR[$C]}/window-tries.log"
  : > "$tries"
  ( for _ in $(seq 1 100); do
      if usql tenant fresh "$plant_op" >/dev/null 2>>"$tries"; then echo planted >> "$tries"; break; fi
      sleep 0.1
    done ) &
  local bgp=$!
  out=$(sql $C postgres "SELECT string_agg(DISTINCT status, ',') FROM pgops.apply_databases() WHERE database = 'fresh'" 2>&1)
  wait $bgp
  check_eq "the tenant's new database is created, its baseline run" "$out" applied
  check_match "while the superuser worked inside, the tenant could not connect" "$(cat "$tries")" 'database "fresh" is not currently accepting connections'
  check_match "… and got in once it was handed over and opened" "$(tail -1 "$tries")" '^planted$'
  check_eq "the baseline resolved pg_catalog's ||, as the superuser" "$(calm postgres fresh "SELECT who FROM made.t")" xpostgres
  check_eq "the database is the tenant's now" "$(sql $C postgres "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'fresh'")" tenant

  # (4) A failed hand-over leaves a new database closed and the superuser's; fixed, it is finished.
  sql $C postgres "INSERT INTO pgops.database_spec (name, owner, parameters) VALUES ('half', 'tenant', '{\"work_mem\": \"lots\"}')" >/dev/null
  check_match "a failed statement stops the rest of a new database's statements" \
    "$(sql $C postgres "SELECT string_agg(status, ',' ORDER BY seq) FROM pgops.apply_databases() WHERE database = 'half'" 2>/dev/null)" \
    '^applied,rolled back,failed: invalid value for parameter "work_mem".*,rolled back$'
  check_eq "… it stays closed and the superuser's" \
    "$(sql $C postgres "SELECT datallowconn || '|' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'half'")" "false|postgres"
  sql $C postgres "UPDATE pgops.database_spec SET parameters = '{}' WHERE name = 'half'" >/dev/null
  sql $C postgres "SELECT count(*) FROM pgops.apply_databases()" >/dev/null 2>&1
  check_eq "fixed, the next apply hands it over and opens it" \
    "$(sql $C postgres "SELECT datallowconn || '|' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'half'")" "true|tenant"

  # (5) A schema the tenant created first, an untrusted extension into it, a trusted one into its public.
  sql $C postgres "UPDATE pgops.database_spec SET schemas = '[\"hostile_managed\", \"ext_here\"]',
      extensions = '[{\"name\": \"pg_buffercache\", \"schema\": \"ext_here\"}, {\"name\": \"tablefunc\"}]' WHERE name = 'with_pgops'" >/dev/null
  out=$(sql $C postgres "SELECT runs || '|' || statement FROM pgops.plan_databases() WHERE database = 'with_pgops' ORDER BY seq" 2>&1)
  check_match "a schema the tenant created first is a note, left as it is" "$out" \
    'not run\|-- schema "ext_here" exists, owned by "tenant", not by a superuser'
  check_match "an untrusted extension is never created in the tenant's schema" "$out" \
    'not run\|-- not run: schema ext_here: owned by tenant.*pg_buffercache is not a trusted extension'
  check_match "a trusted one, into the tenant's public, runs as the tenant" "$out" \
    'in with_pgops as owner tenant\|CREATE EXTENSION IF NOT EXISTS "tablefunc" SCHEMA "public" CASCADE'
  check_eq "apply_databases() runs what it may" \
    "$(sql $C postgres "SELECT string_agg(DISTINCT status, ',' ORDER BY status) FROM pgops.apply_databases() WHERE database = 'with_pgops'" 2>&1)" "applied,not run: see the statement"
  check_eq "tablefunc was created by the tenant; pg_buffercache not at all" \
    "$(calm postgres with_pgops "SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s', e.extname, pg_catalog.pg_get_userbyid(e.extowner)), ',') FROM pg_catalog.pg_extension e
        WHERE e.extname OPERATOR(pg_catalog.=) 'tablefunc'::pg_catalog.name OR e.extname OPERATOR(pg_catalog.=) 'pg_buffercache'::pg_catalog.name")" "tablefunc:tenant"
  check_eq "… and the superuser ran nothing of the tenant's (no trap as a superuser so far)" "$(superuser_traps)" 0

  # (5a) A baseline declared for the tenant's existing database: it runs once per content, as the
  # tenant (its trigger fires as the tenant), never as the superuser.
  sql $C postgres "UPDATE pgops.database_spec SET baseline = 'UPDATE app_settings SET v = ''again''' WHERE name = 'with_pgops'" >/dev/null
  check_match "a baseline for the tenant's existing database is planned as the tenant" \
    "$(sql $C postgres "SELECT risk || '|' || runs || '|' || statement FROM pgops.plan_databases() WHERE database = 'with_pgops' AND reason LIKE 'baseline%'" 2>&1)" \
    '^script\|in with_pgops as owner tenant\|UPDATE app_settings'
  local fired; fired=$(server_log | grep -c 'pgops-hostile: app_settings trigger ran as tenant (superuser f) in with_pgops')
  check_match "… a script on a database that exists waits for the plan_hash of a reviewed plan" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.apply_databases()" 2>&1)|$(server_log | grep -c 'pgops-hostile: app_settings trigger ran as tenant (superuser f) in with_pgops')" \
    "plan_hash.*\\|$fired\$"
  sql $C postgres "SELECT count(*) FROM pgops.apply_databases(plan_hash => (SELECT DISTINCT plan_hash FROM pgops.plan_databases()))" >/dev/null 2>&1
  check_eq "… with it, it ran, firing the tenant's trigger as the tenant" \
    "$(server_log | grep -c 'pgops-hostile: app_settings trigger ran as tenant (superuser f) in with_pgops')" "$((fired + 1))"
  check_eq "… once: it is not planned again" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.plan_databases() WHERE database = 'with_pgops' AND reason LIKE 'baseline%'")" 0

  # (5b) An untrusted extension whose requirement the tenant installed in its own public: the
  # script would run with public on its search_path, so it is not run, though its own schema is safe.
  usql tenant with_pgops "SET default_transaction_read_only = off; CREATE EXTENSION cube SCHEMA public" >/dev/null 2>&1 \
    || calm tenant with_pgops "CREATE EXTENSION cube SCHEMA public" >/dev/null
  sql $C postgres "UPDATE pgops.database_spec SET extensions = extensions || '[{\"name\": \"earthdistance\", \"schema\": \"hostile_managed\"}]'
                   WHERE name = 'with_pgops'" >/dev/null
  check_match "an untrusted extension is not run where a requirement sits in the tenant's schema" \
    "$(sql $C postgres "SELECT statement FROM pgops.plan_databases() WHERE database = 'with_pgops' AND statement LIKE '%earthdistance%'" 2>&1)" \
    '^-- not run: it needs extension\(s\) in schema public \(schema public: .*earthdistance is not a trusted extension'
  sql $C postgres "UPDATE pgops.database_spec SET extensions = extensions - 2 WHERE name = 'with_pgops'" >/dev/null

  # (5c) A template whose CREATE fails: the database cloned from it is not created either.
  sql $C postgres "INSERT INTO pgops.database_spec (name, tablespace) VALUES ('tmpl_fail', 'nosuch_space');
                   INSERT INTO pgops.database_spec (name, template) VALUES ('of_fail', 'tmpl_fail')" >/dev/null
  check_match "a clone of a template that failed to be created is skipped" \
    "$(sql $C postgres "SELECT string_agg(database || ':' || status, ',' ORDER BY seq) FROM pgops.apply_databases() WHERE database IN ('tmpl_fail', 'of_fail')" 2>/dev/null)" \
    '^tmpl_fail:failed: .*nosuch_space.*of_fail:skipped: its template "tmpl_fail" was not created'
  sql $C postgres "DELETE FROM pgops.database_spec WHERE name IN ('tmpl_fail', 'of_fail')" >/dev/null

  # (5d) From PostgreSQL 14 an owner may hand its objects to pg_database_owner: in a superuser's
  # database they still count as someone else's (a previous owner put them there).
  if [ "$v" -ge 14 ]; then
    sql $C postgres "CREATE DATABASE handed_down" >/dev/null
    sql $C handed_down "CREATE FUNCTION public.handed() RETURNS int LANGUAGE sql AS 'SELECT 1'; ALTER FUNCTION public.handed() OWNER TO pg_database_owner" >/dev/null
    sql $C postgres "INSERT INTO pgops.database_spec (name, template, baseline) VALUES ('from_handed', 'handed_down', 'SELECT 1')" >/dev/null
    check_match "PG $v: objects owned by pg_database_owner make a superuser's template a clone" \
      "$(sql $C postgres "SELECT risk || '|' || reason FROM pgops.plan_databases() WHERE database = 'from_handed' AND statement LIKE 'CREATE DATABASE%'" 2>&1)" \
      '^clone\|.*template handed_down holds objects non-superusers own: function public.handed\(\) owned by pg_database_owner'
    sql $C postgres "DELETE FROM pgops.database_spec WHERE name = 'from_handed'" >/dev/null
    sql $C postgres "DROP DATABASE handed_down" >/dev/null
  fi

  # (6) Up to PostgreSQL 14 any user may create objects in template1's public: a new database
  # cloned from it then carries the tenant's function, and is planned as a clone.
  if [ "$v" -lt 15 ]; then
    usql tenant template1 "CREATE FUNCTION public.helper() RETURNS int LANGUAGE sql AS 'SELECT 1'" >/dev/null
    sql $C postgres "INSERT INTO pgops.database_spec (name, owner, baseline) VALUES ('after_t1', 'tenant', 'SELECT public.helper()')" >/dev/null
    out=$(sql $C postgres "SELECT risk || '|' || runs || '|' || reason FROM pgops.plan_databases() WHERE database = 'after_t1' ORDER BY seq" 2>&1)
    check_match "PG $v: a tenant's function in template1 makes a new database a clone" "$out" \
      '^clone\|top level\|.*template template1 holds objects non-superusers own: function public.helper\(\) owned by tenant'
    check_match "… whose baseline runs as the owner" "$out" 'in after_t1, closed, as owner tenant'
    check_eq "… and it is applied" \
      "$(sql $C postgres "SELECT string_agg(DISTINCT status, ',') FROM pgops.apply_databases() WHERE database = 'after_t1'" 2>/dev/null)" applied
    usql tenant template1 "DROP FUNCTION public.helper()" >/dev/null
  fi
}

# pg_hba.conf rows only a superuser may write: pgops_admin may neither change nor delete them, and
# an @file is refused in every field.
flows_hba() {
  sql $C postgres "INSERT INTO pgops.hba_rule (title, rules) VALUES ('su ldap', ARRAY['host all all 10.99.0.0/16 ldap ldapserver=ldap.example ldapprefix=\"cn=\" ldapsuffix=\",dc=example\"'])" >/dev/null
  check_match "pgops_admin may not change a superuser's ldap rule, even to reject" \
    "$(usql hbaadmin postgres "UPDATE pgops.hba_rule SET rules = ARRAY['host all all 10.99.0.0/16 reject'] WHERE title = 'su ldap'" 2>&1)" \
    'only a superuser may change a rule with authentication by another server'
  check_match "pgops_admin may not delete a superuser's trust rule" \
    "$(usql hbaadmin postgres "DELETE FROM pgops.hba_rule WHERE title = 'local trust'" 2>&1)" 'only a superuser may delete a rule with trust'
  check_match "pgops_admin may not write @file in an address" \
    "$(usql hbaadmin postgres "INSERT INTO pgops.hba_rule (title, rules) VALUES ('at', ARRAY['host all u @PG_VERSION md5'])" 2>&1)" 'only a superuser may write @file inclusions'
  check_match "… nor as a structured rule's address" \
    "$(usql hbaadmin postgres "INSERT INTO pgops.hba_rule (title, addr, auth) VALUES ('at', '@PG_VERSION', 'pwd')" 2>&1)" 'only a superuser may write @file inclusions|is neither an alias'
  check_eq "… all of it unchanged" \
    "$(sql $C postgres "SELECT count(*) FILTER (WHERE title = 'su ldap' AND rules[1] LIKE '%ldap ldapserver%') || ',' || count(*) FILTER (WHERE title = 'local trust') || ',' || count(*) FILTER (WHERE title = 'at') FROM pgops.hba_rule")" "1,1,0"
  check_eq "pgops_admin may change and delete its own password rule" \
    "$(usql hbaadmin postgres "UPDATE pgops.hba_rule SET addr = '10.2.0.0/16' WHERE title = 'app' AND addr = '10.1.0.0/16'; DELETE FROM pgops.hba_rule WHERE title = 'app' AND addr = '10.2.0.0/16' RETURNING 1")" 1
  check_eq "a superuser may change and delete the rules pgops_admin may not" \
    "$(sql $C postgres "UPDATE pgops.hba_rule SET rules = ARRAY['host all all 10.99.0.0/16 reject'] WHERE title = 'su ldap'; DELETE FROM pgops.hba_rule WHERE title IN ('su ldap') RETURNING 1")" 1
}

# A peer that can write under the etcd prefix writes Patroni's keys: a configuration that sets
# postgresql.pg_hba, and a member key naming this server's host and port.
flows_patroni_keys() {
  local pdir=${CL_DIR[$C]}/data mine_before
  own_backups() { ls "$pdir" | grep -c -- '^pg_hba.conf.pgops-.*-pg-hostile-1$'; }
  etcdctl_ hx put /pg/pg-hostile/config '{"postgresql": {"pg_hba": ["host all all 0.0.0.0/0 trust"]}}' >/dev/null
  wait_until 15 grep -q '"pg_hba_in_config":true' "$pdir/pg_stat_tmp/pgops.patroni.json"
  check_match "a config key with postgresql.pg_hba does not stop a superuser's apply_hba(): the file is pgops'" \
    "$(calm postgres with_pgops "SELECT status FROM pgops.apply_hba()" 2>&1)" '^(applied|unchanged)'
  check_eq "… hba_lint says what the key says" \
    "$(calm postgres with_pgops "SELECT pg_catalog.count(*) FROM pgops.hba_lint WHERE finding OPERATOR(pg_catalog.=) 'patroni_config_sets_hba'")" 1
  # The member key on its own (a config key would stop every write on a pgops that trusts it).
  etcdctl_ hx del /pg/pg-hostile/config >/dev/null
  wait_until 15 grep -q '"pg_hba_in_config":false' "$pdir/pg_stat_tmp/pgops.patroni.json"
  etcdctl_ hx put /pg/pg-hostile/members/evil "{\"conn_url\": \"postgres://127.0.0.1:${CL_PORT[$C]}/postgres\", \"role\": \"replica\", \"state\": \"running\"}" >/dev/null
  wait_until 15 grep -q '"me":"evil"' "$pdir/pg_stat_tmp/pgops.patroni.json"
  # The launcher follows with the config of pgops.database (postgres): give it one that renders a
  # file it would write, and write it there once under this server's own name.
  sql $C postgres "DELETE FROM pgops.hba_rule WHERE title = 'at';
    INSERT INTO pgops.hba_rule (title, \"user\", addr, auth, \"order\") VALUES ('every local user', 'all', 'local', 'trust', 0);
    INSERT INTO pgops.hba_rule (title, \"user\", db, addr, auth, \"order\") VALUES ('loopback', 'all', 'all', '127.0.0.1/32', 'trust', 0),
      ('loopback replication', 'all', 'replication', '127.0.0.1/32', 'trust', 0)" >/dev/null
  sql $C postgres "SELECT status FROM pgops.apply_hba()" >/dev/null
  check_eq "an explicitly set instance name wins over a member key naming this host and port" \
    "$(sql $C postgres "SELECT instance FROM pgops.instance()")" pg-hostile-1
  mine_before=$(own_backups)
  sql $C postgres "ALTER SYSTEM SET pgops.instance_name = ''" >/dev/null; sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  wait_sql $C postgres "SELECT instance = 'evil' FROM pgops.instance()" 10
  check_eq "without the setting, the member key renames this server" "$(sql $C postgres "SELECT instance FROM pgops.instance()")" evil
  wait_until 15 grep -q "this server's name evil is not set by pgops.instance_name" "${CL_DIR[$C]}/server.log"
  check "a name from etcd alone does not make the launcher re-render pgops' own file" \
    grep -q "was rendered for pg-hostile-1 on .*; this server's name evil is not set by pgops.instance_name" "${CL_DIR[$C]}/server.log"
  check_eq "… nor remove any of this server's backups" "$(own_backups)" "$mine_before"
  check_match "… the file is still pgops' for pg-hostile-1" "$(tail -1 "${CL_DIR[$C]}/hba-managed.conf")" '"instance":"pg-hostile-1"'
  etcdctl_ hx del /pg/pg-hostile/members/evil >/dev/null
  sql $C postgres "ALTER SYSTEM RESET pgops.instance_name" >/dev/null; sql $C postgres "SELECT pg_reload_conf()" >/dev/null
}

# The launcher records the security score by running the audit in its own database (postgres). A
# tenant allowed to create there plants its look-alikes in it too; the recording runs with them in
# place, nothing of theirs runs as a superuser, and the audit names them.
flows_security_score() {
  local traps f; traps=$(superuser_traps)
  sql $C postgres "GRANT CREATE ON DATABASE postgres TO tenant" >/dev/null
  f=$(mktemp "${CL_DIR[$C]}/plant.XXXXXX.sql")
  { printf "SELECT set_config('hostile.names', %s, false) \\\\g /dev/null\n" "'$names'"; cat "$PGOPS_ROOT/pg_test/fixtures/hostile_plant.sql"; } > "$f"
  chmod 644 "$f"
  psql_as tenant postgres "$f" >/dev/null || not_ok "planting in postgres (the launcher's database)"
  check_calm "the tenant's look-alikes are in the launcher's database" tenant postgres \
    "SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 100 FROM evil.planted" '^t$'
  # The look-alikes change the score (LOOKALIKE-FUNC fails now): the next recording adds a row.
  local before; before=$(calm postgres postgres "SELECT pg_catalog.count(*) FROM pgops.security_score_history")
  calm postgres postgres "ALTER SYSTEM SET pgops.security_score_interval = 1" >/dev/null
  calm postgres postgres "SELECT pg_catalog.pg_reload_conf()" >/dev/null
  score_rows_grew() { [ "$(calm postgres postgres "SELECT pg_catalog.count(*) FROM pgops.security_score_history")" -gt "$before" ]; }
  if wait_until 30 score_rows_grew; then
    ok "security score: the launcher recorded the score with the tenant's objects planted in its database"
  else
    not_ok "security score: the launcher recorded the score" "$(calm postgres postgres "SELECT state, last_error FROM pgops.workers WHERE name = 'pgops launcher'" 2>&1; grep -a "security score\|_security_score_record" "${CL_DIR[$C]}/server.log" | tail -5)"
  fi
  check_calm "security score: the audit there names the tenant's look-alikes" postgres postgres \
    "SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM pgops.security_audit WHERE check_id OPERATOR(pg_catalog.=) 'LOOKALIKE-FUNC' AND status OPERATOR(pg_catalog.=) 'fail'" '^t$'
  check_calm "security score: the report renders there" postgres postgres \
    "SELECT pg_catalog.left(pgops.security_report('html'), 15)" '^<!DOCTYPE html>$'
  check_eq "security score: nothing of the tenant's ran as a superuser" "$(superuser_traps)" "$traps"
  calm postgres postgres "ALTER SYSTEM RESET pgops.security_score_interval" >/dev/null
  calm postgres postgres "SELECT pg_catalog.pg_reload_conf()" >/dev/null
}

# Every worker task and launcher turn the code builds ran after the tenant's objects were planted.
flows_coverage() {
  local since=$1 flows label
  flows=$(python3 "$PGOPS_ROOT/pg_test/hostile_flows.py" "$PGOPS_ROOT") || { not_ok "flows derived from the sources" "$flows"; return; }
  while IFS= read -r label; do
    # grep -c reads to the end (grep -q would close the pipe early, and pipefail sees tail's SIGPIPE).
    if [ "$(tail -n +"$since" "${CL_DIR[$C]}/server.log" | grep -cF "starting background worker process \"pgops $label in ")" -gt 0 ]; then
      ok "flow: worker task \"$label\" ran with the tenant's objects planted"
    else
      not_ok "flow: worker task \"$label\" has no hostile case (add one to 95_hostile.sh)"
    fi
  done < <(python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["workers"]))' <<<"$flows")
  while IFS= read -r label; do
    if [ "$(tail -n +"$since" "${CL_DIR[$C]}/server.log" | grep -cF "pgops launcher: turn \"$label\"")" -gt 0 ]; then
      ok "flow: launcher turn \"$label\" ran with the tenant's objects planted"
    else
      not_ok "flow: launcher turn \"$label\" has no hostile case (add one to 95_hostile.sh)"
    fi
  done < <(python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["turns"]))' <<<"$flows")
}
