#!/usr/bin/env bash
# bench.sh - `make bench`: webhook ingest and queue drain, each figure the median of RUNS runs
# (default 3) and each printed as a ratio against an anchor measured in the same run on the same
# PostgreSQL cluster (see docs/benchmarks.md):
#   ingest (dealsync serve with WORKER_THREADS=0: the ack path alone) against pgbench running a
#     one-row INSERT (autocommit: INSERT+COMMIT) of the same HubSpot body at the same number of
#     clients;
#   queue drain, one event per record, no-op handler (build/bench-queue) against the textbook
#     per-event SKIP LOCKED queue, each queue started on the backlog (cold) and running when it
#     lands (warm), and against graphile-worker 0.17, installed from npm into
#     $BUILD/bench-node for the benchmark only (never a dependency of dealsync; no lock file);
#     beside them the floor, the textbook queue claiming 200 jobs a statement and nothing more (no
#     lease past its transaction, no outcome, no order per record): about the least work a queue
#     on PostgreSQL does per event, so floor / textbook is about the most a queue shows here.
# BENCH_SKIP_GRAPHILE=1 skips graphile-worker (no npm registry at hand). BENCH_PARTS=queue runs the
# queue drain only (no ingest figures).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUNS=${RUNS:-3}
REQUESTS=${REQUESTS:-2000}
QEVENTS=${QEVENTS:-5000}
QTHREADS=${QTHREADS:-4}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

tmp=$(mktemp -d /tmp/dealsync-bench.XXXXXX)
chmod 755 "$tmp"
# Ports nobody listens on, below the ephemeral range (32768-60999) that outgoing connections
# draw from, as scripts/test.sh picks its own: dealsync's port was drawn from 40000-49999 and
# was once taken by a connection of the run before it ("Address already in use").
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p=$(( 20000 + RANDOM % 12000 ))
  while ! port_is_free "$p" || [ "$p" = "${2:-}" ]; do p=$(( 20000 + RANDOM % 12000 )); done
  printf -v "$1" '%s' "$p"
}
pick_port pgport
pick_port port "$pgport"
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  scripts/pg.sh stop "$tmp/pg" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
show_log() { echo "bench: dealsync log:" >&2; tail -n 20 "$tmp/dealsync.log" >&2; }
url=$(scripts/pg.sh start "$tmp/pg" "$pgport")
psql() { "$PGBIN/psql" "$@"; }

# graphile-worker, for the queue anchor: into the build directory, never the repository.
gw_dir=$PWD/$BUILD/bench-node
mkdir -p "$gw_dir"
if [ "${BENCH_SKIP_GRAPHILE:-0}" != 1 ] && [ ! -d "$gw_dir/node_modules/graphile-worker" ]; then
  npm install --prefix "$gw_dir" --no-save --no-package-lock --no-audit --no-fund \
    graphile-worker@0.17 >"$tmp/npm.log" 2>&1 || { cat "$tmp/npm.log" >&2; exit 1; }
fi
cp bench/graphile_worker.mjs "$gw_dir/"

DATABASE_URL=$url PORT=$port BIND_ADDRESS=127.0.0.1 PUBLIC_BASE_URL=http://127.0.0.1:$port \
  SALESFORCE_ORG_ID=00D7F00000107XsUAI HUBSPOT_CLIENT_SECRET=bench-secret WORKER_THREADS=0 \
  LOG_LEVEL=warn "$BUILD/dealsync" serve >"$tmp/dealsync.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null || { show_log; exit 1; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$pid/status"; }
rss_idle=$(rss)

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
record() { echo "$2" >>"$tmp/$1"; } # record NAME VALUE: one run's figure

# The pgbench anchor: one INSERT+COMMIT of a 10-event HubSpot body per transaction.
psql "$url" -qc "CREATE TABLE bench_pgbench (id bigserial PRIMARY KEY, payload jsonb NOT NULL)"
body=$(printf '{"eventId":%d,"subscriptionId":7,"portalId":62515,"appId":1,"occurredAt":1733400000000,"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":%d,"propertyName":"amount","propertyValue":"1200","changeSource":"CRM_UI"},' $(seq 1 20))
echo "INSERT INTO bench_pgbench (payload) VALUES ('[${body%,}]');" >"$tmp/insert.sql"
pgbench_tps() { # clients
  "$PGBIN/pgbench" -n -c "$1" -j 2 -t $(( REQUESTS / $1 )) -f "$tmp/insert.sql" "$url" 2>/dev/null |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
# Each figure sends events (and notifications) of its own id range: every one is new, none a
# duplicate of an earlier figure's. The HubSpot figures also wait until the inbox is split
# (all_split_seconds): the ack rate is the goal, the split rate says when the events were all
# in the queue.
echo 0 >"$tmp/next_id"
ingest() { # mode clients events
  local first; first=$(cat "$tmp/next_id")
  echo $(( first + REQUESTS * $3 )) >"$tmp/next_id"
  BENCH_DATABASE_URL=$url "$BUILD/bench-ingest" "$1" "http://127.0.0.1:$port" "$REQUESTS" "$2" "$3" "$first"
}

echo "bench: $RUNS runs; each figure below is the median"
for run in $(seq 1 "$RUNS"); do
  echo "-- run $run"
  if [ "${BENCH_PARTS:-all}" != queue ]; then
  for c in 8 32; do
    tps=$(pgbench_tps "$c"); echo "pgbench INSERT+COMMIT, $c clients: $tps tps"
    record "pg_$c" "$tps"
    out=$(ingest hubspot "$c" 10); echo "$out"
    record "hs_$c" "$(echo "$out" | field requests_per_second)"
    record "hs_p99_$c" "$(echo "$out" | field p99_ms)"
    record "hs_ratio_$c" "$(awk -v a="$(echo "$out" | field requests_per_second)" -v b="$tps" 'BEGIN { print a / b }')"
    record "hs_split_$c" "$(echo "$out" | field split_events_per_second)"
  done
  out=$(ingest hubspot 8 100); echo "$out"
  record hs100 "$(echo "$out" | field requests_per_second)"
  record hs100_p99 "$(echo "$out" | field p99_ms)"
  record hs100_split "$(echo "$out" | field split_events_per_second)"
  out=$(ingest salesforce 8 10); echo "$out"
  record sf "$(echo "$out" | field requests_per_second)"
  record sf_p99 "$(echo "$out" | field p99_ms)"
  fi

  "$PGBIN/dropdb" --if-exists -h 127.0.0.1 -p "$pgport" -U dealsync bench_queue
  "$PGBIN/createdb" -h 127.0.0.1 -p "$pgport" -U dealsync bench_queue
  qurl="${url%/*}/bench_queue"
  out=$("$BUILD/bench-queue" "$qurl" "$QEVENTS" "$QEVENTS" "$QTHREADS" 2>/dev/null); echo "$out"
  # cold: each queue starts on the backlog (its connections and first statements in its time);
  # warm: the backlog lands on running queues (bench/queue.c, docs/benchmarks.md)
  for start in cold warm; do
    tb=$(echo "$out" | grep "per_event_skip_locked\",\"start\":\"$start" | field events_per_second)
    fl=$(echo "$out" | grep "floor_batch_skip_locked\",\"start\":\"$start" | field events_per_second)
    ds=$(echo "$out" | grep "dealsync_by_record\",\"start\":\"$start" | field events_per_second)
    record "q_textbook_$start" "$tb"; record "q_dealsync_$start" "$ds"; record "q_floor_$start" "$fl"
    record "q_ratio_textbook_$start" "$(awk -v a="$ds" -v b="$tb" 'BEGIN { print a / b }')"
    record "q_ratio_floor_textbook_$start" "$(awk -v a="$fl" -v b="$tb" 'BEGIN { print a / b }')"
    record "q_ratio_dealsync_floor_$start" "$(awk -v a="$ds" -v b="$fl" 'BEGIN { print a / b }')"
  done
  # graphile-worker starts inside its clock (run() opens its pool): against the cold figure
  ds=$(echo "$out" | grep 'dealsync_by_record","start":"cold' | field events_per_second)
  if [ "${BENCH_SKIP_GRAPHILE:-0}" != 1 ]; then
    for gmode in default batched; do
      "$PGBIN/dropdb" --if-exists -h 127.0.0.1 -p "$pgport" -U dealsync bench_graphile
      "$PGBIN/createdb" -h 127.0.0.1 -p "$pgport" -U dealsync bench_graphile
      out=$(node "$gw_dir/graphile_worker.mjs" "${url%/*}/bench_graphile" "$QEVENTS" "$QTHREADS" "$gmode")
      echo "$out"
      gw=$(echo "$out" | field events_per_second)
      record "q_gw_$gmode" "$gw"
      record "q_ratio_gw_$gmode" "$(awk -v a="$ds" -v b="$gw" 'BEGIN { print a / b }')"
    done
  fi
done
rss_after=$(rss); hwm_after=$(hwm)

m() { median <"$tmp/$1"; }
echo
echo "== medians of $RUNS runs ($(date -u +%F), $(nproc) cores)"
if [ "${BENCH_PARTS:-all}" != queue ]; then
echo "ingest: $REQUESTS requests per figure; dealsync serve, WORKER_THREADS=0, HTTP_THREADS=${HTTP_THREADS:-default}, INGEST_COMMIT_THREADS=${INGEST_COMMIT_THREADS:-default}"
for c in 8 32; do
  printf "  HubSpot, 10 events/request, %2d connections: %7.0f req/s (%6.0f events/s), p99 ack %6.1f ms; pgbench INSERT+COMMIT %7.0f tps; ratio %.2f (goal 1.0)\n" \
    "$c" "$(m "hs_$c")" "$(awk -v r="$(m "hs_$c")" 'BEGIN { print r * 10 }')" "$(m "hs_p99_$c")" "$(m "pg_$c")" "$(m "hs_ratio_$c")"
done
printf "  HubSpot, 100 events/request, 8 connections: %7.0f req/s (%6.0f events/s, goal 50000), p99 ack %6.1f ms\n" \
  "$(m hs100)" "$(awk -v r="$(m hs100)" 'BEGIN { print r * 100 }')" "$(m hs100_p99)"
printf "  the same events split into the queue (first request to empty inbox): %6.0f, %6.0f and %6.0f events/s (10 events, 8 and 32 connections; 100 events)\n" \
  "$(m hs_split_8)" "$(m hs_split_32)" "$(m hs100_split)"
printf "  Salesforce, 10 notifications/message, 8 connections: %7.0f req/s, p99 ack %6.1f ms\n" "$(m sf)" "$(m sf_p99)"
fi
echo "queue drain: $QEVENTS events, one per record, $QTHREADS workers, no-op handler"
printf "  cold (each queue started on the backlog): dealsync %7.0f events/s; textbook per-event queue %7.0f events/s; ratio %.2f (goal 5)\n" \
  "$(m q_dealsync_cold)" "$(m q_textbook_cold)" "$(m q_ratio_textbook_cold)"
printf "  warm (the backlog lands on running queues): dealsync %7.0f events/s; textbook per-event queue %7.0f events/s; ratio %.2f (goal 5)\n" \
  "$(m q_dealsync_warm)" "$(m q_textbook_warm)" "$(m q_ratio_textbook_warm)"
for start in cold warm; do
  printf "  %s, the floor (the textbook queue claiming 200 a statement, nothing more): %7.0f events/s, %.2f the textbook's; dealsync %.2f of the floor's\n" \
    "$start" "$(m "q_floor_$start")" "$(m "q_ratio_floor_textbook_$start")" "$(m "q_ratio_dealsync_floor_$start")"
done
if [ "${BENCH_SKIP_GRAPHILE:-0}" != 1 ]; then
  printf "  graphile-worker 0.17 as installed %7.0f jobs/s; ratio %.2f (goal 3)\n" "$(m q_gw_default)" "$(m q_ratio_gw_default)"
  printf "  graphile-worker 0.17 batched (localQueue 20, batched completions) %7.0f jobs/s; ratio %.2f\n" \
    "$(m q_gw_batched)" "$(m q_ratio_gw_batched)"
fi
awk -v i="$rss_idle" -v a="$rss_after" -v m="$hwm_after" 'BEGIN {
  printf "memory (ingest server): idle RSS %d KiB, after the runs %d KiB, peak %d KiB\n", i, a, m
}'
