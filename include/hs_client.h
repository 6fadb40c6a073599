/* hs_client.h - HubSpot CRM v3 client (objects, batch, search, associations v4, pipelines,
 * owners, properties) with a private-app access token. Not thread-safe: one per worker. */
#ifndef SVC_HS_CLIENT_H
#define SVC_HS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "compiler.h"
#include "err.h"
#include "http_client.h"

/* Strings borrowed for the hs_client_new call only (copied). */
struct hs_client_options {
    const char *base_url;     /* "https://api.hubapi.com", no trailing slash */
    const char *access_token; /* private-app token, sent as Bearer */
};

struct hs_client; /* base URL, token, borrowed http_client, last rate-limit hint */

/* ERR_CONFIG (logged) when an option is missing. hc is borrowed and must outlive the client.
 * On ERR_OK *out is freed with hs_client_free. No network I/O. */
enum err hs_client_new(const struct hs_client_options *opt, struct http_client *hc,
                       struct hs_client **out) WARN_UNUSED;
/* Wipes the token and frees. NULL is a no-op. */
void hs_client_free(struct hs_client *hs);

struct api_budget;
/* Paces every later call through budget (borrowed, must outlive the client; NULL stops
 * pacing): a call that would wait longer than the budget allows is not sent and fails with
 * ERR_RATE_LIMIT, its hint saying when to try again. With a budget, a call answered 429 under
 * the burst or search limit is sent again in place (at most twice, after its Retry-After when
 * that is within API_BUDGET_MAX_WAIT_MS) before it fails so. */
void hs_client_set_budget(struct hs_client *hs, struct api_budget *budget);

/* The retry hint (ms) of the last ERR_RATE_LIMIT / ERR_UPSTREAM answer, -1 when none. For a
 * 429 with policyName DAILY it is at least an hour. */
int64_t hs_retry_after_ms(const struct hs_client *hs);

/* Every call: ERR_OK, or the http_client error (429 ERR_RATE_LIMIT with the hint above, 5xx
 * ERR_UPSTREAM, 401 ERR_AUTH, 403 ERR_FORBIDDEN, 404 ERR_NOT_FOUND, 409 ERR_CONFLICT, other 4xx
 * ERR_INVALID), logged once with HubSpot's category and correlationId. Outputs are set only on
 * ERR_OK and are the caller's (cJSON_Delete / free). object_type is "deals", "contacts",
 * "companies" (or any CRM object type); it must be [a-z0-9_-]+ else ERR_INVALID. */

/* GET /crm/v3/objects/<type>/<id>. properties and associations: comma lists or NULL;
 * id_property: a unique property to look the id up by, or NULL for the record id. */
enum err hs_object_get(struct hs_client *hs, const char *object_type, const char *id,
                       const char *id_property, const char *properties, const char *associations,
                       cJSON **object) WARN_UNUSED;
/* GET /crm/v3/objects/<type>/<id>?properties=<history>&propertiesWithHistory=<history>: the
 * record with "propertiesWithHistory" {name: [{value, timestamp, sourceType, sourceId}, …]},
 * newest first, for the comma list history. */
enum err hs_object_get_history(struct hs_client *hs, const char *object_type, const char *id,
                               const char *history, cJSON **object) WARN_UNUSED;
/* GET /crm/v3/objects/<type>/<id>?archived=true: the record in the recycling bin, with its
 * "archivedAt" (ERR_NOT_FOUND when it is not archived). */
enum err hs_object_get_archived(struct hs_client *hs, const char *object_type, const char *id,
                                cJSON **object) WARN_UNUSED;
/* POST /crm/v3/objects/<type> with {"properties":…,"associations":[…]}; associations may be
 * NULL. *object is the created SimplePublicObject (its "id" is the new record id). */
enum err hs_object_create(struct hs_client *hs, const char *object_type, const cJSON *properties,
                          const cJSON *associations, cJSON **object) WARN_UNUSED;
/* PATCH /crm/v3/objects/<type>/<id>[?idProperty=]; "" clears a property. object may be NULL. */
enum err hs_object_update(struct hs_client *hs, const char *object_type, const char *id,
                          const char *id_property, const cJSON *properties,
                          cJSON **object) WARN_UNUSED;
/* DELETE /crm/v3/objects/<type>/<id> (to the recycling bin). */
enum err hs_object_archive(struct hs_client *hs, const char *object_type,
                           const char *id) WARN_UNUSED;

/* Merged outcome of a batch call split into chunks of HS_BATCH_MAX. */
struct hs_batch_result {
    cJSON *results; /* array of the records (or association results) HubSpot returned */
    cJSON *errors;  /* array of HubSpot StandardError objects from 207 answers; empty if none */
};
/* Frees both arrays and zeroes r. NULL is a no-op. */
void hs_batch_result_clear(struct hs_batch_result *r);

#define HS_BATCH_MAX 100

/* Values one search IN filter takes: at most HS_SEARCH_IN_MAX, whose JSON text ("value",) adds
 * up to at most HS_SEARCH_IN_CHARS, so the whole body stays under search's 3,000 characters
 * (reference hubspot.md 4.2) with room for the rest of the request. */
#define HS_SEARCH_IN_MAX 100
#define HS_SEARCH_IN_CHARS 2500
/* Whether value still fits an IN filter that holds k values of chars characters so far (then
 * adds its characters to *chars). Pure. */
static inline bool hs_search_in_fits(size_t k, size_t *chars, const char *value)
{
    size_t len = strlen(value) + 3;
    if (k >= HS_SEARCH_IN_MAX || *chars + len > HS_SEARCH_IN_CHARS)
        return false;
    *chars += len;
    return true;
}

/* Batch calls. inputs: the "inputs" array as HubSpot documents it for that endpoint (borrowed):
 * create [{properties, associations?}], update [{id, properties, idProperty?}], upsert
 * [{id (the unique value), idProperty, properties}]. Larger inputs are split into calls of
 * HS_BATCH_MAX. A 207 answer is ERR_OK with the failures in res->errors. Batch create gives
 * each input without one an objectWriteTraceId of its index in inputs ("0", "1", …), which is
 * what makes HubSpot report per-item failures (context.objectWriteTraceId) instead of failing
 * the call. If a call fails as a whole, nothing is returned: retry the whole input (upsert and
 * update are idempotent). */
enum err hs_batch_create(struct hs_client *hs, const char *object_type, const cJSON *inputs,
                         struct hs_batch_result *res) WARN_UNUSED;
enum err hs_batch_update(struct hs_client *hs, const char *object_type, const cJSON *inputs,
                         struct hs_batch_result *res) WARN_UNUSED;
enum err hs_batch_upsert(struct hs_client *hs, const char *object_type, const cJSON *inputs,
                         struct hs_batch_result *res) WARN_UNUSED;
/* Batch read of ids (by id_property when not NULL) with the comma list of properties. */
enum err hs_batch_read(struct hs_client *hs, const char *object_type, const char *id_property,
                       const char *properties, const char *const *ids, size_t count,
                       struct hs_batch_result *res) WARN_UNUSED;
/* Batch archive of record ids (204, so res->results stays empty). */
enum err hs_batch_archive(struct hs_client *hs, const char *object_type, const char *const *ids,
                          size_t count, struct hs_batch_result *res) WARN_UNUSED;

/* One page of POST /crm/v3/objects/<type>/search. request: {"filterGroups","sorts",
 * "properties","limit"} (borrowed); after: the paging cursor or NULL for the first page.
 * *results: the page's records; *next_after: the next cursor, NULL on the last page. */
enum err hs_search(struct hs_client *hs, const char *object_type, const cJSON *request,
                   const char *after, cJSON **results, char **next_after) WARN_UNUSED;
/* Appends {"propertyName","operator","value"} to a search group's filters array (no "value"
 * when value is NULL: HAS_PROPERTY, NOT_HAS_PROPERTY). Pure. */
void hs_search_filter(cJSON *filters, const char *property, const char *op, const char *value);
/* How many records of object_type match the filter group group ({"filters": [...]}, borrowed):
 * one search (limit 1) for its "total", into *total (-1 when the answer has none). */
enum err hs_search_count(struct hs_client *hs, const char *object_type, const cJSON *group,
                         long long *total) WARN_UNUSED;
/* Same, and *total (may be NULL) receives the answer's "total" (-1 when absent). */
enum err hs_search_page(struct hs_client *hs, const char *object_type, const cJSON *request,
                        const char *after, cJSON **results, char **next_after,
                        long long *total) WARN_UNUSED;

/* ---- Associations v4 --------------------------------------------------------------------- */

/* HubSpot-defined association type ids (reference hubspot.md 4.3). */
#define HS_ASSOC_DEAL_TO_CONTACT 3
#define HS_ASSOC_CONTACT_TO_DEAL 4
#define HS_ASSOC_DEAL_TO_COMPANY_PRIMARY 5
#define HS_ASSOC_DEAL_TO_COMPANY 341

struct hs_assoc_type {
    const char *category; /* "HUBSPOT_DEFINED" or "USER_DEFINED"; NULL = HUBSPOT_DEFINED */
    int type_id;
};

/* PUT …/associations/default/<to_type>/<to_id>: the unlabelled default association. */
enum err hs_assoc_create_default(struct hs_client *hs, const char *from_type, const char *from_id,
                                 const char *to_type, const char *to_id) WARN_UNUSED;
/* PUT …/associations/<to_type>/<to_id> with the given labelled types (n >= 1). */
enum err hs_assoc_create(struct hs_client *hs, const char *from_type, const char *from_id,
                         const char *to_type, const char *to_id, const struct hs_assoc_type *types,
                         size_t n) WARN_UNUSED;
/* DELETE every association between two records. */
enum err hs_assoc_delete(struct hs_client *hs, const char *from_type, const char *from_id,
                         const char *to_type, const char *to_id) WARN_UNUSED;
/* Every association of one record to to_type (all pages): array of
 * {"toObjectId","associationTypes":[{"category","typeId","label"}]}. */
enum err hs_assoc_list(struct hs_client *hs, const char *from_type, const char *from_id,
                       const char *to_type, cJSON **results) WARN_UNUSED;

/* One pair for the batch association calls. */
struct hs_assoc_pair {
    const char *from_id;
    const char *to_id;
};
/* POST /crm/v4/associations/<from>/<to>/batch/create with one type for every pair. */
enum err hs_assoc_batch_create(struct hs_client *hs, const char *from_type, const char *to_type,
                               const struct hs_assoc_pair *pairs, size_t count,
                               struct hs_assoc_type type, struct hs_batch_result *res) WARN_UNUSED;
/* POST /crm/v4/associations/<from>/<to>/batch/archive: removes all types between each pair. */
enum err hs_assoc_batch_archive(struct hs_client *hs, const char *from_type, const char *to_type,
                                const struct hs_assoc_pair *pairs, size_t count,
                                struct hs_batch_result *res) WARN_UNUSED;
/* POST /crm/v4/associations/<from>/<to>/batch/read for ids: res->results holds
 * {"from":{"id"},"to":[…]} per record; records without associations come back in res->errors. */
enum err hs_assoc_batch_read(struct hs_client *hs, const char *from_type, const char *to_type,
                             const char *const *ids, size_t count,
                             struct hs_batch_result *res) WARN_UNUSED;

/* ---- Pipelines, owners, properties -------------------------------------------------------- */

/* GET /crm/v3/pipelines/<type>: array of pipelines with their stages. */
enum err hs_pipelines_list(struct hs_client *hs, const char *object_type,
                           cJSON **pipelines) WARN_UNUSED;
/* POST /crm/v3/pipelines/<type>: input {"label","displayOrder","stages":[{"label",
 * "displayOrder","metadata":{"probability":"0.2"}}]}; *pipeline is the created pipeline. */
enum err hs_pipeline_create(struct hs_client *hs, const char *object_type, const cJSON *input,
                            cJSON **pipeline) WARN_UNUSED;
/* POST /crm/v3/pipelines/<type>/<pipeline_id>/stages; *stage is the created stage. */
enum err hs_pipeline_stage_create(struct hs_client *hs, const char *object_type,
                                  const char *pipeline_id, const cJSON *input,
                                  cJSON **stage) WARN_UNUSED;

/* GET /crm/v3/owners?email=: *owner_id is the owner "id" (what hubspot_owner_id holds, not the
 * userId). ERR_NOT_FOUND when no owner has that e-mail. */
enum err hs_owner_find_by_email(struct hs_client *hs, const char *email,
                                char **owner_id) WARN_UNUSED;

/* GET /crm/v3/owners (all pages): the array of PublicOwner objects. */
enum err hs_owners_list(struct hs_client *hs, cJSON **owners) WARN_UNUSED;

/* GET /crm/v3/properties/<type>: the "results" array of property definitions. */
enum err hs_properties_list(struct hs_client *hs, const char *object_type,
                            cJSON **properties) WARN_UNUSED;
/* GET /crm/v3/properties/<type>/<name>. */
enum err hs_property_get(struct hs_client *hs, const char *object_type, const char *name,
                         cJSON **property) WARN_UNUSED;
/* POST /crm/v3/properties/<type>: definition {"name","label","type","fieldType","groupName",
 * "hasUniqueValue"?,"options"?}; *property is the created definition (may be NULL). */
enum err hs_property_create(struct hs_client *hs, const char *object_type, const cJSON *definition,
                            cJSON **property) WARN_UNUSED;

/* ---- Pure helpers (thread-safe) ------------------------------------------------------------ */

/* HubSpot error body {"status":"error","message","category","correlationId","policyName"?}.
 * Sets whichever of *category, *correlation_id, *policy (caller frees; out pointers may be
 * NULL) the body has; false when it is not such a body. */
bool hs_error_parse(const char *body, char **category, char **correlation_id, char **policy);

#endif
