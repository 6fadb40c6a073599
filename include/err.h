/* err.h - dealsync's one error vocabulary: name, text and retry policy in one table. */
#ifndef SVC_ERR_H
#define SVC_ERR_H

#include <stdbool.h>

/* X(name, text, transient): transient errors are retried with backoff by worker.c,
 * the others are dead-lettered at once. */
#define ERR_LIST(X)                                                                                \
    X(OK, "ok", false)                                                                             \
    X(INVALID, "invalid input", false)                                                             \
    X(AUTH, "authentication failed", false)                                                        \
    X(FORBIDDEN, "forbidden", false)                                                               \
    X(NOT_FOUND, "not found", false)                                                               \
    X(CONFLICT, "conflict", false)                                                                 \
    X(TOO_LARGE, "payload too large", false)                                                       \
    X(UNSUPPORTED, "unsupported", false)                                                           \
    X(CONFIG, "configuration error", false)                                                        \
    X(DB, "database error", true)                                                                  \
    X(UPSTREAM, "upstream unavailable", true)                                                      \
    X(RATE_LIMIT, "upstream rate limited", true)                                                   \
    X(TIMEOUT, "timed out", true)                                                                  \
    X(BUSY, "busy: another worker holds the record", true)                                         \
    X(INTERNAL, "internal error", false)

enum err {
#define X(name, text, transient) ERR_##name,
    ERR_LIST(X)
#undef X
};

/* Static text for e; never NULL. Thread-safe. */
const char *err_str(enum err e);

/* The enumerator's name ("RATE_LIMIT") for logs and metrics labels; never NULL. Thread-safe. */
const char *err_name(enum err e);

/* True when retrying the same operation later may succeed. Thread-safe. */
bool err_is_transient(enum err e);

#endif
