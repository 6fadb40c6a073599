/* test_webhook_hs.c - HubSpot signatures against every vector in
 * tests/fixtures/hubspot/signature-vectors.json (and a one-byte change to each), and parsing of
 * the documented and captured webhook bodies. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fixture.h"
#include "util.h"
#include "webhook_hs.h"

static cJSON *vectors;

static void load_vectors(void)
{
    char *text = fixture_read("hubspot/signature-vectors.json", NULL);
    vectors = cJSON_Parse(text);
    free(text);
    ck_assert_ptr_nonnull(vectors);
}

static void free_vectors(void)
{
    cJSON_Delete(vectors);
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Splits "https://host/path?q" into base "https://host" and raw path "/path?q". */
static void split_uri(const char *uri, char **base, char **path)
{
    const char *p = strstr(uri, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    ck_assert_ptr_nonnull(p);
    *base = xstrndup(uri, (size_t)(p - uri));
    *path = xstrdup(p);
}

/* Verifies vector v through webhook_hs_verify as a request would arrive; mutate flips one byte
 * of the body (or of the URI when the body is empty). */
static enum err verify_vector(const cJSON *v, bool mutate)
{
    const char *secret = str(vectors, "client_secret");
    const char *version = str(v, "version");
    const char *method = str(v, "method");
    const char *uri = str(v, "wire_uri") ? str(v, "wire_uri") : str(v, "uri");
    char *body = xstrdup(str(v, "body"));
    char *base = NULL, *path = NULL;
    /* v1 signs no URI: any will do. */
    split_uri(uri ? uri : "https://example.com/webhooks/hubspot", &base, &path);
    if (mutate) {
        if (body[0])
            body[strlen(body) / 2] ^= 1;
        else
            path[strlen(path) - 1] ^= 1;
    }
    struct webhook_hs_verifier ver = {secret, base, true, 0};
    struct webhook_hs_request req = {
        method ? method : "POST", path, body, strlen(body), NULL, NULL, NULL, NULL};
    if (strcmp(version, "v3") == 0) {
        req.signature_v3 = str(v, "signature");
        req.timestamp = str(v, "timestamp");
    } else {
        req.signature = str(v, "signature");
        req.signature_version = version;
    }
    const char *why = NULL;
    enum err rc = webhook_hs_verify(&ver, &req, 0, &why);
    free(base);
    free(path);
    free(body);
    return rc;
}

START_TEST(every_official_vector_verifies)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(vectors, "vectors");
    ck_assert_int_ge(cJSON_GetArraySize(list), 8);
    const cJSON *v;
    int i = 0;
    cJSON_ArrayForEach(v, list)
    {
        ck_assert_msg(verify_vector(v, false) == ERR_OK, "vector %d (%s) did not verify", i,
                      str(v, "version"));
        ck_assert_msg(verify_vector(v, true) == ERR_AUTH, "vector %d verified after a change", i);
        i++;
    }
}
END_TEST

START_TEST(uri_decoding_follows_the_documented_list)
{
    char *d = webhook_hs_decode_uri("https://x.io/a%3Ab%2fc?q=%40%21%24%27%28%29%2A%2C%3B%3F"
                                    "&s=%20%26");
    ck_assert_str_eq(d, "https://x.io/a:b/c?q=@!$'()*,;?&s=%20%26");
    free(d);
    d = webhook_hs_decode_uri("/end%3");
    ck_assert_str_eq(d, "/end%3");
    free(d);
}
END_TEST

START_TEST(v3_age_and_missing_headers)
{
    const char *body = "[]";
    char *sig =
        webhook_hs_sign_v3("s", "POST", "https://h.io/webhooks/hubspot", body, 2, "1000000");
    struct webhook_hs_verifier ver = {"s", "https://h.io/", false, 300000};
    struct webhook_hs_request req = {"POST", "/webhooks/hubspot", body, 2,
                                     sig,    "1000000",           NULL, NULL};
    const char *why;
    ck_assert_int_eq(webhook_hs_verify(&ver, &req, 1000000 + 300000, &why), ERR_OK);
    ck_assert_int_eq(webhook_hs_verify(&ver, &req, 1000000 + 300001, &why), ERR_AUTH);
    ck_assert_ptr_nonnull(strstr(why, "5 minutes"));
    ck_assert_int_eq(webhook_hs_verify(&ver, &req, 1000000 - 300001, &why), ERR_AUTH);
    req.timestamp = NULL;
    ck_assert_int_eq(webhook_hs_verify(&ver, &req, 1000000, &why), ERR_AUTH);
    /* Without v3, a v1 signature is refused unless the operator enabled it. */
    char *v1 = webhook_hs_sign_legacy("s", NULL, NULL, body, 2);
    struct webhook_hs_request legacy = {"POST", "/webhooks/hubspot", body, 2, NULL, NULL, v1, "v1"};
    ck_assert_int_eq(webhook_hs_verify(&ver, &legacy, 1000000, &why), ERR_AUTH);
    ver.allow_legacy = true;
    ck_assert_int_eq(webhook_hs_verify(&ver, &legacy, 1000000, &why), ERR_OK);
    legacy.signature = NULL;
    ck_assert_int_eq(webhook_hs_verify(&ver, &legacy, 1000000, &why), ERR_AUTH);
    free(v1);
    free(sig);
}
END_TEST

/* webhook_hs_count (the acknowledgement's parse) decides as webhook_hs_parse (the split's)
 * does: the same result, reason, counts and rejections, and no event copied out. */
static void count_agrees_with_parse(const char *body, size_t len)
{
    struct webhook_hs_batch p = {0}, c = {0};
    char *pwhy = NULL, *cwhy = NULL;
    enum err rc = webhook_hs_parse(body, len, 42, &p, &pwhy);
    ck_assert_int_eq(webhook_hs_count(body, len, 42, &c, &cwhy), rc);
    ck_assert_str_eq(cwhy ? cwhy : "", pwhy ? pwhy : "");
    ck_assert_uint_eq(c.received, p.received);
    ck_assert_uint_eq(c.count, p.count);
    ck_assert_uint_eq(c.ignored, p.ignored);
    ck_assert_uint_eq(c.rejected, p.rejected);
    for (size_t i = 0; i < p.rejected; i++) {
        ck_assert_int_eq(c.rejections[i].index, p.rejections[i].index);
        ck_assert_str_eq(c.rejections[i].reason, p.rejections[i].reason);
    }
    ck_assert_ptr_null(c.events);
    webhook_hs_batch_clear(&c);
    webhook_hs_batch_clear(&p);
    free(cwhy);
    free(pwhy);
}

START_TEST(documented_and_captured_bodies_parse)
{
    static const struct {
        const char *file;
        size_t stored;
        const char *type;
        const char *record;
    } cases[] = {
        {"hubspot/webhook-docs-example.json", 2, "contact", "1246965"},
        {"hubspot/webhook-deal-events-captured.json", 2, "deal", "332507367156"},
        {"hubspot/webhook-deal-association-captured.json", 1, "deal", "64058987777"},
    };
    for (size_t i = 0; i < 3; i++) {
        size_t len;
        char *body = fixture_read(cases[i].file, &len);
        struct webhook_hs_batch b = {0};
        char *why = NULL;
        enum err rc = webhook_hs_parse(body, len, 42, &b, &why);
        ck_assert_msg(rc == ERR_OK, "%s: %s", cases[i].file, why ? why : "");
        ck_assert_uint_eq(b.count, cases[i].stored);
        ck_assert_uint_eq(b.ignored, 0);
        ck_assert_str_eq(b.events[0].object_type, cases[i].type);
        ck_assert_str_eq(b.events[0].record_id, cases[i].record);
        webhook_hs_batch_clear(&b);
        count_agrees_with_parse(body, len);
        free(body);
    }
}
END_TEST

START_TEST(association_without_object_id_or_subscription)
{
    size_t len;
    char *body = fixture_read("hubspot/webhook-deal-association-captured.json", &len);
    struct webhook_hs_batch b = {0};
    char *why = NULL;
    ck_assert_int_eq(webhook_hs_parse(body, len, 42, &b, &why), ERR_OK);
    ck_assert_str_eq(b.events[0].dedup_key, "50249912:0:2073333923");
    ck_assert_str_eq(b.events[0].event_type, "deal.associationChange");
    ck_assert_int_eq(b.events[0].occurred_at_ms, 1786997905997LL);
    webhook_hs_batch_clear(&b);
    free(body);
}
END_TEST

static const struct {
    const char *body;
    const char *why;
} bad_bodies[] = {
    {"{\"objectId\":1}", "not a JSON array"},
    {"[1,", "not valid JSON"},
    {"[]", "expected 1 to 100 events"},
    {"[42]", "event 0 is not an object"},
    {"[{\"objectId\":1,\"eventId\":1,\"portalId\":1}]", "no subscriptionType"},
    {"[{\"subscriptionType\":\"deal.creation\",\"eventId\":1,\"portalId\":1}]", "no objectId"},
    {"[{\"subscriptionType\":\"deal.creation\",\"objectId\":5,\"portalId\":1}]", "no numeric "
                                                                                 "eventId"},
};

START_TEST(bad_bodies_are_refused_with_a_reason)
{
    struct webhook_hs_batch b = {0};
    char *why = NULL;
    ck_assert_int_eq(
        webhook_hs_parse(bad_bodies[_i].body, strlen(bad_bodies[_i].body), 42, &b, &why),
        ERR_INVALID);
    ck_assert_msg(why && strstr(why, bad_bodies[_i].why), "got '%s'", why ? why : "");
    free(why);
    count_agrees_with_parse(bad_bodies[_i].body, strlen(bad_bodies[_i].body));
}
END_TEST

START_TEST(other_object_types_are_counted_not_stored)
{
    const char *body = "[{\"subscriptionType\":\"ticket.creation\",\"objectId\":1,\"eventId\":1,"
                       "\"portalId\":2},{\"subscriptionType\":\"company.creation\",\"objectId\":3,"
                       "\"eventId\":2,\"portalId\":2,\"subscriptionId\":9}]";
    struct webhook_hs_batch b = {0};
    char *why = NULL;
    ck_assert_int_eq(webhook_hs_parse(body, strlen(body), 42, &b, &why), ERR_OK);
    ck_assert_uint_eq(b.received, 2);
    ck_assert_uint_eq(b.ignored, 1);
    ck_assert_uint_eq(b.count, 1);
    ck_assert_str_eq(b.events[0].object_type, "company");
    ck_assert_str_eq(b.events[0].dedup_key, "2:9:2");
    ck_assert_int_eq(b.events[0].occurred_at_ms, 42);
    webhook_hs_batch_clear(&b);
    count_agrees_with_parse(body, strlen(body));
    /* 101 events are one too many. */
    struct buf big;
    buf_init(&big, 0);
    buf_append_str(&big, "[");
    for (int i = 0; i < 101; i++)
        buf_printf(&big,
                   "%s{\"subscriptionType\":\"deal.creation\",\"objectId\":%d,"
                   "\"eventId\":%d,\"portalId\":2}",
                   i ? "," : "", i + 1, i + 1);
    buf_append_str(&big, "]");
    ck_assert_int_eq(webhook_hs_parse(big.data, big.len, 42, &b, &why), ERR_INVALID);
    free(why);
    buf_clear(&big);
}
END_TEST

/* Any int64 may arrive in the timestamp header before authentication: no overflow. */
START_TEST(extreme_timestamps_are_refused_without_overflow)
{
    struct webhook_hs_verifier ver = {"secret", "https://example.com", false, 300000};
    static const char *const stamps[] = {"-9223372036854775808", "9223372036854775807", "-1"};
    for (size_t i = 0; i < 3; i++) {
        struct webhook_hs_request req = {"POST", "/webhooks/hubspot", "[]", 2,
                                         "AAAA", stamps[i],           NULL, NULL};
        const char *why = NULL;
        ck_assert_int_eq(webhook_hs_verify(&ver, &req, 1782371972438LL, &why), ERR_AUTH);
        ck_assert_ptr_nonnull(strstr(why, "5 minutes"));
    }
}
END_TEST

START_TEST(bad_events_are_set_aside_and_the_rest_kept)
{
    const char *body = "[{\"subscriptionType\":\"deal.creation\",\"objectId\":1,\"eventId\":1,"
                       "\"portalId\":1,\"occurredAt\":100000000000000000},"
                       "{\"subscriptionType\":\"deal.creation\",\"objectId\":2,\"eventId\":2,"
                       "\"portalId\":1,\"occurredAt\":9.2e18},"
                       "{\"subscriptionType\":\"deal.creation\",\"objectId\":3,\"eventId\":3,"
                       "\"portalId\":1,\"occurredAt\":-1},"
                       "{\"subscriptionType\":\"deal.creation\",\"objectId\":4,\"eventId\":4,"
                       "\"portalId\":1,\"dealname\":\"\xff\"},"
                       "{\"subscriptionType\":\"deal.creation\",\"eventId\":5,\"portalId\":1},"
                       "{\"subscriptionType\":\"deal.creation\",\"objectId\":18446744073709551616,"
                       "\"eventId\":6,\"portalId\":1},"
                       "7,"
                       "{\"subscriptionType\":\"deal.creation\",\"objectId\":9007199254740993,"
                       "\"eventId\":8,\"portalId\":1,\"occurredAt\":1782371972438}]";
    struct webhook_hs_batch b = {0};
    char *why = NULL;
    ck_assert_int_eq(webhook_hs_parse(body, strlen(body), 42, &b, &why), ERR_OK);
    ck_assert_uint_eq(b.received, 8);
    ck_assert_uint_eq(b.count, 1);
    ck_assert_uint_eq(b.rejected, 7);
    ck_assert_str_eq(b.events[0].record_id, "9007199254740993");
    ck_assert_int_eq(b.events[0].occurred_at_ms, 1782371972438LL);
    char *payload = cJSON_PrintUnformatted(b.events[0].payload);
    ck_assert_ptr_nonnull(strstr(payload, "\"objectId\":9007199254740993"));
    free(payload);
    ck_assert_ptr_nonnull(strstr(b.rejections[0].reason, "occurredAt"));
    ck_assert_ptr_nonnull(strstr(b.rejections[1].reason, "occurredAt"));
    ck_assert_ptr_nonnull(strstr(b.rejections[2].reason, "occurredAt"));
    ck_assert_ptr_nonnull(strstr(b.rejections[3].reason, "UTF-8"));
    ck_assert_ptr_nonnull(strstr(b.rejections[4].reason, "objectId"));
    ck_assert_ptr_nonnull(strstr(b.rejections[5].reason, "objectId"));
    ck_assert_ptr_nonnull(strstr(b.rejections[6].reason, "not an object"));
    webhook_hs_batch_clear(&b);
    count_agrees_with_parse(body, strlen(body));
}
END_TEST

START_TEST(what_hubspot_never_sends_is_refused_whole)
{
    static const char *const bodies[] = {
        "[{\"subscriptionType\":\"deal.creation\",\"objectId\":5,\"objectId\":6,\"eventId\":5,"
        "\"portalId\":1}]",
        "[{\"subscriptionType\":\"deal.creation\",\"objectId\":5,\"eventId\":5,\"portalId\":1,"
        "\"propertyValue\":\"a\\u0000b\"}]",
        "[{\"subscriptionType\":\"deal.creation\",\"objectId\":5,\"eventId\":5,\"portalId\":1}]"
        " x",
    };
    for (size_t i = 0; i < 3; i++) {
        struct webhook_hs_batch b = {0};
        char *why = NULL;
        ck_assert_int_eq(webhook_hs_parse(bodies[i], strlen(bodies[i]), 42, &b, &why), ERR_INVALID);
        ck_assert_ptr_nonnull(strstr(why, "not valid JSON"));
        free(why);
        count_agrees_with_parse(bodies[i], strlen(bodies[i]));
    }
}
END_TEST

Suite *suite_webhook_hs(void);
Suite *suite_webhook_hs(void)
{
    Suite *s = suite_create("webhook_hs");
    TCase *sig = tcase_create("signatures");
    tcase_add_unchecked_fixture(sig, load_vectors, free_vectors);
    tcase_add_test(sig, every_official_vector_verifies);
    tcase_add_test(sig, uri_decoding_follows_the_documented_list);
    tcase_add_test(sig, v3_age_and_missing_headers);
    tcase_add_test(sig, extreme_timestamps_are_refused_without_overflow);
    suite_add_tcase(s, sig);
    TCase *parse = tcase_create("parse");
    tcase_add_test(parse, documented_and_captured_bodies_parse);
    tcase_add_test(parse, association_without_object_id_or_subscription);
    tcase_add_loop_test(parse, bad_bodies_are_refused_with_a_reason, 0,
                        sizeof(bad_bodies) / sizeof(bad_bodies[0]));
    tcase_add_test(parse, other_object_types_are_counted_not_stored);
    tcase_add_test(parse, bad_events_are_set_aside_and_the_rest_kept);
    tcase_add_test(parse, what_hubspot_never_sends_is_refused_whole);
    suite_add_tcase(s, parse);
    return s;
}
