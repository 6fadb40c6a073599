/* sf_contacts.h - HubSpot deal-contact associations -> Salesforce OpportunityContactRoles, with
 * HubSpot contact -> Salesforce Contact (issue 5). */
#ifndef SVC_SF_CONTACTS_H
#define SVC_SF_CONTACTS_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"
#include "sync.h"
#include "util.h"

/* Makes the opportunity's contact roles follow the deal's contacts (array of HubSpot contact
 * id strings, borrowed): each contact's Salesforce Contact is found by the id stored on the
 * HubSpot contact (cfg->hs_contact_id_property), then the record link, then e-mail, else
 * created (with account_id, may be NULL) and its id written back to HubSpot; a missing role is
 * created; a role mirrored from an association that is gone now is deleted. Appends what it
 * did to detail. Errors: a transient API error or ERR_DB (retry the record); permanent
 * per-contact failures are reported in detail, not returned. */
enum err sf_contacts_sync_roles(struct sync_ctx *ctx, PGconn *db, const char *deal_id,
                                const char *opp_id, const char *account_id,
                                const cJSON *contact_ids, struct buf *detail) WARN_UNUSED;

/* Forgets the mirrored associations of a deal (deal deleted). */
enum err sf_contacts_forget_deal(PGconn *db, const char *deal_id) WARN_UNUSED;

#endif
