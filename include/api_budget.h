/* api_budget.h - one API budget for every worker of every dealsync process on the database
 * (issue 9). HubSpot calls are paced through the api_budget table so that together they stay
 * inside the private app's rolling 10-second window, the day, and search's per-second limit;
 * the budget corrects itself from HubSpot's X-HubSpot-RateLimit-* headers. Salesforce's org
 * usage (Sforce-Limit-Info) is recorded so that, above 75% of dealsync's share, workers claim
 * only live work. */
#ifndef SVC_API_BUDGET_H
#define SVC_API_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "compiler.h"
#include "config.h"
#include "err.h"
#include "http_client.h"

/* One per worker (its own database connection, opened on first use; the worker's connection
 * may be inside a transaction while the handler calls an API), shared with the worker's helper
 * threads (sync_fanout.h): every call below is thread-safe on one budget. */
struct api_budget;

/* No I/O. cfg is borrowed and must outlive the budget. Caller frees with api_budget_free. */
struct api_budget *api_budget_new(const struct config *cfg);
/* Closes the connection and frees. NULL is a no-op. */
void api_budget_free(struct api_budget *b);

/* The log entry of one call taken from the budget (caller's storage), for api_budget_hs_answered:
 * at is the entry as PostgreSQL printed it, "" when nothing was reserved. */
struct api_budget_entry {
    char at[64];
    bool is_search;
};

/* Before one HubSpot call: reserves a slot in the shared budget (its log entry in *entry) and
 * sleeps until it comes. ERR_OK: send now. ERR_RATE_LIMIT: do not send; *retry_ms is when to try
 * again (the day is used up, the wait would exceed API_BUDGET_MAX_WAIT_MS, or the process is
 * stopping). ERR_DB: the budget could not be read (logged); the caller may send anyway. */
enum err api_budget_hs_take(struct api_budget *b, bool is_search, int64_t *retry_ms,
                            struct api_budget_entry *entry) WARN_UNUSED;

/* After the answer to (or the failure of) the call whose take filled entry: its entry in the
 * shared log becomes the answer's time, the latest HubSpot can have counted it (until then it
 * stands at its slot plus an allowance for the way there), and *entry is emptied. Nothing when
 * entry is empty. Errors are logged. */
void api_budget_hs_answered(struct api_budget *b, struct api_budget_entry *entry);

/* After a 429 under the burst or search limit: sleeps ms (HubSpot's Retry-After; 0 when it gave
 * none) and returns true, so that the caller sends again, through api_budget_hs_take, without
 * giving its work back. False without sleeping when ms exceeds API_BUDGET_MAX_WAIT_MS, or when
 * the process starts stopping meanwhile: the caller gives up (the record is deferred). */
bool api_budget_hs_retry_wait(struct api_budget *b, int64_t ms) WARN_UNUSED;

/* How long until `calls` HubSpot calls could go out at once (0: now; at most one 10-second
 * window), reserving nothing. Workers wait that long before claiming while the window is full
 * (sync_claim_delay_ms). 0 when the budget cannot be read. */
int64_t api_budget_hs_wait_ms(struct api_budget *b, int calls);

/* After each HubSpot answer: corrects the shared budget from the rate-limit headers (resp) and a
 * 429's policyName (policy, may be NULL). Writes to the database only when the answer says the
 * budget is tighter than assumed, or at most once a second. Errors are logged, not returned. */
void api_budget_hs_observe(struct api_budget *b, bool is_search, const struct http_response *resp,
                           const char *policy);

/* After each Salesforce answer: records api-usage=used/max (limit_info, may be NULL). */
void api_budget_sf_observe(struct api_budget *b, const char *limit_info);

/* Whether Salesforce usage is above 75% of dealsync's share (SALESFORCE_API_BUDGET_PERCENT of
 * the org's allocation), as last observed by any process: workers then claim only live work (no
 * import, no reconciliation sweep, no automatic retries). db: the caller's connection. */
enum err api_budget_sf_live_only(PGconn *db, const struct config *cfg, bool *live_only) WARN_UNUSED;

/* True when this process should refresh the Salesforce usage now (live-only mode and nothing has
 * observed it for API_BUDGET_PROBE_SECONDS): at most one caller across all processes gets true
 * per period. The caller then makes one cheap Salesforce call (whose answer is observed). */
bool api_budget_sf_probe_due(PGconn *db, const struct config *cfg);

/* Counts one API call in dealsync_api_calls_total{api,endpoint,status}; status 0 = no answer.
 * Thread-safe. */
void api_budget_count_call(const char *api, const char *path, long status);

/* Wakes every sleeping api_budget_hs_take (they return ERR_RATE_LIMIT): the process is
 * stopping. Thread-safe. */
void api_budget_cancel_waits(void);
/* Lets takes wait again (a pool started after a stop in the same process). Thread-safe. */
void api_budget_resume_waits(void);

/* ---- Pure helpers (thread-safe) ------------------------------------------------------------ */

/* "api-usage=18/5000" (other entries may precede or follow, comma separated) -> used, max.
 * False when there is no api-usage entry. */
bool api_budget_parse_limit_info(const char *s, int64_t *used, int64_t *max);

/* A metrics label for a request path: the query dropped and record ids replaced by "{id}"
 * ("/crm/v3/objects/deals/123" -> "/crm/v3/objects/deals/{id}"). Caller frees. */
char *api_budget_endpoint(const char *path);

#endif
