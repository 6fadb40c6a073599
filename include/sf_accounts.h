/* sf_accounts.h - HubSpot company -> Salesforce Account for HubSpot-to-Salesforce deal sync
 * (issue 5): found by the account id stored on the company (then the record link), created
 * from the company when company sync is on. */
#ifndef SVC_SF_ACCOUNTS_H
#define SVC_SF_ACCOUNTS_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"
#include "hs_client.h"
#include "sync.h"

/* Resolves every company id (array of strings, borrowed) to an Account id. Accounts it
 * creates get the company's name, website/domain, phone, industry and address, and their id is
 * written back to the company (cfg->hs_account_id_property) and linked (kind "account").
 * On ERR_OK *accounts = {"company id": "001…"} and *reasons = {"company id": "why none"}
 * (caller deletes both). Errors: a transient API error or ERR_DB, to retry the whole batch. */
enum err sf_accounts_resolve(struct sync_ctx *ctx, PGconn *db, const cJSON *company_ids,
                             cJSON **accounts, cJSON **reasons) WARN_UNUSED;

/* sf_accounts_resolve in two steps, for a caller that reads the companies at the same time as
 * something else: the read (one HubSpot batch read; no database; *companies is cleared by the
 * caller with hs_batch_result_clear, and set on ERR_OK only) ... */
enum err sf_accounts_read_companies(struct sync_ctx *ctx, const cJSON *company_ids,
                                    struct hs_batch_result *companies) WARN_UNUSED;
/* ... then the rest for company_ids (borrowed; the companies read may hold others, which are
 * left alone). An account id in known ({"<18-char id>": true}, borrowed, may be NULL) is taken
 * to exist without asking Salesforce: the caller has just read an opportunity that belongs to
 * it. Results and errors as sf_accounts_resolve's. */
enum err sf_accounts_resolve_read(struct sync_ctx *ctx, PGconn *db, const cJSON *company_ids,
                                  const struct hs_batch_result *companies, const cJSON *known,
                                  cJSON **accounts, cJSON **reasons) WARN_UNUSED;

#endif
