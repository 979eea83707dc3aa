# schedstat.py FILE: from `perf sched record` data (sched.sh, which saves FILE.pid), per second: the server's context switches, preemptions, how long a preempted thread stayed off the CPU, and its sleeps
import sys,subprocess,collections,statistics as st
f=sys.argv[1]; pid=open(f+'.pid').read().strip()
out=subprocess.run(['perf','sched','timehist','-i',f,'--state'],capture_output=True,text=True).stdout.splitlines()[3:]
seq=collections.defaultdict(list)
for l in out:
    p=l.split()
    if len(p)<7: continue
    task=p[2]
    if '/'+pid+']' not in task: continue
    seq[task].append((float(p[0]),float(p[3]),float(p[4]),float(p[5]),p[6]))
pre=[];sl=[];runs_S=[];nsw=0
for t,L in seq.items():
    nsw+=len(L)
    for i in range(len(L)-1):
        if L[i][4]=='R': pre.append(L[i+1][1])
        else: sl.append(L[i+1][1])
        if L[i][4]=='S': runs_S.append(L[i][3])
span=max(x[0] for L in seq.values() for x in L)-min(x[0] for L in seq.values() for x in L)
q=lambda v,p: sorted(v)[int(p*(len(v)-1))] if v else 0
print(f"{f}: switches/s {nsw/span:.0f}; preempted/s {len(pre)/span:.0f}, off-CPU after preemption ms p50 {q(pre,.5):.3f} p90 {q(pre,.9):.3f} p99 {q(pre,.99):.3f} max {max(pre or [0]):.3f} threads waiting after a preemption, on average {sum(pre)/1000/span:.2f}; sleeps/s {len(runs_S)/span:.0f}, runs before sleep <20us: {sum(r<0.02 for r in runs_S)/span:.0f}/s")
