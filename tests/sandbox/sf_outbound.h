/* sf_outbound.h - outbound messages (SOAP notifications) as record-triggered flows send them:
 * queue, batching, latest-state-only, retries with back-off, retention. Private to sf_*.c;
 * every function expects the sandbox lock held, except sb_sf_tick (sandbox.h). */
#ifndef SB_SF_OUTBOUND_H
#define SB_SF_OUTBOUND_H

#include <cjson/cJSON.h>

#include "sf_store.h"

/* A record was created or updated by as_user: queue a notification for every outbound message
 * registered on its object (replacing a queued, not yet sent one for the same record). */
void sf_outbound_changed(const struct sf_object *obj, const struct sf_record *rec,
                         const char *as_user);
/* A record was deleted: nothing is sent for it any more. */
void sf_outbound_deleted(const char *id);
/* Drops the whole queue and the counters. */
void sf_outbound_clear(void);
/* Queue and counters for the control API. Caller owns the result. */
cJSON *sf_outbound_state(void);

#endif
