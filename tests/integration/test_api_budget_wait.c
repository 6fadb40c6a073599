/* test_api_budget_wait.c - how long until HubSpot's shared window has room for a batch's calls
 * (api_budget_hs_wait_ms, migration 0061), against a real PostgreSQL: what workers wait before
 * claiming while the window is full. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "api_budget.h"
#include "itest.h"
#include "qtest.h"

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

Suite *suite_api_budget_wait(void);
Suite *suite_api_budget_wait(void)
{
    Suite *s = suite_create("api_budget_wait");
    TCase *tc = tcase_create("postgres");
    tcase_add_test(tc, the_wait_is_until_the_window_has_room_for_a_batch);
    suite_add_tcase(s, tc);
    return s;
}
