/* crm_match.h - HubSpot contacts and companies matched to Salesforce records for
 * HubSpot-to-Salesforce sync (issue 5): which stored ids still exist, and storing the ids found
 * back on the HubSpot records with their record links. */
#ifndef SVC_CRM_MATCH_H
#define SVC_CRM_MATCH_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"
#include "sync.h"

/* records: HubSpot records as batch read returns them ({"id","properties"}), borrowed;
 * sf_ids: {"hs id": "sf id"}. For each record with an sf id: links (kind) the pair unless it is
 * linked already, and writes the id into property where the record does not hold it yet (one
 * batch update of object_type; recorded in the link's hs_written). A permanent HubSpot failure
 * is logged and ignored (the link still finds the record); transient ones and ERR_DB return. */
enum err crm_match_stamp(struct sync_ctx *ctx, PGconn *db, const char *object_type,
                         const char *kind, const char *property, const cJSON *records,
                         const cJSON *sf_ids) WARN_UNUSED;

/* A record's property as a non-empty string, else NULL (borrowed from record). */
const char *crm_match_prop(const cJSON *record, const char *name);

/* Which of the Salesforce ids (the string values of ids, an object or array, borrowed) exist
 * as records of type (one SOQL query): *out = {"<18-char id>": true} (caller deletes). */
enum err crm_match_existing(struct sf_client *sf, const char *type, const cJSON *ids,
                            cJSON **out) WARN_UNUSED;

#endif
