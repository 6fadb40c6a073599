/* sync_cache.c - per-batch, per-thread memo: {table: {key: value}} in one cJSON object. */
#include "sync_cache.h"

#include <stddef.h>

static _Thread_local cJSON *tables; /* NULL: off */

void sync_cache_begin(void)
{
    cJSON_Delete(tables);
    tables = cJSON_CreateObject();
}

void sync_cache_end(void)
{
    cJSON_Delete(tables);
    tables = NULL;
}

bool sync_cache_is_on(void)
{
    return tables != NULL;
}

const cJSON *sync_cache_get(const char *table, const char *key)
{
    if (!tables)
        return NULL;
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tables, table), key);
}

void sync_cache_put(const char *table, const char *key, cJSON *value)
{
    if (!tables || !value) {
        cJSON_Delete(value);
        return;
    }
    cJSON *t = cJSON_GetObjectItemCaseSensitive(tables, table);
    if (!t)
        t = cJSON_AddObjectToObject(tables, table);
    if (!t)
        cJSON_Delete(value);
    else if (cJSON_GetObjectItemCaseSensitive(t, key))
        cJSON_ReplaceItemInObjectCaseSensitive(t, key, value);
    else
        cJSON_AddItemToObject(t, key, value);
}

cJSON *sync_cache_table(const char *table)
{
    return tables ? cJSON_GetObjectItemCaseSensitive(tables, table) : NULL;
}

void sync_cache_forget(const char *table)
{
    if (tables)
        cJSON_DeleteItemFromObjectCaseSensitive(tables, table);
}
