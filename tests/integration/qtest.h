/* qtest.h - a migrated fresh database for queue and worker tests. */
#ifndef SVC_QTEST_H
#define SVC_QTEST_H

#include <libpq-fe.h>

/* Creates a fresh database, applies the embedded migrations, returns its URL (caller frees)
 * and an open connection in *db (caller PQfinish()es). */
char *qtest_db(const char *prefix, PGconn **db);

/* Pushes one event with the given ids; returns how many were stored (0 or 1). */
int qtest_push(PGconn *db, const char *source, const char *dedup_key, const char *object_type,
               const char *record_id, long long occurred_ms);

#endif
