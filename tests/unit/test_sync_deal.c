/* test_sync_deal.c - the pure decisions of HubSpot-to-Salesforce sync: which values are the
 * same on both sides (echo and change detection), who wins a two-way conflict, SOQL literals
 * and the deal id field name check. */
#include <check.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "sf_setup.h"
#include "soql.h"
#include "sync_deal.h"
#include "sync_echo.h"
#include "util.h"

static const struct {
    const char *a; /* JSON texts */
    const char *b;
    bool same;
} values[] = {
    {"\"5000\"", "5000", true}, /* HubSpot text and Salesforce number */
    {"\"5000\"", "5000.0", true},
    {"\"120000.50\"", "120000.5", true},
    {"\"5000\"", "5001", false},
    {"\"2026-12-31\"", "\"2026-12-31T00:00:00.000Z\"", true}, /* date and its midnight */
    {"\"2026-12-31\"", "\"1798675200000\"", true},            /* HubSpot epoch ms */
    {"\"2026-12-31\"", "\"2027-01-01\"", false},
    {"\"2026-12-31T10:00:00.000Z\"", "\"2026-12-31T10:00:00.001Z\"", false},
    {"null", "\"\"", true}, /* blanks */
    {"null", "\"x\"", false},
    {"\"Acme\"", "\"Acme\"", true},
    {"\"Acme\"", "\"acme\"", false},
    {"true", "\"true\"", true},
    {"false", "\"true\"", false},
};

START_TEST(same_value_across_sides)
{
    cJSON *a = cJSON_Parse(values[_i].a);
    cJSON *b = cJSON_Parse(values[_i].b);
    ck_assert_msg(sync_deal_same_value(a, b) == values[_i].same, "%s vs %s", values[_i].a,
                  values[_i].b);
    ck_assert(sync_deal_same_value(b, a) == values[_i].same);
    cJSON_Delete(b);
    cJSON_Delete(a);
}
END_TEST

START_TEST(absent_is_blank)
{
    cJSON *empty = cJSON_CreateString("");
    ck_assert(sync_deal_same_value(NULL, empty));
    ck_assert(sync_deal_same_value(NULL, NULL));
    cJSON_Delete(empty);
}
END_TEST

START_TEST(later_second_wins_and_a_tie_keeps_salesforce)
{
    ck_assert(sync_deal_hubspot_wins(10000, 9000));
    ck_assert(!sync_deal_hubspot_wins(9000, 10000));
    /* Salesforce keeps seconds: 10.900 in HubSpot and 10.000 in Salesforce is a tie. */
    ck_assert(!sync_deal_hubspot_wins(10900, 10000));
    ck_assert(!sync_deal_hubspot_wins(10000, 10000));
}
END_TEST

START_TEST(soql_literals_are_escaped)
{
    struct buf b;
    buf_init(&b, 0);
    soql_append_quoted(&b, "O'Brien \\ \"x\"\n");
    ck_assert_str_eq(b.data, "'O\\'Brien \\\\ \\\"x\\\"\\n'");
    buf_clear(&b);
    buf_init(&b, 0);
    cJSON *list = cJSON_Parse("[\"a\", 1, \"b'c\"]");
    ck_assert_uint_eq(soql_append_in(&b, list), 2);
    ck_assert_str_eq(b.data, "('a', 'b\\'c')");
    cJSON_Delete(list);
    buf_clear(&b);
}
END_TEST

START_TEST(deal_id_field_must_be_a_custom_field)
{
    ck_assert(sf_setup_is_custom_field("HubSpot_Deal_Id__c"));
    ck_assert(sf_setup_is_custom_field("Deal1__c"));
    ck_assert(!sf_setup_is_custom_field("Name"));
    ck_assert(!sf_setup_is_custom_field("Bad__Name__c"));
    ck_assert(!sf_setup_is_custom_field("_x__c"));
    ck_assert(!sf_setup_is_custom_field("x'; DROP__c"));
    ck_assert(!sf_setup_is_custom_field(NULL));
}
END_TEST

/* The baseline rule: a pending field takes back its old baseline on both sides (null where there
 * was none), a field whose HubSpot value lost a conflict only on Salesforce's, every other field
 * keeps the value agreed in this sync. */
START_TEST(pending_fields_keep_their_old_baseline)
{
    cJSON *pending = cJSON_Parse("{\"Amount\":\"amount\",\"Type\":\"dealtype\"}");
    cJSON *old_sf = cJSON_Parse("{\"Amount\":100,\"Name\":\"Old\"}");
    cJSON *old_hs = cJSON_Parse("{\"amount\":\"100\",\"dealname\":\"Old\"}");
    cJSON *sf = cJSON_Parse("{\"Amount\":200,\"Name\":\"New\",\"Type\":\"X\"}");
    cJSON *hs = cJSON_Parse("{\"amount\":\"100\",\"dealname\":\"New\",\"dealtype\":\"y\"}");
    sync_deal_keep_baseline(pending, old_sf, old_hs, sf, hs);
    ck_assert_int_eq(cJSON_GetObjectItem(sf, "Amount")->valueint, 100);
    ck_assert_str_eq(cJSON_GetObjectItem(hs, "amount")->valuestring, "100");
    ck_assert_str_eq(cJSON_GetObjectItem(sf, "Name")->valuestring, "New");
    ck_assert_str_eq(cJSON_GetObjectItem(hs, "dealname")->valuestring, "New");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(sf, "Type")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(hs, "dealtype")));
    sync_deal_keep_baseline(NULL, old_sf, old_hs, sf, hs); /* nothing pending: unchanged */
    ck_assert_str_eq(cJSON_GetObjectItem(sf, "Name")->valuestring, "New");
    /* HubSpot's value lost a conflict on Name: Salesforce's old baseline back, HubSpot's value
     * (the loser) kept as HubSpot's baseline. */
    cJSON *lost = cJSON_Parse("{\"Name\":null}");
    sync_deal_keep_baseline(lost, old_sf, old_hs, sf, hs);
    ck_assert_str_eq(cJSON_GetObjectItem(sf, "Name")->valuestring, "Old");
    ck_assert_str_eq(cJSON_GetObjectItem(hs, "dealname")->valuestring, "New");
    cJSON_Delete(lost);
    cJSON_Delete(pending);
    cJSON_Delete(old_sf);
    cJSON_Delete(old_hs);
    cJSON_Delete(sf);
    cJSON_Delete(hs);
}
END_TEST

/* dealsync's remembered writes are forgotten once the record holds something else. */
START_TEST(written_values_the_record_no_longer_holds_are_forgotten)
{
    cJSON *written = cJSON_Parse("{\"amount\":\"100\",\"dealname\":\"A\",\"closedate\":"
                                 "\"2027-01-01\"}");
    cJSON *now = cJSON_Parse("{\"amount\":\"100.0\",\"dealname\":\"B\"}");
    sync_deal_prune_written(written, now);
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(written, "amount"));    /* same value */
    ck_assert_ptr_null(cJSON_GetObjectItem(written, "dealname"));     /* changed since */
    ck_assert_ptr_nonnull(cJSON_GetObjectItem(written, "closedate")); /* not read: kept */
    cJSON_Delete(written);
    cJSON_Delete(now);
}
END_TEST

/* A deal's description history, newest first, as HubSpot answers propertiesWithHistory: dealsync
 * (app 1160452) wrote "first" at 10:00:00; what came after decides. */
static cJSON *history_of(const char *after)
{
    char *json = xasprintf("[%s%s{\"value\":\"first\",\"timestamp\":\"2026-12-06T10:00:00.000Z\","
                           "\"sourceType\":\"INTEGRATION\",\"sourceId\":\"1160452\"}]",
                           after, *after ? "," : "");
    cJSON *h = cJSON_Parse(json);
    free(json);
    ck_assert_ptr_nonnull(h);
    return h;
}

START_TEST(history_tells_a_value_set_back_from_dealsyncs_write)
{
    cJSON *own = cJSON_CreateString("first");
    int64_t since = 0;
    ck_assert(util_parse_iso8601_ms("2026-12-06T10:00:00.000Z", &since));
    const char *user_back =
        "{\"value\":\"first\",\"timestamp\":\"2026-12-06T10:00:09.000Z\",\"sourceType\":"
        "\"CRM_UI\",\"sourceId\":\"userId:45678\",\"updatedByUserId\":45678},"
        "{\"value\":\"draft\",\"timestamp\":\"2026-12-06T10:00:05.000Z\",\"sourceType\":"
        "\"CRM_UI\",\"sourceId\":\"userId:45678\",\"updatedByUserId\":45678}";
    const char *other_app = "{\"value\":\"first\",\"timestamp\":\"2026-12-06T10:00:09.000Z\","
                            "\"sourceType\":\"INTEGRATION\",\"sourceId\":\"999\"}";
    const char *own_again = "{\"value\":\"first\",\"timestamp\":\"2026-12-06T10:00:09.000Z\","
                            "\"sourceType\":\"INTEGRATION\",\"sourceId\":\"1160452\"}";
    cJSON *h = history_of("");
    ck_assert(!sync_echo_history_changed(h, own, since, "1160452")); /* only dealsync's write */
    cJSON_Delete(h);
    h = history_of(user_back);
    ck_assert(sync_echo_history_changed(h, own, since, "1160452"));
    ck_assert(sync_echo_history_changed(h, own, since, NULL));
    /* Changes dealsync knew of already (the link's time is after them) are no news. */
    ck_assert(!sync_echo_history_changed(h, own, since + 10000, "1160452"));
    cJSON_Delete(h);
    h = history_of(other_app);
    ck_assert(sync_echo_history_changed(h, own, since, "1160452"));
    ck_assert(!sync_echo_history_changed(h, own, since, NULL)); /* app unknown: same value */
    cJSON_Delete(h);
    h = history_of(own_again);
    ck_assert(!sync_echo_history_changed(h, own, since, "1160452"));
    cJSON_Delete(h);
    /* A user's change that dealsync's later write of its value superseded is no news, though
     * the link's time lags behind both (a chaos run lost a Salesforce change so). */
    const char *written_over =
        "{\"value\":\"first\",\"timestamp\":\"2026-12-06T10:00:09.000Z\",\"sourceType\":"
        "\"INTEGRATION\",\"sourceId\":\"1160452\"},"
        "{\"value\":\"draft\",\"timestamp\":\"2026-12-06T10:00:05.000Z\",\"sourceType\":"
        "\"CRM_UI\",\"sourceId\":\"userId:45678\",\"updatedByUserId\":45678}";
    h = history_of(written_over);
    ck_assert(!sync_echo_history_changed(h, own, since, "1160452"));
    ck_assert(!sync_echo_history_changed(h, own, since, NULL));
    /* The order HubSpot lists the entries in does not matter. */
    cJSON *reversed = cJSON_CreateArray();
    while (cJSON_GetArraySize(h) > 0)
        cJSON_AddItemToArray(reversed, cJSON_DetachItemFromArray(h, cJSON_GetArraySize(h) - 1));
    ck_assert(!sync_echo_history_changed(reversed, own, since, "1160452"));
    cJSON_Delete(reversed);
    cJSON_Delete(h);
    h = history_of(user_back);
    reversed = cJSON_CreateArray();
    while (cJSON_GetArraySize(h) > 0)
        cJSON_AddItemToArray(reversed, cJSON_DetachItemFromArray(h, cJSON_GetArraySize(h) - 1));
    ck_assert(sync_echo_history_changed(reversed, own, since, "1160452"));
    cJSON_Delete(reversed);
    cJSON_Delete(h);
    cJSON_Delete(own);
}
END_TEST

Suite *suite_sync_deal(void);
Suite *suite_sync_deal(void)
{
    Suite *s = suite_create("sync_deal");
    TCase *tc = tcase_create("pure");
    tcase_add_loop_test(tc, same_value_across_sides, 0, sizeof(values) / sizeof(values[0]));
    tcase_add_test(tc, absent_is_blank);
    tcase_add_test(tc, later_second_wins_and_a_tie_keeps_salesforce);
    tcase_add_test(tc, soql_literals_are_escaped);
    tcase_add_test(tc, deal_id_field_must_be_a_custom_field);
    tcase_add_test(tc, pending_fields_keep_their_old_baseline);
    tcase_add_test(tc, written_values_the_record_no_longer_holds_are_forgotten);
    tcase_add_test(tc, history_tells_a_value_set_back_from_dealsyncs_write);
    suite_add_tcase(s, tc);
    return s;
}
