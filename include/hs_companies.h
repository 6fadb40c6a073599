/* hs_companies.h - a Salesforce account becomes the HubSpot company a synced deal is primarily
 * associated with: found by the account id stored on companies, created from the account when
 * company sync is on. Calls use the caller's clients and connection (one per worker). */
#ifndef SVC_HS_COMPANIES_H
#define SVC_HS_COMPANIES_H

#include <stdbool.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "config.h"
#include "err.h"
#include "hs_client.h"

/* account: the opportunity's Account as SOQL returns it ({Id, Name, Website, Phone, Industry,
 * BillingCity, BillingCountry}; borrowed); sf_contact_ids: the Salesforce ids of the
 * opportunity's contact roles (array of strings, may be NULL). Finds the account's company as
 * HubSpot's account sync would, in this order: record_link; a company holding the account id
 * (cfg->hs_account_id_property); the company already associated with those contacts' HubSpot
 * contacts; a company with the account website's domain (cfg->company_match_domain). Only a
 * company holding no other account's id is taken, and the account id is stored on it. Else the
 * company is created. The link is saved. One worker at a time per account (an advisory lock on
 * db), so two opportunities of one new account get one company. On ERR_OK *company_id (caller
 * frees) is set and *how (static) says how it was found: "linked", "account id", "contacts",
 * "domain" or "created". */
enum err hs_companies_find_or_create(struct hs_client *hs, PGconn *db, const struct config *cfg,
                                     const cJSON *account, const cJSON *sf_contact_ids,
                                     char **company_id, const char **how) WARN_UNUSED;

/* The company properties for an account: name, domain (from Website), phone, industry, city,
 * country, and the account id in cfg->hs_account_id_property. Caller deletes. Pure. */
cJSON *hs_company_properties(const struct config *cfg, const cJSON *account);

/* "https://www.acme.test/about" -> "acme.test". Caller frees; NULL for a blank website. Pure. */
char *hs_company_domain(const char *website);

#endif
