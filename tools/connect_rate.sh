#!/usr/bin/env bash
# What looking a name up costs a connect: //server:proxy relaying
# connection-per-request HTTP (//client:bench --mode=http --keepalive=false)
# to //server:http, with the upstream given as an IP literal
# (--upstream=127.0.0.1:PORT) and as a name (--upstream=localhost:PORT).
# Every client connection makes the proxy open one upstream connection
# through Reactor::Connect, so the request rate is a connect rate; with a
# name, each connect first looks it up (c-ares on the reactor's own epoll:
# /etc/hosts, then the resolver configuration).
#
#   tools/connect_rate.sh --out=DIR [--reps=5] [--requests=20000]
#
# The proxy runs on core 0 with one thread; the HTTP server (one thread,
# 128-byte bodies) and the load on core 1. Literal and name alternate
# (A B A B), so drift falls on both. Writes DIR/raw.csv (one row per run),
# DIR/report.md (medians and the name/literal ratio) and DIR/connect.png.
# Loopback only. Needs gnuplot (tools/setup.sh).
set -euo pipefail

OUT=""; REPS=5; REQUESTS=20000
for arg in "$@"; do
  case "$arg" in
    --out=*) OUT="${arg#--out=}" ;;
    --reps=*) REPS="${arg#--reps=}" ;;
    --requests=*) REQUESTS="${arg#--requests=}" ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "connect_rate.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$OUT" ]] || { echo "connect_rate.sh: --out=DIR is required" >&2; exit 2; }
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || { echo "--reps must be a positive integer" >&2; exit 2; }
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ ]] || { echo "--requests must be a positive integer" >&2; exit 2; }
for tool in gnuplot python3 taskset; do
  command -v "$tool" >/dev/null || { echo "connect_rate.sh: $tool missing; run tools/setup.sh" >&2; exit 1; }
done
getent hosts localhost | grep -q '^127\.0\.0\.1' ||
  { echo "connect_rate.sh: localhost must resolve to 127.0.0.1 (/etc/hosts)" >&2; exit 1; }

cd "$(dirname "$0")/.."
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
echo "connect_rate: building (-c opt --config=bench)" >&2
bazel build -c opt --config=bench //server:proxy //server:http //client:bench >&2
BIN="$(bazel info -c opt --config=bench bazel-bin 2>/dev/null)"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# start LOG COMMAND...: runs it in the background (its pid last in PIDS),
# waits for its "listening on HOST:PORT" line and sets PORT.
start() {
  local log="$1" port="" i
  shift
  "$@" >"$log" 2>&1 &
  PIDS+=($!)
  for ((i = 0; i < 100; i++)); do
    port=$(grep -oE 'listening on [^ ]+:[0-9]+' "$log" | head -1 | grep -oE '[0-9]+$' || true)
    [[ -n "$port" ]] && break
    sleep 0.1
  done
  [[ -n "$port" ]] || { echo "connect_rate.sh: no 'listening on' in $log" >&2; cat "$log" >&2; exit 1; }
  PORT="$port"
}

start "$OUT/http.log" taskset -c 1 "$BIN/server/http" --port=0 --threads=1 \
  --response_size=128
HTTP_PORT=$PORT
echo "rep,upstream,rate,p50_us,p99_us,p999_us,errors" >"$OUT/raw.csv"
for ((rep = 1; rep <= REPS; rep++)); do
  for upstream in literal name; do
    host=127.0.0.1; [[ "$upstream" == name ]] && host=localhost
    log="$OUT/proxy-$upstream-$rep.log"
    start "$log" taskset -c 0 "$BIN/server/proxy" --port=0 --threads=1 \
      --upstream="$host:$HTTP_PORT"
    port=$PORT
    json=$(taskset -c 1 "$BIN/client/bench" --mode=http --host=127.0.0.1 --port="$port" \
      --keepalive=false --threads=1 --requests="$REQUESTS" --json)
    kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'
    python3 - "$rep" "$upstream" "$json" >>"$OUT/raw.csv" <<'EOF'
import json, sys
rep, upstream, r = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
l = r["latency_us"]
print(f"{rep},{upstream},{r['rate']},{l['p50']},{l['p99']},{l['p999']},{r['bad'] + r['errors']}")
EOF
    echo "connect_rate: rep $rep/$REPS $upstream: $(tail -1 "$OUT/raw.csv" | cut -d, -f3) requests/s" >&2
  done
done

python3 - "$OUT" "$REPS" "$REQUESTS" <<'EOF'
import csv, statistics, sys
out, reps, requests = sys.argv[1], sys.argv[2], sys.argv[3]
rows = list(csv.DictReader(open(f"{out}/raw.csv")))
by = {u: [r for r in rows if r["upstream"] == u] for u in ("literal", "name")}
med = lambda u, k: statistics.median(float(r[k]) for r in by[u])
ratios = [float(n["rate"]) / float(l["rate"]) for l, n in zip(by["literal"], by["name"])]
with open(f"{out}/report.md", "w") as f:
    f.write("# Connect rate: upstream by name against by literal\n\n")
    f.write(f"`tools/connect_rate.sh --out=DIR --reps={reps} --requests={requests}`: "
            "//server:proxy (1 thread, core 0) relaying connection-per-request HTTP "
            "to //server:http (core 1); load on core 1. Medians of the runs.\n\n")
    f.write("| upstream | requests/s | p50 µs | p99 µs | p99.9 µs | errors |\n|---|---:|---:|---:|---:|---:|\n")
    for u in ("literal", "name"):
        errs = sum(int(r["errors"]) for r in by[u])
        f.write(f"| {u} | {med(u,'rate'):,.0f} | {med(u,'p50_us'):.0f} | {med(u,'p99_us'):.0f} | "
                f"{med(u,'p999_us'):.0f} | {errs} |\n")
    f.write(f"\nname / literal, paired by repetition: median {statistics.median(ratios):.3f} "
            f"(range {min(ratios):.3f}-{max(ratios):.3f}).\n")
with open(f"{out}/plot.dat", "w") as f:
    for l, n in zip(by["literal"], by["name"]):
        f.write(f"{l['rep']} {l['rate']} {n['rate']}\n")
print(open(f"{out}/report.md").read())
EOF
gnuplot <<EOF
set terminal pngcairo size 800,450
set output "$OUT/connect.png"
set title "Proxy connect rate: upstream by literal and by name"
set xlabel "repetition"; set ylabel "requests/s (one upstream connect each)"
set yrange [0:*]; set key bottom right; set grid
plot "$OUT/plot.dat" using 1:2 with linespoints title "127.0.0.1", \
     "$OUT/plot.dat" using 1:3 with linespoints title "localhost"
EOF
echo "connect_rate: wrote $OUT/report.md and $OUT/connect.png" >&2
