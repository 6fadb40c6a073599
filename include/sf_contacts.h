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

/* One deal whose contacts become its opportunity's roles. */
struct sf_contacts_deal {
    const char *deal_id;
    const char *opp_id;
    const char *account_id;   /* for contacts created in Salesforce; may be NULL */
    const cJSON *contact_ids; /* HubSpot contact id strings associated with the deal */
    struct buf *detail;       /* what was done is appended */
    enum err result;          /* set: ERR_OK, or this deal's failure */
};

/* Makes each opportunity's contact roles follow its deal's contacts, for a whole batch in a few
 * calls (one HubSpot read of every contact, one role query, one create, one delete): each
 * contact's Salesforce Contact is found by the id stored on the HubSpot contact
 * (cfg->hs_contact_id_property), then the record link, then e-mail, else created (with the
 * deal's account_id) and its id written back to HubSpot; a missing role is created (noted as
 * mirrored before the call, so a create whose answer is lost is still known as dealsync's own);
 * a role mirrored from an association that is gone now is deleted. Sets each deal's result: a
 * transient API error or ERR_DB (retry the record); permanent per-contact failures are
 * reported in detail, not returned. Returns the failure common to all deals (ERR_OK when
 * each deal has its own result). Borrowed arrays; n may be 0. */
enum err sf_contacts_sync_roles(struct sync_ctx *ctx, PGconn *db, struct sf_contacts_deal *deals,
                                size_t n) WARN_UNUSED;

/* The deal's associations that HubSpot-to-Salesforce mirrored as contact roles and still
 * mirrors: {"hs contact id": "003…"} in *out, and in *noted those whose role it was creating
 * when it last synced the deal, with no answer since (a lost answer, a kill: the role may
 * exist); in *noted_at (when not NULL) {"hs contact id": ms} when each of those was noted.
 * Caller deletes them. The other direction reads both (table deal_contact_role) so a role
 * dealsync made from an association never travels back as a new association once a user
 * removed that one. */
enum err sf_contacts_mirrored(PGconn *db, const char *deal_id, cJSON **out, cJSON **noted,
                              cJSON **noted_at) WARN_UNUSED;
/* The association of contact hs_contact_id with deal_id is no longer mirrored: dealsync itself
 * removed it, for a contact role that went in Salesforce. Kept, the row made that role, added
 * again in Salesforce before the other direction saw the removal, look like a contact a user
 * removed from the deal in HubSpot: it was not associated again, and the other direction then
 * deleted the role (chaos run: a contact absent on both sides). */
enum err sf_contacts_forget_mirrored(PGconn *db, const char *deal_id,
                                     const char *hs_contact_id) WARN_UNUSED;

/* Forgets the mirrored associations of a deal (deal deleted). */
enum err sf_contacts_forget_deal(PGconn *db, const char *deal_id) WARN_UNUSED;

#endif
