/* hs.h - private to the HubSpot emulation (hs_*.c): shared types and helpers between its
 * modules. Everything here is called with the state lock held unless it says otherwise. */
#ifndef SB_HS_H
#define SB_HS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sandbox.h"

enum hs_type { HS_CONTACT, HS_COMPANY, HS_DEAL, HS_TYPE_COUNT };

/* Who made a change: decides changeSource/sourceId of the webhook events it fires. */
enum hs_actor { HS_ACTOR_INTEGRATION, HS_ACTOR_USER };

/* ---- hs_api.c: names, errors, time ---- */
/* "contacts"/"contact"/"0-1" ... -> type; false when unknown. */
bool hs_type_parse(const char *s, enum hs_type *out);
const char *hs_type_plural(enum hs_type t);   /* "deals" */
const char *hs_type_singular(enum hs_type t); /* "deal" */
const char *hs_type_upper(enum hs_type t);    /* "DEAL" */
const char *hs_type_id(enum hs_type t);       /* "0-3" */

/* Takes the object-type segment at the start of *rest ("deals/..." -> HS_DEAL) and moves *rest
 * past it. Returns 1 when taken, 0 when there is no segment, -1 for an unknown type. */
int hs_take_type(const char **rest, enum hs_type *t);
/* Batch responses: {"status":"COMPLETE","results":[],startedAt,completedAt} (new; *results
 * borrowed), then answered with ok_status, or 207 with numErrors/errors when errors has items.
 * hs_batch_respond takes root and errors. */
cJSON *hs_batch_root(int64_t started, cJSON **results);
void hs_batch_respond(struct sb_response *resp, cJSON *root, cJSON *errors, int ok_status);
/* HubSpot's error body {status, message, correlationId, category[, subCategory]}; new object. */
cJSON *hs_error_json(const char *category, const char *message);
void hs_error(struct sb_response *resp, int status, const char *category, const char *message);
void hs_errorf(struct sb_response *resp, int status, const char *category, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A fresh correlation id; caller frees. */
char *hs_correlation_id(void);
/* ISO 8601 UTC with milliseconds into out. */
void hs_iso(int64_t ms, char out[32]);
/* Epoch ms or ISO 8601 (date, date-time, with Z/offset) -> ms. */
bool hs_parse_time(const char *s, int64_t *ms);
/* Parses the body as JSON; on failure answers 400 as HubSpot does and returns NULL. */
cJSON *hs_parse_body(const struct sb_request *req, struct sb_response *resp);
/* The string form of a property value in a request (strings, numbers, bools); NULL otherwise.
 * Caller frees. JSON null -> "". */
char *hs_value_string(const cJSON *v);
/* Splits "a,b,c" (the properties= / associations= query forms) into a new string array. */
cJSON *hs_split_csv(const char *s);

/* ---- hs_scopes.c: the private app's scopes ---- */
/* True when the token has the scope the call needs; otherwise answers 403 MISSING_SCOPES. */
bool hs_scope_check(const struct sb_request *req, struct sb_response *resp);

/* ---- hs_schema.c: property definitions and the Properties API ---- */
struct hs_prop;
const struct hs_prop *hs_prop_find(enum hs_type t, const char *name);
bool hs_prop_is_unique(const struct hs_prop *p);
const char *hs_prop_type(const struct hs_prop *p); /* "string", "number", ... */
/* Validates and normalises one value written through the API or the UI. On success *out is the
 * stored form (caller frees; "" clears). On failure appends {isValid,message,error,name} to
 * errors and returns false. */
/* Appends {isValid:false, message, error: code, name} to errors; returns false. */
bool hs_prop_error(cJSON *errors, const char *name, const char *code, const char *message);
bool hs_prop_check(enum hs_type t, const char *name, const char *value, char **out, cJSON *errors);
/* The property names a read returns when properties= is not given. */
const char *const *hs_default_props(enum hs_type t);
void hs_schema_reset(void);
bool hs_schema_handle(const struct sb_request *req, const char *rest, struct sb_response *resp);

/* ---- hs_pipelines.c ---- */
/* Ids of the deal pipelines / the stages of one (NULL = of all pipelines); new string arrays. */
cJSON *hs_pipeline_ids(void);
cJSON *hs_stage_ids(const char *pipeline_id);
bool hs_stage_in_pipeline(const char *pipeline_id, const char *stage_id);
/* Probability of a stage as a number, -1 when unknown. */
double hs_stage_probability(const char *pipeline_id, const char *stage_id);
size_t hs_pipeline_count(void);
const char *hs_pipeline_first_id(void);
void hs_pipelines_reset(void);
bool hs_pipelines_handle(const struct sb_request *req, const char *rest, struct sb_response *resp);

/* ---- hs_owners.c ---- */
bool hs_owner_exists(const char *owner_id);
void hs_owners_reset(void);
bool hs_owners_handle(const struct sb_request *req, const char *rest, struct sb_response *resp);
/* Control: adds an owner from {email, firstName, lastName, userId?}; 201 with the owner. */
void hs_owners_control_add(const cJSON *body, struct sb_response *resp);

/* ---- hs_objects.c: records, CRUD, batch, search ---- */
/* One value a property was given, and by whom (propertiesWithHistory). */
struct hs_change {
    char *name;
    char *value;
    int64_t at;
    enum hs_actor actor;
};

struct hs_object {
    int64_t id;
    enum hs_type type;
    cJSON *props; /* name -> string; absent = never set */
    /* Each value a property was given, oldest first: what propertiesWithHistory answers. */
    struct hs_change *history;
    size_t history_count;
    size_t history_cap;
    int64_t created_at;
    int64_t updated_at;
    int64_t archived_at;
    bool is_archived;
};
struct hs_object *hs_object_find(enum hs_type t, int64_t id, bool with_archived);
/* Creates a record from a {name: value} object after validation (errors as for hs_prop_check,
 * plus a status in *status: 400 validation, 409 conflict). NULL on failure. */
struct hs_object *hs_object_create(enum hs_type t, const cJSON *props, enum hs_actor actor,
                                   cJSON *errors, int *status);
bool hs_object_update(struct hs_object *o, const cJSON *props, enum hs_actor actor, cJSON *errors,
                      int *status);
void hs_object_archive(struct hs_object *o, enum hs_actor actor);
/* Adds "propertiesWithHistory" to a read's JSON j of o: for each name (a string array; unknown
 * names are left out, as HubSpot does), its values newest first. */
void hs_object_add_history(cJSON *j, const struct hs_object *o, const cJSON *names);
/* The object as the API returns it: only the props named in names (a string array; NULL =
 * defaults), always with hs_object_id/createdate/lastmodified. New object. */
cJSON *hs_object_json(const struct hs_object *o, const cJSON *names);
/* Every stored property plus archived flags and all associations (control API). */
cJSON *hs_object_full_json(const struct hs_object *o);
/* Body for a validation failure: message "Property values were not valid: [...]". */
void hs_respond_invalid(struct sb_response *resp, int status, cJSON *errors);
/* Recomputes the calculated properties of a record after its associations or (for a deal) its
 * amount/stage changed: a deal's contact count, a contact's deal roll-ups (reference 1.7). */
void hs_rollups_refresh(enum hs_type t, int64_t id);
/* Between hs_rollups_defer and hs_rollups_flush (nestable), refreshes are gathered and done once
 * each at the flush: a batch touching many deals of one contact recomputes that contact once. */
void hs_rollups_defer(void);
void hs_rollups_flush(void);
/* The record's own calculated properties now, deferred or not (the other records of its
 * associations wait for the flush). */
void hs_rollups_refresh_own(struct hs_object *o);
/* Does a live deal sit in this pipeline (stage_id NULL) or in this stage? */
bool hs_objects_use_stage(const char *pipeline_id, const char *stage_id);
void hs_objects_reset(void);
bool hs_objects_handle(const struct sb_request *req, enum hs_type t, const char *rest,
                       struct sb_response *resp);
/* Every live record of type t, in id order (borrowed array; valid until the next write). */
struct hs_object *const *hs_objects_all(size_t *count);
bool hs_search_handle(const struct sb_request *req, enum hs_type t, struct sb_response *resp);

/* ---- hs_assoc.c: associations v3/v4 ---- */
/* Adds the association typed type_id from (ft, fid) to (tt, tid) and its reverse; fires
 * associationChange events. False (and *msg, static) when type_id does not fit the pair. */
bool hs_assoc_add(enum hs_type ft, int64_t fid, enum hs_type tt, int64_t tid, int type_id,
                  enum hs_actor actor, const char **msg);
/* Removes every association between the two records (both directions). Returns how many. */
int hs_assoc_remove_all(enum hs_type ft, int64_t fid, enum hs_type tt, int64_t tid,
                        enum hs_actor actor);
/* Removes every association of a record (on archive), without events. */
void hs_assoc_forget(enum hs_type t, int64_t id);
/* The target type of a HubSpot-defined type id leaving from; false when it does not leave from. */
bool hs_assoc_type_target(enum hs_type from, int type_id, enum hs_type *to);
/* Default (unlabelled) type id for a pair, -1 when HubSpot has none. */
int hs_assoc_default_type(enum hs_type ft, enum hs_type tt);
/* {"contacts":{"results":[{"id","type"}]},...} for the types in names; new object or NULL. */
cJSON *hs_assoc_object_json(enum hs_type t, int64_t id, const cJSON *names);
/* All associations of a record as [{toObjectType,toObjectId,typeId}] (control API). */
cJSON *hs_assoc_all_json(enum hs_type t, int64_t id);
/* Ids of records of type tt associated with (t, id), without duplicates (new int array). */
cJSON *hs_assoc_targets(enum hs_type t, int64_t id, enum hs_type tt);
void hs_assoc_reset(void);
bool hs_assoc_v4_handle(const struct sb_request *req, const char *rest, struct sb_response *resp);
/* GET /crm/v3/objects/{t}/{id}/associations/{to} and the v4 per-record routes. */
bool hs_assoc_record_handle(const struct sb_request *req, int version, enum hs_type t, int64_t id,
                            const char *rest, struct sb_response *resp);

/* ---- hs_webhooks.c: management API and delivery ---- */
void hs_webhook_object_event(enum hs_type t, int64_t id, const char *kind, enum hs_actor actor);
void hs_webhook_property_event(enum hs_type t, int64_t id, const char *name, const char *value,
                               enum hs_actor actor);
void hs_webhook_assoc_event(enum hs_type ft, int64_t fid, enum hs_type tt, int64_t tid,
                            bool is_primary, bool is_removed, enum hs_actor actor);
bool hs_webhooks_handle(const struct sb_request *req, const char *rest, struct sb_response *resp);
/* Delivery state for the control API. New object. */
cJSON *hs_webhooks_status_json(void);
void hs_webhooks_reset(void);
void hs_webhooks_tick(void); /* without the lock */

/* Settings the HubSpot half reads (names and defaults; README.md lists them all). */
#define HS_DEFAULT_TOKEN "sandbox-hubspot-token"
#define HS_DEFAULT_DEV_KEY "sandbox-developer-key"
#define HS_DEFAULT_APP_ID 1160452
#define HS_DEFAULT_PORTAL_ID 62515
#define HS_DEFAULT_SECRET "sandbox-client-secret"
#define HS_DEFAULT_USER_ID 45678
#endif
