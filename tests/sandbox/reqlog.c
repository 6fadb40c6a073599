/* reqlog.c - the request log behind GET /_sandbox/requests: every API request in and every
 * delivery out, so tests can count calls. Bounded: the oldest entries go first. Own mutex. */
#include "core.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define REQLOG_MAX 50000

struct reqlog_entry {
    int64_t id;
    int64_t ts;
    char *system;
    char *direction;
    char *method;
    char *path;
    char *query;
    int status;
    size_t body_len;
    char *body;  /* the first core.log_body_bytes bytes of the body, or NULL */
    char *fault; /* the injected fault that decided the answer, or NULL */
};

static pthread_mutex_t reqlog_mu = PTHREAD_MUTEX_INITIALIZER;
static struct reqlog_entry *entries; /* ring of REQLOG_MAX */
static size_t first;                 /* index of the oldest entry */
static size_t count;
static int64_t next_id = 1;

static void entry_clear(struct reqlog_entry *e)
{
    free(e->system);
    free(e->direction);
    free(e->method);
    free(e->path);
    free(e->query);
    free(e->body);
    free(e->fault);
    memset(e, 0, sizeof *e);
}

/* The excerpt of body kept in the log: none unless the setting core.log_body_bytes asks. */
static char *body_excerpt(const char *body, size_t body_len)
{
    int64_t keep = sb_setting_int("core.log_body_bytes", 0);
    if (keep <= 0 || !body)
        return NULL;
    size_t n = body_len < (size_t)keep ? body_len : (size_t)keep;
    char *out = xmalloc(n + 1);
    memcpy(out, body, n);
    out[n] = '\0';
    return out;
}

void sb_reqlog_add(const char *system, const char *direction, const char *method, const char *path,
                   const char *query, int status, const char *body, size_t body_len,
                   const char *fault)
{
    char *excerpt = body_excerpt(body, body_len);
    pthread_mutex_lock(&reqlog_mu);
    if (!entries)
        entries = xcalloc(REQLOG_MAX, sizeof *entries);
    struct reqlog_entry *e;
    if (count == REQLOG_MAX) {
        e = &entries[first];
        entry_clear(e);
        first = (first + 1) % REQLOG_MAX;
    } else {
        e = &entries[(first + count) % REQLOG_MAX];
        count++;
    }
    e->id = next_id++;
    e->ts = sb_now_ms();
    e->system = xstrdup(system);
    e->direction = xstrdup(direction);
    e->method = xstrdup(method ? method : "");
    e->path = xstrdup(path ? path : "");
    e->query = xstrdup(query ? query : "");
    e->status = status;
    e->body_len = body_len;
    e->body = excerpt;
    e->fault = fault ? xstrdup(fault) : NULL;
    pthread_mutex_unlock(&reqlog_mu);
}

void sb_log_delivery(const char *system, const char *url, int status, const char *body,
                     size_t body_len)
{
    sb_reqlog_add(system, "out", "POST", url, "", status, body, body_len, NULL);
}

cJSON *sb_reqlog_json(int64_t since, const char *system)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "requests");
    pthread_mutex_lock(&reqlog_mu);
    for (size_t i = 0; i < count; i++) {
        const struct reqlog_entry *e = &entries[(first + i) % REQLOG_MAX];
        if (e->id <= since || (system && strcmp(system, e->system) != 0))
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)e->id);
        cJSON_AddNumberToObject(o, "ts", (double)e->ts);
        cJSON_AddStringToObject(o, "system", e->system);
        cJSON_AddStringToObject(o, "direction", e->direction);
        cJSON_AddStringToObject(o, "method", e->method);
        cJSON_AddStringToObject(o, "path", e->path);
        cJSON_AddStringToObject(o, "query", e->query);
        cJSON_AddNumberToObject(o, "status", e->status);
        cJSON_AddNumberToObject(o, "body_len", (double)e->body_len);
        if (e->body)
            cJSON_AddStringToObject(o, "body", e->body);
        if (e->fault)
            cJSON_AddStringToObject(o, "fault", e->fault);
        cJSON_AddItemToArray(list, o);
    }
    cJSON_AddNumberToObject(root, "last_id", (double)(next_id - 1));
    pthread_mutex_unlock(&reqlog_mu);
    return root;
}

void sb_reqlog_clear(void)
{
    pthread_mutex_lock(&reqlog_mu);
    for (size_t i = 0; i < count; i++)
        entry_clear(&entries[(first + i) % REQLOG_MAX]);
    first = 0;
    count = 0;
    pthread_mutex_unlock(&reqlog_mu);
}
