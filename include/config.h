/* config.h - dealsync's settings, read once from the environment, validated, then read-only. */
#ifndef SVC_CONFIG_H
#define SVC_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "err.h"
#include "log.h"

/* Plain data. Strings are owned by the struct (config_clear frees them); NULL when unset. */
struct config {
    char *database_url;
    int port;
    char *bind_address;
    char *public_base_url;
    char *salesforce_org_id;
    char *salesforce_webhook_token;
    char *hubspot_client_secret;
    char *hubspot_app_id;
    bool hubspot_allow_legacy_signatures;
    int worker_threads;
    char *log_level;

    /* Queue tuning. */
    int http_threads;
    int http_request_timeout_ms; /* one request, headers and body, from its first byte */
    int ingest_commit_threads;   /* connections of each group committer (HubSpot bodies, Salesforce
                                  * events) of the webhook ack path; 0: one commit each */
    int ingest_split_burst_hold_ms; /* a burst's split waits up to this per batch; 0: never */
    int claim_batch;
    int claim_batch_max; /* a worker's claim grows toward this while its claims come back full */
    int lease_seconds;
    int poll_interval_ms;
    int max_attempts;
    int retry_window_hours; /* transient failures retry past max_attempts while this young */
    int retry_base_ms;
    int retry_max_ms;
    int done_retention_hours;
    int shutdown_grace_seconds;
    int sf_body_limit_bytes;
    int hs_body_limit_bytes;
    int hs_max_timestamp_age_ms;
    char *salesforce_webhook_path;
    char *hubspot_webhook_path;

    /* Salesforce API (issue 4): refresh-token flow (client secret + refresh token) or JWT bearer
     * flow (username + private key file). */
    char *salesforce_login_url;
    char *salesforce_client_id;
    char *salesforce_client_secret;
    char *salesforce_refresh_token;
    char *salesforce_username;
    char *salesforce_private_key_file;
    char *salesforce_api_version;
    /* HubSpot API. */
    char *hubspot_api_base_url;
    char *hubspot_access_token;
    char *hubspot_developer_api_key;
    char *admin_token; /* ADMIN_TOKEN: the /admin page and its API; off when unset */

    /* Sync behaviour. */
    char *mappings_file;
    int pipeline_limit;
    bool company_sync;
    bool lifecycle_stage_sync; /* contacts' lifecycle stage moves forward with their deals */
    bool company_match_domain; /* an account's company may be found by its website's domain */
    int delete_poll_seconds;
    int contact_role_poll_seconds;
    int reconcile_interval_seconds;  /* 0: no reconciliation sweeps */
    int dead_retry_interval_seconds; /* 0: transiently dead events are not retried */
    int http_timeout_ms;
    char *hs_opportunity_id_property; /* unique deal property holding the opportunity id */
    char *hs_contact_id_property;     /* contact property holding the Salesforce contact id */
    char *hs_account_id_property;     /* company property holding the Salesforce account id */
    char *sf_deal_id_field;           /* Opportunity external id field holding the deal id */
    char *rollup_num_deals_property;
    char *rollup_first_deal_created_property;
    char *rollup_recent_close_date_property;
    char *rollup_recent_amount_property;
    char *rollup_total_revenue_property;
    /* API budget (issue 9, api_budget.c) */
    int hs_burst_limit;       /* HubSpot calls per 10 s for the private app */
    int hs_daily_limit;       /* 0 = as HubSpot reports it */
    int hs_search_per_second; /* search's own limit */
    int sf_budget_percent;    /* share of the org's daily Salesforce allocation */
    int budget_max_wait_ms;   /* longest a worker waits for a slot before deferring */
    int budget_probe_seconds; /* refresh Salesforce usage this often while live-only */
    int api_cache_seconds;    /* property definitions and owners, per process (api_cache.c) */
    bool budget_pace_claims;  /* wait for HubSpot's window before claiming (sync_claim_delay_ms) */
    int sync_gather_ms;       /* during a burst, wait this long before claiming (sync.c) */
};

/* True when the Salesforce API is configured with either flow. */
bool config_has_salesforce_api(const struct config *cfg);
/* True when the HubSpot API is configured. */
bool config_has_hubspot_api(const struct config *cfg);

/* Reads every variable of the table from the environment into *cfg (zeroed first). On failure
 * writes one line per problem to stderr (all of them, not just the first) and returns
 * ERR_CONFIG; *cfg is then cleared. need_webhooks: the webhook secrets/ids are required
 * (`serve`) rather than optional (`worker`, `migrate`). */
enum err config_load(struct config *cfg, bool need_webhooks) WARN_UNUSED;

/* PORT alone (default 8080, or 8080 when invalid), for `dealsync healthcheck`, which must not
 * depend on the rest of the configuration being valid. */
int config_port(void);

/* Frees the strings; cfg may be reused with config_load. NULL is a no-op. */
void config_clear(struct config *cfg);

/* Logs the effective configuration once at level, secrets as "***". */
void config_log(const struct config *cfg, enum log_level level);

#endif
