#!/bin/bash
# sched.sh OUT CMD THREADS SLOW: perf sched record on core 0 during a hol run
out=$1; cmd="$2"; threads=$3; slow=$4
log=$(mktemp)
taskset -c 0 $cmd --threads=$threads --slow_us=1000 --slow_mode=sleep --port=0 2>"$log" &
pid=$!
for _ in $(seq 100); do port=$(grep -o 'listening on [^ ]*:[0-9]*' "$log" | sed 's/.*://'); [[ -n "$port" ]] && break; sleep 0.05; done
taskset -c 1 ${BENCH:-$(git rev-parse --show-toplevel)/bazel-bin/client/bench} --mode=pingpong --port=$port --connections=40 --slow_connections=$slow --size=64 --duration=3 --warmup=0.5 2>&1 | grep -A1 "^fast" | tail -1 &
bp=$!
sleep 1
taskset -c 1 perf sched record -q -C 0 -o $out -- sleep 1.5 >/dev/null 2>&1
wait $bp
kill -TERM $pid; wait $pid 2>/dev/null; rm -f $log
echo $pid > $out.pid
