/* test_sf_client.c - the pure parts of sf_client: error bodies, error-code mapping, datetimes,
 * and the JWT bearer assertion checked against the public half of a fresh RSA key. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "hmac.h"
#include "sf_client.h"

static const struct {
    const char *body;
    const char *code; /* NULL = nothing found */
    const char *message;
} error_cases[] = {
    {"[{\"message\":\"Session expired or invalid\",\"errorCode\":\"INVALID_SESSION_ID\"}]",
     "INVALID_SESSION_ID", "Session expired or invalid"},
    {"[{\"message\":\"The Id field should not be specified in the sobject data.\","
     "\"errorCode\":\"INVALID_FIELD\"},{\"message\":\"second\",\"errorCode\":\"OTHER\"}]",
     "INVALID_FIELD", "The Id field should not be specified in the sobject data."},
    {"{\"success\":false,\"errors\":[{\"statusCode\":\"DUPLICATES_DETECTED\","
     "\"message\":\"Use one of these records?\",\"fields\":[]}]}",
     "DUPLICATES_DETECTED", "Use one of these records?"},
    {"{\"error\":\"invalid_grant\",\"error_description\":\"expired authorization code\"}",
     "invalid_grant", "expired authorization code"},
    {"[{\"errorCode\":\"NOT_FOUND\"}]", "NOT_FOUND", NULL},
    {"<html><body>wrong host</body></html>", NULL, NULL},
    {"[]", NULL, NULL},
    {"", NULL, NULL},
    {NULL, NULL, NULL},
};

START_TEST(error_body_table)
{
    char *code = NULL, *message = NULL;
    bool found = sf_error_parse(error_cases[_i].body, &code, &message);
    if (!error_cases[_i].code) {
        ck_assert(!found);
        ck_assert_ptr_null(code);
        return;
    }
    ck_assert(found);
    ck_assert_str_eq(code, error_cases[_i].code);
    if (error_cases[_i].message)
        ck_assert_str_eq(message, error_cases[_i].message);
    else
        ck_assert_ptr_null(message);
    free(code);
    free(message);
}
END_TEST

START_TEST(error_codes_refine_the_http_result)
{
    ck_assert_int_eq(sf_error_map(ERR_FORBIDDEN, "REQUEST_LIMIT_EXCEEDED"), ERR_RATE_LIMIT);
    ck_assert_int_eq(sf_error_map(ERR_AUTH, "INVALID_SESSION_ID"), ERR_AUTH);
    ck_assert_int_eq(sf_error_map(ERR_INVALID, "ENTITY_IS_DELETED"), ERR_NOT_FOUND);
    ck_assert_int_eq(sf_error_map(ERR_NOT_FOUND, "NOT_FOUND"), ERR_NOT_FOUND);
    ck_assert_int_eq(sf_error_map(ERR_INVALID, "DUPLICATE_VALUE"), ERR_CONFLICT);
    ck_assert_int_eq(sf_error_map(ERR_INVALID, "UNABLE_TO_LOCK_ROW"), ERR_UPSTREAM);
    ck_assert_int_eq(sf_error_map(ERR_FORBIDDEN, "INSUFFICIENT_ACCESS_OR_READONLY"), ERR_FORBIDDEN);
    ck_assert_int_eq(sf_error_map(ERR_INVALID, "MALFORMED_QUERY"), ERR_INVALID);
    ck_assert_int_eq(sf_error_map(ERR_FORBIDDEN, NULL), ERR_FORBIDDEN);
    ck_assert(err_is_transient(sf_error_map(ERR_FORBIDDEN, "REQUEST_LIMIT_EXCEEDED")));
}
END_TEST

START_TEST(salesforce_datetimes)
{
    int64_t ms = 0;
    ck_assert(sf_datetime_parse("2013-05-20T20:49:32.000+0000", &ms));
    ck_assert_int_eq(ms, 1369082972000LL);
    ck_assert(sf_datetime_parse("2020-05-09T03:04:32.000Z", &ms));
    ck_assert_int_eq(ms, 1588993472000LL);
    ck_assert(sf_datetime_parse("2017-04-03", &ms));
    ck_assert_int_eq(ms, 1491177600000LL);
    ck_assert(!sf_datetime_parse("Mon, 20 May 2013 22:21:46 GMT", &ms));
    ck_assert(!sf_datetime_parse(NULL, &ms));
}
END_TEST

/* Decodes base64url part i (0-based) of a JWT into a NUL-terminated buffer. */
static unsigned char *jwt_part(const char *jwt, int i, size_t *len)
{
    const char *p = jwt;
    for (int k = 0; k < i; k++)
        p = strchr(p, '.') + 1;
    char *part = strndup(p, strcspn(p, "."));
    unsigned char *out = NULL;
    ck_assert(hmac_base64_decode(part, &out, len));
    out = realloc(out, *len + 1);
    out[*len] = '\0';
    free(part);
    return out;
}

START_TEST(jwt_assertion_verifies_with_the_public_key)
{
    char path[] = "/tmp/sf-jwt-key-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    EVP_PKEY *key = EVP_RSA_gen(2048);
    ck_assert_ptr_nonnull(key);
    ck_assert(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
    fclose(f);

    char *jwt = NULL;
    ck_assert_int_eq(sf_jwt_assertion("3MVG9client", "sync@example.com",
                                      "https://login.salesforce.com", path, 1700000000, &jwt),
                     ERR_OK);
    size_t len;
    unsigned char *header = jwt_part(jwt, 0, &len);
    ck_assert_str_eq((char *)header, "{\"alg\":\"RS256\"}");
    unsigned char *claims_text = jwt_part(jwt, 1, &len);
    cJSON *claims = cJSON_Parse((char *)claims_text);
    ck_assert_str_eq(cJSON_GetObjectItem(claims, "iss")->valuestring, "3MVG9client");
    ck_assert_str_eq(cJSON_GetObjectItem(claims, "sub")->valuestring, "sync@example.com");
    ck_assert_str_eq(cJSON_GetObjectItem(claims, "aud")->valuestring,
                     "https://login.salesforce.com");
    ck_assert_int_eq((long long)cJSON_GetObjectItem(claims, "exp")->valuedouble, 1700000180LL);

    size_t sig_len;
    unsigned char *sig = jwt_part(jwt, 2, &sig_len);
    size_t input_len = (size_t)(strrchr(jwt, '.') - jwt);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    ck_assert_int_eq(EVP_DigestVerify(md, sig, sig_len, (unsigned char *)jwt, input_len), 1);
    /* A changed claim no longer verifies. */
    jwt[input_len - 2] ^= 1;
    ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    ck_assert_int_ne(EVP_DigestVerify(md, sig, sig_len, (unsigned char *)jwt, input_len), 1);

    char *none = NULL;
    ck_assert_int_eq(sf_jwt_assertion("a", "b", "c", "/nonexistent/key.pem", 0, &none), ERR_CONFIG);
    ck_assert_ptr_null(none);

    EVP_MD_CTX_free(md);
    free(sig);
    cJSON_Delete(claims);
    free(claims_text);
    free(header);
    free(jwt);
    EVP_PKEY_free(key);
    unlink(path);
}
END_TEST

START_TEST(options_are_validated_per_flow)
{
    struct sf_client *sf = NULL;
    struct sf_client_options opt = {.flow = SF_AUTH_REFRESH_TOKEN,
                                    .login_url = "https://login.salesforce.com",
                                    .client_id = "id",
                                    .api_version = "v60.0"};
    ck_assert_int_eq(sf_client_new(&opt, NULL, &sf), ERR_CONFIG); /* no refresh token */
    opt.refresh_token = "rt";
    ck_assert_int_eq(sf_client_new(&opt, NULL, &sf), ERR_OK);
    sf_client_free(sf);
    opt.flow = SF_AUTH_JWT_BEARER;
    opt.username = "u@example.com";
    opt.private_key_file = "/nonexistent/key.pem";
    sf = NULL;
    ck_assert_int_eq(sf_client_new(&opt, NULL, &sf), ERR_CONFIG);
    ck_assert_ptr_null(sf);
    opt.flow = SF_AUTH_CLIENT_CREDENTIALS;
    ck_assert_int_eq(sf_client_new(&opt, NULL, &sf), ERR_CONFIG); /* no client secret */
}
END_TEST

Suite *suite_sf_client(void);
Suite *suite_sf_client(void)
{
    Suite *s = suite_create("sf_client");
    TCase *tc = tcase_create("pure");
    tcase_add_loop_test(tc, error_body_table, 0,
                        (int)(sizeof(error_cases) / sizeof(error_cases[0])));
    tcase_add_test(tc, error_codes_refine_the_http_result);
    tcase_add_test(tc, salesforce_datetimes);
    tcase_add_test(tc, jwt_assertion_verifies_with_the_public_key);
    tcase_add_test(tc, options_are_validated_per_flow);
    suite_add_tcase(s, tc);
    return s;
}
