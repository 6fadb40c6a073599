/* test_register.c - `dealsync register` against the sandbox: one outbound message and the
 * deal subscriptions after the first run, nothing written by the second, reuse of what an
 * operator made (inactive subscription, message with our endpoint), refusal of a conflicting
 * message, the token in the endpoint, custom mapping fields, and missing credentials. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "e2e.h"
#include "itest.h"
#include "regtest.h"
#include "sbtest.h"
#include "util.h"

#define PUBLIC_BASE "http://127.0.0.1:9"
#define API "/services/data/v60.0"

static const char *const deal_properties[] = {"dealname",    "amount",           "closedate",
                                              "dealstage",   "pipeline",         "dealtype",
                                              "description", "hubspot_owner_id", NULL};
static const char *const om_fields[] = {E2E_OM_FIELDS, NULL};

static bool has_string(const cJSON *arr, const char *s)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, s) == 0)
            return true;
    }
    return false;
}

static const cJSON *metadata(const cJSON *om)
{
    return cJSON_GetObjectItemCaseSensitive(om, "Metadata");
}

/* Every wanted subscription exists once and is active; returns how many there are. */
static int check_subscriptions(const cJSON *subs)
{
    static const char *const events[] = {"deal.creation", "deal.deletion",
                                         "deal.associationChange"};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *s = regtest_find_subscription(subs, events[i], NULL);
        ck_assert_msg(s != NULL, "no subscription %s", events[i]);
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "active")));
    }
    for (size_t i = 0; deal_properties[i]; i++) {
        const cJSON *s = regtest_find_subscription(subs, "deal.propertyChange", deal_properties[i]);
        ck_assert_msg(s != NULL, "no propertyChange subscription for %s", deal_properties[i]);
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "active")));
    }
    return cJSON_GetArraySize(subs);
}

/* A Salesforce access token for direct Tooling calls. Caller frees. */
static char *sf_token(const struct sbtest *sb)
{
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    cJSON *answer = NULL;
    ck_assert_int_eq(sbtest_call(sb, "POST", "/services/oauth2/token", headers,
                                 "grant_type=refresh_token&client_id=sandbox-client-id"
                                 "&client_secret=sandbox-client-secret"
                                 "&refresh_token=sandbox-refresh-token",
                                 &answer, NULL),
                     200);
    char *token = xstrdup(sbtest_str(answer, "access_token"));
    cJSON_Delete(answer);
    return token;
}

static int sf_tooling_post(const struct sbtest *sb, const char *type, const char *body)
{
    char *token = sf_token(sb);
    char *auth = xasprintf("Authorization: Bearer %s", token);
    char *path = xasprintf(API "/tooling/sobjects/%s", type);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    int status = sbtest_call(sb, "POST", path, headers, body, NULL, NULL);
    free(path);
    free(auth);
    free(token);
    return status;
}

START_TEST(register_creates_once_and_second_run_writes_nothing)
{
    struct sbtest sb;
    sbtest_start(&sb, NULL);
    char **env = regtest_env(&sb, PUBLIC_BASE "/", NULL);
    ck_assert_int_eq(regtest_register((const char *const *)env, NULL, "register_once"), 0);

    cJSON *oms = regtest_outbound_messages(&sb);
    ck_assert_int_eq(cJSON_GetArraySize(oms), 1);
    const cJSON *om = cJSON_GetArrayItem(oms, 0);
    char *om_id = xstrdup(sbtest_str(om, "Id"));
    ck_assert_str_eq(sbtest_str(om, "FullName"), "Opportunity.dealsync_opportunity");
    /* SALESFORCE_WEBHOOK_TOKEN is unset: register generated one, put it in the endpoint and
     * printed it for the operator. */
    const char *url = sbtest_str(metadata(om), "endpointUrl");
    const char *prefix = PUBLIC_BASE "/webhooks/salesforce?token=";
    ck_assert_msg(strncmp(url, prefix, strlen(prefix)) == 0, "endpoint %s", url);
    char *token = xstrdup(url + strlen(prefix));
    ck_assert_uint_eq(strlen(token), 43);
    char *log_path = xasprintf("%s/register_once.log", itest_env("TEST_TMPDIR"));
    char *log = itest_read_file(log_path, NULL);
    char *line = xasprintf("SALESFORCE_WEBHOOK_TOKEN=%s\n", token);
    ck_assert_ptr_nonnull(strstr(log, line));
    /* Printed for the operator; never in a JSON log line. */
    for (char *l = log; (l = strstr(l, token)) != NULL; l++) {
        const char *start = l;
        while (start > log && start[-1] != '\n')
            start--;
        ck_assert_msg(start[0] != '{', "the token is in a log line");
    }
    free(log);
    ck_assert_str_eq(sbtest_str(metadata(om), "integrationUser"), "integration@dealsync.test");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(metadata(om), "fields");
    for (size_t i = 0; om_fields[i]; i++)
        ck_assert_msg(has_string(fields, om_fields[i]), "field %s not sent", om_fields[i]);
    cJSON_Delete(oms);

    cJSON *subs = regtest_subscriptions(&sb);
    ck_assert_int_eq(check_subscriptions(subs), 11);
    char *printed = cJSON_PrintUnformatted(subs);
    cJSON_Delete(subs);
    cJSON *settings = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "GET",
                                 "/webhooks/v3/" REGTEST_HS_APP_ID
                                 "/settings?hapikey=" REGTEST_HS_DEV_KEY,
                                 NULL, NULL, &settings, NULL),
                     200);
    ck_assert_str_eq(sbtest_str(settings, "targetUrl"), PUBLIC_BASE "/webhooks/hubspot");
    cJSON_Delete(settings);

    /* Again: the same state, and not one write reaches either API. */
    long long mark = regtest_mark(&sb);
    ck_assert_int_eq(regtest_register((const char *const *)env, NULL, "register_once"), 0);
    ck_assert_int_eq(regtest_writes_since(&sb, mark), 0);
    oms = regtest_outbound_messages(&sb);
    ck_assert_int_eq(cJSON_GetArraySize(oms), 1);
    ck_assert_str_eq(sbtest_str(cJSON_GetArrayItem(oms, 0), "Id"), om_id);
    cJSON_Delete(oms);
    /* The second run, still without the variable, prints the token in use again. */
    log = itest_read_file(log_path, NULL);
    char *first = strstr(log, line);
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(strstr(first + 1, line));
    free(log);
    free(line);
    free(log_path);
    free(token);
    subs = regtest_subscriptions(&sb);
    char *again = cJSON_PrintUnformatted(subs);
    ck_assert_str_eq(again, printed);
    cJSON_Delete(subs);
    free(again);
    free(printed);
    free(om_id);
    regtest_env_free(env);
    sbtest_stop(&sb);
}
END_TEST

START_TEST(register_reuses_what_exists_and_activates_inactive)
{
    struct sbtest sb;
    sbtest_start(&sb, NULL);
    /* An operator made a message with our endpoint by hand, and an inactive subscription. */
    ck_assert_int_eq(
        sf_tooling_post(
            &sb, "WorkflowOutboundMessage",
            "{\"FullName\":\"Opportunity.HandMade\",\"Metadata\":{\"apiVersion\":60.0,"
            "\"endpointUrl\":\"" PUBLIC_BASE "/webhooks/salesforce\",\"fields\":["
            "\"Id\",\"Name\",\"StageName\",\"Amount\",\"CloseDate\",\"OwnerId\","
            "\"AccountId\",\"RecordTypeId\",\"Type\",\"Description\","
            "\"LastModifiedDate\",\"SystemModstamp\",\"LastModifiedById\",\"Probability\"],"
            "\"integrationUser\":\"integration@dealsync.test\","
            "\"name\":\"Hand made\"}}"),
        201);
    cJSON *made = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "POST",
                                 "/webhooks/v3/" REGTEST_HS_APP_ID
                                 "/subscriptions?hapikey=" REGTEST_HS_DEV_KEY,
                                 (const char *const[]){"Content-Type: application/json", NULL},
                                 "{\"eventType\":\"deal.creation\",\"active\":false}", &made, NULL),
                     201);
    char *sub_id = xstrdup(sbtest_str(made, "id"));
    cJSON_Delete(made);

    char **env = regtest_env(&sb, PUBLIC_BASE, NULL);
    ck_assert_int_eq(regtest_register((const char *const *)env, NULL, "register_reuse"), 0);
    cJSON *oms = regtest_outbound_messages(&sb);
    ck_assert_int_eq(cJSON_GetArraySize(oms), 1);
    ck_assert_str_eq(sbtest_str(cJSON_GetArrayItem(oms, 0), "Name"), "HandMade");
    cJSON_Delete(oms);
    cJSON *subs = regtest_subscriptions(&sb);
    ck_assert_int_eq(check_subscriptions(subs), 11);
    ck_assert_str_eq(sbtest_str(regtest_find_subscription(subs, "deal.creation", NULL), "id"),
                     sub_id);
    cJSON_Delete(subs);
    free(sub_id);
    regtest_env_free(env);
    sbtest_stop(&sb);
}
END_TEST

START_TEST(register_refuses_our_name_with_another_endpoint)
{
    struct sbtest sb;
    sbtest_start(&sb, NULL);
    ck_assert_int_eq(
        sf_tooling_post(&sb, "WorkflowOutboundMessage",
                        "{\"FullName\":\"Opportunity.dealsync_opportunity\",\"Metadata\":{"
                        "\"apiVersion\":60.0,\"endpointUrl\":\"https://old.example.com/sf\","
                        "\"fields\":[\"Id\"],\"integrationUser\":\"integration@dealsync.test\","
                        "\"name\":\"old\"}}"),
        201);
    char **env = regtest_env(&sb, PUBLIC_BASE, NULL);
    long long mark = regtest_mark(&sb);
    ck_assert_int_eq(regtest_register((const char *const *)env, "salesforce", "register_conflict"),
                     1);
    ck_assert_int_eq(regtest_writes_since(&sb, mark), 0);
    cJSON *oms = regtest_outbound_messages(&sb);
    ck_assert_int_eq(cJSON_GetArraySize(oms), 1);
    ck_assert_str_eq(sbtest_str(metadata(cJSON_GetArrayItem(oms, 0)), "endpointUrl"),
                     "https://old.example.com/sf");
    cJSON_Delete(oms);
    regtest_env_free(env);
    sbtest_stop(&sb);
}
END_TEST

START_TEST(register_sends_token_and_custom_mapping_fields)
{
    struct sbtest sb;
    sbtest_start(&sb, NULL);
    ck_assert_int_eq(sf_tooling_post(&sb, "CustomField",
                                     "{\"FullName\":\"Opportunity.Region__c\",\"Metadata\":{"
                                     "\"label\":\"Region\",\"type\":\"Text\",\"length\":80}}"),
                     201);
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/properties/deals",
                               "{\"name\":\"region\",\"label\":\"Region\",\"type\":\"string\","
                               "\"fieldType\":\"text\",\"groupName\":\"dealinformation\"}",
                               NULL),
                     201);
    char *mappings = xasprintf("%s/register-mappings.json", itest_env("TEST_TMPDIR"));
    FILE *f = fopen(mappings, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[{\"salesforce\":\"Region__c\",\"hubspot\":\"region\",\"rule\":\"two_way\"}]", f);
    fclose(f);
    char *mapping_env = xasprintf("MAPPINGS_FILE=%s", mappings);
    const char *extra[] = {"SALESFORCE_WEBHOOK_TOKEN=a b&c", mapping_env, NULL};
    char **env = regtest_env(&sb, PUBLIC_BASE, extra);
    ck_assert_int_eq(regtest_register((const char *const *)env, NULL, "register_token"), 0);

    cJSON *oms = regtest_outbound_messages(&sb);
    ck_assert_int_eq(cJSON_GetArraySize(oms), 1);
    const cJSON *md = metadata(cJSON_GetArrayItem(oms, 0));
    ck_assert_str_eq(sbtest_str(md, "endpointUrl"),
                     PUBLIC_BASE "/webhooks/salesforce?token=a%20b%26c");
    ck_assert(has_string(cJSON_GetObjectItemCaseSensitive(md, "fields"), "Region__c"));
    cJSON_Delete(oms);
    cJSON *subs = regtest_subscriptions(&sb);
    ck_assert_int_eq(check_subscriptions(subs), 12);
    ck_assert_ptr_nonnull(regtest_find_subscription(subs, "deal.propertyChange", "region"));
    cJSON_Delete(subs);
    /* The token never reaches the log. */
    char *log_path = xasprintf("%s/register_token.log", itest_env("TEST_TMPDIR"));
    char *log = itest_read_file(log_path, NULL);
    ck_assert_ptr_null(strstr(log, "a%20b%26c"));
    ck_assert_ptr_null(strstr(log, "a b&c"));
    free(log);
    free(log_path);
    regtest_env_free(env);
    free(mapping_env);
    free(mappings);
    sbtest_stop(&sb);
}
END_TEST

START_TEST(register_without_credentials_exits_78_and_calls_nothing)
{
    struct sbtest sb;
    sbtest_start(&sb, NULL);
    const char *unset[] = {"SALESFORCE_CLIENT_ID=", "HUBSPOT_DEVELOPER_API_KEY=", NULL};
    char **env = regtest_env(&sb, PUBLIC_BASE, unset);
    long long mark = regtest_mark(&sb);
    ck_assert_int_eq(regtest_register((const char *const *)env, NULL, "register_nocreds"), 78);
    cJSON *requests = regtest_requests_since(&sb, mark);
    ck_assert_int_eq(cJSON_GetArraySize(requests), 0);
    cJSON_Delete(requests);
    char *log_path = xasprintf("%s/register_nocreds.log", itest_env("TEST_TMPDIR"));
    char *log = itest_read_file(log_path, NULL);
    ck_assert_ptr_nonnull(strstr(log, "SALESFORCE_CLIENT_ID"));
    ck_assert_ptr_nonnull(strstr(log, "HUBSPOT_DEVELOPER_API_KEY"));
    free(log);
    free(log_path);
    /* One side alone needs only that side's credentials. */
    ck_assert_int_eq(regtest_register((const char *const *)env, "hubspot", "register_nocreds"), 78);
    ck_assert_int_eq(regtest_register((const char *const *)env, "bogus", "register_nocreds"), 64);
    regtest_env_free(env);
    const char *hs_only[] = {"SALESFORCE_CLIENT_ID=", NULL};
    env = regtest_env(&sb, PUBLIC_BASE, hs_only);
    ck_assert_int_eq(regtest_register((const char *const *)env, "hubspot", "register_nocreds"), 0);
    cJSON *oms = regtest_outbound_messages(&sb);
    ck_assert_int_eq(cJSON_GetArraySize(oms), 0);
    cJSON_Delete(oms);
    cJSON *subs = regtest_subscriptions(&sb);
    ck_assert_int_eq(check_subscriptions(subs), 11);
    cJSON_Delete(subs);
    regtest_env_free(env);
    sbtest_stop(&sb);
}
END_TEST

Suite *suite_register(void);
Suite *suite_register(void)
{
    Suite *s = suite_create("register");
    TCase *tc = tcase_create("register");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, register_creates_once_and_second_run_writes_nothing);
    tcase_add_test(tc, register_reuses_what_exists_and_activates_inactive);
    tcase_add_test(tc, register_refuses_our_name_with_another_endpoint);
    tcase_add_test(tc, register_sends_token_and_custom_mapping_fields);
    tcase_add_test(tc, register_without_credentials_exits_78_and_calls_nothing);
    suite_add_tcase(s, tc);
    return s;
}
