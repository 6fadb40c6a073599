/* hs_assoc.c - HubSpot associations between contacts, companies and deals: the HubSpot-defined
 * type ids of reference 4.3 (each with its reverse, primary company types adding the unlabelled
 * ones), one primary company per record, v4 single and batch endpoints, the v3 read, the
 * associations= part of object reads, and associationChange events once per direction. */
#include "hs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct type_def {
    int id;
    enum hs_type from;
    enum hs_type to;
    int reverse;
    int unlabelled; /* for a primary type: the unlabelled type it implies; else 0 */
    const char *name;
};

static const struct type_def type_defs[] = {
    {3, HS_DEAL, HS_CONTACT, 4, 0, "deal_to_contact"},
    {4, HS_CONTACT, HS_DEAL, 3, 0, "contact_to_deal"},
    {5, HS_DEAL, HS_COMPANY, 6, 341, "deal_to_company"},
    {6, HS_COMPANY, HS_DEAL, 5, 342, "company_to_deal"},
    {341, HS_DEAL, HS_COMPANY, 342, 0, "deal_to_company_unlabeled"},
    {342, HS_COMPANY, HS_DEAL, 341, 0, "company_to_deal_unlabeled"},
    {1, HS_CONTACT, HS_COMPANY, 2, 279, "contact_to_company"},
    {2, HS_COMPANY, HS_CONTACT, 1, 280, "company_to_contact"},
    {279, HS_CONTACT, HS_COMPANY, 280, 0, "contact_to_company_unlabeled"},
    {280, HS_COMPANY, HS_CONTACT, 279, 0, "company_to_contact_unlabeled"},
};

struct edge {
    enum hs_type from;
    int64_t from_id;
    enum hs_type to;
    int64_t to_id;
    int type_id;
};

static struct edge *edges;
static size_t edge_count;
static size_t edge_cap;

static const struct type_def *type_find(int id)
{
    for (size_t i = 0; i < sizeof type_defs / sizeof type_defs[0]; i++)
        if (type_defs[i].id == id)
            return &type_defs[i];
    return NULL;
}

bool hs_assoc_type_target(enum hs_type from, int type_id, enum hs_type *to)
{
    const struct type_def *d = type_find(type_id);
    if (!d || d->from != from)
        return false;
    *to = d->to;
    return true;
}

int hs_assoc_default_type(enum hs_type ft, enum hs_type tt)
{
    for (size_t i = 0; i < sizeof type_defs / sizeof type_defs[0]; i++) {
        const struct type_def *d = &type_defs[i];
        bool is_primary_kind = type_find(d->reverse)->unlabelled != 0 || d->unlabelled != 0;
        if (d->from == ft && d->to == tt && !is_primary_kind)
            return d->id;
    }
    for (size_t i = 0; i < sizeof type_defs / sizeof type_defs[0]; i++) {
        const struct type_def *d = &type_defs[i];
        if (d->from == ft && d->to == tt && d->unlabelled == 0)
            return d->id;
    }
    return -1;
}

static bool is_primary(int type_id)
{
    const struct type_def *d = type_find(type_id);
    return d && d->unlabelled != 0;
}

static bool edge_exists(enum hs_type ft, int64_t fid, enum hs_type tt, int64_t tid, int type_id)
{
    for (size_t i = 0; i < edge_count; i++) {
        const struct edge *e = &edges[i];
        if (e->from == ft && e->from_id == fid && e->to == tt && e->to_id == tid &&
            e->type_id == type_id)
            return true;
    }
    return false;
}

static void edge_push(enum hs_type ft, int64_t fid, enum hs_type tt, int64_t tid, int type_id)
{
    if (edge_count == edge_cap) {
        edge_cap = edge_cap ? edge_cap * 2 : 64;
        edges = xrealloc(edges, edge_cap * sizeof *edges);
    }
    edges[edge_count++] = (struct edge){ft, fid, tt, tid, type_id};
}

/* Removes one typed edge and its reverse; fires the two removal events. */
static void remove_pair(enum hs_type ft, int64_t fid, enum hs_type tt, int64_t tid, int type_id,
                        enum hs_actor actor)
{
    int reverse = type_find(type_id)->reverse;
    size_t keep = 0;
    for (size_t i = 0; i < edge_count; i++) {
        const struct edge *e = &edges[i];
        bool is_this = e->from == ft && e->from_id == fid && e->to == tt && e->to_id == tid &&
                       e->type_id == type_id;
        bool is_rev = e->from == tt && e->from_id == tid && e->to == ft && e->to_id == fid &&
                      e->type_id == reverse;
        if (!is_this && !is_rev)
            edges[keep++] = edges[i];
    }
    edge_count = keep;
    hs_webhook_assoc_event(ft, fid, tt, tid, is_primary(type_id), true, actor);
    hs_webhook_assoc_event(tt, tid, ft, fid, is_primary(reverse), true, actor);
}

/* Adds one typed edge and its reverse when missing; fires the two creation events. */
static void add_pair(enum hs_type ft, int64_t fid, enum hs_type tt, int64_t tid, int type_id,
                     enum hs_actor actor)
{
    if (edge_exists(ft, fid, tt, tid, type_id))
        return;
    int reverse = type_find(type_id)->reverse;
    edge_push(ft, fid, tt, tid, type_id);
    edge_push(tt, tid, ft, fid, reverse);
    hs_webhook_assoc_event(ft, fid, tt, tid, is_primary(type_id), false, actor);
    hs_webhook_assoc_event(tt, tid, ft, fid, is_primary(reverse), false, actor);
}

bool hs_assoc_add(enum hs_type ft, int64_t fid, enum hs_type tt, int64_t tid, int type_id,
                  enum hs_actor actor, const char **msg)
{
    const struct type_def *d = type_find(type_id);
    if (!d || d->from != ft || d->to != tt) {
        *msg = "invalid association type id for these object types";
        return false;
    }
    if (d->unlabelled) {
        /* one primary company per record: a new primary replaces the old one, whose
         * unlabelled association stays */
        for (size_t i = 0; i < edge_count; i++) {
            const struct edge *e = &edges[i];
            if (e->from == ft && e->from_id == fid && e->type_id == type_id && e->to_id != tid) {
                remove_pair(ft, fid, e->to, e->to_id, type_id, actor);
                break;
            }
        }
        add_pair(ft, fid, tt, tid, d->unlabelled, actor);
    }
    add_pair(ft, fid, tt, tid, type_id, actor);
    hs_rollups_refresh(ft, fid);
    hs_rollups_refresh(tt, tid);
    return true;
}

int hs_assoc_remove_all(enum hs_type ft, int64_t fid, enum hs_type tt, int64_t tid,
                        enum hs_actor actor)
{
    int removed = 0;
    for (size_t i = 0; i < edge_count;) {
        const struct edge *e = &edges[i];
        if (e->from == ft && e->from_id == fid && e->to == tt && e->to_id == tid) {
            remove_pair(ft, fid, tt, tid, e->type_id, actor);
            removed++;
            i = 0; /* remove_pair compacts the array */
            continue;
        }
        i++;
    }
    hs_rollups_refresh(ft, fid);
    hs_rollups_refresh(tt, tid);
    return removed;
}

/* Removes one specific type (and its reverse) between two records; false when absent. */
static bool remove_type(enum hs_type ft, int64_t fid, enum hs_type tt, int64_t tid, int type_id,
                        enum hs_actor actor)
{
    if (!edge_exists(ft, fid, tt, tid, type_id))
        return false;
    remove_pair(ft, fid, tt, tid, type_id, actor);
    hs_rollups_refresh(ft, fid);
    hs_rollups_refresh(tt, tid);
    return true;
}

void hs_assoc_forget(enum hs_type t, int64_t id)
{
    size_t keep = 0;
    for (size_t i = 0; i < edge_count; i++) {
        const struct edge *e = &edges[i];
        if ((e->from == t && e->from_id == id) || (e->to == t && e->to_id == id))
            continue;
        edges[keep++] = edges[i];
    }
    edge_count = keep;
}

void hs_assoc_reset(void)
{
    free(edges);
    edges = NULL;
    edge_count = 0;
    edge_cap = 0;
}

struct target {
    int64_t id;
    size_t order;
};

static int by_id_then_order(const void *a, const void *b)
{
    const struct target *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int by_order(const void *a, const void *b)
{
    const struct target *x = a, *y = b;
    return x->order < y->order ? -1 : x->order > y->order;
}

cJSON *hs_assoc_targets(enum hs_type t, int64_t id, enum hs_type tt)
{
    /* Several labels of one pair are several edges: each target once, in the order first
     * associated (a contact of a thousand deals must not cost a million comparisons). */
    size_t n = 0;
    struct target *found = NULL;
    for (size_t i = 0; i < edge_count; i++) {
        const struct edge *e = &edges[i];
        if (e->from != t || e->from_id != id || e->to != tt)
            continue;
        if (n % 64 == 0)
            found = xrealloc(found, (n + 64) * sizeof(*found));
        found[n] = (struct target){e->to_id, n};
        n++;
    }
    size_t kept = 0;
    if (n > 0) { /* qsort takes no NULL array, even empty (UBSan) */
        qsort(found, n, sizeof(*found), by_id_then_order);
        for (size_t i = 0; i < n; i++)
            if (i == 0 || found[i].id != found[i - 1].id)
                found[kept++] = found[i];
        qsort(found, kept, sizeof(*found), by_order);
    }
    cJSON *ids = cJSON_CreateArray();
    for (size_t i = 0; i < kept; i++)
        cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)found[i].id));
    free(found);
    return ids;
}

static void id_string(int64_t id, char out[32])
{
    snprintf(out, 32, "%lld", (long long)id);
}

/* [{id, type}] of the v3 shape, one per typed association from (t, id) to type tt. */
static cJSON *v3_results(enum hs_type t, int64_t id, enum hs_type tt)
{
    cJSON *results = cJSON_CreateArray();
    for (size_t i = 0; i < edge_count; i++) {
        const struct edge *e = &edges[i];
        if (e->from != t || e->from_id != id || e->to != tt)
            continue;
        char to_id[32];
        id_string(e->to_id, to_id);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "id", to_id);
        cJSON_AddStringToObject(r, "type", type_find(e->type_id)->name);
        cJSON_AddItemToArray(results, r);
    }
    return results;
}

cJSON *hs_assoc_object_json(enum hs_type t, int64_t id, const cJSON *names)
{
    cJSON *root = cJSON_CreateObject();
    const cJSON *n;
    cJSON_ArrayForEach(n, names)
    {
        enum hs_type tt;
        if (!cJSON_IsString(n) || !hs_type_parse(n->valuestring, &tt) ||
            cJSON_GetObjectItemCaseSensitive(root, hs_type_plural(tt)))
            continue;
        cJSON *results = v3_results(t, id, tt);
        if (cJSON_GetArraySize(results) == 0) {
            cJSON_Delete(results);
            continue;
        }
        cJSON *group = cJSON_AddObjectToObject(root, hs_type_plural(tt));
        cJSON_AddItemToObject(group, "results", results);
    }
    if (!root->child) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

cJSON *hs_assoc_all_json(enum hs_type t, int64_t id)
{
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; i < edge_count; i++) {
        const struct edge *e = &edges[i];
        if (e->from != t || e->from_id != id)
            continue;
        char to_id[32];
        id_string(e->to_id, to_id);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "toObjectType", hs_type_plural(e->to));
        cJSON_AddStringToObject(o, "toObjectId", to_id);
        cJSON_AddNumberToObject(o, "associationTypeId", e->type_id);
        cJSON_AddStringToObject(o, "type", type_find(e->type_id)->name);
        cJSON_AddItemToArray(list, o);
    }
    return list;
}

/* [{category, typeId, label}] of every type from (t,id) to (tt,tid). */
static cJSON *types_between(enum hs_type t, int64_t id, enum hs_type tt, int64_t tid)
{
    cJSON *types = cJSON_CreateArray();
    for (size_t i = 0; i < edge_count; i++) {
        const struct edge *e = &edges[i];
        if (e->from != t || e->from_id != id || e->to != tt || e->to_id != tid)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "category", "HUBSPOT_DEFINED");
        cJSON_AddNumberToObject(o, "typeId", e->type_id);
        if (is_primary(e->type_id))
            cJSON_AddStringToObject(o, "label", "Primary");
        else
            cJSON_AddNullToObject(o, "label");
        cJSON_AddItemToArray(types, o);
    }
    return types;
}

static cJSON *labels_between(enum hs_type t, int64_t id, enum hs_type tt, int64_t tid)
{
    cJSON *labels = cJSON_CreateArray();
    for (size_t i = 0; i < edge_count; i++) {
        const struct edge *e = &edges[i];
        if (e->from == t && e->from_id == id && e->to == tt && e->to_id == tid &&
            is_primary(e->type_id))
            cJSON_AddItemToArray(labels, cJSON_CreateString("Primary"));
    }
    return labels;
}

/* [{toObjectId, associationTypes}] for every record of type tt linked to (t, id). */
static cJSON *grouped_targets(enum hs_type t, int64_t id, enum hs_type tt)
{
    cJSON *targets = hs_assoc_targets(t, id, tt);
    cJSON *list = cJSON_CreateArray();
    const cJSON *x;
    cJSON_ArrayForEach(x, targets)
    {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "toObjectId", x->valuedouble);
        cJSON_AddItemToObject(o, "associationTypes",
                              types_between(t, id, tt, (int64_t)x->valuedouble));
        cJSON_AddItemToArray(list, o);
    }
    cJSON_Delete(targets);
    return list;
}

static cJSON *label_result(enum hs_type t, int64_t id, enum hs_type tt, int64_t tid)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "fromObjectTypeId", hs_type_id(t));
    cJSON_AddNumberToObject(o, "fromObjectId", (double)id);
    cJSON_AddStringToObject(o, "toObjectTypeId", hs_type_id(tt));
    cJSON_AddNumberToObject(o, "toObjectId", (double)tid);
    cJSON_AddItemToObject(o, "labels", labels_between(t, id, tt, tid));
    return o;
}

/* Checks [{associationCategory, associationTypeId}] for the pair; message or NULL. */
static const char *check_types(enum hs_type t, enum hs_type tt, const cJSON *types)
{
    if (!cJSON_IsArray(types) || cJSON_GetArraySize(types) == 0)
        return "association types are required";
    const cJSON *ty;
    cJSON_ArrayForEach(ty, types)
    {
        const cJSON *cat = cJSON_GetObjectItemCaseSensitive(ty, "associationCategory");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(ty, "associationTypeId");
        if (!cJSON_IsString(cat) || !cJSON_IsNumber(id))
            return "each type needs associationCategory and associationTypeId";
        if (strcmp(cat->valuestring, "HUBSPOT_DEFINED") != 0)
            return "only HUBSPOT_DEFINED association types exist in this account";
        const struct type_def *d = type_find(id->valueint);
        if (!d || d->from != t || d->to != tt)
            return "invalid association type id for these object types";
    }
    return NULL;
}

static void add_types(enum hs_type t, int64_t id, enum hs_type tt, int64_t tid, const cJSON *types)
{
    const char *msg;
    const cJSON *ty;
    cJSON_ArrayForEach(ty, types)
    {
        int type_id = cJSON_GetObjectItemCaseSensitive(ty, "associationTypeId")->valueint;
        (void)hs_assoc_add(t, id, tt, tid, type_id, HS_ACTOR_INTEGRATION, &msg);
    }
}

/* rest: "/associations/{toType}[/{toId}]" or "/associations/default/{toType}/{toId}". */
bool hs_assoc_record_handle(const struct sb_request *req, int version, enum hs_type t, int64_t id,
                            const char *rest, struct sb_response *resp)
{
    if (strncmp(rest, "/associations/", 14) != 0)
        return false;
    rest += 14;
    bool is_default = strncmp(rest, "default/", 8) == 0;
    if (is_default)
        rest += 8;
    enum hs_type tt;
    if (hs_take_type(&rest, &tt) <= 0) {
        hs_error(resp, 400, "VALIDATION_ERROR", "Unable to infer object type to associate");
        return true;
    }
    int64_t tid = 0;
    bool has_tid = *rest == '/' && util_parse_i64(rest + 1, &tid);
    if (*rest && !has_tid)
        return false;
    struct hs_object *from = hs_object_find(t, id, false);

    if (!has_tid && strcmp(req->method, "GET") == 0) {
        if (!from) {
            hs_error(resp, 404, "OBJECT_NOT_FOUND", "resource not found");
            return true;
        }
        cJSON *root = cJSON_CreateObject();
        if (version == 3) {
            cJSON_AddItemToObject(root, "results", v3_results(t, id, tt));
        } else {
            cJSON_AddItemToObject(root, "results", grouped_targets(t, id, tt));
        }
        sb_respond_json(resp, 200, root);
        return true;
    }
    if (version != 4 || !has_tid)
        return false;
    if (!from || !hs_object_find(tt, tid, false)) {
        hs_errorf(resp, 404, "OBJECT_NOT_FOUND", "No %s with id %lld or no %s with id %lld",
                  hs_type_singular(t), (long long)id, hs_type_singular(tt), (long long)tid);
        return true;
    }
    if (strcmp(req->method, "DELETE") == 0 && !is_default) {
        (void)hs_assoc_remove_all(t, id, tt, tid, HS_ACTOR_INTEGRATION);
        sb_respond_json(resp, 204, NULL);
        return true;
    }
    if (strcmp(req->method, "PUT") != 0)
        return false;
    if (is_default) {
        int type_id = hs_assoc_default_type(t, tt);
        const char *msg;
        if (type_id < 0 || !hs_assoc_add(t, id, tt, tid, type_id, HS_ACTOR_INTEGRATION, &msg)) {
            hs_error(resp, 400, "VALIDATION_ERROR", "no default association for these types");
            return true;
        }
        char iso[32], a[32], b[32];
        hs_iso(sb_now_ms(), iso);
        id_string(id, a);
        id_string(tid, b);
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "status", "COMPLETE");
        cJSON *results = cJSON_AddArrayToObject(root, "results");
        int pair[2] = {type_id, type_find(type_id)->reverse};
        for (int i = 0; i < 2; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "from"), "id", i ? b : a);
            cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "to"), "id", i ? a : b);
            cJSON *spec = cJSON_AddObjectToObject(r, "associationSpec");
            cJSON_AddStringToObject(spec, "associationCategory", "HUBSPOT_DEFINED");
            cJSON_AddNumberToObject(spec, "associationTypeId", pair[i]);
            cJSON_AddItemToArray(results, r);
        }
        cJSON_AddStringToObject(root, "startedAt", iso);
        cJSON_AddStringToObject(root, "completedAt", iso);
        sb_respond_json(resp, 200, root);
        return true;
    }
    cJSON *body = hs_parse_body(req, resp);
    if (!body)
        return true;
    const char *msg = check_types(t, tt, body);
    if (msg) {
        hs_error(resp, 400, "VALIDATION_ERROR", msg);
    } else {
        add_types(t, id, tt, tid, body);
        sb_respond_json(resp, 201, label_result(t, id, tt, tid));
    }
    cJSON_Delete(body);
    return true;
}

/* ---- v4 batch: /crm/v4/associations/{from}/{to}/batch/{op} ---- */

static bool ref_id(const cJSON *ref, int64_t *out)
{
    char *s = hs_value_string(cJSON_GetObjectItemCaseSensitive(ref, "id"));
    bool ok = s && util_parse_i64(s, out);
    free(s);
    return ok;
}

static cJSON *item_error(const char *category, const char *sub, const char *message, int64_t id)
{
    char text[32];
    id_string(id, text);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "status", "error");
    cJSON_AddStringToObject(e, "category", category);
    if (sub)
        cJSON_AddStringToObject(e, "subCategory", sub);
    cJSON_AddStringToObject(e, "message", message);
    cJSON *ids = cJSON_CreateArray();
    cJSON_AddItemToArray(ids, cJSON_CreateString(text));
    cJSON_AddItemToObject(cJSON_AddObjectToObject(e, "context"), "fromObjectId", ids);
    cJSON_AddArrayToObject(e, "errors");
    cJSON_AddObjectToObject(e, "links");
    return e;
}

static void batch_op(const char *op, enum hs_type ft, enum hs_type tt, const cJSON *inputs,
                     struct sb_response *resp)
{
    cJSON *results;
    cJSON *root = hs_batch_root(sb_now_ms(), &results);
    cJSON *errors = cJSON_CreateArray();
    const cJSON *in;
    int ok_status = 200;
    bool is_create = strcmp(op, "create") == 0;
    bool is_labels_archive = strcmp(op, "labels/archive") == 0;

    /* a type that does not fit the pair rejects the whole request */
    const cJSON *typed = (is_create || is_labels_archive) ? inputs : NULL;
    cJSON_ArrayForEach(in, typed)
    {
        const char *msg = check_types(ft, tt, cJSON_GetObjectItemCaseSensitive(in, "types"));
        if (msg) {
            cJSON_Delete(errors);
            cJSON_Delete(root);
            hs_error(resp, 400, "VALIDATION_ERROR", msg);
            return;
        }
    }
    cJSON_ArrayForEach(in, inputs)
    {
        int64_t fid = 0, tid = 0;
        bool has_from = ref_id(cJSON_GetObjectItemCaseSensitive(in, "from"), &fid);
        if (strcmp(op, "read") == 0) {
            if (!ref_id(in, &fid)) {
                cJSON_AddItemToArray(errors,
                                     item_error("VALIDATION_ERROR", NULL, "id is required", 0));
                continue;
            }
            cJSON *to = grouped_targets(ft, fid, tt);
            if (cJSON_GetArraySize(to) == 0) {
                cJSON_Delete(to);
                char *m = xasprintf("No %s is associated with %s %lld.", hs_type_singular(tt),
                                    hs_type_singular(ft), (long long)fid);
                cJSON_AddItemToArray(errors,
                                     item_error("OBJECT_NOT_FOUND",
                                                "crm.associations.NO_ASSOCIATIONS_FOUND", m, fid));
                free(m);
                continue;
            }
            char text[32];
            id_string(fid, text);
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "from"), "id", text);
            cJSON_AddItemToObject(r, "to", to);
            cJSON_AddItemToArray(results, r);
            continue;
        }
        if (strcmp(op, "archive") == 0) {
            const cJSON *to;
            cJSON_ArrayForEach(to, cJSON_GetObjectItemCaseSensitive(in, "to"))
            {
                if (has_from && ref_id(to, &tid))
                    (void)hs_assoc_remove_all(ft, fid, tt, tid, HS_ACTOR_INTEGRATION);
            }
            ok_status = 204;
            continue;
        }
        bool has_to = ref_id(cJSON_GetObjectItemCaseSensitive(in, "to"), &tid);
        if (!has_from || !has_to || !hs_object_find(ft, fid, false) ||
            !hs_object_find(tt, tid, false)) {
            char *m = xasprintf("Could not find %s %lld or %s %lld", hs_type_singular(ft),
                                (long long)fid, hs_type_singular(tt), (long long)tid);
            cJSON_AddItemToArray(errors, item_error("OBJECT_NOT_FOUND", NULL, m, fid));
            free(m);
            continue;
        }
        const cJSON *types = cJSON_GetObjectItemCaseSensitive(in, "types");
        if (is_labels_archive) {
            const cJSON *ty;
            cJSON_ArrayForEach(ty, types)(void)
                remove_type(ft, fid, tt, tid,
                            cJSON_GetObjectItemCaseSensitive(ty, "associationTypeId")->valueint,
                            HS_ACTOR_INTEGRATION);
            ok_status = 204;
        } else if (is_create) {
            add_types(ft, fid, tt, tid, types);
            cJSON_AddItemToArray(results, label_result(ft, fid, tt, tid));
            ok_status = 201;
        } else { /* associate/default */
            const char *msg;
            int type_id = hs_assoc_default_type(ft, tt);
            (void)hs_assoc_add(ft, fid, tt, tid, type_id, HS_ACTOR_INTEGRATION, &msg);
            char a[32], b[32];
            id_string(fid, a);
            id_string(tid, b);
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "from"), "id", a);
            cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "to"), "id", b);
            cJSON *spec = cJSON_AddObjectToObject(r, "associationSpec");
            cJSON_AddStringToObject(spec, "associationCategory", "HUBSPOT_DEFINED");
            cJSON_AddNumberToObject(spec, "associationTypeId", type_id);
            cJSON_AddItemToArray(results, r);
        }
    }
    if (ok_status == 204 && cJSON_GetArraySize(errors) == 0) {
        cJSON_Delete(errors);
        cJSON_Delete(root);
        sb_respond_json(resp, 204, NULL);
        return;
    }
    hs_batch_respond(resp, root, errors, ok_status);
}

bool hs_assoc_v4_handle(const struct sb_request *req, const char *rest, struct sb_response *resp)
{
    enum hs_type ft, tt;
    if (hs_take_type(&rest, &ft) <= 0 || *rest != '/')
        return false;
    rest++;
    if (hs_take_type(&rest, &tt) <= 0)
        return false;
    if (strncmp(rest, "/batch/", 7) != 0 || strcmp(req->method, "POST") != 0)
        return false;
    const char *op = rest + 7;
    if (strcmp(op, "associate/default") != 0 && strcmp(op, "create") != 0 &&
        strcmp(op, "read") != 0 && strcmp(op, "archive") != 0 && strcmp(op, "labels/archive") != 0)
        return false;
    if (hs_assoc_default_type(ft, tt) < 0) {
        hs_error(resp, 400, "VALIDATION_ERROR", "these object types cannot be associated");
        return true;
    }
    cJSON *body = hs_parse_body(req, resp);
    if (!body)
        return true;
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(body, "inputs");
    /* UNVERIFIED: HubSpot does not document the v4 batch maximum; 100 like CRM batches */
    int64_t max = sb_setting_int("hubspot.assoc_batch_max", 100);
    if (!cJSON_IsArray(inputs))
        hs_error(resp, 400, "VALIDATION_ERROR", "inputs is required and must be an array");
    else if (cJSON_GetArraySize(inputs) > max)
        hs_errorf(resp, 400, "VALIDATION_ERROR",
                  "Batch input limit exceeded: %d inputs were sent, the maximum is %lld",
                  cJSON_GetArraySize(inputs), (long long)max);
    else {
        /* Each contact or deal the batch touches has its calculated properties recomputed once,
         * at the end (the answers carry none). */
        hs_rollups_defer();
        batch_op(op, ft, tt, inputs, resp);
        hs_rollups_flush();
    }
    cJSON_Delete(body);
    return true;
}
