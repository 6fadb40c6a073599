/* fuzz_config.c - libFuzzer target: the configuration parser. Each input line NAME=value becomes
 * an environment variable (the environment is emptied first), then config_load runs both ways
 * (serve needs the webhook variables, the other commands do not). Seeds:
 * tests/fixtures/config/. */
#define _DEFAULT_SOURCE /* clearenv */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size);
    clearenv();
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq || eq == line)
            continue;
        *eq = '\0';
        setenv(line, eq + 1, 1);
    }
    for (int need = 0; need < 2; need++) {
        struct config cfg;
        if (config_load(&cfg, need == 1) == ERR_OK) {
            if (!cfg.database_url || cfg.port < 1 || cfg.port > 65535)
                abort();
            config_clear(&cfg);
        }
    }
    (void)config_port();
    free(text);
    return 0;
}
