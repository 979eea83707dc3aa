#!/bin/bash
# idle.sh BIN THREADS SLOW: core 0's idle/softirq share and ksoftirqd/0's CPU during a 2 s run
taskset -c 0 $1 --threads=$2 --slow_us=1000 --slow_mode=sleep --port=0 2>/tmp/exp/id.log & pid=$!
sleep 0.4; port=$(grep -o 'listening on [^ ]*:[0-9]*' /tmp/exp/id.log | sed 's/.*://')
ks=$(pgrep -x ksoftirqd/0)
snap() { awk '/^cpu0 /{print $2+$3+$4, $5, $7, $8}' /proc/stat; awk '{print $14+$15}' /proc/$ks/stat; awk '{print $14+$15}' /proc/$pid/stat; }
( sleep 0.7; snap > /tmp/exp/id.a; sleep 1.5; snap > /tmp/exp/id.b ) &
out=$(taskset -c 1 /work/main/bazel-bin/client/bench --mode=pingpong --port=$port --connections=40 --slow_connections=$3 --size=64 --duration=2.2 --warmup=0.5 2>&1 | grep -A1 "^fast" | tail -1)
wait %2 2>/dev/null
kill $pid; wait $pid 2>/dev/null
a=($(paste -sd' ' /tmp/exp/id.a)); b=($(paste -sd' ' /tmp/exp/id.b))
echo "$out | cpu0 ticks over 1.5s: busy $((b[0]-a[0])) idle $((b[1]-a[1])) softirq $((b[2]-a[2])) steal $((b[3]-a[3])) | ksoftirqd/0 $((b[4]-a[4])) server $((b[5]-a[5]))"
