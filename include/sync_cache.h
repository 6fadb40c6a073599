/* sync_cache.h - what one batch of the sync reads again and again from the database (the
 * pipeline and stage maps, the opportunity links), remembered for that batch only, per thread
 * (each worker thread has its own connection). Off outside a batch: every read then goes to the
 * database, as the command-line tools and tests expect. The modules that own the tables use it:
 * their writes forget what they change, and taking a pair lock forgets the links (a link saved
 * by the lock's previous holder must be read anew). */
#ifndef SVC_SYNC_CACHE_H
#define SVC_SYNC_CACHE_H

#include <stdbool.h>

#include <cjson/cJSON.h>

/* Starts remembering for the calling thread (anything remembered before is forgotten), and
 * stops and forgets. Thread-safe: each thread has its own. */
void sync_cache_begin(void);
void sync_cache_end(void);

/* Whether the calling thread is inside a batch. */
bool sync_cache_is_on(void);

/* What `table` remembers under `key`, or NULL (off, or never put). Borrowed: valid until the
 * next sync_cache_put/forget/end on this thread. */
const cJSON *sync_cache_get(const char *table, const char *key);

/* Remembers value (owned by the cache from now on; deleted at once when off). */
void sync_cache_put(const char *table, const char *key, cJSON *value);

/* The table itself, to forget some of its entries (cJSON_DeleteItemFromObject...), or NULL (off,
 * or nothing put). Borrowed, as sync_cache_get's answer. */
cJSON *sync_cache_table(const char *table);

/* Forgets all of `table`. No-op when off. */
void sync_cache_forget(const char *table);

#endif
