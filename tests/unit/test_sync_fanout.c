/* test_sync_fanout.c - a worker's tasks made at the same time: the calling thread runs the first
 * with the worker's context, each other one runs on its own thread with a helper context of the
 * worker (made once, kept), and the run returns when all have finished. */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "config.h"
#include "sync.h"
#include "sync_fanout.h"

/* Every task of a run waits here until all of them have arrived (or a deadline far beyond any
 * scheduling delay passes): tasks made one after the other would never all meet. */
struct meeting {
    pthread_mutex_t lock;
    pthread_cond_t all_in;
    int expected;
    int arrived;
};

struct probe {
    struct meeting *m;
    struct sync_ctx *ctx;
    pthread_t thread;
    bool has_met_all;
};

static void meet(struct sync_ctx *ctx, void *arg)
{
    struct probe *p = arg;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    p->ctx = ctx;
    p->thread = pthread_self();
    pthread_mutex_lock(&p->m->lock);
    p->m->arrived++;
    pthread_cond_broadcast(&p->m->all_in);
    while (p->m->arrived < p->m->expected &&
           pthread_cond_timedwait(&p->m->all_in, &p->m->lock, &deadline) == 0)
        ;
    p->has_met_all = p->m->arrived == p->m->expected;
    pthread_mutex_unlock(&p->m->lock);
}

static void run_three(struct sync_ctx *ctx, struct probe probes[3], bool is_second_skipped)
{
    static struct meeting m;
    pthread_mutex_init(&m.lock, NULL);
    pthread_cond_init(&m.all_in, NULL);
    m.expected = is_second_skipped ? 2 : 3;
    m.arrived = 0;
    for (int i = 0; i < 3; i++)
        probes[i] = (struct probe){.m = &m};
    const struct sync_fanout_task tasks[] = {
        {meet, &probes[0]}, {is_second_skipped ? NULL : meet, &probes[1]}, {meet, &probes[2]}};
    sync_fanout_run(ctx, tasks, 3);
    pthread_cond_destroy(&m.all_in);
    pthread_mutex_destroy(&m.lock);
}

START_TEST(tasks_run_at_once_each_with_its_own_context)
{
    struct config cfg = {0};
    struct sync_ctx *ctx = sync_ctx_new(&cfg, NULL);
    struct probe p[3];
    run_three(ctx, p, false);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(p[i].has_met_all, "task %d did not run at the same time as the others", i);
    ck_assert_ptr_eq(p[0].ctx, ctx);
    ck_assert(pthread_equal(p[0].thread, pthread_self()));
    ck_assert_ptr_eq(p[1].ctx, sync_ctx_helper(ctx, 0));
    ck_assert_ptr_eq(p[2].ctx, sync_ctx_helper(ctx, 1));
    ck_assert(!pthread_equal(p[1].thread, pthread_self()));
    ck_assert(!pthread_equal(p[2].thread, pthread_self()));
    for (int i = 1; i < 3; i++) {
        ck_assert(p[i].ctx->is_helper);
        ck_assert_ptr_eq(p[i].ctx->budget, ctx->budget); /* one budget per worker */
        ck_assert_ptr_ne(p[i].ctx->http, ctx->http);     /* its own connection */
    }
    ck_assert_ptr_ne(p[1].ctx->http, p[2].ctx->http);
    /* The helpers are kept: a second run gets the same ones. */
    struct sync_ctx *first = p[1].ctx, *second = p[2].ctx;
    run_three(ctx, p, false);
    ck_assert_ptr_eq(p[1].ctx, first);
    ck_assert_ptr_eq(p[2].ctx, second);
    sync_ctx_free(ctx);
}
END_TEST

START_TEST(task_without_function_is_skipped)
{
    struct config cfg = {0};
    struct sync_ctx *ctx = sync_ctx_new(&cfg, NULL);
    struct probe p[3];
    run_three(ctx, p, true);
    ck_assert(p[0].has_met_all);
    ck_assert(p[2].has_met_all);
    ck_assert_ptr_null(p[1].ctx);
    ck_assert_ptr_eq(p[2].ctx, sync_ctx_helper(ctx, 1));
    sync_ctx_free(ctx);
}
END_TEST

Suite *suite_sync_fanout(void);
Suite *suite_sync_fanout(void)
{
    Suite *s = suite_create("sync_fanout");
    TCase *tc = tcase_create("fanout");
    tcase_add_test(tc, tasks_run_at_once_each_with_its_own_context);
    tcase_add_test(tc, task_without_function_is_skipped);
    suite_add_tcase(s, tc);
    return s;
}
