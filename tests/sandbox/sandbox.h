/* sandbox.h - core of dealsync-sandbox, the local stand-in for Salesforce and HubSpot.
 *
 * The core (server.c, main.c) owns the HTTP server, routing, the control API under /_sandbox/,
 * the request log, fault injection, settings and the delivery thread. Each emulated API lives in
 * its own files (sf_*.c for Salesforce, hs_*.c for HubSpot) and plugs in through the hooks at the
 * bottom of this header.
 *
 * Locking: all emulated state is guarded by one mutex. The core holds it while it calls a
 * handler (sb_sf_handle, sb_hs_handle, sb_*_control), so handlers never lock. The delivery
 * hooks (sb_sf_tick, sb_hs_tick) are called WITHOUT the lock: they take sb_lock() to copy what
 * is due, release it, do the HTTP POST with libcurl, then lock again to record the outcome. */
#ifndef SB_SANDBOX_H
#define SB_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* One HTTP request as the handlers see it. All strings are borrowed for the call. */
struct sb_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* URL path, percent-decoded by the server, without the query */
    const char *query;  /* raw query string without the '?', "" when none */
    const char *body;   /* raw body, NUL-terminated, "" when none */
    size_t body_len;
    void *conn; /* the core's connection handle; use the accessors below */
};

/* Header value (case-insensitive name) or NULL. Borrowed for the call. */
const char *sb_req_header(const struct sb_request *req, const char *name);
/* Decoded query argument or NULL; caller frees. Repeated keys: the first. */
char *sb_req_query(const struct sb_request *req, const char *name);

#define SB_MAX_HEADERS 12

/* What a handler answers. body is owned by the response (freed by the core). */
struct sb_response {
    int status;
    char *body;
    const char *content_type; /* static string; default "application/json" */
    int header_count;
    char *header_names[SB_MAX_HEADERS];
    char *header_values[SB_MAX_HEADERS];
};

/* Sets status and the JSON body; takes ownership of json and deletes it (NULL = empty body). */
void sb_respond_json(struct sb_response *resp, int status, cJSON *json);
/* Sets status and a copy of text as body with the given static content type. */
void sb_respond_text(struct sb_response *resp, int status, const char *content_type,
                     const char *text);
/* Adds a response header (both copied). Silently ignores more than SB_MAX_HEADERS. */
void sb_respond_header(struct sb_response *resp, const char *name, const char *value);

/* The one state mutex (see the top of this file). */
void sb_lock(void);
void sb_unlock(void);

/* Settings: a flat name -> value table, seeded from the command line/environment and changed at
 * run time through PUT /_sandbox/settings. Read under the lock or not; values are copied. */
int64_t sb_setting_int(const char *name, int64_t fallback);
/* Copies the value into a static per-thread buffer; NULL when unset. */
const char *sb_setting_str(const char *name);
/* Added by the core: sets name to a copy of value (number or string; JSON null removes it), as
 * PUT /_sandbox/settings does. False for other JSON types. */
bool sb_setting_set(const char *name, const cJSON *value);
/* Added by the core: a numeric setting as a double (rates such as 0.25), or fallback. */
double sb_setting_double(const char *name, double fallback);

/* Delivery faults (added by the core). PUT /_sandbox/faults {"delivery":{...}} stores these
 * settings; each half reads them when it sends a webhook / outbound message:
 *   delivery.duplicate_rate  0..1  chance that a delivered batch is sent once more later
 *   delivery.reorder_rate    0..1  chance that a batch is shuffled before it is sent
 *   delivery.drop_rate       0..1  chance that a due notification or webhook event is given up
 *                                  at once, as the real CRMs give up after their last retry
 * Decide with sb_random() so a run is reproducible from the seed. */
#define SB_SETTING_DUPLICATE_RATE "delivery.duplicate_rate"
#define SB_SETTING_REORDER_RATE "delivery.reorder_rate"
#define SB_SETTING_DROP_RATE "delivery.drop_rate"

/* Deterministic pseudo-random numbers from the fault seed (xorshift); returns [0, 1). */
double sb_random(void);

/* Milliseconds since the epoch; also the sandbox's clock for record timestamps. */
int64_t sb_now_ms(void);

/* Appends a record of an outgoing delivery (webhook or outbound message) to the request log,
 * so tests can count them. direction "out", target url, status answered (0 = no answer); body
 * is kept as the core.log_body_bytes setting says. */
void sb_log_delivery(const char *system, const char *url, int status, const char *body,
                     size_t body_len);

/* POSTs body to url with the given headers (NULL-terminated array of "Name: value" strings).
 * Returns the HTTP status, 0 when the connection failed or timed out; *resp_body (may be NULL)
 * receives the answer, caller frees. Call WITHOUT the lock held. */
int sb_http_post(const char *url, const char *const *headers, const char *body, size_t body_len,
                 int timeout_ms, char **resp_body);

/* ---- Hooks each emulated system implements -------------------------------------------- */

/* Called once at start (no threads yet): seed built-in data. */
void sb_sf_init(void);
void sb_hs_init(void);

/* Emulated API. Return true when the path belongs to this system (then resp is filled),
 * false to let the core answer 404. Called with the lock held. */
bool sb_sf_handle(const struct sb_request *req, struct sb_response *resp);
bool sb_hs_handle(const struct sb_request *req, struct sb_response *resp);

/* Control API below /_sandbox/salesforce/ and /_sandbox/hubspot/ (sub is the rest of the path,
 * e.g. "records/Opportunity"). Called with the lock held. */
bool sb_sf_control(const char *sub, const struct sb_request *req, struct sb_response *resp);
bool sb_hs_control(const char *sub, const struct sb_request *req, struct sb_response *resp);

/* Drop all state and reseed (POST /_sandbox/reset). Called with the lock held. */
void sb_sf_reset(void);
void sb_hs_reset(void);

/* Delivery: called every few milliseconds by the core's delivery thread, WITHOUT the lock. */
void sb_sf_tick(void);
void sb_hs_tick(void);

#endif
