/* e2e.h - end-to-end harness: the sandbox (Salesforce and HubSpot) and a real `dealsync serve`
 * with workers, wired to each other exactly as an operator would wire the real CRMs:
 * dealsync's APIs point at the sandbox, the sandbox's outbound message (Opportunity) and
 * HubSpot webhook subscriptions point at dealsync, and the Sync deals switch is on. */
#ifndef SVC_E2E_H
#define SVC_E2E_H

#include <stdbool.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "sbtest.h"
#include "svc.h"

/* The fields the registered outbound message sends (what an operator would pick). */
/* The Salesforce webhook token dealsync runs with, in the outbound message's endpoint as
 * `dealsync register` puts it. */
#define E2E_WEBHOOK_TOKEN "e2e-webhook-token"

/* The sandbox's HubSpot app and developer key (its defaults), for the webhooks API. */
#define SB_HS_DEV_KEY "sandbox-developer-key"
#define SB_HS_APP_ID "1160452"

#define E2E_OM_FIELDS                                                                              \
    "Id", "Name", "StageName", "Amount", "CloseDate", "OwnerId", "AccountId", "RecordTypeId",      \
        "Type", "Description", "LastModifiedDate", "SystemModstamp", "LastModifiedById"

struct e2e {
    struct sbtest sb; /* the sandbox: sb.base is its URL */
    struct svc svc;   /* dealsync: svc.base, svc.db (the test's own connection) */
    char *org_id;
    char *sf_token; /* an API access token of the integration user, for direct REST calls */
    char **env;     /* dealsync's environment (NULL-ended), for its other commands */
    int command_count;
};

/* Starts both and wires them. extra_env ("NAME=value", NULL-ended, may be NULL) is added to
 * dealsync's environment after the defaults (so it can override them); sandbox_args are extra
 * sandbox flags (NULL-ended, may be NULL), e.g. "--set", "sf_om_skip_integration_user=1". With
 * sync_deals false the switch stays off. Fails the test when anything does not come up. */
void e2e_start(struct e2e *e, const char *name, const char *const *extra_env,
               const char *const *sandbox_args, bool sync_deals);
/* dealsync's environment wired to this sandbox (as serve gets it; with DATABASE_URL and
 * PUBLIC_BASE_URL of the running dealsync once started), then extra ("NAME=value", later ones
 * win as the process sees them). NULL-ended; free with e2e_env_free. */
char **e2e_dealsync_env(const struct e2e *e, const char *const *extra);
void e2e_env_free(char **env);

/* The same, calling prepare(e) (may be NULL) once the sandbox is up and before dealsync
 * starts: for the Salesforce fields and HubSpot properties a mappings file names, which
 * dealsync checks at start. */
void e2e_start_prepared(struct e2e *e, const char *name, const char *const *extra_env,
                        const char *const *sandbox_args, bool sync_deals,
                        void (*prepare)(struct e2e *e));
/* Runs `dealsync worker` against the same sandbox and database with MAPPINGS_FILE=mappings, as an
 * operator starting it with that file would, and returns its exit status once it stops (it is
 * stopped after 20 s if it keeps running). *log receives what it logged (caller frees). */
int e2e_run_worker_with_mappings(struct e2e *e, const char *mappings, char **log);
/* A second dealsync process (`dealsync worker`, workers only) on the same database and sandbox,
 * with the same wiring plus extra_env, as a replica would run. Stop it with itest_proc_stop. */
struct itest_proc *e2e_start_worker(struct e2e *e, const char *name, const char *const *extra_env);
/* Stops dealsync (asserting a clean exit) and the sandbox. */
void e2e_stop(struct e2e *e);

/* One call to the sandbox (control API or emulated API with the right credentials for paths
 * under /services/data, /crm/, /webhooks/). body may be NULL. Returns the status; *json (may be
 * NULL) receives the parsed answer (caller deletes). */
int e2e_sb(struct e2e *e, const char *method, const char *path, const char *body, cJSON **json);

/* Waits until everything is quiet: no open event in dealsync's queue, no queued outbound
 * notification and no pending webhook in the sandbox, twice in a row. false after
 * deadline_ms. */
bool e2e_wait_idle(struct e2e *e, int deadline_ms);

/* The sandbox request log's last id (a mark), and how many requests since a mark matched:
 * system ("salesforce", "hubspot"; NULL = any), direction ("in" = API calls dealsync made,
 * "out" = deliveries; NULL = any), method (NULL = any) and path prefix (NULL = any). */
long long e2e_mark(struct e2e *e);
int e2e_count(struct e2e *e, long long since, const char *system, const char *direction,
              const char *method, const char *path_prefix);

/* The sandbox request log's entries since mark ({"system", "direction", "method", "path",
 * "query", "status", "ts", …}, oldest first). Caller deletes. */
cJSON *e2e_requests(struct e2e *e, long long since);

/* Writes "<label>: salesforce N calls, hubspot M calls" for the API calls dealsync made since
 * mark, to stdout and to TEST_TMPDIR/api-calls.txt (for the README's table). */
void e2e_report_calls(struct e2e *e, const char *label, long long since);

/* Runs `dealsync <args>` (args NULL-ended) with dealsync's environment, waits up to 120 s and
 * returns its exit status; *output (may be NULL) receives what it wrote to stdout and stderr
 * (caller frees). */
int e2e_dealsync(struct e2e *e, const char *const *args, char **output);
/* Starts `dealsync <args>` without waiting; its output goes to *log_path (caller frees). Stop
 * it with itest_proc_stop. */
struct itest_proc *e2e_dealsync_start(struct e2e *e, const char *const *args, char **log_path);

/* Rows of the queue in a given status, and the newest outcome detail of a record. */
long long e2e_events(struct e2e *e, const char *status);
char *e2e_last_detail(struct e2e *e, const char *record_id);

/* ---- Records as a user sees them (through the control API: not counted as API calls) ---- */

/* Creates a Salesforce record (json: its fields); returns its Id (caller frees). Asserts 201. */
char *e2e_sf_create(struct e2e *e, const char *type, const char *json);
/* Creates n opportunities named "<label> <i>", each with a contact role for every contact of
 * contacts (NULL-ended), as a data load does: loads of 200 opportunities with their roles, each
 * written whole before its outbound messages leave (the sandbox's control load). Returns the
 * opportunity ids (caller frees each and the array). */
char **e2e_sf_load_opportunities(struct e2e *e, int n, const char *label,
                                 const char *const *contacts);
/* Id of the first live Salesforce record of type whose field has value (caller frees), or NULL. */
char *e2e_sf_find(struct e2e *e, const char *type, const char *field, const char *value);
/* Changes a Salesforce record as a user would (fires its outbound message). Asserts 200. */
void e2e_sf_update(struct e2e *e, const char *type, const char *id, const char *json);
/* The Salesforce record (caller deletes), or NULL when there is none. */
cJSON *e2e_sf_get(struct e2e *e, const char *type, const char *id);
/* Changes a HubSpot record's properties (props_json: an object) as a user would. */
void e2e_hs_update(struct e2e *e, const char *type, const char *id, const char *props_json);
/* Subscribes the app to HubSpot's event_type webhooks (of property, for a propertyChange; NULL
 * otherwise), as `dealsync register` does for the mapped properties. */
void e2e_hs_subscribe(struct e2e *e, const char *event_type, const char *property);
/* The HubSpot record (caller deletes), or NULL when there is none. */
cJSON *e2e_hs_get(struct e2e *e, const char *type, const char *id);
/* Associates (method "PUT", with association type type_id) or dissociates ("DELETE", type_id
 * 0: every type) the HubSpot deal and the record to_id of to_type, as a user would (through the
 * control API, which fires the webhooks). Asserts the sandbox accepted it. */
void e2e_hs_associate(struct e2e *e, const char *method, const char *deal_id, const char *to_type,
                      const char *to_id, int type_id);
/* How many contacts the HubSpot deal is associated with (read through the control API). */
int e2e_deal_contacts(struct e2e *e, const char *deal_id);
/* The deal's primary company (association type 5) id, written into out (size n); "" when it
 * has none. Returns out. */
const char *e2e_primary_company(struct e2e *e, const char *deal_id, char *out, size_t n);
/* The HubSpot deal id dealsync linked to opportunity opp (caller frees), or NULL. */
char *e2e_deal_id_of(struct e2e *e, const char *opp);
/* A HubSpot record's property as text ("" when unset). Borrowed from obj. */
const char *e2e_prop(const cJSON *obj, const char *name);
/* A Salesforce field as text: numbers as HubSpot writes them ("200", "12.5"), "" when null.
 * Written into out (size n). */
const char *e2e_sf_text(const cJSON *rec, const char *field, char *out, size_t n);
/* Merges settings into the sandbox (PUT /_sandbox/settings, settings_json an object). */
void e2e_sb_settings(struct e2e *e, const char *settings_json);

#endif
