/* test_daemon.c — the daemon skeleton as an operator sees it: SIGTERM stops it cleanly
 * (stop callback, exit 0, a log line), SIGPIPE does not kill it, libevent's own warnings and
 * fatal errors land in its log file, the open-files limit is raised, and the security
 * posture is one line for each of the three cases.
 *
 * Every daemon runs in a forked child: libevent's debug mode can only be switched on before
 * the process has made any event_base, so the test process itself never makes one. */
#include <errno.h>
#include <event2/event.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "certgen.h"
#include "daemon.h"
#include "testutil.h"

static char g_path[64];

static int setup(void **state)
{
    (void)state;
    snprintf(g_path, sizeof g_path, "/tmp/test_daemon.XXXXXX");
    int fd = mkstemp(g_path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_close();
    unlink(g_path);
    return 0;
}

static char *read_log(void)
{
    char *text = tu_read_file(g_path);
    assert_non_null(text);
    return text;
}

/* In the child: a daemon logging into g_path, or exit 3. */
static void child_init(struct daemon *d)
{
    char err[256];
    struct daemon_opts o = {.component = "testd", .log_file = g_path, .log_level = "debug"};
    if (daemon_init(d, &o, err, sizeof err) != 0) {
        fprintf(stderr, "daemon_init: %s\n", err);
        _exit(3);
    }
}

/* Forks; the child runs fn (which must _exit); returns the child's pid. */
static pid_t start_child(void (*fn)(int ready_fd), int *ready_fd)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        fn(p[1]);
        _exit(4);
    }
    close(p[1]);
    *ready_fd = p[0];
    return pid;
}

static int wait_child(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void assert_exit_code(int status, int code)
{
    if (!WIFEXITED(status)) {
        print_error("child did not exit (signal %d)\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        fail();
    }
    assert_int_equal(WEXITSTATUS(status), code);
}

static void stop_cb(void *arg)
{
    log_info("stop callback ran (%s)", (const char *)arg);
}

/* Tells the parent the loop runs. */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    int w = *(int *)arg;
    if (write(w, "r", 1) != 1)
        _exit(5);
}

/* A daemon that serves until SIGTERM, then signals itself once more during its cleanup. */
static void serving_daemon(int ready_fd)
{
    struct daemon d;
    child_init(&d);
    daemon_on_stop(&d, stop_cb, "flush state");
    event_base_once(d.base, -1, EV_TIMEOUT, on_ready, &ready_fd, NULL);
    if (daemon_run(&d) != 0)
        _exit(6);
    log_info("testd stopped");
    daemon_free(&d);
    _exit(0);
}

static void test_sigterm_stops_gracefully(void **state)
{
    (void)state;
    int ready;
    pid_t pid = start_child(serving_daemon, &ready);
    char c;
    assert_int_equal(read(ready, &c, 1), 1);
    close(ready);
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_exit_code(wait_child(pid), 0);
    char *text = read_log();
    assert_contains(text, "[INFO] [testd] received SIGTERM, stopping\n");
    assert_contains(text, "[INFO] [testd] stop callback ran (flush state)\n");
    assert_contains(text, "[INFO] [testd] testd stopped\n");
    assert_true(strstr(text, "stop callback ran") < strstr(text, "testd stopped"));
    free(text);
}

/* After daemon_run returned, SIGTERM acts as if nobody caught it. */
static void signalled_during_cleanup(int ready_fd)
{
    struct daemon d;
    child_init(&d);
    (void)ready_fd;
    daemon_stop(&d);
    daemon_run(&d);
    raise(SIGTERM);
    _exit(0);
}

static void test_signal_after_loop_kills(void **state)
{
    (void)state;
    int ready;
    int status = wait_child(start_child(signalled_during_cleanup, &ready));
    close(ready);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);
}

static void write_to_closed_socket(int ready_fd)
{
    struct daemon d;
    int sv[2];
    (void)ready_fd;
    child_init(&d);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        _exit(7);
    close(sv[1]);
    ssize_t n = write(sv[0], "x", 1);
    _exit(n < 0 && errno == EPIPE ? 0 : 8);
}

static void test_sigpipe_ignored(void **state)
{
    (void)state;
    int ready;
    int status = wait_child(start_child(write_to_closed_socket, &ready));
    close(ready);
    assert_exit_code(status, 0);
}

/* libevent warns (event_warn) when it cannot make fd -1 non-blocking. */
static void libevent_warns(int ready_fd)
{
    struct daemon d;
    (void)ready_fd;
    child_init(&d);
    if (evutil_make_socket_nonblocking(-1) != -1)
        _exit(9);
    daemon_free(&d);
    _exit(0);
}

static void test_libevent_warning_in_log(void **state)
{
    (void)state;
    int ready;
    int status = wait_child(start_child(libevent_warns, &ready));
    close(ready);
    assert_exit_code(status, 0);
    char *text = read_log();
    assert_contains(text, "[WARN] [testd] libevent: fcntl(-1, F_GETFL): Bad file descriptor\n");
    free(text);
}

static void noop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* In debug mode libevent refuses to re-assign an added event: a fatal error. */
static void misuse_in_debug_mode(int ready_fd)
{
    struct daemon d;
    (void)ready_fd;
    setenv("TISIM_EVENT_DEBUG", "1", 1);
    child_init(&d);
    struct event *ev = event_new(d.base, -1, 0, noop_cb, NULL);
    struct timeval tv = {3600, 0};
    if (!ev || event_add(ev, &tv) != 0)
        _exit(10);
    event_assign(ev, d.base, -1, 0, noop_cb, NULL);
    _exit(0);
}

static void test_debug_mode_and_fatal_errors(void **state)
{
    (void)state;
    int ready;
    int status = wait_child(start_child(misuse_in_debug_mode, &ready));
    close(ready);
    assert_exit_code(status, 1);
    char *text = read_log();
    assert_contains(text, "[INFO] [testd] libevent debug mode on (TISIM_EVENT_DEBUG)\n");
    assert_contains(text, "[ERROR] [testd] libevent: event_debug_assert_not_added_ called on an "
                          "already added event");
    assert_contains(text, "[ERROR] [testd] libevent: fatal error");
    free(text);
}

/* Lowers the soft limit, then reports soft == hard after daemon_init by its exit code. */
static void nofile_raised(int ready_fd)
{
    struct daemon d;
    struct rlimit rl;
    (void)ready_fd;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max <= 64)
        _exit(11);
    rl.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        _exit(12);
    child_init(&d);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        _exit(13);
    _exit(rl.rlim_cur == rl.rlim_max ? 0 : 14);
}

static void test_nofile_raised_to_hard_limit(void **state)
{
    (void)state;
    int ready;
    int status = wait_child(start_child(nofile_raised, &ready));
    close(ready);
    assert_exit_code(status, 0);
    char *text = read_log();
    assert_contains(text, "[INFO] [testd] open files limit raised from 64 to ");
    free(text);
}

static void test_bad_log_level_refused(void **state)
{
    (void)state;
    struct daemon d;
    char err[256];
    struct daemon_opts o = {.component = "testd", .log_file = g_path, .log_level = "loud"};
    assert_int_equal(daemon_init(&d, &o, err, sizeof err), -1);
    assert_string_equal(err, "unknown log level 'loud' (debug, info, warn, error)");
    o.log_file = "/nonexistent-dir/x.log";
    o.log_level = "info";
    assert_int_equal(daemon_init(&d, &o, err, sizeof err), -1);
    assert_contains(err, "cannot open log file /nonexistent-dir/x.log: No such file");
}

static void test_security_line_three_postures(void **state)
{
    (void)state;
    char *cns[] = {"PD-Control", "PD-Server"};
    struct daemon_security s = {.tls = true, .mutual = true, .ca_path = "/x/ca.pem",
                                .cert_path = "/x/pd.pem", .cn_key = "cert-allowed-cn",
                                .allowed_cn = cns, .n_allowed_cn = 2};
    assert_int_equal(log_open("pd", g_path, LOG_INFO), 0);
    daemon_log_security(&s);
    s.n_allowed_cn = 0;
    s.cn_key = "cluster-verify-cn";
    daemon_log_security(&s);
    daemon_log_security(&(struct daemon_security){.tls = false});
    char *text = read_log();
    assert_contains(text, "[INFO] [pd] security: TLS on (mutual, CA /x/ca.pem, cert /x/pd.pem); "
                          "CN check on: cert-allowed-cn [\"PD-Control\", \"PD-Server\"]\n");
    assert_contains(text, "[WARN] [pd] security: TLS on (mutual, CA /x/ca.pem, cert /x/pd.pem); "
                          "CN check OFF: cluster-verify-cn is empty, any certificate signed by "
                          "the CA is let in\n");
    assert_contains(text, "[WARN] [pd] security: TLS OFF: plaintext, no authentication\n");
    free(text);
}

/* A self-signed cert valid from..to, written as path (its key beside it). */
static void write_cert(const char *path, time_t from, time_t to)
{
    char key[128], err[256];
    snprintf(key, sizeof key, "%s.key", path);
    struct certgen_req req = {.cn = "PD-Server", .not_before = from, .not_after = to};
    struct certgen_pair *p = NULL;
    assert_int_equal(certgen_make(&req, NULL, &p, err, sizeof err), 0);
    assert_int_equal(certgen_write(p, path, key, err, sizeof err), 0);
    certgen_free(p);
    unlink(key);
}

/* The daemon's own certificate: expired, not yet valid, expiring soon -- each a WARN; a
 * certificate good for a year says nothing more. */
static void test_own_cert_validity_warned(void **state)
{
    (void)state;
    time_t now = time(NULL);
    char good[80], soon[80], old[80], early[80];
    snprintf(good, sizeof good, "%s.good", g_path);
    snprintf(soon, sizeof soon, "%s.soon", g_path);
    snprintf(old, sizeof old, "%s.old", g_path);
    snprintf(early, sizeof early, "%s.early", g_path);
    write_cert(good, now - 3600, now + 365 * 86400L);
    write_cert(soon, now - 3600, now + 5 * 86400L + 3600);
    write_cert(old, now - 10 * 86400L, now - 86400L);
    write_cert(early, now + 86400L, now + 10 * 86400L);
    struct daemon_security s = {.tls = true, .mutual = true, .ca_path = "/x/ca.pem"};
    assert_int_equal(log_open("pd", g_path, LOG_INFO), 0);
    const char *paths[] = {good, soon, old, early};
    for (size_t i = 0; i < 4; i++) {
        s.cert_path = paths[i];
        daemon_log_security(&s);
    }
    char *text = read_log();
    assert_contains(text, "expires in 5 days");
    assert_contains(text, "has expired (on ");
    assert_contains(text, "is not valid yet (from ");
    assert_null(strstr(text, ".good expires"));
    assert_null(strstr(text, ".good has expired"));
    free(text);
    unlink(good);
    unlink(soon);
    unlink(old);
    unlink(early);
}

/* A misspelled name (a stray quote, a trailing space) is visible in the line. */
static void test_security_line_shows_odd_names(void **state)
{
    (void)state;
    char *cns[] = {"PD-Server ", "TiDB\"Server"};
    struct daemon_security s = {.surface = "MySQL clients", .tls = true, .mutual = true,
                                .ca_path = "/ca", .cert_path = "/c", .cn_key = "k",
                                .allowed_cn = cns, .n_allowed_cn = 2};
    char line[512];
    int n = daemon_security_line(line, sizeof line, &s);
    assert_string_equal(line, "security (MySQL clients): TLS on (mutual, CA /ca, cert /c); "
                              "CN check on: k [\"PD-Server \", \"TiDB\\\"Server\"]");
    assert_int_equal(n, (int)strlen(line));
    char small[16];
    assert_true(daemon_security_line(small, sizeof small, &s) == n); /* a cut is reported */
    assert_int_equal(strlen(small), sizeof small - 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_sigterm_stops_gracefully),    T(test_signal_after_loop_kills),
        T(test_sigpipe_ignored),             T(test_libevent_warning_in_log),
        T(test_debug_mode_and_fatal_errors), T(test_nofile_raised_to_hard_limit),
        T(test_bad_log_level_refused),       T(test_security_line_three_postures),
        T(test_security_line_shows_odd_names), T(test_own_cert_validity_warned),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
