/* test_err.c - the error table: text, names and which errors the worker retries. */
#include <check.h>
#include <string.h>

#include "err.h"

START_TEST(transient_errors_are_the_retryable_ones)
{
    ck_assert(err_is_transient(ERR_DB));
    ck_assert(err_is_transient(ERR_UPSTREAM));
    ck_assert(err_is_transient(ERR_RATE_LIMIT));
    ck_assert(err_is_transient(ERR_TIMEOUT));
    ck_assert(!err_is_transient(ERR_OK));
    ck_assert(!err_is_transient(ERR_INVALID));
    ck_assert(!err_is_transient(ERR_AUTH));
    ck_assert(!err_is_transient(ERR_NOT_FOUND));
}
END_TEST

START_TEST(text_and_name_come_from_one_table)
{
    ck_assert_str_eq(err_str(ERR_INVALID), "invalid input");
    ck_assert_str_eq(err_name(ERR_RATE_LIMIT), "RATE_LIMIT");
    ck_assert_str_eq(err_str((enum err)999), "unknown error");
    ck_assert(!err_is_transient((enum err)999));
}
END_TEST

Suite *suite_err(void);
Suite *suite_err(void)
{
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, transient_errors_are_the_retryable_ones);
    tcase_add_test(tc, text_and_name_come_from_one_table);
    suite_add_tcase(s, tc);
    return s;
}
