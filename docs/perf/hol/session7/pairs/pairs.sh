#!/bin/bash
# pairs.sh OUT ROUNDS "name=cmd" ...: alternates the servers over the goal cells
out=$1; rounds=$2; shift 2; SPECS=("$@")
for r in $(seq $rounds); do
  IFS=, read -ra cells <<<"${CELLS:-1 0,2 0,4 0,4 1,4 2}"; for cell in "${cells[@]}"; do
    read t s <<<"$cell"
    for spec in "${SPECS[@]}"; do
      name=${spec%%=*}; cmd=${spec#*=}
      res=$(/tmp/exp/hol1.sh "$cmd" $t $s 2)
      echo "$name $t $s $res" | tee -a $out
    done
  done
  echo "round $r done" >&2
done
