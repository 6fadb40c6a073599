/* sf_tooling.c - the Tooling API subset dealsync uses: WorkflowOutboundMessage (create, read,
 * query, delete), Flow (create, query) and CustomField (create adds the field to its object,
 * query), plus tooling describe and query. Validation follows the Metadata types in reference
 * section 1.6/5.1. Called with the lock held. */
#include "sf_api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static bool is_method(const struct sb_request *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

static void respond_created(struct sb_response *resp, const char *id)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddTrueToObject(o, "success");
    cJSON_AddArrayToObject(o, "errors");
    cJSON_AddArrayToObject(o, "warnings");
    cJSON_AddArrayToObject(o, "infos");
    sb_respond_json(resp, 201, o);
}

static const char *str_item(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Splits "Entity.Name" into its data object and the name; err set on failure. */
static struct sf_object *full_name_object(const char *full_name, const char **name,
                                          struct sf_error *err)
{
    const char *dot = full_name ? strchr(full_name, '.') : NULL;
    if (!dot || dot == full_name || !dot[1]) {
        sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", "FullName",
                     "FullName must be <Object>.<Name>: %s", full_name ? full_name : "(missing)");
        return NULL;
    }
    char *entity = xstrndup(full_name, (size_t)(dot - full_name));
    struct sf_object *obj = sf_store_object(entity, false);
    if (!obj || obj->is_virtual) {
        sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", "FullName", "Cannot find entity: %s",
                     entity);
        obj = NULL;
    }
    free(entity);
    *name = dot + 1;
    return obj;
}

/* Top-level keys other than FullName and Metadata are rejected (reference 5.1: an
 * endpointUrl outside Metadata fails with JSON_PARSER_ERROR). */
static bool check_top_level(const cJSON *body, const char *type, struct sf_error *err)
{
    if (!cJSON_IsObject(body)) {
        sf_error_set(err, 400, "JSON_PARSER_ERROR", NULL, "The request body must be an object");
        return false;
    }
    for (const cJSON *it = body->child; it; it = it->next)
        if (strcmp(it->string, "FullName") != 0 && strcmp(it->string, "Metadata") != 0 &&
            strcmp(it->string, "attributes") != 0) {
            sf_error_set(err, 400, "JSON_PARSER_ERROR", NULL,
                         "No such column '%s' on sobject of type %s", it->string, type);
            return false;
        }
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(body, "Metadata"))) {
        sf_error_set(err, 400, "REQUIRED_FIELD_MISSING", "Metadata",
                     "Required fields are missing: [Metadata]");
        return false;
    }
    return true;
}

static bool live_duplicate(struct sf_object *tobj, const char *full_name)
{
    for (size_t i = 0; i < tobj->record_count; i++) {
        const char *fn = str_item(tobj->records[i]->values, "FullName");
        if (!tobj->records[i]->is_deleted && fn && strcasecmp(fn, full_name) == 0)
            return true;
    }
    return false;
}

static bool create_outbound_message(struct sf_object *tobj, const cJSON *body, const char *user,
                                    struct sf_record **out, struct sf_error *err)
{
    const char *name = NULL;
    const char *full_name = str_item(body, "FullName");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(body, "Metadata");
    struct sf_object *obj = full_name_object(full_name, &name, err);
    if (!obj)
        return false;
    const char *endpoint = str_item(md, "endpointUrl");
    const char *integration_user = str_item(md, "integrationUser");
    const cJSON *api_version = cJSON_GetObjectItemCaseSensitive(md, "apiVersion");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(md, "fields");
    const cJSON *session = cJSON_GetObjectItemCaseSensitive(md, "includeSessionId");
    const char *label = str_item(md, "name");
    char missing[128] = "";
    if (!endpoint)
        strcat(missing, "endpointUrl,");
    if (!integration_user)
        strcat(missing, "integrationUser,");
    if (!cJSON_IsNumber(api_version))
        strcat(missing, "apiVersion,");
    if (!label)
        strcat(missing, "name,");
    if (missing[0]) {
        missing[strlen(missing) - 1] = '\0';
        sf_error_set(err, 400, "REQUIRED_FIELD_MISSING", missing,
                     "Required fields are missing: [%s]", missing);
        return false;
    }
    if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0) {
        sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", "endpointUrl",
                     "Endpoint URL: invalid URL: %s", endpoint);
        return false;
    }
    if (session && !cJSON_IsBool(session)) {
        sf_error_set(err, 400, "JSON_PARSER_ERROR", "includeSessionId",
                     "includeSessionId must be a boolean");
        return false;
    }
    const char *integration_id = sf_store_user_by_username(integration_user, false);
    if (!integration_id) {
        sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", "integrationUser",
                     "User to send as: invalid username: %s", integration_user);
        return false;
    }
    if (fields && !cJSON_IsArray(fields)) {
        sf_error_set(err, 400, "JSON_PARSER_ERROR", "fields", "fields must be an array");
        return false;
    }
    for (const cJSON *f = fields ? fields->child : NULL; f; f = f->next)
        if (!cJSON_IsString(f) || !sf_store_field(obj, f->valuestring) ||
            sf_store_field(obj, f->valuestring)->type == SF_COMPLEX) {
            sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", "fields",
                         "Field %s does not exist on %s", cJSON_IsString(f) ? f->valuestring : "?",
                         obj->name);
            return false;
        }
    char *canonical = xasprintf("%s.%s", obj->name, name);
    if (live_duplicate(tobj, canonical)) {
        sf_error_set(err, 400, "DUPLICATE_DEVELOPER_NAME", "FullName",
                     "duplicate value found: FullName duplicates value %s", canonical);
        free(canonical);
        return false;
    }
    cJSON *metadata = cJSON_Duplicate(md, true);
    if (!session)
        cJSON_AddFalseToObject(metadata, "includeSessionId");
    if (!fields)
        cJSON_AddArrayToObject(metadata, "fields");
    if (!cJSON_GetObjectItemCaseSensitive(metadata, "protected"))
        cJSON_AddFalseToObject(metadata, "protected");
    cJSON *values = cJSON_CreateObject();
    cJSON_AddStringToObject(values, "Name", name);
    cJSON_AddStringToObject(values, "FullName", canonical);
    cJSON_AddNumberToObject(values, "ApiVersion", api_version->valuedouble);
    cJSON_AddStringToObject(values, "EntityDefinitionId", obj->name);
    cJSON_AddStringToObject(values, "IntegrationUserId", integration_id);
    cJSON_AddStringToObject(values, "CreatedById", user);
    cJSON_AddItemToObject(values, "Metadata", metadata);
    free(canonical);
    *out = sf_store_insert_raw(tobj, values);
    return true;
}

static bool create_flow(struct sf_object *tobj, const cJSON *body, const char *user,
                        struct sf_record **out, struct sf_error *err)
{
    const char *full_name = str_item(body, "FullName");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(body, "Metadata");
    const char *label = str_item(md, "label");
    const char *process_type = str_item(md, "processType");
    if (!full_name || !label || !process_type) {
        sf_error_set(err, 400, "REQUIRED_FIELD_MISSING", NULL, "Required fields are missing: [%s]",
                     !full_name ? "FullName"
                     : !label   ? "label"
                                : "processType");
        return false;
    }
    /* An outbound-message action must name an existing message: "Opportunity.Name". */
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(md, "actionCalls");
    struct sf_object *oms = sf_store_object("WorkflowOutboundMessage", true);
    for (const cJSON *c = cJSON_IsArray(calls) ? calls->child : NULL; c; c = c->next) {
        const char *type = str_item(c, "actionType");
        const char *action = str_item(c, "actionName");
        if (!type || strcmp(type, "outboundMessage") != 0)
            continue;
        if (!action || !live_duplicate(oms, action)) {
            sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", "actionCalls",
                         "The outbound message %s doesn't exist", action ? action : "(missing)");
            return false;
        }
    }
    cJSON *values = cJSON_CreateObject();
    const char *status = str_item(md, "status");
    cJSON_AddStringToObject(values, "MasterLabel", label);
    cJSON_AddStringToObject(values, "FullName", full_name);
    cJSON_AddStringToObject(values, "Status", status ? status : "Draft");
    cJSON_AddStringToObject(values, "ProcessType", process_type);
    cJSON_AddNumberToObject(values, "VersionNumber", 1);
    cJSON_AddStringToObject(values, "CreatedById", user);
    cJSON_AddItemToObject(values, "Metadata", cJSON_Duplicate(md, true));
    *out = sf_store_insert_raw(tobj, values);
    return true;
}

static bool custom_field_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 4 || n > 43 || strcmp(name + n - 3, "__c") != 0 || !isalpha((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n - 3; i++) {
        if (!isalnum((unsigned char)name[i]) && name[i] != '_')
            return false;
        if (name[i] == '_' && (name[i + 1] == '_' || i == n - 4))
            return false;
    }
    return true;
}

static bool create_custom_field(struct sf_object *tobj, const cJSON *body, const char *user,
                                struct sf_record **out, struct sf_error *err)
{
    static const struct {
        const char *name;
        enum sf_type type;
        bool needs_length;
        bool can_be_external;
    } types[] = {
        {"Text", SF_STRING, true, true},
        {"Number", SF_DOUBLE, false, true},
        {"Checkbox", SF_BOOL, false, false},
        {"Date", SF_DATE, false, false},
        {"DateTime", SF_DATETIME, false, false},
        {"Currency", SF_CURRENCY, false, false},
        {"Percent", SF_PERCENT, false, false},
        {"Email", SF_EMAIL, false, true},
        {"Phone", SF_PHONE, false, false},
        {"Url", SF_URL, false, false},
        {"TextArea", SF_TEXTAREA, false, false},
        {"LongTextArea", SF_TEXTAREA, true, false},
        {"Picklist", SF_PICKLIST, false, false},
        {"MultiselectPicklist", SF_MULTIPICKLIST, false, false},
    };
    const char *name = NULL;
    const char *full_name = str_item(body, "FullName");
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(body, "Metadata");
    struct sf_object *obj = full_name_object(full_name, &name, err);
    if (!obj)
        return false;
    if (!custom_field_name_ok(name)) {
        sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", "FullName",
                     "Custom field names must end with __c and contain only letters, digits "
                     "and single underscores: %s",
                     name);
        return false;
    }
    if (sf_store_field(obj, name)) {
        sf_error_set(err, 400, "DUPLICATE_DEVELOPER_NAME", "FullName",
                     "There is already a field named %s on %s.", name, obj->name);
        return false;
    }
    const char *label = str_item(md, "label");
    const char *type = str_item(md, "type");
    if (!label || !type) {
        sf_error_set(err, 400, "REQUIRED_FIELD_MISSING", !label ? "label" : "type",
                     "Required fields are missing: [%s]", !label ? "label" : "type");
        return false;
    }
    size_t t;
    for (t = 0; t < sizeof(types) / sizeof(types[0]); t++)
        if (strcmp(types[t].name, type) == 0)
            break;
    if (t == sizeof(types) / sizeof(types[0])) {
        sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", "type",
                     "The sandbox does not support custom fields of type %s", type);
        return false;
    }
    const cJSON *length = cJSON_GetObjectItemCaseSensitive(md, "length");
    int len = types[t].type == SF_TEXTAREA ? 255 : 0;
    if (types[t].needs_length) {
        int max = types[t].type == SF_STRING ? 255 : 131072;
        if (!cJSON_IsNumber(length) || length->valueint < 1 || length->valueint > max) {
            sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", "length",
                         "Length: value must be between 1 and %d", max);
            return false;
        }
        len = length->valueint;
    }
    bool is_external = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(md, "externalId"));
    bool is_unique = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(md, "unique"));
    if ((is_external || is_unique) && !types[t].can_be_external) {
        sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", "externalId",
                     "Only Text, Number and Email fields can be external ids or unique");
        return false;
    }
    const cJSON *value_set = cJSON_GetObjectItemCaseSensitive(md, "valueSet");
    const cJSON *defined = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(value_set, "valueSetDefinition"), "value");
    bool is_picklist = types[t].type == SF_PICKLIST || types[t].type == SF_MULTIPICKLIST;
    if (is_picklist && (!cJSON_IsArray(defined) || cJSON_GetArraySize(defined) == 0)) {
        sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", "valueSet",
                     "Picklist fields need valueSet.valueSetDefinition.value");
        return false;
    }
    if (types[t].type == SF_MULTIPICKLIST &&
        !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(md, "visibleLines"))) {
        sf_error_set(err, 400, "REQUIRED_FIELD_MISSING", "visibleLines",
                     "Required fields are missing: [visibleLines]");
        return false;
    }
    cJSON *picklist = NULL;
    const cJSON *v;
    const cJSON *list = is_picklist ? defined : NULL;
    cJSON_ArrayForEach(v, list)
    {
        const char *value = str_item(v, "fullName");
        if (!value || !*value || strchr(value, ';')) {
            cJSON_Delete(picklist);
            sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", "valueSet",
                         "Each picklist value needs a fullName without ';'");
            return false;
        }
        if (!picklist)
            picklist = cJSON_CreateArray();
        cJSON *pv = cJSON_CreateObject();
        cJSON_AddBoolToObject(pv, "active", true);
        cJSON_AddBoolToObject(pv, "defaultValue",
                              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "default")));
        cJSON_AddStringToObject(pv, "label", str_item(v, "label") ? str_item(v, "label") : value);
        cJSON_AddStringToObject(pv, "value", value);
        cJSON_AddItemToArray(picklist, pv);
    }
    struct sf_field *f = sf_store_add_field(obj, name, types[t].type, len);
    f->picklist = picklist;
    f->is_restricted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(value_set, "restricted"));
    if (types[t].type == SF_MULTIPICKLIST)
        f->length = 4099;
    f->is_external_id = is_external;
    f->is_unique = is_unique;
    f->is_required = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(md, "required"));
    /* Checkbox fields are never null: existing records read false. */
    for (size_t i = 0; i < obj->record_count; i++)
        cJSON_AddItemToObject(obj->records[i]->values, f->name,
                              f->type == SF_BOOL ? cJSON_CreateFalse() : cJSON_CreateNull());
    cJSON *values = cJSON_CreateObject();
    char *dev = xstrndup(name, strlen(name) - 3);
    char *canonical = xasprintf("%s.%s", obj->name, name);
    cJSON_AddStringToObject(values, "DeveloperName", dev);
    cJSON_AddStringToObject(values, "TableEnumOrId", obj->name);
    cJSON_AddStringToObject(values, "FullName", canonical);
    cJSON_AddStringToObject(values, "CreatedById", user);
    cJSON_AddItemToObject(values, "Metadata", cJSON_Duplicate(md, true));
    free(dev);
    free(canonical);
    *out = sf_store_insert_raw(tobj, values);
    return true;
}

static void create(const struct sb_request *req, struct sf_object *tobj, const char *user,
                   struct sb_response *resp)
{
    struct sf_error err;
    struct sf_record *rec = NULL;
    cJSON *body = cJSON_ParseWithLength(req->body, req->body_len);
    bool ok = check_top_level(body, tobj->name, &err);
    if (ok && strcmp(tobj->name, "WorkflowOutboundMessage") == 0)
        ok = create_outbound_message(tobj, body, user, &rec, &err);
    else if (ok && strcmp(tobj->name, "Flow") == 0)
        ok = create_flow(tobj, body, user, &rec, &err);
    else if (ok)
        ok = create_custom_field(tobj, body, user, &rec, &err);
    if (ok)
        respond_created(resp, rec->id);
    else
        sf_respond_error(resp, &err);
    cJSON_Delete(body);
}

static void row(const struct sb_request *req, struct sf_object *tobj, const char *idtext,
                const char *version, struct sb_response *resp)
{
    struct sf_object *owner = NULL;
    struct sf_record *rec = sf_store_find(idtext, &owner);
    if (!rec || owner != tobj || rec->is_deleted) {
        sf_respond_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    if (is_method(req, "GET")) {
        sb_respond_json(resp, 200, sf_record_render(tobj, rec, version, NULL, 0));
    } else if (is_method(req, "DELETE") && strcmp(tobj->name, "CustomField") != 0) {
        /* Tooling deletes are permanent; the record stays only for the control API. */
        rec->is_deleted = true;
        rec->deleted_ms = sb_now_ms();
        sb_respond_json(resp, 204, NULL);
    } else {
        /* Updates, and deleting custom fields (which would drop data), are not emulated. */
        sf_respond_errorf(resp, 405, "METHOD_NOT_ALLOWED",
                          "HTTP Method '%s' not allowed by the sandbox. Allowed are GET%s",
                          req->method, strcmp(tobj->name, "CustomField") ? ",DELETE" : "");
    }
}

void sf_tooling_handle(const struct sb_request *req, const char *rest, const char *version,
                       const char *user, struct sb_response *resp)
{
    char *path = xstrdup(rest);
    char *seg[6];
    size_t n = 0;
    char *save = NULL;
    for (char *s = strtok_r(path, "/", &save); s && n < 6; s = strtok_r(NULL, "/", &save))
        seg[n++] = s;
    if (n >= 1 && strcmp(seg[0], "query") == 0 && n <= 2) {
        if (!is_method(req, "GET")) {
            sf_respond_errorf(resp, 405, "METHOD_NOT_ALLOWED",
                              "HTTP Method '%s' not allowed. Allowed are GET", req->method);
        } else if (n == 2) {
            sf_query_more(seg[1], version, resp);
        } else {
            char *q = sb_req_query(req, "q");
            cJSON *records = NULL;
            struct sf_error err;
            if (!q)
                sf_respond_errorf(resp, 400, "MALFORMED_QUERY",
                                  "A query string has to be "
                                  "specified");
            else if (sf_soql_run(q, true, false, version, &records, &err))
                sf_query_respond(records, version, resp);
            else
                sf_respond_error(resp, &err);
            free(q);
        }
    } else if (n >= 1 && strcmp(seg[0], "sobjects") == 0) {
        struct sf_object *tobj = n >= 2 ? sf_store_object(seg[1], true) : NULL;
        if (n == 1)
            sb_respond_json(resp, 200, sf_describe_global(true, version));
        else if (!tobj)
            sf_respond_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        else if (n == 2 && is_method(req, "POST"))
            create(req, tobj, user, resp);
        else if (n == 3 && strcmp(seg[2], "describe") == 0 && is_method(req, "GET"))
            sb_respond_json(resp, 200, sf_describe(tobj, version));
        else if (n == 3)
            row(req, tobj, seg[2], version, resp);
        else
            sf_respond_errorf(resp, 405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed",
                              req->method);
    } else {
        sf_respond_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
    }
    free(path);
}
