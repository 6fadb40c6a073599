/* hs_api.c - HubSpot emulation entry points: routing, private-app token and developer-key auth,
 * the rate limits of reference section 5, shared helpers (errors, time, names) and the control
 * routes under /_sandbox/hubspot/. The record logic lives in the other hs_*.c files. */
#include "hs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util.h"

struct type_names {
    const char *plural;
    const char *singular;
    const char *upper;
    const char *id;
};

static const struct type_names type_names[HS_TYPE_COUNT] = {
    [HS_CONTACT] = {"contacts", "contact", "CONTACT", "0-1"},
    [HS_COMPANY] = {"companies", "company", "COMPANY", "0-2"},
    [HS_DEAL] = {"deals", "deal", "DEAL", "0-3"},
};

/* Rate-limit state: request times inside the rolling window, searches in the last second, and
 * the day's count. Private-app semantics (one token). */
static int64_t *window_times;
static size_t window_count;
static size_t window_cap;
static int64_t search_times[64];
static size_t search_count;
static int64_t daily_used;
static int64_t daily_day;
static uint64_t correlation_counter;

bool hs_type_parse(const char *s, enum hs_type *out)
{
    for (int t = 0; t < HS_TYPE_COUNT; t++) {
        if (strcmp(s, type_names[t].plural) == 0 || strcmp(s, type_names[t].singular) == 0 ||
            strcmp(s, type_names[t].id) == 0) {
            *out = (enum hs_type)t;
            return true;
        }
    }
    return false;
}

const char *hs_type_plural(enum hs_type t)
{
    return type_names[t].plural;
}

const char *hs_type_singular(enum hs_type t)
{
    return type_names[t].singular;
}

const char *hs_type_upper(enum hs_type t)
{
    return type_names[t].upper;
}

const char *hs_type_id(enum hs_type t)
{
    return type_names[t].id;
}

int hs_take_type(const char **rest, enum hs_type *t)
{
    char name[64];
    size_t n = strcspn(*rest, "/");
    if (n == 0)
        return 0;
    if (n >= sizeof name)
        return -1;
    memcpy(name, *rest, n);
    name[n] = '\0';
    if (!hs_type_parse(name, t))
        return -1;
    *rest += n;
    return 1;
}

cJSON *hs_batch_root(int64_t started, cJSON **results)
{
    char iso[32];
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", "COMPLETE");
    *results = cJSON_AddArrayToObject(root, "results");
    hs_iso(started, iso);
    cJSON_AddStringToObject(root, "startedAt", iso);
    hs_iso(sb_now_ms(), iso);
    cJSON_AddStringToObject(root, "completedAt", iso);
    return root;
}

void hs_batch_respond(struct sb_response *resp, cJSON *root, cJSON *errors, int ok_status)
{
    int n = cJSON_GetArraySize(errors);
    if (n == 0) {
        cJSON_Delete(errors);
        sb_respond_json(resp, ok_status, root);
        return;
    }
    cJSON_AddNumberToObject(root, "numErrors", n);
    cJSON_AddItemToObject(root, "errors", errors);
    sb_respond_json(resp, 207, root);
}

char *hs_correlation_id(void)
{
    uint64_t n = ++correlation_counter;
    return xasprintf("5b0c3f1e-%04x-4%03x-8%03x-%012llx", (unsigned)(n >> 32) & 0xffff,
                     (unsigned)(n >> 20) & 0xfff, (unsigned)(n >> 8) & 0xfff,
                     (unsigned long long)n & 0xffffffffffffULL);
}

cJSON *hs_error_json(const char *category, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    char *cid = hs_correlation_id();
    cJSON_AddStringToObject(o, "status", "error");
    cJSON_AddStringToObject(o, "message", message);
    cJSON_AddStringToObject(o, "correlationId", cid);
    if (category)
        cJSON_AddStringToObject(o, "category", category);
    free(cid);
    return o;
}

void hs_error(struct sb_response *resp, int status, const char *category, const char *message)
{
    sb_respond_json(resp, status, hs_error_json(category, message));
}

void hs_errorf(struct sb_response *resp, int status, const char *category, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hs_error(resp, status, category, msg);
}

void hs_iso(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* the modulos only tell the compiler the fields are small: they already are */
    snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
             (unsigned)(ms % 1000) % 1000u);
}

/* Days since the epoch for a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool hs_parse_time(const char *s, int64_t *ms)
{
    if (util_parse_i64(s, ms))
        return true;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return false;
    const char *p = s + 10;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    int64_t offset_min = 0;
    if (*p == 'T') {
        int k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &k) != 2 || k != 5)
            return false;
        p += 1 + k;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &sec, &k) != 1 || k != 2)
                return false;
            p += 1 + k;
            if (*p == '.') {
                p++;
                int digits = 0;
                while (*p >= '0' && *p <= '9') {
                    if (digits < 3)
                        frac = frac * 10 + (*p - '0');
                    digits++;
                    p++;
                }
                if (digits == 0)
                    return false;
                for (; digits < 3; digits++)
                    frac *= 10;
            }
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5)
                return false;
            offset_min = (oh * 60 + om) * (*p == '+' ? 1 : -1);
            p += 1 + k;
        }
        if (h > 23 || mi > 59 || sec > 60)
            return false;
    }
    if (*p != '\0')
        return false;
    int64_t days = days_from_civil(y, mo, d);
    *ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + frac;
    return true;
}

cJSON *hs_parse_body(const struct sb_request *req, struct sb_response *resp)
{
    cJSON *body = cJSON_ParseWithLength(req->body, req->body_len);
    if (!body)
        hs_error(resp, 400, "VALIDATION_ERROR",
                 "Invalid input JSON on line 1: the request body is not valid JSON");
    return body;
}

char *hs_value_string(const cJSON *v)
{
    if (cJSON_IsString(v))
        return xstrdup(v->valuestring);
    if (cJSON_IsNull(v))
        return xstrdup("");
    if (cJSON_IsBool(v))
        return xstrdup(cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble == (double)(int64_t)v->valuedouble)
            return xasprintf("%lld", (long long)v->valuedouble);
        return xasprintf("%.15g", v->valuedouble);
    }
    return NULL;
}

cJSON *hs_split_csv(const char *s)
{
    cJSON *list = cJSON_CreateArray();
    char *copy = xstrdup(s ? s : "");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (*tok)
            cJSON_AddItemToArray(list, cJSON_CreateString(tok));
    free(copy);
    return list;
}

/* ---- auth and rate limits ---- */

static bool is_authorized(const struct sb_request *req, struct sb_response *resp)
{
    const char *auth = sb_req_header(req, "Authorization");
    const char *token = sb_setting_str("hubspot.token");
    char *expected = xasprintf("Bearer %s", token ? token : HS_DEFAULT_TOKEN);
    bool ok = auth && strcmp(auth, expected) == 0;
    free(expected);
    if (ok)
        return true;
    if (!auth)
        hs_error(resp, 401, "INVALID_AUTHENTICATION",
                 "Authentication credentials not found. This API supports OAuth 2.0 "
                 "authentication and you can find more details at "
                 "https://developers.hubspot.com/docs/methods/auth/oauth-overview");
    else
        hs_error(resp, 401, "INVALID_AUTHENTICATION",
                 "Authentication credentials are invalid. The access token provided is not "
                 "valid for this account.");
    return false;
}

static void respond_rate_limited(struct sb_response *resp, const char *policy, const char *what)
{
    cJSON *o = cJSON_CreateObject();
    char *cid = hs_correlation_id();
    char *rid = hs_correlation_id();
    char *msg = xasprintf("You have reached your %s limit.", what);
    cJSON_AddStringToObject(o, "status", "error");
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddStringToObject(o, "errorType", "RATE_LIMIT");
    cJSON_AddStringToObject(o, "correlationId", cid);
    cJSON_AddStringToObject(o, "policyName", policy);
    cJSON_AddStringToObject(o, "requestId", rid);
    sb_respond_json(resp, 429, o);
    free(msg);
    free(rid);
    free(cid);
}

static void add_int_header(struct sb_response *resp, const char *name, int64_t v)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)v);
    sb_respond_header(resp, name, text);
}

/* Admits or rejects one authenticated request against the burst window and the day.
 * Returns false after answering 429. Search has its own per-second limit and no headers. */
static bool admit(bool is_search, struct sb_response *resp, int64_t *remaining)
{
    int64_t now = sb_now_ms();
    int64_t interval = sb_setting_int("hubspot.rate_limit_interval_ms", 10000);
    int64_t max = sb_setting_int("hubspot.rate_limit_max", 190);
    /* Professional tier per the docs table; the changelog says 650,000 (reference 5). */
    int64_t daily = sb_setting_int("hubspot.rate_limit_daily", 625000);
    int64_t day = now / 86400000; /* resets at midnight UTC: the portal's time zone is UTC */
    if (day != daily_day) {
        daily_day = day;
        daily_used = 0;
    }
    size_t keep = 0;
    for (size_t i = 0; i < window_count; i++)
        if (window_times[i] > now - interval)
            window_times[keep++] = window_times[i];
    window_count = keep;

    if (is_search) {
        int64_t per_second = sb_setting_int("hubspot.search_per_second", 5);
        /* the one-second window is a setting so that tests can hit the limit without racing */
        int64_t search_window = sb_setting_int("hubspot.search_window_ms", 1000);
        keep = 0;
        for (size_t i = 0; i < search_count; i++)
            if (search_times[i] > now - search_window)
                search_times[keep++] = search_times[i];
        search_count = keep;
        /* UNVERIFIED: the policy name HubSpot puts on a search 429; "SECONDLY" is what
         * community captures show. */
        if ((int64_t)search_count >= per_second || search_count == 64) {
            respond_rate_limited(resp, "SECONDLY", "secondly");
            return false;
        }
        if (daily_used >= daily) {
            respond_rate_limited(resp, "DAILY", "daily");
            return false;
        }
        search_times[search_count++] = now;
        daily_used++;
        return true;
    }
    if (daily_used >= daily) {
        respond_rate_limited(resp, "DAILY", "daily");
        *remaining = max - (int64_t)window_count;
        return false;
    }
    if ((int64_t)window_count >= max) {
        respond_rate_limited(resp, "TEN_SECONDLY_ROLLING", "ten_secondly_rolling");
        *remaining = 0;
        return false;
    }
    if (window_count == window_cap) {
        window_cap = window_cap ? window_cap * 2 : 256;
        window_times = xrealloc(window_times, window_cap * sizeof *window_times);
    }
    window_times[window_count++] = now;
    daily_used++;
    *remaining = max - (int64_t)window_count;
    return true;
}

static void add_rate_headers(struct sb_response *resp, int64_t remaining)
{
    int64_t max = sb_setting_int("hubspot.rate_limit_max", 190);
    int64_t interval = sb_setting_int("hubspot.rate_limit_interval_ms", 10000);
    int64_t daily = sb_setting_int("hubspot.rate_limit_daily", 625000);
    add_int_header(resp, "X-HubSpot-RateLimit-Daily", daily);
    add_int_header(resp, "X-HubSpot-RateLimit-Daily-Remaining",
                   daily - daily_used > 0 ? daily - daily_used : 0);
    add_int_header(resp, "X-HubSpot-RateLimit-Interval-Milliseconds", interval);
    add_int_header(resp, "X-HubSpot-RateLimit-Max", max);
    add_int_header(resp, "X-HubSpot-RateLimit-Remaining", remaining > 0 ? remaining : 0);
    /* deprecated and not enforced, but still sent (reference 5) */
    add_int_header(resp, "X-HubSpot-RateLimit-Secondly", max / 10 > 0 ? max / 10 : 1);
    add_int_header(resp, "X-HubSpot-RateLimit-Secondly-Remaining",
                   remaining / 10 > 0 ? remaining / 10 : 0);
}

static void rate_limits_reset(void)
{
    free(window_times);
    window_times = NULL;
    window_count = 0;
    window_cap = 0;
    search_count = 0;
    daily_used = 0;
}

/* ---- routing ---- */

static bool has_prefix(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0)
        return false;
    *rest = s + n;
    return true;
}

static void respond_usage(struct sb_response *resp)
{
    char now[32], resets[32];
    int64_t t = sb_now_ms();
    hs_iso(t, now);
    hs_iso((t / 86400000 + 1) * 86400000, resets);
    cJSON *root = cJSON_CreateObject();
    cJSON *results = cJSON_AddArrayToObject(root, "results");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", "private-apps-api-calls-daily");
    cJSON_AddNumberToObject(o, "usageLimit",
                            (double)sb_setting_int("hubspot.rate_limit_daily", 625000));
    cJSON_AddNumberToObject(o, "currentUsage", (double)daily_used);
    cJSON_AddStringToObject(o, "collectedAt", now);
    cJSON_AddStringToObject(o, "fetchStatus", "SUCCESS");
    cJSON_AddStringToObject(o, "resetsAt", resets);
    cJSON_AddItemToArray(results, o);
    sb_respond_json(resp, 200, root);
}

/* /crm/v3/objects/{type}/..., /crm/v4/objects/{type}/{id}/associations/... */
static bool route_objects(const struct sb_request *req, int version, const char *rest,
                          struct sb_response *resp)
{
    enum hs_type t;
    int taken = hs_take_type(&rest, &t);
    if (taken <= 0) {
        if (taken < 0)
            hs_error(resp, 400, "VALIDATION_ERROR", "Unable to infer object type");
        return taken < 0;
    }
    size_t n;
    if (version == 3) {
        if (strcmp(rest, "/search") == 0) {
            if (strcmp(req->method, "POST") != 0)
                return false;
            return hs_search_handle(req, t, resp);
        }
        return hs_objects_handle(req, t, rest, resp);
    }
    /* v4: /{id}/associations/... */
    if (*rest != '/')
        return false;
    rest++;
    int64_t id;
    char id_text[32];
    n = strcspn(rest, "/");
    if (n == 0 || n >= sizeof id_text)
        return false;
    memcpy(id_text, rest, n);
    id_text[n] = '\0';
    if (!util_parse_i64(id_text, &id))
        return false;
    return hs_assoc_record_handle(req, 4, t, id, rest + n, resp);
}

static bool route_api(const struct sb_request *req, struct sb_response *resp)
{
    const char *rest;
    if (has_prefix(req->path, "/crm/v3/objects/", &rest))
        return route_objects(req, 3, rest, resp);
    if (has_prefix(req->path, "/crm/v4/objects/", &rest))
        return route_objects(req, 4, rest, resp);
    if (has_prefix(req->path, "/crm/v4/associations/", &rest))
        return hs_assoc_v4_handle(req, rest, resp);
    if (has_prefix(req->path, "/crm/v3/properties/", &rest))
        return hs_schema_handle(req, rest, resp);
    if (has_prefix(req->path, "/crm/v3/pipelines/", &rest))
        return hs_pipelines_handle(req, rest, resp);
    if (has_prefix(req->path, "/crm/v3/owners", &rest))
        return hs_owners_handle(req, rest, resp);
    if (strcmp(req->path, "/account-info/v3/api-usage/daily/private-apps") == 0 &&
        strcmp(req->method, "GET") == 0) {
        respond_usage(resp);
        return true;
    }
    return false;
}

bool sb_hs_handle(const struct sb_request *req, struct sb_response *resp)
{
    const char *rest;
    if (has_prefix(req->path, "/webhooks/v3/", &rest)) {
        /* developer API: hapikey, not the private-app token, and no app rate limit */
        if (!hs_webhooks_handle(req, rest, resp))
            hs_error(resp, 404, "OBJECT_NOT_FOUND", "resource not found");
        return true;
    }
    if (strncmp(req->path, "/crm/", 5) != 0 && strncmp(req->path, "/account-info/", 14) != 0)
        return false;
    if (!is_authorized(req, resp) || !hs_scope_check(req, resp))
        return true;
    size_t len = strlen(req->path);
    bool is_search = len > 7 && strcmp(req->path + len - 7, "/search") == 0;
    int64_t remaining = 0;
    if (admit(is_search, resp, &remaining)) {
        if (!route_api(req, resp))
            hs_errorf(resp, 404, "OBJECT_NOT_FOUND", "resource not found: %s %s", req->method,
                      req->path);
    }
    if (!is_search)
        add_rate_headers(resp, remaining);
    return true;
}

/* ---- control routes ---- */

static void control_app(const struct sb_request *req, struct sb_response *resp)
{
    static const char *const keys[][2] = {
        {"appId", "hubspot.app_id"},
        {"portalId", "hubspot.portal_id"},
        {"clientSecret", "hubspot.client_secret"},
        {"developerKey", "hubspot.developer_key"},
        {"token", "hubspot.token"},
        {"userId", "hubspot.user_id"},
    };
    if (strcmp(req->method, "PUT") == 0) {
        cJSON *body = hs_parse_body(req, resp);
        if (!body)
            return;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, keys[i][0]);
            if (v)
                (void)sb_setting_set(keys[i][1], v);
        }
        cJSON_Delete(body);
    } else if (strcmp(req->method, "GET") != 0) {
        hs_error(resp, 405, NULL, "use GET or PUT");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "appId",
                            (double)sb_setting_int("hubspot.app_id", HS_DEFAULT_APP_ID));
    cJSON_AddNumberToObject(o, "portalId",
                            (double)sb_setting_int("hubspot.portal_id", HS_DEFAULT_PORTAL_ID));
    const char *secret = sb_setting_str("hubspot.client_secret");
    cJSON_AddStringToObject(o, "clientSecret", secret ? secret : HS_DEFAULT_SECRET);
    const char *key = sb_setting_str("hubspot.developer_key");
    cJSON_AddStringToObject(o, "developerKey", key ? key : HS_DEFAULT_DEV_KEY);
    const char *token = sb_setting_str("hubspot.token");
    cJSON_AddStringToObject(o, "token", token ? token : HS_DEFAULT_TOKEN);
    cJSON_AddNumberToObject(o, "userId",
                            (double)sb_setting_int("hubspot.user_id", HS_DEFAULT_USER_ID));
    sb_respond_json(resp, 200, o);
}

static bool control_objects(const struct sb_request *req, const char *rest,
                            struct sb_response *resp)
{
    enum hs_type t;
    if (hs_take_type(&rest, &t) <= 0)
        return false;
    cJSON *body = NULL;
    cJSON *errors = cJSON_CreateArray();
    int status = 400;
    if (*rest == '\0') {
        if (strcmp(req->method, "POST") == 0) {
            if (!(body = hs_parse_body(req, resp)))
                goto out;
            const cJSON *props = cJSON_GetObjectItemCaseSensitive(body, "properties");
            struct hs_object *o = hs_object_create(t, props, HS_ACTOR_USER, errors, &status);
            if (o)
                sb_respond_json(resp, 201, hs_object_full_json(o));
            else
                hs_respond_invalid(resp, status, errors);
            goto out;
        }
        if (strcmp(req->method, "GET") == 0) {
            /* every record of the type, archived ones included, full state; with
             * ?properties=a,b only the id and those properties of each (a poller reading every
             * record many times a second then costs the sandbox little of the machine) */
            char *only = sb_req_query(req, "properties");
            cJSON *names = only ? hs_split_csv(only) : NULL;
            free(only);
            size_t count;
            struct hs_object *const *all = hs_objects_all(&count);
            cJSON *list = cJSON_CreateArray();
            for (size_t i = 0; i < count; i++) {
                if (all[i]->type != t)
                    continue;
                if (!names) {
                    cJSON_AddItemToArray(list, hs_object_full_json(all[i]));
                    continue;
                }
                cJSON *o = cJSON_CreateObject();
                char id[32];
                snprintf(id, sizeof(id), "%lld", (long long)all[i]->id);
                cJSON_AddStringToObject(o, "id", id);
                cJSON *props = cJSON_AddObjectToObject(o, "properties");
                const cJSON *n;
                cJSON_ArrayForEach(n, names)
                {
                    const cJSON *v =
                        cJSON_GetObjectItemCaseSensitive(all[i]->props, n->valuestring);
                    if (v)
                        cJSON_AddItemToObject(props, n->valuestring, cJSON_Duplicate(v, true));
                }
                cJSON_AddItemToArray(list, o);
            }
            cJSON_Delete(names);
            sb_respond_json(resp, 200, list);
            goto out;
        }
        return false;
    }
    int64_t id;
    if (*rest != '/' || !util_parse_i64(rest + 1, &id))
        return false;
    struct hs_object *o = hs_object_find(t, id, true);
    if (!o) {
        hs_error(resp, 404, "OBJECT_NOT_FOUND", "resource not found");
        goto out;
    }
    if (strcmp(req->method, "GET") == 0) {
        sb_respond_json(resp, 200, hs_object_full_json(o));
    } else if (strcmp(req->method, "PATCH") == 0) {
        if (!(body = hs_parse_body(req, resp)))
            goto out;
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(body, "properties");
        if (hs_object_update(o, props, HS_ACTOR_USER, errors, &status))
            sb_respond_json(resp, 200, hs_object_full_json(o));
        else
            hs_respond_invalid(resp, status, errors);
    } else if (strcmp(req->method, "DELETE") == 0) {
        if (!o->is_archived)
            hs_object_archive(o, HS_ACTOR_USER);
        sb_respond_json(resp, 204, NULL);
    } else {
        hs_error(resp, 405, NULL, "use GET, PATCH or DELETE");
    }
out:
    cJSON_Delete(errors);
    cJSON_Delete(body);
    return true;
}

/* PUT/DELETE associations {fromObjectType, fromObjectId, toObjectType, toObjectId,
 * associationTypeId?}: as a user in the UI would. */
static void control_association(const struct sb_request *req, struct sb_response *resp)
{
    cJSON *body = hs_parse_body(req, resp);
    if (!body)
        return;
    const cJSON *ft = cJSON_GetObjectItemCaseSensitive(body, "fromObjectType");
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(body, "toObjectType");
    const cJSON *fid = cJSON_GetObjectItemCaseSensitive(body, "fromObjectId");
    const cJSON *tid = cJSON_GetObjectItemCaseSensitive(body, "toObjectId");
    const cJSON *type_id = cJSON_GetObjectItemCaseSensitive(body, "associationTypeId");
    char *fid_s = hs_value_string(fid);
    char *tid_s = hs_value_string(tid);
    enum hs_type from, to;
    int64_t from_id, to_id;
    if (!cJSON_IsString(ft) || !cJSON_IsString(tt) || !hs_type_parse(ft->valuestring, &from) ||
        !hs_type_parse(tt->valuestring, &to) || !fid_s || !tid_s ||
        !util_parse_i64(fid_s, &from_id) || !util_parse_i64(tid_s, &to_id)) {
        hs_error(resp, 400, "VALIDATION_ERROR",
                 "need fromObjectType, fromObjectId, toObjectType, toObjectId");
        goto out;
    }
    if (!hs_object_find(from, from_id, false) || !hs_object_find(to, to_id, false)) {
        hs_error(resp, 404, "OBJECT_NOT_FOUND", "one of the records does not exist");
        goto out;
    }
    if (strcmp(req->method, "DELETE") == 0) {
        int removed = hs_assoc_remove_all(from, from_id, to, to_id, HS_ACTOR_USER);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "removed", removed);
        sb_respond_json(resp, 200, o);
        goto out;
    }
    int type = cJSON_IsNumber(type_id) ? type_id->valueint : hs_assoc_default_type(from, to);
    const char *msg = NULL;
    if (!hs_assoc_add(from, from_id, to, to_id, type, HS_ACTOR_USER, &msg)) {
        hs_error(resp, 400, "VALIDATION_ERROR", msg);
        goto out;
    }
    sb_respond_json(resp, 200, hs_assoc_all_json(from, from_id));
out:
    free(tid_s);
    free(fid_s);
    cJSON_Delete(body);
}

bool sb_hs_control(const char *sub, const struct sb_request *req, struct sb_response *resp)
{
    const char *rest;
    if (has_prefix(sub, "objects/", &rest))
        return control_objects(req, rest, resp);
    if (strcmp(sub, "associations") == 0 &&
        (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "DELETE") == 0)) {
        control_association(req, resp);
        return true;
    }
    if (strcmp(sub, "owners") == 0 && strcmp(req->method, "POST") == 0) {
        cJSON *body = hs_parse_body(req, resp);
        if (body)
            hs_owners_control_add(body, resp);
        cJSON_Delete(body);
        return true;
    }
    if (strcmp(sub, "app") == 0) {
        control_app(req, resp);
        return true;
    }
    if (strcmp(sub, "webhooks") == 0 && strcmp(req->method, "GET") == 0) {
        sb_respond_json(resp, 200, hs_webhooks_status_json());
        return true;
    }
    if (strcmp(sub, "rate-limits/reset") == 0 && strcmp(req->method, "POST") == 0) {
        rate_limits_reset();
        sb_respond_json(resp, 204, NULL);
        return true;
    }
    return false;
}

/* ---- lifecycle ---- */

void sb_hs_init(void)
{
    sb_hs_reset();
}

void sb_hs_reset(void)
{
    hs_webhooks_reset();
    hs_assoc_reset();
    hs_objects_reset();
    hs_owners_reset();
    hs_pipelines_reset();
    hs_schema_reset();
    rate_limits_reset();
}

void sb_hs_tick(void)
{
    hs_webhooks_tick();
}
