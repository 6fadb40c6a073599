/* runner.c - one Check SRunner per test tier; the suite list comes from the file names
 * (see the Makefile). Ends with Check's own summary line. CK_RUN_SUITE selects one suite. */
#include <stdlib.h>

#include <check.h>

#define SUITE(name) Suite *suite_##name(void);
#include SUITES_H
#undef SUITE

int main(void)
{
    SRunner *sr = srunner_create(NULL);
#define SUITE(name) srunner_add_suite(sr, suite_##name());
#include SUITES_H
#undef SUITE
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
