/* queue.c - queue drain throughput: EVENTS events spread over RECORDS records are drained by
 * THREADS workers with a no-op handler, through dealsync's worker pool (claim by record,
 * coalesce, finish with an outcome row per event), and, as the baseline in the same run, through
 * the textbook per-event queue (one transaction per event: SELECT ... FOR UPDATE SKIP LOCKED
 * LIMIT 1, then UPDATE to done) on a plain job table of its own (id, status, payload, indexed on
 * the pending jobs), so the baseline pays nothing for dealsync's schema. A third queue, the
 * floor, is the textbook's claiming FLOOR_BATCH jobs at once (one statement and one commit per
 * 200 jobs, dealsync's claim maximum): about the least a queue on PostgreSQL does per event
 * (one row locked and written; no lease that outlives a transaction, no outcome row, no order
 * per record), so floor / textbook is about the most a queue shows against the textbook in the
 * same run, and dealsync / floor what dealsync's guarantees cost.
 * Each queue is measured twice (BENCH_QUEUE_START=cold or warm runs one of the two only):
 *   cold: the events are in the table before the queue starts, and the clock starts with it:
 *     the textbook threads' and dealsync's workers' new connections and their first statements
 *     on cold caches are in the drain's time (a queue started on a backlog).
 *   warm: a burst landing on a running queue. Before the clock, each textbook thread has
 *     connected and run its claim once on the empty table, and dealsync's pool has started and
 *     polled the empty queue (every worker's first claim done, worker 0's prune done, every
 *     worker idle). Then the events are inserted in one transaction (dealsync's with the NOTIFY
 *     that a push sends; both tables analyzed in it, as a running database's would be), and the
 *     clock starts as that transaction's COMMIT is sent: the textbook threads are released by a
 *     barrier when it returns, and dealsync's workers are woken by the NOTIFY, as in production
 *     (the fallback poll at its default, 2 s, so that the NOTIFY wakes them).
 * Prints one JSON line per mode and start. BENCH_QUEUE_MODES=dealsync (or textbook, or floor)
 * runs those named only, to profile one alone.
 * usage: bench-queue DATABASE_URL EVENTS RECORDS THREADS */
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "config.h"
#include "log.h"
#include "migrate.h"
#include "queue.h"
#include "util.h"
#include "worker.h"

static const char *url;
static atomic_long handled;

static void exec_or_die(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "bench-queue: %s: %s", sql, PQerrorMessage(db));
        exit(1);
    }
    PQclear(r);
}

/* EVENTS events, one record each when RECORDS == EVENTS, into dealsync's tables (the triggers
 * count each record's open events), then both tables analyzed. */
static void fill(PGconn *db, int events, int records)
{
    char *sql = xasprintf("INSERT INTO sync_record (source, object_type, record_id)"
                          " SELECT 'hubspot', 'deal', r::text FROM generate_series(1, %d) r",
                          records);
    exec_or_die(db, sql);
    free(sql);
    sql = xasprintf("INSERT INTO sync_event (source, dedup_key, object_type, record_id,"
                    " event_type, occurred_at, payload)"
                    " SELECT 'hubspot', e::text, 'deal', (1 + e %% %d)::text,"
                    " 'deal.propertyChange', now(), '{\"propertyName\":\"amount\"}'"
                    " FROM generate_series(1, %d) e",
                    records, events);
    exec_or_die(db, sql);
    free(sql);
    exec_or_die(db, "ANALYZE sync_event");
    exec_or_die(db, "ANALYZE sync_record");
}

static void noop(void *ctx, PGconn *db, struct queue_record *recs, size_t n)
{
    (void)ctx;
    (void)db;
    for (size_t i = 0; i < n; i++) {
        recs[i].result = ERR_OK;
        atomic_fetch_add(&handled, (long)recs[i].event_count);
    }
}

static long long scalar(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    long long v = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

static void textbook_create(PGconn *db)
{
    exec_or_die(db, "DROP TABLE IF EXISTS textbook_job");
    exec_or_die(db, "CREATE TABLE textbook_job (id bigserial PRIMARY KEY, status text NOT NULL"
                    " DEFAULT 'pending', payload jsonb NOT NULL, finished_at timestamptz)");
    exec_or_die(db, "CREATE INDEX textbook_job_pending_idx ON textbook_job (id)"
                    " WHERE status = 'pending'");
}

static void textbook_fill(PGconn *db, int events)
{
    char *sql = xasprintf("INSERT INTO textbook_job (payload) SELECT"
                          " '{\"propertyName\":\"amount\"}' FROM generate_series(1, %d)",
                          events);
    exec_or_die(db, sql);
    free(sql);
    exec_or_die(db, "ANALYZE textbook_job");
}

/* The textbook claim: one event, its own transaction; the floor's: FLOOR_BATCH events. */
#define TEXTBOOK_SQL(limit)                                                                        \
    "WITH e AS (SELECT id FROM textbook_job WHERE status = 'pending'"                              \
    " ORDER BY id LIMIT " limit " FOR UPDATE SKIP LOCKED)"                                         \
    " UPDATE textbook_job s SET status = 'done', finished_at = now()"                              \
    " FROM e WHERE s.id = e.id RETURNING s.id"
#define FLOOR_BATCH "200"
static const char *textbook_sql;

/* Warm start: the threads and main meet here twice, once all are connected and have claimed
 * once on the empty table, then when the events are committed. */
static pthread_barrier_t textbook_ready;
static bool is_textbook_warm;

static int textbook_claim(PGconn *db)
{
    PGresult *r = PQexec(db, textbook_sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "bench-queue: textbook claim: %s", PQerrorMessage(db));
        exit(1);
    }
    int n = PQntuples(r);
    PQclear(r);
    return n;
}

static void *textbook(void *arg)
{
    (void)arg;
    PGconn *db = PQconnectdb(url);
    if (is_textbook_warm) {
        (void)textbook_claim(db);
        pthread_barrier_wait(&textbook_ready);
        pthread_barrier_wait(&textbook_ready);
    }
    for (int n; (n = textbook_claim(db)) > 0;)
        atomic_fetch_add(&handled, n);
    PQfinish(db);
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* BENCH_QUEUE_TRACE=1: the handled count every 5 ms of dealsync's drain, on stderr (where the
 * time goes: the start, the claims' ramp, the tail). */
#define TRACE_MAX 4000
static long trace_handled[TRACE_MAX];
static int64_t trace_ms[TRACE_MAX];
static int trace_n;
static atomic_bool trace_stop;

static void *tracer(void *arg)
{
    int64_t start = *(const int64_t *)arg;
    while (!atomic_load(&trace_stop) && trace_n < TRACE_MAX) {
        trace_ms[trace_n] = util_monotonic_ms() - start;
        trace_handled[trace_n++] = atomic_load(&handled);
        sleep_ms(5);
    }
    return NULL;
}

/* The textbook queue (or the floor, is_floor) drains events with threads connections; returns
 * the seconds it took. */
static double run_textbook(PGconn *db, int events, int threads, bool is_warm, bool is_floor)
{
    textbook_sql = is_floor ? TEXTBOOK_SQL(FLOOR_BATCH) : TEXTBOOK_SQL("1");
    pthread_t *th = xcalloc((size_t)threads, sizeof(*th));
    textbook_create(db);
    if (!is_warm)
        textbook_fill(db, events);
    atomic_store(&handled, 0);
    is_textbook_warm = is_warm;
    pthread_barrier_init(&textbook_ready, NULL, (unsigned)threads + 1);
    int64_t start = util_monotonic_ms();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, textbook, NULL);
    if (is_warm) {
        pthread_barrier_wait(&textbook_ready); /* connected, claimed once */
        exec_or_die(db, "BEGIN");
        textbook_fill(db, events);
        start = util_monotonic_ms();
        exec_or_die(db, "COMMIT");
        pthread_barrier_wait(&textbook_ready);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double s = (double)(util_monotonic_ms() - start) / 1000.0;
    pthread_barrier_destroy(&textbook_ready);
    free(th);
    printf("{\"mode\":\"%s\",\"start\":\"%s\",\"events\":%d,\"seconds\":%.3f,"
           "\"events_per_second\":%.0f}\n",
           is_floor ? "floor_batch_skip_locked" : "per_event_skip_locked",
           is_warm ? "warm" : "cold", events, s, events / s);
    fflush(stdout);
    return s;
}

/* Waits until every one of the pool's threads connections is idle after its wait-time query:
 * each worker has claimed on the empty queue and gone to sleep, worker 0 after its first prune
 * (it prunes at its first empty claim, claims again, and only then reads the wait). */
static void wait_pool_idle(PGconn *db, int threads)
{
    for (int i = 0; i < 2000; i++) {
        if (scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND pid <> pg_backend_pid() AND state = 'idle'"
                       " AND query LIKE 'SELECT ceil(extract(epoch FROM min(greatest%'") >= threads)
            return;
        sleep_ms(5);
    }
    fprintf(stderr, "bench-queue: the pool did not go idle\n");
    exit(1);
}

/* dealsync's pool drains events; returns the seconds it took. */
static double run_dealsync(PGconn *db, int events, int records, int threads, bool is_warm)
{
    exec_or_die(db, "TRUNCATE sync_event, sync_record, sync_outcome");
    if (!is_warm)
        fill(db, events, records);
    atomic_store(&handled, 0);
    static struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.database_url = (char *)url;
    cfg.worker_threads = threads;
    cfg.claim_batch = 20; /* the defaults of QUEUE_CLAIM_BATCH and QUEUE_CLAIM_BATCH_MAX */
    cfg.claim_batch_max = 200;
    cfg.lease_seconds = 120;
    /* warm: QUEUE_POLL_INTERVAL_MS's default, so the push's NOTIFY is what wakes the workers */
    cfg.poll_interval_ms = is_warm ? 2000 : 50;
    cfg.max_attempts = 3;
    cfg.retry_base_ms = 10;
    cfg.retry_max_ms = 100;
    cfg.done_retention_hours = 24;
    static const struct worker_route routes[] = {{"hubspot", NULL, noop}};
    static const struct worker_ops ops = {.routes = routes, .route_count = 1};
    struct worker_pool *pool = NULL;
    int64_t start = util_monotonic_ms();
    if (is_warm) {
        if (worker_pool_start(&cfg, &ops, "bench", &pool) != ERR_OK)
            exit(1);
        wait_pool_idle(db, threads);
        exec_or_die(db, "BEGIN");
        fill(db, events, records);
        /* the NOTIFY a push of these events sends: its payload is their number */
        char *notify = xasprintf("SELECT pg_notify('" QUEUE_NOTIFY_CHANNEL "', '%d')", events);
        exec_or_die(db, notify);
        free(notify);
        start = util_monotonic_ms();
        exec_or_die(db, "COMMIT");
    }
    const char *trace = getenv("BENCH_QUEUE_TRACE");
    pthread_t trace_th;
    trace_n = 0;
    atomic_store(&trace_stop, false);
    if (trace)
        pthread_create(&trace_th, NULL, tracer, &start);
    if (!is_warm && worker_pool_start(&cfg, &ops, "bench", &pool) != ERR_OK)
        exit(1);
    while (atomic_load(&handled) < events)
        sleep_ms(5);
    while (scalar(db, "SELECT count(*) FROM sync_event WHERE status <> 'done'") > 0)
        sleep_ms(5);
    double s = (double)(util_monotonic_ms() - start) / 1000.0;
    if (trace) {
        atomic_store(&trace_stop, true);
        pthread_join(trace_th, NULL);
        for (int i = 0; i < trace_n; i++)
            if (i == 0 || trace_handled[i] != trace_handled[i - 1])
                fprintf(stderr, "trace %s %lld %ld\n", is_warm ? "warm" : "cold",
                        (long long)trace_ms[i], trace_handled[i]);
        fprintf(stderr, "trace %s end %.0f\n", is_warm ? "warm" : "cold", s * 1000);
    }
    worker_pool_stop(pool);
    printf("{\"mode\":\"dealsync_by_record\",\"start\":\"%s\",\"events\":%d,\"seconds\":%.3f,"
           "\"events_per_second\":%.0f,\"handled\":%ld,\"outcome_rows\":%lld}\n",
           is_warm ? "warm" : "cold", events, s, events / s, atomic_load(&handled),
           scalar(db, "SELECT count(*) FROM sync_outcome"));
    fflush(stdout);
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s DATABASE_URL EVENTS RECORDS THREADS\n", argv[0]);
        return 64;
    }
    url = argv[1];
    log_set_level(LOG_WARN);
    int events = atoi(argv[2]);
    int records = atoi(argv[3]);
    int threads = atoi(argv[4]);
    PGconn *db = PQconnectdb(url);
    if (PQstatus(db) != CONNECTION_OK || migrate_apply(db, NULL) != ERR_OK) {
        fprintf(stderr, "bench-queue: cannot prepare the database\n");
        return 1;
    }

    const char *modes = getenv("BENCH_QUEUE_MODES");
    bool is_textbook_run = !modes || strstr(modes, "textbook");
    bool is_dealsync_run = !modes || strstr(modes, "dealsync");
    bool is_floor_run = !modes || strstr(modes, "floor");
    const char *starts = getenv("BENCH_QUEUE_START");
    for (int warm = 0; warm < 2; warm++) {
        if (starts && !strstr(starts, warm ? "warm" : "cold"))
            continue;
        double base_s = is_textbook_run ? run_textbook(db, events, threads, warm, false) : 0;
        double floor_s = is_floor_run ? run_textbook(db, events, threads, warm, true) : 0;
        double pool_s = is_dealsync_run ? run_dealsync(db, events, records, threads, warm) : 0;
        if (is_textbook_run && is_dealsync_run)
            printf("{\"ratio_dealsync_to_baseline\":%.2f,\"start\":\"%s\"}\n", base_s / pool_s,
                   warm ? "warm" : "cold");
        if (is_textbook_run && is_floor_run)
            printf("{\"ratio_floor_to_baseline\":%.2f,\"start\":\"%s\"}\n", base_s / floor_s,
                   warm ? "warm" : "cold");
        fflush(stdout);
    }
    PQfinish(db);
    return 0;
}
