/* test_webhook_sf.c - outbound message parsing: every real capture in tests/fixtures/salesforce,
 * and each way a message can be refused. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "util.h"
#include "webhook_sf.h"

#define NOW 1790000000000LL

static const struct {
    const char *file;
    const char *org;
    const char *type;
    const char *record_id;
    size_t count;
} accepted[] = {
    {"salesforce/outbound-opportunity-api47-oneline.xml", "00D7F00000107XsUAI", "Opportunity", NULL,
     1},
    {"salesforce/outbound-opportunity-api23-15char-ids.xml", "00DQ0000000EB93", "Opportunity",
     "006Q0000009N3gfIAC", 1},
    {"salesforce/outbound-opportunity-many-fields.xml", NULL, "Opportunity", NULL, 1},
};

START_TEST(real_captures_are_accepted)
{
    size_t len;
    char *body = fixture_read(accepted[_i].file, &len);
    struct webhook_sf_message msg = {0};
    char *why = NULL;
    enum err rc = webhook_sf_parse(body, len, accepted[_i].org, NOW, &msg, &why);
    ck_assert_msg(rc == ERR_OK, "%s: %s", accepted[_i].file, why ? why : "");
    ck_assert_uint_eq(msg.count, accepted[_i].count);
    ck_assert_str_eq(msg.notifications[0].object_type, accepted[_i].type);
    ck_assert_uint_eq(strlen(msg.notifications[0].record_id), 18);
    if (accepted[_i].record_id)
        ck_assert_str_eq(msg.notifications[0].record_id, accepted[_i].record_id);
    /* The session id is a credential: it is never kept. */
    char *json = cJSON_PrintUnformatted(msg.notifications[0].payload);
    ck_assert_ptr_null(strstr(json, "SessionId"));
    ck_assert_ptr_null(strstr(json, "00D!"));
    free(json);
    webhook_sf_message_clear(&msg);
    free(body);
}
END_TEST

START_TEST(fields_present_absent_and_nil)
{
    const char *body =
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""
        " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>"
        "<notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">"
        "<OrganizationId>00D7F00000107XsUAI</OrganizationId><ActionId>04kV0000000CaSPIA0</ActionId>"
        "<SessionId xsi:nil=\"true\"/><EnterpriseUrl>x</EnterpriseUrl><PartnerUrl>y</PartnerUrl>"
        "<Notification><Id>04lV0000001ALshIAG</Id>"
        "<sObject xsi:type=\"o:Opportunity\" xmlns:o=\"urn:sobject.enterprise.soap.sforce.com\">"
        "<o:Id>006Q0000009N3gf</o:Id><o:Amount>120000.0</o:Amount>"
        "<o:Description xsi:nil=\"true\"/>"
        "<o:SystemModstamp>2020-05-09T03:04:32.000Z</o:SystemModstamp>"
        "</sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>";
    struct webhook_sf_message msg = {0};
    char *why = NULL;
    ck_assert_int_eq(webhook_sf_parse(body, strlen(body), "00D7F00000107Xs", NOW, &msg, &why),
                     ERR_OK);
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(msg.notifications[0].payload, "fields");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(fields, "Amount")->valuestring, "120000.0");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(fields, "Description")));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(fields, "Name"));
    /* The prefix is arbitrary: the namespace decides. SystemModstamp gives the time. */
    ck_assert_int_eq(msg.notifications[0].occurred_at_ms, 1588993472000LL);
    webhook_sf_message_clear(&msg);
}
END_TEST

static const struct {
    const char *name;
    const char *body;
    enum err rc;
    const char *why;
} refused[] = {
    {"not xml", "hello", ERR_INVALID, "malformed XML"},
    {"truncated",
     "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>",
     ERR_INVALID, "malformed XML"},
    {"doctype", "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;</x>", ERR_INVALID,
     "document type declarations are not allowed"},
    {"xxe", "<!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><foo>&xxe;</foo>",
     ERR_INVALID, "document type"},
    {"not soap", "<notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\"/>", ERR_INVALID,
     "not a SOAP 1.1 Envelope"},
    {"no notifications",
     "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body/></e:Envelope>",
     ERR_INVALID, "no notifications element"},
    {"no org",
     "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body><notifications "
     "xmlns=\"http://soap.sforce.com/2005/09/outbound\"><ActionId>04kV0000000CaSPIA0</ActionId>"
     "</notifications></e:Body></e:Envelope>",
     ERR_INVALID, "no OrganizationId"},
    {"no notification",
     "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body><notifications "
     "xmlns=\"http://soap.sforce.com/2005/09/outbound\"><OrganizationId>00D7F00000107XsUAI"
     "</OrganizationId><ActionId>04kV0000000CaSPIA0</ActionId></notifications></e:Body>"
     "</e:Envelope>",
     ERR_INVALID, "no Notification element"},
    {"other org",
     "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body><notifications "
     "xmlns=\"http://soap.sforce.com/2005/09/outbound\"><OrganizationId>00DQ0000000EB93"
     "</OrganizationId><ActionId>04kV0000000CaSPIA0</ActionId></notifications></e:Body>"
     "</e:Envelope>",
     ERR_FORBIDDEN, "not this org"},
};

START_TEST(bad_messages_are_refused_with_a_reason)
{
    struct webhook_sf_message msg = {0};
    char *why = NULL;
    enum err rc = webhook_sf_parse(refused[_i].body, strlen(refused[_i].body), "00D7F00000107XsUAI",
                                   NOW, &msg, &why);
    ck_assert_msg(rc == refused[_i].rc, "%s: got %d (%s)", refused[_i].name, rc, why ? why : "");
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strstr(why, refused[_i].why), "%s: reason '%s'", refused[_i].name, why);
    ck_assert_uint_eq(msg.count, 0);
    free(why);
}
END_TEST

START_TEST(placeholder_ids_are_refused_clearly)
{
    size_t len;
    char *body = fixture_read("salesforce/outbound-contact-placeholders.xml", &len);
    struct webhook_sf_message msg = {0};
    char *why = NULL;
    ck_assert_int_eq(webhook_sf_parse(body, len, NULL, NOW, &msg, &why), ERR_INVALID);
    ck_assert_str_eq(why, "OrganizationId 'someOrganizationId' is not a Salesforce id");
    free(why);
    /* Structure only: with real ids the same message is accepted as a Contact. */
    static const char *const swaps[][2] = {{"someOrganizationId", "00D7F00000107XsUAI"},
                                           {"SomeActionId", "04kV0000000CaSP"},
                                           {"notificationID", "04lV0000001ALsh"},
                                           {"aContactId", "003Q000000Sv0aa"}};
    char *fixed = strdup(body);
    for (size_t i = 0; i < 4; i++) {
        char *p = strstr(fixed, swaps[i][0]);
        ck_assert_ptr_nonnull(p);
        char *next =
            xasprintf("%.*s%s%s", (int)(p - fixed), fixed, swaps[i][1], p + strlen(swaps[i][0]));
        free(fixed);
        fixed = next;
    }
    ck_assert_int_eq(webhook_sf_parse(fixed, strlen(fixed), NULL, NOW, &msg, &why), ERR_OK);
    ck_assert_str_eq(msg.notifications[0].object_type, "Contact");
    webhook_sf_message_clear(&msg);
    free(fixed);
    free(body);
}
END_TEST

START_TEST(more_than_100_notifications_are_refused)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\""
                       " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><e:Body>"
                       "<notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">"
                       "<OrganizationId>00D7F00000107XsUAI</OrganizationId>"
                       "<ActionId>04kV0000000CaSPIA0</ActionId>");
    for (int i = 0; i < 101; i++)
        buf_printf(&b,
                   "<Notification><Id>04lV0000001A%03d</Id><sObject xsi:type=\"sf:Account\""
                   " xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\"><sf:Id>001V0000001A%03d"
                   "</sf:Id></sObject></Notification>",
                   i, i);
    buf_append_str(&b, "</notifications></e:Body></e:Envelope>");
    struct webhook_sf_message msg = {0};
    char *why = NULL;
    ck_assert_int_eq(webhook_sf_parse(b.data, b.len, NULL, NOW, &msg, &why), ERR_INVALID);
    ck_assert_str_eq(why, "more than 100 Notification elements");
    free(why);
    buf_clear(&b);
}
END_TEST

START_TEST(token_and_fault)
{
    ck_assert(webhook_sf_token_ok(NULL, NULL, NULL));
    ck_assert(webhook_sf_token_ok("s3cret", "s3cret", NULL));
    ck_assert(webhook_sf_token_ok("s3cret", NULL, "s3cret"));
    ck_assert(!webhook_sf_token_ok("s3cret", "s3cre", NULL));
    ck_assert(!webhook_sf_token_ok("s3cret", NULL, NULL));
    char *f = webhook_sf_fault(false, "bad <id> & more");
    ck_assert_ptr_nonnull(strstr(f, "<faultcode>soapenv:Client</faultcode>"));
    ck_assert_ptr_nonnull(strstr(f, "<faultstring>bad &lt;id&gt; &amp; more</faultstring>"));
    free(f);
}
END_TEST

Suite *suite_webhook_sf(void);
Suite *suite_webhook_sf(void)
{
    Suite *s = suite_create("webhook_sf");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, real_captures_are_accepted, 0, sizeof(accepted) / sizeof(accepted[0]));
    tcase_add_test(tc, fields_present_absent_and_nil);
    tcase_add_loop_test(tc, bad_messages_are_refused_with_a_reason, 0,
                        sizeof(refused) / sizeof(refused[0]));
    tcase_add_test(tc, placeholder_ids_are_refused_clearly);
    tcase_add_test(tc, more_than_100_notifications_are_refused);
    tcase_add_test(tc, token_and_fault);
    suite_add_tcase(s, tc);
    return s;
}
