/* sf_describe.c - a per-worker copy of the Opportunity describe with a time to live. It holds
 * no lock: each worker owns its own. */
#include "sf_describe.h"

#include <stdlib.h>
#include <strings.h>

#include "util.h"

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
    cJSON *fresh = NULL;
    /* GET sobjects/Opportunity/describe: "describe" takes the id's place in the path. */
    enum err rc = sf_sobject_get(sf, "Opportunity", "describe", NULL, &fresh);
    if (rc != ERR_OK)
        return rc;
    cJSON_Delete(d->opportunity);
    d->opportunity = fresh;
    d->fetched_ms = now;
    *out = fresh;
    return ERR_OK;
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
