/* test_sandbox_sf.c - the sandbox's Salesforce half over real HTTP: OAuth (refresh, JWT with a
 * key pair made here, client credentials), sObject rows and their errors, upsert by external id,
 * SOQL and paging, getUpdated/getDeleted, collections, limits, permissions, Tooling, and outbound
 * messages delivered to a listener in this file (SOAP checked with libxml2, acks and nacks). */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "hmac.h"
#include "itest.h"
#include "util.h"

#define API "/services/data/v60.0"

static struct itest_proc *sandbox;
static char base[64];
static char token[256];

/* ---- helpers ----------------------------------------------------------------------------- */

/* One request against the sandbox. auth adds the bearer token. Returns the status. */
static int call(const char *method, const char *path, bool auth, const char *body, cJSON **json,
                char **headers)
{
    char *url = xasprintf("%s%s", base, path);
    char *authz = xasprintf("Authorization: Bearer %s", token);
    const char *h[] = {"Content-Type: application/json", auth ? authz : NULL, NULL};
    char *resp = NULL;
    int status = itest_http(method, url, h, body, body ? strlen(body) : 0, &resp, headers);
    if (json)
        *json = resp && *resp ? cJSON_Parse(resp) : NULL;
    free(resp);
    free(authz);
    free(url);
    return status;
}

static int form_post(const char *path, const char *form, const char *extra_header, cJSON **json)
{
    char *url = xasprintf("%s%s", base, path);
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", extra_header, NULL};
    char *resp = NULL;
    int status = itest_http("POST", url, h, form, strlen(form), &resp, NULL);
    *json = resp ? cJSON_Parse(resp) : NULL;
    free(resp);
    free(url);
    return status;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* errorCode of the first element of a REST error array. */
static const char *error_code(const cJSON *arr)
{
    return jstr(cJSON_GetArrayItem(arr, 0), "errorCode");
}

static void settings(const char *json)
{
    ck_assert_int_eq(call("PUT", "/_sandbox/settings", false, json, NULL, NULL), 200);
}

static void login(void)
{
    cJSON *o = NULL;
    int status = form_post("/services/oauth2/token",
                           "grant_type=refresh_token&client_id=sandbox-client-id&client_secret="
                           "sandbox-client-secret&refresh_token=sandbox-refresh-token",
                           NULL, &o);
    ck_assert_int_eq(status, 200);
    snprintf(token, sizeof(token), "%s", jstr(o, "access_token"));
    cJSON_Delete(o);
}

static void start_sandbox(void)
{
    int port = itest_free_port();
    char port_text[16];
    snprintf(port_text, sizeof(port_text), "%d", port);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
    char *ready = xasprintf("%s/_sandbox/health", base);
    char *log = xasprintf("%s/sandbox-sf.log", itest_env("TEST_TMPDIR"));
    const char *argv[] = {itest_env("SANDBOX_BIN"), "--port", port_text, NULL};
    sandbox = itest_spawn(argv, NULL, log, ready);
    ck_assert_ptr_nonnull(sandbox);
    free(log);
    free(ready);
    login();
}

static void stop_sandbox(void)
{
    itest_proc_stop(sandbox, 15, 5000);
    sandbox = NULL;
}

/* Creates an opportunity through the REST API; returns its id (caller frees). */
static char *create_opp(const char *name, double amount)
{
    cJSON *o = NULL;
    char *body = xasprintf("{\"Name\":\"%s\",\"StageName\":\"Prospecting\",\"CloseDate\":"
                           "\"2026-12-31\",\"Amount\":%.2f}",
                           name, amount);
    ck_assert_int_eq(call("POST", API "/sobjects/Opportunity/", true, body, &o, NULL), 201);
    char *id = xstrdup(jstr(o, "id"));
    cJSON_Delete(o);
    free(body);
    return id;
}

static char *curl_escape_dup(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = xstrdup(e);
    curl_free(e);
    return out;
}

/* Runs SOQL through /query; returns the parsed answer and the status in *status. */
static cJSON *soql(const char *endpoint, const char *q, int *status)
{
    char *esc = curl_escape_dup(q);
    char *path = xasprintf(API "/%s?q=%s", endpoint, esc);
    cJSON *o = NULL;
    *status = call("GET", path, true, NULL, &o, NULL);
    free(path);
    free(esc);
    return o;
}

/* ---- OAuth ------------------------------------------------------------------------------- */

START_TEST(oauth_refresh_token_grant)
{
    cJSON *o = NULL;
    int status = form_post("/services/oauth2/token",
                           "grant_type=refresh_token&client_id=sandbox-client-id&client_secret="
                           "sandbox-client-secret&refresh_token=sandbox-refresh-token",
                           NULL, &o);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(jstr(o, "instance_url"), base);
    ck_assert_str_eq(jstr(o, "token_type"), "Bearer");
    ck_assert_ptr_nonnull(jstr(o, "issued_at"));
    /* signature = base64(HMAC-SHA256(id + issued_at, client secret)) */
    char *msg = xasprintf("%s%s", jstr(o, "id"), jstr(o, "issued_at"));
    unsigned char mac[HMAC_SHA256_LEN];
    hmac_sha256("sandbox-client-secret", 21, msg, strlen(msg), mac);
    char *sig = hmac_base64(mac, sizeof(mac));
    ck_assert_str_eq(jstr(o, "signature"), sig);
    free(sig);
    free(msg);
    cJSON_Delete(o);

    status = form_post("/services/oauth2/token",
                       "grant_type=refresh_token&client_id=sandbox-client-id&client_secret=nope"
                       "&refresh_token=sandbox-refresh-token",
                       NULL, &o);
    ck_assert_int_eq(status, 400);
    ck_assert_str_eq(jstr(o, "error"), "invalid_client");
    cJSON_Delete(o);
    status = form_post("/services/oauth2/token",
                       "grant_type=refresh_token&client_id=sandbox-client-id&client_secret="
                       "sandbox-client-secret&refresh_token=stale",
                       NULL, &o);
    ck_assert_int_eq(status, 400);
    ck_assert_str_eq(jstr(o, "error"), "invalid_grant");
    cJSON_Delete(o);
}
END_TEST

START_TEST(oauth_client_credentials_basic_auth)
{
    cJSON *o = NULL;
    char *basic = hmac_base64((const unsigned char *)"sandbox-client-id:sandbox-client-secret", 39);
    char *header = xasprintf("Authorization: Basic %s", basic);
    ck_assert_int_eq(
        form_post("/services/oauth2/token", "grant_type=client_credentials", header, &o), 200);
    snprintf(token, sizeof(token), "%s", jstr(o, "access_token"));
    cJSON_Delete(o);
    ck_assert_int_eq(call("GET", API "/sobjects/Opportunity/describe", true, NULL, NULL, NULL),
                     200);
    free(header);
    free(basic);
}
END_TEST

START_TEST(expired_or_unknown_token_is_401)
{
    cJSON *o = NULL;
    ck_assert_int_eq(call("GET", API "/limits", true, NULL, NULL, NULL), 200);
    ck_assert_int_eq(call("POST", "/_sandbox/salesforce/tokens/expire", false, NULL, NULL, NULL),
                     200);
    ck_assert_int_eq(call("GET", API "/limits", true, NULL, &o, NULL), 401);
    ck_assert_str_eq(error_code(o), "INVALID_SESSION_ID");
    ck_assert_str_eq(jstr(cJSON_GetArrayItem(o, 0), "message"), "Session expired or invalid");
    cJSON_Delete(o);
    /* A token lifetime of zero seconds: expired as soon as it is issued. */
    settings("{\"sf_token_lifetime_s\":0}");
    login();
    ck_assert_int_eq(call("GET", API "/limits", true, NULL, &o, NULL), 401);
    cJSON_Delete(o);
    snprintf(token, sizeof(token), "00Dnotatoken");
    ck_assert_int_eq(call("GET", API "/limits", true, NULL, &o, NULL), 401);
    cJSON_Delete(o);
}
END_TEST

static char *b64url_json(const char *json)
{
    return hmac_base64url((const unsigned char *)json, strlen(json));
}

static char *make_jwt(EVP_PKEY *key, const char *aud, long long exp)
{
    char *claims = xasprintf("{\"iss\":\"sandbox-client-id\",\"sub\":\"integration@dealsync.test\","
                             "\"aud\":\"%s\",\"exp\":%lld}",
                             aud, exp);
    char *h = b64url_json("{\"alg\":\"RS256\"}");
    char *c = b64url_json(claims);
    char *signing_input = xasprintf("%s.%s", h, c);
    size_t sig_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
    ck_assert_int_eq(EVP_DigestSign(ctx, NULL, &sig_len, (const unsigned char *)signing_input,
                                    strlen(signing_input)),
                     1);
    unsigned char *sig = xmalloc(sig_len);
    ck_assert_int_eq(EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)signing_input,
                                    strlen(signing_input)),
                     1);
    char *s = hmac_base64url(sig, sig_len);
    char *jwt = xasprintf("%s.%s", signing_input, s);
    EVP_MD_CTX_free(ctx);
    free(s);
    free(sig);
    free(signing_input);
    free(c);
    free(h);
    free(claims);
    return jwt;
}

static int jwt_login(const char *jwt, cJSON **o)
{
    char *form = xasprintf("grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
                           "&assertion=%s",
                           jwt);
    int status = form_post("/services/oauth2/token", form, NULL, o);
    free(form);
    return status;
}

START_TEST(oauth_jwt_bearer_verifies_rs256)
{
    EVP_PKEY *good = EVP_RSA_gen(2048);
    EVP_PKEY *other = EVP_RSA_gen(2048);
    ck_assert_ptr_nonnull(good);
    ck_assert_ptr_nonnull(other);
    char *path = xasprintf("%s/sf-jwt-%d.pem", itest_env("TEST_TMPDIR"), (int)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_PUBKEY(f, good), 1);
    fclose(f);
    char *set = xasprintf("{\"sf_jwt_public_key_path\":\"%s\"}", path);
    settings(set);
    long long now = (long long)(util_now_ms() / 1000);
    cJSON *o = NULL;

    char *jwt = make_jwt(good, "https://login.salesforce.com", now + 180);
    ck_assert_int_eq(jwt_login(jwt, &o), 200);
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "refresh_token"));
    snprintf(token, sizeof(token), "%s", jstr(o, "access_token"));
    ck_assert_int_eq(call("GET", API "/limits", true, NULL, NULL, NULL), 200);
    cJSON_Delete(o);
    free(jwt);

    jwt = make_jwt(other, "https://login.salesforce.com", now + 180);
    ck_assert_int_eq(jwt_login(jwt, &o), 400);
    ck_assert_str_eq(jstr(o, "error"), "invalid_grant");
    ck_assert_str_eq(jstr(o, "error_description"), "invalid assertion");
    cJSON_Delete(o);
    free(jwt);

    jwt = make_jwt(good, "https://login.salesforce.com", now - 60);
    ck_assert_int_eq(jwt_login(jwt, &o), 400);
    ck_assert_str_eq(jstr(o, "error"), "invalid_grant");
    cJSON_Delete(o);
    free(jwt);

    jwt = make_jwt(good, "https://test.salesforce.com", now + 180);
    ck_assert_int_eq(jwt_login(jwt, &o), 400);
    ck_assert_str_eq(jstr(o, "error_description"), "audience is invalid");
    cJSON_Delete(o);
    free(jwt);

    remove(path);
    free(set);
    free(path);
    EVP_PKEY_free(other);
    EVP_PKEY_free(good);
}
END_TEST

/* ---- sObject rows ------------------------------------------------------------------------ */

START_TEST(sobject_create_read_update_delete)
{
    cJSON *o = NULL;
    char *id = create_opp("Deal CRUD", 120000);
    ck_assert_int_eq((int)strlen(id), 18);
    ck_assert(strncmp(id, "006", 3) == 0);

    char *path = xasprintf(API "/sobjects/Opportunity/%s?fields=Name,StageName,Probability", id);
    ck_assert_int_eq(call("GET", path, true, NULL, &o, NULL), 200);
    ck_assert_str_eq(jstr(cJSON_GetObjectItem(o, "attributes"), "type"), "Opportunity");
    ck_assert_str_eq(jstr(o, "Name"), "Deal CRUD");
    ck_assert_int_eq(cJSON_GetObjectItem(o, "Probability")->valueint, 10);
    ck_assert_ptr_null(cJSON_GetObjectItem(o, "Amount"));
    cJSON_Delete(o);
    free(path);

    path = xasprintf(API "/sobjects/Opportunity/%s", id);
    ck_assert_int_eq(call("PATCH", path, true, "{\"StageName\":\"Closed Won\"}", NULL, NULL), 204);
    ck_assert_int_eq(call("GET", path, true, NULL, &o, NULL), 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "IsWon")));
    ck_assert_int_eq(cJSON_GetObjectItem(o, "Probability")->valueint, 100);
    const char *modified = jstr(o, "LastModifiedDate");
    ck_assert_int_eq((int)strlen(modified), 28);
    ck_assert(strcmp(modified + 19, ".000+0000") == 0);
    cJSON_Delete(o);

    ck_assert_int_eq(call("DELETE", path, true, NULL, NULL, NULL), 204);
    ck_assert_int_eq(call("GET", path, true, NULL, &o, NULL), 404);
    ck_assert_str_eq(error_code(o), "NOT_FOUND");
    cJSON_Delete(o);
    ck_assert_int_eq(call("DELETE", path, true, NULL, &o, NULL), 404);
    ck_assert_str_eq(error_code(o), "ENTITY_IS_DELETED");
    cJSON_Delete(o);

    /* queryAll still sees it, flagged deleted; query does not. */
    int status;
    char *q = xasprintf("SELECT Id, IsDeleted FROM Opportunity WHERE Id = '%s'", id);
    o = soql("queryAll", q, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "totalSize")->valueint, 1);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(o, "records"), 0), "IsDeleted")));
    cJSON_Delete(o);
    o = soql("query", q, &status);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "totalSize")->valueint, 0);
    cJSON_Delete(o);
    free(q);
    free(path);
    free(id);
}
END_TEST

/* The control API lists a type's records, or only those whose field has a value (ids match in
 * either length). */
START_TEST(control_lists_records_by_field)
{
    char *a = create_opp("Listed A", 1);
    char *b = create_opp("Listed B", 2);
    cJSON *list = NULL;
    ck_assert_int_eq(
        call("GET", "/_sandbox/salesforce/records/Opportunity", false, NULL, &list, NULL), 200);
    ck_assert_int_ge(cJSON_GetArraySize(list), 2);
    cJSON_Delete(list);
    char *path = xasprintf("/_sandbox/salesforce/records/Opportunity?field=Id&value=%.15s", b);
    ck_assert_int_eq(call("GET", path, false, NULL, &list, NULL), 200);
    ck_assert_int_eq(cJSON_GetArraySize(list), 1);
    ck_assert_str_eq(jstr(cJSON_GetArrayItem(list, 0), "Name"), "Listed B");
    cJSON_Delete(list);
    ck_assert_int_eq(call("GET",
                          "/_sandbox/salesforce/records/Opportunity?field=Name&value=Listed%20A",
                          false, NULL, &list, NULL),
                     200);
    ck_assert_int_eq(cJSON_GetArraySize(list), 1);
    ck_assert_str_eq(jstr(cJSON_GetArrayItem(list, 0), "Id"), a);
    cJSON_Delete(list);
    ck_assert_int_eq(
        call("GET", "/_sandbox/salesforce/records/Opportunity?field=Name", false, NULL, NULL, NULL),
        400);
    free(path);
    free(b);
    free(a);
}
END_TEST

/* One opportunity of a control load, with a contact role for contact as its child. */
static char *load_item(int n, const char *stage_field, const char *contact)
{
    return xasprintf("{\"type\":\"Opportunity\",\"fields\":{\"Name\":\"Loaded %d\",%s"
                     "\"CloseDate\":\"2026-12-31\"},\"children\":[{\"type\":"
                     "\"OpportunityContactRole\",\"parent_field\":\"OpportunityId\","
                     "\"fields\":{\"ContactId\":\"%s\"}}]}",
                     n, stage_field, contact);
}

/* A control load writes each parent, then its children with the parent's new id; a refusal
 * stops the load there and says which record and what was made before it. */
START_TEST(control_load_writes_parents_then_children)
{
    cJSON *list = NULL;
    ck_assert_int_eq(call("GET",
                          "/_sandbox/salesforce/records/Contact?field=Email&value=jane@acme.test",
                          false, NULL, &list, NULL),
                     200);
    char *jane = xstrdup(jstr(cJSON_GetArrayItem(list, 0), "Id"));
    cJSON_Delete(list);
    char *a = load_item(1, "\"StageName\":\"Prospecting\",", jane);
    char *b = load_item(2, "\"StageName\":\"Prospecting\",", jane);
    char *no_stage = load_item(3, "", jane);
    char *body = xasprintf("{\"records\":[%s,%s]}", a, b);
    cJSON *made = NULL;
    ck_assert_int_eq(call("POST", "/_sandbox/salesforce/load", false, body, &made, NULL), 201);
    const cJSON *ids = cJSON_GetObjectItem(made, "ids");
    ck_assert_int_eq(cJSON_GetArraySize(ids), 4);
    char *path = xasprintf("/_sandbox/salesforce/records/OpportunityContactRole/%s",
                           cJSON_GetStringValue(cJSON_GetArrayItem(ids, 3)));
    cJSON *role = NULL;
    ck_assert_int_eq(call("GET", path, false, NULL, &role, NULL), 200);
    ck_assert_str_eq(jstr(role, "OpportunityId"), cJSON_GetStringValue(cJSON_GetArrayItem(ids, 2)));
    cJSON_Delete(role);
    cJSON_Delete(made);
    free(body);
    free(path);
    /* The second record is refused (no StageName): the first stays, the load stops there. */
    body = xasprintf("{\"records\":[%s,%s,%s]}", a, no_stage, b);
    ck_assert_int_eq(call("POST", "/_sandbox/salesforce/load", false, body, &made, NULL), 400);
    ck_assert_int_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(made, "index")), 1);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(made, "ids")), 2);
    ck_assert_str_eq(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(made, "error"), 0), "errorCode"),
                     "REQUIRED_FIELD_MISSING");
    cJSON_Delete(made);
    free(body);
    ck_assert_int_eq(
        call("POST", "/_sandbox/salesforce/load", false, "{\"records\":{}}", NULL, NULL), 400);
    free(no_stage);
    free(b);
    free(a);
    free(jane);
}
END_TEST

START_TEST(sobject_errors_as_salesforce_reports_them)
{
    cJSON *o = NULL;
    ck_assert_int_eq(call("POST", API "/sobjects/Opportunity/", true, "{\"Name\":\"x\"}", &o, NULL),
                     400);
    ck_assert_str_eq(error_code(o), "REQUIRED_FIELD_MISSING");
    cJSON *fields = cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "fields");
    ck_assert_int_eq(cJSON_GetArraySize(fields), 2);
    cJSON_Delete(o);

    ck_assert_int_eq(call("POST", API "/sobjects/Opportunity/", true,
                          "{\"Name\":\"x\",\"StageName\":\"Prospecting\",\"CloseDate\":"
                          "\"2026-01-01\",\"Bogus__c\":1}",
                          &o, NULL),
                     400);
    ck_assert_str_eq(error_code(o), "INVALID_FIELD");
    cJSON_Delete(o);

    ck_assert_int_eq(call("POST", API "/sobjects/Opportunity/", true,
                          "{\"Name\":\"x\",\"StageName\":\"Maybe\",\"CloseDate\":\"2026-01-01\"}",
                          &o, NULL),
                     400);
    ck_assert_str_eq(error_code(o), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    cJSON_Delete(o);

    ck_assert_int_eq(call("POST", API "/sobjects/Opportunity/", true,
                          "{\"Name\":\"x\",\"StageName\":\"Prospecting\",\"CloseDate\":"
                          "\"2026-01-01\",\"IsWon\":true}",
                          &o, NULL),
                     400);
    ck_assert_str_eq(error_code(o), "INVALID_FIELD_FOR_INSERT_UPDATE");
    cJSON_Delete(o);

    ck_assert_int_eq(call("PATCH", API "/sobjects/Opportunity/not-an-id", true, "{}", &o, NULL),
                     400);
    ck_assert_str_eq(error_code(o), "MALFORMED_ID");
    cJSON_Delete(o);

    ck_assert_int_eq(call("GET", API "/sobjects/Opportunity/006000000000000", true, NULL, &o, NULL),
                     404);
    ck_assert_str_eq(error_code(o), "NOT_FOUND");
    cJSON_Delete(o);

    ck_assert_int_eq(
        call("POST", API "/sobjects/OpportunityStage/", true, "{\"ApiName\":\"x\"}", &o, NULL),
        400);
    cJSON_Delete(o);
}
END_TEST

/* OwnerId is not nillable (reference 2.1): a create without it is owned by the writing user, and
 * a null or blank owner is refused on create and on update, single or in a collection, the way
 * a missing required field is. */
static void expect_owner_missing(const cJSON *errors, const char *code_key)
{
    const cJSON *e = cJSON_GetArrayItem(errors, 0);
    ck_assert_str_eq(jstr(e, code_key), "REQUIRED_FIELD_MISSING");
    ck_assert_str_eq(jstr(e, "message"), "Required fields are missing: [OwnerId]");
    const cJSON *fields = cJSON_GetObjectItem(e, "fields");
    ck_assert_int_eq(cJSON_GetArraySize(fields), 1);
    ck_assert_str_eq(cJSON_GetArrayItem(fields, 0)->valuestring, "OwnerId");
}

START_TEST(opportunity_owner_is_never_blank)
{
    const char *fields = "\"Name\":\"Owned\",\"StageName\":\"Prospecting\","
                         "\"CloseDate\":\"2026-01-01\"";
    cJSON *o = NULL;
    char *body = xasprintf("{%s}", fields);
    ck_assert_int_eq(call("POST", API "/sobjects/Opportunity/", true, body, &o, NULL), 201);
    free(body);
    char *id = xstrdup(jstr(o, "id"));
    cJSON_Delete(o);
    char *path = xasprintf(API "/sobjects/Opportunity/%s", id);
    ck_assert_int_eq(call("GET", path, true, NULL, &o, NULL), 200);
    char *owner = xstrdup(jstr(o, "OwnerId"));
    ck_assert(strncmp(owner, "005", 3) == 0);
    cJSON_Delete(o);

    ck_assert_int_eq(call("GET", API "/sobjects/Opportunity/describe", true, NULL, &o, NULL), 200);
    const cJSON *f;
    bool seen = false;
    cJSON_ArrayForEach(
        f, cJSON_GetObjectItem(o, "fields")) if (strcmp(jstr(f, "name"), "OwnerId") == 0)
    {
        ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(f, "nillable")));
        seen = true;
    }
    ck_assert(seen);
    cJSON_Delete(o);

    const char *blanks[] = {"null", "\"\""};
    for (size_t i = 0; i < 2; i++) {
        body = xasprintf("{%s,\"OwnerId\":%s}", fields, blanks[i]);
        ck_assert_int_eq(call("POST", API "/sobjects/Opportunity/", true, body, &o, NULL), 400);
        expect_owner_missing(o, "errorCode");
        cJSON_Delete(o);
        free(body);
        body = xasprintf("{\"OwnerId\":%s,\"Description\":\"not written\"}", blanks[i]);
        ck_assert_int_eq(call("PATCH", path, true, body, &o, NULL), 400);
        expect_owner_missing(o, "errorCode");
        cJSON_Delete(o);
        free(body);
        body = xasprintf("{\"records\":[{\"attributes\":{\"type\":\"Opportunity\"},\"Id\":\"%s\","
                         "\"OwnerId\":%s}]}",
                         id, blanks[i]);
        ck_assert_int_eq(call("PATCH", API "/composite/sobjects", true, body, &o, NULL), 200);
        ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "success")));
        expect_owner_missing(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "errors"), "statusCode");
        cJSON_Delete(o);
        free(body);
    }
    ck_assert_int_eq(call("GET", path, true, NULL, &o, NULL), 200);
    ck_assert_str_eq(jstr(o, "OwnerId"), owner);
    ck_assert_ptr_null(jstr(o, "Description"));
    cJSON_Delete(o);
    free(owner);
    free(path);
    free(id);
}
END_TEST

/* ---- Tooling: custom fields and upsert --------------------------------------------------- */

static void add_deal_id_field(void)
{
    cJSON *o = NULL;
    ck_assert_int_eq(call("POST", API "/tooling/sobjects/CustomField/", true,
                          "{\"FullName\":\"Opportunity.HubSpot_Deal_Id__c\",\"Metadata\":{"
                          "\"label\":\"HubSpot Deal Id\",\"type\":\"Text\",\"length\":64,"
                          "\"externalId\":true,\"unique\":true}}",
                          &o, NULL),
                     201);
    ck_assert(strncmp(jstr(o, "id"), "00N", 3) == 0);
    cJSON_Delete(o);
}

START_TEST(custom_field_then_upsert_by_external_id)
{
    cJSON *o = NULL;
    ck_assert_int_eq(call("PATCH", API "/sobjects/Opportunity/HubSpot_Deal_Id__c/123", true,
                          "{\"Name\":\"Upserted\"}", &o, NULL),
                     404);
    cJSON_Delete(o);
    add_deal_id_field();
    const char *body = "{\"Name\":\"Upserted\",\"StageName\":\"Prospecting\",\"CloseDate\":"
                       "\"2026-06-30\"}";
    ck_assert_int_eq(
        call("PATCH", API "/sobjects/Opportunity/HubSpot_Deal_Id__c/123", true, body, &o, NULL),
        201);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "created")));
    char *id = xstrdup(jstr(o, "id"));
    cJSON_Delete(o);
    ck_assert_int_eq(call("PATCH", API "/sobjects/Opportunity/HubSpot_Deal_Id__c/123", true,
                          "{\"Name\":\"Upserted again\"}", &o, NULL),
                     200);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "created")));
    ck_assert_str_eq(jstr(o, "id"), id);
    cJSON_Delete(o);
    ck_assert_int_eq(call("PATCH",
                          "/services/data/v45.0/sobjects/Opportunity/HubSpot_Deal_Id__c/123", true,
                          "{\"Amount\":5}", NULL, NULL),
                     204);
    /* The unique field refuses a second record with the same value. */
    ck_assert_int_eq(call("POST", API "/sobjects/Opportunity/", true,
                          "{\"Name\":\"Dup\",\"StageName\":\"Prospecting\",\"CloseDate\":"
                          "\"2026-06-30\",\"HubSpot_Deal_Id__c\":\"123\"}",
                          &o, NULL),
                     400);
    ck_assert_str_eq(error_code(o), "DUPLICATE_VALUE");
    cJSON_Delete(o);
    int status;
    o = soql("tooling/query",
             "SELECT Id, DeveloperName, TableEnumOrId FROM CustomField WHERE DeveloperName = "
             "'HubSpot_Deal_Id'",
             &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "totalSize")->valueint, 1);
    cJSON_Delete(o);
    free(id);
}
END_TEST

/* ---- SOQL -------------------------------------------------------------------------------- */

START_TEST(soql_subset_and_its_limits)
{
    int status;
    cJSON *o = NULL;
    char *a = create_opp("Alpha", 100);
    char *b = create_opp("Bravo", 5000);
    char *c = create_opp("Charlie", 90000);
    char *path = xasprintf(API "/sobjects/Opportunity/%s", b);
    cJSON *acc = soql("query", "SELECT Id FROM Account WHERE Name = 'acme corp'", &status);
    ck_assert_int_eq(cJSON_GetObjectItem(acc, "totalSize")->valueint, 1);
    char *patch = xasprintf("{\"AccountId\":\"%s\"}",
                            jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(acc, "records"), 0), "Id"));
    ck_assert_int_eq(call("PATCH", path, true, patch, NULL, NULL), 204);

    o = soql("query",
             "SELECT Id, Name, Account.Name, Owner.Email, RecordType.DeveloperName FROM "
             "Opportunity WHERE (Amount >= 1000 AND Amount < 100000) OR Name = 'Alpha' "
             "ORDER BY Amount DESC LIMIT 2",
             &status);
    ck_assert_int_eq(status, 200);
    cJSON *recs = cJSON_GetObjectItem(o, "records");
    ck_assert_int_eq(cJSON_GetArraySize(recs), 2);
    cJSON *first = cJSON_GetArrayItem(recs, 0), *second = cJSON_GetArrayItem(recs, 1);
    ck_assert_str_eq(jstr(first, "Name"), "Charlie");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(first, "Account")));
    ck_assert_str_eq(jstr(second, "Name"), "Bravo");
    ck_assert_str_eq(jstr(cJSON_GetObjectItem(second, "Account"), "Name"), "Acme Corp");
    ck_assert_str_eq(jstr(cJSON_GetObjectItem(second, "Owner"), "Email"),
                     "integration@dealsync.test");
    ck_assert_str_eq(jstr(cJSON_GetObjectItem(second, "RecordType"), "DeveloperName"),
                     "New_Business");
    ck_assert_ptr_nonnull(jstr(cJSON_GetObjectItem(first, "attributes"), "url"));
    cJSON_Delete(o);

    /* A parent-to-child subquery: null without children, else the children as a query result. */
    o = soql("query",
             "SELECT Id, Name, (SELECT Id, Account.Name FROM Opportunities) FROM Account WHERE "
             "Name = 'acme corp'",
             &status);
    ck_assert_int_eq(status, 200);
    const cJSON *kids = cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(o, "records"), 0), "Opportunities");
    ck_assert_int_eq(cJSON_GetObjectItem(kids, "totalSize")->valueint,
                     cJSON_GetArraySize(cJSON_GetObjectItem(kids, "records")));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(kids, "done")));
    int bravo = 0;
    const cJSON *kid;
    cJSON_ArrayForEach(kid, cJSON_GetObjectItem(kids, "records"))
    {
        bravo += strcmp(jstr(kid, "Id"), b) == 0;
        ck_assert_str_eq(jstr(cJSON_GetObjectItem(kid, "Account"), "Name"), "Acme Corp");
    }
    ck_assert_int_eq(bravo, 1);
    cJSON_Delete(o);
    char *q0 =
        xasprintf("SELECT Id, (SELECT Id FROM OpportunityContactRoles) FROM Opportunity WHERE "
                  "Id = '%s'",
                  a);
    o = soql("query", q0, &status);
    ck_assert_int_eq(status, 200);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(o, "records"), 0), "OpportunityContactRoles")));
    cJSON_Delete(o);
    free(q0);

    char *q = xasprintf("SELECT Name FROM Opportunity WHERE Id IN ('%s', '%.15s') AND AccountId "
                        "= null AND CloseDate > 2026-01-01 AND CreatedDate < 2100-01-01T00:00:00Z "
                        "AND IsDeleted = false ORDER BY Name",
                        a, c);
    o = soql("query", q, &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "totalSize")->valueint, 2);
    cJSON_Delete(o);
    free(q);

    static const struct {
        const char *q;
        const char *code;
    } bad[] = {
        {"SELECT Id FROM Opportunity WHERE Amount > 1 AND Amount < 5 OR Name = 'x'",
         "MALFORMED_QUERY"},
        {"SELECT COUNT() FROM Opportunity", "MALFORMED_QUERY"},
        {"SELECT StageName FROM Opportunity GROUP BY StageName", "MALFORMED_QUERY"},
        {"SELECT Id FROM Opportunity WHERE CloseDate = TODAY", "MALFORMED_QUERY"},
        {"SELECT Id, (SELECT Id FROM OpportunityContactRoles WHERE IsPrimary = true) FROM "
         "Opportunity",
         "MALFORMED_QUERY"},
        {"SELECT Id, (SELECT Id FROM Roles) FROM Opportunity", "INVALID_TYPE"},
        {"SELECT Id, (SELECT Nope__c FROM OpportunityContactRoles) FROM Opportunity",
         "INVALID_FIELD"},
        {"SELECT Id, (SELECT Id FROM Contacts) FROM Opportunity", "INVALID_TYPE"},
        {"SELECT Id FROM Opportunity WHERE", "MALFORMED_QUERY"},
        {"SELECT Nope__c FROM Opportunity", "INVALID_FIELD"},
        {"SELECT Account.Nope FROM Opportunity", "INVALID_FIELD"},
        {"SELECT Id FROM Nothing__c", "INVALID_TYPE"},
        {"SELECT Id FROM Opportunity WHERE Amount = '5'", "INVALID_QUERY_FILTER_OPERATOR"},
        {"SELECT Id FROM Opportunity WHERE CloseDate = '2026-01-01'",
         "INVALID_QUERY_FILTER_OPERATOR"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = soql("query", bad[i].q, &status);
        ck_assert_msg(status == 400, "%s answered %d", bad[i].q, status);
        ck_assert_str_eq(error_code(o), bad[i].code);
        cJSON_Delete(o);
    }
    free(patch);
    cJSON_Delete(acc);
    free(path);
    free(a);
    free(b);
    free(c);
}
END_TEST

/* A URI over 16,384 bytes is refused with 414 URI Too Long, as Salesforce does; the longest
 * under it is answered. The SOQL grows by one id of its IN list at a time. */
static char *in_query_path(int ids)
{
    struct buf q;
    buf_init(&q, 0);
    buf_append_str(&q, "SELECT Id FROM Opportunity WHERE Id IN ('006000000000001AAA'");
    for (int i = 1; i < ids; i++)
        buf_append_str(&q, ",'006000000000001AAA'");
    buf_append_str(&q, ")");
    char *esc = curl_escape_dup(q.data);
    char *path = xasprintf(API "/query?q=%s", esc);
    free(esc);
    buf_clear(&q);
    return path;
}

START_TEST(a_uri_over_16384_bytes_is_414)
{
    int ids = 1;
    char *path = in_query_path(ids);
    char *over = in_query_path(ids + 1);
    while (strlen(over) <= 16384) {
        free(path);
        path = over;
        over = in_query_path(++ids + 1);
    }
    ck_assert_uint_le(strlen(path), 16384);
    ck_assert_uint_gt(strlen(over), 16384);
    cJSON *o = NULL;
    ck_assert_int_eq(call("GET", path, true, NULL, &o, NULL), 200);
    cJSON_Delete(o);
    o = NULL;
    ck_assert_int_eq(call("GET", over, true, NULL, &o, NULL), 414);
    cJSON_Delete(o);
    free(over);
    free(path);
}
END_TEST

START_TEST(query_pages_with_next_records_url)
{
    settings("{\"sf_query_batch_size\":5}");
    struct buf body;
    buf_init(&body, 0);
    buf_append_str(&body, "{\"allOrNone\":true,\"records\":[");
    for (int i = 0; i < 12; i++)
        buf_printf(&body,
                   "%s{\"attributes\":{\"type\":\"Opportunity\"},\"Name\":\"Paged %02d\","
                   "\"StageName\":\"Qualification\",\"CloseDate\":\"2026-03-01\"}",
                   i ? "," : "", i);
    buf_append_str(&body, "]}");
    cJSON *o = NULL;
    ck_assert_int_eq(call("POST", API "/composite/sobjects", true, body.data, &o, NULL), 200);
    ck_assert_int_eq(cJSON_GetArraySize(o), 12);
    cJSON_Delete(o);
    buf_clear(&body);

    int status;
    o = soql("query",
             "SELECT Id, Name FROM Opportunity WHERE StageName = 'Qualification' ORDER BY Name",
             &status);
    int seen = 0, pages = 1;
    char last[64] = "";
    for (;;) {
        ck_assert_int_eq(cJSON_GetObjectItem(o, "totalSize")->valueint, 12);
        cJSON *rec;
        cJSON_ArrayForEach(rec, cJSON_GetObjectItem(o, "records"))
        {
            ck_assert(strcmp(jstr(rec, "Name"), last) > 0);
            snprintf(last, sizeof(last), "%s", jstr(rec, "Name"));
            seen++;
        }
        if (cJSON_IsTrue(cJSON_GetObjectItem(o, "done"))) {
            ck_assert_ptr_null(cJSON_GetObjectItem(o, "nextRecordsUrl"));
            break;
        }
        char *next = xstrdup(jstr(o, "nextRecordsUrl"));
        ck_assert(strncmp(next, API "/query/01g", strlen(API "/query/01g")) == 0);
        cJSON_Delete(o);
        ck_assert_int_eq(call("GET", next, true, NULL, &o, NULL), 200);
        free(next);
        pages++;
    }
    ck_assert_int_eq(seen, 12);
    ck_assert_int_eq(pages, 3);
    cJSON_Delete(o);
    ck_assert_int_eq(call("GET", API "/query/01gbogus-5", true, NULL, &o, NULL), 400);
    ck_assert_str_eq(error_code(o), "INVALID_QUERY_LOCATOR");
    cJSON_Delete(o);
}
END_TEST

/* ---- collections ------------------------------------------------------------------------- */

static char *opp_records(int n, int bad_index)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "[");
    for (int i = 0; i < n; i++)
        buf_printf(
            &b, "%s{\"attributes\":{\"type\":\"Opportunity\"},\"Name\":\"Coll %d\"%s}",
            i ? "," : "", i,
            i == bad_index ? "" : ",\"StageName\":\"Needs Analysis\",\"CloseDate\":\"2026-05-01\"");
    buf_append_str(&b, "]");
    return buf_steal(&b);
}

static int count_stage(const char *stage)
{
    int status;
    char *q = xasprintf("SELECT Id FROM Opportunity WHERE StageName = '%s'", stage);
    cJSON *o = soql("query", q, &status);
    int n = cJSON_GetObjectItem(o, "totalSize")->valueint;
    cJSON_Delete(o);
    free(q);
    return n;
}

START_TEST(collections_limits_all_or_none_and_results)
{
    cJSON *o = NULL;
    char *recs = opp_records(201, -1);
    char *body = xasprintf("{\"records\":%s}", recs);
    ck_assert_int_eq(call("POST", API "/composite/sobjects", true, body, &o, NULL), 400);
    ck_assert_str_eq(error_code(o), "EXCEEDED_ID_LIMIT");
    cJSON_Delete(o);
    free(body);
    free(recs);

    recs = opp_records(2, 1);
    body = xasprintf("{\"allOrNone\":true,\"records\":%s}", recs);
    ck_assert_int_eq(call("POST", API "/composite/sobjects", true, body, &o, NULL), 200);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "success")));
    const cJSON *e0 =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "errors"), 0);
    const cJSON *e1 =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 1), "errors"), 0);
    ck_assert_str_eq(jstr(e0, "statusCode"), "ALL_OR_NONE_OPERATION_ROLLED_BACK");
    ck_assert_str_eq(jstr(e1, "statusCode"), "REQUIRED_FIELD_MISSING");
    cJSON_Delete(o);
    ck_assert_int_eq(count_stage("Needs Analysis"), 0);
    free(body);

    body = xasprintf("{\"allOrNone\":false,\"records\":%s}", recs);
    ck_assert_int_eq(call("POST", API "/composite/sobjects", true, body, &o, NULL), 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "success")));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 1), "success")));
    char *id = xstrdup(jstr(cJSON_GetArrayItem(o, 0), "id"));
    cJSON_Delete(o);
    ck_assert_int_eq(count_stage("Needs Analysis"), 1);
    free(body);
    free(recs);

    body = xasprintf("{\"records\":[{\"attributes\":{\"type\":\"Opportunity\"},\"id\":\"%s\","
                     "\"StageName\":\"Value Proposition\"}]}",
                     id);
    ck_assert_int_eq(call("PATCH", API "/composite/sobjects", true, body, &o, NULL), 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "success")));
    cJSON_Delete(o);
    ck_assert_int_eq(count_stage("Value Proposition"), 1);
    free(body);

    char *path = xasprintf(API "/composite/sobjects?ids=%s,006000000000000&allOrNone=false", id);
    ck_assert_int_eq(call("DELETE", path, true, NULL, &o, NULL), 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "success")));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 1), "success")));
    cJSON_Delete(o);
    ck_assert_int_eq(count_stage("Value Proposition"), 0);
    free(path);

    add_deal_id_field();
    body = xstrdup("{\"records\":[{\"attributes\":{\"type\":\"Opportunity\"},"
                   "\"HubSpot_Deal_Id__c\":\"777\",\"Name\":\"Via collection\",\"StageName\":"
                   "\"Prospecting\",\"CloseDate\":\"2026-02-02\"}]}");
    ck_assert_int_eq(call("PATCH", API "/composite/sobjects/Opportunity/HubSpot_Deal_Id__c", true,
                          body, &o, NULL),
                     200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "created")));
    cJSON_Delete(o);
    ck_assert_int_eq(call("PATCH", API "/composite/sobjects/Opportunity/HubSpot_Deal_Id__c", true,
                          body, &o, NULL),
                     200);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "created")));
    cJSON_Delete(o);
    free(body);
    free(id);
}
END_TEST

/* ---- limits, permissions, replication ---------------------------------------------------- */

START_TEST(daily_allowance_runs_out)
{
    cJSON *o = NULL;
    char *headers = NULL;
    settings("{\"sf_api_daily_limit\":3}");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(call("GET", API "/limits", true, NULL, NULL, &headers), 200);
        ck_assert_ptr_nonnull(strstr(headers, "Sforce-Limit-Info: api-usage="));
        free(headers);
    }
    ck_assert_int_eq(call("GET", API "/limits", true, NULL, &o, &headers), 403);
    ck_assert_str_eq(error_code(o), "REQUEST_LIMIT_EXCEEDED");
    ck_assert_ptr_nonnull(strstr(headers, "api-usage=3/3"));
    free(headers);
    cJSON_Delete(o);
}
END_TEST

START_TEST(user_permission_access_follows_setting)
{
    static const struct {
        const char *mode;
        bool all, meta;
    } cases[] = {{"all", true, true}, {"modify_metadata", false, true}, {"none", false, false}};
    for (size_t i = 0; i < 3; i++) {
        char *s = xasprintf("{\"sf_permissions\":\"%s\"}", cases[i].mode);
        settings(s);
        free(s);
        int status;
        cJSON *o = soql("query",
                        "SELECT PermissionsModifyAllData, PermissionsModifyMetadata FROM "
                        "UserPermissionAccess",
                        &status);
        ck_assert_int_eq(status, 200);
        cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "records"), 0);
        ck_assert_int_eq(cJSON_IsTrue(cJSON_GetObjectItem(row, "PermissionsModifyAllData")),
                         cases[i].all);
        ck_assert_int_eq(cJSON_IsTrue(cJSON_GetObjectItem(row, "PermissionsModifyMetadata")),
                         cases[i].meta);
        cJSON_Delete(o);
    }
}
END_TEST

static void iso_minutes_ago(int minutes, char out[40])
{
    int64_t ms = util_now_ms() - (int64_t)minutes * 60000;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%Y-%m-%dT%H%%3A%M%%3A%S%%2B00%%3A00", &tm);
}

START_TEST(get_updated_and_deleted)
{
    cJSON *o = NULL;
    char start[40], end[40], old[40];
    char *kept = create_opp("Kept", 1);
    char *gone = create_opp("Gone", 1);
    char *path = xasprintf(API "/sobjects/Opportunity/%s", gone);
    ck_assert_int_eq(call("DELETE", path, true, NULL, NULL, NULL), 204);
    free(path);
    /* Coverage ends at the last whole minute, so move both records five minutes back. */
    for (int i = 0; i < 2; i++) {
        path = xasprintf("/_sandbox/salesforce/records/Opportunity/%s/backdate", i ? gone : kept);
        ck_assert_int_eq(call("POST", path, false, "{\"minutes\":5}", NULL, NULL), 200);
        free(path);
    }
    iso_minutes_ago(10, start);
    iso_minutes_ago(0, end);
    path = xasprintf(API "/sobjects/Opportunity/updated/?start=%s&end=%s", start, end);
    ck_assert_int_eq(call("GET", path, true, NULL, &o, NULL), 200);
    cJSON *ids = cJSON_GetObjectItem(o, "ids");
    ck_assert_int_eq(cJSON_GetArraySize(ids), 1);
    ck_assert_str_eq(cJSON_GetArrayItem(ids, 0)->valuestring, kept);
    ck_assert_ptr_nonnull(jstr(o, "latestDateCovered"));
    cJSON_Delete(o);
    free(path);

    path = xasprintf(API "/sobjects/Opportunity/deleted/?start=%s&end=%s", start, end);
    ck_assert_int_eq(call("GET", path, true, NULL, &o, NULL), 200);
    cJSON *del = cJSON_GetObjectItem(o, "deletedRecords");
    ck_assert_int_eq(cJSON_GetArraySize(del), 1);
    ck_assert_str_eq(jstr(cJSON_GetArrayItem(del, 0), "id"), gone);
    ck_assert_ptr_nonnull(jstr(o, "earliestDateAvailable"));
    cJSON_Delete(o);
    free(path);

    iso_minutes_ago(16 * 24 * 60, old);
    path = xasprintf(API "/sobjects/Opportunity/deleted/?start=%s&end=%s", old, end);
    ck_assert_int_eq(call("GET", path, true, NULL, &o, NULL), 400);
    ck_assert_str_eq(error_code(o), "INVALID_REPLICATION_DATE");
    cJSON_Delete(o);
    free(path);
    path = xasprintf(API "/sobjects/Opportunity/updated/?start=%s&end=%s", end, start);
    ck_assert_int_eq(call("GET", path, true, NULL, &o, NULL), 400);
    ck_assert_str_eq(error_code(o), "INVALID_REPLICATION_DATE");
    cJSON_Delete(o);
    free(path);
    free(kept);
    free(gone);
}
END_TEST

/* ---- outbound messages ------------------------------------------------------------------- */

struct listener {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t mu;
    int nacks_left; /* answer <Ack>false</Ack> this many times first */
    int count;
    char *bodies[64];
};

static struct listener lst;

static const char *ack_body(bool ack)
{
    return ack ? "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
                 "<soapenv:Body><notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/"
                 "outbound\"><Ack>true</Ack></notificationsResponse></soapenv:Body>"
                 "</soapenv:Envelope>"
               : "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
                 "<soapenv:Body><notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/"
                 "outbound\"><Ack>false</Ack></notificationsResponse></soapenv:Body>"
                 "</soapenv:Envelope>";
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    struct buf *b = *state;
    if (!b) {
        b = xcalloc(1, sizeof(*b));
        buf_init(b, 0);
        *state = b;
        return MHD_YES;
    }
    if (*size) {
        buf_append(b, data, *size);
        *size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&lst.mu);
    bool ack = lst.nacks_left <= 0;
    if (!ack)
        lst.nacks_left--;
    if (lst.count < 64)
        lst.bodies[lst.count++] = buf_steal(b);
    pthread_mutex_unlock(&lst.mu);
    const char *text = ack_body(ack);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "text/xml");
    enum MHD_Result rc = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)conn;
    (void)code;
    struct buf *b = *state;
    if (b) {
        buf_clear(b);
        free(b);
    }
}

static void start_listener(int nacks)
{
    memset(&lst, 0, sizeof(lst));
    pthread_mutex_init(&lst.mu, NULL);
    lst.nacks_left = nacks;
    /* A free port can be taken by another process before the bind (test runs share the
     * machine): another one is tried. */
    for (int tries = 0; tries < 20 && !lst.daemon; tries++) {
        lst.port = itest_free_port();
        lst.daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)lst.port, NULL,
                                      NULL, on_request, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                                      on_completed, NULL, MHD_OPTION_END);
    }
    ck_assert_ptr_nonnull(lst.daemon);
}

static void stop_listener(void)
{
    MHD_stop_daemon(lst.daemon);
    for (int i = 0; i < lst.count; i++)
        free(lst.bodies[i]);
}

static int received(void)
{
    pthread_mutex_lock(&lst.mu);
    int n = lst.count;
    pthread_mutex_unlock(&lst.mu);
    return n;
}

static bool at_least_one(void *arg)
{
    (void)arg;
    return received() >= 1;
}

static bool at_least_three(void *arg)
{
    (void)arg;
    return received() >= 3;
}

static bool queue_empty(void *arg)
{
    (void)arg;
    cJSON *o = NULL;
    call("GET", "/_sandbox/salesforce/outbound", false, NULL, &o, NULL);
    bool empty = cJSON_GetArraySize(cJSON_GetObjectItem(o, "queued")) == 0 &&
                 cJSON_GetObjectItem(o, "delivered")->valueint >= 1;
    cJSON_Delete(o);
    return empty;
}

/* Registers an outbound message on Opportunity; returns its 04k id (caller frees). */
static char *register_om(const char *fields)
{
    cJSON *o = NULL;
    char *body = xasprintf("{\"FullName\":\"Opportunity.DealSync\",\"Metadata\":{\"apiVersion\":"
                           "60.0,\"endpointUrl\":\"http://127.0.0.1:%d/sf/outbound\","
                           "\"fields\":%s,\"integrationUser\":\"integration@dealsync.test\","
                           "\"includeSessionId\":false,\"name\":\"DealSync\"}}",
                           lst.port, fields);
    ck_assert_int_eq(
        call("POST", API "/tooling/sobjects/WorkflowOutboundMessage", true, body, &o, NULL), 201);
    char *id = xstrdup(jstr(o, "id"));
    ck_assert(strncmp(id, "04k", 3) == 0);
    cJSON_Delete(o);
    free(body);
    return id;
}

static char *xpath_text(xmlXPathContextPtr ctx, const char *expr)
{
    xmlXPathObjectPtr r = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    char *out = NULL;
    if (r && r->nodesetval && r->nodesetval->nodeNr > 0) {
        xmlChar *t = xmlNodeGetContent(r->nodesetval->nodeTab[0]);
        out = xstrdup((const char *)t);
        xmlFree(t);
    }
    xmlXPathFreeObject(r);
    return out;
}

static int xpath_count(xmlXPathContextPtr ctx, const char *expr)
{
    xmlXPathObjectPtr r = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    int n = r && r->nodesetval ? r->nodesetval->nodeNr : 0;
    xmlXPathFreeObject(r);
    return n;
}

static char *first_notification_id(const char *xml)
{
    const char *s = strstr(xml, "<Notification>");
    ck_assert_ptr_nonnull(s);
    s = strstr(s, "<Id>");
    return xstrndup(s + 4, 18);
}

START_TEST(outbound_message_soap_structure)
{
    start_listener(0);
    char *om = register_om("[\"Name\",\"StageName\",\"Amount\",\"CloseDate\",\"AccountId\","
                           "\"LastModifiedDate\",\"IsWon\"]");
    cJSON *org = NULL;
    ck_assert_int_eq(call("GET", "/_sandbox/salesforce/org", false, NULL, &org, NULL), 200);
    /* A UI user creates the record through the control API. */
    cJSON *rec = NULL;
    ck_assert_int_eq(call("POST", "/_sandbox/salesforce/records/Opportunity", false,
                          "{\"Name\":\"Express Logistics SLA\",\"StageName\":\"Perception "
                          "Analysis\",\"CloseDate\":\"2017-04-03\",\"Amount\":120000}",
                          &rec, NULL),
                     201);
    ck_assert(itest_wait_for(at_least_one, NULL, 10000));

    pthread_mutex_lock(&lst.mu);
    char *body = xstrdup(lst.bodies[0]);
    pthread_mutex_unlock(&lst.mu);
    xmlDocPtr doc = xmlReadMemory(body, (int)strlen(body), "om.xml", NULL, XML_PARSE_NONET);
    ck_assert_ptr_nonnull(doc);
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathRegisterNs(ctx, (const xmlChar *)"s",
                       (const xmlChar *)"http://schemas.xmlsoap.org/soap/envelope/");
    xmlXPathRegisterNs(ctx, (const xmlChar *)"o",
                       (const xmlChar *)"http://soap.sforce.com/2005/09/outbound");
    xmlXPathRegisterNs(ctx, (const xmlChar *)"sf",
                       (const xmlChar *)"urn:sobject.enterprise.soap.sforce.com");
    xmlXPathRegisterNs(ctx, (const xmlChar *)"xsi",
                       (const xmlChar *)"http://www.w3.org/2001/XMLSchema-instance");
    const char *n = "/s:Envelope/s:Body/o:notifications";
    char *expr;
#define TEXT(rel) (expr = xasprintf("%s/%s", n, rel), xpath_text(ctx, expr))
    char *v = TEXT("o:OrganizationId");
    ck_assert_str_eq(v, jstr(org, "organizationId"));
    free(v);
    free(expr);
    v = TEXT("o:ActionId");
    ck_assert_str_eq(v, om);
    free(v);
    free(expr);
    ck_assert_int_eq(
        xpath_count(ctx, "/s:Envelope/s:Body/o:notifications/o:SessionId[@xsi:nil='true']"), 1);
    v = TEXT("o:EnterpriseUrl");
    ck_assert_ptr_nonnull(strstr(v, "/services/Soap/c/60.0/"));
    free(v);
    free(expr);
    v = TEXT("o:Notification/o:Id");
    ck_assert(strncmp(v, "04l", 3) == 0 && strlen(v) == 18);
    free(v);
    free(expr);
    v = TEXT("o:Notification/o:sObject/@xsi:type");
    ck_assert_str_eq(v, "sf:Opportunity");
    free(v);
    free(expr);
    v = TEXT("o:Notification/o:sObject/sf:Id");
    ck_assert_str_eq(v, jstr(rec, "Id"));
    free(v);
    free(expr);
    v = TEXT("o:Notification/o:sObject/sf:Amount");
    ck_assert_str_eq(v, "120000.0");
    free(v);
    free(expr);
    v = TEXT("o:Notification/o:sObject/sf:IsWon");
    ck_assert_str_eq(v, "false");
    free(v);
    free(expr);
    v = TEXT("o:Notification/o:sObject/sf:LastModifiedDate");
    ck_assert_int_eq((int)strlen(v), 24);
    ck_assert_int_eq(v[23], 'Z');
    free(v);
    free(expr);
#undef TEXT
    /* AccountId is null: omitted. Children: Id first, then the fields alphabetically. */
    ck_assert_int_eq(xpath_count(ctx, "//sf:AccountId"), 0);
    xmlXPathObjectPtr kids = xmlXPathEvalExpression(
        (const xmlChar *)"/s:Envelope/s:Body/o:notifications/o:Notification/o:sObject/*", ctx);
    static const char *const order[] = {
        "Id", "Amount", "CloseDate", "IsWon", "LastModifiedDate", "Name", "StageName"};
    ck_assert_int_eq(kids->nodesetval->nodeNr, 7);
    for (int i = 0; i < 7; i++)
        ck_assert_str_eq((const char *)kids->nodesetval->nodeTab[i]->name, order[i]);
    xmlXPathFreeObject(kids);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    ck_assert(itest_wait_for(queue_empty, NULL, 10000));

    /* Deleting a record sends nothing and leaves nothing queued. */
    char *path = xasprintf("/_sandbox/salesforce/records/Opportunity/%s", jstr(rec, "Id"));
    ck_assert_int_eq(call("DELETE", path, false, NULL, NULL, NULL), 200);
    ck_assert(queue_empty(NULL));
    free(path);
    free(body);
    cJSON_Delete(rec);
    cJSON_Delete(org);
    free(om);
    stop_listener();
}
END_TEST

START_TEST(outbound_message_redelivered_until_acked)
{
    start_listener(2);
    settings("{\"sf_om_retry_first_ms\":50,\"sf_om_retry_cap_ms\":200}");
    char *om = register_om("[\"Name\"]");
    char *id = create_opp("First name", 10);
    ck_assert(itest_wait_for(at_least_three, NULL, 15000));
    ck_assert(itest_wait_for(queue_empty, NULL, 15000));
    /* Three attempts of the same notification: two nacks, then the ack. */
    pthread_mutex_lock(&lst.mu);
    char *ids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = first_notification_id(lst.bodies[i]);
        ck_assert_ptr_nonnull(strstr(lst.bodies[i], id));
    }
    pthread_mutex_unlock(&lst.mu);
    ck_assert_str_eq(ids[0], ids[1]);
    ck_assert_str_eq(ids[1], ids[2]);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
    cJSON *o = NULL;
    call("GET", "/_sandbox/salesforce/outbound", false, NULL, &o, NULL);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "failedAttempts")->valueint, 2);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "delivered")->valueint, 1);
    cJSON_Delete(o);
    free(id);
    free(om);
    stop_listener();
}
END_TEST

static bool nothing_queued(void *arg)
{
    (void)arg;
    cJSON *o = NULL;
    call("GET", "/_sandbox/salesforce/outbound", false, NULL, &o, NULL);
    bool empty = cJSON_GetArraySize(cJSON_GetObjectItem(o, "queued")) == 0;
    cJSON_Delete(o);
    return empty;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

START_TEST(outbound_messages_batched_per_message)
{
    start_listener(0);
    char *om = register_om("[\"Name\",\"StageName\"]");
    char *recs = opp_records(3, -1);
    char *body = xasprintf("{\"records\":%s}", recs);
    ck_assert_int_eq(call("POST", API "/composite/sobjects", true, body, NULL, NULL), 200);
    ck_assert(itest_wait_for(queue_empty, NULL, 10000));
    pthread_mutex_lock(&lst.mu);
    int count = lst.count;
    int notifications = count ? count_of(lst.bodies[0], "<Notification>") : 0;
    pthread_mutex_unlock(&lst.mu);
    ck_assert_int_eq(count, 1);
    ck_assert_int_eq(notifications, 3);
    free(body);
    free(recs);
    free(om);
    stop_listener();
}
END_TEST

START_TEST(outbound_message_sends_latest_state_only)
{
    start_listener(1000);
    settings("{\"sf_om_retry_first_ms\":20,\"sf_om_retry_cap_ms\":50}");
    char *om = register_om("[\"Name\"]");
    char *id = create_opp("Version one", 1);
    ck_assert(itest_wait_for(at_least_one, NULL, 10000));
    char *path = xasprintf(API "/sobjects/Opportunity/%s", id);
    ck_assert_int_eq(call("PATCH", path, true, "{\"Name\":\"Version two\"}", NULL, NULL), 204);
    pthread_mutex_lock(&lst.mu);
    lst.nacks_left = 0;
    pthread_mutex_unlock(&lst.mu);
    ck_assert(itest_wait_for(queue_empty, NULL, 10000));
    pthread_mutex_lock(&lst.mu);
    bool is_latest = strstr(lst.bodies[lst.count - 1], "Version two") != NULL;
    pthread_mutex_unlock(&lst.mu);
    ck_assert(is_latest);
    free(path);
    free(id);
    free(om);
    stop_listener();
}
END_TEST

START_TEST(outbound_message_dropped_after_retention)
{
    start_listener(1000000);
    settings("{\"sf_om_retry_first_ms\":20,\"sf_om_retry_cap_ms\":50,"
             "\"sf_om_retention_ms\":300}");
    char *om = register_om("[\"Name\"]");
    char *id = create_opp("Never acknowledged", 1);
    ck_assert(itest_wait_for(at_least_one, NULL, 10000));
    ck_assert(itest_wait_for(nothing_queued, NULL, 10000));
    cJSON *o = NULL;
    call("GET", "/_sandbox/salesforce/outbound", false, NULL, &o, NULL);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "dropped")->valueint, 1);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "delivered")->valueint, 0);
    cJSON_Delete(o);
    free(id);
    free(om);
    stop_listener();
}
END_TEST

START_TEST(outbound_message_session_id_calls_back)
{
    start_listener(0);
    cJSON *o = NULL;
    char *body = xasprintf("{\"FullName\":\"Account.AccountSync\",\"Metadata\":{\"apiVersion\":"
                           "47.0,\"endpointUrl\":\"http://127.0.0.1:%d/sf/account\","
                           "\"fields\":[\"Name\",\"Website\"],\"integrationUser\":"
                           "\"integration@dealsync.test\",\"includeSessionId\":true,"
                           "\"name\":\"AccountSync\"}}",
                           lst.port);
    ck_assert_int_eq(
        call("POST", API "/tooling/sobjects/WorkflowOutboundMessage", true, body, &o, NULL), 201);
    cJSON_Delete(o);
    free(body);
    ck_assert_int_eq(call("POST", "/_sandbox/salesforce/records/Account", false,
                          "{\"Name\":\"Initech\"}", &o, NULL),
                     201);
    cJSON_Delete(o);
    ck_assert(itest_wait_for(queue_empty, NULL, 10000));
    pthread_mutex_lock(&lst.mu);
    char *xml = xstrdup(lst.bodies[0]);
    pthread_mutex_unlock(&lst.mu);
    ck_assert_ptr_nonnull(strstr(xml, "xsi:type=\"sf:Account\""));
    ck_assert_ptr_nonnull(strstr(xml, "<sf:Name>Initech</sf:Name>"));
    ck_assert_ptr_null(strstr(xml, "Website"));
    const char *s = strstr(xml, "<SessionId>");
    ck_assert_ptr_nonnull(s);
    s += strlen("<SessionId>");
    snprintf(token, sizeof(token), "%.*s", (int)(strstr(s, "<") - s), s);
    ck_assert_int_eq(call("GET", API "/limits", true, NULL, NULL, NULL), 200);
    free(xml);
    stop_listener();
}
END_TEST

static bool at_least_two(void *arg)
{
    (void)arg;
    return received() >= 2;
}

START_TEST(outbound_message_duplicate_fault_resends_same_id)
{
    start_listener(0);
    ck_assert_int_eq(
        call("PUT", "/_sandbox/faults", false, "{\"delivery\":{\"duplicate_rate\":1}}", NULL, NULL),
        200);
    char *om = register_om("[\"Name\"]");
    char *id = create_opp("Delivered twice", 1);
    ck_assert(itest_wait_for(at_least_two, NULL, 10000));
    ck_assert(itest_wait_for(queue_empty, NULL, 10000));
    pthread_mutex_lock(&lst.mu);
    char *a = first_notification_id(lst.bodies[0]);
    char *b = first_notification_id(lst.bodies[1]);
    pthread_mutex_unlock(&lst.mu);
    ck_assert_str_eq(a, b);
    cJSON *o = NULL;
    call("GET", "/_sandbox/salesforce/outbound", false, NULL, &o, NULL);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "duplicatesSent")->valueint, 1);
    cJSON_Delete(o);
    free(a);
    free(b);
    free(id);
    free(om);
    stop_listener();
}
END_TEST

START_TEST(outbound_message_skips_integration_user_when_set)
{
    start_listener(0);
    settings("{\"sf_om_skip_integration_user\":1}");
    char *om = register_om("[\"Name\"]");
    char *api_id = create_opp("Written by the API user", 1);
    cJSON *rec = NULL;
    ck_assert_int_eq(call("POST", "/_sandbox/salesforce/records/Opportunity", false,
                          "{\"Name\":\"Written in the UI\",\"StageName\":\"Prospecting\","
                          "\"CloseDate\":\"2026-01-01\"}",
                          &rec, NULL),
                     201);
    ck_assert(itest_wait_for(queue_empty, NULL, 10000));
    pthread_mutex_lock(&lst.mu);
    int count = lst.count;
    bool has_ui = count == 1 && strstr(lst.bodies[0], jstr(rec, "Id")) != NULL;
    bool has_api = count >= 1 && strstr(lst.bodies[0], api_id) != NULL;
    pthread_mutex_unlock(&lst.mu);
    ck_assert_int_eq(count, 1);
    ck_assert(has_ui);
    ck_assert(!has_api);
    cJSON_Delete(rec);
    free(api_id);
    free(om);
    stop_listener();
}
END_TEST

START_TEST(tooling_outbound_message_read_query_delete)
{
    start_listener(0);
    cJSON *o = NULL;
    /* endpointUrl outside Metadata is refused. */
    ck_assert_int_eq(call("POST", API "/tooling/sobjects/WorkflowOutboundMessage", true,
                          "{\"FullName\":\"Opportunity.X\",\"endpointUrl\":\"http://x\"}", &o,
                          NULL),
                     400);
    ck_assert_str_eq(error_code(o), "JSON_PARSER_ERROR");
    cJSON_Delete(o);
    char *om = register_om("[\"Name\"]");
    char *path = xasprintf(API "/tooling/sobjects/WorkflowOutboundMessage/%s", om);
    ck_assert_int_eq(call("GET", path, true, NULL, &o, NULL), 200);
    ck_assert_str_eq(jstr(o, "FullName"), "Opportunity.DealSync");
    ck_assert_ptr_nonnull(jstr(cJSON_GetObjectItem(o, "Metadata"), "endpointUrl"));
    cJSON_Delete(o);
    int status;
    o = soql("tooling/query",
             "SELECT Id, Name FROM WorkflowOutboundMessage WHERE Name = 'DealSync'", &status);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "totalSize")->valueint, 1);
    cJSON_Delete(o);
    ck_assert_int_eq(call("POST", API "/tooling/sobjects/Flow", true,
                          "{\"FullName\":\"DealSync_Flow\",\"Metadata\":{\"label\":\"DealSync\","
                          "\"processType\":\"AutoLaunchedFlow\",\"status\":\"Active\","
                          "\"actionCalls\":[{\"name\":\"om\",\"actionType\":\"outboundMessage\","
                          "\"actionName\":\"Opportunity.DealSync\"}]}}",
                          &o, NULL),
                     201);
    cJSON_Delete(o);
    o = soql("tooling/query", "SELECT Id, MasterLabel, Status FROM Flow", &status);
    ck_assert_int_eq(cJSON_GetObjectItem(o, "totalSize")->valueint, 1);
    cJSON_Delete(o);
    ck_assert_int_eq(call("DELETE", path, true, NULL, NULL, NULL), 204);
    ck_assert_int_eq(call("GET", path, true, NULL, NULL, NULL), 404);
    free(path);
    free(om);
    stop_listener();
}
END_TEST

Suite *suite_sandbox_sf(void);
Suite *suite_sandbox_sf(void)
{
    Suite *s = suite_create("sandbox_sf");
    TCase *tc = tcase_create("salesforce");
    tcase_add_checked_fixture(tc, start_sandbox, stop_sandbox);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, oauth_refresh_token_grant);
    tcase_add_test(tc, oauth_client_credentials_basic_auth);
    tcase_add_test(tc, expired_or_unknown_token_is_401);
    tcase_add_test(tc, oauth_jwt_bearer_verifies_rs256);
    tcase_add_test(tc, sobject_create_read_update_delete);
    tcase_add_test(tc, control_lists_records_by_field);
    tcase_add_test(tc, control_load_writes_parents_then_children);
    tcase_add_test(tc, sobject_errors_as_salesforce_reports_them);
    tcase_add_test(tc, opportunity_owner_is_never_blank);
    tcase_add_test(tc, custom_field_then_upsert_by_external_id);
    tcase_add_test(tc, soql_subset_and_its_limits);
    tcase_add_test(tc, query_pages_with_next_records_url);
    tcase_add_test(tc, a_uri_over_16384_bytes_is_414);
    tcase_add_test(tc, collections_limits_all_or_none_and_results);
    tcase_add_test(tc, daily_allowance_runs_out);
    tcase_add_test(tc, user_permission_access_follows_setting);
    tcase_add_test(tc, get_updated_and_deleted);
    tcase_add_test(tc, outbound_message_soap_structure);
    tcase_add_test(tc, outbound_message_redelivered_until_acked);
    tcase_add_test(tc, outbound_messages_batched_per_message);
    tcase_add_test(tc, outbound_message_sends_latest_state_only);
    tcase_add_test(tc, outbound_message_dropped_after_retention);
    tcase_add_test(tc, outbound_message_session_id_calls_back);
    tcase_add_test(tc, outbound_message_duplicate_fault_resends_same_id);
    tcase_add_test(tc, outbound_message_skips_integration_user_when_set);
    tcase_add_test(tc, tooling_outbound_message_read_query_delete);
    suite_add_tcase(s, tc);
    return s;
}
