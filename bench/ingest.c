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

#include <curl/curl.h>
#include <libpq-fe.h>

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

static int64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t discard(char *d, size_t s, size_t n, void *a)
{
    (void)d;
    (void)a;
    return s * n;
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
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            atomic_fetch_add(&failures, 1);
        PQclear(r);
        free(body);
    }
    PQfinish(db);
    return NULL;
}

static void *run(void *arg)
{
    (void)arg;
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    for (;;) {
        int req = atomic_fetch_add(&next_request, 1);
        if (req >= total_requests)
            break;
        struct curl_slist *h = curl_slist_append(NULL, "Expect:");
        char *url = NULL;
        char *body = NULL;
        if (strcmp(mode, "healthz") == 0) {
            url = xasprintf("%s/healthz", base);
            curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        } else if (strcmp(mode, "hubspot") == 0) {
            url = xasprintf("%s/webhooks/hubspot", base);
            body = hubspot_body(req);
            char ts[32];
            snprintf(ts, sizeof(ts), "%lld", (long long)util_now_ms());
            char *sig = webhook_hs_sign_v3(HS_SECRET, "POST", url, body, strlen(body), ts);
            char *h1 = xasprintf("X-HubSpot-Signature-v3: %s", sig);
            char *h2 = xasprintf("X-HubSpot-Request-Timestamp: %s", ts);
            h = curl_slist_append(h, h1);
            h = curl_slist_append(h, h2);
            h = curl_slist_append(h, "Content-Type: application/json");
            free(h1);
            free(h2);
            free(sig);
        } else {
            url = xasprintf("%s/webhooks/salesforce", base);
            body = salesforce_body(req);
            h = curl_slist_append(h, "Content-Type: text/xml; charset=utf-8");
        }
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        if (body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        }
        long status = 0;
        int64_t sent = monotonic_us();
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        latency_us[req] = monotonic_us() - sent;
        if (status != 200)
            atomic_fetch_add(&failures, 1);
        curl_slist_free_all(h);
        free(body);
        free(url);
    }
    curl_easy_cleanup(c);
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
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_t *th = xcalloc((size_t)threads, sizeof(*th));
    int64_t start = util_monotonic_ms();
    bool is_commit = strcmp(mode, "commit") == 0;
    if (is_commit) {
        PGconn *db = PQconnectdb(base);
        PQclear(PQexec(db, "CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY,"
                           " payload jsonb NOT NULL)"));
        PQfinish(db);
    }
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, is_commit ? run_commit : run, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double secs = (double)(util_monotonic_ms() - start) / 1000.0;
    double split_secs = -1;
    if (getenv("BENCH_DATABASE_URL") && strcmp(mode, "hubspot") == 0)
        split_secs = wait_split(getenv("BENCH_DATABASE_URL"), start);
    qsort(latency_us, (size_t)total_requests, sizeof(*latency_us), cmp_i64);
    double p99 = (double)latency_us[(total_requests - 1) * 99 / 100] / 1000.0;
    printf("{\"mode\":\"%s\",\"requests\":%d,\"threads\":%d,\"seconds\":%.3f,"
           "\"requests_per_second\":%.1f,\"p99_ms\":%.1f,\"failures\":%d",
           mode, total_requests, threads, secs, total_requests / secs, p99, atomic_load(&failures));
    if (split_secs >= 0)
        printf(",\"all_split_seconds\":%.3f,\"split_events_per_second\":%.1f", split_secs,
               (double)total_requests * per_request / split_secs);
    printf("}\n");
    free(latency_us);
    free(th);
    curl_global_cleanup();
    return atomic_load(&failures) ? 1 : 0;
}
