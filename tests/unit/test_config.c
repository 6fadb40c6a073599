/* test_config.c - environment to struct config: defaults, every problem reported at once,
 * secrets never logged. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

static const char *const all_vars[] = {"DATABASE_URL",          "PORT",
                                       "BIND_ADDRESS",          "PUBLIC_BASE_URL",
                                       "SALESFORCE_ORG_ID",     "SALESFORCE_WEBHOOK_TOKEN",
                                       "HUBSPOT_CLIENT_SECRET", "HUBSPOT_APP_ID",
                                       "WORKER_THREADS",        "LOG_LEVEL",
                                       "QUEUE_RETRY_BASE_MS",   "QUEUE_RETRY_MAX_MS",
                                       "HUBSPOT_WEBHOOK_PATH"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(all_vars) / sizeof(all_vars[0]); i++)
        unsetenv(all_vars[i]);
}

static void set_valid(void)
{
    clear_env();
    setenv("DATABASE_URL", "postgresql://u:pw-secret@db/dealsync", 1);
    setenv("PUBLIC_BASE_URL", "https://sync.example.com", 1);
    setenv("SALESFORCE_ORG_ID", "00D7F00000107XsUAI", 1);
    setenv("HUBSPOT_CLIENT_SECRET", "hs-secret-value", 1);
}

START_TEST(defaults_apply)
{
    set_valid();
    struct config cfg;
    ck_assert_int_eq(config_load(&cfg, true), ERR_OK);
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_str_eq(cfg.bind_address, "0.0.0.0");
    ck_assert_int_eq(cfg.worker_threads, 8);
    ck_assert_str_eq(cfg.log_level, "info");
    ck_assert_str_eq(cfg.hubspot_webhook_path, "/webhooks/hubspot");
    ck_assert_ptr_null(cfg.salesforce_webhook_token);
    ck_assert(!cfg.hubspot_allow_legacy_signatures);
    config_clear(&cfg);
}
END_TEST

/* config_load writes its problems to stderr: capture them. */
static char *load_errors(bool need_webhooks, enum err *rc)
{
    char path[] = "/tmp/dealsync-config-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(2);
    fflush(stderr);
    dup2(fd, 2);
    struct config cfg;
    *rc = config_load(&cfg, need_webhooks);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    char *text = xcalloc(8192, 1);
    ssize_t n = read(fd, text, 8191);
    (void)n;
    close(fd);
    unlink(path);
    config_clear(&cfg);
    return text;
}

START_TEST(every_problem_is_reported_at_once)
{
    clear_env();
    setenv("PORT", "eighty", 1);
    setenv("WORKER_THREADS", "-1", 1);
    enum err rc;
    char *errors = load_errors(true, &rc);
    ck_assert_int_eq(rc, ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(errors, "DATABASE_URL is required"));
    ck_assert_ptr_nonnull(strstr(errors, "PUBLIC_BASE_URL is required"));
    ck_assert_ptr_nonnull(strstr(errors, "SALESFORCE_ORG_ID is required"));
    ck_assert_ptr_nonnull(strstr(errors, "HUBSPOT_CLIENT_SECRET is required"));
    ck_assert_ptr_nonnull(strstr(errors, "PORT must be a whole number"));
    ck_assert_ptr_nonnull(strstr(errors, "WORKER_THREADS must be a whole number"));
    ck_assert_ptr_nonnull(strstr(errors, "6 problems"));
    free(errors);
}
END_TEST

START_TEST(formats_are_checked)
{
    set_valid();
    setenv("SALESFORCE_ORG_ID", "not-an-org", 1);
    setenv("LOG_LEVEL", "loud", 1);
    setenv("PUBLIC_BASE_URL", "sync.example.com", 1);
    setenv("HUBSPOT_WEBHOOK_PATH", "/webhooks/salesforce", 1);
    enum err rc;
    char *errors = load_errors(true, &rc);
    ck_assert_int_eq(rc, ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(errors, "SALESFORCE_ORG_ID must be"));
    ck_assert_ptr_nonnull(strstr(errors, "LOG_LEVEL must be"));
    ck_assert_ptr_nonnull(strstr(errors, "PUBLIC_BASE_URL must start"));
    ck_assert_ptr_nonnull(strstr(errors, "two different paths"));
    free(errors);
}
END_TEST

START_TEST(problems_of_every_kind_come_in_one_round)
{
    /* A missing value, a bad number, a bad format and a contradiction together: all four are
     * reported by the first start, not one kind per attempt. */
    set_valid();
    unsetenv("HUBSPOT_CLIENT_SECRET");
    setenv("QUEUE_LEASE_SECONDS", "soon", 1);
    setenv("SALESFORCE_ORG_ID", "not-an-org", 1);
    setenv("SALESFORCE_CLIENT_ID", "client-without-secret", 1);
    enum err rc;
    char *errors = load_errors(true, &rc);
    ck_assert_int_eq(rc, ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(errors, "HUBSPOT_CLIENT_SECRET is required"));
    ck_assert_ptr_nonnull(strstr(errors, "QUEUE_LEASE_SECONDS must be a whole number"));
    ck_assert_ptr_nonnull(strstr(errors, "SALESFORCE_ORG_ID must be"));
    ck_assert_ptr_nonnull(strstr(errors, "SALESFORCE_CLIENT_ID needs"));
    ck_assert_ptr_nonnull(strstr(errors, "4 problems"));
    free(errors);
}
END_TEST

START_TEST(workers_do_not_need_webhook_secrets)
{
    clear_env();
    setenv("DATABASE_URL", "postgresql:///x", 1);
    struct config cfg;
    ck_assert_int_eq(config_load(&cfg, false), ERR_OK);
    config_clear(&cfg);
}
END_TEST

START_TEST(secrets_are_masked_in_the_log)
{
    set_valid();
    setenv("SALESFORCE_WEBHOOK_TOKEN", "sf-token-value", 1);
    struct config cfg;
    ck_assert_int_eq(config_load(&cfg, true), ERR_OK);
    char path[] = "/tmp/dealsync-log-XXXXXX";
    int fd = mkstemp(path);
    log_set_fd(fd);
    config_log(&cfg, LOG_INFO);
    log_set_fd(1);
    lseek(fd, 0, SEEK_SET);
    char text[8192] = {0};
    ssize_t n = read(fd, text, sizeof(text) - 1);
    ck_assert_int_gt(n, 0);
    close(fd);
    unlink(path);
    ck_assert_ptr_nonnull(strstr(text, "HUBSPOT_CLIENT_SECRET=***"));
    ck_assert_ptr_nonnull(strstr(text, "DATABASE_URL=***"));
    ck_assert_ptr_null(strstr(text, "pw-secret"));
    ck_assert_ptr_null(strstr(text, "hs-secret-value"));
    ck_assert_ptr_null(strstr(text, "sf-token-value"));
    ck_assert_ptr_nonnull(strstr(text, "PUBLIC_BASE_URL=https://sync.example.com"));
    config_clear(&cfg);
}
END_TEST

Suite *suite_config(void);
Suite *suite_config(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("env");
    tcase_add_test(tc, defaults_apply);
    tcase_add_test(tc, every_problem_is_reported_at_once);
    tcase_add_test(tc, formats_are_checked);
    tcase_add_test(tc, problems_of_every_kind_come_in_one_round);
    tcase_add_test(tc, workers_do_not_need_webhook_secrets);
    tcase_add_test(tc, secrets_are_masked_in_the_log);
    suite_add_tcase(s, tc);
    return s;
}
