/* sync_fanout.h - a worker's independent API calls made at the same time: the calling thread
 * runs one task and each other task runs on a short-lived thread with one of the worker's
 * helper contexts (its own HTTP connection and API clients), so that a batch waits for the
 * slowest of its reads instead of their sum. */
#ifndef SVC_SYNC_FANOUT_H
#define SVC_SYNC_FANOUT_H

#include <stddef.h>

#include "hs_client.h"
#include "sync.h"

/* Tasks run at once, the caller's included. */
#define SYNC_FANOUT_MAX (SYNC_HELPERS + 1)

/* One task: fn(ctx, arg), where ctx is the worker's own context for the first task and a helper
 * context for the others. A task must touch only what its arg gives it (and its ctx); the
 * worker's database connection may be lent to one task at most, and the caller's task must not
 * use it meanwhile. */
typedef void (*sync_fanout_fn)(struct sync_ctx *ctx, void *arg);
struct sync_fanout_task {
    sync_fanout_fn fn; /* NULL: nothing to do */
    void *arg;
};

/* Runs tasks[0] on the calling thread with ctx and tasks[1..n-1] each on a thread of its own
 * with ctx's helper context i-1 (made on first use, kept with ctx), and returns when every one
 * has finished. n is at most SYNC_FANOUT_MAX. A task whose thread cannot be started runs on the
 * calling thread after tasks[0]. ctx must be a worker's context, not a helper's. Called from
 * the thread that owns ctx. */
void sync_fanout_run(struct sync_ctx *ctx, const struct sync_fanout_task *tasks, size_t n);

/* One HubSpot batch read of deals, the task most handlers make at the same time as others: the
 * deals ids (by id_property when not NULL, else by record id) with properties, or when to_type is
 * set their associations to to_type. The caller fills the inputs (borrowed for the run) and
 * clears res. */
struct sync_fanout_deal_read {
    const char *id_property;
    const char *to_type;
    const char *properties;
    const char *const *ids;
    size_t n_ids;
    struct hs_batch_result res; /* out */
    enum err rc;                /* out */
    int hint_ms;                /* out: HubSpot's retry hint after a failure, else 0 */
};

/* sync_fanout_fn for arg, a struct sync_fanout_deal_read: makes its read with ctx's client. */
void sync_fanout_deal_read_run(struct sync_ctx *ctx, void *arg);

#endif
