/* webhook_hs.h - HubSpot webhooks: signature verification (v3, and v1/v2 where allowed) over the
 * raw body, then parsing of the event array. Pure and thread-safe. */
#ifndef SVC_WEBHOOK_HS_H
#define SVC_WEBHOOK_HS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "compiler.h"
#include "err.h"

#define WEBHOOK_HS_MAX_EVENTS 100
/* The last millisecond of year 9999: a later occurredAt is set aside, not stored. */
#define WEBHOOK_HS_MAX_OCCURRED_AT_MS 253402300799999LL

/* What verification needs from the request. All borrowed. */
struct webhook_hs_request {
    const char *method;
    const char *raw_uri; /* path and query exactly as on the request line */
    const char *body;
    size_t body_len;
    const char *signature_v3;      /* X-HubSpot-Signature-v3 or NULL */
    const char *timestamp;         /* X-HubSpot-Request-Timestamp or NULL */
    const char *signature;         /* X-HubSpot-Signature (v1/v2) or NULL */
    const char *signature_version; /* X-HubSpot-Signature-Version or NULL */
};

struct webhook_hs_verifier {
    const char *client_secret;
    const char *public_base_url; /* scheme://host[:port][/prefix], no trailing slash needed */
    bool allow_legacy;           /* accept v1/v2 when no v3 header is present */
    int64_t max_age_ms;          /* 0: the age check is off (fixed test vectors only) */
};

/* ERR_OK when the request is signed with the client secret; ERR_AUTH otherwise with *why a
 * static reason (missing, stale timestamp, mismatch). Compares in constant time. */
enum err webhook_hs_verify(const struct webhook_hs_verifier *v,
                           const struct webhook_hs_request *req, int64_t now_ms,
                           const char **why) WARN_UNUSED;

/* The v3 signature of method + uri + body + timestamp (uri already full and decoded).
 * Caller frees. */
char *webhook_hs_sign_v3(const char *secret, const char *method, const char *uri, const char *body,
                         size_t body_len, const char *timestamp);
/* v1 (method and uri NULL) or v2: hex SHA-256 of secret + [method + uri +] body. Caller frees. */
char *webhook_hs_sign_legacy(const char *secret, const char *method, const char *uri,
                             const char *body, size_t body_len);
/* Decodes only the escapes HubSpot's v3 algorithm decodes (%3A %2F %3F %40 %21 %24 %27 %28 %29
 * %2A %2C %3B, either case); everything else is left as sent. Caller frees. */
char *webhook_hs_decode_uri(const char *uri);

/* One event worth storing. Owned by the enclosing batch. */
struct webhook_hs_event {
    char *dedup_key;   /* "<portalId>:<subscriptionId>:<eventId>" */
    char *object_type; /* "deal", "contact" or "company" */
    char *record_id;   /* objectId, or fromObjectId for an associationChange without one */
    char *event_type;  /* the subscriptionType (or eventType) */
    int64_t occurred_at_ms;
    const cJSON *payload; /* the event object, borrowed from the batch's parsed body */
};

/* An event set aside by validation: acknowledged, not stored, logged with its reason. */
struct webhook_hs_rejection {
    int index; /* position in the body's array */
    char *reason;
};

struct webhook_hs_batch {
    cJSON *root;
    struct webhook_hs_event *events; /* the ones to store */
    size_t count;
    size_t received; /* all events in the body */
    size_t ignored;  /* events of other object types: acknowledged, not stored */
    struct webhook_hs_rejection *rejections;
    size_t rejected; /* events that fail validation (range, UTF-8, ids): set aside */
};

/* Parses a verified body. ERR_INVALID with *why (owned by the caller, free it) when the body is
 * not strict JSON (json_strict.h: a key twice, \u0000, bytes after the array), not an array of
 * 1..100 events, or when no event is valid. An event that is not an object, lacks its type,
 * object or ids, has an occurredAt outside 1970..9999 or a string that is not UTF-8 is set aside
 * in out->rejections with its reason, and the others are kept. Integer ids keep every digit
 * (record_id, dedup_key, and the payload, whose integers are cJSON raw items). */
enum err webhook_hs_parse(const char *body, size_t len, int64_t now_ms,
                          struct webhook_hs_batch *out, char **why) WARN_UNUSED;
/* webhook_hs_parse for an acknowledgement: the same checks and the same result, counts and
 * rejections alike, but out->events stays NULL (no event's fields are copied out: about four
 * allocations and five number formats an event fewer). */
enum err webhook_hs_count(const char *body, size_t len, int64_t now_ms,
                          struct webhook_hs_batch *out, char **why) WARN_UNUSED;
void webhook_hs_batch_clear(struct webhook_hs_batch *b);

#endif
