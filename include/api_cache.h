/* api_cache.h - a per-process cache of API answers that rarely change (HubSpot property
 * definitions, the owner list), shared by the workers of one process, each entry kept for
 * API_CACHE_SECONDS. It saves calls that every batch would otherwise repeat (issue 9). All
 * functions are thread-safe. */
#ifndef SVC_API_CACHE_H
#define SVC_API_CACHE_H

#include <stdbool.h>

#include <cjson/cJSON.h>

/* A copy of the value stored under key if it was stored less than max_age_s seconds ago
 * (caller deletes *value); false otherwise (also when max_age_s is 0: caching off). */
bool api_cache_get(const char *key, int max_age_s, cJSON **value);

/* Stores a copy of value under key (replacing an older one). */
void api_cache_put(const char *key, const cJSON *value);

/* Forgets key (after dealsync changed what it holds). */
void api_cache_forget(const char *key);

#endif
