/* pipelines.h - a HubSpot deal pipeline per Salesforce opportunity record type ("Salesforce -
 * <record type id>", or "Salesforce - Default pipeline" when the org has one record type or
 * none) with the stages of that record type's sales process, created when first needed and
 * remembered in pipeline_map/stage_map. Not thread-safe: one struct pipelines per handler call. */
#ifndef SVC_PIPELINES_H
#define SVC_PIPELINES_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"
#include "hs_client.h"
#include "sf_client.h"
#include "sf_describe.h"

/* The master record type's id, which the UI API answers for in an org without record types. */
#define PIPELINES_MASTER_RECORD_TYPE "012000000000000AAA"

/* Per batch: the clients, connection, describe cache and stage_values are borrowed; what is read
 * from the APIs is read at most once per batch. Zero-initialise, set the borrowed fields,
 * release with pipelines_clear. */
struct pipelines {
    struct sf_client *sf;
    struct hs_client *hs;
    PGconn *db;
    struct sf_describe *describe;
    int limit;                 /* most pipelines dealsync syncs */
    const cJSON *stage_values; /* the mappings file's StageName "values": {"SF stage": "HubSpot
                                * stage id or label"}, or NULL */
    cJSON *sf_stages;          /* OpportunityStage rows, by SortOrder */
    cJSON *process_stages;     /* {"record type id": [stage rows of its sales process]} */
    cJSON *refused;            /* {"pipeline key": "why"}: pipelines HubSpot refused this batch */
    cJSON *hs_pipelines;       /* GET /crm/v3/pipelines/deals results */
};
void pipelines_clear(struct pipelines *p);

/* The pipeline and stage map for an opportunity of record type record_type_id ("" = none)
 * currently in stage stage_name (may be NULL): the pipeline is created when missing, and the
 * stage added when not yet mapped. On ERR_OK either *pipeline_id (caller frees) and *stage_map
 * ({"StageName":"hs stage id"}, caller deletes) are set, or both are NULL and *reason (caller
 * frees) says why the record is not synced, with *refusal ERR_OK when it is skipped (past
 * SYNC_PIPELINE_LIMIT) or the error to fail it with (HubSpot refused the pipeline: only that
 * record type's opportunities fail). Other errors (the APIs unreachable) are the batch's. */
enum err pipelines_resolve(struct pipelines *p, const char *record_type_id, const char *stage_name,
                           char **pipeline_id, cJSON **stage_map, char **reason,
                           enum err *refusal) WARN_UNUSED;

/* Self-repair of a stage map row that was never saved (a crash or failed save between
 * creating a stage in HubSpot and saving its map; chaos run): when HubSpot stage hs_stage_id of
 * pipeline pipeline_id (record type key, as in pipeline_map) has no row in stage_map, the
 * Salesforce stage is found by the stage's label in HubSpot (or the id the mappings file
 * names), and the row saved and added to stage_map. ERR_OK also when none matches (a stage a
 * user made in HubSpot stays unmapped); other errors are the APIs' or the database's. */
enum err pipelines_repair_hs_stage(struct pipelines *p, const char *key, const char *pipeline_id,
                                   const char *hs_stage_id, cJSON *stage_map) WARN_UNUSED;

/* The pipeline_map key of a record type: "" (the default pipeline) when the org has one record
 * type or none, else the record type id. Caller frees. */
enum err pipelines_key(struct pipelines *p, const char *record_type_id, char **key) WARN_UNUSED;

/* "Salesforce - <record type id>" or "Salesforce - Default pipeline" for key "". Caller frees.
 * Pure. */
char *pipelines_label(const char *key);

/* The HubSpot stage input for an OpportunityStage row {MasterLabel, SortOrder,
 * DefaultProbability, IsClosed, IsWon}: label, displayOrder and metadata.probability (closed
 * won "1.0", closed lost "0.0", else the default probability in HubSpot's 0.1 steps). Caller
 * deletes. Pure. */
cJSON *pipelines_stage_input(const cJSON *sf_stage);

/* The stage rows of a UI API picklist-values answer for StageName ({"values":[{label, value,
 * attributes:{closed, won, defaultProbability}}]}), in the same shape as OpportunityStage rows
 * (ApiName, MasterLabel, IsActive, IsClosed, IsWon, DefaultProbability, SortOrder = position).
 * Caller deletes. Pure. */
cJSON *pipelines_process_stages(const cJSON *picklist_values);

#endif
