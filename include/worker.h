/* worker.h - the worker pool: threads that claim records from the queue, hand them to the
 * handler registered for their (source, object type), and finish them: done, retried with
 * exponential backoff and jitter, or dead-lettered. The retry decision is made here, once. */
#ifndef SVC_WORKER_H
#define SVC_WORKER_H

#include <stddef.h>

#include <libpq-fe.h>

#include "compiler.h"
#include "config.h"
#include "err.h"
#include "queue.h"

/* Handles the records of one claimed batch that share a route (same source and object type),
 * reading each record's current state once for all its coalesced events. Sets result (and
 * detail, retry_after_ms, is_skipped) on every record. ctx is the worker's own context; db is
 * the worker's own connection (not in a transaction). */
typedef void (*worker_handle_fn)(void *ctx, PGconn *db, struct queue_record *records, size_t count);

/* Per-worker context: made in the worker thread before its first claim, freed when it stops.
 * Holds what must not be shared between threads (API clients, curl handles). */
typedef void *(*worker_ctx_new_fn)(const struct config *cfg, void *arg);
/* Periodic work (pollers): called by every worker about once a second, before it claims, with
 * its own context and connection. Implementations decide between processes themselves (e.g.
 * poll_take_turn) and must not block for long. */
typedef void (*worker_tick_fn)(void *ctx, PGconn *db);
typedef void (*worker_ctx_free_fn)(void *ctx);
/* Before each claim: how long to wait first, in ms (0: claim now). Records that arrive
 * meanwhile are claimed together: a handler's API calls then serve more records while the API
 * budget, not the worker, sets the pace. Must not block. */
typedef int64_t (*worker_claim_delay_fn)(void *ctx);

struct worker_route {
    const char *source;      /* "salesforce" or "hubspot" */
    const char *object_type; /* "Opportunity", "deal", ...; NULL matches any */
    worker_handle_fn handle;
};

struct worker_ops {
    worker_ctx_new_fn ctx_new; /* may be NULL: ctx is then arg */
    worker_ctx_free_fn ctx_free;
    void *arg;
    const struct worker_route *routes;
    size_t route_count;
    worker_tick_fn tick;               /* may be NULL */
    worker_claim_delay_fn claim_delay; /* may be NULL */
};

struct worker_pool;

/* Starts cfg->worker_threads workers; each opens its own connection, LISTENs for new events and
 * polls every cfg->poll_interval_ms as a fallback. cfg and ops are borrowed and must outlive
 * the pool. id identifies this process in leases ("host:pid"). On ERR_OK *out is the pool. */
enum err worker_pool_start(const struct config *cfg, const struct worker_ops *ops, const char *id,
                           struct worker_pool **out) WARN_UNUSED;

/* Asks every worker to stop, lets each finish the record in hand, releases the records of its
 * batch it did not start, joins and frees. NULL is a no-op. */
void worker_pool_stop(struct worker_pool *pool);

/* Frees the LISTEN notifications queued on db and returns how many there were. Workers call it
 * before each claim, so a worker that is never idle does not accumulate them. */
size_t worker_drain_notifications(PGconn *db);

/* Backoff before attempt number `attempts + 1`: base * 2^(attempts-1), capped, with jitter in
 * [50%, 100%], and never shorter than hint_ms. rnd is in [0, 1). Pure. */
int worker_backoff_ms(int attempts, int base_ms, int max_ms, int hint_ms, double rnd);

#endif
