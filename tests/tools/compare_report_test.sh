#!/usr/bin/env bash
# Test: tools/compare_report.py turns a head-of-line raw.csv into
# report.md with the per-cell medians and the paired ratios against Asio,
# and draws hol_fast_p99.png.
set -euo pipefail
script="$1"
# A missing tool is a failure, not a pass: tools/setup.sh installs both.
for tool in python3 gnuplot; do
  if ! command -v "$tool" >/dev/null; then
    echo "FAIL: $tool not installed (tools/setup.sh installs it)" >&2
    exit 1
  fi
done
dir="${TEST_TMPDIR:-$(mktemp -d)}/report"
mkdir -p "$dir"
# Two repetitions of two cells (1 thread no slow, 4 threads 1 slow) for
# baton and asio. Cell (1, 0): baton 600 and 900 against 500 and 1000,
# so the pairs are 1.2 and 0.9 (median 1.05, one of two at or below 1),
# while the plain medians (750 against 750) would call it a tie.
{
  echo "model,server_threads,scenario,connections,idle,slow,rep,measure,value"
  row() { echo "$1,$2,hol,40,0,$3,$4,$5,$6"; }
  row baton 1 0 1 fast_p99_us 600;  row asio 1 0 1 fast_p99_us 500
  row baton 1 0 2 fast_p99_us 900;  row asio 1 0 2 fast_p99_us 1000
  row baton 1 0 1 fast_round_trips_per_s 110000
  row asio 1 0 1 fast_round_trips_per_s 100000
  row baton 1 0 2 fast_round_trips_per_s 90000
  row asio 1 0 2 fast_round_trips_per_s 100000
  row baton 4 1 1 fast_p99_us 800;  row asio 4 1 1 fast_p99_us 1000
  row baton 4 1 2 fast_p99_us NA;   row asio 4 1 2 fast_p99_us 700
  row baton 4 0 1 fast_p99_us 700;  row asio 4 0 1 fast_p99_us 700
} >"$dir/raw.csv"
python3 "$script" --out="$dir" --reps=2 --hol_duration=2 >/dev/null
report="$dir/report.md"
expect() {
  grep -qF -- "$1" "$report" || {
    echo "FAIL: report.md lacks: $1" >&2
    cat "$report" >&2
    exit 1
  }
}
# Plain medians, and the paired table: (1, 0) p99 1.05 over 2 pairs, one
# at or below 1; rate pairs 1.1 and 0.9, median 1.00. (4, 1): the NA
# repetition has no pair, so one ratio, 0.8. (4, 0): 700/700 = 1.00.
expect "| baton | 1 | 750 | NA |"
expect "## Paired with Asio, one shared io_context"
expect "| baton | 1 | 1.05 (1/2) | NA | 1.00 |"
expect "| baton | 4 | 1.00 (1/1) | 0.80 (1/1) | NA |"
# Asio is the reference, not a row of its own.
if grep -q "^| asio | 1 | [0-9.]* (" "$report"; then
  echo "FAIL: asio paired with itself" >&2
  exit 1
fi
# PNG signature: \x89 P N G.
[[ "$(head -c 4 "$dir/hol_fast_p99.png" | od -An -tx1 | tr -d ' \n')" == "89504e47" ]] || {
  echo "FAIL: not a PNG: $dir/hol_fast_p99.png" >&2; exit 1; }
echo PASS
