/* sync_deal.h - HubSpot to Salesforce: deals in synced pipelines become opportunities
 * (issue 5). */
#ifndef SVC_SYNC_DEAL_H
#define SVC_SYNC_DEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "queue.h"

/* worker_handle_fn for hubspot/deal records; ctx is a struct sync_ctx. Reads the deals' current
 * state (one batch read and two association batch reads for the claimed batch), writes the
 * opportunities of deals in synced pipelines with one sObject Collections upsert on
 * cfg->sf_deal_id_field, then accounts and contact roles. Sets result and detail on every
 * record. */
void sync_deals(void *ctx, PGconn *db, struct queue_record *records, size_t count);

/* Which side's value a two-way field keeps when both changed since the last sync: true for
 * HubSpot when its record changed in a later second (Salesforce keeps its modification times to
 * the second, so finer HubSpot times would favour HubSpot unfairly); a tie keeps Salesforce's
 * value, so both directions decide alike. Pure. */
bool sync_deal_hubspot_wins(int64_t hs_modified_ms, int64_t sf_modified_ms);

/* Whether two values name the same thing as either side stores it: equal text, equal numbers
 * ("5000" and 5000.0), equal instants or dates ("2026-03-01" and
 * "2026-03-01T00:00:00.000Z"); null, absent and "" are the same blank. Pure. */
bool sync_deal_same_value(const cJSON *a, const cJSON *b);

/* The baseline rule both directions share, for the fields a sync left pending ({"sf field":
 * "hs property"}, may be NULL): their new baselines sf_seen / hs_seen (changed in place) take
 * back the old ones (null where there was none), so the change stays visible to the direction
 * that carries it. A field whose HubSpot value lost a conflict here ({"sf field": null}) takes
 * back only Salesforce's: the losing value becomes HubSpot's baseline, so the conflict is not
 * decided again, with newer modification times, by a later sync. Pure. */
void sync_deal_keep_baseline(const cJSON *pending, const cJSON *old_sf_seen,
                             const cJSON *old_hs_seen, cJSON *sf_seen, cJSON *hs_seen);

/* Drops from written ({"field": value}, dealsync's own writes) every field whose value in now
 * differs: once a record holds something else, a user setting the old value again is a change,
 * not dealsync's echo. Fields absent from now are kept. Pure. */
void sync_deal_prune_written(cJSON *written, const cJSON *now);

#endif
