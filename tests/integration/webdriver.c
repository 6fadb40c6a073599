/* webdriver.c - see webdriver.h. */
#include "webdriver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <check.h>
#include <cjson/cJSON.h>

#include "hmac.h"
#include "itest.h"
#include "util.h"

#define ELEMENT_KEY "element-6066-11e4-a52e-4f735466cecf"

/* One WebDriver command; returns the answer's "value" (caller deletes), fails the test on an
 * error answer unless may_fail. */
static cJSON *command(struct webdriver *w, const char *method, const char *path, cJSON *body,
                      bool may_fail, int *status_out)
{
    char *url = xasprintf("%s%s", w->base, path);
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    const char *headers[] = {"Content-Type: application/json", NULL};
    char *resp = NULL;
    int status = itest_http(method, url, headers, text, text ? strlen(text) : 0, &resp, NULL);
    if (status_out)
        *status_out = status;
    cJSON *json = cJSON_Parse(resp ? resp : "");
    ck_assert_msg(may_fail || status == 200, "webdriver %s %s: %d %.400s", method, path, status,
                  resp ? resp : "");
    cJSON *value = cJSON_DetachItemFromObjectCaseSensitive(json, "value");
    cJSON_Delete(json);
    free(resp);
    free(text);
    free(url);
    return value;
}

static cJSON *session_command(struct webdriver *w, const char *method, const char *what,
                              cJSON *body)
{
    char *path = xasprintf("/session/%s%s", w->session, what);
    cJSON *v = command(w, method, path, body, false, NULL);
    free(path);
    return v;
}

static bool driver_ready(void *arg)
{
    struct webdriver *w = arg;
    char *url = xasprintf("%s/status", w->base);
    char *resp = NULL;
    int status = itest_http("GET", url, NULL, NULL, 0, &resp, NULL);
    bool ok = status == 200 && resp && strstr(resp, "\"ready\":true");
    free(resp);
    free(url);
    return ok;
}

/* How long chromedriver and Chromium get to come up. On a loaded machine Chromium can take
 * longer than chromedriver's own 60 s to start, and chromedriver then answers "session not
 * created": the session is asked for again until this deadline. */
#define SESSION_DEADLINE_MS 150000
/* One session request may take chromedriver this long (it gives up on Chromium after 60 s). */
#define SESSION_REQUEST_MS 70000

/* The capabilities of a headless Chromium with a profile directory of its own (a new one per
 * attempt: a Chromium left over from a failed launch may still hold the previous one). */
static char *session_caps(const char *name, int attempt)
{
    char *profile =
        xasprintf("--user-data-dir=%s/%s-profile-%d", itest_env("TEST_TMPDIR"), name, attempt);
    cJSON *caps = cJSON_CreateObject();
    cJSON *always =
        cJSON_AddObjectToObject(cJSON_AddObjectToObject(caps, "capabilities"), "alwaysMatch");
    cJSON_AddStringToObject(always, "browserName", "chrome");
    cJSON *opts = cJSON_AddObjectToObject(always, "goog:chromeOptions");
    cJSON_AddStringToObject(opts, "binary", "/usr/bin/chromium");
    const char *args[] = {"--headless=new",          "--no-sandbox",
                          "--disable-gpu",           "--disable-dev-shm-usage",
                          "--window-size=1280,1600", profile};
    cJSON *list = cJSON_AddArrayToObject(opts, "args");
    for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
        cJSON_AddItemToArray(list, cJSON_CreateString(args[i]));
    char *text = cJSON_PrintUnformatted(caps);
    cJSON_Delete(caps);
    free(profile);
    return text;
}

/* Creates the browser session, asking again after each failed attempt until the deadline; fails
 * the test with chromedriver's last answer. */
static void start_session(struct webdriver *w, const char *name)
{
    char *url = xasprintf("%s/session", w->base);
    const char *headers[] = {"Content-Type: application/json", NULL};
    int64_t deadline = util_monotonic_ms() + SESSION_DEADLINE_MS;
    char *last = NULL;
    int status = 0, attempts = 0;
    while (!w->session && (attempts == 0 || util_monotonic_ms() < deadline)) {
        if (attempts > 0) {
            /* After a failed launch, a moment for Chromium's leftovers to exit. */
            struct timespec ts = {0, 500 * 1000000L};
            nanosleep(&ts, NULL);
        }
        char *text = session_caps(name, ++attempts);
        free(last);
        last = NULL;
        int64_t left = deadline - util_monotonic_ms();
        long limit = left < SESSION_REQUEST_MS ? (left > 1000 ? (long)left : 1000L)
                                               : (long)SESSION_REQUEST_MS;
        status = itest_http_within(limit, "POST", url, headers, text, strlen(text), &last, NULL);
        cJSON *json = cJSON_Parse(last ? last : "");
        const char *id = cJSON_GetStringValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(json, "value"), "sessionId"));
        if (status == 200 && id)
            w->session = xstrdup(id);
        cJSON_Delete(json);
        free(text);
    }
    ck_assert_msg(w->session != NULL,
                  "chromedriver did not start a session in %d attempts: %d %.400s", attempts,
                  status, last ? last : "");
    free(last);
    free(url);
}

void webdriver_start(struct webdriver *w, const char *name, const char *header)
{
    memset(w, 0, sizeof(*w));
    int port = itest_free_port();
    snprintf(w->base, sizeof(w->base), "http://127.0.0.1:%d", port);
    char *port_arg = xasprintf("--port=%d", port);
    char *log = xasprintf("%s/%s.log", itest_env("TEST_TMPDIR"), name);
    const char *argv[] = {"/usr/bin/chromedriver", port_arg, NULL};
    w->driver = itest_spawn(argv, NULL, log, NULL);
    ck_assert_ptr_nonnull(w->driver);
    ck_assert_msg(itest_wait_for(driver_ready, w, SESSION_DEADLINE_MS),
                  "chromedriver did not answer ready on /status");
    free(port_arg);
    free(log);

    start_session(w, name);

    if (header) {
        /* Through the DevTools protocol: navigation, form posts and fetches all carry it. */
        cJSON *enable = cJSON_CreateObject();
        cJSON_AddStringToObject(enable, "cmd", "Network.enable");
        cJSON_AddObjectToObject(enable, "params");
        cJSON_Delete(session_command(w, "POST", "/goog/cdp/execute", enable));
        const char *colon = strchr(header, ':');
        ck_assert_ptr_nonnull(colon);
        char *hname = xstrndup(header, (size_t)(colon - header));
        cJSON *set = cJSON_CreateObject();
        cJSON_AddStringToObject(set, "cmd", "Network.setExtraHTTPHeaders");
        cJSON *headers = cJSON_AddObjectToObject(cJSON_AddObjectToObject(set, "params"), "headers");
        cJSON_AddStringToObject(headers, hname, colon + 1 + strspn(colon + 1, " "));
        cJSON_Delete(session_command(w, "POST", "/goog/cdp/execute", set));
        free(hname);
    }
}

void webdriver_stop(struct webdriver *w)
{
    if (w->session)
        cJSON_Delete(session_command(w, "DELETE", "", NULL));
    itest_proc_stop(w->driver, 15, 10000);
    free(w->session);
    memset(w, 0, sizeof(*w));
}

void webdriver_open(struct webdriver *w, const char *url)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "url", url);
    cJSON_Delete(session_command(w, "POST", "/url", body));
}

char *webdriver_find(struct webdriver *w, const char *css)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "using", "css selector");
    cJSON_AddStringToObject(body, "value", css);
    char *path = xasprintf("/session/%s/element", w->session);
    int status = 0;
    cJSON *value = command(w, "POST", path, body, true, &status);
    free(path);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(value, ELEMENT_KEY));
    char *out = status == 200 && id ? xstrdup(id) : NULL;
    cJSON_Delete(value);
    return out;
}

void webdriver_click(struct webdriver *w, const char *element)
{
    char *what = xasprintf("/element/%s/click", element);
    cJSON_Delete(session_command(w, "POST", what, cJSON_CreateObject()));
    free(what);
}

void webdriver_type(struct webdriver *w, const char *element, const char *text)
{
    char *what = xasprintf("/element/%s/value", element);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "text", text);
    cJSON_Delete(session_command(w, "POST", what, body));
    free(what);
}

char *webdriver_text(struct webdriver *w)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "script", "return document.body.innerText;");
    cJSON_AddArrayToObject(body, "args");
    cJSON *value = session_command(w, "POST", "/execute/sync", body);
    char *text = xstrdup(cJSON_IsString(value) ? value->valuestring : "");
    cJSON_Delete(value);
    return text;
}

char *webdriver_url(struct webdriver *w)
{
    cJSON *value = session_command(w, "GET", "/url", NULL);
    char *url = xstrdup(cJSON_IsString(value) ? value->valuestring : "");
    cJSON_Delete(value);
    return url;
}

void webdriver_screenshot(struct webdriver *w, const char *path)
{
    cJSON *value = session_command(w, "GET", "/screenshot", NULL);
    ck_assert(cJSON_IsString(value));
    unsigned char *png = NULL;
    size_t len = 0;
    ck_assert(hmac_base64_decode(value->valuestring, &png, &len));
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fwrite(png, 1, len, f);
    fclose(f);
    free(png);
    cJSON_Delete(value);
}
