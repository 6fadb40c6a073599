/* ops_doctor.c - `dealsync doctor`: everything an operator must get right before the first sync,
 * checked in order against the database and both CRMs, each miss with how to fix it. Changes
 * nothing. A check that needs an earlier one (Salesforce checks need a login) fails with that
 * reason. */
#include "ops_doctor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "hs_client.h"
#include "http_client.h"
#include "mapping.h"
#include "migrate.h"
#include "register.h"
#include "setup.h"
#include "sf_client.h"
#include "sf_id.h"
#include "sync.h"
#include "util.h"

#define EX_USAGE 64
/* Fewer Salesforce API calls left today than this fails the usage check. */
#define MIN_API_CALLS_LEFT 1000

struct doctor {
    const struct config *cfg;
    struct http_client *hc;
    struct sf_client *sf; /* NULL until the login check passed */
    struct hs_client *hs; /* NULL until the token check passed */
    struct mapping_set *mappings;
    bool is_mappings_ok;
    char *message; /* "Opportunity.<Name>" of the registered outbound message */
    cJSON *results;
    int failed;
};

/* Records one check's result. detail and fix are printf formats only through the helpers. */
static void result(struct doctor *d, const char *name, bool ok, char *detail, const char *fix)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "check", name);
    cJSON_AddBoolToObject(r, "ok", ok);
    cJSON_AddStringToObject(r, "detail", detail ? detail : "");
    if (!ok)
        cJSON_AddStringToObject(r, "fix", fix);
    cJSON_AddItemToArray(d->results, r);
    d->failed += !ok;
    free(detail);
}

static void check_database(struct doctor *d)
{
    PGconn *db = NULL;
    bool is_current = false;
    if (db_open(d->cfg->database_url, &db) != ERR_OK) {
        result(d, "database", false, xstrdup("cannot connect with DATABASE_URL"),
               "check DATABASE_URL (host, port, user, password, database) and that PostgreSQL "
               "accepts connections from here");
        return;
    }
    if (migrate_is_current(db, &is_current) != ERR_OK || !is_current)
        result(d, "database", false, xstrdup("reachable, but migrations are pending"),
               "run dealsync migrate (serve and worker also apply them at start)");
    else
        result(d, "database", true,
               xasprintf("reachable, %d migrations applied", migrate_embedded_count), NULL);
    PQfinish(db);
}

static void check_salesforce_login(struct doctor *d)
{
    const char *fix = "set SALESFORCE_CLIENT_ID with SALESFORCE_CLIENT_SECRET and "
                      "SALESFORCE_REFRESH_TOKEN (or SALESFORCE_USERNAME and "
                      "SALESFORCE_PRIVATE_KEY_FILE) of the connected app; check "
                      "SALESFORCE_LOGIN_URL (test.salesforce.com for a sandbox org)";
    if (!config_has_salesforce_api(d->cfg)) {
        result(d, "salesforce_login", false, xstrdup("no Salesforce credentials configured"), fix);
        return;
    }
    struct sf_client *sf = NULL;
    enum err rc = sync_sf_client_new(d->cfg, d->hc, &sf);
    if (rc == ERR_OK)
        rc = sf_authenticate(sf);
    if (rc != ERR_OK) {
        result(d, "salesforce_login", false, xasprintf("login refused or failed: %s", err_str(rc)),
               fix);
        sf_client_free(sf);
        return;
    }
    d->sf = sf;
    result(d, "salesforce_login", true,
           xasprintf("logged in to %s as user %s", sf_instance_url(sf),
                     sf_user_id(sf) ? sf_user_id(sf) : "(unknown)"),
           NULL);
}

static bool need_salesforce(struct doctor *d, const char *name)
{
    if (!d->sf)
        result(d, name, false, xstrdup("not checked: no Salesforce login"),
               "fix salesforce_login first");
    return d->sf != NULL;
}

static void check_salesforce_permission(struct doctor *d)
{
    const char *name = "salesforce_permission";
    if (!need_salesforce(d, name))
        return;
    bool all = false, metadata = false;
    enum err rc = sf_user_has_permission(d->sf, "PermissionsModifyAllData", &all);
    if (rc == ERR_OK && !all)
        rc = sf_user_has_permission(d->sf, "PermissionsModifyMetadata", &metadata);
    if (rc != ERR_OK)
        result(d, name, false, xasprintf("cannot read the user's permissions: %s", err_str(rc)),
               "check the integration user's API access");
    else if (all || metadata)
        result(d, name, true,
               xstrdup(all ? "the integration user has Modify All Data"
                           : "the integration user has Modify Metadata Through Metadata API "
                             "Functions"),
               NULL);
    else
        result(d, name, false,
               xstrdup("the integration user has neither Modify All Data nor Modify Metadata "
                       "Through Metadata API Functions"),
               "grant one of them to the integration user (a permission set), so that dealsync "
               "can create its deal id field");
}

static void check_salesforce_deal_field(struct doctor *d)
{
    const char *name = "salesforce_deal_id_field";
    const char *field = d->cfg->sf_deal_id_field;
    if (!need_salesforce(d, name))
        return;
    cJSON *describe = NULL;
    enum err rc = sf_sobject_get(d->sf, "Opportunity", "describe", NULL, &describe);
    if (rc != ERR_OK) {
        result(d, name, false, xasprintf("cannot describe Opportunity: %s", err_str(rc)),
               "check the integration user's access to Opportunity");
        return;
    }
    const cJSON *f, *found = NULL;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(describe, "fields"))
    {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "name"));
        if (n && strcasecmp(n, field) == 0)
            found = f;
    }
    if (!found)
        result(d, name, false, xasprintf("Opportunity.%s does not exist", field),
               "start dealsync serve once with the permission above (it creates the field), "
               "or create it in Setup: Text(64), unique, external id; or set "
               "SALESFORCE_DEAL_ID_FIELD to the field you use");
    else if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(found, "updateable")))
        result(d, name, false,
               xasprintf("Opportunity.%s exists but the integration user cannot edit it", field),
               "give the integration user edit access to the field (field-level security)");
    else
        result(d, name, true, xasprintf("Opportunity.%s exists and is editable", field), NULL);
    cJSON_Delete(describe);
}

static void check_salesforce_outbound(struct doctor *d)
{
    const char *name = "salesforce_outbound_message";
    if (!need_salesforce(d, name))
        return;
    char *problem = NULL;
    enum err rc = register_check_salesforce(d->cfg, d->is_mappings_ok ? d->mappings : NULL, d->sf,
                                            &problem, &d->message);
    if (rc != ERR_OK)
        result(d, name, false, xasprintf("cannot read outbound messages: %s", err_str(rc)),
               "check the integration user's API access (Tooling API)");
    else if (problem)
        result(d, name, false, problem,
               "run dealsync register salesforce (with PUBLIC_BASE_URL set to the URL at which "
               "Salesforce reaches dealsync)");
    else
        result(d, name, true, xasprintf("%s sends to this dealsync", d->message), NULL);
}

/* An active flow calls our outbound message: its metadata names the action. */
static void check_salesforce_flow(struct doctor *d)
{
    const char *name = "salesforce_flow";
    if (!need_salesforce(d, name))
        return;
    if (!d->message) {
        result(d, name, false, xstrdup("not checked: no outbound message registered"),
               "fix salesforce_outbound_message first");
        return;
    }
    cJSON *flows = NULL;
    enum err rc =
        sf_tooling_query(d->sf, "SELECT Id, MasterLabel FROM Flow WHERE Status = 'Active'", &flows);
    char *calling = NULL;
    const cJSON *row;
    cJSON_ArrayForEach(row, flows)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "Id"));
        if (rc != ERR_OK || calling || !id || !sf_id_is_valid(id))
            continue;
        char *soql = xasprintf("SELECT Id, Metadata FROM Flow WHERE Id = '%s'", id);
        cJSON *one = NULL;
        rc = sf_tooling_query(d->sf, soql, &one);
        free(soql);
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(one, 0), "Metadata");
        const cJSON *call;
        cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(md, "actionCalls"))
        {
            const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(call, "actionType"));
            const char *action = cJSON_GetStringValue(cJSON_GetObjectItem(call, "actionName"));
            if (type && action && strcmp(type, "outboundMessage") == 0 &&
                strcmp(action, d->message) == 0 && !calling)
                calling = xstrdup(
                    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "MasterLabel")));
        }
        cJSON_Delete(one);
    }
    cJSON_Delete(flows);
    if (rc != ERR_OK)
        result(d, name, false, xasprintf("cannot read flows: %s", err_str(rc)),
               "check the integration user's API access (Tooling API)");
    else if (!calling)
        result(d, name, false,
               xasprintf("no active flow calls the outbound message %s", d->message),
               "in Setup, create a record-triggered flow on Opportunity (after save, when a "
               "record is created or updated) whose action is that outbound message, and "
               "activate it: Salesforce sends outbound messages only when something calls them");
    else
        result(d, name, true, xasprintf("the active flow \"%s\" calls %s", calling, d->message),
               NULL);
    free(calling);
}

static void check_salesforce_usage(struct doctor *d)
{
    const char *name = "salesforce_api_usage";
    if (!need_salesforce(d, name))
        return;
    cJSON *limits = NULL;
    enum err rc = sf_limits(d->sf, &limits);
    const cJSON *daily = cJSON_GetObjectItemCaseSensitive(limits, "DailyApiRequests");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(daily, "Max");
    const cJSON *left = cJSON_GetObjectItemCaseSensitive(daily, "Remaining");
    if (rc != ERR_OK || !cJSON_IsNumber(max) || !cJSON_IsNumber(left))
        result(d, name, false, xasprintf("cannot read the API limits: %s", err_str(rc)),
               "check the integration user's API access");
    else if (left->valuedouble < MIN_API_CALLS_LEFT)
        result(d, name, false,
               xasprintf("%.0f of %.0f daily API calls left", left->valuedouble, max->valuedouble),
               "wait for the 24-hour window to free calls, or raise the org's API allowance; "
               "dealsync retries calls refused with REQUEST_LIMIT_EXCEEDED");
    else
        result(d, name, true,
               xasprintf("%.0f of %.0f daily API calls left", left->valuedouble, max->valuedouble),
               NULL);
    cJSON_Delete(limits);
}

/* The token is valid and reads what dealsync reads: a 403 names the missing scope. */
static void check_hubspot_token(struct doctor *d)
{
    const char *name = "hubspot_token";
    const char *fix = "set HUBSPOT_ACCESS_TOKEN to the private app's token, with the scopes "
                      "crm.objects.deals.read/write, crm.objects.contacts.read/write, "
                      "crm.objects.companies.read/write, crm.objects.owners.read, "
                      "crm.schemas.deals.read/write, crm.schemas.contacts.write and "
                      "crm.schemas.companies.write";
    if (!config_has_hubspot_api(d->cfg)) {
        result(d, name, false, xstrdup("HUBSPOT_ACCESS_TOKEN is not set"), fix);
        return;
    }
    struct hs_client_options opt = {d->cfg->hubspot_api_base_url, d->cfg->hubspot_access_token};
    struct hs_client *hs = NULL;
    enum err rc = hs_client_new(&opt, d->hc, &hs);
    static const char *const objects[] = {"deals", "contacts", "companies"};
    const char *failed = NULL;
    const char *const none[] = {"0"};
    for (size_t i = 0; rc == ERR_OK && i < 3; i++) {
        struct hs_batch_result res = {0};
        rc = hs_batch_read(hs, objects[i], NULL, "hs_object_id", none, 1, &res);
        hs_batch_result_clear(&res);
        failed = objects[i];
    }
    cJSON *list = NULL;
    if (rc == ERR_OK) {
        failed = "deal pipelines";
        rc = hs_pipelines_list(hs, "deals", &list);
        cJSON_Delete(list);
        list = NULL;
    }
    if (rc == ERR_OK) {
        failed = "deal properties";
        rc = hs_properties_list(hs, "deals", &list);
        cJSON_Delete(list);
    }
    char *owner = NULL;
    if (rc == ERR_OK) {
        failed = "owners";
        rc = hs_owner_find_by_email(hs, "dealsync-doctor@invalid.test", &owner);
        if (rc == ERR_NOT_FOUND)
            rc = ERR_OK;
        free(owner);
    }
    if (rc != ERR_OK) {
        result(d, name, false,
               xasprintf(rc == ERR_AUTH        ? "the token is refused (reading %s)"
                         : rc == ERR_FORBIDDEN ? "the token lacks the scope to read %s"
                                               : "cannot read %s",
                         failed),
               fix);
        hs_client_free(hs);
        return;
    }
    d->hs = hs;
    result(d, name, true,
           xstrdup("the token reads deals, contacts, companies, pipelines, properties and owners"),
           NULL);
}

static void check_hubspot_webhooks(struct doctor *d)
{
    const char *name = "hubspot_webhooks";
    const char *fix = "set HUBSPOT_APP_ID and HUBSPOT_DEVELOPER_API_KEY and run dealsync register "
                      "hubspot (a private app: copy the target URL and subscriptions in "
                      "HubSpot's UI)";
    if (!d->cfg->hubspot_app_id || !d->cfg->hubspot_developer_api_key || !d->cfg->public_base_url) {
        result(d, name, false,
               xstrdup("not checked: needs HUBSPOT_APP_ID, HUBSPOT_DEVELOPER_API_KEY and "
                       "PUBLIC_BASE_URL"),
               fix);
        return;
    }
    char *problem = NULL;
    enum err rc =
        register_check_hubspot(d->cfg, d->is_mappings_ok ? d->mappings : NULL, d->hc, &problem);
    if (rc != ERR_OK)
        result(d, name, false, xasprintf("cannot read the app's webhooks: %s", err_str(rc)), fix);
    else if (problem)
        result(d, name, false, problem, fix);
    else
        result(d, name, true, xstrdup("target URL and every deal subscription active"), NULL);
}

/* One pipeline per Opportunity record type (or one without record types). */
static void check_pipeline_limit(struct doctor *d)
{
    const char *name = "pipeline_limit";
    if (!need_salesforce(d, name))
        return;
    cJSON *rows = NULL;
    enum err rc = sf_query(d->sf,
                           "SELECT Id FROM RecordType WHERE SobjectType = 'Opportunity' AND "
                           "IsActive = true",
                           &rows);
    int types = cJSON_GetArraySize(rows);
    int pipelines = types > 0 ? types : 1;
    cJSON_Delete(rows);
    if (rc != ERR_OK)
        result(d, name, false, xasprintf("cannot read record types: %s", err_str(rc)),
               "check the integration user's access to RecordType");
    else if (pipelines > d->cfg->pipeline_limit)
        result(d, name, false,
               xasprintf("%d opportunity record types need %d pipelines; SYNC_PIPELINE_LIMIT is "
                         "%d",
                         types, pipelines, d->cfg->pipeline_limit),
               "raise SYNC_PIPELINE_LIMIT (up to what the HubSpot account allows), or accept "
               "that opportunities of the record types past it are skipped");
    else
        result(d, name, true,
               xasprintf("%d pipeline%s needed, limit %d", pipelines, pipelines == 1 ? "" : "s",
                         d->cfg->pipeline_limit),
               NULL);
}

static void check_mappings(struct doctor *d)
{
    const char *name = "mappings";
    const char *fix = "correct MAPPINGS_FILE: each entry names an existing Opportunity field and "
                      "deal property, with rule none, always_salesforce, "
                      "prefer_salesforce_unless_blank or two_way";
    if (!d->is_mappings_ok) {
        result(d, name, false,
               xasprintf("%s cannot be read or parsed (the log above says why)",
                         d->cfg->mappings_file ? d->cfg->mappings_file : "the mappings file"),
               fix);
        return;
    }
    if (!d->sf || !d->hs) {
        d->is_mappings_ok = false;
        result(d, name, false, xstrdup("not checked: needs both logins"),
               "fix salesforce_login and hubspot_token first");
        return;
    }
    char *problem = NULL;
    enum err rc = setup_check_mappings(d->sf, d->hs, d->mappings, &problem);
    d->is_mappings_ok = rc == ERR_OK;
    if (rc == ERR_OK)
        result(d, name, true,
               xasprintf("%zu mapped fields exist on both sides%s", mapping_set_count(d->mappings),
                         d->cfg->mappings_file ? "" : " (standard mappings only)"),
               NULL);
    else
        result(d, name, false,
               problem ? problem : xasprintf("cannot read the schemas: %s", err_str(rc)), fix);
}

static void check_public_url(struct doctor *d)
{
    const char *name = "public_url";
    const char *fix = "set PUBLIC_BASE_URL to the URL at which Salesforce and HubSpot reach this "
                      "dealsync (through your proxy or ingress), and make sure dealsync serve "
                      "runs behind it";
    if (!d->cfg->public_base_url) {
        result(d, name, false, xstrdup("PUBLIC_BASE_URL is not set"), fix);
        return;
    }
    char *url = xasprintf("%s/healthz", d->cfg->public_base_url);
    struct http_response resp;
    http_response_init(&resp);
    const char *headers[] = {NULL};
    enum err rc = http_client_request(d->hc, "GET", url, headers, NULL, &resp);
    if (rc == ERR_OK && resp.status == 200)
        result(d, name, true, xasprintf("%s answers 200", url), NULL);
    else
        result(d, name, false,
               xasprintf("%s does not answer 200 from here (%s, status %ld)", url, err_str(rc),
                         resp.status),
               fix);
    http_response_clear(&resp);
    free(url);
}

static void print_text(const cJSON *results, int failed)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, results)
    {
        bool ok = cJSON_IsTrue(cJSON_GetObjectItem(r, "ok"));
        printf("[%s] %-28s %s\n", ok ? " ok " : "FAIL",
               cJSON_GetStringValue(cJSON_GetObjectItem(r, "check")),
               cJSON_GetStringValue(cJSON_GetObjectItem(r, "detail")));
        if (!ok)
            printf("       %-28s fix: %s\n", "",
                   cJSON_GetStringValue(cJSON_GetObjectItem(r, "fix")));
    }
    if (failed)
        printf("\n%d of %d checks failed\n", failed, cJSON_GetArraySize(results));
    else
        printf("\nall %d checks passed\n", cJSON_GetArraySize(results));
}

int ops_doctor_run(const struct config *cfg, int argc, char **argv)
{
    bool json = argc == 3 && strcmp(argv[2], "--json") == 0;
    if (argc > 3 || (argc == 3 && !json)) {
        fprintf(stderr, "usage: dealsync doctor [--json]\n");
        return EX_USAGE;
    }
    struct http_client_options hopt = {0, cfg->http_timeout_ms, 0};
    struct doctor d = {.cfg = cfg, .hc = http_client_new(&hopt), .results = cJSON_CreateArray()};
    d.is_mappings_ok = sync_load_mappings(cfg, &d.mappings) == ERR_OK;

    /* Mappings before the registrations: those expect the mapped fields only when the
     * mappings are valid (else a bad mapping would show as a registration problem too). */
    check_database(&d);
    check_salesforce_login(&d);
    check_hubspot_token(&d);
    check_mappings(&d);
    check_salesforce_permission(&d);
    check_salesforce_deal_field(&d);
    check_salesforce_outbound(&d);
    check_salesforce_flow(&d);
    check_salesforce_usage(&d);
    check_hubspot_webhooks(&d);
    check_pipeline_limit(&d);
    check_public_url(&d);

    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", d.failed == 0);
        cJSON_AddItemToObject(o, "checks", d.results);
        char *text = cJSON_Print(o);
        puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        print_text(d.results, d.failed);
        cJSON_Delete(d.results);
    }
    int status = d.failed == 0 ? 0 : 1;
    free(d.message);
    mapping_set_free(d.mappings);
    hs_client_free(d.hs);
    sf_client_free(d.sf);
    http_client_free(d.hc);
    return status;
}
