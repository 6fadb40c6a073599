/* sync_rollup.h - the contacts' roll-ups as records of their own on the queue
 * (CONTACT_ROLLUP_OBJECT, queued by contact_rollup_queue): the opportunities' batches queue
 * their contacts and go on, and a contact's roll-ups are computed and written once for every
 * batch that queued it meanwhile. */
#ifndef SVC_SYNC_ROLLUP_H
#define SVC_SYNC_ROLLUP_H

#include <stddef.h>

#include <libpq-fe.h>

#include "queue.h"

/* worker_handle_fn for hubspot/contact_rollup records (record id: the HubSpot contact id); ctx
 * is a struct sync_ctx. Computes each contact's roll-ups and lifecycle stage from the synced
 * deals as they are now and writes what differs in one batch update (hs_contacts_update_rollups).
 * HubSpot refusing the properties (a read-only name in the configuration, say) is a warning,
 * not retried; a transient failure retries the records. Sets result and detail on every
 * record. */
void sync_contact_rollups(void *ctx, PGconn *db, struct queue_record *records, size_t count);

#endif
