#!/usr/bin/env bash
# Fuzzes the HTTP request path (tests/fuzz/http_request_fuzzer.cc) with
# libFuzzer + AddressSanitizer for a bounded time, starting from the seed
# corpus in tests/fuzz/corpus (copied: the repository is never written).
#
#   tools/fuzz.sh [--seconds=60] [--jobs=1] [--out=DIR]
#
# Builds with clang (--config=fuzz) in a separate Bazel output base
# (~/.cache/baton-fuzz) so the normal build cache is untouched. Prints
# libFuzzer's progress; exits non-zero on any crash, leak or invariant
# violation, leaving the input that caused it in DIR.
set -euo pipefail

SECONDS_TOTAL=60; JOBS=1; OUT=""
for arg in "$@"; do
  case "$arg" in
    --seconds=*) SECONDS_TOTAL="${arg#--seconds=}" ;;
    --jobs=*) JOBS="${arg#--jobs=}" ;;
    --out=*) OUT="${arg#--out=}" ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
[[ "$SECONDS_TOTAL" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --seconds must be a positive integer" >&2; exit 2; }
[[ "$JOBS" =~ ^[1-9][0-9]?$ ]] || { echo "fuzz.sh: --jobs must be 1..99" >&2; exit 2; }
command -v clang >/dev/null || { echo "fuzz.sh: clang missing; run tools/setup.sh" >&2; exit 1; }

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
[[ -n "$OUT" ]] || OUT="$(mktemp -d /tmp/baton-fuzz.XXXXXX)"
mkdir -p "$OUT/corpus" "$OUT/artifacts"
OUT="$(cd "$OUT" && pwd)"
cp "$ROOT"/tests/fuzz/corpus/* "$OUT/corpus/"

BASE="${BATON_FUZZ_OUTPUT_BASE:-$HOME/.cache/baton-fuzz}"
echo "== fuzz: building with clang (output base $BASE)" >&2
t0=$(date +%s)
(cd "$ROOT" && bazel --output_base="$BASE" build --config=fuzz \
   --symlink_prefix=/ //tests/fuzz:http_request_fuzzer) >"$OUT/build.log" 2>&1 ||
  { tail -40 "$OUT/build.log" >&2; exit 1; }
BIN="$(cd "$ROOT" && bazel --output_base="$BASE" info --config=fuzz bazel-bin 2>/dev/null)"
cp -f "$BIN/tests/fuzz/http_request_fuzzer" "$OUT/"
# The second Bazel server is not needed while fuzzing: free its memory.
(cd "$ROOT" && bazel --output_base="$BASE" shutdown) >/dev/null 2>&1 || true
echo "== fuzz: built in $(( $(date +%s) - t0 )) s; fuzzing for ${SECONDS_TOTAL} s" >&2

# detect_leaks: a leak per request would show; the reactor's threads run
# for the whole process, so only a real leak is reported.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
set +e
(cd "$OUT" && ./http_request_fuzzer -max_total_time="$SECONDS_TOTAL" \
   -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
   -jobs="$JOBS" -workers="$JOBS" -artifact_prefix="$OUT/artifacts/" \
   corpus) 2>&1 | tee "$OUT/fuzz.log" | grep -E --line-buffered \
   "pulse|DONE|ERROR|Sanitizer|invariant|stat::|Done"
status=${PIPESTATUS[0]}
set -e
if [[ $status != 0 ]] || ls "$OUT"/artifacts/* >/dev/null 2>&1 ||
   grep -qE "ERROR: |invariant violated" "$OUT/fuzz.log"; then
  echo "== fuzz: FAILED; inputs in $OUT/artifacts, log $OUT/fuzz.log" >&2
  exit 1
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/fuzz.log" | tail -1)
echo "== fuzz: no crash in ${SECONDS_TOTAL} s, ${execs:-?} inputs run; corpus grew to $(ls "$OUT/corpus" | wc -l) ($OUT)" >&2
