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
 * holding the account id (packed searches of up to 100 ids; none while no company can hold an
 * account id dealsync has not linked: the first batch of the process checks that no account is
 * linked and no company holds an account id, one count search, and it then holds for the
 * process until hs_companies_note_unlinked_write); for an account none of whose contacts is linked
 * yet (else hs_companies_find_or_create looks at the contacts' companies first, and the account is
 * left to it), a company with the website's domain holding no other account (in the
 * same packed searches, when cfg->company_match_domain; the account id is then stored on it, one
 * batch update); else a new company (one batch create per 100). Each account found or created is
 * linked (record_link), so hs_companies_find_or_create then finds it without a call. The
 * accounts' find-or-create locks are held meanwhile, taken in id order. An account HubSpot
 * refused stays unlinked (hs_companies_find_or_create tries it alone). *resolved (may be NULL)
 * receives how many accounts were linked. Errors: a transient API error or ERR_DB, for the
 * whole batch. */
enum err hs_companies_resolve_batch(struct hs_client *hs, PGconn *db, const struct config *cfg,
                                    const cJSON *accounts, const cJSON *contacts,
                                    int *resolved) WARN_UNUSED;

/* Called when a write of an account id to a company may have left that company unlinked (the
 * write's answer lost, or the link not saved): every later batch of the process searches the
 * accounts' ids again. Call it before the account's lock is released. Thread-safe. */
void hs_companies_note_unlinked_write(void);

#endif
