/* regtest.c - dealsync pointed at the sandbox, `dealsync register`, sandbox state reads. */
#include "regtest.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "util.h"

char **regtest_env(const struct sbtest *sb, const char *public_base, const char *const *extra)
{
    size_t n_extra = 0;
    while (extra && extra[n_extra])
        n_extra++;
    char **env = xcalloc(16 + n_extra, sizeof(*env));
    size_t n = 0;
    env[n++] = xstrdup("DATABASE_URL=postgresql://unused.invalid/none");
    env[n++] = xasprintf("PUBLIC_BASE_URL=%s", public_base);
    env[n++] = xasprintf("SALESFORCE_LOGIN_URL=%s", sb->base);
    env[n++] = xstrdup("SALESFORCE_CLIENT_ID=sandbox-client-id");
    env[n++] = xstrdup("SALESFORCE_CLIENT_SECRET=sandbox-client-secret");
    env[n++] = xstrdup("SALESFORCE_REFRESH_TOKEN=sandbox-refresh-token");
    env[n++] = xasprintf("HUBSPOT_API_BASE_URL=%s", sb->base);
    env[n++] = xstrdup("HUBSPOT_ACCESS_TOKEN=sandbox-hubspot-token");
    env[n++] = xstrdup("HUBSPOT_DEVELOPER_API_KEY=" REGTEST_HS_DEV_KEY);
    env[n++] = xstrdup("HUBSPOT_APP_ID=" REGTEST_HS_APP_ID);
    env[n++] = xstrdup("LOG_LEVEL=debug");
    for (size_t i = 0; i < n_extra; i++)
        env[n++] = xstrdup(extra[i]);
    env[n] = NULL;
    return env;
}

void regtest_env_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

int regtest_register(const char *const *env, const char *target, const char *log_name)
{
    const char *argv[] = {itest_env("DEALSYNC_BIN"), "register", target, NULL};
    char *log = xasprintf("%s/%s.log", itest_env("TEST_TMPDIR"), log_name);
    struct itest_proc *p = itest_spawn(argv, env, log, NULL);
    free(log);
    ck_assert_ptr_nonnull(p);
    return itest_proc_stop(p, 0, 30000);
}

cJSON *regtest_outbound_messages(const struct sbtest *sb)
{
    cJSON *all = NULL;
    ck_assert_int_eq(sbtest_call(sb, "GET", "/_sandbox/salesforce/records/WorkflowOutboundMessage",
                                 NULL, NULL, &all, NULL),
                     200);
    ck_assert(cJSON_IsArray(all));
    cJSON *live = cJSON_CreateArray();
    const cJSON *r;
    cJSON_ArrayForEach(r, all)
    {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "IsDeleted")))
            cJSON_AddItemToArray(live, cJSON_Duplicate(r, true));
    }
    cJSON_Delete(all);
    return live;
}

cJSON *regtest_subscriptions(const struct sbtest *sb)
{
    cJSON *json = NULL;
    ck_assert_int_eq(sbtest_call(sb, "GET",
                                 "/webhooks/v3/" REGTEST_HS_APP_ID
                                 "/subscriptions?hapikey=" REGTEST_HS_DEV_KEY,
                                 NULL, NULL, &json, NULL),
                     200);
    cJSON *results = cJSON_DetachItemFromObjectCaseSensitive(json, "results");
    cJSON_Delete(json);
    ck_assert(cJSON_IsArray(results));
    return results;
}

const cJSON *regtest_find_subscription(const cJSON *subs, const char *event_type,
                                       const char *property)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, subs)
    {
        const char *name = sbtest_str(s, "propertyName");
        if (strcmp(sbtest_str(s, "eventType"), event_type) == 0 &&
            (property ? strcmp(name, property) == 0 : *name == '\0'))
            return s;
    }
    return NULL;
}

long long regtest_mark(const struct sbtest *sb)
{
    cJSON *json = NULL;
    ck_assert_int_eq(sbtest_call(sb, "GET", "/_sandbox/requests?since=0", NULL, NULL, &json, NULL),
                     200);
    long long mark =
        (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(json, "last_id"));
    cJSON_Delete(json);
    return mark;
}

cJSON *regtest_requests_since(const struct sbtest *sb, long long since)
{
    char *path = xasprintf("/_sandbox/requests?since=%lld", since);
    cJSON *json = NULL;
    ck_assert_int_eq(sbtest_call(sb, "GET", path, NULL, NULL, &json, NULL), 200);
    free(path);
    cJSON *list = cJSON_DetachItemFromObjectCaseSensitive(json, "requests");
    cJSON_Delete(json);
    ck_assert(cJSON_IsArray(list));
    return list;
}

int regtest_writes_since(const struct sbtest *sb, long long since)
{
    cJSON *list = regtest_requests_since(sb, since);
    int writes = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, list)
    {
        const char *system = sbtest_str(r, "system");
        if (strcmp(sbtest_str(r, "direction"), "in") != 0 || strcmp(system, "control") == 0 ||
            strcmp(sbtest_str(r, "method"), "GET") == 0 ||
            strcmp(sbtest_str(r, "path"), "/services/oauth2/token") == 0)
            continue;
        writes++;
    }
    cJSON_Delete(list);
    return writes;
}
