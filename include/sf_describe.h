/* sf_describe.h - the Opportunity describe (field types, picklist values, record types), read
 * once per process and kept for SF_DESCRIBE_TTL_MS so checking a picklist value or counting
 * record types costs no API call per record. One cache per worker, each a copy of the process's
 * copy: a cache is not thread-safe, sf_describe_opportunity on different caches is. */
#ifndef SVC_SF_DESCRIBE_H
#define SVC_SF_DESCRIBE_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "compiler.h"
#include "err.h"
#include "sf_client.h"

/* How long a describe is reused: picklist values and record types change rarely, and a new
 * value is seen within this time. */
#define SF_DESCRIBE_TTL_MS (5 * 60 * 1000)

struct sf_describe;

/* An empty cache. Free with sf_describe_free (NULL is a no-op). */
struct sf_describe *sf_describe_new(void);
void sf_describe_free(struct sf_describe *d);

/* GET sobjects/Opportunity/describe, or the copy read less than SF_DESCRIBE_TTL_MS ago by any
 * worker of the process (one read at a time: the others wait for it). On ERR_OK *out is
 * borrowed, valid until the next call or sf_describe_free. */
enum err sf_describe_opportunity(struct sf_describe *d, struct sf_client *sf,
                                 const cJSON **out) WARN_UNUSED;

/* Active record types other than the master one in a describe's recordTypeInfos. Pure. */
int sf_describe_record_type_count(const cJSON *describe);

/* The describe's field named name (case-insensitive), or NULL. Borrowed. Pure. */
const cJSON *sf_describe_field(const cJSON *describe, const char *name);

#endif
