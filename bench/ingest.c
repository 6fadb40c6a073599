/* ingest.c - webhook ingest throughput: N requests over T keep-alive connections against a
 * running dealsync, in one of four modes: healthz (the HTTP floor), commit (no HTTP at all: the
 * same HubSpot body INSERTed and committed straight into PostgreSQL, one transaction per request:
 * the database floor every durable ack must pay), hubspot (signed batches of distinct events:
 * verified, parsed and committed) and salesforce (outbound messages of distinct notifications).
 * Prints one line of JSON. Event and notification ids start after FIRST_ID (default 0): a
 * caller running several figures against one database passes a new range each time, so every
 * figure stores distinct events rather than duplicates of an earlier one. With
 * BENCH_DATABASE_URL set, mode hubspot also waits for the webhook inbox to be split after the last
 * ack and prints when it was (all_split_seconds, from the first request): the rate at which the
 * events reached the queue, not only the acknowledgements.
 * usage: bench-ingest MODE BASE_URL|DATABASE_URL REQUESTS THREADS EVENTS_PER_REQUEST [FIRST_ID] */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"
#include "webhook_hs.h"

#define HS_SECRET "bench-secret"

static const char *mode;
static const char *base;
static int per_request;
static long long first_id;
static atomic_int next_request;
static int total_requests;
static atomic_int failures;
static int64_t *latency_us; /* per request: from sending to the answer */
static int64_t *done_us;    /* per request: when its answer came, from the start */
static int64_t start_us;
/* pgbench's way (since PostgreSQL 14): every client opens its connection, then all wait here
 * until the clock starts (the main thread too), so the run's time leaves the connections' start
 * out; connected_us says how long it took. */
static pthread_barrier_t connected;
static pthread_barrier_t go;

static int64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static char *hubspot_body(int req)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "[");
    for (int i = 0; i < per_request; i++) {
        long long id = first_id + (long long)req * per_request + i + 1;
        buf_printf(&b,
                   "%s{\"eventId\":%lld,\"subscriptionId\":7,\"portalId\":62515,\"appId\":1,"
                   "\"occurredAt\":%lld,\"subscriptionType\":\"deal.propertyChange\","
                   "\"attemptNumber\":0,\"objectId\":%lld,\"propertyName\":\"amount\","
                   "\"propertyValue\":\"1200\",\"changeSource\":\"CRM_UI\"}",
                   i ? "," : "", id, (long long)util_now_ms(), 1000 + id % 5000);
    }
    buf_append_str(&b, "]");
    return buf_steal(&b);
}

static char *salesforce_body(int req)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv="
                   "\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/"
                   "2001/XMLSchema-instance\"><soapenv:Body><notifications xmlns=\"http://soap."
                   "sforce.com/2005/09/outbound\"><OrganizationId>00D7F00000107XsUAI"
                   "</OrganizationId><ActionId>04k7F000000TVq5QAG</ActionId><SessionId "
                   "xsi:nil=\"true\"/><EnterpriseUrl>https://x/c/47.0/00D7F00000107Xs"
                   "</EnterpriseUrl><PartnerUrl>https://x/u/47.0/00D7F00000107Xs</PartnerUrl>");
    for (int i = 0; i < per_request; i++) {
        long long id = first_id + (long long)req * per_request + i;
        buf_printf(&b,
                   "<Notification><Id>04l%012lld</Id><sObject xsi:type=\"sf:Opportunity\" "
                   "xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\"><sf:Id>006%012lld</sf:Id>"
                   "<sf:Amount>120000.0</sf:Amount><sf:Name>Bench deal</sf:Name><sf:StageName>"
                   "Prospecting</sf:StageName></sObject></Notification>",
                   id, id % 5000);
    }
    buf_append_str(&b, "</notifications></soapenv:Body></soapenv:Envelope>");
    return buf_steal(&b);
}

/* The database floor: what one durable commit of a webhook body costs, without dealsync. */
static void *run_commit(void *arg)
{
    (void)arg;
    PGconn *db = PQconnectdb(base);
    pthread_barrier_wait(&connected);
    pthread_barrier_wait(&go);
    for (;;) {
        int req = atomic_fetch_add(&next_request, 1);
        if (req >= total_requests)
            break;
        char *body = hubspot_body(req);
        const char *params[] = {body};
        int64_t sent = monotonic_us();
        PGresult *r = PQexecParams(db, "INSERT INTO bench_floor (payload) VALUES ($1::jsonb)", 1,
                                   NULL, params, NULL, NULL, 0);
        latency_us[req] = monotonic_us() - sent;
        done_us[req] = monotonic_us() - start_us;
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            atomic_fetch_add(&failures, 1);
        PQclear(r);
        free(body);
    }
    PQfinish(db);
    return NULL;
}

/* A keep-alive connection to the server, spoken to with plain sockets: the load generator
 * shares the machine's CPU with dealsync and PostgreSQL, so it does as little as pgbench's
 * client does (one write per request, reads until the answer's Content-Length). */
struct conn {
    int fd;
    char buf[65536];
    size_t len;
};

static bool conn_open(struct conn *c)
{
    const char *hp = strstr(base, "://");
    hp = hp ? hp + 3 : base;
    const char *colon = strrchr(hp, ':');
    int port = colon ? atoi(colon + 1) : 80;
    char host[64];
    snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - hp) : (int)strlen(hp), hp);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(c->fd);
        c->fd = -1;
        return false;
    }
    return true;
}

/* Sends one request and reads its answer; returns the status (0: the connection failed, and
 * it is closed: the next request opens a new one). */
static long conn_request(struct conn *c, const char *req, size_t req_len)
{
    if (c->fd < 0 && !conn_open(c))
        return 0;
    for (size_t off = 0; off < req_len;) {
        ssize_t n = send(c->fd, req + off, req_len - off, MSG_NOSIGNAL);
        if (n <= 0)
            goto fail;
        off += (size_t)n;
    }
    c->len = 0;
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
        if (n <= 0)
            goto fail;
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
        char *end = strstr(c->buf, "\r\n\r\n");
        if (!end)
            continue;
        /* libmicrohttpd writes its header names in this case. */
        char *cl = strstr(c->buf, "\r\nContent-Length:");
        size_t body = cl && cl < end ? strtoul(cl + 18, NULL, 10) : 0;
        if (c->len < (size_t)(end + 4 - c->buf) + body)
            continue;
        long status = strtol(c->buf + 9, NULL, 10);
        char *close_hdr = strstr(c->buf, "\r\nConnection: close");
        if (close_hdr && close_hdr < end) {
            close(c->fd);
            c->fd = -1;
        }
        return status;
    }
fail:
    close(c->fd);
    c->fd = -1;
    return 0;
}

/* Request `req` as it goes on the wire: built (and for HubSpot signed) before the clock starts. */
static char *build_request(int req, size_t *len)
{
    char *body = NULL, *head = NULL;
    if (strcmp(mode, "healthz") == 0) {
        head = xasprintf("GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n");
        *len = strlen(head);
        return head;
    }
    if (strcmp(mode, "hubspot") == 0) {
        body = hubspot_body(req);
        char *url = xasprintf("%s/webhooks/hubspot", base);
        char ts[32];
        snprintf(ts, sizeof(ts), "%lld", (long long)util_now_ms());
        char *sig = webhook_hs_sign_v3(HS_SECRET, "POST", url, body, strlen(body), ts);
        head = xasprintf("POST /webhooks/hubspot HTTP/1.1\r\nHost: bench\r\n"
                         "Content-Type: application/json\r\nX-HubSpot-Signature-v3: %s\r\n"
                         "X-HubSpot-Request-Timestamp: %s\r\nContent-Length: %zu\r\n\r\n",
                         sig, ts, strlen(body));
        free(sig);
        free(url);
    } else {
        body = salesforce_body(req);
        head = xasprintf("POST /webhooks/salesforce HTTP/1.1\r\nHost: bench\r\n"
                         "Content-Type: text/xml; charset=utf-8\r\nContent-Length: %zu\r\n\r\n",
                         strlen(body));
    }
    char *out = xasprintf("%s%s", head, body);
    *len = strlen(out);
    free(head);
    free(body);
    return out;
}

static char **requests;
static size_t *request_lens;

static void *run(void *arg)
{
    (void)arg;
    struct conn *c = xcalloc(1, sizeof(*c));
    c->fd = -1;
    /* A connection that fails here is tried again at the first request, on the clock. */
    (void)conn_open(c);
    pthread_barrier_wait(&connected);
    pthread_barrier_wait(&go);
    for (;;) {
        int req = atomic_fetch_add(&next_request, 1);
        if (req >= total_requests)
            break;
        int64_t sent = monotonic_us();
        long status = conn_request(c, requests[req], request_lens[req]);
        latency_us[req] = monotonic_us() - sent;
        done_us[req] = monotonic_us() - start_us;
        if (status != 200)
            atomic_fetch_add(&failures, 1);
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Seconds from start until the webhook inbox is empty (every acknowledged body split into
 * queue events), polled every 20 ms for at most 10 minutes; -1 when it cannot tell. */
static double wait_split(const char *url, int64_t start_ms)
{
    PGconn *db = PQconnectdb(url);
    double secs = -1;
    for (int i = 0; PQstatus(db) == CONNECTION_OK && i < 30000; i++) {
        PGresult *r = PQexec(db, "SELECT count(*) FROM ingest_inbox");
        bool is_empty =
            PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "0") == 0;
        bool is_error = PQresultStatus(r) != PGRES_TUPLES_OK;
        PQclear(r);
        if (is_empty)
            secs = (double)(util_monotonic_ms() - start_ms) / 1000.0;
        if (is_empty || is_error)
            break;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    PQfinish(db);
    return secs;
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(
            stderr,
            "usage: %s healthz|commit|hubspot|salesforce BASE_URL|DATABASE_URL REQUESTS THREADS "
            "EVENTS_PER_REQUEST [FIRST_ID]\n",
            argv[0]);
        return 64;
    }
    mode = argv[1];
    base = argv[2];
    total_requests = atoi(argv[3]);
    int threads = atoi(argv[4]);
    per_request = atoi(argv[5]);
    first_id = argc == 7 ? atoll(argv[6]) : 0;
    latency_us = xcalloc((size_t)total_requests + 1, sizeof(*latency_us));
    done_us = xcalloc((size_t)total_requests + 1, sizeof(*done_us));
    pthread_t *th = xcalloc((size_t)threads, sizeof(*th));
    bool is_commit = strcmp(mode, "commit") == 0;
    if (!is_commit) {
        requests = xcalloc((size_t)total_requests, sizeof(*requests));
        request_lens = xcalloc((size_t)total_requests, sizeof(*request_lens));
        for (int i = 0; i < total_requests; i++)
            requests[i] = build_request(i, &request_lens[i]);
    }
    if (is_commit) {
        PGconn *db = PQconnectdb(base);
        PQclear(PQexec(db, "CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY,"
                           " payload jsonb NOT NULL)"));
        PQfinish(db);
    }
    pthread_barrier_init(&connected, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
    int64_t connecting_us = monotonic_us();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, is_commit ? run_commit : run, NULL);
    pthread_barrier_wait(&connected);
    int64_t start = util_monotonic_ms();
    start_us = monotonic_us();
    int64_t connected_us = start_us - connecting_us;
    pthread_barrier_wait(&go);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double secs = (double)(util_monotonic_ms() - start) / 1000.0;
    double split_secs = -1;
    if (getenv("BENCH_DATABASE_URL") && strcmp(mode, "hubspot") == 0)
        split_secs = wait_split(getenv("BENCH_DATABASE_URL"), start);
    qsort(latency_us, (size_t)total_requests, sizeof(*latency_us), cmp_i64);
    double p99 = (double)latency_us[(total_requests - 1) * 99 / 100] / 1000.0;
    printf("{\"mode\":\"%s\",\"requests\":%d,\"threads\":%d,\"seconds\":%.3f,"
           "\"requests_per_second\":%.1f,\"p99_ms\":%.1f,\"failures\":%d,\"connect_ms\":%.1f,"
           "\"requests_per_second_with_connect\":%.1f",
           mode, total_requests, threads, secs, total_requests / secs, p99, atomic_load(&failures),
           (double)connected_us / 1000.0, total_requests / (secs + (double)connected_us / 1e6));
    if (split_secs >= 0)
        printf(",\"all_split_seconds\":%.3f,\"split_events_per_second\":%.1f", split_secs,
               (double)total_requests * per_request / split_secs);
    /* Answers a second in each fifth of the run: whether the rate holds or falls as it goes. */
    int64_t fifths[5] = {0};
    int64_t span = done_us[0];
    for (int i = 0; i < total_requests; i++)
        span = done_us[i] > span ? done_us[i] : span;
    for (int i = 0; span > 0 && i < total_requests; i++)
        fifths[done_us[i] * 5 / (span + 1)]++;
    printf(",\"rps_by_fifth\":[");
    for (int k = 0; k < 5; k++)
        printf("%s%.0f", k ? "," : "", span > 0 ? (double)fifths[k] * 5e6 / (double)span : 0);
    printf("]}\n");
    for (int i = 0; requests && i < total_requests; i++)
        free(requests[i]);
    free(requests);
    free(request_lens);
    free(latency_us);
    free(done_us);
    free(th);
    pthread_barrier_destroy(&connected);
    pthread_barrier_destroy(&go);
    return atomic_load(&failures) ? 1 : 0;
}
