# A Pigsty inventory loaded verbatim: an inventory written here in the shape of Pigsty's conf/*.yml
# (global vars, a cluster group with host vars, a second cluster in the same file, default roles
# redeclared in pg_users, file baselines, HBA rules with and without an order), loaded with one
# call, applied, planned again (nothing left), and compared with what Pigsty's templates build:
# the bootstrap superuser untouched, undeclared attributes left alone, Pigsty's comments and the
# monitor user's search_path, default privileges in template1 and every database with the owner
# as a creator too, CREATE for dbrole_admin on each database and its public schema, revokeconn's
# grant option, default schemas and extensions in template1 and postgres, baselines that psql -f
# would run (ALTER SYSTEM, CREATE INDEX CONCURRENTLY) run once per content, each extension
# failing alone, HBA rendered as Pigsty renders it.

scenario_main() {
  local v=$1 C=pig out
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" "pgops.naptime = '500ms'" || { not_ok "initdb"; return 1; }
  cluster_start $C || { not_ok "server starts"; return 1; }
  sql $C postgres "CREATE EXTENSION pgops" >/dev/null
  # Someone gave the bootstrap superuser's role a setting and the grafana owner exists already.
  sql $C postgres "CREATE ROLE dbuser_grafana LOGIN CREATEDB" >/dev/null
  local files=${CL_DIR[$C]}/files
  as_pg mkdir -p "$files"
  # A baseline as Pigsty users write them: a file psql -f runs (statements that refuse a
  # transaction block included).
  as_pg tee "$files/cmdb.sql" >/dev/null <<'SQL'
-- cmdb-like baseline
ALTER SYSTEM SET pgops.verify_bloat_max_pages = 131073;
CREATE SCHEMA IF NOT EXISTS pigsty;
CREATE TABLE pigsty.node (ip inet PRIMARY KEY, cls text NOT NULL);
INSERT INTO pigsty.node VALUES ('10.10.10.11', 'pg-meta');
CREATE INDEX CONCURRENTLY node_cls ON pigsty.node (cls);
SQL
  as_pg tee "$files/grafana.sql" >/dev/null <<'SQL'
CREATE TABLE public.dashboard (id int PRIMARY KEY, title text);
INSERT INTO public.dashboard VALUES (1, 'home');
SQL
  sql $C postgres "ALTER SYSTEM SET pgops.baseline_directory = '$files'" >/dev/null
  sql $C postgres "SELECT pg_reload_conf()" >/dev/null
  local inv
  inv=$(cat <<'YAML'
all:
  children:
    infra: { hosts: { 10.10.10.10: { infra_seq: 1 } } }
    pg-meta:
      hosts:
        10.10.10.11: { pg_seq: 1, pg_role: primary }
        10.10.10.12: { pg_seq: 2, pg_role: replica, pg_offline_query: true }
      vars:
        pg_cluster: pg-meta
        pg_users:
          - { name: dbuser_meta, password: DBUser.Meta, pgbouncer: true, roles: [ dbrole_admin ], comment: pigsty admin user }
          - { name: dbuser_view, password: DBUser.Viewer, pgbouncer: true, roles: [ dbrole_readonly ] }
          - { name: dbuser_grafana, password: DBUser.Grafana, roles: [ dbrole_admin ] }
          - { name: dbuser_dba, connlimit: 32 }
        pg_databases:
          - { name: meta, baseline: cmdb.sql, comment: pigsty meta database, schemas: [ pigsty ], extensions: [ { name: pg_trgm }, { name: cube, version: '9.9' }, { name: pgstattuple, schema: pigsty } ] }
          - { name: grafana, owner: dbuser_grafana, revokeconn: true, baseline: grafana.sql, register_datasource: false, grafana_folder: ops }
          - { name: postgres, schemas: [ extra ] }
        pg_hba_rules:
          - { user: dbuser_view, db: all, addr: infra, auth: pwd, title: allow grafana dashboard access cmdb from infra nodes }
          - { user: dbuser_view, db: meta, addr: localhost, auth: ssl, title: viewer from localhost with ssl, order: 560 }
          - { user: all, db: all, addr: intranet, auth: md5, title: everyone from the intranet, order: 700 }
    pg-other:
      hosts: { 10.10.10.21: { pg_seq: 1, pg_role: primary } }
      vars: { pg_cluster: pg-other, pg_users: [ { name: dbuser_other } ] }
  vars:
    admin_ip: 10.10.10.10
    pg_admin_password: DBUser.DBA.Secret
    node_firewall_intranet: [ 10.0.0.0/8, 192.168.0.0/16 ]
    pgb_hba_rules: [ { user: all, db: all, addr: intra, auth: pwd } ]
YAML
)
  # --- one call ------------------------------------------------------------------------------
  out=$(sql $C postgres "SELECT kind || '|' || name || '|' || action || '|' || detail FROM pgops.load_pigsty(\$inv\$$inv\$inv\$, 'pg-meta')" 2>&1)
  check_match "load_pigsty loads the cluster's roles (Pigsty's 8 defaults, then pg_users)" "$out" \
    'role\|dbrole_readonly\|loaded.*role\|dbuser_monitor\|loaded.*role\|dbuser_meta\|loaded\|declared: .*password stored as its SCRAM verifier'
  check_match "… default privileges: dbsu, admin and dbrole_admin everywhere, the owner in its database" "$out" \
    'default privileges\|postgres, dbuser_dba, dbrole_admin\|loaded\|51 rule\(s\) .* in every database that allows connections.*default privileges\|dbuser_grafana\|loaded\|17 rule\(s\) .* in database grafana'
  check_match "… databases, template1 and postgres first, baselines from files" "$out" \
    'database\|template1\|loaded.*database\|postgres\|loaded.*database\|meta\|loaded\|.*baseline cmdb.sql'
  check_match "… HBA rules and aliases" "$out" 'hba rule\|everyone from the intranet\|loaded.*hba alias\|cluster\|loaded\|10.10.10.11, 10.10.10.12'
  check_match "… and says what it left out, and why" "$out" \
    'user\|dbuser_monitor\|ignored\|pg_monitor_password is not set in the inventory.*database\|grafana\|ignored\|field grafana_folder: not something pgops manages.*hba rule\|pgb_hba_rules\|ignored'
  check_match "a cluster that is not there is named with the ones that are" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.load_pigsty(\$inv\$$inv\$inv\$, 'pg-nope')" 2>&1)" \
    'cluster "pg-nope" is not in the inventory .*its clusters: pg-meta, pg-other'
  check_match "a file baseline outside pgops.baseline_directory is refused" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.load_pigsty(\$inv\$all: { children: { x: { hosts: { 10.0.0.1: { pg_role: primary } }, vars: { pg_cluster: x, pg_databases: [ { name: x, baseline: ../../etc/passwd.sql } ] } } } }\$inv\$, 'x')" 2>&1)" \
    'database "x", field baseline: baseline "../../etc/passwd.sql": a file name inside pgops.baseline_directory'
  check_eq "… and it changed nothing" "$(sql $C postgres "SELECT count(*) FROM pgops.database_spec WHERE name = 'x'")" 0

  # --- applied ---------------------------------------------------------------------------------
  out=$(sql $C postgres "SELECT string_agg(DISTINCT status, ',') FROM pgops.apply_roles()" 2>&1)
  check_eq "apply_roles() applies" "$out" applied
  out=$(sql $C postgres "SELECT database || '|' || status || '|' || replace(statement, E'\n', ' ') FROM pgops.apply_databases() ORDER BY seq" 2>/dev/null)
  # The owners' default privileges in the databases just created (Pigsty's pg-db.sql runs after the users).
  sql $C postgres "SELECT count(*) FROM pgops.apply_roles()" >/dev/null
  check_match "apply_databases(): an extension the server lacks is a note naming it" "$out" \
    'template1\|not run: see the statement\|-- extension "pg_repack" is not available on this server'
  check_match "… an extension that fails, fails alone with its reason" "$out" \
    'meta\|failed: .*"cube".*9\.9.*meta\|applied\|CREATE EXTENSION IF NOT EXISTS "pgstattuple" SCHEMA "pigsty"'
  check_eq "… and everything else converges" "$(printf '%s\n' "$out" | grep -v '|applied|' | grep -v '|not run: see the statement|' | grep -vc '"cube"')" 0
  # --- compared with what Pigsty's templates build -----------------------------------------------
  check_eq "the bootstrap superuser keeps every attribute (Pigsty declares only superuser)" \
    "$(sql $C postgres "SELECT rolsuper::int::text || rolcreatedb::int || rolcreaterole::int || rolreplication::int || rolbypassrls::int FROM pg_roles WHERE rolname = 'postgres'")" 11111
  check_eq "an attribute nobody declared is left as it is (dbuser_grafana keeps CREATEDB)" \
    "$(sql $C postgres "SELECT rolcreatedb FROM pg_roles WHERE rolname = 'dbuser_grafana'")" t
  check_eq "comments as Pigsty writes them" \
    "$(sql $C postgres "SELECT string_agg(rolname || '=' || shobj_description(oid, 'pg_authid'), ';' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('dbuser_view', 'dbuser_meta', 'dbrole_admin')")" \
    "dbrole_admin=role for object creation;dbuser_meta=pigsty admin user;dbuser_view=business user dbuser_view"
  check_eq "the monitor user's settings (search_path from pg-init-template.sql)" \
    "$(sql $C postgres "SELECT array_to_string(setconfig, ';') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'dbuser_monitor' AND s.setdatabase = 0")" \
    "log_min_duration_statement=1000;search_path=monitor, public"
  check_eq "dbuser_dba: redeclared in pg_users (connlimit 32), its password from the inventory" \
    "$(sql $C postgres "SELECT rolconnlimit || ',' || (rolpassword LIKE 'SCRAM-SHA-256\$%') FROM pg_authid WHERE rolname = 'dbuser_dba'")" "32,true"
  for db in template1 postgres meta grafana; do
    check_eq "default privileges in $db (pgops not installed there but in postgres): dbrole_readonly reads what postgres creates" \
      "$(sql $C "$db" "SELECT count(*) FROM pg_default_acl d, aclexplode(d.defaclacl) a WHERE d.defaclrole = 'postgres'::regrole AND d.defaclobjtype = 'r' AND a.grantee = 'dbrole_readonly'::regrole AND a.privilege_type = 'SELECT'")" 1
  done
  check_eq "… and what the owner creates in its database (pg-db.sql)" \
    "$(sql $C grafana "SELECT count(*) FROM pg_default_acl d WHERE d.defaclrole = 'dbuser_grafana'::regrole")" 4
  check_eq "dbrole_admin may CREATE on each database and its public schema; PUBLIC may not" \
    "$(sql $C meta "SELECT has_database_privilege('dbrole_admin', 'meta', 'CREATE') || ',' || has_schema_privilege('dbrole_admin', 'public', 'CREATE') || ',' || (SELECT count(*) FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE')")" "true,true,0"
  check_eq "revokeconn: PUBLIC may not connect; the admin user may, with the grant option" \
    "$(sql $C postgres "SELECT has_database_privilege('public', 'grafana', 'CONNECT') || ',' || (SELECT bool_or(a.is_grantable) FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = 'grafana' AND a.grantee = 'dbuser_dba'::regrole AND a.privilege_type = 'CONNECT')")" "false,true"
  check_eq "comments on databases" \
    "$(sql $C postgres "SELECT string_agg(datname || '=' || shobj_description(oid, 'pg_database'), ';' ORDER BY datname) FROM pg_database WHERE datname IN ('meta', 'grafana')")" \
    "grafana=business database grafana;meta=pigsty meta database"
  check_eq "default schemas and extensions in template1 and postgres; postgres' own schema too" \
    "$(sql $C template1 "SELECT count(*) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE n.nspname = 'monitor'")|$(sql $C postgres "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname IN ('monitor', 'extra')")" \
    "7|extra,monitor"
  check_eq "meta's baseline ran as psql -f would (ALTER SYSTEM, CREATE INDEX CONCURRENTLY)" \
    "$(sql $C meta "SELECT count(*) FROM pigsty.node")|$(sql $C meta "SELECT indisvalid FROM pg_index WHERE indexrelid = 'pigsty.node_cls'::regclass")|$(sql $C postgres "SELECT setting FROM pg_file_settings WHERE name = 'pgops.verify_bloat_max_pages'")" \
    "1|t|131073"
  check_eq "grafana's baseline ran, and its objects are the superuser's (closed window)" \
    "$(sql $C grafana "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'dashboard'")" postgres
  check_eq "planned again: nothing to do but the notes" \
    "$(sql $C postgres "SELECT (SELECT count(*) FROM pgops.plan_roles()) || ',' || (SELECT count(*) FROM pgops.plan_databases() WHERE risk <> 'note')")" "0,0"
  # --- HBA rendered as Pigsty renders it -----------------------------------------------------------
  out=$(sql $C postgres "SELECT pgops.render_hba('primary')")
  for line in "local all postgres ident" "host replication replicator 127.0.0.1/32 scram-sha-256" \
              "host replication replicator 10.0.0.0/8 scram-sha-256" "host all dbuser_monitor 10.10.10.10/32 scram-sha-256" \
              "hostssl all dbuser_dba 0.0.0.0/0 scram-sha-256" "host meta dbuser_view 127.0.0.1/32 scram-sha-256" \
              "host all all 192.168.0.0/16 md5" "host all dbuser_view 10.10.10.10/32 scram-sha-256"; do
    check "rendered: $line" grep -qxF "$line" <<<"$out"
  done
  check "… localhost with auth ssl is plain host, as Pigsty renders it" bash -c "! grep -q '^hostssl meta dbuser_view' <<<'$out'"
  check_match "… rules in Pigsty's order: the ordered ones, then those without an order" \
    "$(grep -n -e 'everyone from the intranet' -e 'allow grafana dashboard access' <<<"$out" | cut -d: -f1 | tr '\n' ' ')" '^[0-9]+ [0-9]+ $'
  # --- loaded again: nothing changes; a changed baseline runs once more -----------------------------
  local rules; rules=$(sql $C postgres "SELECT count(*) FROM pgops.hba_rule")
  sql $C postgres "SELECT count(*) FROM pgops.load_pigsty(\$inv\$$inv\$inv\$, 'pg-meta')" >/dev/null
  out="$(sql $C postgres "SELECT count(*) FROM pgops.hba_rule")|$(sql $C postgres "SELECT (SELECT count(*) FROM pgops.plan_roles()) + (SELECT count(*) FROM pgops.plan_databases() WHERE risk <> 'note')")"
  check_eq "loaded twice: the same rules, nothing to plan" "$out" "$rules|0"
  [ "$out" = "$rules|0" ] || sql $C postgres "SELECT database, statement, reason FROM pgops.plan_roles() UNION ALL SELECT database, statement, reason FROM pgops.plan_databases() WHERE risk <> 'note'"
  as_pg tee "$files/grafana.sql" >/dev/null <<'SQL'
CREATE TABLE IF NOT EXISTS public.dashboard (id int PRIMARY KEY, title text);
INSERT INTO public.dashboard VALUES (2, 'second') ON CONFLICT DO NOTHING;
SQL
  sql $C postgres "SELECT count(*) FROM pgops.load_pigsty(\$inv\$$inv\$inv\$, 'pg-meta')" >/dev/null
  check_match "a baseline whose content changed is a plan row on the existing database, run as its owner" \
    "$(sql $C postgres "SELECT runs || '|' || reason FROM pgops.plan_databases() WHERE database = 'grafana'")" \
    '^in grafana as owner dbuser_grafana\|baseline grafana.sql \(sha256 [0-9a-f]{12}\): declared, and this content has not run'
  check_eq "… its risk is script: a script on a database that exists waits for a reviewed plan" \
    "$(sql $C postgres "SELECT risk FROM pgops.plan_databases() WHERE database = 'grafana'")" script
  check_match "… without the plan_hash it is refused and nothing runs" \
    "$(sql $C postgres "SELECT count(*) FROM pgops.apply_databases()" 2>&1)|$(sql $C grafana "SELECT count(*) FROM public.dashboard")" \
    'plan_hash.*\|1$'
  check_eq "… with it, it runs once more, as the owner" \
    "$(sql $C postgres "SELECT string_agg(status, ',') FROM pgops.apply_databases(plan_hash => (SELECT DISTINCT plan_hash FROM pgops.plan_databases())) WHERE database = 'grafana'" 2>/dev/null)|$(sql $C grafana "SELECT count(*) FROM public.dashboard")|$(sql $C postgres "SELECT count(*) FROM pgops.baseline_run WHERE database = 'grafana'")" \
    "applied|2|2"
  check_eq "… once: planned again, nothing" "$(sql $C postgres "SELECT count(*) FROM pgops.plan_databases() WHERE risk <> 'note'")" 0
  # psql -f stops at the first error and says where; a new database stays closed then.
  printf 'CREATE TABLE a (i int);\n\nSELECT 1/0;\nCREATE TABLE b (i int);\n' | as_pg tee "$files/broken.sql" >/dev/null
  sql $C postgres "SELECT pgops.load_databases('[{\"name\": \"broken\", \"baseline\": \"broken.sql\"}]')" >/dev/null
  check_match "a baseline stops at its first error, naming the statement's line" \
    "$(sql $C postgres "SELECT string_agg(status, ',' ORDER BY seq) FROM pgops.apply_databases() WHERE database = 'broken'" 2>/dev/null)" \
    '^applied,failed: line 3: division by zero,.*skipped'
  check_eq "… what ran before it stays (psql -f), the rest did not run, the database stays closed" \
    "$(sql $C postgres "SELECT datallowconn FROM pg_database WHERE datname = 'broken'")" f
  # A transaction's own COMMIT or ROLLBACK would end what pgops keeps atomic: refused, by line.
  printf 'CREATE TABLE c (i int);\nCOMMIT;\n' | as_pg tee "$files/txn.sql" >/dev/null
  sql $C postgres "SELECT pgops.load_databases('[{\"name\": \"txn\", \"baseline\": \"txn.sql\"}]')" >/dev/null
  check_match "a baseline's COMMIT is refused, naming its line, before any of it runs" \
    "$(sql $C postgres "SELECT string_agg(status, ',' ORDER BY seq) FROM pgops.apply_databases() WHERE database = 'txn'" 2>/dev/null)" \
    'failed: nothing of the baseline ran: line 2: transaction control .*COMMIT'
  # A file others may write is not run as a superuser.
  as_pg chmod 0666 "$files/grafana.sql"
  check_match "a baseline file others may write is refused, naming it and what to do; nothing is loaded" \
    "$(sql $C postgres "SELECT pgops.load_databases('[{\"name\": \"loose\", \"baseline\": \"grafana.sql\"}]')" 2>&1)|$(sql $C postgres "SELECT count(*) FROM pgops.database_spec WHERE name = 'loose'")" \
    'database "loose", field baseline: .*grafana.sql may be written by its group or by anyone: fix its mode.*\|0$'
  as_pg chmod 0644 "$files/grafana.sql"
  # Reloaded with a narrower inventory: the cluster's rules are replaced, a DBA's own rule stays.
  sql $C postgres "INSERT INTO pgops.hba_rule (title, \"user\", db, addr, auth) VALUES ('the DBA''s own', 'all', 'all', '10.9.9.9/32', 'pwd')" >/dev/null
  local narrow; narrow=$(grep -v 'allow grafana dashboard access' <<<"$inv")
  sql $C postgres "SELECT count(*) FROM pgops.load_pigsty(\$inv\$$narrow\$inv\$, 'pg-meta')" >/dev/null
  check_eq "loaded again without a rule: that rule is gone, the DBA's own rule stays" \
    "$(sql $C postgres "SELECT count(*) FILTER (WHERE title = 'allow grafana dashboard access cmdb from infra nodes') || ',' || count(*) FILTER (WHERE title = 'the DBA''s own' AND source IS NULL) FROM pgops.hba_rule")" "0,1"
  check_eq "dbuser_view can log in (Pigsty's CREATE USER) though its entry does not say login" \
    "$(sql $C postgres "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'dbuser_view'")" t
}
