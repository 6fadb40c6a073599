/* fuzz_soql.c - libFuzzer target: SOQL string literals. Quoting any string and reading the
 * literal back as Salesforce would must give the string again, with no way out of the quotes;
 * IN lists from any JSON. Seeds: the string values of tests/fixtures (scripts/fuzz.sh). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "soql.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the literal at *p (after its opening quote) as SOQL does; false if it is not one. */
static bool unquote(const char **p, struct buf *out)
{
    static const char from[] = "nrtbf\"'\\_%";
    static const char to[] = "\n\r\t\b\f\"'\\_%";
    const char *s = *p;
    for (;;) {
        if (*s == '\0')
            return false;
        if (*s == '\'') {
            *p = s + 1;
            return true;
        }
        if (*s == '\\') {
            const char *k = s[1] ? strchr(from, s[1]) : NULL;
            if (!k)
                return false;
            buf_append(out, &to[k - from], 1);
            s += 2;
            continue;
        }
        buf_append(out, s, 1);
        s++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = xstrndup((const char *)data, size);
    struct buf q;
    buf_init(&q, 0);
    soql_append_quoted(&q, s);
    if (!q.data || q.data[0] != '\'')
        abort();
    const char *p = q.data + 1;
    struct buf back;
    buf_init(&back, 0);
    if (!unquote(&p, &back) || *p != '\0')
        abort(); /* the literal ended early: a quote got out */
    if (strcmp(back.data ? back.data : "", s) != 0)
        abort();
    buf_clear(&back);
    buf_clear(&q);

    cJSON *values = cJSON_ParseWithLength((const char *)data, size);
    if (values) {
        struct buf in;
        buf_init(&in, 0);
        size_t n = soql_append_in(&in, values);
        if (n > 0 && (!in.data || in.data[0] != '(' || in.data[in.len - 1] != ')'))
            abort();
        buf_clear(&in);
        cJSON_Delete(values);
    }
    free(s);
    return 0;
}
