/* sync_echo.h - webhooks that only report dealsync's own writes back, recognised from the
 * event and record_link alone, before any API call: an import of 10,000 opportunities makes
 * 10,000 deals, and each comes back as a creation and a change per property written. */
#ifndef SVC_SYNC_ECHO_H
#define SVC_SYNC_ECHO_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include <cjson/cJSON.h>

#include "compiler.h"
#include "err.h"
#include "queue.h"

/* Which records of a batch of hubspot deal records (those with is_candidate[i]) have only
 * events known to dealsync already: a deal.creation of a deal dealsync has linked (it created
 * the deal, or synced it after its creation), a deal.propertyChange whose value is the one
 * dealsync last wrote to that property (record_link.hs_written) and whose source is not another
 * user or app, or a deal.associationChange adding the company of the opportunity's account or a
 * contact of its contact roles, as dealsync last synced them. Any other event (another value,
 * another type, an unlinked deal) makes the record a normal sync. For an echo, the contact
 * associations it reports are recorded as mirrored (deal_contact_role), as the deal handler
 * records them after reading them. A few statements for the whole batch, on the caller's
 * connection (inside a sync batch, sync_cache.h, the links read stay remembered). On ERR_OK
 * is_echo[i] is set for each record; on ERR_DB every is_echo[i] is false. */
enum err sync_echo_deals(PGconn *db, const struct queue_record *recs, size_t n,
                         const bool *is_candidate, bool *is_echo) WARN_UNUSED;

/* Whether one of rec's events (a hubspot deal record) reports a change of property by a user or
 * another app (its sourceId is not dealsync's app) after since_ms, the time until which dealsync
 * knew the deal (record_link.hs_modified_ms). The deal's value then is that user's (or later),
 * even when it equals dealsync's own write or the baseline: a user who sets a value and sets it
 * back, read after the second step, shows no change by value. Events that name no source never
 * count. Pure. */
bool sync_echo_user_changed(const struct queue_record *rec, const char *property, int64_t since_ms);

/* Whether a property's history (one list of a deal's "propertiesWithHistory": {value,
 * timestamp, sourceType, sourceId}, as HubSpot answers it) holds a change by a user or another
 * source (not INTEGRATION with sourceId app_id; any INTEGRATION when app_id is NULL) made after
 * both since_ms and dealsync's latest write of own (the value it remembers writing there). The
 * deal's value may then equal dealsync's write and still be a user's: set away and back. Pure. */
bool sync_echo_history_changed(const cJSON *history, const cJSON *own, int64_t since_ms,
                               const char *app_id);

struct sync_ctx;

/* For a pair without a baseline (its link was never saved: the sync that made the deal lost
 * its answer, or was killed before it saved the link): which of the deal's properties names
 * (comma-separated) no one but dealsync ever changed, by their history (one call,
 * propertiesWithHistory): every entry INTEGRATION with the app id (any INTEGRATION without
 * HUBSPOT_APP_ID). Such a value is dealsync's own write, possibly from a read older than a
 * user's Salesforce change, never a HubSpot user's change. *own_only: {"property": true}, for
 * the caller to delete. A deal HubSpot no longer has answers ERR_BUSY: the record is tried again,
 * and that sync follows the delete rules. */
enum err sync_echo_hs_own_only(struct sync_ctx *ctx, const char *deal_id, const char *names,
                               cJSON **own_only) WARN_UNUSED;

/* The Salesforce-to-HubSpot baseline of the fields that sync follows besides the mappings
 * (AccountId, RecordTypeId), carried from old_sf_seen (may be NULL) into sf_seen where sf_seen
 * has none: the HubSpot-to-Salesforce direction saves the mapped fields only, and a change of
 * these it did not write is the other direction's to carry. */
void sync_echo_keep_followed(const cJSON *old_sf_seen, cJSON *sf_seen);

#endif
