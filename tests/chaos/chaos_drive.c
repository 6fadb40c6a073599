/* chaos_drive.c - `seed` (users, owners, contacts on both sides, the world file), `drive` (random
 * changes as users make them, on both sides, through the sandbox's control API, and the model of
 * what each record must end as) and `follow-log` (copies the sandbox's request log to disk).
 *
 * The model (model.json) holds, per record pair and per mapped field, the last value a user set
 * on each side and whether that value can still win: a value set on one side stays a candidate
 * only while that side still holds it and the other side does not (its change may not have
 * synced yet, so the two-way rule, "the later second wins", may pick either). When a user sets a
 * field on side B while B already shows side A's value, A's change had synced and can no longer
 * win: only B's value is acceptable at the end. Contact roles follow the same rule. */
#include "chaos.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define CONTROL_SF "/_sandbox/salesforce/records"
#define CONTROL_HS "/_sandbox/hubspot/objects"

struct drive {
    struct chaos_world w;
    cJSON *model; /* {"pairs": [...], "stats": {...}, "last_sf_delete", "last_role_change"} */
    cJSON *pairs;
    int changes;
    double started;
};

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* ---- seed ---- */

static void add_owner(cJSON *owners, const char *email, const char *first)
{
    char *body =
        xasprintf("{\"email\":\"%s\",\"firstName\":\"%s\",\"lastName\":\"Chaos\"}", email, first);
    cJSON *o = chaos_must("POST", "/_sandbox/hubspot/owners", body, 201);
    cJSON_AddStringToObject(owners, chaos_str(o, "id"), email);
    cJSON_Delete(o);
    free(body);
}

int chaos_seed(void)
{
    cJSON *world = cJSON_CreateObject();
    cJSON *users = cJSON_AddObjectToObject(world, "users");
    cJSON *owners = cJSON_AddObjectToObject(world, "owners");
    cJSON *list = chaos_must("GET", CONTROL_SF "/User", NULL, 200);
    const cJSON *r;
    cJSON_ArrayForEach(r, list)
    {
        if (chaos_str(r, "Email"))
            cJSON_AddStringToObject(users, chaos_str(r, "Id"), chaos_str(r, "Email"));
        const char *username = chaos_str(r, "Username");
        if (username && strncmp(username, "integration@", 12) != 0)
            cJSON_AddItemToArray(cJSON_GetObjectItem(world, "sf_owners")
                                     ? cJSON_GetObjectItem(world, "sf_owners")
                                     : cJSON_AddArrayToObject(world, "sf_owners"),
                                 cJSON_CreateString(chaos_str(r, "Id")));
    }
    cJSON_Delete(list);
    add_owner(owners, "alice@dealsync.test", "Alice");
    add_owner(owners, "bob@dealsync.test", "Bob");

    cJSON *stages = cJSON_AddArrayToObject(world, "stages");
    list = chaos_must("GET", CONTROL_SF "/OpportunityStage", NULL, 200);
    cJSON_ArrayForEach(r, list) if (cJSON_IsTrue(cJSON_GetObjectItem(r, "IsActive")))
        cJSON_AddItemToArray(stages, cJSON_CreateString(chaos_str(r, "ApiName")));
    cJSON_Delete(list);
    cJSON *types = cJSON_AddArrayToObject(world, "record_types");
    list =
        chaos_must("GET", CONTROL_SF "/RecordType?field=SobjectType&value=Opportunity", NULL, 200);
    cJSON_ArrayForEach(r, list) cJSON_AddItemToArray(types, cJSON_CreateString(chaos_str(r, "Id")));
    cJSON_Delete(list);
    cJSON *accounts = cJSON_AddArrayToObject(world, "accounts");
    list = chaos_must("GET", CONTROL_SF "/Account", NULL, 200);
    cJSON_ArrayForEach(r, list)
        cJSON_AddItemToArray(accounts, cJSON_CreateString(chaos_str(r, "Id")));
    cJSON_Delete(list);

    cJSON *contacts = cJSON_AddArrayToObject(world, "contacts");
    long n = chaos_env_long("CHAOS_CONTACTS", 12);
    for (long i = 0; i < n; i++) {
        char *email = xasprintf("chaos-c%ld@example.test", i);
        char *body = xasprintf("{\"FirstName\":\"Chaos\",\"LastName\":\"Contact %ld\","
                               "\"Email\":\"%s\"}",
                               i, email);
        cJSON *sf = chaos_must("POST", CONTROL_SF "/Contact", body, 201);
        free(body);
        body = xasprintf("{\"properties\":{\"email\":\"%s\",\"firstname\":\"Chaos\","
                         "\"lastname\":\"Contact %ld\"}}",
                         email, i);
        cJSON *hs = chaos_must("POST", CONTROL_HS "/contacts", body, 201);
        free(body);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "email", email);
        cJSON_AddStringToObject(c, "sf", chaos_str(sf, "Id"));
        cJSON_AddStringToObject(c, "hs", chaos_str(hs, "id"));
        cJSON_AddItemToArray(contacts, c);
        cJSON_Delete(sf);
        cJSON_Delete(hs);
        free(email);
    }
    char *path = chaos_path("world.json");
    chaos_write_json(path, world);
    free(path);
    cJSON_Delete(world);
    return 0;
}

/* ---- follow-log ---- */

int chaos_follow_log(void)
{
    char *out_path = chaos_path("requests.jsonl");
    char *stop_path = chaos_path("stop-log");
    FILE *out = fopen(out_path, "a");
    long long since = 0;
    int failures = 0;
    if (!out)
        return 2;
    for (;;) {
        bool is_stopping = access(stop_path, F_OK) == 0;
        char path[96];
        snprintf(path, sizeof path, "/_sandbox/requests?since=%lld", since);
        cJSON *log = NULL;
        if (chaos_call("GET", path, NULL, &log) != 200) {
            cJSON_Delete(log);
            if (++failures > 50 || is_stopping)
                break;
            sleep_s(0.2);
            continue;
        }
        failures = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(log, "requests"))
        {
            char *line = cJSON_PrintUnformatted(e);
            fprintf(out, "%s\n", line);
            free(line);
            const cJSON *id = cJSON_GetObjectItem(e, "id");
            if (cJSON_IsNumber(id) && (long long)id->valuedouble > since)
                since = (long long)id->valuedouble;
        }
        cJSON_Delete(log);
        fflush(out);
        if (is_stopping)
            break;
        sleep_s(0.3);
    }
    fclose(out);
    free(stop_path);
    free(out_path);
    return 0;
}

/* ---- the model ---- */

static const char *side_name(bool is_sf)
{
    return is_sf ? "sf" : "hs";
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void note(struct drive *d, cJSON *pair, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void note(struct drive *d, cJSON *pair, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *line = xasprintf("%.3f change %d: %s", chaos_now(), d->changes + 1, msg);
    cJSON_AddItemToArray(cJSON_GetObjectItem(pair, "log"), cJSON_CreateString(line));
    free(line);
}

/* A side's state for one field or contact: {"v": value, "set": bool, "live": bool}. */
static cJSON *side_state(cJSON *slot, bool is_sf)
{
    cJSON *s = cJSON_GetObjectItem(slot, side_name(is_sf));
    if (!s) {
        s = cJSON_AddObjectToObject(slot, side_name(is_sf));
        cJSON_AddNullToObject(s, "v");
        cJSON_AddFalseToObject(s, "set");
        cJSON_AddFalseToObject(s, "live");
    }
    return s;
}

/* Sets o[name] (added or replaced). */
static void put(cJSON *o, const char *name, cJSON *v)
{
    if (cJSON_GetObjectItem(o, name))
        cJSON_ReplaceItemInObject(o, name, v);
    else
        cJSON_AddItemToObject(o, name, v);
}

static void put_bool(cJSON *o, const char *name, bool v)
{
    put(o, name, cJSON_CreateBool(v));
}

static void put_str(cJSON *o, const char *name, const char *v)
{
    put(o, name, v ? cJSON_CreateString(v) : cJSON_CreateNull());
}

/* Records that a user set slot's value on one side to v. cur_here is what that side showed
 * just before, cur_there what the other side shows now (is_there_known false: unknown). */
static void model_set(cJSON *slot, bool is_sf, const char *v, const char *cur_here,
                      const char *cur_there, bool is_there_known)
{
    cJSON *here = side_state(slot, is_sf);
    cJSON *there = side_state(slot, !is_sf);
    const char *there_v = cJSON_GetStringValue(cJSON_GetObjectItem(there, "v"));
    bool there_live = cJSON_IsTrue(cJSON_GetObjectItem(there, "live")) && is_there_known &&
                      same(cur_there, there_v) && !same(cur_here, there_v);
    put_bool(there, "live", there_live);
    put_str(here, "v", v);
    put_bool(here, "set", true);
    put_bool(here, "live", true);
    put_bool(slot, "unknown", false);
}

static cJSON *new_pair(struct drive *d, bool is_sf, const char *opp, const char *deal)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "n", cJSON_GetArraySize(d->pairs));
    cJSON_AddStringToObject(p, "origin", side_name(is_sf));
    put_str(p, "opp", opp);
    put_str(p, "deal", deal);
    cJSON_AddStringToObject(p, "state", "live");
    cJSON_AddArrayToObject(p, "deals_seen");
    if (deal)
        cJSON_AddItemToArray(cJSON_GetObjectItem(p, "deals_seen"), cJSON_CreateString(deal));
    cJSON *fields = cJSON_AddObjectToObject(p, "fields");
    for (int f = 0; f < CF_COUNT; f++)
        cJSON_AddFalseToObject(cJSON_AddObjectToObject(fields, chaos_field_names[f]), "unknown");
    cJSON_AddObjectToObject(p, "contacts");
    cJSON_AddArrayToObject(p, "log");
    cJSON_AddItemToArray(d->pairs, p);
    return p;
}

static const char *pair_state(const cJSON *p)
{
    return chaos_str(p, "state");
}

static void save_model(struct drive *d)
{
    cJSON *stats = cJSON_GetObjectItem(d->model, "stats");
    put(stats, "changes", cJSON_CreateNumber(d->changes));
    put(stats, "seconds", cJSON_CreateNumber(chaos_now() - d->started));
    char *path = chaos_path("model.json");
    chaos_write_json(path, d->model);
    free(path);
}

static void count_op(struct drive *d, const char *op)
{
    cJSON *ops = cJSON_GetObjectItem(cJSON_GetObjectItem(d->model, "stats"), "ops");
    cJSON *n = cJSON_GetObjectItem(ops, op);
    if (n)
        cJSON_SetNumberValue(n, n->valuedouble + 1);
    else
        cJSON_AddNumberToObject(ops, op, 1);
    d->changes++;
}

/* ---- reading both sides ---- */

static cJSON *read_opp(const char *id)
{
    if (!id)
        return NULL;
    char *path = xasprintf(CONTROL_SF "/Opportunity/%s", id);
    cJSON *o = NULL;
    int status = chaos_call("GET", path, NULL, &o);
    free(path);
    if (status != 200 || cJSON_IsTrue(cJSON_GetObjectItem(o, "IsDeleted"))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *read_deal(const char *id)
{
    if (!id)
        return NULL;
    char *path = xasprintf(CONTROL_HS "/deals/%s", id);
    cJSON *o = NULL;
    int status = chaos_call("GET", path, NULL, &o);
    free(path);
    if (status != 200 || cJSON_IsTrue(cJSON_GetObjectItem(o, "archived"))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Fills in the pair's other record when dealsync has linked it (the ids each side carries). */
static void discover(cJSON *pair)
{
    const char *opp = chaos_str(pair, "opp");
    const char *deal = chaos_str(pair, "deal");
    if (opp && !deal) {
        cJSON *o = read_opp(opp);
        cJSON *dl = read_deal(chaos_str(o, "HubSpot_Deal_Id__c"));
        const char *back =
            chaos_str(cJSON_GetObjectItem(dl, "properties"), "dealsync_salesforce_opportunity_id");
        if (dl && back && strncmp(back, opp, 15) == 0) {
            put_str(pair, "deal", chaos_str(dl, "id"));
            cJSON_AddItemToArray(cJSON_GetObjectItem(pair, "deals_seen"),
                                 cJSON_CreateString(chaos_str(dl, "id")));
        }
        cJSON_Delete(dl);
        cJSON_Delete(o);
    } else if (deal && !opp) {
        cJSON *dl = read_deal(deal);
        cJSON *o = read_opp(
            chaos_str(cJSON_GetObjectItem(dl, "properties"), "dealsync_salesforce_opportunity_id"));
        if (o)
            put_str(pair, "opp", chaos_str(o, "Id"));
        cJSON_Delete(o);
        cJSON_Delete(dl);
    }
}

/* A random pair in one of the states (NULL-ended), with the id of side is_sf known (after a
 * discovery attempt). NULL when none qualifies in a few tries. */
static cJSON *pick_pair(struct drive *d, bool is_sf, const char *const *states)
{
    int n = cJSON_GetArraySize(d->pairs);
    for (int tries = 0; n > 0 && tries < 12; tries++) {
        cJSON *p = cJSON_GetArrayItem(d->pairs, chaos_rand(n));
        bool ok = false;
        for (const char *const *s = states; *s; s++)
            ok = ok || strcmp(pair_state(p), *s) == 0;
        if (!ok)
            continue;
        discover(p);
        if (chaos_str(p, is_sf ? "opp" : "deal"))
            return p;
    }
    return NULL;
}

/* ---- values a user could set ---- */

static const char *const words[] = {"alpha", "renewal", "pilot",    "expansion", "seats",
                                    "Q3",    "north",   "platinum", "upsell",    "trial"};
static const char *const extras[] = {
    "", "", "", " — café", " \"quoted\"", " & <tag>", " ünïcødé", "\nsecond line"};

static char *random_name(int n)
{
    return xasprintf("Chaos %d %s %s", n, words[chaos_rand(10)], words[chaos_rand(10)]);
}

static char *random_description(void)
{
    if (chaos_rand(20) == 0)
        return NULL;
    return xasprintf("%s %s %d%s", words[chaos_rand(10)], words[chaos_rand(10)], chaos_rand(100000),
                     extras[chaos_rand(8)]);
}

static char *random_amount(void)
{
    if (chaos_rand(20) == 0)
        return NULL;
    static const char *const cents[] = {"00", "00", "50", "25", "99"};
    return xasprintf("%d.%s", 100 + chaos_rand(1000000), cents[chaos_rand(5)]);
}

static char *random_date(void)
{
    time_t t = time(NULL) + (time_t)(chaos_rand(400) - 30) * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    return xasprintf("%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static const char *random_type(void)
{
    return chaos_rand(10) == 0 ? NULL : chaos_sf_types[chaos_rand(CHAOS_TYPE_COUNT)];
}

static const char *random_stage(struct drive *d)
{
    const cJSON *stages = cJSON_GetObjectItem(d->w.json, "stages");
    return cJSON_GetStringValue(cJSON_GetArrayItem(stages, chaos_rand(cJSON_GetArraySize(stages))));
}

static const char *random_of(struct drive *d, const char *list)
{
    const cJSON *a = cJSON_GetObjectItem(d->w.json, list);
    return cJSON_GetStringValue(cJSON_GetArrayItem(a, chaos_rand(cJSON_GetArraySize(a))));
}

/* The owner e-mail as the canonical value, and the id on each side. */
static const char *random_owner_email(void)
{
    return chaos_rand(2) ? "alice@dealsync.test" : "bob@dealsync.test";
}

static const char *id_for_email(const cJSON *map, const char *email)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, map) if (strcmp(e->valuestring, email) == 0) return e->string;
    return NULL;
}

/* A canonical value for field f (caller frees; NULL = clear). */
static char *random_value(struct drive *d, enum chaos_field f, int n)
{
    switch (f) {
    case CF_NAME:
        return random_name(n);
    case CF_STAGE:
        return xstrdup(random_stage(d));
    case CF_AMOUNT:
        return random_amount();
    case CF_CLOSEDATE:
        return random_date();
    case CF_TYPE: {
        const char *t = random_type();
        return t ? xstrdup(t) : NULL;
    }
    case CF_DESCRIPTION:
        return random_description();
    case CF_OWNER:
    case CF_COUNT:
        break;
    }
    return xstrdup(random_owner_email());
}

/* Adds field f = canonical v to a Salesforce body or HubSpot properties object. pipeline is
 * the deal's (for a stage). false when the value has no form on that side. */
static bool put_value(struct drive *d, cJSON *o, bool is_sf, enum chaos_field f, const char *v,
                      const char *pipeline)
{
    const char *name = is_sf ? chaos_sf_fields[f] : chaos_hs_properties[f];
    if (f == CF_AMOUNT && v && is_sf) {
        cJSON_AddNumberToObject(o, name, strtod(v, NULL));
        return true;
    }
    if (!v) {
        if (is_sf)
            cJSON_AddNullToObject(o, name);
        else
            cJSON_AddStringToObject(o, name, "");
        return true;
    }
    const char *out = v;
    char *owned = NULL;
    if (f == CF_OWNER) {
        out = id_for_email(cJSON_GetObjectItem(d->w.json, is_sf ? "users" : "owners"), v);
    } else if (f == CF_STAGE && !is_sf) {
        out = chaos_world_stage_id(&d->w, pipeline, v);
    } else if (f == CF_TYPE && !is_sf) {
        for (int i = 0; i < CHAOS_TYPE_COUNT; i++)
            if (strcmp(v, chaos_sf_types[i]) == 0)
                out = chaos_hs_types[i];
    } else if (f == CF_CLOSEDATE && !is_sf) {
        out = owned = xasprintf("%sT00:00:00.000Z", v);
    }
    if (out)
        cJSON_AddStringToObject(o, name, out);
    free(owned);
    return out != NULL;
}

/* ---- operations: each is one user action; false when it could not be made now ---- */

static bool create_opportunity(struct drive *d)
{
    cJSON *body = cJSON_CreateObject();
    char *values[CF_COUNT];
    int n = cJSON_GetArraySize(d->pairs);
    for (int f = 0; f < CF_COUNT; f++) {
        values[f] = random_value(d, (enum chaos_field)f, n); /* name, stage, date never blank */
        (void)put_value(d, body, true, (enum chaos_field)f, values[f], NULL);
    }
    cJSON_AddStringToObject(body, "RecordTypeId",
                            n < 2 ? cJSON_GetStringValue(cJSON_GetArrayItem(
                                        cJSON_GetObjectItem(d->w.json, "record_types"), n))
                                  : random_of(d, "record_types"));
    if (chaos_rand(3) > 0)
        cJSON_AddStringToObject(body, "AccountId", random_of(d, "accounts"));
    char *text = cJSON_PrintUnformatted(body);
    cJSON *o = chaos_must("POST", CONTROL_SF "/Opportunity", text, 201);
    cJSON *p = new_pair(d, true, chaos_str(o, "Id"), NULL);
    for (int f = 0; f < CF_COUNT; f++) {
        model_set(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "fields"), chaos_field_names[f]), true,
                  values[f], NULL, NULL, false);
        free(values[f]);
    }
    note(d, p, "sf create opportunity %s: %s", chaos_str(o, "Id"), text);
    count_op(d, "sf_create");
    cJSON_Delete(o);
    free(text);
    cJSON_Delete(body);
    return true;
}

static bool create_deal(struct drive *d)
{
    if (cJSON_GetArraySize(d->w.pipelines) == 0)
        return false;
    const cJSON *pl =
        cJSON_GetArrayItem(d->w.pipelines, chaos_rand(cJSON_GetArraySize(d->w.pipelines)));
    const char *pipeline = chaos_str(pl, "id");
    cJSON *body = cJSON_CreateObject();
    cJSON *props = cJSON_AddObjectToObject(body, "properties");
    char *values[CF_COUNT];
    int n = cJSON_GetArraySize(d->pairs);
    bool ok = true;
    for (int f = 0; f < CF_COUNT; f++) {
        values[f] = random_value(d, (enum chaos_field)f, n);
        ok = ok && put_value(d, props, false, (enum chaos_field)f, values[f], pipeline);
    }
    cJSON_AddStringToObject(props, "pipeline", pipeline);
    char *text = cJSON_PrintUnformatted(body);
    if (ok) {
        cJSON *o = chaos_must("POST", CONTROL_HS "/deals", text, 201);
        cJSON *p = new_pair(d, false, NULL, chaos_str(o, "id"));
        for (int f = 0; f < CF_COUNT; f++)
            model_set(cJSON_GetObjectItem(cJSON_GetObjectItem(p, "fields"), chaos_field_names[f]),
                      false, values[f], NULL, NULL, false);
        note(d, p, "hs create deal %s: %s", chaos_str(o, "id"), text);
        count_op(d, "hs_create");
        cJSON_Delete(o);
    }
    for (int f = 0; f < CF_COUNT; f++)
        free(values[f]);
    free(text);
    cJSON_Delete(body);
    return ok;
}

/* Sets one or two fields (or the stage) on one side of a pair, as a user editing the record. */
static bool edit(struct drive *d, bool is_sf, bool is_stage)
{
    static const char *const live[] = {"live", NULL};
    static const char *const live_or_revivable[] = {"live", "hs_deleted", NULL};
    cJSON *p = pick_pair(d, is_sf, is_sf ? live_or_revivable : live);
    if (!p)
        return false;
    bool is_revival = strcmp(pair_state(p), "hs_deleted") == 0;
    /* README: an opportunity changed in the same second as its deal's deletion counts as before
     * it (LastModifiedDate has whole seconds) and brings no deal back; such an edit would make
     * the expected outcome depend on which side of the second each clock read, so none is made
     * then: the driver waits for a later second. */
    const cJSON *deleted_at = cJSON_GetObjectItem(p, "hs_deleted_at");
    if (is_revival && cJSON_IsNumber(deleted_at) &&
        (long long)chaos_now() <= (long long)deleted_at->valuedouble)
        return false;
    cJSON *here = is_sf ? read_opp(chaos_str(p, "opp")) : read_deal(chaos_str(p, "deal"));
    cJSON *there = is_sf ? read_deal(chaos_str(p, "deal")) : read_opp(chaos_str(p, "opp"));
    if (!here) {
        cJSON_Delete(there);
        return false;
    }
    enum chaos_field chosen[2];
    int count = 0;
    if (is_stage) {
        chosen[count++] = CF_STAGE;
    } else {
        static const enum chaos_field editable[] = {CF_NAME, CF_AMOUNT,      CF_CLOSEDATE,
                                                    CF_TYPE, CF_DESCRIPTION, CF_OWNER};
        chosen[count++] = editable[chaos_rand(6)];
        if (chaos_rand(3) == 0) {
            chosen[count] = editable[chaos_rand(6)];
            count += chosen[count] != chosen[0];
        }
    }
    const char *pipeline = chaos_str(cJSON_GetObjectItem(here, "properties"), "pipeline");
    cJSON *body = cJSON_CreateObject();
    cJSON *target = is_sf ? body : cJSON_AddObjectToObject(body, "properties");
    char *values[2] = {NULL, NULL};
    bool ok = true;
    int n = (int)cJSON_GetObjectItem(p, "n")->valuedouble;
    for (int i = 0; i < count; i++) {
        values[i] = random_value(d, chosen[i], n);
        ok = ok && put_value(d, target, is_sf, chosen[i], values[i], pipeline);
    }
    char *text = cJSON_PrintUnformatted(body);
    if (ok) {
        char *path = is_sf ? xasprintf(CONTROL_SF "/Opportunity/%s", chaos_str(p, "opp"))
                           : xasprintf(CONTROL_HS "/deals/%s", chaos_str(p, "deal"));
        cJSON_Delete(chaos_must("PATCH", path, text, 200));
        free(path);
        struct buf what;
        buf_init(&what, 0);
        for (int i = 0; i < count; i++) {
            cJSON *slot =
                cJSON_GetObjectItem(cJSON_GetObjectItem(p, "fields"), chaos_field_names[chosen[i]]);
            char *cur_here = is_sf ? chaos_sf_value(&d->w, here, chosen[i])
                                   : chaos_hs_value(&d->w, here, chosen[i]);
            char *cur_there = !there  ? NULL
                              : is_sf ? chaos_hs_value(&d->w, there, chosen[i])
                                      : chaos_sf_value(&d->w, there, chosen[i]);
            model_set(slot, is_sf, values[i], cur_here, cur_there, there != NULL);
            (void)buf_printf(&what, " %s=%s (was %s here, %s there%s)",
                             chaos_field_names[chosen[i]], values[i] ? values[i] : "(blank)",
                             cur_here ? cur_here : "(blank)", cur_there ? cur_there : "(blank)",
                             cJSON_IsTrue(cJSON_GetObjectItem(side_state(slot, !is_sf), "live"))
                                 ? "; other side's value may still win"
                                 : "");
            free(cur_here);
            free(cur_there);
        }
        note(d, p, "%s edit %s %s:%s", side_name(is_sf), is_sf ? "opportunity" : "deal",
             chaos_str(p, is_sf ? "opp" : "deal"), what.data ? what.data : "");
        buf_clear(&what);
        if (is_revival) {
            /* "a later opportunity change creates a new deal" */
            put_str(p, "state", "live");
            put_str(p, "deal", NULL);
            note(d, p,
                 "a new deal is expected: the opportunity changed after its deal was deleted");
        }
        count_op(d, is_stage ? (is_sf ? "sf_stage" : "hs_stage") : (is_sf ? "sf_edit" : "hs_edit"));
    }
    for (int i = 0; i < count; i++)
        free(values[i]);
    free(text);
    cJSON_Delete(body);
    cJSON_Delete(here);
    cJSON_Delete(there);
    return ok;
}

/* Contact presence on each side: the e-mails of the opportunity's live roles / the deal's
 * associated contacts. */
static bool sf_has_contact(struct drive *d, const char *opp, const char *contact_sf_id,
                           cJSON **roles_out)
{
    char *path = xasprintf(CONTROL_SF "/OpportunityContactRole?field=OpportunityId&value=%s", opp);
    cJSON *roles = chaos_must("GET", path, NULL, 200);
    free(path);
    (void)d;
    bool found = false;
    const cJSON *r;
    cJSON_ArrayForEach(r, roles) if (!cJSON_IsTrue(cJSON_GetObjectItem(r, "IsDeleted")) &&
                                     same(chaos_str(r, "ContactId"), contact_sf_id)) found = true;
    if (roles_out)
        *roles_out = roles;
    else
        cJSON_Delete(roles);
    return found;
}

static bool hs_has_contact(const cJSON *deal, const char *contact_hs_id)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(deal, "associations"))
    {
        if (same(chaos_str(a, "toObjectType"), "contacts") &&
            same(chaos_str(a, "toObjectId"), contact_hs_id))
            return true;
    }
    return false;
}

/* Adds (or removes) a contact on one side: a role in Salesforce, an association in HubSpot. A
 * user removes only what was added on the same side (see docs/chaos.md). */
static bool contact_change(struct drive *d, bool is_sf, bool is_add)
{
    static const char *const live[] = {"live", NULL};
    cJSON *p = pick_pair(d, is_sf, live);
    if (!p)
        return false;
    const cJSON *contacts = cJSON_GetObjectItem(d->w.json, "contacts");
    const cJSON *c = cJSON_GetArrayItem(contacts, chaos_rand(cJSON_GetArraySize(contacts)));
    const char *email = chaos_str(c, "email");
    cJSON *slots = cJSON_GetObjectItem(p, "contacts");
    cJSON *slot = cJSON_GetObjectItem(slots, email);
    if (!is_add && (!slot || !same(chaos_str(slot, "origin"), side_name(is_sf))))
        return false;
    cJSON *deal = read_deal(chaos_str(p, "deal"));
    cJSON *roles = NULL;
    bool in_sf =
        chaos_str(p, "opp") && sf_has_contact(d, chaos_str(p, "opp"), chaos_str(c, "sf"), &roles);
    bool in_hs = deal && hs_has_contact(deal, chaos_str(c, "hs"));
    bool here = is_sf ? in_sf : in_hs;
    bool ok = false;
    if (here == is_add)
        goto out;
    if (is_sf && is_add) {
        char *body = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\","
                               "\"Role\":\"Decision Maker\"}",
                               chaos_str(p, "opp"), chaos_str(c, "sf"));
        cJSON_Delete(chaos_must("POST", CONTROL_SF "/OpportunityContactRole", body, 201));
        free(body);
    } else if (is_sf) {
        const cJSON *r;
        cJSON_ArrayForEach(r, roles)
        {
            if (cJSON_IsTrue(cJSON_GetObjectItem(r, "IsDeleted")) ||
                !same(chaos_str(r, "ContactId"), chaos_str(c, "sf")))
                continue;
            char *path = xasprintf(CONTROL_SF "/OpportunityContactRole/%s", chaos_str(r, "Id"));
            cJSON_Delete(chaos_must("DELETE", path, NULL, 200));
            free(path);
        }
    } else {
        char *body = xasprintf("{\"fromObjectType\":\"deals\",\"fromObjectId\":\"%s\","
                               "\"toObjectType\":\"contacts\",\"toObjectId\":\"%s\"}",
                               chaos_str(p, "deal"), chaos_str(c, "hs"));
        cJSON_Delete(
            chaos_must(is_add ? "PUT" : "DELETE", "/_sandbox/hubspot/associations", body, 200));
        free(body);
    }
    if (!slot) {
        slot = cJSON_AddObjectToObject(slots, email);
        cJSON_AddStringToObject(slot, "origin", side_name(is_sf));
        cJSON_AddFalseToObject(slot, "unknown");
    }
    const char *yes = "present", *no = "absent";
    bool there = is_sf ? in_hs : in_sf;
    model_set(slot, is_sf, is_add ? yes : no, here ? yes : no, there ? yes : no,
              is_sf ? deal != NULL : true);
    note(d, p, "%s %s contact %s (%s)", side_name(is_sf), is_add ? "add" : "remove", email,
         cJSON_IsTrue(cJSON_GetObjectItem(side_state(slot, !is_sf), "live"))
             ? "the other side's last change may still win"
             : "this change must win");
    put(d->model, "last_role_change", cJSON_CreateNumber(chaos_now()));
    count_op(d, is_add ? (is_sf ? "sf_role_add" : "hs_assoc_add")
                       : (is_sf ? "sf_role_remove" : "hs_assoc_remove"));
    ok = true;
out:
    cJSON_Delete(roles);
    cJSON_Delete(deal);
    return ok;
}

static bool delete_record(struct drive *d, bool is_sf)
{
    static const char *const live[] = {"live", NULL};
    cJSON *p = pick_pair(d, is_sf, live);
    if (!p)
        return false;
    char *path = is_sf ? xasprintf(CONTROL_SF "/Opportunity/%s", chaos_str(p, "opp"))
                       : xasprintf(CONTROL_HS "/deals/%s", chaos_str(p, "deal"));
    cJSON *answer = NULL;
    int status = chaos_call("DELETE", path, NULL, &answer);
    cJSON_Delete(answer);
    free(path);
    if (status != 200 && status != 204)
        return false;
    note(d, p, "%s delete %s %s", side_name(is_sf), is_sf ? "opportunity" : "deal",
         chaos_str(p, is_sf ? "opp" : "deal"));
    if (is_sf) {
        put_str(p, "state", "sf_deleted");
        put(d->model, "last_sf_delete", cJSON_CreateNumber(chaos_now()));
    } else {
        /* The opportunity stays; until it changes again nothing may bring a deal back. What the
         * opportunity holds now is whatever it holds: no field or contact is checked against a
         * user's value until a user sets it again. */
        put_str(p, "state", "hs_deleted");
        put(p, "hs_deleted_at", cJSON_CreateNumber(chaos_now()));
        cJSON *slot;
        cJSON_ArrayForEach(slot, cJSON_GetObjectItem(p, "fields")) put_bool(slot, "unknown", true);
        cJSON_ArrayForEach(slot, cJSON_GetObjectItem(p, "contacts"))
            put_bool(slot, "unknown", true);
    }
    count_op(d, is_sf ? "sf_delete" : "hs_delete");
    return true;
}

/* ---- drive ---- */

int chaos_drive(void)
{
    struct drive d = {0};
    long target = chaos_env_long("CHAOS_CHANGES", 10000);
    long seconds = chaos_env_long("CHAOS_SECONDS", 3600);
    double rate = (double)chaos_env_long("CHAOS_RATE", 10);
    chaos_world_load(&d.w);
    d.model = cJSON_CreateObject();
    d.pairs = cJSON_AddArrayToObject(d.model, "pairs");
    cJSON *stats = cJSON_AddObjectToObject(d.model, "stats");
    cJSON_AddNumberToObject(stats, "target", (double)target);
    cJSON_AddNumberToObject(stats, "seed", (double)chaos_env_long("CHAOS_SEED", 1));
    cJSON_AddObjectToObject(stats, "ops");
    cJSON_AddNumberToObject(d.model, "last_sf_delete", 0);
    cJSON_AddNumberToObject(d.model, "last_role_change", 0);
    d.started = chaos_now();
    int attempts = 0;
    while (d.changes < target && chaos_now() - d.started < (double)seconds) {
        sleep_s(d.started + (double)d.changes / rate - chaos_now());
        if (cJSON_GetArraySize(d.w.pipelines) == 0 && d.changes % 10 == 5)
            chaos_world_refresh_pipelines(&d.w);
        int roll = chaos_rand(1000);
        bool made;
        if (d.changes < 4 || roll < 70)
            made = create_opportunity(&d);
        else if (roll < 120)
            made = create_deal(&d);
        else if (roll < 370)
            made = edit(&d, true, false);
        else if (roll < 620)
            made = edit(&d, false, false);
        else if (roll < 680)
            made = edit(&d, true, true);
        else if (roll < 740)
            made = edit(&d, false, true);
        else if (roll < 800)
            made = contact_change(&d, true, true);
        else if (roll < 860)
            made = contact_change(&d, false, true);
        else if (roll < 910)
            made = contact_change(&d, true, false);
        else if (roll < 960)
            made = contact_change(&d, false, false);
        else if (roll < 980)
            made = delete_record(&d, true);
        else
            made = delete_record(&d, false);
        attempts++;
        if (made && d.changes % 100 == 0) {
            save_model(&d);
            fprintf(stderr, "chaos: %d changes in %.0f s\n", d.changes, chaos_now() - d.started);
        }
    }
    cJSON_AddNumberToObject(stats, "attempts", attempts);
    save_model(&d);
    fprintf(stderr, "chaos: %d changes made in %.0f s (%d tries)\n", d.changes,
            chaos_now() - d.started, attempts);
    cJSON_Delete(d.model);
    chaos_world_clear(&d.w);
    return 0;
}
