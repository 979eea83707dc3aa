#!/usr/bin/env bash
# Compares dispatch models on echo ping-pong, with and without idle
# connections, the kecho-style barrier bench, and head-of-line blocking
# (fast connections' p99 while some connections' messages block
# the server 1 ms each, 1/2/4 server threads on one core). Servers run
# pinned to core 0, all load on core 1; runs are interleaved model by model
# (A B A B ...) and medians reported.
#
#   tools/compare.sh [--quick] --out=DIR [--scenario=all|main|hol] [--reps=N]
#                    [--budget=S] [--models=a,b] [--hol_models=a,b] [--http]
#                    [--base_echo=PATH] [--variant=NAME=PATH ...]
#
# Writes DIR/raw.csv (every run), DIR/results.csv (medians), DIR/report.md
# and DIR/*.png. Loopback only. --quick trims the grid and bounds the run
# to --budget seconds (default 300 with --quick; 0 = no bound): a further
# repetition starts only if the ones so far say it fits. --scenario=hol runs
# only the head-of-line part, main everything else. --http also runs the
# HTTP comparison against nginx (tools/http_compare.sh) into DIR/http/.
set -euo pipefail

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  echo "models: baton baton-t2 asio asio-t2 poll select threads"
  echo "hol_models: baton asio asio-pt reuseport poll select threads"
  echo "  (asio: one shared io_context; asio-pt: one per thread; reuseport:"
  echo "  epoll loop + SO_REUSEPORT listener per thread; poll, select and"
  echo "  threads run single-threaded / thread per connection only)"
  echo "--base_echo=PATH: baton's echo built from another commit, run as model"
  echo "  base (and base-t2) beside baton: before/after in one run. Build"
  echo "  //server/compare:baton_echo there (it takes --slow_us for the"
  echo "  head-of-line runs), or //server:echo at commits before it existed"
  echo "--variant=NAME=PATH (repeatable): another baton_echo build, run as model"
  echo "  NAME (and NAME-t2; head-of-line model NAME) in the same interleaved"
  echo "  runs: several builds (tools/mechanism_ab.sh) compared in one run"
}

QUICK=0
HTTP=0
OUT=""
REPS=""
BUDGET=""
SCENARIO=all
MODELS="baton baton-t2 asio asio-t2 poll select threads"
HOL_MODELS=""
BASE_ECHO=""  # --base_echo: //server/compare:baton_echo from another commit
# --variant=NAME=PATH: more builds of baton_echo, as models NAME / NAME-t2.
declare -A VARIANT_PATH=()
VARIANT_NAMES=""
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --http) HTTP=1 ;;
    --out=*) OUT="${arg#--out=}" ;;
    --reps=*) REPS="${arg#--reps=}" ;;
    --budget=*) BUDGET="${arg#--budget=}" ;;
    --scenario=*) SCENARIO="${arg#--scenario=}" ;;
    --models=*) MODELS="${arg#--models=}"; MODELS="${MODELS//,/ }" ;;
    --hol_models=*) HOL_MODELS="${arg#--hol_models=}"; HOL_MODELS="${HOL_MODELS//,/ }" ;;
    --base_echo=*) BASE_ECHO="${arg#--base_echo=}" ;;
    --variant=*)
      v="${arg#--variant=}"; vname="${v%%=*}"
      if [[ "$v" != *=* || ! "$vname" =~ ^[a-z][a-z0-9_-]*$ || "$vname" == *-t2 ]]; then
        echo "compare.sh: --variant needs NAME=PATH, NAME in [a-z0-9_-], not ending in -t2" >&2; exit 2
      fi
      case "$vname" in baton|base|asio|asio-pt|reuseport|poll|select|threads)
        echo "compare.sh: --variant name '$vname' is a built-in model" >&2; exit 2 ;;
      esac
      [[ -z "${VARIANT_PATH[$vname]:-}" ]] || { echo "compare.sh: --variant $vname given twice" >&2; exit 2; }
      VARIANT_PATH[$vname]="${v#*=}"; VARIANT_NAMES+=" $vname" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done
if [[ -z "$OUT" ]]; then
  echo "compare.sh: --out=DIR is required" >&2; usage >&2; exit 2
fi
if [[ -n "$REPS" && ! "$REPS" =~ ^[1-9][0-9]*$ ]]; then
  echo "compare.sh: --reps must be a positive integer" >&2; exit 2
fi
if [[ -n "$BUDGET" && ! "$BUDGET" =~ ^[0-9]+$ ]]; then
  echo "compare.sh: --budget must be a whole number of seconds (0: none)" >&2
  exit 2
fi
case "$SCENARIO" in all|main|hol) ;;
  *) echo "compare.sh: --scenario must be all, main or hol" >&2; exit 2 ;;
esac
for m in $MODELS; do
  case "$m" in baton|baton-t2|asio|asio-t2|poll|select|threads) ;;
    base|base-t2) [[ -n "$BASE_ECHO" ]] || { echo "compare.sh: model '$m' needs --base_echo=PATH" >&2; exit 2; } ;;
    *) [[ -n "${VARIANT_PATH[${m%-t2}]:-}" ]] ||
         { echo "compare.sh: unknown model '$m'" >&2; usage >&2; exit 2; } ;;
  esac
done
for m in $HOL_MODELS; do
  case "$m" in baton|asio|asio-pt|reuseport|poll|select|threads) ;;
    base) [[ -n "$BASE_ECHO" ]] || { echo "compare.sh: model '$m' needs --base_echo=PATH" >&2; exit 2; } ;;
    *) [[ -n "${VARIANT_PATH[$m]:-}" ]] ||
         { echo "compare.sh: unknown head-of-line model '$m'" >&2; usage >&2; exit 2; } ;;
  esac
done
if [[ $(nproc) -lt 2 ]]; then
  echo "compare.sh: needs 2 cores (server on core 0, load on core 1)" >&2
  exit 1
fi

# Head-of-line scenario: HOL_CONNS connections of 64 B, of which 0..4 send
# messages the server delays HOL_SLOW_US (sleeping); server threads all on
# core 0. Its 0-slow column is the oversubscription case.
HOL_CONNS=40
HOL_SLOW_US=1000
if ((QUICK)); then
  DURATION=1.0; WARMUP=0.3; REPS=${REPS:-3}; BUDGET=${BUDGET:-300}
  PINGPONG="1:0 100:0 100:10000"      # connections:idle
  BARRIER="100"
  HOL_SLOW="0 1"; HOL_THREADS="1 4"; HOL_MODELS=${HOL_MODELS:-"baton asio"}
  HOL_DURATION=1.0; HOL_WARMUP=0.3
else
  DURATION=3.0; WARMUP=0.5; REPS=${REPS:-3}; BUDGET=${BUDGET:-0}
  PINGPONG="1:0 10:0 100:0 1000:0 100:1000 100:5000 100:10000"
  BARRIER="100 1000"
  HOL_SLOW="0 1 2 4"; HOL_THREADS="1 2 4"
  HOL_MODELS=${HOL_MODELS:-"baton asio asio-pt reuseport poll select threads"}
  HOL_DURATION=2.0; HOL_WARMUP=0.5
fi
case "$SCENARIO" in
  main) HOL_MODELS="" ;;
  hol) MODELS=""; PINGPONG=""; BARRIER="" ;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT/bin" "$OUT/logs"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"

echo "== building (-c opt)" >&2
bazel build -c opt //server:echo //server/compare:baton_echo \
  //server/compare:asio_echo //server/compare:poll_echo \
  //server/compare:select_echo //server/compare:thread_echo \
  //server/compare:reuseport_echo //client:bench //client:deadconn \
  >"$OUT/logs/build.log" 2>&1 || { cat "$OUT/logs/build.log" >&2; exit 1; }
for b in server/echo server/compare/baton_echo server/compare/asio_echo \
         server/compare/poll_echo server/compare/select_echo \
         server/compare/thread_echo server/compare/reuseport_echo \
         client/bench client/deadconn; do
  cp -f "bazel-bin/$b" "$OUT/bin/"
done
if [[ -n "$BASE_ECHO" ]]; then
  [[ -x "$BASE_ECHO" ]] || { echo "compare.sh: --base_echo=$BASE_ECHO is not an executable" >&2; exit 2; }
  cp -f "$BASE_ECHO" "$OUT/bin/echo_base"
fi
for vname in $VARIANT_NAMES; do
  [[ -x "${VARIANT_PATH[$vname]}" ]] ||
    { echo "compare.sh: --variant=$vname=${VARIANT_PATH[$vname]} is not an executable" >&2; exit 2; }
  cp -f "${VARIANT_PATH[$vname]}" "$OUT/bin/echo_variant_$vname"
done
BIN="$OUT/bin"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

server_cmd() {
  case "$1" in
    baton) echo "$BIN/echo --threads=1" ;;
    baton-t2) echo "$BIN/echo --threads=2" ;;
    base) echo "$BIN/echo_base --threads=1" ;;
    base-t2) echo "$BIN/echo_base --threads=2" ;;
    asio) echo "$BIN/asio_echo --threads=1" ;;
    asio-t2) echo "$BIN/asio_echo --threads=2" ;;
    poll) echo "$BIN/poll_echo" ;;
    select) echo "$BIN/select_echo" ;;
    threads) echo "$BIN/thread_echo" ;;
    *-t2) echo "$BIN/echo_variant_${1%-t2} --threads=2" ;;  # --variant
    *) echo "$BIN/echo_variant_$1 --threads=1" ;;
  esac
}
server_threads() { case "$1" in *-t2) echo 2 ;; *) echo 1 ;; esac; }

# Head-of-line servers: hol_server_cmd MODEL THREADS. The slow rule is on in
# every run (0-slow runs too), so the only difference is the marked traffic.
hol_server_cmd() {
  local slow="--slow_us=$HOL_SLOW_US --slow_mode=sleep"
  case "$1" in
    baton) echo "$BIN/baton_echo --threads=$2 $slow" ;;
    base) echo "$BIN/echo_base --threads=$2 $slow" ;;
    asio) echo "$BIN/asio_echo --threads=$2 --io_contexts=shared $slow" ;;
    asio-pt) echo "$BIN/asio_echo --threads=$2 --io_contexts=per_thread $slow" ;;
    reuseport) echo "$BIN/reuseport_echo --threads=$2 $slow" ;;
    poll|select) echo "$BIN/${1}_echo $slow" ;;
    threads) echo "$BIN/thread_echo $slow" ;;
    *) echo "$BIN/echo_variant_$1 --threads=$2 $slow" ;;  # --variant
  esac
}
# Models with their own fixed threading run at one thread count only.
hol_fixed_threads() { case "$1" in poll|select|threads) return 0 ;; *) return 1 ;; esac; }

SERVER_PID=""
DEAD_PID=""
cleanup() {
  [[ -n "$DEAD_PID" ]] && kill "$DEAD_PID" 2>/dev/null || true
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# start_server MODEL LOG [COMMAND] -> sets SERVER_PID, PORT
start_server() {
  local log="$2" cmd="${3:-$(server_cmd "$1")}"
  # shellcheck disable=SC2086
  taskset -c 0 $cmd --port=0 2>"$log" &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 100); do
    PORT=$(grep -o 'listening on [^ ]*:[0-9]*' "$log" | sed 's/.*://' || true)
    [[ -n "$PORT" ]] && return 0
    sleep 0.05
  done
  echo "compare.sh: $1 did not start; see $log" >&2
  return 1
}

stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# start_deadconn N LOG: holds N idle connections; waits until held.
start_deadconn() {
  taskset -c 1 "$BIN/deadconn" --port="$PORT" --connections="$1" \
    --duration=600 >"$2" 2>&1 &
  DEAD_PID=$!
  for _ in $(seq 1200); do
    grep -q '^holding' "$2" && return 0
    kill -0 "$DEAD_PID" 2>/dev/null || break
    sleep 0.05
  done
  return 1
}

stop_deadconn() {
  kill -INT "$DEAD_PID" 2>/dev/null || true
  wait "$DEAD_PID" 2>/dev/null || true
  DEAD_PID=""
}

# On-CPU nanoseconds of all threads of process $1 (schedstat: ns precision).
cpu_ns() {
  local total=0 f
  for f in /proc/"$1"/task/*/schedstat; do
    total=$((total + $(cut -d' ' -f1 "$f" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

json_field() {  # json_field NAME < json
  python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

RAW="$OUT/raw.csv"
echo "model,server_threads,scenario,connections,idle,slow,rep,measure,value" >"$RAW"
record() { echo "$1,$(server_threads "$1"),$2,$3,$4,0,$5,$6,$7" >>"$RAW"; }
# hol_record MODEL THREADS SLOW REP MEASURE VALUE
hol_record() { echo "$1,$2,hol,$HOL_CONNS,0,$3,$4,$5,$6" >>"$RAW"; }

# Runs per repetition, for progress and the time estimate.
n_models=$(wc -w <<<"$MODELS")
per_rep=$(( n_models * ($(wc -w <<<"$PINGPONG") + $(wc -w <<<"$BARRIER")) ))
for model in $HOL_MODELS; do
  if hol_fixed_threads "$model"; then n_threads=1; else n_threads=$(wc -w <<<"$HOL_THREADS"); fi
  per_rep=$(( per_rep + n_threads * $(wc -w <<<"$HOL_SLOW") ))
done
n_costs=0
for m in baton asio; do [[ " $MODELS " == *" $m "* ]] && n_costs=$((n_costs + 2)); done
total=$(( REPS * per_rep + n_costs ))
step=0
start_time=$(date +%s)
fmt_s() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
progress() {
  step=$((step + 1))
  local now=$(( $(date +%s) - start_time ))
  local left=$(( now * (total - step) / step ))
  printf '[%3d/%d %s, ~%s left] %s\n' "$step" "$total" "$(fmt_s "$now")" \
    "$(fmt_s "$left")" "$*" >&2
}

# run_hol MODEL THREADS SLOW REP: one head-of-line run, fast/slow split.
run_hol() {
  local model=$1 threads=$2 slow=$3 rep=$4
  local tag="$model-hol-t$threads-s$slow-$rep" fields="NA NA NA NA NA NA"
  if start_server "$model" "$OUT/logs/$tag.server.log" "$(hol_server_cmd "$model" "$threads")"; then
    if json=$(taskset -c 1 "$BIN/bench" --mode=pingpong --port="$PORT" \
                --connections="$HOL_CONNS" --slow_connections="$slow" \
                --size=64 --duration="$HOL_DURATION" --warmup="$HOL_WARMUP" \
                --json 2>"$OUT/logs/$tag.bench.log"); then
      fields=$(python3 -c 'import json,sys
j = json.load(sys.stdin); f, s = j["fast"], j["slow"]
print(f["latency_us"]["p50"], f["latency_us"]["p99"], f["latency_us"]["p999"],
      f["rate"], s["rate"] if s["round_trips"] else "NA",
      s["latency_us"]["p99"] if s["round_trips"] else "NA")' <<<"$json")
    fi
    stop_server
  fi
  local names="fast_p50_us fast_p99_us fast_p999_us fast_round_trips_per_s slow_round_trips_per_s slow_p99_us"
  local -a v=($fields) n=($names)
  local i
  for i in "${!n[@]}"; do hol_record "$model" "$threads" "$slow" "$rep" "${n[$i]}" "${v[$i]}"; done
  progress "$model hol threads=$threads slow=$slow/$HOL_CONNS rep=$rep: fast p99 ${v[1]} us"
}

# Costs, baton vs asio, one server thread: syscalls per round trip (strace
# counts calls; its slowdown does not matter here) and resident memory per
# idle connection. Run first, so that --budget sees their time.
for model in baton asio; do
  [[ " $MODELS " == *" $model "* ]] || continue
  tag="$model-costs"
  if start_server "$model" "$OUT/logs/$tag.server.log"; then
    strace -f -c -o "$OUT/logs/$tag.strace" -p "$SERVER_PID" 2>/dev/null &
    STRACE_PID=$!
    sleep 0.5
    if json=$(taskset -c 1 "$BIN/bench" --mode=pingpong --port="$PORT" \
                --connections=100 --size=64 --duration=2 --json \
                2>"$OUT/logs/$tag.bench.log"); then
      rts=$(json_field round_trips <<<"$json")
      kill -INT "$STRACE_PID" 2>/dev/null || true
      wait "$STRACE_PID" 2>/dev/null || true
      calls=$(awk '$NF=="total" {print $(NF-2)}' "$OUT/logs/$tag.strace")
      waits=$(awk '$NF=="rt_sigtimedwait" {print $(NF-1)}' "$OUT/logs/$tag.strace")
      per=$(python3 -c "print(round(($calls - ${waits:-0}) / max($rts, 1), 3))")
      record "$model" costs 100 0 1 syscalls_per_round_trip "$per"
    else
      kill -INT "$STRACE_PID" 2>/dev/null || true
      wait "$STRACE_PID" 2>/dev/null || true
      per=NA
    fi
    progress "$model syscalls per round trip: $per"
    before=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
    per=NA
    if start_deadconn 10000 "$OUT/logs/$tag.dead.log"; then
      sleep 1
      after=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
      per=$(python3 -c "print(round(($after - $before) * 1024 / 10000))")
      record "$model" costs 0 10000 1 rss_bytes_per_idle_connection "$per"
      stop_deadconn
    fi
    progress "$model RSS per idle connection: $per bytes"
    stop_server
  else
    step=$((step + 2))
  fi
done

REPS_DONE=0
REP_MAX_S=0
for rep in $(seq "$REPS"); do
  rep_start=$(date +%s)
  if ((rep > 1 && BUDGET > 0)); then
    elapsed=$(( rep_start - start_time ))
    if (( elapsed + REP_MAX_S > BUDGET )); then
      echo "compare.sh: stopping after $REPS_DONE of $REPS repetitions:" \
        "another takes ~${REP_MAX_S}s and ${elapsed}s of the ${BUDGET}s" \
        "budget are gone (--budget=0 lifts the bound)" >&2
      break
    fi
  fi
  for model in $MODELS; do
    for pair in $PINGPONG; do
      conns=${pair%%:*}; idle=${pair##*:}
      tag="$model-pp-$conns-$idle-$rep"
      value=NA
      if ((QUICK)) && [[ "$model" == threads && "$idle" -ge 1000 ]]; then
        # A thread per idle connection: starting and joining 10,000 threads
        # took 5 of --quick's 7 minutes here. The full run measures it.
        progress "$model pingpong conns=$conns idle=$idle rep=$rep: skipped in --quick"
        continue
      fi
      if start_server "$model" "$OUT/logs/$tag.server.log"; then
        if [[ "$idle" -eq 0 ]] || start_deadconn "$idle" "$OUT/logs/$tag.dead.log"; then
          cpu0=$(cpu_ns "$SERVER_PID")
          if json=$(taskset -c 1 "$BIN/bench" --mode=pingpong --port="$PORT" \
                      --connections="$conns" --size=64 --duration="$DURATION" \
                      --warmup="$WARMUP" --json 2>"$OUT/logs/$tag.bench.log"); then
            value=$(json_field rate <<<"$json")
            all=$(json_field all_round_trips <<<"$json")
            cpu=$(python3 -c "print(round(($(cpu_ns "$SERVER_PID") - $cpu0) / 1000 / max($all, 1), 3))")
            record "$model" pingpong "$conns" "$idle" "$rep" server_cpu_us_per_round_trip "$cpu"
          fi
        fi
        [[ -n "$DEAD_PID" ]] && stop_deadconn
        stop_server
      fi
      record "$model" pingpong "$conns" "$idle" "$rep" round_trips_per_s "$value"
      progress "$model pingpong conns=$conns idle=$idle rep=$rep: $value rt/s"
    done
    for threads in $BARRIER; do
      tag="$model-barrier-$threads-$rep"
      value=NA
      if start_server "$model" "$OUT/logs/$tag.server.log"; then
        if json=$(taskset -c 1 "$BIN/bench" --mode=barrier --port="$PORT" \
                    --threads="$threads" --json 2>"$OUT/logs/$tag.bench.log"); then
          value=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["avg_us"]["mean"])' <<<"$json")
        fi
        stop_server
      fi
      record "$model" barrier "$threads" 0 "$rep" mean_avg_us "$value"
      progress "$model barrier threads=$threads rep=$rep: $value us"
    done
  done
  # Head-of-line: per cell, the models back to back.
  for threads in $HOL_THREADS; do
    for slow in $HOL_SLOW; do
      for model in $HOL_MODELS; do
        if hol_fixed_threads "$model" && [[ "$threads" != "${HOL_THREADS%% *}" ]]; then
          continue
        fi
        run_hol "$model" "$(hol_fixed_threads "$model" && echo 1 || echo "$threads")" "$slow" "$rep"
      done
    done
  done
  REPS_DONE=$rep
  rep_s=$(( $(date +%s) - rep_start ))
  (( rep_s > REP_MAX_S )) && REP_MAX_S=$rep_s
  total=$(( step + (REPS - rep) * per_rep ))
done

python3 "$ROOT/tools/compare_report.py" --out="$OUT" --quick="$QUICK" \
  --duration="$DURATION" --reps="$REPS_DONE" --planned_reps="$REPS" \
  --budget="$BUDGET" --hol_duration="$HOL_DURATION" --hol_conns="$HOL_CONNS" \
  --hol_slow_us="$HOL_SLOW_US"
if [[ "$HTTP" == 1 ]]; then
  progress "HTTP comparison with nginx (tools/http_compare.sh)"
  "$ROOT/tools/http_compare.sh" --out="$OUT/http" --reps="$REPS"
fi
echo "== done in $(( $(date +%s) - start_time )) s: $OUT/report.md" >&2
