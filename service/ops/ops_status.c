/* ops_status.c - see ops_status.h. Each view is one or two SQL statements that shape their own
 * rows; ops_rows_json turns rows into JSON objects. Times are UTC ISO 8601 strings. */
#include "ops_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "queue.h"
#include "sf_setup.h"
#include "sync_state.h"
#include "util.h"

#define ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

const char *ops_str(const cJSON *o, const char *name)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    return v ? v : "";
}

double ops_num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

cJSON *ops_rows_json(PGresult *r)
{
    cJSON *rows = cJSON_CreateArray();
    int nf = PQnfields(r);
    for (int i = 0; i < PQntuples(r); i++) {
        cJSON *row = cJSON_CreateObject();
        for (int f = 0; f < nf; f++) {
            const char *name = PQfname(r, f);
            if (PQgetisnull(r, i, f)) {
                cJSON_AddNullToObject(row, name);
                continue;
            }
            const char *v = PQgetvalue(r, i, f);
            switch (PQftype(r, f)) {
            case 16: /* bool */
                cJSON_AddBoolToObject(row, name, v[0] == 't');
                break;
            case 20:   /* int8 */
            case 21:   /* int2 */
            case 23:   /* int4 */
            case 700:  /* float4 */
            case 701:  /* float8 */
            case 1700: /* numeric */
                cJSON_AddNumberToObject(row, name, strtod(v, NULL));
                break;
            case 114:  /* json */
            case 3802: /* jsonb */
            {
                cJSON *j = cJSON_Parse(v);
                cJSON_AddItemToObject(row, name, j ? j : cJSON_CreateNull());
                break;
            }
            default:
                cJSON_AddStringToObject(row, name, v);
            }
        }
        cJSON_AddItemToArray(rows, row);
    }
    return rows;
}

/* Runs sql with params; on success *rows is the rows as JSON. */
static enum err query_json(PGconn *db, const char *sql, int n, const char *const *params,
                           const char *what, cJSON **rows)
{
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, what);
    if (rc == ERR_OK)
        *rows = ops_rows_json(r);
    PQclear(r);
    return rc;
}

/* Running: a pending event of a record under a lease that has not run out (a claim leases the
 * record and leaves its events pending, queue.c), or one an older worker marked running. */
static const char queue_sql[] =
    "SELECT count(*) FILTER (WHERE status = 'pending' AND r.record_id IS NULL) AS pending,"
    "       count(*) FILTER (WHERE status = 'running' OR (status = 'pending'"
    "         AND r.record_id IS NOT NULL)) AS running,"
    "       count(*) FILTER (WHERE status = 'done') AS done,"
    "       count(*) FILTER (WHERE status = 'dead') AS dead,"
    "       coalesce(extract(epoch FROM now() - min(received_at) FILTER (WHERE status IN"
    "         ('pending', 'running'))), 0)::float8 AS oldest_pending_seconds,"
    /* lag: how long the events finished in the last hour waited from receipt to done */
    "       coalesce(extract(epoch FROM avg(finished_at - received_at) FILTER (WHERE status ="
    "         'done' AND finished_at > now() - interval '1 hour')), 0)::float8 AS lag_seconds,"
    "       (SELECT count(*) FROM ingest_inbox) AS inbox_pending" /* acked, not yet split */
    "  FROM sync_event e LEFT JOIN sync_record r"
    "    ON (r.source, r.object_type, r.record_id) = (e.source, e.object_type, e.record_id)"
    "   AND r.open_events > 0 AND r.lease_expires_at > now()";

static const char last_24h_sql[] =
    "SELECT CASE source WHEN 'salesforce' THEN 'salesforce to hubspot'"
    "       ELSE 'hubspot to salesforce' END AS direction, source, outcome,"
    "       count(*) AS events, count(DISTINCT (object_type, record_id)) AS records"
    "  FROM sync_outcome WHERE at > now() - interval '24 hours'"
    "  GROUP BY source, outcome ORDER BY source DESC, outcome";

static const char problems_sql[] =
    "SELECT CASE outcome WHEN 'dead' THEN 'error' ELSE 'warning' END AS severity,"
    "       coalesce(error_code, CASE outcome WHEN 'warning' THEN 'PARTIAL_SYNC'"
    "                                ELSE 'UNKNOWN' END) AS type, source, count(*) AS events,"
    "       count(DISTINCT (object_type, record_id)) AS records, " ISO(
        "max(at)") " AS last_at,"
                   "       (array_agg(detail ORDER BY at DESC))[1] AS example"
                   "  FROM sync_outcome WHERE at > now() - interval '24 hours' AND outcome IN "
                   "('dead', 'retry', 'warning')"
                   "  GROUP BY 1, 2, 3 ORDER BY 1, 4 DESC";

static const char skipped_sql[] =
    "SELECT left(detail, 160) AS reason, source, count(*) AS events,"
    "       count(DISTINCT (object_type, record_id)) AS records"
    "  FROM sync_outcome WHERE at > now() - interval '24 hours' AND outcome = 'skipped'"
    "  GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 20";

/* The shared API budget (issue 9, api_budget.c): HubSpot's window as dealsync's log holds it
 * and the day; Salesforce's usage as last seen. */
static const char budget_sql[] =
    "SELECT api,"
    "       (SELECT count(*) FROM api_budget_call c WHERE c.api = b.api"
    "           AND c.at > now() - coalesce(interval_ms, 10000) * interval '1 millisecond'"
    "           AND c.at <= now()) AS calls_in_window,"
    "       (SELECT count(*) FROM api_budget_call c WHERE c.api = b.api AND c.at > now())"
    "         AS reserved,"
    "       limit_max AS header_max, remaining AS header_remaining,"
    "       CASE WHEN day = (now() AT TIME ZONE 'UTC')::date THEN day_used ELSE 0 END AS day_used,"
    "       daily_limit, greatest(extract(epoch FROM next_at - now()), 0)::float8 AS held_seconds,"
    "       usage_used, usage_max, " ISO("observed_at") " AS observed_at"
                                                        "  FROM api_budget b ORDER BY api";

enum err ops_status(PGconn *db, cJSON **out)
{
    cJSON *status = cJSON_CreateObject();
    char now[UTIL_ISO8601_LEN];
    util_format_iso8601_ms(util_now_ms(), now);
    cJSON_AddStringToObject(status, "generated_at", now);

    cJSON *settings = cJSON_AddObjectToObject(status, "settings");
    char *sync_deals = NULL;
    enum err rc = sync_setting_get(db, SYNC_SETTING_SYNC_DEALS, "off", &sync_deals);
    if (rc == ERR_OK)
        cJSON_AddStringToObject(settings, "sync_deals", sync_deals);
    free(sync_deals);
    bool is_ready = false;
    char *reason = NULL;
    if (rc == ERR_OK && sf_setup_deal_field_state(db, &is_ready, &reason) == ERR_OK)
        cJSON_AddStringToObject(settings, "deal_id_field",
                                is_ready ? "ready"
                                : reason ? reason
                                         : "not checked yet");
    free(reason);

    cJSON *rows = NULL;
    if (rc == ERR_OK)
        rc = query_json(db, queue_sql, 0, NULL, "cannot read the queue depth", &rows);
    if (rc == ERR_OK) {
        cJSON_AddItemToObject(status, "queue", cJSON_DetachItemFromArray(rows, 0));
        cJSON_Delete(rows);
        rc = query_json(db, last_24h_sql, 0, NULL, "cannot read outcomes", &rows);
    }
    if (rc == ERR_OK) {
        cJSON_AddItemToObject(status, "last_24h", rows);
        rc = query_json(db, problems_sql, 0, NULL, "cannot read problems", &rows);
    }
    if (rc == ERR_OK) {
        cJSON_AddItemToObject(status, "problems", rows);
        rc = query_json(db, skipped_sql, 0, NULL, "cannot read skipped outcomes", &rows);
    }
    if (rc == ERR_OK) {
        cJSON_AddItemToObject(status, "skipped", rows);
        rc = query_json(db, budget_sql, 0, NULL, "cannot read the api budget", &rows);
    }
    if (rc == ERR_OK)
        cJSON_AddItemToObject(status, "api_budget", rows);
    if (rc != ERR_OK) {
        cJSON_Delete(status);
        return rc;
    }
    *out = status;
    return ERR_OK;
}

enum err ops_dead_letters(PGconn *db, int limit, cJSON **out)
{
    char n[16];
    snprintf(n, sizeof(n), "%d", limit);
    const char *params[] = {n};
    return query_json(
        db,
        "SELECT id, source, object_type, record_id, event_type,"
        "       coalesce(error_code, 'UNKNOWN') AS type, last_error AS reason,"
        "       attempts, " ISO(
            "received_at") " AS received_at,"
                           "       " ISO(
                               "last_attempt_at") " AS last_attempt_at,"
                                                  "       " ISO(
                                                      "finished_at") " AS finished_at"
                                                                     "  FROM sync_event WHERE "
                                                                     "status = 'dead'"
                                                                     "  ORDER BY finished_at DESC "
                                                                     "NULLS LAST, id DESC LIMIT "
                                                                     "$1::int",
        1, params, "cannot read dead letters", out);
}

/* Linked opportunities first, then records with events but no link yet. A Salesforce id may be
 * given in its 15-character form. */
static const char search_sql[] =
    "WITH q AS (SELECT $1::text AS q, lower($1::text) AS lq),"
    " linked AS ("
    "  SELECT l.sf_id AS salesforce_id, l.hs_id AS hubspot_id,"
    "         coalesce(l.sf_seen->>'Name', l.hs_seen->>'dealname') AS name,"
    "         " ISO(
        "l.synced_at") " AS linked_at"
                       "    FROM record_link l, q WHERE l.kind = 'opportunity' AND (l.sf_id = q.q"
                       "      OR (length(q.q) = 15 AND left(l.sf_id, 15) = q.q) OR l.hs_id = q.q"
                       "      OR strpos(lower(coalesce(l.sf_seen->>'Name', '')), q.lq) > 0"
                       "      OR strpos(lower(coalesce(l.hs_seen->>'dealname', '')), q.lq) > 0)"
                       "    ORDER BY l.synced_at DESC LIMIT 20),"
                       " unlinked AS ("
                       "  SELECT CASE WHEN e.source = 'salesforce' THEN e.record_id END AS "
                       "salesforce_id,"
                       "         CASE WHEN e.source = 'hubspot' THEN e.record_id END AS hubspot_id,"
                       "         max(e.payload->'fields'->>'Name') AS name, NULL::text AS linked_at"
                       "    FROM sync_event e, q"
                       "   WHERE e.object_type IN ('Opportunity', 'deal') AND (e.record_id = q.q"
                       "      OR (length(q.q) = 15 AND left(e.record_id, 15) = q.q)"
                       "      OR strpos(lower(coalesce(e.payload->'fields'->>'Name', '')), q.lq) > "
                       "0)"
                       "     AND NOT EXISTS (SELECT 1 FROM record_link l WHERE l.kind = "
                       "'opportunity' AND"
                       "       ((e.source = 'salesforce' AND l.sf_id = e.record_id)"
                       "        OR (e.source = 'hubspot' AND l.hs_id = e.record_id)))"
                       "   GROUP BY 1, 2 LIMIT 20)"
                       " SELECT * FROM linked UNION ALL SELECT * FROM unlinked LIMIT 20";

static const char history_sql[] =
    "SELECT e.id AS event_id, e.source, e.object_type, e.record_id, e.event_type,"
    "       " ISO("e.received_at") " AS received_at, e.status, o.outcome, o.attempt,"
                                   "       o.error_code AS type, o.detail, " ISO(
                                       "o.at") " AS at"
                                               "  FROM sync_event e LEFT JOIN sync_outcome o ON "
                                               "o.event_id = e.id"
                                               " WHERE (e.source = 'salesforce' AND e.object_type "
                                               "= 'Opportunity' AND e.record_id = $1)"
                                               "    OR (e.source = 'hubspot' AND e.object_type = "
                                               "'deal' AND e.record_id = $2)"
                                               " ORDER BY coalesce(o.at, e.received_at), e.id, "
                                               "o.id LIMIT 500";

enum err ops_records(PGconn *db, const char *q, cJSON **out)
{
    const char *params[] = {q};
    cJSON *records = NULL;
    enum err rc = query_json(db, search_sql, 1, params, "cannot search records", &records);
    cJSON *rec;
    cJSON_ArrayForEach(rec, records)
    {
        if (rc != ERR_OK)
            break;
        const char *ids[] = {cJSON_GetStringValue(cJSON_GetObjectItem(rec, "salesforce_id")),
                             cJSON_GetStringValue(cJSON_GetObjectItem(rec, "hubspot_id"))};
        cJSON *history = NULL;
        rc = query_json(db, history_sql, 2, ids, "cannot read a record's history", &history);
        if (rc == ERR_OK)
            cJSON_AddItemToObject(rec, "history", history);
    }
    if (rc != ERR_OK) {
        cJSON_Delete(records);
        return rc;
    }
    *out = records;
    return ERR_OK;
}

enum err ops_retry(PGconn *db, const int64_t *ids, size_t n, const char *type, long long *moved)
{
    *moved = 0;
    if (n > 0)
        return queue_requeue_dead(db, ids, n, moved);
    if (!type)
        return ERR_INVALID;
    const char *params[] = {type};
    PGresult *r = PQexecParams(db,
                               "SELECT id FROM sync_event WHERE status = 'dead'"
                               " AND coalesce(error_code, 'UNKNOWN') = $1",
                               1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot find dead letters of a type");
    if (rc == ERR_OK && PQntuples(r) > 0) {
        size_t count = (size_t)PQntuples(r);
        int64_t *found = xcalloc(count, sizeof(int64_t));
        for (size_t i = 0; i < count; i++)
            found[i] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        rc = queue_requeue_dead(db, found, count, moved);
        free(found);
    }
    PQclear(r);
    return rc;
}

enum err ops_resync(PGconn *db, const char *salesforce_id, const char *hubspot_id, size_t *queued)
{
    *queued = 0;
    if (!salesforce_id && !hubspot_id)
        return ERR_INVALID;
    int64_t now = util_now_ms();
    cJSON *payload = cJSON_CreateObject();
    cJSON_AddStringToObject(payload, "reason", "resync requested by an operator");
    struct queue_event_in ev[2];
    char *keys[2] = {NULL, NULL};
    size_t n = 0;
    if (salesforce_id) {
        keys[n] = xasprintf("resync:%s:%lld", salesforce_id, (long long)now);
        ev[n] =
            (struct queue_event_in){"salesforce", keys[n],      "Opportunity", salesforce_id,
                                    "resync",     (int64_t)now, payload,       QUEUE_PRIORITY_LIVE};
        n++;
    }
    if (hubspot_id) {
        keys[n] = xasprintf("resync:%s:%lld", hubspot_id, (long long)now);
        ev[n] = (struct queue_event_in){"hubspot", keys[n], "deal",  hubspot_id,
                                        "resync",  now,     payload, QUEUE_PRIORITY_LIVE};
        n++;
    }
    enum err rc = queue_push(db, ev, n, queued);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    cJSON_Delete(payload);
    return rc;
}
