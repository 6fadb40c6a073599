/* faults.c - fault injection for incoming API requests (error status, latency, held connection,
 * dropped connection) and the seeded generator behind sb_random(). Each rule draws from its own
 * generator seeded from (seed, rule index), so whether a rule fires depends only on the seed and
 * the sequence of requests that rule matched, not on what other routes or handlers did. */
#include "core.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_RULES 32

struct fault_rule {
    char *method; /* NULL = any */
    char *path;   /* prefix */
    enum sb_fault_kind kind;
    int status;
    char *body;
    char *retry_after;
    double rate;
    int64_t count; /* fires at most this many times; -1 = unlimited */
    int latency_ms;
    int hold_ms;
    uint64_t rng;
    int64_t matched;
    int64_t fired;
};

static pthread_mutex_t faults_mu = PTHREAD_MUTEX_INITIALIZER;
static struct fault_rule rules[MAX_RULES];
static int rule_count;
static uint64_t start_seed;
static uint64_t current_seed;
static uint64_t global_rng;

static uint64_t mix(uint64_t x)
{
    /* splitmix64: spreads a small seed over all bits; never returns 0 for xorshift's sake */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x ? x : 0x2545f4914f6cdd1dULL;
}

static double next_double(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * 0x2545f4914f6cdd1dULL) >> 11) / 9007199254740992.0;
}

double sb_random(void)
{
    pthread_mutex_lock(&faults_mu);
    double r = next_double(&global_rng);
    pthread_mutex_unlock(&faults_mu);
    return r;
}

static void rule_clear(struct fault_rule *r)
{
    free(r->method);
    free(r->path);
    free(r->body);
    free(r->retry_after);
    memset(r, 0, sizeof *r);
}

static void rules_clear(void)
{
    for (int i = 0; i < rule_count; i++)
        rule_clear(&rules[i]);
    rule_count = 0;
}

static void reseed(uint64_t seed)
{
    current_seed = seed;
    global_rng = mix(seed);
    for (int i = 0; i < rule_count; i++)
        rules[i].rng = mix(seed ^ mix((uint64_t)i + 1));
}

void sb_faults_init(uint64_t seed)
{
    pthread_mutex_lock(&faults_mu);
    start_seed = seed;
    reseed(seed);
    pthread_mutex_unlock(&faults_mu);
}

void sb_faults_free(void)
{
    pthread_mutex_lock(&faults_mu);
    rules_clear();
    pthread_mutex_unlock(&faults_mu);
}

void sb_faults_reset(void)
{
    pthread_mutex_lock(&faults_mu);
    rules_clear();
    reseed(start_seed);
    pthread_mutex_unlock(&faults_mu);
}

void sb_fault_clear(struct sb_fault *f)
{
    free(f->body);
    free(f->retry_after);
    memset(f, 0, sizeof *f);
}

static bool rule_matches(const struct fault_rule *r, const char *method, const char *path)
{
    if (r->method && strcmp(r->method, method) != 0)
        return false;
    return strncmp(path, r->path, strlen(r->path)) == 0;
}

void sb_faults_decide(const char *method, const char *path, struct sb_fault *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&faults_mu);
    for (int i = 0; i < rule_count; i++) {
        struct fault_rule *r = &rules[i];
        if (!rule_matches(r, method, path) || (r->count >= 0 && r->fired >= r->count))
            continue;
        r->matched++;
        if (next_double(&r->rng) >= r->rate)
            continue;
        r->fired++;
        out->latency_ms += r->latency_ms;
        if (r->kind == SB_FAULT_NONE)
            continue; /* latency-only rules add up; the first terminal rule decides */
        out->kind = r->kind;
        out->status = r->status;
        out->body = r->body ? xstrdup(r->body) : NULL;
        out->retry_after = r->retry_after ? xstrdup(r->retry_after) : NULL;
        out->hold_ms = r->hold_ms;
        break;
    }
    pthread_mutex_unlock(&faults_mu);
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool num_field(const cJSON *o, const char *name, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v)
        return true;
    if (!cJSON_IsNumber(v))
        return false;
    *out = v->valuedouble;
    return true;
}

/* Parses one rule; returns an error message (static) or NULL. */
static const char *parse_rule(const cJSON *o, struct fault_rule *r)
{
    double status = 0, rate = 1, count = -1, latency = 0, hold = 30000;
    if (!cJSON_IsObject(o))
        return "each rule must be an object";
    const char *path = str_field(o, "path");
    if (!path || path[0] != '/')
        return "rule.path must be a path prefix starting with /";
    if (!num_field(o, "status", &status) || !num_field(o, "rate", &rate) ||
        !num_field(o, "count", &count) || !num_field(o, "latency_ms", &latency) ||
        !num_field(o, "hold_ms", &hold))
        return "rule.status, rate, count, latency_ms and hold_ms must be numbers";
    if (rate < 0 || rate > 1)
        return "rule.rate must be between 0 and 1";
    if (latency < 0 || latency > 600000 || hold < 0 || hold > 600000)
        return "rule.latency_ms and hold_ms must be between 0 and 600000";
    const char *action = str_field(o, "action");
    if (!action)
        action = status > 0 ? "error" : "latency";
    if (strcmp(action, "error") == 0) {
        if (status < 400 || status > 599)
            return "an error rule needs a status between 400 and 599";
        r->kind = SB_FAULT_ERROR;
    } else if (strcmp(action, "timeout") == 0) {
        r->kind = SB_FAULT_TIMEOUT;
    } else if (strcmp(action, "drop") == 0) {
        r->kind = SB_FAULT_DROP;
    } else if (strcmp(action, "timeout_after_write") == 0) {
        r->kind = SB_FAULT_LOSE_ANSWER;
    } else if (strcmp(action, "latency") == 0) {
        if (latency <= 0)
            return "a latency rule needs latency_ms";
        r->kind = SB_FAULT_NONE;
    } else {
        return "rule.action must be error, latency, timeout, timeout_after_write or drop";
    }
    const char *method = str_field(o, "method");
    r->method = (method && strcmp(method, "*") != 0) ? xstrdup(method) : NULL;
    r->path = xstrdup(path);
    r->status = (int)status;
    const char *body = str_field(o, "body");
    r->body = body ? xstrdup(body) : NULL;
    const char *retry_after = str_field(o, "retry_after");
    r->retry_after = retry_after ? xstrdup(retry_after) : NULL;
    r->rate = rate;
    r->count = (int64_t)count;
    r->latency_ms = (int)latency;
    r->hold_ms = (int)hold;
    return NULL;
}

static bool put_delivery(const cJSON *delivery, char **err)
{
    if (!delivery)
        return true;
    if (!cJSON_IsObject(delivery)) {
        *err = xstrdup("delivery must be an object");
        return false;
    }
    static const char *const names[][2] = {
        {"duplicate_rate", SB_SETTING_DUPLICATE_RATE},
        {"reorder_rate", SB_SETTING_REORDER_RATE},
        {"drop_rate", SB_SETTING_DROP_RATE},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(delivery, names[i][0]);
        if (v && (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1)) {
            *err = xasprintf("delivery.%s must be a number between 0 and 1", names[i][0]);
            return false;
        }
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(delivery, names[i][0]);
        if (v)
            (void)sb_settings_set(names[i][1], v);
    }
    return true;
}

bool sb_faults_put(const cJSON *body, char **err)
{
    struct fault_rule parsed[MAX_RULES];
    int n = 0;
    bool ok = false;
    double seed = (double)start_seed;
    memset(parsed, 0, sizeof parsed);

    if (!cJSON_IsObject(body)) {
        *err = xstrdup("body must be a JSON object");
        goto out;
    }
    const cJSON *seed_item = cJSON_GetObjectItemCaseSensitive(body, "seed");
    if (seed_item) {
        if (!cJSON_IsNumber(seed_item) || seed_item->valuedouble < 0) {
            *err = xstrdup("seed must be a non-negative number");
            goto out;
        }
        seed = seed_item->valuedouble;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "rules");
    if (list && !cJSON_IsArray(list)) {
        *err = xstrdup("rules must be an array");
        goto out;
    }
    if (cJSON_GetArraySize(list) > MAX_RULES) {
        *err = xasprintf("at most %d rules", MAX_RULES);
        goto out;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        const char *msg = parse_rule(item, &parsed[n]);
        if (msg) {
            *err = xasprintf("rules[%d]: %s", n, msg);
            rule_clear(&parsed[n]);
            goto out;
        }
        n++;
    }
    if (!put_delivery(cJSON_GetObjectItemCaseSensitive(body, "delivery"), err))
        goto out;

    pthread_mutex_lock(&faults_mu);
    rules_clear();
    memcpy(rules, parsed, sizeof parsed);
    rule_count = n;
    n = 0;
    reseed((uint64_t)seed);
    pthread_mutex_unlock(&faults_mu);
    ok = true;
out:
    for (int i = 0; i < n; i++)
        rule_clear(&parsed[i]);
    return ok;
}

static const char *kind_name(enum sb_fault_kind k)
{
    switch (k) {
    case SB_FAULT_ERROR:
        return "error";
    case SB_FAULT_TIMEOUT:
        return "timeout";
    case SB_FAULT_DROP:
        return "drop";
    case SB_FAULT_LOSE_ANSWER:
        return "timeout_after_write";
    case SB_FAULT_NONE:
        break;
    }
    return "latency";
}

cJSON *sb_faults_json(void)
{
    cJSON *root = cJSON_CreateObject();
    pthread_mutex_lock(&faults_mu);
    cJSON_AddNumberToObject(root, "seed", (double)current_seed);
    cJSON *list = cJSON_AddArrayToObject(root, "rules");
    for (int i = 0; i < rule_count; i++) {
        const struct fault_rule *r = &rules[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "method", r->method ? r->method : "*");
        cJSON_AddStringToObject(o, "path", r->path);
        cJSON_AddStringToObject(o, "action", kind_name(r->kind));
        if (r->kind == SB_FAULT_ERROR)
            cJSON_AddNumberToObject(o, "status", r->status);
        cJSON_AddNumberToObject(o, "rate", r->rate);
        cJSON_AddNumberToObject(o, "count", (double)r->count);
        cJSON_AddNumberToObject(o, "latency_ms", r->latency_ms);
        if (r->kind == SB_FAULT_TIMEOUT || r->kind == SB_FAULT_LOSE_ANSWER)
            cJSON_AddNumberToObject(o, "hold_ms", r->hold_ms);
        cJSON_AddNumberToObject(o, "matched", (double)r->matched);
        cJSON_AddNumberToObject(o, "fired", (double)r->fired);
        cJSON_AddItemToArray(list, o);
    }
    pthread_mutex_unlock(&faults_mu);
    cJSON *delivery = cJSON_AddObjectToObject(root, "delivery");
    cJSON_AddNumberToObject(delivery, "duplicate_rate",
                            sb_setting_double(SB_SETTING_DUPLICATE_RATE, 0));
    cJSON_AddNumberToObject(delivery, "reorder_rate",
                            sb_setting_double(SB_SETTING_REORDER_RATE, 0));
    cJSON_AddNumberToObject(delivery, "drop_rate", sb_setting_double(SB_SETTING_DROP_RATE, 0));
    return root;
}
