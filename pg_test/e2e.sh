#!/usr/bin/env bash
# End-to-end scenarios against real servers (and etcd where a feature talks to it).
#
#   pg_test/e2e.sh 15 [scenario-substring...]  build + install pgops for PG 15, run the scenarios
#                                               (those whose name contains one of the substrings)
#
# Each scenario in pg_test/scenarios/ starts its own throwaway clusters on free ports and removes
# them. Prints one line per check and a closing "N passed, N failed".
set -uo pipefail
source "$(dirname "$0")/lib.sh"
v=${1:?usage: e2e.sh PG_VERSION [filter]}
shift
filters=("$@")
trap cleanup_all EXIT

# PGOPS_E2E_INSTALLED=1: test.sh built and installed this major already (one build per major).
if [ "${PGOPS_E2E_INSTALLED:-0}" != 1 ]; then
  say "PG $v: building and installing pgops"
  install_pgops "$v" || { echo "install failed"; exit 1; }
fi

SCENARIO="pg$v"
# A name that matches no scenario (a scenario renamed, a typo) is a failure, not a shorter run.
for f_ in "${filters[@]}"; do
  ls "$PGOPS_ROOT"/pg_test/scenarios/*"$f_"*.sh >/dev/null 2>&1 || not_ok "no scenario is named like '$f_'"
done
ran=0
for f in "$PGOPS_ROOT"/pg_test/scenarios/*.sh; do
  SCENARIO="pg$v/$(basename "$f" .sh)"
  if [ ${#filters[@]} -gt 0 ]; then
    chosen=0; for f_ in "${filters[@]}"; do [[ "$SCENARIO" == *"$f_"* ]] && chosen=1; done
    [ $chosen = 1 ] || continue
  fi
  # PGOPS_E2E_SKIP: scenarios (names, space-separated) test.sh runs on their own.
  [[ " ${PGOPS_E2E_SKIP:-} " == *" $(basename "$f" .sh) "* ]] && continue
  say "$SCENARIO"
  unset -f scenario_main
  source "$f"
  t0=$(date +%s); ran=$((ran + 1))
  scenario_main "$v" || not_ok "scenario stopped early (see above)"
  cleanup_all
  echo "  ($SCENARIO took $(( $(date +%s) - t0 )) s)"
done

echo
if [ $FAILED -gt 0 ]; then
  printf 'failed checks:\n'; printf '  %s\n' "${FAILURES[@]}"
fi
echo "e2e pg$v: $ran scenarios; $PASSED passed, $FAILED failed"
[ $FAILED -eq 0 ]
