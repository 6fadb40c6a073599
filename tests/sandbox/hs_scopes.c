/* hs_scopes.c - the private app's scopes. Reference 4.7: a 403 is a missing scope. The setting
 * hubspot.scopes (a space-separated list) grants the token only those scopes; unset, it has
 * every scope. A call needing a scope the token lacks is answered 403 with category
 * MISSING_SCOPES and the scope it needs, in the body HubSpot sends (its shape: reference 4.7;
 * the category, message and context key are [COMMUNITY], HubSpot/hubspot-api-nodejs#268).
 * Which scope a call needs: the object's crm.objects.<type>.read|write for records, searches,
 * associations (the from side) and pipelines (the Pipelines API takes the object's scopes),
 * crm.schemas.<type>.read|write for properties, crm.objects.owners.read for owners. */
#include "hs.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A read: GET, or a POST that only reads (batch read, search). */
static bool is_read(const struct sb_request *req)
{
    return strcmp(req->method, "GET") == 0 || ends_with(req->path, "/batch/read") ||
           ends_with(req->path, "/search");
}

/* The scope the call needs into out; false when it needs none the sandbox knows. */
static bool required_scope(const struct sb_request *req, char *out, size_t size)
{
    static const struct {
        const char *prefix;
        const char *kind;
    } typed[] = {
        {"/crm/v3/objects/", "objects"},      {"/crm/v4/objects/", "objects"},
        {"/crm/v4/associations/", "objects"}, {"/crm/v3/pipelines/", "objects"},
        {"/crm/v3/properties/", "schemas"},
    };
    const char *access = is_read(req) ? "read" : "write";
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++) {
        size_t n = strlen(typed[i].prefix);
        if (strncmp(req->path, typed[i].prefix, n) != 0)
            continue;
        const char *rest = req->path + n;
        enum hs_type t;
        if (hs_take_type(&rest, &t) <= 0)
            return false; /* the route answers an unknown type */
        snprintf(out, size, "crm.%s.%s.%s", typed[i].kind, hs_type_plural(t), access);
        return true;
    }
    if (strncmp(req->path, "/crm/v3/owners", 14) == 0) {
        snprintf(out, size, "crm.objects.owners.read");
        return true;
    }
    return false;
}

static bool is_granted(const char *scope)
{
    const char *granted = sb_setting_str("hubspot.scopes");
    if (!granted)
        return true;
    size_t n = strlen(scope);
    for (const char *p = granted; *p;) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, " ,");
        if (len == n && strncmp(p, scope, n) == 0)
            return true;
        p += len;
    }
    return false;
}

bool hs_scope_check(const struct sb_request *req, struct sb_response *resp)
{
    char scope[96];
    if (!required_scope(req, scope, sizeof scope) || is_granted(scope))
        return true;
    cJSON *o = hs_error_json("MISSING_SCOPES",
                             "This app hasn't been granted all required scopes to make this "
                             "call. Read more about required scopes here: "
                             "https://developers.hubspot.com/scopes.");
    cJSON *errors = cJSON_AddArrayToObject(o, "errors");
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "message", "One or more of the following scopes are required.");
    cJSON *context = cJSON_AddObjectToObject(e, "context");
    cJSON *required = cJSON_AddArrayToObject(context, "requiredScopes");
    cJSON_AddItemToArray(required, cJSON_CreateString(scope));
    cJSON_AddItemToArray(errors, e);
    cJSON *links = cJSON_AddObjectToObject(o, "links");
    cJSON_AddStringToObject(links, "scopes", "https://developers.hubspot.com/scopes");
    sb_respond_json(resp, 403, o);
    return false;
}
