/* pipelines.h - a HubSpot deal pipeline per Salesforce opportunity record type ("Salesforce -
 * <record type id>", or "Salesforce - Default pipeline" without record types) with a stage per
 * active opportunity stage, created when first needed and remembered in pipeline_map/stage_map.
 * Not thread-safe: one struct pipelines per handler call. */
#ifndef SVC_PIPELINES_H
#define SVC_PIPELINES_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"
#include "hs_client.h"
#include "sf_client.h"

/* Per batch: the clients and connection are borrowed; the Salesforce stages and HubSpot
 * pipelines are read at most once, when first needed. Zero-initialise, set the borrowed
 * fields, release with pipelines_clear. */
struct pipelines {
    struct sf_client *sf;
    struct hs_client *hs;
    PGconn *db;
    int limit;           /* most pipelines dealsync syncs */
    cJSON *sf_stages;    /* OpportunityStage rows, by SortOrder */
    cJSON *hs_pipelines; /* GET /crm/v3/pipelines/deals results */
};
void pipelines_clear(struct pipelines *p);

/* The pipeline and stage map for an opportunity of record type record_type_id ("" = none)
 * currently in stage stage_name (may be NULL): the pipeline is created when missing, and the
 * stage added when not yet mapped. On ERR_OK either *pipeline_id (caller frees) and *stage_map
 * ({"StageName":"hs stage id"}, caller deletes) are set, or, past the pipeline limit, both are
 * NULL and *reason (caller frees) says why the record is not synced. */
enum err pipelines_resolve(struct pipelines *p, const char *record_type_id, const char *stage_name,
                           char **pipeline_id, cJSON **stage_map, char **reason) WARN_UNUSED;

/* "Salesforce - <record type id>" or "Salesforce - Default pipeline". Caller frees. Pure. */
char *pipelines_label(const char *record_type_id);

/* The HubSpot stage input for an OpportunityStage row {MasterLabel, SortOrder,
 * DefaultProbability, IsClosed, IsWon}: label, displayOrder and metadata.probability (closed
 * won "1.0", closed lost "0.0", else the default probability in HubSpot's 0.1 steps). Caller
 * deletes. Pure. */
cJSON *pipelines_stage_input(const cJSON *sf_stage);

#endif
