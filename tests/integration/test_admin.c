/* test_admin.c - the /admin page in a real browser (headless Chromium through chromedriver)
 * against a running dealsync and sandbox, both directions on: a sandbox fault dead-letters an
 * opportunity, the operator sees it, presses Retry and sees it synced; searches the record and
 * sees its history; presses Resync. Also the page's guards (credentials, CSRF, off without
 * ADMIN_TOKEN) and its JSON API. A screenshot is kept under build/test-artifacts/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <check.h>
#include <cjson/cJSON.h>

#include "e2e.h"
#include "itest.h"
#include "sbtest.h"
#include "svc.h"
#include "util.h"
#include "webdriver.h"

#define TOKEN "admin-token-for-tests-0123456789"
#define BEARER "Authorization: Bearer " TOKEN

static int admin_get(const char *base, const char *path, const char *auth, char **body)
{
    char *url = xasprintf("%s%s", base, path);
    const char *headers[] = {auth, NULL};
    int status = itest_http("GET", url, headers, NULL, 0, body, NULL);
    free(url);
    return status;
}

static int admin_post(const char *base, const char *path, const char *csrf, const char *json,
                      char **body)
{
    char *url = xasprintf("%s%s", base, path);
    char *csrf_h = csrf ? xasprintf("X-CSRF-Token: %s", csrf) : NULL;
    const char *headers[] = {BEARER, "Content-Type: application/json", csrf_h, NULL};
    int status = itest_http("POST", url, headers, json, strlen(json), body, NULL);
    free(csrf_h);
    free(url);
    return status;
}

START_TEST(admin_is_off_without_a_token_and_guarded_with_one)
{
    struct svc off;
    svc_start(&off, "admin_off", NULL);
    ck_assert_int_eq(admin_get(off.base, "/admin", BEARER, NULL), 404);
    ck_assert_int_eq(svc_stop(&off), 0);

    struct svc s;
    const char *env[] = {"ADMIN_TOKEN=" TOKEN, NULL};
    svc_start(&s, "admin_guard", env);
    char *url = xasprintf("%s/admin", s.base);
    char *headers = NULL;
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, &headers), 401);
    ck_assert_ptr_nonnull(strstr(headers, "WWW-Authenticate: Basic"));
    free(headers);
    free(url);
    ck_assert_int_eq(admin_get(s.base, "/admin", "Authorization: Bearer wrong-token", NULL), 401);
    /* Basic with the token as the password, any user name ("op:" TOKEN in base64). */
    char *basic =
        xasprintf("Authorization: Basic %s", "b3A6YWRtaW4tdG9rZW4tZm9yLXRlc3RzLTAxMjM0NTY3ODk=");
    char *page = NULL;
    ck_assert_int_eq(admin_get(s.base, "/admin", basic, &page), 200);
    ck_assert_ptr_nonnull(strstr(page, "<h2>Dead letters (0)</h2>"));
    ck_assert_ptr_null(strstr(page, "<script src")); /* no external assets */
    ck_assert_ptr_null(strstr(page, "<link "));
    free(page);
    free(basic);

    /* The JSON API carries the CSRF token; a POST without it, or with another, is refused. */
    char *body = NULL;
    ck_assert_int_eq(admin_get(s.base, "/admin/api/status", BEARER, &body), 200);
    cJSON *status = cJSON_Parse(body);
    free(body);
    const char *csrf = cJSON_GetStringValue(cJSON_GetObjectItem(status, "csrf_token"));
    ck_assert_ptr_nonnull(csrf);
    ck_assert_int_eq(admin_post(s.base, "/admin/api/retry", NULL, "{\"type\":\"INVALID\"}", NULL),
                     403);
    ck_assert_int_eq(admin_post(s.base, "/admin/api/retry", "0000", "{\"type\":\"INVALID\"}", NULL),
                     403);
    ck_assert_int_eq(admin_post(s.base, "/admin/api/retry", csrf, "{\"type\":\"INVALID\"}", &body),
                     200);
    ck_assert_str_eq(body, "{\"requeued\":0}");
    free(body);
    ck_assert_int_eq(admin_post(s.base, "/admin/api/retry", csrf, "{}", NULL), 400);
    /* A form post from another site carries no token: refused before anything happens. */
    url = xasprintf("%s/admin/retry", s.base);
    const char *form_headers[] = {BEARER, "Content-Type: application/x-www-form-urlencoded", NULL};
    ck_assert_int_eq(itest_http("POST", url, form_headers, "type=INVALID", 12, NULL, NULL), 403);
    free(url);
    cJSON_Delete(status);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

struct wait_arg {
    struct webdriver *w;
    const char *text;
};

static bool page_says(void *arg)
{
    struct wait_arg *a = arg;
    char *text = webdriver_text(a->w);
    bool found = strstr(text, a->text) != NULL;
    free(text);
    return found;
}

static void wait_sql(struct e2e *e, const char *sql)
{
    ck_assert_msg(itest_wait_sql(e->svc.db, sql, 60000), "never true: %s", sql);
}

static void wait_page(struct webdriver *w, const char *text)
{
    struct wait_arg a = {w, text};
    if (!itest_wait_for(page_says, &a, 20000)) {
        char *now = webdriver_text(w);
        ck_abort_msg("the page never said \"%s\"; it says:\n%.2000s", text, now);
    }
}

static char *artifact_path(const char *name)
{
    const char *dir = itest_env("TEST_ARTIFACTS_DIR");
    mkdir(dir, 0755);
    return xasprintf("%s/%s", dir, name);
}

START_TEST(operator_retries_a_dead_letter_and_reads_a_record_history_in_a_browser)
{
    struct e2e e;
    const char *env[] = {"WORKER_THREADS=2", "ADMIN_TOKEN=" TOKEN, NULL};
    e2e_start(&e, "admin_browser", env, NULL, true);
    /* HubSpot refuses every deal write for now: the opportunity's sync is dead-lettered. */
    ck_assert_int_eq(
        e2e_sb(
            &e, "PUT", "/_sandbox/faults",
            "{\"rules\":[{\"method\":\"POST\",\"path\":\"/crm/v3/objects/deals/batch/create\","
            "\"status\":400,\"body\":\"{\\\"status\\\":\\\"error\\\",\\\"message\\\":\\\"Property "
            "values were not valid\\\",\\\"category\\\":\\\"VALIDATION_ERROR\\\"}\"},"
            "{\"method\":\"POST\",\"path\":\"/crm/v3/objects/deals/batch/upsert\","
            "\"status\":400,\"body\":\"{\\\"status\\\":\\\"error\\\",\\\"message\\\":\\\"Property "
            "values were not valid\\\",\\\"category\\\":\\\"VALIDATION_ERROR\\\"}\"}]}",
            NULL),
        200);
    cJSON *accounts = NULL;
    ck_assert_int_eq(e2e_sb(&e, "GET", "/_sandbox/salesforce/records/Account", NULL, &accounts),
                     200);
    char *json = xasprintf("{\"Name\":\"Browser Deal\",\"StageName\":\"Prospecting\","
                           "\"Amount\":4200,\"CloseDate\":\"2031-03-01\",\"AccountId\":\"%s\"}",
                           sbtest_str(cJSON_GetArrayItem(accounts, 0), "Id"));
    cJSON_Delete(accounts);
    cJSON *opp = NULL;
    ck_assert_int_eq(e2e_sb(&e, "POST", "/_sandbox/salesforce/records/Opportunity", json, &opp),
                     201);
    free(json);
    char *opp_id = xstrdup(sbtest_str(opp, "Id"));
    cJSON_Delete(opp);
    wait_sql(&e, "SELECT count(*) FROM sync_event WHERE status = 'dead'");
    long long dead_id =
        itest_db_scalar(e.svc.db, "SELECT min(id) FROM sync_event WHERE status = 'dead'");
    ck_assert_int_eq(e2e_sb(&e, "DELETE", "/_sandbox/faults", NULL, NULL), 200);

    /* The JSON API says the same as the page will. */
    char *body = NULL;
    ck_assert_int_eq(admin_get(e.svc.base, "/admin/api/dead-letters", BEARER, &body), 200);
    cJSON *dl = cJSON_Parse(body);
    free(body);
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(dl, "dead_letters"), 0);
    ck_assert_str_eq(sbtest_str(first, "record_id"), opp_id);
    ck_assert_str_eq(sbtest_str(first, "type"), "INVALID");
    cJSON_Delete(dl);

    struct webdriver w;
    webdriver_start(&w, "admin_chromium", BEARER);
    char *url = xasprintf("%s/admin", e.svc.base);
    webdriver_open(&w, url);
    wait_page(&w, "Dead letters (1)");
    wait_page(&w, "hubspot refused the deal");
    char *shot = artifact_path("admin-dead-letter.png");
    webdriver_screenshot(&w, shot);
    free(shot);

    /* Retry: the event goes back to the queue, the worker syncs it, the deal exists. */
    char *css = xasprintf("#retry-%lld", dead_id);
    char *button = webdriver_find(&w, css);
    ck_assert_msg(button != NULL, "no %s on the page", css);
    webdriver_click(&w, button);
    free(button);
    free(css);
    char *sql =
        xasprintf("SELECT count(*) FROM sync_event WHERE id = %lld AND status = 'done'", dead_id);
    wait_sql(&e, sql);
    free(sql);
    sql = xasprintf("SELECT count(*) FROM record_link WHERE kind = 'opportunity' AND sf_id = "
                    "'%s'",
                    opp_id);
    wait_sql(&e, sql);
    free(sql);
    webdriver_open(&w, url);
    wait_page(&w, "Dead letters (0)");

    /* Search by name: the link and the history, dead then synced. */
    char *q = webdriver_find(&w, "#q");
    ck_assert_ptr_nonnull(q);
    webdriver_type(&w, q, "browser deal");
    free(q);
    char *search = webdriver_find(&w, "#search");
    webdriver_click(&w, search);
    free(search);
    wait_page(&w, "1 record for");
    char *text = webdriver_text(&w);
    ck_assert_ptr_nonnull(strstr(text, opp_id));
    ck_assert_ptr_nonnull(strstr(text, "hubspot refused the deal"));
    ck_assert_ptr_nonnull(strstr(text, "created from the opportunity"));
    ck_assert_ptr_null(strstr(text, "not linked yet"));
    const char *dead_row = strstr(text, "dead");
    const char *done_row = strstr(text, "created from the opportunity");
    ck_assert_msg(dead_row && done_row && dead_row < done_row, "history out of order");
    free(text);
    shot = artifact_path("admin-record.png");
    webdriver_screenshot(&w, shot);
    free(shot);

    /* Resync: one more event per side, synced from the current state (nothing to change). */
    long long before = itest_db_scalar(e.svc.db, "SELECT count(*) FROM sync_event");
    css = xasprintf("#resync-%s", opp_id);
    button = webdriver_find(&w, css);
    ck_assert_msg(button != NULL, "no %s on the page", css);
    webdriver_click(&w, button);
    free(button);
    free(css);
    wait_sql(&e, "SELECT count(*) FROM sync_event WHERE event_type = 'resync'");
    ck_assert(e2e_wait_idle(&e, 60000));
    ck_assert_int_ge(itest_db_scalar(e.svc.db, "SELECT count(*) FROM sync_event"), before + 2);
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(*) FROM sync_event WHERE "
                                               "event_type = 'resync' AND status <> 'done'"),
                     0);
    char *now = webdriver_url(&w);
    ck_assert_ptr_nonnull(strstr(now, "/admin?q="));
    free(now);
    webdriver_open(&w, url);
    webdriver_stop(&w);
    free(url);
    free(opp_id);
    e2e_stop(&e);
}
END_TEST

Suite *suite_admin(void);
Suite *suite_admin(void)
{
    Suite *s = suite_create("admin");
    TCase *tc = tcase_create("admin");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, admin_is_off_without_a_token_and_guarded_with_one);
    tcase_add_test(tc, operator_retries_a_dead_letter_and_reads_a_record_history_in_a_browser);
    suite_add_tcase(s, tc);
    return s;
}
