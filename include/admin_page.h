/* admin_page.h - the /admin page as one server-rendered HTML document: no external assets, no
 * script needed (forms post back). Rendered from the JSON of ops_status.h. */
#ifndef SVC_ADMIN_PAGE_H
#define SVC_ADMIN_PAGE_H

#include <cjson/cJSON.h>

/* status from ops_status, dead from ops_dead_letters, records from ops_records (NULL when no
 * search was made; q is the search). csrf goes into every form. Caller frees. */
char *admin_page_render(const cJSON *status, const cJSON *dead, const cJSON *records, const char *q,
                        const char *csrf);

#endif
