/* test_tidbctl.c — tidb-ctl: the guide's `-u https://... --ca --ssl-cert --ssl-key` form and
 * real tidb-ctl's `--host --port` form, the commands (status, info, schema, schema in DB
 * [-n TABLE]) and their paths, printing as real tidb-ctl (4-space JSON), and every failure as
 * one line: HTTP errors with the body, a CN outside the server's list, no client certificate,
 * an untrusted server, nothing listening, a plaintext server, usage errors (no network).
 * The servers are the daemons' own HTTPS server (http.h) in a child process: one that
 * requires a client certificate with CN TiKV-Control, one that asks for none, one plain. */
#define _GNU_SOURCE /* open_memstream */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "testutil.h"
#include "tidbctl.h"
#include "tls.h"

static char g_dir[200];   /* cluster PKI; client.pem has CN TiKV-Control */
static char g_other[200]; /* another CA */
static pid_t g_child;
static int g_mutual, g_one_way, g_plain; /* the child's ports */
static int g_closed;                      /* a port nothing listens on */
static bool g_child_clean;                /* it freed everything and exited 0 */

#define STATUS_BODY "{\"connections\":1,\"version\":\"8.0.11-TiDB-tisim\",\"git_hash\":\"abc\"}"
#define STATUS_PRINTED                                                                        \
    "{\n    \"connections\": 1,\n    \"version\": \"8.0.11-TiDB-tisim\",\n"                   \
    "    \"git_hash\": \"abc\"\n}\n"

/* ---------------------------------------------------------------------------------------- */
/* The servers (child process)                                                               */

static void reply_raw(struct evhttp_request *req, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, strlen(text));
    evhttp_send_reply(req, 200, NULL, b);
    evbuffer_free(b);
}

static void on_status(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    (void)arg;
    reply_raw(req, STATUS_BODY);
}

static void on_info(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    (void)arg;
    http_reply_json(req, 200, json_pack("{s:b, s:i}", "is_owner", 1, "listening_port", 4000));
}

static void on_schema(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)arg;
    if (!*rest)
        http_reply_json(req, 200, json_pack("[{s:i, s:{s:s}}]", "id", 1, "db_name", "O", "mysql"));
    else if (strcmp(rest, "nope") == 0)
        http_reply_error(req, 404, "[schema:1049]Unknown database 'nope'");
    else /* the path as it arrived, to check the encoding */
        http_reply_json(req, 200, json_pack("{s:s}", "rest", rest));
}

static struct http_server *serve_on(struct event_base *base, struct tls_ctx *tls, int *port)
{
    char err[512];
    struct http_server *s = http_server_new(base, "127.0.0.1", 0, tls, err, sizeof err);
    if (!s || http_server_route(s, EVHTTP_REQ_GET, "/status", on_status, NULL) ||
        http_server_route(s, EVHTTP_REQ_GET, "/info", on_info, NULL) ||
        http_server_route(s, EVHTTP_REQ_GET, "/schema", on_schema, NULL) ||
        http_server_route(s, EVHTTP_REQ_GET, "/schema/", on_schema, NULL)) {
        fprintf(stderr, "child: %s\n", err);
        exit(2);
    }
    *port = http_server_port(s);
    return s;
}

static struct tls_ctx *server_ctx(enum tls_client_auth auth, char *const *cn, size_t n)
{
    char ca[300], cert[300], key[300], err[512];
    snprintf(ca, sizeof ca, "%s/ca.pem", g_dir);
    snprintf(cert, sizeof cert, "%s/tidb-server.pem", g_dir);
    snprintf(key, sizeof key, "%s/tidb-server-key.pem", g_dir);
    struct tls_opts o = {.role = "tidb", .ca_path = ca, .cert_path = cert, .key_path = key,
                         .allowed_cn = cn, .n_allowed_cn = n, .cn_check = TLS_CN_HANDSHAKE,
                         .client_auth = auth};
    struct tls_ctx *ctx = tls_ctx_new(TLS_SERVER, &o, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "child: %s\n", err);
        exit(2);
    }
    return ctx;
}

static void on_term(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* Serves until SIGTERM, then frees everything and exits 0 (so leak checks run). */
static void child(int wfd)
{
    char *cns[] = {"TiKV-Control"};
    struct event_base *base = event_base_new();
    struct event *term = evsignal_new(base, SIGTERM, on_term, base);
    event_add(term, NULL);
    struct tls_ctx *mutual = server_ctx(TLS_AUTH_REQUIRED, cns, 1);
    struct tls_ctx *one_way = server_ctx(TLS_AUTH_NONE, NULL, 0);
    int ports[3];
    struct http_server *s[3] = {serve_on(base, mutual, &ports[0]),
                                serve_on(base, one_way, &ports[1]),
                                serve_on(base, NULL, &ports[2])};
    if (write(wfd, ports, sizeof ports) != (ssize_t)sizeof ports)
        exit(2);
    close(wfd);
    event_base_dispatch(base);
    for (int i = 0; i < 3; i++)
        http_server_free(s[i]);
    tls_ctx_free(mutual);
    tls_ctx_free(one_way);
    event_free(term);
    event_base_free(base);
    log_close();
    exit(0);
}

/* A port that was free a moment ago (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    log_open("test", NULL, LOG_ERROR);
    if (tu_pki_dir(g_dir, sizeof g_dir, "tidbctl", "TiKV-Control") != 0 ||
        tu_pki_dir(g_other, sizeof g_other, "tidbctl-other", "TiKV-Control") != 0)
        return -1;
    int p[2];
    if (pipe(p) != 0)
        return -1;
    g_child = fork();
    if (g_child == 0) {
        close(p[0]);
        child(p[1]);
    }
    close(p[1]);
    int ports[3];
    ssize_t n = g_child > 0 ? read(p[0], ports, sizeof ports) : -1;
    close(p[0]);
    if (n != (ssize_t)sizeof ports)
        return -1;
    g_mutual = ports[0];
    g_one_way = ports[1];
    g_plain = ports[2];
    g_closed = closed_port();
    return g_closed > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    int status = -1;
    if (g_child > 0) {
        kill(g_child, SIGTERM);
        waitpid(g_child, &status, 0);
    }
    tu_rm_rf(g_dir);
    tu_rm_rf(g_other);
    /* The child freed everything and exited 0 (under ASan: no leak reported). cmocka does not
     * count a failed group teardown, so main() checks this. */
    g_child_clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!g_child_clean)
        fprintf(stderr, "the server child did not exit cleanly (status 0x%x)\n", status);
    return g_child_clean ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------- */
/* Running tidb-ctl                                                                          */

struct capture {
    FILE *out, *err;
    char *obuf, *ebuf;
    size_t olen, elen;
};

static void capture_free(struct capture *c)
{
    free(c->obuf);
    free(c->ebuf);
}

/* Runs tidb-ctl with the words of line; "{ca}", "{cert}", "{key}", "{ca2}" stand for files of
 * the PKIs ("{cert}" = client.pem), "{M}", "{O}", "{P}" for the mutual, one-way and plain
 * ports. Returns the exit status; out and err stay in c until capture_free. */
static int run(const char *line, struct capture *c)
{
    static char buf[4096];
    char *argv[32] = {"tidb-ctl"};
    int argc = 1;
    char expanded[4096] = "";
    size_t n = 0;
    for (const char *p = line; *p && n < sizeof expanded - 400;) {
        char sub[350] = "";
        if (strncmp(p, "{ca}", 4) == 0)
            snprintf(sub, sizeof sub, "%s/ca.pem", g_dir), p += 4;
        else if (strncmp(p, "{ca2}", 5) == 0)
            snprintf(sub, sizeof sub, "%s/ca.pem", g_other), p += 5;
        else if (strncmp(p, "{cert}", 6) == 0)
            snprintf(sub, sizeof sub, "%s/client.pem", g_dir), p += 6;
        else if (strncmp(p, "{key}", 5) == 0)
            snprintf(sub, sizeof sub, "%s/client-key.pem", g_dir), p += 5;
        else if (strncmp(p, "{pd}", 4) == 0)
            snprintf(sub, sizeof sub, "%s/pd-server.pem", g_dir), p += 4;
        else if (strncmp(p, "{pdkey}", 7) == 0)
            snprintf(sub, sizeof sub, "%s/pd-server-key.pem", g_dir), p += 7;
        else if (strncmp(p, "{M}", 3) == 0)
            snprintf(sub, sizeof sub, "%d", g_mutual), p += 3;
        else if (strncmp(p, "{O}", 3) == 0)
            snprintf(sub, sizeof sub, "%d", g_one_way), p += 3;
        else if (strncmp(p, "{P}", 3) == 0)
            snprintf(sub, sizeof sub, "%d", g_plain), p += 3;
        else if (strncmp(p, "{C}", 3) == 0)
            snprintf(sub, sizeof sub, "%d", g_closed), p += 3;
        else
            sub[0] = *p++;
        n += (size_t)snprintf(expanded + n, sizeof expanded - n, "%s", sub);
    }
    snprintf(buf, sizeof buf, "%s", expanded);
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && argc < 31;
         w = strtok_r(NULL, " ", &save))
        argv[argc++] = strcmp(w, "''") == 0 ? "" : w;
    memset(c, 0, sizeof *c);
    c->out = open_memstream(&c->obuf, &c->olen);
    c->err = open_memstream(&c->ebuf, &c->elen);
    assert_non_null(c->out);
    assert_non_null(c->err);
    int rc = tidbctl_main(argc, argv, c->out, c->err);
    fclose(c->out);
    fclose(c->err);
    return rc;
}

static void expect_ok(const char *line, const char *want_out)
{
    struct capture c;
    int rc = run(line, &c);
    if (rc != 0)
        print_error("%s: %s\n", line, c.ebuf);
    assert_int_equal(rc, 0);
    assert_string_equal(c.ebuf, "");
    assert_string_equal(c.obuf, want_out);
    capture_free(&c);
}

/* Fails with exactly one line on err, "tidb-ctl: ..." containing want, nothing on out. */
static void expect_fail(const char *line, const char *want)
{
    struct capture c;
    int rc = run(line, &c);
    assert_int_equal(rc, 1);
    assert_string_equal(c.obuf, "");
    assert_contains(c.ebuf, want);
    assert_true(strchr(c.ebuf, '\n') == c.ebuf + strlen(c.ebuf) - 1);
    capture_free(&c);
}

/* A usage error: "tidb-ctl: <why>" and the --help hint. */
static void expect_usage(const char *line, const char *want)
{
    struct capture c;
    int rc = run(line, &c);
    assert_int_equal(rc, 1);
    assert_string_equal(c.obuf, "");
    char full[600];
    snprintf(full, sizeof full, "tidb-ctl: %s\nRun 'tidb-ctl --help' for usage.\n", want);
    assert_string_equal(c.ebuf, full);
    capture_free(&c);
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                     */

static void test_guide_form_and_real_form(void **state)
{
    (void)state;
    /* Exactly the guide's line: no command prints the server status. */
    expect_ok("-u https://127.0.0.1:{M} --ca {ca} --ssl-cert {cert} --ssl-key {key}",
              STATUS_PRINTED);
    /* Real tidb-ctl's --host/--port; https because --ca is given. */
    expect_ok("--host 127.0.0.1 --port {M} --ca {ca} --ssl-cert {cert} --ssl-key {key}",
              STATUS_PRINTED);
    /* A URL without a scheme, and an http:// one, mean https with --ca. */
    expect_ok("-u 127.0.0.1:{M} --ca {ca} --ssl-cert {cert} --ssl-key {key}", STATUS_PRINTED);
    expect_ok("-u http://127.0.0.1:{M} --ca {ca} --ssl-cert {cert} --ssl-key {key}",
              STATUS_PRINTED);
    /* One-way: --ca alone; plain HTTP: no TLS flags. */
    expect_ok("-u https://127.0.0.1:{O} --ca {ca}", STATUS_PRINTED);
    expect_ok("--port {P}", STATUS_PRINTED);
}

static void test_commands(void **state)
{
    (void)state;
    const char *tls = "-u https://127.0.0.1:{M} --ca {ca} --ssl-cert {cert} --ssl-key {key}";
    char line[512];
    snprintf(line, sizeof line, "%s info", tls);
    expect_ok(line, "{\n    \"is_owner\": true,\n    \"listening_port\": 4000\n}\n");
    snprintf(line, sizeof line, "%s schema", tls);
    expect_ok(line, "[\n    {\n        \"id\": 1,\n        \"db_name\": {\n"
                    "            \"O\": \"mysql\"\n        }\n    }\n]\n");
    snprintf(line, sizeof line, "%s schema in mysql", tls);
    expect_ok(line, "{\n    \"rest\": \"mysql\"\n}\n");
    /* -n TABLE, flags after the words, names percent-encoded (a '/' in a name too). */
    expect_ok("schema in test -n t1 --port {P}", "{\n    \"rest\": \"test/t1\"\n}\n");
    expect_ok("schema in my%db --name=a/b --port {P}",
              "{\n    \"rest\": \"my%25db/a%2Fb\"\n}\n");
    expect_ok("--port {P} -- schema in -x", "{\n    \"rest\": \"-x\"\n}\n");
    /* An HTTP error: its status and message, one line. */
    snprintf(line, sizeof line, "%s schema in nope", tls);
    expect_fail(line, "[404] [schema:1049]Unknown database 'nope'\n");
    expect_usage("--port {P} stats", "unknown command 'stats'");
}

static void test_transport_failures(void **state)
{
    (void)state;
    char want[600];
    /* A CN outside the server's list (PD-Server), beside the listed one above. */
    snprintf(want, sizeof want,
             "tidb-ctl: 127.0.0.1:%d: the server refused our certificate: its Common Name is "
             "not in the server's allow-list",
             g_mutual);
    expect_fail("-u https://127.0.0.1:{M} --ca {ca} --ssl-cert {pd} --ssl-key {pdkey}", want);
    /* No certificate where one is required. */
    expect_fail("-u https://127.0.0.1:{M} --ca {ca}",
                "the server requires a client certificate and we presented none");
    /* A server our CA did not sign. */
    snprintf(want, sizeof want,
             "the server's certificate is not trusted: it is not signed by the CA in "
             "%s/ca.pem",
             g_other);
    expect_fail("-u https://127.0.0.1:{O} --ca {ca2}", want);
    /* https to a plaintext server. */
    expect_fail("-u https://127.0.0.1:{P} --ca {ca}",
                "the server answered in plaintext, not TLS");
    /* Nothing listening. */
    snprintf(want, sizeof want, "tidb-ctl: cannot connect to 127.0.0.1:%d: Connection refused\n",
             g_closed);
    expect_fail("--port {C}", want);
    expect_fail("-u https://127.0.0.1:{C} --ca {ca} --ssl-cert {cert} --ssl-key {key}", want);
    /* A file that is not there: named. */
    expect_fail("-u https://127.0.0.1:{M} --ca /nonexistent/ca.pem", "/nonexistent/ca.pem");
}

static void test_usage_errors(void **state)
{
    (void)state;
    expect_usage("-u https://127.0.0.1:1", "https URL needs --ca (and --ssl-cert/--ssl-key when "
                                           "tidb-server's cluster-verify-cn is set)");
    expect_usage("-u https://127.0.0.1:1 --host 127.0.0.1", "give either -u URL or --host/--port, "
                                                            "not both");
    expect_usage("--ca {ca} --ssl-cert {cert}", "--ssl-cert and --ssl-key must be given together");
    expect_usage("--ssl-cert {cert} --ssl-key {key}",
                 "--ssl-cert/--ssl-key need --ca to verify tidb-server's certificate");
    expect_usage("--port 0", "--port '0': give a port number from 1 to 65535");
    expect_usage("--port 65536", "--port '65536': give a port number from 1 to 65535");
    expect_usage("--host 127.0.0.1:10080", "--host '127.0.0.1:10080': give an IP address (or a "
                                           "host name)");
    expect_usage("-u https://127.0.0.1:1/status --ca {ca}",
                 "-u https://127.0.0.1:1/status: give the status port's address only, without a "
                 "path");
    expect_usage("-u ftp://127.0.0.1:1", "-u: bad URL 'ftp://127.0.0.1:1': scheme must be http or "
                                         "https");
    expect_usage("info -n t", "-n/--name goes with 'schema in DB' only");
    expect_usage("info x", "usage: info (takes no arguments)");
    expect_usage("-n t", "-n/--name goes with 'schema in DB' only");
    expect_usage("schema in", "schema in: expect one argument as database name");
    expect_usage("schema in a b", "schema in: expect one argument as database name");
    expect_usage("schema in a -n ''", "schema in a -n: the table name is empty");
    expect_usage("schema list", "usage: schema | schema in DB [-n TABLE]");
    expect_usage("schema tid -i 5", "unknown flag -i");
    expect_usage("schema tid", "schema tid: tisim's status port has no lookup by table id; use "
                               "'schema in DB -n TABLE'");
    expect_usage("mvcc key x", "unknown command 'mvcc'");
    expect_usage("--bogus", "unknown flag --bogus");
    expect_usage("--port", "flag --port needs a value");
}

static void test_parse_urls(void **state)
{
    (void)state;
    static const struct {
        const char *args[6];
        const char *url, *path;
    } cases[] = {
        {{NULL}, "http://127.0.0.1:10080", "/status"},
        {{"--ca", "ca.pem", NULL}, "https://127.0.0.1:10080", "/status"},
        {{"--host", "::1", "--port", "10081", NULL}, "http://[::1]:10081", "/status"},
        {{"-u", "HTTPS://localhost:1", "--ca", "c", "info", NULL}, "https://localhost:1", "/info"},
        {{"-u=10.0.0.1:443/", "schema", NULL}, "http://10.0.0.1:443", "/schema"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[8] = {"tidb-ctl"};
        int argc = 1;
        for (; cases[i].args[argc - 1]; argc++)
            argv[argc] = (char *)cases[i].args[argc - 1];
        struct tidbctl_call call;
        char err[512] = "";
        int rc = tidbctl_parse(argc, argv, &call, err, sizeof err);
        if (rc != 0)
            print_error("case %zu: %s\n", i, err);
        assert_int_equal(rc, 0);
        assert_int_equal(call.action, TIDBCTL_GET);
        assert_string_equal(call.url, cases[i].url);
        assert_string_equal(call.path, cases[i].path);
        if (strncmp(call.url, "https", 5) == 0)
            assert_non_null(call.tls.ca_path);
        else
            assert_null(call.tls.ca_path);
    }
    struct capture c;
    assert_int_equal(run("--help", &c), 0);
    assert_contains(c.obuf, "tidb-ctl [flags] [COMMAND]");
    capture_free(&c);
    assert_int_equal(run("help", &c), 0);
    assert_contains(c.obuf, "schema in DB [-n TABLE]");
    capture_free(&c);
}

static void expect_print(int status, const char *body, int want_rc, const char *want_out,
                         const char *want_err)
{
    struct capture c;
    memset(&c, 0, sizeof c);
    c.out = open_memstream(&c.obuf, &c.olen);
    c.err = open_memstream(&c.ebuf, &c.elen);
    int rc = tidbctl_print(status, body, strlen(body), c.out, c.err);
    fclose(c.out);
    fclose(c.err);
    assert_int_equal(rc, want_rc);
    assert_string_equal(c.obuf, want_out);
    assert_string_equal(c.ebuf, want_err);
    capture_free(&c);
}

static void test_print(void **state)
{
    (void)state;
    expect_print(200, "{\"z\":[1,{}],\"a\":\"x\"}", 0,
                 "{\n    \"z\": [\n        1,\n        {}\n    ],\n    \"a\": \"x\"\n}\n", "");
    expect_print(200, "not json", 0, "not json\n", "");
    expect_print(200, "two\nlines\n", 0, "two\nlines\n", "");
    expect_print(204, "", 0, "", "");
    expect_print(404, "\"[schema:1049]Unknown database 'x'\"\n", 1, "",
                 "[404] [schema:1049]Unknown database 'x'\n");
    expect_print(500, "{\"message\": \"boom\"}", 1, "", "[500] boom\n");
    expect_print(502, "  <html>bad\ngateway</html>\r\n", 1, "", "[502] <html>bad gateway</html>\n");
    expect_print(400, "Client sent an HTTP request to an HTTPS server.\n", 1, "",
                 "[400] Client sent an HTTP request to an HTTPS server.\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guide_form_and_real_form),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_transport_failures),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_parse_urls),
        cmocka_unit_test(test_print),
    };
    int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
    return failed ? failed : g_child_clean ? 0 : 1;
}
