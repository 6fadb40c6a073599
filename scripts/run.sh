#!/usr/bin/env bash
# run.sh - `make run`: dealsync on an embedded default. Without DATABASE_URL it starts a private
# PostgreSQL cluster in .run/pg of the checkout (kept between runs); without real CRM settings it
# uses the local sandbox values. Ctrl-C stops dealsync, then the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUN_DIR=$PWD/.run
mkdir -p "$RUN_DIR"
chmod 755 "$RUN_DIR"

pids=()
own_pg=false
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if $own_pg; then scripts/pg.sh stop "$RUN_DIR/pg"; echo "run: PostgreSQL stopped" >&2; fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM

if [ -z "${DATABASE_URL:-}" ]; then
  PG_PORT=${PG_PORT:-54329}
  DATABASE_URL=$(scripts/pg.sh start "$RUN_DIR/pg" "$PG_PORT")
  own_pg=true
  echo "run: private PostgreSQL in .run/pg on 127.0.0.1:$PG_PORT" >&2
fi
export DATABASE_URL
export PORT=${PORT:-8080}
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://localhost:$PORT}
export SALESFORCE_ORG_ID=${SALESFORCE_ORG_ID:-00D000000000001EAA}
export HUBSPOT_CLIENT_SECRET=${HUBSPOT_CLIENT_SECRET:-sandbox-client-secret}

"$BUILD/dealsync" serve &
pids+=($!)
echo "run: dealsync on http://localhost:$PORT (GET /healthz, /readyz, /metrics); Ctrl-C stops" >&2
wait "${pids[0]}"
