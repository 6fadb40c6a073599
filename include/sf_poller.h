/* sf_poller.h - what Salesforce sends no outbound message for, found by polling: deleted
 * opportunities (getDeleted) and changed or deleted contact roles (queryAll on SystemModstamp).
 * Each finding becomes a synthetic Opportunity event pushed into the queue, so it goes through
 * the same per-record lease, ordering and handler as an outbound message. */
#ifndef SVC_SF_POLLER_H
#define SVC_SF_POLLER_H

#include <libpq-fe.h>

/* worker_tick_fn: ctx is a struct sync_ctx. Takes each poller's turn (poll_watermark), so one
 * worker of one process polls per interval; errors are logged and the window is polled again
 * next time. */
void sf_poller_tick(void *ctx, PGconn *db);

/* Poller names in poll_watermark. */
#define SF_POLLER_DELETED "salesforce_opportunity_deleted"
#define SF_POLLER_CONTACT_ROLES "salesforce_contact_roles"

#endif
