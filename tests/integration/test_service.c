/* test_service.c - the dealsync binary as operators run it: replicas migrating at once, the
 * worker subcommand, SIGTERM, configuration errors. */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "migrate.h"
#include "util.h"

START_TEST(replicas_starting_together_apply_each_migration_once)
{
    char *url = itest_db_create("svc_migrate");
    char *env_db = xasprintf("DATABASE_URL=%s", url);
    const char *env[] = {env_db, NULL};
    const char *argv[] = {itest_env("DEALSYNC_BIN"), "migrate", NULL};
    char *log = xasprintf("%s/svc_migrate.log", itest_env("TEST_TMPDIR"));
    struct itest_proc *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = itest_spawn(argv, env, log, NULL);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(itest_proc_stop(p[i], 0, 20000), 0);
    PGconn *db = itest_db_connect(url);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM schema_migrations"),
                     migrate_embedded_count);
    PQfinish(db);
    free(log);
    free(env_db);
    free(url);
}
END_TEST

static bool is_migrated(void *arg)
{
    PGresult *r = PQexec(arg, "SELECT 1 FROM schema_migrations");
    bool ready = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
    PQclear(r);
    return ready;
}

START_TEST(worker_subcommand_runs_and_stops_on_sigterm)
{
    char *url = itest_db_create("svc_worker");
    char *env_db = xasprintf("DATABASE_URL=%s", url);
    /* A worker needs no webhook secrets. */
    const char *env[] = {env_db, "WORKER_THREADS=2",
                         "PUBLIC_BASE_URL=", "HUBSPOT_CLIENT_SECRET=", NULL};
    const char *argv[] = {itest_env("DEALSYNC_BIN"), "worker", NULL};
    char *log = xasprintf("%s/svc_worker.log", itest_env("TEST_TMPDIR"));
    struct itest_proc *p = itest_spawn(argv, env, log, NULL);
    /* Ready once it has migrated the database. */
    PGconn *db = itest_db_connect(url);
    ck_assert(itest_wait_for(is_migrated, db, 20000));
    ck_assert_int_eq(itest_proc_stop(p, SIGTERM, 10000), 0);
    PQfinish(db);
    free(log);
    free(env_db);
    free(url);
}
END_TEST

START_TEST(bad_configuration_exits_78)
{
    const char *env[] = {"DATABASE_URL=", "PORT=notaport", NULL};
    const char *argv[] = {itest_env("DEALSYNC_BIN"), "serve", NULL};
    char *log = xasprintf("%s/svc_config.log", itest_env("TEST_TMPDIR"));
    struct itest_proc *p = itest_spawn(argv, env, log, NULL);
    ck_assert_int_eq(itest_proc_stop(p, 0, 10000), 78);
    const char *argv2[] = {itest_env("DEALSYNC_BIN"), "frobnicate", NULL};
    p = itest_spawn(argv2, NULL, log, NULL);
    ck_assert_int_eq(itest_proc_stop(p, 0, 10000), 64);
    free(log);
}
END_TEST

Suite *suite_service(void);
Suite *suite_service(void)
{
    Suite *s = suite_create("service");
    TCase *tc = tcase_create("binary");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, replicas_starting_together_apply_each_migration_once);
    tcase_add_test(tc, worker_subcommand_runs_and_stops_on_sigterm);
    tcase_add_test(tc, bad_configuration_exits_78);
    suite_add_tcase(s, tc);
    return s;
}
