/* test_sf_id.c - 15/18-character Salesforce ids, from the real outbound messages' ids. */
#include <check.h>

#include "sf_id.h"

static const struct {
    const char *id15;
    const char *id18;
} pairs[] = {
    /* OrganizationId: the API 47 capture has the 18-char form, its URLs the 15-char one. */
    {"00D7F00000107Xs", "00D7F00000107XsUAI"},
    /* Notification and action ids from the API 23 capture carry their suffixes. */
    {"04lV0000001ALsh", "04lV0000001ALshIAG"},
    {"04kV0000000CaSP", "04kV0000000CaSPIA0"},
};

START_TEST(fifteen_becomes_eighteen)
{
    char out[19];
    ck_assert(sf_id_to18(pairs[_i].id15, out));
    ck_assert_str_eq(out, pairs[_i].id18);
    ck_assert(sf_id_to18(pairs[_i].id18, out));
    ck_assert_str_eq(out, pairs[_i].id18);
    ck_assert(sf_id_equal(pairs[_i].id15, pairs[_i].id18));
}
END_TEST

START_TEST(invalid_ids_are_rejected)
{
    char out[19] = "untouched";
    ck_assert(!sf_id_is_valid("aContactId"));
    ck_assert(!sf_id_is_valid("someOrganizationId")); /* 18 chars, wrong checksum */
    ck_assert(!sf_id_is_valid("006Q0000009N3g!"));
    ck_assert(!sf_id_is_valid(""));
    ck_assert(!sf_id_is_valid(NULL));
    ck_assert(!sf_id_to18("notanid", out));
    ck_assert_str_eq(out, "untouched");
    ck_assert(!sf_id_equal("006Q0000009N3gf", "006Q0000009N3gF"));
}
END_TEST

Suite *suite_sf_id(void);
Suite *suite_sf_id(void)
{
    Suite *s = suite_create("sf_id");
    TCase *tc = tcase_create("ids");
    tcase_add_loop_test(tc, fifteen_becomes_eighteen, 0, sizeof(pairs) / sizeof(pairs[0]));
    tcase_add_test(tc, invalid_ids_are_rejected);
    suite_add_tcase(s, tc);
    return s;
}
