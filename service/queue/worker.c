/* worker.c - claim -> handle -> finish. Each worker owns its PGconn and its handler context;
 * nothing is shared between workers but the stop flag and the wake-up pipe. */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_budget.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* How often one worker prunes done events; the first time when it first finds no work, or
 * after PRUNE_EVERY_MS if it never does. It pruned first thing at start before: about 20 ms of a
 * new connection (the DELETE's first plan and the catalogs it reads) before its first claim,
 * which a restart with a backlog waited for. */
#define PRUNE_EVERY_MS (10 * 60 * 1000)

/* A record deferred because another worker holds its pair comes back after 20 to 100 ms. */
#define DEFER_MIN_MS 20
#define DEFER_SPREAD_MS 80

struct worker {
    struct worker_pool *pool;
    pthread_t thread;
    int index;
    char owner[128];
    unsigned int seed;
    int claim_size;         /* records asked for at the next claim (see next_claim_size) */
    int64_t claim_delay_ms; /* wait before the next claim (worker_ops.claim_delay) */
};

struct worker_pool {
    const struct config *cfg;
    const struct worker_ops *ops;
    atomic_bool stop;
    int wake[2]; /* written once at stop: every poll() sees it readable */
    struct worker *workers;
    int count;
};

int worker_backoff_ms(int attempts, int base_ms, int max_ms, int hint_ms, double rnd)
{
    double delay = base_ms;
    for (int i = 1; i < attempts && delay < max_ms; i++)
        delay *= 2;
    if (delay > max_ms)
        delay = max_ms;
    delay *= 0.5 + rnd * 0.5;
    if (delay < hint_ms)
        delay = hint_ms;
    return (int)delay;
}

static const struct worker_route *route_for(const struct worker_ops *ops,
                                            const struct queue_record *r)
{
    for (size_t i = 0; i < ops->route_count; i++) {
        const struct worker_route *rt = &ops->routes[i];
        if (strcmp(rt->source, r->source) == 0 &&
            (!rt->object_type || strcmp(rt->object_type, r->object_type) == 0))
            return rt;
    }
    return NULL;
}

static bool is_stopping(const struct worker_pool *p)
{
    return atomic_load(&p->stop);
}

/* The most records a claim asks for (QUEUE_CLAIM_BATCH_MAX, at least QUEUE_CLAIM_BATCH). */
static int claim_max(const struct config *cfg)
{
    return cfg->claim_batch_max > cfg->claim_batch ? cfg->claim_batch_max : cfg->claim_batch;
}

static size_t drain_notifications(PGconn *db, long long *announced);

/* Sleeps until a notification arrives on db, the pool stops, or timeout_ms passes. Woken by
 * pushes that announce at least a full claim for every worker (a burst: an import's page, a mass
 * update, HubSpot's retries after an outage), the worker's next claim asks for the most records
 * at once instead of ramping up from QUEUE_CLAIM_BATCH (20, 40, 80, 160, 200): the ramp's first
 * claims were about 3 % of a 5,000-event drain's time at a maximum of 100 (docs/benchmarks.md), and
 * a burst that deep gives every worker a full claim anyway. A smaller push keeps the ramp, so that
 * its records are spread over the workers. */
static void wait_for_work(struct worker *w, PGconn *db, int timeout_ms)
{
    /* A connection lost under a statement before the wait (the idle path's, a claim's) is
     * closed by libpq: poll ignores its descriptor (-1), and the worker slept the whole wait (the
     * fallback poll, QUEUE_POLL_INTERVAL_MS) before it reconnected. Back to the loop after a
     * pause as short as the reconnect's first (which backs off while the database cannot be
     * reached). */
    if (PQstatus(db) != CONNECTION_OK || PQsocket(db) < 0) {
        struct pollfd wake = {w->pool->wake[0], POLLIN, 0};
        poll(&wake, 1, timeout_ms < 100 ? timeout_ms : 100);
        return;
    }
    struct pollfd fds[2] = {{PQsocket(db), POLLIN, 0}, {w->pool->wake[0], POLLIN, 0}};
    int n = poll(fds, 2, timeout_ms);
    long long announced = 0;
    if (n > 0 && (fds[0].revents & POLLIN))
        (void)drain_notifications(db, &announced);
    int max = claim_max(w->pool->cfg);
    if (announced >= (long long)max * w->pool->count)
        w->claim_size = max;
}

/* Whether the record was claimed for an import (dealsync_import_records_total). */
static bool is_imported(const struct queue_record *r)
{
    for (size_t i = 0; i < r->event_count; i++)
        if (strcmp(r->events[i].event_type, "import") == 0)
            return true;
    return false;
}

/* A transient failure (an outage, a rate limit, a timeout: nothing wrong with the record) is
 * retried past QUEUE_MAX_ATTEMPTS while the record's oldest open change is younger than
 * QUEUE_RETRY_WINDOW_HOURS, as Salesforce and HubSpot retry their own deliveries for a day:
 * a rate of failing calls that makes most attempts fail somewhere (each sync makes several
 * calls) must delay a change, not dead-letter it (issue 12, found by the chaos run). */
static bool is_in_retry_window(const struct queue_record *r, const struct config *cfg)
{
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; i < r->event_count; i++)
        if (r->events[i].occurred_at_ms < oldest)
            oldest = r->events[i].occurred_at_ms;
    return r->event_count > 0 &&
           util_now_ms() - oldest < (int64_t)cfg->retry_window_hours * 3600 * 1000;
}

/* The handler's verdict on one record as a queue outcome: done, retried with backoff, or dead.
 * The verdict alone decides dead (QUEUE_MAX_ATTEMPTS, the retry window): a retry is always
 * pending again, so the finishing statement gets no attempt limit of its own (NO_LIMIT).
 * *fallback receives a detail the caller frees when the handler gave none for a failure. */
#define NO_LIMIT INT_MAX

static struct queue_finish_item verdict(struct worker *w, const struct queue_record *r,
                                        char **fallback)
{
    const struct config *cfg = w->pool->cfg;
    struct queue_finish_item it = {r, QUEUE_DONE, r->detail, 0, 0};
    int attempts = 0;
    for (size_t i = 0; i < r->event_count; i++)
        if (r->events[i].attempts > attempts)
            attempts = r->events[i].attempts;
    if (r->result == ERR_OK) {
        it.outcome = QUEUE_DONE;
    } else if (r->result == ERR_BUSY) {
        /* Another worker holds the record's pair (sync_pair.c): it comes back shortly, and the
         * attempt is not counted, so a busy record is never dead-lettered for it. Tens of ms:
         * the handler released the record's locks at once, and the other worker is often
         * finishing the echo of the pair's last write, so waiting longer only adds latency. */
        it.outcome = QUEUE_DEFER;
        it.retry_delay_ms =
            DEFER_MIN_MS + (int)((double)DEFER_SPREAD_MS * rand_r(&w->seed) / RAND_MAX);
        if (r->retry_after_ms > it.retry_delay_ms)
            it.retry_delay_ms = r->retry_after_ms;
    } else if (r->result == ERR_RATE_LIMIT) {
        /* Waiting for API budget, or a rate limit that still came, is not a failure (issue 9):
         * back in the queue when the budget returns (the hint: HubSpot's, the budget's; else
         * the backoff a retry would get, as Salesforce's REQUEST_LIMIT_EXCEEDED says nothing
         * about when), the attempt not counted, never dead-lettered for it. */
        it.outcome = QUEUE_DEFER;
        it.retry_delay_ms =
            worker_backoff_ms(attempts, cfg->retry_base_ms, cfg->retry_max_ms, r->retry_after_ms,
                              (double)rand_r(&w->seed) / RAND_MAX);
    } else if (err_is_transient(r->result) &&
               (attempts < cfg->max_attempts || is_in_retry_window(r, cfg))) {
        it.outcome = QUEUE_RETRY;
        it.retry_delay_ms =
            worker_backoff_ms(attempts, cfg->retry_base_ms, cfg->retry_max_ms, r->retry_after_ms,
                              (double)rand_r(&w->seed) / RAND_MAX);
    } else {
        it.outcome = QUEUE_DEAD;
    }
    *fallback = NULL;
    if (r->result != ERR_OK && !it.detail)
        it.detail = *fallback = xstrdup(err_str(r->result));
    return it;
}

/* tries: how many times the finish was tried (RECORD_ATTEMPTS at most). */
static void log_finished(const struct queue_finish_item *it, enum err rc, int tries)
{
    const struct queue_record *r = it->record;
    static const char *const names[] = {"done", "retry", "dead", "deferred"};
    const char *name = it->outcome == QUEUE_DONE && r->is_skipped    ? "skipped"
                       : it->outcome == QUEUE_DONE && r->has_warning ? "warning"
                                                                     : names[it->outcome];
    int attempts = 0;
    for (size_t i = 0; i < r->event_count; i++)
        if (r->events[i].attempts > attempts)
            attempts = r->events[i].attempts;
    if (rc != ERR_OK) {
        log_warn("cannot record outcome; the lease will expire and the record be retried",
                 LOG_STR("source", r->source), LOG_STR("record_id", r->record_id),
                 LOG_I64("tries", tries));
    } else if (it->changed == 0 && tries > 1) {
        /* A try whose answer was lost (the connection went at its commit) may have recorded it. */
        log_warn("outcome not recorded by a later try: recorded by an earlier one or lease lost",
                 LOG_STR("source", r->source), LOG_STR("record_id", r->record_id),
                 LOG_I64("tries", tries));
    } else if (it->changed == 0) {
        log_warn("lease lost before finishing; another worker has the record",
                 LOG_STR("source", r->source), LOG_STR("record_id", r->record_id));
    } else {
        /* A retry after a rate limit is the queue doing its job, not a warning. */
        enum log_level level = it->outcome == QUEUE_DEAD ? LOG_ERROR
                               : it->outcome == QUEUE_RETRY && r->result != ERR_RATE_LIMIT
                                   ? LOG_WARN
                                   : LOG_INFO;
        log_emit(level, it->outcome == QUEUE_DEAD ? "event buried" : "event handled",
                 LOG_STR("outcome", name), LOG_STR("source", r->source),
                 LOG_STR("object_type", r->object_type), LOG_STR("record_id", r->record_id),
                 LOG_I64("event_id", r->events[0].id), LOG_I64("events", (long long)r->event_count),
                 LOG_I64("attempt", attempts),
                 LOG_STR("error", r->result == ERR_OK ? NULL : err_name(r->result)),
                 LOG_STR("detail", it->detail), LOG_I64("retry_in_ms", it->retry_delay_ms),
                 LOG_END);
        char labels[96];
        snprintf(labels, sizeof(labels), "source=\"%s\",outcome=\"%s\"", r->source, name);
        metrics_inc("dealsync_worker_records_total", labels, 1);
        metrics_inc("dealsync_worker_events_total", labels, (long long)r->event_count);
        if (is_imported(r)) {
            snprintf(labels, sizeof(labels), "source=\"%s\",state=\"%s\"", r->source,
                     it->outcome == QUEUE_DONE ? (r->is_skipped ? "skipped" : "synced") : name);
            metrics_inc("dealsync_import_records_total", labels, 1);
        }
    }
}

/* A backlog is drained in bigger claims (fewer statements and commits per event, and bigger
 * API batches for the handlers); a queue that keeps up is claimed in small ones, so no record
 * waits behind a long batch. The size doubles after a full claim, up to claim_batch_max, and
 * falls back to claim_batch after one that was not full. */
static void next_claim_size(struct worker *w, size_t claimed)
{
    int max = claim_max(w->pool->cfg);
    if (claimed >= (size_t)w->claim_size)
        w->claim_size = w->claim_size * 2 < max ? w->claim_size * 2 : max;
    else
        w->claim_size = w->pool->cfg->claim_batch;
}

/* Whether claims take live work only: Salesforce usage is near dealsync's share (issue 9). */
static bool is_live_only(PGconn *db, const struct config *cfg)
{
    bool live_only = false;
    return api_budget_sf_live_only(db, cfg, &live_only) == ERR_OK && live_only;
}

/* A worker's session commits without waiting for the WAL flush (SESSION_SQL): the handlers'
 * writes during a batch (links, baselines, maps: several per record) then cost no flush each.
 * The finish waits for it, and a flush covers every earlier commit of the session, so once a
 * batch is finished everything it wrote is durable. A database crash before then can lose
 * the newest of the batch's writes after the API calls that followed them: the batch is
 * handled again after its lease, as after a worker crash between an API call and the write
 * that records it (docs/queue.md). */
#define SESSION_SQL "SET synchronous_commit = off"
/* The finish's transaction, begun in the round trip that makes it wait for the flush and reads
 * its id and backend, to find out on a new connection whether it committed when its COMMIT's
 * answer is lost (see struct lost_commit). BEGIN was a round trip of its own. Its statements (the
 * finish, the claim) reuse one plan from their first run: PostgreSQL plans a prepared statement
 * for its values five times before it compares, and the finish of a batch of fewer than about
 * ten records, whose arrays a plan for given values counts, was planned anew every time (about
 * 1 ms). */
#define FINISH_BEGIN                                                                               \
    "BEGIN; SELECT set_config('synchronous_commit', 'on', true), pg_current_xact_id(),"            \
    " pg_backend_pid(), set_config('plan_cache_mode', 'force_generic_plan', true)"

/* A worker's session: LISTEN for new events, and SESSION_SQL. */
static enum err session_start(PGconn *db)
{
    enum err rc = db_exec(db, "LISTEN " QUEUE_NOTIFY_CHANNEL);
    if (rc == ERR_OK)
        rc = db_exec(db, SESSION_SQL);
    return rc;
}

/* A statement that records outcomes or gives records back is tried up to RECORD_ATTEMPTS times,
 * RECORD_RETRY_MS after the first failure and twice as long after each next one (1.5 s in all),
 * before its records are left to their lease (QUEUE_LEASE_SECONDS, 120 s by default): a lost
 * connection, a deadlock or a serialization failure is usually gone by then. A try after the
 * lease was taken over changes nothing: every such statement checks the record's lease owner. */
#define RECORD_ATTEMPTS 5
#define RECORD_RETRY_MS 100

/* Before try number `attempt` (2 or more) of such a statement: waits, then reconnects db (the
 * same PGconn, PQreset) when its connection went. Returns whether db can be used. A stopping
 * pool does not wait. */
static bool prepare_retry(struct worker *w, PGconn *db, int attempt)
{
    struct pollfd wake = {w->pool->wake[0], POLLIN, 0};
    poll(&wake, 1, RECORD_RETRY_MS << (attempt - 2));
    if (PQstatus(db) == CONNECTION_OK) {
        db_rollback(db);
        return true;
    }
    PQreset(db);
    if (PQstatus(db) != CONNECTION_OK || session_start(db) != ERR_OK) {
        log_warn("worker cannot reconnect to the database", LOG_I64("worker", w->index),
                 LOG_I64("attempt", attempt));
        return false;
    }
    log_info("worker reconnected to the database", LOG_I64("worker", w->index),
             LOG_I64("attempt", attempt));
    return true;
}

/* One try of a statement that records outcomes or gives records back (attempt: from 1). */
typedef enum err (*record_try_fn)(struct worker *w, PGconn *db, void *arg, int attempt);

/* Runs try_fn until it succeeds, RECORD_ATTEMPTS times at most, prepare_retry before each try
 * after the first; each failure but the last is logged as retry_msg (a fixed phrase). Returns
 * the last try's result; *tries receives how many were made. */
static enum err with_tries(struct worker *w, PGconn *db, const char *retry_msg, size_t records,
                           record_try_fn try_fn, void *arg, int *tries)
{
    enum err rc = ERR_DB;
    int attempt = 0;
    while (rc != ERR_OK && attempt < RECORD_ATTEMPTS) {
        attempt++;
        if (attempt > 1 && !prepare_retry(w, db, attempt))
            continue;
        rc = try_fn(w, db, arg, attempt);
        if (rc != ERR_OK && attempt < RECORD_ATTEMPTS)
            log_warn(retry_msg, LOG_I64("worker", w->index), LOG_I64("records", (long long)records),
                     LOG_I64("attempt", attempt), LOG_STR("sqlstate", db_last_sqlstate()));
    }
    *tries = attempt;
    return rc;
}

/* A finish's transaction whose COMMIT was sent and whose answer never came: the connection went
 * at the commit, and the transaction may have committed or not. A try that only finished can be
 * made again (it changes nothing when the first went through), but one that also claimed the next
 * batch holds its records under this worker's lease if it committed: before, the worker tried
 * the finish alone and those records waited for their lease (120 s), every change of them too.
 * The next try asks the database on the new connection (pg_xact_status) and carries on with the
 * batch it claimed, or tries the finish again when the transaction rolled back. */
struct lost_commit {
    char xid[24]; /* pg_current_xact_id(); "" when no commit is in doubt */
    char pid[16]; /* its backend, which may still hold it open (the network went, not it) */
};

/* What a finish's tries share. */
struct finish_job {
    struct queue_finish_item *items;
    size_t n;
    struct queue_batch *next; /* claimed into by the first try only; NULL: no claim */
    struct lost_commit lost;  /* the last try's commit, when in doubt */
};

/* Whether the transaction of lost committed: 1 yes, 0 no (rolled back), -1 not known yet. Its
 * backend, if it still holds it open (a connection that went without the server noticing), is
 * ended first, waiting up to 5 s for it to go, so that the answer is final. */
static int lost_commit_made(PGconn *db, const struct lost_commit *lost)
{
    const char *params[] = {lost->xid, lost->pid};
    PGresult *r = PQexecParams(
        db,
        "SELECT pg_xact_status($1::xid8), t.ended FROM (SELECT count(pg_terminate_backend(a.pid,"
        "  5000)) AS ended FROM pg_stat_activity a"
        "  WHERE a.pid = $2::int AND a.backend_xid = $1::xid8::xid) t",
        2, NULL, params, NULL, NULL, 0);
    int made = -1;
    if (db_check(db, r, PGRES_TUPLES_OK, "cannot read the outcome of a commit") == ERR_OK &&
        !PQgetisnull(r, 0, 0)) {
        const char *status = PQgetvalue(r, 0, 0);
        made = strcmp(status, "committed") == 0 ? 1 : strcmp(status, "aborted") == 0 ? 0 : -1;
    }
    PQclear(r);
    return made;
}

/* One try of finish: the outcomes in one statement, and when next is not NULL the worker's
 * next batch claimed in the same transaction (one commit, one WAL flush, per batch instead of
 * two). On failure nothing is written and next stays empty, unless the commit is in doubt
 * (job->lost): the next try finds out first. */
static enum err finish_once(struct worker *w, PGconn *db, void *arg, int attempt)
{
    const struct config *cfg = w->pool->cfg;
    struct finish_job *job = arg;
    if (job->lost.xid[0]) {
        int made = lost_commit_made(db, &job->lost);
        log_emit(made < 0 ? LOG_WARN : LOG_INFO,
                 made == 1   ? "commit whose answer was lost went through"
                 : made == 0 ? "commit whose answer was lost did not go through"
                             : "commit whose answer was lost not known yet",
                 LOG_I64("worker", w->index), LOG_STR("xid", job->lost.xid), LOG_END);
        if (made < 0)
            return ERR_DB;
        job->lost.xid[0] = '\0';
        if (made) {
            if (job->next)
                next_claim_size(w, job->next->record_count);
            return ERR_OK;
        }
        if (job->next)
            queue_batch_clear(job->next);
    }
    struct queue_finish_item *items = job->items;
    size_t n = job->n;
    struct queue_batch *next = attempt == 1 ? job->next : NULL;
    struct lost_commit tx = {{0}, {0}};
    PGresult *r = PQexec(db, FINISH_BEGIN);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot finish events");
    if (rc == ERR_OK) {
        snprintf(tx.xid, sizeof(tx.xid), "%s", PQgetvalue(r, 0, 1));
        snprintf(tx.pid, sizeof(tx.pid), "%s", PQgetvalue(r, 0, 2));
    }
    PQclear(r);
    if (rc == ERR_OK)
        rc = queue_finish_many(db, w->owner, items, n, NO_LIMIT);
    if (rc == ERR_OK && next)
        rc = queue_claim(db, w->owner, w->claim_size, cfg->lease_seconds, is_live_only(db, cfg),
                         next);
    bool is_committing = rc == ERR_OK;
    if (rc == ERR_OK)
        rc = db_commit(db);
    if (rc != ERR_OK && is_committing && PQstatus(db) != CONNECTION_OK) {
        /* In doubt: the claimed batch is kept until the next try knows. */
        job->lost = tx;
        log_warn("connection lost at a commit; finding out whether it went through",
                 LOG_I64("worker", w->index), LOG_STR("xid", tx.xid));
    } else if (rc != ERR_OK) {
        db_rollback(db);
        if (next)
            queue_batch_clear(next);
    } else if (next) {
        next_claim_size(w, next->record_count);
    }
    return rc;
}

static void give_back(struct worker *w, PGconn *db, const struct queue_record *recs, size_t n);

/* Finishes records according to the handler's verdicts, all in one statement, the first try
 * with the claim of the worker's next batch into next (NULL: no claim). A failed try is
 * retried alone (see RECORD_ATTEMPTS): before, a failure left the whole batch under its lease,
 * each record's change waiting up to QUEUE_LEASE_SECONDS. */
static void finish(struct worker *w, PGconn *db, struct queue_record *recs, size_t n,
                   struct queue_batch *next)
{
    struct queue_finish_item *items = xcalloc(n, sizeof(*items));
    char **fallbacks = xcalloc(n, sizeof(*fallbacks));
    for (size_t i = 0; i < n; i++)
        items[i] = verdict(w, &recs[i], &fallbacks[i]);
    struct finish_job job = {items, n, next, {{0}, {0}}};
    int tries = 0;
    enum err rc =
        with_tries(w, db, "cannot record outcome; trying again", n, finish_once, &job, &tries);
    if (job.lost.xid[0] && next) {
        /* Still in doubt after every try: the batch claimed with the finish is given back (only
         * records this worker still leases change), or it would wait for its lease. */
        give_back(w, db, next->records, next->record_count);
        queue_batch_clear(next);
    }
    for (size_t i = 0; i < n; i++) {
        log_finished(&items[i], rc, tries);
        free(fallbacks[i]);
    }
    free(fallbacks);
    free(items);
}

/* Releases records claimed but not started (shutdown): they go back to pending with the
 * attempt not counted, and the lease is dropped so another process takes them at once. */
static void release(struct worker *w, PGconn *db, const struct queue_record *r)
{
    char *ids = queue_record_event_ids(r);
    const char *params[] = {w->owner, ids, r->source, r->object_type, r->record_id};
    PGresult *res = PQexecParams(
        db,
        "WITH ev AS (UPDATE sync_event SET status = 'pending', attempts = attempts - 1,"
        "  lease_owner = NULL WHERE id = ANY($2::bigint[]) AND lease_owner = $1"
        "  AND status = 'running' RETURNING 1)"
        " UPDATE sync_record SET lease_owner = NULL, lease_expires_at = NULL"
        " WHERE (source, object_type, record_id) = ($3, $4, $5) AND lease_owner = $1",
        5, NULL, params, NULL, NULL, 0);
    if (db_check(db, res, PGRES_COMMAND_OK, "cannot release record") == ERR_OK)
        log_info("record released at shutdown", LOG_STR("source", r->source),
                 LOG_STR("record_id", r->record_id));
    PQclear(res);
    free(ids);
}

/* Releases every record of b (shutdown before they were started). */
static void release_all(struct worker *w, PGconn *db, const struct queue_batch *b)
{
    for (size_t i = 0; i < b->record_count; i++)
        release(w, db, &b->records[i]);
}

/* The records of a give-back, for its tries. */
struct give_back_job {
    const struct queue_record *recs;
    size_t n;
};

/* One try of give_back. */
static enum err give_back_once(struct worker *w, PGconn *db, void *arg, int attempt)
{
    (void)attempt;
    const struct give_back_job *job = arg;
    return queue_give_back(db, w->owner, job->recs, job->n, NULL);
}

/* Gives records claimed and not started back to the queue in one statement, as they were (no
 * attempt counted, the same place in the claim order), and wakes the idle workers for them.
 * Tried as a finish is (RECORD_ATTEMPTS): a record left leased waits for its lease. */
static void give_back(struct worker *w, PGconn *db, const struct queue_record *recs, size_t n)
{
    struct give_back_job job = {recs, n};
    int tries = 0;
    if (with_tries(w, db, "cannot give records back; trying again", n, give_back_once, &job,
                   &tries) != ERR_OK)
        log_warn("records given back keep their lease until it expires",
                 LOG_I64("records", (long long)n), LOG_I64("tries", tries));
}

/* The earliest change among records [from, to) of a batch. */
static int64_t oldest_change_ms(const struct queue_batch *b, size_t from, size_t to)
{
    int64_t oldest = INT64_MAX;
    for (size_t i = from; i < to; i++)
        for (size_t k = 0; k < b->records[i].event_count; k++)
            if (b->records[i].events[k].occurred_at_ms < oldest)
                oldest = b->records[i].events[k].occurred_at_ms;
    return oldest;
}

/* A claim that holds records of both sources keeps one source and gives the others back at
 * once, so that other workers handle them now instead of after this worker's handler for the
 * first source: each handler makes several API calls in sequence, and a record left waiting
 * behind the other source's handler could meanwhile lose its pair to the other direction and
 * be deferred. The source kept is the one with the earliest change, so a record given back is
 * older than what arrives after it and is kept the next time. Records arrive sorted by source:
 * the range kept is [*from, *to). */
static void keep_one_source(struct worker *w, PGconn *db, struct queue_batch *b, size_t *from,
                            size_t *to)
{
    *from = 0;
    *to = b->record_count;
    int64_t best = INT64_MAX;
    for (size_t i = 0, j; i < b->record_count; i = j) {
        for (j = i + 1; j < b->record_count; j++)
            if (strcmp(b->records[j].source, b->records[i].source) != 0)
                break;
        int64_t oldest = oldest_change_ms(b, i, j);
        if (i == 0 || oldest < best) {
            best = oldest;
            *from = i;
            *to = j;
        }
    }
    if (*from > 0)
        give_back(w, db, b->records, *from);
    if (*to < b->record_count)
        give_back(w, db, &b->records[*to], b->record_count - *to);
}

/* After a reconnect, with no batch held: a record this worker still leases was claimed by a
 * statement whose answer the lost connection took (a claim outside a finish: the server
 * committed it, the worker never saw its records), or left by a finish that failed every try.
 * Either would wait for its lease (QUEUE_LEASE_SECONDS, 120 s); they are given back now, the
 * attempt not counted, as the handler never ran for the first and its outcome was not recorded
 * for the second. Not at the first connection: a process restarted with the same owner (a
 * container's host name and pid) finds its predecessor's leases, whose attempts are counted when
 * they run out, so that a record that kills the process still reaches QUEUE_MAX_ATTEMPTS. */
static void give_back_lost_claims(struct worker *w, PGconn *db)
{
    size_t given = 0;
    if (queue_give_back_all(db, w->owner, &given) != ERR_OK)
        log_warn("records claimed before the connection was lost keep their lease until it "
                 "expires",
                 LOG_I64("worker", w->index));
    else if (given > 0)
        log_info("records claimed before the connection was lost given back",
                 LOG_I64("worker", w->index), LOG_I64("records", (long long)given));
}

/* Hands each route's records to its handler and finishes them; the last group's finish also
 * claims the worker's next batch into *next (see finish). */
static void handle_batch(struct worker *w, void *ctx, PGconn *db, struct queue_batch *b,
                         struct queue_batch *next)
{
    const struct worker_ops *ops = w->pool->ops;
    size_t i = 0, end = b->record_count;
    keep_one_source(w, db, b, &i, &end);
    while (i < end) {
        if (is_stopping(w->pool)) {
            for (; i < end; i++)
                release(w, db, &b->records[i]);
            return;
        }
        /* Records arrive sorted by source and type: a route's records are contiguous. */
        const struct worker_route *rt = route_for(ops, &b->records[i]);
        size_t j = i + 1;
        while (j < end && route_for(ops, &b->records[j]) == rt &&
               strcmp(b->records[j].object_type, b->records[i].object_type) == 0)
            j++;
        for (size_t k = i; k < j; k++)
            b->records[k].result = ERR_INTERNAL;
        if (!rt) {
            for (size_t k = i; k < j; k++) {
                b->records[k].result = ERR_UNSUPPORTED;
                b->records[k].detail = xasprintf("no handler for %s %s events",
                                                 b->records[k].source, b->records[k].object_type);
            }
        } else {
            rt->handle(ctx, db, &b->records[i], j - i);
        }
        /* The next batch is claimed with this finish unless the claim is to wait. */
        bool last = j == end && !is_stopping(w->pool);
        w->claim_delay_ms = last && ops->claim_delay ? ops->claim_delay(ctx) : 0;
        finish(w, db, &b->records[i], j - i, last && w->claim_delay_ms <= 0 ? next : NULL);
        i = j;
    }
}

/* Frees the notifications libpq queued on db and returns how many there were; *announced (may
 * be NULL) gains the events they announce (a push's payload is its number of events, queue.c;
 * other notifications announce none). */
static size_t drain_notifications(PGconn *db, long long *announced)
{
    size_t n = 0;
    PQconsumeInput(db);
    PGnotify *note;
    while ((note = PQnotifies(db)) != NULL) {
        if (announced)
            *announced += strtoll(note->extra, NULL, 10);
        PQfreemem(note);
        n++;
    }
    return n;
}

/* A busy worker never waits in wait_for_work, and without this every NOTIFY of every push stays
 * in its connection's memory. */
size_t worker_drain_notifications(PGconn *db)
{
    return drain_notifications(db, NULL);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct worker_pool *p = w->pool;
    const struct config *cfg = p->cfg;
    PGconn *db = NULL;
    void *ctx = p->ops->ctx_new ? p->ops->ctx_new(cfg, p->ops->arg) : p->ops->arg;
    int64_t next_prune = w->index == 0 ? util_monotonic_ms() + PRUNE_EVERY_MS : INT64_MAX;
    bool has_pruned = false;
    int64_t next_tick = util_monotonic_ms();
    int reconnect_ms = 100;
    struct queue_batch b = {0};
    bool have_batch = false; /* b was claimed with the last finish and not handled yet */
    bool has_connected = false;

    while (!is_stopping(p)) {
        if (!db || PQstatus(db) != CONNECTION_OK) {
            PQfinish(db);
            db = NULL;
            if (db_open(cfg->database_url, &db) != ERR_OK || session_start(db) != ERR_OK) {
                PQfinish(db);
                db = NULL;
                log_warn("worker waiting for the database", LOG_I64("worker", w->index),
                         LOG_I64("retry_in_ms", reconnect_ms));
                struct pollfd wake = {p->wake[0], POLLIN, 0};
                poll(&wake, 1, reconnect_ms);
                reconnect_ms = reconnect_ms < 5000 ? reconnect_ms * 2 : 5000;
                continue;
            }
            reconnect_ms = 100;
            if (has_connected && !have_batch)
                give_back_lost_claims(w, db);
            has_connected = true;
        }
        if (util_monotonic_ms() >= next_prune) {
            long long pruned = 0;
            if (queue_prune(db, cfg->done_retention_hours, &pruned) == ERR_OK && pruned)
                log_info("done events pruned", LOG_I64("events", pruned));
            next_prune = util_monotonic_ms() + PRUNE_EVERY_MS;
            has_pruned = true;
        }
        if (p->ops->tick && util_monotonic_ms() >= next_tick) {
            p->ops->tick(ctx, db);
            next_tick = util_monotonic_ms() + 1000;
        }
        /* A batch claimed with the previous finish is handled at once; otherwise claim. */
        if (!have_batch) {
            if (w->claim_delay_ms > 0) {
                /* After a batch, while the API budget sets the pace: not woken by new events,
                 * gathering them is the point. */
                struct pollfd wake = {p->wake[0], POLLIN, 0};
                poll(&wake, 1, (int)w->claim_delay_ms);
                w->claim_delay_ms = 0;
                if (is_stopping(p))
                    break;
            }
            (void)worker_drain_notifications(db);
            if (queue_claim(db, w->owner, w->claim_size, cfg->lease_seconds, is_live_only(db, cfg),
                            &b) != ERR_OK) {
                queue_batch_clear(&b);
                wait_for_work(w, db, 1000);
                continue;
            }
            next_claim_size(w, b.record_count);
        }
        have_batch = false;
        if (b.record_count == 0) {
            queue_batch_clear(&b);
            if (w->index == 0 && !has_pruned) {
                next_prune = 0; /* the first time the queue is idle */
                continue;
            }
            /* Idle: the finish is prepared now rather than by the next burst's first batch (a
             * no-op once this connection has it). */
            if (queue_prepare_finish(db) != ERR_OK)
                log_warn("worker cannot prepare its finish; it is prepared at the first batch",
                         LOG_I64("worker", w->index));
            /* Sleep until NOTIFY, the next backoff or lease expiry, or the fallback poll. */
            long long due = -1;
            int wait_ms = cfg->poll_interval_ms;
            if (queue_next_due_ms(db, &due) == ERR_OK && due >= 0 && due < wait_ms)
                wait_ms = (int)due + 1;
            if (p->ops->tick && wait_ms > 1000)
                wait_ms = 1000;
            wait_for_work(w, db, wait_ms);
            continue;
        }
        struct queue_batch next = {0};
        (void)worker_drain_notifications(db);
        handle_batch(w, ctx, db, &b, &next);
        queue_batch_clear(&b);
        b = next;
        have_batch = b.storage != NULL;
    }
    if (have_batch && db)
        release_all(w, db, &b);
    queue_batch_clear(&b);
    if (p->ops->ctx_new && p->ops->ctx_free)
        p->ops->ctx_free(ctx);
    PQfinish(db);
    return NULL;
}

enum err worker_pool_start(const struct config *cfg, const struct worker_ops *ops, const char *id,
                           struct worker_pool **out)
{
    struct worker_pool *p = xcalloc(1, sizeof(*p));
    p->cfg = cfg;
    p->ops = ops;
    atomic_init(&p->stop, false);
    api_budget_resume_waits();
    if (pipe(p->wake) != 0) {
        log_error("cannot create wake-up pipe", LOG_STR("error", strerror(errno)));
        free(p);
        return ERR_INTERNAL;
    }
    p->count = cfg->worker_threads;
    p->workers = xcalloc((size_t)(p->count ? p->count : 1), sizeof(*p->workers));
    for (int i = 0; i < p->count; i++) {
        struct worker *w = &p->workers[i];
        w->pool = p;
        w->index = i;
        w->seed = (unsigned)(util_now_ms() ^ (i * 7919));
        w->claim_size = cfg->claim_batch;
        snprintf(w->owner, sizeof(w->owner), "%s/%d", id, i);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            log_error("cannot start worker thread", LOG_I64("worker", i));
            p->count = i;
            worker_pool_stop(p);
            return ERR_INTERNAL;
        }
    }
    log_info("workers started", LOG_I64("workers", p->count), LOG_STR("id", id));
    *out = p;
    return ERR_OK;
}

void worker_pool_stop(struct worker_pool *pool)
{
    if (!pool)
        return;
    atomic_store(&pool->stop, true);
    api_budget_cancel_waits();
    ssize_t n = write(pool->wake[1], "x", 1);
    (void)n;
    for (int i = 0; i < pool->count; i++)
        pthread_join(pool->workers[i].thread, NULL);
    close(pool->wake[0]);
    close(pool->wake[1]);
    free(pool->workers);
    free(pool);
    log_info("workers stopped");
}
