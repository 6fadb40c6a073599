/* log.h - JSON-lines logger on stdout: one object per line, one write(2) per line, thread-safe. */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

enum log_field_kind { LOG_FIELD_END, LOG_FIELD_STR, LOG_FIELD_I64, LOG_FIELD_BOOL };

struct log_field {
    enum log_field_kind kind;
    const char *key;
    const char *str;
    int64_t i64;
    bool b;
};

#define LOG_STR(k, v) ((struct log_field){LOG_FIELD_STR, (k), (v), 0, false})
#define LOG_I64(k, v) ((struct log_field){LOG_FIELD_I64, (k), NULL, (int64_t)(v), false})
#define LOG_BOOL(k, v) ((struct log_field){LOG_FIELD_BOOL, (k), NULL, 0, (v)})
#define LOG_END ((struct log_field){LOG_FIELD_END, NULL, NULL, 0, false})

/* Sets the minimum level written. Call once at start, before threads. */
void log_set_level(enum log_level level);
/* Parses "debug|info|warn|error"; false when s is none of them. */
bool log_parse_level(const char *s, enum log_level *out);
/* Redirects output to fd (default 1). For tests. Call before threads. */
void log_set_fd(int fd);

/* Writes one line: msg is a fixed lowercase phrase; fields are struct log_field values ending
 * with LOG_END. Strings are JSON-escaped; a NULL string is written as null. Thread-safe. */
void log_emit(enum log_level level, const char *msg, ...);

#define log_debug(...) log_emit(LOG_DEBUG, __VA_ARGS__, LOG_END)
#define log_info(...) log_emit(LOG_INFO, __VA_ARGS__, LOG_END)
#define log_warn(...) log_emit(LOG_WARN, __VA_ARGS__, LOG_END)
#define log_error(...) log_emit(LOG_ERROR, __VA_ARGS__, LOG_END)

#endif
