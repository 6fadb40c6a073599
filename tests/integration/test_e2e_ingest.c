/* test_e2e_ingest.c - ingestion end to end, the sandbox wired to a real `dealsync serve` by
 * `dealsync register`: an Opportunity created in the sandbox arrives as a SOAP outbound message,
 * is acknowledged and queued once (also when Salesforce sends it twice); a deal created in the
 * sandbox arrives as signed HubSpot webhooks that dealsync's verification accepts (and a wrong
 * secret is refused); while dealsync's database is away it answers 503 and both senders
 * redeliver until the events land, once. WORKER_THREADS=0: events stay in the queue to be
 * counted (the sync handlers are other suites' business). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "itest.h"
#include "regtest.h"
#include "sbtest.h"
#include "svc.h"
#include "util.h"

#define WAIT_MS 20000

struct ingest {
    struct sbtest sb;
    struct svc svc;
};

/* Sandbox with fast redelivery, dealsync on the sandbox's org id and HubSpot secret, and both
 * registered with `dealsync register` at dealsync's own URL. */
static void ingest_start(struct ingest *t, const char *name)
{
    const char *args[] = {
        "--set", "sf_om_retry_first_ms=50",       "--set", "sf_om_retry_cap_ms=300",
        "--set", "hubspot.webhook_backoff_ms=50", "--set", "hubspot.webhook_backoff_max_ms=1000",
        NULL};
    sbtest_start(&t->sb, args);
    cJSON *org = NULL;
    ck_assert_int_eq(sbtest_call(&t->sb, "GET", "/_sandbox/salesforce/org", NULL, NULL, &org, NULL),
                     200);
    char *org_env = xasprintf("SALESFORCE_ORG_ID=%s", sbtest_str(org, "organizationId"));
    cJSON_Delete(org);
    const char *env[] = {org_env, "HUBSPOT_CLIENT_SECRET=" REGTEST_HS_SECRET, "WORKER_THREADS=0",
                         NULL};
    svc_start(&t->svc, name, env);
    free(org_env);
    char **reg_env = regtest_env(&t->sb, t->svc.base, NULL);
    ck_assert_int_eq(regtest_register((const char *const *)reg_env, NULL, name), 0);
    regtest_env_free(reg_env);
}

static void ingest_stop(struct ingest *t)
{
    ck_assert_int_eq(svc_stop(&t->svc), 0);
    sbtest_stop(&t->sb);
}

/* Creates a record through the control API (as a CRM user) and returns its id (caller frees). */
static char *sf_create_opportunity(struct ingest *t, const char *name)
{
    char *body = xasprintf("{\"Name\":\"%s\",\"StageName\":\"Prospecting\","
                           "\"CloseDate\":\"2027-03-31\",\"Amount\":48000}",
                           name);
    cJSON *rec = NULL;
    ck_assert_int_eq(sbtest_call(&t->sb, "POST", "/_sandbox/salesforce/records/Opportunity",
                                 (const char *const[]){"Content-Type: application/json", NULL},
                                 body, &rec, NULL),
                     201);
    char *id = xstrdup(sbtest_str(rec, "Id"));
    cJSON_Delete(rec);
    free(body);
    return id;
}

static char *hs_create_deal(struct ingest *t, const char *name)
{
    char *body = xasprintf("{\"properties\":{\"dealname\":\"%s\",\"dealstage\":"
                           "\"appointmentscheduled\",\"pipeline\":\"default\",\"amount\":\"900\"}}",
                           name);
    cJSON *rec = NULL;
    ck_assert_int_eq(sbtest_call(&t->sb, "POST", "/_sandbox/hubspot/objects/deals",
                                 (const char *const[]){"Content-Type: application/json", NULL},
                                 body, &rec, NULL),
                     201);
    char *id = xstrdup(sbtest_str(rec, "id"));
    cJSON_Delete(rec);
    free(body);
    return id;
}

static long long events_for(struct ingest *t, const char *source, const char *record_id,
                            const char *event_type)
{
    /* Acknowledged HubSpot deliveries are in the inbox until split. */
    svc_wait_split(&t->svc);
    char *sql = xasprintf("SELECT count(*) FROM sync_event WHERE source = '%s' AND record_id = "
                          "'%s'%s%s%s",
                          source, record_id, event_type ? " AND event_type = '" : "",
                          event_type ? event_type : "", event_type ? "'" : "");
    long long n = itest_db_scalar(t->svc.db, sql);
    free(sql);
    return n;
}

static double number(const cJSON *o, const char *name)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

/* The sandbox's outbound queue is empty and has delivered at least `delivered` (and sent at
 * least `duplicates` duplicates). */
struct sf_quiet {
    struct ingest *t;
    int delivered;
    int duplicates;
    int failed; /* at least this many failed attempts */
};

static bool sf_is_quiet(void *arg)
{
    struct sf_quiet *q = arg;
    cJSON *st = NULL;
    if (sbtest_call(&q->t->sb, "GET", "/_sandbox/salesforce/outbound", NULL, NULL, &st, NULL) !=
        200)
        return false;
    bool ok = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(st, "queued")) == 0 &&
              number(st, "delivered") >= q->delivered &&
              number(st, "duplicatesSent") >= q->duplicates &&
              number(st, "failedAttempts") >= q->failed;
    cJSON_Delete(st);
    return ok;
}

struct hs_quiet {
    struct ingest *t;
    int delivered;
};

static bool hs_is_quiet(void *arg)
{
    struct hs_quiet *q = arg;
    cJSON *st = NULL;
    if (sbtest_call(&q->t->sb, "GET", "/_sandbox/hubspot/webhooks", NULL, NULL, &st, NULL) != 200)
        return false;
    bool ok = number(st, "pending") == 0 && number(st, "inFlight") == 0 &&
              number(st, "deliveredEvents") >= q->delivered;
    cJSON_Delete(st);
    return ok;
}

static cJSON *hs_webhook_state(struct ingest *t)
{
    cJSON *st = NULL;
    ck_assert_int_eq(
        sbtest_call(&t->sb, "GET", "/_sandbox/hubspot/webhooks", NULL, NULL, &st, NULL), 200);
    return st;
}

/* Deliveries (direction out) to path that dealsync answered with status, since mark. */
static int deliveries(struct ingest *t, long long since, const char *path, int status)
{
    cJSON *list = regtest_requests_since(&t->sb, since);
    char *url = xasprintf("%s%s", t->svc.base, path);
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, list)
    {
        if (strcmp(sbtest_str(r, "direction"), "out") == 0 &&
            strncmp(sbtest_str(r, "path"), url, strlen(url)) == 0 &&
            (int)number(r, "status") == status)
            n++;
    }
    free(url);
    cJSON_Delete(list);
    return n;
}

struct delivery_wait {
    struct ingest *t;
    long long since;
    const char *path;
    int status;
};

static bool has_delivery(void *arg)
{
    struct delivery_wait *w = arg;
    return deliveries(w->t, w->since, w->path, w->status) > 0;
}

START_TEST(outbound_message_is_acknowledged_and_queued_once)
{
    struct ingest t;
    ingest_start(&t, "e2e_sf");
    /* Salesforce may send an acknowledged notification again: the fault sends every one twice. */
    ck_assert_int_eq(sbtest_call(&t.sb, "PUT", "/_sandbox/faults",
                                 (const char *const[]){"Content-Type: application/json", NULL},
                                 "{\"rules\":[],\"delivery\":{\"duplicate_rate\":1}}", NULL, NULL),
                     200);
    long long mark = regtest_mark(&t.sb);
    char *id = sf_create_opportunity(&t, "Acme - 500 seats");
    struct sf_quiet q = {&t, 1, 1, 0};
    ck_assert_msg(itest_wait_for(sf_is_quiet, &q, WAIT_MS), "outbound message not delivered");
    /* Both deliveries were acknowledged with 200, nothing failed, one event is queued. */
    ck_assert_int_ge(deliveries(&t, mark, "/webhooks/salesforce", 200), 2);
    ck_assert_int_eq(deliveries(&t, mark, "/webhooks/salesforce", 503), 0);
    ck_assert_int_eq(events_for(&t, "salesforce", id, NULL), 1);
    char *sql =
        xasprintf("SELECT count(*) FROM sync_event WHERE record_id = '%s' AND object_type "
                  "= 'Opportunity' AND status = 'pending' AND payload->'fields'->>'StageName' = "
                  "'Prospecting'",
                  id);
    ck_assert_int_eq(itest_db_scalar(t.svc.db, sql), 1);
    free(sql);
    free(id);
    ingest_stop(&t);
}
END_TEST

START_TEST(hubspot_webhook_verifies_and_is_stored)
{
    struct ingest t;
    ingest_start(&t, "e2e_hs");
    long long mark = regtest_mark(&t.sb);
    char *id = hs_create_deal(&t, "Globex renewal");
    /* creation + one propertyChange per subscribed property that was set (4 of them). */
    struct hs_quiet q = {&t, 5};
    ck_assert_msg(itest_wait_for(hs_is_quiet, &q, WAIT_MS), "webhooks not delivered");
    cJSON *st = hs_webhook_state(&t);
    ck_assert_int_eq((int)number(st, "failedAttempts"), 0);
    cJSON_Delete(st);
    ck_assert_int_ge(deliveries(&t, mark, "/webhooks/hubspot", 200), 1);
    ck_assert_int_eq(events_for(&t, "hubspot", id, "deal.creation"), 1);
    ck_assert_int_eq(events_for(&t, "hubspot", id, "deal.propertyChange"), 4);

    /* The same delivery signed with another secret is refused (401) and nothing is stored: the
     * acceptance above was dealsync's signature check passing, not a missing one. */
    ck_assert_int_eq(sbtest_call(&t.sb, "PUT", "/_sandbox/hubspot/app",
                                 (const char *const[]){"Content-Type: application/json", NULL},
                                 "{\"clientSecret\":\"not-the-app-secret\"}", NULL, NULL),
                     200);
    mark = regtest_mark(&t.sb);
    char *other = hs_create_deal(&t, "Signed with the wrong secret");
    struct delivery_wait w = {&t, mark, "/webhooks/hubspot", 401};
    ck_assert_msg(itest_wait_for(has_delivery, &w, WAIT_MS), "no refused delivery");
    ck_assert_int_eq(deliveries(&t, mark, "/webhooks/hubspot", 200), 0);
    ck_assert_int_eq(events_for(&t, "hubspot", other, NULL), 0);
    free(other);
    free(id);
    ingest_stop(&t);
}
END_TEST

static void set_connections(struct ingest *t, bool allowed)
{
    PGconn *admin = itest_db_connect(itest_env("DATABASE_ADMIN_URL"));
    char *sql = xasprintf("ALTER DATABASE %s ALLOW_CONNECTIONS %s", PQdb(t->svc.db),
                          allowed ? "true" : "false");
    itest_db_exec(admin, sql);
    free(sql);
    if (!allowed) {
        sql = xasprintf("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                        "'%s' AND pid <> pg_backend_pid()",
                        PQdb(t->svc.db));
        itest_db_exec(admin, sql);
        free(sql);
    }
    PQfinish(admin);
}

START_TEST(unacknowledged_deliveries_are_redelivered_and_land_once)
{
    struct ingest t;
    ingest_start(&t, "e2e_redeliver");
    /* Take the database away: dealsync answers 503 and acknowledges nothing. */
    char *dbname = xstrdup(PQdb(t.svc.db));
    set_connections(&t, false);
    long long mark = regtest_mark(&t.sb);
    char *opp = sf_create_opportunity(&t, "Initech - expansion");
    char *deal = hs_create_deal(&t, "Initech expansion");
    struct delivery_wait sf_wait = {&t, mark, "/webhooks/salesforce", 503};
    struct delivery_wait hs_wait = {&t, mark, "/webhooks/hubspot", 503};
    ck_assert_msg(itest_wait_for(has_delivery, &sf_wait, WAIT_MS), "no 503 to Salesforce");
    ck_assert_msg(itest_wait_for(has_delivery, &hs_wait, WAIT_MS), "no 503 to HubSpot");
    cJSON *st = NULL;
    ck_assert_int_eq(
        sbtest_call(&t.sb, "GET", "/_sandbox/salesforce/outbound", NULL, NULL, &st, NULL), 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(st, "queued")), 1);
    cJSON_Delete(st);

    /* Back: both senders retry on their own and the events land, once each. */
    set_connections(&t, true);
    struct sf_quiet sq = {&t, 1, 0, 1};
    ck_assert_msg(itest_wait_for(sf_is_quiet, &sq, WAIT_MS), "outbound message not redelivered");
    struct hs_quiet hq = {&t, 5};
    ck_assert_msg(itest_wait_for(hs_is_quiet, &hq, WAIT_MS), "webhooks not redelivered");
    st = hs_webhook_state(&t);
    ck_assert_int_eq((int)number(st, "droppedEvents"), 0);
    cJSON_Delete(st);
    PQfinish(t.svc.db);
    t.svc.db = itest_db_connect(t.svc.db_url);
    ck_assert_str_eq(PQdb(t.svc.db), dbname);
    ck_assert_int_eq(events_for(&t, "salesforce", opp, NULL), 1);
    ck_assert_int_eq(events_for(&t, "hubspot", deal, "deal.creation"), 1);
    ck_assert_int_eq(events_for(&t, "hubspot", deal, "deal.propertyChange"), 4);
    ck_assert_int_ge(deliveries(&t, mark, "/webhooks/salesforce", 200), 1);
    free(dbname);
    free(deal);
    free(opp);
    ingest_stop(&t);
}
END_TEST

Suite *suite_e2e_ingest(void);
Suite *suite_e2e_ingest(void)
{
    Suite *s = suite_create("e2e_ingest");
    TCase *tc = tcase_create("ingest");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, outbound_message_is_acknowledged_and_queued_once);
    tcase_add_test(tc, hubspot_webhook_verifies_and_is_stored);
    tcase_add_test(tc, unacknowledged_deliveries_are_redelivered_and_land_once);
    suite_add_tcase(s, tc);
    return s;
}
