/* sf_accounts.h - HubSpot company -> Salesforce Account for HubSpot-to-Salesforce deal sync
 * (issue 5): found by the account id stored on the company (then the record link), created
 * from the company when company sync is on. */
#ifndef SVC_SF_ACCOUNTS_H
#define SVC_SF_ACCOUNTS_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"
#include "sync.h"

/* Resolves every company id (array of strings, borrowed) to an Account id. Accounts it
 * creates get the company's name, website/domain, phone, industry and address, and their id is
 * written back to the company (cfg->hs_account_id_property) and linked (kind "account").
 * On ERR_OK *accounts = {"company id": "001…"} and *reasons = {"company id": "why none"}
 * (caller deletes both). Errors: a transient API error or ERR_DB, to retry the whole batch. */
enum err sf_accounts_resolve(struct sync_ctx *ctx, PGconn *db, const cJSON *company_ids,
                             cJSON **accounts, cJSON **reasons) WARN_UNUSED;

#endif
