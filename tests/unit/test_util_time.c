/* test_util_time.c - util's ISO 8601 parsing and formatting (Salesforce and HubSpot dates). */
#include <check.h>

#include "util.h"

static const struct {
    const char *s;
    bool ok;
    long long ms;
} parse_cases[] = {
    {"1970-01-01", true, 0},
    {"2017-04-03", true, 1491177600000LL},
    {"2013-05-20T20:49:32.000+0000", true, 1369082972000LL},
    {"2013-05-20T20:49:32.000Z", true, 1369082972000LL},
    {"2013-05-20T20:49:32Z", true, 1369082972000LL},
    {"2013-05-20T22:49:32.000+02:00", true, 1369082972000LL},
    {"2013-05-20T15:49:32.5-0500", true, 1369082972500LL},
    {"2019-12-07T16:50:06.678Z", true, 1575737406678LL},
    {"2024-02-29", true, 1709164800000LL},
    {"1969-12-31T23:59:59.999Z", true, -1},
    {"2023-02-29", false, 0},
    {"2013-13-01", false, 0},
    {"2013-05-20T24:00:00Z", false, 0},
    {"2013-05-20T20:49:32", false, 0},
    {"2013-05-20T20:49:32.Z", false, 0},
    {"2013-05-20 20:49:32Z", false, 0},
    {"2013-5-20", false, 0},
    {"2013-05-20Z", false, 0},
    {"1491177600000", false, 0},
    {"", false, 0},
};

START_TEST(parse_table)
{
    int64_t got = 42;
    bool ok = util_parse_iso8601_ms(parse_cases[_i].s, &got);
    ck_assert_msg(ok == parse_cases[_i].ok, "\"%s\": ok %d", parse_cases[_i].s, ok);
    ck_assert_int_eq(got, ok ? parse_cases[_i].ms : 42);
}
END_TEST

START_TEST(format_round_trips)
{
    char out[UTIL_ISO8601_LEN];
    util_format_iso8601_ms(1369082972000LL, out);
    ck_assert_str_eq(out, "2013-05-20T20:49:32.000Z");
    util_format_iso8601_ms(-1, out);
    ck_assert_str_eq(out, "1969-12-31T23:59:59.999Z");
    util_format_date(1491177600000LL + 86399999, out);
    ck_assert_str_eq(out, "2017-04-03");
    util_format_date(1709164800000LL, out);
    ck_assert_str_eq(out, "2024-02-29");
    ck_assert_int_eq(util_days_from_civil(2000, 3, 1), 11017);
}
END_TEST

Suite *suite_util_time(void);
Suite *suite_util_time(void)
{
    Suite *s = suite_create("util_time");
    TCase *tc = tcase_create("iso8601");
    tcase_add_loop_test(tc, parse_table, 0, (int)(sizeof(parse_cases) / sizeof(parse_cases[0])));
    tcase_add_test(tc, format_round_trips);
    suite_add_tcase(s, tc);
    return s;
}
