/* soql.c - SOQL literals. Only quoting: the queries themselves stay next to their callers. */
#include "soql.h"

#include <stdio.h>

void soql_append_quoted(struct buf *b, const char *s)
{
    buf_append_str(b, "'");
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '\'':
        case '\\':
        case '"':
            buf_printf(b, "\\%c", *p);
            break;
        case '\n':
            buf_append_str(b, "\\n");
            break;
        case '\r':
            buf_append_str(b, "\\r");
            break;
        case '\t':
            buf_append_str(b, "\\t");
            break;
        default:
            buf_append(b, p, 1);
        }
    }
    buf_append_str(b, "'");
}

size_t soql_append_in(struct buf *b, const cJSON *values)
{
    size_t n = 0;
    const cJSON *v;
    buf_append_str(b, "(");
    cJSON_ArrayForEach(v, values)
    {
        if (!cJSON_IsString(v))
            continue;
        if (n++ > 0)
            buf_append_str(b, ", ");
        soql_append_quoted(b, v->valuestring);
    }
    buf_append_str(b, ")");
    return n;
}
