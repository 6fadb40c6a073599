#!/usr/bin/env bash
# bench.sh - `make bench`: webhook ingest throughput and memory, each as a ratio against a
# baseline measured in the same run (see README, Benchmarks). Starts its own PostgreSQL and
# dealsync (endpoints only, WORKER_THREADS=0, so the figures are the ingest path alone).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
REQUESTS=${REQUESTS:-2000}
THREADS=${THREADS:-8}
EVENTS=${EVENTS:-10}

tmp=$(mktemp -d /tmp/dealsync-bench.XXXXXX)
chmod 755 "$tmp"
pgport=$(( 20000 + RANDOM % 20000 ))
port=$(( 40000 + RANDOM % 10000 ))
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  scripts/pg.sh stop "$tmp/pg" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
show_log() { echo "bench: dealsync log:" >&2; tail -n 20 "$tmp/dealsync.log" >&2; }
url=$(scripts/pg.sh start "$tmp/pg" "$pgport")

DATABASE_URL=$url PORT=$port BIND_ADDRESS=127.0.0.1 PUBLIC_BASE_URL=http://127.0.0.1:$port \
  SALESFORCE_ORG_ID=00D7F00000107XsUAI HUBSPOT_CLIENT_SECRET=bench-secret WORKER_THREADS=0 \
  HTTP_THREADS=${HTTP_THREADS:-4} LOG_LEVEL=warn "$BUILD/dealsync" serve >"$tmp/dealsync.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$pid/status"; }
kill -0 "$pid" 2>/dev/null || { show_log; exit 1; }
rss_idle=$(rss)

run() { "$BUILD/bench-ingest" "$1" "http://127.0.0.1:$port" "$REQUESTS" "$THREADS" "$EVENTS"; }
rate() { sed -n 's/.*"requests_per_second":\([0-9.]*\).*/\1/p'; }

base=$("$BUILD/bench-ingest" healthz "http://127.0.0.1:$port" $(( REQUESTS * 10 )) "$THREADS" "$EVENTS"); echo "$base"
floor=$("$BUILD/bench-ingest" commit "$url" "$REQUESTS" "$THREADS" "$EVENTS"); echo "$floor"
hs=$(run hubspot); echo "$hs"
sf=$(run salesforce); echo "$sf"
rss_after=$(rss); hwm_after=$(hwm)
stored=$(/usr/lib/postgresql/15/bin/psql "$url" -Atqc "select count(*) from sync_event")

b=$(echo "$base" | rate); f=$(echo "$floor" | rate); h=$(echo "$hs" | rate); s=$(echo "$sf" | rate)
echo
echo "requests: $REQUESTS per mode, $THREADS connections, $EVENTS events per webhook request"
echo "events stored: $stored (expected $(( 2 * REQUESTS * EVENTS )))"
awk -v b="$b" -v f="$f" -v h="$h" -v s="$s" -v e="$EVENTS" 'BEGIN {
  printf "baseline: one INSERT+COMMIT per body, no HTTP  %7.0f/s  (1.00)\n", f
  printf "HubSpot webhook: verified, parsed, committed   %7.0f/s  (%.2f of the commit baseline, %.0f events/s)\n", h, h/f, h*e
  printf "Salesforce message: parsed, committed          %7.0f/s  (%.2f of the commit baseline, %.0f events/s)\n", s, s/f, s*e
  printf "for scale: GET /healthz                        %7.0f/s\n", b
}'
awk -v i="$rss_idle" -v a="$rss_after" -v m="$hwm_after" 'BEGIN {
  printf "memory: idle RSS %d KiB, after the run %d KiB (%.2fx idle), peak %d KiB (%.2fx idle)\n", i, a, a/i, m, m/i
}'

# Queue drain: dealsync's by-record claims against the textbook per-event queue (same run, same
# database, a fresh table for each).
QEVENTS=${QEVENTS:-20000}
qurl="${url%/*}/bench_queue"
/usr/lib/postgresql/15/bin/createdb -h 127.0.0.1 -p "$pgport" -U dealsync bench_queue
for records in $(( QEVENTS / 10 )) "$QEVENTS"; do
  echo
  echo "queue drain: $QEVENTS events over $records records ($(( QEVENTS / records )) per record), 4 workers, no-op handler"
  "$BUILD/bench-queue" "$qurl" "$QEVENTS" "$records" 4
done

