/* test_sync_cache.c - the database reads and writes a sync batch makes per record, against a
 * real PostgreSQL: links and maps remembered for a batch (sync_cache.h) never hide a write of
 * the batch's own or one made before a pair lock was taken; a link saved over a stale pair in
 * one round trip still unlinks it; a synced deal and its contacts saved in one statement. */
#include <check.h>
#include <stdlib.h>

#include "contact_rollups.h"
#include "itest.h"
#include "link.h"
#include "qtest.h"
#include "sync_cache.h"
#include "sync_pair.h"
#include "sync_state.h"

#define OPP "0065w000000000OAAQ"
#define OPP2 "0065w000000001OAAQ"
#define DEAL "20000000001"
#define DEAL2 "20000000002"

static void save(PGconn *db, const char *sf_id, const char *hs_id, const char *written_json)
{
    struct link l = {0};
    l.kind = LINK_OPPORTUNITY;
    l.sf_id = (char *)sf_id;
    l.hs_id = (char *)hs_id;
    l.hs_written = written_json ? cJSON_Parse(written_json) : NULL;
    ck_assert_int_eq(link_save(db, &l), ERR_OK);
    cJSON_Delete(l.hs_written);
}

/* The hs_written "amount" of sf_id's link, "" when none; NULL when there is no link. */
static char *written_amount(PGconn *db, const char *sf_id)
{
    struct link l = {0};
    enum err rc = link_find_by_sf(db, LINK_OPPORTUNITY, sf_id, &l);
    if (rc == ERR_NOT_FOUND)
        return NULL;
    ck_assert_int_eq(rc, ERR_OK);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(l.hs_written, "amount");
    char *out = strdup(cJSON_IsString(a) ? a->valuestring : "");
    link_clear(&l);
    return out;
}

static char *hs_partner(PGconn *db, const char *hs_id)
{
    struct link l = {0};
    enum err rc = link_find_by_hs(db, LINK_OPPORTUNITY, hs_id, &l);
    if (rc == ERR_NOT_FOUND)
        return NULL;
    ck_assert_int_eq(rc, ERR_OK);
    char *out = strdup(l.sf_id);
    link_clear(&l);
    return out;
}

START_TEST(a_batch_reads_a_link_once_and_sees_its_own_writes)
{
    PGconn *db;
    char *url = qtest_db("cache_links", &db);
    PGconn *other = itest_db_connect(url); /* another worker, or an operator */
    save(db, OPP, DEAL, "{\"amount\": \"1\"}");

    sync_cache_begin();
    const char *ids[] = {OPP, OPP2};
    ck_assert_int_eq(link_prefetch(db, false, ids, 2), ERR_OK);
    /* Read once: a change behind the batch's back (no pair lock taken) is not seen... */
    itest_db_exec(other, "UPDATE record_link SET hs_written = '{\"amount\": \"2\"}'");
    char *a = written_amount(db, OPP);
    ck_assert_str_eq(a, "1");
    free(a);
    ck_assert_ptr_null(written_amount(db, OPP2)); /* remembered as not linked */

    /* ...until the record's pair lock is taken: then the link is read anew. */
    bool got = false;
    ck_assert_int_eq(sync_pair_try_lock(db, SYNC_PAIR_SF, OPP, &got), ERR_OK);
    ck_assert(got);
    a = written_amount(db, OPP);
    ck_assert_str_eq(a, "2");
    free(a);

    /* The batch's own writes are seen at once: noted values, a new partner, a stale pair
     * unlinked, a delete. */
    cJSON *noted = cJSON_Parse("{\"amount\": \"3\", \"dealname\": \"x\"}");
    ck_assert_int_eq(link_note_written(db, LINK_OPPORTUNITY, OPP, true, noted), ERR_OK);
    cJSON_Delete(noted);
    a = written_amount(db, OPP);
    ck_assert_str_eq(a, "3");
    free(a);
    char *p = hs_partner(db, DEAL);
    ck_assert_str_eq(p, OPP);
    free(p);
    save(db, OPP, DEAL2, NULL);
    ck_assert_ptr_null(hs_partner(db, DEAL));
    p = hs_partner(db, DEAL2);
    ck_assert_str_eq(p, OPP);
    free(p);
    save(db, OPP2, DEAL2, NULL); /* DEAL2 is OPP2's now: OPP's pair is stale, and unlinked */
    ck_assert_ptr_null(written_amount(db, OPP));
    p = hs_partner(db, DEAL2);
    ck_assert_str_eq(p, OPP2);
    free(p);
    ck_assert_int_eq(link_delete_by_hs(db, LINK_OPPORTUNITY, DEAL2), ERR_OK);
    ck_assert_ptr_null(written_amount(db, OPP2));
    sync_pair_unlock_all(db);

    /* A deal remembered as not linked, linked meanwhile by the worker that held its new
     * opportunity (it made the deal): taking the opportunity's lock, the deal's link is read
     * anew, so the deal is not taken for an unlinked one (a second opportunity). */
    const char *deals[] = {DEAL};
    ck_assert_int_eq(link_prefetch(db, true, deals, 1), ERR_OK);
    ck_assert_ptr_null(hs_partner(db, DEAL));
    itest_db_exec(other, "INSERT INTO record_link (kind, sf_id, hs_id)"
                         " VALUES ('opportunity', '" OPP "', '" DEAL "')");
    ck_assert_int_eq(sync_pair_try_lock(db, SYNC_PAIR_SF, OPP, &got), ERR_OK);
    ck_assert(got);
    p = hs_partner(db, DEAL);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p, OPP);
    free(p);
    sync_pair_unlock_all(db);
    ck_assert_int_eq(link_delete_by_hs(db, LINK_OPPORTUNITY, DEAL), ERR_OK);
    sync_cache_end();

    /* Outside a batch every read goes to the database. */
    save(db, OPP, DEAL, "{\"amount\": \"5\"}");
    itest_db_exec(other, "UPDATE record_link SET hs_written = '{\"amount\": \"4\"}'");
    a = written_amount(db, OPP);
    ck_assert_str_eq(a, "4");
    free(a);
    PQfinish(other);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(a_deal_linked_to_another_opportunity_unlinks_the_stale_pair)
{
    PGconn *db;
    char *url = qtest_db("link_stale", &db);
    save(db, OPP, DEAL, NULL);
    save(db, OPP2, DEAL, NULL); /* the deal now belongs to OPP2: OPP's pair is stale */
    ck_assert_int_eq(
        itest_db_scalar(db, "SELECT count(*) FROM record_link WHERE hs_id = '" DEAL "'"), 1);
    ck_assert_ptr_null(written_amount(db, OPP));
    char *p = hs_partner(db, DEAL);
    ck_assert_str_eq(p, OPP2);
    free(p);
    PQfinish(db);
    free(url);
}
END_TEST

START_TEST(a_batch_sees_the_maps_it_saves)
{
    PGconn *db;
    char *url = qtest_db("cache_maps", &db);
    PGconn *other = itest_db_connect(url);
    ck_assert_int_eq(pipeline_map_save(db, "012A", "p1", "Pipeline A"), ERR_OK);
    ck_assert_int_eq(stage_map_save(db, "012A", "Prospecting", "s1"), ERR_OK);

    sync_cache_begin();
    char *id = NULL;
    ck_assert_int_eq(pipeline_map_find_by_hs(db, "p1", &id), ERR_OK);
    ck_assert_str_eq(id, "012A");
    free(id);
    cJSON *map = NULL;
    ck_assert_int_eq(stage_map_load(db, "012A", &map), ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(map), 1);
    cJSON_Delete(map);
    /* A pipeline not found is never remembered: the caller may create it. */
    ck_assert_int_eq(pipeline_map_find(db, "012B", &id), ERR_NOT_FOUND);
    itest_db_exec(other, "INSERT INTO pipeline_map (record_type_id, hs_pipeline_id, label)"
                         " VALUES ('012B', 'p2', 'Pipeline B')");
    ck_assert_int_eq(pipeline_map_find(db, "012B", &id), ERR_OK);
    ck_assert_str_eq(id, "p2");
    free(id);
    /* A stage this batch saves is in the map it reads next. */
    ck_assert_int_eq(stage_map_save(db, "012A", "Closed Won", "s2"), ERR_OK);
    ck_assert_int_eq(stage_map_load(db, "012A", &map), ERR_OK);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(map, "Closed Won")->valuestring, "s2");
    cJSON_Delete(map);
    sync_cache_end();
    PQfinish(other);
    PQfinish(db);
    free(url);
}
END_TEST

static void save_contacts(PGconn *db, const struct synced_contact *cs, size_t n)
{
    struct synced_deal d = {.sf_opportunity_id = OPP,
                            .hs_deal_id = DEAL,
                            .created_ms = 1764892800000LL,
                            .close_ms = -1,
                            .amount = "100"};
    ck_assert_int_eq(synced_deal_save(db, &d, cs, n), ERR_OK);
}

static char *contacts_of(PGconn *db)
{
    cJSON *map = NULL;
    ck_assert_int_eq(synced_deal_contacts(db, OPP, &map), ERR_OK);
    char *text = cJSON_PrintUnformatted(map);
    cJSON_Delete(map);
    return text;
}

START_TEST(a_synced_deal_saved_again_replaces_its_contacts)
{
    PGconn *db;
    char *url = qtest_db("synced_deal", &db);
    struct synced_contact first[] = {{"003A", "1"}, {"003B", "2"}};
    save_contacts(db, first, 2);
    char *text = contacts_of(db);
    ck_assert_str_eq(text, "{\"003A\":\"1\",\"003B\":\"2\"}");
    free(text);
    /* B's HubSpot contact changed, A went, C came; C listed twice keeps its first. */
    struct synced_contact second[] = {{"003B", "3"}, {"003C", "4"}, {"003C", "5"}};
    save_contacts(db, second, 3);
    text = contacts_of(db);
    ck_assert_str_eq(text, "{\"003B\":\"3\",\"003C\":\"4\"}");
    free(text);
    save_contacts(db, NULL, 0);
    text = contacts_of(db);
    ck_assert_str_eq(text, "{}");
    free(text);
    ck_assert_int_eq(itest_db_scalar(db, "SELECT count(*) FROM synced_deal"), 1);
    PQfinish(db);
    free(url);
}
END_TEST

Suite *suite_sync_cache(void);
Suite *suite_sync_cache(void)
{
    Suite *s = suite_create("sync_cache");
    TCase *tc = tcase_create("postgres");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_batch_reads_a_link_once_and_sees_its_own_writes);
    tcase_add_test(tc, a_deal_linked_to_another_opportunity_unlinks_the_stale_pair);
    tcase_add_test(tc, a_batch_sees_the_maps_it_saves);
    tcase_add_test(tc, a_synced_deal_saved_again_replaces_its_contacts);
    suite_add_tcase(s, tc);
    return s;
}
