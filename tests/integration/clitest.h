/* clitest.h - runs dealsync's one-shot commands the way a terminal user does, keeping stdout
 * (the answer) and stderr (the log) apart. Test-only. */
#ifndef SVC_CLITEST_H
#define SVC_CLITEST_H

/* Runs argv (argv[0] a path) with the current environment plus extra_env ("NAME=value",
 * NULL-ended, may be NULL). *out and *err (caller frees) receive stdout and stderr. Returns the
 * exit status; fails the test when it does not exit within 30 s. */
int clitest_run(const char *const *argv, const char *const *extra_env, char **out, char **err);

/* Like clitest_run for `dealsync ARGS...` (NULL-ended), with DATABASE_URL=db_url added. */
int clitest_dealsync(const char *db_url, const char *const *args, char **out, char **err);

#endif
