/* sync_opportunity.h - Salesforce to HubSpot: opportunities become deals (issue 4). */
#ifndef SVC_SYNC_OPPORTUNITY_H
#define SVC_SYNC_OPPORTUNITY_H

#include <stddef.h>

#include <libpq-fe.h>

#include "queue.h"

/* worker_handle_fn for salesforce/Opportunity records; ctx is a struct sync_ctx. */
void sync_opportunities(void *ctx, PGconn *db, struct queue_record *records, size_t count);

#endif
