#!/usr/bin/env bash
# Runs tools/hostile.py (the hostile-input and fault suite) against the
# servers built in this configuration. Arguments come from BUILD.bazel:
# the script, then --echo=... --http=...
set -euo pipefail
script=$1
shift
exec python3 "$script" "$@"
