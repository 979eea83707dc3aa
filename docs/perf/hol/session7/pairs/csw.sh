#!/bin/bash
# csw.sh "CMD" THREADS SLOW: one 2 s run; prints bench fast p99/p999/rate and the server's context switches
cmd="$1"; t=$2; s=$3
log=$(mktemp)
taskset -c 0 $cmd --threads=$t --slow_us=1000 --slow_mode=sleep --port=0 2>"$log" & pid=$!
for _ in $(seq 100); do port=$(grep -o 'listening on [^ ]*:[0-9]*' "$log" | sed 's/.*://'); [[ -n "$port" ]] && break; sleep 0.05; done
sum() { cat /proc/$pid/task/*/status | awk "/^voluntary/{v+=\$2} /^nonvoluntary/{n+=\$2} END{printf \"%d %d \", v, n}"; awk "{print \$14+\$15}" /proc/$pid/stat; }
( sleep 0.6; sum > /tmp/exp/csw.a; sleep 2; sum > /tmp/exp/csw.b ) &
json=$(taskset -c 1 /work/main/bazel-bin/client/bench --mode=pingpong --port=$port --connections=40 --slow_connections=$s --size=64 --duration=2.2 --warmup=0.5 --json 2>/dev/null)
wait %2 2>/dev/null; sleep 0.2
read va na ca < /tmp/exp/csw.a; read vb nb cb < /tmp/exp/csw.b
kill -TERM $pid; wait $pid 2>/dev/null
python3 -c 'import json,sys
j=json.load(sys.stdin); f=j["fast"]
print(f["latency_us"]["p99"], f["latency_us"]["p999"], int(f["rate"]), "slow", int(j.get("slow",{}).get("rate",0)), "vol/s", ('$vb'-'$va')/2, "invol/s", ('$nb'-'$na')/2, "cpu%", ('$cb'-'$ca')/2)' <<<"$json"
rm -f "$log"
