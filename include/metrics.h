/* metrics.h - Prometheus counters and histograms kept in process, rendered as text format.
 * All functions are thread-safe. */
#ifndef SVC_METRICS_H
#define SVC_METRICS_H

/* Adds delta to the counter name{labels}. labels is the inside of the braces, already in
 * Prometheus syntax (`source="hubspot",reason="bad_signature"`), or "" for none. */
void metrics_inc(const char *name, const char *labels, long long delta);

/* Adds a fractional delta (seconds waited, ...) to the counter name{labels}. */
void metrics_add(const char *name, const char *labels, double delta);

/* Sets the gauge name{labels} to value. */
void metrics_set(const char *name, const char *labels, double value);

/* Records one observation (seconds) in the histogram name{labels}. */
void metrics_observe(const char *name, const char *labels, double seconds);

/* Describes a metric: HELP text shown above it. Call once per name at start (optional). */
void metrics_describe(const char *name, const char *help);

/* Everything recorded so far in text format (version 0.0.4). Caller frees. */
char *metrics_render(void);

/* Current value of a counter (0 when never incremented). For tests. */
long long metrics_counter(const char *name, const char *labels);

#endif
