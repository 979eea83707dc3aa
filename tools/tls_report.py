#!/usr/bin/env python3
"""Summarises a tools/tls_compare.sh run: medians per server and cell, the
ratios the TLS goals are stated in, and gnuplot PNGs of the mixed load
(keep-alive requests/s and p99 against the paced handshake rate)."""

import argparse
import csv
import json
import os
import statistics
import subprocess

ORDER = ["baton", "baton_hs", "nginx1", "nginx2", "haproxy", "asio_shared", "asio_thread"]
LABEL = {
    "baton": "baton",
    "baton_hs": "baton, handshake threads",
    "nginx1": "nginx, 1 worker",
    "nginx2": "nginx, 2 workers",
    "haproxy": "HAProxy",
    "asio_shared": "Asio, shared io_context",
    "asio_thread": "Asio, io_context per thread",
}


def label(server):
    """The report's name for `server`; baton_hsN is baton_hs at nice +N."""
    if server.startswith("baton_hs") and server[len("baton_hs"):].isdigit():
        return f"baton, handshake threads at nice +{server[len('baton_hs'):]}"
    return LABEL[server]


def order(server):
    if server in ORDER:
        return (ORDER.index(server), 0)
    return (ORDER.index("baton_hs"), int(server[len("baton_hs"):]))


def load(path):
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError):
        return None
    return d if d.get("ok") else None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0):
    return "NA" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return "NA" if a is None or not b else f"{a / b:.2f}x"


def main():
    p = argparse.ArgumentParser()
    for flag in ("out", "key", "threads", "ka_conns", "duration", "reps"):
        p.add_argument("--" + flag, required=True)
    p.add_argument("--hs_threads", default="1")
    p.add_argument("--hs_nice", default="3")
    a = p.parse_args()
    rows = list(csv.DictReader(open(os.path.join(a.out, "raw.csv"))))
    cells = {}  # (server, phase, rate) -> list of (result, paced result)
    failed = {}
    for r in rows:
        key = (r["server"], r["phase"], int(r["rate"]))
        res = load(r["log"])
        paced = load(r["paced_log"]) if r["paced_log"] else None
        if res is None or (r["paced_log"] and paced is None):
            failed[key] = failed.get(key, 0) + 1
        cpu = wall = None
        try:
            cpu, wall = float(r.get("cpu_s", "")), float(r.get("wall_s", ""))
        except ValueError:
            pass
        if res is not None:
            res = dict(res, cpu_s=cpu, wall_s=wall)
        cells.setdefault(key, []).append((res, paced))
    servers = sorted({k[0] for k in cells}, key=order)
    rates = sorted({k[2] for k in cells if k[1] == "mixed"})

    def stat(server, phase, rate, get):
        runs = cells.get((server, phase, rate), [])
        vals = []
        for res, paced in runs:
            try:
                vals.append(get(res, paced))
            except (TypeError, KeyError, AttributeError):
                pass
        return median(vals)

    ka_rate = lambda r, _: r["rate"]
    ka_p = lambda q: (lambda r, _: r["latency_us"][q])
    hs_rate = lambda _, p: p["rate"]
    hs_p99 = lambda _, p: p["latency_us"]["p99"]
    hs_late = lambda _, p: p.get("late", 0)
    # Server CPU: busy share of one core over the run, and microseconds per
    # request answered (every request of the run, warm-up included).
    busy = lambda r, _: 100.0 * r["cpu_s"] / r["wall_s"]

    def cpu_per_request(r, p):
        n = r["all_requests"] + (p["all_requests"] if p else 0)
        return 1e6 * r["cpu_s"] / n

    lines = [
        "# HTTPS on one core: baton, nginx, HAProxy, Boost.Asio\n",
        f"Certificate {a.key}, TLS 1.3, no session resumption; 128-byte body; "
        f"server on core 0, load (//client:bench) on core 1; baton and Asio "
        f"{a.threads} threads; {a.ka_conns} keep-alive clients; "
        f"{a.duration} s per run after 1 s warm-up; medians of {a.reps} "
        "interleaved reps (each cell a fresh server).\n",
    ]
    if any(k[0].startswith("baton_hs") for k in cells):
        lines.append(f"baton, handshake threads: the same server with "
                     f"`--tls_handshake_threads={a.hs_threads} "
                     f"--tls_handshake_nice={a.hs_nice}`.\n")
    if any(k[1] == "keepalive" for k in cells):
        lines += ["## Keep-alive HTTPS, no new connections\n",
                  "| server | requests/s | p50 us | p99 us | p99.9 us | server CPU us/request | server busy % |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for s in servers:
            lines.append(f"| {label(s)} | {fmt(stat(s, 'keepalive', 0, ka_rate))} | "
                         + " | ".join(fmt(stat(s, "keepalive", 0, ka_p(q)), 1)
                                      for q in ("p50", "p99", "p999"))
                         + f" | {fmt(stat(s, 'keepalive', 0, cpu_per_request), 2)}"
                         + f" | {fmt(stat(s, 'keepalive', 0, busy))} |")
        lines.append("")
    if any(k[1] == "handshakes" for k in cells):
        lines += ["## Full handshakes: a new connection per request, 50 clients\n",
                  "| server | handshakes/s | p99 us | server CPU us/handshake | server busy % |",
                  "|---|---:|---:|---:|---:|"]
        for s in servers:
            lines.append(f"| {label(s)} | {fmt(stat(s, 'handshakes', 0, ka_rate))} | "
                         f"{fmt(stat(s, 'handshakes', 0, ka_p('p99')), 1)} | "
                         f"{fmt(stat(s, 'handshakes', 0, cpu_per_request), 1)} | "
                         f"{fmt(stat(s, 'handshakes', 0, busy))} |")
        lines.append("")
    if rates:
        lines += ["## Keep-alive clients while new clients handshake at a paced rate\n",
                  "Keep-alive requests/s and p99 (us); `hs p99` is the paced "
                  "clients' own p99 from their scheduled start (handshake + one "
                  "request); `late` counts paced clients that could not start "
                  "on time (256 in flight).\n",
                  "| handshakes/s | server | keep-alive req/s | p99 | p99.9 | "
                  "hs achieved/s | hs p99 | late | server busy % |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        for rate in rates:
            for s in servers:
                lines.append(
                    f"| {rate} | {label(s)} | {fmt(stat(s, 'mixed', rate, ka_rate))} | "
                    f"{fmt(stat(s, 'mixed', rate, ka_p('p99')), 1)} | "
                    f"{fmt(stat(s, 'mixed', rate, ka_p('p999')), 1)} | "
                    f"{fmt(stat(s, 'mixed', rate, hs_rate))} | "
                    f"{fmt(stat(s, 'mixed', rate, hs_p99), 1)} | "
                    f"{fmt(stat(s, 'mixed', rate, hs_late))} | "
                    f"{fmt(stat(s, 'mixed', rate, busy))} |")
        lines.append("")
    for b in [s for s in servers if s.startswith("baton")]:
        lines += [f"## {label(b)} against each\n",
                  f"Ratios of medians: throughput {label(b)} / other (higher "
                  "is better for baton), p99 baton / other (lower is better).\n",
                  "| cell | other | req/s ratio | p99 ratio |", "|---|---|---:|---:|"]
        bcells = [("keepalive", 0), ("handshakes", 0)] + [("mixed", r) for r in rates]
        for phase, rate in bcells:
            if (b, phase, rate) not in cells:
                continue
            name = phase if phase != "mixed" else f"mixed {rate}/s"
            for s in servers:
                if s == b or (s, phase, rate) not in cells:
                    continue
                lines.append(
                    f"| {name} | {label(s)} | "
                    f"{ratio(stat(b, phase, rate, ka_rate), stat(s, phase, rate, ka_rate))} | "
                    f"{ratio(stat(b, phase, rate, ka_p('p99')), stat(s, phase, rate, ka_p('p99')))} |")
        lines.append("")
    if failed:
        lines += ["## Runs without a result\n"]
        lines += [f"- {s} {ph} {r}: {n}" for (s, ph, r), n in sorted(failed.items())]
        lines.append("")
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(a.out, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["server", "phase", "rate", "ka_rps", "ka_p50_us", "ka_p99_us",
                    "ka_p999_us", "paced_rps", "paced_p99_us", "paced_late"])
        for (s, ph, r) in sorted(cells):
            w.writerow([s, ph, r, stat(s, ph, r, ka_rate), stat(s, ph, r, ka_p("p50")),
                        stat(s, ph, r, ka_p("p99")), stat(s, ph, r, ka_p("p999")),
                        stat(s, ph, r, hs_rate), stat(s, ph, r, hs_p99),
                        stat(s, ph, r, hs_late)])
    if not rates:
        return
    dat = os.path.join(a.out, "tls_mixed.dat")
    with open(dat, "w") as f:
        for rate in rates:
            vals = []
            for s in servers:
                vals += [stat(s, "mixed", rate, ka_rate), stat(s, "mixed", rate, ka_p("p99"))]
            f.write(f"{rate} " + " ".join("NaN" if v is None else str(v) for v in vals) + "\n")
    thr = ", ".join(f"'{dat}' using 1:{2 + 2 * i} with linespoints title '{label(s)}'"
                    for i, s in enumerate(servers))
    p99 = ", ".join(f"'{dat}' using 1:{3 + 2 * i} with linespoints title '{label(s)}'"
                    for i, s in enumerate(servers))
    script = f"""
set terminal pngcairo size 1000,860 noenhanced
set output '{os.path.join(a.out, "tls_mixed.png")}'
set multiplot layout 2,1 title 'HTTPS keep-alive clients while new clients handshake ({a.key}, server on one core)'
set grid
set key outside right
set xlabel 'paced full handshakes per second'
set ylabel 'keep-alive requests/s'
set yrange [0:*]
plot {thr}
set ylabel 'keep-alive p99 (us)'
set logscale y
set yrange [*:*]
plot {p99}
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)


if __name__ == "__main__":
    main()
