/* test_hs_companies.c - the company properties made from a Salesforce account. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hs_companies.h"

static const struct {
    const char *website;
    const char *domain; /* NULL: no domain */
} sites[] = {
    {"https://acme.test", "acme.test"},
    {"http://www.Globex.test/about?x=1", "globex.test"},
    {"initech.test:8080/path", "initech.test"},
    {"  WWW.hooli.test  ", "hooli.test"},
    {"", NULL},
    {NULL, NULL},
};

START_TEST(domain_from_website)
{
    char *d = hs_company_domain(sites[_i].website);
    if (sites[_i].domain)
        ck_assert_str_eq(d, sites[_i].domain);
    else
        ck_assert_ptr_null(d);
    free(d);
}
END_TEST

START_TEST(properties_from_account)
{
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.hs_account_id_property = "salesforceaccountid";
    cJSON *account = cJSON_Parse("{\"Id\":\"0015w000000000AAAA\",\"Name\":\"Acme Corp\","
                                 "\"Website\":\"https://www.acme.test/\",\"Phone\":\"+1 555\","
                                 "\"Industry\":\"Energy\",\"BillingCity\":\"Berlin\","
                                 "\"BillingCountry\":\"Germany\",\"Description\":null}");
    cJSON *p = hs_company_properties(&cfg, account);
    const char *const expect[][2] = {{"name", "Acme Corp"},
                                     {"domain", "acme.test"},
                                     {"phone", "+1 555"},
                                     {"industry", "Energy"},
                                     {"city", "Berlin"},
                                     {"country", "Germany"},
                                     {"salesforceaccountid", "0015w000000000AAAA"}};
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(p, expect[i][0])), expect[i][1]);
    ck_assert_int_eq(cJSON_GetArraySize(p), 7);
    cJSON_Delete(p);
    cJSON_Delete(account);
}
END_TEST

Suite *suite_hs_companies(void);
Suite *suite_hs_companies(void)
{
    Suite *s = suite_create("hs_companies");
    TCase *tc = tcase_create("pure");
    tcase_add_loop_test(tc, domain_from_website, 0, sizeof(sites) / sizeof(sites[0]));
    tcase_add_test(tc, properties_from_account);
    suite_add_tcase(s, tc);
    return s;
}
