/* db.c - libpq helpers and the HTTP threads' connection pool. Workers own their connections
 * and do not use the pool. */
#include "db.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

struct db_pool {
    char *url;
    char *session_sql; /* run on each new connection; NULL: nothing */
    int size;
    int opened;
    int idle_count;
    PGconn **idle;
    pthread_mutex_t lock;
    pthread_cond_t freed;
};

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* A thread that asked for quiet (db_set_quiet) gets its failures recorded here instead of
 * logged: the HTTP server logs a database outage once, not once per refused request. */
static _Thread_local bool tl_quiet;
static _Thread_local char tl_sqlstate[6];
static _Thread_local char tl_error[256];

bool db_set_quiet(bool quiet)
{
    bool was = tl_quiet;
    tl_quiet = quiet;
    return was;
}

const char *db_last_sqlstate(void)
{
    return tl_sqlstate;
}

const char *db_last_error(void)
{
    return tl_error;
}

static void record_failure(const char *what, const char *state, const char *message)
{
    char text[200];
    snprintf(text, sizeof(text), "%s", message ? message : "unknown");
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
        text[--n] = '\0';
    snprintf(tl_sqlstate, sizeof(tl_sqlstate), "%s", state ? state : "");
    snprintf(tl_error, sizeof(tl_error), "%s: %s", what, text);
    if (!tl_quiet)
        log_error(what, LOG_STR("sqlstate", state && *state ? state : "none"),
                  LOG_STR("error", text));
}

/* Which static statements each live connection has prepared, and under which name. Names are
 * never reused, so an entry forgotten (the table is a ring) is only prepared again, never
 * clashes. A closed connection's entries are not removed: a later connection at the same
 * address has another backend PID. */
#define PREPARED_SLOTS 512
struct prepared {
    const PGconn *db;
    int pid;
    const char *sql;
    unsigned long name;
};
static struct prepared prepared[PREPARED_SLOTS];
static size_t prepared_next;
static unsigned long prepared_names;
static pthread_mutex_t prepared_lock = PTHREAD_MUTEX_INITIALIZER;

PGresult *db_exec_cached(PGconn *db, const char *sql, int nparams, const char *const *params)
{
    return db_exec_cached_params(db, sql, nparams, params, NULL, NULL);
}

/* The name under which db (backend pid) prepared sql, or 0; called with prepared_lock held. */
static unsigned long prepared_find(const PGconn *db, int pid, const char *sql)
{
    for (size_t i = 0; i < PREPARED_SLOTS; i++)
        if (prepared[i].db == db && prepared[i].pid == pid && prepared[i].sql == sql)
            return prepared[i].name;
    return 0;
}

static void prepared_add(const PGconn *db, int pid, const char *sql, unsigned long name)
{
    pthread_mutex_lock(&prepared_lock);
    prepared[prepared_next++ % PREPARED_SLOTS] = (struct prepared){db, pid, sql, name};
    pthread_mutex_unlock(&prepared_lock);
}

/* Prepares sql on db under its name (id) unless db has already. NULL when it is prepared, else
 * the failed result (the caller clears it). */
static PGresult *prepare_once(PGconn *db, const char *sql, int nparams, char id[32])
{
    int pid = PQbackendPID(db);
    pthread_mutex_lock(&prepared_lock);
    unsigned long name = prepared_find(db, pid, sql);
    bool fresh = name == 0;
    if (fresh)
        name = ++prepared_names;
    pthread_mutex_unlock(&prepared_lock);
    snprintf(id, 32, "dealsync_%lu", name);
    if (!fresh)
        return NULL;
    PGresult *r = PQprepare(db, id, sql, nparams, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return r;
    PQclear(r);
    prepared_add(db, pid, sql, name);
    return NULL;
}

PGresult *db_exec_cached_params(PGconn *db, const char *sql, int nparams, const char *const *params,
                                const int *lengths, const int *formats)
{
    char id[32];
    PGresult *failed = prepare_once(db, sql, nparams, id);
    if (failed)
        return failed;
    return PQexecPrepared(db, id, nparams, params, lengths, formats, 0);
}

enum err db_prepare_cached(PGconn *db, const char *sql, int nparams)
{
    char id[32];
    PGresult *failed = prepare_once(db, sql, nparams, id);
    enum err rc =
        failed ? db_check(db, failed, PGRES_COMMAND_OK, "cannot prepare statement") : ERR_OK;
    PQclear(failed);
    return rc;
}

enum err db_open(const char *url, PGconn **out)
{
    /* connect_timeout before the URL: a URL that sets its own wins. */
    const char *const keys[] = {"connect_timeout", "dbname", NULL};
    const char *const values[] = {DB_CONNECT_TIMEOUT_SECONDS, url, NULL};
    PGconn *db = PQconnectdbParams(keys, values, 1);
    if (PQstatus(db) != CONNECTION_OK) {
        /* 08006: connection_failure, the SQL state a lost server reports. */
        record_failure("cannot connect to database", "08006", PQerrorMessage(db));
        PQfinish(db);
        return ERR_DB;
    }
    PQsetNoticeProcessor(db, quiet_notices, NULL);
    *out = db;
    return ERR_OK;
}

struct db_pool *db_pool_new(const char *url, int size, const char *session_sql)
{
    struct db_pool *p = xcalloc(1, sizeof(*p));
    p->url = xstrdup(url);
    p->session_sql = session_sql ? xstrdup(session_sql) : NULL;
    p->size = size;
    p->idle = xcalloc((size_t)size, sizeof(PGconn *));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    return p;
}

void db_pool_free(struct db_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < pool->idle_count; i++)
        PQfinish(pool->idle[i]);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->freed);
    free(pool->idle);
    free(pool->session_sql);
    free(pool->url);
    free(pool);
}

enum err db_pool_acquire(struct db_pool *pool, int wait_ms, PGconn **out)
{
    struct timespec deadline = util_deadline_ms(wait_ms);

    PGconn *conn = NULL;
    bool open_new = false;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        if (pool->idle_count > 0) {
            conn = pool->idle[--pool->idle_count];
            break;
        }
        if (pool->opened < pool->size) {
            pool->opened++;
            open_new = true;
            break;
        }
        if (pthread_cond_timedwait(&pool->freed, &pool->lock, &deadline) != 0)
            break;
    }
    pthread_mutex_unlock(&pool->lock);

    /* Connecting happens outside the lock. */
    if (open_new) {
        if (db_open(pool->url, &conn) != ERR_OK ||
            (pool->session_sql && db_exec(conn, pool->session_sql) != ERR_OK)) {
            if (conn)
                PQfinish(conn);
            pthread_mutex_lock(&pool->lock);
            pool->opened--;
            pthread_cond_signal(&pool->freed);
            pthread_mutex_unlock(&pool->lock);
            return ERR_DB;
        }
    }
    if (!conn) {
        record_failure("no database connection free in time", "", "every pooled connection busy");
        return ERR_DB;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        /* Dropped, not reset: a new connection gets the session settings again. */
        record_failure("cannot reconnect to database", "08006", PQerrorMessage(conn));
        db_pool_release(pool, conn);
        return ERR_DB;
    }
    *out = conn;
    return ERR_OK;
}

void db_pool_release(struct db_pool *pool, PGconn *conn)
{
    if (!conn)
        return;
    bool healthy = PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE;
    if (!healthy) {
        PQfinish(conn);
        conn = NULL;
    }
    pthread_mutex_lock(&pool->lock);
    if (conn)
        pool->idle[pool->idle_count++] = conn;
    else
        pool->opened--;
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->lock);
}

enum err db_check(PGconn *db, PGresult *r, ExecStatusType expected, const char *what)
{
    if (r && PQresultStatus(r) == expected)
        return ERR_OK;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *message = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!message)
        message = PQerrorMessage(db);
    if (state && strcmp(state, "23505") == 0)
        return ERR_CONFLICT;
    record_failure(what, state, message);
    return ERR_DB;
}

enum err db_exec(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    /* A SELECT run for its side effect (pg_advisory_lock) returns rows: that is success too. */
    ExecStatusType want = PQresultStatus(r) == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
    enum err rc = db_check(db, r, want, "database statement failed");
    PQclear(r);
    return rc;
}

enum err db_begin(PGconn *db)
{
    return db_exec(db, "BEGIN");
}

enum err db_commit(PGconn *db)
{
    PGresult *r = PQexec(db, "COMMIT");
    enum err rc = db_check(db, r, PGRES_COMMAND_OK, "cannot commit");
    /* COMMIT ends a transaction in which a statement failed with a rollback, and answers
     * "ROLLBACK" without an error: the caller's writes are gone, which is a failure. */
    if (rc == ERR_OK && strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
        record_failure("cannot commit", "25P02", "a statement of the transaction failed");
        rc = ERR_DB;
    }
    PQclear(r);
    return rc;
}

void db_rollback(PGconn *db)
{
    if (PQtransactionStatus(db) == PQTRANS_IDLE)
        return;
    PGresult *r = PQexec(db, "ROLLBACK");
    PQclear(r);
}
