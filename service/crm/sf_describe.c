/* sf_describe.c - a per-worker copy of the Opportunity describe with a time to live, taken
 * from one copy the process shares: the workers of a process read the describe once between
 * them (8 workers starting an import read it 8 times before), then each works on its own copy
 * without a lock. */
#include "sf_describe.h"

#include <pthread.h>
#include <stdlib.h>
#include <strings.h>

#include "util.h"

/* The process's copy and when it was read; a worker that finds it stale reads it again while
 * the others wait for that read instead of making their own. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static cJSON *shared_opportunity;
static int64_t shared_fetched_ms;

struct sf_describe {
    cJSON *opportunity;
    int64_t fetched_ms;
};

struct sf_describe *sf_describe_new(void)
{
    return xcalloc(1, sizeof(struct sf_describe));
}

void sf_describe_free(struct sf_describe *d)
{
    if (!d)
        return;
    cJSON_Delete(d->opportunity);
    free(d);
}

enum err sf_describe_opportunity(struct sf_describe *d, struct sf_client *sf, const cJSON **out)
{
    int64_t now = util_now_ms();
    if (d->opportunity && now - d->fetched_ms < SF_DESCRIBE_TTL_MS) {
        *out = d->opportunity;
        return ERR_OK;
    }
    enum err rc = ERR_OK;
    pthread_mutex_lock(&shared_lock);
    if (!shared_opportunity || now - shared_fetched_ms >= SF_DESCRIBE_TTL_MS) {
        cJSON *fresh = NULL;
        /* GET sobjects/Opportunity/describe: "describe" takes the id's place in the path. */
        rc = sf_sobject_get(sf, "Opportunity", "describe", NULL, &fresh);
        if (rc == ERR_OK) {
            cJSON_Delete(shared_opportunity);
            shared_opportunity = fresh;
            shared_fetched_ms = util_now_ms();
        }
    }
    if (rc == ERR_OK) {
        cJSON_Delete(d->opportunity);
        d->opportunity = cJSON_Duplicate(shared_opportunity, true);
        d->fetched_ms = shared_fetched_ms;
        *out = d->opportunity;
    }
    pthread_mutex_unlock(&shared_lock);
    return rc;
}

int sf_describe_record_type_count(const cJSON *describe)
{
    int n = 0;
    const cJSON *rt;
    cJSON_ArrayForEach(rt, cJSON_GetObjectItemCaseSensitive(describe, "recordTypeInfos"))
    {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rt, "master")) &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rt, "active")))
            n++;
    }
    return n;
}

const cJSON *sf_describe_field(const cJSON *describe, const char *name)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(describe, "fields"))
    {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "name"));
        if (n && name && strcasecmp(n, name) == 0)
            return f;
    }
    return NULL;
}
