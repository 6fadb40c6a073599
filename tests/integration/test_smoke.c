/* test_smoke.c - the integration tier's own preconditions: the throwaway cluster answers. */
#include <check.h>
#include <stdlib.h>

#include "itest.h"

START_TEST(throwaway_cluster_answers)
{
    char *url = itest_db_create("smoke");
    PGconn *db = itest_db_connect(url);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT 41 + 1"), 42);
    PQfinish(db);
    free(url);
}
END_TEST

Suite *suite_smoke(void);
Suite *suite_smoke(void)
{
    Suite *s = suite_create("smoke");
    TCase *tc = tcase_create("postgres");
    tcase_add_test(tc, throwaway_cluster_answers);
    suite_add_tcase(s, tc);
    return s;
}
