/* test_e2e_two_way.c - both directions running, as users run dealsync: a change on either side
 * reaches the other and stays there, whatever the other direction is doing at the same moment.
 * What one direction wrote, skipped or could not map never travels back as a change (issues 10
 * and 14). Every test ends with both sides agreeing and the queue quiet. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e.h"
#include "itest.h"
#include "queue.h"
#include "util.h"

#define DEADLINE_MS 60000
#define OPP_PROP "dealsync_salesforce_opportunity_id"

/* ---- Helpers -------------------------------------------------------------------------------- */

struct field_wait {
    struct e2e *e;
    const char *type; /* "Opportunity" or "deals" */
    const char *id;   /* for deals: the opportunity id, the deal is found by its link */
    const char *field;
    const char *want;
};

static bool field_is(void *arg)
{
    struct field_wait *w = arg;
    char text[128];
    bool ok = false;
    if (strcmp(w->type, "deals") == 0) {
        char *deal_id = e2e_deal_id_of(w->e, w->id);
        cJSON *d = deal_id ? e2e_hs_get(w->e, "deals", deal_id) : NULL;
        ok = d && strcmp(e2e_prop(d, w->field), w->want) == 0;
        cJSON_Delete(d);
        free(deal_id);
    } else {
        cJSON *r = e2e_sf_get(w->e, w->type, w->id);
        ok = r && strcmp(e2e_sf_text(r, w->field, text, sizeof(text)), w->want) == 0;
        cJSON_Delete(r);
    }
    return ok;
}

static bool wait_field(struct e2e *e, const char *type, const char *id, const char *field,
                       const char *want)
{
    struct field_wait w = {e, type, id, field, want};
    return itest_wait_for(field_is, &w, DEADLINE_MS);
}

/* A synced opportunity with Amount and Description, its deal created by dealsync. Returns the
 * opportunity id; *deal_id gets the deal's. Both caller-freed. */
static char *synced_pair(struct e2e *e, const char *name, int amount, char **deal_id)
{
    char *json = xasprintf("{\"Name\":\"%s\",\"StageName\":\"Prospecting\",\"CloseDate\":"
                           "\"2027-06-30\",\"Amount\":%d,\"Description\":\"first\"}",
                           name, amount);
    char *opp = e2e_sf_create(e, "Opportunity", json);
    free(json);
    char want[32];
    snprintf(want, sizeof(want), "%d", amount);
    ck_assert_msg(wait_field(e, "deals", opp, "amount", want), "opportunity %s never synced", opp);
    *deal_id = e2e_deal_id_of(e, opp);
    ck_assert_ptr_nonnull(*deal_id);
    return opp;
}

/* Both records of the pair, and whether Amount and Description agree; the values into the
 * buffers for the failure message. */
static bool pair_agrees(struct e2e *e, const char *opp, const char *deal_id, char *sf_amount,
                        char *hs_amount, char *sf_desc, char *hs_desc, size_t n)
{
    cJSON *o = e2e_sf_get(e, "Opportunity", opp);
    cJSON *d = e2e_hs_get(e, "deals", deal_id);
    e2e_sf_text(o, "Amount", sf_amount, n);
    snprintf(hs_amount, n, "%s", e2e_prop(d, "amount"));
    e2e_sf_text(o, "Description", sf_desc, n);
    snprintf(hs_desc, n, "%s", e2e_prop(d, "description"));
    cJSON_Delete(o);
    cJSON_Delete(d);
    return strcmp(sf_amount, hs_amount) == 0 && strcmp(sf_desc, hs_desc) == 0;
}

/* How many outcomes of the record (an opportunity or deal id) meet condition (SQL). */
static long long outcomes(struct e2e *e, const char *record_id, const char *condition)
{
    char *sql = xasprintf("SELECT count(*) FROM sync_outcome WHERE record_id = '%s' AND %s",
                          record_id, condition);
    long long n = itest_db_scalar(e->svc.db, sql);
    free(sql);
    return n;
}

static void expect_quiet(struct e2e *e)
{
    ck_assert_msg(e2e_wait_idle(e, DEADLINE_MS), "the sync never went quiet");
    ck_assert_int_eq(e2e_events(e, "dead"), 0);
}

/* ---- Issue 14: the lost update ------------------------------------------------------------- */

/* One side's Amount edit held back on its way (the sandbox delays its delivery), while the other
 * side's edit of another field is synced: when the held edit arrives, it still wins. */
struct in_flight {
    const char *name;
    const char *hold;    /* sandbox settings that hold the held side's delivery back */
    const char *release; /* and that restore it */
    bool is_sf_held;     /* which side's Amount edit is held */
    const char *amount;  /* the held Amount */
};

static void edit_in_flight(const struct in_flight *t)
{
    struct e2e e;
    e2e_start(&e, t->name, NULL, NULL, true);
    char *deal = NULL;
    char *opp = synced_pair(&e, t->name, 100, &deal);
    expect_quiet(&e);

    e2e_sb_settings(&e, t->hold);
    char *amount = xasprintf(t->is_sf_held ? "{\"Amount\":%s}" : "{\"amount\":\"%s\"}", t->amount);
    if (t->is_sf_held) {
        e2e_sf_update(&e, "Opportunity", opp, amount);
        e2e_hs_update(&e, "deals", deal, "{\"description\":\"the other side\"}");
        ck_assert(wait_field(&e, "Opportunity", opp, "Description", "the other side"));
    } else {
        e2e_hs_update(&e, "deals", deal, amount);
        e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"the other side\"}");
        ck_assert(wait_field(&e, "deals", opp, "description", "the other side"));
    }
    free(amount);
    e2e_sb_settings(&e, t->release);
    expect_quiet(&e);

    char a1[64], a2[64], d1[64], d2[64];
    bool agrees = pair_agrees(&e, opp, deal, a1, a2, d1, d2, sizeof(a1));
    ck_assert_msg(agrees && strcmp(a1, t->amount) == 0,
                  "opportunity amount %s, deal amount %s; descriptions \"%s\" / \"%s\"", a1, a2, d1,
                  d2);
    free(deal);
    free(opp);
    e2e_stop(&e);
}

/* The HubSpot-to-Salesforce handler used to record the opportunity's new Amount, still on its
 * way to HubSpot, as already seen, and the Salesforce-to-HubSpot direction then kept HubSpot's
 * older amount for good (deal 100, opportunity 200). */
START_TEST(salesforce_edit_in_flight_survives_a_hubspot_change)
{
    const struct in_flight t = {"e2e_two_way_sf_flight", "{\"sf_om_batch_delay_ms\":4000}",
                                "{\"sf_om_batch_delay_ms\":20}", true, "200"};
    edit_in_flight(&t);
}
END_TEST

/* The mirror case: a HubSpot edit whose webhook is held back. */
START_TEST(hubspot_edit_in_flight_survives_a_salesforce_change)
{
    const struct in_flight t = {"e2e_two_way_hs_flight",
                                "{\"hubspot.webhook_batch_delay_ms\":4000}",
                                "{\"hubspot.webhook_batch_delay_ms\":50}", false, "300"};
    edit_in_flight(&t);
}
END_TEST

static bool clock_passed(void *arg)
{
    return util_now_ms() >= *(const int64_t *)arg;
}

/* Waits until the clock is in a later second than now: the two-way rule compares the records'
 * modification times to the second. */
static void next_second(void)
{
    int64_t at = (util_now_ms() / 1000 + 1) * 1000 + 100;
    ck_assert(itest_wait_for(clock_passed, &at, 5000));
}

struct outcome_wait {
    struct e2e *e;
    const char *record_id;
    const char *condition;
};

static bool has_outcome(void *arg)
{
    const struct outcome_wait *w = arg;
    return outcomes(w->e, w->record_id, w->condition) > 0;
}

/* Waits for an outcome of the record meeting condition (SQL). */
static bool wait_outcome(struct e2e *e, const char *record_id, const char *condition)
{
    struct outcome_wait w = {e, record_id, condition};
    return itest_wait_for(has_outcome, &w, DEADLINE_MS);
}

/* Both records' Description and description; fails unless both are want, printing the pair's
 * outcomes first. */
static void expect_descriptions(struct e2e *e, const char *opp, const char *deal, const char *want)
{
    char a1[64], a2[64], d1[64], d2[64];
    pair_agrees(e, opp, deal, a1, a2, d1, d2, sizeof(a1));
    if (strcmp(d1, want) != 0 || strcmp(d2, want) != 0) {
        /* What each sync decided, in order, for the failure's reader. */
        const char *params[] = {opp, deal};
        PGresult *r = PQexecParams(e->svc.db,
                                   "SELECT to_char(at, 'HH24:MI:SS.MS'), record_id, outcome, detail"
                                   " FROM sync_outcome WHERE record_id IN ($1, $2) ORDER BY id",
                                   2, NULL, params, NULL, NULL, 0);
        for (int i = 0; i < PQntuples(r); i++)
            fprintf(stderr, "outcome %s %s %s: %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                    PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
        PQclear(r);
    }
    ck_assert_msg(strcmp(d1, want) == 0 && strcmp(d2, want) == 0,
                  "descriptions \"%s\" (opportunity) / \"%s\" (deal), want \"%s\"", d1, d2, want);
}

/* Both users change the description, HubSpot's a second later; the Salesforce-to-HubSpot
 * direction syncs first and keeps HubSpot's value. An Amount edit in Salesforce then makes the
 * opportunity the record modified later: its sync used to decide the conflict again by the
 * newer times and write Salesforce's older description over HubSpot's (chaos run of make test,
 * Type). The losing value is now Salesforce's baseline, so the decision stands. */
START_TEST(conflict_won_by_hubspot_is_not_decided_again_after_a_salesforce_edit)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_decided_hs", NULL, NULL, true);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Decided for hubspot", 100, &deal);
    expect_quiet(&e);

    /* HubSpot's webhooks held to the end; Salesforce's message due after the HubSpot edit. */
    e2e_sb_settings(&e,
                    "{\"hubspot.webhook_batch_delay_ms\":600000,\"sf_om_batch_delay_ms\":3000}");
    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"from salesforce\"}");
    next_second();
    e2e_hs_update(&e, "deals", deal, "{\"description\":\"from hubspot\"}");
    ck_assert_msg(wait_outcome(&e, opp,
                               "detail LIKE '%conflict on description: hubspot value (changed "
                               "later) kept%'"),
                  "the salesforce-to-hubspot direction never decided the conflict");
    next_second();
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":777}");
    ck_assert(wait_field(&e, "deals", opp, "amount", "777"));
    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":50,\"sf_om_batch_delay_ms\":20}");
    expect_quiet(&e);
    expect_descriptions(&e, opp, deal, "from hubspot");
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* The mirror: Salesforce's change is the later one, the HubSpot-to-Salesforce direction decides
 * first and keeps it, then an Amount edit in HubSpot makes the deal the record modified later.
 * This one passed before the fix too: the outbound message of dealsync's Amount write carries
 * Salesforce's description along, and its sync wrote it to the deal before the conflict could be
 * decided again. It stays as the mirror's guard. */
START_TEST(conflict_won_by_salesforce_is_not_decided_again_after_a_hubspot_edit)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_decided_sf", NULL, NULL, true);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Decided for salesforce", 100, &deal);
    expect_quiet(&e);

    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":600000}");
    e2e_hs_update(&e, "deals", deal, "{\"description\":\"from hubspot\"}");
    next_second();
    /* Salesforce's message held (its delay is fixed when the message is queued) until after the
     * HubSpot side has decided and synced the Amount edit. */
    e2e_sb_settings(&e, "{\"sf_om_batch_delay_ms\":20000}");
    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"from salesforce\"}");
    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":50,\"sf_om_batch_delay_ms\":20}");
    ck_assert_msg(wait_outcome(&e, deal,
                               "detail LIKE '%conflict on Description: salesforce value % (changed "
                               "later) kept%'"),
                  "the hubspot-to-salesforce direction never decided the conflict");
    next_second();
    e2e_hs_update(&e, "deals", deal, "{\"amount\":\"777\"}");
    ck_assert(wait_field(&e, "Opportunity", opp, "Amount", "777"));
    expect_quiet(&e);
    expect_descriptions(&e, opp, deal, "from salesforce");
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* A HubSpot user sets the description away from dealsync's write, a Salesforce user changes it
 * (its message held sf_hold_ms), and the HubSpot user sets it back ("first"); HubSpot's webhooks
 * stay held until the caller releases them. */
static void set_back_in_hubspot_around_a_salesforce_change(struct e2e *e, const char *opp,
                                                           const char *deal, int sf_hold_ms)
{
    e2e_sb_settings(e, "{\"hubspot.webhook_batch_delay_ms\":600000}");
    e2e_hs_update(e, "deals", deal, "{\"description\":\"a hubspot draft\"}");
    next_second();
    char *hold = xasprintf("{\"sf_om_batch_delay_ms\":%d}", sf_hold_ms);
    e2e_sb_settings(e, hold);
    free(hold);
    e2e_sf_update(e, "Opportunity", opp, "{\"Description\":\"from salesforce\"}");
    e2e_sb_settings(e, "{\"sf_om_batch_delay_ms\":20}");
    next_second();
    e2e_hs_update(e, "deals", deal, "{\"description\":\"first\"}");
}

/* A HubSpot user sets the description away from dealsync's write and back again, a Salesforce
 * user changing it in between: the deal read afterwards holds dealsync's own write, which used
 * to count as no change, so Salesforce's older value won on both sides (a chaos run, on a stage).
 * The webhooks say a user set it: HubSpot's change is the later and wins. */
START_TEST(value_set_back_in_hubspot_after_a_salesforce_change_wins)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_set_back", NULL, NULL, true);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Set back in hubspot", 100, &deal);
    expect_quiet(&e);

    /* Salesforce's message held until after the HubSpot webhooks are synced. */
    set_back_in_hubspot_around_a_salesforce_change(&e, opp, deal, 20000);
    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":50}");
    expect_quiet(&e);
    expect_descriptions(&e, opp, deal, "first");
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* The same, with Salesforce's change synced first: the deal read then holds dealsync's own
 * write, which used to count as no HubSpot change, so Salesforce's older value was written over
 * the user's (both sides ended "from salesforce"). The deal's property history shows the user's
 * changes since dealsync's write: HubSpot's change is the later and wins. */
START_TEST(value_set_back_in_hubspot_before_a_salesforce_sync_wins)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_set_back_first", NULL, NULL, true);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Set back before sync", 100, &deal);
    expect_quiet(&e);

    /* HubSpot's webhooks held until Salesforce's change is synced; Salesforce's message held
     * (5 s from its change, fixed when it is queued) until the deal holds dealsync's write
     * again. */
    set_back_in_hubspot_around_a_salesforce_change(&e, opp, deal, 5000);
    /* The sync of Salesforce's change, which comes after this (its message is still held). */
    char *after = xasprintf(
        "id > %lld", itest_db_scalar(e.svc.db, "SELECT coalesce(max(id), 0) FROM sync_outcome"));
    ck_assert_msg(wait_outcome(&e, opp, after), "the salesforce change was never synced");
    free(after);
    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":50}");
    expect_quiet(&e);
    expect_descriptions(&e, opp, deal, "first");
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* Whether the sandbox's fault rules have fired n times in all. */
static bool faults_fired(struct e2e *e, int n)
{
    cJSON *json = NULL;
    int fired = 0;
    if (e2e_sb(e, "GET", "/_sandbox/faults", NULL, &json) == 200) {
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(json, "rules")) fired +=
            (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "fired"));
    }
    cJSON_Delete(json);
    return fired >= n;
}

/* Waits (up to 30 s) until the sandbox's fault rules have fired n times in all. */
static void wait_faults_fired(struct e2e *e, int n)
{
    long long deadline = util_now_ms() + 30000;
    while (!faults_fired(e, n) && util_now_ms() < deadline) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* The same, with the user deleting the deal while dealsync reads its property history: the
 * read's 404 made the whole batch dead (make test's chaos run, 5 dead events). The record is
 * tried again and follows the delete rules: nothing dead, and the opportunity stays. */
START_TEST(deal_deleted_while_its_history_is_read_leaves_nothing_dead)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_history_deleted", NULL, NULL, true);
    char *deal = NULL;
    char *opp = synced_pair(&e, "History of a deleted deal", 100, &deal);
    expect_quiet(&e);

    set_back_in_hubspot_around_a_salesforce_change(&e, opp, deal, 5000);
    /* The history read (the only GET of this deal) held 3 s; the user deletes the deal then. */
    char *rules = xasprintf("{\"rules\":[{\"method\":\"GET\",\"path\":"
                            "\"/crm/v3/objects/deals/%s\",\"action\":\"latency\","
                            "\"latency_ms\":3000,\"count\":1}]}",
                            deal);
    ck_assert_int_eq(e2e_sb(&e, "PUT", "/_sandbox/faults", rules, NULL), 200);
    free(rules);
    wait_faults_fired(&e, 1);
    ck_assert_msg(faults_fired(&e, 1), "the deal's history was never read");
    char *path = xasprintf("/_sandbox/hubspot/objects/deals/%s", deal);
    ck_assert_int_eq(e2e_sb(&e, "DELETE", path, NULL, NULL), 204);
    free(path);
    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":50}");
    expect_quiet(&e);
    char *still = e2e_sf_find(&e, "Opportunity", "Id", opp);
    ck_assert_ptr_nonnull(still);
    free(still);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* Starts dealsync for a create whose answer is lost (API timeout 5 s, retried 2 to 3 s later)
 * and syncs a first pair, so the pipeline and its stages exist. Returns that pair's deal id. */
static char *start_for_a_lost_create(struct e2e *e, const char *name)
{
    const char *env[] = {"API_TIMEOUT_MS=5000", "QUEUE_RETRY_BASE_MS=2000",
                         "QUEUE_RETRY_MAX_MS=3000", NULL};
    e2e_start(e, name, env, NULL, true);
    char *maker_deal = NULL;
    free(synced_pair(e, "Pipeline maker", 100, &maker_deal));
    return maker_deal;
}

/* The deal of a new opportunity is made from a read older than the user's change (the create
 * held 2.5 s while the user sets the Amount in Salesforce), and the create's answer is lost, so
 * no link is saved. With no baseline, both directions took the deal (modified in the later
 * second: its creation) for the newer side, and the user's Amount was undone on both sides
 * (the open class of docs/chaos.md). Only dealsync ever set the deal's amount (its history):
 * that is dealsync's own write, and the Salesforce change wins. */
START_TEST(user_change_while_a_deal_is_made_whose_answer_is_lost_is_kept)
{
    struct e2e e;
    free(start_for_a_lost_create(&e, "e2e_two_way_lost_create"));
    ck_assert_int_eq(e2e_sb(&e, "PUT", "/_sandbox/faults",
                            "{\"rules\":[{\"method\":\"POST\",\"path\":"
                            "\"/crm/v3/objects/deals/batch/create\",\"action\":"
                            "\"timeout_after_write\",\"latency_ms\":2500,\"hold_ms\":4000,"
                            "\"count\":1}]}",
                            NULL),
                     200);
    char *opp = e2e_sf_create(&e, "Opportunity",
                              "{\"Name\":\"Made from an older read, its answer lost\","
                              "\"StageName\":\"Prospecting\",\"CloseDate\":\"2027-06-30\","
                              "\"Amount\":1000}");
    wait_faults_fired(&e, 1);
    ck_assert_msg(faults_fired(&e, 1), "the deal of %s was never made", opp);
    /* The deal's create is on its way, from the read of Amount 1000. */
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":2000}");
    expect_quiet(&e);

    char *deal = e2e_deal_id_of(&e, opp);
    ck_assert_msg(deal, "opportunity %s has no deal", opp);
    cJSON *o = e2e_sf_get(&e, "Opportunity", opp);
    cJSON *d = e2e_hs_get(&e, "deals", deal);
    char amount[32];
    e2e_sf_text(o, "Amount", amount, sizeof(amount));
    char *detail = e2e_last_detail(&e, deal);
    ck_assert_msg(strcmp(amount, "2000") == 0 && strcmp(e2e_prop(d, "amount"), "2000") == 0,
                  "the user's Amount (2000, set in salesforce while its deal was made from 1000) "
                  "was lost: opportunity %s, deal %s; last outcome of the deal: %s",
                  amount, e2e_prop(d, "amount"), detail);
    free(detail);
    cJSON_Delete(d);
    cJSON_Delete(o);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* The other direction: a user makes a deal in HubSpot, dealsync makes its opportunity from a
 * read older than the user's next change of the deal (the create held 2.5 s while the user sets
 * the amount), and the create's answer is lost (no link); the opportunity's outbound messages
 * are held 15 s, past the deal's retry, so no sync links the pair before it. The opportunity,
 * modified in the later second by its creation alone, holds dealsync's own write: the HubSpot
 * change wins. (When the opportunity's message came first, its sync linked the pair and the
 * deal's webhooks then told the user's change: that order never lost it.) */
START_TEST(user_change_while_an_opportunity_is_made_whose_answer_is_lost_is_kept)
{
    struct e2e e;
    char *maker_deal = start_for_a_lost_create(&e, "e2e_two_way_lost_opp_create");
    cJSON *maker = e2e_hs_get(&e, "deals", maker_deal);
    char *body = xasprintf("{\"properties\":{\"dealname\":\"Made in HubSpot, its opportunity's "
                           "answer lost\",\"pipeline\":\"%s\",\"dealstage\":\"%s\","
                           "\"closedate\":\"2027-03-01\",\"amount\":\"1000\"}}",
                           e2e_prop(maker, "pipeline"), e2e_prop(maker, "dealstage"));
    cJSON_Delete(maker);
    free(maker_deal);
    ck_assert_int_eq(e2e_sb(&e, "PUT", "/_sandbox/faults",
                            "{\"rules\":[{\"method\":\"PATCH\",\"path\":"
                            "\"/services/data/v60.0/composite/sobjects/Opportunity\",\"action\":"
                            "\"timeout_after_write\",\"latency_ms\":2500,\"hold_ms\":4000,"
                            "\"count\":1}]}",
                            NULL),
                     200);
    e2e_sb_settings(&e, "{\"sf_om_batch_delay_ms\":15000}");
    cJSON *made = NULL;
    ck_assert_int_eq(e2e_sb(&e, "POST", "/_sandbox/hubspot/objects/deals", body, &made), 201);
    free(body);
    char *deal = xstrdup(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(made, "id")));
    cJSON_Delete(made);
    wait_faults_fired(&e, 1);
    ck_assert_msg(faults_fired(&e, 1), "the opportunity of deal %s was never made", deal);
    /* The opportunity's create is on its way, from the read of amount 1000. */
    e2e_hs_update(&e, "deals", deal, "{\"amount\":\"2000\"}");
    ck_assert_msg(wait_outcome(&e, deal, "outcome = 'done'"), "deal %s was never synced", deal);
    expect_quiet(&e);

    char *opp = e2e_sf_find(&e, "Opportunity", "HubSpot_Deal_Id__c", deal);
    ck_assert_msg(opp, "deal %s has no opportunity", deal);
    cJSON *o = e2e_sf_get(&e, "Opportunity", opp);
    cJSON *d = e2e_hs_get(&e, "deals", deal);
    char amount[32];
    e2e_sf_text(o, "Amount", amount, sizeof(amount));
    char *detail = e2e_last_detail(&e, opp);
    ck_assert_msg(strcmp(amount, "2000") == 0 && strcmp(e2e_prop(d, "amount"), "2000") == 0,
                  "the user's amount (2000, set in hubspot while its opportunity was made from "
                  "1000) was lost: opportunity %s, deal %s; last outcome of the opportunity: %s",
                  amount, e2e_prop(d, "amount"), detail);
    free(detail);
    cJSON_Delete(d);
    cJSON_Delete(o);
    free(opp);
    free(deal);
    e2e_stop(&e);
}
END_TEST

#define STREAM_PAIRS 12
#define STREAM_ROUNDS 8

/* A stream of edits on both sides at once: Amount edited in Salesforce, the description in
 * HubSpot, on every pair, round after round, without waiting for the sync. At quiet every pair
 * holds the last value each user set, on both sides. */
START_TEST(stream_of_edits_on_both_sides_converges)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_stream", NULL, NULL, true);
    char *opps[STREAM_PAIRS], *deals[STREAM_PAIRS];
    int last_amount[STREAM_PAIRS];
    char last_desc[STREAM_PAIRS][32];
    for (int i = 0; i < STREAM_PAIRS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "Stream %d", i);
        opps[i] = synced_pair(&e, name, 1000 + i, &deals[i]);
        last_amount[i] = 1000 + i;
        snprintf(last_desc[i], sizeof(last_desc[i]), "%s", "first");
    }
    expect_quiet(&e);

    unsigned seed = 14;
    for (int round = 0; round < STREAM_ROUNDS; round++) {
        for (int i = 0; i < STREAM_PAIRS; i++) {
            int what = rand_r(&seed) % 3; /* 0: Salesforce, 1: HubSpot, 2: both */
            if (what != 1) {
                last_amount[i] = 2000 + round * 100 + i;
                char *json = xasprintf("{\"Amount\":%d}", last_amount[i]);
                e2e_sf_update(&e, "Opportunity", opps[i], json);
                free(json);
            }
            if (what != 0) {
                snprintf(last_desc[i], sizeof(last_desc[i]), "hs %d.%d", round, i);
                char *json = xasprintf("{\"description\":\"%s\"}", last_desc[i]);
                e2e_hs_update(&e, "deals", deals[i], json);
                free(json);
            }
        }
        /* Pace the rounds so each finds syncs in flight (not a timing assertion). */
        struct timespec pause = {0, 150 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    expect_quiet(&e);

    int different = 0;
    for (int i = 0; i < STREAM_PAIRS; i++) {
        char a1[64], a2[64], d1[64], d2[64], want[32];
        snprintf(want, sizeof(want), "%d", last_amount[i]);
        bool ok = pair_agrees(&e, opps[i], deals[i], a1, a2, d1, d2, sizeof(a1)) &&
                  strcmp(a1, want) == 0 && strcmp(d1, last_desc[i]) == 0;
        if (!ok) {
            different++;
            fprintf(stderr,
                    "pair %d: amount sf %s hs %s (last set %s), description sf \"%s\" hs \"%s\""
                    " (last set \"%s\")\n",
                    i, a1, a2, want, d1, d2, last_desc[i]);
        }
        free(opps[i]);
        free(deals[i]);
    }
    printf("two-way stream: %d pairs, %d rounds, records different at quiet: %d\n", STREAM_PAIRS,
           STREAM_ROUNDS, different);
    ck_assert_int_eq(different, 0);
    e2e_stop(&e);
}
END_TEST

/* ---- Issue 10: what dealsync wrote, skipped or could not map never travels back ------------ */

/* A Salesforce Type with no HubSpot dealtype option is not written, and the empty dealtype is
 * not carried back as a HubSpot change when the deal is next synced the other way. */
START_TEST(unmapped_picklist_value_is_not_blanked)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_picklist", NULL, NULL, true);
    char *opp = e2e_sf_create(&e, "Opportunity",
                              "{\"Name\":\"Upgrade\",\"StageName\":\"Prospecting\",\"CloseDate\":"
                              "\"2027-06-30\",\"Amount\":10,\"Type\":\"Existing Customer - "
                              "Upgrade\"}");
    ck_assert(wait_field(&e, "deals", opp, "amount", "10"));
    char *deal = e2e_deal_id_of(&e, opp);
    e2e_hs_update(&e, "deals", deal, "{\"description\":\"touched in hubspot\"}");
    ck_assert(wait_field(&e, "Opportunity", opp, "Description", "touched in hubspot"));
    expect_quiet(&e);
    cJSON *o = e2e_sf_get(&e, "Opportunity", opp);
    char type[64];
    ck_assert_str_eq(e2e_sf_text(o, "Type", type, sizeof(type)), "Existing Customer - Upgrade");
    cJSON_Delete(o);
    /* Synced with a value left out: a warning, not a plain success. */
    ck_assert_int_ge(outcomes(&e, opp, "outcome = 'warning' AND detail LIKE '%Type not written%'"),
                     1);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* The synced pipeline and its first stage, from a deal dealsync made. Caller frees. */
static void synced_pipeline(struct e2e *e, char **pipeline, char **stage)
{
    char *deal_id = NULL;
    char *opp = synced_pair(e, "Pipeline maker", 1, &deal_id);
    cJSON *d = e2e_hs_get(e, "deals", deal_id);
    *pipeline = xstrdup(e2e_prop(d, "pipeline"));
    *stage = xstrdup(e2e_prop(d, "dealstage"));
    cJSON_Delete(d);
    free(deal_id);
    free(opp);
}

static bool has_opportunity(void *arg)
{
    void **a = arg;
    cJSON *d = e2e_hs_get(a[0], "deals", a[1]);
    bool ok = d && e2e_prop(d, OPP_PROP)[0] != '\0';
    cJSON_Delete(d);
    return ok;
}

/* A deal made in HubSpot by an owner Salesforce has no user for: its opportunity belongs to the
 * integration user, and that opportunity's outbound message used to clear the deal's owner. */
START_TEST(unmatched_owner_is_never_erased)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_owner", NULL, NULL, true);
    char *pipeline = NULL, *stage = NULL;
    synced_pipeline(&e, &pipeline, &stage);
    cJSON *owner = NULL;
    ck_assert_int_eq(e2e_sb(&e, "POST", "/_sandbox/hubspot/owners",
                            "{\"email\":\"carol@elsewhere.test\",\"firstName\":\"Carol\"}", &owner),
                     201);
    char *carol = xstrdup(sbtest_str(owner, "id"));
    cJSON_Delete(owner);
    char *body = xasprintf("{\"properties\":{\"dealname\":\"Carol's deal\",\"pipeline\":\"%s\","
                           "\"dealstage\":\"%s\",\"amount\":\"500\",\"closedate\":"
                           "\"2027-03-01\",\"hubspot_owner_id\":\"%s\"}}",
                           pipeline, stage, carol);
    cJSON *deal = NULL;
    ck_assert_int_eq(e2e_sb(&e, "POST", "/_sandbox/hubspot/objects/deals", body, &deal), 201);
    free(body);
    char *deal_id = xstrdup(sbtest_str(deal, "id"));
    cJSON_Delete(deal);
    void *args[] = {&e, deal_id};
    ck_assert_msg(itest_wait_for(has_opportunity, args, DEADLINE_MS),
                  "the deal never got its opportunity");
    expect_quiet(&e);
    /* Once more from Salesforce: the opportunity's own change travels, the owner stays. */
    cJSON *d = e2e_hs_get(&e, "deals", deal_id);
    char *opp = xstrdup(e2e_prop(d, OPP_PROP));
    cJSON_Delete(d);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":600}");
    ck_assert(wait_field(&e, "deals", opp, "amount", "600"));
    expect_quiet(&e);
    d = e2e_hs_get(&e, "deals", deal_id);
    ck_assert_str_eq(e2e_prop(d, "hubspot_owner_id"), carol);
    cJSON_Delete(d);
    free(opp);
    free(deal_id);
    free(carol);
    free(pipeline);
    free(stage);
    e2e_stop(&e);
}
END_TEST

/* A user clears a synced deal's owner in HubSpot and edits its description in the same change:
 * Salesforce keeps every opportunity owned (OwnerId is not nillable, the sandbox refuses a blank
 * one as Salesforce does), so the opportunity keeps its owner and the description still
 * arrives. Writing the blank owner used to fail the whole update (or, on a Salesforce that took
 * it, leave the opportunity with no owner). */
START_TEST(owner_cleared_in_hubspot_keeps_the_opportunity_owner)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_no_owner", NULL, NULL, true);
    /* The integration user has a HubSpot owner, so the deal gets one. */
    ck_assert_int_eq(e2e_sb(&e, "POST", "/_sandbox/hubspot/owners",
                            "{\"email\":\"alice@dealsync.test\",\"firstName\":\"Alice\"}", NULL),
                     201);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Owner cleared", 800, &deal);
    expect_quiet(&e);
    cJSON *o = e2e_sf_get(&e, "Opportunity", opp);
    char owner[32];
    e2e_sf_text(o, "OwnerId", owner, sizeof(owner));
    cJSON_Delete(o);
    ck_assert_msg(owner[0], "the opportunity has no owner to begin with");
    cJSON *d = e2e_hs_get(&e, "deals", deal);
    ck_assert_msg(e2e_prop(d, "hubspot_owner_id")[0], "the deal got no owner");
    cJSON_Delete(d);

    e2e_hs_update(&e, "deals", deal,
                  "{\"hubspot_owner_id\":\"\",\"description\":\"nobody's now\"}");
    ck_assert_msg(wait_field(&e, "Opportunity", opp, "Description", "nobody's now"),
                  "the description never arrived");
    expect_quiet(&e);
    o = e2e_sf_get(&e, "Opportunity", opp);
    char now[32];
    ck_assert_str_eq(e2e_sf_text(o, "OwnerId", now, sizeof(now)), owner);
    cJSON_Delete(o);
    ck_assert_int_ge(outcomes(&e, deal,
                              "source = 'hubspot' AND detail LIKE '%hubspot_owner_id is required "
                              "in salesforce: blank not written%'"),
                     1);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* A deal moved by a user to a pipeline that is not a Salesforce pipeline stops syncing both
 * ways: a Salesforce change no longer moves it back, until the user does. */
START_TEST(deal_moved_to_unsynced_pipeline_is_left_alone)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_pipeline", NULL, NULL, true);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Moved away", 700, &deal);
    expect_quiet(&e);
    cJSON *d = e2e_hs_get(&e, "deals", deal);
    char *pipeline = xstrdup(e2e_prop(d, "pipeline"));
    char *stage = xstrdup(e2e_prop(d, "dealstage"));
    cJSON_Delete(d);

    e2e_hs_update(&e, "deals", deal,
                  "{\"pipeline\":\"default\",\"dealstage\":\"appointmentscheduled\"}");
    expect_quiet(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":800,\"StageName\":\"Qualification\"}");
    expect_quiet(&e);
    d = e2e_hs_get(&e, "deals", deal);
    ck_assert_str_eq(e2e_prop(d, "pipeline"), "default");
    ck_assert_str_eq(e2e_prop(d, "dealstage"), "appointmentscheduled");
    ck_assert_str_eq(e2e_prop(d, "amount"), "700");
    cJSON_Delete(d);
    char *detail = e2e_last_detail(&e, opp);
    ck_assert_msg(detail && strstr(detail, "not a salesforce pipeline"), "outcome: %s",
                  detail ? detail : "(none)");
    free(detail);

    /* Moved back by the user: the sync resumes, the later Salesforce change included. */
    char *json = xasprintf("{\"pipeline\":\"%s\",\"dealstage\":\"%s\"}", pipeline, stage);
    e2e_hs_update(&e, "deals", deal, json);
    free(json);
    expect_quiet(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":900}");
    ck_assert(wait_field(&e, "deals", opp, "amount", "900"));
    expect_quiet(&e);
    free(pipeline);
    free(stage);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

static bool has_one_contact(void *arg)
{
    void **a = arg;
    return e2e_deal_contacts(a[0], a[1]) == 1;
}

static bool has_no_contact(void *arg)
{
    void **a = arg;
    return e2e_deal_contacts(a[0], a[1]) == 0;
}

/* A contact role deleted in Salesforce while the deal is synced the other way: the
 * HubSpot-to-Salesforce handler saw the association dealsync itself had made and re-created the
 * role, undoing the user's delete for good. */
START_TEST(contact_role_deleted_in_salesforce_is_not_recreated)
{
    const char *env[] = {"CONTACT_ROLE_POLL_INTERVAL_SECONDS=15", NULL};
    struct e2e e;
    e2e_start(&e, "e2e_two_way_role", env, NULL, true);
    char *jane = e2e_sf_find(&e, "Contact", "Email", "jane@acme.test");
    ck_assert_ptr_nonnull(jane);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Roles", 42, &deal);
    char *json = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\"}", opp, jane);
    char *role = e2e_sf_create(&e, "OpportunityContactRole", json);
    free(json);
    void *args[] = {&e, deal};
    ck_assert_msg(itest_wait_for(has_one_contact, args, DEADLINE_MS),
                  "the role never became an association");
    expect_quiet(&e);

    char *path = xasprintf("/_sandbox/salesforce/records/OpportunityContactRole/%s", role);
    int status = e2e_sb(&e, "DELETE", path, NULL, NULL);
    ck_assert_msg(status == 200 || status == 204, "delete role: %d", status);
    free(path);
    e2e_hs_update(&e, "deals", deal, "{\"description\":\"after the role went\"}");
    ck_assert(wait_field(&e, "Opportunity", opp, "Description", "after the role went"));
    expect_quiet(&e);

    char *left = e2e_sf_find(&e, "OpportunityContactRole", "OpportunityId", opp);
    ck_assert_msg(left == NULL, "the deleted role came back as %s", left);
    /* The delete reaches the deal through the contact-role poller (a role's delete fires no
     * outbound message, and the message of dealsync's own Description write is an echo, not
     * read): within its interval. */
    ck_assert_msg(itest_wait_for(has_no_contact, args, DEADLINE_MS),
                  "the deal kept the contact of the deleted role");
    left = e2e_sf_find(&e, "OpportunityContactRole", "OpportunityId", opp);
    ck_assert_msg(left == NULL, "the deleted role came back as %s", left);
    free(role);
    free(jane);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* Chaos run ("lost: contact absent on both sides"): a role removed in Salesforce and added
 * again before the HubSpot-to-Salesforce direction saw the removal of the association dealsync
 * itself had made. The association still counted as mirrored from the deal, so the role added
 * again was taken for a contact a user removed in HubSpot: not associated again, and the other
 * direction then deleted the role. Here HubSpot's webhooks are held while the role goes and
 * comes back. */
START_TEST(contact_role_removed_and_added_again_in_salesforce_stays)
{
    const char *env[] = {"CONTACT_ROLE_POLL_INTERVAL_SECONDS=1", NULL};
    struct e2e e;
    e2e_start(&e, "e2e_two_way_role_again", env, NULL, true);
    char *jane = e2e_sf_find(&e, "Contact", "Email", "jane@acme.test");
    ck_assert_ptr_nonnull(jane);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Role again", 43, &deal);
    char *json = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\"}", opp, jane);
    char *role = e2e_sf_create(&e, "OpportunityContactRole", json);
    void *args[] = {&e, deal};
    ck_assert_msg(itest_wait_for(has_one_contact, args, DEADLINE_MS),
                  "the role never became an association");
    expect_quiet(&e);
    char *sql = xasprintf("SELECT count(*) FROM deal_contact_role WHERE hs_deal_id = '%s'", deal);
    ck_assert_msg(itest_db_scalar(e.svc.db, sql) == 1,
                  "the association dealsync made was not mirrored: nothing to test");

    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":20000}");
    char *path = xasprintf("/_sandbox/salesforce/records/OpportunityContactRole/%s", role);
    int status = e2e_sb(&e, "DELETE", path, NULL, NULL);
    ck_assert_msg(status == 200 || status == 204, "delete role: %d", status);
    ck_assert_msg(itest_wait_for(has_no_contact, args, DEADLINE_MS),
                  "the deal kept the contact of the deleted role");
    char *again = e2e_sf_create(&e, "OpportunityContactRole", json);
    bool is_associated = itest_wait_for(has_one_contact, args, DEADLINE_MS);
    char *detail = e2e_last_detail(&e, opp);
    ck_assert_msg(is_associated,
                  "the role added again never became an association; last outcome: %s",
                  detail ? detail : "(none)");
    free(detail);
    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":50}");
    expect_quiet(&e);

    char *left = e2e_sf_find(&e, "OpportunityContactRole", "OpportunityId", opp);
    ck_assert_msg(left != NULL, "the role added again was deleted");
    ck_assert_int_eq(e2e_deal_contacts(&e, deal), 1);
    free(left);
    free(again);
    free(path);
    free(sql);
    free(json);
    free(role);
    free(jane);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* The HubSpot company linked to a Salesforce account ("" when none). */
static const char *account_company(struct e2e *e, const char *account, char *out, size_t n)
{
    char *sql = xasprintf("SELECT hs_id FROM record_link WHERE kind = 'account' AND"
                          " left(sf_id, 15) = left('%s', 15)",
                          account);
    PGresult *r = PQexec(e->svc.db, sql);
    snprintf(out, n, "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    free(sql);
    return out;
}

struct account_wait {
    struct e2e *e;
    const char *deal;
    const char *account;
};

/* Whether the deal's primary company is the account's company. */
static bool deal_has_account_company(void *arg)
{
    struct account_wait *w = arg;
    char want[32], have[32];
    account_company(w->e, w->account, want, sizeof(want));
    e2e_primary_company(w->e, w->deal, have, sizeof(have));
    return want[0] && strcmp(want, have) == 0;
}

/* A synced opportunity of the account, its deal holding the account's company as primary, the
 * sync quiet. Returns the opportunity id; *deal_id gets the deal's. Both caller-freed. */
static char *synced_pair_of_account(struct e2e *e, const char *name, const char *account,
                                    char **deal_id)
{
    char *json = xasprintf("{\"Name\":\"%s\",\"StageName\":\"Prospecting\",\"CloseDate\":"
                           "\"2027-06-30\",\"Amount\":44,\"AccountId\":\"%s\"}",
                           name, account);
    char *opp = e2e_sf_create(e, "Opportunity", json);
    free(json);
    ck_assert_msg(wait_field(e, "deals", opp, "amount", "44"), "opportunity %s never synced", opp);
    *deal_id = e2e_deal_id_of(e, opp);
    ck_assert_ptr_nonnull(*deal_id);
    struct account_wait was = {e, *deal_id, account};
    ck_assert_msg(itest_wait_for(deal_has_account_company, &was, DEADLINE_MS),
                  "the deal never got the account's company");
    expect_quiet(e);
    return opp;
}

/* A user moves the opportunity to another account in Salesforce, and a change of the deal is
 * synced before the opportunity's outbound message arrives. The HubSpot-to-Salesforce direction
 * used to write the account of the deal's (old) company whenever the two differed: the user's new
 * account went back to the old one, on both sides. Salesforce's outbound messages are held here
 * while the deal's change syncs. */
START_TEST(salesforce_account_change_in_flight_survives_a_hubspot_change)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_account_flight", NULL, NULL, true);
    char *old_account = e2e_sf_create(&e, "Account", "{\"Name\":\"Old Account Ltd\"}");
    char *new_account = e2e_sf_create(&e, "Account", "{\"Name\":\"New Account Ltd\"}");
    char *deal = NULL;
    char *opp = synced_pair_of_account(&e, "Account flight", old_account, &deal);

    e2e_sb_settings(&e, "{\"sf_om_batch_delay_ms\":20000}");
    char *move = xasprintf("{\"AccountId\":\"%s\"}", new_account);
    e2e_sf_update(&e, "Opportunity", opp, move);
    e2e_hs_update(&e, "deals", deal, "{\"description\":\"edited in hubspot\"}");
    ck_assert(wait_field(&e, "Opportunity", opp, "Description", "edited in hubspot"));
    char account[32];
    cJSON *o = e2e_sf_get(&e, "Opportunity", opp);
    e2e_sf_text(o, "AccountId", account, sizeof(account));
    cJSON_Delete(o);
    char *detail = e2e_last_detail(&e, deal);
    ck_assert_msg(strncmp(account, new_account, 15) == 0,
                  "the deal's change put the opportunity back on account %s (user's: %s); last "
                  "outcome: %s",
                  account, new_account, detail ? detail : "(none)");
    free(detail);
    e2e_sb_settings(&e, "{\"sf_om_batch_delay_ms\":20}");
    expect_quiet(&e);

    struct account_wait now = {&e, deal, new_account};
    ck_assert_msg(deal_has_account_company(&now),
                  "the deal did not move to the new account's company");
    o = e2e_sf_get(&e, "Opportunity", opp);
    e2e_sf_text(o, "AccountId", account, sizeof(account));
    cJSON_Delete(o);
    ck_assert_msg(strncmp(account, new_account, 15) == 0, "the opportunity ended on account %s",
                  account);
    free(move);
    free(deal);
    free(opp);
    free(new_account);
    free(old_account);
    e2e_stop(&e);
}
END_TEST

/* ---- Issue 10: companies are found before they are created --------------------------------- */

/* The id of a HubSpot record created through the control API (caller frees). */
static char *hs_make(struct e2e *e, const char *type, const char *props_json)
{
    char *path = xasprintf("/_sandbox/hubspot/objects/%s", type);
    char *body = xasprintf("{\"properties\":%s}", props_json);
    cJSON *o = NULL;
    ck_assert_int_eq(e2e_sb(e, "POST", path, body, &o), 201);
    char *id = xstrdup(sbtest_str(o, "id"));
    cJSON_Delete(o);
    free(body);
    free(path);
    return id;
}

struct company_wait {
    struct e2e *e;
    const char *opp;
    char company[32];
};

static bool has_company(void *arg)
{
    struct company_wait *w = arg;
    char *deal = e2e_deal_id_of(w->e, w->opp);
    if (deal)
        e2e_primary_company(w->e, deal, w->company, sizeof(w->company));
    free(deal);
    return deal && w->company[0];
}

/* How many HubSpot companies hold the account id. */
static int companies_of_account(struct e2e *e, const char *account)
{
    char *body = xasprintf("{\"filterGroups\":[{\"filters\":[{\"propertyName\":"
                           "\"salesforceaccountid\",\"operator\":\"EQ\",\"value\":\"%s\"}]}],"
                           "\"limit\":100}",
                           account);
    cJSON *res = NULL;
    ck_assert_int_eq(e2e_sb(e, "POST", "/crm/v3/objects/companies/search", body, &res), 200);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(res, "results"));
    cJSON_Delete(res);
    free(body);
    return n;
}

static char *opportunity_of_account(struct e2e *e, const char *name, const char *account,
                                    const char *contact)
{
    char *json = xasprintf("{\"Name\":\"%s\",\"StageName\":\"Prospecting\",\"CloseDate\":"
                           "\"2027-06-30\",\"Amount\":5%s%s%s}",
                           name, account ? ",\"AccountId\":\"" : "", account ? account : "",
                           account ? "\"" : "");
    char *opp = e2e_sf_create(e, "Opportunity", json);
    free(json);
    if (contact) {
        json = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\"}", opp, contact);
        free(e2e_sf_create(e, "OpportunityContactRole", json));
        free(json);
    }
    return opp;
}

/* The mirror case: a user sets another primary company on the deal in HubSpot, and a change of
 * the opportunity is synced before the deal's association webhook arrives. The
 * Salesforce-to-HubSpot direction used to associate the account's company whenever it synced the
 * opportunity: the user's company lost its primary label, and the other direction then saw no
 * change. HubSpot's webhooks are held here while the opportunity's change syncs. */
START_TEST(hubspot_company_change_in_flight_survives_a_salesforce_change)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_company_flight", NULL, NULL, true);
    char *account = e2e_sf_create(&e, "Account", "{\"Name\":\"Kept Account Ltd\"}");
    char *deal = NULL;
    char *opp = synced_pair_of_account(&e, "Company flight", account, &deal);

    char *chosen = hs_make(&e, "companies", "{\"name\":\"Chosen In HubSpot\"}");
    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":20000}");
    char *path = xasprintf("/crm/v4/objects/deals/%s/associations/companies/%s", deal, chosen);
    int status =
        e2e_sb(&e, "PUT", path,
               "[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":5}]", NULL);
    ck_assert_msg(status == 200 || status == 201, "associate company: %d", status);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"edited in salesforce\"}");
    ck_assert(wait_field(&e, "deals", opp, "description", "edited in salesforce"));
    char primary[32];
    e2e_primary_company(&e, deal, primary, sizeof(primary));
    char *detail = e2e_last_detail(&e, opp);
    ck_assert_msg(strcmp(primary, chosen) == 0,
                  "the opportunity's change put company %s back as the deal's primary (user's: "
                  "%s); last outcome: %s",
                  primary, chosen, detail ? detail : "(none)");
    free(detail);
    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":50}");
    expect_quiet(&e);

    e2e_primary_company(&e, deal, primary, sizeof(primary));
    ck_assert_msg(strcmp(primary, chosen) == 0, "the deal ended with primary company %s", primary);
    char moved[32];
    cJSON *o = e2e_sf_get(&e, "Opportunity", opp);
    e2e_sf_text(o, "AccountId", moved, sizeof(moved));
    cJSON_Delete(o);
    struct account_wait now = {&e, deal, moved};
    ck_assert_msg(strncmp(moved, account, 15) != 0 && deal_has_account_company(&now),
                  "the opportunity stayed on account %s, not the chosen company's", moved);
    free(path);
    free(chosen);
    free(deal);
    free(opp);
    free(account);
    e2e_stop(&e);
}
END_TEST

/* A company with the account website's domain is the account's company: none is created. */
START_TEST(company_found_by_domain)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_domain", NULL, NULL, true);
    char *account = e2e_sf_create(
        &e, "Account", "{\"Name\":\"Umbrella\",\"Website\":\"https://www.umbrella.test\"}");
    char *company = hs_make(&e, "companies",
                            "{\"name\":\"Umbrella Corporation\",\"domain\":\"umbrella.test\"}");
    char *opp = opportunity_of_account(&e, "Umbrella deal", account, NULL);
    struct company_wait w = {&e, opp, ""};
    ck_assert_msg(itest_wait_for(has_company, &w, DEADLINE_MS), "the deal never got a company");
    expect_quiet(&e);
    ck_assert_str_eq(w.company, company);
    ck_assert_int_eq(companies_of_account(&e, account), 1);
    free(opp);
    free(company);
    free(account);
    e2e_stop(&e);
}
END_TEST

/* The company already associated with the opportunity's (synced) contacts is the account's
 * company, as HubSpot's account sync finds it. */
START_TEST(company_found_by_contacts)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_by_contacts", NULL, NULL, true);
    char *account = e2e_sf_create(&e, "Account", "{\"Name\":\"Pied Piper\"}");
    char *json = xasprintf("{\"FirstName\":\"Richard\",\"LastName\":\"Hendricks\",\"Email\":"
                           "\"richard@piedpiper.test\",\"AccountId\":\"%s\"}",
                           account);
    char *richard = e2e_sf_create(&e, "Contact", json);
    free(json);
    char *company = hs_make(&e, "companies", "{\"name\":\"Pied Piper Inc\"}");
    char *contact =
        hs_make(&e, "contacts", "{\"email\":\"richard@piedpiper.test\",\"firstname\":\"Richard\"}");
    char *path = xasprintf("/crm/v4/objects/contacts/%s/associations/default/companies/%s", contact,
                           company);
    int status = e2e_sb(&e, "PUT", path, NULL, NULL);
    ck_assert_msg(status == 200 || status == 201, "associate: %d", status);
    free(path);
    /* A first opportunity, without an account, links Richard's contact. */
    char *first = opportunity_of_account(&e, "Richard's first", NULL, richard);
    char *first_deal = NULL;
    ck_assert(wait_field(&e, "deals", first, "dealname", "Richard's first"));
    first_deal = e2e_deal_id_of(&e, first);
    void *args[] = {&e, first_deal};
    ck_assert(itest_wait_for(has_one_contact, args, DEADLINE_MS));
    expect_quiet(&e);

    char *opp = opportunity_of_account(&e, "Pied Piper deal", account, richard);
    struct company_wait w = {&e, opp, ""};
    ck_assert_msg(itest_wait_for(has_company, &w, DEADLINE_MS), "the deal never got a company");
    expect_quiet(&e);
    ck_assert_str_eq(w.company, company);
    ck_assert_int_eq(companies_of_account(&e, account), 1);
    free(first_deal);
    free(first);
    free(opp);
    free(contact);
    free(company);
    free(richard);
    free(account);
    e2e_stop(&e);
}
END_TEST

#define CONCURRENT_OPPS 6

/* Opportunities of one new account synced by several workers at once: one company. */
START_TEST(one_company_for_concurrent_opportunities)
{
    const char *env[] = {"WORKER_THREADS=4", NULL};
    const char *sandbox[] = {"--set", "sf_om_batch_delay_ms=0", NULL};
    struct e2e e;
    e2e_start(&e, "e2e_two_way_one_company", env, sandbox, true);
    char *account = e2e_sf_create(&e, "Account", "{\"Name\":\"Hooli\"}");
    /* A slow company search, so the workers' syncs overlap. */
    ck_assert_int_eq(e2e_sb(&e, "PUT", "/_sandbox/faults",
                            "{\"rules\":[{\"path\":\"/crm/v3/objects/companies/search\","
                            "\"action\":\"latency\",\"latency_ms\":400}]}",
                            NULL),
                     200);
    char *opps[CONCURRENT_OPPS];
    for (int i = 0; i < CONCURRENT_OPPS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "Hooli %d", i);
        opps[i] = opportunity_of_account(&e, name, account, NULL);
        struct timespec pause = {0, 120 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    char first[32] = "";
    for (int i = 0; i < CONCURRENT_OPPS; i++) {
        struct company_wait w = {&e, opps[i], ""};
        ck_assert_msg(itest_wait_for(has_company, &w, DEADLINE_MS), "opportunity %d: no company",
                      i);
        if (!first[0])
            snprintf(first, sizeof(first), "%s", w.company);
        ck_assert_str_eq(w.company, first);
        free(opps[i]);
    }
    expect_quiet(&e);
    ck_assert_int_eq(companies_of_account(&e, account), 1);
    free(account);
    e2e_stop(&e);
}
END_TEST

#define CONCURRENT_DEALS 4

static bool has_account(void *arg)
{
    void **a = arg;
    cJSON *d = e2e_hs_get(a[0], "deals", a[1]);
    const char *opp = d ? e2e_prop(d, OPP_PROP) : "";
    cJSON *o = opp[0] ? e2e_sf_get(a[0], "Opportunity", opp) : NULL;
    char account[32];
    bool ok = o && e2e_sf_text(o, "AccountId", account, sizeof(account))[0];
    cJSON_Delete(o);
    cJSON_Delete(d);
    return ok;
}

/* Deals of one new company synced by several workers at once (webhooks in separate batches):
 * one Account in Salesforce, shared by their opportunities. */
START_TEST(one_account_for_concurrent_deals)
{
    const char *env[] = {"WORKER_THREADS=4", NULL};
    struct e2e e;
    e2e_start(&e, "e2e_two_way_one_account", env, NULL, true);
    char *pipeline = NULL, *stage = NULL;
    synced_pipeline(&e, &pipeline, &stage);
    expect_quiet(&e);
    char *company = hs_make(&e, "companies", "{\"name\":\"Initrode\"}");
    /* A slow company read, so the workers' syncs overlap. */
    ck_assert_int_eq(e2e_sb(&e, "PUT", "/_sandbox/faults",
                            "{\"rules\":[{\"path\":\"/crm/v3/objects/companies/batch/read\","
                            "\"action\":\"latency\",\"latency_ms\":400}]}",
                            NULL),
                     200);
    char *deals[CONCURRENT_DEALS];
    for (int i = 0; i < CONCURRENT_DEALS; i++) {
        char *body = xasprintf(
            "{\"properties\":{\"dealname\":\"Initrode %d\",\"pipeline\":\"%s\",\"dealstage\":"
            "\"%s\",\"closedate\":\"2027-03-01\"},\"associations\":[{\"to\":{\"id\":\"%s\"},"
            "\"types\":[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":5}]}]}",
            i, pipeline, stage, company);
        cJSON *d = NULL;
        ck_assert_int_eq(e2e_sb(&e, "POST", "/crm/v3/objects/deals", body, &d), 201);
        deals[i] = xstrdup(sbtest_str(d, "id"));
        cJSON_Delete(d);
        free(body);
        /* Apart enough that each webhook is its own batch (not a timing assertion). */
        struct timespec pause = {0, 120 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    for (int i = 0; i < CONCURRENT_DEALS; i++) {
        void *args[] = {&e, deals[i]};
        ck_assert_msg(itest_wait_for(has_account, args, DEADLINE_MS), "deal %d: no account", i);
    }
    expect_quiet(&e);
    cJSON *all = NULL;
    ck_assert_int_eq(e2e_sb(&e, "GET", "/_sandbox/salesforce/records/Account", NULL, &all), 200);
    const cJSON *list = cJSON_IsArray(all) ? all : cJSON_GetObjectItem(all, "records");
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, list) n += strcmp(sbtest_str(r, "Name"), "Initrode") == 0 &&
                                     !cJSON_IsTrue(cJSON_GetObjectItem(r, "IsDeleted"));
    cJSON_Delete(all);
    ck_assert_int_eq(n, 1);
    for (int i = 0; i < CONCURRENT_DEALS; i++)
        free(deals[i]);
    free(company);
    free(pipeline);
    free(stage);
    e2e_stop(&e);
}
END_TEST

struct contact_prop {
    struct e2e *e;
    const char *sf_contact;
    const char *name;
    const char *want;
};

static bool contact_prop_is(void *arg)
{
    struct contact_prop *c = arg;
    const char *params[] = {c->sf_contact};
    PGresult *r = PQexecParams(
        c->e->svc.db, "SELECT hs_id FROM record_link WHERE kind = 'contact' AND sf_id = $1", 1,
        NULL, params, NULL, NULL, 0);
    cJSON *hc = PQntuples(r) == 1 ? e2e_hs_get(c->e, "contacts", PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    bool ok = hc && strcmp(e2e_prop(hc, c->name), c->want) == 0;
    cJSON_Delete(hc);
    return ok;
}

/* LIFECYCLE_STAGE_SYNC=false: a closed-won deal's contact gets its roll-ups, and keeps the
 * lifecycle stage the team gave it. */
START_TEST(lifecycle_stage_sync_off_keeps_the_stage)
{
    const char *env[] = {"LIFECYCLE_STAGE_SYNC=false", NULL};
    struct e2e e;
    e2e_start(&e, "e2e_two_way_lifecycle", env, NULL, true);
    char *jane = e2e_sf_find(&e, "Contact", "Email", "jane@acme.test");
    char *opp = e2e_sf_create(&e, "Opportunity",
                              "{\"Name\":\"Won\",\"StageName\":\"Closed Won\",\"CloseDate\":"
                              "\"2026-11-30\",\"Amount\":900}");
    char *json = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\"}", opp, jane);
    free(e2e_sf_create(&e, "OpportunityContactRole", json));
    free(json);
    struct contact_prop c = {&e, jane, "dealsync_num_associated_deals", "1"};
    ck_assert_msg(itest_wait_for(contact_prop_is, &c, DEADLINE_MS), "roll-up never written");
    expect_quiet(&e);
    struct contact_prop stage = {&e, jane, "lifecyclestage", "customer"};
    ck_assert_msg(!contact_prop_is(&stage), "the lifecycle stage moved with the switch off");
    free(opp);
    free(jane);
    e2e_stop(&e);
}
END_TEST

static bool link_gone(void *arg)
{
    void **a = arg;
    char *deal = e2e_deal_id_of(a[0], a[1]);
    free(deal);
    return deal == NULL;
}

/* A deal deleted in HubSpot stays deleted when a Salesforce event about an older change of its
 * opportunity arrives afterwards (a late outbound message, a poller's event, the echo of
 * dealsync's own write); a change made after the delete makes a new deal. */
START_TEST(deleted_deal_is_not_recreated_by_an_older_event)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_tombstone", NULL, NULL, true);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Deleted later", 300, &deal);
    expect_quiet(&e);
    /* The opportunity's last change a minute ago, well before the delete. */
    char *backdate = xasprintf("/_sandbox/salesforce/records/Opportunity/%s/backdate", opp);
    ck_assert_int_eq(e2e_sb(&e, "POST", backdate, "{\"minutes\":1}", NULL), 200);
    free(backdate);
    char *path = xasprintf("/_sandbox/hubspot/objects/deals/%s", deal);
    int status = e2e_sb(&e, "DELETE", path, NULL, NULL);
    ck_assert_msg(status == 200 || status == 204, "delete deal: %d", status);
    free(path);
    void *args[] = {&e, opp};
    ck_assert(itest_wait_for(link_gone, args, DEADLINE_MS));
    expect_quiet(&e);

    /* An event about the opportunity as it was before the delete. */
    cJSON *payload = cJSON_CreateObject();
    struct queue_event_in ev = {.source = "salesforce",
                                .dedup_key = "late-outbound-message",
                                .object_type = "Opportunity",
                                .record_id = opp,
                                .event_type = "outbound_message",
                                .occurred_at_ms = util_now_ms(),
                                .payload = payload};
    size_t stored = 0;
    ck_assert_int_eq(queue_push(e.svc.db, &ev, 1, &stored), ERR_OK);
    cJSON_Delete(payload);
    expect_quiet(&e);
    char *again = e2e_deal_id_of(&e, opp);
    ck_assert_msg(again == NULL, "the deleted deal came back as %s", again);
    char *detail = e2e_last_detail(&e, opp);
    ck_assert_msg(detail && strstr(detail, "deleted in hubspot"), "outcome: %s",
                  detail ? detail : "(none)");
    free(detail);

    /* A change after the delete (in a later second: LastModifiedDate counts whole seconds, and a
     * change in the delete's own second counts as before it): a new deal, as HubSpot's
     * integration makes one. */
    int64_t next_second = (util_now_ms() / 1000 + 1) * 1000;
    ck_assert(itest_wait_for(clock_passed, &next_second, 5000));
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":301}");
    ck_assert(wait_field(&e, "deals", opp, "amount", "301"));
    expect_quiet(&e);
    again = e2e_deal_id_of(&e, opp);
    ck_assert_str_ne(again, deal);
    free(again);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* Removes the deal's contact association (path: its v4 association URL) with HubSpot's webhook
 * held back, syncs a Salesforce change (Amount) before the removal reaches Salesforce, and checks
 * that the contact stays off the deal and its role goes. */
static void remove_association_during_a_salesforce_change(struct e2e *e, const char *path,
                                                          const char *opp, const char *deal,
                                                          int amount)
{
    e2e_sb_settings(e, "{\"hubspot.webhook_batch_delay_ms\":4000}");
    int status = e2e_sb(e, "DELETE", path, NULL, NULL);
    ck_assert_msg(status == 200 || status == 204, "remove association: %d", status);
    char *json = xasprintf("{\"Amount\":%d}", amount);
    char want[16];
    snprintf(want, sizeof(want), "%d", amount);
    e2e_sf_update(e, "Opportunity", opp, json);
    free(json);
    ck_assert(wait_field(e, "deals", opp, "amount", want));
    e2e_sb_settings(e, "{\"hubspot.webhook_batch_delay_ms\":50}");
    expect_quiet(e);
    ck_assert_int_eq(e2e_deal_contacts(e, deal), 0);
    char *left = e2e_sf_find(e, "OpportunityContactRole", "OpportunityId", opp);
    ck_assert_msg(left == NULL, "the role of the removed contact stayed: %s", left);
}

/* The mirror case: a contact a user removed from the deal in HubSpot is not associated again
 * from its contact role by a Salesforce change synced before the removal reached Salesforce
 * (the HubSpot webhook is held back); the role goes instead. */
START_TEST(contact_removed_in_hubspot_is_not_reassociated)
{
    struct e2e e;
    e2e_start(&e, "e2e_two_way_unassoc", NULL, NULL, true);
    char *jane = e2e_sf_find(&e, "Contact", "Email", "jane@acme.test");
    char *deal = NULL;
    char *opp = synced_pair(&e, "Unassociated", 43, &deal);
    char *json = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\"}", opp, jane);
    free(e2e_sf_create(&e, "OpportunityContactRole", json));
    free(json);
    void *args[] = {&e, deal};
    ck_assert(itest_wait_for(has_one_contact, args, DEADLINE_MS));
    expect_quiet(&e);

    cJSON *d = e2e_hs_get(&e, "deals", deal);
    char contact[32] = "";
    const cJSON *a;
    cJSON_ArrayForEach(
        a, cJSON_GetObjectItem(d, "associations")) if (strcmp(sbtest_str(a, "toObjectType"),
                                                              "contacts") == 0)
        snprintf(contact, sizeof(contact), "%s", sbtest_str(a, "toObjectId"));
    cJSON_Delete(d);
    char *path = xasprintf("/crm/v4/objects/deals/%s/associations/contacts/%s", deal, contact);
    remove_association_during_a_salesforce_change(&e, path, opp, deal, 44);
    free(path);
    free(jane);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

static bool has_role(void *arg)
{
    void **a = arg;
    char *role = e2e_sf_find(a[0], "OpportunityContactRole", "OpportunityId", a[1]);
    free(role);
    return role != NULL;
}

static bool has_no_role(void *arg)
{
    return !has_role(arg);
}

/* A contact added on both sides (a role in Salesforce, an association in HubSpot, before either
 * was synced), then removed in HubSpot: the removal is the last change a user made, so the role
 * goes too, and the pair agrees (a chaos run ended with the role in Salesforce and no
 * association in HubSpot). */
START_TEST(contact_added_on_both_sides_then_removed_in_hubspot_goes)
{
    const char *env[] = {"CONTACT_ROLE_POLL_INTERVAL_SECONDS=5", NULL};
    struct e2e e;
    e2e_start(&e, "e2e_two_way_both_added", env, NULL, true);
    char *jane = e2e_sf_find(&e, "Contact", "Email", "jane@acme.test");
    ck_assert_ptr_nonnull(jane);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Added on both sides", 47, &deal);
    char *contact = hs_make(&e, "contacts",
                            "{\"email\":\"jane@acme.test\",\"firstname\":\"Jane\","
                            "\"lastname\":\"Doe\"}");
    expect_quiet(&e);

    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":600000}");
    char *path = xasprintf("/crm/v4/objects/deals/%s/associations/contacts/%s", deal, contact);
    int status =
        e2e_sb(&e, "PUT", path,
               "[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":3}]", NULL);
    ck_assert_msg(status == 200 || status == 201, "associate contact: %d", status);
    char *json = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\"}", opp, jane);
    free(e2e_sf_create(&e, "OpportunityContactRole", json));
    free(json);
    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":50}");
    expect_quiet(&e);
    void *args[] = {&e, deal};
    ck_assert(itest_wait_for(has_one_contact, args, DEADLINE_MS));
    char *role = e2e_sf_find(&e, "OpportunityContactRole", "OpportunityId", opp);
    ck_assert_msg(role != NULL, "the contact added on both sides has no role");
    free(role);

    status = e2e_sb(&e, "DELETE", path, NULL, NULL);
    ck_assert_msg(status == 200 || status == 204, "remove association: %d", status);
    ck_assert(itest_wait_for(has_no_contact, args, DEADLINE_MS));
    void *role_args[] = {&e, opp};
    ck_assert_msg(itest_wait_for(has_no_role, role_args, DEADLINE_MS),
                  "the role of the contact removed in hubspot stayed");
    expect_quiet(&e);
    ck_assert_int_eq(e2e_deal_contacts(&e, deal), 0);
    free(path);
    free(contact);
    free(jane);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* The other mirror case: a contact a user associated in HubSpot became a role, then the user
 * removed the association before Salesforce-to-HubSpot had seen the role (its poll is an hour
 * away, and the webhook is held back). A Salesforce change synced meanwhile read the role
 * dealsync itself had made and associated the contact again, and the role stayed. */
START_TEST(contact_associated_in_hubspot_then_removed_is_not_reassociated)
{
    const char *env[] = {"CONTACT_ROLE_POLL_INTERVAL_SECONDS=3600", NULL};
    struct e2e e;
    e2e_start(&e, "e2e_two_way_mirrored", env, NULL, true);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Mirrored", 45, &deal);
    /* A HubSpot change first, so the opportunity holds the deal id and the contact's sync below
     * writes nothing to it (no outbound message would tell the other direction of the role). */
    e2e_hs_update(&e, "deals", deal, "{\"description\":\"edited in hubspot\"}");
    ck_assert(wait_field(&e, "Opportunity", opp, "Description", "edited in hubspot"));
    expect_quiet(&e);
    char *contact = hs_make(&e, "contacts",
                            "{\"email\":\"sam@mirror.test\",\"firstname\":\"Sam\","
                            "\"lastname\":\"Roe\"}");
    char *path = xasprintf("/crm/v4/objects/deals/%s/associations/contacts/%s", deal, contact);
    int status =
        e2e_sb(&e, "PUT", path,
               "[{\"associationCategory\":\"HUBSPOT_DEFINED\",\"associationTypeId\":3}]", NULL);
    ck_assert_msg(status == 200 || status == 201, "associate contact: %d", status);
    void *args[] = {&e, opp};
    ck_assert_msg(itest_wait_for(has_role, args, DEADLINE_MS),
                  "the association never became a role");
    expect_quiet(&e);

    remove_association_during_a_salesforce_change(&e, path, opp, deal, 46);
    free(path);
    free(contact);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

Suite *suite_e2e_two_way(void);
Suite *suite_e2e_two_way(void)
{
    Suite *s = suite_create("e2e_two_way");
    TCase *tc = tcase_create("both directions");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, salesforce_edit_in_flight_survives_a_hubspot_change);
    tcase_add_test(tc, hubspot_edit_in_flight_survives_a_salesforce_change);
    tcase_add_test(tc, conflict_won_by_hubspot_is_not_decided_again_after_a_salesforce_edit);
    tcase_add_test(tc, conflict_won_by_salesforce_is_not_decided_again_after_a_hubspot_edit);
    tcase_add_test(tc, value_set_back_in_hubspot_after_a_salesforce_change_wins);
    tcase_add_test(tc, value_set_back_in_hubspot_before_a_salesforce_sync_wins);
    tcase_add_test(tc, stream_of_edits_on_both_sides_converges);
    tcase_add_test(tc, unmapped_picklist_value_is_not_blanked);
    tcase_add_test(tc, unmatched_owner_is_never_erased);
    tcase_add_test(tc, owner_cleared_in_hubspot_keeps_the_opportunity_owner);
    tcase_add_test(tc, deal_moved_to_unsynced_pipeline_is_left_alone);
    tcase_add_test(tc, contact_role_deleted_in_salesforce_is_not_recreated);
    tcase_add_test(tc, contact_role_removed_and_added_again_in_salesforce_stays);
    tcase_add_test(tc, salesforce_account_change_in_flight_survives_a_hubspot_change);
    tcase_add_test(tc, hubspot_company_change_in_flight_survives_a_salesforce_change);
    tcase_add_test(tc, contact_removed_in_hubspot_is_not_reassociated);
    tcase_add_test(tc, contact_associated_in_hubspot_then_removed_is_not_reassociated);
    tcase_add_test(tc, contact_added_on_both_sides_then_removed_in_hubspot_goes);
    tcase_add_test(tc, company_found_by_domain);
    tcase_add_test(tc, company_found_by_contacts);
    tcase_add_test(tc, lifecycle_stage_sync_off_keeps_the_stage);
    suite_add_tcase(s, tc);
    TCase *history = tcase_create("history read");
    tcase_set_timeout(history, 300);
    tcase_add_test(history, deal_deleted_while_its_history_is_read_leaves_nothing_dead);
    tcase_add_test(history, user_change_while_a_deal_is_made_whose_answer_is_lost_is_kept);
    tcase_add_test(history, user_change_while_an_opportunity_is_made_whose_answer_is_lost_is_kept);
    suite_add_tcase(s, history);
    TCase *creates = tcase_create("concurrent creates");
    tcase_set_timeout(creates, 300);
    tcase_add_test(creates, one_company_for_concurrent_opportunities);
    tcase_add_test(creates, one_account_for_concurrent_deals);
    suite_add_tcase(s, creates);
    TCase *deletes = tcase_create("deletes");
    tcase_set_timeout(deletes, 300);
    tcase_add_test(deletes, deleted_deal_is_not_recreated_by_an_older_event);
    suite_add_tcase(s, deletes);
    return s;
}
