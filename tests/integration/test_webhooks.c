/* test_webhooks.c - both webhook endpoints through real HTTP against a real dealsync and a real
 * PostgreSQL: every fixture and vector, and every rejection path with its status and nothing
 * stored. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hmac.h"
#include "svc.h"
#include "util.h"
#include "webhook_hs.h"
#include "webhook_sf.h"

static const char *const soap_headers[] = {"Content-Type: text/xml; charset=utf-8",
                                           "SOAPAction: \"\"", NULL};

static char *sf_fixture(const char *name, size_t *len)
{
    char *path = itest_fixture_path(name);
    char *body = itest_read_file(path, len);
    free(path);
    return body;
}

START_TEST(salesforce_fixtures_are_acked_after_commit_and_stored_once)
{
    static const char *const files[] = {
        "salesforce/outbound-opportunity-api47-oneline.xml",
        "salesforce/outbound-opportunity-api23-15char-ids.xml",
        "salesforce/outbound-opportunity-many-fields.xml",
    };
    /* Each capture comes from a different org: accept each with its own org configured. */
    static const char *const orgs[] = {"00D7F00000107XsUAI", "00DQ0000000EB93",
                                       "00D5w000004qGTOEA2"};
    for (int i = 0; i < 3; i++) {
        char *org = xasprintf("SALESFORCE_ORG_ID=%s", orgs[i]);
        const char *env[] = {org, NULL};
        struct svc s;
        svc_start(&s, "wh_sf_fixture", env);
        size_t len;
        char *body = sf_fixture(files[i], &len);
        char *resp = NULL;
        ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce", soap_headers, body, len, &resp), 200);
        ck_assert_str_eq(resp, webhook_sf_ack);
        free(resp);
        ck_assert_int_eq(svc_events(&s), 1);
        ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM sync_event WHERE source ="
                                               " 'salesforce' AND object_type = 'Opportunity'"
                                               " AND length(record_id) = 18 AND status ="
                                               " 'pending'"),
                         1);
        /* Salesforce redelivers the same notification id: acked again, stored once. */
        ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce", soap_headers, body, len, &resp), 200);
        free(resp);
        ck_assert_int_eq(svc_events(&s), 1);
        free(body);
        ck_assert_int_eq(svc_stop(&s), 0);
        free(org);
    }
}
END_TEST

START_TEST(salesforce_rejections_store_nothing)
{
    const char *env[] = {"SALESFORCE_WEBHOOK_TOKEN=t0ken-for-tests", NULL};
    struct svc s;
    svc_start(&s, "wh_sf_reject", env);
    size_t len;
    char *good = sf_fixture("salesforce/outbound-opportunity-api47-oneline.xml", &len);
    char *resp = NULL;

    /* No token, wrong token: 403 with a SOAP fault. */
    ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce", soap_headers, good, len, &resp), 403);
    ck_assert_ptr_nonnull(strstr(resp, "<faultcode>soapenv:Client</faultcode>"));
    ck_assert_ptr_nonnull(strstr(resp, "webhook token"));
    free(resp);
    ck_assert_int_eq(
        svc_post(&s, "/webhooks/salesforce?token=wrong", soap_headers, good, len, &resp), 403);
    free(resp);
    /* Wrong org with the right token: 403. */
    size_t other_len;
    char *other = sf_fixture("salesforce/outbound-opportunity-api23-15char-ids.xml", &other_len);
    ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce?token=t0ken-for-tests", soap_headers, other,
                              other_len, &resp),
                     403);
    ck_assert_ptr_nonnull(strstr(resp, "OrganizationId is not this org"));
    free(resp);
    /* Placeholder ids: 400 naming the field. */
    size_t ph_len;
    char *ph = sf_fixture("salesforce/outbound-contact-placeholders.xml", &ph_len);
    ck_assert_int_eq(
        svc_post(&s, "/webhooks/salesforce?token=t0ken-for-tests", soap_headers, ph, ph_len, &resp),
        400);
    ck_assert_ptr_nonnull(strstr(resp, "is not a Salesforce id"));
    free(resp);
    /* Malformed XML and a DOCTYPE: 400. */
    const char *broken = "<soapenv:Envelope";
    ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce?token=t0ken-for-tests", soap_headers,
                              broken, strlen(broken), &resp),
                     400);
    ck_assert_ptr_nonnull(strstr(resp, "malformed XML"));
    free(resp);
    const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM "
                      "\"file:///etc/passwd\">]><x>&e;</x>";
    ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce?token=t0ken-for-tests", soap_headers, xxe,
                              strlen(xxe), &resp),
                     400);
    ck_assert_ptr_null(strstr(resp, "root:"));
    free(resp);
    ck_assert_int_eq(svc_events(&s), 0);

    /* The right token, in the query or as the Basic auth password: accepted. */
    ck_assert_int_eq(
        svc_post(&s, "/webhooks/salesforce?token=t0ken-for-tests", soap_headers, good, len, &resp),
        200);
    free(resp);
    char *basic = NULL;
    {
        const char *cred = "salesforce:t0ken-for-tests";
        char *b64 = hmac_base64((const unsigned char *)cred, strlen(cred));
        basic = xasprintf("Authorization: Basic %s", b64);
        free(b64);
    }
    const char *auth_headers[] = {basic, "Content-Type: text/xml", NULL};
    ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce", auth_headers, good, len, &resp), 200);
    free(resp);
    free(basic);
    ck_assert_int_eq(svc_events(&s), 1);
    free(ph);
    free(other);
    free(good);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

START_TEST(oversized_bodies_get_413)
{
    const char *env[] = {"SALESFORCE_MAX_BODY_BYTES=65536", NULL};
    struct svc s;
    svc_start(&s, "wh_413", env);
    size_t n = 70000;
    char *big = xmalloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    char *resp = NULL;
    /* With a Content-Length: refused before the body is read. */
    ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce", soap_headers, big, n, &resp), 413);
    free(resp);
    /* Chunked (no length up front): refused once the limit is crossed. */
    const char *chunked[] = {"Transfer-Encoding: chunked", "Content-Type: text/xml", NULL};
    ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce", chunked, big, n, &resp), 413);
    free(resp);
    /* HubSpot's limit is 1 MiB by default. */
    size_t hn = 1024 * 1024 + 1;
    char *hbig = xmalloc(hn + 1);
    memset(hbig, ' ', hn);
    hbig[hn] = '\0';
    ck_assert_int_eq(svc_post_hubspot(&s, hbig, &resp), 413);
    free(resp);
    ck_assert_int_eq(svc_events(&s), 0);
    /* The service still answers. */
    char *url = xasprintf("%s/healthz", s.base);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, NULL), 200);
    free(url);
    free(hbig);
    free(big);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

/* Every signature vector goes through the real endpoint: dealsync configured with the vector's
 * secret, base URL and path, the age check off (HUBSPOT_MAX_TIMESTAMP_AGE_MS=0) for the fixed
 * timestamps. The vectors' bodies that are not event arrays then get 400 for the body - past
 * the signature - and a one-byte change gets 401. */
START_TEST(hubspot_signature_vectors_through_http)
{
    char *path = itest_fixture_path("hubspot/signature-vectors.json");
    char *text = itest_read_file(path, NULL);
    free(path);
    cJSON *doc = cJSON_Parse(text);
    const cJSON *v;
    int checked = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(doc, "vectors"))
    {
        const char *version = cJSON_GetObjectItemCaseSensitive(v, "version")->valuestring;
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, "method");
        /* The v2 GET vector signs a GET: webhooks are POSTs (it is checked in the unit suite). */
        if (cJSON_IsString(m) && strcmp(m->valuestring, "POST") != 0)
            continue;
        const cJSON *wire = cJSON_GetObjectItemCaseSensitive(v, "wire_uri");
        const cJSON *uri = cJSON_GetObjectItemCaseSensitive(v, "uri");
        const char *full = cJSON_IsString(wire)  ? wire->valuestring
                           : cJSON_IsString(uri) ? uri->valuestring
                                                 : "https://www.example.com/webhooks/hubspot";
        /* https://host/path?query -> PUBLIC_BASE_URL=https://host, path, query */
        const char *p = strchr(strstr(full, "://") + 3, '/');
        char *base = xstrndup(full, (size_t)(p - full));
        const char *q = strchr(p, '?');
        char *only_path = q ? xstrndup(p, (size_t)(q - p)) : xstrdup(p);
        char *e1 = xasprintf("PUBLIC_BASE_URL=%s", base);
        char *e2 = xasprintf("HUBSPOT_WEBHOOK_PATH=%s", only_path);
        const char *env[] = {e1, e2, "HUBSPOT_MAX_TIMESTAMP_AGE_MS=0",
                             "HUBSPOT_ALLOW_LEGACY_SIGNATURES=true", NULL};
        struct svc s;
        svc_start(&s, "wh_vectors", env);
        const char *body = cJSON_GetObjectItemCaseSensitive(v, "body")->valuestring;
        const char *sig = cJSON_GetObjectItemCaseSensitive(v, "signature")->valuestring;
        char *h1, *h2;
        if (strcmp(version, "v3") == 0) {
            h1 = xasprintf("X-HubSpot-Signature-v3: %s", sig);
            h2 = xasprintf("X-HubSpot-Request-Timestamp: %s",
                           cJSON_GetObjectItemCaseSensitive(v, "timestamp")->valuestring);
        } else {
            h1 = xasprintf("X-HubSpot-Signature: %s", sig);
            h2 = xasprintf("X-HubSpot-Signature-Version: %s", version);
        }
        const char *headers[] = {h1, h2, "Content-Type: application/json", NULL};
        char *resp = NULL;
        int status = svc_post(&s, p, headers, body, strlen(body), &resp);
        bool is_events = body[0] == '[';
        ck_assert_msg(status == (is_events ? 200 : 400), "%s vector: status %d (%s)", version,
                      status, resp);
        free(resp);
        ck_assert_int_eq(svc_events(&s), is_events ? 1 : 0);
        char *changed = xstrdup(body);
        changed[strlen(changed) / 2] ^= 1;
        ck_assert_int_eq(svc_post(&s, p, headers, changed, strlen(changed), &resp), 401);
        free(resp);
        ck_assert_int_eq(svc_events(&s), is_events ? 1 : 0);
        free(changed);
        ck_assert_int_eq(svc_stop(&s), 0);
        free(h1);
        free(h2);
        free(e1);
        free(e2);
        free(only_path);
        free(base);
        checked++;
    }
    ck_assert_int_eq(checked, 7);
    cJSON_Delete(doc);
    free(text);
}
END_TEST

START_TEST(hubspot_payloads_are_stored_once_and_rejections_store_nothing)
{
    struct svc s;
    svc_start(&s, "wh_hs", NULL);
    static const char *const files[] = {"hubspot/webhook-docs-example.json",
                                        "hubspot/webhook-deal-events-captured.json",
                                        "hubspot/webhook-deal-association-captured.json"};
    char *resp = NULL;
    for (int i = 0; i < 3; i++) {
        char *path = itest_fixture_path(files[i]);
        char *body = itest_read_file(path, NULL);
        free(path);
        ck_assert_int_eq(svc_post_hubspot(&s, body, &resp), 200);
        free(resp);
        /* Redelivered: acknowledged, stored once (the split drops the duplicates). */
        long long before = svc_events(&s);
        ck_assert_int_eq(svc_post_hubspot(&s, body, &resp), 200);
        free(resp);
        ck_assert_int_eq(svc_events(&s), before);
        free(body);
    }
    ck_assert_int_eq(svc_events(&s), 5);
    ck_assert_int_eq(itest_db_scalar(s.db, "SELECT count(*) FROM sync_event WHERE event_type ="
                                           " 'deal.associationChange' AND record_id ="
                                           " '64058987777'"),
                     1);
    /* Other object types: acknowledged, counted, not stored; an invalid event beside them is
     * set aside and counted. The answer holds every count as a JSON integer. */
    ck_assert_int_eq(svc_post_hubspot(&s,
                                      "[{\"subscriptionType\":\"ticket.creation\",\"objectId\":1,"
                                      "\"eventId\":77,\"portalId\":1},{\"subscriptionType\":"
                                      "\"deal.creation\",\"eventId\":78,\"portalId\":1}]",
                                      &resp),
                     200);
    ck_assert_str_eq(resp, "{\"received\":2,\"stored\":0,\"ignored\":1,\"rejected\":1}");
    free(resp);

    /* Bad signature, stale timestamp, missing signature: 401. */
    const char *body = "[{\"subscriptionType\":\"deal.creation\",\"objectId\":9,\"eventId\":9,"
                       "\"portalId\":1}]";
    const char *bad_sig[] = {"X-HubSpot-Signature-v3: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                             "X-HubSpot-Request-Timestamp: 1", NULL};
    ck_assert_int_eq(svc_post(&s, "/webhooks/hubspot", bad_sig, body, strlen(body), &resp), 401);
    free(resp);
    char *uri = xasprintf("%s/webhooks/hubspot", s.base);
    char ts[32];
    snprintf(ts, sizeof(ts), "%lld", (long long)(util_now_ms() - 301000));
    char *sig = webhook_hs_sign_v3(SVC_HS_SECRET, "POST", uri, body, strlen(body), ts);
    char *h1 = xasprintf("X-HubSpot-Signature-v3: %s", sig);
    char *h2 = xasprintf("X-HubSpot-Request-Timestamp: %s", ts);
    const char *stale[] = {h1, h2, NULL};
    ck_assert_int_eq(svc_post(&s, "/webhooks/hubspot", stale, body, strlen(body), &resp), 401);
    ck_assert_ptr_nonnull(strstr(resp, "5 minutes"));
    free(resp);
    ck_assert_int_eq(svc_post(&s, "/webhooks/hubspot", NULL, body, strlen(body), &resp), 401);
    free(resp);

    /* Signed but malformed: 400 with a JSON error naming the problem. */
    static const struct {
        const char *body;
        const char *why;
    } bad[] = {
        {"not json", "not valid JSON"},
        {"{\"a\":1}", "not a JSON array"},
        {"[{\"objectId\":1,\"eventId\":1,\"portalId\":1}]", "no subscriptionType"},
        {"[{\"subscriptionType\":\"deal.creation\",\"eventId\":1,\"portalId\":1}]", "no objectId"}};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(svc_post_hubspot(&s, bad[i].body, &resp), 400);
        cJSON *err = cJSON_Parse(resp);
        ck_assert_ptr_nonnull(err);
        ck_assert_ptr_nonnull(
            strstr(cJSON_GetObjectItemCaseSensitive(err, "error")->valuestring, bad[i].why));
        cJSON_Delete(err);
        free(resp);
    }
    ck_assert_int_eq(svc_events(&s), 5);
    free(h1);
    free(h2);
    free(sig);
    free(uri);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

START_TEST(database_unavailable_gets_503_then_recovers)
{
    struct svc s;
    svc_start(&s, "wh_503", NULL);
    size_t len;
    char *body = sf_fixture("salesforce/outbound-opportunity-api47-oneline.xml", &len);
    char *resp = NULL;
    /* Take the database away from dealsync: no new connections, existing ones ended. */
    PGconn *admin = itest_db_connect(itest_env("DATABASE_ADMIN_URL"));
    char *sql = xasprintf("ALTER DATABASE %s ALLOW_CONNECTIONS false", PQdb(s.db));
    itest_db_exec(admin, sql);
    free(sql);
    sql = xasprintf("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'",
                    PQdb(s.db));
    itest_db_exec(admin, sql);
    free(sql);
    ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce", soap_headers, body, len, &resp), 503);
    ck_assert_ptr_nonnull(strstr(resp, "<faultcode>soapenv:Server</faultcode>"));
    free(resp);
    ck_assert_int_eq(svc_post_hubspot(&s,
                                      "[{\"subscriptionType\":\"deal.creation\",\"objectId\":9,"
                                      "\"eventId\":9,\"portalId\":1}]",
                                      &resp),
                     503);
    free(resp);
    char *ready = xasprintf("%s/readyz", s.base);
    ck_assert_int_eq(itest_http("GET", ready, NULL, NULL, 0, NULL, NULL), 503);
    /* Back: the same message is accepted and stored once. */
    sql = xasprintf("ALTER DATABASE %s ALLOW_CONNECTIONS true", PQdb(s.db));
    itest_db_exec(admin, sql);
    free(sql);
    PQfinish(admin);
    ck_assert_int_eq(svc_post(&s, "/webhooks/salesforce", soap_headers, body, len, &resp), 200);
    free(resp);
    ck_assert_int_eq(itest_http("GET", ready, NULL, NULL, 0, NULL, NULL), 200);
    PQfinish(s.db);
    s.db = itest_db_connect(s.db_url);
    ck_assert_int_eq(svc_events(&s), 1);
    free(ready);
    free(body);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

static bool has_duration_metric(void *url)
{
    char *resp = NULL;
    bool has =
        itest_http("GET", url, NULL, NULL, 0, &resp, NULL) == 200 && resp &&
        strstr(resp, "dealsync_http_request_duration_seconds_bucket{route=\"webhook_hubspot\"");
    free(resp);
    return has;
}

static bool has_stored_metric(void *url)
{
    char *resp = NULL;
    bool has = itest_http("GET", url, NULL, NULL, 0, &resp, NULL) == 200 && resp &&
               strstr(resp, "dealsync_webhook_events_stored_total{source=\"hubspot\"} 1");
    free(resp);
    return has;
}

START_TEST(health_readiness_and_metrics)
{
    struct svc s;
    svc_start(&s, "wh_health", NULL);
    char *url = xasprintf("%s/healthz", s.base);
    char *resp = NULL;
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, &resp, NULL), 200);
    free(resp);
    free(url);
    url = xasprintf("%s/readyz", s.base);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, &resp, NULL), 200);
    ck_assert_str_eq(resp, "{\"status\":\"ready\"}");
    free(resp);
    free(url);
    ck_assert_int_eq(svc_post_hubspot(&s,
                                      "[{\"subscriptionType\":\"deal.creation\",\"objectId\":9,"
                                      "\"eventId\":9,\"portalId\":1}]",
                                      &resp),
                     200);
    free(resp);
    ck_assert_int_eq(svc_post(&s, "/webhooks/hubspot", NULL, "[]", 2, &resp), 401);
    free(resp);
    url = xasprintf("%s/metrics", s.base);
    /* A request's duration is recorded when MHD reports it complete, which may come after its
     * client already has the answer: wait for it rather than read once. */
    ck_assert(itest_wait_for(has_duration_metric, url, 5000));
    /* The splitter counts what it stored just after its commit. */
    ck_assert(itest_wait_for(has_stored_metric, url, 5000));
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, &resp, NULL), 200);
    ck_assert_ptr_nonnull(
        strstr(resp, "dealsync_webhook_events_stored_total{source=\"hubspot\"} 1"));
    ck_assert_ptr_nonnull(strstr(resp, "dealsync_inbox_pending 0\n"));
    ck_assert_ptr_nonnull(strstr(
        resp,
        "dealsync_webhook_events_rejected_total{source=\"hubspot\",reason=\"bad_signature\"} 1"));
    ck_assert_ptr_nonnull(strstr(resp, "dealsync_queue_events{state=\"pending\"} 1"));
    ck_assert_ptr_nonnull(
        strstr(resp, "dealsync_http_request_duration_seconds_bucket{route=\"webhook_hubspot\""));
    free(resp);
    free(url);
    /* Unknown path and wrong method. */
    url = xasprintf("%s/nope", s.base);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, NULL), 404);
    free(url);
    url = xasprintf("%s/webhooks/hubspot", s.base);
    ck_assert_int_eq(itest_http("GET", url, NULL, NULL, 0, NULL, NULL), 405);
    free(url);
    ck_assert_int_eq(svc_stop(&s), 0);
}
END_TEST

Suite *suite_webhooks(void);
Suite *suite_webhooks(void)
{
    Suite *s = suite_create("webhooks");
    TCase *tc = tcase_create("http");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, salesforce_fixtures_are_acked_after_commit_and_stored_once);
    tcase_add_test(tc, salesforce_rejections_store_nothing);
    tcase_add_test(tc, oversized_bodies_get_413);
    tcase_add_test(tc, hubspot_signature_vectors_through_http);
    tcase_add_test(tc, hubspot_payloads_are_stored_once_and_rejections_store_nothing);
    tcase_add_test(tc, database_unavailable_gets_503_then_recovers);
    tcase_add_test(tc, health_readiness_and_metrics);
    suite_add_tcase(s, tc);
    return s;
}
