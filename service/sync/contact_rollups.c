/* contact_rollups.c - the synced deals and their contacts in Postgres, and the contact
 * properties computed from them. HubSpot's own roll-ups are read-only (reference hubspot.md
 * 1.7), so dealsync keeps its own, from the deals it synced; it does not read deals it did not
 * sync. */
#include "contact_rollups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "hmac.h"
#include "log.h"
#include "mapping.h"
#include "queue.h"
#include "util.h"

enum err synced_roles_reflected(PGconn *db, const cJSON *rows, bool *reflected)
{
    cJSON *triples = cJSON_CreateArray();
    const cJSON *r;
    size_t n = 0;
    cJSON_ArrayForEach(r, rows)
    {
        cJSON *t = cJSON_CreateArray();
        const char *opp = cJSON_GetStringValue(cJSON_GetObjectItem(r, "OpportunityId"));
        const char *contact = cJSON_GetStringValue(cJSON_GetObjectItem(r, "ContactId"));
        cJSON_AddItemToArray(t, cJSON_CreateString(opp ? opp : ""));
        cJSON_AddItemToArray(t, cJSON_CreateString(contact ? contact : ""));
        cJSON_AddItemToArray(t,
                             cJSON_CreateBool(cJSON_IsTrue(cJSON_GetObjectItem(r, "IsDeleted"))));
        cJSON_AddItemToArray(triples, t);
        reflected[n++] = false;
    }
    char *json = cJSON_PrintUnformatted(triples);
    cJSON_Delete(triples);
    const char *params[] = {json};
    PGresult *res =
        PQexecParams(db,
                     "SELECT (r.i - 1)::int FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY"
                     "  AS r(role, i)"
                     " JOIN synced_deal d ON d.sf_opportunity_id = r.role->>0"
                     " WHERE EXISTS (SELECT 1 FROM synced_deal_contact c"
                     "               WHERE c.sf_opportunity_id = r.role->>0"
                     "                 AND c.sf_contact_id = r.role->>1)"
                     "       <> (r.role->>2)::boolean",
                     1, NULL, params, NULL, NULL, 0);
    free(json);
    enum err rc = db_check(db, res, PGRES_TUPLES_OK, "cannot compare contact roles with synced");
    for (int i = 0; rc == ERR_OK && i < PQntuples(res); i++) {
        long k = strtol(PQgetvalue(res, i, 0), NULL, 10);
        if (k >= 0 && (size_t)k < n)
            reflected[k] = true;
    }
    PQclear(res);
    return rc;
}

enum err synced_deal_contacts(PGconn *db, const char *sf_opportunity_id, cJSON **map)
{
    return synced_deal_contacts_with(db, sf_opportunity_id, NULL, map);
}

enum err synced_deal_contacts_with(PGconn *db, const char *sf_opportunity_id,
                                   const char *hs_deal_id, cJSON **map)
{
    const char *params[] = {sf_opportunity_id, hs_deal_id};
    PGresult *r = PQexecParams(db,
                               "SELECT c.sf_contact_id, c.hs_contact_id FROM synced_deal_contact c"
                               " JOIN synced_deal d USING (sf_opportunity_id)"
                               " WHERE c.sf_opportunity_id = $1"
                               "   AND ($2::text IS NULL OR d.hs_deal_id = $2)",
                               2, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read synced deal contacts");
    if (rc == ERR_OK) {
        *map = cJSON_CreateObject();
        for (int i = 0; i < PQntuples(r); i++)
            cJSON_AddStringToObject(*map, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    }
    PQclear(r);
    return rc;
}

static enum err exec(PGconn *db, const char *sql, int n, const char *const *params,
                     const char *what)
{
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, what);
    PQclear(r);
    return rc;
}

/* The deal upserted and its contacts replaced in one statement (one round trip, atomic): the
 * contacts upserted by their key, the others deleted. The contacts' insert reads the deal's row
 * (d), so the deal is written before its contacts meet their foreign key; the delete never
 * touches a key the insert writes. A contact listed twice keeps its first hs_contact_id. */
enum err synced_deal_save(PGconn *db, const struct synced_deal *d,
                          const struct synced_contact *contacts, size_t n)
{
    char created[32], close[32];
    snprintf(created, sizeof(created), "%lld", (long long)d->created_ms);
    snprintf(close, sizeof(close), "%lld", (long long)d->close_ms);
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(contacts[i].sf_contact_id));
        cJSON_AddItemToArray(pair, cJSON_CreateString(contacts[i].hs_contact_id));
        cJSON_AddItemToArray(list, pair);
    }
    char *pairs = cJSON_PrintUnformatted(list);
    cJSON_Delete(list);
    const char *params[] = {d->sf_opportunity_id,
                            d->hs_deal_id,
                            created,
                            d->close_ms >= 0 ? close : NULL,
                            d->amount,
                            d->is_closed ? "t" : "f",
                            d->is_won ? "t" : "f",
                            pairs};
    enum err rc =
        exec(db,
             "WITH d AS (INSERT INTO synced_deal (sf_opportunity_id, hs_deal_id, created_at,"
             "   close_date, amount, is_closed, is_won) VALUES ($1, $2,"
             "   to_timestamp($3::bigint / 1000.0), to_timestamp($4::bigint / 1000.0), $5::numeric,"
             "   $6::boolean, $7::boolean)"
             "  ON CONFLICT (sf_opportunity_id) DO UPDATE SET hs_deal_id = EXCLUDED.hs_deal_id,"
             "   created_at = EXCLUDED.created_at, close_date = EXCLUDED.close_date,"
             "   amount = EXCLUDED.amount, is_closed = EXCLUDED.is_closed,"
             "   is_won = EXCLUDED.is_won, synced_at = now(), deleted_at = NULL"
             "  RETURNING sf_opportunity_id),"
             " c AS (SELECT DISTINCT ON (e->>0) e->>0 AS sf, e->>1 AS hs"
             "  FROM jsonb_array_elements($8::jsonb) WITH ORDINALITY AS t(e, i) ORDER BY e->>0, i),"
             " gone AS (DELETE FROM synced_deal_contact x WHERE x.sf_opportunity_id = $1"
             "  AND NOT EXISTS (SELECT 1 FROM c WHERE c.sf = x.sf_contact_id))"
             " INSERT INTO synced_deal_contact (sf_opportunity_id, sf_contact_id, hs_contact_id)"
             " SELECT d.sf_opportunity_id, c.sf, c.hs FROM d, c"
             " ON CONFLICT (sf_opportunity_id, sf_contact_id)"
             " DO UPDATE SET hs_contact_id = EXCLUDED.hs_contact_id",
             8, params, "cannot save synced deal");
    free(pairs);
    return rc;
}

enum err synced_deal_mark_deleted(PGconn *db, const char *sf_opportunity_id)
{
    return exec(db, "UPDATE synced_deal SET deleted_at = now() WHERE sf_opportunity_id = $1", 1,
                &sf_opportunity_id, "cannot mark synced deal deleted");
}

enum err synced_deal_forget(PGconn *db, const char *sf_opportunity_id)
{
    return exec(db, "DELETE FROM synced_deal WHERE sf_opportunity_id = $1", 1, &sf_opportunity_id,
                "cannot forget synced deal");
}

enum err contact_rollup_load(PGconn *db, const char *hs_contact_id, struct contact_rollup *out)
{
    /* Ties in created_at are broken by the opportunity id, so the answer is stable. */
    const char *params[] = {hs_contact_id};
    PGresult *r = PQexecParams(
        db,
        "SELECT count(*),"
        " coalesce((extract(epoch FROM min(d.created_at)) * 1000)::bigint, -1),"
        " coalesce((extract(epoch FROM max(d.close_date) FILTER (WHERE d.is_won)) * 1000)"
        "::bigint, -1),"
        " (array_agg(d.amount::text ORDER BY d.created_at DESC, d.sf_opportunity_id DESC))[1],"
        " coalesce(sum(d.amount) FILTER (WHERE d.is_won), 0)::text,"
        " coalesce(bool_or(NOT d.is_closed), false), coalesce(bool_or(d.is_won), false)"
        " FROM synced_deal_contact c JOIN synced_deal d USING (sf_opportunity_id)"
        " WHERE c.hs_contact_id = $1 AND d.deleted_at IS NULL",
        1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot compute contact roll-ups");
    if (rc == ERR_OK && PQntuples(r) == 1) {
        memset(out, 0, sizeof(*out));
        out->num_deals = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        out->first_created_ms = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        out->recent_close_ms = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        out->recent_amount = PQgetisnull(r, 0, 3) ? NULL : xstrdup(PQgetvalue(r, 0, 3));
        out->total_revenue = xstrdup(PQgetvalue(r, 0, 4));
        out->has_open = PQgetvalue(r, 0, 5)[0] == 't';
        out->has_won = PQgetvalue(r, 0, 6)[0] == 't';
    } else if (rc == ERR_OK) {
        rc = ERR_DB;
    }
    PQclear(r);
    return rc;
}

void contact_rollup_of(const struct synced_deal *deals, size_t n, struct contact_rollup *out)
{
    memset(out, 0, sizeof(*out));
    out->first_created_ms = -1;
    out->recent_close_ms = -1;
    const struct synced_deal *latest = NULL;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct synced_deal *d = &deals[i];
        out->num_deals++;
        if (out->first_created_ms < 0 || d->created_ms < out->first_created_ms)
            out->first_created_ms = d->created_ms;
        if (d->is_won && d->close_ms > out->recent_close_ms)
            out->recent_close_ms = d->close_ms;
        if (d->is_won && d->amount)
            total += strtod(d->amount, NULL);
        /* Ties in the creation time go to the larger opportunity id, as in the query. */
        if (!latest || d->created_ms > latest->created_ms ||
            (d->created_ms == latest->created_ms &&
             strcmp(d->sf_opportunity_id, latest->sf_opportunity_id) > 0))
            latest = d;
        out->has_open |= !d->is_closed;
        out->has_won |= d->is_won;
    }
    out->recent_amount = latest && latest->amount ? xstrdup(latest->amount) : NULL;
    cJSON *sum = cJSON_CreateNumber(total);
    out->total_revenue = mapping_number_text(sum);
    cJSON_Delete(sum);
}

void contact_rollup_clear(struct contact_rollup *r)
{
    if (!r)
        return;
    free(r->recent_amount);
    free(r->total_revenue);
    memset(r, 0, sizeof(*r));
}

char *contact_rollup_property_list(const struct config *cfg)
{
    return xasprintf("lifecyclestage,%s,%s,%s,%s,%s", cfg->rollup_num_deals_property,
                     cfg->rollup_first_deal_created_property,
                     cfg->rollup_recent_close_date_property, cfg->rollup_recent_amount_property,
                     cfg->rollup_total_revenue_property);
}

/* HubSpot's lifecycle stages in order (reference: the contact property's options). */
static const char *const lifecycle_order[] = {
    "subscriber",         "lead",        "marketingqualifiedlead",
    "salesqualifiedlead", "opportunity", "customer",
    "evangelist",         "other",
};

static int lifecycle_rank(const char *s)
{
    for (size_t i = 0; s && i < sizeof(lifecycle_order) / sizeof(lifecycle_order[0]); i++)
        if (strcmp(s, lifecycle_order[i]) == 0)
            return (int)i;
    return -1;
}

bool lifecycle_is_forward(const char *from, const char *to)
{
    return lifecycle_rank(to) > lifecycle_rank(from);
}

static const char *current_text(const cJSON *current, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(current, name));
    return s ? s : "";
}

/* Numbers compare by value ("120000" and "120000.00" are the same amount). */
static void put_number(cJSON *changes, const cJSON *current, const char *name, const char *value)
{
    const char *now = current_text(current, name);
    char *a = NULL, *b = NULL;
    if (value) {
        cJSON *v = cJSON_CreateString(value);
        a = mapping_number_text(v);
        cJSON_Delete(v);
    }
    if (now[0]) {
        cJSON *v = cJSON_CreateString(now);
        b = mapping_number_text(v);
        cJSON_Delete(v);
    }
    const char *want = a ? a : "";
    if (strcmp(want, b ? b : now) != 0)
        cJSON_AddStringToObject(changes, name, want);
    free(a);
    free(b);
}

static void put_time(cJSON *changes, const cJSON *current, const char *name, int64_t ms)
{
    const char *now = current_text(current, name);
    int64_t have = -1;
    if (now[0] && !util_parse_iso8601_ms(now, &have))
        have = -2;
    if (have == ms)
        return;
    char text[UTIL_ISO8601_LEN] = "";
    if (ms >= 0)
        util_format_iso8601_ms(ms, text);
    if (ms >= 0 || now[0])
        cJSON_AddStringToObject(changes, name, text);
}

cJSON *contact_rollup_changes(const struct config *cfg, const struct contact_rollup *r,
                              const cJSON *current)
{
    cJSON *changes = cJSON_CreateObject();
    char count[32];
    snprintf(count, sizeof(count), "%lld", r->num_deals);
    put_number(changes, current, cfg->rollup_num_deals_property, count);
    put_time(changes, current, cfg->rollup_first_deal_created_property, r->first_created_ms);
    put_time(changes, current, cfg->rollup_recent_close_date_property, r->recent_close_ms);
    put_number(changes, current, cfg->rollup_recent_amount_property, r->recent_amount);
    put_number(changes, current, cfg->rollup_total_revenue_property,
               r->total_revenue ? r->total_revenue : "0");
    const char *target = r->has_won ? "customer" : r->has_open ? "opportunity" : NULL;
    const char *stage = current_text(current, "lifecyclestage");
    if (cfg->lifecycle_stage_sync && target && lifecycle_is_forward(stage, target))
        cJSON_AddStringToObject(changes, "lifecyclestage", target);
    return changes;
}

/* ---- What HubSpot holds (table contact_rollup_known) -------------------------------------- */

/* The advisory lock class of roll-up locks ("DS" + 3), apart from sync_pair.c's two. The ids'
 * hashes are locked in ascending order, so two workers locking overlapping sets never wait on
 * each other in a cycle. */
#define ROLLUP_LOCK_CLASS "1146290179"
#define HASHES_OF_IDS                                                                              \
    "(SELECT DISTINCT hashtext(x) AS h FROM jsonb_array_elements_text($1::jsonb) x ORDER BY 1) s"

static enum err run_ids(PGconn *db, const char *sql, const cJSON *ids, const char *what)
{
    char *json = cJSON_PrintUnformatted(ids);
    const char *params[] = {json};
    PGresult *r = PQexecParams(db, sql, 1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, what);
    PQclear(r);
    free(json);
    return rc;
}

enum err contact_rollup_lock(PGconn *db, const cJSON *hs_ids)
{
    return run_ids(db, "SELECT pg_advisory_lock(" ROLLUP_LOCK_CLASS ", s.h) FROM " HASHES_OF_IDS,
                   hs_ids, "cannot lock the contacts' roll-ups");
}

void contact_rollup_unlock(PGconn *db, const cJSON *hs_ids)
{
    if (run_ids(db, "SELECT pg_advisory_unlock(" ROLLUP_LOCK_CLASS ", s.h) FROM " HASHES_OF_IDS,
                hs_ids, "cannot release the contacts' roll-up locks") != ERR_OK)
        log_warn("roll-up locks stay until the connection closes");
}

enum err contact_rollup_known_load(PGconn *db, const cJSON *hs_ids, cJSON **out)
{
    char *json = cJSON_PrintUnformatted(hs_ids);
    const char *params[] = {json};
    PGresult *r =
        PQexecParams(db,
                     "SELECT hs_contact_id, properties::text FROM contact_rollup_known"
                     " WHERE hs_contact_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
                     1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read the contacts' known roll-ups");
    if (rc == ERR_OK) {
        *out = cJSON_CreateObject();
        for (int i = 0; i < PQntuples(r); i++) {
            cJSON *props = cJSON_Parse(PQgetvalue(r, i, 1));
            if (!cJSON_IsObject(props)) {
                cJSON_Delete(props);
                continue;
            }
            cJSON_AddItemToObject(*out, PQgetvalue(r, i, 0), props);
        }
    }
    PQclear(r);
    free(json);
    return rc;
}

enum err contact_rollup_known_save(PGconn *db, const cJSON *by_id, bool is_observed)
{
    if (cJSON_GetArraySize(by_id) == 0)
        return ERR_OK;
    char *json = cJSON_PrintUnformatted(by_id);
    const char *params[] = {json, is_observed ? "t" : "f"};
    PGresult *r = PQexecParams(
        db,
        "INSERT INTO contact_rollup_known AS k (hs_contact_id, properties)"
        " SELECT key, value FROM jsonb_each($1::jsonb) WHERE jsonb_typeof(value) = 'object'"
        " ON CONFLICT (hs_contact_id) DO UPDATE SET"
        " properties = CASE WHEN $2::boolean THEN EXCLUDED.properties"
        "              ELSE k.properties || EXCLUDED.properties END, updated_at = now()",
        2, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot save the contacts' known roll-ups");
    PQclear(r);
    free(json);
    return rc;
}

/* ---- Roll-ups on the queue ----------------------------------------------------------------- */

static bool has_id(const cJSON *ids, const char *id)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, ids)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, id) == 0)
            return true;
    }
    return false;
}

enum err contact_rollup_queue(PGconn *db, const cJSON *hs_ids, const cJSON *created)
{
    size_t n = (size_t)cJSON_GetArraySize(hs_ids), k = 0;
    struct queue_event_in *evs = xcalloc(n + 1, sizeof(*evs));
    char **keys = xcalloc(n + 1, sizeof(*keys));
    cJSON **payloads = xcalloc(n + 1, sizeof(*payloads));
    cJSON *seen = cJSON_CreateArray();
    int64_t now = util_now_ms();
    enum err rc = ERR_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, hs_ids)
    {
        if (!cJSON_IsString(it) || !it->valuestring[0] || has_id(seen, it->valuestring))
            continue;
        cJSON_AddItemToArray(seen, cJSON_CreateString(it->valuestring));
        /* Every request is its own event: one claim takes all of a contact's open ones. */
        char *token = hmac_random_token(16);
        if (!token) {
            rc = ERR_INTERNAL;
            break;
        }
        keys[k] = xasprintf("rollup:%s:%s", it->valuestring, token);
        free(token);
        payloads[k] = cJSON_CreateObject();
        cJSON_AddBoolToObject(payloads[k], "created", has_id(created, it->valuestring));
        evs[k] = (struct queue_event_in){.source = "hubspot",
                                         .dedup_key = keys[k],
                                         .object_type = CONTACT_ROLLUP_OBJECT,
                                         .record_id = it->valuestring,
                                         .event_type = "rollup",
                                         .occurred_at_ms = now,
                                         .payload = payloads[k],
                                         .priority = QUEUE_PRIORITY_LIVE};
        k++;
    }
    size_t stored = 0;
    if (rc == ERR_OK && k > 0)
        rc = queue_push(db, evs, k, &stored);
    for (size_t i = 0; i < k; i++) {
        free(keys[i]);
        cJSON_Delete(payloads[i]);
    }
    free(keys);
    free(payloads);
    free(evs);
    cJSON_Delete(seen);
    return rc;
}
