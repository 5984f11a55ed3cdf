#!/usr/bin/env bash
# System programs some tests use: Graphviz (renders the DOT diagrams) and a
# PostgreSQL server (the store, CLI and scheduler tests run on it as well as on
# SQLite; the test session starts its own throwaway server on loopback).
# As root (CI, a fresh container) they are installed from Debian's packages;
# otherwise the script says what is missing and the tests that need it skip
# (under CI the PostgreSQL tests fail instead of skipping).
set -euo pipefail
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
have_pg() {
    [ -n "${MSPFLOW_PG_BIN:-}" ] && [ -x "$MSPFLOW_PG_BIN/initdb" ] && return 0
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
have_pg || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "note: not installed: ${missing[*]} (tests that need them will be skipped)" >&2
fi
