/* hs_owners.c - HubSpot owners (CRM Owners v3, read-only through the API): a few seeded owners,
 * lookups by email and id, and the control route that adds more. */
#include "hs.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

struct owner {
    int64_t id;
    int64_t user_id;
    char *email;
    char *first_name;
    char *last_name;
    int64_t created_at;
};

static struct owner *owners;
static size_t owner_count;
static int64_t next_owner_id;

static struct owner *owner_add(const char *email, const char *first, const char *last,
                               int64_t user_id)
{
    owners = xrealloc(owners, (owner_count + 1) * sizeof *owners);
    struct owner *o = &owners[owner_count++];
    o->id = next_owner_id++;
    o->user_id = user_id > 0 ? user_id : 9586504 + (o->id - 41629779);
    o->email = xstrdup(email);
    o->first_name = xstrdup(first ? first : "");
    o->last_name = xstrdup(last ? last : "");
    o->created_at = sb_now_ms();
    return o;
}

void hs_owners_reset(void)
{
    for (size_t i = 0; i < owner_count; i++) {
        free(owners[i].email);
        free(owners[i].first_name);
        free(owners[i].last_name);
    }
    free(owners);
    owners = NULL;
    owner_count = 0;
    next_owner_id = 41629779;
    owner_add("alice.owner@example.com", "Alice", "Owner", 0);
    owner_add("bob.seller@example.com", "Bob", "Seller", 0);
    owner_add("carol.closer@example.com", "Carol", "Closer", 0);
}

bool hs_owner_exists(const char *owner_id)
{
    int64_t id;
    if (!util_parse_i64(owner_id, &id))
        return false;
    for (size_t i = 0; i < owner_count; i++)
        if (owners[i].id == id)
            return true;
    return false;
}

static cJSON *owner_json(const struct owner *o)
{
    char ts[32];
    hs_iso(o->created_at, ts);
    cJSON *j = cJSON_CreateObject();
    char *id = xasprintf("%lld", (long long)o->id);
    cJSON_AddStringToObject(j, "id", id);
    free(id);
    cJSON_AddStringToObject(j, "email", o->email);
    cJSON_AddStringToObject(j, "type", "PERSON");
    cJSON_AddStringToObject(j, "firstName", o->first_name);
    cJSON_AddStringToObject(j, "lastName", o->last_name);
    cJSON_AddNumberToObject(j, "userId", (double)o->user_id);
    cJSON_AddNumberToObject(j, "userIdIncludingInactive", (double)o->user_id);
    cJSON_AddStringToObject(j, "createdAt", ts);
    cJSON_AddStringToObject(j, "updatedAt", ts);
    cJSON_AddBoolToObject(j, "archived", false);
    cJSON_AddArrayToObject(j, "teams");
    return j;
}

static void list_owners(const struct sb_request *req, struct sb_response *resp)
{
    char *email = sb_req_query(req, "email");
    char *limit_s = sb_req_query(req, "limit");
    char *after_s = sb_req_query(req, "after");
    int64_t limit = 100, after = 0;
    if ((limit_s && (!util_parse_i64(limit_s, &limit) || limit < 1 || limit > 500)) ||
        (after_s && !util_parse_i64(after_s, &after))) {
        hs_error(resp, 400, "VALIDATION_ERROR", "limit must be 1-500 and after an offset");
        goto out;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *results = cJSON_AddArrayToObject(root, "results");
    int64_t seen = 0, added = 0;
    for (size_t i = 0; i < owner_count; i++) {
        if (email && strcasecmp(email, owners[i].email) != 0)
            continue;
        if (seen++ < after)
            continue;
        if (added == limit) {
            cJSON *next = cJSON_AddObjectToObject(cJSON_AddObjectToObject(root, "paging"), "next");
            char *a = xasprintf("%lld", (long long)(after + limit));
            cJSON_AddStringToObject(next, "after", a);
            free(a);
            break;
        }
        cJSON_AddItemToArray(results, owner_json(&owners[i]));
        added++;
    }
    sb_respond_json(resp, 200, root);
out:
    free(after_s);
    free(limit_s);
    free(email);
}

bool hs_owners_handle(const struct sb_request *req, const char *rest, struct sb_response *resp)
{
    if (strcmp(req->method, "GET") != 0)
        return false;
    if (*rest == '\0' || strcmp(rest, "/") == 0) {
        list_owners(req, resp);
        return true;
    }
    if (*rest != '/')
        return false;
    int64_t id;
    char *by = sb_req_query(req, "idProperty");
    bool by_user = by && strcmp(by, "userId") == 0;
    free(by);
    if (util_parse_i64(rest + 1, &id)) {
        for (size_t i = 0; i < owner_count; i++) {
            if ((by_user ? owners[i].user_id : owners[i].id) == id) {
                sb_respond_json(resp, 200, owner_json(&owners[i]));
                return true;
            }
        }
    }
    hs_errorf(resp, 404, "OBJECT_NOT_FOUND", "Unable to find owner %s", rest + 1);
    return true;
}

void hs_owners_control_add(const cJSON *body, struct sb_response *resp)
{
    const cJSON *email = cJSON_GetObjectItemCaseSensitive(body, "email");
    const cJSON *first = cJSON_GetObjectItemCaseSensitive(body, "firstName");
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(body, "lastName");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(body, "userId");
    if (!cJSON_IsString(email) || !strchr(email->valuestring, '@')) {
        hs_error(resp, 400, "VALIDATION_ERROR", "email is required");
        return;
    }
    struct owner *o =
        owner_add(email->valuestring, cJSON_GetStringValue(first), cJSON_GetStringValue(last),
                  cJSON_IsNumber(user) ? (int64_t)user->valuedouble : 0);
    sb_respond_json(resp, 201, owner_json(o));
}
