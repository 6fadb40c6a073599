/* webdriver.h - a real browser for tests: headless Chromium driven through chromedriver's
 * W3C WebDriver HTTP API (Debian's chromium and chromium-driver). Test-only. */
#ifndef SVC_WEBDRIVER_H
#define SVC_WEBDRIVER_H

#include <stdbool.h>

struct itest_proc;

struct webdriver {
    struct itest_proc *driver; /* the chromedriver process */
    char base[64];             /* http://127.0.0.1:<port> */
    char *session;             /* the session id */
};

/* Starts chromedriver and a headless Chromium session (its log in TEST_TMPDIR/<name>.log).
 * Every request the browser makes carries the extra header ("Name: value", may be NULL), set
 * through the DevTools protocol. */
void webdriver_start(struct webdriver *w, const char *name, const char *header);
void webdriver_stop(struct webdriver *w);

/* Navigates and waits for the page to load. */
void webdriver_open(struct webdriver *w, const char *url);
/* The element matching a CSS selector, or NULL when there is none. Caller frees. */
char *webdriver_find(struct webdriver *w, const char *css);
void webdriver_click(struct webdriver *w, const char *element);
void webdriver_type(struct webdriver *w, const char *element, const char *text);
/* The rendered text of the page (document.body.innerText). Caller frees. */
char *webdriver_text(struct webdriver *w);
/* The current URL. Caller frees. */
char *webdriver_url(struct webdriver *w);
/* Saves a PNG screenshot of the window to path. */
void webdriver_screenshot(struct webdriver *w, const char *path);

#endif
