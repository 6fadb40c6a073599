/* hs_pipelines.c - HubSpot deal pipelines and stages (Pipelines API v3): the seeded "default"
 * pipeline with HubSpot's stage ids, create/read/update/delete of pipelines and stages, and the
 * lookups the record validation needs. Stage metadata is returned as strings, as HubSpot does. */
#include "hs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_STAGES 100

struct stage {
    char *id;
    char *label;
    int display_order;
    double probability;
    bool is_closed;
    int64_t created_at;
    int64_t updated_at;
};

struct pipeline {
    char *id;
    char *label;
    int display_order;
    struct stage *stages;
    size_t stage_count;
    int64_t created_at;
    int64_t updated_at;
};

static struct pipeline *pipelines;
static size_t pipeline_count;
static int64_t next_id;

static void stage_clear(struct stage *s)
{
    free(s->id);
    free(s->label);
}

static void pipeline_clear(struct pipeline *p)
{
    for (size_t i = 0; i < p->stage_count; i++)
        stage_clear(&p->stages[i]);
    free(p->stages);
    free(p->id);
    free(p->label);
}

static struct pipeline *pipeline_add(const char *id, const char *label, int order)
{
    pipelines = xrealloc(pipelines, (pipeline_count + 1) * sizeof *pipelines);
    struct pipeline *p = &pipelines[pipeline_count++];
    memset(p, 0, sizeof *p);
    p->id = xstrdup(id);
    p->label = xstrdup(label);
    p->display_order = order;
    p->created_at = p->updated_at = sb_now_ms();
    return p;
}

static struct stage *stage_add(struct pipeline *p, const char *id, const char *label, int order,
                               double probability, bool is_closed)
{
    p->stages = xrealloc(p->stages, (p->stage_count + 1) * sizeof *p->stages);
    struct stage *s = &p->stages[p->stage_count++];
    s->id = xstrdup(id);
    s->label = xstrdup(label);
    s->display_order = order;
    s->probability = probability;
    s->is_closed = is_closed;
    s->created_at = s->updated_at = sb_now_ms();
    return s;
}

void hs_pipelines_reset(void)
{
    static const struct {
        const char *id, *label;
        double probability;
        bool is_closed;
    } stages[] = {
        {"appointmentscheduled", "Appointment Scheduled", 0.2, false},
        {"qualifiedtobuy", "Qualified To Buy", 0.4, false},
        {"presentationscheduled", "Presentation Scheduled", 0.6, false},
        {"decisionmakerboughtin", "Decision Maker Bought-In", 0.8, false},
        {"contractsent", "Contract Sent", 0.9, false},
        {"closedwon", "Closed Won", 1.0, true},
        {"closedlost", "Closed Lost", 0.0, true},
    };
    for (size_t i = 0; i < pipeline_count; i++)
        pipeline_clear(&pipelines[i]);
    free(pipelines);
    pipelines = NULL;
    pipeline_count = 0;
    next_id = 11348541; /* custom ids are numeric strings, e.g. "11348541" */
    struct pipeline *p = pipeline_add("default", "Sales Pipeline", 0);
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
        stage_add(p, stages[i].id, stages[i].label, (int)i, stages[i].probability,
                  stages[i].is_closed);
}

static struct pipeline *pipeline_find(const char *id)
{
    for (size_t i = 0; i < pipeline_count; i++)
        if (strcmp(pipelines[i].id, id) == 0)
            return &pipelines[i];
    return NULL;
}

static struct stage *stage_find(struct pipeline *p, const char *id)
{
    for (size_t i = 0; p && i < p->stage_count; i++)
        if (strcmp(p->stages[i].id, id) == 0)
            return &p->stages[i];
    return NULL;
}

cJSON *hs_pipeline_ids(void)
{
    cJSON *ids = cJSON_CreateArray();
    for (size_t i = 0; i < pipeline_count; i++)
        cJSON_AddItemToArray(ids, cJSON_CreateString(pipelines[i].id));
    return ids;
}

cJSON *hs_stage_ids(const char *pipeline_id)
{
    cJSON *ids = cJSON_CreateArray();
    for (size_t i = 0; i < pipeline_count; i++) {
        if (pipeline_id && strcmp(pipelines[i].id, pipeline_id) != 0)
            continue;
        for (size_t j = 0; j < pipelines[i].stage_count; j++)
            cJSON_AddItemToArray(ids, cJSON_CreateString(pipelines[i].stages[j].id));
    }
    return ids;
}

bool hs_stage_in_pipeline(const char *pipeline_id, const char *stage_id)
{
    return stage_find(pipeline_find(pipeline_id), stage_id) != NULL;
}

double hs_stage_probability(const char *pipeline_id, const char *stage_id)
{
    const struct stage *s = stage_find(pipeline_find(pipeline_id), stage_id);
    return s ? s->probability : -1;
}

size_t hs_pipeline_count(void)
{
    return pipeline_count;
}

const char *hs_pipeline_first_id(void)
{
    return pipeline_count ? pipelines[0].id : NULL;
}

/* ---- JSON ---- */

static cJSON *stage_json(const struct stage *s)
{
    char created[32], updated[32], prob[16];
    hs_iso(s->created_at, created);
    hs_iso(s->updated_at, updated);
    snprintf(prob, sizeof prob, "%.1f", s->probability);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", s->id);
    cJSON_AddStringToObject(o, "label", s->label);
    cJSON_AddNumberToObject(o, "displayOrder", s->display_order);
    cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(meta, "isClosed", s->is_closed ? "true" : "false");
    cJSON_AddStringToObject(meta, "probability", prob);
    cJSON_AddStringToObject(o, "createdAt", created);
    cJSON_AddStringToObject(o, "updatedAt", updated);
    cJSON_AddBoolToObject(o, "archived", false);
    cJSON_AddStringToObject(o, "writePermissions", "CRM_PERMISSIONS_ENFORCEMENT");
    return o;
}

static cJSON *pipeline_json(const struct pipeline *p)
{
    char created[32], updated[32];
    hs_iso(p->created_at, created);
    hs_iso(p->updated_at, updated);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", p->id);
    cJSON_AddStringToObject(o, "label", p->label);
    cJSON_AddNumberToObject(o, "displayOrder", p->display_order);
    cJSON *stages = cJSON_AddArrayToObject(o, "stages");
    for (size_t i = 0; i < p->stage_count; i++)
        cJSON_AddItemToArray(stages, stage_json(&p->stages[i]));
    cJSON_AddStringToObject(o, "createdAt", created);
    cJSON_AddStringToObject(o, "updatedAt", updated);
    cJSON_AddBoolToObject(o, "archived", false);
    return o;
}

/* ---- input validation ---- */

/* Parses a deal stage's metadata: probability required (0.0-1.0 in steps of 0.1, string or
 * number); isClosed optional, else closed when the probability is 0 or 1. */
static const char *parse_stage_meta(const cJSON *meta, double *probability, bool *is_closed)
{
    if (!cJSON_IsObject(meta))
        return "Deal stages require metadata with a probability";
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(meta, "probability");
    char *text = hs_value_string(p);
    char *end = NULL;
    double d = text ? strtod(text, &end) : NAN;
    bool ok = text && *text && end && *end == '\0' && d >= 0 && d <= 1 &&
              fabs(d * 10 - round(d * 10)) < 1e-9;
    free(text);
    if (!cJSON_IsString(p) && !cJSON_IsNumber(p))
        return "Deal stages require metadata.probability";
    if (!ok)
        return "metadata.probability must be between 0.0 and 1.0 in steps of 0.1";
    *probability = round(d * 10) / 10;
    const cJSON *closed = cJSON_GetObjectItemCaseSensitive(meta, "isClosed");
    char *closed_text = hs_value_string(closed);
    if (closed_text && (strcmp(closed_text, "true") == 0 || strcmp(closed_text, "false") == 0))
        *is_closed = strcmp(closed_text, "true") == 0;
    else
        *is_closed = *probability == 0.0 || *probability == 1.0;
    free(closed_text);
    return NULL;
}

static const char *check_stage_input(const cJSON *in, double *probability, bool *is_closed)
{
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(in, "label");
    if (!cJSON_IsString(label) || !*label->valuestring)
        return "Each stage needs a label";
    if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(in, "displayOrder")))
        return "Each stage needs a displayOrder";
    return parse_stage_meta(cJSON_GetObjectItemCaseSensitive(in, "metadata"), probability,
                            is_closed);
}

/* Stage labels are unique within a pipeline (reference hubspot.md 4.4, PipelineInput), on a
 * stage added or renamed too. */
static bool stage_label_taken(const struct pipeline *p, const char *label,
                              const struct stage *except)
{
    for (size_t i = 0; i < p->stage_count; i++)
        if (&p->stages[i] != except && p->stages[i].label && strcmp(p->stages[i].label, label) == 0)
            return true;
    return false;
}

static bool label_taken(const char *label, const struct pipeline *except)
{
    for (size_t i = 0; i < pipeline_count; i++)
        if (&pipelines[i] != except && strcmp(pipelines[i].label, label) == 0)
            return true;
    return false;
}

/* Validates {label, displayOrder, stages:[...]} for create/replace. Message or NULL. */
static const char *check_pipeline_input(const cJSON *body, const struct pipeline *except)
{
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(body, "label");
    const cJSON *stages = cJSON_GetObjectItemCaseSensitive(body, "stages");
    if (!cJSON_IsString(label) || !*label->valuestring)
        return "label is required";
    if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(body, "displayOrder")))
        return "displayOrder is required";
    if (!cJSON_IsArray(stages) || cJSON_GetArraySize(stages) == 0)
        return "stages are required";
    if (cJSON_GetArraySize(stages) > MAX_STAGES)
        return "A deal pipeline can have at most 100 stages";
    if (label_taken(label->valuestring, except))
        return "A pipeline with this label already exists";
    const cJSON *s;
    cJSON_ArrayForEach(s, stages)
    {
        double prob;
        bool closed;
        const char *msg = check_stage_input(s, &prob, &closed);
        if (msg)
            return msg;
        const char *l = cJSON_GetObjectItemCaseSensitive(s, "label")->valuestring;
        for (const cJSON *q = s->next; q; q = q->next) {
            const cJSON *l2 = cJSON_GetObjectItemCaseSensitive(q, "label");
            if (cJSON_IsString(l2) && strcmp(l2->valuestring, l) == 0)
                return "Stage labels must be unique within a pipeline";
        }
    }
    return NULL;
}

static char *new_id(void)
{
    return xasprintf("%lld", (long long)next_id++);
}

static void fill_stages(struct pipeline *p, const cJSON *stages)
{
    const cJSON *s;
    cJSON_ArrayForEach(s, stages)
    {
        double prob = 0;
        bool closed = false;
        (void)check_stage_input(s, &prob, &closed);
        char *id = new_id();
        stage_add(p, id, cJSON_GetObjectItemCaseSensitive(s, "label")->valuestring,
                  cJSON_GetObjectItemCaseSensitive(s, "displayOrder")->valueint, prob, closed);
        free(id);
    }
}

static void create_pipeline(const struct sb_request *req, struct sb_response *resp)
{
    cJSON *body = hs_parse_body(req, resp);
    if (!body)
        return;
    const char *msg = check_pipeline_input(body, NULL);
    /* The subscription's pipeline allowance (per tier; the numbers are UNVERIFIED, so it is a
     * setting, 0 = no limit). */
    int64_t allowed = sb_setting_int("hubspot.deal_pipeline_limit", 0);
    if (msg) {
        hs_error(resp, 400, "VALIDATION_ERROR", msg);
    } else if (allowed > 0 && (int64_t)pipeline_count >= allowed) {
        hs_errorf(resp, 400, "VALIDATION_ERROR",
                  "You have reached the limit of %lld deal pipelines for your subscription",
                  (long long)allowed);
    } else {
        char *id = new_id();
        struct pipeline *p =
            pipeline_add(id, cJSON_GetObjectItemCaseSensitive(body, "label")->valuestring,
                         cJSON_GetObjectItemCaseSensitive(body, "displayOrder")->valueint);
        free(id);
        fill_stages(p, cJSON_GetObjectItemCaseSensitive(body, "stages"));
        sb_respond_json(resp, 201, pipeline_json(p));
    }
    cJSON_Delete(body);
}

static void update_pipeline(const struct sb_request *req, struct pipeline *p,
                            struct sb_response *resp)
{
    cJSON *body = hs_parse_body(req, resp);
    if (!body)
        return;
    bool is_replace = strcmp(req->method, "PUT") == 0;
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(body, "label");
    const cJSON *order = cJSON_GetObjectItemCaseSensitive(body, "displayOrder");
    const char *msg = NULL;
    if (is_replace)
        msg = check_pipeline_input(body, p);
    else if (label && (!cJSON_IsString(label) || !*label->valuestring))
        msg = "label must be a non-empty string";
    else if (label && label_taken(label->valuestring, p))
        msg = "A pipeline with this label already exists";
    else if (order && !cJSON_IsNumber(order))
        msg = "displayOrder must be a number";
    if (msg) {
        hs_error(resp, 400, "VALIDATION_ERROR", msg);
        goto out;
    }
    if (label) {
        free(p->label);
        p->label = xstrdup(label->valuestring);
    }
    if (order)
        p->display_order = order->valueint;
    if (is_replace) {
        for (size_t i = 0; i < p->stage_count; i++)
            stage_clear(&p->stages[i]);
        p->stage_count = 0;
        fill_stages(p, cJSON_GetObjectItemCaseSensitive(body, "stages"));
    }
    p->updated_at = sb_now_ms();
    sb_respond_json(resp, 200, pipeline_json(p));
out:
    cJSON_Delete(body);
}

static bool query_is_true(const struct sb_request *req, const char *name)
{
    char *v = sb_req_query(req, name);
    bool is_true = v && strcmp(v, "true") == 0;
    free(v);
    return is_true;
}

static void delete_pipeline(const struct sb_request *req, struct pipeline *p,
                            struct sb_response *resp)
{
    if (pipeline_count == 1) {
        hs_error(resp, 400, "VALIDATION_ERROR", "The last pipeline of an object cannot be deleted");
        return;
    }
    if ((query_is_true(req, "validateReferencesBeforeDelete") ||
         query_is_true(req, "validateDealStageUsagesBeforeDelete")) &&
        hs_objects_use_stage(p->id, NULL)) {
        hs_errorf(resp, 409, "CONFLICT", "Pipeline %s is in use by deals", p->id);
        return;
    }
    pipeline_clear(p);
    size_t i = (size_t)(p - pipelines);
    memmove(p, p + 1, (pipeline_count - i - 1) * sizeof *p);
    pipeline_count--;
    sb_respond_json(resp, 204, NULL);
}

static void handle_stages(const struct sb_request *req, struct pipeline *p, const char *rest,
                          struct sb_response *resp)
{
    cJSON *body = NULL;
    if (*rest == '\0') {
        if (strcmp(req->method, "GET") == 0) {
            cJSON *root = cJSON_CreateObject();
            cJSON *results = cJSON_AddArrayToObject(root, "results");
            for (size_t i = 0; i < p->stage_count; i++)
                cJSON_AddItemToArray(results, stage_json(&p->stages[i]));
            sb_respond_json(resp, 200, root);
        } else if (strcmp(req->method, "POST") == 0) {
            double prob = 0;
            bool closed = false;
            const char *msg;
            if (!(body = hs_parse_body(req, resp)))
                return;
            if ((msg = check_stage_input(body, &prob, &closed)) != NULL) {
                hs_error(resp, 400, "VALIDATION_ERROR", msg);
            } else if (stage_label_taken(
                           p, cJSON_GetObjectItemCaseSensitive(body, "label")->valuestring, NULL)) {
                hs_error(resp, 400, "VALIDATION_ERROR",
                         "Stage labels must be unique within a pipeline");
            } else if (p->stage_count >= MAX_STAGES) {
                hs_error(resp, 400, "VALIDATION_ERROR",
                         "A deal pipeline can have at most 100 stages");
            } else {
                char *id = new_id();
                struct stage *s = stage_add(
                    p, id, cJSON_GetObjectItemCaseSensitive(body, "label")->valuestring,
                    cJSON_GetObjectItemCaseSensitive(body, "displayOrder")->valueint, prob, closed);
                free(id);
                p->updated_at = sb_now_ms();
                sb_respond_json(resp, 201, stage_json(s));
            }
        } else {
            hs_error(resp, 405, NULL, "method not allowed");
        }
        cJSON_Delete(body);
        return;
    }
    struct stage *s = stage_find(p, rest + 1);
    if (*rest != '/' || !s) {
        hs_errorf(resp, 404, "OBJECT_NOT_FOUND", "Unable to find stage %s in pipeline %s",
                  rest + (*rest == '/'), p->id);
        return;
    }
    if (strcmp(req->method, "GET") == 0) {
        sb_respond_json(resp, 200, stage_json(s));
    } else if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0) {
        double prob = s->probability;
        bool closed = s->is_closed;
        const char *msg;
        if (!(body = hs_parse_body(req, resp)))
            return;
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(body, "label");
        const cJSON *order = cJSON_GetObjectItemCaseSensitive(body, "displayOrder");
        /* metadata is required on every stage write for deals, PATCH included (reference 4.4) */
        if (strcmp(req->method, "PUT") == 0)
            msg = check_stage_input(body, &prob, &closed);
        else
            msg = parse_stage_meta(cJSON_GetObjectItemCaseSensitive(body, "metadata"), &prob,
                                   &closed);
        if (!msg && cJSON_IsString(label) && stage_label_taken(p, label->valuestring, s))
            msg = "Stage labels must be unique within a pipeline";
        if (msg) {
            hs_error(resp, 400, "VALIDATION_ERROR", msg);
        } else {
            if (cJSON_IsString(label)) {
                free(s->label);
                s->label = xstrdup(label->valuestring);
            }
            if (cJSON_IsNumber(order))
                s->display_order = order->valueint;
            s->probability = prob;
            s->is_closed = closed;
            s->updated_at = p->updated_at = sb_now_ms();
            sb_respond_json(resp, 200, stage_json(s));
        }
        cJSON_Delete(body);
    } else if (strcmp(req->method, "DELETE") == 0) {
        if (hs_objects_use_stage(p->id, s->id)) {
            hs_errorf(resp, 409, "CONFLICT", "Stage %s is in use by deals", s->id);
            return;
        }
        stage_clear(s);
        size_t i = (size_t)(s - p->stages);
        memmove(s, s + 1, (p->stage_count - i - 1) * sizeof *s);
        p->stage_count--;
        sb_respond_json(resp, 204, NULL);
    } else {
        hs_error(resp, 405, NULL, "method not allowed");
    }
}

bool hs_pipelines_handle(const struct sb_request *req, const char *rest, struct sb_response *resp)
{
    enum hs_type t;
    int taken = hs_take_type(&rest, &t);
    if (taken == 0)
        return false;
    if (taken < 0 || t != HS_DEAL) {
        hs_error(resp, 400, "VALIDATION_ERROR", "The sandbox only has pipelines for deals");
        return true;
    }
    size_t n;
    if (*rest == '\0') {
        if (strcmp(req->method, "GET") == 0) {
            cJSON *root = cJSON_CreateObject();
            cJSON *results = cJSON_AddArrayToObject(root, "results");
            for (size_t i = 0; i < pipeline_count; i++)
                cJSON_AddItemToArray(results, pipeline_json(&pipelines[i]));
            sb_respond_json(resp, 200, root);
            return true;
        }
        if (strcmp(req->method, "POST") == 0) {
            create_pipeline(req, resp);
            return true;
        }
        return false;
    }
    char id[128];
    n = strcspn(rest + 1, "/");
    if (n == 0 || n >= sizeof id)
        return false;
    memcpy(id, rest + 1, n);
    id[n] = '\0';
    struct pipeline *p = pipeline_find(id);
    if (!p) {
        hs_errorf(resp, 404, "OBJECT_NOT_FOUND", "Unable to find pipeline %s", id);
        return true;
    }
    rest += 1 + n;
    if (strncmp(rest, "/stages", 7) == 0) {
        handle_stages(req, p, rest + 7, resp);
        return true;
    }
    if (*rest != '\0')
        return false;
    if (strcmp(req->method, "GET") == 0)
        sb_respond_json(resp, 200, pipeline_json(p));
    else if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0)
        update_pipeline(req, p, resp);
    else if (strcmp(req->method, "DELETE") == 0)
        delete_pipeline(req, p, resp);
    else
        return false;
    return true;
}
