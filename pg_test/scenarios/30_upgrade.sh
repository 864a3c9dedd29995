# Upgrade-script convention: for every sql/pgops--A--B.sql with a released install script
# sql/released/pgops--A.sql, CREATE EXTENSION at A then ALTER EXTENSION UPDATE must give exactly
# the schema of a fresh CREATE EXTENSION. While only one version exists, the same check runs on a
# synthetic next version, with a negative control proving the check catches a missing change.

scenario_main() {
  local v=$1 C=upg
  local extdir current sudo=()
  extdir=$("$(pg_config_for "$v")" --sharedir)/extension
  is_root || [ -w "$extdir" ] || sudo=(sudo)
  current=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$PGOPS_ROOT/Cargo.toml" | head -1)
  cluster_init $C "$v" "shared_preload_libraries = 'pgops'" || { not_ok "initdb"; return 1; }
  cluster_start $C || { not_ok "server starts"; return 1; }

  snapshot() { sql $C "$1" "$(cat "$PGOPS_ROOT/pg_test/schema_snapshot.sql")"; }
  # same_schema_after_update FROM TO — fresh install of TO vs FROM updated to TO.
  same_schema_after_update() {
    local from=$1 to=$2 tag=$3
    sql $C postgres "CREATE DATABASE fresh_$tag" >/dev/null && sql $C postgres "CREATE DATABASE upd_$tag" >/dev/null
    sql $C "fresh_$tag" "CREATE EXTENSION pgops VERSION '$to'" >/dev/null || return 1
    sql $C "upd_$tag" "CREATE EXTENSION pgops VERSION '$from'" >/dev/null || return 1
    sql $C "upd_$tag" "ALTER EXTENSION pgops UPDATE TO '$to'" >/dev/null || return 1
    [ "$(sql $C "upd_$tag" "SELECT extversion FROM pg_extension WHERE extname = 'pgops'")" = "$to" ] || return 1
    local d=${CL_DIR[$C]}
    snapshot "fresh_$tag" > "$d/fresh_$tag" && snapshot "upd_$tag" > "$d/upd_$tag" || return 1
    [ "$(wc -l < "$d/fresh_$tag")" -ge 5 ] || return 1  # the snapshot really lists the objects
    diff "$d/fresh_$tag" "$d/upd_$tag" > "$d/diff_$tag" || return 1
    # The updated extension still works.
    sql $C "upd_$tag" "SELECT count(*) FROM pgops.workers" >/dev/null
  }

  # Real upgrade paths.
  local up from to n=0
  for up in "$PGOPS_ROOT"/sql/pgops--*--*.sql; do
    [ -e "$up" ] || continue
    from=$(basename "$up" .sql | sed 's/^pgops--\(.*\)--.*/\1/')
    to=$(basename "$up" .sql | sed 's/^pgops--.*--\(.*\)/\1/')
    [ -f "$PGOPS_ROOT/sql/released/pgops--$from.sql" ] \
      || { not_ok "released install script sql/released/pgops--$from.sql exists for $up"; continue; }
    "${sudo[@]}" install -m 0644 "$PGOPS_ROOT/sql/released/pgops--$from.sql" "$extdir/"
    n=$((n + 1))
    if [ "$to" = "$current" ]; then
      check "upgrade $from → $to equals a fresh install" same_schema_after_update "$from" "$to" "r$n"
    fi
  done

  # Synthetic next version: the current script plus one new function, and its upgrade script.
  local next="$current-next" probe="CREATE FUNCTION pgops._upgrade_probe() RETURNS int LANGUAGE sql AS 'SELECT 1';"
  local files=("$extdir/pgops--$next.sql" "$extdir/pgops--$current--$next.sql")
  { cat "$extdir/pgops--$current.sql"; echo "$probe"; } | "${sudo[@]}" tee "${files[0]}" >/dev/null
  echo "$probe" | "${sudo[@]}" tee "${files[1]}" >/dev/null
  check "synthetic upgrade $current → $next equals a fresh install" same_schema_after_update "$current" "$next" syn
  # Negative control: an upgrade script that forgets the change must be caught.
  echo "SELECT 1;" | "${sudo[@]}" tee "${files[1]}" >/dev/null
  if same_schema_after_update "$current" "$next" neg; then
    not_ok "an incomplete upgrade script is detected"
  else
    grep -q '_upgrade_probe' "${CL_DIR[$C]}/diff_neg" && ok "an incomplete upgrade script is detected" \
      || not_ok "an incomplete upgrade script is detected" "$(cat "${CL_DIR[$C]}/diff_neg")"
  fi
  "${sudo[@]}" rm -f "${files[@]}"
}
