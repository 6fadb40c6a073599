/* json_strict.h - strict RFC 8259 checking of a JSON text before cJSON parses it, and exact
 * integers afterwards. cJSON keeps the last of duplicate keys apart, cuts strings at \u0000,
 * accepts trailing bytes and reads every number as a double (ids past 2^53 lose digits); a
 * webhook body needs none of that. Pure and thread-safe. */
#ifndef SVC_JSON_STRICT_H
#define SVC_JSON_STRICT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "compiler.h"

/* Nesting deeper than this is refused (HubSpot's events are two levels deep). */
#define JSON_STRICT_MAX_DEPTH 32

/* The number literals of a text, in document order, as written: spans of the text checked,
 * which must outlive them (no copy is made on the ack path). */
struct json_span {
    const char *p;
    size_t len;
};
struct json_numbers {
    struct json_span *spans;
    size_t count;
    size_t cap;
};

/* True when text[0..len) is exactly one JSON value with only whitespace around it, no object
 * with the same key twice, no \u0000 and no unpaired surrogate escape, no raw control
 * character in a string, nesting at most JSON_STRICT_MAX_DEPTH. Bytes >= 0x80 in strings are
 * not checked here (see json_is_utf8). Fills *nums (may be NULL). Otherwise false with *why
 * (caller frees). */
bool json_strict_check(const char *text, size_t len, struct json_numbers *nums,
                       char **why) WARN_UNUSED;
void json_numbers_clear(struct json_numbers *nums);

/* Walks tree (cJSON's parse of the same text) in document order and turns each number whose
 * literal is a plain integer into a cJSON raw item holding that literal: printing it gives the
 * digits back exactly. tree must come from the text nums was filled from. */
void json_exact_integers(cJSON *tree, const struct json_numbers *nums);

/* True when s[0..len) is valid UTF-8 (no overlong form, no surrogate, at most U+10FFFF). */
bool json_is_utf8(const char *s, size_t len);

/* True when every key and string in tree is valid UTF-8. */
bool json_tree_is_utf8(const cJSON *tree);

#endif
