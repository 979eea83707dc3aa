#!/bin/bash
# multi.sh OUT ROUNDS "name|slice|cmd" ...: rotates the order of the specs each round
out=$1; rounds=$2; shift 2; SPECS=("$@"); n=${#SPECS[@]}
for r in $(seq $rounds); do
  IFS=, read -ra cells <<<"${CELLS:-2 0,4 0,4 1,4 2}"; for cell in "${cells[@]}"; do
    read t s <<<"$cell"
    for i in $(seq 0 $((n-1))); do
      spec=${SPECS[$(( (i + r) % n ))]}
      IFS='|' read name slice cmd <<<"$spec"
      echo "$name $t $s $(SLICE=$slice "$(dirname "$0")/hol1s.sh" "$cmd" $t $s 2 2>/dev/null)" >> $out
    done
  done
  echo "round $r done $(date +%T)" >&2
done
