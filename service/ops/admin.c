/* admin.c - see admin.h: credentials, the CSRF token, the routes under /admin and their JSON.
 * The HTML is rendered by admin_page.c. */
#include "admin.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "admin_page.h"
#include "hmac.h"
#include "http_client.h"
#include "log.h"
#include "ops_status.h"
#include "util.h"

#define DEAD_LETTER_LIMIT 200

bool admin_path(const char *path)
{
    return strncmp(path, "/admin", 6) == 0 && (path[6] == '\0' || path[6] == '/');
}

void admin_reply_clear(struct admin_reply *r)
{
    free(r->body);
    free(r->location);
    memset(r, 0, sizeof(*r));
}

/* Equal in time independent of the contents and of where they differ: both sides are hashed
 * first, so even the lengths do not show. */
static bool secret_equal(const char *given, const char *secret)
{
    unsigned char a[HMAC_SHA256_LEN], b[HMAC_SHA256_LEN];
    hmac_sha256_digest(given, strlen(given), a);
    hmac_sha256_digest(secret, strlen(secret), b);
    char *ha = hmac_hex(a, sizeof(a)), *hb = hmac_hex(b, sizeof(b));
    bool eq = hmac_equal(ha, hb);
    free(ha);
    free(hb);
    return eq;
}

static bool authorized(const char *token, const char *header)
{
    if (!header)
        return false;
    if (strncasecmp(header, "Bearer ", 7) == 0)
        return secret_equal(header + 7, token);
    if (strncasecmp(header, "Basic ", 6) != 0)
        return false;
    unsigned char *raw = NULL;
    size_t len = 0;
    if (!hmac_base64_decode(header + 6, &raw, &len))
        return false;
    char *text = xstrndup((const char *)raw, len);
    free(raw);
    char *colon = strchr(text, ':');
    bool ok = colon && secret_equal(colon + 1, token);
    free(text);
    return ok;
}

/* The CSRF token: derived from ADMIN_TOKEN, so every replica agrees without shared state, and
 * useless to whoever cannot read the page. */
static char *csrf_token(const char *token)
{
    static const char purpose[] = "dealsync admin csrf v1";
    unsigned char mac[HMAC_SHA256_LEN];
    hmac_sha256(token, strlen(token), purpose, sizeof(purpose) - 1, mac);
    return hmac_hex(mac, sizeof(mac));
}

/* Decodes application/x-www-form-urlencoded text in place. */
static void form_unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '+') {
            *w++ = ' ';
        } else if (*r == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
            char hex[3] = {r[1], r[2], 0};
            *w++ = (char)strtol(hex, NULL, 16);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* A form's fields as a JSON object of strings (the last of repeated names wins). */
static cJSON *form_parse(const char *body)
{
    cJSON *form = cJSON_CreateObject();
    char *copy = xstrdup(body ? body : "");
    char *save = NULL;
    for (char *pair = strtok_r(copy, "&", &save); pair; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        const char *value = "";
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        char *name = xstrdup(pair), *v = xstrdup(value);
        form_unescape(name);
        form_unescape(v);
        cJSON_DeleteItemFromObjectCaseSensitive(form, name);
        cJSON_AddStringToObject(form, name, v);
        free(name);
        free(v);
    }
    free(copy);
    return form;
}

static const char *field(const cJSON *o, const char *name)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    return v && *v ? v : NULL;
}

static void reply_json(struct admin_reply *out, enum err rc, cJSON *body)
{
    out->rc = rc;
    out->content_type = "application/json";
    out->body = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
}

static void reply_error(struct admin_reply *out, enum err rc, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", message);
    reply_json(out, rc, o);
}

/* The page: status, dead letters and, with q, the records found. */
static enum err render_page(PGconn *db, const char *q, const char *csrf, struct admin_reply *out)
{
    cJSON *status = NULL, *dead = NULL, *records = NULL;
    enum err rc = ops_status(db, &status);
    if (rc == ERR_OK)
        rc = ops_dead_letters(db, DEAD_LETTER_LIMIT, &dead);
    if (rc == ERR_OK && q)
        rc = ops_records(db, q, &records);
    if (rc == ERR_OK) {
        out->rc = ERR_OK;
        out->content_type = "text/html; charset=utf-8";
        out->body = admin_page_render(status, dead, records, q, csrf);
    }
    cJSON_Delete(status);
    cJSON_Delete(dead);
    cJSON_Delete(records);
    return rc;
}

/* Retry: {"ids": [..]} or {"type": ".."}; the form sends id or type. */
static enum err do_retry(PGconn *db, const cJSON *in, long long *moved)
{
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(in, "ids");
    const char *one = field(in, "id");
    size_t n = 0;
    int64_t *list = xcalloc((size_t)cJSON_GetArraySize(ids) + 1, sizeof(int64_t));
    const cJSON *id;
    cJSON_ArrayForEach(id, ids)
    {
        if (!cJSON_IsNumber(id) || id->valuedouble < 1) {
            free(list);
            return ERR_INVALID;
        }
        list[n++] = (int64_t)id->valuedouble;
    }
    if (one && (!util_parse_i64(one, &list[n]) || list[n] < 1)) {
        free(list);
        return ERR_INVALID;
    }
    if (one)
        n++;
    const char *type = field(in, "type");
    enum err rc = n == 0 && !type ? ERR_INVALID : ops_retry(db, list, n, type, moved);
    free(list);
    return rc;
}

static enum err do_resync(PGconn *db, const cJSON *in, size_t *queued)
{
    const char *sf = field(in, "salesforce_id"), *hs = field(in, "hubspot_id");
    if (!sf && !hs)
        return ERR_INVALID;
    return ops_resync(db, sf, hs, queued);
}

static void handle_post(PGconn *db, const struct admin_request *req, const char *csrf,
                        struct admin_reply *out)
{
    bool is_api = strncmp(req->path, "/admin/api/", 11) == 0;
    const char *action = req->path + (is_api ? 11 : 7);
    cJSON *in = is_api ? cJSON_ParseWithLength(req->body ? req->body : "", req->body_len)
                       : form_parse(req->body);
    const char *given = is_api ? req->csrf_header : field(in, "csrf");
    if (!given && req->csrf_header)
        given = req->csrf_header;
    enum err rc = ERR_OK;
    if (strcmp(action, "retry") != 0 && strcmp(action, "resync") != 0) {
        reply_error(out, ERR_NOT_FOUND, "no such action");
        goto out;
    }
    if (!given || !secret_equal(given, csrf)) {
        reply_error(out, ERR_FORBIDDEN, "missing or wrong CSRF token");
        goto out;
    }
    if (!cJSON_IsObject(in)) {
        reply_error(out, ERR_INVALID, "body must be a JSON object");
        goto out;
    }
    long long moved = 0;
    size_t queued = 0;
    bool is_retry = strcmp(action, "retry") == 0;
    rc = is_retry ? do_retry(db, in, &moved) : do_resync(db, in, &queued);
    if (rc != ERR_OK) {
        reply_error(out, rc,
                    rc == ERR_INVALID
                        ? (is_retry ? "give ids, id or type" : "give salesforce_id or hubspot_id")
                        : err_str(rc));
        goto out;
    }
    log_info(is_retry ? "dead letters requeued from admin" : "resync queued from admin",
             LOG_I64("events", is_retry ? moved : (long long)queued));
    if (is_api) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, is_retry ? "requeued" : "queued",
                                is_retry ? (double)moved : (double)queued);
        reply_json(out, ERR_OK, o);
    } else {
        /* Post/redirect/get: back to the page (to the record after a resync). */
        const char *q = field(in, "q");
        char *enc = q ? http_url_encode(q) : NULL;
        out->rc = ERR_OK;
        out->content_type = "text/plain; charset=utf-8";
        out->body = xstrdup("see other\n");
        out->location = enc ? xasprintf("/admin?q=%s", enc) : xstrdup("/admin");
        free(enc);
    }
out:
    cJSON_Delete(in);
}

static void handle_get(PGconn *db, const struct admin_request *req, const char *csrf,
                       struct admin_reply *out)
{
    enum err rc = ERR_OK;
    cJSON *data = NULL;
    if (strcmp(req->path, "/admin") == 0 || strcmp(req->path, "/admin/") == 0) {
        rc = render_page(db, req->q && *req->q ? req->q : NULL, csrf, out);
    } else if (strcmp(req->path, "/admin/api/status") == 0) {
        rc = ops_status(db, &data);
        if (rc == ERR_OK) {
            cJSON_AddStringToObject(data, "csrf_token", csrf);
            reply_json(out, ERR_OK, data);
        }
    } else if (strcmp(req->path, "/admin/api/dead-letters") == 0) {
        rc = ops_dead_letters(db, DEAD_LETTER_LIMIT, &data);
        if (rc == ERR_OK) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "dead_letters", data);
            reply_json(out, ERR_OK, o);
        }
    } else if (strcmp(req->path, "/admin/api/records") == 0) {
        if (!req->q || !*req->q) {
            reply_error(out, ERR_INVALID, "give q: a Salesforce id, a HubSpot id or a name");
            return;
        }
        rc = ops_records(db, req->q, &data);
        if (rc == ERR_OK) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "q", req->q);
            cJSON_AddItemToObject(o, "records", data);
            reply_json(out, ERR_OK, o);
        }
    } else {
        reply_error(out, ERR_NOT_FOUND, "no such page");
        return;
    }
    if (rc != ERR_OK)
        reply_error(out, rc, err_str(rc));
}

void admin_handle(const struct config *cfg, struct db_pool *pool, const struct admin_request *req,
                  struct admin_reply *out)
{
    memset(out, 0, sizeof(*out));
    if (!cfg->admin_token) {
        reply_error(out, ERR_NOT_FOUND, "the admin page is off: set ADMIN_TOKEN to turn it on");
        return;
    }
    if (!authorized(cfg->admin_token, req->authorization)) {
        reply_error(out, ERR_AUTH,
                    "credentials required: ADMIN_TOKEN as the Basic password or "
                    "the bearer token");
        out->ask_credentials = true;
        return;
    }
    bool is_post = strcmp(req->method, "POST") == 0;
    if (!is_post && strcmp(req->method, "GET") != 0) {
        reply_error(out, ERR_UNSUPPORTED, "use GET or POST");
        return;
    }
    PGconn *db = NULL;
    if (db_pool_acquire(pool, 2000, &db) != ERR_OK) {
        reply_error(out, ERR_DB, "database unreachable");
        return;
    }
    char *csrf = csrf_token(cfg->admin_token);
    if (is_post)
        handle_post(db, req, csrf, out);
    else
        handle_get(db, req, csrf, out);
    free(csrf);
    db_pool_release(pool, db);
}
