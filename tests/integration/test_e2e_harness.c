/* test_e2e_harness.c - the end-to-end wiring itself: a change made in the sandbox's Salesforce
 * reaches dealsync as an outbound message and is claimed by a worker; a change made in its
 * HubSpot arrives as a signed webhook. What the workers then do is tested per direction. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "itest.h"
#include "util.h"

struct seen {
    struct e2e *e;
    const char *sql;
};

static bool has_row(void *arg)
{
    struct seen *s = arg;
    return itest_db_scalar(s->e->svc.db, s->sql) > 0;
}

struct delivered {
    struct e2e *e;
    long long mark;
};

static bool was_delivered(void *arg)
{
    struct delivered *d = arg;
    return e2e_count(d->e, d->mark, "salesforce", "out", "POST", NULL) >= 1;
}

START_TEST(changes_in_both_crms_reach_the_queue)
{
    struct e2e e;
    e2e_start(&e, "e2e_harness", NULL, NULL, true);
    long long mark = e2e_mark(&e);
    cJSON *opp = NULL;
    ck_assert_int_eq(e2e_sb(&e, "POST", "/_sandbox/salesforce/records/Opportunity",
                            "{\"Name\":\"Harness deal\",\"StageName\":\"Prospecting\","
                            "\"CloseDate\":\"2026-12-31\",\"Amount\":1000}",
                            &opp),
                     201);
    char *sql = xasprintf("SELECT count(*) FROM sync_event WHERE source = 'salesforce' AND"
                          " record_id = '%s' AND event_type = 'outbound_message'",
                          sbtest_str(opp, "Id"));
    struct seen s = {&e, sql};
    ck_assert_msg(itest_wait_for(has_row, &s, 20000), "the outbound message never arrived");
    free(sql);
    cJSON_Delete(opp);
    /* The sandbox logs a delivery once dealsync answered it, which may be just after the event
     * is visible in the queue. */
    struct delivered d = {&e, mark};
    ck_assert(itest_wait_for(was_delivered, &d, 10000));

    cJSON *deal = NULL;
    ck_assert_int_eq(e2e_sb(&e, "POST", "/_sandbox/hubspot/objects/deals",
                            "{\"properties\":{\"dealname\":\"From HubSpot\","
                            "\"pipeline\":\"default\",\"dealstage\":\"appointmentscheduled\"}}",
                            &deal),
                     201);
    sql = xasprintf("SELECT count(*) FROM sync_event WHERE source = 'hubspot' AND record_id = "
                    "'%s' AND event_type = 'deal.creation'",
                    sbtest_str(deal, "id"));
    s.sql = sql;
    ck_assert_msg(itest_wait_for(has_row, &s, 20000), "the webhook never arrived");
    free(sql);
    cJSON_Delete(deal);
    ck_assert(e2e_wait_idle(&e, 30000));
    /* Every event was claimed and finished one way or another. */
    ck_assert_int_eq(e2e_events(&e, "pending") + e2e_events(&e, "running"), 0);
    e2e_stop(&e);
}
END_TEST

Suite *suite_e2e_harness(void);
Suite *suite_e2e_harness(void)
{
    Suite *s = suite_create("e2e_harness");
    TCase *tc = tcase_create("wiring");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, changes_in_both_crms_reach_the_queue);
    suite_add_tcase(s, tc);
    return s;
}
