/* test_ingest_http.c - the ack path against a real `dealsync serve`: a webhook request waiting
 * for its commit holds its own connection's thread and no other, so /healthz (and any other
 * request) on another connection is answered meanwhile (with a pool of HTTP threads each
 * serving several connections one request at a time, HTTP_THREADS=1 shows it every time,
 * /healthz waited until the webhook's commit gave up); a body of ten events or more is stored
 * compressed in its inbox row and split whole; a Salesforce message waiting for the queue holds up
 * no HubSpot acknowledgement (each kind of request has its own group committer). */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "svc.h"
#include "util.h"

static const char one_deal[] = "[{\"subscriptionType\":\"deal.creation\",\"objectId\":9,"
                               "\"eventId\":9,\"portalId\":1,\"occurredAt\":1782371972438}]";

/* A request sent from its own thread while a lock is held, and its answer. */
struct held_request {
    struct svc *s;
    const char *query_like; /* its statement in pg_stat_activity while it waits */
    int (*send)(struct svc *s);
    int status;
    atomic_bool is_answered;
};

static void *send_held(void *arg)
{
    struct held_request *h = arg;
    h->status = h->send(h->s);
    atomic_store(&h->is_answered, true);
    return NULL;
}

/* The held request's statement waits for a lock, or it was answered already. */
static bool held_waits_or_ended(void *arg)
{
    struct held_request *h = arg;
    if (atomic_load(&h->is_answered))
        return true;
    char *sql = xasprintf("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                          " AND query LIKE '%s'",
                          h->query_like);
    bool is_waiting = itest_db_scalar(h->s->db, sql) >= 1;
    free(sql);
    return is_waiting;
}

/* Sends held while another session holds lock_sql, then other: true when other was answered
 * (its status in *other_status) while held still waited. held is answered 200 once the lock is
 * gone, or 503 when its lock wait (lock_timeout, 1.5 s) ran out first: on a machine too loaded
 * to answer other in that time the attempt proves nothing, and the caller makes it again. */
static bool answered_while_held(struct svc *s, const char *lock_sql, const char *query_like,
                                int (*held)(struct svc *s), int (*other)(struct svc *s),
                                int *other_status)
{
    PGconn *holder = itest_db_connect(s->db_url);
    itest_db_exec(holder, "BEGIN");
    itest_db_exec(holder, lock_sql);
    struct held_request h = {s, query_like, held, 0, false};
    pthread_t th;
    pthread_create(&th, NULL, send_held, &h);
    ck_assert_msg(itest_wait_for(held_waits_or_ended, &h, 20000),
                  "the request neither waited for the lock nor was answered");
    bool was_waiting = !atomic_load(&h.is_answered);
    *other_status = other(s);
    bool answered_first = !atomic_load(&h.is_answered);
    itest_db_exec(holder, "COMMIT");
    PQfinish(holder);
    pthread_join(th, NULL);
    ck_assert_msg(h.status == 200 || h.status == 503, "the held request answered %d", h.status);
    return was_waiting && answered_first;
}

static int ack_one_deal(struct svc *s)
{
    char *resp = NULL;
    int status = svc_ack_hubspot(s, one_deal, &resp);
    free(resp);
    return status;
}

static int get_healthz(struct svc *s)
{
    char *url = xasprintf("%s/healthz", s->base);
    char *resp = NULL;
    int status = itest_http("GET", url, NULL, NULL, 0, &resp, NULL);
    free(resp);
    free(url);
    return status;
}

START_TEST(healthz_answers_while_a_webhook_waits_for_its_commit)
{
    struct svc s;
    svc_start(&s, "ih_block", NULL);
    bool is_shown = false;
    for (int attempt = 0; attempt < 5 && !is_shown; attempt++) {
        int status = 0;
        is_shown =
            answered_while_held(&s, "LOCK TABLE ingest_inbox IN ACCESS EXCLUSIVE MODE",
                                "INSERT INTO ingest_inbox%", ack_one_deal, get_healthz, &status);
        ck_assert_int_eq(status, 200);
    }
    ck_assert_msg(is_shown, "/healthz was never answered while a webhook waited for its commit");
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

/* A body of n events, each a different record, the same properties as HubSpot sends. */
static char *events_body(int n)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "[");
    for (int i = 0; i < n; i++)
        buf_printf(&b,
                   "%s{\"eventId\":%d,\"subscriptionId\":7,\"portalId\":62515,\"appId\":1,"
                   "\"occurredAt\":%lld,\"subscriptionType\":\"deal.propertyChange\","
                   "\"attemptNumber\":0,\"objectId\":%d,\"propertyName\":\"amount\","
                   "\"propertyValue\":\"%d\",\"changeSource\":\"CRM_UI\"}",
                   i ? "," : "", 500 + i, 1782371972000LL + i, 9000 + i, 1000 + 7 * i);
    buf_append_str(&b, "]");
    return buf_steal(&b);
}

START_TEST(bodies_of_ten_events_and_more_are_stored_compressed_in_their_row_and_split_whole)
{
    struct svc s;
    svc_start(&s, "ih_lz4", NULL);
    /* Only where the server is built with lz4 (the migration leaves the column alone
     * otherwise); Debian's and the official images are. */
    bool has_lz4 =
        itest_db_scalar(s.db, "SELECT count(*) FROM pg_settings WHERE name ="
                              " 'default_toast_compression' AND 'lz4' = ANY (enumvals)") == 1;
    /* The split held until the row is looked at. */
    PGconn *holder = itest_db_connect(s.db_url);
    itest_db_exec(holder, "BEGIN");
    itest_db_exec(holder, "LOCK TABLE sync_event IN SHARE MODE");
    char *body = events_body(100);
    ck_assert_int_gt(strlen(body), 16000);
    char *resp = NULL;
    ck_assert_int_eq(svc_ack_hubspot(&s, body, &resp), 200);
    ck_assert_ptr_nonnull(strstr(resp, "\"stored\":100"));
    free(resp);
    /* A 10-event body (about 2.6 KB), the benchmark's: compressed too, not written whole. */
    char *ten = events_body(10);
    ck_assert_int_gt(strlen(ten), 2100);
    ck_assert_int_eq(svc_ack_hubspot(&s, ten, &resp), 200);
    ck_assert_ptr_nonnull(strstr(resp, "\"stored\":10"));
    free(resp);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM ingest_inbox"), 2);
    char *lengths = xasprintf("SELECT count(*) FROM ingest_inbox WHERE octet_length(body) IN"
                              " (%zu, %zu)",
                              strlen(body), strlen(ten));
    ck_assert_int_eq(itest_db_scalar(s.db, lengths), 2);
    free(lengths);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM ingest_inbox WHERE"
                                           " pg_column_size(body) < octet_length(body) / 2"),
                     2);
    if (has_lz4) {
        ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM ingest_inbox WHERE"
                                               " pg_column_compression(body) = 'lz4'"),
                         2);
        /* In the row: nothing written to the inbox's TOAST table. */
        char *sql = xasprintf("SELECT count(*) FROM pg_toast.pg_toast_%lld",
                              itest_db_scalar(s.db, "SELECT 'ingest_inbox'::regclass::oid"));
        ck_assert_int_eq(itest_db_scalar(s.db, sql), 0);
        free(sql);
    }
    itest_db_exec(holder, "COMMIT");
    PQfinish(holder);
    svc_wait_split(&s);
    /* The 10 events of the second body are the first 10 of the first: stored once. */
    ck_assert_int_eq(svc_events(&s), 100);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM sync_event WHERE payload->>"
                                           "'propertyValue' = '1693' AND record_id = '9099'"),
                     1);
    free(ten);
    free(body);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

static int post_sf_fixture(struct svc *s)
{
    static const char *const soap_headers[] = {"Content-Type: text/xml; charset=utf-8",
                                               "SOAPAction: \"\"", NULL};
    char *path = itest_fixture_path("salesforce/outbound-opportunity-api47-oneline.xml");
    size_t len;
    char *body = itest_read_file(path, &len);
    char *resp = NULL;
    int status = svc_post(s, "/webhooks/salesforce", soap_headers, body, len, &resp);
    free(resp);
    free(body);
    free(path);
    return status;
}

START_TEST(a_hubspot_ack_does_not_wait_behind_a_salesforce_group)
{
    struct svc s;
    svc_start(&s, "ih_kinds", NULL);
    bool is_shown = false;
    for (int attempt = 0; attempt < 5 && !is_shown; attempt++) {
        int status = 0;
        /* The Salesforce group's statement waits for sync_event; the HubSpot body goes to the
         * inbox, which the lock leaves alone. */
        is_shown = answered_while_held(&s, "LOCK TABLE sync_event IN EXCLUSIVE MODE", "WITH input%",
                                       post_sf_fixture, ack_one_deal, &status);
        ck_assert_int_eq(status, 200);
    }
    ck_assert_msg(is_shown, "no HubSpot webhook was answered while a Salesforce group waited");
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

Suite *suite_ingest_http(void);
Suite *suite_ingest_http(void)
{
    Suite *s = suite_create("ingest_http");
    TCase *tc = tcase_create("threading");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, healthz_answers_while_a_webhook_waits_for_its_commit);
    tcase_add_test(
        tc, bodies_of_ten_events_and_more_are_stored_compressed_in_their_row_and_split_whole);
    tcase_add_test(tc, a_hubspot_ack_does_not_wait_behind_a_salesforce_group);
    suite_add_tcase(s, tc);
    return s;
}
