/* test_e2e_sf_to_hs.c - Salesforce to HubSpot end to end: changes made in the sandbox's
 * Salesforce reach dealsync as the sandbox's own outbound messages (or through dealsync's
 * pollers), and the test checks what an operator would look at in HubSpot. Each scenario's API
 * calls are counted from the sandbox's request log (e2e_report_calls). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "itest.h"
#include "queue.h"
#include "sync_state.h"
#include "util.h"

#define OPP_PROP "dealsync_salesforce_opportunity_id"
#define DEADLINE_MS 30000
/* getDeleted covers whole minutes only: a delete shows up after the next minute starts. */
#define DELETE_DEADLINE_MS 100000

/* ---- Helpers ------------------------------------------------------------------------------ */

static void sf_delete(struct e2e *e, const char *type, const char *id)
{
    char *path = xasprintf("/_sandbox/salesforce/records/%s/%s", type, id);
    int status = e2e_sb(e, "DELETE", path, NULL, NULL);
    ck_assert_msg(status == 200 || status == 204, "delete %s: %d", type, status);
    free(path);
}

/* Id of the seeded record of type whose field has value. Caller frees. */
static char *sf_find(struct e2e *e, const char *type, const char *field, const char *value)
{
    char *id = e2e_sf_find(e, type, field, value);
    ck_assert_msg(id != NULL, "no %s with %s = %s", type, field, value);
    return id;
}

static const char *prop(const cJSON *obj, const char *name)
{
    const char *s =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "properties"), name));
    return s ? s : "";
}

/* The full sandbox state of the deal dealsync linked to opportunity opp, or NULL when there is
 * none or it is archived. Read through the control API, so the test's own polling does not
 * show up in the API-call counts. Caller deletes. */
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
    if (status != 200 || cJSON_IsTrue(cJSON_GetObjectItem(d, "archived")) ||
        strcmp(prop(d, OPP_PROP), opp) != 0) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

/* Logs the API calls since mark: what the handler made, and (apart) the pollers' background
 * queries (getDeleted, and queryAll on OpportunityContactRole), which depend on how long the
 * scenario took. */
static void report(struct e2e *e, const char *label, long long mark)
{
    char *q = xasprintf("/_sandbox/requests?since=%lld", mark);
    cJSON *log = NULL;
    e2e_sb(e, "GET", q, NULL, &log);
    free(q);
    int sf = 0, poll = 0, hs = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(log, "requests"))
    {
        if (strcmp(sbtest_str(r, "direction"), "in") != 0)
            continue;
        const char *system = sbtest_str(r, "system");
        const char *path = sbtest_str(r, "path");
        if (strcmp(system, "hubspot") == 0) {
            hs++;
        } else if (strcmp(system, "salesforce") == 0) {
            bool is_poll = strstr(path, "/sobjects/Opportunity/deleted") ||
                           (strstr(path, "/queryAll") &&
                            strstr(sbtest_str(r, "query"), "OpportunityContactRole"));
            if (is_poll)
                poll++;
            else
                sf++;
        }
        if (getenv("S2H_DEBUG") && strcmp(system, "control") != 0)
            printf("  %s %s %s %s\n", system, sbtest_str(r, "method"), path,
                   sbtest_str(r, "query"));
    }
    cJSON_Delete(log);
    printf("api calls: %s: salesforce %d (+%d polling), hubspot %d\n", label, sf, poll, hs);
    char *path = xasprintf("%s/api-calls.txt", itest_env("TEST_TMPDIR"));
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "%s\tsalesforce %d (+%d polling)\thubspot %d\n", label, sf, poll, hs);
        fclose(f);
    }
    free(path);
    fflush(stdout);
}

/* Salesforce queries since mark whose (encoded) SOQL contains every needle (NULL-ended). */
static int sf_queries(struct e2e *e, long long mark, const char *const *needles)
{
    char *q = xasprintf("/_sandbox/requests?since=%lld&system=salesforce", mark);
    cJSON *log = NULL;
    e2e_sb(e, "GET", q, NULL, &log);
    free(q);
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(log, "requests"))
    {
        bool all = strcmp(sbtest_str(r, "direction"), "in") == 0;
        for (const char *const *nd = needles; all && *nd; nd++)
            all = strstr(sbtest_str(r, "query"), *nd) != NULL;
        n += all;
    }
    cJSON_Delete(log);
    return n;
}

static cJSON *hs_object(struct e2e *e, const char *type, const char *id)
{
    char *path = xasprintf("/_sandbox/hubspot/objects/%s/%s", type, id);
    cJSON *o = NULL;
    int status = e2e_sb(e, "GET", path, NULL, &o);
    free(path);
    ck_assert_int_eq(status, 200);
    return o;
}

/* The ids this object is associated with in toType with typeId (0 = any). */
static int assoc_count(const cJSON *obj, const char *to_type, int type_id, char *first,
                       size_t first_len)
{
    int n = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(obj, "associations"))
    {
        const cJSON *t = cJSON_GetObjectItem(a, "associationTypeId");
        if (strcmp(sbtest_str(a, "toObjectType"), to_type) != 0)
            continue;
        if (type_id && (!cJSON_IsNumber(t) || t->valueint != type_id))
            continue;
        if (n == 0 && first)
            snprintf(first, first_len, "%s", sbtest_str(a, "toObjectId"));
        n++;
    }
    return n;
}

/* Waits until check(deal) holds for the opportunity's deal (deal NULL when there is none). */
struct deal_wait {
    struct e2e *e;
    const char *opp;
    bool (*check)(const cJSON *deal, void *arg);
    void *arg;
};

static bool deal_pred(void *p)
{
    struct deal_wait *w = p;
    cJSON *d = deal_of(w->e, w->opp);
    bool ok = w->check(d, w->arg);
    cJSON_Delete(d);
    return ok;
}

/* The opportunity's Amount in Salesforce equals want. */
struct sf_amount {
    struct e2e *e;
    const char *opp;
    double want;
};

static bool sf_amount_is(void *arg)
{
    struct sf_amount *a = arg;
    char *path = xasprintf("/_sandbox/salesforce/records/Opportunity/%s", a->opp);
    cJSON *rec = NULL;
    e2e_sb(a->e, "GET", path, NULL, &rec);
    const cJSON *amount = cJSON_GetObjectItemCaseSensitive(rec, "Amount");
    bool ok = cJSON_IsNumber(amount) && amount->valuedouble == a->want;
    cJSON_Delete(rec);
    free(path);
    return ok;
}

static bool wait_deal(struct e2e *e, const char *opp, bool (*check)(const cJSON *, void *),
                      void *arg, int deadline_ms)
{
    struct deal_wait w = {e, opp, check, arg};
    return itest_wait_for(deal_pred, &w, deadline_ms);
}

static bool has_prop(const cJSON *deal, void *arg)
{
    const char *const *kv = arg;
    return deal && strcmp(prop(deal, kv[0]), kv[1]) == 0;
}

static bool is_gone(const cJSON *deal, void *arg)
{
    (void)arg;
    return deal == NULL;
}

static bool contacts_are(const cJSON *deal, void *arg)
{
    return deal && assoc_count(deal, "contacts", 3, NULL, 0) == *(int *)arg;
}

/* Waits until a contact property has a value (numbers compared as text). */
struct contact_wait {
    struct e2e *e;
    const char *id;
    const char *name;
    const char *value;
};

static bool contact_pred(void *p)
{
    struct contact_wait *w = p;
    cJSON *c = hs_object(w->e, "contacts", w->id);
    bool ok = strcmp(prop(c, w->name), w->value) == 0;
    cJSON_Delete(c);
    return ok;
}

static void expect_contact(struct e2e *e, const char *id, const char *name, const char *value)
{
    struct contact_wait w = {e, id, name, value};
    if (!itest_wait_for(contact_pred, &w, DEADLINE_MS)) {
        cJSON *c = hs_object(e, "contacts", id);
        ck_abort_msg("contact %s: %s is \"%s\", expected \"%s\"", id, name, prop(c, name), value);
    }
}

/* HubSpot stage id of the stage labelled label in the pipeline labelled pipeline. */
static char *stage_id(struct e2e *e, const char *pipeline, const char *label, char **pipeline_id)
{
    cJSON *list = NULL;
    ck_assert_int_eq(e2e_sb(e, "GET", "/crm/v3/pipelines/deals", NULL, &list), 200);
    char *id = NULL;
    const cJSON *p, *s;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(list, "results"))
    {
        if (strcmp(sbtest_str(p, "label"), pipeline) != 0)
            continue;
        if (pipeline_id)
            *pipeline_id = xstrdup(sbtest_str(p, "id"));
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(p, "stages"))
        {
            if (strcmp(sbtest_str(s, "label"), label) == 0)
                id = xstrdup(sbtest_str(s, "id"));
        }
    }
    ck_assert_msg(id != NULL, "no stage %s in pipeline %s", label, pipeline);
    cJSON_Delete(list);
    return id;
}

/* No echo: dealsync wrote nothing back to Salesforce but the HubSpot deal id (which the
 * HubSpot-to-Salesforce direction stores on the opportunity): no mapped field went back. */
static long long fields_written_back(struct e2e *e)
{
    return itest_db_scalar(e->svc.db, "SELECT count(*) FROM record_link, jsonb_object_keys("
                                      "sf_written) AS k WHERE kind = 'opportunity' AND"
                                      " k <> 'HubSpot_Deal_Id__c'");
}

static long long outcomes(struct e2e *e, const char *record_id, const char *outcome)
{
    char *sql = xasprintf("SELECT count(*) FROM sync_outcome WHERE record_id = '%s' AND outcome = "
                          "'%s'",
                          record_id, outcome);
    long long n = itest_db_scalar(e->svc.db, sql);
    free(sql);
    return n;
}

/* Whether any outcome of the record says needle: a later one (the echo of the other
 * direction's write, say) may say something else. */
static bool has_detail(struct e2e *e, const char *record_id, const char *needle)
{
    const char *params[] = {record_id, needle};
    PGresult *r = PQexecParams(e->svc.db,
                               "SELECT count(*) FROM sync_outcome WHERE record_id = $1 AND"
                               " strpos(detail, $2) > 0",
                               2, NULL, params, NULL, NULL, 0);
    bool found = PQresultStatus(r) == PGRES_TUPLES_OK && atoll(PQgetvalue(r, 0, 0)) > 0;
    PQclear(r);
    return found;
}

static void expect_detail(struct e2e *e, const char *record_id, const char *needle)
{
    if (!has_detail(e, record_id, needle)) {
        char *d = e2e_last_detail(e, record_id);
        ck_abort_msg("no outcome of %s says \"%s\"; the last is \"%s\"", record_id, needle, d);
        free(d);
    }
}

/* The deal's only company is the one holding account id arg. */
struct company_check {
    struct e2e *e;
    const char *account;
};

static bool only_company_of(const cJSON *deal, void *arg)
{
    struct company_check *c = arg;
    char id[32] = "";
    /* One company shows twice: primary (5) and unlabelled (341). */
    if (!deal || assoc_count(deal, "companies", 5, id, sizeof(id)) != 1 ||
        assoc_count(deal, "companies", 0, NULL, 0) != 2)
        return false;
    cJSON *company = hs_object(c->e, "companies", id);
    bool ok = strcmp(prop(company, "salesforceaccountid"), c->account) == 0;
    cJSON_Delete(company);
    return ok;
}

/* ---- Scenarios ---------------------------------------------------------------------------- */

/* One opportunity's life: created with account, contact role and owner; a field change; a stage
 * change to closed won; contact roles added and removed; a second opportunity for the same
 * contact (recent deal amount follows the most recently created one); a delete. */
START_TEST(opportunity_lifecycle)
{
    struct e2e e;
    e2e_start(&e, "e2e_s2h_life", NULL, NULL, true);
    /* A HubSpot owner with the Salesforce UI user's e-mail, so the owner matches. */
    cJSON *owner = NULL;
    ck_assert_int_eq(e2e_sb(&e, "POST", "/_sandbox/hubspot/owners",
                            "{\"email\":\"alice@dealsync.test\",\"firstName\":\"Alice\"}", &owner),
                     201);
    char *owner_id = xstrdup(sbtest_str(owner, "id"));
    cJSON_Delete(owner);
    char *acme = sf_find(&e, "Account", "Name", "Acme Corp");
    char *jane = sf_find(&e, "Contact", "Email", "jane@acme.test");
    char *john = sf_find(&e, "Contact", "Email", "john@globex.test");
    char *rt = sf_find(&e, "RecordType", "DeveloperName", "New_Business");

    /* New opportunity, with a contact role added in the same minute. */
    long long mark = e2e_mark(&e);
    char *json = xasprintf("{\"Name\":\"Acme rollout\",\"StageName\":\"Prospecting\","
                           "\"CloseDate\":\"2026-12-31\",\"Amount\":120000,\"AccountId\":\"%s\","
                           "\"RecordTypeId\":\"%s\",\"Type\":\"New Business\"}",
                           acme, rt);
    char *opp = e2e_sf_create(&e, "Opportunity", json);
    free(json);
    json = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\",\"Role\":\"Decision Maker\"}",
                     opp, jane);
    char *role_jane = e2e_sf_create(&e, "OpportunityContactRole", json);
    free(json);
    int one = 1;
    ck_assert_msg(wait_deal(&e, opp, contacts_are, &one, DEADLINE_MS),
                  "the deal never appeared with its contact");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "new opportunity (pipeline created, company and contact created)", mark);

    char *pipeline_label = xasprintf("Salesforce - %s", rt);
    char *pipeline_id = NULL;
    char *prospecting = stage_id(&e, pipeline_label, "Prospecting", &pipeline_id);
    cJSON *deal = deal_of(&e, opp);
    ck_assert_str_eq(prop(deal, "dealname"), "Acme rollout");
    ck_assert_str_eq(prop(deal, "amount"), "120000");
    ck_assert_str_eq(prop(deal, "pipeline"), pipeline_id);
    ck_assert_str_eq(prop(deal, "dealstage"), prospecting);
    ck_assert_str_eq(prop(deal, "hubspot_owner_id"), owner_id);
    ck_assert_str_eq(prop(deal, "dealtype"), "newbusiness");
    ck_assert_str_eq(prop(deal, "closedate"), "2026-12-31T00:00:00.000Z");
    char company_id[32] = "", contact_id[32] = "";
    ck_assert_int_eq(assoc_count(deal, "companies", 5, company_id, sizeof(company_id)), 1);
    ck_assert_int_eq(assoc_count(deal, "contacts", 3, contact_id, sizeof(contact_id)), 1);
    char *deal_id = xstrdup(sbtest_str(deal, "id"));
    cJSON_Delete(deal);
    cJSON *company = hs_object(&e, "companies", company_id);
    ck_assert_str_eq(prop(company, "salesforceaccountid"), acme);
    ck_assert_str_eq(prop(company, "name"), "Acme Corp");
    ck_assert_str_eq(prop(company, "domain"), "acme.test");
    cJSON_Delete(company);
    cJSON *contact = hs_object(&e, "contacts", contact_id);
    ck_assert_str_eq(prop(contact, "email"), "jane@acme.test");
    ck_assert_str_eq(prop(contact, "salesforcecontactid"), jane);
    cJSON_Delete(contact);
    expect_contact(&e, contact_id, "lifecyclestage", "opportunity");
    expect_contact(&e, contact_id, "dealsync_num_associated_deals", "1");
    expect_contact(&e, contact_id, "dealsync_recent_deal_amount", "120000");
    expect_contact(&e, contact_id, "dealsync_total_revenue", "0");
    /* What dealsync wrote is recorded for echo detection, as {"property": "value"}. */
    ck_assert_int_eq(itest_db_scalar(e.svc.db,
                                     "SELECT count(*) FROM record_link WHERE kind = 'opportunity'"
                                     " AND hs_written->>'amount' = '120000'"),
                     1);

    /* A field change. */
    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":150000,\"Description\":\"Phase two\"}");
    const char *amount_150[] = {"amount", "150000"};
    ck_assert(wait_deal(&e, opp, has_prop, (void *)amount_150, DEADLINE_MS));
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "field change (amount, description)", mark);
    deal = deal_of(&e, opp);
    ck_assert_str_eq(prop(deal, "description"), "Phase two");
    cJSON_Delete(deal);
    expect_detail(&e, opp, "amount");

    /* A duplicate notification: the same state again changes nothing in HubSpot. */
    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"Phase two\"}");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    ck_assert_int_eq(
        e2e_count(&e, mark, "hubspot", "in", "POST", "/crm/v3/objects/deals/batch/upsert"), 0);
    expect_detail(&e, opp, "already matches");
    report(&e, "notification with nothing new", mark);

    /* Two-way: a user changes the amount in HubSpot; a later Salesforce change to another
     * field does not overwrite the newer HubSpot amount. */
    char *deal_path = xasprintf("/_sandbox/hubspot/objects/deals/%s", deal_id);
    ck_assert_int_eq(e2e_sb(&e, "PATCH", deal_path, "{\"properties\":{\"amount\":\"999\"}}", NULL),
                     200);
    free(deal_path);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Description\":\"Phase three\"}");
    const char *phase3[] = {"description", "Phase three"};
    ck_assert(wait_deal(&e, opp, has_prop, (void *)phase3, DEADLINE_MS));
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    deal = deal_of(&e, opp);
    ck_assert_str_eq(prop(deal, "amount"), "999");
    cJSON_Delete(deal);
    /* The Salesforce change's sync keeps the newer amount when it runs first; when the deal's
     * webhook is handled first, the amount is already in Salesforce and nothing is to keep
     * (both orders happen: the webhook and the outbound message arrive milliseconds apart). */
    if (!has_detail(&e, deal_id, "Amount=999"))
        expect_detail(&e, opp, "amount kept");
    /* ... and the HubSpot-to-Salesforce direction carries the newer amount over: both agree. */
    struct sf_amount want999 = {&e, opp, 999};
    ck_assert(itest_wait_for(sf_amount_is, &want999, DEADLINE_MS));
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));

    /* A stage change to Closed Won moves the deal; the contact becomes a customer. */
    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"StageName\":\"Closed Won\"}");
    char *won = stage_id(&e, pipeline_label, "Closed Won", NULL);
    const char *stage_won[] = {"dealstage", won};
    ck_assert(wait_deal(&e, opp, has_prop, (void *)stage_won, DEADLINE_MS));
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "stage change (closed won, contact roll-ups)", mark);
    expect_contact(&e, contact_id, "lifecyclestage", "customer");
    expect_contact(&e, contact_id, "dealsync_total_revenue", "999");
    expect_contact(&e, contact_id, "dealsync_recent_deal_close_date", "2026-12-31T00:00:00.000Z");

    /* The opportunity moves to another account: the deal's company follows. */
    mark = e2e_mark(&e);
    char *globex = sf_find(&e, "Account", "Name", "Globex");
    json = xasprintf("{\"AccountId\":\"%s\"}", globex);
    e2e_sf_update(&e, "Opportunity", opp, json);
    free(json);
    struct company_check to_globex = {&e, globex};
    ck_assert_msg(wait_deal(&e, opp, only_company_of, &to_globex, DEADLINE_MS),
                  "the deal never moved to the new account's company");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "account changed (company created, old association removed)", mark);
    free(globex);

    /* A contact role added (no outbound message: found by polling). */
    mark = e2e_mark(&e);
    json = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\"}", opp, john);
    char *role_john = e2e_sf_create(&e, "OpportunityContactRole", json);
    free(json);
    int two = 2;
    ck_assert_msg(wait_deal(&e, opp, contacts_are, &two, DEADLINE_MS), "john never associated");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "contact role added (polled)", mark);

    /* A contact role removed: its association goes, and the contact's roll-ups follow. */
    mark = e2e_mark(&e);
    sf_delete(&e, "OpportunityContactRole", role_john);
    ck_assert_msg(wait_deal(&e, opp, contacts_are, &one, DEADLINE_MS), "john never removed");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "contact role removed (polled)", mark);
    deal = deal_of(&e, opp);
    char left[32] = "";
    assoc_count(deal, "contacts", 3, left, sizeof(left));
    ck_assert_str_eq(left, contact_id);
    cJSON_Delete(deal);

    /* A second, newer and open opportunity for Jane: recent deal amount follows the most
     * recently created deal, total revenue stays the closed-won sum, and the lifecycle stage
     * does not move back from customer. */
    mark = e2e_mark(&e);
    json = xasprintf("{\"Name\":\"Acme support\",\"StageName\":\"Qualification\","
                     "\"CloseDate\":\"2027-03-31\",\"Amount\":5000,\"AccountId\":\"%s\","
                     "\"RecordTypeId\":\"%s\"}",
                     acme, rt);
    char *opp2 = e2e_sf_create(&e, "Opportunity", json);
    free(json);
    json = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\"}", opp2, jane);
    char *role2 = e2e_sf_create(&e, "OpportunityContactRole", json);
    free(json);
    ck_assert(wait_deal(&e, opp2, contacts_are, &one, DEADLINE_MS));
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "second opportunity, existing company and contact", mark);
    expect_contact(&e, contact_id, "dealsync_num_associated_deals", "2");
    expect_contact(&e, contact_id, "dealsync_recent_deal_amount", "5000");
    expect_contact(&e, contact_id, "dealsync_total_revenue", "999");
    expect_contact(&e, contact_id, "lifecyclestage", "customer");
    /* The older deal changing does not make it the recent one. */
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":160000}");
    expect_contact(&e, contact_id, "dealsync_total_revenue", "160000");
    expect_contact(&e, contact_id, "dealsync_recent_deal_amount", "5000");

    /* A delete: no outbound message, but its contact role goes with it, so the contact-role
     * poller's event reads the opportunity and finds it deleted (getDeleted would report it
     * within a minute otherwise; the batch scenario shows that path). */
    mark = e2e_mark(&e);
    sf_delete(&e, "Opportunity", opp2);
    ck_assert_msg(wait_deal(&e, opp2, is_gone, NULL, DELETE_DEADLINE_MS), "deal never deleted");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "opportunity with a contact role deleted (found by polling)", mark);
    expect_detail(&e, opp2, "deleted in salesforce");
    expect_contact(&e, contact_id, "dealsync_num_associated_deals", "1");
    expect_contact(&e, contact_id, "dealsync_recent_deal_amount", "160000");

    /* No echo: the only field dealsync wrote to Salesforce is the amount a user changed in
     * HubSpot (two-way, newest wins); nothing it carried to HubSpot came back. */
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(*) FROM record_link,"
                                               " jsonb_object_keys(sf_written) AS k WHERE kind ="
                                               " 'opportunity' AND k NOT IN"
                                               " ('HubSpot_Deal_Id__c', 'Amount')"),
                     0);
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(*) FROM sync_event WHERE source = "
                                               "'salesforce' AND status = 'dead'"),
                     0);
    deal = deal_of(&e, opp);
    ck_assert_str_eq(sbtest_str(deal, "id"), deal_id);
    cJSON_Delete(deal);

    free(role2);
    free(opp2);
    free(won);
    free(role_john);
    free(deal_id);
    free(prospecting);
    free(pipeline_id);
    free(pipeline_label);
    free(role_jane);
    free(opp);
    free(rt);
    free(john);
    free(jane);
    free(acme);
    free(owner_id);
    e2e_stop(&e);
}
END_TEST

static bool has_outcome(void *arg)
{
    void **a = arg;
    return outcomes(a[0], a[1], a[2]) > 0;
}

/* The switch off, then on with company sync off and a pipeline limit of one: no company
 * association, an unknown picklist value and an unmatched owner are reported, and a second
 * record type is not synced. */
START_TEST(switch_company_sync_and_limits)
{
    struct e2e e;
    const char *env[] = {"COMPANY_SYNC=false", "SYNC_PIPELINE_LIMIT=1", NULL};
    e2e_start(&e, "e2e_s2h_switch", env, NULL, false);
    char *acme = sf_find(&e, "Account", "Name", "Acme Corp");
    char *renewal = sf_find(&e, "RecordType", "DeveloperName", "Renewal");
    char *json = xasprintf("{\"Name\":\"Switched\",\"StageName\":\"Prospecting\","
                           "\"CloseDate\":\"2026-12-31\",\"Amount\":10,\"AccountId\":\"%s\","
                           "\"Type\":\"Existing Customer - Upgrade\"}",
                           acme);
    long long mark = e2e_mark(&e);
    char *opp = e2e_sf_create(&e, "Opportunity", json);
    free(json);
    void *skipped[] = {&e, opp, "skipped"};
    ck_assert(itest_wait_for(has_outcome, skipped, DEADLINE_MS));
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "sync deals off (skipped)", mark);
    expect_detail(&e, opp, "sync deals is off");
    ck_assert_ptr_null(deal_of(&e, opp));

    ck_assert_int_eq(sync_setting_set(e.svc.db, SYNC_SETTING_SYNC_DEALS, "on"), ERR_OK);
    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":20}");
    const char *amount_20[] = {"amount", "20"};
    ck_assert(wait_deal(&e, opp, has_prop, (void *)amount_20, DEADLINE_MS));
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "new opportunity, company sync off", mark);
    cJSON *deal = deal_of(&e, opp);
    ck_assert_int_eq(assoc_count(deal, "companies", 0, NULL, 0), 0);
    ck_assert_str_eq(prop(deal, "dealtype"), "");
    ck_assert_str_eq(prop(deal, "hubspot_owner_id"), "");
    cJSON_Delete(deal);
    expect_detail(&e, opp, "company sync is off");
    expect_detail(&e, opp, "Type not written: no hubspot option for value");
    expect_detail(&e, opp, "owner left as it is");

    /* A second record type would need a second pipeline: past the limit, not synced. */
    json = xasprintf("{\"Name\":\"Renewal\",\"StageName\":\"Prospecting\","
                     "\"CloseDate\":\"2026-12-31\",\"RecordTypeId\":\"%s\"}",
                     renewal);
    char *opp2 = e2e_sf_create(&e, "Opportunity", json);
    free(json);
    void *skipped2[] = {&e, opp2, "skipped"};
    ck_assert(itest_wait_for(has_outcome, skipped2, DEADLINE_MS));
    expect_detail(&e, opp2, "pipeline limit reached");
    ck_assert_ptr_null(deal_of(&e, opp2));
    ck_assert_int_eq(fields_written_back(&e), 0);
    free(opp2);
    free(opp);
    free(renewal);
    free(acme);
    e2e_stop(&e);
}
END_TEST

static bool fault_fired(void *arg)
{
    struct e2e *e = arg;
    cJSON *f = NULL;
    e2e_sb(e, "GET", "/_sandbox/faults", NULL, &f);
    const cJSON *rule = cJSON_GetArrayItem(cJSON_GetObjectItem(f, "rules"), 0);
    const cJSON *fired = cJSON_GetObjectItem(rule, "fired");
    bool ok = cJSON_IsNumber(fired) && fired->valuedouble >= 1;
    cJSON_Delete(f);
    return ok;
}

/* Duplicated and reordered notifications, a HubSpot 429 and an expired Salesforce token. */
START_TEST(duplicates_order_and_faults)
{
    struct e2e e;
    e2e_start(&e, "e2e_s2h_faults", NULL, NULL, true);

    /* Every notification (and webhook) delivered twice, and shuffled: still one deal, with the
     * final state. */
    ck_assert_int_eq(e2e_sb(&e, "PUT", "/_sandbox/faults",
                            "{\"rules\":[],\"delivery\":{\"duplicate_rate\":1,"
                            "\"reorder_rate\":1}}",
                            NULL),
                     200);
    long long mark = e2e_mark(&e);
    char *opp = e2e_sf_create(&e, "Opportunity",
                              "{\"Name\":\"Dup\",\"StageName\":\"Prospecting\","
                              "\"CloseDate\":\"2026-12-31\",\"Amount\":1}");
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":2}");
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":3}");
    const char *amount_3[] = {"amount", "3"};
    ck_assert(wait_deal(&e, opp, has_prop, (void *)amount_3, DEADLINE_MS));
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "duplicated and reordered notifications (3 changes)", mark);
    cJSON *search = NULL;
    char *body = xasprintf("{\"filterGroups\":[{\"filters\":[{\"propertyName\":\"" OPP_PROP
                           "\",\"operator\":\"EQ\",\"value\":\"%s\"}]}]}",
                           opp);
    ck_assert_int_eq(e2e_sb(&e, "POST", "/crm/v3/objects/deals/search", body, &search), 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(search, "results")), 1);
    cJSON_Delete(search);
    free(body);
    cJSON *om = NULL;
    ck_assert_int_eq(e2e_sb(&e, "GET", "/_sandbox/salesforce/outbound", NULL, &om), 200);
    const cJSON *dups = cJSON_GetObjectItem(om, "duplicatesSent");
    ck_assert_msg(cJSON_IsNumber(dups) && dups->valuedouble >= 1, "no duplicate was sent");
    cJSON_Delete(om);

    /* A stale notification arriving late (an outbound message retried after newer ones):
     * the handler reads the current state, so the deal keeps the newest amount. */
    cJSON *payload = cJSON_Parse("{\"fields\":{\"Amount\":\"1.0\"}}");
    struct queue_event_in late = {"salesforce", "late-redelivery",  "Opportunity",
                                  opp,          "outbound_message", util_now_ms() - 3600000,
                                  payload,      QUEUE_PRIORITY_LIVE};
    size_t stored = 0;
    ck_assert_int_eq(queue_push(e.svc.db, &late, 1, &stored), ERR_OK);
    ck_assert_int_eq(stored, 1);
    cJSON_Delete(payload);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    cJSON *deal = deal_of(&e, opp);
    ck_assert_str_eq(prop(deal, "amount"), "3");
    cJSON_Delete(deal);
    expect_detail(&e, opp, "already matches");
    ck_assert_int_eq(e2e_sb(&e, "DELETE", "/_sandbox/faults", NULL, NULL), 200);

    /* HubSpot answers 429 to the deal upsert three times in a row: sent again in place twice
     * after each Retry-After, then the record is deferred (no attempt counted) and synced
     * after the hint. */
    ck_assert_int_eq(e2e_sb(&e, "PUT", "/_sandbox/faults",
                            "{\"rules\":[{\"method\":\"POST\",\"path\":"
                            "\"/crm/v3/objects/deals/batch/upsert\",\"status\":429,"
                            "\"retry_after\":\"1\",\"count\":3}]}",
                            NULL),
                     200);
    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":4}");
    const char *amount_4[] = {"amount", "4"};
    ck_assert(wait_deal(&e, opp, has_prop, (void *)amount_4, DEADLINE_MS));
    ck_assert(fault_fired(&e));
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "hubspot 429 on the upsert, then retried", mark);
    ck_assert_int_ge(outcomes(&e, opp, "deferred"), 1);
    ck_assert_int_eq(e2e_sb(&e, "DELETE", "/_sandbox/faults", NULL, NULL), 200);

    /* Salesforce expires every token: dealsync fetches a new one and carries on. */
    ck_assert_int_eq(e2e_sb(&e, "POST", "/_sandbox/salesforce/tokens/expire", NULL, NULL), 200);
    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":5}");
    const char *amount_5[] = {"amount", "5"};
    ck_assert(wait_deal(&e, opp, has_prop, (void *)amount_5, DEADLINE_MS));
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "salesforce token expired mid-sync", mark);
    ck_assert_int_ge(e2e_count(&e, mark, "salesforce", "in", "POST", "/services/oauth2/token"), 1);

    /* A notification read after the opportunity was deleted (it was queued before the delete):
     * the read finds the opportunity in the recycle bin and the deal goes at once. */
    mark = e2e_mark(&e);
    sf_delete(&e, "Opportunity", opp);
    cJSON *stale = cJSON_Parse("{\"fields\":{\"Amount\":\"5.0\"}}");
    struct queue_event_in after = {"salesforce", "read-after-delete", "Opportunity",
                                   opp,          "outbound_message",  util_now_ms(),
                                   stale,        QUEUE_PRIORITY_LIVE};
    ck_assert_int_eq(queue_push(e.svc.db, &after, 1, &stored), ERR_OK);
    cJSON_Delete(stale);
    ck_assert_msg(wait_deal(&e, opp, is_gone, NULL, DEADLINE_MS), "deal never deleted");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "notification read after a delete (deal deleted)", mark);
    expect_detail(&e, opp, "found deleted when read");
    ck_assert_int_eq(fields_written_back(&e), 0);
    free(opp);
    e2e_stop(&e);
}
END_TEST

static bool three_deals(void *arg)
{
    void **a = arg;
    struct e2e *e = a[0];
    char **opps = a[1];
    for (int i = 0; i < 3; i++) {
        cJSON *d = deal_of(e, opps[i]);
        cJSON_Delete(d);
        if (!d)
            return false;
    }
    return true;
}

/* A claimed batch of several records costs the calls of one: one SOQL query for all the
 * opportunities, one for their contact roles, one deal upsert. And the start-up setup: the
 * unique opportunity id property and the roll-up properties exist; a mapping naming a field
 * that does not exist stops dealsync at start. */
START_TEST(batch_and_setup)
{
    struct e2e e;
    /* One worker: with two, the second may claim part of the batch (SKIP LOCKED). */
    const char *one_worker[] = {"WORKER_THREADS=1", NULL};
    e2e_start(&e, "e2e_s2h_batch", one_worker, NULL, false);
    char *opps[3];
    for (int i = 0; i < 3; i++) {
        char *json = xasprintf("{\"Name\":\"Batch %d\",\"StageName\":\"Prospecting\","
                               "\"CloseDate\":\"2026-12-31\",\"Amount\":%d}",
                               i, 100 * (i + 1));
        opps[i] = e2e_sf_create(&e, "Opportunity", json);
        free(json);
        void *skipped[] = {&e, opps[i], "skipped"};
        ck_assert(itest_wait_for(has_outcome, skipped, DEADLINE_MS));
    }
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    ck_assert_int_eq(sync_setting_set(e.svc.db, SYNC_SETTING_SYNC_DEALS, "on"), ERR_OK);
    /* The three records arrive in one transaction, so one worker claims them together (as a
     * resync would queue them). */
    long long mark = e2e_mark(&e);
    struct queue_event_in evs[3];
    char keys[3][32];
    cJSON *payload = cJSON_CreateObject();
    for (int i = 0; i < 3; i++) {
        snprintf(keys[i], sizeof(keys[i]), "batch-%d", i);
        evs[i] =
            (struct queue_event_in){"salesforce",  keys[i], "Opportunity",      opps[i], "resync",
                                    util_now_ms(), payload, QUEUE_PRIORITY_LIVE};
    }
    size_t stored = 0;
    ck_assert_int_eq(queue_push(e.svc.db, evs, 3, &stored), ERR_OK);
    ck_assert_int_eq(stored, 3);
    cJSON_Delete(payload);
    void *arg[] = {&e, opps};
    ck_assert_msg(itest_wait_for(three_deals, arg, DEADLINE_MS), "the three deals never appeared");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "batch of 3 new opportunities (one claim)", mark);
    ck_assert_int_eq(
        e2e_count(&e, mark, "hubspot", "in", "POST", "/crm/v3/objects/deals/batch/create"), 1);
    /* One query read the three opportunities with their contact roles (a subquery); no query
     * of the roles on their own. */
    const char *opp_query[] = {"FROM%20OpportunityContactRoles",
                               "FROM%20Opportunity%20WHERE%20Id%20IN",
                               opps[0],
                               opps[1],
                               opps[2],
                               NULL};
    const char *role_query[] = {"FROM%20OpportunityContactRole%20WHERE%20OpportunityId%20IN",
                                opps[0], opps[1], opps[2], NULL};
    ck_assert_int_ge(sf_queries(&e, mark, opp_query), 1);
    ck_assert_int_eq(sf_queries(&e, mark, role_query), 0);

    /* A delete with nothing else to notice it: getDeleted reports it once its minute is over. */
    mark = e2e_mark(&e);
    sf_delete(&e, "Opportunity", opps[0]);
    ck_assert_msg(wait_deal(&e, opps[0], is_gone, NULL, DELETE_DEADLINE_MS), "deal never deleted");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    report(&e, "opportunity deleted (getDeleted)", mark);
    expect_detail(&e, opps[0], "reported by getDeleted");
    for (int i = 0; i < 3; i++)
        free(opps[i]);

    cJSON *def = NULL;
    ck_assert_int_eq(e2e_sb(&e, "GET", "/crm/v3/properties/deals/" OPP_PROP, NULL, &def), 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(def, "hasUniqueValue")));
    cJSON_Delete(def);
    ck_assert_int_eq(
        e2e_sb(&e, "GET", "/crm/v3/properties/contacts/dealsync_total_revenue", NULL, NULL), 200);

    /* A mapping to a field Opportunity does not have: reported at start, and dealsync stops. */
    char *mappings = xasprintf("%s/bad-mappings.json", itest_env("TEST_TMPDIR"));
    FILE *f = fopen(mappings, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[{\"salesforce\":\"No_Such_Field__c\",\"hubspot\":\"closed_won_reason\","
          "\"rule\":\"two_way\"}]",
          f);
    fclose(f);
    char *text = NULL;
    ck_assert_int_ne(e2e_run_worker_with_mappings(&e, mappings, &text), 0);
    ck_assert_msg(text && strstr(text, "mapped salesforce field does not exist") &&
                      strstr(text, "No_Such_Field__c"),
                  "start-up did not report the missing field");
    free(text);
    free(mappings);
    e2e_stop(&e);
}
END_TEST

Suite *suite_e2e_sf_to_hs(void);
Suite *suite_e2e_sf_to_hs(void)
{
    Suite *s = suite_create("e2e_sf_to_hs");
    const struct itest_case cases[] = {{"lifecycle", opportunity_lifecycle},
                                       {"switch", switch_company_sync_and_limits},
                                       {"faults", duplicates_order_and_faults},
                                       {"batch", batch_and_setup}};
    itest_add_cases(s, cases, sizeof cases / sizeof cases[0], 300);
    return s;
}
