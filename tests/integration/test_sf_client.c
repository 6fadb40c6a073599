/* test_sf_client.c - sf_client against the sandbox's Salesforce: the three OAuth flows, the
 * expired-session retry, sObject rows, query paging, collections, upsert by external id,
 * getUpdated/getDeleted, Tooling and the permission check. Assertions read the sandbox's own
 * state and request log, not only what the client says. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "http_client.h"
#include "itest.h"
#include "sandbox_checks.h"
#include "sf_client.h"
#include "util.h"

static struct sbtest sb;
static struct http_client *hc;

static void setup(void)
{
    sbtest_start(&sb, NULL);
    hc = http_client_new(NULL);
}

static void teardown(void)
{
    http_client_free(hc);
    sbtest_stop(&sb);
}

/* The sandbox's default connected app (tests/sandbox/sf_oauth.c). */
static struct sf_client *refresh_client(const char *refresh_token)
{
    struct sf_client_options opt = {
        .flow = SF_AUTH_REFRESH_TOKEN,
        .login_url = sb.base,
        .client_id = "sandbox-client-id",
        .client_secret = "sandbox-client-secret",
        .refresh_token = refresh_token,
        .api_version = "v60.0",
    };
    struct sf_client *sf = NULL;
    ck_assert_int_eq(sf_client_new(&opt, hc, &sf), ERR_OK);
    return sf;
}

static cJSON *opportunity(const char *name)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "Name", name);
    cJSON_AddStringToObject(o, "StageName", "Prospecting");
    cJSON_AddStringToObject(o, "CloseDate", "2026-12-31");
    cJSON_AddNumberToObject(o, "Amount", 120000.5);
    return o;
}

/* The record as the sandbox holds it (control API), including deleted ones. */
static cJSON *sandbox_record(const char *type, const char *id)
{
    char *path = xasprintf("/_sandbox/salesforce/records/%s/%s", type, id);
    cJSON *rec = NULL;
    ck_assert_int_eq(sbtest_call(&sb, "GET", path, NULL, NULL, &rec, NULL), 200);
    free(path);
    return rec;
}

START_TEST(refresh_token_flow_and_record_lifecycle)
{
    struct sf_client *sf = refresh_client("sandbox-refresh-token");
    cJSON *fields = opportunity("Acme renewal");
    char *id = NULL;
    ck_assert_int_eq(sf_sobject_create(sf, "Opportunity", fields, &id), ERR_OK);
    ck_assert_str_eq(sf_instance_url(sf), sb.base);
    ck_assert_ptr_nonnull(sf_limit_info(sf));
    ck_assert_ptr_nonnull(strstr(sf_limit_info(sf), "api-usage="));

    cJSON *rec = NULL;
    ck_assert_int_eq(sf_sobject_get(sf, "Opportunity", id, "Name,Amount,CloseDate", &rec), ERR_OK);
    ck_assert_str_eq(cJSON_GetObjectItem(rec, "Name")->valuestring, "Acme renewal");
    ck_assert_double_eq(cJSON_GetObjectItem(rec, "Amount")->valuedouble, 120000.5);
    cJSON_Delete(rec);

    cJSON *patch = cJSON_CreateObject();
    cJSON_AddStringToObject(patch, "Name", "Acme renewal 2");
    cJSON_AddNullToObject(patch, "Amount");
    ck_assert_int_eq(sf_sobject_update(sf, "Opportunity", id, patch), ERR_OK);
    rec = sandbox_record("Opportunity", id);
    ck_assert_str_eq(cJSON_GetObjectItem(rec, "Name")->valuestring, "Acme renewal 2");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(rec, "Amount")));
    cJSON_Delete(rec);

    ck_assert_int_eq(sf_sobject_delete(sf, "Opportunity", id), ERR_OK);
    rec = sandbox_record("Opportunity", id);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(rec, "IsDeleted")));
    cJSON_Delete(rec);
    /* Gone: reads and writes of a deleted record are "not found", not retried. */
    rec = NULL;
    ck_assert_int_eq(sf_sobject_get(sf, "Opportunity", id, NULL, &rec), ERR_NOT_FOUND);
    ck_assert_ptr_null(rec);
    ck_assert_int_eq(sf_sobject_update(sf, "Opportunity", id, patch), ERR_NOT_FOUND);
    /* One token for all of it. */
    ck_assert_int_eq(sandbox_count(&sb, "salesforce", "POST", "/services/oauth2/token"), 1);

    cJSON_Delete(patch);
    free(id);
    cJSON_Delete(fields);
    sf_client_free(sf);
}
END_TEST

START_TEST(expired_session_is_refreshed_once)
{
    struct sf_client *sf = refresh_client("sandbox-refresh-token");
    cJSON *records = NULL;
    ck_assert_int_eq(sf_query(sf, "SELECT Id FROM User", &records), ERR_OK);
    ck_assert_int_ge(cJSON_GetArraySize(records), 1);
    cJSON_Delete(records);
    ck_assert_int_eq(
        sbtest_call(&sb, "POST", "/_sandbox/salesforce/tokens/expire", NULL, NULL, NULL, NULL),
        200);
    records = NULL;
    ck_assert_int_eq(sf_query(sf, "SELECT Id FROM User", &records), ERR_OK);
    ck_assert_int_ge(cJSON_GetArraySize(records), 1);
    cJSON_Delete(records);
    ck_assert_int_eq(sandbox_count(&sb, "salesforce", "POST", "/services/oauth2/token"), 2);
    ck_assert_int_eq(sandbox_count(&sb, "salesforce", "GET", "/services/data/v60.0/query"),
                     3); /* ok, 401, retry */
    sf_client_free(sf);
}
END_TEST

START_TEST(refused_grant_is_an_auth_error)
{
    struct sf_client *sf = refresh_client("not-the-refresh-token");
    cJSON *records = NULL;
    ck_assert_int_eq(sf_query(sf, "SELECT Id FROM User", &records), ERR_AUTH);
    ck_assert_ptr_null(records);
    ck_assert_int_eq(sf_authenticate(sf), ERR_AUTH);
    ck_assert_int_eq(sandbox_count(&sb, "salesforce", "GET", "/services/data"), 0);
    sf_client_free(sf);
}
END_TEST

START_TEST(client_credentials_flow)
{
    struct sf_client_options opt = {
        .flow = SF_AUTH_CLIENT_CREDENTIALS,
        .login_url = sb.base,
        .client_id = "sandbox-client-id",
        .client_secret = "sandbox-client-secret",
        .api_version = "v60.0",
    };
    struct sf_client *sf = NULL;
    ck_assert_int_eq(sf_client_new(&opt, hc, &sf), ERR_OK);
    ck_assert_int_eq(sf_authenticate(sf), ERR_OK);
    bool has = false;
    ck_assert_int_eq(sf_user_has_permission(sf, "PermissionsApiEnabled", &has), ERR_OK);
    ck_assert(has);
    sf_client_free(sf);

    opt.client_secret = "wrong";
    ck_assert_int_eq(sf_client_new(&opt, hc, &sf), ERR_OK);
    ck_assert_int_eq(sf_authenticate(sf), ERR_AUTH);
    sf_client_free(sf);
}
END_TEST

START_TEST(jwt_bearer_flow)
{
    /* The connected app's certificate is the public half of a key made for this test. */
    char *key_path = xasprintf("%s/jwt-%d.key", itest_env("TEST_TMPDIR"), (int)getpid());
    char *pub_path = xasprintf("%s/jwt-%d.pub", itest_env("TEST_TMPDIR"), (int)getpid());
    EVP_PKEY *key = EVP_RSA_gen(2048);
    FILE *f = fopen(key_path, "w");
    ck_assert(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    f = fopen(pub_path, "w");
    ck_assert(PEM_write_PUBKEY(f, key));
    fclose(f);
    char *setting = xasprintf("{\"sf_jwt_public_key_path\":\"%s\"}", pub_path);
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL, setting, NULL, NULL), 200);

    struct sf_client_options opt = {
        .flow = SF_AUTH_JWT_BEARER,
        .login_url = sb.base,
        .audience = "https://login.salesforce.com",
        .client_id = "sandbox-client-id",
        .username = "integration@dealsync.test",
        .private_key_file = key_path,
        .api_version = "v60.0",
    };
    struct sf_client *sf = NULL;
    ck_assert_int_eq(sf_client_new(&opt, hc, &sf), ERR_OK);
    cJSON *records = NULL;
    ck_assert_int_eq(sf_query(sf, "SELECT Id, Username FROM User", &records), ERR_OK);
    cJSON_Delete(records);
    sf_client_free(sf);

    /* A user the org does not know is refused. */
    opt.username = "nobody@dealsync.test";
    ck_assert_int_eq(sf_client_new(&opt, hc, &sf), ERR_OK);
    ck_assert_int_eq(sf_authenticate(sf), ERR_AUTH);
    sf_client_free(sf);

    free(setting);
    EVP_PKEY_free(key);
    free(pub_path);
    free(key_path);
}
END_TEST

START_TEST(query_follows_next_records_url)
{
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"sf_query_batch_size\":2}", NULL, NULL),
                     200);
    struct sf_client *sf = refresh_client("sandbox-refresh-token");
    cJSON *batch = cJSON_CreateArray();
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof(name), "Paged %d", i);
        cJSON *o = opportunity(name);
        cJSON *attrs = cJSON_AddObjectToObject(o, "attributes");
        cJSON_AddStringToObject(attrs, "type", "Opportunity");
        cJSON_AddItemToArray(batch, o);
    }
    struct sf_save_result *res = NULL;
    size_t n = 0;
    ck_assert_int_eq(sf_collection_create(sf, batch, true, &res, &n), ERR_OK);
    ck_assert_uint_eq(n, 5);
    sf_save_results_free(res, n);

    cJSON *records = NULL;
    ck_assert_int_eq(
        sf_query(sf, "SELECT Id, Name FROM Opportunity WHERE Name LIKE 'Paged%' ORDER BY Name",
                 &records),
        ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(records), 5);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(records, 4), "Name")->valuestring,
                     "Paged 4");
    /* Three pages: the query and two nextRecordsUrl follow-ups. */
    ck_assert_int_eq(sandbox_count(&sb, "salesforce", "GET", "/services/data/v60.0/query"), 3);
    cJSON_Delete(records);

    records = NULL;
    ck_assert_int_eq(sf_query(sf, "SELEC Id FROM Opportunity", &records), ERR_INVALID);
    ck_assert_ptr_null(records);
    cJSON_Delete(batch);
    sf_client_free(sf);
}
END_TEST

START_TEST(collections_report_each_record)
{
    struct sf_client *sf = refresh_client("sandbox-refresh-token");
    cJSON *batch = cJSON_CreateArray();
    for (int i = 0; i < 3; i++) {
        cJSON *o = opportunity(i == 1 ? "" : "Collected");
        if (i == 1)
            cJSON_DeleteItemFromObject(o, "Name"); /* Name is required */
        cJSON_AddItemToObject(o, "attributes", cJSON_Parse("{\"type\":\"Opportunity\"}"));
        cJSON_AddItemToArray(batch, o);
    }
    struct sf_save_result *res = NULL;
    size_t n = 0;
    ck_assert_int_eq(sf_collection_create(sf, batch, false, &res, &n), ERR_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert(res[0].is_success && res[0].id && res[0].err == ERR_OK);
    ck_assert(!res[1].is_success && !res[1].id);
    ck_assert_str_eq(res[1].error_code, "REQUIRED_FIELD_MISSING");
    ck_assert_int_eq(res[1].err, ERR_INVALID);
    ck_assert(res[2].is_success && res[2].id);

    /* Update the two that exist, by id. */
    cJSON *updates = cJSON_CreateArray();
    const char *ids[2] = {res[0].id, res[2].id};
    for (int i = 0; i < 2; i++) {
        cJSON *u = cJSON_Parse("{\"attributes\":{\"type\":\"Opportunity\"},"
                               "\"StageName\":\"Closed Won\"}");
        cJSON_AddStringToObject(u, "id", ids[i]);
        cJSON_AddItemToArray(updates, u);
    }
    struct sf_save_result *upd = NULL;
    size_t un = 0;
    ck_assert_int_eq(sf_collection_update(sf, updates, false, &upd, &un), ERR_OK);
    ck_assert_uint_eq(un, 2);
    ck_assert(upd[0].is_success && upd[1].is_success);
    cJSON *rec = sandbox_record("Opportunity", ids[1]);
    ck_assert_str_eq(cJSON_GetObjectItem(rec, "StageName")->valuestring, "Closed Won");
    cJSON_Delete(rec);

    /* Delete one real id and one that does not exist. */
    const char *del_ids[2] = {ids[0], "006000000000000AAA"};
    struct sf_save_result *del = NULL;
    size_t dn = 0;
    ck_assert_int_eq(sf_collection_delete(sf, del_ids, 2, false, &del, &dn), ERR_OK);
    ck_assert_uint_eq(dn, 2);
    ck_assert(del[0].is_success);
    ck_assert(!del[1].is_success);
    rec = sandbox_record("Opportunity", ids[0]);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(rec, "IsDeleted")));
    cJSON_Delete(rec);

    sf_save_results_free(del, dn);
    sf_save_results_free(upd, un);
    cJSON_Delete(updates);
    sf_save_results_free(res, n);
    cJSON_Delete(batch);
    sf_client_free(sf);
}
END_TEST

START_TEST(upsert_by_external_id_field_made_through_tooling)
{
    struct sf_client *sf = refresh_client("sandbox-refresh-token");
    cJSON *field = cJSON_Parse("{\"FullName\":\"Opportunity.Hubspot_Deal_Id__c\","
                               "\"Metadata\":{\"label\":\"HubSpot Deal Id\",\"type\":\"Text\","
                               "\"length\":40,\"externalId\":true,\"unique\":true}}");
    char *field_id = NULL;
    ck_assert_int_eq(sf_tooling_create(sf, "CustomField", field, &field_id), ERR_OK);
    ck_assert_ptr_nonnull(field_id);
    char *again = NULL;
    ck_assert_int_eq(sf_tooling_create(sf, "CustomField", field, &again), ERR_INVALID);
    ck_assert_ptr_null(again);
    cJSON *found = NULL;
    ck_assert_int_eq(sf_tooling_query(sf,
                                      "SELECT Id, DeveloperName FROM CustomField WHERE "
                                      "DeveloperName = 'Hubspot_Deal_Id'",
                                      &found),
                     ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(found), 1);
    cJSON_Delete(found);

    cJSON *fields = opportunity("Upserted");
    char *id = NULL, *id2 = NULL;
    bool created = false;
    ck_assert_int_eq(
        sf_sobject_upsert(sf, "Opportunity", "Hubspot_Deal_Id__c", "9001", fields, &id, &created),
        ERR_OK);
    ck_assert(created);
    ck_assert_ptr_nonnull(id);
    cJSON_ReplaceItemInObject(fields, "Name", cJSON_CreateString("Upserted again"));
    ck_assert_int_eq(
        sf_sobject_upsert(sf, "Opportunity", "Hubspot_Deal_Id__c", "9001", fields, &id2, &created),
        ERR_OK);
    ck_assert(!created);
    if (id2)
        ck_assert_str_eq(id2, id);
    cJSON *rec = sandbox_record("Opportunity", id);
    ck_assert_str_eq(cJSON_GetObjectItem(rec, "Name")->valuestring, "Upserted again");
    ck_assert_str_eq(cJSON_GetObjectItem(rec, "Hubspot_Deal_Id__c")->valuestring, "9001");
    cJSON_Delete(rec);

    /* The collections form of the same, by the same external id. */
    cJSON *batch = cJSON_Parse("[{\"attributes\":{\"type\":\"Opportunity\"},"
                               "\"Hubspot_Deal_Id__c\":\"9001\",\"Name\":\"Batch upserted\"},"
                               "{\"attributes\":{\"type\":\"Opportunity\"},"
                               "\"Hubspot_Deal_Id__c\":\"9002\",\"Name\":\"Batch new\","
                               "\"StageName\":\"Prospecting\",\"CloseDate\":\"2027-01-31\"}]");
    struct sf_save_result *res = NULL;
    size_t n = 0;
    ck_assert_int_eq(
        sf_collection_upsert(sf, "Opportunity", "Hubspot_Deal_Id__c", batch, false, &res, &n),
        ERR_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert(res[0].is_success && !res[0].is_created);
    ck_assert_str_eq(res[0].id, id);
    ck_assert(res[1].is_success && res[1].is_created);

    sf_save_results_free(res, n);
    cJSON_Delete(batch);
    free(id2);
    free(id);
    cJSON_Delete(fields);
    free(field_id);
    cJSON_Delete(field);
    sf_client_free(sf);
}
END_TEST

START_TEST(updated_and_deleted_windows)
{
    struct sf_client *sf = refresh_client("sandbox-refresh-token");
    char *kept = NULL, *gone = NULL;
    cJSON *fields = opportunity("Window kept");
    ck_assert_int_eq(sf_sobject_create(sf, "Opportunity", fields, &kept), ERR_OK);
    ck_assert_int_eq(sf_sobject_create(sf, "Opportunity", fields, &gone), ERR_OK);
    ck_assert_int_eq(sf_sobject_delete(sf, "Opportunity", gone), ERR_OK);
    /* Salesforce covers only whole minutes before now: move both records 10 minutes back. */
    const char *ids[2] = {kept, gone};
    for (int i = 0; i < 2; i++) {
        char *path = xasprintf("/_sandbox/salesforce/records/Opportunity/%s/backdate", ids[i]);
        ck_assert_int_eq(sbtest_call(&sb, "POST", path, NULL, "{\"minutes\":10}", NULL, NULL), 200);
        free(path);
    }
    int64_t now = util_now_ms();
    cJSON *updated = NULL, *deleted = NULL;
    int64_t latest = 0;
    ck_assert_int_eq(sf_get_updated(sf, "Opportunity", now - 3600000, now, &updated, &latest),
                     ERR_OK);
    ck_assert_int_gt(latest, now - 120000);
    ck_assert_int_le(latest, now);
    bool has_kept = false, has_gone = false;
    const cJSON *e;
    cJSON_ArrayForEach(e, updated)
    {
        has_kept = has_kept || strcmp(e->valuestring, kept) == 0;
        has_gone = has_gone || strcmp(e->valuestring, gone) == 0;
    }
    ck_assert(has_kept && !has_gone);
    ck_assert_int_eq(sf_get_deleted(sf, "Opportunity", now - 3600000, now, &deleted, &latest),
                     ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(deleted), 1);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(deleted, 0), "id")->valuestring, gone);
    int64_t deleted_ms = 0;
    ck_assert(sf_datetime_parse(
        cJSON_GetObjectItem(cJSON_GetArrayItem(deleted, 0), "deletedDate")->valuestring,
        &deleted_ms));
    ck_assert_int_lt(deleted_ms, now - 9 * 60000);
    /* More than 15 days back is refused by Salesforce. */
    cJSON *none = NULL;
    ck_assert_int_eq(sf_get_deleted(sf, "Opportunity", now - 20LL * 86400000, now, &none, &latest),
                     ERR_INVALID);
    ck_assert_ptr_null(none);

    cJSON_Delete(deleted);
    cJSON_Delete(updated);
    cJSON_Delete(fields);
    free(gone);
    free(kept);
    sf_client_free(sf);
}
END_TEST

START_TEST(request_limit_is_a_rate_limit)
{
    struct sf_client *sf = refresh_client("sandbox-refresh-token");
    ck_assert_int_eq(sf_authenticate(sf), ERR_OK);
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/salesforce/usage", NULL,
                                 "{\"used\":100000}", NULL, NULL),
                     200);
    cJSON *rec = NULL;
    enum err rc = sf_sobject_get(sf, "Opportunity", "006000000000000AAA", NULL, &rec);
    ck_assert_int_eq(rc, ERR_RATE_LIMIT);
    ck_assert(err_is_transient(rc));
    sf_client_free(sf);
}
END_TEST

START_TEST(permission_check)
{
    struct sf_client *sf = refresh_client("sandbox-refresh-token");
    bool has = false;
    ck_assert_int_eq(sf_user_has_permission(sf, "PermissionsModifyAllData", &has), ERR_OK);
    ck_assert(has);
    ck_assert_int_eq(sbtest_call(&sb, "PUT", "/_sandbox/settings", NULL,
                                 "{\"sf_permissions\":\"modify_metadata\"}", NULL, NULL),
                     200);
    ck_assert_int_eq(sf_user_has_permission(sf, "PermissionsModifyAllData", &has), ERR_OK);
    ck_assert(!has);
    ck_assert_int_eq(sf_user_has_permission(sf, "PermissionsModifyMetadata", &has), ERR_OK);
    ck_assert(has);
    /* Unknown to the org (INVALID_FIELD), and not a permission name at all. */
    ck_assert_int_eq(sf_user_has_permission(sf, "PermissionsFlyToTheMoon", &has), ERR_INVALID);
    ck_assert_int_eq(sf_user_has_permission(sf, "Id FROM User --", &has), ERR_INVALID);
    sf_client_free(sf);
}
END_TEST

Suite *suite_sf_client(void);
Suite *suite_sf_client(void)
{
    Suite *s = suite_create("sf_client");
    TCase *tc = tcase_create("sandbox");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, refresh_token_flow_and_record_lifecycle);
    tcase_add_test(tc, expired_session_is_refreshed_once);
    tcase_add_test(tc, refused_grant_is_an_auth_error);
    tcase_add_test(tc, client_credentials_flow);
    tcase_add_test(tc, jwt_bearer_flow);
    tcase_add_test(tc, query_follows_next_records_url);
    tcase_add_test(tc, collections_report_each_record);
    tcase_add_test(tc, upsert_by_external_id_field_made_through_tooling);
    tcase_add_test(tc, updated_and_deleted_windows);
    tcase_add_test(tc, request_limit_is_a_rate_limit);
    tcase_add_test(tc, permission_check);
    suite_add_tcase(s, tc);
    return s;
}
