/* hs_schema.c - HubSpot property definitions per object type: the seeded standard properties
 * with their types and options, custom properties (Properties API v3), and the validation of
 * every value written to a record, with HubSpot's error codes. */
#include "hs.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_UNIQUE_PROPS 10 /* HubSpot's limit of unique-value properties per object */

struct hs_prop {
    char *name;
    char *label;
    char *type;
    char *field_type;
    char *group;
    char *description;
    cJSON *options; /* array of {label, value, displayOrder, hidden} */
    int display_order;
    bool is_read_only;
    bool is_unique;
    bool is_custom;
    bool is_calculated;
    bool is_hidden;
    int64_t created_at;
    int64_t updated_at;
};

struct prop_list {
    struct hs_prop *items;
    size_t count;
    size_t cap;
};

static struct prop_list props[HS_TYPE_COUNT];

/* Seed table. options: "value=Label|value=Label" or NULL. flags: r = read-only, c = calculated. */
struct seed {
    enum hs_type type;
    const char *name;
    const char *label;
    const char *ptype;
    const char *field_type;
    const char *group;
    const char *flags;
    const char *options;
};

#define LIFECYCLE                                                                                  \
    "subscriber=Subscriber|lead=Lead|marketingqualifiedlead=Marketing Qualified Lead|"             \
    "salesqualifiedlead=Sales Qualified Lead|opportunity=Opportunity|customer=Customer|"           \
    "evangelist=Evangelist|other=Other"

static const struct seed seeds[] = {
    {HS_DEAL, "dealname", "Deal Name", "string", "text", "dealinformation", "", NULL},
    {HS_DEAL, "amount", "Amount", "number", "number", "dealinformation", "", NULL},
    {HS_DEAL, "closedate", "Close Date", "datetime", "date", "dealinformation", "", NULL},
    {HS_DEAL, "dealstage", "Deal Stage", "enumeration", "radio", "dealinformation", "", NULL},
    {HS_DEAL, "pipeline", "Pipeline", "enumeration", "select", "dealinformation", "", NULL},
    {HS_DEAL, "dealtype", "Deal Type", "enumeration", "radio", "dealinformation", "",
     "newbusiness=New Business|existingbusiness=Existing Business"},
    {HS_DEAL, "description", "Deal Description", "string", "textarea", "dealinformation", "", NULL},
    {HS_DEAL, "hubspot_owner_id", "Deal owner", "enumeration", "select", "dealinformation", "",
     NULL},
    {HS_DEAL, "closed_lost_reason", "Closed Lost Reason", "string", "textarea", "dealinformation",
     "", NULL},
    {HS_DEAL, "closed_won_reason", "Closed Won Reason", "string", "textarea", "dealinformation", "",
     NULL},
    {HS_DEAL, "hs_salesforceopportunityid", "Salesforce Opportunity ID", "string", "text",
     "salesforceinformation", "", NULL},
    {HS_DEAL, "createdate", "Create Date", "datetime", "date", "dealinformation", "", NULL},
    {HS_DEAL, "hs_lastmodifieddate", "Last Modified Date", "datetime", "date", "dealinformation",
     "r", NULL},
    {HS_DEAL, "hs_object_id", "Record ID", "number", "number", "dealinformation", "r", NULL},
    {HS_DEAL, "num_associated_contacts", "Number of Associated Contacts", "number", "number",
     "dealinformation", "rc", NULL},

    {HS_CONTACT, "email", "Email", "string", "text", "contactinformation", "", NULL},
    {HS_CONTACT, "firstname", "First Name", "string", "text", "contactinformation", "", NULL},
    {HS_CONTACT, "lastname", "Last Name", "string", "text", "contactinformation", "", NULL},
    {HS_CONTACT, "phone", "Phone Number", "string", "phonenumber", "contactinformation", "", NULL},
    {HS_CONTACT, "mobilephone", "Mobile Phone Number", "string", "phonenumber",
     "contactinformation", "", NULL},
    {HS_CONTACT, "company", "Company Name", "string", "text", "contactinformation", "", NULL},
    {HS_CONTACT, "jobtitle", "Job Title", "string", "text", "contactinformation", "", NULL},
    {HS_CONTACT, "website", "Website URL", "string", "text", "contactinformation", "", NULL},
    {HS_CONTACT, "address", "Street Address", "string", "text", "contactinformation", "", NULL},
    {HS_CONTACT, "city", "City", "string", "text", "contactinformation", "", NULL},
    {HS_CONTACT, "state", "State/Region", "string", "text", "contactinformation", "", NULL},
    {HS_CONTACT, "zip", "Postal Code", "string", "text", "contactinformation", "", NULL},
    {HS_CONTACT, "country", "Country/Region", "string", "text", "contactinformation", "", NULL},
    {HS_CONTACT, "lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "contactinformation",
     "", LIFECYCLE},
    {HS_CONTACT, "hubspot_owner_id", "Contact owner", "enumeration", "select", "contactinformation",
     "", NULL},
    {HS_CONTACT, "salesforcecontactid", "Salesforce Contact ID", "string", "text",
     "salesforceinformation", "", NULL},
    {HS_CONTACT, "salesforceleadid", "Salesforce Lead ID", "string", "text",
     "salesforceinformation", "", NULL},
    {HS_CONTACT, "salesforceaccountid", "Salesforce Account ID", "string", "text",
     "salesforceinformation", "", NULL},
    {HS_CONTACT, "first_deal_created_date", "First Deal Created Date", "datetime", "date",
     "deal_information", "rc", NULL},
    {HS_CONTACT, "recent_deal_close_date", "Recent Deal Close Date", "datetime", "date",
     "deal_information", "rc", NULL},
    {HS_CONTACT, "recent_deal_amount", "Recent Deal Amount", "number", "number", "deal_information",
     "rc", NULL},
    {HS_CONTACT, "total_revenue", "Total Revenue", "number", "number", "deal_information", "rc",
     NULL},
    {HS_CONTACT, "num_associated_deals", "Number of associated deals", "number", "number",
     "deal_information", "rc", NULL},
    {HS_CONTACT, "createdate", "Create Date", "datetime", "date", "contactinformation", "", NULL},
    {HS_CONTACT, "lastmodifieddate", "Last Modified Date", "datetime", "date", "contactinformation",
     "r", NULL},
    {HS_CONTACT, "hs_object_id", "Record ID", "number", "number", "contactinformation", "r", NULL},

    {HS_COMPANY, "name", "Name", "string", "text", "companyinformation", "", NULL},
    {HS_COMPANY, "domain", "Company Domain Name", "string", "text", "companyinformation", "", NULL},
    {HS_COMPANY, "phone", "Phone Number", "string", "phonenumber", "companyinformation", "", NULL},
    /* HubSpot's industry is an enumeration of ~150 options; kept as text here (README). */
    {HS_COMPANY, "industry", "Industry", "string", "text", "companyinformation", "", NULL},
    {HS_COMPANY, "description", "Description", "string", "textarea", "companyinformation", "",
     NULL},
    {HS_COMPANY, "website", "Website URL", "string", "text", "companyinformation", "", NULL},
    {HS_COMPANY, "address", "Street Address", "string", "text", "companyinformation", "", NULL},
    {HS_COMPANY, "city", "City", "string", "text", "companyinformation", "", NULL},
    {HS_COMPANY, "state", "State/Region", "string", "text", "companyinformation", "", NULL},
    {HS_COMPANY, "zip", "Postal Code", "string", "text", "companyinformation", "", NULL},
    {HS_COMPANY, "country", "Country/Region", "string", "text", "companyinformation", "", NULL},
    {HS_COMPANY, "numberofemployees", "Number of Employees", "number", "number",
     "companyinformation", "", NULL},
    {HS_COMPANY, "annualrevenue", "Annual Revenue", "number", "number", "companyinformation", "",
     NULL},
    {HS_COMPANY, "lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "companyinformation",
     "", LIFECYCLE},
    {HS_COMPANY, "hubspot_owner_id", "Company owner", "enumeration", "select", "companyinformation",
     "", NULL},
    {HS_COMPANY, "salesforceaccountid", "Salesforce Account ID", "string", "text",
     "salesforceinformation", "", NULL},
    {HS_COMPANY, "createdate", "Create Date", "datetime", "date", "companyinformation", "", NULL},
    {HS_COMPANY, "hs_lastmodifieddate", "Last Modified Date", "datetime", "date",
     "companyinformation", "r", NULL},
    {HS_COMPANY, "hs_object_id", "Record ID", "number", "number", "companyinformation", "r", NULL},
};

static const char *const deal_defaults[] = {
    "dealname",  "amount",     "closedate",           "pipeline",
    "dealstage", "createdate", "hs_lastmodifieddate", "hs_object_id",
    NULL};
static const char *const contact_defaults[] = {
    "firstname", "lastname", "email", "lastmodifieddate", "hs_object_id", "createdate", NULL};
static const char *const company_defaults[] = {
    "name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id", NULL};

const char *const *hs_default_props(enum hs_type t)
{
    switch (t) {
    case HS_DEAL:
        return deal_defaults;
    case HS_CONTACT:
        return contact_defaults;
    default:
        return company_defaults;
    }
}

static cJSON *parse_options(const char *spec)
{
    cJSON *list = cJSON_CreateArray();
    char *copy = xstrdup(spec);
    char *save = NULL;
    int order = 0;
    for (char *tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
        char *eq = strchr(tok, '=');
        *eq = '\0';
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "label", eq + 1);
        cJSON_AddStringToObject(o, "value", tok);
        cJSON_AddNumberToObject(o, "displayOrder", order++);
        cJSON_AddBoolToObject(o, "hidden", false);
        cJSON_AddItemToArray(list, o);
    }
    free(copy);
    return list;
}

static struct hs_prop *prop_add(enum hs_type t)
{
    struct prop_list *l = &props[t];
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->items = xrealloc(l->items, l->cap * sizeof *l->items);
    }
    struct hs_prop *p = &l->items[l->count++];
    memset(p, 0, sizeof *p);
    p->created_at = p->updated_at = sb_now_ms();
    return p;
}

static void prop_clear(struct hs_prop *p)
{
    free(p->name);
    free(p->label);
    free(p->type);
    free(p->field_type);
    free(p->group);
    free(p->description);
    cJSON_Delete(p->options);
}

void hs_schema_reset(void)
{
    for (int t = 0; t < HS_TYPE_COUNT; t++) {
        for (size_t i = 0; i < props[t].count; i++)
            prop_clear(&props[t].items[i]);
        props[t].count = 0;
    }
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        const struct seed *s = &seeds[i];
        struct hs_prop *p = prop_add(s->type);
        p->name = xstrdup(s->name);
        p->label = xstrdup(s->label);
        p->type = xstrdup(s->ptype);
        p->field_type = xstrdup(s->field_type);
        p->group = xstrdup(s->group);
        p->description = xstrdup("");
        p->options = s->options ? parse_options(s->options) : cJSON_CreateArray();
        p->is_read_only = strchr(s->flags, 'r') != NULL;
        p->is_calculated = strchr(s->flags, 'c') != NULL;
        p->display_order = -1;
    }
}

const struct hs_prop *hs_prop_find(enum hs_type t, const char *name)
{
    for (size_t i = 0; i < props[t].count; i++)
        if (strcmp(props[t].items[i].name, name) == 0)
            return &props[t].items[i];
    return NULL;
}

bool hs_prop_is_unique(const struct hs_prop *p)
{
    return p->is_unique;
}

const char *hs_prop_type(const struct hs_prop *p)
{
    return p->type;
}

/* ---- value validation ---- */

bool hs_prop_error(cJSON *errors, const char *name, const char *code, const char *message)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddBoolToObject(e, "isValid", false);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "error", code);
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddStringToObject(e, "localizedErrorMessage", message);
    cJSON_AddItemToArray(errors, e);
    return false;
}

static bool option_allowed(const struct hs_prop *p, enum hs_type t, const char *value)
{
    if (strcmp(p->name, "pipeline") == 0 && t == HS_DEAL) {
        cJSON *ids = hs_pipeline_ids();
        bool found = false;
        const cJSON *id;
        cJSON_ArrayForEach(id, ids) found = found || strcmp(id->valuestring, value) == 0;
        cJSON_Delete(ids);
        return found;
    }
    if (strcmp(p->name, "dealstage") == 0 && t == HS_DEAL) {
        cJSON *ids = hs_stage_ids(NULL);
        bool found = false;
        const cJSON *id;
        cJSON_ArrayForEach(id, ids) found = found || strcmp(id->valuestring, value) == 0;
        cJSON_Delete(ids);
        return found;
    }
    const cJSON *o;
    cJSON_ArrayForEach(o, p->options)
    {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "value");
        if (cJSON_IsString(v) && strcmp(v->valuestring, value) == 0)
            return true;
    }
    return false;
}

static bool check_enum(enum hs_type t, const struct hs_prop *p, const char *value, cJSON *errors)
{
    char msg[512];
    if (strcmp(p->name, "hubspot_owner_id") == 0) {
        if (hs_owner_exists(value))
            return true;
        snprintf(msg, sizeof msg, "%.200s is not a valid owner id", value);
        return hs_prop_error(errors, p->name, "INVALID_OWNER_ID", msg);
    }
    /* checkbox (multi-select) values are ';'-separated */
    bool is_multi = strcmp(p->field_type, "checkbox") == 0;
    char *copy = xstrdup(value);
    char *save = NULL;
    bool ok = true;
    for (char *tok = is_multi ? strtok_r(copy, ";", &save) : copy; tok && ok;
         tok = is_multi ? strtok_r(NULL, ";", &save) : NULL) {
        if (!option_allowed(p, t, tok)) {
            snprintf(msg, sizeof msg, "%.200s was not one of the allowed options", tok);
            ok = hs_prop_error(errors, p->name, "INVALID_OPTION", msg);
        }
    }
    free(copy);
    return ok;
}

bool hs_prop_check(enum hs_type t, const char *name, const char *value, char **out, cJSON *errors)
{
    char msg[512];
    const struct hs_prop *p = hs_prop_find(t, name);
    if (!p) {
        snprintf(msg, sizeof msg, "Property \"%.200s\" does not exist", name);
        return hs_prop_error(errors, name, "PROPERTY_DOESNT_EXIST", msg);
    }
    if (p->is_read_only) {
        snprintf(msg, sizeof msg, "\"%.200s\" is a read only property; its value cannot be set.",
                 name);
        return hs_prop_error(errors, name, "READ_ONLY_VALUE", msg);
    }
    if (*value == '\0') {
        *out = xstrdup("");
        return true;
    }
    if (strcmp(p->type, "number") == 0) {
        char *end = NULL;
        double d = strtod(value, &end);
        if (end == value || *end != '\0' || !isfinite(d) || isspace((unsigned char)*value)) {
            snprintf(msg, sizeof msg, "%.200s was not a valid number.", value);
            return hs_prop_error(errors, name, "INVALID_NUMBER", msg);
        }
        *out = xstrdup(value);
        return true;
    }
    if (strcmp(p->type, "datetime") == 0 || strcmp(p->type, "date") == 0) {
        int64_t ms;
        char iso[32];
        if (!hs_parse_time(value, &ms)) {
            snprintf(msg, sizeof msg, "%.200s was not a valid long.", value);
            return hs_prop_error(errors, name, "INVALID_DATE", msg);
        }
        hs_iso(ms, iso);
        if (strcmp(p->type, "date") == 0) {
            if (ms % 86400000 != 0) {
                snprintf(msg, sizeof msg, "%.200s is at %.12s UTC, not midnight!", value, iso + 11);
                return hs_prop_error(errors, name, "INVALID_DATE", msg);
            }
            iso[10] = '\0';
        }
        *out = xstrdup(iso);
        return true;
    }
    if (strcmp(p->type, "bool") == 0) {
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
            snprintf(msg, sizeof msg, "%.200s was not a valid boolean.", value);
            return hs_prop_error(errors, name, "INVALID_BOOLEAN", msg);
        }
        *out = xstrdup(value);
        return true;
    }
    if (strcmp(p->type, "enumeration") == 0 && !check_enum(t, p, value, errors))
        return false;
    *out = xstrdup(value);
    return true;
}

/* ---- Properties API ---- */

static cJSON *prop_json(enum hs_type t, const struct hs_prop *p)
{
    char created[32], updated[32];
    hs_iso(p->created_at, created);
    hs_iso(p->updated_at, updated);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", p->name);
    cJSON_AddStringToObject(o, "label", p->label);
    cJSON_AddStringToObject(o, "type", p->type);
    cJSON_AddStringToObject(o, "fieldType", p->field_type);
    cJSON_AddStringToObject(o, "description", p->description);
    cJSON_AddStringToObject(o, "groupName", p->group);
    bool is_pipeline_prop =
        t == HS_DEAL && (strcmp(p->name, "dealstage") == 0 || strcmp(p->name, "pipeline") == 0);
    if (is_pipeline_prop) {
        cJSON *ids = strcmp(p->name, "pipeline") == 0 ? hs_pipeline_ids() : hs_stage_ids(NULL);
        cJSON *opts = cJSON_AddArrayToObject(o, "options");
        const cJSON *id;
        int order = 0;
        cJSON_ArrayForEach(id, ids)
        {
            cJSON *opt = cJSON_CreateObject();
            cJSON_AddStringToObject(opt, "label", id->valuestring);
            cJSON_AddStringToObject(opt, "value", id->valuestring);
            cJSON_AddNumberToObject(opt, "displayOrder", order++);
            cJSON_AddBoolToObject(opt, "hidden", false);
            cJSON_AddItemToArray(opts, opt);
        }
        cJSON_Delete(ids);
    } else {
        cJSON_AddItemToObject(o, "options", cJSON_Duplicate(p->options, true));
    }
    cJSON_AddNumberToObject(o, "displayOrder", p->display_order);
    cJSON_AddBoolToObject(o, "calculated", p->is_calculated);
    cJSON_AddBoolToObject(o, "externalOptions",
                          is_pipeline_prop || strcmp(p->name, "hubspot_owner_id") == 0);
    cJSON_AddBoolToObject(o, "hasUniqueValue", p->is_unique);
    cJSON_AddBoolToObject(o, "hidden", p->is_hidden);
    cJSON_AddBoolToObject(o, "hubspotDefined", !p->is_custom);
    cJSON *meta = cJSON_AddObjectToObject(o, "modificationMetadata");
    cJSON_AddBoolToObject(meta, "archivable", p->is_custom);
    cJSON_AddBoolToObject(meta, "readOnlyDefinition", !p->is_custom);
    cJSON_AddBoolToObject(meta, "readOnlyValue", p->is_read_only);
    cJSON_AddBoolToObject(o, "formField", false);
    cJSON_AddStringToObject(o, "createdAt", created);
    cJSON_AddStringToObject(o, "updatedAt", updated);
    cJSON_AddBoolToObject(o, "archived", false);
    return o;
}

static const char *const prop_types[] = {"bool",   "date",         "datetime", "enumeration",
                                         "number", "phone_number", "string",   NULL};
static const char *const field_types[] = {"booleancheckbox",
                                          "calculation_equation",
                                          "checkbox",
                                          "date",
                                          "file",
                                          "html",
                                          "number",
                                          "phonenumber",
                                          "radio",
                                          "select",
                                          "text",
                                          "textarea",
                                          NULL};

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static bool is_valid_name(const char *s)
{
    if (!islower((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

/* Options must be [{label, value, ...}] with unique values; returns a message or NULL. */
static const char *check_options(const cJSON *options)
{
    if (!cJSON_IsArray(options))
        return "options must be an array";
    const cJSON *o;
    cJSON_ArrayForEach(o, options)
    {
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(o, "label");
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(o, "value");
        if (!cJSON_IsString(label) || !cJSON_IsString(value))
            return "each option needs a label and a value";
        for (const cJSON *q = o->next; q; q = q->next) {
            const cJSON *v2 = cJSON_GetObjectItemCaseSensitive(q, "value");
            if (cJSON_IsString(v2) && strcmp(v2->valuestring, value->valuestring) == 0)
                return "option values must be unique";
        }
    }
    return NULL;
}

static const char *json_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void create_prop(const struct sb_request *req, enum hs_type t, struct sb_response *resp)
{
    cJSON *body = hs_parse_body(req, resp);
    if (!body)
        return;
    const char *name = json_str(body, "name");
    const char *label = json_str(body, "label");
    const char *type = json_str(body, "type");
    const char *field_type = json_str(body, "fieldType");
    const char *group = json_str(body, "groupName");
    const cJSON *unique = cJSON_GetObjectItemCaseSensitive(body, "hasUniqueValue");
    const cJSON *options = cJSON_GetObjectItemCaseSensitive(body, "options");
    const char *bad = NULL;
    if (!name || !label || !type || !field_type || !group)
        bad = "name, label, type, fieldType and groupName are required";
    else if (!is_valid_name(name))
        bad = "name must start with a lowercase letter and hold only a-z, 0-9 and _";
    else if (!in_list(prop_types, type))
        bad = "type must be one of bool, date, datetime, enumeration, number, phone_number, "
              "string";
    else if (!in_list(field_types, field_type))
        bad = "fieldType is not a known field type";
    else if (strcmp(type, "enumeration") == 0 && (!options || cJSON_GetArraySize(options) == 0))
        bad = "options are required for enumeration properties";
    else if (options)
        bad = check_options(options);
    if (!bad && cJSON_IsTrue(unique) && strcmp(type, "string") != 0 && strcmp(type, "number") != 0)
        bad = "only string and number properties can have unique values";
    if (bad) {
        hs_error(resp, 400, "VALIDATION_ERROR", bad);
        goto out;
    }
    if (hs_prop_find(t, name)) {
        hs_errorf(resp, 409, "OBJECT_ALREADY_EXISTS", "Property named '%s' already exists.", name);
        goto out;
    }
    if (cJSON_IsTrue(unique)) {
        int n = 0;
        for (size_t i = 0; i < props[t].count; i++)
            n += props[t].items[i].is_unique;
        if (n >= MAX_UNIQUE_PROPS) {
            hs_errorf(resp, 400, "VALIDATION_ERROR",
                      "You can have at most %d unique value properties per object",
                      MAX_UNIQUE_PROPS);
            goto out;
        }
    }
    struct hs_prop *p = prop_add(t);
    p->name = xstrdup(name);
    p->label = xstrdup(label);
    p->type = xstrdup(type);
    p->field_type = xstrdup(field_type);
    p->group = xstrdup(group);
    const char *desc = json_str(body, "description");
    p->description = xstrdup(desc ? desc : "");
    p->options = options ? cJSON_Duplicate(options, true) : cJSON_CreateArray();
    p->is_unique = cJSON_IsTrue(unique);
    p->is_custom = true;
    p->is_hidden = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "hidden"));
    const cJSON *order = cJSON_GetObjectItemCaseSensitive(body, "displayOrder");
    p->display_order = cJSON_IsNumber(order) ? order->valueint : -1;
    sb_respond_json(resp, 201, prop_json(t, p));
out:
    cJSON_Delete(body);
}

static void update_prop(const struct sb_request *req, enum hs_type t, struct hs_prop *p,
                        struct sb_response *resp)
{
    cJSON *body = hs_parse_body(req, resp);
    if (!body)
        return;
    const cJSON *unique = cJSON_GetObjectItemCaseSensitive(body, "hasUniqueValue");
    const cJSON *options = cJSON_GetObjectItemCaseSensitive(body, "options");
    const char *bad = NULL;
    if (!p->is_custom)
        bad = "HubSpot-defined properties cannot be modified through this sandbox";
    else if (unique && cJSON_IsBool(unique) && cJSON_IsTrue(unique) != p->is_unique)
        bad = "hasUniqueValue cannot be changed once the property exists";
    else if (options)
        bad = check_options(options);
    if (bad) {
        hs_error(resp, 400, "VALIDATION_ERROR", bad);
        goto out;
    }
    const char *label = json_str(body, "label");
    const char *desc = json_str(body, "description");
    const char *group = json_str(body, "groupName");
    if (label) {
        free(p->label);
        p->label = xstrdup(label);
    }
    if (desc) {
        free(p->description);
        p->description = xstrdup(desc);
    }
    if (group) {
        free(p->group);
        p->group = xstrdup(group);
    }
    if (options) {
        cJSON_Delete(p->options);
        p->options = cJSON_Duplicate(options, true);
    }
    p->updated_at = sb_now_ms();
    sb_respond_json(resp, 200, prop_json(t, p));
out:
    cJSON_Delete(body);
}

bool hs_schema_handle(const struct sb_request *req, const char *rest, struct sb_response *resp)
{
    enum hs_type t;
    int taken = hs_take_type(&rest, &t);
    if (taken <= 0) {
        if (taken < 0)
            hs_error(resp, 400, "VALIDATION_ERROR", "Unable to infer object type");
        return taken < 0;
    }
    if (*rest == '\0') {
        if (strcmp(req->method, "GET") == 0) {
            cJSON *root = cJSON_CreateObject();
            cJSON *results = cJSON_AddArrayToObject(root, "results");
            for (size_t i = 0; i < props[t].count; i++)
                cJSON_AddItemToArray(results, prop_json(t, &props[t].items[i]));
            sb_respond_json(resp, 200, root);
            return true;
        }
        if (strcmp(req->method, "POST") == 0) {
            create_prop(req, t, resp);
            return true;
        }
        return false;
    }
    if (*rest != '/' || strchr(rest + 1, '/'))
        return false;
    const char *name = rest + 1;
    struct hs_prop *p = (struct hs_prop *)hs_prop_find(t, name);
    if (!p) {
        hs_errorf(resp, 404, "OBJECT_NOT_FOUND", "Unable to find property %s for %s", name,
                  hs_type_plural(t));
        return true;
    }
    if (strcmp(req->method, "GET") == 0) {
        sb_respond_json(resp, 200, prop_json(t, p));
    } else if (strcmp(req->method, "PATCH") == 0) {
        update_prop(req, t, p, resp);
    } else if (strcmp(req->method, "DELETE") == 0) {
        if (!p->is_custom) {
            hs_error(resp, 400, "VALIDATION_ERROR", "HubSpot-defined properties cannot be deleted");
            return true;
        }
        prop_clear(p);
        size_t i = (size_t)(p - props[t].items);
        memmove(p, p + 1, (props[t].count - i - 1) * sizeof *p);
        props[t].count--;
        sb_respond_json(resp, 204, NULL);
    } else {
        return false;
    }
    return true;
}
