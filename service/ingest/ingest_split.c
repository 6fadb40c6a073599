/* ingest_split.c - the webhook inbox and its splitter (see ingest_split.h). The ack path has
 * verified and parsed each body before storing it; the split parses it again with the same time
 * (received_ms), so it finds exactly the events the ack path counted, and stores them with the
 * queue's own push. */
#include "ingest_split.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "util.h"
#include "webhook_hs.h"

/* pg_advisory_xact_lock key of the split: one splitter at a time, whichever process. */
#define SPLIT_LOCK_KEY "4919131752989213952"

/* The inbox INSERT of n rows, for each n up to INBOX_PREPARED_MAX: static texts, so that
 * db_exec_cached prepares each once per connection. A group's statement used to be parsed and
 * planned at every commit, on the database's side of the ack path's critical path. */
#define INBOX_PREPARED_MAX 64
static char *inbox_sql[INBOX_PREPARED_MAX + 1];
static pthread_once_t inbox_sql_once = PTHREAD_ONCE_INIT;

/* The statement of n rows (caller frees). */
static char *inbox_sql_new(size_t n)
{
    struct buf sql;
    buf_init(&sql, 0);
    buf_append_str(&sql, "INSERT INTO ingest_inbox (source, received_ms, body) VALUES ");
    for (size_t i = 0; i < n; i++)
        buf_printf(&sql, "%s($%zu, $%zu, $%zu)", i ? ", " : "", 3 * i + 1, 3 * i + 2, 3 * i + 3);
    return buf_steal(&sql);
}

static void inbox_sql_build(void)
{
    for (size_t n = 1; n <= INBOX_PREPARED_MAX; n++)
        inbox_sql[n] = inbox_sql_new(n);
}

enum err ingest_inbox_push(PGconn *db, const struct ingest_body *bodies, size_t n, char sqlstate[6])
{
    assert(n > 0);
    if (sqlstate)
        sqlstate[0] = '\0';
    pthread_once(&inbox_sql_once, inbox_sql_build);
    const char **values = xcalloc(n * 3, sizeof(*values));
    int *lengths = xcalloc(n * 3, sizeof(*lengths));
    int *formats = xcalloc(n * 3, sizeof(*formats));
    char(*times)[24] = xcalloc(n, sizeof(*times));
    for (size_t i = 0; i < n; i++) {
        snprintf(times[i], sizeof(times[i]), "%lld", (long long)bodies[i].received_ms);
        values[3 * i] = bodies[i].source;
        values[3 * i + 1] = times[i];
        values[3 * i + 2] = bodies[i].body;
        lengths[3 * i + 2] = (int)bodies[i].len;
        formats[3 * i + 2] = 1; /* the body as bytes: no escaping, no encoding check */
    }
    /* A larger group (more than 64 requests at once) is rare: its text is built and parsed. */
    char *big = n > INBOX_PREPARED_MAX ? inbox_sql_new(n) : NULL;
    PGresult *r =
        big ? PQexecParams(db, big, (int)(n * 3), NULL, values, lengths, formats, 0)
            : db_exec_cached_params(db, inbox_sql[n], (int)(n * 3), values, lengths, formats);
    if (sqlstate) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(sqlstate, 6, "%s", state ? state : "");
    }
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot store webhook bodies");
    PQclear(r);
    free(big);
    free(times);
    free(formats);
    free(lengths);
    free(values);
    return rc;
}

enum err ingest_inbox_prepare(PGconn *db)
{
    pthread_once(&inbox_sql_once, inbox_sql_build);
    enum err rc = ERR_OK;
    for (size_t n = 1; n <= INBOX_PREPARED_MAX && rc == ERR_OK; n++)
        rc = db_prepare_cached(db, inbox_sql[n], (int)(n * 3));
    return rc;
}

enum err ingest_queue_prepare(PGconn *db)
{
    /* No events, and rolled back: nothing is stored, no notification goes out. */
    enum err rc = db_begin(db);
    if (rc == ERR_OK)
        rc = queue_push_groups(db, NULL, NULL, 0, NULL, 0, NULL);
    db_rollback(db);
    return rc;
}

enum err ingest_inbox_pending(PGconn *db, long long *pending)
{
    PGresult *r = PQexec(db, "SELECT count(*) FROM ingest_inbox");
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot count the inbox");
    if (rc == ERR_OK)
        *pending = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return rc;
}

/* A failure caused by the data (SQL state class 22 or 23), not by the database. */
static bool is_data_error(const char *sqlstate)
{
    return strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0;
}

/* A big-endian int8 of a binary result. */
static int64_t get_i64(const PGresult *r, int row, int col)
{
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

/* One inbox row, parsed: its events as the queue takes them. */
struct split_row {
    int64_t id;
    char *source;
    struct webhook_hs_batch batch;
    struct queue_event_in *evs;
    size_t n;
    bool is_unreadable;
};

static void split_rows_clear(struct split_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        webhook_hs_batch_clear(&rows[i].batch);
        free(rows[i].evs);
        free(rows[i].source);
    }
    free(rows);
}

/* Parses row `row` of r (id, source, received_ms, body) as the ack path did. */
static void read_row(const PGresult *r, int row, struct split_row *out)
{
    out->id = get_i64(r, row, 0);
    out->source = xstrndup(PQgetvalue(r, row, 1), (size_t)PQgetlength(r, row, 1));
    int64_t received_ms = get_i64(r, row, 2);
    char *why = NULL;
    if (strcmp(out->source, "hubspot") != 0 ||
        webhook_hs_parse(PQgetvalue(r, row, 3), (size_t)PQgetlength(r, row, 3), received_ms,
                         &out->batch, &why) != ERR_OK) {
        /* The ack path parsed this body with the same time: only another version of dealsync
         * could read it otherwise. Dropped with an error rather than blocking the inbox. */
        log_error("inbox row cannot be read; dropped", LOG_I64("inbox_id", out->id),
                  LOG_STR("source", out->source), LOG_STR("reason", why ? why : "unknown source"));
        metrics_inc("dealsync_webhook_events_rejected_total",
                    "source=\"hubspot\",reason=\"unreadable_at_split\"", 1);
        free(why);
        out->is_unreadable = true;
        return;
    }
    out->n = out->batch.count;
    out->evs = xcalloc(out->n ? out->n : 1, sizeof(*out->evs));
    for (size_t i = 0; i < out->n; i++) {
        const struct webhook_hs_event *e = &out->batch.events[i];
        out->evs[i] = (struct queue_event_in){"hubspot",    e->dedup_key,       e->object_type,
                                              e->record_id, e->event_type,      e->occurred_at_ms,
                                              e->payload,   QUEUE_PRIORITY_LIVE};
    }
}

static void count_stored(const char *source, size_t events, size_t stored)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "source=\"%s\"", source);
    metrics_inc("dealsync_webhook_events_stored_total", labels, (long long)stored);
    metrics_inc("dealsync_webhook_events_duplicate_total", labels, (long long)(events - stored));
}

static enum err lock_split(PGconn *db)
{
    return db_exec(db, "SELECT pg_advisory_xact_lock(" SPLIT_LOCK_KEY ")");
}

static enum err delete_rows(PGconn *db, const struct split_row *rows, size_t n)
{
    struct buf ids;
    buf_init(&ids, 0);
    buf_append_str(&ids, "{");
    for (size_t i = 0; i < n; i++)
        buf_printf(&ids, "%s%lld", i ? "," : "", (long long)rows[i].id);
    buf_append_str(&ids, "}");
    const char *params[] = {ids.data};
    PGresult *r = PQexecParams(db, "DELETE FROM ingest_inbox WHERE id = ANY($1::bigint[])", 1, NULL,
                               params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot delete split inbox rows");
    PQclear(r);
    buf_clear(&ids);
    return rc;
}

/* The record keys (source, object type, record id) of events a and b, compared byte by byte:
 * the database's order in the C collation, and for HubSpot's keys (lowercase names, ids of
 * digits) in the usual others too. */
static int record_key_cmp(const struct queue_event_in *a, const struct queue_event_in *b)
{
    int c = strcmp(a->source, b->source);
    if (c == 0)
        c = strcmp(a->object_type, b->object_type);
    return c ? c : strcmp(a->record_id, b->record_id);
}

/* The order in which split_alone pushes a row's events: by record key, and in arrival order
 * within a record (a record's events of the same time are claimed in id order). Caller frees. */
static size_t *records_in_key_order(const struct split_row *row)
{
    size_t *order = xcalloc(row->n ? row->n : 1, sizeof(*order));
    /* Insertion sort: stable, and a body holds at most WEBHOOK_HS_MAX_EVENTS events. */
    for (size_t i = 0; i < row->n; i++) {
        size_t j = i;
        for (; j > 0 && record_key_cmp(&row->evs[order[j - 1]], &row->evs[i]) > 0; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    return order;
}

/* One row in its own transaction, event by event: the events the database refuses are set
 * aside, the others stored. Used only after a batch failed on its data. Each push locks its
 * event's record until the commit, so the events go in the records' key order, as every other
 * push locks its records (queue_push_groups): in the order they came, this transaction could
 * hold a record that a concurrent push waits for while it waits for one that push holds (a
 * deadlock). Once a record is held, its events' keys cannot be held by a push that has not
 * locked that record first. */
static enum err split_alone(PGconn *db, struct split_row *row, struct ingest_split_result *out)
{
    enum err rc = db_begin(db);
    if (rc == ERR_OK)
        rc = lock_split(db);
    /* Another splitter may have split it since the failed batch rolled back. */
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)row->id);
    const char *params[] = {id};
    PGresult *r = NULL;
    if (rc == ERR_OK) {
        r = PQexecParams(db, "DELETE FROM ingest_inbox WHERE id = $1", 1, NULL, params, NULL, NULL,
                         0);
        rc = db_check(db, r, PGRES_COMMAND_OK, "cannot delete a split inbox row");
    }
    bool is_there = rc == ERR_OK && strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    size_t stored = 0, set_aside = 0;
    size_t *order = records_in_key_order(row);
    for (size_t k = 0; is_there && rc == ERR_OK && k < row->n; k++) {
        const struct queue_event_in *ev = &row->evs[order[k]];
        size_t one = 0;
        rc = db_exec(db, "SAVEPOINT split_event");
        if (rc == ERR_OK)
            rc = queue_push(db, ev, 1, &one);
        if (rc == ERR_DB && is_data_error(db_last_sqlstate())) {
            log_warn("webhook event set aside: the database refuses its data",
                     LOG_I64("inbox_id", row->id), LOG_STR("source", row->source),
                     LOG_STR("dedup_key", ev->dedup_key), LOG_STR("reason", db_last_error()));
            metrics_inc("dealsync_webhook_events_rejected_total",
                        "source=\"hubspot\",reason=\"unstorable\"", 1);
            set_aside++;
            rc = db_exec(db, "ROLLBACK TO SAVEPOINT split_event");
        } else if (rc == ERR_OK) {
            stored += one;
            rc = db_exec(db, "RELEASE SAVEPOINT split_event");
        }
    }
    free(order);
    if (rc == ERR_OK)
        rc = db_commit(db);
    if (rc != ERR_OK) {
        db_rollback(db);
        return rc;
    }
    if (is_there) {
        out->rows++;
        out->events += row->n;
        out->stored += stored;
        out->set_aside += set_aside;
        count_stored(row->source, row->n - set_aside, stored);
    }
    return ERR_OK;
}

enum err ingest_split_batch(PGconn *db, int max_rows, struct ingest_split_result *out)
{
    memset(out, 0, sizeof(*out));
    struct split_row *rows = NULL;
    struct queue_event_in *evs = NULL;
    size_t *group = NULL, *stored = NULL;
    size_t n = 0, total = 0;
    char state[6] = "";
    enum err rc = db_begin(db);
    if (rc == ERR_OK)
        rc = lock_split(db);
    if (rc != ERR_OK)
        goto out;
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", max_rows > 0 ? max_rows : 1);
    const char *params[] = {limit};
    PGresult *r = PQexecParams(db,
                               "SELECT id, source, received_ms, body FROM ingest_inbox"
                               " ORDER BY id LIMIT $1::int",
                               1, NULL, params, NULL, NULL, 1);
    rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read the inbox");
    size_t got = rc == ERR_OK ? (size_t)PQntuples(r) : 0;
    rows = xcalloc(got ? got : 1, sizeof(*rows));
    /* The rows after the events cap stay for the next batch. */
    for (n = 0; n < got && total < INGEST_SPLIT_MAX_EVENTS; n++) {
        read_row(r, (int)n, &rows[n]);
        total += rows[n].n;
    }
    PQclear(r);
    if (rc != ERR_OK || n == 0)
        goto out;

    evs = xcalloc(total ? total : 1, sizeof(*evs));
    group = xcalloc(total ? total : 1, sizeof(*group));
    stored = xcalloc(n, sizeof(*stored));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < rows[i].n; j++, k++) {
            evs[k] = rows[i].evs[j];
            group[k] = i;
        }
    }
    if (total)
        rc = queue_push_groups(db, evs, group, total, stored, n, state);
    if (rc == ERR_OK)
        rc = delete_rows(db, rows, n);
    if (rc == ERR_OK)
        rc = db_commit(db);
    if (rc == ERR_OK) {
        for (size_t i = 0; i < n; i++) {
            out->rows++;
            out->events += rows[i].n;
            out->stored += stored[i];
            out->unreadable += rows[i].is_unreadable;
            if (rows[i].n)
                count_stored(rows[i].source, rows[i].n, stored[i]);
        }
    } else if (is_data_error(state)) {
        /* Some event's data failed the batch: each row alone, each event on its own. */
        db_rollback(db);
        rc = ERR_OK;
        for (size_t i = 0; i < n && rc == ERR_OK; i++)
            rc = split_alone(db, &rows[i], out);
        goto done;
    }
out:
    if (rc != ERR_OK || n == 0)
        db_rollback(db);
done:
    free(stored);
    free(group);
    free(evs);
    split_rows_clear(rows, n);
    return rc;
}

/* Windows stay INGEST_BURST_WINDOW_MS long and back to back, so `previous` counts one whole
 * window. */
static void burst_roll(struct ingest_burst *b, int64_t now_ms)
{
    int64_t elapsed = now_ms - b->window_start_ms;
    if (elapsed < INGEST_BURST_WINDOW_MS)
        return;
    if (elapsed < 2 * INGEST_BURST_WINDOW_MS) {
        b->previous = b->current;
        b->window_start_ms += INGEST_BURST_WINDOW_MS;
    } else {
        b->previous = 0;
        b->window_start_ms = now_ms;
    }
    b->current = 0;
}

void ingest_burst_note(struct ingest_burst *b, int64_t now_ms)
{
    burst_roll(b, now_ms);
    b->current++;
}

bool ingest_burst_is_on(struct ingest_burst *b, int64_t now_ms)
{
    burst_roll(b, now_ms);
    return b->current >= INGEST_BURST_BODIES || b->previous >= INGEST_BURST_BODIES;
}

struct ingest_splitter {
    char *url;
    int burst_hold_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct ingest_burst burst;
    bool is_woken;
    bool is_holding; /* a wake would only wake it to hold again: not signalled */
    bool stop;
};

/* Waits until woken, stopped, or ms passed. Returns false when stopping. */
static bool wait_for_work(struct ingest_splitter *s, int ms)
{
    struct timespec until = util_deadline_ms(ms);
    pthread_mutex_lock(&s->lock);
    while (!s->is_woken && !s->stop) {
        if (pthread_cond_timedwait(&s->cond, &s->lock, &until) != 0)
            break;
    }
    s->is_woken = false;
    bool go_on = !s->stop;
    pthread_mutex_unlock(&s->lock);
    return go_on;
}

/* Holds the next batch while a burst is being stored, for burst_hold_ms at most: on a small
 * machine the split's statement takes the CPU the acknowledgements need (the database's more
 * than dealsync's), and the inbox keeps what waits. Once the burst is over, the split goes on
 * at full speed. Returns false when stopping. */
static bool hold_for_burst(struct ingest_splitter *s)
{
    int64_t until = util_monotonic_ms() + s->burst_hold_ms;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        int64_t now = util_monotonic_ms();
        if (s->stop || now >= until || !ingest_burst_is_on(&s->burst, now))
            break;
        s->is_holding = true;
        int64_t step = until - now < INGEST_BURST_WINDOW_MS ? until - now : INGEST_BURST_WINDOW_MS;
        struct timespec deadline = util_deadline_ms(step);
        pthread_cond_timedwait(&s->cond, &s->lock, &deadline);
    }
    s->is_holding = false;
    bool go_on = !s->stop;
    pthread_mutex_unlock(&s->lock);
    return go_on;
}

static void *splitter_main(void *arg)
{
    struct ingest_splitter *s = arg;
    /* One warning per outage (below), not one error per statement. */
    db_set_quiet(true);
    PGconn *db = NULL;
    bool was_down = false;
    int idle_ms = 0;
    while (wait_for_work(s, idle_ms)) {
        idle_ms = INGEST_SPLIT_POLL_MS;
        if (!db || PQstatus(db) != CONNECTION_OK) {
            PQfinish(db);
            db = NULL;
            if (db_open(s->url, &db) != ERR_OK ||
                db_exec(db, "SET statement_timeout = 60000") != ERR_OK) {
                PQfinish(db);
                db = NULL;
                continue; /* the webhooks report the outage; try again after the poll */
            }
            /* The first split of a burst would otherwise pay for a new backend's first push
             * while the acknowledgements need the CPU. */
            if (ingest_queue_prepare(db) != ERR_OK && PQstatus(db) != CONNECTION_OK) {
                PQfinish(db);
                db = NULL;
                continue;
            }
        }
        /* Split until the inbox is empty, or the database fails. */
        for (;;) {
            struct ingest_split_result res;
            if (s->burst_hold_ms > 0 && !hold_for_burst(s))
                break;
            if (ingest_split_batch(db, INGEST_SPLIT_MAX_ROWS, &res) != ERR_OK) {
                if (!was_down)
                    log_warn("inbox split failed; retrying", LOG_STR("reason", db_last_error()));
                was_down = true;
                break;
            }
            if (was_down)
                log_info("inbox split resumed");
            was_down = false;
            if (res.rows == 0)
                break;
            metrics_inc("dealsync_ingest_split_batches_total", "", 1);
            metrics_inc("dealsync_ingest_split_rows_total", "", (long long)res.rows);
            pthread_mutex_lock(&s->lock);
            bool is_stopping = s->stop;
            pthread_mutex_unlock(&s->lock);
            if (is_stopping)
                break;
        }
    }
    PQfinish(db);
    return NULL;
}

enum err ingest_splitter_start(const char *url, int burst_hold_ms, struct ingest_splitter **out)
{
    struct ingest_splitter *s = xcalloc(1, sizeof(*s));
    s->url = xstrdup(url);
    s->burst_hold_ms = burst_hold_ms;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (pthread_create(&s->thread, NULL, splitter_main, s) != 0) {
        log_error("cannot start the inbox splitter thread");
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s->url);
        free(s);
        return ERR_INTERNAL;
    }
    *out = s;
    return ERR_OK;
}

void ingest_splitter_wake(struct ingest_splitter *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    ingest_burst_note(&s->burst, util_monotonic_ms());
    s->is_woken = true;
    if (!s->is_holding)
        pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void ingest_splitter_stop(struct ingest_splitter *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->url);
    free(s);
}
