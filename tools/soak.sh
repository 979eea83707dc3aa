#!/usr/bin/env bash
# Soak test: //server:echo and //server:http, built with a sanitizer, under
# a mixed load for a bounded time: bench ping-pong and HTTP (keep-alive and
# connection per request), deadconn holding idle and half-sent requests, and
# tools/soak_chaos.py (half-closes, resets mid-transfer, slow readers,
# pipelining). After the load stops and the idle timeouts have passed, each
# server's descriptor count must be back to its baseline and its RSS near
# it; any sanitizer report, failed check, dead server or unclean exit fails
# the soak. Loopback only.
#
#   tools/soak.sh [--seconds=60] [--config=tsan|asan|none] [--out=DIR]
#
# Writes DIR/soak.csv (per round: fds and RSS of each server) and
# DIR/soak.png; logs in DIR/logs. Exit status 0 only if everything held.
set -euo pipefail

SECONDS_TOTAL=60; CONFIG=tsan; OUT=""
for arg in "$@"; do
  case "$arg" in
    --seconds=*) SECONDS_TOTAL="${arg#--seconds=}" ;;
    --config=*) CONFIG="${arg#--config=}" ;;
    --out=*) OUT="${arg#--out=}" ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
[[ "$SECONDS_TOTAL" =~ ^[1-9][0-9]*$ && "$SECONDS_TOTAL" -le 3600 ]] ||
  { echo "soak.sh: --seconds must be 1..3600" >&2; exit 2; }
case "$CONFIG" in tsan|asan) BAZEL_CONFIG=(--config="$CONFIG") ;;
  none) BAZEL_CONFIG=() ;;
  *) echo "soak.sh: --config must be tsan, asan or none" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
[[ -n "$OUT" ]] || OUT="$(mktemp -d /tmp/baton-soak.XXXXXX)"
mkdir -p "$OUT/logs" "$OUT/bin" "$OUT/www"
OUT="$(cd "$OUT" && pwd)"
t0=$(date +%s)
say() { printf '[soak %4ds] %s\n' $(( $(date +%s) - t0 )) "$*" >&2; }

say "building (${BAZEL_CONFIG[*]:-plain}) into $OUT/bin"
(cd "$ROOT" && bazel build "${BAZEL_CONFIG[@]}" //server:echo //server:http \
   //client:bench //client:deadconn) >"$OUT/logs/build.log" 2>&1 ||
  { tail -30 "$OUT/logs/build.log" >&2; exit 1; }
BIN="$(cd "$ROOT" && bazel info "${BAZEL_CONFIG[@]}" bazel-bin 2>/dev/null)"
for b in server/echo server/http client/bench client/deadconn; do
  cp -f "$BIN/$b" "$OUT/bin/"
done

printf 'soak\n' >"$OUT/www/small.txt"
head -c $((4 << 20)) /dev/urandom >"$OUT/www/big.bin"

export TSAN_OPTIONS="halt_on_error=1 exitcode=66"
export ASAN_OPTIONS="detect_leaks=1 abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1"
ulimit -n 8192 2>/dev/null || true

ECHO_PID=""; HTTP_PID=""
cleanup() {
  for p in $ECHO_PID $HTTP_PID; do kill -KILL "$p" 2>/dev/null || true; done
  jobs -p | xargs -r kill 2>/dev/null || true
}
trap cleanup EXIT

wait_port() {  # LOG -> port
  for _ in $(seq 300); do
    port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$1" | head -1)
    [[ -n "$port" ]] && { echo "$port"; return 0; }
    sleep 0.1
  done
  echo "soak.sh: server did not start; see $1" >&2; return 1
}

"$OUT/bin/echo" --port=0 --threads=2 --idle_timeout_ms=3000 \
  --write_timeout_ms=5000 >"$OUT/logs/echo.log" 2>&1 & ECHO_PID=$!
"$OUT/bin/http" --port=0 --threads=2 --root="$OUT/www" \
  --keepalive_timeout_ms=2000 --write_timeout_ms=5000 \
  >"$OUT/logs/http.log" 2>&1 & HTTP_PID=$!
ECHO_PORT=$(wait_port "$OUT/logs/echo.log")
HTTP_PORT=$(wait_port "$OUT/logs/http.log")
say "echo on $ECHO_PORT (pid $ECHO_PID), http on $HTTP_PORT (pid $HTTP_PID)"

fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
alive() {
  kill -0 "$ECHO_PID" 2>/dev/null || { say "FAIL: echo server died"; return 1; }
  kill -0 "$HTTP_PID" 2>/dev/null || { say "FAIL: http server died"; return 1; }
}

FAILED=0
round() {  # N SECONDS
  local n=$1 secs=$2 pids=() names=() logs=() i
  job() {  # NAME LOG COMMAND...: runs COMMAND in the background
    names+=("$1"); logs+=("$2"); shift 2
    "$@" >"${logs[-1]}" 2>&1 &
    pids+=($!)
  }
  job "bench pingpong" "$OUT/logs/r$n-pingpong.txt" \
    "$OUT/bin/bench" --mode=pingpong --port="$ECHO_PORT" --connections=20 \
    --duration="$secs" --warmup=0 --size=512
  job "bench http keep-alive" "$OUT/logs/r$n-http-keepalive.txt" \
    "$OUT/bin/bench" --mode=http --port="$HTTP_PORT" --path=/small.txt \
    --keepalive --connections=10 --requests=$((secs * 1000))
  job "bench http close" "$OUT/logs/r$n-http-close.txt" \
    "$OUT/bin/bench" --mode=http --port="$HTTP_PORT" --path=/small.txt \
    --connections=10 --requests=$((secs * 300))
  # deadconn fails if the server closes its connections: hold them for less
  # than the idle timeouts (echo 3 s, http 2 s).
  job "deadconn echo" "$OUT/logs/r$n-deadconn-echo.txt" \
    "$OUT/bin/deadconn" --port="$ECHO_PORT" --connections=300 --duration=2
  job "deadconn http (partial requests)" "$OUT/logs/r$n-deadconn-http.txt" \
    "$OUT/bin/deadconn" --port="$HTTP_PORT" --connections=300 \
    --partial_request --duration=1
  job "chaos" "$OUT/logs/r$n-chaos.txt" \
    python3 "$ROOT/tools/soak_chaos.py" --echo="$ECHO_PORT" --http="$HTTP_PORT" \
    --big_file="$OUT/www/big.bin" --seconds="$secs" --seed="$n"
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      say "FAIL: round $n: ${names[$i]} failed; last lines of ${logs[$i]}:"
      tail -5 "${logs[$i]}" >&2
      FAILED=1
    fi
  done
  alive || FAILED=1
  say "round $n: $(head -1 "$OUT/logs/r$n-chaos.txt"); echo fds $(fds $ECHO_PID) rss $(rss_kb $ECHO_PID) KB; http fds $(fds $HTTP_PID) rss $(rss_kb $HTTP_PID) KB"
}

settle() {  # let idle and keep-alive timeouts close what the load left
  sleep 5
}

ROUND_SECONDS=$(( SECONDS_TOTAL < 20 ? SECONDS_TOTAL : 10 ))
say "warm-up round (${ROUND_SECONDS}s), then the baseline"
round 0 "$ROUND_SECONDS"
settle
BASE_ECHO_FDS=$(fds $ECHO_PID); BASE_HTTP_FDS=$(fds $HTTP_PID)
BASE_ECHO_RSS=$(rss_kb $ECHO_PID); BASE_HTTP_RSS=$(rss_kb $HTTP_PID)
echo "round,elapsed_s,echo_fds,echo_rss_kb,http_fds,http_rss_kb" >"$OUT/soak.csv"
echo "0,$(( $(date +%s) - t0 )),$BASE_ECHO_FDS,$BASE_ECHO_RSS,$BASE_HTTP_FDS,$BASE_HTTP_RSS" >>"$OUT/soak.csv"
say "baseline: echo fds $BASE_ECHO_FDS rss $BASE_ECHO_RSS KB; http fds $BASE_HTTP_FDS rss $BASE_HTTP_RSS KB"

end=$(( $(date +%s) + SECONDS_TOTAL ))
n=1
while [[ $FAILED == 0 && $(date +%s) -lt $end && $n -le 360 ]]; do
  left=$(( end - $(date +%s) ))
  round "$n" $(( left < ROUND_SECONDS ? (left > 2 ? left : 2) : ROUND_SECONDS ))
  echo "$n,$(( $(date +%s) - t0 )),$(fds $ECHO_PID),$(rss_kb $ECHO_PID),$(fds $HTTP_PID),$(rss_kb $HTTP_PID)" >>"$OUT/soak.csv"
  n=$((n + 1))
done

settle
END_ECHO_FDS=$(fds $ECHO_PID); END_HTTP_FDS=$(fds $HTTP_PID)
END_ECHO_RSS=$(rss_kb $ECHO_PID); END_HTTP_RSS=$(rss_kb $HTTP_PID)
echo "$n,$(( $(date +%s) - t0 )),$END_ECHO_FDS,$END_ECHO_RSS,$END_HTTP_FDS,$END_HTTP_RSS" >>"$OUT/soak.csv"
say "after the load: echo fds $END_ECHO_FDS rss $END_ECHO_RSS KB; http fds $END_HTTP_FDS rss $END_HTTP_RSS KB"

check_back() {  # NAME BASE_FDS END_FDS BASE_RSS END_RSS
  if (( $3 > $2 )); then
    say "FAIL: $1 holds $(( $3 - $2 )) more descriptors than at the baseline"; FAILED=1
  fi
  # RSS: allocator caches (and sanitizer shadow memory) do not shrink back
  # to the byte, so allow a quarter plus 16 MiB; a leak per connection or
  # request over a soak grows far beyond that.
  if (( $5 > $4 * 5 / 4 + 16384 )); then
    say "FAIL: $1 RSS grew from $4 KB to $5 KB"; FAILED=1
  fi
}
check_back echo "$BASE_ECHO_FDS" "$END_ECHO_FDS" "$BASE_ECHO_RSS" "$END_ECHO_RSS"
check_back http "$BASE_HTTP_FDS" "$END_HTTP_FDS" "$BASE_HTTP_RSS" "$END_HTTP_RSS"

for name in echo http; do
  pid_var="${name^^}_PID"; pid=${!pid_var}
  kill -TERM "$pid" 2>/dev/null || true
  status=0; wait "$pid" || status=$?
  if [[ $status != 0 ]]; then
    say "FAIL: $name exited with status $status after SIGTERM"; FAILED=1
  fi
done
ECHO_PID=""; HTTP_PID=""
if grep -lE "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" \
     "$OUT"/logs/*.log "$OUT"/logs/*.txt >/dev/null 2>&1; then
  say "FAIL: sanitizer report in $(grep -lE "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" "$OUT"/logs/*.log "$OUT"/logs/*.txt | tr '\n' ' ')"
  FAILED=1
fi

if command -v gnuplot >/dev/null; then
  gnuplot <<GP 2>/dev/null || say "plot failed (gnuplot)"
set terminal pngcairo size 900,520 noenhanced
set output '$OUT/soak.png'
set datafile separator ','
set title 'soak (${CONFIG}): descriptors and RSS per round'
set xlabel 'seconds'
set ylabel 'open descriptors'
set y2label 'RSS (MiB)'
set y2tics
set ytics nomirror
set yrange [0:*]
set y2range [0:*]
set key top left
plot '$OUT/soak.csv' skip 1 using 2:3 with linespoints title 'echo fds', \
     '' skip 1 using 2:5 with linespoints title 'http fds', \
     '' skip 1 using 2:(\$4/1024) axes x1y2 with lines title 'echo RSS', \
     '' skip 1 using 2:(\$6/1024) axes x1y2 with lines title 'http RSS'
GP
fi

if [[ $FAILED == 0 ]]; then
  say "PASS: $((n - 1)) rounds; descriptors back to baseline, RSS bounded, no sanitizer report, clean exits ($OUT)"
else
  say "FAILED (logs in $OUT/logs)"
fi
exit "$FAILED"
