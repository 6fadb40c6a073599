/* chaos.h - the chaos run's driver and checker (`make chaos`, scripts/chaos.sh): random user
 * changes on both sides of the sandbox through its control API, a model of what each record
 * must end as, and the convergence check that compares both sides field by field once dealsync
 * is quiet. Test tool: single-threaded, exits on setup errors. */
#ifndef CHAOS_CHAOS_H
#define CHAOS_CHAOS_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* ---- chaos.c: the sandbox client, the run's shared state, helpers ---- */

/* One call to the sandbox at CHAOS_SANDBOX_URL. Paths under /crm/ carry the HubSpot token.
 * Returns the status (0: no answer); *json (may be NULL) the parsed answer (caller deletes). */
int chaos_call(const char *method, const char *path, const char *body, cJSON **json);
/* The same, failing the run (exit 2) unless the status is want. Returns the parsed answer. */
cJSON *chaos_must(const char *method, const char *path, const char *body, int want);
/* An emulated-API GET retried through injected faults (up to 60 tries); exits when it never
 * succeeds. */
cJSON *chaos_api_get(const char *path);

/* String of an object's member, or NULL. */
const char *chaos_str(const cJSON *o, const char *name);
/* Seeded randomness (CHAOS_SEED): [0, n) and [0, 1). */
int chaos_rand(int n);
double chaos_uniform(void);
/* Seconds since the epoch, with milliseconds. */
double chaos_now(void);
/* Environment number with a default. */
long chaos_env_long(const char *name, long fallback);
/* Path in the run directory (CHAOS_DIR); caller frees. */
char *chaos_path(const char *file);
/* Reads/writes a JSON file; read returns NULL when missing. */
cJSON *chaos_read_json(const char *path);
void chaos_write_json(const char *path, const cJSON *json);

/* ---- The mapped fields, in a canonical form (Salesforce's terms) for comparing both sides ---- */

enum chaos_field {
    CF_NAME,
    CF_STAGE,
    CF_AMOUNT,
    CF_CLOSEDATE,
    CF_TYPE,
    CF_DESCRIPTION,
    CF_OWNER,
    CF_COUNT
};
extern const char *const chaos_field_names[CF_COUNT];   /* "name", "stage", ... */
extern const char *const chaos_sf_fields[CF_COUNT];     /* "Name", "StageName", ... */
extern const char *const chaos_hs_properties[CF_COUNT]; /* "dealname", "dealstage", ... */

/* The Salesforce Type values the run's mappings file maps, and their HubSpot options. */
#define CHAOS_TYPE_COUNT 2
extern const char *const chaos_sf_types[CHAOS_TYPE_COUNT];
extern const char *const chaos_hs_types[CHAOS_TYPE_COUNT];

/* What the run knows of both orgs: users and owners by e-mail, stages, pipelines, contacts.
 * Loaded from CHAOS_DIR/world.json (written by `seed`), pipelines refreshed on demand. */
struct chaos_world {
    cJSON *json;      /* world.json: users {sfid: email}, owners {hsid: email}, contacts
                       * [{email, sf, hs}], stages [names], record_types [ids], accounts [ids] */
    cJSON *pipelines; /* [{id, label, stages:[{id,label}]}] of dealsync's pipelines */
};
void chaos_world_load(struct chaos_world *w);
void chaos_world_clear(struct chaos_world *w);
/* Reads HubSpot's deal pipelines again (dealsync creates them as it goes). */
void chaos_world_refresh_pipelines(struct chaos_world *w);
/* The label of a HubSpot stage id in any pipeline, or NULL (refreshes once when unknown). */
const char *chaos_world_stage_label(struct chaos_world *w, const char *stage_id);
/* The stage id with that label in pipeline, or NULL. */
const char *chaos_world_stage_id(struct chaos_world *w, const char *pipeline, const char *label);

/* Canonical value of field f of a Salesforce record / HubSpot deal (full state as the control
 * API answers it): text, stage name, amount "%.2f", date YYYY-MM-DD, Type value, owner e-mail.
 * NULL when blank. Caller frees. */
char *chaos_sf_value(struct chaos_world *w, const cJSON *opp, enum chaos_field f);
char *chaos_hs_value(struct chaos_world *w, const cJSON *deal, enum chaos_field f);

/* ---- chaos_drive.c / chaos_check.c ---- */
int chaos_seed(void);
int chaos_drive(void);
int chaos_check(void);
int chaos_follow_log(void);

#endif
