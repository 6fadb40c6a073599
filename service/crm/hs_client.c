/* hs_client.c - HubSpot CRM REST over one borrowed http_client: request building, batch
 * splitting, 207 per-item errors and HubSpot's error bodies. No field mapping, and no retries
 * but a 429's, sent again in place through the API budget: the worker retries transient errors
 * using hs_retry_after_ms(). */
#include "hs_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api_budget.h"
#include "log.h"
#include "util.h"

/* A 429 with policyName DAILY lasts until the account's midnight, which we cannot know here;
 * an hour keeps the worker from hammering a closed door. */
#define DAILY_LIMIT_RETRY_MS 3600000
/* The rolling burst window HubSpot documents, for a 429 that gives no hint. */
#define BURST_WINDOW_MS 10000
/* Search has its own per-second limit (5/s) and sends no rate-limit headers. */
#define SEARCH_WINDOW_MS 1000
#define MAX_PAGES 10000
/* A 429 under the burst or search limit is sent again in place this often before the record is
 * given back: the batch's earlier calls are not made again. */
#define RATE_LIMIT_RESENDS 2

struct hs_client {
    struct http_client *hc;
    char *base_url;
    char *token;
    int64_t retry_after_ms;
    struct api_budget *budget; /* borrowed; NULL = calls are not paced */
};

enum err hs_client_new(const struct hs_client_options *opt, struct http_client *hc,
                       struct hs_client **out)
{
    const char *missing = !opt->base_url || !*opt->base_url           ? "base_url"
                          : !opt->access_token || !*opt->access_token ? "access_token"
                                                                      : NULL;
    if (missing) {
        log_error("hubspot client option missing", LOG_STR("option", missing));
        return ERR_CONFIG;
    }
    struct hs_client *hs = xcalloc(1, sizeof(*hs));
    hs->hc = hc;
    size_t len = strlen(opt->base_url);
    hs->base_url = xstrndup(opt->base_url, len - (opt->base_url[len - 1] == '/'));
    hs->token = xstrdup(opt->access_token);
    hs->retry_after_ms = -1;
    *out = hs;
    return ERR_OK;
}

void hs_client_free(struct hs_client *hs)
{
    if (!hs)
        return;
    OPENSSL_cleanse(hs->token, strlen(hs->token));
    free(hs->token);
    free(hs->base_url);
    free(hs);
}

int64_t hs_retry_after_ms(const struct hs_client *hs)
{
    return hs->retry_after_ms;
}

void hs_client_set_budget(struct hs_client *hs, struct api_budget *budget)
{
    hs->budget = budget;
}

bool hs_error_parse(const char *body, char **category, char **correlation_id, char **policy)
{
    cJSON *root = body ? cJSON_Parse(body) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return false;
    }
    static const char *const keys[] = {"category", "correlationId", "policyName"};
    char **outs[] = {category, correlation_id, policy};
    bool found = false;
    for (size_t i = 0; i < 3; i++) {
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, keys[i]));
        if (!v && i == 0) /* the 429 body calls it errorType */
            v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "errorType"));
        if (v && outs[i])
            *outs[i] = xstrdup(v);
        found = found || v;
    }
    cJSON_Delete(root);
    return found;
}

static bool is_object_type(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

/* Sends one request to base_url + path; *json receives the parsed body (NULL when empty),
 * *status the HTTP status. Errors are logged here with HubSpot's category. */
static enum err hs_call(struct hs_client *hs, const char *method, const char *path,
                        const cJSON *body, long *status, cJSON **json)
{
    struct http_response resp;
    char *url = xasprintf("%s%s", hs->base_url, path);
    char *auth = xasprintf("Authorization: Bearer %s", hs->token);
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    char *category = NULL, *correlation = NULL, *policy = NULL;
    char *log_path = xstrndup(path, strcspn(path, "?"));
    const char *headers[] = {auth, "Accept: application/json",
                             text ? "Content-Type: application/json" : NULL, NULL};

    size_t path_len = strlen(log_path);
    bool is_search = path_len >= 7 && strcmp(log_path + path_len - 7, "/search") == 0;
    int64_t wait_ms = -1;
    struct api_budget_entry entry = {0};
    enum err rc;

    *json = NULL;
    http_response_init(&resp);
    for (int resends = 0;; resends++) {
        hs->retry_after_ms = -1;
        if (hs->budget &&
            api_budget_hs_take(hs->budget, is_search, &wait_ms, &entry) == ERR_RATE_LIMIT) {
            /* Not sent: waiting is not failing, the worker defers the record without an
             * attempt. */
            *status = 0;
            hs->retry_after_ms = wait_ms;
            rc = ERR_RATE_LIMIT;
            goto out;
        }
        rc = http_client_request(hs->hc, method, url, headers, text, &resp);
        if (hs->budget)
            api_budget_hs_answered(hs->budget, &entry);
        *status = resp.status;
        api_budget_count_call("hubspot", log_path, resp.status);
        if (rc != ERR_OK)
            hs_error_parse(resp.body, &category, &correlation, &policy);
        if (hs->budget && resp.status > 0)
            api_budget_hs_observe(hs->budget, is_search, &resp, policy);
        /* A 429 under the burst or search limit (not the day's) refused the call without doing
         * it: it goes again once HubSpot's Retry-After has passed, paced by the budget, which
         * the answer has just held back. */
        bool is_resent =
            resp.status == 429 && !(policy && strcmp(policy, "DAILY") == 0) && hs->budget &&
            resends < RATE_LIMIT_RESENDS &&
            api_budget_hs_retry_wait(hs->budget, resp.has_retry_after ? resp.retry_after_ms : 0);
        if (!is_resent)
            break;
        log_info("hubspot request resent after 429", LOG_STR("method", method),
                 LOG_STR("path", log_path), LOG_STR("policy", policy),
                 LOG_I64("retry_after_ms", resp.retry_after_ms), LOG_I64("resend", resends + 1));
        free(policy);
        free(correlation);
        free(category);
        policy = correlation = category = NULL;
        http_response_clear(&resp);
    }
    if (rc != ERR_OK) {
        if (rc == ERR_RATE_LIMIT || rc == ERR_UPSTREAM) {
            int64_t hint = resp.retry_after_ms;
            if (resp.status == 429 && hint < 0)
                hint =
                    policy && strcmp(policy, "SECONDLY") == 0 ? SEARCH_WINDOW_MS : BURST_WINDOW_MS;
            if (policy && strcmp(policy, "DAILY") == 0 && hint < DAILY_LIMIT_RETRY_MS)
                hint = DAILY_LIMIT_RETRY_MS;
            hs->retry_after_ms = hint;
        }
        /* A missing or conflicting record is an answer the caller acts on, not a degradation;
         * a rate limit is waited out by the queue's backoff. */
        log_emit(
            rc == ERR_NOT_FOUND || rc == ERR_CONFLICT || rc == ERR_RATE_LIMIT ? LOG_INFO : LOG_WARN,
            "hubspot request failed", LOG_STR("method", method), LOG_STR("path", log_path),
            LOG_I64("http_status", resp.status), LOG_STR("category", category),
            LOG_STR("policy", policy), LOG_STR("correlation_id", correlation),
            LOG_I64("body_bytes", resp.body_len), LOG_I64("retry_after_ms", hs->retry_after_ms),
            LOG_STR("err", err_name(rc)), LOG_END);
        goto out;
    }
    if (resp.body_len > 0 && !(*json = cJSON_Parse(resp.body))) {
        log_warn("hubspot answer is not json", LOG_STR("method", method), LOG_STR("path", log_path),
                 LOG_I64("http_status", resp.status), LOG_I64("body_bytes", resp.body_len));
        rc = ERR_UPSTREAM;
    }
out:
    free(log_path);
    free(policy);
    free(correlation);
    free(category);
    free(text);
    OPENSSL_cleanse(auth, strlen(auth));
    free(auth);
    free(url);
    http_response_clear(&resp);
    return rc;
}

/* A call whose answer is one JSON value: *out gets the member `member` of it (whole answer when
 * member is NULL), or nothing when out is NULL. */
static enum err hs_call_get(struct hs_client *hs, const char *method, const char *path,
                            const cJSON *body, const char *member, cJSON **out)
{
    long status;
    cJSON *json = NULL;
    enum err rc = hs_call(hs, method, path, body, &status, &json);
    cJSON *value = member ? cJSON_GetObjectItemCaseSensitive(json, member) : json;
    if (rc == ERR_OK && out && !value) {
        log_warn("hubspot answer lacks expected member", LOG_STR("member", member));
        rc = ERR_UPSTREAM;
    }
    if (rc == ERR_OK && out) {
        *out = member ? cJSON_DetachItemViaPointer(json, value) : json;
        if (!member)
            json = NULL;
    }
    cJSON_Delete(json);
    return rc;
}

/* Query string builder: appends "&name=enc(value)" (or "?…" first) when value is set. */
static void query_add(struct buf *b, const char *name, const char *value)
{
    if (!value)
        return;
    char *enc = http_url_encode(value);
    buf_printf(b, "%s%s=%s", strchr(b->data ? b->data : "", '?') ? "&" : "?", name, enc);
    free(enc);
}

/* "/crm/v3/objects/<type>[/<enc id>]". */
static char *object_path(const char *type, const char *id)
{
    char *enc = id ? http_url_encode(id) : NULL;
    char *p = xasprintf("/crm/v3/objects/%s%s%s", type, enc ? "/" : "", enc ? enc : "");
    free(enc);
    return p;
}

/* A query parameter of a GET; a NULL value leaves it out. */
struct query_param {
    const char *name, *value;
};

/* GET of the object id of object_type, with the n query parameters in the order given. */
static enum err object_get(struct hs_client *hs, const char *object_type, const char *id,
                           const struct query_param *params, size_t n, cJSON **object)
{
    if (!is_object_type(object_type))
        return ERR_INVALID;
    struct buf path;
    buf_init(&path, 0);
    char *base = object_path(object_type, id);
    buf_append_str(&path, base);
    for (size_t i = 0; i < n; i++)
        query_add(&path, params[i].name, params[i].value);
    enum err rc = hs_call_get(hs, "GET", path.data, NULL, NULL, object);
    free(base);
    buf_clear(&path);
    return rc;
}

enum err hs_object_get(struct hs_client *hs, const char *object_type, const char *id,
                       const char *id_property, const char *properties, const char *associations,
                       cJSON **object)
{
    const struct query_param params[] = {
        {"properties", properties}, {"associations", associations}, {"idProperty", id_property}};
    return object_get(hs, object_type, id, params, 3, object);
}

enum err hs_object_get_history(struct hs_client *hs, const char *object_type, const char *id,
                               const char *history, cJSON **object)
{
    const struct query_param params[] = {{"properties", history},
                                         {"propertiesWithHistory", history}};
    return object_get(hs, object_type, id, params, 2, object);
}

enum err hs_object_get_archived(struct hs_client *hs, const char *object_type, const char *id,
                                cJSON **object)
{
    const struct query_param params[] = {{"archived", "true"}};
    return object_get(hs, object_type, id, params, 1, object);
}

enum err hs_object_create(struct hs_client *hs, const char *object_type, const cJSON *properties,
                          const cJSON *associations, cJSON **object)
{
    if (!is_object_type(object_type))
        return ERR_INVALID;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "properties", cJSON_Duplicate(properties, true));
    cJSON_AddItemToObject(body, "associations",
                          associations ? cJSON_Duplicate(associations, true) : cJSON_CreateArray());
    char *path = object_path(object_type, NULL);
    enum err rc = hs_call_get(hs, "POST", path, body, NULL, object);
    free(path);
    cJSON_Delete(body);
    return rc;
}

enum err hs_object_update(struct hs_client *hs, const char *object_type, const char *id,
                          const char *id_property, const cJSON *properties, cJSON **object)
{
    if (!is_object_type(object_type))
        return ERR_INVALID;
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "properties", cJSON_Duplicate(properties, true));
    struct buf path;
    buf_init(&path, 0);
    char *base = object_path(object_type, id);
    buf_append_str(&path, base);
    query_add(&path, "idProperty", id_property);
    enum err rc = hs_call_get(hs, "PATCH", path.data, body, NULL, object);
    free(base);
    buf_clear(&path);
    cJSON_Delete(body);
    return rc;
}

enum err hs_object_archive(struct hs_client *hs, const char *object_type, const char *id)
{
    if (!is_object_type(object_type))
        return ERR_INVALID;
    char *path = object_path(object_type, id);
    enum err rc = hs_call_get(hs, "DELETE", path, NULL, NULL, NULL);
    free(path);
    return rc;
}

/* ---- Batch -------------------------------------------------------------------------------- */

void hs_batch_result_clear(struct hs_batch_result *r)
{
    if (!r)
        return;
    cJSON_Delete(r->results);
    cJSON_Delete(r->errors);
    r->results = NULL;
    r->errors = NULL;
}

static void move_items(cJSON *from, cJSON *to)
{
    while (cJSON_IsArray(from) && cJSON_GetArraySize(from) > 0)
        cJSON_AddItemToArray(to, cJSON_DetachItemFromArray(from, 0));
}

/* POSTs inputs to path in chunks of HS_BATCH_MAX as {"inputs":[…]} plus the members of extra
 * (may be NULL), merging "results" and "errors". */
static enum err batch_send(struct hs_client *hs, const char *path, const cJSON *inputs,
                           const cJSON *extra, struct hs_batch_result *res)
{
    struct hs_batch_result all = {cJSON_CreateArray(), cJSON_CreateArray()};
    enum err rc = ERR_OK;
    int total = cJSON_GetArraySize(inputs);

    if (!cJSON_IsArray(inputs)) {
        rc = ERR_INVALID;
        goto out;
    }
    for (int from = 0; from < total && rc == ERR_OK; from += HS_BATCH_MAX) {
        cJSON *body = extra ? cJSON_Duplicate(extra, true) : cJSON_CreateObject();
        cJSON *chunk = cJSON_AddArrayToObject(body, "inputs");
        for (int i = from; i < total && i < from + HS_BATCH_MAX; i++)
            cJSON_AddItemToArray(chunk, cJSON_Duplicate(cJSON_GetArrayItem(inputs, i), true));
        long status;
        cJSON *json = NULL;
        rc = hs_call(hs, "POST", path, body, &status, &json);
        if (rc == ERR_OK) {
            move_items(cJSON_GetObjectItemCaseSensitive(json, "results"), all.results);
            move_items(cJSON_GetObjectItemCaseSensitive(json, "errors"), all.errors);
        }
        cJSON_Delete(json);
        cJSON_Delete(body);
    }
    if (rc != ERR_OK)
        goto out;
    if (cJSON_GetArraySize(all.errors) > 0) {
        /* A batch read answering "not found" for some ids is how dealsync learns a record does
         * not exist yet: an expected answer, not a warning. */
        int missing = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, all.errors)
        {
            const cJSON *cat = cJSON_GetObjectItemCaseSensitive(e, "category");
            missing += cJSON_IsString(cat) && strcmp(cat->valuestring, "OBJECT_NOT_FOUND") == 0;
        }
        log_emit(missing == cJSON_GetArraySize(all.errors) ? LOG_DEBUG : LOG_WARN,
                 "hubspot batch had failed items", LOG_STR("path", path), LOG_I64("inputs", total),
                 LOG_I64("errors", cJSON_GetArraySize(all.errors)), LOG_I64("not_found", missing),
                 LOG_END);
    }
    *res = all;
    all = (struct hs_batch_result){0};
out:
    hs_batch_result_clear(&all);
    return rc;
}

static enum err object_batch(struct hs_client *hs, const char *object_type, const char *op,
                             const cJSON *inputs, const cJSON *extra, struct hs_batch_result *res)
{
    if (!is_object_type(object_type))
        return ERR_INVALID;
    char *path = xasprintf("/crm/v3/objects/%s/batch/%s", object_type, op);
    enum err rc = batch_send(hs, path, inputs, extra, res);
    free(path);
    return rc;
}

enum err hs_batch_create(struct hs_client *hs, const char *object_type, const cJSON *inputs,
                         struct hs_batch_result *res)
{
    /* HubSpot answers 207 per-item errors for batch create only when every input carries an
     * objectWriteTraceId (reference 4.1); without them one bad input fails the whole call. */
    cJSON *traced = cJSON_Duplicate(inputs, true);
    int i = 0;
    cJSON *in;
    cJSON_ArrayForEach(in, traced)
    {
        if (cJSON_IsObject(in) && !cJSON_GetObjectItemCaseSensitive(in, "objectWriteTraceId")) {
            char trace[16];
            snprintf(trace, sizeof(trace), "%d", i);
            cJSON_AddStringToObject(in, "objectWriteTraceId", trace);
        }
        i++;
    }
    enum err rc = object_batch(hs, object_type, "create", traced, NULL, res);
    cJSON_Delete(traced);
    return rc;
}

enum err hs_batch_update(struct hs_client *hs, const char *object_type, const cJSON *inputs,
                         struct hs_batch_result *res)
{
    return object_batch(hs, object_type, "update", inputs, NULL, res);
}

enum err hs_batch_upsert(struct hs_client *hs, const char *object_type, const cJSON *inputs,
                         struct hs_batch_result *res)
{
    return object_batch(hs, object_type, "upsert", inputs, NULL, res);
}

/* [{"id":ids[0]},…] */
static cJSON *id_inputs(const char *const *ids, size_t count)
{
    cJSON *inputs = cJSON_CreateArray();
    for (size_t i = 0; i < count; i++) {
        cJSON *in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "id", ids[i]);
        cJSON_AddItemToArray(inputs, in);
    }
    return inputs;
}

/* ["a","b"] from "a,b". */
static cJSON *split_list(const char *list)
{
    cJSON *arr = cJSON_CreateArray();
    for (const char *p = list; p && *p;) {
        size_t n = strcspn(p, ",");
        if (n) {
            char *item = xstrndup(p, n);
            cJSON_AddItemToArray(arr, cJSON_CreateString(item));
            free(item);
        }
        p += n + (p[n] == ',');
    }
    return arr;
}

enum err hs_batch_read(struct hs_client *hs, const char *object_type, const char *id_property,
                       const char *properties, const char *const *ids, size_t count,
                       struct hs_batch_result *res)
{
    cJSON *inputs = id_inputs(ids, count);
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddItemToObject(extra, "properties", split_list(properties));
    if (id_property)
        cJSON_AddStringToObject(extra, "idProperty", id_property);
    enum err rc = object_batch(hs, object_type, "read", inputs, extra, res);
    cJSON_Delete(extra);
    cJSON_Delete(inputs);
    return rc;
}

enum err hs_batch_archive(struct hs_client *hs, const char *object_type, const char *const *ids,
                          size_t count, struct hs_batch_result *res)
{
    cJSON *inputs = id_inputs(ids, count);
    enum err rc = object_batch(hs, object_type, "archive", inputs, NULL, res);
    cJSON_Delete(inputs);
    return rc;
}

enum err hs_search_page(struct hs_client *hs, const char *object_type, const cJSON *request,
                        const char *after, cJSON **results, char **next_after, long long *total)
{
    if (!is_object_type(object_type) || !cJSON_IsObject(request))
        return ERR_INVALID;
    cJSON *body = cJSON_Duplicate(request, true);
    cJSON_DeleteItemFromObjectCaseSensitive(body, "after");
    if (after)
        cJSON_AddStringToObject(body, "after", after);
    char *path = xasprintf("/crm/v3/objects/%s/search", object_type);
    cJSON *json = NULL;
    enum err rc = hs_call_get(hs, "POST", path, body, NULL, &json);
    cJSON *page = cJSON_GetObjectItemCaseSensitive(json, "results");
    if (rc == ERR_OK && !cJSON_IsArray(page)) {
        log_warn("hubspot search answer without results");
        rc = ERR_UPSTREAM;
    }
    if (rc == ERR_OK) {
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(json, "paging"), "next");
        const cJSON *cursor = cJSON_GetObjectItemCaseSensitive(next, "after");
        const cJSON *count = cJSON_GetObjectItemCaseSensitive(json, "total");
        *next_after = cJSON_IsString(cursor) ? xstrdup(cursor->valuestring) : NULL;
        *results = cJSON_DetachItemViaPointer(json, page);
        if (total)
            *total = cJSON_IsNumber(count) ? (long long)count->valuedouble : -1;
    }
    cJSON_Delete(json);
    free(path);
    cJSON_Delete(body);
    return rc;
}

void hs_search_filter(cJSON *filters, const char *property, const char *op, const char *value)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "propertyName", property);
    cJSON_AddStringToObject(f, "operator", op);
    if (value)
        cJSON_AddStringToObject(f, "value", value);
    cJSON_AddItemToArray(filters, f);
}

enum err hs_search_count(struct hs_client *hs, const char *object_type, const cJSON *group,
                         long long *total)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "filterGroups"), cJSON_Duplicate(group, true));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "properties"),
                         cJSON_CreateString("hs_object_id"));
    cJSON_AddNumberToObject(req, "limit", 1);
    cJSON *results = NULL;
    char *next = NULL;
    *total = -1;
    enum err rc = hs_search_page(hs, object_type, req, NULL, &results, &next, total);
    cJSON_Delete(req);
    cJSON_Delete(results);
    free(next);
    return rc;
}

enum err hs_search(struct hs_client *hs, const char *object_type, const cJSON *request,
                   const char *after, cJSON **results, char **next_after)
{
    return hs_search_page(hs, object_type, request, after, results, next_after, NULL);
}

/* ---- Associations v4 ---------------------------------------------------------------------- */

/* "/crm/v4/objects/<from>/<id>/associations/<mid><to>[/<to_id>]". */
static char *assoc_path(const char *from_type, const char *from_id, const char *mid,
                        const char *to_type, const char *to_id)
{
    char *f = http_url_encode(from_id);
    char *t = to_id ? http_url_encode(to_id) : NULL;
    char *p = xasprintf("/crm/v4/objects/%s/%s/associations/%s%s%s%s", from_type, f, mid, to_type,
                        t ? "/" : "", t ? t : "");
    free(t);
    free(f);
    return p;
}

static cJSON *assoc_type_json(struct hs_assoc_type t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "associationCategory", t.category ? t.category : "HUBSPOT_DEFINED");
    cJSON_AddNumberToObject(o, "associationTypeId", t.type_id);
    return o;
}

enum err hs_assoc_create_default(struct hs_client *hs, const char *from_type, const char *from_id,
                                 const char *to_type, const char *to_id)
{
    if (!is_object_type(from_type) || !is_object_type(to_type))
        return ERR_INVALID;
    char *path = assoc_path(from_type, from_id, "default/", to_type, to_id);
    enum err rc = hs_call_get(hs, "PUT", path, NULL, NULL, NULL);
    free(path);
    return rc;
}

enum err hs_assoc_create(struct hs_client *hs, const char *from_type, const char *from_id,
                         const char *to_type, const char *to_id, const struct hs_assoc_type *types,
                         size_t n)
{
    if (!is_object_type(from_type) || !is_object_type(to_type) || n == 0)
        return ERR_INVALID;
    cJSON *body = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(body, assoc_type_json(types[i]));
    char *path = assoc_path(from_type, from_id, "", to_type, to_id);
    enum err rc = hs_call_get(hs, "PUT", path, body, NULL, NULL);
    free(path);
    cJSON_Delete(body);
    return rc;
}

enum err hs_assoc_delete(struct hs_client *hs, const char *from_type, const char *from_id,
                         const char *to_type, const char *to_id)
{
    if (!is_object_type(from_type) || !is_object_type(to_type))
        return ERR_INVALID;
    char *path = assoc_path(from_type, from_id, "", to_type, to_id);
    enum err rc = hs_call_get(hs, "DELETE", path, NULL, NULL, NULL);
    free(path);
    return rc;
}

/* Every page of a GET list answer: base_path (with its query, e.g. "?limit=500") is followed
 * by "&after=<cursor>" while "paging.next.after" is given; *results gets every "results" item. */
static enum err list_all(struct hs_client *hs, const char *base_path, cJSON **results)
{
    cJSON *all = cJSON_CreateArray();
    char *after = NULL;
    enum err rc = ERR_OK;

    for (int page = 0; rc == ERR_OK; page++) {
        struct buf path;
        buf_init(&path, 0);
        buf_append_str(&path, base_path);
        query_add(&path, "after", after);
        cJSON *json = NULL;
        rc = page < MAX_PAGES ? hs_call_get(hs, "GET", path.data, NULL, NULL, &json) : ERR_UPSTREAM;
        buf_clear(&path);
        free(after);
        after = NULL;
        if (rc == ERR_OK) {
            move_items(cJSON_GetObjectItemCaseSensitive(json, "results"), all);
            const cJSON *cursor = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(json, "paging"),
                                                 "next"),
                "after");
            if (cJSON_IsString(cursor))
                after = xstrdup(cursor->valuestring);
        }
        cJSON_Delete(json);
        if (!after)
            break;
    }
    if (rc == ERR_OK) {
        *results = all;
        all = NULL;
    }
    free(after);
    cJSON_Delete(all);
    return rc;
}

enum err hs_assoc_list(struct hs_client *hs, const char *from_type, const char *from_id,
                       const char *to_type, cJSON **results)
{
    if (!is_object_type(from_type) || !is_object_type(to_type))
        return ERR_INVALID;
    char *base = assoc_path(from_type, from_id, "", to_type, NULL);
    char *path = xasprintf("%s?limit=500", base);
    enum err rc = list_all(hs, path, results);
    free(path);
    free(base);
    return rc;
}

static enum err assoc_batch(struct hs_client *hs, const char *from_type, const char *to_type,
                            const char *op, const cJSON *inputs, struct hs_batch_result *res)
{
    if (!is_object_type(from_type) || !is_object_type(to_type))
        return ERR_INVALID;
    char *path = xasprintf("/crm/v4/associations/%s/%s/batch/%s", from_type, to_type, op);
    enum err rc = batch_send(hs, path, inputs, NULL, res);
    free(path);
    return rc;
}

static cJSON *id_object(const char *id)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    return o;
}

enum err hs_assoc_batch_create(struct hs_client *hs, const char *from_type, const char *to_type,
                               const struct hs_assoc_pair *pairs, size_t count,
                               struct hs_assoc_type type, struct hs_batch_result *res)
{
    cJSON *inputs = cJSON_CreateArray();
    for (size_t i = 0; i < count; i++) {
        cJSON *in = cJSON_CreateObject();
        cJSON_AddItemToObject(in, "from", id_object(pairs[i].from_id));
        cJSON_AddItemToObject(in, "to", id_object(pairs[i].to_id));
        cJSON *types = cJSON_AddArrayToObject(in, "types");
        cJSON_AddItemToArray(types, assoc_type_json(type));
        cJSON_AddItemToArray(inputs, in);
    }
    enum err rc = assoc_batch(hs, from_type, to_type, "create", inputs, res);
    cJSON_Delete(inputs);
    return rc;
}

enum err hs_assoc_batch_archive(struct hs_client *hs, const char *from_type, const char *to_type,
                                const struct hs_assoc_pair *pairs, size_t count,
                                struct hs_batch_result *res)
{
    cJSON *inputs = cJSON_CreateArray();
    for (size_t i = 0; i < count; i++) {
        cJSON *in = cJSON_CreateObject();
        cJSON_AddItemToObject(in, "from", id_object(pairs[i].from_id));
        cJSON *to = cJSON_AddArrayToObject(in, "to");
        cJSON_AddItemToArray(to, id_object(pairs[i].to_id));
        cJSON_AddItemToArray(inputs, in);
    }
    enum err rc = assoc_batch(hs, from_type, to_type, "archive", inputs, res);
    cJSON_Delete(inputs);
    return rc;
}

enum err hs_assoc_batch_read(struct hs_client *hs, const char *from_type, const char *to_type,
                             const char *const *ids, size_t count, struct hs_batch_result *res)
{
    cJSON *inputs = id_inputs(ids, count);
    enum err rc = assoc_batch(hs, from_type, to_type, "read", inputs, res);
    cJSON_Delete(inputs);
    return rc;
}

/* ---- Pipelines, owners, properties -------------------------------------------------------- */

enum err hs_pipelines_list(struct hs_client *hs, const char *object_type, cJSON **pipelines)
{
    if (!is_object_type(object_type))
        return ERR_INVALID;
    char *path = xasprintf("/crm/v3/pipelines/%s", object_type);
    enum err rc = hs_call_get(hs, "GET", path, NULL, "results", pipelines);
    free(path);
    return rc;
}

enum err hs_pipeline_create(struct hs_client *hs, const char *object_type, const cJSON *input,
                            cJSON **pipeline)
{
    if (!is_object_type(object_type))
        return ERR_INVALID;
    char *path = xasprintf("/crm/v3/pipelines/%s", object_type);
    enum err rc = hs_call_get(hs, "POST", path, input, NULL, pipeline);
    free(path);
    return rc;
}

enum err hs_pipeline_stage_create(struct hs_client *hs, const char *object_type,
                                  const char *pipeline_id, const cJSON *input, cJSON **stage)
{
    if (!is_object_type(object_type))
        return ERR_INVALID;
    char *enc = http_url_encode(pipeline_id);
    char *path = xasprintf("/crm/v3/pipelines/%s/%s/stages", object_type, enc);
    enum err rc = hs_call_get(hs, "POST", path, input, NULL, stage);
    free(path);
    free(enc);
    return rc;
}

enum err hs_owner_find_by_email(struct hs_client *hs, const char *email, char **owner_id)
{
    struct buf path;
    buf_init(&path, 0);
    buf_append_str(&path, "/crm/v3/owners");
    query_add(&path, "email", email);
    cJSON *results = NULL;
    enum err rc = hs_call_get(hs, "GET", path.data, NULL, "results", &results);
    if (rc == ERR_OK) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(results, 0), "id");
        if (cJSON_IsString(id))
            *owner_id = xstrdup(id->valuestring);
        else if (cJSON_IsNumber(id))
            *owner_id = xasprintf("%.0f", id->valuedouble);
        else
            rc = ERR_NOT_FOUND;
    }
    cJSON_Delete(results);
    buf_clear(&path);
    return rc;
}

enum err hs_owners_list(struct hs_client *hs, cJSON **owners)
{
    return list_all(hs, "/crm/v3/owners?limit=100", owners);
}

enum err hs_properties_list(struct hs_client *hs, const char *object_type, cJSON **properties)
{
    if (!is_object_type(object_type))
        return ERR_INVALID;
    char *path = xasprintf("/crm/v3/properties/%s", object_type);
    enum err rc = hs_call_get(hs, "GET", path, NULL, "results", properties);
    free(path);
    return rc;
}

enum err hs_property_get(struct hs_client *hs, const char *object_type, const char *name,
                         cJSON **property)
{
    if (!is_object_type(object_type))
        return ERR_INVALID;
    char *enc = http_url_encode(name);
    char *path = xasprintf("/crm/v3/properties/%s/%s", object_type, enc);
    enum err rc = hs_call_get(hs, "GET", path, NULL, NULL, property);
    free(path);
    free(enc);
    return rc;
}

enum err hs_property_create(struct hs_client *hs, const char *object_type, const cJSON *definition,
                            cJSON **property)
{
    if (!is_object_type(object_type))
        return ERR_INVALID;
    char *path = xasprintf("/crm/v3/properties/%s", object_type);
    enum err rc = hs_call_get(hs, "POST", path, definition, NULL, property);
    free(path);
    return rc;
}
