/* test_rpc.c — the framed RPC: the parser on every byte boundary and on bad input, and the
 * server and client on real loopback sockets (plaintext and mutual TLS): pipelining with
 * out-of-order async replies, garbage, the per-request CN hook, replies after the caller left,
 * back-pressure, reconnects, a dying server and timeouts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "certgen.h"
#include "conn.h"
#include "log.h"
#include "rpc.h"
#include "testutil.h"
#include "tls.h"

#define WAIT_MS 10000

static char g_dir[200];

/* ---- helpers ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Runs the loop until cond(arg) holds (a guard against hangs, not a timed assertion). */
static void run_until(struct event_base *base, bool (*cond)(void *), void *arg)
{
    double t0 = now_ms();
    while (!cond(arg) && now_ms() - t0 < WAIT_MS)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static void run_for(struct event_base *base, int ms)
{
    double t0 = now_ms();
    while (now_ms() - t0 < ms)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static bool flag_set(void *arg)
{
    return *(bool *)arg;
}

static struct rpc_buf str_buf(const char *s)
{
    return (struct rpc_buf){s, strlen(s)};
}

static bool buf_is(struct rpc_buf b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.data, s, b.len) == 0;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* A header for hand-made frames. */
static void header(unsigned char h[RPC_HEADER_LEN], unsigned kind, uint64_t id, uint32_t len)
{
    memset(h, 0, RPC_HEADER_LEN);
    h[0] = RPC_MAGIC >> 8;
    h[1] = RPC_MAGIC & 0xff;
    h[2] = RPC_VERSION;
    h[3] = (unsigned char)kind;
    put32(h + 6, (uint32_t)(id >> 32));
    put32(h + 10, (uint32_t)id);
    put32(h + 14, len);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    log_open("test", NULL, getenv("RPC_TEST_LOG") ? LOG_DEBUG : LOG_ERROR);
    return tu_pki_dir(g_dir, sizeof g_dir, "rpc", "TiKV-Control");
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_dir[0])
        tu_rm_rf(g_dir);
    return 0;
}

static struct tls_ctx *mkctx(enum tls_side side, const char *cert, char *const *allowed,
                             size_t n_allowed)
{
    struct tls_ctx *ctx = tu_tls_ctx(g_dir, side, cert, allowed, n_allowed, TLS_CN_SERVICE);
    assert_non_null(ctx);
    return ctx;
}

/* ---- parser ---- */

static struct evbuffer *sample_request(void)
{
    struct evbuffer *b = evbuffer_new();
    struct rpc_buf args[3] = {str_buf("key-1"), {"", 0}, str_buf("a value")};
    assert_int_equal(rpc_encode_request(b, 42, "raw_put", args, 3), 0);
    return b;
}

static void check_sample(const struct rpc_frame *f)
{
    assert_int_equal(f->kind, RPC_REQUEST);
    assert_int_equal(f->id, 42);
    assert_string_equal(f->method, "raw_put");
    assert_int_equal(f->nfields, 3);
    assert_true(buf_is(f->fields[0], "key-1"));
    assert_int_equal(f->fields[1].len, 0);
    assert_true(buf_is(f->fields[2], "a value"));
}

/* Every prefix is MORE with nothing consumed; the whole is one frame; byte by byte too. */
static void test_parse_every_boundary(void **state)
{
    (void)state;
    struct evbuffer *whole = sample_request();
    size_t total = evbuffer_get_length(whole);
    unsigned char *bytes = evbuffer_pullup(whole, -1);
    struct rpc_frame *f;
    uint64_t id;
    char err[RPC_ERR_LEN];
    for (size_t k = 0; k < total; k++) {
        struct evbuffer *part = evbuffer_new();
        evbuffer_add(part, bytes, k);
        assert_int_equal(rpc_parse(part, &f, &id, err, sizeof err), RPC_PARSE_MORE);
        assert_null(f);
        assert_int_equal(evbuffer_get_length(part), k);
        evbuffer_free(part);
    }
    /* byte by byte into one buffer, then a second frame right behind */
    struct evbuffer *in = evbuffer_new();
    for (size_t k = 0; k < total - 1; k++) {
        evbuffer_add(in, bytes + k, 1);
        assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_MORE);
    }
    evbuffer_add(in, bytes + total - 1, 1);
    evbuffer_add(in, bytes, total);
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_FRAME);
    assert_int_equal(id, 42);
    check_sample(f);
    rpc_frame_free(f);
    assert_int_equal(evbuffer_get_length(in), total);
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_FRAME);
    struct rpc_frame *copy = rpc_frame_dup(f);
    memset((void *)f->fields[0].data, 'X', f->fields[0].len); /* the copy stands alone */
    rpc_frame_free(f);
    check_sample(copy);
    rpc_frame_free(copy);
    assert_int_equal(evbuffer_get_length(in), 0);
    evbuffer_free(in);
    evbuffer_free(whole);
}

/* A body cut at every byte (with body_len saying so): a field boundary is a shorter frame,
 * anything else "truncated field N", consumed, and the next frame still parses. */
static void test_parse_truncated_fields(void **state)
{
    (void)state;
    struct evbuffer *whole = sample_request();
    size_t body_len = evbuffer_get_length(whole) - RPC_HEADER_LEN;
    unsigned char *body = evbuffer_pullup(whole, -1) + RPC_HEADER_LEN;
    /* field boundaries of the sample: method(7) key-1(5) ""(0) "a value"(7) */
    size_t bounds[] = {11, 20, 24, 35};
    for (size_t k = 11; k < body_len; k++) { /* below 11 there is no method */
        struct evbuffer *in = evbuffer_new();
        unsigned char h[RPC_HEADER_LEN];
        header(h, RPC_REQUEST, 7, (uint32_t)k);
        evbuffer_add(in, h, sizeof h);
        evbuffer_add(in, body, k);
        struct evbuffer *next = sample_request();
        evbuffer_add_buffer(in, next);
        evbuffer_free(next);
        struct rpc_frame *f;
        uint64_t id;
        char err[RPC_ERR_LEN] = "";
        enum rpc_parse_result r = rpc_parse(in, &f, &id, err, sizeof err);
        bool boundary = false;
        for (size_t i = 0; i < 4; i++)
            boundary |= bounds[i] == k;
        assert_int_equal(id, 7);
        if (boundary) {
            assert_int_equal(r, RPC_PARSE_FRAME);
            rpc_frame_free(f);
        } else {
            assert_int_equal(r, RPC_PARSE_INVALID);
            assert_null(f);
            assert_contains(err, "truncated field ");
        }
        assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_FRAME);
        check_sample(f);
        rpc_frame_free(f);
        evbuffer_free(in);
    }
    evbuffer_free(whole);
    /* the exact words for a field that claims more than the body holds */
    struct evbuffer *in = evbuffer_new();
    unsigned char frame[RPC_HEADER_LEN + 4 + 3 + 4 + 4 + 4 + 10];
    header(frame, RPC_REQUEST, 9, sizeof frame - RPC_HEADER_LEN);
    unsigned char *p = frame + RPC_HEADER_LEN;
    put32(p, 3), memcpy(p + 4, "get", 3), p += 7;
    put32(p, 0), p += 4;
    put32(p, 0), p += 4;
    put32(p, 50); /* field 3: 50 bytes declared, 10 left */
    evbuffer_add(in, frame, sizeof frame);
    struct rpc_frame *f;
    uint64_t id;
    char err[RPC_ERR_LEN];
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_INVALID);
    assert_string_equal(err, "truncated field 3: 50 bytes declared, 10 left in the body");
    assert_int_equal(evbuffer_get_length(in), 0);
    evbuffer_free(in);
}

static void test_parse_oversized(void **state)
{
    (void)state;
    struct evbuffer *in = evbuffer_new();
    unsigned char h[RPC_HEADER_LEN];
    header(h, RPC_REQUEST, 5, 100000000);
    evbuffer_add(in, h, sizeof h);
    struct rpc_frame *f;
    uint64_t id;
    char err[RPC_ERR_LEN];
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_TOO_LARGE);
    assert_string_equal(err, "frame body of 100000000 bytes is over the 8388608-byte limit");
    assert_int_equal(id, 5);
    assert_int_equal(evbuffer_get_length(in), RPC_HEADER_LEN);
    evbuffer_free(in);
    /* a body of exactly the limit goes through; one byte more is refused at encoding */
    in = evbuffer_new();
    size_t n = RPC_MAX_BODY - 4 - 3 - 4;
    char *big = calloc(1, n + 1);
    struct rpc_buf arg = {big, n};
    assert_int_equal(rpc_encode_request(in, 6, "put", &arg, 1), 0);
    arg.len = n + 1;
    assert_int_equal(rpc_encode_request(in, 7, "put", &arg, 1), -1);
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_FRAME);
    assert_int_equal(f->fields[0].len, n);
    rpc_frame_free(f);
    assert_int_equal(evbuffer_get_length(in), 0);
    free(big);
    evbuffer_free(in);
}

static void test_parse_garbage(void **state)
{
    (void)state;
    struct rpc_frame *f;
    uint64_t id;
    char err[RPC_ERR_LEN];
    struct evbuffer *in = evbuffer_new();
    evbuffer_add(in, "G", 1);
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_MORE);
    evbuffer_add_printf(in, "ET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_ERROR);
    assert_string_equal(err, "bad magic 0x4745 (is this HTTP?)");
    assert_int_equal(id, 0);
    evbuffer_free(in);
    /* a sound magic with a bad version or kind */
    unsigned char h[RPC_HEADER_LEN];
    header(h, RPC_REQUEST, 1, 0);
    h[2] = 9;
    in = evbuffer_new();
    evbuffer_add(in, h, 3);
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_ERROR);
    assert_string_equal(err, "unsupported frame version 9 (this side speaks 1)");
    evbuffer_free(in);
    header(h, 3, 1, 0);
    in = evbuffer_new();
    evbuffer_add(in, h, sizeof h);
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_ERROR);
    assert_string_equal(err, "bad frame kind 3 (1 request, 2 response)");
    evbuffer_free(in);
}

static void test_parse_zero_fields(void **state)
{
    (void)state;
    struct rpc_frame *f;
    uint64_t id;
    char err[RPC_ERR_LEN];
    unsigned char h[RPC_HEADER_LEN];
    struct evbuffer *in = evbuffer_new();
    header(h, RPC_REQUEST, 3, 0);
    evbuffer_add(in, h, sizeof h);
    header(h, RPC_RESPONSE, 4, 0);
    evbuffer_add(in, h, sizeof h);
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_INVALID);
    assert_int_equal(id, 3);
    assert_contains(err, "no valid method name");
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_INVALID);
    assert_int_equal(id, 4);
    assert_contains(err, "no valid status");
    /* a method and no arguments; a status, empty message and no results */
    assert_int_equal(rpc_encode_request(in, 5, "status", NULL, 0), 0);
    assert_int_equal(rpc_encode_response(in, 5, RPC_NOT_FOUND, NULL, NULL, 0), 0);
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_FRAME);
    assert_string_equal(f->method, "status");
    assert_int_equal(f->nfields, 0);
    rpc_frame_free(f);
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_FRAME);
    assert_int_equal(f->status, RPC_NOT_FOUND);
    assert_int_equal(f->message.len, 0);
    assert_int_equal(f->nfields, 0);
    rpc_frame_free(f);
    evbuffer_free(in);
}

static void test_parse_max_fields(void **state)
{
    (void)state;
    struct rpc_frame *f;
    uint64_t id;
    char err[RPC_ERR_LEN];
    size_t n = RPC_MAX_FIELDS;
    struct rpc_buf *args = calloc(n, sizeof *args);
    for (size_t i = 0; i < n; i++)
        args[i] = str_buf(i % 2 ? "v" : "");
    struct evbuffer *in = evbuffer_new();
    assert_int_equal(rpc_encode_request(in, 1, "batch_put", args, n), -1); /* 1 + n fields */
    assert_int_equal(evbuffer_get_length(in), 0);
    assert_int_equal(rpc_encode_request(in, 1, "batch_put", args, n - 1), 0);
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_FRAME);
    assert_int_equal(f->nfields, n - 1);
    assert_true(buf_is(f->fields[1], "v"));
    assert_true(buf_is(f->fields[n - 3], "v"));
    assert_int_equal(f->fields[n - 2].len, 0);
    rpc_frame_free(f);
    /* a hand-made frame with one field too many */
    size_t body = (n + 1) * 4;
    unsigned char *frame = calloc(1, RPC_HEADER_LEN + body);
    header(frame, RPC_REQUEST, 2, (uint32_t)body);
    evbuffer_add(in, frame, RPC_HEADER_LEN + body);
    assert_int_equal(rpc_parse(in, &f, &id, err, sizeof err), RPC_PARSE_INVALID);
    assert_string_equal(err, "more than 65536 fields in a frame");
    free(frame);
    free(args);
    evbuffer_free(in);
}

static void test_cn_refusal(void **state)
{
    (void)state;
    char *list[] = {"TiDB-Server", "PD-Server", "TiKV-Control", "RawKvClient1"};
    char buf[512];
    assert_int_equal(rpc_cn_refusal(buf, sizeof buf, "Intruder", list, 4), 0);
    assert_string_equal(buf, "Common name check fail, reason: x509_common_name from peer is "
                             "Intruder, cert_allowed_cn: {\"TiDB-Server\", \"PD-Server\", "
                             "\"TiKV-Control\", \"RawKvClient1\"}");
    char *odd[] = {"a\"b\\c\n"};
    assert_int_equal(rpc_cn_refusal(buf, sizeof buf, "X", odd, 1), 0);
    assert_string_equal(buf, "Common name check fail, reason: x509_common_name from peer is X, "
                             "cert_allowed_cn: {\"a\\\"b\\\\c\\n\"}");
    assert_int_equal(rpc_cn_refusal(buf, sizeof buf, "X", NULL, 0), 0);
    assert_contains(buf, "cert_allowed_cn: {}");
    char small[40];
    assert_int_equal(rpc_cn_refusal(small, sizeof small, "Intruder", list, 4), -1);
    assert_int_equal(strlen(small), sizeof small - 1);
}

/* ---- a test service ---- */

#define MAX_HELD 2048

struct svc {
    struct rpc_call *held[MAX_HELD]; /* "hold" calls, answered by the test */
    int nheld;
    int served;
    char *allowed[2];
};

/* "echo": answers at once with its arguments. */
static void h_echo(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    struct svc *s = arg;
    s->served++;
    rpc_reply(call, RPC_OK, "", req->fields, req->nfields);
}

/* "hold": kept for the test to answer later. */
static void h_hold(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    (void)req;
    struct svc *s = arg;
    assert_true(s->nheld < MAX_HELD);
    s->held[s->nheld++] = call;
}

/* The CN check TiKV makes per request. */
static enum rpc_status cn_hook(const struct conn_peer *peer, const struct rpc_frame *req,
                               void *arg, char *msg, size_t msglen)
{
    (void)req;
    struct svc *s = arg;
    if (peer->cn_allowed)
        return RPC_OK;
    rpc_cn_refusal(msg, msglen, peer->cn, s->allowed, 2);
    return RPC_UNAUTHENTICATED;
}

static struct rpc_server *start_server(struct event_base *base, struct svc *s,
                                       struct tls_ctx *tls, int port, unsigned max_inflight,
                                       bool hook)
{
    struct rpc_method methods[] = {{"echo", h_echo, s}, {"hold", h_hold, s}};
    struct rpc_server_opts o = {.methods = methods,
                                .n_methods = 2,
                                .hook = hook ? cn_hook : NULL,
                                .hook_arg = s,
                                .max_inflight = max_inflight};
    struct rpc_server *srv = rpc_server_new(base, &o);
    char err[256];
    assert_non_null(srv);
    if (rpc_server_listen(srv, "127.0.0.1", port, tls, err, sizeof err) != 0)
        print_error("listen: %s\n", err);
    assert_true(rpc_server_port(srv) > 0);
    return srv;
}

/* One call's outcome. */
struct outcome {
    bool done;
    bool ok; /* a response arrived */
    enum rpc_status status;
    char msg[RPC_ERR_LEN];
    char field0[64];
    char err[1024];
};

static void on_outcome(const struct rpc_frame *resp, const char *err, void *arg)
{
    struct outcome *o = arg;
    assert_false(o->done);
    o->done = true;
    o->ok = resp != NULL;
    if (!resp) {
        snprintf(o->err, sizeof o->err, "%s", err);
        return;
    }
    o->status = resp->status;
    rpc_frame_message(resp, o->msg, sizeof o->msg);
    if (resp->nfields)
        snprintf(o->field0, sizeof o->field0, "%.*s", (int)resp->fields[0].len,
                 (const char *)resp->fields[0].data);
}

static void call(struct rpc_client *c, const char *method, const char *arg, int timeout_ms,
                 struct outcome *o)
{
    char err[512];
    memset(o, 0, sizeof *o);
    struct rpc_buf b = str_buf(arg);
    if (rpc_client_call(c, method, &b, 1, timeout_ms, on_outcome, o, err, sizeof err) != 0)
        print_error("call: %s\n", err);
}

static bool outcome_done(void *arg)
{
    return ((struct outcome *)arg)->done;
}

/* ---- server and client ---- */

struct many {
    int answered;
    int wrong;
};

struct one_call {
    struct many *m;
    int index;
};

static void on_indexed(const struct rpc_frame *resp, const char *err, void *arg)
{
    struct one_call *oc = arg;
    char want[16];
    snprintf(want, sizeof want, "%d", oc->index);
    oc->m->answered++;
    if (!resp || resp->status != RPC_OK || resp->nfields != 1 || !buf_is(resp->fields[0], want)) {
        print_error("call %d: %s\n", oc->index, err ? err : "wrong answer");
        oc->m->wrong++;
    }
}

static bool all_answered(void *arg)
{
    return ((struct many *)arg)->answered == 1000;
}

static bool held_1000(void *arg)
{
    return ((struct svc *)arg)->nheld == 1000;
}

/* 1000 calls in flight on one mutual-TLS connection, answered later in shuffled order: each
 * caller gets its own answer. */
static void test_pipelined_shuffled(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct tls_ctx *stls = mkctx(TLS_SERVER, "tikv-server", NULL, 0);
    struct tls_ctx *ctls = mkctx(TLS_CLIENT, "client", NULL, 0);
    struct svc s = {0};
    struct rpc_server *srv = start_server(base, &s, stls, 0, 0, false);
    struct rpc_client *c = rpc_client_new(base, "127.0.0.1", rpc_server_port(srv), ctls, 0);
    static struct one_call calls[1000];
    static char text[1000][16];
    struct many m = {0};
    char err[256];
    for (int i = 0; i < 1000; i++) {
        calls[i] = (struct one_call){&m, i};
        snprintf(text[i], sizeof text[i], "%d", i);
        struct rpc_buf b = str_buf(text[i]);
        assert_int_equal(rpc_client_call(c, "hold", &b, 1, 0, on_indexed, &calls[i], err,
                                         sizeof err), 0);
    }
    assert_int_equal(rpc_client_pending(c), 1000);
    run_until(base, held_1000, &s);
    assert_int_equal(s.nheld, 1000);
    srand(7);
    for (int i = 999; i > 0; i--) {
        int j = rand() % (i + 1);
        struct rpc_call *t = s.held[i];
        s.held[i] = s.held[j];
        s.held[j] = t;
    }
    for (int i = 0; i < 1000; i++) {
        const struct rpc_frame *req = rpc_call_request(s.held[i]);
        assert_false(rpc_call_orphaned(s.held[i]));
        assert_int_equal(rpc_reply(s.held[i], RPC_OK, NULL, req->fields, 1), 0);
    }
    run_until(base, all_answered, &m);
    assert_int_equal(m.answered, 1000);
    assert_int_equal(m.wrong, 0);
    assert_int_equal(rpc_client_pending(c), 0);
    rpc_client_free(c);
    rpc_server_free(srv);
    tls_ctx_free(stls);
    tls_ctx_free(ctls);
    event_base_free(base);
}


/* A raw connection that reads everything until the server closes it. */
struct raw {
    bool connected;
    bool closed;
    struct bufferevent *bev;
    struct evbuffer *got;
};

static void raw_read(struct bufferevent *bev, void *arg)
{
    struct raw *r = arg;
    evbuffer_add_buffer(r->got, bufferevent_get_input(bev));
}

static void raw_event(struct bufferevent *bev, short what, void *arg)
{
    struct raw *r = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        evbuffer_add_buffer(r->got, bufferevent_get_input(bev));
        r->closed = true;
    }
}

static void raw_dialed(struct bufferevent *bev, const struct conn_peer *peer, const char *err,
                       void *arg)
{
    (void)peer;
    (void)err;
    struct raw *r = arg;
    r->connected = bev != NULL;
    r->bev = bev;
    if (bev) {
        bufferevent_setcb(bev, raw_read, NULL, raw_event, r);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
    }
}

static bool raw_connected(void *arg)
{
    return ((struct raw *)arg)->connected;
}

static bool raw_closed(void *arg)
{
    return ((struct raw *)arg)->closed;
}

static void raw_open(struct event_base *base, int port, struct raw *r)
{
    char err[256];
    memset(r, 0, sizeof *r);
    r->got = evbuffer_new();
    assert_non_null(conn_dial(base, "127.0.0.1", port, NULL, 3000, raw_dialed, r, err,
                              sizeof err));
    run_until(base, raw_connected, r);
    assert_true(r->connected);
}

static void raw_close(struct raw *r)
{
    if (r->bev)
        bufferevent_free(r->bev);
    evbuffer_free(r->got);
}

/* Sends bytes, waits for the close, and checks the one error frame that came before it. */
static void expect_error_then_close(struct event_base *base, int port, const void *bytes,
                                    size_t len, uint64_t id, enum rpc_status st, const char *msg)
{
    struct raw r;
    raw_open(base, port, &r);
    bufferevent_write(r.bev, bytes, len);
    run_until(base, raw_closed, &r);
    assert_true(r.closed);
    struct rpc_frame *f;
    uint64_t fid;
    char err[RPC_ERR_LEN], text[RPC_ERR_LEN];
    assert_int_equal(rpc_parse(r.got, &f, &fid, err, sizeof err), RPC_PARSE_FRAME);
    assert_int_equal(f->kind, RPC_RESPONSE);
    assert_int_equal(f->id, id);
    assert_int_equal(f->status, st);
    rpc_frame_message(f, text, sizeof text);
    assert_string_equal(text, msg);
    rpc_frame_free(f);
    assert_int_equal(evbuffer_get_length(r.got), 0);
    raw_close(&r);
}

/* Garbage and an oversized header each get one error frame and a closed connection, while a
 * client on another connection of the same server is served before and after. */
static void test_garbage_closed_others_served(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct svc s = {0};
    struct rpc_server *srv = start_server(base, &s, NULL, 0, 0, false);
    int port = rpc_server_port(srv);
    struct rpc_client *c = rpc_client_new(base, "127.0.0.1", port, NULL, 0);
    struct outcome o;
    call(c, "echo", "before", 0, &o);
    run_until(base, outcome_done, &o);
    assert_true(o.ok);
    assert_string_equal(o.field0, "before");

    const char http[] = "GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_error_then_close(base, port, http, sizeof http - 1, 0, RPC_BAD_REQUEST,
                            "bad magic 0x4745 (is this HTTP?)");
    unsigned char h[RPC_HEADER_LEN];
    header(h, RPC_REQUEST, 77, 100000000);
    expect_error_then_close(base, port, h, sizeof h, 77, RPC_TOO_LARGE,
                            "frame body of 100000000 bytes is over the 8388608-byte limit");
    /* a bad body answers its call and the stream goes on */
    struct raw r;
    raw_open(base, port, &r);
    header(h, RPC_REQUEST, 5, 0);
    bufferevent_write(r.bev, h, sizeof h);
    struct rpc_buf arg = str_buf("after");
    rpc_encode_request(bufferevent_get_output(r.bev), 6, "echo", &arg, 1);
    rpc_encode_request(bufferevent_get_output(r.bev), 7, "no_such", NULL, 0);
    struct rpc_frame *f[3];
    uint64_t id;
    char err[RPC_ERR_LEN];
    for (int i = 0; i < 3; i++) {
        double t0 = now_ms();
        while (rpc_parse(r.got, &f[i], &id, err, sizeof err) == RPC_PARSE_MORE &&
               now_ms() - t0 < WAIT_MS)
            event_base_loop(base, EVLOOP_ONCE);
        assert_non_null(f[i]);
    }
    assert_int_equal(f[0]->id, 5);
    assert_int_equal(f[0]->status, RPC_BAD_REQUEST);
    assert_int_equal(f[1]->id, 6);
    assert_int_equal(f[1]->status, RPC_OK);
    assert_int_equal(f[2]->id, 7);
    assert_int_equal(f[2]->status, RPC_BAD_REQUEST);
    char text[RPC_ERR_LEN];
    rpc_frame_message(f[2], text, sizeof text);
    assert_string_equal(text, "unknown method 'no_such'");
    for (int i = 0; i < 3; i++)
        rpc_frame_free(f[i]);
    assert_false(r.closed);
    raw_close(&r);

    call(c, "echo", "after", 0, &o);
    run_until(base, outcome_done, &o);
    assert_true(o.ok);
    assert_string_equal(o.field0, "after");
    rpc_client_free(c);
    rpc_server_free(srv);
    event_base_free(base);
}

/* A frame cut short by EOF closes that connection only. */
static void test_cut_short_at_eof(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct svc s = {0};
    struct rpc_server *srv = start_server(base, &s, NULL, 0, 0, false);
    int port = rpc_server_port(srv);
    struct evbuffer *frame = sample_request();
    struct raw r;
    raw_open(base, port, &r);
    bufferevent_write(r.bev, evbuffer_pullup(frame, -1), evbuffer_get_length(frame) - 3);
    run_for(base, 50);
    bufferevent_disable(r.bev, EV_READ);
    evutil_socket_t fd = bufferevent_getfd(r.bev);
    shutdown(fd, SHUT_WR);
    bufferevent_enable(r.bev, EV_READ);
    run_until(base, raw_closed, &r);
    assert_true(r.closed);
    assert_int_equal(evbuffer_get_length(r.got), 0); /* no answer, just a close */
    raw_close(&r);
    evbuffer_free(frame);
    struct rpc_client *c = rpc_client_new(base, "127.0.0.1", port, NULL, 0);
    struct outcome o;
    call(c, "echo", "still here", 0, &o);
    run_until(base, outcome_done, &o);
    assert_true(o.ok);
    rpc_client_free(c);
    rpc_server_free(srv);
    event_base_free(base);
}

/* The per-request hook refuses one CN with TiKV's sentence and serves another, same server. */
static void test_cn_hook(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct svc s = {.allowed = {"TiKV-Control", "PD-Server"}};
    struct tls_ctx *stls = mkctx(TLS_SERVER, "tikv-server", s.allowed, 2);
    struct tls_ctx *good = mkctx(TLS_CLIENT, "client", NULL, 0);
    struct tls_ctx *bad = mkctx(TLS_CLIENT, "tidb-server", NULL, 0);
    struct rpc_server *srv = start_server(base, &s, stls, 0, 0, true);
    int port = rpc_server_port(srv);
    struct rpc_client *cg = rpc_client_new(base, "127.0.0.1", port, good, 0);
    struct rpc_client *cb = rpc_client_new(base, "127.0.0.1", port, bad, 0);
    struct outcome og, ob;
    call(cg, "echo", "hello", 0, &og);
    call(cb, "echo", "hello", 0, &ob);
    run_until(base, outcome_done, &og);
    run_until(base, outcome_done, &ob);
    assert_true(og.ok);
    assert_int_equal(og.status, RPC_OK);
    assert_string_equal(og.field0, "hello");
    assert_true(ob.ok);
    assert_int_equal(ob.status, RPC_UNAUTHENTICATED);
    assert_string_equal(ob.msg, "Common name check fail, reason: x509_common_name from peer is "
                                "TiDB-Server, cert_allowed_cn: {\"TiKV-Control\", \"PD-Server\"}");
    assert_int_equal(s.served, 1);
    /* every request is checked, not only the first */
    call(cb, "echo", "again", 0, &ob);
    run_until(base, outcome_done, &ob);
    assert_int_equal(ob.status, RPC_UNAUTHENTICATED);
    assert_int_equal(s.served, 1);
    rpc_client_free(cg);
    rpc_client_free(cb);
    rpc_server_free(srv);
    tls_ctx_free(stls);
    tls_ctx_free(good);
    tls_ctx_free(bad);
    event_base_free(base);
}

static bool held_one(void *arg)
{
    return ((struct svc *)arg)->nheld >= 1;
}

static bool first_orphaned(void *arg)
{
    return rpc_call_orphaned(((struct svc *)arg)->held[0]);
}

/* The caller leaves while its call is held; the late reply is dropped (ASan: no
 * use-after-free), and the server serves the next caller. */
static void test_reply_after_disconnect(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct svc s = {0};
    struct tls_ctx *stls = mkctx(TLS_SERVER, "tikv-server", NULL, 0);
    struct tls_ctx *ctls = mkctx(TLS_CLIENT, "client", NULL, 0);
    struct rpc_server *srv = start_server(base, &s, stls, 0, 0, false);
    int port = rpc_server_port(srv);
    struct rpc_client *c = rpc_client_new(base, "127.0.0.1", port, ctls, 0);
    struct outcome o;
    call(c, "hold", "x", 0, &o);
    run_until(base, held_one, &s);
    assert_int_equal(s.nheld, 1);
    rpc_client_free(c);
    assert_true(o.done);
    assert_false(o.ok);
    assert_contains(o.err, ": the client is closed");
    run_until(base, first_orphaned, &s);
    assert_true(rpc_call_orphaned(s.held[0]));
    assert_string_equal(rpc_call_peer(s.held[0])->cn, "TiKV-Control");
    assert_int_equal(rpc_reply(s.held[0], RPC_OK, "late", NULL, 0), 0);
    c = rpc_client_new(base, "127.0.0.1", port, ctls, 0);
    call(c, "echo", "next", 0, &o);
    run_until(base, outcome_done, &o);
    assert_true(o.ok);
    assert_string_equal(o.field0, "next");
    rpc_client_free(c);
    rpc_server_free(srv);
    tls_ctx_free(stls);
    tls_ctx_free(ctls);
    event_base_free(base);
}

static bool held_four(void *arg)
{
    return ((struct svc *)arg)->nheld >= 4;
}

static bool held_ten(void *arg)
{
    return ((struct svc *)arg)->nheld >= 10;
}

/* With max_inflight 4, the fifth request waits in the socket until a reply goes out. */
static void test_backpressure(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct svc s = {0};
    struct rpc_server *srv = start_server(base, &s, NULL, 0, 4, false);
    struct rpc_client *c = rpc_client_new(base, "127.0.0.1", rpc_server_port(srv), NULL, 0);
    struct outcome o[10];
    for (int i = 0; i < 10; i++)
        call(c, "hold", "x", 0, &o[i]);
    run_until(base, held_four, &s);
    run_for(base, 100); /* time for more to arrive if reading had not stopped */
    assert_int_equal(s.nheld, 4);
    int answered = 0;
    while (answered < s.nheld && s.nheld < 10) {
        rpc_reply(s.held[answered++], RPC_OK, NULL, NULL, 0);
        run_for(base, 10);
    }
    run_until(base, held_ten, &s);
    assert_int_equal(s.nheld, 10);
    while (answered < 10)
        rpc_reply(s.held[answered++], RPC_OK, NULL, NULL, 0);
    run_until(base, outcome_done, &o[9]);
    for (int i = 0; i < 10; i++)
        assert_true(o[i].ok);
    rpc_client_free(c);
    rpc_server_free(srv);
    event_base_free(base);
}

/* A dying server fails the pending call with a reason; the next call reconnects once the
 * server is back on the same port; a refused dial says so. */
static void test_client_reconnect(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct svc s = {0};
    struct tls_ctx *stls = mkctx(TLS_SERVER, "tikv-server", NULL, 0);
    struct tls_ctx *ctls = mkctx(TLS_CLIENT, "client", NULL, 0);
    struct rpc_server *srv = start_server(base, &s, stls, 0, 0, false);
    int port = rpc_server_port(srv);
    struct rpc_client *c = rpc_client_new(base, "127.0.0.1", port, ctls, 0);
    struct outcome o;
    call(c, "echo", "one", 0, &o);
    run_until(base, outcome_done, &o);
    assert_true(o.ok);
    call(c, "hold", "x", 0, &o);
    run_until(base, held_one, &s);
    rpc_server_free(srv); /* the held call's reply is never sent */
    run_until(base, outcome_done, &o);
    assert_true(o.done);
    assert_false(o.ok);
    char want[128];
    snprintf(want, sizeof want, "127.0.0.1:%d: connection lost: ", port);
    assert_contains(o.err, want);
    rpc_reply(s.held[0], RPC_OK, NULL, NULL, 0);
    /* nobody listens: the dial is refused */
    call(c, "echo", "two", 0, &o);
    run_until(base, outcome_done, &o);
    assert_false(o.ok);
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d: Connection refused", port);
    assert_string_equal(o.err, want);
    /* back on the same port: the next call reconnects */
    s.nheld = 0;
    srv = start_server(base, &s, stls, port, 0, false);
    call(c, "echo", "three", 0, &o);
    run_until(base, outcome_done, &o);
    assert_true(o.ok);
    assert_string_equal(o.field0, "three");
    rpc_client_free(c);
    rpc_server_free(srv);
    tls_ctx_free(stls);
    tls_ctx_free(ctls);
    event_base_free(base);
}

/* A call without a reply times out; the connection stays usable and the late reply is
 * ignored. */
static void test_client_timeout(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct svc s = {0};
    struct rpc_server *srv = start_server(base, &s, NULL, 0, 0, false);
    int port = rpc_server_port(srv);
    struct rpc_client *c = rpc_client_new(base, "127.0.0.1", port, NULL, 0);
    struct outcome o, o2;
    call(c, "hold", "x", 200, &o);
    run_until(base, outcome_done, &o);
    assert_false(o.ok);
    char want[128];
    snprintf(want, sizeof want, "127.0.0.1:%d: no reply to hold within 200 ms", port);
    assert_string_equal(o.err, want);
    assert_int_equal(rpc_client_pending(c), 0);
    assert_int_equal(s.nheld, 1);
    rpc_reply(s.held[0], RPC_OK, NULL, NULL, 0); /* arrives after the deadline */
    call(c, "echo", "fine", 200, &o2);
    run_until(base, outcome_done, &o2);
    assert_true(o2.ok);
    assert_string_equal(o2.field0, "fine");
    rpc_client_free(c);
    rpc_server_free(srv);
    event_base_free(base);
}

/* A callback may free its own client: the free waits until it returns. */
static struct rpc_client *g_self_free;

static void free_in_callback(const struct rpc_frame *resp, const char *err, void *arg)
{
    (void)resp;
    (void)err;
    *(bool *)arg = true;
    rpc_client_free(g_self_free);
}

static void test_free_from_callback(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct svc s = {0};
    struct rpc_server *srv = start_server(base, &s, NULL, 0, 0, false);
    g_self_free = rpc_client_new(base, "127.0.0.1", rpc_server_port(srv), NULL, 0);
    bool first = false;
    struct outcome second;
    char err[256];
    struct rpc_buf b = str_buf("x");
    assert_int_equal(rpc_client_call(g_self_free, "echo", &b, 1, 0, free_in_callback, &first,
                                     err, sizeof err), 0);
    call(g_self_free, "hold", "y", 0, &second);
    run_until(base, flag_set, &first);
    assert_true(first);
    assert_true(second.done); /* failed by the free */
    assert_contains(second.err, "the client is closed");
    for (int i = 0; i < s.nheld; i++) /* a handler answers every call, even orphaned */
        rpc_reply(s.held[i], RPC_OK, NULL, NULL, 0);
    rpc_server_free(srv);
    event_base_free(base);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_parse_every_boundary),
    cmocka_unit_test(test_parse_truncated_fields),
    cmocka_unit_test(test_parse_oversized),
    cmocka_unit_test(test_parse_garbage),
    cmocka_unit_test(test_parse_zero_fields),
    cmocka_unit_test(test_parse_max_fields),
    cmocka_unit_test(test_cn_refusal),
    cmocka_unit_test(test_pipelined_shuffled),
    cmocka_unit_test(test_garbage_closed_others_served),
    cmocka_unit_test(test_cut_short_at_eof),
    cmocka_unit_test(test_cn_hook),
    cmocka_unit_test(test_reply_after_disconnect),
    cmocka_unit_test(test_backpressure),
    cmocka_unit_test(test_client_reconnect),
    cmocka_unit_test(test_client_timeout),
    cmocka_unit_test(test_free_from_callback),
};

int main(void)
{
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
