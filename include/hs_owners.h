/* hs_owners.h - HubSpot owners as the sync needs them, through the per-process cache
 * (api_cache.h): the owner list is read at most once per cache period while every owner asked
 * for is in it, instead of once per batch. Thread-safe apart from the hs_client (the caller's). */
#ifndef SVC_HS_OWNERS_H
#define SVC_HS_OWNERS_H

#include <cjson/cJSON.h>

#include "compiler.h"
#include "err.h"
#include "hs_client.h"

/* {"owner id": "e-mail"} for every owner with an e-mail (caller deletes *emails). ids (array
 * of owner id strings, may be NULL) are the ones the caller needs: when one is missing from the
 * cached list, the list is read again. */
enum err hs_owners_emails(struct hs_client *hs, int cache_seconds, const cJSON *ids,
                          cJSON **emails) WARN_UNUSED;

/* The owner id (caller frees) of the owner with this e-mail (case-insensitive): from the
 * cached list, else one GET /crm/v3/owners?email= call. ERR_NOT_FOUND when there is none. */
enum err hs_owners_find_by_email(struct hs_client *hs, int cache_seconds, const char *email,
                                 char **owner_id) WARN_UNUSED;

#endif
