#!/usr/bin/env bash
# A/B of each adaptive mechanism of the reactor: the echo server and the
# proxy built with one mechanism turned off (tools/mechanisms/*.patch) run
# against the unpatched build ("full") of the same commit, interleaved, in
# one run per benchmark so that every ratio is taken within a repetition:
#   echo   uniform 64 B ping-pong, 100 connections, server at 1 and 2
#          threads on core 0, load on core 1 (own loop; the order of the
#          builds rotates every repetition);
#   hol    the head-of-line cells (tools/compare.sh --scenario=hol, each
#          build a --variant);
#   proxy  the proxy against HAProxy (tools/proxy_compare.sh, each build a
#          --variant), for the mechanisms on the proxy's path.
# "full-aa", a second copy of the full build, runs as one more variant: its
# ratios to full are the A/A noise floor of the same run.
#
#   tools/mechanism_ab.sh --out=DIR [--commit=4198be7] [--reps=N] [--quick]
#       [--prebuilt=DIR] [--parts=echo,hol,proxy]
#       [--echo_variants=a,b] [--proxy_variants=a,b] [--no_aa] [--smoke]
#       [--worktree=PATH] [--dry_run]
#
# --prebuilt=DIR: reuse DIR/<name>/{baton_echo,proxy} (as built by
# tools/mechanisms/build_variants.sh --dest=DIR) instead of building into
# OUT/variants (--worktree: the scratch worktree for those builds, default
# ${TMPDIR:-/tmp}/baton-mechanisms-build).
# --echo_variants: for echo and hol; default no-reread, no-yield, no-rescue,
# no-pollmark (no-park cannot change the echo server's path: it never
# writes to another connection). --proxy_variants: default no-park,
# no-reread, no-yield, no-pollmark (no-rescue cannot change a one-thread
# proxy: its leader never has other threads running; no-reread-all, which
# also takes parking's re-read away, only if asked). --reps: repetitions
# (default 5). --quick: the short grid, about 14 minutes of runs plus the
# builds (the estimate is printed at the start). --smoke: the tiniest
# durations and one repetition (unless --reps), only to prove the script
# runs end to end; its numbers mean nothing. --dry_run: print the plan and
# the time estimate, run nothing.
# Writes DIR/results.csv (every paired ratio), DIR/report.md (variant / full,
# median of the per-repetition ratios, with their range), DIR/ab.png, and
# each part's own output in DIR/echo, DIR/hol, DIR/proxy.
# Needs 2 cores, haproxy and gnuplot (tools/setup.sh --bench). Run it on an
# otherwise idle machine.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT=""; COMMIT=4198be7; REPS=""; QUICK=0; SMOKE=0; PREBUILT=""; AA=1; WORKTREE=(); DRY=0
PARTS="echo hol proxy"
ECHO_VARIANTS="no-reread no-yield no-rescue no-pollmark"
PROXY_VARIANTS="no-park no-reread no-yield no-pollmark"
for arg in "$@"; do
  case "$arg" in
    --out=*) OUT="${arg#--out=}" ;;
    --commit=*) COMMIT="${arg#--commit=}" ;;
    --reps=*) REPS="${arg#--reps=}" ;;
    --quick) QUICK=1 ;;
    --smoke) SMOKE=1; QUICK=1 ;;
    --prebuilt=*) PREBUILT="${arg#--prebuilt=}" ;;
    --parts=*) PARTS="${arg#--parts=}"; PARTS="${PARTS//,/ }" ;;
    --echo_variants=*) ECHO_VARIANTS="${arg#--echo_variants=}"; ECHO_VARIANTS="${ECHO_VARIANTS//,/ }" ;;
    --proxy_variants=*) PROXY_VARIANTS="${arg#--proxy_variants=}"; PROXY_VARIANTS="${PROXY_VARIANTS//,/ }" ;;
    --no_aa) AA=0 ;;
    --worktree=*) WORKTREE=("$arg") ;;
    --dry_run) DRY=1 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "mechanism_ab.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "mechanism_ab.sh: $*" >&2; exit 2; }
[[ -n "$OUT" ]] || die "--out=DIR is required"
[[ -z "$REPS" || "$REPS" =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer"
for p in $PARTS; do case "$p" in echo|hol|proxy) ;; *) die "unknown part '$p'" ;; esac; done
for v in $ECHO_VARIANTS $PROXY_VARIANTS; do
  [[ -f "$HERE/mechanisms/$v.patch" ]] || die "no patch tools/mechanisms/$v.patch for variant '$v'"
done
[[ $(nproc) -ge 2 ]] || { echo "mechanism_ab.sh: needs 2 cores" >&2; exit 1; }

# The grid. Per-run seconds below are duration + warm-up + ~0.5-0.7 s of
# start, connect and stop (proxy runs: ~1.5 s, three python calls), as
# measured on the 2-core VM.
if ((SMOKE)); then
  REPS=${REPS:-1}; ECHO_D=0.5; ECHO_W=0.1; PROXY_D=1; PROXY_CONNS="10"; PROXY_BULK="65536"
  HOL_FLAGS="--quick"; HOL_CELLS=4; HOL_RUN_S=1.8
elif ((QUICK)); then
  REPS=${REPS:-5}; ECHO_D=2; ECHO_W=0.5; PROXY_D=2; PROXY_CONNS="10 100"; PROXY_BULK="1048576"
  HOL_FLAGS="--quick"; HOL_CELLS=4; HOL_RUN_S=2.1  # threads 1 4 x slow 0 1, 1.0 s + 0.3 s
else
  REPS=${REPS:-5}; ECHO_D=3; ECHO_W=0.5; PROXY_D=3; PROXY_CONNS="1 10 100"; PROXY_BULK="65536 1048576"
  HOL_FLAGS=""; HOL_CELLS=12; HOL_RUN_S=3.3  # threads 1 2 4 x slow 0 1 2 4, 2.0 s + 0.5 s
fi
ECHO_THREADS="1 2"
AA_NAME=""; ((AA)) && AA_NAME="full-aa"
# Builds per part: full first, the A/A copy last (it also carries the drift
# across a repetition into the noise floor).
ECHO_BUILDS="full $ECHO_VARIANTS $AA_NAME"
PROXY_BUILDS="full $PROXY_VARIANTS $AA_NAME"
[[ " $PARTS " == *" proxy "* ]] || PROXY_BUILDS=""
[[ " $PARTS " == *" echo "* || " $PARTS " == *" hol "* ]] || ECHO_BUILDS=""

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
START=$(date +%s)
fmt_s() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
elapsed() { fmt_s $(( $(date +%s) - START )); }

# ---- time estimate ------------------------------------------------------------
n_echo=$(wc -w <<<"$ECHO_BUILDS"); n_proxy=$(( $(wc -w <<<"$PROXY_BUILDS") + 1 ))  # + haproxy
n_loads=$(( $(wc -w <<<"$PROXY_CONNS") + $(wc -w <<<"$PROXY_BULK") ))
est_echo=0; est_hol=0; est_proxy=0
[[ " $PARTS " == *" echo "* ]] &&
  est_echo=$(python3 -c "print(round($REPS * $n_echo * 2 * ($ECHO_D + $ECHO_W + 0.5)))")
[[ " $PARTS " == *" hol "* ]] &&
  est_hol=$(python3 -c "print(round($REPS * $n_echo * $HOL_CELLS * $HOL_RUN_S))")
[[ -n "$PROXY_BUILDS" ]] && est_proxy=$(( REPS * n_proxy * n_loads * (PROXY_D + 2) ))
est=$(( est_echo + est_hol + est_proxy ))
echo "== mechanism A/B at $COMMIT, $REPS repetitions: runs take about $(fmt_s "$est")" \
  "(echo $(fmt_s "$est_echo"), hol $(fmt_s "$est_hol"), proxy $(fmt_s "$est_proxy"))," \
  "plus the builds" >&2
if ((DRY)); then
  echo "echo/hol builds: $ECHO_BUILDS; proxy builds: $PROXY_BUILDS (+ haproxy)" >&2
  echo "echo: 100 conn x threads $ECHO_THREADS, ${ECHO_D} s + ${ECHO_W} s warm-up;" \
    "hol: compare.sh ${HOL_FLAGS:-(full grid)} --scenario=hol; proxy: conns '$PROXY_CONNS'," \
    "bulk '$PROXY_BULK', ${PROXY_D} s" >&2
  exit 0
fi

# ---- builds -------------------------------------------------------------------
NEEDED=$(tr ' ' '\n' <<<"full $ECHO_VARIANTS $PROXY_VARIANTS" | sort -u | tr '\n' ' ')
if [[ -n "$PREBUILT" ]]; then
  VARIANTS_DIR="$(cd "$PREBUILT" && pwd)"
  echo "== reusing builds in $VARIANTS_DIR" >&2
else
  VARIANTS_DIR="$OUT/variants"
  echo "== building $NEEDED at $COMMIT ($(elapsed))" >&2
  "$HERE/mechanisms/build_variants.sh" --dest="$VARIANTS_DIR" --commit="$COMMIT" \
    --names="${NEEDED// /,}" --smoke "${WORKTREE[@]}"
fi
for name in $NEEDED; do
  for b in baton_echo proxy; do
    [[ -x "$VARIANTS_DIR/$name/$b" ]] || die "missing $VARIANTS_DIR/$name/$b"
  done
done
want=$(git -C "$ROOT" rev-parse --verify "$COMMIT^{commit}" 2>/dev/null || echo "$COMMIT")
for name in $NEEDED; do
  got=$(awk '/^commit/ {print $2}' "$VARIANTS_DIR/$name/BUILD_INFO" 2>/dev/null || true)
  [[ -z "$got" || "$got" == "$want" ]] ||
    echo "mechanism_ab.sh: warning: $name was built at $got, not $want" >&2
done
build_of() { [[ "$1" == full-aa ]] && echo full || echo "$1"; }
echo "== building the load generator (//client:bench, -c opt) ($(elapsed))" >&2
mkdir -p "$OUT/bin" "$OUT/logs"
(cd "$ROOT" && bazel build -c opt //client:bench >"$OUT/logs/build-bench.log" 2>&1) ||
  { cat "$OUT/logs/build-bench.log" >&2; exit 1; }
cp -f "$ROOT/bazel-bin/client/bench" "$OUT/bin/bench"
{
  echo "commit $want"
  for name in $NEEDED; do echo "$name: $(tr '\n' ' ' <"$VARIANTS_DIR/$name/BUILD_INFO" 2>/dev/null)"; done
  echo "grid: reps=$REPS quick=$QUICK smoke=$SMOKE parts=$PARTS echo_builds=$ECHO_BUILDS proxy_builds=$PROXY_BUILDS"
  echo "command: $0 $*"
} >"$OUT/BUILDS.txt"

SERVER_PID=""
cleanup() { [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true

# ---- uniform echo -------------------------------------------------------------
cpu_ns() {  # on-CPU nanoseconds of every thread of process $1
  local total=0 f
  for f in /proc/"$1"/task/*/schedstat; do
    total=$((total + $(cut -d' ' -f1 "$f" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
run_echo_part() {
  local dir="$OUT/echo" raw step=0 total rep threads i k name builds
  mkdir -p "$dir/logs"
  raw="$dir/raw.csv"
  echo "build,threads,rep,order,round_trips_per_s,p50_us,p99_us,p999_us,max_us,server_cpu_us_per_rt" >"$raw"
  read -r -a builds <<<"$ECHO_BUILDS"
  local n=${#builds[@]}
  total=$(( REPS * n * $(wc -w <<<"$ECHO_THREADS") ))
  for rep in $(seq "$REPS"); do
    for threads in $ECHO_THREADS; do
      for ((i = 0; i < n; i++)); do
        # Rotate the order every repetition: no build always runs first.
        k=$(( (i + rep - 1) % n )); name=${builds[$k]}
        local tag="$name-t$threads-$rep" log port="" fields="NA NA NA NA NA NA"
        log="$dir/logs/$tag"
        taskset -c 0 "$VARIANTS_DIR/$(build_of "$name")/baton_echo" --threads="$threads" \
          --port=0 2>"$log.server.log" &
        SERVER_PID=$!
        for _ in $(seq 100); do
          port=$(grep -o 'listening on [^ ]*:[0-9]*' "$log.server.log" 2>/dev/null | sed 's/.*://' || true)
          [[ -n "$port" ]] && break
          sleep 0.05
        done
        if [[ -n "$port" ]]; then
          local cpu0 json
          cpu0=$(cpu_ns "$SERVER_PID")
          if json=$(timeout 120 taskset -c 1 "$OUT/bin/bench" --mode=pingpong --port="$port" \
                      --connections=100 --size=64 --duration="$ECHO_D" --warmup="$ECHO_W" \
                      --json 2>"$log.bench.log"); then
            echo "$json" >"$log.json"
            fields=$(python3 -c 'import json, sys
j = json.load(sys.stdin); l = j["latency_us"]
cpu = (int(sys.argv[2]) - int(sys.argv[1])) / 1000 / max(j["all_round_trips"], 1)
print(j["rate"], l["p50"], l["p99"], l["p999"], l["max"], round(cpu, 3))' \
              "$cpu0" "$(cpu_ns "$SERVER_PID")" <<<"$json" || echo "NA NA NA NA NA NA")
          fi
        else
          echo "mechanism_ab.sh: $name did not start; see $log.server.log" >&2
        fi
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        echo "$name,$threads,$rep,$i,${fields// /,}" >>"$raw"
        step=$((step + 1))
        local -a v=($fields)
        printf '[echo %3d/%d %s] %s threads=%s rep=%s: %s rt/s, p99 %s us, max %s us\n' \
          "$step" "$total" "$(elapsed)" "$name" "$threads" "$rep" "${v[0]}" "${v[2]}" "${v[4]}" >&2
      done
    done
  done
}

# ---- head-of-line cells -------------------------------------------------------
run_hol_part() {
  local -a args=()
  local name
  for name in $ECHO_BUILDS; do
    args+=("--variant=$name=$VARIANTS_DIR/$(build_of "$name")/baton_echo")
  done
  # shellcheck disable=SC2086
  "$ROOT/tools/compare.sh" $HOL_FLAGS --scenario=hol --out="$OUT/hol" --reps="$REPS" \
    --budget=0 --hol_models="${ECHO_BUILDS// /,}" "${args[@]}"
}

# ---- proxy against HAProxy ----------------------------------------------------
run_proxy_part() {
  local -a args=()
  local name
  for name in $PROXY_BUILDS; do
    args+=("--variant=$name=$VARIANTS_DIR/$(build_of "$name")/proxy")
  done
  "$ROOT/tools/proxy_compare.sh" --out="$OUT/proxy" --reps="$REPS" --duration="$PROXY_D" \
    --conns="$PROXY_CONNS" --bulk_sizes="$PROXY_BULK" "${args[@]}" \
    --proxies="$PROXY_BUILDS haproxy" >"$OUT/proxy/stdout.md"
}

failed=""
for part in $PARTS; do
  case "$part" in
    echo) echo "== uniform echo: ${ECHO_BUILDS} x threads ${ECHO_THREADS} x $REPS reps ($(elapsed))" >&2
          run_echo_part || failed+=" echo" ;;
    hol) echo "== head-of-line cells: tools/compare.sh --scenario=hol ($(elapsed))" >&2
         run_hol_part || failed+=" hol" ;;
    proxy) echo "== proxy: tools/proxy_compare.sh, ${PROXY_BUILDS} and haproxy ($(elapsed))" >&2
           mkdir -p "$OUT/proxy"
           run_proxy_part || failed+=" proxy" ;;
  esac
done

python3 "$HERE/mechanisms/ab_report.py" --out="$OUT" --reps="$REPS" --quick="$QUICK" \
  --smoke="$SMOKE" --aa="$AA_NAME" --parts="$PARTS" --commit="$want"
[[ -z "$failed" ]] || echo "mechanism_ab.sh: part(s) failed:$failed (see their logs)" >&2
echo "== done in $(elapsed): $OUT/report.md, $OUT/results.csv, $OUT/ab.png" >&2
[[ -z "$failed" ]]
