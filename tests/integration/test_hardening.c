/* test_hardening.c - the defects of the attack run (issue 12), each through a real dealsync and a
 * real PostgreSQL: connection exhaustion, a stalled or lost database, unstorable events, stderr
 * output, chunked bodies, payload fidelity. Every connection goes to 127.0.0.0/8 only; loops
 * are bounded in count and time. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "svc.h"
#include "util.h"

/* Enough descriptors for the connection floods below (and for the dealsync started after). */
static void raise_fd_limit(int want)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < (rlim_t)want) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    ck_assert_msg(rl.rlim_cur >= (rlim_t)want, "need %d descriptors, have %ld", want,
                  (long)rl.rlim_cur);
}

/* A TCP connection from source (a 127.x.y.z address) to 127.0.0.1:port that has sent `first`
 * (may be NULL). Non-blocking; -1 when the connection could not be made at all. */
static int open_from(const char *source, int port, const char *first)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in src = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &src.sin_addr);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0 ||
        (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, 2000) != 1) {
        close(fd);
        return -1;
    }
    if (first)
        (void)send(fd, first, strlen(first), MSG_NOSIGNAL);
    return fd;
}

/* Waits up to ms for the peer to close fd (EOF or reset); true when it did. */
static bool closed_by_peer(int fd, int ms)
{
    int64_t end = util_monotonic_ms() + ms;
    while (util_monotonic_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) == 1) {
            char b[512];
            ssize_t n = recv(fd, b, sizeof(b), 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
                return true;
        }
    }
    return false;
}

static int get(struct svc *s, const char *path, char **resp)
{
    char *url = xasprintf("%s%s", s->base, path);
    int status = itest_http("GET", url, NULL, NULL, 0, resp, NULL);
    free(url);
    return status;
}

/* A half-sent webhook request: the request line and one header, never finished. */
static const char partial_request[] = "POST /webhooks/hubspot HTTP/1.1\r\nHost: x\r\n";

START_TEST(one_client_cannot_take_every_connection)
{
    enum { FLOOD = 1100 };
    raise_fd_limit(FLOOD + 200);
    struct svc s;
    svc_start(&s, "hard_flood", NULL);
    int *fds = xcalloc(FLOOD, sizeof(int));
    int opened = 0;
    for (int i = 0; i < FLOOD; i++) {
        fds[i] = open_from("127.0.0.2", s.port, partial_request);
        if (fds[i] >= 0)
            opened++;
    }
    ck_assert_int_gt(opened, 0);
    /* Another client is still served while the flood is held open. */
    char *resp = NULL;
    ck_assert_int_eq(get(&s, "/healthz", &resp), 200);
    free(resp);
    /* The flooding client has at most its share. */
    ck_assert_int_eq(get(&s, "/metrics", &resp), 200);
    const char *g = strstr(resp, "dealsync_http_connections_open ");
    ck_assert_ptr_nonnull(g);
    long open_now = strtol(g + strlen("dealsync_http_connections_open "), NULL, 10);
    ck_assert_int_le(open_now, 64 + 1);
    free(resp);
    for (int i = 0; i < FLOOD; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

START_TEST(a_slow_request_is_cut_at_its_deadline)
{
    const char *env[] = {"HTTP_REQUEST_TIMEOUT_MS=2000", NULL};
    struct svc s;
    svc_start(&s, "hard_slow", env);
    int fd = open_from("127.0.0.1", s.port, "POST /webhooks/hubspot HTTP/1.1\r\n");
    ck_assert_int_ge(fd, 0);
    /* One header byte every 200 ms: never idle, never done. Bounded at 12 s. */
    const char drip[] = "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    bool cut = false;
    for (size_t i = 0; i < sizeof(drip) - 1 && !cut; i++) {
        if (send(fd, &drip[i], 1, MSG_NOSIGNAL) != 1)
            cut = true;
        else
            cut = closed_by_peer(fd, 200);
    }
    ck_assert_msg(cut, "a request dripping header bytes was still open after 12 s");
    close(fd);
    char *resp = NULL;
    ck_assert_int_eq(get(&s, "/healthz", &resp), 200);
    free(resp);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

struct busy_probe {
    struct svc *s;
    int status;
};

static bool webhook_is_busy(void *arg)
{
    struct busy_probe *p = arg;
    char *resp = NULL;
    /* Unsigned: refused with 401 when served, so nothing is stored either way. */
    p->status = svc_post(p->s, "/webhooks/hubspot", NULL, "[]", 2, &resp);
    free(resp);
    return p->status == 503;
}

static bool webhook_is_served(void *arg)
{
    return !webhook_is_busy(arg);
}

START_TEST(near_the_limit_webhooks_get_503_and_healthz_answers)
{
    enum { CLIENTS = 8, EACH = 58 }; /* 464 connections: past 7/8 of 512, each under 64 */
    raise_fd_limit(CLIENTS * EACH + 200);
    const char *env[] = {"HTTP_REQUEST_TIMEOUT_MS=120000", NULL};
    struct svc s;
    svc_start(&s, "hard_busy", env);
    int fds[CLIENTS * EACH];
    int opened = 0;
    for (int c = 0; c < CLIENTS; c++) {
        char source[32];
        snprintf(source, sizeof(source), "127.0.0.%d", 10 + c);
        for (int i = 0; i < EACH; i++) {
            fds[c * EACH + i] = open_from(source, s.port, partial_request);
            opened += fds[c * EACH + i] >= 0;
        }
    }
    ck_assert_int_eq(opened, CLIENTS * EACH);
    struct busy_probe probe = {&s, 0};
    ck_assert_msg(itest_wait_for(webhook_is_busy, &probe, 15000),
                  "webhooks still served (%d) with %d connections open", probe.status, opened);
    char *resp = NULL;
    ck_assert_int_eq(get(&s, "/healthz", &resp), 200);
    free(resp);
    for (int i = 0; i < CLIENTS * EACH; i++)
        close(fds[i]);
    /* Once the connections are gone (the server sees the closes a moment later), webhooks are
     * served again: an unsigned request is refused with 401. */
    ck_assert_msg(itest_wait_for(webhook_is_served, &probe, 15000),
                  "webhooks still answered %d after the connections closed", probe.status);
    ck_assert_int_eq(probe.status, 401);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

static const char one_deal[] = "[{\"subscriptionType\":\"deal.creation\",\"objectId\":9,"
                               "\"eventId\":9,\"portalId\":1,\"occurredAt\":1782371972438}]";
static const char one_deal2[] = "[{\"subscriptionType\":\"deal.creation\",\"objectId\":9,"
                                "\"eventId\":10,\"portalId\":1,\"occurredAt\":1782371972439}]";

START_TEST(a_locked_queue_gets_503_and_healthz_answers)
{
    struct svc s;
    svc_start(&s, "hard_lock", NULL);
    /* The queue locked: HubSpot webhooks are still acknowledged (the inbox), and split once the
     * lock is gone; /readyz says stalled (Salesforce's ack path writes the queue). */
    PGconn *holder = itest_db_connect(s.db_url);
    itest_db_exec(holder, "BEGIN");
    itest_db_exec(holder, "LOCK TABLE sync_event IN ACCESS EXCLUSIVE MODE");
    char *resp = NULL;
    ck_assert_int_eq(svc_ack_hubspot(&s, one_deal, &resp), 200);
    free(resp);
    ck_assert_int_eq(get(&s, "/readyz", &resp), 503);
    ck_assert_ptr_nonnull(strstr(resp, "stalled"));
    free(resp);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM ingest_inbox"), 1);
    itest_db_exec(holder, "COMMIT");
    PQfinish(holder);
    svc_wait_split(&s);
    ck_assert_int_eq(svc_events(&s), 1);
    /* The inbox locked: nothing can be stored, 503. */
    itest_db_exec(s.db, "BEGIN");
    itest_db_exec(s.db, "LOCK TABLE ingest_inbox IN ACCESS EXCLUSIVE MODE");
    ck_assert_int_eq(svc_post_hubspot(&s, one_deal, &resp), 503);
    free(resp);
    ck_assert_int_eq(get(&s, "/readyz", &resp), 503);
    ck_assert_ptr_nonnull(strstr(resp, "stalled"));
    free(resp);
    ck_assert_int_eq(get(&s, "/healthz", &resp), 200);
    free(resp);
    itest_db_exec(s.db, "COMMIT");
    ck_assert_int_eq(get(&s, "/readyz", &resp), 200);
    free(resp);
    ck_assert_int_eq(svc_post_hubspot(&s, one_deal2, &resp), 200);
    free(resp);
    ck_assert_int_eq(svc_events(&s), 2);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

/* Lines of the log that contain needle. */
static int log_lines(const char *path, const char *needle)
{
    return itest_file_lines(path, needle);
}

START_TEST(a_database_outage_is_logged_once_with_its_end)
{
    enum { REQUESTS = 20 };
    struct svc s;
    svc_start(&s, "hard_outage", NULL);
    int errors_before = log_lines(s.log_path, "\"level\":\"error\"");
    PGconn *admin = itest_db_connect(itest_env("DATABASE_ADMIN_URL"));
    char *sql = xasprintf("ALTER DATABASE %s ALLOW_CONNECTIONS false", PQdb(s.db));
    itest_db_exec(admin, sql);
    free(sql);
    sql = xasprintf("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'",
                    PQdb(s.db));
    itest_db_exec(admin, sql);
    free(sql);
    char *resp = NULL;
    for (int i = 0; i < REQUESTS; i++) {
        ck_assert_int_eq(svc_post_hubspot(&s, one_deal, &resp), 503);
        free(resp);
    }
    sql = xasprintf("ALTER DATABASE %s ALLOW_CONNECTIONS true", PQdb(s.db));
    itest_db_exec(admin, sql);
    free(sql);
    PQfinish(admin);
    ck_assert_int_eq(svc_post_hubspot(&s, one_deal, &resp), 200);
    free(resp);
    char *log = xstrdup(s.log_path);
    ck_assert_int_eq(svc_stop(&s), 0);
    /* One error line for the outage (not one per refused request), one info line for its end. */
    int errors = log_lines(log, "\"level\":\"error\"") - errors_before;
    ck_assert_msg(errors == 1, "%d error lines for one outage", errors);
    ck_assert_int_eq(log_lines(log, "\"refused_requests\":20"), 1);
    free(log);
}
END_TEST

START_TEST(a_chunked_body_over_the_limit_gets_413_before_it_ends)
{
    const char *env[] = {"SALESFORCE_MAX_BODY_BYTES=65536", NULL};
    struct svc s;
    svc_start(&s, "hard_chunked", env);
    int fd = open_from("127.0.0.1", s.port,
                       "POST /webhooks/salesforce HTTP/1.1\r\nHost: x\r\n"
                       "Content-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n");
    ck_assert_int_ge(fd, 0);
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    /* 80 KiB in 8 KiB chunks, and never the last chunk: the body does not end. */
    char chunk[8192];
    memset(chunk, 'a', sizeof(chunk));
    for (int i = 0; i < 10; i++) {
        if (send(fd, "2000\r\n", 6, MSG_NOSIGNAL) != 6 ||
            send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL) != (ssize_t)sizeof(chunk) ||
            send(fd, "\r\n", 2, MSG_NOSIGNAL) != 2)
            break;
    }
    char head[64] = {0};
    ssize_t n = recv(fd, head, sizeof(head) - 1, 0);
    ck_assert_msg(n > 0, "no answer before the body ended");
    ck_assert_msg(strncmp(head, "HTTP/1.1 413", 12) == 0, "answer: %s", head);
    close(fd);
    ck_assert_int_eq(svc_events(&s), 0);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

/* Every line dealsync writes is one JSON object: nothing bypasses the logger. */
static void assert_log_is_json(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[8192];
    while (fgets(line, sizeof(line), f))
        ck_assert_msg(line[0] == '{', "a log line that is not JSON: %s", line);
    fclose(f);
}

START_TEST(xml_encoding_errors_go_to_the_fault_not_stderr)
{
    struct svc s;
    svc_start(&s, "hard_sjis", NULL);
    /* Declared Shift_JIS, with bytes that are not Shift_JIS. */
    const char body[] = "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>"
                        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/"
                        "envelope/\"><soapenv:Body>\x82\xff\xfd\xa0</soapenv:Body>"
                        "</soapenv:Envelope>";
    const char *headers[] = {"Content-Type: text/xml", NULL};
    char *resp = NULL;
    ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce", headers, body, sizeof(body) - 1, &resp),
                     400);
    ck_assert_ptr_nonnull(strstr(resp, "malformed XML"));
    free(resp);
    const char body2[] = "<?xml version=\"1.0\" encoding=\"no-such-encoding\"?><a/>";
    ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce", headers, body2, sizeof(body2) - 1, &resp),
                     400);
    free(resp);
    char *log = xstrdup(s.log_path);
    ck_assert_int_eq(svc_stop(&s), 0);
    assert_log_is_json(log);
    free(log);
}
END_TEST

START_TEST(one_unstorable_event_does_not_sink_its_batch)
{
    struct svc s;
    svc_start(&s, "hard_badevent", NULL);
    const char body[] = "[{\"subscriptionType\":\"deal.creation\",\"objectId\":1,\"eventId\":1,"
                        "\"portalId\":1,\"occurredAt\":100000000000000000},"
                        "{\"subscriptionType\":\"deal.propertyChange\",\"objectId\":2,"
                        "\"eventId\":2,\"portalId\":1,\"occurredAt\":1782371972438,"
                        "\"propertyName\":\"dealname\",\"propertyValue\":\"bad \xc3\x28 utf-8\"},"
                        "{\"subscriptionType\":\"deal.creation\",\"objectId\":3,\"eventId\":3,"
                        "\"portalId\":1,\"occurredAt\":9.2e18},"
                        "{\"subscriptionType\":\"deal.creation\",\"objectId\":4,\"eventId\":4,"
                        "\"portalId\":1,\"occurredAt\":1782371972438}]";
    char *resp = NULL;
    ck_assert_int_eq(svc_post_hubspot(&s, body, &resp), 200);
    ck_assert_ptr_nonnull(strstr(resp, "\"stored\":1"));
    ck_assert_ptr_nonnull(strstr(resp, "\"rejected\":3"));
    free(resp);
    ck_assert_int_eq(svc_events(&s), 1);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT record_id::bigint FROM sync_event"), 4);
    char *log = xstrdup(s.log_path);
    ck_assert_int_eq(svc_stop(&s), 0);
    ck_assert_int_ge(log_lines(log, "occurredAt"), 2);
    ck_assert_int_ge(log_lines(log, "UTF-8"), 1);
    free(log);
}
END_TEST

START_TEST(ids_past_2_53_keep_every_digit)
{
    struct svc s;
    svc_start(&s, "hard_bigid", NULL);
    const char body[] = "[{\"subscriptionType\":\"deal.creation\",\"objectId\":9007199254740993,"
                        "\"eventId\":9007199254740995,\"portalId\":48975575,"
                        "\"subscriptionId\":6547123,\"occurredAt\":1782371972438}]";
    char *resp = NULL;
    ck_assert_int_eq(svc_post_hubspot(&s, body, &resp), 200);
    free(resp);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM sync_event WHERE record_id ="
                                           " '9007199254740993' AND dedup_key ="
                                           " '48975575:6547123:9007199254740995'"
                                           " AND payload->>'objectId' = '9007199254740993'"
                                           " AND payload->>'eventId' = '9007199254740995'"),
                     1);
    /* What HubSpot never sends is refused whole: duplicate keys, NUL, trailing bytes. */
    static const char *const bad[] = {
        "[{\"subscriptionType\":\"deal.creation\",\"objectId\":5,\"objectId\":6,\"eventId\":5,"
        "\"portalId\":1}]",
        "[{\"subscriptionType\":\"deal.creation\",\"objectId\":5,\"eventId\":5,\"portalId\":1,"
        "\"propertyValue\":\"a\\u0000b\"}]",
        "[{\"subscriptionType\":\"deal.creation\",\"objectId\":5,\"eventId\":5,\"portalId\":1}]"
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(svc_post_hubspot(&s, bad[i], &resp), 400);
        free(resp);
    }
    ck_assert_int_eq(svc_events(&s), 1);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

START_TEST(a_timestamp_at_int64_min_is_refused)
{
    struct svc s;
    svc_start(&s, "hard_ts", NULL);
    const char *headers[] = {"X-HubSpot-Signature-v3: AAAA",
                             "X-HubSpot-Request-Timestamp: -9223372036854775808",
                             "Content-Type: application/json", NULL};
    char *resp = NULL;
    ck_assert_int_eq(svc_post(&s, "/webhooks/hubspot", headers, one_deal, strlen(one_deal), &resp),
                     401);
    free(resp);
    const char *headers2[] = {"X-HubSpot-Signature-v3: AAAA",
                              "X-HubSpot-Request-Timestamp: 9223372036854775807", NULL};
    ck_assert_int_eq(svc_post(&s, "/webhooks/hubspot", headers2, one_deal, strlen(one_deal), &resp),
                     401);
    free(resp);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

START_TEST(serve_warns_without_a_salesforce_webhook_token)
{
    const char *warning = "SALESFORCE_WEBHOOK_TOKEN is not set";
    struct svc s;
    svc_start(&s, "hard_notoken", NULL);
    char *log = xstrdup(s.log_path);
    ck_assert_int_eq(svc_stop(&s), 0);
    ck_assert_int_eq(log_lines(log, warning), 1);
    free(log);
    const char *env[] = {"SALESFORCE_WEBHOOK_TOKEN=t0ken-for-tests", NULL};
    svc_start(&s, "hard_token", env);
    log = xstrdup(s.log_path);
    ck_assert_int_eq(svc_stop(&s), 0);
    ck_assert_int_eq(log_lines(log, warning), 0);
    free(log);
}
END_TEST

Suite *suite_hardening(void);
Suite *suite_hardening(void)
{
    Suite *s = suite_create("hardening");
    TCase *tc = tcase_create("attacks");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, one_client_cannot_take_every_connection);
    tcase_add_test(tc, a_slow_request_is_cut_at_its_deadline);
    tcase_add_test(tc, near_the_limit_webhooks_get_503_and_healthz_answers);
    tcase_add_test(tc, a_locked_queue_gets_503_and_healthz_answers);
    tcase_add_test(tc, a_database_outage_is_logged_once_with_its_end);
    tcase_add_test(tc, a_chunked_body_over_the_limit_gets_413_before_it_ends);
    tcase_add_test(tc, xml_encoding_errors_go_to_the_fault_not_stderr);
    tcase_add_test(tc, one_unstorable_event_does_not_sink_its_batch);
    tcase_add_test(tc, ids_past_2_53_keep_every_digit);
    tcase_add_test(tc, a_timestamp_at_int64_min_is_refused);
    tcase_add_test(tc, serve_warns_without_a_salesforce_webhook_token);
    suite_add_tcase(s, tc);
    return s;
}
