/* test_e2e_budget.c - one API budget for every worker and every replica (issue 9), with both
 * directions running as `make run` wires them: two dealsync processes share a low HubSpot
 * limit without being refused and without dead letters; Salesforce usage at dealsync's share
 * keeps workers to live work until it drops; a closed day defers records without counting
 * attempts. What a user would check: the deals in HubSpot, the queue, the sandbox's log. */
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "e2e.h"
#include "itest.h"
#include "ops_status.h"
#include "queue.h"
#include "util.h"

#define DEADLINE_MS 60000
/* The low limit of the two-process test: 20 calls per 10 s, as the issue asks. */
#define LOW_LIMIT 20

/* ---- Helpers ------------------------------------------------------------------------------ */

/* Creates n opportunities, each with contact roles for the two seeded contacts, at once (as a
 * data load would). Returns the ids (caller frees each and the array). */
static char **create_burst(struct e2e *e, int n, const char *label)
{
    char *jane = e2e_sf_find(e, "Contact", "Email", "jane@acme.test");
    char *john = e2e_sf_find(e, "Contact", "Email", "john@globex.test");
    const char *contacts[] = {jane, john, NULL};
    char **ids = e2e_sf_load_opportunities(e, n, label, contacts);
    free(john);
    free(jane);
    return ids;
}

static long long linked_opportunities(struct e2e *e)
{
    return itest_db_scalar(e->svc.db,
                           "SELECT count(*) FROM record_link WHERE kind = 'opportunity'");
}

struct linked_wait {
    struct e2e *e;
    long long want;
};

static bool all_linked(void *arg)
{
    struct linked_wait *w = arg;
    return linked_opportunities(w->e) >= w->want;
}

/* Contacts associated with the deal of opportunity opp, read through the control API (so the
 * test's reads do not draw on the HubSpot limit); -1 when there is no deal. */
static int deal_contacts(struct e2e *e, const char *opp)
{
    const char *params[] = {opp};
    PGresult *r = PQexecParams(e->svc.db,
                               "SELECT hs_id FROM record_link WHERE kind = 'opportunity' AND"
                               " sf_id = $1",
                               1, NULL, params, NULL, NULL, 0);
    char *path = PQntuples(r) == 1
                     ? xasprintf("/_sandbox/hubspot/objects/deals/%s", PQgetvalue(r, 0, 0))
                     : NULL;
    PQclear(r);
    if (!path)
        return -1;
    cJSON *d = NULL;
    int status = e2e_sb(e, "GET", path, NULL, &d);
    free(path);
    int n = status == 200 ? 0 : -1;
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(d, "associations"))
    {
        if (strcmp(sbtest_str(a, "toObjectType"), "contacts") == 0)
            n++;
    }
    cJSON_Delete(d);
    return n;
}

/* HubSpot API calls dealsync made since mark: total, answered 429, and the first and last
 * request times (ms). */
struct hs_calls {
    int total;
    int refused;
    double first_ms;
    double last_ms;
    char refused_paths[512]; /* the first refused calls, for the failure message */
};

static struct hs_calls hubspot_calls(struct e2e *e, long long mark)
{
    struct hs_calls c = {0};
    char *q = xasprintf("/_sandbox/requests?since=%lld", mark);
    cJSON *log = NULL;
    e2e_sb(e, "GET", q, NULL, &log);
    free(q);
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(log, "requests"))
    {
        if (strcmp(sbtest_str(r, "system"), "hubspot") != 0 ||
            strcmp(sbtest_str(r, "direction"), "in") != 0)
            continue;
        double ts = cJSON_GetNumberValue(cJSON_GetObjectItem(r, "ts"));
        if (c.total == 0)
            c.first_ms = ts;
        c.last_ms = ts;
        c.total++;
        if (cJSON_GetNumberValue(cJSON_GetObjectItem(r, "status")) == 429) {
            size_t used = strlen(c.refused_paths);
            snprintf(c.refused_paths + used, sizeof(c.refused_paths) - used, " %s %s at %.0f;",
                     sbtest_str(r, "method"), sbtest_str(r, "path"), ts);
            c.refused++;
        }
    }
    cJSON_Delete(log);
    return c;
}

/* ---- Two processes, one low HubSpot limit ------------------------------------------------- */

/* The dead events with the reason each was buried, for the failure message (caller frees). */
static char *dead_reasons(struct e2e *e)
{
    PGresult *r =
        PQexec(e->svc.db, "SELECT e.source || ' ' || e.object_type || ' ' || e.record_id || ' '"
                          "  || e.event_type || ' (' || coalesce(e.error_code, '?') || ', '"
                          "  || coalesce(e.last_error, '') || '): '"
                          "  || coalesce((SELECT o.worker || ' ' || o.detail FROM sync_outcome o"
                          "   WHERE o.event_id = e.id AND o.outcome = 'dead' ORDER BY o.id DESC"
                          "   LIMIT 1), '')"
                          " FROM sync_event e WHERE e.status = 'dead' ORDER BY e.id LIMIT 8");
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(e->svc.db));
    struct buf b;
    buf_init(&b, 0);
    for (int i = 0; i < PQntuples(r); i++)
        buf_printf(&b, "\n  %s", PQgetvalue(r, i, 0));
    PQclear(r);
    return buf_steal(&b);
}

START_TEST(two_processes_share_a_low_hubspot_limit)
{
    /* 500, as the issue asks (BUDGET_TEST_OPPORTUNITIES sets it). The rate is the calls over
     * the span from the first to the last, so a run whose last calls spill into one more
     * window of the limit loses up to a window, which weighs more the fewer windows the run
     * takes: with the contacts' roll-ups written once for several batches, 0.3 to 0.65 HubSpot
     * calls per opportunity, 80 opportunities reached 77% and 86% of the limit in two runs (51
     * calls in the second), 300 made 97 and 101 calls (91%, 84%), 500 made 146 and 149 (90%,
     * 86%; about 100 s). */
    const char *size = getenv("BUDGET_TEST_OPPORTUNITIES");
    int n = size && atoi(size) > 0 ? atoi(size) : 500;
    const char *sandbox[] = {"--set", "hubspot.rate_limit_max=20", NULL};
    /* The operator sets the app's limit; four workers in each process, claiming 5 records at
     * a time, so the burst is spread over both processes' workers (the webhooks of dealsync's
     * own writes, which used to give the second process HubSpot reads to make, are now
     * recognised without a call). */
    const char *env[] = {"HUBSPOT_BURST_LIMIT=20",
                         "WORKER_THREADS=4",
                         "QUEUE_CLAIM_BATCH=5",
                         "QUEUE_CLAIM_BATCH_MAX=5",
                         getenv("BUDGET_PACE_CLAIMS") ? "API_BUDGET_PACE_CLAIMS=true" : NULL,
                         NULL};
    struct e2e e;
    e2e_start(&e, "e2e_budget_two", env, sandbox, true);
    struct itest_proc *replica = e2e_start_worker(&e, "e2e_budget_two_replica", env);

    long long mark = e2e_mark(&e);
    char **opps = create_burst(&e, n, "Budget");
    struct linked_wait w = {&e, n};
    /* At most a few HubSpot calls per opportunity at 19 calls per 10 s, plus start-up. */
    ck_assert_msg(itest_wait_for(all_linked, &w, 60000 + n * 3000),
                  "only %lld of %d opportunities synced", linked_opportunities(&e), n);
    /* The echoes of the writes are paced at the same 2 calls per second: allow for them. */
    ck_assert(e2e_wait_idle(&e, 60000 + n * 3000));
    struct hs_calls c = hubspot_calls(&e, mark);

    for (int i = 0; i < n; i++) {
        ck_assert_msg(deal_contacts(&e, opps[i]) == 2, "opportunity %s: deal with %d contacts",
                      opps[i], deal_contacts(&e, opps[i]));
        free(opps[i]);
    }
    free(opps);
    long long dead = e2e_events(&e, "dead");
    char *why = dead_reasons(&e);
    ck_assert_msg(dead == 0, "%lld events dead:%s", dead, why);
    free(why);
    /* The operator's status view shows the day's HubSpot calls, counted by the shared budget. */
    cJSON *status = NULL;
    ck_assert_int_eq(ops_status(e.svc.db, &status), ERR_OK);
    const cJSON *row;
    double day_used = -1;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(status, "api_budget"))
    {
        if (strcmp(ops_str(row, "api"), "hubspot") == 0)
            day_used = ops_num(row, "day_used");
    }
    ck_assert_msg(day_used >= c.total, "status shows %.0f hubspot calls today, %d were made",
                  day_used, c.total);
    cJSON_Delete(status);
    /* Both processes synced opportunities (lease owners are "<host>:<pid>/<worker>"; an
     * opportunity whose owner has no HubSpot owner is synced with a warning). */
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(DISTINCT split_part(worker, '/', 1))"
                                               " FROM sync_outcome WHERE source = 'salesforce'"
                                               " AND outcome IN ('done', 'warning')"),
                     2);
    double span_s = (c.last_ms - c.first_ms) / 1000.0;
    double per_10s = span_s > 0 ? (c.total - 1) * 10.0 / span_s : 0;
    printf("budget: %d opportunities, two processes x 4 workers, limit %d/10 s: %d hubspot calls, "
           "%d answered 429 (%.2f%%), %.1f calls per 10 s over %.1f s (%.0f%% of the limit)\n",
           n, LOW_LIMIT, c.total, c.refused, c.total ? 100.0 * c.refused / c.total : 0, per_10s,
           span_s, 100.0 * per_10s / LOW_LIMIT);
    if (c.refused > 0)
        printf("budget: answered 429:%s\n", c.refused_paths);
    ck_assert_msg(c.refused * 100 <= c.total, "%d of %d hubspot calls answered 429:%s", c.refused,
                  c.total, c.refused_paths);
    ck_assert_msg(per_10s >= 0.8 * LOW_LIMIT, "achieved %.1f calls per 10 s of %d", per_10s,
                  LOW_LIMIT);
    ck_assert_int_eq(itest_proc_stop(replica, SIGTERM, 20000), 0);
    e2e_stop(&e);
}
END_TEST

/* ---- Salesforce usage at dealsync's share -------------------------------------------------- */

/* Rows of table about the record id (a test's own id) that also match cond. */
static long long count_of(struct e2e *e, const char *table, const char *id, const char *cond)
{
    char *q = xasprintf("SELECT count(*) FROM %s WHERE record_id = '%s' AND %s", table, id, cond);
    long long n = itest_db_scalar(e->svc.db, q);
    free(q);
    return n;
}

static long long pending_events(struct e2e *e, const char *record_id)
{
    return count_of(e, "sync_event", record_id, "status IN ('pending', 'running')");
}

struct record_wait {
    struct e2e *e;
    const char *id;
};

static bool is_linked(void *arg)
{
    struct record_wait *w = arg;
    char *q = xasprintf("SELECT count(*) FROM record_link WHERE kind = 'opportunity'"
                        " AND sf_id = '%s'",
                        w->id);
    long long n = itest_db_scalar(w->e->svc.db, q);
    free(q);
    return n > 0;
}

static bool is_live_only(void *arg)
{
    struct e2e *e = arg;
    /* 50% of the sandbox's 100,000: live-only from 37,500. */
    return itest_db_scalar(e->svc.db, "SELECT count(*) FROM api_budget WHERE api = 'salesforce'"
                                      " AND usage_used >= 37500") == 1;
}

/* Events of the given type (import, reconcile) about record id, in the given status. */
static long long events_of(struct e2e *e, const char *id, const char *type, const char *status)
{
    char *cond = xasprintf("event_type = '%s' AND status = '%s'", type, status);
    long long n = count_of(e, "sync_event", id, cond);
    free(cond);
    return n;
}

struct event_wait {
    struct e2e *e;
    const char *id;
    const char *type;
};

/* Queued, whatever became of it since. */
static bool is_queued(void *arg)
{
    struct event_wait *w = arg;
    char *cond = xasprintf("event_type = '%s'", w->type);
    long long n = count_of(w->e, "sync_event", w->id, cond);
    free(cond);
    return n >= 1;
}

/* Salesforce has no outbound message left to deliver (sent or given up). */
static bool no_outbound_queued(void *arg)
{
    cJSON *om = NULL;
    e2e_sb(arg, "GET", "/_sandbox/salesforce/outbound", NULL, &om);
    const cJSON *queued = cJSON_GetObjectItemCaseSensitive(om, "queued");
    bool is_empty = cJSON_IsArray(queued) && cJSON_GetArraySize(queued) == 0;
    cJSON_Delete(om);
    return is_empty;
}

static char *create_opportunity(struct e2e *e, const char *name, int amount)
{
    char *json = xasprintf("{\"Name\":\"%s\",\"StageName\":\"Prospecting\","
                           "\"CloseDate\":\"2026-12-31\",\"Amount\":%d}",
                           name, amount);
    char *id = e2e_sf_create(e, "Opportunity", json);
    free(json);
    return id;
}

START_TEST(salesforce_share_keeps_workers_to_live_work)
{
    /* Sweeps on: at start and when the switch is turned on (not again within the hour). */
    const char *env[] = {"SALESFORCE_API_BUDGET_PERCENT=50", "API_BUDGET_PROBE_SECONDS=1",
                         "RECONCILE_INTERVAL_SECONDS=3600", NULL};
    struct e2e e;
    e2e_start(&e, "e2e_budget_sf_share", env, NULL, true);
    /* Opportunities synced before: one gets an automatic retry (an earlier attempt failed),
     * one a change that only a reconciliation sweep finds; with an import, none of that is live
     * work. All of it is queued while dealsync's usage is at its share. */
    char *retried = create_opportunity(&e, "Waits for budget", 10);
    char *swept = create_opportunity(&e, "Found by a sweep", 11);
    struct record_wait rw = {&e, retried}, sw = {&e, swept};
    ck_assert(itest_wait_for(is_linked, &rw, DEADLINE_MS));
    ck_assert(itest_wait_for(is_linked, &sw, DEADLINE_MS));
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));

    /* The org's usage reaches dealsync's share (50% of 100,000). */
    ck_assert_int_eq(e2e_sb(&e, "PUT", "/_sandbox/salesforce/usage", "{\"used\":50000}", NULL),
                     200);
    /* A live change: its sync reads Salesforce, whose answer tells dealsync the usage. */
    char *live = create_opportunity(&e, "Live at the share", 20);
    struct record_wait lw = {&e, live};
    ck_assert_msg(itest_wait_for(is_linked, &lw, DEADLINE_MS), "a live change did not sync");
    ck_assert(itest_wait_for(is_live_only, &e, DEADLINE_MS));

    /* The retry is queued now and waits: nothing claims it while usage stays at the share. */
    const char *params[] = {retried};
    PGresult *r = PQexecParams(
        e.svc.db,
        "WITH rec AS (INSERT INTO sync_record (source, object_type, record_id)"
        "  VALUES ('salesforce', 'Opportunity', $1) ON CONFLICT DO NOTHING)"
        " INSERT INTO sync_event (source, dedup_key, object_type, record_id, event_type,"
        "  occurred_at, payload, attempts)"
        " VALUES ('salesforce', 'budget-retry', 'Opportunity', $1, 'resync', now(), '{}', 1)",
        1, NULL, params, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    /* A change whose outbound message is lost, then a sweep (the switch turned on sweeps at
     * once): the sweep finds it and queues it. */
    e2e_sb_settings(&e, "{\"delivery.drop_rate\":1}");
    e2e_sf_update(&e, "Opportunity", swept, "{\"Name\":\"Renamed, message lost\"}");
    ck_assert(itest_wait_for(no_outbound_queued, &e, DEADLINE_MS));
    e2e_sb_settings(&e, "{\"delivery.drop_rate\":0}");
    char *out = NULL;
    const char *on[] = {"settings", "sync-deals", "on", NULL};
    ck_assert_msg(e2e_dealsync(&e, on, &out) == 0, "%s", out);
    free(out);
    struct event_wait sweep = {&e, swept, "reconcile"};
    ck_assert_msg(itest_wait_for(is_queued, &sweep, DEADLINE_MS), "no sweep queued the change");
    /* An import: every opportunity and deal is queued in the background. */
    const char *import[] = {"import", NULL};
    ck_assert_msg(e2e_dealsync(&e, import, &out) == 0, "%s", out);
    free(out);
    struct event_wait imported = {&e, retried, "import"};
    ck_assert(itest_wait_for(is_queued, &imported, DEADLINE_MS));
    long long import_events =
        itest_db_scalar(e.svc.db, "SELECT count(*) FROM sync_event WHERE event_type = 'import'");
    ck_assert_int_ge(import_events, 3);

    /* A second live change after them syncs while the retry, the sweep and the import wait. */
    char *live2 = create_opportunity(&e, "Second live change", 30);
    struct record_wait lw2 = {&e, live2};
    ck_assert_msg(itest_wait_for(is_linked, &lw2, DEADLINE_MS), "a live change did not sync");
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(*) FROM sync_event WHERE"
                                               " dedup_key = 'budget-retry' AND status = 'pending'"
                                               " AND attempts = 1"),
                     1);
    ck_assert_int_ge(events_of(&e, swept, "reconcile", "pending"), 1);
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(*) FROM sync_event WHERE"
                                               " event_type = 'import' AND status = 'pending'"
                                               " AND attempts = 0"),
                     import_events);
    char *deal = e2e_deal_id_of(&e, swept);
    cJSON *d = e2e_hs_get(&e, "deals", deal);
    ck_assert_str_eq(e2e_prop(d, "dealname"), "Found by a sweep");
    cJSON_Delete(d);

    /* Usage drops (the rolling 24 hours moved on): the probe notices and the held-back work
     * runs: the retry, the sweep's change, the import. */
    ck_assert_int_eq(e2e_sb(&e, "PUT", "/_sandbox/salesforce/usage", "{\"used\":100}", NULL), 200);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    ck_assert_int_eq(pending_events(&e, retried), 0);
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(*) FROM sync_event WHERE"
                                               " dedup_key = 'budget-retry' AND status = 'done'"),
                     1);
    ck_assert_int_eq(events_of(&e, swept, "reconcile", "pending"), 0);
    ck_assert_int_ge(events_of(&e, swept, "reconcile", "done"), 1);
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(*) FROM sync_event WHERE"
                                               " event_type = 'import' AND status = 'done'"),
                     import_events);
    d = e2e_hs_get(&e, "deals", deal);
    ck_assert_str_eq(e2e_prop(d, "dealname"), "Renamed, message lost");
    cJSON_Delete(d);
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    free(deal);
    free(live2);
    free(live);
    free(swept);
    free(retried);
    e2e_stop(&e);
}
END_TEST

/* ---- A closed day defers; it never dead-letters --------------------------------------------- */

static bool is_deferred(void *arg)
{
    struct record_wait *w = arg;
    return count_of(w->e, "sync_outcome", w->id, "outcome = 'deferred'") >= 1;
}

START_TEST(hubspot_daily_limit_defers_without_attempts)
{
    /* One attempt allowed: a throttled attempt that counted would dead-letter at once. */
    const char *env[] = {"QUEUE_MAX_ATTEMPTS=1", NULL};
    struct e2e e;
    e2e_start(&e, "e2e_budget_daily", env, NULL, true);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    /* The account's day is over (another program used it up). */
    ck_assert_int_eq(sbtest_call(&e.sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"hubspot.rate_limit_daily\":1}", NULL, NULL),
                     200);
    char *opp = e2e_sf_create(&e, "Opportunity",
                              "{\"Name\":\"After the day closed\",\"StageName\":\"Prospecting\","
                              "\"CloseDate\":\"2026-12-31\",\"Amount\":40}");
    struct record_wait w = {&e, opp};
    ck_assert_msg(itest_wait_for(is_deferred, &w, DEADLINE_MS), "the record was not deferred");
    /* Deferred to the day's reset, not failed: pending, no attempt counted, nothing dead. */
    ck_assert_int_ge(count_of(&e, "sync_event", opp, "status = 'pending' AND attempts = 0"), 1);
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    ck_assert_int_eq(count_of(&e, "sync_record", opp, "not_before > now() + interval '1 minute'"),
                     1);
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(*) FROM api_budget"
                                               " WHERE api = 'hubspot' AND day_used >= 1"),
                     1);
    /* A later change is deferred too, without even being sent: the shared budget knows the day
     * is closed. */
    long long mark = e2e_mark(&e);
    char *later = e2e_sf_create(&e, "Opportunity",
                                "{\"Name\":\"Later the same day\",\"StageName\":\"Prospecting\","
                                "\"CloseDate\":\"2026-12-31\",\"Amount\":50}");
    struct record_wait lw = {&e, later};
    ck_assert_msg(itest_wait_for(is_deferred, &lw, DEADLINE_MS), "the record was not deferred");
    ck_assert_int_eq(hubspot_calls(&e, mark).total, 0);
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    free(later);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* ---- Benchmark: the burst at default limits (bench/budget.sh) ------------------- */

static int sf_calls(struct e2e *e, long long mark)
{
    return e2e_count(e, mark, "salesforce", "in", NULL, NULL);
}

/* The path with every segment that holds a digit (an id) replaced by {id}, query dropped. */
static char *endpoint_of(const char *path)
{
    struct buf b;
    buf_init(&b, 4096);
    const char *p = path;
    while (*p && *p != '?') {
        const char *end = p + 1;
        while (*end && *end != '/' && *end != '?')
            end++;
        bool has_digit = false;
        for (const char *q = p + 1; q < end; q++)
            has_digit |= *q >= '0' && *q <= '9';
        if (has_digit && strncmp(p, "/v", 2) != 0)
            buf_append_str(&b, "/{id}");
        else
            buf_append(&b, p, (size_t)(end - p));
        p = end;
    }
    return buf_steal(&b);
}

/* Prints where the calls since mark went: per system, method and endpoint, most first. */
static void print_calls_by_endpoint(struct e2e *e, long long mark, int n)
{
    char *q = xasprintf("/_sandbox/requests?since=%lld", mark);
    cJSON *log = NULL;
    e2e_sb(e, "GET", q, NULL, &log);
    free(q);
    cJSON *counts = cJSON_CreateObject();
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(log, "requests"))
    {
        if (strcmp(sbtest_str(r, "direction"), "in") != 0)
            continue;
        char *ep = endpoint_of(sbtest_str(r, "path"));
        char *key = xasprintf("%s %s %s", sbtest_str(r, "system"), sbtest_str(r, "method"), ep);
        cJSON *c = cJSON_GetObjectItem(counts, key);
        if (c)
            cJSON_SetNumberValue(c, c->valuedouble + 1);
        else
            cJSON_AddNumberToObject(counts, key, 1);
        free(key);
        free(ep);
    }
    for (;;) {
        cJSON *most = NULL;
        cJSON_ArrayForEach(r, counts)
        {
            if (!most || r->valuedouble > most->valuedouble)
                most = (cJSON *)r;
        }
        if (!most)
            break;
        printf("bench-budget: calls %6.0f (%.3f per opportunity) %s\n", most->valuedouble,
               most->valuedouble / n, most->string);
        cJSON_Delete(cJSON_DetachItemViaPointer(counts, most));
    }
    cJSON_Delete(counts);
    cJSON_Delete(log);
}

/* How many of the burst's two contacts hold, in HubSpot (read through the control API), the
 * number of deals dealsync synced for them as their roll-up count. */
static int rollups_match(struct e2e *e)
{
    PGresult *r = PQexec(e->svc.db, "SELECT hs_contact_id, count(*) FROM synced_deal_contact"
                                    " GROUP BY 1 ORDER BY 1");
    int right = 0;
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
        cJSON *c = e2e_hs_get(e, "contacts", PQgetvalue(r, i, 0));
        const char *v = c ? e2e_prop(c, "dealsync_num_associated_deals") : NULL;
        right += v && strcmp(v, PQgetvalue(r, i, 1)) == 0;
        cJSON_Delete(c);
    }
    PQclear(r);
    return right;
}

/* The statements of this database that took the most time (BUDGET_PG_STATS=1): total and
 * mean milliseconds, calls, rows, and the statement's start. */
static void print_statements(struct e2e *e)
{
    PGresult *r = PQexec(e->svc.db, "SELECT round(total_exec_time::numeric, 1), calls,"
                                    " round(mean_exec_time::numeric, 2), rows,"
                                    " left(regexp_replace(query, '\\s+', ' ', 'g'), 110)"
                                    " FROM pg_stat_statements"
                                    " WHERE dbid = (SELECT oid FROM pg_database"
                                    "               WHERE datname = current_database())"
                                    " ORDER BY total_exec_time DESC LIMIT 30");
    double total = 0;
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
        total += strtod(PQgetvalue(r, i, 0), NULL);
        printf("bench-budget: sql %10s ms %7s calls %8s ms/call %8s rows  %s\n",
               PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
               PQgetvalue(r, i, 4));
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        printf("bench-budget: sql: %s", PQerrorMessage(e->svc.db));
    else
        printf("bench-budget: sql %.1f ms in the statements above\n", total);
    PQclear(r);
}

/* ---- Where the burst's CPU went (/proc/<pid>/stat, /proc/stat) --------------------------- */

/* A process's CPU seconds: its own user and system time, and with children its waited-for
 * children's too (a PostgreSQL backend that ended is in the postmaster's). 0 when unreadable;
 * *ppid (may be NULL) receives its parent. */
static double proc_cpu_s(int pid, bool children, int *ppid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    char line[1024];
    bool is_read = f && fgets(line, sizeof line, f);
    if (f)
        fclose(f);
    /* The command name may hold spaces: the fields that follow start after its last ')'. */
    const char *p = is_read ? strrchr(line, ')') : NULL;
    unsigned long long utime, stime;
    long long cutime, cstime;
    int parent;
    if (!p || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
                     &parent, &utime, &stime, &cutime, &cstime) != 5)
        return 0;
    if (ppid)
        *ppid = parent;
    double ticks = (double)utime + (double)stime + (children ? (double)(cutime + cstime) : 0);
    return ticks / (double)sysconf(_SC_CLK_TCK);
}

/* PostgreSQL's CPU seconds: the postmaster with its ended children, plus every live child. */
static double postgres_cpu_s(int postmaster)
{
    double s = proc_cpu_s(postmaster, true, NULL);
    DIR *d = opendir("/proc");
    const struct dirent *de;
    while (d && (de = readdir(d))) {
        int pid = atoi(de->d_name);
        int parent = 0;
        double child = pid > 0 ? proc_cpu_s(pid, false, &parent) : 0;
        if (parent == postmaster)
            s += child;
    }
    if (d)
        closedir(d);
    return s;
}

/* The machine's busy and total CPU seconds since boot, all cores (/proc/stat's first line). */
static void machine_cpu_s(double *busy, double *total)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    int got = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                         &v[3], &v[4], &v[5], &v[6], &v[7])
                : 0;
    if (f)
        fclose(f);
    double t = 0;
    for (int i = 0; i < got; i++)
        t += (double)v[i];
    double hz = (double)sysconf(_SC_CLK_TCK);
    *total = t / hz;
    *busy = (t - (double)v[3] - (double)v[4]) / hz; /* less idle and iowait */
}

struct cpu_snap {
    double dealsync, postgres, sandbox, test, busy, total;
};

static void cpu_snap_take(struct e2e *e, int postmaster, struct cpu_snap *s)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s->dealsync = proc_cpu_s(itest_proc_pid(e->svc.proc), true, NULL);
    s->sandbox = proc_cpu_s(itest_proc_pid(e->sb.proc), true, NULL);
    s->postgres = postgres_cpu_s(postmaster);
    s->test = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    machine_cpu_s(&s->busy, &s->total);
}

/* Prints the CPU seconds each part spent between a and b, and what the rest of the machine
 * (other engineers' runs) took meanwhile. */
static void print_cpu(const char *phase, const struct cpu_snap *a, const struct cpu_snap *b,
                      double wall_s)
{
    double ds = b->dealsync - a->dealsync, pg = b->postgres - a->postgres;
    double sb = b->sandbox - a->sandbox, t = b->test - a->test, busy = b->busy - a->busy;
    double ours = ds + pg + sb + t;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("bench-budget: cpu %s (%.1f s wall, %ld cores: %.1f cpu-s): dealsync %.2f s, "
           "postgresql %.2f s, sandbox %.2f s, this test %.2f s (ours %.2f s, %.0f%% of the "
           "cores); the rest of the machine %.2f s, idle %.2f s\n",
           phase, wall_s, cores, (b->total - a->total), ds, pg, sb, t, ours,
           wall_s > 0 ? 100.0 * ours / (wall_s * (double)cores) : 0, busy - ours,
           (b->total - a->total) - busy);
}

/* The postmaster: the parent of this test's own backend. */
static int postmaster_pid(struct e2e *e)
{
    int parent = 0;
    proc_cpu_s(PQbackendPID(e->svc.db), false, &parent);
    return parent;
}

/* The queue's phases, from its own times, in seconds after the first Salesforce event was
 * queued: per source and object, the events queued and done (HubSpot's deals: the echoes of
 * dealsync's own writes), how many, and how many distinct finish times (about the batches). */
static void print_phases(struct e2e *e)
{
    PGresult *r = PQexec(
        e->svc.db,
        "WITH t0 AS (SELECT min(received_at) AS t FROM sync_event WHERE source = 'salesforce'"
        "            AND object_type = 'Opportunity')"
        " SELECT source || ' ' || object_type, count(*),"
        "  round(extract(epoch FROM min(received_at) - t0.t)::numeric, 1),"
        "  round(extract(epoch FROM max(received_at) - t0.t)::numeric, 1),"
        "  round(extract(epoch FROM min(finished_at) - t0.t)::numeric, 1),"
        "  round(extract(epoch FROM max(finished_at) - t0.t)::numeric, 1),"
        "  count(DISTINCT finished_at)"
        " FROM sync_event, t0 WHERE received_at >= t0.t GROUP BY source, object_type, t0.t"
        " ORDER BY min(received_at)");
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
        printf("bench-budget: phase %s: %s events queued %s to %s s, done %s to %s s "
               "(%s finish times)\n",
               PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
               PQgetvalue(r, i, 4), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6));
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        printf("bench-budget: phases: %s", PQerrorMessage(e->svc.db));
    PQclear(r);
}

/* An experiment (BUDGET_BENCH_NO_ECHOES=1): HubSpot's webhook subscriptions made inactive, so
 * the burst's deals come back as no event at all; what is left is the burst without its echoes
 * (8 events a deal), the most that finishing them more cheaply could save. */
static void deactivate_subscriptions(struct e2e *e)
{
    cJSON *list = NULL;
    e2e_sb(e, "GET", "/webhooks/v3/" SB_HS_APP_ID "/subscriptions?hapikey=" SB_HS_DEV_KEY, NULL,
           &list);
    const cJSON *sub;
    cJSON_ArrayForEach(sub, cJSON_GetObjectItem(list, "results"))
    {
        char *path =
            xasprintf("/webhooks/v3/" SB_HS_APP_ID "/subscriptions/%s?hapikey=" SB_HS_DEV_KEY,
                      sbtest_str(sub, "id"));
        ck_assert_int_eq(e2e_sb(e, "PATCH", path, "{\"active\":false}", NULL), 200);
        free(path);
    }
    cJSON_Delete(list);
}

START_TEST(burst_benchmark)
{
    const char *size = getenv("BUDGET_BENCH_OPPORTUNITIES");
    int n = size && atoi(size) > 0 ? atoi(size) : 1000;
    /* As `make run` wires it: one process, dealsync's default workers (8), both directions,
     * default limits (BUDGET_BENCH_CLAIM_BATCH sets QUEUE_CLAIM_BATCH, to compare batch sizes;
     * BUDGET_BENCH_WORKERS sets WORKER_THREADS, to compare worker counts). */
    const char *batch = getenv("BUDGET_BENCH_CLAIM_BATCH");
    char *claim = batch ? xasprintf("QUEUE_CLAIM_BATCH=%s", batch) : NULL;
    const char *count = getenv("BUDGET_BENCH_WORKERS");
    char *workers = xasprintf("WORKER_THREADS=%s", count && atoi(count) > 0 ? count : "8");
    /* The defaults of what the test harness shortens (pollers, retries, sweeps): a poller
     * reading the burst's 2,000 roles every second is not what make run does. */
    const char *env[] = {workers,
                         "QUEUE_RETRY_BASE_MS=1000",
                         "QUEUE_RETRY_MAX_MS=3600000",
                         "QUEUE_POLL_INTERVAL_MS=2000",
                         "DELETE_POLL_INTERVAL_SECONDS=60",
                         "CONTACT_ROLE_POLL_INTERVAL_SECONDS=60",
                         "RECONCILE_INTERVAL_SECONDS=900",
                         "DEAD_RETRY_INTERVAL_SECONDS=1800",
                         claim,
                         NULL};
    struct e2e e;
    e2e_start(&e, "e2e_budget_burst", env, NULL, true);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    /* Sync deals has been on for a while when a team's burst comes: Salesforce's CreatedDate has
     * whole seconds, so an opportunity made in the second of the switch may predate it, and its
     * deal is looked for first (sync_opportunity.c, cannot_have_deal). */
    ck_assert(itest_wait_sql(e.svc.db,
                             "SELECT (now() >= updated_at + interval '1 second')::int"
                             " FROM sync_setting WHERE name = 'sync_deals'",
                             DEADLINE_MS));
    /* BUDGET_PG_STATS=1 (bench/budget.sh loads pg_stat_statements): the statements of the
     * burst alone, from here to the queue's idle. */
    bool pg_stats = getenv("BUDGET_PG_STATS") && strcmp(getenv("BUDGET_PG_STATS"), "1") == 0;
    if (pg_stats)
        itest_db_exec(e.svc.db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"
                                " SELECT pg_stat_statements_reset()");
    bool no_echoes =
        getenv("BUDGET_BENCH_NO_ECHOES") && strcmp(getenv("BUDGET_BENCH_NO_ECHOES"), "1") == 0;
    if (no_echoes)
        deactivate_subscriptions(&e);
    int postmaster = postmaster_pid(&e);
    struct cpu_snap cpu_start, cpu_complete, cpu_idle;
    long long mark = e2e_mark(&e);
    cpu_snap_take(&e, postmaster, &cpu_start);
    int64_t started = util_monotonic_ms();
    char **opps = create_burst(&e, n, "Burst");
    int64_t loaded = util_monotonic_ms();
    struct linked_wait w = {&e, n};
    bool is_linked = itest_wait_for(all_linked, &w, 1800000);
    int64_t linked = util_monotonic_ms();
    /* Complete: every deal has its two contacts (dealsync stores the contacts it associated
     * once the associations are made; the count through the control API comes below). */
    char *complete_sql = xasprintf("SELECT (count(*) >= %d)::int FROM synced_deal_contact", 2 * n);
    bool is_complete = is_linked && itest_wait_sql(e.svc.db, complete_sql, 1800000);
    free(complete_sql);
    double complete_s = (double)(util_monotonic_ms() - started) / 1000.0;
    cpu_snap_take(&e, postmaster, &cpu_complete);
    bool is_done = is_complete && e2e_wait_idle(&e, 600000);
    double wall_s = (double)(util_monotonic_ms() - started) / 1000.0;
    cpu_snap_take(&e, postmaster, &cpu_idle);
    struct hs_calls c = hubspot_calls(&e, mark);
    int sf = sf_calls(&e, mark);
    int complete = 0;
    for (int i = 0; i < n; i++) {
        complete += deal_contacts(&e, opps[i]) == 2;
        free(opps[i]);
    }
    free(opps);
    long long dead = e2e_events(&e, "dead");
    int rollups_right = rollups_match(&e);
    /* The least time HubSpot's limit (190 per 10 s) allows for the calls made. */
    double floor_s = c.total / 19.0;
    printf("bench-budget: %d opportunities with two contact roles each, both directions, "
           "default limits, %s, claim batch %s%s\n",
           n, workers, batch ? batch : "default",
           no_echoes ? ", hubspot's webhooks off (no echoes: an experiment)" : "");
    printf("bench-budget: complete %d of %d, dead events %lld\n", complete, n, dead);
    printf("bench-budget: contacts whose roll-up count is their synced deals' at queue idle: "
           "%d of 2\n",
           rollups_right);
    printf("bench-budget: hubspot calls %d, answered 429 %d (%.2f%%)\n", c.total, c.refused,
           c.total ? 100.0 * c.refused / c.total : 0);
    printf("bench-budget: calls per opportunity: hubspot %.2f, salesforce %.2f\n",
           (double)c.total / n, (double)sf / n);
    printf("bench-budget: least time the hubspot limit allows for the calls made %.1f s\n",
           floor_s);
    printf("bench-budget: complete (every deal with its contacts) at %.1f s: %.2fx that\n",
           complete_s, floor_s > 0 ? complete_s / floor_s : 0);
    printf("bench-budget: queue idle (dealsync's own writes reported back, handled) at %.1f s: "
           "%.2fx\n",
           wall_s, floor_s > 0 ? wall_s / floor_s : 0);
    printf("bench-budget: loaded at %.1f s, every opportunity linked at %.1f s\n",
           (double)(loaded - started) / 1000.0, (double)(linked - started) / 1000.0);
    printf("bench-budget: sustained %.1f records/s, %.1f hubspot calls per 10 s (%.0f%% of 190)\n",
           n / wall_s, c.total * 10.0 / wall_s, 100.0 * c.total * 10.0 / wall_s / 190);
    print_cpu("to complete", &cpu_start, &cpu_complete, complete_s);
    print_cpu("to queue idle", &cpu_start, &cpu_idle, wall_s);
    print_phases(&e);
    print_calls_by_endpoint(&e, mark, n);
    if (pg_stats)
        print_statements(&e);
    ck_assert_msg(is_done, "the burst did not finish");
    ck_assert_msg(rollups_right == 2, "the contacts' roll-ups do not count their deals");
    free(claim);
    free(workers);
    e2e_stop(&e);
}
END_TEST

Suite *suite_e2e_budget(void);
Suite *suite_e2e_budget(void)
{
    Suite *s = suite_create("e2e_budget");
    const struct itest_case cases[] = {{"two_processes", two_processes_share_a_low_hubspot_limit},
                                       {"sf_share", salesforce_share_keeps_workers_to_live_work},
                                       {"daily", hubspot_daily_limit_defers_without_attempts}};
    itest_add_cases(s, cases, sizeof cases / sizeof cases[0], 1200);
    /* A benchmark, not a test: only bench/budget.sh runs it (it measures, asserts nothing but
     * that the burst finished). */
    if (getenv("BUDGET_BENCH")) {
        TCase *tc = tcase_create("burst");
        tcase_set_timeout(tc, 3600);
        tcase_add_test(tc, burst_benchmark);
        suite_add_tcase(s, tc);
    }
    return s;
}
