#!/usr/bin/env bash
# test.sh - runs every test tier against a throwaway PostgreSQL cluster that it starts and stops.
# Called by `make test` after the build. BUILD selects the build directory (asan/tsan builds).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}

tmp=$(mktemp -d /tmp/dealsync-test.XXXXXX)
chmod 755 "$tmp"
# A port nobody listens on (several test runs may share the machine), below the ephemeral range
# (32768-60999) that outgoing connections draw from; a port taken between the look and
# PostgreSQL's bind is tried again with another (the start fails with "Address already in use").
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  port=$(( 20000 + RANDOM % 12000 ))
  while ! port_is_free "$port"; do port=$(( 20000 + RANDOM % 12000 )); done
}
pick_port
cleanup() {
  scripts/pg.sh stop "$tmp/pg" || true
  # KEEP_TMP=1 keeps the processes' logs (dealsync, sandbox) for a look after a failure.
  if [ "${KEEP_TMP:-}" = 1 ]; then echo "test: logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# fsync off: a throwaway cluster needs no durability across power loss, and tests run faster.
export DATABASE_ADMIN_URL
for try in 1 2 3 4 5; do
  if DATABASE_ADMIN_URL=$(PG_FSYNC=off scripts/pg.sh start "$tmp/pg" "$port" 2>"$tmp/pg-start.err"); then
    break
  fi
  if [ "$try" = 5 ] || ! grep -q "Address already in use" "$tmp/pg-start.err"; then
    cat "$tmp/pg-start.err" >&2
    exit 1
  fi
  echo "test: port $port was taken meanwhile; trying another" >&2
  pick_port
done
export DEALSYNC_BIN="$PWD/$BUILD/dealsync"
export SANDBOX_BIN="$PWD/$BUILD/dealsync-sandbox"
export FIXTURES_DIR="$PWD/tests/fixtures"
export MIGRATIONS_DIR="$PWD/migrations"
export TEST_TMPDIR="$tmp"
# Kept after the run (never committed: build*/ is ignored): the /admin page's screenshots.
export TEST_ARTIFACTS_DIR="$PWD/$BUILD/test-artifacts"
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120}

# make asan: any sanitizer report fails the run (docs/hardening.md), even one from a process
# whose exit status no test checks. AddressSanitizer and LeakSanitizer write theirs to a file per
# process here; UBSan (in the same runtime) ignores log_path and writes to stderr, which for
# dealsync and the sandbox is their log under $tmp: both are searched at the end. No leak is
# suppressed.
if [ "${SANITIZER_REPORTS:-}" = 1 ]; then
  mkdir -p "$tmp/sanitizer"
  export ASAN_OPTIONS="log_path=$tmp/sanitizer/asan:detect_leaks=1"
  export UBSAN_OPTIONS="print_stacktrace=1"
fi

status=0
if [ -z "${CK_RUN_SUITE:-}" ]; then
  echo "== deployment manifests (yamllint --strict)"
  yamllint --strict -c deploy/.yamllint deploy || status=1
fi
echo "== unit tests"
"$BUILD/test-unit" || status=1
echo "== integration tests (PostgreSQL on port $port)"
"$BUILD/test-integration" || status=1
# A short convergence run under chaos (docs/chaos.md), on its own cluster and sandbox: part of the
# full `make test`. CHAOS_SHORT=0 skips it; one suite (CK_RUN_SUITE) and `make asan` run it only
# with CHAOS_SHORT=1.
short_default=1
if [ -n "${CK_RUN_SUITE:-}" ] || [ "${SANITIZER_REPORTS:-}" = 1 ]; then short_default=0; fi
if [ "${CHAOS_SHORT:-$short_default}" = 1 ]; then
  echo "== chaos (300 changes)"
  BUILD=$BUILD CHAOS_CHANGES=${CHAOS_CHANGES:-300} CHAOS_KEEP=${CHAOS_KEEP:-0} scripts/chaos.sh || status=1
fi
if [ "${SANITIZER_REPORTS:-}" = 1 ]; then
  reports=$(grep -rlE --exclude-dir=pg ': runtime error: |ERROR: (AddressSanitizer|LeakSanitizer)' \
    "$tmp" || true)
  if [ -n "$reports" ]; then
    echo "== sanitizer reports (each fails the run)"
    for f in $reports; do echo "-- $f"; grep -A40 -E ': runtime error: |==ERROR: ' "$f"; done
    status=1
  fi
fi
exit $status
