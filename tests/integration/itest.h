/* itest.h - helpers for integration tests: child processes, free ports, HTTP with libcurl,
 * fresh PostgreSQL databases, fixtures. Test-only; not thread-safe unless said. */
#ifndef SVC_ITEST_H
#define SVC_ITEST_H

#include <stdbool.h>
#include <stddef.h>

#include <check.h>
#include <libpq-fe.h>

struct itest_proc;

/* Environment variable or abort with a message (set by scripts/test.sh). Borrowed. */
const char *itest_env(const char *name);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int itest_free_port(void);

/* Starts argv[0] with argv and the current environment plus extra_env ("NAME=value", NULL-ended,
 * may be NULL); stdout/stderr go to log_path (appended). When ready_url is not NULL, waits up to
 * 20 s for it to answer 200 and returns NULL if it never does. Caller stops with itest_proc_stop.
 */
struct itest_proc *itest_spawn(const char *const *argv, const char *const *extra_env,
                               const char *log_path, const char *ready_url);
/* In a forked child: adds extra_env ("NAME=value", NULL-ended, may be NULL) to the
 * environment, unblocks all signals and execs argv; never returns. */
void itest_exec_child(const char *const *argv, const char *const *extra_env)
    __attribute__((noreturn));
/* Sends sig (0: none, just wait), waits up to timeout_ms for exit; SIGKILL after that. Returns the
 * exit status (128+signal when killed by a signal), -1 if it had to be killed. Frees p. NULL is a
 * no-op. */
int itest_proc_stop(struct itest_proc *p, int sig, int timeout_ms);
int itest_proc_pid(const struct itest_proc *p);

/* One HTTP request. headers: NULL-ended "Name: value" strings (may be NULL). body may be NULL.
 * Returns the status (0 when the connection failed); *resp (may be NULL) receives the body,
 * caller frees; *resp_headers likewise receives the raw response header block. */
int itest_http(const char *method, const char *url, const char *const *headers, const char *body,
               size_t body_len, char **resp, char **resp_headers);
/* The same with its own time limit (itest_http allows 30 s). */
int itest_http_within(long timeout_ms, const char *method, const char *url,
                      const char *const *headers, const char *body, size_t body_len, char **resp,
                      char **resp_headers);

/* Creates a fresh database named after prefix (unique per call) on the cluster in
 * DATABASE_ADMIN_URL and returns its URL; caller frees. */
char *itest_db_create(const char *prefix);
/* Connects or fails the test. Caller PQfinish()es. */
PGconn *itest_db_connect(const char *url);
/* First column of the first row of sql as an int64 (0 when no row); fails the test on error. */
long long itest_db_scalar(PGconn *db, const char *sql);
/* Runs sql and fails the test on error. */
void itest_db_exec(PGconn *db, const char *sql);

/* len random lowercase letters (NUL-terminated; caller frees): a value PostgreSQL stores out of
 * line and cannot compress. Writing it takes long enough that concurrent statements overlap
 * between their conflict check and their index entries, the moment a unique-index race needs
 * (a few microseconds in production, hit there by luck). */
char *itest_incompressible_text(size_t len, unsigned int seed);

/* Reads a whole file into a NUL-terminated buffer; fails the test when missing. Caller frees. */
char *itest_read_file(const char *path, size_t *len);
/* Lines of the file at path that contain needle; fails the test when it is missing. */
int itest_file_lines(const char *path, const char *needle);
/* Path of a fixture below FIXTURES_DIR; caller frees. */
char *itest_fixture_path(const char *rel);

/* Waits until pred(arg) is true or deadline_ms passes; returns the last pred value. Polls every
 * 20 ms: tests wait for conditions, never for fixed times. */
bool itest_wait_for(bool (*pred)(void *arg), void *arg, int deadline_ms);

/* Waits until sql (a count, or any integer) reads at least 1, or deadline_ms passes; returns
 * whether it did. */
bool itest_wait_sql(PGconn *db, const char *sql, int deadline_ms);

/* One case of a suite: the name of its TCase and its test. */
struct itest_case {
    const char *name;
    const TTest *test;
};
/* Adds each case to s as a TCase of its own (its own process and database) with timeout_s. */
void itest_add_cases(Suite *s, const struct itest_case *cases, size_t count, int timeout_s);

#endif
