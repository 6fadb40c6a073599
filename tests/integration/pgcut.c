/* pgcut.c - see pgcut.h. One thread relays every connection with poll(); a COMMIT is found in
 * what the client sends in one read (libpq sends a query in one write, and this one is 12 bytes),
 * which is enough for the worker's connection, the only one the tests send through it. */
#include "pgcut.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

#define PAIRS_MAX 16

/* A simple query message: 'Q', its length (4 + 7) and "COMMIT" with its NUL. */
static const char commit_msg[] = {'Q', 0, 0, 0, 11, 'C', 'O', 'M', 'M', 'I', 'T', 0};

struct pair {
    int client; /* -1: slot free */
    int server;
    bool is_cut_on_answer; /* the COMMIT went on: the server's next bytes are dropped, then cut */
};

struct pgcut {
    pthread_t thread;
    int listener;
    int stop[2];
    int server_port;
    atomic_int mode; /* -1: not armed; else enum pgcut_mode */
    atomic_bool has_cut;
    struct pair pairs[PAIRS_MAX];
};

static int connect_server(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void close_pair(struct pair *p)
{
    close(p->client);
    close(p->server);
    p->client = p->server = -1;
    p->is_cut_on_answer = false;
}

static bool has_commit(const char *buf, size_t len)
{
    for (size_t i = 0; i + sizeof(commit_msg) <= len; i++)
        if (memcmp(buf + i, commit_msg, sizeof(commit_msg)) == 0)
            return true;
    return false;
}

/* Relays one read from `from` to `to`; false when the pair is to be closed. */
static bool relay(struct pgcut *c, struct pair *p, bool from_client)
{
    char buf[65536];
    ssize_t n = read(from_client ? p->client : p->server, buf, sizeof(buf));
    if (n <= 0)
        return false;
    if (!from_client && p->is_cut_on_answer) {
        atomic_store(&c->has_cut, true);
        return false;
    }
    if (from_client && has_commit(buf, (size_t)n)) {
        int mode = atomic_exchange(&c->mode, -1);
        if (mode == PGCUT_BEFORE) {
            atomic_store(&c->has_cut, true);
            return false;
        }
        p->is_cut_on_answer = mode == PGCUT_AFTER_ANSWER;
    }
    int to = from_client ? p->server : p->client;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

static void accept_one(struct pgcut *c)
{
    int fd = accept(c->listener, NULL, NULL);
    if (fd < 0)
        return;
    for (int i = 0; i < PAIRS_MAX; i++) {
        if (c->pairs[i].client < 0) {
            c->pairs[i].server = connect_server(c->server_port);
            if (c->pairs[i].server < 0)
                break;
            c->pairs[i].client = fd;
            return;
        }
    }
    close(fd);
}

static void *pgcut_main(void *arg)
{
    struct pgcut *c = arg;
    for (;;) {
        struct pollfd fds[2 + 2 * PAIRS_MAX];
        int map[2 + 2 * PAIRS_MAX];
        int n = 0;
        fds[n++] = (struct pollfd){c->stop[0], POLLIN, 0};
        fds[n++] = (struct pollfd){c->listener, POLLIN, 0};
        for (int i = 0; i < PAIRS_MAX; i++) {
            if (c->pairs[i].client < 0)
                continue;
            map[n] = i;
            fds[n++] = (struct pollfd){c->pairs[i].client, POLLIN, 0};
            map[n] = -1 - i;
            fds[n++] = (struct pollfd){c->pairs[i].server, POLLIN, 0};
        }
        if (poll(fds, (nfds_t)n, -1) < 0)
            continue;
        if (fds[0].revents)
            break;
        if (fds[1].revents & POLLIN)
            accept_one(c);
        for (int k = 2; k < n; k++) {
            if (!fds[k].revents)
                continue;
            bool from_client = map[k] >= 0;
            struct pair *p = &c->pairs[from_client ? map[k] : -1 - map[k]];
            if (p->client >= 0 && !relay(c, p, from_client))
                close_pair(p);
        }
    }
    for (int i = 0; i < PAIRS_MAX; i++)
        if (c->pairs[i].client >= 0)
            close_pair(&c->pairs[i]);
    return NULL;
}

struct pgcut *pgcut_start(const char *url, char **proxied_url)
{
    struct pgcut *c = xcalloc(1, sizeof(*c));
    atomic_init(&c->mode, -1);
    atomic_init(&c->has_cut, false);
    for (int i = 0; i < PAIRS_MAX; i++)
        c->pairs[i].client = c->pairs[i].server = -1;
    const char *host = strstr(url, "@127.0.0.1:");
    ck_assert_msg(host != NULL, "not a 127.0.0.1 url: %s", url);
    const char *port = host + strlen("@127.0.0.1:");
    c->server_port = atoi(port);
    const char *rest = port + strspn(port, "0123456789");

    c->listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(c->listener, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(c->listener, 16), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(c->listener, (struct sockaddr *)&a, &len), 0);
    *proxied_url = xasprintf("%.*s%d%s", (int)(port - url), url, ntohs(a.sin_port), rest);
    ck_assert_int_eq(pipe(c->stop), 0);
    ck_assert_int_eq(pthread_create(&c->thread, NULL, pgcut_main, c), 0);
    return c;
}

void pgcut_arm(struct pgcut *p, enum pgcut_mode mode)
{
    atomic_store(&p->has_cut, false);
    atomic_store(&p->mode, (int)mode);
}

bool pgcut_has_cut(struct pgcut *p)
{
    return atomic_load(&p->has_cut);
}

void pgcut_stop(struct pgcut *p)
{
    if (!p)
        return;
    ssize_t n = write(p->stop[1], "x", 1);
    (void)n;
    pthread_join(p->thread, NULL);
    close(p->stop[0]);
    close(p->stop[1]);
    close(p->listener);
    free(p);
}
