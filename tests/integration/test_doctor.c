/* test_doctor.c - `dealsync doctor` against the sandbox and a running dealsync: every check
 * passes when everything is in place, and each check fails once, alone or with the checks that
 * need it, when its one thing is wrong. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <cjson/cJSON.h>

#include "clitest.h"
#include "e2e.h"
#include "itest.h"
#include "sbtest.h"
#include "util.h"

static const char *const all_checks[] = {"database",
                                         "salesforce_login",
                                         "hubspot_token",
                                         "mappings",
                                         "salesforce_permission",
                                         "salesforce_deal_id_field",
                                         "salesforce_outbound_message",
                                         "salesforce_flow",
                                         "salesforce_api_usage",
                                         "hubspot_webhooks",
                                         "pipeline_limit",
                                         "public_url",
                                         NULL};

/* Runs doctor --json with the e2e's environment plus extra; checks the exit status and that
 * exactly the checks named in failing (comma-separated, "" for none) failed, each with a fix. */
static void doctor(struct e2e *e, const char *const *extra, const char *failing)
{
    char **env = e2e_dealsync_env(e, extra);
    const char *argv[] = {itest_env("DEALSYNC_BIN"), "doctor", "--json", NULL};
    char *out = NULL, *err = NULL;
    int status = clitest_run(argv, (const char *const *)env, &out, &err);
    e2e_env_free(env);
    cJSON *answer = cJSON_Parse(out);
    ck_assert_msg(answer != NULL, "doctor (exit %d) printed no JSON: %s / %s", status, err, out);
    ck_assert_int_eq(status, failing[0] ? 1 : 0);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(answer, "ok")) == (failing[0] == '\0'));
    const cJSON *checks = cJSON_GetObjectItem(answer, "checks");
    size_t n = 0;
    for (; all_checks[n]; n++) {
        const cJSON *c = cJSON_GetArrayItem(checks, (int)n);
        ck_assert_str_eq(sbtest_str(c, "check"), all_checks[n]);
        char *needle = xasprintf(",%s,", all_checks[n]);
        char *list = xasprintf(",%s,", failing);
        bool should_fail = strstr(list, needle) != NULL;
        bool ok = cJSON_IsTrue(cJSON_GetObjectItem(c, "ok"));
        ck_assert_msg(ok != should_fail, "%s: ok=%d, expected %s (%s) with failing=%s",
                      all_checks[n], ok, should_fail ? "a failure" : "a pass",
                      sbtest_str(c, "detail"), failing);
        if (!ok)
            ck_assert_msg(strlen(sbtest_str(c, "fix")) > 10, "%s has no fix", all_checks[n]);
        free(list);
        free(needle);
    }
    ck_assert_int_eq(cJSON_GetArraySize(checks), (int)n);
    cJSON_Delete(answer);
    free(out);
    free(err);
}

static void sandbox_setting(struct e2e *e, const char *json)
{
    ck_assert_int_eq(e2e_sb(e, "PUT", "/_sandbox/settings", json, NULL), 200);
}

START_TEST(doctor_passes_when_all_is_in_place_and_fails_each_check_once)
{
    struct e2e e;
    e2e_start(&e, "doctor", NULL, NULL, true);

    /* The outbound message is registered, but no flow calls it yet. */
    doctor(&e, NULL, "salesforce_flow");
    ck_assert_int_eq(
        e2e_sb(&e, "POST", "/services/data/v60.0/tooling/sobjects/Flow",
               "{\"FullName\":\"dealsync_opportunity_flow\",\"Metadata\":{\"label\":\"dealsync\","
               "\"processType\":\"AutoLaunchedFlow\",\"status\":\"Active\",\"start\":{"
               "\"object\":\"Opportunity\",\"triggerType\":\"RecordAfterSave\","
               "\"recordTriggerType\":\"CreateAndUpdate\"},\"actionCalls\":[{\"name\":\"send\","
               "\"actionType\":\"outboundMessage\",\"actionName\":\"Opportunity.dealsync\"}]}}",
               NULL),
        201);
    doctor(&e, NULL, "");

    const char *bad_db[] = {"DATABASE_URL=postgresql://dealsync@127.0.0.1:1/nothing", NULL};
    doctor(&e, bad_db, "database");

    const char *bad_sf[] = {"SALESFORCE_REFRESH_TOKEN=not-the-refresh-token", NULL};
    doctor(&e, bad_sf,
           "salesforce_login,mappings,salesforce_permission,salesforce_deal_id_field,"
           "salesforce_outbound_message,salesforce_flow,salesforce_api_usage,pipeline_limit");

    const char *bad_hs[] = {"HUBSPOT_ACCESS_TOKEN=not-the-token", NULL};
    doctor(&e, bad_hs, "hubspot_token,mappings");

    char *path = xasprintf("%s/doctor-mappings.json", itest_env("TEST_TMPDIR"));
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[{\"salesforce\":\"NextStep\",\"hubspot\":\"no_such_property\",\"rule\":\"two_way\"}]",
          f);
    fclose(f);
    char *mappings = xasprintf("MAPPINGS_FILE=%s", path);
    const char *bad_map[] = {mappings, NULL};
    doctor(&e, bad_map, "mappings");
    free(mappings);
    free(path);

    sandbox_setting(&e, "{\"sf_permissions\":\"none\"}");
    doctor(&e, NULL, "salesforce_permission");
    sandbox_setting(&e, "{\"sf_permissions\":null}");

    const char *bad_field[] = {"SALESFORCE_DEAL_ID_FIELD=No_Such_Field__c", NULL};
    doctor(&e, bad_field, "salesforce_deal_id_field");

    sandbox_setting(&e, "{\"sf_api_daily_limit\":600}");
    doctor(&e, NULL, "salesforce_api_usage");
    sandbox_setting(&e, "{\"sf_api_daily_limit\":null}");

    const char *bad_key[] = {"HUBSPOT_DEVELOPER_API_KEY=not-the-key", NULL};
    doctor(&e, bad_key, "hubspot_webhooks");

    const char *low_limit[] = {"SYNC_PIPELINE_LIMIT=1", NULL};
    doctor(&e, low_limit, "pipeline_limit");

    /* The outbound message is gone: nothing sends, so no flow can call it either. */
    cJSON *oms = NULL;
    ck_assert_int_eq(
        e2e_sb(&e, "GET", "/_sandbox/salesforce/records/WorkflowOutboundMessage", NULL, &oms), 200);
    const cJSON *om;
    cJSON_ArrayForEach(om, oms)
    {
        char *del = xasprintf("/services/data/v60.0/tooling/sobjects/WorkflowOutboundMessage/%s",
                              sbtest_str(om, "Id"));
        ck_assert_int_eq(e2e_sb(&e, "DELETE", del, NULL, NULL), 204);
        free(del);
    }
    cJSON_Delete(oms);
    doctor(&e, NULL, "salesforce_outbound_message,salesforce_flow");

    /* dealsync itself stopped: PUBLIC_BASE_URL answers nothing. */
    char *db = xasprintf("DATABASE_URL=%s", e.svc.db_url);
    char *url = xasprintf("PUBLIC_BASE_URL=%s", e.svc.base);
    ck_assert_int_eq(svc_stop(&e.svc), 0);
    const char *stopped[] = {db, url, NULL};
    doctor(&e, stopped, "salesforce_outbound_message,salesforce_flow,public_url");
    free(db);
    free(url);
    sbtest_stop(&e.sb);
    free(e.sf_token);
    free(e.org_id);
    e2e_env_free(e.env);
}
END_TEST

Suite *suite_doctor(void);
Suite *suite_doctor(void)
{
    Suite *s = suite_create("doctor");
    TCase *tc = tcase_create("doctor");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, doctor_passes_when_all_is_in_place_and_fails_each_check_once);
    suite_add_tcase(s, tc);
    return s;
}
