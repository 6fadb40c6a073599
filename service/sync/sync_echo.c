/* sync_echo.c - dealsync's own writes coming back as HubSpot webhooks. Only a value equal to
 * the one dealsync wrote counts as an echo, never a time: a user's edit made between dealsync's
 * read of a deal and its write is older than the write, yet new to dealsync. */
#include "sync_echo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "hs_client.h"
#include "link.h"
#include "sync.h"
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

/* The association lookups of a batch, each a row {"j", "company", "hs", "sf"}: whether the
 * company (company true) or the contact of HubSpot id hs is what dealsync associated with the
 * deal of Salesforce opportunity or account sf. */
static const char association_sql[] =
    "SELECT t.j FROM jsonb_to_recordset($1::jsonb) AS t(j int, company bool, hs text, sf text)"
    " WHERE CASE WHEN t.company"
    "  THEN EXISTS (SELECT 1 FROM record_link WHERE kind = '" LINK_ACCOUNT "'"
    "               AND hs_id = t.hs AND sf_id = t.sf)"
    "  ELSE EXISTS (SELECT 1 FROM synced_deal_contact WHERE hs_contact_id = t.hs"
    "               AND sf_opportunity_id = t.sf) END";

/* What the deal handler records when it reads a deal's contact associations
 * (deal_contact_role, sf_contacts.c), for rows {"deal", "hs", "sf"}: each contact association
 * dealsync added from a contact role is mirrored, so a user removing it in HubSpot later still
 * removes the role. In key order: two workers never wait on each other's rows crosswise. */
static const char mirror_sql[] =
    "INSERT INTO deal_contact_role (hs_deal_id, hs_contact_id, sf_contact_id)"
    " SELECT DISTINCT ON (t.deal, c.hs_contact_id) t.deal, c.hs_contact_id, c.sf_contact_id"
    " FROM jsonb_to_recordset($1::jsonb) AS t(deal text, hs text, sf text)"
    " JOIN synced_deal_contact c ON c.hs_contact_id = t.hs AND c.sf_opportunity_id = t.sf"
    " ORDER BY t.deal, c.hs_contact_id, c.sf_contact_id"
    " ON CONFLICT (hs_deal_id, hs_contact_id) DO NOTHING";

/* A batch's association lookups (association_sql's rows) and contact associations to mirror
 * (mirror_sql's rows), each with the index of the record that added it. */
struct echo_rows {
    cJSON *lookups, *mirrors;
    size_t *lookup_owner, *mirror_owner; /* as many as the batch has events */
    size_t lookup_count, mirror_count;
};

/* An association added between the deal and what dealsync associated it with: the company of
 * the opportunity's account as last synced (record_link of kind account for sf_seen.AccountId),
 * or a contact of the opportunity's contact roles as last synced (synced_deal_contact). Adds
 * the lookup that decides it (and, for a contact, the row that mirrors it) for record i and
 * returns true, or returns false when the event cannot be an echo whatever the tables hold. */
static bool add_association_lookup(const struct link *l, const cJSON *payload, size_t i,
                                   const char *deal_id, struct echo_rows *rows)
{
    char to[32];
    const char *type =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "associationType"));
    if (!type || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(payload, "associationRemoved")) ||
        !id_text(cJSON_GetObjectItemCaseSensitive(payload, "toObjectId"), to))
        return false;
    const char *account =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(l->sf_seen, "AccountId"));
    bool is_company = strcmp(type, "DEAL_TO_COMPANY") == 0;
    const char *sf;
    if (is_company && account)
        sf = account;
    else if (strcmp(type, "DEAL_TO_CONTACT") == 0)
        sf = l->sf_id;
    else
        return false;
    cJSON *row = cJSON_CreateObject();
    cJSON_AddNumberToObject(row, "j", (double)rows->lookup_count);
    cJSON_AddBoolToObject(row, "company", is_company);
    cJSON_AddStringToObject(row, "hs", to);
    cJSON_AddStringToObject(row, "sf", sf);
    cJSON_AddItemToArray(rows->lookups, row);
    rows->lookup_owner[rows->lookup_count++] = i;
    if (!is_company) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "deal", deal_id);
        cJSON_AddStringToObject(m, "hs", to);
        cJSON_AddStringToObject(m, "sf", sf);
        cJSON_AddItemToArray(rows->mirrors, m);
        rows->mirror_owner[rows->mirror_count++] = i;
    }
    return true;
}

/* Runs sql with rows (a JSON array) as $1, expecting status; *r receives the result (caller
 * clears) when asked for. */
static enum err exec_rows(PGconn *db, const char *sql, const cJSON *rows, ExecStatusType status,
                          const char *what, PGresult **out)
{
    char *text = cJSON_PrintUnformatted(rows);
    const char *params[] = {text};
    PGresult *r = db_exec_cached(db, sql, 1, params);
    free(text);
    enum err rc = db_check(db, r, status, what);
    if (out && rc == ERR_OK)
        *out = r;
    else
        PQclear(r);
    return rc;
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

/* Whether the event names dealsync's own app as its source (sourceId the appId the webhook was
 * sent to): dealsync's write reported back. */
static bool is_own_change(const cJSON *payload)
{
    const char *source =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "sourceId"));
    char app[32];
    return source && id_text(cJSON_GetObjectItemCaseSensitive(payload, "appId"), app) &&
           strcmp(source, app) == 0;
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

/* Whether a history entry is dealsync's own write: the private app's writes are INTEGRATION
 * with the app's id (any app's, when the id is not configured). */
static bool is_own_entry(const cJSON *e, const char *app_id)
{
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "sourceType"));
    const char *source = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "sourceId"));
    return type && strcmp(type, "INTEGRATION") == 0 &&
           (!app_id || (source && strcmp(source, app_id) == 0));
}

static int64_t entry_time(const cJSON *e)
{
    int64_t at = 0;
    const char *stamp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "timestamp"));
    return stamp && util_parse_iso8601_ms(stamp, &at) ? at : -1;
}

bool sync_echo_history_changed(const cJSON *history, const cJSON *own, int64_t since_ms,
                               const char *app_id)
{
    /* After dealsync's latest write of the value it remembers, not after since_ms alone: the
     * link's time can lag behind dealsync's own writes (hs_known_until), and a user's change
     * that dealsync synced before its latest write is no news. Order-independent. */
    int64_t own_at = since_ms;
    const cJSON *e;
    cJSON_ArrayForEach(e, history)
    {
        int64_t at = entry_time(e);
        if (at > own_at && is_own_entry(e, app_id) && own &&
            sync_deal_same_value(own, cJSON_GetObjectItemCaseSensitive(e, "value")))
            own_at = at;
    }
    cJSON_ArrayForEach(e, history)
    {
        if (entry_time(e) > own_at && !is_own_entry(e, app_id))
            return true;
    }
    return false;
}

enum err sync_echo_hs_own_only(struct sync_ctx *ctx, const char *deal_id, const char *names,
                               cJSON **own_only)
{
    *own_only = NULL;
    cJSON *deal = NULL;
    enum err rc = hs_object_get_history(ctx->hs, "deals", deal_id, names, &deal);
    if (rc == ERR_NOT_FOUND)
        return ERR_BUSY;
    if (rc != ERR_OK)
        return rc;
    *own_only = cJSON_CreateObject();
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(deal, "propertiesWithHistory"))
    {
        /* Whatever the entries' times: any change by a user or another source counts. */
        if (!sync_echo_history_changed(h, NULL, INT64_MIN, ctx->cfg->hubspot_app_id))
            cJSON_AddTrueToObject(*own_only, h->string);
    }
    cJSON_Delete(deal);
    return ERR_OK;
}

/* Whether ev (of record i) is an echo as far as the event and the link tell; an association
 * adds its lookup to rows, and the batch's lookup statement decides it. */
static bool is_event_echo(const struct link *l, const struct queue_event *ev, size_t i,
                          const char *deal_id, struct echo_rows *rows)
{
    if (strcmp(ev->event_type, "deal.creation") == 0)
        return true; /* linked: dealsync made the deal, or read it after it was made */
    bool is_change = strcmp(ev->event_type, "deal.propertyChange") == 0;
    if (!is_change && strcmp(ev->event_type, "deal.associationChange") != 0)
        return false;
    cJSON *payload = cJSON_Parse(ev->payload);
    if (!is_change) {
        bool is_echo = add_association_lookup(l, payload, i, deal_id, rows);
        cJSON_Delete(payload);
        return is_echo;
    }
    const char *name =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(payload, "propertyName"));
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(payload, "propertyValue");
    const cJSON *written = name ? cJSON_GetObjectItemCaseSensitive(l->hs_written, name) : NULL;
    /* A user who sets a property back to the value dealsync wrote changed it all the same. A
     * write of unknown outcome (cut off by a timeout or a kill) is reported back only by an
     * event that names dealsync's app as its source: the same value from a source not named may
     * be a user's, set after a write that was not carried out. */
    bool is_echo = written && value && sync_deal_same_value(written, value) &&
                   !is_foreign_change(payload) &&
                   (!link_is_maybe_written(l, true, name) || is_own_change(payload));
    cJSON_Delete(payload);
    return is_echo;
}

/* Each record's association lookups are counted (added, and held per the lookup statement):
 * the record is an echo when every event is, so every lookup it added held. */
struct echo_work {
    bool is_possible;
    size_t added, held;
};

/* Reads the batch's links in one statement (link_prefetch), decides in C what the event and
 * the link tell, then the associations of all records in one statement and the mirrored
 * contacts of the echoes in another: three statements a batch, not a few per record (a burst
 * of 1,000 new deals comes back as 8,000 events of 1,000 records). */
enum err sync_echo_deals(PGconn *db, const struct queue_record *recs, size_t n,
                         const bool *is_candidate, bool *is_echo)
{
    struct echo_work *w = xcalloc(n + 1, sizeof(*w));
    const char **ids = xcalloc(n + 1, sizeof(*ids));
    size_t events = 0;
    for (size_t i = 0; i < n; i++)
        events += recs[i].event_count;
    struct echo_rows rows = {cJSON_CreateArray(),
                             cJSON_CreateArray(),
                             xcalloc(events + 1, sizeof(size_t)),
                             xcalloc(events + 1, sizeof(size_t)),
                             0,
                             0};
    cJSON *echo_mirrors = cJSON_CreateArray();
    PGresult *r = NULL;
    size_t id_count = 0;
    for (size_t i = 0; i < n; i++) {
        is_echo[i] = false;
        if (is_candidate[i] && recs[i].event_count > 0)
            ids[id_count++] = recs[i].record_id;
    }
    enum err rc = link_prefetch(db, true, ids, id_count);
    for (size_t i = 0; rc == ERR_OK && i < n; i++) {
        if (!is_candidate[i] || recs[i].event_count == 0)
            continue;
        struct link l = {0};
        rc = link_find_by_hs(db, LINK_OPPORTUNITY, recs[i].record_id, &l);
        if (rc == ERR_NOT_FOUND) {
            rc = ERR_OK; /* not linked: a deal dealsync did not make, synced as any other */
            continue;
        }
        if (rc != ERR_OK)
            break;
        size_t before = rows.lookup_count;
        bool all = true;
        for (size_t e = 0; all && e < recs[i].event_count; e++)
            all = is_event_echo(&l, &recs[i].events[e], i, recs[i].record_id, &rows);
        link_clear(&l);
        w[i].is_possible = all;
        w[i].added = rows.lookup_count - before;
    }
    if (rc == ERR_OK && rows.lookup_count > 0)
        rc = exec_rows(db, association_sql, rows.lookups, PGRES_TUPLES_OK,
                       "cannot read associations dealsync made", &r);
    /* Each row is a lookup that held, of the record that added it. */
    for (int row = 0; rc == ERR_OK && row < PQntuples(r); row++) {
        long j = strtol(PQgetvalue(r, row, 0), NULL, 10);
        if (j >= 0 && (size_t)j < rows.lookup_count)
            w[rows.lookup_owner[j]].held++;
    }
    for (size_t i = 0; rc == ERR_OK && i < n; i++)
        is_echo[i] = w[i].is_possible && w[i].held == w[i].added;
    size_t m = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows.mirrors)
    {
        if (rc == ERR_OK && is_echo[rows.mirror_owner[m]])
            cJSON_AddItemToArray(echo_mirrors, cJSON_Duplicate(row, true));
        m++;
    }
    if (rc == ERR_OK && cJSON_GetArraySize(echo_mirrors) > 0)
        rc = exec_rows(db, mirror_sql, echo_mirrors, PGRES_COMMAND_OK,
                       "cannot mirror contact roles", NULL);
    if (rc != ERR_OK)
        for (size_t i = 0; i < n; i++)
            is_echo[i] = false;
    PQclear(r);
    cJSON_Delete(echo_mirrors);
    cJSON_Delete(rows.mirrors);
    cJSON_Delete(rows.lookups);
    free(rows.mirror_owner);
    free(rows.lookup_owner);
    free(ids);
    free(w);
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
