/* sbtest.h - helpers for the sandbox's own integration tests: start dealsync-sandbox on a free
 * port, call it with JSON, and a small webhook listener that records what it receives.
 * Test-only; the listener is thread-safe, the rest is not. */
#ifndef SVC_SBTEST_H
#define SVC_SBTEST_H

#include <stdbool.h>

#include <cjson/cJSON.h>

struct sbtest {
    struct itest_proc *proc;
    char *base; /* "http://127.0.0.1:<port>" */
};

/* Starts the sandbox (SANDBOX_BIN) with extra arguments (NULL-ended, may be NULL); fails the
 * test when it does not answer /_sandbox/health. */
void sbtest_start(struct sbtest *sb, const char *const *extra_args);
void sbtest_stop(struct sbtest *sb);

/* One request to base + path. body may be NULL. Returns the status; *json (may be NULL)
 * receives the parsed body or NULL (caller deletes); *headers (may be NULL) the raw header
 * block (caller frees). */
int sbtest_call(const struct sbtest *sb, const char *method, const char *path,
                const char *const *headers, const char *body, cJSON **json, char **raw_headers);
/* The same with the HubSpot private-app token. */
int sbtest_hs(const struct sbtest *sb, const char *method, const char *path, const char *body,
              cJSON **json);

/* String field of an object, or "" (never NULL). */
const char *sbtest_str(const cJSON *o, const char *name);

/* A webhook listener on 127.0.0.1: records every POST, answers 500 to the first fail_first
 * ones and 200 after that. */
struct sbtest_listener;
struct sbtest_hook {
    char *path;
    char *body;
    char *signature_v3;
    char *timestamp;
    char *signature_v1;
    char *signature_version;
    int answered;
};
struct sbtest_listener *sbtest_listener_start(int fail_first);
int sbtest_listener_port(const struct sbtest_listener *l);
/* Number of requests received so far. */
int sbtest_listener_count(struct sbtest_listener *l);
/* Copy of request i (0-based); caller frees with sbtest_hook_clear. */
void sbtest_listener_get(struct sbtest_listener *l, int i, struct sbtest_hook *out);
void sbtest_hook_clear(struct sbtest_hook *h);
void sbtest_listener_stop(struct sbtest_listener *l);

#endif
