/* sync_deal.c - HubSpot deal events become Salesforce opportunities: current state read in
 * batches, pipeline gate, field rules with echo and conflict checks, upsert on the deal id
 * field, owner by e-mail, account and contact roles. Deleting a deal only forgets its link. */
#include "sync_deal.h"
#include "sync_echo.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hs_owners.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "pipelines.h"
#include "sf_accounts.h"
#include "sf_contacts.h"
#include "sf_id.h"
#include "sf_setup.h"
#include "soql.h"
#include "sync.h"
#include "sync_cache.h"
#include "sync_echo_sf.h"
#include "sync_fanout.h"
#include "sync_pair.h"
#include "sync_state.h"
#include "util.h"

/* A deal without a close date gets one this many days after it was created (Salesforce
 * requires CloseDate; HubSpot does not require closedate). Documented in the README. */
#define DEFAULT_CLOSE_DAYS 30
#define DAY_MS 86400000LL

/* Everything known about one record of the batch while it is synced. */
struct deal_work {
    struct queue_record *rec;
    const char *deal_id;
    const cJSON *props; /* borrowed from the batch read */
    char *record_type_id;
    cJSON *stage_map;
    struct link link;
    bool has_link;
    bool was_linked;  /* linked when the batch started: both records' locks were taken then */
    cJSON *pending;   /* {"sf field": "hs property"}: changes this sync leaves to the other
                       * direction: their baselines stay as they were. {"sf field": null}: HubSpot's
                       * value lost a conflict here; only Salesforce's baseline stays */
    const cJSON *opp; /* borrowed from the opportunity query; NULL when none yet */
    char *company_id; /* primary company, or NULL */
    cJSON *contacts;  /* array of contact id strings */
    cJSON *changes;   /* Salesforce fields to write */
    char *opp_id;
    bool is_created;
    bool is_settled;
    bool has_associations; /* its associations were read with the deals */
    cJSON *sf_messages;    /* the opportunity's open outbound messages (sync_echo_sf.h), or NULL */
    cJSON *sf_set_back;    /* {"sf field": true}: set away and back in Salesforce, and won here */
    cJSON *hs_own_only;    /* no baseline: {"hs property": true}, set by dealsync alone (history) */
    cJSON *hs_user_set;    /* {"hs property": true}: a write of unknown outcome a user set since */
    struct buf detail;
};

/* ---- Pure helpers ------------------------------------------------------------------------ */

bool sync_deal_hubspot_wins(int64_t hs_modified_ms, int64_t sf_modified_ms)
{
    return hs_modified_ms / 1000 > sf_modified_ms / 1000;
}

static bool is_blank(const cJSON *v)
{
    return !v || cJSON_IsNull(v) || (cJSON_IsString(v) && v->valuestring[0] == '\0');
}

static bool as_number(const cJSON *v, double *d)
{
    if (cJSON_IsNumber(v)) {
        *d = v->valuedouble;
        return true;
    }
    char *end = NULL;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return false;
    *d = strtod(v->valuestring, &end);
    return *end == '\0' && isfinite(*d);
}

static bool as_instant(const cJSON *v, int64_t *ms)
{
    const char *s = cJSON_GetStringValue(v);
    if (!s)
        return false;
    if (util_parse_iso8601_ms(s, ms))
        return true;
    /* HubSpot also stores dates as epoch milliseconds. */
    return strlen(s) >= 10 && util_parse_i64(s, ms);
}

bool sync_deal_same_value(const cJSON *a, const cJSON *b)
{
    double da, db;
    int64_t ma, mb;
    if (is_blank(a) || is_blank(b))
        return is_blank(a) && is_blank(b);
    if (cJSON_IsBool(a) || cJSON_IsBool(b)) {
        const char *ta =
            cJSON_IsBool(a) ? (cJSON_IsTrue(a) ? "true" : "false") : cJSON_GetStringValue(a);
        const char *tb =
            cJSON_IsBool(b) ? (cJSON_IsTrue(b) ? "true" : "false") : cJSON_GetStringValue(b);
        return ta && tb && strcmp(ta, tb) == 0;
    }
    if (cJSON_IsString(a) && cJSON_IsString(b) && strcmp(a->valuestring, b->valuestring) == 0)
        return true;
    if (as_instant(a, &ma) && as_instant(b, &mb)) {
        /* A date and the midnight it stands for are the same value. */
        const char *sa = a->valuestring, *sb = b->valuestring;
        if (strlen(sa) == 10 || strlen(sb) == 10)
            return ma / DAY_MS == mb / DAY_MS;
        return ma == mb;
    }
    if (as_number(a, &da) && as_number(b, &db))
        return da == db;
    return false;
}

void sync_deal_keep_baseline(const cJSON *pending, const cJSON *old_sf_seen,
                             const cJSON *old_hs_seen, cJSON *sf_seen, cJSON *hs_seen)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, pending)
    {
        const cJSON *sf_old = cJSON_GetObjectItem(old_sf_seen, e->string);
        cJSON_DeleteItemFromObject(sf_seen, e->string);
        cJSON_AddItemToObject(sf_seen, e->string,
                              sf_old ? cJSON_Duplicate(sf_old, true) : cJSON_CreateNull());
        if (!cJSON_IsString(e))
            continue;
        const cJSON *hs_old = cJSON_GetObjectItemCaseSensitive(old_hs_seen, e->valuestring);
        cJSON_DeleteItemFromObjectCaseSensitive(hs_seen, e->valuestring);
        cJSON_AddItemToObject(hs_seen, e->valuestring,
                              hs_old ? cJSON_Duplicate(hs_old, true) : cJSON_CreateNull());
    }
}

void sync_deal_prune_written(cJSON *written, const cJSON *now)
{
    cJSON *e = written ? written->child : NULL;
    while (e) {
        cJSON *next = e->next;
        const cJSON *v = cJSON_GetObjectItem(now, e->string);
        if (v && !sync_deal_same_value(v, e))
            cJSON_Delete(cJSON_DetachItemViaPointer(written, e));
        e = next;
    }
}

static char *value_text(const cJSON *v)
{
    if (is_blank(v))
        return xstrdup("(blank)");
    if (cJSON_IsString(v))
        return xstrdup(v->valuestring);
    return cJSON_PrintUnformatted(v);
}

static const char *str(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

/* HubSpot sends ids as strings in objects and as numbers in associations. */
static bool id_text(const cJSON *v, char out[32])
{
    if (cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) < 32) {
        strcpy(out, v->valuestring);
        return true;
    }
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9.0e15) {
        snprintf(out, 32, "%.0f", v->valuedouble);
        return true;
    }
    return false;
}

/* ---- Outcomes ---------------------------------------------------------------------------- */

static void settle(struct deal_work *w, enum err rc, bool is_skipped, const char *fmt, ...)
    PRINTF_LIKE(4, 5);
static void settle(struct deal_work *w, enum err rc, bool is_skipped, const char *fmt, ...)
{
    if (w->is_settled)
        return;
    va_list ap;
    va_start(ap, fmt);
    char head[1024];
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    w->is_settled = true;
    w->rec->result = rc;
    w->rec->is_skipped = is_skipped;
    w->rec->detail = xasprintf("%s%s", head, w->detail.data ? w->detail.data : "");
    metrics_inc("dealsync_deal_syncs_total",
                rc != ERR_OK ? (err_is_transient(rc) ? "outcome=\"retry\"" : "outcome=\"failed\"")
                : is_skipped ? "outcome=\"skipped\""
                             : "outcome=\"synced\"",
                1);
}

static void settle_all(struct deal_work *ws, size_t n, enum err rc, int retry_after_ms,
                       const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (ws[i].is_settled)
            continue;
        ws[i].rec->retry_after_ms = retry_after_ms;
        settle(&ws[i], rc, false, "%s: %s", what, err_str(rc));
    }
}

static int hs_hint(const struct sync_ctx *ctx)
{
    int64_t ms = hs_retry_after_ms(ctx->hs);
    return ms > 0 && ms < 86400000 ? (int)ms : 0;
}

/* ---- Reading HubSpot --------------------------------------------------------------------- */

static char *deal_property_list(const struct sync_ctx *ctx)
{
    char *mapped = mapping_hs_property_list(ctx->mappings);
    char *all = xasprintf("%s%spipeline,dealstage,dealname,closedate,createdate,"
                          "hs_lastmodifieddate,num_associated_contacts,%s",
                          mapped, mapped[0] ? "," : "", ctx->cfg->hs_opportunity_id_property);
    free(mapped);
    return all;
}

/* Attaches each deal of the batch read to its work item; deals HubSpot did not return are
 * deleted (archived) or never existed. */
static void attach_deals(struct deal_work *ws, size_t n, const cJSON *results)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, results)
    {
        char id[32];
        if (!id_text(cJSON_GetObjectItemCaseSensitive(d, "id"), id) ||
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "archived")))
            continue;
        for (size_t i = 0; i < n; i++)
            if (!ws[i].is_settled && strcmp(ws[i].deal_id, id) == 0)
                ws[i].props = cJSON_GetObjectItemCaseSensitive(d, "properties");
    }
}

/* Primary company (type 5) or contacts of each deal from an association batch read. */
static void attach_associations(struct deal_work *ws, size_t n, const cJSON *results,
                                bool is_companies)
{
    const cJSON *r, *to;
    cJSON_ArrayForEach(r, results)
    {
        char from[32];
        if (!id_text(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "from"), "id"),
                from))
            continue;
        struct deal_work *w = NULL;
        for (size_t i = 0; i < n && !w; i++)
            if (!ws[i].is_settled && strcmp(ws[i].deal_id, from) == 0)
                w = &ws[i];
        if (!w)
            continue;
        cJSON_ArrayForEach(to, cJSON_GetObjectItemCaseSensitive(r, "to"))
        {
            char to_id[32];
            if (!id_text(cJSON_GetObjectItemCaseSensitive(to, "toObjectId"), to_id))
                continue;
            if (!is_companies) {
                cJSON_AddItemToArray(w->contacts, cJSON_CreateString(to_id));
                continue;
            }
            const cJSON *t;
            cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(to, "associationTypes"))
            {
                const cJSON *type_id = cJSON_GetObjectItemCaseSensitive(t, "typeId");
                if (cJSON_IsNumber(type_id) &&
                    type_id->valueint == HS_ASSOC_DEAL_TO_COMPANY_PRIMARY && !w->company_id)
                    w->company_id = xstrdup(to_id);
            }
        }
    }
}

/* The first failure of the two association reads (*hint_ms its retry hint), or ERR_OK once both
 * are attached to the deals not settled. */
static enum err attach_read_associations(struct deal_work *ws, size_t n,
                                         const struct sync_fanout_deal_read *co,
                                         const struct sync_fanout_deal_read *ct, int *hint_ms)
{
    const struct sync_fanout_deal_read *failed = co->rc != ERR_OK   ? co
                                                 : ct->rc != ERR_OK ? ct
                                                                    : NULL;
    if (failed) {
        *hint_ms = failed->hint_ms;
        return failed->rc;
    }
    attach_associations(ws, n, co->res.results, true);
    attach_associations(ws, n, ct->res.results, false);
    return ERR_OK;
}

/* The company associations of the deals ids and the contact associations of the deals
 * contact_ids (both reads at once; none for an empty list). */
static enum err read_associations(struct sync_ctx *ctx, struct deal_work *ws, size_t n,
                                  const char **ids, size_t n_ids, const char **contact_ids,
                                  size_t n_contact_ids, int *hint_ms)
{
    struct sync_fanout_deal_read co = {.to_type = "companies", .ids = ids, .n_ids = n_ids};
    struct sync_fanout_deal_read ct = {
        .to_type = "contacts", .ids = contact_ids, .n_ids = n_contact_ids};
    const struct sync_fanout_task tasks[] = {
        {n_ids ? sync_fanout_deal_read_run : NULL, &co},
        {n_contact_ids ? sync_fanout_deal_read_run : NULL, &ct}};
    sync_fanout_run(ctx, tasks, 2);
    enum err rc = attach_read_associations(ws, n, &co, &ct, hint_ms);
    hs_batch_result_clear(&ct.res);
    hs_batch_result_clear(&co.res);
    return rc;
}

/* Whether the deal's associations are read with the deal itself, before its opportunity's lock
 * is confirmed: only when the pair was linked when the batch started (lock_records took both
 * locks, so no other worker changes either record meanwhile), and not when every event reports
 * the deal deleted (a deleted deal has none to read). The others' are read after the deals,
 * once the batch knows it syncs them. */
static bool reads_associations_early(const struct deal_work *w)
{
    if (!w->was_linked)
        return false;
    for (size_t i = 0; i < w->rec->event_count; i++)
        if (strcmp(w->rec->events[i].event_type, "deal.deletion") != 0)
            return true;
    return false;
}

/* Whether a deal read after the deals (not linked when the batch started) has no contact to
 * read: HubSpot counts none (num_associated_contacts, a calculated property of the deal read)
 * and no event reports an association change. Its contact association read is left out (an
 * import of deals made in HubSpot: 1 call per 100 deals). HubSpot may count a contact
 * associated a moment ago late; that association's own webhook then syncs the deal again,
 * linked by then, whose associations are read. */
static bool has_no_contacts(const struct deal_work *w)
{
    const char *count = w->props ? str(w->props, "num_associated_contacts") : NULL;
    if (w->was_linked || !count || strcmp(count, "0") != 0)
        return false;
    for (size_t i = 0; i < w->rec->event_count; i++)
        if (strcmp(w->rec->events[i].event_type, "deal.associationChange") == 0)
            return false;
    return true;
}

/* {"Salesforce user id": "HubSpot owner id"} for the owners of the batch whose e-mail is an
 * active Salesforce user's: the mapping's owner_map. */
static enum err owner_map_build(struct sync_ctx *ctx, struct deal_work *ws, size_t n, cJSON **out)
{
    cJSON *wanted = cJSON_CreateObject();
    cJSON *emails = NULL;
    cJSON *want_emails = cJSON_CreateArray();
    cJSON *users = NULL;
    cJSON *map = cJSON_CreateObject();
    const cJSON *e, *u;
    enum err rc = ERR_OK;
    struct buf q;
    buf_init(&q, 0);

    for (size_t i = 0; i < n; i++) {
        const char *owner = ws[i].is_settled ? NULL : str(ws[i].props, "hubspot_owner_id");
        if (owner && owner[0] && !cJSON_GetObjectItemCaseSensitive(wanted, owner))
            cJSON_AddTrueToObject(wanted, owner);
    }
    if (cJSON_GetArraySize(wanted) == 0)
        goto done;
    cJSON *ids = cJSON_CreateArray();
    cJSON_ArrayForEach(e, wanted) cJSON_AddItemToArray(ids, cJSON_CreateString(e->string));
    rc = hs_owners_emails(ctx->hs, ctx->cfg->api_cache_seconds, ids, &emails);
    cJSON_Delete(ids);
    if (rc != ERR_OK) {
        log_warn("cannot list hubspot owners", LOG_STR("error", err_str(rc)));
        goto out;
    }
    cJSON_ArrayForEach(e, emails) if (cJSON_GetObjectItemCaseSensitive(wanted, e->string))
        cJSON_AddItemToArray(want_emails, cJSON_CreateString(e->valuestring));
    buf_append_str(&q, "SELECT Id, Email FROM User WHERE IsActive = true AND Email IN ");
    if (soql_append_in(&q, want_emails) == 0)
        goto done;
    rc = sf_query(ctx->sf, q.data, &users);
    if (rc != ERR_OK)
        goto out;
    cJSON_ArrayForEach(e, emails)
    {
        if (!cJSON_GetObjectItemCaseSensitive(wanted, e->string))
            continue;
        cJSON_ArrayForEach(u, users)
        {
            const char *mail = str(u, "Email");
            char id18[19];
            if (mail && strcasecmp(mail, e->valuestring) == 0 && sf_id_to18(str(u, "Id"), id18) &&
                !cJSON_GetObjectItemCaseSensitive(map, id18)) {
                cJSON_AddStringToObject(map, id18, e->string);
                break;
            }
        }
    }
done:
    *out = map;
    map = NULL;
out:
    cJSON_Delete(map);
    cJSON_Delete(users);
    cJSON_Delete(want_emails);
    cJSON_Delete(emails);
    cJSON_Delete(wanted);
    buf_clear(&q);
    return rc;
}

/* ---- Reading Salesforce ------------------------------------------------------------------ */

static void add_field(struct buf *b, cJSON *seen, const char *f)
{
    if (cJSON_GetObjectItem(seen, f))
        return;
    cJSON_AddTrueToObject(seen, f);
    buf_printf(b, "%s%s", cJSON_GetArraySize(seen) > 1 ? ", " : "", f);
}

/* The opportunity a deal came from, by the opportunity id the Salesforce-to-HubSpot direction
 * stores on it in the same upsert that creates it, or NULL. This is the link that exists from the
 * deal's first instant: the deal's creation webhook can be handled before that direction has
 * saved its record_link, and an unlinked deal would otherwise create a second opportunity. */
static const char *origin_opportunity(const struct sync_ctx *ctx, const struct deal_work *w)
{
    const char *id = str(w->props, ctx->cfg->hs_opportunity_id_property);
    return id && sf_id_is_valid(id) ? id : NULL;
}

/* One query for the opportunities of the batch: by the deal id field, and by the linked (or
 * originating) id for opportunities that do not carry it (yet). */
static enum err read_opportunities(struct sync_ctx *ctx, struct deal_work *ws, size_t n,
                                   cJSON **rows)
{
    const char *ext = ctx->cfg->sf_deal_id_field;
    cJSON *seen = cJSON_CreateObject();
    cJSON *deal_ids = cJSON_CreateArray();
    cJSON *opp_ids = cJSON_CreateArray();
    bool has_record_types = false;
    enum err rc = ERR_OK;
    struct buf q;
    buf_init(&q, 0);

    for (size_t i = 0; i < n; i++) {
        if (ws[i].is_settled)
            continue;
        cJSON_AddItemToArray(deal_ids, cJSON_CreateString(ws[i].deal_id));
        if (ws[i].has_link)
            cJSON_AddItemToArray(opp_ids, cJSON_CreateString(ws[i].link.sf_id));
        else if (origin_opportunity(ctx, &ws[i]))
            cJSON_AddItemToArray(opp_ids, cJSON_CreateString(origin_opportunity(ctx, &ws[i])));
        has_record_types |= ws[i].record_type_id[0] != '\0';
    }
    *rows = cJSON_CreateArray();
    if (cJSON_GetArraySize(deal_ids) == 0)
        goto out;
    buf_append_str(&q, "SELECT ");
    add_field(&q, seen, "Id");
    for (size_t i = 0; i < mapping_set_count(ctx->mappings); i++) {
        const struct mapping_field *f = mapping_set_field(ctx->mappings, i);
        if (f->rule != MAPPING_RULE_NONE)
            add_field(&q, seen, f->sf_field);
    }
    add_field(&q, seen, "AccountId");
    add_field(&q, seen, "LastModifiedDate");
    /* Whether the opportunity is dealsync's own creation, unchanged since (no baseline). */
    add_field(&q, seen, "CreatedDate");
    add_field(&q, seen, "CreatedById");
    add_field(&q, seen, "LastModifiedById");
    add_field(&q, seen, ext);
    if (has_record_types)
        add_field(&q, seen, "RecordTypeId");
    buf_printf(&q, " FROM Opportunity WHERE %s IN ", ext);
    soql_append_in(&q, deal_ids);
    if (cJSON_GetArraySize(opp_ids) > 0) {
        buf_append_str(&q, " OR Id IN ");
        soql_append_in(&q, opp_ids);
    }
    cJSON_Delete(*rows);
    *rows = NULL;
    rc = sf_query(ctx->sf, q.data, rows);
out:
    cJSON_Delete(opp_ids);
    cJSON_Delete(deal_ids);
    cJSON_Delete(seen);
    buf_clear(&q);
    return rc;
}

static void attach_opportunities(const struct sync_ctx *ctx, struct deal_work *ws, size_t n,
                                 const cJSON *rows)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, rows)
    {
        const char *deal = str(o, ctx->cfg->sf_deal_id_field);
        for (size_t i = 0; i < n; i++) {
            if (ws[i].is_settled)
                continue;
            if (deal && strcmp(deal, ws[i].deal_id) == 0)
                ws[i].opp = o; /* the deal id field wins over the link */
            else if (!ws[i].opp && ws[i].has_link && sf_id_equal(str(o, "Id"), ws[i].link.sf_id))
                ws[i].opp = o;
            else if (!ws[i].opp && !ws[i].has_link && origin_opportunity(ctx, &ws[i]) &&
                     sf_id_equal(str(o, "Id"), origin_opportunity(ctx, &ws[i])))
                ws[i].opp = o;
        }
    }
}

/* ---- Deciding what to write -------------------------------------------------------------- */

static const struct mapping_field *field_by_sf(const struct mapping_set *set, const char *sf)
{
    for (size_t i = 0; i < mapping_set_count(set); i++)
        if (strcmp(mapping_set_field(set, i)->sf_field, sf) == 0)
            return mapping_set_field(set, i);
    return NULL;
}

/* Fields Salesforce never holds blank. OwnerId is one (every record has an owner; it is not
 * nillable): a deal with no owner, or whose owner has no Salesforce user, leaves the
 * opportunity's owner as it is instead of blanking it. */
static bool is_required(const char *sf_field)
{
    return strcmp(sf_field, "Name") == 0 || strcmp(sf_field, "StageName") == 0 ||
           strcmp(sf_field, "CloseDate") == 0 || strcmp(sf_field, "OwnerId") == 0;
}

static int64_t time_of(const cJSON *v)
{
    int64_t ms = 0;
    return as_instant(v, &ms) ? ms : 0;
}

/* Whether the record's field holds the value dealsync last wrote to it (written: sf_written). */
static bool holds_own_write(const cJSON *written, const char *field, const cJSON *now)
{
    const cJSON *own = cJSON_GetObjectItem(written, field);
    return own && sync_deal_same_value(own, now);
}

/* Whether Salesforce changed field since the last sync (not to a value dealsync wrote there
 * itself: an echo of a write whose sync failed before it saved the baseline is no user's
 * change). */
static bool is_salesforce_changed(const struct deal_work *w, const char *field)
{
    const cJSON *seen = w->has_link ? cJSON_GetObjectItem(w->link.sf_seen, field) : NULL;
    const cJSON *sv = w->opp ? cJSON_GetObjectItem(w->opp, field) : NULL;
    if (w->opp && seen && !sync_deal_same_value(seen, sv) &&
        !holds_own_write(w->link.sf_written, field, sv))
        return true;
    /* Set away and back by a Salesforce user: the value alone says unchanged, a message not
     * handled yet says otherwise (a chaos run wrote HubSpot's older Type over it). */
    return w->opp && w->has_link && sync_echo_sf_changed(w->sf_messages, &w->link, field);
}

/* Whether Salesforce's value of field is the baseline or dealsync's own write, though a
 * Salesforce user changed it since the last sync (its messages say so): set away and back. */
static bool is_set_back(const struct deal_work *w, const char *field)
{
    const cJSON *seen = cJSON_GetObjectItem(w->link.sf_seen, field);
    const cJSON *sv = cJSON_GetObjectItem(w->opp, field);
    return w->opp && w->has_link &&
           ((seen && sync_deal_same_value(seen, sv)) ||
            holds_own_write(w->link.sf_written, field, sv)) &&
           sync_echo_sf_changed(w->sf_messages, &w->link, field);
}

/* Both sides changed field: whether Salesforce's change wins (its record modified in the later
 * second, a tie included), the outcome noting the loser either way. */
static bool salesforce_wins(struct deal_work *w, const char *field, const cJSON *hv, int64_t hs_mod,
                            int64_t sf_mod)
{
    char *sf_text = value_text(cJSON_GetObjectItem(w->opp, field));
    char *hs_text = value_text(hv);
    bool is_sf = !sync_deal_hubspot_wins(hs_mod, sf_mod);
    if (is_sf)
        buf_printf(&w->detail,
                   "; conflict on %s: salesforce value %s (changed later) kept, hubspot value %s "
                   "lost",
                   field, sf_text, hs_text);
    else
        buf_printf(&w->detail,
                   "; conflict on %s: hubspot value %s (changed later) written, salesforce value "
                   "%s lost",
                   field, hs_text, sf_text);
    free(hs_text);
    free(sf_text);
    return is_sf;
}

/* Keeps from the mapped changes only what HubSpot changed itself and wins: drops dealsync's own
 * echoes (the deal holds what dealsync wrote to it), values HubSpot did not change since the
 * last sync (Salesforce did; the other direction carries them) and two-way conflicts that
 * Salesforce's later change wins, recording the loser. */
static void filter_changes(const struct sync_ctx *ctx, struct deal_work *w)
{
    cJSON *c = w->changes ? w->changes->child : NULL;
    int64_t hs_mod = time_of(cJSON_GetObjectItemCaseSensitive(w->props, "hs_lastmodifieddate"));
    int64_t sf_mod =
        w->opp ? time_of(cJSON_GetObjectItemCaseSensitive(w->opp, "LastModifiedDate")) : 0;
    bool is_sf_own_creation =
        !w->has_link && w->opp && sync_echo_sf_own_creation(w->opp, sf_user_id(ctx->sf));
    while (c) {
        cJSON *next = c->next;
        const struct mapping_field *f = field_by_sf(ctx->mappings, c->string);
        const char *p = f ? f->hs_property : NULL;
        const cJSON *hv = p ? cJSON_GetObjectItemCaseSensitive(w->props, p) : NULL;
        const cJSON *sv = w->opp ? cJSON_GetObjectItem(w->opp, c->string) : NULL;
        bool drop = false;
        bool is_pending = false;
        bool is_lost = false;
        /* A user who set the property back to dealsync's write or to the baseline (A, B, A)
         * changed it all the same: the deal read after the last step shows no change by value,
         * the webhooks show a user's change since dealsync last knew the deal (a chaos run lost
         * such a HubSpot stage to an older Salesforce one). */
        bool is_user_set = w->has_link && p &&
                           (sync_echo_user_changed(w->rec, p, w->link.hs_modified_ms) ||
                            cJSON_GetObjectItemCaseSensitive(w->hs_user_set, p));
        if (cJSON_IsNull(c) && is_required(c->string)) {
            buf_printf(&w->detail, "; %s is required in salesforce: blank not written", p);
            drop = true;
        } else if (is_user_set) {
            buf_printf(&w->detail, "; %s changed by a hubspot user since the last sync", p);
            if (f && f->rule == MAPPING_RULE_TWO_WAY && is_salesforce_changed(w, c->string))
                drop = is_pending = is_lost = salesforce_wins(w, c->string, hv, hs_mod, sf_mod);
        } else if (w->has_link && p && cJSON_GetObjectItemCaseSensitive(w->link.hs_written, p) &&
                   sync_deal_same_value(cJSON_GetObjectItemCaseSensitive(w->link.hs_written, p),
                                        hv)) {
            buf_printf(&w->detail, "; %s holds dealsync's own write: not sent back", p);
            drop = is_pending = true;
        } else if (w->has_link && p && cJSON_GetObjectItemCaseSensitive(w->link.hs_seen, p) &&
                   sync_deal_same_value(cJSON_GetObjectItemCaseSensitive(w->link.hs_seen, p), hv)) {
            /* Unchanged in HubSpot since the last sync: a different Salesforce value is a
             * Salesforce change the other direction carries. */
            drop = is_pending = true;
        } else if (f && f->rule == MAPPING_RULE_TWO_WAY && is_salesforce_changed(w, c->string)) {
            drop = is_pending = is_lost = salesforce_wins(w, c->string, hv, hs_mod, sf_mod);
        } else if (f && f->rule == MAPPING_RULE_TWO_WAY && !w->has_link && w->opp && sv &&
                   !sync_deal_hubspot_wins(hs_mod, sf_mod) && is_sf_own_creation) {
            /* The opportunity modified later, but by its creation by dealsync alone (from a
             * read of the deal maybe older than the user's HubSpot change): not a Salesforce
             * user's change, and the deal's value is written. */
            buf_printf(&w->detail,
                       "; %s written: no baseline yet, and the opportunity is dealsync's own "
                       "creation, unchanged since",
                       p);
        } else if (f && f->rule == MAPPING_RULE_TWO_WAY && !w->has_link && w->opp && sv &&
                   !sync_deal_hubspot_wins(hs_mod, sf_mod)) {
            /* Both records exist but no baseline does (the sync that made one of them died
             * before it saved the link, or the pair was made before dealsync): the record
             * modified in the later second wins, as in a conflict. Writing the deal's value
             * here put the deal's creation back over a user's newer Salesforce edit (chaos
             * run, seed 2). The baseline stays unknown, so the other direction carries it. */
            char *sf_text = value_text(sv);
            buf_printf(&w->detail,
                       "; %s not written: no baseline yet and salesforce changed later (%s "
                       "kept)",
                       p, sf_text);
            free(sf_text);
            drop = is_pending = true;
        } else if (f && f->rule == MAPPING_RULE_TWO_WAY && !w->has_link && w->opp && sv &&
                   cJSON_GetObjectItemCaseSensitive(w->hs_own_only, p)) {
            /* No baseline, the deal modified later, but only dealsync ever set p on it: the
             * deal's value is dealsync's own write (its creation from a read older than the
             * user's Salesforce change, whose link was lost with the answer or a kill), never a
             * HubSpot user's change. The other direction writes Salesforce's value. */
            buf_printf(&w->detail,
                       "; %s not written: no baseline yet, and only dealsync ever set it in "
                       "hubspot (its history)",
                       p);
            drop = is_pending = true;
        }
        if (is_lost && f && is_set_back(w, c->string)) {
            if (!w->sf_set_back)
                w->sf_set_back = cJSON_CreateObject();
            cJSON_AddTrueToObject(w->sf_set_back, c->string);
        }
        if (is_pending) {
            if (!w->pending)
                w->pending = cJSON_CreateObject();
            if (is_lost)
                cJSON_AddNullToObject(w->pending, c->string);
            else
                cJSON_AddStringToObject(w->pending, c->string, p);
        }
        if (drop)
            cJSON_Delete(cJSON_DetachItemViaPointer(w->changes, c));
        c = next;
    }
}

/* Whether the history of the deal's property p (field f, its change c) is asked for. */
typedef bool history_fn(const struct deal_work *w, const struct mapping_field *f, const cJSON *c);

/* The two-way properties of w's changes whose history is asked for (is_asked), comma-separated,
 * into names (initialised here; the caller clears it). */
static void history_names(const struct sync_ctx *ctx, const struct deal_work *w,
                          history_fn *is_asked, struct buf *names)
{
    const cJSON *c;
    buf_init(names, 0);
    cJSON_ArrayForEach(c, w->changes)
    {
        const struct mapping_field *f = field_by_sf(ctx->mappings, c->string);
        if (f && f->rule == MAPPING_RULE_TWO_WAY && is_asked(w, f, c))
            buf_printf(names, "%s%s", names->len ? "," : "", f->hs_property);
    }
}

static bool is_different(const struct deal_work *w, const struct mapping_field *f, const cJSON *c)
{
    (void)f;
    return !sync_deal_same_value(c, cJSON_GetObjectItem(w->opp, c->string));
}

/* Whether p holds dealsync's write of unknown outcome and no webhook of the record reports a
 * user's change of it. */
static bool is_maybe_unreported(const struct deal_work *w, const struct mapping_field *f,
                                const cJSON *c)
{
    const char *p = f->hs_property;
    const cJSON *own = cJSON_GetObjectItemCaseSensitive(w->link.hs_written, p);
    (void)c;
    return own && link_is_maybe_written(&w->link, true, p) &&
           sync_deal_same_value(own, cJSON_GetObjectItemCaseSensitive(w->props, p)) &&
           !sync_echo_user_changed(w->rec, p, w->link.hs_modified_ms);
}

/* A deal without a link whose opportunity exists, modified in the later second: which two-way
 * properties whose values differ only dealsync ever set on the deal (w->hs_own_only; one call,
 * sync_echo_hs_own_only), for filter_changes. */
static enum err read_own_only(struct sync_ctx *ctx, struct deal_work *w)
{
    int64_t hs_mod = time_of(cJSON_GetObjectItemCaseSensitive(w->props, "hs_lastmodifieddate"));
    int64_t sf_mod = time_of(cJSON_GetObjectItemCaseSensitive(w->opp, "LastModifiedDate"));
    if (!sync_deal_hubspot_wins(hs_mod, sf_mod))
        return ERR_OK;
    struct buf names;
    history_names(ctx, w, is_different, &names);
    enum err rc = ERR_OK;
    if (names.len)
        rc = sync_echo_hs_own_only(ctx, w->deal_id, names.data, &w->hs_own_only);
    buf_clear(&names);
    return rc;
}

/* A linked deal modified since dealsync last knew it whose property holds dealsync's write of
 * unknown outcome (hs_maybe: cut off by a timeout or a kill), with no webhook among the record's
 * events reporting a user's change of it: the property's history (one call, only then) tells
 * whether a user set that value since (w->hs_user_set, for filter_changes). Its webhook may have
 * been lost; taken for dealsync's own write here, the link saved after this sync dated the deal
 * past the user's change, and the other direction then read no history either and wrote the
 * opportunity's older value over the user's. */
static enum err read_maybe_history(struct sync_ctx *ctx, struct deal_work *w)
{
    int64_t hs_mod = time_of(cJSON_GetObjectItemCaseSensitive(w->props, "hs_lastmodifieddate"));
    if (!w->has_link || w->link.hs_modified_ms <= 0 || hs_mod <= w->link.hs_modified_ms)
        return ERR_OK;
    struct buf names;
    history_names(ctx, w, is_maybe_unreported, &names);
    cJSON *deal = NULL;
    enum err rc =
        names.len ? hs_object_get_history(ctx->hs, "deals", w->deal_id, names.data, &deal) : ERR_OK;
    buf_clear(&names);
    if (rc == ERR_NOT_FOUND)
        return ERR_BUSY;
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(deal, "propertiesWithHistory"))
    {
        const cJSON *own = cJSON_GetObjectItemCaseSensitive(w->link.hs_written, h->string);
        if (!sync_echo_history_changed(h, own, w->link.hs_modified_ms, ctx->cfg->hubspot_app_id))
            continue;
        if (!w->hs_user_set)
            w->hs_user_set = cJSON_CreateObject();
        cJSON_AddTrueToObject(w->hs_user_set, h->string);
    }
    cJSON_Delete(deal);
    return rc;
}

/* Required fields a new opportunity lacks: a default where one is documented, else false with
 * the reason in *why. */
static bool complete_for_create(struct deal_work *w, const char **why)
{
    if (!cJSON_GetObjectItemCaseSensitive(w->changes, "StageName")) {
        *why = "the deal's stage has no salesforce stage in its pipeline's record type";
        return false;
    }
    if (!cJSON_GetObjectItemCaseSensitive(w->changes, "Name")) {
        *why = "the deal has no name";
        return false;
    }
    if (!cJSON_GetObjectItemCaseSensitive(w->changes, "CloseDate")) {
        int64_t created = time_of(cJSON_GetObjectItemCaseSensitive(w->props, "createdate"));
        char date[UTIL_ISO8601_LEN];
        util_format_date((created ? created : util_now_ms()) + DEFAULT_CLOSE_DAYS * DAY_MS, date);
        cJSON_AddStringToObject(w->changes, "CloseDate", date);
        buf_printf(&w->detail, "; no close date: CloseDate set to %s (created + %d days)", date,
                   DEFAULT_CLOSE_DAYS);
    }
    return true;
}

/* Whether the opportunity's account or record type (field), which the deal's company and
 * pipeline decide (hs_value: the Salesforce id they map to), was changed in Salesforce since the
 * last sync and must not be written over: the deal still maps to the value both sides last
 * agreed on (sf_seen), so the change is Salesforce's and the other direction carries it to
 * HubSpot. Writing the deal's value whenever the two differed put a user's new account back to
 * the old one when any change of the deal was synced before the opportunity's outbound message.
 * When HubSpot changed it too, the record modified in the later second wins, as for a two-way
 * field. A value dealsync itself wrote there is no user's change. */
static bool keeps_salesforce_change(struct deal_work *w, const char *field, const char *hs_value)
{
    const char *seen = w->has_link && w->opp
                           ? cJSON_GetStringValue(cJSON_GetObjectItem(w->link.sf_seen, field))
                           : NULL;
    const cJSON *now = w->opp ? cJSON_GetObjectItem(w->opp, field) : NULL;
    const char *sf_value = cJSON_GetStringValue(now);
    if (!seen || sf_id_equal(sf_value, seen) || holds_own_write(w->link.sf_written, field, now))
        return false;
    if (!sf_id_equal(hs_value, seen)) {
        int64_t hs_mod = time_of(cJSON_GetObjectItemCaseSensitive(w->props, "hs_lastmodifieddate"));
        int64_t sf_mod = time_of(cJSON_GetObjectItemCaseSensitive(w->opp, "LastModifiedDate"));
        cJSON *hv = cJSON_CreateString(hs_value);
        bool is_sf = salesforce_wins(w, field, hv, hs_mod, sf_mod);
        cJSON_Delete(hv);
        return is_sf;
    }
    buf_printf(&w->detail,
               "; %s changed in salesforce since the last sync (%s, was %s): not written back, "
               "the other direction carries it",
               field, sf_value ? sf_value : "(none)", seen);
    return true;
}

/* is_defs_fresh: whether this batch has read the deal property definitions again already. */
static enum err decide(struct sync_ctx *ctx, struct deal_work *w, const cJSON *owner_map,
                       const cJSON *accounts, const cJSON *account_reasons, bool *is_defs_fresh)
{
    struct mapping_context mctx = {0};
    struct mapping_result res = {0};
    mctx.stage_map = w->stage_map;
    mctx.owner_map = owner_map;
    /* Picklist values are checked against Salesforce's and HubSpot's definitions (issue 10). */
    enum err rc = sf_describe_opportunity(ctx->describe, ctx->sf, &mctx.sf_describe);
    if (rc == ERR_OK)
        rc = sync_deal_property_defs(ctx, &mctx.hs_property_defs);
    if (rc != ERR_OK) {
        settle(w, rc, false, "cannot read the field definitions for deal %s", w->deal_id);
        return ERR_OK;
    }
    rc = mapping_apply(ctx->mappings, &mctx, MAPPING_HS_TO_SF, w->opp, w->props, &res);
    if (rc == ERR_OK && !*is_defs_fresh && mapping_result_lacks_hs_option(&res)) {
        /* A value the shared definitions have no option for: a user may have just added it
         * in HubSpot and set it on this deal. Read them again (once a batch), as the other
         * direction does, rather than leave the value out for up to API_CACHE_SECONDS. */
        cJSON *fresh = NULL;
        rc = sync_deal_property_defs_copy(ctx, true, &fresh);
        mapping_result_clear(&res);
        if (rc != ERR_OK) {
            settle(w, rc, false, "cannot read the field definitions for deal %s", w->deal_id);
            return ERR_OK;
        }
        *is_defs_fresh = true;
        cJSON_Delete(ctx->hs_deal_defs);
        ctx->hs_deal_defs = fresh;
        mctx.hs_property_defs = fresh;
        rc = mapping_apply(ctx->mappings, &mctx, MAPPING_HS_TO_SF, w->opp, w->props, &res);
    }
    if (rc != ERR_OK) {
        settle(w, rc, false, "cannot map deal %s", w->deal_id);
        return ERR_OK;
    }
    w->changes = res.changes;
    res.changes = NULL;
    for (size_t i = 0; i < res.skip_count; i++)
        buf_printf(&w->detail, "; %s not written: %s%s", res.skips[i].field, res.skips[i].reason,
                   strcmp(res.skips[i].field, "hubspot_owner_id") == 0 ? " (owner left as is)"
                                                                       : "");
    if (res.skip_count > 0)
        w->rec->has_warning = true; /* synced, with something left out */
    mapping_result_clear(&res);
    if ((!w->has_link && w->opp && (rc = read_own_only(ctx, w)) != ERR_OK) ||
        (w->has_link && (rc = read_maybe_history(ctx, w)) != ERR_OK)) {
        if (rc == ERR_BUSY)
            settle(w, rc, false, "deal %s was deleted while its history was read: tried again",
                   w->deal_id);
        else
            settle(w, rc, false, "cannot read the history of deal %s", w->deal_id);
        return ERR_OK;
    }
    filter_changes(ctx, w);

    const char *rt = w->record_type_id;
    if (rt[0] && (!w->opp || !sf_id_equal(str(w->opp, "RecordTypeId"), rt)) &&
        !keeps_salesforce_change(w, "RecordTypeId", rt))
        cJSON_AddStringToObject(w->changes, "RecordTypeId", rt);
    /* A new opportunity whose deal has no owner with a Salesforce user is owned by the
     * integration user (HubSpot's rule; Salesforce gives it the writing user anyway): written
     * as such, the owner is a value dealsync wrote, and the opportunity's outbound message is
     * told from a user's change without reading it (sync_echo_sf.h). */
    const struct mapping_field *owner = field_by_sf(ctx->mappings, "OwnerId");
    if (!w->opp && owner && owner->rule != MAPPING_RULE_NONE && sf_user_id(ctx->sf) &&
        !cJSON_GetObjectItem(w->changes, "OwnerId"))
        cJSON_AddStringToObject(w->changes, "OwnerId", sf_user_id(ctx->sf));
    const char *account = w->company_id ? str(accounts, w->company_id) : NULL;
    if (account && (!w->opp || !sf_id_equal(str(w->opp, "AccountId"), account)) &&
        !keeps_salesforce_change(w, "AccountId", account))
        cJSON_AddStringToObject(w->changes, "AccountId", account);
    if (w->company_id && !account)
        w->rec->has_warning = true;
    if (w->company_id && !account)
        buf_printf(&w->detail, "; no account: %s",
                   str(account_reasons, w->company_id) ? str(account_reasons, w->company_id)
                                                       : "company not resolved");
    if (!w->opp) {
        const char *why = NULL;
        if (!complete_for_create(w, &why))
            settle(w, ERR_INVALID, false, "opportunity not created for deal %s: %s", w->deal_id,
                   why);
    }
    return ERR_OK;
}

/* ---- Writing ----------------------------------------------------------------------------- */

/* Updates linked opportunities by record id (records: collection records with Id, the deal id
 * field and the changes; order: their work items), settling each refused one. */
static void stamp_deal_ids(struct sync_ctx *ctx, const cJSON *records, struct deal_work **order,
                           size_t n)
{
    struct sf_save_result *saved = NULL;
    size_t saved_n = 0;
    enum err rc = sf_collection_update(ctx->sf, records, false, &saved, &saved_n);
    for (size_t i = 0; i < n; i++) {
        struct deal_work *w = order[i];
        const char *id = str(w->opp, "Id");
        if (rc != ERR_OK)
            settle(w, rc, false, "cannot update opportunity %s", id);
        else if (i < saved_n && saved[i].is_success)
            w->opp_id = xstrdup(id);
        else if (i < saved_n && saved[i].error_code &&
                 strcmp(saved[i].error_code, "ENTITY_IS_DELETED") == 0)
            /* Deleted by a user since it was read: nothing to write, and never made again (the
             * other direction deletes the deal once Salesforce reports the delete). */
            settle(w, ERR_OK, true,
                   "opportunity %s of deal %s was deleted in salesforce meanwhile: nothing written",
                   id, w->deal_id);
        else
            settle(w, i < saved_n && saved[i].err != ERR_OK ? saved[i].err : ERR_INVALID, false,
                   "opportunity %s refused by salesforce: %s %s", id,
                   i < saved_n && saved[i].error_code ? saved[i].error_code : "",
                   i < saved_n && saved[i].message ? saved[i].message : "");
    }
    sf_save_results_free(saved, saved_n);
}

static enum err upsert_opportunities(struct sync_ctx *ctx, struct deal_work *ws, size_t n)
{
    const char *ext = ctx->cfg->sf_deal_id_field;
    cJSON *records = cJSON_CreateArray();
    struct deal_work **order = xcalloc(n + 1, sizeof(*order));
    cJSON *stamps = cJSON_CreateArray();
    struct deal_work **stamp_order = xcalloc(n + 1, sizeof(*stamp_order));
    size_t n_stamps = 0;
    struct sf_save_result *saved = NULL;
    size_t saved_n = 0, k = 0;
    enum err rc = ERR_OK;

    for (size_t i = 0; i < n; i++) {
        struct deal_work *w = &ws[i];
        if (w->is_settled)
            continue;
        const char *held = w->opp ? str(w->opp, ext) : NULL;
        bool needs_id = !held || strcmp(held, w->deal_id) != 0;
        if (w->opp && cJSON_GetArraySize(w->changes) == 0 && !needs_id) {
            w->opp_id = xstrdup(str(w->opp, "Id"));
            continue;
        }
        if (w->opp) {
            /* An existing opportunity is updated by its record id (with the deal id field, which
             * it lacks when the other direction created the deal), all of the batch's in one
             * collection update: an upsert on the deal id field would make a new opportunity
             * of one a user deleted since it was read (chaos run). */
            cJSON *rec = cJSON_Duplicate(w->changes, true);
            cJSON_AddStringToObject(cJSON_AddObjectToObject(rec, "attributes"), "type",
                                    "Opportunity");
            cJSON_AddStringToObject(rec, "Id", str(w->opp, "Id"));
            cJSON_AddStringToObject(rec, ext, w->deal_id);
            cJSON_AddItemToArray(stamps, rec);
            stamp_order[n_stamps++] = w;
            continue;
        }
        cJSON *rec = cJSON_Duplicate(w->changes, true);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(rec, "attributes"), "type", "Opportunity");
        cJSON_AddStringToObject(rec, ext, w->deal_id);
        cJSON_AddItemToArray(records, rec);
        order[k++] = w;
    }
    if (n_stamps > 0)
        stamp_deal_ids(ctx, stamps, stamp_order, n_stamps);
    if (k == 0)
        goto out;
    rc = sf_collection_upsert(ctx->sf, "Opportunity", ext, records, false, &saved, &saved_n);
    if (rc != ERR_OK) {
        for (size_t i = 0; i < k; i++)
            settle(order[i], rc, false, "cannot upsert opportunity for deal %s", order[i]->deal_id);
        rc = ERR_OK;
        goto out;
    }
    for (size_t i = 0; i < k && i < saved_n; i++) {
        struct deal_work *w = order[i];
        if (saved[i].is_success && saved[i].id) {
            w->opp_id = xstrdup(saved[i].id);
            w->is_created = saved[i].is_created;
        } else {
            settle(w, saved[i].err != ERR_OK ? saved[i].err : ERR_INVALID, false,
                   "opportunity for deal %s refused by salesforce: %s %s", w->deal_id,
                   saved[i].error_code ? saved[i].error_code : "",
                   saved[i].message ? saved[i].message : "");
        }
    }
out:
    sf_save_results_free(saved, saved_n);
    free(stamp_order);
    cJSON_Delete(stamps);
    free(order);
    cJSON_Delete(records);
    return rc;
}

/* The writes remembered (noted[i]) and then refused, or answered with an error, were not carried
 * out: what was remembered of them goes, so a Salesforce user who later sets such a value is
 * not taken for dealsync's own write (a test: a HubSpot user set the value back, the Salesforce
 * user's newer change was finished as an echo and then written over). A timeout may have been
 * carried out with its answer lost: that stays remembered, as a write cut short by a kill does. */
static void unnote_unwritten(PGconn *db, struct deal_work *ws, size_t n, const bool *noted)
{
    for (size_t i = 0; i < n; i++) {
        const struct deal_work *w = &ws[i];
        if (!noted[i] || !w->is_settled || w->rec->result == ERR_OK ||
            w->rec->result == ERR_TIMEOUT)
            continue;
        enum err rc = link_unnote_written(db, LINK_OPPORTUNITY, w->link.sf_id, false, w->changes,
                                          w->link.sf_written, w->link.sf_maybe);
        if (rc != ERR_OK)
            log_warn("cannot forget a write not carried out", LOG_STR("record_id", w->deal_id),
                     LOG_STR("error", err_str(rc)));
    }
}

/* Copies the mapped fields of from (the properties or the opportunity) into a fresh object,
 * then overlays `over` (may be NULL). */
static cJSON *snapshot(const struct sync_ctx *ctx, const cJSON *from, bool is_sf, const cJSON *over)
{
    cJSON *s = cJSON_CreateObject();
    for (size_t i = 0; i < mapping_set_count(ctx->mappings); i++) {
        const struct mapping_field *f = mapping_set_field(ctx->mappings, i);
        const char *name = is_sf ? f->sf_field : f->hs_property;
        const cJSON *v =
            is_sf ? cJSON_GetObjectItem(from, name) : cJSON_GetObjectItemCaseSensitive(from, name);
        cJSON_AddItemToObject(s, name, v ? cJSON_Duplicate(v, true) : cJSON_CreateNull());
    }
    const cJSON *o;
    cJSON_ArrayForEach(o, over)
    {
        cJSON_DeleteItemFromObjectCaseSensitive(s, o->string);
        cJSON_AddItemToObject(s, o->string, cJSON_Duplicate(o, true));
    }
    return s;
}

static enum err save_link(const struct sync_ctx *ctx, PGconn *db, struct deal_work *w,
                          bool wrote_opp_id)
{
    struct link l = {0};
    l.kind = LINK_OPPORTUNITY;
    l.sf_id = w->opp_id;
    l.hs_id = (char *)w->deal_id;
    /* sf_written: every field dealsync has written to the opportunity, as sent (REST JSON). */
    l.sf_written = w->has_link ? cJSON_Duplicate(w->link.sf_written, true) : cJSON_CreateObject();
    const cJSON *c;
    cJSON_ArrayForEach(c, w->changes)
    {
        cJSON_DeleteItemFromObjectCaseSensitive(l.sf_written, c->string);
        cJSON_AddItemToObject(l.sf_written, c->string, cJSON_Duplicate(c, true));
    }
    /* Written with its answer: no longer of unknown outcome (link_note_written). */
    l.sf_maybe = w->has_link ? cJSON_Duplicate(w->link.sf_maybe, true) : NULL;
    cJSON_ArrayForEach(c, w->changes)
    {
        cJSON_DeleteItemFromObject(l.sf_maybe, c->string);
    }
    l.hs_written = w->has_link ? cJSON_Duplicate(w->link.hs_written, true) : cJSON_CreateObject();
    l.hs_maybe = w->has_link ? cJSON_Duplicate(w->link.hs_maybe, true) : NULL;
    sync_deal_prune_written(l.hs_written, w->props);
    if (wrote_opp_id) {
        cJSON_DeleteItemFromObjectCaseSensitive(l.hs_written, ctx->cfg->hs_opportunity_id_property);
        cJSON_AddStringToObject(l.hs_written, ctx->cfg->hs_opportunity_id_property, w->opp_id);
    }
    /* The baseline (sf_seen / hs_seen) is what both sides agreed on at the end of this sync,
     * field by field: the value written, the value both already held, or a value this sync
     * decided not to write (it then never travels back as a change). A change this sync left
     * to the other direction, or that lost a conflict here, keeps the old baseline on both
     * sides, so the other direction still sees it as a change: saving the current Salesforce
     * value there instead made a Salesforce edit in flight look unchanged, and the other
     * direction then kept HubSpot's older value for good (issue 14). */
    l.sf_seen = snapshot(ctx, w->opp, true, w->changes);
    l.hs_seen = snapshot(ctx, w->props, false, NULL);
    sync_deal_prune_written(l.sf_written, l.sf_seen);
    /* Without an old baseline, a field left to the other direction gets none (null). */
    sync_deal_keep_baseline(w->pending, w->has_link ? w->link.sf_seen : NULL,
                            w->has_link ? w->link.hs_seen : NULL, l.sf_seen, l.hs_seen);
    /* The account and record type keep theirs unless written here (an echo is told by them). */
    sync_echo_keep_followed(w->has_link ? w->link.sf_seen : NULL, l.sf_seen);
    /* A value set away and back in Salesforce that won here keeps no Salesforce baseline or
     * remembered write: by value it looks unchanged, and the other direction must carry it. */
    const cJSON *back;
    cJSON_ArrayForEach(back, w->sf_set_back)
    {
        cJSON_DeleteItemFromObject(l.sf_seen, back->string);
        cJSON_AddNullToObject(l.sf_seen, back->string);
        cJSON_DeleteItemFromObject(l.sf_written, back->string);
    }
    l.sf_modified_ms = cJSON_GetArraySize(w->changes) > 0 || !w->opp
                           ? util_now_ms()
                           : time_of(cJSON_GetObjectItem(w->opp, "LastModifiedDate"));
    l.hs_modified_ms = time_of(cJSON_GetObjectItemCaseSensitive(w->props, "hs_lastmodifieddate"));
    enum err rc = link_save(db, &l);
    cJSON_Delete(l.hs_maybe);
    cJSON_Delete(l.sf_maybe);
    cJSON_Delete(l.sf_written);
    cJSON_Delete(l.hs_written);
    cJSON_Delete(l.sf_seen);
    cJSON_Delete(l.hs_seen);
    return rc;
}

/* Which deals do not hold their opportunity's id yet: *wrote[i] for each. */
static void plan_stamps(const struct sync_ctx *ctx, const struct deal_work *ws, size_t n,
                        bool *wrote)
{
    const char *p = ctx->cfg->hs_opportunity_id_property;
    for (size_t i = 0; i < n; i++) {
        const char *held = str(ws[i].props, p);
        wrote[i] = !ws[i].is_settled && ws[i].opp_id && !(held && sf_id_equal(held, ws[i].opp_id));
    }
}

/* Writes the opportunity ids onto the deals planned (one batch update), so the
 * Salesforce-to-HubSpot direction finds the same deal. Clears wrote[i] for those not written. */
static enum err stamp_deals(struct sync_ctx *ctx, struct deal_work *ws, size_t n, bool *wrote)
{
    const char *p = ctx->cfg->hs_opportunity_id_property;
    cJSON *inputs = cJSON_CreateArray();
    enum err rc = ERR_OK;
    for (size_t i = 0; i < n; i++) {
        if (ws[i].is_settled)
            wrote[i] = false;
        if (!wrote[i])
            continue;
        cJSON *in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "id", ws[i].deal_id);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(in, "properties"), p, ws[i].opp_id);
        cJSON_AddItemToArray(inputs, in);
    }
    size_t k = (size_t)cJSON_GetArraySize(inputs);
    if (k > 0) {
        struct hs_batch_result res = {0};
        rc = hs_batch_update(ctx->hs, "deals", inputs, &res);
        hs_batch_result_clear(&res);
    }
    cJSON_Delete(inputs);
    if (k > 1 && (rc == ERR_CONFLICT || rc == ERR_INVALID)) {
        /* HubSpot refuses the whole batch for one deal: each on its own, so one conflict
         * leaves no other deal without its opportunity id (chaos run). */
        rc = ERR_OK;
        for (size_t i = 0; i < n; i++) {
            if (!wrote[i])
                continue;
            enum err one = stamp_deals(ctx, &ws[i], 1, &wrote[i]);
            if (one != ERR_OK && rc == ERR_OK)
                rc = one;
        }
        return rc;
    }
    if (rc != ERR_OK && !err_is_transient(rc)) {
        log_warn("cannot store opportunity ids on deals", LOG_STR("property", p),
                 LOG_STR("error", err_str(rc)));
        for (size_t i = 0; i < n; i++)
            if (wrote[i])
                buf_printf(&ws[i].detail, "; opportunity id not stored on the deal (%s): %s", p,
                           err_str(rc));
        memset(wrote, 0, n * sizeof(*wrote));
        rc = ERR_OK;
    }
    return rc;
}

static void describe_write(struct deal_work *w, struct buf *b)
{
    const cJSON *c;
    size_t k = 0;
    if (w->is_created) {
        buf_printf(b, "created opportunity %s from deal %s", w->opp_id, w->deal_id);
    } else if (cJSON_GetArraySize(w->changes) == 0) {
        buf_printf(b, "opportunity %s already matches deal %s", w->opp_id, w->deal_id);
        return;
    } else {
        buf_printf(b, "updated opportunity %s from deal %s", w->opp_id, w->deal_id);
    }
    cJSON_ArrayForEach(c, w->changes)
    {
        char *t = value_text(c);
        buf_printf(b, "%s%s=%s", k++ ? ", " : ": ", c->string, t);
        free(t);
    }
}

/* ---- One worker per pair (sync_pair.c) ---------------------------------------------------- */

static void busy(struct deal_work *w)
{
    settle(w, ERR_BUSY, false, "deferred: another worker is syncing deal %s or its opportunity",
           w->deal_id);
}

/* Before anything is read: the record's lock, and its partner's when they are linked. */
static enum err lock_records(PGconn *db, struct deal_work *ws, size_t n)
{
    const char **ids = xcalloc(n + 1, sizeof(*ids));
    struct deal_work **of = xcalloc(n + 1, sizeof(*of));
    bool *got = xcalloc(n + 1, sizeof(*got));
    bool *linked = xcalloc(n + 1, sizeof(*linked));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ws[i].is_settled)
            continue;
        of[k] = &ws[i];
        ids[k++] = ws[i].deal_id;
    }
    enum err rc = sync_pair_lock_records(db, SYNC_PAIR_HS, ids, k, got, linked);
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

/* After a read, for a pair not linked when the batch started: the opportunity's lock. Held by
 * another worker, the record is that worker's for now; linked meanwhile, this batch's reads may
 * predate that worker's writes: either way it comes back shortly. */
static enum err lock_found_opportunity(PGconn *db, struct deal_work *w, const char *opp_id)
{
    bool got = false;
    if (w->is_settled || w->was_linked || !opp_id)
        return ERR_OK;
    enum err rc = sync_pair_try_lock(db, SYNC_PAIR_SF, opp_id, &got);
    if (rc != ERR_OK)
        return rc;
    if (got) {
        struct link l = {0};
        rc = link_find_by_hs(db, LINK_OPPORTUNITY, w->deal_id, &l);
        link_clear(&l);
        if (rc != ERR_OK && rc != ERR_NOT_FOUND)
            return rc;
        got = rc == ERR_NOT_FOUND;
        if (!got)
            sync_pair_release(db, SYNC_PAIR_SF, opp_id);
    }
    if (!got) {
        /* Deferred: its locks go now (sync_pair.h), not at the end of the batch. */
        sync_pair_release(db, SYNC_PAIR_HS, w->deal_id);
        busy(w);
    }
    return ERR_OK;
}

/* ---- The handler ------------------------------------------------------------------------- */

static void handle_deleted(PGconn *db, struct deal_work *w)
{
    struct link l = {0};
    bool had = link_find_by_hs(db, LINK_OPPORTUNITY, w->deal_id, &l) == ERR_OK;
    /* Dated when HubSpot deleted it (the deletion webhook's occurredAt), not when this runs,
     * which under retries can be long after: an opportunity change made in between is a
     * change after the delete, and makes a new deal (chaos run). */
    int64_t deleted_ms = 0;
    for (size_t i = 0; i < w->rec->event_count; i++)
        if (strcmp(w->rec->events[i].event_type, "deal.deletion") == 0 &&
            w->rec->events[i].occurred_at_ms > deleted_ms)
            deleted_ms = w->rec->events[i].occurred_at_ms;
    /* A save of the opportunity after the delete may have been finished as an echo meanwhile:
     * read again, it makes the new deal. */
    enum err rc = had ? sync_echo_deal_deleted(db, l.sf_id, w->deal_id, deleted_ms) : ERR_OK;
    if (rc == ERR_OK)
        rc = link_delete_by_hs(db, LINK_OPPORTUNITY, w->deal_id);
    if (rc == ERR_OK && had)
        rc = link_tombstone_save(db, l.sf_id, w->deal_id, deleted_ms);
    if (rc == ERR_OK)
        rc = sf_contacts_forget_deal(db, w->deal_id);
    if (rc != ERR_OK)
        settle(w, rc, false, "cannot forget deleted deal %s", w->deal_id);
    else if (had)
        settle(w, ERR_OK, false,
               "deal %s is deleted in hubspot: opportunity %s kept, link forgotten (a new deal is "
               "made when the opportunity changes after this)",
               w->deal_id, l.sf_id);
    else
        settle(w, ERR_OK, true, "deal %s is deleted in hubspot and was never synced", w->deal_id);
    link_clear(&l);
}

/* Pipeline gate: only deals in a pipeline mapped to a record type sync. */
static enum err gate_pipeline(PGconn *db, struct deal_work *w)
{
    const char *pipeline = str(w->props, "pipeline");
    enum err rc =
        pipeline ? pipeline_map_find_by_hs(db, pipeline, &w->record_type_id) : ERR_NOT_FOUND;
    if (rc == ERR_NOT_FOUND) {
        struct link l = {0};
        bool linked = link_find_by_hs(db, LINK_OPPORTUNITY, w->deal_id, &l) == ERR_OK;
        settle(w, ERR_OK, true, "deal %s is in pipeline %s, which is not synced to salesforce%s%s",
               w->deal_id, pipeline ? pipeline : "(none)",
               linked ? ": its opportunity is left as it is, " : "", linked ? l.sf_id : "");
        link_clear(&l);
        return ERR_OK;
    }
    if (rc != ERR_OK)
        return rc;
    rc = stage_map_load(db, w->record_type_id, &w->stage_map);
    if (rc != ERR_OK)
        return rc;
    w->has_link = link_find_by_hs(db, LINK_OPPORTUNITY, w->deal_id, &w->link) == ERR_OK;
    return ERR_OK;
}

/* The deal id field must exist before any opportunity is written; the check is repeated while
 * it does not (an operator may grant the permission meanwhile). */
static enum err check_deal_field(struct sync_ctx *ctx, PGconn *db, char **reason)
{
    bool ready = false;
    enum err rc = sf_setup_deal_field_state(db, &ready, reason);
    if (rc != ERR_OK || ready)
        return rc;
    free(*reason);
    *reason = NULL;
    return sf_setup_deal_field(ctx->sf, db, ctx->cfg->sf_deal_id_field, &ready, reason);
}

/* The reads of a batch made at the same time once its deals and associations are known
 * (sync_fanout.h): the opportunities on the worker's own thread and clients, the companies and
 * the owners each on a helper. None uses the database; each only reads the work items. */
struct opp_read {
    struct deal_work *ws;
    size_t n;
    cJSON *rows;
    enum err rc;
};

static void opp_read_run(struct sync_ctx *ctx, void *arg)
{
    struct opp_read *t = arg;
    t->rc = read_opportunities(ctx, t->ws, t->n, &t->rows);
}

struct company_read {
    const cJSON *company_ids;
    struct hs_batch_result res;
    enum err rc;
    int hint_ms;
};

static void company_read_run(struct sync_ctx *ctx, void *arg)
{
    struct company_read *t = arg;
    t->rc = sf_accounts_read_companies(ctx, t->company_ids, &t->res);
    t->hint_ms = t->rc == ERR_OK ? 0 : hs_hint(ctx);
}

struct owner_read {
    struct deal_work *ws;
    size_t n;
    cJSON *map;
    enum err rc;
    int hint_ms;
};

static void owner_read_run(struct sync_ctx *ctx, void *arg)
{
    struct owner_read *t = arg;
    t->rc = owner_map_build(ctx, t->ws, t->n, &t->map);
    t->hint_ms = t->rc == ERR_OK ? 0 : hs_hint(ctx);
}

static bool has_owner(const struct deal_work *ws, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *owner = ws[i].is_settled ? NULL : str(ws[i].props, "hubspot_owner_id");
        if (owner && owner[0])
            return true;
    }
    return false;
}

/* {"<18-char account id>": true} for the accounts of the opportunities read (rows). */
static cJSON *accounts_of(const cJSON *rows)
{
    cJSON *known = cJSON_CreateObject();
    const cJSON *o;
    cJSON_ArrayForEach(o, rows)
    {
        char id18[19];
        if (sf_id_to18(str(o, "AccountId"), id18) && !cJSON_GetObjectItemCaseSensitive(known, id18))
            cJSON_AddTrueToObject(known, id18);
    }
    return known;
}

/* Whether the batch reads the open outbound messages of w's linked opportunity. */
static bool reads_messages(const struct deal_work *w)
{
    return !w->is_settled && w->has_link && w->opp && sf_id_equal(str(w->opp, "Id"), w->link.sf_id);
}

/* The outbound messages of each linked opportunity still open in the queue (one statement for the
 * batch): they tell a value a Salesforce user set away and back since the last sync, which the
 * opportunity's value alone does not (sync_echo_sf.h). Messages already handled are left out:
 * the opportunity handler took each for an echo (its values known) or synced it, which moved the
 * pair's last sync past it. */
static enum err attach_open_messages(PGconn *db, struct deal_work *ws, size_t n)
{
    const char **ids = xcalloc(n + 1, sizeof(*ids));
    cJSON *all = NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (reads_messages(&ws[i]))
            ids[k++] = ws[i].link.sf_id;
    enum err rc = k > 0 ? sync_echo_sf_open_messages(db, ids, k, &all) : ERR_OK;
    for (size_t i = 0; rc == ERR_OK && i < n; i++)
        if (reads_messages(&ws[i]))
            ws[i].sf_messages = cJSON_DetachItemFromObjectCaseSensitive(all, ws[i].link.sf_id);
    cJSON_Delete(all);
    free(ids);
    return rc;
}

static void sync_batch(struct sync_ctx *ctx, PGconn *db, struct deal_work *ws, size_t n)
{
    struct sync_fanout_deal_read deals = {0}, companies = {0}, contacts = {0};
    const char **ids = xcalloc(n + 1, sizeof(*ids));
    const char **assoc_ids = xcalloc(n + 1, sizeof(*assoc_ids));
    const char **contact_ids = xcalloc(n + 1, sizeof(*contact_ids));
    struct opp_read opps = {.ws = ws, .n = n};
    struct owner_read owners = {.ws = ws, .n = n};
    struct company_read companies_read = {0};
    cJSON *company_ids = cJSON_CreateArray();
    cJSON *known_accounts = NULL;
    cJSON *owner_map = NULL;
    cJSON *accounts = NULL;
    cJSON *account_reasons = NULL;
    bool *wrote = xcalloc(n + 1, sizeof(*wrote));
    bool *noted = xcalloc(n + 1, sizeof(*noted));
    char *reason = NULL;
    char *props = NULL;
    size_t n_ids = 0, n_assoc = 0;
    int hint = 0;
    enum err rc;
    struct pipelines pl = {.sf = ctx->sf, .hs = ctx->hs, .db = db, .describe = ctx->describe};
    pl.stage_values = mapping_values_of(ctx->mappings, "StageName");
    int64_t started = util_monotonic_ms(), read_ms = 0, match_ms = 0, write_ms = 0;

    rc = lock_records(db, ws, n);
    if (rc != ERR_OK) {
        settle_all(ws, n, rc, 0, "cannot lock the records");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (ws[i].is_settled)
            continue;
        ids[n_ids++] = ws[i].deal_id;
        ws[i].has_associations = reads_associations_early(&ws[i]);
        if (ws[i].has_associations)
            assoc_ids[n_assoc++] = ws[i].deal_id;
    }
    if (n_ids == 0)
        goto out;
    /* The deals and the associations of the linked ones at once (reads_associations_early):
     * they need only the ids. For a deal the batch then leaves alone (another pipeline, deleted
     * meanwhile) they are read for nothing. */
    props = deal_property_list(ctx);
    deals = (struct sync_fanout_deal_read){.properties = props, .ids = ids, .n_ids = n_ids};
    companies =
        (struct sync_fanout_deal_read){.to_type = "companies", .ids = assoc_ids, .n_ids = n_assoc};
    contacts =
        (struct sync_fanout_deal_read){.to_type = "contacts", .ids = assoc_ids, .n_ids = n_assoc};
    {
        const struct sync_fanout_task tasks[] = {
            {sync_fanout_deal_read_run, &deals},
            {n_assoc ? sync_fanout_deal_read_run : NULL, &companies},
            {n_assoc ? sync_fanout_deal_read_run : NULL, &contacts}};
        sync_fanout_run(ctx, tasks, 3);
    }
    read_ms = util_monotonic_ms() - started;
    if (deals.rc != ERR_OK) {
        settle_all(ws, n, deals.rc, deals.hint_ms, "cannot read deals from hubspot");
        goto out;
    }
    attach_deals(ws, n, deals.res.results);
    for (size_t i = 0; i < n; i++) {
        if (!ws[i].is_settled && ws[i].props)
            rc = lock_found_opportunity(db, &ws[i], origin_opportunity(ctx, &ws[i]));
        if (rc != ERR_OK) {
            settle_all(ws, n, rc, 0, "cannot lock the records");
            goto out;
        }
        if (ws[i].is_settled)
            continue;
        if (!ws[i].props) {
            handle_deleted(db, &ws[i]);
            continue;
        }
        rc = gate_pipeline(db, &ws[i]);
        if (rc != ERR_OK)
            settle(&ws[i], rc, false, "cannot read pipeline map");
        /* A stage whose map row was never saved (a crash between making it in HubSpot and
         * saving the row): repaired from its label in HubSpot (chaos run: 695 dead events). */
        enum err repaired =
            ws[i].is_settled
                ? ERR_OK
                : pipelines_repair_hs_stage(&pl, ws[i].record_type_id, str(ws[i].props, "pipeline"),
                                            str(ws[i].props, "dealstage"), ws[i].stage_map);
        if (repaired != ERR_OK)
            settle(&ws[i], repaired, false, "cannot map the stage of deal %s", ws[i].deal_id);
        rc = ERR_OK;
    }
    n_ids = 0;
    n_assoc = 0;
    size_t n_contact_ids = 0;
    for (size_t i = 0; i < n; i++) {
        if (ws[i].is_settled)
            continue;
        ids[n_ids++] = ws[i].deal_id;
        if (!ws[i].has_associations)
            assoc_ids[n_assoc++] = ws[i].deal_id;
        if (!ws[i].has_associations && !has_no_contacts(&ws[i]))
            contact_ids[n_contact_ids++] = ws[i].deal_id;
    }
    if (n_ids == 0)
        goto out;
    rc = check_deal_field(ctx, db, &reason);
    if (rc != ERR_OK || reason) {
        if (reason)
            metrics_inc("dealsync_deals_refused_total", "reason=\"deal_id_field_missing\"",
                        (long long)n_ids);
        settle_all(ws, n, rc != ERR_OK ? rc : ERR_CONFIG, 0,
                   reason ? reason : "cannot check the opportunity deal id field");
        goto out;
    }
    rc = attach_read_associations(ws, n, &companies, &contacts, &hint);
    /* The others': deals not linked when the batch started, now locked with their
     * opportunity, and deals reported deleted that exist. */
    if (rc == ERR_OK && n_assoc > 0)
        rc = read_associations(ctx, ws, n, assoc_ids, n_assoc, contact_ids, n_contact_ids, &hint);
    if (rc != ERR_OK) {
        settle_all(ws, n, rc, hint, "cannot read deal associations from hubspot");
        goto out;
    }
    /* The opportunities, the companies and the owners at once: companies and owners of every
     * deal still to sync, also of one the opportunities then settle (only read: accounts are
     * resolved, and made, below for the deals that are synced). */
    for (size_t i = 0; i < n; i++)
        if (!ws[i].is_settled && ws[i].company_id)
            cJSON_AddItemToArray(company_ids, cJSON_CreateString(ws[i].company_id));
    companies_read.company_ids = company_ids;
    {
        int64_t at = util_monotonic_ms();
        const struct sync_fanout_task tasks[] = {
            {opp_read_run, &opps},
            {cJSON_GetArraySize(company_ids) > 0 ? company_read_run : NULL, &companies_read},
            {has_owner(ws, n) ? owner_read_run : NULL, &owners}};
        sync_fanout_run(ctx, tasks, 3);
        match_ms = util_monotonic_ms() - at;
    }
    if (opps.rc != ERR_OK) {
        settle_all(ws, n, opps.rc, 0, "cannot read opportunities from salesforce");
        goto out;
    }
    attach_opportunities(ctx, ws, n, opps.rows);
    for (size_t i = 0; i < n; i++) {
        /* Linked, but its opportunity is gone (deleted in Salesforce, or hidden from the
         * integration user): never made again from the deal (chaos finding C5); the other
         * direction deletes the deal once Salesforce confirms the delete. */
        if (!ws[i].is_settled && ws[i].has_link && !ws[i].opp)
            settle(&ws[i], ERR_OK, true,
                   "opportunity %s of deal %s is not in salesforce (deleted, or hidden from the "
                   "integration user): nothing written",
                   ws[i].link.sf_id, ws[i].deal_id);
        /* Not linked yet, but made from an opportunity that is gone (the sync that made the
         * deal did not get to save the link, and the user deleted the opportunity meanwhile):
         * the same, rather than a new opportunity nobody made (chaos run). */
        else if (!ws[i].is_settled && !ws[i].has_link && !ws[i].opp &&
                 origin_opportunity(ctx, &ws[i]))
            settle(&ws[i], ERR_OK, true,
                   "deal %s was made from opportunity %s, which is not in salesforce (deleted, "
                   "or hidden from the integration user): nothing written",
                   ws[i].deal_id, origin_opportunity(ctx, &ws[i]));
    }
    for (size_t i = 0; i < n && rc == ERR_OK; i++)
        if (!ws[i].is_settled && ws[i].opp)
            rc = lock_found_opportunity(db, &ws[i], str(ws[i].opp, "Id"));
    if (rc != ERR_OK) {
        settle_all(ws, n, rc, 0, "cannot lock the records");
        goto out;
    }
    rc = companies_read.rc;
    hint = companies_read.hint_ms;
    if (rc == ERR_OK) {
        cJSON_Delete(company_ids);
        company_ids = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++)
            if (!ws[i].is_settled && ws[i].company_id)
                cJSON_AddItemToArray(company_ids, cJSON_CreateString(ws[i].company_id));
        known_accounts = accounts_of(opps.rows);
        rc = sf_accounts_resolve_read(ctx, db, company_ids, &companies_read.res, known_accounts,
                                      &accounts, &account_reasons);
        hint = hs_hint(ctx);
    }
    if (rc == ERR_OK && owners.rc != ERR_OK) {
        rc = owners.rc;
        hint = owners.hint_ms;
    }
    owner_map = owners.map ? owners.map : cJSON_CreateObject();
    owners.map = NULL;
    if (rc != ERR_OK) {
        settle_all(ws, n, rc, hint, "cannot resolve accounts and owners");
        goto out;
    }
    rc = attach_open_messages(db, ws, n);
    if (rc != ERR_OK) {
        settle_all(ws, n, rc, 0, "cannot read the opportunities' outbound messages");
        goto out;
    }
    /* A write to the opportunity of unknown outcome (cut off by a timeout or a kill) whose
     * value it holds: dealsync's own, or a user's, by who saved it last (sync_echo_sf.h). */
    for (size_t i = 0; i < n; i++) {
        struct deal_work *w = &ws[i];
        if (w->is_settled || !w->has_link || !w->opp ||
            !sf_id_equal(str(w->opp, "Id"), w->link.sf_id))
            continue;
        rc = sync_echo_sf_settle_maybe(db, &w->link, w->opp, w->sf_messages, sf_user_id(ctx->sf));
        if (rc != ERR_OK)
            settle(w, rc, false, "cannot save link of deal %s", w->deal_id);
    }
    rc = ERR_OK;
    bool is_defs_fresh = false;
    for (size_t i = 0; i < n; i++)
        if (!ws[i].is_settled)
            (void)decide(ctx, &ws[i], owner_map, accounts, account_reasons, &is_defs_fresh);
    /* What is about to be written to a linked opportunity is remembered first: a write carried
     * out whose answer is lost is still known as dealsync's own when it comes back. */
    for (size_t i = 0; i < n; i++) {
        struct deal_work *w = &ws[i];
        if (w->is_settled || !w->has_link || !w->opp ||
            !sf_id_equal(str(w->opp, "Id"), w->link.sf_id))
            continue;
        rc = link_note_written(db, LINK_OPPORTUNITY, w->link.sf_id, false, w->changes);
        if (rc != ERR_OK)
            settle(w, rc, false, "cannot save link of deal %s", w->deal_id);
        noted[i] = rc == ERR_OK;
    }
    int64_t write_at = util_monotonic_ms();
    rc = upsert_opportunities(ctx, ws, n);
    write_ms = util_monotonic_ms() - write_at;
    unnote_unwritten(db, ws, n, noted);
    if (rc != ERR_OK) {
        settle_all(ws, n, rc, hs_hint(ctx), "cannot upsert opportunities");
        goto out;
    }
    /* The links as soon as the opportunities are written (a later failure must not leave the
     * writes unrecorded), then the opportunity ids onto the deals, then every deal's contact
     * roles in one pass (a few calls per batch). */
    plan_stamps(ctx, ws, n, wrote);
    for (size_t i = 0; i < n; i++) {
        struct deal_work *w = &ws[i];
        if (w->is_settled)
            continue;
        rc = save_link(ctx, db, w, wrote[i]);
        if (rc != ERR_OK)
            settle(w, rc, false, "cannot save link of deal %s", w->deal_id);
    }
    rc = stamp_deals(ctx, ws, n, wrote);
    if (rc != ERR_OK) {
        settle_all(ws, n, rc, hs_hint(ctx), "cannot store opportunity ids on deals");
        goto out;
    }
    struct sf_contacts_deal *roles = xcalloc(n + 1, sizeof(*roles));
    struct deal_work **role_of = xcalloc(n + 1, sizeof(*role_of));
    size_t n_roles = 0;
    for (size_t i = 0; i < n; i++) {
        struct deal_work *w = &ws[i];
        if (w->is_settled)
            continue;
        const char *account = w->company_id ? str(accounts, w->company_id) : NULL;
        if (!account && w->opp)
            account = str(w->opp, "AccountId");
        roles[n_roles] = (struct sf_contacts_deal){w->deal_id,  w->opp_id,  account,
                                                   w->contacts, &w->detail, ERR_OK};
        role_of[n_roles++] = w;
    }
    if (sf_contacts_sync_roles(ctx, db, roles, n_roles) != ERR_OK)
        log_warn("cannot sync the contact roles of a batch", LOG_I64("deals", (long long)n_roles));
    for (size_t k = 0; k < n_roles; k++) {
        struct deal_work *w = role_of[k];
        rc = roles[k].result;
        if (rc != ERR_OK) {
            w->rec->retry_after_ms = hs_hint(ctx);
            settle(w, rc, false, "opportunity %s written; contact roles failed", w->opp_id);
            continue;
        }
        struct buf head;
        buf_init(&head, 0);
        describe_write(w, &head);
        settle(w, ERR_OK, false, "%s", head.data);
        log_info("deal synced to salesforce", LOG_STR("record_id", w->deal_id),
                 LOG_STR("opportunity_id", w->opp_id), LOG_BOOL("created", w->is_created),
                 LOG_I64("fields", cJSON_GetArraySize(w->changes)));
        buf_clear(&head);
    }
    free(role_of);
    free(roles);
out:
    /* Where a batch's time goes: the deals and associations, the opportunities, accounts and
     * owners, the opportunity writes, and all of it (docs/benchmarks.md). */
    log_debug("deal batch handled", LOG_I64("records", (long long)n), LOG_I64("read_ms", read_ms),
              LOG_I64("match_ms", match_ms), LOG_I64("write_ms", write_ms),
              LOG_I64("duration_ms", util_monotonic_ms() - started));
    pipelines_clear(&pl);
    free(reason);
    free(noted);
    free(wrote);
    cJSON_Delete(account_reasons);
    cJSON_Delete(accounts);
    cJSON_Delete(known_accounts);
    hs_batch_result_clear(&companies_read.res);
    cJSON_Delete(company_ids);
    cJSON_Delete(owners.map);
    cJSON_Delete(owner_map);
    cJSON_Delete(opps.rows);
    free(props);
    free(contact_ids);
    free(assoc_ids);
    free(ids);
    hs_batch_result_clear(&contacts.res);
    hs_batch_result_clear(&companies.res);
    hs_batch_result_clear(&deals.res);
}

void sync_deals(void *arg, PGconn *db, struct queue_record *records, size_t count)
{
    struct sync_ctx *ctx = arg;
    if (ctx)
        ctx->last_batch += count; /* sync_claim_delay_ms */
    struct deal_work *ws = xcalloc(count + 1, sizeof(*ws));
    bool *is_candidate = xcalloc(count + 1, sizeof(*is_candidate));
    bool *is_echo = xcalloc(count + 1, sizeof(*is_echo));
    bool on = false;
    enum err rc;

    sync_cache_begin(); /* maps and links read once per batch (sync_cache.h) */

    for (size_t i = 0; i < count; i++) {
        ws[i].rec = &records[i];
        ws[i].deal_id = records[i].record_id;
        ws[i].contacts = cJSON_CreateArray();
        buf_init(&ws[i].detail, 64 * 1024);
    }
    if (!ctx->sf || !ctx->hs) {
        settle_all(ws, count, ERR_CONFIG, 0,
                   "the salesforce and hubspot apis must both be configured");
        goto out;
    }
    rc = sync_deals_enabled(db, &on);
    if (rc != ERR_OK) {
        settle_all(ws, count, rc, 0, "cannot read the sync deals switch");
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        int64_t id;
        if (!on)
            settle(&ws[i], ERR_OK, true, "sync deals is off: deal %s not synced", ws[i].deal_id);
        else if (!util_parse_i64(ws[i].deal_id, &id) || id <= 0)
            settle(&ws[i], ERR_INVALID, false, "deal id %s is not a hubspot record id",
                   ws[i].deal_id);
        is_candidate[i] = !ws[i].is_settled;
    }
    /* The echoes of the whole batch in a few statements; a failure leaves every record to the
     * normal sync, which reads the deal. */
    if (sync_echo_deals(db, records, count, is_candidate, is_echo) == ERR_OK) {
        for (size_t i = 0; i < count; i++)
            if (is_echo[i])
                settle(&ws[i], ERR_OK, true,
                       "only dealsync's own writes reported back (sync_echo.h): deal %s not read",
                       ws[i].deal_id);
    }
    sync_batch(ctx, db, ws, count);
    sync_pair_unlock_all(db);
out:
    for (size_t i = 0; i < count; i++) {
        free(ws[i].record_type_id);
        cJSON_Delete(ws[i].stage_map);
        if (ws[i].has_link)
            link_clear(&ws[i].link);
        free(ws[i].company_id);
        cJSON_Delete(ws[i].contacts);
        cJSON_Delete(ws[i].changes);
        cJSON_Delete(ws[i].pending);
        cJSON_Delete(ws[i].sf_messages);
        cJSON_Delete(ws[i].sf_set_back);
        cJSON_Delete(ws[i].hs_own_only);
        cJSON_Delete(ws[i].hs_user_set);
        free(ws[i].opp_id);
        buf_clear(&ws[i].detail);
    }
    free(is_echo);
    free(is_candidate);
    free(ws);
    sync_cache_end();
}
