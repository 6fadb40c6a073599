/* sandbox_checks.h - what the client tests ask of a running sandbox beyond sbtest.h: fault
 * rules and counts from its request log. Test-only; not thread-safe. */
#ifndef SVC_SANDBOX_CHECKS_H
#define SVC_SANDBOX_CHECKS_H

#include "sbtest.h"

/* PUT /_sandbox/faults with {"rules":[rule_json]}; fails the test unless accepted. */
void sandbox_fault(const struct sbtest *sb, const char *rule_json);

/* How many requests the sandbox logged for system ("salesforce", "hubspot") with this method
 * and a path starting with path_prefix. */
int sandbox_count(const struct sbtest *sb, const char *system, const char *method,
                  const char *path_prefix);

#endif
