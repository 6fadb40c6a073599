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

#include <cjson/cJSON.h>

#include "db.h"
#include "link.h"
#include "log.h"
#include "queue.h"
#include "util.h"

/* The advisory lock class of record locks ("DS" + 1): keeps them apart from migrate.c's. The
 * keys are the queue's busy locks (queue.h): claims leave a record held here for later. */
#define PAIR_LOCK_CLASS QUEUE_RECORD_LOCK_CLASS

enum err sync_pair_try_lock(PGconn *db, enum sync_pair_side side, const char *id, bool *got)
{
    /* Links are read anew once the lock is held: the lock's previous holder may have linked
     * this record, or its partner, meanwhile (so all of them, not only this id's). */
    link_cache_forget_all();
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

void sync_pair_release(PGconn *db, enum sync_pair_side side, const char *id)
{
    const char *params[] = {side == SYNC_PAIR_SF ? "sf:" : "hs:", id};
    PGresult *r =
        PQexecParams(db, "SELECT pg_advisory_unlock(" PAIR_LOCK_CLASS ", hashtext($1 || $2))", 2,
                     NULL, params, NULL, NULL, 0);
    if (db_check(db, r, PGRES_TUPLES_OK, "cannot release record lock") != ERR_OK)
        log_warn("record lock stays until the end of the batch", LOG_STR("record_id", id));
    PQclear(r);
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
        /* The partner is busy: the record's own lock goes at once, so that the worker holding
         * the partner can take the whole pair now rather than after this whole batch. */
        if (rc == ERR_OK && !*got)
            sync_pair_release(db, side, id);
    } else if (rc == ERR_NOT_FOUND) {
        rc = ERR_OK;
    }
    link_clear(&l);
    return rc;
}

/* ids as a JSON array of strings, for jsonb_array_elements_text. Caller frees. */
static char *id_list(const char *const *ids, const size_t *pick, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(ids[pick ? pick[i] : i]));
    char *text = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return text;
}

/* One statement over a list of ids; rows (ordinal, ...) come back in r. */
static enum err over_list(PGconn *db, const char *sql, const char *list, const char *prefix,
                          PGresult **r)
{
    const char *params[] = {list, prefix};
    *r = PQexecParams(db, sql, 2, NULL, params, NULL, NULL, 0);
    return db_check(db, *r, PGRES_TUPLES_OK, "cannot take record locks");
}

/* The statements of sync_pair_lock_records: the own locks first, then (a new snapshot, so a
 * link saved by the previous holder is seen) the partner of each locked record and its lock,
 * then the release of the own locks whose partner is busy. Rows carry the ordinal of their id. */
#define FROM_IDS " FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS u(id, i)"
#define LOCK_OWN_SQL                                                                               \
    "SELECT u.i, pg_try_advisory_lock(" PAIR_LOCK_CLASS ", hashtext($2 || u.id))" FROM_IDS
#define LOCK_PARTNER_SQL(mine, theirs)                                                             \
    "SELECT u.i, pg_try_advisory_lock(" PAIR_LOCK_CLASS ", hashtext($2 || l." theirs "))" FROM_IDS \
    " CROSS JOIN LATERAL (SELECT " theirs " FROM record_link"                                      \
    "  WHERE kind = 'opportunity' AND " mine " = u.id) l"
#define RELEASE_SQL                                                                                \
    "SELECT u.i, pg_advisory_unlock(" PAIR_LOCK_CLASS ", hashtext($2 || u.id))" FROM_IDS

enum err sync_pair_lock_records(PGconn *db, enum sync_pair_side side, const char *const *ids,
                                size_t n, bool *got, bool *is_linked)
{
    link_cache_forget_all(); /* links are read anew once the locks are held */
    const char *mine = side == SYNC_PAIR_SF ? "sf:" : "hs:";
    const char *theirs = side == SYNC_PAIR_SF ? "hs:" : "sf:";
    size_t *pick = xcalloc(n + 1, sizeof(*pick));
    size_t picked = 0;
    PGresult *r = NULL;
    char *list = NULL;
    enum err rc = ERR_OK;
    for (size_t i = 0; i < n; i++)
        got[i] = is_linked[i] = false;
    if (n == 0)
        goto done;
    list = id_list(ids, NULL, n);
    rc = over_list(db, LOCK_OWN_SQL, list, mine, &r);
    for (int row = 0; rc == ERR_OK && row < PQntuples(r); row++) {
        size_t i = (size_t)atol(PQgetvalue(r, row, 0)) - 1;
        if (i < n && strcmp(PQgetvalue(r, row, 1), "t") == 0)
            got[i] = true;
    }
    PQclear(r);
    r = NULL;
    free(list);
    list = NULL;
    if (rc != ERR_OK)
        goto failed;
    for (size_t i = 0; i < n; i++)
        if (got[i])
            pick[picked++] = i;
    if (picked == 0)
        goto done;
    list = id_list(ids, pick, picked);
    rc = over_list(db,
                   side == SYNC_PAIR_SF ? LOCK_PARTNER_SQL("sf_id", "hs_id")
                                        : LOCK_PARTNER_SQL("hs_id", "sf_id"),
                   list, theirs, &r);
    for (int row = 0; rc == ERR_OK && row < PQntuples(r); row++) {
        size_t k = (size_t)atol(PQgetvalue(r, row, 0)) - 1;
        if (k >= picked)
            continue;
        is_linked[pick[k]] = true;
        got[pick[k]] = strcmp(PQgetvalue(r, row, 1), "t") == 0;
    }
    PQclear(r);
    r = NULL;
    free(list);
    list = NULL;
    if (rc != ERR_OK)
        goto failed;
    /* A partner busy: that record's own lock goes at once (see sync_pair_lock_record). */
    picked = 0;
    for (size_t i = 0; i < n; i++)
        if (is_linked[i] && !got[i])
            pick[picked++] = i;
    if (picked > 0) {
        list = id_list(ids, pick, picked);
        if (over_list(db, RELEASE_SQL, list, mine, &r) != ERR_OK)
            log_warn("record locks stay until the end of the batch");
        PQclear(r);
        free(list);
    }
    /* The links of the records held, read once for the batch (link.h); a failure here only
     * leaves them to be read one by one. */
    picked = 0;
    const char **held = xcalloc(n + 1, sizeof(*held));
    for (size_t i = 0; i < n; i++)
        if (got[i])
            held[picked++] = ids[i];
    if (link_prefetch(db, side == SYNC_PAIR_HS, held, picked) != ERR_OK)
        log_warn("record links are read one by one");
    free(held);
done:
    free(pick);
    return ERR_OK;
failed:
    /* What was taken goes with the batch's sync_pair_unlock_all; nothing is reported held. */
    for (size_t i = 0; i < n; i++)
        got[i] = false;
    free(pick);
    return rc;
}

void sync_pair_release_many(PGconn *db, enum sync_pair_side side, const char *const *ids, size_t n)
{
    if (n == 0)
        return;
    char *list = id_list(ids, NULL, n);
    PGresult *r = NULL;
    if (over_list(db, RELEASE_SQL, list, side == SYNC_PAIR_SF ? "sf:" : "hs:", &r) != ERR_OK)
        log_warn("record locks stay until the end of the batch", LOG_I64("records", (long long)n));
    PQclear(r);
    free(list);
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
