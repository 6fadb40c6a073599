/* hs_search.c - POST /crm/v3/objects/{type}/search: filter groups (AND inside, OR between),
 * the operators of reference 4.2, one sort, paging by offset, the documented limits (5 groups,
 * 6 filters each, 18 in all, 200 per page, 10,000 results, 3,000-character body). The
 * 5-per-second limit is applied in hs_api.c with the other rate limits. */
#include "hs.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define MAX_GROUPS 5
#define MAX_FILTERS_PER_GROUP 6
#define MAX_FILTERS 18
#define MAX_LIMIT 200
#define MAX_RESULTS 10000
#define MAX_BODY 3000

static const char *const operators[] = {"EQ",
                                        "NEQ",
                                        "LT",
                                        "LTE",
                                        "GT",
                                        "GTE",
                                        "BETWEEN",
                                        "IN",
                                        "NOT_IN",
                                        "HAS_PROPERTY",
                                        "NOT_HAS_PROPERTY",
                                        "CONTAINS_TOKEN",
                                        "NOT_CONTAINS_TOKEN",
                                        NULL};

static const char *prop_value(const struct hs_object *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o->props, name);
    return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

/* Compares a stored value with a filter value by the property's type: numbers and dates
 * numerically, everything else case-insensitively. */
static int compare(const char *type, const char *a, const char *b)
{
    if (type && strcmp(type, "number") == 0) {
        double x = strtod(a, NULL), y = strtod(b, NULL);
        return x < y ? -1 : x > y;
    }
    if (type && (strcmp(type, "datetime") == 0 || strcmp(type, "date") == 0)) {
        int64_t x, y;
        if (hs_parse_time(a, &x) && hs_parse_time(b, &y))
            return x < y ? -1 : x > y;
    }
    return strcasecmp(a, b);
}

/* Wildcard match of one token: '*' stands for any run of characters. */
static bool glob_match(const char *pat, const char *s)
{
    if (*pat == '\0')
        return *s == '\0';
    if (*pat == '*')
        return glob_match(pat + 1, s) || (*s && glob_match(pat, s + 1));
    return *s && tolower((unsigned char)*pat) == tolower((unsigned char)*s) &&
           glob_match(pat + 1, s + 1);
}

static bool contains_token(const char *value, const char *token)
{
    char *copy = xstrdup(value);
    bool found = glob_match(token, value); /* the whole value is a token too (emails) */
    for (char *p = copy; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '*')
            *p = ' ';
    char *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok && !found; tok = strtok_r(NULL, " ", &save))
        found = glob_match(token, tok);
    free(copy);
    return found;
}

static char *filter_string(const cJSON *f, const char *name)
{
    return hs_value_string(cJSON_GetObjectItemCaseSensitive(f, name));
}

static bool in_values(const char *type, const char *v, const cJSON *values)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, values)
    {
        char *s = hs_value_string(x);
        bool eq = s && v && compare(type, v, s) == 0;
        free(s);
        if (eq)
            return true;
    }
    return false;
}

static bool has_association(const struct hs_object *o, const char *type_name, const char *id)
{
    enum hs_type tt;
    int64_t want;
    if (!hs_type_parse(type_name, &tt) || !util_parse_i64(id, &want))
        return false;
    cJSON *ids = hs_assoc_targets(o->type, o->id, tt);
    bool found = false;
    const cJSON *x;
    cJSON_ArrayForEach(x, ids) found = found || (int64_t)x->valuedouble == want;
    cJSON_Delete(ids);
    return found;
}

static bool filter_matches(const struct hs_object *o, const cJSON *f)
{
    const char *name = cJSON_GetObjectItemCaseSensitive(f, "propertyName")->valuestring;
    const char *op = cJSON_GetObjectItemCaseSensitive(f, "operator")->valuestring;
    char *value = filter_string(f, "value");
    bool m = false;
    if (strncmp(name, "associations.", 13) == 0) {
        m = value && has_association(o, name + 13, value);
        m = strcmp(op, "NEQ") == 0 ? !m : m;
        free(value);
        return m;
    }
    const struct hs_prop *p = hs_prop_find(o->type, name);
    const char *type = p ? hs_prop_type(p) : NULL;
    const char *v = prop_value(o, name);
    if (strcmp(op, "HAS_PROPERTY") == 0)
        m = v != NULL;
    else if (strcmp(op, "NOT_HAS_PROPERTY") == 0)
        m = v == NULL;
    else if (strcmp(op, "IN") == 0)
        m = in_values(type, v, cJSON_GetObjectItemCaseSensitive(f, "values"));
    else if (strcmp(op, "NOT_IN") == 0)
        m = !in_values(type, v, cJSON_GetObjectItemCaseSensitive(f, "values"));
    else if (strcmp(op, "NEQ") == 0)
        m = !v || !value || compare(type, v, value) != 0;
    else if (strcmp(op, "CONTAINS_TOKEN") == 0)
        m = v && value && contains_token(v, value);
    else if (strcmp(op, "NOT_CONTAINS_TOKEN") == 0)
        m = !v || !value || !contains_token(v, value);
    else if (v && value) {
        int c = compare(type, v, value);
        if (strcmp(op, "EQ") == 0)
            m = c == 0;
        else if (strcmp(op, "LT") == 0)
            m = c < 0;
        else if (strcmp(op, "LTE") == 0)
            m = c <= 0;
        else if (strcmp(op, "GT") == 0)
            m = c > 0;
        else if (strcmp(op, "GTE") == 0)
            m = c >= 0;
        else if (strcmp(op, "BETWEEN") == 0) {
            char *high = filter_string(f, "highValue");
            m = c >= 0 && high && compare(type, v, high) <= 0;
            free(high);
        }
    }
    free(value);
    return m;
}

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* Checks the filter groups; returns a message or NULL. */
static const char *check_groups(const cJSON *groups)
{
    if (!groups)
        return NULL;
    if (!cJSON_IsArray(groups))
        return "filterGroups must be an array";
    if (cJSON_GetArraySize(groups) > MAX_GROUPS)
        return "Too many filter groups: the limit is 5";
    int total = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, groups)
    {
        const cJSON *filters = cJSON_GetObjectItemCaseSensitive(g, "filters");
        if (!cJSON_IsArray(filters))
            return "each filter group needs filters";
        if (cJSON_GetArraySize(filters) > MAX_FILTERS_PER_GROUP)
            return "Too many filters in a group: the limit is 6";
        total += cJSON_GetArraySize(filters);
        const cJSON *f;
        cJSON_ArrayForEach(f, filters)
        {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "propertyName");
            const cJSON *op = cJSON_GetObjectItemCaseSensitive(f, "operator");
            if (!cJSON_IsString(name) || !cJSON_IsString(op))
                return "each filter needs propertyName and operator";
            if (!in_list(operators, op->valuestring))
                return "unknown filter operator";
            bool needs_values =
                strcmp(op->valuestring, "IN") == 0 || strcmp(op->valuestring, "NOT_IN") == 0;
            bool needs_none = strcmp(op->valuestring, "HAS_PROPERTY") == 0 ||
                              strcmp(op->valuestring, "NOT_HAS_PROPERTY") == 0;
            if (needs_values && !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(f, "values")))
                return "IN and NOT_IN need values";
            if (!needs_values && !needs_none && !cJSON_GetObjectItemCaseSensitive(f, "value"))
                return "this operator needs a value";
            if (strcmp(op->valuestring, "BETWEEN") == 0 &&
                !cJSON_GetObjectItemCaseSensitive(f, "highValue"))
                return "BETWEEN needs highValue";
        }
    }
    if (total > MAX_FILTERS)
        return "Too many filters: the limit is 18 in total";
    return NULL;
}

static bool matches(const struct hs_object *o, const cJSON *groups, const char *query)
{
    if (query && *query) {
        bool hit = false;
        for (const char *const *d = hs_default_props(o->type); *d && !hit; d++) {
            const char *v = prop_value(o, *d);
            hit = v && contains_token(v, query);
        }
        if (!hit)
            return false;
    }
    if (cJSON_GetArraySize(groups) == 0)
        return true;
    const cJSON *g;
    cJSON_ArrayForEach(g, groups)
    {
        bool all = true;
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(g, "filters")) all =
            all && filter_matches(o, f);
        if (all)
            return true;
    }
    return false;
}

struct sort_spec {
    const char *name;
    const char *type;
    bool is_desc;
};

static struct sort_spec sort_by;

static int sort_cmp(const void *a, const void *b)
{
    const struct hs_object *x = *(const struct hs_object *const *)a;
    const struct hs_object *y = *(const struct hs_object *const *)b;
    int c = 0;
    if (sort_by.name) {
        const char *vx = prop_value(x, sort_by.name);
        const char *vy = prop_value(y, sort_by.name);
        if (!vx || !vy)
            c = (vx != NULL) - (vy != NULL);
        else
            c = compare(sort_by.type, vx, vy);
        if (sort_by.is_desc)
            c = -c;
    }
    if (c == 0)
        c = x->id < y->id ? -1 : x->id > y->id;
    return c;
}

/* One sort at most: "name", "-name" or {propertyName, direction}. Message or NULL. */
static const char *parse_sort(enum hs_type t, const cJSON *sorts)
{
    memset(&sort_by, 0, sizeof sort_by);
    if (!sorts)
        return NULL;
    if (!cJSON_IsArray(sorts))
        return "sorts must be an array";
    if (cJSON_GetArraySize(sorts) > 1)
        return "Only one sort is allowed";
    const cJSON *s = cJSON_GetArrayItem(sorts, 0);
    if (!s)
        return NULL;
    if (cJSON_IsString(s)) {
        sort_by.is_desc = s->valuestring[0] == '-';
        sort_by.name = s->valuestring + sort_by.is_desc;
    } else {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(s, "propertyName");
        const cJSON *dir = cJSON_GetObjectItemCaseSensitive(s, "direction");
        if (!cJSON_IsString(name))
            return "a sort needs propertyName";
        sort_by.name = name->valuestring;
        sort_by.is_desc = cJSON_IsString(dir) && strcmp(dir->valuestring, "DESCENDING") == 0;
    }
    const struct hs_prop *p = hs_prop_find(t, sort_by.name);
    sort_by.type = p ? hs_prop_type(p) : NULL;
    return NULL;
}

bool hs_search_handle(const struct sb_request *req, enum hs_type t, struct sb_response *resp)
{
    if (req->body_len > MAX_BODY) {
        hs_error(resp, 400, "VALIDATION_ERROR",
                 "The request body is too long: the limit is 3000 characters");
        return true;
    }
    cJSON *body = hs_parse_body(req, resp);
    struct hs_object **hits = NULL;
    if (!body)
        return true;
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(body, "filterGroups");
    const cJSON *limit_item = cJSON_GetObjectItemCaseSensitive(body, "limit");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(body, "properties");
    const cJSON *query = cJSON_GetObjectItemCaseSensitive(body, "query");
    char *after_s = hs_value_string(cJSON_GetObjectItemCaseSensitive(body, "after"));
    int64_t after = 0;
    int64_t limit = cJSON_IsNumber(limit_item) ? (int64_t)limit_item->valuedouble : 10;
    const char *msg = check_groups(groups);
    if (!msg)
        msg = parse_sort(t, cJSON_GetObjectItemCaseSensitive(body, "sorts"));
    if (!msg && (limit_item && (!cJSON_IsNumber(limit_item) || limit < 0 || limit > MAX_LIMIT)))
        msg = "limit must be between 0 and 200";
    if (!msg && after_s && *after_s && (!util_parse_i64(after_s, &after) || after < 0))
        msg = "after must be a paging cursor";
    if (!msg && after >= MAX_RESULTS)
        msg = "Search results are limited to 10,000 per query: page past that is not allowed";
    if (msg) {
        hs_error(resp, 400, "VALIDATION_ERROR", msg);
        goto out;
    }
    size_t count = 0, n = 0;
    struct hs_object *const *all = hs_objects_all(&count);
    int64_t visible_before = sb_now_ms() - sb_setting_int("hubspot.search_index_delay_ms", 0);
    hits = xcalloc(count + 1, sizeof *hits);
    for (size_t i = 0; i < count; i++) {
        struct hs_object *o = all[i];
        if (o->type == t && !o->is_archived && o->updated_at <= visible_before &&
            matches(o, groups, cJSON_IsString(query) ? query->valuestring : NULL))
            hits[n++] = o;
    }
    qsort(hits, n, sizeof *hits, sort_cmp);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "total", (double)n);
    cJSON *results = cJSON_AddArrayToObject(root, "results");
    const cJSON *wanted = cJSON_GetArraySize(names) > 0 ? names : NULL;
    for (int64_t i = after; i < (int64_t)n && i < after + limit; i++)
        cJSON_AddItemToArray(results, hs_object_json(hits[i], wanted));
    if (after + limit < (int64_t)n && after + limit < MAX_RESULTS) {
        char next[32];
        snprintf(next, sizeof next, "%lld", (long long)(after + limit));
        cJSON *nx = cJSON_AddObjectToObject(cJSON_AddObjectToObject(root, "paging"), "next");
        cJSON_AddStringToObject(nx, "after", next);
    }
    sb_respond_json(resp, 200, root);
out:
    free(hits);
    free(after_s);
    cJSON_Delete(body);
    return true;
}
