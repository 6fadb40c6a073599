/* link.h - the record_link table: which Salesforce record is which HubSpot record, and what
 * dealsync last wrote to and saw on each side. Calls use the caller's connection. */
#ifndef SVC_LINK_H
#define SVC_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"

#define LINK_OPPORTUNITY "opportunity"
#define LINK_ACCOUNT "account"
#define LINK_CONTACT "contact"

/* One linked pair. Owned: release with link_clear. */
struct link {
    char *kind;
    char *sf_id; /* 18-character */
    char *hs_id;
    cJSON *sf_written; /* object, never NULL once loaded */
    cJSON *hs_written;
    cJSON *sf_maybe; /* {"field": true}: its remembered write's outcome is unknown (cut off by a
                      * timeout or a kill); may be NULL (none) when saved */
    cJSON *hs_maybe;
    cJSON *sf_seen;
    cJSON *hs_seen;
    int64_t sf_modified_ms; /* 0 when unknown */
    int64_t hs_modified_ms;
};

/* Finds the link by one side's id. ERR_NOT_FOUND when there is none (*out untouched). Inside a
 * sync batch (sync_cache.h) an opportunity link is read once and remembered until a write here
 * or a pair lock (sync_pair.c) forgets it. */
enum err link_find_by_sf(PGconn *db, const char *kind, const char *sf_id,
                         struct link *out) WARN_UNUSED;
enum err link_find_by_hs(PGconn *db, const char *kind, const char *hs_id,
                         struct link *out) WARN_UNUSED;

/* Inside a sync batch (sync_cache.h): reads the opportunity links of these Salesforce ids (or
 * HubSpot ids when is_hs_side) in one statement, and remembers each, found or not, for the
 * link_find calls that follow. Outside a batch: nothing. */
enum err link_prefetch(PGconn *db, bool is_hs_side, const char *const *ids, size_t n) WARN_UNUSED;

/* Inserts or replaces the link for (kind, sf_id); NULL json fields are stored as {}, and a
 * field of sf_maybe (hs_maybe) only while sf_written (hs_written) holds it. A different
 * Salesforce record already linked to the same hs_id is unlinked first. */
enum err link_save(PGconn *db, const struct link *l) WARN_UNUSED;

/* Remembers, before dealsync writes them, the values it is about to write to one side of a
 * linked pair (merged into hs_written when is_hs_side, else sf_written; no link: nothing), each
 * marked as a write of unknown outcome (hs_maybe, sf_maybe) until the sync that got its answer
 * saves the link without the mark (link_save) or a read of the record settles it
 * (link_settle_written). A write that
 * is carried out but whose answer is lost (a timeout), or whose sync fails later, is then still
 * recognised as dealsync's own when the record reports it back. */
enum err link_note_written(PGconn *db, const char *kind, const char *sf_id, bool is_hs_side,
                           const cJSON *values) WARN_UNUSED;

/* Takes back what link_note_written remembered of a write that was not carried out (refused, or
 * answered with an error): each field of noted goes back to its value in before (the side's
 * written values as read before the note; absent there: forgotten), and to its mark in
 * before_maybe (the side's marks as read before; may be NULL). Otherwise a user who sets that
 * value on that side later would be taken for dealsync's own write. No link: nothing. */
enum err link_unnote_written(PGconn *db, const char *kind, const char *sf_id, bool is_hs_side,
                             const cJSON *noted, const cJSON *before,
                             const cJSON *before_maybe) WARN_UNUSED;

/* Settles writes of unknown outcome of one side (link_note_written) by what the record itself
 * says: the fields of confirmed (an object, may be NULL) were carried out and stay remembered
 * without the mark; those of forgotten (may be NULL) were not dealsync's (a user set the value)
 * and are forgotten. No link: nothing. */
enum err link_settle_written(PGconn *db, const char *kind, const char *sf_id, bool is_hs_side,
                             const cJSON *confirmed, const cJSON *forgotten) WARN_UNUSED;

/* Whether the write remembered of field on one side (l->hs_written when is_hs_side, else
 * l->sf_written) is of unknown outcome (link_note_written). Pure. */
bool link_is_maybe_written(const struct link *l, bool is_hs_side, const char *field);

/* Merges values into the Salesforce side's baseline (sf_seen) of a linked pair: a field whose
 * baseline waits for a later step of the sync (the account, until its company is associated).
 * No link: nothing. */
enum err link_note_sf_seen(PGconn *db, const char *kind, const char *sf_id,
                           const cJSON *values) WARN_UNUSED;

/* Forgets the link (deal deleted in HubSpot, opportunity deleted in Salesforce). Not finding
 * one is not an error. */
enum err link_delete_by_sf(PGconn *db, const char *kind, const char *sf_id) WARN_UNUSED;
enum err link_delete_by_hs(PGconn *db, const char *kind, const char *hs_id) WARN_UNUSED;

/* Tombstones of deals deleted in HubSpot (table deleted_deal): saved when the deal's link is
 * forgotten, dated deleted_ms (when HubSpot deleted it; 0: now); *deleted_ms is 0 when the
 * opportunity has none. */
enum err link_tombstone_save(PGconn *db, const char *sf_id, const char *hs_id,
                             int64_t deleted_ms) WARN_UNUSED;
enum err link_tombstone_find(PGconn *db, const char *sf_id, int64_t *deleted_ms) WARN_UNUSED;
enum err link_tombstone_delete(PGconn *db, const char *sf_id) WARN_UNUSED;

/* Forgets the opportunity links this thread remembers for its batch (sync_cache.h) that hold
 * sf_id or hs_id (NULL: none on that side), found or not; or all of them: called when a pair
 * lock is taken, after which links must be read anew. */
void link_cache_forget(const char *sf_id, const char *hs_id);
void link_cache_forget_all(void);

/* Frees the strings and JSON. NULL is a no-op. */
void link_clear(struct link *l);

#endif
