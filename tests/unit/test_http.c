/* Unit tests for http: the server's routing (exact and prefix routes, order, rest, 404, 405,
 * the fallback), its JSON replies and request helpers, and http_client against it (status and
 * body, keep-alive reuse, its header, the error sentences when nothing listens or the server
 * is silent). Every client-side test runs twice: over plain HTTP and over mutual TLS with
 * certificates made by certgen in a temp dir. Every wait drives the event loop until a
 * condition or a deadline, never forever; nothing asserts on elapsed time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "certgen.h"
#include "http.h"
#include "log.h"
#include "testutil.h"
#include "tls.h"

#define WAIT_MS 10000

enum transport { PLAIN, TLS };
static enum transport g_plain = PLAIN, g_tls = TLS;

static char g_dir[256];

/* ---------------------------------------------------------------------------------------- */
/* Certificates and TLS settings                                                             */

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    log_open("test_http", NULL, LOG_WARN); /* failed handshakes only */
    return tu_pki_dir(g_dir, sizeof g_dir, "http", "PD-Control");
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_dir[0])
        tu_rm_rf(g_dir);
    return 0;
}

/* A ctx with the cert <name>.pem of g_dir; servers let in the CNs of allowed. */
static struct tls_ctx *mkctx(enum tls_side side, const char *name, char *const *allowed,
                             size_t n_allowed)
{
    struct tls_ctx *ctx = tu_tls_ctx(g_dir, side, name, allowed, n_allowed, TLS_CN_HANDSHAKE);
    assert_non_null(ctx);
    return ctx;
}

/* ---------------------------------------------------------------------------------------- */
/* Event loop                                                                                */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void noop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Everything one test needs: a loop, a server, a client, over one transport. */
struct world {
    enum transport tp;
    struct event_base *base;
    struct event *tick;
    struct tls_ctx *sctx, *cctx;
    struct http_server *server;
    int port;
    struct http_client *client;
    /* freed with the world too, so that a failed assertion leaks nothing */
    struct http_client *extra_client;
    struct tls_ctx *extra_ctx;
    int fd;
};

#define RUN_UNTIL(w, cond)                                                                    \
    do {                                                                                      \
        double t0_ = now_ms();                                                                \
        while (!(cond) && now_ms() - t0_ < WAIT_MS)                                           \
            event_base_loop((w)->base, EVLOOP_ONCE);                                          \
    } while (0)

static void world_init(struct world *w, enum transport tp)
{
    memset(w, 0, sizeof *w);
    w->tp = tp;
    w->fd = -1;
    w->base = event_base_new();
    assert_non_null(w->base);
    w->tick = event_new(w->base, -1, EV_PERSIST, noop_cb, NULL);
    struct timeval tv = {0, 5000};
    event_add(w->tick, &tv);
    if (w->tp == TLS) {
        char *allowed[] = {"PD-Control"};
        w->sctx = mkctx(TLS_SERVER, "pd-server", allowed, 1);
        w->cctx = mkctx(TLS_CLIENT, "client", NULL, 0);
    }
}

static void world_free(struct world *w)
{
    http_client_free(w->client);
    http_client_free(w->extra_client);
    http_server_free(w->server);
    if (w->fd >= 0)
        close(w->fd);
    /* let finalizers and deferred callbacks run */
    for (int i = 0; i < 5; i++) {
        struct timeval tv = {0, 2000};
        event_base_loopexit(w->base, &tv);
        event_base_dispatch(w->base);
    }
    tls_ctx_free(w->sctx);
    tls_ctx_free(w->cctx);
    tls_ctx_free(w->extra_ctx);
    event_free(w->tick);
    event_base_free(w->base);
}

/* cmocka setup/teardown: *state is the transport, then the world (torn down also after a
 * failed assertion). */
static int world_setup(void **state)
{
    struct world *w = malloc(sizeof *w);
    if (!w)
        return -1;
    world_init(w, *(enum transport *)*state);
    *state = w;
    return 0;
}

static int world_teardown(void **state)
{
    world_free(*state);
    free(*state);
    return 0;
}

static void server_start(struct world *w)
{
    char err[256] = "";
    w->server = http_server_new(w->base, "127.0.0.1", 0, w->sctx, err, sizeof err);
    if (!w->server)
        print_error("http_server_new: %s\n", err);
    assert_non_null(w->server);
    w->port = http_server_port(w->server);
    assert_true(w->port > 0);
}

/* The client of w to url (NULL: the server of w), with a timeout of timeout_sec. */
static void client_start(struct world *w, const char *url, int timeout_sec)
{
    char u[300], err[256];
    if (!url) {
        snprintf(u, sizeof u, "%s://127.0.0.1:%d", w->tp == TLS ? "https" : "http", w->port);
        url = u;
    }
    w->client = http_client_new(w->base, url, w->cctx, timeout_sec, err, sizeof err);
    if (!w->client)
        print_error("http_client_new %s: %s\n", url, err);
    assert_non_null(w->client);
}

/* ---------------------------------------------------------------------------------------- */
/* Requests                                                                                  */

struct result {
    bool done;
    int status;
    char body[4096];
    char err[512];
};

static void client_cb(int status, const char *body, size_t body_len, const char *err, void *arg)
{
    struct result *r = arg;
    r->done = true;
    r->status = status;
    snprintf(r->body, sizeof r->body, "%.*s", (int)body_len, body ? body : "");
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

/* Runs one request to completion; the result is in *r. */
static void request(struct world *w, enum evhttp_cmd_type method, const char *path,
                    const char *body, struct result *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(http_client_request(w->client, method, path, body, body ? strlen(body) : 0,
                                         client_cb, r),
                     0);
    RUN_UNTIL(w, r->done);
    if (!r->done)
        print_error("%s: no answer in %d ms\n", path, WAIT_MS);
    assert_true(r->done);
}

/* What the test handler saw, as the JSON it answers with. */
static json_t *parse_body(const struct result *r)
{
    json_error_t e;
    json_t *v = json_loads(r->body, JSON_DECODE_ANY, &e);
    if (!v)
        print_error("body is not JSON (%s): %s\n", e.text, r->body);
    assert_non_null(v);
    return v;
}

/* GET path must reach the handler named handler with rest. */
static void expect_handler(struct world *w, enum evhttp_cmd_type method, const char *path,
                           const char *handler, const char *rest)
{
    struct result r;
    request(w, method, path, NULL, &r);
    if (r.status != 200)
        print_error("%s: status %d, body %s, err %s\n", path, r.status, r.body, r.err);
    assert_int_equal(r.status, 200);
    json_t *v = parse_body(&r);
    assert_string_equal(json_string_value(json_object_get(v, "handler")), handler);
    assert_string_equal(json_string_value(json_object_get(v, "rest")), rest);
    json_decref(v);
}

static void expect_error(struct world *w, enum evhttp_cmd_type method, const char *path,
                         int status, const char *body)
{
    struct result r;
    request(w, method, path, NULL, &r);
    assert_int_equal(r.status, status);
    assert_string_equal(r.body, body);
    assert_string_equal(r.err, "");
}

/* ---------------------------------------------------------------------------------------- */
/* Server handlers                                                                           */

/* Answers {"handler": arg, "rest": rest, "peer_port": n, "forwarded_by": header or null}. */
static void named_handler(struct evhttp_request *req, const char *rest, void *arg)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
    const char *fwd =
        evhttp_find_header(evhttp_request_get_input_headers(req), "X-Forwarded-By");
    json_t *v = json_pack("{s:s, s:s, s:i, s:s?}", "handler", (const char *)arg, "rest", rest,
                          "peer_port", (int)port, "forwarded_by", fwd);
    http_reply_json(req, 200, v);
}

static void pretty_handler(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    (void)arg;
    json_t *v = json_pack("{s:i, s:[i,i], s:{s:s}, s:[], s:{}}", "b", 1, "a", 1, 2, "c", "d",
                          "é\"\n", "empty_list", "empty_obj");
    http_reply_json(req, 201, v);
}

static void echo_json_handler(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    (void)arg;
    char err[256];
    json_t *v = http_request_json(req, err, sizeof err);
    if (!v) {
        http_reply_error(req, 400, "%s", err);
        return;
    }
    http_reply_json(req, 200, json_pack("{s:o}", "got", v));
}

static void query_handler(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    (void)arg;
    char *name = http_query_param(req, "name");
    char *x = http_query_param(req, "x");
    char *missing = http_query_param(req, "missing");
    json_t *v = json_pack("{s:s?, s:s?, s:s?}", "name", name, "x", x, "missing", missing);
    free(name);
    free(x);
    free(missing);
    http_reply_json(req, 200, v);
}

static void route(struct world *w, int methods, const char *path, http_handler fn,
                  const char *arg)
{
    assert_int_equal(http_server_route(w->server, methods, path, fn, (void *)arg), 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Routing                                                                                   */

static void add_routes(struct world *w)
{
    route(w, EVHTTP_REQ_GET, "/a", named_handler, "a");
    route(w, EVHTTP_REQ_GET | EVHTTP_REQ_POST, "/p/", named_handler, "p");
    route(w, EVHTTP_REQ_GET, "/p/exact", named_handler, "shadowed by /p/");
    route(w, EVHTTP_REQ_GET, "/q/x", named_handler, "qx");
    route(w, EVHTTP_REQ_GET, "/q/", named_handler, "q");
    route(w, EVHTTP_REQ_GET, "/m", named_handler, "m-get");
    route(w, EVHTTP_REQ_POST, "/m", named_handler, "m-post");
}

static void test_routing(void **state)
{
    struct world *w = *state;
    server_start(w);
    add_routes(w);
    client_start(w, NULL, 5);
    /* exact */
    expect_handler(w, EVHTTP_REQ_GET, "/a", "a", "");
    expect_handler(w, EVHTTP_REQ_GET, "/a?x=1", "a", "");
    /* prefix: rest is what follows it */
    expect_handler(w, EVHTTP_REQ_GET, "/p/", "p", "");
    expect_handler(w, EVHTTP_REQ_GET, "/p/x/y", "p", "x/y");
    expect_handler(w, EVHTTP_REQ_POST, "/p/x", "p", "x");
    /* order: the first matching route wins */
    expect_handler(w, EVHTTP_REQ_GET, "/p/exact", "p", "exact");
    expect_handler(w, EVHTTP_REQ_GET, "/q/x", "qx", "");
    expect_handler(w, EVHTTP_REQ_GET, "/q/y", "q", "y");
    /* one path, two routes by method */
    expect_handler(w, EVHTTP_REQ_GET, "/m", "m-get", "");
    expect_handler(w, EVHTTP_REQ_POST, "/m", "m-post", "");
}

static void test_404_and_405(void **state)
{
    struct world *w = *state;
    server_start(w);
    add_routes(w);
    client_start(w, NULL, 5);
    expect_handler(w, EVHTTP_REQ_GET, "/a", "a", "");
    expect_error(w, EVHTTP_REQ_GET, "/nope", 404, "\"no such API: /nope\"\n");
    /* an exact route does not take longer paths, a prefix route not the path without '/' */
    expect_error(w, EVHTTP_REQ_GET, "/a/", 404, "\"no such API: /a/\"\n");
    expect_error(w, EVHTTP_REQ_GET, "/ab", 404, "\"no such API: /ab\"\n");
    expect_error(w, EVHTTP_REQ_GET, "/p", 404, "\"no such API: /p\"\n");
    expect_error(w, EVHTTP_REQ_GET, "/", 404, "\"no such API: /\"\n");
    /* a known path with another method */
    expect_error(w, EVHTTP_REQ_POST, "/a", 405, "\"method not allowed on /a\"\n");
    expect_error(w, EVHTTP_REQ_DELETE, "/p/x", 405, "\"method not allowed on /p/x\"\n");
    expect_error(w, EVHTTP_REQ_PUT, "/m", 405, "\"method not allowed on /m\"\n");
    /* the connection still serves after errors */
    expect_handler(w, EVHTTP_REQ_GET, "/p/z", "p", "z");
}

static void test_fallback(void **state)
{
    struct world *w = *state;
    server_start(w);
    route(w, EVHTTP_REQ_GET, "/a", named_handler, "a");
    http_server_fallback(w->server, named_handler, "fallback");
    client_start(w, NULL, 5);
    expect_handler(w, EVHTTP_REQ_GET, "/a", "a", "");
    /* what would be 404 and 405 goes to the fallback, with the whole path as rest */
    expect_handler(w, EVHTTP_REQ_GET, "/elsewhere/x", "fallback", "/elsewhere/x");
    expect_handler(w, EVHTTP_REQ_POST, "/a", "fallback", "/a");
}

/* ---------------------------------------------------------------------------------------- */
/* Bodies and parameters                                                                     */

static void test_reply_json_pretty(void **state)
{
    struct world *w = *state;
    server_start(w);
    route(w, EVHTTP_REQ_GET, "/pretty", pretty_handler, NULL);
    client_start(w, NULL, 5);
    struct result r;
    request(w, EVHTTP_REQ_GET, "/pretty", NULL, &r);
    assert_int_equal(r.status, 201);
    /* 2-space indent, keys in the order added, UTF-8 kept, trailing newline */
    assert_string_equal(r.body, "{\n"
                                "  \"b\": 1,\n"
                                "  \"a\": [\n"
                                "    1,\n"
                                "    2\n"
                                "  ],\n"
                                "  \"c\": {\n"
                                "    \"d\": \"é\\\"\\n\"\n"
                                "  },\n"
                                "  \"empty_list\": [],\n"
                                "  \"empty_obj\": {}\n"
                                "}\n");
}

static void test_request_json(void **state)
{
    struct world *w = *state;
    server_start(w);
    route(w, EVHTTP_REQ_POST, "/echo", echo_json_handler, NULL);
    client_start(w, NULL, 5);
    struct result r;
    request(w, EVHTTP_REQ_POST, "/echo", "{\"k\": [1, \"v\"]}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\n  \"got\": {\n    \"k\": [\n      1,\n      \"v\"\n    ]\n  }\n}\n");
    /* a body must be an object or an array, as every API body is */
    const char *bad[] = {"{\"k\": ", "{bad}", "", "[1] trailing", "\"a string\"", "1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        request(w, EVHTTP_REQ_POST, "/echo", bad[i], &r);
        assert_int_equal(r.status, 400);
        json_t *v = parse_body(&r);
        assert_true(json_is_string(v));
        assert_contains(json_string_value(v), "request body is not valid JSON: ");
        json_decref(v);
    }
}

static void test_query_param(void **state)
{
    struct world *w = *state;
    server_start(w);
    route(w, EVHTTP_REQ_GET, "/q", query_handler, NULL);
    client_start(w, NULL, 5);
    struct result r;
    request(w, EVHTTP_REQ_GET, "/q?name=hello%20world&x=1&x=2", NULL, &r);
    assert_int_equal(r.status, 200);
    json_t *v = parse_body(&r);
    assert_string_equal(json_string_value(json_object_get(v, "name")), "hello world");
    assert_string_equal(json_string_value(json_object_get(v, "x")), "1");
    assert_true(json_is_null(json_object_get(v, "missing")));
    json_decref(v);
    request(w, EVHTTP_REQ_GET, "/q", NULL, &r);
    assert_int_equal(r.status, 200);
    v = parse_body(&r);
    assert_true(json_is_null(json_object_get(v, "name")));
    json_decref(v);
}

/* ---------------------------------------------------------------------------------------- */
/* Client                                                                                    */

static void test_client_keepalive(void **state)
{
    struct world *w = *state;
    server_start(w);
    route(w, EVHTTP_REQ_GET, "/a", named_handler, "a");
    client_start(w, NULL, 5);
    struct result r1, r2;
    request(w, EVHTTP_REQ_GET, "/a", NULL, &r1);
    request(w, EVHTTP_REQ_GET, "/a", NULL, &r2);
    assert_int_equal(r1.status, 200);
    assert_int_equal(r2.status, 200);
    json_t *v1 = parse_body(&r1), *v2 = parse_body(&r2);
    json_int_t p1 = json_integer_value(json_object_get(v1, "peer_port"));
    json_int_t p2 = json_integer_value(json_object_get(v2, "peer_port"));
    assert_true(p1 > 0);
    /* the same client port: the second request went over the first one's connection */
    assert_int_equal(p1, p2);
    json_decref(v1);
    json_decref(v2);
    /* a second client is a second connection (the check above can tell them apart) */
    w->extra_client = w->client;
    client_start(w, NULL, 5);
    request(w, EVHTTP_REQ_GET, "/a", NULL, &r2);
    v2 = parse_body(&r2);
    assert_int_not_equal(p1, json_integer_value(json_object_get(v2, "peer_port")));
    json_decref(v2);
}

static void test_client_header(void **state)
{
    struct world *w = *state;
    server_start(w);
    route(w, EVHTTP_REQ_GET, "/a", named_handler, "a");
    client_start(w, NULL, 5);
    struct result r;
    request(w, EVHTTP_REQ_GET, "/a", NULL, &r);
    json_t *v = parse_body(&r);
    assert_true(json_is_null(json_object_get(v, "forwarded_by")));
    json_decref(v);
    assert_int_equal(http_client_set_header(w->client, "X-Forwarded-By", "pd-1"), 0);
    request(w, EVHTTP_REQ_GET, "/a", NULL, &r);
    v = parse_body(&r);
    assert_string_equal(json_string_value(json_object_get(v, "forwarded_by")), "pd-1");
    json_decref(v);
    /* set again: replaced, not added */
    assert_int_equal(http_client_set_header(w->client, "X-Forwarded-By", "pd-2"), 0);
    request(w, EVHTTP_REQ_GET, "/a", NULL, &r);
    v = parse_body(&r);
    assert_string_equal(json_string_value(json_object_get(v, "forwarded_by")), "pd-2");
    json_decref(v);
}

/* A socket bound to a free loopback port: listening (connections wait in the backlog,
 * nobody answers) or not (connections are refused). */
static int bound_socket(bool listening, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    if (listening)
        assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static void client_to(struct world *w, int port, int timeout_sec)
{
    char url[64];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d", w->tp == TLS ? "https" : "http", port);
    client_start(w, url, timeout_sec);
}

static void test_client_nothing_listens(void **state)
{
    struct world *w = *state;
    int port;
    w->fd = bound_socket(false, &port);
    client_to(w, port, 5);
    struct result r;
    request(w, EVHTTP_REQ_GET, "/a", NULL, &r);
    assert_int_equal(r.status, 0);
    char want[64];
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d", port);
    assert_contains(r.err, want);
    /* evhttp loses a plaintext connect's errno (it shuts the socket down first); the TLS
     * layer keeps its own (httpcall asks the kernel again for the ctl tools) */
    if (w->tp == TLS)
        assert_contains(r.err, "Connection refused");
    /* the same client reaches a server that listens there */
    close(w->fd);
    w->fd = -1;
    w->port = port;
    w->server = http_server_new(w->base, "127.0.0.1", port, w->sctx, r.err, sizeof r.err);
    assert_non_null(w->server);
    route(w, EVHTTP_REQ_GET, "/a", named_handler, "a");
    expect_handler(w, EVHTTP_REQ_GET, "/a", "a", "");
}

static void test_client_timeout(void **state)
{
    struct world *w = *state;
    int port;
    w->fd = bound_socket(true, &port);
    client_to(w, port, 1);
    struct result r;
    request(w, EVHTTP_REQ_GET, "/a", NULL, &r);
    assert_int_equal(r.status, 0);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d: ", port);
    assert_contains(r.err, want);
    assert_contains(r.err, "timed out");
}

/* TLS only: the client's error names the TLS reason; a plain client gets a plain answer. */
static void test_tls_refusals(void **state)
{
    struct world *w = *state;
    tls_ctx_free(w->sctx);
    char *only_pd[] = {"PD-Server"};
    w->sctx = mkctx(TLS_SERVER, "pd-server", only_pd, 1);
    server_start(w);
    route(w, EVHTTP_REQ_GET, "/a", named_handler, "a");
    /* the good case: a PD-Server cert is let in */
    w->extra_ctx = w->cctx;
    w->cctx = mkctx(TLS_CLIENT, "pd-server", NULL, 0);
    client_start(w, NULL, 5);
    expect_handler(w, EVHTTP_REQ_GET, "/a", "a", "");
    http_client_free(w->client);
    w->client = NULL;
    tls_ctx_free(w->cctx);
    /* the client cert's CN is not on the server's list */
    w->cctx = w->extra_ctx;
    w->extra_ctx = NULL;
    client_start(w, NULL, 5);
    struct result r;
    request(w, EVHTTP_REQ_GET, "/a", NULL, &r);
    assert_int_equal(r.status, 0);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d: ", w->port);
    assert_contains(r.err, want);
    assert_contains(r.err, "Common Name is not in the server's allow-list");
    http_client_free(w->client);
    w->client = NULL;
    /* plain HTTP to the HTTPS server: a plain 400 saying so */
    tls_ctx_free(w->cctx);
    w->cctx = NULL;
    w->tp = PLAIN;
    client_start(w, NULL, 5);
    request(w, EVHTTP_REQ_GET, "/a", NULL, &r);
    assert_int_equal(r.status, 400);
    assert_contains(r.body, "HTTP request to an HTTPS server");
}

int main(void)
{
#define TEST(name, t, tp) {name, t, world_setup, world_teardown, tp}
#define BOTH(t) TEST(#t "/plain", t, &g_plain), TEST(#t "/tls", t, &g_tls)
    const struct CMUnitTest tests[] = {
        BOTH(test_routing),
        BOTH(test_404_and_405),
        BOTH(test_fallback),
        BOTH(test_reply_json_pretty),
        BOTH(test_request_json),
        BOTH(test_query_param),
        BOTH(test_client_keepalive),
        BOTH(test_client_header),
        BOTH(test_client_nothing_listens),
        BOTH(test_client_timeout),
        TEST("test_tls_refusals", test_tls_refusals, &g_tls),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
