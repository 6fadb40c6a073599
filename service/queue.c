/* queue.c - the sync_event / sync_record tables. Each operation is one SQL statement (one
 * round trip, one transaction), so a crash at any point leaves the queue consistent: an event
 * is pending, running under a lease that will expire, done, or dead. */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "util.h"

static const char push_sql[] =
    "WITH input AS ("
    "  SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(source text, dedup_key text,"
    "    object_type text, record_id text, event_type text, occurred_ms bigint, payload jsonb)"
    "), rec AS ("
    "  INSERT INTO sync_record (source, object_type, record_id)"
    "  SELECT DISTINCT source, object_type, record_id FROM input"
    "  ON CONFLICT DO NOTHING"
    "), ins AS ("
    "  INSERT INTO sync_event (source, dedup_key, object_type, record_id, event_type,"
    "                          occurred_at, payload)"
    "  SELECT source, dedup_key, object_type, record_id, event_type,"
    "         to_timestamp(occurred_ms / 1000.0), payload FROM input"
    "  ON CONFLICT (source, dedup_key) DO NOTHING RETURNING 1"
    ") SELECT (SELECT count(*) FROM ins), pg_notify('" QUEUE_NOTIFY_CHANNEL "', '')";

enum err queue_push(PGconn *db, const struct queue_event_in *events, size_t n, size_t *stored)
{
    cJSON *rows = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        const struct queue_event_in *e = &events[i];
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "source", e->source);
        cJSON_AddStringToObject(row, "dedup_key", e->dedup_key);
        cJSON_AddStringToObject(row, "object_type", e->object_type);
        cJSON_AddStringToObject(row, "record_id", e->record_id);
        cJSON_AddStringToObject(row, "event_type", e->event_type);
        cJSON_AddNumberToObject(row, "occurred_ms", (double)e->occurred_at_ms);
        cJSON_AddItemToObject(row, "payload", cJSON_Duplicate(e->payload, true));
        cJSON_AddItemToArray(rows, row);
    }
    char *json = cJSON_PrintUnformatted(rows);
    cJSON_Delete(rows);

    const char *params[] = {json};
    PGresult *r = PQexecParams(db, push_sql, 1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot store events");
    if (rc == ERR_OK)
        *stored = (size_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    free(json);
    return rc;
}

static const char claim_sql[] =
    "WITH cand AS ("
    "  SELECT r.source, r.object_type, r.record_id FROM sync_record r"
    "  WHERE (r.source, r.object_type, r.record_id) IN ("
    "          SELECT source, object_type, record_id FROM sync_event"
    "          WHERE status IN ('pending', 'running'))"
    "    AND (r.lease_expires_at IS NULL OR r.lease_expires_at < now())"
    "    AND r.not_before <= now()"
    /* Salesforce budget short: only records with a live event (api_budget_sf_live_only). */
    "    AND (NOT $4::bool OR EXISTS (SELECT 1 FROM sync_event l"
    "          WHERE (l.source, l.object_type, l.record_id) ="
    "                (r.source, r.object_type, r.record_id)"
    "            AND l.status = 'pending' AND sync_event_is_live(l)))"
    "  ORDER BY r.not_before LIMIT $2::int"
    "  FOR UPDATE OF r SKIP LOCKED"
    "), leased AS ("
    "  UPDATE sync_record r SET lease_owner = $1,"
    "         lease_expires_at = now() + make_interval(secs => $3::int)"
    "  FROM cand c WHERE (r.source, r.object_type, r.record_id) ="
    "                    (c.source, c.object_type, c.record_id)"
    "  RETURNING r.source, r.object_type, r.record_id"
    ") UPDATE sync_event e SET status = 'running', attempts = e.attempts + 1,"
    "         lease_owner = $1, last_attempt_at = now()"
    "  FROM leased l WHERE (e.source, e.object_type, e.record_id) ="
    "                      (l.source, l.object_type, l.record_id)"
    "    AND e.status IN ('pending', 'running')"
    "  RETURNING e.source, e.object_type, e.record_id, e.id, e.event_type, e.payload::text,"
    "            e.attempts, (extract(epoch FROM e.occurred_at) * 1000)::bigint";

/* Claimed rows before grouping; sorted by record, then time, then id. */
struct claim_row {
    const char *source;
    const char *object_type;
    const char *record_id;
    struct queue_event ev;
};

static int cmp_rows(const void *pa, const void *pb)
{
    const struct claim_row *a = pa;
    const struct claim_row *b = pb;
    int c = strcmp(a->source, b->source);
    if (!c)
        c = strcmp(a->object_type, b->object_type);
    if (!c)
        c = strcmp(a->record_id, b->record_id);
    if (!c)
        c = (a->ev.occurred_at_ms > b->ev.occurred_at_ms) -
            (a->ev.occurred_at_ms < b->ev.occurred_at_ms);
    if (!c)
        c = (a->ev.id > b->ev.id) - (a->ev.id < b->ev.id);
    return c;
}

/* Everything a batch points into, freed together. */
struct batch_storage {
    char **strings;
    size_t string_count;
    struct queue_event *events;
};

static const char *keep(struct batch_storage *st, const char *s)
{
    st->strings[st->string_count] = xstrdup(s);
    return st->strings[st->string_count++];
}

enum err queue_claim(PGconn *db, const char *owner, int max_records, int lease_seconds,
                     bool live_only, struct queue_batch *out)
{
    char max_s[16], lease_s[16];
    snprintf(max_s, sizeof(max_s), "%d", max_records);
    snprintf(lease_s, sizeof(lease_s), "%d", lease_seconds);
    const char *params[] = {owner, max_s, lease_s, live_only ? "true" : "false"};
    PGresult *r = PQexecParams(db, claim_sql, 4, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot claim events");
    if (rc != ERR_OK) {
        PQclear(r);
        return rc;
    }

    size_t n = (size_t)PQntuples(r);
    struct batch_storage *st = xcalloc(1, sizeof(*st));
    st->strings = xcalloc(n * 5 + 1, sizeof(char *));
    struct claim_row *rows = xcalloc(n + 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        rows[i].source = keep(st, PQgetvalue(r, (int)i, 0));
        rows[i].object_type = keep(st, PQgetvalue(r, (int)i, 1));
        rows[i].record_id = keep(st, PQgetvalue(r, (int)i, 2));
        rows[i].ev.id = strtoll(PQgetvalue(r, (int)i, 3), NULL, 10);
        rows[i].ev.event_type = keep(st, PQgetvalue(r, (int)i, 4));
        rows[i].ev.payload = keep(st, PQgetvalue(r, (int)i, 5));
        rows[i].ev.attempts = atoi(PQgetvalue(r, (int)i, 6));
        rows[i].ev.occurred_at_ms = strtoll(PQgetvalue(r, (int)i, 7), NULL, 10);
    }
    PQclear(r);
    qsort(rows, n, sizeof(*rows), cmp_rows);

    /* Group consecutive rows of the same record. */
    st->events = xcalloc(n + 1, sizeof(struct queue_event));
    struct queue_record *recs = xcalloc(n + 1, sizeof(*recs));
    size_t rec_count = 0;
    for (size_t i = 0; i < n; i++) {
        st->events[i] = rows[i].ev;
        bool same = rec_count > 0 && strcmp(recs[rec_count - 1].source, rows[i].source) == 0 &&
                    strcmp(recs[rec_count - 1].object_type, rows[i].object_type) == 0 &&
                    strcmp(recs[rec_count - 1].record_id, rows[i].record_id) == 0;
        if (!same) {
            struct queue_record *q = &recs[rec_count++];
            q->source = rows[i].source;
            q->object_type = rows[i].object_type;
            q->record_id = rows[i].record_id;
            q->events = &st->events[i];
        }
        recs[rec_count - 1].event_count++;
    }
    free(rows);
    out->records = recs;
    out->record_count = rec_count;
    out->storage = st;
    return ERR_OK;
}

void queue_batch_clear(struct queue_batch *b)
{
    if (!b)
        return;
    struct batch_storage *st = b->storage;
    for (size_t i = 0; i < b->record_count; i++)
        free(b->records[i].detail);
    if (st) {
        for (size_t i = 0; i < st->string_count; i++)
            free(st->strings[i]);
        free(st->strings);
        free(st->events);
        free(st);
    }
    free(b->records);
    memset(b, 0, sizeof(*b));
}

/* "{id,id,…}" of the record's claimed events, for a bigint[] parameter; buf_clear it. */
static void event_ids(const struct queue_record *rec, struct buf *ids)
{
    buf_init(ids, 0);
    buf_append_str(ids, "{");
    for (size_t i = 0; i < rec->event_count; i++)
        buf_printf(ids, "%s%lld", i ? "," : "", (long long)rec->events[i].id);
    buf_append_str(ids, "}");
}

static const char finish_sql[] =
    "WITH ev AS ("
    "  UPDATE sync_event SET"
    "    status = CASE WHEN $3 = 'defer' THEN 'pending'"
    "                  WHEN $3 = 'retry' AND attempts < $6::int THEN 'pending'"
    "                  WHEN $3 = 'retry' THEN 'dead' ELSE $3 END,"
    "    attempts = CASE WHEN $3 = 'defer' THEN greatest(attempts - 1, 0) ELSE attempts END,"
    "    lease_owner = NULL,"
    "    last_error = CASE WHEN $3 = 'done' THEN NULL WHEN $3 = 'defer' THEN last_error"
    "                      ELSE $4 END,"
    "    error_code = CASE WHEN $3 = 'done' THEN NULL WHEN $3 = 'defer' THEN error_code"
    "                      ELSE $11 END,"
    "    finished_at = CASE WHEN $3 = 'defer' OR ($3 = 'retry' AND attempts < $6::int) THEN NULL"
    "                       ELSE now() END"
    "  WHERE id = ANY($2::bigint[]) AND lease_owner = $1 AND status = 'running'"
    "  RETURNING id, source, object_type, record_id, status, attempts"
    "), outcome AS ("
    "  INSERT INTO sync_outcome (event_id, source, object_type, record_id, outcome, attempt,"
    "                            detail, worker, error_code)"
    "  SELECT id, source, object_type, record_id,"
    "         CASE WHEN $3 = 'defer' THEN 'deferred' WHEN status = 'pending' THEN 'retry'"
    "              WHEN status = 'done' AND $8 THEN 'skipped'"
    "              WHEN status = 'done' AND $12 THEN 'warning' ELSE status END,"
    "         attempts, $4, $1, $11 FROM ev WHERE $3 <> 'defer' OR $11 = 'RATE_LIMIT'"
    "), rec AS ("
    "  UPDATE sync_record SET lease_owner = NULL, lease_expires_at = NULL,"
    "         not_before = now() + make_interval(secs => $5::double precision / 1000)"
    "  WHERE (source, object_type, record_id) = ($7, $9, $10) AND lease_owner = $1"
    ") SELECT count(*) FROM ev";

enum err queue_finish(PGconn *db, const char *owner, const struct queue_record *rec,
                      enum queue_outcome outcome, const char *detail, int retry_delay_ms,
                      int max_attempts, size_t *changed)
{
    struct buf ids;
    event_ids(rec, &ids);

    static const char *const names[] = {"done", "retry", "dead", "defer"};
    char delay_s[16], max_s[16];
    snprintf(delay_s, sizeof(delay_s), "%d",
             outcome == QUEUE_RETRY || outcome == QUEUE_DEFER ? retry_delay_ms : 0);
    snprintf(max_s, sizeof(max_s), "%d", max_attempts);
    const char *params[] = {owner,
                            ids.data,
                            names[outcome],
                            detail,
                            delay_s,
                            max_s,
                            rec->source,
                            rec->is_skipped ? "true" : "false",
                            rec->object_type,
                            rec->record_id,
                            rec->result == ERR_OK ? NULL : err_name(rec->result),
                            rec->has_warning ? "true" : "false"};
    PGresult *r = PQexecParams(db, finish_sql, 12, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot finish events");
    if (rc == ERR_OK && changed)
        *changed = (size_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    buf_clear(&ids);
    return rc;
}

enum err queue_requeue_dead(PGconn *db, const int64_t *ids, size_t n, long long *requeued)
{
    struct buf list;
    buf_init(&list, 0);
    buf_append_str(&list, "{");
    for (size_t i = 0; i < n; i++)
        buf_printf(&list, "%s%lld", i ? "," : "", (long long)ids[i]);
    buf_append_str(&list, "}");
    const char *params[] = {n ? list.data : NULL};
    PGresult *r = PQexecParams(
        db,
        "WITH ev AS (UPDATE sync_event SET status = 'pending', attempts = 0, last_error = NULL,"
        "    error_code = NULL,"
        "    finished_at = NULL, lease_owner = NULL"
        "  WHERE status = 'dead' AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[]))"
        "  RETURNING source, object_type, record_id),"
        " rec AS (UPDATE sync_record r SET not_before = now() FROM (SELECT DISTINCT * FROM ev) e"
        "  WHERE (r.source, r.object_type, r.record_id) = (e.source, e.object_type, e.record_id))"
        " SELECT (SELECT count(*) FROM ev), pg_notify('" QUEUE_NOTIFY_CHANNEL "', '')",
        1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot requeue dead events");
    if (rc == ERR_OK && requeued)
        *requeued = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    buf_clear(&list);
    return rc;
}

enum err queue_prune(PGconn *db, int retention_hours, long long *deleted)
{
    char hours[16];
    snprintf(hours, sizeof(hours), "%d", retention_hours);
    const char *params[] = {hours};
    PGresult *r =
        PQexecParams(db,
                     "WITH gone AS (DELETE FROM sync_event WHERE status = 'done'"
                     "  AND finished_at < now() - make_interval(hours => $1::int) RETURNING id),"
                     " o AS (DELETE FROM sync_outcome WHERE event_id IN (SELECT id FROM gone))"
                     " SELECT count(*) FROM gone",
                     1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot prune done events");
    if (rc == ERR_OK && deleted)
        *deleted = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return rc;
}

enum err queue_next_due_ms(PGconn *db, long long *ms)
{
    PGresult *r = PQexec(db, "SELECT ceil(extract(epoch FROM min(greatest(r.not_before, coalesce("
                             "  r.lease_expires_at, r.not_before))) - now()) * 1000)::bigint"
                             " FROM sync_record r WHERE (r.source, r.object_type, r.record_id) IN ("
                             "  SELECT source, object_type, record_id FROM sync_event"
                             "  WHERE status IN ('pending', 'running'))");
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read next due time");
    if (rc == ERR_OK) {
        if (PQgetisnull(r, 0, 0)) {
            *ms = -1;
        } else {
            long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            *ms = v < 0 ? 0 : v;
        }
    }
    PQclear(r);
    return rc;
}

enum err queue_depth(PGconn *db, struct queue_depth *out)
{
    PGresult *r = PQexec(db, "SELECT status, count(*) FROM sync_event GROUP BY status");
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot count events");
    if (rc == ERR_OK) {
        memset(out, 0, sizeof(*out));
        for (int i = 0; i < PQntuples(r); i++) {
            const char *s = PQgetvalue(r, i, 0);
            long long n = strtoll(PQgetvalue(r, i, 1), NULL, 10);
            if (strcmp(s, "pending") == 0)
                out->pending = n;
            else if (strcmp(s, "running") == 0)
                out->running = n;
            else if (strcmp(s, "done") == 0)
                out->done = n;
            else if (strcmp(s, "dead") == 0)
                out->dead = n;
        }
    }
    PQclear(r);
    return rc;
}
