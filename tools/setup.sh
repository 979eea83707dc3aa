#!/usr/bin/env bash
# Installs what baton needs to build, test and benchmark on Debian bookworm.
# Idempotent: installs only packages that are missing; safe to run again.
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap bazel-platforms g++ pkg-config
  # libraries wrapped in third_party/
  libabsl-dev libgflags-dev libgoogle-glog-dev libgtest-dev libgmock-dev
  libboost-dev libboost-system-dev libhttp-parser-dev libssl-dev libc-ares-dev
  # formatting (.clang-format; CI checks every C++ file follows it)
  clang-format
  # tests and tools (netcat-openbsd: the README's "Try it" step)
  python3 procps util-linux gnuplot-nox netcat-openbsd
  # HTTPS interoperability (the hostile suite's curl and wrk case)
  curl wrk
  # the openssl command line, for TLS interoperability checks
  openssl
  # model checking (tests/model)
  spin gcc
  # fuzzing (tools/fuzz.sh): clang with libFuzzer and ASan runtimes
  clang-14 libclang-rt-14-dev
)

# --bench adds the third-party load tools and servers used by
# tools/http_compare.sh and tools/proxy_compare.sh (not needed to build or
# test).
if [[ "${1:-}" == "--bench" ]]; then
  PACKAGES+=(wrk httperf nginx-light haproxy curl strace linux-perf)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present" >&2
fi
