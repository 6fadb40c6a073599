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

#endif
