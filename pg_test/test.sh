#!/usr/bin/env bash
# Every pgops test: the core crate's unit tests (plain cargo test, no PostgreSQL), then on PG 15
# and PG 18 the extension's #[test]s and #[pg_test]s (cargo pgrx test, against a preloaded
# throwaway server) and the end-to-end scenarios in pg_test/scenarios.
#
#   pg_test/test.sh                  everything (installs what is missing first)
#   PGOPS_PG_VERSIONS=15 pg_test/test.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
versions=${PGOPS_PG_VERSIONS:-15 18}
started=$(date +%s)

bash "$here/setup.sh" || exit 1
cd "$PGOPS_ROOT"

total_pass=0; total_fail=0; failed_steps=()
step() { # step NAME command...
  local name=$1 log; shift
  log=$(mktemp)
  say "$name"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local p f
  # cargo: "test result: ok. 12 passed; 0 failed; ..."  e2e: "e2e pg15: 30 passed, 0 failed"
  p=$(grep -Eo '([0-9]+) passed' "$log" | awk '{s+=$1} END {print s+0}')
  f=$(grep -Eo '([0-9]+) failed' "$log" | awk '{s+=$1} END {print s+0}')
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  if [ "$rc" != 0 ]; then
    failed_steps+=("$name")
    [ "$f" = 0 ] && total_fail=$((total_fail + 1))
  fi
  rm -f "$log"
}

# The core crate (everything that decides) needs no PostgreSQL: plain cargo test, once.
step "core crate: cargo test -p pgops-core" cargo test -p pgops-core

for v in $versions; do
  if is_root; then
    pgdata=/tmp/pgops-pgrx-test-pg$v
    install -d -o postgres -g postgres "$pgdata"
    step "PG $v: unit tests + #[pg_test]s" cargo pgrx test "pg$v" --runas postgres --pgdata "$pgdata"
  else
    step "PG $v: unit tests + #[pg_test]s" cargo pgrx test "pg$v"
  fi
  step "PG $v: end-to-end scenarios" bash "$here/e2e.sh" "$v"
done

# The Debian package (PG 15: Debian's own server package is what it depends on), as root.
if [[ " $versions " == *" 15 "* ]] && is_root && command -v dpkg-deb >/dev/null; then
  step "PG 15: Debian package built, installed with apt-get, used, removed" bash "$here/package_test.sh" 15
fi

echo
echo "took $(( $(date +%s) - started )) s"
[ ${#failed_steps[@]} -eq 0 ] || printf 'failed: %s\n' "${failed_steps[@]}"
echo "tests: $total_pass passed, $total_fail failed"
[ ${#failed_steps[@]} -eq 0 ]
