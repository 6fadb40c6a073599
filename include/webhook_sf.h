/* webhook_sf.h - Salesforce outbound messages: check the shared token, parse the SOAP envelope
 * safely, turn each notification into a queue event. Parsing is pure and thread-safe. */
#ifndef SVC_WEBHOOK_SF_H
#define SVC_WEBHOOK_SF_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "compiler.h"
#include "err.h"

/* The acknowledgement Salesforce requires, byte for byte as documented. */
extern const char webhook_sf_ack[];

#define WEBHOOK_SF_MAX_NOTIFICATIONS 100

/* One parsed notification; owned by the enclosing message. */
struct webhook_sf_notification {
    char *notification_id; /* as sent; the dedup key */
    char *object_type;     /* sObject type, e.g. "Opportunity" */
    char record_id[19];    /* 18-character form */
    long long occurred_at_ms;
    cJSON *payload; /* {organization_id, action_id, notification_id, object_type, fields} */
};

struct webhook_sf_message {
    char organization_id[19];
    struct webhook_sf_notification *notifications;
    size_t count;
};

/* Parses body. On ERR_OK fills *msg (free with webhook_sf_message_clear). On ERR_INVALID *why
 * is a static or message-owned explanation for the SOAP fault: malformed XML, a DOCTYPE, a
 * missing element, a bad id, more than 100 notifications. On ERR_FORBIDDEN the OrganizationId
 * is not expected_org_id (compared on the first 15 characters). now_ms stands in for the time
 * of notifications that carry no SystemModstamp/LastModifiedDate. */
enum err webhook_sf_parse(const char *body, size_t len, const char *expected_org_id,
                          long long now_ms, struct webhook_sf_message *msg, char **why) WARN_UNUSED;
void webhook_sf_message_clear(struct webhook_sf_message *msg);

/* True when the request carries the configured token (token == NULL: nothing to check), either
 * as the `token` query argument or as the password of HTTP Basic auth. Constant-time. */
bool webhook_sf_token_ok(const char *token, const char *query_token, const char *basic_password);

/* A SOAP 1.1 fault envelope with faultcode soapenv:Client or soapenv:Server (is_server) and
 * the XML-escaped text. Caller frees. */
char *webhook_sf_fault(bool is_server, const char *text);

#endif
