/* sf_rest.c - the Salesforce REST API under /services/data/vXX.X/: authentication, the daily
 * allowance, sObject rows, upsert by external id, describe, query/queryAll with paging,
 * getUpdated/getDeleted and sObject Collections. Tooling lives in sf_tooling.c, OAuth in
 * sf_oauth.c. Called with the sandbox lock held. */
#include "sf_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define SF_MIN_VERSION 20.0
#define SF_MAX_VERSION 66.0
#define SF_MAX_CURSORS 32
#define SF_COLLECTION_MAX 200

struct cursor {
    char id[19];
    cJSON *records; /* the whole result, rendered */
};

static struct cursor cursors[SF_MAX_CURSORS];
static size_t cursor_count;

/* ---- small helpers ------------------------------------------------------------------------ */

void sf_respond_error(struct sb_response *resp, const struct sf_error *err)
{
    sb_respond_json(resp, err->status, sf_error_rest(err));
}

void sf_respond_errorf(struct sb_response *resp, int status, const char *code, const char *fmt, ...)
{
    struct sf_error err;
    va_list ap;
    sf_error_set(&err, status, code, NULL, "%s", "");
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof(err.message), fmt, ap);
    va_end(ap);
    sf_respond_error(resp, &err);
}

static void not_found(struct sb_response *resp)
{
    sf_respond_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
}

static void method_not_allowed(const struct sb_request *req, struct sb_response *resp,
                               const char *allowed)
{
    sf_respond_errorf(resp, 405, "METHOD_NOT_ALLOWED",
                      "HTTP Method '%s' not allowed. Allowed are %s", req->method, allowed);
}

static bool is_method(const struct sb_request *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

/* Parses the body as JSON; answers 400 JSON_PARSER_ERROR and returns NULL when it is not. */
static cJSON *parse_body(const struct sb_request *req, struct sb_response *resp)
{
    cJSON *body = cJSON_ParseWithLength(req->body, req->body_len);
    if (!body)
        sf_respond_errorf(resp, 400, "JSON_PARSER_ERROR",
                          "Unexpected character or end-of-input in the request body: "
                          "not valid JSON");
    return body;
}

/* Splits path into at most max '/'-separated segments (empty trailing segment dropped). */
static size_t split(char *path, char **seg, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *s = strtok_r(path, "/", &save); s && n < max; s = strtok_r(NULL, "/", &save))
        seg[n++] = s;
    return n;
}

static struct sf_object *api_object(const char *name)
{
    struct sf_object *obj = sf_store_object(name, false);
    return obj && !obj->is_virtual ? obj : NULL;
}

static void respond_bad_type(struct sb_response *resp, const char *name)
{
    sf_respond_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
    (void)name;
}

/* ---- query ------------------------------------------------------------------------------- */

static size_t batch_size(void)
{
    int64_t n = sb_setting_int("sf_query_batch_size", 2000);
    return n < 1 ? 1 : n > 2000 ? 2000 : (size_t)n;
}

static void page(cJSON *all, size_t from, const char *cursor_id, const char *version,
                 struct sb_response *resp)
{
    size_t total = (size_t)cJSON_GetArraySize(all);
    size_t size = batch_size();
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "totalSize", (double)total);
    bool done = from + size >= total;
    cJSON_AddBoolToObject(out, "done", done);
    if (!done) {
        char *url = xasprintf("/services/data/v%s/query/%s-%zu", version, cursor_id, from + size);
        cJSON_AddStringToObject(out, "nextRecordsUrl", url);
        free(url);
    }
    cJSON *records = cJSON_AddArrayToObject(out, "records");
    for (size_t i = from; i < total && i < from + size; i++)
        cJSON_AddItemToArray(records, cJSON_Duplicate(cJSON_GetArrayItem(all, (int)i), true));
    sb_respond_json(resp, 200, out);
}

void sf_query_respond(cJSON *records, const char *version, struct sb_response *resp)
{
    if ((size_t)cJSON_GetArraySize(records) <= batch_size()) {
        page(records, 0, "", version, resp);
        cJSON_Delete(records);
        return;
    }
    if (cursor_count == SF_MAX_CURSORS) {
        cJSON_Delete(cursors[0].records);
        memmove(&cursors[0], &cursors[1], (SF_MAX_CURSORS - 1) * sizeof(cursors[0]));
        cursor_count--;
    }
    struct cursor *c = &cursors[cursor_count++];
    sf_id_new("01g", c->id);
    c->records = records;
    page(records, 0, c->id, version, resp);
}

void sf_query_more(const char *locator, const char *version, struct sb_response *resp)
{
    const char *dash = strchr(locator, '-');
    int64_t from = 0;
    if (dash && util_parse_i64(dash + 1, &from) && from >= 0)
        for (size_t i = 0; i < cursor_count; i++)
            if (strncmp(cursors[i].id, locator, (size_t)(dash - locator)) == 0 &&
                (size_t)(dash - locator) == strlen(cursors[i].id) &&
                from < cJSON_GetArraySize(cursors[i].records)) {
                page(cursors[i].records, (size_t)from, cursors[i].id, version, resp);
                return;
            }
    sf_respond_errorf(resp, 400, "INVALID_QUERY_LOCATOR", "invalid query locator");
}

void sf_query_clear(void)
{
    for (size_t i = 0; i < cursor_count; i++)
        cJSON_Delete(cursors[i].records);
    cursor_count = 0;
}

static void handle_query(const struct sb_request *req, bool all, const char *version,
                         struct sb_response *resp)
{
    char *q = sb_req_query(req, "q");
    cJSON *records = NULL;
    struct sf_error err;
    if (!q) {
        sf_respond_errorf(resp, 400, "MALFORMED_QUERY", "A query string has to be specified");
        return;
    }
    if (sf_soql_run(q, false, all, version, &records, &err))
        sf_query_respond(records, version, resp);
    else
        sf_respond_error(resp, &err);
    free(q);
}

/* ---- describe ---------------------------------------------------------------------------- */

static const char *type_name(enum sf_type t)
{
    static const char *const names[] = {
        "id",    "string",   "textarea",  "picklist",     "email",        "url",
        "phone", "boolean",  "int",       "double",       "currency",     "percent",
        "date",  "datetime", "reference", "complexvalue", "multipicklist"};
    return names[t];
}

static cJSON *describe_field(const struct sf_object *obj, const struct sf_field *f)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", f->name);
    cJSON_AddStringToObject(o, "label", f->name);
    cJSON_AddStringToObject(o, "type", type_name(f->type));
    cJSON_AddNumberToObject(o, "length", f->length);
    cJSON_AddBoolToObject(o, "nillable", !f->is_required && f->type != SF_BOOL);
    cJSON_AddBoolToObject(o, "createable", f->is_createable && !obj->is_read_only);
    cJSON_AddBoolToObject(o, "updateable", f->is_updateable && !obj->is_read_only);
    cJSON_AddBoolToObject(o, "externalId", f->is_external_id);
    cJSON_AddBoolToObject(o, "unique", f->is_unique);
    cJSON_AddBoolToObject(o, "custom", f->is_custom);
    cJSON_AddBoolToObject(o, "idLookup", strcmp(f->name, "Id") == 0 || f->is_external_id);
    cJSON_AddBoolToObject(o, "filterable", !(f->type == SF_TEXTAREA && f->length > 255));
    cJSON *refs = cJSON_AddArrayToObject(o, "referenceTo");
    if (f->ref_to)
        cJSON_AddItemToArray(refs, cJSON_CreateString(f->ref_to));
    if (f->rel_name)
        cJSON_AddStringToObject(o, "relationshipName", f->rel_name);
    else
        cJSON_AddNullToObject(o, "relationshipName");
    cJSON *values = cJSON_AddArrayToObject(o, "picklistValues");
    bool is_stage = strcmp(obj->name, "Opportunity") == 0 && strcmp(f->name, "StageName") == 0;
    if (is_stage) {
        struct sf_object *stages = sf_store_object("OpportunityStage", false);
        for (size_t i = 0; stages && i < stages->record_count; i++) {
            const cJSON *v = stages->records[i]->values;
            cJSON *pv = cJSON_CreateObject();
            cJSON_AddItemToObject(pv, "value",
                                  cJSON_Duplicate(cJSON_GetObjectItem(v, "ApiName"), true));
            cJSON_AddItemToObject(pv, "label",
                                  cJSON_Duplicate(cJSON_GetObjectItem(v, "MasterLabel"), true));
            cJSON_AddItemToObject(pv, "active",
                                  cJSON_Duplicate(cJSON_GetObjectItem(v, "IsActive"), true));
            cJSON_AddFalseToObject(pv, "defaultValue");
            cJSON_AddNullToObject(pv, "validFor");
            cJSON_AddItemToArray(values, pv);
        }
    } else {
        const cJSON *pv;
        cJSON_ArrayForEach(pv, f->picklist)
        {
            cJSON *copy = cJSON_Duplicate(pv, true);
            if (!cJSON_GetObjectItem(copy, "validFor"))
                cJSON_AddNullToObject(copy, "validFor");
            cJSON_AddItemToArray(values, copy);
        }
    }
    cJSON_AddBoolToObject(o, "restrictedPicklist", is_stage || f->is_restricted);
    return o;
}

static cJSON *describe_basics(const struct sf_object *obj, const char *version)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", obj->name);
    cJSON_AddStringToObject(o, "label", obj->label);
    cJSON_AddStringToObject(o, "keyPrefix", obj->prefix);
    cJSON_AddBoolToObject(o, "custom", false);
    cJSON_AddBoolToObject(o, "createable", !obj->is_read_only);
    cJSON_AddBoolToObject(o, "updateable", !obj->is_read_only);
    cJSON_AddBoolToObject(o, "deletable", !obj->is_read_only);
    cJSON_AddBoolToObject(o, "queryable", true);
    cJSON_AddBoolToObject(o, "replicateable", !obj->is_read_only);
    cJSON *urls = cJSON_AddObjectToObject(o, "urls");
    char *u = xasprintf("/services/data/v%s/%ssobjects/%s", version,
                        obj->is_tooling ? "tooling/" : "", obj->name);
    char *d = xasprintf("%s/describe", u);
    char *r = xasprintf("%s/{ID}", u);
    cJSON_AddStringToObject(urls, "sobject", u);
    cJSON_AddStringToObject(urls, "describe", d);
    cJSON_AddStringToObject(urls, "rowTemplate", r);
    free(u);
    free(d);
    free(r);
    return o;
}

static cJSON *describe(const struct sf_object *obj, const char *version)
{
    cJSON *o = describe_basics(obj, version);
    cJSON *fields = cJSON_AddArrayToObject(o, "fields");
    for (size_t i = 0; i < obj->field_count; i++)
        cJSON_AddItemToArray(fields, describe_field(obj, &obj->fields[i]));
    cJSON *rts = cJSON_AddArrayToObject(o, "recordTypeInfos");
    struct sf_object *rt = sf_store_object("RecordType", false);
    bool first = true;
    size_t live = 0;
    for (size_t i = 0; rt && i < rt->record_count; i++) {
        const char *t =
            cJSON_GetStringValue(cJSON_GetObjectItem(rt->records[i]->values, "SobjectType"));
        live += t && strcmp(t, obj->name) == 0 && !rt->records[i]->is_deleted;
    }
    /* Every object has the master record type; it is the default only when there is no
     * other. */
    cJSON *master = cJSON_CreateObject();
    cJSON_AddBoolToObject(master, "active", true);
    cJSON_AddBoolToObject(master, "available", true);
    cJSON_AddBoolToObject(master, "defaultRecordTypeMapping", live == 0);
    cJSON_AddStringToObject(master, "developerName", "Master");
    cJSON_AddBoolToObject(master, "master", true);
    cJSON_AddStringToObject(master, "name", "Master");
    cJSON_AddStringToObject(master, "recordTypeId", "012000000000000AAA");
    cJSON_AddItemToArray(rts, master);
    for (size_t i = 0; rt && i < rt->record_count; i++) {
        const cJSON *v = rt->records[i]->values;
        const cJSON *t = cJSON_GetObjectItem(v, "SobjectType");
        if (!cJSON_IsString(t) || strcmp(t->valuestring, obj->name) != 0)
            continue;
        cJSON *info = cJSON_CreateObject();
        cJSON_AddStringToObject(info, "recordTypeId", rt->records[i]->id);
        cJSON_AddItemToObject(info, "name", cJSON_Duplicate(cJSON_GetObjectItem(v, "Name"), true));
        cJSON_AddItemToObject(info, "developerName",
                              cJSON_Duplicate(cJSON_GetObjectItem(v, "DeveloperName"), true));
        cJSON_AddItemToObject(info, "active",
                              cJSON_Duplicate(cJSON_GetObjectItem(v, "IsActive"), true));
        cJSON_AddItemToObject(info, "available",
                              cJSON_Duplicate(cJSON_GetObjectItem(v, "IsActive"), true));
        cJSON_AddBoolToObject(info, "defaultRecordTypeMapping", first);
        cJSON_AddBoolToObject(info, "master", false);
        cJSON_AddItemToArray(rts, info);
        first = false;
    }
    return o;
}

cJSON *sf_describe_global(bool tooling, const char *version)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "encoding", "UTF-8");
    cJSON_AddNumberToObject(o, "maxBatchSize", 200);
    cJSON *list = cJSON_AddArrayToObject(o, "sobjects");
    for (size_t i = 0; i < sf_store_object_count(); i++) {
        struct sf_object *obj = sf_store_object_at(i);
        if (obj->is_tooling == tooling && !obj->is_virtual)
            cJSON_AddItemToArray(list, describe_basics(obj, version));
    }
    return o;
}

cJSON *sf_describe(const struct sf_object *obj, const char *version)
{
    return describe(obj, version);
}

/* ---- sObject rows ------------------------------------------------------------------------ */

static bool field_list(const struct sf_object *obj, const char *list, char ***out, size_t *n,
                       struct sb_response *resp)
{
    char *copy = xstrdup(list);
    char *save = NULL;
    *out = NULL;
    *n = 0;
    for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        while (*f == ' ')
            f++;
        if (!sf_store_field(obj, f)) {
            sf_respond_errorf(resp, 400, "INVALID_FIELD",
                              "No such column '%s' on entity '%s'. If you are attempting to use "
                              "a custom field, be sure to append the '__c' after the custom "
                              "field name. Please reference your WSDL or the describe call for "
                              "the appropriate names.",
                              f, obj->name);
            for (size_t i = 0; i < *n; i++)
                free((*out)[i]);
            free(*out);
            free(copy);
            return false;
        }
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        (*out)[(*n)++] = xstrdup(f);
    }
    free(copy);
    return true;
}

static void respond_record(const struct sb_request *req, const struct sf_object *obj,
                           const struct sf_record *rec, const char *version,
                           struct sb_response *resp)
{
    char *fields = sb_req_query(req, "fields");
    char **list = NULL;
    size_t n = 0;
    if (fields && !field_list(obj, fields, &list, &n, resp)) {
        free(fields);
        return;
    }
    sb_respond_json(resp, 200, sf_record_render(obj, rec, version, (const char *const *)list, n));
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
    free(fields);
}

static void respond_created(struct sb_response *resp, int status, const char *id, int created)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddArrayToObject(o, "errors");
    cJSON_AddTrueToObject(o, "success");
    if (created >= 0)
        cJSON_AddBoolToObject(o, "created", created);
    sb_respond_json(resp, status, o);
}

static bool check_writable(const struct sf_object *obj, const char *what, struct sb_response *resp)
{
    if (!obj->is_read_only)
        return true;
    sf_respond_errorf(resp, 400, "INVALID_TYPE_FOR_OPERATION", "entity type cannot be %s: %s", what,
                      obj->label);
    return false;
}

static void create_record(const struct sb_request *req, struct sf_object *obj, const char *user,
                          struct sb_response *resp)
{
    struct sf_error err;
    struct sf_record *rec = NULL;
    if (!check_writable(obj, "inserted", resp))
        return;
    cJSON *body = parse_body(req, resp);
    if (!body)
        return;
    if (sf_store_create(obj, body, user, false, &rec, &err))
        respond_created(resp, 201, rec->id, -1);
    else
        sf_respond_error(resp, &err);
    cJSON_Delete(body);
}

static bool upsert_updated_200(const char *version)
{
    /* UNVERIFIED (reference 2.2): from API 46.0 an upsert that updates answers 200 with
     * created:false, earlier versions 204. The threshold is a setting. */
    return atof(version) >= (double)sb_setting_int("sf_upsert_200_min_version", 46);
}

static void row(const struct sb_request *req, struct sf_object *obj, const char *idtext,
                const char *version, const char *user, struct sb_response *resp)
{
    char id[19];
    struct sf_object *owner = NULL;
    struct sf_record *rec = NULL;
    struct sf_error err;
    const char *method = req->method;
    char *override = sb_req_query(req, "_HttpMethod");
    if (override && is_method(req, "POST") && strcmp(override, "PATCH") == 0)
        method = "PATCH";
    free(override);
    bool valid = sf_id_normalize(idtext, id);
    if (valid)
        rec = sf_store_find(id, &owner);
    if (strcmp(method, "GET") == 0) {
        if (!valid) {
            sf_respond_errorf(resp, 404, "NOT_FOUND",
                              "Provided external ID field does not exist or is not accessible: %s",
                              idtext);
            return;
        }
        if (!rec || owner != obj || rec->is_deleted) {
            not_found(resp);
            return;
        }
        respond_record(req, obj, rec, version, resp);
        return;
    }
    if (strcmp(method, "PATCH") != 0 && strcmp(method, "DELETE") != 0) {
        method_not_allowed(req, resp, "GET,PATCH,DELETE");
        return;
    }
    if (!check_writable(obj, strcmp(method, "PATCH") == 0 ? "updated" : "deleted", resp))
        return;
    if (!valid || (strncmp(id, obj->prefix, 3) != 0)) {
        sf_respond_errorf(resp, 400, "MALFORMED_ID", "%s ID: id value of incorrect type: %s",
                          obj->label, idtext);
        return;
    }
    if (!rec || owner != obj) {
        not_found(resp);
        return;
    }
    if (strcmp(method, "DELETE") == 0) {
        if (sf_store_delete(obj, rec, user, false, &err))
            sb_respond_json(resp, 204, NULL);
        else
            sf_respond_error(resp, &err);
        return;
    }
    cJSON *body = parse_body(req, resp);
    if (!body)
        return;
    if (sf_store_update(obj, rec, body, user, false, &err))
        sb_respond_json(resp, 204, NULL);
    else
        sf_respond_error(resp, &err);
    cJSON_Delete(body);
}

/* The external-id field for an upsert: Id or a field marked externalId. */
static struct sf_field *ext_field(struct sf_object *obj, const char *name)
{
    struct sf_field *f = sf_store_field(obj, name);
    if (f && (f->is_external_id || strcmp(f->name, "Id") == 0))
        return f;
    return NULL;
}

/* Upsert one record: 0 = updated, 1 = created, -1 = error (err set). */
static int upsert_one(struct sf_object *obj, struct sf_field *f, const char *value,
                      const cJSON *body, const char *user, bool dry_run, char id_out[19],
                      struct sf_error *err)
{
    struct sf_record *matches[2];
    size_t n = 0;
    if (strcmp(f->name, "Id") == 0) {
        char id[19];
        struct sf_object *owner = NULL;
        struct sf_record *r = sf_id_normalize(value, id) ? sf_store_find(id, &owner) : NULL;
        if (r && owner == obj && !r->is_deleted)
            matches[n++] = r;
    } else {
        n = sf_store_find_by_field(obj, f, value, matches, 2);
    }
    if (n > 1) {
        sf_error_set(err, 300, "MULTIPLE_CHOICES", NULL,
                     "%s: more than one record found for external id field: %s", f->name, value);
        return -1;
    }
    const cJSON *in_body = NULL;
    for (const cJSON *it = body->child; it; it = it->next)
        if (strcasecmp(it->string, f->name) == 0)
            in_body = it;
    if (n == 1) {
        cJSON *copy = cJSON_Duplicate(body, true);
        if (in_body)
            cJSON_DeleteItemFromObject(copy, in_body->string);
        bool ok = sf_store_update(obj, matches[0], copy, user, dry_run, err);
        cJSON_Delete(copy);
        if (!ok)
            return -1;
        memcpy(id_out, matches[0]->id, 19);
        return 0;
    }
    if (strcmp(f->name, "Id") == 0) {
        sf_error_set(err, 404, "NOT_FOUND", NULL, "The requested resource does not exist");
        return -1;
    }
    cJSON *copy = cJSON_Duplicate(body, true);
    if (in_body)
        cJSON_DeleteItemFromObject(copy, in_body->string);
    cJSON_AddStringToObject(copy, f->name, value);
    struct sf_record *rec = NULL;
    bool ok = sf_store_create(obj, copy, user, dry_run, &rec, err);
    cJSON_Delete(copy);
    if (!ok)
        return -1;
    if (rec)
        memcpy(id_out, rec->id, 19);
    else
        id_out[0] = '\0';
    return 1;
}

static void by_ext_id(const struct sb_request *req, struct sf_object *obj, const char *field,
                      const char *value, const char *version, const char *user,
                      struct sb_response *resp)
{
    struct sf_field *f = ext_field(obj, field);
    struct sf_error err;
    if (!f) {
        sf_respond_errorf(resp, 404, "NOT_FOUND",
                          "Provided external ID field does not exist or is not accessible: %s",
                          field);
        return;
    }
    if (is_method(req, "GET") || is_method(req, "DELETE")) {
        struct sf_record *matches[2];
        size_t n =
            strcmp(f->name, "Id") == 0 ? 0 : sf_store_find_by_field(obj, f, value, matches, 2);
        if (strcmp(f->name, "Id") == 0) {
            row(req, obj, value, version, user, resp);
            return;
        }
        if (n == 0) {
            not_found(resp);
            return;
        }
        if (n > 1) {
            cJSON *list = cJSON_CreateArray();
            for (size_t i = 0; i < n; i++) {
                char *url = sf_record_url(obj, matches[i]->id, version);
                cJSON_AddItemToArray(list, cJSON_CreateString(url));
                free(url);
            }
            sb_respond_json(resp, 300, list);
            return;
        }
        if (is_method(req, "GET")) {
            respond_record(req, obj, matches[0], version, resp);
            return;
        }
        if (!check_writable(obj, "deleted", resp))
            return;
        if (sf_store_delete(obj, matches[0], user, false, &err))
            sb_respond_json(resp, 204, NULL);
        else
            sf_respond_error(resp, &err);
        return;
    }
    if (!is_method(req, "PATCH") && !is_method(req, "POST")) {
        method_not_allowed(req, resp, "GET,PATCH,DELETE,POST");
        return;
    }
    if (!check_writable(obj, "upserted", resp))
        return;
    cJSON *body = parse_body(req, resp);
    if (!body)
        return;
    if (!cJSON_IsObject(body)) {
        sf_respond_errorf(resp, 400, "JSON_PARSER_ERROR", "The request body must be an object");
        cJSON_Delete(body);
        return;
    }
    char *update_only = sb_req_query(req, "updateOnly");
    char id[19];
    int rc;
    if (update_only && strcmp(update_only, "true") == 0) {
        struct sf_record *m[1];
        if (sf_store_find_by_field(obj, f, value, m, 1) == 0) {
            free(update_only);
            cJSON_Delete(body);
            not_found(resp);
            return;
        }
    }
    free(update_only);
    rc = upsert_one(obj, f, value, body, user, false, id, &err);
    if (rc < 0)
        sf_respond_error(resp, &err);
    else if (rc == 1)
        respond_created(resp, 201, id, 1);
    else if (upsert_updated_200(version))
        respond_created(resp, 200, id, 0);
    else
        sb_respond_json(resp, 204, NULL);
    cJSON_Delete(body);
}

/* ---- getUpdated / getDeleted ------------------------------------------------------------- */

static void replication(const struct sb_request *req, struct sf_object *obj, bool deleted,
                        struct sb_response *resp)
{
    char *start_text = sb_req_query(req, "start");
    char *end_text = sb_req_query(req, "end");
    int64_t start, end, now = sb_now_ms();
    int64_t days = deleted ? 15 : 30;
    char ts[32];
    if (!start_text || !end_text) {
        sf_respond_errorf(resp, 400, "MISSING_ARGUMENT", "Missing required parameter: %s",
                          !start_text ? "start" : "end");
        goto out;
    }
    if (!sf_time_parse(start_text, &start) || !sf_time_parse(end_text, &end)) {
        sf_respond_errorf(resp, 400, "INVALID_PARAMETER_VALUE",
                          "Date time values must be in ISO 8601 format: %s",
                          sf_time_parse(start_text, &start) ? end_text : start_text);
        goto out;
    }
    /* The seconds are ignored; coverage ends at the last whole minute before now. */
    start -= ((start % 60000) + 60000) % 60000;
    end -= ((end % 60000) + 60000) % 60000;
    int64_t latest = now - now % 60000;
    if (end > latest)
        end = latest;
    if (start >= end) {
        sf_respond_errorf(resp, 400, "INVALID_REPLICATION_DATE",
                          "start date must chronologically precede end date");
        goto out;
    }
    int64_t earliest = now - days * 86400000LL;
    earliest -= earliest % 60000;
    if (start < earliest) {
        sf_respond_errorf(resp, 400, "INVALID_REPLICATION_DATE",
                          "startDate cannot be more than %lld days ago", (long long)days);
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(o, deleted ? "deletedRecords" : "ids");
    for (size_t i = 0; i < obj->record_count; i++) {
        const struct sf_record *r = obj->records[i];
        if (deleted) {
            if (!r->is_deleted || r->deleted_ms < start || r->deleted_ms >= end)
                continue;
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "id", r->id);
            sf_time_rest(r->deleted_ms, ts);
            cJSON_AddStringToObject(d, "deletedDate", ts);
            cJSON_AddItemToArray(list, d);
        } else {
            if (r->is_deleted || r->modstamp_ms < start || r->modstamp_ms >= end)
                continue;
            cJSON_AddItemToArray(list, cJSON_CreateString(r->id));
        }
    }
    if ((int64_t)cJSON_GetArraySize(list) > sb_setting_int("sf_replication_id_limit", 600000)) {
        cJSON_Delete(o);
        sf_respond_errorf(resp, 400, "EXCEEDED_ID_LIMIT",
                          "The number of ids in the result exceeds the limit");
        goto out;
    }
    if (deleted) {
        sf_time_rest(earliest, ts);
        cJSON_AddStringToObject(o, "earliestDateAvailable", ts);
    }
    sf_time_rest(end, ts);
    cJSON_AddStringToObject(o, "latestDateCovered", ts);
    sb_respond_json(resp, 200, o);
out:
    free(start_text);
    free(end_text);
}

/* ---- sObject Collections ----------------------------------------------------------------- */

static cJSON *save_result(const char *id, const struct sf_error *err, int created)
{
    cJSON *o = cJSON_CreateObject();
    if (id && id[0])
        cJSON_AddStringToObject(o, "id", id);
    else
        cJSON_AddNullToObject(o, "id");
    cJSON_AddBoolToObject(o, "success", err == NULL);
    cJSON *errors = cJSON_AddArrayToObject(o, "errors");
    if (err)
        cJSON_AddItemToArray(errors, sf_error_item(err));
    if (created >= 0 && !err)
        cJSON_AddBoolToObject(o, "created", created);
    return o;
}

static struct sf_error rolled_back(void)
{
    struct sf_error e;
    sf_error_set(&e, 400, "ALL_OR_NONE_OPERATION_ROLLED_BACK", NULL,
                 "Record rolled back because not all records were valid and the request was "
                 "using AllOrNone header");
    return e;
}

enum coll_op { COLL_CREATE, COLL_UPDATE, COLL_UPSERT, COLL_DELETE };

/* One record of a collection call; dry_run validates only. Fills id and err. */
static bool coll_one(enum coll_op op, const cJSON *item, struct sf_object *upsert_obj,
                     struct sf_field *upsert_field, const char *user, bool dry_run, char id[19],
                     int *created, struct sf_error *err)
{
    id[0] = '\0';
    *created = -1;
    if (op == COLL_DELETE) {
        struct sf_object *obj = NULL;
        char norm[19];
        if (!cJSON_IsString(item) || !sf_id_normalize(item->valuestring, norm)) {
            sf_error_set(err, 400, "MALFORMED_ID", NULL, "malformed id %s",
                         cJSON_IsString(item) ? item->valuestring : "");
            if (cJSON_IsString(item))
                snprintf(id, 19, "%.18s", item->valuestring);
            return false;
        }
        memcpy(id, norm, 19);
        struct sf_record *r = sf_store_find(norm, &obj);
        if (!r || obj->is_tooling) {
            sf_error_set(err, 400, "INVALID_CROSS_REFERENCE_KEY", NULL,
                         "invalid cross reference id");
            return false;
        }
        if (obj->is_read_only) {
            sf_error_set(err, 400, "INVALID_TYPE_FOR_OPERATION", NULL,
                         "entity type cannot be deleted: %s", obj->label);
            return false;
        }
        return sf_store_delete(obj, r, user, dry_run, err);
    }
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(item, "attributes");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(attrs, "type");
    struct sf_object *obj = cJSON_IsString(type) ? api_object(type->valuestring) : NULL;
    if (op == COLL_UPSERT)
        obj = upsert_obj;
    if (!cJSON_IsObject(item) || (!obj && op != COLL_UPSERT)) {
        sf_error_set(err, 400, "INVALID_TYPE", NULL, "%s",
                     cJSON_IsString(type) ? "sObject type is not supported"
                                          : "Must specify a type in attributes");
        return false;
    }
    if (op == COLL_UPSERT && cJSON_IsString(type) && strcasecmp(type->valuestring, obj->name)) {
        sf_error_set(err, 400, "INVALID_TYPE", NULL, "Record type %s does not match %s",
                     type->valuestring, obj->name);
        return false;
    }
    if (obj->is_read_only) {
        sf_error_set(err, 400, "INVALID_TYPE_FOR_OPERATION", NULL,
                     "entity type cannot be inserted: %s", obj->label);
        return false;
    }
    const cJSON *idv = NULL;
    for (const cJSON *it = item->child; it; it = it->next)
        if (strcasecmp(it->string, "Id") == 0)
            idv = it;
    cJSON *body = cJSON_Duplicate(item, true);
    cJSON_DeleteItemFromObjectCaseSensitive(body, "attributes");
    if (idv)
        cJSON_DeleteItemFromObject(body, idv->string);
    bool ok = false;
    if (op == COLL_CREATE) {
        struct sf_record *rec = NULL;
        if (idv) {
            sf_error_set(err, 400, "INVALID_FIELD", NULL,
                         "The Id field should not be specified in the sobject data.");
        } else if (sf_store_create(obj, body, user, dry_run, &rec, err)) {
            ok = true;
            if (rec)
                memcpy(id, rec->id, 19);
        }
    } else if (op == COLL_UPDATE) {
        char norm[19];
        struct sf_object *owner = NULL;
        struct sf_record *rec = NULL;
        if (!cJSON_IsString(idv)) {
            sf_error_set(err, 400, "MISSING_ARGUMENT", NULL, "Id not specified in an update call");
        } else if (!sf_id_normalize(idv->valuestring, norm) || strncmp(norm, obj->prefix, 3)) {
            sf_error_set(err, 400, "MALFORMED_ID", "Id", "%s ID: id value of incorrect type: %s",
                         obj->label, idv->valuestring);
        } else if (!(rec = sf_store_find(norm, &owner)) || owner != obj) {
            memcpy(id, norm, 19);
            sf_error_set(err, 400, "INVALID_CROSS_REFERENCE_KEY", NULL,
                         "invalid cross reference id");
        } else {
            memcpy(id, norm, 19);
            ok = sf_store_update(obj, rec, body, user, dry_run, err);
        }
    } else {
        const cJSON *v = NULL;
        for (const cJSON *it = item->child; it; it = it->next)
            if (strcasecmp(it->string, upsert_field->name) == 0)
                v = it;
        if (!cJSON_IsString(v) && !cJSON_IsNumber(v)) {
            sf_error_set(err, 400, "MISSING_ARGUMENT", NULL, "%s not specified",
                         upsert_field->name);
        } else {
            char *value =
                cJSON_IsString(v) ? xstrdup(v->valuestring) : xasprintf("%.0f", v->valuedouble);
            int rc = upsert_one(obj, upsert_field, value, body, user, dry_run, id, err);
            free(value);
            if (rc >= 0) {
                ok = true;
                *created = rc;
            } else if (err->status == 300) {
                err->status = 400;
                snprintf(err->code, sizeof(err->code), "DUPLICATE_EXTERNAL_ID");
            }
        }
    }
    cJSON_Delete(body);
    return ok;
}

static void collection(const struct sb_request *req, enum coll_op op, struct sf_object *upsert_obj,
                       struct sf_field *upsert_field, const char *user, struct sb_response *resp)
{
    cJSON *body = NULL;
    cJSON *ids = NULL;
    const cJSON *items;
    bool all_or_none = false;
    if (op == COLL_DELETE) {
        char *list = sb_req_query(req, "ids");
        char *aon = sb_req_query(req, "allOrNone");
        all_or_none = aon && strcmp(aon, "true") == 0;
        free(aon);
        if (!list || !*list) {
            free(list);
            sf_respond_errorf(resp, 400, "MISSING_ARGUMENT", "ids parameter is required");
            return;
        }
        ids = cJSON_CreateArray();
        char *save = NULL;
        for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save))
            cJSON_AddItemToArray(ids, cJSON_CreateString(s));
        free(list);
        items = ids;
    } else {
        body = parse_body(req, resp);
        if (!body)
            return;
        items = cJSON_GetObjectItemCaseSensitive(body, "records");
        const cJSON *aon = cJSON_GetObjectItemCaseSensitive(body, "allOrNone");
        all_or_none = cJSON_IsTrue(aon);
        if (!cJSON_IsArray(items)) {
            sf_respond_errorf(resp, 400, "JSON_PARSER_ERROR",
                              "The request body must contain a records array");
            goto out;
        }
    }
    int n = cJSON_GetArraySize(items);
    if (n > SF_COLLECTION_MAX) {
        sf_respond_errorf(resp, 400, "EXCEEDED_ID_LIMIT",
                          "record limit reached. cannot submit more than 200 records into this "
                          "call");
        goto out;
    }
    cJSON *results = cJSON_CreateArray();
    char id[19];
    int created;
    struct sf_error err;
    if (all_or_none) {
        bool any_failed = false;
        for (const cJSON *it = items->child; it; it = it->next) {
            bool ok = coll_one(op, it, upsert_obj, upsert_field, user, true, id, &created, &err);
            if (!ok) {
                any_failed = true;
                cJSON_AddItemToArray(results, save_result(id, &err, -1));
            } else {
                struct sf_error rb = rolled_back();
                cJSON_AddItemToArray(results, save_result(id, &rb, -1));
            }
        }
        if (any_failed) {
            sb_respond_json(resp, 200, results);
            goto out;
        }
        cJSON_Delete(results);
        results = cJSON_CreateArray();
    }
    for (const cJSON *it = items->child; it; it = it->next) {
        bool ok = coll_one(op, it, upsert_obj, upsert_field, user, false, id, &created, &err);
        cJSON_AddItemToArray(results, save_result(id, ok ? NULL : &err, ok ? created : -1));
    }
    sb_respond_json(resp, 200, results);
out:
    cJSON_Delete(body);
    cJSON_Delete(ids);
}

static void collection_retrieve(const struct sb_request *req, struct sf_object *obj,
                                const char *version, struct sb_response *resp)
{
    char *ids = sb_req_query(req, "ids");
    char *fields = sb_req_query(req, "fields");
    char **list = NULL;
    size_t n = 0;
    if (!ids || !fields) {
        sf_respond_errorf(resp, 400, "MISSING_ARGUMENT", "ids and fields parameters are required");
        goto out;
    }
    if (!field_list(obj, fields, &list, &n, resp))
        goto out;
    cJSON *out = cJSON_CreateArray();
    char *save = NULL;
    for (char *s = strtok_r(ids, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        struct sf_object *owner = NULL;
        struct sf_record *r = sf_store_find(s, &owner);
        if (r && owner == obj && !r->is_deleted)
            cJSON_AddItemToArray(out,
                                 sf_record_render(obj, r, version, (const char *const *)list, n));
        else
            cJSON_AddItemToArray(out, cJSON_CreateNull());
    }
    sb_respond_json(resp, 200, out);
out:
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
    free(ids);
    free(fields);
}

static void composite(const struct sb_request *req, char **seg, size_t n, const char *version,
                      const char *user, struct sb_response *resp)
{
    if (n < 2 || strcmp(seg[1], "sobjects") != 0) {
        /* /composite, /composite/batch, /composite/tree and /composite/graph are not
         * emulated: dealsync does not use them. */
        not_found(resp);
        return;
    }
    if (n == 2) {
        if (is_method(req, "POST"))
            collection(req, COLL_CREATE, NULL, NULL, user, resp);
        else if (is_method(req, "PATCH"))
            collection(req, COLL_UPDATE, NULL, NULL, user, resp);
        else if (is_method(req, "DELETE"))
            collection(req, COLL_DELETE, NULL, NULL, user, resp);
        else
            method_not_allowed(req, resp, "POST,PATCH,DELETE");
        return;
    }
    struct sf_object *obj = api_object(seg[2]);
    if (!obj) {
        respond_bad_type(resp, seg[2]);
        return;
    }
    if (n == 3) {
        if (is_method(req, "GET") || is_method(req, "POST"))
            collection_retrieve(req, obj, version, resp);
        else
            method_not_allowed(req, resp, "GET,POST");
        return;
    }
    if (n == 4) {
        struct sf_field *f = ext_field(obj, seg[3]);
        if (!f) {
            sf_respond_errorf(resp, 404, "NOT_FOUND",
                              "Provided external ID field does not exist or is not accessible: "
                              "%s",
                              seg[3]);
            return;
        }
        if (is_method(req, "PATCH"))
            collection(req, COLL_UPSERT, obj, f, user, resp);
        else
            method_not_allowed(req, resp, "PATCH");
        return;
    }
    not_found(resp);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static void sobjects(const struct sb_request *req, char **seg, size_t n, const char *version,
                     const char *user, struct sb_response *resp)
{
    if (n == 1) {
        if (is_method(req, "GET"))
            sb_respond_json(resp, 200, sf_describe_global(false, version));
        else
            method_not_allowed(req, resp, "GET,HEAD");
        return;
    }
    struct sf_object *obj = api_object(seg[1]);
    if (!obj) {
        respond_bad_type(resp, seg[1]);
        return;
    }
    if (n == 2) {
        if (is_method(req, "POST")) {
            create_record(req, obj, user, resp);
        } else if (is_method(req, "GET")) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "objectDescribe", describe_basics(obj, version));
            cJSON_AddArrayToObject(o, "recentItems");
            sb_respond_json(resp, 200, o);
        } else {
            method_not_allowed(req, resp, "GET,POST");
        }
        return;
    }
    if (n == 3 && strcmp(seg[2], "describe") == 0) {
        if (is_method(req, "GET"))
            sb_respond_json(resp, 200, describe(obj, version));
        else
            method_not_allowed(req, resp, "GET");
        return;
    }
    if (n == 3 && (strcmp(seg[2], "updated") == 0 || strcmp(seg[2], "deleted") == 0)) {
        if (is_method(req, "GET"))
            replication(req, obj, strcmp(seg[2], "deleted") == 0, resp);
        else
            method_not_allowed(req, resp, "GET");
        return;
    }
    if (n == 3) {
        row(req, obj, seg[2], version, user, resp);
        return;
    }
    if (n == 4) {
        by_ext_id(req, obj, seg[2], seg[3], version, user, resp);
        return;
    }
    not_found(resp);
}

static void versions(struct sb_response *resp, bool one)
{
    cJSON *list = cJSON_CreateArray();
    for (int v = (int)SF_MIN_VERSION; v <= (int)SF_MAX_VERSION; v++) {
        cJSON *o = cJSON_CreateObject();
        char *ver = xasprintf("%d.0", v);
        char *url = xasprintf("/services/data/v%s", ver);
        cJSON_AddStringToObject(o, "label", "Sandbox");
        cJSON_AddStringToObject(o, "url", url);
        cJSON_AddStringToObject(o, "version", ver);
        cJSON_AddItemToArray(list, o);
        free(ver);
        free(url);
    }
    (void)one;
    sb_respond_json(resp, 200, list);
}

static void resources(const char *version, struct sb_response *resp)
{
    static const char *const names[] = {"sobjects",  "query",   "queryAll",
                                        "composite", "tooling", "limits"};
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *u = xasprintf("/services/data/v%s/%s", version, names[i]);
        cJSON_AddStringToObject(o, names[i], u);
        free(u);
    }
    sb_respond_json(resp, 200, o);
}

static void limits(struct sb_response *resp)
{
    int64_t max = sb_setting_int("sf_api_daily_limit", 100000);
    cJSON *o = cJSON_CreateObject();
    cJSON *d = cJSON_AddObjectToObject(o, "DailyApiRequests");
    cJSON_AddNumberToObject(d, "Max", (double)max);
    cJSON_AddNumberToObject(d, "Remaining", (double)(max - sf_usage_used()));
    sb_respond_json(resp, 200, o);
}

static bool parse_version(const char *s, char *out, size_t n, const char **rest)
{
    size_t i = 0;
    while (s[i] && s[i] != '/')
        i++;
    if (i == 0 || i >= n)
        return false;
    memcpy(out, s, i);
    out[i] = '\0';
    char *end;
    double v = strtod(out, &end);
    if (*end || !strchr(out, '.') || v < SF_MIN_VERSION || v > SF_MAX_VERSION ||
        out[strlen(out) - 1] == '.')
        return false;
    *rest = s[i] ? s + i + 1 : s + i;
    return true;
}

static const char *bearer(const struct sb_request *req)
{
    const char *h = sb_req_header(req, "Authorization");
    if (!h)
        return NULL;
    if (strncasecmp(h, "Bearer ", 7) == 0)
        return h + 7;
    if (strncasecmp(h, "OAuth ", 6) == 0)
        return h + 6;
    return NULL;
}

static void limit_header(struct sb_response *resp)
{
    char *v = xasprintf("api-usage=%lld/%lld", (long long)sf_usage_used(),
                        (long long)sb_setting_int("sf_api_daily_limit", 100000));
    sb_respond_header(resp, "Sforce-Limit-Info", v);
    free(v);
}

static void data_api(const struct sb_request *req, const char *sub, struct sb_response *resp)
{
    char version[16];
    const char *rest = NULL;
    char *path = NULL;
    char *seg[8];
    if (*sub == '\0') {
        if (is_method(req, "GET"))
            versions(resp, false);
        else
            method_not_allowed(req, resp, "GET");
        return;
    }
    if (sub[0] != 'v' || !parse_version(sub + 1, version, sizeof(version), &rest)) {
        not_found(resp);
        return;
    }
    const char *token = bearer(req);
    const char *user = sf_token_user(token);
    if (!user) {
        sf_respond_errorf(resp, 401, "INVALID_SESSION_ID", "Session expired or invalid");
        return;
    }
    if (!sf_usage_count()) {
        sf_respond_errorf(resp, 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
        limit_header(resp);
        return;
    }
    path = xstrdup(rest);
    size_t n = split(path, seg, 8);
    if (n == 0) {
        resources(version, resp);
    } else if (strcmp(seg[0], "sobjects") == 0) {
        sobjects(req, seg, n, version, user, resp);
    } else if ((strcmp(seg[0], "query") == 0 || strcmp(seg[0], "queryAll") == 0) && n <= 2) {
        if (!is_method(req, "GET"))
            method_not_allowed(req, resp, "GET");
        else if (n == 2)
            sf_query_more(seg[1], version, resp);
        else
            handle_query(req, strcmp(seg[0], "queryAll") == 0, version, resp);
    } else if (strcmp(seg[0], "composite") == 0) {
        composite(req, seg, n, version, user, resp);
    } else if (strcmp(seg[0], "tooling") == 0) {
        sf_tooling_handle(req, rest + strlen("tooling"), version, user, resp);
    } else if (strcmp(seg[0], "ui-api") == 0) {
        sf_uiapi_handle(req, seg, n, version, resp);
    } else if (strcmp(seg[0], "limits") == 0 && n == 1) {
        limits(resp);
    } else {
        not_found(resp);
    }
    limit_header(resp);
    free(path);
}

bool sb_sf_handle(const struct sb_request *req, struct sb_response *resp)
{
    if (strncmp(req->path, "/services/", 10) != 0)
        return false;
    sf_store_note_host(sb_req_header(req, "Host"));
    const char *sub = req->path + 10;
    if (strcmp(sub, "oauth2/token") == 0) {
        if (is_method(req, "POST"))
            sf_oauth_token(req, resp);
        else
            method_not_allowed(req, resp, "POST");
        return true;
    }
    if (strcmp(sub, "data") == 0 || strncmp(sub, "data/", 5) == 0) {
        data_api(req, sub[4] ? sub + 5 : "", resp);
        return true;
    }
    return false;
}
