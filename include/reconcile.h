/* reconcile.h - what webhooks and outbound messages missed, found by sweeping: every
 * RECONCILE_INTERVAL_SECONDS, the opportunities (SystemModstamp) and the deals of synced
 * pipelines (hs_lastmodifieddate) changed since a watermark are compared with what dealsync last
 * synced (record_link), and those that differ are queued as background events. Also the
 * automatic retry of records whose events died of a transient cause. */
#ifndef SVC_RECONCILE_H
#define SVC_RECONCILE_H

#include <stdbool.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"
#include "queue.h"

/* Watermark names in poll_watermark. */
#define RECONCILE_SALESFORCE "reconcile_salesforce"
#define RECONCILE_HUBSPOT "reconcile_hubspot"
#define RECONCILE_DEAD_RETRY "dead_retry"

/* worker_tick_fn part: ctx is a struct sync_ctx. Sweeps each side when its turn has come
 * (poll_take_turn: one worker of one process per interval) and requeues transiently dead
 * events every DEAD_RETRY_INTERVAL_SECONDS. Errors are logged; the window is swept again next
 * time. Only while the Sync deals switch is on (the caller checks). */
void reconcile_tick(void *ctx, PGconn *db);

/* Records found by a listing, to queue as background events. All borrowed. */
struct reconcile_batch {
    const char *source;      /* "salesforce" or "hubspot" */
    const char *object_type; /* "Opportunity" or "deal" */
    const cJSON *found;      /* [{"id", "ms"}]: ms = the record's modification time, or null */
    const char *event_type;  /* "import", "reconcile" */
    const char *key_prefix;  /* dedup key = prefix + id (+ ":" + ms when is_key_timed) */
    bool is_key_timed;
    bool is_forced;       /* queue every record, not only those changed since dealsync synced */
    const cJSON *payload; /* each event's payload; NULL = {} */
};

/* Queues the records of b in one statement; unless b->is_forced, a record dealsync has synced
 * since its modification time (record_link, within a few seconds of clock difference) is left
 * out: it costs no API call. *queued is increased by the number of new events. */
enum err reconcile_queue(PGconn *db, const struct reconcile_batch *b,
                         long long *queued) WARN_UNUSED;

/* Makes the next tick sweep both sides at once (after `settings sync-deals on`, so the changes
 * made while the switch was off are carried over). */
enum err reconcile_request_now(PGconn *db) WARN_UNUSED;

#endif
