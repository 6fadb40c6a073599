/* handlers.h - which worker handler runs for which (source, object type): the route table the
 * worker pool is started with. */
#ifndef SVC_HANDLERS_H
#define SVC_HANDLERS_H

#include "worker.h"

/* The routes of this build. Static storage; never NULL. */
const struct worker_ops *handlers_ops(void);

#endif
