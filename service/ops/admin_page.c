/* admin_page.c - see admin_page.h. Sections: settings and queue, the last 24 hours by direction,
 * problems by type, dead letters (Retry one, Retry all of a type), record search with each
 * record's history (Resync). Element ids are stable (tests and scripts find them). */
#include "admin_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_status.h"
#include "util.h"

void admin_html_escape(struct buf *b, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '&':
            buf_append_str(b, "&amp;");
            break;
        case '<':
            buf_append_str(b, "&lt;");
            break;
        case '>':
            buf_append_str(b, "&gt;");
            break;
        case '"':
            buf_append_str(b, "&quot;");
            break;
        case '\'':
            buf_append_str(b, "&#39;");
            break;
        default:
            buf_append(b, p, 1);
        }
    }
}

/* <td>escaped</td> */
static void cell(struct buf *b, const char *s)
{
    buf_append_str(b, "<td>");
    admin_html_escape(b, s);
    buf_append_str(b, "</td>");
}

static void cell_num(struct buf *b, double v)
{
    buf_printf(b, "<td class=n>%.0f</td>", v);
}

static void age(struct buf *b, double seconds)
{
    if (seconds < 120)
        buf_printf(b, "%.0f s", seconds);
    else if (seconds < 7200)
        buf_printf(b, "%.0f min", seconds / 60);
    else
        buf_printf(b, "%.1f h", seconds / 3600);
}

/* A form posting to action with the CSRF token and hidden fields (name, value pairs). */
static void form(struct buf *b, const char *action, const char *csrf, const char *id,
                 const char *label, const char *const *fields)
{
    buf_printf(b,
               "<form method=post action=\"%s\" class=inline><input type=hidden name=csrf "
               "value=\"%s\">",
               action, csrf);
    for (const char *const *f = fields; f && f[0]; f += 2) {
        if (!f[1])
            continue;
        buf_append_str(b, "<input type=hidden name=\"");
        admin_html_escape(b, f[0]);
        buf_append_str(b, "\" value=\"");
        admin_html_escape(b, f[1]);
        buf_append_str(b, "\">");
    }
    buf_append_str(b, "<button type=submit id=\"");
    admin_html_escape(b, id);
    buf_append_str(b, "\">");
    admin_html_escape(b, label);
    buf_append_str(b, "</button></form>");
}

static const char style[] =
    "<style>body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}"
    "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #eee;"
    "text-align:left;vertical-align:top}td.n{text-align:right}.inline{display:inline}"
    ".error{color:#a00}.warning{color:#a60}.ok{color:#070}.muted{color:#777}"
    "dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dd{margin:0}"
    ".detail{max-width:60em}</style>";

static void render_header(struct buf *b, const cJSON *status)
{
    const cJSON *settings = cJSON_GetObjectItemCaseSensitive(status, "settings");
    const cJSON *queue = cJSON_GetObjectItemCaseSensitive(status, "queue");
    buf_append_str(b, "<h1>dealsync</h1><p class=muted>as of ");
    admin_html_escape(b, ops_str(status, "generated_at"));
    buf_append_str(b, " (reload for newer)</p><h2>Health</h2><dl id=health>");
    buf_append_str(b, "<dt>sync deals</dt><dd id=sync-deals>");
    admin_html_escape(b, ops_str(settings, "sync_deals"));
    buf_append_str(b, "</dd><dt>opportunity deal id field</dt><dd>");
    admin_html_escape(b, ops_str(settings, "deal_id_field"));
    buf_printf(b,
               "</dd><dt>queue</dt><dd id=queue>%.0f pending, %.0f running, %.0f dead, %.0f done "
               "(kept for the retention period)</dd><dt>oldest pending</dt><dd>",
               ops_num(queue, "pending"), ops_num(queue, "running"), ops_num(queue, "dead"),
               ops_num(queue, "done"));
    age(b, ops_num(queue, "oldest_pending_seconds"));
    buf_append_str(b, "</dd><dt>lag (receipt to synced, last hour)</dt><dd>");
    age(b, ops_num(queue, "lag_seconds"));
    buf_append_str(b, "</dd></dl>");
}

static void render_outcomes(struct buf *b, const cJSON *status)
{
    buf_append_str(b, "<h2>Last 24 hours</h2><table id=outcomes><tr><th>direction</th>"
                      "<th>outcome</th><th>events</th><th>records</th></tr>");
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(status, "last_24h"))
    {
        buf_append_str(b, "<tr>");
        cell(b, ops_str(row, "direction"));
        cell(b, ops_str(row, "outcome"));
        cell_num(b, ops_num(row, "events"));
        cell_num(b, ops_num(row, "records"));
        buf_append_str(b, "</tr>");
    }
    buf_append_str(b, "</table>");
}

static void render_problems(struct buf *b, const cJSON *status, const char *csrf)
{
    buf_append_str(b, "<h2>Errors and warnings (last 24 hours)</h2><table id=problems><tr>"
                      "<th>severity</th><th>type</th><th>source</th><th>events</th>"
                      "<th>records</th><th>last</th><th>latest detail</th><th></th></tr>");
    const cJSON *row;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(status, "problems"))
    {
        const char *sev = ops_str(row, "severity");
        buf_printf(b, "<tr class=%s>", strcmp(sev, "error") == 0 ? "error" : "warning");
        cell(b, sev);
        cell(b, ops_str(row, "type"));
        cell(b, ops_str(row, "source"));
        cell_num(b, ops_num(row, "events"));
        cell_num(b, ops_num(row, "records"));
        cell(b, ops_str(row, "last_at"));
        buf_append_str(b, "<td class=detail>");
        admin_html_escape(b, ops_str(row, "example"));
        buf_append_str(b, "</td><td>");
        if (strcmp(sev, "error") == 0) {
            char *id = xasprintf("retry-type-%s", ops_str(row, "type"));
            const char *fields[] = {"type", ops_str(row, "type"), NULL, NULL};
            form(b, "/admin/retry", csrf, id, "Retry all of this type", fields);
            free(id);
        }
        buf_append_str(b, "</td></tr>");
    }
    buf_append_str(b, "</table><h2>Skipped (last 24 hours)</h2><table id=skipped><tr>"
                      "<th>reason</th><th>source</th><th>events</th><th>records</th></tr>");
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(status, "skipped"))
    {
        buf_append_str(b, "<tr>");
        cell(b, ops_str(row, "reason"));
        cell(b, ops_str(row, "source"));
        cell_num(b, ops_num(row, "events"));
        cell_num(b, ops_num(row, "records"));
        buf_append_str(b, "</tr>");
    }
    buf_append_str(b, "</table>");
}

static void render_dead(struct buf *b, const cJSON *dead, const char *csrf)
{
    buf_printf(b,
               "<h2>Dead letters (%d)</h2><table id=dead-letters><tr><th>event</th>"
               "<th>record</th><th>type</th><th>reason</th><th>attempts</th>"
               "<th>received</th><th>last attempt</th><th></th></tr>",
               cJSON_GetArraySize(dead));
    const cJSON *row;
    cJSON_ArrayForEach(row, dead)
    {
        char id[32];
        snprintf(id, sizeof(id), "%.0f", ops_num(row, "id"));
        buf_printf(b, "<tr id=\"dead-%s\" class=error><td>%s</td><td>", id, id);
        admin_html_escape(b, ops_str(row, "source"));
        buf_append_str(b, " ");
        admin_html_escape(b, ops_str(row, "object_type"));
        buf_append_str(b, " <a href=\"/admin?q=");
        admin_html_escape(b, ops_str(row, "record_id"));
        buf_append_str(b, "\">");
        admin_html_escape(b, ops_str(row, "record_id"));
        buf_append_str(b, "</a></td>");
        cell(b, ops_str(row, "type"));
        buf_append_str(b, "<td class=detail>");
        admin_html_escape(b, ops_str(row, "reason"));
        buf_append_str(b, "</td>");
        cell_num(b, ops_num(row, "attempts"));
        cell(b, ops_str(row, "received_at"));
        cell(b, ops_str(row, "last_attempt_at"));
        buf_append_str(b, "<td>");
        char *button = xasprintf("retry-%s", id);
        const char *fields[] = {"id", id, NULL, NULL};
        form(b, "/admin/retry", csrf, button, "Retry", fields);
        free(button);
        buf_append_str(b, "</td></tr>");
    }
    buf_append_str(b, "</table>");
}

static void render_history(struct buf *b, const cJSON *history)
{
    buf_append_str(b, "<table class=history><tr><th>at</th><th>event</th><th>from</th>"
                      "<th>kind</th><th>outcome</th><th>attempt</th><th>type</th>"
                      "<th>detail</th></tr>");
    const cJSON *h;
    cJSON_ArrayForEach(h, history)
    {
        const char *outcome = ops_str(h, "outcome");
        const char *at = ops_str(h, "at");
        buf_printf(b, "<tr class=\"%s\">",
                   strcmp(outcome, "dead") == 0    ? "error"
                   : strcmp(outcome, "retry") == 0 ? "warning"
                                                   : "");
        cell(b, *at ? at : ops_str(h, "received_at"));
        buf_printf(b, "<td>%.0f</td>", ops_num(h, "event_id"));
        cell(b, ops_str(h, "source"));
        cell(b, ops_str(h, "event_type"));
        cell(b, *outcome ? outcome : ops_str(h, "status"));
        cell_num(b, ops_num(h, "attempt"));
        cell(b, ops_str(h, "type"));
        buf_append_str(b, "<td class=detail>");
        admin_html_escape(b, ops_str(h, "detail"));
        buf_append_str(b, "</td></tr>");
    }
    buf_append_str(b, "</table>");
}

static void render_search(struct buf *b, const cJSON *records, const char *q, const char *csrf)
{
    buf_append_str(b, "<h2>Find a record</h2><form method=get action=\"/admin\" id=search-form>"
                      "<input id=q name=q size=40 placeholder=\"Salesforce id, HubSpot id or "
                      "name\" value=\"");
    admin_html_escape(b, q);
    buf_append_str(b, "\"> <button type=submit id=search>Search</button></form>");
    if (!q)
        return;
    buf_printf(b, "<div id=records><p>%d record%s for &ldquo;", cJSON_GetArraySize(records),
               cJSON_GetArraySize(records) == 1 ? "" : "s");
    admin_html_escape(b, q);
    buf_append_str(b, "&rdquo;</p>");
    const cJSON *rec;
    cJSON_ArrayForEach(rec, records)
    {
        const char *sf = ops_str(rec, "salesforce_id"), *hs = ops_str(rec, "hubspot_id");
        buf_append_str(b, "<div class=record><h3>");
        admin_html_escape(b, *ops_str(rec, "name") ? ops_str(rec, "name") : "(no name seen)");
        buf_append_str(b, "</h3><dl><dt>Salesforce opportunity</dt><dd class=sf-id>");
        admin_html_escape(b, *sf ? sf : "not linked yet");
        buf_append_str(b, "</dd><dt>HubSpot deal</dt><dd class=hs-id>");
        admin_html_escape(b, *hs ? hs : "not linked yet");
        buf_append_str(b, "</dd><dt>linked</dt><dd>");
        admin_html_escape(b, *ops_str(rec, "linked_at") ? ops_str(rec, "linked_at") : "no");
        buf_append_str(b, "</dd></dl>");
        char *id = xasprintf("resync-%s", *sf ? sf : hs);
        const char *fields[] = {
            "salesforce_id", *sf ? sf : NULL, "hubspot_id", *hs ? hs : NULL, "q", q, NULL, NULL};
        form(b, "/admin/resync", csrf, id, "Resync", fields);
        free(id);
        render_history(b, cJSON_GetObjectItemCaseSensitive(rec, "history"));
        buf_append_str(b, "</div>");
    }
    buf_append_str(b, "</div>");
}

char *admin_page_render(const cJSON *status, const cJSON *dead, const cJSON *records, const char *q,
                        const char *csrf)
{
    struct buf b;
    buf_init(&b, 0);
    buf_append_str(&b, "<!doctype html><html lang=en><head><meta charset=utf-8>"
                       "<meta name=viewport content=\"width=device-width\">"
                       "<title>dealsync status</title>");
    buf_append_str(&b, style);
    buf_append_str(&b, "</head><body>");
    render_header(&b, status);
    render_search(&b, records, q, csrf);
    render_outcomes(&b, status);
    render_problems(&b, status, csrf);
    render_dead(&b, dead, csrf);
    buf_append_str(&b, "</body></html>\n");
    return buf_steal(&b);
}
