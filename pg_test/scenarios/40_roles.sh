# Declarative roles end to end: Pigsty baseline + demo users, plan/apply/drift, default
# privileges in two databases, existing objects, drops, secrets, errors, hostile names,
# concurrency, plan hashes, standby refusal.

scenario_main() {
  local v=$1 C=roles
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "pgops.naptime = '500ms'" \
    "log_statement = 'all'" "password_encryption = 'scram-sha-256'" || { not_ok "initdb"; return 1; }
  printf 'local all all trust\nlocal replication all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n' \
    | as_pg tee "${CL_DIR[$C]}/data/pg_hba.conf" >/dev/null
  cluster_start $C || { not_ok "server starts"; return 1; }
  local log=${CL_DIR[$C]}/server.log
  sql $C postgres "CREATE EXTENSION pgops" >/dev/null
  sql $C postgres "CREATE DATABASE app" >/dev/null
  sql $C app "CREATE EXTENSION pgops" >/dev/null
  sql $C postgres "CREATE DATABASE other" >/dev/null   # no pgops there: no default privileges managed
  sql $C app "CREATE TABLE legacy(i int)" >/dev/null   # exists before any apply

  # --- Pigsty baseline + the seed's demo users (plaintext passwords, logged nowhere) ---------
  check_eq "baseline loads 8 roles + 17 privileges × 3 creators" "$(sql $C postgres "SELECT pgops.load_pigsty_baseline()")" 59
  local users='[
    {"name": "dbuser_meta", "password": "DBUser.Meta", "pgbouncer": true, "roles": ["dbrole_admin"], "comment": "pigsty admin user"},
    {"name": "dbuser_view", "password": "DBUser.Viewer", "pgbouncer": true, "roles": ["dbrole_readonly"], "comment": "read-only viewer for meta database"},
    {"name": "dbuser_grafana", "password": "DBUser.Grafana", "pgbouncer": true, "roles": ["dbrole_admin"], "comment": "admin user for grafana database"},
    {"name": "dbuser_bytebase", "password": "DBUser.Bytebase", "pgbouncer": true, "roles": ["dbrole_admin"], "comment": "admin user for bytebase database"},
    {"name": "dbuser_kong", "password": "DBUser.Kong", "pgbouncer": true, "roles": ["dbrole_admin"], "comment": "admin user for kong api gateway"},
    {"name": "dbuser_gitea", "password": "DBUser.Gitea", "pgbouncer": true, "roles": ["dbrole_admin"], "comment": "admin user for gitea service"},
    {"name": "dbuser_wiki", "password": "DBUser.Wiki", "pgbouncer": true, "roles": ["dbrole_admin"], "comment": "admin user for wiki.js service"},
    {"name": "dbuser_noco", "password": "DBUser.Noco", "pgbouncer": true, "roles": ["dbrole_admin"], "comment": "admin user for nocodb service"},
    {"name": "dbuser_remove", "state": "absent"}]'
  check_eq "demo users load" \
    "$(sql_secret $C postgres "SELECT pgops.load_roles('$users'::jsonb)")" 9
  check_eq "pgops.role keeps only SCRAM verifiers" \
    "$(sql $C postgres "SELECT count(*) FILTER (WHERE password LIKE 'SCRAM-SHA-256\$4096:%') || '/' || count(password) FROM pgops.role")" "8/8"
  check_eq "no plaintext password in pgops tables" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.role r WHERE r::text LIKE '%' || 'DBUser' || '.%'")" 0
  local plan; plan=$(sql $C postgres "SELECT seq || '|' || coalesce(database, '*') || '|' || statement || '|' || risk FROM pgops.plan_roles()")
  check "plan lists CREATE ROLE for the baseline" grep -q '|\*|CREATE ROLE "dbrole_readonly" WITH NOLOGIN' <<<"$plan"
  check "plan redacts passwords" grep -q "CREATE ROLE \"dbuser_meta\" WITH LOGIN .* PASSWORD '<redacted>'" <<<"$plan"
  if grep -q 'DBUser\.\|SCRAM-SHA-256\$' <<<"$plan"; then not_ok "no secret in plan rows"; else ok "no secret in plan rows"; fi
  check "plan has default privileges in postgres" \
    grep -q '|postgres|ALTER DEFAULT PRIVILEGES FOR ROLE "dbrole_admin" GRANT SELECT ON TABLES TO "dbrole_readonly"' <<<"$plan"
  check "plan has default privileges in app" grep -q '|app|ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" GRANT' <<<"$plan"
  if grep -q '|other|' <<<"$plan"; then not_ok "no default privileges planned where pgops is not installed"
  else ok "no default privileges planned where pgops is not installed"; fi
  local statuses; statuses=$(sql $C postgres "SELECT status, count(*) FROM pgops.apply_roles() GROUP BY 1")
  check_match "apply applies every statement" "$statuses" "^applied\|[0-9]+$"
  check_eq "apply is idempotent: second apply does nothing" "$(sql $C postgres "SELECT count(*) FROM pgops.apply_roles()")" 0
  check_eq "plan is empty after apply" "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()")" 0
  check_eq "drift is empty and the summary says 0" \
    "$(sql $C postgres "SELECT (SELECT count(*) FROM pgops.role_drift) || '/' || differences FROM pgops.role_drift_summary")" "0/0"
  check_eq "baseline memberships" \
    "$(sql $C postgres "SELECT string_agg(r.rolname || '>' || g.rolname, ',' ORDER BY r.rolname, g.rolname) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid WHERE r.rolname IN ('dbrole_admin', 'replicator')")" \
    "dbrole_admin>dbrole_readwrite,dbrole_admin>pg_monitor,replicator>dbrole_readonly,replicator>pg_monitor"
  check_eq "role settings from parameters" \
    "$(sql $C postgres "SELECT setconfig::text FROM pg_db_role_setting WHERE setrole = 'dbuser_monitor'::regrole")" "{log_min_duration_statement=1000}"

  # The password set through pgops works for a real SCRAM login over TCP; a wrong one does not.
  check "SCRAM login with the configured password" \
    as_pg env PGPASSWORD=DBUser.Meta "$(psql_for "$v")" -X -h 127.0.0.1 -p "${CL_PORT[$C]}" -U dbuser_meta -d postgres -Atc "SELECT 1"
  if PGPASSWORD=nope "$(psql_for "$v")" -X -h 127.0.0.1 -p "${CL_PORT[$C]}" -U dbuser_meta -d postgres -Atc 'SELECT 1' >/dev/null 2>&1
  then not_ok "a wrong password is refused"; else ok "a wrong password is refused"; fi
  sql_secret $C postgres "SELECT pgops.set_password('dbuser_view', 'N3w.Secret')" >/dev/null
  check_eq "set_password plans one redacted statement" \
    "$(sql $C postgres "SELECT statement FROM pgops.plan_roles()")" "ALTER ROLE \"dbuser_view\" WITH PASSWORD '<redacted>'"
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check "the new password works" \
    as_pg env PGPASSWORD=N3w.Secret "$(psql_for "$v")" -X -h 127.0.0.1 -p "${CL_PORT[$C]}" -U dbuser_view -d postgres -Atc "SELECT 1"
  # No plaintext at all: the verifier computed on the client (pg_test/scram_verifier.py, as the
  # README shows) is what the server receives.
  local verifier; verifier=$(PGOPS_PASSWORD=Cl1ent.Side python3 "$PGOPS_ROOT/pg_test/scram_verifier.py")
  check_match "the client computes a SCRAM-SHA-256 verifier" "$verifier" '^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$'
  sql $C postgres "SELECT pgops.set_password('dbuser_view', '$verifier')" >/dev/null
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check "a login with the password whose verifier the client computed" \
    as_pg env PGPASSWORD=Cl1ent.Side "$(psql_for "$v")" -X -h 127.0.0.1 -p "${CL_PORT[$C]}" -U dbuser_view -d postgres -Atc "SELECT 1"
  check_eq "the server never saw that plaintext (log_statement = all)" "$(grep -c 'Cl1ent.Side' "$log")" 0

  # --- default privileges, per creator, in two databases ------------------------------------
  local db ok_all=1
  for db in postgres app; do
    sql $C "$db" "CREATE SCHEMA s_admin AUTHORIZATION dbrole_admin; CREATE TABLE t_pg(i int);
                  SET ROLE dbuser_dba; CREATE TABLE t_dba(i int); RESET ROLE;
                  SET ROLE dbrole_admin; CREATE TABLE s_admin.t_admin(i int); RESET ROLE" >/dev/null || ok_all=0
    local got
    got=$(sql $C "$db" "SELECT string_agg(t || ':' || has_table_privilege('dbrole_readonly', t, 'SELECT') || has_table_privilege('dbrole_readwrite', t, 'INSERT')
                                  || has_table_privilege('dbrole_admin', t, 'TRUNCATE') || has_table_privilege('dbrole_offline', t, 'SELECT'), ',' ORDER BY t)
                        FROM unnest(ARRAY['t_pg', 't_dba', 's_admin.t_admin']) t")
    check_eq "$db: tables created by postgres, dbuser_dba, dbrole_admin get the 17 default privileges" "$got" \
      "s_admin.t_admin:truetruetruetrue,t_dba:truetruetruetrue,t_pg:truetruetruetrue"
  done
  [ $ok_all = 1 ] || not_ok "creating tables as each creator"

  # --- grants on objects that existed before ------------------------------------------------
  check_eq "legacy table lacks the grant before 'existing'" "$(sql $C app "SELECT has_table_privilege('dbrole_readonly', 'legacy', 'SELECT')")" f
  sql $C postgres "UPDATE pgops.default_privilege SET existing = true WHERE creator = 'postgres' AND grantee = 'dbrole_readonly'" >/dev/null
  plan=$(sql $C postgres "SELECT coalesce(database, '*') || '|' || statement FROM pgops.plan_roles()")
  check "plan grants on existing tables per schema" \
    grep -q '^app|GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "dbrole_readonly"' <<<"$plan"
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check_eq "existing table granted after apply" "$(sql $C app "SELECT has_table_privilege('dbrole_readonly', 'legacy', 'SELECT') AND has_schema_privilege('dbrole_readonly', 'public', 'USAGE')")" t
  check_eq "plan empty again" "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()")" 0
  # The same privilege from a second grantor on one table counts that table once: another table
  # that lacks it (its default grant revoked) is still found (counting grants, not tables, made
  # 2 of 2 here).
  sql $C app "CREATE TABLE legacy2 (id int); REVOKE SELECT ON legacy2 FROM dbrole_readonly; CREATE ROLE legacy_grantor NOLOGIN;
              GRANT SELECT ON legacy TO legacy_grantor WITH GRANT OPTION;
              SET ROLE legacy_grantor; GRANT SELECT ON legacy TO dbrole_readonly; RESET ROLE" >/dev/null
  plan=$(sql $C postgres "SELECT coalesce(database, '*') || '|' || statement FROM pgops.plan_roles()")
  check_match "a table granted by two grantors counts once: the one lacking the grant is found" "$plan" \
    '(^|'$'\n'')app\|GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "dbrole_readonly"('$'\n''|$)'
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check_eq "… and granted by the apply" "$(sql $C app "SELECT has_table_privilege('dbrole_readonly', 'legacy2', 'SELECT')")" t
  sql $C app "REVOKE SELECT ON legacy FROM legacy_grantor CASCADE; DROP TABLE legacy2" >/dev/null
  sql $C postgres "DROP ROLE legacy_grantor" >/dev/null
  check_eq "plan empty again after the second grantor left" "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()")" 0
  # A database that cannot be read fails alone: a SQL_ASCII database whose schema's name is not
  # UTF-8 (its owner's to choose) is left out with a warning and a drift row; the others are
  # planned and applied as before.
  sql $C postgres "CREATE DATABASE ascii_db ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" >/dev/null
  PGCLIENTENCODING=SQL_ASCII sql $C ascii_db $'CREATE SCHEMA "caf\xe9"' >/dev/null
  sql $C app "REVOKE SELECT ON legacy FROM dbrole_readonly" >/dev/null
  out=$(sql $C postgres "SELECT coalesce(database, '*') || '|' || statement FROM pgops.plan_roles()" 2>&1)
  check_match "an unreadable database: a warning naming it, the others still planned" "$out" \
    'WARNING:  database "ascii_db" could not be read \(.*UTF-?8.*\); nothing is planned there until it can be.*app\|GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "dbrole_readonly"'
  check_match "… and it is a drift row, not a missing database" \
    "$(sql $C postgres "SELECT object || '|' || field || '|' || want || '|' || have FROM pgops.role_drift WHERE object LIKE '%ascii_db%'" 2>/dev/null)" \
    '^roles'"'"' privileges in database "ascii_db"\|database\|read\|could not be read, nothing is planned there: .*UTF-?8'
  sql $C postgres "CREATE ROLE drop_later; INSERT INTO pgops.role (name, state) VALUES ('drop_later', 'absent')" >/dev/null
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null 2>&1
  check_eq "… and the apply converges the others" "$(sql $C app "SELECT has_table_privilege('dbrole_readonly', 'legacy', 'SELECT')")" t
  check_eq "… but drops no role while a database is unread (its objects there could not be handed over)" \
    "$(sql $C postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'drop_later'"),$(sql $C postgres "SELECT have FROM pgops.role_drift WHERE object = 'role \"drop_later\"'" 2>/dev/null)" \
    '1,present: dropped once every database can be read (not: ascii_db)'
  sql $C postgres "DROP DATABASE ascii_db" >/dev/null
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check_eq "once it is gone the role is dropped and the plan is empty" \
    "$(sql $C postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'drop_later'"),$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()")" "0,0"
  sql $C postgres "DELETE FROM pgops.role WHERE name = 'drop_later'" >/dev/null

  # A role and its grants on existing objects, declared together, converge in one apply.
  sql $C postgres "INSERT INTO pgops.role (name, login) VALUES ('dbrole_fresh', false)" >/dev/null
  sql $C postgres "SELECT pgops.load_default_privileges('[\"GRANT SELECT ON TABLES TO dbrole_fresh\"]', '{postgres}', true, 'app')" >/dev/null
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check_eq "new role + existing-object grants converge in one apply" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()"),$(sql $C app "SELECT has_table_privilege('dbrole_fresh', 'legacy', 'SELECT')")" "0,t"
  check_match "apply works from another database, with that database's config, and says so" \
    "$(sql $C app "SELECT count(*) FROM pgops.apply_roles()" 2>&1)" \
    'NOTICE:  pgops.apply_roles\(\) uses the role config of database "app"; pgops.database is "postgres".*0$'

  # --- unmanaged grants are revoked ---------------------------------------------------------
  sql $C postgres "GRANT dbrole_admin TO dbuser_view" >/dev/null
  sql $C app "ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT DELETE ON TABLES TO dbrole_readonly; GRANT INSERT ON legacy TO dbrole_readonly" >/dev/null
  plan=$(sql $C postgres "SELECT coalesce(database, '*') || '|' || statement || '|' || risk FROM pgops.plan_roles()")
  check "unmanaged membership planned for revoke" grep -q "^\*|REVOKE \"dbrole_admin\" FROM \"dbuser_view\".*|revoke$" <<<"$plan"
  check "unmanaged default privilege planned for revoke" grep -q '^app|ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" REVOKE DELETE ON TABLES FROM "dbrole_readonly"|revoke$' <<<"$plan"
  check "unmanaged grant on an existing table planned for revoke" grep -q '^app|REVOKE INSERT ON ALL TABLES IN SCHEMA "public" FROM "dbrole_readonly"|revoke$' <<<"$plan"
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check_eq "unmanaged grants are gone" \
    "$(sql $C app "SELECT pg_has_role('dbuser_view', 'dbrole_admin', 'MEMBER') || ',' || has_table_privilege('dbrole_readonly', 'legacy', 'INSERT') || ',' || (SELECT count(*) FROM pg_default_acl d, aclexplode(d.defaclacl) a WHERE a.privilege_type = 'DELETE' AND a.grantee = 'dbrole_readonly'::regrole)")" "false,false,0"

  # --- flags both ways, memberships, settings, expiry ---------------------------------------
  sql $C postgres "UPDATE pgops.role SET createdb = true, connlimit = 7 WHERE name = 'dbuser_meta'" >/dev/null
  check_eq "drift shows config vs catalog per field" \
    "$(sql $C postgres "SELECT string_agg(field || ':' || want || '/' || have, ',' ORDER BY field) FROM pgops.role_drift WHERE object = 'role \"dbuser_meta\"'")" \
    "connlimit:7/-1,createdb:true/false"
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check_eq "flag turned on" "$(sql $C postgres "SELECT rolcreatedb || ',' || rolconnlimit FROM pg_roles WHERE rolname = 'dbuser_meta'")" "true,7"
  sql $C postgres "ALTER ROLE dbuser_view SUPERUSER" >/dev/null
  sql $C postgres "UPDATE pgops.role SET createdb = false WHERE name = 'dbuser_meta'" >/dev/null
  check_eq "NOSUPERUSER planned as a revoke" "$(sql $C postgres "SELECT risk FROM pgops.plan_roles() WHERE statement LIKE '%NOSUPERUSER%'")" revoke
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check_eq "flags turned off" "$(sql $C postgres "SELECT string_agg(rolname || ':' || rolsuper || rolcreatedb, ',' ORDER BY 1) FROM pg_roles WHERE rolname IN ('dbuser_meta', 'dbuser_view')")" \
    "dbuser_meta:falsefalse,dbuser_view:falsefalse"
  sql $C postgres "UPDATE pgops.role SET roles = '[\"dbrole_readonly\", {\"name\": \"dbrole_readwrite\", \"admin\": true}]', parameters = '{\"work_mem\": \"64MB\", \"search_path\": \"app, public\"}', expire_in = 30 WHERE name = 'dbuser_view'" >/dev/null
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check_eq "membership with admin option added" \
    "$(sql $C postgres "SELECT m.admin_option FROM pg_auth_members m WHERE m.member = 'dbuser_view'::regrole AND m.roleid = 'dbrole_readwrite'::regrole")" t
  check_eq "settings set (list setting as a list)" \
    "$(sql $C postgres "SELECT string_agg(c, ';' ORDER BY c) FROM pg_db_role_setting, unnest(setconfig) c WHERE setrole = 'dbuser_view'::regrole")" "search_path=app, public;work_mem=64MB"
  check_eq "expire_in sets VALID UNTIL" "$(sql $C postgres "SELECT rolvaliduntil::date = current_date + 30 FROM pg_roles WHERE rolname = 'dbuser_view'")" t
  check_eq "converged again" "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()")" 0
  sql $C postgres "UPDATE pgops.role SET roles = '[\"dbrole_readonly\"]', parameters = '{\"work_mem\": \"DEFAULT\"}', expire_in = NULL WHERE name = 'dbuser_view'" >/dev/null
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check_eq "membership removed, settings reset, expiry lifted" \
    "$(sql $C postgres "SELECT pg_has_role('dbuser_view', 'dbrole_readwrite', 'MEMBER') || ',' || coalesce((SELECT array_to_string(setconfig, ';') FROM pg_db_role_setting WHERE setrole = 'dbuser_view'::regrole), '-') || ',' || coalesce(rolvaliduntil::text, 'none') FROM pg_roles WHERE rolname = 'dbuser_view'")" \
    "false,-,infinity"

  # --- PG16+ membership options (a clear error before 16) -------------------------------------
  sql $C postgres "UPDATE pgops.role SET roles = '[\"dbrole_readonly\", {\"name\": \"pg_monitor\", \"set\": false, \"inherit\": true}]' WHERE name = 'dbuser_view'" >/dev/null
  if [ "$v" -ge 16 ]; then
    sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
    check_eq "PG16+: SET and INHERIT membership options applied" \
      "$(sql $C postgres "SELECT inherit_option || ',' || set_option FROM pg_auth_members WHERE member = 'dbuser_view'::regrole AND roleid = 'pg_monitor'::regrole")" "true,false"
    sql $C postgres "UPDATE pgops.role SET roles = '[\"dbrole_readonly\", {\"name\": \"pg_monitor\", \"set\": true, \"inherit\": false}]' WHERE name = 'dbuser_view'" >/dev/null
    check_eq "PG16+: changed options planned both ways" \
      "$(sql $C postgres "SELECT string_agg(statement, ' / ' ORDER BY seq) FROM pgops.plan_roles()")" \
      'REVOKE INHERIT OPTION FOR "pg_monitor" FROM "dbuser_view" / GRANT "pg_monitor" TO "dbuser_view" WITH SET TRUE'
    sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
    check_eq "PG16+: options converged" "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()")" 0
  else
    check_match "before PG16: inherit/set options are a clear error" \
      "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()" 2>&1)" 'the inherit and set options need PostgreSQL 16 or later'
  fi
  sql $C postgres "UPDATE pgops.role SET roles = '[\"dbrole_readonly\"]' WHERE name = 'dbuser_view'" >/dev/null
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null

  # --- pgbouncer lines -------------------------------------------------------------------
  check_eq "pgbouncer_users lists the pgbouncer roles with verifiers" \
    "$(sql $C postgres "SELECT count(*) FILTER (WHERE userlist_line ~ '^\"[a-z_]+\" \"SCRAM-SHA-256') || '/' || count(*) FROM pgops.pgbouncer_users WHERE name LIKE 'dbuser_%' AND name NOT IN ('dbuser_dba', 'dbuser_monitor')")" "8/8"
  check_eq "pgbouncer [users] line carries pool mode and limit" \
    "$(sql $C postgres "SELECT users_line FROM pgops.pgbouncer_users WHERE name = 'dbuser_dba'")" '"dbuser_dba" = pool_mode=session max_user_connections=16'

  # --- export → load → plan is empty ----------------------------------------------------------
  sql $C postgres "SELECT pgops.load_roles(pgops.export_roles())" >/dev/null
  check_eq "round trip export → load → plan is empty" "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()")" 0

  # --- safe drop of a role owning objects in two databases -----------------------------------
  sql $C postgres "INSERT INTO pgops.role (name) VALUES ('dbuser_old')" >/dev/null
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  for db in postgres app; do
    sql $C "$db" "GRANT CREATE ON SCHEMA public TO dbuser_old; SET ROLE dbuser_old; CREATE TABLE old_$db(i int)" >/dev/null
  done
  sql $C postgres "UPDATE pgops.role SET state = 'absent' WHERE name = 'dbuser_old'" >/dev/null
  plan=$(sql $C postgres "SELECT coalesce(database, '*') || '|' || statement FROM pgops.plan_roles()")
  check "drop plan reassigns owned objects in postgres" grep -q '^postgres|REASSIGN OWNED BY "dbuser_old" TO "pgops_orphans"' <<<"$plan"
  check "drop plan drops owned privileges in app" grep -q '^app|DROP OWNED BY "dbuser_old"' <<<"$plan"
  check_eq "drop plan ends with DROP ROLE" "$(tail -1 <<<"$plan")" '*|DROP ROLE "dbuser_old"'
  check "drop plan disables login first" grep -q '^\*|ALTER ROLE "dbuser_old" NOLOGIN' <<<"$plan"
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check_eq "role dropped, its tables now owned by pgops_orphans (no superuser)" \
    "$(sql $C postgres "SELECT (SELECT count(*) FROM pg_roles WHERE rolname = 'dbuser_old') || ',' || (SELECT tableowner FROM pg_tables WHERE tablename = 'old_postgres')"),$(sql $C app "SELECT tableowner FROM pg_tables WHERE tablename = 'old_app'")" \
    "0,pgops_orphans,pgops_orphans"
  sql $C postgres "ALTER SYSTEM SET pgops.drop_reassign_to = 'postgres'" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null; sleep 0.3
  check_match "a superuser as pgops.drop_reassign_to is refused" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()" 2>&1)" 'role "postgres" is a superuser'
  sql $C postgres "ALTER SYSTEM RESET pgops.drop_reassign_to" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null; sleep 0.3
  sql $C postgres "UPDATE pgops.role SET state = 'absent' WHERE name = 'dbuser_dba'" >/dev/null
  check_match "a protected role is never dropped" "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()" 2>&1)" "cannot be dropped: it is listed in pgops.protected_roles"
  sql $C postgres "UPDATE pgops.role SET state = 'present' WHERE name = 'dbuser_dba'" >/dev/null

  # --- errors: clear, naming the object, nothing applied -------------------------------------
  local before; before=$(sql $C postgres "SELECT count(*) FROM pg_roles")
  sql $C postgres "INSERT INTO pgops.role (name, roles) VALUES ('dbuser_x', '[\"ghost\"]')" >/dev/null
  check_match "unknown member role named" "$(sql $C postgres "SELECT * FROM pgops.apply_roles()" 2>&1)" 'role "dbuser_x" is a member of unknown role "ghost"'
  sql $C postgres "UPDATE pgops.role SET roles = '[\"dbuser_y\"]' WHERE name = 'dbuser_x'; INSERT INTO pgops.role (name, roles) VALUES ('dbuser_y', '[\"dbuser_x\"]')" >/dev/null
  check_match "membership cycle named" "$(sql $C postgres "SELECT * FROM pgops.apply_roles()" 2>&1)" 'memberships form a cycle: dbuser_x → dbuser_y → dbuser_x'
  check_eq "nothing was applied" "$(sql $C postgres "SELECT count(*) FROM pg_roles")" "$before"
  sql $C postgres "DELETE FROM pgops.role WHERE name IN ('dbuser_x', 'dbuser_y')" >/dev/null
  check_match "invalid privilege for the object type rejected at insert" \
    "$(sql $C postgres "INSERT INTO pgops.default_privilege (creator, object_type, privileges, grantee) VALUES ('postgres', 'sequences', '{EXECUTE}', 'dbrole_readonly')" 2>&1)" \
    'field "privileges": privilege EXECUTE is not valid on sequences'
  check_match "reserved role name rejected at insert" \
    "$(sql $C postgres "INSERT INTO pgops.role (name) VALUES ('none')" 2>&1)" 'role name "none" is reserved'
  check_match "role name over 63 bytes rejected at insert" \
    "$(sql $C postgres "INSERT INTO pgops.role (name) VALUES (repeat('x', 64))" 2>&1)" 'is 64 bytes; PostgreSQL role names are at most 63 bytes'
  check_match "plaintext password rejected at insert" \
    "$(sql_secret $C postgres "INSERT INTO pgops.role (name, password) VALUES ('p', 'hunter2')" 2>&1)" 'field "password" is not a SCRAM-SHA-256 verifier'
  check_match "bad field value rejected naming the field" \
    "$(sql $C postgres "INSERT INTO pgops.role (name, connlimit) VALUES ('c', -5)" 2>&1)" 'pgops.role "c": field "connlimit" must be -1'

  # --- plan hash --------------------------------------------------------------------------
  sql $C postgres "INSERT INTO pgops.role (name, login) VALUES ('dbrole_hash', false)" >/dev/null
  local hash; hash=$(sql $C postgres "SELECT plan_hash FROM pgops.plan_roles() LIMIT 1")
  sql $C postgres "ALTER ROLE dbuser_meta CONNECTION LIMIT 3" >/dev/null
  check_match "apply refuses a stale plan hash" "$(sql $C postgres "SELECT count(*) FROM pgops.apply_roles(plan_hash => '$hash')" 2>&1)" "changed since the plan was made"
  check_eq "nothing applied by the refused call" "$(sql $C postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'dbrole_hash'")" 0
  hash=$(sql $C postgres "SELECT plan_hash FROM pgops.plan_roles() LIMIT 1")
  check_eq "apply accepts the current plan hash" "$(sql $C postgres "SELECT count(*) FROM pgops.apply_roles(plan_hash => '$hash') WHERE status = 'applied'")" 2

  # --- concurrent applies are serialised ---------------------------------------------------
  sql $C postgres "INSERT INTO pgops.role (name, roles) SELECT 'dbuser_c' || i, '[\"dbrole_readonly\"]' FROM generate_series(1, 20) i" >/dev/null
  local i outs=()
  for i in 1 2 3 4; do
    ( sql $C postgres "SELECT count(*) FROM pgops.apply_roles() WHERE status = 'applied'" > "${CL_DIR[$C]}/conc.$i" 2>&1 ) &
  done
  wait
  local total=0 errors=0
  for i in 1 2 3 4; do
    local out; out=$(cat "${CL_DIR[$C]}/conc.$i")
    if [[ "$out" =~ ^[0-9]+$ ]]; then total=$((total + out)); else errors=$((errors + 1)); fi
  done
  check_eq "4 concurrent applies: no error, 40 statements applied once in all" "$errors/$total" "0/40"
  check_eq "converged after the concurrent applies" "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()")" 0

  # --- 60 hostile role names: created and dropped, nothing else touched ------------------------
  local names_sql="SELECT n FROM unnest(ARRAY[
      '\"; DROP ROLE postgres; --', 'Robert''); DROP TABLE students;--', 'with space', 'semi;colon', 'quote''s', 'dq\"inside',
      'back\\slash', 'UPPER', 'MiXeD', 'ünïcødé', '日本語ロール', '🦀crab', 'tab	tab', 'percent%s', 'dollar\$1', '\$\$dq\$\$',
      'a-b-c', 'a.b.c', 'star*', 'question?', 'brace{}', 'bracket[]', 'paren()', 'comma,comma', 'equals=x', 'plus+',
      'hash#', 'at@host', 'slash/', 'colon:', 'pipe|', 'amp&', 'caret^', 'tilde~', 'grave\`', 'lt<gt>', 'public_', 'user ',
      ' leading', 'x', 'select', 'from', 'table', 'all', 'nOne', 'current_user_', 'session_user_', 'role', 'drop role',
      '--comment', '/* c */', 'NULL', 'null', 'true', '0', '123abc', 'e\\\\x', 'new
line', 'zero width​', 'end'])
      AS n"
  check_eq "60 hostile names" "$(sql $C postgres "SELECT count(DISTINCT n) FROM ($names_sql) x")" 60
  local roles_before; roles_before=$(sql $C postgres "SELECT md5(string_agg(rolname || rolsuper || rolcanlogin, ',' ORDER BY rolname)) FROM pg_roles")
  sql $C postgres "INSERT INTO pgops.role (name, comment, parameters, roles) SELECT n, n, jsonb_build_object('application_name', n), '[\"dbrole_readonly\"]' FROM ($names_sql) x" >/dev/null
  local applied; applied=$(sql $C postgres "SELECT count(*) FILTER (WHERE status = 'applied') || '/' || count(*) FROM pgops.apply_roles()")
  check_match "hostile names all applied" "$applied" '^([0-9]+)/\1$'
  check_eq "60 hostile roles exist, commented and configured" \
    "$(sql $C postgres "SELECT count(*) FROM pg_roles r JOIN ($names_sql) x ON x.n = r.rolname WHERE shobj_description(r.oid, 'pg_authid') = x.n AND pg_has_role(r.oid, 'dbrole_readonly', 'MEMBER')")" 60
  check_eq "hostile names converge" "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()")" 0
  sql $C postgres "UPDATE pgops.role SET state = 'absent' WHERE name IN ($names_sql)" >/dev/null
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check_eq "hostile roles dropped" "$(sql $C postgres "SELECT count(*) FROM pg_roles WHERE rolname IN ($names_sql)")" 0
  check_eq "every other role untouched" "$(sql $C postgres "SELECT md5(string_agg(rolname || rolsuper || rolcanlogin, ',' ORDER BY rolname)) FROM pg_roles")" "$roles_before"
  check_eq "postgres is still a superuser" "$(sql $C postgres "SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'")" t

  # --- secrets never reach the server log (log_statement = all) -------------------------------
  local leaked; leaked=$(grep -c 'DBUser\.[A-Z]\|N3w\.Secret\|hunter2' "$log")
  check_eq "no plaintext password in the server log" "$leaked" 0
  check "the log did record statements (log_statement = all is on)" grep -q 'statement: SELECT count(\*) FROM pgops.plan_roles()' "$log"

  # --- md5 verifiers are drift -------------------------------------------------------------
  sql_secret $C postgres "SET password_encryption = 'md5'; ALTER ROLE replicator PASSWORD 'x'" >/dev/null
  check_eq "md5 verifier reported in drift" \
    "$(sql $C postgres "SELECT want || '/' || have FROM pgops.role_drift WHERE object = 'role \"replicator\"' AND field = 'password'")" "SCRAM-SHA-256 verifier/md5 verifier"
  check_eq "drift summary counts it" "$(sql $C postgres "SELECT md5_passwords FROM pgops.role_drift_summary")" 1

  # --- a cancelled apply leaves nothing behind ------------------------------------------------
  # A session holds slow_role's pg_authid row (an uncommitted ALTER ROLE): the apply's cluster-wide
  # worker waits on it; the caller is cancelled (statement_timeout, pg_cancel_backend,
  # pg_terminate_backend). The worker must be stopped and rolled back before the caller's error
  # (and the release of its lock), and its files removed.
  sql $C postgres "CREATE ROLE slow_role NOLOGIN CONNECTION LIMIT 1;
    INSERT INTO pgops.role (name, login, connlimit) VALUES ('slow_role', false, 5)" >/dev/null
  local how blocker caller
  for how in statement_timeout pg_cancel_backend pg_terminate_backend; do
    sql_file $C postgres "BEGIN; ALTER ROLE slow_role CONNECTION LIMIT 2; SELECT pg_sleep(5); ROLLBACK;" >/dev/null 2>&1 &
    blocker=$!
    wait_sql $C postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(5)%' AND state = 'active' AND pid <> pg_backend_pid()" 5
    if [ $how = statement_timeout ]; then
      out=$(sql $C postgres "SET statement_timeout = '1s'; SELECT count(*) FROM pgops.apply_roles()" 2>&1)
    else
      sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >"${CL_DIR[$C]}/caller.out" 2>&1 &
      caller=$!
      wait_sql $C postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgops database worker' AND wait_event_type = 'Lock'" 5
      sql $C postgres "SELECT $how(pid) FROM pg_stat_activity WHERE query LIKE '%pgops.apply_roles()%' AND pid <> pg_backend_pid()" >/dev/null
      wait $caller; out=$(cat "${CL_DIR[$C]}/caller.out")
    fi
    check_match "$how: the waiting apply_roles() gets its error" "$out" 'canceling statement|terminating connection|server closed the connection'
    check_eq "$how: no pgops worker is left running" \
      "$(sql $C postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pgops database worker'")" 0
    check_eq "$how: no task or result file is left" "$(as_pg find "${CL_DIR[$C]}/data/pg_stat_tmp" -name 'pgops.*' | wc -l)" 0
    wait $blocker
    check_eq "$how: the worker's group was rolled back (connlimit unchanged after the blocker rolled back)" \
      "$(sql $C postgres "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'slow_role'")" 1
  done
  check_match "pgops.workers says the worker was stopped because its caller was cancelled" \
    "$(sql $C postgres "SELECT last_error FROM pgops.workers WHERE name LIKE 'pgops apply%' ORDER BY last_error_at DESC NULLS LAST LIMIT 1")" \
    'stopped: the caller was cancelled'
  check_eq "a later apply converges" "$(sql $C postgres "SELECT string_agg(DISTINCT status, ',') FROM pgops.apply_roles()")" applied
  check_eq "slow_role has its declared limit" "$(sql $C postgres "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'slow_role'")" 5

  # --- cancelled while this backend reads and the workers read the other databases -------------
  # The snapshot workers start before the config is read: a session holds pgops.role (the
  # caller's own read waits) and another holds pg_default_acl in a database (its worker waits).
  # A cancel of the caller then must stop the running worker before the error, and leave no file.
  sql $C postgres "CREATE DATABASE slowread" >/dev/null
  local b1 b2
  for how in pg_cancel_backend pg_terminate_backend; do
    sql_file $C slowread "BEGIN; LOCK TABLE pg_catalog.pg_default_acl IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30); ROLLBACK;" >/dev/null 2>&1 &
    b1=$!
    sql_file $C postgres "BEGIN; LOCK TABLE pgops.role IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30); ROLLBACK;" >/dev/null 2>&1 &
    b2=$!
    wait_sql $C postgres "SELECT count(*) = 2 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND state = 'active' AND pid <> pg_backend_pid()" 5
    sql $C postgres "SELECT count(*) FROM pgops.plan_roles()" >"${CL_DIR[$C]}/caller.out" 2>&1 &
    caller=$!
    check "$how: while the caller waits for the config, the worker of another database runs (and waits)" \
      wait_sql $C postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgops database worker' AND datname = 'slowread' AND wait_event_type = 'Lock'" 5
    sql $C postgres "SELECT $how(pid) FROM pg_stat_activity WHERE query LIKE '%pgops.plan_roles()%' AND pid <> pg_backend_pid()" >/dev/null
    wait $caller; out=$(cat "${CL_DIR[$C]}/caller.out")
    check_match "$how: a plan stopped while reading gets its error" "$out" 'canceling statement|terminating connection|server closed the connection'
    # A cancel waits for the workers; a terminated caller has them told to stop as it exits.
    check "$how: … no pgops worker is left running" \
      wait_sql $C postgres "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pgops database worker'" 5
    check_eq "$how: … no task or result file is left" "$(as_pg find "${CL_DIR[$C]}/data/pg_stat_tmp" -name 'pgops.*' | wc -l)" 0
    check_match "$how: … pgops.workers says the snapshot worker was stopped because its caller was cancelled" \
      "$(sql $C postgres "SELECT last_error FROM pgops.workers WHERE name = 'pgops role snapshot' AND database = 'slowread'")" \
      'stopped: the caller was cancelled'
    # The blockers are ended here (a worker left behind would have read by the time they end).
    sql $C postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()" >/dev/null
    wait $b1 $b2 || true
  done
  # A mistake in the config stops the other databases' reads at once: no wait behind the lock.
  sql_file $C slowread "BEGIN; LOCK TABLE pg_catalog.pg_default_acl IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(30); ROLLBACK;" >/dev/null 2>&1 &
  b1=$!
  wait_sql $C postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND state = 'active' AND pid <> pg_backend_pid()" 30 \
    || not_ok "the lock holder started"
  sql $C postgres "ALTER SYSTEM SET pgops.drop_reassign_to = 'no_such_heir'" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  wait_sql $C postgres "SELECT current_setting('pgops.drop_reassign_to') = 'no_such_heir'" 5
  out=$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()" 2>&1)
  check_match "a config mistake is reported while another database's read waits" "$out" 'role "no_such_heir" does not exist'
  # (Whether it came back before that read ended is not checked: a worker still starting when the
  # plan stops it finishes its start first, behind the lock.)
  check "… and that worker is stopped" \
    wait_sql $C postgres "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pgops database worker'" 3
  sql $C postgres "ALTER SYSTEM RESET pgops.drop_reassign_to" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  wait_sql $C postgres "SELECT current_setting('pgops.drop_reassign_to') = ''" 5
  sql $C postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()" >/dev/null
  wait $b1 || true
  sql $C postgres "DROP DATABASE slowread" >/dev/null
  check_eq "a plan after the cancel is empty" "$(sql $C postgres "SELECT count(*) FROM pgops.plan_roles()")" 0

  # --- standby: refuse -----------------------------------------------------------------------
  cluster_standby roles_sb $C || { not_ok "standby starts"; return 1; }
  check_match "apply refuses on a standby" "$(sql roles_sb postgres "SELECT * FROM pgops.apply_roles()" 2>&1)" "cannot run on a standby"
}

