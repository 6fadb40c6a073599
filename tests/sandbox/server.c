/* server.c - the sandbox's HTTP side: libmicrohttpd (one thread per connection, so a held
 * "timeout" fault blocks nobody else), routing to the control API and the emulated systems under
 * the one state lock, fault application, the request log, outgoing POSTs and the delivery
 * thread. It knows nothing about Salesforce or HubSpot beyond the hooks in sandbox.h. */
#include "core.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "log.h"
#include "util.h"

#define DEFAULT_MAX_BODY (8 * 1024 * 1024)
#define DELIVERY_PERIOD_MS 20
/* Salesforce REST refuses a URI longer than 16,384 bytes with 414 URI Too Long (Salesforce
 * Help, knowledge article 000386264, "Maximum number of rows returned by SOQL queries over the
 * REST API"): a SOQL query in the URI must stay under it. */
#define SF_URI_MAX_BYTES 16384

/* Per-request state: created by the URI log callback (the only place that sees the raw query),
 * freed when MHD reports the request completed. */
struct conn_state {
    char *raw_uri;
    struct buf body;
    bool is_started;
};

static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond;
static atomic_bool is_stopping;
static struct MHD_Daemon *daemon_handle;
static pthread_t delivery_thread;
static bool has_delivery_thread;

void sb_lock(void)
{
    pthread_mutex_lock(&state_mu);
}

void sb_unlock(void)
{
    pthread_mutex_unlock(&state_mu);
}

int64_t sb_now_ms(void)
{
    return util_now_ms();
}

bool sb_sleep_ms(int ms)
{
    if (ms <= 0)
        return !atomic_load(&is_stopping);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&stop_mu);
    while (!atomic_load(&is_stopping)) {
        if (pthread_cond_timedwait(&stop_cond, &stop_mu, &deadline) != 0)
            break;
    }
    pthread_mutex_unlock(&stop_mu);
    return !atomic_load(&is_stopping);
}

/* ---- request accessors and response helpers (sandbox.h) ---- */

const char *sb_req_header(const struct sb_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX and '+' (form encoding, as query strings use it); caller frees. */
static char *url_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hex_value(s[i + 1]) >= 0 &&
                   hex_value(s[i + 2]) >= 0) {
            out[o++] = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

char *sb_req_query(const struct sb_request *req, const char *name)
{
    const char *p = req->query;
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t key_len = eq ? (size_t)(eq - p) : len;
        char *key = url_decode(p, key_len);
        bool is_match = strcmp(key, name) == 0;
        free(key);
        if (is_match)
            return eq ? url_decode(eq + 1, len - key_len - 1) : xstrdup("");
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

void sb_respond_json(struct sb_response *resp, int status, cJSON *json)
{
    free(resp->body);
    resp->body = json ? cJSON_PrintUnformatted(json) : NULL;
    resp->status = status;
    resp->content_type = "application/json";
    cJSON_Delete(json);
}

void sb_respond_text(struct sb_response *resp, int status, const char *content_type,
                     const char *text)
{
    free(resp->body);
    resp->body = text ? xstrdup(text) : NULL;
    resp->status = status;
    resp->content_type = content_type;
}

void sb_respond_header(struct sb_response *resp, const char *name, const char *value)
{
    if (resp->header_count >= SB_MAX_HEADERS)
        return;
    resp->header_names[resp->header_count] = xstrdup(name);
    resp->header_values[resp->header_count] = xstrdup(value);
    resp->header_count++;
}

static void response_clear(struct sb_response *resp)
{
    free(resp->body);
    for (int i = 0; i < resp->header_count; i++) {
        free(resp->header_names[i]);
        free(resp->header_values[i]);
    }
    memset(resp, 0, sizeof *resp);
}

/* ---- dispatch ---- */

/* Which system a path belongs to when the core answers it itself (faults, 404). */
static const char *guess_system(const char *path)
{
    if (strncmp(path, "/services/", 10) == 0)
        return "salesforce";
    static const char *const hubspot_prefixes[] = {"/crm/", "/webhooks/", "/account-info/",
                                                   "/oauth/"};
    for (size_t i = 0; i < sizeof hubspot_prefixes / sizeof hubspot_prefixes[0]; i++)
        if (strncmp(path, hubspot_prefixes[i], strlen(hubspot_prefixes[i])) == 0)
            return "hubspot";
    return "none";
}

static void respond_core_error(struct sb_response *resp, int status, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "error");
    cJSON_AddStringToObject(o, "message", message);
    sb_respond_json(resp, status, o);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct sb_response *resp)
{
    const char *body = resp->body ? resp->body : "";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (resp->body && resp->status != 204)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                resp->content_type ? resp->content_type : "application/json");
    for (int i = 0; i < resp->header_count; i++)
        MHD_add_response_header(r, resp->header_names[i], resp->header_values[i]);
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return rc;
}

static const char *fault_name(enum sb_fault_kind kind)
{
    switch (kind) {
    case SB_FAULT_ERROR:
        return "error";
    case SB_FAULT_TIMEOUT:
        return "timeout";
    case SB_FAULT_DROP:
        return "drop";
    case SB_FAULT_LOSE_ANSWER:
        return "timeout_after_write";
    case SB_FAULT_NONE:
        break;
    }
    return NULL;
}

/* Applies the fault chosen for this request. Returns true when the fault answered (resp filled)
 * or swallowed the request (*is_dropped). A timeout_after_write fault returns false with
 * *lose_after_ms set: the request is to be carried out, then its answer lost. *fault names the
 * fault that fired (static), or stays NULL. */
static bool apply_fault(const struct sb_request *req, struct sb_response *resp, bool *is_dropped,
                        int *lose_after_ms, const char **fault)
{
    struct sb_fault f;
    bool is_handled = true;
    sb_faults_decide(req->method, req->path, &f);
    *fault = fault_name(f.kind);
    if (f.latency_ms > 0 && !sb_sleep_ms(f.latency_ms)) {
        *is_dropped = true;
        goto out;
    }
    switch (f.kind) {
    case SB_FAULT_NONE:
        is_handled = false;
        break;
    case SB_FAULT_LOSE_ANSWER:
        *lose_after_ms = f.hold_ms;
        is_handled = false;
        break;
    case SB_FAULT_DROP:
        *is_dropped = true;
        break;
    case SB_FAULT_TIMEOUT:
        (void)sb_sleep_ms(f.hold_ms);
        *is_dropped = true;
        break;
    case SB_FAULT_ERROR:
        if (f.body)
            sb_respond_text(resp, f.status, "application/json", f.body);
        else
            respond_core_error(resp, f.status, "sandbox injected fault");
        if (f.retry_after)
            sb_respond_header(resp, "Retry-After", f.retry_after);
        break;
    }
out:
    sb_fault_clear(&f);
    return is_handled;
}

static enum MHD_Result dispatch(struct MHD_Connection *conn, const char *url, const char *method,
                                struct conn_state *st)
{
    struct sb_response resp = {0};
    const char *q = strchr(st->raw_uri, '?');
    struct sb_request req = {
        .method = method,
        .path = url,
        .query = q ? q + 1 : "",
        .body = st->body.data ? st->body.data : "",
        .body_len = st->body.len,
        .conn = conn,
    };
    const char *system = "none";
    const char *fault = NULL;
    bool is_dropped = false;
    bool is_logged = true;
    int lose_after_ms = -1;
    char note[64];

    if (st->body.is_over_limit) {
        system = guess_system(url);
        respond_core_error(&resp, 413, "request body too large");
    } else if (strcmp(guess_system(url), "salesforce") == 0 &&
               strlen(st->raw_uri) > SF_URI_MAX_BYTES) {
        system = "salesforce";
        respond_core_error(&resp, 414, "URI Too Long");
    } else if (strcmp(url, "/_sandbox") == 0 || strncmp(url, "/_sandbox/", 10) == 0) {
        system = "control";
        /* polling the log must not grow it */
        is_logged = !(strcmp(method, "GET") == 0 && strcmp(url, "/_sandbox/requests") == 0);
        sb_lock();
        sb_control_handle(&req, &resp);
        sb_unlock();
    } else if (apply_fault(&req, &resp, &is_dropped, &lose_after_ms, &fault)) {
        system = guess_system(url);
    } else {
        sb_lock();
        if (sb_sf_handle(&req, &resp))
            system = "salesforce";
        else if (sb_hs_handle(&req, &resp))
            system = "hubspot";
        sb_unlock();
        if (strcmp(system, "none") == 0) {
            char *msg = xasprintf("sandbox: no route for %s %s", method, url);
            respond_core_error(&resp, 404, msg);
            free(msg);
        }
        if (lose_after_ms >= 0) {
            /* carried out; the log keeps the answer that never left */
            snprintf(note, sizeof note, "timeout_after_write (answer %d lost)", resp.status);
            fault = note;
            (void)sb_sleep_ms(lose_after_ms);
            is_dropped = true;
        }
    }
    if (is_logged)
        sb_reqlog_add(system, "in", method, url, req.query, is_dropped ? 0 : resp.status, req.body,
                      req.body_len, fault);
    enum MHD_Result rc = is_dropped ? MHD_NO : send_response(conn, &resp);
    response_clear(&resp);
    return rc;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    struct conn_state *st = xcalloc(1, sizeof *st);
    st->raw_uri = xstrdup(uri);
    buf_init(&st->body, (size_t)sb_setting_int("core.max_body_bytes", DEFAULT_MAX_BODY));
    return st;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct conn_state *st = *con_cls;
    if (!st)
        return;
    buf_clear(&st->body);
    free(st->raw_uri);
    free(st);
    *con_cls = NULL;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct conn_state *st = *con_cls;
    if (!st)
        return MHD_NO;
    if (!st->is_started) {
        st->is_started = true;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        (void)buf_append(&st->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    return dispatch(conn, url, method, st);
}

/* ---- outgoing POSTs and the delivery thread ---- */

static size_t on_curl_write(char *data, size_t size, size_t n, void *userdata)
{
    (void)buf_append(userdata, data, size * n);
    return size * n;
}

int sb_http_post(const char *url, const char *const *headers, const char *body, size_t body_len,
                 int timeout_ms, char **resp_body)
{
    CURL *c = curl_easy_init();
    struct curl_slist *list = NULL;
    struct buf answer;
    long status = 0;
    buf_init(&answer, 1024 * 1024);
    if (!c)
        goto out;
    for (size_t i = 0; headers && headers[i]; i++)
        list = curl_slist_append(list, headers[i]);
    list = curl_slist_append(list, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
out:
    if (resp_body)
        *resp_body = buf_steal(&answer);
    buf_clear(&answer);
    curl_slist_free_all(list);
    if (c)
        curl_easy_cleanup(c);
    return (int)status;
}

static void *delivery_main(void *arg)
{
    (void)arg;
    do {
        sb_sf_tick();
        sb_hs_tick();
    } while (sb_sleep_ms(DELIVERY_PERIOD_MS));
    return NULL;
}

bool sb_server_start(const char *bind_addr, int port, int *bound_port)
{
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, bind_addr, &addr.sin_addr) != 1) {
        log_error("bind address is not an ipv4 address", LOG_STR("bind", bind_addr));
        return false;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&stop_cond, &attr);
    pthread_condattr_destroy(&attr);

    daemon_handle = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC,
        (uint16_t)port, NULL, NULL, on_access, NULL, MHD_OPTION_SOCK_ADDR,
        (const struct sockaddr *)&addr, MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_END);
    if (!daemon_handle) {
        log_error("cannot start http daemon", LOG_STR("bind", bind_addr), LOG_I64("port", port));
        return false;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(daemon_handle, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info ? info->port : port;
    if (pthread_create(&delivery_thread, NULL, delivery_main, NULL) != 0) {
        log_error("cannot start delivery thread");
        MHD_stop_daemon(daemon_handle);
        daemon_handle = NULL;
        return false;
    }
    has_delivery_thread = true;
    return true;
}

void sb_server_stop(void)
{
    /* The flag goes up before MHD_stop_daemon (not after, as in the service) because connection
     * threads may be holding a "timeout" fault: they must wake up for the daemon to stop. */
    pthread_mutex_lock(&stop_mu);
    atomic_store(&is_stopping, true);
    pthread_cond_broadcast(&stop_cond);
    pthread_mutex_unlock(&stop_mu);
    if (daemon_handle)
        MHD_stop_daemon(daemon_handle);
    daemon_handle = NULL;
    if (has_delivery_thread)
        pthread_join(delivery_thread, NULL);
    has_delivery_thread = false;
}
