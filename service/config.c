/* config.c - environment variables to struct config through one table: name, type, whether
 * required, default, where it goes. The only file that calls getenv(). */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

enum cfg_type { CFG_STR, CFG_SECRET, CFG_INT, CFG_BOOL };

/* Which subcommands need a variable: ALWAYS, or only when webhooks are served. */
enum cfg_need { NEED_NO, NEED_ALWAYS, NEED_WEBHOOKS };

struct config_var {
    const char *env;
    enum cfg_type type;
    enum cfg_need need;
    const char *fallback;
    size_t offset;
    int64_t min;
    int64_t max;
};

#define VAR(env, type, need, fallback, field, min, max)                                            \
    {                                                                                              \
        env, type, need, fallback, offsetof(struct config, field), min, max                        \
    }

static const struct config_var config_vars[] = {
    VAR("DATABASE_URL", CFG_SECRET, NEED_ALWAYS, NULL, database_url, 0, 0),
    VAR("PORT", CFG_INT, NEED_NO, "8080", port, 1, 65535),
    VAR("BIND_ADDRESS", CFG_STR, NEED_NO, "0.0.0.0", bind_address, 0, 0),
    VAR("PUBLIC_BASE_URL", CFG_STR, NEED_WEBHOOKS, NULL, public_base_url, 0, 0),
    VAR("SALESFORCE_ORG_ID", CFG_STR, NEED_WEBHOOKS, NULL, salesforce_org_id, 0, 0),
    VAR("SALESFORCE_WEBHOOK_TOKEN", CFG_SECRET, NEED_NO, NULL, salesforce_webhook_token, 0, 0),
    VAR("HUBSPOT_CLIENT_SECRET", CFG_SECRET, NEED_WEBHOOKS, NULL, hubspot_client_secret, 0, 0),
    VAR("HUBSPOT_APP_ID", CFG_STR, NEED_NO, NULL, hubspot_app_id, 0, 0),
    VAR("HUBSPOT_ALLOW_LEGACY_SIGNATURES", CFG_BOOL, NEED_NO, "false",
        hubspot_allow_legacy_signatures, 0, 0),
    VAR("WORKER_THREADS", CFG_INT, NEED_NO, "8", worker_threads, 0, 256),
    VAR("LOG_LEVEL", CFG_STR, NEED_NO, "info", log_level, 0, 0),
    VAR("HTTP_THREADS", CFG_INT, NEED_NO, "0", http_threads, 0, 256),
    VAR("HTTP_REQUEST_TIMEOUT_MS", CFG_INT, NEED_NO, "10000", http_request_timeout_ms, 1000,
        600000),
    VAR("INGEST_COMMIT_THREADS", CFG_INT, NEED_NO, "1", ingest_commit_threads, 0, 64),
    VAR("INGEST_SPLIT_BURST_HOLD_MS", CFG_INT, NEED_NO, "2000", ingest_split_burst_hold_ms, 0,
        60000),
    VAR("QUEUE_CLAIM_BATCH", CFG_INT, NEED_NO, "20", claim_batch, 1, 1000),
    VAR("QUEUE_CLAIM_BATCH_MAX", CFG_INT, NEED_NO, "200", claim_batch_max, 1, 1000),
    VAR("QUEUE_LEASE_SECONDS", CFG_INT, NEED_NO, "120", lease_seconds, 1, 86400),
    VAR("QUEUE_POLL_INTERVAL_MS", CFG_INT, NEED_NO, "2000", poll_interval_ms, 10, 600000),
    VAR("QUEUE_MAX_ATTEMPTS", CFG_INT, NEED_NO, "10", max_attempts, 1, 1000),
    VAR("QUEUE_RETRY_WINDOW_HOURS", CFG_INT, NEED_NO, "24", retry_window_hours, 0, 8760),
    VAR("QUEUE_RETRY_BASE_MS", CFG_INT, NEED_NO, "1000", retry_base_ms, 1, 86400000),
    VAR("QUEUE_RETRY_MAX_MS", CFG_INT, NEED_NO, "3600000", retry_max_ms, 1, 86400000),
    VAR("QUEUE_DONE_RETENTION_HOURS", CFG_INT, NEED_NO, "168", done_retention_hours, 0, 87600),
    VAR("SHUTDOWN_GRACE_SECONDS", CFG_INT, NEED_NO, "8", shutdown_grace_seconds, 1, 3600),
    VAR("SALESFORCE_MAX_BODY_BYTES", CFG_INT, NEED_NO, "10485760", sf_body_limit_bytes, 1024,
        1073741824),
    VAR("HUBSPOT_MAX_BODY_BYTES", CFG_INT, NEED_NO, "1048576", hs_body_limit_bytes, 1024,
        1073741824),
    VAR("SALESFORCE_WEBHOOK_PATH", CFG_STR, NEED_NO, "/webhooks/salesforce",
        salesforce_webhook_path, 0, 0),
    VAR("HUBSPOT_WEBHOOK_PATH", CFG_STR, NEED_NO, "/webhooks/hubspot", hubspot_webhook_path, 0, 0),
    VAR("SALESFORCE_LOGIN_URL", CFG_STR, NEED_NO, "https://login.salesforce.com",
        salesforce_login_url, 0, 0),
    VAR("SALESFORCE_CLIENT_ID", CFG_STR, NEED_NO, NULL, salesforce_client_id, 0, 0),
    VAR("SALESFORCE_CLIENT_SECRET", CFG_SECRET, NEED_NO, NULL, salesforce_client_secret, 0, 0),
    VAR("SALESFORCE_REFRESH_TOKEN", CFG_SECRET, NEED_NO, NULL, salesforce_refresh_token, 0, 0),
    VAR("SALESFORCE_USERNAME", CFG_STR, NEED_NO, NULL, salesforce_username, 0, 0),
    VAR("SALESFORCE_PRIVATE_KEY_FILE", CFG_STR, NEED_NO, NULL, salesforce_private_key_file, 0, 0),
    VAR("SALESFORCE_API_VERSION", CFG_STR, NEED_NO, "v60.0", salesforce_api_version, 0, 0),
    VAR("HUBSPOT_API_BASE_URL", CFG_STR, NEED_NO, "https://api.hubapi.com", hubspot_api_base_url, 0,
        0),
    VAR("HUBSPOT_ACCESS_TOKEN", CFG_SECRET, NEED_NO, NULL, hubspot_access_token, 0, 0),
    VAR("HUBSPOT_DEVELOPER_API_KEY", CFG_SECRET, NEED_NO, NULL, hubspot_developer_api_key, 0, 0),
    VAR("MAPPINGS_FILE", CFG_STR, NEED_NO, NULL, mappings_file, 0, 0),
    /* HubSpot ties the number of deal pipelines to the subscription (the per-tier numbers are
     * UNVERIFIED in the reference): an operator sets theirs. */
    VAR("SYNC_PIPELINE_LIMIT", CFG_INT, NEED_NO, "15", pipeline_limit, 1, 1000),
    VAR("COMPANY_SYNC", CFG_BOOL, NEED_NO, "true", company_sync, 0, 0),
    VAR("LIFECYCLE_STAGE_SYNC", CFG_BOOL, NEED_NO, "true", lifecycle_stage_sync, 0, 0),
    VAR("COMPANY_MATCH_DOMAIN", CFG_BOOL, NEED_NO, "true", company_match_domain, 0, 0),
    VAR("DELETE_POLL_INTERVAL_SECONDS", CFG_INT, NEED_NO, "60", delete_poll_seconds, 1, 86400),
    VAR("CONTACT_ROLE_POLL_INTERVAL_SECONDS", CFG_INT, NEED_NO, "60", contact_role_poll_seconds, 1,
        86400),
    VAR("RECONCILE_INTERVAL_SECONDS", CFG_INT, NEED_NO, "900", reconcile_interval_seconds, 0,
        604800),
    VAR("DEAD_RETRY_INTERVAL_SECONDS", CFG_INT, NEED_NO, "1800", dead_retry_interval_seconds, 0,
        604800),
    VAR("API_TIMEOUT_MS", CFG_INT, NEED_NO, "30000", http_timeout_ms, 100, 600000),
    VAR("HUBSPOT_OPPORTUNITY_ID_PROPERTY", CFG_STR, NEED_NO, "dealsync_salesforce_opportunity_id",
        hs_opportunity_id_property, 0, 0),
    VAR("HUBSPOT_CONTACT_ID_PROPERTY", CFG_STR, NEED_NO, "salesforcecontactid",
        hs_contact_id_property, 0, 0),
    VAR("HUBSPOT_ACCOUNT_ID_PROPERTY", CFG_STR, NEED_NO, "salesforceaccountid",
        hs_account_id_property, 0, 0),
    VAR("SALESFORCE_DEAL_ID_FIELD", CFG_STR, NEED_NO, "HubSpot_Deal_Id__c", sf_deal_id_field, 0, 0),
    VAR("ROLLUP_NUM_DEALS_PROPERTY", CFG_STR, NEED_NO, "dealsync_num_associated_deals",
        rollup_num_deals_property, 0, 0),
    VAR("ROLLUP_FIRST_DEAL_CREATED_PROPERTY", CFG_STR, NEED_NO, "dealsync_first_deal_created_date",
        rollup_first_deal_created_property, 0, 0),
    VAR("ROLLUP_RECENT_CLOSE_DATE_PROPERTY", CFG_STR, NEED_NO, "dealsync_recent_deal_close_date",
        rollup_recent_close_date_property, 0, 0),
    VAR("ROLLUP_RECENT_AMOUNT_PROPERTY", CFG_STR, NEED_NO, "dealsync_recent_deal_amount",
        rollup_recent_amount_property, 0, 0),
    VAR("ROLLUP_TOTAL_REVENUE_PROPERTY", CFG_STR, NEED_NO, "dealsync_total_revenue",
        rollup_total_revenue_property, 0, 0),
    VAR("HUBSPOT_BURST_LIMIT", CFG_INT, NEED_NO, "190", hs_burst_limit, 1, 100000),
    VAR("HUBSPOT_DAILY_LIMIT", CFG_INT, NEED_NO, "0", hs_daily_limit, 0, 100000000),
    VAR("HUBSPOT_SEARCH_PER_SECOND", CFG_INT, NEED_NO, "5", hs_search_per_second, 1, 1000),
    VAR("SALESFORCE_API_BUDGET_PERCENT", CFG_INT, NEED_NO, "50", sf_budget_percent, 1, 100),
    VAR("API_BUDGET_MAX_WAIT_MS", CFG_INT, NEED_NO, "10000", budget_max_wait_ms, 0, 600000),
    VAR("API_BUDGET_PROBE_SECONDS", CFG_INT, NEED_NO, "60", budget_probe_seconds, 1, 86400),
    VAR("API_CACHE_SECONDS", CFG_INT, NEED_NO, "300", api_cache_seconds, 0, 86400),
    VAR("API_BUDGET_PACE_CLAIMS", CFG_BOOL, NEED_NO, "false", budget_pace_claims, 0, 0),
    VAR("SYNC_GATHER_MS", CFG_INT, NEED_NO, "250", sync_gather_ms, 0, 10000),
    VAR("HUBSPOT_MAX_TIMESTAMP_AGE_MS", CFG_INT, NEED_NO, "300000", hs_max_timestamp_age_ms, 0,
        86400000),
    VAR("ADMIN_TOKEN", CFG_SECRET, NEED_NO, NULL, admin_token, 0, 0),
};

#define VAR_COUNT (sizeof(config_vars) / sizeof(config_vars[0]))

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Checks that need more than one variable or a format; appends problems to errors. */
static int validate(const struct config *cfg, bool need_webhooks)
{
    int problems = 0;
    enum log_level level;
    if (!log_parse_level(cfg->log_level, &level)) {
        fprintf(stderr, "config: LOG_LEVEL must be one of debug, info, warn, error\n");
        problems++;
    }
    if (cfg->public_base_url) {
        const char *u = cfg->public_base_url;
        if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0) {
            fprintf(stderr, "config: PUBLIC_BASE_URL must start with https:// (or http:// "
                            "behind a TLS proxy)\n");
            problems++;
        }
    }
    if (cfg->salesforce_org_id) {
        size_t n = strlen(cfg->salesforce_org_id);
        bool alnum = n > 0;
        for (size_t i = 0; i < n; i++)
            if (!((cfg->salesforce_org_id[i] >= '0' && cfg->salesforce_org_id[i] <= '9') ||
                  (cfg->salesforce_org_id[i] >= 'a' && cfg->salesforce_org_id[i] <= 'z') ||
                  (cfg->salesforce_org_id[i] >= 'A' && cfg->salesforce_org_id[i] <= 'Z')))
                alnum = false;
        if ((n != 15 && n != 18) || !alnum) {
            fprintf(stderr, "config: SALESFORCE_ORG_ID must be a 15- or 18-character "
                            "Salesforce id\n");
            problems++;
        }
    }
    if (cfg->salesforce_webhook_path[0] != '/' || cfg->hubspot_webhook_path[0] != '/' ||
        strcmp(cfg->salesforce_webhook_path, cfg->hubspot_webhook_path) == 0) {
        fprintf(stderr, "config: SALESFORCE_WEBHOOK_PATH and HUBSPOT_WEBHOOK_PATH must be two "
                        "different paths starting with /\n");
        problems++;
    }
    if (cfg->salesforce_client_id && !config_has_salesforce_api(cfg)) {
        fprintf(stderr, "config: SALESFORCE_CLIENT_ID needs either SALESFORCE_CLIENT_SECRET and "
                        "SALESFORCE_REFRESH_TOKEN, or SALESFORCE_USERNAME and "
                        "SALESFORCE_PRIVATE_KEY_FILE\n");
        problems++;
    }
    if (cfg->admin_token && strlen(cfg->admin_token) < 16) {
        fprintf(stderr, "config: ADMIN_TOKEN must be at least 16 characters (it guards /admin)\n");
        problems++;
    }
    /* 0 is below both minimums: a value that failed to parse, already reported. */
    if (cfg->retry_base_ms > 0 && cfg->retry_max_ms > 0 && cfg->retry_max_ms < cfg->retry_base_ms) {
        fprintf(stderr, "config: QUEUE_RETRY_MAX_MS must not be below QUEUE_RETRY_BASE_MS\n");
        problems++;
    }
    (void)need_webhooks;
    return problems;
}

enum err config_load(struct config *cfg, bool need_webhooks)
{
    memset(cfg, 0, sizeof(*cfg));
    int problems = 0;
    for (size_t i = 0; i < VAR_COUNT; i++) {
        const struct config_var *v = &config_vars[i];
        const char *raw = getenv(v->env);
        if (raw && *raw == '\0')
            raw = NULL;
        bool required = v->need == NEED_ALWAYS || (v->need == NEED_WEBHOOKS && need_webhooks);
        if (!raw && required) {
            fprintf(stderr, "config: %s is required\n", v->env);
            problems++;
            continue;
        }
        if (!raw)
            raw = v->fallback;
        char *field = (char *)cfg + v->offset;
        switch (v->type) {
        case CFG_STR:
        case CFG_SECRET:
            *(char **)field = raw ? xstrdup(raw) : NULL;
            break;
        case CFG_INT: {
            int64_t n;
            if (!util_parse_i64(raw, &n) || n < v->min || n > v->max) {
                fprintf(stderr, "config: %s must be a whole number from %lld to %lld\n", v->env,
                        (long long)v->min, (long long)v->max);
                problems++;
                break;
            }
            *(int *)field = (int)n;
            break;
        }
        case CFG_BOOL:
            if (!parse_bool(raw, (bool *)field)) {
                fprintf(stderr, "config: %s must be true or false\n", v->env);
                problems++;
            }
            break;
        }
    }
    /* Formats and combinations are checked even when values are missing, so that one start
     * lists every problem of every kind. */
    problems += validate(cfg, need_webhooks);
    if (problems) {
        fprintf(stderr, "config: %d problem%s; see docs/configuration.md\n", problems,
                problems == 1 ? "" : "s");
        config_clear(cfg);
        return ERR_CONFIG;
    }
    return ERR_OK;
}

bool config_has_salesforce_api(const struct config *cfg)
{
    bool refresh = cfg->salesforce_client_secret && cfg->salesforce_refresh_token;
    bool jwt = cfg->salesforce_username && cfg->salesforce_private_key_file;
    return cfg->salesforce_client_id && (refresh || jwt);
}

bool config_has_hubspot_api(const struct config *cfg)
{
    return cfg->hubspot_access_token != NULL;
}

int config_port(void)
{
    int64_t port;
    const char *raw = getenv("PORT");
    if (!raw || !util_parse_i64(raw, &port) || port < 1 || port > 65535)
        return 8080;
    return (int)port;
}

void config_clear(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < VAR_COUNT; i++) {
        const struct config_var *v = &config_vars[i];
        if (v->type == CFG_STR || v->type == CFG_SECRET) {
            char **field = (char **)((char *)cfg + v->offset);
            free(*field);
            *field = NULL;
        }
    }
    memset(cfg, 0, sizeof(*cfg));
}

void config_log(const struct config *cfg, enum log_level level)
{
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < VAR_COUNT; i++) {
        const struct config_var *v = &config_vars[i];
        const char *field = (const char *)cfg + v->offset;
        if (i)
            buf_append_str(&b, " ");
        buf_printf(&b, "%s=", v->env);
        switch (v->type) {
        case CFG_STR:
            buf_append_str(&b, *(char *const *)field ? *(char *const *)field : "(unset)");
            break;
        case CFG_SECRET:
            buf_append_str(&b, *(char *const *)field ? "***" : "(unset)");
            break;
        case CFG_INT:
            buf_printf(&b, "%d", *(const int *)field);
            break;
        case CFG_BOOL:
            buf_append_str(&b, *(const bool *)field ? "true" : "false");
            break;
        }
    }
    log_emit(level, "effective configuration", LOG_STR("config", b.data), LOG_END);
    buf_clear(&b);
}
