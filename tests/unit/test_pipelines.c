/* test_pipelines.c - pipeline labels and the HubSpot stage built from a Salesforce
 * OpportunityStage (the seeded standard stages of the reference, salesforce.md 2.1). */
#include <check.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "pipelines.h"

static const struct {
    const char *sf_stage;
    const char *label;
    int order;
    const char *probability;
} stages[] = {
    {"{\"ApiName\":\"Prospecting\",\"MasterLabel\":\"Prospecting\",\"SortOrder\":1,"
     "\"DefaultProbability\":10,\"IsClosed\":false,\"IsWon\":false}",
     "Prospecting", 1, "0.1"},
    /* HubSpot takes probabilities in steps of 0.1: 75 % rounds to 0.8. */
    {"{\"ApiName\":\"Proposal/Price Quote\",\"MasterLabel\":\"Proposal/Price Quote\","
     "\"SortOrder\":7,\"DefaultProbability\":75,\"IsClosed\":false,\"IsWon\":false}",
     "Proposal/Price Quote", 7, "0.8"},
    /* Closed won is 1.0 and closed lost 0.0, whatever the default probability says. */
    {"{\"ApiName\":\"Closed Won\",\"MasterLabel\":\"Closed Won\",\"SortOrder\":9,"
     "\"DefaultProbability\":90,\"IsClosed\":true,\"IsWon\":true}",
     "Closed Won", 9, "1.0"},
    {"{\"ApiName\":\"Closed Lost\",\"MasterLabel\":\"Closed Lost\",\"SortOrder\":10,"
     "\"DefaultProbability\":20,\"IsClosed\":true,\"IsWon\":false}",
     "Closed Lost", 10, "0.0"},
    /* No probability at all: 0.0, and the API name stands in for a missing label. */
    {"{\"ApiName\":\"Custom\",\"SortOrder\":3,\"IsClosed\":false,\"IsWon\":false}", "Custom", 3,
     "0.0"},
};

START_TEST(stage_input_follows_the_salesforce_stage)
{
    cJSON *sf = cJSON_Parse(stages[_i].sf_stage);
    cJSON *in = pipelines_stage_input(sf);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(in, "label")), stages[_i].label);
    ck_assert_int_eq(cJSON_GetObjectItem(in, "displayOrder")->valueint, stages[_i].order);
    const cJSON *meta = cJSON_GetObjectItem(in, "metadata");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(meta, "probability")),
                     stages[_i].probability);
    cJSON_Delete(in);
    cJSON_Delete(sf);
}
END_TEST

START_TEST(labels_name_the_record_type)
{
    char *a = pipelines_label("0125w000000000AAAA");
    char *b = pipelines_label("");
    char *c = pipelines_label(NULL);
    ck_assert_str_eq(a, "Salesforce - 0125w000000000AAAA");
    ck_assert_str_eq(b, "Salesforce - Default pipeline");
    ck_assert_str_eq(c, "Salesforce - Default pipeline");
    free(a);
    free(b);
    free(c);
}
END_TEST

/* The UI API's StageName values for a record type (the shape Salesforce answers with, its
 * attribute name misspelt as Salesforce spells it) become stage rows in the process's order. */
START_TEST(process_stages_come_from_the_ui_api_values)
{
    cJSON *ui = cJSON_Parse(
        "{\"controllerValues\":{},\"defaultValue\":null,\"eTag\":\"x\",\"url\":\"/u\","
        "\"values\":[{\"attributes\":{\"closed\":false,\"defaultProbability\":20.0,"
        "\"forecastCategoryName\":\"Pipeline\",\"picklistAtrributesValueType\":"
        "\"OpportunityStage\",\"won\":false},\"label\":\"Needs Analysis\",\"validFor\":[],"
        "\"value\":\"Needs Analysis\"},{\"attributes\":{\"closed\":true,"
        "\"defaultProbability\":100.0,\"won\":true},\"label\":\"Won!\",\"validFor\":[],"
        "\"value\":\"Closed Won\"}]}");
    cJSON *rows = pipelines_process_stages(ui);
    ck_assert_int_eq(cJSON_GetArraySize(rows), 2);
    const cJSON *won = cJSON_GetArrayItem(rows, 1);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(won, "ApiName")), "Closed Won");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(won, "MasterLabel")), "Won!");
    ck_assert_int_eq(cJSON_GetObjectItem(won, "SortOrder")->valueint, 2);
    cJSON *in = pipelines_stage_input(won);
    ck_assert_str_eq(cJSON_GetStringValue(
                         cJSON_GetObjectItem(cJSON_GetObjectItem(in, "metadata"), "probability")),
                     "1.0");
    cJSON_Delete(in);
    in = pipelines_stage_input(cJSON_GetArrayItem(rows, 0));
    ck_assert_str_eq(cJSON_GetStringValue(
                         cJSON_GetObjectItem(cJSON_GetObjectItem(in, "metadata"), "probability")),
                     "0.2");
    ck_assert_int_eq(cJSON_GetObjectItem(in, "displayOrder")->valueint, 1);
    cJSON_Delete(in);
    cJSON_Delete(rows);
    cJSON_Delete(ui);
}
END_TEST

Suite *suite_pipelines(void);
Suite *suite_pipelines(void)
{
    Suite *s = suite_create("pipelines");
    TCase *tc = tcase_create("pure");
    tcase_add_loop_test(tc, stage_input_follows_the_salesforce_stage, 0,
                        sizeof(stages) / sizeof(stages[0]));
    tcase_add_test(tc, labels_name_the_record_type);
    tcase_add_test(tc, process_stages_come_from_the_ui_api_values);
    suite_add_tcase(s, tc);
    return s;
}
