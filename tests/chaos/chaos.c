/* chaos.c - the chaos tool's entry point, its sandbox client, the run's world (users, owners,
 * stages, pipelines, contacts) and the canonical form of each mapped field. */
#include "chaos.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "util.h"

#define HS_TOKEN "sandbox-hubspot-token"

const char *const chaos_field_names[CF_COUNT] = {"name", "stage",       "amount", "closedate",
                                                 "type", "description", "owner"};
const char *const chaos_sf_fields[CF_COUNT] = {"Name", "StageName",   "Amount", "CloseDate",
                                               "Type", "Description", "OwnerId"};
const char *const chaos_hs_properties[CF_COUNT] = {
    "dealname", "dealstage", "amount", "closedate", "dealtype", "description", "hubspot_owner_id"};
const char *const chaos_sf_types[CHAOS_TYPE_COUNT] = {"New Customer",
                                                      "Existing Customer - Upgrade"};
const char *const chaos_hs_types[CHAOS_TYPE_COUNT] = {"newbusiness", "existingbusiness"};

static CURL *curl;
static const char *base_url;
static uint64_t rng_state;

/* ---- helpers ---- */

long chaos_env_long(const char *name, long fallback)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : fallback;
}

char *chaos_path(const char *file)
{
    const char *dir = getenv("CHAOS_DIR");
    return xasprintf("%s/%s", dir && *dir ? dir : ".", file);
}

double chaos_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next_random(void)
{
    /* xorshift64*: small, seeded, the same sequence for the same CHAOS_SEED */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

int chaos_rand(int n)
{
    return n <= 0 ? 0 : (int)(next_random() % (uint64_t)n);
}

double chaos_uniform(void)
{
    return (double)(next_random() >> 11) / 9007199254740992.0;
}

const char *chaos_str(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

cJSON *chaos_read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct buf b;
    buf_init(&b, 0);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    char *text = buf_steal(&b);
    buf_clear(&b);
    cJSON *json = text ? cJSON_Parse(text) : NULL;
    free(text);
    return json;
}

void chaos_write_json(const char *path, const cJSON *json)
{
    char *tmp = xasprintf("%s.tmp", path);
    char *text = cJSON_Print(json);
    FILE *f = fopen(tmp, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "chaos: cannot write %s\n", path);
        exit(2);
    }
    free(text);
    free(tmp);
}

/* ---- the sandbox client ---- */

static size_t on_write(char *data, size_t size, size_t n, void *userdata)
{
    buf_append(userdata, data, size * n);
    return size * n;
}

int chaos_call(const char *method, const char *path, const char *body, cJSON **json)
{
    struct curl_slist *headers = NULL;
    struct buf answer;
    long status = 0;
    buf_init(&answer, 0);
    char *url = xasprintf("%s%s", base_url, path);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    if (strncmp(path, "/crm/", 5) == 0)
        headers = curl_slist_append(headers, "Authorization: Bearer " HS_TOKEN);
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (body)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (json) {
        char *text = buf_steal(&answer);
        *json = text && *text ? cJSON_Parse(text) : NULL;
        free(text);
    }
    buf_clear(&answer);
    curl_slist_free_all(headers);
    free(url);
    return (int)status;
}

cJSON *chaos_must(const char *method, const char *path, const char *body, int want)
{
    cJSON *json = NULL;
    int status = chaos_call(method, path, body, &json);
    if (status != want) {
        char *text = json ? cJSON_PrintUnformatted(json) : NULL;
        fprintf(stderr, "chaos: %s %s answered %d (wanted %d): %s\n", method, path, status, want,
                text ? text : "");
        exit(2);
    }
    return json;
}

cJSON *chaos_api_get(const char *path)
{
    for (int i = 0; i < 60; i++) {
        cJSON *json = NULL;
        if (chaos_call("GET", path, NULL, &json) == 200)
            return json;
        cJSON_Delete(json);
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "chaos: GET %s never succeeded\n", path);
    exit(2);
}

/* ---- the world ---- */

void chaos_world_load(struct chaos_world *w)
{
    char *path = chaos_path("world.json");
    w->json = chaos_read_json(path);
    free(path);
    if (!w->json) {
        fprintf(stderr, "chaos: no world.json in CHAOS_DIR: run `seed` first\n");
        exit(2);
    }
    w->pipelines = cJSON_CreateArray();
}

void chaos_world_clear(struct chaos_world *w)
{
    cJSON_Delete(w->json);
    cJSON_Delete(w->pipelines);
    memset(w, 0, sizeof *w);
}

void chaos_world_refresh_pipelines(struct chaos_world *w)
{
    cJSON *answer = chaos_api_get("/crm/v3/pipelines/deals");
    cJSON *mine = cJSON_CreateArray();
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(answer, "results"))
    {
        const char *label = chaos_str(p, "label");
        if (label && strncmp(label, "Salesforce - ", 13) == 0)
            cJSON_AddItemToArray(mine, cJSON_Duplicate(p, true));
    }
    cJSON_Delete(answer);
    cJSON_Delete(w->pipelines);
    w->pipelines = mine;
}

static const char *find_stage_label(const struct chaos_world *w, const char *stage_id)
{
    const cJSON *p, *s;
    cJSON_ArrayForEach(p, w->pipelines)
    {
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(p, "stages"))
        {
            const char *id = chaos_str(s, "id");
            if (id && strcmp(id, stage_id) == 0)
                return chaos_str(s, "label");
        }
    }
    return NULL;
}

const char *chaos_world_stage_label(struct chaos_world *w, const char *stage_id)
{
    const char *label = find_stage_label(w, stage_id);
    if (!label) {
        chaos_world_refresh_pipelines(w);
        label = find_stage_label(w, stage_id);
    }
    return label;
}

const char *chaos_world_stage_id(struct chaos_world *w, const char *pipeline, const char *label)
{
    const cJSON *p, *s;
    cJSON_ArrayForEach(p, w->pipelines)
    {
        const char *id = chaos_str(p, "id");
        if (!id || strcmp(id, pipeline) != 0)
            continue;
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(p, "stages"))
        {
            const char *l = chaos_str(s, "label");
            if (l && strcmp(l, label) == 0)
                return chaos_str(s, "id");
        }
    }
    return NULL;
}

/* ---- canonical values ---- */

static char *blank_is_null(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

static char *amount_text(double v)
{
    return xasprintf("%.2f", round(v * 100.0) / 100.0);
}

static char *by_map(const cJSON *map, const char *key, const char *prefix)
{
    if (!key || !*key)
        return NULL;
    const char *v = chaos_str(map, key);
    return v ? xstrdup(v) : xasprintf("%s%s", prefix, key);
}

char *chaos_sf_value(struct chaos_world *w, const cJSON *opp, enum chaos_field f)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(opp, chaos_sf_fields[f]);
    switch (f) {
    case CF_AMOUNT:
        return cJSON_IsNumber(v) ? amount_text(v->valuedouble) : NULL;
    case CF_OWNER:
        return by_map(cJSON_GetObjectItemCaseSensitive(w->json, "users"), cJSON_GetStringValue(v),
                      "sf-user:");
    case CF_CLOSEDATE:
    case CF_NAME:
    case CF_STAGE:
    case CF_TYPE:
    case CF_DESCRIPTION:
    case CF_COUNT:
        break;
    }
    return blank_is_null(cJSON_GetStringValue(v));
}

char *chaos_hs_value(struct chaos_world *w, const cJSON *deal, enum chaos_field f)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(deal, "properties");
    const char *s = chaos_str(props, chaos_hs_properties[f]);
    if (!s || !*s)
        return NULL;
    switch (f) {
    case CF_AMOUNT:
        return amount_text(strtod(s, NULL));
    case CF_CLOSEDATE:
        return xasprintf("%.10s", s);
    case CF_STAGE: {
        const char *label = chaos_world_stage_label(w, s);
        return label ? xstrdup(label) : xasprintf("hs-stage:%s", s);
    }
    case CF_TYPE:
        for (int i = 0; i < CHAOS_TYPE_COUNT; i++)
            if (strcmp(s, chaos_hs_types[i]) == 0)
                return xstrdup(chaos_sf_types[i]);
        return xasprintf("hs-type:%s", s);
    case CF_OWNER:
        return by_map(cJSON_GetObjectItemCaseSensitive(w->json, "owners"), s, "hs-owner:");
    case CF_NAME:
    case CF_DESCRIPTION:
    case CF_COUNT:
        break;
    }
    return xstrdup(s);
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(void);
    } commands[] = {
        {"seed", chaos_seed},
        {"drive", chaos_drive},
        {"check", chaos_check},
        {"follow-log", chaos_follow_log},
    };
    base_url = getenv("CHAOS_SANDBOX_URL");
    if (argc != 2 || !base_url) {
        fprintf(stderr, "usage: CHAOS_SANDBOX_URL=... CHAOS_DIR=... chaos-driver "
                        "seed|drive|check|follow-log\n");
        return 2;
    }
    rng_state = (uint64_t)chaos_env_long("CHAOS_SEED", 1) * 0x9e3779b97f4a7c15ULL + 1;
    for (int i = 0; i < 8; i++)
        (void)next_random();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl = curl_easy_init();
    int rc = 2;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            rc = commands[i].run();
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    return rc;
}
