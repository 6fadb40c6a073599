/* http_client.c - libcurl easy-handle wrapper: one request at a time, connection reuse, and the
 * one place where transport failures and HTTP statuses become enum err. Knows nothing about
 * Salesforce or HubSpot payloads. */
#include "http_client.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "log.h"
#include "util.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_TIMEOUT_MS 60000L
#define DEFAULT_MAX_BODY ((size_t)64 * 1024 * 1024)
/* HubSpot documents 423 "locked" as: wait at least 2 seconds. */
#define LOCKED_RETRY_MS 2000

struct http_client {
    CURL *curl;
    long connect_timeout_ms;
    long timeout_ms;
    size_t max_body;
};

/* What the header and write callbacks collect during one transfer. */
struct transfer {
    struct buf body;
    struct http_response *resp;
    char *retry_after;
};

struct http_client *http_client_new(const struct http_client_options *opt)
{
    struct http_client *hc = xcalloc(1, sizeof(*hc));
    hc->curl = curl_easy_init();
    if (!hc->curl)
        abort(); /* only fails on OOM; same policy as xmalloc */
    hc->connect_timeout_ms =
        opt && opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    hc->timeout_ms = opt && opt->timeout_ms > 0 ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
    hc->max_body = opt && opt->max_body > 0 ? opt->max_body : DEFAULT_MAX_BODY;
    return hc;
}

void http_client_free(struct http_client *hc)
{
    if (!hc)
        return;
    curl_easy_cleanup(hc->curl);
    free(hc);
}

void http_response_init(struct http_response *r)
{
    memset(r, 0, sizeof(*r));
    r->retry_after_ms = -1;
    r->hs_rate_max = -1;
    r->hs_rate_remaining = -1;
    r->hs_rate_interval_ms = -1;
    r->hs_daily_remaining = -1;
    r->hs_daily_max = -1;
}

void http_response_clear(struct http_response *r)
{
    if (!r)
        return;
    free(r->body);
    free(r->content_type);
    free(r->sforce_limit_info);
    http_response_init(r);
}

enum err http_status_to_err(long status)
{
    if (status < 400)
        return ERR_OK;
    switch (status) {
    case 401:
        return ERR_AUTH;
    case 403:
        return ERR_FORBIDDEN;
    case 404:
    case 410:
        return ERR_NOT_FOUND;
    case 408:
        return ERR_TIMEOUT;
    case 409:
        return ERR_CONFLICT;
    case 413:
        return ERR_TOO_LARGE;
    case 423:
    case 429:
        return ERR_RATE_LIMIT;
    case 477: /* HubSpot: portal migration in progress, honour Retry-After */
        return ERR_UPSTREAM;
    default:
        return status >= 500 ? ERR_UPSTREAM : ERR_INVALID;
    }
}

static int month_from_name(const char *s)
{
    static const char *const names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (strncmp(s, names[i], 3) == 0)
            return i + 1;
    return 0;
}

bool http_parse_retry_after(const char *value, int64_t now_ms, int64_t *delay_ms)
{
    if (!value)
        return false;
    while (*value == ' ' || *value == '\t')
        value++;
    int64_t secs;
    if (util_parse_i64(value, &secs)) {
        if (secs < 0)
            return false;
        *delay_ms = secs > INT64_MAX / 1000 ? INT64_MAX : secs * 1000;
        return true;
    }
    /* IMF-fixdate, the only HTTP-date form senders may generate (RFC 9110 5.6.7). */
    char wday[4], mon[4], zone[4];
    int day, year, h, m, s, used = 0;
    if (strlen(value) != 29 || sscanf(value, "%3[A-Za-z], %d %3s %d %d:%d:%d %3s%n", wday, &day,
                                      mon, &year, &h, &m, &s, zone, &used) != 8)
        return false;
    int month = month_from_name(mon);
    if (used != 29 || month == 0 || strcmp(zone, "GMT") != 0 || day < 1 || day > 31 || h > 23 ||
        m > 59 || s > 60)
        return false;
    int64_t at_ms = (util_days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + s) * 1000;
    *delay_ms = at_ms > now_ms ? at_ms - now_ms : 0;
    return true;
}

char *http_url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    struct buf b;
    buf_init(&b, 0);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            buf_append(&b, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(&b, esc, 3);
        }
    }
    return buf_steal(&b);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb;
    /* Returning less than n aborts the transfer with CURLE_WRITE_ERROR. */
    return buf_append(&t->body, data, n) ? n : 0;
}

static void set_i64_header(const char *value, int64_t *out)
{
    int64_t v;
    if (util_parse_i64(value, &v))
        *out = v;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb;
    struct http_response *r = t->resp;

    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response begins (after a 1xx): forget the previous headers. */
        http_response_clear(r);
        free(t->retry_after);
        t->retry_after = NULL;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    size_t name_len = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t v_len = n - name_len - 1;
    while (v_len && (*v == ' ' || *v == '\t')) {
        v++;
        v_len--;
    }
    while (v_len && (v[v_len - 1] == '\r' || v[v_len - 1] == '\n' || v[v_len - 1] == ' '))
        v_len--;

    static const struct {
        const char *name;
        size_t offset;
    } i64_headers[] = {
        {"X-HubSpot-RateLimit-Max", offsetof(struct http_response, hs_rate_max)},
        {"X-HubSpot-RateLimit-Remaining", offsetof(struct http_response, hs_rate_remaining)},
        {"X-HubSpot-RateLimit-Interval-Milliseconds",
         offsetof(struct http_response, hs_rate_interval_ms)},
        {"X-HubSpot-RateLimit-Daily-Remaining", offsetof(struct http_response, hs_daily_remaining)},
        {"X-HubSpot-RateLimit-Daily", offsetof(struct http_response, hs_daily_max)},
    };
    char *value = xstrndup(v, v_len);
    char *name = xstrndup(data, name_len);
    if (strcasecmp(name, "Retry-After") == 0) {
        free(t->retry_after);
        t->retry_after = value;
        value = NULL;
    } else if (strcasecmp(name, "Content-Type") == 0) {
        free(r->content_type);
        r->content_type = value;
        value = NULL;
    } else if (strcasecmp(name, "Sforce-Limit-Info") == 0) {
        free(r->sforce_limit_info);
        r->sforce_limit_info = value;
        value = NULL;
    } else {
        for (size_t i = 0; i < sizeof(i64_headers) / sizeof(i64_headers[0]); i++)
            if (strcasecmp(name, i64_headers[i].name) == 0)
                set_i64_header(value, (int64_t *)((char *)r + i64_headers[i].offset));
    }
    free(name);
    free(value);
    return n;
}

/* The retry hint: Retry-After when given; for a HubSpot 429 without it, the rest of the rolling
 * window is unknown, so the whole window is the safe wait. */
static int64_t retry_hint(long status, const char *retry_after, struct http_response *r)
{
    int64_t ms;
    r->has_retry_after = http_parse_retry_after(retry_after, util_now_ms(), &ms);
    if (r->has_retry_after)
        return ms;
    if (status == 429 && r->hs_rate_interval_ms > 0)
        return r->hs_rate_interval_ms;
    if (status == 423)
        return LOCKED_RETRY_MS;
    return -1;
}

static enum err curl_code_to_err(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return ERR_TIMEOUT;
    /* The connection went while the request was sent or its answer awaited: the server may
     * have carried the request out, its answer lost, as with a timeout. A write dealsync
     * remembered then stays remembered (sync_deal.c unnote_unwritten); taken for a write not
     * carried out, its echo looked like a user's change and won over the user's newer one. */
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return ERR_TIMEOUT;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return ERR_INVALID;
    default:
        return ERR_UPSTREAM;
    }
}

/* The URL path without scheme, host or query: safe to log (no ids in query strings, no keys). */
static char *loggable_path(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : url;
    if (!p)
        return xstrdup("/");
    return xstrndup(p, strcspn(p, "?"));
}

static void setup_method(CURL *curl, const char *method, const char *body)
{
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (strcmp(method, "POST") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body || strcmp(method, "DELETE") != 0) {
        /* PUT/PATCH/POST without a body still send Content-Length: 0. */
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
    }
}

enum err http_client_request(struct http_client *hc, const char *method, const char *url,
                             const char *const *headers, const char *body,
                             struct http_response *resp)
{
    struct curl_slist *list = NULL;
    struct transfer t = {.resp = resp};
    char *path = NULL;
    enum err rc;
    int64_t started = util_monotonic_ms();

    http_response_init(resp);
    buf_init(&t.body, hc->max_body);
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    /* libcurl would wait a second for "100 Continue" on larger bodies; the APIs never need it. */
    list = curl_slist_append(list, "Expect:");

    /* reset keeps the connection cache, so keep-alive connections survive between requests. */
    CURL *curl = hc->curl;
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, hc->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, hc->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "dealsync/1");
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    setup_method(curl, method, body);

    CURLcode cc = curl_easy_perform(curl);
    path = loggable_path(url);
    int64_t duration = util_monotonic_ms() - started;
    if (cc != CURLE_OK) {
        rc = t.body.is_over_limit ? ERR_TOO_LARGE : curl_code_to_err(cc);
        log_warn("upstream request failed", LOG_STR("method", method), LOG_STR("path", path),
                 LOG_STR("curl_error", curl_easy_strerror(cc)), LOG_STR("err", err_name(rc)),
                 LOG_I64("duration_ms", duration));
        http_response_clear(resp);
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body_len = t.body.len;
    resp->body = buf_steal(&t.body);
    rc = http_status_to_err(resp->status);
    if (resp->status == 429 || resp->status == 423 || resp->status == 477 || resp->status >= 500)
        resp->retry_after_ms = retry_hint(resp->status, t.retry_after, resp);
    /* A 429 is waited out (the queue backs off as told); a 5xx is worth a warning. */
    if (resp->status == 429 || resp->status >= 500)
        log_emit(resp->status == 429 ? LOG_INFO : LOG_WARN, "upstream request refused",
                 LOG_STR("method", method), LOG_STR("path", path),
                 LOG_I64("http_status", resp->status), LOG_I64("body_bytes", resp->body_len),
                 LOG_I64("retry_after_ms", resp->retry_after_ms), LOG_I64("duration_ms", duration),
                 LOG_END);
    else
        log_debug("upstream request", LOG_STR("method", method), LOG_STR("path", path),
                  LOG_I64("http_status", resp->status), LOG_I64("body_bytes", resp->body_len),
                  LOG_I64("duration_ms", duration));
out:
    free(path);
    free(t.retry_after);
    buf_clear(&t.body);
    curl_slist_free_all(list);
    return rc;
}
