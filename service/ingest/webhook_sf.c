/* webhook_sf.c - parses Salesforce outbound messages with libxml2, namespace-aware, with the
 * network, DTD loading and entity substitution off, and any DOCTYPE refused outright (SOAP
 * forbids one; it is how XXE and entity-expansion attacks arrive). Stores no SessionId. */
#include "webhook_sf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "hmac.h"
#include "sf_id.h"
#include "util.h"

const char webhook_sf_ack[] =
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"> "
    "<soapenv:Body> <notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\"> "
    "<Ack>true</Ack> </notificationsResponse> </soapenv:Body> </soapenv:Envelope>";

#define NS_SOAP "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_OM "http://soap.sforce.com/2005/09/outbound"
#define NS_SOBJECT "urn:sobject.enterprise.soap.sforce.com"
#define NS_XSI "http://www.w3.org/2001/XMLSchema-instance"

static bool is_elem(const xmlNode *n, const char *ns, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           strcmp((const char *)n->ns->href, ns) == 0 && strcmp((const char *)n->name, name) == 0;
}

static xmlNode *child(const xmlNode *parent, const char *ns, const char *name)
{
    for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
        if (is_elem(c, ns, name))
            return c;
    return NULL;
}

/* Trimmed text content of an element; caller frees. */
static char *text_of(const xmlNode *n)
{
    xmlChar *raw = xmlNodeGetContent(n);
    const char *s = raw ? (const char *)raw : "";
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
        s++;
    size_t len = strlen(s);
    while (len &&
           (s[len - 1] == ' ' || s[len - 1] == '\n' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    char *out = xstrndup(s, len);
    xmlFree(raw);
    return out;
}

static bool is_nil(const xmlNode *n)
{
    xmlChar *nil = xmlGetNsProp(n, (const xmlChar *)"nil", (const xmlChar *)NS_XSI);
    bool yes =
        nil && (strcmp((const char *)nil, "true") == 0 || strcmp((const char *)nil, "1") == 0);
    xmlFree(nil);
    return yes;
}

/* Resolves xsi:type="sf:Opportunity" against the in-scope namespaces. Caller frees. */
static char *sobject_type(xmlDoc *doc, xmlNode *sobj)
{
    xmlChar *qname = xmlGetNsProp(sobj, (const xmlChar *)"type", (const xmlChar *)NS_XSI);
    if (!qname)
        return NULL;
    char *result = NULL;
    const char *colon = strchr((const char *)qname, ':');
    char *prefix =
        colon ? xstrndup((const char *)qname, (size_t)(colon - (const char *)qname)) : NULL;
    const char *local = colon ? colon + 1 : (const char *)qname;
    xmlNs *ns = xmlSearchNs(doc, sobj, (const xmlChar *)prefix);
    if (ns && ns->href && strcmp((const char *)ns->href, NS_SOBJECT) == 0 && *local)
        result = xstrdup(local);
    free(prefix);
    xmlFree(qname);
    return result;
}

/* libxml2 reports some errors (encoding conversion, for one) outside the parser context, and
 * by default prints them to stderr. The calling thread's handlers catch them here instead:
 * the first message becomes the reason in the fault. */
struct xml_errors {
    char first[200];
};

static void on_xml_error(void *arg, xmlErrorPtr e)
{
    struct xml_errors *x = arg;
    if (x->first[0] || !e || !e->message || e->level < XML_ERR_ERROR)
        return;
    snprintf(x->first, sizeof(x->first), "%s", e->message);
    size_t n = strlen(x->first);
    while (n && (x->first[n - 1] == '\n' || x->first[n - 1] == ' '))
        x->first[--n] = '\0';
}

static void on_xml_generic_error(void *arg, const char *fmt, ...)
{
    (void)arg;
    (void)fmt;
}

static enum err fail(char **why, const char *text)
{
    *why = xstrdup(text);
    return ERR_INVALID;
}

/* Where needle first occurs in the first len bytes of hay (memmem is not POSIX). */
static bool contains(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return true;
    return false;
}

static enum err parse_notification(xmlDoc *doc, xmlNode *node, const char *org_id,
                                   const char *action_id, long long now_ms,
                                   struct webhook_sf_notification *out, char **why)
{
    xmlNode *id_node = child(node, NS_OM, "Id");
    xmlNode *sobj = child(node, NS_OM, "sObject");
    if (!id_node)
        return fail(why, "Notification has no Id");
    if (!sobj)
        return fail(why, "Notification has no sObject");
    char *nid = text_of(id_node);
    if (!sf_id_is_valid(nid)) {
        *why = xasprintf("Notification Id '%s' is not a Salesforce id", nid);
        enum err rc = ERR_INVALID;
        free(nid);
        return rc;
    }
    char *type = sobject_type(doc, sobj);
    if (!type) {
        free(nid);
        return fail(why, "sObject has no xsi:type in the sObject namespace");
    }

    cJSON *fields = cJSON_CreateObject();
    long long occurred = now_ms;
    bool have_modstamp = false;
    for (xmlNode *f = sobj->children; f; f = f->next) {
        if (f->type != XML_ELEMENT_NODE || !f->ns || !f->ns->href ||
            strcmp((const char *)f->ns->href, NS_SOBJECT) != 0)
            continue;
        const char *name = (const char *)f->name;
        if (is_nil(f)) {
            cJSON_AddNullToObject(fields, name);
            continue;
        }
        char *value = text_of(f);
        int64_t t;
        if ((strcmp(name, "SystemModstamp") == 0 ||
             (strcmp(name, "LastModifiedDate") == 0 && !have_modstamp)) &&
            util_parse_iso8601_ms(value, &t)) {
            occurred = t;
            have_modstamp = strcmp(name, "SystemModstamp") == 0;
        }
        cJSON_AddStringToObject(fields, name, value);
        free(value);
    }
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(fields, "Id");
    char id18[19];
    if (!cJSON_IsString(rid) || !sf_id_to18(rid->valuestring, id18)) {
        cJSON_Delete(fields);
        free(type);
        *why = xasprintf("sObject of notification %s has no valid Id", nid);
        enum err rc = ERR_INVALID;
        free(nid);
        return rc;
    }

    cJSON *payload = cJSON_CreateObject();
    cJSON_AddStringToObject(payload, "organization_id", org_id);
    cJSON_AddStringToObject(payload, "action_id", action_id);
    cJSON_AddStringToObject(payload, "notification_id", nid);
    cJSON_AddStringToObject(payload, "object_type", type);
    cJSON_AddStringToObject(payload, "record_id", id18);
    cJSON_AddItemToObject(payload, "fields", fields);

    out->notification_id = nid;
    out->object_type = type;
    memcpy(out->record_id, id18, sizeof(id18));
    out->occurred_at_ms = occurred;
    out->payload = payload;
    return ERR_OK;
}

enum err webhook_sf_parse(const char *body, size_t len, const char *expected_org_id,
                          long long now_ms, struct webhook_sf_message *msg, char **why)
{
    xmlParserCtxt *ctxt = NULL;
    xmlDoc *doc = NULL;
    char *org = NULL;
    char *action = NULL;
    struct webhook_sf_message result = {0};
    enum err rc = ERR_INVALID;
    *why = NULL;

    if (len == 0) {
        rc = fail(why, "empty body: expected a SOAP notifications message");
        goto out;
    }
    /* A DOCTYPE can only stand in the prolog, but refusing the string anywhere is simpler and
     * loses nothing: Salesforce never sends one. */
    if (contains(body, len, "<!DOCTYPE")) {
        rc = fail(why, "document type declarations are not allowed");
        goto out;
    }
    if (len > INT_MAX) {
        rc = fail(why, "body too large");
        goto out;
    }
    struct xml_errors errors = {{0}};
    xmlSetStructuredErrorFunc(&errors, on_xml_error);
    xmlSetGenericErrorFunc(NULL, on_xml_generic_error);
    ctxt = xmlNewParserCtxt();
    doc = xmlCtxtReadMemory(ctxt, body, (int)len, "notifications.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlSetStructuredErrorFunc(NULL, NULL);
    xmlSetGenericErrorFunc(NULL, NULL);
    if (!doc || errors.first[0]) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        char *m = xstrdup(errors.first[0]   ? errors.first
                          : e && e->message ? e->message
                                            : "unknown error");
        size_t n = strlen(m);
        while (n && m[n - 1] == '\n')
            m[--n] = '\0';
        *why = xasprintf("malformed XML: %s", m);
        free(m);
        goto out;
    }
    if (doc->intSubset || doc->extSubset) {
        rc = fail(why, "document type declarations are not allowed");
        goto out;
    }
    xmlNode *env = xmlDocGetRootElement(doc);
    if (!is_elem(env, NS_SOAP, "Envelope")) {
        rc = fail(why, "root element is not a SOAP 1.1 Envelope");
        goto out;
    }
    xmlNode *soap_body = child(env, NS_SOAP, "Body");
    xmlNode *notes = child(soap_body, NS_OM, "notifications");
    if (!soap_body || !notes) {
        rc = fail(why, "SOAP Body has no notifications element in the outbound namespace");
        goto out;
    }
    xmlNode *org_node = child(notes, NS_OM, "OrganizationId");
    xmlNode *action_node = child(notes, NS_OM, "ActionId");
    if (!org_node || !action_node) {
        rc = fail(why, org_node ? "notifications has no ActionId"
                                : "notifications has no OrganizationId");
        goto out;
    }
    org = text_of(org_node);
    action = text_of(action_node);
    if (!sf_id_to18(org, result.organization_id)) {
        *why = xasprintf("OrganizationId '%s' is not a Salesforce id", org);
        goto out;
    }
    if (!sf_id_is_valid(action)) {
        *why = xasprintf("ActionId '%s' is not a Salesforce id", action);
        goto out;
    }
    if (expected_org_id && strncmp(result.organization_id, expected_org_id, 15) != 0) {
        *why = xstrdup("OrganizationId is not this org's");
        rc = ERR_FORBIDDEN;
        goto out;
    }

    size_t count = 0;
    for (xmlNode *c = notes->children; c; c = c->next)
        if (is_elem(c, NS_OM, "Notification"))
            count++;
    if (count == 0 || count > WEBHOOK_SF_MAX_NOTIFICATIONS) {
        rc = fail(why, count ? "more than 100 Notification elements" : "no Notification element");
        goto out;
    }
    result.notifications = xcalloc(count, sizeof(*result.notifications));
    for (xmlNode *c = notes->children; c; c = c->next) {
        if (!is_elem(c, NS_OM, "Notification"))
            continue;
        rc = parse_notification(doc, c, result.organization_id, action, now_ms,
                                &result.notifications[result.count], why);
        if (rc != ERR_OK)
            goto out;
        result.count++;
    }
    *msg = result;
    memset(&result, 0, sizeof(result));
    rc = ERR_OK;
out:
    webhook_sf_message_clear(&result);
    free(action);
    free(org);
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return rc;
}

void webhook_sf_message_clear(struct webhook_sf_message *msg)
{
    if (!msg)
        return;
    for (size_t i = 0; i < msg->count; i++) {
        free(msg->notifications[i].notification_id);
        free(msg->notifications[i].object_type);
        cJSON_Delete(msg->notifications[i].payload);
    }
    free(msg->notifications);
    memset(msg, 0, sizeof(*msg));
}

bool webhook_sf_token_ok(const char *token, const char *query_token, const char *basic_password)
{
    if (!token)
        return true;
    bool ok = false;
    if (query_token && hmac_equal(query_token, token))
        ok = true;
    if (basic_password && hmac_equal(basic_password, token))
        ok = true;
    return ok;
}

char *webhook_sf_fault(bool is_server, const char *text)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                   "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
                   "<soapenv:Body><soapenv:Fault><faultcode>");
    buf_append_str(&b, is_server ? "soapenv:Server" : "soapenv:Client");
    buf_append_str(&b, "</faultcode><faultstring>");
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '<':
            buf_append_str(&b, "&lt;");
            break;
        case '>':
            buf_append_str(&b, "&gt;");
            break;
        case '&':
            buf_append_str(&b, "&amp;");
            break;
        case '"':
            buf_append_str(&b, "&quot;");
            break;
        default:
            buf_append(&b, p, 1);
        }
    }
    buf_append_str(&b, "</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>");
    return buf_steal(&b);
}
