# Reconcile: the launcher keeps roles, databases and pg_hba.conf as declared by itself, per
# policy (off / report / safe / all): a declared change lands without a call (woken by the
# commit), drift made by hand is put back, revokes wait for `all`, drops for a reviewed plan, a
# failing statement backs off and is reported, a busy apply lock is waited out, a standby never
# applies, pg_monitor reads the state.

# reconcile_set CLUSTER SETTING VALUE — ALTER SYSTEM and reload.
reconcile_set() {
  sql "$1" postgres "ALTER SYSTEM SET $2 = '$3'" >/dev/null
  sql "$1" postgres "SELECT pg_reload_conf()" >/dev/null
}
# state CLUSTER CAPABILITY — what pgops.reconcile_status says.
state() { sql "$1" postgres "SELECT state FROM pgops.reconcile_status WHERE capability = '$2'"; }

scenario_main() {
  local v=$1 C=rec S=recs
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "pgops.naptime = '200ms'" "wal_level = replica" \
    "pgops.reconcile_interval = '1h'" || { not_ok "initdb"; return 1; }
  printf 'local all all trust\nlocal replication all trust\n' | as_pg tee "${CL_DIR[$C]}/data/pg_hba.conf" >/dev/null
  cluster_start $C || { not_ok "server starts"; return 1; }
  local log=${CL_DIR[$C]}/server.log
  sql $C postgres "CREATE EXTENSION pgops" >/dev/null

  # --- off by default -------------------------------------------------------------------------
  check_eq "every capability's reconcile is off by default" \
    "$(sql $C postgres "SELECT string_agg(capability || '=' || policy || '/' || state, ' ') FROM pgops.reconcile_status")" \
    "roles=off/off databases=off/off hba=off/off"
  sql $C postgres "INSERT INTO pgops.role (name, login) VALUES ('rec_off', false)" >/dev/null
  sleep 1
  check_eq "with reconcile off a declared role is not created" "$(sql $C postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'rec_off'")" 0
  check_eq "a bad policy is refused by the server" \
    "$(sql $C postgres "ALTER SYSTEM SET pgops.reconcile_roles = 'sometimes'" 2>&1 | grep -c 'invalid value for parameter "pgops.reconcile_roles"')" 1

  # --- report: planned and recorded, nothing applied ------------------------------------------
  reconcile_set $C pgops.reconcile_roles report
  wait_sql $C postgres "SELECT state = 'held' FROM pgops.reconcile_status WHERE capability = 'roles'" 20 \
    && ok "report: the pending CREATE ROLE is recorded as held" || not_ok "report: held" "$(state $C roles)"
  check_match "report: the waiting row says why" \
    "$(sql $C postgres "SELECT waiting::text FROM pgops.reconcile_status WHERE capability = 'roles'")" 'pgops.reconcile_roles = report: reported, not applied.*CREATE ROLE .*rec_off'
  check_eq "report: nothing was applied" "$(sql $C postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'rec_off'")" 0

  # --- safe: a declared change lands without a call, woken by its commit ----------------------
  reconcile_set $C pgops.reconcile_roles safe
  wait_sql $C postgres "SELECT count(*) = 1 FROM pg_roles WHERE rolname = 'rec_off'" 20 \
    && ok "safe: switching the policy applies what was waiting" || not_ok "safe: applied"
  wait_sql $C postgres "SELECT state = 'converged' FROM pgops.reconcile_status WHERE capability = 'roles'" 20 \
    && ok "safe: roles converged" || not_ok "safe: converged" "$(state $C roles)"
  sql $C postgres "INSERT INTO pgops.role (name, login, connlimit) VALUES ('rec_app', true, 5)" >/dev/null
  wait_sql $C postgres "SELECT count(*) = 1 FROM pg_roles WHERE rolname = 'rec_app' AND rolconnlimit = 5" 20 \
    && ok "a role inserted into pgops.role exists without a call (interval 1h: the commit woke the launcher)" \
    || not_ok "declared role created by reconcile"
  check_eq "the run says what started it and what it applied" \
    "$(sql $C postgres "SELECT trigger || '|' || state || '|' || applied FROM pgops.reconcile_run WHERE capability = 'roles' ORDER BY id DESC LIMIT 1")" \
    "config change|converged|1"

  # --- drift by hand: put back when it takes nothing away, held when it revokes ---------------
  reconcile_set $C pgops.reconcile_interval 1
  sql $C postgres "ALTER ROLE rec_app CONNECTION LIMIT 7" >/dev/null
  wait_sql $C postgres "SELECT rolconnlimit = 5 FROM pg_roles WHERE rolname = 'rec_app'" 20 \
    && ok "an ALTER ROLE by hand is put back at the next interval" || not_ok "connlimit restored"
  sql $C postgres "GRANT pg_monitor TO rec_app" >/dev/null
  wait_sql $C postgres "SELECT state = 'held' AND waiting::text ~ 'REVOKE' FROM pgops.reconcile_status WHERE capability = 'roles'" 20 \
    && ok "safe: an undeclared membership granted by hand is held (a revoke)" || not_ok "revoke held" "$(sql $C postgres "SELECT * FROM pgops.reconcile_status WHERE capability = 'roles'")"
  check_eq "safe: the membership is still there" "$(sql $C postgres "SELECT pg_has_role('rec_app', 'pg_monitor', 'MEMBER')")" t
  check_match "the held row says how to let it through" \
    "$(sql $C postgres "SELECT waiting::text FROM pgops.reconcile_status WHERE capability = 'roles'")" 'revoke is applied only with pgops.reconcile_roles = all'
  local runs checked; runs=$(sql $C postgres "SELECT count(*) || '|' || max(id) FROM pgops.reconcile_run WHERE capability = 'roles'")
  checked=$(sql $C postgres "SELECT last_checked FROM pgops.reconcile_status WHERE capability = 'roles'")
  sleep 3
  check_eq "the same held outcome found again writes nothing (no row, no update)" \
    "$(sql $C postgres "SELECT count(*) || '|' || max(id) FROM pgops.reconcile_run WHERE capability = 'roles'")" "$runs"
  check_eq "… while last_checked moves on (kept in shared memory)" \
    "$(sql $C postgres "SELECT last_checked > '$checked' FROM pgops.reconcile_status WHERE capability = 'roles'")" t
  local xid; xid=$(sql $C postgres "SELECT txid_current()")
  sleep 3
  check_eq "… so an idle server's reconcile takes no transaction ID" \
    "$(sql $C postgres "SELECT txid_current() - $xid")" 1
  reconcile_set $C pgops.reconcile_roles all
  wait_sql $C postgres "SELECT NOT pg_has_role('rec_app', 'pg_monitor', 'MEMBER')" 20 \
    && ok "all: the revoke is applied" || not_ok "revoke applied under all"

  # --- drops always wait for a reviewed plan ---------------------------------------------------
  sql $C postgres "UPDATE pgops.role SET state = 'absent' WHERE name = 'rec_off'" >/dev/null
  wait_sql $C postgres "SELECT state = 'held' AND waiting::text ~ 'DROP ROLE' FROM pgops.reconcile_status WHERE capability = 'roles'" 20 \
    && ok "all: a declared drop is held for review" || not_ok "drop held" "$(state $C roles)"
  check_eq "the role is still there" "$(sql $C postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'rec_off'")" 1
  local hash; hash=$(sql $C postgres "SELECT DISTINCT plan_hash FROM pgops.plan_roles()")
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles(plan_hash => '$hash')" >/dev/null
  check_eq "the DBA applies the reviewed plan by hand" "$(sql $C postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'rec_off'")" 0
  wait_sql $C postgres "SELECT state = 'converged' FROM pgops.reconcile_status WHERE capability = 'roles'" 20 \
    && ok "then reconcile finds the roles converged" || not_ok "converged after the reviewed drop" "$(state $C roles)"

  # --- a failing statement backs off, is reported, and goes once the cause is fixed -----------
  sql $C postgres "UPDATE pgops.role SET parameters = '{\"work_mem\": \"1kB\"}' WHERE name = 'rec_app'" >/dev/null
  wait_sql $C postgres "SELECT state = 'failed' FROM pgops.reconcile_status WHERE capability = 'roles'" 20 \
    && ok "a statement the server refuses is recorded as failed" || not_ok "failed recorded" "$(state $C roles)"
  check_match "its row carries the server's error" \
    "$(sql $C postgres "SELECT waiting::text FROM pgops.reconcile_status WHERE capability = 'roles'")" 'failed: .*work_mem'
  # Every second (the interval) without a back-off: here tried at 0, 1, 3, 7 s… (the wait doubles).
  local first; first=$(grep -ac 'pgops reconcile: 1 statement(s) of roles failed' "$log")
  wait_sql $C postgres "SELECT waiting::text ~ 'held: failed [0-9]+ times? \(last: .*work_mem' FROM pgops.reconcile_status WHERE capability = 'roles'" 20 \
    && ok "between tries the row is held, saying how often it failed and why" || not_ok "backing off" "$(sql $C postgres "SELECT waiting FROM pgops.reconcile_status WHERE capability = 'roles'")"
  sleep 6
  local tries; tries=$(( $(grep -ac 'pgops reconcile: 1 statement(s) of roles failed' "$log") - first ))
  [ "$first" -ge 1 ] && [ "$tries" -le 4 ] && ok "it backs off: $tries more tries in over 6 s of 1 s intervals" || not_ok "backs off" "$tries more tries in 6 s"
  sql $C postgres "UPDATE pgops.role SET parameters = '{\"work_mem\": \"8MB\"}' WHERE name = 'rec_app'" >/dev/null
  wait_sql $C postgres "SELECT state = 'converged' FROM pgops.reconcile_status WHERE capability = 'roles'" 20 \
    && ok "the fixed declaration is applied at once" || not_ok "fixed and converged" "$(state $C roles)"
  check_eq "the setting is there" "$(sql $C postgres "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'rec_app'")" "work_mem=8MB"

  # --- the apply lock: a manual apply in progress is waited out, not waited on ----------------
  local holder=${CL_DIR[$C]}/holder.flag
  ( sql $C postgres "BEGIN; SELECT count(*) FROM pgops.apply_roles(dry_run => true); SELECT pg_sleep(3); COMMIT" >/dev/null 2>&1; touch "$holder" ) &
  sleep 0.5
  sql $C postgres "INSERT INTO pgops.role (name, login) VALUES ('rec_locked', false)" >/dev/null
  sleep 1
  check_eq "while a manual apply holds the lock, reconcile does not run" \
    "$(sql $C postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'rec_locked'")/$([ -e "$holder" ] && echo done || echo holding)" "0/holding"
  wait_sql $C postgres "SELECT count(*) = 1 FROM pg_roles WHERE rolname = 'rec_locked'" 20 \
    && ok "… and applies once the lock is free" || not_ok "applied after the lock"
  wait
  check_eq "the launcher stayed responsive (no error in pgops.workers)" \
    "$(sql $C postgres "SELECT coalesce(last_error, '') FROM pgops.workers WHERE name = 'pgops launcher'")" ""

  # --- databases ---------------------------------------------------------------------------------
  reconcile_set $C pgops.reconcile_databases safe
  sql $C postgres "INSERT INTO pgops.database_spec (name, owner) VALUES ('rec_db', 'rec_app')" >/dev/null
  wait_sql $C postgres "SELECT count(*) = 1 FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE datname = 'rec_db' AND rolname = 'rec_app' AND datallowconn" 30 \
    && ok "a declared database is created, handed over and opened without a call" || not_ok "database created by reconcile"
  wait_sql $C postgres "SELECT state = 'converged' FROM pgops.reconcile_status WHERE capability = 'databases'" 20 \
    && ok "databases converged" || not_ok "databases converged" "$(sql $C postgres "SELECT * FROM pgops.reconcile_status WHERE capability = 'databases'")"
  sql $C postgres "UPDATE pgops.database_spec SET state = 'absent' WHERE name = 'rec_db'" >/dev/null
  wait_sql $C postgres "SELECT state = 'held' AND waiting::text ~ 'DROP DATABASE' FROM pgops.reconcile_status WHERE capability = 'databases'" 20 \
    && ok "a declared database drop is held for review" || not_ok "database drop held" "$(state $C databases)"
  check_eq "the database is still there" "$(sql $C postgres "SELECT count(*) FROM pg_database WHERE datname = 'rec_db'")" 1

  # --- pg_hba.conf -------------------------------------------------------------------------------
  sql $C postgres "DELETE FROM pgops.hba_rule" >/dev/null
  sql $C postgres "SELECT pgops.load_hba_rules('[
    {\"title\": \"dbsu local\", \"user\": \"\${dbsu}\", \"addr\": \"local\", \"auth\": \"trust\", \"order\": 100},
    {\"title\": \"dbsu local replication\", \"user\": \"\${dbsu}\", \"db\": \"replication\", \"addr\": \"local\", \"auth\": \"trust\", \"order\": 110}]')" >/dev/null
  reconcile_set $C pgops.reconcile_hba safe
  wait_sql $C postgres "SELECT state = 'held' AND waiting::text ~ 'revoke' FROM pgops.reconcile_status WHERE capability = 'hba'" 20 \
    && ok "safe: a rendered file that drops live lines is held (a revoke)" || not_ok "hba held" "$(sql $C postgres "SELECT * FROM pgops.reconcile_status WHERE capability = 'hba'")"
  check_eq "the hand-written file is untouched" "$(grep -c '^local all all trust' "${CL_DIR[$C]}/data/pg_hba.conf")" 1
  reconcile_set $C pgops.reconcile_hba all
  wait_sql $C postgres "SELECT state = 'converged' FROM pgops.reconcile_status WHERE capability = 'hba'" 20 \
    && ok "all: the rendered file is written" || not_ok "hba applied" "$(sql $C postgres "SELECT * FROM pgops.reconcile_status WHERE capability = 'hba'")"
  check_eq "… through the same guarded apply (history row by the launcher)" \
    "$(sql $C postgres "SELECT reason ~ '^reconcile' FROM pgops.hba_apply ORDER BY id DESC LIMIT 1")" t
  echo 'host all all 127.0.0.77/32 trust' | as_pg tee -a "${CL_DIR[$C]}/data/pg_hba.conf" >/dev/null
  wait_sql $C postgres "SELECT count(*) = 0 FROM pg_hba_file_rules WHERE address = '127.0.0.77'" 20 \
    && ok "all: a line added to pg_hba.conf by hand is taken out again" || not_ok "hand edit reverted"
  reconcile_set $C pgops.reconcile_hba safe
  sql $C postgres "INSERT INTO pgops.hba_rule (title, addr, auth, \"order\") VALUES ('late', '127.0.0.88/32', 'trust', 5000)" >/dev/null
  wait_sql $C postgres "SELECT count(*) = 1 FROM pg_hba_file_rules WHERE address = '127.0.0.88'" 20 \
    && ok "safe: a rule appended after every live line is applied without a call" || not_ok "appended rule applied"

  # --- pg_monitor reads the state; the etcd document's share ------------------------------------
  sql $C postgres "CREATE ROLE rec_watch LOGIN IN ROLE pg_monitor" >/dev/null
  check_eq "pg_monitor reads pgops.reconcile_status" \
    "$(sql $C postgres "SET ROLE rec_watch; SELECT count(*) FROM pgops.reconcile_status" 2>&1)" 3
  check_match "the etcd document carries each enabled capability's state" \
    "$(sql $C postgres "$(cat "$PGOPS_ROOT/sql/queries/etcd_pgops_state.sql")")" '"reconcile": \{"hba": \{.*"roles": \{.*"state": "converged"'

  # --- history is bounded ------------------------------------------------------------------------
  reconcile_set $C pgops.reconcile_history_runs 10
  for i in $(seq 1 12); do sql $C postgres "INSERT INTO pgops.role (name, login) VALUES ('rec_h$i', false)" >/dev/null; sleep 0.3; done
  wait_sql $C postgres "SELECT count(*) = 12 FROM pg_roles WHERE rolname ~ '^rec_h'" 20 || true
  sleep 1
  check_eq "pgops.reconcile_run keeps pgops.reconcile_history_runs rows" \
    "$(sql $C postgres "SELECT count(*) <= 10 FROM pgops.reconcile_run")" t

  # --- a standby never applies -------------------------------------------------------------------
  cluster_standby $S $C || { not_ok "standby"; return 1; }
  wait_sql $S postgres "SELECT state = 'standby' FROM pgops.reconcile_status WHERE capability = 'roles'" 20 \
    && ok "on a standby the state says standby" || not_ok "standby state"
  sleep 1
  check_eq "the standby's launcher ran no reconcile" "$(grep -ac 'pgops reconcile:' "${CL_DIR[$S]}/server.log")" 0
  check_eq "and logged no error" "$(sql $S postgres "SELECT coalesce(last_error, '') FROM pgops.workers WHERE name = 'pgops launcher'")" ""
}
