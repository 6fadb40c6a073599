/* handlers.h - which worker handler runs for which (source, object type): the route table the
 * worker pool is started with. */
#ifndef SVC_HANDLERS_H
#define SVC_HANDLERS_H

#include "sync.h"
#include "worker.h"

/* The routes of this build, with shared (borrowed, must outlive the pool) as the argument of
 * every worker's context. Static storage; call once, before the pool starts. */
const struct worker_ops *handlers_ops(struct sync_shared *shared);

#endif
