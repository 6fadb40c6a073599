/* queue.h - the durable event queue in PostgreSQL: push, claim by record with a lease, finish
 * (done / retry with backoff / dead letter), prune. Functions take the caller's connection and
 * are thread-safe as long as each thread uses its own connection. */
#ifndef SVC_QUEUE_H
#define SVC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"

#define QUEUE_NOTIFY_CHANNEL "dealsync_queue"

/* A record's busy lock: a session advisory lock (QUEUE_RECORD_LOCK_CLASS,
 * hashtext(prefix || record_id)), prefix "sf:" for source salesforce and "hs:" for hubspot, as
 * the handlers take them for a pair (sync_pair.h). A claim leaves a record whose busy lock
 * another session holds for a later claim: its handler could only defer it (ERR_BUSY), after
 * holding it for a whole batch. */
#define QUEUE_RECORD_LOCK_CLASS "1146290177"

/* Event priorities: a record is claimed by the most urgent of its open events. */
#define QUEUE_PRIORITY_LIVE 0       /* webhooks, outbound messages, pollers */
#define QUEUE_PRIORITY_BACKGROUND 1 /* import, reconciliation, resync */
/* A claim of background records only takes up to this many (or max_records if more): an import
 * fills two of HubSpot's 100-input batch calls per object and one Salesforce collection (200),
 * and packs the searches of 200 accounts (hs_companies_batch.c). */
#define QUEUE_BACKGROUND_CLAIM 200

/* One event to store. All borrowed for the call. */
struct queue_event_in {
    const char *source;      /* "salesforce" or "hubspot" */
    const char *dedup_key;   /* unique per source: redeliveries carry the same key */
    const char *object_type; /* "Opportunity", "deal", ... */
    const char *record_id;   /* the record the event is about */
    const char *event_type;  /* "outbound_message", "deal.propertyChange", ... */
    int64_t occurred_at_ms;
    const cJSON *payload;
    int priority; /* QUEUE_PRIORITY_*; 0 (live) when left out */
};

/* Stores events in ONE transaction (one statement) and notifies idle workers on commit.
 * Events whose (source, dedup_key) is already stored are skipped. On ERR_OK *stored is how
 * many were new. ERR_DB when nothing was stored. */
enum err queue_push(PGconn *db, const struct queue_event_in *events, size_t n,
                    size_t *stored) WARN_UNUSED;

/* queue_push for the events of several requests in one statement: group[i] (NULL: all 0) is
 * the request of events[i], and stored[g] (groups entries) receives how many of request g's
 * events were new; a key repeated within the statement counts for the first request that
 * carries it. sqlstate (may be NULL) receives the SQL state of a failure ("" when none). */
enum err queue_push_groups(PGconn *db, const struct queue_event_in *events, const size_t *group,
                           size_t n, size_t *stored, size_t groups, char sqlstate[6]) WARN_UNUSED;

/* One claimed event. Strings are owned by the enclosing queue_batch. */
struct queue_event {
    int64_t id;
    const char *event_type;
    const char *payload; /* JSON text */
    int attempts;        /* including this one */
    int64_t occurred_at_ms;
};

/* All open events of one record, in the order they occurred (coalesced: the handler reads the
 * record's current state once for all of them). The handler sets result and detail. */
struct queue_record {
    const char *source;
    const char *object_type;
    const char *record_id;
    struct queue_event *events;
    size_t event_count;
    enum err result;    /* set by the handler; ERR_OK = done */
    char *detail;       /* set by the handler (owned by the batch): what changed, or why not */
    int retry_after_ms; /* handler hint for a transient failure (429 Retry-After); 0 = none */
    bool is_skipped;    /* done, but deliberately not synced (detail says why) */
    bool has_warning;   /* done, but something was left out (detail says what): a warning */
};

/* The ids of rec's events as a PostgreSQL bigint array literal, "{1,2,3}", for
 * `= ANY($n::bigint[])` (caller frees). */
char *queue_record_event_ids(const struct queue_record *rec);

struct queue_batch {
    struct queue_record *records;
    size_t record_count;
    void *storage; /* internal */
};

/* Leases up to max_records records that have open events and are not leased (or whose lease
 * expired: their worker died) nor backing off, and returns all their open events, each with
 * the attempt it is on. The lease is the record's: the events stay pending in the table (the
 * status views count them running), and a lease that expired counts the attempt it held.
 * Records with a live event come first; a claim holds records of one priority only, and when
 * only background records are claimable it takes up to max(max_records,
 * QUEUE_BACKGROUND_CLAIM) of them.
 * live_only: only records with a pending live event (sync_event_is_live), taken when the
 * Salesforce budget is short. FOR UPDATE SKIP LOCKED: concurrent claimers never get the same
 * record. On ERR_OK the batch may be empty; free it with queue_batch_clear. */
enum err queue_claim(PGconn *db, const char *owner, int max_records, int lease_seconds,
                     bool live_only, struct queue_batch *out) WARN_UNUSED;
void queue_batch_clear(struct queue_batch *b);

/* Gives owner's claimed records recs[0..n) (borrowed) back as they were: their leases dropped,
 * no attempt counted, their place in the claim order kept, and the idle workers woken. Records
 * no longer leased by owner are left alone. Locks the records in key order, as queue_push and
 * queue_finish_many do, so that it cannot deadlock with them. *given (may be NULL) receives how
 * many were given back. */
enum err queue_give_back(PGconn *db, const char *owner, const struct queue_record *recs, size_t n,
                         size_t *given) WARN_UNUSED;

/* Gives back every record owner leases, as queue_give_back does, with the same lock order; *given
 * (may be NULL) receives how many. For a worker that holds no batch and has just reconnected:
 * what it still leases was claimed by a statement whose answer the lost connection took. */
enum err queue_give_back_all(PGconn *db, const char *owner, size_t *given) WARN_UNUSED;

/* QUEUE_DEFER: back to pending after retry_delay_ms with the attempt not counted (the record
 * was busy elsewhere, or waits for API budget): waiting is not failing. No outcome row, except
 * a 'deferred' one when the record's result is ERR_RATE_LIMIT (so an operator sees why it
 * waits). */
enum queue_outcome { QUEUE_DONE, QUEUE_RETRY, QUEUE_DEAD, QUEUE_DEFER };

/* Finishes one claimed record in one transaction: its claimed events become done, pending
 * again (retry: the record backs off retry_delay_ms; events past max_attempts go dead instead)
 * or dead, each with an outcome row, and the lease is released. An event that goes dead with a
 * transient rec->result (err_is_transient) is marked for queue_retry_transient_dead. Only the
 * events of a record still leased by owner change: a worker whose lease expired and was taken over
 * changes nothing
 * (*changed = 0). detail may be NULL. */
enum err queue_finish(PGconn *db, const char *owner, const struct queue_record *rec,
                      enum queue_outcome outcome, const char *detail, int retry_delay_ms,
                      int max_attempts, size_t *changed) WARN_UNUSED;

/* One record to finish with queue_finish_many; changed is set (events that changed). */
struct queue_finish_item {
    const struct queue_record *record;
    enum queue_outcome outcome;
    const char *detail; /* may be NULL */
    int retry_delay_ms;
    size_t changed; /* out */
};

/* queue_finish for n records in ONE statement (one round trip, one transaction): what a worker
 * calls for a whole claimed batch. Each item's changed is set as queue_finish's *changed. */
enum err queue_finish_many(PGconn *db, const char *owner, struct queue_finish_item *items, size_t n,
                           int max_attempts) WARN_UNUSED;

/* Prepares queue_finish_many's statement on db unless db has already (it is prepared at its
 * first use otherwise): an idle worker does it before a burst, whose first finishes would each
 * parse it (1 to 4 ms on a backend that never ran it). */
enum err queue_prepare_finish(PGconn *db) WARN_UNUSED;

/* Puts dead events back to pending with their attempts reset, for an operator who fixed the
 * cause (a missing field, a permission, a handler that now exists). ids (count n) selects
 * events; n == 0 selects every dead event. *requeued receives how many moved; idle workers are
 * notified. */
enum err queue_requeue_dead(PGconn *db, const int64_t *ids, size_t n,
                            long long *requeued) WARN_UNUSED;

/* Puts the events that died of a transient cause (marked by the finish) back to pending for one
 * more attempt each, their error kept, and notifies idle workers; *retried receives how many.
 * Both requeues lock their records in key order, as queue_push, queue_give_back and
 * queue_finish_many do, so that they cannot deadlock with them. */
enum err queue_retry_transient_dead(PGconn *db, long long *retried) WARN_UNUSED;

/* Deletes done events (and their outcome rows) finished more than retention_hours ago.
 * *deleted receives the number of events removed. */
enum err queue_prune(PGconn *db, int retention_hours, long long *deleted) WARN_UNUSED;

/* Milliseconds until the earliest backing-off record with open events becomes claimable
 * (0 when one is due now), or -1 when none is waiting. Idle workers sleep at most this long. */
enum err queue_next_due_ms(PGconn *db, long long *ms) WARN_UNUSED;

/* Counts of events by status, for metrics: pending, running, done, dead. */
struct queue_depth {
    long long pending;
    long long running;
    long long done;
    long long dead;
};
enum err queue_depth(PGconn *db, struct queue_depth *out) WARN_UNUSED;

#endif
