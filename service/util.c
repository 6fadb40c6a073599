/* util.c - xmalloc family (abort on OOM), struct buf and small clock helpers. No I/O. */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void oom(size_t n)
{
    /* No logger here: the logger itself allocates. One write, then abort. */
    fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory\",\"bytes\":%zu}\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    char *p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void buf_init(struct buf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

void buf_clear(struct buf *b)
{
    if (!b)
        return;
    free(b->data);
    size_t limit = b->limit;
    buf_init(b, limit);
}

bool buf_append(struct buf *b, const void *data, size_t n)
{
    if (b->is_over_limit)
        return false;
    if (b->limit && b->len + n > b->limit) {
        b->is_over_limit = true;
        return false;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

bool buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    char *tmp = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bool ok = buf_append(b, tmp, (size_t)n);
    free(tmp);
    return ok;
}

char *buf_steal(struct buf *b)
{
    char *p = b->data ? b->data : xstrdup("");
    size_t limit = b->limit;
    buf_init(b, limit);
    return p;
}

bool buf_append_markup(struct buf *b, const char *s)
{
    bool ok = true;
    for (const char *p = s ? s : ""; *p; p++) {
        const char *entity = *p == '&'    ? "&amp;"
                             : *p == '<'  ? "&lt;"
                             : *p == '>'  ? "&gt;"
                             : *p == '"'  ? "&quot;"
                             : *p == '\'' ? "&#39;"
                                          : NULL;
        ok = (entity ? buf_append_str(b, entity) : buf_append(b, p, 1)) && ok;
    }
    return ok;
}

int64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec util_deadline_ms(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

bool util_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0')
        return false;
    *out = v;
    return true;
}

int64_t util_days_from_civil(int64_t y, int m, int d)
{
    /* Howard Hinnant's days_from_civil: exact for every proleptic Gregorian date. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at *p into *out and advances *p. */
static bool read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool is_leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && is_leap ? 29 : days[m - 1];
}

bool util_parse_iso8601_ms(const char *s, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0, off_min = 0;
    const char *p = s;

    if (!s || !read_digits(&p, 4, &y) || *p++ != '-' || !read_digits(&p, 2, &mo) || *p++ != '-' ||
        !read_digits(&p, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return false;
    if (*p == 'T') {
        p++;
        if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &mi) || *p++ != ':' ||
            !read_digits(&p, 2, &sec))
            return false;
        if (h > 23 || mi > 59 || sec > 60)
            return false;
        if (*p == '.') {
            p++;
            int scale = 100, digits = 0;
            while (*p >= '0' && *p <= '9') {
                frac_ms += (*p - '0') * scale;
                scale /= 10;
                p++;
                digits++;
            }
            if (digits == 0)
                return false;
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (!read_digits(&p, 2, &oh))
                return false;
            if (*p == ':')
                p++;
            if (!read_digits(&p, 2, &om) || oh > 23 || om > 59)
                return false;
            off_min = sign * (oh * 60 + om);
        } else {
            return false;
        }
    }
    if (*p != '\0')
        return false;
    int64_t secs =
        util_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - (int64_t)off_min * 60;
    *ms = secs * 1000 + frac_ms;
    return true;
}

static void civil_from_ms(int64_t ms, struct tm *tm, int *millis)
{
    int64_t secs = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    gmtime_r(&t, tm);
    *millis = (int)rem;
}

/* Years outside 0..9999 cannot be written in these formats; clamp rather than overflow. */
static unsigned year_of(const struct tm *tm)
{
    int y = tm->tm_year + 1900;
    return (unsigned)(y < 0 ? 0 : y > 9999 ? 9999 : y);
}

void util_format_iso8601_ms(int64_t ms, char out[UTIL_ISO8601_LEN])
{
    struct tm tm;
    int millis;
    civil_from_ms(ms, &tm, &millis);
    snprintf(out, UTIL_ISO8601_LEN, "%04u-%02hhu-%02hhuT%02hhu:%02hhu:%02hhu.%03uZ", year_of(&tm),
             (unsigned char)(tm.tm_mon + 1), (unsigned char)tm.tm_mday, (unsigned char)tm.tm_hour,
             (unsigned char)tm.tm_min, (unsigned char)tm.tm_sec, (unsigned)millis % 1000);
}

void util_format_date(int64_t ms, char out[UTIL_ISO8601_LEN])
{
    struct tm tm;
    int millis;
    civil_from_ms(ms, &tm, &millis);
    snprintf(out, UTIL_ISO8601_LEN, "%04u-%02hhu-%02hhu", year_of(&tm),
             (unsigned char)(tm.tm_mon + 1), (unsigned char)tm.tm_mday);
}
