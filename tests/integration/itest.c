/* itest.c - integration-test helpers: processes, ports, HTTP, fresh databases. */
#include "itest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>

#include "util.h"

extern char **environ;

struct itest_proc {
    pid_t pid;
};

const char *itest_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "itest: %s is not set; run the tests through `make test`\n", name);
        abort();
    }
    return v;
}

int itest_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void itest_exec_child(const char *const *argv, const char *const *extra_env)
{
    for (const char *const *e = extra_env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char *name = xstrndup(*e, (size_t)(eq - *e));
        setenv(name, eq + 1, 1);
        free(name);
    }
    /* Unblock everything the test runner may have blocked. */
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

struct itest_proc *itest_spawn(const char *const *argv, const char *const *extra_env,
                               const char *log_path, const char *ready_url)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        itest_exec_child(argv, extra_env);
    }
    struct itest_proc *p = xcalloc(1, sizeof(*p));
    p->pid = pid;
    if (!ready_url)
        return p;
    int64_t deadline = util_monotonic_ms() + 20000;
    while (util_monotonic_ms() < deadline) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            free(p);
            return NULL;
        }
        if (itest_http("GET", ready_url, NULL, NULL, 0, NULL, NULL) == 200)
            return p;
        sleep_ms(20);
    }
    itest_proc_stop(p, SIGKILL, 1000);
    return NULL;
}

int itest_proc_pid(const struct itest_proc *p)
{
    return p->pid;
}

int itest_proc_stop(struct itest_proc *p, int sig, int timeout_ms)
{
    if (!p)
        return 0;
    kill(p->pid, sig);
    int64_t deadline = util_monotonic_ms() + timeout_ms;
    int st = 0;
    int rc = -1;
    for (;;) {
        pid_t w = waitpid(p->pid, &st, WNOHANG);
        if (w == p->pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (util_monotonic_ms() >= deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            rc = -1;
            break;
        }
        sleep_ms(10);
    }
    free(p);
    return rc;
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    buf_append(arg, data, size * n);
    return size * n;
}

int itest_http(const char *method, const char *url, const char *const *headers, const char *body,
               size_t body_len, char **resp, char **resp_headers)
{
    return itest_http_within(30000, method, url, headers, body, body_len, resp, resp_headers);
}

int itest_http_within(long timeout_ms, const char *method, const char *url,
                      const char *const *headers, const char *body, size_t body_len, char **resp,
                      char **resp_headers)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    struct buf out, hdr;
    buf_init(&out, 0);
    buf_init(&hdr, 0);
    for (const char *const *h = headers; h && *h; h++)
        hl = curl_slist_append(hl, *h);
    /* libcurl adds "Expect: 100-continue" to large bodies; tests want one plain round trip. */
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hdr);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (resp)
        *resp = buf_steal(&out);
    if (resp_headers)
        *resp_headers = buf_steal(&hdr);
    buf_clear(&out);
    buf_clear(&hdr);
    return (int)status;
}

char *itest_db_create(const char *prefix)
{
    static int counter;
    const char *admin = itest_env("DATABASE_ADMIN_URL");
    char *name = xasprintf("%s_%d_%d", prefix, (int)getpid(), ++counter);
    PGconn *db = itest_db_connect(admin);
    char *sql = xasprintf("CREATE DATABASE %s", name);
    itest_db_exec(db, sql);
    free(sql);
    PQfinish(db);
    /* The admin URL ends with "/dealsync": swap the database name. */
    const char *slash = strrchr(admin, '/');
    char *url = xasprintf("%.*s/%s", (int)(slash - admin), admin, name);
    free(name);
    return url;
}

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *itest_db_connect(const char *url)
{
    PGconn *db = PQconnectdb(url);
    if (PQstatus(db) != CONNECTION_OK)
        ck_abort_msg("cannot connect to %s: %s", url, PQerrorMessage(db));
    PQsetNoticeProcessor(db, quiet_notices, NULL);
    return db;
}

long long itest_db_scalar(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        ck_abort_msg("query failed: %s: %s", sql, PQerrorMessage(db));
    long long v = 0;
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

void itest_db_exec(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        ck_abort_msg("statement failed: %s: %s", sql, PQerrorMessage(db));
    PQclear(r);
}

char *itest_incompressible_text(size_t len, unsigned int seed)
{
    char *text = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++)
        text[i] = (char)('a' + rand_r(&seed) % 26);
    text[len] = '\0';
    return text;
}

char *itest_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        ck_abort_msg("cannot open %s: %s", path, strerror(errno));
    struct buf b;
    buf_init(&b, 0);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    if (len)
        *len = b.len;
    return buf_steal(&b);
}

char *itest_fixture_path(const char *rel)
{
    return xasprintf("%s/%s", itest_env("FIXTURES_DIR"), rel);
}

bool itest_wait_for(bool (*pred)(void *arg), void *arg, int deadline_ms)
{
    int64_t deadline = util_monotonic_ms() + deadline_ms;
    for (;;) {
        if (pred(arg))
            return true;
        if (util_monotonic_ms() >= deadline)
            return pred(arg);
        sleep_ms(20);
    }
}

struct sql_wait {
    PGconn *db;
    const char *sql;
};

static bool sql_holds(void *arg)
{
    struct sql_wait *w = arg;
    return itest_db_scalar(w->db, w->sql) >= 1;
}

bool itest_wait_sql(PGconn *db, const char *sql, int deadline_ms)
{
    struct sql_wait w = {db, sql};
    return itest_wait_for(sql_holds, &w, deadline_ms);
}

void itest_add_cases(Suite *s, const struct itest_case *cases, size_t count, int timeout_s)
{
    for (size_t i = 0; i < count; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, timeout_s);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
}

int itest_file_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}
