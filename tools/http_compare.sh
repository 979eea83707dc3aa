#!/usr/bin/env bash
# Compares //server:http with nginx (one worker) on a 128-byte body, server
# pinned to core 0 and load (wrk, httperf, bench) to core 1, loopback only.
# Runs are interleaved server by server and medians reported.
#
#   tools/http_compare.sh --out=DIR [--reps=3] [--duration=3]
#
# Needs wrk, httperf and nginx: `tools/setup.sh --bench` installs them.
set -euo pipefail

OUT=""; REPS=3; DURATION=3
for arg in "$@"; do
  case "$arg" in
    --out=*) OUT="${arg#--out=}" ;;
    --reps=*) REPS="${arg#--reps=}" ;;
    --duration=*) DURATION="${arg#--duration=}" ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "http_compare.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
[[ -n "$OUT" ]] || { echo "http_compare.sh: --out=DIR is required" >&2; exit 2; }
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || { echo "--reps must be a positive integer" >&2; exit 2; }
for tool in wrk httperf nginx gnuplot; do
  command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || {
    echo "http_compare.sh: $tool missing; run tools/setup.sh --bench" >&2; exit 1; }
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT/www" "$OUT/logs" "$OUT/bin"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"
echo "== building (-c opt)" >&2
bazel build -c opt //server:http //client:bench >"$OUT/logs/build.log" 2>&1 ||
  { cat "$OUT/logs/build.log" >&2; exit 1; }
cp -f bazel-bin/server/http bazel-bin/client/bench "$OUT/bin/"
head -c 128 /dev/zero | tr '\0' 'x' >"$OUT/www/index.html"
ulimit -n 65536 2>/dev/null || true

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

PID=""
cleanup() { [[ -n "$PID" ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

start() {  # start SERVER -> PID, PORT
  PORT=$(free_port)
  case "$1" in
    baton-fixed)
      taskset -c 0 "$OUT/bin/http" --threads=1 --port="$PORT" \
        --response_size=128 2>"$OUT/logs/$1.log" & PID=$! ;;
    baton-file)
      taskset -c 0 "$OUT/bin/http" --threads=1 --port="$PORT" \
        --root="$OUT/www" 2>"$OUT/logs/$1.log" & PID=$! ;;
    nginx|nginx-deferred)
      # nginx-deferred: the same with `listen ... deferred` (TCP_DEFER_ACCEPT),
      # which baton's http uses by default (--defer_accept_seconds=1).
      local deferred=""
      [[ "$1" == nginx-deferred ]] && deferred=" deferred"
      cat >"$OUT/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
master_process off;
error_log $OUT/logs/nginx.error.log;
pid $OUT/nginx.pid;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000000;
  client_body_temp_path $OUT/tmp;
  proxy_temp_path $OUT/tmp;
  fastcgi_temp_path $OUT/tmp;
  uwsgi_temp_path $OUT/tmp;
  scgi_temp_path $OUT/tmp;
  server { listen 127.0.0.1:$PORT$deferred; root $OUT/www; }
}
NGINX
      mkdir -p "$OUT/tmp"
      taskset -c 0 /usr/sbin/nginx -c "$OUT/nginx.conf" -p "$OUT" \
        2>"$OUT/logs/$1.log" & PID=$! ;;
  esac
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/index.html" && return 0
    sleep 0.05
  done
  echo "http_compare.sh: $1 did not come up" >&2
  return 1
}
stop() { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; }

RAW="$OUT/raw.csv"
echo "server,load,rep,requests_per_s,errors" >"$RAW"
SERVERS="baton-fixed baton-file nginx nginx-deferred"
LOADS="wrk-keepalive wrk-close httperf-close bench-close"
total=$((REPS * 4 * 4)); step=0; t0=$(date +%s)

for rep in $(seq "$REPS"); do
  for server in $SERVERS; do
    for load in $LOADS; do
      rate=NA; errors=NA
      if start "$server"; then
        url="http://127.0.0.1:$PORT/index.html"
        log="$OUT/logs/$server-$load-$rep.txt"
        case "$load" in
          wrk-keepalive)
            timeout 60 taskset -c 1 wrk -t1 -c100 -d"${DURATION}s" "$url" >"$log" 2>&1 || true
            rate=$(awk '/Requests\/sec/ {print $2}' "$log")
            errors=$(awk '/Non-2xx/ {n+=$NF} /Socket errors/ {gsub(",","");
              n+=$4+$6+$8+$10} END {print n+0}' "$log") ;;
          wrk-close)
            timeout 60 taskset -c 1 wrk -t1 -c50 -d"${DURATION}s" -H "Connection: close" \
              "$url" >"$log" 2>&1 || true
            rate=$(awk '/Requests\/sec/ {print $2}' "$log")
            errors=$(awk '/Non-2xx/ {n+=$NF} END {print n+0}' "$log") ;;
          httperf-close)
            # httperf's select() limits it to ~1000 descriptors: short
            # connections with two calls each, as in the /dev/epoll study.
            timeout 90 taskset -c 1 httperf --server 127.0.0.1 --port "$PORT" \
              --uri /index.html --num-conns 10000 --num-calls 2 --hog \
              --timeout 5 >"$log" 2>&1 || true
            rate=$(awk '/^Request rate:/ {print $3}' "$log")
            errors=$(awk '/^Errors: total/ {print $3}' "$log") ;;
          bench-close)
            timeout 90 taskset -c 1 "$OUT/bin/bench" --mode=http --port="$PORT" \
              --path=/index.html --threads=1 --connections=50 \
              --requests=50000 --json >"$log" 2>"$log.err" || true
            rate=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rate"])' "$log" 2>/dev/null || echo NA)
            errors=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["bad"]+d["errors"])' "$log" 2>/dev/null || echo NA) ;;
        esac
        stop
      fi
      echo "$server,$load,$rep,${rate:-NA},${errors:-NA}" >>"$RAW"
      step=$((step + 1))
      printf '[%2d/%d %4ds] %s %s rep %d: %s req/s, %s errors\n' "$step" "$total" \
        $(( $(date +%s) - t0 )) "$server" "$load" "$rep" "${rate:-NA}" "${errors:-NA}" >&2
    done
  done
done

python3 - "$OUT" <<'PY'
import csv, statistics, sys, os
out = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(out, "raw.csv"))))
servers = ["baton-fixed", "baton-file", "nginx", "nginx-deferred"]
loads = ["wrk-keepalive", "wrk-close", "httperf-close", "bench-close"]
def med(s, l):
    v = [float(r["requests_per_s"]) for r in rows
         if r["server"] == s and r["load"] == l and r["requests_per_s"] not in ("NA", "")]
    return statistics.median(v) if v else None
def errs(s, l):
    return sum(int(r["errors"]) for r in rows if r["server"] == s and r["load"] == l
               and r["errors"] not in ("NA", ""))
with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["server", "load", "requests_per_s_median", "errors_total"])
    for s in servers:
        for l in loads:
            m = med(s, l)
            w.writerow([s, l, round(m, 1) if m else "NA", errs(s, l)])
lines = ["# HTTP comparison: baton //server:http vs nginx (1 worker), 128-byte body\n",
         "nginx-deferred is nginx with `listen ... deferred` (TCP_DEFER_ACCEPT), as baton's http does by default.",
         "Server pinned to core 0, load to core 1, loopback; medians of interleaved runs.",
         "Loads: `wrk -t1 -c100` keep-alive; `wrk -t1 -c50 -H 'Connection: close'`;",
         "`httperf --num-conns 10000 --num-calls 2 --hog`; `bench --mode=http --connections=50` (HTTP/1.0, connection per request).\n",
         "| server | " + " | ".join(loads) + " |", "|---|" + "---:|" * len(loads)]
for s in servers:
    lines.append(f"| {s} | " + " | ".join(
        (f"{med(s,l):,.0f}" if med(s, l) else "NA") + (f" ({errs(s,l)} err)" if errs(s, l) else "")
        for l in loads) + " |")
lines.append("")
for s in ("baton-fixed", "baton-file"):
    r = [f"{l}: {med(s,l)/med('nginx',l):.2f}x" for l in loads if med(s, l) and med("nginx", l)]
    lines.append(f"- {s} / nginx: " + ", ".join(r))
    r = [f"{l}: {med(s,l)/med('nginx-deferred',l):.2f}x" for l in loads
         if med(s, l) and med("nginx-deferred", l)]
    lines.append(f"- {s} / nginx-deferred: " + ", ".join(r))
open(os.path.join(out, "report.md"), "w").write("\n".join(lines) + "\n")
with open(os.path.join(out, "http.dat"), "w") as f:
    for i, l in enumerate(loads):
        f.write(f"{i} {l} " + " ".join(str(med(s, l) or 0) for s in servers) + "\n")
PY
gnuplot <<GP
set terminal pngcairo size 900,520 noenhanced
set output '$OUT/http.png'
set title 'HTTP 128-byte body, server on one core (requests/s, median)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set grid y
set key top right
plot '$OUT/http.dat' using 3:xtic(2) title 'baton fixed', '' using 4 title 'baton file', '' using 5 title 'nginx', '' using 6 title 'nginx deferred'
GP
echo "== done: $OUT/report.md, $OUT/http.png" >&2
