/* import.h - `dealsync import` and `dealsync resync`: every opportunity (SOQL, paged) and every
 * deal of a synced pipeline (HubSpot search, paged) queued as background events for the normal
 * workers, with the listing's place saved per page in import_run so that a stopped import
 * continues. Runs in the command's own process, on one connection; not thread-safe. */
#ifndef SVC_IMPORT_H
#define SVC_IMPORT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "compiler.h"
#include "err.h"
#include "sync.h"

/* Where one import got to. Plain data. */
struct import_state {
    int64_t run_id;
    const char *source; /* "salesforce" or "hubspot" (static) */
    long long total;    /* records to list, -1 while unknown */
    int pages_done;
    long long records_seen;
    long long records_queued; /* new events (a page listed twice is queued once) */
    bool is_listed;
    bool is_stopped; /* a signal stopped it between pages; running it again continues */
};

/* Called after each page (and once more when the listing ends). arg is the caller's. */
typedef void (*import_page_fn)(const struct import_state *st, int64_t elapsed_ms, void *arg);

/* Lists one side ("salesforce" or "hubspot") and queues every record found, modified at or
 * after since_ms (< 0: all). Continues the unfinished import of that side and window when there
 * is one. The HubSpot side first makes sure every active opportunity record type has its
 * pipeline (as the first sync of such an opportunity would), then lists the deals of every
 * pipeline in pipeline_map. A record dealsync has synced since it last changed is listed but
 * not queued, unless is_forced (resync). SIGINT or SIGTERM pending in *stop (may be NULL; the
 * signals must be blocked) stops it between pages (st->is_stopped). ERR_FORBIDDEN when the Sync
 * deals switch is off. On any return *st says how far it got. */
enum err import_side(struct sync_ctx *ctx, PGconn *db, const char *source, int64_t since_ms,
                     bool is_forced, const sigset_t *stop, import_page_fn on_page, void *arg,
                     struct import_state *st) WARN_UNUSED;

/* `dealsync import [salesforce|hubspot|both] [--since ISO-DATE] [--wait] | --status`:
 * argv[0] is "import". Returns the process exit status. cfg and mappings are borrowed. */
int import_main(const struct config *cfg, const struct mapping_set *mappings, int argc, char **argv,
                const sigset_t *signals);

/* `dealsync resync --opportunity ID... | --deal ID... | --dead | --since ISO-DATE`: argv[0] is
 * "resync". Prints what it queued. Returns the process exit status. */
int resync_main(const struct config *cfg, const struct mapping_set *mappings, int argc, char **argv,
                const sigset_t *signals);

/* `dealsync requeue [EVENT_ID...]`: argv[0] is "requeue". A named id that is not a dead event
 * is reported and makes the exit status 1. */
int requeue_main(const struct config *cfg, int argc, char **argv);

#endif
