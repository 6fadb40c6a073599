#!/usr/bin/env bash
# chaos.sh - `make chaos`: convergence under chaos (docs/chaos.md). Starts a private PostgreSQL,
# the sandbox with faults on (API errors, 429s, timeouts before and after the write, duplicated
# and reordered deliveries) and two `dealsync serve` processes with four workers each: the
# Salesforce outbound message points at the first, the HubSpot webhooks at the second. While the
# driver (build/chaos-driver) makes random user changes on both sides, one dealsync process is
# killed with SIGKILL every CHAOS_KILL_EVERY seconds and restarted, and PostgreSQL is restarted
# once. Then the checker waits for quiet and compares every record pair. Exit status: the
# checker's (1 on any mismatch, duplicate, dead event or lost change).
#
# CHAOS_CHANGES (10000), CHAOS_SECONDS (3600, a cap on the changing phase), CHAOS_SEED (1),
# CHAOS_RATE (changes per second, 10), CHAOS_KILL_EVERY (20), CHAOS_PG_RESTART_AFTER (30 s),
# CHAOS_QUIET_SECONDS (900), CHAOS_KEEP (1: keep the run directory; 0: remove it on success).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export CHAOS_SEED=${CHAOS_SEED:-1} CHAOS_CHANGES=${CHAOS_CHANGES:-10000}
export CHAOS_SECONDS=${CHAOS_SECONDS:-3600} CHAOS_RATE=${CHAOS_RATE:-10}
KILL_EVERY=${CHAOS_KILL_EVERY:-20}
PG_RESTART_AFTER=${CHAOS_PG_RESTART_AFTER:-30}
KEEP=${CHAOS_KEEP:-1}

dir=$(mktemp -d /tmp/dealsync-chaos.XXXXXX)
chmod 755 "$dir"
export CHAOS_DIR=$dir
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Below Linux's ephemeral range (32768-60999): a port an outgoing connection holds cannot be
# listened on, and dealsync is restarted on the same port all the time.
free_port() {
  local p=$((20000 + RANDOM % 12000))
  while ! port_is_free "$p"; do p=$((20000 + RANDOM % 12000)); done
  echo "$p"
}
say() { echo "chaos: $*" | tee -a "$dir/events.log" >&2; }
is_running() { # a zombie (exited, not yet reaped) is not running
  local state
  state=$(ps -o stat= -p "$(cat "$dir/$1.pid")" 2>/dev/null) && [[ $state != Z* ]]
}

status=1
cleanup() {
  trap - EXIT INT TERM
  touch "$dir/stop-chaos" "$dir/stop-log"
  [ -n "${loop_pid:-}" ] && wait "$loop_pid" 2>/dev/null || true
  for name in A B; do
    [ -f "$dir/$name.pid" ] && kill -TERM "$(cat "$dir/$name.pid")" 2>/dev/null || true
  done
  for name in A B; do
    [ -f "$dir/$name.pid" ] && for _ in $(seq 1 100); do is_running "$name" || break; sleep 0.2; done
  done
  [ -n "${log_pid:-}" ] && wait "$log_pid" 2>/dev/null || true
  [ -n "${sb_pid:-}" ] && { kill -TERM "$sb_pid" 2>/dev/null || true; wait "$sb_pid" 2>/dev/null || true; }
  scripts/pg.sh stop "$dir/pg" || true
  if [ "$KEEP" = 0 ] && [ "$status" = 0 ]; then rm -rf "$dir"; else echo "chaos: run directory $dir" >&2; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- PostgreSQL and the sandbox ----------------------------------------------------------------
pg_port=$(free_port)
export DATABASE_URL
DATABASE_URL=$(PG_FSYNC=off scripts/pg.sh start "$dir/pg" "$pg_port")
sb_port=$(free_port)
export CHAOS_SANDBOX_URL=http://127.0.0.1:$sb_port
# HubSpot retries a webhook for a day and Salesforce an outbound message for 24 hours: the
# sandbox retries (fast) for as long as the run lasts. The rate limits are raised so that the
# injected 429s, not the sandbox's burst window, decide the throttling; the search limit stays.
"$BUILD/dealsync-sandbox" --port "$sb_port" --seed "$CHAOS_SEED" \
  --set hubspot.webhook_retries=100000 --set hubspot.webhook_backoff_ms=100 \
  --set hubspot.webhook_backoff_max_ms=2000 --set hubspot.rate_limit_max=100000 \
  --set sf_api_daily_limit=100000000 --set hubspot.rate_limit_daily=100000000 \
  --set sf_om_retry_first_ms=100 --set sf_om_retry_cap_ms=2000 \
  --set core.log_body_bytes=4096 >"$dir/sandbox.log" 2>&1 &
sb_pid=$!
for _ in $(seq 1 100); do curl -fs -o /dev/null "$CHAOS_SANDBOX_URL/_sandbox/health" && break; sleep 0.1; done

# ---- dealsync's environment, the mappings file, registration ----------------------------------
port_a=$(free_port)
port_b=$(free_port)
while [ "$port_b" = "$port_a" ]; do port_b=$(free_port); done
org_id=$(curl -fsS "$CHAOS_SANDBOX_URL/_sandbox/salesforce/org" | jq -er .organizationId)
cat >"$dir/mappings.json" <<'EOF'
[{"salesforce": "Type", "hubspot": "dealtype", "rule": "two_way",
  "values": {"New Customer": "newbusiness", "Existing Customer - Upgrade": "existingbusiness"}}]
EOF
export SALESFORCE_ORG_ID=$org_id SALESFORCE_LOGIN_URL=$CHAOS_SANDBOX_URL \
  SALESFORCE_CLIENT_ID=sandbox-client-id SALESFORCE_CLIENT_SECRET=sandbox-client-secret \
  SALESFORCE_REFRESH_TOKEN=sandbox-refresh-token HUBSPOT_API_BASE_URL=$CHAOS_SANDBOX_URL \
  HUBSPOT_ACCESS_TOKEN=sandbox-hubspot-token HUBSPOT_CLIENT_SECRET=sandbox-client-secret \
  HUBSPOT_APP_ID=1160452 HUBSPOT_DEVELOPER_API_KEY=sandbox-developer-key \
  MAPPINGS_FILE=$dir/mappings.json WORKER_THREADS=4 QUEUE_LEASE_SECONDS=30 \
  QUEUE_RETRY_BASE_MS=500 QUEUE_RETRY_MAX_MS=10000 QUEUE_POLL_INTERVAL_MS=1000 \
  DELETE_POLL_INTERVAL_SECONDS=5 CONTACT_ROLE_POLL_INTERVAL_SECONDS=2 API_TIMEOUT_MS=5000 \
  SHUTDOWN_GRACE_SECONDS=2
PUBLIC_BASE_URL=http://127.0.0.1:$port_a "$BUILD/dealsync" register salesforce >>"$dir/register.log" 2>&1
PUBLIC_BASE_URL=http://127.0.0.1:$port_b "$BUILD/dealsync" register hubspot >>"$dir/register.log" 2>&1
"$BUILD/dealsync" settings sync-deals on >>"$dir/register.log" 2>&1
"$BUILD/chaos-driver" seed

# ---- faults ------------------------------------------------------------------------------------
# Rules draw independently in order, the first that fires decides: about 10% of API calls get a
# 5xx or a 429 and 1% time out, half of those after the write was carried out.
hs429='{\"status\":\"error\",\"message\":\"You have reached your secondly limit.\",\"errorType\":\"RATE_LIMIT\",\"correlationId\":\"chaos\",\"policyName\":\"SECONDLY\"}'
curl -fsS -X PUT "$CHAOS_SANDBOX_URL/_sandbox/faults" -H 'Content-Type: application/json' -d "{
  \"seed\": $CHAOS_SEED,
  \"rules\": [
    {\"path\": \"/services/data\", \"action\": \"timeout_after_write\", \"hold_ms\": 6000, \"rate\": 0.005},
    {\"path\": \"/services/data\", \"action\": \"timeout\", \"hold_ms\": 6000, \"rate\": 0.005},
    {\"path\": \"/services/data\", \"status\": 503, \"rate\": 0.07},
    {\"path\": \"/services/data\", \"status\": 500, \"rate\": 0.03},
    {\"path\": \"/services/oauth2\", \"status\": 503, \"rate\": 0.1},
    {\"path\": \"/crm/\", \"action\": \"timeout_after_write\", \"hold_ms\": 6000, \"rate\": 0.005},
    {\"path\": \"/crm/\", \"action\": \"timeout\", \"hold_ms\": 6000, \"rate\": 0.005},
    {\"path\": \"/crm/\", \"status\": 429, \"rate\": 0.05, \"retry_after\": \"1\", \"body\": \"$hs429\"},
    {\"path\": \"/crm/\", \"status\": 502, \"rate\": 0.03},
    {\"path\": \"/crm/\", \"status\": 503, \"rate\": 0.02}],
  \"delivery\": {\"duplicate_rate\": 0.1, \"reorder_rate\": 0.3}}" >/dev/null

# ---- dealsync: two processes, restarted when killed -------------------------------------------
start_dealsync() { # name port
  PORT=$2 PUBLIC_BASE_URL=http://127.0.0.1:$2 "$BUILD/dealsync" serve >>"$dir/dealsync-$1.log" 2>&1 &
  echo $! >"$dir/$1.pid"
}
port_of() { if [ "$1" = A ]; then echo "$port_a"; else echo "$port_b"; fi; }

"$BUILD/chaos-driver" follow-log &
log_pid=$!

# Starts both processes, then about once a second: restarts a process that exited by itself
# (and says so); every KILL_EVERY seconds (by the clock) SIGKILLs the next one and restarts it;
# restarts PostgreSQL once. Until stop-chaos exists; then makes sure both run. The processes are this loop's
# children, so it reaps them.
chaos_loop() {
  local started=$SECONDS next=A pg_done=false name rc now next_kill=$KILL_EVERY
  start_dealsync A "$port_a"
  start_dealsync B "$port_b"
  while [ ! -f "$dir/stop-chaos" ]; do
    sleep 1
    now=$((SECONDS - started))
    for name in A B; do
      if ! is_running "$name"; then
        wait "$(cat "$dir/$name.pid")" 2>/dev/null && rc=0 || rc=$?
        say "dealsync $name exited by itself (status $rc) at ${now}s: restarted"
        echo "$name $rc" >>"$dir/self-exits"
        start_dealsync "$name" "$(port_of "$name")"
      fi
    done
    if [ "$now" -ge "$next_kill" ]; then
      kill -KILL "$(cat "$dir/$next.pid")" 2>/dev/null || true
      wait "$(cat "$dir/$next.pid")" 2>/dev/null || true
      say "SIGKILL dealsync $next at ${now}s"
      start_dealsync "$next" "$(port_of "$next")"
      if [ "$next" = A ]; then next=B; else next=A; fi
      next_kill=$((next_kill + KILL_EVERY))
    fi
    if ! $pg_done && [ "$now" -ge "$PG_RESTART_AFTER" ]; then
      say "PostgreSQL restarted at ${now}s"
      scripts/pg.sh restart "$dir/pg"
      pg_done=true
    fi
  done
  for name in A B; do is_running "$name" || start_dealsync "$name" "$(port_of "$name")"; done
}
chaos_loop &
loop_pid=$!

say "driving $CHAOS_CHANGES changes (seed $CHAOS_SEED, at most ${CHAOS_SECONDS}s, $CHAOS_RATE/s); run directory $dir"
"$BUILD/chaos-driver" drive
touch "$dir/stop-chaos"
wait "$loop_pid" || true
loop_pid=
if ! grep -q 'PostgreSQL restarted' "$dir/events.log"; then
  say "PostgreSQL restarted after the changes (the run was shorter than ${PG_RESTART_AFTER}s)"
  scripts/pg.sh restart "$dir/pg"
fi
set +e
"$BUILD/chaos-driver" check
status=$?
set -e
say "$(grep -c SIGKILL "$dir/events.log") kills, $( [ -f "$dir/self-exits" ] && wc -l <"$dir/self-exits" || echo 0) exits by itself"
exit "$status"
