/* http_server.c - libmicrohttpd daemon, route table, bounded body accumulation and replies.
 * Webhook handlers do nothing beyond verify, parse and one INSERT (a HubSpot body to the inbox,
 * Salesforce events to the queue): HubSpot waits at most five seconds, and the splitter and the
 * workers do the rest. */
#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "admin.h"
#include "ingest_commit.h"
#include "ingest_split.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "queue.h"
#include "util.h"
#include "webhook_hs.h"
#include "webhook_sf.h"

/* How long a webhook request may wait for a database connection before answering 503. */
#define DB_WAIT_MS 1000

/* One open connection, known from MHD's connect notification until its close notification.
 * The deadline sweeper reads started_ms and fd under the server's lock. */
struct conn_entry {
    struct conn_entry *prev, *next;
    int fd;
    int64_t started_ms; /* start of the current request (or of the connection) */
    bool is_cut;
};

/* A database outage as the webhook endpoints see it: logged when it starts and when it ends. */
struct outage {
    pthread_mutex_t lock;
    bool is_down;
    int64_t since_ms;
    long long refused;
};

/* Events one group commit may hold (a larger request is a group of its own). */
#define INGEST_GROUP_MAX_EVENTS 2000

struct http_server {
    struct MHD_Daemon *daemon;
    const struct config *cfg;
    struct db_pool *pool;
    /* One group committer per kind of request, each with INGEST_COMMIT_THREADS connections
     * (NULL: each request commits alone): a HubSpot burst makes its groups on its own
     * connection, larger than on two (fewer commits for the same requests: less of the
     * database's CPU per acknowledgement), and a Salesforce group waiting for a queue row lock
     * never holds up a HubSpot acknowledgement. */
    struct ingest_committer *bodies;  /* HubSpot bodies to the inbox */
    struct ingest_committer *events;  /* Salesforce events to the queue */
    struct ingest_splitter *splitter; /* turns the inbox's HubSpot bodies into events */
    atomic_llong next_request_id;
    atomic_int open_connections;
    pthread_mutex_t conn_lock;
    struct conn_entry *conns;
    pthread_t sweeper;
    bool has_sweeper;
    bool is_stopping;
    pthread_cond_t stop_cond;
    struct outage outage;
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
    bool is_answered_early; /* a 413 went out on the socket while the body was still coming */
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

/* The SQL states that say "the database is not available", as opposed to "this data cannot
 * be stored": connection failures (08), operator intervention and timeouts (57), lock not
 * available (55P03), insufficient resources (53), or no state at all (no connection). */
static bool is_unavailable(const char *state)
{
    return !state[0] || strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0 ||
           strncmp(state, "53", 2) == 0 || strcmp(state, "55P03") == 0;
}

static void outage_refused(struct http_server *s, const char *reason)
{
    struct outage *o = &s->outage;
    pthread_mutex_lock(&o->lock);
    o->refused++;
    if (!o->is_down) {
        o->is_down = true;
        o->since_ms = util_now_ms();
        log_error("database unavailable: webhooks get 503 until it is back",
                  LOG_STR("reason", reason));
    }
    pthread_mutex_unlock(&o->lock);
}

static void outage_over(struct http_server *s)
{
    struct outage *o = &s->outage;
    pthread_mutex_lock(&o->lock);
    if (o->is_down) {
        log_info("database available again", LOG_I64("refused_requests", o->refused),
                 LOG_I64("outage_ms", util_now_ms() - o->since_ms));
        o->is_down = false;
        o->refused = 0;
    }
    pthread_mutex_unlock(&o->lock);
}

/* Stores the events on a borrowed connection in one transaction. When the batch fails on its
 * data (not on availability), each event is tried alone: the ones the database refuses are set
 * aside (*set_aside, logged with the reason) and the others stored. */
static enum err store_on_pool(struct http_request *req, const char *source,
                              const struct queue_event_in *evs, size_t n, size_t *stored,
                              size_t *set_aside)
{
    struct http_server *s = req->server;
    PGconn *db = NULL;
    enum err rc = db_pool_acquire(s->pool, DB_WAIT_MS, &db);
    if (rc == ERR_OK)
        rc = queue_push(db, evs, n, stored);
    if (rc == ERR_DB && db && !is_unavailable(db_last_sqlstate())) {
        *stored = 0;
        rc = ERR_OK;
        for (size_t i = 0; i < n && rc == ERR_OK; i++) {
            size_t one = 0;
            rc = queue_push(db, &evs[i], 1, &one);
            if (rc == ERR_DB && !is_unavailable(db_last_sqlstate())) {
                log_warn("webhook event set aside: the database refuses its data",
                         LOG_I64("request_id", req->id), LOG_STR("source", source),
                         LOG_STR("dedup_key", evs[i].dedup_key),
                         LOG_STR("reason", db_last_error()));
                count_rejected(source, "unstorable");
                (*set_aside)++;
                rc = ERR_OK;
            }
            *stored += one;
        }
    }
    db_pool_release(s->pool, db);
    return rc;
}

/* Stores the events durably before the caller acknowledges them: through the group committer
 * (with concurrent requests, one transaction), or alone on a borrowed connection; a request
 * whose data the committer's database refused goes event by event (store_on_pool). A failure
 * to store is a database outage: logged when it starts and when it ends, not per request. */
static enum err store(struct http_request *req, const char *source,
                      const struct queue_event_in *evs, size_t n, size_t *stored, size_t *set_aside)
{
    struct http_server *s = req->server;
    *set_aside = 0;
    bool was_quiet = db_set_quiet(true);
    enum err rc = ERR_DB;
    if (s->events)
        rc = ingest_store(s->events, evs, n, stored);
    if (!s->events || rc == ERR_INVALID)
        rc = store_on_pool(req, source, evs, n, stored, set_aside);
    db_set_quiet(was_quiet);
    if (rc == ERR_OK)
        outage_over(s);
    else if (rc == ERR_DB)
        outage_refused(s, db_last_error()[0] ? db_last_error()
                                             : "the group commit could not store the events");
    return rc;
}

/* Stores one verified HubSpot body in the inbox before the caller acknowledges it: through
 * the group committer, or alone on a borrowed connection. The splitter stores its events
 * later; a failure to store is an outage, as in store(). */
static enum err store_body(struct http_request *req, const struct ingest_body *body, size_t events)
{
    struct http_server *s = req->server;
    bool was_quiet = db_set_quiet(true);
    enum err rc = ERR_DB;
    if (s->bodies) {
        rc = ingest_store_body(s->bodies, body, events);
    } else {
        PGconn *db = NULL;
        char state[6] = "";
        rc = db_pool_acquire(s->pool, DB_WAIT_MS, &db);
        if (rc == ERR_OK)
            rc = ingest_inbox_push(db, body, 1, state);
        if (rc == ERR_DB && db && !is_unavailable(state))
            rc = ERR_INVALID;
        db_pool_release(s->pool, db);
    }
    db_set_quiet(was_quiet);
    if (rc == ERR_OK) {
        outage_over(s);
        ingest_splitter_wake(s->splitter);
    } else if (rc == ERR_DB) {
        outage_refused(s, db_last_error()[0] ? db_last_error()
                                             : "the group commit could not store the body");
    }
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
    size_t stored = 0, set_aside = 0;
    rc = store(req, "salesforce", evs, msg.count, &stored, &set_aside);
    if (rc != ERR_OK) {
        count_rejected("salesforce", "database_unavailable");
        reply = fail_reply(REPLY_SOAP, rc, "database unavailable; retry later");
        goto out;
    }
    count_events("salesforce", msg.count - set_aside, stored);
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
    int64_t received_ms = util_now_ms();
    /* The counts are all the acknowledgement needs: the splitter parses the body again with
     * the same time and takes the events' fields then. */
    rc = webhook_hs_count(body, req->body.len, received_ms, &batch, &why);
    if (rc != ERR_OK) {
        log_warn("hubspot webhook refused", LOG_I64("request_id", req->id), LOG_STR("reason", why),
                 LOG_I64("bytes", (long long)req->body.len));
        count_rejected("hubspot", "malformed");
        reply = fail_reply(REPLY_JSON, rc, why);
        goto out;
    }
    for (size_t i = 0; i < batch.rejected; i++) {
        log_warn("hubspot event set aside", LOG_I64("request_id", req->id),
                 LOG_I64("event_index", batch.rejections[i].index),
                 LOG_STR("reason", batch.rejections[i].reason));
        count_rejected("hubspot", "invalid_event");
    }
    /* The body as verified goes to the inbox whole; the splitter reads it again with the same
     * time and stores the events this parse found (duplicates are dropped there). */
    if (batch.count) {
        struct ingest_body ib = {"hubspot", body, req->body.len, received_ms};
        rc = store_body(req, &ib, batch.count);
        if (rc != ERR_OK) {
            count_rejected("hubspot", rc == ERR_DB ? "database_unavailable" : "unstorable");
            reply = fail_reply(REPLY_JSON, rc,
                               rc == ERR_DB ? "database unavailable; retry later"
                                            : "the database refuses this body");
            goto out;
        }
    }
    metrics_inc("dealsync_webhook_events_received_total", "source=\"hubspot\"",
                (long long)batch.count);
    if (batch.ignored)
        metrics_inc("dealsync_webhook_events_ignored_total", "source=\"hubspot\"",
                    (long long)batch.ignored);
    log_info("hubspot webhook stored", LOG_I64("request_id", req->id),
             LOG_I64("events", (long long)batch.received),
             LOG_I64("stored", (long long)batch.count),
             LOG_I64("ignored", (long long)batch.ignored),
             LOG_I64("rejected", (long long)batch.rejected));
    /* Four counts, printed as integers: cJSON prints every number as a double and reads it
     * back to check it (a float print and a scan per number, on every acknowledgement). */
    reply = (struct reply){ERR_OK, "application/json",
                           xasprintf("{\"received\":%zu,\"stored\":%zu,\"ignored\":%zu,"
                                     "\"rejected\":%zu}",
                                     batch.received, batch.count, batch.ignored, batch.rejected)};
out:
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
    bool was_quiet = db_set_quiet(true);
    enum err rc = db_pool_acquire(req->server->pool, 1000, &db);
    if (rc == ERR_OK)
        rc = migrate_is_current(db, &current);
    /* Can a webhook be stored right now? The lock an INSERT takes on the tables the ack path
     * writes (the inbox for HubSpot, the queue for Salesforce), taken and given back at once: a
     * table lock held elsewhere makes it wait for lock_timeout and fail. */
    bool can_insert = false;
    if (rc == ERR_OK && current) {
        if (db_begin(db) == ERR_OK &&
            db_exec(db, "LOCK TABLE ingest_inbox, sync_event IN ROW EXCLUSIVE MODE") == ERR_OK)
            can_insert = true;
        db_rollback(db);
    }
    db_pool_release(req->server->pool, db);
    db_set_quiet(was_quiet);
    if (rc != ERR_OK)
        return fail_reply(REPLY_JSON, ERR_DB, "database unreachable");
    if (current && !can_insert)
        return fail_reply(REPLY_JSON, ERR_DB,
                          "database stalled: the inbox or queue table is locked");
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
    long long inbox = 0;
    bool up = db_pool_acquire(req->server->pool, 1000, &db) == ERR_OK &&
              queue_depth(db, &d) == ERR_OK && ingest_inbox_pending(db, &inbox) == ERR_OK;
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
    buf_append_str(&b, "# HELP dealsync_inbox_pending Webhook bodies acknowledged and not yet"
                       " split into queue events.\n# TYPE dealsync_inbox_pending gauge\n");
    if (up)
        buf_printf(&b, "dealsync_inbox_pending %lld\n", inbox);
    buf_printf(&b,
               "# HELP dealsync_http_connections_open HTTP connections open now.\n"
               "# TYPE dealsync_http_connections_open gauge\ndealsync_http_connections_open %d\n",
               atomic_load(&req->server->open_connections));
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

static const char *reason_phrase(unsigned status)
{
    switch (status) {
    case MHD_HTTP_CONTENT_TOO_LARGE:
        return "Content Too Large";
    default:
        return "Error";
    }
}

/* Writes a complete response straight to the connection's socket (Connection: close) while
 * MHD is still reading the request body; MHD writes nothing before the body has ended. */
static void answer_early(struct http_request *req, struct MHD_Connection *c, struct reply r)
{
    unsigned status = status_for(r.rc);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    size_t len = r.body ? strlen(r.body) : 0;
    char *head = xasprintf("HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                           "Connection: close\r\nX-Request-Id: %lld\r\n\r\n",
                           status, reason_phrase(status), r.content_type, len, req->id);
    struct buf out;
    buf_init(&out, 0);
    buf_append_str(&out, head);
    buf_append(&out, r.body ? r.body : "", len);
    if (ci) {
        /* The socket is non-blocking and its send buffer empty: a small answer goes at once. */
        ssize_t n = send(ci->connect_fd, out.data, out.len, MSG_NOSIGNAL);
        (void)n;
    }
    buf_clear(&out);
    free(head);
    free(r.body);
    req->status = status;
    req->is_answered_early = true;
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
        /* Near the connection limit, webhooks are refused (their senders retry) so that the
         * health endpoints keep the remaining connections. */
        bool is_webhook = req->route->fn == handle_salesforce || req->route->fn == handle_hubspot;
        if (is_webhook && atomic_load(&req->server->open_connections) > HTTP_WEBHOOK_CONNECTIONS) {
            count_rejected(req->route->kind == REPLY_SOAP ? "salesforce" : "hubspot", "busy");
            return send_reply(req, c,
                              fail_reply(req->route->kind, ERR_RATE_LIMIT,
                                         "too many open connections; retry later"));
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
            /* A chunked body gave no length up front. MHD queues a response only once the body
             * has ended, so the 413 is written to the socket now; the rest of the body is read
             * and dropped (never buffered) until the client stops or the deadline cuts it. */
            answer_early(req, c, fail_reply(req->route->kind, ERR_TOO_LARGE, "body too large"));
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The answer is out already: close the connection rather than answer twice. */
    if (req->is_answered_early)
        return MHD_NO;
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
    /* The next request on this connection gets a deadline of its own. */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context) {
        struct conn_entry *e = ci->socket_context;
        pthread_mutex_lock(&req->server->conn_lock);
        e->started_ms = util_monotonic_ms();
        pthread_mutex_unlock(&req->server->conn_lock);
    }
    free(req);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_entry *e = xcalloc(1, sizeof(*e));
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        e->fd = ci ? ci->connect_fd : -1;
        e->started_ms = util_monotonic_ms();
        pthread_mutex_lock(&s->conn_lock);
        e->next = s->conns;
        if (s->conns)
            s->conns->prev = e;
        s->conns = e;
        pthread_mutex_unlock(&s->conn_lock);
        atomic_fetch_add(&s->open_connections, 1);
        *socket_context = e;
        return;
    }
    struct conn_entry *e = *socket_context;
    if (!e)
        return;
    /* Unlinked before MHD closes the socket: the sweeper never touches a closed fd. */
    pthread_mutex_lock(&s->conn_lock);
    if (e->prev)
        e->prev->next = e->next;
    else
        s->conns = e->next;
    if (e->next)
        e->next->prev = e->prev;
    pthread_mutex_unlock(&s->conn_lock);
    atomic_fetch_sub(&s->open_connections, 1);
    free(e);
    *socket_context = NULL;
}

/* MHD's own timeout only fires on a connection that sends nothing; one header byte every few
 * seconds would hold a connection forever. Every connection whose request is older than the
 * deadline is shut down here (MHD then sees the end of the stream and closes it). */
static void *sweep_connections(void *arg)
{
    struct http_server *s = arg;
    int64_t deadline = s->cfg->http_request_timeout_ms;
    pthread_mutex_lock(&s->conn_lock);
    while (!s->is_stopping) {
        struct timespec ts = util_deadline_ms(200);
        pthread_cond_timedwait(&s->stop_cond, &s->conn_lock, &ts);
        int64_t now = util_monotonic_ms();
        long long cut = 0;
        for (struct conn_entry *e = s->conns; e; e = e->next) {
            if (e->is_cut || e->fd < 0 || now - e->started_ms <= deadline)
                continue;
            shutdown(e->fd, SHUT_RDWR);
            e->is_cut = true;
            cut++;
        }
        if (cut)
            metrics_inc("dealsync_http_connections_timed_out_total", "", cut);
    }
    pthread_mutex_unlock(&s->conn_lock);
    return NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        text[--n] = '\0';
    log_warn("http server", LOG_STR("detail", text));
}

/* Stops both committers (NULL ones are a no-op). */
static void stop_committers(struct http_server *s)
{
    ingest_committer_stop(s->bodies);
    ingest_committer_stop(s->events);
    s->bodies = s->events = NULL;
}

static void server_free(struct http_server *s)
{
    pthread_mutex_destroy(&s->conn_lock);
    pthread_cond_destroy(&s->stop_cond);
    pthread_mutex_destroy(&s->outage.lock);
    free(s);
}

enum err http_server_start(const struct config *cfg, struct db_pool *pool, struct http_server **out)
{
    struct http_server *s = xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->pool = pool;
    pthread_mutex_init(&s->conn_lock, NULL);
    pthread_cond_init(&s->stop_cond, NULL);
    pthread_mutex_init(&s->outage.lock, NULL);
    if (ingest_splitter_start(cfg->database_url, cfg->ingest_split_burst_hold_ms, &s->splitter) !=
        ERR_OK) {
        server_free(s);
        return ERR_INTERNAL;
    }
    if (cfg->ingest_commit_threads > 0 &&
        (ingest_committer_start(cfg->database_url, cfg->ingest_commit_threads,
                                INGEST_GROUP_MAX_EVENTS, ingest_inbox_prepare,
                                &s->bodies) != ERR_OK ||
         ingest_committer_start(cfg->database_url, cfg->ingest_commit_threads,
                                INGEST_GROUP_MAX_EVENTS, ingest_queue_prepare,
                                &s->events) != ERR_OK)) {
        stop_committers(s);
        ingest_splitter_stop(s->splitter);
        server_free(s);
        return ERR_INTERNAL;
    }

    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof(addr));
    /* epoll: no FD_SETSIZE ceiling; the limits below decide how many connections there are. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (strchr(cfg->bind_address, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->port);
        if (inet_pton(AF_INET6, cfg->bind_address, &a6->sin6_addr) != 1) {
            log_error("cannot parse BIND_ADDRESS", LOG_STR("bind_address", cfg->bind_address));
            stop_committers(s);
            ingest_splitter_stop(s->splitter);
            server_free(s);
            return ERR_CONFIG;
        }
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->port);
        if (inet_pton(AF_INET, cfg->bind_address, &a4->sin_addr) != 1) {
            log_error("cannot parse BIND_ADDRESS", LOG_STR("bind_address", cfg->bind_address));
            stop_committers(s);
            ingest_splitter_stop(s->splitter);
            server_free(s);
            return ERR_CONFIG;
        }
    }
    /* A thread per connection by default: a webhook request blocks its thread until its
     * commit, and in a pool every other connection of that thread (another webhook, /healthz)
     * would wait behind it. */
    bool per_connection = cfg->http_threads == 0;
    if (per_connection)
        flags = (flags & ~(unsigned)MHD_USE_EPOLL) | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    /* The pool's size is given only for a pool (MHD warns about a size of 0). */
    struct MHD_OptionItem pool_opts[] = {
        {per_connection ? MHD_OPTION_END : MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)cfg->http_threads,
         NULL},
        {MHD_OPTION_END, 0, NULL}};
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_ARRAY, pool_opts,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)HTTP_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)HTTP_MAX_CONNECTIONS_PER_CLIENT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)((cfg->http_request_timeout_ms + 999) / 1000), MHD_OPTION_END);
    if (!s->daemon) {
        log_error("cannot start http server", LOG_STR("bind_address", cfg->bind_address),
                  LOG_I64("port", cfg->port));
        stop_committers(s);
        ingest_splitter_stop(s->splitter);
        server_free(s);
        return ERR_CONFIG;
    }
    if (pthread_create(&s->sweeper, NULL, sweep_connections, s) != 0) {
        log_error("cannot start the connection deadline thread");
        MHD_stop_daemon(s->daemon);
        stop_committers(s);
        ingest_splitter_stop(s->splitter);
        server_free(s);
        return ERR_INTERNAL;
    }
    s->has_sweeper = true;
    if (!cfg->salesforce_webhook_token)
        log_warn("SALESFORCE_WEBHOOK_TOKEN is not set: anyone who knows the org id can queue "
                 "Salesforce work through the webhook; dealsync register generates one");
    log_info("http server listening", LOG_STR("bind_address", cfg->bind_address),
             LOG_I64("port", cfg->port),
             LOG_STR("threads", per_connection ? "one per connection" : "pool"),
             LOG_I64("pool_threads", cfg->http_threads),
             LOG_I64("max_connections", HTTP_MAX_CONNECTIONS),
             LOG_I64("max_connections_per_client", HTTP_MAX_CONNECTIONS_PER_CLIENT),
             LOG_I64("request_timeout_ms", cfg->http_request_timeout_ms));
    *out = s;
    return ERR_OK;
}

int http_server_db_connections(const struct config *cfg)
{
    return cfg->http_threads > 0 ? cfg->http_threads + 1 : HTTP_DB_CONNECTIONS;
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    if (s->has_sweeper) {
        pthread_mutex_lock(&s->conn_lock);
        s->is_stopping = true;
        pthread_cond_signal(&s->stop_cond);
        pthread_mutex_unlock(&s->conn_lock);
        pthread_join(s->sweeper, NULL);
    }
    MHD_stop_daemon(s->daemon);
    stop_committers(s);
    ingest_splitter_stop(s->splitter);
    server_free(s);
}
