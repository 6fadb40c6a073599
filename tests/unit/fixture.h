/* fixture.h - reads files from tests/fixtures (FIXTURES_DIR, set by scripts/test.sh). */
#ifndef SVC_TEST_FIXTURE_H
#define SVC_TEST_FIXTURE_H

#include <stddef.h>

/* Whole file, NUL-terminated; aborts the test when missing. Caller frees. */
char *fixture_read(const char *rel, size_t *len);

#endif
