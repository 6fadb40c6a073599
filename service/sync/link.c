/* link.c - record_link rows in and out. */
#include "link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "sync_cache.h"
#include "util.h"

#define LINK_COLUMNS                                                                               \
    "kind, sf_id, hs_id, sf_written::text, hs_written::text, sf_seen::text, hs_seen::text,"        \
    " coalesce((extract(epoch FROM sf_modified_at) * 1000)::bigint, 0),"                           \
    " coalesce((extract(epoch FROM hs_modified_at) * 1000)::bigint, 0),"                           \
    " sf_maybe::text, hs_maybe::text"

static cJSON *object_or_empty(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = cJSON_CreateObject();
    }
    return j;
}

/* Inside a batch (sync_cache.h) the opportunity links are remembered as read, found or not:
 * a record's handling reads its link several times, and the pair locks keep every other worker
 * from writing it meanwhile. Every write here forgets what it changes (a stale pair unlinked:
 * all of them), and so does taking a pair lock (sync_pair.c). Account and contact links are
 * not locked, and are always read anew. */
#define CACHE_LINKS "opportunity_links"

static cJSON *link_to_json(const struct link *l)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "kind", l->kind);
    cJSON_AddStringToObject(j, "sf_id", l->sf_id);
    cJSON_AddStringToObject(j, "hs_id", l->hs_id);
    cJSON_AddItemToObject(j, "sf_written", cJSON_Duplicate(l->sf_written, true));
    cJSON_AddItemToObject(j, "hs_written", cJSON_Duplicate(l->hs_written, true));
    cJSON_AddItemToObject(j, "sf_maybe", cJSON_Duplicate(l->sf_maybe, true));
    cJSON_AddItemToObject(j, "hs_maybe", cJSON_Duplicate(l->hs_maybe, true));
    cJSON_AddItemToObject(j, "sf_seen", cJSON_Duplicate(l->sf_seen, true));
    cJSON_AddItemToObject(j, "hs_seen", cJSON_Duplicate(l->hs_seen, true));
    /* Milliseconds since 1970 fit a double exactly (under 2^53). */
    cJSON_AddNumberToObject(j, "sf_modified_ms", (double)l->sf_modified_ms);
    cJSON_AddNumberToObject(j, "hs_modified_ms", (double)l->hs_modified_ms);
    return j;
}

static void link_from_json(const cJSON *j, struct link *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = xstrdup(cJSON_GetObjectItemCaseSensitive(j, "kind")->valuestring);
    out->sf_id = xstrdup(cJSON_GetObjectItemCaseSensitive(j, "sf_id")->valuestring);
    out->hs_id = xstrdup(cJSON_GetObjectItemCaseSensitive(j, "hs_id")->valuestring);
    out->sf_written = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(j, "sf_written"), true);
    out->hs_written = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(j, "hs_written"), true);
    out->sf_maybe = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(j, "sf_maybe"), true);
    out->hs_maybe = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(j, "hs_maybe"), true);
    out->sf_seen = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(j, "sf_seen"), true);
    out->hs_seen = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(j, "hs_seen"), true);
    out->sf_modified_ms =
        (int64_t)cJSON_GetObjectItemCaseSensitive(j, "sf_modified_ms")->valuedouble;
    out->hs_modified_ms =
        (int64_t)cJSON_GetObjectItemCaseSensitive(j, "hs_modified_ms")->valuedouble;
}

/* Row `row` of a SELECT of LINK_COLUMNS. */
static void from_row(const PGresult *r, int row, struct link *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = xstrdup(PQgetvalue(r, row, 0));
    out->sf_id = xstrdup(PQgetvalue(r, row, 1));
    out->hs_id = xstrdup(PQgetvalue(r, row, 2));
    out->sf_written = object_or_empty(PQgetvalue(r, row, 3));
    out->hs_written = object_or_empty(PQgetvalue(r, row, 4));
    out->sf_seen = object_or_empty(PQgetvalue(r, row, 5));
    out->hs_seen = object_or_empty(PQgetvalue(r, row, 6));
    out->sf_modified_ms = strtoll(PQgetvalue(r, row, 7), NULL, 10);
    out->hs_modified_ms = strtoll(PQgetvalue(r, row, 8), NULL, 10);
    out->sf_maybe = object_or_empty(PQgetvalue(r, row, 9));
    out->hs_maybe = object_or_empty(PQgetvalue(r, row, 10));
}

void link_cache_forget_all(void)
{
    sync_cache_forget(CACHE_LINKS);
}

static bool is_id(const cJSON *j, const char *name, const char *id)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return id && cJSON_IsString(v) && strcmp(v->valuestring, id) == 0;
}

void link_cache_forget(const char *sf_id, const char *hs_id)
{
    cJSON *t = sync_cache_table(CACHE_LINKS);
    if (!t)
        return;
    cJSON *next = NULL;
    for (cJSON *e = t->child; e; e = next) {
        next = e->next;
        const char *key = e->string;
        bool is_it = (sf_id && strncmp(key, "sf:", 3) == 0 && strcmp(key + 3, sf_id) == 0) ||
                     (hs_id && strncmp(key, "hs:", 3) == 0 && strcmp(key + 3, hs_id) == 0) ||
                     is_id(e, "sf_id", sf_id) || is_id(e, "hs_id", hs_id);
        if (is_it)
            cJSON_Delete(cJSON_DetachItemViaPointer(t, e));
    }
}

static enum err find(PGconn *db, const char *sql, const char *kind, const char *side,
                     const char *id, struct link *out)
{
    char *key = NULL;
    if (strcmp(kind, LINK_OPPORTUNITY) == 0 && sync_cache_is_on()) {
        key = xasprintf("%s:%s", side, id);
        const cJSON *known = sync_cache_get(CACHE_LINKS, key);
        if (known) {
            free(key);
            if (cJSON_IsNull(known))
                return ERR_NOT_FOUND;
            link_from_json(known, out);
            return ERR_OK;
        }
    }
    const char *params[] = {kind, id};
    PGresult *r = PQexecParams(db, sql, 2, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read record link");
    if (rc == ERR_OK && PQntuples(r) == 0)
        rc = ERR_NOT_FOUND;
    if (rc == ERR_OK)
        from_row(r, 0, out);
    PQclear(r);
    if (key && (rc == ERR_OK || rc == ERR_NOT_FOUND))
        sync_cache_put(CACHE_LINKS, key, rc == ERR_OK ? link_to_json(out) : cJSON_CreateNull());
    free(key);
    return rc;
}

enum err link_find_by_sf(PGconn *db, const char *kind, const char *sf_id, struct link *out)
{
    return find(db, "SELECT " LINK_COLUMNS " FROM record_link WHERE kind = $1 AND sf_id = $2", kind,
                "sf", sf_id, out);
}

enum err link_find_by_hs(PGconn *db, const char *kind, const char *hs_id, struct link *out)
{
    return find(db, "SELECT " LINK_COLUMNS " FROM record_link WHERE kind = $1 AND hs_id = $2", kind,
                "hs", hs_id, out);
}

enum err link_prefetch(PGconn *db, bool is_hs_side, const char *const *ids, size_t n)
{
    if (!sync_cache_is_on() || n == 0)
        return ERR_OK;
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(list, cJSON_CreateString(ids[i]));
    char *text = cJSON_PrintUnformatted(list);
    cJSON_Delete(list);
    const char *params[] = {text};
    PGresult *r = PQexecParams(db,
                               is_hs_side ? "SELECT " LINK_COLUMNS " FROM record_link WHERE kind ="
                                            " 'opportunity' AND hs_id IN (SELECT"
                                            " jsonb_array_elements_text($1::jsonb))"
                                          : "SELECT " LINK_COLUMNS " FROM record_link WHERE kind ="
                                            " 'opportunity' AND sf_id IN (SELECT"
                                            " jsonb_array_elements_text($1::jsonb))",
                               1, NULL, params, NULL, NULL, 0);
    free(text);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read record links");
    if (rc == ERR_OK) {
        /* Not found first, then what was found replaces it. */
        for (size_t i = 0; i < n; i++) {
            char *key = xasprintf("%s:%s", is_hs_side ? "hs" : "sf", ids[i]);
            sync_cache_put(CACHE_LINKS, key, cJSON_CreateNull());
            free(key);
        }
        for (int row = 0; row < PQntuples(r); row++) {
            struct link l;
            from_row(r, row, &l);
            char *key =
                xasprintf("%s:%s", is_hs_side ? "hs" : "sf", is_hs_side ? l.hs_id : l.sf_id);
            sync_cache_put(CACHE_LINKS, key, link_to_json(&l));
            free(key);
            link_clear(&l);
        }
    }
    PQclear(r);
    return rc;
}

static char *json_text(const cJSON *j)
{
    return j ? cJSON_PrintUnformatted(j) : xstrdup("{}");
}

/* Tries of link_save's statements (see there). */
#define LINK_SAVE_TRIES 3

/* A stale pair holding hs_id (another Salesforce record linked to the same deal) is unlinked
 * in a statement of its own: the insert of a statement whose CTE deletes it still meets it in
 * the unique index on hs_id (a unique violation, seen by the chaos run as a dead "cannot save
 * link"). */
static enum err unlink_stale(PGconn *db, const char *const params[11])
{
    const char *stale_params[] = {params[0], params[1], params[2]};
    PGresult *r = PQexecParams(db,
                               "DELETE FROM record_link WHERE kind = $1 AND hs_id = $3"
                               " AND sf_id <> $2",
                               3, NULL, stale_params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot save record link");
    PQclear(r);
    return rc;
}

static enum err upsert(PGconn *db, const char *const params[11])
{
    PGresult *r = PQexecParams(
        db,
        "INSERT INTO record_link (kind, sf_id, hs_id, sf_written, hs_written, sf_seen, hs_seen,"
        "   sf_modified_at, hs_modified_at, synced_at, sf_maybe, hs_maybe)"
        " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7::jsonb,"
        "   CASE WHEN $8::bigint > 0 THEN to_timestamp($8::bigint / 1000.0) END,"
        "   CASE WHEN $9::bigint > 0 THEN to_timestamp($9::bigint / 1000.0) END, now(),"
        "   $10::jsonb, $11::jsonb)"
        " ON CONFLICT (kind, sf_id) DO UPDATE SET hs_id = EXCLUDED.hs_id,"
        "   sf_written = EXCLUDED.sf_written, hs_written = EXCLUDED.hs_written,"
        "   sf_seen = EXCLUDED.sf_seen, hs_seen = EXCLUDED.hs_seen,"
        "   sf_modified_at = EXCLUDED.sf_modified_at, hs_modified_at = EXCLUDED.hs_modified_at,"
        "   synced_at = now(), sf_maybe = EXCLUDED.sf_maybe, hs_maybe = EXCLUDED.hs_maybe",
        11, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot save record link");
    PQclear(r);
    return rc;
}

/* The marks of maybe (may be NULL) of the fields written (may be NULL) still holds, as text. A
 * write no longer remembered has no outcome to wait for. Caller frees. */
static char *maybe_text(const cJSON *maybe, const cJSON *written, bool is_hs_side)
{
    cJSON *kept = cJSON_CreateObject();
    const cJSON *m;
    cJSON_ArrayForEach(m, maybe)
    {
        const cJSON *w = is_hs_side ? cJSON_GetObjectItemCaseSensitive(written, m->string)
                                    : cJSON_GetObjectItem(written, m->string);
        if (w)
            cJSON_AddTrueToObject(kept, m->string);
    }
    char *text = json_text(kept);
    cJSON_Delete(kept);
    return text;
}

enum err link_save(PGconn *db, const struct link *l)
{
    char *sw = json_text(l->sf_written);
    char *hw = json_text(l->hs_written);
    char *ss = json_text(l->sf_seen);
    char *hsn = json_text(l->hs_seen);
    char *sfy = maybe_text(l->sf_maybe, l->sf_written, false);
    char *hsy = maybe_text(l->hs_maybe, l->hs_written, true);
    char sfm[32], hsm[32];
    snprintf(sfm, sizeof(sfm), "%lld", (long long)l->sf_modified_ms);
    snprintf(hsm, sizeof(hsm), "%lld", (long long)l->hs_modified_ms);
    const char *params[] = {l->kind, l->sf_id, l->hs_id, sw, hw, ss, hsn, sfm, hsm, sfy, hsy};
    link_cache_forget(l->sf_id, l->hs_id);
    /* The upsert alone (one round trip) unless the (kind, hs_id) key answers a unique
     * violation: ON CONFLICT covers (kind, sf_id) only, so a stale pair holding hs_id, or
     * another worker saving the same pair between the upsert's conflict check and its index
     * entries, fails the upsert. Then the stale pair is unlinked and the upsert runs again (the
     * other worker's row is there now, so it updates it). Autocommitted: a failed upsert
     * changes nothing. */
    enum err rc = upsert(db, params);
    for (int attempt = 0; attempt < LINK_SAVE_TRIES && rc == ERR_CONFLICT; attempt++) {
        link_cache_forget_all(); /* the stale pair's too */
        rc = unlink_stale(db, params);
        if (rc == ERR_OK)
            rc = upsert(db, params);
    }
    free(hsy);
    free(sfy);
    free(hsn);
    free(ss);
    free(hw);
    free(sw);
    return rc;
}

/* What link_note_written stored, in the remembered links of sf_id too (jsonb's ||: each
 * top-level key replaced). */
static void note_in_cache(const char *sf_id, bool is_hs_side, const cJSON *values)
{
    cJSON *t = sync_cache_table(CACHE_LINKS);
    cJSON *e;
    cJSON_ArrayForEach(e, t)
    {
        if (!is_id(e, "sf_id", sf_id))
            continue;
        cJSON *written =
            cJSON_GetObjectItemCaseSensitive(e, is_hs_side ? "hs_written" : "sf_written");
        cJSON *maybe = cJSON_GetObjectItemCaseSensitive(e, is_hs_side ? "hs_maybe" : "sf_maybe");
        const cJSON *v;
        cJSON_ArrayForEach(v, values)
        {
            cJSON_DeleteItemFromObjectCaseSensitive(written, v->string);
            cJSON_AddItemToObject(written, v->string, cJSON_Duplicate(v, true));
            cJSON_DeleteItemFromObjectCaseSensitive(maybe, v->string);
            cJSON_AddTrueToObject(maybe, v->string);
        }
    }
}

enum err link_note_written(PGconn *db, const char *kind, const char *sf_id, bool is_hs_side,
                           const cJSON *values)
{
    if (!values || !values->child)
        return ERR_OK;
    char *text = json_text(values);
    const char *params[] = {kind, sf_id, text};
    /* Each field marked: the write's outcome is unknown until its answer (a kill can come at
     * any moment from here on). */
    PGresult *r =
        PQexecParams(db,
                     is_hs_side ? "UPDATE record_link SET hs_written = hs_written || $3::jsonb,"
                                  " hs_maybe = hs_maybe || (SELECT coalesce(jsonb_object_agg(k,"
                                  " true), '{}') FROM jsonb_object_keys($3::jsonb) AS k)"
                                  " WHERE kind = $1 AND sf_id = $2"
                                : "UPDATE record_link SET sf_written = sf_written || $3::jsonb,"
                                  " sf_maybe = sf_maybe || (SELECT coalesce(jsonb_object_agg(k,"
                                  " true), '{}') FROM jsonb_object_keys($3::jsonb) AS k)"
                                  " WHERE kind = $1 AND sf_id = $2",
                     3, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot save record link");
    if (rc == ERR_OK && strcmp(kind, LINK_OPPORTUNITY) == 0)
        note_in_cache(sf_id, is_hs_side, values);
    else
        link_cache_forget(sf_id, NULL);
    PQclear(r);
    free(text);
    return rc;
}

/* Runs an UPDATE of the links of params[1] (a Salesforce id) and forgets them in the cache. */
static enum err update_link(PGconn *db, const char *sql, const char *const *params, int n)
{
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot save record link");
    link_cache_forget(params[1], NULL);
    PQclear(r);
    return rc;
}

enum err link_unnote_written(PGconn *db, const char *kind, const char *sf_id, bool is_hs_side,
                             const cJSON *noted, const cJSON *before, const cJSON *before_maybe)
{
    if (!noted || !noted->child)
        return ERR_OK;
    cJSON *back = cJSON_CreateObject();
    cJSON *back_maybe = cJSON_CreateObject();
    const cJSON *v;
    cJSON_ArrayForEach(v, noted)
    {
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(before, v->string);
        if (old)
            cJSON_AddItemToObject(back, v->string, cJSON_Duplicate(old, true));
        if (old && cJSON_GetObjectItemCaseSensitive(before_maybe, v->string))
            cJSON_AddTrueToObject(back_maybe, v->string);
    }
    char *keys = json_text(noted);
    char *text = json_text(back);
    char *maybe = json_text(back_maybe);
    const char *params[] = {kind, sf_id, keys, text, maybe};
    enum err rc =
        update_link(db,
                    is_hs_side ? "UPDATE record_link SET hs_written = (hs_written -"
                                 " ARRAY(SELECT jsonb_object_keys($3::jsonb))) || $4::jsonb,"
                                 " hs_maybe = (hs_maybe - ARRAY(SELECT jsonb_object_keys("
                                 "$3::jsonb))) || $5::jsonb"
                                 " WHERE kind = $1 AND sf_id = $2"
                               : "UPDATE record_link SET sf_written = (sf_written -"
                                 " ARRAY(SELECT jsonb_object_keys($3::jsonb))) || $4::jsonb,"
                                 " sf_maybe = (sf_maybe - ARRAY(SELECT jsonb_object_keys("
                                 "$3::jsonb))) || $5::jsonb"
                                 " WHERE kind = $1 AND sf_id = $2",
                    params, 5);
    free(maybe);
    free(text);
    free(keys);
    cJSON_Delete(back_maybe);
    cJSON_Delete(back);
    return rc;
}

enum err link_settle_written(PGconn *db, const char *kind, const char *sf_id, bool is_hs_side,
                             const cJSON *confirmed, const cJSON *forgotten)
{
    if ((!confirmed || !confirmed->child) && (!forgotten || !forgotten->child))
        return ERR_OK;
    char *sure = json_text(confirmed);
    char *gone = json_text(forgotten);
    const char *params[] = {kind, sf_id, sure, gone};
    enum err rc =
        update_link(db,
                    is_hs_side ? "UPDATE record_link SET hs_written = hs_written -"
                                 " ARRAY(SELECT jsonb_object_keys($4::jsonb)), hs_maybe = hs_maybe"
                                 " - ARRAY(SELECT jsonb_object_keys($3::jsonb || $4::jsonb))"
                                 " WHERE kind = $1 AND sf_id = $2"
                               : "UPDATE record_link SET sf_written = sf_written -"
                                 " ARRAY(SELECT jsonb_object_keys($4::jsonb)), sf_maybe = sf_maybe"
                                 " - ARRAY(SELECT jsonb_object_keys($3::jsonb || $4::jsonb))"
                                 " WHERE kind = $1 AND sf_id = $2",
                    params, 4);
    free(gone);
    free(sure);
    return rc;
}

bool link_is_maybe_written(const struct link *l, bool is_hs_side, const char *field)
{
    /* Salesforce's field names are matched in any case, as its API does. */
    return is_hs_side ? cJSON_GetObjectItemCaseSensitive(l->hs_maybe, field) != NULL
                      : cJSON_GetObjectItem(l->sf_maybe, field) != NULL;
}

enum err link_note_sf_seen(PGconn *db, const char *kind, const char *sf_id, const cJSON *values)
{
    char *text = json_text(values);
    const char *params[] = {kind, sf_id, text};
    enum err rc = update_link(db,
                              "UPDATE record_link SET sf_seen = sf_seen || $3::jsonb"
                              " WHERE kind = $1 AND sf_id = $2",
                              params, 3);
    free(text);
    return rc;
}

static enum err delete_where(PGconn *db, const char *sql, const char *kind, const char *id)
{
    const char *params[] = {kind, id};
    PGresult *r = PQexecParams(db, sql, 2, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot delete record link");
    PQclear(r);
    return rc;
}

enum err link_delete_by_sf(PGconn *db, const char *kind, const char *sf_id)
{
    link_cache_forget(sf_id, NULL);
    return delete_where(db, "DELETE FROM record_link WHERE kind = $1 AND sf_id = $2", kind, sf_id);
}

enum err link_delete_by_hs(PGconn *db, const char *kind, const char *hs_id)
{
    link_cache_forget(NULL, hs_id);
    return delete_where(db, "DELETE FROM record_link WHERE kind = $1 AND hs_id = $2", kind, hs_id);
}

enum err link_tombstone_save(PGconn *db, const char *sf_id, const char *hs_id, int64_t deleted_ms)
{
    char at[32];
    snprintf(at, sizeof(at), "%lld", (long long)deleted_ms);
    const char *params[] = {sf_id, hs_id, at};
    PGresult *r =
        PQexecParams(db,
                     "INSERT INTO deleted_deal (sf_opportunity_id, hs_deal_id, deleted_at)"
                     " VALUES ($1, $2, CASE WHEN $3::bigint > 0"
                     "   THEN to_timestamp($3::bigint / 1000.0) ELSE now() END)"
                     " ON CONFLICT (sf_opportunity_id) DO UPDATE SET"
                     " hs_deal_id = EXCLUDED.hs_deal_id, deleted_at = EXCLUDED.deleted_at",
                     3, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot save deleted deal");
    PQclear(r);
    return rc;
}

enum err link_tombstone_find(PGconn *db, const char *sf_id, int64_t *deleted_ms)
{
    const char *params[] = {sf_id};
    PGresult *r = PQexecParams(db,
                               "SELECT (extract(epoch FROM deleted_at) * 1000)::bigint FROM"
                               " deleted_deal WHERE sf_opportunity_id = $1",
                               1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read deleted deal");
    if (rc == ERR_OK)
        *deleted_ms = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return rc;
}

enum err link_tombstone_delete(PGconn *db, const char *sf_id)
{
    const char *params[] = {sf_id};
    PGresult *r = PQexecParams(db, "DELETE FROM deleted_deal WHERE sf_opportunity_id = $1", 1, NULL,
                               params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot forget deleted deal");
    PQclear(r);
    return rc;
}

void link_clear(struct link *l)
{
    if (!l)
        return;
    free(l->kind);
    free(l->sf_id);
    free(l->hs_id);
    cJSON_Delete(l->sf_written);
    cJSON_Delete(l->hs_written);
    cJSON_Delete(l->sf_maybe);
    cJSON_Delete(l->hs_maybe);
    cJSON_Delete(l->sf_seen);
    cJSON_Delete(l->hs_seen);
    memset(l, 0, sizeof(*l));
}
