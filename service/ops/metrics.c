/* metrics.c - a small registry: one array of series under a mutex. Series are few (tens), so a
 * linear search costs less than the request it measures. */
#include "metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Request durations: from 1 ms (an ack) to 5 s (HubSpot's timeout). */
static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,   0.25,   0.5,   1,    2.5,   5};
#define BUCKET_COUNT (sizeof(buckets) / sizeof(buckets[0]))

enum series_kind { SERIES_COUNTER, SERIES_GAUGE, SERIES_HISTOGRAM };

struct series {
    char *name;
    char *labels;
    enum series_kind kind;
    long long count;
    double value; /* gauges; fractional counter increments (metrics_add) */
    double sum;
    long long bucket_counts[BUCKET_COUNT];
};

struct help {
    char *name;
    char *text;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series *series;
static size_t series_count, series_cap;
static struct help *helps;
static size_t help_count;

static struct series *find(const char *name, const char *labels, enum series_kind kind)
{
    for (size_t i = 0; i < series_count; i++)
        if (strcmp(series[i].name, name) == 0 && strcmp(series[i].labels, labels) == 0)
            return &series[i];
    if (series_count == series_cap) {
        series_cap = series_cap ? series_cap * 2 : 32;
        series = xrealloc(series, series_cap * sizeof(*series));
    }
    struct series *s = &series[series_count++];
    memset(s, 0, sizeof(*s));
    s->name = xstrdup(name);
    s->labels = xstrdup(labels);
    s->kind = kind;
    return s;
}

void metrics_inc(const char *name, const char *labels, long long delta)
{
    pthread_mutex_lock(&lock);
    find(name, labels, SERIES_COUNTER)->count += delta;
    pthread_mutex_unlock(&lock);
}

void metrics_add(const char *name, const char *labels, double delta)
{
    pthread_mutex_lock(&lock);
    find(name, labels, SERIES_COUNTER)->value += delta;
    pthread_mutex_unlock(&lock);
}

void metrics_set(const char *name, const char *labels, double value)
{
    pthread_mutex_lock(&lock);
    find(name, labels, SERIES_GAUGE)->value = value;
    pthread_mutex_unlock(&lock);
}

void metrics_observe(const char *name, const char *labels, double seconds)
{
    pthread_mutex_lock(&lock);
    struct series *s = find(name, labels, SERIES_HISTOGRAM);
    s->count++;
    s->sum += seconds;
    for (size_t i = 0; i < BUCKET_COUNT; i++)
        if (seconds <= buckets[i])
            s->bucket_counts[i]++;
    pthread_mutex_unlock(&lock);
}

void metrics_describe(const char *name, const char *help)
{
    pthread_mutex_lock(&lock);
    helps = xrealloc(helps, (help_count + 1) * sizeof(*helps));
    helps[help_count].name = xstrdup(name);
    helps[help_count].text = xstrdup(help);
    help_count++;
    pthread_mutex_unlock(&lock);
}

long long metrics_counter(const char *name, const char *labels)
{
    long long v = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < series_count; i++)
        if (strcmp(series[i].name, name) == 0 && strcmp(series[i].labels, labels) == 0)
            v = series[i].count;
    pthread_mutex_unlock(&lock);
    return v;
}

/* The HELP text of every family dealsync records, so that each one rendered has its HELP and
 * TYPE (checked with promtool by test_metrics). A new metric gets its line here. */
static const struct {
    const char *name;
    const char *text;
} catalogue[] = {
    {"dealsync_http_requests_total", "HTTP requests answered, by route and status."},
    {"dealsync_http_request_duration_seconds", "Time to answer an HTTP request, by route."},
    {"dealsync_http_connections_timed_out_total",
     "HTTP connections shut down at the request deadline (HTTP_REQUEST_TIMEOUT_MS)."},
    {"dealsync_webhook_events_received_total", "Webhook events received, by source."},
    {"dealsync_webhook_events_stored_total",
     "Webhook events committed to the queue (for HubSpot: when split from the inbox), by source."},
    {"dealsync_webhook_events_duplicate_total",
     "Webhook events already in the queue (redeliveries), by source."},
    {"dealsync_webhook_events_rejected_total", "Webhook requests refused, by source and reason."},
    {"dealsync_webhook_events_ignored_total",
     "Webhook events acknowledged and dropped (object types dealsync does not sync), by source."},
    {"dealsync_ingest_groups_total",
     "Transactions the webhook group committer wrote (each holds one or more requests)."},
    {"dealsync_ingest_group_requests_total",
     "Webhook requests written by the group committer (divided by the groups: the group size)."},
    {"dealsync_ingest_split_batches_total",
     "Transactions that split webhook inbox rows into queue events."},
    {"dealsync_ingest_split_rows_total", "Webhook inbox rows split into queue events."},
    {"dealsync_worker_records_total", "Records a worker finished, by source and outcome."},
    {"dealsync_worker_events_total", "Events a worker finished, by source and outcome."},
    {"dealsync_deal_syncs_total", "HubSpot deals handled by the sync to Salesforce, by outcome."},
    {"dealsync_deals_refused_total", "HubSpot deals not synced to Salesforce, by reason."},
    {"dealsync_sf_deal_field_checks_total",
     "Checks of the Opportunity deal id field, by whether it was ready."},
    {"dealsync_api_calls_total",
     "Calls dealsync made to the CRM APIs, by api, endpoint and status."},
    {"dealsync_api_budget_remaining",
     "API budget left as last seen, by api and window (10s: HubSpot's rolling window; day)."},
    {"dealsync_api_throttled_seconds_total",
     "Seconds workers waited for a slot in the shared API budget, by api."},
    {"dealsync_api_budget_refusals_total",
     "Calls not sent because the shared API budget was out (the record was deferred), by api "
     "and window."},
};

static const char *help_for(const char *name)
{
    for (size_t i = 0; i < help_count; i++)
        if (strcmp(helps[i].name, name) == 0)
            return helps[i].text;
    for (size_t i = 0; i < sizeof(catalogue) / sizeof(catalogue[0]); i++)
        if (strcmp(catalogue[i].name, name) == 0)
            return catalogue[i].text;
    return NULL;
}

static void render_series(struct buf *b, const struct series *s)
{
    const char *sep = s->labels[0] ? "," : "";
    if (s->kind != SERIES_HISTOGRAM) {
        buf_printf(b, "%s%s%s%s ", s->name, s->labels[0] ? "{" : "", s->labels,
                   s->labels[0] ? "}" : "");
        if (s->kind == SERIES_GAUGE || s->value != 0)
            buf_printf(b, "%.3f\n", (double)s->count + s->value);
        else
            buf_printf(b, "%lld\n", s->count);
        return;
    }
    for (size_t i = 0; i < BUCKET_COUNT; i++)
        buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %lld\n", s->name, s->labels, sep, buckets[i],
                   s->bucket_counts[i]);
    buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %lld\n", s->name, s->labels, sep, s->count);
    buf_printf(b, "%s_sum{%s} %.6f\n", s->name, s->labels, s->sum);
    buf_printf(b, "%s_count{%s} %lld\n", s->name, s->labels, s->count);
}

char *metrics_render(void)
{
    struct buf b;
    buf_init(&b, 0);
    pthread_mutex_lock(&lock);
    /* Group series by name so each family has one HELP/TYPE header. */
    bool *done = xcalloc(series_count + 1, sizeof(bool));
    for (size_t i = 0; i < series_count; i++) {
        if (done[i])
            continue;
        const char *help = help_for(series[i].name);
        if (help)
            buf_printf(&b, "# HELP %s %s\n", series[i].name, help);
        static const char *const types[] = {"counter", "gauge", "histogram"};
        buf_printf(&b, "# TYPE %s %s\n", series[i].name, types[series[i].kind]);
        for (size_t j = i; j < series_count; j++) {
            if (!done[j] && strcmp(series[j].name, series[i].name) == 0) {
                render_series(&b, &series[j]);
                done[j] = true;
            }
        }
    }
    free(done);
    pthread_mutex_unlock(&lock);
    return buf_steal(&b);
}
