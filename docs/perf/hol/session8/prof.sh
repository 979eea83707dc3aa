#!/bin/bash
# prof.sh OUT CMD THREADS: perf record the server for 2 s of a 40-connection ping-pong
out=$1; cmd="$2"; threads=$3
log=$(mktemp)
taskset -c 0 $cmd --threads=$threads --port=0 2>"$log" &
pid=$!
for _ in $(seq 100); do port=$(grep -o 'listening on [^ ]*:[0-9]*' "$log" | sed 's/.*://'); [[ -n "$port" ]] && break; sleep 0.05; done
taskset -c 1 ${BENCH:-$(git rev-parse --show-toplevel)/bazel-bin/client/bench} --mode=pingpong --port=$port --connections=40 --size=64 --duration=3 --warmup=0.5 2>&1 | grep "round trips in" &
bp=$!
sleep 0.7
taskset -c 1 perf record -q -g -F 2000 -o $out -p $pid -- sleep 2 2>/dev/null
wait $bp
kill -TERM $pid; wait $pid 2>/dev/null; rm -f $log
