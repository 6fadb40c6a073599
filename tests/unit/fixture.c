/* fixture.c - fixture files for unit tests. */
#include "fixture.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

char *fixture_read(const char *rel, size_t *len)
{
    const char *dir = getenv("FIXTURES_DIR");
    char *path = xasprintf("%s/%s", dir ? dir : "tests/fixtures", rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        ck_abort_msg("cannot open fixture %s", path);
    struct buf b;
    buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    free(path);
    if (len)
        *len = b.len;
    return buf_steal(&b);
}
