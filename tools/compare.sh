#!/usr/bin/env bash
# Compares dispatch models on echo ping-pong, with and without idle
# connections, and the kecho-style barrier bench (issue: dispatch
# comparison). Servers run pinned to core 0, all load on core 1; runs are
# interleaved model by model (A B A B ...) and medians reported.
#
#   tools/compare.sh [--quick] --out=DIR [--reps=N] [--models=a,b,...] [--http]
#
# Writes DIR/raw.csv (every run), DIR/results.csv (medians), DIR/report.md
# and DIR/*.png. Loopback only. --quick trims the grid to a few minutes.
# --http also runs the HTTP comparison against nginx (tools/http_compare.sh)
# into DIR/http/.
set -euo pipefail

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  echo "models: baton baton-t2 asio asio-t2 poll select threads"
}

QUICK=0
HTTP=0
OUT=""
REPS=""
MODELS="baton baton-t2 asio asio-t2 poll select threads"
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --http) HTTP=1 ;;
    --out=*) OUT="${arg#--out=}" ;;
    --reps=*) REPS="${arg#--reps=}" ;;
    --models=*) MODELS="${arg#--models=}"; MODELS="${MODELS//,/ }" ;;
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
for m in $MODELS; do
  case "$m" in baton|baton-t2|asio|asio-t2|poll|select|threads) ;;
    *) echo "compare.sh: unknown model '$m'" >&2; usage >&2; exit 2 ;;
  esac
done
if [[ $(nproc) -lt 2 ]]; then
  echo "compare.sh: needs 2 cores (server on core 0, load on core 1)" >&2
  exit 1
fi

if ((QUICK)); then
  DURATION=1.0; WARMUP=0.3; REPS=${REPS:-3}
  PINGPONG="1:0 100:0 100:10000"      # connections:idle
  BARRIER="100"
else
  DURATION=3.0; WARMUP=0.5; REPS=${REPS:-3}
  PINGPONG="1:0 10:0 100:0 1000:0 100:1000 100:5000 100:10000"
  BARRIER="100 1000"
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT/bin" "$OUT/logs"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"

echo "== building (-c opt)" >&2
bazel build -c opt //server:echo //server:asio_echo //server:poll_echo \
  //server:select_echo //server:thread_echo //client:bench //client:deadconn \
  >"$OUT/logs/build.log" 2>&1 || { cat "$OUT/logs/build.log" >&2; exit 1; }
for b in server/echo server/asio_echo server/poll_echo server/select_echo \
         server/thread_echo client/bench client/deadconn; do
  cp -f "bazel-bin/$b" "$OUT/bin/"
done
BIN="$OUT/bin"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

server_cmd() {
  case "$1" in
    baton) echo "$BIN/echo --threads=1" ;;
    baton-t2) echo "$BIN/echo --threads=2" ;;
    asio) echo "$BIN/asio_echo --threads=1" ;;
    asio-t2) echo "$BIN/asio_echo --threads=2" ;;
    poll) echo "$BIN/poll_echo" ;;
    select) echo "$BIN/select_echo" ;;
    threads) echo "$BIN/thread_echo" ;;
  esac
}
server_threads() { case "$1" in *-t2) echo 2 ;; *) echo 1 ;; esac; }

SERVER_PID=""
DEAD_PID=""
cleanup() {
  [[ -n "$DEAD_PID" ]] && kill "$DEAD_PID" 2>/dev/null || true
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# start_server MODEL LOG -> sets SERVER_PID, PORT
start_server() {
  local log="$2"
  # shellcheck disable=SC2046
  taskset -c 0 $(server_cmd "$1") --port=0 2>"$log" &
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
echo "model,server_threads,scenario,connections,idle,rep,measure,value" >"$RAW"
record() { echo "$1,$(server_threads "$1"),$2,$3,$4,$5,$6,$7" >>"$RAW"; }

n_models=$(wc -w <<<"$MODELS")
total=$(( REPS * n_models * ($(wc -w <<<"$PINGPONG") + $(wc -w <<<"$BARRIER")) ))
for m in baton asio; do [[ " $MODELS " == *" $m "* ]] && total=$((total + 2)); done
step=0
start_time=$(date +%s)
progress() {
  step=$((step + 1))
  printf '[%3d/%d %4ds] %s\n' "$step" "$total" $(( $(date +%s) - start_time )) "$*" >&2
}

for rep in $(seq "$REPS"); do
  for model in $MODELS; do
    for pair in $PINGPONG; do
      conns=${pair%%:*}; idle=${pair##*:}
      tag="$model-pp-$conns-$idle-$rep"
      value=NA
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
done

# Costs, baton vs asio, one server thread: syscalls per round trip (strace
# counts calls; its slowdown does not matter here) and resident memory per
# idle connection.
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
      progress "$model syscalls per round trip: $per"
    else
      kill -INT "$STRACE_PID" 2>/dev/null || true
      wait "$STRACE_PID" 2>/dev/null || true
    fi
    before=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
    if start_deadconn 10000 "$OUT/logs/$tag.dead.log"; then
      sleep 1
      after=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
      per=$(python3 -c "print(round(($after - $before) * 1024 / 10000))")
      record "$model" costs 0 10000 1 rss_bytes_per_idle_connection "$per"
      progress "$model RSS per idle connection: $per bytes"
      stop_deadconn
    fi
    stop_server
  fi
done

python3 "$ROOT/tools/compare_report.py" --out="$OUT" --quick="$QUICK" \
  --duration="$DURATION" --reps="$REPS"
if [[ "$HTTP" == 1 ]]; then
  progress "HTTP comparison with nginx (tools/http_compare.sh)"
  "$ROOT/tools/http_compare.sh" --out="$OUT/http" --reps="$REPS"
fi
echo "== done in $(( $(date +%s) - start_time )) s: $OUT/report.md" >&2
