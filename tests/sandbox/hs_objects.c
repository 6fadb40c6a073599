/* hs_objects.c - HubSpot CRM records (contacts, companies, deals): storage, validated writes
 * (schema, pipelines, unique values), the v3 object endpoints including batch, the JSON shapes,
 * and the calculated roll-up properties. Search is in hs_search.c, associations in hs_assoc.c. */
#include "hs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"
#include "vindex.h"

#define BATCH_MAX 100
#define LIST_MAX 100
/* A batch read that asks for property histories takes 50 inputs at most (HubSpot's answer to
 * more, quoted in respond_bad below). */
#define HISTORY_BATCH_MAX 50

static struct hs_object **objects;
static size_t object_count;
static size_t object_cap;
static int64_t next_object_id;
/* "type\x1fname\x1fvalue" of unique properties and contact e-mails -> records. */
static struct vindex *by_value;

static bool is_indexed(enum hs_type t, const char *name)
{
    const struct hs_prop *p = hs_prop_find(t, name);
    return (t == HS_CONTACT && strcmp(name, "email") == 0) || (p && hs_prop_is_unique(p));
}

static char *value_key(enum hs_type t, const char *name, const char *value)
{
    return xasprintf("%d\x1f%s\x1f%s", (int)t, name, value);
}

static const char *modified_prop(enum hs_type t)
{
    return t == HS_CONTACT ? "lastmodifieddate" : "hs_lastmodifieddate";
}

static const char *prop_value(const struct hs_object *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o->props, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void prop_set(struct hs_object *o, const char *name, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o->props, name);
    cJSON_AddStringToObject(o->props, name, value);
    if (*value && is_indexed(o->type, name)) {
        char *key = value_key(o->type, name, value);
        if (!by_value)
            by_value = vindex_new();
        vindex_add(by_value, key, o);
        free(key);
    }
}

/* objects[] holds records in the order they were made, so by increasing id (ids come from one
 * counter, and a record is never taken out before a reset): found by bisection. A scan per
 * lookup made a batch of 100 against 70,000 records slow enough that dealsync's calls timed out
 * in the 10,000-record import benchmark, a retry the real API would not cause. */
struct hs_object *hs_object_find(enum hs_type t, int64_t id, bool with_archived)
{
    size_t lo = 0, hi = object_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (objects[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    struct hs_object *o = lo < object_count ? objects[lo] : NULL;
    return o && o->id == id && o->type == t && (with_archived || !o->is_archived) ? o : NULL;
}

/* A live record whose property name equals value (email: case-insensitively). name is a
 * unique property or the contact e-mail (found through the index of those). */
static struct hs_object *find_by_value(enum hs_type t, const char *name, const char *value,
                                       const struct hs_object *except)
{
    bool is_email = strcmp(name, "email") == 0;
    char *key = value_key(t, name, value);
    void *const *found = NULL;
    size_t n = vindex_get(by_value, key, &found);
    free(key);
    for (size_t i = 0; i < n; i++) {
        struct hs_object *o = found[i];
        if (o->type != t || o->is_archived || o == except)
            continue;
        const char *v = prop_value(o, name);
        if (v && *v && (is_email ? strcasecmp(v, value) == 0 : strcmp(v, value) == 0))
            return o;
    }
    return NULL;
}

bool hs_objects_use_stage(const char *pipeline_id, const char *stage_id)
{
    for (size_t i = 0; i < object_count; i++) {
        const struct hs_object *o = objects[i];
        if (o->type != HS_DEAL || o->is_archived)
            continue;
        const char *p = prop_value(o, "pipeline");
        const char *s = prop_value(o, "dealstage");
        if (p && strcmp(p, pipeline_id) == 0 && (!stage_id || (s && strcmp(s, stage_id) == 0)))
            return true;
    }
    return false;
}

/* ---- validated writes ---- */

/* Deal rules on the merged result: a stage is required and must belong to the pipeline. */
static bool check_deal(const struct hs_object *existing, cJSON *norm, cJSON *errors)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(norm, "pipeline");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(norm, "dealstage");
    const char *pipeline = p ? p->valuestring : existing ? prop_value(existing, "pipeline") : NULL;
    const char *stage = s ? s->valuestring : existing ? prop_value(existing, "dealstage") : NULL;
    char msg[512];
    if (!existing && (!pipeline || !*pipeline)) {
        /* the default is used only when the portal has a single pipeline (reference 4.1) */
        if (hs_pipeline_count() != 1) {
            hs_prop_error(errors, "pipeline", "REQUIRED_PROPERTY",
                          "pipeline is required when the account has several deal pipelines");
            return false;
        }
        pipeline = hs_pipeline_first_id();
        cJSON_DeleteItemFromObjectCaseSensitive(norm, "pipeline");
        cJSON_AddStringToObject(norm, "pipeline", pipeline);
    }
    if (!stage || !*stage) {
        hs_prop_error(errors, "dealstage", "REQUIRED_PROPERTY", "dealstage is required for deals");
        return false;
    }
    if (pipeline && *pipeline && !hs_stage_in_pipeline(pipeline, stage)) {
        snprintf(msg, sizeof msg, "%.100s was not one of the allowed options for pipeline %.100s",
                 stage, pipeline);
        hs_prop_error(errors, "dealstage", "INVALID_OPTION", msg);
        return false;
    }
    return true;
}

/* Checks a write of props (an object of name -> value) to existing (NULL = create). On success
 * *norm is the normalised {name: string} to apply. *status is 400 or 409 on failure. */
static bool validate_write(enum hs_type t, const struct hs_object *existing, const cJSON *props,
                           cJSON *errors, int *status, cJSON **norm)
{
    cJSON *out = cJSON_CreateObject();
    const cJSON *item;
    bool ok = true;
    *status = 400;
    if (props && !cJSON_IsObject(props)) {
        hs_prop_error(errors, "properties", "INVALID_INPUT", "properties must be an object");
        cJSON_Delete(out);
        return false;
    }
    cJSON_ArrayForEach(item, props)
    {
        char *value = hs_value_string(item);
        char *stored = NULL;
        if (!value) {
            hs_prop_error(errors, item->string, "INVALID_INPUT", "property values must be strings");
            ok = false;
        } else if (hs_prop_check(t, item->string, value, &stored, errors)) {
            cJSON_DeleteItemFromObjectCaseSensitive(out, item->string);
            cJSON_AddStringToObject(out, item->string, stored);
        } else {
            ok = false;
        }
        free(stored);
        free(value);
    }
    if (ok && t == HS_DEAL)
        ok = check_deal(existing, out, errors);
    if (ok && !existing && t == HS_DEAL) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(out, "dealname");
        if (!name || !*name->valuestring) {
            hs_prop_error(errors, "dealname", "REQUIRED_PROPERTY",
                          "dealname is required for deals");
            ok = false;
        }
    }
    /* unique values: custom hasUniqueValue properties, and contact email (409 as HubSpot) */
    const cJSON *checked = ok ? out : NULL;
    cJSON_ArrayForEach(item, checked)
    {
        const struct hs_prop *p = hs_prop_find(t, item->string);
        bool is_email = t == HS_CONTACT && strcmp(item->string, "email") == 0;
        if (!*item->valuestring || !(is_email || (p && hs_prop_is_unique(p))))
            continue;
        const struct hs_object *other = find_by_value(t, item->string, item->valuestring, existing);
        if (!other)
            continue;
        char msg[512];
        if (is_email)
            snprintf(msg, sizeof msg, "Contact already exists. Existing ID: %lld",
                     (long long)other->id);
        else
            snprintf(msg, sizeof msg,
                     "%.100s already has a value of %.200s on another object (id: %lld)",
                     item->string, item->valuestring, (long long)other->id);
        hs_prop_error(errors, item->string, is_email ? "CONTACT_EXISTS" : "INVALID_UNIQUE_VALUE",
                      msg);
        *status = 409;
        ok = false;
        break;
    }
    if (!ok) {
        cJSON_Delete(out);
        return false;
    }
    *norm = out;
    return true;
}

void hs_respond_invalid(struct sb_response *resp, int status, cJSON *errors)
{
    if (status == 409) {
        const cJSON *first = cJSON_GetArrayItem(errors, 0);
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(first, "message");
        hs_error(resp, 409, "CONFLICT", cJSON_IsString(msg) ? msg->valuestring : "conflict");
        return;
    }
    char *list = cJSON_PrintUnformatted(errors);
    char *msg = xasprintf("Property values were not valid: %s", list);
    hs_error(resp, status, "VALIDATION_ERROR", msg);
    free(msg);
    free(list);
}

static void history_add(struct hs_object *o, const char *name, const char *value,
                        enum hs_actor actor)
{
    if (o->history_count == o->history_cap) {
        o->history_cap = o->history_cap ? o->history_cap * 2 : 8;
        o->history = xrealloc(o->history, o->history_cap * sizeof *o->history);
    }
    o->history[o->history_count++] =
        (struct hs_change){xstrdup(name), xstrdup(value), sb_now_ms(), actor};
}

/* Events for name changing to value ("" = cleared); hs_lastmodifieddate cannot be subscribed. */
static void apply_props(struct hs_object *o, const cJSON *norm, enum hs_actor actor, bool is_new)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, norm)
    {
        const char *old = prop_value(o, item->string);
        if (old && strcmp(old, item->valuestring) == 0)
            continue;
        if (!old && !*item->valuestring && !is_new)
            continue;
        prop_set(o, item->string, item->valuestring);
        history_add(o, item->string, item->valuestring, actor);
        hs_webhook_property_event(o->type, o->id, item->string, item->valuestring, actor);
    }
}

static void touch(struct hs_object *o)
{
    char iso[32];
    o->updated_at = sb_now_ms();
    hs_iso(o->updated_at, iso);
    prop_set(o, modified_prop(o->type), iso);
}

struct hs_object *hs_object_create(enum hs_type t, const cJSON *props, enum hs_actor actor,
                                   cJSON *errors, int *status)
{
    cJSON *norm = NULL;
    if (!validate_write(t, NULL, props, errors, status, &norm))
        return NULL;
    struct hs_object *o = xcalloc(1, sizeof *o);
    o->id = next_object_id++;
    o->type = t;
    o->props = cJSON_CreateObject();
    o->created_at = sb_now_ms();
    if (object_count == object_cap) {
        object_cap = object_cap ? object_cap * 2 : 64;
        objects = xrealloc(objects, object_cap * sizeof *objects);
    }
    objects[object_count++] = o;

    char iso[32], id[32];
    const cJSON *given_create = cJSON_GetObjectItemCaseSensitive(norm, "createdate");
    int64_t created_ms;
    if (given_create && *given_create->valuestring &&
        hs_parse_time(given_create->valuestring, &created_ms))
        o->created_at = created_ms;
    hs_iso(o->created_at, iso);
    snprintf(id, sizeof id, "%lld", (long long)o->id);
    prop_set(o, "hs_object_id", id);
    prop_set(o, "createdate", iso);
    touch(o);
    hs_webhook_object_event(t, o->id, "creation", actor);
    apply_props(o, norm, actor, true);
    cJSON_Delete(norm);
    if (t == HS_CONTACT || t == HS_DEAL)
        hs_rollups_refresh(t, o->id);
    return o;
}

bool hs_object_update(struct hs_object *o, const cJSON *props, enum hs_actor actor, cJSON *errors,
                      int *status)
{
    cJSON *norm = NULL;
    if (!validate_write(o->type, o, props, errors, status, &norm))
        return false;
    apply_props(o, norm, actor, false);
    touch(o);
    cJSON_Delete(norm);
    hs_rollups_refresh(o->type, o->id);
    return true;
}

void hs_object_archive(struct hs_object *o, enum hs_actor actor)
{
    cJSON *contacts = o->type == HS_DEAL ? hs_assoc_targets(o->type, o->id, HS_CONTACT) : NULL;
    o->is_archived = true;
    o->archived_at = sb_now_ms();
    hs_assoc_forget(o->type, o->id);
    hs_webhook_object_event(o->type, o->id, "deletion", actor);
    const cJSON *c;
    cJSON_ArrayForEach(c, contacts) hs_rollups_refresh(HS_CONTACT, (int64_t)c->valuedouble);
    cJSON_Delete(contacts);
}

/* ---- calculated properties ---- */

static void set_calculated(struct hs_object *o, const char *name, const char *value)
{
    if (value)
        prop_set(o, name, value);
    else
        cJSON_DeleteItemFromObjectCaseSensitive(o->props, name);
}

static void refresh_contact(struct hs_object *c)
{
    cJSON *deals = hs_assoc_targets(HS_CONTACT, c->id, HS_DEAL);
    int count = 0;
    double total = 0, recent_amount = 0;
    int64_t recent_close = -1, first_created = -1;
    const cJSON *d;
    cJSON_ArrayForEach(d, deals)
    {
        const struct hs_object *deal = hs_object_find(HS_DEAL, (int64_t)d->valuedouble, false);
        if (!deal)
            continue;
        count++;
        if (first_created < 0 || deal->created_at < first_created)
            first_created = deal->created_at;
        const char *pipeline = prop_value(deal, "pipeline");
        const char *stage = prop_value(deal, "dealstage");
        const char *amount = prop_value(deal, "amount");
        const char *close = prop_value(deal, "closedate");
        if (!pipeline || !stage || hs_stage_probability(pipeline, stage) != 1.0)
            continue; /* only closed won deals count as revenue */
        double a = amount && *amount ? strtod(amount, NULL) : 0;
        int64_t close_ms = deal->created_at;
        if (close && *close)
            (void)hs_parse_time(close, &close_ms);
        total += a;
        if (close_ms >= recent_close) {
            recent_close = close_ms;
            recent_amount = a;
        }
    }
    cJSON_Delete(deals);
    char buf[64], iso[32];
    snprintf(buf, sizeof buf, "%d", count);
    set_calculated(c, "num_associated_deals", buf);
    if (first_created >= 0) {
        hs_iso(first_created, iso);
        set_calculated(c, "first_deal_created_date", iso);
    } else {
        set_calculated(c, "first_deal_created_date", NULL);
    }
    if (recent_close >= 0) {
        hs_iso(recent_close, iso);
        set_calculated(c, "recent_deal_close_date", iso);
        snprintf(buf, sizeof buf, "%.15g", recent_amount);
        set_calculated(c, "recent_deal_amount", buf);
        snprintf(buf, sizeof buf, "%.15g", total);
        set_calculated(c, "total_revenue", buf);
    } else {
        set_calculated(c, "recent_deal_close_date", NULL);
        set_calculated(c, "recent_deal_amount", NULL);
        set_calculated(c, "total_revenue", NULL);
    }
}

/* Records whose calculated properties wait for hs_rollups_flush (while a batch runs). */
static struct pending_refresh {
    enum hs_type type;
    int64_t id;
} * pending;
static size_t pending_count, pending_cap;
static int defer_depth;

static void pending_add(enum hs_type t, int64_t id)
{
    for (size_t i = 0; i < pending_count; i++)
        if (pending[i].type == t && pending[i].id == id)
            return;
    if (pending_count == pending_cap) {
        pending_cap = pending_cap ? pending_cap * 2 : 64;
        pending = xrealloc(pending, pending_cap * sizeof(*pending));
    }
    pending[pending_count++] = (struct pending_refresh){t, id};
}

void hs_rollups_defer(void)
{
    defer_depth++;
}

void hs_rollups_flush(void)
{
    if (defer_depth == 0 || --defer_depth > 0)
        return;
    /* Deals first: each adds its contacts, so a contact shared by the batch's deals is
     * recomputed once. */
    for (size_t i = 0; i < pending_count; i++) {
        if (pending[i].type != HS_DEAL)
            continue;
        struct hs_object *deal = hs_object_find(HS_DEAL, pending[i].id, false);
        cJSON *contacts = deal ? hs_assoc_targets(HS_DEAL, deal->id, HS_CONTACT) : NULL;
        char buf[32];
        snprintf(buf, sizeof buf, "%d", cJSON_GetArraySize(contacts));
        if (deal)
            set_calculated(deal, "num_associated_contacts", buf);
        const cJSON *c;
        cJSON_ArrayForEach(c, contacts) pending_add(HS_CONTACT, (int64_t)c->valuedouble);
        cJSON_Delete(contacts);
    }
    for (size_t i = 0; i < pending_count; i++) {
        struct hs_object *contact =
            pending[i].type == HS_CONTACT ? hs_object_find(HS_CONTACT, pending[i].id, false) : NULL;
        if (contact)
            refresh_contact(contact);
    }
    pending_count = 0;
}

/* A deal's own calculated property (its contact count), from its associations now. */
static void refresh_deal(struct hs_object *deal)
{
    cJSON *contacts = hs_assoc_targets(HS_DEAL, deal->id, HS_CONTACT);
    char buf[32];
    snprintf(buf, sizeof buf, "%d", cJSON_GetArraySize(contacts));
    set_calculated(deal, "num_associated_contacts", buf);
    cJSON_Delete(contacts);
}

void hs_rollups_refresh_own(struct hs_object *o)
{
    if (o->type == HS_CONTACT)
        refresh_contact(o);
    else if (o->type == HS_DEAL)
        refresh_deal(o);
}

void hs_rollups_refresh(enum hs_type t, int64_t id)
{
    if (defer_depth > 0) {
        if (t == HS_CONTACT || t == HS_DEAL)
            pending_add(t, id);
        return;
    }
    struct hs_object *o = hs_object_find(t, id, false);
    if (!o)
        return;
    if (t == HS_CONTACT) {
        refresh_contact(o);
        return;
    }
    if (t != HS_DEAL)
        return;
    cJSON *contacts = hs_assoc_targets(HS_DEAL, id, HS_CONTACT);
    char buf[32];
    snprintf(buf, sizeof buf, "%d", cJSON_GetArraySize(contacts));
    set_calculated(o, "num_associated_contacts", buf);
    const cJSON *c;
    cJSON_ArrayForEach(c, contacts)
    {
        struct hs_object *contact = hs_object_find(HS_CONTACT, (int64_t)c->valuedouble, false);
        if (contact)
            refresh_contact(contact);
    }
    cJSON_Delete(contacts);
}

/* ---- JSON ---- */

static void add_prop_json(cJSON *props, const struct hs_object *o, const char *name)
{
    if (cJSON_GetObjectItemCaseSensitive(props, name) || !hs_prop_find(o->type, name))
        return; /* unknown names are ignored in reads, as HubSpot does */
    const char *v = prop_value(o, name);
    if (v && *v)
        cJSON_AddStringToObject(props, name, v);
    else
        cJSON_AddNullToObject(props, name);
}

cJSON *hs_object_json(const struct hs_object *o, const cJSON *names)
{
    char created[32], updated[32], id[32];
    hs_iso(o->created_at, created);
    hs_iso(o->updated_at, updated);
    snprintf(id, sizeof id, "%lld", (long long)o->id);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", id);
    cJSON *props = cJSON_AddObjectToObject(j, "properties");
    if (names) {
        const cJSON *n;
        cJSON_ArrayForEach(n, names) if (cJSON_IsString(n)) add_prop_json(props, o, n->valuestring);
        add_prop_json(props, o, "createdate");
        add_prop_json(props, o, modified_prop(o->type));
        add_prop_json(props, o, "hs_object_id");
    } else {
        for (const char *const *d = hs_default_props(o->type); *d; d++)
            add_prop_json(props, o, *d);
    }
    cJSON_AddStringToObject(j, "createdAt", created);
    cJSON_AddStringToObject(j, "updatedAt", updated);
    cJSON_AddBoolToObject(j, "archived", o->is_archived);
    if (o->is_archived) {
        char archived[32];
        hs_iso(o->archived_at, archived);
        cJSON_AddStringToObject(j, "archivedAt", archived);
    }
    return j;
}

/* One entry as HubSpot shows it: a user's change made in the app is CRM_UI with "userId:N" and
 * updatedByUserId; the private app's own writes are INTEGRATION with the app's id, as its
 * webhooks say (reference hubspot.md 2.2). */
static cJSON *change_json(const struct hs_change *c)
{
    char at[32];
    hs_iso(c->at, at);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "value", c->value);
    cJSON_AddStringToObject(e, "timestamp", at);
    if (c->actor == HS_ACTOR_USER) {
        int64_t user = sb_setting_int("hubspot.user_id", HS_DEFAULT_USER_ID);
        char *source = xasprintf("userId:%lld", (long long)user);
        cJSON_AddStringToObject(e, "sourceType", "CRM_UI");
        cJSON_AddStringToObject(e, "sourceId", source);
        cJSON_AddNumberToObject(e, "updatedByUserId", (double)user);
        free(source);
    } else {
        char *source =
            xasprintf("%lld", (long long)sb_setting_int("hubspot.app_id", HS_DEFAULT_APP_ID));
        cJSON_AddStringToObject(e, "sourceType", "INTEGRATION");
        cJSON_AddStringToObject(e, "sourceId", source);
        free(source);
    }
    return e;
}

void hs_object_add_history(cJSON *j, const struct hs_object *o, const cJSON *names)
{
    cJSON *all = cJSON_AddObjectToObject(j, "propertiesWithHistory");
    const cJSON *n;
    cJSON_ArrayForEach(n, names)
    {
        if (!cJSON_IsString(n) || !hs_prop_find(o->type, n->valuestring) ||
            cJSON_GetObjectItemCaseSensitive(all, n->valuestring))
            continue;
        cJSON *list = cJSON_AddArrayToObject(all, n->valuestring);
        for (size_t i = o->history_count; i-- > 0;)
            if (strcmp(o->history[i].name, n->valuestring) == 0)
                cJSON_AddItemToArray(list, change_json(&o->history[i]));
    }
}

cJSON *hs_object_full_json(const struct hs_object *o)
{
    cJSON *j = hs_object_json(o, NULL);
    cJSON_ReplaceItemInObjectCaseSensitive(j, "properties", cJSON_Duplicate(o->props, true));
    cJSON_AddStringToObject(j, "objectType", hs_type_plural(o->type));
    cJSON_AddItemToObject(j, "associations", hs_assoc_all_json(o->type, o->id));
    return j;
}

void hs_objects_reset(void)
{
    for (size_t i = 0; i < object_count; i++) {
        cJSON_Delete(objects[i]->props);
        for (size_t k = 0; k < objects[i]->history_count; k++) {
            free(objects[i]->history[k].name);
            free(objects[i]->history[k].value);
        }
        free(objects[i]->history);
        free(objects[i]);
    }
    free(objects);
    objects = NULL;
    object_count = 0;
    object_cap = 0;
    vindex_free(by_value);
    by_value = NULL;
    next_object_id = 20000000001LL;
}

/* ---- request helpers ---- */

/* properties= (comma list) as a string array, or NULL for the defaults. */
static cJSON *query_list(const struct sb_request *req, const char *name)
{
    char *v = sb_req_query(req, name);
    cJSON *list = v ? hs_split_csv(v) : NULL;
    free(v);
    return list;
}

static bool query_bool(const struct sb_request *req, const char *name)
{
    char *v = sb_req_query(req, name);
    bool b = v && strcmp(v, "true") == 0;
    free(v);
    return b;
}

/* Resolves an id as the client gave it: the record id, or a unique property's value when
 * id_property is given. Returns NULL with *msg set when the idProperty cannot be used. */
static struct hs_object *resolve(enum hs_type t, const char *id, const char *id_property,
                                 bool with_archived, const char **msg)
{
    *msg = NULL;
    if (!id_property || strcmp(id_property, "hs_object_id") == 0) {
        int64_t n;
        return util_parse_i64(id, &n) ? hs_object_find(t, n, with_archived) : NULL;
    }
    const struct hs_prop *p = hs_prop_find(t, id_property);
    bool is_email = t == HS_CONTACT && strcmp(id_property, "email") == 0;
    if (!p || !(is_email || hs_prop_is_unique(p))) {
        *msg = "idProperty must be a property with unique values";
        return NULL;
    }
    return find_by_value(t, id_property, id, NULL);
}

/* associations of a create input: [{to:{id}, types:[{associationCategory, associationTypeId}]}].
 * First pass (apply=false) validates; second adds them for the new record. */
static bool create_associations(enum hs_type t, int64_t id, const cJSON *list, bool apply,
                                const char **msg)
{
    const cJSON *a;
    if (list && !cJSON_IsArray(list)) {
        *msg = "associations must be an array";
        return false;
    }
    cJSON_ArrayForEach(a, list)
    {
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(a, "to");
        char *to_id_s = hs_value_string(cJSON_GetObjectItemCaseSensitive(to, "id"));
        int64_t to_id = 0;
        bool has_id = to_id_s && util_parse_i64(to_id_s, &to_id);
        free(to_id_s);
        const cJSON *types = cJSON_GetObjectItemCaseSensitive(a, "types");
        if (!has_id || !cJSON_IsArray(types) || cJSON_GetArraySize(types) == 0) {
            *msg = "each association needs to.id and types";
            return false;
        }
        const cJSON *ty;
        cJSON_ArrayForEach(ty, types)
        {
            const cJSON *type_id = cJSON_GetObjectItemCaseSensitive(ty, "associationTypeId");
            const cJSON *cat = cJSON_GetObjectItemCaseSensitive(ty, "associationCategory");
            enum hs_type tt;
            if (!cJSON_IsNumber(type_id) || !cJSON_IsString(cat) ||
                strcmp(cat->valuestring, "HUBSPOT_DEFINED") != 0 ||
                !hs_assoc_type_target(t, type_id->valueint, &tt)) {
                *msg = "invalid association type for this object";
                return false;
            }
            if (!hs_object_find(tt, to_id, false)) {
                *msg = "association target does not exist";
                return false;
            }
            if (apply &&
                !hs_assoc_add(t, id, tt, to_id, type_id->valueint, HS_ACTOR_INTEGRATION, msg))
                return false;
        }
    }
    return true;
}

static void respond_bad(struct sb_response *resp, const char *msg)
{
    hs_error(resp, 400, "VALIDATION_ERROR", msg);
}

/* A refused batch: the request-level message when there is one, else the per-property
 * validation errors with their status. */
static void respond_refused(struct sb_response *resp, const char *msg, int status, cJSON *errors)
{
    if (msg)
        respond_bad(resp, msg);
    else
        hs_respond_invalid(resp, status, errors);
}

static void create_one(const struct sb_request *req, enum hs_type t, struct sb_response *resp)
{
    cJSON *body = hs_parse_body(req, resp);
    cJSON *errors = cJSON_CreateArray();
    const char *msg = NULL;
    int status;
    if (!body)
        goto out;
    const cJSON *assocs = cJSON_GetObjectItemCaseSensitive(body, "associations");
    if (!create_associations(t, 0, assocs, false, &msg)) {
        respond_bad(resp, msg);
        goto out;
    }
    struct hs_object *o = hs_object_create(t, cJSON_GetObjectItemCaseSensitive(body, "properties"),
                                           HS_ACTOR_INTEGRATION, errors, &status);
    if (!o) {
        hs_respond_invalid(resp, status, errors);
        goto out;
    }
    (void)create_associations(t, o->id, assocs, true, &msg);
    sb_respond_json(resp, 201, hs_object_json(o, NULL));
out:
    cJSON_Delete(errors);
    cJSON_Delete(body);
}

static void list_objects(const struct sb_request *req, enum hs_type t, struct sb_response *resp)
{
    char *limit_s = sb_req_query(req, "limit");
    char *after_s = sb_req_query(req, "after");
    cJSON *names = query_list(req, "properties");
    cJSON *assoc_names = query_list(req, "associations");
    bool archived = query_bool(req, "archived");
    int64_t limit = 10, after = 0;
    if ((limit_s && (!util_parse_i64(limit_s, &limit) || limit < 1 || limit > LIST_MAX)) ||
        (after_s && !util_parse_i64(after_s, &after))) {
        respond_bad(resp, "limit must be between 1 and 100 and after must be a paging cursor");
        goto out;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *results = cJSON_AddArrayToObject(root, "results");
    int64_t added = 0;
    for (size_t i = 0; i < object_count; i++) {
        const struct hs_object *o = objects[i];
        if (o->type != t || o->is_archived != archived || o->id <= after)
            continue;
        if (added == limit) {
            char next[32];
            snprintf(next, sizeof next, "%lld", (long long)objects[i - 1]->id);
            cJSON *n = cJSON_AddObjectToObject(cJSON_AddObjectToObject(root, "paging"), "next");
            cJSON_AddStringToObject(n, "after", next);
            break;
        }
        cJSON *j = hs_object_json(o, names);
        cJSON *a = assoc_names ? hs_assoc_object_json(t, o->id, assoc_names) : NULL;
        if (a)
            cJSON_AddItemToObject(j, "associations", a);
        cJSON_AddItemToArray(results, j);
        added++;
    }
    sb_respond_json(resp, 200, root);
out:
    cJSON_Delete(assoc_names);
    cJSON_Delete(names);
    free(after_s);
    free(limit_s);
}

static void one_object(const struct sb_request *req, enum hs_type t, const char *id,
                       struct sb_response *resp)
{
    char *id_property = sb_req_query(req, "idProperty");
    cJSON *names = query_list(req, "properties");
    cJSON *assoc_names = query_list(req, "associations");
    cJSON *body = NULL;
    cJSON *errors = cJSON_CreateArray();
    const char *msg;
    bool is_get = strcmp(req->method, "GET") == 0;
    struct hs_object *o = resolve(t, id, id_property, is_get && query_bool(req, "archived"), &msg);
    if (msg) {
        respond_bad(resp, msg);
        goto out;
    }
    if (!o) {
        if (strcmp(req->method, "DELETE") == 0)
            sb_respond_json(resp, 204, NULL); /* archiving a missing record is not an error */
        else
            hs_error(resp, 404, "OBJECT_NOT_FOUND", "resource not found");
        goto out;
    }
    if (is_get) {
        cJSON *j = hs_object_json(o, names);
        cJSON *history = query_list(req, "propertiesWithHistory");
        if (history)
            hs_object_add_history(j, o, history);
        cJSON_Delete(history);
        cJSON *a = assoc_names ? hs_assoc_object_json(t, o->id, assoc_names) : NULL;
        if (a)
            cJSON_AddItemToObject(j, "associations", a);
        sb_respond_json(resp, 200, j);
    } else if (strcmp(req->method, "PATCH") == 0) {
        int status;
        if (!(body = hs_parse_body(req, resp)))
            goto out;
        if (hs_object_update(o, cJSON_GetObjectItemCaseSensitive(body, "properties"),
                             HS_ACTOR_INTEGRATION, errors, &status))
            sb_respond_json(resp, 200, hs_object_json(o, NULL));
        else
            hs_respond_invalid(resp, status, errors);
    } else if (strcmp(req->method, "DELETE") == 0) {
        hs_object_archive(o, HS_ACTOR_INTEGRATION);
        sb_respond_json(resp, 204, NULL);
    } else {
        hs_error(resp, 405, NULL, "method not allowed");
    }
out:
    cJSON_Delete(errors);
    cJSON_Delete(body);
    cJSON_Delete(assoc_names);
    cJSON_Delete(names);
    free(id_property);
}

/* ---- batch ---- */

static const cJSON *batch_inputs(const cJSON *body, struct sb_response *resp)
{
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(body, "inputs");
    if (!cJSON_IsArray(inputs)) {
        respond_bad(resp, "inputs is required and must be an array");
        return NULL;
    }
    if (cJSON_GetArraySize(inputs) > BATCH_MAX) {
        hs_errorf(resp, 400, "VALIDATION_ERROR",
                  "Batch input limit exceeded: %d inputs were sent, the maximum is %d",
                  cJSON_GetArraySize(inputs), BATCH_MAX);
        return NULL;
    }
    return inputs;
}

static cJSON *batch_error(const char *category, const char *message, const char *context_key,
                          cJSON *context_values)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "status", "error");
    cJSON_AddStringToObject(e, "category", category);
    cJSON_AddStringToObject(e, "message", message);
    cJSON *ctx = cJSON_AddObjectToObject(e, "context");
    if (context_key)
        cJSON_AddItemToObject(ctx, context_key, context_values);
    cJSON_AddArrayToObject(e, "errors");
    cJSON_AddObjectToObject(e, "links");
    return e;
}

/* The 207 error for ids that resolve to nothing; takes missing (an array of ids). */
static cJSON *missing_errors(enum hs_type t, cJSON *missing)
{
    cJSON *errs = cJSON_CreateArray();
    if (cJSON_GetArraySize(missing) == 0) {
        cJSON_Delete(missing);
        return errs;
    }
    char *m = xasprintf("Could not get some %s objects, they may be deleted or not exist. "
                        "Check that ids are valid.",
                        hs_type_upper(t));
    cJSON_AddItemToArray(errs, batch_error("OBJECT_NOT_FOUND", m, "ids", missing));
    free(m);
    return errs;
}

static char *input_id(const cJSON *input)
{
    return hs_value_string(cJSON_GetObjectItemCaseSensitive(input, "id"));
}

/* Batch create is all-or-nothing unless every input carries an objectWriteTraceId; then the
 * valid inputs are created and the others reported in a 207 (reference 4.1). */
static void batch_create(enum hs_type t, const cJSON *body, struct sb_response *resp)
{
    const cJSON *inputs = batch_inputs(body, resp);
    const cJSON *in;
    const char *msg = NULL;
    int64_t started = sb_now_ms();
    if (!inputs)
        return;
    bool is_partial_ok = cJSON_GetArraySize(inputs) > 0;
    cJSON_ArrayForEach(in, inputs) is_partial_ok =
        is_partial_ok && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(in, "objectWriteTraceId"));
    if (!is_partial_ok) {
        cJSON_ArrayForEach(in, inputs)
        {
            cJSON *errors = cJSON_CreateArray();
            cJSON *norm = NULL;
            int status;
            bool ok = validate_write(t, NULL, cJSON_GetObjectItemCaseSensitive(in, "properties"),
                                     errors, &status, &norm) &&
                      create_associations(
                          t, 0, cJSON_GetObjectItemCaseSensitive(in, "associations"), false, &msg);
            cJSON_Delete(norm);
            if (!ok) {
                respond_refused(resp, msg, status, errors);
                cJSON_Delete(errors);
                return;
            }
            cJSON_Delete(errors);
        }
    }
    cJSON *results;
    cJSON *root = hs_batch_root(started, &results);
    cJSON *errs = cJSON_CreateArray();
    cJSON_ArrayForEach(in, inputs)
    {
        cJSON *errors = cJSON_CreateArray();
        int status = 400;
        const cJSON *assocs = cJSON_GetObjectItemCaseSensitive(in, "associations");
        const cJSON *trace = cJSON_GetObjectItemCaseSensitive(in, "objectWriteTraceId");
        struct hs_object *o = NULL;
        msg = NULL;
        if (create_associations(t, 0, assocs, false, &msg))
            o = hs_object_create(t, cJSON_GetObjectItemCaseSensitive(in, "properties"),
                                 HS_ACTOR_INTEGRATION, errors, &status);
        if (o) {
            (void)create_associations(t, o->id, assocs, true, &msg);
            hs_rollups_refresh_own(o);
            cJSON *j = hs_object_json(o, NULL);
            if (cJSON_IsString(trace))
                cJSON_AddStringToObject(j, "objectWriteTraceId", trace->valuestring);
            cJSON_AddItemToArray(results, j);
        } else {
            char *text = msg ? xstrdup(msg) : cJSON_PrintUnformatted(errors);
            cJSON *ids = cJSON_CreateArray();
            if (cJSON_IsString(trace))
                cJSON_AddItemToArray(ids, cJSON_CreateString(trace->valuestring));
            cJSON_AddItemToArray(errs, batch_error(status == 409 ? "CONFLICT" : "VALIDATION_ERROR",
                                                   text, "objectWriteTraceId", ids));
            free(text);
        }
        cJSON_Delete(errors);
    }
    hs_batch_respond(resp, root, errs, 201);
}

static void batch_read(const struct sb_request *req, enum hs_type t, const cJSON *body,
                       struct sb_response *resp)
{
    const cJSON *inputs = batch_inputs(body, resp);
    if (!inputs)
        return;
    const cJSON *history = cJSON_GetObjectItemCaseSensitive(body, "propertiesWithHistory");
    if (cJSON_GetArraySize(history) > 0 && cJSON_GetArraySize(inputs) > HISTORY_BATCH_MAX) {
        respond_bad(resp, "The maximum number of inputs supported in a batch request for property "
                          "histories is 50. Please reduce the number of items and try again");
        return;
    }
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(body, "properties");
    const cJSON *idp = cJSON_GetObjectItemCaseSensitive(body, "idProperty");
    const char *id_property = cJSON_IsString(idp) ? idp->valuestring : NULL;
    bool archived = query_bool(req, "archived");
    const char *msg = NULL;
    cJSON *results;
    cJSON *root = hs_batch_root(sb_now_ms(), &results);
    cJSON *missing = cJSON_CreateArray();
    const cJSON *in;
    cJSON_ArrayForEach(in, inputs)
    {
        char *id = input_id(in);
        struct hs_object *o = id ? resolve(t, id, id_property, archived, &msg) : NULL;
        if (msg) {
            free(id);
            cJSON_Delete(missing);
            cJSON_Delete(root);
            respond_bad(resp, msg);
            return;
        }
        if (o) {
            cJSON *j = hs_object_json(o, cJSON_GetArraySize(names) ? names : NULL);
            if (cJSON_GetArraySize(history) > 0)
                hs_object_add_history(j, o, history);
            cJSON_AddItemToArray(results, j);
        } else
            cJSON_AddItemToArray(missing, cJSON_CreateString(id ? id : ""));
        free(id);
    }
    hs_batch_respond(resp, root, missing_errors(t, missing), 200);
}

static bool has_duplicate_ids(const cJSON *inputs)
{
    for (const cJSON *a = inputs->child; a; a = a->next) {
        char *ia = input_id(a);
        for (const cJSON *b = a->next; b && ia; b = b->next) {
            char *ib = input_id(b);
            bool same = ib && strcmp(ia, ib) == 0;
            free(ib);
            if (same) {
                free(ia);
                return true;
            }
        }
        free(ia);
    }
    return false;
}

/* The inputs of a batch body (answering 400 and returning NULL when there are none, too many,
 * or the same id twice). */
static const cJSON *batch_inputs_unique(const cJSON *body, struct sb_response *resp)
{
    const cJSON *inputs = batch_inputs(body, resp);
    if (inputs && has_duplicate_ids(inputs)) {
        respond_bad(resp, "Duplicate IDs found in batch input");
        return NULL;
    }
    return inputs;
}

/* The object an input names by id (and its idProperty, when given), or NULL. */
static struct hs_object *resolve_input(enum hs_type t, const cJSON *in, const char *id,
                                       const char **msg)
{
    const cJSON *idp = cJSON_GetObjectItemCaseSensitive(in, "idProperty");
    return id ? resolve(t, id, cJSON_IsString(idp) ? idp->valuestring : NULL, false, msg) : NULL;
}

/* Validation failures reject the whole batch (nothing written); ids that do not resolve are
 * reported in a 207 while the others are updated. */
static void batch_update(enum hs_type t, const cJSON *body, struct sb_response *resp)
{
    const cJSON *inputs = batch_inputs_unique(body, resp);
    const cJSON *in;
    const char *msg = NULL;
    if (!inputs)
        return;
    cJSON_ArrayForEach(in, inputs)
    {
        char *id = input_id(in);
        struct hs_object *o = resolve_input(t, in, id, &msg);
        free(id);
        cJSON *errors = cJSON_CreateArray();
        cJSON *norm = NULL;
        int status = 400;
        bool ok =
            !msg && (!o || validate_write(t, o, cJSON_GetObjectItemCaseSensitive(in, "properties"),
                                          errors, &status, &norm));
        cJSON_Delete(norm);
        if (!ok) {
            respond_refused(resp, msg, status, errors);
            cJSON_Delete(errors);
            return;
        }
        cJSON_Delete(errors);
    }
    cJSON *results;
    cJSON *root = hs_batch_root(sb_now_ms(), &results);
    cJSON *missing = cJSON_CreateArray();
    cJSON_ArrayForEach(in, inputs)
    {
        char *id = input_id(in);
        struct hs_object *o = resolve_input(t, in, id, &msg);
        cJSON *errors = cJSON_CreateArray();
        int status;
        if (o && hs_object_update(o, cJSON_GetObjectItemCaseSensitive(in, "properties"),
                                  HS_ACTOR_INTEGRATION, errors, &status))
            cJSON_AddItemToArray(results, hs_object_json(o, NULL));
        else
            cJSON_AddItemToArray(missing, cJSON_CreateString(id ? id : ""));
        cJSON_Delete(errors);
        free(id);
    }
    hs_batch_respond(resp, root, missing_errors(t, missing), 200);
}

/* Upsert by a unique property: all-or-nothing validation, then create or update each. */
static void batch_upsert(enum hs_type t, const cJSON *body, struct sb_response *resp)
{
    const cJSON *inputs = batch_inputs_unique(body, resp);
    const cJSON *in;
    const char *msg = NULL;
    if (!inputs)
        return;
    cJSON_ArrayForEach(in, inputs)
    {
        char *id = input_id(in);
        const cJSON *idp = cJSON_GetObjectItemCaseSensitive(in, "idProperty");
        if (!id || !cJSON_IsString(idp) || strcmp(idp->valuestring, "hs_object_id") == 0) {
            free(id);
            respond_bad(resp, "each upsert input needs id and the idProperty of a unique property");
            return;
        }
        struct hs_object *o = resolve(t, id, idp->valuestring, false, &msg);
        cJSON *props = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(in, "properties"), true);
        if (!props)
            props = cJSON_CreateObject();
        if (!o && !cJSON_GetObjectItemCaseSensitive(props, idp->valuestring))
            cJSON_AddStringToObject(props, idp->valuestring, id);
        cJSON *errors = cJSON_CreateArray();
        cJSON *norm = NULL;
        int status = 400;
        bool ok = !msg && validate_write(t, o, props, errors, &status, &norm);
        cJSON_Delete(norm);
        cJSON_Delete(props);
        free(id);
        if (!ok) {
            respond_refused(resp, msg, status, errors);
            cJSON_Delete(errors);
            return;
        }
        cJSON_Delete(errors);
    }
    cJSON *results;
    cJSON *root = hs_batch_root(sb_now_ms(), &results);
    cJSON_ArrayForEach(in, inputs)
    {
        char *id = input_id(in);
        const char *idp = cJSON_GetObjectItemCaseSensitive(in, "idProperty")->valuestring;
        struct hs_object *o = resolve(t, id, idp, false, &msg);
        cJSON *props = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(in, "properties"), true);
        if (!props)
            props = cJSON_CreateObject();
        cJSON *errors = cJSON_CreateArray();
        int status;
        bool is_new = !o;
        if (is_new) {
            if (!cJSON_GetObjectItemCaseSensitive(props, idp))
                cJSON_AddStringToObject(props, idp, id);
            o = hs_object_create(t, props, HS_ACTOR_INTEGRATION, errors, &status);
        } else if (!hs_object_update(o, props, HS_ACTOR_INTEGRATION, errors, &status)) {
            o = NULL;
        }
        if (o) {
            cJSON *j = hs_object_json(o, NULL);
            cJSON_AddBoolToObject(j, "new", is_new);
            cJSON_AddItemToArray(results, j);
        }
        cJSON_Delete(errors);
        cJSON_Delete(props);
        free(id);
    }
    sb_respond_json(resp, 200, root);
}

static void batch_archive(enum hs_type t, const cJSON *body, struct sb_response *resp)
{
    const cJSON *inputs = batch_inputs(body, resp);
    const cJSON *in;
    if (!inputs)
        return;
    cJSON_ArrayForEach(in, inputs)
    {
        char *id = input_id(in);
        int64_t n;
        struct hs_object *o = id && util_parse_i64(id, &n) ? hs_object_find(t, n, false) : NULL;
        if (o)
            hs_object_archive(o, HS_ACTOR_INTEGRATION);
        free(id);
    }
    sb_respond_json(resp, 204, NULL);
}

static bool handle_batch(const struct sb_request *req, enum hs_type t, const char *op,
                         struct sb_response *resp)
{
    if (strcmp(req->method, "POST") != 0)
        return false;
    cJSON *body = hs_parse_body(req, resp);
    if (!body)
        return true;
    /* The calculated properties a batch touches are recomputed once, at the end of the batch
     * (updates', upserts' and archives' answers carry no calculated property). A create answers
     * with each new record as it is right after it was made: its own calculated properties are
     * computed before it is answered (hs_rollups_refresh_own), and those of the records it was
     * associated with at the end (a batch of 100 new deals of the same two contacts recomputed
     * both contacts over all their deals for each of its 200 associations). */
    hs_rollups_defer();
    if (strcmp(op, "create") == 0)
        batch_create(t, body, resp);
    else if (strcmp(op, "read") == 0)
        batch_read(req, t, body, resp);
    else if (strcmp(op, "update") == 0)
        batch_update(t, body, resp);
    else if (strcmp(op, "upsert") == 0)
        batch_upsert(t, body, resp);
    else if (strcmp(op, "archive") == 0)
        batch_archive(t, body, resp);
    else
        hs_errorf(resp, 404, "OBJECT_NOT_FOUND", "no batch operation %s", op);
    hs_rollups_flush();
    cJSON_Delete(body);
    return true;
}

bool hs_objects_handle(const struct sb_request *req, enum hs_type t, const char *rest,
                       struct sb_response *resp)
{
    if (*rest == '\0') {
        if (strcmp(req->method, "GET") == 0)
            list_objects(req, t, resp);
        else if (strcmp(req->method, "POST") == 0)
            create_one(req, t, resp);
        else
            return false;
        return true;
    }
    if (strncmp(rest, "/batch/", 7) == 0)
        return handle_batch(req, t, rest + 7, resp);
    if (*rest != '/')
        return false;
    rest++;
    const char *slash = strchr(rest, '/');
    if (!slash) {
        one_object(req, t, rest, resp);
        return true;
    }
    int64_t id;
    char *id_text = xstrndup(rest, (size_t)(slash - rest));
    bool ok = util_parse_i64(id_text, &id);
    free(id_text);
    if (!ok)
        return false;
    return hs_assoc_record_handle(req, 3, t, id, slash, resp);
}

struct hs_object *const *hs_objects_all(size_t *count)
{
    *count = object_count;
    return objects;
}
