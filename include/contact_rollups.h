/* contact_rollups.h - the deals dealsync synced and the contacts of their contact roles
 * (tables synced_deal, synced_deal_contact), and what follows from them on each HubSpot contact:
 * the five deal roll-ups and the lifecycle stage, which only moves forward. DB calls use the
 * caller's connection; the pure helpers are thread-safe. */
#ifndef SVC_CONTACT_ROLLUPS_H
#define SVC_CONTACT_ROLLUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "config.h"
#include "err.h"

/* One synced opportunity as dealsync last saw it. Strings borrowed for the call. */
struct synced_deal {
    const char *sf_opportunity_id;
    const char *hs_deal_id;
    int64_t created_ms;
    int64_t close_ms;   /* -1 when the opportunity has no close date */
    const char *amount; /* decimal text; NULL when blank */
    bool is_closed;
    bool is_won;
};

/* One contact role's contact on both sides. Borrowed. */
struct synced_contact {
    const char *sf_contact_id;
    const char *hs_contact_id;
};

/* {"sf contact id": "hs contact id"} stored for the opportunity (empty object when none).
 * Caller deletes. */
enum err synced_deal_contacts(PGconn *db, const char *sf_opportunity_id, cJSON **map) WARN_UNUSED;
/* The same, only when they were stored with the deal hs_deal_id (NULL: any deal); else empty. */
enum err synced_deal_contacts_with(PGconn *db, const char *sf_opportunity_id,
                                   const char *hs_deal_id, cJSON **map) WARN_UNUSED;

/* For each row of rows (OpportunityContactRole rows: OpportunityId, ContactId, IsDeleted), whether
 * what dealsync last synced for its opportunity already reflects it: the opportunity was synced,
 * and a live role's contact is among its stored contacts, a deleted role's contact is not.
 * reflected gets one flag per row. */
enum err synced_roles_reflected(PGconn *db, const cJSON *rows, bool *reflected) WARN_UNUSED;

/* Replaces the stored deal and its contacts (one transaction). */
enum err synced_deal_save(PGconn *db, const struct synced_deal *d,
                          const struct synced_contact *contacts, size_t n) WARN_UNUSED;

/* Forgets the opportunity and its contacts; not finding it is not an error. */
enum err synced_deal_forget(PGconn *db, const char *sf_opportunity_id) WARN_UNUSED;
/* Marks the synced deal of a deleted opportunity: roll-ups no longer count it, but its contacts
 * stay known (synced_deal_contacts) until synced_deal_forget, after the roll-ups were written. */
enum err synced_deal_mark_deleted(PGconn *db, const char *sf_opportunity_id) WARN_UNUSED;

/* A contact's roll-ups over the synced deals it is a contact role of. Owned: clear with
 * contact_rollup_clear. */
struct contact_rollup {
    long long num_deals;
    int64_t first_created_ms; /* -1 when no deal */
    int64_t recent_close_ms;  /* close date of the latest-closing closed-won deal; -1 when none */
    char *recent_amount;      /* amount of the most recently CREATED deal; NULL when blank */
    char *total_revenue;      /* sum of closed-won amounts, "0" when none */
    bool has_open;
    bool has_won;
};

enum err contact_rollup_load(PGconn *db, const char *hs_contact_id,
                             struct contact_rollup *out) WARN_UNUSED;
/* The same roll-ups over the given deals (not deleted ones; n may be 0), as contact_rollup_load
 * computes them from the tables, for a contact no stored deal counts yet (one dealsync is about
 * to create). Pure. */
void contact_rollup_of(const struct synced_deal *deals, size_t n, struct contact_rollup *out);
/* NULL is a no-op. */
void contact_rollup_clear(struct contact_rollup *r);

/* HubSpot properties to read on a contact before contact_rollup_changes: comma list, caller
 * frees. Pure. */
char *contact_rollup_property_list(const struct config *cfg);

/* The changes to write on a contact whose current properties are `current` (may be NULL): each
 * roll-up property that differs, and lifecycle stage when it moves forward ("customer" once a
 * deal is closed won, else "opportunity" while one is open) and cfg->lifecycle_stage_sync is on
 * (HubSpot's "automatic lifecycle stage transitions"). Empty object when nothing
 * changes. Caller deletes. Pure. */
cJSON *contact_rollup_changes(const struct config *cfg, const struct contact_rollup *r,
                              const cJSON *current);

/* What dealsync knows HubSpot holds in each contact's roll-up properties and lifecycle stage
 * (table contact_rollup_known): what it last wrote there, or read or saw created there. */

/* Waits for the roll-up locks of the contacts hs_ids (a JSON array of ids), taken in a fixed
 * order (no deadlock between workers): one worker at a time computes, writes and records a
 * contact's roll-ups, so what is recorded is what HubSpot was last sent. Session locks on db:
 * release with contact_rollup_unlock (or sync_pair_unlock_all). */
enum err contact_rollup_lock(PGconn *db, const cJSON *hs_ids) WARN_UNUSED;
void contact_rollup_unlock(PGconn *db, const cJSON *hs_ids);

/* The queue's object type of a contact's roll-ups (source "hubspot", record id the HubSpot
 * contact id): records dealsync queues itself, handled by sync_contact_rollups. */
#define CONTACT_ROLLUP_OBJECT "contact_rollup"

/* Queues the roll-ups of the contacts hs_ids (array of HubSpot ids, borrowed; repeats once) in
 * one statement: one event per contact, which sync_contact_rollups handles once the caller's
 * synced deals are committed. A contact's events that gather while one worker holds it, or
 * before any claims it, are handled together: one aggregate and one write for a burst of
 * batches, not one per batch. created (may be NULL): the contacts the caller created or read by
 * e-mail just now (hs_contacts_resolve), whose lifecycle stage needs no read before it moves. */
enum err contact_rollup_queue(PGconn *db, const cJSON *hs_ids, const cJSON *created) WARN_UNUSED;

/* {"hs contact id": {properties}} for the ids of hs_ids that have a row. Caller deletes. */
enum err contact_rollup_known_load(PGconn *db, const cJSON *hs_ids, cJSON **out) WARN_UNUSED;

/* Records by_id ({"hs contact id": {properties}}): is_observed, the properties as read from
 * HubSpot or created there (they replace what was known); else properties written (merged into
 * what was known). */
enum err contact_rollup_known_save(PGconn *db, const cJSON *by_id, bool is_observed) WARN_UNUSED;

/* True when `to` is later than `from` in HubSpot's lifecycle order (a blank or unknown `from`
 * is before everything). Pure. */
bool lifecycle_is_forward(const char *from, const char *to);

#endif
