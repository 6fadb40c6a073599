/* api_cache.c - a small keyed cache under one mutex: few keys (tens), so a linear search costs
 * nothing next to the call it saves. Values are copied in and out; nothing borrowed escapes the
 * lock. Entries expire by age only; a caller that changes the data forgets its key. */
#include "api_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A bound, so a bug that makes keys per record cannot grow the process without end. */
#define MAX_ENTRIES 256

struct entry {
    char *key;
    cJSON *value;
    int64_t stored_ms; /* monotonic */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry entries[MAX_ENTRIES];
static size_t entry_count;

static struct entry *find(const char *key)
{
    for (size_t i = 0; i < entry_count; i++)
        if (strcmp(entries[i].key, key) == 0)
            return &entries[i];
    return NULL;
}

static void drop(struct entry *e)
{
    free(e->key);
    cJSON_Delete(e->value);
    *e = entries[--entry_count];
}

bool api_cache_get(const char *key, int max_age_s, cJSON **value)
{
    if (max_age_s <= 0)
        return false;
    bool hit = false;
    pthread_mutex_lock(&lock);
    struct entry *e = find(key);
    if (e && util_monotonic_ms() - e->stored_ms < (int64_t)max_age_s * 1000) {
        *value = cJSON_Duplicate(e->value, true);
        hit = true;
    }
    pthread_mutex_unlock(&lock);
    return hit;
}

void api_cache_put(const char *key, const cJSON *value)
{
    cJSON *copy = cJSON_Duplicate(value, true);
    pthread_mutex_lock(&lock);
    struct entry *e = find(key);
    if (!e) {
        if (entry_count == MAX_ENTRIES) {
            size_t oldest = 0;
            for (size_t i = 1; i < entry_count; i++)
                if (entries[i].stored_ms < entries[oldest].stored_ms)
                    oldest = i;
            drop(&entries[oldest]);
        }
        e = &entries[entry_count++];
        e->key = xstrdup(key);
        e->value = NULL;
    }
    cJSON_Delete(e->value);
    e->value = copy;
    e->stored_ms = util_monotonic_ms();
    pthread_mutex_unlock(&lock);
}

void api_cache_forget(const char *key)
{
    pthread_mutex_lock(&lock);
    struct entry *e = find(key);
    if (e)
        drop(e);
    pthread_mutex_unlock(&lock);
}
