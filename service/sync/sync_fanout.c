/* sync_fanout.c - runs a few tasks of one worker at the same time (sync_fanout.h). A helper
 * context is handed to exactly one thread per run and is the worker's again after the join; it
 * shares the worker's API budget (api_budget.h is safe for that) and nothing else. */
#include "sync_fanout.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "log.h"

struct run {
    const struct sync_fanout_task *task;
    struct sync_ctx *ctx;
    pthread_t thread;
    bool is_started;
};

static void *run_main(void *arg)
{
    struct run *r = arg;
    r->task->fn(r->ctx, r->task->arg);
    return NULL;
}

void sync_fanout_run(struct sync_ctx *ctx, const struct sync_fanout_task *tasks, size_t n)
{
    struct run runs[SYNC_FANOUT_MAX] = {0};
    assert(n <= SYNC_FANOUT_MAX && !ctx->is_helper);
    for (size_t i = 1; i < n; i++) {
        if (!tasks[i].fn)
            continue;
        runs[i].task = &tasks[i];
        runs[i].ctx = sync_ctx_helper(ctx, i - 1);
        runs[i].is_started = pthread_create(&runs[i].thread, NULL, run_main, &runs[i]) == 0;
        if (!runs[i].is_started)
            log_warn("cannot start a helper thread: its calls are made one after the other");
    }
    if (n > 0 && tasks[0].fn)
        tasks[0].fn(ctx, tasks[0].arg);
    for (size_t i = 1; i < n; i++) {
        if (!runs[i].task)
            continue;
        if (runs[i].is_started)
            pthread_join(runs[i].thread, NULL);
        else
            run_main(&runs[i]);
    }
}

void sync_fanout_deal_read_run(struct sync_ctx *ctx, void *arg)
{
    struct sync_fanout_deal_read *t = arg;
    if (!t->to_type)
        t->rc = hs_batch_read(ctx->hs, "deals", t->id_property, t->properties, t->ids, t->n_ids,
                              &t->res);
    else
        t->rc = hs_assoc_batch_read(ctx->hs, "deals", t->to_type, t->ids, t->n_ids, &t->res);
    int64_t ms = t->rc == ERR_OK ? 0 : hs_retry_after_ms(ctx->hs);
    t->hint_ms = ms > 0 && ms < 86400000 ? (int)ms : 0;
}
