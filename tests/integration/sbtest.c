/* sbtest.c - start/stop the sandbox for its integration tests, JSON calls, webhook listener. */
#include "sbtest.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <microhttpd.h>

#include "itest.h"
#include "util.h"

void sbtest_start(struct sbtest *sb, const char *const *extra_args)
{
    const char *argv[32];
    int n = 0;
    int port = itest_free_port();
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    argv[n++] = itest_env("SANDBOX_BIN");
    argv[n++] = "--port";
    argv[n++] = port_text;
    for (size_t i = 0; extra_args && extra_args[i] && n < 31; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;
    sb->base = xasprintf("http://127.0.0.1:%d", port);
    char *ready = xasprintf("%s/_sandbox/health", sb->base);
    char *log = xasprintf("%s/sandbox-%d.log", itest_env("TEST_TMPDIR"), port);
    sb->proc = itest_spawn(argv, NULL, log, ready);
    free(log);
    free(ready);
    ck_assert_msg(sb->proc != NULL, "sandbox did not start");
}

void sbtest_stop(struct sbtest *sb)
{
    if (sb->proc)
        ck_assert_int_eq(itest_proc_stop(sb->proc, 15, 5000), 0);
    sb->proc = NULL;
    free(sb->base);
    sb->base = NULL;
}

int sbtest_call(const struct sbtest *sb, const char *method, const char *path,
                const char *const *headers, const char *body, cJSON **json, char **raw_headers)
{
    char *url = xasprintf("%s%s", sb->base, path);
    char *resp = NULL;
    int status =
        itest_http(method, url, headers, body, body ? strlen(body) : 0, &resp, raw_headers);
    if (json)
        *json = resp ? cJSON_Parse(resp) : NULL;
    free(resp);
    free(url);
    return status;
}

int sbtest_hs(const struct sbtest *sb, const char *method, const char *path, const char *body,
              cJSON **json)
{
    const char *headers[] = {"Authorization: Bearer sandbox-hubspot-token",
                             "Content-Type: application/json", NULL};
    return sbtest_call(sb, method, path, headers, body, json, NULL);
}

const char *sbtest_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* ---- listener ---- */

struct sbtest_listener {
    struct MHD_Daemon *daemon;
    int port;
    int fail_first;
    pthread_mutex_t mu;
    struct sbtest_hook *hooks;
    int count;
};

struct upload {
    struct buf body;
    bool is_started;
};

static char *header_copy(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return xstrdup(v ? v : "");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    (void)version;
    (void)method;
    struct sbtest_listener *l = cls;
    struct upload *u = *con_cls;
    if (!u) {
        u = xcalloc(1, sizeof *u);
        buf_init(&u->body, 0);
        *con_cls = u;
        return MHD_YES;
    }
    if (*data_size) {
        (void)buf_append(&u->body, data, *data_size);
        *data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&l->mu);
    int status = l->count < l->fail_first ? 500 : 200;
    l->hooks = xrealloc(l->hooks, (size_t)(l->count + 1) * sizeof *l->hooks);
    struct sbtest_hook *h = &l->hooks[l->count++];
    h->path = xstrdup(url);
    h->body = buf_steal(&u->body);
    h->signature_v3 = header_copy(c, "X-HubSpot-Signature-v3");
    h->timestamp = header_copy(c, "X-HubSpot-Request-Timestamp");
    h->signature_v1 = header_copy(c, "X-HubSpot-Signature");
    h->signature_version = header_copy(c, "X-HubSpot-Signature-Version");
    h->answered = status;
    pthread_mutex_unlock(&l->mu);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct upload *u = *con_cls;
    if (u) {
        buf_clear(&u->body);
        free(u);
    }
    *con_cls = NULL;
}

struct sbtest_listener *sbtest_listener_start(int fail_first)
{
    struct sbtest_listener *l = xcalloc(1, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    l->fail_first = fail_first;
    /* A free port can be taken by another process before the bind: another one is tried. */
    for (int tries = 0; tries < 20 && !l->daemon; tries++) {
        l->port = itest_free_port();
        l->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC,
                                     (uint16_t)l->port, NULL, NULL, on_request, l,
                                     MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
    }
    ck_assert_msg(l->daemon != NULL, "listener did not start");
    return l;
}

int sbtest_listener_port(const struct sbtest_listener *l)
{
    return l->port;
}

int sbtest_listener_count(struct sbtest_listener *l)
{
    pthread_mutex_lock(&l->mu);
    int n = l->count;
    pthread_mutex_unlock(&l->mu);
    return n;
}

void sbtest_listener_get(struct sbtest_listener *l, int i, struct sbtest_hook *out)
{
    pthread_mutex_lock(&l->mu);
    ck_assert_int_lt(i, l->count);
    const struct sbtest_hook *h = &l->hooks[i];
    out->path = xstrdup(h->path);
    out->body = xstrdup(h->body);
    out->signature_v3 = xstrdup(h->signature_v3);
    out->timestamp = xstrdup(h->timestamp);
    out->signature_v1 = xstrdup(h->signature_v1);
    out->signature_version = xstrdup(h->signature_version);
    out->answered = h->answered;
    pthread_mutex_unlock(&l->mu);
}

void sbtest_hook_clear(struct sbtest_hook *h)
{
    free(h->path);
    free(h->body);
    free(h->signature_v3);
    free(h->timestamp);
    free(h->signature_v1);
    free(h->signature_version);
    memset(h, 0, sizeof *h);
}

void sbtest_listener_stop(struct sbtest_listener *l)
{
    if (!l)
        return;
    MHD_stop_daemon(l->daemon);
    for (int i = 0; i < l->count; i++)
        sbtest_hook_clear(&l->hooks[i]);
    free(l->hooks);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
