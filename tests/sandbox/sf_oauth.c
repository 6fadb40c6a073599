/* sf_oauth.c - POST /services/oauth2/token: refresh_token, JWT bearer (RS256 checked with OpenSSL
 * against the configured public key or certificate) and client_credentials grants, with
 * Salesforce's error bodies. Issued tokens live in sf_store.c. Called with the lock held. */
#include "sf_api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hmac.h"
#include "util.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *form_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[j++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

/* A form field from an application/x-www-form-urlencoded body; caller frees. */
static char *form_value(const char *body, const char *name)
{
    const char *p = body;
    size_t name_len = strlen(name);
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > name_len && strncmp(p, name, name_len) == 0 && p[name_len] == '=')
            return form_decode(p + name_len + 1, len - name_len - 1);
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

static void oauth_error(struct sb_response *resp, int status, const char *error,
                        const char *description)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", error);
    cJSON_AddStringToObject(o, "error_description", description);
    sb_respond_json(resp, status, o);
}

static const char *setting(const char *name, const char *fallback)
{
    const char *v = sb_setting_str(name);
    return v && *v ? v : fallback;
}

static void respond_token(struct sb_response *resp, const char *user_id, bool with_signature,
                          const char *scope)
{
    char issued[32];
    const char *token = sf_token_issue(user_id);
    const char *instance = sf_store_instance_url();
    char *id_url = xasprintf("%s/id/%s/%s", setting("sf_login_url", "https://login.salesforce.com"),
                             sf_store_org_id(), user_id);
    snprintf(issued, sizeof(issued), "%lld", (long long)sb_now_ms());
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "access_token", token);
    cJSON_AddStringToObject(o, "scope", scope);
    cJSON_AddStringToObject(o, "instance_url", instance);
    cJSON_AddStringToObject(o, "id", id_url);
    cJSON_AddStringToObject(o, "token_type", "Bearer");
    cJSON_AddStringToObject(o, "issued_at", issued);
    if (with_signature) {
        /* Base64 HMAC-SHA256 of id + issued_at keyed with the consumer secret. */
        unsigned char mac[HMAC_SHA256_LEN];
        const char *secret = setting("sf_client_secret", "sandbox-client-secret");
        char *msg = xasprintf("%s%s", id_url, issued);
        hmac_sha256(secret, strlen(secret), msg, strlen(msg), mac);
        char *sig = hmac_base64(mac, sizeof(mac));
        cJSON_AddStringToObject(o, "signature", sig);
        free(sig);
        free(msg);
    }
    free(id_url);
    sb_respond_json(resp, 200, o);
}

static void refresh_grant(const struct sb_request *req, struct sb_response *resp)
{
    char *client_id = form_value(req->body, "client_id");
    char *secret = form_value(req->body, "client_secret");
    char *refresh = form_value(req->body, "refresh_token");
    if (!client_id || strcmp(client_id, setting("sf_client_id", "sandbox-client-id")) != 0)
        oauth_error(resp, 400, "invalid_client_id", "client identifier invalid");
    else if (!secret || !hmac_equal(secret, setting("sf_client_secret", "sandbox-client-secret")))
        oauth_error(resp, 400, "invalid_client", "invalid client credentials");
    else if (!refresh || !hmac_equal(refresh, setting("sf_refresh_token", "sandbox-refresh-token")))
        oauth_error(resp, 400, "invalid_grant", "expired access/refresh token");
    else
        respond_token(resp, sf_store_api_user_id(), true, "api refresh_token");
    free(client_id);
    free(secret);
    free(refresh);
}

static void client_credentials_grant(const struct sb_request *req, struct sb_response *resp)
{
    char *client_id = form_value(req->body, "client_id");
    char *secret = form_value(req->body, "client_secret");
    const char *auth = sb_req_header(req, "Authorization");
    if (auth && strncasecmp(auth, "Basic ", 6) == 0) {
        unsigned char *raw = NULL;
        size_t len = 0;
        if (hmac_base64_decode(auth + 6, &raw, &len)) {
            char *text = xstrndup((const char *)raw, len);
            char *colon = strchr(text, ':');
            if (colon) {
                *colon = '\0';
                free(client_id);
                free(secret);
                client_id = xstrdup(text);
                secret = xstrdup(colon + 1);
            }
            free(text);
        }
        free(raw);
    }
    if (!client_id || strcmp(client_id, setting("sf_client_id", "sandbox-client-id")) != 0)
        oauth_error(resp, 400, "invalid_client_id", "client identifier invalid");
    else if (!secret || !hmac_equal(secret, setting("sf_client_secret", "sandbox-client-secret")))
        oauth_error(resp, 400, "invalid_client", "invalid client credentials");
    else if (sb_setting_int("sf_client_credentials_enabled", 1) == 0)
        oauth_error(resp, 400, "invalid_grant", "no client credentials user enabled");
    else
        respond_token(resp, sf_store_api_user_id(), true, "api");
    free(client_id);
    free(secret);
}

static EVP_PKEY *load_key(const char *path)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return NULL;
    EVP_PKEY *key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    if (!key) {
        rewind(f);
        X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
        if (cert) {
            key = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    fclose(f);
    return key;
}

static bool verify_rs256(const char *signed_part, size_t len, const unsigned char *sig,
                         size_t sig_len)
{
    EVP_PKEY *key = load_key(sb_setting_str("sf_jwt_public_key_path"));
    EVP_MD_CTX *ctx = NULL;
    bool ok = false;
    if (!key)
        return false;
    ctx = EVP_MD_CTX_new();
    if (ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)signed_part, len) == 1)
        ok = true;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return ok;
}

static cJSON *decode_part(const char *s, size_t n)
{
    char *text = xstrndup(s, n);
    unsigned char *raw = NULL;
    size_t len = 0;
    cJSON *json = NULL;
    if (hmac_base64_decode(text, &raw, &len))
        json = cJSON_ParseWithLength((const char *)raw, len);
    free(raw);
    free(text);
    return json;
}

static void jwt_grant(const struct sb_request *req, struct sb_response *resp)
{
    char *assertion = form_value(req->body, "assertion");
    cJSON *header = NULL, *claims = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    const char *dot1 = assertion ? strchr(assertion, '.') : NULL;
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2 || strchr(dot2 + 1, '.')) {
        oauth_error(resp, 400, "invalid_grant", "invalid assertion");
        goto out;
    }
    header = decode_part(assertion, (size_t)(dot1 - assertion));
    claims = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    char *sig_text = xstrdup(dot2 + 1);
    bool sig_ok = hmac_base64_decode(sig_text, &sig, &sig_len);
    free(sig_text);
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(header, "alg");
    if (!header || !claims || !sig_ok || !cJSON_IsString(alg) ||
        strcmp(alg->valuestring, "RS256") != 0) {
        oauth_error(resp, 400, "invalid_grant", "invalid assertion");
        goto out;
    }
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(claims, "sub");
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    if (!cJSON_IsString(iss) ||
        strcmp(iss->valuestring, setting("sf_client_id", "sandbox-client-id")) != 0) {
        oauth_error(resp, 400, "invalid_client_id", "client identifier invalid");
        goto out;
    }
    if (!verify_rs256(assertion, (size_t)(dot2 - assertion), sig, sig_len)) {
        oauth_error(resp, 400, "invalid_grant", "invalid assertion");
        goto out;
    }
    if (!cJSON_IsString(aud) ||
        strcmp(aud->valuestring, setting("sf_login_url", "https://login.salesforce.com")) != 0) {
        oauth_error(resp, 400, "invalid_grant", "audience is invalid");
        goto out;
    }
    if (!cJSON_IsNumber(exp) || exp->valuedouble * 1000.0 <= (double)sb_now_ms()) {
        oauth_error(resp, 400, "invalid_grant", "expired authorization code");
        goto out;
    }
    const char *user =
        cJSON_IsString(sub) ? sf_store_user_by_username(sub->valuestring, true) : NULL;
    if (!user || sb_setting_int("sf_jwt_user_approved", 1) == 0) {
        oauth_error(resp, 400, "invalid_grant", "user hasn't approved this consumer");
        goto out;
    }
    /* The JWT bearer flow answers no refresh token and no signature. */
    respond_token(resp, user, false, "api");
out:
    free(sig);
    cJSON_Delete(header);
    cJSON_Delete(claims);
    free(assertion);
}

void sf_oauth_token(const struct sb_request *req, struct sb_response *resp)
{
    char *grant = form_value(req->body, "grant_type");
    if (grant && strcmp(grant, "refresh_token") == 0)
        refresh_grant(req, resp);
    else if (grant && strcmp(grant, "urn:ietf:params:oauth:grant-type:jwt-bearer") == 0)
        jwt_grant(req, resp);
    else if (grant && strcmp(grant, "client_credentials") == 0)
        client_credentials_grant(req, resp);
    else
        oauth_error(resp, 400, "unsupported_grant_type", "grant type not supported");
    free(grant);
}
