#!/usr/bin/env bash
# Test: tools/plot_bench.sh turns a bench --output file into a PNG.
set -euo pipefail
script="$1"
# A missing gnuplot is a failure, not a pass: tools/setup.sh installs it.
if ! command -v gnuplot >/dev/null; then
  echo "FAIL: gnuplot not installed (tools/setup.sh installs gnuplot-nox)" >&2
  exit 1
fi
dir="${TEST_TMPDIR:-$(mktemp -d)}"
for i in $(seq 0 49); do echo "$i $((100 + (i * 37) % 400)).5"; done >"$dir/bench.txt"
"$script" "$dir/bench.txt" "$dir/bench.png" "test plot"
# PNG signature: \x89 P N G.
[[ "$(head -c 4 "$dir/bench.png" | od -An -tx1 | tr -d ' \n')" == "89504e47" ]] || {
  echo "not a PNG: $dir/bench.png" >&2; exit 1; }
# Usage errors exit 2.
if "$script" "$dir/missing.txt" "$dir/x.png" 2>/dev/null; then
  echo "accepted a missing input" >&2; exit 1
fi
echo PASS
