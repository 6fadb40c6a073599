/* sandbox_run.h - starts dealsync-sandbox (SANDBOX_BIN) on a free port for one test and talks to
 * its control API. Test-only; not thread-safe. */
#ifndef SVC_SANDBOX_RUN_H
#define SVC_SANDBOX_RUN_H

#include <cjson/cJSON.h>

struct sandbox_run {
    struct itest_proc *proc;
    int port;
    char base_url[64]; /* "http://127.0.0.1:<port>", serves both Salesforce and HubSpot */
};

/* Starts the sandbox with extra command-line arguments (NULL-ended, may be NULL) and waits for
 * /_sandbox/health; fails the test when it does not come up. */
void sandbox_run_start(struct sandbox_run *sb, const char *const *extra_args);
/* Stops it (SIGTERM, then SIGKILL). */
void sandbox_run_stop(struct sandbox_run *sb);

/* One request to base_url + path (control or emulated API) with a JSON body (may be NULL).
 * Returns the HTTP status; *json (may be NULL) receives the parsed answer or NULL. */
int sandbox_run_call(struct sandbox_run *sb, const char *method, const char *path, const char *body,
                     cJSON **json);

/* How many requests the sandbox logged for system ("salesforce", "hubspot") with this method
 * and a path starting with path_prefix. */
int sandbox_run_count(struct sandbox_run *sb, const char *system, const char *method,
                      const char *path_prefix);

/* PUT /_sandbox/faults with {"rules":[rule]}; fails the test unless accepted. */
void sandbox_run_fault(struct sandbox_run *sb, const char *rule_json);

#endif
