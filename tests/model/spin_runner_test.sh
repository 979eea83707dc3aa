#!/usr/bin/env bash
# Checks run_spin.sh itself on small searches of the models: a bitstate run
# whose hash factor is below the minimum fails even with no errors, one
# above it passes; a pan run still going at its bound is stopped and fails,
# naming the bound; the full mode runs a mutant's full search, the quick
# mode its quick one.
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ -r "$DIR/run_spin.sh" ]] || DIR="${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-baton}/tests/model"
RUNNER="$DIR/run_spin.sh"
OUT="${TEST_TMPDIR:-$(mktemp -d)}/runner"
mkdir -p "$OUT"
command -v spin >/dev/null || { echo "spin not installed (tools/setup.sh)"; exit 1; }

failures=0
# expect NAME WANT_STATUS WANT_TEXT ARGS...: runs the runner with ARGS in a
# directory of its own; its exit status must be WANT_STATUS (0 or 1) and
# its output must hold WANT_TEXT.
expect() {
  local name="$1" want_status="$2" want_text="$3" status=0
  shift 3
  mkdir -p "$OUT/$name"
  TEST_TMPDIR="$OUT/$name" bash "$RUNNER" "$@" >"$OUT/$name.log" 2>&1 || status=$?
  if [[ "$status" != "$want_status" ]] || ! grep -qF -- "$want_text" "$OUT/$name.log"; then
    echo "FAIL: $name: exit $status (want $want_status), output must hold '$want_text':"
    cat "$OUT/$name.log"
    failures=$((failures + 1))
  else
    echo "ok: $name: $(grep -F -- "$want_text" "$OUT/$name.log" | head -1)"
  fi
}

# The two-worker model without the foreign thread has ~37 million states: a
# 2^16-bit table holds a few tens of thousands (hash factor ~2.7), a partial
# search that finds no error.
expect poor_coverage 1 "coverage too poor: hash factor" \
  --check="tiny|quick|baton.pml|NO_FOREIGN NWORKERS=2|-DBITSTATE -DSAFETY|-w16 -m1000000|5"
# The scheduler model (~0.4 million states) in a 2^26-bit table: a hash
# factor over 100.
expect good_coverage 0 "verified with no errors: roomy" \
  --check="roomy|quick|scheduler.pml|NWORKERS=2|-DBITSTATE -DSAFETY|-w26 -m1000000|5"
# The three-worker model in a 2^30-bit table stores hundreds of millions of
# states (minutes of pan); its bound is 3 s of processor time (the wall-time
# backstop, 63 s, is only reached by a run that gets under 5% of a core).
expect bound 1 "stuck: pan did not finish within its bound of 0.05 min of processor time" \
  --check="stuck|quick|baton.pml||-DBITSTATE -DSAFETY|-w30 -m1000000|0.05"
# One mutant, found by its quick search (depth-first, to depth 41) and not
# by a full search cut at depth 20: each mode must run its own.
MUTANT="baton.pml|NO_LEADER_EXCLUSION||exhaustive2|shallow|assert:in_wait==1"
SHALLOW="shallow=NWORKERS=2|-DCOLLAPSE -DSAFETY|-m20|5"
expect mutant_quick 0 "counterexample: pan:1: assertion violated (in_wait==1)" \
  --mode=quick --mutant="$MUTANT" --search="$SHALLOW"
expect mutant_full 1 "mutant NO_LEADER_EXCLUSION was not caught" \
  --mode=full --mutant="$MUTANT" --search="$SHALLOW"

if ((failures)); then echo "spin runner: $failures FAILED"; exit 1; fi
echo "spin runner: coverage minimum, bound and per-mode searches enforced"
