/* control.c - the control API under /_sandbox/: health, reset, request log, settings, faults,
 * and the hand-off to each system's own control routes. JSON in and out; never part of an
 * emulated API. Called with the state lock held. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static void respond_message(struct sb_response *resp, int status, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", status < 400 ? "ok" : "error");
    cJSON_AddStringToObject(o, "message", message);
    sb_respond_json(resp, status, o);
}

static bool is_method(const struct sb_request *req, const char *method)
{
    return strcmp(req->method, method) == 0;
}

static void handle_requests(const struct sb_request *req, struct sb_response *resp)
{
    int64_t since = 0;
    char *since_text = sb_req_query(req, "since");
    char *system = sb_req_query(req, "system");
    if (since_text && !util_parse_i64(since_text, &since))
        respond_message(resp, 400, "since must be an integer");
    else
        sb_respond_json(resp, 200, sb_reqlog_json(since, system));
    free(system);
    free(since_text);
}

static void handle_settings(const struct sb_request *req, struct sb_response *resp)
{
    if (is_method(req, "GET")) {
        sb_respond_json(resp, 200, sb_settings_json());
        return;
    }
    if (is_method(req, "DELETE")) {
        sb_settings_restore_defaults();
        sb_respond_json(resp, 200, sb_settings_json());
        return;
    }
    if (!is_method(req, "PUT")) {
        respond_message(resp, 405, "use GET, PUT or DELETE");
        return;
    }
    cJSON *body = cJSON_Parse(req->body);
    const cJSON *item;
    if (!cJSON_IsObject(body)) {
        respond_message(resp, 400, "body must be a flat JSON object of names to numbers/strings");
        goto out;
    }
    cJSON_ArrayForEach(item, body)
    {
        if (!cJSON_IsNumber(item) && !cJSON_IsString(item) && !cJSON_IsNull(item)) {
            char *msg = xasprintf("setting %s must be a number, a string or null", item->string);
            respond_message(resp, 400, msg);
            free(msg);
            goto out;
        }
    }
    cJSON_ArrayForEach(item, body)(void) sb_settings_set(item->string, item);
    sb_respond_json(resp, 200, sb_settings_json());
out:
    cJSON_Delete(body);
}

static void handle_faults(const struct sb_request *req, struct sb_response *resp)
{
    if (is_method(req, "GET")) {
        sb_respond_json(resp, 200, sb_faults_json());
        return;
    }
    if (is_method(req, "DELETE")) {
        sb_faults_reset();
        sb_respond_json(resp, 200, sb_faults_json());
        return;
    }
    if (!is_method(req, "PUT")) {
        respond_message(resp, 405, "use GET, PUT or DELETE");
        return;
    }
    cJSON *body = cJSON_Parse(req->body);
    char *err = NULL;
    if (sb_faults_put(body, &err))
        sb_respond_json(resp, 200, sb_faults_json());
    else
        respond_message(resp, 400, err);
    free(err);
    cJSON_Delete(body);
}

static void handle_reset(struct sb_response *resp)
{
    cJSON *null = cJSON_CreateNull();
    sb_sf_reset();
    sb_hs_reset();
    sb_reqlog_clear();
    sb_faults_reset();
    (void)sb_settings_set(SB_SETTING_DUPLICATE_RATE, null);
    (void)sb_settings_set(SB_SETTING_REORDER_RATE, null);
    cJSON_Delete(null);
    respond_message(resp, 200, "reset");
}

void sb_control_handle(const struct sb_request *req, struct sb_response *resp)
{
    const char *sub = req->path + strlen("/_sandbox");
    if (*sub == '/')
        sub++;

    if (strcmp(sub, "health") == 0) {
        respond_message(resp, 200, "healthy");
    } else if (strcmp(sub, "reset") == 0) {
        if (is_method(req, "POST"))
            handle_reset(resp);
        else
            respond_message(resp, 405, "use POST");
    } else if (strcmp(sub, "requests") == 0) {
        if (is_method(req, "GET"))
            handle_requests(req, resp);
        else
            respond_message(resp, 405, "use GET");
    } else if (strcmp(sub, "settings") == 0) {
        handle_settings(req, resp);
    } else if (strcmp(sub, "faults") == 0) {
        handle_faults(req, resp);
    } else if (strncmp(sub, "salesforce/", 11) == 0) {
        if (!sb_sf_control(sub + 11, req, resp))
            respond_message(resp, 404, "no such salesforce control route");
    } else if (strncmp(sub, "hubspot/", 8) == 0) {
        if (!sb_hs_control(sub + 8, req, resp))
            respond_message(resp, 404, "no such hubspot control route");
    } else {
        respond_message(resp, 404, "no such control route");
    }
}
