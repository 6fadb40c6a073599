/* sync_echo_sf.h - outbound messages that only report dealsync's own write to an opportunity
 * back, recognised from the message and record_link alone, before any API call: an import of
 * 10,000 deals makes 10,000 opportunities, and each comes back as an outbound message. Also what
 * the messages tell that the opportunity's value alone does not: a field set away and back. */
#ifndef SVC_SYNC_ECHO_SF_H
#define SVC_SYNC_ECHO_SF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"
#include "link.h"
#include "mapping.h"
#include "queue.h"

/* Whether every event of rec (the salesforce Opportunity sf_id, 18 characters) is an outbound
 * message that
 * reports only what dealsync knows the opportunity holds: the opportunity is linked, dealsync
 * knows no contact of the pair (contact roles and the contacts' roll-ups are the opportunity
 * handler's to sync), no deal.deletion event of the linked deal is pending or running (a save
 * after the delete makes a new deal, whatever it changed), and each field the handler acts on
 * (every mapped field, AccountId, RecordTypeId) holds in the message the value dealsync last wrote
 * to it (record_link.sf_written) or else the value both sides agreed on at the last sync (sf_seen).
 * A field the message leaves out is null (Salesforce leaves null fields out; `dealsync register`
 * gives the message every one of these fields); a field dealsync knows nothing of counts only when
 * it is null. Each message must be on its first attempt with no outcome recorded yet (a record back
 * in the queue after a sync that saved its baseline and failed later, or that waited for API
 * budget, is read again). Any other event or value makes the record a normal sync. On ERR_OK
 * *is_echo is set; ERR_DB otherwise. Uses the caller's connection. */
enum err sync_echo_opportunity(PGconn *db, const struct mapping_set *mappings, const char *sf_id,
                               const struct queue_record *rec, bool *is_echo) WARN_UNUSED;

/* For the deal hs_id's deletion in HubSpot at deleted_ms (its webhook's occurredAt; 0 unknown),
 * being handled while the pair's locks are held and before the link to opportunity sf_id (18
 * characters) is forgotten: queues a "resync" event of the opportunity (once per deletion) when
 * one of its outbound messages reports a save after the delete and was finished since, or is
 * still open. Such a save makes a new deal, but its message may have been finished unread as an
 * echo before the deletion reached the queue. ERR_OK also when nothing is queued; ERR_DB
 * otherwise. Uses the caller's connection. */
enum err sync_echo_deal_deleted(PGconn *db, const char *sf_id, const char *hs_id,
                                int64_t deleted_ms) WARN_UNUSED;

/* Whether opportunity opp (a REST read with CreatedDate, CreatedById, LastModifiedDate and
 * LastModifiedById) was never changed after dealsync created it: created and last modified by
 * the integration user user_id in the same second. For a pair without a baseline (dealsync made
 * the opportunity and lost the answer, or was killed, before it saved the link), its values are
 * then dealsync's own write, maybe from a read of the deal older than a HubSpot user's change,
 * never a Salesforce user's change. False when user_id is NULL or a field is missing. Pure. */
bool sync_echo_sf_own_creation(const cJSON *opp, const char *user_id);

/* The outbound messages of the opportunity among rec's events, as [{"at": ms (the message's
 * SystemModstamp), "action": its ActionId, "fields": {...}}], oldest first. Caller deletes. */
cJSON *sync_echo_sf_record_messages(const struct queue_record *rec);

/* The open (pending or running) outbound messages in the queue of the opportunities sf_ids (n,
 * 18 characters): those no worker has handled yet, as {"sf id": [messages as above]}, an
 * opportunity with none left out. One statement. On ERR_OK *out (caller deletes); ERR_DB
 * otherwise. Uses the caller's connection. */
enum err sync_echo_sf_open_messages(PGconn *db, const char *const *sf_ids, size_t n,
                                    cJSON **out) WARN_UNUSED;

/* Whether one of messages (as above) newer than the pair's last sync (l->sf_modified_ms) holds a
 * value of Salesforce field other than the baseline (sf_seen) and dealsync's own write
 * (sf_written), compared in the form a message carries a value in (its text trimmed, line breaks
 * as LF, ids in either length): a Salesforce user changed it since, even when the opportunity now
 * holds the baseline again (set away and back). A message that leaves the field out holds a blank
 * when a message of messages sent by the same action carries the field (the action lists it);
 * else it tells nothing. false when the field has no baseline. Pure. */
bool sync_echo_sf_changed(const cJSON *messages, const struct link *l, const char *field);

/* Settles the writes of unknown outcome (link_note_written: cut off by a timeout or a kill) that
 * the opportunity opp (a read with LastModifiedById) holds the value of, by who saved it last:
 * the integration user user_id (then dealsync's write was carried out, and no one saved the
 * record since) or a user (who saved it after dealsync's write, if that was carried out, or set
 * the value itself: the value is then the user's, and a Salesforce change). Before the read, the
 * opportunity's outbound messages (messages, as sync_echo_sf_changed takes them; may be NULL)
 * are asked: one for a save after the last sync that the integration user made and that holds
 * the value (it carries LastModifiedById) confirms the write, even when a user saved another
 * field of the record since. Both in l and in record_link (link_settle_written). Salesforce keeps
 * no history of a field unless tracking is set up for it, so the user who saved last is what it
 * records. Nothing when user_id is NULL. ERR_DB when the link cannot be saved. Uses the caller's
 * connection. */
enum err sync_echo_sf_settle_maybe(PGconn *db, struct link *l, const cJSON *opp,
                                   const cJSON *messages, const char *user_id) WARN_UNUSED;

#endif
