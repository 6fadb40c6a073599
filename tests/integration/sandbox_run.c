/* sandbox_run.c - one dealsync-sandbox per test, and small calls to its control API. */
#include "sandbox_run.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "itest.h"
#include "util.h"

void sandbox_run_start(struct sandbox_run *sb, const char *const *extra_args)
{
    const char *argv[32];
    char port[16], ready[96];
    size_t n = 0;

    sb->port = itest_free_port();
    snprintf(port, sizeof(port), "%d", sb->port);
    snprintf(sb->base_url, sizeof(sb->base_url), "http://127.0.0.1:%d", sb->port);
    snprintf(ready, sizeof(ready), "%s/_sandbox/health", sb->base_url);
    argv[n++] = itest_env("SANDBOX_BIN");
    argv[n++] = "--port";
    argv[n++] = port;
    for (size_t i = 0; extra_args && extra_args[i] && n < 31; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;
    char *log = xasprintf("%s/sandbox-%d.log", itest_env("TEST_TMPDIR"), sb->port);
    sb->proc = itest_spawn(argv, NULL, log, ready);
    ck_assert_msg(sb->proc != NULL, "dealsync-sandbox did not start; see %s", log);
    free(log);
}

void sandbox_run_stop(struct sandbox_run *sb)
{
    itest_proc_stop(sb->proc, SIGTERM, 5000);
    sb->proc = NULL;
}

int sandbox_run_call(struct sandbox_run *sb, const char *method, const char *path, const char *body,
                     cJSON **json)
{
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    char *url = xasprintf("%s%s", sb->base_url, path);
    char *resp = NULL;
    int status = itest_http(method, url, headers, body, body ? strlen(body) : 0, &resp, NULL);
    if (json)
        *json = resp ? cJSON_Parse(resp) : NULL;
    free(resp);
    free(url);
    return status;
}

void sandbox_run_fault(struct sandbox_run *sb, const char *rule_json)
{
    char *body = xasprintf("{\"rules\":[%s]}", rule_json);
    ck_assert_int_eq(sandbox_run_call(sb, "PUT", "/_sandbox/faults", body, NULL), 200);
    free(body);
}

int sandbox_run_count(struct sandbox_run *sb, const char *system, const char *method,
                      const char *path_prefix)
{
    char *path = xasprintf("/_sandbox/requests?system=%s", system);
    cJSON *log = NULL;
    ck_assert_int_eq(sandbox_run_call(sb, "GET", path, NULL, &log), 200);
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(log, "requests"))
    {
        const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(r, "method"));
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(r, "path"));
        if (m && p && strcmp(m, method) == 0 && strncmp(p, path_prefix, strlen(path_prefix)) == 0)
            n++;
    }
    cJSON_Delete(log);
    free(path);
    return n;
}
