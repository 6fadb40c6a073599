/* vindex.h - a hash index from a text key (compared case-insensitively) to the records that
 * were written with it. Entries are added on every write and never taken out: a caller checks
 * each record it gets against the record's current value, so an entry left by a value that
 * changed since costs one check. Used under the sandbox's state lock. */
#ifndef SB_VINDEX_H
#define SB_VINDEX_H

#include <stddef.h>

struct vindex;

struct vindex *vindex_new(void);
/* NULL is a no-op. */
void vindex_free(struct vindex *x);
/* Notes that item was written with key (an empty or NULL key is not noted). */
void vindex_add(struct vindex *x, const char *key, void *item);
/* The items noted under key, in the order first noted (borrowed until the next add); count. */
size_t vindex_get(const struct vindex *x, const char *key, void *const **items);

#endif
