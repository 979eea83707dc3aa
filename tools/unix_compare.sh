#!/usr/bin/env bash
# Benchmarks over Unix domain sockets, two parts:
#   echo:  64-byte ping-pong against //server:echo on a Unix socket (baton)
#          and //server/compare:asio_echo on asio::local::stream_protocol
#          (one shared io_context), both --threads=1; models baton-tcp and
#          asio-tcp run the same load over TCP loopback for reference.
#   proxy: //server:proxy vs HAProxy (mode tcp, nbthread 1, `server s1
#          unix@PATH`), each relaying TCP clients to //server:echo on a Unix
#          socket; `direct` is the bench straight to that Unix echo.
# As tools/compare.sh and tools/proxy_compare.sh: the server under test
# (echo server, or proxy) pinned to core 0, the load (and the proxies'
# upstream echo) on core 1; every server restarted for every run; runs
# interleaved (each rep: each model, each connection count); medians
# reported. Server CPU per round trip is read from /proc/PID/stat around
# each run (warm-up included).
#
#   tools/unix_compare.sh --out=DIR [--reps=3] [--duration=3]
#       [--conns="1 10 100"] [--models="baton asio baton-tcp asio-tcp"]
#       [--proxies="baton haproxy direct"] [--scenario=all|echo|proxy]
#
# Writes DIR/raw.csv (every run), DIR/results.csv (medians), DIR/report.md,
# DIR/echo.png and DIR/proxy.png; logs in DIR/logs/. Socket files live in
# a fresh /tmp/baton-unix-compare.XXXXXX directory (sun_path is short),
# removed at exit. Defaults: 3 x (4 models + 3 proxies) x 3 counts = 63
# runs of --duration + 0.5 s warm-up + ~0.5 s: about 4-5 minutes.
# Needs haproxy (proxy part) and gnuplot: `tools/setup.sh --bench`.
set -euo pipefail

OUT=""; REPS=3; DURATION=3; CONNS="1 10 100"; SCENARIO=all
MODELS="baton asio baton-tcp asio-tcp"; PROXIES="baton haproxy direct"
for arg in "$@"; do
  case "$arg" in
    --out=*) OUT="${arg#--out=}" ;;
    --reps=*) REPS="${arg#--reps=}" ;;
    --duration=*) DURATION="${arg#--duration=}" ;;
    --conns=*) CONNS="${arg#--conns=}" ;;
    --models=*) MODELS="${arg#--models=}"; MODELS="${MODELS//,/ }" ;;
    --proxies=*) PROXIES="${arg#--proxies=}"; PROXIES="${PROXIES//,/ }" ;;
    --scenario=*) SCENARIO="${arg#--scenario=}" ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unix_compare.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$OUT" ]] || { echo "unix_compare.sh: --out=DIR is required" >&2; exit 2; }
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || { echo "--reps must be a positive integer" >&2; exit 2; }
[[ "$DURATION" =~ ^[0-9]+(\.[0-9]+)?$ && "$DURATION" != 0 && "$DURATION" != 0.0 ]] ||
  { echo "--duration must be a positive number of seconds" >&2; exit 2; }
for c in $CONNS; do
  [[ "$c" =~ ^[1-9][0-9]{0,3}$ ]] && (( c <= 8000 )) ||
    { echo "--conns: '$c' is not an integer in 1..8000" >&2; exit 2; }
done
[[ -n "${CONNS// /}" ]] || { echo "--conns is empty: nothing to run" >&2; exit 2; }
for m in $MODELS; do
  case "$m" in baton|asio|baton-tcp|asio-tcp) ;;
    *) echo "unix_compare.sh: unknown model '$m' (baton asio baton-tcp asio-tcp)" >&2; exit 2 ;;
  esac
done
for p in $PROXIES; do
  case "$p" in baton|haproxy|direct) ;;
    *) echo "unix_compare.sh: unknown proxy '$p' (baton haproxy direct)" >&2; exit 2 ;;
  esac
done
case "$SCENARIO" in
  all) ;;
  echo) PROXIES="" ;;
  proxy) MODELS="" ;;
  *) echo "unix_compare.sh: --scenario must be all, echo or proxy" >&2; exit 2 ;;
esac
[[ -n "$MODELS$PROXIES" ]] || { echo "unix_compare.sh: nothing to run" >&2; exit 2; }
need="gnuplot python3 taskset"
[[ " $PROXIES " == *" haproxy "* ]] && need+=" haproxy"
for tool in $need; do
  command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || {
    echo "unix_compare.sh: $tool missing; run tools/setup.sh --bench" >&2; exit 1; }
done
if [[ $(nproc) -lt 2 ]]; then
  echo "unix_compare.sh: needs 2 cores (server on core 0, load on core 1)" >&2; exit 1
fi
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT/logs" "$OUT/bin"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"
echo "== building (-c opt)" >&2
bazel build -c opt //server:echo //server:proxy //server/compare:asio_echo \
  //client:bench >"$OUT/logs/build.log" 2>&1 ||
  { cat "$OUT/logs/build.log" >&2; exit 1; }
cp -f bazel-bin/server/echo bazel-bin/server/proxy \
  bazel-bin/server/compare/asio_echo bazel-bin/client/bench "$OUT/bin/"
BIN="$OUT/bin"
ulimit -n 65536 2>/dev/null || true
SOCKDIR=$(mktemp -d /tmp/baton-unix-compare.XXXXXX)

PID=""; ECHO_PID=""
cleanup() {
  [[ -n "$PID" ]] && kill "$PID" 2>/dev/null
  [[ -n "$ECHO_PID" ]] && kill "$ECHO_PID" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$SOCKDIR"
}
trap cleanup EXIT

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# wait_ready ENDPOINT: true once something accepts on ENDPOINT, a TCP port
# or unix:PATH.
wait_ready() {
  for _ in $(seq 200); do
    "$PYTHON" -c 'import socket, sys
e = sys.argv[1]
if e.startswith("unix:"):
    s = socket.socket(socket.AF_UNIX); s.settimeout(1); s.connect(e[5:]); s.close()
else:
    socket.create_connection(("127.0.0.1", int(e)), 1).close()' "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# start_echo MODEL -> PID, TARGET (the bench's --host/--port arguments).
start_echo() {
  local model=$1 sock="$SOCKDIR/echo.sock" bin
  case "$model" in baton*) bin="$BIN/echo" ;; asio*) bin="$BIN/asio_echo" ;; esac
  local extra=""
  [[ "$model" == asio* ]] && extra="--io_contexts=shared"
  if [[ "$model" == *-tcp ]]; then
    local port; port=$(free_port)
    # shellcheck disable=SC2086
    taskset -c 0 "$bin" --threads=1 $extra --port="$port" \
      2>"$OUT/logs/echo-$model.log" & PID=$!
    TARGET="--port=$port"; wait_ready "$port" && return 0
  else
    # shellcheck disable=SC2086
    taskset -c 0 "$bin" --threads=1 $extra --address="unix:$sock" \
      2>"$OUT/logs/echo-$model.log" & PID=$!
    TARGET="--host=unix:$sock"; wait_ready "unix:$sock" && return 0
  fi
  echo "unix_compare.sh: $model did not come up (see logs/echo-$model.log)" >&2
  return 1
}

UPSTREAM="$SOCKDIR/upstream.sock"
# start_proxy PROXY -> PID, TARGET. `direct`: the Unix echo itself.
start_proxy() {
  local port; port=$(free_port)
  case "$1" in
    direct) PID=""; TARGET="--host=unix:$UPSTREAM"; return 0 ;;
    baton)
      taskset -c 0 "$BIN/proxy" --threads=1 --port="$port" \
        --upstream="unix:$UPSTREAM" 2>"$OUT/logs/proxy-baton.log" & PID=$! ;;
    haproxy)
      cat >"$OUT/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend front
  bind 127.0.0.1:$port
  default_backend echo
backend echo
  server s1 unix@$UPSTREAM
CFG
      taskset -c 0 "$HAPROXY" -db -f "$OUT/haproxy.cfg" \
        >"$OUT/logs/proxy-haproxy.log" 2>&1 & PID=$! ;;
  esac
  TARGET="--port=$port"
  wait_ready "$port" && return 0
  echo "unix_compare.sh: $1 did not come up (see logs/proxy-$1.log)" >&2
  return 1
}

stop() {
  [[ -n "$PID" ]] || return 0
  kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""
}

cpu_ticks() {  # user+system clock ticks of process $1 (NA without one)
  [[ -n "$1" && -r "/proc/$1/stat" ]] || { echo NA; return; }
  awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo NA
}
per_round_trip() {  # per_round_trip TICKS0 TICKS1 RATE -> us per round trip
  [[ "$1" != NA && "$2" != NA && "$3" != NA ]] || { echo NA; return; }
  "$PYTHON" -c 'import os, sys
t0, t1, rate, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
hz = os.sysconf("SC_CLK_TCK")
print(round((t1 - t0) * 1e6 / hz / (rate * secs), 2) if rate > 0 else "NA")' \
    "$1" "$2" "$3" "$(python3 -c "print($DURATION + 0.5)")"
}

RAW="$OUT/raw.csv"
echo "part,model,connections,rep,round_trips_per_s,p50_us,p99_us,cpu_us_per_rt" >"$RAW"
n_runs=$(( ($(wc -w <<<"$MODELS") + $(wc -w <<<"$PROXIES")) * $(wc -w <<<"$CONNS") ))
total=$((REPS * n_runs)); step=0; t0=$(date +%s)
echo "== $total runs of ${DURATION} s (+0.5 s warm-up); sockets in $SOCKDIR" >&2

# measure PART MODEL CONNS REP: one bench run against $TARGET; server $PID.
measure() {
  local part=$1 model=$2 conns=$3 rep=$4 fields="NA NA NA" cpu=NA json
  local log="$OUT/logs/$part-$model-c$conns-$rep"
  local ticks0; ticks0=$(cpu_ticks "$PID")
  # shellcheck disable=SC2086
  if json=$(timeout "$(python3 -c "print(int($DURATION * 3 + 60))")" \
              taskset -c 1 "$BIN/bench" --mode=pingpong $TARGET \
              --connections="$conns" --size=64 --duration="$DURATION" \
              --warmup=0.5 --json 2>"$log.err"); then
    echo "$json" >"$log.json"
    fields=$("$PYTHON" -c 'import json,sys
j = json.load(sys.stdin)
print(j["rate"], j["latency_us"]["p50"], j["latency_us"]["p99"])' <<<"$json" || echo "NA NA NA")
    cpu=$(per_round_trip "$ticks0" "$(cpu_ticks "$PID")" "${fields%% *}")
  fi
  local rate p50 p99
  read -r rate p50 p99 <<<"$fields"
  echo "$part,$model,$conns,$rep,$rate,$p50,$p99,$cpu" >>"$RAW"
  step=$((step + 1))
  printf '[%2d/%d %4ds] %s %s %d conn rep %d: %s round trips/s, p50 %s us, p99 %s us, server CPU %s us/round trip\n' \
    "$step" "$total" $(( $(date +%s) - t0 )) "$part" "$model" "$conns" "$rep" \
    "$rate" "$p50" "$p99" "$cpu" >&2
}

if [[ -n "$PROXIES" ]]; then
  # The proxies' upstream: baton's echo on a Unix socket, on core 1.
  taskset -c 1 "$BIN/echo" --threads=1 --address="unix:$UPSTREAM" \
    2>"$OUT/logs/upstream-echo.log" & ECHO_PID=$!
  wait_ready "unix:$UPSTREAM" ||
    { echo "unix_compare.sh: the upstream echo did not come up" >&2; exit 1; }
fi

for rep in $(seq "$REPS"); do
  for model in $MODELS; do
    for conns in $CONNS; do
      if start_echo "$model"; then
        measure echo "$model" "$conns" "$rep"
        stop
      else
        echo "echo,$model,$conns,$rep,NA,NA,NA,NA" >>"$RAW"; step=$((step + 1))
      fi
    done
  done
  for proxy in $PROXIES; do
    for conns in $CONNS; do
      if start_proxy "$proxy"; then
        measure proxy "$proxy" "$conns" "$rep"
        stop
      else
        echo "proxy,$proxy,$conns,$rep,NA,NA,NA,NA" >>"$RAW"; step=$((step + 1))
      fi
    done
  done
done

COMMAND="tools/unix_compare.sh --out=$OUT --reps=$REPS --duration=$DURATION --conns=\"$CONNS\" --scenario=$SCENARIO"
VERSIONS="baton $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)'), $([[ " $PROXIES " == *" haproxy "* ]] && "$HAPROXY" -v 2>/dev/null | head -1 | cut -d' ' -f1-3), $(nproc) cores, Linux $(uname -r)"
"$PYTHON" - "$OUT" "$CONNS" "$REPS" "$DURATION" "$COMMAND" "$VERSIONS" "$MODELS" "$PROXIES" <<'PY'
import csv, os, statistics, sys
out, conns, reps, duration, command, versions = (
    sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
parts = {"echo": sys.argv[7].split(), "proxy": sys.argv[8].split()}
rows = list(csv.DictReader(open(os.path.join(out, "raw.csv"))))
def med(part, model, c, field):
    v = [float(r[field]) for r in rows if r["part"] == part and r["model"] == model
         and r["connections"] == c and r[field] not in ("NA", "")]
    return statistics.median(v) if v else None
fmt = lambda v: f"{v:,.0f}" if v is not None else "NA"
fmt1 = lambda v: f"{v:,.1f}" if v is not None else "NA"
ratio = lambda a, b: f"{a / b:.2f}x" if a is not None and b else "NA"
fields = ["round_trips_per_s", "p50_us", "p99_us", "cpu_us_per_rt"]
with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["part", "model", "connections", "runs_ok"] + [x + "_median" for x in fields])
    for part, models in parts.items():
        for m in models:
            for c in conns:
                ok = sum(1 for r in rows if r["part"] == part and r["model"] == m and
                         r["connections"] == c and r["round_trips_per_s"] not in ("NA", ""))
                w.writerow([part, m, c, ok] + [
                    round(v, 2) if (v := med(part, m, c, x)) is not None else "NA"
                    for x in fields])
lines = ["# Unix domain sockets: baton vs Asio (echo), baton proxy vs HAProxy (Unix upstream)\n",
         f"Medians of {reps} interleaved runs of {duration} s (+0.5 s warm-up), 64-byte ping-pong;",
         "server under test pinned to core 0, load on core 1, every server restarted per run.\n",
         f"How measured: `{command}` ({versions}).\n"]
def table(part, title, names):
    if not parts[part]:
        return []
    out = [f"## {title}\n",
           "| model | " + " | ".join(f"{c} conn round trips/s (p50 / p99 us)" for c in conns) +
           " | " + " | ".join(f"{c} conn CPU us/rt" for c in conns) + " |",
           "|---|" + "---:|" * (2 * len(conns))]
    for m in parts[part]:
        out.append(f"| {names.get(m, m)} | " + " | ".join(
            f"{fmt(med(part, m, c, 'round_trips_per_s'))} ({fmt1(med(part, m, c, 'p50_us'))} / "
            f"{fmt1(med(part, m, c, 'p99_us'))})" for c in conns) + " | " + " | ".join(
            fmt1(med(part, m, c, "cpu_us_per_rt")) for c in conns) + " |")
    return out + [""]
lines += table("echo", "Echo ping-pong: baton vs Asio local::stream_protocol (one thread each)",
               {"baton": "baton (unix)", "asio": "asio (unix)",
                "baton-tcp": "baton (tcp)", "asio-tcp": "asio (tcp)"})
if parts["echo"]:
    for a, b in (("baton", "asio"), ("baton-tcp", "asio-tcp"), ("baton", "baton-tcp")):
        if a in parts["echo"] and b in parts["echo"]:
            lines.append(f"- {a} / {b} round trips/s: " + ", ".join(
                f"{c} conn: " + ratio(med("echo", a, c, "round_trips_per_s"),
                                      med("echo", b, c, "round_trips_per_s")) for c in conns))
    lines.append("")
lines += table("proxy", "Proxy to a Unix upstream: baton //server:proxy vs HAProxy (server s1 unix@PATH)",
               {"direct": "direct (no proxy)"})
if parts["proxy"] and "baton" in parts["proxy"] and "haproxy" in parts["proxy"]:
    lines.append("- baton / HAProxy round trips/s: " + ", ".join(
        f"{c} conn: " + ratio(med("proxy", "baton", c, "round_trips_per_s"),
                              med("proxy", "haproxy", c, "round_trips_per_s")) for c in conns))
    lines.append("- CPU is the proxy's (the direct row has none: NA).\n")
failed = sum(1 for r in rows if r["round_trips_per_s"] in ("NA", ""))
if failed:
    lines.append(f"- {failed} of {len(rows)} runs failed (NA in raw.csv; see logs/)")
open(os.path.join(out, "report.md"), "w").write("\n".join(lines) + "\n")
for part, models in parts.items():
    with open(os.path.join(out, f"{part}.dat"), "w") as f:
        f.write("conns " + " ".join(models) + "\n")
        for c in conns:
            f.write(f"{c} " + " ".join(str(med(part, m, c, "round_trips_per_s") or 0)
                                       for m in models) + "\n")
PY
plot() {  # plot PART TITLE: clustered histogram of PART.dat -> PART.png
  local n; n=$(head -1 "$OUT/$1.dat" | wc -w)
  gnuplot <<GP
set terminal pngcairo size 900,520 noenhanced
set output '$OUT/$1.png'
set title '$2'
set xlabel 'connections'
set ylabel 'round trips/s (median)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set grid y
set key top left autotitle columnheader
plot for [i=2:$n] '$OUT/$1.dat' using i:xtic(1)
GP
}
pngs=""
if [[ -n "$MODELS" ]]; then
  plot echo 'Echo ping-pong over a Unix socket, server on one core (64 B)'
  pngs+=", $OUT/echo.png"
fi
if [[ -n "$PROXIES" ]]; then
  plot proxy 'TCP clients -> proxy -> Unix socket echo, proxy on one core (64 B)'
  pngs+=", $OUT/proxy.png"
fi
cat "$OUT/report.md"
echo "== done: $OUT/report.md$pngs" >&2
