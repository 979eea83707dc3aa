#!/usr/bin/env bash
# Checks tests/model/baton.pml with Spin: the model of the real protocol
# must verify with no errors (exhaustive search), and every seeded mutant
# (one guard removed) must yield a counterexample. Fails otherwise.
set -euo pipefail

MODEL="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/baton.pml"
[[ -r "$MODEL" ]] || MODEL="${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-baton}/tests/model/baton.pml"
WORK="${TEST_TMPDIR:-$(mktemp -d)}/spin"
mkdir -p "$WORK"
cp "$MODEL" "$WORK/baton.pml"
cd "$WORK"
command -v spin >/dev/null || { echo "spin not installed (tools/setup.sh)"; exit 1; }

verify() {  # verify NAME DEFINE CCFLAGS PANFLAGS -> prints pan's output file
  local name="$1" define="$2" ccflags="$3" panflags="$4"
  rm -f pan pan.* ./*.trail
  # shellcheck disable=SC2086
  spin ${define:+-D$define} -a baton.pml >/dev/null
  # shellcheck disable=SC2086
  cc -O2 $ccflags -o pan pan.c
  local start=$SECONDS
  # shellcheck disable=SC2086
  ./pan $panflags >"$name.out" 2>&1 || true
  echo "$name: $(grep -oE 'errors: [0-9]+' "$name.out" | head -1), $(grep -oE '[0-9.e+]+ states, stored' "$name.out" | head -1), $((SECONDS - start)) s"
}

failed=0
# The real protocol, three workers. The full state space is beyond this
# machine (over 135 million states and 8 GB with only two workers), so the
# search is bitstate (supertrace) with a 2^29-bit table: a bounded check,
# not a proof. pan reports the hash-factor coverage estimate in real.out.
verify real "" "-DBITSTATE -DSAFETY" "-w29 -m1000000"
if ! grep -q "errors: 0" real.out || grep -q "max search depth too small" real.out; then
  echo "FAIL: the model of the real protocol did not verify cleanly:"
  grep -E "^pan|errors|MEMLIM|depth" real.out | head -20
  failed=1
fi

# Mutants: one guard removed each. Small bugs are found fastest by an
# exhaustive depth-first search of the two-worker model (stopping at the
# first error); the others need three workers and a bitstate search.
check_mutant() {  # check_mutant NAME DEFINES CCFLAGS PANFLAGS
  verify "$1" "$2" "$3" "$4"
  if grep -q "errors: 0" "$1.out"; then
    echo "FAIL: mutant $1 was not caught"
    failed=1
  else
    echo "  counterexample: $(grep -E '^pan:1:' "$1.out" | head -1)"
  fi
}
for mutant in NO_GENERATION_CHECK NO_LEADER_EXCLUSION SWALLOW_STOP; do
  check_mutant "$mutant" "MUTANT_$mutant -DNWORKERS=2" \
    "-DCOLLAPSE -DSAFETY -DMEMLIM=3000" "-m1000000"
done
# REARM_AFTER_RELEASE and FOREIGN_MOD are also in the model, but a bitstate
# search of this size does not reliably reach their counterexamples (it did
# in one run, not in the next), so they are not asserted here; see
# docs/model.md.
for mutant in IGNORE_PENDING; do
  check_mutant "$mutant" "MUTANT_$mutant" "-DBITSTATE -DSAFETY" "-w29 -m1000000"
done

if ((failed)); then echo "spin model: FAILED"; exit 1; fi
echo "spin model: real protocol checked (bitstate, no errors); all 4 checked mutants caught"
