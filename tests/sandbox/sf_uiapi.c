/* sf_uiapi.c - the User Interface API's picklist values by record type
 * (GET /services/data/vXX.X/ui-api/object-info/<Object>/picklist-values/<recordTypeId>/<Field>,
 * from v41.0) and the sales processes (BusinessProcess) that decide which StageName values an
 * opportunity record type offers. Called with the lock held. */
#include "sf_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The id Salesforce gives the master record type of every object (an org without record types
 * answers for it). */
#define MASTER_RECORD_TYPE "012000000000000AAA"

static const char *str(const cJSON *o, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

static struct sf_record *stage_record(const char *api_name)
{
    struct sf_object *stages = sf_store_object("OpportunityStage", false);
    for (size_t i = 0; stages && i < stages->record_count; i++) {
        struct sf_record *r = stages->records[i];
        const char *api = str(r->values, "ApiName");
        if (!r->is_deleted && api && strcmp(api, api_name) == 0)
            return r;
    }
    return NULL;
}

static cJSON *stage_value(const struct sf_record *r)
{
    const cJSON *v = r->values;
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddObjectToObject(o, "attributes");
    cJSON_AddBoolToObject(a, "closed", cJSON_IsTrue(cJSON_GetObjectItem(v, "IsClosed")));
    const cJSON *p = cJSON_GetObjectItem(v, "DefaultProbability");
    cJSON_AddNumberToObject(a, "defaultProbability", cJSON_IsNumber(p) ? p->valuedouble : 0);
    const char *fc = str(v, "ForecastCategoryName");
    if (fc)
        cJSON_AddStringToObject(a, "forecastCategoryName", fc);
    else
        cJSON_AddNullToObject(a, "forecastCategoryName");
    /* The misspelling is Salesforce's own. */
    cJSON_AddStringToObject(a, "picklistAtrributesValueType", "OpportunityStage");
    cJSON_AddBoolToObject(a, "won", cJSON_IsTrue(cJSON_GetObjectItem(v, "IsWon")));
    cJSON_AddItemToObject(o, "label", cJSON_Duplicate(cJSON_GetObjectItem(v, "MasterLabel"), true));
    cJSON_AddArrayToObject(o, "validFor");
    cJSON_AddItemToObject(o, "value", cJSON_Duplicate(cJSON_GetObjectItem(v, "ApiName"), true));
    return o;
}

static bool is_active_stage(const struct sf_record *r)
{
    return r && cJSON_IsTrue(cJSON_GetObjectItem(r->values, "IsActive"));
}

/* The active stages of the record type's sales process, in the process's order; every active
 * stage by SortOrder for the master record type or a record type without a process. */
static void stage_values(const struct sf_record *record_type, cJSON *values)
{
    const char *bp = record_type ? str(record_type->values, "BusinessProcessId") : NULL;
    struct sf_object *owner = NULL;
    struct sf_record *process = bp ? sf_store_find(bp, &owner) : NULL;
    const cJSON *names = process ? cJSON_GetObjectItem(process->values, "_stages") : NULL;
    if (cJSON_IsArray(names)) {
        const cJSON *n;
        cJSON_ArrayForEach(n, names)
        {
            struct sf_record *r = cJSON_IsString(n) ? stage_record(n->valuestring) : NULL;
            if (is_active_stage(r))
                cJSON_AddItemToArray(values, stage_value(r));
        }
        return;
    }
    struct sf_object *stages = sf_store_object("OpportunityStage", false);
    /* Seeded and created in SortOrder; sort anyway for stages created out of order. */
    size_t n = stages ? stages->record_count : 0;
    struct sf_record **sorted = xcalloc(n + 1, sizeof(*sorted));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!stages->records[i]->is_deleted && is_active_stage(stages->records[i]))
            sorted[k++] = stages->records[i];
    for (size_t i = 1; i < k; i++) {
        for (size_t j = i; j > 0; j--) {
            const cJSON *a = cJSON_GetObjectItem(sorted[j - 1]->values, "SortOrder");
            const cJSON *b = cJSON_GetObjectItem(sorted[j]->values, "SortOrder");
            if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || a->valuedouble <= b->valuedouble)
                break;
            struct sf_record *t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    }
    for (size_t i = 0; i < k; i++)
        cJSON_AddItemToArray(values, stage_value(sorted[i]));
    free(sorted);
}

static void field_values(const struct sf_field *f, cJSON *values)
{
    const cJSON *pv;
    cJSON_ArrayForEach(pv, f->picklist)
    {
        if (!cJSON_IsTrue(cJSON_GetObjectItem(pv, "active")))
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNullToObject(o, "attributes");
        cJSON_AddItemToObject(o, "label", cJSON_Duplicate(cJSON_GetObjectItem(pv, "label"), true));
        cJSON_AddArrayToObject(o, "validFor");
        cJSON_AddItemToObject(o, "value", cJSON_Duplicate(cJSON_GetObjectItem(pv, "value"), true));
        cJSON_AddItemToArray(values, o);
    }
}

void sf_uiapi_handle(const struct sb_request *req, char **seg, size_t n, const char *version,
                     struct sb_response *resp)
{
    if (strtod(version, NULL) < 41.0 || n != 6 || strcmp(seg[1], "object-info") != 0 ||
        strcmp(seg[3], "picklist-values") != 0) {
        sf_respond_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        sf_respond_errorf(resp, 405, "METHOD_NOT_ALLOWED",
                          "HTTP Method '%s' not allowed. "
                          "Allowed are GET",
                          req->method);
        return;
    }
    struct sf_object *obj = sf_store_object(seg[2], false);
    if (!obj || obj->is_virtual || obj->is_read_only) {
        sf_respond_errorf(resp, 400, "INVALID_TYPE", "Object %s is not supported in UI API",
                          seg[2]);
        return;
    }
    struct sf_record *rt = NULL;
    if (strcmp(seg[4], MASTER_RECORD_TYPE) != 0) {
        struct sf_object *owner = NULL;
        rt = sf_store_find(seg[4], &owner);
        const char *type = rt ? str(rt->values, "SobjectType") : NULL;
        if (!rt || rt->is_deleted || strcmp(owner->name, "RecordType") != 0 || !type ||
            strcmp(type, obj->name) != 0) {
            sf_respond_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
            return;
        }
    }
    const struct sf_field *f = sf_store_field(obj, seg[5]);
    if (!f || (f->type != SF_PICKLIST && f->type != SF_MULTIPICKLIST)) {
        sf_respond_errorf(resp, 404, "NOT_FOUND", "The requested resource does not exist");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddObjectToObject(o, "controllerValues");
    cJSON_AddNullToObject(o, "defaultValue");
    char etag[40];
    snprintf(etag, sizeof(etag), "%08x%s", (unsigned)sf_store_object_count(), seg[4] + 12);
    cJSON_AddStringToObject(o, "eTag", etag);
    char *url = xasprintf("/services/data/v%s/ui-api/object-info/%s/picklist-values/%s/%s", version,
                          obj->name, seg[4], f->name);
    cJSON_AddStringToObject(o, "url", url);
    free(url);
    cJSON *values = cJSON_AddArrayToObject(o, "values");
    if (strcmp(obj->name, "Opportunity") == 0 && strcmp(f->name, "StageName") == 0)
        stage_values(rt, values);
    else
        field_values(f, values);
    sb_respond_json(resp, 200, o);
}

void sf_process_put_stages(const struct sb_request *req, struct sf_record *process,
                           struct sb_response *resp)
{
    cJSON *body = cJSON_Parse(req->body);
    const cJSON *stages = cJSON_GetObjectItemCaseSensitive(body, "stages");
    const cJSON *s;
    bool ok = cJSON_IsArray(stages) && cJSON_GetArraySize(stages) > 0;
    cJSON_ArrayForEach(s, stages) ok = ok && cJSON_IsString(s) && stage_record(s->valuestring);
    if (!ok) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "status", "error");
        cJSON_AddStringToObject(m, "message",
                                "body must be {\"stages\": [OpportunityStage ApiName, ...]}");
        sb_respond_json(resp, 400, m);
        cJSON_Delete(body);
        return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(process->values, "_stages");
    cJSON_AddItemToObject(process->values, "_stages", cJSON_Duplicate(stages, true));
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "status", "ok");
    cJSON_AddItemToObject(m, "stages", cJSON_Duplicate(stages, true));
    sb_respond_json(resp, 200, m);
    cJSON_Delete(body);
}
