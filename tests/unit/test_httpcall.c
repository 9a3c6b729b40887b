/* Unit tests for httpcall: one blocking HTTP(S) call over the shared transport (http.h over
 * tls.c), as the ctl tools make it.
 *
 * Servers, each a child process killed in teardown:
 * - the real `openssl s_server -WWW`, requiring a client certificate (-Verify 1): interop,
 *   untrusted CA, host mismatch, expired server cert, no client cert;
 * - the daemons' own HTTPS server (http_server over tls.c) with the CN allow-list
 *   {"PD-Control"} checked in the handshake: CN refused, big and chunked bodies over TLS;
 * - a canned plain-TCP responder that writes fixed bytes: plain http, chunked encoding with
 *   extensions, a big body, a plaintext server behind an https URL;
 * - a listening socket nobody accepts on: a server that never answers.
 * Certificates come from certgen in a temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certgen.h"
#include "http.h"
#include "httpcall.h"
#include "log.h"
#include "testutil.h"
#include "tls.h"

#define TIMEOUT_MS 20000 /* generous: valgrind runs the server children too */
#define BIG_LEN (3u << 20) /* 3 MiB: many TLS records, many reads */

static char g_dir[256];
static char g_www[300];

static void path_of(char *buf, size_t len, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", g_dir, name);
    if (n < 0 || (size_t)n >= len)
        fail_msg("path %s/%s is too long", g_dir, name);
}

/* ---------------------------------------------------------------------------------------- */
/* Child processes: tracked so that teardown (and atexit) kill every one.                   */

#define MAX_CHILDREN 8
static pid_t g_children[MAX_CHILDREN];

static void kill_children(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (g_children[i] > 0) {
            kill(g_children[i], SIGKILL);
            waitpid(g_children[i], NULL, 0);
            g_children[i] = 0;
        }
    }
}

static int track_child(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (g_children[i] <= 0) {
            g_children[i] = pid;
            return i;
        }
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void untrack_child(int slot)
{
    if (slot >= 0 && g_children[slot] > 0) {
        kill(g_children[slot], SIGKILL);
        waitpid(g_children[slot], NULL, 0);
        g_children[slot] = 0;
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* A socket listening on 127.0.0.1 (any port); *port gets the port. */
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

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* openssl s_server                                                                          */

static void exec_s_server(const char *accept_arg, const char *cert, const char *key,
                          const char *logp)
{
    char certp[300], keyp[300], cap[300];
    path_of(certp, sizeof certp, cert);
    path_of(keyp, sizeof keyp, key);
    path_of(cap, sizeof cap, "ca.pem");
    int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int devnull = open("/dev/null", O_RDONLY);
    if (fd < 0 || devnull < 0 || chdir(g_www) != 0)
        _exit(127);
    dup2(devnull, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execlp("openssl", "openssl", "s_server", "-WWW", "-accept", accept_arg, "-cert", certp,
           "-key", keyp, "-CAfile", cap, "-Verify", "1", "-tls1_2", (char *)NULL);
    _exit(127);
}

/* Starts `openssl s_server -WWW` serving g_www with cert/key (names in g_dir), requiring a
 * client certificate from ca.pem. Returns the port, or -1. */
static int start_s_server(const char *cert, const char *key)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = free_port();
        if (port < 0)
            return -1;
        char accept_arg[32], logp[300];
        snprintf(accept_arg, sizeof accept_arg, "127.0.0.1:%d", port);
        snprintf(logp, sizeof logp, "%s/s_server-%d.log", g_dir, port);
        pid_t pid = fork();
        if (pid < 0)
            return -1;
        if (pid == 0)
            exec_s_server(accept_arg, cert, key, logp);
        int slot = track_child(pid);
        for (int i = 0; slot >= 0 && i < 500; i++) { /* up to 10 s */
            if (file_contains(logp, "ACCEPT"))
                return port;
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                g_children[slot] = 0;
                slot = -1; /* died (port taken?): try another port */
            } else {
                sleep_ms(20);
            }
        }
        untrack_child(slot);
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* The daemons' own HTTPS server (http.h over tls.c), in a child process                    */

/* BIG_LEN bytes of first, first+1, ... cycling through 26 letters. */
static char *fill(char *p, char first)
{
    for (size_t i = 0; i < BIG_LEN; i++)
        p[i] = (char)(first + i % 26);
    return p;
}

static void reply_big(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    (void)arg;
    struct evbuffer *b = evbuffer_new();
    char *big = malloc(BIG_LEN);
    if (!b || !big || evbuffer_add(b, fill(big, 'a'), BIG_LEN) != 0) {
        http_reply_error(req, 500, "out of memory");
    } else {
        evhttp_send_reply(req, 200, "OK", b);
    }
    free(big);
    if (b)
        evbuffer_free(b);
}

static void reply_chunked(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    (void)arg;
    evhttp_send_reply_start(req, 200, "OK");
    const char *parts[] = {"{\"parts\": ", "[1, 2, ", "3]}"};
    for (size_t i = 0; i < 3; i++) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add(b, parts[i], strlen(parts[i]));
        evhttp_send_reply_chunk(req, b);
        evbuffer_free(b);
    }
    evhttp_send_reply_end(req);
}

static void reply_echo(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    (void)arg;
    char err[200];
    json_t *body = http_request_json(req, err, sizeof err);
    if (!body) {
        http_reply_error(req, 400, "%s", err);
        return;
    }
    http_reply_json(req, 201, json_pack("{s:o}", "echo", body));
}

static void reply_hello(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    (void)arg;
    http_reply_json(req, 200, json_pack("{s:s}", "hello", "world"));
}

/* Child: serve HTTPS on port with the allow-list {"PD-Control"}; writes 'R' (ready) or 'E'
 * into ready_fd, then runs until killed. */
static void serve_ours(int port, int ready_fd)
{
    char ca[300], crt[300], key[300], err[300];
    path_of(ca, sizeof ca, "ca.pem");
    path_of(crt, sizeof crt, "server.pem");
    path_of(key, sizeof key, "server-key.pem");
    char *allowed[] = {"PD-Control"};
    struct tls_opts o = {.role = "pd", .ca_path = ca, .cert_path = crt, .key_path = key,
                         .allowed_cn = allowed, .n_allowed_cn = 1,
                         .cn_check = TLS_CN_HANDSHAKE};
    struct event_base *base = event_base_new();
    struct tls_ctx *ctx = base ? tls_ctx_new(TLS_SERVER, &o, err, sizeof err) : NULL;
    struct http_server *s = ctx ? http_server_new(base, "127.0.0.1", port, ctx, err, sizeof err)
                                : NULL;
    if (!s || http_server_route(s, EVHTTP_REQ_GET, "/hello", reply_hello, NULL) != 0 ||
        http_server_route(s, EVHTTP_REQ_GET, "/big", reply_big, NULL) != 0 ||
        http_server_route(s, EVHTTP_REQ_GET, "/chunked", reply_chunked, NULL) != 0 ||
        http_server_route(s, EVHTTP_REQ_POST, "/echo", reply_echo, NULL) != 0) {
        (void)!write(ready_fd, "E", 1);
        _exit(1);
    }
    (void)!write(ready_fd, "R", 1);
    event_base_dispatch(base);
    _exit(0);
}

static int start_ours(void)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int port = free_port(), p[2];
        if (port < 0 || pipe(p) != 0)
            return -1;
        pid_t pid = fork();
        if (pid < 0)
            return -1;
        if (pid == 0) {
            close(p[0]);
            serve_ours(port, p[1]);
        }
        close(p[1]);
        int slot = track_child(pid);
        char c = 0;
        ssize_t n = read(p[0], &c, 1);
        close(p[0]);
        if (slot >= 0 && n == 1 && c == 'R')
            return port;
        untrack_child(slot); /* port taken? try another */
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* A canned plain-TCP responder, in a child process                                          */

static bool looks_like_http(const char *req, size_t len)
{
    return len == 0 || (req[0] >= 'A' && req[0] <= 'Z');
}

/* Reads the request head (or the first bytes of something that is not HTTP). */
static void read_request(int fd)
{
    char req[8192];
    size_t len = 0;
    while (len < sizeof req - 1) {
        ssize_t n = read(fd, req + len, sizeof req - 1 - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") || !looks_like_http(req, len))
            return;
    }
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

static void serve_canned(int lfd, const char *response, size_t len)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        read_request(fd);
        write_all(fd, response, len);
        shutdown(fd, SHUT_WR);
        char sink[4096];
        while (read(fd, sink, sizeof sink) > 0) {
        }
        close(fd);
    }
}

/* Returns the port of a child that answers every connection with response[0..len). */
static int start_canned(const char *response, size_t len)
{
    int port = 0;
    int lfd = listen_any(&port);
    if (lfd < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGPIPE, SIG_IGN);
        serve_canned(lfd, response, len);
    }
    close(lfd);
    if (pid < 0 || track_child(pid) < 0)
        return -1;
    return port;
}

/* ---------------------------------------------------------------------------------------- */
/* Certificates                                                                              */

static int make_leaf(const struct certgen_req *req, const struct certgen_pair *issuer,
                     const char *name)
{
    char err[256], c[300], k[300], cn[128], kn[128];
    struct certgen_pair *p = NULL;
    snprintf(cn, sizeof cn, "%s.pem", name);
    snprintf(kn, sizeof kn, "%s-key.pem", name);
    path_of(c, sizeof c, cn);
    path_of(k, sizeof k, kn);
    int r = certgen_make(req, issuer, &p, err, sizeof err);
    if (r == 0)
        r = certgen_write(p, c, k, err, sizeof err);
    if (r != 0)
        fprintf(stderr, "certgen %s: %s\n", name, err);
    certgen_free(p);
    return r;
}

static int make_ca(const char *cn, const char *name, struct certgen_pair **ca)
{
    char err[256], c[300], k[300], cf[64], kf[64];
    struct certgen_req req = {.cn = cn, .is_ca = true};
    snprintf(cf, sizeof cf, "%s.pem", name);
    snprintf(kf, sizeof kf, "%s-key.pem", name);
    path_of(c, sizeof c, cf);
    path_of(k, sizeof k, kf);
    if (certgen_make(&req, NULL, ca, err, sizeof err) != 0 ||
        certgen_write(*ca, c, k, err, sizeof err) != 0) {
        fprintf(stderr, "certgen %s: %s\n", name, err);
        return -1;
    }
    return 0;
}

static int make_certs(void)
{
    struct certgen_pair *ca = NULL, *ca2 = NULL;
    int r = make_ca("tisim test CA", "ca", &ca) | make_ca("another CA", "ca2", &ca2);
    char *server_sans[] = {"127.0.0.1", "::1", "localhost"};
    char *dns_only[] = {"localhost"};
    time_t now = time(NULL);
    struct certgen_req server = {.cn = "PD-Server", .sans = server_sans, .n_sans = 3};
    struct certgen_req dnsonly = {.cn = "PD-Server", .sans = dns_only, .n_sans = 1};
    struct certgen_req expired = {.cn = "PD-Server", .sans = server_sans, .n_sans = 3,
                                  .not_before = now - 10 * 86400, .not_after = now - 86400};
    struct certgen_req control = {.cn = "PD-Control"};
    struct certgen_req intruder = {.cn = "Intruder"};
    if (r == 0)
        r = make_leaf(&server, ca, "server") | make_leaf(&dnsonly, ca, "dnsonly") |
            make_leaf(&expired, ca, "expired") | make_leaf(&server, ca2, "other-ca") |
            make_leaf(&control, ca, "client") | make_leaf(&intruder, ca, "intruder");
    certgen_free(ca);
    certgen_free(ca2);
    return r ? -1 : 0;
}

static void cleanup_all(void)
{
    kill_children();
    if (g_dir[0]) {
        tu_rm_rf(g_dir);
        g_dir[0] = '\0';
    }
}

static int write_www_file(const char *name, const char *text)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s", g_www, name);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    atexit(cleanup_all);
    log_open("test", NULL, LOG_WARN);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/tisim-httpcall-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_www, sizeof g_www, "%s/www", g_dir);
    if (mkdir(g_www, 0700) != 0 || write_www_file("hello.txt", "hello from s_server\n") != 0)
        return -1;
    return make_certs();
}

static int group_teardown(void **state)
{
    (void)state;
    cleanup_all();
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    kill_children();
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Calling                                                                                   */

struct files {
    char ca[300], cert[300], key[300];
    struct httpcall_tls tls;
};

/* names in g_dir; NULL leaves the field NULL. */
static const struct httpcall_tls *files_of(struct files *f, const char *ca, const char *cert,
                                           const char *key)
{
    memset(f, 0, sizeof *f);
    if (ca) {
        path_of(f->ca, sizeof f->ca, ca);
        f->tls.ca_path = f->ca;
    }
    if (cert) {
        path_of(f->cert, sizeof f->cert, cert);
        f->tls.cert_path = f->cert;
    }
    if (key) {
        path_of(f->key, sizeof f->key, key);
        f->tls.key_path = f->key;
    }
    return &f->tls;
}

/* GET https://host:port/path with tls. */
static int get(const char *host, int port, const char *path, const struct httpcall_tls *tls,
               struct httpcall_response *r, char *err, size_t errlen)
{
    char url[128];
    snprintf(url, sizeof url, "%s://%s:%d", tls ? "https" : "http", host, port);
    return httpcall(url, "GET", path, NULL, tls, "pd-ctl", TIMEOUT_MS, r, err, errlen);
}

/* The call succeeds with status and body. */
static void expect_ok(int rc, const char *err, const struct httpcall_response *r, int status,
                      const char *body)
{
    if (rc != 0)
        print_error("expected success, got: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(r->status, status);
    assert_string_equal(r->body, body);
    assert_int_equal(r->body_len, strlen(body));
}

/* The call fails with one line naming host:port and containing want; resp stays empty. */
static void expect_fail(int rc, const char *err, const struct httpcall_response *r, int port,
                        const char *want)
{
    assert_int_equal(rc, -1);
    assert_null(r->body);
    assert_int_equal(r->status, 0);
    if (port > 0) {
        char hp[64];
        snprintf(hp, sizeof hp, "127.0.0.1:%d", port);
        assert_contains(err, hp);
    }
    assert_contains(err, want);
    assert_null(strchr(err, '\n'));
}

/* ---------------------------------------------------------------------------------------- */
/* Bad arguments and files (no server)                                                       */

static void test_bad_arguments(void **state)
{
    (void)state;
    struct httpcall_response r;
    struct files f;
    char err[512];
    assert_int_equal(httpcall("ftp://127.0.0.1:1", "GET", "/", NULL, NULL, "t", 100, &r, err,
                              sizeof err), -1);
    assert_contains(err, "scheme");
    assert_int_equal(httpcall("http://127.0.0.1:1", "BREW", "/", NULL, NULL, "t", 100, &r, err,
                              sizeof err), -1);
    assert_contains(err, "method 'BREW'");
    assert_int_equal(httpcall("https://127.0.0.1:1", "GET", "/", NULL, NULL, "t", 100, &r, err,
                              sizeof err), -1);
    assert_contains(err, "https");
    /* A CA with an http URL is never a silent downgrade. */
    assert_int_equal(httpcall("http://127.0.0.1:1", "GET", "/", NULL,
                              files_of(&f, "ca.pem", NULL, NULL), "t", 100, &r, err, sizeof err),
                     -1);
    assert_contains(err, "use https://");
    /* File errors come from tls_ctx_new and name the file. */
    assert_int_equal(httpcall("https://127.0.0.1:1", "GET", "/", NULL,
                              files_of(&f, "missing-ca.pem", NULL, NULL), "t", 100, &r, err,
                              sizeof err), -1);
    assert_contains(err, "missing-ca.pem");
    assert_int_equal(httpcall("https://127.0.0.1:1", "GET", "/", NULL,
                              files_of(&f, "ca.pem", "client.pem", "missing-key.pem"), "t", 100,
                              &r, err, sizeof err), -1);
    assert_contains(err, "missing-key.pem");
    assert_null(r.body);
}

/* ---------------------------------------------------------------------------------------- */
/* Against openssl s_server                                                                  */

static void test_mutual_tls_and_no_client_cert(void **state)
{
    (void)state;
    int port = start_s_server("server.pem", "server-key.pem");
    assert_true(port > 0);
    char err[512];
    struct files f;
    struct httpcall_response r;
    int rc = get("127.0.0.1", port, "/hello.txt",
                 files_of(&f, "ca.pem", "client.pem", "client-key.pem"), &r, err, sizeof err);
    expect_ok(rc, err, &r, 200, "hello from s_server\n");
    httpcall_response_free(&r);
    assert_null(r.body);

    rc = get("127.0.0.1", port, "/hello.txt", files_of(&f, "ca.pem", NULL, NULL), &r, err,
             sizeof err);
    expect_fail(rc, err, &r, port,
                "the server requires a client certificate and we presented none (TLS alert "
                "handshake_failure)");
}

static void test_untrusted_server(void **state)
{
    (void)state;
    int port = start_s_server("other-ca.pem", "other-ca-key.pem");
    assert_true(port > 0);
    char err[512], want[600];
    struct files f;
    struct httpcall_response r;
    /* Good: a client that trusts the server's CA (ca2) gets through. */
    int rc = get("127.0.0.1", port, "/hello.txt",
                 files_of(&f, "ca2.pem", "client.pem", "client-key.pem"), &r, err, sizeof err);
    expect_ok(rc, err, &r, 200, "hello from s_server\n");
    httpcall_response_free(&r);
    /* Bad: our CA did not sign it. */
    rc = get("127.0.0.1", port, "/hello.txt",
             files_of(&f, "ca.pem", "client.pem", "client-key.pem"), &r, err, sizeof err);
    snprintf(want, sizeof want,
             "the server's certificate is not trusted: it is not signed by the CA in %s", f.ca);
    expect_fail(rc, err, &r, port, want);
}

static void test_host_mismatch(void **state)
{
    (void)state;
    /* The cert names only DNS:localhost. */
    int port = start_s_server("dnsonly.pem", "dnsonly-key.pem");
    assert_true(port > 0);
    char err[512];
    struct files f;
    struct httpcall_response r;
    const struct httpcall_tls *tls = files_of(&f, "ca.pem", "client.pem", "client-key.pem");
    int rc = get("localhost", port, "/hello.txt", tls, &r, err, sizeof err);
    expect_ok(rc, err, &r, 200, "hello from s_server\n");
    httpcall_response_free(&r);
    rc = get("127.0.0.1", port, "/hello.txt", tls, &r, err, sizeof err);
    expect_fail(rc, err, &r, port,
                "the server's certificate does not match host 127.0.0.1 (it has no "
                "subjectAltName for it)");
}

static void test_expired_server_cert(void **state)
{
    (void)state;
    int good = start_s_server("server.pem", "server-key.pem");
    int port = start_s_server("expired.pem", "expired-key.pem");
    assert_true(good > 0 && port > 0);
    char err[512];
    struct files f;
    struct httpcall_response r;
    const struct httpcall_tls *tls = files_of(&f, "ca.pem", "client.pem", "client-key.pem");
    int rc = get("127.0.0.1", good, "/hello.txt", tls, &r, err, sizeof err);
    expect_ok(rc, err, &r, 200, "hello from s_server\n");
    httpcall_response_free(&r);
    rc = get("127.0.0.1", port, "/hello.txt", tls, &r, err, sizeof err);
    expect_fail(rc, err, &r, port, "the server's certificate is not trusted: certificate has expired");
}

static void test_unreachable(void **state)
{
    (void)state;
    int port = start_s_server("server.pem", "server-key.pem");
    assert_true(port > 0);
    char err[512], want[128];
    struct files f;
    struct httpcall_response r;
    const struct httpcall_tls *tls = files_of(&f, "ca.pem", "client.pem", "client-key.pem");
    int rc = get("127.0.0.1", port, "/hello.txt", tls, &r, err, sizeof err);
    expect_ok(rc, err, &r, 200, "hello from s_server\n");
    httpcall_response_free(&r);
    int closed = free_port();
    assert_true(closed > 0);
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d: Connection refused", closed);
    rc = get("127.0.0.1", closed, "/", tls, &r, err, sizeof err);
    expect_fail(rc, err, &r, closed, want);
    /* Plain http: the same words (pd-ctl said them for http:// too). */
    rc = get("127.0.0.1", closed, "/", NULL, &r, err, sizeof err);
    expect_fail(rc, err, &r, closed, want);
}

/* ---------------------------------------------------------------------------------------- */
/* Against the daemons' own HTTPS server                                                     */

static void test_cn_refused(void **state)
{
    (void)state;
    int port = start_ours();
    assert_true(port > 0);
    char err[512];
    struct files f;
    struct httpcall_response r;
    int rc = get("127.0.0.1", port, "/hello",
                 files_of(&f, "ca.pem", "client.pem", "client-key.pem"), &r, err, sizeof err);
    expect_ok(rc, err, &r, 200, "{\n  \"hello\": \"world\"\n}\n");
    httpcall_response_free(&r);
    rc = get("127.0.0.1", port, "/hello",
             files_of(&f, "ca.pem", "intruder.pem", "intruder-key.pem"), &r, err, sizeof err);
    expect_fail(rc, err, &r, port,
                "the server refused our certificate: its Common Name is not in the server's "
                "allow-list (TLS alert access_denied)");
}

static void test_post_body_and_error_status(void **state)
{
    (void)state;
    int port = start_ours();
    assert_true(port > 0);
    char err[512], url[64];
    struct files f;
    struct httpcall_response r;
    const struct httpcall_tls *tls = files_of(&f, "ca.pem", "client.pem", "client-key.pem");
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    int rc = httpcall(url, "POST", "/echo", "{\"a\": 1}", tls, "pd-ctl", TIMEOUT_MS, &r, err,
                      sizeof err);
    expect_ok(rc, err, &r, 201, "{\n  \"echo\": {\n    \"a\": 1\n  }\n}\n");
    httpcall_response_free(&r);
    /* A non-2xx answer is a reply, not a failure. */
    rc = httpcall(url, "POST", "/echo", "not json", tls, "pd-ctl", TIMEOUT_MS, &r, err,
                  sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, 400);
    assert_contains(r.body, "not valid JSON");
    httpcall_response_free(&r);
    rc = get("127.0.0.1", port, "/nowhere", tls, &r, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, 404);
    httpcall_response_free(&r);
}

static void test_big_and_chunked_over_tls(void **state)
{
    (void)state;
    int port = start_ours();
    assert_true(port > 0);
    char err[512];
    struct files f;
    struct httpcall_response r;
    const struct httpcall_tls *tls = files_of(&f, "ca.pem", "client.pem", "client-key.pem");
    int rc = get("127.0.0.1", port, "/big", tls, &r, err, sizeof err);
    if (rc != 0)
        print_error("big: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, BIG_LEN);
    for (size_t i = 0; i < BIG_LEN; i++)
        if (r.body[i] != (char)('a' + i % 26))
            fail_msg("byte %zu of the big body is wrong", i);
    assert_int_equal(r.body[BIG_LEN], '\0');
    httpcall_response_free(&r);
    rc = get("127.0.0.1", port, "/chunked", tls, &r, err, sizeof err);
    expect_ok(rc, err, &r, 200, "{\"parts\": [1, 2, 3]}");
    httpcall_response_free(&r);
}

/* ---------------------------------------------------------------------------------------- */
/* Against canned plain-TCP answers                                                          */

static void test_plain_http(void **state)
{
    (void)state;
    static const char answer[] = "HTTP/1.1 201 Created\r\nContent-Length: 12\r\n"
                                 "Connection: close\r\n\r\n{\"tso\":1234}";
    int port = start_canned(answer, sizeof answer - 1);
    assert_true(port > 0);
    char url[64], err[512];
    struct httpcall_response r;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    int rc = httpcall(url, "POST", "/pd/api/v1/tso", NULL, NULL, "pd-ctl", TIMEOUT_MS, &r, err,
                      sizeof err);
    expect_ok(rc, err, &r, 201, "{\"tso\":1234}");
    httpcall_response_free(&r);
}

static void test_plaintext_server_on_https(void **state)
{
    (void)state;
    /* What an HTTP server answers to bytes it cannot parse (our ClientHello). */
    static const char answer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 "Connection: close\r\n\r\n";
    int port = start_canned(answer, sizeof answer - 1);
    assert_true(port > 0);
    char err[512];
    struct files f;
    struct httpcall_response r;
    int rc = get("127.0.0.1", port, "/", NULL, &r, err, sizeof err);
    expect_ok(rc, err, &r, 400, "");
    httpcall_response_free(&r);
    rc = get("127.0.0.1", port, "/", files_of(&f, "ca.pem", "client.pem", "client-key.pem"),
             &r, err, sizeof err);
    expect_fail(rc, err, &r, port,
                "the server answered in plaintext, not TLS (use an http:// URL, or enable TLS "
                "on the server)");
}

static void test_chunked_plain(void **state)
{
    (void)state;
    static const char answer[] = "HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n"
                                 "5\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n";
    int port = start_canned(answer, sizeof answer - 1);
    assert_true(port > 0);
    char err[512];
    struct httpcall_response r;
    int rc = get("127.0.0.1", port, "/", NULL, &r, err, sizeof err);
    expect_ok(rc, err, &r, 404, "hello 0123456789");
    httpcall_response_free(&r);
}

static char *big_answer(size_t *len)
{
    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 3145728\r\n\r\n";
    size_t h = strlen(head);
    char *a = malloc(h + BIG_LEN);
    if (!a)
        return NULL;
    memcpy(a, head, h);
    fill(a + h, 'A');
    *len = h + BIG_LEN;
    return a;
}

static void test_big_plain(void **state)
{
    (void)state;
    size_t len = 0;
    char *answer = big_answer(&len);
    assert_non_null(answer);
    int port = start_canned(answer, len); /* the child has its own copy */
    free(answer);
    assert_true(port > 0);
    char err[512];
    struct httpcall_response r;
    int rc = get("127.0.0.1", port, "/", NULL, &r, err, sizeof err);
    if (rc != 0)
        print_error("big: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(r.body_len, BIG_LEN);
    for (size_t i = 0; i < BIG_LEN; i++)
        if (r.body[i] != (char)('A' + i % 26))
            fail_msg("byte %zu of the big body is wrong", i);
    httpcall_response_free(&r);
}

/* ---------------------------------------------------------------------------------------- */
/* A server that accepts (the kernel does) and never answers                                 */

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_no_answer_times_out(void **state)
{
    (void)state;
    int port = 0;
    int lfd = listen_any(&port);
    assert_true(lfd >= 0);
    char url[64], err[512];
    struct files f;
    struct httpcall_response r;
    const int timeout = 300;
    /* Hang detectors, not timings: the calls must come back, long before ctest's limit. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    int rc = httpcall(url, "GET", "/", NULL, NULL, "pd-ctl", timeout, &r, err, sizeof err);
    expect_fail(rc, err, &r, port, "no reply within 300 ms");
    assert_true(elapsed_ms(&t0) < 20 * timeout);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    rc = httpcall(url, "GET", "/", NULL, files_of(&f, "ca.pem", "client.pem", "client-key.pem"),
                  "pd-ctl", timeout, &r, err, sizeof err);
    expect_fail(rc, err, &r, port, "within 300 ms");
    assert_true(elapsed_ms(&t0) < 20 * timeout);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test_teardown(test_mutual_tls_and_no_client_cert, test_teardown),
        cmocka_unit_test_teardown(test_untrusted_server, test_teardown),
        cmocka_unit_test_teardown(test_host_mismatch, test_teardown),
        cmocka_unit_test_teardown(test_expired_server_cert, test_teardown),
        cmocka_unit_test_teardown(test_unreachable, test_teardown),
        cmocka_unit_test_teardown(test_cn_refused, test_teardown),
        cmocka_unit_test_teardown(test_post_body_and_error_status, test_teardown),
        cmocka_unit_test_teardown(test_big_and_chunked_over_tls, test_teardown),
        cmocka_unit_test_teardown(test_plain_http, test_teardown),
        cmocka_unit_test_teardown(test_plaintext_server_on_https, test_teardown),
        cmocka_unit_test_teardown(test_chunked_plain, test_teardown),
        cmocka_unit_test_teardown(test_big_plain, test_teardown),
        cmocka_unit_test_teardown(test_no_answer_times_out, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
