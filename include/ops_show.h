/* ops_show.h - `dealsync show opportunity|deal ID`: both records side by side, live from both
 * CRMs, with stage, record type and pipeline labels and dealsync's link. */
#ifndef SVC_OPS_SHOW_H
#define SVC_OPS_SHOW_H

#include "config.h"

int ops_show_run(const struct config *cfg, int argc, char **argv);

#endif
