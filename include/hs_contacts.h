/* hs_contacts.h - the contacts of opportunity contact roles on the HubSpot side: found by the
 * stored Salesforce contact id, then by e-mail, else created; and their lifecycle stage and
 * deal roll-ups written from the synced deals (contact_rollups). Calls use the caller's clients
 * and connection (one per worker). */
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
 * cfg->hs_contact_id_property, then reads them by e-mail, then creates the rest (e-mail, first
 * and last name, contact id) in one batch; links are saved. On ERR_OK *map is
 * {"sf contact id": "hs contact id"} (caller deletes; a contact HubSpot refused to create is
 * missing from it) and *created the number created. */
enum err hs_contacts_resolve(struct hs_client *hs, PGconn *db, const struct config *cfg,
                             const cJSON *contacts, cJSON **map, int *created) WARN_UNUSED;

/* Recomputes the roll-ups and lifecycle stage of each HubSpot contact in hs_ids (array of
 * strings, borrowed) from the synced deals and writes what differs in one batch update. On
 * ERR_OK *updated is the number of contacts written. */
enum err hs_contacts_update_rollups(struct hs_client *hs, PGconn *db, const struct config *cfg,
                                    const cJSON *hs_ids, int *updated) WARN_UNUSED;

#endif
