#!/usr/bin/env bash
# run.sh - `make run`: dealsync on an embedded default. Without DATABASE_URL it starts a private
# PostgreSQL cluster in .run/pg of the checkout (kept between runs). Without real Salesforce or
# HubSpot credentials it starts the local sandbox of both (build/dealsync-sandbox) on a private
# port, points dealsync at it, seeds a small data set, registers dealsync's webhooks with it and
# prints how to watch a change travel. Ctrl-C stops dealsync, the sandbox, then the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUN_DIR=$PWD/.run
mkdir -p "$RUN_DIR"
chmod 755 "$RUN_DIR"

pids=() # started in this order; stopped in the reverse one
own_pg=false
cleanup() {
  trap - INT TERM EXIT
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  if $own_pg; then scripts/pg.sh stop "$RUN_DIR/pg"; echo "run: PostgreSQL stopped" >&2; fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM
trap 'echo "run: setup failed at scripts/run.sh line $LINENO" >&2' ERR

# .run/env: the environment of this run, for dealsync's other commands (settings, requeue,
# status, show, doctor, register) in another terminal: `. .run/env`.
write_env() {
  local v
  umask 077
  : >"$RUN_DIR/env"
  for v in "$@"; do
    [ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}" >>"$RUN_DIR/env"
  done
  umask 022
}

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Waits up to 20 s for url to answer 200.
wait_http() {
  for _ in $(seq 1 200); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "run: $1 did not answer" >&2
  return 1
}

if [ -z "${DATABASE_URL:-}" ]; then
  PG_PORT=${PG_PORT:-54329}
  DATABASE_URL=$(scripts/pg.sh start "$RUN_DIR/pg" "$PG_PORT")
  own_pg=true
  echo "run: private PostgreSQL in .run/pg on 127.0.0.1:$PG_PORT" >&2
fi
export DATABASE_URL
export PORT=${PORT:-8080}
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://localhost:$PORT}

# The same test as config_has_salesforce_api / config_has_hubspot_api.
has_real_api=false
if [ -n "${SALESFORCE_CLIENT_ID:-}" ] &&
  { { [ -n "${SALESFORCE_CLIENT_SECRET:-}" ] && [ -n "${SALESFORCE_REFRESH_TOKEN:-}" ]; } ||
    { [ -n "${SALESFORCE_USERNAME:-}" ] && [ -n "${SALESFORCE_PRIVATE_KEY_FILE:-}" ]; }; }; then
  has_real_api=true
fi
[ -n "${HUBSPOT_ACCESS_TOKEN:-}" ] && has_real_api=true

if $has_real_api; then
  export SALESFORCE_ORG_ID=${SALESFORCE_ORG_ID:-00D000000000001EAA}
  export HUBSPOT_CLIENT_SECRET=${HUBSPOT_CLIENT_SECRET:-sandbox-client-secret}
  "$BUILD/dealsync" serve &
  pids+=($!)
  # Secrets stay where the user keeps them: only where this run put things.
  write_env DATABASE_URL PORT PUBLIC_BASE_URL
  echo "run: dealsync on http://localhost:$PORT against the real APIs (GET /healthz, /readyz, /metrics); Ctrl-C stops" >&2
  echo "run: in another terminal, '. .run/env' (then add your credentials) lets dealsync's commands reach this database" >&2
  echo "run: with PUBLIC_BASE_URL set to the https URL at which Salesforce and HubSpot reach this service, register the webhooks once: $BUILD/dealsync register" >&2
  wait "${pids[0]}"
  exit 0
fi

# ---- the sandbox ---------------------------------------------------------------------------
# The sandbox starts empty every time while the cluster is kept, so the demo gets a database of
# its own, made afresh: links and events from an earlier run would name records that no longer
# exist (or, since the sandbox's ids repeat, other records).
if $own_pg; then
  PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
  PGOPTIONS="-c client_min_messages=warning" "$PGBIN/dropdb" --if-exists -h "$RUN_DIR/pg" -p "$PG_PORT" -U dealsync dealsync_sandbox
  "$PGBIN/createdb" -h "$RUN_DIR/pg" -p "$PG_PORT" -U dealsync dealsync_sandbox
  export DATABASE_URL=postgresql://dealsync@127.0.0.1:$PG_PORT/dealsync_sandbox
fi
SB_PORT=${SANDBOX_PORT:-8099}
while ! port_is_free "$SB_PORT"; do SB_PORT=$((20000 + RANDOM % 20000)); done
SB=http://127.0.0.1:$SB_PORT
"$BUILD/dealsync-sandbox" --port "$SB_PORT" >"$RUN_DIR/sandbox.log" 2>&1 &
pids+=($!)
wait_http "$SB/_sandbox/health"

# POST to the control API as a CRM user; prints the answer, fails on an error status.
sb() { curl -fsS -X "$1" "$SB$2" -H 'Content-Type: application/json' -d "$3"; }
# The Id of the record of type $1 whose field $2 is $3.
sf_id() { curl -fsS "$SB/_sandbox/salesforce/records/$1" | jq -er --arg v "$3" "[.[] | select(.$2 == \$v)][0].Id"; }

export SALESFORCE_ORG_ID
SALESFORCE_ORG_ID=$(curl -fsS "$SB/_sandbox/salesforce/org" | jq -er .organizationId)
export SALESFORCE_LOGIN_URL=$SB SALESFORCE_CLIENT_ID=sandbox-client-id \
  SALESFORCE_CLIENT_SECRET=sandbox-client-secret SALESFORCE_REFRESH_TOKEN=sandbox-refresh-token
export HUBSPOT_API_BASE_URL=$SB HUBSPOT_ACCESS_TOKEN=sandbox-hubspot-token \
  HUBSPOT_CLIENT_SECRET=sandbox-client-secret HUBSPOT_APP_ID=1160452 \
  HUBSPOT_DEVELOPER_API_KEY=sandbox-developer-key

# Seed: the sandbox starts with users alice@/bob@dealsync.test, record types New_Business and
# Renewal, accounts Acme Corp and Globex with one contact each. Add an account, contacts and the
# HubSpot owners whose e-mails match the Salesforce users (owners are matched by e-mail).
acme=$(sf_id Account Name "Acme Corp")
globex=$(sf_id Account Name Globex)
alice=$(sf_id User Username alice@dealsync.test)
bob=$(sf_id User Username bob@dealsync.test)
rt_new=$(sf_id RecordType DeveloperName New_Business)
rt_renewal=$(sf_id RecordType DeveloperName Renewal)
jane=$(sf_id Contact Email jane@acme.test)
john=$(sf_id Contact Email john@globex.test)
initech=$(sb POST /_sandbox/salesforce/records/Account \
  "{\"Name\":\"Initech\",\"Website\":\"https://initech.test\",\"OwnerId\":\"$bob\"}" | jq -er .Id)
peter=$(sb POST /_sandbox/salesforce/records/Contact \
  "{\"FirstName\":\"Peter\",\"LastName\":\"Gibbons\",\"Email\":\"peter@initech.test\",\"AccountId\":\"$initech\",\"OwnerId\":\"$bob\"}" | jq -er .Id)
ana=$(sb POST /_sandbox/salesforce/records/Contact \
  "{\"FirstName\":\"Ana\",\"LastName\":\"Lima\",\"Email\":\"ana@acme.test\",\"AccountId\":\"$acme\",\"OwnerId\":\"$alice\"}" | jq -er .Id)
sb POST /_sandbox/hubspot/owners '{"email":"alice@dealsync.test","firstName":"Alice","lastName":"Admin"}' >/dev/null
sb POST /_sandbox/hubspot/owners '{"email":"bob@dealsync.test","firstName":"Bob","lastName":"Seller"}' >/dev/null

# Register dealsync's endpoints with the sandbox exactly as with the real CRMs, and turn the
# sync on (it starts off, as in HubSpot).
# Its answer is on stdout, its log on stderr. The sandbox calls a registered outbound message as
# the record-triggered flow of a real org would, so register's advice to create that flow in
# Setup (the indented lines) does not apply here.
if ! "$BUILD/dealsync" register >"$RUN_DIR/register.out" 2>"$RUN_DIR/register.log"; then
  cat "$RUN_DIR/register.out" "$RUN_DIR/register.log" >&2
  exit 1
fi
grep -v '^ ' "$RUN_DIR/register.out" | sed 's/^/run: /' >&2
"$BUILD/dealsync" settings sync-deals on >"$RUN_DIR/dealsync.log" 2>&1
write_env DATABASE_URL PORT PUBLIC_BASE_URL SALESFORCE_ORG_ID SALESFORCE_LOGIN_URL \
  SALESFORCE_CLIENT_ID SALESFORCE_CLIENT_SECRET SALESFORCE_REFRESH_TOKEN HUBSPOT_API_BASE_URL \
  HUBSPOT_ACCESS_TOKEN HUBSPOT_CLIENT_SECRET HUBSPOT_APP_ID HUBSPOT_DEVELOPER_API_KEY ADMIN_TOKEN

# Opportunities made now queue outbound messages; the sandbox redelivers them until dealsync
# acknowledges, so they arrive once it serves.
close_in() { date -u -d "+$1 days" +%F; }
opportunity() { # name stage amount days owner account record_type contact role
  local id
  id=$(sb POST /_sandbox/salesforce/records/Opportunity \
    "{\"Name\":\"$1\",\"StageName\":\"$2\",\"Amount\":$3,\"CloseDate\":\"$(close_in "$4")\",\"OwnerId\":\"$5\",\"AccountId\":\"$6\",\"RecordTypeId\":\"$7\",\"Type\":\"New Customer\"}" |
    jq -er .Id)
  sb POST /_sandbox/salesforce/records/OpportunityContactRole \
    "{\"OpportunityId\":\"$id\",\"ContactId\":\"$8\",\"Role\":\"$9\",\"IsPrimary\":true}" >/dev/null
  echo "$id"
}
opp=$(opportunity "Acme Corp - 500 seats" Prospecting 60000 60 "$bob" "$acme" "$rt_new" "$jane" "Decision Maker")
opportunity "Globex - renewal 2027" "Negotiation/Review" 125000 30 "$alice" "$globex" "$rt_renewal" "$john" "Economic Buyer" >/dev/null
opportunity "Initech - pilot" Qualification 18000 45 "$bob" "$initech" "$rt_new" "$peter" "Technical Buyer" >/dev/null
sb POST /_sandbox/salesforce/records/OpportunityContactRole \
  "{\"OpportunityId\":\"$opp\",\"ContactId\":\"$ana\",\"Role\":\"Influencer\"}" >/dev/null

"$BUILD/dealsync" serve >>"$RUN_DIR/dealsync.log" 2>&1 &
pids+=($!)
wait_http "http://localhost:$PORT/healthz"

cat >&2 <<EOF
run: dealsync on http://localhost:$PORT (log .run/dealsync.log), against the sandbox Salesforce
     and HubSpot on $SB (log .run/sandbox.log; control API in tests/sandbox/README.md).
     Seeded: 3 accounts, 4 contacts, 2 record types, 3 opportunities with contact roles (just
     sent to dealsync as outbound messages), HubSpot owners matching the Salesforce users.
     (No Salesforce flow to create here: the sandbox calls the outbound message itself.)
  dealsync's commands against this demo, in another terminal:
    . .run/env; $BUILD/dealsync settings
  Change an opportunity in Salesforce, as a user would:
    curl -s -X PATCH $SB/_sandbox/salesforce/records/Opportunity/$opp -H 'Content-Type: application/json' -d '{"StageName":"Negotiation/Review","Amount":72000}'
  Watch it arrive on the HubSpot side:
    curl -s '$SB/crm/v3/objects/deals?properties=dealname,amount,dealstage,closedate' -H 'Authorization: Bearer sandbox-hubspot-token'
  And in dealsync's counters (webhook events received and stored, queue, worker outcomes):
    curl -s localhost:$PORT/metrics | grep -E '^dealsync_(webhook_events|queue|worker)'
  Ctrl-C stops dealsync, the sandbox and PostgreSQL.
EOF
wait "${pids[-1]}"
