/* api_budget.c - the shared API budget: HubSpot calls are paced through one row of api_budget
 * per limit (a sliding log of the window's calls, each at the latest time HubSpot may have
 * counted it, kept by the SQL functions api_budget_take and api_budget_answered), so every
 * worker of every process spends one budget as if it were one client. Salesforce usage is only
 * recorded here; the claim path reads it. Does not retry and does not decide what a failure means:
 * a refused take is ERR_RATE_LIMIT, which worker.c defers. */
#include "api_budget.h"

#include <ctype.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* Observations that change nothing urgent are written at most this often per worker. */
#define OBSERVE_EVERY_MS 1000
/* After a failed connection, the next attempt waits this long (calls go unpaced meanwhile). */
#define RECONNECT_MS 1000
/* Sleeps are cut into slices so that a stopping process is not held up. */
#define SLEEP_SLICE_MS 100
#define HS_INTERVAL_MS 10000
#define SEARCH_INTERVAL_MS 1000
/* A call's log entry until its answer comes: its slot plus this, the latest it is assumed to
 * reach HubSpot (a worker woken late on a loaded machine, the request itself). Once answered,
 * the entry is the answer's time, which needs no assumption. */
#define IN_FLIGHT_MS 500
/* A 429 with policyName DAILY: the day is over; this many calls "used" keeps it closed. */
#define DAY_CLOSED 1000000000000LL

struct api_budget {
    const struct config *cfg;
    pthread_mutex_t lock; /* the connection and the fields below: a worker's helper threads
                           * share its budget (sync_fanout.h) */
    PGconn *db;
    int64_t reconnect_at; /* monotonic ms */
    int64_t hs_written_at;
    int64_t sf_written_at;
    bool is_sf_live_written;
};

static atomic_bool is_cancelled;

struct api_budget *api_budget_new(const struct config *cfg)
{
    struct api_budget *b = xcalloc(1, sizeof(*b));
    b->cfg = cfg;
    pthread_mutex_init(&b->lock, NULL);
    b->hs_written_at = INT64_MIN / 2;
    b->sf_written_at = INT64_MIN / 2;
    return b;
}

void api_budget_free(struct api_budget *b)
{
    if (!b)
        return;
    PQfinish(b->db);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

void api_budget_cancel_waits(void)
{
    atomic_store(&is_cancelled, true);
}

void api_budget_resume_waits(void)
{
    atomic_store(&is_cancelled, false);
}

/* The budget's statements commit without waiting for the WAL flush. Every HubSpot call takes
 * its slot and records its answer, each a commit on the one row all workers lock: a commit
 * waiting for its flush held that row for the flush, and the row then served fewer calls a
 * second than the workers made (100 calls a second on a 2-core machine, the end-to-end
 * benchmark's stream: the take and the answer took 9 and 7 ms on average, and a batch's reads
 * waited for them more than for HubSpot). A database crash can lose the last fraction of a second
 * of entries: the calls they counted were made, so the budget counts fewer than HubSpot for at most
 * one window, and a 429 that follows is waited out and sent again (hs_client.c). */
#define BUDGET_SESSION_SQL "SET synchronous_commit = off"

/* The budget's own connection, (re)opened when needed; NULL while the database is away. The
 * caller holds b->lock. */
static PGconn *conn(struct api_budget *b)
{
    if (b->db && PQstatus(b->db) == CONNECTION_OK)
        return b->db;
    PQfinish(b->db);
    b->db = NULL;
    if (util_monotonic_ms() < b->reconnect_at)
        return NULL;
    if (db_open(b->cfg->database_url, &b->db) != ERR_OK ||
        db_exec(b->db, BUDGET_SESSION_SQL) != ERR_OK) {
        PQfinish(b->db);
        b->db = NULL;
        b->reconnect_at = util_monotonic_ms() + RECONNECT_MS;
    }
    return b->db;
}

/* Calls kept free in a window of `limit`: one in twenty, at least one (as the SQL does). */
static int64_t headroom(int64_t limit)
{
    int64_t h = limit / 20;
    return h < 1 && limit > 1 ? 1 : h;
}

/* The HubSpot burst limit in force: the setting, or the header's Max when lower. */
static int64_t burst_limit(const struct config *cfg, const struct http_response *resp)
{
    int64_t lim = cfg->hs_burst_limit;
    if (resp && resp->hs_rate_max > 0 && resp->hs_rate_max < lim)
        lim = resp->hs_rate_max;
    return lim;
}

/* Sleeps ms unless the process starts stopping; false when it did. */
static bool sleep_unless_cancelled(int64_t ms)
{
    int64_t until = util_monotonic_ms() + ms;
    for (;;) {
        if (atomic_load(&is_cancelled))
            return false;
        int64_t left = until - util_monotonic_ms();
        if (left <= 0)
            return true;
        poll(NULL, 0, (int)(left < SLEEP_SLICE_MS ? left : SLEEP_SLICE_MS));
    }
}

static const char take_sql[] = "SELECT wait_ms, coalesce(refused, ''), day_left, entry"
                               " FROM api_budget_take($1, 'hubspot', $2::int, $3::int,"
                               "                      $4::bigint, $5::int, $6::int)";

enum err api_budget_hs_take(struct api_budget *b, bool is_search, int64_t *retry_ms,
                            struct api_budget_entry *entry)
{
    const struct config *cfg = b->cfg;
    entry->at[0] = '\0';
    entry->is_search = is_search;
    pthread_mutex_lock(&b->lock);
    PGconn *db = conn(b);
    if (!db) {
        pthread_mutex_unlock(&b->lock);
        return ERR_DB;
    }
    char limit[24], interval[24], daily[24], max_wait[24], in_flight[24];
    const char *api = is_search ? "hubspot_search" : "hubspot";
    snprintf(limit, sizeof(limit), "%d",
             is_search ? cfg->hs_search_per_second : cfg->hs_burst_limit);
    snprintf(interval, sizeof(interval), "%d", is_search ? SEARCH_INTERVAL_MS : HS_INTERVAL_MS);
    snprintf(daily, sizeof(daily), "%d", cfg->hs_daily_limit);
    snprintf(max_wait, sizeof(max_wait), "%d", cfg->budget_max_wait_ms);
    snprintf(in_flight, sizeof(in_flight), "%d", IN_FLIGHT_MS);
    const char *params[] = {api, limit, interval, daily, max_wait, in_flight};
    PGresult *r = PQexecParams(db, take_sql, 6, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot take from the api budget");
    if (rc != ERR_OK || PQntuples(r) != 1) {
        PQclear(r);
        pthread_mutex_unlock(&b->lock);
        return ERR_DB;
    }
    int64_t wait = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    char *refused = xstrdup(PQgetvalue(r, 0, 1));
    int64_t day_left = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    if (!*refused && !PQgetisnull(r, 0, 3) && strlen(PQgetvalue(r, 0, 3)) < sizeof(entry->at))
        strcpy(entry->at, PQgetvalue(r, 0, 3));
    PQclear(r);
    pthread_mutex_unlock(&b->lock); /* the wait below is made unlocked */
    metrics_set("dealsync_api_budget_remaining", "api=\"hubspot\",window=\"day\"",
                (double)day_left);
    if (*refused) {
        /* Nothing was reserved: the record goes back to the queue until the budget returns. */
        log_info("api budget refused a call", LOG_STR("api", "hubspot"), LOG_STR("limit", refused),
                 LOG_I64("retry_in_ms", wait));
        metrics_inc("dealsync_api_budget_refusals_total",
                    strcmp(refused, "daily") == 0 ? "api=\"hubspot\",window=\"day\""
                                                  : "api=\"hubspot\",window=\"10s\"",
                    1);
        *retry_ms = wait > 0 ? wait : 1;
        free(refused);
        return ERR_RATE_LIMIT;
    }
    free(refused);
    if (wait > 0) {
        metrics_add("dealsync_api_throttled_seconds_total", "api=\"hubspot\"", wait / 1000.0);
        if (!sleep_unless_cancelled(wait)) {
            *retry_ms = 0;
            return ERR_RATE_LIMIT;
        }
    }
    return ERR_OK;
}

void api_budget_hs_answered(struct api_budget *b, struct api_budget_entry *entry)
{
    if (!entry->at[0])
        return;
    pthread_mutex_lock(&b->lock);
    PGconn *db = conn(b);
    if (db) {
        const char *params[] = {entry->is_search ? "hubspot_search" : "hubspot", entry->at};
        PGresult *r = PQexecParams(db, "SELECT api_budget_answered($1, $2::timestamptz)", 2, NULL,
                                   params, NULL, NULL, 0);
        enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot record an answer in the api budget");
        (void)rc; /* logged; the entry then stays at its slot plus the allowance */
        PQclear(r);
    }
    pthread_mutex_unlock(&b->lock);
    entry->at[0] = '\0';
}

bool api_budget_hs_retry_wait(struct api_budget *b, int64_t ms)
{
    if (ms > b->cfg->budget_max_wait_ms)
        return false;
    metrics_add("dealsync_api_throttled_seconds_total", "api=\"hubspot\"", ms / 1000.0);
    return sleep_unless_cancelled(ms);
}

int64_t api_budget_hs_wait_ms(struct api_budget *b, int calls)
{
    pthread_mutex_lock(&b->lock);
    PGconn *db = conn(b);
    if (!db) {
        pthread_mutex_unlock(&b->lock);
        return 0;
    }
    char limit[24], interval[24], free_calls[24];
    snprintf(limit, sizeof(limit), "%d", b->cfg->hs_burst_limit);
    snprintf(interval, sizeof(interval), "%d", HS_INTERVAL_MS);
    snprintf(free_calls, sizeof(free_calls), "%d", calls);
    const char *params[] = {limit, interval, free_calls};
    PGresult *r =
        PQexecParams(db, "SELECT api_budget_wait_ms('hubspot', $1::int, $2::int, $3::int)", 3, NULL,
                     params, NULL, NULL, 0);
    int64_t wait = 0;
    if (db_check(db, r, PGRES_TUPLES_OK, "cannot read the api budget") == ERR_OK &&
        PQntuples(r) == 1)
        wait = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    pthread_mutex_unlock(&b->lock);
    return wait < 0 ? 0 : wait > HS_INTERVAL_MS ? HS_INTERVAL_MS : wait;
}

static const char observe_sql[] =
    "UPDATE api_budget SET limit_max = coalesce($2::int, limit_max),"
    "  interval_ms = coalesce($3::int, interval_ms), remaining = coalesce($4::int, remaining),"
    "  daily_limit = coalesce($5::bigint, daily_limit),"
    "  day_used = greatest(CASE WHEN day = (clock_timestamp() AT TIME ZONE 'UTC')::date"
    "                      THEN day_used ELSE 0 END, coalesce($6::bigint, 0)),"
    "  day = (clock_timestamp() AT TIME ZONE 'UTC')::date,"
    "  next_at = greatest(next_at, clock_timestamp() + $7::double precision"
    "                                                  * interval '1 millisecond')"
    " WHERE api = $1";

static void param_i64(char *out, size_t n, int64_t v, const char **param)
{
    snprintf(out, n, "%" PRId64, v);
    *param = v >= 0 ? out : NULL;
}

void api_budget_hs_observe(struct api_budget *b, bool is_search, const struct http_response *resp,
                           const char *policy)
{
    const struct config *cfg = b->cfg;
    bool is_429 = resp->status == 429;
    bool is_daily = is_429 && policy && strcmp(policy, "DAILY") == 0;
    int64_t lim = burst_limit(cfg, resp);
    int64_t interval = resp->hs_rate_interval_ms > 0 ? resp->hs_rate_interval_ms : HS_INTERVAL_MS;
    int64_t spare = headroom(lim);
    double spacing = (double)interval / (double)(lim - spare > 0 ? lim - spare : 1);
    double push_ms = 0;
    int64_t day_used = -1;

    if (resp->hs_rate_remaining >= 0)
        metrics_set("dealsync_api_budget_remaining", "api=\"hubspot\",window=\"10s\"",
                    (double)resp->hs_rate_remaining);
    if (is_search) {
        /* Search answers carry no headers; only its 429 tells anything. */
        if (!is_429)
            return;
        push_ms = SEARCH_INTERVAL_MS;
    } else if (is_daily) {
        day_used = DAY_CLOSED;
    } else if (is_429) {
        /* The window is full (other programs use the app too): hold everyone back until a
         * few of its calls have aged out. */
        push_ms = (double)(spare + 1) * spacing;
    } else if (resp->hs_rate_remaining >= 0 && resp->hs_rate_remaining < spare) {
        push_ms = (double)(spare - resp->hs_rate_remaining) * spacing;
    }
    if (!is_daily && resp->hs_daily_max >= 0 && resp->hs_daily_remaining >= 0)
        day_used = resp->hs_daily_max - resp->hs_daily_remaining;
    bool is_urgent = is_429 || push_ms > 0;
    int64_t now = util_monotonic_ms();
    pthread_mutex_lock(&b->lock);
    PGconn *db = !is_urgent && now - b->hs_written_at < OBSERVE_EVERY_MS ? NULL : conn(b);
    if (!db) {
        pthread_mutex_unlock(&b->lock);
        return;
    }
    b->hs_written_at = now;

    char max_s[24], interval_s[24], rem_s[24], daily_s[24], used_s[24], push_s[32];
    const char *params[7] = {is_search ? "hubspot_search" : "hubspot"};
    if (!is_search) {
        param_i64(max_s, sizeof(max_s), resp->hs_rate_max, &params[1]);
        param_i64(interval_s, sizeof(interval_s), resp->hs_rate_interval_ms, &params[2]);
        param_i64(rem_s, sizeof(rem_s), resp->hs_rate_remaining, &params[3]);
        param_i64(daily_s, sizeof(daily_s), resp->hs_daily_max, &params[4]);
        param_i64(used_s, sizeof(used_s), day_used, &params[5]);
    }
    snprintf(push_s, sizeof(push_s), "%.3f", push_ms);
    params[6] = push_s;
    PGresult *r = PQexecParams(db, observe_sql, 7, NULL, params, NULL, NULL, 0);
    if (db_check(db, r, PGRES_COMMAND_OK, "cannot record the hubspot rate-limit headers") ==
            ERR_OK &&
        is_urgent)
        log_info("api budget tightened", LOG_STR("api", is_search ? "hubspot_search" : "hubspot"),
                 LOG_I64("http_status", resp->status), LOG_STR("policy", policy),
                 LOG_I64("remaining", resp->hs_rate_remaining), LOG_I64("held_back_ms", push_ms));
    PQclear(r);
    pthread_mutex_unlock(&b->lock);
}

/* Usage at or above 75% of the share: used / (max * percent / 100) >= 3/4, in integers. */
static bool is_live_only(int64_t used, int64_t max, int percent)
{
    return max > 0 && used * 400 >= max * percent * 3;
}

void api_budget_sf_observe(struct api_budget *b, const char *limit_info)
{
    int64_t used, max;
    if (!api_budget_parse_limit_info(limit_info, &used, &max))
        return;
    int percent = b->cfg->sf_budget_percent;
    metrics_set("dealsync_api_budget_remaining", "api=\"salesforce\",window=\"day\"",
                (double)(max * percent / 100 - used));
    bool is_live = is_live_only(used, max, percent);
    int64_t now = util_monotonic_ms();
    pthread_mutex_lock(&b->lock);
    PGconn *db = now - b->sf_written_at < OBSERVE_EVERY_MS && is_live == b->is_sf_live_written
                     ? NULL
                     : conn(b);
    if (!db) {
        pthread_mutex_unlock(&b->lock);
        return;
    }
    char used_s[24], max_s[24];
    snprintf(used_s, sizeof(used_s), "%" PRId64, used);
    snprintf(max_s, sizeof(max_s), "%" PRId64, max);
    const char *params[] = {used_s, max_s};
    PGresult *r = PQexecParams(db,
                               "UPDATE api_budget SET usage_used = $1::bigint,"
                               " usage_max = $2::bigint, observed_at = clock_timestamp()"
                               " WHERE api = 'salesforce'",
                               2, NULL, params, NULL, NULL, 0);
    if (db_check(db, r, PGRES_COMMAND_OK, "cannot record salesforce api usage") == ERR_OK) {
        if (is_live != b->is_sf_live_written)
            log_info(is_live ? "salesforce usage near dealsync's share: live work only"
                             : "salesforce usage below the live-only mark",
                     LOG_I64("used", used), LOG_I64("max", max), LOG_I64("percent", percent));
        b->sf_written_at = now;
        b->is_sf_live_written = is_live;
    }
    PQclear(r);
    pthread_mutex_unlock(&b->lock);
}

enum err api_budget_sf_live_only(PGconn *db, const struct config *cfg, bool *live_only)
{
    char percent[16];
    snprintf(percent, sizeof(percent), "%d", cfg->sf_budget_percent);
    const char *params[] = {percent};
    PGresult *r = PQexecParams(db,
                               "SELECT coalesce(usage_max > 0 AND usage_used * 400 >="
                               "                usage_max * $1::int * 3, false)"
                               " FROM api_budget WHERE api = 'salesforce'",
                               1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read salesforce api usage");
    if (rc == ERR_OK)
        *live_only = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return rc;
}

bool api_budget_sf_probe_due(PGconn *db, const struct config *cfg)
{
    char percent[16], secs[16];
    snprintf(percent, sizeof(percent), "%d", cfg->sf_budget_percent);
    snprintf(secs, sizeof(secs), "%d", cfg->budget_probe_seconds);
    const char *params[] = {percent, secs};
    PGresult *r =
        PQexecParams(db,
                     "UPDATE api_budget SET observed_at = clock_timestamp()"
                     " WHERE api = 'salesforce' AND usage_max > 0"
                     "   AND usage_used * 400 >= usage_max * $1::int * 3"
                     "   AND observed_at < clock_timestamp() - make_interval(secs => $2::int)",
                     2, NULL, params, NULL, NULL, 0);
    bool due =
        db_check(db, r, PGRES_COMMAND_OK, "cannot claim the salesforce usage probe") == ERR_OK &&
        strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return due;
}

void api_budget_count_call(const char *api, const char *path, long status)
{
    char *endpoint = api_budget_endpoint(path);
    char *labels = xasprintf("api=\"%s\",endpoint=\"%s\",status=\"%ld\"", api, endpoint, status);
    metrics_inc("dealsync_api_calls_total", labels, 1);
    free(labels);
    free(endpoint);
}

/* ---- Pure helpers ------------------------------------------------------------------------- */

bool api_budget_parse_limit_info(const char *s, int64_t *used, int64_t *max)
{
    for (const char *p = s; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (strncmp(p, "api-usage=", 10) == 0) {
            long long u, m;
            int n = 0;
            if (sscanf(p + 10, "%lld/%lld%n", &u, &m, &n) == 2 && u >= 0 && m > 0) {
                *used = u;
                *max = m;
                return true;
            }
            return false;
        }
        p = strchr(p, ',');
    }
    return false;
}

/* A path segment that names one record (or a cursor) rather than a resource. */
static bool is_id_segment(const char *s, size_t n)
{
    bool has_digit = false;
    for (size_t i = 0; i < n; i++)
        has_digit = has_digit || isdigit((unsigned char)s[i]);
    if (!has_digit)
        return false;
    /* an API version ("v3", "v60.0") is part of the endpoint */
    if (s[0] == 'v') {
        size_t i = 1;
        while (i < n && (isdigit((unsigned char)s[i]) || s[i] == '.'))
            i++;
        if (i == n)
            return false;
    }
    return true;
}

char *api_budget_endpoint(const char *path)
{
    struct buf b;
    buf_init(&b, 0);
    size_t len = strcspn(path ? path : "", "?");
    for (size_t i = 0; i < len;) {
        if (path[i] == '/') {
            buf_append(&b, "/", 1);
            i++;
            continue;
        }
        size_t n = strcspn(path + i, "/?");
        if (n > len - i)
            n = len - i;
        if (is_id_segment(path + i, n)) {
            buf_append_str(&b, "{id}");
        } else {
            for (size_t k = 0; k < n; k++) {
                char c = path[i + k];
                buf_append(&b, c == '"' || c == '\\' ? "_" : &path[i + k], 1);
            }
        }
        i += n;
    }
    if (b.len == 0)
        buf_append_str(&b, "/");
    return buf_steal(&b);
}
