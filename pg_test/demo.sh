#!/usr/bin/env bash
# The pgops demo: builds and installs pgops, starts a throwaway PostgreSQL cluster (own data dir,
# free port, pgops preloaded) and a loopback etcd, shows each capability with real output, then
# shuts everything down.
#
#   pg_test/demo.sh                 PG 15
#   PGOPS_DEMO_PG=18 pg_test/demo.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
v=${PGOPS_DEMO_PG:-15}
trap cleanup_all EXIT

demo_t0=$(date +%s)
# Only the major the demo runs on, and no Patroni (setup.sh fetches the rest for the tests).
PGOPS_PG_VERSIONS=$v PGOPS_SETUP_PATRONI=0 bash "$here/setup.sh"
say "Building and installing pgops for PostgreSQL $v"
install_pgops "$v"

say "Starting a loopback etcd"
etcd_start demo
ETCDCTL_API=3 etcdctl --endpoints "${ETCD_URL[demo]}" endpoint health

say "Starting a throwaway cluster with shared_preload_libraries = 'pgops'"
cluster_init demo "$v" "shared_preload_libraries = 'pgops'" "cluster_name = 'pg-demo'" "pgops.instance_name = 'pg-demo-1'" \
  "pgops.naptime = '500ms'" "pgops.sample_interval = '1s'"
ssl_build "$v" && cluster_ssl demo   # Pigsty turns SSL on; its admin rules need it
cluster_start demo
echo "data directory ${CL_DIR[demo]}/data, port ${CL_PORT[demo]}"

q() { echo; echo "postgres=# $*"; sql_pretty demo postgres "$*"; }

say "1. CREATE EXTENSION pgops — the worker backbone"
q "CREATE EXTENSION pgops"
q "SELECT * FROM pgops.instance()"
wait_sql demo postgres "SELECT state LIKE 'idle%' FROM pgops.workers WHERE name = 'pgops launcher'" 10
q "SELECT name, kind, database, pid, state, runs, errors, starts FROM pgops.workers"

say "XID samples accumulate (one per second here; pgops.sample_interval defaults to 60 s)"
sleep 2
q "SELECT count(*) AS samples, max(next_xid) AS next_xid, max(next_mxid) AS next_mxid FROM pgops.xid_samples"
echo; echo "(200 transactions)"
sql demo postgres "CREATE TABLE burn(i int)" >/dev/null
sql demo postgres "DO \$\$ BEGIN FOR i IN 1..200 LOOP INSERT INTO burn VALUES (i); COMMIT; END LOOP; END \$\$" >/dev/null
sleep 2
q "SELECT sampled_at, next_xid, next_mxid FROM pgops.xid_samples ORDER BY sampled_at DESC LIMIT 5"

say "Per-database workers: which databases have pgops, and which version"
sql demo postgres "CREATE DATABASE app" >/dev/null
q "SELECT * FROM pgops.installations()"

say "2. Declarative roles: Pigsty's baseline + two business users, planned, applied, converged"
sql demo app "CREATE EXTENSION pgops" >/dev/null
sql demo app "CREATE TABLE orders(id bigint PRIMARY KEY)" >/dev/null
q "SELECT pgops.load_pigsty_baseline()"
echo; echo "postgres=# SET log_statement = 'none';  -- the next statement carries plaintext passwords"
echo "postgres=# SELECT pgops.load_roles('[{\"name\": \"dbuser_app\", \"password\": \"<plaintext>\", \"roles\": [\"dbrole_readwrite\"], \"parameters\": {\"statement_timeout\": \"30s\"}}, ...]')"
sql_secret demo postgres "SELECT pgops.load_roles('[{\"name\": \"dbuser_app\", \"password\": \"App.Secret.1\", \"pgbouncer\": true, \"roles\": [\"dbrole_readwrite\"], \"parameters\": {\"statement_timeout\": \"30s\"}, \"comment\": \"application user\"}, {\"name\": \"dbuser_report\", \"password\": \"Report.Secret.2\", \"roles\": [\"dbrole_readonly\"], \"expire_in\": 90}]')" >/dev/null
q "SELECT name, login, roles, left(password, 22) || '…' AS password_verifier FROM pgops.role WHERE name LIKE 'dbuser_%' ORDER BY name"
q "UPDATE pgops.default_privilege SET existing = true WHERE grantee IN ('dbrole_readonly', 'dbrole_readwrite') AND creator = 'postgres'"
q "SELECT seq, coalesce(database, '(cluster)') AS database, statement, risk FROM pgops.plan_roles() WHERE seq <= 12 OR statement LIKE 'GRANT % ON ALL TABLES%' OR statement LIKE '%dbuser_app%'"
q "SELECT coalesce(database, '(cluster)') AS database, status, count(*) FROM pgops.apply_roles() GROUP BY 1, 2 ORDER BY 1"
q "SELECT count(*) AS statements_left FROM pgops.plan_roles()"
echo; echo "(the orders table existed before; new tables get the same privileges by default)"
sql demo app "CREATE TABLE invoices(id bigint PRIMARY KEY)" >/dev/null
echo; echo "app=# SELECT t, has_table_privilege(...) FROM unnest(ARRAY['orders', 'invoices']) t"
sql_pretty demo app "SELECT t, has_table_privilege('dbrole_readonly', t, 'SELECT') AS readonly_select, has_table_privilege('dbuser_app', t, 'INSERT') AS app_insert FROM unnest(ARRAY['orders', 'invoices']) t"
say "Drift: someone changes a role by hand; pgops sees it and puts it back"
q "ALTER ROLE dbuser_report CREATEDB CONNECTION LIMIT 3"
q "GRANT dbrole_admin TO dbuser_report"
q "SELECT * FROM pgops.role_drift"
q "SELECT statement, risk, status FROM pgops.apply_roles()"
q "SELECT differences, statements FROM pgops.role_drift_summary"

say "Declarative databases: Pigsty's pg_databases loaded, one database created, cloned and retired"
q "SELECT pgops.load_databases('[{\"name\": \"shop\", \"owner\": \"dbuser_app\", \"revokeconn\": true, \"comment\": \"the shop\", \"schemas\": [\"sales\"], \"parameters\": {\"work_mem\": \"32MB\"}, \"baseline\": \"CREATE TABLE sales.orders (id bigint PRIMARY KEY)\", \"pool_size\": 20}, {\"name\": \"shop_staging\", \"template\": \"shop\", \"owner\": \"dbuser_app\", \"pgbouncer\": false}]')"
q "SELECT seq, database, runs, statement, risk FROM pgops.plan_databases()"
echo; echo "(shop_staging is a clone of shop: created after shop's baseline ran, it starts with the table the baseline made)"
q "SELECT database, statement, status FROM pgops.apply_databases()"
q "SELECT datname, pg_get_userbyid(datdba) AS owner, has_database_privilege('public', datname, 'CONNECT') AS public_connect FROM pg_database WHERE datname LIKE 'shop%' ORDER BY 1"
sql_pretty demo shop_staging "SELECT 'shop_staging' AS database, to_regclass('sales.orders') AS cloned_table"
q "SELECT databases_line FROM pgops.pgbouncer_databases"
echo; echo "(retiring: absent, and a plan that drops needs the hash of the plan you read)"
q "UPDATE pgops.database_spec SET state = 'absent' WHERE name = 'shop_staging'"
q "SELECT statement, risk, plan_hash FROM pgops.plan_databases()"
sql demo postgres "SELECT statement, status FROM pgops.apply_databases(plan_hash => (SELECT plan_hash FROM pgops.plan_databases() LIMIT 1))" >/dev/null
echo "postgres=# SELECT statement, status FROM pgops.apply_databases(plan_hash => '<the plan_hash above>')"
q "SELECT datname FROM pg_database WHERE datname LIKE 'shop%'"
q "SELECT * FROM pgops.database_drift_summary"

say "3. pg_hba.conf from a table: render, lint, validate, apply, simulate"
q "SELECT pgops.load_pigsty_hba_defaults()"
if ! ssl_build "$v"; then
  echo; echo "(this PostgreSQL build has no SSL: PostgreSQL rejects hostssl lines, so the ssl rules go)"
  q "DELETE FROM pgops.hba_rule WHERE auth = 'ssl'"
fi
echo; echo "(this throwaway cluster runs as $PG_OS_USER: a first rule lets the demo keep its local trust)"
q "INSERT INTO pgops.hba_rule (title, \"user\", addr, auth, \"order\") VALUES ('demo: local access for this throwaway cluster', '\${dbsu}', 'local', 'trust', 10), ('app servers', 'dbuser_app', '192.168.10.0/24', 'sha', 1000), ('reporting on replicas only', '+dbrole_readonly', '10.20.0.0/16', 'ssl', 1000)"
q "UPDATE pgops.hba_rule SET role = 'replica' WHERE title = 'reporting on replicas only'"
echo; echo "postgres=# SELECT pgops.render_hba();"
sql demo postgres "SELECT pgops.render_hba()" | sed -n '1,12p;/demo: local/,$p'
q "SELECT severity, line_number, rule, finding, message FROM pgops.hba_lint"
q "INSERT INTO pgops.hba_rule (title, addr) VALUES ('typo', '10.0.0.0/33')"  2>&1 || true
q "UPDATE pgops.hba_rule SET auth = 'deny' WHERE title LIKE 'demo:%'" 
q "SELECT status FROM pgops.apply_hba()" 2>&1 || true
q "UPDATE pgops.hba_rule SET auth = 'trust' WHERE title LIKE 'demo:%'"
q "SELECT * FROM pgops.apply_hba()"
q "SELECT count(*) AS errors FROM pg_hba_file_rules WHERE error IS NOT NULL"
q "SELECT u AS user_name, d AS database, a AS address, m.matched, m.line_number, m.rule, m.method FROM (VALUES ('dbuser_app', 'app', '192.168.10.5'::inet), ('dbuser_app', 'app', '10.0.0.5'), ('dbuser_monitor', 'postgres', NULL), ('replicator', 'replication', '172.16.3.4'), ('mallory', 'postgres', '203.0.113.9')) v(u, d, a), pgops.hba_match(u, d, a) m"
echo; echo "(someone edits pg_hba.conf by hand)"
echo "# added by hand" | as_pg tee -a "${CL_DIR[demo]}/data/pg_hba.conf" >/dev/null
q "SELECT state, owner, drifted, rendered_for, rendered_role, detail FROM pgops.hba_drift"

say "4. Monitoring views for Grafana: ages, blockers, forecast, bloat (estimated, then verified)"
q "CREATE EXTENSION pgstattuple"
q "CREATE TABLE orders (id int PRIMARY KEY, customer int8, note text, placed timestamptz)"
q "INSERT INTO orders SELECT i, i % 977, md5(i::text), now() FROM generate_series(1, 100000) i"
q "CREATE INDEX orders_customer_note ON orders (note, customer)"
q "DELETE FROM orders WHERE id % 3 <> 0"
q "VACUUM ANALYZE orders"
q "DO \$\$ BEGIN FOR i IN 1..2000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END \$\$"
q "SELECT database, xid_age, xid_pct_of_wraparound, xid_pct_of_freeze_max_age, xids_remaining FROM pgops.database_age ORDER BY xid_age DESC"
q "SELECT database, round(xids_per_second) AS xids_per_s, round(seconds_to_freeze_max_age / 86400) AS days_to_forced_freeze, round(seconds_to_stop_limit / 86400) AS days_to_stop_limit, reason FROM pgops.wraparound_forecast WHERE database = 'postgres'"
sql_file demo postgres $'BEGIN;\nSELECT pg_current_xact_id();\n\\! sleep 3\nCOMMIT;' >/dev/null &
holder=$!
wait_sql demo postgres "SELECT count(*) > 0 FROM pgops.xmin_blockers" 3
q "SELECT kind, holder, database, xmin_age, round(seconds) AS seconds, detail FROM pgops.xmin_blockers"
wait $holder
q "SELECT schema, table_name, pg_size_pretty(table_bytes) AS size, pg_size_pretty(table_bloat_bytes) AS table_bloat, round(100 * table_bloat_ratio) AS pct, pg_size_pretty(index_bloat_bytes) AS index_bloat, quality FROM pgops.bloat ORDER BY total_bloat_bytes DESC LIMIT 3"
q "SELECT index_name, pg_size_pretty(size_bytes) AS size, round(100 * bloat_ratio) AS pct, quality, quality_reason FROM pgops.index_bloat WHERE table_name = 'orders'"
q "SELECT relation, kind, pg_size_pretty(size_bytes) AS size, pg_size_pretty(estimated_bloat_bytes) AS estimated, pg_size_pretty(verified_bloat_bytes) AS verified, method FROM pgops.verify_bloat(max_tables => 1)"
q "SELECT table_name, pg_size_pretty(table_bloat_bytes) AS estimated, pg_size_pretty(verified_table_bloat_bytes) AS verified, verified_at IS NOT NULL AS verified_shown FROM pgops.bloat WHERE table_name = 'orders'"
echo; echo "(grafana/pgops-dashboard.json runs these views as panels; see the README to import it)"

say "5. Scheduled VACUUM FREEZE: a job, its plan, a run, the history"
q "CREATE TABLE events (id int, payload text) WITH (autovacuum_enabled = false)"
q "INSERT INTO events SELECT i, md5(i::text) FROM generate_series(1, 50000) i"
q "DO \$\$ BEGIN FOR i IN 1..3000 LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END \$\$"
q "SELECT name, database, schedule, max_duration, enabled FROM pgops.freeze_job"
q "INSERT INTO pgops.freeze_job (name, database, schedule, min_age, max_duration, lock_timeout, enabled) VALUES ('demo', 'postgres', '*/5 * * * *', 2000, '1 minute', '2s', true)"
q "INSERT INTO pgops.freeze_job (name, schedule) VALUES ('typo', '0 3 * *')" 2>&1 || true
q "SELECT seq, schema, table_name, xid_age, round(urgency::numeric, 6) AS urgency, estimated_pages FROM pgops.freeze_plan(min_age => 2000) WHERE schema = 'public' OR seq <= 2 ORDER BY seq"
q "SELECT * FROM pgops.run_freeze('demo')"
wait_sql demo postgres "SELECT bool_and(status NOT IN ('queued', 'running')) FROM pgops.freeze_run WHERE job = 'demo'" 60
q "SELECT id, job, database, trigger, status, tables_planned, tables_done, tables_skipped, pages, xid_age_before, xid_age_after, finished_at - started_at AS took FROM pgops.freeze_run WHERE job = 'demo'"
q "SELECT seq, schema, table_name, outcome, xid_age_before, xid_age_after, round(seconds::numeric, 3) AS seconds FROM pgops.freeze_run_table WHERE run_id = (SELECT max(id) FROM pgops.freeze_run WHERE job = 'demo') AND (schema = 'public' OR seq <= 2) ORDER BY seq"
q "SELECT job, enabled, next_run, last_status, last_tables_done, running FROM pgops.freeze_status"

say "6. Publishing to etcd: the instance's state under a lease, the fleet read back"
q "ALTER SYSTEM SET pgops.etcd_endpoints = '${ETCD_URL[demo]}'"
q "SELECT pg_reload_conf()"
wait_sql demo postgres "SELECT state = 'publishing' FROM pgops.etcd_status" 10
q "SELECT enabled, state, connected_endpoint, key, lease_id, lease_ttl, interval_seconds, pushes, writes, failures FROM pgops.etcd_status"
echo; echo "\$ etcdctl get --prefix /pg/pg-demo/pgops/ --print-value-only | python3 -m json.tool"
etcdctl_ demo get --prefix /pg/pg-demo/pgops/ --print-value-only | python3 -m json.tool
echo; echo "(a streaming replica, pgops.instance_name = 'pg-demo-2', publishes too)"
cluster_standby demo_r demo "pgops.instance_name = 'pg-demo-2'"
wait_sql demo_r postgres "SELECT state = 'publishing' FROM pgops.etcd_status" 15
q "SELECT instance, role, port, timeline, lsn, replay_lag_seconds, date_trunc('second', updated_at) AS updated_at, is_self FROM pgops.cluster_members()"
q "SELECT * FROM pgops.etcd_push_now()"
echo; echo "(etcd killed: the server carries on, the worker retries with backoff)"
etcd_kill demo
q "SELECT ok, error, push_ms FROM pgops.etcd_push_now()"
q "SELECT state, failures, consecutive_failures, last_error, next_push_at - now() AS retry_in, pg_postmaster_start_time() FROM pgops.etcd_status"
etcd_restart demo
wait_sql demo postgres "SELECT consecutive_failures = 0 FROM pgops.etcd_status" 15
echo; echo "(etcd is back: the next retry publishes again)"
q "SELECT state, pushes, failures, consecutive_failures, last_push_at > last_error_at AS recovered FROM pgops.etcd_status"
echo; echo "(a clean stop of the replica revokes its lease: its key is gone at once)"
cluster_stop demo_r fast
echo "\$ etcdctl get --prefix /pg/ --keys-only"; etcdctl_ demo get --prefix /pg/ --keys-only | grep -v '^$'

say "7. Security audit: the seeds' hardening practices as live checks"
q "SELECT * FROM pgops.security_score"
q "SELECT severity, check_id, object, detail FROM pgops.security_audit WHERE status = 'fail' ORDER BY array_position(ARRAY['critical','high','medium','low','info'], severity), check_id"
echo; echo "(fixing two findings: CONNECT and TEMPORARY no longer granted to PUBLIC)"
q "REVOKE CONNECT, TEMPORARY ON DATABASE postgres, app FROM PUBLIC"
q "SELECT check_id, status, detail FROM pgops.security_audit WHERE check_id IN ('PRIV-PUBLIC-CONNECT', 'PRIV-PUBLIC-TEMP')"
q "SELECT checks, passed, failed, score FROM pgops.security_score"
q "CREATE ROLE grafana LOGIN IN ROLE pg_monitor"
echo; echo "(as a pg_monitor role: what it may not look at is 'unknown', never 'pass')"
q "SET ROLE grafana; SELECT status, count(*), string_agg(check_id, ', ' ORDER BY check_id) FILTER (WHERE status = 'unknown') AS unknown FROM pgops.security_audit GROUP BY status"

say "A terminated launcher comes back; the postmaster is untouched"
q "SELECT pg_terminate_backend(pid) FROM pgops.workers WHERE name = 'pgops launcher'"
wait_sql demo postgres "SELECT pid IS NOT NULL AND starts = 2 FROM pgops.workers WHERE name = 'pgops launcher'" 10
q "SELECT name, pid, state, starts, pg_postmaster_start_time() FROM pgops.workers WHERE name = 'pgops launcher'"

say "Shutting down"
t0=$(date +%s%N)
cluster_stop demo fast
echo "fast shutdown took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
echo "etcd keys left under /pg/: $(etcdctl_ demo get --prefix /pg/ --keys-only | grep -c . || true) (the lease was revoked at shutdown)"
cleanup_all
echo "demo finished: cluster and etcd removed; it took $(( $(date +%s) - demo_t0 )) s from the start (set-up and build included)"
