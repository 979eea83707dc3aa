#!/bin/bash
# hol1s.sh CMD THREADS SLOW [DUR]: hol1.sh, and with SLICE=ns the EEVDF slice request of every server thread (setslice: gcc -O2 -o setslice setslice.c)
cmd="$1"; threads=$2; slow=$3; dur=${4:-2}
BIN=${BIN:-$(git rev-parse --show-toplevel)/bazel-bin}
log=$(mktemp)
taskset -c 0 $cmd --threads=$threads --slow_us=1000 --slow_mode=sleep --port=0 2>"$log" &
pid=$!
for _ in $(seq 100); do port=$(grep -o 'listening on [^ ]*:[0-9]*' "$log" | sed 's/.*://'); [[ -n "$port" ]] && break; sleep 0.05; done
[[ -n "$SLICE" ]] && ${SETSLICE:-$(dirname "$0")/setslice} $pid $SLICE
json=$(taskset -c 1 ${BENCH:-$BIN/client/bench} --mode=pingpong --port=$port --connections=40 --slow_connections=$slow --size=64 --duration=$dur --warmup=0.5 --json 2>/dev/null)
kill -TERM $pid; wait $pid 2>/dev/null
python3 -c 'import json,sys
j=json.load(sys.stdin); f=j["fast"]
print(f["latency_us"]["p50"], f["latency_us"]["p99"], f["latency_us"]["p999"], int(f["rate"]))' <<<"$json"
rm -f "$log"
