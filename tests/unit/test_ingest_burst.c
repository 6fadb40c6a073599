/* test_ingest_burst.c - when the inbox splitter counts the stored bodies as a burst (and holds
 * its batches back), on given clock readings: live traffic never, 250 requests a second and
 * more at once, and over one to two windows after the requests stop. */
#include <check.h>

#include "ingest_split.h"

/* Notes n bodies evenly over ms milliseconds from start; returns whether a burst was on at
 * any of them. */
static bool note_evenly(struct ingest_burst *b, int64_t start, int n, int64_t ms)
{
    bool was_on = false;
    for (int i = 0; i < n; i++) {
        int64_t now = start + ms * i / n;
        ingest_burst_note(b, now);
        was_on |= ingest_burst_is_on(b, now);
    }
    return was_on;
}

START_TEST(zeroed_is_no_burst)
{
    struct ingest_burst b = {0};
    ck_assert(!ingest_burst_is_on(&b, 5000));
}
END_TEST

START_TEST(a_window_full_of_bodies_is_a_burst)
{
    struct ingest_burst b = {0};
    for (int i = 0; i < INGEST_BURST_BODIES - 1; i++)
        ingest_burst_note(&b, 1000 + i);
    ck_assert(!ingest_burst_is_on(&b, 1000 + INGEST_BURST_BODIES));
    ingest_burst_note(&b, 1000 + INGEST_BURST_BODIES);
    ck_assert(ingest_burst_is_on(&b, 1000 + INGEST_BURST_BODIES));
}
END_TEST

START_TEST(a_burst_is_over_two_windows_after_its_last_body)
{
    struct ingest_burst b = {0};
    for (int i = 0; i < INGEST_BURST_BODIES; i++)
        ingest_burst_note(&b, 1000 + i);
    /* Its own window, then the next one (it is the previous window there). */
    ck_assert(ingest_burst_is_on(&b, 1000 + INGEST_BURST_WINDOW_MS - 1));
    ck_assert(ingest_burst_is_on(&b, 1000 + 2 * INGEST_BURST_WINDOW_MS - 1));
    ck_assert(!ingest_burst_is_on(&b, 1000 + 2 * INGEST_BURST_WINDOW_MS));
}
END_TEST

START_TEST(a_long_pause_forgets_the_burst)
{
    struct ingest_burst b = {0};
    for (int i = 0; i < INGEST_BURST_BODIES; i++)
        ingest_burst_note(&b, 1000 + i);
    /* Not asked in between: the windows since are empty all the same. */
    ingest_burst_note(&b, 1000 + 5 * INGEST_BURST_WINDOW_MS);
    ck_assert(!ingest_burst_is_on(&b, 1000 + 5 * INGEST_BURST_WINDOW_MS));
}
END_TEST

START_TEST(live_traffic_is_no_burst)
{
    /* 100 and 200 requests a second for 10 s (the end-to-end benchmark's both sides together
     * stay under 100), then a burst at 300 a second. */
    struct ingest_burst b = {0};
    ck_assert(!note_evenly(&b, 1000, 1000, 10000));
    ck_assert(!note_evenly(&b, 11000, 2000, 10000));
    ck_assert(note_evenly(&b, 21000, 300, 1000));
}
END_TEST

Suite *suite_ingest_burst(void);
Suite *suite_ingest_burst(void)
{
    Suite *s = suite_create("ingest_burst");
    TCase *tc = tcase_create("burst");
    tcase_add_test(tc, zeroed_is_no_burst);
    tcase_add_test(tc, a_window_full_of_bodies_is_a_burst);
    tcase_add_test(tc, a_burst_is_over_two_windows_after_its_last_body);
    tcase_add_test(tc, a_long_pause_forgets_the_burst);
    tcase_add_test(tc, live_traffic_is_no_burst);
    suite_add_tcase(s, tc);
    return s;
}
