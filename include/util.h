/* util.h - allocation that aborts on OOM, and a growable byte buffer with a sticky error. */
#ifndef SVC_UTIL_H
#define SVC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "compiler.h"

/* All abort() on allocation failure: the queue is durable, so a restart loses nothing.
 * Results are freed with free(). Thread-safe. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Growable buffer, always NUL-terminated once anything was appended. A buffer that would grow
 * past its limit (0 = none) sets is_over_limit and ignores further appends. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t limit;
    bool is_over_limit;
};

/* Initialises b with a size limit in bytes (0 = unlimited). */
void buf_init(struct buf *b, size_t limit);
/* Releases b's storage; b may be reused after buf_init. NULL is a no-op. */
void buf_clear(struct buf *b);
/* Appends n bytes; on exceeding the limit sets is_over_limit and returns false. */
bool buf_append(struct buf *b, const void *data, size_t n);
bool buf_append_str(struct buf *b, const char *s);
bool buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Hands over the data (NUL-terminated, never NULL); caller frees. b is empty afterwards. */
char *buf_steal(struct buf *b);
/* Appends s (NULL: nothing) with &, <, >, " and ' escaped as &amp; &lt; &gt; &quot; &#39;: text
 * or an attribute value in HTML and in XML alike. */
bool buf_append_markup(struct buf *b, const char *s);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME) and a monotonic clock. */
int64_t util_now_ms(void);
int64_t util_monotonic_ms(void);

/* The CLOCK_REALTIME time ms milliseconds from now, as pthread_cond_timedwait takes it. */
struct timespec util_deadline_ms(int64_t ms);

/* Strict decimal int64: false on empty input, trailing junk or overflow. */
bool util_parse_i64(const char *s, int64_t *out);

/* Days from 1970-01-01 to the proleptic Gregorian date y-m-d (m 1..12, d 1..31); no range
 * check. Pure. */
int64_t util_days_from_civil(int64_t y, int m, int d);
/* Parses "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|+hhmm|-…)"
 * into milliseconds since the epoch. Strict: false on anything else or an out-of-range part.
 * *ms is untouched on failure. Pure. */
bool util_parse_iso8601_ms(const char *s, int64_t *ms);
/* Formats ms as UTC "YYYY-MM-DDThh:mm:ss.mmmZ" / "YYYY-MM-DD" into out. Pure. */
#define UTIL_ISO8601_LEN 32
void util_format_iso8601_ms(int64_t ms, char out[UTIL_ISO8601_LEN]);
void util_format_date(int64_t ms, char out[UTIL_ISO8601_LEN]);

#endif
