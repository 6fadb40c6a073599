/* ops_cli.h - the operator's one-shot commands: `dealsync status [--json]` (the /admin page's
 * data in a terminal). They answer on stdout; logs go to stderr. */
#ifndef SVC_OPS_CLI_H
#define SVC_OPS_CLI_H

#include "config.h"

/* argv[2..]: optional --json. Returns the exit status. */
int ops_cli_status(const struct config *cfg, int argc, char **argv);

#endif
