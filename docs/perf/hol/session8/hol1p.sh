#!/bin/bash
# hol1p.sh CMD THREADS SLOW: one run (CONNS connections, default 40); prints p50 p99 rate and per-round-trip syscalls (total, epoll_ctl, epoll_wait, futex, reads) and server CPU µs
cmd="$1"; threads=$2; slow=$3
log=$(mktemp); pf=$(mktemp)
taskset -c 0 $cmd --threads=$threads --slow_us=1000 --slow_mode=sleep --port=0 2>"$log" &
pid=$!
for _ in $(seq 100); do port=$(grep -o 'listening on [^ ]*:[0-9]*' "$log" | sed 's/.*://'); [[ -n "$port" ]] && break; sleep 0.05; done
taskset -c 1 ${BENCH:-$(git rev-parse --show-toplevel)/bazel-bin/client/bench} --mode=pingpong --port=$port --connections=${CONNS:-40} --slow_connections=$slow --size=64 --duration=2 --warmup=0.5 --json > /tmp/hol1p.json 2>/dev/null &
bp=$!
sleep 0.5
taskset -c 1 perf stat -x, -o $pf -e task-clock,raw_syscalls:sys_enter,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_enter_read,syscalls:sys_enter_recvfrom -p $pid -- sleep 2
wait $bp
kill -TERM $pid; wait $pid 2>/dev/null
python3 - "$pf" <<'PY'
import json,sys
j=json.load(open("/tmp/hol1p.json")); f=j["fast"]; rt=f["rate"]*2
c={}
for l in open(sys.argv[1]):
    p=l.strip().split(',')
    if len(p)>3 and p[0].replace('.','').isdigit(): c[p[2]]=float(p[0])
g=lambda k:c.get(k,0)/rt
print("%.0f %.0f %.0f | sys %.2f ctl %.2f wait %.2f futex %.2f read %.2f | cpu %.2f us" % (f["latency_us"]["p50"], f["latency_us"]["p99"], f["rate"], g("raw_syscalls:sys_enter"), g("syscalls:sys_enter_epoll_ctl"), g("syscalls:sys_enter_epoll_wait"), g("syscalls:sys_enter_futex"), g("syscalls:sys_enter_read")+g("syscalls:sys_enter_recvfrom"), c.get("task-clock",0)*1000/rt))
PY
rm -f "$log" "$pf"
