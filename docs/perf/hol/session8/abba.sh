#!/bin/bash
# abba.sh OUT ROUNDS A=cmd B=cmd: like pairs.sh, but odd rounds run B first (ABBA), so drift cancels
out=$1; rounds=$2; A=$3; B=$4
for r in $(seq $rounds); do
  IFS=, read -ra cells <<<"${CELLS:-1 0,2 0,4 0,4 1,4 2}"; for cell in "${cells[@]}"; do
    read t s <<<"$cell"
    if (( r % 2 )); then order=("$B" "$A"); else order=("$A" "$B"); fi
    for spec in "${order[@]}"; do
      name=${spec%%=*}; cmd=${spec#*=}
      echo "$name $t $s $("$(dirname "$0")/../session6/focused/hol1.sh" "$cmd" $t $s 2)" >> $out
    done
  done
  echo "round $r done $(date +%T)" >&2
done
