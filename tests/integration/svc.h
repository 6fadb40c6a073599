/* svc.h - a real `dealsync serve` process for integration tests, on a fresh migrated database. */
#ifndef SVC_SVC_H
#define SVC_SVC_H

#include <libpq-fe.h>

#include "itest.h"

#define SVC_ORG_ID "00D7F00000107XsUAI"
#define SVC_HS_SECRET "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"

struct svc {
    struct itest_proc *proc;
    char *db_url;
    PGconn *db; /* the test's own connection to the same database */
    int port;
    char base[64]; /* http://127.0.0.1:<port> */
    char *log_path;
};

/* Starts dealsync with the test defaults (org SVC_ORG_ID, HubSpot secret SVC_HS_SECRET,
 * PUBLIC_BASE_URL = its own base, WORKER_THREADS=0 unless extra_env says otherwise) plus
 * extra_env ("NAME=value", NULL-ended, may be NULL); waits for /healthz. */
void svc_start(struct svc *s, const char *name, const char *const *extra_env);
/* Starts dealsync again on the same database and port (after svc_kill). */
void svc_respawn(struct svc *s, const char *const *extra_env);
/* Kills it with SIGKILL (as a crash); the database stays for svc_respawn. */
void svc_kill(struct svc *s);
/* Stops it with SIGTERM and returns its exit status. */
int svc_stop(struct svc *s);

/* Waits (20 s at most, else fails the test) until the webhook inbox is empty: every
 * acknowledged HubSpot body split into sync_event rows. */
void svc_wait_split(struct svc *s);

/* POSTs body to path with headers; returns the status, *resp the body (caller frees). A HubSpot
 * webhook answered 200 is waited for with svc_wait_split, so its events are in sync_event. */
int svc_post(struct svc *s, const char *path, const char *const *headers, const char *body,
             size_t len, char **resp);

/* POSTs a HubSpot webhook body to /webhooks/hubspot signed with v3 for now; waits for the
 * split as svc_post. */
int svc_post_hubspot(struct svc *s, const char *body, char **resp);
/* The same without waiting for the split: the answer alone. */
int svc_ack_hubspot(struct svc *s, const char *body, char **resp);

/* Number of rows in sync_event. */
long long svc_events(struct svc *s);

#endif
