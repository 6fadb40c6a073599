/* sync_pair.h - one worker at a time per linked pair (an opportunity and its deal), across every
 * worker of every dealsync process on the database: PostgreSQL session advisory locks on the
 * worker's own connection, taken without waiting. */
#ifndef SVC_SYNC_PAIR_H
#define SVC_SYNC_PAIR_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"

/* Which side an id belongs to: the key of a Salesforce id never meets a HubSpot id's. */
enum sync_pair_side { SYNC_PAIR_SF, SYNC_PAIR_HS };

/* Takes the lock of one record (side, id) for this connection's session, without waiting:
 * *got is false when another session holds it. Taking a lock this session already holds is
 * cheap and succeeds. ERR_DB when the database cannot answer. Thread-safe per connection. */
enum err sync_pair_try_lock(PGconn *db, enum sync_pair_side side, const char *id,
                            bool *got) WARN_UNUSED;

/* Takes the locks of one record and, when record_link links it, of its partner on the other side
 * (the pair is then locked as a whole). *got is false when either is held elsewhere, and then
 * this call holds neither (a deferred record never keeps the other direction waiting);
 * *is_linked says whether a link exists. */
enum err sync_pair_lock_record(PGconn *db, enum sync_pair_side side, const char *id, bool *got,
                               bool *is_linked) WARN_UNUSED;

/* sync_pair_lock_record for n records of one side at once, in three statements rather than
 * three per record: got[i] and is_linked[i] for ids[i], and a record refused holds no lock.
 * On ERR_DB every got[i] is false (what was taken goes with sync_pair_unlock_all). */
enum err sync_pair_lock_records(PGconn *db, enum sync_pair_side side, const char *const *ids,
                                size_t n, bool *got, bool *is_linked) WARN_UNUSED;

/* Releases one lock taken with sync_pair_try_lock (a record given up before the end of its
 * batch: deferred). Locks stack per session: each take needs its own release. A failure is
 * logged (the lock then goes with sync_pair_unlock_all). */
void sync_pair_release(PGconn *db, enum sync_pair_side side, const char *id);

/* sync_pair_release for n records of one side (ids, borrowed) in one statement. */
void sync_pair_release_many(PGconn *db, enum sync_pair_side side, const char *const *ids, size_t n);

/* Waits for the lock named key (an account, a company, a contact about to be created): two
 * workers resolving one new account create one company. Held until sync_pair_unlock(key) or
 * sync_pair_unlock_all; hold one such lock at a time, so no two workers can wait on each other. */
enum err sync_pair_lock_wait(PGconn *db, const char *key) WARN_UNUSED;
void sync_pair_unlock(PGconn *db, const char *key);

/* Releases every lock this session holds (the end of a handler's batch). Safe to call with none
 * held; a failure is logged (the locks then go with the session). */
void sync_pair_unlock_all(PGconn *db);

#endif
