/* fuzz_hs_signature.c - libFuzzer target: HubSpot signature checks with attacker-chosen
 * headers. The input is five lines (X-HubSpot-Signature-v3, X-HubSpot-Request-Timestamp,
 * X-HubSpot-Signature, X-HubSpot-Signature-Version, the request URI) and then the body. Seeds:
 * built from tests/fixtures/hubspot/signature-vectors.json by scripts/fuzz.sh. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "webhook_hs.h"
#include "webhook_sf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = xstrndup((const char *)data, size); /* headers end at a NUL as on the wire */
    char *fields[5] = {NULL};
    char *p = copy;
    size_t used = 0;
    for (int i = 0; i < 5; i++) {
        char *nl = memchr(p, '\n', size - used);
        if (!nl)
            break;
        *nl = '\0';
        fields[i] = p;
        used += (size_t)(nl - p) + 1;
        p = nl + 1;
    }
    const char *body = fields[4] ? p : "";
    size_t body_len = fields[4] ? size - used : 0;
    const char *uri = fields[4] ? fields[4] : "/webhooks/hubspot";
    for (int legacy = 0; legacy < 2; legacy++) {
        struct webhook_hs_verifier ver = {"yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
                                          "https://www.example.com", legacy == 1,
                                          legacy ? 0 : 300000};
        struct webhook_hs_request req = {
            "POST",    uri,       body,     body_len, fields[0] && *fields[0] ? fields[0] : NULL,
            fields[1], fields[2], fields[3]};
        const char *why = NULL;
        enum err rc = webhook_hs_verify(&ver, &req, 1782371972438LL, &why);
        if (rc != ERR_OK && !why)
            abort();
    }
    char *decoded = webhook_hs_decode_uri(uri);
    if (strlen(decoded) > strlen(uri))
        abort();
    free(decoded);
    (void)webhook_sf_token_ok(fields[0] ? fields[0] : "t", fields[1], fields[2]);
    free(copy);
    return 0;
}
