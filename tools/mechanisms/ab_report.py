#!/usr/bin/env python3
"""tools/mechanism_ab.sh's report: every variant / full ratio, paired within
a repetition, from the parts' raw.csv files; results.csv, report.md, ab.png."""

import argparse
import csv
import os
import statistics
import subprocess
from collections import defaultdict

# What each patch turns off (tools/mechanisms/<name>.patch).
WHAT = {
    "no-reread": "re-reads after a read (re-armed instead; parking's re-read stays)",
    "no-reread-all": "every re-read (MayReread always false), parking's too",
    "no-yield": "yields (read on up to the read bound, never kYield)",
    "no-park": "parking (MayPark always false, as park_relays=false)",
    "no-rescue": "rescue (no bounded leader wait while others run items)",
    "no-pollmark": "poll marks (the leader role only when the queue runs dry)",
    "full-aa": "nothing: a second copy of the full build (A/A noise floor)",
}
HIGHER, LOWER = "higher", "lower"  # which way is better


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def collect(out):
    """{(part, cell, metric, better): {build: {rep: value}}}, in order."""
    data = defaultdict(lambda: defaultdict(dict))
    for r in read_csv(os.path.join(out, "echo", "raw.csv")):
        cell = f"100 conn, {r['threads']} thread{'s' if r['threads'] != '1' else ''}"
        for field, metric, better in (
                ("round_trips_per_s", "round trips/s", HIGHER),
                ("p99_us", "p99 us", LOWER), ("max_us", "max us", LOWER),
                ("server_cpu_us_per_rt", "server CPU us/rt", LOWER)):
            v = num(r[field])
            if v is not None:
                data[("echo", cell, metric, better)][r["build"]][int(r["rep"])] = v
    for r in read_csv(os.path.join(out, "hol", "raw.csv")):
        if r["scenario"] != "hol":
            continue
        cell = f"{r['server_threads']} thr, {r['slow']} slow"
        metric = {"fast_p99_us": ("fast p99 us", LOWER),
                  "fast_p999_us": ("fast p99.9 us", LOWER),
                  "fast_round_trips_per_s": ("fast round trips/s", HIGHER)}.get(r["measure"])
        v = num(r["value"])
        if metric and v is not None:
            data[("hol", cell) + metric][r["model"]][int(r["rep"])] = v
    for r in read_csv(os.path.join(out, "proxy", "raw.csv")):
        if r["load"].startswith("pingpong"):
            cell = f"{r['connections']} conn"
            fields = (("round_trips_per_s", "round trips/s", HIGHER),
                      ("p99_us", "p99 us", LOWER),
                      ("cpu_us_per_rt", "proxy CPU us/rt", LOWER))
        else:
            cell = f"bulk {int(r['size']) // 1024} KiB"
            fields = (("mb_per_s", "MB/s each way", HIGHER),)
        for field, metric, better in fields:
            v = num(r[field])
            if v is not None:
                data[("proxy", cell, metric, better)][r["proxy"]][int(r["rep"])] = v
    return data


def ratios(by_build, build):
    """Per-repetition ratios build / full, repetitions both have."""
    full, var = by_build.get("full", {}), by_build.get(build, {})
    return [var[k] / full[k] for k in sorted(set(full) & set(var)) if full[k]]


def main():
    ap = argparse.ArgumentParser()
    for a in ("out", "reps", "quick", "smoke", "aa", "parts", "commit"):
        ap.add_argument(f"--{a}", default="")
    args = ap.parse_args()
    out = args.out
    data = collect(out)
    builds = []
    for by_build in data.values():
        for b in by_build:
            if b not in builds and b not in ("full", "haproxy", "direct", "baton"):
                builds.append(b)
    # The mechanisms in a fixed order, any other variant after them, the A/A
    # copy last.
    aa = args.aa or None
    order = ([b for b in WHAT if b in builds and b != aa] +
             [b for b in builds if b not in WHAT and b != aa] +
             [b for b in builds if b == aa])

    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["part", "cell", "metric", "better", "variant", "rep",
                    "full", "variant_value", "ratio"])
        for (part, cell, metric, better), by_build in data.items():
            full = by_build.get("full", {})
            for b in order:
                var = by_build.get(b, {})
                for rep in sorted(set(full) & set(var)):
                    w.writerow([part, cell, metric, better, b, rep, full[rep], var[rep],
                                round(var[rep] / full[rep], 4) if full[rep] else "NA"])

    def noise(key):
        """The A/A copy's largest deviation from 1 in this cell."""
        r = ratios(data[key], aa) if aa else []
        return max(abs(x - 1) for x in r) if r else None

    def verdict(key, b):
        """'+': turning it off is better here beyond the A/A floor; '-':
        worse; '' otherwise (or too few repetitions to say)."""
        r = ratios(data[key], b)
        if b == aa or len(r) < 3:
            return ""
        m, n = statistics.median(r), noise(key)
        if n is not None and abs(m - 1) <= n:
            return ""
        if not (all(x > 1 for x in r) or all(x < 1 for x in r)):
            return ""
        up = m > 1
        return "+" if up == (key[3] == HIGHER) else "-"

    def cell_text(key, b):
        r = ratios(data[key], b)
        if not r:
            return "—"
        mark = {"+": " ▲", "-": " ▼", "": ""}[verdict(key, b)]
        rng = f" ({min(r):.2f}–{max(r):.2f})" if len(r) > 1 else ""
        return f"{statistics.median(r):.3f}{rng}{mark}"

    mode = "smoke (numbers meaningless)" if args.smoke == "1" else (
        "quick grid" if args.quick == "1" else "full grid")
    lines = [
        "# Adaptive mechanisms: each one off vs the full build\n",
        f"Commit {args.commit}, {mode}, {args.reps} repetitions. Each number is "
        "variant / full: the median over repetitions of the ratio of the two "
        "builds' runs in the same repetition, with the range of those ratios "
        "in brackets. `full-aa` is a second copy of the full build run as a "
        "variant: its ratios are the noise of this run. ▲: turning the "
        "mechanism off is better here, ▼: worse (the mechanism buys this), "
        "each only when every repetition's ratio lies on the same side of 1 "
        "and the median is further from 1 than any A/A ratio of that cell "
        "(at least 3 repetitions). For rates higher is better; for latency "
        "and CPU lower is. The marks are a screening rule, not a test: with "
        "this many cells a few will be marked by chance; a mechanism's case "
        "rests on cells that move together and again in a second run.\n",
        "| variant | turns off |", "|---|---|"]
    lines += [f"| `{b}` | {WHAT.get(b, '?')} |" for b in order]
    lines.append("")
    titles = {"echo": "Uniform echo, 64 B ping-pong, 100 connections (server on core 0)",
              "hol": "Head-of-line cells, 40 connections, 1 ms per slow message "
                     "(tools/compare.sh --scenario=hol)",
              "proxy": "Proxy in front of echo, one thread (tools/proxy_compare.sh)"}
    keys_by_part = defaultdict(list)
    for key in data:
        keys_by_part[key[0]].append(key)
    for part in ("echo", "hol", "proxy"):
        keys = keys_by_part.get(part)
        if not keys:
            continue
        cols = [b for b in order if any(data[k].get(b) for k in keys)]
        lines += [f"## {titles[part]}\n",
                  "| cell | metric | full (median) | " + " | ".join(f"`{b}`" for b in cols) + " |",
                  "|---|---|---:|" + "---:|" * len(cols)]
        for key in keys:
            fv = list(data[key].get("full", {}).values())
            fm = f"{statistics.median(fv):,.1f}" if fv else "NA"
            lines.append(f"| {key[1]} | {key[2]} | {fm} | " +
                         " | ".join(cell_text(key, b) for b in cols) + " |")
        if part == "proxy":
            hk = [k for k in keys if data[k].get("haproxy")]
            if hk:
                lines += ["", "HAProxy / full in the same runs: " + "; ".join(
                    f"{k[1]} {k[2]} {cell_text(k, 'haproxy')}" for k in hk) + "."]
        lines.append("")

    lines.append("## Summary: where turning each mechanism off moved beyond the A/A floor\n")
    for b in order:
        if b == aa:
            continue
        worse = [f"{k[0]} {k[1]} {k[2]}" for k in data if verdict(k, b) == "-"]
        better = [f"{k[0]} {k[1]} {k[2]}" for k in data if verdict(k, b) == "+"]
        lines.append(f"- `{b}`: worse without it: {', '.join(worse) or 'nowhere'}; "
                     f"better without it: {', '.join(better) or 'nowhere'}.")
    lines.append("")
    fails = []
    for part, path, col in (("echo", "echo/raw.csv", "round_trips_per_s"),
                            ("proxy", "proxy/raw.csv", "round_trips_per_s")):
        n = sum(1 for r in read_csv(os.path.join(out, path)) if num(r[col]) is None)
        if n:
            fails.append(f"{part}: {n} runs")
    n = sum(1 for r in read_csv(os.path.join(out, "hol/raw.csv"))
            if r["measure"] == "fast_p99_us" and num(r["value"]) is None)
    if n:
        fails.append(f"hol: {n} runs")
    if fails:
        lines.append("Failed runs (NA, left out of the ratios; a stall longer than "
                     "the bench's 5 s timeout fails a run): " + "; ".join(fails) + ".\n")
    cost = os.path.join(os.path.dirname(os.path.abspath(__file__)), "code_cost.md")
    if os.path.exists(cost):
        lines += [open(cost).read().strip(), ""]
    lines.append("Data: `results.csv` (every paired ratio), `echo/raw.csv`, "
                 "`hol/raw.csv`, `proxy/raw.csv`, `BUILDS.txt`; plot `ab.png`.")
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")

    # Plot: the headline metric of each cell, one bar per variant.
    headline = [k for k in data if (k[0], k[2]) in (
        ("echo", "round trips/s"), ("echo", "p99 us"), ("hol", "fast p99 us"),
        ("proxy", "round trips/s"), ("proxy", "MB/s each way"))]
    series = [b for b in order if any(ratios(data[k], b) for k in headline)]
    if not headline or not series:
        return
    dat = os.path.join(out, "ab.dat")
    with open(dat, "w") as f:
        for k in headline:
            row = [f'"{k[0]} {k[1]} {k[2]}"']
            for b in series:
                r = ratios(data[k], b)
                row += ([f"{statistics.median(r):.4f}", f"{min(r):.4f}", f"{max(r):.4f}"]
                        if r else ["NaN", "NaN", "NaN"])
            f.write(" ".join(row) + "\n")
    # Ratios far out (a failed or stalled run) would flatten the rest.
    ends = [x for k in headline for b in series for x in ratios(data[k], b)]
    ylo = max(0.0, min(0.8, min(ends) - 0.05)) if ends else 0
    yhi = min(2.5, max(1.2, max(ends) + 0.05)) if ends else 2
    plots = ", ".join(
        (f"'{dat}'" if i == 0 else "''") +
        f" using {2 + 3 * i}:{3 + 3 * i}:{4 + 3 * i}" +
        (":xtic(1)" if i == 0 else "") + f" title '{b}'"
        for i, b in enumerate(series))
    script = f"""set terminal pngcairo size 1400,620 noenhanced
set output '{os.path.join(out, "ab.png")}'
set title 'variant / full, median of paired repetitions (bars: range); rates: higher is better, latency: lower'
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.7 border -1
set xtics rotate by 30 right font ',9'
set grid y
set key outside right
set bmargin 9
set lmargin 16
set yrange [{ylo}:{yhi}]
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2
plot {plots}
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"ab_report.py: gnuplot failed: {e}")


if __name__ == "__main__":
    main()
