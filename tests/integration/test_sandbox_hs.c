/* test_sandbox_hs.c - the HubSpot half of the sandbox over real HTTP: auth, objects, batch,
 * search, properties, associations, pipelines, owners, rate limits, webhook management and
 * signed delivery to a listener in this process. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "hmac.h"
#include "itest.h"
#include "sbtest.h"
#include "util.h"

static struct sbtest sb;

static void setup(void)
{
    sbtest_start(&sb, NULL);
}

static void teardown(void)
{
    sbtest_stop(&sb);
}

/* Creates a record through the API and returns its id (caller frees). */
static char *create(const char *type, const char *props_json)
{
    char *path = xasprintf("/crm/v3/objects/%s", type);
    char *body = xasprintf("{\"properties\":%s}", props_json);
    cJSON *j = NULL;
    ck_assert_int_eq(sbtest_hs(&sb, "POST", path, body, &j), 201);
    char *id = xstrdup(sbtest_str(j, "id"));
    cJSON_Delete(j);
    free(body);
    free(path);
    return id;
}

static const char *prop(const cJSON *obj, const char *name)
{
    return sbtest_str(cJSON_GetObjectItem(obj, "properties"), name);
}

static void assert_error(int status, const cJSON *j, int want_status, const char *category,
                         const char *fragment)
{
    ck_assert_int_eq(status, want_status);
    ck_assert_str_eq(sbtest_str(j, "status"), "error");
    ck_assert_str_eq(sbtest_str(j, "category"), category);
    ck_assert_msg(strstr(sbtest_str(j, "message"), fragment), "message '%s' lacks '%s'",
                  sbtest_str(j, "message"), fragment);
    ck_assert_str_ne(sbtest_str(j, "correlationId"), "");
}

START_TEST(auth_is_required)
{
    cJSON *j = NULL;
    int st = sbtest_call(&sb, "GET", "/crm/v3/objects/deals", NULL, NULL, &j, NULL);
    assert_error(st, j, 401, "INVALID_AUTHENTICATION", "Authentication credentials not found");
    cJSON_Delete(j);
    const char *wrong[] = {"Authorization: Bearer nope", NULL};
    st = sbtest_call(&sb, "GET", "/crm/v3/objects/deals", wrong, NULL, &j, NULL);
    assert_error(st, j, 401, "INVALID_AUTHENTICATION", "invalid");
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/objects/deals", NULL, NULL), 200);
}
END_TEST

START_TEST(deal_crud)
{
    cJSON *j = NULL;
    char *id =
        create("deals", "{\"dealname\":\"New deal\",\"amount\":\"1500.00\","
                        "\"closedate\":\"2019-12-07T16:50:06.678Z\",\"pipeline\":\"default\","
                        "\"dealstage\":\"contractsent\",\"dealtype\":\"newbusiness\"}");
    char *path = xasprintf("/crm/v3/objects/deals/%s?properties=dealname,amount,dealtype,nope", id);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", path, NULL, &j), 200);
    ck_assert_str_eq(prop(j, "dealname"), "New deal");
    ck_assert_str_eq(prop(j, "amount"), "1500.00");
    ck_assert_str_eq(prop(j, "dealtype"), "newbusiness");
    ck_assert_str_eq(prop(j, "hs_object_id"), id);
    ck_assert_ptr_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "properties"), "nope"));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "archived")));
    cJSON_Delete(j);
    free(path);

    path = xasprintf("/crm/v3/objects/deals/%s", id);
    ck_assert_int_eq(sbtest_hs(&sb, "PATCH", path,
                               "{\"properties\":{\"amount\":\"2000\","
                               "\"dealstage\":\"closedwon\"}}",
                               &j),
                     200);
    ck_assert_str_eq(prop(j, "amount"), "2000");
    ck_assert_str_eq(prop(j, "dealstage"), "closedwon");
    cJSON_Delete(j);
    /* epoch milliseconds are accepted for datetimes and stored as ISO */
    ck_assert_int_eq(
        sbtest_hs(&sb, "PATCH", path, "{\"properties\":{\"closedate\":\"1575737406678\"}}", &j),
        200);
    ck_assert_str_eq(prop(j, "closedate"), "2019-12-07T16:50:06.678Z");
    cJSON_Delete(j);

    ck_assert_int_eq(sbtest_hs(&sb, "DELETE", path, NULL, NULL), 204);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", path, NULL, &j), 404);
    ck_assert_str_eq(sbtest_str(j, "category"), "OBJECT_NOT_FOUND");
    cJSON_Delete(j);
    char *archived = xasprintf("%s?archived=true", path);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", archived, NULL, &j), 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "archived")));
    cJSON_Delete(j);
    char *control = xasprintf("/_sandbox/hubspot/objects/deals/%s", id);
    ck_assert_int_eq(sbtest_call(&sb, "GET", control, NULL, NULL, &j, NULL), 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "archived")));
    ck_assert_str_eq(prop(j, "dealname"), "New deal");
    cJSON_Delete(j);
    free(control);
    free(archived);
    free(path);
    free(id);
}
END_TEST

START_TEST(invalid_property_values_are_rejected)
{
    static const struct {
        const char *props;
        const char *fragment;
    } cases[] = {
        {"{\"dealname\":\"x\",\"dealstage\":\"closedwon\",\"nope\":\"1\"}",
         "PROPERTY_DOESNT_EXIST"},
        {"{\"dealname\":\"x\",\"dealstage\":\"closedwon\",\"dealtype\":\"big\"}", "INVALID_OPTION"},
        {"{\"dealname\":\"x\",\"dealstage\":\"closedwon\",\"amount\":\"12abc\"}", "INVALID_NUMBER"},
        {"{\"dealname\":\"x\",\"dealstage\":\"closedwon\",\"closedate\":\"tomorrow\"}",
         "INVALID_DATE"},
        {"{\"dealname\":\"x\",\"dealstage\":\"closedwon\",\"hs_lastmodifieddate\":\"1\"}",
         "READ_ONLY_VALUE"},
        {"{\"dealname\":\"x\",\"dealstage\":\"nostage\"}", "INVALID_OPTION"},
        {"{\"dealname\":\"x\"}", "dealstage"},
        {"{\"dealname\":\"x\",\"dealstage\":\"closedwon\",\"hubspot_owner_id\":\"1\"}",
         "INVALID_OWNER_ID"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = NULL;
        char *body = xasprintf("{\"properties\":%s}", cases[i].props);
        int st = sbtest_hs(&sb, "POST", "/crm/v3/objects/deals", body, &j);
        assert_error(st, j, 400, "VALIDATION_ERROR", cases[i].fragment);
        cJSON_Delete(j);
        free(body);
    }
    cJSON *j = NULL;
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/objects/deals", NULL, &j), 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 0);
    cJSON_Delete(j);
    /* contacts are unique by email: 409 with the existing id */
    char *id = create("contacts", "{\"email\":\"dup@example.com\"}");
    int st = sbtest_hs(&sb, "POST", "/crm/v3/objects/contacts",
                       "{\"properties\":{\"email\":\"DUP@example.com\"}}", &j);
    assert_error(st, j, 409, "CONFLICT", id);
    cJSON_Delete(j);
    free(id);
}
END_TEST

START_TEST(batch_limits_and_partial_results)
{
    struct buf b;
    buf_init(&b, 0);
    (void)buf_append_str(&b, "{\"inputs\":[");
    for (int i = 0; i < 101; i++)
        (void)buf_printf(&b, "%s{\"properties\":{\"email\":\"c%d@example.com\"}}", i ? "," : "", i);
    (void)buf_append_str(&b, "]}");
    cJSON *j = NULL;
    int st = sbtest_hs(&sb, "POST", "/crm/v3/objects/contacts/batch/create", b.data, &j);
    assert_error(st, j, 400, "VALIDATION_ERROR", "100");
    cJSON_Delete(j);
    buf_clear(&b);

    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/contacts/batch/create",
                               "{\"inputs\":[{\"properties\":{\"email\":\"a@example.com\"}},"
                               "{\"properties\":{\"email\":\"b@example.com\"}}]}",
                               &j),
                     201);
    const cJSON *results = cJSON_GetObjectItem(j, "results");
    ck_assert_int_eq(cJSON_GetArraySize(results), 2);
    ck_assert_str_eq(sbtest_str(j, "status"), "COMPLETE");
    char *id = xstrdup(sbtest_str(cJSON_GetArrayItem(results, 0), "id"));
    cJSON_Delete(j);

    /* all-or-nothing without objectWriteTraceId: one bad input fails the batch */
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/contacts/batch/create",
                               "{\"inputs\":[{\"properties\":{\"email\":\"ok@example.com\"}},"
                               "{\"properties\":{\"bogus\":\"1\"}}]}",
                               NULL),
                     400);
    /* with trace ids: 207 with the failed one identified */
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/contacts/batch/create",
                               "{\"inputs\":[{\"objectWriteTraceId\":\"t1\",\"properties\":"
                               "{\"email\":\"ok@example.com\"}},{\"objectWriteTraceId\":\"t2\","
                               "\"properties\":{\"bogus\":\"1\"}}]}",
                               &j),
                     207);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "numErrors")->valueint, 1);
    cJSON_Delete(j);

    char *read = xasprintf("{\"properties\":[\"email\"],\"inputs\":[{\"id\":\"%s\"},"
                           "{\"id\":\"99999\"}]}",
                           id);
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/contacts/batch/read", read, &j), 207);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 1);
    const cJSON *err = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "errors"), 0);
    ck_assert_str_eq(sbtest_str(err, "category"), "OBJECT_NOT_FOUND");
    ck_assert_str_eq(
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(err, "context"), "ids"), 0)
            ->valuestring,
        "99999");
    cJSON_Delete(j);

    /* upsert by email: existing -> new:false, missing -> created with new:true */
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/contacts/batch/upsert",
                               "{\"inputs\":[{\"id\":\"a@example.com\",\"idProperty\":\"email\","
                               "\"properties\":{\"firstname\":\"A\"}},{\"id\":\"z@example.com\","
                               "\"idProperty\":\"email\",\"properties\":{\"firstname\":\"Z\"}}]}",
                               &j),
                     200);
    results = cJSON_GetObjectItem(j, "results");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(results, 0), "new")));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(results, 1), "new")));
    cJSON_Delete(j);

    char *archive = xasprintf("{\"inputs\":[{\"id\":\"%s\"}]}", id);
    ck_assert_int_eq(
        sbtest_hs(&sb, "POST", "/crm/v3/objects/contacts/batch/archive", archive, NULL), 204);
    char *path = xasprintf("/crm/v3/objects/contacts/%s", id);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", path, NULL, NULL), 404);
    free(path);
    free(archive);
    free(read);
    free(id);
}
END_TEST

START_TEST(custom_unique_property_works_as_id_property)
{
    cJSON *j = NULL;
    const char *def =
        "{\"name\":\"sf_opportunity_id\",\"label\":\"SF Opportunity ID\","
        "\"type\":\"string\",\"fieldType\":\"text\",\"groupName\":\"dealinformation\","
        "\"hasUniqueValue\":true}";
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/properties/deals", def, &j), 201);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "hasUniqueValue")));
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/properties/deals", def, NULL), 409);
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/properties/deals",
                               "{\"name\":\"x\",\"label\":\"X\",\"type\":\"enumeration\","
                               "\"fieldType\":\"select\",\"groupName\":\"g\"}",
                               NULL),
                     400);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/properties/deals/sf_opportunity_id", NULL, &j),
                     200);
    ck_assert_str_eq(sbtest_str(j, "type"), "string");
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/properties/deals/amount", NULL, &j), 200);
    ck_assert_str_eq(sbtest_str(j, "type"), "number");
    cJSON_Delete(j);

    char *id = create("deals", "{\"dealname\":\"D\",\"dealstage\":\"qualifiedtobuy\","
                               "\"sf_opportunity_id\":\"006A\"}");
    ck_assert_int_eq(
        sbtest_hs(&sb, "GET", "/crm/v3/objects/deals/006A?idProperty=sf_opportunity_id", NULL, &j),
        200);
    ck_assert_str_eq(sbtest_str(j, "id"), id);
    cJSON_Delete(j);
    /* a non-unique property cannot be an idProperty */
    ck_assert_int_eq(
        sbtest_hs(&sb, "GET", "/crm/v3/objects/deals/D?idProperty=dealname", NULL, NULL), 400);
    /* a second deal with the same value is refused */
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/deals",
                               "{\"properties\":{\"dealname\":\"E\",\"dealstage\":"
                               "\"qualifiedtobuy\",\"sf_opportunity_id\":\"006A\"}}",
                               NULL),
                     409);
    /* upsert by it updates the same record */
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/deals/batch/upsert",
                               "{\"inputs\":[{\"id\":\"006A\",\"idProperty\":\"sf_opportunity_id\","
                               "\"properties\":{\"amount\":\"5\"}}]}",
                               &j),
                     200);
    const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "results"), 0);
    ck_assert_str_eq(sbtest_str(r, "id"), id);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(r, "new")));
    cJSON_Delete(j);
    free(id);
}
END_TEST

static int search(const char *body, cJSON **j)
{
    return sbtest_hs(&sb, "POST", "/crm/v3/objects/deals/search", body, j);
}

START_TEST(search_filters_sorts_pages_and_limits)
{
    /* this test searches faster than HubSpot's 5 per second allow */
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"hubspot.search_per_second\":1000}", NULL, NULL),
                     200);
    free(create("deals",
                "{\"dealname\":\"Alpha big\",\"amount\":\"100\",\"dealstage\":\"closedwon\"}"));
    free(create("deals", "{\"dealname\":\"Beta\",\"amount\":\"50\",\"dealstage\":\"closedlost\"}"));
    free(create("deals",
                "{\"dealname\":\"Gamma big\",\"amount\":\"75\",\"dealstage\":\"closedwon\","
                "\"hs_salesforceopportunityid\":\"006X\"}"));
    cJSON *j = NULL;
    ck_assert_int_eq(
        search("{\"filterGroups\":[{\"filters\":[{\"propertyName\":\"amount\","
               "\"operator\":\"GTE\",\"value\":\"75\"}]}],\"sorts\":[{\"propertyName\":"
               "\"amount\",\"direction\":\"DESCENDING\"}],\"properties\":[\"dealname\"]}",
               &j),
        200);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "total")->valueint, 2);
    ck_assert_str_eq(prop(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "results"), 0), "dealname"),
                     "Alpha big");
    cJSON_Delete(j);
    /* OR between groups, IN, CONTAINS_TOKEN, HAS_PROPERTY */
    ck_assert_int_eq(search("{\"filterGroups\":[{\"filters\":[{\"propertyName\":\"dealstage\","
                            "\"operator\":\"IN\",\"values\":[\"closedlost\"]}]},{\"filters\":[{"
                            "\"propertyName\":\"hs_salesforceopportunityid\",\"operator\":"
                            "\"HAS_PROPERTY\"}]}]}",
                            &j),
                     200);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "total")->valueint, 2);
    cJSON_Delete(j);
    ck_assert_int_eq(search("{\"filterGroups\":[{\"filters\":[{\"propertyName\":\"dealname\","
                            "\"operator\":\"CONTAINS_TOKEN\",\"value\":\"big\"},{\"propertyName\":"
                            "\"amount\",\"operator\":\"LT\",\"value\":\"80\"}]}]}",
                            &j),
                     200);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "total")->valueint, 1);
    cJSON_Delete(j);
    /* paging */
    ck_assert_int_eq(search("{\"limit\":2}", &j), 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 2);
    const char *after =
        sbtest_str(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "paging"), "next"), "after");
    char *next = xasprintf("{\"limit\":2,\"after\":\"%s\"}", after);
    cJSON_Delete(j);
    ck_assert_int_eq(search(next, &j), 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 1);
    ck_assert_ptr_null(cJSON_GetObjectItem(j, "paging"));
    cJSON_Delete(j);
    free(next);
    /* documented limits */
    ck_assert_int_eq(search("{\"limit\":201}", NULL), 400);
    ck_assert_int_eq(search("{\"after\":\"10000\"}", NULL), 400);
    const char *g = "{\"filters\":[{\"propertyName\":\"amount\",\"operator\":\"HAS_PROPERTY\"}]}";
    char *six = xasprintf("{\"filterGroups\":[%s,%s,%s,%s,%s,%s]}", g, g, g, g, g, g);
    ck_assert_int_eq(search(six, &j), 400);
    ck_assert_str_eq(sbtest_str(j, "category"), "VALIDATION_ERROR");
    cJSON_Delete(j);
    free(six);
}
END_TEST

START_TEST(search_and_burst_rate_limits)
{
    /* windows stretched so that the limits are hit without depending on speed */
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"hubspot.search_window_ms\":600000,"
                                 "\"hubspot.rate_limit_interval_ms\":600000,"
                                 "\"hubspot.rate_limit_max\":3}",
                                 NULL, NULL),
                     200);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(search("{}", NULL), 200);
    cJSON *j = NULL;
    ck_assert_int_eq(search("{}", &j), 429);
    ck_assert_str_eq(sbtest_str(j, "errorType"), "RATE_LIMIT");
    cJSON_Delete(j);

    char *headers = NULL;
    const char *auth[] = {"Authorization: Bearer sandbox-hubspot-token", NULL};
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/crm/v3/owners", auth, NULL, NULL, &headers), 200);
    ck_assert_ptr_nonnull(strstr(headers, "X-HubSpot-RateLimit-Max: 3"));
    ck_assert_ptr_nonnull(strstr(headers, "X-HubSpot-RateLimit-Remaining: 2"));
    ck_assert_ptr_nonnull(strstr(headers, "X-HubSpot-RateLimit-Interval-Milliseconds: 600000"));
    ck_assert_ptr_nonnull(strstr(headers, "X-HubSpot-RateLimit-Daily:"));
    free(headers);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, NULL), 200);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, NULL), 200);
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/crm/v3/owners", auth, NULL, &j, &headers), 429);
    ck_assert_str_eq(sbtest_str(j, "policyName"), "TEN_SECONDLY_ROLLING");
    ck_assert_str_eq(sbtest_str(j, "status"), "error");
    ck_assert_ptr_nonnull(strstr(headers, "X-HubSpot-RateLimit-Remaining: 0"));
    cJSON_Delete(j);
    free(headers);

    ck_assert_int_eq(
        sbtest_call(&sb, "POST", "/_sandbox/hubspot/rate-limits/reset", NULL, NULL, NULL, NULL),
        204);
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"hubspot.rate_limit_max\":100,\"hubspot.rate_limit_daily\":1}",
                                 NULL, NULL),
                     200);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, NULL), 200);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners", NULL, &j), 429);
    ck_assert_str_eq(sbtest_str(j, "policyName"), "DAILY");
    cJSON_Delete(j);
}
END_TEST

START_TEST(associations_v4_and_reads)
{
    char *deal = create("deals", "{\"dealname\":\"D\",\"dealstage\":\"appointmentscheduled\"}");
    char *contact = create("contacts", "{\"email\":\"p@example.com\"}");
    char *company = create("companies", "{\"name\":\"Acme\",\"domain\":\"acme.test\"}");
    cJSON *j = NULL;
    char *path = xasprintf("/crm/v4/objects/deals/%s/associations/contacts/%s", deal, contact);
    int st =
        sbtest_hs(&sb, "PUT", path,
                  "[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":4}]", &j);
    assert_error(st, j, 400, "VALIDATION_ERROR", "association type");
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_hs(&sb, "PUT", path,
                               "[{\"associationCategory\":\"HUBSPOT_DEFINED\","
                               "\"associationTypeId\":3}]",
                               &j),
                     201);
    ck_assert_str_eq(sbtest_str(j, "fromObjectTypeId"), "0-3");
    cJSON_Delete(j);
    free(path);
    path = xasprintf("/crm/v4/objects/deal/%s/associations/company/%s", deal, company);
    ck_assert_int_eq(sbtest_hs(&sb, "PUT", path,
                               "[{\"associationCategory\":\"HUBSPOT_DEFINED\","
                               "\"associationTypeId\":5}]",
                               &j),
                     201);
    ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "labels"), 0)->valuestring,
                     "Primary");
    cJSON_Delete(j);
    free(path);

    /* a primary company also gives the unlabelled type; both show in reads */
    path = xasprintf("/crm/v4/objects/deals/%s/associations/companies", deal);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", path, NULL, &j), 200);
    const cJSON *types = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(j, "results"), 0), "associationTypes");
    ck_assert_int_eq(cJSON_GetArraySize(types), 2);
    cJSON_Delete(j);
    free(path);
    path = xasprintf("/crm/v3/objects/deals/%s?associations=contacts,companies", deal);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", path, NULL, &j), 200);
    const cJSON *a = cJSON_GetObjectItem(j, "associations");
    const cJSON *c0 =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "contacts"), "results"), 0);
    ck_assert_str_eq(sbtest_str(c0, "id"), contact);
    ck_assert_str_eq(sbtest_str(c0, "type"), "deal_to_contact");
    ck_assert_int_eq(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "companies"), "results")), 2);
    cJSON_Delete(j);
    free(path);
    /* the reverse direction exists and the contact's roll-up counts the deal */
    path = xasprintf("/crm/v3/objects/contacts/%s?associations=deals&properties="
                     "num_associated_deals",
                     contact);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", path, NULL, &j), 200);
    ck_assert_str_eq(prop(j, "num_associated_deals"), "1");
    ck_assert_str_eq(
        sbtest_str(cJSON_GetArrayItem(
                       cJSON_GetObjectItem(
                           cJSON_GetObjectItem(cJSON_GetObjectItem(j, "associations"), "deals"),
                           "results"),
                       0),
                   "type"),
        "contact_to_deal");
    cJSON_Delete(j);
    free(path);

    /* batch read: 207 for a record without associations */
    char *body = xasprintf("{\"inputs\":[{\"id\":\"%s\"},{\"id\":\"1\"}]}", deal);
    ck_assert_int_eq(
        sbtest_hs(&sb, "POST", "/crm/v4/associations/deals/contacts/batch/read", body, &j), 207);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 1);
    ck_assert_str_eq(
        sbtest_str(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "errors"), 0), "subCategory"),
        "crm.associations.NO_ASSOCIATIONS_FOUND");
    cJSON_Delete(j);
    free(body);

    path = xasprintf("/crm/v4/objects/deals/%s/associations/contacts/%s", deal, contact);
    ck_assert_int_eq(sbtest_hs(&sb, "DELETE", path, NULL, NULL), 204);
    free(path);
    path = xasprintf("/crm/v4/objects/deals/%s/associations/contacts", deal);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", path, NULL, &j), 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 0);
    cJSON_Delete(j);
    free(path);
    free(company);
    free(contact);
    free(deal);
}
END_TEST

/* A contact's calculated properties after batches: an association batch and a batch update
 * recompute them once at the end, and they count every deal of the batch. */
START_TEST(rollups_follow_batches)
{
    char *won = create("deals", "{\"dealname\":\"W\",\"pipeline\":\"default\","
                                "\"dealstage\":\"closedwon\",\"amount\":\"300\"}");
    char *open = create("deals", "{\"dealname\":\"O\",\"pipeline\":\"default\","
                                 "\"dealstage\":\"appointmentscheduled\",\"amount\":\"50\"}");
    char *contact = create("contacts", "{\"email\":\"rollup@example.com\"}");
    char *body = xasprintf("{\"inputs\":[{\"from\":{\"id\":\"%s\"},\"to\":{\"id\":\"%s\"},"
                           "\"types\":[{\"associationCategory\":\"HUBSPOT_DEFINED\","
                           "\"associationTypeId\":3}]},{\"from\":{\"id\":\"%s\"},\"to\":{\"id\":"
                           "\"%s\"},\"types\":[{\"associationCategory\":\"HUBSPOT_DEFINED\","
                           "\"associationTypeId\":3}]}]}",
                           won, contact, open, contact);
    ck_assert_int_eq(
        sbtest_hs(&sb, "POST", "/crm/v4/associations/deals/contacts/batch/create", body, NULL),
        201);
    free(body);
    char *path = xasprintf("/crm/v3/objects/contacts/%s?properties=num_associated_deals,"
                           "total_revenue",
                           contact);
    cJSON *j = NULL;
    ck_assert_int_eq(sbtest_hs(&sb, "GET", path, NULL, &j), 200);
    ck_assert_str_eq(prop(j, "num_associated_deals"), "2");
    ck_assert_str_eq(prop(j, "total_revenue"), "300");
    cJSON_Delete(j);
    body = xasprintf("{\"inputs\":[{\"id\":\"%s\",\"properties\":{\"amount\":\"450\"}},"
                     "{\"id\":\"%s\",\"properties\":{\"dealstage\":\"closedwon\"}}]}",
                     won, open);
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/deals/batch/update", body, NULL), 200);
    free(body);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", path, NULL, &j), 200);
    ck_assert_str_eq(prop(j, "total_revenue"), "500");
    cJSON_Delete(j);

    /* A batch create of deals associated with the contact: the contact counts them once the
     * batch is answered, and each new deal counts its contact. */
    char *a = xasprintf("\"associations\":[{\"to\":{\"id\":\"%s\"},\"types\":[{"
                        "\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":3}]}]",
                        contact);
    body = xasprintf("{\"inputs\":[{\"properties\":{\"dealname\":\"B1\",\"pipeline\":\"default\","
                     "\"dealstage\":\"closedwon\",\"amount\":\"100\"},%s},{\"properties\":{"
                     "\"dealname\":\"B2\",\"pipeline\":\"default\",\"dealstage\":\"closedwon\","
                     "\"amount\":\"200\"},%s}]}",
                     a, a);
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/deals/batch/create", body, &j), 201);
    const cJSON *made = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "results"), 1);
    char *deal_path = xasprintf("/crm/v3/objects/deals/%s?properties=num_associated_contacts",
                                sbtest_str(made, "id"));
    cJSON_Delete(j);
    free(body);
    free(a);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", path, NULL, &j), 200);
    ck_assert_str_eq(prop(j, "num_associated_deals"), "4");
    ck_assert_str_eq(prop(j, "total_revenue"), "800");
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", deal_path, NULL, &j), 200);
    ck_assert_str_eq(prop(j, "num_associated_contacts"), "1");
    cJSON_Delete(j);
    free(deal_path);
    free(path);
    free(contact);
    free(open);
    free(won);
}
END_TEST

START_TEST(pipelines_and_owners)
{
    cJSON *j = NULL;
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/pipelines/deals/default", NULL, &j), 200);
    const cJSON *stages = cJSON_GetObjectItem(j, "stages");
    ck_assert_int_eq(cJSON_GetArraySize(stages), 7);
    const cJSON *won = cJSON_GetArrayItem(stages, 5);
    ck_assert_str_eq(sbtest_str(won, "id"), "closedwon");
    ck_assert_str_eq(sbtest_str(cJSON_GetObjectItem(won, "metadata"), "probability"), "1.0");
    ck_assert_str_eq(sbtest_str(cJSON_GetObjectItem(won, "metadata"), "isClosed"), "true");
    cJSON_Delete(j);

    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/pipelines/deals",
                               "{\"label\":\"P2\",\"displayOrder\":1,\"stages\":[{\"label\":\"S\","
                               "\"displayOrder\":0}]}",
                               NULL),
                     400);
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/pipelines/deals",
                               "{\"label\":\"P2\",\"displayOrder\":1,\"stages\":[{\"label\":"
                               "\"In Progress\",\"displayOrder\":0,\"metadata\":{\"probability\":"
                               "\"0.2\"}},{\"label\":\"Won\",\"displayOrder\":1,\"metadata\":{"
                               "\"probability\":\"1.0\"}}]}",
                               &j),
                     201);
    char *pipeline = xstrdup(sbtest_str(j, "id"));
    char *stage =
        xstrdup(sbtest_str(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "stages"), 0), "id"));
    cJSON_Delete(j);

    /* a stage label is unique within its pipeline, on a stage added or renamed too */
    char *stages_path = xasprintf("/crm/v3/pipelines/deals/%s/stages", pipeline);
    ck_assert_int_eq(sbtest_hs(&sb, "POST", stages_path,
                               "{\"label\":\"Won\",\"displayOrder\":2,\"metadata\":{"
                               "\"probability\":\"1.0\"}}",
                               NULL),
                     400);
    char *renamed = xasprintf("%s/%s", stages_path, stage);
    ck_assert_int_eq(sbtest_hs(&sb, "PATCH", renamed,
                               "{\"label\":\"Won\",\"metadata\":{\"probability\":\"0.2\"}}", NULL),
                     400);
    ck_assert_int_eq(sbtest_hs(&sb, "POST", stages_path,
                               "{\"label\":\"Lost\",\"displayOrder\":2,\"metadata\":{"
                               "\"probability\":\"0.0\"}}",
                               NULL),
                     201);
    free(renamed);
    free(stages_path);

    /* with two pipelines the pipeline is required, and the stage must belong to it */
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/deals",
                               "{\"properties\":{\"dealname\":\"x\",\"dealstage\":\"closedwon\"}}",
                               NULL),
                     400);
    char *bad = xasprintf("{\"properties\":{\"dealname\":\"x\",\"pipeline\":\"%s\","
                          "\"dealstage\":\"closedwon\"}}",
                          pipeline);
    ck_assert_int_eq(sbtest_hs(&sb, "POST", "/crm/v3/objects/deals", bad, &j), 400);
    cJSON_Delete(j);
    char *props = xasprintf("{\"dealname\":\"x\",\"pipeline\":\"%s\",\"dealstage\":\"%s\","
                            "\"hubspot_owner_id\":\"41629779\"}",
                            pipeline, stage);
    free(create("deals", props));
    char *del = xasprintf("/crm/v3/pipelines/deals/%s/stages/%s", pipeline, stage);
    ck_assert_int_eq(sbtest_hs(&sb, "DELETE", del, NULL, NULL), 409);

    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners?email=bob.seller@example.com", NULL, &j),
                     200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 1);
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_call(&sb, "POST", "/_sandbox/hubspot/owners", NULL,
                                 "{\"email\":\"new@example.com\",\"firstName\":\"N\"}", &j, NULL),
                     201);
    char *owner = xasprintf("/crm/v3/owners/%s", sbtest_str(j, "id"));
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", owner, NULL, &j), 200);
    ck_assert_str_eq(sbtest_str(j, "email"), "new@example.com");
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_hs(&sb, "GET", "/crm/v3/owners?email=nobody@example.com", NULL, &j),
                     200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 0);
    cJSON_Delete(j);
    free(owner);
    free(del);
    free(props);
    free(bad);
    free(stage);
    free(pipeline);
}
END_TEST

#define APP "/webhooks/v3/1160452"
#define KEY "?hapikey=sandbox-developer-key"

START_TEST(webhook_management_api)
{
    cJSON *j = NULL;
    int st = sbtest_call(&sb, "GET", APP "/settings?hapikey=wrong", NULL, NULL, &j, NULL);
    assert_error(st, j, 401, "INVALID_AUTHENTICATION", "API key");
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_call(&sb, "GET", APP "/settings" KEY, NULL, NULL, NULL, NULL), 404);
    ck_assert_int_eq(sbtest_call(&sb, "PUT", APP "/settings" KEY, NULL,
                                 "{\"targetUrl\":\"http://example.com/h\",\"throttling\":"
                                 "{\"maxConcurrentRequests\":10}}",
                                 NULL, NULL),
                     400);
    ck_assert_int_eq(sbtest_call(&sb, "PUT", APP "/settings" KEY, NULL,
                                 "{\"targetUrl\":\"https://example.com/h\",\"throttling\":"
                                 "{\"maxConcurrentRequests\":10}}",
                                 &j, NULL),
                     200);
    ck_assert_str_eq(sbtest_str(j, "targetUrl"), "https://example.com/h");
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_call(&sb, "POST", APP "/subscriptions" KEY, NULL,
                                 "{\"eventType\":\"deal.propertyChange\"}", NULL, NULL),
                     400);
    ck_assert_int_eq(sbtest_call(&sb, "POST", APP "/subscriptions" KEY, NULL,
                                 "{\"eventType\":\"deal.propertyChange\",\"propertyName\":"
                                 "\"hs_lastmodifieddate\"}",
                                 NULL, NULL),
                     400);
    ck_assert_int_eq(sbtest_call(&sb, "POST", APP "/subscriptions" KEY, NULL,
                                 "{\"eventType\":\"deal.propertyChange\",\"propertyName\":"
                                 "\"amount\"}",
                                 &j, NULL),
                     201);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(j, "active")));
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(j, "id")));
    char *sub = xasprintf(APP "/subscriptions/%s" KEY, sbtest_str(j, "id"));
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_call(&sb, "PATCH", sub, NULL, "{\"active\":true}", &j, NULL), 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "active")));
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_call(&sb, "GET", APP "/subscriptions" KEY, NULL, NULL, &j, NULL), 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 1);
    cJSON_Delete(j);
    ck_assert_int_eq(sbtest_call(&sb, "DELETE", sub, NULL, NULL, NULL, NULL), 204);
    ck_assert_int_eq(sbtest_call(&sb, "GET", sub, NULL, NULL, NULL, NULL), 404);
    ck_assert_int_eq(
        sbtest_call(&sb, "GET", "/webhooks/v3/999/settings" KEY, NULL, NULL, NULL, NULL), 404);
    free(sub);
}
END_TEST

/* Subscribes deal.creation, deal.propertyChange(amount) and contact.associationChange, all
 * active, to the listener. */
static void subscribe(const struct sbtest_listener *l)
{
    char *settings = xasprintf("{\"targetUrl\":\"http://127.0.0.1:%d/hooks?x=a%%3Ab\","
                               "\"throttling\":{\"maxConcurrentRequests\":10}}",
                               sbtest_listener_port(l));
    ck_assert_int_eq(sbtest_call(&sb, "PUT", APP "/settings" KEY, NULL, settings, NULL, NULL), 200);
    free(settings);
    const char *subs[] = {
        "{\"eventType\":\"deal.creation\",\"active\":true}",
        "{\"eventType\":\"deal.propertyChange\",\"propertyName\":\"amount\",\"active\":true}",
        "{\"eventType\":\"contact.associationChange\",\"active\":true}",
    };
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(
            sbtest_call(&sb, "POST", APP "/subscriptions" KEY, NULL, subs[i], NULL, NULL), 201);
}

struct wait_count {
    struct sbtest_listener *l;
    int n;
};

static bool has_hooks(void *arg)
{
    struct wait_count *w = arg;
    return sbtest_listener_count(w->l) >= w->n;
}

/* Checks the v3 signature of a received hook as the service will (uri decoded per HubSpot). */
static void assert_signed(struct sbtest_listener *l, const struct sbtest_hook *h)
{
    const char *secret = "sandbox-client-secret";
    char *uri = xasprintf("http://127.0.0.1:%d/hooks?x=a:b", sbtest_listener_port(l));
    char *msg = xasprintf("POST%s%s%s", uri, h->body, h->timestamp);
    unsigned char mac[HMAC_SHA256_LEN];
    hmac_sha256(secret, strlen(secret), msg, strlen(msg), mac);
    char *want = hmac_base64(mac, sizeof mac);
    ck_assert_str_eq(h->signature_v3, want);
    free(want);
    char *v1_src = xasprintf("%s%s", secret, h->body);
    hmac_sha256_digest(v1_src, strlen(v1_src), mac);
    char *v1 = hmac_hex(mac, sizeof mac);
    ck_assert_str_eq(h->signature_v1, v1);
    ck_assert_str_eq(h->signature_version, "v1");
    free(v1);
    free(v1_src);
    free(msg);
    free(uri);
}

/* The request log holds as many deliveries ("out") as the listener received. */
static bool deliveries_logged(void *arg)
{
    struct sbtest_listener *l = arg;
    cJSON *log = NULL;
    ck_assert_int_eq(
        sbtest_call(&sb, "GET", "/_sandbox/requests?system=hubspot", NULL, NULL, &log, NULL), 200);
    int out = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(log, "requests")) out +=
        strcmp(sbtest_str(e, "direction"), "out") == 0;
    cJSON_Delete(log);
    return out == sbtest_listener_count(l);
}

/* The sandbox has counted n delivered events (it counts a batch once the answer is back). */
static bool delivered_events(void *arg)
{
    const int *n = arg;
    cJSON *j = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/_sandbox/hubspot/webhooks", NULL, NULL, &j, NULL),
                     200);
    bool ok = cJSON_GetObjectItem(j, "deliveredEvents")->valueint >= *n;
    cJSON_Delete(j);
    return ok;
}

START_TEST(webhooks_are_signed_and_carry_the_change_source)
{
    struct sbtest_listener *l = sbtest_listener_start(0);
    subscribe(l);
    char *deal = create("deals", "{\"dealname\":\"W\",\"dealstage\":\"qualifiedtobuy\","
                                 "\"amount\":\"10\"}");
    struct wait_count w = {l, 1};
    ck_assert(itest_wait_for(has_hooks, &w, 10000));

    /* creation + amount, possibly split over batches: gather them */
    cJSON *events = cJSON_CreateArray();
    struct wait_count two = {l, 1};
    for (int i = 0; cJSON_GetArraySize(events) < 2; i++) {
        two.n = i + 1;
        ck_assert(itest_wait_for(has_hooks, &two, 10000));
        struct sbtest_hook h;
        sbtest_listener_get(l, i, &h);
        ck_assert_str_eq(h.path, "/hooks");
        assert_signed(l, &h);
        cJSON *batch = cJSON_Parse(h.body);
        ck_assert(cJSON_IsArray(batch));
        cJSON *e;
        while ((e = cJSON_DetachItemFromArray(batch, 0)))
            cJSON_AddItemToArray(events, e);
        cJSON_Delete(batch);
        sbtest_hook_clear(&h);
    }
    bool has_creation = false, has_amount = false;
    const cJSON *e;
    cJSON_ArrayForEach(e, events)
    {
        ck_assert_str_eq(sbtest_str(e, "changeSource"), "INTEGRATION");
        ck_assert_str_eq(sbtest_str(e, "sourceId"), "1160452");
        ck_assert_int_eq(cJSON_GetObjectItem(e, "appId")->valueint, 1160452);
        ck_assert_int_eq(cJSON_GetObjectItem(e, "attemptNumber")->valueint, 0);
        ck_assert_double_eq(cJSON_GetObjectItem(e, "objectId")->valuedouble, atof(deal));
        if (strcmp(sbtest_str(e, "subscriptionType"), "deal.creation") == 0) {
            has_creation = true;
            ck_assert_str_eq(sbtest_str(e, "changeFlag"), "CREATED");
        } else {
            ck_assert_str_eq(sbtest_str(e, "subscriptionType"), "deal.propertyChange");
            ck_assert_str_eq(sbtest_str(e, "propertyName"), "amount");
            ck_assert_str_eq(sbtest_str(e, "propertyValue"), "10");
            has_amount = true;
        }
    }
    ck_assert(has_creation && has_amount);
    cJSON_Delete(events);

    /* a user's change in the UI: CRM_UI and userId */
    int seen = sbtest_listener_count(l);
    char *control = xasprintf("/_sandbox/hubspot/objects/deals/%s", deal);
    ck_assert_int_eq(sbtest_call(&sb, "PATCH", control, NULL,
                                 "{\"properties\":{\"amount\":\"20\",\"dealname\":\"W2\"}}", NULL,
                                 NULL),
                     200);
    w.n = seen + 1;
    ck_assert(itest_wait_for(has_hooks, &w, 10000));
    struct sbtest_hook h;
    sbtest_listener_get(l, seen, &h);
    cJSON *batch = cJSON_Parse(h.body);
    ck_assert_int_eq(cJSON_GetArraySize(batch), 1); /* dealname is not subscribed */
    e = cJSON_GetArrayItem(batch, 0);
    ck_assert_str_eq(sbtest_str(e, "changeSource"), "CRM_UI");
    ck_assert_str_eq(sbtest_str(e, "sourceId"), "userId:45678");
    ck_assert_str_eq(sbtest_str(e, "propertyValue"), "20");
    cJSON_Delete(batch);
    sbtest_hook_clear(&h);

    /* association: the contact side fires once (only contact.associationChange subscribed) */
    char *contact = create("contacts", "{\"email\":\"hook@example.com\"}");
    seen = sbtest_listener_count(l);
    char *path =
        xasprintf("/crm/v4/objects/deals/%s/associations/default/contacts/%s", deal, contact);
    ck_assert_int_eq(sbtest_hs(&sb, "PUT", path, NULL, NULL), 200);
    w.n = seen + 1;
    ck_assert(itest_wait_for(has_hooks, &w, 10000));
    sbtest_listener_get(l, seen, &h);
    batch = cJSON_Parse(h.body);
    e = cJSON_GetArrayItem(batch, 0);
    ck_assert_str_eq(sbtest_str(e, "subscriptionType"), "contact.associationChange");
    ck_assert_str_eq(sbtest_str(e, "associationType"), "CONTACT_TO_DEAL");
    ck_assert_double_eq(cJSON_GetObjectItem(e, "fromObjectId")->valuedouble, atof(contact));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(e, "associationRemoved")));
    cJSON_Delete(batch);
    sbtest_hook_clear(&h);

    /* Every delivery is in the request log: the sandbox logs one once its answer is back, a
     * moment after the listener has counted it. */
    ck_assert_msg(itest_wait_for(deliveries_logged, l, 10000),
                  "the request log does not show each delivery the listener received");
    free(path);
    free(contact);
    free(control);
    free(deal);
    sbtest_listener_stop(l);
}
END_TEST

START_TEST(failed_deliveries_are_retried)
{
    struct sbtest_listener *l = sbtest_listener_start(2);
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"hubspot.webhook_backoff_ms\":20}", NULL, NULL),
                     200);
    subscribe(l);
    free(create("deals", "{\"dealname\":\"R\",\"dealstage\":\"qualifiedtobuy\"}"));
    struct wait_count w = {l, 3};
    ck_assert(itest_wait_for(has_hooks, &w, 15000));
    struct sbtest_hook h[3];
    for (int i = 0; i < 3; i++)
        sbtest_listener_get(l, i, &h[i]);
    ck_assert_int_eq(h[0].answered, 500);
    ck_assert_int_eq(h[2].answered, 200);
    for (int i = 0; i < 3; i++) {
        cJSON *batch = cJSON_Parse(h[i].body);
        const cJSON *e = cJSON_GetArrayItem(batch, 0);
        ck_assert_int_eq(cJSON_GetObjectItem(e, "attemptNumber")->valueint, i);
        static double first_id;
        if (i == 0)
            first_id = cJSON_GetObjectItem(e, "eventId")->valuedouble;
        ck_assert_double_eq(cJSON_GetObjectItem(e, "eventId")->valuedouble, first_id);
        cJSON_Delete(batch);
        assert_signed(l, &h[i]);
        sbtest_hook_clear(&h[i]);
    }
    int one = 1;
    ck_assert(itest_wait_for(delivered_events, &one, 10000));
    cJSON *j = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/_sandbox/hubspot/webhooks", NULL, NULL, &j, NULL),
                     200);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "failedAttempts")->valueint, 2);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "deliveredEvents")->valueint, 1);
    cJSON_Delete(j);
    sbtest_listener_stop(l);
}
END_TEST

Suite *suite_sandbox_hs(void);
Suite *suite_sandbox_hs(void)
{
    Suite *s = suite_create("sandbox_hs");
    TCase *tc = tcase_create("hubspot");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, auth_is_required);
    tcase_add_test(tc, deal_crud);
    tcase_add_test(tc, invalid_property_values_are_rejected);
    tcase_add_test(tc, batch_limits_and_partial_results);
    tcase_add_test(tc, custom_unique_property_works_as_id_property);
    tcase_add_test(tc, search_filters_sorts_pages_and_limits);
    tcase_add_test(tc, search_and_burst_rate_limits);
    tcase_add_test(tc, associations_v4_and_reads);
    tcase_add_test(tc, rollups_follow_batches);
    tcase_add_test(tc, pipelines_and_owners);
    tcase_add_test(tc, webhook_management_api);
    tcase_add_test(tc, webhooks_are_signed_and_carry_the_change_source);
    tcase_add_test(tc, failed_deliveries_are_retried);
    suite_add_tcase(s, tc);
    return s;
}
