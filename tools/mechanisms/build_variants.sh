#!/usr/bin/env bash
# Builds the echo server and the proxy once unpatched ("full") and once per
# patch in this directory, each with one adaptive mechanism turned off, for
# tools/mechanism_ab.sh. Every build is made from COMMIT in a scratch
# worktree (-c opt --config=bench); DEST/<name>/ gets baton_echo, proxy
# and BUILD_INFO (commit, patch checksum).
#
#   tools/mechanisms/build_variants.sh --dest=DIR [--commit=4198be7]
#       [--worktree=PATH] [--names=full,no-reread,...] [--smoke]
#
# --worktree: the scratch worktree (default ${TMPDIR:-/tmp}/baton-mechanisms-
# build): created detached at COMMIT if missing, reused (and reset to COMMIT)
# if it exists. --names: which builds (default: full and every *.patch).
# --smoke: after each build, one echo round trip through the built echo
# server and through the built proxy in front of it.
# The patches are made against 4198be7; at another commit one may no longer
# apply, and the script stops with git apply's message.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DEST=""; COMMIT=4198be7; WT="${TMPDIR:-/tmp}/baton-mechanisms-build"; NAMES=""; SMOKE=0
for arg in "$@"; do
  case "$arg" in
    --dest=*) DEST="${arg#--dest=}" ;;
    --commit=*) COMMIT="${arg#--commit=}" ;;
    --worktree=*) WT="${arg#--worktree=}" ;;
    --names=*) NAMES="${arg#--names=}"; NAMES="${NAMES//,/ }" ;;
    --smoke) SMOKE=1 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build_variants.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$DEST" ]] || { echo "build_variants.sh: --dest=DIR is required" >&2; exit 2; }
if [[ -z "$NAMES" ]]; then
  NAMES="full"
  for p in "$HERE"/*.patch; do NAMES+=" $(basename "$p" .patch)"; done
fi
for name in $NAMES; do
  [[ "$name" == full || -f "$HERE/$name.patch" ]] ||
    { echo "build_variants.sh: no patch $HERE/$name.patch" >&2; exit 2; }
done
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
SHA=$(git -C "$ROOT" rev-parse --verify "$COMMIT^{commit}")

if [[ -e "$WT/.git" ]]; then
  git -C "$WT" checkout -q --detach "$SHA"
  git -C "$WT" checkout -q -- .
else
  git -C "$ROOT" worktree add -q --detach "$WT" "$SHA"
fi
# The shared disk cache, if this checkout has one configured.
[[ -f "$ROOT/user.bazelrc" && ! -f "$WT/user.bazelrc" ]] && cp "$ROOT/user.bazelrc" "$WT/"

smoke() {  # smoke DIR: one round trip through echo, and through the proxy
  local dir=$1 log
  log=$(mktemp -d)
  "$dir/baton_echo" --threads=2 --port=0 2>"$log/echo.log" &
  local echo_pid=$! port="" pport proxy_pid ok=0
  for _ in $(seq 100); do
    port=$(grep -o 'listening on [^ ]*:[0-9]*' "$log/echo.log" 2>/dev/null | sed 's/.*://' || true)
    [[ -n "$port" ]] && break
    sleep 0.05
  done
  pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$dir/proxy" --threads=2 --port="$pport" --upstream="127.0.0.1:$port" 2>"$log/proxy.log" &
  proxy_pid=$!
  if python3 - "$port" "$pport" <<'PY'
import socket, sys, time
for port in map(int, sys.argv[1:]):
    for _ in range(100):
        try:
            s = socket.create_connection(("127.0.0.1", port), 2)
            break
        except OSError:
            time.sleep(0.05)
    s.settimeout(10)
    msg = b"mechanism variant smoke %d\n" % port
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    assert got == msg, (port, got)
    s.close()
PY
  then ok=1; fi
  kill "$proxy_pid" "$echo_pid" 2>/dev/null || true
  wait "$proxy_pid" "$echo_pid" 2>/dev/null || true
  rm -rf "$log"
  ((ok)) || { echo "build_variants.sh: smoke round trip failed for $dir" >&2; return 1; }
  echo "   smoke: echo and proxy round trips ok" >&2
}

for name in $NAMES; do
  echo "== $name: building at ${SHA:0:7} in $WT" >&2
  git -C "$WT" checkout -q -- .
  patch_sum="none"
  if [[ "$name" != full ]]; then
    git -C "$WT" apply "$HERE/$name.patch"
    patch_sum=$(sha256sum "$HERE/$name.patch" | cut -c1-16)
  fi
  if ! (cd "$WT" && bazel build -c opt --config=bench //server/compare:baton_echo \
          //server:proxy >"$DEST/build-$name.log" 2>&1); then
    tail -30 "$DEST/build-$name.log" >&2
    git -C "$WT" checkout -q -- .
    exit 1
  fi
  mkdir -p "$DEST/$name"
  cp -f "$WT/bazel-bin/server/compare/baton_echo" "$WT/bazel-bin/server/proxy" "$DEST/$name/"
  printf 'commit %s\npatch %s %s\n' "$SHA" "$name" "$patch_sum" >"$DEST/$name/BUILD_INFO"
  git -C "$WT" checkout -q -- .
  ((SMOKE)) && smoke "$DEST/$name"
done
# No bazel server left running beside the measurements.
(cd "$WT" && bazel shutdown) >/dev/null 2>&1 || true
echo "== built: $NAMES -> $DEST" >&2
