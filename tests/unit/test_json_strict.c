/* test_json_strict.c - the strict JSON checker, exact integers and the UTF-8 check. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "json_strict.h"

static const struct {
    const char *text;
    const char *why; /* NULL: accepted */
} cases[] = {
    {"[1, 2.5, -0, 1e5, \"a\\u00e9\\ud83d\\ude00\", true, false, null, {}]", NULL},
    {" {\"a\": {\"b\": [1]}, \"c\": \"\"} \n", NULL},
    {"{\"\": 1, \"a\": 2}", NULL},
    {"{\"a\": 1, \"a\": 2}", "the same key twice"},
    {"{\"a\": 1, \"\\u0061\": 2}", "the same key twice"},
    {"[{\"x\":1},{\"x\":2}]", NULL},
    {"{\"a\\\"b\": 1, \"a\\u0022b\": 2}", "the same key twice"},
    /* more keys than the checker keeps on its stack */
    {"{\"k1\":1,\"k2\":1,\"k3\":1,\"k4\":1,\"k5\":1,\"k6\":1,\"k7\":1,\"k8\":1,\"k9\":1,"
     "\"k10\":1,\"k11\":1,\"k12\":1,\"k13\":1,\"k14\":1,\"k15\":1,\"k16\":1,\"k17\":1,"
     "\"k18\":1}",
     NULL},
    {"{\"k1\":1,\"k2\":1,\"k3\":1,\"k4\":1,\"k5\":1,\"k6\":1,\"k7\":1,\"k8\":1,\"k9\":1,"
     "\"k10\":1,\"k11\":1,\"k12\":1,\"k13\":1,\"k14\":1,\"k15\":1,\"k16\":1,\"k17\":1,"
     "\"k1\":2}",
     "the same key twice"},
    {"[\"a\\u0000b\"]", "\\u0000"},
    {"[\"\\ud800\"]", "unpaired surrogate"},
    {"[\"\\udc00x\"]", "unpaired surrogate"},
    {"[] []", "bytes after the value"},
    {"[]x", "bytes after the value"},
    {"[1,]", "unexpected character"},
    {"{\"a\":1,}", "expected a key"},
    {"[01]", "expected ',' or ']'"},
    {"[1.]", "bad number"},
    {"[-]", "bad number"},
    {"[\"tab\there\"]", "control character"},
    {"[\"\\x\"]", "bad escape"},
    {"[\"open", "unterminated string"},
    {"", "unexpected end"},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "nested too deep"},
};

START_TEST(strict_rules)
{
    char *why = NULL;
    struct json_numbers nums = {0};
    bool ok = json_strict_check(cases[_i].text, strlen(cases[_i].text), &nums, &why);
    if (!cases[_i].why) {
        ck_assert_msg(ok, "%s refused: %s", cases[_i].text, why ? why : "");
    } else {
        ck_assert_msg(!ok, "%s accepted", cases[_i].text);
        ck_assert_msg(strstr(why, cases[_i].why), "%s: got '%s'", cases[_i].text, why);
        ck_assert_uint_eq(nums.count, 0);
    }
    free(why);
    json_numbers_clear(&nums);
}
END_TEST

START_TEST(integers_keep_every_digit)
{
    const char *text = "{\"id\":9007199254740993,\"f\":1.5,\"n\":[-12345678901234567890,3e2]}";
    char *why = NULL;
    struct json_numbers nums = {0};
    ck_assert(json_strict_check(text, strlen(text), &nums, &why));
    ck_assert_uint_eq(nums.count, 4);
    cJSON *tree = cJSON_Parse(text);
    json_exact_integers(tree, &nums);
    char *printed = cJSON_PrintUnformatted(tree);
    ck_assert_str_eq(printed,
                     "{\"id\":9007199254740993,\"f\":1.5,\"n\":[-12345678901234567890,300]}");
    /* A copy keeps them too (queue_push duplicates the payload). */
    cJSON *copy = cJSON_Duplicate(cJSON_GetObjectItem(tree, "id"), true);
    ck_assert(cJSON_IsRaw(copy));
    ck_assert_str_eq(copy->valuestring, "9007199254740993");
    cJSON_Delete(copy);
    free(printed);
    cJSON_Delete(tree);
    json_numbers_clear(&nums);
}
END_TEST

START_TEST(utf8)
{
    ck_assert(json_is_utf8("plain", 5));
    ck_assert(json_is_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    ck_assert(!json_is_utf8("\xc3\x28", 2));         /* bad continuation */
    ck_assert(!json_is_utf8("\xc0\xaf", 2));         /* overlong */
    ck_assert(!json_is_utf8("\xed\xa0\x80", 3));     /* surrogate */
    ck_assert(!json_is_utf8("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    ck_assert(!json_is_utf8("\xe2\x82", 2));         /* cut short */
    ck_assert(!json_is_utf8("\xff", 1));
}
END_TEST

Suite *suite_json_strict(void);
Suite *suite_json_strict(void)
{
    Suite *s = suite_create("json_strict");
    TCase *tc = tcase_create("json_strict");
    tcase_add_loop_test(tc, strict_rules, 0, sizeof(cases) / sizeof(cases[0]));
    tcase_add_test(tc, integers_keep_every_digit);
    tcase_add_test(tc, utf8);
    suite_add_tcase(s, tc);
    return s;
}
