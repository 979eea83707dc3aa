#!/usr/bin/env bash
# Test: tools/compare_report.py reports models it does not know (builds
# given to tools/compare.sh as --variant=NAME=PATH) after the built-in ones,
# in ping-pong and head-of-line tables alike.
set -euo pipefail
script="$1"
for tool in python3 gnuplot; do
  if ! command -v "$tool" >/dev/null; then
    echo "FAIL: $tool not installed (tools/setup.sh installs it)" >&2
    exit 1
  fi
done
dir="${TEST_TMPDIR:-$(mktemp -d)}/variants"
mkdir -p "$dir"
# Two repetitions: baton and the variants full and no-x (ping-pong at 1 and
# 2 threads, head-of-line at 1 thread, no slow connection).
{
  echo "model,server_threads,scenario,connections,idle,slow,rep,measure,value"
  for rep in 1 2; do
    echo "baton,1,pingpong,100,0,0,$rep,round_trips_per_s,1000"
    echo "full,1,pingpong,100,0,0,$rep,round_trips_per_s,$((1100 + rep * 100))"
    echo "full-t2,2,pingpong,100,0,0,$rep,round_trips_per_s,2000"
    echo "no-x,1,pingpong,100,0,0,$rep,round_trips_per_s,900"
    echo "full,1,hol,40,0,0,$rep,fast_p99_us,$((400 + rep * 100))"
    echo "no-x,1,hol,40,0,0,$rep,fast_p99_us,700"
  done
} >"$dir/raw.csv"
python3 "$script" --out="$dir" --reps=2 --hol_duration=1 >/dev/null 2>&1 || {
  echo "FAIL: compare_report.py failed on variant models" >&2
  python3 "$script" --out="$dir" --reps=2 --hol_duration=1 >&2 || true
  exit 1
}
report="$dir/report.md"
expect() {
  grep -qF -- "$1" "$report" || {
    echo "FAIL: report.md lacks: $1" >&2
    cat "$report" >&2
    exit 1
  }
}
expect "| full | 1,250 |"
expect "| full-t2 | 2,000 |"
expect "| no-x | 900 |"
expect "| full | 1 | 550 |"
expect "| no-x | 1 | 700 |"
expect "\`full\` baton_echo build given as --variant"
# Built-in models first, variants after, in the order they first appear.
order=$(grep -E '^\| (baton|full|full-t2|no-x) \| [0-9,]+ \|$' "$report" | head -4 | cut -d' ' -f2 | tr '\n' ' ')
[[ "$order" == "baton full full-t2 no-x " ]] || {
  echo "FAIL: ping-pong rows in order '$order'" >&2; exit 1; }
echo PASS
