/* webhook_hs.c - HubSpot webhook signatures and payloads. Verification runs on the raw body
 * before anything parses it. */
#include "webhook_hs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hmac.h"
#include "json_strict.h"
#include "util.h"

char *webhook_hs_decode_uri(const char *uri)
{
    static const struct {
        const char *esc;
        char c;
    } decoded[] = {{"3A", ':'},  {"2F", '/'}, {"3F", '?'}, {"40", '@'}, {"21", '!'}, {"24", '$'},
                   {"27", '\''}, {"28", '('}, {"29", ')'}, {"2A", '*'}, {"2C", ','}, {"3B", ';'}};
    size_t n = strlen(uri);
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (uri[i] == '%' && i + 2 < n) {
            bool done = false;
            for (size_t k = 0; k < sizeof(decoded) / sizeof(decoded[0]); k++) {
                if (strncasecmp(uri + i + 1, decoded[k].esc, 2) == 0) {
                    out[o++] = decoded[k].c;
                    i += 2;
                    done = true;
                    break;
                }
            }
            if (done)
                continue;
        }
        out[o++] = uri[i];
    }
    out[o] = '\0';
    return out;
}

char *webhook_hs_sign_v3(const char *secret, const char *method, const char *uri, const char *body,
                         size_t body_len, const char *timestamp)
{
    struct buf msg;
    buf_init(&msg, 0);
    buf_append_str(&msg, method);
    buf_append_str(&msg, uri);
    buf_append(&msg, body, body_len);
    buf_append_str(&msg, timestamp);
    unsigned char mac[HMAC_SHA256_LEN];
    hmac_sha256(secret, strlen(secret), msg.data, msg.len, mac);
    buf_clear(&msg);
    return hmac_base64(mac, sizeof(mac));
}

char *webhook_hs_sign_legacy(const char *secret, const char *method, const char *uri,
                             const char *body, size_t body_len)
{
    struct buf msg;
    buf_init(&msg, 0);
    buf_append_str(&msg, secret);
    if (method && uri) {
        buf_append_str(&msg, method);
        buf_append_str(&msg, uri);
    }
    buf_append(&msg, body, body_len);
    unsigned char digest[HMAC_SHA256_LEN];
    hmac_sha256_digest(msg.data, msg.len, digest);
    buf_clear(&msg);
    return hmac_hex(digest, sizeof(digest));
}

/* PUBLIC_BASE_URL without a trailing slash, plus the request's path and query, decoded. */
static char *signed_uri(const char *base, const char *raw_uri)
{
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    char *joined = xasprintf("%.*s%s", (int)n, base, raw_uri);
    char *uri = webhook_hs_decode_uri(joined);
    free(joined);
    return uri;
}

enum err webhook_hs_verify(const struct webhook_hs_verifier *v,
                           const struct webhook_hs_request *req, int64_t now_ms, const char **why)
{
    if (req->signature_v3) {
        int64_t ts;
        if (!req->timestamp || !util_parse_i64(req->timestamp, &ts)) {
            *why = "missing or malformed X-HubSpot-Request-Timestamp";
            return ERR_AUTH;
        }
        /* |now - ts| > max_age without overflow: any int64 may arrive before authentication. */
        int64_t diff;
        bool too_far = __builtin_sub_overflow(now_ms, ts, &diff) || diff > v->max_age_ms ||
                       diff < -v->max_age_ms;
        if (v->max_age_ms > 0 && too_far) {
            *why = "X-HubSpot-Request-Timestamp is more than 5 minutes away from now";
            return ERR_AUTH;
        }
        char *uri = signed_uri(v->public_base_url, req->raw_uri);
        char *want = webhook_hs_sign_v3(v->client_secret, req->method, uri, req->body,
                                        req->body_len, req->timestamp);
        bool ok = hmac_equal(want, req->signature_v3);
        free(want);
        free(uri);
        if (!ok) {
            *why = "X-HubSpot-Signature-v3 does not match";
            return ERR_AUTH;
        }
        return ERR_OK;
    }
    if (!req->signature || !v->allow_legacy) {
        *why = req->signature ? "v1/v2 signatures are not enabled (HUBSPOT_ALLOW_LEGACY_SIGNATURES)"
                              : "missing X-HubSpot-Signature-v3";
        return ERR_AUTH;
    }
    bool is_v2 = req->signature_version && strcasecmp(req->signature_version, "v2") == 0;
    char *uri = is_v2 ? signed_uri(v->public_base_url, req->raw_uri) : NULL;
    char *want = webhook_hs_sign_legacy(v->client_secret, is_v2 ? req->method : NULL, uri,
                                        req->body, req->body_len);
    /* Hex digests may arrive in either case. */
    char *got = xstrdup(req->signature);
    for (char *p = got; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    bool ok = hmac_equal(want, got);
    free(got);
    free(want);
    free(uri);
    if (!ok) {
        *why = "X-HubSpot-Signature does not match";
        return ERR_AUTH;
    }
    return ERR_OK;
}

/* A whole, non-negative id: an integer literal (raw, its digits exact), a number below 2^53
 * written otherwise (5.0), or a string of digits; written back as plain digits into out (NULL:
 * only checked, as the acknowledgement needs). */
static bool id_text(const cJSON *item, char *out, size_t size)
{
    int64_t v;
    bool ok = false;
    if (cJSON_IsRaw(item)) {
        ok = util_parse_i64(item->valuestring, &v) && v >= 0;
    } else if (cJSON_IsNumber(item) && item->valuedouble >= 0 &&
               item->valuedouble < 9007199254740992.0 &&
               item->valuedouble == (double)(long long)item->valuedouble) {
        v = (long long)item->valuedouble;
        ok = true;
    } else if (cJSON_IsString(item) && item->valuestring[0]) {
        ok = util_parse_i64(item->valuestring, &v) && v >= 0;
    }
    if (ok && out)
        snprintf(out, size, "%lld", (long long)v);
    return ok;
}

static bool is_stored_type(const char *prefix, size_t n)
{
    return (n == 4 && strncmp(prefix, "deal", 4) == 0) ||
           (n == 7 && strncmp(prefix, "contact", 7) == 0) ||
           (n == 7 && strncmp(prefix, "company", 7) == 0);
}

/* occurredAt in milliseconds when it is a time PostgreSQL can store and an event can carry:
 * from 1970 to the end of year 9999. Missing: now_ms. */
static bool occurred_at(const cJSON *at, int64_t now_ms, int64_t *out)
{
    int64_t v;
    if (!at) {
        *out = now_ms;
        return true;
    }
    if (cJSON_IsRaw(at)) {
        if (!util_parse_i64(at->valuestring, &v))
            return false;
    } else if (cJSON_IsNumber(at)) {
        /* Compared as a double before the conversion: 9.2e18 does not fit an int64. */
        if (!(at->valuedouble >= 0 && at->valuedouble <= (double)WEBHOOK_HS_MAX_OCCURRED_AT_MS))
            return false;
        v = (int64_t)at->valuedouble;
    } else {
        *out = now_ms;
        return true;
    }
    if (v < 0 || v > WEBHOOK_HS_MAX_OCCURRED_AT_MS)
        return false;
    *out = v;
    return true;
}

/* One event of the array, validated. ERR_OK: counted in b->count (and stored in b->events
 * when b->events is not NULL), or counted as ignored. ERR_INVALID: *why says what is wrong with
 * it (caller frees). */
static enum err parse_event(const cJSON *ev, int i, int64_t now_ms, struct webhook_hs_batch *b,
                            char **why)
{
    /* Counting only: the ids are checked, never written out. */
    bool is_kept = b->events != NULL;
    if (!cJSON_IsObject(ev)) {
        *why = xasprintf("event %d is not an object", i);
        return ERR_INVALID;
    }
    if (!json_tree_is_utf8(ev->child)) {
        *why = xasprintf("event %d has a string that is not valid UTF-8", i);
        return ERR_INVALID;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "subscriptionType");
    if (!cJSON_IsString(type))
        type = cJSON_GetObjectItemCaseSensitive(ev, "eventType");
    if (!cJSON_IsString(type) || !strchr(type->valuestring, '.')) {
        *why = xasprintf("event %d has no subscriptionType or eventType", i);
        return ERR_INVALID;
    }
    char object_id[32];
    char *object_out = is_kept ? object_id : NULL;
    bool has_object =
        id_text(cJSON_GetObjectItemCaseSensitive(ev, "objectId"), object_out, sizeof(object_id));
    if (!has_object && strstr(type->valuestring, ".associationChange"))
        has_object = id_text(cJSON_GetObjectItemCaseSensitive(ev, "fromObjectId"), object_out,
                             sizeof(object_id));
    if (!has_object) {
        *why = xasprintf("event %d (%.64s) has no objectId", i, type->valuestring);
        return ERR_INVALID;
    }
    char event_id[32], portal_id[32], sub_id[32] = "0";
    if (!id_text(cJSON_GetObjectItemCaseSensitive(ev, "eventId"), is_kept ? event_id : NULL,
                 sizeof(event_id)) ||
        !id_text(cJSON_GetObjectItemCaseSensitive(ev, "portalId"), is_kept ? portal_id : NULL,
                 sizeof(portal_id))) {
        *why = xasprintf("event %d has no numeric eventId and portalId", i);
        return ERR_INVALID;
    }
    /* The captured associationChange has no subscriptionId: it is optional. */
    if (is_kept)
        (void)id_text(cJSON_GetObjectItemCaseSensitive(ev, "subscriptionId"), sub_id,
                      sizeof(sub_id));
    int64_t at;
    if (!occurred_at(cJSON_GetObjectItemCaseSensitive(ev, "occurredAt"), now_ms, &at)) {
        *why = xasprintf("event %d has an occurredAt out of range (1970 to 9999)", i);
        return ERR_INVALID;
    }
    size_t prefix = (size_t)(strchr(type->valuestring, '.') - type->valuestring);
    if (!is_stored_type(type->valuestring, prefix)) {
        b->ignored++;
        return ERR_OK;
    }
    if (!is_kept) {
        b->count++;
        return ERR_OK;
    }
    struct webhook_hs_event *e = &b->events[b->count++];
    e->dedup_key = xasprintf("%s:%s:%s", portal_id, sub_id, event_id);
    e->object_type = xstrndup(type->valuestring, prefix);
    e->record_id = xstrdup(object_id);
    e->event_type = xstrdup(type->valuestring);
    e->occurred_at_ms = at;
    e->payload = ev;
    return ERR_OK;
}

/* webhook_hs_parse, and webhook_hs_count when is_kept is false: the same checks, the same
 * decisions, only the events' fields are not written out. */
static enum err parse_body(const char *body, size_t len, int64_t now_ms, bool is_kept,
                           struct webhook_hs_batch *out, char **why)
{
    struct webhook_hs_batch b = {0};
    struct json_numbers nums = {0};
    char *strict_why = NULL;
    *why = NULL;
    /* HubSpot sends strict JSON: anything else (a key twice, \u0000, bytes after the array) is
     * refused whole, before cJSON reads it its own lenient way. */
    if (!json_strict_check(body, len, &nums, &strict_why)) {
        *why = xasprintf("body is not valid JSON (%s)", strict_why);
        free(strict_why);
        goto fail;
    }
    b.root = cJSON_ParseWithLength(body, len);
    if (!b.root) {
        *why = xstrdup("body is not valid JSON");
        goto fail;
    }
    json_exact_integers(b.root, &nums);
    if (!cJSON_IsArray(b.root)) {
        *why = xstrdup("body is not a JSON array of events");
        goto fail;
    }
    int n = cJSON_GetArraySize(b.root);
    if (n < 1 || n > WEBHOOK_HS_MAX_EVENTS) {
        *why = xasprintf("expected 1 to %d events, got %d", WEBHOOK_HS_MAX_EVENTS, n);
        goto fail;
    }
    b.events = is_kept ? xcalloc((size_t)n, sizeof(*b.events)) : NULL;
    b.rejections = xcalloc((size_t)n, sizeof(*b.rejections));
    int i = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, b.root)
    {
        char *reason = NULL;
        if (parse_event(ev, i, now_ms, &b, &reason) != ERR_OK)
            b.rejections[b.rejected++] = (struct webhook_hs_rejection){i, reason};
        i++;
    }
    /* Nothing worth acknowledging: the sender hears why. */
    if (b.rejected == (size_t)n) {
        *why = xstrdup(b.rejections[0].reason);
        goto fail;
    }
    b.received = (size_t)n;
    json_numbers_clear(&nums);
    *out = b;
    return ERR_OK;
fail:
    json_numbers_clear(&nums);
    webhook_hs_batch_clear(&b);
    return ERR_INVALID;
}

enum err webhook_hs_parse(const char *body, size_t len, int64_t now_ms,
                          struct webhook_hs_batch *out, char **why)
{
    return parse_body(body, len, now_ms, true, out, why);
}

enum err webhook_hs_count(const char *body, size_t len, int64_t now_ms,
                          struct webhook_hs_batch *out, char **why)
{
    return parse_body(body, len, now_ms, false, out, why);
}

void webhook_hs_batch_clear(struct webhook_hs_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; b->events && i < b->count; i++) {
        free(b->events[i].dedup_key);
        free(b->events[i].object_type);
        free(b->events[i].record_id);
        free(b->events[i].event_type);
    }
    free(b->events);
    for (size_t i = 0; i < b->rejected; i++)
        free(b->rejections[i].reason);
    free(b->rejections);
    cJSON_Delete(b->root);
    memset(b, 0, sizeof(*b));
}
