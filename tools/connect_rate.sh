#!/usr/bin/env bash
# What a connect costs //server:proxy: it relays connection-per-request
# HTTP (//client:bench --mode=http --keepalive=false) to //server:http, so
# every client connection makes the proxy open one upstream connection
# through Reactor::Connect and the request rate is a connect rate. Two
# comparisons, each A B A B so that drift falls on both:
#
#   names (default): the upstream given as an IP literal
#       (--upstream=127.0.0.1:PORT) and as a name (--upstream=localhost:PORT);
#       with a name each connect first looks it up (c-ares on the reactor's
#       own epoll: /etc/hosts, then the resolver configuration).
#   --tls: the upstream serves HTTPS (a certificate made for the run) and
#       the proxy originates TLS (--upstream_tls); every upstream connect a
#       full handshake (--upstream_tls_resumption=false) against resuming
#       the session an earlier upstream connection received (the default).
#
#   tools/connect_rate.sh --out=DIR [--tls] [--reps=5] [--requests=20000]
#
# The proxy runs on core 0 with one thread; the HTTP server (one thread,
# 128-byte bodies) and the load on core 1. Writes DIR/raw.csv (one row per
# run, with the proxy's and the upstream's CPU per request from /proc),
# DIR/report.md (medians and the B/A ratio) and DIR/connect.png.
# Loopback only. Needs gnuplot and openssl (tools/setup.sh).
set -euo pipefail

OUT=""; REPS=5; REQUESTS=20000; TLS=0
for arg in "$@"; do
  case "$arg" in
    --out=*) OUT="${arg#--out=}" ;;
    --reps=*) REPS="${arg#--reps=}" ;;
    --requests=*) REQUESTS="${arg#--requests=}" ;;
    --tls) TLS=1 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "connect_rate.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$OUT" ]] || { echo "connect_rate.sh: --out=DIR is required" >&2; exit 2; }
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || { echo "--reps must be a positive integer" >&2; exit 2; }
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ ]] || { echo "--requests must be a positive integer" >&2; exit 2; }
for tool in gnuplot python3 taskset openssl; do
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
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

http_tls=()
if ((TLS)); then
  VARIANTS=(full resumed)
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>"$OUT/openssl.log"
  http_tls=(--tls_cert="$OUT/cert.pem" --tls_key="$OUT/key.pem")
else
  VARIANTS=(literal name)
fi
start "$OUT/http.log" taskset -c 1 "$BIN/server/http" --port=0 --threads=1 \
  --response_size=128 "${http_tls[@]}"
HTTP_PORT=$PORT
HTTP_PID=${PIDS[-1]}
echo "rep,variant,rate,p50_us,p99_us,p999_us,errors,proxy_cpu_us,upstream_cpu_us" >"$OUT/raw.csv"
for ((rep = 1; rep <= REPS; rep++)); do
  for variant in "${VARIANTS[@]}"; do
    host=127.0.0.1; args=()
    case "$variant" in
      name) host=localhost ;;
      full|resumed)
        args=(--upstream_tls --upstream_ca="$OUT/cert.pem" --upstream_server_name=localhost)
        [[ "$variant" == full ]] && args+=(--upstream_tls_resumption=false) ;;
    esac
    log="$OUT/proxy-$variant-$rep.log"
    start "$log" taskset -c 0 "$BIN/server/proxy" --port=0 --threads=1 \
      --upstream="$host:$HTTP_PORT" "${args[@]}"
    port=$PORT
    p0=$(cpu_ticks "${PIDS[-1]}"); u0=$(cpu_ticks "$HTTP_PID")
    json=$(taskset -c 1 "$BIN/client/bench" --mode=http --host=127.0.0.1 --port="$port" \
      --keepalive=false --threads=1 --requests="$REQUESTS" --json)
    p1=$(cpu_ticks "${PIDS[-1]}"); u1=$(cpu_ticks "$HTTP_PID")
    kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'
    python3 - "$rep" "$variant" "$json" "$((p1 - p0))" "$((u1 - u0))" "$(getconf CLK_TCK)" \
      >>"$OUT/raw.csv" <<'EOF'
import json, sys
rep, variant, r = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
proxy_ticks, upstream_ticks, hz = (int(a) for a in sys.argv[4:7])
l = r["latency_us"]
n = max(r["requests"], 1)
print(f"{rep},{variant},{r['rate']},{l['p50']},{l['p99']},{l['p999']},{r['bad'] + r['errors']},"
      f"{1e6 * proxy_ticks / hz / n:.1f},{1e6 * upstream_ticks / hz / n:.1f}")
EOF
    echo "connect_rate: rep $rep/$REPS $variant: $(tail -1 "$OUT/raw.csv" | cut -d, -f3) requests/s" >&2
  done
done

python3 - "$OUT" "$REPS" "$REQUESTS" "${VARIANTS[@]}" <<'EOF'
import csv, statistics, sys
out, reps, requests, a, b = sys.argv[1:6]
rows = list(csv.DictReader(open(f"{out}/raw.csv")))
by = {v: [r for r in rows if r["variant"] == v] for v in (a, b)}
med = lambda v, k: statistics.median(float(r[k]) for r in by[v])
ratios = [float(y["rate"]) / float(x["rate"]) for x, y in zip(by[a], by[b])]
tls = a == "full"
with open(f"{out}/report.md", "w") as f:
    if tls:
        f.write("# Connect rate: upstream TLS sessions resumed against full handshakes\n\n")
        f.write(f"`tools/connect_rate.sh --out=DIR --tls --reps={reps} --requests={requests}`: "
                "//server:proxy (1 thread, core 0, `--upstream_tls`) relaying "
                "connection-per-request HTTP to //server:http serving HTTPS (RSA-2048, "
                "core 1); load on core 1. `full`: `--upstream_tls_resumption=false`. "
                "Medians of the runs.\n\n")
    else:
        f.write("# Connect rate: upstream by name against by literal\n\n")
        f.write(f"`tools/connect_rate.sh --out=DIR --reps={reps} --requests={requests}`: "
                "//server:proxy (1 thread, core 0) relaying connection-per-request HTTP "
                "to //server:http (core 1); load on core 1. Medians of the runs.\n\n")
    f.write("| upstream | requests/s | p50 µs | p99 µs | p99.9 µs | errors "
            "| proxy CPU µs/request | upstream CPU µs/request |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|\n")
    for v in (a, b):
        errs = sum(int(r["errors"]) for r in by[v])
        f.write(f"| {v} | {med(v,'rate'):,.0f} | {med(v,'p50_us'):.0f} | {med(v,'p99_us'):.0f} | "
                f"{med(v,'p999_us'):.0f} | {errs} | {med(v,'proxy_cpu_us'):.1f} | "
                f"{med(v,'upstream_cpu_us'):.1f} |\n")
    f.write(f"\n{b} / {a}, paired by repetition: median {statistics.median(ratios):.3f} "
            f"(range {min(ratios):.3f}-{max(ratios):.3f}).\n")
with open(f"{out}/plot.dat", "w") as f:
    for x, y in zip(by[a], by[b]):
        f.write(f"{x['rep']} {x['rate']} {y['rate']}\n")
print(open(f"{out}/report.md").read())
EOF
if ((TLS)); then
  title="Proxy connect rate: upstream TLS, full handshakes and resumed sessions"
  la="full handshake"; lb="resumed"
else
  title="Proxy connect rate: upstream by literal and by name"
  la="127.0.0.1"; lb="localhost"
fi
gnuplot <<EOF
set terminal pngcairo size 800,450
set output "$OUT/connect.png"
set title "$title"
set xlabel "repetition"; set ylabel "requests/s (one upstream connect each)"
set yrange [0:*]; set key bottom right; set grid
plot "$OUT/plot.dat" using 1:2 with linespoints title "$la", \
     "$OUT/plot.dat" using 1:3 with linespoints title "$lb"
EOF
echo "connect_rate: wrote $OUT/report.md and $OUT/connect.png" >&2
