/* hs_api.c - HubSpot emulation entry points (being built). */
#include "sandbox.h"

void sb_hs_init(void)
{
}

bool sb_hs_handle(const struct sb_request *req, struct sb_response *resp)
{
    (void)req;
    (void)resp;
    return false;
}

bool sb_hs_control(const char *sub, const struct sb_request *req, struct sb_response *resp)
{
    (void)sub;
    (void)req;
    (void)resp;
    return false;
}

void sb_hs_reset(void)
{
}

void sb_hs_tick(void)
{
}
