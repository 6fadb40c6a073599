/* test_http_client.c - http_client against a real HTTP server (the sandbox and its fault
 * injection): status mapping, Retry-After, timeouts, dropped and refused connections. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "itest.h"
#include "sandbox_checks.h"
#include "util.h"

static struct sbtest sb;

static void setup(void)
{
    sbtest_start(&sb, NULL);
}

static void teardown(void)
{
    sbtest_stop(&sb);
}

static enum err get(struct http_client *hc, const char *path, struct http_response *resp)
{
    char *url = xasprintf("%s%s", sb.base, path);
    enum err rc = http_client_request(hc, "GET", url, NULL, NULL, resp);
    free(url);
    return rc;
}

START_TEST(ok_and_not_found_keep_the_body)
{
    struct http_client *hc = http_client_new(NULL);
    struct http_response r;
    ck_assert_int_eq(get(hc, "/_sandbox/health", &r), ERR_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "healthy"));
    ck_assert_uint_eq(r.body_len, strlen(r.body));
    ck_assert_ptr_nonnull(r.content_type);
    http_response_clear(&r);
    /* The same handle again: the connection is reused, the answer is the new one. */
    ck_assert_int_eq(get(hc, "/_sandbox/no-such-route", &r), ERR_NOT_FOUND);
    ck_assert_int_eq(r.status, 404);
    ck_assert_ptr_nonnull(strstr(r.body, "no such control route"));
    http_response_clear(&r);
    http_client_free(hc);
}
END_TEST

START_TEST(rate_limit_carries_retry_after)
{
    sandbox_fault(&sb, "{\"path\":\"/crm/v3/objects/deals\",\"status\":429,"
                       "\"retry_after\":\"3\",\"count\":1,"
                       "\"body\":\"{\\\"status\\\":\\\"error\\\",\\\"policyName\\\":"
                       "\\\"TEN_SECONDLY_ROLLING\\\"}\"}");
    struct http_client *hc = http_client_new(NULL);
    struct http_response r;
    ck_assert_int_eq(get(hc, "/crm/v3/objects/deals", &r), ERR_RATE_LIMIT);
    ck_assert_int_eq(r.status, 429);
    ck_assert_int_eq(r.retry_after_ms, 3000);
    ck_assert_ptr_nonnull(strstr(r.body, "TEN_SECONDLY_ROLLING"));
    http_response_clear(&r);
    http_client_free(hc);
}
END_TEST

START_TEST(server_errors_are_upstream)
{
    sandbox_fault(&sb, "{\"path\":\"/services/data\",\"status\":503,\"count\":1}");
    struct http_client *hc = http_client_new(NULL);
    struct http_response r;
    ck_assert_int_eq(get(hc, "/services/data/v60.0/limits", &r), ERR_UPSTREAM);
    ck_assert_int_eq(r.status, 503);
    http_response_clear(&r);
    http_client_free(hc);
}
END_TEST

START_TEST(held_connection_times_out)
{
    sandbox_fault(&sb, "{\"path\":\"/crm\",\"action\":\"timeout\",\"hold_ms\":10000,"
                       "\"count\":1}");
    struct http_client_options opt = {.timeout_ms = 300};
    struct http_client *hc = http_client_new(&opt);
    struct http_response r;
    ck_assert_int_eq(get(hc, "/crm/v3/objects/deals", &r), ERR_TIMEOUT);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_null(r.body);
    http_client_free(hc);
}
END_TEST

/* A connection closed after the request went out is an answer lost (the request may have been
 * carried out), as a timeout is; a connection never made is upstream. */
START_TEST(dropped_connection_is_an_answer_lost_and_refused_one_upstream)
{
    sandbox_fault(&sb, "{\"path\":\"/crm\",\"action\":\"drop\",\"count\":1}");
    struct http_client *hc = http_client_new(NULL);
    struct http_response r;
    ck_assert_int_eq(get(hc, "/crm/v3/objects/deals", &r), ERR_TIMEOUT);
    ck_assert_int_eq(r.status, 0);
    char *url = xasprintf("http://127.0.0.1:%d/", itest_free_port());
    ck_assert_int_eq(http_client_request(hc, "GET", url, NULL, NULL, &r), ERR_UPSTREAM);
    free(url);
    ck_assert_int_eq(http_client_request(hc, "GET", "ftp://127.0.0.1/", NULL, NULL, &r),
                     ERR_INVALID);
    http_client_free(hc);
}
END_TEST

START_TEST(oversized_answer_is_refused)
{
    struct http_client_options opt = {.max_body = 8};
    struct http_client *hc = http_client_new(&opt);
    struct http_response r;
    ck_assert_int_eq(get(hc, "/_sandbox/health", &r), ERR_TOO_LARGE);
    ck_assert_ptr_null(r.body);
    http_client_free(hc);
}
END_TEST

Suite *suite_http_client(void);
Suite *suite_http_client(void)
{
    Suite *s = suite_create("http_client");
    TCase *tc = tcase_create("sandbox");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, ok_and_not_found_keep_the_body);
    tcase_add_test(tc, rate_limit_carries_retry_after);
    tcase_add_test(tc, server_errors_are_upstream);
    tcase_add_test(tc, held_connection_times_out);
    tcase_add_test(tc, dropped_connection_is_an_answer_lost_and_refused_one_upstream);
    tcase_add_test(tc, oversized_answer_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
