/* test_ingest_commit.c - the group committer of the webhook ack path against a real PostgreSQL:
 * requests that arrive while a group is being written go together in the next one, none is
 * answered before the commit that holds its events, each gets its own counts (duplicates of
 * stored events and of an earlier request of the group are not stored twice), and one request's
 * bad data fails that request alone. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_commit.h"
#include "itest.h"
#include "qtest.h"
#include "util.h"

struct request {
    struct ingest_committer *c;
    struct queue_event_in ev[2];
    size_t n;
    size_t stored;
    enum err rc;
    atomic_bool is_answered;
};

static void *send_request(void *arg)
{
    struct request *r = arg;
    r->rc = ingest_store(r->c, r->ev, r->n, &r->stored);
    atomic_store(&r->is_answered, true);
    return NULL;
}

struct wait_arg {
    PGconn *db;
    struct ingest_committer *c;
    size_t want;
};

static bool push_is_blocked(void *arg)
{
    struct wait_arg *w = arg;
    return itest_db_scalar(w->db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                                  " 'Lock' AND query LIKE 'WITH input%'") == 1;
}

static bool requests_wait(void *arg)
{
    struct wait_arg *w = arg;
    return ingest_committer_waiting(w->c) == w->want;
}

START_TEST(a_group_answers_each_request_after_its_commit)
{
    PGconn *db;
    char *url = qtest_db("ic_group", &db);
    qtest_push(db, "hubspot", "pre", "deal", "R", 1);
    cJSON *p = cJSON_CreateObject();

    struct ingest_committer *c = NULL;
    ck_assert_int_eq(ingest_committer_start(url, 1, 100, ingest_queue_prepare, &c), ERR_OK);
    /* Hold record R: the first group's push waits for it, and the next requests gather. */
    PGconn *holder = itest_db_connect(url);
    itest_db_exec(holder, "BEGIN");
    itest_db_exec(holder, "SELECT 1 FROM sync_record WHERE record_id = 'R' FOR UPDATE");

    static struct request r[4];
    memset(r, 0, sizeof(r));
    const struct queue_event_in a1 = {
        "hubspot", "a1", "deal", "R", "deal.propertyChange", 2, p, QUEUE_PRIORITY_LIVE};
    const struct queue_event_in b1 = {
        "hubspot", "b1", "deal", "S", "deal.propertyChange", 3, p, QUEUE_PRIORITY_LIVE};
    const struct queue_event_in pre = {
        "hubspot", "pre", "deal", "R", "deal.propertyChange", 1, p, QUEUE_PRIORITY_LIVE};
    const struct queue_event_in bad = {
        "nowhere", "x1", "deal", "T", "deal.propertyChange", 4, p, QUEUE_PRIORITY_LIVE};
    r[0].ev[0] = a1;
    r[0].n = 1;
    r[1].ev[0] = b1;
    r[1].ev[1] = a1;
    r[1].n = 2;
    r[2].ev[0] = pre;
    r[2].n = 1;
    r[3].ev[0] = bad;
    r[3].n = 1;
    for (int i = 0; i < 4; i++)
        r[i].c = c;
    pthread_t th[4];
    pthread_create(&th[0], NULL, send_request, &r[0]);
    struct wait_arg w = {db, c, 0};
    ck_assert_msg(itest_wait_for(push_is_blocked, &w, 20000), "the first group never blocked");
    for (int i = 1; i < 4; i++)
        pthread_create(&th[i], NULL, send_request, &r[i]);
    w.want = 3;
    ck_assert_msg(itest_wait_for(requests_wait, &w, 20000), "the requests did not gather");
    for (int i = 0; i < 4; i++)
        ck_assert_msg(!atomic_load(&r[i].is_answered), "request %d answered before a commit", i);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event"), 1);

    itest_db_exec(holder, "COMMIT");
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(r[0].rc, ERR_OK);
    ck_assert_uint_eq(r[0].stored, 1);
    /* The group of the three others failed on request 3's source; each was written alone. */
    ck_assert_int_eq(r[1].rc, ERR_OK);
    ck_assert_uint_eq(r[1].stored, 1); /* a1 was stored by request 0 */
    ck_assert_int_eq(r[2].rc, ERR_OK);
    ck_assert_uint_eq(r[2].stored, 0);
    ck_assert_int_eq(r[3].rc, ERR_INVALID);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event"), 3);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_record WHERE record_id ="
                                         " 'T'"),
                     0);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT sum(open_events) FROM sync_record"), 3);

    ingest_committer_stop(c);
    PQfinish(holder);
    cJSON_Delete(p);
    PQfinish(db);
    free(url);
}
END_TEST

/* Requests of one group with a key in common: stored once, counted for the first. */
START_TEST(a_key_repeated_in_a_group_is_stored_once)
{
    PGconn *db;
    char *url = qtest_db("ic_dup", &db);
    cJSON *p = cJSON_CreateObject();
    struct queue_event_in evs[3] = {
        {"hubspot", "k1", "deal", "1", "deal.creation", 1, p, QUEUE_PRIORITY_LIVE},
        {"hubspot", "k2", "deal", "2", "deal.creation", 1, p, QUEUE_PRIORITY_LIVE},
        {"hubspot", "k1", "deal", "1", "deal.creation", 1, p, QUEUE_PRIORITY_LIVE},
    };
    size_t group[3] = {0, 1, 1};
    size_t stored[2] = {9, 9};
    char state[6];
    ck_assert_int_eq(queue_push_groups(db, evs, group, 3, stored, 2, state), ERR_OK);
    ck_assert_uint_eq(stored[0], 1);
    ck_assert_uint_eq(stored[1], 1);
    ck_assert_str_eq(state, "");
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event"), 2);
    cJSON_Delete(p);
    PQfinish(db);
    free(url);
}
END_TEST

static const char one_body[] = "[{\"subscriptionType\":\"deal.creation\",\"objectId\":9,"
                               "\"eventId\":9,\"portalId\":1,\"occurredAt\":1782371972438}]";

/* Client backends of the test's database other than the test's own connection. */
static const char others_sql[] = "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                                 " current_database() AND backend_type = 'client backend'"
                                 " AND pid <> pg_backend_pid()";

/* A burst's first requests do not wait for the committer's connections: they are open, with the
 * webhook path's settings and the inbox statements of every group size prepared, when start
 * returns, before any request. */
START_TEST(the_committer_is_connected_and_prepared_before_the_first_request)
{
    PGconn *db;
    char *url = qtest_db("ic_ready", &db);
    ck_assert_int_eq(itest_db_scalar(db, others_sql), 0);
    struct ingest_committer *c = NULL;
    ck_assert_int_eq(ingest_committer_start(url, 2, 100, ingest_inbox_prepare, &c), ERR_OK);
    ck_assert_int_eq(itest_db_scalar(db, others_sql), 2);
    /* Each is idle after preparing the inbox INSERTs, the largest group's last (its text is
     * longer than pg_stat_activity shows). */
    ck_assert_msg(
        itest_wait_sql(db,
                       "SELECT (count(*) = 2)::int FROM pg_stat_activity WHERE state = 'idle'"
                       " AND query LIKE 'INSERT INTO ingest_inbox %, ($10, $11,%'"
                       " AND backend_type = 'client backend'",
                       20000),
        "the inbox statements were not prepared at start");
    struct ingest_body b = {"hubspot", one_body, strlen(one_body), 1782371972438LL};
    ck_assert_int_eq(ingest_store_body(c, &b, 1), ERR_OK);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM ingest_inbox"), 1);
    ck_assert_int_eq(itest_db_scalar(db, others_sql), 2);
    ingest_committer_stop(c);
    PQfinish(db);
    free(url);
}
END_TEST

/* Start never fails on the database: statements that cannot be prepared (the inbox locked past
 * lock_timeout) are prepared at their first use, and a database that cannot be reached at start
 * is connected to at the first group (503 meanwhile). */
START_TEST(a_committer_not_ready_at_start_connects_and_prepares_at_the_first_group)
{
    PGconn *db;
    char *url = qtest_db("ic_unready", &db);
    PGconn *holder = itest_db_connect(url);
    itest_db_exec(holder, "BEGIN");
    itest_db_exec(holder, "LOCK TABLE ingest_inbox IN ACCESS EXCLUSIVE MODE");
    struct ingest_committer *c = NULL;
    ck_assert_int_eq(ingest_committer_start(url, 1, 100, ingest_inbox_prepare, &c), ERR_OK);
    itest_db_exec(holder, "COMMIT");
    PQfinish(holder);
    struct ingest_body b = {"hubspot", one_body, strlen(one_body), 1782371972438LL};
    ck_assert_int_eq(ingest_store_body(c, &b, 1), ERR_OK);
    ck_assert_int_eq(ingest_store_body(c, &b, 1), ERR_OK);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM ingest_inbox"), 2);
    ingest_committer_stop(c);

    /* Nothing listens on a free port. */
    char *nowhere = xasprintf("postgresql://dealsync@127.0.0.1:%d/dealsync", itest_free_port());
    ck_assert_int_eq(ingest_committer_start(nowhere, 1, 100, ingest_inbox_prepare, &c), ERR_OK);
    ck_assert_int_eq(ingest_store_body(c, &b, 1), ERR_DB);
    ck_assert_int_eq(ingest_store_body(c, &b, 1), ERR_DB);
    ingest_committer_stop(c);
    free(nowhere);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM ingest_inbox"), 2);
    PQfinish(db);
    free(url);
}
END_TEST

Suite *suite_ingest_commit(void);
Suite *suite_ingest_commit(void)
{
    Suite *s = suite_create("ingest_commit");
    TCase *tc = tcase_create("postgres");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_group_answers_each_request_after_its_commit);
    tcase_add_test(tc, a_key_repeated_in_a_group_is_stored_once);
    tcase_add_test(tc, the_committer_is_connected_and_prepared_before_the_first_request);
    tcase_add_test(tc, a_committer_not_ready_at_start_connects_and_prepares_at_the_first_group);
    suite_add_tcase(s, tc);
    return s;
}
