/* register.c - registers dealsync's endpoints in Salesforce and HubSpot, idempotently: reads
 * what exists first, creates only what is missing, never duplicates. It does not delete or
 * rewrite anything an operator made; a conflicting item is reported for a human to resolve.
 *
 * Salesforce no longer lets new workflow rules be created, and an outbound message only sends
 * when something calls it: in a real org a record-triggered flow on Opportunity (after save, on
 * create and update) with an "Outbound Message" action naming ours must call it. That flow is
 * made once in Setup; the sandbox (tests/sandbox) treats every registered outbound message as
 * called by such a flow. */
#include "register.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "hmac.h"
#include "hs_client.h"
#include "log.h"
#include "sf_client.h"
#include "sf_id.h"
#include "sync.h"
#include "util.h"

/* The Opportunity fields every notification carries: what the sync reads to decide whether a
 * change needs work before it calls the API, and who saved the record (a message of dealsync's
 * own save tells a write whose answer was lost was carried out; sync_echo_sf.h). */
static const char *const sf_standard_fields[] = {
    "Id",
    "Name",
    "StageName",
    "Amount",
    "CloseDate",
    "OwnerId",
    "AccountId",
    "RecordTypeId",
    "Type",
    "Description",
    "LastModifiedDate",
    "SystemModstamp",
    "LastModifiedById",
    NULL,
};

static const char *const hs_object_events[] = {"deal.creation", "deal.deletion",
                                               "deal.associationChange", NULL};

/* Deal properties whose changes HubSpot reports (propertyChange subscriptions); the custom
 * mappings' properties are added to these. pipeline is not a field mapping (it follows the
 * record type) but a pipeline move must reach Salesforce too. */
static const char *const hs_standard_properties[] = {"dealname",    "amount",           "closedate",
                                                     "dealstage",   "pipeline",         "dealtype",
                                                     "description", "hubspot_owner_id", NULL};

/* HubSpot refuses fewer than 5 concurrent requests; more than dealsync has HTTP threads would
 * only queue in front of them. */
#define HS_MIN_CONCURRENCY 5
#define HS_DEFAULT_CONCURRENCY 10

static const char *str_item(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

static char *base_url(const struct config *cfg)
{
    const char *b = cfg->public_base_url;
    size_t n = strlen(b);
    while (n > 0 && b[n - 1] == '/')
        n--;
    return xstrndup(b, n);
}

/* The endpoint with token in its query (token NULL: without). */
static char *sf_endpoint_with(const struct config *cfg, const char *token_in)
{
    char *base = base_url(cfg);
    char *url;
    if (token_in) {
        char *token = http_url_encode(token_in);
        url = xasprintf("%s%s?token=%s", base, cfg->salesforce_webhook_path, token);
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    } else {
        url = xasprintf("%s%s", base, cfg->salesforce_webhook_path);
    }
    free(base);
    return url;
}

static char *sf_endpoint(const struct config *cfg, bool with_token)
{
    return sf_endpoint_with(cfg, with_token ? cfg->salesforce_webhook_token : NULL);
}

char *register_sf_endpoint(const struct config *cfg)
{
    return sf_endpoint(cfg, true);
}

char *register_hs_target(const struct config *cfg)
{
    char *base = base_url(cfg);
    char *url = xasprintf("%s%s", base, cfg->hubspot_webhook_path);
    free(base);
    return url;
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

int register_check_config(const struct config *cfg, unsigned targets)
{
    int problems = 0;
    if (!cfg->public_base_url) {
        fprintf(stderr, "register: PUBLIC_BASE_URL is required (the URL at which Salesforce "
                        "and HubSpot reach dealsync)\n");
        problems++;
    }
    if ((targets & REGISTER_SALESFORCE) && !config_has_salesforce_api(cfg)) {
        fprintf(stderr, "register: Salesforce needs SALESFORCE_CLIENT_ID with either "
                        "SALESFORCE_CLIENT_SECRET and SALESFORCE_REFRESH_TOKEN, or "
                        "SALESFORCE_USERNAME and SALESFORCE_PRIVATE_KEY_FILE\n");
        problems++;
    }
    if ((targets & REGISTER_HUBSPOT) && !cfg->hubspot_developer_api_key) {
        fprintf(stderr, "register: HubSpot needs HUBSPOT_DEVELOPER_API_KEY (the developer "
                        "account's API key; the webhooks API accepts no private-app token)\n");
        problems++;
    }
    if ((targets & REGISTER_HUBSPOT) && !cfg->hubspot_app_id) {
        fprintf(stderr, "register: HubSpot needs HUBSPOT_APP_ID\n");
        problems++;
    }
    return problems;
}

/* Appends name to the array unless it is there already. */
static void add_unique(cJSON *arr, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (strcmp(it->valuestring, name) == 0)
            return;
    }
    cJSON_AddItemToArray(arr, cJSON_CreateString(name));
}

/* The standard names plus a comma list from the mappings (may be NULL); names with a '.'
 * (parent fields such as Account.Name) cannot be in an outbound message and are left out. */
static cJSON *name_list(const char *const *standard, char *mapped)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; standard[i]; i++)
        add_unique(arr, standard[i]);
    char *save = NULL;
    for (char *s = mapped ? strtok_r(mapped, ",", &save) : NULL; s; s = strtok_r(NULL, ",", &save))
        if (*s && !strchr(s, '.'))
            add_unique(arr, s);
    return arr;
}

/* ---- Salesforce ---------------------------------------------------------------------------- */

/* The Username the outbound message is sent as: SALESFORCE_USERNAME, else the user the API
 * token acts as (the integration user). Caller frees. */
static enum err sf_integration_user(const struct config *cfg, struct sf_client *sf, char **out)
{
    cJSON *user = NULL;
    if (cfg->salesforce_username) {
        *out = xstrdup(cfg->salesforce_username);
        return ERR_OK;
    }
    enum err rc = ERR_OK;
    if (!sf_user_id(sf) && (rc = sf_authenticate(sf)) != ERR_OK)
        return rc;
    const char *id = sf_user_id(sf);
    if (!id || !sf_id_is_valid(id)) {
        log_error("salesforce token answer names no user",
                  LOG_STR("hint", "set SALESFORCE_USERNAME to the integration user"));
        return ERR_UPSTREAM;
    }
    rc = sf_sobject_get(sf, "User", id, "Username", &user);
    if (rc == ERR_OK) {
        const char *name = str_item(user, "Username");
        if (name)
            *out = xstrdup(name);
        else
            rc = ERR_UPSTREAM;
    }
    cJSON_Delete(user);
    return rc;
}

static bool array_has(const cJSON *arr, const char *s)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, s) == 0)
            return true;
    }
    return false;
}

static bool covers(const cJSON *have, const cJSON *want)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, want)
    {
        if (!array_has(have, it->valuestring))
            return false;
    }
    return true;
}

/* Reads one outbound message's Metadata (a query naming Metadata must return one row). */
static enum err sf_message_metadata(struct sf_client *sf, const char *id, cJSON **metadata)
{
    cJSON *rows = NULL;
    if (!sf_id_is_valid(id))
        return ERR_INVALID;
    char *soql = xasprintf("SELECT Id, Name, Metadata FROM WorkflowOutboundMessage "
                           "WHERE Id = '%s'",
                           id);
    enum err rc = sf_tooling_query(sf, soql, &rows);
    free(soql);
    if (rc != ERR_OK)
        return rc;
    cJSON *md = cJSON_DetachItemFromObjectCaseSensitive(cJSON_GetArrayItem(rows, 0), "Metadata");
    cJSON_Delete(rows);
    if (!cJSON_IsObject(md)) {
        cJSON_Delete(md);
        return ERR_NOT_FOUND;
    }
    *metadata = md;
    return ERR_OK;
}

static cJSON *sf_message_body(const struct config *cfg, const char *endpoint, const cJSON *fields,
                              const char *integration_user)
{
    const char *v = cfg->salesforce_api_version;
    double version = strtod(v[0] == 'v' ? v + 1 : v, NULL);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "FullName", "Opportunity." REGISTER_SF_MESSAGE_NAME);
    cJSON *md = cJSON_AddObjectToObject(body, "Metadata");
    cJSON_AddNumberToObject(md, "apiVersion", version);
    cJSON_AddStringToObject(md, "description",
                            "dealsync: Opportunity changes to the HubSpot deal sync. Sent when a "
                            "record-triggered flow calls it.");
    cJSON_AddStringToObject(md, "endpointUrl", endpoint);
    cJSON_AddItemToObject(md, "fields", cJSON_Duplicate(fields, true));
    /* dealsync calls the API with its own credentials; a session id would only be a secret
     * travelling in every message (and Salesforce demands https for it). */
    cJSON_AddFalseToObject(md, "includeSessionId");
    cJSON_AddStringToObject(md, "integrationUser", integration_user);
    cJSON_AddStringToObject(md, "name", "dealsync opportunity");
    cJSON_AddFalseToObject(md, "protected");
    return body;
}

/* What the outbound messages on Opportunity hold for our endpoint and fields. */
struct om_found {
    char *id;         /* the match, else ours (by name) when it is stale, else NULL */
    char *name;       /* its Name */
    bool is_match;    /* right endpoint and every field: in place */
    bool is_same_url; /* (ours, stale) the endpoint is right, so fields are missing */
    bool has_fields;
    char *token;       /* (no token configured) the token in its endpoint URL, or NULL */
    bool has_no_token; /* (no token configured) its endpoint URL carries none */
};

static void om_found_clear(struct om_found *f)
{
    free(f->id);
    free(f->name);
    free(f->token);
    memset(f, 0, sizeof(*f));
}

/* Ours by name, or any with our endpoint (registered by hand before). any_token (when no token
 * is configured: the endpoint without one, else NULL): our endpoint with whatever token an
 * earlier run generated, or with none, counts as the same URL. */
static enum err sf_find_message(struct sf_client *sf, const char *endpoint, const char *any_token,
                                const cJSON *fields, struct om_found *found)
{
    char *prefix = any_token ? xasprintf("%s?token=", any_token) : NULL;
    cJSON *rows = NULL;
    /* EntityDefinitionId holds a standard object's API name (reference salesforce.md 5.1). */
    enum err rc = sf_tooling_query(sf,
                                   "SELECT Id, Name FROM WorkflowOutboundMessage "
                                   "WHERE EntityDefinitionId = 'Opportunity'",
                                   &rows);
    if (rc != ERR_OK) {
        log_error("cannot list salesforce outbound messages", LOG_STR("err", err_name(rc)));
        return rc;
    }
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        const char *id = str_item(row, "Id");
        const char *name = str_item(row, "Name");
        cJSON *md = NULL;
        if (!id || !name)
            continue;
        rc = sf_message_metadata(sf, id, &md);
        if (rc != ERR_OK) {
            log_error("cannot read salesforce outbound message", LOG_STR("id", id),
                      LOG_STR("err", err_name(rc)));
            break;
        }
        const char *url = str_item(md, "endpointUrl");
        bool is_ours = strcmp(name, REGISTER_SF_MESSAGE_NAME) == 0;
        bool is_same_url = url && strcmp(url, endpoint) == 0;
        const char *token = NULL;
        bool has_no_token = false;
        if (prefix && url && !is_same_url) {
            size_t n = strlen(prefix);
            if (strncmp(url, prefix, n) == 0 && url[n] && !strchr(url + n, '&'))
                token = url + n;
            has_no_token = strcmp(url, any_token) == 0;
            is_same_url = token || has_no_token;
        }
        bool has_fields = covers(cJSON_GetObjectItemCaseSensitive(md, "fields"), fields);
        if ((is_same_url && has_fields) || is_ours) {
            om_found_clear(found);
            found->id = xstrdup(id);
            found->name = xstrdup(name);
            found->is_match = is_same_url && has_fields;
            found->is_same_url = is_same_url;
            found->has_fields = has_fields;
            found->token = token ? xstrdup(token) : NULL;
            found->has_no_token = has_no_token;
        }
        cJSON_Delete(md);
        if (found->id && (found->is_match || is_ours))
            break;
    }
    cJSON_Delete(rows);
    free(prefix);
    return rc;
}

enum err register_salesforce(const struct config *cfg, const struct mapping_set *mappings,
                             struct http_client *hc, struct register_summary *sum)
{
    struct sf_client *sf = NULL;
    char *endpoint = NULL;
    char *mapped = NULL;
    cJSON *fields = NULL;
    cJSON *body = NULL;
    char *user = NULL;
    char *new_id = NULL;
    char *public_endpoint = NULL;
    char *generated = NULL; /* a token made here: SALESFORCE_WEBHOOK_TOKEN is unset */
    enum err rc;

    rc = sync_sf_client_new(cfg, hc, &sf);
    if (rc != ERR_OK)
        goto out;
    /* Without a token anyone who knows the org id could queue work that spends the org's API
     * calls: register makes one, puts it in the endpoint and prints it for serve to use. */
    if (!cfg->salesforce_webhook_token) {
        generated = hmac_random_token(REGISTER_TOKEN_BYTES);
        if (!generated) {
            log_error("cannot generate a webhook token: no randomness available");
            rc = ERR_INTERNAL;
            goto out;
        }
    }
    endpoint = generated ? sf_endpoint_with(cfg, generated) : register_sf_endpoint(cfg);
    public_endpoint = sf_endpoint(cfg, false); /* for messages: without the token */
    mapped = mappings ? mapping_sf_field_list(mappings) : NULL;
    fields = name_list(sf_standard_fields, mapped);

    struct om_found found = {0};
    rc = sf_find_message(sf, endpoint, generated ? public_endpoint : NULL, fields, &found);
    if (rc != ERR_OK)
        goto out;
    if (found.is_match) {
        log_info("salesforce outbound message already registered", LOG_STR("id", found.id),
                 LOG_STR("name", found.name));
        printf("salesforce: outbound message Opportunity.%s (%s) already registered -> %s\n",
               found.name, found.id, public_endpoint);
        if (found.token)
            printf("  its webhook token (SALESFORCE_WEBHOOK_TOKEN is unset; dealsync serve "
                   "needs it):\n  SALESFORCE_WEBHOOK_TOKEN=%s\n",
                   found.token);
        if (found.has_no_token)
            fprintf(stderr, "register: warning: this outbound message carries no webhook "
                            "token, so anyone who knows the org id can queue work; set "
                            "SALESFORCE_WEBHOOK_TOKEN, delete the message and run dealsync "
                            "register again\n");
        sum->unchanged++;
        om_found_clear(&found);
        goto out;
    }
    if (found.id) {
        log_error("salesforce outbound message exists with another endpoint or fewer fields",
                  LOG_STR("id", found.id), LOG_BOOL("is_same_endpoint", found.is_same_url),
                  LOG_BOOL("has_fields", found.has_fields));
        fprintf(stderr,
                "register: Salesforce already has the outbound message "
                "Opportunity.%s (%s) with %s; delete it (Setup > Outbound Messages, after "
                "removing it from its flow) and run dealsync register again\n",
                found.name, found.id, found.is_same_url ? "fewer fields" : "another endpoint URL");
        om_found_clear(&found);
        rc = ERR_CONFLICT;
        goto out;
    }

    rc = sf_integration_user(cfg, sf, &user);
    if (rc != ERR_OK) {
        log_error("cannot find the salesforce integration user", LOG_STR("err", err_name(rc)));
        goto out;
    }
    body = sf_message_body(cfg, endpoint, fields, user);
    rc = sf_tooling_create(sf, "WorkflowOutboundMessage", body, &new_id);
    if (rc != ERR_OK) {
        log_error("cannot create salesforce outbound message", LOG_STR("err", err_name(rc)));
        goto out;
    }
    log_info("salesforce outbound message created", LOG_STR("id", new_id),
             LOG_STR("name", REGISTER_SF_MESSAGE_NAME),
             LOG_I64("fields", cJSON_GetArraySize(fields)));
    printf("salesforce: outbound message Opportunity.%s (%s) created -> %s\n",
           REGISTER_SF_MESSAGE_NAME, new_id, public_endpoint);
    if (generated)
        printf("  webhook token generated (SALESFORCE_WEBHOOK_TOKEN was unset) and put in the "
               "endpoint URL;\n  keep it and give it to dealsync serve:\n"
               "  SALESFORCE_WEBHOOK_TOKEN=%s\n",
               generated);
    sum->created++;
out:
    if (rc == ERR_OK)
        printf("  Salesforce sends it only when a record-triggered flow calls it: in Setup, a "
               "flow on Opportunity\n  (after save, on create and update) with the action "
               "Outbound Message \"%s\".\n",
               REGISTER_SF_MESSAGE_NAME);
    fflush(stdout);
    free(new_id);
    free(user);
    if (body) {
        /* The endpoint URL in the body may carry the token. */
        char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(body, "Metadata"), "endpointUrl"));
        if (url)
            OPENSSL_cleanse(url, strlen(url));
        cJSON_Delete(body);
    }
    cJSON_Delete(fields);
    free(mapped);
    free(public_endpoint);
    free_secret(generated);
    free_secret(endpoint);
    sf_client_free(sf);
    return rc;
}

enum err register_check_salesforce(const struct config *cfg, const struct mapping_set *mappings,
                                   struct sf_client *sf, char **problem, char **message)
{
    *problem = NULL;
    *message = NULL;
    char *endpoint = register_sf_endpoint(cfg);
    char *mapped = mappings ? mapping_sf_field_list(mappings) : NULL;
    cJSON *fields = name_list(sf_standard_fields, mapped);
    struct om_found found = {0};
    /* No token configured: a message with the one register generated is in place. */
    char *plain = cfg->salesforce_webhook_token ? NULL : sf_endpoint(cfg, false);
    enum err rc = sf_find_message(sf, endpoint, plain, fields, &found);
    free(plain);
    if (rc == ERR_OK && found.is_match)
        *message = xasprintf("Opportunity.%s", found.name);
    else if (rc == ERR_OK && found.id)
        *problem = xasprintf("the outbound message Opportunity.%s has %s", found.name,
                             found.is_same_url ? "fewer fields than dealsync needs"
                                               : "another endpoint URL");
    else if (rc == ERR_OK)
        *problem = xstrdup("no outbound message on Opportunity sends to this dealsync");
    om_found_clear(&found);
    cJSON_Delete(fields);
    free(mapped);
    free_secret(endpoint);
    return rc;
}

/* ---- HubSpot ------------------------------------------------------------------------------- */

/* One call to /webhooks/v3/<appId><suffix>?hapikey=…; *json gets the parsed answer (NULL for
 * an empty one). The key is in the query, which http_client never logs. Failures are logged,
 * except a 404 that the caller expects (is_404_ok). */
static enum err hs_webhooks_call(const struct config *cfg, struct http_client *hc,
                                 const char *method, const char *suffix, const cJSON *body,
                                 bool is_404_ok, long *status, cJSON **json)
{
    struct http_response resp;
    char *app = http_url_encode(cfg->hubspot_app_id);
    char *key = http_url_encode(cfg->hubspot_developer_api_key);
    char *url =
        xasprintf("%s/webhooks/v3/%s%s?hapikey=%s", cfg->hubspot_api_base_url, app, suffix, key);
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    const char *headers[] = {"Accept: application/json",
                             text ? "Content-Type: application/json" : NULL, NULL};
    http_response_init(&resp);
    enum err rc = http_client_request(hc, method, url, headers, text, &resp);
    *status = resp.status;
    if (rc != ERR_OK && !(is_404_ok && resp.status == 404)) {
        char *category = NULL, *correlation = NULL;
        hs_error_parse(resp.body, &category, &correlation, NULL);
        log_warn("hubspot webhooks api call failed", LOG_STR("method", method),
                 LOG_STR("path", suffix), LOG_I64("http_status", resp.status),
                 LOG_STR("category", category), LOG_STR("correlation_id", correlation),
                 LOG_STR("err", err_name(rc)));
        free(category);
        free(correlation);
    } else if (rc == ERR_OK && json) {
        *json = resp.body_len ? cJSON_Parse(resp.body) : NULL;
        if (resp.body_len && !*json) {
            log_warn("hubspot webhooks api answer is not json", LOG_STR("path", suffix),
                     LOG_I64("body_bytes", resp.body_len));
            rc = ERR_UPSTREAM;
        }
    }
    http_response_clear(&resp);
    free(text);
    free_secret(url);
    free_secret(key);
    free(app);
    return rc;
}

static enum err hs_ensure_settings(const struct config *cfg, struct http_client *hc,
                                   const char *target, struct register_summary *sum,
                                   const char **outcome)
{
    cJSON *have = NULL;
    long status = 0;
    /* With a thread per connection (HTTP_THREADS 0), what HubSpot allows an account (10). */
    int concurrency = cfg->http_threads == 0                   ? HS_DEFAULT_CONCURRENCY
                      : cfg->http_threads > HS_MIN_CONCURRENCY ? cfg->http_threads
                                                               : HS_MIN_CONCURRENCY;
    enum err rc = hs_webhooks_call(cfg, hc, "GET", "/settings", NULL, true, &status, &have);
    if (rc != ERR_OK && status != 404)
        return rc;
    const char *url = str_item(have, "targetUrl");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(have, "throttling"), "maxConcurrentRequests");
    bool is_same =
        url && strcmp(url, target) == 0 && cJSON_IsNumber(max) && max->valueint == concurrency;
    bool had = have != NULL;
    cJSON_Delete(have);
    if (is_same) {
        sum->unchanged++;
        *outcome = "unchanged";
        return ERR_OK;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "targetUrl", target);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(body, "throttling"), "maxConcurrentRequests",
                            concurrency);
    rc = hs_webhooks_call(cfg, hc, "PUT", "/settings", body, false, &status, NULL);
    cJSON_Delete(body);
    if (rc != ERR_OK)
        return rc;
    log_info("hubspot webhook settings saved", LOG_STR("target_url", target),
             LOG_I64("max_concurrent_requests", concurrency));
    if (had)
        sum->updated++;
    else
        sum->created++;
    *outcome = had ? "updated" : "created";
    return ERR_OK;
}

/* The subscription list: {"results":[…]} (current spec) or a bare array (older docs). Returns a
 * detached array the caller deletes. */
static enum err hs_list_subscriptions(const struct config *cfg, struct http_client *hc,
                                      cJSON **subs)
{
    cJSON *json = NULL;
    long status = 0;
    enum err rc = hs_webhooks_call(cfg, hc, "GET", "/subscriptions", NULL, false, &status, &json);
    if (rc != ERR_OK)
        return rc;
    cJSON *list =
        cJSON_IsArray(json) ? json : cJSON_DetachItemFromObjectCaseSensitive(json, "results");
    if (list != json)
        cJSON_Delete(json);
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(list);
        log_warn("hubspot subscription list has no results");
        return ERR_UPSTREAM;
    }
    *subs = list;
    return ERR_OK;
}

/* The subscription for event_type (and property, or NULL) in subs, or NULL (borrowed). */
static const cJSON *find_subscription(const cJSON *subs, const char *event_type,
                                      const char *property)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, subs)
    {
        const char *type = str_item(s, "eventType");
        const char *name = str_item(s, "propertyName");
        if (!type || strcmp(type, event_type) != 0)
            continue;
        if (property ? (name && strcmp(name, property) == 0) : !name)
            return s;
    }
    return NULL;
}

/* Subscription ids are strings in the spec and numbers in the docs' examples. */
static char *subscription_id(const cJSON *s)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(s, "id");
    if (cJSON_IsString(id))
        return xstrdup(id->valuestring);
    if (cJSON_IsNumber(id))
        return xasprintf("%.0f", id->valuedouble);
    return NULL;
}

/* One wanted subscription: reuse, activate or create it. *is_raced: HubSpot answered 409 to a
 * create (someone made it meanwhile), so the caller checks the list again. */
static enum err hs_ensure_subscription(const struct config *cfg, struct http_client *hc,
                                       const cJSON *subs, const char *event_type,
                                       const char *property, struct register_summary *sum,
                                       bool *is_raced)
{
    long status = 0;
    enum err rc;
    const cJSON *have = find_subscription(subs, event_type, property);
    if (have && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(have, "active"))) {
        sum->unchanged++;
        return ERR_OK;
    }
    cJSON *body = cJSON_CreateObject();
    if (have) {
        char *id = subscription_id(have);
        if (!id) {
            cJSON_Delete(body);
            return ERR_UPSTREAM;
        }
        char *enc = http_url_encode(id);
        char *suffix = xasprintf("/subscriptions/%s", enc);
        cJSON_AddTrueToObject(body, "active");
        rc = hs_webhooks_call(cfg, hc, "PATCH", suffix, body, false, &status, NULL);
        if (rc == ERR_OK) {
            log_info("hubspot subscription activated", LOG_STR("subscription_id", id),
                     LOG_STR("event_type", event_type), LOG_STR("property", property));
            sum->updated++;
        }
        free(suffix);
        free(enc);
        free(id);
    } else {
        cJSON_AddStringToObject(body, "eventType", event_type);
        if (property)
            cJSON_AddStringToObject(body, "propertyName", property);
        cJSON_AddTrueToObject(body, "active");
        cJSON *made = NULL;
        rc = hs_webhooks_call(cfg, hc, "POST", "/subscriptions", body, false, &status, &made);
        if (rc == ERR_OK) {
            log_info("hubspot subscription created",
                     LOG_STR("subscription_id", str_item(made, "id")),
                     LOG_STR("event_type", event_type), LOG_STR("property", property));
            sum->created++;
        } else if (rc == ERR_CONFLICT) {
            *is_raced = true;
            rc = ERR_OK;
        }
        cJSON_Delete(made);
    }
    cJSON_Delete(body);
    return rc;
}

enum err register_hubspot(const struct config *cfg, const struct mapping_set *mappings,
                          struct http_client *hc, struct register_summary *sum)
{
    char *target = NULL;
    char *mapped = NULL;
    cJSON *properties = NULL;
    cJSON *subs = NULL;
    bool is_raced = false;
    int wanted = 0;
    struct register_summary subs_sum = {0};
    const char *settings_outcome = "";
    enum err rc;

    target = register_hs_target(cfg);
    rc = hs_ensure_settings(cfg, hc, target, sum, &settings_outcome);
    if (rc != ERR_OK) {
        log_error("cannot save hubspot webhook settings", LOG_STR("err", err_name(rc)));
        goto out;
    }
    rc = hs_list_subscriptions(cfg, hc, &subs);
    if (rc != ERR_OK) {
        log_error("cannot list hubspot subscriptions", LOG_STR("err", err_name(rc)));
        goto out;
    }
    mapped = mappings ? mapping_hs_property_list(mappings) : NULL;
    properties = name_list(hs_standard_properties, mapped);
    for (size_t i = 0; hs_object_events[i] && rc == ERR_OK; i++, wanted++)
        rc = hs_ensure_subscription(cfg, hc, subs, hs_object_events[i], NULL, &subs_sum, &is_raced);
    const cJSON *p;
    cJSON_ArrayForEach(p, properties)
    {
        if (rc != ERR_OK)
            break;
        rc = hs_ensure_subscription(cfg, hc, subs, "deal.propertyChange", p->valuestring, &subs_sum,
                                    &is_raced);
        wanted++;
    }
    if (rc != ERR_OK) {
        log_error("cannot register hubspot subscriptions", LOG_STR("err", err_name(rc)));
        goto out;
    }
    if (is_raced) {
        /* A create met an existing subscription made meanwhile: it must now be listed, active. */
        cJSON_Delete(subs);
        subs = NULL;
        rc = hs_list_subscriptions(cfg, hc, &subs);
        for (size_t i = 0; hs_object_events[i] && rc == ERR_OK; i++)
            if (!find_subscription(subs, hs_object_events[i], NULL))
                rc = ERR_CONFLICT;
        cJSON_ArrayForEach(p, properties)
        {
            if (rc == ERR_OK && !find_subscription(subs, "deal.propertyChange", p->valuestring))
                rc = ERR_CONFLICT;
        }
        if (rc != ERR_OK) {
            log_error("hubspot refused a subscription that it does not list",
                      LOG_STR("err", err_name(rc)));
            goto out;
        }
    }
    printf("hubspot: app %s webhook settings %s -> %s\n"
           "  %d deal subscriptions: %d created, %d activated, %d unchanged\n",
           cfg->hubspot_app_id, settings_outcome, target, wanted, subs_sum.created,
           subs_sum.updated, subs_sum.unchanged);
    fflush(stdout);
out:
    sum->created += subs_sum.created;
    sum->updated += subs_sum.updated;
    sum->unchanged += subs_sum.unchanged;
    cJSON_Delete(subs);
    cJSON_Delete(properties);
    free(mapped);
    free(target);
    return rc;
}

enum err register_check_hubspot(const struct config *cfg, const struct mapping_set *mappings,
                                struct http_client *hc, char **problem)
{
    *problem = NULL;
    cJSON *have = NULL, *subs = NULL;
    long status = 0;
    char *target = register_hs_target(cfg);
    enum err rc = hs_webhooks_call(cfg, hc, "GET", "/settings", NULL, true, &status, &have);
    if (rc != ERR_OK && status == 404) {
        *problem = xstrdup("the app has no webhook settings");
        rc = ERR_OK;
        goto out;
    }
    if (rc != ERR_OK)
        goto out;
    const char *url = str_item(have, "targetUrl");
    if (!url || strcmp(url, target) != 0) {
        *problem =
            xasprintf("the app's webhook target URL is %s, not %s", url ? url : "unset", target);
        goto out;
    }
    rc = hs_list_subscriptions(cfg, hc, &subs);
    if (rc != ERR_OK)
        goto out;
    char *mapped = mappings ? mapping_hs_property_list(mappings) : NULL;
    cJSON *properties = name_list(hs_standard_properties, mapped);
    struct buf missing;
    buf_init(&missing, 0);
    for (size_t i = 0; hs_object_events[i]; i++) {
        const cJSON *s = find_subscription(subs, hs_object_events[i], NULL);
        if (!s || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "active")))
            buf_printf(&missing, "%s%s", missing.len ? ", " : "", hs_object_events[i]);
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, properties)
    {
        const cJSON *s = find_subscription(subs, "deal.propertyChange", p->valuestring);
        if (!s || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "active")))
            buf_printf(&missing, "%sdeal.propertyChange %s", missing.len ? ", " : "",
                       p->valuestring);
    }
    if (missing.len)
        *problem = xasprintf("no active subscription for %s", missing.data);
    buf_clear(&missing);
    cJSON_Delete(properties);
    free(mapped);
out:
    cJSON_Delete(subs);
    cJSON_Delete(have);
    free(target);
    return rc;
}

/* ---- The subcommand ------------------------------------------------------------------------ */

enum err register_run(const struct config *cfg, unsigned targets)
{
    struct mapping_set *mappings = NULL;
    struct http_client *hc = NULL;
    struct register_summary sum = {0};
    enum err rc = ERR_OK;

    if (register_check_config(cfg, targets) > 0)
        return ERR_CONFIG;
    rc = sync_load_mappings(cfg, &mappings);
    if (rc != ERR_OK)
        return rc;
    struct http_client_options hopt = {0};
    hopt.timeout_ms = cfg->http_timeout_ms;
    hc = http_client_new(&hopt);
    if (targets & REGISTER_SALESFORCE)
        rc = register_salesforce(cfg, mappings, hc, &sum);
    if (rc == ERR_OK && (targets & REGISTER_HUBSPOT))
        rc = register_hubspot(cfg, mappings, hc, &sum);
    if (rc == ERR_OK)
        log_info("webhooks registered", LOG_I64("created", sum.created),
                 LOG_I64("updated", sum.updated), LOG_I64("unchanged", sum.unchanged));
    else
        fprintf(stderr, "register: failed (%s); see the log lines above\n", err_str(rc));
    http_client_free(hc);
    mapping_set_free(mappings);
    return rc;
}
