#!/usr/bin/env bash
# Plots the file written by `bench --mode=barrier --output=FILE` (lines of
# "<thread_id> <avg_us>") as a PNG: each thread's average by id, and the same
# averages sorted (the rank curve kecho's plot showed).
#
#   tools/plot_bench.sh bench.txt bench.png ["title"]
set -euo pipefail
if [[ $# -lt 2 || ! -r "$1" ]]; then
  echo "usage: $0 BENCH_FILE OUTPUT.png [TITLE]" >&2
  exit 2
fi
in="$1"; out="$2"; title="${3:-barrier bench: per-thread average round trip}"
sorted="$(mktemp)"
trap 'rm -f "$sorted"' EXIT
sort -g -k2 "$in" | awk '{print NR - 1, $2}' >"$sorted"
gnuplot <<GP
set terminal pngcairo size 900,560 noenhanced
set output '$out'
set title '$title'
set xlabel 'thread id (points) / rank (line)'
set ylabel 'average round trip (us)'
set grid
set key top left
plot '$in' using 1:2 with points pt 7 ps 0.6 title 'by thread id', \
     '$sorted' using 1:2 with lines lw 2 title 'sorted (rank curve)'
GP
echo "wrote $out" >&2
