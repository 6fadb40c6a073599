/* link.c - record_link rows in and out. */
#include "link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "util.h"

#define LINK_COLUMNS                                                                               \
    "kind, sf_id, hs_id, sf_written::text, hs_written::text, sf_seen::text, hs_seen::text,"        \
    " coalesce((extract(epoch FROM sf_modified_at) * 1000)::bigint, 0),"                           \
    " coalesce((extract(epoch FROM hs_modified_at) * 1000)::bigint, 0)"

static cJSON *object_or_empty(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = cJSON_CreateObject();
    }
    return j;
}

static enum err find(PGconn *db, const char *sql, const char *kind, const char *id,
                     struct link *out)
{
    const char *params[] = {kind, id};
    PGresult *r = PQexecParams(db, sql, 2, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read record link");
    if (rc == ERR_OK && PQntuples(r) == 0)
        rc = ERR_NOT_FOUND;
    if (rc == ERR_OK) {
        memset(out, 0, sizeof(*out));
        out->kind = xstrdup(PQgetvalue(r, 0, 0));
        out->sf_id = xstrdup(PQgetvalue(r, 0, 1));
        out->hs_id = xstrdup(PQgetvalue(r, 0, 2));
        out->sf_written = object_or_empty(PQgetvalue(r, 0, 3));
        out->hs_written = object_or_empty(PQgetvalue(r, 0, 4));
        out->sf_seen = object_or_empty(PQgetvalue(r, 0, 5));
        out->hs_seen = object_or_empty(PQgetvalue(r, 0, 6));
        out->sf_modified_ms = strtoll(PQgetvalue(r, 0, 7), NULL, 10);
        out->hs_modified_ms = strtoll(PQgetvalue(r, 0, 8), NULL, 10);
    }
    PQclear(r);
    return rc;
}

enum err link_find_by_sf(PGconn *db, const char *kind, const char *sf_id, struct link *out)
{
    return find(db, "SELECT " LINK_COLUMNS " FROM record_link WHERE kind = $1 AND sf_id = $2", kind,
                sf_id, out);
}

enum err link_find_by_hs(PGconn *db, const char *kind, const char *hs_id, struct link *out)
{
    return find(db, "SELECT " LINK_COLUMNS " FROM record_link WHERE kind = $1 AND hs_id = $2", kind,
                hs_id, out);
}

static char *json_text(const cJSON *j)
{
    return j ? cJSON_PrintUnformatted(j) : xstrdup("{}");
}

/* Tries of link_save's statements (see there). */
#define LINK_SAVE_TRIES 3

static enum err save_once(PGconn *db, const char *const params[9])
{
    /* A stale pair holding hs_id is unlinked first, in a statement of its own: the insert of a
     * statement whose CTE deletes it still meets it in the unique index on hs_id (a unique
     * violation, seen by the chaos run as a dead "cannot save link"). */
    const char *stale_params[] = {params[0], params[1], params[2]};
    PGresult *r = PQexecParams(db,
                               "DELETE FROM record_link WHERE kind = $1 AND hs_id = $3"
                               " AND sf_id <> $2",
                               3, NULL, stale_params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot save record link");
    PQclear(r);
    if (rc != ERR_OK)
        return rc;
    r = PQexecParams(
        db,
        "INSERT INTO record_link (kind, sf_id, hs_id, sf_written, hs_written, sf_seen, hs_seen,"
        "   sf_modified_at, hs_modified_at, synced_at)"
        " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7::jsonb,"
        "   CASE WHEN $8::bigint > 0 THEN to_timestamp($8::bigint / 1000.0) END,"
        "   CASE WHEN $9::bigint > 0 THEN to_timestamp($9::bigint / 1000.0) END, now())"
        " ON CONFLICT (kind, sf_id) DO UPDATE SET hs_id = EXCLUDED.hs_id,"
        "   sf_written = EXCLUDED.sf_written, hs_written = EXCLUDED.hs_written,"
        "   sf_seen = EXCLUDED.sf_seen, hs_seen = EXCLUDED.hs_seen,"
        "   sf_modified_at = EXCLUDED.sf_modified_at, hs_modified_at = EXCLUDED.hs_modified_at,"
        "   synced_at = now()",
        9, NULL, params, NULL, NULL, 0);
    rc = db_check(db, r, PGRES_COMMAND_OK, "cannot save record link");
    PQclear(r);
    return rc;
}

enum err link_save(PGconn *db, const struct link *l)
{
    char *sw = json_text(l->sf_written);
    char *hw = json_text(l->hs_written);
    char *ss = json_text(l->sf_seen);
    char *hsn = json_text(l->hs_seen);
    char sfm[32], hsm[32];
    snprintf(sfm, sizeof(sfm), "%lld", (long long)l->sf_modified_ms);
    snprintf(hsm, sizeof(hsm), "%lld", (long long)l->hs_modified_ms);
    const char *params[] = {l->kind, l->sf_id, l->hs_id, sw, hw, ss, hsn, sfm, hsm};
    /* Unlink a stale pair holding hs_id, then upsert ours. ON CONFLICT covers (kind, sf_id)
     * only: when another worker saves the same pair between the upsert's conflict check and its
     * index entries, the (kind, hs_id) key answers a unique violation. The other worker's row
     * is there now, so the statements run again update it. */
    enum err rc = ERR_CONFLICT;
    for (int attempt = 0; attempt < LINK_SAVE_TRIES && rc == ERR_CONFLICT; attempt++)
        rc = save_once(db, params);
    free(hsn);
    free(ss);
    free(hw);
    free(sw);
    return rc;
}

enum err link_note_written(PGconn *db, const char *kind, const char *sf_id, bool is_hs_side,
                           const cJSON *values)
{
    if (!values || !values->child)
        return ERR_OK;
    char *text = json_text(values);
    const char *params[] = {kind, sf_id, text};
    PGresult *r =
        PQexecParams(db,
                     is_hs_side ? "UPDATE record_link SET hs_written = hs_written || $3::jsonb"
                                  " WHERE kind = $1 AND sf_id = $2"
                                : "UPDATE record_link SET sf_written = sf_written || $3::jsonb"
                                  " WHERE kind = $1 AND sf_id = $2",
                     3, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot save record link");
    PQclear(r);
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
    return delete_where(db, "DELETE FROM record_link WHERE kind = $1 AND sf_id = $2", kind, sf_id);
}

enum err link_delete_by_hs(PGconn *db, const char *kind, const char *hs_id)
{
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
    cJSON_Delete(l->sf_seen);
    cJSON_Delete(l->hs_seen);
    memset(l, 0, sizeof(*l));
}
