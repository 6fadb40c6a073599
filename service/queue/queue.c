/* queue.c - the sync_event / sync_record tables. Each operation is one SQL statement (one
 * round trip, one transaction) for a whole batch, never one per event, so a crash at any point
 * leaves the queue consistent: an event is pending, running under a lease that will expire,
 * done, or dead. sync_record.open_events (kept by triggers, migration 0050) lets a claim find
 * the claimable records without reading the events. */
#include "queue.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "util.h"

/* Events of one or more requests (g: the request's index, k: the event's position) in one
 * statement. A key repeated in the statement is stored once, from its first row, and counted for
 * that row's request; each request's count of new events comes back as a row (g, stored).
 * The events are inserted in the order of their keys (source, dedup_key), and numbered in the
 * order they came (k): an insert of a key that another transaction has inserted and not yet
 * committed waits for that transaction, and two pushes that inserted the same keys in their
 * requests' orders could each hold a key the other waited for (a deadlock: PostgreSQL cancels one
 * of the two, 40P01), as when a sender redelivers changes in another order while the first
 * delivery is being stored. The records are upserted in key order too. */
static const char push_sql[] =
    "WITH input AS ("
    "  SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(k int, g int, source text,"
    "    dedup_key text, object_type text, record_id text, event_type text, occurred_ms bigint,"
    "    payload jsonb, priority smallint)"
    "), rec AS ("
    "  INSERT INTO sync_record (source, object_type, record_id, priority)"
    "  SELECT source, object_type, record_id, min(priority) FROM input"
    "  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    "  ON CONFLICT (source, object_type, record_id) DO UPDATE SET priority ="
    "    CASE WHEN sync_record.open_events > 0"
    "         THEN least(sync_record.priority, EXCLUDED.priority) ELSE EXCLUDED.priority END,"
    /* A record without open events takes its place in the claim order now, as a new one does,
     * not at its last finish (which put a record handled a second ago behind one whose change
     * came later); a backoff still in the future stays. */
    "    not_before = CASE WHEN sync_record.open_events > 0 THEN sync_record.not_before"
    "                      ELSE greatest(sync_record.not_before, now()) END"
    /* ids in the order the events came: the claim orders a record's events of the same time
     * by id */
    "), numbered AS MATERIALIZED ("
    "  SELECT nextval('sync_event_id_seq') AS id, i.*"
    "  FROM (SELECT * FROM input ORDER BY k) i"
    "), ins AS ("
    "  INSERT INTO sync_event (id, source, dedup_key, object_type, record_id, event_type,"
    "                          occurred_at, payload, priority)"
    "  SELECT id, source, dedup_key, object_type, record_id, event_type,"
    "         to_timestamp(occurred_ms / 1000.0), payload, priority FROM numbered"
    "  ORDER BY source, dedup_key, k"
    "  ON CONFLICT (source, dedup_key) DO NOTHING RETURNING source, dedup_key"
    "), first AS ("
    "  SELECT DISTINCT ON (source, dedup_key) g, source, dedup_key FROM input"
    "  ORDER BY source, dedup_key, k"
    /* the payload announces the push's events to the idle workers (worker.c, wait_for_work) */
    "), n AS (SELECT pg_notify('" QUEUE_NOTIFY_CHANNEL "', (SELECT count(*) FROM input)::text))"
    " SELECT f.g, count(ins.dedup_key) FROM first f"
    " LEFT JOIN ins ON (ins.source, ins.dedup_key) = (f.source, f.dedup_key)"
    " CROSS JOIN n GROUP BY f.g";

enum err queue_push_groups(PGconn *db, const struct queue_event_in *events, const size_t *group,
                           size_t n, size_t *stored, size_t groups, char sqlstate[6])
{
    cJSON *rows = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        const struct queue_event_in *e = &events[i];
        cJSON *row = cJSON_CreateObject();
        cJSON_AddNumberToObject(row, "k", (double)i);
        cJSON_AddNumberToObject(row, "g", group ? (double)group[i] : 0);
        cJSON_AddStringToObject(row, "source", e->source);
        cJSON_AddStringToObject(row, "dedup_key", e->dedup_key);
        cJSON_AddStringToObject(row, "object_type", e->object_type);
        cJSON_AddStringToObject(row, "record_id", e->record_id);
        cJSON_AddStringToObject(row, "event_type", e->event_type);
        cJSON_AddNumberToObject(row, "occurred_ms", (double)e->occurred_at_ms);
        cJSON_AddItemReferenceToObject(row, "payload", (cJSON *)e->payload);
        cJSON_AddNumberToObject(row, "priority", e->priority);
        cJSON_AddItemToArray(rows, row);
    }
    char *json = cJSON_PrintUnformatted(rows);
    cJSON_Delete(rows);

    for (size_t g = 0; g < groups; g++)
        stored[g] = 0;
    const char *params[] = {json};
    PGresult *r = db_exec_cached(db, push_sql, 1, params);
    if (sqlstate) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(sqlstate, 6, "%s", state ? state : "");
    }
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot store events");
    for (int row = 0; rc == ERR_OK && row < PQntuples(r); row++) {
        size_t g = (size_t)strtoull(PQgetvalue(r, row, 0), NULL, 10);
        if (g < groups)
            stored[g] = (size_t)strtoull(PQgetvalue(r, row, 1), NULL, 10);
    }
    PQclear(r);
    free(json);
    return rc;
}

enum err queue_push(PGconn *db, const struct queue_event_in *events, size_t n, size_t *stored)
{
    return queue_push_groups(db, events, NULL, n, stored, 1, NULL);
}

/* Not a record whose busy lock another session holds (the "busy" list of claim_head_sql). */
#define NOT_BUSY(r)                                                                                \
    "hashtext(CASE " r ".source WHEN 'salesforce' THEN 'sf:' ELSE 'hs:' END || " r                 \
    ".record_id)::oid <> ALL (coalesce((SELECT ids FROM busy), '{}'))"
#define R_NOT_BUSY NOT_BUSY("r")
#define T_NOT_BUSY NOT_BUSY("t")

/* Candidates come from the partial index of records with open events (migration 0050), not
 * from the events. A record leased here whose events are not visible to this statement's
 * snapshot (a push committed while it ran) comes back with a NULL event id, and is released.
 * The most urgent records come first (sync_record.priority: that of the most urgent open
 * event, kept by the push), and a claim holds records of one priority only: a live batch is
 * never held up behind a hundred background records.
 * The lease is the record's alone: the claim reads its open events and writes none of them
 * (migration 0131). Each event written at every claim was a new tuple version with an entry in
 * three indexes and a row in the open-events trigger's transition tables, for a change (pending
 * to running) that the lease already says. An attempt is counted when it ends (the finish); a
 * lease that ran out without a finish or a release (its worker died or hung) is counted here,
 * when the record is taken over, so a record that kills its worker still reaches
 * QUEUE_MAX_ATTEMPTS. Each event comes back with the attempt it is on.
 * Two texts, with and without live_only_sql (the Salesforce budget short), prepared apart: with
 * the choice a parameter ("NOT $5 OR EXISTS ..."), the plan made for its value, without that
 * subquery, was always cheaper than the plan for any value, so PostgreSQL planned every claim
 * anew (about 1 ms of a claim's 2 to 3 ms for 100 records). Each text's plan for any value
 * costs what its plan for given values does, and is reused from the sixth claim on. */
static const char claim_head_sql[] =
    /* The records whose busy lock another session holds (QUEUE_RECORD_LOCK_CLASS): a worker is
     * handling their pair from the other side. The held keys are read once, of this database
     * only (pg_locks shows the cluster's, and advisory locks are per database). */
    "WITH busy AS ("
    "  SELECT array_agg(k.objid) AS ids FROM pg_locks k"
    "  WHERE k.locktype = 'advisory' AND k.classid = " QUEUE_RECORD_LOCK_CLASS "::oid"
    "    AND k.objsubid = 2 AND k.granted AND k.pid <> pg_backend_pid()"
    "    AND k.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())"
    "), cand AS ("
    "  SELECT r.source, r.object_type, r.record_id, r.priority, r.not_before,"
    "         r.lease_owner IS NOT NULL AS lapsed FROM sync_record r"
    "  WHERE r.open_events > 0 AND r.not_before <= now()"
    "    AND (r.lease_expires_at IS NULL OR r.lease_expires_at < now())"
    "    AND " R_NOT_BUSY;

/* Salesforce budget short: only records with a live event (api_budget_sf_live_only). */
static const char live_only_sql[] =
    "    AND EXISTS (SELECT 1 FROM sync_event l"
    "          WHERE (l.source, l.object_type, l.record_id) ="
    "                (r.source, r.object_type, r.record_id)"
    "            AND l.status = 'pending' AND sync_event_is_live(l))";

static const char claim_tail_sql[] =
    /* Rows locked beyond what is leased stay locked until the claim commits, and other
     * claims skip them: more than max_records only when the first claimable is background. */
    "  ORDER BY r.priority, r.not_before"
    /* Busy records are left out here too: a waiting live record whose pair another worker
     * holds (the webhooks of the deals a background batch is writing) made background claims
     * the live size, and an import was written in batches of 20 instead of 100. So are the
     * records a concurrent claim has locked (SKIP LOCKED, as cand does): a live record being
     * claimed by another worker made this claim's cand the live size, all of it background
     * (an import of 2,000 deals with 8 workers was written in 26 and 29 batches, not 21). The row
     * locked here is cand's first, which cand locks and leases anyway. */
    "  LIMIT CASE WHEN (SELECT t.priority FROM sync_record t WHERE t.open_events > 0"
    "                     AND t.not_before <= now() AND (t.lease_expires_at IS NULL"
    "                       OR t.lease_expires_at < now()) AND " T_NOT_BUSY
    "                   ORDER BY t.priority, t.not_before LIMIT 1"
    "                   FOR UPDATE OF t SKIP LOCKED) > 0"
    "        THEN greatest($2::int, $4::int) ELSE $2::int END"
    "  FOR UPDATE OF r SKIP LOCKED"
    "), ranked AS ("
    "  SELECT c.*, row_number() OVER (ORDER BY c.priority, c.not_before) AS n,"
    "         min(c.priority) OVER () AS top FROM cand c"
    "), pick AS ("
    "  SELECT source, object_type, record_id, lapsed FROM ranked"
    "  WHERE priority = top AND (n <= $2::int OR priority > 0)"
    "), leased AS ("
    "  UPDATE sync_record r SET lease_owner = $1, leased_at = now(),"
    "         lease_expires_at = now() + make_interval(secs => $3::int)"
    "  FROM pick c WHERE (r.source, r.object_type, r.record_id) ="
    "                    (c.source, c.object_type, c.record_id)"
    "  RETURNING r.source, r.object_type, r.record_id, c.lapsed"
    /* the attempt of a lease that ran out, counted on the events it held */
    "), counted AS ("
    "  UPDATE sync_event e SET attempts = e.attempts + 1"
    "  FROM leased l WHERE l.lapsed AND (e.source, e.object_type, e.record_id) ="
    "                                   (l.source, l.object_type, l.record_id)"
    "    AND e.status IN ('pending', 'running')"
    "  RETURNING e.id"
    "), ev AS ("
    "  SELECT e.source, e.object_type, e.record_id, e.id, e.event_type, e.payload,"
    "         e.attempts + CASE WHEN l.lapsed THEN 2 ELSE 1 END AS attempts, e.occurred_at"
    "  FROM leased l JOIN sync_event e ON (e.source, e.object_type, e.record_id) ="
    "                                    (l.source, l.object_type, l.record_id)"
    "  WHERE e.status IN ('pending', 'running')"
    /* Every event, then every leased record with a NULL event id: queue_claim matches them
     * (a join here was a nested loop comparing every record with every event). */
    ") SELECT source, object_type, record_id, id, event_type, payload::text, attempts,"
    "         (extract(epoch FROM occurred_at) * 1000)::bigint FROM ev"
    " UNION ALL"
    " SELECT source, object_type, record_id, NULL, NULL, NULL, NULL, NULL FROM leased";

/* The claim's two texts, [0] and [1] with live_only_sql, built once. */
static char *claim_sql[2];
static pthread_once_t claim_sql_once = PTHREAD_ONCE_INIT;

static void claim_sql_build(void)
{
    claim_sql[0] = xasprintf("%s%s", claim_head_sql, claim_tail_sql);
    claim_sql[1] = xasprintf("%s%s%s", claim_head_sql, live_only_sql, claim_tail_sql);
}

/* Claimed rows before grouping; sorted by record, then time, then id. */
struct claim_row {
    const char *source;
    const char *object_type;
    const char *record_id;
    struct queue_event ev;
};

static int cmp_keys(const void *pa, const void *pb)
{
    const struct claim_row *a = pa;
    const struct claim_row *b = pb;
    int c = strcmp(a->source, b->source);
    if (!c)
        c = strcmp(a->object_type, b->object_type);
    if (!c)
        c = strcmp(a->record_id, b->record_id);
    return c;
}

static int cmp_rows(const void *pa, const void *pb)
{
    const struct claim_row *a = pa;
    const struct claim_row *b = pb;
    int c = cmp_keys(a, b);
    if (!c)
        c = (a->ev.occurred_at_ms > b->ev.occurred_at_ms) -
            (a->ev.occurred_at_ms < b->ev.occurred_at_ms);
    if (!c)
        c = (a->ev.id > b->ev.id) - (a->ev.id < b->ev.id);
    return c;
}

/* The end of every give-back: drops owner's ($1) leases of the records lk locked, and wakes the
 * idle workers. */
#define GIVE_BACK_LOCKED                                                                           \
    "), back AS ("                                                                                 \
    "  UPDATE sync_record r SET lease_owner = NULL, lease_expires_at = NULL FROM lk"               \
    "  WHERE (r.source, r.object_type, r.record_id) = (lk.source, lk.object_type, lk.record_id)"   \
    "    AND r.lease_owner = $1 RETURNING 1"                                                       \
    ") SELECT count(*), pg_notify('" QUEUE_NOTIFY_CHANNEL "', '') FROM back"

/* Drops owner's leases of the records in $2 (a JSON array of keys) and wakes the idle workers.
 * The records are locked in key order first, as a push (its upsert of sync_record) and the
 * finish lock theirs: an UPDATE joined to the list locked them in the order of its plan, and a
 * give-back of 20 records deadlocked with a push under the end-to-end benchmark's stream (40P01,
 * one of the two cancelled); the worker only logged it, and the 20 records waited for their
 * 120-second lease. */
static const char give_back_sql[] =
    "WITH lk AS MATERIALIZED ("
    "  SELECT r.source, r.object_type, r.record_id FROM sync_record r"
    "  JOIN jsonb_to_recordset($2::jsonb) AS u(source text, object_type text, record_id text)"
    "    ON (r.source, r.object_type, r.record_id) = (u.source, u.object_type, u.record_id)"
    "  WHERE r.lease_owner = $1 ORDER BY 1, 2, 3 FOR UPDATE OF r" GIVE_BACK_LOCKED;

/* Drops every lease of owner, locked in key order as give_back_sql locks them. A claim leases only
 * records with open events, so the partial index of those (migration 0070) finds them without
 * reading every record. */
static const char give_back_all_sql[] =
    "WITH lk AS MATERIALIZED ("
    "  SELECT r.source, r.object_type, r.record_id FROM sync_record r"
    "  WHERE r.open_events > 0 AND r.lease_owner = $1"
    "  ORDER BY 1, 2, 3 FOR UPDATE OF r" GIVE_BACK_LOCKED;

/* Runs a give-back statement (params[0] the owner); *given (may be NULL) receives how many
 * leases were dropped. */
static enum err give_back_run(PGconn *db, const char *sql, int nparams, const char *const *params,
                              size_t *given)
{
    PGresult *r = PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot give records back");
    if (rc == ERR_OK && given)
        *given = (size_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return rc;
}

/* Runs give_back_sql for keys (a JSON array, borrowed). */
static enum err give_back_keys(PGconn *db, const char *owner, const cJSON *keys, size_t *given)
{
    char *json = cJSON_PrintUnformatted(keys);
    const char *params[] = {owner, json};
    enum err rc = give_back_run(db, give_back_sql, 2, params, given);
    free(json);
    return rc;
}

/* Appends the key of one record to keys (a JSON array). */
static void add_key(cJSON *keys, const char *source, const char *object_type, const char *record_id)
{
    cJSON *k = cJSON_CreateObject();
    cJSON_AddStringToObject(k, "source", source);
    cJSON_AddStringToObject(k, "object_type", object_type);
    cJSON_AddStringToObject(k, "record_id", record_id);
    cJSON_AddItemToArray(keys, k);
}

enum err queue_give_back(PGconn *db, const char *owner, const struct queue_record *recs, size_t n,
                         size_t *given)
{
    cJSON *keys = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        add_key(keys, recs[i].source, recs[i].object_type, recs[i].record_id);
    enum err rc = give_back_keys(db, owner, keys, given);
    cJSON_Delete(keys);
    return rc;
}

enum err queue_give_back_all(PGconn *db, const char *owner, size_t *given)
{
    const char *params[] = {owner};
    return give_back_run(db, give_back_all_sql, 1, params, given);
}

/* Drops the leases of records claimed without a visible event (see claim_sql). */
static void release_empty(PGconn *db, const char *owner, PGresult *r, const struct claim_row *rows,
                          size_t n)
{
    cJSON *keys = cJSON_CreateArray();
    for (int i = 0; i < PQntuples(r); i++) {
        if (!PQgetisnull(r, i, 3))
            continue;
        struct claim_row key = {PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), {0}};
        if (n && bsearch(&key, rows, n, sizeof(*rows), cmp_keys))
            continue;
        add_key(keys, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
    }
    if (cJSON_GetArraySize(keys) > 0 && give_back_keys(db, owner, keys, NULL) != ERR_OK)
        log_warn("an empty claim keeps its lease until it expires");
    cJSON_Delete(keys);
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
    char max_s[16], lease_s[16], background_s[16];
    snprintf(max_s, sizeof(max_s), "%d", max_records);
    snprintf(lease_s, sizeof(lease_s), "%d", lease_seconds);
    snprintf(background_s, sizeof(background_s), "%d", QUEUE_BACKGROUND_CLAIM);
    const char *params[] = {owner, max_s, lease_s, background_s};
    pthread_once(&claim_sql_once, claim_sql_build);
    PGresult *r = db_exec_cached(db, claim_sql[live_only], 4, params);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot claim events");
    if (rc != ERR_OK) {
        PQclear(r);
        return rc;
    }

    size_t total = (size_t)PQntuples(r);
    size_t n = 0;
    struct batch_storage *st = xcalloc(1, sizeof(*st));
    st->strings = xcalloc(total * 5 + 1, sizeof(char *));
    struct claim_row *rows = xcalloc(total + 1, sizeof(*rows));
    for (int i = 0; i < (int)total; i++) {
        if (PQgetisnull(r, i, 3))
            continue;
        rows[n].source = keep(st, PQgetvalue(r, i, 0));
        rows[n].object_type = keep(st, PQgetvalue(r, i, 1));
        rows[n].record_id = keep(st, PQgetvalue(r, i, 2));
        rows[n].ev.id = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        rows[n].ev.event_type = keep(st, PQgetvalue(r, i, 4));
        rows[n].ev.payload = keep(st, PQgetvalue(r, i, 5));
        rows[n].ev.attempts = atoi(PQgetvalue(r, i, 6));
        rows[n].ev.occurred_at_ms = strtoll(PQgetvalue(r, i, 7), NULL, 10);
        n++;
    }
    qsort(rows, n, sizeof(*rows), cmp_rows);
    release_empty(db, owner, r, rows, n);
    PQclear(r);

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

/* Finishes many records in one statement. Per record: $2-$4 key, $5 outcome, $6 detail,
 * $7 retry delay, $8 skipped, $12 error code (the handler's error name), $13 warning, $14 whether
 * the error is transient; per event: $9 id, $10 its record's index (1-based). An event that dies
 * of a transient cause is marked for the automatic retry (is_transient_dead) here: the worker
 * marked it in a statement of its own after the finish, which a crash between the two left
 * unmarked for good, and which locked those events without their record, against the order
 * every other statement takes (a requeue of the same events could deadlock with it). Each event is
 * read through the primary key, joined to its input row (id, record index), and finds its record's
 * values by subscript: no step compares every event with every other (array_position over the ids,
 * evaluated for each event, was: a batch of 100 records with 8 events each spent most of its 100 to
 * 300 ms there). The records are locked in key order first, as the open-events trigger of a
 * concurrent push does: no deadlock. Only the events of records still leased by owner change (the
 * lease is the record's: a worker whose lease ran out and was taken over changes nothing); each
 * ends the attempt it was on (attempts + 1; a deferral counts none), dated from its record's claim
 * (last_attempt_at). The record's UPDATE also takes its closed events off open_events, so the
 * statement trigger of migration 0050 skips this statement (migration 0085) instead of updating
 * every finished record a second time: the statement sets the transaction-local
 * dealsync.open_events_counted, which the trigger reads and clears after the statement. It set
 * it before in a statement of its own, in a transaction of its own when the caller had none: a
 * round trip more for every finish, three outside a transaction. */
static const char finish_sql[] =
    "WITH lk AS ("
    "  SELECT r.source, r.object_type, r.record_id, u.delay_ms, u.k::int AS k,"
    "         r.lease_owner = $1 AS held, r.leased_at"
    "  FROM unnest($2::text[], $3::text[], $4::text[], $7::int[]) WITH ORDINALITY"
    "       AS u(source, object_type, record_id, delay_ms, k)"
    "  JOIN sync_record r ON (r.source, r.object_type, r.record_id) ="
    "                        (u.source, u.object_type, u.record_id)"
    "  ORDER BY 1, 2, 3 FOR UPDATE OF r"
    /* the indexes of the records still held, and when each was claimed */
    "), held AS MATERIALIZED ("
    "  SELECT coalesce(array_agg(k ORDER BY k) FILTER (WHERE held), '{}') AS ks,"
    "         coalesce(array_agg(leased_at ORDER BY k) FILTER (WHERE held), '{}') AS ats,"
    /* read before any event is changed: the trigger skips this statement (see above) */
    "         set_config('dealsync.open_events_counted', 'on', true) AS counted"
    "  FROM lk"
    "), ev AS ("
    "  UPDATE sync_event e SET"
    "    status = CASE WHEN o.outcome = 'defer' THEN 'pending'"
    "                  WHEN o.outcome <> 'retry' THEN o.outcome"
    "                  WHEN e.attempts + 1 < $11::int THEN 'pending' ELSE 'dead' END,"
    "    attempts = CASE WHEN o.outcome = 'defer' THEN e.attempts ELSE e.attempts + 1 END,"
    "    lease_owner = NULL,"
    "    last_attempt_at = h.ats[array_position(h.ks, o.k)],"
    "    last_error = CASE WHEN o.outcome = 'done' THEN NULL"
    "                      WHEN o.outcome = 'defer' THEN e.last_error"
    "                      ELSE ($6::text[])[o.k] END,"
    "    error_code = CASE WHEN o.outcome = 'done' THEN NULL"
    "                      WHEN o.outcome = 'defer' THEN e.error_code"
    "                      ELSE ($12::text[])[o.k] END,"
    "    finished_at = CASE WHEN o.outcome = 'defer' THEN NULL"
    "                       WHEN o.outcome = 'retry' AND e.attempts + 1 < $11::int"
    "                       THEN NULL ELSE now() END,"
    "    is_transient_dead = ($14::bool[])[o.k] AND (o.outcome = 'dead'"
    "                        OR (o.outcome = 'retry' AND e.attempts + 1 >= $11::int))"
    "  FROM (SELECT x.id, x.k, ($5::text[])[x.k] AS outcome"
    "        FROM unnest($9::bigint[], $10::int[]) AS x(id, k)) o, held h"
    "  WHERE e.id = o.id AND o.k = ANY(h.ks) AND e.status IN ('pending', 'running')"
    "  RETURNING e.id, e.source, e.object_type, e.record_id, e.status, e.attempts,"
    "            o.k AS i, o.outcome"
    /* the record index of each closed event, once per closed event (an array: a join of the
     * records with these rows was a nested loop comparing every pair) */
    "), closed AS MATERIALIZED ("
    "  SELECT coalesce(array_agg(i) FILTER (WHERE status NOT IN ('pending', 'running')),"
    "                  '{}') AS ks FROM ev"
    "), rec AS ("
    "  UPDATE sync_record r SET lease_owner = NULL, lease_expires_at = NULL,"
    "         not_before = now() + make_interval(secs => lk.delay_ms / 1000.0),"
    "         open_events = r.open_events - cardinality(array_positions(c.ks, lk.k))"
    "  FROM lk CROSS JOIN closed c"
    "  WHERE (r.source, r.object_type, r.record_id) ="
    "        (lk.source, lk.object_type, lk.record_id) AND r.lease_owner = $1"
    "), outcome AS ("
    "  INSERT INTO sync_outcome (event_id, source, object_type, record_id, outcome, attempt,"
    "                            detail, worker, error_code)"
    "  SELECT id, source, object_type, record_id,"
    "         CASE WHEN outcome = 'defer' THEN 'deferred' WHEN status = 'pending' THEN 'retry'"
    "              WHEN status = 'done' AND ($8::bool[])[i] THEN 'skipped'"
    "              WHEN status = 'done' AND ($13::bool[])[i] THEN 'warning' ELSE status END,"
    "         attempts, ($6::text[])[i], $1, ($12::text[])[i] FROM ev"
    /* a record waiting for API budget says so (issue 9); a busy one does not */
    "  WHERE outcome <> 'defer' OR ($12::text[])[i] = 'RATE_LIMIT'"
    ") SELECT i, count(*) FROM ev GROUP BY i";

/* Appends s (NULL: SQL NULL) as an element of a PostgreSQL array literal. */
static void array_add(struct buf *b, const char *s)
{
    buf_append_str(b, b->len > 1 ? "," : "");
    if (!s) {
        buf_append_str(b, "NULL");
        return;
    }
    buf_append_str(b, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_append_str(b, "\\");
        buf_append(b, p, 1);
    }
    buf_append_str(b, "\"");
}

enum err queue_finish_many(PGconn *db, const char *owner, struct queue_finish_item *items, size_t n,
                           int max_attempts)
{
    static const char *const names[] = {"done", "retry", "dead", "defer"};
    if (n == 0)
        return ERR_OK;
    enum {
        SOURCE,
        TYPE,
        RECORD,
        OUTCOME,
        DETAIL,
        DELAY,
        SKIPPED,
        IDS,
        INDEX,
        CODE,
        WARNING,
        TRANSIENT,
        ARRAYS
    };
    struct buf a[ARRAYS];
    for (int k = 0; k < ARRAYS; k++) {
        buf_init(&a[k], 0);
        buf_append_str(&a[k], "{");
    }
    for (size_t k = 0; k < n; k++) {
        const struct queue_finish_item *it = &items[k];
        const struct queue_record *rec = it->record;
        char num[32];
        array_add(&a[SOURCE], rec->source);
        array_add(&a[TYPE], rec->object_type);
        array_add(&a[RECORD], rec->record_id);
        array_add(&a[OUTCOME], names[it->outcome]);
        array_add(&a[DETAIL], it->detail);
        bool waits = it->outcome == QUEUE_RETRY || it->outcome == QUEUE_DEFER;
        snprintf(num, sizeof(num), "%d", waits ? it->retry_delay_ms : 0);
        array_add(&a[DELAY], num);
        array_add(&a[SKIPPED], rec->is_skipped ? "t" : "f");
        array_add(&a[CODE], rec->result == ERR_OK ? NULL : err_name(rec->result));
        array_add(&a[WARNING], rec->has_warning ? "t" : "f");
        array_add(&a[TRANSIENT],
                  rec->result != ERR_OK && err_is_transient(rec->result) ? "t" : "f");
        for (size_t e = 0; e < rec->event_count; e++) {
            snprintf(num, sizeof(num), "%lld", (long long)rec->events[e].id);
            array_add(&a[IDS], num);
            snprintf(num, sizeof(num), "%zu", k + 1);
            array_add(&a[INDEX], num);
        }
        items[k].changed = 0;
    }
    for (int k = 0; k < ARRAYS; k++)
        buf_append_str(&a[k], "}");
    char max_s[16];
    snprintf(max_s, sizeof(max_s), "%d", max_attempts);
    const char *params[] = {owner,           a[SOURCE].data,   a[TYPE].data,  a[RECORD].data,
                            a[OUTCOME].data, a[DETAIL].data,   a[DELAY].data, a[SKIPPED].data,
                            a[IDS].data,     a[INDEX].data,    max_s,         a[CODE].data,
                            a[WARNING].data, a[TRANSIENT].data};
    PGresult *r = db_exec_cached(db, finish_sql, 14, params);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot finish events");
    if (rc == ERR_OK) {
        for (int row = 0; row < PQntuples(r); row++) {
            long k = strtol(PQgetvalue(r, row, 0), NULL, 10) - 1;
            if (k >= 0 && (size_t)k < n)
                items[k].changed = (size_t)strtoull(PQgetvalue(r, row, 1), NULL, 10);
        }
    }
    PQclear(r);
    for (int k = 0; k < ARRAYS; k++)
        buf_clear(&a[k]);
    return rc;
}

enum err queue_prepare_finish(PGconn *db)
{
    return db_prepare_cached(db, finish_sql, 14);
}

enum err queue_finish(PGconn *db, const char *owner, const struct queue_record *rec,
                      enum queue_outcome outcome, const char *detail, int retry_delay_ms,
                      int max_attempts, size_t *changed)
{
    struct queue_finish_item it = {rec, outcome, detail, retry_delay_ms, 0};
    enum err rc = queue_finish_many(db, owner, &it, 1, max_attempts);
    if (rc == ERR_OK && changed)
        *changed = it.changed;
    return rc;
}

/* Puts dead events back to pending: those of $1 (NULL: every one), and with $2 only those that
 * died of a transient cause, which keep their error and get one more attempt (the automatic
 * retry, reconcile.c); an operator's requeue starts them over. Their records are locked in key
 * order first, as a push, a give-back and the finish lock theirs: the UPDATE locked the events
 * in the order of its scan and then their records in the order of its join (a hash), and could
 * deadlock with a push of two of those records' changes, its upsert holding one record and
 * waiting for the other (40P01: one of the two cancelled, the requeue or the push). The events
 * are locked after their record, as the finish and the claim lock theirs. A requeued event loses
 * its transient mark: one that dies again of a permanent cause is not retried automatically. */
static const char requeue_sql[] =
    "WITH dead AS ("
    "  SELECT e.id, e.source, e.object_type, e.record_id FROM sync_event e"
    "  WHERE e.status = 'dead' AND ($1::bigint[] IS NULL OR e.id = ANY($1::bigint[]))"
    "    AND (NOT $2::bool OR e.is_transient_dead)"
    "), lk AS MATERIALIZED ("
    "  SELECT r.source, r.object_type, r.record_id FROM sync_record r"
    "  WHERE (r.source, r.object_type, r.record_id) IN"
    "        (SELECT d.source, d.object_type, d.record_id FROM dead d)"
    "  ORDER BY 1, 2, 3 FOR UPDATE OF r"
    "), ev AS ("
    "  UPDATE sync_event e SET status = 'pending', lease_owner = NULL, finished_at = NULL,"
    "    attempts = CASE WHEN $2::bool THEN greatest(e.attempts - 1, 0) ELSE 0 END,"
    "    last_error = CASE WHEN $2::bool THEN e.last_error END,"
    "    error_code = CASE WHEN $2::bool THEN e.error_code END,"
    "    is_transient_dead = false"
    "  FROM lk, dead d WHERE e.id = d.id AND (lk.source, lk.object_type, lk.record_id) ="
    "                                        (d.source, d.object_type, d.record_id)"
    "    AND e.status = 'dead' AND (NOT $2::bool OR e.is_transient_dead)"
    "  RETURNING e.source, e.object_type, e.record_id"
    "), rec AS ("
    "  UPDATE sync_record r SET not_before = now() FROM (SELECT DISTINCT * FROM ev) e"
    "  WHERE (r.source, r.object_type, r.record_id) = (e.source, e.object_type, e.record_id)"
    ") SELECT (SELECT count(*) FROM ev), pg_notify('" QUEUE_NOTIFY_CHANNEL "', '')";

/* Runs requeue_sql; ids (count n, n == 0: every dead event), is_transient: see requeue_sql. */
static enum err requeue(PGconn *db, const int64_t *ids, size_t n, bool is_transient,
                        long long *requeued)
{
    struct buf list;
    buf_init(&list, 0);
    buf_append_str(&list, "{");
    for (size_t i = 0; i < n; i++)
        buf_printf(&list, "%s%lld", i ? "," : "", (long long)ids[i]);
    buf_append_str(&list, "}");
    const char *params[] = {n ? list.data : NULL, is_transient ? "true" : "false"};
    PGresult *r = PQexecParams(db, requeue_sql, 2, NULL, params, NULL, NULL, 0);
    enum err rc =
        db_check(db, r, PGRES_TUPLES_OK,
                 is_transient ? "cannot retry dead events" : "cannot requeue dead events");
    if (rc == ERR_OK && requeued)
        *requeued = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    buf_clear(&list);
    return rc;
}

enum err queue_requeue_dead(PGconn *db, const int64_t *ids, size_t n, long long *requeued)
{
    return requeue(db, ids, n, false, requeued);
}

enum err queue_retry_transient_dead(PGconn *db, long long *retried)
{
    return requeue(db, NULL, 0, true, retried);
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
                             " FROM sync_record r WHERE r.open_events > 0");
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
    /* Running: a pending event of a record under a lease that has not run out (a claim
     * leases the record and leaves its events pending), or one an older worker marked. */
    PGresult *r = PQexec(db, "SELECT CASE WHEN e.status = 'pending' AND r.record_id IS NOT NULL"
                             "  THEN 'running' ELSE e.status END, count(*)"
                             " FROM sync_event e LEFT JOIN sync_record r"
                             "  ON (r.source, r.object_type, r.record_id) ="
                             "     (e.source, e.object_type, e.record_id)"
                             "  AND r.open_events > 0 AND r.lease_expires_at > now()"
                             " GROUP BY 1");
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

char *queue_record_event_ids(const struct queue_record *rec)
{
    struct buf ids;
    buf_init(&ids, 0);
    buf_append_str(&ids, "{");
    for (size_t i = 0; i < rec->event_count; i++)
        buf_printf(&ids, "%s%lld", i ? "," : "", (long long)rec->events[i].id);
    buf_append_str(&ids, "}");
    return ids.data;
}
