#!/usr/bin/env python3
"""Turns tools/compare.sh's raw.csv into results.csv, report.md and plots."""

import argparse
import csv
import os
import platform
import statistics
import subprocess
from collections import defaultdict

MODEL_ORDER = ["baton", "baton-t2", "base", "base-t2", "asio", "asio-t2",
               "poll", "select", "threads"]
# Head-of-line models (tools/compare.sh hol_server_cmd).
HOL_ORDER = ["baton", "base", "asio", "asio-pt", "reuseport", "poll",
             "select", "threads"]
HOL_LABEL = {
    "baton": "baton (leader/followers, one epoll)",
    "base": "baton built from another commit (--base_echo)",
    "asio": "Asio, one io_context shared",
    "asio-pt": "Asio, io_context per thread (SO_REUSEPORT)",
    "reuseport": "epoll loop per thread (SO_REUSEPORT)",
    "poll": "poll, one thread",
    "select": "select, one thread",
    "threads": "thread per connection",
}


def load(path):
    """The values of each cell, and, for the head-of-line rows, each value
    by repetition: {(model, threads, slow, measure): {rep: value}}."""
    runs = defaultdict(list)
    hol_reps = defaultdict(dict)
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["scenario"] == "hol":
                # (model, threads, "hol", connections, slow, measure)
                key = (row["model"], int(row["server_threads"]), "hol",
                       int(row["connections"]), int(row["slow"]),
                       row["measure"])
                if row["value"] not in ("NA", ""):
                    hol_reps[(key[0], key[1], key[4], key[5])][
                        int(row["rep"])] = float(row["value"])
            else:
                key = (row["model"], row["server_threads"], row["scenario"],
                       int(row["connections"]), int(row["idle"]),
                       row["measure"])
            runs[key].append(row["value"])
    return runs, hol_reps


def add_variant_models(runs):
    """Models from compare.sh --variant=NAME=PATH (any name not known here)
    join the report orders after the built-in ones, in order of appearance."""
    for key in runs:
        model = key[0]
        if key[2] == "hol":
            if model not in HOL_ORDER:
                HOL_ORDER.append(model)
                HOL_LABEL[model] = "baton_echo build given as --variant"
        elif model not in MODEL_ORDER:
            MODEL_ORDER.append(model)


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


# hol_stats is keyed (model, threads, slow connections, measure).
def hol_median(hol_stats, model, threads, slow, measure):
    s = hol_stats.get((model, threads, slow, measure))
    return s["median"] if s else None


def hol_series(hol_stats):
    """[(model, threads)] in report order, and the sorted slow counts."""
    pairs = sorted({(k[0], k[1]) for k in hol_stats},
                   key=lambda p: (HOL_ORDER.index(p[0]), p[1]))
    slows = sorted({k[2] for k in hol_stats})
    return pairs, slows


def isolation_ratios(hol_stats):
    """{(model, threads, slow): fast p99(slow) / fast p99(0)} for slow > 0."""
    pairs, slows = hol_series(hol_stats)
    ratios = {}
    for m, t in pairs:
        base = hol_median(hol_stats, m, t, 0, "fast_p99_us")
        for k in slows:
            if k == 0:
                continue
            v = hol_median(hol_stats, m, t, k, "fast_p99_us")
            ratios[(m, t, k)] = v / base if v is not None and base else None
    return ratios


def paired_ratios(hol_reps, model, threads, slow, measure, ref="asio"):
    """Per-repetition ratios model / ref in one cell, in repetition order.

    Within a repetition the models of a cell run back to back, so the
    machine's state (which drifts over minutes) is nearly the same for
    both; the ratio of a pair moves less than either value.
    """
    a = hol_reps.get((model, threads, slow, measure), {})
    b = hol_reps.get((ref, threads, slow, measure), {})
    return [a[r] / b[r] for r in sorted(a) if r in b and b[r] > 0]


def paired_section(hol_reps, pairs, slows):
    """Each model against Asio's shared io_context, pair by pair."""
    others = [(m, t) for m, t in pairs if m != "asio" and ("asio", t) in pairs]
    if not others:
        return []
    lines = ["## Paired with Asio, one shared io_context\n",
             "Per repetition, the model's fast p99 divided by Asio's in the "
             "same cell (run back to back): the median of those ratios, and "
             "in brackets how many repetitions were at or below 1. Below 1 "
             "the model's tail is lower. The last column is the same for "
             "the fast connections' round trips/s (above 1: faster).\n"]
    lines.append("| model | threads | " +
                 " | ".join(f"p99, {k} slow" for k in slows) +
                 " | rate, 0 slow |")
    lines.append("|---|---:|" + "---:|" * (len(slows) + 1))
    for m, t in others:
        cells = []
        for k in slows:
            r = paired_ratios(hol_reps, m, t, k, "fast_p99_us")
            cells.append(f"{statistics.median(r):.2f} ({sum(x <= 1 for x in r)}"
                         f"/{len(r)})" if r else "NA")
        r = paired_ratios(hol_reps, m, t, 0, "fast_round_trips_per_s")
        cells.append(f"{statistics.median(r):.2f}" if r else "NA")
        lines.append(f"| {m} | {threads_label(m, t)} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def threads_label(model, threads):
    if model == "threads":
        return "per connection"
    if model in ("poll", "select"):
        return "1 (fixed)"
    return str(threads)


def hol_section(hol_stats, hol_reps, args):
    if not hol_stats:
        return []
    pairs, slows = hol_series(hol_stats)
    ratios = isolation_ratios(hol_stats)
    lines = ["## Head-of-line blocking: fast connections' p99 vs slow connections\n",
             f"{args.hol_conns} closed-loop connections of 64 B "
             f"(`bench --mode=pingpong --connections={args.hol_conns} "
             f"--slow_connections=K`, {args.hol_duration} s measured); each "
             f"message of the K slow connections makes the server's handler "
             f"sleep {args.hol_slow_us} µs (`--slow_us={args.hol_slow_us} "
             "--slow_mode=sleep`). All server threads pinned on core 0, the "
             "load on core 1. Fast connections' p99 round trip in µs "
             "(median over repetitions); in brackets the isolation ratio, "
             "p99 with K slow / p99 with none for the same server (1.0 = "
             "slow handlers do not hurt the others).\n"]
    lines.append("| model | threads | " +
                 " | ".join(f"{k} slow" for k in slows) + " |")
    lines.append("|---|---:|" + "---:|" * len(slows))
    for m, t in pairs:
        cells = []
        for k in slows:
            v = hol_median(hol_stats, m, t, k, "fast_p99_us")
            r = ratios.get((m, t, k))
            cells.append(fmt(v) + (f" ({fmt(r, 2)})" if k and r else ""))
        lines.append(f"| {m} | {threads_label(m, t)} | " + " | ".join(cells) + " |")
    lines.append("")
    if 0 in slows:
        lines.append("## Oversubscription: no slow connection, threads on one core\n")
        lines.append(f"{args.hol_conns} connections, none slow; all server "
                     "threads share core 0. Fast p99 (µs) and round trips/s.\n")
        lines.append("| model | threads | p50 µs | p99 µs | p99.9 µs | round trips/s |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for m, t in pairs:
            g = lambda meas: hol_median(hol_stats, m, t, 0, meas)
            lines.append(f"| {m} | {threads_label(m, t)} | {fmt(g('fast_p50_us'))} | "
                         f"{fmt(g('fast_p99_us'))} | {fmt(g('fast_p999_us'))} | "
                         f"{fmt(g('fast_round_trips_per_s'))} |")
        lines.append("")
    lines += paired_section(hol_reps, pairs, slows)
    lines.append("Models: " + "; ".join(
        f"`{m}` {HOL_LABEL[m]}" for m in HOL_ORDER
        if any(p[0] == m for p in pairs)) + ". Plot: `hol_fast_p99.png` "
        "(one panel per thread count).\n")
    return lines


def plot_hol(hol_stats, out, args):
    pairs, slows = hol_series(hol_stats)
    thread_counts = sorted({t for _, t in pairs})
    panels = []
    for t in thread_counts:
        # Fixed-threading models (poll, select, thread per connection)
        # appear in the 1-thread panel.
        series = [(m, tt) for m, tt in pairs if tt == t]
        dat = os.path.join(out, f"hol_t{t}.dat")
        with open(dat, "w") as f:
            f.write("# slow " + " ".join(m for m, _ in series) + "\n")
            for k in slows:
                row = []
                for m, tt in series:
                    v = hol_median(hol_stats, m, tt, k, "fast_p99_us")
                    row.append("NaN" if v is None else f"{v:.1f}")
                f.write(f"{k} " + " ".join(row) + "\n")
        plot = ", ".join(
            f"'{dat}' using 1:{i + 2} with linespoints lw 2 title '{m}'"
            for i, (m, _) in enumerate(series))
        panels.append(f"set title '{t} server thread{'s' if t > 1 else ''} on one core'\n"
                      f"plot {plot}\n")
    gnuplot(f"""set terminal pngcairo size {max(500, 460 * len(panels))},520 noenhanced
set output '{os.path.join(out, "hol_fast_p99.png")}'
set multiplot layout 1,{len(panels)} title 'fast connections p99 vs slow connections ({args.hol_conns} connections, {args.hol_slow_us} us sleep per slow message)'
set xlabel 'slow connections'
set ylabel 'fast p99 (us)'
set key top left
set grid
set logscale y
set xtics ({", ".join(str(k) for k in slows)})
{"".join(panels)}unset multiplot
""")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", default="0")
    ap.add_argument("--duration", default="?")
    ap.add_argument("--reps", default="?")
    ap.add_argument("--planned_reps", default=None)
    ap.add_argument("--budget", default="0")
    ap.add_argument("--hol_duration", default="?")
    ap.add_argument("--hol_conns", default="40")
    ap.add_argument("--hol_slow_us", default="1000")
    args = ap.parse_args()
    out = args.out
    runs, hol_reps = load(os.path.join(out, "raw.csv"))
    add_variant_models(runs)
    stats = {k: summarize(v) for k, v in runs.items()}
    main_stats = {k: v for k, v in stats.items() if k[2] != "hol"}
    hol_stats = {(k[0], k[1], k[4], k[5]): v for k, v in stats.items()
                 if k[2] == "hol"}
    stats = main_stats
    models = [m for m in MODEL_ORDER if any(k[0] == m for k in stats)]

    def row_of(key, s, runs_):
        return ([round(s["median"], 3), round(s["min"], 3), round(s["max"], 3),
                 s["runs"], s["failed"]] if s else
                ["NA", "NA", "NA", 0, len(runs_[key])])

    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "server_threads", "scenario", "connections",
                    "idle", "slow", "measure", "median", "min", "max", "runs",
                    "failed_runs"])
        for key in sorted(stats, key=lambda k: (MODEL_ORDER.index(k[0]),) + k[1:]):
            w.writerow(list(key[:5]) + [0, key[5]] +
                       row_of(key, stats[key], runs))
        # Head-of-line rows, plus the isolation ratio (fast p99 with k slow
        # connections / fast p99 with none, same model and threads).
        for key in sorted(hol_stats, key=lambda k: (HOL_ORDER.index(k[0]),) + k[1:]):
            m, t, slow, measure = key
            raw_key = (m, t, "hol", int(args.hol_conns), slow, measure)
            w.writerow([m, t, "hol", args.hol_conns, 0, slow, measure] +
                       row_of(raw_key, hol_stats[key], runs))
        for (m, t, slow), ratio in sorted(
                isolation_ratios(hol_stats).items(),
                key=lambda kv: (HOL_ORDER.index(kv[0][0]),) + kv[0][1:]):
            w.writerow([m, t, "hol", args.hol_conns, 0, slow,
                        "fast_p99_isolation_ratio",
                        "NA" if ratio is None else round(ratio, 3),
                        "", "", "", ""])

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
    cut = (f" (of {args.planned_reps} planned: stopped by --budget="
           f"{args.budget} s)" if args.planned_reps not in (None, args.reps)
           else "")
    lines.append(f"- mode: {'quick' if args.quick == '1' else 'full'}; "
                 f"{args.reps} interleaved repetition(s) per cell{cut}, "
                 f"{args.duration} s measured per ping-pong run; medians shown")
    lines.append("- server pinned to core 0 (`taskset -c 0`), `bench` and "
                 "`deadconn` to core 1; loopback; 64-byte messages")
    if models:
        lines.append("- load: `bench --mode=pingpong --connections=C --size=64` "
                     "(one client thread, one epoll); idle connections held by "
                     "`deadconn --connections=N`; barrier: `bench --mode=barrier "
                     "--threads=N` (10 round trips of 13 bytes each)")
    lines.append("")

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
    lines += hol_section(hol_stats, hol_reps, args)
    lines.append("NA: the run failed (see logs/); `select` cannot serve "
                 "descriptors >= FD_SETSIZE (1024), so it refuses clients "
                 "once many idle connections are held.\n")
    plots = [p for p in ("rate_vs_idle.png", "rate_vs_connections.png")
             if models]
    if hol_stats:
        plots.append("hol_fast_p99.png")
    lines.append("Plots: " + ", ".join(f"`{p}`" for p in plots) + ".")
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

    if hol_stats:
        plot_hol(hol_stats, out, args)
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
