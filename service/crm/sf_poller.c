/* sf_poller.c - polls Salesforce for deleted opportunities and changed contact roles and turns
 * them into queue events (event_type "deleted" / "contact_role_changed"). The handler reads the
 * opportunity's current state anyway, so an event only says "look at this record again". */
#include "sf_poller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contact_rollups.h"
#include "db.h"
#include "log.h"
#include "queue.h"
#include "sf_id.h"
#include "soql.h"
#include "sync.h"
#include "sync_state.h"
#include "util.h"

/* A first run looks this far back: deleting the deal of an opportunity deleted a few minutes
 * before dealsync started is what the operator wants, and costs nothing when there is none. */
#define FIRST_WINDOW_MS (15 * 60 * 1000LL)
#define MINUTE_MS 60000LL

static enum err push(PGconn *db, const char *opp_id, const char *event_type, const char *key,
                     int64_t at_ms, const cJSON *payload, size_t *stored)
{
    char id18[19];
    if (!sf_id_to18(opp_id, id18))
        return ERR_OK;
    struct queue_event_in ev = {0};
    ev.source = "salesforce";
    ev.dedup_key = key;
    ev.object_type = "Opportunity";
    ev.record_id = id18;
    ev.event_type = event_type;
    ev.occurred_at_ms = at_ms;
    ev.payload = payload;
    size_t n = 0;
    enum err rc = queue_push(db, &ev, 1, &n);
    *stored += n;
    return rc;
}

/* Linked opportunity ids per queryAll: 200 ids keep the query URL short. */
#define GAP_BATCH 200

/* Queues a "deleted" event for each id of ids that queryAll says is deleted, or does not return
 * at all (purged from the recycle bin). */
static enum err push_gone(struct sync_ctx *ctx, PGconn *db, const cJSON *ids, int64_t now,
                          size_t *stored)
{
    struct buf q;
    buf_init(&q, 0);
    buf_append_str(&q, "SELECT Id, IsDeleted FROM Opportunity WHERE Id IN ");
    soql_append_in(&q, ids);
    cJSON *rows = NULL;
    enum err rc = sf_query_all(ctx->sf, q.data, &rows);
    buf_clear(&q);
    if (rc != ERR_OK)
        return rc;
    const cJSON *id;
    cJSON_ArrayForEach(id, ids)
    {
        bool is_gone = true;
        const cJSON *r;
        cJSON_ArrayForEach(r, rows)
        {
            const char *rid = cJSON_GetStringValue(cJSON_GetObjectItem(r, "Id"));
            if (rid && sf_id_equal(rid, id->valuestring))
                is_gone = cJSON_IsTrue(cJSON_GetObjectItem(r, "IsDeleted"));
        }
        if (!is_gone)
            continue;
        char *key = xasprintf("deleted:%s:gap", id->valuestring);
        rc = push(db, id->valuestring, "deleted", key, now, id, stored);
        free(key);
        if (rc != ERR_OK)
            break;
    }
    cJSON_Delete(rows);
    return rc;
}

/* getDeleted refused the window (dealsync was away longer than Salesforce keeps its delete
 * log): every opportunity dealsync has linked is looked up with queryAll instead, so a delete
 * made during the gap still reaches HubSpot and the poller moves on. */
static enum err sweep_linked(struct sync_ctx *ctx, PGconn *db, int64_t now, size_t *stored)
{
    PGresult *r = PQexec(db, "SELECT sf_id FROM record_link WHERE kind = 'opportunity'"
                             " ORDER BY sf_id");
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read linked opportunities");
    cJSON *batch = cJSON_CreateArray();
    for (int i = 0; rc == ERR_OK && i < PQntuples(r); i++) {
        cJSON_AddItemToArray(batch, cJSON_CreateString(PQgetvalue(r, i, 0)));
        if (cJSON_GetArraySize(batch) == GAP_BATCH || i + 1 == PQntuples(r)) {
            rc = push_gone(ctx, db, batch, now, stored);
            cJSON_Delete(batch);
            batch = cJSON_CreateArray();
        }
    }
    cJSON_Delete(batch);
    PQclear(r);
    return rc;
}

static void poll_deleted(struct sync_ctx *ctx, PGconn *db, int64_t now)
{
    bool is_turn = false;
    int64_t from = 0;
    enum err rc = poll_take_turn(db, SF_POLLER_DELETED, ctx->cfg->delete_poll_seconds,
                                 now - FIRST_WINDOW_MS, &is_turn, &from);
    if (rc != ERR_OK || !is_turn)
        return;
    /* getDeleted ignores seconds and covers up to the last whole minute: nothing to ask until
     * a new minute has started since the watermark. */
    if (now - now % MINUTE_MS <= from - from % MINUTE_MS)
        return;
    cJSON *deleted = NULL;
    int64_t latest = 0;
    int64_t earliest = 0;
    rc = sf_get_deleted_window(ctx->sf, "Opportunity", from, now, &deleted, &latest, &earliest);
    if (rc == ERR_INVALID || (rc == ERR_OK && earliest > from)) {
        size_t gone = 0;
        cJSON_Delete(deleted);
        log_warn("getDeleted no longer covers the window; comparing linked opportunities",
                 LOG_I64("from_ms", from), LOG_I64("earliest_ms", earliest));
        rc = sweep_linked(ctx, db, now, &gone);
        /* Covered up to now: the next window starts at the last whole minute. */
        if (rc == ERR_OK)
            rc = poll_advance(db, SF_POLLER_DELETED, now - now % MINUTE_MS);
        if (rc == ERR_OK)
            log_info("deleted opportunities queued", LOG_I64("count", (int64_t)gone),
                     LOG_STR("found_by", "linked ids"));
        return;
    }
    if (rc != ERR_OK) {
        log_warn("cannot poll deleted opportunities", LOG_STR("error", err_str(rc)));
        return;
    }
    size_t stored = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, deleted)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(d, "id"));
        const char *when = cJSON_GetStringValue(cJSON_GetObjectItem(d, "deletedDate"));
        int64_t at = now;
        if (!id)
            continue;
        if (when)
            sf_datetime_parse(when, &at);
        char *key = xasprintf("deleted:%s:%s", id, when ? when : "");
        rc = push(db, id, "deleted", key, at, d, &stored);
        free(key);
        if (rc != ERR_OK)
            break;
    }
    cJSON_Delete(deleted);
    if (rc == ERR_OK && latest > from)
        rc = poll_advance(db, SF_POLLER_DELETED, latest);
    if (rc == ERR_OK && stored > 0)
        log_info("deleted opportunities queued", LOG_I64("count", (int64_t)stored));
}

static void poll_contact_roles(struct sync_ctx *ctx, PGconn *db, int64_t now)
{
    bool is_turn = false;
    int64_t from = 0;
    enum err rc = poll_take_turn(db, SF_POLLER_CONTACT_ROLES, ctx->cfg->contact_role_poll_seconds,
                                 poll_first_window_from(db, now, FIRST_WINDOW_MS), &is_turn, &from);
    if (rc != ERR_OK || !is_turn)
        return;
    /* SystemModstamp > watermark, deleted rows included (queryAll). A row written in the same
     * millisecond as the watermark but seen after it is caught by >= and deduplicated by its
     * key. */
    /* SOQL datetime literals have whole seconds: "2026-01-02T03:04:05Z". */
    char since[UTIL_ISO8601_LEN];
    util_format_iso8601_ms(from - ((from % 1000) + 1000) % 1000, since);
    memcpy(since + 19, "Z", 2);
    char *soql = xasprintf("SELECT Id, OpportunityId, ContactId, IsDeleted, SystemModstamp"
                           " FROM OpportunityContactRole WHERE SystemModstamp >= %s"
                           " ORDER BY SystemModstamp",
                           since);
    cJSON *rows = NULL;
    rc = sf_query_all(ctx->sf, soql, &rows);
    free(soql);
    if (rc != ERR_OK) {
        log_warn("cannot poll contact roles", LOG_STR("error", err_str(rc)));
        return;
    }
    /* A role whose effect dealsync already synced (an opportunity read with its roles after
     * the role was written: a data load of opportunities with their roles, or a role added
     * before the opportunity's outbound message was handled) needs no second look: the handler
     * would read the opportunity and its deal's associations again to change nothing. */
    size_t count = (size_t)cJSON_GetArraySize(rows);
    bool *reflected = xcalloc(count ? count : 1, sizeof(bool));
    rc = synced_roles_reflected(db, rows, reflected);
    if (rc != ERR_OK) {
        free(reflected);
        cJSON_Delete(rows);
        return;
    }
    size_t stored = 0, skipped = 0, i = 0;
    int64_t latest = from;
    const cJSON *r;
    cJSON_ArrayForEach(r, rows)
    {
        bool is_reflected = reflected[i++];
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(r, "Id"));
        const char *opp = cJSON_GetStringValue(cJSON_GetObjectItem(r, "OpportunityId"));
        const char *stamp = cJSON_GetStringValue(cJSON_GetObjectItem(r, "SystemModstamp"));
        int64_t at = now;
        if (!id || !opp)
            continue;
        if (stamp && sf_datetime_parse(stamp, &at) && at > latest)
            latest = at;
        if (is_reflected) {
            skipped++;
            continue;
        }
        /* SystemModstamp has whole seconds: a role added and removed within one second has
         * one stamp, so the key also says what changed that matters here. */
        const char *contact = cJSON_GetStringValue(cJSON_GetObjectItem(r, "ContactId"));
        char *key =
            xasprintf("contact_role:%s:%s:%s:%s", id, stamp ? stamp : "", contact ? contact : "",
                      cJSON_IsTrue(cJSON_GetObjectItem(r, "IsDeleted")) ? "deleted" : "");
        rc = push(db, opp, "contact_role_changed", key, at, r, &stored);
        free(key);
        if (rc != ERR_OK)
            break;
    }
    free(reflected);
    cJSON_Delete(rows);
    if (rc == ERR_OK && latest > from)
        rc = poll_advance(db, SF_POLLER_CONTACT_ROLES, latest);
    if (rc == ERR_OK && (stored > 0 || skipped > 0))
        log_info("changed contact roles queued", LOG_I64("count", (int64_t)stored),
                 LOG_I64("already_synced", (int64_t)skipped));
}

void sf_poller_tick(void *vctx, PGconn *db)
{
    struct sync_ctx *ctx = vctx;
    if (!ctx || !ctx->sf)
        return;
    bool is_on = false;
    if (sync_deals_enabled(db, &is_on) != ERR_OK || !is_on)
        return;
    int64_t now = util_now_ms();
    poll_deleted(ctx, db, now);
    poll_contact_roles(ctx, db, now);
}
