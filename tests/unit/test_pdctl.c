/* Unit tests for pdctl: pd-ctl's command planning, printing and endpoint handling.
 *
 * pdctl_plan and pdctl_print need no server. pdctl_run is checked for the endpoint list
 * (tried in turn), the one-line failure, the https-without-CA refusal and the local actions,
 * against a canned plain-HTTP responder in a child process. */
#define _GNU_SOURCE /* open_memstream, fmemopen */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pdctl.h"
#include "testutil.h"

/* physical 1700000000000 ms (2023-11-14 22:13:20 UTC), logical 7 */
#define TSO_TEXT "445644800000000007"
#define TSO_DECODED "system:  2023-11-14 22:13:20 +0000 UTC\nlogic:  7\n"

/* ---------------------------------------------------------------------------------------- */
/* Planning                                                                                  */

/* Plans the words of line (split on spaces); returns pdctl_plan's result. */
static int plan(const char *line, struct pdctl_call *call, char *err, size_t errlen)
{
    static char buf[256];
    char *words[16];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && n < 16;
         w = strtok_r(NULL, " ", &save))
        words[n++] = w;
    err[0] = '\0';
    return pdctl_plan(n, words, call, err, errlen);
}

static void expect_call(const char *line, enum pdctl_action action, const char *method,
                        const char *path)
{
    struct pdctl_call call;
    char err[256];
    int rc = plan(line, &call, err, sizeof err);
    if (rc != 0)
        print_error("'%s': %s\n", line, err);
    assert_int_equal(rc, 0);
    assert_int_equal(call.action, action);
    assert_string_equal(call.method, method);
    assert_string_equal(call.path, path);
}

static void expect_usage(const char *line, const char *want)
{
    struct pdctl_call call;
    char err[256];
    assert_int_equal(plan(line, &call, err, sizeof err), -1);
    assert_contains(err, want);
    assert_null(strchr(err, '\n'));
}

static void test_plan_commands(void **state)
{
    (void)state;
    expect_call("health", PDCTL_HTTP_JSON, "GET", "/pd/api/v1/health");
    expect_call("member", PDCTL_HTTP_JSON, "GET", "/pd/api/v1/members");
    expect_call("member leader show", PDCTL_HTTP_JSON, "GET", "/pd/api/v1/leader");
    expect_call("store", PDCTL_HTTP_JSON, "GET", "/pd/api/v1/stores");
    expect_call("store 1", PDCTL_HTTP_JSON, "GET", "/pd/api/v1/store/1");
    expect_call("store 18446744073709551615", PDCTL_HTTP_JSON, "GET",
                "/pd/api/v1/store/18446744073709551615");
    expect_call("region", PDCTL_HTTP_JSON, "GET", "/pd/api/v1/regions");
    expect_call("region 42", PDCTL_HTTP_JSON, "GET", "/pd/api/v1/region/id/42");
    expect_call("cluster", PDCTL_HTTP_JSON, "GET", "/pd/api/v1/cluster");
    expect_call("tso", PDCTL_HTTP_TSO, "POST", "/pd/api/v1/tso");
}

static void expect_filter(const char *line, const char *f0, const char *f1)
{
    struct pdctl_call call;
    char err[256];
    assert_int_equal(plan(line, &call, err, sizeof err), 0);
    assert_int_equal(call.action, PDCTL_HTTP_CONFIG);
    assert_string_equal(call.method, "GET");
    assert_string_equal(call.path, "/pd/api/v1/config");
    if (f0)
        assert_string_equal(call.filter[0], f0);
    else
        assert_null(call.filter[0]);
    if (f1)
        assert_string_equal(call.filter[1], f1);
    else
        assert_null(call.filter[1]);
}

static void test_plan_config(void **state)
{
    (void)state;
    expect_filter("config show", "replication", "schedule");
    expect_filter("config show all", NULL, NULL);
    expect_filter("config show replication", "replication", NULL);
    expect_filter("config show schedule", "schedule", NULL);
}

static void test_plan_local_actions(void **state)
{
    (void)state;
    struct pdctl_call call;
    char err[256];
    assert_int_equal(plan("help", &call, err, sizeof err), 0);
    assert_int_equal(call.action, PDCTL_HELP);
    assert_int_equal(plan("tso 449915498057302017", &call, err, sizeof err), 0);
    assert_int_equal(call.action, PDCTL_DECODE_TSO);
    assert_true(call.tso_arg == 449915498057302017ULL);
}

static void test_plan_bad_arguments(void **state)
{
    (void)state;
    expect_usage("", "no command given");
    expect_usage("bogus", "unknown command 'bogus'");
    expect_usage("health now", "usage: health");
    expect_usage("member x", "usage: member | member leader show");
    expect_usage("member leader", "usage: member | member leader show");
    expect_usage("member leader show x", "usage: member");
    expect_usage("store 0", "usage: store [ID] (ID is a positive integer, got '0')");
    expect_usage("store abc", "got 'abc'");
    expect_usage("store -1", "got '-1'");
    expect_usage("store +1", "got '+1'");
    expect_usage("store 1 2", "usage: store [ID]");
    expect_usage("store 18446744073709551616", "got '18446744073709551616'"); /* 2^64 */
    expect_usage("store 123456789012345678901", "positive integer");
    expect_usage("region x", "usage: region [ID] (ID is a positive integer, got 'x')");
    expect_usage("region 0", "usage: region [ID]");
    expect_usage("cluster x", "usage: cluster");
    expect_usage("config", "usage: config show [all|replication|schedule]");
    expect_usage("config list", "usage: config show");
    expect_usage("config show bogus", "(got 'bogus')");
    expect_usage("config show all more", "usage: config show");
    expect_usage("tso abc", "Failed to parse TSO: strconv.ParseUint: parsing \"abc\"");
    expect_usage("tso -5", "Failed to parse TSO");
    expect_usage("tso 1 2", "usage: tso [TSO]");
}

/* ---------------------------------------------------------------------------------------- */
/* Printing                                                                                  */

struct capture {
    FILE *out, *err;
    char *obuf, *ebuf;
    size_t olen, elen;
};

static void capture_open(struct capture *c)
{
    memset(c, 0, sizeof *c);
    c->out = open_memstream(&c->obuf, &c->olen);
    c->err = open_memstream(&c->ebuf, &c->elen);
    assert_non_null(c->out);
    assert_non_null(c->err);
}

/* Flushes; the texts stay readable in obuf/ebuf until capture_free. */
static void capture_flush(struct capture *c)
{
    fflush(c->out);
    fflush(c->err);
}

static void capture_free(struct capture *c)
{
    fclose(c->out);
    fclose(c->err);
    free(c->obuf);
    free(c->ebuf);
}

/* Prints body as the answer to the command line; checks rc, stdout and stderr exactly. */
static void expect_print(const char *line, int status, const char *body, int want_rc,
                         const char *want_out, const char *want_err)
{
    struct pdctl_call call;
    char err[256];
    assert_int_equal(plan(line, &call, err, sizeof err), 0);
    struct capture c;
    capture_open(&c);
    int rc = pdctl_print(&call, status, body, strlen(body), c.out, c.err);
    capture_flush(&c);
    assert_string_equal(c.obuf, want_out);
    assert_string_equal(c.ebuf, want_err);
    assert_int_equal(rc, want_rc);
    capture_free(&c);
}

static void test_print_tso(void **state)
{
    (void)state;
    expect_print("tso", 200, "{\"tso\": 449915498057302017}", 0, "449915498057302017\n", "");
    expect_print("tso", 200, "{\"count\": 1}", 1, "",
                 "pd-ctl: PD's answer to the TSO request has no \"tso\" number\n");
    expect_print("tso", 200, "{\"tso\": -1}", 1, "",
                 "pd-ctl: PD's answer to the TSO request has no \"tso\" number\n");
    expect_print("tso", 200, "not json", 1, "",
                 "pd-ctl: PD's answer to the TSO request has no \"tso\" number\n");
}

#define CONFIG_BODY                                                                           \
    "{\"pd-server\": {\"x\": 1}, \"replication\": {\"max-replicas\": 3}, "                     \
    "\"schedule\": {\"b\": 2, \"a\": 1}}"

static void test_print_config_filter(void **state)
{
    (void)state;
    expect_print("config show", 200, CONFIG_BODY, 0,
                 "{\n  \"replication\": {\n    \"max-replicas\": 3\n  },\n"
                 "  \"schedule\": {\n    \"b\": 2,\n    \"a\": 1\n  }\n}\n",
                 "");
    expect_print("config show replication", 200, CONFIG_BODY, 0,
                 "{\n  \"max-replicas\": 3\n}\n", "");
    expect_print("config show schedule", 200, CONFIG_BODY, 0,
                 "{\n  \"b\": 2,\n  \"a\": 1\n}\n", "");
    expect_print("config show all", 200, CONFIG_BODY, 0,
                 "{\n  \"pd-server\": {\n    \"x\": 1\n  },\n"
                 "  \"replication\": {\n    \"max-replicas\": 3\n  },\n"
                 "  \"schedule\": {\n    \"b\": 2,\n    \"a\": 1\n  }\n}\n",
                 "");
}

static void test_print_json_and_raw(void **state)
{
    (void)state;
    /* Pretty, 2-space indent, the server's key order. */
    expect_print("health", 200, "{\"z\":true,\"a\":[1,2]}", 0,
                 "{\n  \"z\": true,\n  \"a\": [\n    1,\n    2\n  ]\n}\n", "");
    /* Not JSON: as it is, with a final newline added once. */
    expect_print("cluster", 200, "plain text", 0, "plain text\n", "");
    expect_print("cluster", 200, "two\nlines\n", 0, "two\nlines\n", "");
    expect_print("cluster", 204, "", 0, "", "");
}

static void test_print_error_status(void **state)
{
    (void)state;
    expect_print("store 99", 404, "\"store 99 not found\"\n", 1, "",
                 "[404] store 99 not found\n");
    expect_print("health", 500, "{\"message\": \"no PD leader\"}", 1, "", "[500] no PD leader\n");
    expect_print("health", 503, "{\"error\": \"busy\"}", 1, "", "[503] busy\n");
    expect_print("health", 502, "  <html>bad\ngateway</html>\r\n", 1, "",
                 "[502] <html>bad gateway</html>\n");
    expect_print("health", 301, "", 1, "", "[301] \n");
}

/* ---------------------------------------------------------------------------------------- */
/* Endpoints                                                                                 */

static void expect_url(const char *endpoint, bool have_ca, const char *want)
{
    char buf[128];
    assert_int_equal(pdctl_endpoint_url(endpoint, have_ca, buf, sizeof buf), 0);
    assert_string_equal(buf, want);
}

static void test_endpoint_url(void **state)
{
    (void)state;
    expect_url("127.0.0.1:2379", false, "http://127.0.0.1:2379");
    expect_url("127.0.0.1:2379", true, "https://127.0.0.1:2379");
    expect_url("http://127.0.0.1:2379", false, "http://127.0.0.1:2379");
    expect_url("http://127.0.0.1:2379", true, "https://127.0.0.1:2379"); /* upgraded */
    expect_url("HTTP://pd:2379", true, "https://pd:2379");
    expect_url("https://pd:2379", false, "https://pd:2379"); /* never downgraded */
    expect_url("  pd:2379  ", false, "http://pd:2379");
    expect_url("ftp://pd:1", true, "ftp://pd:1"); /* left for url_parse to name */
    char small[8];
    assert_int_equal(pdctl_endpoint_url("", false, small, sizeof small), -1);
    assert_int_equal(pdctl_endpoint_url("   ", true, small, sizeof small), -1);
    assert_int_equal(pdctl_endpoint_url("127.0.0.1:2379", false, small, sizeof small), -1);
}

/* ---------------------------------------------------------------------------------------- */
/* Running (a canned plain-HTTP responder in a child process)                                */

static pid_t g_child;

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* A port nothing listens on. */
static int closed_port(void)
{
    int port = 0;
    int fd = listen_any(&port);
    if (fd < 0)
        return -1;
    close(fd);
    return port;
}

static void serve_canned(int lfd, const char *answer)
{
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        char req[8192];
        size_t len = 0;
        ssize_t n;
        while (len < sizeof req - 1 && (n = read(fd, req + len, sizeof req - 1 - len)) > 0) {
            len += (size_t)n;
            req[len] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        (void)!write(fd, answer, strlen(answer));
        close(fd);
    }
}

static int start_canned(const char *answer)
{
    int port = 0;
    int lfd = listen_any(&port);
    if (lfd < 0)
        return -1;
    g_child = fork();
    if (g_child == 0)
        serve_canned(lfd, answer);
    close(lfd);
    return g_child > 0 ? port : -1;
}

static int kill_child(void **state)
{
    (void)state;
    if (g_child > 0) {
        kill(g_child, SIGKILL);
        waitpid(g_child, NULL, 0);
        g_child = 0;
    }
    return 0;
}

/* Runs the words of line with the endpoint list pd; returns pdctl_run's exit status. */
static int run(const char *pd, const char *ca, const char *line, struct capture *c)
{
    char buf[256];
    char *words[16];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && n < 16;
         w = strtok_r(NULL, " ", &save))
        words[n++] = w;
    capture_open(c);
    struct pdctl p = {.pd = pd, .tls = {.ca_path = ca}, .timeout_ms = 5000,
                      .out = c->out, .err = c->err};
    int rc = pdctl_run(&p, n, words);
    capture_flush(c);
    return rc;
}

static void test_run_endpoints_in_turn(void **state)
{
    (void)state;
    int good = start_canned("HTTP/1.1 200 OK\r\nContent-Length: 16\r\nConnection: close\r\n"
                            "\r\n{\"health\":true}\n");
    int closed = closed_port();
    assert_true(good > 0 && closed > 0);
    char list[128];
    struct capture c;
    /* The first endpoint is down, the second answers. */
    snprintf(list, sizeof list, "127.0.0.1:%d, http://127.0.0.1:%d", closed, good);
    assert_int_equal(run(list, NULL, "health", &c), 0);
    assert_string_equal(c.obuf, "{\n  \"health\": true\n}\n");
    assert_string_equal(c.ebuf, "");
    capture_free(&c);
    /* All down: one line naming the last failure. */
    snprintf(list, sizeof list, "127.0.0.1:%d,,127.0.0.1:%d", good, closed);
    kill_child(NULL);
    assert_int_equal(run(list, NULL, "health", &c), 1);
    assert_string_equal(c.obuf, "");
    char want[64];
    snprintf(want, sizeof want, "pd-ctl: cannot connect to 127.0.0.1:%d: Connection refused\n",
             closed);
    assert_string_equal(c.ebuf, want);
    assert_true(strchr(c.ebuf, '\n') == c.ebuf + strlen(c.ebuf) - 1);
    capture_free(&c);
}

static void test_run_status_and_usage(void **state)
{
    (void)state;
    int port = start_canned("HTTP/1.1 404 Not Found\r\nContent-Length: 20\r\n"
                            "Connection: close\r\n\r\n\"store 99 not found\"");
    assert_true(port > 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    struct capture c;
    assert_int_equal(run(url, NULL, "store 99", &c), 1);
    assert_string_equal(c.obuf, "");
    assert_string_equal(c.ebuf, "[404] store 99 not found\n");
    capture_free(&c);
    /* Usage errors never reach the network. */
    assert_int_equal(run(url, NULL, "store x", &c), 1);
    assert_string_equal(c.ebuf, "pd-ctl: usage: store [ID] (ID is a positive integer, got 'x')\n"
                                "Run 'pd-ctl --help' for usage.\n");
    capture_free(&c);
    /* https without a CA is refused before any connection, whatever the list holds. */
    assert_int_equal(run("https://127.0.0.1:1,https://127.0.0.1:2", NULL, "health", &c), 1);
    assert_string_equal(c.ebuf, "pd-ctl: https URL needs --cacert (and --cert/--key for a "
                                "cluster with mutual TLS)\n");
    capture_free(&c);
    assert_int_equal(run(" , ", NULL, "health", &c), 1);
    assert_string_equal(c.ebuf, "pd-ctl: no PD address given (use -u URL)\n");
    capture_free(&c);
}

static void test_run_local_actions(void **state)
{
    (void)state;
    struct capture c;
    /* No server: these must not need one. */
    assert_int_equal(run("http://127.0.0.1:1", NULL, "tso " TSO_TEXT, &c), 0);
    assert_string_equal(c.obuf, TSO_DECODED);
    assert_string_equal(c.ebuf, "");
    capture_free(&c);
    assert_int_equal(run("http://127.0.0.1:1", NULL, "help", &c), 0);
    assert_contains(c.obuf, "Usage:\n  pd-ctl [flags] COMMAND [ARGS]");
    capture_free(&c);
}

static void test_interactive(void **state)
{
    (void)state;
    static char input[] = "tso " TSO_TEXT "\n\nbogus\n  \nexit\nhelp\n";
    FILE *in = fmemopen(input, strlen(input), "r");
    assert_non_null(in);
    struct capture c;
    capture_open(&c);
    struct pdctl p = {.pd = "http://127.0.0.1:1", .timeout_ms = 1000, .out = c.out,
                      .err = c.err};
    int rc = pdctl_interactive(&p, in); /* not a terminal: the last command's status */
    capture_flush(&c);
    fclose(in);
    assert_int_equal(rc, 1);
    assert_string_equal(c.obuf, TSO_DECODED); /* and nothing else */
    assert_null(strstr(c.obuf, "Usage:")); /* "help" comes after "exit" */
    assert_string_equal(c.ebuf, "pd-ctl: unknown command 'bogus'\n"
                                "Run 'pd-ctl --help' for usage.\n");
    capture_free(&c);
}

int main(void)
{
    log_open("test", NULL, LOG_ERROR);
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_commands),
        cmocka_unit_test(test_plan_config),
        cmocka_unit_test(test_plan_local_actions),
        cmocka_unit_test(test_plan_bad_arguments),
        cmocka_unit_test(test_print_tso),
        cmocka_unit_test(test_print_config_filter),
        cmocka_unit_test(test_print_json_and_raw),
        cmocka_unit_test(test_print_error_status),
        cmocka_unit_test(test_endpoint_url),
        cmocka_unit_test_teardown(test_run_endpoints_in_turn, kill_child),
        cmocka_unit_test_teardown(test_run_status_and_usage, kill_child),
        cmocka_unit_test(test_run_local_actions),
        cmocka_unit_test(test_interactive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
