# Bloat estimates against the truth, side by side with the seed's (Pigsty's) SQL estimators;
# quality flags; verify_bloat with pgstattuple; pg_monitor access.
#
# Truth for a table: how much smaller its heap + TOAST get under VACUUM FULL (a fresh copy with
# the same fillfactor); for an index: how much smaller REINDEX makes it. Every case prints
# truth, pgops and seed in percent; pgops must be within 10 percentage points.

TOLERANCE=10

# pct A B — 100 * (A - B) / A, one decimal
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a > 0 ? 100 * (a - b) / a : 0) }'; }
# within X Y — |X - Y| <= TOLERANCE
within() { awk -v x="$1" -v y="$2" -v t=$TOLERANCE 'BEGIN { d = x - y; if (d < 0) d = -d; exit !(d <= t) }'; }
row() { printf '  %-44s truth %6s%%   pgops %6s%% (%s)   seed %6s%%\n' "$@"; }

relsize() { # relsize CLUSTER REL — main fork of the relation plus its TOAST table
  sql "$1" acc "SELECT pg_relation_size(c.oid) + coalesce(pg_relation_size(nullif(c.reltoastrelid, 0)), 0) FROM pg_class c WHERE c.oid = '$2'::regclass"
}

table_case() { # table_case CLUSTER TABLE "description"
  local C=$1 t=$2 d=$3 before after truth est q seed
  before=$(relsize $C "$t")
  est=$(sql $C acc "SELECT coalesce(round(100 * bloat_ratio::numeric, 1)::text, 'NULL') FROM pgops.table_bloat WHERE table_name = '$t'")
  q=$(sql $C acc "SELECT quality FROM pgops.table_bloat WHERE table_name = '$t'")
  seed=$(sql $C acc "SELECT coalesce((SELECT round(100 * greatest(ratio, 0)::numeric, 1)::text FROM seed.pg_table_bloat WHERE relname = '$t'), 'n/a')")
  sql $C acc "VACUUM FULL $t" >/dev/null
  after=$(relsize $C "$t")
  truth=$(pct "$before" "$after")
  row "table: $d" "$truth" "$est" "$q" "$seed"
  if [ "$est" != NULL ] && within "$est" "$truth"; then ok "table $d: pgops within $TOLERANCE pp of the truth"
  else not_ok "table $d: pgops within $TOLERANCE pp of the truth" "truth $truth%, pgops $est%"; fi
}

index_case() { # index_case CLUSTER INDEX "description"
  local C=$1 i=$2 d=$3 before after truth est q seed
  before=$(sql $C acc "SELECT pg_relation_size('$i')")
  est=$(sql $C acc "SELECT coalesce(round(100 * bloat_ratio::numeric, 1)::text, 'NULL') FROM pgops.index_bloat WHERE index_name = '$i'")
  q=$(sql $C acc "SELECT quality FROM pgops.index_bloat WHERE index_name = '$i'")
  seed=$(sql $C acc "SELECT coalesce((SELECT round(100 * greatest(ratio, 0)::numeric, 1)::text FROM seed.pg_index_bloat WHERE relname = '$i'), 'missing')")
  sql $C acc "REINDEX INDEX $i" >/dev/null
  after=$(sql $C acc "SELECT pg_relation_size('$i')")
  truth=$(pct "$before" "$after")
  row "index: $d" "$truth" "$est" "$q" "$seed"
  if [ "$est" != NULL ] && within "$est" "$truth"; then ok "index $d: pgops within $TOLERANCE pp of the truth"
  else not_ok "index $d: pgops within $TOLERANCE pp of the truth" "truth $truth%, pgops $est%"; fi
}

scenario_main() {
  local v=$1 C=bloat
  cluster_init $C "$v" "autovacuum = off" || { not_ok "initdb"; return 1; }
  cluster_start $C || { not_ok "server starts"; return 1; }
  sql $C postgres "CREATE DATABASE acc" >/dev/null
  sql $C acc "CREATE EXTENSION pgops" >/dev/null
  sql_file $C acc "$(cat "$PGOPS_ROOT/pg_test/fixtures/seed_bloat.sql")" >/dev/null || not_ok "seed views load"

  # --- the matrix -------------------------------------------------------------------------------
  # Mixed alignment (int4, int8, text, timestamptz, bool), no TOAST.
  sql $C acc "CREATE TABLE heap_only (id int4, n int8, label text, at timestamptz, flag bool);
              INSERT INTO heap_only SELECT i, i * 7, md5(i::text), now(), i % 2 = 0 FROM generate_series(1, 60000) i;
              CREATE TABLE ff70 (id int4, n int8, label text) WITH (fillfactor = 70);
              INSERT INTO ff70 SELECT i, i, md5(i::text) FROM generate_series(1, 60000) i;
              CREATE TABLE narrow_nulls (a int4, b int8, c int4, d text);
              INSERT INTO narrow_nulls SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE i END, i, CASE WHEN i % 5 = 0 THEN NULL ELSE repeat('x', i % 40) END FROM generate_series(1, 60000) i;
              CREATE TABLE toasted (id int4, doc text);
              ALTER TABLE toasted ALTER doc SET STORAGE EXTERNAL;
              INSERT INTO toasted SELECT i, repeat(md5(i::text), 190) FROM generate_series(1, 3000) i;
              CREATE TABLE toasted_fresh (id int4, doc text);
              INSERT INTO toasted_fresh SELECT i, (SELECT string_agg(md5((i * 1000 + j)::text), '') FROM generate_series(1, 120) j) FROM generate_series(1, 2000) i;
              CREATE TABLE deleted (id int4, n int8, label text);
              INSERT INTO deleted SELECT i, i, md5(i::text) FROM generate_series(1, 60000) i;
              CREATE TABLE vacuumed (id int4, n int8, label text);
              INSERT INTO vacuumed SELECT i, i, md5(i::text) FROM generate_series(1, 60000) i;
              CREATE TABLE updated (id int4, n int8, label text);
              INSERT INTO updated SELECT i, i, md5(i::text) FROM generate_series(1, 60000) i;
              CREATE TABLE multi (a int4, b int8, c text, d int4);
              INSERT INTO multi SELECT i, i * 3, md5(i::text), i % 100 FROM generate_series(1, 60000) i;
              CREATE INDEX multi_c_a ON multi (c, a);
              CREATE INDEX multi_d_b ON multi (d, b);
              CREATE INDEX multi_c ON multi (c);
              CREATE INDEX multi_dup ON multi (d);
              CREATE UNIQUE INDEX multi_b_incl ON multi (b) INCLUDE (a);
              CREATE TABLE wide_rows (id int4, body text);
              INSERT INTO wide_rows SELECT i, repeat(md5(i::text), 45) FROM generate_series(1, 6000) i;
              CREATE TABLE idx_deleted (a int4, b text, c int4);
              INSERT INTO idx_deleted SELECT i, md5(i::text), i % 100 FROM generate_series(1, 60000) i;
              CREATE INDEX idx_deleted_b_a ON idx_deleted (b, a);
              CREATE INDEX idx_deleted_a ON idx_deleted (a);
              CREATE INDEX idx_deleted_c ON idx_deleted (c);" >/dev/null
  sql $C acc "DELETE FROM toasted WHERE id % 2 = 0; DELETE FROM deleted WHERE id % 3 = 0;
              DELETE FROM vacuumed WHERE id % 2 = 0; UPDATE updated SET n = n + 1;
              DELETE FROM idx_deleted WHERE a % 2 = 0" >/dev/null
  sql $C acc "VACUUM toasted" >/dev/null; sql $C acc "VACUUM vacuumed" >/dev/null; sql $C acc "VACUUM updated" >/dev/null
  sql $C acc "VACUUM idx_deleted" >/dev/null; sql $C acc "VACUUM toasted_fresh" >/dev/null
  sql $C acc "ANALYZE" >/dev/null

  echo "  accuracy (bloat in % of the relation; seed = Pigsty's monitor views; n/a = not estimated):"
  table_case $C heap_only "fresh, mixed alignment"
  table_case $C ff70 "fresh, fillfactor 70"
  table_case $C narrow_nulls "fresh, NULLs and short text"
  table_case $C toasted "wide TOASTed text, half deleted, VACUUM"
  table_case $C toasted_fresh "fresh, compressed TOAST"
  table_case $C deleted "a third deleted, no VACUUM"
  table_case $C vacuumed "half deleted, after VACUUM"
  table_case $C updated "every row updated, after VACUUM"
  table_case $C wide_rows "fresh, 1 500-byte rows (5 to a page)"
  index_case $C multi_c_a "fresh (text, int4) on columns 3, 1"
  index_case $C multi_d_b "fresh (int4, int8) on columns 4, 2"
  index_case $C multi_c "fresh (text) on column 3"
  index_case $C multi_dup "fresh, 100 distinct values (deduplicated)"
  index_case $C multi_b_incl "fresh unique (int8) INCLUDE (int4)"
  index_case $C idx_deleted_b_a "(text, int4), half deleted, VACUUM"
  index_case $C idx_deleted_a "(int4), half deleted, VACUUM"
  index_case $C idx_deleted_c "100 distinct values, half deleted, VACUUM"
  local seed_missing
  seed_missing=$(sql $C acc "SELECT count(*) FROM pg_indexes WHERE tablename IN ('multi', 'idx_deleted')
                             AND indexname NOT IN (SELECT relname FROM seed.pg_index_bloat)")
  echo "  (the seed's index view leaves out $seed_missing of 8 indexes here: its column mapping)"

  # --- quality flags ----------------------------------------------------------------------------
  sql $C acc "CREATE TABLE never_analyzed (id int, t text); INSERT INTO never_analyzed SELECT i, 'x' FROM generate_series(1, 1000) i;
              CREATE TABLE tiny (id int); INSERT INTO tiny VALUES (1);
              CREATE TABLE stale (id int, t text); INSERT INTO stale SELECT i, md5(i::text) FROM generate_series(1, 10000) i" >/dev/null
  sql $C acc "ANALYZE tiny" >/dev/null; sql $C acc "ANALYZE stale" >/dev/null
  sql $C acc "DELETE FROM stale WHERE id <= 5000" >/dev/null
  check_eq "a table never analyzed: no figure, unreliable, says why" \
    "$(sql $C acc "SELECT coalesce(bloat_ratio::text, 'NULL') || '|' || quality || '|' || quality_reason FROM pgops.table_bloat WHERE table_name = 'never_analyzed'")" \
    "NULL|unreliable|no statistics: never analyzed or vacuumed"
  check_match "a tiny table is flagged" \
    "$(sql $C acc "SELECT quality || '|' || quality_reason FROM pgops.table_bloat WHERE table_name = 'tiny'")" "^approximate\|tiny: 1 pages$"
  wait_sql $C acc "SELECT quality = 'approximate' FROM pgops.table_bloat WHERE table_name = 'stale'" 5
  check_match "stale statistics are flagged with how stale" \
    "$(sql $C acc "SELECT quality || '|' || quality_reason FROM pgops.table_bloat WHERE table_name = 'stale'")" "^approximate\|stale statistics: 50% of rows changed since ANALYZE"
  check_eq "the seed hides what it cannot estimate; pgops shows it with its quality" \
    "$(sql $C acc "SELECT (SELECT count(*) FROM seed.pg_table_bloat WHERE relname = 'never_analyzed')::text || ',' || (SELECT count(*) FROM pgops.table_bloat WHERE table_name = 'never_analyzed')")" "0,1"
  check_eq "catalog tables are estimated too (name columns have a known width)" \
    "$(sql $C acc "SELECT quality <> 'unreliable' FROM pgops.table_bloat WHERE schema = 'pg_catalog' AND table_name = 'pg_class'")" t

  # --- the bloat view ---------------------------------------------------------------------------
  sql $C acc "CREATE TABLE combo (id int PRIMARY KEY, t text); INSERT INTO combo SELECT i, md5(i::text) FROM generate_series(1, 40000) i;
              CREATE INDEX combo_t ON combo (t); DELETE FROM combo WHERE id % 2 = 0" >/dev/null
  sql $C acc "VACUUM ANALYZE combo" >/dev/null
  check_eq "bloat sums a table's indexes" \
    "$(sql $C acc "SELECT b.indexes = 2 AND b.index_bytes = (SELECT sum(size_bytes) FROM pgops.index_bloat WHERE table_name = 'combo')
                          AND b.total_bloat_bytes = b.table_bloat_bytes + b.index_bloat_bytes AND b.table_bloat_ratio > 0.4
                          AND b.verified_at IS NULL FROM pgops.bloat b WHERE table_name = 'combo'")" t

  # --- verify_bloat -----------------------------------------------------------------------------
  check_match "verify_bloat without pgstattuple: a clear error" \
    "$(sql $C acc "SELECT * FROM pgops.verify_bloat()" 2>&1)" 'needs the pgstattuple extension in database "acc"'
  sql $C acc "CREATE EXTENSION pgstattuple" >/dev/null
  check_match "verify_bloat rejects a negative budget" \
    "$(sql $C acc "SELECT * FROM pgops.verify_bloat(-1)" 2>&1)" "must not be negative"
  local out
  out=$(sql $C acc "SELECT relation || '|' || kind || '|' || stored FROM pgops.verify_bloat(1) ORDER BY kind DESC, relation")
  check_eq "verify_bloat(1) measures the worst table and its indexes" "$out" $'combo|table|true\ncombo_pkey|index|true\ncombo_t|index|true'
  check_eq "the verified figures agree with the estimate within 10 pp" \
    "$(sql $C acc "SELECT bool_and(abs(bloat_bytes - estimated_bloat_bytes)::float8 / size_bytes <= 0.10) FROM pgops.bloat_verified WHERE table_relid = 'combo'::regclass")" t
  check_eq "the bloat view shows them next to the estimate" \
    "$(sql $C acc "SELECT verified_table_bloat_bytes IS NOT NULL AND verified_index_bloat_bytes IS NOT NULL AND verified_at IS NOT NULL
                   AND abs(verified_table_bloat_ratio - table_bloat_ratio) <= 0.10 FROM pgops.bloat WHERE table_name = 'combo'")" t
  sql $C acc "ANALYZE combo" >/dev/null
  check_eq "statistics newer than the measurement hide it" \
    "$(sql $C acc "SELECT verified_at IS NULL FROM pgops.bloat WHERE table_name = 'combo'")" t
  sql $C acc "SELECT count(*) FROM pgops.verify_bloat(1)" >/dev/null
  sql $C acc "VACUUM FULL combo" >/dev/null
  check_eq "a rewrite (VACUUM FULL) makes the measurement obsolete" \
    "$(sql $C acc "SELECT verified_table_bloat_bytes IS NULL FROM pgops.bloat WHERE table_name = 'combo'")" t
  check_match "a page budget too small measures nothing and says so" \
    "$(sql $C acc "SELECT count(*) FROM pgops.verify_bloat(5, 0)" 2>&1)" "did not fit in max_pages => 0.*"$'\n'"0$"
  sql_file $C acc $'BEGIN;\nLOCK TABLE heap_only IN ACCESS EXCLUSIVE MODE;\n\\! sleep 4\nCOMMIT;' >/dev/null &
  local bg=$!
  wait_sql $C acc "SELECT count(*) = 1 FROM pg_locks WHERE relation = 'heap_only'::regclass AND mode = 'AccessExclusiveLock'" 3
  local t0; t0=$(date +%s%N)
  out=$(sql $C acc "SELECT string_agg(relation, ',') FROM pgops.verify_bloat(50)" 2>&1)
  check_match "a locked table is skipped, not waited for" "$out" "skipped public.heap_only: locked by another session"
  check "and the call did not wait for the lock" test $(( ($(date +%s%N) - t0) / 1000000 )) -lt 3000
  wait $bg

  # --- standby: measured, not stored ------------------------------------------------------------
  if cluster_standby bloat_sb $C; then
    out=$(sql bloat_sb acc "SELECT bool_and(NOT stored) FROM pgops.verify_bloat(2)" 2>&1)
    check_match "on a standby verify_bloat measures and returns, stores nothing" "$out" "results are returned, not stored"$'.*\nt$'
    check_eq "the estimates work on the standby" "$(sql bloat_sb acc "SELECT count(*) > 10 FROM pgops.bloat")" t
    cluster_stop bloat_sb fast
  else
    not_ok "standby starts"
  fi

  # --- pg_monitor -------------------------------------------------------------------------------
  sql $C acc "CREATE ROLE grafana LOGIN IN ROLE pg_monitor; CREATE TABLE secret (id int, v text);
              INSERT INTO secret SELECT i, md5(i::text) FROM generate_series(1, 5000) i; ANALYZE secret;
              REVOKE ALL ON secret FROM PUBLIC" >/dev/null
  check_eq "a pg_monitor role sees tables it cannot read, with their estimate" \
    "$(sql $C acc "SET ROLE grafana; SELECT quality <> 'unreliable' FROM pgops.table_bloat WHERE table_name = 'secret'")" t
  check_eq "where the seed's view loses them (pg_stats hides their columns)" \
    "$(sql $C acc "GRANT USAGE ON SCHEMA seed TO grafana; GRANT SELECT ON ALL TABLES IN SCHEMA seed TO grafana; SET ROLE grafana; SELECT count(*) FROM seed.pg_table_bloat WHERE relname = 'secret'")" 0
  check_eq "a pg_monitor role reads table_bloat, index_bloat, bloat, bloat_verified and calls verify_bloat" \
    "$(sql $C acc "SET ROLE grafana; SELECT (SELECT count(*) > 0 FROM pgops.table_bloat) AND (SELECT count(*) > 0 FROM pgops.index_bloat)
                   AND (SELECT count(*) > 0 FROM pgops.bloat) AND (SELECT count(*) >= 0 FROM pgops.bloat_verified)
                   AND (SELECT count(*) >= 0 FROM pgops.verify_bloat(1))")" t
  check_match "PUBLIC cannot call verify_bloat" \
    "$(sql $C acc "CREATE ROLE nobody; SET ROLE nobody; SELECT * FROM pgops.verify_bloat()" 2>&1)" "permission denied"
}
