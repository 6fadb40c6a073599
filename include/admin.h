/* admin.h - the operator's status page (GET /admin) and its JSON API (/admin/api/...), behind
 * ADMIN_TOKEN. Independent of the HTTP library: http_server.c passes the request's parts in and
 * maps the reply's rc to the HTTP status. */
#ifndef SVC_ADMIN_H
#define SVC_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "db.h"
#include "err.h"

struct admin_request {
    const char *method;        /* "GET" or "POST" */
    const char *path;          /* "/admin" or below it */
    const char *authorization; /* the Authorization header, or NULL */
    const char *csrf_header;   /* X-CSRF-Token, or NULL */
    const char *content_type;  /* of the body, or NULL */
    const char *q;             /* the query argument q, or NULL */
    const char *body;          /* NUL-terminated */
    size_t body_len;
};

struct admin_reply {
    enum err rc; /* ERR_NOT_FOUND: the page is off (no ADMIN_TOKEN) or no such path;
                  * ERR_AUTH: no or wrong credentials; ERR_FORBIDDEN: bad CSRF token */
    const char *content_type;
    char *body;           /* owned */
    char *location;       /* owned; set: answer 303 See Other to it */
    bool ask_credentials; /* with ERR_AUTH: send WWW-Authenticate: Basic */
};

/* True when path is /admin or below it. */
bool admin_path(const char *path);

/* Answers one request. Credentials: HTTP Basic with ADMIN_TOKEN as the password (any user
 * name), or Authorization: Bearer ADMIN_TOKEN; compared in constant time. POSTs also need the
 * CSRF token (form field csrf, or the X-CSRF-Token header), which the page and
 * /admin/api/status carry. */
void admin_handle(const struct config *cfg, struct db_pool *pool, const struct admin_request *req,
                  struct admin_reply *out);
void admin_reply_clear(struct admin_reply *r);

#endif
