/* hs_owners.c - the owner list, cached per process: both directions turn owners into e-mails
 * (or back) for every batch, and owners change far less often than deals. A miss in the cached
 * list is asked once (an owner added since the list was read); an e-mail HubSpot then confirms
 * has no owner is remembered as such for as long as the list is, instead of being asked again
 * for every batch (a Salesforce user with no HubSpot owner: one call per batch before). */
#include "hs_owners.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_cache.h"
#include "util.h"

#define CACHE_KEY "hubspot/owners"

/* Held while the list is read: workers that find no list (all of them, when an import starts)
 * read it once between them, the others taking the copy it stored. */
static pthread_mutex_t fill_lock = PTHREAD_MUTEX_INITIALIZER;

/* {"id": "email"} from the PublicOwner array. */
static cJSON *emails_of(const cJSON *owners)
{
    cJSON *map = cJSON_CreateObject();
    const cJSON *o;
    cJSON_ArrayForEach(o, owners)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        const char *email = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "email"));
        char text[32];
        if (cJSON_IsString(id))
            snprintf(text, sizeof(text), "%s", id->valuestring);
        else if (cJSON_IsNumber(id))
            snprintf(text, sizeof(text), "%.0f", id->valuedouble);
        else
            continue;
        if (email && *email && !cJSON_GetObjectItemCaseSensitive(map, text))
            cJSON_AddStringToObject(map, text, email);
    }
    return map;
}

static enum err fetch(struct hs_client *hs, cJSON **emails)
{
    cJSON *owners = NULL;
    enum err rc = hs_owners_list(hs, &owners);
    if (rc != ERR_OK)
        return rc;
    *emails = emails_of(owners);
    cJSON_Delete(owners);
    api_cache_put(CACHE_KEY, *emails);
    return ERR_OK;
}

static bool has_all(const cJSON *emails, const cJSON *ids)
{
    const cJSON *id;
    cJSON_ArrayForEach(id, ids)
    {
        if (cJSON_IsString(id) && !cJSON_GetObjectItemCaseSensitive(emails, id->valuestring))
            return false;
    }
    return true;
}

enum err hs_owners_emails(struct hs_client *hs, int cache_seconds, const cJSON *ids, cJSON **emails)
{
    cJSON *cached = NULL;
    if (api_cache_get(CACHE_KEY, cache_seconds, &cached) && has_all(cached, ids)) {
        *emails = cached;
        return ERR_OK;
    }
    cJSON_Delete(cached);
    cached = NULL;
    enum err rc = ERR_OK;
    pthread_mutex_lock(&fill_lock);
    /* Read by another worker while this one waited? */
    if (api_cache_get(CACHE_KEY, cache_seconds, &cached) && has_all(cached, ids)) {
        *emails = cached;
        cached = NULL;
    } else {
        rc = fetch(hs, emails);
    }
    pthread_mutex_unlock(&fill_lock);
    cJSON_Delete(cached);
    return rc;
}

/* The id of the owner whose e-mail is email in {"id": "email"}, or NULL (borrowed). */
static const char *id_of(const cJSON *emails, const char *email)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, emails)
    {
        if (cJSON_IsString(e) && strcasecmp(e->valuestring, email) == 0)
            return e->string;
    }
    return NULL;
}

enum err hs_owners_find_by_email(struct hs_client *hs, int cache_seconds, const char *email,
                                 char **owner_id)
{
    cJSON *emails = NULL;
    bool is_cached = api_cache_get(CACHE_KEY, cache_seconds, &emails);
    enum err rc = ERR_OK;
    if (!is_cached) {
        /* A list another worker stored while this one waited was read just now, as one read
         * here would be: is_cached stays false. */
        pthread_mutex_lock(&fill_lock);
        if (!api_cache_get(CACHE_KEY, cache_seconds, &emails))
            rc = fetch(hs, &emails);
        pthread_mutex_unlock(&fill_lock);
    }
    if (rc != ERR_OK)
        return rc;
    const char *id = id_of(emails, email);
    char *miss_key = xasprintf(CACHE_KEY "/missing/%s", email);
    for (char *c = miss_key; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    cJSON *miss = NULL;
    if (id) {
        *owner_id = xstrdup(id);
    } else if (api_cache_get(miss_key, cache_seconds, &miss)) {
        rc = ERR_NOT_FOUND; /* confirmed missing a moment ago */
    } else if (is_cached) { /* added since the list was read? */
        rc = hs_owner_find_by_email(hs, email, owner_id);
    } else {
        rc = ERR_NOT_FOUND;
    }
    if (rc == ERR_NOT_FOUND && !miss) {
        cJSON *yes = cJSON_CreateTrue();
        api_cache_put(miss_key, yes);
        cJSON_Delete(yes);
    }
    cJSON_Delete(miss);
    free(miss_key);
    cJSON_Delete(emails);
    return rc;
}
