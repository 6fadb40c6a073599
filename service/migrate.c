/* migrate.c - applies the embedded migrations once each, serialised by an advisory lock. */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

/* Any constant works; it only has to be the same in every dealsync process. */
#define MIGRATE_LOCK_KEY "7341299001"

static enum err ensure_table(PGconn *db)
{
    return db_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       " version integer PRIMARY KEY,"
                       " name text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now())");
}

static enum err is_applied(PGconn *db, int version, bool *out)
{
    char v[16];
    snprintf(v, sizeof(v), "%d", version);
    const char *params[] = {v};
    PGresult *r = PQexecParams(db, "SELECT 1 FROM schema_migrations WHERE version = $1::int", 1,
                               NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read schema_migrations");
    if (rc == ERR_OK)
        *out = PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

static enum err apply_one(PGconn *db, const struct migration *m)
{
    enum err rc = db_begin(db);
    if (rc != ERR_OK)
        return rc;
    PGresult *r = PQexec(db, m->sql);
    rc = db_check(db, r, PGRES_COMMAND_OK, "migration failed");
    PQclear(r);
    if (rc == ERR_OK) {
        char v[16];
        snprintf(v, sizeof(v), "%d", m->version);
        const char *params[] = {v, m->name};
        r = PQexecParams(db, "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)",
                         2, NULL, params, NULL, NULL, 0);
        rc = db_check(db, r, PGRES_COMMAND_OK, "cannot record migration");
        PQclear(r);
    }
    if (rc == ERR_OK)
        rc = db_commit(db);
    if (rc != ERR_OK) {
        db_rollback(db);
        log_error("migration not applied", LOG_STR("migration", m->name));
        return rc;
    }
    log_info("migration applied", LOG_STR("migration", m->name));
    return ERR_OK;
}

enum err migrate_apply(PGconn *db, int *applied)
{
    int count = 0;
    enum err rc = db_exec(db, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")");
    if (rc != ERR_OK)
        return rc;
    rc = ensure_table(db);
    for (int i = 0; rc == ERR_OK && i < migrate_embedded_count; i++) {
        bool done = false;
        rc = is_applied(db, migrate_embedded[i].version, &done);
        if (rc == ERR_OK && !done) {
            rc = apply_one(db, &migrate_embedded[i]);
            if (rc == ERR_OK)
                count++;
        }
    }
    /* Unlock even after a failure; a lost connection releases it anyway. */
    PGresult *r = PQexec(db, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")");
    PQclear(r);
    if (rc == ERR_OK && applied)
        *applied = count;
    return rc;
}

enum err migrate_is_current(PGconn *db, bool *is_current)
{
    PGresult *r = PQexec(db, "SELECT coalesce(max(version), 0), count(*) FROM schema_migrations");
    /* A missing table (fresh database) is "not current", not an error. */
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && state && strcmp(state, "42P01") == 0) {
        PQclear(r);
        *is_current = false;
        return ERR_OK;
    }
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot read schema_migrations");
    if (rc == ERR_OK) {
        int count = atoi(PQgetvalue(r, 0, 1));
        int max = atoi(PQgetvalue(r, 0, 0));
        int want =
            migrate_embedded_count ? migrate_embedded[migrate_embedded_count - 1].version : 0;
        *is_current = count >= migrate_embedded_count && max >= want;
    }
    PQclear(r);
    return rc;
}
