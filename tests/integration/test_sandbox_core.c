/* test_sandbox_core.c - the sandbox core over real HTTP: health, request log, settings, fault
 * injection (deterministic from the seed), reset. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "sbtest.h"
#include "util.h"

static struct sbtest sb;

static void setup(void)
{
    const char *args[] = {"--seed", "7", "--set", "core.example=41", NULL};
    sbtest_start(&sb, args);
}

static void teardown(void)
{
    sbtest_stop(&sb);
}

static cJSON *requests_since(int64_t since)
{
    char path[64];
    cJSON *j = NULL;
    snprintf(path, sizeof path, "/_sandbox/requests?since=%lld", (long long)since);
    ck_assert_int_eq(sbtest_call(&sb, "GET", path, NULL, NULL, &j, NULL), 200);
    return j;
}

START_TEST(health_answers)
{
    cJSON *j = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/_sandbox/health", NULL, NULL, &j, NULL), 200);
    ck_assert_str_eq(sbtest_str(j, "status"), "ok");
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/_sandbox/nothing", NULL, NULL, NULL, NULL), 404);
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/no/such/api", NULL, NULL, NULL, NULL), 404);
}
END_TEST

START_TEST(request_log_records_calls_and_pages_by_id)
{
    cJSON *first = requests_since(0);
    int64_t mark = (int64_t)cJSON_GetObjectItem(first, "last_id")->valuedouble;
    cJSON_Delete(first);

    /* unauthenticated HubSpot call (401) and a query string */
    ck_assert_int_eq(
        sbtest_call(&sb, "GET", "/crm/v3/objects/deals?limit=5", NULL, NULL, NULL, NULL), 401);
    ck_assert_int_eq(sbtest_call(&sb, "POST", "/crm/v3/objects/deals", NULL, "{}", NULL, NULL),
                     401);
    cJSON *log = requests_since(mark);
    const cJSON *list = cJSON_GetObjectItem(log, "requests");
    ck_assert_int_eq(cJSON_GetArraySize(list), 2); /* reading the log is not logged */
    const cJSON *e = cJSON_GetArrayItem(list, 0);
    ck_assert_str_eq(sbtest_str(e, "system"), "hubspot");
    ck_assert_str_eq(sbtest_str(e, "direction"), "in");
    ck_assert_str_eq(sbtest_str(e, "method"), "GET");
    ck_assert_str_eq(sbtest_str(e, "path"), "/crm/v3/objects/deals");
    ck_assert_str_eq(sbtest_str(e, "query"), "limit=5");
    ck_assert_int_eq(cJSON_GetObjectItem(e, "status")->valueint, 401);
    e = cJSON_GetArrayItem(list, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(e, "body_len")->valueint, 2);
    int64_t last = (int64_t)cJSON_GetObjectItem(e, "id")->valuedouble;
    cJSON_Delete(log);

    log = requests_since(last);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(log, "requests")), 0);
    cJSON_Delete(log);
    ck_assert_int_eq(
        sbtest_call(&sb, "GET", "/_sandbox/requests?since=abc", NULL, NULL, NULL, NULL), 400);
}
END_TEST

START_TEST(settings_from_flags_put_and_restore)
{
    cJSON *j = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/_sandbox/settings", NULL, NULL, &j, NULL), 200);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "core.example")->valueint, 41);
    cJSON_Delete(j);

    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"core.example\":42,\"core.name\":\"x\"}", &j, NULL),
                     200);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "core.example")->valueint, 42);
    ck_assert_str_eq(sbtest_str(j, "core.name"), "x");
    cJSON_Delete(j);

    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL, "{\"a\":[1]}", NULL, NULL),
                     400);
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL, "not json", NULL, NULL),
                     400);

    ck_assert_int_eq(sbtest_call(&sb, "DELETE", "/_sandbox/settings", NULL, NULL, &j, NULL), 200);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "core.example")->valueint, 41);
    ck_assert_ptr_null(cJSON_GetObjectItem(j, "core.name"));
    cJSON_Delete(j);
}
END_TEST

START_TEST(fault_for_next_n_requests)
{
    const char *rule = "{\"rules\":[{\"method\":\"GET\",\"path\":\"/crm/v3/owners\","
                       "\"status\":503,\"count\":2}]}";
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/faults", NULL, rule, NULL, NULL), 200);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, NULL), 503);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, NULL), 503);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, NULL), 200);
    /* other methods and paths are untouched */
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/pipelines/deals", NULL, NULL), 200);

    cJSON *j = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/_sandbox/faults", NULL, NULL, &j, NULL), 200);
    const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "rules"), 0);
    ck_assert_int_eq(cJSON_GetObjectItem(r, "fired")->valueint, 2);
    cJSON_Delete(j);

    cJSON *log = requests_since(0);
    int n503 = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(log, "requests"))
    {
        if (cJSON_GetObjectItem(e, "status")->valueint == 503) {
            ck_assert_str_eq(sbtest_str(e, "system"), "hubspot");
            n503++;
        }
    }
    ck_assert_int_eq(n503, 2);
    cJSON_Delete(log);
}
END_TEST

/* The sequence of statuses a rate rule produces for 24 requests. */
static void rate_pattern(const char *faults, char out[25])
{
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/faults", NULL, faults, NULL, NULL), 200);
    for (int i = 0; i < 24; i++) {
        int status = sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, NULL);
        ck_assert(status == 200 || status == 429);
        out[i] = status == 429 ? 'x' : '.';
    }
    out[24] = '\0';
}

START_TEST(rate_faults_are_deterministic_from_the_seed)
{
    const char *a = "{\"seed\":42,\"rules\":[{\"path\":\"/crm/v3/owners\",\"status\":429,"
                    "\"rate\":0.5,\"retry_after\":\"1\"}]}";
    const char *b = "{\"seed\":43,\"rules\":[{\"path\":\"/crm/v3/owners\",\"status\":429,"
                    "\"rate\":0.5}]}";
    char first[25], again[25], other[25];
    rate_pattern(a, first);
    rate_pattern(a, again);
    rate_pattern(b, other);
    ck_assert_str_eq(first, again);
    ck_assert_str_ne(first, other);
    ck_assert_ptr_nonnull(strchr(first, 'x'));
    ck_assert_ptr_nonnull(strchr(first, '.'));

    /* unrelated traffic on other routes does not shift the sequence */
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/faults", NULL, a, NULL, NULL), 200);
    char mixed[25];
    for (int i = 0; i < 24; i++) {
        ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/pipelines/deals", NULL, NULL), 200);
        mixed[i] = sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, NULL) == 429 ? 'x' : '.';
    }
    mixed[24] = '\0';
    ck_assert_str_eq(first, mixed);
}
END_TEST

START_TEST(dropped_and_held_connections_get_no_answer)
{
    const char *rules = "{\"rules\":[{\"path\":\"/crm/v3/owners\",\"action\":\"drop\",\"count\":1},"
                        "{\"path\":\"/crm/v3/pipelines\",\"action\":\"timeout\",\"hold_ms\":200,"
                        "\"count\":1},"
                        "{\"path\":\"/crm/v3/properties\",\"latency_ms\":50,\"count\":1}]}";
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/faults", NULL, rules, NULL, NULL), 200);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, NULL), 0);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, NULL), 200);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/pipelines/deals", NULL, NULL), 0);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/pipelines/deals", NULL, NULL), 200);
    /* latency delays but answers normally */
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/properties/deals", NULL, NULL), 200);
    cJSON *j = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/_sandbox/faults", NULL, NULL, &j, NULL), 200);
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(j, "rules"))
        ck_assert_int_eq(cJSON_GetObjectItem(r, "fired")->valueint, 1);
    cJSON_Delete(j);

    cJSON *log = requests_since(0);
    int unanswered = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(log, "requests")) unanswered +=
        cJSON_GetObjectItem(e, "status")->valueint == 0;
    ck_assert_int_eq(unanswered, 2);
    cJSON_Delete(log);
}
END_TEST

/* The write is carried out, then the answer is lost: the caller sees a timeout while the record
 * exists. The log keeps the answer that never left, and the body when asked to. */
START_TEST(timeout_after_write_applies_the_write_and_loses_the_answer)
{
    const char *rules = "{\"rules\":[{\"method\":\"POST\",\"path\":\"/crm/v3/objects/contacts\","
                        "\"action\":\"timeout_after_write\",\"hold_ms\":100,\"count\":1}]}";
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/faults", NULL, rules, NULL, NULL), 200);
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"core.log_body_bytes\":20}", NULL, NULL),
                     200);
    cJSON *first = requests_since(0);
    int64_t mark = (int64_t)cJSON_GetObjectItem(first, "last_id")->valuedouble;
    cJSON_Delete(first);

    const char *body = "{\"properties\":{\"email\":\"lost@example.com\"}}";
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/contacts", body, NULL), 0);
    cJSON *list = NULL;
    ck_assert_int_eq(
        sbtest_call(&sb, "GET", "/_sandbox/hubspot/objects/contacts", NULL, NULL, &list, NULL),
        200);
    int found = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, list)
    {
        const cJSON *props = cJSON_GetObjectItem(c, "properties");
        found += strcmp(sbtest_str(props, "email"), "lost@example.com") == 0;
    }
    ck_assert_int_eq(found, 1);
    cJSON_Delete(list);
    /* the rule fired once: the same request now gets its answer (a conflict: it exists) */
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/contacts", body, NULL), 409);

    cJSON *log = requests_since(mark);
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItem(log, "requests"), 0);
    ck_assert_int_eq(cJSON_GetObjectItem(e, "status")->valueint, 0);
    ck_assert_str_eq(sbtest_str(e, "fault"), "timeout_after_write (answer 201 lost)");
    ck_assert_str_eq(sbtest_str(e, "body"), "{\"properties\":{\"emai");
    ck_assert_int_eq(cJSON_GetObjectItem(e, "body_len")->valueint, (int)strlen(body));
    cJSON_Delete(log);
}
END_TEST

START_TEST(bad_fault_bodies_are_rejected)
{
    const char *bad[] = {
        "[]",
        "{\"rules\":[{\"status\":500}]}",
        "{\"rules\":[{\"path\":\"/x\",\"status\":200}]}",
        "{\"rules\":[{\"path\":\"/x\",\"status\":500,\"rate\":2}]}",
        "{\"rules\":[{\"path\":\"/x\",\"action\":\"explode\"}]}",
        "{\"delivery\":{\"duplicate_rate\":1.5}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/faults", NULL, bad[i], NULL, NULL),
                         400);
}
END_TEST

START_TEST(delivery_faults_become_settings_and_reset_clears_everything)
{
    const char *f = "{\"rules\":[{\"path\":\"/crm/\",\"status\":500}],"
                    "\"delivery\":{\"duplicate_rate\":0.25,\"reorder_rate\":1}}";
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/faults", NULL, f, NULL, NULL), 200);
    cJSON *j = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/_sandbox/settings", NULL, NULL, &j, NULL), 200);
    ck_assert_double_eq(cJSON_GetObjectItem(j, "delivery.duplicate_rate")->valuedouble, 0.25);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "delivery.reorder_rate")->valueint, 1);
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, NULL), 500);

    ck_assert_int_eq(sbtest_call(&sb, "POST", "/_sandbox/hubspot/objects/contacts", NULL,
                                 "{\"properties\":{\"email\":\"r@example.com\"}}", &j, NULL),
                     201);
    char *path = xasprintf("/_sandbox/hubspot/objects/contacts/%s", sbtest_str(j, "id"));
    cJSON_Delete(j);

    ck_assert_int_eq(sbtest_call(&sb, "POST", "/_sandbox/reset", NULL, NULL, NULL, NULL), 200);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, NULL), 200);
    ck_assert_int_eq(sbtest_call(&sb, "GET", path, NULL, NULL, NULL, NULL), 404);
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/_sandbox/settings", NULL, NULL, &j, NULL), 200);
    ck_assert_ptr_null(cJSON_GetObjectItem(j, "delivery.duplicate_rate"));
    cJSON_Delete(j);
    /* the log restarted: only what came after the reset */
    cJSON *log = requests_since(0);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(log, "requests"))
        ck_assert_str_ne(sbtest_str(e, "path"), "/_sandbox/faults");
    cJSON_Delete(log);
    free(path);
}
END_TEST

START_TEST(oversized_body_is_rejected)
{
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"core.max_body_bytes\":64}", NULL, NULL),
                     200);
    char body[200];
    memset(body, 'a', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/deals", body, NULL), 413);
}
END_TEST

Suite *suite_sandbox_core(void);
Suite *suite_sandbox_core(void)
{
    Suite *s = suite_create("sandbox_core");
    TCase *tc = tcase_create("control");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, health_answers);
    tcase_add_test(tc, request_log_records_calls_and_pages_by_id);
    tcase_add_test(tc, settings_from_flags_put_and_restore);
    tcase_add_test(tc, fault_for_next_n_requests);
    tcase_add_test(tc, rate_faults_are_deterministic_from_the_seed);
    tcase_add_test(tc, dropped_and_held_connections_get_no_answer);
    tcase_add_test(tc, timeout_after_write_applies_the_write_and_loses_the_answer);
    tcase_add_test(tc, bad_fault_bodies_are_rejected);
    tcase_add_test(tc, delivery_faults_become_settings_and_reset_clears_everything);
    tcase_add_test(tc, oversized_body_is_rejected);
    suite_add_tcase(s, tc);
    return s;
}
