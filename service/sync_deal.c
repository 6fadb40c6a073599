/* sync_deal.c - placeholder until its issue lands: every record is dead-lettered with the
 * reason, so nothing is lost and the events can be requeued once the handler exists. */
#include "sync_deal.h"

#include "util.h"

void sync_deals(void *ctx, PGconn *db, struct queue_record *records, size_t count)
{
    (void)ctx;
    (void)db;
    for (size_t i = 0; i < count; i++) {
        records[i].result = ERR_UNSUPPORTED;
        records[i].detail = xstrdup("this direction of the sync is not built yet");
    }
}
