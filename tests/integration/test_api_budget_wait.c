/* test_api_budget_wait.c - how long until HubSpot's shared window has room for a batch's calls
 * (api_budget_hs_wait_ms, migration 0061), against a real PostgreSQL: what workers wait before
 * claiming while the window is full. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "api_budget.h"
#include "itest.h"
#include "qtest.h"
#include "sync.h"

/* Puts n calls sent a second ago in the HubSpot window. */
static void window_holds(PGconn *db, int n)
{
    char sql[200];
    snprintf(sql, sizeof(sql),
             "UPDATE api_budget SET calls = ARRAY(SELECT now() - interval '1 second'"
             " FROM generate_series(1, %d)) WHERE api = 'hubspot'",
             n);
    itest_db_exec(db, sql);
}

START_TEST(the_wait_is_until_the_window_has_room_for_a_batch)
{
    PGconn *db;
    char *url = qtest_db("budget_wait", &db);
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.database_url = url;
    cfg.hs_burst_limit = 20; /* 19 calls per window once one is kept free */
    struct api_budget *b = api_budget_new(&cfg);

    ck_assert_int_eq(api_budget_hs_wait_ms(b, 8), 0);
    /* 11 of 19 taken: room for 8 now. */
    window_holds(db, 11);
    ck_assert_int_eq(api_budget_hs_wait_ms(b, 8), 0);
    /* 12 taken: 7 free, the eighth comes when the calls of a second ago age out (a window,
     * counted a fortieth longer, after them). */
    window_holds(db, 12);
    int64_t wait = api_budget_hs_wait_ms(b, 8);
    ck_assert_msg(wait > 8000 && wait <= 9300, "waits %lld ms", (long long)wait);
    /* A batch of more calls than the window holds waits for a full window at most. */
    window_holds(db, 19);
    wait = api_budget_hs_wait_ms(b, 50);
    ck_assert_msg(wait > 8000 && wait <= 10000, "waits %lld ms", (long long)wait);
    /* A 429's hold (next_at) counts too. */
    window_holds(db, 0);
    itest_db_exec(db, "UPDATE api_budget SET next_at = now() + interval '3 seconds'"
                      " WHERE api = 'hubspot'");
    wait = api_budget_hs_wait_ms(b, 1);
    ck_assert_msg(wait > 1000 && wait <= 3000, "waits %lld ms", (long long)wait);

    api_budget_free(b);
    PQfinish(db);
    free(url);
}
END_TEST

/* A worker waits SYNC_GATHER_MS before its next claim only after a batch of more than one record
 * while at least half of HubSpot's window is used: with room in the window a steady stream is
 * claimed at once (the wait only added latency), and a lone change never waits. */
START_TEST(a_burst_is_gathered_only_while_calls_are_scarce)
{
    PGconn *db;
    char *url = qtest_db("budget_gather", &db);
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.database_url = url;
    cfg.hs_burst_limit = 20; /* 19 calls per window once one is kept free */
    cfg.sync_gather_ms = 250;
    struct http_client_options ho = {0};
    struct http_client *http = http_client_new(&ho);
    struct hs_client_options hso = {"http://127.0.0.1:9", "token"};
    struct sync_ctx ctx = {0};
    ctx.cfg = &cfg;
    ctx.budget = api_budget_new(&cfg);
    ck_assert_int_eq(hs_client_new(&hso, http, &ctx.hs), ERR_OK);

    /* An empty window: a batch of five is followed by a claim at once. */
    ctx.last_batch = 5;
    ck_assert_int_eq(sync_claim_delay_ms(&ctx), 0);
    /* 15 of 19 used (fewer than half free): the burst is gathered, once per batch. */
    window_holds(db, 15);
    ctx.last_batch = 5;
    ck_assert_int_eq(sync_claim_delay_ms(&ctx), 250);
    ck_assert_int_eq(sync_claim_delay_ms(&ctx), 0);
    /* A lone change never waits. */
    ctx.last_batch = 1;
    ck_assert_int_eq(sync_claim_delay_ms(&ctx), 0);
    /* 5 used: room again. */
    window_holds(db, 5);
    ctx.last_batch = 5;
    ck_assert_int_eq(sync_claim_delay_ms(&ctx), 0);
    /* SYNC_GATHER_MS=0 turns it off. */
    window_holds(db, 15);
    cfg.sync_gather_ms = 0;
    ctx.last_batch = 5;
    ck_assert_int_eq(sync_claim_delay_ms(&ctx), 0);

    hs_client_free(ctx.hs);
    api_budget_free(ctx.budget);
    http_client_free(http);
    PQfinish(db);
    free(url);
}
END_TEST

Suite *suite_api_budget_wait(void);
Suite *suite_api_budget_wait(void)
{
    Suite *s = suite_create("api_budget_wait");
    TCase *tc = tcase_create("postgres");
    tcase_add_test(tc, the_wait_is_until_the_window_has_room_for_a_batch);
    tcase_add_test(tc, a_burst_is_gathered_only_while_calls_are_scarce);
    suite_add_tcase(s, tc);
    return s;
}
