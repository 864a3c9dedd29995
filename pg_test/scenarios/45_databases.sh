# Declarative databases end to end: Pigsty's pg_databases loaded, planned and applied; every field;
# a clone of a template declared earlier; changes both ways (owner, limits, parameters, allowconn,
# revokeconn, grants, schemas, extensions); recreate with its baseline; retiring with and without
# FORCE; refusals; hostile names; pgbouncer lines; export; drift; pg_dump of the config; a standby.

scenario_main() {
  local v=$1 C=dbs
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "pgops.naptime = '500ms'" || { not_ok "initdb"; return 1; }
  cluster_start $C || { not_ok "server starts"; return 1; }
  sql $C postgres "CREATE EXTENSION pgops;
                   CREATE ROLE dbuser_meta LOGIN; CREATE ROLE replicator LOGIN REPLICATION; CREATE ROLE dbuser_monitor LOGIN;
                   CREATE ROLE app LOGIN; CREATE ROLE viewer LOGIN" >/dev/null

  # --- load Pigsty's pg_databases ----------------------------------------------------------------
  local dbs='{"pg_databases": [
    {"name": "tpl", "is_template": true, "baseline": "CREATE TABLE from_template (id int); INSERT INTO from_template VALUES (1);",
     "comment": "a template"},
    {"name": "meta", "owner": "dbuser_meta", "template": "template0", "strategy": "FILE_COPY", "encoding": "UTF8", "locale": "C",
     "lc_collate": "C", "lc_ctype": "C", "tablespace": "pg_default", "allowconn": true, "revokeconn": true, "connlimit": 20,
     "comment": "pigsty meta database", "schemas": ["pigsty", {"name": "reports", "owner": "app"}],
     "extensions": [{"name": "pgstattuple", "schema": "pigsty"}], "parameters": {"work_mem": "16MB", "jit": false},
     "baseline": "CREATE TABLE pigsty.baseline_ran (at timestamptz DEFAULT now()); INSERT INTO pigsty.baseline_ran DEFAULT VALUES;",
     "pgbouncer": true, "pool_auth_user": "dbuser_meta", "pool_mode": "transaction", "pool_size": 64, "pool_reserve": 32,
     "pool_size_min": 0, "pool_connlimit": 100, "register_datasource": true,
     "grants": [{"grantee": "viewer", "privileges": ["CONNECT"]}]},
    {"name": "clone", "template": "tpl", "owner": "app", "pgbouncer": false},
    {"name": "hostile\"; DROP DATABASE meta; --", "owner": "app", "schemas": ["we\"ird; DROP SCHEMA public"],
     "comment": "it'"'"'s; DROP DATABASE meta"}
  ]}'
  check_eq "load_databases takes Pigsty's pg_databases (4 entries)" \
    "$(sql $C postgres "SELECT pgops.load_databases('$(printf '%s' "$dbs" | sed "s/'/''/g")'::jsonb)")" 4
  check_match "a mistake names the database and the field, and loads nothing" \
    "$(sql $C postgres "SELECT pgops.load_databases('[{\"name\": \"ok1\"}, {\"name\": \"bad\", \"strategy\": \"COPY\"}]')" 2>&1)" \
    'database "bad", field strategy: "COPY" is not WAL_LOG or FILE_COPY'
  check_eq "… nothing of that list was loaded" "$(sql $C postgres "SELECT count(*) FROM pgops.database_spec WHERE name = 'ok1'")" 0
  check_match "the trigger checks rows written by hand" \
    "$(sql $C postgres "INSERT INTO pgops.database_spec (name, connlimit) VALUES ('x', -7)" 2>&1)" 'database "x", field connlimit: -7'
  check_match "postgres, template0 and template1 are never retired" \
    "$(sql $C postgres "INSERT INTO pgops.database_spec (name, state) VALUES ('template1', 'absent')" 2>&1)" "never dropped or recreated"

  # --- plan and apply ------------------------------------------------------------------------------
  local plan
  plan=$(sql $C postgres "SELECT database || '|' || runs || '|' || statement FROM pgops.plan_databases() ORDER BY seq")
  # STRATEGY came with PostgreSQL 15: before it the plan says so and creates the database without it.
  local strategy="STRATEGY 'FILE_COPY' "
  if [ "$v" -lt 15 ]; then
    strategy=""
    check_match "PG $v: the plan notes that STRATEGY needs PostgreSQL 15" "$plan" \
      "meta\|not run\|-- strategy needs PostgreSQL 15: created without it"
  fi
  check_match "the plan creates the template before its clone, at top level, with every field, closed" "$plan" \
    "tpl\|top level\|CREATE DATABASE \"tpl\" ALLOW_CONNECTIONS false.*meta\|top level\|CREATE DATABASE \"meta\" TEMPLATE \"template0\" ${strategy}ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TABLESPACE \"pg_default\" ALLOW_CONNECTIONS false CONNECTION LIMIT 20.*clone\|top level\|CREATE DATABASE \"clone\" TEMPLATE \"tpl\" ALLOW_CONNECTIONS false"
  check_match "schemas, extensions and the baseline run inside the new database, closed, as the superuser; then it is handed over and opened" "$plan" \
    "meta\|in meta, closed, as superuser\|CREATE SCHEMA \"pigsty\".*meta\|in meta, closed, as superuser\|CREATE EXTENSION IF NOT EXISTS \"pgstattuple\" SCHEMA \"pigsty\" CASCADE.*meta\|in meta, closed, as superuser\|CREATE TABLE pigsty.baseline_ran.*meta\|transaction\|ALTER DATABASE \"meta\" OWNER TO \"dbuser_meta\".*meta\|transaction\|ALTER DATABASE \"meta\" WITH ALLOW_CONNECTIONS true"
  local out
  out=$(sql $C postgres "SELECT status, count(*) FROM pgops.apply_databases() GROUP BY 1 ORDER BY 1")
  check_eq "apply runs every statement" "$(printf '%s' "$out" | grep -v '^applied' | grep -v '^not run: see' || true)" ""
  check_eq "the databases exist with their fields" \
    "$(sql $C postgres "SELECT string_agg(datname || ':' || pg_get_userbyid(datdba) || ':' || datistemplate || ':' || datconnlimit, ',' ORDER BY datname)
                        FROM pg_database WHERE datname IN ('tpl', 'meta', 'clone')")" \
    "clone:app:false:-1,meta:dbuser_meta:false:20,tpl:postgres:true:-1"
  check_eq "meta: comment, collation, settings" \
    "$(sql $C postgres "SELECT shobj_description(d.oid, 'pg_database') || '|' || d.datcollate || '|' ||
                        (SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting WHERE setdatabase = d.oid AND setrole = 0)
                        FROM pg_database d WHERE datname = 'meta'")" "pigsty meta database|C|jit=off,work_mem=16MB"
  check_eq "revokeconn: PUBLIC may not connect; the owner (with grant option), replicator, dbuser_monitor and the declared grantee may" \
    "$(sql $C postgres "SELECT has_database_privilege('public', 'meta', 'CONNECT') || ',' || has_database_privilege('dbuser_meta', 'meta', 'CONNECT WITH GRANT OPTION')
                        || ',' || has_database_privilege('replicator', 'meta', 'CONNECT') || ',' || has_database_privilege('viewer', 'meta', 'CONNECT')
                        || ',' || has_database_privilege('app', 'meta', 'CONNECT')")" "false,true,true,true,false"
  check_eq "meta: schemas (with their owner), the extension and the baseline's table" \
    "$(sql $C meta "SELECT (SELECT string_agg(nspname || ':' || pg_get_userbyid(nspowner), ',' ORDER BY nspname) FROM pg_namespace WHERE nspname IN ('pigsty', 'reports'))
                    || '|' || (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pgstattuple') || '|' || (SELECT count(*) FROM pigsty.baseline_ran)")" \
    "pigsty:postgres,reports:app|pigsty|1"
  check_eq "the clone has what the template's baseline made" "$(sql $C clone "SELECT count(*) FROM from_template")" 1
  check_eq "hostile names are quoted: created as named, its schema too, nothing else dropped" \
    "$(sql $C postgres "SELECT count(*) FROM pg_database WHERE datname IN ('meta', 'hostile\"; DROP DATABASE meta; --')") $(sql $C "hostile\"; DROP DATABASE meta; --" "SELECT count(*) FROM pg_namespace WHERE nspname IN ('public', 'we\"ird; DROP SCHEMA public')")" "2 2"
  out=$(sql $C postgres "SELECT (SELECT count(*) FROM pgops.plan_databases()) || ',' || (SELECT count(*) FROM pgops.database_drift) || ',' || (SELECT databases_drifting FROM pgops.database_drift_summary)")
  check_eq "converged: the plan is empty, and so is the drift" "$out" "0,0,0"
  [ "$out" = "0,0,0" ] || sql $C postgres "SELECT database, runs, statement, reason FROM pgops.plan_databases()"

  # --- changes, both ways ------------------------------------------------------------------------------
  sql $C postgres "ALTER DATABASE meta OWNER TO app; ALTER DATABASE meta CONNECTION LIMIT 3; ALTER DATABASE meta SET work_mem = '1MB';
                   GRANT CONNECT ON DATABASE meta TO PUBLIC; GRANT CREATE ON DATABASE meta TO viewer" >/dev/null
  check_eq "changes by hand show as drift, field by field" \
    "$(sql $C postgres "SELECT string_agg(field, ',' ORDER BY field) FROM pgops.database_drift WHERE database = 'meta'")" \
    "connlimit,grants.dbuser_meta.CONNECT,grants.viewer.CREATE,owner,parameters.work_mem,revokeconn"
  check_eq "the drift summary counts the database" "$(sql $C postgres "SELECT declared || ',' || databases_drifting FROM pgops.database_drift_summary")" "4,1"
  sql $C postgres "SELECT count(*) FROM pgops.apply_databases()" >/dev/null
  check_eq "apply brings them back" \
    "$(sql $C postgres "SELECT pg_get_userbyid(datdba) || ',' || datconnlimit || ',' || has_database_privilege('public', 'meta', 'CONNECT') || ',' || has_database_privilege('viewer', 'meta', 'CREATE')
                        || ',' || (SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting WHERE setdatabase = d.oid AND setrole = 0)
                        FROM pg_database d WHERE datname = 'meta'")" "dbuser_meta,20,false,false,jit=off,work_mem=16MB"
  sql $C postgres "UPDATE pgops.database_spec SET revokeconn = false, connlimit = 5, allowconn = true, parameters = '{\"work_mem\": \"DEFAULT\", \"jit\": false, \"search_path\": \"pigsty, public\", \"timezone\": \"UTC\"}',
                     schemas = '[\"pigsty\", {\"name\": \"reports\", \"state\": \"absent\"}, \"extra\"]',
                     extensions = '[{\"name\": \"pgstattuple\", \"state\": \"absent\"}]' WHERE name = 'meta'" >/dev/null
  out=$(sql $C postgres "SELECT statement || '|' || risk FROM pgops.plan_databases() ORDER BY seq")
  check_match "the plan resets, restores PUBLIC's CONNECT, drops what is declared absent (risk drop)" "$out" \
    "ALTER DATABASE \"meta\" RESET \"work_mem\"\|safe.*GRANT CONNECT ON DATABASE \"meta\" TO PUBLIC\|safe.*DROP SCHEMA IF EXISTS \"reports\" CASCADE\|drop.*CREATE SCHEMA \"extra\"\|safe.*DROP EXTENSION IF EXISTS \"pgstattuple\" CASCADE\|drop"
  check_match "a plan that drops is refused without the hash of a reviewed plan" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.apply_databases()" 2>&1)" "the plan drops something .*refused without the plan_hash"
  local hash
  hash=$(sql $C postgres "SELECT DISTINCT plan_hash FROM pgops.plan_databases()")
  check_match "a stale hash is refused" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.apply_databases(plan_hash => 'deadbeef')" 2>&1)" "changed since the plan was made"
  check_eq "with the hash it applies" \
    "$(sql $C postgres "SELECT string_agg(DISTINCT status, ',') FROM pgops.apply_databases(plan_hash => '$hash')")" "applied"
  check_eq "revokeconn false, connlimit, parameters, schemas and extensions converged" \
    "$(sql $C meta "SELECT has_database_privilege('public', 'meta', 'CONNECT') || ',' || (SELECT datconnlimit FROM pg_database WHERE datname = 'meta')
                    || ',' || (SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'meta' AND setrole = 0)
                    || ',' || (SELECT string_agg(nspname, ' ' ORDER BY nspname) FROM pg_namespace WHERE nspname IN ('pigsty', 'reports', 'extra'))
                    || ',' || (SELECT count(*) FROM pg_extension WHERE extname = 'pgstattuple')")" "true,5,jit=off,search_path=pigsty, public,TimeZone=UTC,extra pigsty,0"
  check_eq "… converged: a list setting and a setting PostgreSQL spells its own way plan nothing more" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.plan_databases()")" 0
  sql $C postgres "UPDATE pgops.database_spec SET allowconn = false WHERE name = 'clone'" >/dev/null
  sql $C postgres "SELECT count(*) FROM pgops.apply_databases()" >/dev/null
  check_eq "allowconn false, then back to true" \
    "$(sql $C postgres "SELECT datallowconn FROM pg_database WHERE datname = 'clone'")$(sql $C postgres "UPDATE pgops.database_spec SET allowconn = true WHERE name = 'clone'" >/dev/null; sql $C postgres "SELECT count(*) FROM pgops.apply_databases()" >/dev/null; sql $C postgres "SELECT datallowconn FROM pg_database WHERE datname = 'clone'")" "ft"

  # --- creation-only fields, recreate, retire -----------------------------------------------------------
  sql $C postgres "UPDATE pgops.database_spec SET encoding = 'SQL_ASCII' WHERE name = 'clone'" >/dev/null
  check_match "a creation-only difference is reported as needing recreate, not ignored" \
    "$(sql $C postgres "SELECT runs || '|' || statement || '|' || risk FROM pgops.plan_databases()")" \
    "not run\|-- encoding is UTF8, declared SQL_ASCII: set state = 'recreate' to rebuild the database with it\|note"
  check_eq "… and counted in the summary" "$(sql $C postgres "SELECT needs_recreate FROM pgops.database_drift_summary")" 1
  sql $C postgres "UPDATE pgops.database_spec SET encoding = NULL, state = 'recreate', force = true, baseline = 'CREATE TABLE recreated (id int)' WHERE name = 'clone'" >/dev/null
  sql $C clone "INSERT INTO from_template VALUES (2)" >/dev/null
  hash=$(sql $C postgres "SELECT DISTINCT plan_hash FROM pgops.plan_databases()")
  out=$(sql $C postgres "SELECT statement || '|' || status FROM pgops.apply_databases(plan_hash => '$hash') ORDER BY seq" 2>&1)
  check_match "recreate drops and creates again, and runs the baseline again" "$out" \
    "DROP DATABASE \"clone\" WITH \(FORCE\)\|applied.*CREATE DATABASE \"clone\" TEMPLATE \"tpl\" ALLOW_CONNECTIONS false\|applied.*CREATE TABLE recreated \(id int\)\|applied.*ALTER DATABASE \"clone\" OWNER TO \"app\"\|applied"
  check_eq "the clone is fresh from its template, with the new baseline; its row says present again" \
    "$(sql $C clone "SELECT count(*) FROM from_template")|$(sql $C clone "SELECT to_regclass('recreated') IS NOT NULL")|$(sql $C postgres "SELECT state FROM pgops.database_spec WHERE name = 'clone'")" "1|t|present"
  # Retire with a session connected, without FORCE: refused by PostgreSQL, said in the status.
  sql $C postgres "UPDATE pgops.database_spec SET state = 'absent', force = false WHERE name = 'clone'" >/dev/null
  sql $C clone "SELECT pg_sleep(8)" >/dev/null 2>&1 &
  local bg=$!
  wait_sql $C postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 'clone' AND query LIKE '%pg_sleep%'" 5
  hash=$(sql $C postgres "SELECT DISTINCT plan_hash FROM pgops.plan_databases()")
  check_match "the plan warns that a session is connected" \
    "$(sql $C postgres "SELECT reason FROM pgops.plan_databases() WHERE statement LIKE 'DROP%'")" "1 session\(s\) and force is false"
  check_match "without force, a database with sessions is not dropped; the status says why" \
    "$(sql $C postgres "SELECT status FROM pgops.apply_databases(plan_hash => '$hash') WHERE statement LIKE 'DROP%'" 2>&1)" \
    "failed: .*being accessed by other users"
  check_eq "… and it is still there" "$(sql $C postgres "SELECT count(*) FROM pg_database WHERE datname = 'clone'")" 1
  sql $C postgres "UPDATE pgops.database_spec SET force = true WHERE name = 'clone'" >/dev/null
  hash=$(sql $C postgres "SELECT DISTINCT plan_hash FROM pgops.plan_databases()")
  check_eq "with force it is dropped, its session terminated" \
    "$(sql $C postgres "SELECT status FROM pgops.apply_databases(plan_hash => '$hash') WHERE statement LIKE 'DROP%'")|$(sql $C postgres "SELECT count(*) FROM pg_database WHERE datname = 'clone'")" "applied|0"
  wait $bg 2>/dev/null
  sql $C postgres "UPDATE pgops.database_spec SET state = 'absent' WHERE name = 'tpl'" >/dev/null
  hash=$(sql $C postgres "SELECT DISTINCT plan_hash FROM pgops.plan_databases()")
  check_eq "a template is cleared (IS_TEMPLATE false) before it is dropped" \
    "$(sql $C postgres "SELECT string_agg(statement || '=' || status, ';' ORDER BY seq) FROM pgops.apply_databases(plan_hash => '$hash')")" \
    "ALTER DATABASE \"tpl\" WITH IS_TEMPLATE false=applied;DROP DATABASE \"tpl\"=applied"

  # --- refusals ------------------------------------------------------------------------------------------
  sql $C postgres "CREATE DATABASE keepme" >/dev/null
  sql $C postgres "ALTER SYSTEM SET pgops.protected_databases = 'keepme'" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  sql $C postgres "INSERT INTO pgops.database_spec (name, state) VALUES ('keepme', 'absent')" >/dev/null
  check_match "pgops.protected_databases: never dropped, the plan says so and plans nothing" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.plan_databases()" 2>&1)" 'database "keepme" is declared absent, but it is protected'
  sql $C postgres "DELETE FROM pgops.database_spec WHERE name = 'keepme'" >/dev/null
  check_match "a template that does not exist is named" \
    "$(sql $C postgres "INSERT INTO pgops.database_spec (name, template) VALUES ('orphan', 'nope'); SELECT count(*) FROM pgops.plan_databases()" 2>&1)" \
    'template "nope" does not exist and is not declared'
  sql $C postgres "DELETE FROM pgops.database_spec WHERE name = 'orphan'" >/dev/null
  check_match "an extension that is not available is a note naming it, quoted; the rest converges" \
    "$(sql $C postgres "INSERT INTO pgops.database_spec (name, extensions) VALUES ('extdb', '[\"no\\\"such; ext\"]')" >/dev/null
       sql $C postgres "SELECT string_agg(status || ':' || statement, ',' ORDER BY seq) FROM pgops.apply_databases()" 2>&1)" \
    'applied:CREATE DATABASE "extdb".*not run: see the statement:-- extension "no""such; ext" is not available on this server: install its package, then apply again,applied:ALTER DATABASE "extdb" WITH ALLOW_CONNECTIONS true'
  check_eq "… and the database is open" "$(sql $C postgres "SELECT datallowconn FROM pg_database WHERE datname = 'extdb'")" t
  sql $C postgres "CREATE ROLE grafana LOGIN IN ROLE pg_monitor" >/dev/null
  check_eq "pg_monitor reads the drift summary at catalog level: no worker started for it" \
    "$(sql $C postgres "SET ROLE grafana; SELECT inside_checked FROM pgops.database_drift_summary")|$(sql $C postgres "SELECT inside_checked FROM pgops.database_drift_summary")" "f|t"
  check_match "a non-superuser cannot plan or apply" \
    "$(sql $C postgres "SET ROLE app; SELECT * FROM pgops.plan_databases()" 2>&1)" "permission denied|needs a superuser"

  # --- integration: pgbouncer, export, pg_dump ---------------------------------------------------------
  check_eq "pgbouncer [databases] line with the pool settings" \
    "$(sql $C postgres "SELECT databases_line FROM pgops.pgbouncer_databases WHERE name = 'meta'" | sed 's/host=[^ ]* port=[0-9]*/host=H port=P/')" \
    "meta = host=H port=P dbname=meta auth_user=dbuser_meta pool_mode=transaction pool_size=64 min_pool_size=0 reserve_pool=32 max_db_connections=100"
  check_eq "a name pgbouncer's configuration cannot take gets no line, and says why" \
    "$(sql $C postgres "SELECT coalesce(databases_line, 'NULL') || '|' || note FROM pgops.pgbouncer_databases WHERE name LIKE 'hostile%'")" \
    "NULL|no line: pgbouncer takes database and user names of letters, digits, _ . - only in its configuration"
  check_eq "databases declared with pgbouncer false or absent have no line" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.pgbouncer_databases WHERE name IN ('clone', 'tpl')")" 0
  check_eq "export_databases gives the live databases in Pigsty's shape, loadable as they are" \
    "$(sql $C postgres "SELECT e->>'owner' || ',' || (e->>'revokeconn') || ',' || (e->>'connlimit') || ',' || (e->'schemas' @> '[{\"name\": \"extra\"}]')
                        FROM jsonb_array_elements(pgops.export_databases()) e WHERE e->>'name' = 'meta'")" "dbuser_meta,false,5,true"
  check_match "pg_dump keeps the config" "$(as_pg "$(pg_bindir "$v")/pg_dump" -h "${CL_DIR[$C]}" -p "${CL_PORT[$C]}" -U postgres -d postgres --data-only -t pgops.database_spec 2>&1)" "meta.*dbuser_meta"

  # --- standby --------------------------------------------------------------------------------------------
  if cluster_standby dbs_sb $C; then
    check_match "on a standby: apply is refused cleanly" \
      "$(sql dbs_sb postgres "SELECT * FROM pgops.apply_databases()" 2>&1)" "cannot run on a standby: this server is in recovery"
    check_eq "… and the plan can still be read there, and a dry run made" \
      "$(sql dbs_sb postgres "SELECT (SELECT count(*) >= 0 FROM pgops.plan_databases()) AND (SELECT count(*) >= 0 FROM pgops.apply_databases(dry_run => true))" 2>&1)" t
    cluster_stop dbs_sb fast
  else
    not_ok "standby starts"
  fi
}
