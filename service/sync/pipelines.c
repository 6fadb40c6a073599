/* pipelines.c - record type -> HubSpot deal pipeline, Salesforce stage -> HubSpot stage. A
 * pipeline gets the stages of its record type's sales process (the UI API's StageName values for
 * that record type), or the HubSpot stage the mappings file names. The maps live in Postgres;
 * HubSpot is searched by label before anything is created, so a crash between creating a
 * pipeline and saving its map, or two workers racing, never leaves two. */
#include "pipelines.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sync_pair.h"
#include "sync_state.h"
#include "util.h"

void pipelines_clear(struct pipelines *p)
{
    if (!p)
        return;
    cJSON_Delete(p->sf_stages);
    cJSON_Delete(p->process_stages);
    cJSON_Delete(p->refused);
    cJSON_Delete(p->hs_pipelines);
    p->sf_stages = NULL;
    p->process_stages = NULL;
    p->refused = NULL;
    p->hs_pipelines = NULL;
}

char *pipelines_label(const char *key)
{
    if (!key || !key[0])
        return xstrdup("Salesforce - Default pipeline");
    return xasprintf("Salesforce - %s", key);
}

static const char *str(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

cJSON *pipelines_stage_input(const cJSON *sf_stage)
{
    const cJSON *prob = cJSON_GetObjectItemCaseSensitive(sf_stage, "DefaultProbability");
    const cJSON *order = cJSON_GetObjectItemCaseSensitive(sf_stage, "SortOrder");
    double p = cJSON_IsNumber(prob) ? prob->valuedouble / 100.0 : 0.0;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sf_stage, "IsWon")))
        p = 1.0;
    else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sf_stage, "IsClosed")))
        p = 0.0;
    /* HubSpot takes 0.0-1.0 in steps of 0.1 (reference hubspot.md 4.4). */
    p = round(p * 10.0) / 10.0;
    if (p < 0.0)
        p = 0.0;
    if (p > 1.0)
        p = 1.0;
    char text[8];
    snprintf(text, sizeof(text), "%.1f", p);
    const char *label = str(sf_stage, "MasterLabel");
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "label", label ? label : str(sf_stage, "ApiName"));
    cJSON_AddNumberToObject(in, "displayOrder", cJSON_IsNumber(order) ? order->valuedouble : 0);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(in, "metadata"), "probability", text);
    return in;
}

cJSON *pipelines_process_stages(const cJSON *picklist_values)
{
    cJSON *rows = cJSON_CreateArray();
    int order = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(picklist_values, "values"))
    {
        const char *value = str(v, "value");
        if (!value)
            continue;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(v, "attributes");
        const cJSON *prob = cJSON_GetObjectItemCaseSensitive(a, "defaultProbability");
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "ApiName", value);
        cJSON_AddStringToObject(row, "MasterLabel", str(v, "label") ? str(v, "label") : value);
        cJSON_AddTrueToObject(row, "IsActive");
        cJSON_AddBoolToObject(row, "IsClosed",
                              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "closed")));
        cJSON_AddBoolToObject(row, "IsWon",
                              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "won")));
        cJSON_AddNumberToObject(row, "DefaultProbability",
                                cJSON_IsNumber(prob) ? prob->valuedouble : 0);
        cJSON_AddNumberToObject(row, "SortOrder", ++order);
        cJSON_AddItemToArray(rows, row);
    }
    return rows;
}

/* Every OpportunityStage: the fallback for a StageName outside the record type's sales process
 * (the API lets one be set). */
static enum err load_sf_stages(struct pipelines *p)
{
    if (p->sf_stages)
        return ERR_OK;
    return sf_query(p->sf,
                    "SELECT ApiName, MasterLabel, IsActive, IsClosed, IsWon, DefaultProbability,"
                    " SortOrder FROM OpportunityStage ORDER BY SortOrder",
                    &p->sf_stages);
}

/* The stage rows of the sales process of record type rt ("" = the master record type). */
static enum err process_stages(struct pipelines *p, const char *rt, const cJSON **out)
{
    const char *id = rt[0] ? rt : PIPELINES_MASTER_RECORD_TYPE;
    if (!p->process_stages)
        p->process_stages = cJSON_CreateObject();
    const cJSON *have = cJSON_GetObjectItemCaseSensitive(p->process_stages, id);
    if (!have) {
        cJSON *values = NULL;
        enum err rc = sf_picklist_values(p->sf, "Opportunity", id, "StageName", &values);
        if (rc != ERR_OK)
            return rc;
        cJSON *rows = pipelines_process_stages(values);
        cJSON_Delete(values);
        cJSON_AddItemToObject(p->process_stages, id, rows);
        have = rows;
    }
    *out = have;
    return ERR_OK;
}

enum err pipelines_key(struct pipelines *p, const char *record_type_id, char **key)
{
    const cJSON *d = NULL;
    if (!record_type_id || !record_type_id[0]) {
        *key = xstrdup("");
        return ERR_OK;
    }
    enum err rc = sf_describe_opportunity(p->describe, p->sf, &d);
    if (rc != ERR_OK)
        return rc;
    /* HubSpot names the pipeline of an org with a single record type "Default pipeline". */
    *key = xstrdup(sf_describe_record_type_count(d) <= 1 ? "" : record_type_id);
    return ERR_OK;
}

static enum err load_hs_pipelines(struct pipelines *p, bool is_fresh)
{
    if (p->hs_pipelines && !is_fresh)
        return ERR_OK;
    cJSON_Delete(p->hs_pipelines);
    p->hs_pipelines = NULL;
    return hs_pipelines_list(p->hs, "deals", &p->hs_pipelines);
}

static const cJSON *find_by_label(const cJSON *list, const char *label)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        const char *l = str(it, "label");
        if (l && strcmp(l, label) == 0 && !cJSON_IsTrue(cJSON_GetObjectItem(it, "archived")))
            return it;
    }
    return NULL;
}

static const cJSON *find_by_id(const cJSON *list, const char *id)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        const char *i = str(it, "id");
        if (i && strcmp(i, id) == 0 && !cJSON_IsTrue(cJSON_GetObjectItem(it, "archived")))
            return it;
    }
    return NULL;
}

static const cJSON *sf_stage_named(const cJSON *stages, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, stages)
    {
        const char *api = str(it, "ApiName");
        const char *label = str(it, "MasterLabel");
        if ((api && strcmp(api, name) == 0) || (!api && label && strcmp(label, name) == 0))
            return it;
    }
    return NULL;
}

static const char *stage_key(const cJSON *sf_stage)
{
    const char *api = str(sf_stage, "ApiName");
    return api ? api : str(sf_stage, "MasterLabel");
}

/* The HubSpot stage (id or label) the mappings file names for a Salesforce stage, or NULL. */
static const char *mapped_target(const struct pipelines *p, const cJSON *sf_stage)
{
    const char *key = stage_key(sf_stage);
    const cJSON *t = key ? cJSON_GetObjectItemCaseSensitive(p->stage_values, key) : NULL;
    if (!cJSON_IsString(t) && key)
        t = cJSON_GetObjectItem(p->stage_values, key);
    return cJSON_IsString(t) && t->valuestring[0] ? t->valuestring : NULL;
}

/* The label a Salesforce stage has in HubSpot: the mapped stage's, else its own. */
static const char *hs_label_for(const struct pipelines *p, const cJSON *sf_stage)
{
    const char *target = mapped_target(p, sf_stage);
    return target ? target : str(sf_stage, "MasterLabel");
}

/* The stage of the HubSpot pipeline a Salesforce stage maps to, or NULL. */
static const cJSON *hs_stage_for(const struct pipelines *p, const cJSON *pipeline,
                                 const cJSON *sf_stage)
{
    const cJSON *stages = cJSON_GetObjectItem(pipeline, "stages");
    const char *target = mapped_target(p, sf_stage);
    const cJSON *hit = target ? find_by_id(stages, target) : NULL;
    const char *label = hs_label_for(p, sf_stage);
    if (!hit && label)
        hit = find_by_label(stages, label);
    return hit;
}

/* Saves the map entries for every stage of the sales process the HubSpot pipeline has. */
static enum err map_existing_stages(struct pipelines *p, const char *key, const cJSON *pipeline,
                                    const cJSON *stages)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, stages)
    {
        const cJSON *hs = hs_stage_for(p, pipeline, s);
        if (!hs || !str(hs, "id") || !stage_key(s))
            continue;
        enum err rc = stage_map_save(p->db, key, stage_key(s), str(hs, "id"));
        if (rc != ERR_OK && rc != ERR_CONFLICT)
            return rc;
    }
    return ERR_OK;
}

/* The pipeline input: the sales process's stages, each under its HubSpot label (stages mapped
 * to one HubSpot stage make one). */
static cJSON *pipeline_input(const struct pipelines *p, const char *label, const cJSON *stages)
{
    cJSON *input = cJSON_CreateObject();
    cJSON_AddStringToObject(input, "label", label);
    cJSON_AddNumberToObject(input, "displayOrder", cJSON_GetArraySize(p->hs_pipelines));
    cJSON *list = cJSON_AddArrayToObject(input, "stages");
    const cJSON *s;
    cJSON_ArrayForEach(s, stages)
    {
        const char *hs_label = hs_label_for(p, s);
        if (!hs_label || find_by_label(list, hs_label))
            continue;
        cJSON *in = pipelines_stage_input(s);
        cJSON_ReplaceItemInObjectCaseSensitive(in, "label", cJSON_CreateString(hs_label));
        cJSON_AddItemToArray(list, in);
    }
    return input;
}

/* ERR_INVALID when HubSpot refuses the pipeline (and none with its label exists). */
static enum err create_pipeline(struct pipelines *p, const char *key, const cJSON *stages,
                                char **id)
{
    char *label = pipelines_label(key);
    cJSON *input = NULL;
    cJSON *created = NULL;
    enum err rc = load_hs_pipelines(p, false);
    if (rc != ERR_OK)
        goto out;
    const cJSON *found = find_by_label(p->hs_pipelines, label);
    if (!found) {
        input = pipeline_input(p, label, stages);
        rc = hs_pipeline_create(p->hs, "deals", input, &created);
        if (rc == ERR_CONFLICT || rc == ERR_INVALID) {
            /* Another worker created it meanwhile (the label is unique): adopt that one. */
            enum err again = load_hs_pipelines(p, true);
            if (again != ERR_OK) {
                rc = again;
                goto out;
            }
            found = find_by_label(p->hs_pipelines, label);
            if (found)
                rc = ERR_OK;
            else
                rc = ERR_INVALID;
        }
        if (rc != ERR_OK)
            goto out;
        if (created)
            found = created;
        log_info("hubspot pipeline created", LOG_STR("label", label),
                 LOG_STR("pipeline_id", str(found, "id")),
                 LOG_I64("stages", cJSON_GetArraySize(cJSON_GetObjectItem(found, "stages"))));
    }
    if (!str(found, "id")) {
        rc = ERR_UPSTREAM;
        goto out;
    }
    rc = pipeline_map_save(p->db, key, str(found, "id"), label);
    if (rc == ERR_OK)
        rc = map_existing_stages(p, key, found, stages);
    if (rc == ERR_OK)
        *id = xstrdup(str(found, "id"));
out:
    cJSON_Delete(created);
    cJSON_Delete(input);
    free(label);
    return rc;
}

/* Maps sf_stage to its HubSpot stage in the pipeline, adding that stage when missing. ERR_OK
 * with *hs_stage_id NULL when HubSpot refuses the stage (the record then has no stage). */
static enum err add_stage(struct pipelines *p, const char *key, const char *pipeline_id,
                          const cJSON *sf_stage, char **hs_stage_id)
{
    cJSON *input = pipelines_stage_input(sf_stage);
    cJSON *created = NULL;
    const char *id = NULL;
    cJSON_ReplaceItemInObjectCaseSensitive(input, "label",
                                           cJSON_CreateString(hs_label_for(p, sf_stage)));
    enum err rc = ERR_OK;
    if (mapped_target(p, sf_stage)) {
        /* The mappings file names a stage the pipeline may already have. */
        rc = load_hs_pipelines(p, true);
        const cJSON *st = rc == ERR_OK
                              ? hs_stage_for(p, find_by_id(p->hs_pipelines, pipeline_id), sf_stage)
                              : NULL;
        id = st ? str(st, "id") : NULL;
    }
    if (rc == ERR_OK && !id) {
        rc = hs_pipeline_stage_create(p->hs, "deals", pipeline_id, input, &created);
        id = rc == ERR_OK ? str(created, "id") : NULL;
    }
    if (rc == ERR_CONFLICT || rc == ERR_INVALID) {
        /* Already there (a label is unique within a pipeline): find it. */
        enum err again = load_hs_pipelines(p, true);
        const cJSON *pl = find_by_id(p->hs_pipelines, pipeline_id);
        const cJSON *st =
            pl ? find_by_label(cJSON_GetObjectItem(pl, "stages"), str(input, "label")) : NULL;
        if (again != ERR_OK) {
            rc = again;
        } else if (st && str(st, "id")) {
            rc = ERR_OK;
            id = str(st, "id");
        } else {
            log_warn("hubspot refused the pipeline stage", LOG_STR("pipeline_id", pipeline_id),
                     LOG_STR("stage", stage_key(sf_stage)));
            rc = ERR_OK;
        }
    }
    if (rc == ERR_OK && id) {
        rc = stage_map_save(p->db, key, stage_key(sf_stage), id);
        if (rc == ERR_OK || rc == ERR_CONFLICT) {
            rc = ERR_OK;
            *hs_stage_id = xstrdup(id);
            log_info("hubspot pipeline stage mapped", LOG_STR("pipeline_id", pipeline_id),
                     LOG_STR("stage", stage_key(sf_stage)), LOG_STR("stage_id", id));
        }
    }
    cJSON_Delete(created);
    cJSON_Delete(input);
    return rc;
}

/* The Salesforce stage whose HubSpot stage is hs_stage (by the id or label the mappings file
 * names, else by label) among rows, or NULL. */
static const cJSON *sf_stage_for(const struct pipelines *p, const cJSON *rows,
                                 const cJSON *hs_stage)
{
    const char *id = str(hs_stage, "id");
    const char *label = str(hs_stage, "label");
    const cJSON *s;
    cJSON_ArrayForEach(s, rows)
    {
        const char *target = mapped_target(p, s);
        const char *hs_label = hs_label_for(p, s);
        if (!stage_key(s))
            continue;
        if ((target && id && strcmp(target, id) == 0) ||
            (hs_label && label && strcmp(hs_label, label) == 0))
            return s;
    }
    return NULL;
}

/* Whether the map has a row for HubSpot stage id. */
static bool maps_to(const cJSON *stage_map, const char *id)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, stage_map)
    {
        if (cJSON_IsString(e) && strcmp(e->valuestring, id) == 0)
            return true;
    }
    return false;
}

enum err pipelines_repair_hs_stage(struct pipelines *p, const char *key, const char *pipeline_id,
                                   const char *hs_stage_id, cJSON *stage_map)
{
    if (!pipeline_id || !hs_stage_id || !hs_stage_id[0] || maps_to(stage_map, hs_stage_id))
        return ERR_OK;
    enum err rc = load_hs_pipelines(p, false);
    const cJSON *pl = rc == ERR_OK ? find_by_id(p->hs_pipelines, pipeline_id) : NULL;
    const cJSON *st = find_by_id(cJSON_GetObjectItem(pl, "stages"), hs_stage_id);
    if (rc == ERR_OK && !st) {
        /* Read earlier in this batch, before the stage existed: read again once. */
        rc = load_hs_pipelines(p, true);
        pl = rc == ERR_OK ? find_by_id(p->hs_pipelines, pipeline_id) : NULL;
        st = find_by_id(cJSON_GetObjectItem(pl, "stages"), hs_stage_id);
    }
    if (rc != ERR_OK || !st)
        return rc;
    const cJSON *rows = NULL;
    rc = process_stages(p, key, &rows);
    const cJSON *s = rc == ERR_OK ? sf_stage_for(p, rows, st) : NULL;
    if (rc == ERR_OK && !s) {
        rc = load_sf_stages(p);
        s = rc == ERR_OK ? sf_stage_for(p, p->sf_stages, st) : NULL;
    }
    if (rc != ERR_OK || !s)
        return rc; /* a stage made in HubSpot with no Salesforce stage: stays unmapped */
    const char *sf_name = stage_key(s);
    const char *now = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(stage_map, sf_name));
    if (now && find_by_id(cJSON_GetObjectItem(pl, "stages"), now))
        return ERR_OK; /* the Salesforce stage is mapped to another live stage: left as it is */
    rc = stage_map_save(p->db, key, sf_name, hs_stage_id);
    if (rc == ERR_CONFLICT)
        rc = ERR_OK;
    if (rc != ERR_OK)
        return rc;
    cJSON_DeleteItemFromObjectCaseSensitive(stage_map, sf_name);
    cJSON_AddStringToObject(stage_map, sf_name, hs_stage_id);
    log_info("hubspot pipeline stage mapping repaired", LOG_STR("pipeline_id", pipeline_id),
             LOG_STR("stage", sf_name), LOG_STR("stage_id", hs_stage_id));
    return ERR_OK;
}

/* The pipeline of key made (or adopted) under its lock. ERR_OK with *id NULL when it is not
 * made: *reason says why and *refusal is the records' outcome (pipelines_resolve). */
static enum err create_locked(struct pipelines *p, const char *key, const char *rt, char **id,
                              char **reason, enum err *refusal)
{
    const cJSON *stages = NULL;
    int count = 0;
    enum err rc = pipeline_map_count(p->db, &count);
    if (rc != ERR_OK)
        return rc;
    if (count >= p->limit) {
        char *label = pipelines_label(key);
        *reason = xasprintf("pipeline limit reached: %d pipelines are synced "
                            "(SYNC_PIPELINE_LIMIT), so \"%s\" is not created",
                            count, label);
        *refusal = ERR_OK;
        free(label);
        return ERR_OK;
    }
    rc = process_stages(p, rt, &stages);
    if (rc == ERR_OK)
        rc = create_pipeline(p, key, stages, id);
    if (rc == ERR_INVALID) {
        /* Only this record type's opportunities fail: the rest of the batch goes on. */
        char *label = pipelines_label(key);
        *reason = xasprintf("hubspot refused to create the pipeline \"%s\" (a subscription "
                            "allows a limited number of deal pipelines; details in the log)",
                            label);
        free(label);
        if (!p->refused)
            p->refused = cJSON_CreateObject();
        cJSON_AddStringToObject(p->refused, key, *reason);
        *refusal = ERR_INVALID;
        return ERR_OK;
    }
    return rc;
}

enum err pipelines_resolve(struct pipelines *p, const char *record_type_id, const char *stage_name,
                           char **pipeline_id, cJSON **stage_map, char **reason, enum err *refusal)
{
    char *id = NULL;
    char *key = NULL;
    cJSON *map = NULL;
    const cJSON *stages = NULL;
    const char *rt = record_type_id ? record_type_id : "";
    enum err rc = pipelines_key(p, rt, &key);
    if (rc != ERR_OK)
        goto out;
    const char *why = str(p->refused, key);
    if (why) {
        *reason = xstrdup(why);
        *refusal = ERR_INVALID;
        goto refused;
    }
    rc = pipeline_map_find(p->db, key, &id);
    if (rc == ERR_NOT_FOUND) {
        /* One worker creates the pipeline while the others wait for it: the first batch of
         * an import reached every worker at once, and each listed the pipelines, tried the
         * create and listed them again after the refusal (with 8 workers 11 lists and 4
         * creates for one pipeline). */
        char *lock = xasprintf("pipeline:%s", key);
        rc = sync_pair_lock_wait(p->db, lock);
        if (rc == ERR_OK) {
            rc = pipeline_map_find(p->db, key, &id);
            if (rc == ERR_NOT_FOUND)
                rc = create_locked(p, key, rt, &id, reason, refusal);
            sync_pair_unlock(p->db, lock);
        }
        free(lock);
        if (rc == ERR_OK && !id)
            goto refused;
    }
    if (rc != ERR_OK)
        goto out;
    rc = stage_map_load(p->db, key, &map);
    if (rc != ERR_OK)
        goto out;
    if (stage_name && !cJSON_GetObjectItemCaseSensitive(map, stage_name)) {
        rc = process_stages(p, rt, &stages);
        if (rc != ERR_OK)
            goto out;
        const cJSON *s = sf_stage_named(stages, stage_name);
        if (!s) {
            /* Outside the record type's sales process (the API allows it): any stage. */
            rc = load_sf_stages(p);
            if (rc != ERR_OK)
                goto out;
            s = sf_stage_named(p->sf_stages, stage_name);
        }
        char *hs_stage = NULL;
        if (s) {
            rc = add_stage(p, key, id, s, &hs_stage);
            if (rc != ERR_OK)
                goto out;
            if (hs_stage)
                cJSON_AddStringToObject(map, stage_name, hs_stage);
            free(hs_stage);
        }
        /* A StageName with no stage stays unmapped; mapping_apply records it. */
    }
    *pipeline_id = id;
    *stage_map = map;
    *reason = NULL;
    *refusal = ERR_OK;
    id = NULL;
    map = NULL;
    goto out;
refused:
    *pipeline_id = NULL;
    *stage_map = NULL;
    rc = ERR_OK;
out:
    cJSON_Delete(map);
    free(key);
    free(id);
    return rc;
}
