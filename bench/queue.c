/* queue.c - queue drain throughput: EVENTS events spread over RECORDS records are drained by
 * THREADS workers with a no-op handler, through dealsync's worker pool (claim by record,
 * coalesce, finish with an outcome row per event), and, as the baseline in the same run, through
 * the textbook per-event queue (one transaction per event: SELECT ... FOR UPDATE SKIP LOCKED
 * LIMIT 1, then UPDATE to done) on a plain job table of its own (id, status, payload, indexed on
 * the pending jobs), so the baseline pays nothing for dealsync's schema.
 * Prints one JSON line per mode. BENCH_QUEUE_MODES=dealsync (or textbook) runs one of them
 * only, to profile it alone.
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

static void fill(PGconn *db, int events, int records)
{
    exec_or_die(db, "TRUNCATE sync_event, sync_record, sync_outcome");
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

static void fill_textbook(PGconn *db, int events)
{
    exec_or_die(db, "DROP TABLE IF EXISTS textbook_job");
    exec_or_die(db, "CREATE TABLE textbook_job (id bigserial PRIMARY KEY, status text NOT NULL"
                    " DEFAULT 'pending', payload jsonb NOT NULL, finished_at timestamptz)");
    exec_or_die(db, "CREATE INDEX textbook_job_pending_idx ON textbook_job (id)"
                    " WHERE status = 'pending'");
    char *sql = xasprintf("INSERT INTO textbook_job (payload) SELECT"
                          " '{\"propertyName\":\"amount\"}' FROM generate_series(1, %d)",
                          events);
    exec_or_die(db, sql);
    free(sql);
    exec_or_die(db, "ANALYZE textbook_job");
}

static void *textbook(void *arg)
{
    (void)arg;
    PGconn *db = PQconnectdb(url);
    for (;;) {
        PGresult *r = PQexec(db, "WITH e AS (SELECT id FROM textbook_job WHERE status = 'pending'"
                                 " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                                 " UPDATE textbook_job s SET status = 'done', finished_at = now()"
                                 " FROM e WHERE s.id = e.id RETURNING s.id");
        int n = PQntuples(r);
        PQclear(r);
        if (n == 0)
            break;
        atomic_fetch_add(&handled, 1);
    }
    PQfinish(db);
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* BENCH_QUEUE_TRACE=1: the handled count every 5 ms of the drain, on stderr (where the time
 * goes: the start, the claims' ramp, the tail). */
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
    bool run_textbook = !modes || strstr(modes, "textbook");
    bool run_dealsync = !modes || strstr(modes, "dealsync");
    double base_s = 0;
    pthread_t *th = xcalloc((size_t)threads, sizeof(*th));
    int64_t start = 0;
    if (run_textbook) {
        /* Baseline: the textbook per-event queue. */
        fill_textbook(db, events);
        atomic_store(&handled, 0);
        start = util_monotonic_ms();
        for (int i = 0; i < threads; i++)
            pthread_create(&th[i], NULL, textbook, NULL);
        for (int i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
        base_s = (double)(util_monotonic_ms() - start) / 1000.0;
        printf("{\"mode\":\"per_event_skip_locked\",\"events\":%d,\"seconds\":%.3f,"
               "\"events_per_second\":%.0f}\n",
               events, base_s, events / base_s);
        fflush(stdout);
    }
    if (!run_dealsync) {
        free(th);
        PQfinish(db);
        return 0;
    }

    /* dealsync's pool. */
    fill(db, events, records);
    atomic_store(&handled, 0);
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.database_url = (char *)url;
    cfg.worker_threads = threads;
    cfg.claim_batch = 20; /* the defaults of QUEUE_CLAIM_BATCH and QUEUE_CLAIM_BATCH_MAX */
    cfg.claim_batch_max = 100;
    cfg.lease_seconds = 120;
    cfg.poll_interval_ms = 50;
    cfg.max_attempts = 3;
    cfg.retry_base_ms = 10;
    cfg.retry_max_ms = 100;
    cfg.done_retention_hours = 24;
    static const struct worker_route routes[] = {{"hubspot", NULL, noop}};
    struct worker_ops ops = {.routes = routes, .route_count = 1};
    struct worker_pool *pool = NULL;
    start = util_monotonic_ms();
    const char *trace = getenv("BENCH_QUEUE_TRACE");
    pthread_t trace_th;
    if (trace)
        pthread_create(&trace_th, NULL, tracer, &start);
    if (worker_pool_start(&cfg, &ops, "bench", &pool) != ERR_OK)
        return 1;
    while (atomic_load(&handled) < events)
        sleep_ms(5);
    while (scalar(db, "SELECT count(*) FROM sync_event WHERE status <> 'done'") > 0)
        sleep_ms(5);
    double pool_s = (double)(util_monotonic_ms() - start) / 1000.0;
    if (trace) {
        atomic_store(&trace_stop, true);
        pthread_join(trace_th, NULL);
        for (int i = 0; i < trace_n; i++)
            if (i == 0 || trace_handled[i] != trace_handled[i - 1])
                fprintf(stderr, "trace %lld %ld\n", (long long)trace_ms[i], trace_handled[i]);
        fprintf(stderr, "trace end %.0f\n", pool_s * 1000);
    }
    worker_pool_stop(pool);
    printf("{\"mode\":\"dealsync_by_record\",\"events\":%d,\"seconds\":%.3f,"
           "\"events_per_second\":%.0f,\"handled\":%ld,\"outcome_rows\":%lld}\n",
           events, pool_s, events / pool_s, atomic_load(&handled),
           scalar(db, "SELECT count(*) FROM sync_outcome"));
    if (run_textbook)
        printf("{\"ratio_dealsync_to_baseline\":%.2f}\n", base_s / pool_s);
    free(th);
    PQfinish(db);
    return 0;
}
