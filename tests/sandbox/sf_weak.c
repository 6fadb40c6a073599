/* sf_weak.c - weak no-op Salesforce hooks, so the sandbox links before (or without) the sf_*.c
 * files. Any strong definition in sf_*.c overrides these at link time. What each hook must do
 * is in sandbox.h; the no-ops claim no path, so Salesforce requests answer 404. */
#include "sandbox.h"

__attribute__((weak)) void sb_sf_init(void)
{
}

__attribute__((weak)) bool sb_sf_handle(const struct sb_request *req, struct sb_response *resp)
{
    (void)req;
    (void)resp;
    return false;
}

__attribute__((weak)) bool sb_sf_control(const char *sub, const struct sb_request *req,
                                         struct sb_response *resp)
{
    (void)sub;
    (void)req;
    (void)resp;
    return false;
}

__attribute__((weak)) void sb_sf_reset(void)
{
}

__attribute__((weak)) void sb_sf_tick(void)
{
}
