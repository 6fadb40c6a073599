/* test_hs_client.c - hs_client against the sandbox's HubSpot: objects, unique-property upsert in
 * batches larger than HubSpot's 100, 207 per-item errors, search paging, associations v4,
 * pipelines, owners, properties, and 429/5xx/401 handling. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_budget.h"
#include "hs_client.h"
#include "hs_owners.h"
#include "http_client.h"
#include "itest.h"
#include "mapping.h"
#include "qtest.h"
#include "sandbox_checks.h"
#include "util.h"

static struct sbtest sb;
static struct http_client *hc;
static struct hs_client *hs;

/* The sandbox's private-app token (GET /_sandbox/hubspot/app). */
static struct hs_client *client_with_token(const char *token)
{
    struct hs_client_options opt = {.base_url = sb.base, .access_token = token};
    struct hs_client *c = NULL;
    ck_assert_int_eq(hs_client_new(&opt, hc, &c), ERR_OK);
    return c;
}

static void setup(void)
{
    sbtest_start(&sb, NULL);
    hc = http_client_new(NULL);
    cJSON *app = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/_sandbox/hubspot/app", NULL, NULL, &app, NULL), 200);
    hs = client_with_token(cJSON_GetStringValue(cJSON_GetObjectItem(app, "token")));
    cJSON_Delete(app);
}

static void teardown(void)
{
    hs_client_free(hs);
    http_client_free(hc);
    sbtest_stop(&sb);
}

static const char *prop(const cJSON *object, const char *name)
{
    return cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(object, "properties"), name));
}

/* The unique deal property the sync keys Salesforce ids on. */
static void create_sf_id_property(void)
{
    cJSON *def = cJSON_Parse("{\"name\":\"sf_opportunity_id\",\"label\":\"SF Opportunity ID\","
                             "\"type\":\"string\",\"fieldType\":\"text\","
                             "\"groupName\":\"dealinformation\",\"hasUniqueValue\":true}");
    cJSON *created = NULL;
    ck_assert_int_eq(hs_property_create(hs, "deals", def, &created), ERR_OK);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(created, "hasUniqueValue")));
    cJSON_Delete(created);
    /* Creating it twice is a conflict, which a setup step can treat as done. */
    ck_assert_int_eq(hs_property_create(hs, "deals", def, NULL), ERR_CONFLICT);
    cJSON_Delete(def);
}

static char *create_deal(const char *name, const char *sf_id)
{
    cJSON *props = cJSON_CreateObject();
    cJSON_AddStringToObject(props, "dealname", name);
    cJSON_AddStringToObject(props, "pipeline", "default");
    cJSON_AddStringToObject(props, "dealstage", "appointmentscheduled");
    cJSON_AddStringToObject(props, "amount", "120000.5");
    cJSON_AddStringToObject(props, "closedate", "2017-04-03T00:00:00.000Z");
    if (sf_id)
        cJSON_AddStringToObject(props, "sf_opportunity_id", sf_id);
    cJSON *deal = NULL;
    ck_assert_int_eq(hs_object_create(hs, "deals", props, NULL, &deal), ERR_OK);
    char *id = xstrdup(cJSON_GetStringValue(cJSON_GetObjectItem(deal, "id")));
    cJSON_Delete(deal);
    cJSON_Delete(props);
    return id;
}

static char *create_simple(const char *type, const char *key, const char *value)
{
    cJSON *props = cJSON_CreateObject();
    cJSON_AddStringToObject(props, key, value);
    cJSON *obj = NULL;
    ck_assert_int_eq(hs_object_create(hs, type, props, NULL, &obj), ERR_OK);
    char *id = xstrdup(cJSON_GetStringValue(cJSON_GetObjectItem(obj, "id")));
    cJSON_Delete(obj);
    cJSON_Delete(props);
    return id;
}

START_TEST(deal_lifecycle_by_id_and_unique_property)
{
    create_sf_id_property();
    char *id = create_deal("Acme", "0067F000003pmdWQAQ");

    cJSON *deal = NULL;
    ck_assert_int_eq(hs_object_get(hs, "deals", id, NULL, "dealname,amount,closedate", NULL, &deal),
                     ERR_OK);
    ck_assert_str_eq(prop(deal, "dealname"), "Acme");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(deal, "id")), id);
    cJSON_Delete(deal);

    /* Update through the unique property instead of the record id; "" clears a value. */
    cJSON *patch = cJSON_Parse("{\"dealname\":\"Acme 2\",\"amount\":\"\"}");
    ck_assert_int_eq(
        hs_object_update(hs, "deals", "0067F000003pmdWQAQ", "sf_opportunity_id", patch, NULL),
        ERR_OK);
    deal = NULL;
    ck_assert_int_eq(hs_object_get(hs, "deals", "0067F000003pmdWQAQ", "sf_opportunity_id",
                                   "dealname,amount", NULL, &deal),
                     ERR_OK);
    ck_assert_str_eq(prop(deal, "dealname"), "Acme 2");
    const char *amount = prop(deal, "amount");
    ck_assert(amount == NULL || amount[0] == '\0');
    cJSON_Delete(deal);

    /* An unknown property is the caller's mistake, not a retry. */
    cJSON *bad = cJSON_Parse("{\"no_such_property\":\"x\"}");
    ck_assert_int_eq(hs_object_update(hs, "deals", id, NULL, bad, NULL), ERR_INVALID);
    cJSON_Delete(bad);

    ck_assert_int_eq(hs_object_archive(hs, "deals", id), ERR_OK);
    deal = NULL;
    ck_assert_int_eq(hs_object_get(hs, "deals", id, NULL, NULL, NULL, &deal), ERR_NOT_FOUND);
    ck_assert_ptr_null(deal);
    char *path = xasprintf("/_sandbox/hubspot/objects/deals/%s", id);
    cJSON *state = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "GET", path, NULL, NULL, &state, NULL), 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(state, "archived")));
    cJSON_Delete(state);
    free(path);
    cJSON_Delete(patch);
    free(id);
}
END_TEST

START_TEST(batch_upsert_splits_at_100_and_is_idempotent)
{
    create_sf_id_property();
    cJSON *inputs = cJSON_CreateArray();
    for (int i = 0; i < 150; i++) {
        char sf_id[32], name[32];
        snprintf(sf_id, sizeof(sf_id), "006UPSERT%09d", i);
        snprintf(name, sizeof(name), "Batch %d", i);
        cJSON *in = cJSON_CreateObject();
        cJSON_AddStringToObject(in, "id", sf_id);
        cJSON_AddStringToObject(in, "idProperty", "sf_opportunity_id");
        cJSON *props = cJSON_AddObjectToObject(in, "properties");
        cJSON_AddStringToObject(props, "dealname", name);
        cJSON_AddStringToObject(props, "dealstage", "appointmentscheduled");
        cJSON_AddStringToObject(props, "pipeline", "default");
        cJSON_AddItemToArray(inputs, in);
    }
    struct hs_batch_result res = {0};
    ck_assert_int_eq(hs_batch_upsert(hs, "deals", inputs, &res), ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(res.results), 150);
    ck_assert_int_eq(cJSON_GetArraySize(res.errors), 0);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(res.results, 0), "new")));
    ck_assert_int_eq(sandbox_count(&sb, "hubspot", "POST", "/crm/v3/objects/deals/batch/upsert"),
                     2);
    hs_batch_result_clear(&res);

    /* Again: the same 150 deals are updated, none created. */
    ck_assert_int_eq(hs_batch_upsert(hs, "deals", inputs, &res), ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(res.results), 150);
    const cJSON *r;
    cJSON_ArrayForEach(r, res.results)
    {
        ck_assert(!cJSON_IsTrue(cJSON_GetObjectItem(r, "new")));
    }
    hs_batch_result_clear(&res);

    /* Read back by the unique property; one unknown value comes back as a 207 error. */
    const char *ids[3] = {"006UPSERT000000000", "006UPSERT000000149", "006NOSUCH"};
    ck_assert_int_eq(
        hs_batch_read(hs, "deals", "sf_opportunity_id", "dealname,sf_opportunity_id", ids, 3, &res),
        ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(res.results), 2);
    ck_assert_int_eq(cJSON_GetArraySize(res.errors), 1);
    hs_batch_result_clear(&res);
    cJSON_Delete(inputs);
}
END_TEST

START_TEST(batch_create_update_archive_with_item_errors)
{
    cJSON *inputs = cJSON_Parse("[{\"properties\":{\"dealname\":\"B1\",\"dealstage\":"
                                "\"appointmentscheduled\",\"pipeline\":\"default\"}},"
                                "{\"properties\":{\"dealname\":\"B2\",\"dealstage\":"
                                "\"no-such-stage\",\"pipeline\":\"default\"}},"
                                "{\"properties\":{\"dealname\":\"B3\",\"dealstage\":"
                                "\"closedwon\",\"pipeline\":\"default\"}}]");
    struct hs_batch_result res = {0};
    ck_assert_int_eq(hs_batch_create(hs, "deals", inputs, &res), ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(res.results), 2);
    ck_assert_int_eq(cJSON_GetArraySize(res.errors), 1);
    /* The failed input is named by the trace id the client gave it: its index. */
    const cJSON *ctx = cJSON_GetObjectItem(cJSON_GetArrayItem(res.errors, 0), "context");
    const cJSON *trace = cJSON_GetArrayItem(cJSON_GetObjectItem(ctx, "objectWriteTraceId"), 0);
    ck_assert_str_eq(cJSON_GetStringValue(trace), "1");
    const char *a =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(res.results, 0), "id"));
    const char *b =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(res.results, 1), "id"));
    ck_assert(a && b);
    char *ida = xstrdup(a), *idb = xstrdup(b);
    hs_batch_result_clear(&res);

    cJSON *updates = cJSON_CreateArray();
    const char *both[2] = {ida, idb};
    for (int i = 0; i < 2; i++) {
        cJSON *u = cJSON_Parse("{\"properties\":{\"description\":\"updated\"}}");
        cJSON_AddStringToObject(u, "id", both[i]);
        cJSON_AddItemToArray(updates, u);
    }
    ck_assert_int_eq(hs_batch_update(hs, "deals", updates, &res), ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(res.results), 2);
    hs_batch_result_clear(&res);
    cJSON *deal = NULL;
    ck_assert_int_eq(hs_object_get(hs, "deals", idb, NULL, "description", NULL, &deal), ERR_OK);
    ck_assert_str_eq(prop(deal, "description"), "updated");
    cJSON_Delete(deal);

    ck_assert_int_eq(hs_batch_archive(hs, "deals", both, 2, &res), ERR_OK);
    hs_batch_result_clear(&res);
    deal = NULL;
    ck_assert_int_eq(hs_object_get(hs, "deals", ida, NULL, NULL, NULL, &deal), ERR_NOT_FOUND);

    cJSON_Delete(updates);
    free(idb);
    free(ida);
    cJSON_Delete(inputs);
}
END_TEST

START_TEST(search_pages_through_results)
{
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof(name), "Searchable %d", i);
        free(create_deal(name, NULL));
    }
    free(create_deal("Other", NULL));
    cJSON *req = cJSON_Parse("{\"filterGroups\":[{\"filters\":[{\"propertyName\":\"dealname\","
                             "\"operator\":\"CONTAINS_TOKEN\",\"value\":\"Searchable\"}]}],"
                             "\"properties\":[\"dealname\"],"
                             "\"sorts\":[{\"propertyName\":\"dealname\",\"direction\":"
                             "\"ASCENDING\"}],\"limit\":2}");
    char *after = NULL;
    int pages = 0, total = 0;
    do {
        cJSON *page = NULL;
        char *next = NULL;
        ck_assert_int_eq(hs_search(hs, "deals", req, after, &page, &next), ERR_OK);
        total += cJSON_GetArraySize(page);
        pages++;
        cJSON_Delete(page);
        free(after);
        after = next;
    } while (after && pages < 10);
    ck_assert_int_eq(total, 5);
    ck_assert_int_eq(pages, 3);
    cJSON_Delete(req);
}
END_TEST

START_TEST(associations_v4)
{
    char *deal = create_deal("Associated", NULL);
    char *c1 = create_simple("contacts", "email", "ann@example.com");
    char *c2 = create_simple("contacts", "email", "ben@example.com");
    char *company = create_simple("companies", "name", "Acme Inc");

    ck_assert_int_eq(hs_assoc_create_default(hs, "deals", deal, "contacts", c1), ERR_OK);
    struct hs_assoc_type primary = {NULL, HS_ASSOC_DEAL_TO_COMPANY_PRIMARY};
    ck_assert_int_eq(hs_assoc_create(hs, "deals", deal, "companies", company, &primary, 1), ERR_OK);
    cJSON *list = NULL;
    ck_assert_int_eq(hs_assoc_list(hs, "deals", deal, "companies", &list), ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(list), 1);
    bool has_primary = false;
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "associationTypes"))
    {
        has_primary = has_primary || cJSON_GetObjectItem(t, "typeId")->valueint == 5;
    }
    ck_assert(has_primary);
    cJSON_Delete(list);

    /* Batch: deal -> both contacts with type 3 (c1 already has it). */
    struct hs_assoc_pair pairs[2] = {{deal, c1}, {deal, c2}};
    struct hs_assoc_type to_contact = {"HUBSPOT_DEFINED", HS_ASSOC_DEAL_TO_CONTACT};
    struct hs_batch_result res = {0};
    ck_assert_int_eq(hs_assoc_batch_create(hs, "deals", "contacts", pairs, 2, to_contact, &res),
                     ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(res.errors), 0);
    hs_batch_result_clear(&res);
    const char *ids[1] = {deal};
    ck_assert_int_eq(hs_assoc_batch_read(hs, "deals", "contacts", ids, 1, &res), ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(res.results), 1);
    ck_assert_int_eq(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(res.results, 0), "to")), 2);
    hs_batch_result_clear(&res);

    ck_assert_int_eq(hs_assoc_batch_archive(hs, "deals", "contacts", pairs, 1, &res), ERR_OK);
    hs_batch_result_clear(&res);
    ck_assert_int_eq(hs_assoc_delete(hs, "deals", deal, "companies", company), ERR_OK);
    list = NULL;
    ck_assert_int_eq(hs_assoc_list(hs, "deals", deal, "contacts", &list), ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(list), 1); /* c2 is left */
    cJSON_Delete(list);
    list = NULL;
    ck_assert_int_eq(hs_assoc_list(hs, "deals", deal, "companies", &list), ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(list), 0);
    cJSON_Delete(list);

    free(company);
    free(c2);
    free(c1);
    free(deal);
}
END_TEST

START_TEST(pipelines_owners_and_properties)
{
    cJSON *pipelines = NULL;
    ck_assert_int_eq(hs_pipelines_list(hs, "deals", &pipelines), ERR_OK);
    bool has_default = false;
    const cJSON *p;
    cJSON_ArrayForEach(p, pipelines)
    {
        has_default =
            has_default || strcmp(cJSON_GetObjectItem(p, "id")->valuestring, "default") == 0;
    }
    ck_assert(has_default);
    cJSON_Delete(pipelines);

    cJSON *input = cJSON_Parse(
        "{\"displayOrder\":3,\"label\":\"Salesforce - Default pipeline\",\"stages\":["
        "{\"label\":\"Prospecting\",\"metadata\":{\"probability\":\"0.1\"},\"displayOrder\":0},"
        "{\"label\":\"Closed Won\",\"metadata\":{\"probability\":\"1.0\"},\"displayOrder\":1}]}");
    cJSON *created = NULL;
    ck_assert_int_eq(hs_pipeline_create(hs, "deals", input, &created), ERR_OK);
    const char *pid = cJSON_GetStringValue(cJSON_GetObjectItem(created, "id"));
    ck_assert_ptr_nonnull(pid);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(created, "stages")), 2);
    cJSON *stage_in = cJSON_Parse("{\"label\":\"Closed Lost\",\"displayOrder\":2,"
                                  "\"metadata\":{\"probability\":\"0.0\"}}");
    cJSON *stage = NULL;
    ck_assert_int_eq(hs_pipeline_stage_create(hs, "deals", pid, stage_in, &stage), ERR_OK);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(stage, "label")), "Closed Lost");
    /* A second pipeline with the same label is refused. */
    ck_assert_int_ne(hs_pipeline_create(hs, "deals", input, NULL), ERR_OK);
    cJSON_Delete(stage);
    cJSON_Delete(stage_in);
    cJSON_Delete(created);
    cJSON_Delete(input);

    cJSON *owner = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "POST", "/_sandbox/hubspot/owners", NULL,
                                 "{\"email\":\"carol@example.com\",\"firstName\":\"Carol\","
                                 "\"lastName\":\"Closer\"}",
                                 &owner, NULL),
                     201);
    char *owner_id = NULL;
    ck_assert_int_eq(hs_owner_find_by_email(hs, "carol@example.com", &owner_id), ERR_OK);
    ck_assert_str_eq(owner_id, cJSON_GetStringValue(cJSON_GetObjectItem(owner, "id")));
    free(owner_id);
    owner_id = NULL;
    ck_assert_int_eq(hs_owner_find_by_email(hs, "nobody@example.com", &owner_id), ERR_NOT_FOUND);
    ck_assert_ptr_null(owner_id);

    /* The owner list (all pages), and the cache both directions use: one list call serves
     * every lookup; an owner added since is still found (a miss is asked again). */
    cJSON *owners = NULL;
    ck_assert_int_eq(hs_owners_list(hs, &owners), ERR_OK);
    ck_assert_int_ge(cJSON_GetArraySize(owners), 1);
    cJSON_Delete(owners);
    long long before = sandbox_count(&sb, "hubspot", "GET", "/crm/v3/owners");
    ck_assert_int_eq(hs_owners_find_by_email(hs, 60, "CAROL@example.com", &owner_id), ERR_OK);
    ck_assert_str_eq(owner_id, cJSON_GetStringValue(cJSON_GetObjectItem(owner, "id")));
    free(owner_id);
    cJSON *emails = NULL;
    cJSON *ids = cJSON_CreateArray();
    cJSON_AddItemToArray(
        ids, cJSON_CreateString(cJSON_GetStringValue(cJSON_GetObjectItem(owner, "id"))));
    ck_assert_int_eq(hs_owners_emails(hs, 60, ids, &emails), ERR_OK);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(
                         emails, cJSON_GetStringValue(cJSON_GetObjectItem(owner, "id")))),
                     "carol@example.com");
    cJSON_Delete(emails);
    ck_assert_int_eq(sandbox_count(&sb, "hubspot", "GET", "/crm/v3/owners") - before, 1);
    cJSON *dave = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "POST", "/_sandbox/hubspot/owners", NULL,
                                 "{\"email\":\"dave@example.com\",\"firstName\":\"Dave\"}", &dave,
                                 NULL),
                     201);
    owner_id = NULL;
    ck_assert_int_eq(hs_owners_find_by_email(hs, 60, "dave@example.com", &owner_id), ERR_OK);
    ck_assert_str_eq(owner_id, cJSON_GetStringValue(cJSON_GetObjectItem(dave, "id")));
    free(owner_id);
    cJSON_AddItemToArray(ids,
                         cJSON_CreateString(cJSON_GetStringValue(cJSON_GetObjectItem(dave, "id"))));
    ck_assert_int_eq(hs_owners_emails(hs, 60, ids, &emails), ERR_OK);
    ck_assert_int_ge(cJSON_GetArraySize(emails), 2);
    cJSON_Delete(emails);
    /* An e-mail HubSpot confirms has no owner (a Salesforce user without a HubSpot seat) is
     * not asked again for every batch while the list is cached. */
    owner_id = NULL;
    ck_assert_int_eq(hs_owners_find_by_email(hs, 60, "nobody@example.com", &owner_id),
                     ERR_NOT_FOUND);
    before = sandbox_count(&sb, "hubspot", "GET", "/crm/v3/owners");
    ck_assert_int_eq(hs_owners_find_by_email(hs, 60, "Nobody@example.com", &owner_id),
                     ERR_NOT_FOUND);
    ck_assert_ptr_null(owner_id);
    ck_assert_int_eq(sandbox_count(&sb, "hubspot", "GET", "/crm/v3/owners") - before, 0);
    cJSON_Delete(ids);
    cJSON_Delete(dave);
    cJSON_Delete(owner);

    cJSON *def = cJSON_Parse("{\"name\":\"sf_priority\",\"label\":\"Priority\",\"type\":"
                             "\"enumeration\",\"fieldType\":\"select\",\"groupName\":"
                             "\"dealinformation\",\"options\":[{\"label\":\"High\",\"value\":"
                             "\"high\",\"hidden\":false},{\"label\":\"Low\",\"value\":\"low\","
                             "\"hidden\":false}]}");
    ck_assert_int_eq(hs_property_create(hs, "deals", def, NULL), ERR_OK);
    cJSON *got = NULL;
    ck_assert_int_eq(hs_property_get(hs, "deals", "sf_priority", &got), ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(got, "options")), 2);
    cJSON_Delete(got);
    cJSON *all = NULL;
    ck_assert_int_eq(hs_properties_list(hs, "deals", &all), ERR_OK);
    bool listed = false, has_dealstage = false;
    cJSON_ArrayForEach(p, all)
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(p, "name"));
        listed = listed || strcmp(name, "sf_priority") == 0;
        has_dealstage = has_dealstage || strcmp(name, "dealstage") == 0;
    }
    ck_assert(listed && has_dealstage);
    cJSON_Delete(all);
    got = NULL;
    ck_assert_int_eq(hs_property_get(hs, "deals", "no_such_property", &got), ERR_NOT_FOUND);
    cJSON_Delete(def);
}
END_TEST

START_TEST(rate_limit_gives_a_retry_hint)
{
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"hubspot.rate_limit_max\":2}", NULL, NULL),
                     200);
    cJSON *obj = NULL;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(hs_pipelines_list(hs, "deals", &obj), ERR_OK);
        cJSON_Delete(obj);
        obj = NULL;
    }
    enum err rc = hs_pipelines_list(hs, "deals", &obj);
    ck_assert_int_eq(rc, ERR_RATE_LIMIT);
    ck_assert(err_is_transient(rc));
    ck_assert_ptr_null(obj);
    ck_assert_int_gt(hs_retry_after_ms(hs), 0);
    ck_assert_int_le(hs_retry_after_ms(hs), 10000);

    /* The daily limit: wait long, not a burst window. */
    ck_assert_int_eq(
        sbtest_call(&sb, "POST", "/_sandbox/hubspot/rate-limits/reset", NULL, NULL, NULL, NULL),
        204);
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"hubspot.rate_limit_max\":100,"
                                 "\"hubspot.rate_limit_daily\":1}",
                                 NULL, NULL),
                     200);
    ck_assert_int_eq(hs_pipelines_list(hs, "deals", &obj), ERR_OK);
    cJSON_Delete(obj);
    obj = NULL;
    ck_assert_int_eq(hs_pipelines_list(hs, "deals", &obj), ERR_RATE_LIMIT);
    ck_assert_int_ge(hs_retry_after_ms(hs), 3600000);
}
END_TEST

/* Search's own limit refuses a call the shared budget let through (here the budget assumes 5 per
 * second and HubSpot allows 1): the call goes again in place once the refusal's second is over,
 * so the caller gets its answer, not a rate limit that would give its whole batch back. */
START_TEST(a_search_refused_429_is_sent_again_in_place)
{
    PGconn *db = NULL;
    char *url = qtest_db("hs_resend", &db);
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.database_url = url;
    cfg.hs_burst_limit = 190;
    cfg.hs_search_per_second = 5;
    cfg.budget_max_wait_ms = 10000;
    struct api_budget *budget = api_budget_new(&cfg);
    hs_client_set_budget(hs, budget);
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"hubspot.search_per_second\":1}", NULL, NULL),
                     200);
    cJSON *req = cJSON_Parse("{\"filterGroups\":[],\"limit\":10}");
    cJSON *log = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "GET", "/_sandbox/requests?since=9000000000000000000", NULL,
                                 NULL, &log, NULL),
                     200);
    long long mark = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(log, "last_id"));
    cJSON_Delete(log);

    for (int i = 0; i < 2; i++) {
        cJSON *results = NULL;
        char *after = NULL;
        ck_assert_int_eq(hs_search(hs, "deals", req, NULL, &results, &after), ERR_OK);
        ck_assert(cJSON_IsArray(results));
        cJSON_Delete(results);
        free(after);
    }
    /* HubSpot saw the second search twice: refused, then answered. */
    char *since = xasprintf("/_sandbox/requests?since=%lld", mark);
    ck_assert_int_eq(sbtest_call(&sb, "GET", since, NULL, NULL, &log, NULL), 200);
    free(since);
    char statuses[64] = "";
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(log, "requests"))
    {
        if (strcmp(sbtest_str(r, "direction"), "in") == 0 &&
            strstr(sbtest_str(r, "path"), "/search")) {
            size_t n = strlen(statuses);
            snprintf(statuses + n, sizeof(statuses) - n, "%s%.0f", n ? " " : "",
                     cJSON_GetNumberValue(cJSON_GetObjectItem(r, "status")));
        }
    }
    cJSON_Delete(log);
    ck_assert_str_eq(statuses, "200 429 200");

    cJSON_Delete(req);
    hs_client_set_budget(hs, NULL);
    api_budget_free(budget);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(server_errors_and_bad_token)
{
    sandbox_fault(&sb, "{\"path\":\"/crm/v3/pipelines\",\"status\":502,\"count\":1}");
    cJSON *obj = NULL;
    ck_assert_int_eq(hs_pipelines_list(hs, "deals", &obj), ERR_UPSTREAM);
    ck_assert_int_eq(hs_pipelines_list(hs, "deals", &obj), ERR_OK);
    cJSON_Delete(obj);

    struct hs_client *bad = client_with_token("pat-wrong");
    obj = NULL;
    ck_assert_int_eq(hs_pipelines_list(bad, "deals", &obj), ERR_AUTH);
    ck_assert_ptr_null(obj);
    hs_client_free(bad);
}
END_TEST

/* The mapping's output is what HubSpot accepts, and what HubSpot gives back maps to the same
 * Salesforce values: after one SF->HS write, neither direction has anything left to write. */
START_TEST(mapped_opportunity_round_trips_through_hubspot)
{
    cJSON *owner = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "POST", "/_sandbox/hubspot/owners", NULL,
                                 "{\"email\":\"dana@example.com\",\"firstName\":\"Dana\","
                                 "\"lastName\":\"Deal\"}",
                                 &owner, NULL),
                     201);
    cJSON *owner_map = cJSON_CreateObject();
    cJSON_AddStringToObject(owner_map, "0055w00000BhqR0AAJ",
                            cJSON_GetStringValue(cJSON_GetObjectItem(owner, "id")));
    cJSON *stage_map = cJSON_Parse("{\"Prospecting\":\"appointmentscheduled\","
                                   "\"Closed Won\":\"closedwon\"}");
    cJSON *defs = NULL;
    ck_assert_int_eq(hs_properties_list(hs, "deals", &defs), ERR_OK);
    struct mapping_set *set = NULL;
    char *error = NULL;
    ck_assert_int_eq(mapping_set_new(NULL, &set, &error), ERR_OK);
    struct mapping_context ctx = {.stage_map = stage_map,
                                  .owner_map = owner_map,
                                  .hs_pipeline_id = "default",
                                  .hs_property_defs = defs};
    cJSON *opp = cJSON_Parse("{\"Name\":\"Express Logistics SLA\",\"Amount\":12345678.5,"
                             "\"CloseDate\":\"2017-04-03\",\"StageName\":\"Prospecting\","
                             "\"OwnerId\":\"0055w00000BhqR0AAJ\",\"Type\":\"New Business\","
                             "\"Description\":\"From Salesforce\"}");
    struct mapping_result r;
    ck_assert_int_eq(mapping_apply(set, &ctx, MAPPING_SF_TO_HS, opp, NULL, &r), ERR_OK);
    ck_assert_uint_eq(r.skip_count, 0);
    cJSON *deal = NULL;
    ck_assert_int_eq(hs_object_create(hs, "deals", r.changes, NULL, &deal), ERR_OK);
    mapping_result_clear(&r);

    char *props = mapping_hs_property_list(set);
    char *with_pipeline = xasprintf("%s,pipeline", props);
    cJSON *stored = NULL;
    ck_assert_int_eq(hs_object_get(hs, "deals",
                                   cJSON_GetStringValue(cJSON_GetObjectItem(deal, "id")), NULL,
                                   with_pipeline, NULL, &stored),
                     ERR_OK);
    const cJSON *hs_props = cJSON_GetObjectItem(stored, "properties");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(hs_props, "dealtype")),
                     "newbusiness");
    ck_assert_int_eq(mapping_apply(set, &ctx, MAPPING_SF_TO_HS, opp, hs_props, &r), ERR_OK);
    char *left = cJSON_PrintUnformatted(r.changes);
    ck_assert_msg(cJSON_GetArraySize(r.changes) == 0, "sf->hs still writes %s", left);
    free(left);
    mapping_result_clear(&r);
    ck_assert_int_eq(mapping_apply(set, &ctx, MAPPING_HS_TO_SF, opp, hs_props, &r), ERR_OK);
    left = cJSON_PrintUnformatted(r.changes);
    ck_assert_msg(cJSON_GetArraySize(r.changes) == 0 && r.skip_count == 0, "hs->sf still writes %s",
                  left);
    free(left);
    mapping_result_clear(&r);

    cJSON_Delete(stored);
    free(with_pipeline);
    free(props);
    cJSON_Delete(deal);
    cJSON_Delete(opp);
    mapping_set_free(set);
    cJSON_Delete(defs);
    cJSON_Delete(stage_map);
    cJSON_Delete(owner_map);
    cJSON_Delete(owner);
}
END_TEST

Suite *suite_hs_client(void);
Suite *suite_hs_client(void)
{
    Suite *s = suite_create("hs_client");
    TCase *tc = tcase_create("sandbox");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, deal_lifecycle_by_id_and_unique_property);
    tcase_add_test(tc, batch_upsert_splits_at_100_and_is_idempotent);
    tcase_add_test(tc, batch_create_update_archive_with_item_errors);
    tcase_add_test(tc, search_pages_through_results);
    tcase_add_test(tc, associations_v4);
    tcase_add_test(tc, pipelines_owners_and_properties);
    tcase_add_test(tc, rate_limit_gives_a_retry_hint);
    tcase_add_test(tc, a_search_refused_429_is_sent_again_in_place);
    tcase_add_test(tc, server_errors_and_bad_token);
    tcase_add_test(tc, mapped_opportunity_round_trips_through_hubspot);
    suite_add_tcase(s, tc);
    return s;
}
