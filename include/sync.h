/* sync.h - what every sync handler shares: the per-worker context (its own HTTP transport and
 * API clients) and the process-wide, read-only pieces (configuration, field mappings). */
#ifndef SVC_SYNC_H
#define SVC_SYNC_H

#include <stdbool.h>

#include "api_budget.h"
#include "config.h"
#include "hs_client.h"
#include "http_client.h"
#include "mapping.h"
#include "sf_client.h"
#include "sf_describe.h"

/* Built once in main before the workers start; read-only afterwards (shared by all threads). */
struct sync_shared {
    const struct config *cfg;
    const struct mapping_set *mappings;
};

/* Helper contexts a worker keeps for the API calls it makes at the same time (sync_fanout.h). */
#define SYNC_HELPERS 2

/* One per worker thread; never shared. sf/hs are NULL when that API is not configured (the
 * handlers then dead-letter with the reason). */
struct sync_ctx {
    const struct config *cfg;
    const struct mapping_set *mappings;
    struct http_client *http;
    struct sf_client *sf;
    struct hs_client *hs;
    struct api_budget *budget;    /* paces hs, records sf's usage (api_budget.h) */
    struct sf_describe *describe; /* this worker's copy of the Opportunity describe */
    cJSON *hs_deal_defs;          /* the deal property definitions sync_deal_property_defs gave */
    size_t last_batch;            /* records of the batch this worker handled last */
    bool is_helper;               /* a helper: its budget is its worker's (borrowed) */
    struct sync_ctx *helpers[SYNC_HELPERS]; /* made on first use (sync_ctx_helper) */
};

/* The deal property definitions (GET /crm/v3/properties/deals): the copy every worker of the
 * process shares (api_cache.h), read again once older than API_CACHE_SECONDS. On ERR_OK *defs
 * is borrowed, valid until the next call or sync_ctx_free. */
enum err sync_deal_property_defs(struct sync_ctx *ctx, const cJSON **defs) WARN_UNUSED;
/* The same definitions as a copy the caller deletes: the shared one, or when is_fresh is true
 * read now (and shared from then on), for a value the shared copy has no option for. */
enum err sync_deal_property_defs_copy(struct sync_ctx *ctx, bool is_fresh,
                                      cJSON **defs) WARN_UNUSED;

/* A Salesforce client from the configuration (refresh-token flow, or JWT bearer when a username
 * and key file are set without a refresh token). ERR_CONFIG when the API is not configured.
 * hc is borrowed. On ERR_OK *out is freed with sf_client_free. */
enum err sync_sf_client_new(const struct config *cfg, struct http_client *hc,
                            struct sf_client **out) WARN_UNUSED;

/* worker_ctx_new_fn / worker_ctx_free_fn: arg is the struct sync_shared. sync_ctx_free also
 * frees the context's helpers. */
void *sync_ctx_new(const struct config *cfg, void *arg);
void sync_ctx_free(void *ctx);

/* Helper context i (< SYNC_HELPERS) of a worker's ctx, made on first use: its own http_client,
 * Salesforce and HubSpot clients (no network I/O until its first call), ctx's configuration,
 * mappings and API budget, no describe cache. Borrowed: ctx owns it and frees it. For
 * sync_fanout_run, which hands it to one thread at a time. */
struct sync_ctx *sync_ctx_helper(struct sync_ctx *ctx, size_t i);

/* worker_tick_fn for what the API budget needs besides the pollers: while Salesforce usage
 * keeps workers to live work, one worker of all processes refreshes the usage now and then. */
void sync_budget_tick(void *ctx, PGconn *db);

/* worker_claim_delay_fn: after a batch of more than one record while at least half of HubSpot's
 * window is used, SYNC_GATHER_MS (what arrives meanwhile shares the next batch's calls); with
 * API_BUDGET_PACE_CLAIMS, at least as long as HubSpot's window has no room for a batch's calls
 * (api_budget_hs_wait_ms), so that a worker claims when its calls can go and takes what arrived
 * meanwhile in the same batch. 0 otherwise. */
int64_t sync_claim_delay_ms(void *ctx);

/* Reads MAPPINGS_FILE (when set) and builds the mapping set. ERR_CONFIG with every problem
 * logged. On ERR_OK *out is freed with mapping_set_free. */
enum err sync_load_mappings(const struct config *cfg, struct mapping_set **out) WARN_UNUSED;

#endif
