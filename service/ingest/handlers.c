/* handlers.c - the worker route table: which handler runs for which (source, object type).
 * Events of other types are acknowledged by the endpoints and finished here as skipped, with
 * the reason, so the queue never holds work nobody will do. */
#include "handlers.h"

#include <stdbool.h>
#include <stddef.h>

#include "contact_rollups.h"
#include "reconcile.h"
#include "sf_poller.h"
#include "sync.h"
#include "sync_deal.h"
#include "sync_opportunity.h"
#include "sync_rollup.h"
#include "sync_state.h"
#include "util.h"

static void skip(void *ctx, PGconn *db, struct queue_record *records, size_t count)
{
    (void)ctx;
    (void)db;
    for (size_t i = 0; i < count; i++) {
        records[i].result = ERR_OK;
        records[i].is_skipped = true;
        records[i].detail = xasprintf("dealsync syncs opportunities and deals; %s %s changes "
                                      "are followed through them",
                                      records[i].source, records[i].object_type);
    }
}

/* The periodic work: the Salesforce pollers, then the reconciliation sweeps and retries, all
 * only while the Sync deals switch is on; and the API budget's Salesforce usage refresh. */
static void tick(void *ctx, PGconn *db)
{
    bool is_on = false;
    if (!ctx || sync_deals_enabled(db, &is_on) != ERR_OK || !is_on)
        return;
    sf_poller_tick(ctx, db);
    reconcile_tick(ctx, db);
    sync_budget_tick(ctx, db);
}

static const struct worker_route routes[] = {
    {"salesforce", "Opportunity", sync_opportunities},
    {"hubspot", "deal", sync_deals},
    {"hubspot", CONTACT_ROLLUP_OBJECT, sync_contact_rollups},
    {"salesforce", NULL, skip},
    {"hubspot", NULL, skip},
};

const struct worker_ops *handlers_ops(struct sync_shared *shared)
{
    static struct worker_ops ops;
    ops.ctx_new = sync_ctx_new;
    ops.ctx_free = sync_ctx_free;
    ops.arg = shared;
    ops.routes = routes;
    ops.route_count = sizeof(routes) / sizeof(routes[0]);
    ops.tick = tick;
    ops.claim_delay = sync_claim_delay_ms;
    return &ops;
}
