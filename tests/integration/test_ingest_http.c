/* test_ingest_http.c - the ack path against a real `dealsync serve`: a webhook request waiting
 * for its commit holds its own connection's thread and no other, so /healthz (and any other
 * request) on another connection is answered meanwhile (with a pool of HTTP threads each
 * serving several connections one request at a time, HTTP_THREADS=1 shows it every time,
 * /healthz waited until the webhook's commit gave up); a large body is stored compressed in its
 * inbox row and split whole. */
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

struct pending_ack {
    struct svc *s;
    int status;
    atomic_bool is_answered;
};

static void *send_ack(void *arg)
{
    struct pending_ack *a = arg;
    char *resp = NULL;
    a->status = svc_ack_hubspot(a->s, one_deal, &resp);
    free(resp);
    atomic_store(&a->is_answered, true);
    return NULL;
}

/* The webhook's insert waits for the inbox's lock, or the webhook was answered already. */
static bool ack_waits_or_ended(void *arg)
{
    struct pending_ack *a = arg;
    return atomic_load(&a->is_answered) ||
           itest_db_scalar(a->s->db, "SELECT count(*) FROM pg_stat_activity WHERE"
                                     " wait_event_type = 'Lock' AND query LIKE"
                                     " 'INSERT INTO ingest_inbox%'") >= 1;
}

START_TEST(healthz_answers_while_a_webhook_waits_for_its_commit)
{
    struct svc s;
    svc_start(&s, "ih_block", NULL);
    char *healthz = xasprintf("%s/healthz", s.base);
    /* The webhook's commit waits at most lock_timeout (1.5 s) before its 503: on a machine too
     * loaded to answer /healthz in that time the attempt proves nothing and is made again. */
    bool is_shown = false;
    for (int attempt = 0; attempt < 5 && !is_shown; attempt++) {
        PGconn *holder = itest_db_connect(s.db_url);
        itest_db_exec(holder, "BEGIN");
        itest_db_exec(holder, "LOCK TABLE ingest_inbox IN ACCESS EXCLUSIVE MODE");
        struct pending_ack a = {&s, 0, false};
        pthread_t th;
        pthread_create(&th, NULL, send_ack, &a);
        ck_assert_msg(itest_wait_for(ack_waits_or_ended, &a, 20000),
                      "the webhook neither waited for the inbox nor was answered");
        bool was_waiting = !atomic_load(&a.is_answered);
        char *resp = NULL;
        int status = itest_http("GET", healthz, NULL, NULL, 0, &resp, NULL);
        free(resp);
        bool answered_first = !atomic_load(&a.is_answered);
        itest_db_exec(holder, "COMMIT");
        PQfinish(holder);
        pthread_join(th, NULL);
        ck_assert_int_eq(status, 200);
        /* Answered 200 once the lock is gone, or 503 when its lock wait ran out first. */
        ck_assert_msg(a.status == 200 || a.status == 503, "webhook answered %d", a.status);
        is_shown = was_waiting && answered_first;
    }
    ck_assert_msg(is_shown, "/healthz was never answered while a webhook waited for its commit");
    free(healthz);
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

START_TEST(a_large_body_is_stored_compressed_in_its_row_and_split_whole)
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
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM ingest_inbox"), 1);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT octet_length(body) FROM ingest_inbox"),
                     (long long)strlen(body));
    if (has_lz4) {
        ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM ingest_inbox WHERE"
                                               " pg_column_compression(body) = 'lz4'"),
                         1);
        /* In the row: nothing written to the inbox's TOAST table. */
        char *sql = xasprintf("SELECT count(*) FROM pg_toast.pg_toast_%lld",
                              itest_db_scalar(s.db, "SELECT 'ingest_inbox'::regclass::oid"));
        ck_assert_int_eq(itest_db_scalar(s.db, sql), 0);
        free(sql);
    }
    itest_db_exec(holder, "COMMIT");
    PQfinish(holder);
    svc_wait_split(&s);
    ck_assert_int_eq(svc_events(&s), 100);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM sync_event WHERE payload->>"
                                           "'propertyValue' = '1693' AND record_id = '9099'"),
                     1);
    free(body);
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
    tcase_add_test(tc, a_large_body_is_stored_compressed_in_its_row_and_split_whole);
    suite_add_tcase(s, tc);
    return s;
}
