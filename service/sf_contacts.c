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
static enum err mirrored_before(PGconn *db, const char *deal_id, cJSON **out)
{
    const char *params[] = {deal_id};
    PGresult *r = PQexecParams(db,
                               "SELECT hs_contact_id, sf_contact_id FROM deal_contact_role"
                               " WHERE hs_deal_id = $1",
                               1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read mirrored contact roles");
    if (rc == ERR_OK) {
        *out = cJSON_CreateObject();
        for (int i = 0; i < PQntuples(r); i++)
            cJSON_AddStringToObject(*out, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    }
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
                     "   EXCLUDED.sf_contact_id, synced_at = now()",
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

/* Creates the missing roles and deletes the ones whose mirrored association is gone. A role is
 * created only for a contact new to the pair: one whose association dealsync mirrored before
 * (before) or made itself from a role (synced, the other direction's {"sf contact": ...}) and
 * whose role is gone was deleted in Salesforce, and the other direction is removing the
 * association; re-creating the role from dealsync's own association would undo the user's delete
 * for good (issue 10). */
static enum err sync_roles(struct sync_ctx *ctx, const char *opp_id, const cJSON *wanted,
                           const cJSON *before, const cJSON *synced, struct buf *detail)
{
    cJSON *roles = NULL;
    cJSON *creates = cJSON_CreateArray();
    cJSON *have = cJSON_CreateObject();
    const char **deletes = NULL;
    size_t n_delete = 0;
    struct sf_save_result *saved = NULL;
    size_t saved_n = 0;
    const cJSON *r, *w;
    enum err rc;
    struct buf q;
    buf_init(&q, 0);

    buf_append_str(&q, "SELECT Id, ContactId FROM OpportunityContactRole WHERE OpportunityId = ");
    soql_append_quoted(&q, opp_id);
    rc = sf_query(ctx->sf, q.data, &roles);
    if (rc != ERR_OK)
        goto out;
    deletes = xcalloc((size_t)cJSON_GetArraySize(roles) + 1, sizeof(*deletes));
    cJSON_ArrayForEach(r, roles)
    {
        const char *contact = str(r, "ContactId");
        if (!contact || !str(r, "Id"))
            continue;
        cJSON_AddItemToObject(have, str(r, "Id"), cJSON_CreateString(contact));
        if (!has_value(wanted, contact) && has_value(before, contact))
            deletes[n_delete++] = str(r, "Id");
    }
    cJSON_ArrayForEach(w, wanted)
    {
        if (has_value(have, w->valuestring))
            continue;
        if (has_value(before, w->valuestring) || has_key(synced, w->valuestring)) {
            buf_printf(detail, "; contact role of %s deleted in salesforce: not re-created",
                       w->valuestring);
            continue;
        }
        cJSON_AddItemToObject(have, w->string, cJSON_CreateString(w->valuestring));
        cJSON *rec = cJSON_CreateObject();
        cJSON_AddStringToObject(cJSON_AddObjectToObject(rec, "attributes"), "type",
                                "OpportunityContactRole");
        cJSON_AddStringToObject(rec, "OpportunityId", opp_id);
        cJSON_AddStringToObject(rec, "ContactId", w->valuestring);
        cJSON_AddItemToArray(creates, rec);
    }
    if (cJSON_GetArraySize(creates) > 0) {
        rc = sf_collection_create(ctx->sf, creates, false, &saved, &saved_n);
        if (rc != ERR_OK)
            goto out;
        for (size_t i = 0; i < saved_n; i++) {
            if (!saved[i].is_success && err_is_transient(saved[i].err)) {
                rc = saved[i].err;
                goto out;
            }
            if (!saved[i].is_success)
                buf_printf(detail, "; contact role not created: %s",
                           saved[i].message ? saved[i].message : err_str(saved[i].err));
        }
        buf_printf(detail, "; contact roles added: %d", cJSON_GetArraySize(creates));
    }
    if (n_delete > 0) {
        sf_save_results_free(saved, saved_n);
        saved = NULL;
        saved_n = 0;
        rc = sf_collection_delete(ctx->sf, deletes, n_delete, false, &saved, &saved_n);
        if (rc != ERR_OK)
            goto out;
        buf_printf(detail, "; contact roles removed: %zu", n_delete);
    }
out:
    sf_save_results_free(saved, saved_n);
    free(deletes);
    cJSON_Delete(have);
    cJSON_Delete(creates);
    cJSON_Delete(roles);
    buf_clear(&q);
    return rc;
}

enum err sf_contacts_sync_roles(struct sync_ctx *ctx, PGconn *db, const char *deal_id,
                                const char *opp_id, const char *account_id,
                                const cJSON *contact_ids, struct buf *detail)
{
    struct hs_batch_result res = {0};
    cJSON *found = cJSON_CreateObject();
    cJSON *before = NULL;
    cJSON *synced = NULL;
    const char **ids = NULL;
    size_t n = 0;
    const cJSON *c;
    enum err rc;

    rc = mirrored_before(db, deal_id, &before);
    if (rc != ERR_OK)
        goto out;
    ids = xcalloc((size_t)cJSON_GetArraySize(contact_ids) + 1, sizeof(*ids));
    cJSON_ArrayForEach(c, contact_ids) if (cJSON_IsString(c)) ids[n++] = c->valuestring;
    if (n > 0) {
        char *props =
            xasprintf("email,firstname,lastname,phone,%s", ctx->cfg->hs_contact_id_property);
        rc = hs_batch_read(ctx->hs, "contacts", NULL, props, ids, n, &res);
        free(props);
        if (rc != ERR_OK)
            goto out;
        rc = resolve_contacts(ctx, db, res.results, account_id, found, detail);
        if (rc != ERR_OK)
            goto out;
    }
    if (cJSON_GetArraySize(found) == 0 && cJSON_GetArraySize(before) == 0)
        goto out;
    rc = synced_deal_contacts(db, opp_id, &synced);
    if (rc == ERR_OK)
        rc = sync_roles(ctx, opp_id, found, before, synced, detail);
    if (rc == ERR_OK)
        rc = remember(db, deal_id, found);
out:
    cJSON_Delete(synced);
    free(ids);
    cJSON_Delete(before);
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
