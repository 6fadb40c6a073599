/* sf_client.c - Salesforce REST over one borrowed http_client: OAuth token handling with one
 * refresh-and-retry on INVALID_SESSION_ID, Salesforce error bodies turned into enum err, and
 * the REST resources the sync needs. No mapping of fields and no retry policy beyond that. */
#include "sf_client.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "api_budget.h"
#include "hmac.h"
#include "log.h"
#include "util.h"

/* A query result larger than this many pages is certainly a loop in nextRecordsUrl. */
#define MAX_QUERY_PAGES 100000
#define JWT_LIFETIME_S 180

struct sf_client {
    struct http_client *hc;
    enum sf_auth_flow flow;
    char *login_url;
    char *client_id;
    char *client_secret;
    char *refresh_token;
    char *username;
    char *audience;
    char *api_version;
    EVP_PKEY *key;
    char *access_token;
    char *instance_url;
    char *user_id; /* last segment of the token answer's identity URL */
    char *limit_info;
    struct api_budget *budget; /* borrowed; NULL = usage not recorded */
};

/* What one API call answered, for the functions that care about more than the JSON. */
struct sf_answer {
    long status;
    cJSON *json; /* NULL for an empty body */
};

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static bool is_set(const char *s)
{
    return s && *s;
}

static EVP_PKEY *load_key(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return key;
}

enum err sf_client_new(const struct sf_client_options *opt, struct http_client *hc,
                       struct sf_client **out)
{
    const char *missing = NULL;
    if (!is_set(opt->login_url))
        missing = "login_url";
    else if (!is_set(opt->client_id))
        missing = "client_id";
    else if (!is_set(opt->api_version))
        missing = "api_version";
    else if (opt->flow == SF_AUTH_REFRESH_TOKEN && !is_set(opt->refresh_token))
        missing = "refresh_token";
    else if (opt->flow == SF_AUTH_JWT_BEARER && !is_set(opt->username))
        missing = "username";
    else if (opt->flow == SF_AUTH_JWT_BEARER && !is_set(opt->private_key_file))
        missing = "private_key_file";
    else if (opt->flow == SF_AUTH_CLIENT_CREDENTIALS && !is_set(opt->client_secret))
        missing = "client_secret";
    if (missing) {
        log_error("salesforce client option missing", LOG_STR("option", missing));
        return ERR_CONFIG;
    }
    EVP_PKEY *key = NULL;
    if (opt->flow == SF_AUTH_JWT_BEARER && !(key = load_key(opt->private_key_file))) {
        log_error("cannot read salesforce private key", LOG_STR("path", opt->private_key_file));
        return ERR_CONFIG;
    }
    struct sf_client *sf = xcalloc(1, sizeof(*sf));
    sf->hc = hc;
    sf->flow = opt->flow;
    sf->key = key;
    sf->login_url = xstrdup(opt->login_url);
    sf->client_id = xstrdup(opt->client_id);
    sf->client_secret = dup_or_null(opt->client_secret);
    sf->refresh_token = dup_or_null(opt->refresh_token);
    sf->username = dup_or_null(opt->username);
    sf->audience = xstrdup(is_set(opt->audience) ? opt->audience : opt->login_url);
    sf->api_version = xstrdup(opt->api_version);
    *out = sf;
    return ERR_OK;
}

void sf_client_free(struct sf_client *sf)
{
    if (!sf)
        return;
    free(sf->login_url);
    free(sf->client_id);
    free_secret(sf->client_secret);
    free_secret(sf->refresh_token);
    free(sf->username);
    free(sf->audience);
    free(sf->api_version);
    EVP_PKEY_free(sf->key);
    free_secret(sf->access_token);
    free(sf->instance_url);
    free(sf->user_id);
    free(sf->limit_info);
    free(sf);
}

const char *sf_instance_url(const struct sf_client *sf)
{
    return sf->instance_url;
}

const char *sf_user_id(const struct sf_client *sf)
{
    return sf->user_id;
}

const char *sf_limit_info(const struct sf_client *sf)
{
    return sf->limit_info;
}

void sf_client_set_budget(struct sf_client *sf, struct api_budget *budget)
{
    sf->budget = budget;
}

/* ---- Pure helpers ------------------------------------------------------------------------ */

bool sf_datetime_parse(const char *s, int64_t *ms)
{
    return util_parse_iso8601_ms(s, ms);
}

bool sf_error_parse(const char *body, char **code, char **message)
{
    cJSON *root = body ? cJSON_Parse(body) : NULL;
    const cJSON *e = root;
    const char *c = NULL, *m = NULL;

    if (cJSON_IsObject(e) && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(e, "errors")))
        e = cJSON_GetObjectItemCaseSensitive(e, "errors"); /* a collections item */
    if (cJSON_IsArray(e))
        e = cJSON_GetArrayItem(e, 0);
    if (cJSON_IsObject(e)) {
        c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "errorCode"));
        if (!c)
            c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "statusCode"));
        if (!c)
            c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "error"));
        m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
        if (!m)
            m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "error_description"));
    }
    bool found = c != NULL;
    if (found) {
        if (code)
            *code = xstrdup(c);
        if (message)
            *message = dup_or_null(m);
    }
    cJSON_Delete(root);
    return found;
}

enum err sf_error_map(enum err base, const char *code)
{
    static const struct {
        const char *code;
        enum err err;
    } codes[] = {
        {"REQUEST_LIMIT_EXCEEDED", ERR_RATE_LIMIT}, /* a 403, but transient */
        {"INVALID_SESSION_ID", ERR_AUTH},
        {"ENTITY_IS_DELETED", ERR_NOT_FOUND},
        {"NOT_FOUND", ERR_NOT_FOUND},
        {"DUPLICATE_VALUE", ERR_CONFLICT},
        {"DUPLICATES_DETECTED", ERR_CONFLICT},
        {"UNABLE_TO_LOCK_ROW", ERR_UPSTREAM}, /* record lock contention: retry later */
        {"SERVER_UNAVAILABLE", ERR_UPSTREAM},
        {"INSUFFICIENT_ACCESS_OR_READONLY", ERR_FORBIDDEN},
        {"INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", ERR_FORBIDDEN},
        {"invalid_grant", ERR_AUTH},
        {"invalid_client", ERR_AUTH},
        {"invalid_client_id", ERR_AUTH},
    };
    for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(code, codes[i].code) == 0)
            return codes[i].err;
    return base;
}

/* ---- JWT bearer assertion ------------------------------------------------------------------ */

static char *b64url_str(const char *s)
{
    return hmac_base64url((const unsigned char *)s, strlen(s));
}

static enum err jwt_sign(EVP_PKEY *key, const char *iss, const char *sub, const char *aud,
                         int64_t now_s, char **jwt)
{
    cJSON *claims = cJSON_CreateObject();
    char *claims_text = NULL, *header = NULL, *payload = NULL, *input = NULL, *sig_b64 = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    enum err rc = ERR_INTERNAL;

    cJSON_AddStringToObject(claims, "iss", iss);
    cJSON_AddStringToObject(claims, "sub", sub);
    cJSON_AddStringToObject(claims, "aud", aud);
    cJSON_AddNumberToObject(claims, "exp", (double)(now_s + JWT_LIFETIME_S));
    claims_text = cJSON_PrintUnformatted(claims);
    header = b64url_str("{\"alg\":\"RS256\"}");
    payload = b64url_str(claims_text);
    input = xasprintf("%s.%s", header, payload);

    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)input, strlen(input)) != 1)
        goto out;
    sig = xmalloc(sig_len);
    if (EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input, strlen(input)) != 1)
        goto out;
    sig_b64 = hmac_base64url(sig, sig_len);
    *jwt = xasprintf("%s.%s", input, sig_b64);
    rc = ERR_OK;
out:
    if (rc != ERR_OK)
        log_error("cannot sign jwt assertion");
    free(sig_b64);
    free(sig);
    EVP_MD_CTX_free(md);
    free(input);
    free(payload);
    free(header);
    free(claims_text);
    cJSON_Delete(claims);
    return rc;
}

enum err sf_jwt_assertion(const char *client_id, const char *username, const char *audience,
                          const char *key_file, int64_t now_s, char **jwt)
{
    EVP_PKEY *key = load_key(key_file);
    if (!key)
        return ERR_CONFIG;
    enum err rc = jwt_sign(key, client_id, username, audience, now_s, jwt);
    EVP_PKEY_free(key);
    return rc;
}

/* ---- Token -------------------------------------------------------------------------------- */

static void form_add(struct buf *b, const char *name, const char *value)
{
    char *enc = http_url_encode(value);
    buf_printf(b, "%s%s=%s", b->len ? "&" : "", name, enc);
    OPENSSL_cleanse(enc, strlen(enc));
    free(enc);
}

/* The form body for the configured grant; holds secrets, so the caller wipes it. */
static enum err token_form(struct sf_client *sf, struct buf *form)
{
    char *jwt = NULL;
    enum err rc = ERR_OK;
    switch (sf->flow) {
    case SF_AUTH_REFRESH_TOKEN:
        form_add(form, "grant_type", "refresh_token");
        form_add(form, "client_id", sf->client_id);
        if (is_set(sf->client_secret))
            form_add(form, "client_secret", sf->client_secret);
        form_add(form, "refresh_token", sf->refresh_token);
        break;
    case SF_AUTH_JWT_BEARER:
        rc = jwt_sign(sf->key, sf->client_id, sf->username, sf->audience, util_now_ms() / 1000,
                      &jwt);
        if (rc != ERR_OK)
            break;
        form_add(form, "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
        form_add(form, "assertion", jwt);
        break;
    case SF_AUTH_CLIENT_CREDENTIALS:
        /* client_secret_post: the secret travels in the body, never in a log or header. */
        form_add(form, "grant_type", "client_credentials");
        form_add(form, "client_id", sf->client_id);
        form_add(form, "client_secret", sf->client_secret);
        break;
    }
    free_secret(jwt);
    return rc;
}

enum err sf_authenticate(struct sf_client *sf)
{
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                          "Accept: application/json", NULL};
    struct buf form;
    struct http_response resp;
    char *url = xasprintf("%s/services/oauth2/token", sf->login_url);
    char *code = NULL;
    cJSON *json = NULL;
    enum err rc;

    buf_init(&form, 0);
    http_response_init(&resp);
    rc = token_form(sf, &form);
    if (rc != ERR_OK)
        goto out;
    rc = http_client_request(sf->hc, "POST", url, headers, form.data, &resp);
    api_budget_count_call("salesforce", "/services/oauth2/token", resp.status);
    if (rc != ERR_OK) {
        sf_error_parse(resp.body, &code, NULL);
        /* A refused grant (400 invalid_grant, 401) needs new credentials, not a retry. */
        if (rc == ERR_INVALID || rc == ERR_FORBIDDEN)
            rc = ERR_AUTH;
        rc = sf_error_map(rc, code);
        log_warn("salesforce token request failed", LOG_I64("http_status", resp.status),
                 LOG_STR("error_code", code), LOG_STR("err", err_name(rc)));
        goto out;
    }
    json = cJSON_Parse(resp.body);
    const char *token =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "access_token"));
    const char *instance =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "instance_url"));
    const char *rotated =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "refresh_token"));
    if (!is_set(token) || !is_set(instance)) {
        log_warn("salesforce token answer incomplete", LOG_I64("body_bytes", resp.body_len));
        rc = ERR_UPSTREAM;
        goto out;
    }
    free_secret(sf->access_token);
    sf->access_token = xstrdup(token);
    free(sf->instance_url);
    sf->instance_url =
        xstrndup(instance, strlen(instance) - (instance[strlen(instance) - 1] == '/'));
    /* The identity URL ends in /<org id>/<user id>: the user the token acts as. */
    const char *identity = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "id"));
    const char *slash = identity ? strrchr(identity, '/') : NULL;
    free(sf->user_id);
    sf->user_id = slash && slash[1] ? xstrdup(slash + 1) : NULL;
    if (is_set(rotated) && sf->flow == SF_AUTH_REFRESH_TOKEN) {
        free_secret(sf->refresh_token);
        sf->refresh_token = xstrdup(rotated);
    }
    log_info("salesforce token obtained", LOG_STR("instance_url", sf->instance_url));
out:
    if (json) {
        /* The answer holds the token in cJSON's own copies too. */
        char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "access_token"));
        if (t)
            OPENSSL_cleanse(t, strlen(t));
        cJSON_Delete(json);
    }
    if (resp.body)
        OPENSSL_cleanse(resp.body, resp.body_len);
    http_response_clear(&resp);
    if (form.data)
        OPENSSL_cleanse(form.data, form.len);
    buf_clear(&form);
    free(code);
    free(url);
    return rc;
}

/* ---- Requests ----------------------------------------------------------------------------- */

/* Sends one API request. target is a path below /services/data/<version>/ ("query?q=…"), or
 * an absolute path starting with '/' (nextRecordsUrl). On a 401 INVALID_SESSION_ID the token
 * is fetched again and the request sent once more. */
static enum err sf_call(struct sf_client *sf, const char *method, const char *target,
                        const cJSON *body, struct sf_answer *ans)
{
    struct http_response resp;
    char *url = NULL, *auth = NULL, *text = NULL, *code = NULL, *path = NULL;
    enum err rc = ERR_OK;

    http_response_init(&resp);
    ans->status = 0;
    ans->json = NULL;
    if (!sf->access_token && (rc = sf_authenticate(sf)) != ERR_OK)
        goto out;
    if (target[0] == '/')
        url = xasprintf("%s%s", sf->instance_url, target);
    else
        url = xasprintf("%s/services/data/%s/%s", sf->instance_url, sf->api_version, target);
    text = body ? cJSON_PrintUnformatted(body) : NULL;

    for (int attempt = 0;; attempt++) {
        free_secret(auth);
        auth = xasprintf("Authorization: Bearer %s", sf->access_token);
        const char *headers[] = {auth, "Accept: application/json",
                                 text ? "Content-Type: application/json" : NULL, NULL};
        http_response_clear(&resp);
        free(code);
        code = NULL;
        rc = http_client_request(sf->hc, method, url, headers, text, &resp);
        char *counted =
            xstrndup(url + strlen(sf->instance_url), strcspn(url + strlen(sf->instance_url), "?"));
        api_budget_count_call("salesforce", counted, resp.status);
        free(counted);
        if (rc == ERR_OK)
            break;
        sf_error_parse(resp.body, &code, NULL);
        if (rc != ERR_AUTH || attempt > 0 || !code || strcmp(code, "INVALID_SESSION_ID") != 0)
            break;
        log_info("salesforce session expired, fetching a new token");
        free_secret(sf->access_token);
        sf->access_token = NULL;
        if ((rc = sf_authenticate(sf)) != ERR_OK)
            goto out;
    }
    if (resp.sforce_limit_info) {
        free(sf->limit_info);
        sf->limit_info = xstrdup(resp.sforce_limit_info);
        if (sf->budget)
            api_budget_sf_observe(sf->budget, sf->limit_info);
    }
    ans->status = resp.status;
    path = xstrndup(target, strcspn(target, "?"));
    if (rc != ERR_OK) {
        rc = sf_error_map(rc, code);
        /* A missing or conflicting record is an answer the caller acts on, not a degradation. */
        log_emit(rc == ERR_NOT_FOUND || rc == ERR_CONFLICT ? LOG_INFO : LOG_WARN,
                 "salesforce request failed", LOG_STR("method", method), LOG_STR("path", path),
                 LOG_I64("http_status", resp.status), LOG_STR("error_code", code),
                 LOG_I64("body_bytes", resp.body_len), LOG_STR("err", err_name(rc)), LOG_END);
        goto out;
    }
    if (resp.body_len > 0) {
        ans->json = cJSON_Parse(resp.body);
        if (!ans->json) {
            log_warn("salesforce answer is not json", LOG_STR("method", method),
                     LOG_STR("path", path), LOG_I64("http_status", resp.status),
                     LOG_I64("body_bytes", resp.body_len));
            rc = ERR_UPSTREAM;
        }
    }
out:
    free(path);
    free(code);
    free(text);
    free_secret(auth);
    free(url);
    http_response_clear(&resp);
    return rc;
}

/* Runs a query resource (query, queryAll, tooling/query) and gathers every page. */
static enum err run_query(struct sf_client *sf, const char *resource, const char *soql,
                          cJSON **records)
{
    char *q = http_url_encode(soql);
    char *next = xasprintf("%s?q=%s", resource, q);
    cJSON *all = cJSON_CreateArray();
    struct sf_answer ans = {0};
    enum err rc = ERR_OK;

    for (int page = 0; next; page++) {
        if (page >= MAX_QUERY_PAGES) {
            rc = ERR_UPSTREAM;
            goto out;
        }
        rc = sf_call(sf, "GET", next, NULL, &ans);
        if (rc != ERR_OK)
            goto out;
        cJSON *recs = cJSON_GetObjectItemCaseSensitive(ans.json, "records");
        if (!cJSON_IsArray(recs)) {
            log_warn("salesforce query answer without records");
            rc = ERR_UPSTREAM;
            goto out;
        }
        while (cJSON_GetArraySize(recs) > 0)
            cJSON_AddItemToArray(all, cJSON_DetachItemFromArray(recs, 0));
        const char *url =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ans.json, "nextRecordsUrl"));
        bool is_done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ans.json, "done"));
        free(next);
        next = !is_done && url ? xstrdup(url) : NULL;
        cJSON_Delete(ans.json);
        ans.json = NULL;
    }
    *records = all;
    all = NULL;
out:
    cJSON_Delete(ans.json);
    cJSON_Delete(all);
    free(next);
    free(q);
    return rc;
}

enum err sf_query_page(struct sf_client *sf, const char *soql, const char *next_url,
                       struct sf_query_page *page)
{
    char *q = next_url ? NULL : http_url_encode(soql);
    char *target = next_url ? xstrdup(next_url) : xasprintf("query?q=%s", q);
    struct sf_answer ans = {0};
    enum err rc = sf_call(sf, "GET", target, NULL, &ans);
    cJSON *recs = cJSON_GetObjectItemCaseSensitive(ans.json, "records");
    if (rc == ERR_OK && !cJSON_IsArray(recs)) {
        log_warn("salesforce query answer without records");
        rc = ERR_UPSTREAM;
    }
    if (rc == ERR_OK) {
        const char *url =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ans.json, "nextRecordsUrl"));
        bool is_done = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ans.json, "done"));
        const cJSON *total = cJSON_GetObjectItemCaseSensitive(ans.json, "totalSize");
        page->records = cJSON_DetachItemViaPointer(ans.json, recs);
        page->total = cJSON_IsNumber(total) ? (long long)total->valuedouble : -1;
        page->next_url = !is_done && url ? xstrdup(url) : NULL;
    }
    cJSON_Delete(ans.json);
    free(target);
    free(q);
    return rc;
}

void sf_query_page_clear(struct sf_query_page *page)
{
    if (!page)
        return;
    cJSON_Delete(page->records);
    free(page->next_url);
    memset(page, 0, sizeof(*page));
}

enum err sf_query(struct sf_client *sf, const char *soql, cJSON **records)
{
    return run_query(sf, "query", soql, records);
}

enum err sf_query_all(struct sf_client *sf, const char *soql, cJSON **records)
{
    return run_query(sf, "queryAll", soql, records);
}

enum err sf_tooling_query(struct sf_client *sf, const char *soql, cJSON **records)
{
    return run_query(sf, "tooling/query", soql, records);
}

/* "<a>/<enc b>[/<enc c>]" with each segment percent-encoded. */
static char *path_of(const char *prefix, const char *a, const char *b, const char *c)
{
    char *ea = http_url_encode(a);
    char *eb = b ? http_url_encode(b) : NULL;
    char *ec = c ? http_url_encode(c) : NULL;
    char *p = xasprintf("%s/%s%s%s%s%s", prefix, ea, eb ? "/" : "", eb ? eb : "", ec ? "/" : "",
                        ec ? ec : "");
    free(ec);
    free(eb);
    free(ea);
    return p;
}

enum err sf_sobject_get(struct sf_client *sf, const char *type, const char *id, const char *fields,
                        cJSON **record)
{
    char *path = path_of("sobjects", type, id, NULL);
    if (fields) {
        char *f = http_url_encode(fields);
        char *with = xasprintf("%s?fields=%s", path, f);
        free(f);
        free(path);
        path = with;
    }
    struct sf_answer ans;
    enum err rc = sf_call(sf, "GET", path, NULL, &ans);
    if (rc == ERR_OK && !cJSON_IsObject(ans.json))
        rc = ERR_UPSTREAM;
    if (rc == ERR_OK) {
        *record = ans.json;
        ans.json = NULL;
    }
    cJSON_Delete(ans.json);
    free(path);
    return rc;
}

enum err sf_picklist_values(struct sf_client *sf, const char *type, const char *record_type_id,
                            const char *field, cJSON **values)
{
    char *rest = path_of(type, "picklist-values", record_type_id, field);
    char *path = xasprintf("ui-api/object-info/%s", rest);
    struct sf_answer ans;
    enum err rc = sf_call(sf, "GET", path, NULL, &ans);
    if (rc == ERR_OK && !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(ans.json, "values")))
        rc = ERR_UPSTREAM;
    if (rc == ERR_OK) {
        *values = ans.json;
        ans.json = NULL;
    }
    cJSON_Delete(ans.json);
    free(path);
    free(rest);
    return rc;
}

/* POST <prefix>/<type> and read {"id","success"}. */
static enum err create_at(struct sf_client *sf, const char *prefix, const char *type,
                          const cJSON *body, char **id)
{
    char *path = path_of(prefix, type, NULL, NULL);
    struct sf_answer ans;
    enum err rc = sf_call(sf, "POST", path, body, &ans);
    const char *new_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ans.json, "id"));
    if (rc == ERR_OK && !new_id) {
        log_warn("salesforce create answer without id", LOG_STR("type", type));
        rc = ERR_UPSTREAM;
    }
    if (rc == ERR_OK)
        *id = xstrdup(new_id);
    cJSON_Delete(ans.json);
    free(path);
    return rc;
}

enum err sf_sobject_create(struct sf_client *sf, const char *type, const cJSON *fields, char **id)
{
    return create_at(sf, "sobjects", type, fields, id);
}

enum err sf_tooling_create(struct sf_client *sf, const char *type, const cJSON *body, char **id)
{
    return create_at(sf, "tooling/sobjects", type, body, id);
}

static enum err no_content_call(struct sf_client *sf, const char *method, const char *type,
                                const char *id, const cJSON *body)
{
    char *path = path_of("sobjects", type, id, NULL);
    struct sf_answer ans;
    enum err rc = sf_call(sf, method, path, body, &ans);
    cJSON_Delete(ans.json);
    free(path);
    return rc;
}

enum err sf_sobject_update(struct sf_client *sf, const char *type, const char *id,
                           const cJSON *fields)
{
    return no_content_call(sf, "PATCH", type, id, fields);
}

enum err sf_sobject_delete(struct sf_client *sf, const char *type, const char *id)
{
    return no_content_call(sf, "DELETE", type, id, NULL);
}

enum err sf_sobject_upsert(struct sf_client *sf, const char *type, const char *ext_field,
                           const char *ext_value, const cJSON *fields, char **id, bool *is_created)
{
    char *path = path_of("sobjects", type, ext_field, ext_value);
    struct sf_answer ans;
    enum err rc = sf_call(sf, "PATCH", path, fields, &ans);
    if (rc == ERR_OK && ans.status == 300) {
        log_warn("salesforce upsert matched several records", LOG_STR("type", type),
                 LOG_STR("field", ext_field));
        rc = ERR_CONFLICT;
    }
    if (rc == ERR_OK) {
        const char *new_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ans.json, "id"));
        const cJSON *created = cJSON_GetObjectItemCaseSensitive(ans.json, "created");
        if (id)
            *id = dup_or_null(new_id);
        if (is_created)
            *is_created = created ? cJSON_IsTrue(created) : ans.status == 201;
    }
    cJSON_Delete(ans.json);
    free(path);
    return rc;
}

/* ---- Collections -------------------------------------------------------------------------- */

void sf_save_results_free(struct sf_save_result *results, size_t n)
{
    if (!results)
        return;
    for (size_t i = 0; i < n; i++) {
        free(results[i].id);
        free(results[i].error_code);
        free(results[i].message);
    }
    free(results);
}

static void save_result_from(const cJSON *item, struct sf_save_result *r)
{
    char *text = cJSON_PrintUnformatted(item);
    memset(r, 0, sizeof(*r));
    r->id = dup_or_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "id")));
    r->is_success = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "success"));
    r->is_created = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "created"));
    r->err = ERR_OK;
    if (!r->is_success) {
        sf_error_parse(text, &r->error_code, &r->message);
        r->err = sf_error_map(ERR_INVALID, r->error_code);
    }
    free(text);
}

/* One collections call; appends its results to *all. */
static enum err collection_call(struct sf_client *sf, const char *method, const char *path,
                                const cJSON *body, size_t expected, struct sf_save_result **all,
                                size_t *n)
{
    struct sf_answer ans;
    enum err rc = sf_call(sf, method, path, body, &ans);
    if (rc == ERR_OK &&
        (!cJSON_IsArray(ans.json) || (size_t)cJSON_GetArraySize(ans.json) != expected)) {
        log_warn("salesforce collection answer does not match the request",
                 LOG_I64("records", (int64_t)expected));
        rc = ERR_UPSTREAM;
    }
    if (rc == ERR_OK) {
        *all = xrealloc(*all, (*n + expected) * sizeof(**all));
        const cJSON *item;
        cJSON_ArrayForEach(item, ans.json)
        {
            save_result_from(item, &(*all)[(*n)++]);
        }
    }
    cJSON_Delete(ans.json);
    return rc;
}

/* Sends records in chunks of SF_COLLECTION_MAX as {"allOrNone":…,"records":[…]}. */
static enum err collection_send(struct sf_client *sf, const char *method, const char *path,
                                const cJSON *records, bool all_or_none,
                                struct sf_save_result **results, size_t *n)
{
    struct sf_save_result *all = NULL;
    size_t count = 0;
    enum err rc = ERR_OK;
    int total = cJSON_GetArraySize(records);

    if (!cJSON_IsArray(records) || (all_or_none && total > SF_COLLECTION_MAX))
        return ERR_INVALID;
    for (int from = 0; from < total && rc == ERR_OK; from += SF_COLLECTION_MAX) {
        cJSON *body = cJSON_CreateObject();
        cJSON *chunk = cJSON_AddArrayToObject(body, "records");
        cJSON_AddBoolToObject(body, "allOrNone", all_or_none);
        for (int i = from; i < total && i < from + SF_COLLECTION_MAX; i++)
            cJSON_AddItemToArray(chunk, cJSON_Duplicate(cJSON_GetArrayItem(records, i), true));
        rc = collection_call(sf, method, path, body, (size_t)cJSON_GetArraySize(chunk), &all,
                             &count);
        cJSON_Delete(body);
    }
    if (rc != ERR_OK) {
        sf_save_results_free(all, count);
        return rc;
    }
    *results = all;
    *n = count;
    return ERR_OK;
}

enum err sf_collection_create(struct sf_client *sf, const cJSON *records, bool all_or_none,
                              struct sf_save_result **results, size_t *n)
{
    return collection_send(sf, "POST", "composite/sobjects", records, all_or_none, results, n);
}

enum err sf_collection_update(struct sf_client *sf, const cJSON *records, bool all_or_none,
                              struct sf_save_result **results, size_t *n)
{
    return collection_send(sf, "PATCH", "composite/sobjects", records, all_or_none, results, n);
}

enum err sf_collection_upsert(struct sf_client *sf, const char *type, const char *ext_field,
                              const cJSON *records, bool all_or_none,
                              struct sf_save_result **results, size_t *n)
{
    char *path = path_of("composite/sobjects", type, ext_field, NULL);
    enum err rc = collection_send(sf, "PATCH", path, records, all_or_none, results, n);
    free(path);
    return rc;
}

enum err sf_collection_delete(struct sf_client *sf, const char *const *ids, size_t count,
                              bool all_or_none, struct sf_save_result **results, size_t *n)
{
    struct sf_save_result *all = NULL;
    size_t done = 0;
    enum err rc = ERR_OK;

    if (all_or_none && count > SF_COLLECTION_MAX)
        return ERR_INVALID;
    for (size_t from = 0; from < count && rc == ERR_OK; from += SF_COLLECTION_MAX) {
        struct buf path;
        buf_init(&path, 0);
        buf_printf(&path, "composite/sobjects?allOrNone=%s&ids=", all_or_none ? "true" : "false");
        size_t to = from + SF_COLLECTION_MAX < count ? from + SF_COLLECTION_MAX : count;
        for (size_t i = from; i < to; i++) {
            char *enc = http_url_encode(ids[i]);
            buf_printf(&path, "%s%s", i > from ? "," : "", enc);
            free(enc);
        }
        rc = collection_call(sf, "DELETE", path.data, NULL, to - from, &all, &done);
        buf_clear(&path);
    }
    if (rc != ERR_OK) {
        sf_save_results_free(all, done);
        return rc;
    }
    *results = all;
    *n = done;
    return ERR_OK;
}

/* ---- Replication windows ------------------------------------------------------------------ */

/* "2013-05-05T00:00:00+00:00", percent-encoded, as the getUpdated/getDeleted docs show it. */
static char *replication_date(int64_t ms)
{
    char iso[UTIL_ISO8601_LEN];
    util_format_iso8601_ms(ms, iso);
    iso[19] = '\0';
    char *plain = xasprintf("%s+00:00", iso);
    char *enc = http_url_encode(plain);
    free(plain);
    return enc;
}

static enum err replication_call(struct sf_client *sf, const char *type, const char *kind,
                                 const char *list_key, int64_t start_ms, int64_t end_ms,
                                 cJSON **list, int64_t *latest_ms, int64_t *earliest_ms)
{
    char *start = replication_date(start_ms), *end = replication_date(end_ms);
    char *base = path_of("sobjects", type, kind, NULL);
    char *path = xasprintf("%s/?start=%s&end=%s", base, start, end);
    struct sf_answer ans;
    int64_t latest = 0;
    enum err rc = sf_call(sf, "GET", path, NULL, &ans);
    cJSON *items = cJSON_GetObjectItemCaseSensitive(ans.json, list_key);
    const char *covered =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ans.json, "latestDateCovered"));
    if (rc == ERR_OK && (!cJSON_IsArray(items) || !sf_datetime_parse(covered, &latest))) {
        log_warn("salesforce replication answer malformed", LOG_STR("resource", kind));
        rc = ERR_UPSTREAM;
    }
    if (rc == ERR_OK) {
        const char *earliest = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(ans.json, "earliestDateAvailable"));
        int64_t e = 0;
        if (earliest_ms)
            *earliest_ms = earliest && sf_datetime_parse(earliest, &e) ? e : 0;
        *list = cJSON_DetachItemViaPointer(ans.json, items);
        *latest_ms = latest;
    }
    cJSON_Delete(ans.json);
    free(path);
    free(base);
    free(end);
    free(start);
    return rc;
}

enum err sf_get_updated(struct sf_client *sf, const char *type, int64_t start_ms, int64_t end_ms,
                        cJSON **ids, int64_t *latest_ms)
{
    return replication_call(sf, type, "updated", "ids", start_ms, end_ms, ids, latest_ms, NULL);
}

enum err sf_get_deleted(struct sf_client *sf, const char *type, int64_t start_ms, int64_t end_ms,
                        cJSON **deleted, int64_t *latest_ms)
{
    return replication_call(sf, type, "deleted", "deletedRecords", start_ms, end_ms, deleted,
                            latest_ms, NULL);
}

enum err sf_get_deleted_window(struct sf_client *sf, const char *type, int64_t start_ms,
                               int64_t end_ms, cJSON **deleted, int64_t *latest_ms,
                               int64_t *earliest_ms)
{
    return replication_call(sf, type, "deleted", "deletedRecords", start_ms, end_ms, deleted,
                            latest_ms, earliest_ms);
}

/* ---- Permissions -------------------------------------------------------------------------- */

enum err sf_user_has_permission(struct sf_client *sf, const char *permission, bool *has)
{
    /* The name goes into SOQL: only Permissions<Letters> passes. */
    if (strncmp(permission, "Permissions", 11) != 0 || !permission[11])
        return ERR_INVALID;
    for (const char *p = permission; *p; p++)
        if (!isalpha((unsigned char)*p))
            return ERR_INVALID;
    char *soql = xasprintf("SELECT %s FROM UserPermissionAccess", permission);
    cJSON *records = NULL;
    enum err rc = sf_query(sf, soql, &records);
    if (rc == ERR_OK) {
        const cJSON *v = cJSON_GetObjectItem(cJSON_GetArrayItem(records, 0), permission);
        if (!cJSON_IsBool(v)) {
            log_warn("salesforce permission answer malformed", LOG_STR("permission", permission));
            rc = ERR_UPSTREAM;
        } else {
            *has = cJSON_IsTrue(v);
        }
    }
    cJSON_Delete(records);
    free(soql);
    return rc;
}

enum err sf_limits(struct sf_client *sf, cJSON **limits)
{
    struct sf_answer ans;
    enum err rc = sf_call(sf, "GET", "limits", NULL, &ans);
    if (rc == ERR_OK && !cJSON_IsObject(ans.json))
        rc = ERR_UPSTREAM;
    if (rc == ERR_OK) {
        *limits = ans.json;
        ans.json = NULL;
    }
    cJSON_Delete(ans.json);
    return rc;
}
