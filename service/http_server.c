/* http_server.c - libmicrohttpd daemon, route table, bounded body accumulation and replies.
 * Webhook handlers do nothing beyond verify, parse and one INSERT: HubSpot waits at most five
 * seconds, and the workers do the rest. */
#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "admin.h"
#include "ingest_commit.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "queue.h"
#include "util.h"
#include "webhook_hs.h"
#include "webhook_sf.h"

/* How long a webhook request may wait for a database connection before answering 503. */
#define DB_WAIT_MS 2000

/* Events one group commit may hold (a larger request is a group of its own). */
#define INGEST_GROUP_MAX_EVENTS 2000

struct http_server {
    struct MHD_Daemon *daemon;
    const struct config *cfg;
    struct db_pool *pool;
    struct ingest_committer *committer; /* NULL: each request commits alone */
    atomic_llong next_request_id;
};

enum reply_kind { REPLY_JSON, REPLY_SOAP, REPLY_TEXT };

struct route;

/* What a handler produced; body is owned (malloc'd). */
struct reply {
    enum err rc;
    const char *content_type;
    char *body;
};

/* Per-request state, allocated in the URI callback and freed in the completion callback. */
struct http_request {
    struct http_server *server;
    long long id;
    char *raw_uri;
    const struct route *route;
    bool is_started;
    bool is_too_large;
    bool is_replied;
    struct buf body;
    int64_t started_ms;
    unsigned status;
    char *location;       /* owned; set by /admin: 303 See Other to it */
    bool ask_credentials; /* set by /admin with ERR_AUTH: WWW-Authenticate: Basic */
};

typedef struct reply (*route_fn)(struct http_request *req, struct MHD_Connection *c);

struct route {
    const char *method;
    const char *path;
    const char *name; /* metrics label */
    enum reply_kind kind;
    route_fn fn;
};

static unsigned status_for(enum err e)
{
    switch (e) {
    case ERR_OK:
        return MHD_HTTP_OK;
    case ERR_INVALID:
        return MHD_HTTP_BAD_REQUEST;
    case ERR_AUTH:
        return MHD_HTTP_UNAUTHORIZED;
    case ERR_FORBIDDEN:
        return MHD_HTTP_FORBIDDEN;
    case ERR_NOT_FOUND:
        return MHD_HTTP_NOT_FOUND;
    case ERR_UNSUPPORTED:
        return MHD_HTTP_METHOD_NOT_ALLOWED;
    case ERR_TOO_LARGE:
        return MHD_HTTP_CONTENT_TOO_LARGE;
    case ERR_CONFLICT:
        return MHD_HTTP_CONFLICT;
    case ERR_DB:
    case ERR_UPSTREAM:
    case ERR_TIMEOUT:
    case ERR_RATE_LIMIT:
    case ERR_BUSY:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    case ERR_CONFIG:
    case ERR_INTERNAL:
        break;
    }
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static char *json_error(const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", message);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* A failure reply in the route's own format: a SOAP fault for Salesforce, JSON elsewhere. */
static struct reply fail_reply(enum reply_kind kind, enum err rc, const char *message)
{
    struct reply r = {rc, "application/json", NULL};
    if (kind == REPLY_SOAP) {
        r.content_type = "text/xml; charset=utf-8";
        r.body = webhook_sf_fault(err_is_transient(rc) || rc == ERR_INTERNAL, message);
    } else {
        r.body = json_error(message);
    }
    return r;
}

static void count_rejected(const char *source, const char *reason)
{
    char labels[160];
    snprintf(labels, sizeof(labels), "source=\"%s\",reason=\"%s\"", source, reason);
    metrics_inc("dealsync_webhook_events_rejected_total", labels, 1);
}

static void count_events(const char *source, size_t received, size_t stored)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "source=\"%s\"", source);
    metrics_inc("dealsync_webhook_events_received_total", labels, (long long)received);
    metrics_inc("dealsync_webhook_events_stored_total", labels, (long long)stored);
    metrics_inc("dealsync_webhook_events_duplicate_total", labels, (long long)(received - stored));
}

/* Stores the events durably before the caller acknowledges them: through the group committer
 * (with concurrent requests, one transaction), or alone on a borrowed connection. */
static enum err store(struct http_request *req, const struct queue_event_in *evs, size_t n,
                      size_t *stored)
{
    if (req->server->committer)
        return ingest_store(req->server->committer, evs, n, stored);
    PGconn *db = NULL;
    enum err rc = db_pool_acquire(req->server->pool, DB_WAIT_MS, &db);
    if (rc == ERR_OK)
        rc = queue_push(db, evs, n, stored);
    db_pool_release(req->server->pool, db);
    return rc;
}

static struct reply handle_salesforce(struct http_request *req, struct MHD_Connection *c)
{
    const struct config *cfg = req->server->cfg;
    struct webhook_sf_message msg = {0};
    struct queue_event_in *evs = NULL;
    char *why = NULL;
    char *password = NULL;
    struct reply reply;

    const char *query_token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    char *user = MHD_basic_auth_get_username_password(c, &password);
    bool token_ok = webhook_sf_token_ok(cfg->salesforce_webhook_token, query_token, password);
    if (user)
        MHD_free(user);
    if (password)
        MHD_free(password);
    if (!token_ok) {
        log_warn("salesforce message refused", LOG_I64("request_id", req->id),
                 LOG_STR("reason", "missing or wrong webhook token"));
        count_rejected("salesforce", "bad_token");
        return fail_reply(REPLY_SOAP, ERR_FORBIDDEN, "missing or wrong webhook token");
    }

    enum err rc = webhook_sf_parse(req->body.data ? req->body.data : "", req->body.len,
                                   cfg->salesforce_org_id, util_now_ms(), &msg, &why);
    if (rc != ERR_OK) {
        log_warn("salesforce message refused", LOG_I64("request_id", req->id),
                 LOG_STR("reason", why), LOG_I64("bytes", (long long)req->body.len));
        count_rejected("salesforce", rc == ERR_FORBIDDEN ? "wrong_org" : "malformed");
        reply = fail_reply(REPLY_SOAP, rc, why);
        goto out;
    }
    evs = xcalloc(msg.count, sizeof(*evs));
    for (size_t i = 0; i < msg.count; i++) {
        const struct webhook_sf_notification *n = &msg.notifications[i];
        evs[i] = (struct queue_event_in){"salesforce", n->notification_id, n->object_type,
                                         n->record_id, "outbound_message", n->occurred_at_ms,
                                         n->payload,   QUEUE_PRIORITY_LIVE};
    }
    size_t stored = 0;
    rc = store(req, evs, msg.count, &stored);
    if (rc != ERR_OK) {
        count_rejected("salesforce", "database_unavailable");
        reply = fail_reply(REPLY_SOAP, rc, "database unavailable; retry later");
        goto out;
    }
    count_events("salesforce", msg.count, stored);
    log_info("salesforce message stored", LOG_I64("request_id", req->id),
             LOG_I64("notifications", (long long)msg.count), LOG_I64("stored", (long long)stored),
             LOG_STR("record_id", msg.notifications[0].record_id),
             LOG_STR("object_type", msg.notifications[0].object_type));
    reply = (struct reply){ERR_OK, "text/xml; charset=utf-8", xstrdup(webhook_sf_ack)};
out:
    free(evs);
    free(why);
    webhook_sf_message_clear(&msg);
    return reply;
}

static struct reply handle_hubspot(struct http_request *req, struct MHD_Connection *c)
{
    const struct config *cfg = req->server->cfg;
    struct webhook_hs_batch batch = {0};
    struct queue_event_in *evs = NULL;
    char *why = NULL;
    struct reply reply;
    const char *body = req->body.data ? req->body.data : "";

    struct webhook_hs_verifier ver = {cfg->hubspot_client_secret, cfg->public_base_url,
                                      cfg->hubspot_allow_legacy_signatures,
                                      cfg->hs_max_timestamp_age_ms};
    struct webhook_hs_request hr = {
        "POST",
        req->raw_uri,
        body,
        req->body.len,
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-HubSpot-Signature-v3"),
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-HubSpot-Request-Timestamp"),
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-HubSpot-Signature"),
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-HubSpot-Signature-Version"),
    };
    const char *reason = NULL;
    enum err rc = webhook_hs_verify(&ver, &hr, util_now_ms(), &reason);
    if (rc != ERR_OK) {
        log_warn("hubspot webhook refused", LOG_I64("request_id", req->id),
                 LOG_STR("reason", reason));
        count_rejected("hubspot", "bad_signature");
        return fail_reply(REPLY_JSON, rc, reason);
    }
    rc = webhook_hs_parse(body, req->body.len, util_now_ms(), &batch, &why);
    if (rc != ERR_OK) {
        log_warn("hubspot webhook refused", LOG_I64("request_id", req->id), LOG_STR("reason", why),
                 LOG_I64("bytes", (long long)req->body.len));
        count_rejected("hubspot", "malformed");
        reply = fail_reply(REPLY_JSON, rc, why);
        goto out;
    }
    size_t stored = 0;
    if (batch.count) {
        evs = xcalloc(batch.count, sizeof(*evs));
        for (size_t i = 0; i < batch.count; i++) {
            const struct webhook_hs_event *e = &batch.events[i];
            evs[i] = (struct queue_event_in){"hubspot",    e->dedup_key,       e->object_type,
                                             e->record_id, e->event_type,      e->occurred_at_ms,
                                             e->payload,   QUEUE_PRIORITY_LIVE};
        }
        rc = store(req, evs, batch.count, &stored);
        if (rc != ERR_OK) {
            count_rejected("hubspot", "database_unavailable");
            reply = fail_reply(REPLY_JSON, rc, "database unavailable; retry later");
            goto out;
        }
    }
    count_events("hubspot", batch.count, stored);
    if (batch.ignored)
        metrics_inc("dealsync_webhook_events_ignored_total", "source=\"hubspot\"",
                    (long long)batch.ignored);
    log_info("hubspot webhook stored", LOG_I64("request_id", req->id),
             LOG_I64("events", (long long)batch.received), LOG_I64("stored", (long long)stored),
             LOG_I64("ignored", (long long)batch.ignored));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "received", (double)batch.received);
    cJSON_AddNumberToObject(o, "stored", (double)stored);
    cJSON_AddNumberToObject(o, "duplicates", (double)(batch.count - stored));
    cJSON_AddNumberToObject(o, "ignored", (double)batch.ignored);
    reply = (struct reply){ERR_OK, "application/json", cJSON_PrintUnformatted(o)};
    cJSON_Delete(o);
out:
    free(evs);
    free(why);
    webhook_hs_batch_clear(&batch);
    return reply;
}

static struct reply handle_healthz(struct http_request *req, struct MHD_Connection *c)
{
    (void)req;
    (void)c;
    return (struct reply){ERR_OK, "application/json", xstrdup("{\"status\":\"ok\"}")};
}

static struct reply handle_readyz(struct http_request *req, struct MHD_Connection *c)
{
    (void)c;
    PGconn *db = NULL;
    bool current = false;
    enum err rc = db_pool_acquire(req->server->pool, 1000, &db);
    if (rc == ERR_OK)
        rc = migrate_is_current(db, &current);
    db_pool_release(req->server->pool, db);
    if (rc != ERR_OK)
        return fail_reply(REPLY_JSON, ERR_DB, "database unreachable");
    if (!current)
        return fail_reply(REPLY_JSON, ERR_DB, "migrations pending: run dealsync migrate");
    return (struct reply){ERR_OK, "application/json", xstrdup("{\"status\":\"ready\"}")};
}

static struct reply handle_metrics(struct http_request *req, struct MHD_Connection *c)
{
    (void)c;
    char *text = metrics_render();
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, text);
    free(text);
    PGconn *db = NULL;
    struct queue_depth d;
    bool up =
        db_pool_acquire(req->server->pool, 1000, &db) == ERR_OK && queue_depth(db, &d) == ERR_OK;
    db_pool_release(req->server->pool, db);
    buf_append_str(&b, "# HELP dealsync_queue_events Events in the queue by state.\n"
                       "# TYPE dealsync_queue_events gauge\n");
    if (up)
        buf_printf(&b,
                   "dealsync_queue_events{state=\"pending\"} %lld\n"
                   "dealsync_queue_events{state=\"running\"} %lld\n"
                   "dealsync_queue_events{state=\"done\"} %lld\n"
                   "dealsync_queue_events{state=\"dead\"} %lld\n",
                   d.pending, d.running, d.done, d.dead);
    buf_printf(&b,
               "# HELP dealsync_database_up Whether the database answered this scrape.\n"
               "# TYPE dealsync_database_up gauge\ndealsync_database_up %d\n",
               up ? 1 : 0);
    return (struct reply){ERR_OK, "text/plain; version=0.0.4", buf_steal(&b)};
}

/* /admin and below: the operator's page and its API (admin.c), GET and POST. */
static struct reply handle_admin(struct http_request *req, struct MHD_Connection *c)
{
    char *path = xstrndup(req->raw_uri, strcspn(req->raw_uri, "?"));
    struct admin_request in = {
        .method = req->route->method,
        .path = path,
        .authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
        .csrf_header = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token"),
        .content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"),
        .q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q"),
        .body = req->body.data ? req->body.data : "",
        .body_len = req->body.len,
    };
    struct admin_reply out;
    admin_handle(req->server->cfg, req->server->pool, &in, &out);
    free(path);
    req->location = out.location;
    req->ask_credentials = out.ask_credentials;
    return (struct reply){out.rc, out.content_type, out.body};
}

static const struct route routes[] = {
    {"POST", "/webhooks/salesforce", "webhook_salesforce", REPLY_SOAP, handle_salesforce},
    {"POST", "/webhooks/hubspot", "webhook_hubspot", REPLY_JSON, handle_hubspot},
    {"GET", "/healthz", "healthz", REPLY_JSON, handle_healthz},
    {"GET", "/readyz", "readyz", REPLY_JSON, handle_readyz},
    {"GET", "/metrics", "metrics", REPLY_TEXT, handle_metrics},
    {"GET", "/admin", "admin", REPLY_JSON, handle_admin},
    {"POST", "/admin", "admin", REPLY_JSON, handle_admin},
};

static size_t body_limit(const struct http_server *s, const struct route *r)
{
    if (r->fn == handle_salesforce)
        return (size_t)s->cfg->sf_body_limit_bytes;
    if (r->fn == handle_hubspot)
        return (size_t)s->cfg->hs_body_limit_bytes;
    return 64 * 1024;
}

static enum MHD_Result send_reply(struct http_request *req, struct MHD_Connection *c,
                                  struct reply r)
{
    unsigned status = req->location && r.rc == ERR_OK ? MHD_HTTP_SEE_OTHER : status_for(r.rc);
    size_t len = r.body ? strlen(r.body) : 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, r.body ? r.body : (char *)"", r.body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type);
    char id[32];
    snprintf(id, sizeof(id), "%lld", req->id);
    MHD_add_response_header(resp, "X-Request-Id", id);
    if (req->location)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, req->location);
    if (req->ask_credentials && r.rc == ERR_AUTH)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Basic realm=\"dealsync admin\", charset=\"UTF-8\"");
    enum MHD_Result ok = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    if (ok == MHD_YES) {
        req->status = status;
        req->is_replied = true;
    }
    return ok;
}

/* The webhook paths are configurable (a proxy may mount them elsewhere); the rest are fixed. */
static const char *route_path(const struct http_server *s, const struct route *r)
{
    if (r->fn == handle_salesforce)
        return s->cfg->salesforce_webhook_path;
    if (r->fn == handle_hubspot)
        return s->cfg->hubspot_webhook_path;
    return r->path;
}

static const struct route *find_route(const struct http_server *s, const char *method,
                                      const char *path, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        bool same = routes[i].fn == handle_admin ? admin_path(path)
                                                 : strcmp(route_path(s, &routes[i]), path) == 0;
        if (!same)
            continue;
        *path_known = true;
        if (strcmp(routes[i].method, method) == 0)
            return &routes[i];
    }
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    struct http_request *req = *con_cls;

    if (!req->is_started) {
        req->is_started = true;
        bool path_known;
        req->route = find_route(req->server, method, url, &path_known);
        if (!req->route) {
            enum err rc = path_known ? ERR_UNSUPPORTED : ERR_NOT_FOUND;
            return send_reply(
                req, c,
                fail_reply(REPLY_JSON, rc, path_known ? "method not allowed" : "no such endpoint"));
        }
        size_t limit = body_limit(req->server, req->route);
        buf_init(&req->body, limit);
        /* Refuse a declared oversize body before reading any of it. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        int64_t declared;
        if (cl && util_parse_i64(cl, &declared) && declared > (int64_t)limit) {
            req->is_too_large = true;
            count_rejected(req->route->kind == REPLY_SOAP ? "salesforce" : "hubspot", "too_large");
            return send_reply(req, c,
                              fail_reply(req->route->kind, ERR_TOO_LARGE, "body too large"));
        }
        return MHD_YES;
    }
    if (req->is_replied) {
        /* Early reply already queued: drop whatever else the client sends. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->is_too_large && !buf_append(&req->body, upload_data, *upload_data_size)) {
            req->is_too_large = true;
            buf_clear(&req->body);
            count_rejected(req->route->kind == REPLY_SOAP ? "salesforce" : "hubspot", "too_large");
            /* A chunked body gave no length up front: answer now if MHD lets us, else after
             * the rest was read and dropped (never buffered). */
            *upload_data_size = 0;
            send_reply(req, c, fail_reply(req->route->kind, ERR_TOO_LARGE, "body too large"));
            return MHD_YES;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->is_too_large)
        return send_reply(req, c, fail_reply(req->route->kind, ERR_TOO_LARGE, "body too large"));
    return send_reply(req, c, req->route->fn(req, c));
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)c;
    struct http_server *s = cls;
    struct http_request *req = xcalloc(1, sizeof(*req));
    req->server = s;
    req->id = atomic_fetch_add(&s->next_request_id, 1) + 1;
    req->raw_uri = xstrdup(uri);
    req->started_ms = util_monotonic_ms();
    buf_init(&req->body, 0);
    return req;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct http_request *req = *con_cls;
    if (!req)
        return;
    const char *name = req->route ? req->route->name : "unknown";
    char labels[128];
    snprintf(labels, sizeof(labels), "route=\"%s\",status=\"%u\"", name, req->status);
    metrics_inc("dealsync_http_requests_total", labels, 1);
    snprintf(labels, sizeof(labels), "route=\"%s\"", name);
    metrics_observe("dealsync_http_request_duration_seconds", labels,
                    (double)(util_monotonic_ms() - req->started_ms) / 1000.0);
    buf_clear(&req->body);
    free(req->raw_uri);
    free(req->location);
    free(req);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        text[--n] = '\0';
    log_warn("http server", LOG_STR("detail", text));
}

enum err http_server_start(const struct config *cfg, struct db_pool *pool, struct http_server **out)
{
    struct http_server *s = xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->pool = pool;
    if (cfg->ingest_commit_threads > 0 &&
        ingest_committer_start(cfg->database_url, cfg->ingest_commit_threads,
                               INGEST_GROUP_MAX_EVENTS, &s->committer) != ERR_OK) {
        free(s);
        return ERR_INTERNAL;
    }

    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof(addr));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (strchr(cfg->bind_address, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->port);
        if (inet_pton(AF_INET6, cfg->bind_address, &a6->sin6_addr) != 1) {
            log_error("cannot parse BIND_ADDRESS", LOG_STR("bind_address", cfg->bind_address));
            ingest_committer_stop(s->committer);
            free(s);
            return ERR_CONFIG;
        }
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->port);
        if (inet_pton(AF_INET, cfg->bind_address, &a4->sin_addr) != 1) {
            log_error("cannot parse BIND_ADDRESS", LOG_STR("bind_address", cfg->bind_address));
            ingest_committer_stop(s->committer);
            free(s);
            return ERR_CONFIG;
        }
    }
    s->daemon = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_SOCK_ADDR,
                                 (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE,
                                 (unsigned)cfg->http_threads, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
                                 s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!s->daemon) {
        log_error("cannot start http server", LOG_STR("bind_address", cfg->bind_address),
                  LOG_I64("port", cfg->port));
        ingest_committer_stop(s->committer);
        free(s);
        return ERR_CONFIG;
    }
    log_info("http server listening", LOG_STR("bind_address", cfg->bind_address),
             LOG_I64("port", cfg->port), LOG_I64("threads", cfg->http_threads));
    *out = s;
    return ERR_OK;
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    /* After the daemon: no request is waiting for a commit any more. */
    ingest_committer_stop(s->committer);
    free(s);
}
