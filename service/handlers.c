/* handlers.c - the worker route table. Until the sync handlers land (issues 4 and 5) there are
 * none: every event is dead-lettered with "no handler", which keeps it, with its reason, for
 * an operator to requeue once a handler exists. */
#include "handlers.h"

#include <stddef.h>

static const struct worker_ops ops = {NULL, NULL, NULL, NULL, 0};

const struct worker_ops *handlers_ops(void)
{
    return &ops;
}
