/* err.c - text and retry policy of enum err, generated from ERR_LIST so they cannot drift. */
#include "err.h"

#include <stddef.h>

static const struct {
    const char *name;
    const char *text;
    bool transient;
} err_table[] = {
#define X(name, text, transient) {#name, text, transient},
    ERR_LIST(X)
#undef X
};

#define ERR_COUNT (sizeof(err_table) / sizeof(err_table[0]))

const char *err_str(enum err e)
{
    if ((size_t)e >= ERR_COUNT)
        return "unknown error";
    return err_table[e].text;
}

const char *err_name(enum err e)
{
    if ((size_t)e >= ERR_COUNT)
        return "UNKNOWN";
    return err_table[e].name;
}

bool err_is_transient(enum err e)
{
    if ((size_t)e >= ERR_COUNT)
        return false;
    return err_table[e].transient;
}
