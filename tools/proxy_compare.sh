#!/usr/bin/env bash
# Compares //server:proxy with HAProxy (`mode tcp`, one thread) in front of
# //server:echo: each proxy pinned to core 0, the echo server and the load
# (//client:bench --mode=pingpong, 64-byte messages) on core 1, loopback.
# A "direct" row (bench straight to echo) shows what the proxy hop costs.
# Runs are interleaved proxy by proxy; medians reported (table + PNG).
#
#   tools/proxy_compare.sh --out=DIR [--reps=3] [--duration=3] [--conns="1 10 100"]
#
# Needs haproxy and gnuplot: `tools/setup.sh --bench` installs them.
set -euo pipefail

OUT=""; REPS=3; DURATION=3; CONNS="1 10 100"
for arg in "$@"; do
  case "$arg" in
    --out=*) OUT="${arg#--out=}" ;;
    --reps=*) REPS="${arg#--reps=}" ;;
    --duration=*) DURATION="${arg#--duration=}" ;;
    --conns=*) CONNS="${arg#--conns=}" ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "proxy_compare.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
[[ -n "$OUT" ]] || { echo "proxy_compare.sh: --out=DIR is required" >&2; exit 2; }
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || { echo "--reps must be a positive integer" >&2; exit 2; }
for c in $CONNS; do
  [[ "$c" =~ ^[1-9][0-9]*$ ]] || { echo "--conns: '$c' is not a positive integer" >&2; exit 2; }
done
for tool in haproxy gnuplot python3 taskset; do
  command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || {
    echo "proxy_compare.sh: $tool missing; run tools/setup.sh --bench" >&2; exit 1; }
done
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT/logs" "$OUT/bin"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"
echo "== building (-c opt)" >&2
bazel build -c opt //server:proxy //server:echo //client:bench >"$OUT/logs/build.log" 2>&1 ||
  { cat "$OUT/logs/build.log" >&2; exit 1; }
cp -f bazel-bin/server/proxy bazel-bin/server/echo bazel-bin/client/bench "$OUT/bin/"
ulimit -n 65536 2>/dev/null || true

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {  # wait_port PORT: true once something accepts on it
  for _ in $(seq 200); do
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
      "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

PID=""; ECHO_PID=""
cleanup() {
  [[ -n "$PID" ]] && kill "$PID" 2>/dev/null
  [[ -n "$ECHO_PID" ]] && kill "$ECHO_PID" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT

ECHO_PORT=$(free_port)
taskset -c 1 "$OUT/bin/echo" --threads=1 --port="$ECHO_PORT" 2>"$OUT/logs/echo.log" &
ECHO_PID=$!
wait_port "$ECHO_PORT" || { echo "proxy_compare.sh: echo did not come up" >&2; exit 1; }

start() {  # start PROXY -> PID, PORT (direct: the echo server itself)
  PORT=$(free_port)
  case "$1" in
    direct) PORT=$ECHO_PORT; PID=""; return 0 ;;
    baton)
      taskset -c 0 "$OUT/bin/proxy" --threads=1 --port="$PORT" \
        --upstream="127.0.0.1:$ECHO_PORT" 2>"$OUT/logs/baton-proxy.log" & PID=$! ;;
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
  bind 127.0.0.1:$PORT
  default_backend echo
backend echo
  server echo 127.0.0.1:$ECHO_PORT
CFG
      taskset -c 0 "$HAPROXY" -db -f "$OUT/haproxy.cfg" \
        >"$OUT/logs/haproxy.log" 2>&1 & PID=$! ;;
  esac
  wait_port "$PORT" && return 0
  echo "proxy_compare.sh: $1 did not come up" >&2
  return 1
}
stop() {
  [[ -n "$PID" ]] || return 0
  kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""
}

RAW="$OUT/raw.csv"
echo "proxy,connections,rep,round_trips_per_s,p50_us,p99_us" >"$RAW"
PROXIES="baton haproxy direct"
n_conns=$(wc -w <<<"$CONNS")
total=$((REPS * 3 * n_conns)); step=0; t0=$(date +%s)
for rep in $(seq "$REPS"); do
  for proxy in $PROXIES; do
    for conns in $CONNS; do
      fields="NA NA NA"
      if start "$proxy"; then
        log="$OUT/logs/$proxy-c$conns-$rep"
        if json=$(timeout $((DURATION * 3 + 60)) taskset -c 1 "$OUT/bin/bench" \
                    --mode=pingpong --port="$PORT" --connections="$conns" \
                    --size=64 --duration="$DURATION" --warmup=0.5 --json \
                    2>"$log.err"); then
          echo "$json" >"$log.json"
          fields=$(python3 -c 'import json,sys
j = json.load(sys.stdin)
print(j["rate"], j["latency_us"]["p50"], j["latency_us"]["p99"])' <<<"$json" || echo "NA NA NA")
        fi
        stop
      fi
      read -r rate p50 p99 <<<"$fields"
      echo "$proxy,$conns,$rep,$rate,$p50,$p99" >>"$RAW"
      step=$((step + 1))
      printf '[%2d/%d %4ds] %s c=%s rep %d: %s round trips/s, p99 %s us\n' "$step" "$total" \
        $(( $(date +%s) - t0 )) "$proxy" "$conns" "$rep" "$rate" "$p99" >&2
    done
  done
done

python3 - "$OUT" "$CONNS" <<'PY'
import csv, statistics, sys, os
out, conns = sys.argv[1], sys.argv[2].split()
rows = list(csv.DictReader(open(os.path.join(out, "raw.csv"))))
proxies = ["baton", "haproxy", "direct"]
def med(p, c, field):
    v = [float(r[field]) for r in rows
         if r["proxy"] == p and r["connections"] == c and r[field] not in ("NA", "")]
    return statistics.median(v) if v else None
with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["proxy", "connections", "round_trips_per_s_median", "p50_us_median", "p99_us_median"])
    for p in proxies:
        for c in conns:
            w.writerow([p, c] + [round(m, 1) if m is not None else "NA" for m in
                                 (med(p, c, "round_trips_per_s"), med(p, c, "p50_us"), med(p, c, "p99_us"))])
fmt = lambda v: f"{v:,.0f}" if v is not None else "NA"
lines = ["# TCP proxy comparison: baton //server:proxy vs HAProxy (mode tcp, nbthread 1)\n",
         "Proxy pinned to core 0; //server:echo (1 thread) and `bench --mode=pingpong --size=64` on core 1;",
         "loopback; medians of interleaved runs. `direct` is the bench straight to echo (no proxy hop).\n",
         "| proxy | " + " | ".join(f"{c} conn round trips/s (p99 us)" for c in conns) + " |",
         "|---|" + "---:|" * len(conns)]
for p in proxies:
    lines.append(f"| {p} | " + " | ".join(
        f"{fmt(med(p, c, 'round_trips_per_s'))} ({fmt(med(p, c, 'p99_us'))})" for c in conns) + " |")
lines.append("")
r = [f"{c} conn: {med('baton', c, 'round_trips_per_s') / med('haproxy', c, 'round_trips_per_s'):.2f}x"
     for c in conns if med("baton", c, "round_trips_per_s") and med("haproxy", c, "round_trips_per_s")]
lines.append("- baton / haproxy round trips/s: " + ", ".join(r))
open(os.path.join(out, "report.md"), "w").write("\n".join(lines) + "\n")
with open(os.path.join(out, "proxy.dat"), "w") as f:
    for i, c in enumerate(conns):
        f.write(f"{i} {c} " + " ".join(str(med(p, c, "round_trips_per_s") or 0) for p in proxies) + "\n")
PY
gnuplot <<GP
set terminal pngcairo size 900,520 noenhanced
set output '$OUT/proxy.png'
set title 'TCP proxy in front of echo, proxy on one core (round trips/s, median)'
set xlabel 'connections'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set grid y
set key top left
plot '$OUT/proxy.dat' using 3:xtic(2) title 'baton proxy', '' using 4 title 'haproxy', '' using 5 title 'direct (no proxy)'
GP
cat "$OUT/report.md"
echo "== done: $OUT/report.md, $OUT/proxy.png" >&2
