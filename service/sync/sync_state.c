/* sync_state.c - sync_setting, poll_watermark, pipeline_map and stage_map. */
#include "sync_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "sync_cache.h"
#include "util.h"

/* Runs sql with params; on success with rows, *first (may be NULL) receives a copy of the
 * first column of the first row, or stays NULL when there is no row. */
static enum err run(PGconn *db, const char *sql, int n, const char *const *params, const char *what,
                    char **first)
{
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType want = PQresultStatus(r) == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
    enum err rc = db_check(db, r, want, what);
    if (rc == ERR_OK && first && want == PGRES_TUPLES_OK && PQntuples(r) > 0 &&
        !PQgetisnull(r, 0, 0))
        *first = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

enum err sync_setting_get(PGconn *db, const char *name, const char *fallback, char **value)
{
    char *v = NULL;
    const char *params[] = {name};
    enum err rc = run(db, "SELECT value FROM sync_setting WHERE name = $1", 1, params,
                      "cannot read setting", &v);
    if (rc != ERR_OK)
        return rc;
    *value = v ? v : xstrdup(fallback);
    return ERR_OK;
}

enum err sync_setting_set(PGconn *db, const char *name, const char *value)
{
    const char *params[] = {name, value};
    return run(db,
               "INSERT INTO sync_setting (name, value) VALUES ($1, $2) ON CONFLICT (name)"
               " DO UPDATE SET value = EXCLUDED.value, updated_at = CASE WHEN sync_setting.value"
               "   = EXCLUDED.value THEN sync_setting.updated_at ELSE now() END",
               2, params, "cannot save setting", NULL);
}

enum err sync_deals_enabled(PGconn *db, bool *on)
{
    char *v = NULL;
    enum err rc = sync_setting_get(db, SYNC_SETTING_SYNC_DEALS, "off", &v);
    if (rc == ERR_OK)
        *on = strcmp(v, "on") == 0;
    free(v);
    return rc;
}

enum err poll_take_turn(PGconn *db, const char *name, int interval_s, int64_t initial_ms,
                        bool *is_turn, int64_t *watermark_ms)
{
    char interval[16], initial[32];
    snprintf(interval, sizeof(interval), "%d", interval_s);
    snprintf(initial, sizeof(initial), "%lld", (long long)initial_ms);
    const char *seed[] = {name, initial};
    enum err rc = run(db,
                      "INSERT INTO poll_watermark (name, watermark)"
                      " VALUES ($1, to_timestamp($2::bigint / 1000.0)) ON CONFLICT DO NOTHING",
                      2, seed, "cannot seed polling watermark", NULL);
    if (rc != ERR_OK)
        return rc;
    const char *params[] = {name, interval};
    char *got = NULL;
    rc = run(db,
             "UPDATE poll_watermark SET last_run_at = now() WHERE name = $1"
             "  AND (last_run_at IS NULL"
             "       OR last_run_at <= now() - make_interval(secs => $2::int))"
             " RETURNING (extract(epoch FROM watermark) * 1000)::bigint",
             2, params, "cannot take polling turn", &got);
    if (rc != ERR_OK)
        return rc;
    *is_turn = got != NULL;
    if (got)
        *watermark_ms = strtoll(got, NULL, 10);
    free(got);
    return ERR_OK;
}

int64_t poll_first_window_from(PGconn *db, int64_t now, int64_t max_back_ms)
{
    int64_t from = now - max_back_ms;
    const char *params[] = {SYNC_SETTING_SYNC_DEALS};
    PGresult *r = PQexecParams(db,
                               "SELECT (extract(epoch FROM updated_at) * 1000)::bigint"
                               " FROM sync_setting WHERE name = $1 AND value = 'on'",
                               1, NULL, params, NULL, NULL, 0);
    if (db_check(db, r, PGRES_TUPLES_OK, "cannot read when sync deals was switched on") == ERR_OK &&
        PQntuples(r) == 1) {
        int64_t on = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        if (on > from)
            from = on < now ? on : now;
    }
    PQclear(r);
    return from;
}

enum err poll_advance(PGconn *db, const char *name, int64_t watermark_ms)
{
    char wm[32];
    snprintf(wm, sizeof(wm), "%lld", (long long)watermark_ms);
    const char *params[] = {name, wm};
    return run(db,
               "UPDATE poll_watermark SET watermark = to_timestamp($2::bigint / 1000.0)"
               " WHERE name = $1",
               2, params, "cannot save polling watermark", NULL);
}

/* The pipeline and stage maps change when a pipeline or a stage is created (here, by
 * pipelines.c), and every record of a batch reads them: inside a batch they are remembered
 * (sync_cache.h), and each save here forgets them. A pipeline not found is not remembered (the
 * caller may create it); a stage map is remembered as read, and a stage missing from it is
 * looked up in HubSpot by label before it is created (pipelines.c). */
#define CACHE_PIPELINE_BY_RT "pipeline_by_record_type"
#define CACHE_PIPELINE_BY_HS "pipeline_by_hs"
#define CACHE_STAGE_MAP "stage_map"

static enum err find_one(PGconn *db, const char *sql, const char *cache, const char *key,
                         char **out)
{
    const cJSON *known = sync_cache_get(cache, key);
    if (cJSON_IsString(known)) {
        *out = xstrdup(known->valuestring);
        return ERR_OK;
    }
    char *v = NULL;
    const char *params[] = {key};
    enum err rc = run(db, sql, 1, params, "cannot read pipeline map", &v);
    if (rc != ERR_OK)
        return rc;
    if (!v)
        return ERR_NOT_FOUND;
    sync_cache_put(cache, key, cJSON_CreateString(v));
    *out = v;
    return ERR_OK;
}

enum err pipeline_map_find(PGconn *db, const char *record_type_id, char **hs_pipeline_id)
{
    return find_one(db, "SELECT hs_pipeline_id FROM pipeline_map WHERE record_type_id = $1",
                    CACHE_PIPELINE_BY_RT, record_type_id, hs_pipeline_id);
}

enum err pipeline_map_find_by_hs(PGconn *db, const char *hs_pipeline_id, char **record_type_id)
{
    return find_one(db, "SELECT record_type_id FROM pipeline_map WHERE hs_pipeline_id = $1",
                    CACHE_PIPELINE_BY_HS, hs_pipeline_id, record_type_id);
}

enum err pipeline_map_count(PGconn *db, int *count)
{
    char *v = NULL;
    enum err rc =
        run(db, "SELECT count(*) FROM pipeline_map", 0, NULL, "cannot count pipelines", &v);
    if (rc == ERR_OK)
        *count = v ? atoi(v) : 0;
    free(v);
    return rc;
}

enum err pipeline_map_save(PGconn *db, const char *record_type_id, const char *hs_pipeline_id,
                           const char *label)
{
    const char *params[] = {record_type_id, hs_pipeline_id, label};
    sync_cache_forget(CACHE_PIPELINE_BY_RT);
    sync_cache_forget(CACHE_PIPELINE_BY_HS);
    sync_cache_forget(CACHE_STAGE_MAP);
    static const char sql[] =
        "INSERT INTO pipeline_map (record_type_id, hs_pipeline_id, label)"
        " VALUES ($1, $2, $3) ON CONFLICT (record_type_id) DO UPDATE"
        " SET hs_pipeline_id = EXCLUDED.hs_pipeline_id, label = EXCLUDED.label";
    enum err rc = run(db, sql, 3, params, "cannot save pipeline map", NULL);
    /* Another worker or replica saved the same pipeline at the same moment: its row came in on
     * the pipeline id's unique index, which ON CONFLICT (record_type_id) does not arbitrate, and
     * this insert failed on it. Saved again, the upsert finds that row (test_sync_state). */
    if (rc == ERR_CONFLICT)
        rc = run(db, sql, 3, params, "cannot save pipeline map", NULL);
    return rc;
}

enum err stage_map_load(PGconn *db, const char *record_type_id, cJSON **map)
{
    const cJSON *known = sync_cache_get(CACHE_STAGE_MAP, record_type_id);
    if (cJSON_IsObject(known)) {
        *map = cJSON_Duplicate(known, true);
        return ERR_OK;
    }
    const char *params[] = {record_type_id};
    PGresult *r = PQexecParams(db,
                               "SELECT sf_stage_name, hs_stage_id FROM stage_map"
                               " WHERE record_type_id = $1",
                               1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read stage map");
    if (rc == ERR_OK) {
        cJSON *m = cJSON_CreateObject();
        for (int i = 0; i < PQntuples(r); i++)
            cJSON_AddStringToObject(m, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        *map = m;
        sync_cache_put(CACHE_STAGE_MAP, record_type_id, cJSON_Duplicate(m, true));
    }
    PQclear(r);
    return rc;
}

enum err stage_map_save(PGconn *db, const char *record_type_id, const char *sf_stage_name,
                        const char *hs_stage_id)
{
    const char *params[] = {record_type_id, sf_stage_name, hs_stage_id};
    sync_cache_forget(CACHE_STAGE_MAP);
    return run(db,
               "INSERT INTO stage_map (record_type_id, sf_stage_name, hs_stage_id)"
               " VALUES ($1, $2, $3) ON CONFLICT (record_type_id, sf_stage_name)"
               " DO UPDATE SET hs_stage_id = EXCLUDED.hs_stage_id",
               3, params, "cannot save stage map", NULL);
}
