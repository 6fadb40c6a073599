/* test_mapping.c - the field mapping, table-driven: every rule in both directions, picklists,
 * stages, owners, blanks, amounts and dates, and the validation of the mappings file. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mapping.h"

/* The HubSpot side the cases run against: dealtype as HubSpot defines it, and custom
 * properties of each type a custom mapping can meet. */
static const char *const property_defs_json =
    "[{\"name\":\"dealtype\",\"type\":\"enumeration\",\"options\":["
    "{\"label\":\"New Business\",\"value\":\"newbusiness\"},"
    "{\"label\":\"Existing Business\",\"value\":\"existingbusiness\"}]},"
    "{\"name\":\"priority\",\"type\":\"enumeration\",\"options\":["
    "{\"label\":\"High\",\"value\":\"high\"},{\"label\":\"Low\",\"value\":\"low\"}]},"
    "{\"name\":\"score\",\"type\":\"number\"},"
    "{\"name\":\"renewal_date\",\"type\":\"date\"},"
    "{\"name\":\"signed_at\",\"type\":\"datetime\"},"
    "{\"name\":\"is_strategic\",\"type\":\"bool\"},"
    "{\"name\":\"regions\",\"type\":\"enumeration\",\"fieldType\":\"checkbox\",\"options\":["
    "{\"label\":\"Europe\",\"value\":\"eu\"},{\"label\":\"Asia\",\"value\":\"asia\"}]}]";

/* The Salesforce side: the Opportunity describe's picklists (values checked when written). */
static const char *const sf_describe_json =
    "{\"fields\":[{\"name\":\"Type\",\"type\":\"picklist\",\"picklistValues\":["
    "{\"value\":\"New Business\",\"label\":\"New Business\",\"active\":true},"
    "{\"value\":\"Existing Business\",\"label\":\"Existing Business\",\"active\":true}]},"
    "{\"name\":\"Priority__c\",\"type\":\"picklist\",\"picklistValues\":["
    "{\"value\":\"P1\",\"label\":\"P1\",\"active\":true},"
    "{\"value\":\"P2\",\"label\":\"P2\",\"active\":true},"
    "{\"value\":\"Low\",\"label\":\"Low\",\"active\":false}]},"
    "{\"name\":\"Regions__c\",\"type\":\"multipicklist\",\"picklistValues\":["
    "{\"value\":\"Europe\",\"label\":\"Europe\",\"active\":true},"
    "{\"value\":\"Asia\",\"label\":\"Asia\",\"active\":true}]}]}";

static const char *const stage_map_json =
    "{\"Prospecting\":\"appointmentscheduled\",\"Closed Won\":\"closedwon\"}";
static const char *const owner_map_json = "{\"005A\":\"111\",\"005B\":\"222\"}";

static const char *const custom_mappings =
    "[{\"salesforce\":\"Priority__c\",\"hubspot\":\"priority\",\"rule\":\"two_way\","
    "\"values\":{\"P1\":\"high\"}},"
    "{\"salesforce\":\"Score__c\",\"hubspot\":\"score\",\"rule\":\"two_way\"},"
    "{\"salesforce\":\"Renewal__c\",\"hubspot\":\"renewal_date\",\"rule\":\"two_way\"},"
    "{\"salesforce\":\"Signed__c\",\"hubspot\":\"signed_at\",\"rule\":\"two_way\"},"
    "{\"salesforce\":\"Strategic__c\",\"hubspot\":\"is_strategic\",\"rule\":\"two_way\"},"
    "{\"salesforce\":\"Region__c\",\"hubspot\":\"region\",\"rule\":\"prefer_salesforce_unless_"
    "blank\"},"
    "{\"salesforce\":\"Segment__c\",\"hubspot\":\"segment\",\"rule\":\"always_salesforce\"},"
    "{\"salesforce\":\"Internal__c\",\"hubspot\":\"internal\",\"rule\":\"none\"},"
    "{\"salesforce\":\"Regions__c\",\"hubspot\":\"regions\",\"rule\":\"two_way\"}]";

struct apply_case {
    const char *name;
    enum mapping_direction dir;
    const char *sf;      /* Salesforce record, or NULL */
    const char *hs;      /* HubSpot properties, or NULL */
    const char *changes; /* expected changes object */
    const char *skips;   /* expected "field:reason|field:reason", "" for none */
    bool with_pipeline;
};

#define SF MAPPING_SF_TO_HS
#define HS MAPPING_HS_TO_SF

static const struct apply_case apply_cases[] = {
    /* ---- Salesforce -> HubSpot ---- */
    {"sf new deal gets every standard field", SF,
     "{\"Name\":\"Acme\",\"Amount\":120000.0,\"CloseDate\":\"2017-04-03\","
     "\"StageName\":\"Prospecting\",\"OwnerId\":\"005A\",\"Type\":\"New Business\","
     "\"Description\":\"first\"}",
     NULL,
     "{\"hubspot_owner_id\":\"111\",\"closedate\":\"2017-04-03T00:00:00.000Z\","
     "\"dealname\":\"Acme\",\"dealtype\":\"newbusiness\",\"description\":\"first\","
     "\"amount\":\"120000\",\"dealstage\":\"appointmentscheduled\"}",
     "", false},
    {"sf equal values in other spellings write nothing", SF,
     "{\"Name\":\"Acme\",\"Amount\":120000.0,\"CloseDate\":\"2017-04-03\","
     "\"StageName\":\"Prospecting\",\"OwnerId\":\"005A\",\"Type\":\"new business\"}",
     "{\"dealname\":\"Acme\",\"amount\":\"120000.00\",\"closedate\":\"1491177600000\","
     "\"dealstage\":\"appointmentscheduled\",\"hubspot_owner_id\":\"111\","
     "\"dealtype\":\"newbusiness\"}",
     "{}", "", false},
    {"sf outbound message strings map like REST values", SF,
     "{\"Amount\":\"45000.50\",\"CloseDate\":\"2020-07-11\",\"Name\":\"Backpackers\"}",
     "{\"amount\":\"1\",\"closedate\":\"2019-12-07T16:50:06.678Z\",\"dealname\":\"Old\"}",
     "{\"amount\":\"45000.5\",\"closedate\":\"2020-07-11T00:00:00.000Z\","
     "\"dealname\":\"Backpackers\"}",
     "", false},
    {"sf large amount keeps its precision", SF, "{\"Amount\":12345678901234.56}", "{}",
     "{\"amount\":\"12345678901234.56\"}", "", false},
    {"sf amount as 18-digit text keeps every digit", SF, "{\"Amount\":\"9999999999999999.99\"}",
     "{}", "{\"amount\":\"9999999999999999.99\"}", "", false},
    {"sf blank clears hubspot (null and empty string)", SF, "{\"Description\":null,\"Name\":\"\"}",
     "{\"description\":\"old\",\"dealname\":\"x\"}", "{\"description\":\"\",\"dealname\":\"\"}", "",
     false},
    {"sf blank over blank writes nothing", SF, "{\"Description\":null,\"Amount\":null}",
     "{\"description\":\"\",\"amount\":null}", "{}", "", false},
    {"sf blank on a new deal writes nothing", SF, "{\"Description\":null,\"Name\":\"A\"}", NULL,
     "{\"dealname\":\"A\"}", "", false},
    {"sf field absent from the record is left alone", SF, "{\"Name\":\"A\"}",
     "{\"description\":\"old\",\"dealname\":\"B\"}", "{\"dealname\":\"A\"}", "", false},
    {"sf picklist without option is skipped, the rest maps", SF,
     "{\"Type\":\"Renewal\",\"Name\":\"A\"}", "{}", "{\"dealname\":\"A\"}",
     "Type:no hubspot option for value", false},
    {"sf picklist via file values, option value and label", SF, "{\"Priority__c\":\"P1\"}", "{}",
     "{\"priority\":\"high\"}", "", false},
    {"sf picklist matches an option label ignoring case", SF, "{\"Priority__c\":\"LOW\"}",
     "{\"priority\":\"high\"}", "{\"priority\":\"low\"}", "", false},
    {"sf picklist value with no option is skipped", SF, "{\"Priority__c\":\"Medium\"}", "{}", "{}",
     "Priority__c:no hubspot option for value", false},
    {"sf stage without mapping is skipped", SF, "{\"StageName\":\"Needs Analysis\"}", "{}", "{}",
     "StageName:no stage mapping for value", false},
    {"sf stage change also moves the pipeline", SF, "{\"StageName\":\"Closed Won\"}",
     "{\"dealstage\":\"appointmentscheduled\",\"pipeline\":\"default\"}",
     "{\"dealstage\":\"closedwon\",\"pipeline\":\"p1\"}", "", true},
    {"sf owner without match is skipped", SF, "{\"OwnerId\":\"005Z\"}", "{}", "{}",
     "OwnerId:no hubspot owner for user", false},
    {"sf unparseable date is skipped", SF, "{\"CloseDate\":\"03/04/2017\"}", "{}", "{}",
     "CloseDate:not a date", false},
    {"sf non-numeric amount is skipped", SF, "{\"Amount\":\"lots\"}", "{}", "{}",
     "Amount:not a number", false},
    {"sf custom number, date, datetime and bool follow the property type", SF,
     "{\"Score__c\":3.5,\"Renewal__c\":\"2024-02-29\","
     "\"Signed__c\":\"2013-05-20T20:49:32.000+0000\",\"Strategic__c\":true}",
     "{}",
     "{\"score\":\"3.5\",\"renewal_date\":\"2024-02-29\","
     "\"signed_at\":\"2013-05-20T20:49:32.000Z\",\"is_strategic\":\"true\"}",
     "", false},
    {"sf prefer_salesforce_unless_blank overwrites hubspot", SF, "{\"Region__c\":\"EMEA\"}",
     "{\"region\":\"APAC\"}", "{\"region\":\"EMEA\"}", "", false},
    {"sf prefer_salesforce_unless_blank propagates a delete", SF, "{\"Region__c\":null}",
     "{\"region\":\"APAC\"}", "{\"region\":\"\"}", "", false},
    {"sf always_salesforce overwrites hubspot", SF, "{\"Segment__c\":\"SMB\"}",
     "{\"segment\":\"ENT\"}", "{\"segment\":\"SMB\"}", "", false},
    {"sf always_salesforce propagates a delete", SF, "{\"Segment__c\":\"\"}",
     "{\"segment\":\"ENT\"}", "{\"segment\":\"\"}", "", false},
    {"sf none passes nothing", SF, "{\"Internal__c\":\"x\"}", "{\"internal\":\"y\"}", "{}", "",
     false},

    /* ---- HubSpot -> Salesforce ---- */
    {"hs two_way carries every standard field", HS,
     "{\"Name\":\"Old\",\"Amount\":1000,\"CloseDate\":\"2019-01-01\","
     "\"StageName\":\"Prospecting\",\"OwnerId\":\"005B\",\"Type\":null}",
     "{\"dealname\":\"New\",\"amount\":\"1500.00\",\"closedate\":\"2019-12-07T16:50:06.678Z\","
     "\"dealstage\":\"closedwon\",\"hubspot_owner_id\":\"111\","
     "\"dealtype\":\"existingbusiness\"}",
     "{\"OwnerId\":\"005A\",\"CloseDate\":\"2019-12-07\",\"Name\":\"New\","
     "\"Type\":\"Existing Business\",\"Amount\":1500,\"StageName\":\"Closed Won\"}",
     "", false},
    {"hs closedate in epoch ms becomes a date", HS, "{\"CloseDate\":\"2019-01-01\"}",
     "{\"closedate\":\"1491177600000\"}", "{\"CloseDate\":\"2017-04-03\"}", "", false},
    {"hs equal values write nothing", HS,
     "{\"Amount\":120000.0,\"CloseDate\":\"2017-04-03\",\"Name\":\"A\",\"Type\":\"New Business\"}",
     "{\"amount\":\"120000\",\"closedate\":\"2017-04-03T00:00:00.000Z\",\"dealname\":\"A\","
     "\"dealtype\":\"newbusiness\"}",
     "{}", "", false},
    {"hs amount with decimals and large values", HS, "{\"Amount\":1}",
     "{\"amount\":\"12345678901234.56\"}", "{\"Amount\":12345678901234.56}", "", false},
    {"hs two_way blank clears salesforce", HS, "{\"Description\":\"x\",\"Amount\":5}",
     "{\"description\":\"\",\"amount\":null}", "{\"Description\":null,\"Amount\":null}", "", false},
    {"hs two_way blank over blank writes nothing", HS, "{\"Description\":null}",
     "{\"description\":\"\"}", "{}", "", false},
    {"hs prefer_salesforce_unless_blank fills an empty field", HS, "{\"Region__c\":null}",
     "{\"region\":\"APAC\"}", "{\"Region__c\":\"APAC\"}", "", false},
    {"hs prefer_salesforce_unless_blank never overwrites", HS, "{\"Region__c\":\"EMEA\"}",
     "{\"region\":\"APAC\"}", "{}", "", false},
    {"hs prefer_salesforce_unless_blank does not propagate a delete", HS,
     "{\"Region__c\":\"EMEA\"}", "{\"region\":\"\"}", "{}", "", false},
    {"hs always_salesforce never writes, even into an empty field", HS, "{\"Segment__c\":null}",
     "{\"segment\":\"ENT\"}", "{}", "", false},
    {"hs none passes nothing", HS, "{\"Internal__c\":null}", "{\"internal\":\"y\"}", "{}", "",
     false},
    {"hs owner without match is skipped", HS, "{\"OwnerId\":\"005A\"}",
     "{\"hubspot_owner_id\":\"999\"}", "{}", "hubspot_owner_id:no salesforce user for owner",
     false},
    {"hs stage without mapping is skipped", HS, "{\"StageName\":\"Prospecting\"}",
     "{\"dealstage\":\"contractsent\"}", "{}", "dealstage:no stage mapping for value", false},
    {"hs non-numeric amount is skipped, the rest maps", HS, "{\"Amount\":1,\"Name\":\"A\"}",
     "{\"amount\":\"abc\",\"dealname\":\"B\"}", "{\"Name\":\"B\"}", "amount:not a number", false},
    {"hs unparseable date is skipped", HS, "{}", "{\"closedate\":\"soon\"}", "{}",
     "closedate:not a date", false},
    {"hs picklist back through the file values", HS, "{\"Priority__c\":\"P2\"}",
     "{\"priority\":\"high\"}", "{\"Priority__c\":\"P1\"}", "", false},
    {"hs custom number, date, datetime and bool", HS, "{}",
     "{\"score\":\"7.25\",\"renewal_date\":\"2024-02-29\","
     "\"signed_at\":\"1369082972000\",\"is_strategic\":\"false\"}",
     "{\"Score__c\":7.25,\"Renewal__c\":\"2024-02-29\","
     "\"Signed__c\":\"2013-05-20T20:49:32.000Z\",\"Strategic__c\":false}",
     "", false},
    /* Picklists both ways (issue 10): HubSpot options reach Salesforce as labels, checked
     * against the Salesforce picklist; multi-selects are ';'-separated checkboxes. */
    {"hs picklist label not in the salesforce picklist is skipped", HS, "{\"Priority__c\":\"P2\"}",
     "{\"priority\":\"low\"}", "{}", "priority:no salesforce picklist value \"Low\"", false},
    {"hs value that is no hubspot option is skipped", HS, "{}", "{\"priority\":\"medium\"}", "{}",
     "priority:no hubspot option matches value", false},
    {"hs option reaches salesforce as its label, spelt as salesforce does", HS, "{\"Type\":null}",
     "{\"dealtype\":\"EXISTINGBUSINESS\"}", "{\"Type\":\"Existing Business\"}", "", false},
    {"sf multi-select becomes hubspot checkboxes", SF, "{\"Regions__c\":\"Europe;Asia\"}", "{}",
     "{\"regions\":\"eu;asia\"}", "", false},
    {"sf multi-select with a value hubspot lacks is skipped", SF,
     "{\"Regions__c\":\"Europe;Mars\"}", "{}", "{}", "Regions__c:no hubspot option for value",
     false},
    {"sf multi-select in another order writes nothing", SF, "{\"Regions__c\":\"Asia;Europe\"}",
     "{\"regions\":\"eu;asia\"}", "{}", "", false},
    {"hs checkboxes become a multi-select", HS, "{}", "{\"regions\":\"asia;eu\"}",
     "{\"Regions__c\":\"Asia;Europe\"}", "", false},
    {"hs checkboxes equal as a set write nothing", HS, "{\"Regions__c\":\"Europe;Asia\"}",
     "{\"regions\":\"asia;eu\"}", "{}", "", false},
    {"hs new opportunity: no blanks, no always_salesforce", HS, NULL,
     "{\"dealname\":\"N\",\"description\":\"\",\"region\":\"APAC\",\"segment\":\"ENT\"}",
     "{\"Name\":\"N\",\"Region__c\":\"APAC\"}", "", false},
};

static cJSON *parse_or_fail(const char *json)
{
    cJSON *v = cJSON_Parse(json);
    ck_assert_msg(v != NULL, "test json does not parse: %s", json);
    return v;
}

static char *skips_text(const struct mapping_result *r)
{
    static char out[512];
    out[0] = '\0';
    for (size_t i = 0; i < r->skip_count; i++) {
        size_t len = strlen(out);
        snprintf(out + len, sizeof(out) - len, "%s%s:%s", i ? "|" : "", r->skips[i].field,
                 r->skips[i].reason);
    }
    return out;
}

START_TEST(apply_table)
{
    const struct apply_case *c = &apply_cases[_i];
    struct mapping_set *set = NULL;
    char *error = NULL;
    ck_assert_int_eq(mapping_set_new(custom_mappings, &set, &error), ERR_OK);

    cJSON *defs = parse_or_fail(property_defs_json);
    cJSON *stages = parse_or_fail(stage_map_json);
    cJSON *owners = parse_or_fail(owner_map_json);
    cJSON *describe = parse_or_fail(sf_describe_json);
    struct mapping_context ctx = {
        .stage_map = stages,
        .owner_map = owners,
        .hs_property_defs = defs,
        .sf_describe = describe,
        .hs_pipeline_id = c->with_pipeline ? "p1" : NULL,
    };
    cJSON *sf = c->sf ? parse_or_fail(c->sf) : NULL;
    cJSON *hs = c->hs ? parse_or_fail(c->hs) : NULL;
    cJSON *want = parse_or_fail(c->changes);
    struct mapping_result r;

    ck_assert_int_eq(mapping_apply(set, &ctx, c->dir, sf, hs, &r), ERR_OK);
    char *got = cJSON_PrintUnformatted(r.changes);
    ck_assert_msg(cJSON_Compare(want, r.changes, true), "%s: changes %s, want %s", c->name, got,
                  c->changes);
    ck_assert_msg(strcmp(skips_text(&r), c->skips) == 0, "%s: skips \"%s\", want \"%s\"", c->name,
                  skips_text(&r), c->skips);

    free(got);
    mapping_result_clear(&r);
    cJSON_Delete(want);
    cJSON_Delete(hs);
    cJSON_Delete(sf);
    cJSON_Delete(owners);
    cJSON_Delete(stages);
    cJSON_Delete(describe);
    cJSON_Delete(defs);
    mapping_set_free(set);
}
END_TEST

/* HubSpot's table of compatible types, read both ways. */
static const struct {
    const char *sf_type, *hs_type, *hs_field_type;
    bool is_ok;
} type_cases[] = {
    {"picklist", "enumeration", "select", true},
    {"multipicklist", "enumeration", "checkbox", true},
    {"picklist", "enumeration", "checkbox", false},
    {"multipicklist", "enumeration", "select", false},
    {"boolean", "bool", "booleancheckbox", true},
    {"double", "number", "number", true},
    {"currency", "number", "number", true},
    {"string", "number", "number", false}, /* text to number */
    {"double", "string", "text", false},
    {"string", "string", "text", true},
    {"textarea", "string", "textarea", true},
    {"date", "date", "date", true},
    {"datetime", "date", "date", false}, /* a date cannot hold the time */
    {"date", "datetime", "date", true},
    {"datetime", "datetime", "date", true},
    {"boolean", "string", "text", false},
    {NULL, "string", "text", false},
};

START_TEST(type_compatibility_follows_hubspots_table)
{
    const char *why = mapping_type_mismatch(type_cases[_i].sf_type, type_cases[_i].hs_type,
                                            type_cases[_i].hs_field_type);
    ck_assert_msg((why == NULL) == type_cases[_i].is_ok, "%s <-> %s/%s: %s",
                  type_cases[_i].sf_type ? type_cases[_i].sf_type : "(null)",
                  type_cases[_i].hs_type, type_cases[_i].hs_field_type, why ? why : "compatible");
}
END_TEST

/* ---- Owner lookup callback ---- */

static int lookups;

static enum err owner_lookup(void *arg, enum mapping_direction dir, const char *id, char **out)
{
    (void)arg;
    lookups++;
    if (dir == MAPPING_SF_TO_HS && strcmp(id, "005C") == 0) {
        *out = strdup("333");
        return ERR_OK;
    }
    if (dir == MAPPING_HS_TO_SF && strcmp(id, "333") == 0) {
        *out = strdup("005C");
        return ERR_OK;
    }
    if (strcmp(id, "broken") == 0)
        return ERR_UPSTREAM;
    return ERR_NOT_FOUND;
}

START_TEST(owner_callback_translates_both_ways_and_propagates_errors)
{
    struct mapping_set *set = NULL;
    char *error = NULL;
    ck_assert_int_eq(mapping_set_new(NULL, &set, &error), ERR_OK);
    struct mapping_context ctx = {.owner_fn = owner_lookup};
    struct mapping_result r;
    cJSON *sf = cJSON_Parse("{\"OwnerId\":\"005C\"}");
    cJSON *hs = cJSON_Parse("{\"hubspot_owner_id\":\"333\"}");
    cJSON *broken = cJSON_Parse("{\"OwnerId\":\"broken\"}");

    lookups = 0;
    ck_assert_int_eq(mapping_apply(set, &ctx, MAPPING_SF_TO_HS, sf, NULL, &r), ERR_OK);
    ck_assert_str_eq(cJSON_GetObjectItem(r.changes, "hubspot_owner_id")->valuestring, "333");
    mapping_result_clear(&r);
    ck_assert_int_eq(mapping_apply(set, &ctx, MAPPING_HS_TO_SF, NULL, hs, &r), ERR_OK);
    ck_assert_str_eq(cJSON_GetObjectItem(r.changes, "OwnerId")->valuestring, "005C");
    mapping_result_clear(&r);
    ck_assert_int_eq(lookups, 2);
    /* Already equal: the current Salesforce owner is translated to compare, nothing written. */
    ck_assert_int_eq(mapping_apply(set, &ctx, MAPPING_HS_TO_SF, sf, hs, &r), ERR_OK);
    ck_assert_int_eq(cJSON_GetArraySize(r.changes), 0);
    mapping_result_clear(&r);
    /* A lookup failure other than "not found" is the caller's to retry. */
    r.changes = NULL;
    ck_assert_int_eq(mapping_apply(set, &ctx, MAPPING_SF_TO_HS, broken, NULL, &r), ERR_UPSTREAM);
    ck_assert_ptr_null(r.changes);

    cJSON_Delete(broken);
    cJSON_Delete(hs);
    cJSON_Delete(sf);
    mapping_set_free(set);
}
END_TEST

START_TEST(non_object_source_is_invalid)
{
    struct mapping_set *set = NULL;
    char *error = NULL;
    ck_assert_int_eq(mapping_set_new(NULL, &set, &error), ERR_OK);
    struct mapping_result r;
    cJSON *arr = cJSON_Parse("[]");
    ck_assert_int_eq(mapping_apply(set, NULL, MAPPING_SF_TO_HS, NULL, NULL, &r), ERR_INVALID);
    ck_assert_int_eq(mapping_apply(set, NULL, MAPPING_HS_TO_SF, NULL, arr, &r), ERR_INVALID);
    cJSON_Delete(arr);
    mapping_set_free(set);
}
END_TEST

/* ---- The mappings file ---- */

struct file_case {
    const char *json;
    const char *errors[3]; /* substrings the error must contain; none = must load */
};

static const struct file_case file_cases[] = {
    {"[]", {NULL}},
    {"[{\"salesforce\":\"Amount\",\"hubspot\":\"amount\",\"rule\":\"none\"}]", {NULL}},
    {"{\"salesforce\":\"A__c\"}", {"mappings file is not a json array"}},
    {"[not json", {"mappings file is not a json array"}},
    {"[{\"salesforce\":\"A__c\",\"hubspot\":\"a\",\"rule\":\"sometimes\"}]",
     {"mappings[0]: unknown rule \"sometimes\""}},
    {"[{\"salesforce\":\"A__c\"}]",
     {"mappings[0]: missing key \"hubspot\"", "mappings[0]: missing key \"rule\""}},
    {"[{\"hubspot\":\"a\",\"rule\":\"none\"}]", {"mappings[0]: missing key \"salesforce\""}},
    {"[{\"salesforce\":\"A__c\",\"hubspot\":\"a\",\"rule\":\"none\"},"
     "{\"salesforce\":\"a__C\",\"hubspot\":\"b\",\"rule\":\"none\"}]",
     {"mappings[1]: duplicate salesforce field \"a__C\""}},
    {"[{\"salesforce\":\"A__c\",\"hubspot\":\"dealname\",\"rule\":\"two_way\"}]",
     {"mappings[0]: duplicate hubspot property \"dealname\" (already mapped to \"Name\")"}},
    {"[{\"salesforce\":\"Name\",\"hubspot\":\"other\",\"rule\":\"two_way\"}]",
     {"duplicate salesforce field \"Name\""}},
    {"[{\"salesforce\":\"Amount\",\"hubspot\":\"amount\",\"rule\":\"none\"},"
     "{\"salesforce\":\"Amount\",\"hubspot\":\"amount\",\"rule\":\"two_way\"}]",
     {"mappings[1]: duplicate salesforce field \"Amount\""}},
    {"[{\"salesforce\":\"A__c\",\"hubspot\":\"a\",\"rule\":\"none\",\"value\":{}}]",
     {"mappings[0]: unknown key \"value\""}},
    {"[{\"salesforce\":\"Bad Field\",\"hubspot\":\"DealName\",\"rule\":\"none\"}]",
     {"invalid salesforce field name", "invalid hubspot property name"}},
    {"[{\"salesforce\":\"A__c\",\"hubspot\":\"a\",\"rule\":\"none\",\"values\":{\"x\":1}}]",
     {"\"values\" must map strings to strings"}},
    {"[{\"salesforce\":\"OwnerId\",\"hubspot\":\"hubspot_owner_id\",\"rule\":\"two_way\","
     "\"values\":{\"a\":\"b\"}}]",
     {"\"values\" not supported for OwnerId"}},
    /* StageName's values name HubSpot stages (pipelines.c). */
    {"[{\"salesforce\":\"StageName\",\"hubspot\":\"dealstage\",\"rule\":\"two_way\","
     "\"values\":{\"Prospecting\":\"Discovery\"}}]",
     {NULL}},
    {"[1, {\"salesforce\":\"A__c\",\"hubspot\":\"a\",\"rule\":\"bad\"}]",
     {"mappings[0]: not an object", "mappings[1]: unknown rule \"bad\""}},
};

START_TEST(file_table)
{
    const struct file_case *c = &file_cases[_i];
    struct mapping_set *set = NULL;
    char *error = NULL;
    enum err rc = mapping_set_new(c->json, &set, &error);
    if (!c->errors[0]) {
        ck_assert_msg(rc == ERR_OK, "%s: %s", c->json, error ? error : "");
        mapping_set_free(set);
        return;
    }
    ck_assert_int_eq(rc, ERR_CONFIG);
    ck_assert_ptr_null(set);
    for (int i = 0; i < 3 && c->errors[i]; i++)
        ck_assert_msg(strstr(error, c->errors[i]), "%s: error \"%s\" lacks \"%s\"", c->json, error,
                      c->errors[i]);
    free(error);
}
END_TEST

START_TEST(file_overrides_standard_rules_but_owner_stays_two_way)
{
    struct mapping_set *set = NULL;
    char *error = NULL;
    ck_assert_int_eq(
        mapping_set_new("[{\"salesforce\":\"Amount\",\"hubspot\":\"amount\",\"rule\":\"none\"},"
                        "{\"salesforce\":\"OwnerId\",\"hubspot\":\"hubspot_owner_id\","
                        "\"rule\":\"prefer_salesforce_unless_blank\"},"
                        "{\"salesforce\":\"Foo__c\",\"hubspot\":\"foo\",\"rule\":\"two_way\"}]",
                        &set, &error),
        ERR_OK);
    ck_assert_uint_eq(mapping_set_count(set), 8);
    for (size_t i = 0; i < mapping_set_count(set); i++) {
        const struct mapping_field *f = mapping_set_field(set, i);
        if (strcmp(f->sf_field, "Amount") == 0)
            ck_assert_int_eq(f->rule, MAPPING_RULE_NONE);
        if (strcmp(f->sf_field, "OwnerId") == 0)
            ck_assert_int_eq(f->rule, MAPPING_RULE_TWO_WAY);
    }
    /* Rule "none" fields are not read at all. */
    char *sf = mapping_sf_field_list(set);
    char *hs = mapping_hs_property_list(set);
    ck_assert_str_eq(sf, "OwnerId,CloseDate,Name,Type,Description,StageName,Foo__c");
    ck_assert_str_eq(hs, "hubspot_owner_id,closedate,dealname,dealtype,description,dealstage,foo");
    free(hs);
    free(sf);
    mapping_set_free(set);
}
END_TEST

START_TEST(rule_names_round_trip)
{
    enum mapping_rule r;
    for (int i = MAPPING_RULE_TWO_WAY; i <= MAPPING_RULE_NONE; i++) {
        ck_assert(mapping_rule_parse(mapping_rule_name((enum mapping_rule)i), &r));
        ck_assert_int_eq(r, i);
    }
    ck_assert(!mapping_rule_parse("Two_Way", &r));
    ck_assert(!mapping_rule_parse(NULL, &r));
}
END_TEST

/* ---- Numbers ---- */

struct number_case {
    const char *json;
    const char *want; /* NULL = not a number */
};

static const struct number_case number_cases[] = {
    {"120000.0", "120000"},
    {"\"120000.0\"", "120000"},
    {"\"45000.50\"", "45000.5"},
    {"\"1500.00\"", "1500"},
    {"0.1", "0.1"},
    {"-3.25", "-3.25"},
    {"12345678901234.56", "12345678901234.56"},
    {"\"9999999999999999.99\"", "9999999999999999.99"},
    {"1e20", "100000000000000000000"},
    {"\"-0.00\"", "0"},
    {"\"abc\"", NULL},
    {"\"1e5\"", NULL},
    {"\".\"", NULL},
    {"true", NULL},
};

START_TEST(number_table)
{
    const struct number_case *c = &number_cases[_i];
    cJSON *v = parse_or_fail(c->json);
    char *got = mapping_number_text(v);
    if (c->want)
        ck_assert_msg(got && strcmp(got, c->want) == 0, "%s -> %s, want %s", c->json,
                      got ? got : "NULL", c->want);
    else
        ck_assert_msg(got == NULL, "%s -> %s, want NULL", c->json, got);
    free(got);
    cJSON_Delete(v);
}
END_TEST

Suite *suite_mapping(void);
Suite *suite_mapping(void)
{
    Suite *s = suite_create("mapping");
    TCase *tc = tcase_create("apply");
    tcase_add_loop_test(tc, apply_table, 0, (int)(sizeof(apply_cases) / sizeof(apply_cases[0])));
    tcase_add_test(tc, owner_callback_translates_both_ways_and_propagates_errors);
    tcase_add_test(tc, non_object_source_is_invalid);
    tcase_add_loop_test(tc, type_compatibility_follows_hubspots_table, 0,
                        (int)(sizeof(type_cases) / sizeof(type_cases[0])));
    suite_add_tcase(s, tc);
    tc = tcase_create("file");
    tcase_add_loop_test(tc, file_table, 0, (int)(sizeof(file_cases) / sizeof(file_cases[0])));
    tcase_add_test(tc, file_overrides_standard_rules_but_owner_stays_two_way);
    tcase_add_test(tc, rule_names_round_trip);
    suite_add_tcase(s, tc);
    tc = tcase_create("numbers");
    tcase_add_loop_test(tc, number_table, 0, (int)(sizeof(number_cases) / sizeof(number_cases[0])));
    suite_add_tcase(s, tc);
    return s;
}
