/* test_sync_state.c - the sync's small tables against a real PostgreSQL: when the pollers' and
 * sweeps' first window starts (the moment sync deals was switched on), a setting's updated_at
 * that only a change of value moves, and the pipeline map saved by several workers at once. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "itest.h"
#include "qtest.h"
#include "contact_rollups.h"
#include "sync_state.h"
#include "util.h"

enum { MINUTE_MS = 60 * 1000, SAVERS = 4, PIPELINES = 100, BULKY = 256 * 1024 };

/* When sync deals was switched on, in milliseconds since the epoch. */
static long long switched_on_ms(PGconn *db)
{
    return itest_db_scalar(db, "SELECT (extract(epoch FROM updated_at) * 1000)::bigint"
                               " FROM sync_setting WHERE name = 'sync_deals'");
}

static long long db_now_ms(PGconn *db)
{
    return itest_db_scalar(db, "SELECT (extract(epoch FROM now()) * 1000)::bigint");
}

START_TEST(switching_on_again_keeps_the_moment_sync_deals_was_switched_on)
{
    /* Found by test_e2e_budget: each test (and an operator's script) may run `settings
     * sync-deals on` when it is on already; that moved updated_at, and with it the first window
     * of every poller and sweep past the changes made since the real switch. */
    PGconn *db;
    char *url = qtest_db("setting_on_again", &db);
    ck_assert_int_eq(sync_setting_set(db, SYNC_SETTING_SYNC_DEALS, "on"), ERR_OK);
    itest_db_exec(db, "UPDATE sync_setting SET updated_at = now() - interval '10 minutes'"
                      " WHERE name = 'sync_deals'");
    long long on = switched_on_ms(db);

    ck_assert_int_eq(sync_setting_set(db, SYNC_SETTING_SYNC_DEALS, "on"), ERR_OK);
    ck_assert_int_eq(switched_on_ms(db), on);

    ck_assert_int_eq(sync_setting_set(db, SYNC_SETTING_SYNC_DEALS, "off"), ERR_OK);
    ck_assert_int_gt(switched_on_ms(db), on + 9 * MINUTE_MS);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(the_first_window_starts_when_sync_deals_was_switched_on)
{
    /* A change made between the switch and the first poll or sweep (its outbound message lost)
     * was never found when the first window started at the first poll. */
    PGconn *db;
    char *url = qtest_db("first_window", &db);
    const int64_t max_back = 15LL * MINUTE_MS;
    int64_t now = db_now_ms(db);
    /* Off (never switched on): the window reaches max_back_ms back, no further. */
    ck_assert_int_eq(poll_first_window_from(db, now, max_back), now - max_back);

    ck_assert_int_eq(sync_setting_set(db, SYNC_SETTING_SYNC_DEALS, "on"), ERR_OK);
    itest_db_exec(db, "UPDATE sync_setting SET updated_at = now() - interval '5 minutes'"
                      " WHERE name = 'sync_deals'");
    now = db_now_ms(db);
    ck_assert_int_eq(poll_first_window_from(db, now, max_back), switched_on_ms(db));
    ck_assert_int_lt(poll_first_window_from(db, now, max_back), now - 4 * MINUTE_MS);

    /* Switched on long ago: at most max_back_ms back (the queries stay bounded). */
    itest_db_exec(db, "UPDATE sync_setting SET updated_at = now() - interval '2 days'"
                      " WHERE name = 'sync_deals'");
    ck_assert_int_eq(poll_first_window_from(db, now, max_back), now - max_back);

    /* A clock ahead of this process's: never after now. */
    itest_db_exec(db, "UPDATE sync_setting SET updated_at = now() + interval '1 hour'"
                      " WHERE name = 'sync_deals'");
    ck_assert_int_eq(poll_first_window_from(db, now, max_back), now);

    /* Switched off: as if never switched on. */
    ck_assert_int_eq(sync_setting_set(db, SYNC_SETTING_SYNC_DEALS, "off"), ERR_OK);
    ck_assert_int_eq(poll_first_window_from(db, now, max_back), now - max_back);
    PQfinish(db);
    free(url);
}
END_TEST

struct saver {
    const char *url;
    int failures;
};

/* Saves the map of PIPELINES record types, as each worker that created the record type's
 * pipeline (HubSpot answering both with the same one) would, with a label bulky enough to open
 * the race's window (itest_incompressible_text). */
static void *save_pipelines(void *arg)
{
    struct saver *s = arg;
    PGconn *db = PQconnectdb(s->url);
    char *label = itest_incompressible_text(BULKY, 11);
    for (int i = 0; i < PIPELINES && PQstatus(db) == CONNECTION_OK; i++) {
        char rt[19], hs[16];
        snprintf(rt, sizeof(rt), "0125w%013d", i);
        snprintf(hs, sizeof(hs), "%d", 5000 + i);
        s->failures += pipeline_map_save(db, rt, hs, label) != ERR_OK;
    }
    if (PQstatus(db) != CONNECTION_OK)
        s->failures++;
    free(label);
    PQfinish(db);
    return NULL;
}

START_TEST(the_same_pipeline_map_saved_by_several_workers_at_once)
{
    /* Found by test_e2e_budget two_processes: two processes' first batches created the same
     * record type's pipeline; both saved the map; ON CONFLICT covers the record type only, so
     * the second insert could hit the pipeline id's unique index first and fail, and the batch
     * was dead-lettered with "cannot map the opportunity: conflict". */
    PGconn *db;
    char *url = qtest_db("pipeline_map_race", &db);
    struct saver savers[SAVERS] = {0};
    pthread_t threads[SAVERS];
    for (int i = 0; i < SAVERS; i++) {
        savers[i].url = url;
        ck_assert_int_eq(pthread_create(&threads[i], NULL, save_pipelines, &savers[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < SAVERS; i++) {
        pthread_join(threads[i], NULL);
        failures += savers[i].failures;
    }
    ck_assert_msg(failures == 0, "%d of %d saves failed", failures, SAVERS * PIPELINES);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM pipeline_map"), PIPELINES);
    PQfinish(db);
    free(url);
}
END_TEST

/* The contact-role poller's test of a role against what was synced (contact_rollups.c): a
 * live role whose contact was synced, or a deleted one whose contact was not, needs no look;
 * anything else (another contact, a contact still stored for a deleted role, an opportunity
 * never synced) does. */
START_TEST(roles_already_synced_are_told_from_new_ones)
{
    PGconn *db;
    char *url = qtest_db("roles_reflected", &db);
    itest_db_exec(db, "INSERT INTO synced_deal (sf_opportunity_id, hs_deal_id, created_at,"
                      " is_closed, is_won) VALUES ('006A', '1', now(), false, false)");
    itest_db_exec(db, "INSERT INTO synced_deal_contact (sf_opportunity_id, sf_contact_id,"
                      " hs_contact_id) VALUES ('006A', '003J', '11')");
    cJSON *rows =
        cJSON_Parse("[{\"OpportunityId\":\"006A\",\"ContactId\":\"003J\",\"IsDeleted\":false},"
                    " {\"OpportunityId\":\"006A\",\"ContactId\":\"003K\",\"IsDeleted\":true},"
                    " {\"OpportunityId\":\"006A\",\"ContactId\":\"003K\",\"IsDeleted\":false},"
                    " {\"OpportunityId\":\"006A\",\"ContactId\":\"003J\",\"IsDeleted\":true},"
                    " {\"OpportunityId\":\"006B\",\"ContactId\":\"003J\",\"IsDeleted\":false},"
                    " {\"OpportunityId\":\"006A\"}]");
    bool reflected[6];
    ck_assert_int_eq(synced_roles_reflected(db, rows, reflected), ERR_OK);
    const bool want[6] = {true, true, false, false, false, false};
    for (int i = 0; i < 6; i++)
        ck_assert_msg(reflected[i] == want[i], "row %d: %d", i, reflected[i]);
    cJSON_Delete(rows);
    PQfinish(db);
    free(url);
}
END_TEST

Suite *suite_sync_state(void);
Suite *suite_sync_state(void)
{
    Suite *s = suite_create("sync_state");
    TCase *tc = tcase_create("postgres");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, switching_on_again_keeps_the_moment_sync_deals_was_switched_on);
    tcase_add_test(tc, the_first_window_starts_when_sync_deals_was_switched_on);
    tcase_add_test(tc, the_same_pipeline_map_saved_by_several_workers_at_once);
    tcase_add_test(tc, roles_already_synced_are_told_from_new_ones);
    suite_add_tcase(s, tc);
    return s;
}
