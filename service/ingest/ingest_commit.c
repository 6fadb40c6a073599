/* ingest_commit.c - the group committer of the webhook ack path (see ingest_commit.h). Requests
 * wait in one queue under one mutex; while a connection is free, the first waiting request's
 * thread takes every waiting request (up to max_events events, all bodies or all events),
 * writes them in one statement (ingest_inbox_push or queue_push_groups), and wakes each
 * request it answered by its own condition variable. */
#include "ingest_commit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "ingest_split.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

/* A request waiting for its commit: its events (Salesforce), or its body for the inbox. */
struct waiting {
    const struct queue_event_in *evs;
    const struct ingest_body *body; /* non-NULL: an inbox row (n: its events) */
    size_t n;
    size_t stored;
    enum err rc;
    bool is_done;
    /* Signalled when its group is committed, or when it is first in line and a connection is
     * free: each request is woken alone, never with every other waiting request. */
    pthread_cond_t wake;
    struct waiting *next;
};

struct ingest_committer {
    char *url;
    int max_events;
    ingest_prepare_fn prepare; /* readies each new connection (NULL: nothing) */
    pthread_mutex_t lock;
    pthread_cond_t idle; /* a connection was given back (stop waits for all of them) */
    struct waiting *head;
    struct waiting *tail;
    bool stop;
    PGconn **free_conns; /* connections no group is using (NULL: to be opened) */
    int free_count;
    int conn_count;
};

/* Takes the waiting requests of the next group (at least one). Called with the lock held. */
static struct waiting *take_group(struct ingest_committer *c, size_t *count)
{
    struct waiting *first = c->head, *last = c->head;
    size_t events = first->n;
    *count = 1;
    /* A group is all bodies or all events: one statement writes it. */
    while (last->next && events + last->next->n <= (size_t)c->max_events &&
           !last->next->body == !first->body) {
        last = last->next;
        events += last->n;
        (*count)++;
    }
    c->head = last->next;
    if (!c->head)
        c->tail = NULL;
    last->next = NULL;
    return first;
}

/* A failure caused by the data of a request (SQL state class 22 or 23), not by the database. */
static bool is_data_error(const char *sqlstate)
{
    return strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0;
}

/* The bodies of the first count requests from w, in one statement. */
static enum err push_bodies(PGconn *db, struct waiting *w, size_t count, char state[6])
{
    struct ingest_body *bodies = xcalloc(count, sizeof(*bodies));
    for (size_t i = 0; i < count; i++, w = w->next)
        bodies[i] = *w->body;
    enum err rc = ingest_inbox_push(db, bodies, count, state);
    free(bodies);
    return rc;
}

/* Opens a connection with the webhook path's timeouts and readies it for its groups. A failed
 * preparation only leaves the statements to be prepared at their first use. */
static enum err conn_open(const struct ingest_committer *c, PGconn **out)
{
    PGconn *db = NULL;
    /* The webhook path's timeouts: a stalled database answers 503, never hangs. */
    if (db_open(c->url, &db) != ERR_OK || db_exec(db, DB_WEBHOOK_SESSION_SQL) != ERR_OK) {
        PQfinish(db);
        return ERR_DB;
    }
    if (c->prepare && c->prepare(db) != ERR_OK && PQstatus(db) != CONNECTION_OK) {
        PQfinish(db);
        return ERR_DB;
    }
    *out = db;
    return ERR_OK;
}

/* Writes one group. Fills each request's rc and stored. */
static void commit_group(const struct ingest_committer *c, PGconn **db, struct waiting *group,
                         size_t count)
{
    if (!*db || PQstatus(*db) != CONNECTION_OK) {
        PQfinish(*db);
        *db = NULL;
        if (conn_open(c, db) != ERR_OK) {
            for (struct waiting *w = group; w; w = w->next)
                w->rc = ERR_DB;
            return;
        }
    }
    size_t total = 0;
    for (struct waiting *w = group; w; w = w->next)
        total += w->n;
    struct queue_event_in *evs = xcalloc(total ? total : 1, sizeof(*evs));
    size_t *owner = xcalloc(total ? total : 1, sizeof(*owner));
    size_t *stored = xcalloc(count, sizeof(*stored));
    size_t k = 0, g = 0;
    for (struct waiting *w = group; w && !w->body; w = w->next, g++) {
        for (size_t i = 0; i < w->n; i++, k++) {
            evs[k] = w->evs[i];
            owner[k] = g;
        }
    }
    char state[6] = "";
    enum err rc = group->body ? push_bodies(*db, group, count, state)
                              : queue_push_groups(*db, evs, owner, total, stored, count, state);
    if (rc == ERR_OK) {
        g = 0;
        for (struct waiting *w = group; w; w = w->next, g++) {
            w->rc = ERR_OK;
            w->stored = w->body ? w->n : stored[g];
        }
    } else if (count > 1 && is_data_error(state)) {
        /* One request's data failed the group: each request alone gets its own answer. */
        for (struct waiting *w = group; w; w = w->next) {
            if (w->body) {
                rc = push_bodies(*db, w, 1, state);
                w->stored = w->n;
            } else {
                rc = queue_push_groups(*db, w->evs, NULL, w->n, &w->stored, 1, state);
            }
            w->rc = rc == ERR_OK ? ERR_OK : is_data_error(state) ? ERR_INVALID : ERR_DB;
        }
    } else {
        for (struct waiting *w = group; w; w = w->next)
            w->rc = is_data_error(state) ? ERR_INVALID : ERR_DB;
    }
    metrics_inc("dealsync_ingest_groups_total", "", 1);
    metrics_inc("dealsync_ingest_group_requests_total", "", (long long)count);
    free(stored);
    free(owner);
    free(evs);
}

enum err ingest_committer_start(const char *url, int connections, int max_events,
                                ingest_prepare_fn prepare, struct ingest_committer **out)
{
    struct ingest_committer *c = xcalloc(1, sizeof(*c));
    c->url = xstrdup(url);
    c->max_events = max_events > 0 ? max_events : 1;
    c->prepare = prepare;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->idle, NULL);
    c->conn_count = connections > 0 ? connections : 1;
    c->free_conns = xcalloc((size_t)c->conn_count, sizeof(*c->free_conns));
    c->free_count = c->conn_count;
    /* Connected and prepared now, once per start: the first requests of a burst would wait for
     * it (a new backend, its session settings, a statement parsed per group size), all while
     * the others gather behind them. A database not reachable now is tried again at the first
     * group, as after a failure. */
    bool was_quiet = db_set_quiet(true);
    for (int i = 0; i < c->conn_count; i++)
        if (conn_open(c, &c->free_conns[i]) != ERR_OK)
            break;
    db_set_quiet(was_quiet);
    *out = c;
    return ERR_OK;
}

void ingest_committer_stop(struct ingest_committer *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = true;
    /* The groups in hand finish; whatever still waits is answered "retry later". */
    while (c->free_count < c->conn_count)
        pthread_cond_wait(&c->idle, &c->lock);
    for (struct waiting *w = c->head, *next; w; w = next) {
        next = w->next;
        w->rc = ERR_DB;
        w->is_done = true;
        pthread_cond_signal(&w->wake);
    }
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < c->conn_count; i++)
        PQfinish(c->free_conns[i]);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->idle);
    free(c->free_conns);
    free(c->url);
    free(c);
}

/* Queues w and waits until it is committed. While a connection is free, the first waiting
 * request's own thread writes the group (every request waiting at that moment, its own among
 * them) and wakes the others of it: no hand-over to another thread on the way to the commit. */
static void wait_commit(struct ingest_committer *c, struct waiting *w)
{
    pthread_cond_init(&w->wake, NULL);
    pthread_mutex_lock(&c->lock);
    if (c->stop) {
        pthread_mutex_unlock(&c->lock);
        pthread_cond_destroy(&w->wake);
        return; /* w->rc stays ERR_DB */
    }
    if (c->tail)
        c->tail->next = w;
    else
        c->head = w;
    c->tail = w;
    while (!w->is_done) {
        if (c->stop || c->free_count == 0 || !c->head) {
            pthread_cond_wait(&w->wake, &c->lock);
            continue;
        }
        PGconn *db = c->free_conns[--c->free_count];
        size_t count = 0;
        struct waiting *group = take_group(c, &count);
        /* What is left (a group is capped) goes on another free connection at once. */
        if (c->head && c->free_count > 0)
            pthread_cond_signal(&c->head->wake);
        pthread_mutex_unlock(&c->lock);
        commit_group(c, &db, group, count);
        pthread_mutex_lock(&c->lock);
        c->free_conns[c->free_count++] = db;
        for (struct waiting *g = group, *next; g; g = next) {
            next = g->next;
            g->is_done = true;
            if (g != w)
                pthread_cond_signal(&g->wake);
        }
        /* The connection is free again: the first request in line writes the next group. */
        if (c->head)
            pthread_cond_signal(&c->head->wake);
        pthread_cond_broadcast(&c->idle);
    }
    pthread_mutex_unlock(&c->lock);
    pthread_cond_destroy(&w->wake);
}

enum err ingest_store(struct ingest_committer *c, const struct queue_event_in *evs, size_t n,
                      size_t *stored)
{
    struct waiting w = {.evs = evs, .n = n, .rc = ERR_DB};
    wait_commit(c, &w);
    *stored = w.stored;
    return w.rc;
}

enum err ingest_store_body(struct ingest_committer *c, const struct ingest_body *body,
                           size_t events)
{
    struct waiting w = {.body = body, .n = events, .rc = ERR_DB};
    wait_commit(c, &w);
    return w.rc;
}

size_t ingest_committer_waiting(struct ingest_committer *c)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (struct waiting *w = c->head; w; w = w->next)
        n++;
    pthread_mutex_unlock(&c->lock);
    return n;
}
