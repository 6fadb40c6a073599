/* settings.c - the sandbox's flat settings table (name -> number or string), seeded from the
 * command line and changed through PUT /_sandbox/settings. Its own mutex: any thread may read. */
#include "core.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static pthread_mutex_t settings_mu = PTHREAD_MUTEX_INITIALIZER;
static cJSON *settings;          /* object: name -> number | string */
static cJSON *settings_defaults; /* snapshot taken once start-up seeding is done */

void sb_settings_init(void)
{
    settings = cJSON_CreateObject();
}

void sb_settings_free(void)
{
    cJSON_Delete(settings);
    cJSON_Delete(settings_defaults);
    settings = NULL;
    settings_defaults = NULL;
}

bool sb_settings_set(const char *name, const cJSON *value)
{
    if (!name || !*name || !value)
        return false;
    if (!cJSON_IsNull(value) && !cJSON_IsNumber(value) && !cJSON_IsString(value))
        return false;
    pthread_mutex_lock(&settings_mu);
    cJSON_DeleteItemFromObjectCaseSensitive(settings, name);
    if (!cJSON_IsNull(value))
        cJSON_AddItemToObject(settings, name, cJSON_Duplicate(value, false));
    pthread_mutex_unlock(&settings_mu);
    return true;
}

bool sb_settings_assign(const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return false;
    char *name = xstrndup(assignment, (size_t)(eq - assignment));
    const char *text = eq + 1;
    char *end = NULL;
    double d = strtod(text, &end);
    cJSON *value =
        (*text && end && *end == '\0') ? cJSON_CreateNumber(d) : cJSON_CreateString(text);
    bool ok = sb_settings_set(name, value);
    cJSON_Delete(value);
    free(name);
    return ok;
}

cJSON *sb_settings_json(void)
{
    pthread_mutex_lock(&settings_mu);
    cJSON *copy = cJSON_Duplicate(settings, true);
    pthread_mutex_unlock(&settings_mu);
    return copy;
}

void sb_settings_mark_defaults(void)
{
    pthread_mutex_lock(&settings_mu);
    cJSON_Delete(settings_defaults);
    settings_defaults = cJSON_Duplicate(settings, true);
    pthread_mutex_unlock(&settings_mu);
}

void sb_settings_restore_defaults(void)
{
    pthread_mutex_lock(&settings_mu);
    cJSON_Delete(settings);
    settings = settings_defaults ? cJSON_Duplicate(settings_defaults, true) : cJSON_CreateObject();
    pthread_mutex_unlock(&settings_mu);
}

double sb_setting_double(const char *name, double fallback)
{
    double v = fallback;
    pthread_mutex_lock(&settings_mu);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(settings, name);
    if (cJSON_IsNumber(item))
        v = item->valuedouble;
    else if (cJSON_IsString(item)) {
        char *end = NULL;
        double d = strtod(item->valuestring, &end);
        if (*item->valuestring && *end == '\0')
            v = d;
    }
    pthread_mutex_unlock(&settings_mu);
    return v;
}

int64_t sb_setting_int(const char *name, int64_t fallback)
{
    double d = sb_setting_double(name, (double)fallback);
    return (int64_t)d;
}

const char *sb_setting_str(const char *name)
{
    static _Thread_local char value[512];
    const char *out = NULL;
    pthread_mutex_lock(&settings_mu);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(settings, name);
    if (cJSON_IsString(item)) {
        snprintf(value, sizeof value, "%s", item->valuestring);
        out = value;
    } else if (cJSON_IsNumber(item)) {
        if (item->valuedouble == (double)(int64_t)item->valuedouble)
            snprintf(value, sizeof value, "%lld", (long long)item->valuedouble);
        else
            snprintf(value, sizeof value, "%.17g", item->valuedouble);
        out = value;
    }
    pthread_mutex_unlock(&settings_mu);
    return out;
}

bool sb_setting_set(const char *name, const cJSON *value)
{
    return sb_settings_set(name, value);
}
