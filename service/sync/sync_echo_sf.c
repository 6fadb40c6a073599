/* sync_echo_sf.c - dealsync's own writes to opportunities coming back as outbound messages
 * (sync_echo_sf.h). Only values count, never a time: a user's edit after dealsync's write
 * changes a value, and its own outbound message carries it. */
#include "sync_echo_sf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "link.h"
#include "sf_client.h"
#include "sf_id.h"
#include "sync_deal.h"
#include "util.h"

/* Whether the message's value of field is one dealsync knows the opportunity holds. */
static bool is_known_value(const struct link *l, const cJSON *fields, const char *field)
{
    const cJSON *v = cJSON_GetObjectItem(fields, field); /* field names: any case */
    cJSON *null = cJSON_CreateNull();
    const cJSON *now = v ? v : null;
    const cJSON *written = cJSON_GetObjectItem(l->sf_written, field);
    const cJSON *seen = cJSON_GetObjectItem(l->sf_seen, field);
    bool is_known;
    /* A write of unknown outcome (cut off by a timeout or a kill) may not have been carried out:
     * the same value may be a user's, and only a read of the opportunity tells
     * (sync_echo_sf_settle_maybe). */
    if (written && link_is_maybe_written(l, false, field))
        written = NULL;
    if (written || seen)
        is_known = (written && sync_deal_same_value(written, now)) ||
                   (seen && sync_deal_same_value(seen, now));
    else
        is_known = cJSON_IsNull(now);
    cJSON_Delete(null);
    return is_known;
}

static bool is_message_echo(const struct mapping_set *mappings, const struct link *l,
                            const struct queue_event *ev)
{
    /* A retry may follow a sync that saved the baseline and failed after it (the company
     * association, say): it is read again, whatever the message holds. */
    if (strcmp(ev->event_type, "outbound_message") != 0 || ev->attempts > 1)
        return false;
    cJSON *payload = cJSON_Parse(ev->payload);
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(payload, "fields");
    bool is_echo = cJSON_IsObject(fields) && is_known_value(l, fields, "AccountId") &&
                   is_known_value(l, fields, "RecordTypeId");
    for (size_t i = 0; is_echo && i < mapping_set_count(mappings); i++) {
        const struct mapping_field *f = mapping_set_field(mappings, i);
        is_echo = f->rule == MAPPING_RULE_NONE || is_known_value(l, fields, f->sf_field);
    }
    cJSON_Delete(payload);
    return is_echo;
}

/* Whether the pair is read whatever its messages hold: dealsync knows a contact of it (the roles
 * it made from the deal's contacts, or the contacts it synced for the opportunity's roles), or
 * the deal's deletion waits in the queue. A save after the user deleted the deal is a change
 * after the delete even when no mapped field changed, and makes a new deal; finished unread, it
 * was gone by the time the deletion forgot the link, and no deal came back. */
static enum err must_read(PGconn *db, const struct link *l, bool *out)
{
    const char *params[] = {l->hs_id, l->sf_id};
    PGresult *r =
        PQexecParams(db,
                     "SELECT EXISTS (SELECT 1 FROM deal_contact_role WHERE hs_deal_id = $1)"
                     " OR EXISTS (SELECT 1 FROM synced_deal_contact WHERE sf_opportunity_id = $2)"
                     " OR EXISTS (SELECT 1 FROM sync_event WHERE source = 'hubspot'"
                     "  AND object_type = 'deal' AND record_id = $1"
                     "  AND status IN ('pending', 'running') AND event_type = 'deal.deletion')",
                     2, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read the pair's contacts and deletion");
    *out = rc != ERR_OK || PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), "f") != 0;
    PQclear(r);
    return rc;
}

/* Whether an event of rec has an outcome already: handled before and sent back to the queue
 * without its attempt counted (waiting for API budget), maybe after its sync saved the
 * baseline. */
static enum err was_handled(PGconn *db, const struct queue_record *rec, bool *out)
{
    char *ids = queue_record_event_ids(rec);
    const char *params[] = {ids};
    PGresult *r = PQexecParams(db,
                               "SELECT EXISTS (SELECT 1 FROM sync_outcome"
                               " WHERE event_id = ANY($1::bigint[]))",
                               1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read outcomes");
    *out = rc != ERR_OK || PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), "f") != 0;
    PQclear(r);
    free(ids);
    return rc;
}

enum err sync_echo_opportunity(PGconn *db, const struct mapping_set *mappings, const char *sf_id,
                               const struct queue_record *rec, bool *is_echo)
{
    struct link l = {0};
    *is_echo = false;
    if (rec->event_count == 0 || !mappings)
        return ERR_OK;
    enum err rc = link_find_by_sf(db, LINK_OPPORTUNITY, sf_id, &l);
    if (rc == ERR_NOT_FOUND)
        return ERR_OK;
    if (rc != ERR_OK)
        return rc;
    bool all = true;
    for (size_t i = 0; all && i < rec->event_count; i++)
        all = is_message_echo(mappings, &l, &rec->events[i]);
    bool is_read = true, handled = true;
    if (all)
        rc = must_read(db, &l, &is_read);
    if (all && rc == ERR_OK && !is_read)
        rc = was_handled(db, rec, &handled);
    link_clear(&l);
    *is_echo = all && rc == ERR_OK && !is_read && !handled;
    return rc;
}

/* Outbound messages of opportunity $1 for a save after $2 (ms; occurred_at is the message's
 * SystemModstamp, whole seconds, so a save in the delete's own second counts as before it):
 * finished since then, or still open. The record's events index (migration 0160) bounds the scan
 * to the opportunity's messages after $2. */
static const char saved_after_sql[] =
    "SELECT EXISTS (SELECT 1 FROM sync_event WHERE source = 'salesforce'"
    "  AND object_type = 'Opportunity' AND record_id = $1"
    "  AND occurred_at > to_timestamp($2::bigint / 1000.0) AND event_type = 'outbound_message'"
    "  AND (status IN ('pending', 'running') OR (status = 'done'"
    "       AND finished_at >= to_timestamp($2::bigint / 1000.0))))";

enum err sync_echo_deal_deleted(PGconn *db, const char *sf_id, const char *hs_id,
                                int64_t deleted_ms)
{
    if (deleted_ms <= 0)
        return ERR_OK;
    char at[32];
    snprintf(at, sizeof(at), "%lld", (long long)deleted_ms);
    const char *params[] = {sf_id, at};
    PGresult *r = PQexecParams(db, saved_after_sql, 2, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read the opportunity's messages");
    bool is_saved = rc == ERR_OK && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!is_saved)
        return rc;
    cJSON *payload = cJSON_CreateObject();
    cJSON_AddStringToObject(payload, "reason", "saved after its deal was deleted in hubspot");
    cJSON_AddStringToObject(payload, "hs_deal_id", hs_id);
    char *key = xasprintf("deal-deleted:%s:%s", hs_id, at);
    struct queue_event_in ev = {.source = "salesforce",
                                .dedup_key = key,
                                .object_type = "Opportunity",
                                .record_id = sf_id,
                                .event_type = "resync",
                                .occurred_at_ms = util_now_ms(),
                                .payload = payload,
                                .priority = QUEUE_PRIORITY_LIVE};
    size_t stored = 0;
    rc = queue_push(db, &ev, 1, &stored);
    free(key);
    cJSON_Delete(payload);
    return rc;
}

/* ---- Changes the opportunity's messages tell (a value set away and back) ------------------ */

static void add_message(cJSON *list, int64_t at_ms, const char *action_id, cJSON *fields)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "at", (double)at_ms);
    cJSON_AddStringToObject(m, "action", action_id ? action_id : "");
    cJSON_AddItemToObject(m, "fields", fields);
    cJSON_AddItemToArray(list, m);
}

cJSON *sync_echo_sf_record_messages(const struct queue_record *rec)
{
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < rec->event_count; i++) {
        const struct queue_event *ev = &rec->events[i];
        if (strcmp(ev->event_type, "outbound_message") != 0)
            continue;
        cJSON *payload = cJSON_Parse(ev->payload);
        cJSON *fields = cJSON_DetachItemFromObjectCaseSensitive(payload, "fields");
        const char *action =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "action_id"));
        if (cJSON_IsObject(fields))
            add_message(list, ev->occurred_at_ms, action, fields);
        else
            cJSON_Delete(fields);
        cJSON_Delete(payload);
    }
    return list;
}

enum err sync_echo_sf_open_messages(PGconn *db, const char *const *sf_ids, size_t n, cJSON **out)
{
    struct buf ids;
    buf_init(&ids, 0);
    buf_append_str(&ids, "{");
    for (size_t i = 0; i < n; i++)
        buf_printf(&ids, "%s\"%s\"", i ? "," : "", sf_ids[i]);
    buf_append_str(&ids, "}");
    const char *params[] = {ids.data};
    PGresult *r = PQexecParams(
        db,
        "SELECT record_id, (extract(epoch FROM occurred_at) * 1000)::bigint, payload->'fields',"
        " payload->>'action_id'"
        " FROM sync_event WHERE source = 'salesforce' AND object_type = 'Opportunity'"
        " AND record_id = ANY($1::text[]) AND status IN ('pending', 'running')"
        " AND event_type = 'outbound_message' ORDER BY occurred_at, id",
        1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read the opportunities' messages");
    if (rc == ERR_OK) {
        *out = cJSON_CreateObject();
        for (int i = 0; i < PQntuples(r); i++) {
            const char *id = PQgetvalue(r, i, 0);
            cJSON *fields = cJSON_Parse(PQgetvalue(r, i, 2));
            cJSON *list = cJSON_GetObjectItemCaseSensitive(*out, id);
            if (!list)
                list = cJSON_AddArrayToObject(*out, id);
            if (cJSON_IsObject(fields))
                add_message(list, strtoll(PQgetvalue(r, i, 1), NULL, 10), PQgetvalue(r, i, 3),
                            fields);
            else
                cJSON_Delete(fields);
        }
    }
    PQclear(r);
    buf_clear(&ids);
    return rc;
}

/* A text as an outbound message carries it: webhook_sf.c trims its leading and trailing white
 * space, and XML makes every line break (CR LF, CR) one LF. Caller frees. */
static char *message_text(const char *s)
{
    static const char space[] = " \t\r\n";
    while (*s && strchr(space, *s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && strchr(space, s[len - 1]))
        len--;
    char *out = xmalloc(len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        out[k++] = s[i] == '\r' ? '\n' : s[i];
        if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
            i++;
    }
    out[k] = '\0';
    return out;
}

/* Whether known (a value read over REST or written there) is the value message_value (as a
 * message of the opportunity carries it) of field: compared in the message's form, and ids
 * (OwnerId, AccountId, ...) by sf_id_equal, since an older API version's message carries the
 * 15-character form. Numbers, dates and blanks as sync_deal_same_value compares them. */
static bool is_same_in_message(const char *field, const cJSON *known, const cJSON *message_value)
{
    const char *a = cJSON_GetStringValue(known);
    const char *b = cJSON_GetStringValue(message_value);
    size_t len = strlen(field);
    if (!a || !b)
        return sync_deal_same_value(known, message_value);
    if (len > 2 && strcmp(field + len - 2, "Id") == 0 && sf_id_is_valid(a) && sf_id_is_valid(b))
        return sf_id_equal(a, b);
    char *ta = message_text(a);
    char *tb = message_text(b);
    cJSON *va = cJSON_CreateString(ta);
    cJSON *vb = cJSON_CreateString(tb);
    bool same = sync_deal_same_value(va, vb);
    cJSON_Delete(vb);
    cJSON_Delete(va);
    free(tb);
    free(ta);
    return same;
}

/* Whether a message of messages sent by the outbound message action (its ActionId) carries
 * field: the action lists it, so a message of that action that leaves it out reports a blank. */
static bool is_listed(const cJSON *messages, const char *action, const char *field)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, messages)
    {
        const char *of = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "action"));
        if (action[0] && of && strcmp(of, action) == 0 &&
            cJSON_GetObjectItem(cJSON_GetObjectItemCaseSensitive(m, "fields"), field))
            return true;
    }
    return false;
}

/* The value message m of messages carries in field: blank (borrowed) when it leaves the field
 * out and another message of the same action carries it (Salesforce leaves out a blank; the
 * action lists the field); NULL when it tells nothing, as a message set up by hand may not list
 * every field. Borrowed. */
static const cJSON *message_value(const cJSON *messages, const cJSON *m, const char *field,
                                  const cJSON *blank)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItemCaseSensitive(m, "fields"), field);
    const char *action = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "action"));
    if (!v && action && is_listed(messages, action, field))
        v = blank;
    return v;
}

/* Whether message m reports a save after the last sync of l. */
static bool is_after_last_sync(const cJSON *m, const struct link *l)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(m, "at")) >
           (double)l->sf_modified_ms;
}

bool sync_echo_sf_changed(const cJSON *messages, const struct link *l, const char *field)
{
    const cJSON *seen = cJSON_GetObjectItem(l->sf_seen, field);
    const cJSON *written = cJSON_GetObjectItem(l->sf_written, field);
    cJSON *blank = cJSON_CreateNull();
    const cJSON *m;
    bool is_changed = false;
    if (!seen)
        goto out;
    cJSON_ArrayForEach(m, messages)
    {
        if (!is_after_last_sync(m, l))
            continue;
        /* A user who set it away to a blank and back, read after the second step, changed it
         * all the same. */
        const cJSON *v = message_value(messages, m, field, blank);
        if (v && !is_same_in_message(field, seen, v) &&
            !(written && is_same_in_message(field, written, v))) {
            is_changed = true;
            break;
        }
    }
out:
    cJSON_Delete(blank);
    return is_changed;
}

bool sync_echo_sf_own_creation(const cJSON *opp, const char *user_id)
{
    const char *created_by = cJSON_GetStringValue(cJSON_GetObjectItem(opp, "CreatedById"));
    const char *modified_by = cJSON_GetStringValue(cJSON_GetObjectItem(opp, "LastModifiedById"));
    const char *created = cJSON_GetStringValue(cJSON_GetObjectItem(opp, "CreatedDate"));
    const char *modified = cJSON_GetStringValue(cJSON_GetObjectItem(opp, "LastModifiedDate"));
    int64_t created_ms = 0, modified_ms = 0;
    return user_id && created_by && modified_by && sf_id_equal(created_by, user_id) &&
           sf_id_equal(modified_by, user_id) && created && modified &&
           sf_datetime_parse(created, &created_ms) && sf_datetime_parse(modified, &modified_ms) &&
           created_ms / 1000 == modified_ms / 1000;
}

/* Whether a message of messages reports a save after the last sync of l that the integration
 * user user_id made (its LastModifiedById) while field held own, dealsync's write of unknown
 * outcome: the write was carried out. Salesforce renders a message when it sends it, so a user's
 * save before that makes it carry the user's; one that names the integration user was sent
 * before any user saved the record after dealsync. */
static bool is_confirmed_by_message(const cJSON *messages, const struct link *l, const char *field,
                                    const cJSON *own, const char *user_id)
{
    cJSON *blank = cJSON_CreateNull();
    const cJSON *m;
    bool is_confirmed = false;
    cJSON_ArrayForEach(m, messages)
    {
        const char *by = cJSON_GetStringValue(
            cJSON_GetObjectItem(cJSON_GetObjectItemCaseSensitive(m, "fields"), "LastModifiedById"));
        const cJSON *v = message_value(messages, m, field, blank);
        if (is_after_last_sync(m, l) && by && sf_id_is_valid(by) && sf_id_equal(by, user_id) && v &&
            is_same_in_message(field, own, v)) {
            is_confirmed = true;
            break;
        }
    }
    cJSON_Delete(blank);
    return is_confirmed;
}

enum err sync_echo_sf_settle_maybe(PGconn *db, struct link *l, const cJSON *opp,
                                   const cJSON *messages, const char *user_id)
{
    const char *by = cJSON_GetStringValue(cJSON_GetObjectItem(opp, "LastModifiedById"));
    if (!user_id || !by || !l->sf_maybe || !l->sf_maybe->child)
        return ERR_OK;
    bool is_own_save = sf_id_equal(by, user_id);
    cJSON *confirmed = cJSON_CreateObject();
    cJSON *forgotten = cJSON_CreateObject();
    cJSON *next = NULL;
    for (cJSON *m = l->sf_maybe->child; m; m = next) {
        next = m->next;
        const cJSON *own = cJSON_GetObjectItem(l->sf_written, m->string);
        const cJSON *now = cJSON_GetObjectItem(opp, m->string);
        /* Not read, or the opportunity holds something else: the write was not carried out or
         * was changed since, and the save that follows forgets it (sync_deal_prune_written). */
        if (!own || !now || !sync_deal_same_value(own, now))
            continue;
        /* A user saved the record last, maybe another field only: a message of dealsync's own
         * save sent before that save tells the write was carried out. */
        bool is_own = is_own_save || is_confirmed_by_message(messages, l, m->string, own, user_id);
        cJSON_AddTrueToObject(is_own ? confirmed : forgotten, m->string);
        if (!is_own)
            cJSON_DeleteItemFromObject(l->sf_written, m->string);
        cJSON_Delete(cJSON_DetachItemViaPointer(l->sf_maybe, m));
    }
    enum err rc = link_settle_written(db, l->kind, l->sf_id, false, confirmed, forgotten);
    cJSON_Delete(forgotten);
    cJSON_Delete(confirmed);
    return rc;
}
