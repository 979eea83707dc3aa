#!/usr/bin/env bash
# Compares //server:proxy with HAProxy (`mode tcp`, one thread) in front of
# //server:echo: each proxy pinned to core 0, the echo server and the load
# (//client:bench --mode=pingpong) on core 1, loopback. Two loads:
#   ping-pong: 64-byte messages over each --conns count of connections;
#   bulk: one connection echoing messages of each --bulk_sizes size, in
#         MB/s each way (round trips/s x size / 1e6).
# A "direct" row (bench straight to echo) shows what the proxy hop costs:
# report.md gives the added p50 (proxy p50 - direct p50) per connection count.
# Each run also reads the proxy's user+system CPU time (/proc/PID/stat)
# around the load: CPU per round trip shows the proxy's cost where its rate
# is set by core 1 (echo and load), as it usually is here.
# Runs are interleaved (each rep: each proxy, each load); medians reported
# in report.md, results.csv, proxy.png (ping-pong) and proxy_bulk.png (bulk);
# raw.csv has one row per run.
#
#   tools/proxy_compare.sh --out=DIR [--reps=3] [--duration=3]
#       [--conns="1 10 100"] [--bulk_sizes="65536 1048576"] [--base_proxy=PATH]
#       [--variant=NAME=PATH ...] [--proxies="baton haproxy direct ..."] [--tls]
#
# --tls: the proxies terminate TLS from the load and relay plaintext to the
# echo server: //server:proxy (and base, variants) with --tls_cert/--tls_key,
# HAProxy with `bind ... ssl crt` (TLS 1.2 minimum, no tickets, no session
# cache); the load is bench --tls (ping-pong and bulk alike) trusting a
# self-signed P-256 certificate the script makes with the openssl CLI in
# DIR/tls/ (TLS 1.3 with OpenSSL's default suites on both proxies; each
# proxy's negotiated protocol and cipher go into report.md). The direct row
# is then bench --tls straight to a second //server:echo serving TLS on
# core 1, so TLS is in every row and the proxy rows add the hop.
#
# --base_proxy: a //server:proxy built from another commit, run as proxy
# "base" beside baton in the same interleaved runs (before/after in one
# run; report.md adds base / HAProxy and baton / base).
# --variant=NAME=PATH (repeatable): more //server:proxy builds, run as proxy
# NAME in the same interleaved runs (tools/mechanism_ab.sh). --proxies: the
# proxies to run, in this order (default: baton, base if given, each
# variant, haproxy, direct).
# --conns: 1..8000 (haproxy.cfg maxconn); --bulk_sizes: bytes, 1..67108864.
# Either list may be "" to skip that load, not both. The defaults make 45
# runs of --duration + 0.5 s warm-up + ~0.5 s: about 3-4 minutes.
# Needs haproxy and gnuplot: `tools/setup.sh --bench` installs them.
set -euo pipefail

OUT=""; REPS=3; DURATION=3; CONNS="1 10 100"; BULK_SIZES="65536 1048576"; BASE_PROXY=""
declare -A VARIANT_PATH=(); VARIANT_NAMES=""; PROXIES=""; TLS=0
for arg in "$@"; do
  case "$arg" in
    --out=*) OUT="${arg#--out=}" ;;
    --reps=*) REPS="${arg#--reps=}" ;;
    --duration=*) DURATION="${arg#--duration=}" ;;
    --conns=*) CONNS="${arg#--conns=}" ;;
    --base_proxy=*) BASE_PROXY="${arg#--base_proxy=}" ;;
    --bulk_sizes=*) BULK_SIZES="${arg#--bulk_sizes=}" ;;
    --variant=*)
      v="${arg#--variant=}"; vname="${v%%=*}"
      [[ "$v" == *=* && "$vname" =~ ^[a-z][a-z0-9_-]*$ ]] &&
        [[ " baton base haproxy direct $VARIANT_NAMES " != *" $vname "* ]] ||
        { echo "proxy_compare.sh: --variant needs NAME=PATH with a new name in [a-z0-9_-]" >&2; exit 2; }
      VARIANT_PATH[$vname]="${v#*=}"; VARIANT_NAMES+="$vname " ;;
    --proxies=*) PROXIES="${arg#--proxies=}"; PROXIES="${PROXIES//,/ }" ;;
    --tls) TLS=1 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "proxy_compare.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$OUT" ]] || { echo "proxy_compare.sh: --out=DIR is required" >&2; exit 2; }
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || { echo "--reps must be a positive integer" >&2; exit 2; }
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] ||
  { echo "--duration must be a positive integer (seconds)" >&2; exit 2; }
check_list() {  # check_list FLAG "LIST" MAX: integers in 1..MAX, none twice
  local v seen=" "
  for v in $2; do
    if ! [[ "$v" =~ ^[1-9][0-9]{0,9}$ ]] || (( v > $3 )); then
      echo "$1: '$v' is not an integer in 1..$3" >&2; exit 2
    fi
    [[ "$seen" != *" $v "* ]] || { echo "$1: '$v' is given twice" >&2; exit 2; }
    seen+="$v "
  done
}
check_list --conns "$CONNS" 8000
if [[ -n "$BASE_PROXY" && ! -x "$BASE_PROXY" ]]; then
  echo "proxy_compare.sh: --base_proxy=$BASE_PROXY is not an executable" >&2; exit 2
fi
check_list --bulk_sizes "$BULK_SIZES" 67108864
[[ -n "${CONNS// /}${BULK_SIZES// /}" ]] ||
  { echo "proxy_compare.sh: --conns and --bulk_sizes are both empty: nothing to run" >&2; exit 2; }
TOOLS="haproxy gnuplot python3 taskset"; [[ "$TLS" == 0 ]] || TOOLS+=" openssl"
for tool in $TOOLS; do
  command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || {
    echo "proxy_compare.sh: $tool missing; run tools/setup.sh --bench" >&2; exit 1; }
done
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
# The interpreter itself, not a shim (pyenv's costs ~0.6 s a call, and a
# run makes three calls).
PYTHON=$(python3 -c 'import sys; print(sys.executable)')

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT/logs" "$OUT/bin"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"
echo "== building (-c opt)" >&2
bazel build -c opt //server:proxy //server:echo //client:bench >"$OUT/logs/build.log" 2>&1 ||
  { cat "$OUT/logs/build.log" >&2; exit 1; }
cp -f bazel-bin/server/proxy bazel-bin/server/echo bazel-bin/client/bench "$OUT/bin/"
[[ -z "$BASE_PROXY" ]] || cp -f "$BASE_PROXY" "$OUT/bin/proxy_base"
for vname in $VARIANT_NAMES; do
  [[ -x "${VARIANT_PATH[$vname]}" ]] ||
    { echo "proxy_compare.sh: --variant=$vname=${VARIANT_PATH[$vname]} is not an executable" >&2; exit 2; }
  cp -f "${VARIANT_PATH[$vname]}" "$OUT/bin/proxy_variant_$vname"
done
ulimit -n 65536 2>/dev/null || true

# --tls: a self-signed P-256 certificate for 127.0.0.1 (the load's --host),
# made for this run; HAProxy wants certificate and key in one file.
TLS_DIR="$OUT/tls"; TLS_FLAGS=(); BENCH_TLS=()
if [[ "$TLS" == 1 ]]; then
  mkdir -p "$TLS_DIR"
  rm -f "$OUT"/logs/*-tls.txt  # a reused --out keeps no earlier run's
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" -days 7 \
    -subj "/CN=proxy_compare" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    >"$OUT/logs/openssl.log" 2>&1 ||
    { cat "$OUT/logs/openssl.log" >&2; exit 1; }
  cat "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem" >"$TLS_DIR/haproxy.pem"
  TLS_FLAGS=(--tls_cert="$TLS_DIR/cert.pem" --tls_key="$TLS_DIR/key.pem")
  BENCH_TLS=(--tls --tls_ca="$TLS_DIR/cert.pem")
fi

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {  # wait_port PORT: true once something accepts on it
  for _ in $(seq 200); do
    "$PYTHON" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
      "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

PID=""; ECHO_PID=""; ECHO_TLS_PID=""
cleanup() {
  [[ -n "$PID" ]] && kill "$PID" 2>/dev/null
  [[ -n "$ECHO_PID" ]] && kill "$ECHO_PID" 2>/dev/null
  [[ -n "$ECHO_TLS_PID" ]] && kill "$ECHO_TLS_PID" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT

ECHO_PORT=$(free_port)
taskset -c 1 "$OUT/bin/echo" --threads=1 --port="$ECHO_PORT" 2>"$OUT/logs/echo.log" &
ECHO_PID=$!
wait_port "$ECHO_PORT" || { echo "proxy_compare.sh: echo did not come up" >&2; exit 1; }
# --tls: the direct row's echo serves TLS itself (the proxies' upstream
# stays the plain one).
DIRECT_PORT=$ECHO_PORT
if [[ "$TLS" == 1 ]]; then
  DIRECT_PORT=$(free_port)
  taskset -c 1 "$OUT/bin/echo" --threads=1 --port="$DIRECT_PORT" "${TLS_FLAGS[@]}" \
    2>"$OUT/logs/echo-tls.log" &
  ECHO_TLS_PID=$!
  wait_port "$DIRECT_PORT" || { echo "proxy_compare.sh: TLS echo did not come up" >&2; exit 1; }
fi

start() {  # start PROXY -> PID, PORT (direct: the echo server itself)
  PORT=$(free_port)
  case "$1" in
    direct) PORT=$DIRECT_PORT; PID=""; return 0 ;;
    baton|base)
      local bin="$OUT/bin/proxy"; [[ "$1" == base ]] && bin="$OUT/bin/proxy_base"
      taskset -c 0 "$bin" --threads=1 --port="$PORT" \
        --upstream="127.0.0.1:$ECHO_PORT" "${TLS_FLAGS[@]}" 2>"$OUT/logs/$1-proxy.log" & PID=$! ;;
    haproxy)
      local bind="" ssl_global=""
      if [[ "$TLS" == 1 ]]; then
        bind=" ssl crt $TLS_DIR/haproxy.pem"
        ssl_global=$'\n  ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets\n  tune.ssl.cachesize 0'
      fi
      cat >"$OUT/haproxy.cfg" <<CFG
global
  nbthread 1
  maxconn 8000$ssl_global
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend front
  bind 127.0.0.1:$PORT$bind
  default_backend echo
backend echo
  server echo 127.0.0.1:$ECHO_PORT
CFG
      taskset -c 0 "$HAPROXY" -db -f "$OUT/haproxy.cfg" \
        >"$OUT/logs/haproxy.log" 2>&1 & PID=$! ;;
    *)  # --variant
      taskset -c 0 "$OUT/bin/proxy_variant_$1" --threads=1 --port="$PORT" \
        --upstream="127.0.0.1:$ECHO_PORT" "${TLS_FLAGS[@]}" 2>"$OUT/logs/$1-proxy.log" & PID=$! ;;
  esac
  wait_port "$PORT" && return 0
  echo "proxy_compare.sh: $1 did not come up" >&2
  return 1
}
stop() {
  [[ -n "$PID" ]] || return 0
  kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""
}

# The proxy's user+system CPU time in clock ticks (NA for direct: no proxy).
cpu_ticks() {
  [[ -n "$1" && -r "/proc/$1/stat" ]] || { echo NA; return; }
  awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo NA
}
# CPU microseconds per round trip over warm-up and measurement (the rate of
# the measured part stands for both).
per_round_trip() {  # per_round_trip TICKS0 TICKS1 RATE
  [[ "$1" != NA && "$2" != NA && "$3" != NA ]] || { echo NA; return; }
  "$PYTHON" -c 'import os, sys
t0, t1, rate, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
hz = os.sysconf("SC_CLK_TCK")
print(round((t1 - t0) * 1e6 / hz / (rate * secs), 2) if rate > 0 else "NA")' \
    "$1" "$2" "$3" "$DURATION.5"
}
RAW="$OUT/raw.csv"
echo "proxy,load,connections,size,rep,round_trips_per_s,p50_us,p99_us,mb_per_s,cpu_us_per_rt" >"$RAW"
[[ -n "$PROXIES" ]] ||
  PROXIES="baton $([[ -z "$BASE_PROXY" ]] || echo "base ")${VARIANT_NAMES}haproxy direct"
for p in $PROXIES; do
  case "$p" in baton|haproxy|direct) ;;
    base) [[ -n "$BASE_PROXY" ]] || { echo "proxy_compare.sh: proxy base needs --base_proxy" >&2; exit 2; } ;;
    *) [[ -n "${VARIANT_PATH[$p]:-}" ]] || { echo "proxy_compare.sh: unknown proxy '$p'" >&2; exit 2; } ;;
  esac
done
n_proxies=$(wc -w <<<"$PROXIES")
LOADS=""
for conns in $CONNS; do LOADS+=" pingpong-c$conns"; done
for size in $BULK_SIZES; do LOADS+=" bulk-$size"; done
n_loads=$(wc -w <<<"$LOADS")
total=$((REPS * n_proxies * n_loads)); step=0; t0=$(date +%s)
echo "== $total runs of ${DURATION} s (+0.5 s warm-up), about $((total * (DURATION + 1))) s or more" >&2
for rep in $(seq "$REPS"); do
  for proxy in $PROXIES; do
    for load in $LOADS; do
      case "$load" in
        pingpong-c*) conns=${load#pingpong-c}; size=64 ;;
        bulk-*) conns=1; size=${load#bulk-} ;;
      esac
      fields="NA NA NA NA"; cpu="NA"
      if start "$proxy"; then
        log="$OUT/logs/$proxy-$load-$rep"
        # --tls: what each proxy negotiates with OpenSSL's default client
        # offer (the load's), once, before the CPU count starts.
        if [[ "$TLS" == 1 && ! -s "$OUT/logs/$proxy-tls.txt" ]]; then
          timeout 20 openssl s_client -brief -connect "127.0.0.1:$PORT" \
            -CAfile "$TLS_DIR/cert.pem" -verify_return_error </dev/null \
            >"$OUT/logs/$proxy-tls.txt" 2>&1 || true
        fi
        ticks0=$(cpu_ticks "$PID")
        if json=$(timeout $((DURATION * 3 + 60)) taskset -c 1 "$OUT/bin/bench" \
                    --mode=pingpong --port="$PORT" --connections="$conns" \
                    --size="$size" --duration="$DURATION" --warmup=0.5 --json \
                    "${BENCH_TLS[@]}" 2>"$log.err"); then
          echo "$json" >"$log.json"
          fields=$("$PYTHON" -c 'import json,sys
j = json.load(sys.stdin)
print(j["rate"], j["latency_us"]["p50"], j["latency_us"]["p99"],
      round(j["rate"] * j["size"] / 1e6, 2))' <<<"$json" || echo "NA NA NA NA")
          ticks1=$(cpu_ticks "$PID")
          cpu=$(per_round_trip "$ticks0" "$ticks1" "${fields%% *}")
        fi
        stop
      fi
      read -r rate p50 p99 mbps <<<"$fields"
      echo "$proxy,$load,$conns,$size,$rep,$rate,$p50,$p99,$mbps,$cpu" >>"$RAW"
      step=$((step + 1))
      case "$load" in
        pingpong-c*) what="$rate round trips/s, p50 $p50 us, p99 $p99 us" ;;
        *) what="$mbps MB/s each way ($rate round trips/s)" ;;
      esac
      [[ "$cpu" == NA ]] || what+=", proxy CPU $cpu us/round trip"
      printf '[%2d/%d %4ds] %s %s rep %d: %s\n' "$step" "$total" \
        $(( $(date +%s) - t0 )) "$proxy" "$load" "$rep" "$what" >&2
    done
  done
done

COMMAND="tools/proxy_compare.sh --out=$OUT --reps=$REPS --duration=$DURATION --conns=\"$CONNS\" --bulk_sizes=\"$BULK_SIZES\"$([[ -z "$BASE_PROXY" ]] || echo " --base_proxy=$BASE_PROXY")"
for vname in $VARIANT_NAMES; do COMMAND+=" --variant=$vname=${VARIANT_PATH[$vname]}"; done
COMMAND+=" --proxies=\"$PROXIES\""
[[ "$TLS" == 0 ]] || COMMAND+=" --tls"
VERSIONS="baton $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)'), $("$HAPROXY" -v 2>/dev/null | head -1 | cut -d' ' -f1-3), $(nproc) cores, Linux $(uname -r)"
"$PYTHON" - "$OUT" "$CONNS" "$BULK_SIZES" "$REPS" "$DURATION" "$COMMAND" "$VERSIONS" "$PROXIES" "$TLS" <<'PY'
import csv, statistics, sys, os, re
out, conns, sizes = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
reps, duration, command, versions = sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
tls = sys.argv[9] == "1"
rows = list(csv.DictReader(open(os.path.join(out, "raw.csv"))))
proxies = sys.argv[8].split()  # baton [base] haproxy direct
plotted = ["baton", "haproxy", "direct"]
pp = lambda c: f"pingpong-c{c}"
bulk = lambda s: f"bulk-{s}"
def med(p, load, field):
    v = [float(r[field]) for r in rows
         if r["proxy"] == p and r["load"] == load and r[field] not in ("NA", "")]
    return statistics.median(v) if v else None
def added(p, c):  # added p50 per hop: proxy p50 - direct p50, same connections
    a, d = med(p, pp(c), "p50_us"), med("direct", pp(c), "p50_us")
    return a - d if p != "direct" and a is not None and d is not None else None
def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "NA"
def human(s):
    s = int(s)
    for unit, n in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if s % n == 0: return f"{s // n} {unit}"
    return f"{s} B"
fmt = lambda v: f"{v:,.0f}" if v is not None else "NA"
fmt1 = lambda v: f"{v:,.1f}" if v is not None else "NA"
sfmt = lambda v: f"{v:+,.1f}" if v is not None else "NA"

loads = [(pp(c), c, "64") for c in conns] + [(bulk(s), "1", s) for s in sizes]
with open(os.path.join(out, "results.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["proxy", "load", "connections", "size", "runs_ok", "round_trips_per_s_median",
                "p50_us_median", "p99_us_median", "mb_per_s_median", "added_p50_us"])
    for p in proxies:
        for load, c, s in loads:
            ok = sum(1 for r in rows if r["proxy"] == p and r["load"] == load
                     and r["round_trips_per_s"] not in ("NA", ""))
            a = added(p, c) if load.startswith("pingpong") else None
            w.writerow([p, load, c, s, ok] +
                       [round(m, 2) if m is not None else "NA" for m in
                        (med(p, load, "round_trips_per_s"), med(p, load, "p50_us"),
                         med(p, load, "p99_us"), med(p, load, "mb_per_s"), a)])

if not tls:
    lines = ["# TCP proxy comparison: baton //server:proxy vs HAProxy (mode tcp, nbthread 1)\n",
             "Proxy pinned to core 0; //server:echo (1 thread) and //client:bench on core 1; loopback;",
             f"medians of {reps} interleaved runs of {duration} s each (each rep: each proxy, each load).",
             "`direct` is the bench straight to echo (no proxy hop).\n",
             f"How measured: `{command}` ({versions}). Each run:",
             "`taskset -c 1 bench --mode=pingpong --port=P --connections=C --size=S "
             f"--duration={duration} --warmup=0.5 --json` against `taskset -c 0 proxy --threads=1 "
             "--upstream=127.0.0.1:E`, `taskset -c 0 haproxy -db -f haproxy.cfg` (this directory) "
             "or `taskset -c 1 echo --threads=1` itself (direct), the proxy restarted for every run.\n"]
else:
    lines = ["# TLS-terminating proxy comparison: baton //server:proxy vs HAProxy (mode tcp, nbthread 1)\n",
             "The proxies terminate TLS from the load and relay plaintext to //server:echo.",
             "Proxy pinned to core 0; //server:echo (1 thread) and //client:bench --tls on core 1; loopback;",
             f"medians of {reps} interleaved runs of {duration} s each (each rep: each proxy, each load).",
             "`direct` is the bench over TLS straight to a second //server:echo serving TLS on core 1",
             "(no proxy hop; its TLS work is on core 1 there, on core 0 in the proxy rows).\n",
             f"How measured: `{command}` ({versions}). Each run:",
             "`taskset -c 1 bench --mode=pingpong --port=P --connections=C --size=S "
             f"--duration={duration} --warmup=0.5 --json --tls --tls_ca=tls/cert.pem` against "
             "`taskset -c 0 proxy --threads=1 --upstream=127.0.0.1:E --tls_cert=tls/cert.pem "
             "--tls_key=tls/key.pem`, `taskset -c 0 haproxy -db -f haproxy.cfg` (this directory: "
             "`bind ... ssl crt tls/haproxy.pem`, `ssl-default-bind-options ssl-min-ver TLSv1.2 "
             "no-tls-tickets`, `tune.ssl.cachesize 0`) or `taskset -c 1 echo --threads=1 "
             "--tls_cert=tls/cert.pem --tls_key=tls/key.pem` (direct), the proxy restarted for "
             "every run. The certificate is a self-signed P-256 one made by the script with the "
             "openssl CLI. Connections are opened once per run, so handshakes fall in the warm-up.\n",
             "Negotiated with OpenSSL's default client offer (`openssl s_client -brief`, as the load "
             "offers):\n"]
    for p in proxies:
        seen = {}
        try:
            text = open(os.path.join(out, "logs", f"{p}-tls.txt")).read()
            for key in ("Protocol version", "Ciphersuite"):
                m = re.search(key + r": *(\S+)", text)
                seen[key] = m.group(1) if m else "?"
        except OSError:
            seen = {"Protocol version": "?", "Ciphersuite": "?"}
        lines.append(f"- {p}: {seen['Protocol version']}, {seen['Ciphersuite']}")
    lines.append("")
def proxy_table(headers, cells):
    """A markdown table with one row per proxy; cells(p) gives its cells."""
    return (["| proxy | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)] +
            [f"| {p} | " + " | ".join(cells(p)) + " |" for p in proxies])

if conns:
    lines += ["## Ping-pong, 64-byte messages\n"]
    lines += proxy_table(
        [f"{c} conn round trips/s (p99 us)" for c in conns],
        lambda p: [f"{fmt(med(p, pp(c), 'round_trips_per_s'))} ({fmt(med(p, pp(c), 'p99_us'))})"
                   for c in conns])
    lines += ["", "## p50 latency and added p50 per hop (64-byte ping-pong)\n",
              "| connections | direct p50 us | baton p50 us | haproxy p50 us "
              "| baton added p50 us | haproxy added p50 us |",
              "|---:|---:|---:|---:|---:|---:|"]
    for c in conns:
        lines.append(f"| {c} | " + " | ".join(
            [fmt1(med(p, pp(c), "p50_us")) for p in ("direct", "baton", "haproxy")] +
            [sfmt(added(p, c)) for p in ("baton", "haproxy")]) + " |")
    lines += ["",
              "Added p50 = proxy p50 - direct p50 at the same connection count. Above one",
              "connection it includes queueing in the proxy (closed loop: p50 ~ connections /",
              "round trips/s), not only the hop. p50s are histogram bucket edges (~3% steps).\n"]
    lines += ["## Proxy CPU per round trip (64-byte ping-pong, user + system, us)\n"]
    lines += proxy_table([f"{c} conn" for c in conns],
                         lambda p: [fmt1(med(p, pp(c), "cpu_us_per_rt")) for c in conns])
    lines += ["", "From /proc/PID/stat around each run (warm-up included, 10 ms ticks); the",
              "direct row has no proxy (NA). Where the rate is set by core 1 (echo and load),",
              "this is what the proxy's efficiency changes.\n"]
if sizes:
    lines += ["## Bulk transfer, one connection (MB/s each way)\n"]
    lines += proxy_table([f"{human(s)} messages MB/s" for s in sizes],
                         lambda p: [fmt(med(p, bulk(s), "mb_per_s")) for s in sizes])
    lines += ["", "MB/s each way = round trips/s x message size / 1e6: the echo sends every byte back,",
              "so the proxy relays that much in each direction.\n"]
pairs = [("baton", "haproxy")]
if "base" in proxies:
    pairs += [("base", "haproxy"), ("baton", "base")]
names = {"baton": "baton", "base": "base", "haproxy": "HAProxy"}
for a, b in pairs:
    lines.append(f"## {names[a]} / {names[b]}\n")
    if conns:
        lines.append("- round trips/s (64 B ping-pong): " + ", ".join(
            f"{c} conn: " + ratio(med(a, pp(c), "round_trips_per_s"),
                                  med(b, pp(c), "round_trips_per_s")) for c in conns))
        lines.append("- p99 (64 B ping-pong; lower is better): " + ", ".join(
            f"{c} conn: " + ratio(med(a, pp(c), "p99_us"), med(b, pp(c), "p99_us"))
            for c in conns))
        lines.append("- proxy CPU per round trip (64 B ping-pong; lower is better): " + ", ".join(
            f"{c} conn: " + ratio(med(a, pp(c), "cpu_us_per_rt"),
                                  med(b, pp(c), "cpu_us_per_rt")) for c in conns))
    if sizes:
        lines.append("- bulk MB/s each way: " + ", ".join(
            f"{human(s)}: " + ratio(med(a, bulk(s), "mb_per_s"),
                                    med(b, bulk(s), "mb_per_s")) for s in sizes))
    lines.append("")
if conns:
    lines.append("## Added p50 per hop, baton / HAProxy\n")
    for p in [q for q in proxies if q in ("baton", "base")]:
        parts = []
        for c in conns:
            b, h = added(p, c), added("haproxy", c)
            r = f", {b / h:.2f}x" if b is not None and h is not None and b > 0 and h > 0 else ""
            parts.append(f"{c} conn: {p} {sfmt(b)} us vs haproxy {sfmt(h)} us{r}")
        lines.append(f"- {p}: " + "; ".join(parts))
    lines.append("")
failed = sum(1 for r in rows if r["round_trips_per_s"] in ("NA", ""))
if failed:
    lines.append(f"- {failed} of {len(rows)} runs failed (NA in raw.csv; see logs/)")
open(os.path.join(out, "report.md"), "w").write("\n".join(lines) + "\n")
with open(os.path.join(out, "proxy.dat"), "w") as f:
    for i, c in enumerate(conns):
        f.write(f"{i} {c} " + " ".join(str(med(p, pp(c), "round_trips_per_s") or 0)
                                       for p in plotted) + "\n")
with open(os.path.join(out, "proxy_bulk.dat"), "w") as f:
    for i, s in enumerate(sizes):
        f.write(f"{i} \"{human(s)}\" " + " ".join(str(med(p, bulk(s), "mb_per_s") or 0)
                                                for p in plotted) + "\n")
PY
plot() {  # plot FILE TITLE XLABEL: clustered histogram of FILE.dat -> FILE.png
  gnuplot <<GP
set terminal pngcairo size 900,520 noenhanced
set output '$OUT/$1.png'
set title '$2'
set xlabel '$3'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set grid y
set key top left
plot '$OUT/$1.dat' using 3:xtic(2) title 'baton proxy', '' using 4 title 'haproxy', '' using 5 title 'direct (no proxy)'
GP
}
pngs=""; WHAT="TCP proxy"; [[ "$TLS" == 0 ]] || WHAT="TLS-terminating proxy"
if [[ -n "${CONNS// /}" ]]; then
  plot proxy "$WHAT"' in front of echo, proxy on one core (64 B ping-pong round trips/s, median)' connections
  pngs+=", $OUT/proxy.png"
fi
if [[ -n "${BULK_SIZES// /}" ]]; then
  plot proxy_bulk "$WHAT"' in front of echo, proxy on one core (bulk, 1 connection: MB/s each way, median)' 'message size'
  pngs+=", $OUT/proxy_bulk.png"
fi
cat "$OUT/report.md"
echo "== done: $OUT/report.md$pngs" >&2
