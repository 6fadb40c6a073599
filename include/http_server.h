/* http_server.h - the HTTP endpoints: webhooks from both CRMs, health, readiness, metrics. The
 * only place where enum err becomes an HTTP status. */
#ifndef SVC_HTTP_SERVER_H
#define SVC_HTTP_SERVER_H

#include "compiler.h"
#include "config.h"
#include "db.h"
#include "err.h"

struct http_server;

/* Connections held open at once, in all and from one client address; past the limits MHD
 * closes new connections at once. Past 7/8 of HTTP_MAX_CONNECTIONS the webhooks answer 503
 * (their senders retry) so that /healthz, /readyz and /metrics keep the rest. */
#define HTTP_MAX_CONNECTIONS 512
#define HTTP_MAX_CONNECTIONS_PER_CLIENT 64
#define HTTP_WEBHOOK_CONNECTIONS (HTTP_MAX_CONNECTIONS / 8 * 7)

/* Database connections the HTTP server's pool should have (/readyz, /metrics, /admin, and
 * webhooks when INGEST_COMMIT_THREADS is 0): HTTP_THREADS + 1, or HTTP_DB_CONNECTIONS with a
 * thread per connection (HTTP_THREADS 0). */
#define HTTP_DB_CONNECTIONS 17
int http_server_db_connections(const struct config *cfg);

/* Starts the libmicrohttpd daemon on cfg->bind_address:cfg->port: a thread per connection
 * (cfg->http_threads 0, the default: a request waiting for its commit holds up no other
 * connection) or a pool of cfg->http_threads threads, each serving its connections one request
 * at a time. cfg and pool are borrowed and must outlive the server. On ERR_OK *out is the
 * server; stop it with http_server_stop. */
enum err http_server_start(const struct config *cfg, struct db_pool *pool,
                           struct http_server **out) WARN_UNUSED;

/* Stops accepting, waits for in-flight requests, frees. NULL is a no-op. */
void http_server_stop(struct http_server *s);

#endif
