/* test_link.c - record links against a real PostgreSQL, saved by several workers at once: two
 * workers (of one process or of two) that resolve the same contact for their batches both save
 * its link, and neither may fail for it. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "itest.h"
#include "link.h"
#include "qtest.h"
#include "util.h"

enum { SAVERS = 4, PAIRS = 100 };

struct saver {
    const char *url;
    int conflicts;
    int failures;
};

/* A Description bulky enough to open the race's window (itest_incompressible_text). */
static cJSON *bulky(void)
{
    cJSON *o = cJSON_CreateObject();
    char *text = itest_incompressible_text(256 * 1024, 7);
    cJSON_AddStringToObject(o, "Description", text);
    free(text);
    return o;
}

/* Saves the links of PAIRS contacts, as each worker resolving them for its batch would. */
static void *save_all(void *arg)
{
    struct saver *s = arg;
    PGconn *db = PQconnectdb(s->url);
    cJSON *written = bulky();
    for (int i = 0; i < PAIRS && PQstatus(db) == CONNECTION_OK; i++) {
        char sf[19], hs[16];
        snprintf(sf, sizeof(sf), "0035w%013d", i);
        snprintf(hs, sizeof(hs), "%d", 1000 + i);
        struct link l = {0};
        l.kind = LINK_CONTACT;
        l.sf_id = sf;
        l.hs_id = hs;
        l.sf_written = written;
        enum err rc = link_save(db, &l);
        s->conflicts += rc == ERR_CONFLICT;
        s->failures += rc != ERR_OK;
    }
    if (PQstatus(db) != CONNECTION_OK)
        s->failures++;
    cJSON_Delete(written);
    PQfinish(db);
    return NULL;
}

START_TEST(the_same_link_saved_by_several_workers_at_once)
{
    /* Found by test_e2e_budget two_processes: two processes' first batches resolved the same
     * two contacts; both saved the links; PostgreSQL's ON CONFLICT covers the (kind, sf_id) key
     * only, so the second insert could hit the (kind, hs_id) key first and fail with a unique
     * violation: ERR_CONFLICT, and the whole batch (20 opportunities) was dead-lettered. */
    PGconn *db;
    char *url = qtest_db("link_race", &db);
    struct saver savers[SAVERS] = {0};
    pthread_t threads[SAVERS];
    for (int i = 0; i < SAVERS; i++) {
        savers[i].url = url;
        ck_assert_int_eq(pthread_create(&threads[i], NULL, save_all, &savers[i]), 0);
    }
    int conflicts = 0, failures = 0;
    for (int i = 0; i < SAVERS; i++) {
        pthread_join(threads[i], NULL);
        conflicts += savers[i].conflicts;
        failures += savers[i].failures;
    }
    ck_assert_msg(failures == 0, "%d of %d saves failed, %d with a conflict", failures,
                  SAVERS * PAIRS, conflicts);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM record_link WHERE kind = 'contact'"),
                     PAIRS);
    PQfinish(db);
    free(url);
}
END_TEST

Suite *suite_link(void);
Suite *suite_link(void)
{
    Suite *s = suite_create("link");
    TCase *tc = tcase_create("postgres");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, the_same_link_saved_by_several_workers_at_once);
    suite_add_tcase(s, tc);
    return s;
}
