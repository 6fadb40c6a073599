/* sync_pair.c - per-record advisory locks, so that the two directions (and two workers of one
 * direction) never read, decide and record one pair at the same time.
 *
 * Why: each direction reads both records, decides field by field against the baseline stored in
 * record_link, writes, and then stores the new baseline. Two handlers interleaving on one pair
 * would each decide on state the other is changing and the later one would overwrite the
 * other's baseline: that is how a user's edit got lost (issue 14). The locks are session locks
 * held across the handler's API calls on purpose (a few hundred milliseconds); they are taken
 * with pg_try_advisory_lock, never waited for, so no worker blocks and no deadlock can form: a
 * handler that cannot get a record's lock hands the record back with ERR_BUSY (deferred
 * shortly, the attempt not counted). A worker that dies loses its session and its locks. */
#include "sync_pair.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "link.h"
#include "log.h"

/* The advisory lock class of record locks ("DS" + 1): keeps them apart from migrate.c's. */
#define PAIR_LOCK_CLASS "1146290177"

enum err sync_pair_try_lock(PGconn *db, enum sync_pair_side side, const char *id, bool *got)
{
    const char *params[] = {side == SYNC_PAIR_SF ? "sf:" : "hs:", id};
    PGresult *r =
        PQexecParams(db, "SELECT pg_try_advisory_lock(" PAIR_LOCK_CLASS ", hashtext($1 || $2))", 2,
                     NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot take record lock");
    if (rc == ERR_OK)
        *got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return rc;
}

enum err sync_pair_lock_record(PGconn *db, enum sync_pair_side side, const char *id, bool *got,
                               bool *is_linked)
{
    struct link l = {0};
    *is_linked = false;
    enum err rc = sync_pair_try_lock(db, side, id, got);
    if (rc != ERR_OK || !*got)
        return rc;
    rc = side == SYNC_PAIR_SF ? link_find_by_sf(db, LINK_OPPORTUNITY, id, &l)
                              : link_find_by_hs(db, LINK_OPPORTUNITY, id, &l);
    if (rc == ERR_OK) {
        *is_linked = true;
        rc = side == SYNC_PAIR_SF ? sync_pair_try_lock(db, SYNC_PAIR_HS, l.hs_id, got)
                                  : sync_pair_try_lock(db, SYNC_PAIR_SF, l.sf_id, got);
    } else if (rc == ERR_NOT_FOUND) {
        rc = ERR_OK;
    }
    link_clear(&l);
    return rc;
}

/* The advisory lock class of the find-or-create locks ("DS" + 2). */
#define CREATE_LOCK_CLASS "1146290178"

enum err sync_pair_lock_wait(PGconn *db, const char *key)
{
    const char *params[] = {key};
    PGresult *r = PQexecParams(db, "SELECT pg_advisory_lock(" CREATE_LOCK_CLASS ", hashtext($1))",
                               1, NULL, params, NULL, NULL, 0);
    enum err rc = db_check(db, r, PGRES_TUPLES_OK, "cannot take find-or-create lock");
    PQclear(r);
    return rc;
}

void sync_pair_unlock(PGconn *db, const char *key)
{
    const char *params[] = {key};
    PGresult *r = PQexecParams(db, "SELECT pg_advisory_unlock(" CREATE_LOCK_CLASS ", hashtext($1))",
                               1, NULL, params, NULL, NULL, 0);
    if (db_check(db, r, PGRES_TUPLES_OK, "cannot release find-or-create lock") != ERR_OK)
        log_warn("find-or-create lock stays until the connection closes");
    PQclear(r);
}

void sync_pair_unlock_all(PGconn *db)
{
    PGresult *r = PQexec(db, "SELECT pg_advisory_unlock_all()");
    if (db_check(db, r, PGRES_TUPLES_OK, "cannot release record locks") != ERR_OK)
        log_warn("record locks stay until the connection closes");
    PQclear(r);
}
