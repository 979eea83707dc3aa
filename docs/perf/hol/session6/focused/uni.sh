#!/bin/bash
# uni.sh "SERVER CMD" THREADS: 100 conns 64B 3s; prints rate p99
B=/work/main/bazel-bin
taskset -c 0 $1 --threads=$2 --port=0 2>/tmp/exp/u.log & pid=$!
sleep 0.4; port=$(grep -o 'listening on [^ ]*:[0-9]*' /tmp/exp/u.log | sed 's/.*://')
taskset -c 1 $B/client/bench --mode=pingpong --port=$port --connections=100 --size=64 --duration=3 --warmup=0.5 --json 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin); print(int(j["rate"]), j["latency_us"]["p99"])'
kill -TERM $pid; wait $pid
