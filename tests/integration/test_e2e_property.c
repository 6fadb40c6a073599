/* test_e2e_property.c - a model-based property test over the standard mapping kinds (text,
 * number, date, picklist, stage, owner), both directions running: a seeded sequence of single
 * user edits on either side, values that map and values that cannot (a picklist value with no
 * option, an owner with no user on the other side). After each edit settles, every field on
 * both sides is what the model says (the edit, carried or not), and dealsync wrote nothing to the
 * side the user edited: a value one direction wrote, skipped or could not map never travels back
 * (issue 10). The standard fields are two-way; the other sync rules are covered per direction
 * in test_e2e_hs_to_sf.c. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"
#include "itest.h"
#include "util.h"

#define DEADLINE_MS 60000
#define ROUNDS 16

enum field { F_NAME, F_AMOUNT, F_CLOSE, F_TYPE, F_DESC, F_STAGE, F_OWNER, F_COUNT };

static const char *const sf_names[F_COUNT] = {"Name",        "Amount",    "CloseDate", "Type",
                                              "Description", "StageName", "OwnerId"};
static const char *const hs_names[F_COUNT] = {
    "dealname", "amount", "closedate", "dealtype", "description", "dealstage", "hubspot_owner_id"};

/* What the test knows of the world: the ids the values name. */
struct world {
    struct e2e e;
    char *opp;
    char *deal;
    char alice_user[32], integration_user[32]; /* Salesforce users */
    char alice_owner[32], carol_owner[32];     /* HubSpot owners; carol has no Salesforce user */
    char stages[3][64];                        /* three open stages of the deal's pipeline */
    char stage_ids[3][32];                     /* and their HubSpot ids */
    char model_sf[F_COUNT][128];
    char model_hs[F_COUNT][128];
};

/* The value of field f on a side as text, normalised (dates to the day, numbers as %.15g). */
static void side_text(const struct world *w, bool is_sf, enum field f, const cJSON *rec, char *out,
                      size_t n)
{
    if (is_sf) {
        e2e_sf_text(rec, sf_names[f], out, n);
    } else {
        snprintf(out, n, "%s", e2e_prop(rec, hs_names[f]));
        if (f == F_CLOSE && strlen(out) > 10)
            out[10] = '\0';
        if (f == F_AMOUNT && out[0]) {
            double d = strtod(out, NULL);
            snprintf(out, n, "%.15g", d);
        }
    }
    (void)w;
}

/* The other side's value for a value set on one side, or NULL when it has none there. */
static const char *mapped(const struct world *w, bool from_sf, enum field f, const char *v)
{
    switch (f) {
    case F_TYPE:
        if (from_sf)
            return strcmp(v, "New Business") == 0 ? "newbusiness" : NULL;
        return strcmp(v, "newbusiness") == 0 ? "New Business" : NULL;
    case F_STAGE:
        for (int i = 0; i < 3; i++) {
            if (from_sf && strcmp(v, w->stages[i]) == 0)
                return w->stage_ids[i];
            if (!from_sf && strcmp(v, w->stage_ids[i]) == 0)
                return w->stages[i];
        }
        return NULL;
    case F_OWNER:
        if (from_sf)
            return strcmp(v, w->alice_user) == 0 ? w->alice_owner : NULL;
        return strcmp(v, w->alice_owner) == 0 ? w->alice_user : NULL;
    default:
        return v;
    }
}

/* A value for an edit of field f on a side, different from the current one. */
static void pick(const struct world *w, bool is_sf, enum field f, unsigned *seed, int round,
                 char *out, size_t n)
{
    const char *now = is_sf ? w->model_sf[f] : w->model_hs[f];
    for (int tries = 0; tries < 20; tries++) {
        int r = rand_r(seed);
        switch (f) {
        case F_NAME:
        case F_DESC:
            snprintf(out, n, "%s %s %d", is_sf ? "sf" : "hs", f == F_NAME ? "name" : "text", round);
            break;
        case F_AMOUNT:
            snprintf(out, n, "%d", 1000 + r % 90000);
            break;
        case F_CLOSE:
            snprintf(out, n, "2027-%02d-%02d", 1 + r % 12, 1 + r % 28);
            break;
        case F_TYPE:
            snprintf(out, n, "%s",
                     is_sf ? (r % 2 ? "New Business" : "Existing Customer - Upgrade")
                           : "newbusiness");
            break;
        case F_STAGE:
            snprintf(out, n, "%s", is_sf ? w->stages[r % 3] : w->stage_ids[r % 3]);
            break;
        case F_OWNER:
            snprintf(out, n, "%s",
                     is_sf ? (r % 2 ? w->alice_user : w->integration_user)
                           : (r % 2 ? w->alice_owner : w->carol_owner));
            break;
        default:
            break;
        }
        if (strcmp(out, now) != 0)
            return;
    }
}

static void read_both(struct world *w, char sf[F_COUNT][128], char hs[F_COUNT][128])
{
    cJSON *o = e2e_sf_get(&w->e, "Opportunity", w->opp);
    cJSON *d = e2e_hs_get(&w->e, "deals", w->deal);
    ck_assert_ptr_nonnull(o);
    ck_assert_ptr_nonnull(d);
    for (int f = 0; f < F_COUNT; f++) {
        side_text(w, true, f, o, sf[f], 128);
        side_text(w, false, f, d, hs[f], 128);
    }
    cJSON_Delete(o);
    cJSON_Delete(d);
}

static int writes_to(struct world *w, bool is_sf, long long mark)
{
    if (is_sf)
        return e2e_count(&w->e, mark, "salesforce", "in", "PATCH", "/services/data") +
               e2e_count(&w->e, mark, "salesforce", "in", "POST", "/services/data") +
               e2e_count(&w->e, mark, "salesforce", "in", "DELETE", "/services/data");
    return e2e_count(&w->e, mark, "hubspot", "in", "POST", "/crm/v3/objects/deals/batch/u") +
           e2e_count(&w->e, mark, "hubspot", "in", "POST", "/crm/v3/objects/deals/batch/create") +
           e2e_count(&w->e, mark, "hubspot", "in", "PATCH", "/crm/v3/objects/deals");
}

static void find_id(struct e2e *e, const char *path, const char *list_key, const char *field,
                    const char *value, const char *id_key, char *out, size_t n)
{
    cJSON *all = NULL;
    ck_assert_int_eq(e2e_sb(e, "GET", path, NULL, &all), 200);
    const cJSON *list = cJSON_IsArray(all) ? all : cJSON_GetObjectItem(all, list_key);
    const cJSON *r;
    out[0] = '\0';
    cJSON_ArrayForEach(r, list) if (!out[0] && strcmp(sbtest_str(r, field), value) == 0)
        snprintf(out, n, "%s", sbtest_str(r, id_key));
    cJSON_Delete(all);
    ck_assert_msg(out[0], "%s: no %s = %s", path, field, value);
}

static char *make_owner(struct e2e *e, const char *email)
{
    char *body = xasprintf("{\"email\":\"%s\",\"firstName\":\"X\"}", email);
    cJSON *owner = NULL;
    ck_assert_int_eq(e2e_sb(e, "POST", "/_sandbox/hubspot/owners", body, &owner), 201);
    char *id = xstrdup(sbtest_str(owner, "id"));
    cJSON_Delete(owner);
    free(body);
    return id;
}

static bool linked(void *arg)
{
    struct world *w = arg;
    free(w->deal);
    w->deal = e2e_deal_id_of(&w->e, w->opp);
    return w->deal != NULL;
}

START_TEST(nothing_written_skipped_or_unmapped_travels_back)
{
    struct world w;
    memset(&w, 0, sizeof(w));
    e2e_start(&w.e, "e2e_property", NULL, NULL, true);
    find_id(&w.e, "/_sandbox/salesforce/records/User", "records", "Email", "alice@dealsync.test",
            "Id", w.alice_user, sizeof(w.alice_user));
    find_id(&w.e, "/_sandbox/salesforce/records/User", "records", "Email",
            "integration@dealsync.test", "Id", w.integration_user, sizeof(w.integration_user));
    char *alice = make_owner(&w.e, "alice@dealsync.test");
    char *carol = make_owner(&w.e, "carol@elsewhere.test");
    snprintf(w.alice_owner, sizeof(w.alice_owner), "%s", alice);
    snprintf(w.carol_owner, sizeof(w.carol_owner), "%s", carol);
    free(alice);
    free(carol);

    char *json = xasprintf("{\"Name\":\"Property\",\"Amount\":100,\"CloseDate\":\"2027-06-30\","
                           "\"Type\":\"New Business\",\"Description\":\"d0\",\"StageName\":"
                           "\"Prospecting\",\"OwnerId\":\"%s\"}",
                           w.alice_user);
    w.opp = e2e_sf_create(&w.e, "Opportunity", json);
    free(json);
    ck_assert_msg(itest_wait_for(linked, &w, DEADLINE_MS), "the opportunity never synced");
    ck_assert(e2e_wait_idle(&w.e, DEADLINE_MS));
    /* Three open stages of the deal's pipeline (their labels are the Salesforce stage names). */
    cJSON *d = e2e_hs_get(&w.e, "deals", w.deal);
    char *pipeline = xstrdup(e2e_prop(d, "pipeline"));
    cJSON_Delete(d);
    cJSON *all = NULL;
    ck_assert_int_eq(e2e_sb(&w.e, "GET", "/crm/v3/pipelines/deals", NULL, &all), 200);
    const cJSON *p, *st;
    int k = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(all, "results"))
    {
        if (strcmp(sbtest_str(p, "id"), pipeline) != 0)
            continue;
        cJSON_ArrayForEach(st, cJSON_GetObjectItem(p, "stages"))
        {
            const cJSON *meta = cJSON_GetObjectItem(st, "metadata");
            if (k < 3 && strcmp(sbtest_str(meta, "isClosed"), "true") != 0) {
                snprintf(w.stages[k], sizeof(w.stages[k]), "%s", sbtest_str(st, "label"));
                snprintf(w.stage_ids[k], sizeof(w.stage_ids[k]), "%s", sbtest_str(st, "id"));
                k++;
            }
        }
    }
    cJSON_Delete(all);
    free(pipeline);
    ck_assert_int_eq(k, 3);
    read_both(&w, w.model_sf, w.model_hs);

    unsigned seed = 10;
    for (int round = 0; round < ROUNDS; round++) {
        enum field f = (enum field)(rand_r(&seed) % F_COUNT);
        bool is_sf = rand_r(&seed) % 2;
        char v[128];
        pick(&w, is_sf, f, &seed, round, v, sizeof(v));
        long long mark = e2e_mark(&w.e);
        if (is_sf) {
            char *body = strcmp(sf_names[f], "Amount") == 0
                             ? xasprintf("{\"Amount\":%s}", v)
                             : xasprintf("{\"%s\":\"%s\"}", sf_names[f], v);
            e2e_sf_update(&w.e, "Opportunity", w.opp, body);
            free(body);
        } else {
            char *body = f == F_CLOSE ? xasprintf("{\"closedate\":\"%sT00:00:00.000Z\"}", v)
                                      : xasprintf("{\"%s\":\"%s\"}", hs_names[f], v);
            e2e_hs_update(&w.e, "deals", w.deal, body);
            free(body);
        }
        /* The model: the edit, and the other side's value when the edit maps to one. */
        snprintf(is_sf ? w.model_sf[f] : w.model_hs[f], 128, "%s", v);
        const char *other = mapped(&w, is_sf, f, v);
        if (other)
            snprintf(is_sf ? w.model_hs[f] : w.model_sf[f], 128, "%s", other);
        ck_assert_msg(e2e_wait_idle(&w.e, DEADLINE_MS), "round %d: never quiet", round);

        char sf[F_COUNT][128], hs[F_COUNT][128];
        read_both(&w, sf, hs);
        for (int g = 0; g < F_COUNT; g++) {
            ck_assert_msg(strcmp(sf[g], w.model_sf[g]) == 0,
                          "round %d (%s %s = \"%s\"): salesforce %s is \"%s\", expected \"%s\"",
                          round, is_sf ? "salesforce" : "hubspot",
                          is_sf ? sf_names[f] : hs_names[f], v, sf_names[g], sf[g], w.model_sf[g]);
            ck_assert_msg(strcmp(hs[g], w.model_hs[g]) == 0,
                          "round %d (%s %s = \"%s\"): hubspot %s is \"%s\", expected \"%s\"", round,
                          is_sf ? "salesforce" : "hubspot", is_sf ? sf_names[f] : hs_names[f], v,
                          hs_names[g], hs[g], w.model_hs[g]);
        }
        ck_assert_msg(writes_to(&w, is_sf, mark) == 0,
                      "round %d: dealsync wrote back to the side the user edited (%s %s)", round,
                      is_sf ? "salesforce" : "hubspot", is_sf ? sf_names[f] : hs_names[f]);
        ck_assert_int_eq(e2e_events(&w.e, "dead"), 0);
    }
    free(w.deal);
    free(w.opp);
    e2e_stop(&w.e);
}
END_TEST

Suite *suite_e2e_property(void);
Suite *suite_e2e_property(void)
{
    Suite *s = suite_create("e2e_property");
    TCase *tc = tcase_create("both directions");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, nothing_written_skipped_or_unmapped_travels_back);
    suite_add_tcase(s, tc);
    return s;
}
