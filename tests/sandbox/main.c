/* main.c - dealsync-sandbox: flags and environment -> settings, seed the emulated systems, start
 * the HTTP server and the delivery thread, wait for SIGINT/SIGTERM, stop. Wiring only. */
#include "core.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"
#include "util.h"

#define EX_USAGE 64

struct options {
    const char *bind_addr;
    int64_t port;
    int64_t seed;
};

static void usage(void)
{
    fprintf(stderr, "usage: dealsync-sandbox [--port N] [--bind ADDR] [--seed N] "
                    "[--set name=value]...\n"
                    "environment: SANDBOX_PORT, SANDBOX_BIND, SANDBOX_SEED, "
                    "SANDBOX_SETTINGS=\"name=value;name=value\", LOG_LEVEL\n");
}

static bool parse_int_arg(const char *what, const char *text, int64_t *out)
{
    if (util_parse_i64(text, out) && *out >= 0)
        return true;
    fprintf(stderr, "dealsync-sandbox: %s must be a non-negative integer, not '%s'\n", what, text);
    return false;
}

static bool assign_settings_list(const char *list)
{
    char *copy = xstrdup(list);
    char *save = NULL;
    bool ok = true;
    for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        if (*tok && !sb_settings_assign(tok)) {
            fprintf(stderr, "dealsync-sandbox: bad setting '%s' (want name=value)\n", tok);
            ok = false;
        }
    }
    free(copy);
    return ok;
}

/* Environment first, then flags, so flags win. */
static bool parse_options(int argc, char **argv, struct options *opt)
{
    const char *env;
    opt->bind_addr = (env = getenv("SANDBOX_BIND")) && *env ? env : "127.0.0.1";
    if ((env = getenv("SANDBOX_PORT")) && *env && !parse_int_arg("SANDBOX_PORT", env, &opt->port))
        return false;
    if ((env = getenv("SANDBOX_SEED")) && *env && !parse_int_arg("SANDBOX_SEED", env, &opt->seed))
        return false;
    if ((env = getenv("SANDBOX_SETTINGS")) && *env && !assign_settings_list(env))
        return false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            exit(0);
        }
        if (!v) {
            usage();
            return false;
        }
        i++;
        if (strcmp(a, "--port") == 0) {
            if (!parse_int_arg("--port", v, &opt->port))
                return false;
        } else if (strcmp(a, "--bind") == 0) {
            opt->bind_addr = v;
        } else if (strcmp(a, "--seed") == 0) {
            if (!parse_int_arg("--seed", v, &opt->seed))
                return false;
        } else if (strcmp(a, "--set") == 0) {
            if (!sb_settings_assign(v)) {
                fprintf(stderr, "dealsync-sandbox: bad --set '%s' (want name=value)\n", v);
                return false;
            }
        } else {
            usage();
            return false;
        }
    }
    if (opt->port > 65535) {
        fprintf(stderr, "dealsync-sandbox: port out of range\n");
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    struct options opt = {.bind_addr = "127.0.0.1", .port = 8099, .seed = 1};
    enum log_level level = LOG_INFO;
    const char *level_env = getenv("LOG_LEVEL");
    if (level_env && *level_env && !log_parse_level(level_env, &level)) {
        fprintf(stderr, "dealsync-sandbox: LOG_LEVEL must be debug, info, warn or error\n");
        return EX_USAGE;
    }
    log_set_level(level);

    sb_settings_init();
    if (!parse_options(argc, argv, &opt))
        return EX_USAGE;
    sb_settings_mark_defaults();
    sb_faults_init((uint64_t)opt.seed);

    /* Before any thread: curl's global state, and every signal blocked so that only sigwait
     * below sees SIGINT/SIGTERM and a write to a closed socket gives EPIPE. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("cannot initialise libcurl");
        return 1;
    }
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);

    sb_sf_init();
    sb_hs_init();

    int port = 0;
    if (!sb_server_start(opt.bind_addr, (int)opt.port, &port)) {
        curl_global_cleanup();
        return 1;
    }
    char *url = xasprintf("http://%s:%d", opt.bind_addr, port);
    log_info("sandbox ready", LOG_STR("url", url), LOG_I64("seed", opt.seed));
    free(url);

    sigset_t wait_set;
    sigemptyset(&wait_set);
    sigaddset(&wait_set, SIGINT);
    sigaddset(&wait_set, SIGTERM);
    int sig = 0;
    sigwait(&wait_set, &sig);
    log_info("sandbox stopping", LOG_I64("signal", sig));

    sb_server_stop();
    sb_lock();
    sb_sf_reset();
    sb_hs_reset();
    sb_unlock();
    sb_faults_free();
    sb_settings_free();
    curl_global_cleanup();
    return 0;
}
