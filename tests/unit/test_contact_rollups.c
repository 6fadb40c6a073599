/* test_contact_rollups.c - the contact properties computed from the synced deals: roll-ups
 * written only where they differ, lifecycle stage only forward. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "contact_rollups.h"
#include "util.h"

static void config_init(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->rollup_num_deals_property = "n";
    cfg->rollup_first_deal_created_property = "first";
    cfg->rollup_recent_close_date_property = "close";
    cfg->rollup_recent_amount_property = "recent";
    cfg->rollup_total_revenue_property = "total";
    cfg->lifecycle_stage_sync = true;
}

static const char *get(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItem(o, name));
}

START_TEST(new_contact_gets_everything)
{
    struct config cfg;
    config_init(&cfg);
    struct contact_rollup r = {
        2, 1767225600000LL, 1798675200000LL, xstrdup("5000.00"), xstrdup("150000.00"), true, true};
    cJSON *c = contact_rollup_changes(&cfg, &r, NULL);
    ck_assert_str_eq(get(c, "n"), "2");
    ck_assert_str_eq(get(c, "first"), "2026-01-01T00:00:00.000Z");
    ck_assert_str_eq(get(c, "close"), "2026-12-31T00:00:00.000Z");
    ck_assert_str_eq(get(c, "recent"), "5000");
    ck_assert_str_eq(get(c, "total"), "150000");
    ck_assert_str_eq(get(c, "lifecyclestage"), "customer");
    cJSON_Delete(c);
    contact_rollup_clear(&r);
}
END_TEST

START_TEST(equal_values_are_not_written_again)
{
    struct config cfg;
    config_init(&cfg);
    struct contact_rollup r = {1,    1767225600000LL, -1, xstrdup("120000"), xstrdup("0"), true,
                               false};
    cJSON *current = cJSON_Parse("{\"n\":\"1\",\"first\":\"2026-01-01T00:00:00Z\",\"close\":null,"
                                 "\"recent\":\"120000.0\",\"total\":\"0\","
                                 "\"lifecyclestage\":\"opportunity\"}");
    cJSON *c = contact_rollup_changes(&cfg, &r, current);
    ck_assert_int_eq(cJSON_GetArraySize(c), 0);
    cJSON_Delete(c);
    cJSON_Delete(current);
    contact_rollup_clear(&r);
}
END_TEST

START_TEST(lifecycle_never_moves_back)
{
    struct config cfg;
    config_init(&cfg);
    /* Only open deals now, but the contact is already a customer (or an evangelist). */
    struct contact_rollup r = {1, 0, -1, NULL, xstrdup("0"), true, false};
    cJSON *current = cJSON_Parse("{\"lifecyclestage\":\"customer\"}");
    cJSON *c = contact_rollup_changes(&cfg, &r, current);
    ck_assert_ptr_null(cJSON_GetObjectItem(c, "lifecyclestage"));
    cJSON_Delete(c);
    cJSON_Delete(current);
    contact_rollup_clear(&r);
    ck_assert(lifecycle_is_forward("lead", "opportunity"));
    ck_assert(lifecycle_is_forward("", "opportunity"));
    ck_assert(lifecycle_is_forward(NULL, "customer"));
    ck_assert(lifecycle_is_forward("opportunity", "customer"));
    ck_assert(!lifecycle_is_forward("customer", "opportunity"));
    ck_assert(!lifecycle_is_forward("evangelist", "customer"));
    ck_assert(!lifecycle_is_forward("opportunity", "opportunity"));
}
END_TEST

START_TEST(a_contact_without_deals_is_cleared)
{
    struct config cfg;
    config_init(&cfg);
    struct contact_rollup r = {0, -1, -1, NULL, xstrdup("0"), false, false};
    cJSON *current = cJSON_Parse("{\"n\":\"1\",\"first\":\"2026-01-01T00:00:00.000Z\","
                                 "\"recent\":\"10\",\"total\":\"0\",\"lifecyclestage\":\"lead\"}");
    cJSON *c = contact_rollup_changes(&cfg, &r, current);
    ck_assert_str_eq(get(c, "n"), "0");
    ck_assert_str_eq(get(c, "first"), "");
    ck_assert_str_eq(get(c, "recent"), "");
    ck_assert_ptr_null(cJSON_GetObjectItem(c, "total"));
    ck_assert_ptr_null(cJSON_GetObjectItem(c, "close"));
    ck_assert_ptr_null(cJSON_GetObjectItem(c, "lifecyclestage"));
    cJSON_Delete(c);
    cJSON_Delete(current);
    contact_rollup_clear(&r);
}
END_TEST

/* LIFECYCLE_STAGE_SYNC=false (HubSpot's "automatic lifecycle stage transitions" off): the
 * roll-ups are written, the lifecycle stage is left to the team. */
START_TEST(lifecycle_stage_sync_off_leaves_the_stage)
{
    struct config cfg;
    config_init(&cfg);
    cfg.lifecycle_stage_sync = false;
    struct contact_rollup r = {
        1, 1767225600000LL, 1798675200000LL, xstrdup("5000"), xstrdup("5000"), true, false};
    cJSON *c = contact_rollup_changes(&cfg, &r, NULL);
    ck_assert_str_eq(get(c, "n"), "1");
    ck_assert_ptr_null(cJSON_GetObjectItem(c, "lifecyclestage"));
    cJSON_Delete(c);
    contact_rollup_clear(&r);
}
END_TEST

/* The roll-ups of a contact dealsync is about to create, from the batch's deals: the same
 * answers contact_rollup_load's query gives (ties in the creation time go to the larger
 * opportunity id). */
START_TEST(rollups_of_the_batch_deals)
{
    struct synced_deal d[] = {
        {"006A", "1", 1767225600000LL, -1, "100", false, false},
        {"006B", "2", 1767312000000LL, 1798675200000LL, "250.5", true, true},
        {"006C", "3", 1767312000000LL, 1798761600000LL, "1000", true, true},
    };
    struct contact_rollup r;
    contact_rollup_of(d, 3, &r);
    ck_assert_int_eq(r.num_deals, 3);
    ck_assert_int_eq(r.first_created_ms, 1767225600000LL);
    ck_assert_int_eq(r.recent_close_ms, 1798761600000LL);
    ck_assert_str_eq(r.recent_amount, "1000");
    ck_assert_str_eq(r.total_revenue, "1250.5");
    ck_assert(r.has_open && r.has_won);
    contact_rollup_clear(&r);

    contact_rollup_of(d, 0, &r);
    ck_assert_int_eq(r.num_deals, 0);
    ck_assert_int_eq(r.first_created_ms, -1);
    ck_assert_int_eq(r.recent_close_ms, -1);
    ck_assert_ptr_null(r.recent_amount);
    ck_assert_str_eq(r.total_revenue, "0");
    ck_assert(!r.has_open && !r.has_won);
    contact_rollup_clear(&r);
}
END_TEST

Suite *suite_contact_rollups(void);
Suite *suite_contact_rollups(void)
{
    Suite *s = suite_create("contact_rollups");
    TCase *tc = tcase_create("pure");
    tcase_add_test(tc, new_contact_gets_everything);
    tcase_add_test(tc, equal_values_are_not_written_again);
    tcase_add_test(tc, lifecycle_never_moves_back);
    tcase_add_test(tc, a_contact_without_deals_is_cleared);
    tcase_add_test(tc, lifecycle_stage_sync_off_leaves_the_stage);
    tcase_add_test(tc, rollups_of_the_batch_deals);
    suite_add_tcase(s, tc);
    return s;
}
