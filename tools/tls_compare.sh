#!/usr/bin/env bash
# Compares HTTPS servers on one core: baton's //server:http, nginx (one and
# two workers), HAProxy (answering itself with `http-request return`), and
# Boost.Asio with one shared io_context and with one io_context per thread
# (//server/compare:asio_https). Every server answers GET with the same
# 128-byte body, uses the same certificate, TLS 1.3 and no session
# resumption (every new connection is a full handshake). Server pinned to
# core 0, load (//client:bench) to core 1, loopback only.
#
# Three measurements, each cell a fresh server, runs interleaved server by
# server within each rep; medians of the reps in report.md:
#   keep-alive: --ka_conns keep-alive HTTPS clients for --duration seconds,
#       requests/s and latency p50/p99/p99.9;
#   handshakes: 50 clients opening a new connection (full handshake) per
#       request, as fast as the server takes them: handshakes/s;
#   mixed: the keep-alive clients again while a second bench process opens
#       new TLS connections at a paced rate (each: handshake, one request,
#       close), for every rate in --rates: the keep-alive clients' requests/s
#       and p99 under a stream of handshakes, the slow work of real servers.
# Each run also reads the server's CPU time (/proc, nginx's workers
# included): where the load core is the limit, as it is for keep-alive
# HTTPS here (the client's TLS costs about what the server's does), CPU per
# request is what tells the servers apart.
#
#   tools/tls_compare.sh --out=DIR [--reps=3] [--duration=5]
#       [--rates=100,250,500,1000] [--key=p256|rsa2048] [--threads=4]
#       [--ka_conns=10] [--servers=baton,nginx1,nginx2,haproxy,asio_shared,asio_thread]
#       [--skip=keepalive,handshakes] [--hs_threads=1] [--hs_nice=3]
#
# --threads: baton's and both Asio models' thread count (nginx runs 1 and 2
# workers, HAProxy one thread, as each is set up on one core).
# Server baton_hs (not in the default list) is baton with its handshakes on
# --hs_threads threads of their own, --hs_nice lower in priority
# (--tls_handshake_threads, --tls_handshake_nice); baton_hsN (baton_hs3,
# baton_hs10) the same at nice +N, to compare priorities in one run.
# Needs nginx, haproxy, openssl and gnuplot: `tools/setup.sh --bench`.
set -euo pipefail

OUT=""; REPS=3; DURATION=5; RATES="100,250,500,1000"; KEY="p256"; THREADS=4
HS_THREADS=1; HS_NICE=3
KA_CONNS=10; SERVERS="baton,nginx1,nginx2,haproxy,asio_shared,asio_thread"; SKIP=""
for arg in "$@"; do
  case "$arg" in
    --out=*) OUT="${arg#--out=}" ;;
    --reps=*) REPS="${arg#--reps=}" ;;
    --duration=*) DURATION="${arg#--duration=}" ;;
    --rates=*) RATES="${arg#--rates=}" ;;
    --key=*) KEY="${arg#--key=}" ;;
    --threads=*) THREADS="${arg#--threads=}" ;;
    --ka_conns=*) KA_CONNS="${arg#--ka_conns=}" ;;
    --servers=*) SERVERS="${arg#--servers=}" ;;
    --skip=*) SKIP="${arg#--skip=}" ;;
    --hs_threads=*) HS_THREADS="${arg#--hs_threads=}" ;;
    --hs_nice=*) HS_NICE="${arg#--hs_nice=}" ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "tls_compare.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "tls_compare.sh: $*" >&2; exit 2; }
[[ -n "$OUT" ]] || die "--out=DIR is required"
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer"
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "--duration must be a positive integer (seconds)"
[[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer"
[[ "$HS_THREADS" =~ ^[1-9][0-9]*$ ]] || die "--hs_threads must be a positive integer"
[[ "$HS_NICE" =~ ^([1-9]|1[0-9])$ ]] || die "--hs_nice must be in 1..19"
[[ "$KA_CONNS" =~ ^[1-9][0-9]*$ ]] || die "--ka_conns must be a positive integer"
[[ "$RATES" =~ ^([1-9][0-9]*(,[1-9][0-9]*)*)?$ ]] ||
  die "--rates must be a comma-separated list of positive integers (or empty)"
[[ "$KEY" == p256 || "$KEY" == rsa2048 ]] || die "--key must be p256 or rsa2048"
SERVERS="${SERVERS//,/ }"; RATES="${RATES//,/ }"
for s in $SERVERS; do
  [[ "$s" =~ ^baton_hs([1-9]|1[0-9])$ ]] && continue
  [[ " baton baton_hs nginx1 nginx2 haproxy asio_shared asio_thread " == *" $s "* ]] ||
    die "unknown server '$s' in --servers"
done
for s in ${SKIP//,/ }; do
  [[ "$s" == keepalive || "$s" == handshakes ]] || die "unknown phase '$s' in --skip"
done
for tool in nginx haproxy openssl gnuplot curl; do
  command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] ||
    { echo "tls_compare.sh: $tool missing; run tools/setup.sh --bench" >&2; exit 1; }
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT/logs" "$OUT/bin" "$OUT/tmp"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"
echo "== building (-c opt)" >&2
bazel build -c opt //server:http //server/compare:asio_https //client:bench \
  >"$OUT/logs/build.log" 2>&1 || { cat "$OUT/logs/build.log" >&2; exit 1; }
cp -f bazel-bin/server/http bazel-bin/server/compare/asio_https \
  bazel-bin/client/bench "$OUT/bin/"
ulimit -n 65536 2>/dev/null || true

# One certificate for every server: CN and subjectAltName localhost.
CERT="$OUT/cert.pem"; PRIVKEY="$OUT/key.pem"
if [[ "$KEY" == p256 ]]; then keyopt=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
else keyopt=(-newkey rsa:2048); fi
openssl req -x509 "${keyopt[@]}" -nodes -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$PRIVKEY" -out "$CERT" 2>"$OUT/logs/openssl.log"
cat "$CERT" "$PRIVKEY" >"$OUT/haproxy.pem"
BODY=$(head -c 128 /dev/zero | tr '\0' 'x')

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

PID=""
cleanup() { [[ -n "$PID" ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

start() {  # start SERVER -> PID, PORT
  PORT=$(free_port)
  local log="$OUT/logs/$1.log"
  case "$1" in
    baton|baton_hs*)
      local hs=() nice="${1#baton_hs}"; [[ -z "$nice" ]] && nice="$HS_NICE"
      [[ "$1" == baton_hs* ]] &&
        hs=(--tls_handshake_threads="$HS_THREADS" --tls_handshake_nice="$nice")
      taskset -c 0 "$OUT/bin/http" --threads="$THREADS" --port="$PORT" \
        --response_size=128 --tls_cert="$CERT" --tls_key="$PRIVKEY" \
        --tls_session_resumption=false "${hs[@]}" 2>>"$log" & PID=$! ;;
    asio_shared|asio_thread)
      local model=shared; [[ "$1" == asio_thread ]] && model=per_thread
      taskset -c 0 "$OUT/bin/asio_https" --model="$model" --threads="$THREADS" \
        --port="$PORT" --response_size=128 --tls_cert="$CERT" \
        --tls_key="$PRIVKEY" 2>>"$log" & PID=$! ;;
    nginx1|nginx2)
      cat >"$OUT/$1.conf" <<NGINX
worker_processes ${1#nginx};
daemon off;
error_log $OUT/logs/$1.error.log;
pid $OUT/$1.pid;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000000;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_tickets off;
  ssl_session_cache off;
  client_body_temp_path $OUT/tmp;
  proxy_temp_path $OUT/tmp;
  fastcgi_temp_path $OUT/tmp;
  uwsgi_temp_path $OUT/tmp;
  scgi_temp_path $OUT/tmp;
  server {
    listen 127.0.0.1:$PORT ssl;
    ssl_certificate $CERT;
    ssl_certificate_key $PRIVKEY;
    location / { default_type text/plain; return 200 "$BODY"; }
  }
}
NGINX
      taskset -c 0 /usr/sbin/nginx -c "$OUT/$1.conf" -p "$OUT" 2>>"$log" & PID=$! ;;
    haproxy)
      cat >"$OUT/haproxy.cfg" <<HAPROXY
global
  nbthread 1
  maxconn 8000
  tune.ssl.cachesize 0
  ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
defaults
  mode http
  timeout client 30s
  timeout connect 5s
  timeout server 30s
  timeout http-keep-alive 30s
frontend https
  bind 127.0.0.1:$PORT ssl crt $OUT/haproxy.pem
  http-request return status 200 content-type text/plain string "$BODY"
HAPROXY
      taskset -c 0 /usr/sbin/haproxy -f "$OUT/haproxy.cfg" -db 2>>"$log" & PID=$! ;;
  esac
  for _ in $(seq 200); do
    curl -s --cacert "$CERT" -o /dev/null "https://localhost:$PORT/" && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "tls_compare.sh: $1 did not come up (see $log)" >&2
  return 1
}
stop() { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; }
# The server's user+system CPU seconds so far, nginx's workers included.
cpu_seconds() {
  local p ticks=0 t
  for p in "$PID" $(pgrep -P "$PID" 2>/dev/null); do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || continue
    ticks=$((ticks + ${t:-0}))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.3f", t / hz}'
}

BENCH=(taskset -c 1 "$OUT/bin/bench" --mode=http --host=127.0.0.1 --tls_server_name=localhost --tls
       --tls_ca="$CERT" --threads=1 --requests=0 --duration="$DURATION"
       --warmup=1 --json)
keepalive() {  # keepalive LOG: the keep-alive clients
  timeout $((DURATION + 60)) "${BENCH[@]}" --port="$PORT" --keepalive \
    --connections="$KA_CONNS" >"$1" 2>"$1.err" || true
}
paced() {  # paced RATE LOG: new TLS clients at RATE per second
  timeout $((DURATION + 60)) "${BENCH[@]}" --port="$PORT" --rate="$1" \
    --connections=256 >"$2" 2>"$2.err" || true
}
handshakes() {  # handshakes LOG: new connection per request, closed loop
  timeout $((DURATION + 60)) "${BENCH[@]}" --port="$PORT" --connections=50 \
    >"$1" 2>"$1.err" || true
}

CELLS=()  # "phase rate"
[[ ",$SKIP," == *,keepalive,* ]] || CELLS+=("keepalive 0")
[[ ",$SKIP," == *,handshakes,* ]] || CELLS+=("handshakes 0")
for r in $RATES; do CELLS+=("mixed $r"); done
nservers=$(wc -w <<<"$SERVERS")
total=$((REPS * ${#CELLS[@]} * nservers)); step=0; t0=$(date +%s)
echo "== $total runs of about $((DURATION + 3)) s each" >&2
RAW="$OUT/raw.csv"
[[ -f "$RAW" ]] || echo "server,phase,rate,rep,log,paced_log,cpu_s,wall_s" >"$RAW"

for rep in $(seq "$REPS"); do
  for cell in "${CELLS[@]}"; do
    read -r phase rate <<<"$cell"
    for server in $SERVERS; do
      step=$((step + 1))
      log="$OUT/logs/$server-$phase-$rate-$rep.json"; plog=""; cpu=NA; wall=NA
      if start "$server"; then
        cpu0=$(cpu_seconds); t0_ns=$(date +%s%N)
        case "$phase" in
          keepalive) keepalive "$log" ;;
          handshakes) handshakes "$log" ;;
          mixed)
            plog="$OUT/logs/$server-$phase-$rate-$rep.paced.json"
            paced "$rate" "$plog" & ppid=$!
            keepalive "$log"
            wait "$ppid" || true ;;
        esac
        cpu=$(awk -v a="$cpu0" -v b="$(cpu_seconds)" 'BEGIN {printf "%.3f", b - a}')
        wall=$(awk -v a="$t0_ns" -v b="$(date +%s%N)" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
        stop
      fi
      echo "$server,$phase,$rate,$rep,$log,$plog,$cpu,$wall" >>"$RAW"
      summary=$(python3 - "$log" <<'PY' 2>/dev/null || echo "no result"
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{d.get('rate', 0):.0f}/s p99 {d['latency_us']['p99']} us" +
      ("" if d.get("ok") else " FAILED: " + d.get("error", "")))
PY
)
      printf '[%3d/%d %5ds] rep %d %s %s %s: %s\n' "$step" "$total" \
        $(( $(date +%s) - t0 )) "$rep" "$phase" "$rate" "$server" "$summary" >&2
    done
  done
done

python3 "$ROOT/tools/tls_report.py" --out="$OUT" --key="$KEY" --threads="$THREADS" \
  --ka_conns="$KA_CONNS" --duration="$DURATION" --reps="$REPS" \
  --hs_threads="$HS_THREADS" --hs_nice="$HS_NICE"
echo "== done: $OUT/report.md, $OUT/tls_mixed.png" >&2
