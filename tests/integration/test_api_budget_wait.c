/* test_api_budget_wait.c - how long until HubSpot's shared window has room for a batch's calls
 * (api_budget_hs_wait_ms, migration 0061), against a real PostgreSQL: what workers wait before
 * claiming while the window is full. */
#include <check.h>
#include <poll.h>
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
    itest_db_exec(db, "DELETE FROM api_budget_call WHERE api = 'hubspot'");
    snprintf(sql, sizeof(sql),
             "INSERT INTO api_budget_call (api, at) SELECT 'hubspot', now() - interval '1 second'"
             " FROM generate_series(1, %d)",
             n);
    itest_db_exec(db, sql);
}

/* A fresh database (its URL, caller frees) and a configuration for it with HubSpot's limit. One
 * call in twenty, at least one, is kept free of each window. */
static char *budget_db(const char *name, int limit, PGconn **db, struct config *cfg)
{
    char *url = qtest_db(name, db);
    memset(cfg, 0, sizeof(*cfg));
    cfg->database_url = url;
    cfg->hs_burst_limit = limit;
    return url;
}

START_TEST(the_wait_is_until_the_window_has_room_for_a_batch)
{
    PGconn *db;
    struct config cfg;
    char *url = budget_db("budget_wait", 20, &db, &cfg); /* 19 calls per window */
    struct api_budget *b = api_budget_new(&cfg);

    ck_assert_int_eq(api_budget_hs_wait_ms(b, 8), 0);
    /* 11 of 19 taken: room for 8 now. */
    window_holds(db, 11);
    ck_assert_int_eq(api_budget_hs_wait_ms(b, 8), 0);
    /* 12 taken: 7 free, the eighth comes when the calls of a second ago age out (a window
     * after them). */
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

/* A call's entry in the shared log: until its answer, its slot plus an allowance for the way to
 * HubSpot; then the time of its answer, however late that is. A call on a loaded machine can
 * reach HubSpot well after its slot: a call that relied on it having aged out at its slot was
 * answered 429. Here HubSpot's window is a second and holds one call (limit 2, one kept free). */
START_TEST(a_call_is_counted_until_its_answer)
{
    PGconn *db;
    struct config cfg;
    char *url = budget_db("budget_answer", 2, &db, &cfg);
    cfg.budget_max_wait_ms = 0; /* a take that would wait says how long instead */
    itest_db_exec(db, "UPDATE api_budget SET interval_ms = 1000 WHERE api = 'hubspot'");
    struct api_budget *sent = api_budget_new(&cfg);
    struct api_budget *next = api_budget_new(&cfg);
    int64_t wait = -1;
    struct api_budget_entry sent_entry, next_entry;

    ck_assert_int_eq(api_budget_hs_take(sent, false, &wait, &sent_entry), ERR_OK);
    /* On its way: the next call waits for the window after the allowance. */
    ck_assert_int_eq(api_budget_hs_take(next, false, &wait, &next_entry), ERR_RATE_LIMIT);
    ck_assert_msg(wait > 1100 && wait <= 1500, "waits %lld ms", (long long)wait);
    /* Answered late, after more than the allowance: counted from its answer. */
    poll(NULL, 0, 700);
    api_budget_hs_answered(sent, &sent_entry);
    ck_assert_int_eq(api_budget_hs_take(next, false, &wait, &next_entry), ERR_RATE_LIMIT);
    ck_assert_msg(wait > 700 && wait <= 1000, "waits %lld ms", (long long)wait);
    /* The refused takes reserved nothing; a second answer of the same call changes nothing. */
    api_budget_hs_answered(sent, &sent_entry);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM api_budget_call"
                                         " WHERE api = 'hubspot'"),
                     1);

    api_budget_free(next);
    api_budget_free(sent);
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
    struct config cfg;
    char *url = budget_db("budget_gather", 20, &db, &cfg); /* 19 calls per window */
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
    tcase_add_test(tc, a_call_is_counted_until_its_answer);
    suite_add_tcase(s, tc);
    return s;
}
