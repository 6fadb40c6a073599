/* test_sync_echo.c - a batch of HubSpot deal records told apart as dealsync's own echoes or
 * changes to sync, against a real PostgreSQL: the whole batch is decided at once, and a record
 * beside an echo is never taken for one. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "itest.h"
#include "qtest.h"
#include "sync_cache.h"
#include "sync_echo.h"
#include "util.h"

enum { DEALS = 6 };

#define APP "4242"

/* The events of one record: the deal's creation, its amount set to `amount` by `source`, and
 * its association to HubSpot contact `contact`. */
static void deal_events(struct queue_event ev[3], char *payloads[3], const char *deal,
                        const char *amount, const char *source, const char *contact)
{
    payloads[0] = xasprintf("{\"objectId\":%s,\"appId\":" APP ",\"sourceId\":\"" APP "\"}", deal);
    payloads[1] = xasprintf("{\"objectId\":%s,\"appId\":" APP ",\"sourceId\":\"%s\","
                            "\"propertyName\":\"amount\",\"propertyValue\":\"%s\"}",
                            deal, source, amount);
    payloads[2] = xasprintf("{\"objectId\":%s,\"appId\":" APP ",\"sourceId\":\"" APP "\","
                            "\"associationType\":\"DEAL_TO_CONTACT\",\"toObjectId\":%s,"
                            "\"associationRemoved\":false}",
                            deal, contact);
    const char *types[] = {"deal.creation", "deal.propertyChange", "deal.associationChange"};
    for (int i = 0; i < 3; i++)
        ev[i] = (struct queue_event){.id = i + 1,
                                     .event_type = types[i],
                                     .payload = payloads[i],
                                     .attempts = 1,
                                     .occurred_at_ms = 1000 + i};
}

START_TEST(a_batch_tells_each_record_apart)
{
    PGconn *db;
    char *url = qtest_db("sync_echo", &db);
    /* Deals 101 to 105 are linked to opportunities whose amount dealsync wrote as 6000, and each
     * opportunity's contact role is HubSpot contact 901 (the 106th deal is not linked). */
    itest_db_exec(db, "INSERT INTO record_link (kind, sf_id, hs_id, hs_written)"
                      " SELECT 'opportunity', '006' || i, (100 + i)::text, '{\"amount\":\"6000\"}'"
                      " FROM generate_series(1, 5) i;"
                      " INSERT INTO synced_deal (sf_opportunity_id, hs_deal_id, created_at,"
                      "                          is_closed, is_won)"
                      " SELECT '006' || i, (100 + i)::text, now(), false, false"
                      " FROM generate_series(1, 5) i;"
                      " INSERT INTO synced_deal_contact"
                      " SELECT '006' || i, '003' || i, '901' FROM generate_series(1, 5) i");
    /* 101: only what dealsync wrote. 102: a user set the amount dealsync wrote (a user's change
     * all the same). 103: another amount. 104: a contact dealsync did not associate. 105: an
     * echo the batch does not ask about. 106: not linked. */
    const char *deals[DEALS] = {"101", "102", "103", "104", "105", "106"};
    const char *amounts[DEALS] = {"6000", "6000", "7000", "6000", "6000", "6000"};
    const char *sources[DEALS] = {APP, "userId:77", APP, APP, APP, APP};
    const char *contacts[DEALS] = {"901", "901", "901", "902", "901", "901"};
    const bool is_candidate[DEALS] = {true, true, true, true, false, true};
    const bool expected[DEALS] = {true, false, false, false, false, false};
    struct queue_event events[DEALS][3];
    char *payloads[DEALS][3];
    struct queue_record recs[DEALS] = {0};
    for (int i = 0; i < DEALS; i++) {
        deal_events(events[i], payloads[i], deals[i], amounts[i], sources[i], contacts[i]);
        recs[i] = (struct queue_record){.source = "hubspot",
                                        .object_type = "deal",
                                        .record_id = deals[i],
                                        .events = events[i],
                                        .event_count = 3};
    }
    bool is_echo[DEALS];
    sync_cache_begin(); /* as in a batch: the links are read in one statement */
    ck_assert_int_eq(sync_echo_deals(db, recs, DEALS, is_candidate, is_echo), ERR_OK);
    sync_cache_end();
    for (int i = 0; i < DEALS; i++)
        ck_assert_msg(is_echo[i] == expected[i], "deal %s: echo %d, expected %d", deals[i],
                      is_echo[i], expected[i]);
    /* The echo's contact association is mirrored; no other record's is. */
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM deal_contact_role"), 1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM deal_contact_role"
                                         " WHERE hs_deal_id = '101' AND hs_contact_id = '901'"
                                         " AND sf_contact_id = '0031'"),
                     1);
    for (int i = 0; i < DEALS; i++)
        for (int k = 0; k < 3; k++)
            free(payloads[i][k]);
    PQfinish(db);
    free(url);
}
END_TEST

Suite *suite_sync_echo(void);
Suite *suite_sync_echo(void)
{
    Suite *s = suite_create("sync_echo");
    TCase *tc = tcase_create("postgres");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_batch_tells_each_record_apart);
    suite_add_tcase(s, tc);
    return s;
}
