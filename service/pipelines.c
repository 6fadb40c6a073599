/* pipelines.c - record type -> HubSpot deal pipeline, Salesforce stage -> HubSpot stage. The
 * maps live in Postgres; HubSpot is searched by label before anything is created, so a crash
 * between creating a pipeline and saving its map, or two workers racing, never leaves two. */
#include "pipelines.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sync_state.h"
#include "util.h"

void pipelines_clear(struct pipelines *p)
{
    if (!p)
        return;
    cJSON_Delete(p->sf_stages);
    cJSON_Delete(p->hs_pipelines);
    p->sf_stages = NULL;
    p->hs_pipelines = NULL;
}

char *pipelines_label(const char *record_type_id)
{
    if (!record_type_id || !record_type_id[0])
        return xstrdup("Salesforce - Default pipeline");
    return xasprintf("Salesforce - %s", record_type_id);
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

static enum err load_sf_stages(struct pipelines *p)
{
    if (p->sf_stages)
        return ERR_OK;
    return sf_query(p->sf,
                    "SELECT ApiName, MasterLabel, IsActive, IsClosed, IsWon, DefaultProbability,"
                    " SortOrder FROM OpportunityStage ORDER BY SortOrder",
                    &p->sf_stages);
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

/* Saves the map entries for every Salesforce stage whose label the HubSpot pipeline has. */
static enum err map_existing_stages(struct pipelines *p, const char *record_type_id,
                                    const cJSON *pipeline)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, p->sf_stages)
    {
        const char *label = str(s, "MasterLabel");
        const cJSON *hs =
            label ? find_by_label(cJSON_GetObjectItem(pipeline, "stages"), label) : NULL;
        if (!hs || !str(hs, "id") || !stage_key(s))
            continue;
        enum err rc = stage_map_save(p->db, record_type_id, stage_key(s), str(hs, "id"));
        if (rc != ERR_OK && rc != ERR_CONFLICT)
            return rc;
    }
    return ERR_OK;
}

static enum err create_pipeline(struct pipelines *p, const char *record_type_id, char **id)
{
    char *label = pipelines_label(record_type_id);
    cJSON *input = NULL;
    cJSON *created = NULL;
    enum err rc = load_hs_pipelines(p, false);
    if (rc != ERR_OK)
        goto out;
    const cJSON *found = find_by_label(p->hs_pipelines, label);
    if (!found) {
        input = cJSON_CreateObject();
        cJSON_AddStringToObject(input, "label", label);
        cJSON_AddNumberToObject(input, "displayOrder", cJSON_GetArraySize(p->hs_pipelines));
        cJSON *stages = cJSON_AddArrayToObject(input, "stages");
        const cJSON *s;
        cJSON_ArrayForEach(s, p->sf_stages)
        {
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "IsActive")))
                cJSON_AddItemToArray(stages, pipelines_stage_input(s));
        }
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
        }
        if (rc != ERR_OK)
            goto out;
        if (created)
            found = created;
        log_info("hubspot pipeline created", LOG_STR("label", label),
                 LOG_STR("pipeline_id", str(found, "id")));
    }
    if (!str(found, "id")) {
        rc = ERR_INVALID;
        goto out;
    }
    rc = pipeline_map_save(p->db, record_type_id, str(found, "id"), label);
    if (rc == ERR_OK)
        rc = map_existing_stages(p, record_type_id, found);
    if (rc == ERR_OK)
        *id = xstrdup(str(found, "id"));
out:
    cJSON_Delete(created);
    cJSON_Delete(input);
    free(label);
    return rc;
}

static enum err add_stage(struct pipelines *p, const char *record_type_id, const char *pipeline_id,
                          const cJSON *sf_stage, char **hs_stage_id)
{
    cJSON *input = pipelines_stage_input(sf_stage);
    cJSON *created = NULL;
    enum err rc = hs_pipeline_stage_create(p->hs, "deals", pipeline_id, input, &created);
    const char *id = rc == ERR_OK ? str(created, "id") : NULL;
    if (rc == ERR_CONFLICT || rc == ERR_INVALID) {
        /* Already there (a label is unique within a pipeline): find it. */
        enum err again = load_hs_pipelines(p, true);
        const cJSON *pl = NULL, *it;
        cJSON_ArrayForEach(it, p->hs_pipelines) if (str(it, "id") &&
                                                    strcmp(str(it, "id"), pipeline_id) == 0) pl =
            it;
        const cJSON *st =
            pl ? find_by_label(cJSON_GetObjectItem(pl, "stages"), str(input, "label")) : NULL;
        if (again != ERR_OK)
            rc = again;
        else if (st && str(st, "id")) {
            rc = ERR_OK;
            id = str(st, "id");
        }
    }
    if (rc == ERR_OK && id) {
        rc = stage_map_save(p->db, record_type_id, stage_key(sf_stage), id);
        if (rc == ERR_OK || rc == ERR_CONFLICT) {
            rc = ERR_OK;
            *hs_stage_id = xstrdup(id);
            log_info("hubspot pipeline stage added", LOG_STR("pipeline_id", pipeline_id),
                     LOG_STR("stage", stage_key(sf_stage)), LOG_STR("stage_id", id));
        }
    } else if (rc == ERR_OK) {
        rc = ERR_INVALID;
    }
    cJSON_Delete(created);
    cJSON_Delete(input);
    return rc;
}

enum err pipelines_resolve(struct pipelines *p, const char *record_type_id, const char *stage_name,
                           char **pipeline_id, cJSON **stage_map, char **reason)
{
    char *id = NULL;
    cJSON *map = NULL;
    const char *rt = record_type_id ? record_type_id : "";
    enum err rc = pipeline_map_find(p->db, rt, &id);
    if (rc == ERR_NOT_FOUND) {
        int count = 0;
        rc = pipeline_map_count(p->db, &count);
        if (rc != ERR_OK)
            goto out;
        if (count >= p->limit) {
            char *label = pipelines_label(rt);
            *pipeline_id = NULL;
            *stage_map = NULL;
            *reason = xasprintf("pipeline limit reached: %d pipelines are synced "
                                "(SYNC_PIPELINE_LIMIT), so \"%s\" is not created",
                                count, label);
            free(label);
            rc = ERR_OK;
            goto out;
        }
        rc = load_sf_stages(p);
        if (rc == ERR_OK)
            rc = create_pipeline(p, rt, &id);
    }
    if (rc != ERR_OK)
        goto out;
    rc = stage_map_load(p->db, rt, &map);
    if (rc != ERR_OK)
        goto out;
    if (stage_name && !cJSON_GetObjectItemCaseSensitive(map, stage_name)) {
        rc = load_sf_stages(p);
        if (rc != ERR_OK)
            goto out;
        const cJSON *s = sf_stage_named(p->sf_stages, stage_name);
        char *hs_stage = NULL;
        if (s) {
            rc = add_stage(p, rt, id, s, &hs_stage);
            if (rc != ERR_OK)
                goto out;
            cJSON_AddStringToObject(map, stage_name, hs_stage);
            free(hs_stage);
        }
        /* A StageName with no OpportunityStage row stays unmapped; mapping_apply records it. */
    }
    *pipeline_id = id;
    *stage_map = map;
    *reason = NULL;
    id = NULL;
    map = NULL;
out:
    cJSON_Delete(map);
    free(id);
    return rc;
}
