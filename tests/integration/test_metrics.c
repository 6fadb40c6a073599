/* test_metrics.c - GET /metrics after real traffic (a synced opportunity both ways, a refused
 * webhook) passes `promtool check metrics` (Debian's prometheus package), and every family has
 * its HELP and TYPE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <check.h>

#include "e2e.h"
#include "itest.h"
#include "util.h"

/* The family a sample line belongs to: its name, less a histogram's suffix when the family
 * (declared by an earlier TYPE line) is a histogram. */
static bool family_declared(const char *text, const char *sample_name, const char *kind)
{
    char *want = xasprintf("# %s %s ", kind, sample_name);
    bool found = strstr(text, want) != NULL;
    free(want);
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; !found && i < 3; i++) {
        size_t n = strlen(sample_name), k = strlen(suffixes[i]);
        if (n > k && strcmp(sample_name + n - k, suffixes[i]) == 0) {
            want = xasprintf("# %s %.*s ", kind, (int)(n - k), sample_name);
            found = strstr(text, want) != NULL;
            free(want);
        }
    }
    return found;
}

START_TEST(metrics_pass_promtool_and_every_family_has_help_and_type)
{
    struct e2e e;
    const char *env[] = {"WORKER_THREADS=2", NULL};
    e2e_start(&e, "metrics", env, NULL, true);
    cJSON *acme = NULL;
    ck_assert_int_eq(e2e_sb(&e, "GET", "/_sandbox/salesforce/records/Account", NULL, &acme), 200);
    const char *account = sbtest_str(cJSON_GetArrayItem(acme, 0), "Id");
    char *json = xasprintf("{\"Name\":\"Metrics\",\"StageName\":\"Prospecting\",\"Amount\":5,"
                           "\"CloseDate\":\"2031-01-01\",\"AccountId\":\"%s\"}",
                           account);
    ck_assert_int_eq(e2e_sb(&e, "POST", "/_sandbox/salesforce/records/Opportunity", json, NULL),
                     201);
    free(json);
    cJSON_Delete(acme);
    ck_assert(e2e_wait_idle(&e, 60000));
    /* A refused request: an unsigned HubSpot webhook. */
    char *url = xasprintf("%s/webhooks/hubspot", e.svc.base);
    const char *headers[] = {"Content-Type: application/json", NULL};
    ck_assert_int_eq(itest_http("POST", url, headers, "[]", 2, NULL, NULL), 401);
    free(url);

    url = xasprintf("%s/metrics", e.svc.base);
    char *text = NULL;
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, &text, NULL), 200);
    free(url);
    ck_assert_ptr_nonnull(strstr(text, "dealsync_worker_records_total{"));
    ck_assert_ptr_nonnull(strstr(text, "dealsync_webhook_events_rejected_total{"));
    ck_assert_ptr_nonnull(strstr(text, "dealsync_http_request_duration_seconds_bucket{"));

    /* Every sample's family has HELP and TYPE. */
    char *copy = xstrdup(text);
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char *name = xstrndup(line, strcspn(line, "{ "));
        ck_assert_msg(family_declared(text, name, "HELP"), "no HELP for %s", name);
        ck_assert_msg(family_declared(text, name, "TYPE"), "no TYPE for %s", name);
        free(name);
    }
    free(copy);

    char *path = xasprintf("%s/metrics.txt", itest_env("TEST_TMPDIR"));
    char *out_path = xasprintf("%s/promtool.txt", itest_env("TEST_TMPDIR"));
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    char *cmd = xasprintf("promtool check metrics < '%s' > '%s' 2>&1", path, out_path);
    int st = system(cmd);
    char *out = itest_read_file(out_path, NULL);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "promtool check metrics: %s", out);
    ck_assert_msg(out[0] == '\0', "promtool check metrics: %s", out);
    free(out);
    free(cmd);
    free(out_path);
    free(path);
    free(text);
    e2e_stop(&e);
}
END_TEST

Suite *suite_metrics(void);
Suite *suite_metrics(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, metrics_pass_promtool_and_every_family_has_help_and_type);
    suite_add_tcase(s, tc);
    return s;
}
