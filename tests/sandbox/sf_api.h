/* sf_api.h - entry points shared between the Salesforce sandbox modules (OAuth, SOQL, REST,
 * Tooling, control API). Private to sf_*.c; all expect the sandbox lock held. */
#ifndef SB_SF_API_H
#define SB_SF_API_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "sandbox.h"
#include "sf_store.h"

/* POST /services/oauth2/token. */
void sf_oauth_token(const struct sb_request *req, struct sb_response *resp);

/* Runs a SOQL query over the REST (tooling false) or Tooling namespace. include_deleted is
 * queryAll. On success *records receives every matching record rendered (caller owns). */
bool sf_soql_run(const char *soql, bool tooling, bool include_deleted, const char *version,
                 cJSON **records, struct sf_error *err);

/* Query answer with paging: first page of records (taken over), cursor for the rest. */
void sf_query_respond(cJSON *records, const char *version, struct sb_response *resp);
/* GET /query/<locator>. */
void sf_query_more(const char *locator, const char *version, struct sb_response *resp);
void sf_query_clear(void);

/* /services/data/vXX.X/tooling/<rest>, authenticated as user. */
void sf_tooling_handle(const struct sb_request *req, const char *rest, const char *version,
                       const char *user, struct sb_response *resp);

/* Describe results (global list or one object) for the REST or Tooling namespace. */
cJSON *sf_describe_global(bool tooling, const char *version);
cJSON *sf_describe(const struct sf_object *obj, const char *version);

/* /services/data/vXX.X/ui-api/... (seg[0] is "ui-api"): picklist values by record type. */
void sf_uiapi_handle(const struct sb_request *req, char **seg, size_t n, const char *version,
                     struct sb_response *resp);
/* Control API: PUT {"stages":[ApiName, ...]} sets a BusinessProcess's stages. */
void sf_process_put_stages(const struct sb_request *req, struct sf_record *process,
                           struct sb_response *resp);

/* Answers an sf_error as a REST error array. */
void sf_respond_error(struct sb_response *resp, const struct sf_error *err);
void sf_respond_errorf(struct sb_response *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
