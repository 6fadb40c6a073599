/* db.h - libpq connections: open with logging, a small pool for HTTP threads, transactions. */
#ifndef SVC_DB_H
#define SVC_DB_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"

struct db_pool;

/* libpq's connect_timeout for every connection unless the URL sets its own. */
#define DB_CONNECT_TIMEOUT_SECONDS "5"

/* The webhook path's database limits, run on each of its connections (the HTTP pool, the group
 * committers): a statement 3 s, a lock wait 1.5 s. A webhook that cannot be committed within
 * them gets 503 instead of hanging its HTTP thread. */
#define DB_WEBHOOK_SESSION_SQL "SET statement_timeout = 3000; SET lock_timeout = 1500"

/* Opens a connection to url (borrowed). On ERR_OK *out is the connection; the caller closes it
 * with PQfinish. Logs the failure (never the URL: it may hold a password). */
enum err db_open(const char *url, PGconn **out) WARN_UNUSED;

/* A pool of up to size connections, opened lazily; session_sql (may be NULL) runs on each new
 * connection (timeouts, for one). Thread-safe. Caller frees with db_pool_free after every
 * connection was released. */
struct db_pool *db_pool_new(const char *url, int size, const char *session_sql);
void db_pool_free(struct db_pool *pool);

/* Borrows a healthy connection, waiting up to wait_ms for one to be free. ERR_DB when the
 * database cannot be reached or none frees up in time. Thread-safe. */
enum err db_pool_acquire(struct db_pool *pool, int wait_ms, PGconn **out) WARN_UNUSED;
/* Returns a borrowed connection; a connection in a failed state is closed, not reused. */
void db_pool_release(struct db_pool *pool, PGconn *conn);

/* Runs one statement without parameters, for its effect (rows it returns are discarded);
 * ERR_DB (logged with the SQL state) on failure. */
enum err db_exec(PGconn *db, const char *sql) WARN_UNUSED;

/* PQexecParams for a hot statement (sql is a static string): prepared once per connection
 * and then executed without parsing or planning it again. Thread-safe; the caller clears the
 * result as PQexecParams'. A failed PREPARE returns its error result. */
PGresult *db_exec_cached(PGconn *db, const char *sql, int nparams, const char *const *params);
/* The same with PQexecParams' lengths and formats (either may be NULL: text parameters). */
PGresult *db_exec_cached_params(PGconn *db, const char *sql, int nparams, const char *const *params,
                                const int *lengths, const int *formats);
/* Prepares sql (a static string, later passed to db_exec_cached) on db unless db has already,
 * so that its first execution finds it ready. ERR_DB (logged): it was not prepared, and
 * db_exec_cached prepares it on first use. Thread-safe. */
enum err db_prepare_cached(PGconn *db, const char *sql, int nparams) WARN_UNUSED;

/* Checks r against the expected status; on mismatch logs what (a fixed phrase naming the
 * operation) with the SQL state and returns ERR_DB (ERR_CONFLICT for unique violations).
 * Does not clear r. */
enum err db_check(PGconn *db, PGresult *r, ExecStatusType expected, const char *what) WARN_UNUSED;

/* Quiet mode for the calling thread: failures of db_open, db_check and the pool are recorded
 * (db_last_sqlstate, db_last_error) but not logged, so that a caller refusing many requests
 * during an outage can log it once. Returns the previous setting. */
bool db_set_quiet(bool quiet);
/* The calling thread's last recorded failure: its SQL state ("" when none, "08006" for a lost
 * connection) and "what: message". Never NULL. */
const char *db_last_sqlstate(void);
const char *db_last_error(void);

/* BEGIN / COMMIT / ROLLBACK. Rollback never fails from the caller's point of view. A commit
 * of a transaction in which a statement failed (PostgreSQL rolls it back) is ERR_DB. */
enum err db_begin(PGconn *db) WARN_UNUSED;
enum err db_commit(PGconn *db) WARN_UNUSED;
void db_rollback(PGconn *db);

#endif
