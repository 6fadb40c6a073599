/* regtest.h - helpers for the registration and ingestion tests: dealsync's environment pointed
 * at a running sandbox with the sandbox's credentials, `dealsync register` as a child process,
 * and reads of what the sandbox holds (outbound messages, subscriptions, request log).
 * Test-only; not thread-safe. */
#ifndef SVC_REGTEST_H
#define SVC_REGTEST_H

#include <cjson/cJSON.h>

#include "sbtest.h"

/* The sandbox's defaults (tests/sandbox/README.md, settings). */
#define REGTEST_HS_APP_ID "1160452"
#define REGTEST_HS_DEV_KEY "sandbox-developer-key"
#define REGTEST_HS_SECRET "sandbox-client-secret"

/* "NAME=value" strings, NULL-ended: the Salesforce login URL and HubSpot API base at the
 * sandbox with its credentials (refresh-token flow, private-app token, developer key, app id),
 * PUBLIC_BASE_URL = public_base, a placeholder DATABASE_URL (register opens no database), then
 * extra (NULL-ended, may be NULL; later entries win). Free with regtest_env_free. */
char **regtest_env(const struct sbtest *sb, const char *public_base, const char *const *extra);
void regtest_env_free(char **env);

/* Runs `dealsync register [target]` (target may be NULL) with env added to the environment;
 * output goes to TEST_TMPDIR/<log_name>.log. Returns the exit status. */
int regtest_register(const char *const *env, const char *target, const char *log_name);

/* Live (not deleted) WorkflowOutboundMessage records, full state from the control API. Caller
 * deletes. */
cJSON *regtest_outbound_messages(const struct sbtest *sb);
/* The app's subscriptions through the webhooks API ("results" array). Caller deletes. */
cJSON *regtest_subscriptions(const struct sbtest *sb);
/* The subscription for event_type (and property, or NULL) in subs, or NULL (borrowed). */
const cJSON *regtest_find_subscription(const cJSON *subs, const char *event_type,
                                       const char *property);

/* The request log's last id, and the entries after since (array, caller deletes). */
long long regtest_mark(const struct sbtest *sb);
cJSON *regtest_requests_since(const struct sbtest *sb, long long since);
/* Requests after since that change state in the emulated APIs: direction "in", a method other
 * than GET, except the OAuth token request. */
int regtest_writes_since(const struct sbtest *sb, long long since);

#endif
