/* test_ingest_split.c - the webhook inbox and its splitter (issue 13) against a real dealsync and
 * a real PostgreSQL: acknowledged events are split exactly once and in order across a kill -9 of
 * the splitter at either step of its transaction, duplicates across requests are stored once,
 * bad input stores nothing (not even an inbox row), an event the database refuses at the split
 * is set aside without sinking its batch (the row's events then pushed in their records' key
 * order), and two splitters at once split each row once, in order. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_split.h"
#include "itest.h"
#include "qtest.h"
#include "svc.h"
#include "util.h"

/* A body of n events for the keys first..first+n-1, on records 1..3 in turn. */
static char *events_body(int first, int n)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "[");
    for (int i = 0; i < n; i++) {
        int k = first + i;
        buf_printf(&b,
                   "%s{\"subscriptionType\":\"deal.propertyChange\",\"objectId\":%d,"
                   "\"eventId\":%d,\"portalId\":1,\"subscriptionId\":2,\"occurredAt\":%lld,"
                   "\"propertyName\":\"amount\",\"propertyValue\":\"%d\"}",
                   i ? "," : "", 1 + k % 3, k, 1782371972000LL + k, k);
    }
    buf_append_str(&b, "]");
    return buf_steal(&b);
}

struct blocked {
    PGconn *db;
    const char *query_prefix;
};

static bool is_blocked(void *arg)
{
    struct blocked *b = arg;
    char *sql = xasprintf("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                          " AND query LIKE '%s%%'",
                          b->query_prefix);
    long long n = itest_db_scalar(b->db, sql);
    free(sql);
    return n == 1;
}

/* No backend of this database is left but the test's own connections (dealsync is dead). */
static bool only_test_backends(void *arg)
{
    return itest_db_scalar(arg,
                           "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                           " current_database() AND backend_type = 'client backend'"
                           " AND application_name <> 'holder' AND pid <> pg_backend_pid()") == 0;
}

/* Kills dealsync while its splitter waits for the lock held on `table` by a statement starting
 * with query_prefix, then checks that nothing of the split remains and the inbox is whole. */
static void kill_while_blocked(struct svc *s, const char *lock_sql, const char *query_prefix,
                               long long inbox_rows)
{
    char *holder_url = xasprintf("%s?application_name=holder", s->db_url);
    PGconn *holder = itest_db_connect(holder_url);
    free(holder_url);
    itest_db_exec(holder, "BEGIN");
    itest_db_exec(holder, lock_sql);
    struct blocked b = {s->db, query_prefix};
    if (!s->proc)
        svc_respawn(s, NULL); /* its splitter starts on the inbox at once */
    if (inbox_rows == 0) {
        /* Acknowledged while the split is held: each request's body is durable in the inbox. */
        for (int i = 0; i < 5; i++) {
            char *body = events_body(1 + 3 * i, 3);
            char *resp = NULL;
            ck_assert_int_eq(svc_ack_hubspot(s, body, &resp), 200);
            ck_assert_ptr_nonnull(strstr(resp, "\"stored\":3"));
            free(resp);
            free(body);
        }
        inbox_rows = 5;
    }
    ck_assert_msg(itest_wait_for(is_blocked, &b, 20000), "the split never waited at %s",
                  query_prefix);
    svc_kill(s);
    itest_db_exec(holder, "COMMIT");
    ck_assert_msg(itest_wait_for(only_test_backends, s->db, 20000),
                  "the killed splitter's transaction is still open");
    PQfinish(holder);
    ck_assert_int_eq(itest_db_scalar(s->db, "SELECT count(*) FROM ingest_inbox"), inbox_rows);
    ck_assert_int_eq(svc_events(s), 0);
}

START_TEST(acked_events_are_split_once_in_order_across_kill_9)
{
    struct svc s;
    svc_start(&s, "split_kill", NULL);
    /* Killed while storing the events (the queue is locked against the insert)... */
    kill_while_blocked(&s, "LOCK TABLE sync_event IN SHARE MODE", "WITH input", 0);
    /* ...and, started again, killed after storing them, before deleting the inbox rows. */
    kill_while_blocked(&s, "LOCK TABLE ingest_inbox IN SHARE MODE", "DELETE FROM ingest_inbox", 5);
    svc_respawn(&s, NULL);
    svc_wait_split(&s);
    ck_assert_int_eq(svc_events(&s), 15);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(DISTINCT dedup_key) FROM sync_event"), 15);
    /* In inbox order: the queue's ids follow the events as the requests carried them. */
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM (SELECT id, split_part(dedup_key,"
                                           " ':', 3)::int AS k, row_number() OVER (ORDER BY id)"
                                           " AS n FROM sync_event) e WHERE k <> n"),
                     0);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT sum(open_events) FROM sync_record"), 15);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

static long long inbox_sequence(struct svc *s)
{
    return itest_db_scalar(s->db, "SELECT last_value + (CASE WHEN is_called THEN 1 ELSE 0 END)"
                                  " FROM ingest_inbox_id_seq");
}

START_TEST(duplicates_are_stored_once_and_bad_input_stores_nothing)
{
    struct svc s;
    svc_start(&s, "split_dups", NULL);
    char *resp = NULL;
    /* Keys 1, 2 then 2, 3: key 2 twice across two requests, stored once. */
    char *a = events_body(1, 2), *b = events_body(2, 2);
    ck_assert_int_eq(svc_post_hubspot(&s, a, &resp), 200);
    free(resp);
    ck_assert_int_eq(svc_post_hubspot(&s, b, &resp), 200);
    free(resp);
    ck_assert_int_eq(svc_events(&s), 3);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM sync_event WHERE dedup_key ="
                                           " '1:2:2'"),
                     1);
    /* The same body again: acknowledged, nothing new. */
    ck_assert_int_eq(svc_post_hubspot(&s, a, &resp), 200);
    free(resp);
    ck_assert_int_eq(svc_events(&s), 3);

    /* An invalid event beside a valid one: the invalid one is set aside, at the ack and at the
     * split alike. */
    ck_assert_int_eq(svc_post_hubspot(&s,
                                      "[{\"subscriptionType\":\"deal.creation\",\"objectId\":7,"
                                      "\"eventId\":70,\"portalId\":1,\"occurredAt\":9.2e18},"
                                      "{\"subscriptionType\":\"deal.creation\",\"objectId\":7,"
                                      "\"eventId\":71,\"portalId\":1}]",
                                      &resp),
                     200);
    ck_assert_ptr_nonnull(strstr(resp, "\"stored\":1"));
    ck_assert_ptr_nonnull(strstr(resp, "\"rejected\":1"));
    free(resp);
    ck_assert_int_eq(svc_events(&s), 4);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM sync_event WHERE dedup_key ="
                                           " '1:0:70'"),
                     0);

    /* Refused requests store nothing, not even an inbox row. */
    long long seq = inbox_sequence(&s);
    ck_assert_int_eq(svc_post_hubspot(&s,
                                      "[{\"subscriptionType\":\"deal.creation\",\"objectId\":8,"
                                      "\"eventId\":80,\"portalId\":1,\"occurredAt\":-5}]",
                                      &resp),
                     400);
    free(resp);
    ck_assert_int_eq(svc_post_hubspot(&s, "{\"not\":\"an array\"}", &resp), 400);
    free(resp);
    const char *unsigned_headers[] = {"Content-Type: application/json", NULL};
    ck_assert_int_eq(svc_post(&s, "/webhooks/hubspot", unsigned_headers, a, strlen(a), &resp), 401);
    free(resp);
    /* Only object types dealsync does not sync: acknowledged, nothing to store. */
    ck_assert_int_eq(svc_post_hubspot(&s,
                                      "[{\"subscriptionType\":\"ticket.creation\",\"objectId\":1,"
                                      "\"eventId\":90,\"portalId\":1}]",
                                      &resp),
                     200);
    free(resp);
    ck_assert_int_eq(inbox_sequence(&s), seq);
    ck_assert_int_eq(svc_events(&s), 4);
    free(a);
    free(b);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

START_TEST(an_event_the_database_refuses_at_the_split_is_set_aside_alone)
{
    struct svc s;
    svc_start(&s, "split_refuse", NULL);
    itest_db_exec(s.db, "ALTER TABLE sync_event ADD CONSTRAINT test_refuses_666"
                        " CHECK (record_id <> '666')");
    /* Two rows committed together, as two requests of one group commit: split in one batch,
     * which the refused event fails. */
    PGconn *holder = itest_db_connect(s.db_url);
    itest_db_exec(holder, "BEGIN");
    itest_db_exec(holder, "INSERT INTO ingest_inbox (source, received_ms, body) VALUES"
                          " ('hubspot', 1782371972000, convert_to('[{\"subscriptionType\":"
                          "\"deal.creation\",\"objectId\":666,\"eventId\":1,\"portalId\":1},"
                          "{\"subscriptionType\":\"deal.creation\",\"objectId\":667,"
                          "\"eventId\":2,\"portalId\":1}]', 'UTF8')),"
                          " ('hubspot', 1782371972000, convert_to('[{\"subscriptionType\":"
                          "\"deal.creation\",\"objectId\":668,\"eventId\":3,\"portalId\":1}]',"
                          " 'UTF8'))");
    itest_db_exec(holder, "COMMIT");
    PQfinish(holder);
    svc_wait_split(&s);
    ck_assert_int_eq(svc_events(&s), 2);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM sync_event WHERE record_id IN"
                                           " ('667', '668')"),
                     2);
    char *log = xstrdup(s.log_path);
    ck_assert_int_eq(svc_stop(&s), 0);
    ck_assert_int_eq(
        itest_file_lines(log, "webhook event set aside: the database refuses its data"), 1);
    free(log);
}
END_TEST

struct splitter_arg {
    char *url;
    size_t rows;
    enum err rc;
};

static void *split_until_empty(void *arg)
{
    struct splitter_arg *a = arg;
    PGconn *db = itest_db_connect(a->url);
    a->rc = ERR_OK;
    for (;;) {
        struct ingest_split_result res;
        a->rc = ingest_split_batch(db, 3, &res);
        if (a->rc != ERR_OK || res.rows == 0)
            break;
        a->rows += res.rows;
    }
    PQfinish(db);
    return NULL;
}

/* A row split alone (its batch failed on its data) pushes its events one by one, each holding
 * its record until the commit: in the records' key order, as every other push locks them, or
 * it could hold a record a concurrent push waits for while it waits for one that push holds.
 * The row's events are on records 3, 2 and 1, in that order; the database refuses record 1
 * (its batch fails at once, at the first record in key order), and record 2 is held by an
 * uncommitted push: the split waits there, holding no other record, and a push of record 3
 * does not wait for it. */
START_TEST(a_row_split_alone_locks_its_records_in_key_order)
{
    PGconn *db;
    char *url = qtest_db("split_alone_order", &db);
    itest_db_exec(db, "ALTER TABLE sync_record ADD CONSTRAINT test_refuses_1"
                      " CHECK (record_id <> '1')");
    static const char body[] =
        "[{\"subscriptionType\":\"deal.creation\",\"objectId\":3,\"eventId\":1,\"portalId\":1},"
        "{\"subscriptionType\":\"deal.creation\",\"objectId\":2,\"eventId\":2,\"portalId\":1},"
        "{\"subscriptionType\":\"deal.creation\",\"objectId\":1,\"eventId\":3,\"portalId\":1}]";
    struct ingest_body in = {"hubspot", body, strlen(body), 1782371972000LL};
    char state[6];
    ck_assert_int_eq(ingest_inbox_push(db, &in, 1, state), ERR_OK);
    PGconn *holder = itest_db_connect(url);
    itest_db_exec(holder, "BEGIN");
    ck_assert_int_eq(qtest_push(holder, "hubspot", "holder", "deal", "2", 1782371972000LL), 1);
    struct splitter_arg split = {url, 0, ERR_DB};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, split_until_empty, &split), 0);
    struct blocked b = {db, "WITH input AS"};
    ck_assert_msg(itest_wait_for(is_blocked, &b, 20000), "the split never waited for record 2");
    /* A wait here (for record 3, held by the split) would time out. */
    PGconn *probe = itest_db_connect(url);
    itest_db_exec(probe, "SET lock_timeout = '200ms'");
    ck_assert_int_eq(qtest_push(probe, "hubspot", "probe", "deal", "3", 1782371972000LL), 1);
    itest_db_exec(holder, "COMMIT");
    pthread_join(t, NULL);
    ck_assert_int_eq(split.rc, ERR_OK);
    ck_assert_uint_eq(split.rows, 1);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event WHERE record_id IN"
                                         " ('2', '3')"),
                     4);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM ingest_inbox"), 0);
    PQfinish(probe);
    PQfinish(holder);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(two_splitters_split_each_row_once_in_order)
{
    PGconn *db;
    char *url = qtest_db("split_two", &db);
    enum { ROWS = 40 };
    char *bodies[ROWS];
    struct ingest_body in[ROWS];
    for (int i = 0; i < ROWS; i++) {
        bodies[i] = events_body(1 + 2 * i, 2);
        in[i] = (struct ingest_body){"hubspot", bodies[i], strlen(bodies[i]), 1782371972000LL};
    }
    char state[6];
    ck_assert_int_eq(ingest_inbox_push(db, in, ROWS / 2, state), ERR_OK);
    ck_assert_int_eq(ingest_inbox_push(db, in + ROWS / 2, ROWS / 2, state), ERR_OK);
    long long pending = 0;
    ck_assert_int_eq(ingest_inbox_pending(db, &pending), ERR_OK);
    ck_assert_int_eq(pending, ROWS);

    struct splitter_arg a[2] = {{url, 0, ERR_DB}, {url, 0, ERR_DB}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, split_until_empty, &a[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(a[0].rc, ERR_OK);
    ck_assert_int_eq(a[1].rc, ERR_OK);
    ck_assert_uint_eq(a[0].rows + a[1].rows, ROWS);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM ingest_inbox"), 0);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM sync_event"), 2 * ROWS);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM (SELECT split_part(dedup_key,"
                                         " ':', 3)::int AS k, row_number() OVER (ORDER BY id)"
                                         " AS n FROM sync_event) e WHERE k <> n"),
                     0);
    for (int i = 0; i < ROWS; i++)
        free(bodies[i]);
    PQfinish(db);
    free(url);
}
END_TEST

/* The inbox INSERT is prepared once per group size and connection (up to 64 rows, larger groups
 * are sent as text): every size stores its rows in order, a statement refused on its data stores
 * nothing and leaves the connection's statements usable, and a new connection (whatever address
 * libpq gives it) prepares its own. */
START_TEST(inbox_push_stores_each_group_size_once_prepared_or_not)
{
    PGconn *db;
    char *url = qtest_db("inbox_sizes", &db);
    enum { ROWS = 65 };
    char *body = events_body(1, 1);
    struct ingest_body in[ROWS];
    for (int i = 0; i < ROWS; i++)
        in[i] = (struct ingest_body){"hubspot", body, strlen(body), i};
    char state[6];
    /* 1, 3 twice (the prepared statement again), 64 (the largest prepared), 65 (as text). */
    const size_t sizes[] = {1, 3, 3, 64, 65};
    long long total = 0;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        ck_assert_int_eq(ingest_inbox_push(db, in, sizes[k], state), ERR_OK);
        ck_assert_str_eq(state, "");
        total += (long long)sizes[k];
    }
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM ingest_inbox"), total);
    /* Each statement's rows in the order given (received_ms 0..n-1 in id order), the body
     * stored as sent. */
    ck_assert_int_eq(itest_db_scalar(db,
                                     "SELECT count(*) FROM (SELECT received_ms, lag(received_ms)"
                                     " OVER (ORDER BY id) AS before FROM ingest_inbox) r"
                                     " WHERE received_ms <> 0 AND received_ms <> before + 1"),
                     0);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM ingest_inbox WHERE received_ms = 0"),
                     5);
    char *same =
        xasprintf("SELECT count(*) FROM ingest_inbox WHERE body = convert_to('%s', 'UTF8')", body);
    ck_assert_int_eq(itest_db_scalar(db, same), total);
    /* Refused on its data (the source CHECK): nothing of the group is stored, and the same
     * prepared statement stores the next group. */
    in[1].source = "nowhere";
    ck_assert_int_eq(ingest_inbox_push(db, in, 3, state), ERR_DB);
    ck_assert_str_eq(state, "23514");
    in[1].source = "hubspot";
    ck_assert_int_eq(ingest_inbox_push(db, in, 3, state), ERR_OK);
    total += 3;
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM ingest_inbox"), total);
    /* Another connection, the first one closed: its statements are its own. */
    PQfinish(db);
    db = PQconnectdb(url);
    ck_assert_int_eq(PQstatus(db), CONNECTION_OK);
    ck_assert_int_eq(ingest_inbox_push(db, in, 3, state), ERR_OK);
    ck_assert_int_eq(ingest_inbox_push(db, in, 1, state), ERR_OK);
    total += 4;
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM ingest_inbox"), total);
    ck_assert_int_eq(itest_db_scalar(db, same), total);
    free(same);
    free(body);
    PQfinish(db);
    free(url);
}
END_TEST

/* dealsync readies its connections at start (the splitter's and the Salesforce committer's with
 * a push of no events, rolled back): started while the queue is locked, it still starts,
 * acknowledges, and splits every body once the lock is gone. */
START_TEST(started_while_the_queue_is_locked_it_acks_and_splits_once_free)
{
    struct svc s;
    svc_start(&s, "split_locked", NULL);
    svc_kill(&s);
    PGconn *holder = itest_db_connect(s.db_url);
    itest_db_exec(holder, "BEGIN");
    itest_db_exec(holder, "LOCK TABLE sync_event IN SHARE MODE");
    svc_respawn(&s, NULL);
    for (int i = 0; i < 2; i++) {
        char *body = events_body(1 + 3 * i, 3);
        char *resp = NULL;
        ck_assert_int_eq(svc_ack_hubspot(&s, body, &resp), 200);
        ck_assert_ptr_nonnull(strstr(resp, "\"stored\":3"));
        free(resp);
        free(body);
    }
    struct blocked b = {s.db, "WITH input"};
    ck_assert_msg(itest_wait_for(is_blocked, &b, 20000), "the splitter never waited for the lock");
    ck_assert_int_eq(svc_events(&s), 0);
    itest_db_exec(holder, "COMMIT");
    PQfinish(holder);
    svc_wait_split(&s);
    ck_assert_int_eq(svc_events(&s), 6);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT sum(open_events) FROM sync_record"), 6);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

Suite *suite_ingest_split(void);
Suite *suite_ingest_split(void)
{
    Suite *s = suite_create("ingest_split");
    const struct itest_case cases[] = {
        {"kill", acked_events_are_split_once_in_order_across_kill_9},
        {"dups", duplicates_are_stored_once_and_bad_input_stores_nothing},
        {"refuse", an_event_the_database_refuses_at_the_split_is_set_aside_alone},
        {"two", two_splitters_split_each_row_once_in_order},
        {"alone_order", a_row_split_alone_locks_its_records_in_key_order},
        {"sizes", inbox_push_stores_each_group_size_once_prepared_or_not},
        {"locked", started_while_the_queue_is_locked_it_acks_and_splits_once_free},
    };
    itest_add_cases(s, cases, sizeof(cases) / sizeof(cases[0]), 90);
    return s;
}
