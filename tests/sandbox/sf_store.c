/* sf_store.c - the emulated Salesforce org: schema, records, write validation, seed data,
 * tokens and API usage. It does not speak HTTP; sf_rest.c and sf_control.c do. */
#include "sf_store.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sandbox.h"
#include "sf_outbound.h"
#include "util.h"
#include "vindex.h"

#define SF_MAX_TOKENS 256

struct sf_token {
    char *token;
    char user_id[19];
    int64_t expires_ms;
};

static struct {
    struct sf_object **objects;
    size_t object_count;
    size_t object_cap;
    uint64_t id_counter;
    struct vindex *by_id; /* record id -> record */
    char org_id[19];
    char api_user[19];
    char ui_user[19];
    char instance_url[256];
    struct sf_token tokens[SF_MAX_TOKENS];
    size_t token_count;
    uint64_t token_counter;
    int64_t api_used;
} st;

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* ---- errors ------------------------------------------------------------------------------ */

void sf_error_set(struct sf_error *err, int status, const char *code, const char *fields,
                  const char *fmt, ...)
{
    va_list ap;
    err->status = status;
    snprintf(err->code, sizeof(err->code), "%s", code);
    snprintf(err->fields, sizeof(err->fields), "%s", fields ? fields : "");
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

static cJSON *fields_array(const char *list)
{
    cJSON *arr = cJSON_CreateArray();
    const char *p = list;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char *name = xstrndup(p, n);
        cJSON_AddItemToArray(arr, cJSON_CreateString(name));
        free(name);
        p = comma ? comma + 1 : NULL;
    }
    return arr;
}

cJSON *sf_error_rest(const struct sf_error *err)
{
    cJSON *arr = cJSON_CreateArray();
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "message", err->message);
    cJSON_AddStringToObject(e, "errorCode", err->code);
    if (err->fields[0])
        cJSON_AddItemToObject(e, "fields", fields_array(err->fields));
    cJSON_AddItemToArray(arr, e);
    return arr;
}

cJSON *sf_error_item(const struct sf_error *err)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "statusCode", err->code);
    cJSON_AddStringToObject(e, "message", err->message);
    cJSON_AddItemToObject(e, "fields", fields_array(err->fields));
    return e;
}

/* ---- time -------------------------------------------------------------------------------- */

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static void format_time(int64_t ms, const char *zone, char out[32])
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%s", y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), (int)(ms - secs * 1000), zone);
}

void sf_time_rest(int64_t ms, char out[32])
{
    format_time(ms, "+0000", out);
}

void sf_time_xml(int64_t ms, char out[32])
{
    format_time(ms, "Z", out);
}

static bool digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

static bool parse_date_prefix(const char *s, int *y, int *m, int *d)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!digits(s, 4, y) || s[4] != '-' || !digits(s + 5, 2, m) || s[7] != '-' ||
        !digits(s + 8, 2, d))
        return false;
    if (*m < 1 || *m > 12 || *d < 1 || *d > mdays[*m - 1])
        return false;
    if (*m == 2 && *d == 29 && !((*y % 4 == 0 && *y % 100 != 0) || *y % 400 == 0))
        return false;
    return true;
}

bool sf_date_valid(const char *s)
{
    int y, m, d;
    return strlen(s) == 10 && parse_date_prefix(s, &y, &m, &d);
}

bool sf_time_parse(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac = 0;
    if (!parse_date_prefix(s, &y, &mo, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    if (h > 23 || mi > 59 || sec > 59)
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        int n = 0, scale = 100;
        p++;
        while (isdigit((unsigned char)*p)) {
            if (n < 3)
                frac += (*p - '0') * scale;
            scale /= 10;
            n++;
            p++;
        }
        if (n == 0)
            return false;
    }
    int64_t offset_min = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        int sign = *p == '-' ? -1 : 1;
        p++;
        if (!digits(p, 2, &oh))
            return false;
        p += 2;
        if (*p == ':')
            p++;
        if (!digits(p, 2, &om))
            return false;
        p += 2;
        offset_min = sign * (oh * 60 + om);
    } else {
        return false;
    }
    if (*p)
        return false;
    int64_t secs = util_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    *ms = (secs - offset_min * 60) * 1000 + frac;
    return true;
}

/* ---- ids --------------------------------------------------------------------------------- */

static void id_suffix(const char *id15, char out[3])
{
    static const char map[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    for (int i = 0; i < 3; i++) {
        int flags = 0;
        for (int j = 0; j < 5; j++) {
            char c = id15[i * 5 + j];
            if (c >= 'A' && c <= 'Z')
                flags |= 1 << j;
        }
        out[i] = map[flags];
    }
}

void sf_id_new(const char *prefix, char out[19])
{
    uint64_t n = ++st.id_counter;
    memcpy(out, prefix, 3);
    out[3] = '5';
    out[4] = 'w';
    for (int i = 14; i >= 5; i--) {
        out[i] = base62[n % 62];
        n /= 62;
    }
    id_suffix(out, out + 15);
    out[18] = '\0';
}

bool sf_id_normalize(const char *in, char out[19])
{
    size_t n = in ? strlen(in) : 0;
    if (n != 15 && n != 18)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)in[i]))
            return false;
    memcpy(out, in, 15);
    id_suffix(out, out + 15);
    out[18] = '\0';
    if (n == 18)
        for (int i = 15; i < 18; i++)
            if (toupper((unsigned char)in[i]) != out[i])
                return false;
    return true;
}

/* ---- org, users, host -------------------------------------------------------------------- */

const char *sf_store_api_user_id(void)
{
    return st.api_user;
}

const char *sf_store_ui_user_id(void)
{
    return st.ui_user;
}

const char *sf_store_org_id(void)
{
    return st.org_id;
}

bool sf_store_set_org_id(const char *id)
{
    char norm[19];
    if (!sf_id_normalize(id, norm) || strncmp(norm, "00D", 3) != 0)
        return false;
    memcpy(st.org_id, norm, sizeof(st.org_id));
    return true;
}

const char *sf_store_instance_url(void)
{
    const char *s = sb_setting_str("sf_instance_url");
    if (s && *s)
        return s;
    return st.instance_url[0] ? st.instance_url : "http://127.0.0.1";
}

void sf_store_note_host(const char *host)
{
    if (host && *host && strlen(host) < sizeof(st.instance_url) - 8)
        snprintf(st.instance_url, sizeof(st.instance_url), "http://%s", host);
}

/* ---- schema ------------------------------------------------------------------------------ */

struct sf_object *sf_store_object(const char *name, bool tooling)
{
    for (size_t i = 0; i < st.object_count; i++)
        if (st.objects[i]->is_tooling == tooling && strcasecmp(st.objects[i]->name, name) == 0)
            return st.objects[i];
    return NULL;
}

struct sf_object *sf_store_object_at(size_t i)
{
    return i < st.object_count ? st.objects[i] : NULL;
}

size_t sf_store_object_count(void)
{
    return st.object_count;
}

struct sf_field *sf_store_field(const struct sf_object *obj, const char *name)
{
    for (size_t i = 0; i < obj->field_count; i++)
        if (strcasecmp(obj->fields[i].name, name) == 0)
            return &obj->fields[i];
    return NULL;
}

struct sf_field *sf_store_relationship(const struct sf_object *obj, const char *rel)
{
    for (size_t i = 0; i < obj->field_count; i++)
        if (obj->fields[i].rel_name && strcasecmp(obj->fields[i].rel_name, rel) == 0)
            return &obj->fields[i];
    return NULL;
}

struct sf_field *sf_store_add_field(struct sf_object *obj, const char *name, enum sf_type type,
                                    int length)
{
    if (obj->field_count == obj->field_cap) {
        obj->field_cap = obj->field_cap ? obj->field_cap * 2 : 16;
        obj->fields = xrealloc(obj->fields, obj->field_cap * sizeof(*obj->fields));
    }
    struct sf_field *f = &obj->fields[obj->field_count++];
    memset(f, 0, sizeof(*f));
    f->name = xstrdup(name);
    f->type = type;
    f->length = length;
    f->is_createable = true;
    f->is_updateable = true;
    f->is_custom = strlen(name) > 3 && strcmp(name + strlen(name) - 3, "__c") == 0;
    return f;
}

static struct sf_object *add_object(const char *name, const char *label, const char *prefix,
                                    bool tooling)
{
    struct sf_object *obj = xcalloc(1, sizeof(*obj));
    obj->name = xstrdup(name);
    obj->label = xstrdup(label);
    snprintf(obj->prefix, sizeof(obj->prefix), "%s", prefix);
    obj->is_tooling = tooling;
    if (st.object_count == st.object_cap) {
        st.object_cap = st.object_cap ? st.object_cap * 2 : 16;
        st.objects = xrealloc(st.objects, st.object_cap * sizeof(*st.objects));
    }
    st.objects[st.object_count++] = obj;
    struct sf_field *id = sf_store_add_field(obj, "Id", SF_ID, 18);
    id->is_createable = false;
    id->is_updateable = false;
    return obj;
}

static struct sf_field *ro(struct sf_object *obj, const char *name, enum sf_type type, int len)
{
    struct sf_field *f = sf_store_add_field(obj, name, type, len);
    f->is_createable = false;
    f->is_updateable = false;
    return f;
}

static struct sf_field *ref(struct sf_object *obj, const char *name, const char *to,
                            const char *rel)
{
    struct sf_field *f = sf_store_add_field(obj, name, SF_REFERENCE, 18);
    f->ref_to = xstrdup(to);
    f->rel_name = xstrdup(rel);
    return f;
}

static void picklist(struct sf_field *f, const char *const *values)
{
    f->picklist = cJSON_CreateArray();
    for (size_t i = 0; values[i]; i++) {
        cJSON *pv = cJSON_CreateObject();
        cJSON_AddBoolToObject(pv, "active", true);
        cJSON_AddBoolToObject(pv, "defaultValue", false);
        cJSON_AddStringToObject(pv, "label", values[i]);
        cJSON_AddStringToObject(pv, "value", values[i]);
        cJSON_AddItemToArray(f->picklist, pv);
    }
}

static void system_fields(struct sf_object *obj, bool owner)
{
    if (owner)
        ref(obj, "OwnerId", "User", "Owner");
    ro(obj, "IsDeleted", SF_BOOL, 0);
    ro(obj, "CreatedDate", SF_DATETIME, 0);
    ref(obj, "CreatedById", "User", "CreatedBy")->is_createable = false;
    obj->fields[obj->field_count - 1].is_updateable = false;
    ro(obj, "LastModifiedDate", SF_DATETIME, 0);
    ref(obj, "LastModifiedById", "User", "LastModifiedBy")->is_createable = false;
    obj->fields[obj->field_count - 1].is_updateable = false;
    ro(obj, "SystemModstamp", SF_DATETIME, 0);
}

static void build_schema(void)
{
    struct sf_object *o;
    struct sf_field *f;

    o = add_object("User", "User", "005", false);
    o->is_read_only = true;
    sf_store_add_field(o, "Username", SF_STRING, 80)->is_required = true;
    sf_store_add_field(o, "Email", SF_EMAIL, 128)->is_required = true;
    sf_store_add_field(o, "FirstName", SF_STRING, 40);
    sf_store_add_field(o, "LastName", SF_STRING, 80)->is_required = true;
    ro(o, "Name", SF_STRING, 121);
    sf_store_add_field(o, "IsActive", SF_BOOL, 0);
    system_fields(o, false);

    o = add_object("RecordType", "Record Type", "012", false);
    o->is_read_only = true;
    sf_store_add_field(o, "Name", SF_STRING, 80)->is_required = true;
    sf_store_add_field(o, "DeveloperName", SF_STRING, 80)->is_required = true;
    sf_store_add_field(o, "SobjectType", SF_PICKLIST, 40)->is_required = true;
    sf_store_add_field(o, "IsActive", SF_BOOL, 0);
    sf_store_add_field(o, "Description", SF_STRING, 255);
    ref(o, "BusinessProcessId", "BusinessProcess", "BusinessProcess");
    system_fields(o, false);

    /* A sales process: the stages an opportunity record type offers (kept in the hidden
     * "_stages" value, set through the control API; Salesforce keeps them in Metadata). */
    o = add_object("BusinessProcess", "Business Process", "019", false);
    o->is_read_only = true;
    sf_store_add_field(o, "Name", SF_STRING, 80)->is_required = true;
    sf_store_add_field(o, "Description", SF_STRING, 255);
    sf_store_add_field(o, "TableEnumOrId", SF_STRING, 40)->is_required = true;
    sf_store_add_field(o, "IsActive", SF_BOOL, 0);
    system_fields(o, false);

    o = add_object("OpportunityStage", "Opportunity Stage", "01J", false);
    o->is_read_only = true;
    sf_store_add_field(o, "ApiName", SF_STRING, 255)->is_required = true;
    sf_store_add_field(o, "MasterLabel", SF_STRING, 255)->is_required = true;
    sf_store_add_field(o, "IsActive", SF_BOOL, 0);
    sf_store_add_field(o, "IsClosed", SF_BOOL, 0);
    sf_store_add_field(o, "IsWon", SF_BOOL, 0);
    sf_store_add_field(o, "DefaultProbability", SF_PERCENT, 0);
    sf_store_add_field(o, "ForecastCategory", SF_PICKLIST, 40);
    sf_store_add_field(o, "ForecastCategoryName", SF_PICKLIST, 40);
    sf_store_add_field(o, "SortOrder", SF_INT, 0);
    sf_store_add_field(o, "Description", SF_STRING, 255);
    system_fields(o, false);

    o = add_object("Account", "Account", "001", false);
    sf_store_add_field(o, "Name", SF_STRING, 255)->is_required = true;
    sf_store_add_field(o, "Type", SF_PICKLIST, 255);
    sf_store_add_field(o, "Industry", SF_PICKLIST, 255);
    sf_store_add_field(o, "Website", SF_URL, 255);
    sf_store_add_field(o, "Phone", SF_PHONE, 40);
    sf_store_add_field(o, "BillingCity", SF_STRING, 40);
    sf_store_add_field(o, "BillingCountry", SF_STRING, 80);
    sf_store_add_field(o, "Description", SF_TEXTAREA, 32000);
    system_fields(o, true);

    o = add_object("Contact", "Contact", "003", false);
    sf_store_add_field(o, "FirstName", SF_STRING, 40);
    sf_store_add_field(o, "LastName", SF_STRING, 80)->is_required = true;
    ro(o, "Name", SF_STRING, 121);
    sf_store_add_field(o, "Email", SF_EMAIL, 80);
    sf_store_add_field(o, "Phone", SF_PHONE, 40);
    sf_store_add_field(o, "Title", SF_STRING, 128);
    ref(o, "AccountId", "Account", "Account");
    system_fields(o, true);

    o = add_object("Opportunity", "Opportunity", "006", false);
    sf_store_add_field(o, "Name", SF_STRING, 120)->is_required = true;
    ref(o, "AccountId", "Account", "Account");
    ref(o, "RecordTypeId", "RecordType", "RecordType");
    sf_store_add_field(o, "Amount", SF_CURRENCY, 18);
    sf_store_add_field(o, "CloseDate", SF_DATE, 0)->is_required = true;
    sf_store_add_field(o, "StageName", SF_PICKLIST, 255)->is_required = true;
    sf_store_add_field(o, "Probability", SF_PERCENT, 3);
    /* The standard values of a new org; both picklists are unrestricted, as Salesforce ships
     * them. */
    picklist(sf_store_add_field(o, "Type", SF_PICKLIST, 255),
             (const char *const[]){"Existing Customer - Upgrade", "Existing Customer - Replacement",
                                   "Existing Customer - Downgrade", "New Customer", NULL});
    picklist(sf_store_add_field(o, "LeadSource", SF_PICKLIST, 255),
             (const char *const[]){"Web", "Phone Inquiry", "Partner Referral", "Purchased List",
                                   "Other", NULL});
    sf_store_add_field(o, "NextStep", SF_STRING, 255);
    sf_store_add_field(o, "Description", SF_TEXTAREA, 32000);
    sf_store_add_field(o, "ForecastCategoryName", SF_PICKLIST, 40);
    ro(o, "IsClosed", SF_BOOL, 0);
    ro(o, "IsWon", SF_BOOL, 0);
    system_fields(o, true);
    /* Every opportunity has an owner: OwnerId is not nillable (reference 2.1 lists it without
     * "Nillable"), defaulted to the writing user only when a create leaves it out. */
    sf_store_field(o, "OwnerId")->is_required = true;

    o = add_object("OpportunityContactRole", "Opportunity Contact Role", "00K", false);
    f = ref(o, "OpportunityId", "Opportunity", "Opportunity");
    f->is_required = true;
    f->is_updateable = false;
    ref(o, "ContactId", "Contact", "Contact")->is_required = true;
    sf_store_add_field(o, "Role", SF_PICKLIST, 255);
    sf_store_add_field(o, "IsPrimary", SF_BOOL, 0);
    system_fields(o, false);

    /* One computed row: the permissions of the token's user (sf_permissions setting). */
    o = add_object("UserPermissionAccess", "User Permission Access", "0Hs", false);
    o->is_read_only = true;
    o->is_virtual = true;
    ro(o, "PermissionsApiEnabled", SF_BOOL, 0);
    ro(o, "PermissionsViewSetup", SF_BOOL, 0);
    ro(o, "PermissionsModifyAllData", SF_BOOL, 0);
    ro(o, "PermissionsModifyMetadata", SF_BOOL, 0);
    ro(o, "PermissionsCustomizeApplication", SF_BOOL, 0);

    /* Tooling objects (sf_tooling.c validates their Metadata). */
    o = add_object("WorkflowOutboundMessage", "Outbound Message", "04k", true);
    sf_store_add_field(o, "Name", SF_STRING, 80);
    sf_store_add_field(o, "FullName", SF_STRING, 255)->is_single_row = true;
    sf_store_add_field(o, "ApiVersion", SF_DOUBLE, 0);
    sf_store_add_field(o, "EntityDefinitionId", SF_STRING, 40);
    sf_store_add_field(o, "IntegrationUserId", SF_ID, 18);
    sf_store_add_field(o, "NamespacePrefix", SF_STRING, 15);
    sf_store_add_field(o, "Metadata", SF_COMPLEX, 0)->is_single_row = true;
    system_fields(o, false);

    o = add_object("Flow", "Flow", "301", true);
    sf_store_add_field(o, "MasterLabel", SF_STRING, 255);
    sf_store_add_field(o, "Definition", SF_STRING, 255);
    sf_store_add_field(o, "DefinitionId", SF_ID, 18);
    sf_store_add_field(o, "Status", SF_PICKLIST, 40);
    sf_store_add_field(o, "ProcessType", SF_PICKLIST, 40);
    sf_store_add_field(o, "VersionNumber", SF_INT, 0);
    sf_store_add_field(o, "FullName", SF_STRING, 255)->is_single_row = true;
    sf_store_add_field(o, "Metadata", SF_COMPLEX, 0)->is_single_row = true;
    system_fields(o, false);

    o = add_object("CustomField", "Custom Field", "00N", true);
    sf_store_add_field(o, "DeveloperName", SF_STRING, 40);
    sf_store_add_field(o, "TableEnumOrId", SF_STRING, 40);
    sf_store_add_field(o, "NamespacePrefix", SF_STRING, 15);
    sf_store_add_field(o, "FullName", SF_STRING, 255)->is_single_row = true;
    sf_store_add_field(o, "Metadata", SF_COMPLEX, 0)->is_single_row = true;
    system_fields(o, false);
}

/* ---- records ----------------------------------------------------------------------------- */

struct sf_record *sf_store_find(const char *id, struct sf_object **obj)
{
    char norm[19];
    if (!sf_id_normalize(id, norm))
        return NULL;
    void *const *found = NULL;
    size_t n = vindex_get(st.by_id, norm, &found);
    for (size_t i = 0; i < n; i++) {
        struct sf_record *r = found[i];
        if (strcmp(r->id, norm) == 0) {
            if (obj)
                *obj = r->owner;
            return r;
        }
    }
    return NULL;
}

static bool is_indexed(const struct sf_field *f)
{
    return f->is_external_id || f->is_unique;
}

static char *value_key(const struct sf_field *f, const char *value)
{
    return xasprintf("%s\x1f%s", f->name, value);
}

/* Notes the record's values of external id and unique fields (after every write). */
static void index_values(struct sf_object *obj, struct sf_record *rec)
{
    for (size_t i = 0; i < obj->field_count; i++) {
        const struct sf_field *f = &obj->fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec->values, f->name);
        if (!is_indexed(f) || !cJSON_IsString(v) || !*v->valuestring)
            continue;
        if (!obj->by_value)
            obj->by_value = vindex_new();
        char *key = value_key(f, v->valuestring);
        vindex_add(obj->by_value, key, rec);
        free(key);
    }
}

size_t sf_store_find_by_field(const struct sf_object *obj, const struct sf_field *f,
                              const char *value, struct sf_record **out, size_t max)
{
    size_t n = 0;
    void *const *found = NULL;
    size_t count = 0;
    if (is_indexed(f)) {
        char *key = value_key(f, value);
        count = vindex_get(obj->by_value, key, &found);
        free(key);
    }
    for (size_t i = 0; i < (is_indexed(f) ? count : obj->record_count) && n < max; i++) {
        struct sf_record *r = is_indexed(f) ? found[i] : obj->records[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->values, f->name);
        if (r->is_deleted || !cJSON_IsString(v))
            continue;
        /* Text external ids match case-insensitively (Salesforce's default for unique). */
        if (strcasecmp(v->valuestring, value) == 0)
            out[n++] = r;
    }
    return n;
}

const char *sf_store_user_by_username(const char *username, bool active_only)
{
    struct sf_object *users = sf_store_object("User", false);
    for (size_t i = 0; username && users && i < users->record_count; i++) {
        const struct sf_record *r = users->records[i];
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(r->values, "Username");
        if (cJSON_IsString(u) && strcasecmp(u->valuestring, username) == 0 && !r->is_deleted &&
            (!active_only || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r->values, "IsActive"))))
            return r->id;
    }
    return NULL;
}

static void set_value(cJSON *values, const char *name, cJSON *v)
{
    if (cJSON_GetObjectItemCaseSensitive(values, name))
        cJSON_ReplaceItemInObjectCaseSensitive(values, name, v);
    else
        cJSON_AddItemToObject(values, name, v);
}

static void set_string(cJSON *values, const char *name, const char *s)
{
    set_value(values, name, s ? cJSON_CreateString(s) : cJSON_CreateNull());
}

static const char *get_string(const cJSON *values, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(values, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void stamp(struct sf_object *obj, cJSON *values, const char *user, int64_t now,
                  bool is_create)
{
    char ts[32];
    /* Salesforce keeps system timestamps to the second: always ".000". */
    sf_time_rest(now - now % 1000, ts);
    if (!sf_store_field(obj, "SystemModstamp"))
        return;
    if (is_create) {
        set_string(values, "CreatedDate", ts);
        set_string(values, "CreatedById", user);
        set_value(values, "IsDeleted", cJSON_CreateFalse());
    }
    set_string(values, "LastModifiedDate", ts);
    set_string(values, "LastModifiedById", user);
    set_string(values, "SystemModstamp", ts);
}

static void add_record(struct sf_object *obj, struct sf_record *rec)
{
    if (obj->record_count == obj->record_cap) {
        obj->record_cap = obj->record_cap ? obj->record_cap * 2 : 64;
        obj->records = xrealloc(obj->records, obj->record_cap * sizeof(*obj->records));
    }
    obj->records[obj->record_count++] = rec;
    rec->owner = obj;
    if (!st.by_id)
        st.by_id = vindex_new();
    vindex_add(st.by_id, rec->id, rec);
}

static cJSON *empty_values(const struct sf_object *obj)
{
    cJSON *values = cJSON_CreateObject();
    for (size_t i = 0; i < obj->field_count; i++)
        cJSON_AddItemToObject(values, obj->fields[i].name, cJSON_CreateNull());
    return values;
}

struct sf_record *sf_store_insert_raw(struct sf_object *obj, cJSON *values)
{
    struct sf_record *rec = xcalloc(1, sizeof(*rec));
    int64_t now = sb_now_ms();
    cJSON *full = empty_values(obj);
    cJSON *item = values ? values->child : NULL;
    for (; item; item = item->next)
        set_value(full, item->string, cJSON_Duplicate(item, true));
    cJSON_Delete(values);
    const char *id = get_string(full, "Id");
    if (!id || !sf_id_normalize(id, rec->id))
        sf_id_new(obj->prefix, rec->id);
    set_string(full, "Id", rec->id);
    /* Copied: stamp() replaces CreatedById, which would free the string user points to. */
    char user[19];
    const char *given = get_string(full, "CreatedById");
    snprintf(user, sizeof(user), "%s", given ? given : st.api_user);
    stamp(obj, full, user, now, true);
    rec->values = full;
    rec->created_ms = now;
    rec->modstamp_ms = now;
    add_record(obj, rec);
    index_values(obj, rec);
    return rec;
}

static const char *field_label(const struct sf_field *f, char *buf, size_t n)
{
    /* Salesforce names reference fields by their label in messages: "Account ID". */
    size_t len = strlen(f->name);
    if (f->type == SF_REFERENCE && len > 2 && strcmp(f->name + len - 2, "Id") == 0)
        snprintf(buf, n, "%.*s ID", (int)(len - 2), f->name);
    else
        snprintf(buf, n, "%s", f->name);
    return buf;
}

static bool is_string_type(enum sf_type t)
{
    return t == SF_STRING || t == SF_TEXTAREA || t == SF_PICKLIST || t == SF_EMAIL || t == SF_URL ||
           t == SF_PHONE || t == SF_MULTIPICKLIST;
}

static bool picklist_has(const struct sf_field *f, const char *value)
{
    const cJSON *pv;
    cJSON_ArrayForEach(pv, f->picklist)
    {
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(pv, "value"));
        if (v && strcmp(v, value) == 0 && cJSON_IsTrue(cJSON_GetObjectItem(pv, "active")))
            return true;
    }
    return false;
}

/* A restricted picklist takes only its active values; a multi-select picklist's are
 * ';'-separated. */
static bool picklist_allows(const struct sf_field *f, const char *value)
{
    if (!f->is_restricted || !value[0])
        return true;
    if (f->type != SF_MULTIPICKLIST)
        return picklist_has(f, value);
    char *copy = xstrdup(value);
    char *save = NULL;
    bool ok = true;
    for (char *s = strtok_r(copy, ";", &save); s && ok; s = strtok_r(NULL, ";", &save))
        ok = picklist_has(f, s);
    free(copy);
    return ok;
}

static const char *type_word(enum sf_type t)
{
    switch (t) {
    case SF_BOOL:
        return "boolean";
    case SF_INT:
        return "int";
    case SF_DOUBLE:
        return "double";
    case SF_CURRENCY:
        return "currency";
    case SF_PERCENT:
        return "percent";
    case SF_DATE:
        return "date";
    case SF_DATETIME:
        return "datetime";
    default:
        return "string";
    }
}

static bool jackson_error(const struct sf_field *f, const cJSON *v, struct sf_error *err)
{
    char *text = cJSON_PrintUnformatted(v);
    const char *token = cJSON_IsString(v)   ? "VALUE_STRING"
                        : cJSON_IsNumber(v) ? "VALUE_NUMBER"
                        : cJSON_IsBool(v)   ? (cJSON_IsTrue(v) ? "VALUE_TRUE" : "VALUE_FALSE")
                        : cJSON_IsArray(v)  ? "START_ARRAY"
                                            : "START_OBJECT";
    sf_error_set(err, 400, "JSON_PARSER_ERROR", NULL,
                 "Cannot deserialize instance of %s from %s value %s or request may be missing "
                 "a required field",
                 type_word(f->type), token, cJSON_IsString(v) ? v->valuestring : text);
    free(text);
    return false;
}

/* Checks one incoming value and stores its normalised form in *out. */
static bool coerce(const struct sf_field *f, const cJSON *v, cJSON **out, struct sf_error *err)
{
    char label[128];
    if (cJSON_IsNull(v)) {
        *out = cJSON_CreateNull();
        return true;
    }
    if (is_string_type(f->type) || f->type == SF_ID) {
        if (!cJSON_IsString(v))
            return jackson_error(f, v, err);
        if (f->length > 0 && (int)strlen(v->valuestring) > f->length) {
            sf_error_set(err, 400, "STRING_TOO_LONG", f->name,
                         "%s: data value too large: %.60s (max length=%d)", f->name, v->valuestring,
                         f->length);
            return false;
        }
        if (f->type == SF_EMAIL && v->valuestring[0]) {
            const char *at = strchr(v->valuestring, '@');
            if (!at || at == v->valuestring || !strchr(at, '.') || strchr(v->valuestring, ' ')) {
                sf_error_set(err, 400, "INVALID_EMAIL_ADDRESS", f->name,
                             "%s: invalid email address: %s", f->name, v->valuestring);
                return false;
            }
        }
        if ((f->type == SF_PICKLIST || f->type == SF_MULTIPICKLIST) &&
            !picklist_allows(f, v->valuestring)) {
            sf_error_set(err, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f->name,
                         "%s: bad value for restricted picklist field: %s", f->name,
                         v->valuestring);
            return false;
        }
        /* Salesforce stores "" as null for text fields. */
        *out = v->valuestring[0] ? cJSON_CreateString(v->valuestring) : cJSON_CreateNull();
        return true;
    }
    switch (f->type) {
    case SF_BOOL:
        if (!cJSON_IsBool(v))
            return jackson_error(f, v, err);
        *out = cJSON_CreateBool(cJSON_IsTrue(v));
        return true;
    case SF_INT:
    case SF_DOUBLE:
    case SF_CURRENCY:
    case SF_PERCENT:
        if (!cJSON_IsNumber(v))
            return jackson_error(f, v, err);
        if (f->type == SF_INT && v->valuedouble != (double)(int64_t)v->valuedouble)
            return jackson_error(f, v, err);
        *out = cJSON_CreateNumber(v->valuedouble);
        return true;
    case SF_DATE:
        if (!cJSON_IsString(v) || !sf_date_valid(v->valuestring))
            return jackson_error(f, v, err);
        *out = cJSON_CreateString(v->valuestring);
        return true;
    case SF_DATETIME: {
        int64_t ms;
        char ts[32];
        if (!cJSON_IsString(v) || !sf_time_parse(v->valuestring, &ms))
            return jackson_error(f, v, err);
        sf_time_rest(ms, ts);
        *out = cJSON_CreateString(ts);
        return true;
    }
    case SF_REFERENCE: {
        char norm[19];
        struct sf_object *target = NULL;
        if (!cJSON_IsString(v))
            return jackson_error(f, v, err);
        if (!v->valuestring[0]) {
            *out = cJSON_CreateNull();
            return true;
        }
        field_label(f, label, sizeof(label));
        if (!sf_id_normalize(v->valuestring, norm)) {
            sf_error_set(err, 400, "MALFORMED_ID", f->name, "%s: id value of incorrect type: %s",
                         label, v->valuestring);
            return false;
        }
        struct sf_record *r = sf_store_find(norm, &target);
        struct sf_object *want = sf_store_object(f->ref_to, false);
        if (want && strncmp(norm, want->prefix, 3) != 0) {
            sf_error_set(err, 400, "FIELD_INTEGRITY_EXCEPTION", f->name,
                         "%s: id value of incorrect type: %s", label, v->valuestring);
            return false;
        }
        if (!r) {
            sf_error_set(err, 400, "INVALID_CROSS_REFERENCE_KEY", f->name,
                         "%s: invalid cross reference id", label);
            return false;
        }
        if (r->is_deleted) {
            sf_error_set(err, 400, "ENTITY_IS_DELETED", f->name, "entity is deleted");
            return false;
        }
        *out = cJSON_CreateString(norm);
        return true;
    }
    case SF_COMPLEX:
        *out = cJSON_Duplicate(v, true);
        return true;
    default:
        return jackson_error(f, v, err);
    }
}

static struct sf_record *stage_by_name(const char *name)
{
    struct sf_object *stages = sf_store_object("OpportunityStage", false);
    for (size_t i = 0; name && stages && i < stages->record_count; i++) {
        struct sf_record *r = stages->records[i];
        const char *api = get_string(r->values, "ApiName");
        if (api && strcmp(api, name) == 0 &&
            cJSON_IsTrue(cJSON_GetObjectItem(r->values, "IsActive")))
            return r;
    }
    return NULL;
}

static const char *default_record_type(const char *sobject)
{
    struct sf_object *rts = sf_store_object("RecordType", false);
    for (size_t i = 0; rts && i < rts->record_count; i++) {
        const char *t = get_string(rts->records[i]->values, "SobjectType");
        if (t && strcmp(t, sobject) == 0 &&
            cJSON_IsTrue(cJSON_GetObjectItem(rts->records[i]->values, "IsActive")))
            return rts->records[i]->id;
    }
    return NULL;
}

/* Derived and defaulted values after the body is merged (Opportunity, Contact, User). */
static bool derive(struct sf_object *obj, cJSON *values, const cJSON *body, bool is_create,
                   const char *old_stage, struct sf_error *err)
{
    if (strcmp(obj->name, "Opportunity") == 0) {
        const char *stage_name = get_string(values, "StageName");
        struct sf_record *stage = stage_by_name(stage_name);
        if (stage_name && !stage) {
            sf_error_set(err, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "StageName",
                         "Stage: bad value for restricted picklist field: %s", stage_name);
            return false;
        }
        const char *rt = get_string(values, "RecordTypeId");
        if (rt) {
            struct sf_record *r = sf_store_find(rt, NULL);
            const char *t = r ? get_string(r->values, "SobjectType") : NULL;
            if (!t || strcmp(t, "Opportunity") != 0 ||
                !cJSON_IsTrue(cJSON_GetObjectItem(r->values, "IsActive"))) {
                sf_error_set(err, 400, "INVALID_CROSS_REFERENCE_KEY", "RecordTypeId",
                             "Record Type ID: this ID value isn't valid for the user: %s", rt);
                return false;
            }
        } else if (is_create) {
            set_string(values, "RecordTypeId", default_record_type("Opportunity"));
        }
        if (stage) {
            bool stage_changed = !old_stage || strcmp(old_stage, stage_name) != 0;
            bool prob_given = body && cJSON_GetObjectItem(body, "Probability") != NULL;
            set_value(
                values, "IsClosed",
                cJSON_CreateBool(cJSON_IsTrue(cJSON_GetObjectItem(stage->values, "IsClosed"))));
            set_value(values, "IsWon",
                      cJSON_CreateBool(cJSON_IsTrue(cJSON_GetObjectItem(stage->values, "IsWon"))));
            /* UNVERIFIED (reference 2.1) that the API fills Probability from the stage;
             * sf_default_probability=0 turns it off. */
            if (stage_changed && !prob_given && sb_setting_int("sf_default_probability", 1))
                set_value(values, "Probability",
                          cJSON_Duplicate(cJSON_GetObjectItem(stage->values, "DefaultProbability"),
                                          true));
            if (stage_changed && !(body && cJSON_GetObjectItem(body, "ForecastCategoryName")))
                set_string(values, "ForecastCategoryName",
                           get_string(stage->values, "ForecastCategoryName"));
        }
    }
    if (sf_store_field(obj, "Name") && !sf_store_field(obj, "Name")->is_createable) {
        const char *first = get_string(values, "FirstName");
        const char *last = get_string(values, "LastName");
        char *name =
            xasprintf("%s%s%s", first ? first : "", first && last ? " " : "", last ? last : "");
        set_string(values, "Name", name[0] ? name : NULL);
        free(name);
    }
    if (is_create && sf_store_field(obj, "IsPrimary") &&
        cJSON_IsNull(cJSON_GetObjectItem(values, "IsPrimary")))
        set_value(values, "IsPrimary", cJSON_CreateFalse());
    return true;
}

static bool check_required_and_unique(struct sf_object *obj, const struct sf_record *self,
                                      cJSON *values, struct sf_error *err)
{
    char missing[256] = "";
    char names[256] = "";
    for (size_t i = 0; i < obj->field_count; i++) {
        const struct sf_field *f = &obj->fields[i];
        if (f->is_required && cJSON_IsNull(cJSON_GetObjectItem(values, f->name))) {
            size_t len = strlen(missing);
            snprintf(missing + len, sizeof(missing) - len, "%s%s", len ? "," : "", f->name);
            len = strlen(names);
            snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "", f->name);
        }
    }
    if (missing[0]) {
        sf_error_set(err, 400, "REQUIRED_FIELD_MISSING", missing,
                     "Required fields are missing: [%s]", names);
        return false;
    }
    for (size_t i = 0; i < obj->field_count; i++) {
        const struct sf_field *f = &obj->fields[i];
        const char *v = get_string(values, f->name);
        struct sf_record *dups[2];
        if (!f->is_unique || !v)
            continue;
        size_t n = sf_store_find_by_field(obj, f, v, dups, 2);
        for (size_t j = 0; j < n; j++)
            if (dups[j] != self) {
                sf_error_set(err, 400, "DUPLICATE_VALUE", f->name,
                             "duplicate value found: %s duplicates value on record with id: %s",
                             f->name, dups[j]->id);
                return false;
            }
    }
    return true;
}

/* Merges body into values (a working copy). is_create selects createable vs updateable. */
static bool merge_body(struct sf_object *obj, cJSON *values, const cJSON *body, bool is_create,
                       struct sf_error *err)
{
    if (!cJSON_IsObject(body)) {
        sf_error_set(err, 400, "JSON_PARSER_ERROR", NULL,
                     "The request body must be a JSON object describing the record");
        return false;
    }
    char bad[256] = "";
    for (const cJSON *item = body->child; item; item = item->next) {
        if (strcmp(item->string, "attributes") == 0)
            continue;
        const struct sf_field *f = sf_store_field(obj, item->string);
        if (!f) {
            sf_error_set(err, 400, "INVALID_FIELD", NULL,
                         "No such column '%s' on sobject of type %s", item->string, obj->name);
            return false;
        }
        if (f->type == SF_ID) {
            if (strcmp(f->name, "Id") == 0) {
                sf_error_set(err, 400, "INVALID_FIELD", NULL,
                             "The Id field should not be specified in the sobject data.");
                return false;
            }
        }
        if (is_create ? !f->is_createable : !f->is_updateable) {
            size_t len = strlen(bad);
            snprintf(bad + len, sizeof(bad) - len, "%s%s", len ? "," : "", f->name);
            continue;
        }
        cJSON *v = NULL;
        if (!coerce(f, item, &v, err))
            return false;
        set_value(values, f->name, v);
    }
    if (bad[0]) {
        sf_error_set(err, 400, "INVALID_FIELD_FOR_INSERT_UPDATE", bad,
                     "Unable to create/update fields: %s. Please check the security settings of "
                     "this field and verify that it is read/write for your profile or permission "
                     "set.",
                     bad);
        return false;
    }
    return true;
}

static void unset_other_primaries(struct sf_object *obj, struct sf_record *self, cJSON *values,
                                  const char *user, int64_t now)
{
    const char *opp = get_string(values, "OpportunityId");
    if (!sf_store_field(obj, "IsPrimary") ||
        !cJSON_IsTrue(cJSON_GetObjectItem(values, "IsPrimary")))
        return;
    for (size_t i = 0; i < obj->record_count; i++) {
        struct sf_record *r = obj->records[i];
        const char *o = get_string(r->values, "OpportunityId");
        if (r == self || r->is_deleted || !o || !opp || strcmp(o, opp) != 0 ||
            !cJSON_IsTrue(cJSON_GetObjectItem(r->values, "IsPrimary")))
            continue;
        set_value(r->values, "IsPrimary", cJSON_CreateFalse());
        stamp(obj, r->values, user, now, false);
        r->modstamp_ms = now;
    }
}

bool sf_store_create(struct sf_object *obj, const cJSON *body, const char *as_user, bool dry_run,
                     struct sf_record **out, struct sf_error *err)
{
    cJSON *values = empty_values(obj);
    if (!merge_body(obj, values, body, true, err))
        goto fail;
    /* The writing user owns what it creates without an owner. A required OwnerId given as
     * null or "" is refused (REQUIRED_FIELD_MISSING) rather than defaulted. */
    const struct sf_field *owner = sf_store_field(obj, "OwnerId");
    if (owner && cJSON_IsNull(cJSON_GetObjectItem(values, "OwnerId")) &&
        (!owner->is_required || !cJSON_GetObjectItem(body, "OwnerId")))
        set_string(values, "OwnerId", as_user);
    if (!derive(obj, values, body, true, NULL, err))
        goto fail;
    if (!check_required_and_unique(obj, NULL, values, err))
        goto fail;
    if (dry_run) {
        cJSON_Delete(values);
        return true;
    }
    struct sf_record *rec = sf_store_insert_raw(obj, NULL);
    int64_t now = rec->created_ms;
    for (cJSON *item = values->child; item; item = item->next)
        if (strcmp(item->string, "Id") != 0)
            set_value(rec->values, item->string, cJSON_Duplicate(item, true));
    cJSON_Delete(values);
    stamp(obj, rec->values, as_user, now, true);
    index_values(obj, rec);
    unset_other_primaries(obj, rec, rec->values, as_user, now);
    if (out)
        *out = rec;
    sf_outbound_changed(obj, rec, as_user);
    return true;
fail:
    cJSON_Delete(values);
    return false;
}

bool sf_store_update(struct sf_object *obj, struct sf_record *rec, const cJSON *body,
                     const char *as_user, bool dry_run, struct sf_error *err)
{
    if (rec->is_deleted) {
        sf_error_set(err, 400, "ENTITY_IS_DELETED", NULL, "entity is deleted");
        return false;
    }
    cJSON *values = cJSON_Duplicate(rec->values, true);
    for (size_t i = 0; i < obj->field_count; i++)
        if (!cJSON_GetObjectItemCaseSensitive(values, obj->fields[i].name))
            cJSON_AddItemToObject(values, obj->fields[i].name, cJSON_CreateNull());
    char *old_stage = NULL;
    const char *s = get_string(rec->values, "StageName");
    if (s)
        old_stage = xstrdup(s);
    bool ok = merge_body(obj, values, body, false, err) &&
              derive(obj, values, body, false, old_stage, err) &&
              check_required_and_unique(obj, rec, values, err);
    free(old_stage);
    if (!ok || dry_run) {
        cJSON_Delete(values);
        return ok;
    }
    int64_t now = sb_now_ms();
    stamp(obj, values, as_user, now, false);
    cJSON_Delete(rec->values);
    rec->values = values;
    rec->modstamp_ms = now;
    index_values(obj, rec);
    unset_other_primaries(obj, rec, rec->values, as_user, now);
    sf_outbound_changed(obj, rec, as_user);
    return true;
}

static void cascade(const char *child_object, const char *field, const char *parent_id,
                    const char *as_user, int64_t now);

static void mark_deleted(struct sf_object *obj, struct sf_record *rec, const char *as_user,
                         int64_t now)
{
    rec->is_deleted = true;
    rec->deleted_ms = now;
    rec->modstamp_ms = now;
    set_value(rec->values, "IsDeleted", cJSON_CreateTrue());
    stamp(obj, rec->values, as_user, now, false);
    sf_outbound_deleted(rec->id);
    if (strcmp(obj->name, "Account") == 0) {
        cascade("Opportunity", "AccountId", rec->id, as_user, now);
        cascade("Contact", "AccountId", rec->id, as_user, now);
    } else if (strcmp(obj->name, "Opportunity") == 0) {
        cascade("OpportunityContactRole", "OpportunityId", rec->id, as_user, now);
    } else if (strcmp(obj->name, "Contact") == 0) {
        cascade("OpportunityContactRole", "ContactId", rec->id, as_user, now);
    }
}

/* Deleting a parent deletes its children, as Salesforce does for these master records. */
static void cascade(const char *child_object, const char *field, const char *parent_id,
                    const char *as_user, int64_t now)
{
    struct sf_object *obj = sf_store_object(child_object, false);
    for (size_t i = 0; obj && i < obj->record_count; i++) {
        struct sf_record *r = obj->records[i];
        const char *p = get_string(r->values, field);
        if (!r->is_deleted && p && strcmp(p, parent_id) == 0)
            mark_deleted(obj, r, as_user, now);
    }
}

bool sf_store_delete(struct sf_object *obj, struct sf_record *rec, const char *as_user,
                     bool dry_run, struct sf_error *err)
{
    if (rec->is_deleted) {
        sf_error_set(err, 404, "ENTITY_IS_DELETED", NULL, "entity is deleted");
        return false;
    }
    if (!dry_run)
        mark_deleted(obj, rec, as_user, sb_now_ms());
    return true;
}

/* ---- rendering --------------------------------------------------------------------------- */

char *sf_record_url(const struct sf_object *obj, const char *id, const char *version)
{
    return xasprintf("/services/data/v%s/%ssobjects/%s/%s", version,
                     obj->is_tooling ? "tooling/" : "", obj->name, id);
}

cJSON *sf_record_render(const struct sf_object *obj, const struct sf_record *rec,
                        const char *version, const char *const *fields, size_t nfields)
{
    cJSON *out = cJSON_CreateObject();
    cJSON *attrs = cJSON_AddObjectToObject(out, "attributes");
    cJSON_AddStringToObject(attrs, "type", obj->name);
    char *url = sf_record_url(obj, rec->id, version);
    cJSON_AddStringToObject(attrs, "url", url);
    free(url);
    size_t n = fields ? nfields : obj->field_count;
    for (size_t i = 0; i < n; i++) {
        const struct sf_field *f = fields ? sf_store_field(obj, fields[i]) : &obj->fields[i];
        if (!f)
            continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec->values, f->name);
        cJSON_AddItemToObject(out, f->name, v ? cJSON_Duplicate(v, true) : cJSON_CreateNull());
    }
    return out;
}

/* ---- seed -------------------------------------------------------------------------------- */

static struct sf_record *seed(const char *object, const char *json)
{
    struct sf_object *obj = sf_store_object(object, false);
    cJSON *values = cJSON_Parse(json);
    struct sf_record *rec = sf_store_insert_raw(obj, values);
    struct sf_error err;
    /* Derive computed fields (Name, IsClosed...) the same way writes do. */
    if (!derive(obj, rec->values, NULL, true, NULL, &err))
        fprintf(stderr, "sf seed: %s\n", err.message);
    return rec;
}

void sf_store_seed(void)
{
    static const struct {
        const char *name;
        int prob;
        bool closed, won;
        const char *forecast, *forecast_name;
    } stages[] = {
        {"Prospecting", 10, false, false, "Pipeline", "Pipeline"},
        {"Qualification", 10, false, false, "Pipeline", "Pipeline"},
        {"Needs Analysis", 20, false, false, "Pipeline", "Pipeline"},
        {"Value Proposition", 50, false, false, "Pipeline", "Pipeline"},
        {"Id. Decision Makers", 60, false, false, "Pipeline", "Pipeline"},
        {"Perception Analysis", 70, false, false, "Pipeline", "Pipeline"},
        {"Proposal/Price Quote", 75, false, false, "Pipeline", "Pipeline"},
        {"Negotiation/Review", 90, false, false, "Pipeline", "Pipeline"},
        {"Closed Won", 100, true, true, "Closed", "Closed"},
        {"Closed Lost", 0, true, false, "Omitted", "Omitted"},
    };
    char id15[19];
    if (!st.org_id[0]) {
        memcpy(id15, "00D5w00000SBox1", 15);
        id_suffix(id15, id15 + 15);
        id15[18] = '\0';
        memcpy(st.org_id, id15, sizeof(st.org_id));
    }
    const char *username = sb_setting_str("sf_username");
    char *json = xasprintf("{\"Username\":\"%s\",\"Email\":\"integration@dealsync.test\","
                           "\"FirstName\":\"Integration\",\"LastName\":\"User\",\"IsActive\":true}",
                           username ? username : "integration@dealsync.test");
    struct sf_record *api = seed("User", json);
    free(json);
    memcpy(st.api_user, api->id, sizeof(st.api_user));
    struct sf_record *ui = seed("User", "{\"Username\":\"alice@dealsync.test\",\"Email\":"
                                        "\"alice@dealsync.test\",\"FirstName\":\"Alice\","
                                        "\"LastName\":\"Admin\",\"IsActive\":true}");
    memcpy(st.ui_user, ui->id, sizeof(st.ui_user));
    seed("User", "{\"Username\":\"bob@dealsync.test\",\"Email\":\"bob@dealsync.test\","
                 "\"FirstName\":\"Bob\",\"LastName\":\"Seller\",\"IsActive\":true}");
    struct sf_record *process =
        seed("BusinessProcess", "{\"Name\":\"Standard Sales Process\","
                                "\"TableEnumOrId\":\"Opportunity\",\"IsActive\":true}");
    cJSON *process_stages = cJSON_AddArrayToObject(process->values, "_stages");
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
        cJSON_AddItemToArray(process_stages, cJSON_CreateString(stages[i].name));
    static const char *const record_types[][2] = {{"New Business", "New_Business"},
                                                  {"Renewal", "Renewal"}};
    for (size_t i = 0; i < 2; i++) {
        json = xasprintf("{\"Name\":\"%s\",\"DeveloperName\":\"%s\",\"SobjectType\":"
                         "\"Opportunity\",\"IsActive\":true,\"BusinessProcessId\":\"%s\"}",
                         record_types[i][0], record_types[i][1], process->id);
        seed("RecordType", json);
        free(json);
    }
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
        json = xasprintf("{\"ApiName\":\"%s\",\"MasterLabel\":\"%s\",\"IsActive\":true,"
                         "\"IsClosed\":%s,\"IsWon\":%s,\"DefaultProbability\":%d,"
                         "\"ForecastCategory\":\"%s\",\"ForecastCategoryName\":\"%s\","
                         "\"SortOrder\":%zu}",
                         stages[i].name, stages[i].name, stages[i].closed ? "true" : "false",
                         stages[i].won ? "true" : "false", stages[i].prob, stages[i].forecast,
                         stages[i].forecast_name, i + 1);
        seed("OpportunityStage", json);
        free(json);
    }
    json =
        xasprintf("{\"Name\":\"Acme Corp\",\"Website\":\"https://acme.test\",\"OwnerId\":\"%s\"}",
                  st.ui_user);
    struct sf_record *acme = seed("Account", json);
    free(json);
    json = xasprintf("{\"Name\":\"Globex\",\"Website\":\"https://globex.test\",\"OwnerId\":\"%s\"}",
                     st.ui_user);
    struct sf_record *globex = seed("Account", json);
    free(json);
    json = xasprintf("{\"FirstName\":\"Jane\",\"LastName\":\"Doe\",\"Email\":\"jane@acme.test\","
                     "\"AccountId\":\"%s\",\"OwnerId\":\"%s\"}",
                     acme->id, st.ui_user);
    seed("Contact", json);
    free(json);
    json = xasprintf("{\"FirstName\":\"John\",\"LastName\":\"Smith\",\"Email\":"
                     "\"john@globex.test\",\"AccountId\":\"%s\",\"OwnerId\":\"%s\"}",
                     globex->id, st.ui_user);
    seed("Contact", json);
    free(json);
    struct sf_object *upa = sf_store_object("UserPermissionAccess", false);
    sf_store_insert_raw(upa, NULL);
}

static void free_object(struct sf_object *obj)
{
    for (size_t i = 0; i < obj->record_count; i++) {
        cJSON_Delete(obj->records[i]->values);
        free(obj->records[i]);
    }
    for (size_t i = 0; i < obj->field_count; i++) {
        free(obj->fields[i].name);
        free(obj->fields[i].ref_to);
        free(obj->fields[i].rel_name);
        cJSON_Delete(obj->fields[i].picklist);
    }
    free(obj->records);
    vindex_free(obj->by_value);
    free(obj->fields);
    free(obj->name);
    free(obj->label);
    free(obj);
}

void sf_store_clear(void)
{
    for (size_t i = 0; i < st.object_count; i++)
        free_object(st.objects[i]);
    free(st.objects);
    st.objects = NULL;
    st.object_count = st.object_cap = 0;
    vindex_free(st.by_id);
    st.by_id = NULL;
    for (size_t i = 0; i < st.token_count; i++)
        free(st.tokens[i].token);
    st.token_count = 0;
    st.api_used = 0;
    st.org_id[0] = '\0';
    sf_outbound_clear();
    build_schema();
}

/* ---- tokens ------------------------------------------------------------------------------ */

const char *sf_token_issue(const char *user_id)
{
    char random[41];
    for (int i = 0; i < 40; i++)
        random[i] = base62[(int)(sb_random() * 62) % 62];
    random[40] = '\0';
    if (st.token_count == SF_MAX_TOKENS) {
        free(st.tokens[0].token);
        memmove(&st.tokens[0], &st.tokens[1], (SF_MAX_TOKENS - 1) * sizeof(st.tokens[0]));
        st.token_count--;
    }
    struct sf_token *t = &st.tokens[st.token_count++];
    t->token =
        xasprintf("%.15s!AQ%llu%s", st.org_id, (unsigned long long)++st.token_counter, random);
    memcpy(t->user_id, user_id, sizeof(t->user_id));
    t->expires_ms = sb_now_ms() + sb_setting_int("sf_token_lifetime_s", 7200) * 1000;
    return t->token;
}

const char *sf_token_user(const char *token)
{
    int64_t now = sb_now_ms();
    for (size_t i = 0; token && i < st.token_count; i++)
        if (strcmp(st.tokens[i].token, token) == 0)
            return st.tokens[i].expires_ms > now ? st.tokens[i].user_id : NULL;
    return NULL;
}

void sf_token_expire_all(void)
{
    for (size_t i = 0; i < st.token_count; i++)
        st.tokens[i].expires_ms = 0;
}

/* ---- API usage --------------------------------------------------------------------------- */

bool sf_usage_count(void)
{
    if (st.api_used >= sb_setting_int("sf_api_daily_limit", 100000))
        return false;
    st.api_used++;
    return true;
}

int64_t sf_usage_used(void)
{
    return st.api_used;
}

void sf_usage_set(int64_t used)
{
    st.api_used = used;
}
