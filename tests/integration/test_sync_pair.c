/* test_sync_pair.c - the pair locks of sync_pair.c between real PostgreSQL sessions: a record
 * whose partner is busy keeps no lock (the other direction is never kept waiting by a deferred
 * record), and a lock released alone leaves the session's other locks held. */
#include <check.h>
#include <stdlib.h>

#include "itest.h"
#include "link.h"
#include "qtest.h"
#include "sync_pair.h"

#define OPP "0065w000000000OAAQ"
#define DEAL "20000000001"

static void save_pair(PGconn *db)
{
    struct link l = {0};
    l.kind = LINK_OPPORTUNITY;
    l.sf_id = OPP;
    l.hs_id = DEAL;
    ck_assert_int_eq(link_save(db, &l), ERR_OK);
}

static bool can_lock(PGconn *db, enum sync_pair_side side, const char *id)
{
    bool got = false;
    ck_assert_int_eq(sync_pair_try_lock(db, side, id, &got), ERR_OK);
    if (got)
        sync_pair_release(db, side, id);
    return got;
}

START_TEST(a_record_whose_partner_is_busy_keeps_no_lock)
{
    PGconn *db;
    char *url = qtest_db("pair_busy", &db);
    save_pair(db);
    PGconn *other = itest_db_connect(url); /* the other direction's worker */
    PGconn *third = itest_db_connect(url);
    bool got = false, linked = false;
    ck_assert_int_eq(sync_pair_try_lock(other, SYNC_PAIR_HS, DEAL, &got), ERR_OK);
    ck_assert(got);

    ck_assert_int_eq(sync_pair_lock_record(db, SYNC_PAIR_SF, OPP, &got, &linked), ERR_OK);
    ck_assert(!got);
    ck_assert(linked);
    /* The opportunity's own lock went with the refusal: the worker holding the deal can take
     * the whole pair now, not after the deferring worker's batch. */
    ck_assert(can_lock(third, SYNC_PAIR_SF, OPP));

    /* Once the deal is free, the pair is taken whole, and both locks are held. */
    sync_pair_unlock_all(other);
    ck_assert_int_eq(sync_pair_lock_record(db, SYNC_PAIR_SF, OPP, &got, &linked), ERR_OK);
    ck_assert(got);
    ck_assert(!can_lock(third, SYNC_PAIR_SF, OPP));
    ck_assert(!can_lock(third, SYNC_PAIR_HS, DEAL));
    sync_pair_unlock_all(db);
    ck_assert(can_lock(third, SYNC_PAIR_SF, OPP));
    PQfinish(third);
    PQfinish(other);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(a_released_lock_leaves_the_others_held)
{
    PGconn *db;
    char *url = qtest_db("pair_release", &db);
    PGconn *other = itest_db_connect(url);
    bool got = false;
    ck_assert_int_eq(sync_pair_try_lock(db, SYNC_PAIR_SF, OPP, &got), ERR_OK);
    ck_assert_int_eq(sync_pair_try_lock(db, SYNC_PAIR_HS, DEAL, &got), ERR_OK);
    /* Taken twice (two records of one batch share a partner): held until released twice. */
    ck_assert_int_eq(sync_pair_try_lock(db, SYNC_PAIR_HS, DEAL, &got), ERR_OK);
    sync_pair_release(db, SYNC_PAIR_HS, DEAL);
    ck_assert(!can_lock(other, SYNC_PAIR_HS, DEAL));
    sync_pair_release(db, SYNC_PAIR_HS, DEAL);
    ck_assert(can_lock(other, SYNC_PAIR_HS, DEAL));
    ck_assert(!can_lock(other, SYNC_PAIR_SF, OPP));
    sync_pair_unlock_all(db);
    ck_assert(can_lock(other, SYNC_PAIR_SF, OPP));
    PQfinish(other);
    PQfinish(db);
    free(url);
}
END_TEST

/* Four deals of one batch: linked with its opportunity busy, not linked, busy itself, linked
 * and free: each as sync_pair_lock_record would have it, in three statements. */
START_TEST(a_batch_is_locked_as_each_record_alone)
{
    PGconn *db;
    char *url = qtest_db("pair_batch", &db);
    save_pair(db); /* OPP-DEAL */
    struct link l = {0};
    l.kind = LINK_OPPORTUNITY;
    l.sf_id = "0065w000000000QAAQ";
    l.hs_id = "20000000004";
    ck_assert_int_eq(link_save(db, &l), ERR_OK);
    PGconn *other = itest_db_connect(url);
    PGconn *third = itest_db_connect(url);
    bool got[4] = {true, true, true, true}, linked[4] = {true, true, true, true};
    ck_assert_int_eq(sync_pair_try_lock(other, SYNC_PAIR_SF, OPP, &got[0]), ERR_OK);
    ck_assert_int_eq(sync_pair_try_lock(other, SYNC_PAIR_HS, "20000000003", &got[0]), ERR_OK);
    const char *ids[] = {DEAL, "20000000002", "20000000003", "20000000004"};
    ck_assert_int_eq(sync_pair_lock_records(db, SYNC_PAIR_HS, ids, 4, got, linked), ERR_OK);
    ck_assert(!got[0] && linked[0]);
    ck_assert(got[1] && !linked[1]);
    ck_assert(!got[2] && !linked[2]);
    ck_assert(got[3] && linked[3]);
    ck_assert(can_lock(third, SYNC_PAIR_HS, DEAL)); /* refused: its own lock went at once */
    ck_assert(!can_lock(third, SYNC_PAIR_HS, "20000000002"));
    ck_assert(!can_lock(third, SYNC_PAIR_HS, "20000000004"));
    ck_assert(!can_lock(third, SYNC_PAIR_SF, "0065w000000000QAAQ"));
    sync_pair_unlock_all(db);
    ck_assert(can_lock(third, SYNC_PAIR_HS, "20000000004"));
    ck_assert(can_lock(third, SYNC_PAIR_SF, "0065w000000000QAAQ"));
    /* Salesforce's side of the same pairs. */
    const char *opps[] = {"0065w000000000QAAQ", OPP};
    ck_assert_int_eq(sync_pair_lock_records(db, SYNC_PAIR_SF, opps, 2, got, linked), ERR_OK);
    ck_assert(got[0] && linked[0]);
    ck_assert(!got[1] && !linked[1]);
    ck_assert(!can_lock(third, SYNC_PAIR_HS, "20000000004"));
    sync_pair_unlock_all(db);
    PQfinish(third);
    PQfinish(other);
    PQfinish(db);
    free(url);
}
END_TEST

Suite *suite_sync_pair(void);
Suite *suite_sync_pair(void)
{
    Suite *s = suite_create("sync_pair");
    TCase *tc = tcase_create("postgres");
    tcase_add_test(tc, a_record_whose_partner_is_busy_keeps_no_lock);
    tcase_add_test(tc, a_released_lock_leaves_the_others_held);
    tcase_add_test(tc, a_batch_is_locked_as_each_record_alone);
    suite_add_tcase(s, tc);
    return s;
}
