/* setup.h - start-up checks and setup for the Salesforce-to-HubSpot sync: the unique deal
 * property holding the opportunity id, the contact/company id properties and dealsync's own
 * roll-up properties are created when missing; mappings naming a Salesforce field or HubSpot
 * property that does not exist are reported now rather than at the first sync. */
#ifndef SVC_SETUP_H
#define SVC_SETUP_H

#include "compiler.h"
#include "config.h"
#include "err.h"
#include "mapping.h"

/* Runs once in main before the workers start (own HTTP client; no threads). Does nothing when
 * either API is not configured. ERR_CONFIG (every problem logged) when the configuration
 * cannot work: a mapped field or property missing, a roll-up property read-only. An opportunity
 * id property without unique values is logged as an error but does not stop the start. Unreachable
 * APIs are logged as warnings and return ERR_OK: the webhook endpoints keep accepting events, and
 * the handlers report what fails. */
enum err setup_run(const struct config *cfg, const struct mapping_set *mappings) WARN_UNUSED;

/* Every mapped Salesforce field exists on Opportunity and every mapped HubSpot property on
 * deals: ERR_CONFIG (each miss logged, and listed in *problem when not NULL; caller frees)
 * when one does not. Also used by `dealsync doctor`. */
struct sf_client;
struct hs_client;
enum err setup_check_mappings(struct sf_client *sf, struct hs_client *hs,
                              const struct mapping_set *mappings, char **problem) WARN_UNUSED;

#endif
