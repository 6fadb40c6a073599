#!/usr/bin/env bash
# ingest_profile.sh - where a webhook acknowledgement's time goes (issue 13; docs/benchmarks.md):
# one run of the ingest figures of `make bench` (pgbench anchor, then build/bench-ingest) on a
# cluster with pg_stat_statements, printing after each figure the group commits and their
# requests, the statements the database ran (calls, total and mean ms, rows), the WAL they wrote,
# and the CPU dealsync used. Measures, asserts nothing.
#   SPECS="8:10 32:10 8:100"  connections:events per request, in order
#   REQUESTS=2000             requests per figure
#   HOLD_SPLIT=1              a session holds SHARE on sync_event for the whole run, so the
#                             inbox splitter waits and the figures are the ack path alone
#   PERF=1                    perf record of dealsync during each figure (perf.C.E.data here)
#   EXTRA="NAME=value ..."    more environment for dealsync serve (INGEST_COMMIT_THREADS=...)
#   BUILD=build               where dealsync and bench-ingest are
#   PG_OPTS="-c name=value"   more server options for the cluster (log_min_duration_statement=0)
#   SETUP_SQL="..."           SQL run once dealsync has migrated, before pgbench (what-if
#                             experiments on the schema: ALTER TABLE ingest_inbox ...)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
REQUESTS=${REQUESTS:-2000}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
for bin in dealsync bench-ingest; do
  [ -x "$BUILD/$bin" ] || { echo "ingest_profile: $BUILD/$bin is missing; build it with: make all $BUILD/bench-ingest" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/dealsync-ingest-profile.XXXXXX)
chmod 755 "$tmp"
pgport=$(( 20000 + RANDOM % 20000 ))
port=$(( 40000 + RANDOM % 10000 ))
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  scripts/pg.sh stop "$tmp/pg" || true
  [ "${KEEP_TMP:-0}" = 1 ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
url=$(PG_SERVER_OPTS="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all ${PG_OPTS:-}" \
  scripts/pg.sh start "$tmp/pg" "$pgport")
psql() { "$PGBIN/psql" "$@"; }
psql "$url" -qc "CREATE EXTENSION pg_stat_statements"
# A port another program took meanwhile makes dealsync exit at once: another port, up to 5 times.
for attempt in 1 2 3 4 5; do
  # shellcheck disable=SC2086 # EXTRA is a list of NAME=value words
  env DATABASE_URL="$url" PORT="$port" BIND_ADDRESS=127.0.0.1 PUBLIC_BASE_URL="http://127.0.0.1:$port" \
    SALESFORCE_ORG_ID=00D7F00000107XsUAI HUBSPOT_CLIENT_SECRET=bench-secret WORKER_THREADS=0 \
    LOG_LEVEL=warn ${EXTRA:-} "$BUILD/dealsync" serve >"$tmp/dealsync.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && break
  wait "$pid" || true
  pid=
  echo "ingest_profile: dealsync did not start on port $port (attempt $attempt):" >&2
  tail -n 5 "$tmp/dealsync.log" >&2
  port=$(( 40000 + RANDOM % 10000 ))
done
[ -n "$pid" ] || exit 1

[ -n "${SETUP_SQL:-}" ] && psql "$url" -qc "$SETUP_SQL"
psql "$url" -qc "CREATE TABLE bench_pgbench (id bigserial PRIMARY KEY, payload jsonb NOT NULL)"
body=$(printf '{"eventId":%d,"subscriptionId":7,"portalId":62515,"appId":1,"occurredAt":1733400000000,"subscriptionType":"deal.propertyChange","attemptNumber":0,"objectId":%d,"propertyName":"amount","propertyValue":"1200","changeSource":"CRM_UI"},' $(seq 1 20))
echo "INSERT INTO bench_pgbench (payload) VALUES ('[${body%,}]');" >"$tmp/insert.sql"
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; } # clock ticks
# PostgreSQL's CPU in clock ticks: the postmaster's own and its reaped children's, plus the
# children still running (backends, the WAL writer).
pgpid=$(head -n 1 "$tmp/pg/data/postmaster.pid")
pgcpu() {
  { awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pgpid/stat"
    for c in $(pgrep -P "$pgpid"); do awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || true; done
  } | awk '{ s += $1 } END { print s }'
}
# dealsync's context switches (every thread's, voluntary and not)
ctxt() { cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s }'; }
ms() { echo $(( $1 * 1000 / $(getconf CLK_TCK) )); } # clock ticks to ms
# timed FILE CMD...: runs CMD, writes its user+system CPU in ms to FILE
timed() { local f=$1; shift; local TIMEFORMAT='%3U %3S'; { time "$@" 2>/dev/null; } 2>"$f.t"; \
  awk '{ printf "%d\n", ($1 + $2) * 1000 }' "$f.t" >"$f"; }
if [ "${HOLD_SPLIT:-0}" = 1 ]; then
  psql "$url" -qc "BEGIN; LOCK TABLE sync_event IN SHARE MODE; SELECT pg_sleep(86400)" >/dev/null 2>&1 &
fi
first=0
for spec in ${SPECS:-8:10 32:10 8:100}; do
  c=${spec%:*}; e=${spec#*:}
  if [ "$e" = 10 ]; then
    p0=$(pgcpu)
    timed "$tmp/pgbench.cpu" "$PGBIN/pgbench" -n -c "$c" -j 2 -t $(( REQUESTS / c )) \
      -f "$tmp/insert.sql" "$url" >"$tmp/pgbench.out"
    p1=$(pgcpu)
    echo "pgbench INSERT+COMMIT, $c clients: $(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$tmp/pgbench.out") tps"
    echo "  CPU: pgbench $(cat "$tmp/pgbench.cpu") ms, PostgreSQL $(ms $(( p1 - p0 ))) ms"
  fi
  psql "$url" -qAtc "SELECT pg_stat_statements_reset()" >/dev/null
  g0=$(metric dealsync_ingest_groups_total); r0=$(metric dealsync_ingest_group_requests_total)
  cpu0=$(cpu); p0=$(pgcpu); x0=$(ctxt)
  if [ "${PERF:-0}" = 1 ]; then
    perf record -F 499 -g -p "$pid" -o "perf.$c.$e.data" >/dev/null 2>&1 & perfpid=$!
  fi
  if [ "${HOLD_SPLIT:-0}" = 1 ]; then
    timed "$tmp/client.cpu" "$BUILD/bench-ingest" hubspot "http://127.0.0.1:$port" "$REQUESTS" "$c" "$e" "$first" >"$tmp/out" || true
  else
    timed "$tmp/client.cpu" env BENCH_DATABASE_URL="$url" "$BUILD/bench-ingest" hubspot "http://127.0.0.1:$port" "$REQUESTS" "$c" "$e" "$first" >"$tmp/out" || true
  fi
  out=$(cat "$tmp/out")
  first=$(( first + REQUESTS * e ))
  if [ "${PERF:-0}" = 1 ]; then kill -INT "$perfpid"; wait "$perfpid" || true; fi
  cpu1=$(cpu); p1=$(pgcpu); x1=$(ctxt)
  g1=$(metric dealsync_ingest_groups_total); r1=$(metric dealsync_ingest_group_requests_total)
  echo "hubspot, $c connections, $e events a request: $out"
  echo "  CPU: bench-ingest $(cat "$tmp/client.cpu") ms, dealsync $(ms $(( cpu1 - cpu0 ))) ms," \
    "PostgreSQL $(ms $(( p1 - p0 ))) ms; dealsync context switches $(( x1 - x0 ));" \
    "group commits: $(( ${g1:-0} - ${g0:-0} )) for $(( ${r1:-0} - ${r0:-0} )) requests"
  echo "  calls | total ms | mean ms | rows | statement"
  psql "$url" -qAtF ' | ' -c "SELECT calls, round(total_exec_time::numeric, 1),
      round(mean_exec_time::numeric, 3), rows, left(regexp_replace(query, '\s+', ' ', 'g'), 100)
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'dealsync')
      AND query NOT LIKE '%pg_stat_statements%'
    ORDER BY total_exec_time DESC LIMIT 8" | sed 's/^/  /'
  psql "$url" -qAtc "SELECT '  WAL: ' || pg_size_pretty(sum(wal_bytes)) || ', ' || sum(wal_records)
    || ' records' FROM pg_stat_statements"
done
