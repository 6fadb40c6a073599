/* test_http_client.c - the pure parts of http_client: status -> err, Retry-After, encoding. */
#include <check.h>
#include <stdlib.h>

#include "http_client.h"

static const struct {
    long status;
    enum err want;
} status_cases[] = {
    {200, ERR_OK},         {201, ERR_OK},        {204, ERR_OK},       {207, ERR_OK},
    {300, ERR_OK},         {400, ERR_INVALID},   {401, ERR_AUTH},     {403, ERR_FORBIDDEN},
    {404, ERR_NOT_FOUND},  {405, ERR_INVALID},   {408, ERR_TIMEOUT},  {409, ERR_CONFLICT},
    {410, ERR_NOT_FOUND},  {413, ERR_TOO_LARGE}, {415, ERR_INVALID},  {423, ERR_RATE_LIMIT},
    {429, ERR_RATE_LIMIT}, {477, ERR_UPSTREAM},  {500, ERR_UPSTREAM}, {502, ERR_UPSTREAM},
    {503, ERR_UPSTREAM},   {524, ERR_UPSTREAM},
};

START_TEST(status_table)
{
    ck_assert_msg(http_status_to_err(status_cases[_i].status) == status_cases[_i].want,
                  "status %ld -> %s, want %s", status_cases[_i].status,
                  err_name(http_status_to_err(status_cases[_i].status)),
                  err_name(status_cases[_i].want));
}
END_TEST

/* 1994-11-06T08:49:37Z in ms: RFC 9110's example date. */
#define RFC_EXAMPLE_MS 784111777000LL

static const struct {
    const char *value;
    long long now_ms;
    bool ok;
    long long want_ms;
} retry_cases[] = {
    {"120", 0, true, 120000},
    {" 0", 0, true, 0},
    {"Sun, 06 Nov 1994 08:49:37 GMT", RFC_EXAMPLE_MS - 5000, true, 5000},
    {"Sun, 06 Nov 1994 08:49:37 GMT", RFC_EXAMPLE_MS + 5000, true, 0},
    {"-5", 0, false, 0},
    {"soon", 0, false, 0},
    {"1.5", 0, false, 0},
    {"Sun, 06 Nov 1994 08:49:37 UTC", 0, false, 0},
    {"Sunday, 06-Nov-94 08:49:37 GMT", 0, false, 0},
    {"", 0, false, 0},
};

START_TEST(retry_after_table)
{
    int64_t got = -42;
    bool ok = http_parse_retry_after(retry_cases[_i].value, retry_cases[_i].now_ms, &got);
    ck_assert_msg(ok == retry_cases[_i].ok, "\"%s\": ok %d", retry_cases[_i].value, ok);
    if (ok)
        ck_assert_int_eq(got, retry_cases[_i].want_ms);
    else
        ck_assert_int_eq(got, -42);
}
END_TEST

START_TEST(url_encoding_keeps_only_unreserved)
{
    char *s = http_url_encode("SELECT Id FROM Opportunity WHERE Name = 'a&b'~x_y.z-1/+");
    ck_assert_str_eq(s, "SELECT%20Id%20FROM%20Opportunity%20WHERE%20Name%20%3D%20%27a%26b%27~x_y."
                        "z-1%2F%2B");
    free(s);
    s = http_url_encode("\xc3\xa9");
    ck_assert_str_eq(s, "%C3%A9");
    free(s);
}
END_TEST

START_TEST(response_init_marks_hints_absent)
{
    struct http_response r;
    http_response_init(&r);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.retry_after_ms, -1);
    ck_assert_int_eq(r.hs_rate_remaining, -1);
    ck_assert_ptr_null(r.body);
    http_response_clear(&r);
    http_response_clear(NULL);
}
END_TEST

Suite *suite_http_client(void);
Suite *suite_http_client(void)
{
    Suite *s = suite_create("http_client");
    TCase *tc = tcase_create("pure");
    tcase_add_loop_test(tc, status_table, 0, (int)(sizeof(status_cases) / sizeof(status_cases[0])));
    tcase_add_loop_test(tc, retry_after_table, 0,
                        (int)(sizeof(retry_cases) / sizeof(retry_cases[0])));
    tcase_add_test(tc, url_encoding_keeps_only_unreserved);
    tcase_add_test(tc, response_init_marks_hints_absent);
    suite_add_tcase(s, tc);
    return s;
}
