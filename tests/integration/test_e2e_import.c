/* test_e2e_import.c - import, reconciliation and resync end to end (issue 8), with both
 * directions running: records that existed before dealsync started (their outbound messages and
 * webhooks were lost: the sandbox drops every delivery) reach the other side through
 * `dealsync import`, a killed import continues, lost changes heal by reconciliation, and a
 * delete older than getDeleted's window still deletes the deal. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "itest.h"
#include "pipelines.h"
#include "util.h"

#define DEADLINE_MS 90000
#define OPP_FIELD "dealsync_salesforce_opportunity_id"
#define DEAL_FIELD "HubSpot_Deal_Id__c"

/* Deliveries lost, and a HubSpot rate limit that does not make a test wait. */
static const char *const lossy_sandbox[] = {"--set", "delivery.drop_rate=1", "--set",
                                            "hubspot.rate_limit_max=100000", NULL};

static cJSON *sb_json(struct e2e *e, const char *method, const char *path, const char *body,
                      int want)
{
    cJSON *json = NULL;
    int status = e2e_sb(e, method, path, body, &json);
    ck_assert_msg(status == want, "%s %s: %d, wanted %d", method, path, status, want);
    return json;
}

/* The id of the record type New_Business (the default), 18 characters. */
static char *default_record_type(struct e2e *e)
{
    cJSON *list = sb_json(e, "GET", "/_sandbox/salesforce/records/RecordType", NULL, 200);
    char *id = NULL;
    const cJSON *r;
    cJSON_ArrayForEach(r, list)
    {
        if (!id && strcmp(sbtest_str(r, "DeveloperName"), "New_Business") == 0)
            id = xstrdup(sbtest_str(r, "Id"));
    }
    cJSON_Delete(list);
    ck_assert(id != NULL);
    return id;
}

/* The team's HubSpot pipeline for New_Business deals, named as dealsync names it, with a stage
 * per Salesforce stage; *stage receives the id of its "Prospecting" stage (caller frees). */
static char *team_pipeline(struct e2e *e, char **stage)
{
    char *rt = default_record_type(e);
    cJSON *stages = sb_json(e, "GET", "/_sandbox/salesforce/records/OpportunityStage", NULL, 200);
    cJSON *input = cJSON_CreateObject();
    char *label = pipelines_label(rt);
    cJSON_AddStringToObject(input, "label", label);
    cJSON_AddNumberToObject(input, "displayOrder", 1);
    cJSON *list = cJSON_AddArrayToObject(input, "stages");
    const cJSON *s;
    cJSON_ArrayForEach(s, stages)
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "IsActive")))
            cJSON_AddItemToArray(list, pipelines_stage_input(s));
    }
    char *body = cJSON_PrintUnformatted(input);
    cJSON *created = sb_json(e, "POST", "/crm/v3/pipelines/deals", body, 201);
    char *id = xstrdup(sbtest_str(created, "id"));
    const cJSON *st;
    *stage = NULL;
    cJSON_ArrayForEach(st, cJSON_GetObjectItemCaseSensitive(created, "stages"))
    {
        if (!*stage && strcmp(sbtest_str(st, "label"), "Prospecting") == 0)
            *stage = xstrdup(sbtest_str(st, "id"));
    }
    ck_assert(*stage != NULL);
    cJSON_Delete(created);
    free(body);
    free(label);
    cJSON_Delete(input);
    cJSON_Delete(stages);
    free(rt);
    return id;
}

static void create_opportunities(struct e2e *e, int n)
{
    for (int i = 0; i < n; i++) {
        char *body =
            xasprintf("{\"Name\":\"Imported opportunity %d\",\"StageName\":\"Prospecting\","
                      "\"CloseDate\":\"2027-03-01\",\"Amount\":%d}",
                      i, 1000 + i);
        cJSON_Delete(sb_json(e, "POST", "/_sandbox/salesforce/records/Opportunity", body, 201));
        free(body);
    }
}

static void create_deals(struct e2e *e, int n, const char *pipeline, const char *stage)
{
    for (int i = 0; i < n; i++) {
        char *body = xasprintf("{\"properties\":{\"dealname\":\"Imported deal %d\","
                               "\"pipeline\":\"%s\",\"dealstage\":\"%s\",\"amount\":\"%d\","
                               "\"closedate\":\"2027-04-01T00:00:00.000Z\"}}",
                               i, pipeline, stage, 5000 + i);
        cJSON_Delete(sb_json(e, "POST", "/_sandbox/hubspot/objects/deals", body, 201));
        free(body);
    }
}

/* Every live deal through the API (paged): how many, and how many carry each opportunity id. */
static cJSON *all_deals(struct e2e *e)
{
    cJSON *all = cJSON_CreateArray();
    char *after = NULL;
    do {
        char *path =
            xasprintf("/crm/v3/objects/deals?limit=100&properties=dealname," OPP_FIELD "%s%s",
                      after ? "&after=" : "", after ? after : "");
        cJSON *page = sb_json(e, "GET", path, NULL, 200);
        free(path);
        free(after);
        after = NULL;
        cJSON *results = cJSON_GetObjectItemCaseSensitive(page, "results");
        while (cJSON_GetArraySize(results) > 0)
            cJSON_AddItemToArray(all, cJSON_DetachItemFromArray(results, 0));
        const char *next = sbtest_str(cJSON_GetObjectItemCaseSensitive(
                                          cJSON_GetObjectItemCaseSensitive(page, "paging"), "next"),
                                      "after");
        if (next && *next)
            after = xstrdup(next);
        cJSON_Delete(page);
    } while (after);
    return all;
}

static cJSON *live_opportunities(struct e2e *e)
{
    cJSON *list = sb_json(e, "GET", "/_sandbox/salesforce/records/Opportunity", NULL, 200);
    cJSON *live = cJSON_CreateArray();
    const cJSON *o;
    cJSON_ArrayForEach(o, list)
    {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "IsDeleted")))
            cJSON_AddItemToArray(live, cJSON_Duplicate(o, true));
    }
    cJSON_Delete(list);
    return live;
}

/* n opportunities and n deals in all, each opportunity with exactly one deal and each deal with
 * exactly one opportunity. */
static void assert_paired(struct e2e *e, int n)
{
    cJSON *deals = all_deals(e);
    cJSON *opps = live_opportunities(e);
    ck_assert_int_eq(cJSON_GetArraySize(deals), n);
    ck_assert_int_eq(cJSON_GetArraySize(opps), n);
    cJSON *deal_of = cJSON_CreateObject();
    const cJSON *d;
    cJSON_ArrayForEach(d, deals)
    {
        const char *opp = sbtest_str(cJSON_GetObjectItemCaseSensitive(d, "properties"), OPP_FIELD);
        ck_assert_msg(opp && *opp, "deal %s has no opportunity", sbtest_str(d, "id"));
        ck_assert_msg(!cJSON_GetObjectItemCaseSensitive(deal_of, opp),
                      "opportunity %s has two deals", opp);
        cJSON_AddStringToObject(deal_of, opp, sbtest_str(d, "id"));
    }
    const cJSON *o;
    cJSON_ArrayForEach(o, opps)
    {
        const char *id = sbtest_str(o, "Id");
        const char *deal = sbtest_str(deal_of, id);
        ck_assert_msg(deal && *deal, "opportunity %s has no deal", id);
        /* The deal id reaches an opportunity made in Salesforce when the deal's webhook (lost
         * here) or a later sync of the deal comes; when it is there, it is this deal. */
        const char *field = sbtest_str(o, DEAL_FIELD);
        ck_assert_msg(!*field || strcmp(field, deal) == 0, "opportunity %s: deal %s, field %s", id,
                      deal, field);
    }
    cJSON_Delete(deal_of);
    cJSON_Delete(opps);
    cJSON_Delete(deals);
}

static long long scalar(struct e2e *e, const char *sql)
{
    return itest_db_scalar(e->svc.db, sql);
}

struct pages_wait {
    struct e2e *e;
    long long pages;
};

static bool pages_listed(void *arg)
{
    struct pages_wait *w = arg;
    return scalar(w->e, "SELECT coalesce(max(pages_done), 0) FROM import_run"
                        " WHERE source = 'salesforce'") >= w->pages;
}

START_TEST(import_killed_halfway_continues_and_syncs_everything_once)
{
    enum { N = 300 };
    struct e2e e;
    const char *sandbox[] = {
        "--set", "delivery.drop_rate=1",   "--set", "hubspot.rate_limit_max=100000",
        "--set", "sf_query_batch_size=50", NULL};
    e2e_start(&e, "import_kill", NULL, sandbox, true);
    char *stage = NULL;
    char *pipeline = team_pipeline(&e, &stage);
    create_opportunities(&e, N);
    create_deals(&e, N, pipeline, stage);

    /* Slow listing pages (400 ms each of 6), so the kill lands in the middle. */
    cJSON_Delete(sb_json(&e, "PUT", "/_sandbox/faults",
                         "{\"rules\":[{\"path\":\"/services/data/v60.0/query\","
                         "\"action\":\"latency\",\"latency_ms\":400}]}",
                         200));
    const char *args[] = {"import", NULL};
    char *log_path = NULL;
    struct itest_proc *p = e2e_dealsync_start(&e, args, &log_path);
    struct pages_wait w = {&e, 3};
    ck_assert_msg(itest_wait_for(pages_listed, &w, DEADLINE_MS), "the import never got halfway");
    ck_assert_int_eq(itest_proc_stop(p, SIGKILL, 5000), 128 + SIGKILL);
    long long pages = scalar(&e, "SELECT pages_done FROM import_run WHERE source = 'salesforce'");
    ck_assert_int_lt(pages, N / 50);
    ck_assert_int_eq(scalar(&e, "SELECT count(*) FROM import_run WHERE status = 'running'"), 1);
    cJSON_Delete(sb_json(&e, "DELETE", "/_sandbox/faults", NULL, 200));

    /* Started again: it continues from the saved cursor and imports the HubSpot side too. */
    char *out = NULL;
    const char *again[] = {"import", "--wait", NULL};
    int status = e2e_dealsync(&e, again, &out);
    ck_assert_msg(status == 0, "import exited %d: %s", status, out);
    ck_assert_msg(strstr(out, "salesforce: import 1 listed") != NULL, "%s", out);
    ck_assert_msg(e2e_wait_idle(&e, DEADLINE_MS), "dealsync never went quiet");
    assert_paired(&e, 2 * N);
    /* The continued import listed no page twice beyond the one in flight at the kill. */
    ck_assert_int_le(scalar(&e, "SELECT records_seen FROM import_run WHERE source = 'salesforce'"),
                     N + 50);
    ck_assert_int_eq(scalar(&e, "SELECT count(*) FROM sync_event WHERE event_type = 'import'"
                                " AND status = 'dead'"),
                     0);

    char *status_out = NULL;
    const char *st[] = {"import", "--status", NULL};
    ck_assert_int_eq(e2e_dealsync(&e, st, &status_out), 0);
    ck_assert_msg(strstr(status_out, "listed") != NULL, "%s", status_out);
    free(status_out);
    free(out);
    free(log_path);
    free(pipeline);
    free(stage);
    e2e_stop(&e);
}
END_TEST

START_TEST(import_is_refused_while_sync_deals_is_off)
{
    struct e2e e;
    e2e_start(&e, "import_off", NULL, lossy_sandbox, false);
    char *out = NULL;
    const char *args[] = {"import", NULL};
    ck_assert_int_eq(e2e_dealsync(&e, args, &out), 1);
    ck_assert_msg(strstr(out, "refused: the Sync deals switch is off") != NULL, "%s", out);
    ck_assert_int_eq(scalar(&e, "SELECT count(*) FROM import_run"), 0);
    free(out);
    e2e_stop(&e);
}
END_TEST

START_TEST(resync_and_requeue_say_what_they_did)
{
    struct e2e e;
    e2e_start(&e, "import_resync", NULL, lossy_sandbox, true);
    create_opportunities(&e, 1);
    cJSON *opps = live_opportunities(&e);
    const char *id = sbtest_str(cJSON_GetArrayItem(opps, 0), "Id");
    char *out = NULL;
    const char *args[] = {"resync", "--opportunity", id, NULL};
    ck_assert_int_eq(e2e_dealsync(&e, args, &out), 0);
    char *want = xasprintf("queued opportunity %s", id);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    ck_assert_msg(e2e_wait_idle(&e, DEADLINE_MS), "dealsync never went quiet");
    assert_paired(&e, 1);
    free(out);

    const char *unknown[] = {"requeue", "987654", NULL};
    ck_assert_int_eq(e2e_dealsync(&e, unknown, &out), 1);
    ck_assert_msg(strstr(out, "no event 987654") != NULL, "%s", out);
    free(out);
    free(want);
    cJSON_Delete(opps);
    e2e_stop(&e);
}
END_TEST

/* The deal of an opportunity (by the opportunity id property), or NULL. Caller deletes. */
static cJSON *deal_of(struct e2e *e, const char *opp_id)
{
    cJSON *deals = all_deals(e);
    cJSON *found = NULL;
    const cJSON *d;
    cJSON_ArrayForEach(d, deals)
    {
        const char *opp = sbtest_str(cJSON_GetObjectItemCaseSensitive(d, "properties"), OPP_FIELD);
        if (!found && opp && strcmp(opp, opp_id) == 0)
            found = cJSON_Duplicate(d, true);
    }
    cJSON_Delete(deals);
    return found;
}

struct field_wait {
    struct e2e *e;
    const char *path;
    const char *field;
    const char *want;
};

/* A field of a record read through the control API ("properties" of a HubSpot record). */
static bool field_is(void *arg)
{
    struct field_wait *w = arg;
    cJSON *o = NULL;
    if (e2e_sb(w->e, "GET", w->path, NULL, &o) != 200) {
        cJSON_Delete(o);
        return false;
    }
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(o, "properties");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(props ? props : o, w->field);
    char *text = cJSON_IsString(v)   ? xstrdup(v->valuestring)
                 : cJSON_IsNumber(v) ? xasprintf("%g", v->valuedouble)
                 : cJSON_IsBool(v)   ? xstrdup(cJSON_IsTrue(v) ? "true" : "false")
                                     : xstrdup("");
    bool is = strcmp(text, w->want) == 0;
    free(text);
    cJSON_Delete(o);
    return is;
}

struct opp_wait {
    struct e2e *e;
    const char *opp_id;
};

static bool has_deal(void *arg)
{
    struct opp_wait *w = arg;
    cJSON *d = deal_of(w->e, w->opp_id);
    bool has = d != NULL;
    cJSON_Delete(d);
    return has;
}

static bool swept_once(void *arg)
{
    struct e2e *e = arg;
    return scalar(e,
                  "SELECT count(*) FROM poll_watermark WHERE name IN"
                  " ('reconcile_salesforce', 'reconcile_hubspot') AND last_run_at IS NOT NULL") ==
           2;
}

/* Creates an opportunity as a user and waits until it has its deal; *deal_path receives the
 * deal's control-API path (caller frees). Returns the opportunity (caller deletes). */
static cJSON *opportunity_with_deal(struct e2e *e, const char *name, char **deal_path)
{
    char *body = xasprintf("{\"Name\":\"%s\",\"StageName\":\"Prospecting\","
                           "\"CloseDate\":\"2027-05-01\",\"Amount\":100}",
                           name);
    cJSON *opp = sb_json(e, "POST", "/_sandbox/salesforce/records/Opportunity", body, 201);
    free(body);
    struct opp_wait ow = {e, sbtest_str(opp, "Id")};
    ck_assert_msg(itest_wait_for(has_deal, &ow, DEADLINE_MS), "the opportunity never got a deal");
    cJSON *deal = deal_of(e, sbtest_str(opp, "Id"));
    *deal_path = xasprintf("/_sandbox/hubspot/objects/deals/%s", sbtest_str(deal, "id"));
    cJSON_Delete(deal);
    return opp;
}

START_TEST(lost_changes_on_both_sides_arrive_by_reconciliation)
{
    struct e2e e;
    const char *env[] = {"RECONCILE_INTERVAL_SECONDS=2", NULL};
    e2e_start(&e, "import_reconcile", env, lossy_sandbox, true);
    ck_assert_msg(itest_wait_for(swept_once, &e, DEADLINE_MS), "no sweep ran");

    /* A new opportunity whose outbound message is lost. */
    char *deal_path = NULL;
    cJSON *opp = opportunity_with_deal(&e, "Lost message", &deal_path);
    const char *opp_id = sbtest_str(opp, "Id");
    char *opp_path = xasprintf("/_sandbox/salesforce/records/Opportunity/%s", opp_id);

    /* A HubSpot edit whose webhook is lost reaches Salesforce. */
    cJSON_Delete(sb_json(&e, "PATCH", deal_path, "{\"properties\":{\"amount\":\"250\"}}", 200));
    struct field_wait fw = {&e, opp_path, "Amount", "250"};
    ck_assert_msg(itest_wait_for(field_is, &fw, DEADLINE_MS), "the deal's change never arrived");

    /* A Salesforce edit whose outbound message is lost reaches HubSpot. */
    cJSON_Delete(sb_json(&e, "PATCH", opp_path, "{\"Name\":\"Renamed in Salesforce\"}", 200));
    struct field_wait fw2 = {&e, deal_path, "dealname", "Renamed in Salesforce"};
    ck_assert_msg(itest_wait_for(field_is, &fw2, DEADLINE_MS),
                  "the opportunity's change never arrived");
    ck_assert_int_eq(scalar(&e, "SELECT count(*) FROM sync_event WHERE event_type = 'reconcile'"
                                " AND priority = 1") >= 3,
                     1);
    free(opp_path);
    free(deal_path);
    cJSON_Delete(opp);
    e2e_stop(&e);
}
END_TEST

/* A HubSpot sweep started more than two intervals (2 s) after the last link was saved: the one
 * before it, which started after the save, has finished. */
static const char swept_after_sync[] =
    "SELECT count(*) FROM poll_watermark w WHERE w.name = 'reconcile_hubspot'"
    " AND w.last_run_at > (SELECT max(synced_at) FROM record_link) + interval '4.5 seconds'";

START_TEST(a_hubspot_sweep_does_not_read_dealsyncs_own_deals_again)
{
    struct e2e e;
    const char *env[] = {"RECONCILE_INTERVAL_SECONDS=2", NULL};
    e2e_start(&e, "import_own_deals", env, lossy_sandbox, true);
    ck_assert_msg(itest_wait_for(swept_once, &e, DEADLINE_MS), "no sweep ran");
    char *deal_path = NULL;
    cJSON *opp = opportunity_with_deal(&e, "Made by dealsync", &deal_path);
    ck_assert_msg(itest_wait_sql(e.svc.db, swept_after_sync, DEADLINE_MS),
                  "no hubspot sweep ran after");
    /* The sweeps found the new deal (changed since their watermark), and dealsync knew it up to
     * its own write: nothing to read again. */
    ck_assert_int_eq(scalar(&e, "SELECT count(*) FROM sync_event WHERE source = 'hubspot'"
                                " AND event_type = 'reconcile'"),
                     0);
    free(deal_path);
    cJSON_Delete(opp);
    e2e_stop(&e);
}
END_TEST

START_TEST(the_webhooks_of_dealsyncs_own_deal_cost_no_api_call)
{
    struct e2e e;
    e2e_start(&e, "import_echo", NULL, NULL, true);
    cJSON *account = sb_json(&e, "POST", "/_sandbox/salesforce/records/Account",
                             "{\"Name\":\"Echo Inc\",\"Website\":\"https://echo.test\"}", 201);
    char *body = xasprintf("{\"LastName\":\"Echo\",\"Email\":\"echo@echo.test\","
                           "\"AccountId\":\"%s\"}",
                           sbtest_str(account, "Id"));
    cJSON *contact = sb_json(&e, "POST", "/_sandbox/salesforce/records/Contact", body, 201);
    free(body);
    /* Made while deliveries are lost, then imported: the contact role is there when the
     * opportunity is first synced. */
    cJSON_Delete(sb_json(&e, "PUT", "/_sandbox/settings", "{\"delivery.drop_rate\": 1}", 200));
    body = xasprintf("{\"Name\":\"Echoed back\",\"StageName\":\"Prospecting\","
                     "\"CloseDate\":\"2027-05-01\",\"Amount\":100,\"AccountId\":\"%s\"}",
                     sbtest_str(account, "Id"));
    cJSON *opp = sb_json(&e, "POST", "/_sandbox/salesforce/records/Opportunity", body, 201);
    free(body);
    body = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\",\"IsPrimary\":true}",
                     sbtest_str(opp, "Id"), sbtest_str(contact, "Id"));
    cJSON_Delete(
        sb_json(&e, "POST", "/_sandbox/salesforce/records/OpportunityContactRole", body, 201));
    free(body);
    cJSON_Delete(sb_json(&e, "PUT", "/_sandbox/settings", "{\"delivery.drop_rate\": 0}", 200));
    const char *import[] = {"import", "salesforce", NULL};
    ck_assert_int_eq(e2e_dealsync(&e, import, NULL), 0);
    struct opp_wait ow = {&e, sbtest_str(opp, "Id")};
    ck_assert_msg(itest_wait_for(has_deal, &ow, DEADLINE_MS), "the opportunity never got a deal");
    cJSON *deal = deal_of(&e, sbtest_str(opp, "Id"));
    char *deal_path = xasprintf("/_sandbox/hubspot/objects/deals/%s", sbtest_str(deal, "id"));
    cJSON_Delete(deal);
    const char *deal_id = strrchr(deal_path, '/') + 1;
    /* The deal's creation, property and association webhooks (company and contact) all arrive
     * and are finished. */
    char *sql = xasprintf("SELECT count(*) FROM sync_event WHERE source = 'hubspot'"
                          " AND record_id = '%s' AND event_type = 'deal.associationChange'"
                          " AND status = 'done' HAVING count(*) >= 2"
                          " AND NOT EXISTS (SELECT 1 FROM sync_event WHERE source = 'hubspot'"
                          "  AND record_id = '%s' AND status IN ('pending', 'running'))",
                          deal_id, deal_id);
    ck_assert_msg(itest_wait_sql(e.svc.db, sql, DEADLINE_MS), "the webhooks never came back");
    free(sql);
    /* Each was recognised from record_link alone: the deal was never read for them. */
    sql = xasprintf("SELECT count(*) FROM sync_outcome WHERE source = 'hubspot'"
                    " AND record_id = '%s' AND detail NOT LIKE 'only dealsync''s own writes%%'",
                    deal_id);
    ck_assert_int_eq(scalar(&e, sql), 0);
    free(sql);
    sql = xasprintf("SELECT count(*) FROM sync_outcome WHERE source = 'hubspot'"
                    " AND record_id = '%s'",
                    deal_id);
    ck_assert_int_ge(scalar(&e, sql), 1);
    free(sql);
    /* A user's edit right after is not taken for an echo. */
    cJSON_Delete(sb_json(&e, "PATCH", deal_path, "{\"properties\":{\"amount\":\"777\"}}", 200));
    char *opp_path =
        xasprintf("/_sandbox/salesforce/records/Opportunity/%s", sbtest_str(opp, "Id"));
    struct field_wait fw = {&e, opp_path, "Amount", "777"};
    ck_assert_msg(itest_wait_for(field_is, &fw, DEADLINE_MS), "the user's edit never arrived");
    free(opp_path);
    free(deal_path);
    cJSON_Delete(opp);
    cJSON_Delete(contact);
    cJSON_Delete(account);
    e2e_stop(&e);
}
END_TEST

START_TEST(lost_deal_deletion_and_move_out_of_the_pipeline_are_swept)
{
    struct e2e e;
    const char *env[] = {"RECONCILE_INTERVAL_SECONDS=2", NULL};
    e2e_start(&e, "import_sweep_deals", env, lossy_sandbox, true);
    ck_assert_msg(itest_wait_for(swept_once, &e, DEADLINE_MS), "no sweep ran");
    char *deleted_path = NULL, *moved_path = NULL;
    cJSON *opp1 = opportunity_with_deal(&e, "Deal deleted in HubSpot", &deleted_path);
    cJSON *opp2 = opportunity_with_deal(&e, "Deal moved to another pipeline", &moved_path);
    const char *deleted_id = strrchr(deleted_path, '/') + 1;
    const char *moved_id = strrchr(moved_path, '/') + 1;

    /* A user deletes one deal and moves the other to a pipeline dealsync does not sync; both
     * webhooks are lost. */
    char *api = xasprintf("/crm/v3/objects/deals/%s", deleted_id);
    cJSON_Delete(sb_json(&e, "DELETE", api, NULL, 204));
    free(api);
    cJSON *partners =
        sb_json(&e, "POST", "/crm/v3/pipelines/deals",
                "{\"label\":\"Partners\",\"displayOrder\":2,\"stages\":[{\"label\":\"Open\","
                "\"displayOrder\":0,\"metadata\":{\"probability\":\"0.5\"}}]}",
                201);
    const char *stage =
        sbtest_str(cJSON_GetArrayItem(cJSON_GetObjectItem(partners, "stages"), 0), "id");
    char *move = xasprintf("{\"properties\":{\"pipeline\":\"%s\",\"dealstage\":\"%s\"}}",
                           sbtest_str(partners, "id"), stage);
    api = xasprintf("/crm/v3/objects/deals/%s", moved_id);
    cJSON_Delete(sb_json(&e, "PATCH", api, move, 200));
    free(api);

    /* The deleted deal is forgotten as its deal.deletion webhook would have made it: link gone,
     * tombstone kept (the opportunity is not made a second deal from an echo). */
    char *sql = xasprintf("SELECT count(*) FROM deleted_deal WHERE hs_deal_id = '%s'"
                          " AND NOT EXISTS (SELECT 1 FROM record_link WHERE hs_id = '%s')",
                          deleted_id, deleted_id);
    ck_assert_msg(itest_wait_sql(e.svc.db, sql, DEADLINE_MS), "the deletion was never swept");
    free(sql);
    /* The moved deal reached the deal handler, which leaves its opportunity as it is. */
    sql = xasprintf("SELECT count(*) FROM sync_outcome WHERE source = 'hubspot'"
                    " AND record_id = '%s' AND detail LIKE '%%which is not synced%%'",
                    moved_id);
    ck_assert_msg(itest_wait_sql(e.svc.db, sql, DEADLINE_MS), "the move was never swept");
    free(sql);
    cJSON *left = sb_json(&e, "GET", "/_sandbox/salesforce/records/Opportunity", NULL, 200);
    int live = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, left) live += !cJSON_IsTrue(cJSON_GetObjectItem(o, "IsDeleted"));
    ck_assert_int_eq(live, 2);
    cJSON_Delete(left);
    free(move);
    cJSON_Delete(partners);
    free(deleted_path);
    free(moved_path);
    cJSON_Delete(opp1);
    cJSON_Delete(opp2);
    e2e_stop(&e);
}
END_TEST

static bool is_archived(void *arg)
{
    struct field_wait *w = arg;
    cJSON *o = NULL;
    int status = e2e_sb(w->e, "GET", w->path, NULL, &o);
    bool is = status == 404 ||
              (status == 200 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "archived")));
    cJSON_Delete(o);
    return is;
}

/* The delete poller's first window is done: it has moved its watermark past its start. */
static bool first_delete_poll_done(void *arg)
{
    struct e2e *e = arg;
    return scalar(
               e,
               "SELECT count(*) FROM poll_watermark WHERE name ="
               " 'salesforce_opportunity_deleted' AND watermark > now() - interval '5 minutes'") ==
           1;
}

START_TEST(a_delete_older_than_getdeleted_window_still_deletes_the_deal)
{
    struct e2e e;
    /* The delete poller runs once at start, then not for an hour unless the test says so. */
    const char *env[] = {"DELETE_POLL_INTERVAL_SECONDS=3600", NULL};
    e2e_start(&e, "import_gap", env, NULL, true);
    char *deal_path = NULL;
    cJSON *opp = opportunity_with_deal(&e, "Deleted during an outage", &deal_path);
    const char *opp_id = sbtest_str(opp, "Id");
    ck_assert_msg(itest_wait_for(first_delete_poll_done, &e, DEADLINE_MS),
                  "the delete poller never ran");

    /* dealsync was away (its delete poller did not run) while the opportunity was deleted, and
     * comes back 16 days later: getDeleted keeps 15 days. */
    char *path = xasprintf("/_sandbox/salesforce/records/Opportunity/%s", opp_id);
    cJSON_Delete(sb_json(&e, "DELETE", path, NULL, 200));
    char *backdate = xasprintf("%s/backdate", path);
    cJSON_Delete(sb_json(&e, "POST", backdate, "{\"minutes\":23040}", 200));
    itest_db_exec(e.svc.db, "UPDATE poll_watermark SET last_run_at = NULL,"
                            " watermark = now() - interval '16 days'"
                            " WHERE name = 'salesforce_opportunity_deleted'");
    struct field_wait fw = {&e, deal_path, NULL, NULL};
    ck_assert_msg(itest_wait_for(is_archived, &fw, DEADLINE_MS), "the deal was never deleted");
    /* The poller moved on instead of asking for the refused window again. */
    ck_assert_msg(itest_wait_for(first_delete_poll_done, &e, DEADLINE_MS),
                  "the delete poller's watermark stayed behind");
    free(backdate);
    free(path);
    free(deal_path);
    cJSON_Delete(opp);
    e2e_stop(&e);
}
END_TEST

START_TEST(a_deal_synced_before_its_link_keeps_the_opportunity_owner)
{
    struct e2e e;
    const char *env[] = {"API_TIMEOUT_MS=2000", NULL};
    e2e_start(&e, "import_owner", env, NULL, true);
    /* The opportunity's deal is written, then the slice fails (the create's answer is lost;
     * this was a company that could not be made, when companies came after the deal write)
     * and is retried while the deal's webhooks come back. The deal has no owner (the
     * Salesforce owner has no HubSpot owner). In a 10,000-record import such deals were synced
     * back before their link was saved and blanked 995 opportunities' owners; the link is now
     * saved right after the deal write, and a blank owner is never written to Salesforce (which
     * refuses it: nothing may end dead either). */
    cJSON_Delete(sb_json(&e, "PUT", "/_sandbox/faults",
                         "{\"rules\":[{\"path\":\"/crm/v3/objects/deals/batch/create\","
                         "\"action\":\"timeout_after_write\",\"hold_ms\":3000,"
                         "\"count\":1}]}",
                         200));
    cJSON *account = sb_json(&e, "POST", "/_sandbox/salesforce/records/Account",
                             "{\"Name\":\"Owned Inc\"}", 201);
    char *body = xasprintf("{\"Name\":\"Owned\",\"StageName\":\"Prospecting\","
                           "\"CloseDate\":\"2027-05-01\",\"AccountId\":\"%s\"}",
                           sbtest_str(account, "Id"));
    cJSON *opp = sb_json(&e, "POST", "/_sandbox/salesforce/records/Opportunity", body, 201);
    free(body);
    const char *owner = sbtest_str(opp, "OwnerId");
    ck_assert(owner && *owner);
    struct opp_wait ow = {&e, sbtest_str(opp, "Id")};
    ck_assert_msg(itest_wait_for(has_deal, &ow, DEADLINE_MS), "the opportunity never got a deal");
    char *sql = xasprintf("SELECT count(*) FROM record_link WHERE kind = 'opportunity'"
                          " AND sf_id = '%s' AND NOT EXISTS (SELECT 1 FROM sync_event"
                          "  WHERE status IN ('pending', 'running'))",
                          sbtest_str(opp, "Id"));
    ck_assert_msg(itest_wait_sql(e.svc.db, sql, DEADLINE_MS), "the pair never settled");
    free(sql);
    char *path = xasprintf("/_sandbox/salesforce/records/Opportunity/%s", sbtest_str(opp, "Id"));
    struct field_wait fw = {&e, path, "OwnerId", owner};
    ck_assert_msg(field_is(&fw), "the opportunity lost its owner");
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    ck_assert_int_eq(scalar(&e, "SELECT count(*) FROM record_link WHERE kind = 'opportunity'"), 1);
    free(path);
    cJSON_Delete(opp);
    cJSON_Delete(account);
    e2e_stop(&e);
}
END_TEST

START_TEST(a_transiently_dead_record_is_retried_automatically)
{
    struct e2e e;
    const char *env[] = {"QUEUE_MAX_ATTEMPTS=1", "QUEUE_RETRY_WINDOW_HOURS=0",
                         "DEAD_RETRY_INTERVAL_SECONDS=1", NULL};
    e2e_start(&e, "import_dead_retry", env, NULL, true);
    /* HubSpot answers 503 to the first deal creation: with one attempt allowed, it dies. */
    cJSON_Delete(sb_json(&e, "PUT", "/_sandbox/faults",
                         "{\"rules\":[{\"path\":\"/crm/v3/objects/deals/batch/create\","
                         "\"status\":503,\"count\":1}]}",
                         200));
    cJSON *opp = sb_json(&e, "POST", "/_sandbox/salesforce/records/Opportunity",
                         "{\"Name\":\"Retried later\",\"StageName\":\"Prospecting\","
                         "\"CloseDate\":\"2027-05-01\"}",
                         201);
    struct opp_wait ow = {&e, sbtest_str(opp, "Id")};
    ck_assert_msg(itest_wait_for(has_deal, &ow, DEADLINE_MS), "the dead record was never retried");
    ck_assert_int_ge(scalar(&e, "SELECT count(*) FROM sync_outcome WHERE outcome = 'dead'"), 1);
    cJSON_Delete(opp);
    e2e_stop(&e);
}
END_TEST

Suite *suite_e2e_import(void);

Suite *suite_e2e_import(void)
{
    Suite *s = suite_create("e2e_import");
    TCase *tc = tcase_create("import");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, import_is_refused_while_sync_deals_is_off);
    tcase_add_test(tc, resync_and_requeue_say_what_they_did);
    tcase_add_test(tc, import_killed_halfway_continues_and_syncs_everything_once);
    tcase_add_test(tc, lost_changes_on_both_sides_arrive_by_reconciliation);
    tcase_add_test(tc, a_hubspot_sweep_does_not_read_dealsyncs_own_deals_again);
    tcase_add_test(tc, the_webhooks_of_dealsyncs_own_deal_cost_no_api_call);
    tcase_add_test(tc, lost_deal_deletion_and_move_out_of_the_pipeline_are_swept);
    tcase_add_test(tc, a_delete_older_than_getdeleted_window_still_deletes_the_deal);
    tcase_add_test(tc, a_transiently_dead_record_is_retried_automatically);
    tcase_add_test(tc, a_deal_synced_before_its_link_keeps_the_opportunity_owner);
    suite_add_tcase(s, tc);
    return s;
}
