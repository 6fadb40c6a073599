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

Suite *suite_pipelines(void);
Suite *suite_pipelines(void)
{
    Suite *s = suite_create("pipelines");
    TCase *tc = tcase_create("pure");
    tcase_add_loop_test(tc, stage_input_follows_the_salesforce_stage, 0,
                        sizeof(stages) / sizeof(stages[0]));
    tcase_add_test(tc, labels_name_the_record_type);
    suite_add_tcase(s, tc);
    return s;
}
