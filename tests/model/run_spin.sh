#!/usr/bin/env bash
# Checks the Spin models in tests/model (docs/model.md): baton.pml, the
# claim protocol, and scheduler.pml, the leader/followers hand-off with its
# ready queue. Each model of the real code must verify with no errors, and
# every seeded mutant (one guard removed) must yield a counterexample that
# violates the property the mutant targets. Fails otherwise.
#
#   run_spin.sh [--mode=quick|full]
#
# quick (the default; `bazel test //...` runs //tests/model:spin_model_test):
#   smaller bitstate tables for the real protocol and every asserted
#   mutant; about two minutes.
# full (.ci/run's own stage; //tests/model:spin_model_full_test, manual):
#   the full-size searches, the configuration without the foreign thread
#   exhaustively, and every asserted mutant; about 10 minutes.
# BATON_SPIN_MODE=quick|full overrides the default when no --mode is given.
set -euo pipefail

MODE="${BATON_SPIN_MODE:-quick}"
for arg in "$@"; do
  case "$arg" in
    --mode=*) MODE="${arg#--mode=}" ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_spin.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
case "$MODE" in quick|full) ;; *) echo "run_spin.sh: --mode must be quick or full" >&2; exit 2 ;; esac

MODEL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ -r "$MODEL_DIR/baton.pml" ]] || MODEL_DIR="${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-baton}/tests/model"
WORK="${TEST_TMPDIR:-$(mktemp -d)}/spin"
mkdir -p "$WORK"
cp "$MODEL_DIR/baton.pml" "$MODEL_DIR/scheduler.pml" "$WORK/"
cd "$WORK"
command -v spin >/dev/null || { echo "spin not installed (tools/setup.sh)"; exit 1; }

# Each pan run is bounded; a run cut by this limit fails (it proves nothing).
PAN_LIMIT_S=$([[ "$MODE" == full ]] && echo 3600 || echo 600)

# ---- the real protocol -------------------------------------------------------
# Three workers. The full state space is beyond this machine (over 135
# million states and 8 GB with only two workers), so the search is bitstate
# (supertrace): a bounded check, not a proof. pan reports the hash-factor
# coverage estimate in real.out. full: a 2^29-bit table (~200 million
# states); quick: 2^26 bits. Parking is in the model (baton.pml).
REAL_BITS=$([[ "$MODE" == full ]] && echo 29 || echo 26)
# The configuration the stranding mutants are searched in (below): two
# workers, no foreign thread. Its whole state space fits (~37 million
# states, about a minute): the full mode checks it exhaustively, the quick
# mode with a 2^26-bit table.
NOFOREIGN_CC=$([[ "$MODE" == full ]] && echo "-DCOLLAPSE -DSAFETY -DMEMLIM=3000" || echo "-DBITSTATE -DSAFETY")
NOFOREIGN_PAN=$([[ "$MODE" == full ]] && echo "-m1000000" || echo "-w26 -m1000000")

# ---- mutants -----------------------------------------------------------------
# One row per mutant, fields separated by '|':
#   model     the .pml file
#   name      -DMUTANT_<name> is passed to spin
#   modes     quick,full or full: where the row is asserted
#   spin -D   further spin defines (e.g. NWORKERS=2), space separated
#   cc flags  pan's compile flags
#   pan flags pan's run flags
#   expected  the property the counterexample must violate:
#               assert:EXPR   pan reports "assertion violated (EXPR)" (or
#                             "assertion violated EXPR") and the trail,
#                             replayed with spin -t, fails assert(EXPR)
#               invalid-end   pan reports "invalid end state"
# Small bugs are found fastest by an exhaustive depth-first search of the
# two-worker model (stopping at the first error), deep ones by a
# breadth-first search of it (the shortest counterexample, within the
# memory bound) or a bitstate search. To add a mutant, add a row.
# REARM_AFTER_RELEASE and FOREIGN_MOD are also in the model, but a bitstate
# search of this size does not reliably reach their counterexamples (it did
# in one run, not in the next), so they are not asserted; see docs/model.md.
EXHAUSTIVE2="NWORKERS=2|-DCOLLAPSE -DSAFETY -DMEMLIM=3000|-m1000000"
BREADTH2="NWORKERS=2|-DBFS -DSAFETY -DMEMLIM=3000|-m1000000"
# Parking enlarges the state space (the owner's park-or-re-arm choice, the
# parked list, running_ and the bound). Three mutants of guards that parking
# does not touch lose an event only after a long prefix that no search of
# the model with parking reaches reliably within the memory bound (a 2^28-bit
# search found them or not depending on the hashing of the state vector);
# they are asserted with -DNO_PARK (the owner never parks, as before
# parking): SWALLOW_STOP depth-first (~11 million states, ~10 s),
# KEEP_ARMED_ON_PENDING and KEEP_ARMED_ON_DISPATCH (the skipped re-arm,
# OwnerState::armed) breadth-first (depth ~100, 11-15 million states,
# 15-25 s each). That loses nothing: the owner may always re-arm instead of
# parking, so every run of the NO_PARK model is a run of the model with
# parking, with the same end state. NO_GENERATION_CHECK (breadth-first,
# depth ~90, ~9 million states, ~10 s), IGNORE_PENDING, NO_LEADER_EXCLUSION
# and TIMER_NO_CLAIM are found with parking in the model.
# The parking mutants: TAKEOVER_KEEPS_PARKED (two owners) breadth-first in
# seconds. PARK_IGNORES_PENDING leaves a request in a parked word: the
# expiry serves it, late but not lost, so no end-state check fails; it is
# asserted against the invariant that a parked connection nobody owns owes
# nothing (parked_owes_nothing), breadth-first in a second. NO_PARK_EXPIRY,
# NO_PARK_BOUND, POLL_IGNORES_PARKED (only the wait after a poll that found
# nothing loses its bound, as RescueDue once did) and LIST_BEFORE_PARK
# strand input at a parked connection;
# with the foreign thread present its Write or Close takes the first
# connection over however parking went, so the counterexample would have
# to run through the second connection (a breadth-first search then needs
# depth ~100 and most of the memory bound). Without it (-DNO_FOREIGN: "data
# that arrives with no Write following") a breadth-first search finds each
# at depth 55-85 in about a second; the real protocol is checked in that
# configuration too (noforeign above).
# scheduler.pml: two workers (one slow connection), exhaustive, seconds.
# Its NO_RESCUE mutant needs three workers and two slow connections, whose
# state space did not finish within 5 minutes here: not asserted (see
# docs/model.md); the rescue has unit tests in scheduler_test.
SCHED2="NWORKERS=2|-w -DCOLLAPSE -DSAFETY -DMEMLIM=3000|-m1000000"
MUTANTS=(
  "baton.pml|NO_GENERATION_CHECK|quick,full|$BREADTH2|assert:evgen==gen"
  "baton.pml|NO_LEADER_EXCLUSION|quick,full|$EXHAUSTIVE2|assert:in_wait==1"
  "baton.pml|SWALLOW_STOP|quick,full|NO_PARK $EXHAUSTIVE2|assert:stopped"
  "baton.pml|IGNORE_PENDING|quick,full|$BREADTH2|assert:stopped"
  "baton.pml|TIMER_NO_CLAIM|quick,full|CONNECT $EXHAUSTIVE2|assert:((live&&claimed)&&(gen==mygen))"
  "baton.pml|KEEP_ARMED_ON_PENDING|quick,full|NO_PARK $BREADTH2|assert:stopped"
  "baton.pml|KEEP_ARMED_ON_DISPATCH|quick,full|NO_PARK $BREADTH2|assert:stopped"
  "baton.pml|TAKEOVER_KEEPS_PARKED|quick,full|$BREADTH2|assert:owners==1"
  "baton.pml|PARK_IGNORES_PENDING|quick,full|$BREADTH2|assert:parked_owes_nothing"
  "baton.pml|NO_PARK_EXPIRY|quick,full|NO_FOREIGN $BREADTH2|assert:parked_input_read"
  "baton.pml|NO_PARK_BOUND|quick,full|NO_FOREIGN $BREADTH2|assert:parked_input_read"
  "baton.pml|POLL_IGNORES_PARKED|quick,full|NO_FOREIGN $BREADTH2|assert:parked_input_read"
  "baton.pml|LIST_BEFORE_PARK|quick,full|NO_FOREIGN $BREADTH2|assert:parked_input_read"
  "scheduler.pml|STRAND_BATCH|quick,full|$SCHED2|assert:(served[0]==2)&&(served[1]==2)"
  "scheduler.pml|NO_WAKE|quick,full|$SCHED2|assert:(served[0]==2)&&(served[1]==2)"
)

failed=0
fail() { echo "FAIL: $*"; failed=1; }

run_pan() {  # run_pan MODEL NAME SPIN_DEFINES CCFLAGS PANFLAGS -> NAME.out, NAME.rc
  local model="$1" name="$2" defines="$3" ccflags="$4" panflags="$5" d args=()
  rm -f pan pan.* ./*.trail
  for d in $defines; do args+=("-D$d"); done
  spin "${args[@]}" -a "$model" >"$name.spin" 2>&1 ||
    { echo "spin -a failed for $name:"; cat "$name.spin"; return 1; }
  # gcc's -Wstringop-overflow misreads pan's bounds-checked array stores;
  # the compiler's output is shown only if the build fails.
  # shellcheck disable=SC2086
  cc -O2 $ccflags -o pan pan.c >"$name.cc" 2>&1 ||
    { echo "cc failed for $name:"; cat "$name.cc"; return 1; }
  local start=$SECONDS rc=0
  # shellcheck disable=SC2086
  timeout -s KILL "$PAN_LIMIT_S" ./pan $panflags >"$name.out" 2>&1 || rc=$?
  echo "$rc" >"$name.rc"
  [[ -f "$model.trail" ]] && cp "$model.trail" "$name.trail"
  echo "$name: pan exit $rc, $(grep -oE 'errors: [0-9]+' "$name.out" | head -1),"\
       "$(grep -oE '[0-9.e+]+ states, stored' "$name.out" | head -1), $((SECONDS - start)) s"
}

# pan ran to its end: exit status 0 and its closing statistics printed. A
# crash, a kill (out of memory, the time limit) or cut output fails.
pan_completed() {  # pan_completed NAME
  local name="$1" rc
  rc=$(cat "$name.rc")
  if [[ "$rc" != 0 ]]; then
    if ((rc > 128)); then
      fail "$name: pan was killed by signal $((rc - 128)) (out of memory, time limit of ${PAN_LIMIT_S} s?)"
    else
      fail "$name: pan exited with status $rc"
    fi
    tail -5 "$name.out" || true
    return 1
  fi
  if ! grep -q '^pan: elapsed time' "$name.out"; then
    fail "$name: pan's output is incomplete (no closing statistics)"
    tail -5 "$name.out" || true
    return 1
  fi
}

check_real() {  # check_real MODEL NAME SPIN_DEFINES CCFLAGS PANFLAGS
  local name="$2"
  run_pan "$@" || { failed=1; return 0; }
  pan_completed "$name" || return 0
  if ! grep -qE 'errors: 0$|errors: 0[^0-9]' "$name.out" || [[ -f "$name.trail" ]]; then
    fail "$name: the model of the real code did not verify cleanly:"
    grep -E "^pan|errors|MEMLIM|depth" "$name.out" | head -20 || true
  elif grep -q "max search depth too small" "$name.out"; then
    fail "$name: the search was cut at the depth limit"
  elif grep -q "reached -DMEMLIM bound" "$name.out"; then
    fail "$name: the search was cut at the memory bound (-DMEMLIM)"
  fi
}

check_mutant() {  # check_mutant ROW
  local model name modes defines ccflags panflags expected row="$1"
  IFS='|' read -r model name modes defines ccflags panflags expected <<<"$row"
  [[ ",$modes," == *",$MODE,"* ]] || { echo "$name: not asserted in $MODE mode"; return 0; }
  run_pan "$model" "$name" "MUTANT_$name $defines" "$ccflags" "$panflags" || { failed=1; return 0; }
  pan_completed "$name" || return 0
  if ! grep -qE 'errors: [1-9]' "$name.out"; then
    fail "mutant $name was not caught (no error reported)"
    return 0
  fi
  if [[ ! -s "$name.trail" ]]; then
    fail "mutant $name: pan reported an error but wrote no trail"
    return 0
  fi
  local first
  first=$(grep -m1 -E '^pan:1: ' "$name.out" || true)
  case "$expected" in
    assert:*)
      local expr="${expected#assert:}"
      if [[ "$first" != "pan:1: assertion violated ($expr) "* &&
            "$first" != "pan:1: assertion violated $expr "* ]]; then
        fail "mutant $name: expected a violation of assert($expr), pan found: ${first:-nothing}"
        return 0
      fi
      # The trail must replay to that same assertion.
      local args=() d
      for d in MUTANT_$name $defines; do args+=("-D$d"); done
      cp "$name.trail" "$model.trail"
      spin -t "${args[@]}" "$model" >"$name.replay" 2>&1 || true
      if ! grep -qF -e "text of failed assertion: assert(($expr))" \
                    -e "text of failed assertion: assert($expr)" "$name.replay"; then
        fail "mutant $name: the trail does not replay to assert($expr):"
        grep -E "Error|assert" "$name.replay" | head -5 || true
        return 0
      fi
      ;;
    invalid-end)
      if [[ "$first" != "pan:1: invalid end state"* ]]; then
        fail "mutant $name: expected an invalid end state, pan found: ${first:-nothing}"
        return 0
      fi
      ;;
    *) fail "mutant $name: unknown expectation '$expected' in the table"; return 0 ;;
  esac
  echo "  counterexample: $first (trail replayed)"
}

echo "spin model: $MODE mode"
check_real baton.pml real "" "-DBITSTATE -DSAFETY" "-w$REAL_BITS -m1000000"
check_real baton.pml connect "CONNECT" "-DBITSTATE -DSAFETY" "-w$REAL_BITS -m1000000"
check_real baton.pml noforeign "NO_FOREIGN NWORKERS=2" "$NOFOREIGN_CC" "$NOFOREIGN_PAN"
check_real scheduler.pml scheduler "NWORKERS=2" "-w -DCOLLAPSE -DSAFETY -DMEMLIM=3000" "-m1000000"
asserted=0
for row in "${MUTANTS[@]}"; do
  modes=$(cut -d'|' -f3 <<<"$row")
  [[ ",$modes," == *",$MODE,"* ]] && asserted=$((asserted + 1))
  check_mutant "$row"
done

if ((failed)); then echo "spin model ($MODE): FAILED"; exit 1; fi
echo "spin model ($MODE): claim protocol checked with parking (bitstate 2^$REAL_BITS, and $([[ "$MODE" == full ]] && echo exhaustively || echo "2^26 bits") without the foreign thread; no errors), scheduler checked (exhaustive, two workers, no errors); all $asserted asserted mutants caught, each violating its target property"
