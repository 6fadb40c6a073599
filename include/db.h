/* db.h - libpq connections: open with logging, a small pool for HTTP threads, transactions. */
#ifndef SVC_DB_H
#define SVC_DB_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"

struct db_pool;

/* Opens a connection to url (borrowed). On ERR_OK *out is the connection; the caller closes it
 * with PQfinish. Logs the failure (never the URL: it may hold a password). */
enum err db_open(const char *url, PGconn **out) WARN_UNUSED;

/* A pool of up to size connections, opened lazily. Thread-safe. Caller frees with
 * db_pool_free after every connection was released. */
struct db_pool *db_pool_new(const char *url, int size);
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

/* Checks r against the expected status; on mismatch logs what (a fixed phrase naming the
 * operation) with the SQL state and returns ERR_DB (ERR_CONFLICT for unique violations).
 * Does not clear r. */
enum err db_check(PGconn *db, PGresult *r, ExecStatusType expected, const char *what) WARN_UNUSED;

/* BEGIN / COMMIT / ROLLBACK. Rollback never fails from the caller's point of view. */
enum err db_begin(PGconn *db) WARN_UNUSED;
enum err db_commit(PGconn *db) WARN_UNUSED;
void db_rollback(PGconn *db);

#endif
