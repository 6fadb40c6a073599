/* hs_contacts.h - the contacts of opportunity contact roles on the HubSpot side: found by their
 * link, else created (or, when HubSpot has the e-mail, taken by it; one without an e-mail is
 * first looked for by the stored Salesforce contact id); and
 * their lifecycle stage and deal roll-ups written from the synced deals (contact_rollups). Calls
 * use the caller's clients and connection (one per worker). */
#ifndef SVC_HS_CONTACTS_H
#define SVC_HS_CONTACTS_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "config.h"
#include "err.h"
#include "hs_client.h"

/* contacts: array of Salesforce Contact objects {Id, Email, FirstName, LastName} (borrowed,
 * ids unique). Looks each up in record_link, then searches HubSpot contacts by
 * cfg->hs_contact_id_property for those without an e-mail, then creates the rest (e-mail, first and
 * last name, contact id, and the properties create_with gives for its Salesforce id: {"sf contact
 * id": {properties}}, borrowed, may be NULL) in one batch; a create HubSpot refuses because a
 * contact has that e-mail (e-mails are unique there) is that contact, read by e-mail. Links are
 * saved. On ERR_OK *map is {"sf contact id": "hs contact id"} (caller deletes; a contact HubSpot
 * refused to create is missing from it); the HubSpot ids of the contacts it created, or read by
 * e-mail, are appended to created (an array; may be NULL), and what they hold is recorded
 * (contact_rollup_known_save). */
enum err hs_contacts_resolve(struct hs_client *hs, PGconn *db, const struct config *cfg,
                             const cJSON *contacts, const cJSON *create_with, cJSON **map,
                             cJSON *created) WARN_UNUSED;

/* Recomputes the roll-ups and lifecycle stage of each HubSpot contact in hs_ids (array of
 * strings, borrowed) from the synced deals and writes what differs from what dealsync knows the
 * contact holds (contact_rollup_known) in one batch update, recording what it wrote. A contact
 * is read first when nothing is known of it, and before its lifecycle stage moves (a person may
 * have moved it since), unless it is in created (ids hs_contacts_resolve created or read in
 * this batch; may be NULL). On ERR_OK *updated is the number of contacts written. */
enum err hs_contacts_update_rollups(struct hs_client *hs, PGconn *db, const struct config *cfg,
                                    const cJSON *hs_ids, const cJSON *created,
                                    int *updated) WARN_UNUSED;

#endif
