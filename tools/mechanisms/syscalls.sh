#!/usr/bin/env bash
# System calls per round trip of each mechanism variant: a count, so it
# needs no quiet machine. For every build under --prebuilt (as
# build_variants.sh leaves them: DIR/NAME/baton_echo and DIR/NAME/proxy):
#   echo:  baton_echo with one thread, 100 connections of 64 B ping-pong;
#   proxy: proxy with one thread in front of the full build's echo server,
#          100 connections of 64 B ping-pong through it.
# `strace -f -c` attached to the server for 2 s of load counts the calls;
# rt_sigtimedwait (the servers' signal thread) is left out. Server on core
# 0, echo behind the proxy and the load on core 1, loopback only.
#
#   tools/mechanisms/syscalls.sh --prebuilt=DIR --out=DIR [--variants=a,b]
#
# Writes OUT/syscalls.csv and OUT/syscalls.md. Needs strace
# (tools/setup.sh --bench) and //client:bench (built here, -c opt).
set -euo pipefail

PREBUILT=""; OUT=""; VARIANTS="full,no-reread,no-yield,no-park,no-rescue,no-pollmark"
for arg in "$@"; do
  case "$arg" in
    --prebuilt=*) PREBUILT="${arg#--prebuilt=}" ;;
    --out=*) OUT="${arg#--out=}" ;;
    --variants=*) VARIANTS="${arg#--variants=}" ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "syscalls.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$PREBUILT" && -n "$OUT" ]] || { echo "syscalls.sh: --prebuilt=DIR and --out=DIR are required" >&2; exit 2; }
[[ -x "$PREBUILT/full/baton_echo" ]] || { echo "syscalls.sh: no $PREBUILT/full/baton_echo" >&2; exit 2; }
command -v strace >/dev/null || { echo "syscalls.sh: strace missing; run tools/setup.sh --bench" >&2; exit 1; }
cd "$(dirname "$0")/../.."
mkdir -p "$OUT"
bazel build -c opt --config=bench //client:bench >&2
BENCH="$(bazel info -c opt --config=bench bazel-bin 2>/dev/null)/client/bench"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start() {  # start LOG COMMAND...: runs it (pid last in PIDS), sets PORT from its "listening on" line
  local log="$1" port="" i
  shift
  "$@" >"$log" 2>&1 &
  PIDS+=($!)
  for ((i = 0; i < 100; i++)); do
    port=$(grep -oE 'listening on [^ ]+:[0-9]+' "$log" | head -1 | grep -oE '[0-9]+$' || true)
    [[ -n "$port" ]] && break
    sleep 0.1
  done
  [[ -n "$port" ]] || { echo "syscalls.sh: no 'listening on' in $log" >&2; exit 1; }
  PORT="$port"
}

# count PID PORT TAG -> syscalls per round trip under 2 s of load on PORT.
count() {
  local pid="$1" port="$2" tag="$3" json rts calls waits
  strace -f -c -o "$OUT/$tag.strace" -p "$pid" 2>/dev/null &
  local strace_pid=$!
  sleep 0.5
  json=$(taskset -c 1 "$BENCH" --mode=pingpong --port="$port" --connections=100 \
    --size=64 --duration=2 --json)
  kill -INT "$strace_pid"; wait "$strace_pid" 2>/dev/null || true
  rts=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["round_trips"])' "$json")
  calls=$(awk '$NF=="total" {print $(NF-2)}' "$OUT/$tag.strace")
  waits=$(awk '$NF=="rt_sigtimedwait" {print $(NF-1)}' "$OUT/$tag.strace")
  python3 -c "print(round(($calls - ${waits:-0}) / max($rts, 1), 2))"
}

echo "variant,echo_syscalls_per_rt,proxy_syscalls_per_rt" >"$OUT/syscalls.csv"
start "$OUT/upstream.log" taskset -c 1 "$PREBUILT/full/baton_echo" --port=0 --threads=1
UPSTREAM=$PORT
for v in ${VARIANTS//,/ }; do
  [[ -x "$PREBUILT/$v/baton_echo" ]] || { echo "syscalls.sh: no build $v" >&2; exit 2; }
  start "$OUT/$v-echo.log" taskset -c 0 "$PREBUILT/$v/baton_echo" --port=0 --threads=1
  port=$PORT
  echo_per=$(count "${PIDS[-1]}" "$port" "$v-echo")
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'
  start "$OUT/$v-proxy.log" taskset -c 0 "$PREBUILT/$v/proxy" --port=0 --threads=1 \
    --upstream="127.0.0.1:$UPSTREAM"
  port=$PORT
  proxy_per=$(count "${PIDS[-1]}" "$port" "$v-proxy")
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'
  echo "$v,$echo_per,$proxy_per" >>"$OUT/syscalls.csv"
  echo "syscalls: $v echo $echo_per, proxy $proxy_per per round trip" >&2
done
{
  echo "| build | echo: system calls per round trip | proxy: system calls per proxied round trip |"
  echo "|---|---:|---:|"
  tail -n +2 "$OUT/syscalls.csv" | while IFS=, read -r v e p; do echo "| \`$v\` | $e | $p |"; done
} >"$OUT/syscalls.md"
cat "$OUT/syscalls.md"
