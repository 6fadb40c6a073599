#!/usr/bin/env bash
# budget.sh - `make bench-budget`: the burst of issue 9 against the sandbox at its default
# limits, both directions running as `make run` wires them (1,000 opportunities with two contact
# roles each, created at once). Prints: complete and dead, the share of HubSpot calls answered
# 429, calls per opportunity per CRM, and the wall time against the least time HubSpot's limit
# allows for the calls made; the CPU seconds dealsync, PostgreSQL (every process of its
# cluster), the sandbox and the rest of the machine spent meanwhile (/proc), and the queue's
# phases. Then the two-process test at the issue's 500 opportunities.
# BUDGET_BENCH_OPPORTUNITIES and BUDGET_TEST_OPPORTUNITIES change the sizes;
# BUDGET_BENCH_CLAIM_BATCH sets QUEUE_CLAIM_BATCH for the burst; BUDGET_SKIP_TWO=1 runs the
# burst only; BUDGET_PG_STATS=1 loads pg_stat_statements and prints the burst's statements that
# took the most time. Uses scripts/test.sh for the throwaway PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
export BUDGET_BENCH=1
export BUDGET_TEST_OPPORTUNITIES=${BUDGET_TEST_OPPORTUNITIES:-500}
export CK_DEFAULT_TIMEOUT=3600
if [ "${BUDGET_PG_STATS:-}" = 1 ]; then
  export PG_SERVER_OPTS="${PG_SERVER_OPTS:-} -c shared_preload_libraries=pg_stat_statements"
fi
cases=burst
[ "${BUDGET_SKIP_TWO:-}" = 1 ] || cases="$cases two_processes"
for c in $cases; do
  CK_RUN_SUITE=e2e_budget CK_RUN_CASE=$c scripts/test.sh | grep -E '^(bench-budget|budget|[0-9]+%|tests/)'
done
