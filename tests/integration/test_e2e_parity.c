/* test_e2e_parity.c - where dealsync behaves as HubSpot's own Salesforce integration does
 * (issue 10): pipelines with the stages of their record type's sales process, the default
 * pipeline of an org with one record type, a refused pipeline failing only its record type,
 * stages mapped to existing HubSpot stages, and picklist values checked both ways. Every
 * scenario runs both directions, as users run dealsync, and ends with both sides agreeing and
 * no change bouncing between them. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "itest.h"
#include "queue.h"
#include "sync_state.h"
#include "util.h"

#define DEADLINE_MS 45000
#define SF_CONTROL "/_sandbox/salesforce/records/"

/* ---- Helpers ------------------------------------------------------------------------------ */

static cJSON *sb(struct e2e *e, const char *method, const char *path, const char *body, int want)
{
    cJSON *json = NULL;
    int status = e2e_sb(e, method, path, body, &json);
    ck_assert_msg(status == want, "%s %s: %d, wanted %d", method, path, status, want);
    return json;
}

static char *hs_create(struct e2e *e, const char *type, const char *props_json)
{
    char *path = xasprintf("/_sandbox/hubspot/objects/%s", type);
    char *body = xasprintf("{\"properties\":%s}", props_json);
    cJSON *o = sb(e, "POST", path, body, 201);
    char *id = xstrdup(sbtest_str(o, "id"));
    cJSON_Delete(o);
    free(body);
    free(path);
    return id;
}

/* The deal linked to opportunity opp (sandbox state, caller deletes), or NULL. */
static cJSON *deal_of(struct e2e *e, const char *opp)
{
    const char *params[] = {opp};
    PGresult *r = PQexecParams(e->svc.db,
                               "SELECT hs_id FROM record_link WHERE kind = 'opportunity' AND"
                               " sf_id = $1",
                               1, NULL, params, NULL, NULL, 0);
    char *path = PQntuples(r) == 1
                     ? xasprintf("/_sandbox/hubspot/objects/deals/%s", PQgetvalue(r, 0, 0))
                     : NULL;
    PQclear(r);
    if (!path)
        return NULL;
    cJSON *d = NULL;
    int status = e2e_sb(e, "GET", path, NULL, &d);
    free(path);
    if (status != 200 || cJSON_IsTrue(cJSON_GetObjectItem(d, "archived"))) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

struct deal_wait {
    struct e2e *e;
    const char *opp;
    const char *name;  /* property, or NULL: the deal exists */
    const char *value; /* its wanted value */
};

static bool deal_pred(void *arg)
{
    struct deal_wait *w = arg;
    cJSON *d = deal_of(w->e, w->opp);
    bool ok = d && (!w->name || strcmp(e2e_prop(d, w->name), w->value) == 0);
    cJSON_Delete(d);
    return ok;
}

static cJSON *wait_deal(struct e2e *e, const char *opp, const char *name, const char *value)
{
    struct deal_wait w = {e, opp, name, value};
    ck_assert_msg(itest_wait_for(deal_pred, &w, DEADLINE_MS), "deal of %s never had %s = %s", opp,
                  name ? name : "(exists)", value ? value : "");
    return deal_of(e, opp);
}

struct opp_wait {
    struct e2e *e;
    const char *id;
    const char *field;
    const char *value;
};

static bool opp_pred(void *arg)
{
    struct opp_wait *w = arg;
    cJSON *o = e2e_sf_get(w->e, "Opportunity", w->id);
    const cJSON *v = cJSON_GetObjectItem(o, w->field);
    char number[32] = "";
    if (cJSON_IsNumber(v))
        snprintf(number, sizeof(number), "%g", v->valuedouble);
    bool ok = strcmp(cJSON_IsNumber(v) ? number : sbtest_str(o, w->field), w->value) == 0;
    cJSON_Delete(o);
    return ok;
}

static void wait_opp(struct e2e *e, const char *id, const char *field, const char *value)
{
    struct opp_wait w = {e, id, field, value};
    ck_assert_msg(itest_wait_for(opp_pred, &w, DEADLINE_MS), "opportunity %s never had %s = %s", id,
                  field, value);
}

static void wait_idle(struct e2e *e)
{
    ck_assert_msg(e2e_wait_idle(e, DEADLINE_MS), "dealsync and the sandbox never went quiet");
}

/* The pipeline labelled label (caller deletes), or NULL. */
static cJSON *pipeline_labelled(struct e2e *e, const char *label)
{
    cJSON *list = sb(e, "GET", "/crm/v3/pipelines/deals", NULL, 200);
    cJSON *hit = NULL;
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(list, "results"))
    {
        if (!hit && strcmp(sbtest_str(p, "label"), label) == 0)
            hit = cJSON_Duplicate(p, true);
    }
    cJSON_Delete(list);
    return hit;
}

static const char *stage_labelled(const cJSON *pipeline, const char *label)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(pipeline, "stages"))
    {
        if (strcmp(sbtest_str(s, "label"), label) == 0)
            return sbtest_str(s, "id");
    }
    return NULL;
}

static const char *stage_label_of(const cJSON *pipeline, const char *id)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(pipeline, "stages"))
    {
        if (strcmp(sbtest_str(s, "id"), id) == 0)
            return sbtest_str(s, "label");
    }
    return "";
}

/* Runs a count query and frees it. */
static long long count_sql(struct e2e *e, char *sql)
{
    long long n = itest_db_scalar(e->svc.db, sql);
    free(sql);
    return n;
}

static void expect_detail(struct e2e *e, const char *record_id, const char *needle)
{
    const char *params[] = {record_id, needle};
    PGresult *r = PQexecParams(e->svc.db,
                               "SELECT count(*) FROM sync_outcome WHERE record_id = $1 AND"
                               " strpos(detail, $2) > 0",
                               2, NULL, params, NULL, NULL, 0);
    bool found = PQresultStatus(r) == PGRES_TUPLES_OK && atoll(PQgetvalue(r, 0, 0)) > 0;
    PQclear(r);
    if (!found) {
        char *d = e2e_last_detail(e, record_id);
        ck_abort_msg("no outcome of %s says \"%s\"; the last is \"%s\"", record_id, needle,
                     d ? d : "(none)");
        free(d);
    }
}

/* Writes dealsync made to deals / to opportunities since mark (the user's own writes go
 * through the control API and are not counted). */
static int deal_writes(struct e2e *e, long long mark)
{
    return e2e_count(e, mark, "hubspot", "in", "POST", "/crm/v3/objects/deals/batch/update") +
           e2e_count(e, mark, "hubspot", "in", "POST", "/crm/v3/objects/deals/batch/upsert") +
           e2e_count(e, mark, "hubspot", "in", "POST", "/crm/v3/objects/deals/batch/create") +
           e2e_count(e, mark, "hubspot", "in", "PATCH", "/crm/v3/objects/deals/");
}

static int opp_writes(struct e2e *e, long long mark)
{
    return e2e_count(e, mark, "salesforce", "in", "PATCH", "/services/data/v60.0/composite/") +
           e2e_count(e, mark, "salesforce", "in", "PATCH",
                     "/services/data/v60.0/sobjects/Opportunity/") +
           e2e_count(e, mark, "salesforce", "in", "POST", "/services/data/v60.0/composite/");
}

/* Both sides agree on the stage: the deal's stage is the HubSpot stage labelled as the
 * opportunity's (or mapped to it). */
static void assert_same_stage(struct e2e *e, const char *opp, const cJSON *pipeline,
                              const char *hs_label)
{
    cJSON *o = e2e_sf_get(e, "Opportunity", opp);
    cJSON *d = deal_of(e, opp);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(e2e_prop(d, "pipeline"), sbtest_str(pipeline, "id"));
    ck_assert_str_eq(stage_label_of(pipeline, e2e_prop(d, "dealstage")),
                     hs_label ? hs_label : sbtest_str(o, "StageName"));
    cJSON_Delete(d);
    cJSON_Delete(o);
}

/* ---- Stages per record type --------------------------------------------------------------- */

/* A record type whose sales process offers four stages gets a pipeline of those four stages,
 * not every active stage of the org; a stage moved in HubSpot reaches Salesforce and nothing
 * bounces. */
START_TEST(pipeline_has_its_record_types_sales_process)
{
    struct e2e e;
    e2e_start(&e, "e2e_parity_stages", NULL, NULL, true);
    char *bp = e2e_sf_create(&e, "BusinessProcess",
                             "{\"Name\":\"Renewal Process\",\"TableEnumOrId\":\"Opportunity\","
                             "\"IsActive\":true}");
    char *path = xasprintf(SF_CONTROL "BusinessProcess/%s/stages", bp);
    cJSON_Delete(sb(&e, "PUT", path,
                    "{\"stages\":[\"Qualification\",\"Negotiation/Review\",\"Closed Won\","
                    "\"Closed Lost\"]}",
                    200));
    free(path);
    char *renewal = e2e_sf_find(&e, "RecordType", "DeveloperName", "Renewal");
    char *json = xasprintf("{\"BusinessProcessId\":\"%s\"}", bp);
    e2e_sf_update(&e, "RecordType", renewal, json);
    free(json);

    json = xasprintf("{\"Name\":\"Renewal 2027\",\"StageName\":\"Qualification\","
                     "\"CloseDate\":\"2027-01-31\",\"Amount\":500,\"RecordTypeId\":\"%s\"}",
                     renewal);
    char *opp = e2e_sf_create(&e, "Opportunity", json);
    free(json);
    cJSON_Delete(wait_deal(&e, opp, NULL, NULL));
    wait_idle(&e);
    char *label = xasprintf("Salesforce - %s", renewal);
    cJSON *pipeline = pipeline_labelled(&e, label);
    ck_assert_msg(pipeline != NULL, "no pipeline %s", label);
    const char *want[] = {"Qualification", "Negotiation/Review", "Closed Won", "Closed Lost"};
    const cJSON *stages = cJSON_GetObjectItem(pipeline, "stages");
    ck_assert_int_eq(cJSON_GetArraySize(stages), 4);
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(sbtest_str(cJSON_GetArrayItem(stages, i), "label"), want[i]);
    assert_same_stage(&e, opp, pipeline, NULL);

    /* A HubSpot user moves the deal on: Salesforce follows, and nothing comes back. */
    cJSON *deal = deal_of(&e, opp);
    char *props =
        xasprintf("{\"dealstage\":\"%s\"}", stage_labelled(pipeline, "Negotiation/Review"));
    long long mark = e2e_mark(&e);
    e2e_hs_update(&e, "deals", sbtest_str(deal, "id"), props);
    free(props);
    wait_opp(&e, opp, "StageName", "Negotiation/Review");
    wait_idle(&e);
    assert_same_stage(&e, opp, pipeline, NULL);
    ck_assert_int_eq(deal_writes(&e, mark), 0);

    /* And back from Salesforce. */
    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"StageName\":\"Closed Won\"}");
    cJSON_Delete(wait_deal(&e, opp, "dealstage", stage_labelled(pipeline, "Closed Won")));
    wait_idle(&e);
    assert_same_stage(&e, opp, pipeline, NULL);
    ck_assert_int_eq(opp_writes(&e, mark), 0);

    /* A stage outside the sales process (the API lets one be set) still syncs: the pipeline
     * gains it. */
    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"StageName\":\"Needs Analysis\"}");
    wait_idle(&e);
    cJSON_Delete(pipeline);
    pipeline = pipeline_labelled(&e, label);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(pipeline, "stages")), 5);
    ck_assert_ptr_nonnull(stage_labelled(pipeline, "Needs Analysis"));
    assert_same_stage(&e, opp, pipeline, NULL);
    ck_assert_int_eq(opp_writes(&e, mark), 0);
    cJSON_Delete(deal);
    cJSON_Delete(pipeline);
    free(label);
    free(opp);
    free(renewal);
    free(bp);
    e2e_stop(&e);
}
END_TEST

/* ---- Default pipeline --------------------------------------------------------------------- */

/* An org with a single record type syncs into "Salesforce - Default pipeline", whatever the
 * opportunity's RecordTypeId; a deal created there becomes an opportunity of that record type. */
START_TEST(one_record_type_syncs_into_the_default_pipeline)
{
    struct e2e e;
    e2e_start(&e, "e2e_parity_default", NULL, NULL, true);
    char *renewal = e2e_sf_find(&e, "RecordType", "DeveloperName", "Renewal");
    e2e_sf_update(&e, "RecordType", renewal, "{\"IsActive\":false}");
    char *only = e2e_sf_find(&e, "RecordType", "DeveloperName", "New_Business");
    char *json = xasprintf("{\"Name\":\"Single type\",\"StageName\":\"Prospecting\","
                           "\"CloseDate\":\"2026-12-31\",\"Amount\":70,\"RecordTypeId\":\"%s\"}",
                           only);
    char *opp = e2e_sf_create(&e, "Opportunity", json);
    free(json);
    cJSON_Delete(wait_deal(&e, opp, NULL, NULL));
    wait_idle(&e);
    cJSON *pipeline = pipeline_labelled(&e, "Salesforce - Default pipeline");
    ck_assert_msg(pipeline != NULL, "no \"Salesforce - Default pipeline\"");
    char *per_type = xasprintf("Salesforce - %s", only);
    cJSON *other = pipeline_labelled(&e, per_type);
    ck_assert_msg(other == NULL, "a pipeline named after the record type was created");
    assert_same_stage(&e, opp, pipeline, NULL);

    /* A deal created in that pipeline in HubSpot becomes an opportunity of the one record
     * type, and both sides then agree. */
    char *props = xasprintf("{\"dealname\":\"From hubspot\",\"pipeline\":\"%s\",\"dealstage\":"
                            "\"%s\",\"amount\":\"90\",\"closedate\":\"2027-02-01\"}",
                            sbtest_str(pipeline, "id"), stage_labelled(pipeline, "Prospecting"));
    char *deal = hs_create(&e, "deals", props);
    free(props);
    wait_idle(&e);
    char *created = e2e_sf_find(&e, "Opportunity", "Name", "From hubspot");
    ck_assert_msg(created != NULL, "the deal did not become an opportunity");
    cJSON *o = e2e_sf_get(&e, "Opportunity", created);
    ck_assert_str_eq(sbtest_str(o, "RecordTypeId"), only);
    ck_assert_str_eq(sbtest_str(o, "StageName"), "Prospecting");
    cJSON_Delete(o);
    long long mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", created, "{\"StageName\":\"Qualification\"}");
    wait_idle(&e);
    assert_same_stage(&e, created, pipeline, NULL);
    ck_assert_int_eq(opp_writes(&e, mark), 0);
    ck_assert_int_eq(
        count_sql(&e, xstrdup("SELECT count(*) FROM pipeline_map WHERE record_type_id <> ''")), 0);
    free(created);
    free(deal);
    cJSON_Delete(other);
    free(per_type);
    cJSON_Delete(pipeline);
    free(opp);
    free(only);
    free(renewal);
    e2e_stop(&e);
}
END_TEST

/* ---- Stages mapped in the mappings file ---------------------------------------------------- */

static char *write_file(const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", itest_env("TEST_TMPDIR"), name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* The record type's pipeline already exists in HubSpot with stages of its own; the mappings file
 * maps Salesforce stages onto them (two onto one). No stage is added, and stage changes travel
 * both ways without bouncing. */
START_TEST(stages_map_to_existing_hubspot_stages)
{
    struct e2e e;
    char *mappings =
        write_file("parity-stage-mappings.json",
                   "[{\"salesforce\":\"StageName\",\"hubspot\":\"dealstage\",\"rule\":\"two_way\","
                   "\"values\":{\"Prospecting\":\"Discovery\",\"Qualification\":\"Discovery\","
                   "\"Closed Won\":\"Won\",\"Closed Lost\":\"Lost\"}}]");
    char *env_mappings = xasprintf("MAPPINGS_FILE=%s", mappings);
    const char *env[] = {env_mappings, NULL};
    e2e_start(&e, "e2e_parity_stage_map", env, NULL, true);
    char *nb = e2e_sf_find(&e, "RecordType", "DeveloperName", "New_Business");
    char *body = xasprintf(
        "{\"label\":\"Salesforce - %s\",\"displayOrder\":1,\"stages\":["
        "{\"label\":\"Discovery\",\"displayOrder\":0,\"metadata\":{\"probability\":\"0.1\"}},"
        "{\"label\":\"Won\",\"displayOrder\":1,\"metadata\":{\"probability\":\"1.0\"}},"
        "{\"label\":\"Lost\",\"displayOrder\":2,\"metadata\":{\"probability\":\"0.0\"}}]}",
        nb);
    cJSON *pipeline = sb(&e, "POST", "/crm/v3/pipelines/deals", body, 201);
    free(body);

    char *json = xasprintf("{\"Name\":\"Mapped stages\",\"StageName\":\"Qualification\","
                           "\"CloseDate\":\"2026-12-31\",\"Amount\":40,\"RecordTypeId\":\"%s\"}",
                           nb);
    char *opp = e2e_sf_create(&e, "Opportunity", json);
    free(json);
    cJSON_Delete(wait_deal(&e, opp, "dealstage", stage_labelled(pipeline, "Discovery")));
    wait_idle(&e);
    assert_same_stage(&e, opp, pipeline, "Discovery");

    /* Prospecting maps to the same HubSpot stage: nothing to write either way. */
    long long mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"StageName\":\"Prospecting\"}");
    wait_idle(&e);
    assert_same_stage(&e, opp, pipeline, "Discovery");
    ck_assert_int_eq(deal_writes(&e, mark), 0);
    ck_assert_int_eq(opp_writes(&e, mark), 0);
    cJSON *o = e2e_sf_get(&e, "Opportunity", opp);
    ck_assert_str_eq(sbtest_str(o, "StageName"), "Prospecting");
    cJSON_Delete(o);

    /* A HubSpot user closes the deal as won: Salesforce follows. */
    cJSON *deal = deal_of(&e, opp);
    char *props = xasprintf("{\"dealstage\":\"%s\"}", stage_labelled(pipeline, "Won"));
    mark = e2e_mark(&e);
    e2e_hs_update(&e, "deals", sbtest_str(deal, "id"), props);
    free(props);
    wait_opp(&e, opp, "StageName", "Closed Won");
    wait_idle(&e);
    assert_same_stage(&e, opp, pipeline, "Won");
    ck_assert_int_eq(deal_writes(&e, mark), 0);
    cJSON *after = pipeline_labelled(&e, sbtest_str(pipeline, "label"));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(after, "stages")), 3);
    cJSON_Delete(after);
    cJSON_Delete(deal);
    free(opp);
    cJSON_Delete(pipeline);
    free(nb);
    e2e_stop(&e);
    free(env_mappings);
    free(mappings);
}
END_TEST

/* ---- A refused pipeline ------------------------------------------------------------------- */

struct two {
    struct e2e *e;
    const char *a, *b;
};

static bool both_settled(void *arg)
{
    struct two *t = arg;
    return count_sql(t->e, xasprintf("SELECT count(DISTINCT record_id) FROM sync_outcome WHERE"
                                     " record_id IN ('%s', '%s')",
                                     t->a, t->b)) == 2;
}

/* HubSpot refuses a second Salesforce pipeline (the subscription's pipeline allowance): the
 * opportunity of that record type fails with the reason, and the other opportunity of the same
 * batch is synced. */
START_TEST(refused_pipeline_fails_only_its_record_type)
{
    struct e2e e;
    /* One worker claims the two events together (one batch). */
    const char *env[] = {"WORKER_THREADS=1", NULL};
    const char *args[] = {"--set", "hubspot.deal_pipeline_limit=2", NULL};
    e2e_start(&e, "e2e_parity_refused", env, args, false);
    char *nb = e2e_sf_find(&e, "RecordType", "DeveloperName", "New_Business");
    char *renewal = e2e_sf_find(&e, "RecordType", "DeveloperName", "Renewal");
    char *json = xasprintf("{\"Name\":\"Fits\",\"StageName\":\"Prospecting\","
                           "\"CloseDate\":\"2026-12-31\",\"RecordTypeId\":\"%s\"}",
                           nb);
    char *fits = e2e_sf_create(&e, "Opportunity", json);
    free(json);
    json = xasprintf("{\"Name\":\"Refused\",\"StageName\":\"Prospecting\","
                     "\"CloseDate\":\"2026-12-31\",\"RecordTypeId\":\"%s\"}",
                     renewal);
    char *refused = e2e_sf_create(&e, "Opportunity", json);
    free(json);
    wait_idle(&e); /* sync deals is off: both skipped */
    /* The two records arrive in one transaction, as a resync queues them. */
    itest_db_exec(e.svc.db, "DELETE FROM sync_outcome");
    ck_assert_int_eq(sync_setting_set(e.svc.db, SYNC_SETTING_SYNC_DEALS, "on"), ERR_OK);
    cJSON *payload = cJSON_CreateObject();
    struct queue_event_in evs[2] = {
        {"salesforce", "parity-1", "Opportunity", refused, "resync", util_now_ms(), payload,
         QUEUE_PRIORITY_LIVE},
        {"salesforce", "parity-2", "Opportunity", fits, "resync", util_now_ms(), payload,
         QUEUE_PRIORITY_LIVE},
    };
    size_t stored = 0;
    ck_assert_int_eq(queue_push(e.svc.db, evs, 2, &stored), ERR_OK);
    cJSON_Delete(payload);
    struct two t = {&e, fits, refused};
    ck_assert(itest_wait_for(both_settled, &t, DEADLINE_MS));
    wait_idle(&e);
    cJSON *deal = deal_of(&e, fits);
    ck_assert_msg(deal != NULL, "the opportunity whose pipeline exists was not synced");
    cJSON_Delete(deal);
    ck_assert_ptr_null(deal_of(&e, refused));
    expect_detail(&e, refused, "hubspot refused to create the pipeline");
    ck_assert_int_ge(count_sql(&e, xasprintf("SELECT count(*) FROM sync_outcome WHERE"
                                             " record_id = '%s' AND outcome IN ('done', 'warning')",
                                             fits)),
                     1);
    free(refused);
    free(fits);
    free(renewal);
    free(nb);
    e2e_stop(&e);
}
END_TEST

/* ---- Picklists both ways ------------------------------------------------------------------ */

/* A deal created in HubSpot whose deal type ("New Business") is no value of Salesforce's Type
 * picklist: the opportunity is created without it and the reason recorded; later changes in
 * Salesforce do not clear the HubSpot value, and nothing bounces. */
START_TEST(hubspot_value_without_salesforce_picklist_value)
{
    struct e2e e;
    e2e_start(&e, "e2e_parity_picklist", NULL, NULL, true);
    char *nb = e2e_sf_find(&e, "RecordType", "DeveloperName", "New_Business");
    /* A first opportunity makes the pipeline. */
    char *json = xasprintf("{\"Name\":\"Seed\",\"StageName\":\"Prospecting\","
                           "\"CloseDate\":\"2026-12-31\",\"RecordTypeId\":\"%s\","
                           "\"Type\":\"New Customer\"}",
                           nb);
    char *seed = e2e_sf_create(&e, "Opportunity", json);
    free(json);
    cJSON_Delete(wait_deal(&e, seed, NULL, NULL));
    wait_idle(&e);
    char *label = xasprintf("Salesforce - %s", nb);
    cJSON *pipeline = pipeline_labelled(&e, label);
    ck_assert_ptr_nonnull(pipeline);

    char *props = xasprintf("{\"dealname\":\"Typed in hubspot\",\"pipeline\":\"%s\","
                            "\"dealstage\":\"%s\",\"amount\":\"300\",\"closedate\":\"2027-03-01\","
                            "\"dealtype\":\"newbusiness\"}",
                            sbtest_str(pipeline, "id"), stage_labelled(pipeline, "Prospecting"));
    char *deal = hs_create(&e, "deals", props);
    free(props);
    wait_idle(&e);
    char *opp = e2e_sf_find(&e, "Opportunity", "Name", "Typed in hubspot");
    ck_assert_msg(opp != NULL, "the deal did not become an opportunity");
    cJSON *o = e2e_sf_get(&e, "Opportunity", opp);
    ck_assert_str_eq(sbtest_str(o, "Type"), "");
    ck_assert_str_eq(sbtest_str(o, "StageName"), "Prospecting");
    cJSON_Delete(o);
    expect_detail(&e, deal, "dealtype not written: no salesforce picklist value \"New Business\"");

    /* A Salesforce change: the deal follows, and its deal type stays. */
    long long mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":350}");
    cJSON_Delete(wait_deal(&e, opp, "amount", "350"));
    wait_idle(&e);
    cJSON *d = deal_of(&e, opp);
    ck_assert_str_eq(e2e_prop(d, "dealtype"), "newbusiness");
    cJSON_Delete(d);
    ck_assert_int_eq(opp_writes(&e, mark), 0);
    o = e2e_sf_get(&e, "Opportunity", opp);
    ck_assert_str_eq(sbtest_str(o, "Type"), "");
    cJSON_Delete(o);

    /* The Salesforce value a HubSpot option matches does travel: both sides agree. */
    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Type\":\"New Customer\"}");
    wait_idle(&e);
    expect_detail(&e, opp, "Type not written: no hubspot option for value");
    d = deal_of(&e, opp);
    ck_assert_str_eq(e2e_prop(d, "dealtype"), "newbusiness");
    cJSON_Delete(d);
    ck_assert_int_eq(opp_writes(&e, mark), 0);
    free(opp);
    free(deal);
    cJSON_Delete(pipeline);
    free(label);
    free(seed);
    free(nb);
    e2e_stop(&e);
}
END_TEST

static void create_sf_field(struct e2e *e, const char *json)
{
    cJSON_Delete(sb(e, "POST", "/services/data/v60.0/tooling/sobjects/CustomField", json, 201));
}

static void create_hs_property(struct e2e *e, const char *json)
{
    cJSON_Delete(sb(e, "POST", "/crm/v3/properties/deals", json, 201));
}

/* A restricted picklist and a multi-select on Opportunity, an enumeration and a checkbox
 * property on deals, and a text field next to a number property. */
static void prepare_picklists(struct e2e *e)
{
    create_sf_field(e, "{\"FullName\":\"Opportunity.Tier__c\",\"Metadata\":{\"label\":\"Tier\","
                       "\"type\":\"Picklist\",\"valueSet\":{\"restricted\":true,"
                       "\"valueSetDefinition\":{\"value\":[{\"fullName\":\"Gold\",\"label\":"
                       "\"Gold\",\"default\":false},{\"fullName\":\"Silver\",\"label\":"
                       "\"Silver\",\"default\":false}]}}}}");
    create_sf_field(e, "{\"FullName\":\"Opportunity.Regions__c\",\"Metadata\":{\"label\":"
                       "\"Regions\",\"type\":\"MultiselectPicklist\",\"visibleLines\":4,"
                       "\"valueSet\":{\"restricted\":true,\"valueSetDefinition\":{\"value\":["
                       "{\"fullName\":\"Europe\",\"label\":\"Europe\"},{\"fullName\":\"Asia\","
                       "\"label\":\"Asia\"},{\"fullName\":\"Africa\",\"label\":\"Africa\"}]}}}}");
    create_sf_field(e, "{\"FullName\":\"Opportunity.Budget_Code__c\",\"Metadata\":{\"label\":"
                       "\"Budget code\",\"type\":\"Text\",\"length\":40}}");
    create_hs_property(e, "{\"name\":\"tier\",\"label\":\"Tier\",\"type\":\"enumeration\","
                          "\"fieldType\":\"select\",\"groupName\":\"dealinformation\","
                          "\"options\":[{\"label\":\"Gold\",\"value\":\"gold\",\"displayOrder\":0},"
                          "{\"label\":\"Silver\",\"value\":\"silver\",\"displayOrder\":1},"
                          "{\"label\":\"Bronze\",\"value\":\"bronze\",\"displayOrder\":2}]}");
    create_hs_property(e, "{\"name\":\"regions\",\"label\":\"Regions\",\"type\":\"enumeration\","
                          "\"fieldType\":\"checkbox\",\"groupName\":\"dealinformation\","
                          "\"options\":[{\"label\":\"Europe\",\"value\":\"eu\",\"displayOrder\":0},"
                          "{\"label\":\"Asia\",\"value\":\"asia\",\"displayOrder\":1},"
                          "{\"label\":\"Africa\",\"value\":\"africa\",\"displayOrder\":2},"
                          "{\"label\":\"Oceania\",\"value\":\"oceania\",\"displayOrder\":3}]}");
    create_hs_property(e, "{\"name\":\"budget\",\"label\":\"Budget\",\"type\":\"number\","
                          "\"fieldType\":\"number\",\"groupName\":\"dealinformation\"}");
}

static void subscribe_property(struct e2e *e, const char *property)
{
    char *body = xasprintf("{\"eventType\":\"deal.propertyChange\",\"propertyName\":\"%s\","
                           "\"active\":true}",
                           property);
    cJSON_Delete(sb(e, "POST", "/webhooks/v3/1160452/subscriptions?hapikey=sandbox-developer-key",
                    body, 201));
    free(body);
}

static bool same_set(const char *a, const char *b)
{
    /* ';'-separated lists with the same items, in any order (items have no ';' or spaces). */
    char *x = xasprintf(";%s;", a), *y = xasprintf(";%s;", b);
    bool same = strlen(a) == strlen(b);
    for (char *p = x + 1; same && *p;) {
        size_t n = strcspn(p, ";");
        char *item = xasprintf(";%.*s;", (int)n, p);
        same = strstr(y, item) != NULL;
        free(item);
        p += n + (p[n] == ';');
    }
    free(x);
    free(y);
    return same;
}

/* A restricted picklist and a multi-select picklist, mapped to a HubSpot dropdown and HubSpot
 * checkboxes: values travel both ways (';'-separated on both sides); a HubSpot value Salesforce
 * has no value for is left out with the reason, and the rest of the deal still syncs. */
START_TEST(custom_picklists_and_checkboxes_both_ways)
{
    struct e2e e;
    char *mappings =
        write_file("parity-picklists.json", "[{\"salesforce\":\"Tier__c\",\"hubspot\":\"tier\","
                                            "\"rule\":\"two_way\"},{\"salesforce\":\"Regions__c\","
                                            "\"hubspot\":\"regions\",\"rule\":\"two_way\"}]");
    char *env_mappings = xasprintf("MAPPINGS_FILE=%s", mappings);
    const char *env[] = {env_mappings, NULL};
    e2e_start_prepared(&e, "e2e_parity_multi", env, NULL, true, prepare_picklists);
    subscribe_property(&e, "tier");
    subscribe_property(&e, "regions");

    char *opp = e2e_sf_create(&e, "Opportunity",
                              "{\"Name\":\"Regional\",\"StageName\":\"Prospecting\",\"CloseDate\":"
                              "\"2026-12-31\",\"Amount\":100,\"Tier__c\":\"Gold\",\"Regions__c\":"
                              "\"Europe;Asia\"}");
    cJSON *d = wait_deal(&e, opp, "tier", "gold");
    wait_idle(&e);
    cJSON_Delete(d);
    d = deal_of(&e, opp);
    ck_assert_msg(same_set(e2e_prop(d, "regions"), "eu;asia"), "regions \"%s\"",
                  e2e_prop(d, "regions"));
    char *deal = xstrdup(sbtest_str(d, "id"));
    cJSON_Delete(d);

    /* HubSpot values Salesforce cannot hold (Bronze, Oceania): left out, the amount still
     * travels, and Salesforce's values do not come back over HubSpot's. */
    long long mark = e2e_mark(&e);
    e2e_hs_update(&e, "deals", deal,
                  "{\"tier\":\"bronze\",\"regions\":\"eu;oceania\",\"amount\":\"150\"}");
    wait_opp(&e, opp, "Amount", "150");
    wait_idle(&e);
    cJSON *o = e2e_sf_get(&e, "Opportunity", opp);
    ck_assert_str_eq(sbtest_str(o, "Tier__c"), "Gold");
    ck_assert_str_eq(sbtest_str(o, "Regions__c"), "Europe;Asia");
    cJSON_Delete(o);
    expect_detail(&e, deal, "tier not written: no salesforce picklist value \"Bronze\"");
    expect_detail(&e, deal, "regions not written: no salesforce picklist value \"Oceania\"");
    d = deal_of(&e, opp);
    ck_assert_str_eq(e2e_prop(d, "tier"), "bronze");
    ck_assert_str_eq(e2e_prop(d, "regions"), "eu;oceania");
    cJSON_Delete(d);
    ck_assert_int_eq(deal_writes(&e, mark), 0);

    /* Values Salesforce has: both sides agree. */
    mark = e2e_mark(&e);
    e2e_hs_update(&e, "deals", deal, "{\"tier\":\"silver\",\"regions\":\"africa;eu\"}");
    wait_opp(&e, opp, "Tier__c", "Silver");
    wait_idle(&e);
    o = e2e_sf_get(&e, "Opportunity", opp);
    ck_assert_msg(same_set(sbtest_str(o, "Regions__c"), "Africa;Europe"), "Regions__c \"%s\"",
                  sbtest_str(o, "Regions__c"));
    cJSON_Delete(o);
    ck_assert_int_eq(deal_writes(&e, mark), 0);

    /* And from Salesforce. */
    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Regions__c\":\"Asia\",\"Tier__c\":\"Gold\"}");
    cJSON_Delete(wait_deal(&e, opp, "regions", "asia"));
    wait_idle(&e);
    d = deal_of(&e, opp);
    ck_assert_str_eq(e2e_prop(d, "tier"), "gold");
    cJSON_Delete(d);
    ck_assert_int_eq(opp_writes(&e, mark), 0);

    /* A text field mapped to a number property is named at start, and dealsync stops. */
    char *bad = write_file("parity-bad-types.json",
                           "[{\"salesforce\":\"Budget_Code__c\",\"hubspot\":\"budget\","
                           "\"rule\":\"two_way\"}]");
    char *text = NULL;
    ck_assert_int_ne(e2e_run_worker_with_mappings(&e, bad, &text), 0);
    ck_assert_msg(text && strstr(text, "cannot hold each other's values") &&
                      strstr(text, "Budget_Code__c") && strstr(text, "\"budget\""),
                  "start-up did not name the pair: %s", text ? text : "");
    free(text);
    free(bad);
    free(deal);
    free(opp);
    e2e_stop(&e);
    free(env_mappings);
    free(mappings);
}
END_TEST

Suite *suite_e2e_parity(void);
Suite *suite_e2e_parity(void)
{
    Suite *s = suite_create("e2e_parity");
    const struct itest_case cases[] = {
        {"stages", pipeline_has_its_record_types_sales_process},
        {"default", one_record_type_syncs_into_the_default_pipeline},
        {"stage_map", stages_map_to_existing_hubspot_stages},
        {"picklist", hubspot_value_without_salesforce_picklist_value},
        {"multi", custom_picklists_and_checkboxes_both_ways},
        {"refused", refused_pipeline_fails_only_its_record_type}};
    itest_add_cases(s, cases, sizeof cases / sizeof cases[0], 300);
    return s;
}
