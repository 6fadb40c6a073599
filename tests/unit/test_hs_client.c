/* test_hs_client.c - the pure part of hs_client: HubSpot error bodies. */
#include <check.h>
#include <stdlib.h>

#include "hs_client.h"

START_TEST(error_bodies)
{
    char *category = NULL, *correlation = NULL, *policy = NULL;
    ck_assert(hs_error_parse(
        "{\"status\":\"error\",\"message\":\"You have reached your daily limit.\","
        "\"errorType\":\"RATE_LIMIT\",\"correlationId\":\"c033cdaa\",\"policyName\":\"DAILY\"}",
        &category, &correlation, &policy));
    ck_assert_str_eq(category, "RATE_LIMIT");
    ck_assert_str_eq(correlation, "c033cdaa");
    ck_assert_str_eq(policy, "DAILY");
    free(category);
    free(correlation);
    free(policy);

    category = correlation = policy = NULL;
    ck_assert(hs_error_parse("{\"status\":\"error\",\"message\":\"Contact already exists.\","
                             "\"category\":\"CONFLICT\",\"correlationId\":\"x\"}",
                             &category, NULL, &policy));
    ck_assert_str_eq(category, "CONFLICT");
    ck_assert_ptr_null(policy);
    free(category);

    category = NULL;
    ck_assert(!hs_error_parse("<html>bad gateway</html>", &category, NULL, NULL));
    ck_assert(!hs_error_parse("[1]", &category, NULL, NULL));
    ck_assert(!hs_error_parse("{\"message\":\"no category\"}", &category, NULL, NULL));
    ck_assert(!hs_error_parse(NULL, &category, NULL, NULL));
    ck_assert_ptr_null(category);
}
END_TEST

START_TEST(options_are_required)
{
    struct hs_client *hs = NULL;
    struct hs_client_options opt = {.base_url = "https://api.hubapi.com"};
    ck_assert_int_eq(hs_client_new(&opt, NULL, &hs), ERR_CONFIG);
    ck_assert_ptr_null(hs);
    opt.access_token = "pat-na1-x";
    ck_assert_int_eq(hs_client_new(&opt, NULL, &hs), ERR_OK);
    ck_assert_int_eq(hs_retry_after_ms(hs), -1);
    /* Bad object types are refused before any I/O (the http client here is NULL). */
    cJSON *obj = NULL;
    ck_assert_int_eq(hs_object_get(hs, "Deals/../x", "1", NULL, NULL, NULL, &obj), ERR_INVALID);
    ck_assert_int_eq(hs_object_archive(hs, "", "1"), ERR_INVALID);
    hs_client_free(hs);
}
END_TEST

Suite *suite_hs_client(void);
Suite *suite_hs_client(void)
{
    Suite *s = suite_create("hs_client");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, error_bodies);
    tcase_add_test(tc, options_are_required);
    suite_add_tcase(s, tc);
    return s;
}
