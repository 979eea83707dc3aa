#!/usr/bin/env bash
# Test: tools/mechanisms/ab_report.py pairs each variant with the full build
# repetition by repetition across the three parts' raw.csv files, marks a
# cell only when every pair lies on one side of 1 beyond the A/A copy's
# spread, writes results.csv and report.md, and draws ab.png.
set -euo pipefail
script="$1"
for tool in python3 gnuplot; do
  if ! command -v "$tool" >/dev/null; then
    echo "FAIL: $tool not installed (tools/setup.sh installs it)" >&2
    exit 1
  fi
done
dir="${TEST_TMPDIR:-$(mktemp -d)}/ab"
mkdir -p "$dir/echo" "$dir/hol" "$dir/proxy"
# Echo, 1 thread, 3 repetitions. Rate: no-a 0.80, 0.82, 0.84 of full (worse,
# A/A within 0.01: marked). p99: 0.90, 0.90, 0.95 (lower is better:
# marked). max: 1.005, 0.995, 1.0 (A/A at 1.1: not marked). CPU: no-a
# failed its third run, so two pairs only: not marked.
{
  echo "build,threads,rep,order,round_trips_per_s,p50_us,p99_us,p999_us,max_us,server_cpu_us_per_rt"
  echo "full,1,1,0,100,1,10,1,100,5";    echo "no-a,1,1,1,80,1,9,1,100.5,6";    echo "full-aa,1,1,2,101,1,10,1,110,5"
  echo "full,1,2,0,100,1,10,1,100,5";    echo "no-a,1,2,1,82,1,9,1,99.5,6";     echo "full-aa,1,2,2,99,1,10,1,110,5"
  echo "full,1,3,0,100,1,10,1,100,5";    echo "no-a,1,3,1,84,1,9.5,1,100,NA";   echo "full-aa,1,3,2,100,1,10,1,110,5"
} >"$dir/echo/raw.csv"
# Head-of-line, 4 threads 1 slow: no-a 1.2, 0.8, 1.1 of full: both sides of
# 1, not marked.
{
  echo "model,server_threads,scenario,connections,idle,slow,rep,measure,value"
  for rep in 1 2 3; do
    echo "full,4,hol,40,0,1,$rep,fast_p99_us,1000"
    echo "full-aa,4,hol,40,0,1,$rep,fast_p99_us,1000"
  done
  echo "no-a,4,hol,40,0,1,1,fast_p99_us,1200"
  echo "no-a,4,hol,40,0,1,2,fast_p99_us,800"
  echo "no-a,4,hol,40,0,1,3,fast_p99_us,1100"
} >"$dir/hol/raw.csv"
# Proxy, 100 connections: no-a 1.1 of full's rate every time (better:
# marked); HAProxy equal to full.
{
  echo "proxy,load,connections,size,rep,round_trips_per_s,p50_us,p99_us,mb_per_s,cpu_us_per_rt"
  for rep in 1 2 3; do
    echo "full,pingpong-c100,100,64,$rep,50000,100,200,3.2,10"
    echo "no-a,pingpong-c100,100,64,$rep,55000,100,200,3.5,10"
    echo "full-aa,pingpong-c100,100,64,$rep,50000,100,200,3.2,10"
    echo "haproxy,pingpong-c100,100,64,$rep,50000,100,200,3.2,10"
  done
} >"$dir/proxy/raw.csv"
python3 "$script" --out="$dir" --reps=3 --quick=1 --smoke=0 --aa=full-aa \
  --commit=abc >/dev/null
report="$dir/report.md"
expect() {
  grep -qF -- "$1" "$report" || {
    echo "FAIL: report.md lacks: $1" >&2
    cat "$report" >&2
    exit 1
  }
}
expect "| 100 conn, 1 thread | round trips/s | 100.0 | 0.820 (0.80–0.84) ▼ | 1.000 (0.99–1.01) |"
expect "| 100 conn, 1 thread | p99 us | 10.0 | 0.900 (0.90–0.95) ▲ | 1.000 (1.00–1.00) |"
expect "| 100 conn, 1 thread | max us | 100.0 | 1.000 (0.99–1.00) | 1.100 (1.10–1.10) |"
expect "| 100 conn, 1 thread | server CPU us/rt | 5.0 | 1.200 (1.20–1.20) | 1.000 (1.00–1.00) |"
expect "| 4 thr, 1 slow | fast p99 us | 1,000.0 | 1.100 (0.80–1.20) | 1.000 (1.00–1.00) |"
expect "| 100 conn | round trips/s | 50,000.0 | 1.100 (1.10–1.10) ▲ | 1.000 (1.00–1.00) |"
expect "HAProxy / full in the same runs: 100 conn round trips/s 1.000 (1.00–1.00)"
expect "- \`no-a\`: worse without it: echo 100 conn, 1 thread round trips/s; better without it: echo 100 conn, 1 thread p99 us, proxy 100 conn round trips/s."
# The A/A copy is the noise floor, not a mechanism of the summary.
if grep -q '^- `full-aa`' "$report"; then
  echo "FAIL: the A/A copy has a summary line" >&2; exit 1
fi
# Every pair in results.csv: the failed run has none.
grep -qF 'echo,"100 conn, 1 thread",round trips/s,higher,no-a,3,100.0,84.0,0.84' "$dir/results.csv" ||
  { echo "FAIL: results.csv lacks the third rate pair" >&2; cat "$dir/results.csv" >&2; exit 1; }
if grep -qF 'server CPU us/rt,lower,no-a,3,' "$dir/results.csv"; then
  echo "FAIL: results.csv pairs a failed run" >&2; exit 1
fi
[[ "$(head -c 4 "$dir/ab.png" | od -An -tx1 | tr -d ' \n')" == "89504e47" ]] || {
  echo "FAIL: not a PNG: $dir/ab.png" >&2; exit 1; }
echo PASS
