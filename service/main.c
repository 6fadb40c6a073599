/* main.c - wiring only: config -> log -> db -> http server -> workers; sigwait; stop in reverse.
 * Subcommands: serve (endpoints and workers), worker (workers only), migrate, --help. */
#include <curl/curl.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "db.h"
#include "handlers.h"
#include "http_server.h"
#include "import.h"
#include "log.h"
#include "mapping.h"
#include "migrate.h"
#include "ops_cli.h"
#include "ops_doctor.h"
#include "ops_show.h"
#include "queue.h"
#include "reconcile.h"
#include "register.h"
#include "setup.h"
#include "sf_setup.h"
#include "sync.h"
#include "sync_state.h"
#include "util.h"
#include "worker.h"

#define EX_USAGE 64
#define EX_CONFIG 78

static const char usage[] =
    "usage: dealsync <command>\n"
    "\n"
    "commands:\n"
    "  serve     receive Salesforce and HubSpot webhooks and run the sync workers\n"
    "  worker    run the sync workers only (scale out beside serve)\n"
    "  migrate   apply pending database migrations and exit\n"
    "  register [salesforce|hubspot]\n"
    "            register the webhook endpoints (PUBLIC_BASE_URL) in both CRMs, or one;\n"
    "            safe to repeat: what exists is reused\n"
    "  settings  show the operator switches\n"
    "  settings sync-deals on|off\n"
    "            turn opportunity/deal sync on or off (off until turned on, as in HubSpot)\n"
    "  requeue [EVENT_ID...]\n"
    "            put dead-lettered events (all, or the ones named) back in the queue\n"
    "  import [salesforce|hubspot|both] [--since ISO-DATE] [--wait]\n"
    "            queue every opportunity and every deal of a synced pipeline for the\n"
    "            workers; continues an import that was stopped\n"
    "  import --status\n"
    "            each import: pages, records listed, queued, synced, failed\n"
    "  resync --opportunity ID... | --deal ID... | --dead | --since ISO-DATE\n"
    "            queue those records again and print what was queued\n"
    "  doctor [--json]\n"
    "            check everything the sync needs (database, both CRMs, webhooks, mappings,\n"
    "            PUBLIC_BASE_URL) and say how to fix each miss; exit 0 when all pass\n"
    "  show opportunity|deal ID\n"
    "            the opportunity and its deal side by side, with stage and pipeline labels\n"
    "  status [--json]\n"
    "            sync health: queue, outcomes and errors of the last 24 hours, dead letters\n"
    "  healthcheck  exit 0 when this host's dealsync answers GET /healthz (container\n"
    "            HEALTHCHECK; reads PORT)\n"
    "  --help    show this text\n"
    "\n"
    "Configuration comes from environment variables; see docs/configuration.md.\n";

static void *xmalloc_hook(size_t n)
{
    return xmalloc(n);
}

static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* Ends the process if an orderly stop takes longer than the grace period: claimed records are
 * safe (their leases expire and another worker takes them), so exiting loses nothing. */
static void *shutdown_watchdog(void *arg)
{
    int seconds = *(const int *)arg;
    struct timespec ts = {seconds, 0};
    nanosleep(&ts, NULL);
    log_warn("shutdown grace period over; in-flight records are left to their leases",
             LOG_I64("grace_seconds", seconds));
    _exit(0);
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

/* The container's HEALTHCHECK: the runtime image has no curl, and needs none. */
static int run_healthcheck(void)
{
    char *url = xasprintf("http://127.0.0.1:%d/healthz", config_port());
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    free(url);
    return status == 200 ? 0 : 1;
}

static int run_migrate(const struct config *cfg)
{
    PGconn *db = NULL;
    int applied = 0;
    if (db_open(cfg->database_url, &db) != ERR_OK)
        return 1;
    enum err rc = migrate_apply(db, &applied);
    PQfinish(db);
    if (rc != ERR_OK)
        return 1;
    log_info("migrations current", LOG_I64("applied_now", applied),
             LOG_I64("known", migrate_embedded_count));
    return 0;
}

/* `dealsync requeue [EVENT_ID...]`: after the cause of dead letters was fixed. */
static int run_requeue(const struct config *cfg, int argc, char **argv, sigset_t *signals)
{
    (void)signals;
    if (run_migrate(cfg) != 0)
        return 1;
    return requeue_main(cfg, argc - 1, argv + 1);
}

/* `dealsync import ...` and `dealsync resync ...` (issue 8): they need the mappings, as the
 * sync does, for the pipelines they make sure of. */
static int run_import(const struct config *cfg, int argc, char **argv, sigset_t *signals)
{
    struct mapping_set *mappings = NULL;
    if (run_migrate(cfg) != 0 || sync_load_mappings(cfg, &mappings) != ERR_OK)
        return 1;
    int status = strcmp(argv[1], "import") == 0
                     ? import_main(cfg, mappings, argc - 1, argv + 1, signals)
                     : resync_main(cfg, mappings, argc - 1, argv + 1, signals);
    mapping_set_free(mappings);
    return status;
}

/* `dealsync settings [sync-deals on|off]`. */
static int run_settings(const struct config *cfg, int argc, char **argv, sigset_t *signals)
{
    (void)signals;
    PGconn *db = NULL;
    int status = 1;
    if (run_migrate(cfg) != 0 || db_open(cfg->database_url, &db) != ERR_OK)
        return 1;
    if (argc == 4 && strcmp(argv[2], "sync-deals") == 0 &&
        (strcmp(argv[3], "on") == 0 || strcmp(argv[3], "off") == 0)) {
        /* Turned on: sweep both sides at once, so what changed while it was off syncs. */
        if (sync_setting_set(db, SYNC_SETTING_SYNC_DEALS, argv[3]) == ERR_OK &&
            (strcmp(argv[3], "off") == 0 || reconcile_request_now(db) == ERR_OK)) {
            log_info("setting changed", LOG_STR("name", SYNC_SETTING_SYNC_DEALS),
                     LOG_STR("value", argv[3]));
            status = 0;
        }
    } else if (argc == 2) {
        char *v = NULL;
        if (sync_setting_get(db, SYNC_SETTING_SYNC_DEALS, "off", &v) == ERR_OK) {
            printf("sync-deals %s\n", v);
            status = 0;
        }
        free(v);
    } else {
        fprintf(stderr, "usage: dealsync settings [sync-deals on|off]\n");
        status = EX_USAGE;
    }
    PQfinish(db);
    return status;
}

/* `dealsync register [salesforce|hubspot]`. */
static int run_register(const struct config *cfg, int argc, char **argv, sigset_t *signals)
{
    (void)signals;
    unsigned targets = REGISTER_ALL;
    if (argc == 3 && strcmp(argv[2], "salesforce") == 0) {
        targets = REGISTER_SALESFORCE;
    } else if (argc == 3 && strcmp(argv[2], "hubspot") == 0) {
        targets = REGISTER_HUBSPOT;
    } else if (argc != 2) {
        fprintf(stderr, "usage: dealsync register [salesforce|hubspot]\n");
        return EX_USAGE;
    }
    enum err rc = register_run(cfg, targets);
    return rc == ERR_OK ? 0 : rc == ERR_CONFIG ? EX_CONFIG : 1;
}

/* HubSpot-to-Salesforce set-up (issue 5): the Opportunity deal id field. A failure here is
 * logged and recorded; the deal handler checks again before writing opportunities. */
static void setup_salesforce(const struct config *cfg, struct sync_shared *shared)
{
    PGconn *db = NULL;
    if (!config_has_salesforce_api(cfg) || db_open(cfg->database_url, &db) != ERR_OK)
        return;
    struct sync_ctx *ctx = sync_ctx_new(cfg, shared);
    bool is_ready = false;
    char *reason = NULL;
    if (ctx->sf &&
        sf_setup_deal_field(ctx->sf, db, cfg->sf_deal_id_field, &is_ready, &reason) != ERR_OK)
        log_warn("cannot check the opportunity deal id field now; deal sync checks again");
    free(reason);
    sync_ctx_free(ctx);
    PQfinish(db);
}

static int run_service(const struct config *cfg, bool serve_http, sigset_t *signals)
{
    struct db_pool *pool = NULL;
    struct http_server *http = NULL;
    struct worker_pool *workers = NULL;
    struct mapping_set *mappings = NULL;
    int status = 1;

    if (run_migrate(cfg) != 0)
        goto out;
    if (sync_load_mappings(cfg, &mappings) != ERR_OK)
        goto out;
    if (cfg->worker_threads > 0 && setup_run(cfg, mappings) != ERR_OK)
        goto out;
    struct sync_shared shared = {cfg, mappings};
    setup_salesforce(cfg, &shared);
    char host[128] = "localhost";
    gethostname(host, sizeof(host) - 1);
    char *id = xasprintf("%s:%d", host, (int)getpid());
    if (serve_http) {
        pool =
            db_pool_new(cfg->database_url, http_server_db_connections(cfg), DB_WEBHOOK_SESSION_SQL);
        if (http_server_start(cfg, pool, &http) != ERR_OK) {
            free(id);
            goto out;
        }
    }
    if (cfg->worker_threads > 0 &&
        worker_pool_start(cfg, handlers_ops(&shared), id, &workers) != ERR_OK) {
        free(id);
        goto out;
    }
    free(id);
    log_info("dealsync started", LOG_STR("mode", serve_http ? "serve" : "worker"));

    int sig = 0;
    sigwait(signals, &sig);
    while (sig == SIGHUP || sig == SIGPIPE)
        sigwait(signals, &sig);
    log_info("stopping", LOG_STR("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
    pthread_t watchdog;
    if (pthread_create(&watchdog, NULL, shutdown_watchdog, (void *)&cfg->shutdown_grace_seconds) ==
        0)
        pthread_detach(watchdog);
    status = 0;
out:
    http_server_stop(http);
    worker_pool_stop(workers);
    db_pool_free(pool);
    mapping_set_free(mappings);
    if (status == 0)
        log_info("dealsync stopped");
    return status;
}

/* The subcommands: name, how many arguments after it, whether the webhook secrets are
 * required, and what runs it (after config, logging and the libraries are set up). */
struct command {
    const char *name;
    int min_args;
    int max_args;
    bool needs_webhooks;
    int (*run)(const struct config *cfg, int argc, char **argv, sigset_t *signals);
};

static int cmd_serve(const struct config *cfg, int argc, char **argv, sigset_t *signals)
{
    (void)argc;
    (void)argv;
    return run_service(cfg, true, signals);
}

static int cmd_worker(const struct config *cfg, int argc, char **argv, sigset_t *signals)
{
    (void)argc;
    (void)argv;
    return run_service(cfg, false, signals);
}

static int cmd_migrate(const struct config *cfg, int argc, char **argv, sigset_t *signals)
{
    (void)argc;
    (void)argv;
    (void)signals;
    return run_migrate(cfg);
}

static int cmd_status(const struct config *cfg, int argc, char **argv, sigset_t *signals)
{
    (void)signals;
    return ops_cli_status(cfg, argc, argv);
}

static int cmd_doctor(const struct config *cfg, int argc, char **argv, sigset_t *signals)
{
    (void)signals;
    return ops_doctor_run(cfg, argc, argv);
}

static int cmd_show(const struct config *cfg, int argc, char **argv, sigset_t *signals)
{
    (void)signals;
    return ops_show_run(cfg, argc, argv);
}

static const struct command commands[] = {
    {"serve", 0, 0, true, cmd_serve},         {"worker", 0, 0, false, cmd_worker},
    {"migrate", 0, 0, false, cmd_migrate},    {"settings", 0, 2, false, run_settings},
    {"requeue", 0, 1000, false, run_requeue}, {"register", 0, 1, false, run_register},
    {"import", 0, 4, false, run_import},      {"resync", 1, 1000, false, run_import},
    {"status", 0, 1, false, cmd_status},      {"doctor", 0, 1, false, cmd_doctor},
    {"show", 2, 2, false, cmd_show},
};

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc == 2 ? stdout : stderr);
        return argc == 2 ? 0 : EX_USAGE;
    }
    if (strcmp(argv[1], "healthcheck") == 0 && argc == 2) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int rc = run_healthcheck();
        curl_global_cleanup();
        return rc;
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd || argc - 2 < cmd->min_args || argc - 2 > cmd->max_args) {
        fprintf(stderr, "dealsync: %s '%s'\n\n%s", cmd ? "wrong arguments for" : "unknown command",
                argv[1], usage);
        return EX_USAGE;
    }

    struct config cfg;
    if (config_load(&cfg, cmd->needs_webhooks) != ERR_OK)
        return EX_CONFIG;
    enum log_level level = LOG_INFO;
    log_parse_level(cfg.log_level, &level);
    log_set_level(level);
    /* serve and worker log on stdout (the container's log); a one-shot command answers on
     * stdout and logs on stderr, and its configuration is of interest only when debugging. */
    bool is_service = cmd->run == cmd_serve || cmd->run == cmd_worker;
    if (!is_service)
        log_set_fd(2);
    config_log(&cfg, is_service ? LOG_INFO : LOG_DEBUG);

    /* Process-wide library state, before any thread exists. */
    cJSON_Hooks hooks = {xmalloc_hook, free};
    cJSON_InitHooks(&hooks);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
    sigset_t signals;
    block_signals(&signals);

    int status = cmd->run(&cfg, argc, argv, &signals);

    xmlCleanupParser();
    curl_global_cleanup();
    config_clear(&cfg);
    return status;
}
