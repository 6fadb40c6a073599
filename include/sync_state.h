/* sync_state.h - the sync's small tables: operator switches (sync_setting), polling turns and
 * watermarks (poll_watermark), and the pipelines and stages dealsync created (pipeline_map,
 * stage_map). Calls use the caller's connection; thread-safe per connection. */
#ifndef SVC_SYNC_STATE_H
#define SVC_SYNC_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"

/* The "Sync deals" switch (name "sync_deals"): off until an operator turns it on. */
#define SYNC_SETTING_SYNC_DEALS "sync_deals"

/* *value receives the setting, or a copy of fallback when unset (caller frees). */
enum err sync_setting_get(PGconn *db, const char *name, const char *fallback,
                          char **value) WARN_UNUSED;
enum err sync_setting_set(PGconn *db, const char *name, const char *value) WARN_UNUSED;
/* The sync_deals switch as a boolean ("on"). */
enum err sync_deals_enabled(PGconn *db, bool *on) WARN_UNUSED;

/* Where a poller's or sweep's first window starts: when sync deals was switched on (the
 * setting's updated_at, which only a change of value moves), at most max_back_ms back, and
 * never after now. A change made after the switch is a change to sync; starting at the first
 * poll lost every change made in between (a role added, or an opportunity renamed with its
 * outbound message lost, in the second before that poll). */
int64_t poll_first_window_from(PGconn *db, int64_t now, int64_t max_back_ms);

/* Takes the poller `name`'s turn when its last run is at least interval_s old and nobody else
 * took it meanwhile (one atomic UPDATE: no lock is held while polling). A poller seen for the
 * first time starts at initial_ms (no backfill). On ERR_OK *is_turn says whether this caller
 * polls now, and then *watermark_ms where it got to last time. */
enum err poll_take_turn(PGconn *db, const char *name, int interval_s, int64_t initial_ms,
                        bool *is_turn, int64_t *watermark_ms) WARN_UNUSED;
/* Records how far the poll got. A crash before this repeats the window (events dedupe). */
enum err poll_advance(PGconn *db, const char *name, int64_t watermark_ms) WARN_UNUSED;

/* The pipeline for a record type ("" = no record types). ERR_NOT_FOUND when none. Caller frees
 * the outputs. */
enum err pipeline_map_find(PGconn *db, const char *record_type_id,
                           char **hs_pipeline_id) WARN_UNUSED;
enum err pipeline_map_find_by_hs(PGconn *db, const char *hs_pipeline_id,
                                 char **record_type_id) WARN_UNUSED;
enum err pipeline_map_count(PGconn *db, int *count) WARN_UNUSED;
enum err pipeline_map_save(PGconn *db, const char *record_type_id, const char *hs_pipeline_id,
                           const char *label) WARN_UNUSED;

/* {"Salesforce stage name": "HubSpot stage id"} for a record type (empty object when none).
 * Caller deletes. */
enum err stage_map_load(PGconn *db, const char *record_type_id, cJSON **map) WARN_UNUSED;
enum err stage_map_save(PGconn *db, const char *record_type_id, const char *sf_stage_name,
                        const char *hs_stage_id) WARN_UNUSED;

#endif
