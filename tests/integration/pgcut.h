/* pgcut.h - a TCP proxy in front of the test cluster that cuts a connection at its next COMMIT:
 * the connection lost exactly at a commit, whose client cannot know whether it committed. For
 * the worker tests; one per test. */
#ifndef SVC_PGCUT_H
#define SVC_PGCUT_H

#include <stdbool.h>

struct pgcut;

/* Where the next COMMIT (a simple query "COMMIT", as PQexec sends it) is cut. */
enum pgcut_mode {
    PGCUT_AFTER_ANSWER, /* the server commits and answers; the client never hears it */
    PGCUT_BEFORE,       /* the COMMIT never reaches the server, which rolls back */
};

/* Starts the proxy on 127.0.0.1 for the server of url ("postgresql://user@127.0.0.1:PORT/db");
 * *proxied_url receives url through the proxy (caller frees). Fails the test on error. */
struct pgcut *pgcut_start(const char *url, char **proxied_url);

/* Cuts the connection that sends the next COMMIT, as mode says: both its sockets are closed.
 * Thread-safe. */
void pgcut_arm(struct pgcut *p, enum pgcut_mode mode);

/* Whether a COMMIT was cut since pgcut_arm. Thread-safe. */
bool pgcut_has_cut(struct pgcut *p);

/* Stops the proxy, closing every connection. NULL is a no-op. */
void pgcut_stop(struct pgcut *p);

#endif
