/* test_api_budget.c - the API budget's pure helpers: Salesforce's Sforce-Limit-Info header and
 * the endpoint label of dealsync_api_calls_total (bounded: record ids never become labels). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "api_budget.h"

START_TEST(limit_info_gives_used_and_max)
{
    static const struct {
        const char *in;
        bool ok;
        long long used, max;
    } cases[] = {
        {"api-usage=18/5000", true, 18, 5000},
        {"api-usage=10018/100000", true, 10018, 100000},
        {"per-app-api-usage=17/250(appName=sample), api-usage=25/5000", true, 25, 5000},
        {"api-usage=0/15000,per-app-api-usage=1/250(appName=x)", true, 0, 15000},
        {"per-app-api-usage=17/250(appName=sample)", false, 0, 0},
        {"api-usage=18", false, 0, 0},
        {"api-usage=18/0", false, 0, 0},
        {"api-usage=-1/10", false, 0, 0},
        {"", false, 0, 0},
        {NULL, false, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t used = -7, max = -7;
        bool ok = api_budget_parse_limit_info(cases[i].in, &used, &max);
        ck_assert_msg(ok == cases[i].ok, "case %zu", i);
        if (ok) {
            ck_assert_int_eq(used, cases[i].used);
            ck_assert_int_eq(max, cases[i].max);
        }
    }
}
END_TEST

START_TEST(endpoint_label_hides_ids)
{
    static const char *const cases[][2] = {
        {"/crm/v3/objects/deals/123456", "/crm/v3/objects/deals/{id}"},
        {"/crm/v3/objects/deals/batch/upsert", "/crm/v3/objects/deals/batch/upsert"},
        {"/crm/v3/objects/deals/search", "/crm/v3/objects/deals/search"},
        {"/crm/v4/objects/deals/77/associations/contacts/88",
         "/crm/v4/objects/deals/{id}/associations/contacts/{id}"},
        {"/crm/v3/owners?email=a%40b.c", "/crm/v3/owners"},
        {"/services/data/v60.0/query", "/services/data/v60.0/query"},
        {"/services/data/v60.0/query/01gD0000002HU6KIAW-2000", "/services/data/v60.0/query/{id}"},
        {"/services/data/v60.0/sobjects/Opportunity/006000000000001AAA",
         "/services/data/v60.0/sobjects/Opportunity/{id}"},
        {"/services/data/v60.0/composite/sobjects/Opportunity/HubSpot_Deal_Id__c",
         "/services/data/v60.0/composite/sobjects/Opportunity/HubSpot_Deal_Id__c"},
        {"/a\"b", "/a_b"},
        {"", "/"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = api_budget_endpoint(cases[i][0]);
        ck_assert_str_eq(got, cases[i][1]);
        free(got);
    }
}
END_TEST

Suite *suite_api_budget(void);
Suite *suite_api_budget(void)
{
    Suite *s = suite_create("api_budget");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, limit_info_gives_used_and_max);
    tcase_add_test(tc, endpoint_label_hides_ids);
    suite_add_tcase(s, tc);
    return s;
}
