/* hs_companies.c - account -> company. HubSpot's integration associates a deal with its
 * account's company only when company sync is on; the caller decides that, this module only
 * finds or creates the company. */
#include "hs_companies.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hs_companies_batch.h"
#include "link.h"
#include "sf_id.h"
#include "sync_pair.h"
#include "log.h"
#include "util.h"

static const char *str(const cJSON *o, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    return s && s[0] ? s : NULL;
}

char *hs_company_domain(const char *website)
{
    if (!website)
        return NULL;
    const char *s = website;
    while (isspace((unsigned char)*s))
        s++;
    const char *scheme = strstr(s, "://");
    if (scheme)
        s = scheme + 3;
    if (strncasecmp(s, "www.", 4) == 0)
        s += 4;
    size_t n = strcspn(s, "/?#: \t");
    if (n == 0)
        return NULL;
    char *d = xstrndup(s, n);
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

cJSON *hs_company_properties(const struct config *cfg, const cJSON *account)
{
    static const struct {
        const char *sf;
        const char *hs;
    } fields[] = {{"Name", "name"},
                  {"Phone", "phone"},
                  {"Industry", "industry"},
                  {"BillingCity", "city"},
                  {"BillingCountry", "country"}};
    cJSON *props = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (str(account, fields[i].sf))
            cJSON_AddStringToObject(props, fields[i].hs, str(account, fields[i].sf));
    char *domain = hs_company_domain(str(account, "Website"));
    if (domain)
        cJSON_AddStringToObject(props, "domain", domain);
    free(domain);
    if (str(account, "Id"))
        cJSON_AddStringToObject(props, cfg->hs_account_id_property, str(account, "Id"));
    return props;
}

static enum err search_by_account(struct hs_client *hs, const struct config *cfg,
                                  const char *account_id, char **company_id)
{
    cJSON *req = cJSON_CreateObject();
    cJSON *filter = cJSON_CreateObject();
    cJSON_AddStringToObject(filter, "propertyName", cfg->hs_account_id_property);
    cJSON_AddStringToObject(filter, "operator", "EQ");
    cJSON_AddStringToObject(filter, "value", account_id);
    cJSON *group = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(group, "filters"), filter);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "filterGroups"), group);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "properties"),
                         cJSON_CreateString(cfg->hs_account_id_property));
    cJSON_AddNumberToObject(req, "limit", 1);
    cJSON *results = NULL;
    char *after = NULL;
    enum err rc = hs_search(hs, "companies", req, NULL, &results, &after);
    if (rc == ERR_OK) {
        const char *id = str(cJSON_GetArrayItem(results, 0), "id");
        if (id)
            *company_id = xstrdup(id);
        else
            rc = ERR_NOT_FOUND;
    }
    free(after);
    cJSON_Delete(results);
    cJSON_Delete(req);
    return rc;
}

/* A company taken by a match must hold no account id, or this one's. */
static bool is_free_for(const cJSON *company, const struct config *cfg, const char *account_id)
{
    const char *held =
        str(cJSON_GetObjectItemCaseSensitive(company, "properties"), cfg->hs_account_id_property);
    return !held || sf_id_equal(held, account_id);
}

/* The company the opportunity's contacts (already synced to HubSpot) are associated with. */
static enum err search_by_contacts(struct hs_client *hs, PGconn *db, const struct config *cfg,
                                   const char *account_id, const cJSON *sf_contact_ids,
                                   char **company_id)
{
    const char *hs_ids[HS_BATCH_MAX];
    char *owned[HS_BATCH_MAX];
    size_t n = 0;
    struct hs_batch_result assocs = {0}, companies = {0};
    const char **company_ids = NULL;
    size_t k = 0;
    const cJSON *c;
    enum err rc = ERR_NOT_FOUND;
    cJSON_ArrayForEach(c, sf_contact_ids)
    {
        struct link l = {0};
        if (n == HS_BATCH_MAX || !cJSON_IsString(c))
            continue;
        if (link_find_by_sf(db, LINK_CONTACT, c->valuestring, &l) == ERR_OK) {
            owned[n] = xstrdup(l.hs_id);
            hs_ids[n] = owned[n];
            n++;
        }
        link_clear(&l);
    }
    if (n == 0)
        goto out;
    rc = hs_assoc_batch_read(hs, "contacts", "companies", hs_ids, n, &assocs);
    if (rc != ERR_OK)
        goto out;
    company_ids = xcalloc(HS_BATCH_MAX + 1, sizeof(*company_ids));
    const cJSON *r, *t;
    cJSON_ArrayForEach(r, assocs.results)
    {
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(r, "to"))
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(t, "toObjectId");
            char text[32];
            if (cJSON_IsNumber(id))
                snprintf(text, sizeof(text), "%.0f", id->valuedouble);
            else if (cJSON_IsString(id))
                snprintf(text, sizeof(text), "%s", id->valuestring);
            else
                continue;
            bool dup = false;
            for (size_t i = 0; i < k; i++)
                dup |= strcmp(company_ids[i], text) == 0;
            if (!dup && k < HS_BATCH_MAX)
                company_ids[k++] = xstrdup(text);
        }
    }
    rc = ERR_NOT_FOUND;
    if (k == 0)
        goto out;
    rc = hs_batch_read(hs, "companies", NULL, cfg->hs_account_id_property, company_ids, k,
                       &companies);
    if (rc != ERR_OK)
        goto out;
    rc = ERR_NOT_FOUND;
    cJSON_ArrayForEach(c, companies.results)
    {
        if (is_free_for(c, cfg, account_id) && str(c, "id")) {
            *company_id = xstrdup(str(c, "id"));
            rc = ERR_OK;
            break;
        }
    }
out:
    for (size_t i = 0; company_ids && i < k; i++)
        free((char *)company_ids[i]);
    free(company_ids);
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    hs_batch_result_clear(&companies);
    hs_batch_result_clear(&assocs);
    return rc;
}

/* A company with the account website's domain that holds no other account. */
static enum err search_by_domain(struct hs_client *hs, const struct config *cfg,
                                 const cJSON *account, char **company_id)
{
    char *domain = hs_company_domain(str(account, "Website"));
    if (!domain)
        return ERR_NOT_FOUND;
    cJSON *req = cJSON_CreateObject();
    cJSON *filter = cJSON_CreateObject();
    cJSON_AddStringToObject(filter, "propertyName", "domain");
    cJSON_AddStringToObject(filter, "operator", "EQ");
    cJSON_AddStringToObject(filter, "value", domain);
    cJSON *group = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(group, "filters"), filter);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "filterGroups"), group);
    cJSON *props = cJSON_AddArrayToObject(req, "properties");
    cJSON_AddItemToArray(props, cJSON_CreateString(cfg->hs_account_id_property));
    cJSON_AddItemToArray(props, cJSON_CreateString("domain"));
    cJSON_AddNumberToObject(req, "limit", 10);
    cJSON *results = NULL;
    char *after = NULL;
    enum err rc = hs_search(hs, "companies", req, NULL, &results, &after);
    if (rc == ERR_OK) {
        rc = ERR_NOT_FOUND;
        const cJSON *c;
        cJSON_ArrayForEach(c, results)
        {
            if (is_free_for(c, cfg, str(account, "Id")) && str(c, "id")) {
                *company_id = xstrdup(str(c, "id"));
                rc = ERR_OK;
                break;
            }
        }
    }
    free(after);
    cJSON_Delete(results);
    cJSON_Delete(req);
    free(domain);
    return rc;
}

static enum err find_or_create(struct hs_client *hs, PGconn *db, const struct config *cfg,
                               const cJSON *account, const cJSON *sf_contact_ids, char **company_id,
                               const char **how)
{
    const char *account_id = str(account, "Id");
    struct link l = {0};
    char *id = NULL;
    cJSON *props = NULL;
    cJSON *created = NULL;
    bool is_written = false; /* an account id was sent to a company */
    enum err rc = link_find_by_sf(db, LINK_ACCOUNT, account_id, &l);
    if (rc == ERR_OK) {
        *company_id = xstrdup(l.hs_id);
        *how = "linked";
        link_clear(&l);
        return ERR_OK;
    }
    if (rc != ERR_NOT_FOUND)
        return rc;
    *how = "account id";
    rc = search_by_account(hs, cfg, account_id, &id);
    if (rc == ERR_NOT_FOUND) {
        *how = "contacts";
        rc = search_by_contacts(hs, db, cfg, account_id, sf_contact_ids, &id);
    }
    if (rc == ERR_NOT_FOUND && cfg->company_match_domain) {
        *how = "domain";
        rc = search_by_domain(hs, cfg, account, &id);
    }
    if (rc == ERR_OK && strcmp(*how, "account id") != 0) {
        /* Found by a match: it now holds the account id, as a created one would. */
        is_written = true;
        props = cJSON_CreateObject();
        cJSON_AddStringToObject(props, cfg->hs_account_id_property, account_id);
        rc = hs_object_update(hs, "companies", id, NULL, props, &created);
        if (rc == ERR_OK)
            log_info("hubspot company matched", LOG_STR("account_id", account_id),
                     LOG_STR("company_id", id), LOG_STR("by", *how));
    } else if (rc == ERR_NOT_FOUND) {
        *how = "created";
        is_written = true;
        props = hs_company_properties(cfg, account);
        rc = hs_object_create(hs, "companies", props, NULL, &created);
        if (rc != ERR_OK)
            goto out;
        if (!str(created, "id")) {
            rc = ERR_INVALID;
            goto out;
        }
        id = xstrdup(str(created, "id"));
        log_info("hubspot company created", LOG_STR("account_id", account_id),
                 LOG_STR("company_id", id));
    }
    if (rc != ERR_OK)
        goto out;
    l.kind = LINK_ACCOUNT;
    l.sf_id = (char *)account_id;
    l.hs_id = id;
    rc = link_save(db, &l);
    if (rc != ERR_OK)
        goto out;
    *company_id = id;
    id = NULL;
out:
    if (rc != ERR_OK && is_written)
        hs_companies_note_unlinked_write(); /* before the caller releases the lock */
    cJSON_Delete(created);
    cJSON_Delete(props);
    free(id);
    return rc;
}

enum err hs_companies_find_or_create(struct hs_client *hs, PGconn *db, const struct config *cfg,
                                     const cJSON *account, const cJSON *sf_contact_ids,
                                     char **company_id, const char **how)
{
    const char *account_id = str(account, "Id");
    if (!account_id)
        return ERR_INVALID;
    char *key = xasprintf("account:%s", account_id);
    enum err rc = sync_pair_lock_wait(db, key);
    if (rc == ERR_OK) {
        rc = find_or_create(hs, db, cfg, account, sf_contact_ids, company_id, how);
        sync_pair_unlock(db, key);
    }
    free(key);
    return rc;
}
