/* svc.c - start/stop a dealsync process for integration tests. */
#include "svc.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "webhook_hs.h"

void svc_start(struct svc *s, const char *name, const char *const *extra_env)
{
    memset(s, 0, sizeof(*s));
    s->db_url = itest_db_create(name);
    s->db = itest_db_connect(s->db_url);
    s->port = itest_free_port();
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", s->port);
    s->log_path = xasprintf("%s/%s.log", itest_env("TEST_TMPDIR"), name);
    svc_respawn(s, extra_env);
}

void svc_respawn(struct svc *s, const char *const *extra_env)
{

    char *env[40];
    int n = 0;
    env[n++] = xasprintf("DATABASE_URL=%s", s->db_url);
    env[n++] = xasprintf("PORT=%d", s->port);
    env[n++] = xstrdup("BIND_ADDRESS=127.0.0.1");
    env[n++] = xasprintf("PUBLIC_BASE_URL=%s", s->base);
    env[n++] = xstrdup("SALESFORCE_ORG_ID=" SVC_ORG_ID);
    env[n++] = xstrdup("HUBSPOT_CLIENT_SECRET=" SVC_HS_SECRET);
    env[n++] = xstrdup("WORKER_THREADS=0");
    env[n++] = xstrdup("LOG_LEVEL=debug");
    for (const char *const *e = extra_env; e && *e; e++)
        env[n++] = xstrdup(*e);
    env[n] = NULL;
    const char *argv[] = {itest_env("DEALSYNC_BIN"), "serve", NULL};
    char *ready = xasprintf("%s/healthz", s->base);
    s->proc = itest_spawn(argv, (const char *const *)env, s->log_path, ready);
    ck_assert_msg(s->proc != NULL, "dealsync did not start; see %s", s->log_path);
    free(ready);
    for (int i = 0; i < n; i++)
        free(env[i]);
}

void svc_kill(struct svc *s)
{
    itest_proc_stop(s->proc, SIGKILL, 10000);
    s->proc = NULL;
}

int svc_stop(struct svc *s)
{
    int rc = s->proc ? itest_proc_stop(s->proc, SIGTERM, 10000) : 0;
    PQfinish(s->db);
    free(s->db_url);
    free(s->log_path);
    memset(s, 0, sizeof(*s));
    return rc;
}

static bool inbox_is_empty(void *arg)
{
    struct svc *s = arg;
    /* The test's connection may have been cut (an outage test): reconnect and look again. */
    PGresult *r = PQexec(s->db, "SELECT count(*) FROM ingest_inbox");
    bool is_empty = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "0") == 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        PQreset(s->db);
    PQclear(r);
    return is_empty;
}

void svc_wait_split(struct svc *s)
{
    ck_assert_msg(itest_wait_for(inbox_is_empty, s, 20000),
                  "the webhook inbox was not split within 20 s");
}

int svc_post(struct svc *s, const char *path, const char *const *headers, const char *body,
             size_t len, char **resp)
{
    char *url = xasprintf("%s%s", s->base, path);
    int status = itest_http("POST", url, headers, body, len, resp, NULL);
    free(url);
    /* An acknowledged HubSpot body is in the inbox (whatever HUBSPOT_WEBHOOK_PATH is): its
     * events are in sync_event once split. */
    if (status == 200)
        svc_wait_split(s);
    return status;
}

int svc_post_hubspot(struct svc *s, const char *body, char **resp)
{
    int status = svc_ack_hubspot(s, body, resp);
    if (status == 200)
        svc_wait_split(s);
    return status;
}

int svc_ack_hubspot(struct svc *s, const char *body, char **resp)
{
    char ts[32];
    snprintf(ts, sizeof(ts), "%lld", (long long)util_now_ms());
    char *uri = xasprintf("%s/webhooks/hubspot", s->base);
    char *sig = webhook_hs_sign_v3(SVC_HS_SECRET, "POST", uri, body, strlen(body), ts);
    char *h1 = xasprintf("X-HubSpot-Signature-v3: %s", sig);
    char *h2 = xasprintf("X-HubSpot-Request-Timestamp: %s", ts);
    const char *headers[] = {h1, h2, "Content-Type: application/json", NULL};
    char *url = xasprintf("%s/webhooks/hubspot", s->base);
    int status = itest_http("POST", url, headers, body, strlen(body), resp, NULL);
    free(url);
    free(h2);
    free(h1);
    free(sig);
    free(uri);
    return status;
}

long long svc_events(struct svc *s)
{
    return itest_db_scalar(s->db, "SELECT count(*) FROM sync_event");
}
