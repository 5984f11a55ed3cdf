#!/usr/bin/env bash
# System programs some tests use: Graphviz (renders the DOT diagrams).
# As root (CI, a fresh container) they are installed from Debian's packages;
# otherwise the script says what is missing and the tests that need it skip.
set -euo pipefail
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "note: not installed: ${missing[*]} (tests that need them will be skipped)" >&2
fi
