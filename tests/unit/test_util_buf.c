/* test_util_buf.c - util's growable buffer: markup escaping (the /admin page, SOAP faults, the
 * sandbox's outbound messages). */
#include <check.h>
#include <stdlib.h>

#include "util.h"

START_TEST(markup_escapes_the_five_characters_and_nothing_else)
{
    struct buf b;
    buf_init(&b, 0);
    ck_assert(buf_append_markup(&b, "a<b>&\"c\"'d' é"));
    ck_assert(buf_append_markup(&b, NULL));
    ck_assert(buf_append_markup(&b, ""));
    char *s = buf_steal(&b);
    ck_assert_str_eq(s, "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39; é");
    free(s);

    buf_init(&b, 8);
    ck_assert(!buf_append_markup(&b, "<<<"));
    ck_assert(b.is_over_limit);
    buf_clear(&b);
}
END_TEST

Suite *suite_util_buf(void);
Suite *suite_util_buf(void)
{
    Suite *s = suite_create("util_buf");
    TCase *tc = tcase_create("markup");
    tcase_add_test(tc, markup_escapes_the_five_characters_and_nothing_else);
    suite_add_tcase(s, tc);
    return s;
}
