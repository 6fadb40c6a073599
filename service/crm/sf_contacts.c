/* sf_contacts.c - a deal's contacts become its opportunity's contact roles. Contacts are
 * matched or created, never updated from HubSpot: contact field sync is not part of issue 5. */
#include "sf_contacts.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "contact_rollups.h"
#include "crm_match.h"
#include "db.h"
#include "link.h"
#include "log.h"
#include "sf_id.h"
#include "soql.h"
#include "sync_pair.h"

static const char *str(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

static cJSON *contact_from_hubspot(const cJSON *c, const char *account_id)
{
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(rec, "attributes"), "type", "Contact");
    const char *email = crm_match_prop(c, "email");
    const char *last = crm_match_prop(c, "lastname");
    char *fallback = NULL;
    if (!last && email) /* LastName is required; the e-mail's local part stands in */
        last = fallback = xstrndup(email, strcspn(email, "@"));
    cJSON_AddStringToObject(rec, "LastName", last ? last : "Unknown");
    if (crm_match_prop(c, "firstname"))
        cJSON_AddStringToObject(rec, "FirstName", crm_match_prop(c, "firstname"));
    if (email)
        cJSON_AddStringToObject(rec, "Email", email);
    if (crm_match_prop(c, "phone"))
        cJSON_AddStringToObject(rec, "Phone", crm_match_prop(c, "phone"));
    if (account_id)
        cJSON_AddStringToObject(rec, "AccountId", account_id);
    free(fallback);
    return rec;
}

/* Salesforce contacts by e-mail for the unmatched contacts: found gets {"hs id": "003…"}. */
static enum err match_by_email(struct sync_ctx *ctx, const cJSON *contacts, cJSON *found)
{
    cJSON *emails = cJSON_CreateArray();
    cJSON *rows = NULL;
    const cJSON *c, *row;
    enum err rc = ERR_OK;
    struct buf q;
    buf_init(&q, 0);
    cJSON_ArrayForEach(c, contacts)
    {
        if (!cJSON_GetObjectItemCaseSensitive(found, str(c, "id")) && crm_match_prop(c, "email"))
            cJSON_AddItemToArray(emails, cJSON_CreateString(crm_match_prop(c, "email")));
    }
    buf_append_str(&q, "SELECT Id, Email FROM Contact WHERE Email IN ");
    if (soql_append_in(&q, emails) == 0)
        goto out;
    buf_append_str(&q, " ORDER BY CreatedDate ASC");
    rc = sf_query(ctx->sf, q.data, &rows);
    if (rc != ERR_OK)
        goto out;
    cJSON_ArrayForEach(c, contacts)
    {
        const char *email = crm_match_prop(c, "email");
        if (!email || cJSON_GetObjectItemCaseSensitive(found, str(c, "id")))
            continue;
        cJSON_ArrayForEach(row, rows)
        {
            const char *e = str(row, "Email");
            if (e && strcasecmp(e, email) == 0 && str(row, "Id")) {
                char id18[19];
                if (sf_id_to18(str(row, "Id"), id18))
                    cJSON_AddStringToObject(found, str(c, "id"), id18);
                break;
            }
        }
    }
out:
    cJSON_Delete(rows);
    cJSON_Delete(emails);
    buf_clear(&q);
    return rc;
}

/* found: {"hs contact id": "003…"} for every contact that has (or now has) a Salesforce
 * contact; detail gets the failures. */
#define CONTACT_CREATE_LOCK "salesforce contact create"

static enum err resolve_contacts(struct sync_ctx *ctx, PGconn *db, const cJSON *contacts,
                                 const char *account_id, cJSON *found, struct buf *detail)
{
    const char *id_prop = ctx->cfg->hs_contact_id_property;
    cJSON *candidates = cJSON_CreateObject();
    cJSON *existing = NULL;
    cJSON *to_create = cJSON_CreateArray();
    cJSON *create_for = cJSON_CreateArray();
    struct sf_save_result *saved = NULL;
    size_t saved_n = 0;
    const cJSON *c;
    bool is_locked = false;
    enum err rc;

    cJSON_ArrayForEach(c, contacts)
    {
        const char *stored = crm_match_prop(c, id_prop);
        char id18[19];
        struct link l = {0};
        if (!str(c, "id"))
            continue;
        if (stored && sf_id_to18(stored, id18))
            cJSON_AddStringToObject(candidates, str(c, "id"), id18);
        else if (link_find_by_hs(db, LINK_CONTACT, str(c, "id"), &l) == ERR_OK)
            cJSON_AddStringToObject(candidates, str(c, "id"), l.sf_id);
        link_clear(&l);
    }
    rc = crm_match_existing(ctx->sf, "Contact", candidates, &existing);
    if (rc != ERR_OK)
        goto out;
    cJSON_ArrayForEach(c, candidates)
    {
        if (cJSON_GetObjectItemCaseSensitive(existing, c->valuestring))
            cJSON_AddStringToObject(found, c->string, c->valuestring);
    }
    rc = match_by_email(ctx, contacts, found);
    if (rc != ERR_OK)
        goto out;
    cJSON_ArrayForEach(c, contacts)
    {
        struct link l = {0};
        if (!str(c, "id") || cJSON_GetObjectItemCaseSensitive(found, str(c, "id")))
            continue;
        /* One worker at a time creates contacts: two deals sharing a new contact in different
         * batches create one Contact (the second finds the first's link once it has the lock). */
        if (!is_locked) {
            rc = sync_pair_lock_wait(db, CONTACT_CREATE_LOCK);
            if (rc != ERR_OK)
                goto out;
            is_locked = true;
        }
        if (link_find_by_hs(db, LINK_CONTACT, str(c, "id"), &l) == ERR_OK) {
            cJSON_AddStringToObject(found, str(c, "id"), l.sf_id);
        } else {
            cJSON_AddItemToArray(to_create, contact_from_hubspot(c, account_id));
            cJSON_AddItemToArray(create_for, cJSON_CreateString(str(c, "id")));
        }
        link_clear(&l);
    }
    if (cJSON_GetArraySize(to_create) > 0) {
        rc = sf_collection_create(ctx->sf, to_create, false, &saved, &saved_n);
        if (rc != ERR_OK)
            goto out;
        size_t created = 0;
        for (size_t i = 0; i < saved_n; i++) {
            const char *hs_id = cJSON_GetArrayItem(create_for, (int)i)->valuestring;
            if (saved[i].is_success && saved[i].id) {
                cJSON_AddStringToObject(found, hs_id, saved[i].id);
                created++;
            } else if (err_is_transient(saved[i].err)) {
                rc = saved[i].err;
                goto out;
            } else {
                buf_printf(detail, "; contact %s not created in salesforce: %s", hs_id,
                           saved[i].message ? saved[i].message : err_str(saved[i].err));
            }
        }
        if (created > 0)
            buf_printf(detail, "; contacts created in salesforce: %zu", created);
    }
    rc = crm_match_stamp(ctx, db, "contacts", LINK_CONTACT, id_prop, contacts, found);
out:
    if (is_locked)
        sync_pair_unlock(db, CONTACT_CREATE_LOCK);
    sf_save_results_free(saved, saved_n);
    cJSON_Delete(create_for);
    cJSON_Delete(to_create);
    cJSON_Delete(existing);
    cJSON_Delete(candidates);
    return rc;
}

/* The Salesforce contacts of the associations mirrored before: {"hs contact id": "003…"}. */
enum err sf_contacts_mirrored(PGconn *db, const char *deal_id, cJSON **out, cJSON **noted,
                              cJSON **noted_at)
{
    const char *params[] = {deal_id};
    PGresult *r = PQexecParams(db,
                               "SELECT hs_contact_id, sf_contact_id, is_pending,"
                               " (extract(epoch FROM synced_at) * 1000)::bigint"
                               " FROM deal_contact_role WHERE hs_deal_id = $1",
                               1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read mirrored contact roles");
    if (rc == ERR_OK) {
        *out = cJSON_CreateObject();
        *noted = cJSON_CreateObject();
        if (noted_at)
            *noted_at = cJSON_CreateObject();
        for (int i = 0; i < PQntuples(r); i++) {
            bool is_pending = PQgetvalue(r, i, 2)[0] == 't';
            cJSON_AddStringToObject(is_pending ? *noted : *out, PQgetvalue(r, i, 0),
                                    PQgetvalue(r, i, 1));
            if (is_pending && noted_at)
                cJSON_AddNumberToObject(*noted_at, PQgetvalue(r, i, 0),
                                        strtod(PQgetvalue(r, i, 3), NULL));
        }
    }
    PQclear(r);
    return rc;
}

enum err sf_contacts_forget_mirrored(PGconn *db, const char *deal_id, const char *hs_contact_id)
{
    const char *params[] = {deal_id, hs_contact_id};
    PGresult *r = PQexecParams(db,
                               "DELETE FROM deal_contact_role"
                               " WHERE hs_deal_id = $1 AND hs_contact_id = $2",
                               2, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot forget a mirrored contact role");
    PQclear(r);
    return rc;
}

static enum err remember(PGconn *db, const char *deal_id, const cJSON *mirrored)
{
    char *json = cJSON_PrintUnformatted(mirrored);
    const char *params[] = {deal_id, json};
    PGresult *r =
        PQexecParams(db,
                     "WITH gone AS (DELETE FROM deal_contact_role WHERE hs_deal_id = $1)"
                     " INSERT INTO deal_contact_role (hs_deal_id, hs_contact_id, sf_contact_id)"
                     " SELECT $1, key, value FROM jsonb_each_text($2::jsonb)"
                     " ON CONFLICT (hs_deal_id, hs_contact_id) DO UPDATE SET sf_contact_id ="
                     "   EXCLUDED.sf_contact_id, synced_at = now(), is_pending = false",
                     2, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot save mirrored contact roles");
    PQclear(r);
    free(json);
    return rc;
}

static bool has_value(const cJSON *obj, const char *sf_id)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, obj) if (cJSON_IsString(v) &&
                                   sf_id_equal(v->valuestring, sf_id)) return true;
    return false;
}

static bool has_key(const cJSON *obj, const char *sf_id)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, obj) if (v->string && sf_id_equal(v->string, sf_id)) return true;
    return false;
}

/* What one deal's roles need, between the batch's reads and its writes. */
struct deal_roles {
    cJSON *before;   /* {"hs contact id": "003…"} mirrored before */
    cJSON *noted;    /* {"hs contact id": "003…"} roles noted before a create not confirmed */
    cJSON *noted_at; /* {"hs contact id": ms} when each of noted was noted */
    cJSON *gone;     /* {"hs contact id": "003…"} of noted: created, then deleted by a user */
    cJSON *found;    /* {"hs contact id": "003…"} wanted now */
    cJSON *have;     /* {"role id": "003…"} roles the opportunity has */
    cJSON *synced;   /* the other direction's {"sf contact": …} for the opportunity */
};

/* Whether the deal has contacts to mirror or mirrored before (else its roles are left alone). */
static bool is_touched(const struct deal_roles *dr)
{
    return cJSON_GetArraySize(dr->found) > 0 || cJSON_GetArraySize(dr->before) > 0 ||
           cJSON_GetArraySize(dr->noted) > 0;
}

/* The contact roles of the opportunities opp_ids (borrowed) in one query, with the fields
 * fields: those alive, or (is_deleted) those deleted and still in the recycle bin (queryAll).
 * *roles is NULL when opp_ids is empty (no call); else the caller deletes it. */
static enum err query_roles(struct sync_ctx *ctx, const char *fields, const cJSON *opp_ids,
                            bool is_deleted, cJSON **roles)
{
    struct buf q;
    enum err rc = ERR_OK;
    *roles = NULL;
    buf_init(&q, 0);
    buf_printf(&q, "SELECT %s FROM OpportunityContactRole WHERE %sOpportunityId IN ", fields,
               is_deleted ? "IsDeleted = true AND " : "");
    if (soql_append_in(&q, opp_ids) > 0)
        rc = is_deleted ? sf_query_all(ctx->sf, q.data, roles) : sf_query(ctx->sf, q.data, roles);
    buf_clear(&q);
    return rc;
}

/* The batch's roles in one query: each deal's `have`. */
static enum err read_roles(struct sync_ctx *ctx, struct sf_contacts_deal *deals,
                           struct deal_roles *dr, size_t n)
{
    cJSON *opp_ids = cJSON_CreateArray();
    cJSON *roles = NULL;
    const cJSON *r;
    for (size_t i = 0; i < n; i++)
        if (deals[i].result == ERR_OK && deals[i].opp_id && is_touched(&dr[i]))
            cJSON_AddItemToArray(opp_ids, cJSON_CreateString(deals[i].opp_id));
    enum err rc = query_roles(ctx, "Id, ContactId, OpportunityId", opp_ids, false, &roles);
    cJSON_ArrayForEach(r, roles)
    {
        const char *opp = str(r, "OpportunityId");
        if (!opp || !str(r, "Id") || !str(r, "ContactId"))
            continue;
        for (size_t i = 0; i < n; i++)
            if (deals[i].opp_id && sf_id_equal(deals[i].opp_id, opp))
                cJSON_AddStringToObject(dr[i].have, str(r, "Id"), str(r, "ContactId"));
    }
    cJSON_Delete(roles);
    cJSON_Delete(opp_ids);
    return rc;
}

/* Whether the role of the deal's contact hs (Salesforce contact sf) was noted before a create
 * with no answer since, and is missing: created and deleted, or never created. */
static bool is_noted_and_missing(const struct deal_roles *dr, const char *hs, const char *sf)
{
    const char *noted = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(dr->noted, hs));
    return noted && sf_id_equal(noted, sf) && !has_value(dr->have, sf) &&
           !has_value(dr->before, sf) && !has_key(dr->synced, sf);
}

/* Clocks: Salesforce's CreatedDate holds whole seconds, and its clock and PostgreSQL's (which
 * dated the note) may differ a little. */
#define ROLE_NOTE_SLACK_MS 3000

/* For the deals with a role noted as pending and missing, one queryAll of the opportunities'
 * deleted roles: a role the integration user created after the note (its create was carried
 * out, its answer lost) and a user then deleted goes into gone. Salesforce keeps a deleted role
 * in its recycle bin, which queryAll reads (IsDeleted); one created before the note is an older
 * role of the same contact, which tells nothing about this create. The call is made only for
 * such a deal, so a create that was answered costs nothing more. */
static enum err read_gone_roles(struct sync_ctx *ctx, struct sf_contacts_deal *deals,
                                struct deal_roles *dr, size_t n)
{
    cJSON *opp_ids = cJSON_CreateArray();
    cJSON *roles = NULL;
    const cJSON *r;
    const char *user_id = sf_user_id(ctx->sf);
    enum err rc = ERR_OK;
    for (size_t i = 0; user_id && i < n; i++) {
        const cJSON *w;
        bool is_asked = false;
        if (deals[i].result != ERR_OK || !deals[i].opp_id)
            continue;
        cJSON_ArrayForEach(w, dr[i].found) is_asked =
            is_asked || is_noted_and_missing(&dr[i], w->string, w->valuestring);
        if (is_asked)
            cJSON_AddItemToArray(opp_ids, cJSON_CreateString(deals[i].opp_id));
    }
    rc = query_roles(ctx, "Id, ContactId, OpportunityId, CreatedById, CreatedDate", opp_ids, true,
                     &roles);
    cJSON_ArrayForEach(r, roles)
    {
        const char *opp = str(r, "OpportunityId");
        const char *contact = str(r, "ContactId");
        const char *by = str(r, "CreatedById");
        const char *created = str(r, "CreatedDate");
        int64_t created_ms = 0;
        if (!opp || !contact || !by || !sf_id_equal(by, user_id) || !created ||
            !sf_datetime_parse(created, &created_ms))
            continue;
        for (size_t i = 0; i < n; i++) {
            const cJSON *w;
            if (!deals[i].opp_id || !sf_id_equal(deals[i].opp_id, opp))
                continue;
            cJSON_ArrayForEach(w, dr[i].found)
            {
                const cJSON *at = cJSON_GetObjectItemCaseSensitive(dr[i].noted_at, w->string);
                if (sf_id_equal(w->valuestring, contact) &&
                    is_noted_and_missing(&dr[i], w->string, w->valuestring) && cJSON_IsNumber(at) &&
                    (double)created_ms + 1000 + ROLE_NOTE_SLACK_MS >= at->valuedouble &&
                    !cJSON_GetObjectItemCaseSensitive(dr[i].gone, w->string))
                    cJSON_AddStringToObject(dr[i].gone, w->string, w->valuestring);
            }
        }
    }
    cJSON_Delete(roles);
    cJSON_Delete(opp_ids);
    return rc;
}

/* Rows {"deal", "hs", "sf"} of deal_contact_role: noted as pending before their roles are
 * created (is_noted), or forgotten again while still pending, for creates not carried out. In
 * key order: two workers never wait on each other's rows crosswise. */
static enum err note_roles(PGconn *db, const cJSON *rows, bool is_noted)
{
    if (cJSON_GetArraySize(rows) == 0)
        return ERR_OK;
    char *json = cJSON_PrintUnformatted(rows);
    const char *params[] = {json};
    PGresult *r = PQexecParams(
        db,
        is_noted ? "INSERT INTO deal_contact_role (hs_deal_id, hs_contact_id, sf_contact_id,"
                   " is_pending)"
                   " SELECT t.deal, t.hs, t.sf, true"
                   " FROM jsonb_to_recordset($1::jsonb) AS t(deal text, hs text, sf text)"
                   " ORDER BY t.deal, t.hs"
                   " ON CONFLICT (hs_deal_id, hs_contact_id) DO UPDATE SET sf_contact_id ="
                   "   EXCLUDED.sf_contact_id, synced_at = now()"
                   " WHERE deal_contact_role.is_pending"
                 : "DELETE FROM deal_contact_role d"
                   " USING jsonb_to_recordset($1::jsonb) AS t(deal text, hs text, sf text)"
                   " WHERE d.hs_deal_id = t.deal AND d.hs_contact_id = t.hs AND d.is_pending",
        1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK,
                           is_noted ? "cannot note contact roles before their create"
                                    : "cannot forget contact roles not created");
    PQclear(r);
    free(json);
    return rc;
}

/* Whether a failed create call may have been carried out: its answer lost to a timeout or a
 * broken connection (ERR_UPSTREAM also stands for a 5xx, which is kept all the same). */
static bool may_be_carried_out(enum err rc)
{
    return rc == ERR_TIMEOUT || rc == ERR_UPSTREAM;
}

/* Creates the missing roles of every deal in one collection call (split by the client when
 * large); a transient failure fails the deals it concerns. A role is created only for a contact
 * new to the pair: one whose association dealsync mirrored before (before) or made itself from
 * a role (synced) and whose role is gone was deleted in Salesforce, and the other direction is
 * removing the association; re-creating the role from dealsync's own association would undo
 * the user's delete for good (issue 10). Each role is noted as mirrored (pending) before the
 * call: a create whose answer is lost is still dealsync's own role, which the other direction
 * must not take for a Salesforce user's (it associated the contact again after a user removed
 * it from the deal: chaos run), and which the deal's next sync removes if the contact is no
 * longer on the deal. A pending role that is missing was not deleted by a user (its create may
 * never have been carried out): it is created again. */
static void create_roles(struct sync_ctx *ctx, PGconn *db, struct sf_contacts_deal *deals,
                         struct deal_roles *dr, size_t n)
{
    cJSON *creates = cJSON_CreateArray();
    cJSON *notes = cJSON_CreateArray();
    cJSON *unnotes = cJSON_CreateArray();
    size_t *owner = xcalloc(1, sizeof(size_t));
    size_t count = 0;
    int *added = xcalloc(n + 1, sizeof(int));
    struct sf_save_result *saved = NULL;
    size_t saved_n = 0;
    for (size_t i = 0; i < n; i++) {
        const cJSON *w;
        if (deals[i].result != ERR_OK)
            continue;
        cJSON_ArrayForEach(w, dr[i].found)
        {
            if (has_value(dr[i].have, w->valuestring))
                continue;
            if (has_value(dr[i].before, w->valuestring) || has_key(dr[i].synced, w->valuestring)) {
                buf_printf(deals[i].detail,
                           "; contact role of %s deleted in salesforce: not re-created",
                           w->valuestring);
                continue;
            }
            /* Created by the create whose answer was lost, then deleted by a user: as above (the
             * row, saved below, makes it mirrored; the association, a HubSpot user's, stays, as
             * for any role a user deletes: docs/two-way.md). */
            if (cJSON_GetObjectItemCaseSensitive(dr[i].gone, w->string)) {
                buf_printf(deals[i].detail,
                           "; contact role of %s created (its answer lost) and deleted in "
                           "salesforce: not re-created",
                           w->valuestring);
                continue;
            }
            cJSON_AddItemToObject(dr[i].have, w->string, cJSON_CreateString(w->valuestring));
            cJSON *rec = cJSON_CreateObject();
            cJSON_AddStringToObject(cJSON_AddObjectToObject(rec, "attributes"), "type",
                                    "OpportunityContactRole");
            cJSON_AddStringToObject(rec, "OpportunityId", deals[i].opp_id);
            cJSON_AddStringToObject(rec, "ContactId", w->valuestring);
            cJSON_AddItemToArray(creates, rec);
            cJSON *note = cJSON_CreateObject();
            cJSON_AddStringToObject(note, "deal", deals[i].deal_id);
            cJSON_AddStringToObject(note, "hs", w->string);
            cJSON_AddStringToObject(note, "sf", w->valuestring);
            cJSON_AddItemToArray(notes, note);
            owner = xrealloc(owner, (count + 1) * sizeof(size_t));
            owner[count++] = i;
        }
    }
    if (count == 0)
        goto out;
    enum err rc = note_roles(db, notes, true);
    if (rc == ERR_OK)
        rc = sf_collection_create(ctx->sf, creates, false, &saved, &saved_n);
    for (size_t k = 0; k < count; k++) {
        struct sf_contacts_deal *d = &deals[owner[k]];
        bool is_created = rc == ERR_OK && k < saved_n && saved[k].is_success;
        if ((rc != ERR_OK && !may_be_carried_out(rc)) ||
            (rc == ERR_OK && k < saved_n && !is_created))
            cJSON_AddItemToArray(unnotes, cJSON_Duplicate(cJSON_GetArrayItem(notes, (int)k), true));
        if (d->result != ERR_OK)
            continue;
        if (rc != ERR_OK || k >= saved_n)
            d->result = rc != ERR_OK ? rc : ERR_UPSTREAM;
        else if (!saved[k].is_success && err_is_transient(saved[k].err))
            d->result = saved[k].err;
        else if (!saved[k].is_success)
            buf_printf(d->detail, "; contact role not created: %s",
                       saved[k].message ? saved[k].message : err_str(saved[k].err));
        else
            added[owner[k]]++;
    }
    /* A leftover note is harmless (its role is created again, and the deal's next sync
     * rewrites its rows), so a failure here is only logged. */
    if (note_roles(db, unnotes, false) != ERR_OK)
        log_warn("cannot forget contact roles not created",
                 LOG_I64("roles", cJSON_GetArraySize(unnotes)));
    for (size_t i = 0; i < n; i++)
        if (deals[i].result == ERR_OK && added[i] > 0)
            buf_printf(deals[i].detail, "; contact roles added: %d", added[i]);
out:
    sf_save_results_free(saved, saved_n);
    free(added);
    free(owner);
    cJSON_Delete(unnotes);
    cJSON_Delete(notes);
    cJSON_Delete(creates);
}

/* Deletes, in one call, the roles whose mirrored association is gone (a role noted before a
 * create whose answer was lost included: it is dealsync's own). */
static void delete_roles(struct sync_ctx *ctx, struct sf_contacts_deal *deals,
                         struct deal_roles *dr, size_t n)
{
    const char **ids = NULL;
    size_t *owner = NULL;
    size_t count = 0;
    size_t *removed = xcalloc(n + 1, sizeof(size_t));
    struct sf_save_result *saved = NULL;
    size_t saved_n = 0;
    for (size_t i = 0; i < n; i++) {
        const cJSON *r;
        if (deals[i].result != ERR_OK)
            continue;
        cJSON_ArrayForEach(r, dr[i].have)
        {
            if (has_value(dr[i].found, r->valuestring) ||
                (!has_value(dr[i].before, r->valuestring) &&
                 !has_value(dr[i].noted, r->valuestring)))
                continue;
            ids = xrealloc(ids, (count + 1) * sizeof(*ids));
            owner = xrealloc(owner, (count + 1) * sizeof(size_t));
            ids[count] = r->string;
            owner[count++] = i;
        }
    }
    if (count == 0)
        goto out;
    enum err rc = sf_collection_delete(ctx->sf, ids, count, false, &saved, &saved_n);
    for (size_t k = 0; k < count; k++) {
        if (rc != ERR_OK)
            deals[owner[k]].result = rc;
        else
            removed[owner[k]]++;
    }
    for (size_t i = 0; i < n; i++)
        if (deals[i].result == ERR_OK && removed[i] > 0)
            buf_printf(deals[i].detail, "; contact roles removed: %zu", removed[i]);
out:
    sf_save_results_free(saved, saved_n);
    free(removed);
    free(owner);
    free(ids);
}

/* Resolves the contacts of the deals that share one account (new contacts are created with
 * it) into found; detail of each of those deals gets what happened. */
static enum err resolve_for_account(struct sync_ctx *ctx, PGconn *db,
                                    struct sf_contacts_deal *deals, size_t n,
                                    const char *account_id, const cJSON *contacts, cJSON *found)
{
    cJSON *subset = cJSON_CreateArray();
    const cJSON *c;
    struct buf detail;
    buf_init(&detail, 0);
    cJSON_ArrayForEach(c, contacts)
    {
        const char *id = str(c, "id");
        if (!id || cJSON_GetObjectItemCaseSensitive(found, id))
            continue;
        bool is_wanted = false;
        for (size_t i = 0; i < n && !is_wanted; i++) {
            const char *a = deals[i].account_id;
            if ((a == NULL) != (account_id == NULL) || (a && strcmp(a, account_id) != 0))
                continue;
            const cJSON *w;
            cJSON_ArrayForEach(w, deals[i].contact_ids) is_wanted =
                is_wanted || (cJSON_IsString(w) && strcmp(w->valuestring, id) == 0);
        }
        if (is_wanted)
            cJSON_AddItemToArray(subset, cJSON_Duplicate(c, true));
    }
    enum err rc = ERR_OK;
    if (cJSON_GetArraySize(subset) > 0)
        rc = resolve_contacts(ctx, db, subset, account_id, found, &detail);
    for (size_t i = 0; rc == ERR_OK && detail.len > 0 && i < n; i++) {
        const char *a = deals[i].account_id;
        if ((a == NULL) == (account_id == NULL) && (!a || strcmp(a, account_id) == 0))
            buf_append_str(deals[i].detail, detail.data);
    }
    buf_clear(&detail);
    cJSON_Delete(subset);
    return rc;
}

enum err sf_contacts_sync_roles(struct sync_ctx *ctx, PGconn *db, struct sf_contacts_deal *deals,
                                size_t n)
{
    struct hs_batch_result res = {0};
    struct deal_roles *dr = xcalloc(n + 1, sizeof(*dr));
    cJSON *found = cJSON_CreateObject();
    const char **ids = NULL;
    size_t n_ids = 0;
    enum err rc = ERR_OK;

    for (size_t i = 0; i < n; i++) {
        deals[i].result = ERR_OK;
        dr[i].found = cJSON_CreateObject();
        dr[i].have = cJSON_CreateObject();
        dr[i].gone = cJSON_CreateObject();
        rc = sf_contacts_mirrored(db, deals[i].deal_id, &dr[i].before, &dr[i].noted,
                                  &dr[i].noted_at);
        if (rc != ERR_OK)
            goto out;
        const cJSON *c;
        cJSON_ArrayForEach(c, deals[i].contact_ids)
        {
            bool seen = false;
            for (size_t k = 0; k < n_ids && !seen; k++)
                seen = cJSON_IsString(c) && strcmp(ids[k], c->valuestring) == 0;
            if (cJSON_IsString(c) && !seen) {
                ids = xrealloc(ids, (n_ids + 1) * sizeof(*ids));
                ids[n_ids++] = c->valuestring;
            }
        }
    }
    /* One read of every contact of the batch, one resolution per account. */
    if (n_ids > 0) {
        char *props =
            xasprintf("email,firstname,lastname,phone,%s", ctx->cfg->hs_contact_id_property);
        rc = hs_batch_read(ctx->hs, "contacts", NULL, props, ids, n_ids, &res);
        free(props);
        if (rc != ERR_OK)
            goto out;
        for (size_t i = 0; i < n && rc == ERR_OK; i++) {
            bool is_done = false;
            for (size_t k = 0; k < i && !is_done; k++) {
                const char *a = deals[k].account_id, *b = deals[i].account_id;
                is_done = (a == NULL) == (b == NULL) && (!a || strcmp(a, b) == 0);
            }
            if (!is_done)
                rc =
                    resolve_for_account(ctx, db, deals, n, deals[i].account_id, res.results, found);
        }
        if (rc != ERR_OK)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *c;
        cJSON_ArrayForEach(c, deals[i].contact_ids)
        {
            const char *sf_id = cJSON_IsString(c) ? str(found, c->valuestring) : NULL;
            if (sf_id && !cJSON_GetObjectItemCaseSensitive(dr[i].found, c->valuestring))
                cJSON_AddStringToObject(dr[i].found, c->valuestring, sf_id);
        }
    }
    for (size_t i = 0; i < n && rc == ERR_OK; i++)
        if (is_touched(&dr[i]) && deals[i].opp_id)
            rc = synced_deal_contacts(db, deals[i].opp_id, &dr[i].synced);
    if (rc == ERR_OK)
        rc = read_roles(ctx, deals, dr, n);
    if (rc == ERR_OK)
        rc = read_gone_roles(ctx, deals, dr, n);
    if (rc != ERR_OK)
        goto out;
    create_roles(ctx, db, deals, dr, n);
    delete_roles(ctx, deals, dr, n);
    for (size_t i = 0; i < n; i++)
        if (deals[i].result == ERR_OK && is_touched(&dr[i]))
            deals[i].result = remember(db, deals[i].deal_id, dr[i].found);
out:
    if (rc != ERR_OK)
        for (size_t i = 0; i < n; i++)
            deals[i].result = rc;
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(dr[i].before);
        cJSON_Delete(dr[i].noted);
        cJSON_Delete(dr[i].noted_at);
        cJSON_Delete(dr[i].gone);
        cJSON_Delete(dr[i].found);
        cJSON_Delete(dr[i].have);
        cJSON_Delete(dr[i].synced);
    }
    free(dr);
    free(ids);
    cJSON_Delete(found);
    hs_batch_result_clear(&res);
    return rc;
}

enum err sf_contacts_forget_deal(PGconn *db, const char *deal_id)
{
    const char *params[] = {deal_id};
    PGresult *r = PQexecParams(db, "DELETE FROM deal_contact_role WHERE hs_deal_id = $1", 1, NULL,
                               params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot forget mirrored contact roles");
    PQclear(r);
    return rc;
}
