/* ops_status.h - the operator's view of the sync, read from the queue's tables: health, dead
 * letters, a record's history; and the two things an operator does: retry dead letters, resync a
 * record. Shared by `dealsync status`, the /admin page and its JSON API. */
#ifndef SVC_OPS_STATUS_H
#define SVC_OPS_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"

/* {"generated_at", "settings": {"sync_deals", "deal_id_field"}, "queue": {"pending", "running",
 *  "done", "dead", "oldest_pending_seconds", "lag_seconds"}, "last_24h": [{"direction",
 *  "source", "outcome", "events", "records"}], "problems": [{"severity" ("error": dead letters,
 *  "warning": retries), "type", "source", "events", "records", "last_at", "example"}],
 *  "skipped": [{"reason", "source", "events", "records"}], "api_budget": [{"api" ("hubspot",
 *  "hubspot_search", "salesforce"), "calls_in_window", "reserved", "header_max",
 *  "header_remaining", "day_used", "daily_limit", "held_seconds", "usage_used", "usage_max",
 *  "observed_at"}]}. Caller deletes. */
enum err ops_status(PGconn *db, cJSON **out) WARN_UNUSED;

/* Dead letters, newest first, at most limit: [{"id", "source", "object_type", "record_id",
 * "event_type", "type", "reason", "attempts", "received_at", "last_attempt_at",
 * "finished_at"}]. */
enum err ops_dead_letters(PGconn *db, int limit, cJSON **out) WARN_UNUSED;

/* Records matching q (a Salesforce id, 15 or 18 characters, a HubSpot deal id, or part of a
 * name): [{"salesforce_id", "hubspot_id" (null when not linked), "name", "linked_at",
 * "history": [{"event_id", "source", "object_type", "record_id", "event_type", "received_at",
 * "status", "outcome", "attempt", "type", "detail", "at"}] (oldest first)}]. At most 20. */
enum err ops_records(PGconn *db, const char *q, cJSON **out) WARN_UNUSED;

/* Puts dead letters back in the queue: the ids given (n > 0), or every one of error type
 * `type` (n == 0 and type not NULL). *moved: how many. */
enum err ops_retry(PGconn *db, const int64_t *ids, size_t n, const char *type,
                   long long *moved) WARN_UNUSED;

/* Queues a sync of the record from its current state: an event for the opportunity and/or the
 * deal (either id may be NULL, not both). *queued: how many events. */
enum err ops_resync(PGconn *db, const char *salesforce_id, const char *hubspot_id,
                    size_t *queued) WARN_UNUSED;

/* A string or number member of a row ("" and 0 when absent or of another type). */
const char *ops_str(const cJSON *o, const char *name);
double ops_num(const cJSON *o, const char *name);

/* Every row of r as a JSON object (column name to value: numbers for numeric columns, booleans,
 * null for NULL, else strings). Caller deletes. */
cJSON *ops_rows_json(PGresult *r);

#endif
