/* register.h - `dealsync register`: registers dealsync's webhook endpoints in both CRMs from the
 * configuration, idempotently: a Salesforce outbound message on Opportunity (Tooling API) and
 * the HubSpot app's webhook settings and deal subscriptions (webhooks API, developer key). */
#ifndef SVC_REGISTER_H
#define SVC_REGISTER_H

#include "compiler.h"
#include "config.h"
#include "err.h"
#include "http_client.h"
#include "mapping.h"
#include "sf_client.h"

/* Which systems to register with (a bit set). */
#define REGISTER_SALESFORCE 1u
#define REGISTER_HUBSPOT 2u
#define REGISTER_ALL (REGISTER_SALESFORCE | REGISTER_HUBSPOT)

/* The outbound message's API name (its FullName is "Opportunity." REGISTER_SF_MESSAGE_NAME). */
#define REGISTER_SF_MESSAGE_NAME "dealsync_opportunity"

/* What a registration did, counted per registered item (the outbound message, the webhook
 * settings, each subscription). */
struct register_summary {
    int created;
    int updated;
    int unchanged;
};

/* Writes one line to stderr for every setting that `targets` needs and cfg lacks, and returns
 * how many there were (0: registration may proceed). Thread-safe. */
int register_check_config(const struct config *cfg, unsigned targets);

/* PUBLIC_BASE_URL + SALESFORCE_WEBHOOK_PATH, plus "?token=<url-encoded token>" when
 * SALESFORCE_WEBHOOK_TOKEN is set; the outbound message's endpoint URL. Holds the token: never
 * log it. Caller frees. Thread-safe. */
char *register_sf_endpoint(const struct config *cfg);
/* PUBLIC_BASE_URL + HUBSPOT_WEBHOOK_PATH: the HubSpot app's target URL. Caller frees. */
char *register_hs_target(const struct config *cfg);

/* Ensures exactly one outbound message on Opportunity whose endpoint is register_sf_endpoint()
 * and whose fields include the standard ones and the Salesforce fields of mappings (may be
 * NULL): reuses one with our name or our endpoint, creates it otherwise. ERR_CONFLICT (logged,
 * nothing changed) when one with our name points elsewhere or lacks fields: the Tooling API
 * update is not used, an operator deletes it and runs again. hc is borrowed. Adds to *sum. */
enum err register_salesforce(const struct config *cfg, const struct mapping_set *mappings,
                             struct http_client *hc, struct register_summary *sum) WARN_UNUSED;

/* Ensures the HubSpot app's webhook settings (target URL, maxConcurrentRequests) and active
 * subscriptions for deal.creation, deal.deletion, deal.associationChange and
 * deal.propertyChange of every mapped deal property; existing subscriptions are reused (an
 * inactive one is activated). hc is borrowed. Adds to *sum. */
enum err register_hubspot(const struct config *cfg, const struct mapping_set *mappings,
                          struct http_client *hc, struct register_summary *sum) WARN_UNUSED;

/* For `dealsync doctor`, changing nothing. ERR_OK with *problem NULL when an outbound message
 * on Opportunity sends to register_sf_endpoint() with every needed field (*message: its
 * "Opportunity.<Name>", caller frees); ERR_OK with *problem (caller frees) saying what is
 * wrong otherwise; another error when Salesforce could not be asked. */
enum err register_check_salesforce(const struct config *cfg, const struct mapping_set *mappings,
                                   struct sf_client *sf, char **problem,
                                   char **message) WARN_UNUSED;
/* Likewise for the HubSpot app: its target URL is register_hs_target() and every wanted
 * subscription is active. */
enum err register_check_hubspot(const struct config *cfg, const struct mapping_set *mappings,
                                struct http_client *hc, char **problem) WARN_UNUSED;

/* The whole subcommand: checks the configuration (ERR_CONFIG, every problem on stderr), loads
 * the mappings, registers with each target and prints a summary on stdout. Runs in the main
 * thread; curl_global_init must have run. */
enum err register_run(const struct config *cfg, unsigned targets) WARN_UNUSED;

#endif
