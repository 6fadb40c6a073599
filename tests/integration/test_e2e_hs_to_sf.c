/* test_e2e_hs_to_sf.c - HubSpot to Salesforce end to end (issue 5): changes made in the
 * sandbox's HubSpot as a user reach dealsync as the sandbox's own signed webhooks, and the
 * assertions read what a user would check: the records in the sandbox's Salesforce and HubSpot
 * and the outcome dealsync recorded. Until the Salesforce-to-HubSpot pipeline code is merged,
 * each test seeds the pipeline and stage map itself (a HubSpot pipeline created through the
 * API, and its pipeline_map/stage_map rows). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "e2e.h"
#include "itest.h"
#include "util.h"

#define API "/services/data/v60.0"
#define DEADLINE_MS 45000

static const char *const stages[] = {"Prospecting", "Qualification", "Closed Won", "Closed Lost"};
static const char *const probabilities[] = {"0.1", "0.2", "1.0", "0.0"};
#define STAGE_COUNT 4

struct h2s {
    struct e2e e;
    char *record_type_id;
    char *pipeline_id;
    char *stage_ids[STAGE_COUNT];
};

/* dealsync's defaults: both directions run, as in production. */
static const char *const default_env[] = {NULL};

/* ---- Sandbox helpers --------------------------------------------------------------------- */

static cJSON *sb_json(struct h2s *t, const char *method, const char *path, const char *body,
                      int want)
{
    cJSON *json = NULL;
    int status = e2e_sb(&t->e, method, path, body, &json);
    ck_assert_msg(status == want, "%s %s: %d, wanted %d", method, path, status, want);
    return json;
}

static void sb_do(struct h2s *t, const char *method, const char *path, const char *body, int want)
{
    cJSON_Delete(sb_json(t, method, path, body, want));
}

/* The Salesforce records of a type, through the control API (not counted as API calls). */
static cJSON *sf_records(struct h2s *t, const char *type)
{
    char *path = xasprintf("/_sandbox/salesforce/records/%s", type);
    cJSON *list = sb_json(t, "GET", path, NULL, 200);
    free(path);
    return list;
}

/* The live opportunities carrying deal_id in the deal id field: how many, and a copy of one. */
static int opportunities_of(struct h2s *t, const char *deal_id, cJSON **one)
{
    cJSON *list = sf_records(t, "Opportunity");
    const cJSON *o;
    int n = 0;
    if (one)
        *one = NULL;
    cJSON_ArrayForEach(o, list)
    {
        const cJSON *del = cJSON_GetObjectItemCaseSensitive(o, "IsDeleted");
        if (cJSON_IsTrue(del) || strcmp(sbtest_str(o, "HubSpot_Deal_Id__c"), deal_id) != 0)
            continue;
        n++;
        if (one && !*one)
            *one = cJSON_Duplicate(o, true);
    }
    cJSON_Delete(list);
    return n;
}

static cJSON *opportunity_of(struct h2s *t, const char *deal_id)
{
    cJSON *one = NULL;
    ck_assert_int_eq(opportunities_of(t, deal_id, &one), 1);
    return one;
}

static int roles_of(struct h2s *t, const char *opp_id, const char *contact_id)
{
    cJSON *list = sf_records(t, "OpportunityContactRole");
    const cJSON *r;
    int n = 0;
    cJSON_ArrayForEach(r, list)
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "IsDeleted")) ||
            strcmp(sbtest_str(r, "OpportunityId"), opp_id) != 0)
            continue;
        if (!contact_id || strcmp(sbtest_str(r, "ContactId"), contact_id) == 0)
            n++;
    }
    cJSON_Delete(list);
    return n;
}

static char *sf_id_where(struct h2s *t, const char *type, const char *field, const char *value)
{
    cJSON *list = sf_records(t, type);
    const cJSON *r;
    char *id = NULL;
    cJSON_ArrayForEach(r, list)
    {
        if (!id && strcmp(sbtest_str(r, field), value) == 0 &&
            !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "IsDeleted")))
            id = xstrdup(sbtest_str(r, "Id"));
    }
    cJSON_Delete(list);
    ck_assert_msg(id != NULL, "no %s with %s = %s", type, field, value);
    return id;
}

static cJSON *hs_object(struct h2s *t, const char *type, const char *id)
{
    char *path = xasprintf("/_sandbox/hubspot/objects/%s/%s", type, id);
    cJSON *o = sb_json(t, "GET", path, NULL, 200);
    free(path);
    return o;
}

static const char *prop(const cJSON *o, const char *name)
{
    return sbtest_str(cJSON_GetObjectItemCaseSensitive(o, "properties"), name);
}

/* Creates a HubSpot record as a user; returns its id (caller frees). */
static char *hs_create(struct h2s *t, const char *type, const char *props_json)
{
    char *path = xasprintf("/_sandbox/hubspot/objects/%s", type);
    char *body = xasprintf("{\"properties\":%s}", props_json);
    cJSON *o = sb_json(t, "POST", path, body, 201);
    char *id = xstrdup(sbtest_str(o, "id"));
    cJSON_Delete(o);
    free(body);
    free(path);
    return id;
}

static void hs_update(struct h2s *t, const char *type, const char *id, const char *props_json)
{
    char *path = xasprintf("/_sandbox/hubspot/objects/%s/%s", type, id);
    char *body = xasprintf("{\"properties\":%s}", props_json);
    sb_do(t, "PATCH", path, body, 200);
    free(body);
    free(path);
}

static void hs_associate(struct h2s *t, const char *method, const char *deal_id,
                         const char *to_type, const char *to_id, int type_id)
{
    e2e_hs_associate(&t->e, method, deal_id, to_type, to_id, type_id);
}

static void wait_idle(struct h2s *t)
{
    ck_assert_msg(e2e_wait_idle(&t->e, DEADLINE_MS), "dealsync and the sandbox never went quiet");
}

/* The newest outcome detail of the deal (caller frees). */
static char *detail_of(struct h2s *t, const char *deal_id)
{
    char *d = e2e_last_detail(&t->e, deal_id);
    ck_assert_msg(d != NULL, "no outcome for deal %s", deal_id);
    return d;
}

static void assert_detail_has(struct h2s *t, const char *deal_id, const char *needle)
{
    char *d = detail_of(t, deal_id);
    ck_assert_msg(strstr(d, needle) != NULL, "outcome of deal %s is \"%s\", wanted \"%s\"", deal_id,
                  d, needle);
    free(d);
}

/* Number of the deal's events that were dead-lettered. */
static long long dead_events(struct h2s *t, const char *deal_id)
{
    char *sql = xasprintf("SELECT count(*) FROM sync_event WHERE source = 'hubspot' AND"
                          " record_id = '%s' AND status = 'dead'",
                          deal_id);
    long long n = itest_db_scalar(t->e.svc.db, sql);
    free(sql);
    return n;
}

/* ---- Set-up ------------------------------------------------------------------------------ */

/* A HubSpot pipeline for the New_Business record type and its pipeline_map/stage_map rows,
 * as the Salesforce-to-HubSpot set-up would create them. */
static void seed_pipeline(struct h2s *t)
{
    cJSON *rts = sf_records(t, "RecordType");
    const cJSON *r;
    cJSON_ArrayForEach(r, rts) if (strcmp(sbtest_str(r, "DeveloperName"), "New_Business") == 0)
        t->record_type_id = xstrdup(sbtest_str(r, "Id"));
    cJSON_Delete(rts);
    ck_assert_ptr_nonnull(t->record_type_id);

    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "{\"label\":\"Salesforce - %s\",\"displayOrder\":1,\"stages\":[",
               t->record_type_id);
    for (int i = 0; i < STAGE_COUNT; i++)
        buf_printf(&b,
                   "%s{\"label\":\"%s\",\"displayOrder\":%d,\"metadata\":{\"probability\":"
                   "\"%s\"%s}}",
                   i ? "," : "", stages[i], i, probabilities[i],
                   i >= 2 ? ",\"isClosed\":\"true\"" : "");
    buf_append_str(&b, "]}");
    cJSON *p = sb_json(t, "POST", "/crm/v3/pipelines/deals", b.data, 201);
    buf_clear(&b);
    t->pipeline_id = xstrdup(sbtest_str(p, "id"));
    char *sql = xasprintf("INSERT INTO pipeline_map (record_type_id, hs_pipeline_id, label)"
                          " VALUES ('%s', '%s', 'Salesforce - %s')",
                          t->record_type_id, t->pipeline_id, t->record_type_id);
    itest_db_exec(t->e.svc.db, sql);
    free(sql);
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(p, "stages"))
    {
        for (int i = 0; i < STAGE_COUNT; i++) {
            if (strcmp(sbtest_str(s, "label"), stages[i]) != 0)
                continue;
            t->stage_ids[i] = xstrdup(sbtest_str(s, "id"));
            sql = xasprintf("INSERT INTO stage_map (record_type_id, sf_stage_name, hs_stage_id)"
                            " VALUES ('%s', '%s', '%s')",
                            t->record_type_id, stages[i], t->stage_ids[i]);
            itest_db_exec(t->e.svc.db, sql);
            free(sql);
        }
    }
    cJSON_Delete(p);
    for (int i = 0; i < STAGE_COUNT; i++)
        ck_assert_ptr_nonnull(t->stage_ids[i]);
}

static void start_with(struct h2s *t, const char *name, const char *const *extra_env,
                       const char *const *sandbox_args)
{
    memset(t, 0, sizeof(*t));
    const char *env[16];
    size_t k = 0;
    for (const char *const *x = default_env; *x; x++)
        env[k++] = *x;
    for (const char *const *x = extra_env; x && *x && k < 15; x++)
        env[k++] = *x;
    env[k] = NULL;
    e2e_start(&t->e, name, env, sandbox_args, true);
    seed_pipeline(t);
}

static void start(struct h2s *t, const char *name, const char *const *extra_env)
{
    start_with(t, name, extra_env, NULL);
}

static void stop(struct h2s *t)
{
    e2e_stop(&t->e);
    free(t->record_type_id);
    free(t->pipeline_id);
    for (int i = 0; i < STAGE_COUNT; i++)
        free(t->stage_ids[i]);
}

/* A deal in the synced pipeline, created as a user; waits until dealsync is done with it. */
static char *synced_deal(struct h2s *t, const char *name, const char *amount)
{
    char *props = xasprintf("{\"dealname\":\"%s\",\"pipeline\":\"%s\",\"dealstage\":\"%s\","
                            "\"amount\":\"%s\",\"closedate\":\"2026-12-31\"}",
                            name, t->pipeline_id, t->stage_ids[0], amount);
    char *id = hs_create(t, "deals", props);
    free(props);
    wait_idle(t);
    return id;
}

/* Dealsync wrote to the deal itself at most once (the opportunity id), so nothing bounced.
 * dealsync's contact-role poll may queue a look at the opportunity (for the roles it wrote
 * itself) at any moment, also after the test saw quiet: that is handled first, so that it is
 * counted too, instead of being taken for a bounce still in progress. A bounce that keeps going
 * never goes quiet. */
static void assert_no_bounce(struct h2s *t, long long mark)
{
    wait_idle(t);
    int deal_writes =
        e2e_count(&t->e, mark, "hubspot", "in", "POST", "/crm/v3/objects/deals/batch/update") +
        e2e_count(&t->e, mark, "hubspot", "in", "PATCH", "/crm/v3/objects/deals/");
    ck_assert_int_le(deal_writes, 1);
}

/* ---- Scenarios --------------------------------------------------------------------------- */

START_TEST(deal_in_synced_pipeline_becomes_opportunity)
{
    struct h2s t;
    start(&t, "h2s_create", NULL);
    long long mark = e2e_mark(&t.e);
    /* The owner: a HubSpot owner whose e-mail is Salesforce user bob's. */
    cJSON *owner = sb_json(&t, "POST", "/_sandbox/hubspot/owners",
                           "{\"email\":\"bob@dealsync.test\",\"firstName\":\"Bob\"}", 201);
    char *owner_id = xstrdup(sbtest_str(owner, "id"));
    cJSON_Delete(owner);
    char *bob = sf_id_where(&t, "User", "Email", "bob@dealsync.test");
    char *jane = sf_id_where(&t, "Contact", "Email", "jane@acme.test");
    char *company = hs_create(&t, "companies",
                              "{\"name\":\"Initech\",\"domain\":\"initech.test\","
                              "\"city\":\"Austin\"}");
    char *c_jane = hs_create(&t, "contacts",
                             "{\"email\":\"jane@acme.test\","
                             "\"firstname\":\"Jane\",\"lastname\":\"Doe\"}");
    char *c_pat = hs_create(&t, "contacts",
                            "{\"email\":\"pat@initech.test\","
                            "\"firstname\":\"Pat\",\"lastname\":\"Lee\"}");
    char *props = xasprintf("{\"dealname\":\"Initech expansion\",\"pipeline\":\"%s\","
                            "\"dealstage\":\"%s\",\"amount\":\"5000\",\"closedate\":"
                            "\"2026-12-31\",\"hubspot_owner_id\":\"%s\"}",
                            t.pipeline_id, t.stage_ids[1], owner_id);
    char *deal = hs_create(&t, "deals", props);
    hs_associate(&t, "PUT", deal, "companies", company, 5);
    hs_associate(&t, "PUT", deal, "contacts", c_jane, 3);
    hs_associate(&t, "PUT", deal, "contacts", c_pat, 3);
    wait_idle(&t);

    cJSON *opp = opportunity_of(&t, deal);
    ck_assert_str_eq(sbtest_str(opp, "Name"), "Initech expansion");
    ck_assert_str_eq(sbtest_str(opp, "RecordTypeId"), t.record_type_id);
    ck_assert_str_eq(sbtest_str(opp, "StageName"), "Qualification");
    ck_assert_str_eq(sbtest_str(opp, "CloseDate"), "2026-12-31");
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(opp, "Amount")->valuedouble, 5000);
    ck_assert_str_eq(sbtest_str(opp, "OwnerId"), bob);
    /* The account was created from the company and its id stored on the company. */
    char *account = sf_id_where(&t, "Account", "Name", "Initech");
    ck_assert_str_eq(sbtest_str(opp, "AccountId"), account);
    cJSON *co = hs_object(&t, "companies", company);
    ck_assert_str_eq(prop(co, "salesforceaccountid"), account);
    /* Jane matched by e-mail (no second Jane), Pat created, both with roles. */
    const char *opp_id = sbtest_str(opp, "Id");
    ck_assert_int_eq(roles_of(&t, opp_id, NULL), 2);
    ck_assert_int_eq(roles_of(&t, opp_id, jane), 1);
    char *pat = sf_id_where(&t, "Contact", "Email", "pat@initech.test");
    ck_assert_int_eq(roles_of(&t, opp_id, pat), 1);
    cJSON *hs_pat = hs_object(&t, "contacts", c_pat);
    ck_assert_str_eq(prop(hs_pat, "salesforcecontactid"), pat);
    cJSON *hs_deal = hs_object(&t, "deals", deal);
    ck_assert_str_eq(prop(hs_deal, "dealsync_salesforce_opportunity_id"), opp_id);
    ck_assert_str_eq(prop(hs_deal, "amount"), "5000");
    assert_no_bounce(&t, mark);
    e2e_report_calls(&t.e, "h2s: deal created with company, 2 contacts, owner", mark);

    cJSON_Delete(hs_deal);
    cJSON_Delete(hs_pat);
    cJSON_Delete(co);
    cJSON_Delete(opp);
    free(pat);
    free(account);
    free(deal);
    free(props);
    free(c_pat);
    free(c_jane);
    free(company);
    free(jane);
    free(bob);
    free(owner_id);
    stop(&t);
}
END_TEST

START_TEST(deal_in_other_pipeline_is_not_synced)
{
    struct h2s t;
    start(&t, "h2s_other", NULL);
    long long mark = e2e_mark(&t.e);
    char *deal = hs_create(&t, "deals",
                           "{\"dealname\":\"Elsewhere\",\"pipeline\":\"default\","
                           "\"dealstage\":\"appointmentscheduled\"}");
    wait_idle(&t);
    ck_assert_int_eq(opportunities_of(&t, deal, NULL), 0);
    assert_detail_has(&t, deal, "not synced to salesforce");
    /* Nothing written to Salesforce (the pollers' own reads may fall in this window). */
    ck_assert_int_eq(e2e_count(&t.e, mark, "salesforce", "in", "POST", "/services/data") +
                         e2e_count(&t.e, mark, "salesforce", "in", "PATCH", "/services/data") +
                         e2e_count(&t.e, mark, "salesforce", "in", "DELETE", "/services/data"),
                     0);
    e2e_report_calls(&t.e, "h2s: deal in an unsynced pipeline", mark);
    free(deal);
    stop(&t);
}
END_TEST

START_TEST(deal_moved_out_stops_syncing)
{
    struct h2s t;
    start(&t, "h2s_moved", NULL);
    char *deal = synced_deal(&t, "Moving deal", "5000");
    cJSON *before = opportunity_of(&t, deal);
    long long mark = e2e_mark(&t.e);
    hs_update(&t, "deals", deal,
              "{\"pipeline\":\"default\",\"dealstage\":\"appointmentscheduled\","
              "\"amount\":\"9999\",\"dealname\":\"Moved away\"}");
    wait_idle(&t);
    cJSON *after = opportunity_of(&t, deal);
    ck_assert_str_eq(sbtest_str(after, "Name"), "Moving deal");
    ck_assert_str_eq(sbtest_str(after, "StageName"), "Prospecting");
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(after, "Amount")->valuedouble, 5000);
    ck_assert_str_eq(sbtest_str(after, "LastModifiedDate"), sbtest_str(before, "LastModifiedDate"));
    assert_detail_has(&t, deal, "its opportunity is left as it is");
    e2e_report_calls(&t.e, "h2s: deal moved out of the synced pipeline", mark);
    cJSON_Delete(after);
    cJSON_Delete(before);
    free(deal);
    stop(&t);
}
END_TEST

START_TEST(contact_associated_then_removed)
{
    struct h2s t;
    start(&t, "h2s_contact", NULL);
    char *deal = synced_deal(&t, "Contact deal", "1000");
    cJSON *opp = opportunity_of(&t, deal);
    const char *opp_id = sbtest_str(opp, "Id");
    ck_assert_int_eq(roles_of(&t, opp_id, NULL), 0);
    char *contact = hs_create(&t, "contacts",
                              "{\"email\":\"sam@example.test\","
                              "\"firstname\":\"Sam\",\"lastname\":\"Roe\"}");
    long long mark = e2e_mark(&t.e);
    hs_associate(&t, "PUT", deal, "contacts", contact, 3);
    wait_idle(&t);
    char *sam = sf_id_where(&t, "Contact", "Email", "sam@example.test");
    ck_assert_int_eq(roles_of(&t, opp_id, sam), 1);
    e2e_report_calls(&t.e, "h2s: contact associated (contact created)", mark);

    mark = e2e_mark(&t.e);
    hs_associate(&t, "DELETE", deal, "contacts", contact, 0);
    wait_idle(&t);
    ck_assert_int_eq(roles_of(&t, opp_id, NULL), 0);
    assert_detail_has(&t, deal, "contact roles removed: 1");
    /* The contact itself stays in Salesforce. */
    free(sf_id_where(&t, "Contact", "Email", "sam@example.test"));
    e2e_report_calls(&t.e, "h2s: contact association removed", mark);
    free(sam);
    free(contact);
    cJSON_Delete(opp);
    free(deal);
    stop(&t);
}
END_TEST

START_TEST(each_sync_rule)
{
    struct h2s t;
    char *path = xasprintf("%s/h2s-mappings.json", itest_env("TEST_TMPDIR"));
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[{\"salesforce\":\"Type\",\"hubspot\":\"dealtype\",\"rule\":\"none\"},"
          "{\"salesforce\":\"Description\",\"hubspot\":\"description\","
          "\"rule\":\"prefer_salesforce_unless_blank\"},"
          "{\"salesforce\":\"NextStep\",\"hubspot\":\"closed_lost_reason\","
          "\"rule\":\"always_salesforce\"}]",
          f);
    fclose(f);
    char *env_file = xasprintf("MAPPINGS_FILE=%s", path);
    const char *env[] = {env_file, NULL};
    start(&t, "h2s_rules", env);
    char *props = xasprintf("{\"dealname\":\"Rules deal\",\"pipeline\":\"%s\",\"dealstage\":"
                            "\"%s\",\"amount\":\"100\",\"dealtype\":\"newbusiness\","
                            "\"description\":\"from hubspot\",\"closed_lost_reason\":\"hs step\"}",
                            t.pipeline_id, t.stage_ids[0]);
    char *deal = hs_create(&t, "deals", props);
    wait_idle(&t);
    cJSON *opp = opportunity_of(&t, deal);
    /* none and always_salesforce: never written; prefer_salesforce_unless_blank: into the blank
     * field; two_way (amount): written. No close date: the documented default. */
    ck_assert_str_eq(sbtest_str(opp, "Type"), "");
    ck_assert_str_eq(sbtest_str(opp, "NextStep"), "");
    ck_assert_str_eq(sbtest_str(opp, "Description"), "from hubspot");
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(opp, "Amount")->valuedouble, 100);
    ck_assert_str_ne(sbtest_str(opp, "CloseDate"), "");
    assert_detail_has(&t, deal, "CloseDate set to");

    /* Salesforce now holds a description: HubSpot may no longer overwrite it. */
    char *opp_path =
        xasprintf("/_sandbox/salesforce/records/Opportunity/%s", sbtest_str(opp, "Id"));
    sb_do(&t, "PATCH", opp_path, "{\"Description\":\"from salesforce\"}", 200);
    wait_idle(&t);
    long long mark = e2e_mark(&t.e);
    hs_update(&t, "deals", deal,
              "{\"description\":\"hubspot again\",\"dealtype\":\"existingbusiness\","
              "\"closed_lost_reason\":\"hs step 2\",\"amount\":\"200\"}");
    wait_idle(&t);
    cJSON *after = opportunity_of(&t, deal);
    ck_assert_str_eq(sbtest_str(after, "Description"), "from salesforce");
    ck_assert_str_eq(sbtest_str(after, "Type"), "");
    ck_assert_str_eq(sbtest_str(after, "NextStep"), "");
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(after, "Amount")->valuedouble, 200);
    e2e_report_calls(&t.e, "h2s: field change under each sync rule", mark);
    cJSON_Delete(after);
    free(opp_path);
    cJSON_Delete(opp);
    free(deal);
    free(props);
    stop(&t);
    free(env_file);
    free(path);
}
END_TEST

/* A conflict is recorded by whichever direction met it first: an outcome of the deal or of the
 * opportunity holds one of the two notes. */
static void expect_conflict_noted(struct h2s *t, const char *deal, const char *opp,
                                  const char *note_a, const char *note_b)
{
    char *sql = xasprintf("SELECT count(*) FROM sync_outcome WHERE record_id IN ('%s', '%s') AND"
                          " (strpos(detail, '%s') > 0 OR strpos(detail, '%s') > 0)",
                          deal, opp, note_a, note_b);
    ck_assert_msg(itest_db_scalar(t->e.svc.db, sql) >= 1, "no outcome notes \"%s\" or \"%s\"",
                  note_a, note_b);
    free(sql);
}

START_TEST(simultaneous_change_most_recent_wins)
{
    struct h2s t;
    start(&t, "h2s_conflict", NULL);
    char *deal = synced_deal(&t, "Contested deal", "5000");
    cJSON *opp = opportunity_of(&t, deal);
    char *opp_path =
        xasprintf("/_sandbox/salesforce/records/Opportunity/%s", sbtest_str(opp, "Id"));
    char *backdate = xasprintf("%s/backdate", opp_path);
    long long mark = e2e_mark(&t.e);
    /* Both sides change the amount; Salesforce's change is the older one (backdated a minute,
     * since Salesforce keeps times to the second). */
    sb_do(&t, "PATCH", opp_path, "{\"Amount\":6000}", 200);
    sb_do(&t, "POST", backdate, "{\"minutes\":1}", 200);
    hs_update(&t, "deals", deal, "{\"amount\":\"7000\"}");
    wait_idle(&t);
    cJSON *after = opportunity_of(&t, deal);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(after, "Amount")->valuedouble, 7000);
    cJSON *hs_deal = hs_object(&t, "deals", deal);
    ck_assert_str_eq(prop(hs_deal, "amount"), "7000");
    /* Whichever direction met the conflict first records it: the Salesforce-to-HubSpot one
     * (HubSpot's value kept, Salesforce's 6000 then its baseline, so this direction writes 7000
     * as a plain HubSpot change), else this one. */
    expect_conflict_noted(&t, deal, sbtest_str(opp, "Id"),
                          "conflict on Amount: hubspot value 7000 (changed later) written, "
                          "salesforce value 6000 lost",
                          "conflict on amount: hubspot value (changed later) kept, salesforce "
                          "value lost");
    assert_no_bounce(&t, mark);
    e2e_report_calls(&t.e, "h2s: both sides changed, hubspot later", mark);
    cJSON_Delete(hs_deal);
    cJSON_Delete(after);

    /* Now HubSpot's change is the older one: its webhook arrives after Salesforce changed, and
     * Salesforce's value stays, with HubSpot's recorded as lost. */
    sb_do(&t, "PUT", "/_sandbox/settings", "{\"hubspot.webhook_batch_delay_ms\":1500}", 200);
    mark = e2e_mark(&t.e);
    hs_update(&t, "deals", deal, "{\"amount\":\"8000\"}");
    /* The next second, so the two changes do not tie. */
    cJSON *hs_now = hs_object(&t, "deals", deal);
    int64_t hs_ms = 0;
    ck_assert(util_parse_iso8601_ms(prop(hs_now, "hs_lastmodifieddate"), &hs_ms));
    while (util_now_ms() / 1000 <= hs_ms / 1000) {
        /* A condition on the clock, not a timing: the two changes must fall in different
         * seconds. Waits at most a second. */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    sb_do(&t, "PATCH", opp_path, "{\"Amount\":9000}", 200);
    wait_idle(&t);
    after = opportunity_of(&t, deal);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(after, "Amount")->valuedouble, 9000);
    /* Whichever direction met the conflict first records it: the Salesforce-to-HubSpot one when
     * the outbound message arrives before the (delayed) webhook, else this one. */
    expect_conflict_noted(&t, deal, sbtest_str(opp, "Id"),
                          "conflict on amount: salesforce value (changed later) written",
                          "conflict on Amount: salesforce value 9000 (changed later) kept");
    /* And the Salesforce-to-HubSpot direction carries the winner over: both sides agree. */
    hs_deal = hs_object(&t, "deals", deal);
    ck_assert_str_eq(prop(hs_deal, "amount"), "9000");
    cJSON_Delete(hs_deal);
    assert_no_bounce(&t, mark);
    e2e_report_calls(&t.e, "h2s: both sides changed, salesforce later", mark);
    cJSON_Delete(hs_now);
    cJSON_Delete(after);
    free(backdate);
    free(opp_path);
    cJSON_Delete(opp);
    free(deal);
    stop(&t);
}
END_TEST

START_TEST(deleted_deal_leaves_opportunity)
{
    struct h2s t;
    start(&t, "h2s_delete", NULL);
    char *deal = synced_deal(&t, "Doomed deal", "300");
    cJSON *opp = opportunity_of(&t, deal);
    long long mark = e2e_mark(&t.e);
    char *path = xasprintf("/_sandbox/hubspot/objects/deals/%s", deal);
    sb_do(&t, "DELETE", path, NULL, 204);
    wait_idle(&t);
    cJSON *after = opportunity_of(&t, deal);
    ck_assert_str_eq(sbtest_str(after, "Id"), sbtest_str(opp, "Id"));
    char *sql = xasprintf("SELECT count(*) FROM record_link WHERE hs_id = '%s'", deal);
    ck_assert_int_eq(itest_db_scalar(t.e.svc.db, sql), 0);
    assert_detail_has(&t, deal, "link forgotten");
    ck_assert_int_eq(e2e_count(&t.e, mark, "salesforce", "in", "DELETE", NULL), 0);
    e2e_report_calls(&t.e, "h2s: deal deleted", mark);
    free(sql);
    cJSON_Delete(after);
    free(path);
    cJSON_Delete(opp);
    free(deal);
    stop(&t);
}
END_TEST

START_TEST(duplicate_and_out_of_order_webhooks)
{
    struct h2s t;
    start(&t, "h2s_dup", NULL);
    sb_do(&t, "PUT", "/_sandbox/faults",
          "{\"rules\":[],\"delivery\":{\"duplicate_rate\":0.5,\"reorder_rate\":1.0}}", 200);
    long long mark = e2e_mark(&t.e);
    char *props = xasprintf("{\"dealname\":\"Noisy deal\",\"pipeline\":\"%s\",\"dealstage\":"
                            "\"%s\",\"amount\":\"1\"}",
                            t.pipeline_id, t.stage_ids[0]);
    char *deal = hs_create(&t, "deals", props);
    /* Duplicates are drawn at random: change the amount until HubSpot has sent at least one
     * batch twice (each round has an even chance; 30 rounds make a miss vanishingly rare). */
    int amount = 1, duplicated = 0;
    for (int round = 0; round < 30 && duplicated == 0; round++) {
        char *change = xasprintf("{\"amount\":\"%d\"}", ++amount);
        hs_update(&t, "deals", deal, change);
        free(change);
        wait_idle(&t);
        cJSON *hooks = sb_json(&t, "GET", "/_sandbox/hubspot/webhooks", NULL, 200);
        duplicated = cJSON_GetObjectItemCaseSensitive(hooks, "duplicatedBatches")->valueint;
        cJSON_Delete(hooks);
    }
    ck_assert_int_gt(duplicated, 0);
    char *last = xasprintf("{\"amount\":\"%d\",\"dealstage\":\"%s\"}", ++amount, t.stage_ids[1]);
    hs_update(&t, "deals", deal, last);
    wait_idle(&t);
    /* Batches came twice and shuffled: still one opportunity, holding the deal's latest state,
     * not the last webhook's value. */
    cJSON *opp = opportunity_of(&t, deal);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(opp, "Amount")->valuedouble, amount);
    ck_assert_str_eq(sbtest_str(opp, "StageName"), "Qualification");
    ck_assert_int_eq(dead_events(&t, deal), 0);
    assert_no_bounce(&t, mark);
    e2e_report_calls(&t.e, "h2s: duplicated and reordered webhooks", mark);
    cJSON_Delete(opp);
    free(last);
    free(deal);
    free(props);
    stop(&t);
}
END_TEST

START_TEST(limit_error_and_hubspot_5xx_mid_sync)
{
    struct h2s t;
    start(&t, "h2s_faults", NULL);
    sb_do(&t, "PUT", "/_sandbox/faults",
          "{\"rules\":["
          "{\"method\":\"PATCH\",\"path\":\"" API "/composite/sobjects/Opportunity\","
          "\"status\":403,\"count\":1,\"body\":\"[{\\\"message\\\":\\\"TotalRequests Limit "
          "exceeded.\\\",\\\"errorCode\\\":\\\"REQUEST_LIMIT_EXCEEDED\\\"}]\"},"
          "{\"method\":\"POST\",\"path\":\"/crm/v3/objects/contacts/batch/read\",\"status\":503,"
          "\"count\":1}]}",
          200);
    long long mark = e2e_mark(&t.e);
    char *contact = hs_create(&t, "contacts",
                              "{\"email\":\"kim@example.test\","
                              "\"lastname\":\"Kim\"}");
    char *props = xasprintf("{\"dealname\":\"Faulty deal\",\"pipeline\":\"%s\",\"dealstage\":"
                            "\"%s\",\"amount\":\"42\"}",
                            t.pipeline_id, t.stage_ids[1]);
    char *deal = hs_create(&t, "deals", props);
    hs_associate(&t, "PUT", deal, "contacts", contact, 3);
    wait_idle(&t);
    cJSON *faults = sb_json(&t, "GET", "/_sandbox/faults", NULL, 200);
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(faults, "rules"))
        ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(r, "fired")->valueint, 1);
    cJSON_Delete(faults);
    /* Retried, not dead-lettered, and still one opportunity with its role. */
    ck_assert_int_eq(dead_events(&t, deal), 0);
    cJSON *opp = opportunity_of(&t, deal);
    char *kim = sf_id_where(&t, "Contact", "Email", "kim@example.test");
    ck_assert_int_eq(roles_of(&t, sbtest_str(opp, "Id"), kim), 1);
    ck_assert_int_eq(roles_of(&t, sbtest_str(opp, "Id"), NULL), 1);
    e2e_report_calls(&t.e, "h2s: salesforce limit error and hubspot 503, retried", mark);
    free(kim);
    cJSON_Delete(opp);
    free(deal);
    free(props);
    free(contact);
    stop(&t);
}
END_TEST

START_TEST(own_echo_is_not_sent_back)
{
    struct h2s t;
    start(&t, "h2s_echo", NULL);
    char *deal = synced_deal(&t, "Echo deal", "5000");
    cJSON *opp = opportunity_of(&t, deal);
    char *opp_path =
        xasprintf("/_sandbox/salesforce/records/Opportunity/%s", sbtest_str(opp, "Id"));
    char *backdate = xasprintf("%s/backdate", opp_path);
    /* What the Salesforce-to-HubSpot direction does when the amount changes in Salesforce: it
     * records what it writes in hs_written, then writes the deal through the API. Meanwhile
     * Salesforce changed again (6500, older than the echo). The echo of 6000 must not overwrite
     * Salesforce, though HubSpot changed later by the clock. The Salesforce change's outbound
     * message is held 3 s (its delay is fixed when it is queued), so that its sync, which saves
     * its own write of 6500 as hs_written, does not run between the simulated remembering of
     * 6000 below and the echo's sync: then 6000 is no longer dealsync's write, and rightly
     * taken for a user's (the test's race, not dealsync's). */
    sb_do(&t, "PUT", "/_sandbox/settings", "{\"sf_om_batch_delay_ms\":3000}", 200);
    sb_do(&t, "PATCH", opp_path, "{\"Amount\":6500}", 200);
    sb_do(&t, "PUT", "/_sandbox/settings", "{\"sf_om_batch_delay_ms\":20}", 200);
    sb_do(&t, "POST", backdate, "{\"minutes\":1}", 200);
    char *sql =
        xasprintf("UPDATE record_link SET hs_written = hs_written || '{\"amount\":\"6000\"}'"
                  " WHERE kind = 'opportunity' AND hs_id = '%s'",
                  deal);
    itest_db_exec(t.e.svc.db, sql);
    long long mark = e2e_mark(&t.e);
    char *path = xasprintf("/crm/v3/objects/deals/%s", deal);
    sb_do(&t, "PATCH", path, "{\"properties\":{\"amount\":\"6000\"}}", 200);
    wait_idle(&t);
    cJSON *after = opportunity_of(&t, deal);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(after, "Amount")->valuedouble, 6500);
    /* Either the echo is recognised as dealsync's own write (from the webhook alone, or once the
     * deal is read), or (when the Salesforce change's own sync takes the pair first) the deal
     * already holds 6500 when it is read: never is 6000 written to Salesforce. */
    char *d = detail_of(&t, deal);
    ck_assert_msg(strstr(d, "amount holds dealsync's own write: not sent back") ||
                      strstr(d, "only dealsync's own writes reported back") ||
                      strstr(d, "already matches"),
                  "outcome of deal %s is \"%s\"", deal, d);
    free(d);
    ck_assert_int_eq(e2e_count(&t.e, mark, "salesforce", "in", "PATCH", NULL), 0);
    e2e_report_calls(&t.e, "h2s: dealsync's own hubspot write comes back", mark);
    cJSON_Delete(after);
    free(path);
    free(sql);
    free(backdate);
    free(opp_path);
    cJSON_Delete(opp);
    free(deal);
    stop(&t);
}
END_TEST

START_TEST(refused_until_deal_id_field_exists)
{
    struct h2s t;
    const char *args[] = {"--set", "sf_permissions=none", NULL};
    start_with(&t, "h2s_field", NULL, args);
    char *props = xasprintf("{\"dealname\":\"Early deal\",\"pipeline\":\"%s\",\"dealstage\":"
                            "\"%s\",\"amount\":\"10\"}",
                            t.pipeline_id, t.stage_ids[0]);
    char *deal = hs_create(&t, "deals", props);
    wait_idle(&t);
    ck_assert_int_gt(dead_events(&t, deal), 0);
    assert_detail_has(&t, deal, "neither Modify All Data nor Modify Metadata");
    cJSON *fields = sb_json(&t, "GET", "/_sandbox/salesforce/records/CustomField", NULL, 200);
    ck_assert_int_eq(cJSON_GetArraySize(fields), 0);
    cJSON_Delete(fields);
    /* The metric says why too. */
    char *metrics = NULL;
    char *url = xasprintf("%s/metrics", t.e.svc.base);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, &metrics, NULL), 200);
    ck_assert_ptr_nonnull(
        strstr(metrics, "dealsync_deals_refused_total{reason=\"deal_id_field_missing\"}"));

    /* Once the permission is granted, the next change creates the field and the opportunity. */
    long long mark = e2e_mark(&t.e);
    sb_do(&t, "PUT", "/_sandbox/settings", "{\"sf_permissions\":\"modify_metadata\"}", 200);
    hs_update(&t, "deals", deal, "{\"amount\":\"11\"}");
    wait_idle(&t);
    cJSON *opp = opportunity_of(&t, deal);
    ck_assert_double_eq(cJSON_GetObjectItemCaseSensitive(opp, "Amount")->valuedouble, 11);
    ck_assert_int_eq(
        e2e_count(&t.e, mark, "salesforce", "in", "POST", API "/tooling/sobjects/CustomField"), 1);
    e2e_report_calls(&t.e, "h2s: deal id field created once permitted", mark);
    cJSON_Delete(opp);
    free(url);
    free(metrics);
    free(deal);
    free(props);
    stop(&t);
}
END_TEST

START_TEST(deal_without_salesforce_stage_is_refused)
{
    struct h2s t;
    start(&t, "h2s_refused", NULL);
    /* A stage added in HubSpot that maps to no Salesforce stage: StageName is required, so the
     * opportunity is not created and the reason is recorded. */
    char *path = xasprintf("/crm/v3/pipelines/deals/%s/stages", t.pipeline_id);
    cJSON *stage = sb_json(&t, "POST", path,
                           "{\"label\":\"Unmapped\",\"displayOrder\":9,"
                           "\"metadata\":{\"probability\":\"0.5\"}}",
                           201);
    char *props = xasprintf("{\"dealname\":\"Odd stage\",\"pipeline\":\"%s\","
                            "\"dealstage\":\"%s\"}",
                            t.pipeline_id, sbtest_str(stage, "id"));
    long long mark = e2e_mark(&t.e);
    char *deal = hs_create(&t, "deals", props);
    wait_idle(&t);
    ck_assert_int_eq(opportunities_of(&t, deal, NULL), 0);
    ck_assert_int_gt(dead_events(&t, deal), 0);
    assert_detail_has(&t, deal, "has no salesforce stage");
    ck_assert_int_eq(e2e_count(&t.e, mark, "salesforce", "in", "PATCH", NULL), 0);
    e2e_report_calls(&t.e, "h2s: deal refused (stage without a salesforce stage)", mark);
    free(deal);
    free(props);
    cJSON_Delete(stage);
    free(path);
    stop(&t);
}
END_TEST

Suite *suite_e2e_hs_to_sf(void);
Suite *suite_e2e_hs_to_sf(void)
{
    Suite *s = suite_create("e2e_hs_to_sf");
    TCase *tc = tcase_create("hubspot_to_salesforce");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, deal_in_synced_pipeline_becomes_opportunity);
    tcase_add_test(tc, deal_in_other_pipeline_is_not_synced);
    tcase_add_test(tc, deal_moved_out_stops_syncing);
    tcase_add_test(tc, contact_associated_then_removed);
    tcase_add_test(tc, each_sync_rule);
    tcase_add_test(tc, simultaneous_change_most_recent_wins);
    tcase_add_test(tc, deleted_deal_leaves_opportunity);
    tcase_add_test(tc, duplicate_and_out_of_order_webhooks);
    tcase_add_test(tc, limit_error_and_hubspot_5xx_mid_sync);
    tcase_add_test(tc, own_echo_is_not_sent_back);
    tcase_add_test(tc, refused_until_deal_id_field_exists);
    tcase_add_test(tc, deal_without_salesforce_stage_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
