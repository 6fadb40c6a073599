/* e2e.c - the sandbox and dealsync, wired together for end-to-end tests. */
#include "e2e.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "util.h"

#define SB_CLIENT_ID "sandbox-client-id"
#define SB_CLIENT_SECRET "sandbox-client-secret"
#define SB_REFRESH_TOKEN "sandbox-refresh-token"
#define SB_HS_TOKEN "sandbox-hubspot-token"
#define SB_HS_SECRET "sandbox-client-secret"
#define API_VERSION "v60.0"

static const char *const deal_properties[] = {"dealname",    "amount",          "closedate",
                                              "dealstage",   "pipeline",        "dealtype",
                                              "description", "hubspot_owner_id"};

int e2e_sb(struct e2e *e, const char *method, const char *path, const char *body, cJSON **json)
{
    char *auth = NULL;
    if (strncmp(path, "/services/data", 14) == 0 && e->sf_token)
        auth = xasprintf("Authorization: Bearer %s", e->sf_token);
    else if (strncmp(path, "/crm/", 5) == 0)
        auth = xstrdup("Authorization: Bearer " SB_HS_TOKEN);
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    int status = sbtest_call(&e->sb, method, path, headers, body, json, NULL);
    free(auth);
    return status;
}

static char *fetch_sf_token(struct e2e *e)
{
    const char *form = "grant_type=refresh_token&client_id=" SB_CLIENT_ID
                       "&client_secret=" SB_CLIENT_SECRET "&refresh_token=" SB_REFRESH_TOKEN;
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    cJSON *answer = NULL;
    int status =
        sbtest_call(&e->sb, "POST", "/services/oauth2/token", headers, form, &answer, NULL);
    ck_assert_int_eq(status, 200);
    char *token = xstrdup(sbtest_str(answer, "access_token"));
    cJSON_Delete(answer);
    return token;
}

/* The outbound message on Opportunity, as `dealsync register` creates it. */
static void register_outbound_message(struct e2e *e)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "FullName", "Opportunity.dealsync");
    cJSON *meta = cJSON_AddObjectToObject(req, "Metadata");
    cJSON_AddNumberToObject(meta, "apiVersion", 60.0);
    char *endpoint = xasprintf("%s/webhooks/salesforce?token=" E2E_WEBHOOK_TOKEN, e->svc.base);
    cJSON_AddStringToObject(meta, "endpointUrl", endpoint);
    free(endpoint);
    static const char *const fields[] = {E2E_OM_FIELDS};
    cJSON *list = cJSON_AddArrayToObject(meta, "fields");
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        cJSON_AddItemToArray(list, cJSON_CreateString(fields[i]));
    cJSON_AddStringToObject(meta, "integrationUser", "integration@dealsync.test");
    cJSON_AddBoolToObject(meta, "includeSessionId", false);
    cJSON_AddStringToObject(meta, "name", "dealsync");
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    cJSON *answer = NULL;
    int status =
        e2e_sb(e, "POST", "/services/data/" API_VERSION "/tooling/sobjects/WorkflowOutboundMessage",
               body, &answer);
    ck_assert_msg(status == 201, "outbound message registration: %d", status);
    cJSON_Delete(answer);
    free(body);
}

void e2e_hs_subscribe(struct e2e *e, const char *event_type, const char *property)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "eventType", event_type);
    if (property)
        cJSON_AddStringToObject(req, "propertyName", property);
    cJSON_AddBoolToObject(req, "active", true);
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    int status =
        e2e_sb(e, "POST", "/webhooks/v3/" SB_HS_APP_ID "/subscriptions?hapikey=" SB_HS_DEV_KEY,
               body, NULL);
    ck_assert_msg(status == 201, "subscription %s %s: %d", event_type, property ? property : "",
                  status);
    free(body);
}

static void register_hubspot_webhooks(struct e2e *e)
{
    char *body = xasprintf("{\"targetUrl\":\"%s/webhooks/hubspot\","
                           "\"throttling\":{\"maxConcurrentRequests\":10}}",
                           e->svc.base);
    int status = e2e_sb(e, "PUT", "/webhooks/v3/" SB_HS_APP_ID "/settings?hapikey=" SB_HS_DEV_KEY,
                        body, NULL);
    ck_assert_msg(status == 200, "webhook settings: %d", status);
    free(body);
    e2e_hs_subscribe(e, "deal.creation", NULL);
    e2e_hs_subscribe(e, "deal.deletion", NULL);
    e2e_hs_subscribe(e, "deal.associationChange", NULL);
    for (size_t i = 0; i < sizeof(deal_properties) / sizeof(deal_properties[0]); i++)
        e2e_hs_subscribe(e, "deal.propertyChange", deal_properties[i]);
}

static void run_dealsync_command(struct e2e *e, const char *const *env, const char *arg1,
                                 const char *arg2, const char *arg3)
{
    const char *argv[] = {itest_env("DEALSYNC_BIN"), arg1, arg2, arg3, NULL};
    struct itest_proc *p = itest_spawn(argv, env, e->svc.log_path, NULL);
    ck_assert_int_eq(itest_proc_stop(p, 0, 20000), 0);
}

char **e2e_dealsync_env(const struct e2e *e, const char *const *extra)
{
    char **env = xcalloc(64, sizeof(char *));
    int k = 0;
    if (e->svc.db_url) {
        env[k++] = xasprintf("DATABASE_URL=%s", e->svc.db_url);
        env[k++] = xasprintf("PUBLIC_BASE_URL=%s", e->svc.base);
    }
    env[k++] = xasprintf("SALESFORCE_ORG_ID=%s", e->org_id);
    env[k++] = xasprintf("SALESFORCE_LOGIN_URL=%s", e->sb.base);
    env[k++] = xstrdup("SALESFORCE_CLIENT_ID=" SB_CLIENT_ID);
    env[k++] = xstrdup("SALESFORCE_CLIENT_SECRET=" SB_CLIENT_SECRET);
    env[k++] = xstrdup("SALESFORCE_REFRESH_TOKEN=" SB_REFRESH_TOKEN);
    env[k++] = xstrdup("SALESFORCE_API_VERSION=" API_VERSION);
    env[k++] = xasprintf("HUBSPOT_API_BASE_URL=%s", e->sb.base);
    env[k++] = xstrdup("HUBSPOT_ACCESS_TOKEN=" SB_HS_TOKEN);
    env[k++] = xstrdup("HUBSPOT_CLIENT_SECRET=" SB_HS_SECRET);
    env[k++] = xstrdup("HUBSPOT_APP_ID=" SB_HS_APP_ID);
    env[k++] = xstrdup("HUBSPOT_DEVELOPER_API_KEY=" SB_HS_DEV_KEY);
    env[k++] = xstrdup("SALESFORCE_WEBHOOK_TOKEN=" E2E_WEBHOOK_TOKEN);
    env[k++] = xstrdup("WORKER_THREADS=2");
    env[k++] = xstrdup("QUEUE_RETRY_BASE_MS=50");
    env[k++] = xstrdup("QUEUE_RETRY_MAX_MS=1000");
    env[k++] = xstrdup("QUEUE_POLL_INTERVAL_MS=200");
    env[k++] = xstrdup("DELETE_POLL_INTERVAL_SECONDS=1");
    env[k++] = xstrdup("CONTACT_ROLE_POLL_INTERVAL_SECONDS=1");
    /* No reconciliation sweeps or dead-letter retries unless a test asks for them: they would
     * add reads (and calls to count) to scenarios about other things. */
    env[k++] = xstrdup("RECONCILE_INTERVAL_SECONDS=0");
    env[k++] = xstrdup("DEAD_RETRY_INTERVAL_SECONDS=0");
    for (const char *const *x = extra; x && *x && k < 62; x++)
        env[k++] = xstrdup(*x);
    env[k] = NULL;
    return env;
}

void e2e_env_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

void e2e_start(struct e2e *e, const char *name, const char *const *extra_env,
               const char *const *sandbox_args, bool sync_deals)
{
    e2e_start_prepared(e, name, extra_env, sandbox_args, sync_deals, NULL);
}

void e2e_start_prepared(struct e2e *e, const char *name, const char *const *extra_env,
                        const char *const *sandbox_args, bool sync_deals,
                        void (*prepare)(struct e2e *e))
{
    memset(e, 0, sizeof(*e));
    /* Fast delivery retries, so tests wait milliseconds where the real CRMs wait minutes. */
    const char *defaults[] = {
        "--set", "sf_om_retry_first_ms=50",       "--set", "sf_om_retry_cap_ms=500",
        "--set", "hubspot.webhook_backoff_ms=50", "--set", "hubspot.webhook_backoff_max_ms=500"};
    const char *args[40];
    int n = 0;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        args[n++] = defaults[i];
    for (const char *const *a = sandbox_args; a && *a && n < 38; a++)
        args[n++] = *a;
    args[n] = NULL;
    sbtest_start(&e->sb, args);

    cJSON *org = NULL;
    ck_assert_int_eq(sbtest_call(&e->sb, "GET", "/_sandbox/salesforce/org", NULL, NULL, &org, NULL),
                     200);
    e->org_id = xstrdup(sbtest_str(org, "organizationId"));
    cJSON_Delete(org);
    e->sf_token = fetch_sf_token(e);
    if (prepare)
        prepare(e);

    char **env = e2e_dealsync_env(e, extra_env);

    /* The switch is set (and the schema migrated) before dealsync serves, as an operator
     * would run `dealsync settings sync-deals on` once. svc_start creates the database. */
    svc_start(&e->svc, name, (const char *const *)env);
    if (sync_deals) {
        char *db_env = xasprintf("DATABASE_URL=%s", e->svc.db_url);
        const char *cmd_env[] = {db_env, NULL};
        run_dealsync_command(e, cmd_env, "settings", "sync-deals", "on");
        free(db_env);
    }
    register_outbound_message(e);
    register_hubspot_webhooks(e);
    e2e_env_free(env);
    /* For the test's own dealsync commands: the same environment, with the database. */
    e->env = e2e_dealsync_env(e, extra_env);
}

struct itest_proc *e2e_dealsync_start(struct e2e *e, const char *const *args, char **log_path)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = itest_env("DEALSYNC_BIN");
    for (const char *const *a = args; *a && n < 15; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    *log_path = xasprintf("%s/command-%d-%d.log", itest_env("TEST_TMPDIR"), (int)getpid(),
                          ++e->command_count);
    struct itest_proc *p = itest_spawn(argv, (const char *const *)e->env, *log_path, NULL);
    ck_assert_msg(p != NULL, "cannot start dealsync %s", args[0]);
    return p;
}

int e2e_dealsync(struct e2e *e, const char *const *args, char **output)
{
    char *log_path = NULL;
    struct itest_proc *p = e2e_dealsync_start(e, args, &log_path);
    int status = itest_proc_stop(p, 0, 120000);
    if (output)
        *output = itest_read_file(log_path, NULL);
    free(log_path);
    return status;
}

int e2e_run_worker_with_mappings(struct e2e *e, const char *mappings, char **log)
{
    static int runs;
    char *log_path = xasprintf("%s/worker-mappings-%d.log", itest_env("TEST_TMPDIR"), ++runs);
    char *env[] = {xasprintf("DATABASE_URL=%s", e->svc.db_url),
                   xasprintf("SALESFORCE_LOGIN_URL=%s", e->sb.base),
                   xstrdup("SALESFORCE_CLIENT_ID=" SB_CLIENT_ID),
                   xstrdup("SALESFORCE_CLIENT_SECRET=" SB_CLIENT_SECRET),
                   xstrdup("SALESFORCE_REFRESH_TOKEN=" SB_REFRESH_TOKEN),
                   xasprintf("HUBSPOT_API_BASE_URL=%s", e->sb.base),
                   xstrdup("HUBSPOT_ACCESS_TOKEN=" SB_HS_TOKEN),
                   xstrdup("WORKER_THREADS=1"),
                   xasprintf("MAPPINGS_FILE=%s", mappings),
                   NULL};
    const char *argv[] = {itest_env("DEALSYNC_BIN"), "worker", NULL};
    struct itest_proc *p = itest_spawn(argv, (const char *const *)env, log_path, NULL);
    int status = itest_proc_stop(p, 0, 20000);
    *log = itest_read_file(log_path, NULL);
    for (int i = 0; env[i]; i++)
        free(env[i]);
    free(log_path);
    return status;
}

struct itest_proc *e2e_start_worker(struct e2e *e, const char *name, const char *const *extra_env)
{
    char **env = e2e_dealsync_env(e, extra_env);
    char *log = xasprintf("%s/%s.log", itest_env("TEST_TMPDIR"), name);
    const char *argv[] = {itest_env("DEALSYNC_BIN"), "worker", NULL};
    struct itest_proc *p = itest_spawn(argv, (const char *const *)env, log, NULL);
    ck_assert_msg(p != NULL, "dealsync worker did not start; see %s", log);
    free(log);
    e2e_env_free(env);
    return p;
}

void e2e_stop(struct e2e *e)
{
    ck_assert_int_eq(svc_stop(&e->svc), 0);
    sbtest_stop(&e->sb);
    free(e->sf_token);
    free(e->org_id);
    e2e_env_free(e->env);
    memset(e, 0, sizeof(*e));
}

long long e2e_events(struct e2e *e, const char *status)
{
    char *sql = xasprintf("SELECT count(*) FROM sync_event WHERE status = '%s'", status);
    long long n = itest_db_scalar(e->svc.db, sql);
    free(sql);
    return n;
}

static bool is_quiet(struct e2e *e)
{
    /* Acknowledged webhook bodies not yet split are work too. */
    if (e2e_events(e, "pending") + e2e_events(e, "running") > 0 ||
        itest_db_scalar(e->svc.db, "SELECT count(*) FROM ingest_inbox") > 0)
        return false;
    cJSON *om = NULL, *hooks = NULL;
    sbtest_call(&e->sb, "GET", "/_sandbox/salesforce/outbound", NULL, NULL, &om, NULL);
    sbtest_call(&e->sb, "GET", "/_sandbox/hubspot/webhooks", NULL, NULL, &hooks, NULL);
    const cJSON *queued = cJSON_GetObjectItemCaseSensitive(om, "queued");
    const cJSON *pending = cJSON_GetObjectItemCaseSensitive(hooks, "pending");
    const cJSON *in_flight = cJSON_GetObjectItemCaseSensitive(hooks, "inFlight");
    bool quiet = cJSON_GetArraySize(queued) == 0 && cJSON_IsNumber(pending) &&
                 pending->valuedouble == 0 && cJSON_IsNumber(in_flight) &&
                 in_flight->valuedouble == 0;
    cJSON_Delete(om);
    cJSON_Delete(hooks);
    return quiet;
}

static bool quiet_twice(void *arg)
{
    struct e2e *e = arg;
    if (!is_quiet(e))
        return false;
    struct timespec ts = {0, 150 * 1000000L};
    nanosleep(&ts, NULL);
    return is_quiet(e);
}

bool e2e_wait_idle(struct e2e *e, int deadline_ms)
{
    return itest_wait_for(quiet_twice, e, deadline_ms);
}

long long e2e_mark(struct e2e *e)
{
    cJSON *log = NULL;
    /* Asking for what came after the largest id returns nothing but last_id. */
    sbtest_call(&e->sb, "GET", "/_sandbox/requests?since=9000000000000000000", NULL, NULL, &log,
                NULL);
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(log, "last_id");
    long long id = cJSON_IsNumber(last) ? (long long)last->valuedouble : 0;
    cJSON_Delete(log);
    return id;
}

cJSON *e2e_requests(struct e2e *e, long long since)
{
    char *path = xasprintf("/_sandbox/requests?since=%lld", since);
    cJSON *log = NULL;
    sbtest_call(&e->sb, "GET", path, NULL, NULL, &log, NULL);
    free(path);
    cJSON *list = cJSON_DetachItemFromObjectCaseSensitive(log, "requests");
    cJSON_Delete(log);
    return list ? list : cJSON_CreateArray();
}

int e2e_count(struct e2e *e, long long since, const char *system, const char *direction,
              const char *method, const char *path_prefix)
{
    char *path = xasprintf("/_sandbox/requests?since=%lld", since);
    cJSON *log = NULL;
    sbtest_call(&e->sb, "GET", path, NULL, NULL, &log, NULL);
    free(path);
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(log, "requests"))
    {
        if (system && strcmp(sbtest_str(r, "system"), system) != 0)
            continue;
        if (direction && strcmp(sbtest_str(r, "direction"), direction) != 0)
            continue;
        if (method && strcmp(sbtest_str(r, "method"), method) != 0)
            continue;
        if (path_prefix && strncmp(sbtest_str(r, "path"), path_prefix, strlen(path_prefix)) != 0)
            continue;
        n++;
    }
    cJSON_Delete(log);
    return n;
}

void e2e_report_calls(struct e2e *e, const char *label, long long since)
{
    int sf = e2e_count(e, since, "salesforce", "in", NULL, NULL);
    int hs = e2e_count(e, since, "hubspot", "in", NULL, NULL);
    printf("api calls: %s: salesforce %d, hubspot %d\n", label, sf, hs);
    char *path = xasprintf("%s/api-calls.txt", itest_env("TEST_TMPDIR"));
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "%s\tsalesforce %d\thubspot %d\n", label, sf, hs);
        fclose(f);
    }
    free(path);
}

char *e2e_last_detail(struct e2e *e, const char *record_id)
{
    const char *params[] = {record_id};
    PGresult *r = PQexecParams(e->svc.db,
                               "SELECT outcome || ': ' || coalesce(detail, '') FROM sync_outcome"
                               " WHERE record_id = $1 ORDER BY id DESC LIMIT 1",
                               1, NULL, params, NULL, NULL, 0);
    char *out = xstrdup(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return out;
}

/* ---- Records as a user sees them ------------------------------------------------------------ */

char *e2e_sf_create(struct e2e *e, const char *type, const char *json)
{
    char *path = xasprintf("/_sandbox/salesforce/records/%s", type);
    cJSON *rec = NULL;
    int status = e2e_sb(e, "POST", path, json, &rec);
    ck_assert_msg(status == 201, "create %s: %d", type, status);
    char *id = xstrdup(sbtest_str(rec, "Id"));
    cJSON_Delete(rec);
    free(path);
    return id;
}

char **e2e_sf_load_opportunities(struct e2e *e, int n, const char *label,
                                 const char *const *contacts)
{
    enum { LOAD_SIZE = 200 };
    size_t roles = 0;
    while (contacts && contacts[roles])
        roles++;
    char **ids = xcalloc((size_t)n, sizeof(char *));
    for (int first = 0; first < n; first += LOAD_SIZE) {
        int count = n - first < LOAD_SIZE ? n - first : LOAD_SIZE;
        struct buf body;
        buf_init(&body, 0);
        buf_append_str(&body, "{\"records\":[");
        for (int i = first; i < first + count; i++) {
            buf_printf(&body,
                       "%s{\"type\":\"Opportunity\",\"fields\":{\"Name\":\"%s %d\","
                       "\"StageName\":\"Prospecting\",\"CloseDate\":\"2026-12-31\","
                       "\"Amount\":%d},\"children\":[",
                       i > first ? "," : "", label, i, 1000 + i);
            for (size_t c = 0; c < roles; c++)
                buf_printf(&body,
                           "%s{\"type\":\"OpportunityContactRole\",\"parent_field\":"
                           "\"OpportunityId\",\"fields\":{\"ContactId\":\"%s\","
                           "\"Role\":\"Decision Maker\"}}",
                           c ? "," : "", contacts[c]);
            buf_append_str(&body, "]}");
        }
        buf_append_str(&body, "]}");
        cJSON *made = NULL;
        ck_assert_int_eq(e2e_sb(e, "POST", "/_sandbox/salesforce/load", body.data, &made), 201);
        buf_clear(&body);
        /* Each opportunity's id comes before its roles' ids. */
        const cJSON *list = cJSON_GetObjectItem(made, "ids");
        ck_assert_int_eq(cJSON_GetArraySize(list), (int)(1 + roles) * count);
        for (int i = 0; i < count; i++)
            ids[first + i] =
                xstrdup(cJSON_GetStringValue(cJSON_GetArrayItem(list, (int)(1 + roles) * i)));
        cJSON_Delete(made);
    }
    return ids;
}

char *e2e_sf_find(struct e2e *e, const char *type, const char *field, const char *value)
{
    char *path = xasprintf("/_sandbox/salesforce/records/%s", type);
    cJSON *all = NULL;
    ck_assert_int_eq(e2e_sb(e, "GET", path, NULL, &all), 200);
    const cJSON *list = cJSON_IsArray(all) ? all : cJSON_GetObjectItem(all, "records");
    char *id = NULL;
    const cJSON *r;
    cJSON_ArrayForEach(r, list)
    {
        if (!id && strcmp(sbtest_str(r, field), value) == 0 &&
            !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "IsDeleted")))
            id = xstrdup(sbtest_str(r, "Id"));
    }
    cJSON_Delete(all);
    free(path);
    return id;
}

void e2e_sf_update(struct e2e *e, const char *type, const char *id, const char *json)
{
    char *path = xasprintf("/_sandbox/salesforce/records/%s/%s", type, id);
    int status = e2e_sb(e, "PATCH", path, json, NULL);
    ck_assert_msg(status == 200 || status == 204, "update %s %s: %d", type, id, status);
    free(path);
}

cJSON *e2e_sf_get(struct e2e *e, const char *type, const char *id)
{
    char *path = xasprintf("/_sandbox/salesforce/records/%s/%s", type, id);
    cJSON *rec = NULL;
    int status = e2e_sb(e, "GET", path, NULL, &rec);
    free(path);
    if (status != 200) {
        cJSON_Delete(rec);
        return NULL;
    }
    return rec;
}

void e2e_hs_update(struct e2e *e, const char *type, const char *id, const char *props_json)
{
    char *path = xasprintf("/_sandbox/hubspot/objects/%s/%s", type, id);
    char *body = xasprintf("{\"properties\":%s}", props_json);
    int status = e2e_sb(e, "PATCH", path, body, NULL);
    ck_assert_msg(status == 200, "update %s %s: %d", type, id, status);
    free(body);
    free(path);
}

cJSON *e2e_hs_get(struct e2e *e, const char *type, const char *id)
{
    char *path = xasprintf("/_sandbox/hubspot/objects/%s/%s", type, id);
    cJSON *o = NULL;
    int status = e2e_sb(e, "GET", path, NULL, &o);
    free(path);
    if (status != 200) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

void e2e_hs_associate(struct e2e *e, const char *method, const char *deal_id, const char *to_type,
                      const char *to_id, int type_id)
{
    char *body = type_id ? xasprintf("{\"fromObjectType\":\"deals\",\"fromObjectId\":\"%s\","
                                     "\"toObjectType\":\"%s\",\"toObjectId\":\"%s\","
                                     "\"associationTypeId\":%d}",
                                     deal_id, to_type, to_id, type_id)
                         : xasprintf("{\"fromObjectType\":\"deals\",\"fromObjectId\":\"%s\","
                                     "\"toObjectType\":\"%s\",\"toObjectId\":\"%s\"}",
                                     deal_id, to_type, to_id);
    cJSON *ans = NULL;
    int status = e2e_sb(e, method, "/_sandbox/hubspot/associations", body, &ans);
    ck_assert_msg(status == 200 || status == 201 || status == 204, "associations: %d", status);
    cJSON_Delete(ans);
    free(body);
}

int e2e_deal_contacts(struct e2e *e, const char *deal_id)
{
    cJSON *d = e2e_hs_get(e, "deals", deal_id);
    int n = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(d, "associations"))
    {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(a, "toObjectType"));
        n += type && strcmp(type, "contacts") == 0;
    }
    cJSON_Delete(d);
    return n;
}

const char *e2e_primary_company(struct e2e *e, const char *deal_id, char *out, size_t n)
{
    cJSON *d = e2e_hs_get(e, "deals", deal_id);
    const cJSON *a;
    snprintf(out, n, "%s", "");
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(d, "associations"))
    {
        const cJSON *t = cJSON_GetObjectItem(a, "associationTypeId");
        if (strcmp(sbtest_str(a, "toObjectType"), "companies") == 0 && cJSON_IsNumber(t) &&
            t->valueint == 5)
            snprintf(out, n, "%s", sbtest_str(a, "toObjectId"));
    }
    cJSON_Delete(d);
    return out;
}

char *e2e_deal_id_of(struct e2e *e, const char *opp)
{
    const char *params[] = {opp};
    PGresult *r = PQexecParams(e->svc.db,
                               "SELECT hs_id FROM record_link WHERE kind = 'opportunity' AND"
                               " sf_id = $1",
                               1, NULL, params, NULL, NULL, 0);
    char *id = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                   ? xstrdup(PQgetvalue(r, 0, 0))
                   : NULL;
    PQclear(r);
    return id;
}

const char *e2e_prop(const cJSON *obj, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "properties"), name));
    return s ? s : "";
}

const char *e2e_sf_text(const cJSON *rec, const char *field, char *out, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, field);
    if (cJSON_IsNumber(v))
        snprintf(out, n, "%.15g", v->valuedouble);
    else if (cJSON_IsString(v))
        snprintf(out, n, "%s", v->valuestring);
    else
        snprintf(out, n, "%s", "");
    return out;
}

void e2e_sb_settings(struct e2e *e, const char *settings_json)
{
    int status = e2e_sb(e, "PUT", "/_sandbox/settings", settings_json, NULL);
    ck_assert_msg(status == 200, "sandbox settings %s: %d", settings_json, status);
}
