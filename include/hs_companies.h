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
 * BillingCity, BillingCountry}; borrowed). Looks in record_link, then searches companies by
 * cfg->hs_account_id_property, then creates the company; the link is saved. On ERR_OK
 * *company_id (caller frees) and *is_created are set. */
enum err hs_companies_find_or_create(struct hs_client *hs, PGconn *db, const struct config *cfg,
                                     const cJSON *account, char **company_id,
                                     bool *is_created) WARN_UNUSED;

/* The company properties for an account: name, domain (from Website), phone, industry, city,
 * country, and the account id in cfg->hs_account_id_property. Caller deletes. Pure. */
cJSON *hs_company_properties(const struct config *cfg, const cJSON *account);

/* "https://www.acme.test/about" -> "acme.test". Caller frees; NULL for a blank website. Pure. */
char *hs_company_domain(const char *website);

#endif
