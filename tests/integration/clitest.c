/* clitest.c - see clitest.h. */
#include "clitest.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "itest.h"
#include "util.h"

static char *slurp_fd(int fd)
{
    lseek(fd, 0, SEEK_SET);
    struct buf b;
    buf_init(&b, 0);
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        buf_append(&b, chunk, (size_t)n);
    close(fd);
    return buf_steal(&b);
}

static int temp_fd(const char *name)
{
    char *path = xasprintf("%s/clitest-%s-XXXXXX", itest_env("TEST_TMPDIR"), name);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    free(path);
    return fd;
}

int clitest_run(const char *const *argv, const char *const *extra_env, char **out, char **err)
{
    int out_fd = temp_fd("out");
    int err_fd = temp_fd("err");
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        itest_exec_child(argv, extra_env);
    }
    int64_t deadline = util_monotonic_ms() + 30000;
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (util_monotonic_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            ck_abort_msg("%s %s did not exit within 30 s", argv[0], argv[1] ? argv[1] : "");
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    char *o = slurp_fd(out_fd);
    char *e = slurp_fd(err_fd);
    if (out)
        *out = o;
    else
        free(o);
    if (err)
        *err = e;
    else
        free(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int clitest_dealsync(const char *db_url, const char *const *args, char **out, char **err)
{
    const char *argv[16] = {itest_env("DEALSYNC_BIN")};
    for (size_t i = 0; args[i] && i < 14; i++)
        argv[i + 1] = args[i];
    char *db = xasprintf("DATABASE_URL=%s", db_url);
    const char *env[] = {db, NULL};
    int rc = clitest_run(argv, env, out, err);
    free(db);
    return rc;
}
