#!/usr/bin/env bash
# Hostile-input and fault suite for //server:echo, //server:http and
# //server:proxy, run from outside the project: see tools/hostile.py.
#
#   tools/hostile.sh                              # bazel build -c opt, then run
#   tools/hostile.sh --echo=PATH --http=PATH      # run these binaries
#   tools/hostile.sh --only='^http/smuggle'       # other flags go to hostile.py
#
# Exits non-zero if any case fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
echo_bin=
http_bin=
proxy_bin=
args=()
for arg in "$@"; do
  case "$arg" in
    --echo=*) echo_bin=$(realpath "${arg#*=}") ;;
    --http=*) http_bin=$(realpath "${arg#*=}") ;;
    --proxy=*) proxy_bin=$(realpath "${arg#*=}") ;;
    -h | --help)
      sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) args+=("$arg") ;;
  esac
done

if [[ -z "$echo_bin" || -z "$http_bin" ]]; then
  cd "$here/.."
  bazel build -c opt //server:echo //server:http //server:proxy
  bin=$(bazel info -c opt bazel-bin)
  echo_bin=${echo_bin:-$bin/server/echo}
  http_bin=${http_bin:-$bin/server/http}
  proxy_bin=${proxy_bin:-$bin/server/proxy}
fi

exec python3 "$here/hostile.py" --echo="$echo_bin" --http="$http_bin" \
  ${proxy_bin:+--proxy="$proxy_bin"} \
  ${args[@]+"${args[@]}"}
