/* e2e.c - end-to-end latency under a steady stream of edits (issues 13 and 14), against a running
 * dealsync wired to the sandbox (scripts/bench-e2e.sh starts both). RECORDS opportunities are
 * created and synced first (without API latency), then the sandbox adds LATENCY_MS to every API
 * call and RATE changes per second per side are made for SECONDS seconds, as users make them
 * (through the sandbox's control API): Amount of a random opportunity in Salesforce (mode sf), the
 * name of a random deal in HubSpot (mode hs), or both at once (mode both). Each change carries a
 * unique value, and a poller reads the other side (control API: no latency, not counted as API
 * calls) until it shows that value or a later one: that time minus the time of the change is the
 * change's latency (resolution: one poll, every 50 ms or as long as a poll takes). dealsync's RSS
 * is sampled before, during and after. After the stream, once every change arrived and the queue
 * and the sandbox's deliveries are idle (or QUIET_MAX_S passed), every record is compared on both
 * sides: "records different at quiet: N" must be 0. usage: bench-e2e SANDBOX_URL DATABASE_URL
 * DEALSYNC_PID MODE RECORDS RATE SECONDS LATENCY_MS QUIET_MAX_S */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <libpq-fe.h>

#include "util.h"

#define AMOUNT_BASE 1000000.0
#define NAME_PREFIX "bench-"

struct change {
    int record;
    long seq;
    int64_t sent_ms;
    int64_t seen_ms; /* 0: not seen yet */
    int next;        /* the record's next change of the same side, -1 at the end */
};

/* The changes of one side (made in `from`, looked for in the other system). */
struct side {
    const char *name;
    struct change *changes;
    int count;
    int capacity;
    int *first_open; /* per record: its oldest change not seen yet, -1 when none */
    int *last;       /* per record: its newest change, -1 when none */
};

struct record {
    char *opp;  /* Salesforce Opportunity Id */
    char *deal; /* HubSpot deal id */
};

static const char *sb_url;
static struct record *records;
static int record_count;
static struct side sf_side = {"salesforce->hubspot", NULL, 0, 0, NULL, NULL};
static struct side hs_side = {"hubspot->salesforce", NULL, 0, 0, NULL, NULL};
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool stop_poll;
static atomic_long next_seq;
static atomic_int failures;

static size_t collect(char *d, size_t s, size_t n, void *arg)
{
    buf_append(arg, d, s * n);
    return s * n;
}

/* One call to the sandbox's control API. Returns the HTTP status; *out receives the JSON. */
static long call(CURL *c, const char *method, const char *path, const char *body, cJSON **out)
{
    struct buf b;
    buf_init(&b, 0);
    char *url = xasprintf("%s%s", sb_url, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (!body)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (out)
        *out = b.data ? cJSON_ParseWithLength(b.data, b.len) : NULL;
    curl_slist_free_all(h);
    free(url);
    buf_clear(&b);
    return status;
}

static CURL *handle(void)
{
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    return c;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-e2e: %s\n", what);
    exit(1);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long long db_scalar(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    long long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) && !PQgetisnull(r, 0, 0)
                      ? atoll(PQgetvalue(r, 0, 0))
                      : -1;
    PQclear(r);
    return v;
}

/* Where the stream's events spent their time, from the queue's own timestamps: received (the
 * webhook stored) to claimed (last_attempt_at: the last attempt's claim, after any deferrals)
 * and claimed to finished, p50 and p99 per source, with the events that were echoes of
 * dealsync's own writes or changed nothing (outcome skipped). */
static void report_stages(PGconn *db, long long first_id)
{
    char *sql = xasprintf(
        "WITH e AS (SELECT source, extract(epoch FROM last_attempt_at - received_at) * 1000 AS w,"
        "    extract(epoch FROM finished_at - last_attempt_at) * 1000 AS h,"
        "    EXISTS (SELECT 1 FROM sync_outcome o WHERE o.event_id = sync_event.id"
        "            AND o.outcome = 'skipped') AS echo"
        "  FROM sync_event WHERE id > %lld AND status = 'done' AND last_attempt_at IS NOT NULL)"
        " SELECT source, count(*), count(*) FILTER (WHERE echo),"
        "   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY w)),"
        "   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY w)),"
        "   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY h)),"
        "   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY h))"
        " FROM e GROUP BY source ORDER BY source",
        first_id);
    PGresult *r = PQexec(db, sql);
    free(sql);
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
        printf("stages, %s events: %s done (%s skipped: echoes or no change); received to claimed "
               "p50 %s ms,"
               " p99 %s ms; claimed to finished p50 %s ms, p99 %s ms\n",
               PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
               PQgetvalue(r, i, 4), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6));
    PQclear(r);
}

/* The stream's RSS samples (one each 5 s): start, middle and end, and the least-squares slope
 * in MiB a minute over the samples after the first minute (the process warms up: connections,
 * caches, the HTTP threads' first buffers). Printed for streams of 3 minutes or more. */
static void report_rss_trend(const long *kib, size_t n)
{
    size_t from = 12; /* 60 s of 5 s samples */
    if (n < from + 24)
        return;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    size_t m = n - from;
    for (size_t i = from; i < n; i++) {
        double x = (double)(i - from) * 5.0 / 60.0; /* minutes */
        double y = (double)kib[i] / 1024.0;         /* MiB */
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    double slope = (m * sxy - sx * sy) / (m * sxx - sx * sx);
    printf("rss over the stream: start %ld KiB, after 1 min %ld KiB, middle %ld KiB, end %ld KiB;"
           " slope after the first minute %.3f MiB/min (%zu samples, one each 5 s)\n",
           kib[0], kib[from], kib[from + m / 2], kib[n - 1], slope, n);
    printf("{\"rss_start_kib\":%ld,\"rss_minute1_kib\":%ld,\"rss_middle_kib\":%ld,"
           "\"rss_end_kib\":%ld,\"rss_slope_mib_per_min\":%.3f}\n",
           kib[0], kib[from], kib[from + m / 2], kib[n - 1], slope);
}

static long rss_kib(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    char line[256];
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

/* The sandbox request log's newest id: calls after it are the stream's. */
static long long request_mark(CURL *c)
{
    cJSON *log = NULL;
    call(c, "GET", "/_sandbox/requests?system=none", NULL, &log);
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(log, "last_id");
    long long mark = cJSON_IsNumber(last) ? (long long)last->valuedouble : 0;
    cJSON_Delete(log);
    return mark;
}

/* The API calls dealsync made since mark (the sandbox's log, direction "in"), by system: the
 * figure an echo read or not read changes, whatever the machine's load. */
static void report_calls(CURL *c, long long mark, int changes)
{
    long long n[2] = {0, 0};
    static const char *const systems[] = {"salesforce", "hubspot"};
    for (int i = 0; i < 2; i++) {
        char *path = xasprintf("/_sandbox/requests?since=%lld&system=%s", mark, systems[i]);
        cJSON *log = NULL;
        call(c, "GET", path, NULL, &log);
        free(path);
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(log, "requests"))
        {
            const char *dir =
                cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "direction"));
            n[i] += dir && strcmp(dir, "in") == 0;
        }
        cJSON_Delete(log);
    }
    printf("api calls from the stream's start to quiet: salesforce %lld, hubspot %lld (%.2f and"
           " %.2f per change)\n",
           n[0], n[1], changes ? (double)n[0] / changes : 0.0,
           changes ? (double)n[1] / changes : 0.0);
}

/* ---- setup ------------------------------------------------------------------------------ */

static char *find_id(CURL *c, const char *type, const char *field, const char *value)
{
    char *path = xasprintf("/_sandbox/salesforce/records/%s", type);
    cJSON *all = NULL;
    call(c, "GET", path, NULL, &all);
    free(path);
    char *id = NULL;
    const cJSON *r;
    cJSON_ArrayForEach(r, all)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, field);
        if (!id && cJSON_IsString(v) && strcmp(v->valuestring, value) == 0)
            id = xstrdup(cJSON_GetObjectItemCaseSensitive(r, "Id")->valuestring);
    }
    cJSON_Delete(all);
    if (!id)
        die("seed record missing");
    return id;
}

static bool queue_idle(PGconn *db, CURL *c)
{
    if (db_scalar(db, "SELECT (SELECT count(*) FROM sync_event WHERE status IN ('pending',"
                      " 'running')) + (SELECT count(*) FROM ingest_inbox)"))
        return false;
    cJSON *om = NULL, *hooks = NULL;
    call(c, "GET", "/_sandbox/salesforce/outbound", NULL, &om);
    call(c, "GET", "/_sandbox/hubspot/webhooks", NULL, &hooks);
    const cJSON *queued = cJSON_GetObjectItemCaseSensitive(om, "queued");
    const cJSON *pending = cJSON_GetObjectItemCaseSensitive(hooks, "pending");
    const cJSON *in_flight = cJSON_GetObjectItemCaseSensitive(hooks, "inFlight");
    bool idle = cJSON_GetArraySize(queued) == 0 && cJSON_IsNumber(pending) &&
                pending->valuedouble == 0 && cJSON_IsNumber(in_flight) &&
                in_flight->valuedouble == 0;
    cJSON_Delete(om);
    cJSON_Delete(hooks);
    return idle;
}

static bool wait_idle(PGconn *db, CURL *c, int deadline_s)
{
    int64_t end = util_monotonic_ms() + (int64_t)deadline_s * 1000;
    while (util_monotonic_ms() < end) {
        if (queue_idle(db, c)) {
            sleep_ms(300);
            if (queue_idle(db, c))
                return true;
        }
        sleep_ms(200);
    }
    return false;
}

static void create_records(CURL *c, PGconn *db)
{
    char *acme = find_id(c, "Account", "Name", "Acme Corp");
    records = xcalloc((size_t)record_count, sizeof(*records));
    for (int i = 0; i < record_count; i++) {
        char *body = xasprintf("{\"Name\":\"" NAME_PREFIX "0-%d\",\"StageName\":\"Prospecting\","
                               "\"CloseDate\":\"2027-06-30\",\"Amount\":%.0f,"
                               "\"AccountId\":\"%s\"}",
                               i, AMOUNT_BASE, acme);
        cJSON *o = NULL;
        if (call(c, "POST", "/_sandbox/salesforce/records/Opportunity", body, &o) != 201)
            die("cannot create an opportunity");
        records[i].opp = xstrdup(cJSON_GetObjectItemCaseSensitive(o, "Id")->valuestring);
        cJSON_Delete(o);
        free(body);
    }
    free(acme);
    /* Every opportunity linked to its deal, and nothing left to do. */
    int64_t end = util_monotonic_ms() + 900000;
    while (db_scalar(db, "SELECT count(*) FROM record_link WHERE kind = 'opportunity'") <
           record_count) {
        if (util_monotonic_ms() > end)
            die("the opportunities were not all synced within 15 minutes");
        sleep_ms(500);
    }
    if (!wait_idle(db, c, 600))
        die("the queue did not go idle after the initial sync");
    for (int i = 0; i < record_count; i++) {
        const char *params[] = {records[i].opp};
        PGresult *r = PQexecParams(db,
                                   "SELECT hs_id FROM record_link WHERE kind = 'opportunity'"
                                   " AND sf_id = $1",
                                   1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            die("an opportunity has no deal");
        records[i].deal = xstrdup(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
}

/* ---- the stream ------------------------------------------------------------------------- */

static void side_init(struct side *s, int capacity)
{
    s->capacity = capacity;
    s->changes = xcalloc((size_t)capacity, sizeof(*s->changes));
    s->first_open = xcalloc((size_t)record_count, sizeof(int));
    s->last = xcalloc((size_t)record_count, sizeof(int));
    for (int i = 0; i < record_count; i++)
        s->first_open[i] = s->last[i] = -1;
}

static void side_add(struct side *s, int record, long seq, int64_t sent_ms)
{
    pthread_mutex_lock(&lock);
    if (s->count < s->capacity) {
        int k = s->count++;
        s->changes[k] = (struct change){record, seq, sent_ms, 0, -1};
        if (s->last[record] >= 0)
            s->changes[s->last[record]].next = k;
        s->last[record] = k;
        if (s->first_open[record] < 0)
            s->first_open[record] = k;
    }
    pthread_mutex_unlock(&lock);
}

/* The other side shows seq (or -1: none of ours) for record: every change up to seq arrived. */
static void side_seen(struct side *s, int record, long seq, int64_t now)
{
    pthread_mutex_lock(&lock);
    int k = s->first_open[record];
    while (k >= 0 && s->changes[k].seq <= seq) {
        s->changes[k].seen_ms = now;
        k = s->changes[k].next;
    }
    s->first_open[record] = k;
    pthread_mutex_unlock(&lock);
}

static bool side_open(struct side *s, int record)
{
    pthread_mutex_lock(&lock);
    bool open = s->first_open[record] >= 0;
    pthread_mutex_unlock(&lock);
    return open;
}

static int side_open_count(struct side *s)
{
    int n = 0;
    for (int i = 0; i < record_count; i++)
        n += side_open(s, i);
    return n;
}

struct stream {
    struct side *side;
    int rate;
    int seconds;
};

static void *generate(void *arg)
{
    struct stream *st = arg;
    CURL *c = handle();
    unsigned seed = (unsigned)util_now_ms() ^ (st->side == &sf_side ? 0x5f : 0xa3);
    int total = st->rate * st->seconds;
    int64_t start = util_monotonic_ms();
    for (int k = 0; k < total; k++) {
        int64_t due = start + (int64_t)k * 1000 / st->rate;
        int64_t now = util_monotonic_ms();
        if (due > now)
            sleep_ms((int)(due - now));
        int r = (int)(rand_r(&seed) % (unsigned)record_count);
        long seq = atomic_fetch_add(&next_seq, 1) + 1;
        char *path, *body;
        if (st->side == &sf_side) {
            path = xasprintf("/_sandbox/salesforce/records/Opportunity/%s", records[r].opp);
            body = xasprintf("{\"Amount\":%.0f}", AMOUNT_BASE + (double)seq);
        } else {
            path = xasprintf("/_sandbox/hubspot/objects/deals/%s", records[r].deal);
            body = xasprintf("{\"properties\":{\"dealname\":\"" NAME_PREFIX "%ld\"}}", seq);
        }
        /* The change exists from the moment the user's request returns. */
        long status = call(c, "PATCH", path, body, NULL);
        if (status == 200)
            side_add(st->side, r, seq, util_monotonic_ms());
        else
            atomic_fetch_add(&failures, 1);
        free(path);
        free(body);
    }
    curl_easy_cleanup(c);
    return NULL;
}

/* The seq a value carries: Amount - AMOUNT_BASE, or the number after NAME_PREFIX; -1 if none. */
static long amount_seq(const char *text)
{
    if (!text || !*text)
        return -1;
    double v = strtod(text, NULL);
    return v > AMOUNT_BASE ? (long)llround(v - AMOUNT_BASE) : -1;
}

static long name_seq(const char *text)
{
    size_t n = strlen(NAME_PREFIX);
    if (!text || strncmp(text, NAME_PREFIX, n) != 0 || strchr(text + n, '-'))
        return -1;
    return strtol(text + n, NULL, 10);
}

static const char *hs_prop(const cJSON *deal, const char *name)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(deal, "properties");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(props, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void sf_text(const cJSON *rec, const char *field, char *out, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, field);
    if (cJSON_IsString(v))
        snprintf(out, n, "%s", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(out, n, "%.2f", v->valuedouble);
    else
        snprintf(out, n, "%s", "");
}

/* Every record of one side (GET path, each record's id in id_field) by record index, in one
 * request (caller deletes the array they came from). */
static cJSON *read_all(CURL *c, const char *path, const char *id_field, bool is_deal,
                       const cJSON **by_record)
{
    cJSON *all = NULL;
    call(c, "GET", path, NULL, &all);
    const cJSON *rec;
    cJSON_ArrayForEach(rec, all)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, id_field);
        for (int i = 0; cJSON_IsString(id) && i < record_count; i++)
            if (strcmp(is_deal ? records[i].deal : records[i].opp, id->valuestring) == 0)
                by_record[i] = rec;
    }
    return all;
}

/* Only the fields named (fields=, a comma list) of every opportunity, and only the amount of
 * every deal: the poller reads both sides 20 times a second, and the sandbox rendering every
 * field and association of 600 records for it took more of the shared CPU than dealsync. */
static cJSON *sf_all(CURL *c, const char *fields, const cJSON **by_record)
{
    char *path = xasprintf("/_sandbox/salesforce/records/Opportunity?fields=%s", fields);
    cJSON *all = read_all(c, path, "Id", false, by_record);
    free(path);
    return all;
}

static cJSON *hs_deal(CURL *c, int i)
{
    char *path = xasprintf("/_sandbox/hubspot/objects/deals/%s", records[i].deal);
    cJSON *d = NULL;
    call(c, "GET", path, NULL, &d);
    free(path);
    return d;
}

static cJSON *hs_all(CURL *c, const cJSON **by_record)
{
    return read_all(c, "/_sandbox/hubspot/objects/deals?properties=amount", "id", true, by_record);
}

#define POLL_PERIOD_MS 50

static void *poll_sides(void *arg)
{
    (void)arg;
    CURL *c = handle();
    const cJSON **by_record = xcalloc((size_t)record_count, sizeof(*by_record));
    while (!atomic_load(&stop_poll)) {
        int64_t loop_start = util_monotonic_ms();
        if (sf_side.count) {
            memset(by_record, 0, (size_t)record_count * sizeof(*by_record));
            cJSON *all = hs_all(c, by_record);
            int64_t now = util_monotonic_ms();
            for (int i = 0; i < record_count; i++)
                if (by_record[i] && side_open(&sf_side, i))
                    side_seen(&sf_side, i, amount_seq(hs_prop(by_record[i], "amount")), now);
            cJSON_Delete(all);
        }
        if (hs_side.count) {
            memset(by_record, 0, (size_t)record_count * sizeof(*by_record));
            cJSON *all = sf_all(c, "Id,Name", by_record);
            int64_t now = util_monotonic_ms();
            for (int i = 0; i < record_count; i++) {
                char name[256];
                sf_text(by_record[i], "Name", name, sizeof(name));
                side_seen(&hs_side, i, name_seq(name), now);
            }
            cJSON_Delete(all);
        }
        int64_t spent = util_monotonic_ms() - loop_start;
        /* One read of each side per POLL_PERIOD_MS at most: the poller (and the sandbox
         * answering it) shares the 2 cores with dealsync and PostgreSQL, and polling without
         * pause took several times dealsync's CPU (one GET per open deal), which the measured
         * latency then included. */
        if (spent < POLL_PERIOD_MS)
            sleep_ms((int)(POLL_PERIOD_MS - spent));
    }
    free(by_record);
    curl_easy_cleanup(c);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void report_side(const struct side *s)
{
    if (!s->count)
        return;
    int64_t *lat = xcalloc((size_t)s->count, sizeof(*lat));
    int n = 0, unseen = 0;
    for (int k = 0; k < s->count; k++) {
        if (s->changes[k].seen_ms)
            lat[n++] = s->changes[k].seen_ms - s->changes[k].sent_ms;
        else
            unseen++;
    }
    qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
    int64_t p50 = n ? lat[(n - 1) * 50 / 100] : -1;
    int64_t p99 = n ? lat[(n - 1) * 99 / 100] : -1;
    int64_t max = n ? lat[n - 1] : -1;
    printf("%s: %d changes, latency p50 %lld ms, p99 %lld ms, max %lld ms, never seen %d\n",
           s->name, s->count, (long long)p50, (long long)p99, (long long)max, unseen);
    printf("{\"direction\":\"%s\",\"changes\":%d,\"p50_ms\":%lld,\"p99_ms\":%lld,"
           "\"max_ms\":%lld,\"never_seen\":%d}\n",
           s->name, s->count, (long long)p50, (long long)p99, (long long)max, unseen);
    free(lat);
}

/* Where each change's time went, from the event that reported it (matched by the unique value
 * it carried: an outbound message's Amount, a webhook's dealname): delivered (the change made
 * to the event stored), waiting for a claim (stored to the last claim) and handled until shown
 * (that claim to the poller seeing the value; the batch finishes later, after the associations
 * and the baseline), as p50 over every matched change and as the mean over the slowest 1%:
 * where the p99 comes from. wall_offset_ms is the wall clock minus the monotonic one (the
 * database's times are wall clock). */
static int64_t *stage_values(const int64_t (*st)[3], int n, int which)
{
    int64_t *v = xcalloc((size_t)n + 1, sizeof(*v));
    for (int i = 0; i < n; i++)
        v[i] = st[i][which];
    qsort(v, (size_t)n, sizeof(*v), cmp_i64);
    return v;
}

static void report_tail(PGconn *db, const struct side *s, long long first_id,
                        int64_t wall_offset_ms)
{
    if (!s->count)
        return;
    bool is_sf = s == &sf_side;
    char *sql =
        xasprintf("SELECT record_id, %s, (extract(epoch FROM received_at) * 1000)::bigint,"
                  " (extract(epoch FROM last_attempt_at) * 1000)::bigint,"
                  " (extract(epoch FROM finished_at) * 1000)::bigint FROM sync_event"
                  " WHERE id > %lld AND status = 'done' AND %s ORDER BY id",
                  is_sf ? "payload->'fields'->>'Amount'" : "payload->>'propertyValue'", first_id,
                  is_sf ? "source = 'salesforce' AND event_type = 'outbound_message'"
                        : "source = 'hubspot' AND event_type = 'deal.propertyChange'"
                          " AND payload->>'propertyName' = 'dealname'");
    PGresult *r = PQexec(db, sql);
    free(sql);
    /* per change: the first event that carried its value */
    int64_t(*at)[3] = xcalloc((size_t)s->count + 1, sizeof(*at));
    for (int row = 0; PQresultStatus(r) == PGRES_TUPLES_OK && row < PQntuples(r); row++) {
        long seq = is_sf ? amount_seq(PQgetvalue(r, row, 1)) : name_seq(PQgetvalue(r, row, 1));
        for (int k = 0; seq > 0 && k < s->count; k++) {
            if (s->changes[k].seq != seq || at[k][0])
                continue;
            for (int c = 0; c < 3; c++)
                at[k][c] = atoll(PQgetvalue(r, row, 2 + c)) - wall_offset_ms;
        }
    }
    PQclear(r);
    int64_t(*st)[3] = xcalloc((size_t)s->count + 1, sizeof(*st));
    int64_t *total = xcalloc((size_t)s->count + 1, sizeof(*total));
    int n = 0;
    for (int k = 0; k < s->count; k++) {
        const struct change *c = &s->changes[k];
        if (!c->seen_ms || !at[k][0] || !at[k][1] || !at[k][2])
            continue;
        st[n][0] = at[k][0] - c->sent_ms;
        st[n][1] = at[k][1] - at[k][0];
        st[n][2] = c->seen_ms - at[k][1];
        total[n++] = c->seen_ms - c->sent_ms;
    }
    if (n > 0) {
        /* the slowest 1%: those at or above the p99 of the matched changes */
        int64_t *sorted = xcalloc((size_t)n, sizeof(*sorted));
        memcpy(sorted, total, (size_t)n * sizeof(*sorted));
        qsort(sorted, (size_t)n, sizeof(*sorted), cmp_i64);
        int64_t p99 = sorted[(n - 1) * 99 / 100];
        int64_t sum[3] = {0};
        int tail = 0;
        for (int i = 0; i < n; i++) {
            if (total[i] < p99)
                continue;
            tail++;
            for (int c = 0; c < 3; c++)
                sum[c] += st[i][c];
        }
        int64_t *v[3];
        for (int c = 0; c < 3; c++)
            v[c] = stage_values((const int64_t(*)[3])st, n, c);
        printf("where the time went, %s (%d of %d changes matched to their event): p50 delivered"
               " %lld ms, waiting for a claim %lld ms, claimed to shown %lld ms; the slowest 1%%"
               " (%d, from %lld ms), means: delivered %lld ms, waiting for a claim %lld ms, claimed"
               " to shown %lld ms\n",
               s->name, n, s->count, (long long)v[0][(n - 1) / 2], (long long)v[1][(n - 1) / 2],
               (long long)v[2][(n - 1) / 2], tail, (long long)p99, (long long)(sum[0] / tail),
               (long long)(sum[1] / tail), (long long)(sum[2] / tail));
        for (int c = 0; c < 3; c++)
            free(v[c]);
        free(sorted);
    }
    free(total);
    free(st);
    free(at);
}

/* Every record on both sides: Amount against amount, Name against dealname. */
static int compare_all(CURL *c)
{
    const cJSON **by_record = xcalloc((size_t)record_count, sizeof(*by_record));
    cJSON *all = sf_all(c, "Id,Name,Amount", by_record);
    int different = 0;
    for (int i = 0; i < record_count; i++) {
        cJSON *d = hs_deal(c, i);
        char amount[64], name[256];
        sf_text(by_record[i], "Amount", amount, sizeof(amount));
        sf_text(by_record[i], "Name", name, sizeof(name));
        const char *hs_amount = hs_prop(d, "amount");
        const char *hs_name = hs_prop(d, "dealname");
        bool same = fabs(strtod(amount, NULL) - strtod(hs_amount, NULL)) < 0.005 &&
                    strcmp(name, hs_name) == 0;
        if (!same) {
            if (different < 25)
                printf("  different: opportunity %s Amount %s Name %s | deal %s amount %s"
                       " dealname %s\n",
                       records[i].opp, amount, name, records[i].deal, hs_amount, hs_name);
            different++;
        }
        cJSON_Delete(d);
    }
    cJSON_Delete(all);
    free(by_record);
    return different;
}

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr,
                "usage: %s SANDBOX_URL DATABASE_URL DEALSYNC_PID MODE RECORDS RATE"
                " SECONDS LATENCY_MS QUIET_MAX_S\n",
                argv[0]);
        return 64;
    }
    sb_url = argv[1];
    int pid = atoi(argv[3]);
    const char *mode = argv[4];
    record_count = atoi(argv[5]);
    int rate = atoi(argv[6]);
    int seconds = atoi(argv[7]);
    int latency_ms = atoi(argv[8]);
    int quiet_max_s = atoi(argv[9]);
    bool do_sf = strcmp(mode, "sf") == 0 || strcmp(mode, "both") == 0;
    bool do_hs = strcmp(mode, "hs") == 0 || strcmp(mode, "both") == 0;
    if (!do_sf && !do_hs)
        die("MODE is sf, hs or both");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    PGconn *db = PQconnectdb(argv[2]);
    if (PQstatus(db) != CONNECTION_OK)
        die("cannot connect to the database");
    CURL *c = handle();

    int64_t t = util_monotonic_ms();
    create_records(c, db);
    printf("setup: %d opportunities created in Salesforce and synced to HubSpot in %.1f s\n",
           record_count, (double)(util_monotonic_ms() - t) / 1000.0);
    long rss_before = rss_kib(pid);

    /* Every emulated API call (not the control API) now takes latency_ms longer. */
    char *faults = xasprintf("{\"rules\":[{\"path\":\"/\",\"latency_ms\":%d}]}", latency_ms);
    if (latency_ms > 0 && call(c, "PUT", "/_sandbox/faults", faults, NULL) != 200)
        die("cannot set the API latency");
    free(faults);

    long long first_id = db_scalar(db, "SELECT coalesce(max(id), 0) FROM sync_event");
    int64_t wall_offset_ms = util_now_ms() - util_monotonic_ms();
    long long calls_mark = request_mark(c);
    side_init(&sf_side, do_sf ? rate * seconds : 0);
    side_init(&hs_side, do_hs ? rate * seconds : 0);
    pthread_t poller, gen_sf, gen_hs;
    pthread_create(&poller, NULL, poll_sides, NULL);
    struct stream s_sf = {&sf_side, rate, seconds}, s_hs = {&hs_side, rate, seconds};
    if (do_sf)
        pthread_create(&gen_sf, NULL, generate, &s_sf);
    if (do_hs)
        pthread_create(&gen_hs, NULL, generate, &s_hs);
    long rss_max = rss_before;
    int64_t stream_start = util_monotonic_ms();
    int64_t stream_end = stream_start + (int64_t)seconds * 1000;
    int minute = 0;
    /* RSS every 5 s of the stream: the soak's start, middle, end and slope. */
    size_t rss_n = 0, rss_cap = (size_t)seconds / 5 + 2;
    long *rss_at = xcalloc(rss_cap, sizeof(*rss_at));
    int64_t next_sample = stream_start;
    while (util_monotonic_ms() < stream_end) {
        long r = rss_kib(pid);
        if (r > rss_max)
            rss_max = r;
        if (util_monotonic_ms() >= next_sample && rss_n < rss_cap) {
            rss_at[rss_n++] = r;
            next_sample += 5000;
        }
        /* One line a minute, so a long soak shows it is alive. */
        if (util_monotonic_ms() - stream_start >= (int64_t)(minute + 1) * 60000) {
            minute++;
            printf("rss at minute %d: %ld KiB\n", minute, r);
            fflush(stdout);
        }
        sleep_ms(500);
    }
    report_rss_trend(rss_at, rss_n);
    free(rss_at);
    if (do_sf)
        pthread_join(gen_sf, NULL);
    if (do_hs)
        pthread_join(gen_hs, NULL);

    /* Quiet: until every change arrived and nothing is left to do, or quiet_max_s. */
    int64_t quiet_end = util_monotonic_ms() + (int64_t)quiet_max_s * 1000;
    while (util_monotonic_ms() < quiet_end &&
           (side_open_count(&sf_side) + side_open_count(&hs_side) > 0 || !queue_idle(db, c))) {
        long r = rss_kib(pid);
        if (r > rss_max)
            rss_max = r;
        sleep_ms(500);
    }
    atomic_store(&stop_poll, true);
    pthread_join(poller, NULL);
    bool idle = wait_idle(db, c, 10);
    long rss_after = rss_kib(pid);
    call(c, "DELETE", "/_sandbox/faults", NULL, NULL);

    printf("mode %s: %d records, %d changes/s per side for %d s, API latency %d ms\n", mode,
           record_count, rate, seconds, latency_ms);
    report_side(&sf_side);
    report_side(&hs_side);
    report_stages(db, first_id);
    report_tail(db, &sf_side, first_id, wall_offset_ms);
    report_tail(db, &hs_side, first_id, wall_offset_ms);
    /* The sandbox keeps its newest 50,000 requests: a soak's would not all be there. */
    if (seconds <= 120)
        report_calls(c, calls_mark, sf_side.count + hs_side.count);
    printf("change requests that failed: %d\n", atomic_load(&failures));
    printf("rss: before %ld KiB, during the stream max %ld KiB, after %ld KiB\n", rss_before,
           rss_max, rss_after);
    printf("queue idle at the end: %s; dead events: %lld\n", idle ? "yes" : "NO",
           db_scalar(db, "SELECT count(*) FROM sync_event WHERE status = 'dead'"));
    int different = compare_all(c);
    printf("records different at quiet: %d\n", different);
    printf("{\"mode\":\"%s\",\"records_different\":%d,\"rss_before_kib\":%ld,"
           "\"rss_max_kib\":%ld,\"rss_after_kib\":%ld}\n",
           mode, different, rss_before, rss_max, rss_after);
    curl_easy_cleanup(c);
    PQfinish(db);
    return different == 0 ? 0 : 2;
}
