#!/usr/bin/env bash
# bench-e2e.sh - `make bench-e2e`: dealsync and the sandbox wired as `make run` wires them (both
# directions, dealsync's default workers), a private PostgreSQL, and build/bench-e2e: E2E_RECORDS
# opportunities, then E2E_RATE changes per second on each side for E2E_SECONDS with E2E_LATENCY_MS added to
# every API call, per-change latency (p50, p99, max per direction), dealsync's RSS, and
# "records different at quiet". HubSpot's rate limits are off (as in issue 14), in the sandbox and
# in dealsync's own budget (HUBSPOT_BURST_LIMIT, unless set), so throttling plays no part. Modes (E2E_MODES, default "sf hs both"): Amount edits in Salesforce, deal-name
# edits in HubSpot, both at once. E2E_SOAK_SECONDS=600: one "both" run streaming that long (a
# soak), RSS sampled every 5 s and printed as start, after the first minute, middle and end with
# the slope in MiB a minute (from minute 1 on); E2E_SOAK=1 is E2E_SOAK_SECONDS=600.
# Everything lives in a temporary directory removed at the end (KEEP_TMP=1 keeps the logs).
# E2E_PG_STATS=1: pg_stat_statements on the cluster, and at the end of each mode the database
# statements per handled record and the statements that make them (load-independent figures).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RECORDS=${E2E_RECORDS:-1000}
RATE=${E2E_RATE:-50}
SECONDS_=${E2E_SECONDS:-60}
LATENCY=${E2E_LATENCY_MS:-50}
QUIET_MAX=${E2E_QUIET_MAX_S:-300}
MODES=${E2E_MODES:-sf hs both}
if [ "${E2E_SOAK:-0}" = 1 ] && [ -z "${E2E_SOAK_SECONDS:-}" ]; then E2E_SOAK_SECONDS=600; fi
if [ -n "${E2E_SOAK_SECONDS:-}" ]; then
  MODES=both
  SECONDS_=$E2E_SOAK_SECONDS
fi
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

tmp=$(mktemp -d /tmp/dealsync-bench-e2e.XXXXXX)
chmod 755 "$tmp"
pids=()
stop_all() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  pids=()
}
cleanup() {
  stop_all
  scripts/pg.sh stop "$tmp/pg" || true
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "bench-e2e: logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p=$((20000 + RANDOM % 12000))
  while ! port_is_free "$p"; do p=$((20000 + RANDOM % 12000)); done
  echo "$p"
}
wait_http() {
  for _ in $(seq 1 900); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "bench-e2e: $1 did not answer" >&2
  return 1
}

pgport=$(free_port)
if [ "${E2E_PG_STATS:-0}" = 1 ]; then
  export PG_SERVER_OPTS="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.max=2000"
fi
# The port was free when picked, but another engineer's run may take it first: a new one, twice.
for try in 1 2 3; do
  if pgurl=$(scripts/pg.sh start "$tmp/pg" "$pgport"); then break; fi
  [ "$try" -lt 3 ] || exit 1
  echo "bench-e2e: PostgreSQL could not start on port $pgport; another port" >&2
  pgport=$(free_port)
done

# Statements per handled record: every statement the database ran in this mode's database
# (dealsync's, and bench-e2e's few polls) over the records the workers finished (one finish
# statement stamps a batch's outcomes with one time, so a record's outcomes of one handling
# share record and time).
pg_stats() {
  "$PGBIN/psql" -h 127.0.0.1 -p "$pgport" -U dealsync -d "$1" -qAtX -F ' ' <<'SQL'
WITH s AS (SELECT calls, query FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())),
     h AS (SELECT count(*) AS n FROM (SELECT DISTINCT source, object_type, record_id, at
                                        FROM sync_outcome) x)
SELECT 'handled records: ' || h.n || ', statements: ' || sum(s.calls) || ', per handled record: '
       || round(sum(s.calls)::numeric / greatest(h.n, 1), 1) FROM s, h GROUP BY h.n;
SELECT 'top statements (calls per handled record, then the statement):';
WITH s AS (SELECT calls, query FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())),
     h AS (SELECT count(*) AS n FROM (SELECT DISTINCT source, object_type, record_id, at
                                        FROM sync_outcome) x)
SELECT lpad(round(s.calls::numeric / greatest(h.n, 1), 2)::text, 7),
       left(regexp_replace(s.query, '\s+', ' ', 'g'), 150)
  FROM s, h ORDER BY s.calls DESC LIMIT 30;
SQL
}

run_mode() {
  local mode=$1 run=$2
  local db=bench_${mode}_$run
  "$PGBIN/createdb" -h 127.0.0.1 -p "$pgport" -U dealsync "$db"
  if [ "${E2E_PG_STATS:-0}" = 1 ]; then
    "$PGBIN/psql" -h 127.0.0.1 -p "$pgport" -U dealsync -d "$db" -qAtX \
      -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" >/dev/null
  fi
  local url=${pgurl%/*}/$db
  local sbport port
  sbport=$(free_port)
  "$BUILD/dealsync-sandbox" --port "$sbport" --set hubspot.rate_limit_max=100000000 \
    --set hubspot.search_per_second=100000 --set sf_api_daily_limit=100000000 \
    >"$tmp/sandbox-$mode-$run.log" 2>&1 &
  pids+=($!)
  local sb=http://127.0.0.1:$sbport
  wait_http "$sb/_sandbox/health" || { stop_all; return 1; }
  port=$(free_port)
  local org
  org=$(curl -fsS "$sb/_sandbox/salesforce/org" | jq -er .organizationId)
  (
    export DATABASE_URL=$url PORT=$port BIND_ADDRESS=127.0.0.1 PUBLIC_BASE_URL=http://127.0.0.1:$port
    # The sandbox's HubSpot limits are off, and so is dealsync's own HubSpot budget (its default,
    # 190 calls per 10 s, a private app's burst limit, otherwise paces the whole run: workers
    # stood idle for seconds each 10 s window). HUBSPOT_BURST_LIMIT=190 measures that instead.
    export HUBSPOT_BURST_LIMIT=${HUBSPOT_BURST_LIMIT:-100000}
    export SALESFORCE_ORG_ID=$org SALESFORCE_LOGIN_URL=$sb SALESFORCE_CLIENT_ID=sandbox-client-id \
      SALESFORCE_CLIENT_SECRET=sandbox-client-secret SALESFORCE_REFRESH_TOKEN=sandbox-refresh-token
    export HUBSPOT_API_BASE_URL=$sb HUBSPOT_ACCESS_TOKEN=sandbox-hubspot-token \
      HUBSPOT_CLIENT_SECRET=sandbox-client-secret HUBSPOT_APP_ID=1160452 \
      HUBSPOT_DEVELOPER_API_KEY=sandbox-developer-key
    "$BUILD/dealsync" register >"$tmp/register-$mode-$run.log" 2>&1 ||
      { cat "$tmp/register-$mode-$run.log" >&2; exit 1; }
    "$BUILD/dealsync" settings sync-deals on >>"$tmp/register-$mode-$run.log" 2>&1
    exec "$BUILD/dealsync" serve >"$tmp/dealsync-$mode-$run.log" 2>&1
  ) &
  local pid=$!
  pids+=($pid)
  wait_http "http://127.0.0.1:$port/healthz" || { stop_all; return 1; }
  local rc=0
  "$BUILD/bench-e2e" "$sb" "$url" "$pid" "$mode" "$RECORDS" "$RATE" "$SECONDS_" "$LATENCY" \
    "$QUIET_MAX" | tee "$tmp/result-$mode-$run.txt" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "bench-e2e: records differ (or the run failed); dealsync's warnings and errors:" >&2
    grep -E '"level":"(warn|error)"' "$tmp/dealsync-$mode-$run.log" | tail -n 40 >&2 || true
    cp "$tmp/dealsync-$mode-$run.log" "$tmp/sandbox-$mode-$run.log" "${BENCH_OUT:-/tmp}/" 2>/dev/null || true
  fi
  stop_all
  if [ "${E2E_PG_STATS:-0}" = 1 ]; then pg_stats "$db" | tee -a "$tmp/result-$mode-$run.txt"; fi
  return "$rc"
}

status=0
for mode in $MODES; do
  echo
  echo "== bench-e2e: mode $mode"
  run_mode "$mode" 1 || status=1
done
exit "$status"
