#!/usr/bin/env bash
# import.sh - `make bench-import`: what `dealsync import` costs. Seeds the sandbox with N
# opportunities (each with its own account and two contact roles) that exist before dealsync
# starts, imports them into an empty HubSpot, then seeds N deals in the synced pipeline and
# imports them the other way. For each direction it prints, from the sandbox's request log, the
# API calls per record made to each CRM, the wall time, and the largest share of HubSpot's
# 10-second limit used in any 10-second window. Both directions run, with webhooks and outbound
# messages delivered, as in production. N=10000 is the issue's size; the default is smaller.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${N:-200}
WORKERS=${WORKERS:-4}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

tmp=$(mktemp -d /tmp/dealsync-bench-import.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  scripts/pg.sh stop "$tmp/pg" >/dev/null 2>&1 || true
  if [ "${KEEP_TMP:-}" = 1 ]; then echo "bench: logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
# A port nobody listens on, below the ephemeral range (32768-60999) that outgoing connections
# draw from (a port picked there could be taken by one before PostgreSQL or the sandbox binds it).
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p=$((20000 + RANDOM % 12000))
  while ! port_is_free "$p"; do p=$((20000 + RANDOM % 12000)); done
  echo "$p"
}
wait_http() { for _ in $(seq 1 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }

export DATABASE_URL
# A port found free can still be taken before PostgreSQL binds it (other runs share the
# machine): another port then, as scripts/test.sh does.
for try in 1 2 3 4 5; do
  if DATABASE_URL=$(scripts/pg.sh start "$tmp/pg" "$(free_port)" 2>"$tmp/pg-start.err"); then
    break
  fi
  if [ "$try" = 5 ] || ! grep -q "Address already in use" "$tmp/pg-start.err"; then
    cat "$tmp/pg-start.err" >&2
    exit 1
  fi
done
# Records made before dealsync starts send nothing (delivery.drop_rate=1 while seeding). A port
# found free can be taken before the sandbox binds it (other runs share the machine): another.
for _ in 1 2 3 4 5; do
  SB_PORT=$(free_port)
  SB=http://127.0.0.1:$SB_PORT
  "$BUILD/dealsync-sandbox" --port "$SB_PORT" --set delivery.drop_rate=1 >"$tmp/sandbox.log" 2>&1 &
  sb_pid=$!
  wait_http "$SB/_sandbox/health" && break
  kill "$sb_pid" 2>/dev/null || true
  wait "$sb_pid" 2>/dev/null || true
done
pids+=("$sb_pid")
wait_http "$SB/_sandbox/health"

sb() { curl -fsS -X "$1" "$SB$2" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
drop() { sb PUT /_sandbox/settings "{\"delivery.drop_rate\": $1}" >/dev/null; }
# The sandbox decides to drop a webhook or outbound message when it sends it, not when the record
# changes: before deliveries are turned back on, those of the seeding must be gone, or the last
# seeded records reach dealsync as live changes (small live batches an import never pays).
delivered() {
  for _ in $(seq 1 600); do
    [ "$(curl -fsS "$SB/_sandbox/hubspot/webhooks" | jq '(.pending // 0) + (.inFlight // 0)')" = 0 ] &&
      [ "$(curl -fsS "$SB/_sandbox/salesforce/outbound" | jq '.queued | length')" = 0 ] && return 0
    sleep 0.2
  done
  echo "bench: the sandbox still delivers the seeding's messages" >&2
  return 1
}

# Seeding N=10000 one curl at a time takes hours: each kind of record is created by one curl
# reading its requests from a config file (one connection, in order); the ids come back one
# response a line. bulk PATH < bodies (one JSON body a line) prints the created ids in order.
bulk() {
  awk -v url="$SB$1" '{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); printf "%surl = \"%s\"\nrequest = \"POST\"\nheader = \"Content-Type: application/json\"\ndata = \"%s\"\nsilent\nshow-error\nwrite-out = \"\\n\"\n", (NR > 1 ? "next\n" : ""), url, $0 }' >"$tmp/bulk.cfg"
  curl -K "$tmp/bulk.cfg" | tee -a "$tmp/bulk.out" | jq -r '.Id // .id // empty'
}

echo "bench: seeding $N opportunities, $N accounts, $((2 * N)) contacts and $((2 * N)) contact roles" >&2
seq 1 "$N" | awk '{ printf "{\"Name\":\"Bench account %d\",\"Website\":\"https://bench%d.test\"}\n", $1, $1 }' |
  bulk /_sandbox/salesforce/records/Account >"$tmp/accounts"
[ "$(wc -l <"$tmp/accounts")" -eq "$N" ] || { echo "bench: account seeding failed" >&2; exit 1; }
awk '{ printf "{\"LastName\":\"First %d\",\"Email\":\"first%d@bench%d.test\",\"AccountId\":\"%s\"}\n", NR, NR, NR, $1
       printf "{\"LastName\":\"Second %d\",\"Email\":\"second%d@bench%d.test\",\"AccountId\":\"%s\"}\n", NR, NR, NR, $1 }' \
  "$tmp/accounts" | bulk /_sandbox/salesforce/records/Contact >"$tmp/contacts"
awk '{ printf "{\"Name\":\"Bench opportunity %d\",\"StageName\":\"Prospecting\",\"CloseDate\":\"2027-06-01\",\"Amount\":%d,\"AccountId\":\"%s\"}\n", NR, 1000 + NR, $1 }' \
  "$tmp/accounts" | bulk /_sandbox/salesforce/records/Opportunity >"$tmp/opportunities"
paste -d' ' "$tmp/opportunities" <(paste -d' ' - - <"$tmp/contacts") |
  awk '{ printf "{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\",\"IsPrimary\":true}\n{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\"}\n", $1, $2, $1, $3 }' |
  bulk /_sandbox/salesforce/records/OpportunityContactRole >"$tmp/roles"
[ "$(wc -l <"$tmp/roles")" -eq $((2 * N)) ] || { echo "bench: seeding failed" >&2; exit 1; }
# The records existed before Sync deals is switched on: the switch comes in a later second. The
# contact-role poller's first window starts at the switch's whole second (SOQL times have whole
# seconds), so roles seeded in that same second were found by it and synced as live changes, in
# small live batches, which an import of records made earlier never pays.
sleep 1.1

PORT=$(free_port)
export PORT BIND_ADDRESS=127.0.0.1 PUBLIC_BASE_URL=http://127.0.0.1:$PORT LOG_LEVEL=warn
export SALESFORCE_ORG_ID
SALESFORCE_ORG_ID=$(curl -fsS "$SB/_sandbox/salesforce/org" | jq -er .organizationId)
export SALESFORCE_LOGIN_URL=$SB SALESFORCE_CLIENT_ID=sandbox-client-id \
  SALESFORCE_CLIENT_SECRET=sandbox-client-secret SALESFORCE_REFRESH_TOKEN=sandbox-refresh-token
export HUBSPOT_API_BASE_URL=$SB HUBSPOT_ACCESS_TOKEN=sandbox-hubspot-token \
  HUBSPOT_CLIENT_SECRET=sandbox-client-secret HUBSPOT_APP_ID=1160452 \
  HUBSPOT_DEVELOPER_API_KEY=sandbox-developer-key WORKER_THREADS=$WORKERS
"$BUILD/dealsync" register >"$tmp/register.log" 2>&1
"$BUILD/dealsync" settings sync-deals on >>"$tmp/register.log" 2>&1
"$BUILD/dealsync" serve >"$tmp/dealsync.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$PORT/healthz"
delivered
drop 0

mark() { curl -fsS "$SB/_sandbox/requests?since=9000000000000000000" | jq -er .last_id; }

# API calls dealsync made since a mark: "salesforce_calls hubspot_calls peak_hubspot_10s".
calls_since() {
  curl -fsS "$SB/_sandbox/requests?since=$1" >"$tmp/requests.json"
  cp "$tmp/requests.json" "$tmp/requests-$2.json"
  jq -r '[.requests[] | select(.direction == "in")] |
    [(map(select(.system == "salesforce")) | length), (map(select(.system == "hubspot")) | length)]
    | @tsv' "$tmp/requests.json" | tr '\n' '\t'
  jq -r '.requests[] | select(.direction == "in" and .system == "hubspot") | .ts' "$tmp/requests.json" |
    sort -n | awk '{ t[NR] = $1; while (t[NR] - t[first + 1] >= 10000) first++;
      if (NR - first > peak) peak = NR - first } END { print peak + 0 }'
}

limit=$(curl -fsS "$SB/_sandbox/settings" | jq -r '."hubspot.rate_limit_max" // 190')
phase() { # label side
  local m start end out
  m=$(mark)
  start=$(date +%s.%N)
  "$BUILD/dealsync" import "$2" --wait >"$tmp/import-$2.out" 2>>"$tmp/import-$2.log" || {
    cat "$tmp/import-$2.out" "$tmp/import-$2.log" >&2
    exit 1
  }
  # Echoes of the import's own writes come back through webhooks: wait for the queue to settle.
  for _ in $(seq 1 600); do
    open=$("$PGBIN/psql" "$DATABASE_URL" -Atqc "select count(*) from sync_event where status in ('pending','running')")
    [ "$open" = 0 ] && break
    sleep 0.5
  done
  end=$(date +%s.%N)
  read -r sf hs peak <<<"$(calls_since "$m" "$2")"
  if [ "${BREAKDOWN:-}" = 1 ]; then # where the calls went, by endpoint (ids folded)
    jq -r '.requests[] | select(.direction == "in") | "\(.system) \(.method) \(.path)"' \
      "$tmp/requests-$2.json" | sed -E 's#/[0-9A-Za-z]{15,18}(/|$)#/ID\1#g; s#/[0-9]+(/|$)#/N\1#g' |
      sort | uniq -c | sort -rn | head -25 | sed 's/^/    /' >&2
  fi
  awk -v l="$1" -v n="$N" -v sf="$sf" -v hs="$hs" -v p="$peak" -v lim="$limit" -v s="$start" -v e="$end" 'BEGIN {
    printf "%-34s %6d records  salesforce %6d calls (%.3f/record)  hubspot %6d calls (%.3f/record)  total %.3f/record  wall %.1f s  hubspot peak %d calls in 10 s (%.0f%% of %d)\n",
      l, n, sf, sf / n, hs, hs / n, (sf + hs) / n, e - s, p, 100 * p / lim, lim }'
  sed 's/^/  /' "$tmp/import-$2.out"
}

echo "bench: N=$N WORKERS=$WORKERS, both directions running, deliveries on" >&2
phase "import salesforce -> hubspot" salesforce

# The HubSpot side: N deals in the pipeline the import made, created while deliveries are lost
# (they existed before), then imported.
drop 1
pipeline=$("$PGBIN/psql" "$DATABASE_URL" -Atqc "select hs_pipeline_id from pipeline_map order by created_at limit 1")
stage=$(curl -fsS "$SB/crm/v3/pipelines/deals" -H 'Authorization: Bearer sandbox-hubspot-token' |
  jq -er --arg p "$pipeline" '.results[] | select(.id == $p) | .stages[0].id')
seq 1 "$N" | awk -v p="$pipeline" -v s="$stage" '{ printf "{\"properties\":{\"dealname\":\"Bench deal %d\",\"pipeline\":\"%s\",\"dealstage\":\"%s\",\"amount\":\"%d\",\"closedate\":\"2027-07-01T00:00:00.000Z\"}}\n", $1, p, s, 5000 + $1 }' |
  bulk /_sandbox/hubspot/objects/deals >"$tmp/deals"
[ "$(wc -l <"$tmp/deals")" -eq "$N" ] || { echo "bench: deal seeding failed" >&2; exit 1; }
delivered
drop 0
phase "import hubspot -> salesforce" hubspot
dead=$("$PGBIN/psql" "$DATABASE_URL" -Atqc "select count(*) from sync_event where status = 'dead'")
echo "dead events: $dead"
