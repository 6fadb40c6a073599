/* hs_webhooks.c - HubSpot webhooks for the app: the management API (settings and
 * subscriptions, developer key auth, reference 3) and the delivery of events to the target URL
 * (reference 2): batches of at most 100, v1 and v3 signatures, retries on failure with a fast
 * backoff, and the duplicate/reorder delivery faults. Events are queued under the state lock;
 * hs_webhooks_tick POSTs without it. */
#include "hs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hmac.h"
#include "util.h"

#define MAX_SUBSCRIPTIONS 1000
#define MAX_BATCH 100

struct subscription {
    int64_t id;
    char *event_type;
    char *property_name; /* NULL unless propertyChange */
    bool is_active;
    int64_t created_at;
    int64_t updated_at;
};

struct pending {
    uint64_t seq; /* unique for the process lifetime: survives resets while a POST is out */
    cJSON *event; /* without attemptNumber */
    int attempt;  /* becomes attemptNumber */
    int64_t queued_at;
    int64_t due_at;
    bool is_in_flight;
    bool is_duplicate; /* a second delivery of a delivered event: never duplicated again */
};

static struct subscription *subs;
static size_t sub_count;
static int64_t next_sub_id;

static char *target_url;
static int max_concurrent;
static int64_t settings_created_at;
static int64_t settings_updated_at;

static struct pending *queue;
static size_t queue_count;
static size_t queue_cap;
static uint64_t next_seq = 1;
static int64_t next_event_id;

static int64_t delivered_events;
static int64_t delivered_batches;
static int64_t failed_attempts;
static int64_t dropped_events;
static int64_t duplicated_batches;

static const char *const event_types[] = {"contact.creation",
                                          "contact.deletion",
                                          "contact.merge",
                                          "contact.associationChange",
                                          "contact.restore",
                                          "contact.privacyDeletion",
                                          "contact.propertyChange",
                                          "company.creation",
                                          "company.deletion",
                                          "company.propertyChange",
                                          "company.associationChange",
                                          "company.restore",
                                          "company.merge",
                                          "deal.creation",
                                          "deal.deletion",
                                          "deal.associationChange",
                                          "deal.restore",
                                          "deal.merge",
                                          "deal.propertyChange",
                                          NULL};

/* ---- queueing events (under the lock) ---- */

static void queue_push(cJSON *event, int64_t due_at)
{
    if (queue_count == queue_cap) {
        queue_cap = queue_cap ? queue_cap * 2 : 64;
        queue = xrealloc(queue, queue_cap * sizeof *queue);
    }
    int64_t now = sb_now_ms();
    queue[queue_count++] = (struct pending){next_seq++, event, 0, now, due_at, false, false};
}

/* A new event for subscription s with the fields every event has. */
static cJSON *event_new(const struct subscription *s, enum hs_actor actor)
{
    cJSON *e = cJSON_CreateObject();
    int64_t app_id = sb_setting_int("hubspot.app_id", HS_DEFAULT_APP_ID);
    cJSON_AddNumberToObject(e, "eventId", (double)next_event_id++);
    cJSON_AddNumberToObject(e, "subscriptionId", (double)s->id);
    cJSON_AddNumberToObject(e, "portalId",
                            (double)sb_setting_int("hubspot.portal_id", HS_DEFAULT_PORTAL_ID));
    cJSON_AddNumberToObject(e, "appId", (double)app_id);
    cJSON_AddNumberToObject(e, "occurredAt", (double)sb_now_ms());
    cJSON_AddStringToObject(e, "subscriptionType", s->event_type);
    char *source;
    if (actor == HS_ACTOR_USER) {
        cJSON_AddStringToObject(e, "changeSource", "CRM_UI");
        source = xasprintf("userId:%lld",
                           (long long)sb_setting_int("hubspot.user_id", HS_DEFAULT_USER_ID));
    } else {
        /* our own writes come back as INTEGRATION with the app id (captured fixture) */
        cJSON_AddStringToObject(e, "changeSource", "INTEGRATION");
        source = xasprintf("%lld", (long long)app_id);
    }
    cJSON_AddStringToObject(e, "sourceId", source);
    free(source);
    return e;
}

/* Active subscriptions for type "<object>.<kind>" (and property name when given). */
static void fire(enum hs_type t, const char *kind, const char *property,
                 void (*fill)(cJSON *e, const void *arg), const void *arg, enum hs_actor actor)
{
    if (!target_url)
        return; /* nowhere to deliver: HubSpot drops them too */
    char type[64];
    snprintf(type, sizeof type, "%s.%s", hs_type_singular(t), kind);
    for (size_t i = 0; i < sub_count; i++) {
        const struct subscription *s = &subs[i];
        if (!s->is_active || strcmp(s->event_type, type) != 0)
            continue;
        if (property && (!s->property_name || strcmp(s->property_name, property) != 0))
            continue;
        cJSON *e = event_new(s, actor);
        fill(e, arg);
        queue_push(e, sb_now_ms());
    }
}

struct object_event {
    int64_t id;
    const char *flag;
    const char *name;
    const char *value;
};

static void fill_object(cJSON *e, const void *arg)
{
    const struct object_event *o = arg;
    cJSON_AddNumberToObject(e, "objectId", (double)o->id);
    if (o->flag)
        cJSON_AddStringToObject(e, "changeFlag", o->flag);
    if (o->name) {
        cJSON_AddStringToObject(e, "propertyName", o->name);
        cJSON_AddStringToObject(e, "propertyValue", o->value);
    }
}

void hs_webhook_object_event(enum hs_type t, int64_t id, const char *kind, enum hs_actor actor)
{
    struct object_event o = {id, strcmp(kind, "creation") == 0 ? "CREATED" : "DELETED", NULL, NULL};
    fire(t, kind, NULL, fill_object, &o, actor);
}

void hs_webhook_property_event(enum hs_type t, int64_t id, const char *name, const char *value,
                               enum hs_actor actor)
{
    struct object_event o = {id, NULL, name, value};
    fire(t, "propertyChange", name, fill_object, &o, actor);
}

struct assoc_event {
    enum hs_type from;
    int64_t from_id;
    enum hs_type to;
    int64_t to_id;
    bool is_primary;
    bool is_removed;
};

/* Like the captured payload: no objectId; isPrimaryAssociation added as the docs list it. */
static void fill_assoc(cJSON *e, const void *arg)
{
    const struct assoc_event *a = arg;
    char type[64];
    snprintf(type, sizeof type, "%s_TO_%s", hs_type_upper(a->from), hs_type_upper(a->to));
    cJSON_AddStringToObject(e, "associationType", type);
    cJSON_AddNumberToObject(e, "fromObjectId", (double)a->from_id);
    cJSON_AddNumberToObject(e, "toObjectId", (double)a->to_id);
    cJSON_AddBoolToObject(e, "associationRemoved", a->is_removed);
    cJSON_AddBoolToObject(e, "isPrimaryAssociation", a->is_primary);
}

void hs_webhook_assoc_event(enum hs_type ft, int64_t fid, enum hs_type tt, int64_t tid,
                            bool is_primary, bool is_removed, enum hs_actor actor)
{
    struct assoc_event a = {ft, fid, tt, tid, is_primary, is_removed};
    fire(ft, "associationChange", NULL, fill_assoc, &a, actor);
}

/* ---- delivery (hs_webhooks_tick runs without the lock) ---- */

struct batch {
    char *url;
    char *body;
    char *secret;
    uint64_t seqs[MAX_BATCH];
    int count;
};

static void queue_remove(struct pending *p);

/* Takes up to 100 due events off the queue (marked in flight). False when nothing is due. */
static bool batch_take(struct batch *b)
{
    int64_t now = sb_now_ms();
    int64_t delay = sb_setting_int("hubspot.webhook_batch_delay_ms", 50);
    memset(b, 0, sizeof *b);
    if (!target_url)
        return false;
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < queue_count && b->count < MAX_BATCH; i++) {
        struct pending *p = &queue[i];
        if (p->is_in_flight || p->due_at > now || p->queued_at + delay > now)
            continue;
        if (sb_random() < sb_setting_double(SB_SETTING_DROP_RATE, 0)) {
            /* Given up as after HubSpot's last retry: the change is never reported. */
            dropped_events++;
            queue_remove(p);
            i--;
            continue;
        }
        p->is_in_flight = true;
        b->seqs[b->count++] = p->seq;
        cJSON *e = cJSON_Duplicate(p->event, true);
        cJSON_AddNumberToObject(e, "attemptNumber", p->attempt);
        cJSON_AddItemToArray(list, e);
    }
    if (b->count == 0) {
        cJSON_Delete(list);
        return false;
    }
    if (sb_random() < sb_setting_double(SB_SETTING_REORDER_RATE, 0)) {
        /* Fisher-Yates on the array's items: ordering is not guaranteed (reference 2.1) */
        int n = cJSON_GetArraySize(list);
        cJSON **items = xcalloc((size_t)n, sizeof *items);
        for (int i = n - 1; i >= 0; i--)
            items[i] = cJSON_DetachItemFromArray(list, i);
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(sb_random() * (i + 1));
            cJSON *tmp = items[i];
            items[i] = items[j];
            items[j] = tmp;
        }
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(list, items[i]);
        free(items);
    }
    b->body = cJSON_PrintUnformatted(list);
    cJSON_Delete(list);
    b->url = xstrdup(target_url);
    const char *secret = sb_setting_str("hubspot.client_secret");
    b->secret = xstrdup(secret ? secret : HS_DEFAULT_SECRET);
    return true;
}

static struct pending *queue_find(uint64_t seq)
{
    for (size_t i = 0; i < queue_count; i++)
        if (queue[i].seq == seq)
            return &queue[i];
    return NULL;
}

static void queue_remove(struct pending *p)
{
    cJSON_Delete(p->event);
    size_t i = (size_t)(p - queue);
    memmove(p, p + 1, (queue_count - i - 1) * sizeof *p);
    queue_count--;
}

/* Records the outcome of a batch: success removes the events (maybe queueing a duplicate),
 * failure schedules a retry with backoff or gives up after the last retry. */
static void batch_done(const struct batch *b, bool is_ok)
{
    int64_t now = sb_now_ms();
    int64_t retries = sb_setting_int("hubspot.webhook_retries", 10);
    int64_t base = sb_setting_int("hubspot.webhook_backoff_ms", 100);
    int64_t cap = sb_setting_int("hubspot.webhook_backoff_max_ms", 2000);
    bool is_duplicated = is_ok && sb_random() < sb_setting_double(SB_SETTING_DUPLICATE_RATE, 0);
    if (is_ok) {
        delivered_batches++;
        duplicated_batches += is_duplicated;
    }
    for (int i = 0; i < b->count; i++) {
        struct pending *p = queue_find(b->seqs[i]);
        if (!p)
            continue; /* reset while the POST was out */
        p->is_in_flight = false;
        if (is_ok) {
            delivered_events++;
            /* HubSpot may deliver an event twice (reference 2.1); a second delivery is not
             * repeated again, so even a rate of 1 ends. */
            if (is_duplicated && !p->is_duplicate) {
                queue_push(cJSON_Duplicate(p->event, true), now);
                queue[queue_count - 1].is_duplicate = true;
                p = queue_find(b->seqs[i]); /* queue_push may have moved the queue */
            }
            queue_remove(p);
            continue;
        }
        failed_attempts++;
        if (p->attempt >= retries) {
            dropped_events++;
            queue_remove(p);
            continue;
        }
        p->attempt++;
        int64_t backoff = base << (p->attempt - 1 < 20 ? p->attempt - 1 : 20);
        p->due_at = now + (backoff < cap ? backoff : cap);
    }
}

/* The URI as HubSpot signs it for v3: these escapes decoded, everything else as it is. */
static char *signing_uri(const char *url)
{
    static const char *const escapes[][2] = {
        {"%3A", ":"}, {"%2F", "/"}, {"%3F", "?"}, {"%40", "@"}, {"%21", "!"}, {"%24", "$"},
        {"%27", "'"}, {"%28", "("}, {"%29", ")"}, {"%2A", "*"}, {"%2C", ","}, {"%3B", ";"},
    };
    struct buf b;
    buf_init(&b, 0);
    for (const char *p = url; *p;) {
        bool done = false;
        for (size_t i = 0; *p == '%' && i < sizeof escapes / sizeof escapes[0] && !done; i++) {
            if (strncasecmp(p, escapes[i][0], 3) == 0) {
                (void)buf_append_str(&b, escapes[i][1]);
                p += 3;
                done = true;
            }
        }
        if (!done)
            (void)buf_append(&b, p++, 1);
    }
    return buf_steal(&b);
}

static void batch_post(struct batch *b)
{
    int64_t ts = sb_now_ms();
    size_t body_len = strlen(b->body);
    char *uri = signing_uri(b->url);
    char *v1_source = xasprintf("%s%s", b->secret, b->body);
    char *v3_source = xasprintf("POST%s%s%lld", uri, b->body, (long long)ts);
    unsigned char mac[HMAC_SHA256_LEN];
    hmac_sha256_digest(v1_source, strlen(v1_source), mac);
    char *v1 = hmac_hex(mac, sizeof mac);
    hmac_sha256(b->secret, strlen(b->secret), v3_source, strlen(v3_source), mac);
    char *v3 = hmac_base64(mac, sizeof mac);
    int timeout = (int)sb_setting_int("hubspot.webhook_timeout_ms", 5000);
    char *h_v1 = xasprintf("X-HubSpot-Signature: %s", v1);
    char *h_v3 = xasprintf("X-HubSpot-Signature-v3: %s", v3);
    char *h_ts = xasprintf("X-HubSpot-Request-Timestamp: %lld", (long long)ts);
    char *h_timeout = xasprintf("X-HubSpot-Timeout-Millis: %d", timeout);
    const char *headers[] = {
        "Content-Type: application/json",
        "User-Agent: HubSpot Connect 2.0 (http://dev.hubspot.com/) (namespace: "
        "webhooks-nio-http-client) - WebhooksExecutorDaemon-executor",
        h_v1,
        "X-HubSpot-Signature-Version: v1",
        h_v3,
        h_ts,
        h_timeout,
        NULL};
    int status = sb_http_post(b->url, headers, b->body, body_len, timeout, NULL);
    sb_log_delivery("hubspot", b->url, status, b->body, body_len);
    sb_lock();
    batch_done(b, status >= 200 && status < 300);
    sb_unlock();
    free(h_timeout);
    free(h_ts);
    free(h_v3);
    free(h_v1);
    free(v3);
    free(v1);
    free(v3_source);
    free(v1_source);
    free(uri);
}

void hs_webhooks_tick(void)
{
    for (int round = 0; round < 8; round++) {
        struct batch b;
        sb_lock();
        bool has_batch = batch_take(&b);
        sb_unlock();
        if (!has_batch)
            return;
        batch_post(&b);
        free(b.url);
        free(b.body);
        free(b.secret);
    }
}

/* ---- management API ---- */

static cJSON *settings_json(void)
{
    char created[32], updated[32];
    hs_iso(settings_created_at, created);
    hs_iso(settings_updated_at, updated);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "targetUrl", target_url);
    cJSON *th = cJSON_AddObjectToObject(o, "throttling");
    cJSON_AddNumberToObject(th, "maxConcurrentRequests", max_concurrent);
    cJSON_AddStringToObject(o, "createdAt", created);
    cJSON_AddStringToObject(o, "updatedAt", updated);
    return o;
}

static cJSON *sub_json(const struct subscription *s)
{
    char created[32], updated[32], id[32];
    hs_iso(s->created_at, created);
    hs_iso(s->updated_at, updated);
    snprintf(id, sizeof id, "%lld", (long long)s->id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "eventType", s->event_type);
    if (s->property_name)
        cJSON_AddStringToObject(o, "propertyName", s->property_name);
    cJSON_AddBoolToObject(o, "active", s->is_active);
    cJSON_AddStringToObject(o, "createdAt", created);
    cJSON_AddStringToObject(o, "updatedAt", updated);
    return o;
}

/* https only, as HubSpot requires; plain http is allowed to loopback hosts so that tests can
 * listen without TLS (a documented deviation). */
static bool is_valid_target(const char *url)
{
    if (strncmp(url, "https://", 8) == 0)
        return url[8] != '\0';
    static const char *const loopback[] = {"http://127.0.0.1:", "http://127.0.0.1/",
                                           "http://localhost:", "http://localhost/",
                                           "http://[::1]:"};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++)
        if (strncmp(url, loopback[i], strlen(loopback[i])) == 0)
            return true;
    return false;
}

static void put_settings(const struct sb_request *req, struct sb_response *resp)
{
    cJSON *body = hs_parse_body(req, resp);
    if (!body)
        return;
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(body, "targetUrl");
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(body, "throttling");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(th, "maxConcurrentRequests");
    if (!cJSON_IsString(url) || !cJSON_IsObject(th) || !cJSON_IsNumber(max)) {
        hs_error(resp, 400, "VALIDATION_ERROR",
                 "targetUrl and throttling.maxConcurrentRequests are required");
    } else if (!is_valid_target(url->valuestring)) {
        hs_error(resp, 400, "VALIDATION_ERROR", "targetUrl must be an https URL");
    } else if (max->valueint < 5) {
        /* the docs say "greater than five"; 5 itself is taken as allowed (UNVERIFIED) */
        hs_error(resp, 400, "VALIDATION_ERROR", "maxConcurrentRequests must be at least 5");
    } else {
        int64_t now = sb_now_ms();
        if (!target_url)
            settings_created_at = now;
        settings_updated_at = now;
        free(target_url);
        target_url = xstrdup(url->valuestring);
        max_concurrent = max->valueint;
        sb_respond_json(resp, 200, settings_json());
    }
    cJSON_Delete(body);
}

static bool is_event_type(const char *s)
{
    for (size_t i = 0; event_types[i]; i++)
        if (strcmp(event_types[i], s) == 0)
            return true;
    return false;
}

static void create_sub(const struct sb_request *req, struct sb_response *resp)
{
    cJSON *body = hs_parse_body(req, resp);
    if (!body)
        return;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(body, "eventType");
    const cJSON *prop = cJSON_GetObjectItemCaseSensitive(body, "propertyName");
    const cJSON *active = cJSON_GetObjectItemCaseSensitive(body, "active");
    bool is_prop_change = cJSON_IsString(type) && strstr(type->valuestring, ".propertyChange");
    const char *name = cJSON_IsString(prop) ? prop->valuestring : NULL;
    if (!cJSON_IsString(type) || !is_event_type(type->valuestring)) {
        hs_error(resp, 400, "VALIDATION_ERROR", "eventType is required and must be a known type");
    } else if (is_prop_change && (!name || !*name)) {
        hs_error(resp, 400, "VALIDATION_ERROR", "propertyName is required for propertyChange");
    } else if (is_prop_change && (strcmp(name, "hs_lastmodifieddate") == 0 ||
                                  strcmp(name, "num_unique_conversion_events") == 0)) {
        hs_errorf(resp, 400, "VALIDATION_ERROR", "Property %s cannot be subscribed to", name);
    } else if (sub_count >= MAX_SUBSCRIPTIONS) {
        hs_error(resp, 400, NULL,
                 "Couldn't create another subscription. You've reached the maximum number "
                 "allowed per application (1000).");
    } else {
        for (size_t i = 0; i < sub_count; i++) {
            bool same_prop =
                is_prop_change ? (subs[i].property_name && strcmp(subs[i].property_name, name) == 0)
                               : true;
            if (strcmp(subs[i].event_type, type->valuestring) == 0 && same_prop) {
                /* UNVERIFIED: HubSpot refuses a second identical subscription; 409 assumed */
                hs_error(resp, 409, "CONFLICT", "A subscription for this event already exists");
                goto out;
            }
        }
        subs = xrealloc(subs, (sub_count + 1) * sizeof *subs);
        struct subscription *s = &subs[sub_count++];
        s->id = next_sub_id++;
        s->event_type = xstrdup(type->valuestring);
        s->property_name = is_prop_change ? xstrdup(name) : NULL;
        s->is_active = cJSON_IsTrue(active);
        s->created_at = s->updated_at = sb_now_ms();
        sb_respond_json(resp, 201, sub_json(s));
    }
out:
    cJSON_Delete(body);
}

static struct subscription *sub_find(const char *id_text)
{
    int64_t id;
    if (!util_parse_i64(id_text, &id))
        return NULL;
    for (size_t i = 0; i < sub_count; i++)
        if (subs[i].id == id)
            return &subs[i];
    return NULL;
}

static void sub_delete(struct subscription *s)
{
    free(s->event_type);
    free(s->property_name);
    size_t i = (size_t)(s - subs);
    memmove(s, s + 1, (sub_count - i - 1) * sizeof *s);
    sub_count--;
}

static void batch_update_subs(const struct sb_request *req, struct sb_response *resp)
{
    cJSON *body = hs_parse_body(req, resp);
    if (!body)
        return;
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(body, "inputs");
    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) > 100) {
        hs_error(resp, 400, "VALIDATION_ERROR", "inputs must be an array of at most 100");
        cJSON_Delete(body);
        return;
    }
    char iso[32];
    hs_iso(sb_now_ms(), iso);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", "COMPLETE");
    cJSON *results = cJSON_AddArrayToObject(root, "results");
    cJSON *errors = cJSON_CreateArray();
    const cJSON *in;
    cJSON_ArrayForEach(in, inputs)
    {
        char *id = hs_value_string(cJSON_GetObjectItemCaseSensitive(in, "id"));
        const cJSON *active = cJSON_GetObjectItemCaseSensitive(in, "active");
        struct subscription *s = id ? sub_find(id) : NULL;
        if (s && cJSON_IsBool(active)) {
            s->is_active = cJSON_IsTrue(active);
            s->updated_at = sb_now_ms();
            cJSON_AddItemToArray(results, sub_json(s));
        } else {
            cJSON *e = hs_error_json("OBJECT_NOT_FOUND", "subscription not found or no active");
            cJSON *ids = cJSON_CreateArray();
            cJSON_AddItemToArray(ids, cJSON_CreateString(id ? id : ""));
            cJSON_AddItemToObject(cJSON_AddObjectToObject(e, "context"), "ids", ids);
            cJSON_AddItemToArray(errors, e);
        }
        free(id);
    }
    cJSON_AddStringToObject(root, "startedAt", iso);
    cJSON_AddStringToObject(root, "completedAt", iso);
    int n = cJSON_GetArraySize(errors);
    if (n) {
        cJSON_AddNumberToObject(root, "numErrors", n);
        cJSON_AddItemToObject(root, "errors", errors);
    } else {
        cJSON_Delete(errors);
    }
    sb_respond_json(resp, n ? 207 : 200, root);
    cJSON_Delete(body);
}

static bool is_developer(const struct sb_request *req, struct sb_response *resp)
{
    char *key = sb_req_query(req, "hapikey");
    const char *want = sb_setting_str("hubspot.developer_key");
    bool ok = key && strcmp(key, want ? want : HS_DEFAULT_DEV_KEY) == 0;
    free(key);
    if (!ok)
        hs_error(resp, 401, "INVALID_AUTHENTICATION",
                 "The API key provided is invalid. View or manage your API key here: "
                 "https://app.hubspot.com/l/api-key/");
    return ok;
}

bool hs_webhooks_handle(const struct sb_request *req, const char *rest, struct sb_response *resp)
{
    if (!is_developer(req, resp))
        return true;
    size_t n = strcspn(rest, "/");
    char *app = xstrndup(rest, n);
    int64_t app_id;
    bool is_our_app = util_parse_i64(app, &app_id) &&
                      app_id == sb_setting_int("hubspot.app_id", HS_DEFAULT_APP_ID);
    free(app);
    if (!is_our_app) {
        hs_error(resp, 404, "OBJECT_NOT_FOUND", "App not found for this developer account");
        return true;
    }
    rest += n;
    const char *m = req->method;
    if (strcmp(rest, "/settings") == 0) {
        if (strcmp(m, "GET") == 0) {
            if (target_url)
                sb_respond_json(resp, 200, settings_json());
            else
                hs_error(resp, 404, "OBJECT_NOT_FOUND", "No webhook settings for this app");
        } else if (strcmp(m, "PUT") == 0) {
            put_settings(req, resp);
        } else if (strcmp(m, "DELETE") == 0) {
            free(target_url);
            target_url = NULL;
            sb_respond_json(resp, 204, NULL);
        } else {
            return false;
        }
        return true;
    }
    if (strcmp(rest, "/subscriptions") == 0) {
        if (strcmp(m, "GET") == 0) {
            cJSON *root = cJSON_CreateObject();
            cJSON *results = cJSON_AddArrayToObject(root, "results");
            for (size_t i = 0; i < sub_count; i++)
                cJSON_AddItemToArray(results, sub_json(&subs[i]));
            sb_respond_json(resp, 200, root);
        } else if (strcmp(m, "POST") == 0) {
            create_sub(req, resp);
        } else {
            return false;
        }
        return true;
    }
    if (strcmp(rest, "/subscriptions/batch/update") == 0 && strcmp(m, "POST") == 0) {
        batch_update_subs(req, resp);
        return true;
    }
    if (strncmp(rest, "/subscriptions/", 15) != 0)
        return false;
    struct subscription *s = sub_find(rest + 15);
    if (!s) {
        hs_error(resp, 404, "OBJECT_NOT_FOUND", "Subscription not found");
        return true;
    }
    if (strcmp(m, "GET") == 0) {
        sb_respond_json(resp, 200, sub_json(s));
    } else if (strcmp(m, "PATCH") == 0) {
        cJSON *body = hs_parse_body(req, resp);
        if (!body)
            return true;
        const cJSON *active = cJSON_GetObjectItemCaseSensitive(body, "active");
        if (!cJSON_IsBool(active)) {
            hs_error(resp, 400, "VALIDATION_ERROR", "active must be a boolean");
        } else {
            s->is_active = cJSON_IsTrue(active);
            s->updated_at = sb_now_ms();
            sb_respond_json(resp, 200, sub_json(s));
        }
        cJSON_Delete(body);
    } else if (strcmp(m, "DELETE") == 0) {
        sub_delete(s);
        sb_respond_json(resp, 204, NULL);
    } else {
        return false;
    }
    return true;
}

/* ---- control and lifecycle ---- */

cJSON *hs_webhooks_status_json(void)
{
    size_t in_flight = 0;
    for (size_t i = 0; i < queue_count; i++)
        in_flight += queue[i].is_in_flight;
    cJSON *o = cJSON_CreateObject();
    if (target_url)
        cJSON_AddStringToObject(o, "targetUrl", target_url);
    else
        cJSON_AddNullToObject(o, "targetUrl");
    cJSON_AddNumberToObject(o, "subscriptions", (double)sub_count);
    cJSON_AddNumberToObject(o, "pending", (double)(queue_count - in_flight));
    cJSON_AddNumberToObject(o, "inFlight", (double)in_flight);
    cJSON_AddNumberToObject(o, "deliveredEvents", (double)delivered_events);
    cJSON_AddNumberToObject(o, "deliveredBatches", (double)delivered_batches);
    cJSON_AddNumberToObject(o, "duplicatedBatches", (double)duplicated_batches);
    cJSON_AddNumberToObject(o, "failedAttempts", (double)failed_attempts);
    cJSON_AddNumberToObject(o, "droppedEvents", (double)dropped_events);
    return o;
}

void hs_webhooks_reset(void)
{
    for (size_t i = 0; i < sub_count; i++) {
        free(subs[i].event_type);
        free(subs[i].property_name);
    }
    free(subs);
    subs = NULL;
    sub_count = 0;
    next_sub_id = 6547119; /* like the captured subscription ids */
    free(target_url);
    target_url = NULL;
    max_concurrent = 0;
    for (size_t i = 0; i < queue_count; i++)
        cJSON_Delete(queue[i].event);
    free(queue);
    queue = NULL;
    queue_count = 0;
    queue_cap = 0;
    next_event_id = 3816279340LL;
    delivered_events = delivered_batches = failed_attempts = dropped_events = 0;
    duplicated_batches = 0;
}
