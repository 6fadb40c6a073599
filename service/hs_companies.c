/* hs_companies.c - account -> company. HubSpot's integration associates a deal with its
 * account's company only when company sync is on; the caller decides that, this module only
 * finds or creates the company. */
#include "hs_companies.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "link.h"
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

enum err hs_companies_find_or_create(struct hs_client *hs, PGconn *db, const struct config *cfg,
                                     const cJSON *account, char **company_id, bool *is_created)
{
    const char *account_id = str(account, "Id");
    struct link l = {0};
    char *id = NULL;
    cJSON *props = NULL;
    cJSON *created = NULL;
    if (!account_id)
        return ERR_INVALID;
    enum err rc = link_find_by_sf(db, LINK_ACCOUNT, account_id, &l);
    if (rc == ERR_OK) {
        *company_id = xstrdup(l.hs_id);
        *is_created = false;
        link_clear(&l);
        return ERR_OK;
    }
    if (rc != ERR_NOT_FOUND)
        return rc;
    bool is_new = false;
    rc = search_by_account(hs, cfg, account_id, &id);
    if (rc == ERR_NOT_FOUND) {
        props = hs_company_properties(cfg, account);
        rc = hs_object_create(hs, "companies", props, NULL, &created);
        if (rc != ERR_OK)
            goto out;
        if (!str(created, "id")) {
            rc = ERR_INVALID;
            goto out;
        }
        id = xstrdup(str(created, "id"));
        is_new = true;
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
    *is_created = is_new;
    id = NULL;
out:
    cJSON_Delete(created);
    cJSON_Delete(props);
    free(id);
    return rc;
}
