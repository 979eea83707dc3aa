#!/usr/bin/env bash
# What yields buy: small ping-pong connections sharing a one-thread echo
# server with bulk senders. Each run starts the echo build under test
# (pinned to core 0) and, together on core 1, one bench with --bulk
# connections echoing 1 MiB messages and one bench with 40 connections of
# 64 B; the small connections' p99 and rate are what a bulk sender costs
# the others. Builds alternate within each repetition (A B A B), with a
# second copy of the first build as the A/A noise floor.
#
#   tools/mechanisms/bulk_mix.sh --prebuilt=DIR --out=DIR [--reps=5]
#       [--builds=full,no-yield] [--bulk=2] [--duration=3]
#
# DIR/NAME/baton_echo as tools/mechanisms/build_variants.sh leaves them.
# Writes OUT/raw.csv and OUT/report.md (per-repetition ratios to the first
# build, their median and range). Loopback only.
set -euo pipefail

PREBUILT=""; OUT=""; REPS=5; BUILDS="full,no-yield"; BULK=2; DURATION=3
for arg in "$@"; do
  case "$arg" in
    --prebuilt=*) PREBUILT="${arg#--prebuilt=}" ;;
    --out=*) OUT="${arg#--out=}" ;;
    --reps=*) REPS="${arg#--reps=}" ;;
    --builds=*) BUILDS="${arg#--builds=}" ;;
    --bulk=*) BULK="${arg#--bulk=}" ;;
    --duration=*) DURATION="${arg#--duration=}" ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bulk_mix.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$PREBUILT" && -n "$OUT" ]] || { echo "bulk_mix.sh: --prebuilt=DIR and --out=DIR are required" >&2; exit 2; }
for n in "$REPS" "$BULK" "$DURATION"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bulk_mix.sh: --reps, --bulk and --duration take positive integers" >&2; exit 2; }
done
IFS=, read -r -a NAMES <<<"$BUILDS"
for b in "${NAMES[@]}"; do
  [[ -x "$PREBUILT/$b/baton_echo" ]] || { echo "bulk_mix.sh: no $PREBUILT/$b/baton_echo" >&2; exit 2; }
done
RUNS=("${NAMES[@]}" "${NAMES[0]}-aa")
cd "$(dirname "$0")/../.."
mkdir -p "$OUT"
bazel build -c opt --config=bench //client:bench >&2
BENCH="$(bazel info -c opt --config=bench bazel-bin 2>/dev/null)/client/bench"

SERVER=""
cleanup() { [[ -z "$SERVER" ]] || kill "$SERVER" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "rep,build,small_p99_us,small_rate,bulk_mb_s" >"$OUT/raw.csv"
for ((rep = 1; rep <= REPS; rep++)); do
  for run in "${RUNS[@]}"; do
    build="${run%-aa}"
    log="$OUT/$run-$rep.log"
    taskset -c 0 "$PREBUILT/$build/baton_echo" --port=0 --threads=1 >"$log" 2>&1 &
    SERVER=$!
    port=""
    for ((i = 0; i < 100; i++)); do
      port=$(grep -oE 'listening on [^ ]+:[0-9]+' "$log" | head -1 | grep -oE '[0-9]+$' || true)
      [[ -n "$port" ]] && break
      sleep 0.1
    done
    [[ -n "$port" ]] || { echo "bulk_mix.sh: $build did not start (see $log)" >&2; exit 1; }
    taskset -c 1 "$BENCH" --mode=pingpong --port="$port" --connections="$BULK" \
      --size=1048576 --duration="$((DURATION + 1))" --json >"$OUT/bulk.json" &
    bulk=$!
    sleep 0.5
    small=$(taskset -c 1 "$BENCH" --mode=pingpong --port="$port" --connections=40 \
      --size=64 --duration="$DURATION" --json)
    wait "$bulk"
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
    python3 - "$rep" "$run" "$small" "$(cat "$OUT/bulk.json")" >>"$OUT/raw.csv" <<'EOF'
import json, sys
rep, run, small, bulk = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
rate = small["round_trips"] / small["seconds"]
mb = bulk["round_trips"] * 1048576 / bulk["seconds"] / 1e6
print(f"{rep},{run},{small['latency_us']['p99']},{rate:.0f},{mb:.1f}")
EOF
    echo "bulk_mix: rep $rep/$REPS $run: $(tail -1 "$OUT/raw.csv")" >&2
  done
done

python3 - "$OUT" "${RUNS[@]}" <<'EOF'
import csv, statistics, sys
out, runs = sys.argv[1], sys.argv[2:]
rows = list(csv.DictReader(open(f"{out}/raw.csv")))
val = {(r["rep"], r["build"]): r for r in rows}
reps = sorted({r["rep"] for r in rows}, key=int)
base = runs[0]
lines = ["| build | small p99 µs | small round trips/s | bulk MB/s each way | p99 / " + base +
         " | rate / " + base + " |", "|---|---:|---:|---:|---:|---:|"]
for run in runs:
    get = lambda k: [float(val[(p, run)][k]) for p in reps]
    ratio = lambda k: [float(val[(p, run)][k]) / float(val[(p, base)][k]) for p in reps]
    fmt = lambda xs: f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"
    lines.append(f"| `{run}` | {statistics.median(get('small_p99_us')):,.0f} | "
                 f"{statistics.median(get('small_rate')):,.0f} | {statistics.median(get('bulk_mb_s')):,.0f} | "
                 f"{fmt(ratio('small_p99_us'))} | {fmt(ratio('small_rate'))} |")
open(f"{out}/report.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
