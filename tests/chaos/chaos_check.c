/* chaos_check.c - `check`: waits until dealsync and the sandbox are quiet, then compares both
 * sides record pair by record pair against the model the driver kept (model.json), prints the
 * figures and writes problems.txt with each problem's history: the driver's changes to the
 * pair, its events and outcomes in dealsync's queue tables, and the sandbox's request log lines
 * that name its records. Exit status 1 on any problem. */
#include "chaos.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "util.h"

#define LOG_LINES_PER_PROBLEM 150

enum kind { K_MISMATCH, K_DUPLICATE, K_LOST, K_DEAD, K_COUNT };
static const char *const kind_names[K_COUNT] = {"mismatch", "duplicate", "lost", "dead"};

struct check {
    struct chaos_world w;
    PGconn *db;
    cJSON *model;
    cJSON *opps;        /* every Opportunity, deleted ones included */
    cJSON *deals;       /* every deal, archived ones included */
    cJSON *roles;       /* every OpportunityContactRole */
    cJSON *sf_contacts; /* {sf contact id: email} */
    cJSON *hs_contacts; /* {hs contact id: email} */
    cJSON *claimed;     /* {record id: pair n} */
    cJSON *problems;    /* [{kind, pair, text, ids: []}] */
    int counts[K_COUNT];
};

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_sf_id(const char *a, const char *b)
{
    return a && b && strncmp(a, b, 15) == 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void add_id(cJSON *list, const char *id)
{
    const cJSON *e;
    if (!id || !*id)
        return;
    cJSON_ArrayForEach(e, list) if (strncmp(e->valuestring, id, 15) == 0) return;
    cJSON_AddItemToArray(list, cJSON_CreateString(id));
}

/* Adds a problem of kind k about pair (NULL: none) naming record ids (NULL-ended). */
static void problem(struct check *c, enum kind k, const cJSON *pair, const char *const *ids,
                    const char *fmt, ...) PRINTF_LIKE(5, 6);
static void problem(struct check *c, enum kind k, const cJSON *pair, const char *const *ids,
                    const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "kind", kind_names[k]);
    cJSON_AddNumberToObject(p, "pair", pair ? cJSON_GetObjectItem(pair, "n")->valuedouble : -1);
    cJSON_AddStringToObject(p, "text", text);
    cJSON *list = cJSON_AddArrayToObject(p, "ids");
    for (const char *const *id = ids; id && *id; id++)
        add_id(list, *id);
    if (pair) {
        const cJSON *seen;
        cJSON_ArrayForEach(seen, cJSON_GetObjectItem(pair, "deals_seen"))
            add_id(list, seen->valuestring);
        add_id(list, chaos_str(pair, "opp"));
    }
    cJSON_AddItemToArray(c->problems, p);
    c->counts[k]++;
}

/* ---- quiet ---- */

static long long scalar(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    long long n = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

static void reconnect(struct check *c)
{
    if (c->db && PQstatus(c->db) == CONNECTION_OK)
        return;
    PQfinish(c->db);
    c->db = PQconnectdb(getenv("DATABASE_URL"));
}

/* Open events in dealsync's queue and deliveries waiting in the sandbox; -1 when unknown. */
static long long busy(struct check *c)
{
    reconnect(c);
    long long open =
        scalar(c->db, "SELECT (SELECT count(*) FROM sync_event WHERE status IN ('pending',"
                      " 'running')) + (SELECT count(*) FROM ingest_inbox)");
    cJSON *om = NULL, *hooks = NULL;
    if (open < 0 || chaos_call("GET", "/_sandbox/salesforce/outbound", NULL, &om) != 200 ||
        chaos_call("GET", "/_sandbox/hubspot/webhooks", NULL, &hooks) != 200) {
        cJSON_Delete(om);
        cJSON_Delete(hooks);
        return -1;
    }
    const cJSON *pending = cJSON_GetObjectItem(hooks, "pending");
    const cJSON *in_flight = cJSON_GetObjectItem(hooks, "inFlight");
    long long n = open + cJSON_GetArraySize(cJSON_GetObjectItem(om, "queued")) +
                  (cJSON_IsNumber(pending) ? (long long)pending->valuedouble : 0) +
                  (cJSON_IsNumber(in_flight) ? (long long)in_flight->valuedouble : 0);
    cJSON_Delete(om);
    cJSON_Delete(hooks);
    return n;
}

/* Quiet: nothing open or waiting, twice 3 s apart, and the pollers' windows (deleted
 * opportunities are seen by whole minutes) passed since the last delete. */
static bool wait_quiet(struct check *c, double *quiet_after)
{
    double started = chaos_now();
    long deadline = chaos_env_long("CHAOS_QUIET_SECONDS", 900);
    double settle = (double)chaos_env_long("CHAOS_DELETE_SETTLE_SECONDS", 75);
    double last_delete = cJSON_GetObjectItem(c->model, "last_sf_delete")->valuedouble;
    double last_report = started;
    while (chaos_now() - started < (double)deadline) {
        long long n = busy(c);
        if (n == 0 && chaos_now() > last_delete + settle) {
            sleep_ms(3000);
            if (busy(c) == 0) {
                *quiet_after = chaos_now() - started;
                return true;
            }
        }
        if (chaos_now() - last_report > 30) {
            fprintf(stderr, "chaos: waiting for quiet: %lld open events or deliveries\n", n);
            last_report = chaos_now();
        }
        sleep_ms(1000);
    }
    *quiet_after = chaos_now() - started;
    return false;
}

/* ---- reading both sides ---- */

static cJSON *email_map(const cJSON *records, bool is_sf)
{
    cJSON *map = cJSON_CreateObject();
    const cJSON *r;
    cJSON_ArrayForEach(r, records)
    {
        const char *id = chaos_str(r, is_sf ? "Id" : "id");
        const char *email = is_sf ? chaos_str(r, "Email")
                                  : chaos_str(cJSON_GetObjectItem(r, "properties"), "email");
        if (id && email)
            cJSON_AddStringToObject(map, id, email);
    }
    return map;
}

static void load_state(struct check *c)
{
    c->opps = chaos_must("GET", "/_sandbox/salesforce/records/Opportunity", NULL, 200);
    c->roles = chaos_must("GET", "/_sandbox/salesforce/records/OpportunityContactRole", NULL, 200);
    c->deals = chaos_must("GET", "/_sandbox/hubspot/objects/deals", NULL, 200);
    cJSON *contacts = chaos_must("GET", "/_sandbox/salesforce/records/Contact", NULL, 200);
    c->sf_contacts = email_map(contacts, true);
    cJSON_Delete(contacts);
    contacts = chaos_must("GET", "/_sandbox/hubspot/objects/contacts", NULL, 200);
    c->hs_contacts = email_map(contacts, false);
    cJSON_Delete(contacts);
    chaos_world_refresh_pipelines(&c->w);
}

static bool opp_is_live(const cJSON *o)
{
    return !cJSON_IsTrue(cJSON_GetObjectItem(o, "IsDeleted"));
}

static bool deal_is_live(const cJSON *d)
{
    return !cJSON_IsTrue(cJSON_GetObjectItem(d, "archived"));
}

static const char *deal_opp_id(const cJSON *d)
{
    return chaos_str(cJSON_GetObjectItem(d, "properties"), "dealsync_salesforce_opportunity_id");
}

static bool in_list(const cJSON *list, const char *id)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, list) if (same(e->valuestring, id)) return true;
    return false;
}

/* The live opportunities and deals that belong to a pair: its own ids, and those the other
 * side's id fields point at. Returned arrays hold borrowed records (delete with
 * cJSON_Delete: references only). */
static void pair_records(struct check *c, const cJSON *pair, cJSON **opps, cJSON **deals)
{
    const char *opp = chaos_str(pair, "opp");
    const cJSON *seen = cJSON_GetObjectItem(pair, "deals_seen");
    *opps = cJSON_CreateArray();
    *deals = cJSON_CreateArray();
    cJSON *o, *d;
    cJSON_ArrayForEach(o, c->opps)
    {
        if (!opp_is_live(o))
            continue;
        if (same_sf_id(chaos_str(o, "Id"), opp) ||
            in_list(seen, chaos_str(o, "HubSpot_Deal_Id__c")))
            cJSON_AddItemReferenceToArray(*opps, o);
    }
    cJSON_ArrayForEach(d, c->deals)
    {
        if (!deal_is_live(d))
            continue;
        if (in_list(seen, chaos_str(d, "id")) || same_sf_id(deal_opp_id(d), opp))
            cJSON_AddItemReferenceToArray(*deals, d);
    }
    char n[16];
    snprintf(n, sizeof n, "%d", (int)cJSON_GetObjectItem(pair, "n")->valuedouble);
    cJSON_ArrayForEach(o, *opps) cJSON_AddStringToObject(c->claimed, chaos_str(o, "Id"), n);
    cJSON_ArrayForEach(d, *deals) cJSON_AddStringToObject(c->claimed, chaos_str(d, "id"), n);
}

/* ---- the comparisons ---- */

static bool candidate(const cJSON *slot, const char *value, struct buf *expected)
{
    bool any = false, match = false;
    static const char *const sides[] = {"sf", "hs"};
    for (int i = 0; i < 2; i++) {
        const cJSON *s = cJSON_GetObjectItem(slot, sides[i]);
        if (!cJSON_IsTrue(cJSON_GetObjectItem(s, "set")) ||
            !cJSON_IsTrue(cJSON_GetObjectItem(s, "live")))
            continue;
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(s, "v"));
        (void)buf_printf(expected, "%s%s set %s", any ? " or " : "", sides[i], v ? v : "(blank)");
        any = true;
        match = match || same(v, value);
    }
    return !any || match;
}

static void compare_fields(struct check *c, const cJSON *pair, const cJSON *opp, const cJSON *deal)
{
    const char *ids[] = {chaos_str(opp, "Id"), chaos_str(deal, "id"), NULL};
    for (int f = 0; f < CF_COUNT; f++) {
        char *sv = chaos_sf_value(&c->w, opp, (enum chaos_field)f);
        char *hv = chaos_hs_value(&c->w, deal, (enum chaos_field)f);
        const cJSON *slot =
            cJSON_GetObjectItem(cJSON_GetObjectItem(pair, "fields"), chaos_field_names[f]);
        struct buf expected;
        buf_init(&expected, 0);
        if (!same(sv, hv)) {
            problem(c, K_MISMATCH, pair, ids, "%s differs: opportunity %s has %s, deal %s has %s",
                    chaos_field_names[f], ids[0], sv ? sv : "(blank)", ids[1], hv ? hv : "(blank)");
        } else if (!cJSON_IsTrue(cJSON_GetObjectItem(slot, "unknown")) &&
                   !candidate(slot, sv, &expected)) {
            problem(c, K_LOST, pair, ids,
                    "%s: both sides hold %s, but the last change a user made was: %s",
                    chaos_field_names[f], sv ? sv : "(blank)", expected.data);
        }
        buf_clear(&expected);
        free(sv);
        free(hv);
    }
}

/* The e-mails of the opportunity's live contact roles (duplicates reported) and of the deal's
 * associated contacts. */
static cJSON *sf_contact_set(struct check *c, const cJSON *pair, const cJSON *opp)
{
    cJSON *set = cJSON_CreateObject();
    const cJSON *r;
    cJSON_ArrayForEach(r, c->roles)
    {
        if (cJSON_IsTrue(cJSON_GetObjectItem(r, "IsDeleted")) ||
            !same_sf_id(chaos_str(r, "OpportunityId"), chaos_str(opp, "Id")))
            continue;
        const char *email = chaos_str(c->sf_contacts, chaos_str(r, "ContactId"));
        if (!email)
            email = chaos_str(r, "ContactId");
        if (cJSON_GetObjectItem(set, email)) {
            const char *ids[] = {chaos_str(opp, "Id"), chaos_str(r, "Id"), NULL};
            problem(c, K_DUPLICATE, pair, ids, "opportunity %s has two contact roles for %s",
                    chaos_str(opp, "Id"), email);
            continue;
        }
        cJSON_AddTrueToObject(set, email);
    }
    return set;
}

static cJSON *hs_contact_set(struct check *c, const cJSON *deal)
{
    cJSON *set = cJSON_CreateObject();
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(deal, "associations"))
    {
        if (!same(chaos_str(a, "toObjectType"), "contacts"))
            continue;
        const char *email = chaos_str(c->hs_contacts, chaos_str(a, "toObjectId"));
        if (!email)
            email = chaos_str(a, "toObjectId");
        if (!cJSON_GetObjectItem(set, email))
            cJSON_AddTrueToObject(set, email);
    }
    return set;
}

static void compare_contacts(struct check *c, const cJSON *pair, const cJSON *opp,
                             const cJSON *deal)
{
    const char *ids[] = {chaos_str(opp, "Id"), chaos_str(deal, "id"), NULL};
    cJSON *in_sf = sf_contact_set(c, pair, opp);
    cJSON *in_hs = hs_contact_set(c, deal);
    cJSON *all = cJSON_Duplicate(in_sf, true);
    const cJSON *e;
    cJSON_ArrayForEach(e, in_hs) if (!cJSON_GetObjectItem(all, e->string))
        cJSON_AddTrueToObject(all, e->string);
    const cJSON *slots = cJSON_GetObjectItem(pair, "contacts");
    cJSON_ArrayForEach(e, slots) if (!cJSON_GetObjectItem(all, e->string))
        cJSON_AddTrueToObject(all, e->string);
    cJSON_ArrayForEach(e, all)
    {
        bool sf = cJSON_GetObjectItem(in_sf, e->string) != NULL;
        bool hs = cJSON_GetObjectItem(in_hs, e->string) != NULL;
        const cJSON *slot = cJSON_GetObjectItem(slots, e->string);
        struct buf expected;
        buf_init(&expected, 0);
        if (sf != hs) {
            problem(c, K_MISMATCH, pair, ids, "contact %s: %s on the opportunity, %s on the deal",
                    e->string, sf ? "present" : "absent", hs ? "present" : "absent");
        } else if (!slot && sf) {
            problem(c, K_LOST, pair, ids, "contact %s is on both sides but no user added it",
                    e->string);
        } else if (slot && !cJSON_IsTrue(cJSON_GetObjectItem(slot, "unknown")) &&
                   !candidate(slot, sf ? "present" : "absent", &expected)) {
            problem(c, K_LOST, pair, ids,
                    "contact %s is %s on both sides, but the last change a user made was: %s",
                    e->string, sf ? "present" : "absent", expected.data);
        }
        buf_clear(&expected);
    }
    cJSON_Delete(all);
    cJSON_Delete(in_sf);
    cJSON_Delete(in_hs);
}

static void check_pair(struct check *c, const cJSON *pair)
{
    cJSON *opps, *deals;
    pair_records(c, pair, &opps, &deals);
    int n_opps = cJSON_GetArraySize(opps), n_deals = cJSON_GetArraySize(deals);
    const cJSON *opp = cJSON_GetArrayItem(opps, 0), *deal = cJSON_GetArrayItem(deals, 0);
    const char *state = chaos_str(pair, "state");
    const char *ids[] = {opp ? chaos_str(opp, "Id") : "", deal ? chaos_str(deal, "id") : "", NULL};
    if (n_opps > 1)
        problem(c, K_DUPLICATE, pair, ids, "%d live opportunities for one record", n_opps);
    if (n_deals > 1)
        problem(c, K_DUPLICATE, pair, ids, "%d live deals for one record", n_deals);
    if (strcmp(state, "sf_deleted") == 0) {
        if (n_opps > 0)
            problem(c, K_LOST, pair, ids, "the opportunity a user deleted is back (%s)", ids[0]);
        if (n_deals > 0)
            problem(c, K_LOST, pair, ids, "deal %s still live although its opportunity was deleted",
                    ids[1]);
    } else if (strcmp(state, "hs_deleted") == 0) {
        if (n_deals > 0)
            problem(c, K_LOST, pair, ids,
                    "deal %s live although the user deleted the deal and changed nothing since",
                    ids[1]);
        if (chaos_str(pair, "opp") && n_opps == 0)
            problem(c, K_LOST, pair, ids,
                    "opportunity %s is gone, though only its deal was deleted",
                    chaos_str(pair, "opp"));
    } else if (n_opps == 0 || n_deals == 0) {
        problem(c, K_LOST, pair, ids, "no live %s for the %s created by a user",
                n_opps == 0 ? "opportunity" : "deal",
                same(chaos_str(pair, "origin"), "sf") ? "opportunity" : "deal");
    } else {
        compare_fields(c, pair, opp, deal);
        compare_contacts(c, pair, opp, deal);
    }
    cJSON_Delete(opps);
    cJSON_Delete(deals);
}

static void check_orphans(struct check *c)
{
    const cJSON *o, *d;
    cJSON_ArrayForEach(o, c->opps)
    {
        if (!opp_is_live(o) || cJSON_GetObjectItem(c->claimed, chaos_str(o, "Id")))
            continue;
        const char *ids[] = {chaos_str(o, "Id"), chaos_str(o, "HubSpot_Deal_Id__c"), NULL};
        problem(c, K_DUPLICATE, NULL, ids,
                "opportunity %s (\"%s\", deal id %s) belongs to no record a user made",
                chaos_str(o, "Id"), chaos_str(o, "Name") ? chaos_str(o, "Name") : "",
                ids[1] ? ids[1] : "none");
    }
    cJSON_ArrayForEach(d, c->deals)
    {
        if (!deal_is_live(d) || cJSON_GetObjectItem(c->claimed, chaos_str(d, "id")))
            continue;
        const char *ids[] = {chaos_str(d, "id"), deal_opp_id(d), NULL};
        const char *name = chaos_str(cJSON_GetObjectItem(d, "properties"), "dealname");
        problem(c, K_DUPLICATE, NULL, ids,
                "deal %s (\"%s\", opportunity id %s) belongs to no record a user made",
                chaos_str(d, "id"), name ? name : "", ids[1] ? ids[1] : "none");
    }
}

static void check_dead(struct check *c)
{
    PGresult *r = PQexec(c->db, "SELECT id, source, record_id, event_type, attempts,"
                                " coalesce(last_error, '') FROM sync_event WHERE status = 'dead'"
                                " ORDER BY id");
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
        const char *ids[] = {PQgetvalue(r, i, 2), NULL};
        problem(c, K_DEAD, NULL, ids, "event %s (%s %s of %s) dead after %s attempts: %s",
                PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 3), PQgetvalue(r, i, 2),
                PQgetvalue(r, i, 4), PQgetvalue(r, i, 5));
    }
    PQclear(r);
}

/* ---- the problems file ---- */

static void write_queue_history(struct check *c, FILE *out, const char *id)
{
    char prefix[24];
    snprintf(prefix, sizeof prefix, "%.15s%%", id);
    const char *params[] = {strlen(id) >= 15 ? prefix : id};
    PGresult *r = PQexecParams(
        c->db,
        "SELECT * FROM ("
        " SELECT received_at AS at, 'event ' || id || ' ' || source || ' ' || event_type || ' "
        "occurred ' || occurred_at || ' status ' || status || ' attempts ' || attempts ||"
        " coalesce(' last error: ' || last_error, '') AS line FROM sync_event"
        " WHERE record_id LIKE $1"
        " UNION ALL"
        " SELECT at, 'outcome of event ' || event_id || ' (' || source || ', attempt ' || attempt"
        " || ', ' || worker || '): ' || outcome || coalesce(': ' || detail, '') FROM sync_outcome"
        " WHERE record_id LIKE $1) h ORDER BY at",
        1, NULL, params, NULL, NULL, 0);
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
        fprintf(out, "    %s  %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    PQclear(r);
}

/* The body on one line (whitespace runs as one space), from a little before the first id it
 * names; NULL when there is none. Caller frees. */
static char *compact_body(const char *body, char needles[][24], int n)
{
    if (!body)
        return NULL;
    struct buf b;
    buf_init(&b, 0);
    bool was_space = false;
    for (const char *s = body; *s; s++) {
        bool is_space = *s == ' ' || *s == '\n' || *s == '\r' || *s == '\t';
        if (!is_space || !was_space)
            (void)buf_append(&b, is_space ? " " : s, 1);
        was_space = is_space;
    }
    char *flat = buf_steal(&b);
    buf_clear(&b);
    const char *at = NULL;
    for (int i = 0; i < n && !at; i++)
        at = strstr(flat, needles[i]);
    size_t from = at && at - flat > 120 ? (size_t)(at - flat) - 120 : 0;
    char *out = xstrdup(flat + from);
    free(flat);
    return out;
}

/* The request log lines naming any of the ids (Salesforce ids by their 15-character form). */
static void write_log_history(FILE *out, const cJSON *ids)
{
    char *path = chaos_path("requests.jsonl");
    FILE *in = fopen(path, "r");
    free(path);
    if (!in)
        return;
    char needles[8][24];
    int n = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) if (n < 8 && cJSON_IsString(id))
        snprintf(needles[n++], sizeof needles[0], "%.15s", id->valuestring);
    char *line = NULL;
    size_t cap = 0;
    int shown = 0, more = 0;
    while (getline(&line, &cap, in) > 0) {
        const char *hit = NULL;
        for (int i = 0; i < n && !hit; i++)
            hit = strstr(line, needles[i]);
        /* the driver's own reads are noise here; its writes stay */
        if (!hit || (strstr(line, "\"system\":\"control\"") && strstr(line, "\"method\":\"GET\"")))
            continue;
        if (shown++ < LOG_LINES_PER_PROBLEM) {
            cJSON *e = cJSON_Parse(line);
            char *body = compact_body(chaos_str(e, "body"), needles, n);
            fprintf(
                out, "    #%.0f %.3f %s %s %s %s%s%s -> %d%s%s%s%.300s\n",
                cJSON_GetObjectItem(e, "id") ? cJSON_GetObjectItem(e, "id")->valuedouble : 0,
                cJSON_GetObjectItem(e, "ts") ? cJSON_GetObjectItem(e, "ts")->valuedouble / 1e3 : 0,
                chaos_str(e, "system"), chaos_str(e, "direction"), chaos_str(e, "method"),
                chaos_str(e, "path"), *chaos_str(e, "query") ? "?" : "", chaos_str(e, "query"),
                cJSON_GetObjectItem(e, "status") ? cJSON_GetObjectItem(e, "status")->valueint : -1,
                chaos_str(e, "fault") ? " fault " : "",
                chaos_str(e, "fault") ? chaos_str(e, "fault") : "", body ? " body " : "",
                body ? body : "");
            free(body);
            cJSON_Delete(e);
        } else {
            more++;
        }
    }
    if (more)
        fprintf(out, "    ... %d more lines\n", more);
    free(line);
    fclose(in);
}

static void write_problems(struct check *c)
{
    char *path = chaos_path("problems.txt");
    FILE *out = fopen(path, "w");
    if (!out) {
        free(path);
        return;
    }
    long max = chaos_env_long("CHAOS_PROBLEM_HISTORIES", 60);
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, c->problems)
    {
        int n = (int)cJSON_GetObjectItem(p, "pair")->valuedouble;
        fprintf(out, "== %s: %s\n", chaos_str(p, "kind"), chaos_str(p, "text"));
        if (i++ >= max)
            continue;
        const cJSON *pair =
            n >= 0 ? cJSON_GetArrayItem(cJSON_GetObjectItem(c->model, "pairs"), n) : NULL;
        if (pair) {
            fprintf(out, "  the driver's changes to this record (pair %d):\n", n);
            const cJSON *l;
            cJSON_ArrayForEach(l, cJSON_GetObjectItem(pair, "log"))
                fprintf(out, "    %s\n", l->valuestring);
        }
        const cJSON *id;
        cJSON_ArrayForEach(id, cJSON_GetObjectItem(p, "ids"))
        {
            fprintf(out, "  dealsync's events and outcomes for %s:\n", id->valuestring);
            write_queue_history(c, out, id->valuestring);
        }
        fprintf(out, "  sandbox request log lines naming these records:\n");
        write_log_history(out, cJSON_GetObjectItem(p, "ids"));
        fprintf(out, "\n");
    }
    fclose(out);
    fprintf(stderr, "chaos: problems and their histories in %s\n", path);
    free(path);
}

int chaos_check(void)
{
    struct check c = {0};
    chaos_world_load(&c.w);
    char *model_path = chaos_path("model.json");
    c.model = chaos_read_json(model_path);
    free(model_path);
    if (!c.model) {
        fprintf(stderr, "chaos: no model.json: run `drive` first\n");
        return 2;
    }
    c.problems = cJSON_CreateArray();
    c.claimed = cJSON_CreateObject();
    double quiet_after = 0;
    bool is_quiet = wait_quiet(&c, &quiet_after);
    /* the checker's own reads go through no injected fault */
    cJSON_Delete(chaos_must("PUT", "/_sandbox/faults", "{\"rules\":[]}", 200));
    load_state(&c);
    const cJSON *pair;
    cJSON_ArrayForEach(pair, cJSON_GetObjectItem(c.model, "pairs")) check_pair(&c, pair);
    check_orphans(&c);
    reconnect(&c);
    check_dead(&c);

    const cJSON *stats = cJSON_GetObjectItem(c.model, "stats");
    int changes = (int)cJSON_GetObjectItem(stats, "changes")->valuedouble;
    printf("chaos: seed %.0f, %d changes in %.0f s (%d records), quiet %s after %.0f s\n",
           cJSON_GetObjectItem(stats, "seed")->valuedouble, changes,
           cJSON_GetObjectItem(stats, "seconds")->valuedouble,
           cJSON_GetArraySize(cJSON_GetObjectItem(c.model, "pairs")),
           is_quiet ? "reached" : "NOT reached", quiet_after);
    char *ops = cJSON_PrintUnformatted(cJSON_GetObjectItem(stats, "ops"));
    printf("chaos: changes by kind: %s\n", ops);
    free(ops);
    printf("chaos: %d mismatches, %d duplicates, %d dead, %d lost\n", c.counts[K_MISMATCH],
           c.counts[K_DUPLICATE], c.counts[K_DEAD], c.counts[K_LOST]);
    int total = c.counts[K_MISMATCH] + c.counts[K_DUPLICATE] + c.counts[K_DEAD] + c.counts[K_LOST];
    if (total > 0 || !is_quiet)
        write_problems(&c);
    cJSON *report = cJSON_CreateObject();
    cJSON_AddNumberToObject(report, "changes", changes);
    cJSON_AddBoolToObject(report, "quiet", is_quiet);
    for (int k = 0; k < K_COUNT; k++)
        cJSON_AddNumberToObject(report, kind_names[k], c.counts[k]);
    char *report_path = chaos_path("report.json");
    chaos_write_json(report_path, report);
    free(report_path);
    cJSON_Delete(report);

    cJSON_Delete(c.problems);
    cJSON_Delete(c.claimed);
    cJSON_Delete(c.opps);
    cJSON_Delete(c.deals);
    cJSON_Delete(c.roles);
    cJSON_Delete(c.sf_contacts);
    cJSON_Delete(c.hs_contacts);
    cJSON_Delete(c.model);
    PQfinish(c.db);
    chaos_world_clear(&c.w);
    return total > 0 || !is_quiet ? 1 : 0;
}
