/* log.c - JSON-lines logger. Formats into a local buffer and writes each line with one write(2),
 * so lines from different threads never interleave. Never logs on its own behalf. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static atomic_int min_level = LOG_INFO;
static atomic_int out_fd = 1;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    atomic_store(&min_level, (int)level);
}

bool log_parse_level(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    }
    return false;
}

void log_set_fd(int fd)
{
    atomic_store(&out_fd, fd);
}

static void append_json_string(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            buf_append(b, esc, 2);
        } else if (c == '\n') {
            buf_append(b, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(b, esc, 6);
        } else {
            buf_append(b, p, 1);
        }
    }
    buf_append(b, "\"", 1);
}

void log_emit(enum log_level level, const char *msg, ...)
{
    if ((int)level < atomic_load(&min_level))
        return;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[80];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", when, level_names[level]);
    append_json_string(&b, msg);

    va_list ap;
    va_start(ap, msg);
    for (;;) {
        struct log_field f = va_arg(ap, struct log_field);
        if (f.kind == LOG_FIELD_END)
            break;
        buf_append(&b, ",", 1);
        append_json_string(&b, f.key);
        buf_append(&b, ":", 1);
        switch (f.kind) {
        case LOG_FIELD_STR:
            if (f.str)
                append_json_string(&b, f.str);
            else
                buf_append_str(&b, "null");
            break;
        case LOG_FIELD_I64:
            buf_printf(&b, "%lld", (long long)f.i64);
            break;
        case LOG_FIELD_BOOL:
            buf_append_str(&b, f.b ? "true" : "false");
            break;
        case LOG_FIELD_END:
            break;
        }
    }
    va_end(ap);
    buf_append(&b, "}\n", 2);

    /* One write per line; a short write on a pipe is retried from where it stopped. */
    int fd = atomic_load(&out_fd);
    size_t off = 0;
    while (off < b.len) {
        ssize_t n = write(fd, b.data + off, b.len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    buf_clear(&b);
}
