/* fuzz_webhook_sf.c - libFuzzer target: Salesforce outbound messages (SOAP, libxml2) through
 * webhook_sf_parse, and the token check. Seeds: the .xml files of tests/fixtures/salesforce. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webhook_sf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct webhook_sf_message msg = {0};
    char *why = NULL;
    /* The org of one fixture, and none: both paths of the org check. */
    const char *org = size % 2 ? "00D7F00000107XsUAI" : NULL;
    enum err rc = webhook_sf_parse((const char *)data, size, org, 1782371972438LL, &msg, &why);
    if (rc == ERR_OK) {
        if (msg.count == 0 || !msg.notifications[0].payload || strlen(msg.organization_id) != 18)
            abort();
        char *fault = webhook_sf_fault(false, msg.notifications[0].notification_id);
        free(fault);
    } else if (!why) {
        abort(); /* every refusal has a reason */
    } else {
        char *fault = webhook_sf_fault(true, why);
        free(fault);
    }
    free(why);
    webhook_sf_message_clear(&msg);
    return 0;
}
