/* test_queue.c - the queue's guarantees against a real PostgreSQL: stored once, claimed by one
 * worker per record, in order, coalesced, retried with backoff, dead-lettered, leases that
 * expire, pruning. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contact_rollups.h"
#include "db.h"
#include "itest.h"
#include "migrate.h"
#include "qtest.h"
#include "queue.h"
#include "util.h"

START_TEST(migrations_apply_once_and_are_current)
{
    PGconn *db;
    char *url = qtest_db("q_migrate", &db);
    int applied = -1;
    ck_assert_int_eq(migrate_apply(db, &applied), ERR_OK);
    ck_assert_int_eq(applied, 0);
    bool current = false;
    ck_assert_int_eq(migrate_is_current(db, &current), ERR_OK);
    ck_assert(current);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM schema_migrations"),
                     migrate_embedded_count);
    PQfinish(db);
    free(url);
}
END_TEST

/* PostgreSQL answers the COMMIT of a transaction in which a statement failed with "ROLLBACK"
 * and no error. The worker's finish and next claim share a transaction: a commit taken for a
 * success there left the batch's outcomes unwritten, its records under their lease, and the
 * worker handling a next batch it did not hold. */
START_TEST(a_commit_that_rolls_back_is_a_failure)
{
    PGconn *db;
    char *url = qtest_db("q_commit", &db);
    ck_assert_int_eq(qtest_push(db, "salesforce", "04l1", "Opportunity", "006A", 1000), 1);
    ck_assert_int_eq(db_begin(db), ERR_OK);
    itest_db_exec(db, "UPDATE sync_event SET status = 'done'");
    PQclear(PQexec(db, "SELECT 1 / 0"));
    ck_assert_int_eq(db_commit(db), ERR_DB);
    ck_assert_int_eq(PQtransactionStatus(db), PQTRANS_IDLE);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE status = 'done'"),
                     0);
    /* A transaction that succeeds commits as before. */
    ck_assert_int_eq(db_begin(db), ERR_OK);
    itest_db_exec(db, "UPDATE sync_event SET status = 'done'");
    ck_assert_int_eq(db_commit(db), ERR_OK);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE status = 'done'"),
                     1);
    PQfinish(db);
    free(url);
}
END_TEST

/* A statement that changes several records, run by a thread on its own connection. */
struct locker {
    const char *url;
    void (*run)(PGconn *db, void *arg);
    void *arg;
};

static void *locker_main(void *arg)
{
    struct locker *l = arg;
    PGconn *db = itest_db_connect(l->url);
    l->run(db, l->arg);
    PQfinish(db);
    return NULL;
}

/* Runs l while another session holds record 1 as a push does (its upsert of sync_record locks
 * records in key order until it commits), and checks, once l waits for a lock (a statement
 * LIKE waiting), that it holds none of the other records: it waits for record 1 first, as a
 * statement that locks in key order does. Returns when l has run. */
static void assert_waits_in_key_order(PGconn *db, struct locker *l, const char *waiting)
{
    PGconn *pusher = itest_db_connect(l->url);
    itest_db_exec(pusher, "BEGIN");
    itest_db_exec(pusher, "SELECT 1 FROM sync_record WHERE record_id = '1' FOR UPDATE");
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, locker_main, l), 0);
    char *sql = xasprintf("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                          " AND datname = current_database() AND query LIKE '%s'",
                          waiting);
    ck_assert(itest_wait_sql(db, sql, 20000));
    free(sql);
    /* The push's next records are free (before, a statement holding one was a deadlock). */
    PGresult *r =
        PQexec(pusher, "SELECT 1 FROM sync_record WHERE record_id <> '1' FOR UPDATE NOWAIT");
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "another record is locked: %s",
                  PQresultErrorMessage(r));
    PQclear(r);
    itest_db_exec(pusher, "COMMIT");
    pthread_join(t, NULL);
    PQfinish(pusher);
}

struct give_back_call {
    const struct queue_record *recs;
    size_t n;
    enum err rc;
    size_t given;
};

static void give_back_call_run(PGconn *db, void *arg)
{
    struct give_back_call *c = arg;
    c->rc = queue_give_back(db, "w", c->recs, c->n, &c->given);
}

/* A fresh database named after prefix in which owner "w" has claimed records 1 and 2 into b
 * (stored in the reverse of key order, a change each); returns its URL (caller frees). */
static char *claim_records_1_and_2(const char *prefix, PGconn **db, struct queue_batch *b)
{
    char *url = qtest_db(prefix, db);
    ck_assert_int_eq(qtest_push(*db, "hubspot", "e2", "deal", "2", 1000), 1);
    ck_assert_int_eq(qtest_push(*db, "hubspot", "e1", "deal", "1", 2000), 1);
    ck_assert_int_eq(queue_claim(*db, "w", 10, 60, false, b), ERR_OK);
    ck_assert_int_eq(b->record_count, 2);
    ck_assert_str_eq(b->records[0].record_id, "1");
    return url;
}

/* A push locks its records in key order (its upsert of sync_record) until it commits. A
 * give-back that locked them in another order (its plan's) deadlocked with one under the
 * end-to-end benchmark's stream, and its 20 records waited for their lease. Waiting for the
 * first record in key order, a give-back holds none after it. */
START_TEST(a_give_back_locks_its_records_in_key_order)
{
    PGconn *db;
    struct queue_batch b = {0};
    char *url = claim_records_1_and_2("q_give_back", &db, &b);
    /* Given back in the reverse of key order. */
    struct queue_record reversed[2] = {b.records[1], b.records[0]};

    struct give_back_call call = {reversed, 2, ERR_INTERNAL, 0};
    struct locker l = {url, give_back_call_run, &call};
    assert_waits_in_key_order(db, &l, "%lease_owner = NULL%");
    ck_assert_int_eq(call.rc, ERR_OK);
    ck_assert_int_eq(call.given, 2);
    ck_assert_int_eq(
        itest_db_scalar(db, "SELECT count(*) FROM sync_record WHERE lease_owner IS NOT NULL"), 0);
    /* Given back as they were: pending, no attempt counted. */
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE status ="
                                         " 'pending' AND attempts = 0"),
                     2);
    queue_batch_clear(&b);
    PQfinish(db);
    free(url);
}
END_TEST

/* Records whose open_events differs from their pending and running events (0: exact). */
static const char OPEN_EVENTS_DRIFT[] =
    "SELECT count(*) FROM sync_record r WHERE open_events <> (SELECT count(*)"
    " FROM sync_event e WHERE (e.source, e.object_type, e.record_id) ="
    " (r.source, r.object_type, r.record_id) AND e.status IN ('pending', 'running'))";

/* Pushes a change of record records[i] for each key keys[i] (i < n, hubspot deals) in one
 * statement, in that order; *stored receives how many were new. */
static enum err push_keys(PGconn *db, const char *const *keys, const char *const *records, size_t n,
                          size_t *stored)
{
    cJSON *payload = cJSON_CreateObject();
    struct queue_event_in *evs = xcalloc(n, sizeof(*evs));
    for (size_t i = 0; i < n; i++)
        evs[i] = (struct queue_event_in){"hubspot",    keys[i], "deal",  records[i],
                                         "test.event", 1000,    payload, QUEUE_PRIORITY_LIVE};
    enum err rc = queue_push(db, evs, n, stored);
    free(evs);
    cJSON_Delete(payload);
    return rc;
}

/* push_keys of one key; returns the SQL state of a failure, "" when stored. */
static const char *push_one(PGconn *db, const char *key, const char *record_id, size_t *stored)
{
    return push_keys(db, &key, &record_id, 1, stored) == ERR_OK ? "" : db_last_sqlstate();
}

struct push_call {
    enum err rc;
    size_t stored;
};

/* Pushes the changes of records 2 and 1 (keys k2, k1: the reverse of key order) in one
 * statement. */
static void push_call_run(PGconn *db, void *arg)
{
    struct push_call *c = arg;
    static const char *const keys[] = {"k2", "k1"}, *const records[] = {"2", "1"};
    c->rc = push_keys(db, keys, records, 2, &c->stored);
}

/* An insert of a key that another transaction inserted and has not committed waits for it. A
 * push inserted its events in the order they came, so two pushes of the same keys in two orders
 * (a sender redelivering changes in another order while the first delivery is being stored)
 * could each hold a key the other waited for: a deadlock, one of the two cancelled (40P01). A
 * push inserts in key order: waiting for key k1, it holds no key after it. */
START_TEST(a_push_stores_its_events_in_key_order)
{
    PGconn *db;
    char *url = qtest_db("q_push_order", &db);
    PGconn *holder = itest_db_connect(url);
    itest_db_exec(holder, "BEGIN");
    size_t stored = 0;
    ck_assert_str_eq(push_one(holder, "k1", "1", &stored), "");
    struct push_call call = {ERR_INTERNAL, 0};
    struct locker l = {url, push_call_run, &call};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, locker_main, &l), 0);
    ck_assert(itest_wait_sql(db,
                             "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                             " AND datname = current_database() AND query LIKE 'WITH input AS%'",
                             20000));
    /* k2 is free: a push of it does not wait (a wait, for the waiting push, would time out). */
    PGconn *probe = itest_db_connect(url);
    itest_db_exec(probe, "SET lock_timeout = '200ms'");
    ck_assert_str_eq(push_one(probe, "k2", "2", &stored), "");
    ck_assert_uint_eq(stored, 1);
    itest_db_exec(holder, "COMMIT");
    pthread_join(t, NULL);
    ck_assert_int_eq(call.rc, ERR_OK);
    ck_assert_uint_eq(call.stored, 0);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event"), 2);
    ck_assert_int_eq(itest_db_scalar(db, OPEN_EVENTS_DRIFT), 0);
    PQfinish(probe);
    PQfinish(holder);
    PQfinish(db);
    free(url);
}
END_TEST

/* A push's events are numbered in the order they came, whatever the order of their keys: the
 * claim orders a record's events of the same time by id. */
START_TEST(a_push_numbers_its_events_in_the_order_they_came)
{
    PGconn *db;
    char *url = qtest_db("q_push_ids", &db);
    static const char *const keys[] = {"z", "a", "m"}, *const records[] = {"7", "7", "7"};
    size_t stored = 0;
    ck_assert_int_eq(push_keys(db, keys, records, 3, &stored), ERR_OK);
    ck_assert_uint_eq(stored, 3);
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 1);
    ck_assert_uint_eq(b.records[0].event_count, 3);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM (SELECT dedup_key, lag(dedup_key)"
                                         " OVER (ORDER BY id) AS prev FROM sync_event) x"
                                         " WHERE (prev, dedup_key) IN (('z', 'a'), ('a', 'm'))"),
                     2);
    queue_batch_clear(&b);
    PQfinish(db);
    free(url);
}
END_TEST

/* Records requeued together by a_requeue_locks_its_records_in_key_order. */
#define REQUEUED_RECORDS 6

struct requeue_call {
    bool is_transient;
    enum err rc;
    long long moved;
};

static void requeue_call_run(PGconn *db, void *arg)
{
    struct requeue_call *c = arg;
    c->rc = c->is_transient ? queue_retry_transient_dead(db, &c->moved)
                            : queue_requeue_dead(db, NULL, 0, &c->moved);
}

/* Requeues every dead event (is_transient: the automatic retry) as assert_waits_in_key_order. */
static void assert_requeue_waits_in_key_order(PGconn *db, const char *url, bool is_transient)
{
    struct requeue_call call = {is_transient, ERR_INTERNAL, 0};
    struct locker l = {url, requeue_call_run, &call};
    assert_waits_in_key_order(db, &l, "%status = ''pending''%");
    ck_assert_int_eq(call.rc, ERR_OK);
    ck_assert_int_eq(call.moved, REQUEUED_RECORDS);
}

/* An operator's requeue (`dealsync requeue`) and the automatic retry of transiently dead events
 * lock their records in key order, as a push does. Each locked them after their events, in the
 * order of a hash of their keys: one holding record 4 and waiting for record 1 while a push of
 * both held record 1 and waited for record 4 was a deadlock (one of the two cancelled). */
START_TEST(a_requeue_locks_its_records_in_key_order)
{
    PGconn *db;
    char *url = qtest_db("q_requeue_order", &db);
    /* Stored in the reverse of key order. */
    for (int i = REQUEUED_RECORDS; i >= 1; i--) {
        char key[16], id[16];
        snprintf(key, sizeof(key), "e%d", i);
        snprintf(id, sizeof(id), "%d", i);
        ck_assert_int_eq(qtest_push(db, "hubspot", key, "deal", id, 1000 * i), 1);
    }
    static const char kill[] = "UPDATE sync_event SET status = 'dead', attempts = 10,"
                               " last_error = 'hubspot answered 503', error_code = 'UPSTREAM',"
                               " finished_at = now(), is_transient_dead = true";
    /* The operator's requeue starts them over and drops the transient mark; the automatic
     * retry gives one more attempt each and keeps the error (the same statement). */
    static const struct {
        bool is_transient;
        const char *requeued;
    } requeues[] = {
        {false, "SELECT count(*) FROM sync_event WHERE status = 'pending' AND attempts = 0"
                " AND last_error IS NULL AND error_code IS NULL AND NOT is_transient_dead"},
        {true, "SELECT count(*) FROM sync_event WHERE status = 'pending' AND attempts = 9"
               " AND error_code = 'UPSTREAM' AND NOT is_transient_dead"},
    };
    for (size_t i = 0; i < sizeof(requeues) / sizeof(requeues[0]); i++) {
        itest_db_exec(db, kill);
        assert_requeue_waits_in_key_order(db, url, requeues[i].is_transient);
        ck_assert_int_eq(itest_db_scalar(db, requeues[i].requeued), REQUEUED_RECORDS);
        ck_assert_int_eq(itest_db_scalar(db, OPEN_EVENTS_DRIFT), 0);
    }
    /* An event dead of a permanent cause is left to the operator. */
    itest_db_exec(db, "UPDATE sync_event SET status = 'dead', is_transient_dead = false");
    long long moved = -1;
    ck_assert_int_eq(queue_retry_transient_dead(db, &moved), ERR_OK);
    ck_assert_int_eq(moved, 0);
    PQfinish(db);
    free(url);
}
END_TEST

/* An event dead-lettered after a transient failure is marked for the automatic retry by the
 * finish itself, in its statement; one refused for good is not. The worker marked it in a
 * statement of its own after the finish: a crash between the two left it unmarked for good. */
START_TEST(a_finish_marks_what_dies_of_a_transient_cause)
{
    PGconn *db;
    struct queue_batch b = {0};
    char *url = claim_records_1_and_2("q_transient_dead", &db, &b);
    b.records[0].result = ERR_UPSTREAM;
    b.records[1].result = ERR_INVALID;
    struct queue_finish_item items[] = {{&b.records[0], QUEUE_DEAD, "hubspot answered 503", 0, 0},
                                        {&b.records[1], QUEUE_DEAD, "invalid amount", 0, 0}};
    ck_assert_int_eq(queue_finish_many(db, "w", items, 2, 10), ERR_OK);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE status = 'dead'"
                                         " AND is_transient_dead AND record_id = '1'"),
                     1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE is_transient_dead"),
                     1);
    long long moved = 0;
    ck_assert_int_eq(queue_retry_transient_dead(db, &moved), ERR_OK);
    ck_assert_int_eq(moved, 1);
    queue_batch_clear(&b);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(duplicates_are_stored_once)
{
    PGconn *db;
    char *url = qtest_db("q_dedup", &db);
    ck_assert_int_eq(qtest_push(db, "salesforce", "04l1", "Opportunity", "006A", 1000), 1);
    ck_assert_int_eq(qtest_push(db, "salesforce", "04l1", "Opportunity", "006A", 1000), 0);
    /* The same key from the other source is a different event. */
    ck_assert_int_eq(qtest_push(db, "hubspot", "04l1", "deal", "1", 1000), 1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event"), 2);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(a_batch_is_one_transaction)
{
    PGconn *db;
    char *url = qtest_db("q_batch", &db);
    cJSON *p = cJSON_CreateObject();
    struct queue_event_in evs[3] = {
        {"hubspot", "1:1:1", "deal", "10", "deal.creation", 1, p, QUEUE_PRIORITY_LIVE},
        {"hubspot", "1:1:2", "deal", "10", "deal.propertyChange", 2, p, QUEUE_PRIORITY_LIVE},
        {"hubspot", "1:1:1", "deal", "10", "deal.creation", 1, p,
         QUEUE_PRIORITY_LIVE}, /* duplicate within batch */
    };
    size_t stored = 0;
    ck_assert_int_eq(queue_push(db, evs, 3, &stored), ERR_OK);
    ck_assert_uint_eq(stored, 2);
    /* An invalid source violates a CHECK: nothing of that batch may be stored. */
    struct queue_event_in bad[2] = {
        {"hubspot", "1:1:9", "deal", "11", "deal.creation", 1, p, QUEUE_PRIORITY_LIVE},
        {"nowhere", "x", "deal", "11", "deal.creation", 1, p, QUEUE_PRIORITY_LIVE},
    };
    ck_assert_int_eq(queue_push(db, bad, 2, &stored), ERR_DB);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event"), 2);
    cJSON_Delete(p);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(claim_coalesces_a_record_in_order)
{
    PGconn *db;
    char *url = qtest_db("q_order", &db);
    qtest_push(db, "hubspot", "k3", "deal", "7", 3000);
    qtest_push(db, "hubspot", "k1", "deal", "7", 1000);
    qtest_push(db, "hubspot", "k2", "deal", "7", 2000);
    qtest_push(db, "hubspot", "k4", "deal", "8", 500);
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 2);
    const struct queue_record *r7 =
        strcmp(b.records[0].record_id, "7") == 0 ? &b.records[0] : &b.records[1];
    ck_assert_uint_eq(r7->event_count, 3);
    ck_assert_int_eq(r7->events[0].occurred_at_ms, 1000);
    ck_assert_int_eq(r7->events[1].occurred_at_ms, 2000);
    ck_assert_int_eq(r7->events[2].occurred_at_ms, 3000);
    ck_assert_int_eq(r7->events[0].attempts, 1);
    /* Leased: a second claimer gets nothing, even for a new event of the same record. */
    qtest_push(db, "hubspot", "k5", "deal", "7", 4000);
    struct queue_batch b2 = {0};
    ck_assert_int_eq(queue_claim(db, "w2", 10, 60, false, &b2), ERR_OK);
    ck_assert_uint_eq(b2.record_count, 0);
    queue_batch_clear(&b2);
    /* Finishing releases the record; the new event is then claimable, alone. */
    size_t changed = 0;
    ck_assert_int_eq(queue_finish(db, "w1", r7, QUEUE_DONE, "ok", 0, 10, &changed), ERR_OK);
    ck_assert_uint_eq(changed, 3);
    ck_assert_int_eq(queue_claim(db, "w2", 10, 60, false, &b2), ERR_OK);
    ck_assert_uint_eq(b2.record_count, 1);
    ck_assert_str_eq(b2.records[0].record_id, "7");
    ck_assert_uint_eq(b2.records[0].event_count, 1);
    ck_assert_int_eq(b2.records[0].events[0].occurred_at_ms, 4000);
    ck_assert_int_eq(
        itest_db_scalar(db, "SELECT count(*) FROM sync_outcome WHERE outcome = 'done'"), 3);
    queue_batch_clear(&b2);
    queue_batch_clear(&b);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(retry_backs_off_then_dead_letters)
{
    PGconn *db;
    char *url = qtest_db("q_retry", &db);
    qtest_push(db, "salesforce", "n1", "Opportunity", "006X", 1);
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 1);
    size_t changed;
    ck_assert_int_eq(
        queue_finish(db, "w1", &b.records[0], QUEUE_RETRY, "upstream 503", 3600000, 2, &changed),
        ERR_OK);
    queue_batch_clear(&b);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE status = 'pending'"
                                         " AND last_error = 'upstream 503'"),
                     1);
    /* Backing off: not claimable now. */
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 0);
    queue_batch_clear(&b);
    /* Time passes (the test moves the backoff instead of sleeping). */
    itest_db_exec(db, "UPDATE sync_record SET not_before = now() - interval '1 second'");
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 1);
    ck_assert_int_eq(b.records[0].events[0].attempts, 2);
    /* Second transient failure with max_attempts 2: dead, with its error and attempts kept. */
    ck_assert_int_eq(
        queue_finish(db, "w1", &b.records[0], QUEUE_RETRY, "upstream 503 again", 10, 2, &changed),
        ERR_OK);
    queue_batch_clear(&b);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE status = 'dead'"
                                         " AND attempts = 2 AND last_error = 'upstream 503 again'"
                                         " AND finished_at IS NOT NULL"),
                     1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_outcome"), 2);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(expired_lease_is_taken_over_and_the_old_owner_changes_nothing)
{
    PGconn *db;
    char *url = qtest_db("q_lease", &db);
    qtest_push(db, "hubspot", "e1", "deal", "5", 1);
    struct queue_batch dead_worker = {0};
    ck_assert_int_eq(queue_claim(db, "dead", 10, 60, false, &dead_worker), ERR_OK);
    ck_assert_uint_eq(dead_worker.record_count, 1);
    itest_db_exec(db, "UPDATE sync_record SET lease_expires_at = now() - interval '1 second'");
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "alive", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 1);
    ck_assert_int_eq(b.records[0].events[0].attempts, 2);
    size_t changed = 99;
    ck_assert_int_eq(
        queue_finish(db, "dead", &dead_worker.records[0], QUEUE_DONE, NULL, 0, 10, &changed),
        ERR_OK);
    ck_assert_uint_eq(changed, 0);
    ck_assert_int_eq(queue_finish(db, "alive", &b.records[0], QUEUE_DONE, NULL, 0, 10, &changed),
                     ERR_OK);
    ck_assert_uint_eq(changed, 1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_outcome WHERE outcome='done'"),
                     1);
    queue_batch_clear(&b);
    queue_batch_clear(&dead_worker);
    PQfinish(db);
    free(url);
}
END_TEST

/* Concurrency: several threads, each with its own connection, claim from the same queue; no
 * record may be handed to two of them at once, and every event is claimed exactly once. */
struct claimer {
    const char *url;
    char name[16];
    long long claimed_events;
};

static void *claim_loop(void *arg)
{
    struct claimer *c = arg;
    PGconn *db = PQconnectdb(c->url);
    for (;;) {
        struct queue_batch b = {0};
        if (queue_claim(db, c->name, 3, 60, false, &b) != ERR_OK)
            break;
        if (b.record_count == 0) {
            queue_batch_clear(&b);
            break;
        }
        for (size_t i = 0; i < b.record_count; i++) {
            /* The record must be leased by us and nobody else may be running it. */
            size_t changed = 0;
            if (queue_finish(db, c->name, &b.records[i], QUEUE_DONE, NULL, 0, 10, &changed) ==
                ERR_OK)
                c->claimed_events += (long long)changed;
        }
        queue_batch_clear(&b);
    }
    PQfinish(db);
    return NULL;
}

START_TEST(concurrent_claimers_split_the_work)
{
    PGconn *db;
    char *url = qtest_db("q_conc", &db);
    /* 60 records x 5 events. */
    itest_db_exec(db, "INSERT INTO sync_record (source, object_type, record_id)"
                      " SELECT 'hubspot', 'deal', r::text FROM generate_series(1, 60) r");
    itest_db_exec(db, "INSERT INTO sync_event (source, dedup_key, object_type, record_id,"
                      " event_type, occurred_at, payload)"
                      " SELECT 'hubspot', r || ':' || e, 'deal', r::text, 'x', now(), '{}'"
                      " FROM generate_series(1, 60) r, generate_series(1, 5) e");
    enum { N = 4 };
    struct claimer cs[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        cs[i] = (struct claimer){url, {0}, 0};
        snprintf(cs[i].name, sizeof(cs[i].name), "w%d", i);
        pthread_create(&th[i], NULL, claim_loop, &cs[i]);
    }
    long long total = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        total += cs[i].claimed_events;
    }
    ck_assert_int_eq(total, 300);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE status='done'"),
                     300);
    /* Exactly one outcome per event: no event was handled by two workers. */
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM (SELECT event_id FROM sync_outcome"
                                         " GROUP BY event_id HAVING count(*) > 1) d"),
                     0);
    /* All events of a record were finished by the same worker in one claim. */
    ck_assert_int_eq(itest_db_scalar(db,
                                     "SELECT count(*) FROM (SELECT record_id FROM sync_outcome"
                                     " GROUP BY record_id HAVING count(DISTINCT worker) > 1) d"),
                     0);
    PQfinish(db);
    free(url);
}
END_TEST

/* Live changes first: a record with a live event is claimed before background (import) records
 * queued earlier, a claim never mixes the two, and background claims fill batches of
 * QUEUE_BACKGROUND_CLAIM. */
START_TEST(live_records_are_claimed_before_background_ones)
{
    PGconn *db;
    char *url = qtest_db("q_prio", &db);
    enum { N = QUEUE_BACKGROUND_CLAIM + 50 };
    cJSON *p = cJSON_CreateObject();
    struct queue_event_in evs[N];
    char keys[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "import:%d", i);
        evs[i] = (struct queue_event_in){"hubspot", keys[i], "deal", keys[i] + 7,
                                         "import",  i,       p,      QUEUE_PRIORITY_BACKGROUND};
    }
    size_t stored = 0;
    ck_assert_int_eq(queue_push(db, evs, N, &stored), ERR_OK);
    ck_assert_uint_eq(stored, N);
    /* Two live edits arrive after the import was queued; one is on an imported record, which
     * makes that record live. */
    qtest_push(db, "hubspot", "live-1", "deal", "9999", 1);
    qtest_push(db, "hubspot", "live-2", "deal", "3", 2);
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 2);
    for (size_t i = 0; i < b.record_count; i++)
        ck_assert(strcmp(b.records[i].record_id, "9999") == 0 ||
                  strcmp(b.records[i].record_id, "3") == 0);
    queue_batch_clear(&b);
    /* Only background records are left: a claim of 10 takes QUEUE_BACKGROUND_CLAIM of them, then
     * the rest. */
    ck_assert_int_eq(queue_claim(db, "w2", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, QUEUE_BACKGROUND_CLAIM);
    queue_batch_clear(&b);
    ck_assert_int_eq(queue_claim(db, "w3", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, N - 1 - QUEUE_BACKGROUND_CLAIM);
    queue_batch_clear(&b);
    /* Every background record is leased (its events stay pending under the record's lease). */
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event e JOIN sync_record r"
                                         " USING (source, object_type, record_id)"
                                         " WHERE r.lease_expires_at > now() AND e.priority = 1"),
                     N);
    cJSON_Delete(p);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(prune_removes_only_old_done_events)
{
    PGconn *db;
    char *url = qtest_db("q_prune", &db);
    qtest_push(db, "hubspot", "old", "deal", "1", 1);
    qtest_push(db, "hubspot", "new", "deal", "2", 1);
    qtest_push(db, "hubspot", "dead", "deal", "3", 1);
    itest_db_exec(db, "UPDATE sync_event SET status = 'done', finished_at = now() - interval "
                      "'10 days' WHERE dedup_key = 'old'");
    itest_db_exec(db, "UPDATE sync_event SET status = 'done', finished_at = now()"
                      " WHERE dedup_key = 'new'");
    itest_db_exec(db, "UPDATE sync_event SET status = 'dead', finished_at = now() - interval "
                      "'10 days' WHERE dedup_key = 'dead'");
    long long deleted = 0;
    ck_assert_int_eq(queue_prune(db, 24, &deleted), ERR_OK);
    ck_assert_int_eq(deleted, 1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event"), 2);
    struct queue_depth d;
    ck_assert_int_eq(queue_depth(db, &d), ERR_OK);
    ck_assert_int_eq(d.done, 1);
    ck_assert_int_eq(d.dead, 1);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(dead_events_can_be_requeued)
{
    PGconn *db;
    char *url = qtest_db("q_requeue", &db);
    qtest_push(db, "hubspot", "a", "deal", "1", 1);
    qtest_push(db, "hubspot", "b", "deal", "2", 1);
    qtest_push(db, "hubspot", "c", "deal", "3", 1);
    itest_db_exec(db, "UPDATE sync_event SET status = 'dead', attempts = 10, last_error = 'x',"
                      " finished_at = now() WHERE dedup_key IN ('a', 'b')");
    itest_db_exec(db, "UPDATE sync_record SET not_before = now() + interval '1 hour'");
    long long moved = 0;
    int64_t id_a = itest_db_scalar(db, "SELECT id FROM sync_event WHERE dedup_key = 'a'");
    ck_assert_int_eq(queue_requeue_dead(db, &id_a, 1, &moved), ERR_OK);
    ck_assert_int_eq(moved, 1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE dedup_key = 'a'"
                                         " AND status = 'pending' AND attempts = 0"
                                         " AND last_error IS NULL"),
                     1);
    /* Its record is claimable at once, not after the old backoff. */
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_record WHERE record_id = '1'"
                                         " AND not_before <= now()"),
                     1);
    ck_assert_int_eq(queue_requeue_dead(db, NULL, 0, &moved), ERR_OK);
    ck_assert_int_eq(moved, 1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE status = 'dead'"),
                     0);
    PQfinish(db);
    free(url);
}
END_TEST

/* sync_record.open_events (what claims read instead of the events) follows every change of
 * sync_event, whoever makes it: push, claim, finish, requeue, an operator's UPDATE (one that
 * moves an event to another record included) or DELETE. */
START_TEST(open_event_counts_follow_every_change)
{
    PGconn *db;
    char *url = qtest_db("q_open", &db);
    qtest_push(db, "hubspot", "a1", "deal", "1", 1);
    qtest_push(db, "hubspot", "a2", "deal", "1", 2);
    qtest_push(db, "hubspot", "a2", "deal", "1", 2); /* duplicate: not counted */
    qtest_push(db, "hubspot", "b1", "deal", "2", 1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT open_events FROM sync_record WHERE record_id"
                                         " = '1'"),
                     2);
    ck_assert_int_eq(itest_db_scalar(db, OPEN_EVENTS_DRIFT), 0);
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 2);
    ck_assert_int_eq(itest_db_scalar(db, OPEN_EVENTS_DRIFT), 0);
    struct queue_finish_item items[2] = {
        {&b.records[0], QUEUE_DONE, NULL, 0, 0},
        {&b.records[1], QUEUE_DEAD, "gone", 0, 0},
    };
    ck_assert_int_eq(queue_finish_many(db, "w1", items, 2, 10), ERR_OK);
    queue_batch_clear(&b);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT sum(open_events) FROM sync_record"), 0);
    long long moved = 0;
    ck_assert_int_eq(queue_requeue_dead(db, NULL, 0, &moved), ERR_OK);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT sum(open_events) FROM sync_record"), moved);
    itest_db_exec(db, "UPDATE sync_event SET status = 'dead' WHERE dedup_key = 'a1'");
    itest_db_exec(db, "UPDATE sync_event SET status = 'pending' WHERE dedup_key <> 'a1'");
    ck_assert_int_eq(itest_db_scalar(db, OPEN_EVENTS_DRIFT), 0);
    /* an operator moving an open event to another record: one less there, one more here */
    itest_db_exec(db, "UPDATE sync_event SET record_id = '2' WHERE dedup_key = 'a2'");
    ck_assert_int_eq(itest_db_scalar(db, OPEN_EVENTS_DRIFT), 0);
    itest_db_exec(db, "UPDATE sync_event SET record_id = '1' WHERE dedup_key = 'a2'");
    itest_db_exec(db, "DELETE FROM sync_event WHERE dedup_key = 'b1'");
    ck_assert_int_eq(itest_db_scalar(db, OPEN_EVENTS_DRIFT), 0);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT sum(open_events) FROM sync_record"), 1);
    PQfinish(db);
    free(url);
}
END_TEST

/* A worker finishes a whole batch in one statement: each record gets its own outcome, and a
 * record whose lease was taken over changes nothing while the others are finished. */
START_TEST(finish_many_gives_each_record_its_outcome)
{
    PGconn *db;
    char *url = qtest_db("q_many", &db);
    qtest_push(db, "hubspot", "d1", "deal", "1", 1);
    qtest_push(db, "hubspot", "d2", "deal", "1", 2);
    qtest_push(db, "hubspot", "r1", "deal", "2", 1);
    qtest_push(db, "hubspot", "x1", "deal", "3", 1);
    qtest_push(db, "hubspot", "s1", "deal", "4", 1);
    qtest_push(db, "hubspot", "t1", "deal", "5", 1);
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 5);
    /* Record 5's lease expires and another worker takes it over. */
    itest_db_exec(db, "UPDATE sync_record SET lease_expires_at = now() - interval '1 second'"
                      " WHERE record_id = '5'");
    struct queue_batch other = {0};
    ck_assert_int_eq(queue_claim(db, "w2", 10, 60, false, &other), ERR_OK);
    ck_assert_uint_eq(other.record_count, 1);
    struct queue_finish_item items[5];
    for (size_t i = 0; i < 5; i++) {
        struct queue_record *r = &b.records[i];
        const char *id = r->record_id;
        items[i] = (struct queue_finish_item){r, QUEUE_DONE, "ok", 0, 99};
        if (strcmp(id, "2") == 0)
            items[i] = (struct queue_finish_item){r, QUEUE_RETRY, "503", 3600000, 99};
        if (strcmp(id, "3") == 0)
            items[i] = (struct queue_finish_item){r, QUEUE_DEAD, "bad", 0, 99};
        if (strcmp(id, "4") == 0)
            r->is_skipped = true;
    }
    ck_assert_int_eq(queue_finish_many(db, "w1", items, 5, 10), ERR_OK);
    for (size_t i = 0; i < 5; i++) {
        const char *id = b.records[i].record_id;
        size_t want = strcmp(id, "1") == 0 ? 2 : strcmp(id, "5") == 0 ? 0 : 1;
        ck_assert_msg(items[i].changed == want, "record %s changed %zu", id, items[i].changed);
    }
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_outcome WHERE outcome ="
                                         " 'done' AND record_id = '1'"),
                     2);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE dedup_key = 'r1'"
                                         " AND status = 'pending' AND last_error = '503'"),
                     1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_record WHERE record_id = '2'"
                                         " AND not_before > now() + interval '59 minutes'"),
                     1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE dedup_key = 'x1'"
                                         " AND status = 'dead' AND last_error = 'bad'"),
                     1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_outcome WHERE outcome ="
                                         " 'skipped' AND record_id = '4'"),
                     1);
    /* The other worker still holds record 5, and finishes it. */
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_record WHERE record_id = '5'"
                                         " AND lease_owner = 'w2'"),
                     1);
    size_t changed = 0;
    ck_assert_int_eq(queue_finish(db, "w2", &other.records[0], QUEUE_DONE, NULL, 0, 10, &changed),
                     ERR_OK);
    ck_assert_uint_eq(changed, 1);
    queue_batch_clear(&other);
    queue_batch_clear(&b);
    PQfinish(db);
    free(url);
}
END_TEST

/* A deferred record (busy elsewhere) waits without failing: pending again after the delay,
 * the attempt not counted, its last error kept, no outcome row. */
START_TEST(a_deferred_record_waits_without_counting_an_attempt)
{
    PGconn *db;
    char *url = qtest_db("q_defer", &db);
    qtest_push(db, "hubspot", "d1", "deal", "1", 1);
    itest_db_exec(db, "UPDATE sync_event SET last_error = 'earlier 503', attempts = 2");
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 1);
    ck_assert_int_eq(b.records[0].events[0].attempts, 3);
    struct queue_finish_item it = {&b.records[0], QUEUE_DEFER, "busy", 3600000, 0};
    ck_assert_int_eq(queue_finish_many(db, "w1", &it, 1, 3), ERR_OK);
    ck_assert_uint_eq(it.changed, 1);
    queue_batch_clear(&b);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE status ="
                                         " 'pending' AND attempts = 2 AND last_error ="
                                         " 'earlier 503' AND finished_at IS NULL"),
                     1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_outcome"), 0);
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 0);
    queue_batch_clear(&b);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT open_events FROM sync_record"), 1);
    PQfinish(db);
    free(url);
}
END_TEST

/* A finish counts its own closed events and the trigger skips that one statement (migration
 * 0085): a change of sync_event later in the same transaction, here an operator's, is counted
 * again, and a finish with retries, deferrals and a record holding two events stays exact. */
START_TEST(a_finish_counts_its_own_events_and_only_its_own)
{
    PGconn *db;
    char *url = qtest_db("q_count", &db);
    qtest_push(db, "hubspot", "a1", "deal", "1", 1);
    qtest_push(db, "hubspot", "a2", "deal", "1", 2);
    qtest_push(db, "hubspot", "b1", "deal", "2", 1);
    qtest_push(db, "hubspot", "c1", "deal", "3", 1);
    qtest_push(db, "hubspot", "d1", "deal", "4", 1);
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 4);
    struct queue_finish_item items[4] = {
        {&b.records[0], QUEUE_DONE, NULL, 0, 0},
        {&b.records[1], QUEUE_RETRY, "503", 0, 0},
        {&b.records[2], QUEUE_DEFER, "busy", 0, 0},
        {&b.records[3], QUEUE_DEAD, "gone", 0, 0},
    };
    itest_db_exec(db, "BEGIN");
    ck_assert_int_eq(queue_finish_many(db, "w1", items, 4, 10), ERR_OK);
    itest_db_exec(db, "UPDATE sync_event SET status = 'dead' WHERE dedup_key = 'b1'");
    itest_db_exec(db, "COMMIT");
    queue_batch_clear(&b);
    ck_assert_int_eq(itest_db_scalar(db, OPEN_EVENTS_DRIFT), 0);
    /* records 1 (done) and 4 (dead) closed, 2 closed by the operator, 3 deferred */
    ck_assert_int_eq(itest_db_scalar(db, "SELECT sum(open_events) FROM sync_record"), 1);
    PQfinish(db);
    free(url);
}
END_TEST

/* PostgreSQL plans a prepared statement for its parameters' values its first five times, then
 * reuses one plan for any values when that costs no more. The claim's plan for a value of its
 * live_only parameter ("NOT $5 OR EXISTS ...") always cost less, and every claim was planned anew:
 * about 1 ms of a claim's 2 to 3 ms for 100 records. The claim reuses its plan, and the finish,
 * one statement outside a transaction (it was three), keeps the counts exact. */
START_TEST(a_claim_reuses_its_plan)
{
    PGconn *db;
    char *url = qtest_db("q_plans", &db);
    /* A backlog of the benchmark's size, with statistics: the planner compares real costs. */
    itest_db_exec(db, "INSERT INTO sync_record (source, object_type, record_id)"
                      " SELECT 'hubspot', 'deal', r::text FROM generate_series(1, 5000) r");
    itest_db_exec(db,
                  "INSERT INTO sync_event (source, dedup_key, object_type, record_id,"
                  " event_type, occurred_at, payload) SELECT 'hubspot', e::text, 'deal',"
                  " e::text, 'deal.propertyChange', now(), '{}' FROM generate_series(1, 5000) e");
    itest_db_exec(db, "ANALYZE sync_record");
    itest_db_exec(db, "ANALYZE sync_event");
    for (int i = 0; i < 8; i++) {
        struct queue_batch b = {0};
        ck_assert_int_eq(queue_claim(db, "w", 1, 60, false, &b), ERR_OK);
        ck_assert_uint_eq(b.record_count, 1);
        size_t changed = 0;
        ck_assert_int_eq(queue_finish(db, "w", &b.records[0], QUEUE_DONE, NULL, 0, 10, &changed),
                         ERR_OK);
        ck_assert_uint_eq(changed, 1);
        queue_batch_clear(&b);
    }
    ck_assert_int_eq(PQtransactionStatus(db), PQTRANS_IDLE);
    ck_assert_int_eq(itest_db_scalar(db, OPEN_EVENTS_DRIFT), 0);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT sum(open_events) FROM sync_record"), 4992);
    /* The claim's prepared statement, on the same connection. */
    ck_assert_int_ge(itest_db_scalar(db, "SELECT coalesce(sum(generic_plans), 0)"
                                         " FROM pg_prepared_statements"
                                         " WHERE statement LIKE 'WITH busy AS%'"),
                     1);
    PQfinish(db);
    free(url);
}
END_TEST

/* A record leased by a claim whose events the claim's snapshot does not see (a push committed
 * while the claim ran; here an open-events count set by hand) is released at once, and the
 * records claimed with it keep their leases and events. */
START_TEST(a_record_claimed_without_events_is_released)
{
    PGconn *db;
    char *url = qtest_db("q_empty", &db);
    qtest_push(db, "hubspot", "a1", "deal", "1", 1);
    qtest_push(db, "hubspot", "c1", "deal", "3", 1);
    itest_db_exec(db, "INSERT INTO sync_record (source, object_type, record_id, open_events)"
                      " VALUES ('hubspot', 'deal', '2', 1)");
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 2);
    ck_assert_str_eq(b.records[0].record_id, "1");
    ck_assert_str_eq(b.records[1].record_id, "3");
    ck_assert_uint_eq(b.records[1].event_count, 1);
    queue_batch_clear(&b);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_record WHERE lease_owner"
                                         " = 'w1'"),
                     2);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_record WHERE record_id"
                                         " = '2' AND lease_owner IS NULL"),
                     1);
    PQfinish(db);
    free(url);
}
END_TEST

/* A record without open events takes its place in the claim order when its change arrives:
 * record 1, finished an hour ago, and record 2, finished just now, each get a change, record 2's
 * first; a claim of one takes record 2 (it took record 1 when the order was the last finish). */
START_TEST(records_are_claimed_in_the_order_their_changes_arrived)
{
    PGconn *db;
    char *url = qtest_db("q_fifo", &db);
    qtest_push(db, "hubspot", "a1", "deal", "1", 1);
    qtest_push(db, "hubspot", "b1", "deal", "2", 1);
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 2);
    struct queue_finish_item items[2] = {{&b.records[0], QUEUE_DONE, NULL, 0, 0},
                                         {&b.records[1], QUEUE_DONE, NULL, 0, 0}};
    ck_assert_int_eq(queue_finish_many(db, "w1", items, 2, 10), ERR_OK);
    queue_batch_clear(&b);
    itest_db_exec(db, "UPDATE sync_record SET not_before = now() - interval '1 hour'"
                      " WHERE record_id = '1'");
    qtest_push(db, "hubspot", "b2", "deal", "2", 2);
    qtest_push(db, "hubspot", "a2", "deal", "1", 2);
    ck_assert_int_eq(queue_claim(db, "w1", 1, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 1);
    ck_assert_str_eq(b.records[0].record_id, "2");
    queue_batch_clear(&b);
    /* A backoff still to come is kept by a new change. */
    itest_db_exec(db, "UPDATE sync_record SET not_before = now() + interval '1 hour'"
                      " WHERE record_id = '1'");
    itest_db_exec(db, "UPDATE sync_event SET status = 'done' WHERE record_id = '1'");
    qtest_push(db, "hubspot", "a3", "deal", "1", 3);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_record WHERE record_id = '1'"
                                         " AND not_before > now() + interval '59 minutes'"),
                     1);
    PQfinish(db);
    free(url);
}
END_TEST

/* A claim leases records and writes none of their events: each event keeps its tuple (same
 * ctid and xmin: no new version, no index entries), stays pending, and is counted running by
 * the status views while the lease lasts. The attempt is counted when it ends (a deferral
 * counts none), dated from the claim; a lease that ran out is counted when the record is taken
 * over, and an event an older worker left running is claimed and finished once. */
START_TEST(a_claim_leases_the_record_and_writes_no_event)
{
    PGconn *db;
    char *url = qtest_db("q_lease_only", &db);
    qtest_push(db, "hubspot", "a1", "deal", "1", 1);
    qtest_push(db, "hubspot", "a2", "deal", "1", 2);
    qtest_push(db, "hubspot", "b1", "deal", "2", 1);
    static const char versions[] =
        "SELECT count(*) FROM sync_event e JOIN before_claim b ON b.id = e.id"
        " WHERE (e.ctid::text, e.xmin::text) = (b.t, b.x) AND e.status = 'pending'";
    itest_db_exec(db,
                  "CREATE TEMP TABLE before_claim AS SELECT id, ctid::text AS t, xmin::text AS x"
                  " FROM sync_event");
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 2);
    ck_assert_int_eq(b.records[0].events[0].attempts, 1);
    ck_assert_int_eq(itest_db_scalar(db, versions), 3);
    struct queue_depth d;
    ck_assert_int_eq(queue_depth(db, &d), ERR_OK);
    ck_assert_int_eq(d.running, 3);
    ck_assert_int_eq(d.pending, 0);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_record WHERE lease_owner ="
                                         " 'w1' AND leased_at IS NOT NULL"),
                     2);
    /* Record 1 done, record 2 deferred: one attempt counted on each event of record 1, none
     * on record 2's; both dated from the claim. */
    struct queue_finish_item items[2] = {{&b.records[0], QUEUE_DONE, NULL, 0, 0},
                                         {&b.records[1], QUEUE_DEFER, "busy", 0, 0}};
    ck_assert_str_eq(b.records[0].record_id, "1");
    ck_assert_int_eq(queue_finish_many(db, "w1", items, 2, 10), ERR_OK);
    ck_assert_uint_eq(items[0].changed, 2);
    ck_assert_uint_eq(items[1].changed, 1);
    queue_batch_clear(&b);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event e JOIN sync_record r"
                                         " USING (source, object_type, record_id)"
                                         " WHERE e.last_attempt_at = r.leased_at AND"
                                         " ((e.record_id = '1' AND e.status = 'done' AND"
                                         "   e.attempts = 1) OR (e.record_id = '2' AND"
                                         "   e.status = 'pending' AND e.attempts = 0))"),
                     3);
    ck_assert_int_eq(queue_depth(db, &d), ERR_OK);
    ck_assert_int_eq(d.running, 0);
    ck_assert_int_eq(d.pending, 1);
    /* Record 2's lease runs out in w2's hands: the attempt is counted when w3 takes it over,
     * and w2 changes nothing. */
    ck_assert_int_eq(queue_claim(db, "w2", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 1);
    ck_assert_int_eq(b.records[0].events[0].attempts, 1);
    itest_db_exec(db, "UPDATE sync_record SET lease_expires_at = now() - interval '1 second'");
    struct queue_batch taken = {0};
    ck_assert_int_eq(queue_claim(db, "w3", 10, 60, false, &taken), ERR_OK);
    ck_assert_uint_eq(taken.record_count, 1);
    ck_assert_int_eq(taken.records[0].events[0].attempts, 2);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT attempts FROM sync_event WHERE dedup_key = 'b1'"),
                     1);
    size_t changed = 99;
    ck_assert_int_eq(queue_finish(db, "w2", &b.records[0], QUEUE_DONE, NULL, 0, 10, &changed),
                     ERR_OK);
    ck_assert_uint_eq(changed, 0);
    ck_assert_int_eq(queue_finish(db, "w3", &taken.records[0], QUEUE_RETRY, "503", 0, 10, &changed),
                     ERR_OK);
    ck_assert_uint_eq(changed, 1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE dedup_key = 'b1'"
                                         " AND status = 'pending' AND attempts = 2"),
                     1);
    queue_batch_clear(&b);
    queue_batch_clear(&taken);
    /* An event an older worker marked running, whose lease ran out, is claimed and finished. */
    qtest_push(db, "hubspot", "c1", "deal", "3", 1);
    itest_db_exec(db, "UPDATE sync_event SET status = 'running', attempts = 1, lease_owner = 'old'"
                      " WHERE dedup_key = 'c1'");
    itest_db_exec(db, "UPDATE sync_record SET lease_owner = 'old', lease_expires_at = now() -"
                      " interval '1 second' WHERE record_id = '3'");
    itest_db_exec(db, "UPDATE sync_record SET not_before = now() + interval '1 hour'"
                      " WHERE record_id = '2'");
    ck_assert_int_eq(queue_claim(db, "w4", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 1);
    ck_assert_str_eq(b.records[0].record_id, "3");
    ck_assert_int_eq(queue_finish(db, "w4", &b.records[0], QUEUE_DONE, NULL, 0, 10, &changed),
                     ERR_OK);
    ck_assert_uint_eq(changed, 1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE dedup_key = 'c1'"
                                         " AND status = 'done'"),
                     1);
    ck_assert_int_eq(itest_db_scalar(db, OPEN_EVENTS_DRIFT), 0);
    queue_batch_clear(&b);
    PQfinish(db);
    free(url);
}
END_TEST

/* A record whose busy lock (QUEUE_RECORD_LOCK_CLASS) another session holds, because a worker
 * is handling its pair from the other side, is left for a later claim, which takes it once the
 * lock is released; the claiming session's own lock does not hold it back. */
START_TEST(a_record_held_by_another_session_is_left_for_later)
{
    PGconn *db;
    char *url = qtest_db("q_busy", &db);
    PGconn *other = itest_db_connect(url);
    qtest_push(db, "salesforce", "s1", "Opportunity", "006A", 1);
    qtest_push(db, "salesforce", "s2", "Opportunity", "006B", 2);
    qtest_push(db, "hubspot", "h1", "deal", "77", 3);
    itest_db_exec(other,
                  "SELECT pg_advisory_lock(" QUEUE_RECORD_LOCK_CLASS ", hashtext('sf:006A')),"
                  " pg_advisory_lock(" QUEUE_RECORD_LOCK_CLASS ", hashtext('hs:77'))");
    itest_db_exec(db, "SELECT pg_advisory_lock(" QUEUE_RECORD_LOCK_CLASS ", hashtext('sf:006B'))");
    /* A dealsync of another database in the same cluster holds the same key: not this one's. */
    PGconn *elsewhere = NULL;
    char *url2 = qtest_db("q_busy_other", &elsewhere);
    itest_db_exec(elsewhere,
                  "SELECT pg_advisory_lock(" QUEUE_RECORD_LOCK_CLASS ", hashtext('sf:006B'))");
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 1);
    ck_assert_str_eq(b.records[0].record_id, "006B");
    queue_batch_clear(&b);
    itest_db_exec(other, "SELECT pg_advisory_unlock_all()");
    ck_assert_int_eq(queue_claim(db, "w2", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 2);
    ck_assert_str_eq(b.records[0].record_id, "77");
    ck_assert_str_eq(b.records[1].record_id, "006A");
    queue_batch_clear(&b);
    PQfinish(elsewhere);
    free(url2);
    PQfinish(other);
    PQfinish(db);
    free(url);
}
END_TEST

/* N background records and a live one ("9999") that another session makes unclaimable with
 * hold_sql: a claim of the live size meanwhile takes a full background batch without it; once
 * release_sql gives it back, the live record is claimed first, on its own. */
static void background_claims_stay_full(const char *name, const char *hold_sql,
                                        const char *release_sql)
{
    PGconn *db;
    char *url = qtest_db(name, &db);
    PGconn *other = itest_db_connect(url);
    enum { N = QUEUE_BACKGROUND_CLAIM + 50 };
    cJSON *p = cJSON_CreateObject();
    struct queue_event_in evs[N];
    char keys[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "import:%d", i);
        evs[i] = (struct queue_event_in){"hubspot", keys[i], "deal", keys[i] + 7,
                                         "import",  i,       p,      QUEUE_PRIORITY_BACKGROUND};
    }
    size_t stored = 0;
    ck_assert_int_eq(queue_push(db, evs, N, &stored), ERR_OK);
    qtest_push(db, "hubspot", "live-1", "deal", "9999", 1);
    itest_db_exec(other, "BEGIN");
    itest_db_exec(other, hold_sql);
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, QUEUE_BACKGROUND_CLAIM);
    for (size_t i = 0; i < b.record_count; i++)
        ck_assert_str_ne(b.records[i].record_id, "9999");
    queue_batch_clear(&b);
    itest_db_exec(other, release_sql);
    itest_db_exec(other, "COMMIT");
    ck_assert_int_eq(queue_claim(db, "w2", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 1);
    ck_assert_str_eq(b.records[0].record_id, "9999");
    queue_batch_clear(&b);
    cJSON_Delete(p);
    PQfinish(other);
    PQfinish(db);
    free(url);
}

/* A live record whose busy lock another session holds (a worker writes its pair from the other
 * side: the webhooks of the deals an import batch is writing) is no claimable live work: a
 * claim behind it still takes a full background batch, not the live claim size. */
START_TEST(a_busy_live_record_leaves_background_claims_full)
{
    background_claims_stay_full(
        "q_busy_live", "SELECT pg_advisory_lock(" QUEUE_RECORD_LOCK_CLASS ", hashtext('hs:9999'))",
        "SELECT pg_advisory_unlock_all()");
}
END_TEST

/* Nor is a live record that a concurrent claim has locked (its lease not committed yet): that
 * claim takes it, and a claim made meanwhile takes a full background batch. */
START_TEST(a_live_record_being_claimed_leaves_background_claims_full)
{
    /* The other claim gives it up (its transaction ends without a lease). */
    background_claims_stay_full("q_locked_live",
                                "SELECT 1 FROM sync_record WHERE record_id = '9999' FOR UPDATE",
                                "SELECT 1");
}
END_TEST

/* The contacts' roll-ups are records of their own (contact_rollup_queue): what several
 * batches queue for a contact before a claim is claimed as one record, and what is queued while
 * a worker holds it waits for the next claim. */
START_TEST(contact_rollups_queued_by_several_batches_are_claimed_together)
{
    PGconn *db;
    char *url = qtest_db("q_rollups", &db);
    cJSON *first = cJSON_Parse("[\"501\", \"502\"]"), *made = cJSON_Parse("[\"501\"]");
    cJSON *second = cJSON_Parse("[\"501\", \"501\"]");
    ck_assert_int_eq(contact_rollup_queue(db, first, made), ERR_OK);
    ck_assert_int_eq(contact_rollup_queue(db, second, NULL), ERR_OK); /* one event: a repeat */
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event"), 3);
    struct queue_batch b = {0};
    ck_assert_int_eq(queue_claim(db, "w1", 10, 60, false, &b), ERR_OK);
    ck_assert_uint_eq(b.record_count, 2);
    struct queue_record *c501 =
        strcmp(b.records[0].record_id, "501") == 0 ? &b.records[0] : &b.records[1];
    ck_assert_str_eq(c501->source, "hubspot");
    ck_assert_str_eq(c501->object_type, CONTACT_ROLLUP_OBJECT);
    ck_assert_uint_eq(c501->event_count, 2);
    ck_assert_ptr_nonnull(strstr(c501->events[0].payload, "true"));  /* created by batch 1 */
    ck_assert_ptr_nonnull(strstr(c501->events[1].payload, "false")); /* not by batch 2 */

    /* Queued while w1 holds it: not claimable until w1 finishes, then claimed alone. */
    cJSON *third = cJSON_Parse("[\"501\"]");
    ck_assert_int_eq(contact_rollup_queue(db, third, NULL), ERR_OK);
    struct queue_batch b2 = {0};
    ck_assert_int_eq(queue_claim(db, "w2", 10, 60, false, &b2), ERR_OK);
    ck_assert_uint_eq(b2.record_count, 0);
    queue_batch_clear(&b2);
    struct queue_finish_item items[2] = {{&b.records[0], QUEUE_DONE, NULL, 0, 0},
                                         {&b.records[1], QUEUE_DONE, NULL, 0, 0}};
    ck_assert_int_eq(queue_finish_many(db, "w1", items, 2, 10), ERR_OK);
    ck_assert_uint_eq(items[0].changed + items[1].changed, 3);
    ck_assert_int_eq(queue_claim(db, "w2", 10, 60, false, &b2), ERR_OK);
    ck_assert_uint_eq(b2.record_count, 1);
    ck_assert_str_eq(b2.records[0].record_id, "501");
    ck_assert_uint_eq(b2.records[0].event_count, 1);
    queue_batch_clear(&b2);
    queue_batch_clear(&b);
    cJSON_Delete(third);
    cJSON_Delete(second);
    cJSON_Delete(made);
    cJSON_Delete(first);
    PQfinish(db);
    free(url);
}
END_TEST

Suite *suite_queue(void);
Suite *suite_queue(void)
{
    Suite *s = suite_create("queue");
    TCase *tc = tcase_create("postgres");
    tcase_add_test(tc, migrations_apply_once_and_are_current);
    tcase_add_test(tc, duplicates_are_stored_once);
    tcase_add_test(tc, a_commit_that_rolls_back_is_a_failure);
    tcase_add_test(tc, a_give_back_locks_its_records_in_key_order);
    tcase_add_test(tc, a_requeue_locks_its_records_in_key_order);
    tcase_add_test(tc, a_push_stores_its_events_in_key_order);
    tcase_add_test(tc, a_push_numbers_its_events_in_the_order_they_came);
    tcase_add_test(tc, a_finish_marks_what_dies_of_a_transient_cause);
    tcase_add_test(tc, a_batch_is_one_transaction);
    tcase_add_test(tc, claim_coalesces_a_record_in_order);
    tcase_add_test(tc, retry_backs_off_then_dead_letters);
    tcase_add_test(tc, expired_lease_is_taken_over_and_the_old_owner_changes_nothing);
    tcase_add_test(tc, concurrent_claimers_split_the_work);
    tcase_add_test(tc, live_records_are_claimed_before_background_ones);
    tcase_add_test(tc, prune_removes_only_old_done_events);
    tcase_add_test(tc, dead_events_can_be_requeued);
    tcase_add_test(tc, open_event_counts_follow_every_change);
    tcase_add_test(tc, finish_many_gives_each_record_its_outcome);
    tcase_add_test(tc, a_deferred_record_waits_without_counting_an_attempt);
    tcase_add_test(tc, a_finish_counts_its_own_events_and_only_its_own);
    tcase_add_test(tc, a_claim_reuses_its_plan);
    tcase_add_test(tc, a_record_claimed_without_events_is_released);
    tcase_add_test(tc, records_are_claimed_in_the_order_their_changes_arrived);
    tcase_add_test(tc, a_record_held_by_another_session_is_left_for_later);
    tcase_add_test(tc, a_busy_live_record_leaves_background_claims_full);
    tcase_add_test(tc, a_live_record_being_claimed_leaves_background_claims_full);
    tcase_add_test(tc, a_claim_leases_the_record_and_writes_no_event);
    tcase_add_test(tc, contact_rollups_queued_by_several_batches_are_claimed_together);
    suite_add_tcase(s, tc);
    return s;
}
