/* sandbox_checks.c - fault rules and request-log counts for the client integration tests. */
#include "sandbox_checks.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "util.h"

void sandbox_fault(const struct sbtest *sb, const char *rule_json)
{
    char *body = xasprintf("{\"rules\":[%s]}", rule_json);
    ck_assert_int_eq(sbtest_call(sb, "PUT", "/_sandbox/faults", NULL, body, NULL, NULL), 200);
    free(body);
}

int sandbox_count(const struct sbtest *sb, const char *system, const char *method,
                  const char *path_prefix)
{
    char *path = xasprintf("/_sandbox/requests?system=%s", system);
    cJSON *log = NULL;
    ck_assert_int_eq(sbtest_call(sb, "GET", path, NULL, NULL, &log, NULL), 200);
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
