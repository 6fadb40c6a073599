/* sf_control.c - the Salesforce half of the control API (/_sandbox/salesforce/...): records
 * written as a UI user would (outbound messages fire), full state of any record including deleted
 * ones, org id, token expiry, API usage, the outbound queue; plus the init/reset hooks. Called
 * with the lock held. */
#include "sf_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sf_outbound.h"
#include "util.h"

static bool is_method(const struct sb_request *req, const char *m)
{
    return strcmp(req->method, m) == 0;
}

static void message(struct sb_response *resp, int status, const char *text)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", status < 400 ? "ok" : "error");
    cJSON_AddStringToObject(o, "message", text);
    sb_respond_json(resp, status, o);
}

static struct sf_object *any_object(const char *name)
{
    struct sf_object *obj = sf_store_object(name, false);
    return obj ? obj : sf_store_object(name, true);
}

/* The acting user: ?as=<username>, else the UI user. NULL when the username is unknown. */
static const char *acting_user(const struct sb_request *req)
{
    char *as = sb_req_query(req, "as");
    const char *id = sf_store_ui_user_id();
    if (as)
        id = sf_store_user_by_username(as, false);
    free(as);
    return id;
}

static cJSON *full_state(const struct sf_object *obj, const struct sf_record *rec)
{
    cJSON *o = sf_record_render(obj, rec, "66.0", NULL, 0);
    cJSON_ReplaceItemInObjectCaseSensitive(o, "IsDeleted", cJSON_CreateBool(rec->is_deleted));
    if (rec->is_deleted) {
        char ts[32];
        sf_time_rest(rec->deleted_ms, ts);
        cJSON_AddStringToObject(o, "_deletedDate", ts);
    }
    return o;
}

static void shift(cJSON *values, const char *name, int64_t delta)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(values, name);
    int64_t ms;
    char ts[32];
    if (!cJSON_IsString(v) || !sf_time_parse(v->valuestring, &ms))
        return;
    sf_time_rest(ms + delta, ts);
    cJSON_ReplaceItemInObjectCaseSensitive(values, name, cJSON_CreateString(ts));
}

static void backdate(const struct sb_request *req, struct sf_record *rec, struct sb_response *resp)
{
    cJSON *body = cJSON_Parse(req->body);
    const cJSON *minutes = cJSON_GetObjectItemCaseSensitive(body, "minutes");
    if (!cJSON_IsNumber(minutes) || minutes->valuedouble < 0) {
        message(resp, 400, "body must be {\"minutes\": N} with N >= 0");
        cJSON_Delete(body);
        return;
    }
    int64_t delta = -(int64_t)(minutes->valuedouble * 60000.0);
    rec->created_ms += delta;
    rec->modstamp_ms += delta;
    if (rec->is_deleted)
        rec->deleted_ms += delta;
    shift(rec->values, "CreatedDate", delta);
    shift(rec->values, "LastModifiedDate", delta);
    shift(rec->values, "SystemModstamp", delta);
    cJSON_Delete(body);
    message(resp, 200, "backdated");
}

/* Every record of obj, or with ?field=F&value=V only those whose F reads V exactly (a text
 * field, or an id in either length). ?fields=A,B renders only those fields of each (a poller
 * reading every record many times a second then costs the sandbox little of the machine). */
static void list_records(const struct sb_request *req, const struct sf_object *obj,
                         struct sb_response *resp)
{
    char *field = sb_req_query(req, "field");
    char *value = sb_req_query(req, "value");
    char *only = sb_req_query(req, "fields");
    const char *names[64];
    size_t name_count = 0;
    for (char *save = NULL, *f = only ? strtok_r(only, ",", &save) : NULL; f && name_count < 64;
         f = strtok_r(NULL, ",", &save))
        names[name_count++] = f;
    if ((field == NULL) != (value == NULL)) {
        message(resp, 400, "give both field and value, or neither");
        goto out;
    }
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < obj->record_count; i++) {
        if (field) {
            const char *v = cJSON_GetStringValue(
                cJSON_GetObjectItemCaseSensitive(obj->records[i]->values, field));
            if (!v || (strcmp(v, value) != 0 &&
                       !(strlen(v) == 18 && strlen(value) == 15 && strncmp(v, value, 15) == 0)))
                continue;
        }
        cJSON_AddItemToArray(
            list, name_count ? sf_record_render(obj, obj->records[i], "66.0", names, name_count)
                             : full_state(obj, obj->records[i]));
    }
    sb_respond_json(resp, 200, list);
out:
    free(only);
    free(field);
    free(value);
}

static void records(const struct sb_request *req, char **seg, size_t n, struct sb_response *resp)
{
    struct sf_object *obj = n >= 2 ? any_object(seg[1]) : NULL;
    struct sf_error err;
    if (!obj || obj->is_virtual) {
        message(resp, 404, "no such object");
        return;
    }
    if (n == 2 && is_method(req, "GET")) {
        list_records(req, obj, resp);
        return;
    }
    const char *user = acting_user(req);
    if (!user) {
        message(resp, 400, "unknown user in ?as=");
        return;
    }
    if (n == 2 && is_method(req, "POST")) {
        struct sf_record *rec = NULL;
        cJSON *body = cJSON_Parse(req->body);
        if (obj->is_tooling)
            message(resp, 400, "create tooling records through the Tooling API");
        else if (sf_store_create(obj, body, user, false, &rec, &err))
            sb_respond_json(resp, 201, full_state(obj, rec));
        else
            sf_respond_error(resp, &err);
        cJSON_Delete(body);
        return;
    }
    struct sf_object *owner = NULL;
    struct sf_record *rec = n >= 3 ? sf_store_find(seg[2], &owner) : NULL;
    if (!rec || owner != obj) {
        message(resp, 404, "no such record");
        return;
    }
    if (n == 4 && strcmp(seg[3], "backdate") == 0 && is_method(req, "POST")) {
        backdate(req, rec, resp);
    } else if (n == 4 && strcmp(seg[3], "stages") == 0 && is_method(req, "PUT") &&
               strcmp(obj->name, "BusinessProcess") == 0) {
        sf_process_put_stages(req, rec, resp);
    } else if (n != 3) {
        message(resp, 404, "no such salesforce control route");
    } else if (is_method(req, "GET")) {
        sb_respond_json(resp, 200, full_state(obj, rec));
    } else if (is_method(req, "PATCH") && !obj->is_tooling) {
        cJSON *body = cJSON_Parse(req->body);
        if (sf_store_update(obj, rec, body, user, false, &err))
            sb_respond_json(resp, 200, full_state(obj, rec));
        else
            sf_respond_error(resp, &err);
        cJSON_Delete(body);
    } else if (is_method(req, "DELETE") && !obj->is_tooling) {
        if (sf_store_delete(obj, rec, user, false, &err))
            sb_respond_json(resp, 200, full_state(obj, rec));
        else
            sf_respond_error(resp, &err);
    } else {
        message(resp, 405, "use GET, PATCH or DELETE");
    }
}

/* Creates one record of a load (and its children) as user; false with err set on a refusal.
 * Each created id is appended to ids. */
static bool load_one(const cJSON *item, const char *user, cJSON *ids, struct sf_error *err)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(item, "type");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(item, "fields");
    struct sf_object *obj = cJSON_IsString(type) ? sf_store_object(type->valuestring, false) : NULL;
    struct sf_record *rec = NULL;
    if (!obj || obj->is_virtual || !cJSON_IsObject(fields)) {
        sf_error_set(err, 400, "INVALID_TYPE", NULL,
                     "each record needs a \"type\" (a writable object) and \"fields\"");
        return false;
    }
    if (!sf_store_create(obj, fields, user, false, &rec, err))
        return false;
    cJSON_AddItemToArray(ids, cJSON_CreateString(rec->id));
    const cJSON *child;
    cJSON_ArrayForEach(child, cJSON_GetObjectItemCaseSensitive(item, "children"))
    {
        const cJSON *parent_field = cJSON_GetObjectItemCaseSensitive(child, "parent_field");
        cJSON *copy = cJSON_Duplicate(child, true);
        cJSON *child_fields = cJSON_GetObjectItemCaseSensitive(copy, "fields");
        bool ok = cJSON_IsString(parent_field) && cJSON_IsObject(child_fields);
        if (ok) {
            cJSON_DeleteItemFromObjectCaseSensitive(child_fields, parent_field->valuestring);
            cJSON_AddStringToObject(child_fields, parent_field->valuestring, rec->id);
            ok = load_one(copy, user, ids, err);
        } else {
            sf_error_set(err, 400, "INVALID_FIELD", NULL,
                         "each child needs \"type\", \"parent_field\" and \"fields\"");
        }
        cJSON_Delete(copy);
        if (!ok)
            return false;
    }
    return true;
}

/* POST load {"records":[{"type","fields","children"?:[{"type","parent_field","fields"}]}]}: a
 * data load, as a user's import tool writes one: every record (each child with parent_field set
 * to its parent's new id) is written while the lock is held, so no outbound message leaves
 * before the whole load is in (the workflow fires after the load's transaction, as in
 * Salesforce). Not all-or-none: a refusal stops the load there, answered 400 with the error, the
 * index of the top-level record, and the ids made before it. */
static void load(const struct sb_request *req, struct sb_response *resp)
{
    const char *user = acting_user(req);
    cJSON *body = cJSON_Parse(req->body);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "records");
    if (!user || !cJSON_IsArray(list)) {
        message(resp, 400, user ? "body must be {\"records\": [...]}" : "unknown user in ?as=");
        cJSON_Delete(body);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *ids = cJSON_AddArrayToObject(out, "ids");
    struct sf_error err;
    int index = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        if (!load_one(item, user, ids, &err)) {
            cJSON_AddItemToObject(out, "error", sf_error_rest(&err));
            cJSON_AddNumberToObject(out, "index", index);
            sb_respond_json(resp, 400, out);
            cJSON_Delete(body);
            return;
        }
        index++;
    }
    sb_respond_json(resp, 201, out);
    cJSON_Delete(body);
}

static void org(const struct sb_request *req, struct sb_response *resp)
{
    if (is_method(req, "PUT")) {
        cJSON *body = cJSON_Parse(req->body);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "organizationId");
        bool ok = cJSON_IsString(id) && strlen(id->valuestring) == 18 &&
                  sf_store_set_org_id(id->valuestring);
        cJSON_Delete(body);
        if (!ok) {
            message(resp, 400, "organizationId must be an 18-character id starting with 00D");
            return;
        }
    } else if (!is_method(req, "GET")) {
        message(resp, 405, "use GET or PUT");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "organizationId", sf_store_org_id());
    cJSON_AddStringToObject(o, "apiUserId", sf_store_api_user_id());
    cJSON_AddStringToObject(o, "uiUserId", sf_store_ui_user_id());
    cJSON_AddStringToObject(o, "instanceUrl", sf_store_instance_url());
    cJSON *usage = cJSON_AddObjectToObject(o, "apiUsage");
    cJSON_AddNumberToObject(usage, "used", (double)sf_usage_used());
    cJSON_AddNumberToObject(usage, "limit", (double)sb_setting_int("sf_api_daily_limit", 100000));
    sb_respond_json(resp, 200, o);
}

static void usage(const struct sb_request *req, struct sb_response *resp)
{
    cJSON *body = cJSON_Parse(req->body);
    const cJSON *used = cJSON_GetObjectItemCaseSensitive(body, "used");
    if (!is_method(req, "PUT") || !cJSON_IsNumber(used) || used->valuedouble < 0) {
        message(resp, 400, "use PUT with {\"used\": N}");
    } else {
        sf_usage_set((int64_t)used->valuedouble);
        message(resp, 200, "usage set");
    }
    cJSON_Delete(body);
}

bool sb_sf_control(const char *sub, const struct sb_request *req, struct sb_response *resp)
{
    char *path = xstrdup(sub);
    char *seg[6];
    size_t n = 0;
    char *save = NULL;
    bool handled = true;
    sf_store_note_host(sb_req_header(req, "Host"));
    for (char *s = strtok_r(path, "/", &save); s && n < 6; s = strtok_r(NULL, "/", &save))
        seg[n++] = s;
    if (n >= 1 && strcmp(seg[0], "records") == 0)
        records(req, seg, n, resp);
    else if (n == 1 && strcmp(seg[0], "org") == 0)
        org(req, resp);
    else if (n == 1 && strcmp(seg[0], "usage") == 0)
        usage(req, resp);
    else if (n == 1 && strcmp(seg[0], "load") == 0 && is_method(req, "POST"))
        load(req, resp);
    else if (n == 2 && strcmp(seg[0], "tokens") == 0 && strcmp(seg[1], "expire") == 0 &&
             is_method(req, "POST")) {
        sf_token_expire_all();
        message(resp, 200, "all tokens expired");
    } else if (n == 1 && strcmp(seg[0], "outbound") == 0 && is_method(req, "GET"))
        sb_respond_json(resp, 200, sf_outbound_state());
    else
        handled = false;
    free(path);
    return handled;
}

void sb_sf_init(void)
{
    sf_store_clear();
    sf_store_seed();
}

void sb_sf_reset(void)
{
    sf_query_clear();
    sf_store_clear();
    sf_store_seed();
}
