/* sf_store.h - the emulated Salesforce org: schema (objects and fields, standard and custom),
 * records with 18-character ids, validation of writes as the REST API does it, tokens, API usage
 * and the org identity. Private to the sf_*.c files. Every function expects the sandbox lock
 * (sandbox.h) to be held by the caller. */
#ifndef SB_SF_STORE_H
#define SB_SF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum sf_type {
    SF_ID,
    SF_STRING,
    SF_TEXTAREA,
    SF_PICKLIST,
    SF_EMAIL,
    SF_URL,
    SF_PHONE,
    SF_BOOL,
    SF_INT,
    SF_DOUBLE,
    SF_CURRENCY,
    SF_PERCENT,
    SF_DATE,
    SF_DATETIME,
    SF_REFERENCE,
    SF_COMPLEX, /* Tooling "Metadata": a JSON object, retrieved one record at a time */
    SF_MULTIPICKLIST,
};

struct vindex;

struct sf_field {
    char *name;
    enum sf_type type;
    int length;     /* strings: maximum length */
    char *ref_to;   /* SF_REFERENCE: target object name */
    char *rel_name; /* SF_REFERENCE: relationship name ("Account" for AccountId) */
    bool is_createable;
    bool is_updateable;
    bool is_required; /* must be non-null after create/update */
    bool is_external_id;
    bool is_unique;
    bool is_custom;
    bool is_single_row; /* Tooling Metadata/FullName: query must return at most one row */
    cJSON *picklist;    /* picklists: [{value, label, active, defaultValue}] as describe shows
                         * them, or NULL (any value, as for a picklist with no values set) */
    bool is_restricted; /* restricted picklist: a value outside `picklist` is refused */
};

struct sf_record {
    char id[19];
    struct sf_object *owner; /* the object it is a record of */
    cJSON *values;           /* field name -> value (JSON null when unset); owned */
    bool is_deleted;
    int64_t created_ms;
    int64_t modstamp_ms;
    int64_t deleted_ms;
};

struct sf_object {
    char *name;
    char *label;
    char prefix[4];
    bool is_tooling;   /* visible only under /tooling/ */
    bool is_read_only; /* seeded; the REST API cannot write it */
    bool is_virtual;   /* UserPermissionAccess: one computed row, no sObject resource */
    struct sf_field *fields;
    size_t field_count;
    size_t field_cap;
    struct sf_record **records;
    size_t record_count;
    size_t record_cap;
    struct vindex *by_value; /* "Field\x1fvalue" of external id and unique fields -> records */
};

/* An API error as Salesforce reports it. fields is a comma-separated list ("" for none). */
struct sf_error {
    int status;
    char code[64];
    char message[512];
    char fields[256];
};

void sf_error_set(struct sf_error *err, int status, const char *code, const char *fields,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* REST form: [{"message","errorCode","fields"?}]. Caller owns the result. */
cJSON *sf_error_rest(const struct sf_error *err);
/* Collections form: {"statusCode","message","fields"}. Caller owns the result. */
cJSON *sf_error_item(const struct sf_error *err);

/* Who writes: the integration (API) user or a UI user. */
const char *sf_store_api_user_id(void);
const char *sf_store_ui_user_id(void);
const char *sf_store_org_id(void); /* 18 chars */
bool sf_store_set_org_id(const char *id);
/* Base URL of the sandbox as clients reach it (sf_instance_url setting, else the last Host). */
const char *sf_store_instance_url(void);
void sf_store_note_host(const char *host);

/* Objects. Name lookup is case-insensitive. tooling selects the Tooling namespace. */
struct sf_object *sf_store_object(const char *name, bool tooling);
struct sf_object *sf_store_object_at(size_t i);
size_t sf_store_object_count(void);
struct sf_field *sf_store_field(const struct sf_object *obj, const char *name);
/* The reference field whose relationship name is rel ("Account" -> AccountId). */
struct sf_field *sf_store_relationship(const struct sf_object *obj, const char *rel);
/* Adds a field to obj (copies name/ref strings); the new field is returned for tuning. */
struct sf_field *sf_store_add_field(struct sf_object *obj, const char *name, enum sf_type type,
                                    int length);

/* Ids. */
void sf_id_new(const char *prefix, char out[19]);
/* 15 or 18 alphanumerics with a correct checksum -> 18 chars in out; false otherwise. */
bool sf_id_normalize(const char *in, char out[19]);

/* The id of the live User with this Username (case-insensitive), NULL when none. active_only
 * also requires IsActive. Borrowed. */
const char *sf_store_user_by_username(const char *username, bool active_only);

/* Records: lookup by 15/18-char id across all objects (NULL when unknown; deleted included). */
struct sf_record *sf_store_find(const char *id, struct sf_object **obj);
/* Records of obj whose field equals the string value (for external ids). */
size_t sf_store_find_by_field(const struct sf_object *obj, const struct sf_field *f,
                              const char *value, struct sf_record **out, size_t max);

/* Writes. as_user is the User id that makes the change. Validation happens first; nothing is
 * changed when it fails. dry_run validates only. *out receives the new record. */
bool sf_store_create(struct sf_object *obj, const cJSON *body, const char *as_user, bool dry_run,
                     struct sf_record **out, struct sf_error *err);
bool sf_store_update(struct sf_object *obj, struct sf_record *rec, const cJSON *body,
                     const char *as_user, bool dry_run, struct sf_error *err);
bool sf_store_delete(struct sf_object *obj, struct sf_record *rec, const char *as_user,
                     bool dry_run, struct sf_error *err);
/* Inserts a record without validation (seeding, Tooling objects); values taken over. */
struct sf_record *sf_store_insert_raw(struct sf_object *obj, cJSON *values);

/* Rendering for REST: {"attributes":{type,url}, fields...}. fields NULL = all. */
cJSON *sf_record_render(const struct sf_object *obj, const struct sf_record *rec,
                        const char *version, const char *const *fields, size_t nfields);
char *sf_record_url(const struct sf_object *obj, const char *id, const char *version);

/* Time formats. */
void sf_time_rest(int64_t ms, char out[32]);    /* 2013-05-20T20:49:32.000+0000 */
void sf_time_xml(int64_t ms, char out[32]);     /* 2020-05-09T03:04:32.000Z */
bool sf_time_parse(const char *s, int64_t *ms); /* ISO 8601 with offset or Z */
bool sf_date_valid(const char *s);
/* Lifecycle. */
void sf_store_seed(void);
void sf_store_clear(void);

/* Tokens. */
const char *sf_token_issue(const char *user_id);
/* The user id for a live token, NULL when unknown or expired. */
const char *sf_token_user(const char *token);
void sf_token_expire_all(void);

/* API usage: counts one call, returns false when the allowance is used up. */
bool sf_usage_count(void);
int64_t sf_usage_used(void);
void sf_usage_set(int64_t used);

#endif
