/* sync_echo.c - dealsync's own writes coming back as HubSpot webhooks and Salesforce outbound
 * messages. Only a value equal to the one dealsync wrote (or the pair's baseline) counts as an
 * echo, never a time: a user's edit made between dealsync's read of a record and its write is
 * older than the write, yet new to dealsync. */
#include "sync_echo.h"

#include <stdio.h>
#include <stdlib.h>
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
    bool is_echo = written && value && sync_deal_same_value(written, value);
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

/* ---- Salesforce outbound messages --------------------------------------------------------- */

/* What the Salesforce-to-HubSpot sync follows besides the mapped fields: the account (the
 * deal's company) and the record type (the deal's pipeline). */
static const char *const followed_fields[] = {"AccountId", "RecordTypeId"};
#define FOLLOWED_COUNT (sizeof(followed_fields) / sizeof(followed_fields[0]))

/* Fields Salesforce requires on every opportunity: a message without one of them does not carry
 * the fields dealsync registered, and an absent field cannot then be taken for a blank one. */
static const char *const required_fields[] = {"Name", "StageName", "CloseDate"};
#define REQUIRED_COUNT (sizeof(required_fields) / sizeof(required_fields[0]))

void sync_echo_keep_followed(const cJSON *old_sf_seen, cJSON *sf_seen)
{
    for (size_t i = 0; i < FOLLOWED_COUNT; i++) {
        const cJSON *old = cJSON_GetObjectItem(old_sf_seen, followed_fields[i]);
        if (old && !cJSON_GetObjectItem(sf_seen, followed_fields[i]))
            cJSON_AddItemToObject(sf_seen, followed_fields[i], cJSON_Duplicate(old, true));
    }
}

/* The message's value of name (NULL: left out, a blank) is the baseline or dealsync's own. */
static bool is_unchanged(const struct link *l, const cJSON *fields, const char *name)
{
    const cJSON *now = cJSON_GetObjectItem(fields, name);
    const cJSON *seen = cJSON_GetObjectItem(l->sf_seen, name);
    const cJSON *own = cJSON_GetObjectItem(l->sf_written, name);
    return (seen && sync_deal_same_value(seen, now)) || (own && sync_deal_same_value(own, now));
}

static bool is_message_echo(const struct mapping_set *m, const struct link *l,
                            const struct queue_event *ev)
{
    cJSON *payload = cJSON_Parse(ev->payload);
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(payload, "fields");
    bool is_echo = cJSON_IsObject(fields);
    for (size_t i = 0; is_echo && i < REQUIRED_COUNT; i++)
        is_echo = cJSON_IsString(cJSON_GetObjectItem(fields, required_fields[i]));
    for (size_t i = 0; is_echo && i < mapping_set_count(m); i++)
        is_echo = is_unchanged(l, fields, mapping_set_field(m, i)->sf_field);
    for (size_t i = 0; is_echo && i < FOLLOWED_COUNT; i++)
        is_echo = is_unchanged(l, fields, followed_fields[i]);
    cJSON_Delete(payload);
    return is_echo;
}

/* Whether a record's events can be echoes at all: outbound messages only, each on its first
 * attempt (a retry may follow a sync that saved the baseline and failed after it). */
static bool is_candidate(const struct mapping_set *m, const struct queue_record *rec)
{
    for (size_t i = 0; i < mapping_set_count(m); i++)
        if (strchr(mapping_set_field(m, i)->sf_field, '.'))
            return false;
    for (size_t i = 0; i < rec->event_count; i++)
        if (strcmp(rec->events[i].event_type, "outbound_message") != 0 ||
            rec->events[i].attempts > 1)
            return false;
    return rec->event_count > 0;
}

/* Clears is_echo[i] for each record with an event that has an outcome already: it was handled
 * before and sent back to the queue without its attempt counted (waiting for API budget), maybe
 * after its sync saved the baseline. */
static enum err drop_handled(PGconn *db, const struct queue_record *records, size_t n,
                             bool *is_echo)
{
    struct buf ids;
    buf_init(&ids, 0);
    buf_append_str(&ids, "{");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; is_echo[i] && k < records[i].event_count; k++)
            buf_printf(&ids, "%s%lld", ids.len > 1 ? "," : "", (long long)records[i].events[k].id);
    buf_append_str(&ids, "}");
    if (ids.len == 2) {
        buf_clear(&ids);
        return ERR_OK;
    }
    const char *params[] = {ids.data};
    PGresult *r = PQexecParams(db,
                               "SELECT DISTINCT event_id FROM sync_outcome"
                               " WHERE event_id = ANY($1::bigint[])",
                               1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read outcomes");
    for (int row = 0; rc == ERR_OK && row < PQntuples(r); row++) {
        long long id = atoll(PQgetvalue(r, row, 0));
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; is_echo[i] && k < records[i].event_count; k++)
                if (records[i].events[k].id == id)
                    is_echo[i] = false;
    }
    PQclear(r);
    buf_clear(&ids);
    return rc;
}

enum err sync_echo_opportunities(PGconn *db, const struct mapping_set *mappings,
                                 const struct queue_record *records, const char *const *sf_ids,
                                 size_t n, bool *is_echo)
{
    const char **ids = xcalloc(n + 1, sizeof(*ids));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        is_echo[i] = mappings && sf_ids[i] && is_candidate(mappings, &records[i]);
        if (is_echo[i])
            ids[k++] = sf_ids[i];
    }
    enum err rc = k > 0 ? drop_handled(db, records, n, is_echo) : ERR_OK;
    if (rc == ERR_OK && k > 0)
        rc = link_prefetch(db, false, ids, k);
    for (size_t i = 0; rc == ERR_OK && i < n; i++) {
        if (!is_echo[i])
            continue;
        struct link l = {0};
        enum err found = link_find_by_sf(db, LINK_OPPORTUNITY, sf_ids[i], &l);
        if (found != ERR_OK && found != ERR_NOT_FOUND)
            rc = found;
        is_echo[i] = found == ERR_OK && l.hs_id && l.hs_id[0];
        for (size_t e = 0; is_echo[i] && e < records[i].event_count; e++)
            is_echo[i] = is_message_echo(mappings, &l, &records[i].events[e]);
        if (found == ERR_OK)
            link_clear(&l);
    }
    if (rc != ERR_OK)
        for (size_t i = 0; i < n; i++)
            is_echo[i] = false;
    free(ids);
    return rc;
}
