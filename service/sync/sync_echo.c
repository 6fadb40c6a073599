/* sync_echo.c - dealsync's own writes coming back as HubSpot webhooks. Only a value equal to
 * the one dealsync wrote counts as an echo, never a time: a user's edit made between dealsync's
 * read of a deal and its write is older than the write, yet new to dealsync. */
#include "sync_echo.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "link.h"
#include "sync_deal.h"
#include "util.h"

static bool id_text(const cJSON *v, char out[32])
{
    if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble < 1e18)
        snprintf(out, 32, "%.0f", v->valuedouble);
    else if (cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) < 32)
        snprintf(out, 32, "%s", v->valuestring);
    else
        return false;
    return true;
}

/* An association added between the deal and what dealsync associated it with: the company of
 * the opportunity's account as last synced (record_link of kind account for sf_seen.AccountId),
 * or a contact of the opportunity's contact roles as last synced (synced_deal_contact). */
static bool is_association_echo(PGconn *db, const struct link *l, const cJSON *payload)
{
    char to[32];
    const char *type =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "associationType"));
    if (!type || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(payload, "associationRemoved")) ||
        !id_text(cJSON_GetObjectItemCaseSensitive(payload, "toObjectId"), to))
        return false;
    const char *sql;
    const char *account =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(l->sf_seen, "AccountId"));
    const char *params[2] = {to, NULL};
    if (strcmp(type, "DEAL_TO_COMPANY") == 0 && account) {
        sql = "SELECT 1 FROM record_link WHERE kind = '" LINK_ACCOUNT "' AND hs_id = $1"
              " AND sf_id = $2";
        params[1] = account;
    } else if (strcmp(type, "DEAL_TO_CONTACT") == 0) {
        sql = "SELECT 1 FROM synced_deal_contact WHERE hs_contact_id = $1"
              " AND sf_opportunity_id = $2";
        params[1] = l->sf_id;
    } else {
        return false;
    }
    PGresult *r = PQexecParams(db, sql, 2, NULL, params, NULL, NULL, 0);
    bool is_echo = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
    PQclear(r);
    return is_echo;
}

/* What the deal handler records when it reads a deal's contact associations
 * (deal_contact_role, sf_contacts.c): each contact association dealsync added from a contact
 * role is mirrored, so a user removing it in HubSpot later still removes the role. */
static enum err mirror_contacts(PGconn *db, const struct link *l, const struct queue_record *rec)
{
    for (size_t i = 0; i < rec->event_count; i++) {
        if (strcmp(rec->events[i].event_type, "deal.associationChange") != 0)
            continue;
        cJSON *payload = cJSON_Parse(rec->events[i].payload);
        const char *type =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "associationType"));
        char to[32];
        bool is_contact = type && strcmp(type, "DEAL_TO_CONTACT") == 0 &&
                          id_text(cJSON_GetObjectItemCaseSensitive(payload, "toObjectId"), to);
        cJSON_Delete(payload);
        if (!is_contact)
            continue;
        const char *params[] = {rec->record_id, to, l->sf_id};
        PGresult *r =
            PQexecParams(db,
                         "INSERT INTO deal_contact_role (hs_deal_id, hs_contact_id, sf_contact_id)"
                         " SELECT $1, hs_contact_id, sf_contact_id FROM synced_deal_contact"
                         "  WHERE hs_contact_id = $2 AND sf_opportunity_id = $3"
                         " ON CONFLICT (hs_deal_id, hs_contact_id) DO NOTHING",
                         3, NULL, params, NULL, NULL, 0);
        enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot mirror contact roles");
        PQclear(r);
        if (rc != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

/* Whether the event reports a change by someone other than dealsync's own app: its sourceId (a
 * user's "userId:N", another app's id) differs from the appId the webhook was sent to. Unknown
 * (false) when the event names no source. dealsync's own writes come back as INTEGRATION with
 * sourceId the app's id (reference hubspot.md 2.2, captured webhook). */
static bool is_foreign_change(const cJSON *payload)
{
    const char *source =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "sourceId"));
    char app[32];
    if (!source || !id_text(cJSON_GetObjectItemCaseSensitive(payload, "appId"), app))
        return false;
    return strcmp(source, app) != 0;
}

bool sync_echo_user_changed(const struct queue_record *rec, const char *property, int64_t since_ms)
{
    bool is_changed = false;
    for (size_t i = 0; !is_changed && i < rec->event_count; i++) {
        const struct queue_event *ev = &rec->events[i];
        if (ev->occurred_at_ms <= since_ms || strcmp(ev->event_type, "deal.propertyChange") != 0)
            continue;
        cJSON *payload = cJSON_Parse(ev->payload);
        const char *name =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "propertyName"));
        is_changed = name && strcmp(name, property) == 0 && is_foreign_change(payload);
        cJSON_Delete(payload);
    }
    return is_changed;
}

bool sync_echo_history_changed(const cJSON *history, const cJSON *own, int64_t since_ms,
                               const char *app_id)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, history)
    {
        int64_t at = 0;
        const char *stamp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "timestamp"));
        if (!stamp || !util_parse_iso8601_ms(stamp, &at) || at <= since_ms)
            continue;
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "sourceType"));
        const char *source = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "sourceId"));
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(e, "value");
        if (!type || strcmp(type, "INTEGRATION") != 0 ||
            (app_id && (!source || strcmp(source, app_id) != 0)) || !own || !value ||
            !sync_deal_same_value(own, value))
            return true;
    }
    return false;
}

static bool is_event_echo(PGconn *db, const struct link *l, const struct queue_event *ev)
{
    if (strcmp(ev->event_type, "deal.creation") == 0)
        return true; /* linked: dealsync made the deal, or read it after it was made */
    bool is_change = strcmp(ev->event_type, "deal.propertyChange") == 0;
    if (!is_change && strcmp(ev->event_type, "deal.associationChange") != 0)
        return false;
    cJSON *payload = cJSON_Parse(ev->payload);
    if (!is_change) {
        bool is_echo = is_association_echo(db, l, payload);
        cJSON_Delete(payload);
        return is_echo;
    }
    const char *name =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "propertyName"));
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(payload, "propertyValue");
    const cJSON *written = name ? cJSON_GetObjectItemCaseSensitive(l->hs_written, name) : NULL;
    /* A user who sets a property back to the value dealsync wrote changed it all the same. */
    bool is_echo =
        written && value && sync_deal_same_value(written, value) && !is_foreign_change(payload);
    cJSON_Delete(payload);
    return is_echo;
}

enum err sync_echo_deal(PGconn *db, const struct queue_record *rec, bool *is_echo)
{
    struct link l = {0};
    *is_echo = false;
    if (rec->event_count == 0)
        return ERR_OK;
    enum err rc = link_find_by_hs(db, LINK_OPPORTUNITY, rec->record_id, &l);
    if (rc == ERR_NOT_FOUND)
        return ERR_OK;
    if (rc != ERR_OK)
        return rc;
    bool all = true;
    for (size_t i = 0; all && i < rec->event_count; i++)
        all = is_event_echo(db, &l, &rec->events[i]);
    if (all)
        rc = mirror_contacts(db, &l, rec);
    link_clear(&l);
    *is_echo = all && rc == ERR_OK;
    return rc;
}

/* ---- The baseline outbound messages are compared with (sync_echo_sf.c) --------------------- */

/* What the Salesforce-to-HubSpot sync follows besides the mapped fields: the account (the
 * deal's company) and the record type (the deal's pipeline). */
static const char *const followed_fields[] = {"AccountId", "RecordTypeId"};
#define FOLLOWED_COUNT (sizeof(followed_fields) / sizeof(followed_fields[0]))

void sync_echo_keep_followed(const cJSON *old_sf_seen, cJSON *sf_seen)
{
    for (size_t i = 0; i < FOLLOWED_COUNT; i++) {
        const cJSON *old = cJSON_GetObjectItem(old_sf_seen, followed_fields[i]);
        if (old && !cJSON_GetObjectItem(sf_seen, followed_fields[i]))
            cJSON_AddItemToObject(sf_seen, followed_fields[i], cJSON_Duplicate(old, true));
    }
}
