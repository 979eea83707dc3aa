#!/usr/bin/env python3
"""Turns tools/compare.sh's raw.csv into results.csv, report.md and plots."""

import argparse
import csv
import os
import platform
import statistics
import subprocess
from collections import defaultdict

MODEL_ORDER = ["baton", "baton-t2", "asio", "asio-t2", "poll", "select",
               "threads"]


def load(path):
    runs = defaultdict(list)
    with open(path) as f:
        for row in csv.DictReader(f):
            key = (row["model"], row["server_threads"], row["scenario"],
                   int(row["connections"]), int(row["idle"]), row["measure"])
            runs[key].append(row["value"])
    return runs


def summarize(values):
    nums = [float(v) for v in values if v not in ("NA", "")]
    if not nums:
        return None
    return {"median": statistics.median(nums), "min": min(nums),
            "max": max(nums), "runs": len(nums), "failed": len(values) - len(nums)}


def fmt(x, digits=0):
    if x is None:
        return "NA"
    return f"{x:,.{digits}f}"


def command_output(args):
    try:
        return subprocess.run(args, capture_output=True, text=True,
                              check=False).stdout.strip()
    except OSError:
        return "?"


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", default="0")
    ap.add_argument("--duration", default="?")
    ap.add_argument("--reps", default="?")
    args = ap.parse_args()
    out = args.out
    runs = load(os.path.join(out, "raw.csv"))
    stats = {k: summarize(v) for k, v in runs.items()}
    models = [m for m in MODEL_ORDER if any(k[0] == m for k in stats)]

    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "server_threads", "scenario", "connections",
                    "idle", "measure", "median", "min", "max", "runs",
                    "failed_runs"])
        for key in sorted(stats, key=lambda k: (MODEL_ORDER.index(k[0]),) + k[1:]):
            s = stats[key]
            w.writerow(list(key) + ([round(s["median"], 3), round(s["min"], 3),
                                     round(s["max"], 3), s["runs"], s["failed"]]
                                    if s else ["NA", "NA", "NA", 0,
                                               len(runs[key])]))

    def med(model, scenario, conns, idle, measure):
        for key, s in stats.items():
            if key[0] == model and key[2:] == (scenario, conns, idle, measure):
                return s["median"] if s else None
        return None

    pp_conns = sorted({k[3] for k in stats if k[2] == "pingpong" and k[4] == 0})
    pp_idle = sorted({k[4] for k in stats if k[2] == "pingpong" and k[3] == 100})
    barrier = sorted({k[3] for k in stats if k[2] == "barrier"})

    lines = []
    lines.append("# Dispatch comparison\n")
    lines.append(f"- machine: {platform.node()}, {command_output(['nproc'])} cores, "
                 f"kernel {platform.release()}, "
                 + command_output(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]).strip())
    lines.append(f"- commit: {command_output(['git', 'rev-parse', '--short', 'HEAD'])}")
    lines.append(f"- mode: {'quick' if args.quick == '1' else 'full'}; "
                 f"{args.reps} interleaved repetitions per cell, "
                 f"{args.duration} s measured per ping-pong run; medians shown")
    lines.append("- server pinned to core 0 (`taskset -c 0`), `bench` and "
                 "`deadconn` to core 1; loopback; 64-byte messages")
    lines.append("- load: `bench --mode=pingpong --connections=C --size=64` "
                 "(one client thread, one epoll); idle connections held by "
                 "`deadconn --connections=N`; barrier: `bench --mode=barrier "
                 "--threads=N` (10 round trips of 13 bytes each)\n")

    if pp_conns:
        lines.append("## Ping-pong round trips/s vs connections (no idle connections)\n")
        lines.append("| model | " + " | ".join(str(c) for c in pp_conns) + " |")
        lines.append("|---|" + "---:|" * len(pp_conns))
        for m in models:
            lines.append(f"| {m} | " + " | ".join(
                fmt(med(m, "pingpong", c, 0, "round_trips_per_s")) for c in pp_conns) + " |")
        lines.append("")
    if pp_idle:
        lines.append("## Ping-pong round trips/s at 100 connections vs idle connections held\n")
        lines.append("| model | " + " | ".join(str(i) for i in pp_idle) +
                     f" | ratio {pp_idle[-1]} / 0 |")
        lines.append("|---|" + "---:|" * (len(pp_idle) + 1))
        for m in models:
            vals = [med(m, "pingpong", 100, i, "round_trips_per_s") for i in pp_idle]
            ratio = (vals[-1] / vals[0]) if vals[0] and vals[-1] else None
            lines.append(f"| {m} | " + " | ".join(fmt(v) for v in vals) +
                         f" | {fmt(ratio, 3)} |")
        lines.append("")
    # The thread-per-connection server's threads exit when their connection
    # closes, taking their CPU time out of schedstat: not measurable this way.
    cpu_rows = [(m, med(m, "pingpong", 100, 0, "server_cpu_us_per_round_trip")
                 if m != "threads" else None) for m in models]
    if any(v is not None for _, v in cpu_rows):
        lines.append("## Server CPU per round trip, 100 connections (µs, lower is better)\n")
        lines.append("On-CPU time of the server's threads (`/proc/PID/task/*/schedstat`) "
                     "over the whole bench run, divided by the round trips completed. "
                     "Both cores are saturated in ping-pong (each side's send also "
                     "does the other side's loopback receive work), so this shows "
                     "what one round trip costs the server better than the rate does.\n")
        lines.append("| model | µs per round trip |")
        lines.append("|---|---:|")
        for m, v in cpu_rows:
            note = " (not measurable: its threads exit with their connections)" \
                if m == "threads" else ""
            lines.append(f"| {m} | {fmt(v, 3)}{note} |")
        lines.append("")
    ratios = []
    for a, b in (("baton", "asio"), ("baton-t2", "asio-t2")):
        x = med(a, "pingpong", 100, 0, "round_trips_per_s")
        y = med(b, "pingpong", 100, 0, "round_trips_per_s")
        if x and y:
            ratios.append(f"| {a} / {b} | {fmt(x)} | {fmt(y)} | {x / y:.3f} |")
    if ratios:
        lines.append("## baton vs Boost.Asio, 100 connections, 64 B\n")
        lines.append("| pair | baton rt/s | asio rt/s | ratio |")
        lines.append("|---|---:|---:|---:|")
        lines += ratios
        lines.append("")
    if barrier:
        lines.append("## Barrier bench: mean of per-thread average round trip (µs, lower is better)\n")
        lines.append("| model | " + " | ".join(f"{t} threads" for t in barrier) + " |")
        lines.append("|---|" + "---:|" * len(barrier))
        for m in models:
            lines.append(f"| {m} | " + " | ".join(
                fmt(med(m, "barrier", t, 0, "mean_avg_us"), 1) for t in barrier) + " |")
        lines.append("")
    costs = [(m, med(m, "costs", 100, 0, "syscalls_per_round_trip"),
              med(m, "costs", 0, 10000, "rss_bytes_per_idle_connection"))
             for m in ("baton", "asio")]
    if any(c[1] is not None or c[2] is not None for c in costs):
        lines.append("## Costs (one server thread)\n")
        lines.append("| model | syscalls per round trip (`strace -c`, 100 connections) "
                     "| resident bytes per idle connection (10,000 held) |")
        lines.append("|---|---:|---:|")
        for m, sc, rss in costs:
            lines.append(f"| {m} | {fmt(sc, 2)} | {fmt(rss)} |")
        lines.append("")
    lines.append("NA: the run failed (see logs/); `select` cannot serve "
                 "descriptors >= FD_SETSIZE (1024), so it refuses clients "
                 "once many idle connections are held.\n")
    lines.append("Plots: `rate_vs_idle.png`, `rate_vs_connections.png`.")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")

    def write_dat(name, xs, scenario, fixed_conns=None):
        path = os.path.join(out, name)
        with open(path, "w") as f:
            f.write("# x " + " ".join(models) + "\n")
            for x in xs:
                row = []
                for m in models:
                    v = (med(m, scenario, x, 0, "round_trips_per_s")
                         if fixed_conns is None else
                         med(m, scenario, fixed_conns, x, "round_trips_per_s"))
                    row.append("NaN" if v is None else f"{v:.1f}")
                f.write(f"{x} " + " ".join(row) + "\n")
        return path

    def plot(dat, png, title, xlabel, logx):
        series = ", ".join(
            f"'{dat}' using 1:{i + 2} with linespoints lw 2 title '{m}'"
            for i, m in enumerate(models))
        gnuplot(f"""set terminal pngcairo size 900,560 noenhanced
set output '{png}'
set title '{title}'
set xlabel '{xlabel}'
set ylabel 'round trips / s'
set key outside right
set grid
set yrange [0:*]
{"set logscale x" if logx else ""}
plot {series}
""")

    if len(pp_idle) > 1:
        dat = write_dat("rate_vs_idle.dat", pp_idle, "pingpong", fixed_conns=100)
        plot(dat, os.path.join(out, "rate_vs_idle.png"),
             "ping-pong 64 B, 100 active connections, server on one core",
             "idle connections held", False)
    if len(pp_conns) > 1:
        dat = write_dat("rate_vs_connections.dat", pp_conns, "pingpong")
        plot(dat, os.path.join(out, "rate_vs_connections.png"),
             "ping-pong 64 B, no idle connections, server on one core",
             "active connections", True)


if __name__ == "__main__":
    main()
