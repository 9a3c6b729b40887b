/* test_log.c — the log as a reader of a daemon's log file sees it: one call is one line,
 * errno text only where the name says so, the level filter, handshake lines as valid JSON,
 * start-up warnings replayed into the file, fatal/fatalx exit 1 after logging. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "testutil.h"

static char g_path[64];

/* A fresh, empty log file for each test. */
static int setup(void **state)
{
    (void)state;
    snprintf(g_path, sizeof g_path, "/tmp/test_log.XXXXXX");
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

/* The whole log file, NUL-terminated (caller frees). */
static char *read_log(void)
{
    char *text = tu_read_file(g_path);
    assert_non_null(text);
    return text;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Must run first: once log_open has run in this process, nothing is kept for replay. */
static void test_startup_warnings_replayed_into_file(void **state)
{
    (void)state;
    log_warnx("config: unknown key 'bogus-key' (ignored)");
    log_info("an early info line");
    assert_int_equal(log_open("pd", g_path, LOG_INFO), 0);
    log_info("after open");
    char *text = read_log();
    assert_contains(text, "[WARN] [tisim] config: unknown key 'bogus-key' (ignored)\n");
    assert_contains(text, "[INFO] [pd] after open\n");
    assert_null(strstr(text, "an early info line"));
    free(text);
}

static void test_control_bytes_are_escaped(void **state)
{
    (void)state;
    assert_int_equal(log_open("pd", g_path, LOG_DEBUG), 0);
    log_info("peer sent %s", "GET /\r\nHost: x\x01\x7f" "end");
    char *text = read_log();
    assert_int_equal(count_lines(text), 1);
    assert_contains(text, "[INFO] [pd] peer sent GET /\\x0d\\x0aHost: x\\x01\\x7fend\n");
    free(text);
}

static void test_warn_appends_errno_warnx_does_not(void **state)
{
    (void)state;
    assert_int_equal(log_open("pd", g_path, LOG_DEBUG), 0);
    errno = ENOENT;
    log_warn("cannot open %s", "/x/state.json");
    errno = ENOENT;
    log_warnx("cannot parse %s", "/x/state.json");
    assert_int_equal(errno, ENOENT); /* logging leaves errno alone */
    char *text = read_log();
    assert_contains(text, "[WARN] [pd] cannot open /x/state.json: No such file or directory\n");
    assert_contains(text, "[WARN] [pd] cannot parse /x/state.json\n");
    assert_int_equal(count_lines(text), 2);
    free(text);
}

static void test_level_filter(void **state)
{
    (void)state;
    assert_int_equal(log_open("tikv", g_path, LOG_WARN), 0);
    log_debug("debug hidden");
    log_info("info hidden");
    log_warnx("warn shown");
    log_error("error shown");
    log_handshake(&(struct log_handshake){.role = "tikv", .ok = true}); /* INFO: hidden */
    char *text = read_log();
    assert_null(strstr(text, "hidden"));
    assert_null(strstr(text, "tls_handshake"));
    assert_contains(text, "[WARN] [tikv] warn shown\n");
    assert_contains(text, "[ERROR] [tikv] error shown\n");
    free(text);

    enum log_level l;
    assert_int_equal(log_level_parse("WARNING", &l), 0);
    assert_int_equal(l, LOG_WARN);
    assert_int_equal(log_level_parse("debug", &l), 0);
    assert_int_equal(l, LOG_DEBUG);
    assert_int_equal(log_level_parse("verbose", &l), -1);
}

static void assert_json_str(json_t *o, const char *key, const char *want)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) {
        print_error("field \"%s\" missing or not a string\n", key);
        fail();
    }
    assert_string_equal(json_string_value(v), want);
}

static void test_handshake_is_one_json_line(void **state)
{
    (void)state;
    assert_int_equal(log_open("pd", g_path, LOG_INFO), 0);
    log_handshake(&(struct log_handshake){
        .role = "pd", .direction = "in", .peer = "127.0.0.1:51234",
        .peer_cn = "Evil\n\x01\xff\"CN", .ok = false, .reason = "CN not allowed\r\n",
        .version = "TLSv1.2", .suite = "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
        .resumed = true});
    char *text = read_log();
    assert_int_equal(count_lines(text), 1);
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    if (!o) {
        print_error("not JSON (%s): %s\n", jerr.text, text);
        fail();
    }
    assert_json_str(o, "level", "WARN");
    assert_json_str(o, "component", "pd");
    assert_json_str(o, "event", "tls_handshake");
    assert_json_str(o, "role", "pd");
    assert_json_str(o, "direction", "in");
    assert_json_str(o, "peer", "127.0.0.1:51234");
    assert_json_str(o, "peer_cn", "Evil???\"CN");
    assert_json_str(o, "result", "fail");
    assert_json_str(o, "reason", "CN not allowed??");
    assert_json_str(o, "version", "TLSv1.2");
    assert_json_str(o, "cipher_suite", "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");
    assert_true(json_is_true(json_object_get(o, "resumed")));
    assert_true(json_is_string(json_object_get(o, "time")));
    json_decref(o);
    free(text);
}

/* Runs fn in a child with the log open on g_path; returns its wait status. */
static int run_child(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (log_open("pd", g_path, LOG_INFO) != 0)
            _exit(3);
        fn();
        _exit(0); /* fn must not return */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void call_fatal(void)
{
    errno = EACCES;
    fatal("cannot bind %s", "127.0.0.1:2379");
}

static void call_fatalx(void)
{
    errno = EACCES;
    fatalx("bad config %s", "pd.toml");
}

static void test_fatal_logs_and_exits_1(void **state)
{
    (void)state;
    int status = run_child(call_fatal);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    status = run_child(call_fatalx);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char *text = read_log();
    assert_contains(text, "[ERROR] [pd] cannot bind 127.0.0.1:2379: Permission denied\n");
    assert_contains(text, "[ERROR] [pd] bad config pd.toml\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_startup_warnings_replayed_into_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_control_bytes_are_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_warn_appends_errno_warnx_does_not, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_is_one_json_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fatal_logs_and_exits_1, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
