/* test_e2e_calls.c - API calls per record (issues 8 and 9): each cut in the calls the sync makes
 * is guarded here by counting, in the sandbox's request log, the calls a small batch costs, with
 * both directions running as `make run` wires them. What is counted is what would come back if
 * the cut were undone: a read before a write that could not find anything, a read of what
 * dealsync itself wrote. The behaviour stays as docs/two-way.md says, checked on the records. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "hs_client.h"
#include "itest.h"
#include "sbtest.h"
#include "util.h"

#define DEADLINE_MS 90000

static char *new_opportunity(struct e2e *e, const char *name, const char *const *contacts)
{
    char *json = xasprintf("{\"Name\":\"%s\",\"StageName\":\"Prospecting\","
                           "\"CloseDate\":\"2026-12-31\",\"Amount\":100}",
                           name);
    char *opp = e2e_sf_create(e, "Opportunity", json);
    free(json);
    for (size_t i = 0; contacts && contacts[i]; i++) {
        json = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\","
                         "\"Role\":\"Decision Maker\"}",
                         opp, contacts[i]);
        free(e2e_sf_create(e, "OpportunityContactRole", json));
        free(json);
    }
    return opp;
}

struct linked_wait {
    struct e2e *e;
    char **opps;
    int n;
    int contacts; /* contacts each deal must have */
};

static bool all_synced(void *arg)
{
    struct linked_wait *w = arg;
    for (int i = 0; i < w->n; i++) {
        char *deal = e2e_deal_id_of(w->e, w->opps[i]);
        int n = deal ? e2e_deal_contacts(w->e, deal) : -1;
        free(deal);
        if (n != w->contacts)
            return false;
    }
    return true;
}

static void wait_synced(struct e2e *e, char **opps, int n, int contacts)
{
    struct linked_wait w = {e, opps, n, contacts};
    ck_assert_msg(itest_wait_for(all_synced, &w, DEADLINE_MS), "the opportunities did not sync");
    ck_assert(e2e_wait_idle(e, DEADLINE_MS));
    ck_assert_int_eq(e2e_events(e, "dead"), 0);
}

/* A contact's property, read through the control API (not counted as a call). */
static char *contact_prop(struct e2e *e, const char *id, const char *name)
{
    cJSON *c = e2e_hs_get(e, "contacts", id);
    char *v = xstrdup(c ? e2e_prop(c, name) : "");
    cJSON_Delete(c);
    return v;
}

static char *hs_contact_of(struct e2e *e, const char *sf_contact)
{
    const char *params[] = {sf_contact};
    PGresult *r = PQexecParams(
        e->svc.db, "SELECT hs_id FROM record_link WHERE kind = 'contact' AND sf_id = $1", 1, NULL,
        params, NULL, NULL, 0);
    char *id = PQntuples(r) == 1 ? xstrdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    ck_assert_msg(id != NULL, "contact %s not linked", sf_contact);
    return id;
}

/* Salesforce queries of contact roles on their own (not as the opportunities' subquery) since
 * mark. */
static int role_queries(struct e2e *e, long long mark)
{
    cJSON *log = e2e_requests(e, mark);
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, log)
    {
        const char *path = sbtest_str(r, "path");
        const char *role = strstr(sbtest_str(r, "query"), "FROM%20OpportunityContactRole");
        n += strcmp(sbtest_str(r, "system"), "salesforce") == 0 &&
             strcmp(sbtest_str(r, "direction"), "in") == 0 && strlen(path) >= 6 &&
             strcmp(path + strlen(path) - 6, "/query") == 0 && role &&
             role[strlen("FROM%20OpportunityContactRole")] != 's';
    }
    cJSON_Delete(log);
    return n;
}

/* HubSpot calls to path since mark made before the first call to first (all when there is
 * none). */
static int hubspot_calls_before(struct e2e *e, long long mark, const char *path, const char *first)
{
    cJSON *log = e2e_requests(e, mark);
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, log)
    {
        if (strcmp(sbtest_str(r, "system"), "hubspot") != 0 ||
            strcmp(sbtest_str(r, "direction"), "in") != 0)
            continue;
        if (strcmp(sbtest_str(r, "path"), first) == 0)
            break;
        n += strcmp(sbtest_str(r, "path"), path) == 0;
    }
    cJSON_Delete(log);
    return n;
}

#define DEAL_READS "/crm/v3/objects/deals/batch/read"
#define CONTACT_READS "/crm/v3/objects/contacts/batch/read"
#define CONTACT_SEARCHES "/crm/v3/objects/contacts/search"
#define CONTACT_CREATES "/crm/v3/objects/contacts/batch/create"
#define CONTACT_UPDATES "/crm/v3/objects/contacts/batch/update"
#define DEAL_CREATES "/crm/v3/objects/deals/batch/create"
#define DEAL_UPSERTS "/crm/v3/objects/deals/batch/upsert"
#define CONTACT_ASSOCS "/crm/v4/associations/deals/contacts/batch/create"
#define COMPANY_ASSOCS "/crm/v4/associations/deals/companies/batch/create"

/* The HubSpot id linked to a Salesforce record of kind ('account', 'contact', ...). */
static char *linked_hs_id(struct e2e *e, const char *kind, const char *sf_id)
{
    const char *params[] = {kind, sf_id};
    PGresult *r =
        PQexecParams(e->svc.db, "SELECT hs_id FROM record_link WHERE kind = $1 AND sf_id = $2", 2,
                     NULL, params, NULL, NULL, 0);
    char *id = PQntuples(r) == 1 ? xstrdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    ck_assert_msg(id != NULL, "%s %s not linked", kind, sf_id);
    return id;
}

/* An opportunity of account with contact roles for contacts (at most 2), all made while the
 * sandbox delivers no outbound message, the roles in one request: nothing syncs it before
 * `dealsync resync` but the contact-role poller, which finds both roles together. */
static char *quiet_opportunity(struct e2e *e, const char *name, const char *account,
                               const char *const *contacts)
{
    e2e_sb_settings(e, "{\"delivery.drop_rate\":1}");
    char *json = xasprintf("{\"Name\":\"%s\",\"StageName\":\"Prospecting\","
                           "\"CloseDate\":\"2026-12-31\",\"Amount\":100%s%s%s}",
                           name, account ? ",\"AccountId\":\"" : "", account ? account : "",
                           account ? "\"" : "");
    char *opp = e2e_sf_create(e, "Opportunity", json);
    free(json);
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "{\"allOrNone\":true,\"records\":[");
    for (int i = 0; contacts[i]; i++)
        buf_printf(&b,
                   "%s{\"attributes\":{\"type\":\"OpportunityContactRole\"},"
                   "\"OpportunityId\":\"%s\",\"ContactId\":\"%s\"}",
                   i ? "," : "", opp, contacts[i]);
    buf_printf(&b, "]}");
    char *body = buf_steal(&b);
    if (contacts[0])
        ck_assert_int_eq(e2e_sb(e, "POST", "/services/data/v60.0/composite/sobjects", body, NULL),
                         200);
    free(body);
    e2e_sb_settings(e, "{\"delivery.drop_rate\":0}");
    return opp;
}

static void resync(struct e2e *e, const char *opp)
{
    const char *args[] = {"resync", "--opportunity", opp, NULL};
    ck_assert_int_eq(e2e_dealsync(e, args, NULL), 0);
}

/* How many associations of the deal go to object type `to` with id (any id when NULL) and
 * association type type_id (any when 0), read through the control API. */
static int deal_assocs(struct e2e *e, const char *deal, const char *to, const char *id, int type_id)
{
    cJSON *d = e2e_hs_get(e, "deals", deal);
    int n = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(d, "associations"))
    {
        const cJSON *t = cJSON_GetObjectItem(a, "associationTypeId");
        n += strcmp(sbtest_str(a, "toObjectType"), to) == 0 &&
             (!id || strcmp(sbtest_str(a, "toObjectId"), id) == 0) &&
             (type_id == 0 || (cJSON_IsNumber(t) && t->valueint == type_id));
    }
    cJSON_Delete(d);
    return n;
}

/* Opportunities dealsync never linked nor tried are written without a batch read of their
 * deals first: made after sync deals was switched on, or before it (an import) when HubSpot
 * has no deal for them (a_refused_create_reads_the_deal is the case where it has). A linked one
 * is read first. */
START_TEST(new_opportunities_are_written_without_reading_deals)
{
    struct e2e e;
    e2e_start(&e, "e2e_calls_new", NULL, NULL, false);
    /* Made while the switch is off, then imported once it is on. */
    char *before = new_opportunity(&e, "Made before the switch", NULL);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    const char *on[] = {"settings", "sync-deals", "on", NULL};
    ck_assert_int_eq(e2e_dealsync(&e, on, NULL), 0);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    long long mark = e2e_mark(&e);
    const char *import[] = {"import", "salesforce", "--wait", NULL};
    ck_assert_int_eq(e2e_dealsync(&e, import, NULL), 0);
    wait_synced(&e, &before, 1, 0);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_READS), 0);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_CREATES), 1);

    mark = e2e_mark(&e);
    char *opps[3];
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "New opportunity %d", i);
        opps[i] = new_opportunity(&e, name, NULL);
    }
    wait_synced(&e, opps, 3, 0);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_READS), 0);
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_CREATES), 1);
    /* A change to one of them is read first: its deal exists. */
    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opps[0], "{\"Amount\":250}");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    char *deal = e2e_deal_id_of(&e, opps[0]);
    cJSON *d = e2e_hs_get(&e, "deals", deal);
    ck_assert_str_eq(e2e_prop(d, "amount"), "250");
    ck_assert_str_eq(e2e_prop(d, "dealname"), "New opportunity 0");
    cJSON_Delete(d);
    free(deal);
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_READS), 1);
    for (int i = 0; i < 3; i++)
        free(opps[i]);
    free(before);
    e2e_stop(&e);
}
END_TEST

/* The contacts' roll-ups are written from what dealsync knows they hold (what it last wrote):
 * once a contact's roll-ups were written, more deals of the same contacts update them without
 * reading the contacts again, and the opportunities' contact roles come in the opportunities'
 * query. */
START_TEST(rollups_are_written_without_reading_the_contacts)
{
    struct e2e e;
    e2e_start(&e, "e2e_calls_rollups", NULL, NULL, true);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    char *jane = e2e_sf_find(&e, "Contact", "Email", "jane@acme.test");
    char *john = e2e_sf_find(&e, "Contact", "Email", "john@globex.test");
    const char *both[] = {jane, john, NULL};
    char *first = new_opportunity(&e, "First of two", both);
    wait_synced(&e, &first, 1, 2);
    char *hs_jane = hs_contact_of(&e, jane), *hs_john = hs_contact_of(&e, john);
    char *v = contact_prop(&e, hs_jane, "dealsync_num_associated_deals");
    ck_assert_str_eq(v, "1");
    free(v);

    long long mark = e2e_mark(&e);
    char *opps[2];
    opps[0] = new_opportunity(&e, "Second of two", both);
    opps[1] = new_opportunity(&e, "Third of two", both);
    wait_synced(&e, opps, 2, 2);
    const char *ids[] = {hs_jane, hs_john};
    for (int i = 0; i < 2; i++) {
        v = contact_prop(&e, ids[i], "dealsync_num_associated_deals");
        ck_assert_str_eq(v, "3");
        free(v);
        v = contact_prop(&e, ids[i], "lifecyclestage");
        ck_assert_str_eq(v, "opportunity");
        free(v);
    }
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_READS), 0);
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_UPDATES), 1);
    /* The roles came with the opportunities, in the same query. */
    ck_assert_int_eq(role_queries(&e, mark), 0);

    /* The lifecycle stage is also people's: a person moved Jane on to evangelist; when the deal
     * is won dealsync reads her again before moving her to customer, and leaves her where she
     * is (forward only). John moves to customer. */
    e2e_hs_update(&e, "contacts", hs_jane, "{\"lifecyclestage\":\"evangelist\"}");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opps[0], "{\"StageName\":\"Closed Won\"}");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    v = contact_prop(&e, hs_john, "lifecyclestage");
    ck_assert_str_eq(v, "customer");
    free(v);
    v = contact_prop(&e, hs_jane, "lifecyclestage");
    ck_assert_str_eq(v, "evangelist");
    free(v);
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_READS), 1);
    free(opps[0]);
    free(opps[1]);
    free(hs_jane);
    free(hs_john);
    free(first);
    free(john);
    free(jane);
    e2e_stop(&e);
}
END_TEST

/* Contact roles added to an opportunity already synced without any (the contact-role poller
 * finds them): its deal's associations are not read, since dealsync associated no contact with
 * it before and the opportunity has no account; the contacts are associated. A role removed
 * later is told from a read of the deal's contacts, and its association goes. */
START_TEST(roles_added_later_are_associated_without_reads)
{
    struct e2e e;
    e2e_start(&e, "e2e_calls_roles", NULL, NULL, true);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    char *opp = new_opportunity(&e, "Roles come later", NULL);
    wait_synced(&e, &opp, 1, 0);
    char *jane = e2e_sf_find(&e, "Contact", "Email", "jane@acme.test");
    char *john = e2e_sf_find(&e, "Contact", "Email", "john@globex.test");
    long long mark = e2e_mark(&e);
    /* Both roles in one request (as a data load makes them), so the poller finds them together:
     * one found alone would be associated first, and the second pass would then rightly read. */
    char *body = xasprintf("{\"allOrNone\":true,\"records\":["
                           "{\"attributes\":{\"type\":\"OpportunityContactRole\"},"
                           "\"OpportunityId\":\"%s\",\"ContactId\":\"%s\"},"
                           "{\"attributes\":{\"type\":\"OpportunityContactRole\"},"
                           "\"OpportunityId\":\"%s\",\"ContactId\":\"%s\"}]}",
                           opp, jane, opp, john);
    cJSON *made = NULL;
    ck_assert_int_eq(e2e_sb(&e, "POST", "/services/data/v60.0/composite/sobjects", body, &made),
                     200);
    free(body);
    char *roles[2];
    for (int i = 0; i < 2; i++) {
        const char *id = sbtest_str(cJSON_GetArrayItem(made, i), "id");
        ck_assert_ptr_nonnull(id);
        roles[i] = xstrdup(id);
    }
    cJSON_Delete(made);
    wait_synced(&e, &opp, 1, 2);
    /* Reads before the associations were made (a later pass, the poller finding the roles
     * again, reads them: dealsync has associated contacts by then). */
    ck_assert_int_eq(hubspot_calls_before(&e, mark,
                                          "/crm/v4/associations/deals/contacts/batch/read",
                                          "/crm/v4/associations/deals/contacts/batch/create"),
                     0);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST",
                               "/crm/v4/associations/deals/companies/batch/read"),
                     0);
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST",
                               "/crm/v4/associations/deals/contacts/batch/create"),
                     1);

    mark = e2e_mark(&e);
    char *path = xasprintf("/_sandbox/salesforce/records/OpportunityContactRole/%s", roles[1]);
    int status = e2e_sb(&e, "DELETE", path, NULL, NULL);
    ck_assert_msg(status == 200 || status == 204, "delete: %d", status);
    free(path);
    wait_synced(&e, &opp, 1, 1);
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST",
                               "/crm/v4/associations/deals/contacts/batch/read"),
                     1);
    for (int i = 0; i < 2; i++)
        free(roles[i]);
    free(john);
    free(jane);
    free(opp);
    e2e_stop(&e);
}
END_TEST

/* A new deal is created with its account's company (primary) and its contact roles' contacts
 * associated in the same batch create: no association call follows, and no upsert. A change of
 * account on the existing deal still goes through the association calls. */
START_TEST(new_deals_are_created_with_their_associations)
{
    struct e2e e;
    e2e_start(&e, "e2e_calls_inline", NULL, NULL, true);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    char *acme = e2e_sf_find(&e, "Account", "Name", "Acme Corp");
    char *globex = e2e_sf_find(&e, "Account", "Name", "Globex");
    /* Two contacts HubSpot does not have yet. */
    char *jane = e2e_sf_create(&e, "Contact",
                               "{\"LastName\":\"Inline\",\"FirstName\":\"Ada\","
                               "\"Email\":\"ada@inline.test\"}");
    char *john = e2e_sf_create(&e, "Contact",
                               "{\"LastName\":\"Inline\",\"FirstName\":\"Bob\","
                               "\"Email\":\"bob@inline.test\"}");
    const char *both[] = {jane, john, NULL};
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    long long mark = e2e_mark(&e);
    char *opp = quiet_opportunity(&e, "Inline associations", acme, both);
    resync(&e, opp);
    wait_synced(&e, &opp, 1, 2);
    char *deal = e2e_deal_id_of(&e, opp);
    char *company = linked_hs_id(&e, "account", acme);
    ck_assert_int_eq(deal_assocs(&e, deal, "companies", company, HS_ASSOC_DEAL_TO_COMPANY_PRIMARY),
                     1);
    ck_assert_int_eq(deal_assocs(&e, deal, "companies", NULL, HS_ASSOC_DEAL_TO_COMPANY_PRIMARY), 1);
    for (int i = 0; i < 2; i++) {
        char *contact = hs_contact_of(&e, both[i]);
        ck_assert_int_eq(deal_assocs(&e, deal, "contacts", contact, HS_ASSOC_DEAL_TO_CONTACT), 1);
        /* Created with their roll-ups and lifecycle stage, and their names. */
        char *v = contact_prop(&e, contact, "dealsync_num_associated_deals");
        ck_assert_str_eq(v, "1");
        free(v);
        v = contact_prop(&e, contact, "lifecyclestage");
        ck_assert_str_eq(v, "opportunity");
        free(v);
        v = contact_prop(&e, contact, "dealsync_recent_deal_amount");
        ck_assert_str_eq(v, "100");
        free(v);
        v = contact_prop(&e, contact, "firstname");
        ck_assert_str_eq(v, i == 0 ? "Ada" : "Bob");
        free(v);
        free(contact);
    }
    /* Created at once (no read by e-mail first), with nothing left to update. */
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_READS), 0);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_UPDATES), 0);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_CREATES), 1);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_UPSERTS), 0);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_ASSOCS), 0);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", COMPANY_ASSOCS), 0);

    /* The existing deal: its new account's company replaces the old one. */
    mark = e2e_mark(&e);
    char *json = xasprintf("{\"AccountId\":\"%s\"}", globex);
    e2e_sf_update(&e, "Opportunity", opp, json);
    free(json);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    char *other = linked_hs_id(&e, "account", globex);
    ck_assert_int_eq(deal_assocs(&e, deal, "companies", other, HS_ASSOC_DEAL_TO_COMPANY_PRIMARY),
                     1);
    ck_assert_int_eq(deal_assocs(&e, deal, "companies", company, 0), 0);
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST", COMPANY_ASSOCS), 1);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_CREATES), 0);
    ck_assert_int_eq(e2e_deal_contacts(&e, deal), 2);
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    free(other);
    free(company);
    free(deal);
    free(opp);
    free(john);
    free(jane);
    free(globex);
    free(acme);
    e2e_stop(&e);
}
END_TEST

static bool second_passed(void *arg)
{
    return util_now_ms() / 1000 > *(int64_t *)arg / 1000;
}

/* A HubSpot record of type made by hand (a person), through the control API: its id. */
static char *hs_by_hand(struct e2e *e, const char *type, const char *props_json)
{
    char *path = xasprintf("/_sandbox/hubspot/objects/%s", type);
    char *body = xasprintf("{\"properties\":%s}", props_json);
    cJSON *made = NULL;
    int status = e2e_sb(e, "POST", path, body, &made);
    ck_assert_msg(status == 200 || status == 201, "%s create: %d", type, status);
    free(body);
    free(path);
    char *id = xstrdup(sbtest_str(made, "id"));
    cJSON_Delete(made);
    return id;
}

/* A synced pipeline and its first stage: those of a new opportunity's deal (caller deletes). */
static cJSON *synced_deal_sample(struct e2e *e)
{
    char *first = new_opportunity(e, "Synced first", NULL);
    wait_synced(e, &first, 1, 0);
    char *first_deal = e2e_deal_id_of(e, first);
    cJSON *seeded = e2e_hs_get(e, "deals", first_deal);
    free(first_deal);
    free(first);
    return seeded;
}

/* A deal HubSpot already holds with the opportunity's id (made by hand, a second after the
 * opportunity), which dealsync did not read first (the opportunity was never linked nor tried,
 * and has no contact role for the poller to find): the create is refused on the unique
 * property, the deal is read then, and the pair synced as if read first: the deal's name,
 * changed later, is kept (no baseline: the later change wins), it is associated with its
 * company, and no second deal is made. */
START_TEST(a_refused_create_reads_the_deal)
{
    struct e2e e;
    e2e_start(&e, "e2e_calls_refused_create", NULL, NULL, true);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    char *acme = e2e_sf_find(&e, "Account", "Name", "Acme Corp");
    /* The hand-made deal goes in the pipeline and stage of another opportunity's deal. */
    cJSON *seeded = synced_deal_sample(&e);
    e2e_sb_settings(&e, "{\"delivery.drop_rate\":1}");
    char *json = xasprintf("{\"Name\":\"Deal made by hand\",\"StageName\":\"Prospecting\","
                           "\"CloseDate\":\"2026-12-31\",\"Amount\":100,\"AccountId\":\"%s\"}",
                           acme);
    char *opp = e2e_sf_create(&e, "Opportunity", json);
    free(json);
    cJSON *made_opp = e2e_sf_get(&e, "Opportunity", opp);
    int64_t opp_modified = 0;
    ck_assert(util_parse_iso8601_ms(sbtest_str(made_opp, "LastModifiedDate"), &opp_modified));
    cJSON_Delete(made_opp);
    ck_assert(itest_wait_for(second_passed, &opp_modified, DEADLINE_MS));
    char *props = xasprintf("{\"dealname\":\"Made by hand\",\"pipeline\":\"%s\","
                            "\"dealstage\":\"%s\",\"dealsync_salesforce_opportunity_id\":\"%s\"}",
                            e2e_prop(seeded, "pipeline"), e2e_prop(seeded, "dealstage"), opp);
    cJSON_Delete(seeded);
    char *hand = hs_by_hand(&e, "deals", props);
    free(props);
    /* Deliveries stay off: the deal's creation webhook, handled first, would link the pair
     * from the deal's side. */
    long long mark = e2e_mark(&e);
    resync(&e, opp);
    wait_synced(&e, &opp, 1, 0);
    char *deal = e2e_deal_id_of(&e, opp);
    ck_assert_str_eq(deal, hand);
    char *company = linked_hs_id(&e, "account", acme);
    ck_assert_int_eq(deal_assocs(&e, deal, "companies", company, HS_ASSOC_DEAL_TO_COMPANY_PRIMARY),
                     1);
    free(company);
    cJSON *d = e2e_hs_get(&e, "deals", deal);
    ck_assert_str_eq(e2e_prop(d, "dealname"), "Made by hand");
    cJSON_Delete(d);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_CREATES), 1);
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_READS), 1);
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST", COMPANY_ASSOCS), 1);
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    free(deal);
    free(hand);
    free(opp);
    free(acme);
    e2e_stop(&e);
}
END_TEST

/* Runs one contact-role poll now (the interval is an hour in these tests) and waits until it has
 * read past the latest SystemModstamp of opp's roles, then until the queue is idle. */
static void poll_roles_now(struct e2e *e, const char *opp)
{
    char *path = xasprintf("/_sandbox/salesforce/records/OpportunityContactRole?field=OpportunityId"
                           "&value=%s",
                           opp);
    cJSON *roles = NULL;
    ck_assert_int_eq(e2e_sb(e, "GET", path, NULL, &roles), 200);
    free(path);
    const char *latest = "";
    const cJSON *r;
    cJSON_ArrayForEach(r, roles)
    {
        const char *stamp = sbtest_str(r, "SystemModstamp");
        if (stamp && strcmp(stamp, latest) > 0)
            latest = stamp;
    }
    itest_db_exec(e->svc.db, "UPDATE poll_watermark SET last_run_at = NULL"
                             " WHERE name = 'salesforce_contact_roles'");
    char *sql = xasprintf("SELECT count(*) FROM poll_watermark WHERE name ="
                          " 'salesforce_contact_roles' AND last_run_at IS NOT NULL"
                          " AND watermark >= '%s'::timestamptz",
                          latest);
    cJSON_Delete(roles);
    ck_assert_msg(itest_wait_sql(e->svc.db, sql, DEADLINE_MS), "no contact-role poll ran");
    free(sql);
    ck_assert(e2e_wait_idle(e, DEADLINE_MS));
}

/* Whether the sandbox has answered the contact-role poller's query (queryAll on
 * OpportunityContactRole) at least once. */
static bool roles_polled(void *arg)
{
    struct e2e *e = arg;
    cJSON *list = e2e_requests(e, 0);
    bool seen = false;
    const cJSON *r;
    cJSON_ArrayForEach(r, list)
    {
        const char *path = sbtest_str(r, "path");
        const char *query = sbtest_str(r, "query");
        seen = seen || (path && query && strstr(path, "/queryAll") &&
                        strstr(query, "FROM%20OpportunityContactRole"));
    }
    cJSON_Delete(list);
    return seen;
}

/* Contact-role events of opp queued after the event id mark. */
static long long role_events(struct e2e *e, const char *opp, long long mark)
{
    char *sql = xasprintf("SELECT count(*) FROM sync_event WHERE record_id = '%s'"
                          " AND event_type = 'contact_role_changed' AND id > %lld",
                          opp, mark);
    long long n = itest_db_scalar(e->svc.db, sql);
    free(sql);
    return n;
}

/* Opportunities loaded with their contact roles (a data load, or roles added before the
 * outbound message was handled) sync their roles from the opportunity's own read: the poller
 * then finds the roles already synced and queues nothing for them, so a burst is not synced
 * twice. A role deleted later is still queued and its association removed. */
START_TEST(roles_synced_with_their_opportunity_are_not_queued_again)
{
    const char *env[] = {"CONTACT_ROLE_POLL_INTERVAL_SECONDS=3600", NULL};
    struct e2e e;
    e2e_start(&e, "e2e_calls_roles_synced", env, NULL, true);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    char *jane = e2e_sf_find(&e, "Contact", "Email", "jane@acme.test");
    char *john = e2e_sf_find(&e, "Contact", "Email", "john@globex.test");
    const char *contacts[] = {jane, john, NULL};
    /* The poller's first turn (after sync deals is switched on; the next is an hour later) has
     * read the roles before the load, so only the turns this test asks for can see them. */
    ck_assert(itest_wait_for(roles_polled, &e, DEADLINE_MS));
    char **opps = e2e_sf_load_opportunities(&e, 1, "Loaded", contacts);
    wait_synced(&e, opps, 1, 2);
    long long mark = itest_db_scalar(e.svc.db, "SELECT coalesce(max(id), 0) FROM sync_event");
    poll_roles_now(&e, opps[0]);
    ck_assert_int_eq(role_events(&e, opps[0], mark), 0);

    char *path = xasprintf("/_sandbox/salesforce/records/OpportunityContactRole?field=ContactId"
                           "&value=%s",
                           john);
    cJSON *roles = NULL;
    ck_assert_int_eq(e2e_sb(&e, "GET", path, NULL, &roles), 200);
    free(path);
    path = xasprintf("/_sandbox/salesforce/records/OpportunityContactRole/%s",
                     sbtest_str(cJSON_GetArrayItem(roles, 0), "Id"));
    cJSON_Delete(roles);
    int status = e2e_sb(&e, "DELETE", path, NULL, NULL);
    ck_assert_msg(status == 200 || status == 204, "delete: %d", status);
    free(path);
    poll_roles_now(&e, opps[0]);
    wait_synced(&e, opps, 1, 1);
    ck_assert_int_eq(role_events(&e, opps[0], mark), 1);
    free(opps[0]);
    free(opps);
    free(john);
    free(jane);
    e2e_stop(&e);
}
END_TEST

/* Contacts with an e-mail are created without a search by Salesforce contact id first: one
 * HubSpot already has by that e-mail (HubSpot keeps contact e-mails unique and deduplicates by
 * them) is told by the refused create and read by e-mail, and no second contact is made. A
 * contact without an e-mail, which nothing else finds, is still searched by its contact id and
 * found. */
START_TEST(contacts_with_an_email_are_not_searched)
{
    struct e2e e;
    e2e_start(&e, "e2e_calls_contact_search", NULL, NULL, true);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    char *kim = e2e_sf_create(&e, "Contact",
                              "{\"LastName\":\"Known\",\"FirstName\":\"Kim\","
                              "\"Email\":\"kim@known.test\"}");
    char *lee = e2e_sf_create(&e, "Contact",
                              "{\"LastName\":\"New\",\"FirstName\":\"Lee\","
                              "\"Email\":\"lee@new.test\"}");
    char *noel = e2e_sf_create(&e, "Contact", "{\"LastName\":\"Nomail\",\"FirstName\":\"Noel\"}");
    /* Kim is in HubSpot already by her e-mail (a person made her, with another first name);
     * Noel by his Salesforce contact id (no e-mail). */
    char *hs_kim =
        hs_by_hand(&e, "contacts", "{\"email\":\"kim@known.test\",\"firstname\":\"Kimberly\"}");
    char *props = xasprintf("{\"lastname\":\"Nomail\",\"salesforcecontactid\":\"%s\"}", noel);
    char *hs_noel = hs_by_hand(&e, "contacts", props);
    free(props);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));

    long long mark = e2e_mark(&e);
    const char *with_email[] = {kim, lee, NULL};
    char *opp = quiet_opportunity(&e, "Contacts by e-mail", NULL, with_email);
    resync(&e, opp);
    wait_synced(&e, &opp, 1, 2);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_SEARCHES), 0);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_CREATES), 1);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_READS), 1);
    char *linked = hs_contact_of(&e, kim);
    ck_assert_str_eq(linked, hs_kim);
    free(linked);
    /* Hers, not overwritten: dealsync does not own a contact's name. */
    char *v = contact_prop(&e, hs_kim, "firstname");
    ck_assert_str_eq(v, "Kimberly");
    free(v);
    char *deal = e2e_deal_id_of(&e, opp);
    ck_assert_int_eq(deal_assocs(&e, deal, "contacts", hs_kim, HS_ASSOC_DEAL_TO_CONTACT), 1);
    free(deal);

    mark = e2e_mark(&e);
    const char *without[] = {noel, NULL};
    char *other = quiet_opportunity(&e, "Contact without e-mail", NULL, without);
    resync(&e, other);
    wait_synced(&e, &other, 1, 1);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_SEARCHES), 1);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_CREATES), 0);
    linked = hs_contact_of(&e, noel);
    ck_assert_str_eq(linked, hs_noel);
    free(linked);
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    free(other);
    free(opp);
    free(hs_noel);
    free(hs_kim);
    free(noel);
    free(lee);
    free(kim);
    e2e_stop(&e);
}
END_TEST

/* The opportunity of a deal: the Salesforce id linked to it, or NULL. */
static char *opportunity_of(struct e2e *e, const char *deal)
{
    const char *params[] = {deal};
    PGresult *r = PQexecParams(
        e->svc.db, "SELECT sf_id FROM record_link WHERE kind = 'opportunity' AND hs_id = $1", 1,
        NULL, params, NULL, NULL, 0);
    char *id = PQntuples(r) == 1 ? xstrdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return id;
}

static bool deal_linked(void *arg)
{
    void **a = arg;
    char *opp = opportunity_of(a[0], a[1]);
    free(opp);
    return opp != NULL;
}

/* The Salesforce handler's outcomes of opp whose detail holds text. */
static long long outcomes_with(struct e2e *e, const char *opp, const char *text)
{
    const char *params[] = {opp, text};
    PGresult *r = PQexecParams(e->svc.db,
                               "SELECT count(*) FROM sync_outcome WHERE source = 'salesforce'"
                               " AND record_id = $1 AND strpos(detail, $2) > 0",
                               2, NULL, params, NULL, NULL, 0);
    long long n = PQntuples(r) == 1 ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return n;
}

/* A deal made in HubSpot (a synced pipeline, no company, no contacts) becomes an opportunity,
 * whose outbound message only reports dealsync's own write back: it is recognised from the
 * message and the link, without reading the opportunity or the deal again. A user's edit right
 * after is a change (another value), read and synced to the deal. */
START_TEST(own_opportunity_messages_are_not_read)
{
    struct e2e e;
    e2e_start(&e, "e2e_calls_om_echo", NULL, NULL, true);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    /* A synced pipeline and stage: those of an opportunity's deal. */
    cJSON *seeded = synced_deal_sample(&e);
    long long mark = e2e_mark(&e);
    char *props = xasprintf("{\"dealname\":\"Made in HubSpot\",\"pipeline\":\"%s\","
                            "\"dealstage\":\"%s\",\"amount\":\"640\","
                            "\"closedate\":\"2027-03-01T00:00:00.000Z\"}",
                            e2e_prop(seeded, "pipeline"), e2e_prop(seeded, "dealstage"));
    cJSON_Delete(seeded);
    char *deal = hs_by_hand(&e, "deals", props);
    free(props);
    void *arg[] = {&e, deal};
    ck_assert_msg(itest_wait_for(deal_linked, arg, DEADLINE_MS), "no opportunity for the deal");
    char *opp = opportunity_of(&e, deal);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    /* The deal was read once, by the deal handler, and not again for the message. */
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_READS), 1);
    /* The message came, and was taken for dealsync's own write. */
    ck_assert_int_ge(outcomes_with(&e, opp, "only dealsync's own write reported back"), 1);
    ck_assert_int_eq(outcomes_with(&e, opp, "already matches"), 0);
    cJSON *o = e2e_sf_get(&e, "Opportunity", opp);
    char name[64];
    ck_assert_str_eq(e2e_sf_text(o, "Name", name, sizeof(name)), "Made in HubSpot");
    cJSON_Delete(o);

    mark = e2e_mark(&e);
    e2e_sf_update(&e, "Opportunity", opp, "{\"Amount\":725}");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    cJSON *d = e2e_hs_get(&e, "deals", deal);
    ck_assert_str_eq(e2e_prop(d, "amount"), "725");
    ck_assert_str_eq(e2e_prop(d, "dealname"), "Made in HubSpot");
    cJSON_Delete(d);
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_READS), 1);
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    free(opp);
    free(deal);
    e2e_stop(&e);
}
END_TEST

#define SWEEP_DEALS 250
#define DEAL_SEARCHES "/crm/v3/objects/deals/search"

/* The time of the database as text, to wait for sweeps that start after it. */
static char *db_now(struct e2e *e)
{
    PGresult *r = PQexec(e->svc.db, "SELECT now()::text");
    char *t = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return t;
}

/* Waits until a HubSpot sweep has started more than after_s seconds after t (text). */
static void wait_sweep_after(struct e2e *e, const char *t, double after_s)
{
    char *sql = xasprintf("SELECT count(*) FROM poll_watermark WHERE name = 'reconcile_hubspot'"
                          " AND last_run_at > '%s'::timestamptz + make_interval(secs => %f)",
                          t, after_s);
    ck_assert_msg(itest_wait_sql(e->svc.db, sql, DEADLINE_MS), "no hubspot sweep ran");
    free(sql);
}

/* Deal batch reads since mark that asked for deal id (the log keeps request bodies). */
static int reads_of(struct e2e *e, long long mark, const char *id)
{
    cJSON *log = e2e_requests(e, mark);
    char *needle = xasprintf("\"id\":\"%s\"", id);
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, log)
    {
        const char *body = cJSON_GetStringValue(cJSON_GetObjectItem(r, "body"));
        n += strcmp(sbtest_str(r, "path"), DEAL_READS) == 0 && body && strstr(body, needle);
    }
    free(needle);
    cJSON_Delete(log);
    return n;
}

/* A HubSpot sweep over linked deals that are all still there, in a synced pipeline, reads none
 * of them by id: one search counts them. A deal deleted with its webhook lost is still found,
 * and only its half of the book is read. */
START_TEST(a_sweep_counts_the_linked_deals_instead_of_reading_them)
{
    struct e2e e;
    const char *env[] = {"RECONCILE_INTERVAL_SECONDS=2", NULL};
    e2e_start(&e, "e2e_calls_sweep", env, NULL, true);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    cJSON *seeded = synced_deal_sample(&e);
    char *deals[SWEEP_DEALS];
    for (int i = 0; i < SWEEP_DEALS; i++) {
        char *props =
            xasprintf("{\"dealname\":\"Swept %d\",\"pipeline\":\"%s\","
                      "\"dealstage\":\"%s\",\"amount\":\"%d\"}",
                      i, e2e_prop(seeded, "pipeline"), e2e_prop(seeded, "dealstage"), 100 + i);
        deals[i] = hs_by_hand(&e, "deals", props);
        free(props);
    }
    cJSON_Delete(seeded);
    const char *import[] = {"import", "hubspot", "--wait", NULL};
    ck_assert_int_eq(e2e_dealsync(&e, import, NULL), 0);
    char *sql = xasprintf("SELECT count(*) FROM record_link WHERE kind = 'opportunity'"
                          " HAVING count(*) >= %d",
                          SWEEP_DEALS + 1);
    ck_assert_msg(itest_wait_sql(e.svc.db, sql, DEADLINE_MS), "the deals were not all linked");
    free(sql);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    /* The sweeps that see the import's own writes are over. */
    char *t = db_now(&e);
    wait_sweep_after(&e, t, 0);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    free(t);

    long long mark = e2e_mark(&e);
    t = db_now(&e);
    wait_sweep_after(&e, t, 0);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    wait_sweep_after(&e, t, 2.5);
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_SEARCHES), 1);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_READS), 0);
    free(t);

    /* A user deletes a deal; its webhook is lost. */
    e2e_sb_settings(&e, "{\"delivery.drop_rate\":1, \"core.log_body_bytes\":65536}");
    char *api = xasprintf("/crm/v3/objects/deals/%s", deals[7]);
    ck_assert_int_eq(e2e_sb(&e, "DELETE", api, NULL, NULL), 204);
    free(api);
    mark = e2e_mark(&e);
    sql = xasprintf("SELECT count(*) FROM deleted_deal WHERE hs_deal_id = '%s'"
                    " AND NOT EXISTS (SELECT 1 FROM record_link WHERE hs_id = '%s')",
                    deals[7], deals[7]);
    ck_assert_msg(itest_wait_sql(e.svc.db, sql, DEADLINE_MS), "the deletion was never swept");
    free(sql);
    e2e_sb_settings(&e, "{\"delivery.drop_rate\":0}");
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    /* Deals were read (the half holding the deleted one), but however many sweeps ran, never
     * the deals of the other half, where HubSpot counts what dealsync linked. */
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST", DEAL_READS), 1);
    ck_assert_int_eq(reads_of(&e, mark, deals[SWEEP_DEALS - 1]), 0);
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    for (int i = 0; i < SWEEP_DEALS; i++)
        free(deals[i]);
    e2e_stop(&e);
}
END_TEST

#define PROPERTY_READS "/crm/v3/properties/deals"

/* The deal property definitions are read once for every worker of the process and both
 * directions (the copy is shared for API_CACHE_SECONDS): a Salesforce-to-HubSpot batch, then
 * HubSpot deals synced the other way, one batch each. */
START_TEST(deal_property_definitions_are_shared_by_the_workers)
{
    struct e2e e;
    e2e_start(&e, "e2e_calls_defs", NULL, NULL, true);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    long long mark = e2e_mark(&e);
    cJSON *seeded = synced_deal_sample(&e);
    for (int i = 0; i < 4; i++) {
        char *props =
            xasprintf("{\"dealname\":\"Defs %d\",\"pipeline\":\"%s\","
                      "\"dealstage\":\"%s\",\"amount\":\"%d\"}",
                      i, e2e_prop(seeded, "pipeline"), e2e_prop(seeded, "dealstage"), 300 + i);
        char *deal = hs_by_hand(&e, "deals", props);
        free(props);
        void *arg[] = {&e, deal};
        ck_assert_msg(itest_wait_for(deal_linked, arg, DEADLINE_MS), "no opportunity for the deal");
        ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
        free(deal);
    }
    cJSON_Delete(seeded);
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    ck_assert_int_le(e2e_count(&e, mark, "hubspot", "in", "GET", PROPERTY_READS), 1);
    e2e_stop(&e);
}
END_TEST

/* A Salesforce picklist Tier__c (Gold, Platinum, Diamond) and a HubSpot dropdown tier with only
 * gold. */
static void prepare_tier(struct e2e *e)
{
    ck_assert_int_eq(
        e2e_sb(e, "POST", "/services/data/v60.0/tooling/sobjects/CustomField",
               "{\"FullName\":\"Opportunity.Tier__c\",\"Metadata\":{\"label\":\"Tier\","
               "\"type\":\"Picklist\",\"valueSet\":{\"valueSetDefinition\":{\"value\":["
               "{\"fullName\":\"Gold\",\"label\":\"Gold\",\"default\":false},"
               "{\"fullName\":\"Platinum\",\"label\":\"Platinum\",\"default\":false},"
               "{\"fullName\":\"Diamond\",\"label\":\"Diamond\",\"default\":false}]}}}}",
               NULL),
        201);
    ck_assert_int_eq(e2e_sb(e, "POST", "/crm/v3/properties/deals",
                            "{\"name\":\"tier\",\"label\":\"Tier\",\"type\":\"enumeration\","
                            "\"fieldType\":\"select\",\"groupName\":\"dealinformation\","
                            "\"options\":[{\"label\":\"Gold\",\"value\":\"gold\","
                            "\"displayOrder\":0}]}",
                            NULL),
                     201);
}

struct tier_wait {
    struct e2e *e;
    const char *opp;
    const char *tier;
};

static bool deal_has_tier(void *arg)
{
    struct tier_wait *w = arg;
    char *deal = e2e_deal_id_of(w->e, w->opp);
    cJSON *d = deal ? e2e_hs_get(w->e, "deals", deal) : NULL;
    bool is = d && strcmp(e2e_prop(d, "tier"), w->tier) == 0;
    cJSON_Delete(d);
    free(deal);
    return is;
}

/* dealsync with Tier__c and tier mapped two way (prepare_tier; *mappings and *env_mappings are
 * its file and variable, caller frees), and an opportunity of tier Gold synced, so the shared
 * property definitions are read and kept. Returns the opportunity (caller frees). */
static char *start_with_gold_tier(struct e2e *e, const char *name, char **mappings,
                                  char **env_mappings)
{
    *mappings = xasprintf("%s/%s-tier.json", itest_env("TEST_TMPDIR"), name);
    FILE *f = fopen(*mappings, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[{\"salesforce\":\"Tier__c\",\"hubspot\":\"tier\",\"rule\":\"two_way\"}]", f);
    fclose(f);
    *env_mappings = xasprintf("MAPPINGS_FILE=%s", *mappings);
    const char *env[] = {*env_mappings, NULL};
    e2e_start_prepared(e, name, env, NULL, true, prepare_tier);
    ck_assert(e2e_wait_idle(e, DEADLINE_MS));
    char *gold = e2e_sf_create(e, "Opportunity",
                               "{\"Name\":\"Gold tier\",\"StageName\":\"Prospecting\","
                               "\"CloseDate\":\"2026-12-31\",\"Amount\":100,\"Tier__c\":\"Gold\"}");
    struct tier_wait w = {e, gold, "gold"};
    ck_assert_msg(itest_wait_for(deal_has_tier, &w, DEADLINE_MS), "gold never arrived");
    ck_assert(e2e_wait_idle(e, DEADLINE_MS));
    return gold;
}

/* A user adds the option value (label) to the HubSpot dropdown tier, after gold. */
static void add_tier_option(struct e2e *e, const char *value, const char *label)
{
    char *body = xasprintf("{\"options\":[{\"label\":\"Gold\",\"value\":\"gold\","
                           "\"displayOrder\":0},{\"label\":\"%s\",\"value\":\"%s\","
                           "\"displayOrder\":1}]}",
                           label, value);
    ck_assert_int_eq(e2e_sb(e, "PATCH", "/crm/v3/properties/deals/tier", body, NULL), 200);
    free(body);
}

/* Waits until is_done(arg) (what: the value, for the message), then checks that the deal
 * property definitions were read once since mark (again, for the new option) and that nothing
 * died. */
static void assert_read_again_once(struct e2e *e, long long mark, bool (*is_done)(void *),
                                   void *arg, const char *what)
{
    ck_assert_msg(itest_wait_for(is_done, arg, DEADLINE_MS), "%s was left out", what);
    ck_assert(e2e_wait_idle(e, DEADLINE_MS));
    ck_assert_int_eq(e2e_count(e, mark, "hubspot", "in", "GET", PROPERTY_READS), 1);
    ck_assert_int_eq(e2e_events(e, "dead"), 0);
}

/* The shared property definitions are kept for API_CACHE_SECONDS (5 minutes), but an option a
 * user has just added in HubSpot is not left out for that long: a value the shared copy has no
 * option for has the definitions read again, once, and is written. */
START_TEST(an_option_added_in_hubspot_is_used_at_once)
{
    struct e2e e;
    char *mappings = NULL, *env_mappings = NULL;
    char *gold = start_with_gold_tier(&e, "e2e_calls_option", &mappings, &env_mappings);
    add_tier_option(&e, "platinum", "Platinum");
    long long mark = e2e_mark(&e);
    char *platinum =
        e2e_sf_create(&e, "Opportunity",
                      "{\"Name\":\"Platinum tier\",\"StageName\":\"Prospecting\","
                      "\"CloseDate\":\"2026-12-31\",\"Amount\":100,\"Tier__c\":\"Platinum\"}");
    struct tier_wait w2 = {&e, platinum, "platinum"};
    assert_read_again_once(&e, mark, deal_has_tier, &w2, "platinum");
    free(platinum);
    free(gold);
    free(env_mappings);
    free(mappings);
    e2e_stop(&e);
}
END_TEST

static bool opportunity_has_tier(void *arg)
{
    struct tier_wait *w = arg;
    cJSON *o = e2e_sf_get(w->e, "Opportunity", w->opp);
    char text[32];
    bool is = o && strcmp(e2e_sf_text(o, "Tier__c", text, sizeof(text)), w->tier) == 0;
    cJSON_Delete(o);
    return is;
}

/* The same the other way: a deal set to an option a user has just added in HubSpot has the
 * definitions read again, once, and the opportunity gets the option's label. */
START_TEST(an_option_added_in_hubspot_reaches_salesforce_at_once)
{
    struct e2e e;
    char *mappings = NULL, *env_mappings = NULL;
    char *gold = start_with_gold_tier(&e, "e2e_calls_option_back", &mappings, &env_mappings);
    add_tier_option(&e, "diamond", "Diamond");
    e2e_hs_subscribe(&e, "deal.propertyChange", "tier");
    long long mark = e2e_mark(&e);
    char *deal = e2e_deal_id_of(&e, gold);
    e2e_hs_update(&e, "deals", deal, "{\"tier\":\"diamond\"}");
    struct tier_wait w = {&e, gold, "Diamond"};
    assert_read_again_once(&e, mark, opportunity_has_tier, &w, "diamond");
    free(deal);
    free(gold);
    free(env_mappings);
    free(mappings);
    e2e_stop(&e);
}
END_TEST

#define COMPANY_SEARCHES "/crm/v3/objects/companies/search"
#define COMPANY_CREATES "/crm/v3/objects/companies/batch/create"
#define PIPELINE_PATH "/crm/v3/pipelines/deals"
#define DESCRIBE_PATH "/services/data/v60.0/sobjects/Opportunity/describe"
#define OWNERS_PATH "/crm/v3/owners"

/* dealsync with workers workers ("WORKER_THREADS=n") and no sweep, Sync deals off: what is made
 * now is there before the switch, as for an import. */
static void start_for_import(struct e2e *e, const char *name, const char *workers)
{
    const char *env[] = {workers, "RECONCILE_INTERVAL_SECONDS=0", NULL};
    const char *sandbox[] = {"--set", "hubspot.rate_limit_max=100000", NULL};
    e2e_start(e, name, env, sandbox, false);
}

/* Switches Sync deals on and imports the Salesforce side, with the sandbox's faults set to
 * faults (when not NULL) first; returns the mark its calls count from. */
static long long import_after_switch(struct e2e *e, const char *faults)
{
    ck_assert(e2e_wait_idle(e, DEADLINE_MS));
    const char *on[] = {"settings", "sync-deals", "on", NULL};
    ck_assert_int_eq(e2e_dealsync(e, on, NULL), 0);
    ck_assert(e2e_wait_idle(e, DEADLINE_MS));
    if (faults)
        ck_assert_int_eq(e2e_sb(e, "PUT", "/_sandbox/faults", faults, NULL), 200);
    long long mark = e2e_mark(e);
    const char *import[] = {"import", "salesforce", "--wait", NULL};
    ck_assert_int_eq(e2e_dealsync(e, import, NULL), 0);
    ck_assert(e2e_wait_idle(e, DEADLINE_MS));
    ck_assert_int_eq(e2e_events(e, "dead"), 0);
    return mark;
}

/* n opportunities, each of its own new account (with a website when has_website), made before
 * the switch; the account ids into accounts. */
static void opportunities_of_new_accounts(struct e2e *e, int n, bool has_website, char **accounts)
{
    for (int i = 0; i < n; i++) {
        char *json = has_website ? xasprintf("{\"Name\":\"Fresh %d\",\"Website\":"
                                             "\"https://fresh%d.test\"}",
                                             i, i)
                                 : xasprintf("{\"Name\":\"Fresh %d\"}", i);
        accounts[i] = e2e_sf_create(e, "Account", json);
        free(json);
        json = xasprintf("{\"Name\":\"Fresh opportunity %d\",\"StageName\":\"Prospecting\","
                         "\"CloseDate\":\"2026-12-31\",\"Amount\":100,\"AccountId\":\"%s\"}",
                         i, accounts[i]);
        free(e2e_sf_create(e, "Opportunity", json));
        free(json);
    }
}

/* How many HubSpot companies hold an account id (search's total). */
static int companies_holding_ids(struct e2e *e)
{
    cJSON *res = NULL;
    ck_assert_int_eq(e2e_sb(e, "POST", COMPANY_SEARCHES,
                            "{\"filterGroups\":[{\"filters\":[{\"propertyName\":"
                            "\"salesforceaccountid\",\"operator\":\"HAS_PROPERTY\"}]}],"
                            "\"limit\":1}",
                            &res),
                     200);
    int n = cJSON_GetNumberValue(cJSON_GetObjectItem(res, "total"));
    cJSON_Delete(res);
    return n;
}

/* An import's claim of 200 opportunities, each with its own new account, searches the
 * companies in 3 calls (the account ids, then the domains, packed under search's 3,000-character
 * body): two passes of 100, an id search and a domain search each, took 4. Before them one count
 * search finds companies holding account ids (made by hand here), so the ids are searched.
 * Matching is as before: a company holding an account's id is that account's, one with an
 * account's domain and no account id is taken, one with the domain and another account's id is
 * not. */
START_TEST(an_import_batch_searches_its_companies_together)
{
    enum { N = 200 };
    struct e2e e;
    start_for_import(&e, "e2e_calls_companies", "WORKER_THREADS=1");
    char *accounts[N];
    opportunities_of_new_accounts(&e, N, true, accounts);
    char *props = xasprintf("{\"name\":\"Held\",\"salesforceaccountid\":\"%s\"}", accounts[5]);
    char *held = hs_by_hand(&e, "companies", props);
    free(props);
    char *by_domain =
        hs_by_hand(&e, "companies", "{\"name\":\"By domain\",\"domain\":\"fresh7.test\"}");
    char *other = hs_by_hand(&e, "companies",
                             "{\"name\":\"Another account's\",\"domain\":\"fresh9.test\","
                             "\"salesforceaccountid\":\"001000000000000AAA\"}");
    long long mark = import_after_switch(&e, NULL);
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(*) FROM record_link"
                                               " WHERE kind = 'account'"),
                     N);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", COMPANY_SEARCHES), 1 + 3);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", COMPANY_CREATES), 2);
    char *company = linked_hs_id(&e, "account", accounts[5]);
    ck_assert_str_eq(company, held);
    free(company);
    company = linked_hs_id(&e, "account", accounts[7]);
    ck_assert_str_eq(company, by_domain);
    free(company);
    company = linked_hs_id(&e, "account", accounts[9]);
    ck_assert_str_ne(company, other);
    free(company);
    free(other);
    free(by_domain);
    free(held);
    for (int i = 0; i < N; i++)
        free(accounts[i]);
    e2e_stop(&e);
}
END_TEST

/* A first import into a HubSpot where no company holds an account id (and no account linked):
 * one count search finds none, and the 200 accounts are then searched by domain only (2
 * searches, where their ids and domains took 3). Domain matching still works. */
START_TEST(a_first_import_searches_companies_by_domain_only)
{
    enum { N = 200 };
    struct e2e e;
    start_for_import(&e, "e2e_calls_no_held", "WORKER_THREADS=1");
    char *accounts[N];
    opportunities_of_new_accounts(&e, N, true, accounts);
    char *by_domain =
        hs_by_hand(&e, "companies", "{\"name\":\"By domain\",\"domain\":\"fresh7.test\"}");
    long long mark = import_after_switch(&e, NULL);
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(*) FROM record_link"
                                               " WHERE kind = 'account'"),
                     N);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", COMPANY_SEARCHES), 1 + 2);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", COMPANY_CREATES), 2);
    char *company = linked_hs_id(&e, "account", accounts[7]);
    ck_assert_str_eq(company, by_domain);
    free(company);
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(DISTINCT hs_id) FROM record_link"
                                               " WHERE kind = 'account'"),
                     N);
    ck_assert_int_eq(companies_holding_ids(&e), N);
    for (int i = 0; i < N; i++)
        free(accounts[i]);
    free(by_domain);
    e2e_stop(&e);
}
END_TEST

/* The same first import, of accounts without a website (nothing to search by domain), whose
 * first company batch create is done but its answer lost: those companies hold their account
 * ids unlinked, so every later batch searches the ids again, and the batch's retry finds them
 * instead of making each account a second company. */
START_TEST(companies_made_without_a_link_are_searched_by_id)
{
    enum { N = 200 };
    struct e2e e;
    const char *env[] = {"WORKER_THREADS=1",        "RECONCILE_INTERVAL_SECONDS=0",
                         "API_TIMEOUT_MS=2000",     "QUEUE_RETRY_BASE_MS=1000",
                         "QUEUE_RETRY_MAX_MS=2000", NULL};
    const char *sandbox[] = {"--set", "hubspot.rate_limit_max=100000", NULL};
    e2e_start(&e, "e2e_calls_unlinked_companies", env, sandbox, false);
    char *accounts[N];
    opportunities_of_new_accounts(&e, N, false, accounts);
    import_after_switch(&e, "{\"rules\":[{\"method\":\"POST\",\"path\":\"" COMPANY_CREATES
                            "\",\"action\":\"timeout_after_write\",\"hold_ms\":3000,"
                            "\"count\":1}]}");
    ck_assert_int_eq(itest_db_scalar(e.svc.db, "SELECT count(*) FROM record_link"
                                               " WHERE kind = 'account'"),
                     N);
    ck_assert_int_eq(companies_holding_ids(&e), N);
    for (int i = 0; i < N; i++)
        free(accounts[i]);
    e2e_stop(&e);
}
END_TEST

#define CONTACT_ASSOC_READS "/crm/v4/associations/deals/contacts/batch/read"

/* An import of deals made in HubSpot (deliveries lost) whose contacts HubSpot counts none of
 * (num_associated_contacts, read with the deals) reads no contact associations; a deal with a
 * contact has them read, and its contact becomes the opportunity's contact role. */
START_TEST(deals_without_contacts_have_no_contact_associations_read)
{
    enum { N = 20 };
    struct e2e e;
    e2e_start(&e, "e2e_calls_no_contacts", NULL, NULL, true);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    cJSON *seeded = synced_deal_sample(&e);
    ck_assert(e2e_wait_idle(&e, DEADLINE_MS));
    e2e_sb_settings(&e, "{\"delivery.drop_rate\":1}");
    char *deals[N];
    for (int i = 0; i < N; i++) {
        char *props =
            xasprintf("{\"dealname\":\"Alone %d\",\"pipeline\":\"%s\","
                      "\"dealstage\":\"%s\",\"amount\":\"%d\"}",
                      i, e2e_prop(seeded, "pipeline"), e2e_prop(seeded, "dealstage"), 100 + i);
        deals[i] = hs_by_hand(&e, "deals", props);
        free(props);
    }
    long long mark = e2e_mark(&e);
    const char *import[] = {"import", "hubspot", "--wait", NULL};
    ck_assert_int_eq(e2e_dealsync(&e, import, NULL), 0);
    for (int i = 0; i < N; i++) {
        char *opp = opportunity_of(&e, deals[i]);
        ck_assert_msg(opp != NULL, "deal %d not synced", i);
        free(opp);
        free(deals[i]);
    }
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_ASSOC_READS), 0);

    /* A deal with a contact. */
    char *props = xasprintf("{\"dealname\":\"With a contact\",\"pipeline\":\"%s\","
                            "\"dealstage\":\"%s\",\"amount\":\"5\"}",
                            e2e_prop(seeded, "pipeline"), e2e_prop(seeded, "dealstage"));
    char *deal = hs_by_hand(&e, "deals", props);
    free(props);
    char *contact = hs_by_hand(&e, "contacts",
                               "{\"email\":\"counted@example.test\",\"firstname\":\"Counted\","
                               "\"lastname\":\"Once\"}");
    e2e_hs_associate(&e, "PUT", deal, "contacts", contact, HS_ASSOC_DEAL_TO_CONTACT);
    mark = e2e_mark(&e);
    ck_assert_int_eq(e2e_dealsync(&e, import, NULL), 0);
    ck_assert_int_ge(e2e_count(&e, mark, "hubspot", "in", "POST", CONTACT_ASSOC_READS), 1);
    char *opp = opportunity_of(&e, deal);
    ck_assert(opp != NULL);
    char *sf_contact = e2e_sf_find(&e, "Contact", "Email", "counted@example.test");
    ck_assert(sf_contact != NULL);
    char *role = e2e_sf_find(&e, "OpportunityContactRole", "ContactId", sf_contact);
    ck_assert(role != NULL);
    cJSON *r = e2e_sf_get(&e, "OpportunityContactRole", role);
    ck_assert_str_eq(sbtest_str(r, "OpportunityId"), opp);
    cJSON_Delete(r);
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    free(role);
    free(sf_contact);
    free(opp);
    free(contact);
    free(deal);
    cJSON_Delete(seeded);
    e2e_stop(&e);
}
END_TEST

/* n opportunities named "<label> <i>", without an account, made before the switch. */
static void opportunities_without_account(struct e2e *e, int n, const char *label)
{
    for (int i = 0; i < n; i++) {
        char *json = xasprintf("{\"Name\":\"%s %d\",\"StageName\":\"Prospecting\","
                               "\"CloseDate\":\"2026-12-31\",\"Amount\":100}",
                               label, i);
        free(e2e_sf_create(e, "Opportunity", json));
        free(json);
    }
}

/* The first batches of an import reach the workers at once, all of them needing the record
 * type's new pipeline: one worker creates it while the others wait for it, instead of each
 * listing the pipelines, trying the create and listing them again after HubSpot refuses the
 * label (a slow create makes the batches overlap). */
START_TEST(a_new_pipeline_is_created_once_by_concurrent_batches)
{
    enum { N = 400 };
    struct e2e e;
    start_for_import(&e, "e2e_calls_pipeline", "WORKER_THREADS=4");
    opportunities_without_account(&e, N, "Pipeline race");
    long long mark =
        import_after_switch(&e, "{\"rules\":[{\"path\":\"" PIPELINE_PATH "\",\"method\":\"POST\","
                                "\"action\":\"latency\",\"latency_ms\":1500}]}");
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "POST", PIPELINE_PATH), 1);
    ck_assert_int_le(e2e_count(&e, mark, "hubspot", "in", "GET", PIPELINE_PATH), 1);
    e2e_stop(&e);
}
END_TEST

/* The first batches of an import reach the workers at once, each with nothing cached: the
 * Opportunity describe, the owner list and the deal property definitions are read once for the
 * process, the other workers waiting for that read (slowed here, so the batches overlap)
 * instead of each making its own. */
START_TEST(cold_lookups_are_read_once_by_concurrent_batches)
{
    enum { N = 800 };
    struct e2e e;
    start_for_import(&e, "e2e_calls_cold", "WORKER_THREADS=4");
    opportunities_without_account(&e, N, "Cold");
    long long mark = import_after_switch(
        &e, "{\"rules\":[{\"path\":\"" DESCRIBE_PATH "\",\"method\":\"GET\",\"action\":"
            "\"latency\",\"latency_ms\":1500},{\"path\":\"" OWNERS_PATH "\",\"method\":"
            "\"GET\",\"action\":\"latency\",\"latency_ms\":1500},{\"path\":\"" PROPERTY_READS
            "\",\"method\":\"GET\",\"action\":\"latency\",\"latency_ms\":1500}]}");
    ck_assert_int_eq(e2e_count(&e, mark, "salesforce", "in", "GET", DESCRIBE_PATH), 1);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "GET", OWNERS_PATH), 1);
    ck_assert_int_eq(e2e_count(&e, mark, "hubspot", "in", "GET", PROPERTY_READS), 1);
    e2e_stop(&e);
}
END_TEST

Suite *suite_e2e_calls(void);
Suite *suite_e2e_calls(void)
{
    Suite *s = suite_create("e2e_calls");
    const struct itest_case cases[] = {
        {"new_opportunities", new_opportunities_are_written_without_reading_deals},
        {"rollups", rollups_are_written_without_reading_the_contacts},
        {"roles_later", roles_added_later_are_associated_without_reads},
        {"inline_assocs", new_deals_are_created_with_their_associations},
        {"refused_create", a_refused_create_reads_the_deal},
        {"roles_synced", roles_synced_with_their_opportunity_are_not_queued_again},
        {"contact_search", contacts_with_an_email_are_not_searched},
        {"om_echo", own_opportunity_messages_are_not_read},
        {"sweep_counts", a_sweep_counts_the_linked_deals_instead_of_reading_them},
        {"shared_defs", deal_property_definitions_are_shared_by_the_workers},
        {"new_option", an_option_added_in_hubspot_is_used_at_once},
        {"new_option_back", an_option_added_in_hubspot_reaches_salesforce_at_once},
        {"packed_companies", an_import_batch_searches_its_companies_together},
        {"domain_only", a_first_import_searches_companies_by_domain_only},
        {"unlinked_companies", companies_made_without_a_link_are_searched_by_id},
        {"no_contacts", deals_without_contacts_have_no_contact_associations_read},
        {"pipeline_once", a_new_pipeline_is_created_once_by_concurrent_batches},
        {"cold_once", cold_lookups_are_read_once_by_concurrent_batches},
    };
    itest_add_cases(s, cases, sizeof cases / sizeof cases[0], 300);
    return s;
}
