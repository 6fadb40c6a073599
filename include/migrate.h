/* migrate.h - forward-only schema migrations compiled into the binary from migrations/. */
#ifndef SVC_MIGRATE_H
#define SVC_MIGRATE_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"

struct migration {
    int version;
    const char *name;
    const char *sql;
};

/* Generated from the migrations/ SQL files in version order (build/gen/migrations.c). */
extern const struct migration migrate_embedded[];
extern const int migrate_embedded_count;

/* Applies every pending migration, each in its own transaction, recorded in schema_migrations,
 * under an advisory lock so that replicas starting together apply each one once.
 * *applied (may be NULL) receives how many were applied now. */
enum err migrate_apply(PGconn *db, int *applied) WARN_UNUSED;

/* *is_current is true when every embedded migration is recorded as applied. */
enum err migrate_is_current(PGconn *db, bool *is_current) WARN_UNUSED;

#endif
