/* sync.c - the per-worker sync context: one http_client and one client per API, built in the
 * worker thread, so no handle is ever shared between threads. */
#include "sync.h"

#include <pthread.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_cache.h"
#include "log.h"
#include "util.h"

enum err sync_sf_client_new(const struct config *cfg, struct http_client *hc,
                            struct sf_client **out)
{
    if (!config_has_salesforce_api(cfg))
        return ERR_CONFIG;
    bool jwt = cfg->salesforce_username && cfg->salesforce_private_key_file &&
               !cfg->salesforce_refresh_token;
    struct sf_client_options so = {0};
    so.flow = jwt ? SF_AUTH_JWT_BEARER : SF_AUTH_REFRESH_TOKEN;
    so.login_url = cfg->salesforce_login_url;
    so.client_id = cfg->salesforce_client_id;
    so.client_secret = cfg->salesforce_client_secret;
    so.refresh_token = cfg->salesforce_refresh_token;
    so.username = cfg->salesforce_username;
    so.private_key_file = cfg->salesforce_private_key_file;
    so.api_version = cfg->salesforce_api_version;
    return sf_client_new(&so, hc, out);
}

/* The clients of ctx over a new http_client, paced through ctx->budget. */
static void clients_new(struct sync_ctx *ctx)
{
    const struct config *cfg = ctx->cfg;
    struct http_client_options hopt = {0};
    hopt.connect_timeout_ms = 10000;
    hopt.timeout_ms = cfg->http_timeout_ms;
    ctx->http = http_client_new(&hopt);
    if (config_has_salesforce_api(cfg) && sync_sf_client_new(cfg, ctx->http, &ctx->sf) != ERR_OK)
        ctx->sf = NULL;
    if (ctx->sf)
        sf_client_set_budget(ctx->sf, ctx->budget);
    if (config_has_hubspot_api(cfg)) {
        struct hs_client_options ho = {0};
        ho.base_url = cfg->hubspot_api_base_url;
        ho.access_token = cfg->hubspot_access_token;
        if (hs_client_new(&ho, ctx->http, &ctx->hs) != ERR_OK)
            ctx->hs = NULL;
        if (ctx->hs)
            hs_client_set_budget(ctx->hs, ctx->budget);
    }
}

void *sync_ctx_new(const struct config *cfg, void *arg)
{
    const struct sync_shared *shared = arg;
    struct sync_ctx *ctx = xcalloc(1, sizeof(*ctx));
    ctx->cfg = cfg;
    ctx->mappings = shared ? shared->mappings : NULL;
    ctx->budget = api_budget_new(cfg);
    ctx->describe = sf_describe_new();
    clients_new(ctx);
    return ctx;
}

struct sync_ctx *sync_ctx_helper(struct sync_ctx *ctx, size_t i)
{
    if (!ctx->helpers[i]) {
        struct sync_ctx *h = xcalloc(1, sizeof(*h));
        h->cfg = ctx->cfg;
        h->mappings = ctx->mappings;
        h->budget = ctx->budget;
        h->is_helper = true;
        clients_new(h);
        ctx->helpers[i] = h;
    }
    return ctx->helpers[i];
}

void sync_ctx_free(void *arg)
{
    struct sync_ctx *ctx = arg;
    if (!ctx)
        return;
    for (size_t i = 0; i < SYNC_HELPERS; i++)
        sync_ctx_free(ctx->helpers[i]);
    sf_describe_free(ctx->describe);
    cJSON_Delete(ctx->hs_deal_defs);
    hs_client_free(ctx->hs);
    sf_client_free(ctx->sf);
    if (!ctx->is_helper)
        api_budget_free(ctx->budget);
    http_client_free(ctx->http);
    free(ctx);
}

void sync_budget_tick(void *arg, PGconn *db)
{
    struct sync_ctx *ctx = arg;
    if (!ctx->sf || !api_budget_sf_probe_due(db, ctx->cfg))
        return;
    /* Any answer carries Sforce-Limit-Info, which the client records in the budget. */
    cJSON *limits = NULL;
    if (sf_limits(ctx->sf, &limits) != ERR_OK)
        log_warn("cannot refresh salesforce api usage");
    cJSON_Delete(limits);
}

/* HubSpot calls a claimed batch makes in the Salesforce-to-HubSpot direction (read the deals,
 * upsert, companies, contacts, associations, roll-ups), about. */
#define BATCH_HS_CALLS 8

/* During a burst (the batch just handled held more than one record: changes are arriving
 * together) while HubSpot's calls are scarce (at least half of the 10-second window used, by
 * every worker of every process), a worker waits SYNC_GATHER_MS before its next claim, so the
 * changes that arrive meanwhile share one batch's calls instead of each claim taking the two or
 * three that arrived since the last: the faster a batch is handled, the smaller the next would
 * be. With room in the window the calls are not what limits, and the wait would only add to
 * every change's latency (a steady stream of 50 changes a second: docs/benchmarks.md), so a
 * worker claims at once, as it does after a lone change (a batch of one). */
int64_t sync_claim_delay_ms(void *arg)
{
    struct sync_ctx *ctx = arg;
    if (!ctx)
        return 0;
    bool is_burst = ctx->last_batch > 1 && ctx->cfg->sync_gather_ms > 0;
    ctx->last_batch = 0;
    if (!ctx->hs || !ctx->budget)
        return is_burst ? ctx->cfg->sync_gather_ms : 0;
    /* Half the window free: no wait for that many calls at once. */
    int half = ctx->cfg->hs_burst_limit / 2 > 1 ? ctx->cfg->hs_burst_limit / 2 : 1;
    int64_t gather =
        is_burst && api_budget_hs_wait_ms(ctx->budget, half) > 0 ? ctx->cfg->sync_gather_ms : 0;
    if (!ctx->cfg->budget_pace_claims)
        return gather;
    int64_t wait = api_budget_hs_wait_ms(ctx->budget, BATCH_HS_CALLS);
    return wait > gather ? wait : gather;
}

enum err sync_load_mappings(const struct config *cfg, struct mapping_set **out)
{
    char *text = NULL;
    if (cfg->mappings_file) {
        FILE *f = fopen(cfg->mappings_file, "rb");
        if (!f) {
            log_error("cannot read MAPPINGS_FILE", LOG_STR("path", cfg->mappings_file));
            return ERR_CONFIG;
        }
        struct buf b;
        buf_init(&b, 1024 * 1024);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            buf_append(&b, chunk, n);
        fclose(f);
        if (b.is_over_limit) {
            log_error("MAPPINGS_FILE is larger than 1 MiB", LOG_STR("path", cfg->mappings_file));
            buf_clear(&b);
            return ERR_CONFIG;
        }
        text = buf_steal(&b);
    }
    char *problems = NULL;
    enum err rc = mapping_set_new(text, out, &problems);
    if (rc != ERR_OK)
        log_error("invalid MAPPINGS_FILE", LOG_STR("path", cfg->mappings_file),
                  LOG_STR("problems", problems));
    free(problems);
    free(text);
    return rc;
}

#define DEAL_DEFS_KEY "hubspot/properties/deals"

/* Held while the definitions are read: workers that find no copy (all of them, when an import
 * starts) read them once between them, the others taking the copy it stored. */
static pthread_mutex_t deal_defs_fill = PTHREAD_MUTEX_INITIALIZER;

enum err sync_deal_property_defs_copy(struct sync_ctx *ctx, bool is_fresh, cJSON **defs)
{
    *defs = NULL;
    if (!is_fresh && api_cache_get(DEAL_DEFS_KEY, ctx->cfg->api_cache_seconds, defs))
        return ERR_OK;
    enum err rc = ERR_OK;
    pthread_mutex_lock(&deal_defs_fill);
    if (is_fresh || !api_cache_get(DEAL_DEFS_KEY, ctx->cfg->api_cache_seconds, defs)) {
        rc = hs_properties_list(ctx->hs, "deals", defs);
        if (rc == ERR_OK)
            api_cache_put(DEAL_DEFS_KEY, *defs);
    }
    pthread_mutex_unlock(&deal_defs_fill);
    return rc;
}

enum err sync_deal_property_defs(struct sync_ctx *ctx, const cJSON **defs)
{
    cJSON *copy = NULL;
    enum err rc = sync_deal_property_defs_copy(ctx, false, &copy);
    if (rc != ERR_OK)
        return rc;
    cJSON_Delete(ctx->hs_deal_defs);
    ctx->hs_deal_defs = copy;
    *defs = copy;
    return ERR_OK;
}
