/* sf_outbound.c - outbound messages as Salesforce sends them (reference section 1): every
 * WorkflowOutboundMessage registered through the Tooling API is treated as called by a
 * record-triggered flow on create and update. Notifications are queued per (message, record),
 * rendered with the record's latest state when sent, batched up to 100 per SOAP message, retried
 * with exponential back-off until acknowledged or older than the retention window. Deletes send
 * nothing. */
#include "sf_outbound.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "sandbox.h"
#include "util.h"

#define OM_BATCH_MAX 100
#define OM_NS "http://soap.sforce.com/2005/09/outbound"

struct om_entry {
    char notification_id[19];
    char action_id[19]; /* the WorkflowOutboundMessage */
    char record_id[19];
    int64_t queued_ms;
    int64_t due_ms;
    int attempts;
    bool is_in_flight;
    bool is_resend; /* a duplicate of an acknowledged notification (delivery fault) */
};

static struct {
    struct om_entry *entries;
    size_t count;
    size_t cap;
    int64_t delivered;
    int64_t failed_attempts;
    int64_t dropped;
    int64_t duplicates_sent;
} q;

static const char *str_item(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void remove_at(size_t i)
{
    memmove(&q.entries[i], &q.entries[i + 1], (q.count - i - 1) * sizeof(q.entries[0]));
    q.count--;
}

static struct om_entry *append(void)
{
    if (q.count == q.cap) {
        q.cap = q.cap ? q.cap * 2 : 64;
        q.entries = xrealloc(q.entries, q.cap * sizeof(q.entries[0]));
    }
    struct om_entry *e = &q.entries[q.count++];
    memset(e, 0, sizeof(*e));
    return e;
}

void sf_outbound_changed(const struct sf_object *obj, const struct sf_record *rec,
                         const char *as_user)
{
    struct sf_object *oms = sf_store_object("WorkflowOutboundMessage", true);
    int64_t now = sb_now_ms();
    if (obj->is_tooling || !oms)
        return;
    /* Salesforce lets a flow skip changes made by the integration user (loop prevention). */
    if (sb_setting_int("sf_om_skip_integration_user", 0) &&
        strcmp(as_user, sf_store_api_user_id()) == 0)
        return;
    for (size_t i = 0; i < oms->record_count; i++) {
        const struct sf_record *om = oms->records[i];
        const char *entity = str_item(om->values, "EntityDefinitionId");
        if (om->is_deleted || !entity || strcmp(entity, obj->name) != 0)
            continue;
        struct om_entry *e = NULL;
        for (size_t j = 0; j < q.count && !e; j++)
            if (!q.entries[j].is_in_flight && strcmp(q.entries[j].action_id, om->id) == 0 &&
                strcmp(q.entries[j].record_id, rec->id) == 0)
                e = &q.entries[j];
        /* A queued notification for the same record is superseded: only the latest state is
         * sent, under a fresh notification id (the old id is never delivered again, so a
         * listener that deduplicates on ids cannot drop the newer data). */
        if (!e) {
            e = append();
            memcpy(e->action_id, om->id, 19);
            memcpy(e->record_id, rec->id, 19);
        }
        sf_id_new("04l", e->notification_id);
        e->queued_ms = now;
        e->due_ms = now + sb_setting_int("sf_om_batch_delay_ms", 20);
        e->attempts = 0;
        e->is_resend = false;
    }
}

void sf_outbound_deleted(const char *id)
{
    for (size_t i = q.count; i-- > 0;)
        if (strcmp(q.entries[i].record_id, id) == 0)
            remove_at(i);
}

void sf_outbound_clear(void)
{
    free(q.entries);
    memset(&q, 0, sizeof(q));
}

cJSON *sf_outbound_state(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(o, "queued");
    for (size_t i = 0; i < q.count; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "notificationId", q.entries[i].notification_id);
        cJSON_AddStringToObject(e, "actionId", q.entries[i].action_id);
        cJSON_AddStringToObject(e, "recordId", q.entries[i].record_id);
        cJSON_AddNumberToObject(e, "attempts", q.entries[i].attempts);
        cJSON_AddBoolToObject(e, "inFlight", q.entries[i].is_in_flight);
        cJSON_AddItemToArray(list, e);
    }
    cJSON_AddNumberToObject(o, "delivered", (double)q.delivered);
    cJSON_AddNumberToObject(o, "failedAttempts", (double)q.failed_attempts);
    cJSON_AddNumberToObject(o, "dropped", (double)q.dropped);
    cJSON_AddNumberToObject(o, "duplicatesSent", (double)q.duplicates_sent);
    return o;
}

/* ---- rendering --------------------------------------------------------------------------- */

/* Numbers as Java prints doubles for the usual magnitudes: 120000.0, 45000.5. */
static void append_number(struct buf *b, enum sf_type type, double v)
{
    char text[64];
    if (type == SF_INT) {
        snprintf(text, sizeof(text), "%lld", (long long)v);
    } else {
        snprintf(text, sizeof(text), "%.15g", v);
        if (!strpbrk(text, ".e"))
            strcat(text, ".0");
    }
    buf_append_str(b, text);
}

static void append_value(struct buf *b, const struct sf_field *f, const cJSON *v)
{
    char ts[32];
    int64_t ms;
    if (cJSON_IsBool(v))
        buf_append_str(b, cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v))
        append_number(b, f->type, v->valuedouble);
    else if (f->type == SF_DATETIME && cJSON_IsString(v) && sf_time_parse(v->valuestring, &ms)) {
        sf_time_xml(ms, ts);
        buf_append_str(b, ts);
    } else if (cJSON_IsString(v))
        buf_append_markup(b, v->valuestring);
}

static int cmp_names(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

static void render_sobject(struct buf *b, const struct sf_object *obj, const struct sf_record *rec,
                           const cJSON *fields)
{
    const char *names[256];
    size_t n = 0;
    bool send_nil = sb_setting_int("sf_om_send_nil", 0) != 0;
    for (const cJSON *f = fields ? fields->child : NULL; f && n < 256; f = f->next)
        if (cJSON_IsString(f) && strcasecmp(f->valuestring, "Id") != 0)
            names[n++] = f->valuestring;
    qsort(names, n, sizeof(names[0]), cmp_names);
    buf_printf(
        b, "    <sObject xsi:type=\"sf:%s\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">\n",
        obj->name);
    buf_printf(b, "     <sf:Id>%s</sf:Id>\n", rec->id);
    for (size_t i = 0; i < n; i++) {
        const struct sf_field *f = sf_store_field(obj, names[i]);
        if (!f)
            continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec->values, f->name);
        if (!v || cJSON_IsNull(v)) {
            /* UNVERIFIED (reference 1.4): real captures omit nulls; sf_om_send_nil=1 sends
             * xsi:nil instead. */
            if (send_nil)
                buf_printf(b, "     <sf:%s xsi:nil=\"true\"/>\n", f->name);
            continue;
        }
        buf_printf(b, "     <sf:%s>", f->name);
        append_value(b, f, v);
        buf_printf(b, "</sf:%s>\n", f->name);
    }
    buf_append_str(b, "    </sObject>\n");
}

/* The SOAP body for entries idx[0..n) (all for one outbound message). Caller frees. */
static char *render(const struct sf_record *om, const size_t *idx, size_t n)
{
    struct buf b;
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(om->values, "Metadata");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(md, "fields");
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(om->values, "ApiVersion");
    const char *org = sf_store_org_id();
    const char *base = sf_store_instance_url();
    char version[16];
    snprintf(version, sizeof(version), "%.1f", cJSON_IsNumber(api) ? api->valuedouble : 47.0);
    buf_init(&b, 0);
    buf_append_str(&b,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""
                   " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\""
                   " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
                   " <soapenv:Body>\n"
                   "  <notifications xmlns=\"" OM_NS "\">\n");
    buf_printf(&b, "   <OrganizationId>%s</OrganizationId>\n", org);
    buf_printf(&b, "   <ActionId>%s</ActionId>\n", om->id);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(md, "includeSessionId"))) {
        const char *user = str_item(om->values, "IntegrationUserId");
        const char *token = sf_token_issue(user ? user : sf_store_api_user_id());
        buf_printf(&b, "   <SessionId>%s</SessionId>\n", token);
    } else {
        buf_append_str(&b, "   <SessionId xsi:nil=\"true\"/>\n");
    }
    buf_printf(&b, "   <EnterpriseUrl>%s/services/Soap/c/%s/%.15s</EnterpriseUrl>\n", base, version,
               org);
    buf_printf(&b, "   <PartnerUrl>%s/services/Soap/u/%s/%.15s</PartnerUrl>\n", base, version, org);
    for (size_t i = 0; i < n; i++) {
        const struct om_entry *e = &q.entries[idx[i]];
        struct sf_object *obj = NULL;
        const struct sf_record *rec = sf_store_find(e->record_id, &obj);
        if (!rec)
            continue;
        buf_append_str(&b, "   <Notification>\n");
        buf_printf(&b, "    <Id>%s</Id>\n", e->notification_id);
        render_sobject(&b, obj, rec, fields);
        buf_append_str(&b, "   </Notification>\n");
    }
    buf_append_str(&b, "  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n");
    return buf_steal(&b);
}

/* ---- delivery ---------------------------------------------------------------------------- */

/* True when the answer is a SOAP notificationsResponse with Ack true (namespace-aware). */
static bool is_ack(const char *body)
{
    if (!body || !*body)
        return false;
    xmlDocPtr doc = xmlReadMemory(body, (int)strlen(body), "ack.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    bool ok = false;
    xmlNodePtr stack[64];
    int top = 0;
    if (!doc)
        return false;
    if (xmlDocGetRootElement(doc))
        stack[top++] = xmlDocGetRootElement(doc);
    while (top > 0 && !ok) {
        xmlNodePtr n = stack[--top];
        for (xmlNodePtr c = n; c; c = c->next) {
            if (c->type != XML_ELEMENT_NODE)
                continue;
            if (xmlStrcmp(c->name, (const xmlChar *)"Ack") == 0 && c->ns &&
                xmlStrcmp(c->ns->href, (const xmlChar *)OM_NS) == 0) {
                xmlChar *text = xmlNodeGetContent(c);
                const char *t = (const char *)text;
                while (t && (*t == ' ' || *t == '\n' || *t == '\t' || *t == '\r'))
                    t++;
                ok = t && (strncmp(t, "true", 4) == 0 || strncmp(t, "1", 1) == 0);
                xmlFree(text);
                break;
            }
            if (c->children && top < 64)
                stack[top++] = c->children;
        }
    }
    xmlFreeDoc(doc);
    return ok;
}

static int64_t backoff_ms(int attempts)
{
    int64_t first = sb_setting_int("sf_om_retry_first_ms", 100);
    int64_t factor = sb_setting_int("sf_om_retry_factor", 2);
    int64_t cap = sb_setting_int("sf_om_retry_cap_ms", 2000);
    int64_t d = first;
    for (int i = 1; i < attempts && d < cap; i++)
        d *= factor < 1 ? 1 : factor;
    return d < cap ? d : cap;
}

static struct om_entry *find_notification(const char *id)
{
    for (size_t i = 0; i < q.count; i++)
        if (strcmp(q.entries[i].notification_id, id) == 0 && q.entries[i].is_in_flight)
            return &q.entries[i];
    return NULL;
}

static bool superseded(const struct om_entry *e)
{
    for (size_t i = 0; i < q.count; i++)
        if (&q.entries[i] != e && !q.entries[i].is_in_flight &&
            strcmp(q.entries[i].action_id, e->action_id) == 0 &&
            strcmp(q.entries[i].record_id, e->record_id) == 0)
            return true;
    return false;
}

void sb_sf_tick(void)
{
    size_t idx[OM_BATCH_MAX];
    char ids[OM_BATCH_MAX][19];
    size_t n = 0;
    char *url = NULL;
    char *body = NULL;
    char *answer = NULL;

    sb_lock();
    int64_t now = sb_now_ms();
    int64_t retention = sb_setting_int("sf_om_retention_ms", 86400000);
    for (size_t i = q.count; i-- > 0;)
        if (!q.entries[i].is_in_flight && now - q.entries[i].queued_ms > retention) {
            q.dropped++;
            remove_at(i);
        }
    struct sf_object *oms = sf_store_object("WorkflowOutboundMessage", true);
    const struct sf_record *om = NULL;
    int64_t batch_window = sb_setting_int("sf_om_batch_delay_ms", 20);
    for (size_t i = 0; i < q.count && n < OM_BATCH_MAX; i++) {
        struct om_entry *e = &q.entries[i];
        /* Notifications queued within one batch window of the first due one travel with it. */
        if (e->is_in_flight || e->due_ms > (om ? now + batch_window : now))
            continue;
        if (sb_random() < sb_setting_double(SB_SETTING_DROP_RATE, 0.0)) {
            /* Given up as after 24 hours of failed attempts: the change is never reported. */
            q.dropped++;
            remove_at(i);
            i--;
            continue;
        }
        if (!om) {
            struct sf_object *owner = NULL;
            om = sf_store_find(e->action_id, &owner);
            if (!om || owner != oms || om->is_deleted) {
                /* The outbound message was deleted: its queue goes with it. */
                q.dropped++;
                remove_at(i);
                i--;
                om = NULL;
                continue;
            }
        }
        if (strcmp(e->action_id, om->id) != 0)
            continue;
        idx[n++] = i;
    }
    if (n > 1 && sb_random() < sb_setting_double(SB_SETTING_REORDER_RATE, 0.0)) {
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = (size_t)(sb_random() * (double)(i + 1)) % (i + 1);
            size_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
    }
    if (n > 0) {
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(om->values, "Metadata");
        url = xstrdup(str_item(md, "endpointUrl"));
        body = render(om, idx, n);
        for (size_t i = 0; i < n; i++) {
            q.entries[idx[i]].is_in_flight = true;
            memcpy(ids[i], q.entries[idx[i]].notification_id, 19);
        }
    }
    int timeout = (int)sb_setting_int("sf_om_timeout_ms", 60000);
    sb_unlock();
    if (n == 0)
        return;

    static const char *const headers[] = {"Content-Type: text/xml; charset=utf-8",
                                          "SOAPAction: \"\"", NULL};
    int status = sb_http_post(url, headers, body, strlen(body), timeout, &answer);
    bool ok = status == 200 && is_ack(answer);
    sb_log_delivery("salesforce", url, status, body, strlen(body));

    sb_lock();
    now = sb_now_ms();
    retention = sb_setting_int("sf_om_retention_ms", 86400000);
    for (size_t i = 0; i < n; i++) {
        struct om_entry *e = find_notification(ids[i]);
        if (!e)
            continue; /* the record was deleted meanwhile */
        e->is_in_flight = false;
        if (ok) {
            q.delivered++;
            /* At-least-once: sometimes Salesforce sends an acknowledged notification again. */
            if (!e->is_resend && sb_random() < sb_setting_double(SB_SETTING_DUPLICATE_RATE, 0.0)) {
                q.duplicates_sent++;
                e->is_resend = true;
                e->due_ms = now + sb_setting_int("sf_om_batch_delay_ms", 20);
            } else {
                remove_at((size_t)(e - q.entries));
            }
            continue;
        }
        q.failed_attempts++;
        e->attempts++;
        if (superseded(e)) {
            /* The record changed meanwhile: the newer notification carries its latest state. */
            remove_at((size_t)(e - q.entries));
        } else if (now - e->queued_ms > retention) {
            q.dropped++;
            remove_at((size_t)(e - q.entries));
        } else {
            e->due_ms = now + backoff_ms(e->attempts);
        }
    }
    sb_unlock();
    free(answer);
    free(body);
    free(url);
}
