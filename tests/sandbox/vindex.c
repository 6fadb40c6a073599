/* vindex.c - the sandbox's lookups by value (a Salesforce record by id or external id, a
 * HubSpot record by a unique property) in a hash table instead of a scan of every record: at
 * 10,000 records a side, a scan per input of a 100-input call made the sandbox slow enough for
 * dealsync's calls to time out, a retry the real APIs would not cause. */
#include "vindex.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

struct slot {
    char *key; /* NULL: empty */
    void **items;
    size_t count;
    size_t cap;
};

struct vindex {
    struct slot *slots;
    size_t cap; /* a power of two */
    size_t used;
};

struct vindex *vindex_new(void)
{
    struct vindex *x = xcalloc(1, sizeof(*x));
    x->cap = 64;
    x->slots = xcalloc(x->cap, sizeof(*x->slots));
    return x;
}

void vindex_free(struct vindex *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->cap; i++) {
        free(x->slots[i].key);
        free(x->slots[i].items);
    }
    free(x->slots);
    free(x);
}

/* FNV-1a of the key, case folded. */
static uint64_t hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= (uint64_t)tolower(*p);
        h *= 1099511628211ULL;
    }
    return h;
}

static struct slot *find_slot(struct slot *slots, size_t cap, const char *key)
{
    size_t i = (size_t)hash(key) & (cap - 1);
    while (slots[i].key && strcasecmp(slots[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static void grow(struct vindex *x)
{
    size_t cap = x->cap * 2;
    struct slot *slots = xcalloc(cap, sizeof(*slots));
    for (size_t i = 0; i < x->cap; i++)
        if (x->slots[i].key)
            *find_slot(slots, cap, x->slots[i].key) = x->slots[i];
    free(x->slots);
    x->slots = slots;
    x->cap = cap;
}

void vindex_add(struct vindex *x, const char *key, void *item)
{
    if (!x || !key || !*key)
        return;
    if ((x->used + 1) * 4 > x->cap * 3)
        grow(x);
    struct slot *s = find_slot(x->slots, x->cap, key);
    if (!s->key) {
        s->key = xstrdup(key);
        x->used++;
    }
    for (size_t i = 0; i < s->count; i++)
        if (s->items[i] == item)
            return;
    if (s->count == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 2;
        s->items = xrealloc(s->items, s->cap * sizeof(*s->items));
    }
    s->items[s->count++] = item;
}

size_t vindex_get(const struct vindex *x, const char *key, void *const **items)
{
    *items = NULL;
    if (!x || !key)
        return 0;
    const struct slot *s = find_slot(x->slots, x->cap, key);
    if (!s->key)
        return 0;
    *items = s->items;
    return s->count;
}
