/* sync_deal.h - HubSpot to Salesforce: deals in synced pipelines become opportunities
 * (issue 5). */
#ifndef SVC_SYNC_DEAL_H
#define SVC_SYNC_DEAL_H

#include <stddef.h>

#include <libpq-fe.h>

#include "queue.h"

/* worker_handle_fn for hubspot/deal records; ctx is a struct sync_ctx. */
void sync_deals(void *ctx, PGconn *db, struct queue_record *records, size_t count);

#endif
