/* fuzz_webhook_hs.c - libFuzzer target: HubSpot webhook bodies through webhook_hs_parse (strict
 * JSON, per-event validation, exact ids), webhook_hs_count deciding the same, and the payload as
 * the queue prints it. Seeds:
 * the webhook-*.json of tests/fixtures/hubspot. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_strict.h"
#include "webhook_hs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The acknowledgement's count (webhook_hs_count) decides as the split's parse did. */
static void count_agrees(const uint8_t *data, size_t size, enum err rc,
                         const struct webhook_hs_batch *b)
{
    struct webhook_hs_batch c = {0};
    char *why = NULL;
    if (webhook_hs_count((const char *)data, size, 1782371972438LL, &c, &why) != rc ||
        c.received != b->received || c.count != b->count || c.ignored != b->ignored ||
        c.rejected != b->rejected || c.events)
        abort();
    for (size_t i = 0; i < c.rejected; i++)
        if (c.rejections[i].index != b->rejections[i].index ||
            strcmp(c.rejections[i].reason, b->rejections[i].reason) != 0)
            abort();
    webhook_hs_batch_clear(&c);
    free(why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct webhook_hs_batch b = {0};
    char *why = NULL;
    enum err rc = webhook_hs_parse((const char *)data, size, 1782371972438LL, &b, &why);
    count_agrees(data, size, rc, &b);
    if (rc != ERR_OK) {
        if (!why)
            abort();
        free(why);
        return 0;
    }
    if (b.count + b.ignored + b.rejected != b.received)
        abort();
    for (size_t i = 0; i < b.count; i++) {
        const struct webhook_hs_event *e = &b.events[i];
        if (e->occurred_at_ms < 0 || e->occurred_at_ms > WEBHOOK_HS_MAX_OCCURRED_AT_MS)
            abort();
        /* What queue_push stores must be strict JSON and valid UTF-8 again. */
        char *text = cJSON_PrintUnformatted(e->payload);
        char *again = NULL;
        if (!text || !json_strict_check(text, strlen(text), NULL, &again) ||
            !json_is_utf8(text, strlen(text)))
            abort();
        free(text);
    }
    webhook_hs_batch_clear(&b);
    return 0;
}
