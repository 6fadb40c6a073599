/* http_client.h - one libcurl easy handle per worker, with timeouts, keep-alive reuse and the
 * single mapping from HTTP outcomes to enum err. Not thread-safe: one client per worker. */
#ifndef SVC_HTTP_CLIENT_H
#define SVC_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "err.h"

struct http_client; /* CURL easy handle (keeps its connection cache) and options */

struct http_client_options {
    long connect_timeout_ms; /* 0 = 10000 */
    long timeout_ms;         /* whole transfer; 0 = 60000 */
    size_t max_body;         /* largest response body accepted; 0 = 64 MiB */
};

/* A received response. Strings are owned by the struct; release with http_response_clear. */
struct http_response {
    long status; /* 0 when no HTTP response arrived */
    char *body;  /* NUL-terminated, never NULL once a response arrived */
    size_t body_len;
    char *content_type;          /* NULL when absent */
    char *sforce_limit_info;     /* Sforce-Limit-Info, e.g. "api-usage=18/5000"; NULL if absent */
    int64_t retry_after_ms;      /* retry hint for 429/423/477/503 answers; -1 when none */
    bool has_retry_after;        /* the hint is the answer's own Retry-After header */
    int64_t hs_rate_max;         /* X-HubSpot-RateLimit-Max; -1 when absent */
    int64_t hs_rate_remaining;   /* X-HubSpot-RateLimit-Remaining; -1 when absent */
    int64_t hs_rate_interval_ms; /* X-HubSpot-RateLimit-Interval-Milliseconds; -1 when absent */
    int64_t hs_daily_remaining;  /* X-HubSpot-RateLimit-Daily-Remaining; -1 when absent */
    int64_t hs_daily_max;        /* X-HubSpot-RateLimit-Daily; -1 when absent */
};

/* New client; opt may be NULL for the defaults. curl_global_init must have run (main does it
 * before any thread starts). Caller frees with http_client_free. */
struct http_client *http_client_new(const struct http_client_options *opt);
/* NULL is a no-op. */
void http_client_free(struct http_client *hc);

/* Sets every field to its empty value (status 0, hints -1). */
void http_response_init(struct http_response *r);
/* Frees the strings and re-initialises r. NULL is a no-op. */
void http_response_clear(struct http_response *r);

/* Sends one request and waits for the whole answer. method is "GET", "POST", "PATCH", "PUT" or
 * "DELETE"; headers is a NULL-terminated list of "Name: value" (borrowed, may be NULL); body
 * (may be NULL) is sent as is with Content-Length. `Expect:` is never sent. Redirects are not
 * followed.
 *
 * resp is always re-initialised; it holds the answer whenever one arrived, also when the
 * result is an error, so API clients can read the error body. The caller clears it.
 *
 * Result: ERR_OK for 1xx-3xx; ERR_TIMEOUT (connect or total timeout, 408, or the connection
 * lost after the request went out: no answer, and it may have been carried out); ERR_UPSTREAM
 * (no connection made, 5xx, 477); ERR_RATE_LIMIT (429, and 423 "locked" which HubSpot asks to
 * retry after 2 s) with resp->retry_after_ms set from Retry-After or the HubSpot rate-limit
 * headers when they give one; ERR_AUTH (401); ERR_FORBIDDEN (403); ERR_NOT_FOUND (404, 410);
 * ERR_CONFLICT (409); ERR_TOO_LARGE (413, or the answer exceeded max_body); ERR_INVALID (other 4xx,
 * malformed URL). Transport failures, 429 and 5xx are logged here (method, path without query,
 * status, byte counts); other statuses are left to the API client, which knows the error code.
 * Never logs headers or bodies. Not thread-safe (per client). */
enum err http_client_request(struct http_client *hc, const char *method, const char *url,
                             const char *const *headers, const char *body,
                             struct http_response *resp) WARN_UNUSED;

/* Maps an HTTP status to enum err as described above (ERR_OK below 400). Pure. */
enum err http_status_to_err(long status);

/* Parses a Retry-After value (delta-seconds or an IMF-fixdate such as
 * "Sun, 06 Nov 1994 08:49:37 GMT") into a delay in ms from now_ms, never negative. False when
 * the value is neither. Pure. */
bool http_parse_retry_after(const char *value, int64_t now_ms, int64_t *delay_ms);

/* Percent-encodes s for a query value or path segment (RFC 3986 unreserved kept). Caller frees. */
char *http_url_encode(const char *s);

#endif
