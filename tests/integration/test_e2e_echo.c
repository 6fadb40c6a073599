/* test_e2e_echo.c - dealsync's own writes to Salesforce coming back as outbound messages, with
 * both directions running as users run dealsync: a message that reports only what the pair
 * already agrees on is finished without reading the opportunity (sync_echo_sf.h), and anything a
 * user changed, a field cleared (the message leaves it out) or a sync not finished before is
 * still synced. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "itest.h"
#include "queue.h"
#include "util.h"

#define DEADLINE_MS 60000
#define ECHO_DETAIL "own write reported back"

struct field_wait {
    struct e2e *e;
    bool is_deal; /* the opportunity's deal, else the opportunity */
    const char *opp;
    const char *field;
    const char *want;
};

static bool field_is(void *arg)
{
    struct field_wait *w = arg;
    char text[128];
    bool ok = false;
    if (w->is_deal) {
        char *deal_id = e2e_deal_id_of(w->e, w->opp);
        cJSON *d = deal_id ? e2e_hs_get(w->e, "deals", deal_id) : NULL;
        ok = d && strcmp(e2e_prop(d, w->field), w->want) == 0;
        cJSON_Delete(d);
        free(deal_id);
    } else {
        cJSON *r = e2e_sf_get(w->e, "Opportunity", w->opp);
        ok = r && strcmp(e2e_sf_text(r, w->field, text, sizeof(text)), w->want) == 0;
        cJSON_Delete(r);
    }
    return ok;
}

static bool wait_field(struct e2e *e, bool is_deal, const char *opp, const char *field,
                       const char *want)
{
    struct field_wait w = {e, is_deal, opp, field, want};
    return itest_wait_for(field_is, &w, DEADLINE_MS);
}

static void expect_quiet(struct e2e *e)
{
    ck_assert_msg(e2e_wait_idle(e, DEADLINE_MS), "the sync never went quiet");
    ck_assert_int_eq(e2e_events(e, "dead"), 0);
}

/* An opportunity (with account when account is not NULL) synced to its deal. Returns its id;
 * *deal gets the deal's. Both caller-freed. */
static char *synced_pair(struct e2e *e, const char *name, const char *account, char **deal)
{
    char *json = xasprintf("{\"Name\":\"%s\",\"StageName\":\"Prospecting\",\"CloseDate\":"
                           "\"2027-06-30\",\"Amount\":100,\"Description\":\"first\"%s%s%s}",
                           name, account ? ",\"AccountId\":\"" : "", account ? account : "",
                           account ? "\"" : "");
    char *opp = e2e_sf_create(e, "Opportunity", json);
    free(json);
    ck_assert_msg(wait_field(e, true, opp, "dealname", name), "opportunity %s never synced", opp);
    *deal = e2e_deal_id_of(e, opp);
    ck_assert_ptr_nonnull(*deal);
    expect_quiet(e);
    return opp;
}

/* The newest outcome id: outcomes after it are this test's. */
static long long outcome_mark(struct e2e *e)
{
    return itest_db_scalar(e->svc.db, "SELECT coalesce(max(id), 0) FROM sync_outcome");
}

/* How many outcomes of the record after mark meet condition (SQL). */
static long long outcomes(struct e2e *e, const char *record_id, long long mark,
                          const char *condition)
{
    char *sql = xasprintf("SELECT count(*) FROM sync_outcome WHERE record_id = '%s' AND id > %lld"
                          " AND %s",
                          record_id, mark, condition);
    long long n = itest_db_scalar(e->svc.db, sql);
    free(sql);
    return n;
}

/* A HubSpot user renames the deal; dealsync writes the name to the opportunity, whose outbound
 * message reports it back: that message is finished unread (before, it was a query of the
 * opportunity and reads of the deal and its associations that found nothing to write). */
START_TEST(salesforce_echo_of_a_hubspot_change_is_not_read)
{
    struct e2e e;
    e2e_start(&e, "e2e_echo_skip", NULL, NULL, true);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Echo one", NULL, &deal);
    long long mark = outcome_mark(&e);

    e2e_hs_update(&e, "deals", deal, "{\"dealname\":\"Echo renamed\"}");
    ck_assert(wait_field(&e, false, opp, "Name", "Echo renamed"));
    expect_quiet(&e);

    char *last = e2e_last_detail(&e, opp);
    ck_assert_msg(
        outcomes(&e, opp, mark, "outcome = 'skipped' AND detail LIKE '%" ECHO_DETAIL "%'") >= 1 &&
            outcomes(&e, opp, mark, "outcome <> 'skipped'") == 0,
        "the outbound message of dealsync's own write was synced; last outcome: %s", last);
    free(last);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* A user clears a field in Salesforce and changes nothing else: the message leaves the field
 * out, which is no echo (the baseline holds a value), and the deal is cleared too. */
START_TEST(salesforce_field_cleared_is_synced)
{
    struct e2e e;
    e2e_start(&e, "e2e_echo_clear", NULL, NULL, true);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Echo clear", NULL, &deal);
    ck_assert(wait_field(&e, true, opp, "description", "first"));
    long long mark = outcome_mark(&e);

    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":null}");
    ck_assert_msg(wait_field(&e, true, opp, "description", ""),
                  "the description cleared in salesforce stayed on the deal");
    expect_quiet(&e);
    char *last = e2e_last_detail(&e, opp);
    ck_assert_msg(outcomes(&e, opp, mark, "outcome = 'skipped'") == 0,
                  "the clear was taken for an echo; last outcome: %s", last);
    free(last);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* The same clear, reported by the outbound message of dealsync's own write: the user clears the
 * description while the messages are held back, a HubSpot user renames the deal, dealsync writes
 * the name, and the one message then carries the new name (dealsync's) without the description
 * (the user's clear). It is synced, not taken for an echo. */
START_TEST(salesforce_clear_reported_with_an_echo_is_synced)
{
    struct e2e e;
    e2e_start(&e, "e2e_echo_clear_in_flight", NULL, NULL, true);
    char *deal = NULL;
    char *opp = synced_pair(&e, "Echo flight", NULL, &deal);

    e2e_sb_settings(&e, "{\"sf_om_batch_delay_ms\":4000}");
    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":null}");
    e2e_hs_update(&e, "deals", deal, "{\"dealname\":\"Echo flight renamed\"}");
    ck_assert(wait_field(&e, false, opp, "Name", "Echo flight renamed"));
    e2e_sb_settings(&e, "{\"sf_om_batch_delay_ms\":20}");
    ck_assert_msg(wait_field(&e, true, opp, "description", ""),
                  "the description cleared in salesforce stayed on the deal");
    expect_quiet(&e);

    cJSON *o = e2e_sf_get(&e, "Opportunity", opp);
    cJSON *d = e2e_hs_get(&e, "deals", deal);
    char name[128], desc[128];
    e2e_sf_text(o, "Name", name, sizeof(name));
    e2e_sf_text(o, "Description", desc, sizeof(desc));
    ck_assert_str_eq(name, "Echo flight renamed");
    ck_assert_str_eq(e2e_prop(d, "dealname"), "Echo flight renamed");
    ck_assert_str_eq(desc, "");
    ck_assert_str_eq(e2e_prop(d, "description"), "");
    cJSON_Delete(o);
    cJSON_Delete(d);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

struct company_wait {
    struct e2e *e;
    const char *deal;
    const char *not_company; /* wait for another company than this one */
};

static bool company_moved(void *arg)
{
    struct company_wait *w = arg;
    char now[32];
    e2e_primary_company(w->e, w->deal, now, sizeof(now));
    return now[0] && strcmp(now, w->not_company) != 0;
}

/* A user moves the opportunity to another account; the sync of that change writes the deal and
 * saves the baseline (the new account), then fails on the deal's company associations (HubSpot
 * answers `status` `times` times in a row). The message comes back to the queue, and its fields
 * now equal the baseline: still it is read and synced again, and the deal gets the new account's
 * company. */
static void account_move_with_failure(const char *name, int status, int times)
{
    struct e2e e;
    e2e_start(&e, name, NULL, NULL, true);
    char *first = e2e_sf_create(&e, "Account", "{\"Name\":\"Echo First Account\"}");
    char *second = e2e_sf_create(&e, "Account", "{\"Name\":\"Echo Second Account\"}");
    char *deal = NULL;
    char *opp = synced_pair(&e, name, first, &deal);
    char before[32];
    struct company_wait had = {&e, deal, ""};
    ck_assert_msg(itest_wait_for(company_moved, &had, DEADLINE_MS), "no company for the deal");
    e2e_primary_company(&e, deal, before, sizeof(before));
    long long mark = outcome_mark(&e);

    char *rules = xasprintf("{\"rules\":[{\"method\":\"POST\",\"path\":"
                            "\"/crm/v4/associations/deals/companies/batch/read\",\"status\":%d,"
                            "\"count\":%d}]}",
                            status, times);
    ck_assert_int_eq(e2e_sb(&e, "PUT", "/_sandbox/faults", rules, NULL), 200);
    free(rules);
    char *move = xasprintf("{\"AccountId\":\"%s\"}", second);
    e2e_sf_update(&e, "Opportunity", opp, move);
    free(move);
    struct company_wait moved = {&e, deal, before};
    bool is_moved = itest_wait_for(company_moved, &moved, DEADLINE_MS);
    expect_quiet(&e);
    char *last = e2e_last_detail(&e, opp);
    ck_assert_msg(is_moved, "the deal kept the first account's company %s; last outcome: %s",
                  before, last);
    ck_assert_msg(outcomes(&e, opp, mark, "outcome IN ('retry', 'deferred')") >= 1,
                  "the association read never failed (the case was not made); last outcome: %s",
                  last);
    free(last);
    ck_assert_int_eq(e2e_sb(&e, "DELETE", "/_sandbox/faults", NULL, NULL), 200);
    free(deal);
    free(opp);
    free(second);
    free(first);
    e2e_stop(&e);
}

/* A retry (its attempt counted). */
START_TEST(retried_message_equal_to_the_baseline_is_synced)
{
    account_move_with_failure("e2e_echo_retry", 503, 1);
}
END_TEST

/* Waiting for API budget (its attempt not counted: only its outcome tells). A 429 is sent again
 * in place twice (hs_client.c) before the record is given back: the third makes it wait. */
START_TEST(message_deferred_for_budget_equal_to_the_baseline_is_synced)
{
    account_move_with_failure("e2e_echo_budget", 429, 3);
}
END_TEST

/* Whether fault rule number index has fired. */
static bool rule_has_fired(struct e2e *e, int index)
{
    cJSON *f = NULL;
    ck_assert_int_eq(e2e_sb(e, "GET", "/_sandbox/faults", NULL, &f), 200);
    const cJSON *rule = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(f, "rules"), index);
    bool fired = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rule, "fired")) > 0;
    cJSON_Delete(f);
    return fired;
}

static bool fault_has_fired(void *arg)
{
    return rule_has_fired(arg, 0);
}

static bool second_fault_has_fired(void *arg)
{
    return rule_has_fired(arg, 1);
}

static bool second_has_passed(void *arg)
{
    return util_now_ms() / 1000 > *(const int64_t *)arg / 1000;
}

/* Retries seconds apart, and no poller (it would read the opportunity again). */
static const char *const slow_retries[] = {"QUEUE_RETRY_BASE_MS=6000", "QUEUE_RETRY_MAX_MS=8000",
                                           "CONTACT_ROLE_POLL_INTERVAL_SECONDS=3600", NULL};

/* HubSpot's webhooks held back 15 s. */
static const char *const late_webhooks[] = {"--set", "hubspot.webhook_batch_delay_ms=15000", NULL};

/* Starts dealsync with env and the sandbox with sandbox_args (may be NULL), and makes a synced
 * pair named name (synced_pair). */
static char *start_pair_with(struct e2e *e, const char *name, const char *const *env,
                             const char *const *sandbox_args, char **deal)
{
    e2e_start(e, name, env, sandbox_args, true);
    return synced_pair(e, name, NULL, deal);
}

/* Starts dealsync with env and a synced pair named name (start_pair_with) whose deal holds the
 * description "first", then puts the sandbox's fault rules faults in place. */
static char *start_faulted_pair(struct e2e *e, const char *name, const char *const *env,
                                const char *faults, char **deal)
{
    char *opp = start_pair_with(e, name, env, NULL, deal);
    ck_assert(wait_field(e, true, opp, "description", "first"));
    ck_assert_int_eq(e2e_sb(e, "PUT", "/_sandbox/faults", faults, NULL), 200);
    return opp;
}

/* The same with slow_retries. */
static char *start_with_a_pair(struct e2e *e, const char *name, const char *const *sandbox_args,
                               char **deal)
{
    return start_pair_with(e, name, slow_retries, sandbox_args, deal);
}

/* Fault rules: the next deal read, or the next opportunity update, answered 503. */
static const char deal_read_fails[] = "{\"rules\":[{\"method\":\"POST\",\"path\":"
                                      "\"/crm/v3/objects/deals/batch/read\",\"status\":503,"
                                      "\"count\":1}]}";
static const char opportunity_update_fails[] =
    "{\"rules\":[{\"method\":\"PATCH\",\"path\":\"/services/data/v60.0/composite/sobjects\","
    "\"status\":503,\"count\":1}]}";

/* The user deletes the deal in HubSpot; returns when. */
static int64_t delete_deal(struct e2e *e, const char *deal)
{
    char *path = xasprintf("/_sandbox/hubspot/objects/deals/%s", deal);
    ck_assert_int_eq(e2e_sb(e, "DELETE", path, NULL, NULL), 204);
    free(path);
    return util_now_ms();
}

/* In a later second than the delete, the user saves the opportunity with the amount it has
 * (synced_pair's), then all goes quiet. */
static void save_unchanged_after(struct e2e *e, const char *opp, int64_t deleted)
{
    ck_assert(itest_wait_for(second_has_passed, &deleted, DEADLINE_MS));
    e2e_sf_update(e, "Opportunity", opp, "{\"Amount\":100}");
    expect_quiet(e);
}

/* The opportunity is linked to a live deal other than the deleted one. */
static void assert_new_deal(struct e2e *e, const char *opp, const char *deleted_deal)
{
    char *now = e2e_deal_id_of(e, opp);
    cJSON *d = now ? e2e_hs_get(e, "deals", now) : NULL;
    char *last = e2e_last_detail(e, opp);
    ck_assert_msg(d && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "archived")) &&
                      strcmp(now, deleted_deal) != 0,
                  "no new deal for opportunity %s, saved after the user deleted deal %s (linked "
                  "to %s); last outcome: %s",
                  opp, deleted_deal, now ? now : "none", last);
    free(last);
    cJSON_Delete(d);
    free(now);
}

/* Both the opportunity and the deal hold the description want. */
static void assert_description_won(struct e2e *e, const char *opp, const char *deal,
                                   const char *want)
{
    cJSON *o = e2e_sf_get(e, "Opportunity", opp);
    cJSON *d = e2e_hs_get(e, "deals", deal);
    char desc[128];
    char *last = e2e_last_detail(e, opp);
    char *last_deal = e2e_last_detail(e, deal);
    ck_assert_msg(strcmp(e2e_sf_text(o, "Description", desc, sizeof(desc)), want) == 0 &&
                      strcmp(e2e_prop(d, "description"), want) == 0,
                  "the newer description \"%s\" lost: opportunity \"%s\", deal \"%s\"; "
                  "last outcomes: opportunity %s; deal %s",
                  want, desc, e2e_prop(d, "description"), last, last_deal);
    free(last_deal);
    free(last);
    cJSON_Delete(d);
    cJSON_Delete(o);
}

/* Waits for quiet, asserts that both records hold the description want
 * (assert_description_won), and stops; frees opp and deal. */
static void end_with_description(struct e2e *e, char *opp, char *deal, const char *want)
{
    expect_quiet(e);
    assert_description_won(e, opp, deal, want);
    free(deal);
    free(opp);
    e2e_stop(e);
}

/* A user deletes the deal in HubSpot, then saves the opportunity a second later without changing
 * a mapped field (the same amount again): a change after the delete, which makes a new deal
 * (docs/salesforce-to-hubspot.md). The deletion's sync waits in the queue (its deal read fails
 * once, 503), so the outbound message finds the pair still linked and every field at the
 * baseline. Taken for dealsync's own write, it was finished unread; the deletion then forgot the
 * link, and the opportunity never got its new deal. */
START_TEST(salesforce_save_while_the_deals_deletion_waits_makes_a_new_deal)
{
    struct e2e e;
    char *deal = NULL;
    char *opp = start_with_a_pair(&e, "e2e_echo_deal_deleted", NULL, &deal);

    ck_assert_int_eq(e2e_sb(&e, "PUT", "/_sandbox/faults", deal_read_fails, NULL), 200);
    int64_t deleted = delete_deal(&e, deal);
    ck_assert_msg(itest_wait_for(fault_has_fired, &e, DEADLINE_MS), "the deletion was never read");
    char *sql = xasprintf("SELECT count(*) FROM sync_event WHERE source = 'hubspot' AND record_id"
                          " = '%s' AND event_type = 'deal.deletion' AND status = 'pending'",
                          deal);
    ck_assert_msg(itest_db_scalar(e.svc.db, sql) >= 1, "the deletion is not waiting to be retried");
    free(sql);
    save_unchanged_after(&e, opp, deleted);
    assert_new_deal(&e, opp, deal);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* The same save while HubSpot still holds the deletion webhook back (15 s): the message finds no
 * deletion in the queue, and is finished unread as an echo. The deletion, handled later, queues
 * the opportunity again, and its next read makes the new deal. */
START_TEST(salesforce_save_before_the_deals_deletion_webhook_makes_a_new_deal)
{
    struct e2e e;
    char *deal = NULL;
    char *opp = start_with_a_pair(&e, "e2e_echo_deal_deleted_late", late_webhooks, &deal);
    long long mark = outcome_mark(&e);

    save_unchanged_after(&e, opp, delete_deal(&e, deal));
    ck_assert_msg(
        outcomes(&e, opp, mark, "outcome = 'skipped' AND detail LIKE '%" ECHO_DETAIL "%'") >= 1,
        "the save was not taken for an echo (the case was not made)");
    assert_new_deal(&e, opp, deal);
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* Answers lost after 3 s, and retries seconds apart (as slow_retries). */
static const char *const lost_answers[] = {"API_TIMEOUT_MS=3000", "QUEUE_RETRY_BASE_MS=6000",
                                           "QUEUE_RETRY_MAX_MS=8000",
                                           "CONTACT_ROLE_POLL_INTERVAL_SECONDS=3600", NULL};

/* The deal handler remembers what it is about to write to the opportunity (sf_written) before
 * the write; a write that is not carried out (faults: the next opportunity update answered with
 * an error, or cut off by a timeout; a kill in the chaos run, whose lease then holds the deal's
 * later events for 30 s) leaves the value remembered though Salesforce never got it. A HubSpot
 * user sets the description back, and a Salesforce user, a second later, sets it to the
 * remembered value: the newer change, which must win. */
static void salesforce_change_to_a_value_not_written(const char *name, const char *const *env,
                                                     const char *faults)
{
    struct e2e e;
    char *deal = NULL;
    char *opp = start_faulted_pair(&e, name, env, faults, &deal);
    e2e_hs_update(&e, "deals", deal, "{\"description\":\"from hubspot\"}");
    ck_assert_msg(itest_wait_for(fault_has_fired, &e, DEADLINE_MS), "the write never failed");
    e2e_hs_update(&e, "deals", deal, "{\"description\":\"first\"}");
    int64_t back = util_now_ms();
    ck_assert(itest_wait_for(second_has_passed, &back, DEADLINE_MS));
    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"from hubspot\"}");
    end_with_description(&e, opp, deal, "from hubspot");
}

START_TEST(salesforce_change_to_a_value_whose_write_failed_wins)
{
    salesforce_change_to_a_value_not_written("e2e_echo_unwritten", slow_retries,
                                             opportunity_update_fails);
}
END_TEST

/* The next opportunity update held 6 s and never carried out: cut off by dealsync's timeout
 * (3 s), as a request lost on its way is. */
static const char opportunity_update_times_out[] =
    "{\"rules\":[{\"method\":\"PATCH\",\"path\":\"/services/data/v60.0/composite/sobjects\","
    "\"action\":\"timeout\",\"hold_ms\":6000,\"count\":1}]}";

/* The same with a write cut off by a timeout: it may have been carried out, and stayed
 * remembered as dealsync's own; the Salesforce user's change was finished as its echo, and the
 * HubSpot value written over it (both ended "first"). */
START_TEST(salesforce_change_to_a_value_whose_write_timed_out_wins)
{
    salesforce_change_to_a_value_not_written("e2e_echo_timed_out", lost_answers,
                                             opportunity_update_times_out);
}
END_TEST

/* The next opportunity update, or deal upsert, carried out 1.5 s after it came (after the change
 * a test makes meanwhile, and in a later second), its answer lost: dealsync's timeout (3 s) cuts
 * it off. */
static const char opportunity_update_late_and_lost[] =
    "{\"rules\":[{\"method\":\"PATCH\",\"path\":\"/services/data/v60.0/composite/sobjects\","
    "\"action\":\"timeout_after_write\",\"latency_ms\":1500,\"hold_ms\":6000,\"count\":1}]}";
static const char deal_upsert_late_and_lost[] =
    "{\"rules\":[{\"method\":\"POST\",\"path\":\"/crm/v3/objects/deals/batch/upsert\","
    "\"action\":\"timeout_after_write\",\"latency_ms\":1500,\"hold_ms\":6000,"
    "\"count\":1}]}";

/* The user of one side (HubSpot when is_to_opportunity, dealsync then writing the opportunity;
 * else Salesforce) sets the description, and sets it again while dealsync's write of the first
 * value to the other side is under way; that side carries the write out in a later second, its
 * answer lost. The newer value must win on both sides. */
static void write_whose_answer_was_lost(const char *name, bool is_to_opportunity)
{
    struct e2e e;
    char *deal = NULL;
    char *opp = start_faulted_pair(
        &e, name, lost_answers,
        is_to_opportunity ? opportunity_update_late_and_lost : deal_upsert_late_and_lost, &deal);
    if (is_to_opportunity)
        e2e_hs_update(&e, "deals", deal, "{\"description\":\"first value\"}");
    else
        e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"first value\"}");
    ck_assert_msg(itest_wait_for(fault_has_fired, &e, DEADLINE_MS), "the write never came");
    if (is_to_opportunity)
        e2e_hs_update(&e, "deals", deal, "{\"description\":\"newer value\"}");
    else
        e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"newer value\"}");
    ck_assert_msg(wait_field(&e, !is_to_opportunity, opp,
                             is_to_opportunity ? "Description" : "description", "first value"),
                  "the write was never carried out (the case was not made)");
    end_with_description(&e, opp, deal, "newer value");
}

/* The guard of salesforce_change_to_a_value_whose_write_timed_out_wins: a write to the
 * opportunity cut off whose answer was lost but that WAS carried out is still dealsync's own when
 * the opportunity reports it back (saved last by the integration user). Taken for a Salesforce
 * user's change (the record modified later), it would win over the HubSpot user's newer value. */
START_TEST(opportunity_write_whose_answer_was_lost_stays_dealsyncs_own)
{
    write_whose_answer_was_lost("e2e_echo_sf_lost_own", true);
}
END_TEST

/* The guard of the mirror: a deal write cut off whose answer was lost but that WAS carried out is
 * still dealsync's own (its history says so). Taken for a HubSpot user's change (the record
 * modified later), it would win over the Salesforce user's newer value. */
START_TEST(deal_write_whose_answer_was_lost_stays_dealsyncs_own)
{
    write_whose_answer_was_lost("e2e_echo_hs_lost_own", false);
}
END_TEST

/* The next opportunity update carried out at once, its answer lost (held 6 s, past dealsync's
 * 3 s timeout). */
static const char opportunity_update_lost[] =
    "{\"rules\":[{\"method\":\"PATCH\",\"path\":\"/services/data/v60.0/composite/sobjects\","
    "\"action\":\"timeout_after_write\",\"hold_ms\":6000,\"count\":1}]}";

/* Whether the opportunity of w has no open event. */
static bool record_is_done(void *arg)
{
    struct field_wait *w = arg;
    char *sql = xasprintf("SELECT count(*) FROM sync_event WHERE record_id = '%s' AND status IN"
                          " ('pending', 'running')",
                          w->opp);
    long long n = itest_db_scalar(w->e->svc.db, sql);
    free(sql);
    return n == 0;
}

/* No worker takes the opportunity's events, nor its pair's, until release_pair (the record's busy
 * lock, as a killed worker's lease held a deal's events for 30 s in a chaos run). */
static void hold_pair(struct e2e *e, const char *opp)
{
    char *hold =
        xasprintf("SELECT pg_advisory_lock(" QUEUE_RECORD_LOCK_CLASS ", hashtext('sf:%s'))", opp);
    itest_db_exec(e->svc.db, hold);
    free(hold);
}

/* The next deal upsert held 6 s and never carried out (cut off by the 3 s timeout). */
static const char deal_upsert_times_out[] =
    "{\"rules\":[{\"method\":\"POST\",\"path\":\"/crm/v3/objects/deals/batch/upsert\","
    "\"action\":\"timeout\",\"hold_ms\":6000,\"count\":1}]}";

/* Starts dealsync with env and a synced pair (start_faulted_pair) whose next deal upsert times
 * out, not carried out; a Salesforce user sets the description, and returns once dealsync's write
 * of it to the deal was cut off. With is_held, the deal's webhooks are held back first. */
static char *deal_write_timed_out(struct e2e *e, const char *name, const char *const *env,
                                  bool is_held, char **deal)
{
    char *opp = start_faulted_pair(e, name, env, deal_upsert_times_out, deal);
    if (is_held)
        e2e_sb_settings(e, "{\"hubspot.webhook_batch_delay_ms\":600000}");
    e2e_sf_update(e, "Opportunity", opp, "{\"Description\":\"from salesforce\"}");
    ck_assert_msg(itest_wait_for(fault_has_fired, e, DEADLINE_MS), "the write never came");
    return opp;
}

/* The mirror: the opportunity handler remembers what it is about to write to the deal
 * (hs_written); its write is cut off by a timeout and was not carried out. The Salesforce user
 * sets the description back, and a HubSpot user, a second later, sets the deal to the remembered
 * value: the newer change, which must win. The opportunity's next sync (held here by the test
 * until then, the deal's webhooks held back until after it) took the deal's value for the echo
 * of its write and wrote Salesforce's older value over it (both ended "first"). */
START_TEST(hubspot_change_to_a_value_whose_write_timed_out_wins)
{
    struct e2e e;
    char *deal = NULL;
    char *opp = deal_write_timed_out(&e, "e2e_echo_hs_timed_out", lost_answers, true, &deal);
    hold_pair(&e, opp);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"first\"}");
    int64_t back = util_now_ms();
    ck_assert(itest_wait_for(second_has_passed, &back, DEADLINE_MS));
    e2e_hs_update(&e, "deals", deal, "{\"description\":\"from salesforce\"}");
    itest_db_exec(e.svc.db, "SELECT pg_advisory_unlock_all()");
    struct field_wait done = {&e, false, opp, NULL, NULL};
    ck_assert_msg(itest_wait_for(record_is_done, &done, DEADLINE_MS),
                  "the opportunity's sync never ended");
    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":50}");
    end_with_description(&e, opp, deal, "from salesforce");
}
END_TEST

/* The next deal upsert is carried out and its answer lost; the one after it is answered 502. */
static const char deal_upserts_lost_then_failed[] =
    "{\"rules\":[{\"method\":\"POST\",\"path\":\"/crm/v3/objects/deals/batch/upsert\","
    "\"action\":\"timeout_after_write\",\"hold_ms\":6000,\"count\":1},"
    "{\"method\":\"POST\",\"path\":\"/crm/v3/objects/deals/batch/upsert\",\"status\":502,"
    "\"count\":1}]}";

/* The opportunity handler remembers what it is about to write to the deal (hs_written) before
 * the write. A Salesforce user's description reaches the deal, but the answer is lost, so that
 * sync saves no baseline and the write stays remembered. The user sets another description, whose
 * write HubSpot answers 502; a second later a HubSpot user renames the deal. The write that failed
 * had replaced the remembered one that was carried out, so the deal's description looked like a
 * HubSpot user's change in the deal modified later, and won: the user's newer Salesforce
 * description was undone on both sides (a chaos run). */
START_TEST(salesforce_change_whose_deal_write_failed_is_not_undone)
{
    struct e2e e;
    char *deal = NULL;
    char *opp = start_faulted_pair(&e, "e2e_echo_deal_unwritten", lost_answers,
                                   deal_upserts_lost_then_failed, &deal);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"written\"}");
    ck_assert_msg(wait_field(&e, true, opp, "description", "written"),
                  "the first description never reached the deal");
    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"from salesforce\"}");
    int64_t changed = util_now_ms();
    ck_assert_msg(itest_wait_for(second_fault_has_fired, &e, DEADLINE_MS),
                  "the second write never failed");
    ck_assert(itest_wait_for(second_has_passed, &changed, DEADLINE_MS));
    e2e_hs_update(&e, "deals", deal, "{\"dealname\":\"Renamed in hubspot\"}");
    ck_assert_msg(wait_field(&e, false, opp, "Name", "Renamed in hubspot"),
                  "the hubspot user's new name never reached the opportunity");
    end_with_description(&e, opp, deal, "from salesforce");
}
END_TEST

/* Whether an open outbound message of the opportunity holds w->want in w->field (leaves the
 * field out: w->want NULL). */
static bool message_is_queued(void *arg)
{
    struct field_wait *w = arg;
    char *sql = w->want ? xasprintf("SELECT count(*) FROM sync_event WHERE record_id = '%s' AND"
                                    " status = 'pending' AND payload->'fields'->>'%s' = '%s'",
                                    w->opp, w->field, w->want)
                        : xasprintf("SELECT count(*) FROM sync_event WHERE record_id = '%s' AND"
                                    " status = 'pending' AND event_type = 'outbound_message'"
                                    " AND NOT payload->'fields' ? '%s'",
                                    w->opp, w->field);
    long long n = itest_db_scalar(w->e->svc.db, sql);
    free(sql);
    return n > 0;
}

/* A Salesforce user sets the opportunity's field to value (JSON text); returns once its outbound
 * message, whose field holds want (leaves it out: want NULL), waits in the queue. */
static void set_in_salesforce(struct e2e *e, const char *opp, const char *field, const char *value,
                              const char *want)
{
    char *json = xasprintf("{\"%s\":%s}", field, value);
    e2e_sf_update(e, "Opportunity", opp, json);
    free(json);
    struct field_wait w = {e, false, opp, field, want};
    ck_assert_msg(itest_wait_for(message_is_queued, &w, DEADLINE_MS), "no message for %s \"%s\"",
                  field, want ? want : "(left out)");
}

/* With the pair held, a HubSpot user sets the deal's description; returns once a later second has
 * begun, so that a Salesforce change made next is the later one. */
static void held_hubspot_description(struct e2e *e, const char *opp, const char *deal)
{
    hold_pair(e, opp);
    e2e_hs_update(e, "deals", deal, "{\"description\":\"from hubspot\"}");
    int64_t changed = util_now_ms();
    ck_assert(itest_wait_for(second_has_passed, &changed, DEADLINE_MS));
}

/* Lets the workers take the held pair, and waits for quiet. */
static void release_pair(struct e2e *e)
{
    itest_db_exec(e->svc.db, "SELECT pg_advisory_unlock_all()");
    expect_quiet(e);
}

/* A HubSpot user sets the description; a second later a Salesforce user sets it to another value
 * and back to the baseline before either direction syncs the pair (held here by the test).
 * Salesforce's change is the later one and must win on both sides; by value alone Salesforce
 * looked unchanged, and HubSpot's older value was written over it (a chaos run, with Type). */
static void set_away_and_back(const char *name, const char *away, const char *away_want)
{
    struct e2e e;
    char *deal = NULL;
    char *opp = start_with_a_pair(&e, name, NULL, &deal);
    ck_assert(wait_field(&e, true, opp, "description", "first"));
    held_hubspot_description(&e, opp, deal);
    set_in_salesforce(&e, opp, "Description", away, away_want);
    set_in_salesforce(&e, opp, "Description", "\"first\"", "first");
    release_pair(&e);

    assert_description_won(&e, opp, deal, "first");
    free(deal);
    free(opp);
    e2e_stop(&e);
}

START_TEST(salesforce_value_set_away_and_back_wins_over_an_older_hubspot_change)
{
    set_away_and_back("e2e_echo_set_back", "\"from salesforce\"", "from salesforce");
}
END_TEST

/* The same set away to a blank and back (A, blank, A): the message of the clear leaves the field
 * out, as Salesforce leaves a blank out, and a message that leaves a field out told nothing (an
 * action set up by hand may not list it), so Salesforce looked unchanged and HubSpot's older
 * value was written over the later Salesforce change. The message that sets it back carries the
 * field: the action lists it, and its message that leaves it out reports a blank. */
START_TEST(salesforce_value_set_away_to_a_blank_and_back_wins_over_an_older_hubspot_change)
{
    set_away_and_back("e2e_echo_set_back_blank", "null", NULL);
}
END_TEST

/* The outbound message carries a value in another form than the record read over REST: its parser
 * trims the text and XML makes every line break one LF, so a description "two\r\nlines\n"
 * arrives as "two\nlines". A HubSpot user sets the description; a second later a Salesforce user
 * renames the opportunity (held as above until both are made). HubSpot's is the only description
 * change and must win on both sides: the message's description, compared as it came, was taken
 * for a Salesforce change made later, and the opportunity's older description was written over
 * the deal's. */
START_TEST(description_in_another_form_in_a_message_is_no_salesforce_change)
{
    struct e2e e;
    char *deal = NULL;
    char *opp = start_with_a_pair(&e, "e2e_echo_message_form", NULL, &deal);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"two\\r\\nlines\\n\"}");
    ck_assert(wait_field(&e, true, opp, "description", "two\r\nlines\n"));
    expect_quiet(&e);
    held_hubspot_description(&e, opp, deal);
    set_in_salesforce(&e, opp, "Name", "\"Form renamed\"", "Form renamed");
    release_pair(&e);

    assert_description_won(&e, opp, deal, "from hubspot");
    ck_assert(wait_field(&e, true, opp, "dealname", "Form renamed"));
    free(deal);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* A HubSpot user sets the description; dealsync's write of it to the opportunity is carried out
 * and its answer lost, so the write is of unknown outcome. Its outbound message (saved by the
 * integration user) waits in the queue while the pair is held (as a killed worker's lease holds
 * it); the HubSpot user sets a newer description, and a Salesforce user, a second later, renames
 * the opportunity. The HubSpot user's newer description must win on both sides: the read of the
 * opportunity, saved last by a user, made the written value the Salesforce user's, a change in the
 * record modified later, and it was written over the newer HubSpot value. */
START_TEST(opportunity_write_whose_answer_was_lost_stays_dealsyncs_own_after_a_user_save)
{
    struct e2e e;
    char *deal = NULL;
    char *opp = start_faulted_pair(&e, "e2e_echo_sf_lost_saved", lost_answers,
                                   opportunity_update_lost, &deal);
    int64_t synced = util_now_ms();
    ck_assert(itest_wait_for(second_has_passed, &synced, DEADLINE_MS));
    e2e_hs_update(&e, "deals", deal, "{\"description\":\"from hubspot\"}");
    ck_assert_msg(itest_wait_for(fault_has_fired, &e, DEADLINE_MS), "the write never came");
    hold_pair(&e, opp);
    struct field_wait own = {&e, false, opp, "Description", "from hubspot"};
    ck_assert_msg(itest_wait_for(message_is_queued, &own, DEADLINE_MS),
                  "no message of dealsync's write (the case was not made)");
    e2e_hs_update(&e, "deals", deal, "{\"description\":\"newer from hubspot\"}");
    int64_t changed = util_now_ms();
    ck_assert(itest_wait_for(second_has_passed, &changed, DEADLINE_MS));
    set_in_salesforce(&e, opp, "Name", "\"Saved in salesforce\"", "Saved in salesforce");
    release_pair(&e);
    ck_assert(wait_field(&e, true, opp, "dealname", "Saved in salesforce"));
    end_with_description(&e, opp, deal, "newer from hubspot");
}
END_TEST

/* Whether the sandbox has given up on a HubSpot webhook (as after HubSpot's last retry). */
static bool webhook_dropped(void *arg)
{
    cJSON *st = NULL;
    ck_assert_int_eq(e2e_sb(arg, "GET", "/_sandbox/hubspot/webhooks", NULL, &st), 200);
    bool is_dropped =
        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(st, "droppedEvents")) > 0;
    cJSON_Delete(st);
    return is_dropped;
}

/* Answers lost after 3 s, and a failed sync retried 40 s later: the opportunity's retry stays
 * out of the way until the deal has been synced. */
static const char *const late_retries[] = {"API_TIMEOUT_MS=3000", "QUEUE_RETRY_BASE_MS=40000",
                                           "QUEUE_RETRY_MAX_MS=40000",
                                           "CONTACT_ROLE_POLL_INTERVAL_SECONDS=3600", NULL};

/* hubspot_change_to_a_value_whose_write_timed_out_wins with the webhook of the HubSpot user's
 * change lost, and the deal synced first for another change: the deal handler took the value
 * for dealsync's own write (it decides by the deal's webhooks, and read no history), and its
 * sync moved the time dealsync last knew the deal past the user's change, so the opportunity
 * handler read no history either and wrote Salesforce's older value over the user's newer one. */
START_TEST(hubspot_change_to_a_value_whose_write_timed_out_wins_when_its_webhook_is_lost)
{
    struct e2e e;
    char *deal = NULL;
    char *opp = deal_write_timed_out(&e, "e2e_echo_hs_lost_webhook", late_retries, false, &deal);
    /* The Salesforce user's set-back reaches dealsync 20 s later, after the deal's sync. */
    e2e_sb_settings(&e, "{\"sf_om_batch_delay_ms\":20000}");
    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"first\"}");
    e2e_sb_settings(&e, "{\"sf_om_batch_delay_ms\":20}");
    int64_t back = util_now_ms();
    ck_assert(itest_wait_for(second_has_passed, &back, DEADLINE_MS));
    e2e_sb_settings(&e, "{\"hubspot.webhook_batch_delay_ms\":600000}");
    e2e_hs_update(&e, "deals", deal, "{\"description\":\"from salesforce\"}");
    e2e_sb_settings(&e, "{\"delivery.drop_rate\":1,\"hubspot.webhook_batch_delay_ms\":0}");
    ck_assert_msg(itest_wait_for(webhook_dropped, &e, DEADLINE_MS), "the webhook was not lost");
    e2e_sb_settings(&e, "{\"delivery.drop_rate\":0,\"hubspot.webhook_batch_delay_ms\":50}");
    e2e_hs_update(&e, "deals", deal, "{\"dealname\":\"Renamed in hubspot\"}");
    ck_assert_msg(wait_field(&e, false, opp, "Name", "Renamed in hubspot"),
                  "the deal's new name never reached the opportunity");
    end_with_description(&e, opp, deal, "from salesforce");
}
END_TEST

Suite *suite_e2e_echo(void);
Suite *suite_e2e_echo(void)
{
    Suite *s = suite_create("e2e_echo");
    TCase *tc = tcase_create("salesforce echoes");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, salesforce_echo_of_a_hubspot_change_is_not_read);
    tcase_add_test(tc, salesforce_field_cleared_is_synced);
    tcase_add_test(tc, salesforce_clear_reported_with_an_echo_is_synced);
    tcase_add_test(tc, retried_message_equal_to_the_baseline_is_synced);
    tcase_add_test(tc, message_deferred_for_budget_equal_to_the_baseline_is_synced);
    tcase_add_test(tc, salesforce_save_while_the_deals_deletion_waits_makes_a_new_deal);
    tcase_add_test(tc, salesforce_save_before_the_deals_deletion_webhook_makes_a_new_deal);
    tcase_add_test(tc, salesforce_value_set_away_and_back_wins_over_an_older_hubspot_change);
    tcase_add_test(tc, description_in_another_form_in_a_message_is_no_salesforce_change);
    suite_add_tcase(s, tc);
    /* Writes refused, answered with an error, or cut off (by a timeout, or a kill) whose value a
     * user then sets, and those whose answer was lost though they were carried out. */
    TCase *unknown = tcase_create("writes not answered");
    tcase_set_timeout(unknown, 300);
    tcase_add_test(unknown, salesforce_change_to_a_value_whose_write_failed_wins);
    tcase_add_test(unknown, salesforce_change_to_a_value_whose_write_timed_out_wins);
    tcase_add_test(unknown, opportunity_write_whose_answer_was_lost_stays_dealsyncs_own);
    tcase_add_test(unknown, hubspot_change_to_a_value_whose_write_timed_out_wins);
    tcase_add_test(unknown, deal_write_whose_answer_was_lost_stays_dealsyncs_own);
    tcase_add_test(unknown, salesforce_change_whose_deal_write_failed_is_not_undone);
    suite_add_tcase(s, unknown);
    /* A write carried out whose answer was lost, then a Salesforce user's save of another field
     * before dealsync reads the opportunity. */
    TCase *saved = tcase_create("answer lost before a user's save");
    tcase_set_timeout(saved, 300);
    tcase_add_test(saved,
                   opportunity_write_whose_answer_was_lost_stays_dealsyncs_own_after_a_user_save);
    suite_add_tcase(s, saved);
    /* A write of unknown outcome, then a user's change to its value whose webhook is lost. */
    TCase *lost = tcase_create("webhook of a user's change lost");
    tcase_set_timeout(lost, 300);
    tcase_add_test(lost,
                   hubspot_change_to_a_value_whose_write_timed_out_wins_when_its_webhook_is_lost);
    suite_add_tcase(s, lost);
    /* A field set away and back in Salesforce, through a blank its message leaves out. */
    TCase *blank = tcase_create("set back through a blank");
    tcase_set_timeout(blank, 300);
    tcase_add_test(blank,
                   salesforce_value_set_away_to_a_blank_and_back_wins_over_an_older_hubspot_change);
    suite_add_tcase(s, blank);
    return s;
}
