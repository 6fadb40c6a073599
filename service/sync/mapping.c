/* mapping.c - Opportunity <-> deal field mapping: the standard pairs, custom pairs from the
 * mappings file, value conversion and HubSpot's sync rules. Pure: no I/O, no globals, no
 * logging (skipped fields are returned to the caller, who decides what to log). */
#include "mapping.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

struct mapping_set {
    struct mapping_field *fields;
    size_t count;
};

/* The default deal <-> opportunity pairs. HubSpot does not publish their default rules
 * (reference hubspot.md 1.3 and 7.2), so they start as two_way and the file may override. */
static const struct {
    const char *sf;
    const char *hs;
    enum mapping_kind kind;
} standard_fields[] = {
    {"OwnerId", "hubspot_owner_id", MAPPING_KIND_OWNER},
    {"CloseDate", "closedate", MAPPING_KIND_DATE},
    {"Name", "dealname", MAPPING_KIND_TEXT},
    {"Type", "dealtype", MAPPING_KIND_PICKLIST},
    {"Description", "description", MAPPING_KIND_TEXT},
    {"Amount", "amount", MAPPING_KIND_NUMBER},
    {"StageName", "dealstage", MAPPING_KIND_STAGE},
};
#define STANDARD_COUNT (sizeof(standard_fields) / sizeof(standard_fields[0]))

static const char *const rule_names[] = {
    [MAPPING_RULE_TWO_WAY] = "two_way",
    [MAPPING_RULE_PREFER_SALESFORCE_UNLESS_BLANK] = "prefer_salesforce_unless_blank",
    [MAPPING_RULE_ALWAYS_SALESFORCE] = "always_salesforce",
    [MAPPING_RULE_NONE] = "none",
};

const char *mapping_type_mismatch(const char *sf_type, const char *hs_type,
                                  const char *hs_field_type)
{
    /* HubSpot's table (reference hubspot.md 1.3), each row read both ways. */
    static const struct {
        const char *hs_type;
        const char *hs_field_type; /* NULL = any */
        const char *sf_types;      /* ",type," list */
    } ok[] = {
        {"enumeration", "checkbox", ",multipicklist,"},
        {"enumeration", NULL, ",picklist,reference,"},
        {"bool", NULL, ",boolean,"},
        {"number", NULL, ",double,int,currency,percent,long,"},
        {"string", NULL, ",string,textarea,email,phone,url,"},
        {"phone_number", NULL, ",phone,string,"},
        {"date", NULL, ",date,"},
        {"datetime", NULL, ",date,datetime,"},
    };
    if (!sf_type || !hs_type)
        return "type unknown";
    char needle[64];
    snprintf(needle, sizeof(needle), ",%s,", sf_type);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (strcmp(ok[i].hs_type, hs_type) != 0)
            continue;
        if (ok[i].hs_field_type && (!hs_field_type || strcmp(ok[i].hs_field_type, hs_field_type)))
            continue;
        return strstr(ok[i].sf_types, needle) ? NULL : "types cannot hold each other's values";
    }
    return "types cannot hold each other's values";
}

const char *mapping_rule_name(enum mapping_rule rule)
{
    if ((size_t)rule < sizeof(rule_names) / sizeof(rule_names[0]))
        return rule_names[rule];
    return "unknown";
}

bool mapping_rule_parse(const char *name, enum mapping_rule *out)
{
    for (size_t i = 0; name && i < sizeof(rule_names) / sizeof(rule_names[0]); i++) {
        if (strcmp(name, rule_names[i]) == 0) {
            *out = (enum mapping_rule)i;
            return true;
        }
    }
    return false;
}

/* ---- Loading and validating the mappings file ------------------------------------------- */

/* Salesforce API names: a letter, then letters, digits and underscores. They end up in SOQL
 * SELECT lists, so nothing else may pass. */
static bool is_sf_name(const char *s)
{
    if (!s || !isalpha((unsigned char)s[0]))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

/* HubSpot internal property names: lowercase letters, digits and underscores. */
static bool is_hs_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

static void problem(struct buf *errors, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void problem(struct buf *errors, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (errors->len)
        buf_append_str(errors, "; ");
    buf_append_str(errors, msg);
}

static void add_field(struct mapping_set *set, const char *sf, const char *hs,
                      enum mapping_rule rule, enum mapping_kind kind, bool is_standard)
{
    set->fields = xrealloc(set->fields, (set->count + 1) * sizeof(*set->fields));
    set->fields[set->count++] = (struct mapping_field){
        .sf_field = xstrdup(sf),
        .hs_property = xstrdup(hs),
        .rule = rule,
        .kind = kind,
        .is_standard = is_standard,
    };
}

static struct mapping_field *find_by_sf(struct mapping_set *set, const char *sf)
{
    /* Salesforce API names are case-insensitive. */
    for (size_t i = 0; i < set->count; i++)
        if (strcasecmp(set->fields[i].sf_field, sf) == 0)
            return &set->fields[i];
    return NULL;
}

static struct mapping_field *find_by_hs(struct mapping_set *set, const char *hs)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->fields[i].hs_property, hs) == 0)
            return &set->fields[i];
    return NULL;
}

static bool values_are_strings(const cJSON *values)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, values)
    {
        if (!cJSON_IsString(v))
            return false;
    }
    return true;
}

/* Validates entry i; on success adds it or overrides the standard pair it names. Records every
 * problem found. seen_standard tells a first override of a standard pair from a duplicate. */
static void load_entry(struct mapping_set *set, const cJSON *e, int i, bool *seen_standard,
                       struct buf *errors)
{
    static const char *const keys[] = {"salesforce", "hubspot", "rule", "values"};
    if (!cJSON_IsObject(e)) {
        problem(errors, "mappings[%d]: not an object", i);
        return;
    }
    size_t before = errors->len;
    const cJSON *k;
    cJSON_ArrayForEach(k, e)
    {
        bool known = false;
        for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]); j++)
            known = known || strcmp(k->string, keys[j]) == 0;
        if (!known)
            problem(errors, "mappings[%d]: unknown key \"%s\"", i, k->string);
    }
    const char *sf = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "salesforce"));
    const char *hs = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "hubspot"));
    const char *rule_s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "rule"));
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(e, "values");
    enum mapping_rule rule = MAPPING_RULE_TWO_WAY;

    if (!cJSON_GetObjectItemCaseSensitive(e, "salesforce"))
        problem(errors, "mappings[%d]: missing key \"salesforce\"", i);
    else if (!is_sf_name(sf))
        problem(errors, "mappings[%d]: invalid salesforce field name", i);
    if (!cJSON_GetObjectItemCaseSensitive(e, "hubspot"))
        problem(errors, "mappings[%d]: missing key \"hubspot\"", i);
    else if (!is_hs_name(hs))
        problem(errors, "mappings[%d]: invalid hubspot property name", i);
    if (!cJSON_GetObjectItemCaseSensitive(e, "rule"))
        problem(errors, "mappings[%d]: missing key \"rule\"", i);
    else if (!mapping_rule_parse(rule_s, &rule))
        problem(errors, "mappings[%d]: unknown rule \"%s\"", i, rule_s ? rule_s : "(not a string)");
    if (values && (!cJSON_IsObject(values) || !values_are_strings(values)))
        problem(errors, "mappings[%d]: \"values\" must map strings to strings", i);
    if (errors->len != before)
        return;

    struct mapping_field *by_sf = find_by_sf(set, sf);
    struct mapping_field *by_hs = find_by_hs(set, hs);
    if (by_sf && by_sf == by_hs && by_sf->is_standard && !seen_standard[by_sf - set->fields]) {
        seen_standard[by_sf - set->fields] = true;
        /* StageName's values name HubSpot stages (pipelines.c); owners have none. */
        if (values && by_sf->kind == MAPPING_KIND_OWNER) {
            problem(errors, "mappings[%d]: \"values\" not supported for %s", i, by_sf->sf_field);
            return;
        }
        /* HubSpot: the owner mapping can only be two-way, whatever the rule says. */
        by_sf->rule = by_sf->kind == MAPPING_KIND_OWNER ? MAPPING_RULE_TWO_WAY : rule;
        cJSON_Delete(by_sf->values);
        by_sf->values = values ? cJSON_Duplicate(values, true) : NULL;
        return;
    }
    if (by_sf) {
        problem(errors,
                "mappings[%d]: duplicate salesforce field \"%s\" (already mapped to \"%s\")", i, sf,
                by_sf->hs_property);
        return;
    }
    if (by_hs) {
        problem(errors,
                "mappings[%d]: duplicate hubspot property \"%s\" (already mapped to \"%s\")", i, hs,
                by_hs->sf_field);
        return;
    }
    add_field(set, sf, hs, rule, values ? MAPPING_KIND_PICKLIST : MAPPING_KIND_TEXT, false);
    if (values)
        set->fields[set->count - 1].values = cJSON_Duplicate(values, true);
}

enum err mapping_set_new(const char *json, struct mapping_set **out, char **error)
{
    struct mapping_set *set = xcalloc(1, sizeof(*set));
    cJSON *root = NULL;
    struct buf errors;
    bool seen_standard[STANDARD_COUNT] = {false};
    enum err rc = ERR_OK;

    buf_init(&errors, 0);
    for (size_t i = 0; i < STANDARD_COUNT; i++)
        add_field(set, standard_fields[i].sf, standard_fields[i].hs, MAPPING_RULE_TWO_WAY,
                  standard_fields[i].kind, true);
    if (json) {
        root = cJSON_Parse(json);
        if (!root || !cJSON_IsArray(root)) {
            problem(&errors, "mappings file is not a json array");
        } else {
            int i = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, root)
            {
                load_entry(set, e, i++, seen_standard, &errors);
            }
        }
    }
    if (errors.len) {
        *error = buf_steal(&errors);
        rc = ERR_CONFIG;
        goto out;
    }
    *out = set;
    set = NULL;
out:
    buf_clear(&errors);
    cJSON_Delete(root);
    mapping_set_free(set);
    return rc;
}

void mapping_set_free(struct mapping_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++) {
        free(set->fields[i].sf_field);
        free(set->fields[i].hs_property);
        cJSON_Delete(set->fields[i].values);
    }
    free(set->fields);
    free(set);
}

const cJSON *mapping_values_of(const struct mapping_set *set, const char *sf_field)
{
    for (size_t i = 0; set && i < set->count; i++)
        if (strcasecmp(set->fields[i].sf_field, sf_field) == 0)
            return set->fields[i].values;
    return NULL;
}

size_t mapping_set_count(const struct mapping_set *set)
{
    return set->count;
}

const struct mapping_field *mapping_set_field(const struct mapping_set *set, size_t i)
{
    return i < set->count ? &set->fields[i] : NULL;
}

static char *field_list(const struct mapping_set *set, bool is_sf)
{
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < set->count; i++) {
        const struct mapping_field *f = &set->fields[i];
        if (f->rule == MAPPING_RULE_NONE)
            continue;
        if (b.len)
            buf_append_str(&b, ",");
        buf_append_str(&b, is_sf ? f->sf_field : f->hs_property);
    }
    return buf_steal(&b);
}

char *mapping_sf_field_list(const struct mapping_set *set)
{
    return field_list(set, true);
}

char *mapping_hs_property_list(const struct mapping_set *set)
{
    return field_list(set, false);
}

/* ---- Value conversion ------------------------------------------------------------------- */

/* A strict decimal: optional '-', digits, optional '.' and digits. */
static bool is_decimal_text(const char *s)
{
    size_t digits = 0;
    if (*s == '-')
        s++;
    for (; isdigit((unsigned char)*s); s++)
        digits++;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++)
            digits++;
    return digits > 0 && *s == '\0';
}

char *mapping_number_text(const cJSON *v)
{
    if (cJSON_IsString(v) && is_decimal_text(v->valuestring)) {
        /* Text keeps every digit, which a double would not for 18-digit currency values. */
        char *s = xstrdup(v->valuestring);
        char *dot = strchr(s, '.');
        if (dot) {
            char *end = s + strlen(s);
            while (end > dot + 1 && end[-1] == '0')
                *--end = '\0';
            if (end == dot + 1)
                *dot = '\0';
        }
        if (strcmp(s, "-0") == 0)
            strcpy(s, "0");
        return s;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return NULL;
    double d = v->valuedouble;
    char tmp[64];
    if (d == floor(d) && fabs(d) < 1e21) {
        snprintf(tmp, sizeof(tmp), "%.0f", d == 0 ? 0.0 : d);
        return xstrdup(tmp);
    }
    /* The shortest text that reads back to the same double: 0.1 stays "0.1". */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    return xstrdup(tmp);
}

static bool is_blank(const cJSON *v)
{
    return !v || cJSON_IsNull(v) || (cJSON_IsString(v) && v->valuestring[0] == '\0');
}

/* A HubSpot date/datetime value: epoch milliseconds as digits, or ISO 8601. */
static bool parse_hs_time(const char *s, int64_t *ms)
{
    if (util_parse_i64(s, ms))
        return true;
    return util_parse_iso8601_ms(s, ms);
}

static const cJSON *property_def(const struct mapping_context *ctx, const char *name)
{
    const cJSON *def;
    if (!ctx || !ctx->hs_property_defs)
        return NULL;
    cJSON_ArrayForEach(def, ctx->hs_property_defs)
    {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(def, "name"));
        if (n && strcmp(n, name) == 0)
            return def;
    }
    return NULL;
}

/* The kind used for one call: a custom field follows its HubSpot property definition. */
static enum mapping_kind effective_kind(const struct mapping_field *f, const cJSON *def)
{
    if (f->is_standard || !def)
        return f->kind;
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(def, "type"));
    static const struct {
        const char *type;
        enum mapping_kind kind;
    } by_type[] = {
        {"enumeration", MAPPING_KIND_PICKLIST},
        {"number", MAPPING_KIND_NUMBER},
        {"date", MAPPING_KIND_DATE},
        {"datetime", MAPPING_KIND_DATETIME},
        {"bool", MAPPING_KIND_BOOL},
    };
    const char *field_type =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(def, "fieldType"));
    if (type && strcmp(type, "enumeration") == 0 && field_type &&
        strcmp(field_type, "checkbox") == 0)
        return MAPPING_KIND_MULTIPICKLIST;
    for (size_t i = 0; type && i < sizeof(by_type) / sizeof(by_type[0]); i++)
        if (strcmp(type, by_type[i].type) == 0)
            return by_type[i].kind;
    return f->kind;
}

/* ---- Salesforce picklists (the describe) ---------------------------------------------------- */

static const cJSON *sf_field_def(const struct mapping_context *ctx, const char *name)
{
    const cJSON *def;
    if (!ctx || !ctx->sf_describe)
        return NULL;
    cJSON_ArrayForEach(def, cJSON_GetObjectItemCaseSensitive(ctx->sf_describe, "fields"))
    {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(def, "name"));
        if (n && strcasecmp(n, name) == 0)
            return def;
    }
    return NULL;
}

/* The describe of a picklist that lists values (one without values takes any text). */
static bool sf_has_values(const cJSON *def)
{
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(def, "type"));
    return type && (strcmp(type, "picklist") == 0 || strcmp(type, "multipicklist") == 0) &&
           cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(def, "picklistValues")) > 0;
}

/* The active picklist value whose value or label is s, ignoring case; NULL when none. */
static const char *sf_picklist_value(const cJSON *def, const char *s)
{
    const cJSON *pv;
    cJSON_ArrayForEach(pv, cJSON_GetObjectItemCaseSensitive(def, "picklistValues"))
    {
        const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pv, "value"));
        const char *label = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(pv, "label"));
        if (!value || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pv, "active")))
            continue;
        if (strcasecmp(value, s) == 0 || (label && strcasecmp(label, s) == 0))
            return value;
    }
    return NULL;
}

/* Splits a ';'-separated list (both CRMs' multi-select form) into trimmed, non-empty items.
 * Caller deletes. */
static cJSON *split_list(const char *s)
{
    cJSON *items = cJSON_CreateArray();
    while (s && *s) {
        size_t len = strcspn(s, ";");
        const char *a = s, *b = s + len;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a) {
            char *item = xstrndup(a, (size_t)(b - a));
            cJSON_AddItemToArray(items, cJSON_CreateString(item));
            free(item);
        }
        s += len;
        if (*s == ';')
            s++;
    }
    return items;
}

static char *join_list(const cJSON *items)
{
    struct buf b;
    const cJSON *it;
    buf_init(&b, 0);
    cJSON_ArrayForEach(it, items)
    {
        if (b.len)
            buf_append_str(&b, ";");
        buf_append_str(&b, it->valuestring);
    }
    return buf_steal(&b);
}

/* The value as the Salesforce picklist spells it (each item of a multi-select); false with
 * *bad (borrowed from value) naming the first item the picklist does not have. */
static bool sf_picklist_text(const cJSON *def, const char *value, char **out, char **bad)
{
    cJSON *items = split_list(value);
    cJSON *canon = cJSON_CreateArray();
    const cJSON *it;
    bool ok = true;
    cJSON_ArrayForEach(it, items)
    {
        const char *v = sf_picklist_value(def, it->valuestring);
        if (!v) {
            *bad = xstrdup(it->valuestring);
            ok = false;
            break;
        }
        cJSON_AddItemToArray(canon, cJSON_CreateString(v));
    }
    if (ok)
        *out = join_list(canon);
    cJSON_Delete(canon);
    cJSON_Delete(items);
    return ok;
}

/* HubSpot's closedate is a datetime property holding a date; custom date properties take
 * "YYYY-MM-DD". */
static bool hs_wants_datetime(const struct mapping_field *f, enum mapping_kind kind)
{
    return kind == MAPPING_KIND_DATETIME || (f->is_standard && kind == MAPPING_KIND_DATE);
}

/* Looks key up in an object of strings: exact match first, then ignoring case. */
static const char *lookup(const cJSON *map, const char *key)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(map, key);
    if (!cJSON_IsString(e))
        e = cJSON_GetObjectItem(map, key);
    return cJSON_IsString(e) ? e->valuestring : NULL;
}

/* The key whose value equals value (ignoring case), or NULL. */
static const char *reverse_lookup(const cJSON *map, const char *value)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, map)
    {
        if (cJSON_IsString(e) && strcasecmp(e->valuestring, value) == 0)
            return e->string;
    }
    return NULL;
}

/* The option of an enumeration definition whose value or label matches s, ignoring case. */
static const cJSON *find_option(const cJSON *def, const char *s)
{
    const cJSON *opt;
    cJSON_ArrayForEach(opt, cJSON_GetObjectItemCaseSensitive(def, "options"))
    {
        const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(opt, "value"));
        const char *label = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(opt, "label"));
        if ((value && strcasecmp(value, s) == 0) || (label && strcasecmp(label, s) == 0))
            return opt;
    }
    return NULL;
}

static enum err translate_owner(const struct mapping_context *ctx, enum mapping_direction dir,
                                const char *id, char **out)
{
    const char *hit = NULL;
    if (ctx && ctx->owner_map)
        hit = dir == MAPPING_SF_TO_HS ? lookup(ctx->owner_map, id)
                                      : reverse_lookup(ctx->owner_map, id);
    if (hit) {
        *out = xstrdup(hit);
        return ERR_OK;
    }
    if (ctx && ctx->owner_fn)
        return ctx->owner_fn(ctx->owner_arg, dir, id, out);
    return ERR_NOT_FOUND;
}

/* Text form of a Salesforce value as it would be written to HubSpot. Non-blank input.
 * ERR_OK with *out, ERR_INVALID with *reason when the value cannot be translated, or the owner
 * callback's error. */
static enum err sf_to_hs_value(const struct mapping_field *f, enum mapping_kind kind,
                               const cJSON *def, const struct mapping_context *ctx, const cJSON *v,
                               char **out, const char **reason)
{
    const char *s = cJSON_GetStringValue(v);
    char tmp[UTIL_ISO8601_LEN];
    int64_t ms;

    switch (kind) {
    case MAPPING_KIND_NUMBER:
        *out = mapping_number_text(v);
        *reason = "not a number";
        return *out ? ERR_OK : ERR_INVALID;
    case MAPPING_KIND_DATE:
    case MAPPING_KIND_DATETIME:
        *reason = "not a date";
        if (!s || !util_parse_iso8601_ms(s, &ms))
            return ERR_INVALID;
        if (hs_wants_datetime(f, kind))
            util_format_iso8601_ms(ms, tmp);
        else
            util_format_date(ms, tmp);
        *out = xstrdup(tmp);
        return ERR_OK;
    case MAPPING_KIND_BOOL:
        *reason = "not a boolean";
        if (cJSON_IsBool(v))
            s = cJSON_IsTrue(v) ? "true" : "false";
        if (!s || (strcasecmp(s, "true") != 0 && strcasecmp(s, "false") != 0))
            return ERR_INVALID;
        *out = xstrdup(strcasecmp(s, "true") == 0 ? "true" : "false");
        return ERR_OK;
    case MAPPING_KIND_PICKLIST: {
        *reason = "no hubspot option for value";
        if (!s)
            return ERR_INVALID;
        const char *mapped = f->values ? lookup(f->values, s) : NULL;
        const cJSON *opt = def ? find_option(def, mapped ? mapped : s) : NULL;
        if (opt)
            mapped = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(opt, "value"));
        else if (!mapped && !cJSON_GetObjectItemCaseSensitive(def, "options"))
            mapped = s; /* no definition to check against: pass the value through */
        if (!mapped)
            return ERR_INVALID;
        *out = xstrdup(mapped);
        return ERR_OK;
    }
    case MAPPING_KIND_MULTIPICKLIST: {
        *reason = "no hubspot option for value";
        if (!s)
            return ERR_INVALID;
        cJSON *items = split_list(s);
        cJSON *mapped_items = cJSON_CreateArray();
        const cJSON *it;
        bool ok = true;
        cJSON_ArrayForEach(it, items)
        {
            const char *mapped = f->values ? lookup(f->values, it->valuestring) : NULL;
            const cJSON *opt = find_option(def, mapped ? mapped : it->valuestring);
            if (opt)
                mapped = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(opt, "value"));
            ok = ok && mapped;
            if (mapped)
                cJSON_AddItemToArray(mapped_items, cJSON_CreateString(mapped));
        }
        if (ok)
            *out = join_list(mapped_items);
        cJSON_Delete(mapped_items);
        cJSON_Delete(items);
        return ok ? ERR_OK : ERR_INVALID;
    }
    case MAPPING_KIND_STAGE: {
        *reason = "no stage mapping for value";
        const char *stage = s && ctx ? lookup(ctx->stage_map, s) : NULL;
        if (!stage)
            return ERR_INVALID;
        *out = xstrdup(stage);
        return ERR_OK;
    }
    case MAPPING_KIND_OWNER: {
        *reason = "no hubspot owner for user";
        if (!s)
            return ERR_INVALID;
        enum err rc = translate_owner(ctx, MAPPING_SF_TO_HS, s, out);
        return rc == ERR_NOT_FOUND ? ERR_INVALID : rc;
    }
    case MAPPING_KIND_TEXT:
        break;
    }
    if (s) {
        *out = xstrdup(s);
    } else if (cJSON_IsBool(v)) {
        *out = xstrdup(cJSON_IsTrue(v) ? "true" : "false");
    } else if ((*out = mapping_number_text(v)) == NULL) {
        *reason = "not a text value";
        return ERR_INVALID;
    }
    return ERR_OK;
}

/* Salesforce value for a non-blank HubSpot value; ERR_INVALID with *reason, or the owner
 * callback's error. */
static enum err hs_to_sf_value(const struct mapping_field *f, enum mapping_kind kind,
                               const cJSON *def, const struct mapping_context *ctx, const char *s,
                               cJSON **out, const char **reason)
{
    char tmp[UTIL_ISO8601_LEN];
    int64_t ms;
    char *end = NULL;

    switch (kind) {
    case MAPPING_KIND_NUMBER: {
        *reason = "not a number";
        double d = strtod(s, &end);
        if (end == s || *end != '\0' || !isfinite(d))
            return ERR_INVALID;
        *out = cJSON_CreateNumber(d);
        return ERR_OK;
    }
    case MAPPING_KIND_DATE:
    case MAPPING_KIND_DATETIME:
        *reason = "not a date";
        if (!parse_hs_time(s, &ms))
            return ERR_INVALID;
        if (kind == MAPPING_KIND_DATE)
            util_format_date(ms, tmp);
        else
            util_format_iso8601_ms(ms, tmp);
        *out = cJSON_CreateString(tmp);
        return ERR_OK;
    case MAPPING_KIND_BOOL:
        *reason = "not a boolean";
        if (strcasecmp(s, "true") != 0 && strcasecmp(s, "false") != 0)
            return ERR_INVALID;
        *out = cJSON_CreateBool(strcasecmp(s, "true") == 0);
        return ERR_OK;
    case MAPPING_KIND_PICKLIST:
    case MAPPING_KIND_MULTIPICKLIST: {
        /* The file's value first, else the option's label (what HubSpot shows, and what
         * Salesforce picklist values read like); map_to_sf then checks it against the
         * Salesforce picklist. */
        *reason = "no hubspot option matches value";
        cJSON *items = kind == MAPPING_KIND_PICKLIST ? cJSON_CreateArray() : split_list(s);
        if (kind == MAPPING_KIND_PICKLIST)
            cJSON_AddItemToArray(items, cJSON_CreateString(s));
        cJSON *sf_items = cJSON_CreateArray();
        bool has_options = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(def, "options")) > 0;
        bool ok = true;
        const cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            const char *sf = f->values ? reverse_lookup(f->values, it->valuestring) : NULL;
            const cJSON *opt = !sf && def ? find_option(def, it->valuestring) : NULL;
            if (opt)
                sf = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(opt, "label"));
            if (!sf && !has_options)
                sf = it->valuestring;
            ok = ok && sf;
            if (sf)
                cJSON_AddItemToArray(sf_items, cJSON_CreateString(sf));
        }
        if (ok) {
            char *text = join_list(sf_items);
            *out = cJSON_CreateString(text);
            free(text);
        }
        cJSON_Delete(sf_items);
        cJSON_Delete(items);
        return ok ? ERR_OK : ERR_INVALID;
    }
    case MAPPING_KIND_STAGE: {
        *reason = "no stage mapping for value";
        const char *stage = ctx ? reverse_lookup(ctx->stage_map, s) : NULL;
        if (!stage)
            return ERR_INVALID;
        *out = cJSON_CreateString(stage);
        return ERR_OK;
    }
    case MAPPING_KIND_OWNER: {
        *reason = "no salesforce user for owner";
        char *user = NULL;
        enum err rc = translate_owner(ctx, MAPPING_HS_TO_SF, s, &user);
        if (rc == ERR_OK)
            *out = cJSON_CreateString(user);
        free(user);
        return rc == ERR_NOT_FOUND ? ERR_INVALID : rc;
    }
    case MAPPING_KIND_TEXT:
        break;
    }
    *out = cJSON_CreateString(s);
    return ERR_OK;
}

/* Whether two HubSpot-side texts denote the same value for this kind. */
static bool hs_equal(enum mapping_kind kind, const char *a, const char *b)
{
    int64_t ma, mb;
    char *ea = NULL, *eb = NULL;
    switch (kind) {
    case MAPPING_KIND_NUMBER: {
        double da = strtod(a, &ea), db = strtod(b, &eb);
        if (ea != a && *ea == '\0' && eb != b && *eb == '\0')
            return da == db;
        break;
    }
    case MAPPING_KIND_DATE:
    case MAPPING_KIND_DATETIME:
        if (parse_hs_time(a, &ma) && parse_hs_time(b, &mb))
            return kind == MAPPING_KIND_DATE ? ma / 86400000 == mb / 86400000 : ma == mb;
        break;
    case MAPPING_KIND_BOOL:
    case MAPPING_KIND_PICKLIST:
        return strcasecmp(a, b) == 0;
    case MAPPING_KIND_MULTIPICKLIST: {
        /* The same options in any order. */
        cJSON *la = split_list(a), *lb = split_list(b);
        bool same = cJSON_GetArraySize(la) == cJSON_GetArraySize(lb);
        const cJSON *x;
        cJSON_ArrayForEach(x, la)
        {
            bool found = false;
            const cJSON *y;
            cJSON_ArrayForEach(y, lb) found =
                found || strcasecmp(x->valuestring, y->valuestring) == 0;
            same = same && found;
        }
        cJSON_Delete(la);
        cJSON_Delete(lb);
        return same;
    }
    default:
        break;
    }
    return strcmp(a, b) == 0;
}

/* ---- Applying the rules ----------------------------------------------------------------- */

static void add_skip(struct mapping_result *r, const char *field, const char *reason)
{
    r->skips = xrealloc(r->skips, (r->skip_count + 1) * sizeof(*r->skips));
    r->skips[r->skip_count++] = (struct mapping_skip){xstrdup(field), xstrdup(reason)};
}

static const char *hs_text(const cJSON *props, const char *name)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(props, name));
}

static enum err map_to_hs(const struct mapping_field *f, const struct mapping_context *ctx,
                          const cJSON *sf_record, const cJSON *hs_props, struct mapping_result *r)
{
    const cJSON *v = cJSON_GetObjectItem(sf_record, f->sf_field);
    const cJSON *def = property_def(ctx, f->hs_property);
    enum mapping_kind kind = effective_kind(f, def);
    const char *current = hs_text(hs_props, f->hs_property);
    const char *reason = NULL;
    char *text = NULL;
    enum err rc = ERR_OK;

    if (!v) /* not in the record (not selected, or not in the outbound message): unknown */
        return ERR_OK;
    if (is_blank(v)) {
        /* Every rule that lets Salesforce write also propagates its deletes. */
        if (hs_props && current && current[0] != '\0')
            cJSON_AddStringToObject(r->changes, f->hs_property, "");
        return ERR_OK;
    }
    rc = sf_to_hs_value(f, kind, def, ctx, v, &text, &reason);
    if (rc == ERR_INVALID) {
        add_skip(r, f->sf_field, reason);
        rc = ERR_OK;
        goto out;
    }
    if (rc != ERR_OK)
        goto out;
    if (!current || !hs_equal(kind, text, current))
        cJSON_AddStringToObject(r->changes, f->hs_property, text);
    if (kind == MAPPING_KIND_STAGE && ctx && ctx->hs_pipeline_id &&
        cJSON_GetObjectItemCaseSensitive(r->changes, f->hs_property)) {
        const char *pipeline = hs_text(hs_props, "pipeline");
        if (!pipeline || strcmp(pipeline, ctx->hs_pipeline_id) != 0)
            cJSON_AddStringToObject(r->changes, "pipeline", ctx->hs_pipeline_id);
    }
out:
    free(text);
    return rc;
}

/* Whether the Salesforce value v already says what the HubSpot text s says. */
static bool sf_matches(const struct mapping_field *f, enum mapping_kind kind, const cJSON *def,
                       const struct mapping_context *ctx, const cJSON *v, const char *s)
{
    char *text = NULL;
    const char *reason = NULL;
    if (is_blank(v))
        return false;
    bool same =
        sf_to_hs_value(f, kind, def, ctx, v, &text, &reason) == ERR_OK && hs_equal(kind, text, s);
    free(text);
    return same;
}

static enum err map_to_sf(const struct mapping_field *f, const struct mapping_context *ctx,
                          const cJSON *sf_record, const cJSON *hs_props, struct mapping_result *r)
{
    const cJSON *hv = cJSON_GetObjectItemCaseSensitive(hs_props, f->hs_property);
    const cJSON *sv = sf_record ? cJSON_GetObjectItem(sf_record, f->sf_field) : NULL;
    const cJSON *def = property_def(ctx, f->hs_property);
    enum mapping_kind kind = effective_kind(f, def);
    const char *reason = NULL;
    cJSON *value = NULL;

    if (f->rule == MAPPING_RULE_ALWAYS_SALESFORCE || !hv)
        return ERR_OK;
    if (f->rule == MAPPING_RULE_PREFER_SALESFORCE_UNLESS_BLANK && !is_blank(sv))
        return ERR_OK;
    if (is_blank(hv)) {
        /* Only two_way propagates HubSpot deletes (prefer_salesforce_unless_blank ends here
         * with a blank Salesforce field, so there is nothing to clear). */
        if (sf_record && !is_blank(sv))
            cJSON_AddNullToObject(r->changes, f->sf_field);
        return ERR_OK;
    }
    if (!cJSON_IsString(hv)) {
        add_skip(r, f->hs_property, "not a text value");
        return ERR_OK;
    }
    if (sf_matches(f, kind, def, ctx, sv, hv->valuestring))
        return ERR_OK;
    enum err rc = hs_to_sf_value(f, kind, def, ctx, hv->valuestring, &value, &reason);
    if (rc == ERR_INVALID) {
        add_skip(r, f->hs_property, reason);
        return ERR_OK;
    }
    const cJSON *sf_def = sf_field_def(ctx, f->sf_field);
    if (rc == ERR_OK && kind != MAPPING_KIND_STAGE && kind != MAPPING_KIND_OWNER &&
        sf_has_values(sf_def) && cJSON_IsString(value)) {
        /* Checked against the field's values: an unknown value would fail the whole record on
         * a restricted picklist, and add a stray value to an unrestricted one. */
        char *canon = NULL, *bad = NULL;
        if (!sf_picklist_text(sf_def, value->valuestring, &canon, &bad)) {
            char *why = xasprintf("no salesforce picklist value \"%s\"", bad);
            add_skip(r, f->hs_property, why);
            free(why);
            free(bad);
            cJSON_Delete(value);
            return ERR_OK;
        }
        cJSON_Delete(value);
        value = cJSON_CreateString(canon);
        free(canon);
    }
    if (rc == ERR_OK)
        cJSON_AddItemToObject(r->changes, f->sf_field, value);
    return rc;
}

enum err mapping_apply(const struct mapping_set *set, const struct mapping_context *ctx,
                       enum mapping_direction dir, const cJSON *sf_record,
                       const cJSON *hs_properties, struct mapping_result *out)
{
    struct mapping_result r = {.changes = cJSON_CreateObject()};
    enum err rc = ERR_OK;
    const cJSON *source = dir == MAPPING_SF_TO_HS ? sf_record : hs_properties;
    const cJSON *target = dir == MAPPING_SF_TO_HS ? hs_properties : sf_record;

    if (!cJSON_IsObject(source) || (target && !cJSON_IsObject(target))) {
        rc = ERR_INVALID;
        goto out;
    }
    for (size_t i = 0; i < set->count && rc == ERR_OK; i++) {
        const struct mapping_field *f = &set->fields[i];
        if (f->rule == MAPPING_RULE_NONE)
            continue;
        rc = dir == MAPPING_SF_TO_HS ? map_to_hs(f, ctx, sf_record, hs_properties, &r)
                                     : map_to_sf(f, ctx, sf_record, hs_properties, &r);
    }
    if (rc != ERR_OK)
        goto out;
    *out = r;
    r = (struct mapping_result){0};
out:
    mapping_result_clear(&r);
    return rc;
}

void mapping_result_clear(struct mapping_result *r)
{
    if (!r)
        return;
    cJSON_Delete(r->changes);
    for (size_t i = 0; i < r->skip_count; i++) {
        free(r->skips[i].field);
        free(r->skips[i].reason);
    }
    free(r->skips);
    *r = (struct mapping_result){0};
}

bool mapping_result_lacks_hs_option(const struct mapping_result *r)
{
    static const char prefix[] = "no hubspot option"; /* "... for value", "... matches value" */
    for (size_t i = 0; r && i < r->skip_count; i++)
        if (strncmp(r->skips[i].reason, prefix, sizeof(prefix) - 1) == 0)
            return true;
    return false;
}
