/* ingest_split.h - the webhook inbox and its splitter (issue 13). The acknowledgement path
 * stores each verified and parsed HubSpot request body as one ingest_inbox row
 * (ingest_inbox_push, usually through the group committer); the splitter turns inbox rows into
 * sync_event rows (queue_push_groups: the same UNIQUE (source, dedup_key) deduplication) in
 * large batches, in inbox order, and deletes them in the same transaction: a crash at any point
 * leaves each row either in the inbox or split, never both, never neither. One splitter runs at
 * a time across every process (a transaction-level advisory lock), so rows are split in id
 * order. */
#ifndef SVC_INGEST_SPLIT_H
#define SVC_INGEST_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"

/* Inbox rows a split transaction takes at most, and the events after which it stops taking
 * more (a batch's records stay locked until it commits, and workers finishing them wait). */
#define INGEST_SPLIT_MAX_ROWS 200
#define INGEST_SPLIT_MAX_EVENTS 2000
/* How often an idle splitter looks at the inbox without being woken (rows another process
 * stored and did not split, e.g. it was killed), in milliseconds. */
#define INGEST_SPLIT_POLL_MS 1000

/* One request body to store. All borrowed for the call. */
struct ingest_body {
    const char *source; /* "hubspot" */
    const char *body;   /* the raw body as verified and parsed */
    size_t len;
    int64_t received_ms; /* the now_ms the body was parsed with */
};

/* Stores n bodies in ONE statement (one transaction in autocommit). sqlstate (may be NULL)
 * receives the SQL state of a failure ("" when none). ERR_DB when nothing was stored. */
enum err ingest_inbox_push(PGconn *db, const struct ingest_body *bodies, size_t n,
                           char sqlstate[6]) WARN_UNUSED;

/* Readies a new connection for ingest_inbox_push: the statements of groups of 1 to 64 bodies
 * prepared before the first request waits for them (each took a parse on the first group of its
 * size). ERR_DB (logged): the rest were not; ingest_inbox_push prepares each on first use. */
enum err ingest_inbox_prepare(PGconn *db) WARN_UNUSED;

/* Readies a new connection for queue_push_groups: one push of no events in a transaction
 * rolled back, so that its statement is prepared and the backend has read the queue's tables,
 * indexes, triggers and functions before the first events (on a new backend, the first push of
 * one body's events took 27 ms of the database's time: parse 7, bind 3, execute 17). Stores
 * nothing, notifies nobody. ERR_DB (logged): the push failed; nothing changed either. */
enum err ingest_queue_prepare(PGconn *db) WARN_UNUSED;

/* What one split transaction did. */
struct ingest_split_result {
    size_t rows;       /* inbox rows split (deleted) */
    size_t events;     /* events read from them */
    size_t stored;     /* events stored (new in sync_event) */
    size_t set_aside;  /* events the database refused, logged and dropped */
    size_t unreadable; /* rows whose body no longer parses (logged, dropped) */
};

/* Splits the oldest inbox rows (at most max_rows, and no more once INGEST_SPLIT_MAX_EVENTS
 * events are taken) in one transaction on db: waits for the
 * split lock, reads the rows in id order, stores their events with queue_push_groups and
 * deletes the rows. A batch the database refuses on its data (SQL state class 22 or 23) is
 * split again row by row, event by event, and the events refused are set aside (as the ack
 * path used to). On ERR_OK *out says what was done (rows 0: the inbox was empty); on ERR_DB
 * nothing changed. */
enum err ingest_split_batch(PGconn *db, int max_rows, struct ingest_split_result *out) WARN_UNUSED;

/* Rows waiting in the inbox. */
enum err ingest_inbox_pending(PGconn *db, long long *pending) WARN_UNUSED;

/* A burst: at least INGEST_BURST_BODIES bodies stored in the window of INGEST_BURST_WINDOW_MS
 * running now or in the one before it (250 requests a second and more; live traffic is tens).
 * It is over one to two windows after the requests stop. */
#define INGEST_BURST_WINDOW_MS 100
#define INGEST_BURST_BODIES 25

/* Bodies stored per window: plain data, guarded by its owner's lock. Zeroed: no burst. */
struct ingest_burst {
    int64_t window_start_ms;
    int current;  /* bodies stored since window_start_ms */
    int previous; /* bodies stored in the window before it (0 when that was longer ago) */
};

/* Counts one body stored at now_ms (monotonic). */
void ingest_burst_note(struct ingest_burst *b, int64_t now_ms);

/* Whether a burst is on at now_ms (monotonic, never earlier than the last call's). */
bool ingest_burst_is_on(struct ingest_burst *b, int64_t now_ms);

struct ingest_splitter;

/* Starts the splitter thread (its own connection to url, opened lazily, reopened after a
 * failure). It splits until the inbox is empty whenever woken, and every
 * INGEST_SPLIT_POLL_MS otherwise. While a burst of requests is being stored (struct
 * ingest_burst), it holds each batch back until the burst is over or for burst_hold_ms, so
 * that the acknowledgements get the CPU and the database the split would take; 0: it never
 * holds. On ERR_OK *out is the splitter. */
enum err ingest_splitter_start(const char *url, int burst_hold_ms,
                               struct ingest_splitter **out) WARN_UNUSED;

/* Wakes the splitter: a body was stored (counted for the burst). Thread-safe; NULL is a
 * no-op. */
void ingest_splitter_wake(struct ingest_splitter *s);

/* Stops the thread after the batch in hand (rows left are split by the next splitter) and
 * frees. NULL is a no-op. */
void ingest_splitter_stop(struct ingest_splitter *s);

#endif
