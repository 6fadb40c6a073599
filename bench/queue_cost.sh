#!/usr/bin/env bash
# queue_cost.sh - what a warm drain of dealsync's queue costs the database per event, for two
# variants alternated (docs/benchmarks.md, "Queue, fifteenth session"): the backend CPU (the
# postmaster's reaped children, utime + stime: every backend of a bench-queue run has exited when
# it returns) and the WAL (bytes, and records from pg_stat_wal) of one
# `BENCH_QUEUE_MODES=dealsync BENCH_QUEUE_START=warm bench-queue URL EVENTS EVENTS 4` run, less
# those of the same run's setup alone (TRUNCATE, the fill, ANALYZE; measured once per variant).
# Steadier than the drain's wall time on a shared machine; measures, asserts nothing.
#   usage: bench/queue_cost.sh BENCH_QUEUE_A BENCH_QUEUE_B
#   PAIRS=8                 runs of each, alternated A, B, A, B...
#   EVENTS=20000            events (one per record)
#   SQL_A="..." SQL_B="..." run on that variant's database after its migrations (a schema
#                           variant with one binary: SQL_B="DROP INDEX sync_event_finished_idx")
#   BENCH_LOCK=FILE         each run under `flock FILE` (a shared machine's benchmark lock)
# The cluster runs with autovacuum off, so that no worker's CPU lands in a run's figure.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_A=$(realpath "${1:?usage: bench/queue_cost.sh BENCH_QUEUE_A BENCH_QUEUE_B}")
BIN_B=$(realpath "${2:?usage: bench/queue_cost.sh BENCH_QUEUE_A BENCH_QUEUE_B}")
PAIRS=${PAIRS:-8}
EVENTS=${EVENTS:-20000}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

tmp=$(mktemp -d /tmp/dealsync-queue-cost.XXXXXX)
chmod 755 "$tmp"
cleanup() {
  scripts/pg.sh stop "$tmp/pg" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
PG_SERVER_OPTS="-c autovacuum=off" scripts/pg.sh start "$tmp/pg" $((20000 + RANDOM % 20000)) >/dev/null
port=$(sed -n 4p "$tmp/pg/data/postmaster.pid")
sql() { "$PGBIN/psql" -X -qAt -v ON_ERROR_STOP=1 -h "$tmp/pg" -p "$port" -U dealsync -d "$@"; }
url() { echo "postgresql://dealsync@/$1?host=$tmp/pg&port=$port"; }
# locked CMD...: CMD (a function too) under BENCH_LOCK, if set
locked() {
  [ -z "${BENCH_LOCK:-}" ] || { exec 9>>"$BENCH_LOCK" && flock 9; }
  "$@"
  [ -z "${BENCH_LOCK:-}" ] || flock -u 9
}
tck=$(getconf CLK_TCK)

# mark: the postmaster's reaped children's CPU (ticks), the WAL's end (bytes) and its records so far
mark() {
  sql postgres -c "SELECT pg_stat_force_next_flush()" >/dev/null
  echo "$(awk '{ print $16 + $17 }' "/proc/$(head -1 "$tmp/pg/data/postmaster.pid")/stat")" \
    "$(sql postgres -F ' ' -c "SELECT pg_current_wal_lsn() - '0/0', wal_records FROM pg_stat_wal")"
}
# cost BEFORE AFTER: CPU µs, WAL bytes and WAL records per event between two marks
cost() {
  echo "$1 $2" | awk -v n="$EVENTS" -v t="$tck" \
    '{ printf "%.1f %.0f %.2f\n", ($4 - $1) * 1e6 / t / n, ($5 - $2) / n, ($6 - $3) / n }'
}
setup_only() {
  sql "$1" -c "TRUNCATE sync_event, sync_record, sync_outcome" -c "BEGIN" \
    -c "INSERT INTO sync_record (source, object_type, record_id)
        SELECT 'hubspot', 'deal', r::text FROM generate_series(1, $EVENTS) r" \
    -c "INSERT INTO sync_event (source, dedup_key, object_type, record_id, event_type,
                                occurred_at, payload)
        SELECT 'hubspot', e::text, 'deal', (1 + e % $EVENTS)::text, 'deal.propertyChange',
               now(), '{\"propertyName\":\"amount\"}' FROM generate_series(1, $EVENTS) e" \
    -c "ANALYZE sync_event" -c "ANALYZE sync_record" -c "COMMIT"
}

declare -A bin=([a]=$BIN_A [b]=$BIN_B) extra=([a]=${SQL_A:-} [b]=${SQL_B:-}) setup
for v in a b; do
  sql postgres -c "CREATE DATABASE $v"
  BENCH_QUEUE_MODES=none "${bin[$v]}" "$(url $v)" 1 1 1 >/dev/null 2>&1 # migrations only
  [ -z "${extra[$v]}" ] || sql "$v" -c "${extra[$v]}"
  before=$(mark)
  locked setup_only "$v" >/dev/null
  setup[$v]=$(cost "$before" "$(mark)")
  echo "setup $v: cpu_us_per_event wal_bytes_per_event wal_records_per_event ${setup[$v]}"
done

echo "run variant seconds cpu_us_per_event wal_bytes_per_event wal_records_per_event load"
for i in $(seq 1 "$PAIRS"); do
  for v in a b; do
    before=$(mark)
    out=$(BENCH_QUEUE_MODES=dealsync BENCH_QUEUE_START=warm locked "${bin[$v]}" "$(url $v)" \
      "$EVENTS" "$EVENTS" 4 2>/dev/null)
    sleep 0.3 # the pool's backends have exited; let the postmaster reap them
    read -r c w r < <(cost "$before" "$(mark)")
    read -r sc sw sr <<<"${setup[$v]}"
    echo "$i $v $(echo "$out" | sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p')" \
      "$(echo "$c $sc $w $sw $r $sr" | awk '{ printf "%.1f %.0f %.2f", $1 - $2, $3 - $4, $5 - $6 }')" \
      "$(cut -d' ' -f1 /proc/loadavg)"
  done
done | tee "$tmp/runs"
for v in a b; do
  echo -n "median $v:"
  for col in 3 4 5 6; do
    awk -v v="$v" -v c="$col" '$2 == v { print $c }' "$tmp/runs" | sort -g |
      awk '{ x[NR] = $1 } END { printf " %s", NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2 }'
  done
  echo " (seconds, cpu_us, wal_bytes, wal_records per event)"
done
