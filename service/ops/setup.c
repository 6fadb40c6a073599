/* setup.c - checks the two orgs against the configuration at start, and creates the HubSpot
 * properties dealsync needs. Problems are collected and logged together. */
#include "setup.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "sync.h"
#include "util.h"

struct prop_spec {
    const char *object_type;
    const char *name;
    const char *label;
    const char *type;       /* string, number, datetime */
    const char *field_type; /* text, number, date */
    const char *group;
    bool is_unique;
    bool is_written; /* dealsync writes it: must not be read-only */
};

static const char *str(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

/* ERR_CONFIG for a definition that cannot work, ERR_OK, or the API error. */
static enum err ensure_property(struct hs_client *hs, const struct prop_spec *s)
{
    cJSON *def = NULL;
    enum err rc = hs_property_get(hs, s->object_type, s->name, &def);
    if (rc == ERR_NOT_FOUND) {
        cJSON *in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "name", s->name);
        cJSON_AddStringToObject(in, "label", s->label);
        cJSON_AddStringToObject(in, "type", s->type);
        cJSON_AddStringToObject(in, "fieldType", s->field_type);
        cJSON_AddStringToObject(in, "groupName", s->group);
        if (s->is_unique)
            cJSON_AddTrueToObject(in, "hasUniqueValue");
        rc = hs_property_create(hs, s->object_type, in, NULL);
        cJSON_Delete(in);
        if (rc == ERR_CONFLICT) /* another process created it meanwhile */
            rc = ERR_OK;
        if (rc == ERR_OK)
            log_info("hubspot property created", LOG_STR("object_type", s->object_type),
                     LOG_STR("property", s->name), LOG_BOOL("unique", s->is_unique));
        return rc;
    }
    if (rc != ERR_OK)
        return rc;
    const cJSON *mod = cJSON_GetObjectItemCaseSensitive(def, "modificationMetadata");
    if (s->is_unique && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(def, "hasUniqueValue"))) {
        /* Reported, not fatal: the HubSpot-to-Salesforce direction works without it; the
         * opportunity handler's upserts on it fail, and its records say why. */
        log_error("hubspot property must have unique values; salesforce to hubspot cannot "
                  "upsert deals on it",
                  LOG_STR("object_type", s->object_type), LOG_STR("property", s->name));
    } else if (s->is_written &&
               (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(mod, "readOnlyValue")) ||
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(def, "readOnlyValue")) ||
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(def, "calculated")))) {
        log_error("hubspot property is read-only; dealsync cannot write it",
                  LOG_STR("object_type", s->object_type), LOG_STR("property", s->name));
        rc = ERR_CONFIG;
    }
    cJSON_Delete(def);
    return rc;
}

static const cJSON *named(const cJSON *list, const char *name, bool ignore_case)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        const char *n = str(it, "name");
        if (n && (ignore_case ? strcasecmp(n, name) == 0 : strcmp(n, name) == 0))
            return it;
    }
    return NULL;
}

enum err setup_check_mappings(struct sf_client *sf, struct hs_client *hs,
                              const struct mapping_set *mappings, char **problem)
{
    cJSON *describe = NULL;
    cJSON *props = NULL;
    struct buf missing;
    buf_init(&missing, 0);
    if (problem)
        *problem = NULL;
    /* GET sobjects/Opportunity/describe: "describe" takes the id's place in the path. */
    enum err rc = sf_sobject_get(sf, "Opportunity", "describe", NULL, &describe);
    if (rc == ERR_OK)
        rc = hs_properties_list(hs, "deals", &props);
    if (rc != ERR_OK)
        goto out;
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(describe, "fields");
    for (size_t i = 0; i < mapping_set_count(mappings); i++) {
        const struct mapping_field *f = mapping_set_field(mappings, i);
        if (f->rule == MAPPING_RULE_NONE)
            continue;
        if (!named(fields, f->sf_field, true)) {
            log_error("mapped salesforce field does not exist on Opportunity",
                      LOG_STR("field", f->sf_field), LOG_STR("property", f->hs_property));
            buf_printf(&missing, "%sOpportunity.%s", missing.len ? ", " : "", f->sf_field);
            rc = ERR_CONFIG;
        }
        if (!named(props, f->hs_property, false)) {
            log_error("mapped hubspot property does not exist on deals",
                      LOG_STR("field", f->sf_field), LOG_STR("property", f->hs_property));
            buf_printf(&missing, "%sdeal property %s", missing.len ? ", " : "", f->hs_property);
            rc = ERR_CONFIG;
            continue;
        }
        if (f->is_standard)
            continue;
        /* The pair must hold each other's values (HubSpot's compatible types). */
        const cJSON *sf_def = named(fields, f->sf_field, true);
        const cJSON *hs_def = named(props, f->hs_property, false);
        const char *why = sf_def ? mapping_type_mismatch(str(sf_def, "type"), str(hs_def, "type"),
                                                         str(hs_def, "fieldType"))
                                 : NULL;
        if (why) {
            log_error(
                "mapped field and property cannot hold each other's values",
                LOG_STR("field", f->sf_field), LOG_STR("salesforce_type", str(sf_def, "type")),
                LOG_STR("property", f->hs_property), LOG_STR("hubspot_type", str(hs_def, "type")),
                LOG_STR("hubspot_field_type", str(hs_def, "fieldType")), LOG_STR("reason", why));
            rc = ERR_CONFIG;
        }
    }
    if (problem && missing.len)
        *problem = xasprintf("mapped but missing: %s", missing.data);
out:
    buf_clear(&missing);
    cJSON_Delete(props);
    cJSON_Delete(describe);
    return rc;
}

/* A property's check at start, tried again after a transient failure (a 429, a timeout, a 5xx)
 * up to SETUP_TRIES times, waiting HubSpot's Retry-After or 0.5, 1, 2, 4 s: the opportunity id
 * property that no process created because its one check was answered 429 made every sync
 * until the next restart fail ("idProperty must be a property with unique values"), each
 * opportunity dead-lettered (the chaos run found it: both processes' checks refused at once). */
#define SETUP_TRIES 5
#define SETUP_MAX_WAIT_MS 10000

static enum err ensure_property_tries(struct hs_client *hs, const struct prop_spec *s)
{
    enum err rc = ERR_OK;
    for (int attempt = 0; attempt < SETUP_TRIES; attempt++) {
        rc = ensure_property(hs, s);
        if (!err_is_transient(rc) || attempt + 1 == SETUP_TRIES)
            break;
        int64_t wait_ms = hs_retry_after_ms(hs);
        if (wait_ms <= 0)
            wait_ms = 500LL << attempt;
        if (wait_ms > SETUP_MAX_WAIT_MS)
            wait_ms = SETUP_MAX_WAIT_MS;
        log_info("hubspot property check at start tried again", LOG_STR("property", s->name),
                 LOG_STR("error", err_str(rc)), LOG_I64("wait_ms", wait_ms));
        struct timespec ts = {(time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return rc;
}

enum err setup_run(const struct config *cfg, const struct mapping_set *mappings)
{
    if (!config_has_salesforce_api(cfg) || !config_has_hubspot_api(cfg)) {
        log_info("salesforce to hubspot setup skipped: both apis must be configured");
        return ERR_OK;
    }
    struct sync_shared shared = {cfg, mappings};
    struct sync_ctx *ctx = sync_ctx_new(cfg, &shared);
    enum err result = ERR_OK;
    if (!ctx->sf || !ctx->hs) {
        sync_ctx_free(ctx);
        return ERR_CONFIG;
    }
    const struct prop_spec specs[] = {
        {"deals", cfg->hs_opportunity_id_property, "Salesforce opportunity id", "string", "text",
         "dealinformation", true, true},
        {"contacts", cfg->hs_contact_id_property, "Salesforce contact id", "string", "text",
         "contactinformation", false, true},
        {"companies", cfg->hs_account_id_property, "Salesforce account id", "string", "text",
         "companyinformation", false, true},
        {"contacts", cfg->rollup_num_deals_property, "Number of synced deals (dealsync)", "number",
         "number", "contactinformation", false, true},
        {"contacts", cfg->rollup_first_deal_created_property,
         "First synced deal created date (dealsync)", "datetime", "date", "contactinformation",
         false, true},
        {"contacts", cfg->rollup_recent_close_date_property,
         "Recent closed-won deal close date (dealsync)", "datetime", "date", "contactinformation",
         false, true},
        {"contacts", cfg->rollup_recent_amount_property,
         "Amount of the most recently created deal (dealsync)", "number", "number",
         "contactinformation", false, true},
        {"contacts", cfg->rollup_total_revenue_property, "Total closed-won revenue (dealsync)",
         "number", "number", "contactinformation", false, true},
    };
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        enum err rc = ensure_property_tries(ctx->hs, &specs[i]);
        if (rc == ERR_CONFIG) {
            result = ERR_CONFIG;
        } else if (rc != ERR_OK) {
            log_warn("cannot check hubspot property at start", LOG_STR("property", specs[i].name),
                     LOG_STR("error", err_str(rc)));
            if (!err_is_transient(rc))
                result = ERR_CONFIG;
        }
    }
    enum err rc = setup_check_mappings(ctx->sf, ctx->hs, mappings, NULL);
    if (rc == ERR_CONFIG) {
        result = ERR_CONFIG;
    } else if (rc != ERR_OK) {
        log_warn("cannot check the field mappings at start", LOG_STR("error", err_str(rc)));
        if (!err_is_transient(rc))
            result = ERR_CONFIG;
    }
    if (result == ERR_OK)
        log_info("salesforce to hubspot setup checked");
    sync_ctx_free(ctx);
    return result;
}
