/* sf_client.h - Salesforce REST client: OAuth token (refresh token, JWT bearer or client
 * credentials), SOQL with paging, sObject rows, upsert, collections, getUpdated/getDeleted,
 * Tooling API and permission checks. Not thread-safe: one per worker. */
#ifndef SVC_SF_CLIENT_H
#define SVC_SF_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "compiler.h"
#include "err.h"
#include "http_client.h"

enum sf_auth_flow {
    SF_AUTH_REFRESH_TOKEN,      /* client_id, client_secret (optional), refresh_token */
    SF_AUTH_JWT_BEARER,         /* client_id, username, private_key_file (RS256) */
    SF_AUTH_CLIENT_CREDENTIALS, /* client_id, client_secret; login_url must be My Domain */
};

/* All strings borrowed for the sf_client_new call only (they are copied). */
struct sf_client_options {
    enum sf_auth_flow flow;
    const char *login_url; /* e.g. "https://login.salesforce.com", no trailing slash */
    const char *client_id;
    const char *client_secret;
    const char *refresh_token;
    const char *username;         /* JWT "sub" */
    const char *private_key_file; /* PEM private key for the JWT signature */
    const char *audience;         /* JWT "aud"; NULL = login_url */
    const char *api_version;      /* "v60.0" */
};

struct sf_client; /* credentials, access token, instance URL, borrowed http_client */

/* Validates opt (ERR_CONFIG with a log line naming what is missing) and, for the JWT flow,
 * loads the private key. No network I/O: the token is fetched on the first call. hc is
 * borrowed and must outlive the client. On ERR_OK *out is freed with sf_client_free. */
enum err sf_client_new(const struct sf_client_options *opt, struct http_client *hc,
                       struct sf_client **out) WARN_UNUSED;
/* Wipes the secrets and frees. NULL is a no-op. */
void sf_client_free(struct sf_client *sf);

/* Fetches a new access token now (also done lazily, and once more on a 401
 * INVALID_SESSION_ID). ERR_AUTH when Salesforce refuses the grant. */
enum err sf_authenticate(struct sf_client *sf) WARN_UNUSED;
/* The instance URL from the last token answer (borrowed; NULL before the first token). */
const char *sf_instance_url(const struct sf_client *sf);
/* The id of the user the token acts as, from the token answer's identity URL (borrowed; NULL
 * before the first token or when the answer had no identity URL). */
const char *sf_user_id(const struct sf_client *sf);
struct api_budget;
/* Records the org's api-usage of every later answer in budget (borrowed, must outlive the
 * client; NULL stops recording). */
void sf_client_set_budget(struct sf_client *sf, struct api_budget *budget);
/* "api-usage=18/5000" from the last answer, or NULL (borrowed until the next call). */
const char *sf_limit_info(const struct sf_client *sf);

/* Every call below: ERR_OK, or the http_client error refined by Salesforce's error code
 * (REQUEST_LIMIT_EXCEEDED -> ERR_RATE_LIMIT, INVALID_SESSION_ID after one token refresh ->
 * ERR_AUTH, ENTITY_IS_DELETED and NOT_FOUND -> ERR_NOT_FOUND, DUPLICATE_VALUE -> ERR_CONFLICT).
 * Outputs are set only on ERR_OK and are the caller's to free (cJSON_Delete / free). */

/* SOQL query; follows nextRecordsUrl until done and returns every record in one array. */
enum err sf_query(struct sf_client *sf, const char *soql, cJSON **records) WARN_UNUSED;
/* Same, including deleted and archived records (queryAll). */
enum err sf_query_all(struct sf_client *sf, const char *soql, cJSON **records) WARN_UNUSED;

/* One page of a query, for callers that save their place between pages (an import). */
struct sf_query_page {
    cJSON *records;  /* the page's records (array) */
    long long total; /* the query's totalSize, -1 when absent */
    char *next_url;  /* nextRecordsUrl, NULL on the last page */
};
/* The first page of soql (next_url NULL), or the page at next_url (soql ignored). On ERR_OK
 * *page is filled; release it with sf_query_page_clear (NULL is a no-op). */
enum err sf_query_page(struct sf_client *sf, const char *soql, const char *next_url,
                       struct sf_query_page *page) WARN_UNUSED;
void sf_query_page_clear(struct sf_query_page *page);

/* GET sobjects/<type>/<id>[?fields=<comma list>]; fields may be NULL. */
enum err sf_sobject_get(struct sf_client *sf, const char *type, const char *id, const char *fields,
                        cJSON **record) WARN_UNUSED;
/* GET ui-api/object-info/<type>/picklist-values/<record type id>/<field> (API v41.0+): the
 * values the record type offers, {"values":[{"label","value","attributes"}…]}. record_type_id
 * "012000000000000AAA" is the master record type. */
enum err sf_picklist_values(struct sf_client *sf, const char *type, const char *record_type_id,
                            const char *field, cJSON **values) WARN_UNUSED;
/* POST sobjects/<type>; *id receives the new record id. */
enum err sf_sobject_create(struct sf_client *sf, const char *type, const cJSON *fields,
                           char **id) WARN_UNUSED;
/* PATCH sobjects/<type>/<id> (null values clear fields). */
enum err sf_sobject_update(struct sf_client *sf, const char *type, const char *id,
                           const cJSON *fields) WARN_UNUSED;
/* DELETE sobjects/<type>/<id>. */
enum err sf_sobject_delete(struct sf_client *sf, const char *type, const char *id) WARN_UNUSED;
/* PATCH sobjects/<type>/<ext_field>/<ext_value>. *is_created tells insert from update; *id is
 * the record id, or NULL when Salesforce's answer (204 on older API versions) does not say.
 * More than one match (300) is ERR_CONFLICT. id and is_created may be NULL. */
enum err sf_sobject_upsert(struct sf_client *sf, const char *type, const char *ext_field,
                           const char *ext_value, const cJSON *fields, char **id,
                           bool *is_created) WARN_UNUSED;

/* One record's outcome in a collection call. */
struct sf_save_result {
    char *id; /* NULL when the record failed (or a delete gave none) */
    bool is_success;
    bool is_created;  /* upsert: inserted */
    enum err err;     /* ERR_OK, or the mapped statusCode of the first error */
    char *error_code; /* first error's statusCode, NULL on success */
    char *message;    /* first error's message, NULL on success */
};
/* Frees n results and the array. NULL is a no-op. */
void sf_save_results_free(struct sf_save_result *results, size_t n);

#define SF_COLLECTION_MAX 200

/* sObject Collections. records: array of objects with "attributes":{"type":…} (and "id" for
 * update). Results come in input order, one per record. More than SF_COLLECTION_MAX records
 * are sent in several calls, unless all_or_none (then ERR_INVALID). A call failing as a whole
 * fails the function (results of earlier calls are discarded; retry the whole input). */
enum err sf_collection_create(struct sf_client *sf, const cJSON *records, bool all_or_none,
                              struct sf_save_result **results, size_t *n) WARN_UNUSED;
enum err sf_collection_update(struct sf_client *sf, const cJSON *records, bool all_or_none,
                              struct sf_save_result **results, size_t *n) WARN_UNUSED;
/* Upsert of records of one type by the external id field ext_field. */
enum err sf_collection_upsert(struct sf_client *sf, const char *type, const char *ext_field,
                              const cJSON *records, bool all_or_none,
                              struct sf_save_result **results, size_t *n) WARN_UNUSED;
enum err sf_collection_delete(struct sf_client *sf, const char *const *ids, size_t count,
                              bool all_or_none, struct sf_save_result **results,
                              size_t *n) WARN_UNUSED;

/* getUpdated / getDeleted for [start_ms, end_ms). *ids: array of id strings; *deleted: array
 * of {"id","deletedDate"}; *latest_ms: latestDateCovered, the next window's start. */
enum err sf_get_updated(struct sf_client *sf, const char *type, int64_t start_ms, int64_t end_ms,
                        cJSON **ids, int64_t *latest_ms) WARN_UNUSED;
enum err sf_get_deleted(struct sf_client *sf, const char *type, int64_t start_ms, int64_t end_ms,
                        cJSON **deleted, int64_t *latest_ms) WARN_UNUSED;
/* getDeleted, and *earliest_ms: earliestDateAvailable (0 when absent). A start Salesforce no
 * longer covers (more than 15 days back, or purged) is ERR_INVALID (INVALID_REPLICATION_DATE). */
enum err sf_get_deleted_window(struct sf_client *sf, const char *type, int64_t start_ms,
                               int64_t end_ms, cJSON **deleted, int64_t *latest_ms,
                               int64_t *earliest_ms) WARN_UNUSED;

/* Tooling API: query (all pages) and create (e.g. CustomField, WorkflowOutboundMessage with
 * {"FullName":…,"Metadata":{…}}). */
enum err sf_tooling_query(struct sf_client *sf, const char *soql, cJSON **records) WARN_UNUSED;
enum err sf_tooling_create(struct sf_client *sf, const char *type, const cJSON *body,
                           char **id) WARN_UNUSED;

/* Whether the token's user has the permission field `permission` (e.g.
 * "PermissionsModifyAllData") in UserPermissionAccess. ERR_INVALID when the name is not
 * Permissions<Letters> or the org does not know it (INVALID_FIELD). */
enum err sf_user_has_permission(struct sf_client *sf, const char *permission,
                                bool *has) WARN_UNUSED;

/* GET limits: {"DailyApiRequests": {"Max", "Remaining"}, ...}. Caller deletes. */
enum err sf_limits(struct sf_client *sf, cJSON **limits) WARN_UNUSED;

/* ---- Pure helpers (thread-safe) ------------------------------------------------------------ */

/* First error of a Salesforce error body: the REST array [{"message","errorCode","fields"}],
 * a collections item's "errors" [{"statusCode",…}], or an OAuth {"error","error_description"}.
 * Sets *code / *message (caller frees; either may be NULL) and returns true when one was found. */
bool sf_error_parse(const char *body, char **code, char **message);
/* Refines the http_client result `base` by a Salesforce error code (may be NULL). */
enum err sf_error_map(enum err base, const char *code);
/* Salesforce datetime ("2013-05-20T20:49:32.000+0000", "…Z") or date ("2017-04-03") to epoch
 * ms; false when malformed. */
bool sf_datetime_parse(const char *s, int64_t *ms);

/* JWT bearer assertion: base64url({"alg":"RS256"}).base64url({"iss","sub","aud","exp"}).sig,
 * signed with the PEM key in key_file (RS256, OpenSSL EVP), exp = now_s + 180. ERR_CONFIG when
 * the key cannot be read. Caller frees *jwt. */
enum err sf_jwt_assertion(const char *client_id, const char *username, const char *audience,
                          const char *key_file, int64_t now_s, char **jwt) WARN_UNUSED;

#endif
