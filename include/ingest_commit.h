/* ingest_commit.h - group commit on the acknowledgement path (issue 13). Webhook requests hand
 * what they store (a HubSpot body for the inbox, Salesforce events for the queue) to the
 * committer, which writes whatever has gathered from concurrent requests in ONE statement (one
 * transaction, one WAL flush) and then answers each request: no request is acknowledged before
 * the commit that holds what it brought. There is no committer thread: while one of its
 * connections is free, the thread of the first waiting request writes the group (its own
 * request and every one waiting with it) and wakes the others; while every connection is busy,
 * requests gather for the next group. When a group fails because of one request's data, each
 * request of the group is written again alone, so each gets its own answer (the bad one
 * ERR_INVALID, the others as if alone); when the database fails, every request of the group
 * gets ERR_DB (503: the sender retries). */
#ifndef SVC_INGEST_COMMIT_H
#define SVC_INGEST_COMMIT_H

#include <stddef.h>

#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"
#include "ingest_split.h"
#include "queue.h"

struct ingest_committer;

/* Readies a new connection of the committer for its statements (ingest_inbox_prepare,
 * ingest_queue_prepare). Its result is only a hint: the connection is used either way. */
typedef enum err (*ingest_prepare_fn)(PGconn *db);

/* A committer writing at most `connections` groups at once, each on its own connection to url:
 * opened and readied with prepare (may be NULL) here, before any request, and again after a
 * failure; a database that cannot be reached now is tried again at the first group (start
 * still succeeds). A group holds at most max_events events (a request larger than that is a
 * group of its own). On ERR_OK *out is the committer. */
enum err ingest_committer_start(const char *url, int connections, int max_events,
                                ingest_prepare_fn prepare,
                                struct ingest_committer **out) WARN_UNUSED;

/* Waits for the groups being written, answers what is still queued with ERR_DB, closes the
 * connections and frees. No request may be calling in (the HTTP server is stopped first).
 * NULL is a no-op. */
void ingest_committer_stop(struct ingest_committer *c);

/* Stores evs (borrowed until it returns) with the events of concurrent requests, and waits for
 * the commit. On ERR_OK *stored is how many of this request's events were new (not duplicates of
 * stored events, nor of an earlier event of the same group). Thread-safe. */
enum err ingest_store(struct ingest_committer *c, const struct queue_event_in *evs, size_t n,
                      size_t *stored) WARN_UNUSED;

/* Stores one request's verified body in the inbox (ingest_split.h; body borrowed until it
 * returns) with the bodies of concurrent requests, and waits for the commit. events is how
 * many events it holds (for the group's size). ERR_OK: the body is durable. Thread-safe. */
enum err ingest_store_body(struct ingest_committer *c, const struct ingest_body *body,
                           size_t events) WARN_UNUSED;

/* Requests waiting for a connection right now, not yet in a group being written (for tests and
 * diagnostics). Thread-safe. */
size_t ingest_committer_waiting(struct ingest_committer *c);

#endif
