/* sync_rollup.c - the contacts' roll-ups, handled as their own queue records (sync_rollup.h).
 * The queue's lease on a contact's record keeps one worker at a time on it, and events queued
 * while it works stay for the next claim, which computes from the synced deals as they then
 * are: the last write of a contact's roll-ups follows every batch that changed its deals. */
#include "sync_rollup.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "hs_contacts.h"
#include "sync.h"
#include "util.h"

/* Created (or read by e-mail) by the batch that queued it, a moment ago: only on a first
 * attempt, as a retry may come long after. */
static bool is_just_created(const struct queue_record *r)
{
    bool is_created = false;
    for (size_t i = 0; i < r->event_count; i++) {
        if (r->events[i].attempts != 1)
            return false;
        cJSON *p = cJSON_Parse(r->events[i].payload);
        is_created |= cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "created"));
        cJSON_Delete(p);
    }
    return is_created;
}

void sync_contact_rollups(void *arg, PGconn *db, struct queue_record *records, size_t count)
{
    struct sync_ctx *ctx = arg;
    if (!ctx || !ctx->hs) {
        for (size_t i = 0; i < count; i++) {
            records[i].result = ERR_CONFIG;
            records[i].detail = xasprintf("contact roll-ups not written: the hubspot api is not "
                                          "configured");
        }
        return;
    }
    cJSON *ids = cJSON_CreateArray(), *created = cJSON_CreateArray();
    for (size_t i = 0; i < count; i++) {
        cJSON_AddItemToArray(ids, cJSON_CreateString(records[i].record_id));
        if (is_just_created(&records[i]))
            cJSON_AddItemToArray(created, cJSON_CreateString(records[i].record_id));
    }
    int updated = 0;
    enum err rc = hs_contacts_update_rollups(ctx->hs, db, ctx->cfg, ids, created, &updated);
    int64_t hint = rc == ERR_RATE_LIMIT ? hs_retry_after_ms(ctx->hs) : -1;
    for (size_t i = 0; i < count; i++) {
        struct queue_record *r = &records[i];
        if (rc == ERR_OK) {
            r->result = ERR_OK;
            r->detail = xasprintf("roll-ups and lifecycle stage of contact %s checked for %zu "
                                  "queued change%s (%d of %zu contacts written)",
                                  r->record_id, r->event_count, r->event_count == 1 ? "" : "s",
                                  updated, count);
        } else if (rc == ERR_INVALID || rc == ERR_NOT_FOUND) {
            /* The deals are synced; the roll-up properties HubSpot refuses are reported, not
             * retried forever. */
            r->result = ERR_OK;
            r->has_warning = true;
            r->detail = xasprintf("contact roll-ups not written: hubspot answered %s (see the "
                                  "log)",
                                  err_str(rc));
        } else {
            r->result = rc;
            if (hint > 0)
                r->retry_after_ms = hint > 86400000 ? 86400000 : (int)hint;
            r->detail = xasprintf("cannot update the contacts' roll-ups: %s", err_str(rc));
        }
    }
    cJSON_Delete(created);
    cJSON_Delete(ids);
}
