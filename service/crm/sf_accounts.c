/* sf_accounts.c - the Account an opportunity synced from a HubSpot deal belongs to. It never
 * updates an existing Account from its company: company field sync is not part of issue 5. */
#include "sf_accounts.h"

#include <stdlib.h>
#include <string.h>

#include "crm_match.h"
#include "link.h"
#include "log.h"
#include "sf_id.h"
#include "sync_pair.h"
#include "util.h"

/* Company property -> Account field, for accounts created from a company. */
static const struct {
    const char *hs;
    const char *sf;
} account_fields[] = {
    {"name", "Name"},          {"website", "Website"},       {"phone", "Phone"},
    {"industry", "Industry"},  {"address", "BillingStreet"}, {"city", "BillingCity"},
    {"state", "BillingState"}, {"zip", "BillingPostalCode"}, {"country", "BillingCountry"},
};
#define ACCOUNT_FIELD_COUNT (sizeof(account_fields) / sizeof(account_fields[0]))

static cJSON *account_from_company(const cJSON *company)
{
    cJSON *rec = cJSON_CreateObject();
    cJSON *attrs = cJSON_AddObjectToObject(rec, "attributes");
    cJSON_AddStringToObject(attrs, "type", "Account");
    for (size_t i = 0; i < ACCOUNT_FIELD_COUNT; i++) {
        const char *v = crm_match_prop(company, account_fields[i].hs);
        if (!v && strcmp(account_fields[i].hs, "website") == 0)
            v = crm_match_prop(company, "domain");
        if (v)
            cJSON_AddStringToObject(rec, account_fields[i].sf, v);
    }
    return rec;
}

#define ACCOUNT_CREATE_LOCK "salesforce account create"

enum err sf_accounts_read_companies(struct sync_ctx *ctx, const cJSON *company_ids,
                                    struct hs_batch_result *companies)
{
    const char **ids = xcalloc((size_t)cJSON_GetArraySize(company_ids) + 1, sizeof(*ids));
    size_t n = 0;
    const cJSON *c;
    enum err rc = ERR_OK;
    cJSON_ArrayForEach(c, company_ids) if (cJSON_IsString(c)) ids[n++] = c->valuestring;
    if (n == 0) {
        companies->results = cJSON_CreateArray();
        companies->errors = cJSON_CreateArray();
    } else {
        char *props =
            xasprintf("name,domain,website,phone,industry,address,city,state,zip,country,%s",
                      ctx->cfg->hs_account_id_property);
        rc = hs_batch_read(ctx->hs, "companies", NULL, props, ids, n, companies);
        free(props);
    }
    free(ids);
    return rc;
}

static bool is_wanted(const cJSON *company_ids, const char *hs_id)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, company_ids)
    {
        if (cJSON_IsString(c) && strcmp(c->valuestring, hs_id) == 0)
            return true;
    }
    return false;
}

enum err sf_accounts_resolve(struct sync_ctx *ctx, PGconn *db, const cJSON *company_ids,
                             cJSON **accounts, cJSON **reasons)
{
    struct hs_batch_result companies = {0};
    enum err rc = sf_accounts_read_companies(ctx, company_ids, &companies);
    if (rc == ERR_OK)
        rc = sf_accounts_resolve_read(ctx, db, company_ids, &companies, NULL, accounts, reasons);
    hs_batch_result_clear(&companies);
    return rc;
}

enum err sf_accounts_resolve_read(struct sync_ctx *ctx, PGconn *db, const cJSON *company_ids,
                                  const struct hs_batch_result *companies, const cJSON *known,
                                  cJSON **accounts, cJSON **reasons)
{
    cJSON *read = cJSON_CreateArray(); /* the companies of company_ids that were read */
    cJSON *to_check = cJSON_CreateObject();
    struct sf_save_result *saved = NULL;
    size_t saved_n = 0;
    cJSON *found = cJSON_CreateObject();
    cJSON *why = cJSON_CreateObject();
    cJSON *candidates = cJSON_CreateObject();
    cJSON *existing = NULL;
    cJSON *to_create = cJSON_CreateArray();
    cJSON *create_for = cJSON_CreateArray();
    const cJSON *c;
    enum err rc = ERR_OK;
    bool is_locked = false;

    cJSON_ArrayForEach(c, companies->results)
    {
        const char *hs_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "id"));
        if (hs_id && is_wanted(company_ids, hs_id))
            cJSON_AddItemToArray(read, cJSON_Duplicate(c, true));
    }
    cJSON_ArrayForEach(c, read)
    {
        const char *hs_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "id"));
        const char *stored = crm_match_prop(c, ctx->cfg->hs_account_id_property);
        char id18[19];
        struct link l = {0};
        if (!hs_id)
            continue;
        if (stored && sf_id_to18(stored, id18))
            cJSON_AddStringToObject(candidates, hs_id, id18);
        else if (link_find_by_hs(db, LINK_ACCOUNT, hs_id, &l) == ERR_OK)
            cJSON_AddStringToObject(candidates, hs_id, l.sf_id);
        link_clear(&l);
    }
    /* An account an opportunity of the batch belongs to exists: only the others are asked. */
    cJSON_ArrayForEach(c, candidates) if (!cJSON_GetObjectItemCaseSensitive(known, c->valuestring))
        cJSON_AddStringToObject(to_check, c->string, c->valuestring);
    rc = crm_match_existing(ctx->sf, "Account", to_check, &existing);
    if (rc != ERR_OK)
        goto out;
    cJSON_ArrayForEach(c, read)
    {
        const char *hs_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "id"));
        const char *cand =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(candidates, hs_id));
        if (!hs_id)
            continue;
        if (cand && (cJSON_GetObjectItemCaseSensitive(existing, cand) ||
                     cJSON_GetObjectItemCaseSensitive(known, cand))) {
            cJSON_AddStringToObject(found, hs_id, cand);
        } else if (!ctx->cfg->company_sync) {
            cJSON_AddStringToObject(why, hs_id, "company sync is off and no account is linked");
        } else if (!crm_match_prop(c, "name")) {
            cJSON_AddStringToObject(why, hs_id, "company has no name to create an account from");
        } else {
            /* One worker at a time creates accounts: two deals sharing a new company in
             * different batches create one Account (the second finds the first's link once it
             * has the lock). */
            struct link l = {0};
            if (!is_locked) {
                rc = sync_pair_lock_wait(db, ACCOUNT_CREATE_LOCK);
                if (rc != ERR_OK)
                    goto out;
                is_locked = true;
            }
            if (link_find_by_hs(db, LINK_ACCOUNT, hs_id, &l) == ERR_OK) {
                cJSON_AddStringToObject(found, hs_id, l.sf_id);
            } else {
                cJSON_AddItemToArray(to_create, account_from_company(c));
                cJSON_AddItemToArray(create_for, cJSON_CreateString(hs_id));
            }
            link_clear(&l);
        }
    }
    if (cJSON_GetArraySize(to_create) > 0) {
        rc = sf_collection_create(ctx->sf, to_create, false, &saved, &saved_n);
        if (rc != ERR_OK)
            goto out;
        for (size_t i = 0; i < saved_n; i++) {
            const char *hs_id = cJSON_GetArrayItem(create_for, (int)i)->valuestring;
            if (saved[i].is_success && saved[i].id) {
                cJSON_AddStringToObject(found, hs_id, saved[i].id);
                log_info("account created from company", LOG_STR("record_id", saved[i].id),
                         LOG_STR("company_id", hs_id));
            } else if (err_is_transient(saved[i].err)) {
                rc = saved[i].err;
                goto out;
            } else {
                char *r = xasprintf("account not created: %s %s",
                                    saved[i].error_code ? saved[i].error_code : "",
                                    saved[i].message ? saved[i].message : "");
                cJSON_AddStringToObject(why, hs_id, r);
                free(r);
            }
        }
    }
    rc = crm_match_stamp(ctx, db, "companies", LINK_ACCOUNT, ctx->cfg->hs_account_id_property, read,
                         found);
    if (rc != ERR_OK)
        goto out;
    cJSON_ArrayForEach(c, companies->errors)
    {
        const cJSON *id;
        cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(
                                   cJSON_GetObjectItemCaseSensitive(c, "context"),
                                   "ids")) if (cJSON_IsString(id) &&
                                               is_wanted(company_ids, id->valuestring))
            cJSON_AddStringToObject(why, id->valuestring, "company not found in hubspot");
    }
    *accounts = found;
    *reasons = why;
    found = why = NULL;
out:
    if (is_locked)
        sync_pair_unlock(db, ACCOUNT_CREATE_LOCK);
    sf_save_results_free(saved, saved_n);
    cJSON_Delete(create_for);
    cJSON_Delete(to_create);
    cJSON_Delete(existing);
    cJSON_Delete(candidates);
    cJSON_Delete(why);
    cJSON_Delete(found);
    cJSON_Delete(to_check);
    cJSON_Delete(read);
    return rc;
}
