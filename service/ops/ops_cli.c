/* ops_cli.c - see ops_cli.h. */
#include "ops_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "db.h"
#include "log.h"
#include "migrate.h"
#include "ops_status.h"

#define EX_USAGE 64

static void print_status(const cJSON *status, const cJSON *dead)
{
    const cJSON *settings = cJSON_GetObjectItemCaseSensitive(status, "settings");
    const cJSON *queue = cJSON_GetObjectItemCaseSensitive(status, "queue");
    const cJSON *row;
    printf("dealsync status at %s\n", ops_str(status, "generated_at"));
    printf("sync deals: %s; opportunity deal id field: %s\n", ops_str(settings, "sync_deals"),
           ops_str(settings, "deal_id_field"));
    printf("queue: %.0f pending, %.0f running, %.0f dead, %.0f done; oldest pending %.0f s; "
           "lag %.1f s (receipt to synced, last hour)\n",
           ops_num(queue, "pending"), ops_num(queue, "running"), ops_num(queue, "dead"),
           ops_num(queue, "done"), ops_num(queue, "oldest_pending_seconds"),
           ops_num(queue, "lag_seconds"));
    printf("webhook inbox: %.0f requests acknowledged, not yet split into the queue\n",
           ops_num(queue, "inbox_pending"));
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(status, "api_budget"))
    {
        if (strcmp(ops_str(row, "api"), "hubspot") == 0)
            printf("hubspot budget: %.0f calls in the current window (%.0f reserved ahead), %.0f "
                   "today%s\n",
                   ops_num(row, "calls_in_window"), ops_num(row, "reserved"),
                   ops_num(row, "day_used"),
                   ops_num(row, "held_seconds") > 0 ? "; held back by HubSpot's headers" : "");
        else if (strcmp(ops_str(row, "api"), "salesforce") == 0 && ops_num(row, "usage_max") > 0)
            printf("salesforce usage: %.0f of %.0f calls in 24 h (as of %s)\n",
                   ops_num(row, "usage_used"), ops_num(row, "usage_max"),
                   ops_str(row, "observed_at"));
    }
    printf("\nlast 24 hours:\n");
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(status, "last_24h")) == 0)
        printf("  nothing synced\n");
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(status, "last_24h"))
        printf("  %-22s %-8s %6.0f events %6.0f records\n", ops_str(row, "direction"),
               ops_str(row, "outcome"), ops_num(row, "events"), ops_num(row, "records"));
    printf("\nerrors and warnings, last 24 hours:\n");
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(status, "problems")) == 0)
        printf("  none\n");
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(status, "problems"))
        printf("  %-7s %-14s %-10s %4.0f events %4.0f records  latest: %.160s\n",
               ops_str(row, "severity"), ops_str(row, "type"), ops_str(row, "source"),
               ops_num(row, "events"), ops_num(row, "records"), ops_str(row, "example"));
    printf("\ndead letters: %d%s\n", cJSON_GetArraySize(dead),
           cJSON_GetArraySize(dead) ? " (newest first; `dealsync requeue [EVENT_ID...]` retries)"
                                    : "");
    cJSON_ArrayForEach(row, dead) printf(
        "  event %.0f  %s %s %s  %s after %.0f attempt%s, %s: %.160s\n", ops_num(row, "id"),
        ops_str(row, "source"), ops_str(row, "object_type"), ops_str(row, "record_id"),
        ops_str(row, "type"), ops_num(row, "attempts"), ops_num(row, "attempts") == 1 ? "" : "s",
        ops_str(row, "finished_at"), ops_str(row, "reason"));
}

int ops_cli_status(const struct config *cfg, int argc, char **argv)
{
    bool json = argc == 3 && strcmp(argv[2], "--json") == 0;
    if (argc > 3 || (argc == 3 && !json)) {
        fprintf(stderr, "usage: dealsync status [--json]\n");
        return EX_USAGE;
    }
    PGconn *db = NULL;
    if (db_open(cfg->database_url, &db) != ERR_OK)
        return 1;
    /* status only reads: a newer binary's status run against a running installation must not
     * change its schema under it. An older schema is reported, and migrate is the fix. */
    bool is_current = false;
    if (migrate_is_current(db, &is_current) != ERR_OK || !is_current) {
        if (!is_current)
            log_error("the database schema is not this version's: run dealsync migrate (serve "
                      "and worker apply the migrations at start)",
                      LOG_I64("known_migrations", migrate_embedded_count));
        PQfinish(db);
        return 1;
    }
    cJSON *status = NULL, *dead = NULL;
    int rc = 1;
    if (ops_status(db, &status) == ERR_OK && ops_dead_letters(db, 50, &dead) == ERR_OK) {
        if (json) {
            cJSON_AddItemToObject(status, "dead_letters", dead);
            dead = NULL;
            char *text = cJSON_Print(status);
            puts(text);
            free(text);
        } else {
            print_status(status, dead);
        }
        rc = 0;
    }
    cJSON_Delete(status);
    cJSON_Delete(dead);
    PQfinish(db);
    return rc;
}
