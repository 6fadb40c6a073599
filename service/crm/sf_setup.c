/* sf_setup.c - creates the Opportunity external-id field that carries the HubSpot deal id, as
 * HubSpot's integration does with its Modify All Data / Modify Metadata permission. It does not
 * create HubSpot properties (issue 4's set-up does). */
#include "sf_setup.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "sync_state.h"
#include "util.h"

bool sf_setup_is_custom_field(const char *field)
{
    size_t n = field ? strlen(field) : 0;
    if (n < 4 || n > 43 || strcmp(field + n - 3, "__c") != 0 || !isalpha((unsigned char)field[0]))
        return false;
    for (size_t i = 0; i < n - 3; i++) {
        unsigned char c = (unsigned char)field[i];
        if (!isalnum(c) && c != '_')
            return false;
        if (c == '_' && (i + 1 == n - 3 || field[i + 1] == '_'))
            return false;
    }
    return true;
}

static enum err record(PGconn *db, bool is_ready, const char *reason)
{
    metrics_inc("dealsync_sf_deal_field_checks_total",
                is_ready ? "ready=\"true\"" : "ready=\"false\"", 1);
    if (is_ready)
        log_info("opportunity deal id field ready");
    else
        log_error("opportunities cannot be written", LOG_STR("reason", reason));
    return sync_setting_set(db, SF_SETUP_DEAL_FIELD_SETTING, is_ready ? "ready" : reason);
}

static enum err field_exists(struct sf_client *sf, const char *field, bool *exists)
{
    cJSON *rows = NULL;
    char *dev = xstrndup(field, strlen(field) - 3);
    char *soql = xasprintf("SELECT Id FROM CustomField WHERE TableEnumOrId = 'Opportunity'"
                           " AND DeveloperName = '%s'",
                           dev);
    enum err rc = sf_tooling_query(sf, soql, &rows);
    if (rc == ERR_OK)
        *exists = cJSON_GetArraySize(rows) > 0;
    cJSON_Delete(rows);
    free(soql);
    free(dev);
    return rc;
}

static enum err may_modify_metadata(struct sf_client *sf, bool *may)
{
    static const char *const perms[] = {"PermissionsModifyAllData", "PermissionsModifyMetadata"};
    *may = false;
    for (size_t i = 0; i < sizeof(perms) / sizeof(perms[0]) && !*may; i++) {
        enum err rc = sf_user_has_permission(sf, perms[i], may);
        if (rc == ERR_INVALID) /* the org does not know this permission */
            continue;
        if (rc != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

static enum err create_field(struct sf_client *sf, const char *field)
{
    cJSON *body = cJSON_CreateObject();
    char *full = xasprintf("Opportunity.%s", field);
    cJSON_AddStringToObject(body, "FullName", full);
    cJSON *md = cJSON_AddObjectToObject(body, "Metadata");
    cJSON_AddStringToObject(md, "label", "HubSpot Deal Id");
    cJSON_AddStringToObject(md, "type", "Text");
    cJSON_AddNumberToObject(md, "length", 64);
    cJSON_AddBoolToObject(md, "externalId", true);
    cJSON_AddBoolToObject(md, "unique", true);
    cJSON_AddBoolToObject(md, "required", false);
    cJSON_AddStringToObject(md, "description",
                            "The HubSpot deal id; dealsync upserts opportunities on it");
    char *id = NULL;
    enum err rc = sf_tooling_create(sf, "CustomField", body, &id);
    if (rc == ERR_OK)
        log_info("created opportunity deal id field", LOG_STR("field", field),
                 LOG_STR("record_id", id));
    free(id);
    free(full);
    cJSON_Delete(body);
    return rc;
}

enum err sf_setup_deal_field(struct sf_client *sf, PGconn *db, const char *field, bool *is_ready,
                             char **reason)
{
    bool exists = false;
    bool may = false;
    char *why = NULL;
    enum err rc;

    if (!sf_setup_is_custom_field(field)) {
        why = xasprintf("SALESFORCE_DEAL_ID_FIELD %s is not a custom field name (Name__c)", field);
        goto decided;
    }
    rc = field_exists(sf, field, &exists);
    if (rc != ERR_OK)
        return rc;
    if (exists)
        goto decided;
    rc = may_modify_metadata(sf, &may);
    if (rc != ERR_OK)
        return rc;
    if (!may) {
        why = xasprintf("Opportunity.%s is missing and the integration user has neither Modify "
                        "All Data nor Modify Metadata to create it",
                        field);
        goto decided;
    }
    rc = create_field(sf, field);
    if (rc != ERR_OK && err_is_transient(rc))
        return rc;
    if (rc != ERR_OK)
        why = xasprintf("Opportunity.%s is missing and creating it failed: %s", field, err_str(rc));
decided:
    rc = record(db, why == NULL, why);
    if (rc == ERR_OK) {
        *is_ready = why == NULL;
        *reason = why;
        why = NULL;
    }
    free(why);
    return rc;
}

enum err sf_setup_deal_field_state(PGconn *db, bool *is_ready, char **reason)
{
    char *v = NULL;
    enum err rc = sync_setting_get(db, SF_SETUP_DEAL_FIELD_SETTING, "not checked yet", &v);
    if (rc != ERR_OK)
        return rc;
    *is_ready = strcmp(v, "ready") == 0;
    if (*is_ready) {
        free(v);
        v = NULL;
    }
    *reason = v;
    return ERR_OK;
}
