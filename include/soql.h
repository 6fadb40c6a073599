/* soql.h - building SOQL text safely: quoted literals and IN lists. Pure, thread-safe. */
#ifndef SVC_SOQL_H
#define SVC_SOQL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "util.h"

/* Appends s as a quoted SOQL string literal ('O\'Brien'), escaping quote, backslash and
 * control characters. */
void soql_append_quoted(struct buf *b, const char *s);

/* Appends "('a', 'b')" for the string items of the JSON array or object values (others skipped).
 * Returns how many were appended (the caller must not send an empty IN list). */
size_t soql_append_in(struct buf *b, const cJSON *values);

#endif
