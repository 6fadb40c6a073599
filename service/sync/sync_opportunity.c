/* sync_opportunity.c - Salesforce to HubSpot: each claimed batch of opportunity records is read
 * from Salesforce in one query (opportunities with account and owner, and their contact roles
 * as a subquery) and written to HubSpot with batch calls: deals by upsert on the opportunity id,
 * then the company and contact associations, then the contacts' roll-ups. What HubSpot already
 * holds is read first and only differences are written, so dealsync's own echoes change nothing. */
#include "sync_opportunity.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "contact_rollups.h"
#include "db.h"
#include "hs_companies.h"
#include "hs_companies_batch.h"
#include "hs_contacts.h"
#include "hs_owners.h"
#include "link.h"
#include "log.h"
#include "pipelines.h"
#include "sf_contacts.h"
#include "sf_id.h"
#include "sync.h"
#include "sync_cache.h"
#include "sync_deal.h"
#include "sync_echo.h"
#include "sync_echo_sf.h"
#include "sync_fanout.h"
#include "sync_pair.h"
#include "sf_setup.h"
#include "sync_state.h"
#include "util.h"

/* What the handler knows about one record while it works on it. */
struct opp {
    struct queue_record *rec;
    char id[19];
    const cJSON *sf;   /* the opportunity as queried; NULL when Salesforce has none (deleted) */
    const cJSON *deal; /* the deal HubSpot has for it (batch read), or NULL */
    char *deal_id;
    bool is_new;
    bool is_deleted;          /* Salesforce confirms the delete */
    bool is_reported_deleted; /* by a getDeleted event */
    bool is_finished;         /* result is set; later steps leave it alone */
    bool was_linked;          /* linked when the slice started: both records' locks are held */
    int64_t upserted_ms;      /* HubSpot's updatedAt of this sync's upsert; 0 when none */
    bool is_created;          /* made by batch create with its company and contacts inline */
    bool is_recorded;         /* its link and baseline saved right after the create */
    bool is_unread;           /* its deal was not read first (read_can_wait) */
    bool is_deal_read;        /* its deal was read with the opportunities (linked) */
    bool is_refused;          /* HubSpot refused the create of its deal */
    bool is_account_as_seen;  /* its account is the one both sides last agreed on */
    bool is_account_pending;  /* a new account, whose baseline waits for its company */
    char *company;            /* the HubSpot company of its account, once resolved */
    const char *company_how;  /* how it was found (hs_companies.h), static */
    cJSON *written;           /* the properties written to HubSpot */
    cJSON *noted;             /* what link_note_written remembered of its deal write, and */
    cJSON *noted_over;        /* the link's hs_written as read before (NULL: nothing noted) */
    cJSON *noted_over_maybe;  /* and its hs_maybe */
    bool is_maybe_written;    /* its deal write may have been carried out (answered, or cut off
                               * by a timeout) */
    cJSON *contacts;          /* {"sf contact id": "hs contact id"} after the sync */
    cJSON *deferred;          /* two-way fields whose newer HubSpot value was kept, {"property":
                               * "sf field"}: left for the other direction, so not marked as seen;
                               * {"property": null}: Salesforce's value lost a conflict, and only
                               * HubSpot's baseline stays */
    cJSON *hs_foreign;        /* {"property": true}: holds dealsync's own write, yet a user or
                               * another app changed it since (its history says so) */
    struct buf detail;
};

static const char *str(const cJSON *o, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    return s && s[0] ? s : NULL;
}

static void note(struct opp *o, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void note(struct opp *o, const char *fmt, ...)
{
    char *text;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    text = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (o->detail.len > 0)
        buf_append_str(&o->detail, "; ");
    buf_append_str(&o->detail, text);
    free(text);
}

static void finish(struct opp *o, enum err rc, bool is_skipped)
{
    o->rec->result = rc;
    o->rec->is_skipped = is_skipped;
    o->is_finished = true;
}

/* A call failed for the record: it gets the error (the worker retries transient ones, with
 * HubSpot's hint: hint_ms, from the client that made the call) and the reason. */
static void fail_hint(struct opp *o, enum err rc, const char *what, int64_t hint)
{
    note(o, "%s: %s", what, err_str(rc));
    if (rc == ERR_RATE_LIMIT && hint > 0)
        o->rec->retry_after_ms = hint > 86400000 ? 86400000 : (int)hint;
    finish(o, rc, false);
}

/* A call failed for the whole batch: every record not yet finished gets the error. */
static void fail_rest_hint(struct opp *opps, size_t n, enum err rc, const char *what, int64_t hint)
{
    for (size_t i = 0; i < n; i++)
        if (!opps[i].is_finished)
            fail_hint(&opps[i], rc, what, hint);
}

/* fail_rest_hint after a call of the worker's own HubSpot client. */
static void fail_rest(struct sync_ctx *ctx, struct opp *opps, size_t n, enum err rc,
                      const char *what)
{
    fail_rest_hint(opps, n, rc, what, ctx->hs ? hs_retry_after_ms(ctx->hs) : -1);
}

/* ---- Reading Salesforce ---------------------------------------------------------------------- */

static const char *const base_fields[] = {
    "Id",
    "RecordTypeId",
    "AccountId",
    "CreatedDate",
    "LastModifiedDate",
    "LastModifiedById",
    "CreatedById",
    "SystemModstamp",
    "IsClosed",
    "IsWon",
    "Owner.Email",
    "Account.Name",
    "Account.Website",
    "Account.Phone",
    "Account.Industry",
    "Account.BillingCity",
    "Account.BillingCountry",
};

static bool list_has(const struct buf *b, const char *field)
{
    size_t n = strlen(field);
    for (const char *p = b->data; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncasecmp(p, field, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

/* "'id1','id2'" for the records still in play (ids are validated 18-character ids). */
static char *id_list(const struct opp *opps, size_t n, bool only_found)
{
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < n; i++) {
        if (opps[i].is_finished || (only_found && !opps[i].sf))
            continue;
        buf_printf(&b, "%s'%s'", b.len ? "," : "", opps[i].id);
    }
    return buf_steal(&b);
}

/* What the sync reads of each contact role. */
#define ROLE_FIELDS                                                                                \
    "Id, OpportunityId, ContactId, Contact.Email, Contact.FirstName, Contact.LastName"

static enum err query_opportunities(struct sync_ctx *ctx, PGconn *db, struct opp *opps, size_t n,
                                    cJSON **records)
{
    struct buf fields;
    buf_init(&fields, 0);
    for (size_t i = 0; i < sizeof(base_fields) / sizeof(base_fields[0]); i++)
        buf_printf(&fields, "%s%s", i ? "," : "", base_fields[i]);
    char *mapped = mapping_sf_field_list(ctx->mappings);
    for (char *p = mapped, *save = NULL, *f; (f = strtok_r(p, ",", &save)) != NULL; p = NULL)
        if (!list_has(&fields, f))
            buf_printf(&fields, ",%s", f);
    free(mapped);
    bool has_deal_field = false;
    char *why = NULL;
    if (sf_setup_deal_field_state(db, &has_deal_field, &why) == ERR_OK && has_deal_field &&
        !list_has(&fields, ctx->cfg->sf_deal_id_field))
        buf_printf(&fields, ",%s", ctx->cfg->sf_deal_id_field);
    free(why);
    char *ids = id_list(opps, n, false);
    enum err rc = ERR_OK;
    if (ids[0]) {
        char *soql = xasprintf("SELECT %s, (SELECT " ROLE_FIELDS " FROM OpportunityContactRoles)"
                               " FROM Opportunity WHERE Id IN (%s)",
                               fields.data, ids);
        rc = sf_query(ctx->sf, soql, records);
        free(soql);
    } else {
        *records = cJSON_CreateArray(); /* every record deferred (busy): nothing to read */
    }
    free(ids);
    buf_clear(&fields);
    return rc;
}

/* The contact roles of the queried opportunities, from each one's OpportunityContactRoles (the
 * opportunities' query selects them): no second query. Salesforce pages a long child list
 * ("done": false); then the roles are queried on their own, as before. */
static enum err query_roles(struct sync_ctx *ctx, struct opp *opps, size_t n,
                            const cJSON *sf_records, cJSON **roles)
{
    cJSON *all = cJSON_CreateArray();
    bool is_whole = true;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, sf_records)
    {
        const cJSON *set = cJSON_GetObjectItemCaseSensitive(rec, "OpportunityContactRoles");
        if (cJSON_IsNull(set) || !set)
            continue;
        is_whole &= cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(set, "done"));
        const cJSON *role;
        cJSON_ArrayForEach(role, cJSON_GetObjectItemCaseSensitive(set, "records"))
            cJSON_AddItemToArray(all, cJSON_Duplicate(role, true));
    }
    if (is_whole) {
        *roles = all;
        return ERR_OK;
    }
    cJSON_Delete(all);
    char *ids = id_list(opps, n, true);
    enum err rc = ERR_OK;
    if (ids[0]) {
        char *soql = xasprintf("SELECT " ROLE_FIELDS " FROM OpportunityContactRole"
                               " WHERE OpportunityId IN (%s)",
                               ids);
        rc = sf_query(ctx->sf, soql, roles);
        free(soql);
    } else {
        *roles = cJSON_CreateArray();
    }
    free(ids);
    return rc;
}

static bool same_id(const char *a, const char *b)
{
    return a && b && sf_id_equal(a, b);
}

/* ---- Owners: Salesforce user -> HubSpot owner by e-mail ----------------------------------------
 */

struct owners {
    struct hs_client *hs;
    int cache_seconds;
    cJSON *emails; /* {"user id": "e-mail"} from Owner.Email */
    cJSON *found;  /* {"user id": "owner id" | null} */
};

static enum err owner_lookup(void *arg, enum mapping_direction dir, const char *id, char **out)
{
    struct owners *ow = arg;
    if (dir != MAPPING_SF_TO_HS)
        return ERR_NOT_FOUND;
    const cJSON *hit = cJSON_GetObjectItemCaseSensitive(ow->found, id);
    if (hit) {
        if (!cJSON_IsString(hit))
            return ERR_NOT_FOUND;
        *out = xstrdup(hit->valuestring);
        return ERR_OK;
    }
    const char *email = str(ow->emails, id);
    if (!email)
        return ERR_NOT_FOUND;
    char *owner = NULL;
    enum err rc = hs_owners_find_by_email(ow->hs, ow->cache_seconds, email, &owner);
    if (rc == ERR_NOT_FOUND)
        cJSON_AddNullToObject(ow->found, id);
    if (rc != ERR_OK)
        return rc;
    cJSON_AddStringToObject(ow->found, id, owner);
    *out = owner;
    return ERR_OK;
}

/* ---- Deletes --------------------------------------------------------------------------------- */

/* Adds the HubSpot ids of a map's values to the set (array of unique strings). */
static void add_ids(cJSON *set, const cJSON *map)
{
    for (const cJSON *e = map ? map->child : NULL; e; e = e->next) {
        bool seen = false;
        const cJSON *s;
        cJSON_ArrayForEach(s, set) if (strcmp(s->valuestring, e->valuestring) == 0) seen = true;
        if (!seen)
            cJSON_AddItemToArray(set, cJSON_CreateString(e->valuestring));
    }
}

/* An opportunity the query did not return has its deal deleted only when Salesforce says it is
 * deleted: the getDeleted poller's event, or IsDeleted in queryAll (the recycle bin). One the
 * integration user merely cannot see keeps its deal. */
static enum err confirm_deletes(struct sync_ctx *ctx, struct opp *opps, size_t n)
{
    struct buf ids;
    buf_init(&ids, 0);
    for (size_t i = 0; i < n; i++) {
        struct opp *o = &opps[i];
        if (o->is_finished || o->sf || !o->deal_id)
            continue;
        for (size_t j = 0; j < o->rec->event_count; j++)
            if (strcmp(o->rec->events[j].event_type, "deleted") == 0)
                o->is_deleted = o->is_reported_deleted = true;
        if (!o->is_deleted)
            buf_printf(&ids, "%s'%s'", ids.len ? "," : "", o->id);
    }
    enum err rc = ERR_OK;
    if (ids.len > 0) {
        char *soql = xasprintf("SELECT Id, IsDeleted FROM Opportunity WHERE Id IN (%s)", ids.data);
        cJSON *rows = NULL;
        rc = sf_query_all(ctx->sf, soql, &rows);
        const cJSON *r;
        cJSON_ArrayForEach(r, rows)
        {
            for (size_t i = 0; i < n; i++)
                if (!opps[i].is_finished && !opps[i].sf && same_id(str(r, "Id"), opps[i].id) &&
                    cJSON_IsTrue(cJSON_GetObjectItem(r, "IsDeleted")))
                    opps[i].is_deleted = true;
        }
        cJSON_Delete(rows);
        free(soql);
    }
    buf_clear(&ids);
    for (size_t i = 0; rc == ERR_OK && i < n; i++) {
        struct opp *o = &opps[i];
        if (o->is_finished || o->sf || !o->deal_id || o->is_deleted)
            continue;
        note(o,
             "opportunity not found in salesforce but not deleted there (not visible to the "
             "integration user?): hubspot deal %s kept",
             o->deal_id);
        finish(o, ERR_OK, true);
    }
    return rc;
}

static enum err handle_deletes(struct sync_ctx *ctx, PGconn *db, struct opp *opps, size_t n,
                               cJSON *rollup_contacts)
{
    enum err rc = confirm_deletes(ctx, opps, n);
    if (rc != ERR_OK)
        return rc;
    const char **ids = xcalloc(n + 1, sizeof(*ids));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!opps[i].is_finished && !opps[i].sf && opps[i].deal_id)
            ids[k++] = opps[i].deal_id;
    if (k > 0) {
        struct hs_batch_result res = {0};
        rc = hs_batch_archive(ctx->hs, "deals", ids, k, &res);
        hs_batch_result_clear(&res);
    }
    free(ids);
    if (rc != ERR_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct opp *o = &opps[i];
        if (o->is_finished || o->sf)
            continue;
        cJSON *previous = NULL;
        rc = synced_deal_contacts(db, o->id, &previous);
        if (rc == ERR_OK) {
            add_ids(rollup_contacts, previous);
            o->contacts = previous;
            /* Forgotten only once the roll-ups are queued (see the end of the batch). */
            rc = synced_deal_mark_deleted(db, o->id);
        } else {
            cJSON_Delete(previous);
        }
        if (rc == ERR_OK)
            rc = link_delete_by_sf(db, LINK_OPPORTUNITY, o->id);
        if (rc != ERR_OK)
            return rc;
        if (o->deal_id)
            note(o, "opportunity deleted in salesforce (%s): hubspot deal %s deleted",
                 o->is_reported_deleted ? "reported by getDeleted" : "found deleted when read",
                 o->deal_id);
        else
            note(o, "opportunity not found in salesforce (deleted, or not visible to the "
                    "integration user) and no hubspot deal has its id: nothing to delete");
        finish(o, ERR_OK, false);
    }
    return ERR_OK;
}

/* ---- One record: pipeline, fields ------------------------------------------------------------ */

static int64_t sf_time(const cJSON *sf, const char *field)
{
    int64_t ms = -1;
    const char *s = str(sf, field);
    if (!s || !sf_datetime_parse(s, &ms))
        return -1;
    return ms;
}

/* Leaves a field's HubSpot value as it is: not written here, and its HubSpot baseline kept, so
 * the HubSpot-to-Salesforce direction carries it. When Salesforce's value lost a conflict
 * (is_lost), that value becomes Salesforce's baseline: the decision stands, and a later sync
 * (after an unrelated edit of the opportunity made it the record modified later) does not decide
 * the conflict again the other way. Deciding it again lost the later HubSpot change (chaos run of
 * make test, Type). */
static void defer_to_hubspot(struct opp *o, cJSON *changes, const struct mapping_field *f,
                             bool is_lost)
{
    cJSON_DeleteItemFromObjectCaseSensitive(changes, f->hs_property);
    if (strcmp(f->hs_property, "dealstage") == 0)
        cJSON_DeleteItemFromObjectCaseSensitive(changes, "pipeline");
    if (!o->deferred)
        o->deferred = cJSON_CreateObject();
    if (is_lost)
        cJSON_AddNullToObject(o->deferred, f->hs_property);
    else
        cJSON_AddStringToObject(o->deferred, f->hs_property, f->sf_field);
}

/* Whether Salesforce's value of f is what dealsync saw there at the last sync, or wrote there. */
static bool is_sf_unchanged(const struct link *l, const struct mapping_field *f, const cJSON *now)
{
    const cJSON *seen = cJSON_GetObjectItem(l->sf_seen, f->sf_field);
    const cJSON *own = cJSON_GetObjectItem(l->sf_written, f->sf_field);
    return (seen && sync_deal_same_value(seen, now)) || (own && sync_deal_same_value(own, now));
}

/* The deal holds dealsync's own write of a two-way field that Salesforce changed, but the deal
 * changed since dealsync last knew it (hs_modified after the link's time): a HubSpot user may
 * have set the field away and back, and the value alone cannot tell (a chaos run: both sides
 * ended with the older Salesforce stage when its sync came before the deal's webhooks). Likewise
 * a write of unknown outcome (cut off by a timeout or a kill) whose value the deal holds, whether
 * Salesforce changed or not: a user may have set that value after a write that was not carried
 * out (a test: the user's HubSpot change was undone by Salesforce's older value on both sides).
 * The fields' history, read in one call, tells: those a user or another app changed since go
 * into o->hs_foreign, and count as changed in HubSpot; a write of unknown outcome that no one
 * changed since was carried out, and is settled as such (link_settle_written). Costs a call only
 * in those cases. */
static enum err read_hubspot_history(struct sync_ctx *ctx, PGconn *db, struct opp *o,
                                     const struct link *l, const cJSON *changes,
                                     int64_t hs_modified)
{
    if (!o->deal_id || l->hs_modified_ms <= 0 || hs_modified <= l->hs_modified_ms)
        return ERR_OK;
    const cJSON *hs_props = cJSON_GetObjectItemCaseSensitive(o->deal, "properties");
    struct buf names;
    buf_init(&names, 0);
    for (size_t i = 0; i < mapping_set_count(ctx->mappings); i++) {
        const struct mapping_field *f = mapping_set_field(ctx->mappings, i);
        const cJSON *own = cJSON_GetObjectItemCaseSensitive(l->hs_written, f->hs_property);
        if (f->rule != MAPPING_RULE_TWO_WAY ||
            !cJSON_GetObjectItemCaseSensitive(changes, f->hs_property) || !own ||
            !sync_deal_same_value(own, cJSON_GetObjectItem(hs_props, f->hs_property)) ||
            (is_sf_unchanged(l, f, cJSON_GetObjectItem(o->sf, f->sf_field)) &&
             !link_is_maybe_written(l, true, f->hs_property)))
            continue;
        buf_printf(&names, "%s%s", names.len ? "," : "", f->hs_property);
    }
    if (!names.len) {
        buf_clear(&names);
        return ERR_OK;
    }
    cJSON *deal = NULL;
    enum err rc = hs_object_get_history(ctx->hs, "deals", o->deal_id, names.data, &deal);
    buf_clear(&names);
    /* The deal was deleted since it was read (a user deleted it in between): the record is
     * tried again (map_record), and that read follows the delete rules. Taken as it came, the
     * 404 made the whole batch dead (make test's chaos run, 5 dead events). */
    if (rc == ERR_NOT_FOUND)
        return ERR_BUSY;
    if (rc != ERR_OK)
        return rc;
    const cJSON *history = cJSON_GetObjectItemCaseSensitive(deal, "propertiesWithHistory");
    cJSON *confirmed = cJSON_CreateObject();
    const cJSON *h;
    cJSON_ArrayForEach(h, history)
    {
        const cJSON *own = cJSON_GetObjectItemCaseSensitive(l->hs_written, h->string);
        if (!sync_echo_history_changed(h, own, l->hs_modified_ms, ctx->cfg->hubspot_app_id)) {
            if (link_is_maybe_written(l, true, h->string))
                cJSON_AddTrueToObject(confirmed, h->string);
            continue;
        }
        if (!o->hs_foreign)
            o->hs_foreign = cJSON_CreateObject();
        cJSON_AddTrueToObject(o->hs_foreign, h->string);
    }
    cJSON_Delete(deal);
    /* A user's value is forgotten as dealsync's own write when the link is saved
     * (remember_link): the sync may still fail before, and the history tells again. */
    rc = link_settle_written(db, LINK_OPPORTUNITY, o->id, true, confirmed, NULL);
    cJSON_Delete(confirmed);
    return rc;
}

/* For a pair without a baseline whose deal was modified later: which two-way fields to write
 * (in changes) only dealsync ever set on the deal (sync_echo_hs_own_only), one call. A field
 * whose value is the same on both sides is not asked about (nothing to decide). */
static enum err read_own_only(struct sync_ctx *ctx, struct opp *o, const cJSON *changes,
                              cJSON **own_only)
{
    const cJSON *hs_props = cJSON_GetObjectItemCaseSensitive(o->deal, "properties");
    struct buf names;
    buf_init(&names, 0);
    for (size_t i = 0; i < mapping_set_count(ctx->mappings); i++) {
        const struct mapping_field *f = mapping_set_field(ctx->mappings, i);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(changes, f->hs_property);
        if (f->rule != MAPPING_RULE_TWO_WAY || !want ||
            sync_deal_same_value(want, cJSON_GetObjectItem(hs_props, f->hs_property)))
            continue;
        buf_printf(&names, "%s%s", names.len ? "," : "", f->hs_property);
    }
    enum err rc = ERR_OK;
    if (names.len && o->deal_id)
        rc = sync_echo_hs_own_only(ctx, o->deal_id, names.data, own_only);
    buf_clear(&names);
    return rc;
}

/* Two-way fields: the most recent change wins, by the same rule as the other direction
 * (sync_deal_hubspot_wins). A field whose Salesforce value is what dealsync saw there at the last
 * sync did not change in Salesforce since, so a different HubSpot value is the newer one. When
 * both sides changed it, the side whose record changed in the later second wins; a HubSpot win
 * is left out here (the HubSpot-to-Salesforce direction carries it to Salesforce). */
static enum err keep_newer_hubspot_values(struct sync_ctx *ctx, PGconn *db, struct opp *o,
                                          cJSON *changes)
{
    struct link l = {0};
    enum err rc = link_find_by_sf(db, LINK_OPPORTUNITY, o->id, &l);
    /* Both records exist but no baseline does (the sync that made one of them died before it
     * saved the link, or the pair was made before dealsync): the record modified in the later
     * second wins each field that differs, as in a conflict. */
    bool has_baseline = rc == ERR_OK;
    if (rc == ERR_NOT_FOUND)
        rc = ERR_OK;
    if (rc != ERR_OK)
        return rc;
    const cJSON *hs_props = cJSON_GetObjectItemCaseSensitive(o->deal, "properties");
    int64_t hs_modified = -1;
    const char *hs_mod_text = str(hs_props, "hs_lastmodifieddate");
    if (!hs_mod_text || !util_parse_iso8601_ms(hs_mod_text, &hs_modified))
        hs_modified = -1;
    int64_t sf_modified = sf_time(o->sf, "LastModifiedDate");
    /* The record's messages: a field a user set away and back since the last sync changed. */
    cJSON *messages = has_baseline ? sync_echo_sf_record_messages(o->rec) : NULL;
    /* A write to the opportunity of unknown outcome whose value it holds: dealsync's own, or a
     * user's, by who saved it last (its messages first, then the read; sync_echo_sf.h). */
    if (has_baseline &&
        (rc = sync_echo_sf_settle_maybe(db, &l, o->sf, messages, sf_user_id(ctx->sf))) != ERR_OK) {
        cJSON_Delete(messages);
        link_clear(&l);
        return rc;
    }
    if (has_baseline &&
        (rc = read_hubspot_history(ctx, db, o, &l, changes, hs_modified)) != ERR_OK) {
        cJSON_Delete(messages);
        link_clear(&l);
        return rc;
    }
    /* No baseline, and the deal modified in the later second: a value no one but dealsync
     * ever set on the deal is dealsync's own (its creation, maybe from a read older than the
     * user's Salesforce change), not a HubSpot user's change, and Salesforce's value is written. */
    cJSON *own_only = NULL;
    if (!has_baseline && hs_modified >= 0 && sf_modified >= 0 &&
        sync_deal_hubspot_wins(hs_modified, sf_modified) &&
        (rc = read_own_only(ctx, o, changes, &own_only)) != ERR_OK) {
        cJSON_Delete(messages);
        link_clear(&l);
        return rc;
    }
    bool is_sf_own_creation =
        !has_baseline && sync_echo_sf_own_creation(o->sf, sf_user_id(ctx->sf));
    for (size_t i = 0; i < mapping_set_count(ctx->mappings); i++) {
        const struct mapping_field *f = mapping_set_field(ctx->mappings, i);
        if (f->rule != MAPPING_RULE_TWO_WAY ||
            !cJSON_GetObjectItemCaseSensitive(changes, f->hs_property))
            continue;
        const cJSON *now = cJSON_GetObjectItem(o->sf, f->sf_field);
        if (!has_baseline) {
            if (hs_modified < 0 || sf_modified < 0 ||
                !sync_deal_hubspot_wins(hs_modified, sf_modified)) {
                /* Modified later, but by dealsync's creation alone: its values are dealsync's
                 * own (from a deal read maybe older than the user's HubSpot change). */
                if (!is_sf_own_creation)
                    continue;
                defer_to_hubspot(o, changes, f, false);
                note(o,
                     "%s not written: no baseline yet, and the opportunity is dealsync's own "
                     "creation, unchanged since (kept)",
                     f->hs_property);
                continue;
            }
            if (cJSON_GetObjectItemCaseSensitive(own_only, f->hs_property)) {
                note(o,
                     "%s written: no baseline yet, and only dealsync ever set it in hubspot "
                     "(its history)",
                     f->hs_property);
                continue;
            }
            defer_to_hubspot(o, changes, f, false);
            note(o, "%s not written: no baseline yet and hubspot changed later (kept)",
                 f->hs_property);
            continue;
        }
        const cJSON *hs_seen = cJSON_GetObjectItem(l.hs_seen, f->hs_property);
        const cJSON *hs_now = cJSON_GetObjectItem(hs_props, f->hs_property);
        /* A value dealsync itself wrote is no user's change, even when the sync that wrote it
         * failed before it could save the baseline (its answer lost, a later call failed):
         * taken for a HubSpot change, such an echo won against the user's newer Salesforce
         * value (chaos finding F2). Unless its history shows a user set it since. */
        const cJSON *own_hs = cJSON_GetObjectItemCaseSensitive(l.hs_written, f->hs_property);
        bool is_foreign = cJSON_GetObjectItemCaseSensitive(o->hs_foreign, f->hs_property);
        bool hs_own = !is_foreign && own_hs && sync_deal_same_value(own_hs, hs_now);
        bool sf_unchanged =
            is_sf_unchanged(&l, f, now) && !sync_echo_sf_changed(messages, &l, f->sf_field);
        bool hs_changed =
            is_foreign || (hs_seen && !sync_deal_same_value(hs_seen, hs_now) && !hs_own);
        bool hs_newer = hs_changed && hs_modified >= 0 && sf_modified >= 0 &&
                        sync_deal_hubspot_wins(hs_modified, sf_modified);
        if (hs_own || (!sf_unchanged && !hs_newer)) {
            if (hs_changed && !sync_deal_same_value(hs_now, now))
                note(o,
                     "conflict on %s: salesforce value (changed later) written, hubspot value "
                     "lost",
                     f->hs_property);
            continue;
        }
        defer_to_hubspot(o, changes, f, !sf_unchanged);
        if (sf_unchanged)
            note(o,
                 "%s kept: changed in hubspot since the last sync, and two-way means the newest "
                 "value wins",
                 f->hs_property);
        else
            note(o, "conflict on %s: hubspot value (changed later) kept, salesforce value lost",
                 f->hs_property);
    }
    cJSON_Delete(own_only);
    cJSON_Delete(messages);
    link_clear(&l);
    return ERR_OK;
}

/* The tombstone of deal hs_id, deleted in HubSpot, for opportunity sf_id: dated when HubSpot
 * deleted it (from the recycling bin), else now. */
static enum err tombstone_deal(struct sync_ctx *ctx, PGconn *db, const char *sf_id,
                               const char *hs_id)
{
    cJSON *deal = NULL;
    int64_t deleted_ms = 0;
    enum err rc = hs_object_get_archived(ctx->hs, "deals", hs_id, &deal);
    const char *at = str(deal, "archivedAt");
    if (rc != ERR_OK || !at || !util_parse_iso8601_ms(at, &deleted_ms))
        deleted_ms = 0;
    cJSON_Delete(deal);
    if (rc != ERR_OK && rc != ERR_NOT_FOUND)
        return rc;
    return link_tombstone_save(db, sf_id, hs_id, deleted_ms);
}

/* An opportunity still linked to a deal that HubSpot no longer has (not found by its id):
 * deleted in HubSpot, so forgotten here as the deletion webhook's handler does
 * (sync_deal.c), with a tombstone dated when HubSpot deleted it. A linked deal that exists but
 * does not hold the opportunity id (the other direction made the opportunity from it and its
 * write-back of the id failed or is still to come) gets the id here and the record comes back
 * shortly (ERR_BUSY), as in lock_found_deals: a new deal would be a second one (chaos run: 82
 * duplicates once the link was saved before that write-back). */
static enum err forget_deleted_deal(struct sync_ctx *ctx, PGconn *db, struct opp *o)
{
    struct link l = {0};
    enum err rc = link_find_by_sf(db, LINK_OPPORTUNITY, o->id, &l);
    if (rc == ERR_NOT_FOUND)
        return ERR_OK;
    if (rc != ERR_OK)
        return rc;
    cJSON *deal = NULL;
    rc = hs_object_get(ctx->hs, "deals", l.hs_id, NULL, "dealname", NULL, &deal);
    cJSON_Delete(deal);
    deal = NULL;
    if (rc == ERR_OK) {
        cJSON *props = cJSON_CreateObject();
        cJSON_AddStringToObject(props, ctx->cfg->hs_opportunity_id_property, o->id);
        rc = hs_object_update(ctx->hs, "deals", l.hs_id, NULL, props, &deal);
        cJSON_Delete(props);
        cJSON_Delete(deal);
        deal = NULL;
        if (rc == ERR_OK) {
            note(o, "linked deal %s did not hold the opportunity id: stored on it", l.hs_id);
            finish(o, ERR_BUSY, false);
        }
        link_clear(&l);
        return rc == ERR_NOT_FOUND ? ERR_BUSY : rc;
    }
    if (rc == ERR_NOT_FOUND) {
        /* The tombstone first: a link forgotten without one would make a new deal at once. */
        rc = tombstone_deal(ctx, db, o->id, l.hs_id);
        if (rc == ERR_OK)
            rc = link_delete_by_sf(db, LINK_OPPORTUNITY, o->id);
        if (rc == ERR_OK)
            note(o, "its deal %s is deleted in hubspot (deletion not handled yet): link forgotten",
                 l.hs_id);
    }
    link_clear(&l);
    return rc;
}

/* The deal property definitions a batch maps against: the shared copy, or one read during
 * the batch (is_fresh). */
struct deal_defs {
    cJSON *list;
    bool is_fresh;
};

/* Maps the record and stores what to write in o->written. ERR_OK also when the record is
 * finished here (not synced, with the reason); other errors are the batch's. */
static enum err map_record(struct sync_ctx *ctx, PGconn *db, struct pipelines *pl,
                           struct owners *ow, struct deal_defs *defs, struct opp *o)
{
    char *pipeline_id = NULL;
    cJSON *stage_map = NULL;
    char *reason = NULL;
    enum err refusal = ERR_OK;
    struct mapping_result mr = {0};
    const char *rt = str(o->sf, "RecordTypeId");
    const char *stage = str(o->sf, "StageName");
    if (!o->deal) {
        /* Linked, but HubSpot has no deal for it: the user deleted the deal, and its deletion
         * webhook is not handled yet (a retried sync got here first). Taken as the user's delete
         * now, as that webhook would: the link forgotten, a tombstone saved; making a new deal
         * here brought a deleted deal back (chaos finding F7). */
        enum err found = forget_deleted_deal(ctx, db, o);
        if (found != ERR_OK || o->is_finished)
            return found;
        /* A deal deleted in HubSpot comes back only for a change made after the delete: an
         * older event (a late outbound message, a poller's, dealsync's own echo) leaves it
         * deleted. Both clocks are the CRMs' and dealsync's; a skew of seconds matters only for
         * a change made in those seconds. */
        int64_t deleted_ms = 0;
        found = link_tombstone_find(db, o->id, &deleted_ms);
        if (found != ERR_OK)
            return found;
        /* LastModifiedDate counts whole seconds: a change in the delete's own second is taken
         * as before it. The deal then stays deleted until the opportunity's next change (nothing
         * is lost: Salesforce holds the change), rather than coming back against the user's
         * delete. */
        int64_t modified = sf_time(o->sf, "LastModifiedDate");
        /* Nor is dealsync's own write a change after the delete: the opportunity it made from
         * the deal while the user deleted the deal (chaos run: a deal nobody made). */
        const char *by = str(o->sf, "LastModifiedById");
        bool is_own = by && sf_user_id(ctx->sf) && sf_id_equal(by, sf_user_id(ctx->sf));
        if (deleted_ms > 0 && (modified <= deleted_ms || is_own)) {
            note(o,
                 "not synced: its deal was deleted in hubspot after the opportunity's last "
                 "change%s; "
                 "a new deal is made when the opportunity changes",
                 modified > deleted_ms ? " by a user (the last is dealsync's own write)" : "");
            finish(o, ERR_OK, true);
            return ERR_OK;
        }
        if (deleted_ms > 0) {
            found = link_tombstone_delete(db, o->id);
            if (found != ERR_OK)
                return found;
            note(o, "its deal was deleted in hubspot; the opportunity changed since: a new deal");
        }
    }
    const cJSON *now = o->deal ? cJSON_GetObjectItemCaseSensitive(o->deal, "properties") : NULL;
    const char *in_pipeline = str(now, "pipeline");
    if (in_pipeline) {
        /* A user moved the deal to a pipeline that is no Salesforce pipeline: as in HubSpot's
         * integration, it stops syncing until it is moved back (both directions skip it). */
        char *record_type = NULL;
        enum err found = pipeline_map_find_by_hs(db, in_pipeline, &record_type);
        free(record_type);
        if (found == ERR_NOT_FOUND) {
            note(o,
                 "not synced: deal %s is in pipeline %s, not a salesforce pipeline; left alone "
                 "until it is moved back",
                 o->deal_id, in_pipeline);
            finish(o, ERR_OK, true);
            return ERR_OK;
        }
        if (found != ERR_OK)
            return found;
    }
    enum err rc =
        pipelines_resolve(pl, rt ? rt : "", stage, &pipeline_id, &stage_map, &reason, &refusal);
    if (rc != ERR_OK)
        goto out;
    if (!pipeline_id) {
        note(o, "not synced: %s", reason);
        finish(o, refusal, refusal == ERR_OK);
        goto out;
    }
    const cJSON *owner = cJSON_GetObjectItemCaseSensitive(o->sf, "Owner");
    if (str(o->sf, "OwnerId") && str(owner, "Email") &&
        !cJSON_GetObjectItemCaseSensitive(ow->emails, str(o->sf, "OwnerId")))
        cJSON_AddStringToObject(ow->emails, str(o->sf, "OwnerId"), str(owner, "Email"));
    struct mapping_context mctx = {0};
    mctx.stage_map = stage_map;
    mctx.hs_pipeline_id = pipeline_id;
    mctx.owner_fn = owner_lookup;
    mctx.owner_arg = ow;
    mctx.hs_property_defs = defs->list;
    const cJSON *current = o->deal ? cJSON_GetObjectItemCaseSensitive(o->deal, "properties") : NULL;
    rc = mapping_apply(ctx->mappings, &mctx, MAPPING_SF_TO_HS, o->sf, current, &mr);
    if (rc == ERR_OK && !defs->is_fresh && mapping_result_lacks_hs_option(&mr)) {
        /* The shared definitions may predate an option a user just added in HubSpot: read
         * them again (once a batch) rather than leave the value out. */
        cJSON *fresh = NULL;
        rc = sync_deal_property_defs_copy(ctx, true, &fresh);
        if (rc != ERR_OK)
            goto out;
        cJSON_Delete(defs->list);
        defs->list = fresh;
        defs->is_fresh = true;
        mapping_result_clear(&mr);
        mctx.hs_property_defs = defs->list;
        rc = mapping_apply(ctx->mappings, &mctx, MAPPING_SF_TO_HS, o->sf, current, &mr);
    }
    if (rc != ERR_OK)
        goto out;
    /* Synced, with something left out: a warning in the outcome and the metrics. */
    if (mr.skip_count > 0)
        o->rec->has_warning = true;
    for (size_t i = 0; i < mr.skip_count; i++) {
        if (strcmp(mr.skips[i].field, "OwnerId") == 0) {
            note(o, "owner left as it is: no hubspot owner has the e-mail %s of salesforce user %s",
                 str(owner, "Email") ? str(owner, "Email") : "(none)", str(o->sf, "OwnerId"));
            /* An owner is never erased: one HubSpot cannot match leaves the deal's owner as it
             * is (as HubSpot's integration does), and the baseline takes both as they are, so
             * the deal's owner does not travel back either. */
        } else {
            note(o, "%s not written: %s", mr.skips[i].field, mr.skips[i].reason);
        }
    }
    if (o->deal) {
        rc = keep_newer_hubspot_values(ctx, db, o, mr.changes);
        if (rc == ERR_BUSY) {
            note(o, "its deal %s was deleted while it was read: tried again", o->deal_id);
            finish(o, ERR_BUSY, false);
            rc = ERR_OK;
            goto out;
        }
        if (rc != ERR_OK)
            goto out;
    }
    if (!o->deal && !cJSON_GetObjectItemCaseSensitive(mr.changes, "dealstage")) {
        note(o, "not synced: salesforce stage \"%s\" has no hubspot stage in pipeline %s",
             stage ? stage : "", pipeline_id);
        finish(o, ERR_INVALID, false);
        goto out;
    }
    o->written = mr.changes;
    mr.changes = NULL;
out:
    mapping_result_clear(&mr);
    cJSON_Delete(stage_map);
    free(pipeline_id);
    free(reason);
    return rc;
}

/* ---- Writing deals --------------------------------------------------------------------------- */

static cJSON *upsert_input(const struct sync_ctx *ctx, const struct opp *o)
{
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "id", o->id);
    cJSON_AddStringToObject(in, "idProperty", ctx->cfg->hs_opportunity_id_property);
    cJSON *props = cJSON_Duplicate(o->written, true);
    if (!o->deal)
        cJSON_AddStringToObject(props, ctx->cfg->hs_opportunity_id_property, o->id);
    cJSON_AddItemToObject(in, "properties", props);
    return in;
}

/* Upserts the listed records (at most HS_BATCH_MAX: one call, which HubSpot carries out or
 * not as a whole); results are matched by the id property when HubSpot returns it, else by
 * position. */
static enum err upsert(struct sync_ctx *ctx, struct opp **list, size_t k)
{
    cJSON *inputs = cJSON_CreateArray();
    for (size_t i = 0; i < k; i++)
        cJSON_AddItemToArray(inputs, upsert_input(ctx, list[i]));
    struct hs_batch_result res = {0};
    enum err rc = hs_batch_upsert(ctx->hs, "deals", inputs, &res);
    /* A write cut off by a timeout may have been carried out, its answer lost: it stays
     * remembered (see unnote_unwritten). */
    for (size_t i = 0; i < k; i++)
        list[i]->is_maybe_written |= rc == ERR_OK || rc == ERR_TIMEOUT;
    if (rc == ERR_OK) {
        int i = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, res.results)
        {
            const char *opp =
                str(cJSON_GetObjectItem(r, "properties"), ctx->cfg->hs_opportunity_id_property);
            struct opp *o = NULL;
            for (size_t j = 0; opp && j < k; j++)
                if (strcmp(list[j]->id, opp) == 0)
                    o = list[j];
            if (!o && !opp && (size_t)i < k && cJSON_GetArraySize(res.results) == (int)k)
                o = list[i];
            i++;
            if (!o || !str(r, "id"))
                continue;
            free(o->deal_id);
            o->deal_id = xstrdup(str(r, "id"));
            o->is_new = cJSON_IsTrue(cJSON_GetObjectItem(r, "new"));
            const char *updated = str(r, "updatedAt");
            if (!updated || !util_parse_iso8601_ms(updated, &o->upserted_ms))
                o->upserted_ms = 0;
        }
    }
    hs_batch_result_clear(&res);
    cJSON_Delete(inputs);
    return rc;
}

/* A write HubSpot refused. When the record's deal existed when read and HubSpot no longer has
 * it, the user deleted it meanwhile (the upsert by the opportunity id then makes a deal without
 * its required properties, refused; chaos run): taken as the user's delete, as the deletion
 * webhook's handler takes it (the link forgotten, a tombstone saved; docs/two-way.md), and the
 * record comes back shortly (ERR_BUSY) to follow the delete rules: a new deal only for a change
 * made after the delete. */
static void refused(struct sync_ctx *ctx, PGconn *db, struct opp *o, enum err why)
{
    if (o->deal && o->deal_id) {
        cJSON *deal = NULL;
        enum err rc = hs_object_get(ctx->hs, "deals", o->deal_id, NULL, "dealname", NULL, &deal);
        cJSON_Delete(deal);
        if (rc == ERR_NOT_FOUND) {
            rc = forget_deleted_deal(ctx, db, o);
            if (o->is_finished)
                return;
            if (rc == ERR_OK)
                note(o, "its deal %s was deleted in hubspot while being written: not written",
                     o->deal_id);
            else
                note(o, "its deal %s was deleted in hubspot while being written: %s", o->deal_id,
                     "cannot forget the link");
            finish(o, rc == ERR_OK ? ERR_BUSY : rc, false);
            return;
        }
        if (rc != ERR_OK) {
            note(o, "hubspot refused the deal (%s), and reading it again failed", err_str(why));
            finish(o, rc, false);
            return;
        }
    }
    note(o, "hubspot refused the deal: %s (details in the log)", err_str(why));
    finish(o, why, false);
}

static cJSON *assoc_to(const char *id, int type_id)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(a, "to"), "id", id);
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "associationCategory", "HUBSPOT_DEFINED");
    cJSON_AddNumberToObject(t, "associationTypeId", type_id);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(a, "types"), t);
    return a;
}

/* The HubSpot contacts of o's contact roles (contact_map: {"sf contact id": "hs contact id"}),
 * each once, as {"hs id": true}. Caller deletes. */
static cJSON *role_contacts(const struct opp *o, const cJSON *roles, const cJSON *contact_map)
{
    cJSON *out = cJSON_CreateObject();
    const cJSON *r;
    cJSON_ArrayForEach(r, roles)
    {
        const char *cid = str(r, "ContactId");
        const char *hs =
            cid && same_id(str(r, "OpportunityId"), o->id) ? str(contact_map, cid) : NULL;
        if (hs && !cJSON_GetObjectItemCaseSensitive(out, hs))
            cJSON_AddTrueToObject(out, hs);
    }
    return out;
}

/* A new deal's create input (reference hubspot.md 4.1, batch create): its properties, and its
 * account's company (primary) and its contact roles' contacts associated in the same call. */
static cJSON *create_input(const struct sync_ctx *ctx, const struct opp *o, const cJSON *roles,
                           const cJSON *contact_map)
{
    cJSON *in = cJSON_CreateObject();
    cJSON *props = cJSON_Duplicate(o->written, true);
    cJSON_DeleteItemFromObjectCaseSensitive(props, ctx->cfg->hs_opportunity_id_property);
    cJSON_AddStringToObject(props, ctx->cfg->hs_opportunity_id_property, o->id);
    cJSON_AddItemToObject(in, "properties", props);
    cJSON *assocs = cJSON_AddArrayToObject(in, "associations");
    if (o->company)
        cJSON_AddItemToArray(assocs, assoc_to(o->company, HS_ASSOC_DEAL_TO_COMPANY_PRIMARY));
    cJSON *contacts = role_contacts(o, roles, contact_map);
    for (const cJSON *e = contacts->child; e; e = e->next)
        cJSON_AddItemToArray(assocs, assoc_to(e->string, HS_ASSOC_DEAL_TO_CONTACT));
    cJSON_Delete(contacts);
    return in;
}

/* The records no deal was found for (or none read) get theirs in one batch create, their
 * company and contacts associated inline: one call where an upsert and two association calls
 * were. An input HubSpot refuses (a deal with the opportunity id exists after all: 409 on the
 * unique property; an association's target deleted meanwhile) is marked is_refused, and so is
 * every input when the call is refused as a whole: read_refused then reads the deals not read
 * before, and write_deals upserts them, their associations following as before. */
static enum err create_deals(struct sync_ctx *ctx, struct opp **list, size_t k, const cJSON *roles,
                             const cJSON *contact_map)
{
    cJSON *inputs = cJSON_CreateArray();
    for (size_t i = 0; i < k; i++)
        cJSON_AddItemToArray(inputs, create_input(ctx, list[i], roles, contact_map));
    struct hs_batch_result res = {0};
    enum err rc = hs_batch_create(ctx->hs, "deals", inputs, &res);
    if (rc == ERR_OK) {
        const cJSON *r;
        cJSON_ArrayForEach(r, res.results)
        {
            /* Each input's objectWriteTraceId is its index in inputs (hs_client.h). */
            const char *trace = str(r, "objectWriteTraceId");
            int64_t i = -1;
            if (!trace || !util_parse_i64(trace, &i) || i < 0 || (size_t)i >= k || !str(r, "id"))
                continue;
            struct opp *o = list[i];
            free(o->deal_id);
            o->deal_id = xstrdup(str(r, "id"));
            o->is_new = true;
            o->is_created = true;
            const char *updated = str(r, "updatedAt");
            if (!updated || !util_parse_iso8601_ms(updated, &o->upserted_ms))
                o->upserted_ms = 0;
        }
        if (cJSON_GetArraySize(res.errors) > 0)
            log_info("hubspot refused some deal creates; upserting them instead",
                     LOG_I64("count", cJSON_GetArraySize(res.errors)));
    } else if (rc == ERR_INVALID || rc == ERR_CONFLICT) {
        rc = ERR_OK;
    }
    for (size_t i = 0; rc == ERR_OK && i < k; i++)
        list[i]->is_refused = !list[i]->is_created;
    hs_batch_result_clear(&res);
    cJSON_Delete(inputs);
    return rc;
}

static enum err create_new_deals(struct sync_ctx *ctx, struct opp *opps, size_t n,
                                 const cJSON *roles, const cJSON *contact_map)
{
    struct opp **fresh = xcalloc(n + 1, sizeof(*fresh));
    size_t f = 0;
    for (size_t i = 0; i < n; i++)
        if (!opps[i].is_finished && opps[i].written && !opps[i].deal)
            fresh[f++] = &opps[i];
    enum err rc = f ? create_deals(ctx, fresh, f, roles, contact_map) : ERR_OK;
    free(fresh);
    return rc;
}

/* Upserts list[0..k) (at most HS_BATCH_MAX) in one call; when HubSpot refuses the call (it
 * validates the whole batch first), one record at a time, to find the one it refuses and write
 * the rest. On an error of a call, *unwritten is the first record not written. */
static enum err write_chunk(struct sync_ctx *ctx, PGconn *db, struct opp **list, size_t k,
                            size_t *unwritten)
{
    enum err rc = upsert(ctx, list, k);
    *unwritten = 0;
    if ((rc == ERR_INVALID || rc == ERR_CONFLICT) && k > 1) {
        rc = ERR_OK;
        for (size_t i = 0; i < k && rc == ERR_OK; i++) {
            enum err one = upsert(ctx, &list[i], 1);
            if (one == ERR_INVALID || one == ERR_CONFLICT) {
                refused(ctx, db, list[i], one);
            } else {
                rc = one;
                *unwritten = i;
            }
        }
    } else if ((rc == ERR_INVALID || rc == ERR_CONFLICT) && k == 1) {
        refused(ctx, db, list[0], rc);
        rc = ERR_OK;
    }
    return rc;
}

/* The deals of the records not created: upserted on the opportunity id (existing deals with
 * something to write, and those whose create HubSpot refused), a call per HS_BATCH_MAX records.
 * A failed call fails only the records it did not write and those after it: the deals created
 * or upserted before it go on to save their links and baselines. Given up with the rest, a new
 * deal's link was lost, and the deal (made from the read, then modified later than a user's
 * newer change of the opportunity) won as the newer side of a pair without a baseline
 * (docs/chaos.md). */
static enum err write_deals(struct sync_ctx *ctx, PGconn *db, struct opp *opps, size_t n)
{
    struct opp **list = xcalloc(n + 1, sizeof(*list));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!opps[i].is_finished && opps[i].written && !opps[i].is_created &&
            (!opps[i].deal || cJSON_GetArraySize(opps[i].written) > 0))
            list[k++] = &opps[i];
    enum err rc = ERR_OK;
    size_t unwritten = 0; /* list[unwritten..k) were not written when rc is an error */
    for (size_t from = 0; from < k && rc == ERR_OK; from += HS_BATCH_MAX) {
        size_t m = k - from < HS_BATCH_MAX ? k - from : HS_BATCH_MAX;
        rc = write_chunk(ctx, db, list + from, m, &unwritten);
        unwritten += from;
    }
    if (rc != ERR_OK) {
        int64_t hint = hs_retry_after_ms(ctx->hs);
        for (size_t i = unwritten; i < k; i++)
            if (!list[i]->is_finished)
                fail_hint(list[i], rc, "cannot write the deals to hubspot", hint);
        rc = ERR_OK;
    }
    for (size_t i = 0; rc == ERR_OK && i < k; i++) {
        if (!list[i]->is_finished && !list[i]->deal_id) {
            note(list[i], "hubspot did not return the upserted deal");
            finish(list[i], ERR_UPSTREAM, false);
        }
    }
    free(list);
    return rc;
}

/* Remembers, before the deal is written, what is about to be written to it (link_note_written),
 * and keeps what that replaced: a write carried out whose answer is lost is still known as
 * dealsync's own when it comes back, and one not carried out gives back what it replaced. */
static enum err note_deal_write(PGconn *db, struct opp *o)
{
    if (!o->written || !o->written->child)
        return ERR_OK;
    struct link l = {0};
    enum err rc = link_find_by_sf(db, LINK_OPPORTUNITY, o->id, &l);
    if (rc == ERR_NOT_FOUND)
        return ERR_OK; /* no link: nothing to remember it in */
    if (rc == ERR_OK)
        rc = link_note_written(db, LINK_OPPORTUNITY, o->id, true, o->written);
    if (rc == ERR_OK) {
        if (!o->noted) {
            o->noted = cJSON_CreateObject();
            o->noted_over = l.hs_written;
            l.hs_written = NULL;
            o->noted_over_maybe = l.hs_maybe;
            l.hs_maybe = NULL;
        }
        /* Noted again (mapped anew after a refused create): what the first note replaced
         * stays what is given back. */
        for (const cJSON *e = o->written->child; e; e = e->next)
            if (!cJSON_GetObjectItemCaseSensitive(o->noted, e->string))
                cJSON_AddItemToObject(o->noted, e->string, cJSON_Duplicate(e, true));
    }
    link_clear(&l);
    return rc;
}

/* The deal writes remembered (note_deal_write) that were not carried out (not sent, refused, or
 * answered with an error): what was remembered of them goes back to what it replaced, once. Left
 * remembered, such a write hid an earlier one that was carried out: the deal's value, no longer
 * dealsync's own, looked like a HubSpot user's change and won over the user's newer Salesforce
 * value (a chaos run). A write cut off by a timeout may have been carried out with its answer
 * lost: it stays remembered, as a write cut short by a kill does. */
static void unnote_unwritten(PGconn *db, struct opp *opps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct opp *o = &opps[i];
        if (!o->noted || o->is_maybe_written)
            continue;
        enum err rc = link_unnote_written(db, LINK_OPPORTUNITY, o->id, true, o->noted,
                                          o->noted_over, o->noted_over_maybe);
        if (rc != ERR_OK)
            log_warn("cannot forget a write not carried out", LOG_STR("record_id", o->id),
                     LOG_STR("error", err_str(rc)));
        cJSON_Delete(o->noted);
        cJSON_Delete(o->noted_over);
        cJSON_Delete(o->noted_over_maybe);
        o->noted = o->noted_over = o->noted_over_maybe = NULL;
    }
}

/* ---- Associations ---------------------------------------------------------------------------- */

/* One read of the existing deals' associations to to_type: {"deal id": ["to id", …]} (with
 * primary_type, only associations of that type). A task of sync_fanout_run: the ids are its own
 * copies, taken before the run (the deal write beside it replaces o->deal_id). */
struct assoc_read {
    const char *to_type;
    int primary_type;
    char **ids;
    size_t n_ids;
    cJSON *map; /* on ERR_OK */
    enum err rc;
    int64_t hint_ms; /* HubSpot's retry hint after a failure */
};

/* Sets up t with the deal ids of the open records whose deal exists. */
static void assoc_read_init(struct assoc_read *t, const struct opp *opps, size_t n,
                            const char *to_type, int primary_type)
{
    *t = (struct assoc_read){.to_type = to_type, .primary_type = primary_type};
    t->ids = xcalloc(n + 1, sizeof(*t->ids));
    for (size_t i = 0; i < n; i++)
        if (!opps[i].is_finished && opps[i].deal && opps[i].deal_id)
            t->ids[t->n_ids++] = xstrdup(opps[i].deal_id);
}

static void assoc_read_clear(struct assoc_read *t)
{
    for (size_t i = 0; i < t->n_ids; i++)
        free(t->ids[i]);
    free(t->ids);
    cJSON_Delete(t->map);
    t->ids = NULL;
    t->map = NULL;
    t->n_ids = 0;
}

static void assoc_read_run(struct sync_ctx *ctx, void *arg)
{
    struct assoc_read *read = arg;
    const char *to_type = read->to_type;
    int primary_type = read->primary_type;
    size_t k = read->n_ids;
    cJSON *map = cJSON_CreateObject();
    enum err rc = ERR_OK;
    if (k > 0) {
        struct hs_batch_result res = {0};
        rc =
            hs_assoc_batch_read(ctx->hs, "deals", to_type, (const char *const *)read->ids, k, &res);
        const cJSON *r;
        cJSON_ArrayForEach(r, res.results)
        {
            const char *from = str(cJSON_GetObjectItem(r, "from"), "id");
            if (!from)
                continue;
            cJSON *list = cJSON_AddArrayToObject(map, from);
            const cJSON *to;
            cJSON_ArrayForEach(to, cJSON_GetObjectItem(r, "to"))
            {
                const cJSON *tid = cJSON_GetObjectItem(to, "toObjectId");
                char text[32];
                if (cJSON_IsNumber(tid))
                    snprintf(text, sizeof(text), "%.0f", tid->valuedouble);
                else if (cJSON_IsString(tid))
                    snprintf(text, sizeof(text), "%s", tid->valuestring);
                else
                    continue;
                bool is_primary = primary_type == 0;
                const cJSON *t;
                cJSON_ArrayForEach(t, cJSON_GetObjectItem(to, "associationTypes"))
                {
                    const cJSON *type_id = cJSON_GetObjectItem(t, "typeId");
                    if (cJSON_IsNumber(type_id) && type_id->valueint == primary_type)
                        is_primary = true;
                }
                if (is_primary)
                    cJSON_AddItemToArray(list, cJSON_CreateString(text));
            }
        }
        hs_batch_result_clear(&res);
    }
    read->rc = rc;
    read->hint_ms = rc == ERR_OK ? 0 : hs_retry_after_ms(ctx->hs);
    if (rc == ERR_OK)
        read->map = map;
    else
        cJSON_Delete(map);
}

/* {"deal id": ["to id", …]} for the existing deals, from one batch read. */
static enum err read_assocs(struct sync_ctx *ctx, struct opp *opps, size_t n, const char *to_type,
                            int primary_type, cJSON **out)
{
    struct assoc_read t;
    assoc_read_init(&t, opps, n, to_type, primary_type);
    assoc_read_run(ctx, &t);
    enum err rc = t.rc;
    if (rc == ERR_OK) {
        *out = t.map;
        t.map = NULL;
    }
    assoc_read_clear(&t);
    return rc;
}

/* Whether companies() reads the deals' company associations: company sync on and an open record
 * with an account. */
static bool reads_companies(const struct sync_ctx *ctx, const struct opp *opps, size_t n)
{
    for (size_t i = 0; ctx->cfg->company_sync && i < n; i++)
        if (!opps[i].is_finished && str(opps[i].sf, "AccountId"))
            return true;
    return false;
}

/* write_deals as a task of sync_fanout_run, on the worker's own thread and connection. */
struct deal_write {
    PGconn *db;
    struct opp *opps;
    size_t n;
    enum err rc;
};

static void deal_write_run(struct sync_ctx *ctx, void *arg)
{
    struct deal_write *t = arg;
    t->rc = write_deals(ctx, t->db, t->opps, t->n);
}

/* write_deals, and at the same time on a helper the company associations of the existing deals
 * when companies() needs them (*read, set up here; its result or failure is companies()'s).
 * Writing a deal that exists changes none of its associations (a new deal is created with its
 * company, and companies() reads nothing for it), so they read the same before the write as
 * after it, and the pair's locks keep other workers from changing them meanwhile. */
static enum err write_deals_reading(struct sync_ctx *ctx, PGconn *db, struct opp *opps, size_t n,
                                    struct assoc_read *read)
{
    struct deal_write w = {.db = db, .opps = opps, .n = n};
    bool is_read = reads_companies(ctx, opps, n);
    if (is_read)
        assoc_read_init(read, opps, n, "companies", HS_ASSOC_DEAL_TO_COMPANY_PRIMARY);
    const struct sync_fanout_task tasks[] = {{deal_write_run, &w},
                                             {is_read ? assoc_read_run : NULL, read}};
    sync_fanout_run(ctx, tasks, 2);
    return w.rc;
}

static bool list_contains(const cJSON *list, const char *s)
{
    const cJSON *it;
    cJSON_ArrayForEach(it,
                       list) if (cJSON_IsString(it) && strcmp(it->valuestring, s) == 0) return true;
    return false;
}

struct pairs {
    struct hs_assoc_pair *p;
    char **owned;
    size_t n;
};

static void pairs_add(struct pairs *ps, const char *from, const char *to)
{
    ps->p = xrealloc(ps->p, (ps->n + 1) * sizeof(*ps->p));
    ps->owned = xrealloc(ps->owned, (ps->n + 1) * 2 * sizeof(*ps->owned));
    ps->owned[ps->n * 2] = xstrdup(from);
    ps->owned[ps->n * 2 + 1] = xstrdup(to);
    ps->n++;
    for (size_t i = 0; i < ps->n; i++)
        ps->p[i] = (struct hs_assoc_pair){ps->owned[i * 2], ps->owned[i * 2 + 1]};
}

static void pairs_clear(struct pairs *ps)
{
    for (size_t i = 0; i < ps->n * 2; i++)
        free(ps->owned[i]);
    free(ps->owned);
    free(ps->p);
    memset(ps, 0, sizeof(*ps));
}

/* The companies of the batch's accounts in a few batch calls (hs_companies_batch.h); the loop
 * in companies() then finds each linked, or resolves the few left alone. */
static enum err resolve_accounts(struct sync_ctx *ctx, PGconn *db, struct opp *opps, size_t n,
                                 const cJSON *roles)
{
    cJSON *accounts = cJSON_CreateObject();
    cJSON *contacts = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++) {
        const struct opp *o = &opps[i];
        char account_id[19];
        if (o->is_finished || !str(o->sf, "AccountId") ||
            !sf_id_to18(str(o->sf, "AccountId"), account_id))
            continue;
        if (!cJSON_GetObjectItemCaseSensitive(accounts, account_id)) {
            const cJSON *account = cJSON_GetObjectItem(o->sf, "Account");
            cJSON_AddItemToObject(accounts, account_id,
                                  cJSON_IsObject(account) ? cJSON_Duplicate(account, true)
                                                          : cJSON_CreateObject());
            cJSON_AddArrayToObject(contacts, account_id);
        }
        cJSON *list = cJSON_GetObjectItemCaseSensitive(contacts, account_id);
        const cJSON *role;
        cJSON_ArrayForEach(role, roles) if (same_id(str(role, "OpportunityId"), o->id) &&
                                            str(role, "ContactId"))
            cJSON_AddItemToArray(list, cJSON_CreateString(str(role, "ContactId")));
    }
    enum err rc = cJSON_GetArraySize(accounts) > 1
                      ? hs_companies_resolve_batch(ctx->hs, db, ctx->cfg, accounts, contacts, NULL)
                      : ERR_OK;
    cJSON_Delete(contacts);
    cJSON_Delete(accounts);
    return rc;
}

/* The company of an account already linked to one (the id as the opportunity gives it, as
 * hs_companies_find_or_create reads it), read once per account of the slice and without the
 * account's lock: hs_companies_find_or_create takes that lock (a wait, shared by
 * every worker syncing an opportunity of the account) and then reads the same link first, and
 * an account's link is only ever made under it, so the lock adds nothing once the link exists.
 * *company (caller frees) stays NULL when the account has no link; linked ({"account id":
 * "company id" | null}) remembers the answers. */
static enum err linked_company(PGconn *db, cJSON *linked, const char *account_id, char **company)
{
    *company = NULL;
    const cJSON *known = cJSON_GetObjectItemCaseSensitive(linked, account_id);
    if (!known) {
        struct link l = {0};
        enum err rc = link_find_by_sf(db, LINK_ACCOUNT, account_id, &l);
        if (rc != ERR_OK && rc != ERR_NOT_FOUND)
            return rc;
        known = rc == ERR_OK ? cJSON_AddStringToObject(linked, account_id, l.hs_id)
                             : cJSON_AddNullToObject(linked, account_id);
        link_clear(&l);
    }
    if (cJSON_IsString(known))
        *company = xstrdup(known->valuestring);
    return ERR_OK;
}

/* Each open record's company, found or created (hs_companies.h) before the deals are written,
 * so that a new deal is created with it. */
static enum err resolve_companies(struct sync_ctx *ctx, PGconn *db, struct opp *opps, size_t n,
                                  const cJSON *roles)
{
    if (!ctx->cfg->company_sync)
        return ERR_OK;
    cJSON *linked = cJSON_CreateObject();
    enum err rc = resolve_accounts(ctx, db, opps, n, roles);
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        struct opp *o = &opps[i];
        const char *account_id = str(o->sf, "AccountId");
        if (o->is_finished || !account_id)
            continue;
        rc = linked_company(db, linked, account_id, &o->company);
        if (rc != ERR_OK || o->company) {
            o->company_how = "linked";
            continue;
        }
        cJSON *account = cJSON_Duplicate(cJSON_GetObjectItem(o->sf, "Account"), true);
        if (!cJSON_IsObject(account)) {
            cJSON_Delete(account);
            account = cJSON_CreateObject();
        }
        cJSON_DeleteItemFromObject(account, "Id");
        cJSON_AddStringToObject(account, "Id", account_id);
        cJSON *contact_ids = cJSON_CreateArray();
        const cJSON *role;
        cJSON_ArrayForEach(role, roles) if (same_id(str(role, "OpportunityId"), o->id) &&
                                            str(role, "ContactId"))
            cJSON_AddItemToArray(contact_ids, cJSON_CreateString(str(role, "ContactId")));
        rc = hs_companies_find_or_create(ctx->hs, db, ctx->cfg, account, contact_ids, &o->company,
                                         &o->company_how);
        cJSON_Delete(contact_ids);
        cJSON_Delete(account);
        /* Made or matched now: the account's next records of the slice find its link. */
        cJSON_DeleteItemFromObjectCaseSensitive(linked, account_id);
    }
    cJSON_Delete(linked);
    return rc;
}

/* The new accounts whose companies are now associated become the baseline (remember_link). */
static enum err settle_accounts(PGconn *db, const struct opp *opps, size_t n)
{
    enum err rc = ERR_OK;
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        const struct opp *o = &opps[i];
        if (o->is_finished || !o->is_account_pending || !o->company)
            continue;
        cJSON *seen = cJSON_CreateObject();
        cJSON_AddStringToObject(seen, "AccountId", str(o->sf, "AccountId"));
        rc = link_note_sf_seen(db, LINK_OPPORTUNITY, o->id, seen);
        cJSON_Delete(seen);
    }
    return rc;
}

/* The deals' primary companies, after the deals are written: a deal just created has its
 * company already (create_deals); an existing one is associated with it, and loses the
 * company of an account the opportunity no longer has. */
static enum err companies(struct sync_ctx *ctx, PGconn *db, struct opp *opps, size_t n,
                          struct assoc_read *read, int64_t *hint_ms)
{
    cJSON *current = NULL;
    struct pairs add = {0}, remove = {0};
    enum err rc = ERR_OK;
    if (!ctx->cfg->company_sync) {
        for (size_t i = 0; i < n; i++)
            if (!opps[i].is_finished)
                note(&opps[i], "no company association: company sync is off (COMPANY_SYNC)");
        return ERR_OK;
    }
    /* The deals' companies matter only for opportunities with an account (an old account's
     * company goes when the account changes; without an account nothing is changed): a slice
     * with no account reads none. */
    bool has_account = false;
    for (size_t i = 0; i < n; i++)
        has_account |= !opps[i].is_finished && str(opps[i].sf, "AccountId");
    if (has_account && read && read->ids) {
        /* read beside the deals' write (write_deals_reading) */
        rc = read->rc;
        if (rc == ERR_OK) {
            current = read->map;
            read->map = NULL;
        } else {
            *hint_ms = read->hint_ms;
        }
    } else if (has_account) {
        rc = read_assocs(ctx, opps, n, "companies", HS_ASSOC_DEAL_TO_COMPANY_PRIMARY, &current);
    }
    if (rc != ERR_OK)
        return rc;
    if (!current)
        current = cJSON_CreateObject();
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        struct opp *o = &opps[i];
        if (o->is_finished)
            continue;
        if (!str(o->sf, "AccountId")) {
            note(o, "no company association: the opportunity has no account");
            continue;
        }
        const char *company = o->company;
        if (!company)
            continue;
        const char *how = o->company_how ? o->company_how : "found";
        if (o->is_created) {
            note(o, "company %s (%s) associated as primary with the new deal", company, how);
            continue;
        }
        const cJSON *had = cJSON_GetObjectItemCaseSensitive(current, o->deal_id);
        if (o->is_account_as_seen && cJSON_GetArraySize(had) > 0 && !list_contains(had, company)) {
            /* The account is unchanged since the last sync and the deal has another primary
             * company: a user changed it in HubSpot, and the other direction carries it to the
             * opportunity. Associating the account's company put the user's choice back. */
            note(o,
                 "company %s not associated: the deal's primary company changed in hubspot "
                 "since the last sync (to %s), left to the other direction",
                 company, cJSON_GetStringValue(cJSON_GetArrayItem(had, 0)));
            continue;
        }
        if (list_contains(had, company)) {
            note(o, "company %s already the primary association", company);
        } else {
            pairs_add(&add, o->deal_id, company);
            note(o, "company %s (%s) associated as primary", company, how);
        }
        /* The opportunity moved to another account: the old account's company goes. Companies
         * dealsync did not link to an account were associated by a user and stay. */
        const cJSON *it;
        cJSON_ArrayForEach(it, had)
        {
            struct link l = {0};
            if (rc != ERR_OK || strcmp(it->valuestring, company) == 0)
                continue;
            rc = link_find_by_hs(db, LINK_ACCOUNT, it->valuestring, &l);
            if (rc == ERR_OK) {
                pairs_add(&remove, o->deal_id, it->valuestring);
                note(o, "company %s (the previous account's) no longer associated",
                     it->valuestring);
                link_clear(&l);
            } else if (rc == ERR_NOT_FOUND) {
                rc = ERR_OK;
            }
        }
    }
    if (rc == ERR_OK && remove.n > 0) {
        struct hs_batch_result res = {0};
        rc = hs_assoc_batch_archive(ctx->hs, "deals", "companies", remove.p, remove.n, &res);
        hs_batch_result_clear(&res);
    }
    if (rc == ERR_OK && add.n > 0) {
        struct hs_batch_result res = {0};
        struct hs_assoc_type t = {"HUBSPOT_DEFINED", HS_ASSOC_DEAL_TO_COMPANY_PRIMARY};
        rc = hs_assoc_batch_create(ctx->hs, "deals", "companies", add.p, add.n, t, &res);
        hs_batch_result_clear(&res);
    }
    pairs_clear(&remove);
    pairs_clear(&add);
    cJSON_Delete(current);
    return rc;
}

static bool has_contact(const cJSON *synced, const char *sf_contact)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, synced) if (e->string && same_id(e->string, sf_contact)) return true;
    return false;
}

/* Whether a {"…": "sf id"} map has sf_id among its values. */
static bool has_sf_value(const cJSON *map, const char *sf_id)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, map) if (cJSON_IsString(e) && same_id(e->valuestring, sf_id)) return true;
    return false;
}

/* What dealsync stored about the contacts of the slice's open records, read in one statement
 * where each record took five (contacts() and needs_contact_assocs used to read them record by
 * record): per opportunity the contacts synced with it and the deal they were synced with, and
 * per deal the contact roles made from its associations. The pair locks are held, so nothing
 * changes them meanwhile. */
struct contact_state {
    cJSON *synced;   /* {"opportunity id": {"sf contact id": "hs contact id"}} */
    cJSON *deal_of;  /* {"opportunity id": "the hs deal id they were synced with"} */
    cJSON *mirrored; /* {"hs deal id": {"hs contact id": "sf contact id"}} */
};

static void contact_state_clear(struct contact_state *cs)
{
    cJSON_Delete(cs->synced);
    cJSON_Delete(cs->deal_of);
    cJSON_Delete(cs->mirrored);
    *cs = (struct contact_state){0};
}

/* {"key": {}} under key in map, made on first use; borrowed. */
static cJSON *object_in(cJSON *map, const char *key)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(map, key);
    return o ? o : cJSON_AddObjectToObject(map, key);
}

static enum err contact_state_read(PGconn *db, const struct opp *opps, size_t n,
                                   struct contact_state *cs)
{
    cJSON *opp_ids = cJSON_CreateArray();
    cJSON *deal_ids = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        if (opps[i].is_finished)
            continue;
        cJSON_AddItemToArray(opp_ids, cJSON_CreateString(opps[i].id));
        if (opps[i].deal_id)
            cJSON_AddItemToArray(deal_ids, cJSON_CreateString(opps[i].deal_id));
    }
    char *opp_text = cJSON_PrintUnformatted(opp_ids);
    char *deal_text = cJSON_PrintUnformatted(deal_ids);
    cJSON_Delete(opp_ids);
    cJSON_Delete(deal_ids);
    const char *params[] = {opp_text, deal_text};
    PGresult *r = PQexecParams(
        db,
        "SELECT 's', c.sf_opportunity_id, c.sf_contact_id, c.hs_contact_id, d.hs_deal_id"
        "  FROM synced_deal_contact c JOIN synced_deal d USING (sf_opportunity_id)"
        " WHERE c.sf_opportunity_id IN (SELECT jsonb_array_elements_text($1::jsonb))"
        " UNION ALL"
        " SELECT 'm', hs_deal_id, hs_contact_id, sf_contact_id, NULL FROM deal_contact_role"
        " WHERE hs_deal_id IN (SELECT jsonb_array_elements_text($2::jsonb))",
        2, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read the synced deals' contacts");
    if (rc == ERR_OK) {
        cs->synced = cJSON_CreateObject();
        cs->deal_of = cJSON_CreateObject();
        cs->mirrored = cJSON_CreateObject();
        for (int i = 0; i < PQntuples(r); i++) {
            const char *key = PQgetvalue(r, i, 1);
            bool is_synced = PQgetvalue(r, i, 0)[0] == 's';
            cJSON *map = object_in(is_synced ? cs->synced : cs->mirrored, key);
            cJSON_AddStringToObject(map, PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
            if (is_synced && !cJSON_GetObjectItemCaseSensitive(cs->deal_of, key))
                cJSON_AddStringToObject(cs->deal_of, key, PQgetvalue(r, i, 4));
        }
    }
    PQclear(r);
    free(deal_text);
    free(opp_text);
    return rc;
}

/* A copy of what cs holds for o, as synced_deal_contacts, synced_deal_contacts_with (the
 * contacts synced with o's deal only) and sf_contacts_mirrored read them; each an object,
 * empty when none. Caller deletes. */
static cJSON *previous_contacts(const struct contact_state *cs, const struct opp *o)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cs->synced, o->id);
    return m ? cJSON_Duplicate(m, true) : cJSON_CreateObject();
}

static cJSON *contacts_on_deal(const struct contact_state *cs, const struct opp *o)
{
    const char *with = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cs->deal_of, o->id));
    if (o->deal_id && (!with || strcmp(with, o->deal_id) != 0))
        return cJSON_CreateObject();
    return previous_contacts(cs, o);
}

static cJSON *mirrored_contacts(const struct contact_state *cs, const struct opp *o)
{
    const cJSON *m = o->deal_id ? cJSON_GetObjectItemCaseSensitive(cs->mirrored, o->deal_id) : NULL;
    return m ? cJSON_Duplicate(m, true) : cJSON_CreateObject();
}

/* Whether the contacts associated with o's deal must be read: only when dealsync synced contacts
 * of the opportunity before, or made roles from the deal's associations (a removal in HubSpot is
 * then told from them, and a role that went takes its association with it). Otherwise every
 * role's contact is associated, and associating one already there changes nothing. */
static bool needs_contact_assocs(const struct contact_state *cs, const struct opp *o)
{
    if (o->is_finished || !o->deal || !o->deal_id)
        return false;
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cs->synced, o->id)) > 0 ||
           cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cs->mirrored, o->deal_id)) > 0;
}

/* The HubSpot contacts of every contact role of the slice, found or created (hs_contacts.h)
 * before the deals are written, so that a new deal is created with them. *map: {"sf contact
 * id": "hs contact id"}, caller deletes. */
static void synced_deal_of(const struct opp *o, struct synced_deal *d, char **amount_text);

/* {"sf contact id": {roll-up properties and lifecycle stage}} for the contacts of the open
 * records' roles, counting those records' deals: what a contact dealsync creates now holds once
 * they are written, so it is created with them, and the roll-up pass after the deals finds
 * nothing left to write (it still corrects a contact whose deal was not written). Caller
 * deletes. */
static cJSON *rollups_for_new_contacts(const struct sync_ctx *ctx, const struct opp *opps, size_t n,
                                       const cJSON *roles)
{
    cJSON *out = cJSON_CreateObject();
    struct synced_deal *deals = xcalloc(n + 1, sizeof(*deals));
    char **amounts = xcalloc(n + 1, sizeof(*amounts));
    const cJSON *r;
    cJSON_ArrayForEach(r, roles)
    {
        const char *cid = str(r, "ContactId");
        if (!cid || cJSON_GetObjectItemCaseSensitive(out, cid))
            continue;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const struct opp *o = &opps[i];
            bool has_role = false;
            const cJSON *q;
            cJSON_ArrayForEach(q, roles) has_role |= same_id(str(q, "OpportunityId"), o->id) &&
                                                     str(q, "ContactId") &&
                                                     strcmp(str(q, "ContactId"), cid) == 0;
            if (o->is_finished || !o->sf || !has_role)
                continue;
            synced_deal_of(o, &deals[k], &amounts[k]);
            k++;
        }
        struct contact_rollup roll;
        contact_rollup_of(deals, k, &roll);
        cJSON_AddItemToObject(out, cid, contact_rollup_changes(ctx->cfg, &roll, NULL));
        contact_rollup_clear(&roll);
        for (size_t i = 0; i < k; i++) {
            free(amounts[i]);
            amounts[i] = NULL;
        }
    }
    free(amounts);
    free(deals);
    return out;
}

static enum err resolve_contacts(struct sync_ctx *ctx, PGconn *db, const struct opp *opps, size_t n,
                                 const cJSON *roles, cJSON *created_contacts, cJSON **map)
{
    cJSON *people = cJSON_CreateArray();
    const cJSON *r;
    cJSON_ArrayForEach(r, roles)
    {
        const char *cid = str(r, "ContactId");
        if (!cid)
            continue;
        bool seen = false;
        const cJSON *p;
        cJSON_ArrayForEach(p, people) if (strcmp(str(p, "Id"), cid) == 0) seen = true;
        if (seen)
            continue;
        cJSON *c = cJSON_Duplicate(cJSON_GetObjectItem(r, "Contact"), true);
        if (!cJSON_IsObject(c)) {
            cJSON_Delete(c);
            c = cJSON_CreateObject();
        }
        cJSON_DeleteItemFromObject(c, "Id");
        cJSON_AddStringToObject(c, "Id", cid);
        cJSON_AddItemToArray(people, c);
    }
    cJSON *create_with = rollups_for_new_contacts(ctx, opps, n, roles);
    enum err rc =
        hs_contacts_resolve(ctx->hs, db, ctx->cfg, people, create_with, map, created_contacts);
    cJSON_Delete(create_with);
    cJSON_Delete(people);
    return rc;
}

/* The associations dealsync just removed for roles that went: no longer mirrored as roles
 * (sf_contacts_forget_mirrored). */
static enum err forget_mirrored(PGconn *db, const struct pairs *removed)
{
    enum err rc = ERR_OK;
    for (size_t i = 0; rc == ERR_OK && i < removed->n; i++)
        rc = sf_contacts_forget_mirrored(db, removed->p[i].from_id, removed->p[i].to_id);
    return rc;
}

/* The deals' contact associations, after the deals are written: a deal just created has its
 * contacts already (create_deals); an existing one gets the contacts of new roles and loses
 * those of roles that went. map: resolve_contacts's (borrowed). */
static enum err contacts(struct sync_ctx *ctx, PGconn *db, struct opp *opps, size_t n,
                         const cJSON *roles, const cJSON *map, cJSON *rollup_contacts)
{
    cJSON *current = NULL;
    struct pairs add = {0}, remove = {0};
    struct contact_state cs = {0};
    const cJSON *r;
    bool is_needed = false;
    enum err rc = contact_state_read(db, opps, n, &cs);
    for (size_t i = 0; rc == ERR_OK && i < n && !is_needed; i++)
        is_needed = needs_contact_assocs(&cs, &opps[i]);
    if (rc == ERR_OK && is_needed)
        rc = read_assocs(ctx, opps, n, "contacts", 0, &current);
    else if (rc == ERR_OK)
        current = cJSON_CreateObject();
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        struct opp *o = &opps[i];
        if (o->is_finished)
            continue;
        cJSON *previous = previous_contacts(&cs, o);
        /* the contacts dealsync associated with this very deal */
        cJSON *on_this_deal = contacts_on_deal(&cs, o);
        /* the roles dealsync made from this deal's associations */
        cJSON *mirrored = mirrored_contacts(&cs, o);
        cJSON_Delete(o->contacts);
        o->contacts = cJSON_CreateObject();
        int added = 0, removed = 0, missing = 0;
        const cJSON *assoc = cJSON_GetObjectItemCaseSensitive(current, o->deal_id);
        cJSON_ArrayForEach(r, roles)
        {
            const char *cid = str(r, "ContactId");
            if (!cid || !same_id(str(r, "OpportunityId"), o->id) ||
                cJSON_GetObjectItemCaseSensitive(o->contacts, cid))
                continue;
            const char *hs = str(map, cid);
            if (!hs) {
                missing++;
                continue;
            }
            cJSON_AddStringToObject(o->contacts, cid, hs);
            if (o->is_created) {
                added++; /* associated by the create itself */
            } else if (!list_contains(assoc, hs) && o->deal &&
                       (has_contact(on_this_deal, cid) || has_sf_value(mirrored, cid))) {
                /* The association existed and is gone: dealsync associated this contact with
                 * this deal before, or made the role itself from the deal's association. A user
                 * removed it in HubSpot, and the other direction removes the role. Adding it
                 * back from the role would undo the user's change. (A new deal, made after the
                 * user deleted the old one, gets every role's contact: chaos run.) */
                note(o, "contact %s removed from the deal in hubspot: not associated again", hs);
            } else if (!list_contains(assoc, hs)) {
                pairs_add(&add, o->deal_id, hs);
                added++;
            }
        }
        /* Only associations dealsync made for a contact role go when the role goes; contacts
         * a user associated in HubSpot stay. */
        for (const cJSON *e = o->is_created ? NULL : previous->child; e; e = e->next) {
            if (cJSON_GetObjectItemCaseSensitive(o->contacts, e->string))
                continue;
            if (!o->deal || list_contains(assoc, e->valuestring)) {
                pairs_add(&remove, o->deal_id, e->valuestring);
                removed++;
            }
        }
        add_ids(rollup_contacts, previous);
        add_ids(rollup_contacts, o->contacts);
        cJSON_Delete(mirrored);
        cJSON_Delete(on_this_deal);
        cJSON_Delete(previous);
        if (added || removed || cJSON_GetArraySize(o->contacts) > 0)
            note(o, "contacts: %d associated, %d added, %d removed",
                 cJSON_GetArraySize(o->contacts), added, removed);
        else
            note(o, "no contact roles");
        if (missing)
            note(o, "%d contact role contacts could not be created in hubspot", missing);
    }
    if (rc == ERR_OK && add.n > 0) {
        struct hs_batch_result res = {0};
        struct hs_assoc_type t = {"HUBSPOT_DEFINED", HS_ASSOC_DEAL_TO_CONTACT};
        rc = hs_assoc_batch_create(ctx->hs, "deals", "contacts", add.p, add.n, t, &res);
        hs_batch_result_clear(&res);
    }
    if (rc == ERR_OK && remove.n > 0) {
        struct hs_batch_result res = {0};
        rc = hs_assoc_batch_archive(ctx->hs, "deals", "contacts", remove.p, remove.n, &res);
        if (rc == ERR_OK && cJSON_GetArraySize(res.errors) == 0)
            rc = forget_mirrored(db, &remove);
        hs_batch_result_clear(&res);
    }
    pairs_clear(&add);
    pairs_clear(&remove);
    contact_state_clear(&cs);
    cJSON_Delete(current);
    return rc;
}

/* ---- Remembering what was synced ------------------------------------------------------------- */

/* Until when dealsync knows the deal (record_link.hs_modified_at, HubSpot's clock), so a
 * HubSpot sweep does not read dealsync's own writes again: moved to this sync's write only
 * when the deal had not changed since the time known before (a new deal, or one that only
 * dealsync changed), else left where it was, so a HubSpot change this sync did not carry (a
 * deferred two-way field, a field of the other direction) is still swept if its webhook is
 * lost. */
static int64_t hs_known_until(const struct opp *o, int64_t known_ms)
{
    if (o->upserted_ms <= 0)
        return known_ms;
    int64_t read_ms = -1;
    const char *read =
        str(cJSON_GetObjectItemCaseSensitive(o->deal, "properties"), "hs_lastmodifieddate");
    if (o->deal && (!read || !util_parse_iso8601_ms(read, &read_ms)))
        return known_ms;
    if (o->deal && (known_ms <= 0 || read_ms > known_ms))
        return known_ms;
    return o->upserted_ms > known_ms ? o->upserted_ms : known_ms;
}

/* The pair's link and baseline, saved as soon as the deal is written (before the associations
 * and roll-ups, whose failure must not leave the write unrecorded). */
static enum err remember_link(struct sync_ctx *ctx, PGconn *db, struct opp *o)
{
    struct link l = {0};
    enum err rc = link_find_by_sf(db, LINK_OPPORTUNITY, o->id, &l);
    if (rc == ERR_NOT_FOUND) {
        memset(&l, 0, sizeof(l));
        l.hs_written = cJSON_CreateObject();
        l.sf_seen = cJSON_CreateObject();
        l.hs_seen = cJSON_CreateObject();
        rc = ERR_OK;
    }
    if (rc != ERR_OK)
        return rc;
    free(l.kind);
    l.kind = xstrdup(LINK_OPPORTUNITY);
    free(l.sf_id);
    l.sf_id = xstrdup(o->id);
    free(l.hs_id);
    l.hs_id = xstrdup(o->deal_id);
    /* hs_written: {"property": "value as written"}, merged over what was written before, so the
     * HubSpot-to-Salesforce handler drops the webhooks that only report these values back;
     * older writes the deal no longer holds are dropped (the user changed them since). */
    sync_deal_prune_written(
        l.hs_written, o->deal ? cJSON_GetObjectItemCaseSensitive(o->deal, "properties") : NULL);
    for (const cJSON *e = o->written ? o->written->child : NULL; e; e = e->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(l.hs_written, e->string);
        cJSON_AddItemToObject(l.hs_written, e->string, cJSON_Duplicate(e, true));
        /* Written with its answer: no longer of unknown outcome (link_note_written). */
        cJSON_DeleteItemFromObjectCaseSensitive(l.hs_maybe, e->string);
    }
    /* hs_seen: every mapped property as the deal holds it after this sync (null when unset),
     * so the other direction can tell a HubSpot change from what was already there: a property
     * left unset here (an owner with no match, say) is not a change to carry back. */
    const cJSON *props = o->deal ? cJSON_GetObjectItemCaseSensitive(o->deal, "properties") : NULL;
    cJSON *old_hs_seen = l.hs_seen;
    cJSON *old_sf_seen = l.sf_seen;
    l.hs_seen = cJSON_CreateObject();
    for (size_t i = 0; i <= mapping_set_count(ctx->mappings); i++) {
        const char *name = i < mapping_set_count(ctx->mappings)
                               ? mapping_set_field(ctx->mappings, i)->hs_property
                               : "pipeline";
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o->written, name);
        if (!v)
            v = cJSON_GetObjectItemCaseSensitive(props, name);
        if (!cJSON_GetObjectItemCaseSensitive(l.hs_seen, name))
            cJSON_AddItemToObject(l.hs_seen, name,
                                  v ? cJSON_Duplicate(v, true) : cJSON_CreateNull());
    }
    l.sf_seen = cJSON_Duplicate(o->sf, true);
    cJSON_DeleteItemFromObjectCaseSensitive(l.sf_seen, "attributes");
    cJSON_DeleteItemFromObjectCaseSensitive(l.sf_seen, "Account");
    cJSON_DeleteItemFromObjectCaseSensitive(l.sf_seen, "Owner");
    cJSON_DeleteItemFromObjectCaseSensitive(l.sf_seen, "OpportunityContactRoles");
    /* A deferred field keeps what was seen before on both sides: the HubSpot-to-Salesforce
     * direction must still see its HubSpot value as a change to carry over. One that lost a
     * conflict here keeps it on HubSpot's side only (defer_to_hubspot). */
    for (const cJSON *e = o->deferred ? o->deferred->child : NULL; e; e = e->next) {
        const cJSON *hs_old = cJSON_GetObjectItemCaseSensitive(old_hs_seen, e->string);
        cJSON_ReplaceItemInObjectCaseSensitive(
            l.hs_seen, e->string, hs_old ? cJSON_Duplicate(hs_old, true) : cJSON_CreateNull());
        /* Set away and back by a user since (o->hs_foreign): the deal's value equals the old
         * baseline and dealsync's write, so neither stays, or the other direction (which
         * compares values alone when the deal's webhooks are lost) would take the user's value
         * for no change. */
        if (cJSON_GetObjectItemCaseSensitive(o->hs_foreign, e->string)) {
            cJSON_DeleteItemFromObjectCaseSensitive(l.hs_seen, e->string);
            cJSON_DeleteItemFromObjectCaseSensitive(l.hs_written, e->string);
        }
        if (!cJSON_IsString(e))
            continue;
        const cJSON *sf_old = cJSON_GetObjectItemCaseSensitive(old_sf_seen, e->valuestring);
        cJSON_DeleteItemFromObjectCaseSensitive(l.sf_seen, e->valuestring);
        if (sf_old)
            cJSON_AddItemToObject(l.sf_seen, e->valuestring, cJSON_Duplicate(sf_old, true));
    }
    /* A new account keeps the old baseline until its company is associated (companies, then
     * settle_accounts): a sync that fails in between still sees the account as changed, and
     * the deal's old company is not taken for a user's change in HubSpot. An account cleared in
     * Salesforce keeps it too: the deal keeps its company, which is then no change to write
     * back. */
    const char *seen_account = str(old_sf_seen, "AccountId");
    const char *account = str(o->sf, "AccountId");
    o->is_account_as_seen = seen_account && account && sf_id_equal(seen_account, account);
    if (seen_account && !o->is_account_as_seen && !o->is_created && ctx->cfg->company_sync) {
        cJSON_DeleteItemFromObjectCaseSensitive(l.sf_seen, "AccountId");
        cJSON_AddStringToObject(l.sf_seen, "AccountId", seen_account);
        o->is_account_pending = account != NULL;
    }
    cJSON_Delete(old_hs_seen);
    cJSON_Delete(old_sf_seen);
    /* Writes to the opportunity it no longer holds are forgotten (a user changed them since). */
    sync_deal_prune_written(l.sf_written, o->sf);
    int64_t modified = sf_time(o->sf, "SystemModstamp");
    if (modified > 0)
        l.sf_modified_ms = modified;
    l.hs_modified_ms = hs_known_until(o, l.hs_modified_ms);
    rc = link_save(db, &l);
    link_clear(&l);
    return rc;
}

/* The synced deal of o (amount, dates, state) as the roll-ups count it; *amount_text (caller
 * frees) holds its amount. */
static void synced_deal_of(const struct opp *o, struct synced_deal *d, char **amount_text)
{
    const cJSON *amount = cJSON_GetObjectItemCaseSensitive(o->sf, "Amount");
    *amount_text = cJSON_IsNull(amount) || !amount ? NULL : mapping_number_text(amount);
    memset(d, 0, sizeof(*d));
    d->sf_opportunity_id = o->id;
    d->hs_deal_id = o->deal_id;
    d->created_ms = sf_time(o->sf, "CreatedDate");
    if (d->created_ms < 0)
        d->created_ms = util_now_ms();
    d->close_ms = sf_time(o->sf, "CloseDate");
    d->amount = *amount_text;
    d->is_closed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o->sf, "IsClosed"));
    d->is_won = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o->sf, "IsWon"));
}

/* The synced deal (contacts, amount, dates) for the roll-ups, once the contacts are synced. */
static enum err remember_deal(PGconn *db, struct opp *o)
{
    enum err rc;
    size_t n = (size_t)cJSON_GetArraySize(o->contacts);
    struct synced_contact *cs = xcalloc(n + 1, sizeof(*cs));
    size_t k = 0;
    for (const cJSON *e = o->contacts ? o->contacts->child : NULL; e; e = e->next)
        cs[k++] = (struct synced_contact){e->string, e->valuestring};
    char *amount_text = NULL;
    struct synced_deal d;
    synced_deal_of(o, &d, &amount_text);
    rc = synced_deal_save(db, &d, cs, k);
    free(amount_text);
    free(cs);
    return rc;
}

/* A deal created with its contact roles' contacts inline: those associations are dealsync's,
 * recorded (synced_deal_contact) with the link, before the company and contact steps. When a
 * later step failed, the retry found no record of them, left the association of a role deleted
 * meanwhile in place, and the other direction made the role again from it (a chaos run lost a
 * user's role removal so). */
static enum err remember_created_contacts(PGconn *db, struct opp *o, const cJSON *roles,
                                          const cJSON *contact_map)
{
    cJSON_Delete(o->contacts);
    o->contacts = cJSON_CreateObject();
    const cJSON *r;
    cJSON_ArrayForEach(r, roles)
    {
        const char *cid = str(r, "ContactId");
        const char *hs =
            cid && same_id(str(r, "OpportunityId"), o->id) ? str(contact_map, cid) : NULL;
        if (hs && !cJSON_GetObjectItemCaseSensitive(o->contacts, cid))
            cJSON_AddStringToObject(o->contacts, cid, hs);
    }
    return remember_deal(db, o);
}

/* A new deal stays locked until the slice ends: its webhooks (creation, properties,
 * associations) come back while the slice still works, and the deal handler then defers them
 * without reading the deal (it takes a deal's lock before reading it). */
static void lock_new_deal(PGconn *db, const struct opp *o)
{
    bool got = false;
    if (sync_pair_try_lock(db, SYNC_PAIR_HS, o->deal_id, &got) != ERR_OK)
        log_warn("cannot lock a new deal", LOG_STR("deal_id", o->deal_id));
}

/* The deals just created, locked and recorded (link, baseline, inline contacts) before any
 * later call of the slice: one that fails (the read or upsert of another record's deal) must
 * not leave a deal without its link. A pair without a baseline takes each differing field from
 * the record modified later, and the deal, made from the read of the opportunity and so
 * modified after a user's newer change of it, won as the newer side (docs/chaos.md). */
static enum err record_created(struct sync_ctx *ctx, PGconn *db, struct opp *opps, size_t n,
                               const cJSON *roles, const cJSON *contact_map)
{
    for (size_t i = 0; i < n; i++) {
        struct opp *o = &opps[i];
        if (o->is_finished || !o->is_created)
            continue;
        lock_new_deal(db, o);
        enum err rc = remember_link(ctx, db, o);
        if (rc == ERR_OK)
            rc = remember_created_contacts(db, o, roles, contact_map);
        if (rc != ERR_OK)
            return rc;
        o->is_recorded = true;
    }
    return ERR_OK;
}

static void describe_write(struct opp *o)
{
    struct buf names;
    buf_init(&names, 0);
    for (const cJSON *e = o->written ? o->written->child : NULL; e; e = e->next)
        buf_printf(&names, "%s%s", names.len ? ", " : "", e->string);
    char *list = buf_steal(&names);
    char *head;
    if (o->is_new)
        head = xasprintf("hubspot deal %s created from the opportunity: %s", o->deal_id, list);
    else if (list[0])
        head = xasprintf("hubspot deal %s updated: %s", o->deal_id, list);
    else
        head = xasprintf("hubspot deal %s already matches the opportunity: no field written",
                         o->deal_id);
    /* The deal line goes first: it is what an operator looks for. */
    char *rest = o->detail.len ? buf_steal(&o->detail) : NULL;
    buf_init(&o->detail, 0);
    buf_append_str(&o->detail, head);
    if (rest) {
        buf_append_str(&o->detail, "; ");
        buf_append_str(&o->detail, rest);
    }
    free(rest);
    free(head);
    free(list);
}

/* ---- The handler ----------------------------------------------------------------------------- */

/* ---- One worker per pair (sync_pair.c) ------------------------------------------------------ */

static void busy(struct opp *o)
{
    note(o, "deferred: another worker is syncing this opportunity or its deal");
    finish(o, ERR_BUSY, false);
}

/* Before anything is read: the record's lock, and its partner's when they are linked. */
static enum err lock_records(PGconn *db, struct opp *opps, size_t n)
{
    const char **ids = xcalloc(n + 1, sizeof(*ids));
    struct opp **of = xcalloc(n + 1, sizeof(*of));
    bool *got = xcalloc(n + 1, sizeof(*got));
    bool *linked = xcalloc(n + 1, sizeof(*linked));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (opps[i].is_finished)
            continue;
        of[k] = &opps[i];
        ids[k++] = opps[i].id;
    }
    enum err rc = sync_pair_lock_records(db, SYNC_PAIR_SF, ids, k, got, linked);
    for (size_t i = 0; rc == ERR_OK && i < k; i++) {
        of[i]->was_linked = linked[i];
        if (!got[i])
            busy(of[i]);
    }
    free(linked);
    free(got);
    free(of);
    free(ids);
    return rc;
}

/* After the reads, for pairs that were not linked when the slice started: the deal's lock. A
 * deal found by the opportunity id on it while another worker holds it is that worker's; one
 * linked meanwhile means the reads may predate that worker's writes: both come back shortly.
 * An opportunity made from a deal holds the deal's id before the deal holds the opportunity's
 * (the other direction stamps it just after creating the opportunity): that deal is stamped
 * here, never duplicated. */
static enum err lock_found_deals(struct sync_ctx *ctx, PGconn *db, struct opp *opps, size_t n,
                                 bool only_refused)
{
    for (size_t i = 0; i < n; i++) {
        struct opp *o = &opps[i];
        if (o->is_finished || o->was_linked || !o->sf || (only_refused && !o->is_refused))
            continue;
        const char *deal = o->deal ? o->deal_id : str(o->sf, ctx->cfg->sf_deal_id_field);
        int64_t num = 0;
        if (!deal || !util_parse_i64(deal, &num) || num <= 0)
            continue;
        bool got = false;
        enum err rc = sync_pair_try_lock(db, SYNC_PAIR_HS, deal, &got);
        if (rc != ERR_OK)
            return rc;
        struct link l = {0};
        if (got) {
            rc = link_find_by_hs(db, LINK_OPPORTUNITY, deal, &l);
            link_clear(&l);
            if (rc != ERR_OK && rc != ERR_NOT_FOUND)
                return rc;
            got = rc == ERR_NOT_FOUND;
            if (!got)
                sync_pair_release(db, SYNC_PAIR_HS, deal);
        }
        if (!got) {
            /* Deferred: its lock goes now (sync_pair.h), not at the end of the batch. */
            sync_pair_release(db, SYNC_PAIR_SF, o->id);
            busy(o);
            continue;
        }
        if (o->deal)
            continue;
        cJSON *props = cJSON_CreateObject();
        cJSON_AddStringToObject(props, ctx->cfg->hs_opportunity_id_property, o->id);
        cJSON *updated = NULL;
        rc = hs_object_update(ctx->hs, "deals", deal, NULL, props, &updated);
        cJSON_Delete(updated);
        cJSON_Delete(props);
        if (rc == ERR_NOT_FOUND) {
            /* The deal it was made from is gone: the user deleted it before dealsync saved the
             * pair's link (the answer to the opportunity's create was lost), so the deletion
             * webhook found nothing to forget. Taken as the user's delete, as for a linked deal:
             * a tombstone dated when HubSpot deleted it, and map_record makes a new deal only
             * for a change made after the delete (chaos run: a deal nobody made). */
            rc = tombstone_deal(ctx, db, o->id, deal);
            if (rc != ERR_OK)
                return rc;
            continue;
        }
        if (rc != ERR_OK)
            return rc;
        note(o, "deal %s made from this opportunity's deal id field: opportunity id stored on it",
             deal);
        busy(o);
    }
    return ERR_OK;
}

/* Releases the locks of the echoes' pairs, taken by lock_records, before the end of the slice:
 * the echoes are handled, and a pair's next change (in a stream of both sides' edits, most often
 * a change of the deal that this very echo followed) was otherwise left waiting for the rest of
 * the slice's records, whose API calls take hundreds of milliseconds. Each echo was recognised
 * with both locks held (sync_echo_sf.h: a user's change in Salesforce carries no source, so it
 * is told from dealsync's write by the values dealsync last wrote, read under the pair's lock).
 * One statement a side for all of them. When a link cannot be read, that pair's locks stay
 * until the end of the slice. */
static void release_echoes(PGconn *db, const struct opp *opps, const bool *is_echo, size_t n)
{
    const char **sf_ids = xcalloc(n + 1, sizeof(*sf_ids));
    char **hs_ids = xcalloc(n + 1, sizeof(*hs_ids));
    size_t n_sf = 0, n_hs = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_echo[i])
            continue;
        if (opps[i].was_linked) {
            struct link l = {0};
            if (link_find_by_sf(db, LINK_OPPORTUNITY, opps[i].id, &l) != ERR_OK)
                continue;
            hs_ids[n_hs++] = xstrdup(l.hs_id);
            link_clear(&l);
        }
        sf_ids[n_sf++] = opps[i].id;
    }
    sync_pair_release_many(db, SYNC_PAIR_HS, (const char *const *)hs_ids, n_hs);
    sync_pair_release_many(db, SYNC_PAIR_SF, sf_ids, n_sf);
    for (size_t i = 0; i < n_hs; i++)
        free(hs_ids[i]);
    free(hs_ids);
    free(sf_ids);
}

static bool sf_ready(struct sync_ctx *ctx, struct opp *opps, size_t n)
{
    if (ctx && ctx->sf && ctx->hs && ctx->mappings)
        return true;
    for (size_t i = 0; i < n; i++) {
        note(&opps[i], "the salesforce and hubspot apis are not both configured "
                       "(SALESFORCE_CLIENT_ID…, HUBSPOT_ACCESS_TOKEN)");
        finish(&opps[i], ERR_CONFIG, false);
    }
    return false;
}

/* Whether the read of the opportunity's deal can wait for HubSpot's answer to its create: not
 * linked, no deal id on it, and never tried before. A deal holding its id can then only be one
 * dealsync did not link (HubSpot's own integration made it before an import, a person gave it
 * the id, dealsync's write lost its answer: that record comes back as a retry, and a retry
 * reads), and HubSpot refuses the create of a second deal with the same value of the unique
 * opportunity id property: read_refused then reads it, and the record is synced as if read
 * first (the two-way rules of docs/two-way.md hold). An import into a HubSpot without those
 * deals saves the read; one whose deals exist pays the refused create. */
static bool read_can_wait(const struct sync_ctx *ctx, const struct opp *o)
{
    for (size_t i = 0; i < o->rec->event_count; i++)
        if (o->rec->events[i].attempts > 1)
            return false;
    return o->sf && !o->was_linked && !str(o->sf, ctx->cfg->sf_deal_id_field);
}

/* Sets the deals read (results) on the open records they belong to by the opportunity id
 * (o->deal points into results): with is_retry, only on records whose create was refused. */
static void attach_deals(const struct sync_ctx *ctx, struct opp *opps, size_t n,
                         const cJSON *results, bool is_retry)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, results)
    {
        const char *opp =
            str(cJSON_GetObjectItem(d, "properties"), ctx->cfg->hs_opportunity_id_property);
        for (size_t i = 0; opp && i < n; i++) {
            struct opp *o = &opps[i];
            if (!o->is_finished && !o->deal && same_id(opp, o->id) && str(d, "id") &&
                (!is_retry || o->is_refused)) {
                o->deal = d;
                free(o->deal_id);
                o->deal_id = xstrdup(str(d, "id"));
            }
        }
    }
}

/* Reads the deals of the open records by the opportunity id: those whose read cannot wait and
 * that were not read with the opportunities (is_retry false; the others are marked is_unread),
 * or those not read whose create HubSpot refused (is_retry true). Found deals are set on the
 * records (o->deal points into res). */
static enum err read_deals(struct sync_ctx *ctx, struct opp *opps, size_t n, const char *props,
                           bool is_retry, struct hs_batch_result *res)
{
    const char **ids = xcalloc(n + 1, sizeof(*ids));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct opp *o = &opps[i];
        if (o->is_finished || (!is_retry && o->is_deal_read))
            continue;
        if (is_retry ? o->is_unread && o->is_refused && !o->deal : !read_can_wait(ctx, o))
            ids[k++] = o->id;
        else if (!is_retry)
            o->is_unread = true;
    }
    enum err rc = ERR_OK;
    if (k > 0)
        rc = hs_batch_read(ctx->hs, "deals", ctx->cfg->hs_opportunity_id_property, props, ids, k,
                           res);
    free(ids);
    if (rc == ERR_OK)
        attach_deals(ctx, opps, n, res->results, is_retry);
    return rc;
}

/* The first reads of a slice, made at the same time (sync_fanout.h): the opportunities (SOQL)
 * on the worker's own thread, client and connection, and on a helper the deals of the records
 * linked when the slice started, which need only the opportunity ids (both records' locks are
 * held, so no other worker writes either meanwhile). Each task touches only its own struct. */
struct opp_query {
    PGconn *db;
    struct opp *opps;
    size_t n;
    cJSON *records;
    enum err rc;
};

static void opp_query_run(struct sync_ctx *ctx, void *arg)
{
    struct opp_query *t = arg;
    t->rc = query_opportunities(ctx, t->db, t->opps, t->n, &t->records);
}

/* The opportunities (*sf_records) and the linked records' deals (into *linked, set on the
 * records and marked is_deal_read) at once. *step says which failed; *hint_ms is set when the
 * deals' read failed (its client's retry hint). */
static enum err read_first(struct sync_ctx *ctx, PGconn *db, struct opp *opps, size_t n,
                           const char *props, cJSON **sf_records, struct hs_batch_result *linked,
                           const char **step, int64_t *hint_ms)
{
    const char **ids = xcalloc(n + 1, sizeof(*ids));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!opps[i].is_finished && opps[i].was_linked) {
            opps[i].is_deal_read = true;
            ids[k++] = opps[i].id;
        }
    }
    struct opp_query q = {.db = db, .opps = opps, .n = n};
    struct sync_fanout_deal_read d = {.id_property = ctx->cfg->hs_opportunity_id_property,
                                      .properties = props,
                                      .ids = ids,
                                      .n_ids = k};
    const struct sync_fanout_task tasks[] = {{opp_query_run, &q},
                                             {k ? sync_fanout_deal_read_run : NULL, &d}};
    sync_fanout_run(ctx, tasks, 2);
    free(ids);
    enum err rc = q.rc;
    *step = "cannot read the opportunities from salesforce";
    if (rc == ERR_OK && d.rc != ERR_OK) {
        rc = d.rc;
        *step = "cannot read the deals from hubspot";
        *hint_ms = d.hint_ms;
    }
    if (rc == ERR_OK) {
        *sf_records = q.records;
        q.records = NULL;
        attach_deals(ctx, opps, n, d.res.results, false);
        *linked = d.res;
        d.res = (struct hs_batch_result){0};
    }
    cJSON_Delete(q.records);
    hs_batch_result_clear(&d.res);
    return rc;
}

/* The records whose create HubSpot refused without their deal having been read: their deals
 * are read now, locked as lock_found_deals locks a found deal, and mapped again against them,
 * so write_deals upserts only what differs, with the two-way rules. */
static enum err read_refused(struct sync_ctx *ctx, PGconn *db, struct pipelines *pl,
                             struct owners *ow, struct deal_defs *defs, const char *props,
                             struct opp *opps, size_t n, struct hs_batch_result *res)
{
    bool any = false;
    for (size_t i = 0; i < n; i++)
        any |= !opps[i].is_finished && opps[i].is_unread && opps[i].is_refused;
    if (!any)
        return ERR_OK;
    enum err rc = read_deals(ctx, opps, n, props, true, res);
    if (rc == ERR_OK)
        rc = lock_found_deals(ctx, db, opps, n, true);
    for (size_t i = 0; rc == ERR_OK && i < n; i++) {
        struct opp *o = &opps[i];
        if (o->is_finished || !o->is_refused || !o->deal)
            continue;
        /* Mapped again from the start: the first pass's notes go with its result. */
        free(buf_steal(&o->detail));
        buf_init(&o->detail, 0);
        note(o, "hubspot refused a second deal for the opportunity: its deal %s was read",
             o->deal_id);
        cJSON_Delete(o->written);
        o->written = NULL;
        rc = map_record(ctx, db, pl, ow, defs, o);
        if (rc == ERR_OK && !o->is_finished)
            rc = note_deal_write(db, o);
    }
    return rc;
}

/* Records per pass: a background claim's 200 (QUEUE_BACKGROUND_CLAIM) in one, so their
 * companies are searched together (hs_companies_batch.c: 3 searches for 200 accounts where two
 * passes of 100 took 4) and Salesforce is queried once; each HubSpot batch call is split into
 * calls of 100 inputs. The SOQL IN list of 200 ids (about 5,500 characters encoded) stays well
 * inside Salesforce's URI length limit (16,384). */
#define SLICE_MAX 200

static void sync_slice(struct sync_ctx *ctx, PGconn *db, struct queue_record *records,
                       size_t count);

void sync_opportunities(void *vctx, PGconn *db, struct queue_record *records, size_t count)
{
    struct sync_ctx *c = vctx;
    if (c)
        c->last_batch += count;
    for (size_t i = 0; i < count; i += SLICE_MAX) {
        sync_cache_begin(); /* maps and links read once per slice (sync_cache.h) */
        sync_slice(vctx, db, records + i, count - i < SLICE_MAX ? count - i : SLICE_MAX);
        sync_cache_end();
    }
}

/* Milliseconds since *at, which moves to now: a slice's time step by step. */
static int64_t lap(int64_t *at)
{
    int64_t now = util_monotonic_ms();
    int64_t ms = now - *at;
    *at = now;
    return ms;
}

static void sync_slice(struct sync_ctx *ctx, PGconn *db, struct queue_record *records, size_t count)
{
    struct opp *opps = xcalloc(count, sizeof(*opps));
    cJSON *sf_records = NULL;
    cJSON *roles = NULL;
    struct deal_defs defs = {0};
    cJSON *rollup_contacts = cJSON_CreateArray();
    cJSON *created_contacts = cJSON_CreateArray();
    cJSON *contact_map = NULL;
    char *props = NULL;
    struct hs_batch_result linked_deals = {0}, deals = {0}, refused_deals = {0};
    struct pipelines pl = {0};
    struct owners ow = {0};
    enum err rc;
    const char *step = "";
    int64_t hint = -1; /* HubSpot's retry hint of a helper's failed call; -1: the worker's */
    struct assoc_read company_read = {0};
    bool *is_echo = NULL;
    /* Where the slice's time goes (a debug line at the end, docs/benchmarks.md). */
    int64_t started = util_monotonic_ms(), at = started;
    int64_t lock_ms = 0, read_ms = 0, map_ms = 0, resolve_ms = 0, write_ms = 0, record_ms = 0,
            assoc_ms = 0;
    size_t open_count = 0;

    for (size_t i = 0; i < count; i++) {
        opps[i].rec = &records[i];
        records[i].result = ERR_OK;
        buf_init(&opps[i].detail, 0);
    }
    if (!sf_ready(ctx, opps, count))
        goto out;
    bool is_on = false;
    rc = sync_deals_enabled(db, &is_on);
    if (rc != ERR_OK) {
        fail_rest(ctx, opps, count, rc, "cannot read the sync deals switch");
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        struct opp *o = &opps[i];
        if (!is_on) {
            note(o, "not synced: sync deals is off (dealsync settings sync-deals on)");
            finish(o, ERR_OK, true);
        } else if (!sf_id_to18(records[i].record_id, o->id)) {
            note(o, "not synced: \"%s\" is not a salesforce id", records[i].record_id);
            finish(o, ERR_INVALID, false);
        }
    }
    if (!is_on)
        goto out;
    step = "cannot lock the records";
    rc = lock_records(db, opps, count);
    if (rc != ERR_OK)
        goto failed;
    /* Outbound messages that only report dealsync's own write back (an opportunity it made or
     * changed from a deal): nothing to read or write, and the pairs' locks go at once. */
    is_echo = xcalloc(count + 1, sizeof(*is_echo));
    for (size_t i = 0; i < count; i++) {
        if (!opps[i].is_finished &&
            sync_echo_opportunity(db, ctx->mappings, opps[i].id, opps[i].rec, &is_echo[i]) ==
                ERR_OK &&
            is_echo[i]) {
            note(&opps[i], "only dealsync's own write reported back (sync_echo_sf.h): "
                           "opportunity not read");
            finish(&opps[i], ERR_OK, true);
        } else {
            is_echo[i] = false;
        }
    }
    release_echoes(db, opps, is_echo, count);
    /* Every record deferred (another worker holds its pair) or an echo: nothing to read or
     * write. */
    lock_ms = lap(&at);
    for (size_t i = 0; i < count; i++)
        open_count += !opps[i].is_finished;
    if (open_count == 0)
        goto out;

    char *mapped = mapping_hs_property_list(ctx->mappings);
    props = xasprintf("%s,pipeline,dealstage,hs_lastmodifieddate,%s", mapped,
                      ctx->cfg->hs_opportunity_id_property);
    free(mapped);
    rc = read_first(ctx, db, opps, count, props, &sf_records, &linked_deals, &step, &hint);
    read_ms = lap(&at);
    if (rc != ERR_OK)
        goto failed;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, sf_records)
    {
        for (size_t i = 0; i < count; i++)
            if (!opps[i].is_finished && same_id(str(rec, "Id"), opps[i].id))
                opps[i].sf = rec;
    }
    step = "cannot read the contact roles from salesforce";
    rc = query_roles(ctx, opps, count, sf_records, &roles);
    if (rc != ERR_OK)
        goto failed;

    step = "cannot read the deals from hubspot";
    rc = read_deals(ctx, opps, count, props, false, &deals);
    if (rc != ERR_OK)
        goto failed;
    step = "cannot lock the deals";
    rc = lock_found_deals(ctx, db, opps, count, false);
    if (rc != ERR_OK)
        goto failed;
    step = "cannot delete the deals of deleted opportunities";
    rc = handle_deletes(ctx, db, opps, count, rollup_contacts);
    if (rc != ERR_OK)
        goto failed;

    bool has_work = false;
    for (size_t i = 0; i < count; i++)
        has_work |= !opps[i].is_finished;
    if (has_work) {
        step = "cannot read the hubspot deal properties";
        rc = sync_deal_property_defs_copy(ctx, false, &defs.list);
        if (rc != ERR_OK)
            goto failed;
    }
    pl.sf = ctx->sf;
    pl.hs = ctx->hs;
    pl.db = db;
    pl.limit = ctx->cfg->pipeline_limit;
    pl.describe = ctx->describe;
    pl.stage_values = mapping_values_of(ctx->mappings, "StageName");
    ow.hs = ctx->hs;
    ow.cache_seconds = ctx->cfg->api_cache_seconds;
    ow.emails = cJSON_CreateObject();
    ow.found = cJSON_CreateObject();
    step = "cannot map the opportunity";
    for (size_t i = 0; i < count; i++) {
        if (opps[i].is_finished)
            continue;
        rc = map_record(ctx, db, &pl, &ow, &defs, &opps[i]);
        if (rc != ERR_OK)
            goto failed;
    }
    step = "cannot record the sync";
    for (size_t i = 0; i < count; i++) {
        struct opp *o = &opps[i];
        if (o->is_finished || !o->deal)
            continue;
        rc = note_deal_write(db, o);
        if (rc != ERR_OK)
            goto failed;
    }
    map_ms = lap(&at);
    /* The companies and contacts first: a new deal is created with them associated. */
    step = "cannot find or create the companies";
    rc = resolve_companies(ctx, db, opps, count, roles);
    if (rc != ERR_OK)
        goto failed;
    step = "cannot find or create the contacts";
    rc = resolve_contacts(ctx, db, opps, count, roles, created_contacts, &contact_map);
    if (rc != ERR_OK)
        goto failed;
    step = "cannot write the deals to hubspot";
    rc = create_new_deals(ctx, opps, count, roles, contact_map);
    if (rc != ERR_OK)
        goto failed;
    step = "cannot record the sync";
    rc = record_created(ctx, db, opps, count, roles, contact_map);
    if (rc != ERR_OK)
        goto failed;
    step = "cannot read the deals from hubspot";
    rc = read_refused(ctx, db, &pl, &ow, &defs, props, opps, count, &refused_deals);
    if (rc != ERR_OK)
        goto failed;
    step = "cannot write the deals to hubspot";
    resolve_ms = lap(&at);
    rc = write_deals_reading(ctx, db, opps, count, &company_read);
    unnote_unwritten(db, opps, count);
    if (rc != ERR_OK)
        goto failed;
    write_ms = lap(&at);
    /* The deals made by upsert (those created are recorded already). */
    for (size_t i = 0; i < count; i++)
        if (!opps[i].is_finished && !opps[i].is_recorded && opps[i].is_new && opps[i].deal_id)
            lock_new_deal(db, &opps[i]);
    step = "cannot record the sync";
    for (size_t i = 0; i < count; i++) {
        if (opps[i].is_finished || opps[i].is_recorded)
            continue;
        rc = remember_link(ctx, db, &opps[i]);
        if (rc != ERR_OK)
            goto failed;
    }
    record_ms = lap(&at);
    step = "cannot associate the companies";
    rc = companies(ctx, db, opps, count, &company_read, &hint);
    if (rc != ERR_OK)
        goto failed;
    rc = settle_accounts(db, opps, count);
    if (rc != ERR_OK)
        goto failed;
    step = "cannot associate the contacts";
    rc = contacts(ctx, db, opps, count, roles, contact_map, rollup_contacts);
    if (rc != ERR_OK)
        goto failed;
    assoc_ms = lap(&at);
    step = "cannot record the sync";
    for (size_t i = 0; i < count; i++) {
        if (opps[i].is_finished)
            continue;
        rc = remember_deal(db, &opps[i]);
        if (rc != ERR_OK)
            goto failed;
    }
    /* The contacts' roll-ups go on the queue (sync_rollup.h): computed and written once for
     * every batch that queued a contact meanwhile, not here, where the batches of a burst of
     * opportunities of the same contacts took turns on those contacts' locks. */
    step = "cannot queue the contacts' roll-ups";
    rc = contact_rollup_queue(db, rollup_contacts, created_contacts);
    if (rc != ERR_OK) {
        /* A deleted opportunity is done only once its contacts' roll-ups are queued: retried
         * with the others (its synced deal is marked, so its contacts stay known). */
        for (size_t i = 0; i < count; i++)
            if (opps[i].is_finished && !opps[i].sf && opps[i].rec->result == ERR_OK &&
                !opps[i].rec->is_skipped)
                opps[i].is_finished = false;
        goto failed;
    }
    for (size_t i = 0; i < count; i++) {
        struct opp *o = &opps[i];
        if (o->is_finished) {
            if (!o->sf && o->rec->result == ERR_OK && !o->rec->is_skipped &&
                synced_deal_forget(db, o->id) != ERR_OK)
                note(o, "the synced deal row stays marked deleted (database error)");
            if (!o->sf && o->contacts && cJSON_GetArraySize(o->contacts) > 0)
                note(o, "roll-ups of %d contacts queued", cJSON_GetArraySize(o->contacts));
            continue;
        }
        if (o->contacts && cJSON_GetArraySize(o->contacts) > 0)
            note(o, "lifecycle stage and roll-ups of its %d contacts queued",
                 cJSON_GetArraySize(o->contacts));
        describe_write(o);
        finish(o, ERR_OK, false);
    }
    goto out;
failed:
    if (hint >= 0)
        fail_rest_hint(opps, count, rc, step, hint);
    else
        fail_rest(ctx, opps, count, rc, step);
out:
    /* lock: the pairs and the echoes; read: the opportunities and deals (and the refused ones'
     * deals when read_ms is 0); map: the deals' mapping and baselines; resolve: the companies
     * and contacts found or made; write: the deals' upsert; record: the links; assoc: the
     * company and contact associations; the rest is the synced deals and the roll-ups' queue. */
    log_debug("opportunity slice handled", LOG_I64("records", (long long)count),
              LOG_I64("open", (long long)open_count), LOG_I64("lock_ms", lock_ms),
              LOG_I64("read_ms", read_ms), LOG_I64("map_ms", map_ms),
              LOG_I64("resolve_ms", resolve_ms), LOG_I64("write_ms", write_ms),
              LOG_I64("record_ms", record_ms), LOG_I64("assoc_ms", assoc_ms),
              LOG_I64("duration_ms", util_monotonic_ms() - started));
    /* Noted, and the slice given up before the write. */
    unnote_unwritten(db, opps, count);
    for (size_t i = 0; i < count; i++) {
        struct opp *o = &opps[i];
        if (!o->is_finished) {
            note(o, "not synced: internal error");
            finish(o, ERR_INTERNAL, false);
        }
        records[i].detail = buf_steal(&o->detail);
        free(o->deal_id);
        cJSON_Delete(o->written);
        cJSON_Delete(o->noted);
        cJSON_Delete(o->noted_over);
        cJSON_Delete(o->noted_over_maybe);
        cJSON_Delete(o->contacts);
        cJSON_Delete(o->deferred);
        cJSON_Delete(o->hs_foreign);
        free(o->company);
    }
    sync_pair_unlock_all(db);
    free(is_echo);
    cJSON_Delete(ow.emails);
    cJSON_Delete(ow.found);
    pipelines_clear(&pl);
    assoc_read_clear(&company_read);
    hs_batch_result_clear(&linked_deals);
    hs_batch_result_clear(&deals);
    hs_batch_result_clear(&refused_deals);
    free(props);
    cJSON_Delete(rollup_contacts);
    cJSON_Delete(created_contacts);
    cJSON_Delete(contact_map);
    cJSON_Delete(defs.list);
    cJSON_Delete(roles);
    cJSON_Delete(sf_records);
    free(opps);
}
