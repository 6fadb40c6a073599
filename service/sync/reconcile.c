/* reconcile.c - periodic sweeps of both sides for changes no webhook or outbound message
 * reported, and the automatic retry of transiently dead events. A sweep only queues; the
 * workers sync with the usual handlers. A record unchanged since dealsync synced it is not even
 * queued, so it costs no write and no read beyond its line in the sweep's listing. */
#include "reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "link.h"
#include "log.h"
#include "sf_id.h"
#include "sync.h"
#include "sync_state.h"
#include "util.h"

/* HubSpot's search may not see a deal for a few moments after it changed: the next sweep starts
 * this much before the last one ended (the overlap is filtered out by record_link). */
#define SEARCH_LAG_MS 60000LL
#define HS_PAGE 200
/* The search API pages up to 10,000 results; past that a new search starts at the last time. */
#define HS_SEARCH_RESULTS_MAX 10000

/* A Salesforce change this close to dealsync's own sync of the record counts as a change: the
 * link's sf_modified_at may be dealsync's clock (after its write) rather than Salesforce's, and
 * a user's edit right after dealsync's write must not pass for the write's echo. Costs at most
 * one read per write. The link's hs_modified_at is always HubSpot's own time (the
 * hs_lastmodifieddate dealsync read, or the updatedAt of its write), in milliseconds: a HubSpot
 * change counts when it is later, so dealsync's own writes are not read again. */
#define SAME_TIME_S 5
/* A sweep's first window reaches back to when sync deals was switched on, at most this far. */
#define FIRST_WINDOW_MS (15 * 60 * 1000LL)

enum err reconcile_queue(PGconn *db, const struct reconcile_batch *b, long long *queued)
{
    bool is_sf = strcmp(b->source, "salesforce") == 0;
    char *json = cJSON_PrintUnformatted(b->found);
    char *payload = b->payload ? cJSON_PrintUnformatted(b->payload) : xstrdup("{}");
    const char *params[] = {json, b->source, b->object_type, b->event_type, b->key_prefix, payload};
    const char *side = is_sf ? "sf" : "hs";
    char *sql = xasprintf(
        "WITH found AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(id text, ms bigint)),"
        " changed AS (SELECT f.id, f.ms FROM found f LEFT JOIN record_link l"
        "   ON l.kind = 'opportunity' AND l.%s_id = f.id"
        "  WHERE %s OR l.%s_id IS NULL OR l.%s_modified_at IS NULL OR f.ms IS NULL"
        "     OR l.%s_modified_at < to_timestamp(f.ms / 1000.0) + make_interval(secs => %d)),"
        " rec AS (INSERT INTO sync_record (source, object_type, record_id, priority)"
        "  SELECT DISTINCT $2, $3, id, %d FROM changed ORDER BY 3"
        "  ON CONFLICT (source, object_type, record_id) DO UPDATE SET priority ="
        "    CASE WHEN sync_record.open_events > 0"
        "         THEN least(sync_record.priority, EXCLUDED.priority) ELSE EXCLUDED.priority END),"
        " ins AS (INSERT INTO sync_event (source, dedup_key, object_type, record_id, event_type,"
        "   occurred_at, payload, priority)"
        "  SELECT $2, $5 || id || %s, $3, id, $4, coalesce(to_timestamp(ms / 1000.0), now()),"
        "   $6::jsonb, %d FROM changed"
        "  ON CONFLICT (source, dedup_key) DO NOTHING RETURNING 1)"
        " SELECT (SELECT count(*) FROM ins), pg_notify('" QUEUE_NOTIFY_CHANNEL "', '')",
        side, b->is_forced ? "true" : "false", side, side, side, is_sf ? SAME_TIME_S : 0,
        QUEUE_PRIORITY_BACKGROUND, b->is_key_timed ? "':' || coalesce(ms, 0)" : "''",
        QUEUE_PRIORITY_BACKGROUND);
    PGresult *r = PQexecParams(db, sql, 6, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot queue records");
    if (rc == ERR_OK)
        *queued += strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    free(sql);
    free(payload);
    free(json);
    return rc;
}

/* A sweep's findings, as "reconcile" events keyed by (id, time): each change queued once
 * however often a sweep sees it. */
static enum err queue_changed(PGconn *db, const char *source, const char *object_type,
                              const cJSON *found, long long *queued)
{
    struct reconcile_batch b = {source,       object_type, found, "reconcile",
                                "reconcile:", true,        false, NULL};
    return reconcile_queue(db, &b, queued);
}

static void add_found(cJSON *found, const char *id, int64_t ms)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "id", id);
    cJSON_AddNumberToObject(f, "ms", (double)ms);
    cJSON_AddItemToArray(found, f);
}

static void sweep_salesforce(struct sync_ctx *ctx, PGconn *db, int64_t now)
{
    bool is_turn = false;
    int64_t from = 0;
    if (poll_take_turn(db, RECONCILE_SALESFORCE, ctx->cfg->reconcile_interval_seconds,
                       poll_first_window_from(db, now, FIRST_WINDOW_MS), &is_turn,
                       &from) != ERR_OK ||
        !is_turn)
        return;
    /* SOQL datetimes have whole seconds; >= repeats the watermark's second, which the link
     * comparison and the dedup key make free. */
    char since[UTIL_ISO8601_LEN];
    util_format_iso8601_ms(from - ((from % 1000) + 1000) % 1000, since);
    memcpy(since + 19, "Z", 2);
    char *soql = xasprintf("SELECT Id, SystemModstamp FROM Opportunity"
                           " WHERE SystemModstamp >= %s ORDER BY SystemModstamp",
                           since);
    cJSON *rows = NULL;
    enum err rc = sf_query(ctx->sf, soql, &rows);
    free(soql);
    if (rc != ERR_OK) {
        log_warn("cannot sweep salesforce", LOG_STR("error", err_str(rc)));
        return;
    }
    cJSON *found = cJSON_CreateArray();
    int64_t latest = from;
    const cJSON *r;
    cJSON_ArrayForEach(r, rows)
    {
        char id18[19];
        int64_t ms = 0;
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(r, "Id"));
        const char *stamp = cJSON_GetStringValue(cJSON_GetObjectItem(r, "SystemModstamp"));
        if (!id || !sf_id_to18(id, id18) || !stamp || !sf_datetime_parse(stamp, &ms))
            continue;
        add_found(found, id18, ms);
        if (ms > latest)
            latest = ms;
    }
    long long queued = 0;
    rc = cJSON_GetArraySize(found) ? queue_changed(db, "salesforce", "Opportunity", found, &queued)
                                   : ERR_OK;
    if (rc == ERR_OK && latest > from)
        rc = poll_advance(db, RECONCILE_SALESFORCE, latest);
    if (rc == ERR_OK)
        log_info("salesforce swept", LOG_I64("changed", cJSON_GetArraySize(found)),
                 LOG_I64("queued", queued));
    cJSON_Delete(found);
    cJSON_Delete(rows);
}

static cJSON *changed_deals_search(const char *pipeline, int64_t from)
{
    char from_s[32];
    snprintf(from_s, sizeof(from_s), "%lld", (long long)from);
    cJSON *req = cJSON_CreateObject();
    cJSON *group = cJSON_CreateObject();
    cJSON *filters = cJSON_AddArrayToObject(group, "filters");
    hs_search_filter(filters, "pipeline", "EQ", pipeline);
    hs_search_filter(filters, "hs_lastmodifieddate", "GTE", from_s);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "filterGroups"), group);
    cJSON *sort = cJSON_CreateObject();
    cJSON_AddStringToObject(sort, "propertyName", "hs_lastmodifieddate");
    cJSON_AddStringToObject(sort, "direction", "ASCENDING");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "sorts"), sort);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "properties"),
                         cJSON_CreateString("hs_lastmodifieddate"));
    cJSON_AddNumberToObject(req, "limit", HS_PAGE);
    return req;
}

/* The deals of one pipeline changed since from, into found; *latest is the newest time seen. */
static enum err changed_deals(struct sync_ctx *ctx, const char *pipeline, int64_t from,
                              cJSON *found, int64_t *latest)
{
    enum err rc = ERR_OK;
    char *after = NULL;
    int seen = 0;
    for (;;) {
        cJSON *req = changed_deals_search(pipeline, from);
        cJSON *results = NULL;
        char *next = NULL;
        rc = hs_search(ctx->hs, "deals", req, after, &results, &next);
        cJSON_Delete(req);
        free(after);
        after = NULL;
        if (rc != ERR_OK)
            break;
        const cJSON *d;
        cJSON_ArrayForEach(d, results)
        {
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(d, "id"));
            const char *stamp = cJSON_GetStringValue(
                cJSON_GetObjectItem(cJSON_GetObjectItem(d, "properties"), "hs_lastmodifieddate"));
            int64_t ms = 0;
            if (!id || !stamp || !util_parse_iso8601_ms(stamp, &ms))
                continue;
            add_found(found, id, ms);
            if (ms > *latest)
                *latest = ms;
        }
        seen += cJSON_GetArraySize(results);
        cJSON_Delete(results);
        if (!next) {
            break;
        } else if (seen + HS_PAGE > HS_SEARCH_RESULTS_MAX) {
            /* The next page would pass the search limit: search again from the newest time. */
            free(next);
            from = *latest;
            seen = 0;
        } else {
            after = next;
        }
    }
    free(after);
    return rc;
}

static bool is_listed(const PGresult *pipelines, const char *pipeline)
{
    for (int i = 0; pipeline && i < PQntuples(pipelines); i++)
        if (strcmp(PQgetvalue(pipelines, i, 0), pipeline) == 0)
            return true;
    return false;
}

/* Linked deals read by id in one go once a range of them is this small; a larger range whose
 * count differs is halved (two count searches cost less than the batch reads they can save). */
#define READ_AT_MOST 200

/* The linked deals of one range read by id (one batch read per 100): into found go those
 * HubSpot no longer returns (deleted: search never returns archived deals, so a lost
 * deal.deletion webhook was missed for good) with the sweep's time, and those now in a pipeline
 * that is not synced (moved out: the pipeline search no longer finds them) with their
 * modification time. The deal handler then does what the lost webhook would have made it do. */
static enum err read_linked(struct sync_ctx *ctx, const PGresult *pipelines, const char **ids,
                            size_t n, int64_t now, cJSON *found)
{
    struct hs_batch_result res = {0};
    enum err rc =
        hs_batch_read(ctx->hs, "deals", NULL, "pipeline,hs_lastmodifieddate", ids, n, &res);
    for (size_t i = 0; rc == ERR_OK && i < n; i++) {
        const cJSON *deal = NULL, *d;
        cJSON_ArrayForEach(d, res.results)
        {
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(d, "id"));
            if (!deal && id && strcmp(id, ids[i]) == 0)
                deal = d;
        }
        const cJSON *props = cJSON_GetObjectItem(deal, "properties");
        const char *stamp = cJSON_GetStringValue(cJSON_GetObjectItem(props, "hs_lastmodifieddate"));
        int64_t ms = 0;
        if (!deal)
            add_found(found, ids[i], now);
        else if (!is_listed(pipelines,
                            cJSON_GetStringValue(cJSON_GetObjectItem(props, "pipeline"))) &&
                 stamp && util_parse_iso8601_ms(stamp, &ms))
            add_found(found, ids[i], ms);
    }
    hs_batch_result_clear(&res);
    return rc;
}

/* How many deals HubSpot holds with an id from lo to hi (numerically), in a synced pipeline and
 * holding an opportunity id (as every deal dealsync links does): one search for its total. */
static enum err count_deals(struct sync_ctx *ctx, const PGresult *pipelines, const char *lo,
                            const char *hi, long long *total)
{
    cJSON *group = cJSON_CreateObject();
    cJSON *filters = cJSON_AddArrayToObject(group, "filters");
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "propertyName", "pipeline");
    cJSON_AddStringToObject(in, "operator", "IN");
    cJSON *values = cJSON_AddArrayToObject(in, "values");
    for (int i = 0; i < PQntuples(pipelines); i++)
        cJSON_AddItemToArray(values, cJSON_CreateString(PQgetvalue(pipelines, i, 0)));
    cJSON_AddItemToArray(filters, in);
    hs_search_filter(filters, ctx->cfg->hs_opportunity_id_property, "HAS_PROPERTY", NULL);
    hs_search_filter(filters, "hs_object_id", "GTE", lo);
    hs_search_filter(filters, "hs_object_id", "LTE", hi);
    enum err rc = hs_search_count(ctx->hs, "deals", group, total);
    cJSON_Delete(group);
    return rc;
}

/* The linked deals ids[0..n) (ordered by number): when HubSpot counts as many deals in their
 * range as dealsync has linked there, none of them is gone and none moved out, and nothing is
 * read; otherwise the range is halved until it is small enough to read by id. A range whose
 * count HubSpot does not give is read. */
static enum err check_range(struct sync_ctx *ctx, const PGresult *pipelines, const char **ids,
                            size_t n, int64_t now, cJSON *found)
{
    long long total = -1;
    enum err rc = count_deals(ctx, pipelines, ids[0], ids[n - 1], &total);
    if (rc != ERR_OK || total == (long long)n)
        return rc;
    if (n <= READ_AT_MOST)
        return read_linked(ctx, pipelines, ids, n, now, found);
    size_t half = n / 2;
    rc = check_range(ctx, pipelines, ids, half, now, found);
    if (rc == ERR_OK)
        rc = check_range(ctx, pipelines, ids + half, n - half, now, found);
    return rc;
}

/* What a search of changed deals cannot see, a deal deleted or moved out of the synced
 * pipelines, found by counting rather than by reading every linked deal: one search when
 * nothing is missing, a few more and one or two batch reads per missing deal. */
static enum err check_linked_deals(struct sync_ctx *ctx, PGconn *db, const PGresult *pipelines,
                                   int64_t now, cJSON *found)
{
    PGresult *r = PQexec(db, "SELECT hs_id, hs_id ~ '^[0-9]{1,18}$' FROM record_link"
                             " WHERE kind = '" LINK_OPPORTUNITY "' AND hs_id IS NOT NULL"
                             " ORDER BY hs_id ~ '^[0-9]{1,18}$', length(hs_id), hs_id");
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read the linked deals");
    if (rc != ERR_OK || PQntuples(r) == 0) {
        PQclear(r);
        return rc;
    }
    size_t n = (size_t)PQntuples(r), odd = 0;
    const char **ids = xcalloc(n, sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        ids[i] = PQgetvalue(r, (int)i, 0);
        odd += strcmp(PQgetvalue(r, (int)i, 1), "t") != 0;
    }
    /* An id that is not a number (no HubSpot deal has one) cannot be counted: it is read; with
     * no synced pipeline left, every linked deal is. */
    if (PQntuples(pipelines) == 0)
        odd = n;
    if (odd > 0)
        rc = read_linked(ctx, pipelines, ids, odd, now, found);
    if (rc == ERR_OK && n > odd)
        rc = check_range(ctx, pipelines, ids + odd, n - odd, now, found);
    free(ids);
    PQclear(r);
    return rc;
}

static void sweep_hubspot(struct sync_ctx *ctx, PGconn *db, int64_t now)
{
    bool is_turn = false;
    int64_t from = 0;
    if (poll_take_turn(db, RECONCILE_HUBSPOT, ctx->cfg->reconcile_interval_seconds,
                       poll_first_window_from(db, now, FIRST_WINDOW_MS), &is_turn,
                       &from) != ERR_OK ||
        !is_turn)
        return;
    PGresult *r = PQexec(db, "SELECT hs_pipeline_id FROM pipeline_map ORDER BY hs_pipeline_id");
    if (db_check(db, r, PGRES_TUPLES_OK, "cannot read the synced pipelines") != ERR_OK) {
        PQclear(r);
        return;
    }
    cJSON *found = cJSON_CreateArray();
    int64_t latest = from;
    enum err rc = ERR_OK;
    for (int i = 0; i < PQntuples(r) && rc == ERR_OK; i++)
        rc = changed_deals(ctx, PQgetvalue(r, i, 0), from, found, &latest);
    if (rc == ERR_OK)
        rc = check_linked_deals(ctx, db, r, now, found);
    PQclear(r);
    long long queued = 0;
    if (rc == ERR_OK && cJSON_GetArraySize(found) > 0)
        rc = queue_changed(db, "hubspot", "deal", found, &queued);
    /* The next sweep starts before the search's lag, never after what was seen. */
    int64_t next = latest < now - SEARCH_LAG_MS ? latest : now - SEARCH_LAG_MS;
    if (rc == ERR_OK && next > from)
        rc = poll_advance(db, RECONCILE_HUBSPOT, next);
    if (rc == ERR_OK)
        log_info("hubspot swept", LOG_I64("changed", cJSON_GetArraySize(found)),
                 LOG_I64("queued", queued));
    else
        log_warn("cannot sweep hubspot", LOG_STR("error", err_str(rc)));
    cJSON_Delete(found);
}

/* Transiently dead events get one more attempt each interval (attempts one short of the
 * maximum), as HubSpot retries records in error every 30 minutes. The statement is the queue's
 * (queue_retry_transient_dead): it locks their records in key order, as every statement that
 * changes several records does. */
static void retry_dead(struct sync_ctx *ctx, PGconn *db, int64_t now)
{
    bool is_turn = false;
    int64_t from = 0;
    if (poll_take_turn(db, RECONCILE_DEAD_RETRY, ctx->cfg->dead_retry_interval_seconds, now,
                       &is_turn, &from) != ERR_OK ||
        !is_turn)
        return;
    long long retried = 0;
    if (queue_retry_transient_dead(db, &retried) == ERR_OK && retried > 0)
        log_info("transiently dead events retried", LOG_I64("events", retried));
}

void reconcile_tick(void *vctx, PGconn *db)
{
    struct sync_ctx *ctx = vctx;
    if (!ctx)
        return;
    int64_t now = util_now_ms();
    if (ctx->cfg->dead_retry_interval_seconds > 0)
        retry_dead(ctx, db, now);
    if (ctx->cfg->reconcile_interval_seconds <= 0 || !ctx->sf || !ctx->hs)
        return;
    sweep_salesforce(ctx, db, now);
    sweep_hubspot(ctx, db, now);
}

enum err reconcile_request_now(PGconn *db)
{
    PGresult *r = PQexec(
        db, "UPDATE poll_watermark SET last_run_at = NULL WHERE name IN ('" RECONCILE_SALESFORCE
            "', '" RECONCILE_HUBSPOT "')");
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot request a sweep");
    PQclear(r);
    return rc;
}
