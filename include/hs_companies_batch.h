/* hs_companies_batch.h - the companies of many accounts resolved at once, for a batch of
 * opportunities (an import fills batches of 100): the same matches as hs_companies_find_or_create
 * makes for one account, in a few batch calls instead of two or three calls per account. */
#ifndef SVC_HS_COMPANIES_BATCH_H
#define SVC_HS_COMPANIES_BATCH_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "config.h"
#include "err.h"
#include "hs_client.h"

/* accounts: {"account id (18)": Account as SOQL returns it ({Name, Website, ...})}, borrowed;
 * contacts: {"account id": ["salesforce contact id", ...]}, the contacts of the roles of the
 * account's opportunities (may be NULL). For every account not linked yet, in this order: a company
 * holding the account id (one search per 50 ids); for an account none of whose contacts is linked
 * yet (else hs_companies_find_or_create looks at the contacts' companies first, and the account is
 * left to it), a company with the website's domain holding no other account (one search per 50
 * domains, when cfg->company_match_domain; the account id is then stored on it, one batch
 * update); else a new company (one batch create per 100). Each account found or created is
 * linked (record_link), so hs_companies_find_or_create then finds it without a call. The
 * accounts' find-or-create locks are held meanwhile, taken in id order. An account HubSpot
 * refused stays unlinked (hs_companies_find_or_create tries it alone). *resolved (may be NULL)
 * receives how many accounts were linked. Errors: a transient API error or ERR_DB, for the
 * whole batch. */
enum err hs_companies_resolve_batch(struct hs_client *hs, PGconn *db, const struct config *cfg,
                                    const cJSON *accounts, const cJSON *contacts,
                                    int *resolved) WARN_UNUSED;

#endif
