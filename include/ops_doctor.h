/* ops_doctor.h - `dealsync doctor [--json]`: a checklist of everything an operator must get
 * right before the first sync (database, Salesforce login, permission, deal id field, outbound
 * message and its flow, API usage, HubSpot token and scopes, webhooks, pipeline limit, mappings,
 * PUBLIC_BASE_URL), each miss with its fix. Exit status 0 only when every check passes. */
#ifndef SVC_OPS_DOCTOR_H
#define SVC_OPS_DOCTOR_H

#include "config.h"

int ops_doctor_run(const struct config *cfg, int argc, char **argv);

#endif
