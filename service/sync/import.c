/* import.c - lists every opportunity and every deal of a synced pipeline and queues each as a
 * background event ("import"), saving the listing's place per page in import_run. It does not
 * sync anything itself: the workers do, with the same handlers and rules as for a webhook. */
#include "import.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "log.h"
#include "mapping.h"
#include "pipelines.h"
#include "queue.h"
#include "reconcile.h"
#include "sf_id.h"
#include "soql.h"
#include "sync_state.h"
#include "util.h"

/* HubSpot's largest search page; Salesforce decides its own (up to 2,000). */
#define HS_PAGE 200
/* HubSpot allows 5 searches a second per token: one page every 220 ms stays under it. */
#define HS_SEARCH_GAP_MS 220
/* Transient failures of one page are retried this many times before the import stops (it can
 * be continued). */
#define PAGE_TRIES 6

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t since_param(int64_t since_ms, char out[32])
{
    snprintf(out, 32, "%lld", (long long)since_ms);
    return since_ms;
}

/* ---- import_run ---------------------------------------------------------------------------- */

static const char open_sql[] =
    "WITH ins AS ("
    "  INSERT INTO import_run (source, since)"
    "  VALUES ($1, CASE WHEN $2::bigint < 0 THEN NULL ELSE to_timestamp($2::bigint / 1000.0) END)"
    "  ON CONFLICT (source, coalesce(since, '-infinity'::timestamptz)) WHERE status = 'running'"
    "  DO NOTHING RETURNING id, cursor, total, pages_done, records_seen, records_queued"
    ") SELECT id, cursor::text, coalesce(total, -1), pages_done, records_seen, records_queued"
    "  FROM ins"
    " UNION ALL"
    " SELECT id, cursor::text, coalesce(total, -1), pages_done, records_seen, records_queued"
    "  FROM import_run WHERE status = 'running' AND source = $1"
    "   AND since IS NOT DISTINCT FROM"
    "       (CASE WHEN $2::bigint < 0 THEN NULL ELSE to_timestamp($2::bigint / 1000.0) END)"
    " LIMIT 1";

/* The unfinished run of (source, since), made when there is none. *cursor: caller deletes. */
static enum err run_open(PGconn *db, const char *source, int64_t since_ms, struct import_state *st,
                         cJSON **cursor)
{
    char since[32];
    since_param(since_ms, since);
    const char *params[] = {source, since};
    PGresult *r = PQexecParams(db, open_sql, 2, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot start the import");
    if (rc == ERR_OK && PQntuples(r) != 1) {
        log_error("cannot start the import", LOG_STR("source", source));
        rc = ERR_DB;
    }
    if (rc == ERR_OK) {
        st->run_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *cursor = cJSON_Parse(PQgetvalue(r, 0, 1));
        if (!*cursor)
            *cursor = cJSON_CreateObject();
        st->total = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        st->pages_done = atoi(PQgetvalue(r, 0, 3));
        st->records_seen = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
        st->records_queued = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
    }
    PQclear(r);
    return rc;
}

/* Queues one page's records (found: [{"id", "ms"}]) and saves the cursor after it. A crash
 * between the two repeats the page, whose events are then recognised by their dedup keys. */
static enum err save_page(PGconn *db, struct import_state *st, const char *object_type,
                          const cJSON *found, const cJSON *cursor, bool is_forced)
{
    cJSON *payload = cJSON_CreateObject();
    cJSON_AddNumberToObject(payload, "import_run", (double)st->run_id);
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "import:%lld:", (long long)st->run_id);
    struct reconcile_batch b = {st->source, object_type, found,     "import",
                                prefix,     false,       is_forced, payload};
    long long stored = 0;
    long long k = cJSON_GetArraySize(found);
    enum err rc = k ? reconcile_queue(db, &b, &stored) : ERR_OK;
    if (rc == ERR_OK) {
        char *cur = cJSON_PrintUnformatted(cursor);
        char run[32], seen[32], queued[32], total[32];
        snprintf(run, sizeof(run), "%lld", (long long)st->run_id);
        snprintf(seen, sizeof(seen), "%lld", k);
        snprintf(queued, sizeof(queued), "%lld", stored);
        snprintf(total, sizeof(total), "%lld", st->total);
        const char *params[] = {run, cur, seen, queued, total};
        PGresult *r = PQexecParams(
            db,
            "UPDATE import_run SET cursor = $2::jsonb, pages_done = pages_done + 1,"
            " records_seen = records_seen + $3::bigint,"
            " records_queued = records_queued + $4::bigint,"
            " total = CASE WHEN $5::bigint < 0 THEN NULL ELSE $5::bigint END, updated_at = now()"
            " WHERE id = $1::bigint",
            5, NULL, params, NULL, NULL, 0);
        rc = db_check(db, r, PGRES_COMMAND_OK, "cannot save the import cursor");
        PQclear(r);
        free(cur);
    }
    if (rc == ERR_OK) {
        st->pages_done++;
        st->records_seen += k;
        st->records_queued += stored;
    }
    cJSON_Delete(payload);
    return rc;
}

static void add_found(cJSON *found, const char *id, const char *modified)
{
    int64_t ms = 0;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "id", id);
    if (modified && util_parse_iso8601_ms(modified, &ms))
        cJSON_AddNumberToObject(f, "ms", (double)ms);
    else
        cJSON_AddNullToObject(f, "ms");
    cJSON_AddItemToArray(found, f);
}

/* The id of the last record of found. Borrowed. */
static const char *last_id(const cJSON *found)
{
    int n = cJSON_GetArraySize(found);
    return n ? cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(found, n - 1), "id"))
             : NULL;
}

static enum err run_listed(PGconn *db, struct import_state *st)
{
    char run[32];
    snprintf(run, sizeof(run), "%lld", (long long)st->run_id);
    const char *params[] = {run};
    PGresult *r = PQexecParams(db,
                               "UPDATE import_run SET status = 'listed', listed_at = now(),"
                               " updated_at = now(), total = records_seen WHERE id = $1::bigint",
                               1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot finish the import");
    PQclear(r);
    if (rc == ERR_OK) {
        st->is_listed = true;
        st->total = st->records_seen;
    }
    return rc;
}

/* ---- Listing ------------------------------------------------------------------------------- */

struct lister {
    struct sync_ctx *ctx;
    PGconn *db;
    int64_t since_ms;
    bool is_forced;
    const sigset_t *stop;
    import_page_fn on_page;
    void *arg;
    int64_t started_ms;
    struct import_state *st;
};

/* SIGINT or SIGTERM asked the command to stop; checked between pages, whose cursor is saved.
 * The signals are blocked in every thread (main.c), so they wait here to be taken. */
static bool is_stop_requested(struct lister *l)
{
    if (!l->stop)
        return false;
    struct timespec zero = {0, 0};
    int sig = sigtimedwait(l->stop, NULL, &zero);
    if (sig == SIGINT || sig == SIGTERM)
        l->st->is_stopped = true;
    return l->st->is_stopped;
}

static void report(struct lister *l)
{
    if (l->on_page)
        l->on_page(l->st, util_monotonic_ms() - l->started_ms, l->arg);
}

/* Waits before the next try of a failed page: the API's hint, else 1 s, 2 s, 4 s, ... */
static bool should_retry(enum err rc, int attempt, int64_t hint_ms)
{
    if (!err_is_transient(rc) || attempt + 1 >= PAGE_TRIES)
        return false;
    int64_t wait = hint_ms > 0 ? hint_ms : 1000LL << attempt;
    log_warn("import page failed; trying again", LOG_STR("error", err_str(rc)),
             LOG_I64("retry_in_ms", wait));
    sleep_ms(wait);
    return true;
}

static char *opportunity_soql(int64_t since_ms, const char *after)
{
    struct buf q;
    buf_init(&q, 0);
    buf_append_str(&q, "SELECT Id, SystemModstamp FROM Opportunity");
    const char *glue = " WHERE ";
    if (since_ms >= 0) {
        char ts[UTIL_ISO8601_LEN];
        util_format_iso8601_ms(since_ms - since_ms % 1000, ts);
        memcpy(ts + 19, "Z", 2); /* SOQL datetimes have whole seconds */
        buf_printf(&q, "%sSystemModstamp >= %s", glue, ts);
        glue = " AND ";
    }
    if (after && *after) {
        buf_printf(&q, "%sId > ", glue);
        soql_append_quoted(&q, after);
    }
    buf_append_str(&q, " ORDER BY Id");
    return buf_steal(&q);
}

/* Pages through the opportunities by Id. Within one run of the command it follows
 * nextRecordsUrl; a continued import starts a new query after the last Id saved (a query
 * locator does not outlive its session). */
static enum err list_salesforce(struct lister *l, cJSON *cursor)
{
    const char *after = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cursor, "after"));
    char *soql = opportunity_soql(l->since_ms, after);
    char *next = NULL;
    bool is_first = true;
    enum err rc = ERR_OK;
    for (;;) {
        if (is_stop_requested(l))
            break;
        struct sf_query_page page = {0};
        for (int attempt = 0;; attempt++) {
            rc = sf_query_page(l->ctx->sf, soql, next, &page);
            if (rc == ERR_OK || !should_retry(rc, attempt, 0))
                break;
        }
        if (rc != ERR_OK)
            break;
        if (is_first && page.total >= 0)
            l->st->total = l->st->records_seen + page.total;
        is_first = false;
        cJSON *found = cJSON_CreateArray();
        const cJSON *r;
        cJSON_ArrayForEach(r, page.records)
        {
            char id18[19];
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "Id"));
            if (id && sf_id_to18(id, id18))
                add_found(found, id18,
                          cJSON_GetStringValue(cJSON_GetObjectItem(r, "SystemModstamp")));
        }
        if (last_id(found)) {
            cJSON_DeleteItemFromObjectCaseSensitive(cursor, "after");
            cJSON_AddStringToObject(cursor, "after", last_id(found));
        }
        rc = save_page(l->db, l->st, "Opportunity", found, cursor, l->is_forced);
        cJSON_Delete(found);
        free(next);
        next = page.next_url ? xstrdup(page.next_url) : NULL;
        sf_query_page_clear(&page);
        if (rc != ERR_OK)
            break;
        if (!next)
            break;
        report(l);
    }
    free(next);
    free(soql);
    return rc;
}

/* Makes sure every active opportunity record type has its HubSpot pipeline, so that the deals
 * of those pipelines can be listed before any opportunity of that type has synced. */
static enum err ensure_pipelines(struct lister *l)
{
    cJSON *types = NULL;
    enum err rc = sf_query(l->ctx->sf,
                           "SELECT Id FROM RecordType WHERE SobjectType = 'Opportunity'"
                           " AND IsActive = true ORDER BY Id",
                           &types);
    if (rc != ERR_OK)
        return rc;
    if (cJSON_GetArraySize(types) == 0) {
        cJSON *none = cJSON_CreateObject();
        cJSON_AddStringToObject(none, "Id", "");
        cJSON_AddItemToArray(types, none);
    }
    struct pipelines p = {0};
    p.sf = l->ctx->sf;
    p.hs = l->ctx->hs;
    p.db = l->db;
    p.describe = l->ctx->describe;
    p.limit = l->ctx->cfg->pipeline_limit;
    p.stage_values = mapping_values_of(l->ctx->mappings, "StageName");
    const cJSON *t;
    cJSON_ArrayForEach(t, types)
    {
        char id18[19] = "";
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "Id"));
        if (id && *id && !sf_id_to18(id, id18))
            continue;
        char *pipeline = NULL, *reason = NULL;
        cJSON *stages = NULL;
        enum err refusal = ERR_OK;
        rc = pipelines_resolve(&p, id18, NULL, &pipeline, &stages, &reason, &refusal);
        if (rc == ERR_OK && reason)
            log_warn("no pipeline for a record type: its deals are not imported",
                     LOG_STR("record_type_id", id18), LOG_STR("reason", reason),
                     LOG_STR("error", refusal == ERR_OK ? NULL : err_str(refusal)));
        free(pipeline);
        free(reason);
        cJSON_Delete(stages);
        if (rc != ERR_OK)
            break;
    }
    pipelines_clear(&p);
    cJSON_Delete(types);
    return rc;
}

static enum err synced_pipelines(PGconn *db, cJSON **out)
{
    PGresult *r = PQexec(db, "SELECT hs_pipeline_id FROM pipeline_map ORDER BY hs_pipeline_id");
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read the synced pipelines");
    if (rc == ERR_OK) {
        *out = cJSON_CreateArray();
        for (int i = 0; i < PQntuples(r); i++)
            cJSON_AddItemToArray(*out, cJSON_CreateString(PQgetvalue(r, i, 0)));
    }
    PQclear(r);
    return rc;
}

/* The deals of one pipeline after a deal id, by id. Every page is a new search that starts
 * after the last id seen, so no query ever pages past HubSpot's 10,000-result limit. */
static cJSON *deal_search(const char *pipeline, const char *after, int64_t since_ms)
{
    cJSON *req = cJSON_CreateObject();
    cJSON *group = cJSON_CreateObject();
    cJSON *filters = cJSON_AddArrayToObject(group, "filters");
    hs_search_filter(filters, "pipeline", "EQ", pipeline);
    hs_search_filter(filters, "hs_object_id", "GT", after);
    if (since_ms >= 0) {
        char since[32];
        since_param(since_ms, since);
        hs_search_filter(filters, "hs_lastmodifieddate", "GTE", since);
    }
    cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "filterGroups"), group);
    cJSON *sort = cJSON_CreateObject();
    cJSON_AddStringToObject(sort, "propertyName", "hs_object_id");
    cJSON_AddStringToObject(sort, "direction", "ASCENDING");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "sorts"), sort);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "properties"),
                         cJSON_CreateString("hs_lastmodifieddate"));
    cJSON_AddNumberToObject(req, "limit", HS_PAGE);
    return req;
}

static void set_cursor(cJSON *cursor, int pipeline, const char *after)
{
    cJSON_DeleteItemFromObjectCaseSensitive(cursor, "pipeline");
    cJSON_DeleteItemFromObjectCaseSensitive(cursor, "after");
    cJSON_AddNumberToObject(cursor, "pipeline", pipeline);
    cJSON_AddStringToObject(cursor, "after", after);
}

static enum err list_hubspot(struct lister *l, cJSON *cursor)
{
    enum err rc = ERR_OK;
    cJSON *pipelines = cJSON_GetObjectItemCaseSensitive(cursor, "pipelines");
    if (!cJSON_IsArray(pipelines)) {
        cJSON *found = NULL;
        rc = ensure_pipelines(l);
        if (rc == ERR_OK)
            rc = synced_pipelines(l->db, &found);
        if (rc != ERR_OK)
            return rc;
        cJSON_AddItemToObject(cursor, "pipelines", found);
        pipelines = found;
        set_cursor(cursor, 0, "0");
        if (l->st->total < 0)
            l->st->total = 0;
    }
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(cursor, "pipeline");
    int from = cJSON_IsNumber(at) ? at->valueint : 0;
    int64_t last_call = 0;
    for (int i = from; i < cJSON_GetArraySize(pipelines) && rc == ERR_OK && !l->st->is_stopped;
         i++) {
        const char *pipeline = cJSON_GetArrayItem(pipelines, i)->valuestring;
        const char *saved = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cursor, "after"));
        char *after = xstrdup(i == from && saved ? saved : "0");
        for (;;) {
            if (is_stop_requested(l))
                break;
            cJSON *req = deal_search(pipeline, after, l->since_ms);
            cJSON *results = NULL;
            char *next = NULL;
            long long total = -1;
            for (int attempt = 0;; attempt++) {
                sleep_ms(last_call + HS_SEARCH_GAP_MS - util_monotonic_ms());
                last_call = util_monotonic_ms();
                rc = hs_search_page(l->ctx->hs, "deals", req, NULL, &results, &next, &total);
                if (rc == ERR_OK || !should_retry(rc, attempt, hs_retry_after_ms(l->ctx->hs)))
                    break;
            }
            cJSON_Delete(req);
            free(next);
            if (rc != ERR_OK)
                break;
            if (strcmp(after, "0") == 0 && total > 0)
                l->st->total = (l->st->total < 0 ? 0 : l->st->total) + total;
            cJSON *found = cJSON_CreateArray();
            const cJSON *d;
            cJSON_ArrayForEach(d, results)
            {
                const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "id"));
                const cJSON *props = cJSON_GetObjectItem(d, "properties");
                if (id)
                    add_found(
                        found, id,
                        cJSON_GetStringValue(cJSON_GetObjectItem(props, "hs_lastmodifieddate")));
            }
            bool is_last = cJSON_GetArraySize(results) < HS_PAGE;
            cJSON_Delete(results);
            if (last_id(found)) {
                free(after);
                after = xstrdup(last_id(found));
            }
            if (is_last)
                set_cursor(cursor, i + 1, "0");
            else
                set_cursor(cursor, i, after);
            rc = save_page(l->db, l->st, "deal", found, cursor, l->is_forced);
            cJSON_Delete(found);
            if (rc != ERR_OK || is_last)
                break;
            report(l);
        }
        free(after);
    }
    return rc;
}

enum err import_side(struct sync_ctx *ctx, PGconn *db, const char *source, int64_t since_ms,
                     bool is_forced, const sigset_t *stop, import_page_fn on_page, void *arg,
                     struct import_state *st)
{
    bool is_sf = strcmp(source, "salesforce") == 0;
    memset(st, 0, sizeof(*st));
    st->source = is_sf ? "salesforce" : "hubspot";
    st->total = -1;
    if (!ctx->sf || (!is_sf && !ctx->hs)) {
        log_error("cannot import: the salesforce and hubspot apis must both be configured");
        return ERR_CONFIG;
    }
    bool is_on = false;
    enum err rc = sync_deals_enabled(db, &is_on);
    if (rc != ERR_OK)
        return rc;
    if (!is_on)
        return ERR_FORBIDDEN;
    cJSON *cursor = NULL;
    rc = run_open(db, st->source, since_ms, st, &cursor);
    if (rc != ERR_OK)
        return rc;
    struct lister l = {ctx, db, since_ms, is_forced, stop, on_page, arg, util_monotonic_ms(), st};
    log_info("import started", LOG_STR("source", st->source), LOG_I64("import_run", st->run_id),
             LOG_I64("pages_done", st->pages_done), LOG_I64("records_seen", st->records_seen));
    rc = is_sf ? list_salesforce(&l, cursor) : list_hubspot(&l, cursor);
    if (rc == ERR_OK && !st->is_stopped)
        rc = run_listed(db, st);
    report(&l);
    if (rc == ERR_OK && st->is_stopped)
        log_info("import stopped; run it again to continue", LOG_STR("source", st->source),
                 LOG_I64("import_run", st->run_id), LOG_I64("records", st->records_seen));
    else if (rc == ERR_OK)
        log_info("import listed", LOG_STR("source", st->source), LOG_I64("import_run", st->run_id),
                 LOG_I64("records", st->records_seen), LOG_I64("queued", st->records_queued),
                 LOG_I64("pages", st->pages_done));
    cJSON_Delete(cursor);
    return rc;
}

/* ---- The commands -------------------------------------------------------------------------- */

#define EX_USAGE 64

/* How the command shows progress: a bar on a terminal, else one log line per page. */
struct progress {
    bool is_tty;
};

static void format_duration(int64_t ms, char out[32])
{
    long long s = (long long)(ms / 1000);
    if (s >= 3600)
        snprintf(out, 32, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else if (s >= 60)
        snprintf(out, 32, "%lldm%02llds", s / 60, s % 60);
    else
        snprintf(out, 32, "%llds", s);
}

/* "label [#######.......] done/total  rate/s  time left" on stderr, redrawn in place. */
static void draw_bar(const char *label, long long done, long long total, int64_t elapsed_ms,
                     bool is_final)
{
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int filled = total > 0 ? (int)(WIDTH * (done > total ? total : done) / total) : 0;
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    double rate = elapsed_ms > 0 ? (double)done * 1000.0 / (double)elapsed_ms : 0.0;
    char left[32] = "?";
    if (total >= 0 && rate > 0)
        format_duration((int64_t)((double)(total - done) / rate * 1000.0), left);
    char total_text[32] = "?";
    if (total >= 0)
        snprintf(total_text, sizeof(total_text), "%lld", total);
    fprintf(stderr, "\r%-20s [%s] %lld/%s  %.0f/s  %s left   %s", label, bar, done, total_text,
            rate, is_final ? "0s" : left, is_final ? "\n" : "");
    fflush(stderr);
}

static void on_page(const struct import_state *st, int64_t elapsed_ms, void *arg)
{
    const struct progress *p = arg;
    if (p->is_tty) {
        char label[32];
        snprintf(label, sizeof(label), "%s listed", st->source);
        draw_bar(label, st->records_seen, st->total, elapsed_ms, st->is_listed || st->is_stopped);
        return;
    }
    log_info("import page", LOG_STR("source", st->source), LOG_I64("import_run", st->run_id),
             LOG_I64("pages_done", st->pages_done), LOG_I64("records_seen", st->records_seen),
             LOG_I64("total", st->total), LOG_I64("records_queued", st->records_queued),
             LOG_I64("elapsed_ms", elapsed_ms));
}

static bool parse_since(const char *text, int64_t *ms)
{
    return util_parse_iso8601_ms(text, ms);
}

/* Counts of a run's events by state: synced (done), failed (dead), waiting (pending, running). */
struct run_counts {
    long long synced;
    long long failed;
    long long waiting;
};

static enum err count_runs(PGconn *db, const char *run_ids, struct run_counts *c)
{
    const char *params[] = {run_ids};
    PGresult *r = PQexecParams(
        db,
        "SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'dead'),"
        " count(*) FILTER (WHERE status IN ('pending', 'running'))"
        " FROM sync_event WHERE event_type = 'import'"
        "  AND (payload->>'import_run')::bigint = ANY($1::bigint[])",
        1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot count import events");
    if (rc == ERR_OK) {
        c->synced = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        c->failed = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        c->waiting = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    }
    PQclear(r);
    return rc;
}

/* --wait: until the workers have finished every record the runs queued. */
static int wait_for_sync(PGconn *db, const char *run_ids, const struct progress *p,
                         const sigset_t *signals)
{
    int64_t started = util_monotonic_ms();
    int64_t last_log = 0;
    struct timespec zero = {0, 0};
    for (;;) {
        struct run_counts c = {0};
        if (count_runs(db, run_ids, &c) != ERR_OK)
            return 1;
        long long total = c.synced + c.failed + c.waiting;
        bool is_done = c.waiting == 0;
        int64_t now = util_monotonic_ms();
        if (p->is_tty)
            draw_bar("synced", c.synced + c.failed, total, now - started, is_done);
        else if (is_done || now - last_log >= 5000) {
            log_info("import progress", LOG_I64("synced", c.synced), LOG_I64("failed", c.failed),
                     LOG_I64("waiting", c.waiting), LOG_I64("elapsed_ms", now - started));
            last_log = now;
        }
        if (is_done) {
            printf("synced %lld, failed %lld (dealsync import --status)\n", c.synced, c.failed);
            return c.failed > 0 ? 1 : 0;
        }
        int sig = signals ? sigtimedwait(signals, NULL, &zero) : -1;
        if (sig == SIGINT || sig == SIGTERM) {
            if (p->is_tty)
                fputc('\n', stderr);
            return 1;
        }
        sleep_ms(500);
    }
}

static int print_status(PGconn *db)
{
    PGresult *r = PQexec(
        db, "SELECT i.id, i.source, coalesce(to_char(i.since AT TIME ZONE 'UTC',"
            "   'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'), i.status, i.pages_done, i.records_seen,"
            " coalesce(i.total::text, '?'), i.records_queued,"
            " count(e.id) FILTER (WHERE e.status = 'done'),"
            " count(e.id) FILTER (WHERE e.status = 'dead'),"
            " count(e.id) FILTER (WHERE e.status IN ('pending', 'running')),"
            " to_char(i.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            " FROM import_run i LEFT JOIN sync_event e ON e.event_type = 'import'"
            "  AND e.source = i.source AND (e.payload->>'import_run')::bigint = i.id"
            " GROUP BY i.id ORDER BY i.id");
    int status = 1;
    if (db_check(db, r, PGRES_TUPLES_OK, "cannot read the imports") == ERR_OK) {
        printf("%-4s %-10s %-20s %-8s %6s %15s %8s %8s %7s %8s  %s\n", "id", "source", "since",
               "state", "pages", "listed/total", "queued", "synced", "failed", "waiting",
               "started");
        for (int i = 0; i < PQntuples(r); i++) {
            char listed[48];
            snprintf(listed, sizeof(listed), "%s/%s", PQgetvalue(r, i, 5), PQgetvalue(r, i, 6));
            printf("%-4s %-10s %-20s %-8s %6s %15s %8s %8s %7s %8s  %s\n", PQgetvalue(r, i, 0),
                   PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                   PQgetvalue(r, i, 4), listed, PQgetvalue(r, i, 7), PQgetvalue(r, i, 8),
                   PQgetvalue(r, i, 9), PQgetvalue(r, i, 10), PQgetvalue(r, i, 11));
        }
        if (PQntuples(r) == 0)
            printf("no import yet\n");
        status = 0;
    }
    PQclear(r);
    return status;
}

static const char refused[] =
    "the Sync deals switch is off; HubSpot's rule is that it must be on before opportunities "
    "are imported: turn it on with `dealsync settings sync-deals on`";

/* Imports the sides in order (Salesforce first: its opportunities make the pipelines the
 * HubSpot side lists). Prints one line per side; returns the exit status. */
static int import_sides(const struct config *cfg, const struct mapping_set *mappings, PGconn *db,
                        const char *const *sides, int64_t since_ms, bool is_wait,
                        const char *command, const sigset_t *signals)
{
    bool is_forced = strcmp(command, "resync") == 0; /* resync queues even what is in sync */
    struct sync_shared shared = {cfg, mappings};
    struct sync_ctx *ctx = sync_ctx_new(cfg, &shared);
    struct progress p = {isatty(STDERR_FILENO) == 1};
    struct buf runs;
    buf_init(&runs, 0);
    buf_append_str(&runs, "{");
    int status = 0;
    bool is_stopped = false;
    for (size_t i = 0; sides[i] && status == 0 && !is_stopped; i++) {
        struct import_state st;
        enum err rc =
            import_side(ctx, db, sides[i], since_ms, is_forced, signals, on_page, &p, &st);
        if (rc == ERR_FORBIDDEN) {
            fprintf(stderr, "dealsync %s: refused: %s\n", command, refused);
            status = 1;
        } else if (rc != ERR_OK) {
            fprintf(stderr,
                    "dealsync %s: %s import stopped after %lld records (%s); run the same "
                    "command again to continue\n",
                    command, sides[i], st.records_seen, err_str(rc));
            status = 1;
        } else {
            printf("%s: import %lld %s %lld records in %d pages, %lld queued (the others were "
                   "in sync)\n",
                   st.source, (long long)st.run_id, st.is_stopped ? "stopped after" : "listed",
                   st.records_seen, st.pages_done, st.records_queued);
            buf_printf(&runs, "%s%lld", runs.len > 1 ? "," : "", (long long)st.run_id);
            is_stopped = st.is_stopped;
        }
    }
    buf_append_str(&runs, "}");
    if (status == 0 && is_stopped)
        status = 1;
    else if (status == 0 && is_wait)
        status = wait_for_sync(db, runs.data, &p, signals);
    else if (status == 0)
        printf("the workers sync them now: follow with `dealsync import --status`\n");
    buf_clear(&runs);
    sync_ctx_free(ctx);
    return status;
}

int import_main(const struct config *cfg, const struct mapping_set *mappings, int argc, char **argv,
                const sigset_t *signals)
{
    static const char *const both[] = {"salesforce", "hubspot", NULL};
    static const char *const sf_only[] = {"salesforce", NULL};
    static const char *const hs_only[] = {"hubspot", NULL};
    const char *const *sides = both;
    int64_t since_ms = -1;
    bool is_status = false, is_wait = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "salesforce") == 0)
            sides = sf_only;
        else if (strcmp(argv[i], "hubspot") == 0)
            sides = hs_only;
        else if (strcmp(argv[i], "both") == 0)
            sides = both;
        else if (strcmp(argv[i], "--status") == 0)
            is_status = true;
        else if (strcmp(argv[i], "--wait") == 0)
            is_wait = true;
        else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc &&
                 parse_since(argv[i + 1], &since_ms))
            i++;
        else {
            fprintf(stderr, "usage: dealsync import [salesforce|hubspot|both] [--since ISO-DATE]"
                            " [--wait]\n       dealsync import --status\n");
            return EX_USAGE;
        }
    }
    PGconn *db = NULL;
    if (db_open(cfg->database_url, &db) != ERR_OK)
        return 1;
    int status = is_status
                     ? print_status(db)
                     : import_sides(cfg, mappings, db, sides, since_ms, is_wait, "import", signals);
    PQfinish(db);
    return status;
}

/* Queues one background-free (live) resync event per named record: a person asked for it. */
static int resync_records(PGconn *db, const char *source, const char *object_type, char **ids,
                          int n)
{
    struct queue_event_in *evs = xcalloc((size_t)n + 1, sizeof(*evs));
    char **keys = xcalloc((size_t)n + 1, sizeof(char *));
    char(*norm)[32] = xcalloc((size_t)n + 1, sizeof(*norm));
    cJSON *payload = cJSON_CreateObject();
    int64_t now = util_now_ms();
    int status = 0;
    for (int i = 0; i < n; i++) {
        int64_t v;
        bool is_sf = strcmp(source, "salesforce") == 0;
        if (is_sf ? !sf_id_to18(ids[i], norm[i])
                  : !(util_parse_i64(ids[i], &v) && v > 0 &&
                      snprintf(norm[i], sizeof(norm[i]), "%lld", (long long)v) > 0)) {
            fprintf(stderr, "dealsync resync: '%s' is not a %s id\n", ids[i],
                    is_sf ? "salesforce opportunity" : "hubspot deal");
            status = EX_USAGE;
            goto out;
        }
        keys[i] = xasprintf("resync:%lld:%s", (long long)now, norm[i]);
        evs[i] = (struct queue_event_in){source,   keys[i], object_type, norm[i],
                                         "resync", now,     payload,     QUEUE_PRIORITY_LIVE};
    }
    size_t stored = 0;
    if (queue_push(db, evs, (size_t)n, &stored) != ERR_OK) {
        status = 1;
        goto out;
    }
    for (int i = 0; i < n; i++)
        printf("queued %s %s\n", strcmp(source, "salesforce") == 0 ? "opportunity" : "deal",
               norm[i]);
out:
    for (int i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(norm);
    free(evs);
    cJSON_Delete(payload);
    return status;
}

int resync_main(const struct config *cfg, const struct mapping_set *mappings, int argc, char **argv,
                const sigset_t *signals)
{
    static const char usage[] =
        "usage: dealsync resync --opportunity ID... | --deal ID... | --dead | --since ISO-DATE\n";
    int64_t since_ms = -1;
    if (argc < 2 || (strcmp(argv[1], "--dead") == 0 && argc != 2) ||
        (strcmp(argv[1], "--since") == 0 && (argc != 3 || !parse_since(argv[2], &since_ms))) ||
        ((strcmp(argv[1], "--opportunity") == 0 || strcmp(argv[1], "--deal") == 0) && argc < 3)) {
        fputs(usage, stderr);
        return EX_USAGE;
    }
    PGconn *db = NULL;
    if (db_open(cfg->database_url, &db) != ERR_OK)
        return 1;
    int status;
    if (strcmp(argv[1], "--opportunity") == 0) {
        status = resync_records(db, "salesforce", "Opportunity", argv + 2, argc - 2);
    } else if (strcmp(argv[1], "--deal") == 0) {
        status = resync_records(db, "hubspot", "deal", argv + 2, argc - 2);
    } else if (strcmp(argv[1], "--dead") == 0) {
        long long moved = 0;
        status = queue_requeue_dead(db, NULL, 0, &moved) == ERR_OK ? 0 : 1;
        if (status == 0)
            printf("queued %lld dead event%s again\n", moved, moved == 1 ? "" : "s");
    } else if (strcmp(argv[1], "--since") == 0) {
        static const char *const both[] = {"salesforce", "hubspot", NULL};
        status = import_sides(cfg, mappings, db, both, since_ms, false, "resync", signals);
    } else {
        fputs(usage, stderr);
        status = EX_USAGE;
    }
    PQfinish(db);
    return status;
}

int requeue_main(const struct config *cfg, int argc, char **argv)
{
    int64_t *ids = xcalloc((size_t)argc + 1, sizeof(int64_t));
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        if (!util_parse_i64(argv[i], &ids[n]) || ids[n] <= 0) {
            fprintf(stderr, "dealsync requeue: '%s' is not an event id\n", argv[i]);
            free(ids);
            return EX_USAGE;
        }
        n++;
    }
    PGconn *db = NULL;
    int status = 1;
    if (db_open(cfg->database_url, &db) != ERR_OK)
        goto out;
    if (n > 0) {
        /* Say which named ids cannot be requeued before requeuing the others. */
        struct buf list;
        buf_init(&list, 0);
        buf_append_str(&list, "{");
        for (size_t i = 0; i < n; i++)
            buf_printf(&list, "%s%lld", i ? "," : "", (long long)ids[i]);
        buf_append_str(&list, "}");
        const char *params[] = {list.data};
        PGresult *r = PQexecParams(
            db,
            "SELECT u.id, e.status FROM unnest($1::bigint[]) AS u(id)"
            " LEFT JOIN sync_event e ON e.id = u.id WHERE e.status IS DISTINCT FROM 'dead'",
            1, NULL, params, NULL, NULL, 0);
        buf_clear(&list);
        if (db_check(db, r, PGRES_TUPLES_OK, "cannot read events") != ERR_OK) {
            PQclear(r);
            goto out;
        }
        for (int i = 0; i < PQntuples(r); i++) {
            if (PQgetisnull(r, i, 1))
                fprintf(stderr, "dealsync requeue: no event %s\n", PQgetvalue(r, i, 0));
            else
                fprintf(stderr, "dealsync requeue: event %s is %s, not dead\n", PQgetvalue(r, i, 0),
                        PQgetvalue(r, i, 1));
        }
        bool is_clean = PQntuples(r) == 0;
        PQclear(r);
        if (!is_clean)
            goto out;
    }
    long long moved = 0;
    if (queue_requeue_dead(db, ids, n, &moved) == ERR_OK) {
        log_info("dead events requeued", LOG_I64("events", moved));
        printf("requeued %lld dead event%s\n", moved, moved == 1 ? "" : "s");
        status = 0;
    }
out:
    PQfinish(db);
    free(ids);
    return status;
}
