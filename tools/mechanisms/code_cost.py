#!/usr/bin/env python3
"""Lines of lib/ that exist only for each adaptive mechanism, at the commit
the patches are made against (4198be7): a rough count by hand-picked line
ranges (comments included, and code alone), read with `git show`, so it
does not depend on the checkout. Prints the markdown kept in code_cost.md.

  tools/mechanisms/code_cost.py [--commit=4198be7]
"""
import subprocess
import sys

R = {
"re-reads": [
 ("lib/internal/scheduler.h","16-19,37-40,87-90,122-123,193-197,274-275"),
 ("lib/internal/scheduler.cc","56,60,140-143,195-196,200,218-220"),
 ("lib/internal/connection_io.cc","31-34,87-90,120,127-138,169-176,223-247"),
 ("lib/internal/connection_state.h","101-108"),
 ("lib/internal/reactor_core.h","286,303-307"),
 ("lib/baton/reactor.h","83-94"),
 ("lib/baton/reactor_limits.h","20-23"),
 ("lib/reactor.cc","47-52"),
 ("lib/baton/counters.h","33-34"),
],
"yields": [
 ("lib/internal/scheduler.h","91-94,199-203,233-234,276-277"),
 ("lib/internal/scheduler.cc","25,116,126-128,150,186"),
 ("lib/internal/connection_io.cc","91-94,124,139-147,361-366"),
 ("lib/internal/connection_state.h","99"),
 ("lib/baton/counters.h","35"),
],
"parking": [
 ("lib/internal/scheduler.h","42-58,100-106,133-137,165-168,175-180,237-244,262-273"),
 ("lib/internal/scheduler.cc","38-46,65-74,80-82,86-120,164-172"),
 ("lib/internal/connection_io.cc","73-82,96-98,101,103-111,125,148-168,188-221"),
 ("lib/internal/connection_state.h","109-117"),
 ("lib/internal/connection_table.h","25-28,65-68,110-113,153-154,158-167"),
 ("lib/internal/connection_table.cc","91-92,94-95,119-148"),
 ("lib/internal/connection_lifetime.cc","226-229"),
 ("lib/internal/reactor_core.h","69-71,287-292,308-309"),
 ("lib/internal/foreign_requests.cc","52-54"),
 ("lib/baton/reactor.h","95-107"),
 ("lib/baton/counters.h","36-39"),
],
"rescue": [
 ("lib/internal/scheduler.h","60-64,130-132,245-247"),
 ("lib/internal/scheduler.cc","79"),
 ("lib/internal/event_loop.cc","55,57"),
 ("lib/baton/counters.h","22"),
],
"rescue+pollmark shared": [
 ("lib/internal/scheduler.h","139-143,259-260"),
 ("lib/internal/scheduler.cc","14-17,32-33,152-155,162-163,173-181"),
 ("lib/internal/event_loop.cc","48-50,52-54,56,58-62"),
],
"poll marks": [
 ("lib/internal/scheduler.h","27-35,107-109,229-232,261"),
 ("lib/internal/scheduler.cc","23-24,26-31,41,78,122-124,130-136,145-149"),
 ("lib/internal/connection_io.cc","112-118"),
],
}
def lines(spec):
    out=[]
    for part in spec.split(","):
        a,_,b=part.partition("-"); a=int(a); b=int(b or a); out+=range(a,b+1)
    return out
NOTE = {
    "re-reads": "kReread, MayReread and its backoff, re-read confidence state, the "
                "option and its validation, counters, has_idle_thread",
    "yields": "kYield, input_left, the queued-work hint (also read by "
              "parking's read_later), read_yields",
    "parking": "kParkExpired/kParkIdle, Park/Unpark (scheduler and claim "
               "word), the parked list and its bound, MayPark/CountParkEnd, "
               "read_later, worker writes, park_ticket, the option, counters",
    "rescue": "kLeaderTimeoutMs and the one line choosing it, the rescues "
              "counter",
    "rescue+pollmark shared": "running_ bookkeeping (also read by parking), "
                              "RescueDue's hand-back, the worker loop's "
                              "n == 0 loop",
    "poll marks": "kPollMark, MarkPassLocked, LengthLocked, the mark in "
                  "Next/Handoff/RescueDue, timeout 0",
}
commit = "4198be7"
for a in sys.argv[1:]:
    if a.startswith("--commit="):
        commit = a.split("=", 1)[1]
cache = {}
def text(f):
    if f not in cache:
        cache[f] = subprocess.run(["git", "show", f"{commit}:{f}"], check=True,
                                  capture_output=True, text=True).stdout.split("\n")
    return cache[f]
print(f"## Code cost in lib/ at {commit} (tools/mechanisms/code_cost.py)\n")
print("Rough: lines that exist only for the mechanism, by hand-picked ranges; "
      "shared lines are listed once, in their own row.\n")
print("| mechanism | lines | of which code | what | where (file:lines) |")
print("|---|---:|---:|---|---|")
for mech, files in R.items():
    tot=code=0; seen=set()
    for f,spec in files:
        src=text(f)
        for n in lines(spec):
            if (f,n) in seen: print("DUP",mech,f,n)
            seen.add((f,n))
            l=src[n-1].strip()
            tot+=1
            if l and not l.startswith("//"): code+=1
    where = "; ".join(f"{f.replace('lib/internal/', '').replace('lib/', '')}:{spec}"
                      for f, spec in files)
    print(f"| {mech} | {tot} | {code} | {NOTE[mech]} | {where} |")
