/* sf_setup.h - the Salesforce side of HubSpot-to-Salesforce set-up: the external-id field on
 * Opportunity that carries the deal id (issue 5). Its state is kept in sync_setting, so every
 * worker and every process sees the same answer. */
#ifndef SVC_SF_SETUP_H
#define SVC_SF_SETUP_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"
#include "sf_client.h"

/* sync_setting name: "ready", or the reason opportunities cannot be written yet. */
#define SF_SETUP_DEAL_FIELD_SETTING "sf_deal_id_field"

/* Makes sure Opportunity.<field> (e.g. HubSpot_Deal_Id__c) exists as a unique external id:
 * looks it up with the Tooling API and, when missing, creates it (Tooling CustomField) if the
 * integration user has Modify All Data or Modify Metadata (UserPermissionAccess). Records the
 * outcome in sync_setting and the metric dealsync_sf_deal_field_ready. On ERR_OK *is_ready says
 * whether the field exists and *reason (caller frees; NULL when ready) why not. Errors: the
 * client's (transient ones mean "try again later") or ERR_DB. Not thread-safe per client. */
enum err sf_setup_deal_field(struct sf_client *sf, PGconn *db, const char *field, bool *is_ready,
                             char **reason) WARN_UNUSED;

/* Reads the recorded state. On ERR_OK *is_ready, and *reason (caller frees; NULL when ready,
 * "not checked yet" when setup never ran). */
enum err sf_setup_deal_field_state(PGconn *db, bool *is_ready, char **reason) WARN_UNUSED;

/* Whether field is a custom field API name ("Name__c", letters, digits, single underscores).
 * Pure. */
bool sf_setup_is_custom_field(const char *field);

#endif
