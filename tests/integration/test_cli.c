/* test_cli.c - dealsync's one-shot commands as a terminal user runs them: the answer on stdout,
 * the log on stderr, the configuration logged only at debug. */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <cjson/cJSON.h>

#include "clitest.h"
#include "e2e.h"
#include "sbtest.h"
#include "itest.h"
#include "util.h"

START_TEST(one_shot_commands_answer_on_stdout_and_log_on_stderr)
{
    char *db = itest_db_create("cli_stdout");
    char *out = NULL, *err = NULL;
    /* status only reads: on a database without dealsync's schema it says what to run, and
     * creates nothing. */
    const char *status[] = {"status", NULL};
    ck_assert_int_eq(clitest_dealsync(db, status, &out, &err), 1);
    ck_assert_str_eq(out, "");
    ck_assert_ptr_nonnull(strstr(err, "run dealsync migrate"));
    free(out);
    free(err);
    PGconn *conn = PQconnectdb(db);
    ck_assert_int_eq(itest_db_scalar(conn, "SELECT count(*) FROM pg_tables"
                                           " WHERE tablename = 'schema_migrations'"),
                     0);
    PQfinish(conn);

    const char *on[] = {"settings", "sync-deals", "on", NULL};
    ck_assert_int_eq(clitest_dealsync(db, on, &out, &err), 0);
    ck_assert_str_eq(out, "");
    ck_assert_ptr_nonnull(strstr(err, "\"setting changed\""));
    ck_assert_ptr_null(strstr(err, "effective configuration"));
    free(out);
    free(err);

    const char *show[] = {"settings", NULL};
    ck_assert_int_eq(clitest_dealsync(db, show, &out, &err), 0);
    ck_assert_str_eq(out, "sync-deals on\n");
    free(out);
    free(err);

    /* At debug the configuration is there, on stderr, secrets masked. */
    const char *argv[] = {itest_env("DEALSYNC_BIN"), "settings", NULL};
    char *db_env = xasprintf("DATABASE_URL=%s", db);
    const char *env[] = {db_env, "LOG_LEVEL=debug", NULL};
    ck_assert_int_eq(clitest_run(argv, env, &out, &err), 0);
    ck_assert_str_eq(out, "sync-deals on\n");
    ck_assert_ptr_nonnull(strstr(err, "effective configuration"));
    ck_assert_ptr_nonnull(strstr(err, "DATABASE_URL=***"));
    free(out);
    free(err);
    free(db_env);
    free(db);
}
END_TEST

/* The Id of the seeded record of type whose field is value. Caller frees. */
static char *seeded_id(struct e2e *e, const char *type, const char *field, const char *value)
{
    char *path = xasprintf("/_sandbox/salesforce/records/%s", type);
    cJSON *all = NULL;
    ck_assert_int_eq(e2e_sb(e, "GET", path, NULL, &all), 200);
    char *id = NULL;
    const cJSON *r;
    cJSON_ArrayForEach(r, all)
    {
        const char *v = sbtest_str(r, field);
        if (!id && v && strcmp(v, value) == 0)
            id = xstrdup(sbtest_str(r, "Id"));
    }
    ck_assert_msg(id != NULL, "no seeded %s with %s %s", type, field, value);
    cJSON_Delete(all);
    free(path);
    return id;
}

static char *created_id(struct e2e *e, const char *type, const char *json)
{
    char *path = xasprintf("/_sandbox/salesforce/records/%s", type);
    cJSON *rec = NULL;
    ck_assert_int_eq(e2e_sb(e, "POST", path, json, &rec), 201);
    char *id = xstrdup(sbtest_str(rec, "Id"));
    cJSON_Delete(rec);
    free(path);
    return id;
}

/* A first sync of a new opportunity, as in the make run demo: the deal, company and contact do
 * not exist in HubSpot yet, so dealsync's reads answer "not found". Expected states: no line
 * at warn or error in the whole log, start-up included. */
START_TEST(a_clean_sync_logs_no_warning)
{
    struct e2e e;
    const char *env[] = {"WORKER_THREADS=2", NULL};
    e2e_start(&e, "cli_quiet", env, NULL, true);
    char *acme = seeded_id(&e, "Account", "Name", "Acme Corp");
    char *jane = seeded_id(&e, "Contact", "Email", "jane@acme.test");
    char *json = xasprintf("{\"Name\":\"Acme - quiet\",\"StageName\":\"Prospecting\","
                           "\"Amount\":1000,\"CloseDate\":\"2031-01-01\",\"AccountId\":\"%s\"}",
                           acme);
    char *opp = created_id(&e, "Opportunity", json);
    free(json);
    json = xasprintf("{\"OpportunityId\":\"%s\",\"ContactId\":\"%s\",\"Role\":\"Decision "
                     "Maker\"}",
                     opp, jane);
    free(created_id(&e, "OpportunityContactRole", json));
    free(json);
    ck_assert(e2e_wait_idle(&e, 60000));
    ck_assert_int_eq(e2e_events(&e, "dead"), 0);
    /* One deal made: events handled together (the outbound message and the contact-role
     * poller's event) each record the same outcome, so the outcomes naming a created deal are
     * counted by the deal they name. */
    ck_assert_int_eq(itest_db_scalar(e.svc.db,
                                     "SELECT count(DISTINCT detail) FROM sync_outcome WHERE detail "
                                     "LIKE 'hubspot deal % created from the opportunity%'"),
                     1);
    cJSON *deals = NULL;
    ck_assert_int_eq(e2e_sb(&e, "GET", "/_sandbox/hubspot/objects/deals", NULL, &deals), 200);
    ck_assert_int_eq(cJSON_GetArraySize(deals), 1);
    cJSON_Delete(deals);
    char *log = itest_read_file(e.svc.log_path, NULL);
    const char *warn = strstr(log, "\"level\":\"warn\"");
    if (!warn)
        warn = strstr(log, "\"level\":\"error\"");
    ck_assert_msg(warn == NULL, "a clean run logged: %.300s", warn);
    free(log);

    /* dealsync status: the same sync in a terminal, and as JSON. */
    char *out = NULL, *err = NULL;
    const char *status[] = {"status", NULL};
    ck_assert_int_eq(clitest_dealsync(e.svc.db_url, status, &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "sync deals: on"));
    ck_assert_ptr_nonnull(strstr(out, "salesforce to hubspot"));
    ck_assert_ptr_nonnull(strstr(out, "dead letters: 0"));
    free(out);
    free(err);
    const char *status_json[] = {"status", "--json", NULL};
    ck_assert_int_eq(clitest_dealsync(e.svc.db_url, status_json, &out, &err), 0);
    cJSON *answer = cJSON_Parse(out);
    ck_assert_ptr_nonnull(answer);
    ck_assert_int_eq(
        (int)cJSON_GetObjectItem(cJSON_GetObjectItem(answer, "queue"), "dead")->valuedouble, 0);
    ck_assert(cJSON_GetArraySize(cJSON_GetObjectItem(answer, "last_24h")) >= 2);
    cJSON_Delete(answer);
    free(out);
    free(err);

    /* dealsync show: both records side by side, stage and pipeline by label, and the link. */
    char **cmd_env = e2e_dealsync_env(&e, NULL);
    const char *show_opp[] = {itest_env("DEALSYNC_BIN"), "show", "opportunity", opp, NULL};
    ck_assert_int_eq(clitest_run(show_opp, (const char *const *)cmd_env, &out, &err), 0);
    ck_assert_msg(strstr(out, "Acme - quiet") && strstr(out, "Prospecting") &&
                      strstr(out, "Salesforce - ") && strstr(out, "linked by dealsync"),
                  "show opportunity printed:\n%s", out);
    char *deal = xstrdup(strstr(out, "deal 2") + 5);
    deal[strcspn(deal, "\n")] = '\0';
    /* The deal's stage shows by label first: "Prospecting (<stage id>)". */
    ck_assert_ptr_nonnull(strstr(out, "Prospecting ("));
    free(out);
    free(err);
    const char *show_deal[] = {itest_env("DEALSYNC_BIN"), "show", "deal", deal, NULL};
    ck_assert_int_eq(clitest_run(show_deal, (const char *const *)cmd_env, &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, opp));
    ck_assert_ptr_nonnull(strstr(out, "Acme - quiet"));
    free(out);
    free(err);
    const char *show_none[] = {itest_env("DEALSYNC_BIN"), "show", "deal", "99999999999", NULL};
    ck_assert_int_eq(clitest_run(show_none, (const char *const *)cmd_env, &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "no such deal"));
    free(out);
    free(err);
    free(deal);
    e2e_env_free(cmd_env);
    free(opp);
    free(jane);
    free(acme);
    e2e_stop(&e);
}
END_TEST

Suite *suite_cli(void);
Suite *suite_cli(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_test(tc, one_shot_commands_answer_on_stdout_and_log_on_stderr);
    tcase_add_test(tc, a_clean_sync_logs_no_warning);
    suite_add_tcase(s, tc);
    return s;
}
