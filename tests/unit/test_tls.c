/* Unit tests for tls.c: mutual TLS under libevent bufferevents, in-process.
 *
 * Transports: real loopback sockets (evconnlistener on 127.0.0.1 port 0 + tls_bev_accept,
 * tls_bev_connect), an evhttp server and client (tls_evhttp_serve, tls_evhttp_connection_new),
 * and two filters over a bufferevent_pair (BEV_OPT_DEFER_CALLBACKS) in one event base.
 * Certificates come from certgen in a temp dir. Every wait drives the loop until a condition
 * or a deadline (never forever). Every rejection test also shows the good case passing in the
 * same setup. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "certgen.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_csr.h>
#include "testutil.h"
#include "conn.h"
#include "http.h"
#include "tls.h"

#define WAIT_MS 5000

static char g_dir[200];

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", g_dir, name);
}


static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* ---------------------------------------------------------------------------------------- */
/* Certificates                                                                              */

static struct certgen_pair *g_ca, *g_ca2;

static void make_cert(const char *name, const char *cn, const char *const *sans, size_t n_sans,
                      const struct certgen_pair *issuer, time_t not_before, time_t not_after)
{
    char err[256], c[300], k[300], kn[64];
    struct certgen_req req = {.cn = cn, .sans = (char *const *)sans, .n_sans = n_sans,
                              .not_before = not_before, .not_after = not_after};
    struct certgen_pair *p = NULL;
    if (certgen_make(&req, issuer, &p, err, sizeof err) != 0) {
        fprintf(stderr, "certgen_make %s: %s\n", name, err);
        abort();
    }
    snprintf(kn, sizeof kn, "%s-key.pem", name);
    path_of(k, sizeof k, kn);
    snprintf(kn, sizeof kn, "%s.pem", name);
    path_of(c, sizeof c, kn);
    if (certgen_write(p, c, k, err, sizeof err) != 0) {
        fprintf(stderr, "certgen_write %s: %s\n", name, err);
        abort();
    }
    certgen_free(p);
}

static const char *const SERVER_SANS[] = {"127.0.0.1", "::1", "localhost"};
static const char *const NOIP_SANS[] = {"example.com"};

static int group_setup(void **state)
{
    (void)state;
    char err[256], c[300], k[300];
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_dir, sizeof g_dir, "/tmp/tisim-test-tls-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    struct certgen_req careq = {.cn = "tisim test CA", .is_ca = true};
    struct certgen_req ca2req = {.cn = "another CA", .is_ca = true};
    if (certgen_make(&careq, NULL, &g_ca, err, sizeof err) != 0 ||
        certgen_make(&ca2req, NULL, &g_ca2, err, sizeof err) != 0) {
        fprintf(stderr, "CA: %s\n", err);
        return -1;
    }
    path_of(c, sizeof c, "ca.pem");
    path_of(k, sizeof k, "ca-key.pem");
    if (certgen_write(g_ca, c, k, err, sizeof err) != 0)
        return -1;
    path_of(c, sizeof c, "ca2.pem");
    path_of(k, sizeof k, "ca2-key.pem");
    if (certgen_write(g_ca2, c, k, err, sizeof err) != 0)
        return -1;
    time_t now = time(NULL);
    make_cert("server", "PD-Server", SERVER_SANS, 3, g_ca, 0, 0);
    make_cert("client", "TiDB-Server", NULL, 0, g_ca, 0, 0);
    make_cert("evil", "Evil-Client", NULL, 0, g_ca, 0, 0);
    make_cert("client-ca2", "TiDB-Server", NULL, 0, g_ca2, 0, 0);
    make_cert("server-expired", "PD-Server", SERVER_SANS, 3, g_ca, now - 10 * 86400,
              now - 86400);
    make_cert("client-expired", "TiDB-Server", NULL, 0, g_ca, now - 10 * 86400, now - 86400);
    make_cert("server-noip", "PD-Server", NOIP_SANS, 1, g_ca, 0, 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    certgen_free(g_ca);
    certgen_free(g_ca2);
    if (g_dir[0])
        tu_rm_rf(g_dir);
    return 0;
}

/* ctx from file names in g_dir; cert NULL = no client certificate. */
static struct tls_ctx *mkctx(enum tls_side side, const char *ca, const char *cert,
                             char *const *allowed, size_t n_allowed, enum tls_cn_check check)
{
    char cap[300], cp[300], kp[300], kn[64], err[512];
    path_of(cap, sizeof cap, ca);
    if (cert) {
        snprintf(kn, sizeof kn, "%s.pem", cert);
        path_of(cp, sizeof cp, kn);
        snprintf(kn, sizeof kn, "%s-key.pem", cert);
        path_of(kp, sizeof kp, kn);
    }
    struct tls_opts o = {
        .role = side == TLS_SERVER ? "test-server" : "test-client",
        .ca_path = cap,
        .cert_path = cert ? cp : NULL,
        .key_path = cert ? kp : NULL,
        .allowed_cn = allowed,
        .n_allowed_cn = n_allowed,
        .cn_check = check,
    };
    struct tls_ctx *ctx = tls_ctx_new(side, &o, err, sizeof err);
    if (!ctx)
        print_error("tls_ctx_new: %s\n", err);
    assert_non_null(ctx);
    return ctx;
}

/* ---------------------------------------------------------------------------------------- */
/* Event loop harness                                                                        */

struct world {
    struct event_base *base;
    struct event *tick;
};

static void noop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void world_init(struct world *w)
{
    w->base = event_base_new();
    assert_non_null(w->base);
    w->tick = event_new(w->base, -1, EV_PERSIST, noop_cb, NULL);
    struct timeval tv = {0, 5000};
    event_add(w->tick, &tv);
}

static void loop_once(struct world *w)
{
    event_base_loop(w->base, EVLOOP_ONCE);
}

#define RUN_UNTIL(w, cond, ms)                                                                \
    do {                                                                                      \
        double t0_ = now_ms();                                                                \
        while (!(cond) && now_ms() - t0_ < (ms))                                              \
            loop_once(w);                                                                     \
    } while (0)

static void world_free(struct world *w)
{
    /* let finalizers and deferred callbacks run */
    for (int i = 0; i < 5; i++) {
        struct timeval tv = {0, 2000};
        event_base_loopexit(w->base, &tv);
        event_base_dispatch(w->base);
    }
    event_free(w->tick);
    event_base_free(w->base);
}

/* One end of a TLS connection, as its user sees it. */
struct endpoint {
    struct bufferevent *bev;
    bool connected, error, eof;
    short what;
    struct tls_peer peer; /* snapshot at the last event */
    char got[4096];
    size_t ngot;
    bool echo;
};

static void ep_snapshot(struct endpoint *e)
{
    const struct tls_peer *p = tls_bev_peer(e->bev);
    if (p)
        e->peer = *p;
}

static void ep_readcb(struct bufferevent *bev, void *arg)
{
    struct endpoint *e = arg;
    char buf[1024];
    size_t n;
    while ((n = bufferevent_read(bev, buf, sizeof buf)) > 0) {
        if (e->echo)
            bufferevent_write(bev, buf, n);
        size_t k = sizeof e->got - 1 - e->ngot;
        if (k > n)
            k = n;
        memcpy(e->got + e->ngot, buf, k);
        e->ngot += k;
        e->got[e->ngot] = '\0';
    }
    ep_snapshot(e);
}

static void ep_eventcb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct endpoint *e = arg;
    e->what |= what;
    if (what & BEV_EVENT_CONNECTED)
        e->connected = true;
    if (what & BEV_EVENT_ERROR)
        e->error = true;
    if (what & BEV_EVENT_EOF)
        e->eof = true;
    ep_snapshot(e);
}

static void ep_attach(struct endpoint *e, struct bufferevent *bev)
{
    e->bev = bev;
    bufferevent_setcb(bev, ep_readcb, NULL, ep_eventcb, e);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void ep_close(struct endpoint *e)
{
    if (e->bev)
        bufferevent_free(e->bev);
    e->bev = NULL;
}

static bool ep_done(struct endpoint *e)
{
    const struct tls_peer *p = e->bev ? tls_bev_peer(e->bev) : NULL;
    return e->error || e->eof || (p && p->handshake_done);
}

/* A loopback TLS server: evconnlistener + tls_bev_accept, echoing. */
#define MAX_CONNS 16
struct server {
    struct world *w;
    struct tls_ctx *ctx;
    struct evconnlistener *lev;
    int port;
    struct endpoint conns[MAX_CONNS];
    int n;
    const char *plaintext_reply; /* for the next connections, if set */
};

static void server_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int sl, void *arg)
{
    (void)l;
    (void)sa;
    (void)sl;
    struct server *s = arg;
    if (s->n >= MAX_CONNS) {
        evutil_closesocket(fd);
        return;
    }
    struct endpoint *e = &s->conns[s->n++];
    memset(e, 0, sizeof *e);
    e->echo = true;
    struct bufferevent *bev = tls_bev_accept(s->ctx, s->w->base, fd);
    assert_non_null(bev);
    if (s->plaintext_reply)
        assert_int_equal(tls_bev_set_plaintext_reply(bev, s->plaintext_reply), 0);
    ep_attach(e, bev);
}

static void server_start(struct server *s, struct world *w, struct tls_ctx *ctx, int port)
{
    memset(s, 0, sizeof *s);
    s->w = w;
    s->ctx = ctx;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lev = evconnlistener_new_bind(w->base, server_accept_cb, s,
                                     LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, -1,
                                     (struct sockaddr *)&sin, sizeof sin);
    assert_non_null(s->lev);
    socklen_t sl = sizeof sin;
    getsockname(evconnlistener_get_fd(s->lev), (struct sockaddr *)&sin, &sl);
    s->port = ntohs(sin.sin_port);
}

static void server_stop(struct server *s)
{
    for (int i = 0; i < s->n; i++)
        ep_close(&s->conns[i]);
    if (s->lev)
        evconnlistener_free(s->lev);
    s->lev = NULL;
}

/* Connects a client endpoint and drives the loop until both sides are done or failed. */
static void client_connect(struct endpoint *c, struct server *s, struct tls_ctx *cctx,
                           const char *host)
{
    memset(c, 0, sizeof *c);
    struct bufferevent *bev = tls_bev_connect(cctx, s->w->base, host, s->port);
    assert_non_null(bev);
    ep_attach(c, bev);
    int before = s->n;
    RUN_UNTIL(s->w, (c->connected || c->error) && s->n > before && ep_done(&s->conns[before]),
              WAIT_MS);
    /* let the losing side hear the alert */
    RUN_UNTIL(s->w, false, 20);
    ep_snapshot(c);
    if (s->n > before)
        ep_snapshot(&s->conns[before]);
}

static struct endpoint *last_conn(struct server *s)
{
    assert_true(s->n > 0);
    return &s->conns[s->n - 1];
}

/* Asserts a good connection: handshake done on both sides, data echoes. */
static void assert_good(struct endpoint *c, struct server *s, const char *server_cn,
                        const char *client_cn)
{
    if (!c->connected)
        print_error("client error: %s\n", c->peer.error);
    assert_true(c->connected);
    assert_false(c->error);
    struct endpoint *sc = last_conn(s);
    assert_true(sc->peer.handshake_done);
    assert_string_equal(c->peer.cn, server_cn);
    assert_string_equal(sc->peer.cn, client_cn);
    assert_string_equal(c->peer.version, "TLSv1.2");
    assert_string_equal(sc->peer.version, "TLSv1.2");
    assert_string_equal(c->peer.error, "");
    bufferevent_write(c->bev, "ping", 4);
    RUN_UNTIL(s->w, c->ngot >= 4, WAIT_MS);
    assert_string_equal(c->got, "ping");
    assert_string_equal(sc->got, "ping");
}

static void assert_refused(struct endpoint *c, struct server *s, const char *client_says,
                           const char *server_says)
{
    assert_false(c->connected);
    assert_true(c->error);
    assert_contains(c->peer.error, client_says);
    assert_false(c->peer.handshake_done);
    if (server_says) {
        struct endpoint *sc = last_conn(s);
        assert_true(sc->error);
        assert_false(sc->peer.handshake_done);
        assert_contains(sc->peer.error, server_says);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                     */

static void test_cn_allowed(void **state)
{
    (void)state;
    char *list[] = {"PD-Server", "TiDB-Server"};
    assert_true(tls_cn_allowed("PD-Server", list, 2));
    assert_true(tls_cn_allowed("TiDB-Server", list, 2));
    assert_false(tls_cn_allowed("pd-server", list, 2));
    assert_false(tls_cn_allowed("PD-Server ", list, 2));
    assert_false(tls_cn_allowed("", list, 2));
    assert_true(tls_cn_allowed("anything", NULL, 0));
}

static void test_suite_openssl_name(void **state)
{
    (void)state;
    assert_string_equal(tls_suite_openssl_name("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"),
                        "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_string_equal(tls_suite_openssl_name("TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256"),
                        "ECDHE-RSA-CHACHA20-POLY1305");
    assert_string_equal(tls_suite_openssl_name("TLS-RSA-WITH-NULL-MD5"), "TLS-RSA-WITH-NULL-MD5");
    assert_null(tls_suite_openssl_name(NULL));
}

static void test_ctx_errors(void **state)
{
    (void)state;
    char err[512];
    char cap[300], cp[300], kp[300], bad[300];
    path_of(cap, sizeof cap, "ca.pem");
    path_of(cp, sizeof cp, "server.pem");
    path_of(kp, sizeof kp, "server-key.pem");
    path_of(bad, sizeof bad, "nope.pem");
    struct tls_opts o = {.role = "t", .ca_path = bad, .cert_path = cp, .key_path = kp};
    assert_null(tls_ctx_new(TLS_SERVER, &o, err, sizeof err));
    assert_contains(err, "cannot read CA");
    assert_contains(err, "nope.pem");
    o.ca_path = cap;
    o.cert_path = bad;
    assert_null(tls_ctx_new(TLS_SERVER, &o, err, sizeof err));
    assert_contains(err, "cert-path");
    char ok2[300];
    path_of(ok2, sizeof ok2, "client-key.pem");
    o.cert_path = cp;
    o.key_path = ok2; /* another cert's key */
    assert_null(tls_ctx_new(TLS_SERVER, &o, err, sizeof err));
    assert_contains(err, "do not belong together");
    /* a directory where a file belongs: named, no allocation of its "size" */
    o.key_path = g_dir;
    assert_null(tls_ctx_new(TLS_SERVER, &o, err, sizeof err));
    assert_contains(err, "key-path ");
    assert_contains(err, "not a regular file (it is a directory)");
    o.key_path = kp;
    o.cert_path = g_dir;
    assert_null(tls_ctx_new(TLS_SERVER, &o, err, sizeof err));
    assert_contains(err, "cert-path ");
    assert_contains(err, "(it is a directory)");
    o.cert_path = cp;
    o.ca_path = g_dir;
    assert_null(tls_ctx_new(TLS_SERVER, &o, err, sizeof err));
    assert_contains(err, "cannot read CA ");
    assert_contains(err, "(it is a directory)");
    o.ca_path = cap;
    struct tls_ctx *ctx = tls_ctx_new(TLS_SERVER, &o, err, sizeof err);
    assert_non_null(ctx);
    tls_ctx_free(ctx);
}

static void test_good_handshake_loopback(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);
    struct endpoint c;
    client_connect(&c, &s, cctx, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    struct endpoint *sc = last_conn(&s);
    assert_true(sc->peer.cn_allowed);
    assert_false(c.peer.resumed);
    assert_contains(sc->peer.addr, "127.0.0.1:");
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", s.port);
    assert_string_equal(c.peer.addr, want);
    assert_contains(c.peer.suite, "TLS-ECDHE-ECDSA-WITH-AES");

    /* a bigger transfer: several records, both directions */
    static char big[3000];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 5; i++)
        bufferevent_write(c.bev, big, sizeof big);
    RUN_UNTIL(&w, c.ngot >= sizeof c.got - 1, WAIT_MS);
    assert_int_equal(c.ngot, sizeof c.got - 1);

    /* closing the client: the server sees EOF (close_notify), not an error */
    ep_close(&c);
    RUN_UNTIL(&w, sc->eof || sc->error, WAIT_MS);
    assert_true(sc->eof);
    assert_false(sc->error);
    server_stop(&s);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

/* Two filters over a bufferevent_pair. */
static void pair_connect(struct world *w, struct tls_ctx *sctx, struct tls_ctx *cctx,
                         const char *host, struct endpoint *c, struct endpoint *sv)
{
    struct bufferevent *pair[2];
    assert_int_equal(bufferevent_pair_new(w->base, BEV_OPT_CLOSE_ON_FREE |
                                                       BEV_OPT_DEFER_CALLBACKS,
                                          pair),
                     0);
    memset(c, 0, sizeof *c);
    memset(sv, 0, sizeof *sv);
    sv->echo = true;
    struct bufferevent *sb = tls_bev_starttls(sctx, w->base, pair[0], NULL);
    struct bufferevent *cb = tls_bev_starttls(cctx, w->base, pair[1], host);
    assert_non_null(sb);
    assert_non_null(cb);
    ep_attach(sv, sb);
    ep_attach(c, cb);
    RUN_UNTIL(w, (c->connected || c->error) && ep_done(sv), WAIT_MS);
    RUN_UNTIL(w, false, 10);
    ep_snapshot(c);
    ep_snapshot(sv);
}

static void test_good_handshake_pair_and_garbage(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct endpoint c, sv;
    pair_connect(&w, sctx, cctx, "127.0.0.1", &c, &sv);
    assert_true(c.connected);
    assert_true(sv.peer.handshake_done);
    assert_string_equal(c.peer.cn, "PD-Server");
    assert_string_equal(sv.peer.cn, "TiDB-Server");
    assert_string_equal(c.peer.version, "TLSv1.2");
    bufferevent_write(c.bev, "hello", 5);
    RUN_UNTIL(&w, c.ngot >= 5, WAIT_MS);
    assert_string_equal(c.got, "hello");

    /* garbage records on an established connection: the server fails cleanly */
    struct bufferevent *raw = bufferevent_get_underlying(c.bev);
    static const unsigned char junk[] = {0x17, 0x03, 0x03, 0x00, 0x20, 1, 2, 3, 4, 5, 6, 7, 8,
                                         9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                         23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    bufferevent_write(raw, junk, sizeof junk);
    RUN_UNTIL(&w, sv.error, WAIT_MS);
    assert_true(sv.error);
    assert_contains(sv.peer.error, "TLS record error");
    ep_close(&c);
    ep_close(&sv);

    /* the same setup still works for a new connection */
    pair_connect(&w, sctx, cctx, "127.0.0.1", &c, &sv);
    assert_true(c.connected);
    ep_close(&c);
    ep_close(&sv);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

static void test_client_trusts_other_ca(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *bad = mkctx(TLS_CLIENT, "ca2.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *good = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);
    struct endpoint c;
    client_connect(&c, &s, bad, "127.0.0.1");
    assert_refused(&c, &s, "the server's certificate is not trusted: it is not signed by the CA "
                           "in ", "client");
    assert_contains(c.peer.error, "ca2.pem");
    assert_string_equal(c.peer.cn, "PD-Server"); /* the CN we saw, for the log */
    ep_close(&c);
    client_connect(&c, &s, good, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    ep_close(&c);
    server_stop(&s);
    tls_ctx_free(good);
    tls_ctx_free(bad);
    tls_ctx_free(sctx);
    world_free(&w);
}

static void test_client_cert_other_ca(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *bad = mkctx(TLS_CLIENT, "ca.pem", "client-ca2", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *good = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);
    struct endpoint c;
    client_connect(&c, &s, bad, "127.0.0.1");
    assert_refused(&c, &s, "unknown_ca", "not signed by the trusted CA");
    assert_contains(c.peer.error, "does not trust the CA that signed our certificate");
    ep_close(&c);
    client_connect(&c, &s, good, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    ep_close(&c);
    server_stop(&s);
    tls_ctx_free(good);
    tls_ctx_free(bad);
    tls_ctx_free(sctx);
    world_free(&w);
}

static void test_cn_not_in_allow_list(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    char *allowed[] = {"TiDB-Server", "Control-Client"};
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", allowed, 2, TLS_CN_HANDSHAKE);
    struct tls_ctx *evil = mkctx(TLS_CLIENT, "ca.pem", "evil", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *good = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);
    struct endpoint c;
    client_connect(&c, &s, evil, "127.0.0.1");
    assert_refused(&c, &s, "access_denied", "not in the allow-list");
    assert_contains(c.peer.error, "Common Name is not in the server's allow-list");
    assert_contains(last_conn(&s)->peer.error, "\"Evil-Client\"");
    assert_string_equal(last_conn(&s)->peer.cn, "Evil-Client");
    ep_close(&c);
    /* a CN outside the list on a certificate of another CA: the CA is what is wrong */
    struct tls_ctx *foreign = mkctx(TLS_CLIENT, "ca.pem", "client-ca2", NULL, 0, TLS_CN_HANDSHAKE);
    char *only[] = {"Control-Client"};
    struct tls_ctx *strict = mkctx(TLS_SERVER, "ca.pem", "server", only, 1, TLS_CN_HANDSHAKE);
    struct server s2;
    server_start(&s2, &w, strict, 0);
    client_connect(&c, &s2, foreign, "127.0.0.1");
    assert_refused(&c, &s2, "unknown_ca", "not signed by the trusted CA");
    ep_close(&c);
    server_stop(&s2);
    tls_ctx_free(strict);
    tls_ctx_free(foreign);
    client_connect(&c, &s, good, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    assert_true(last_conn(&s)->peer.cn_allowed);
    ep_close(&c);
    server_stop(&s);
    tls_ctx_free(good);
    tls_ctx_free(evil);
    tls_ctx_free(sctx);
    world_free(&w);
}

static void test_cn_service_mode(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    char *allowed[] = {"TiDB-Server"};
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", allowed, 1, TLS_CN_SERVICE);
    struct tls_ctx *evil = mkctx(TLS_CLIENT, "ca.pem", "evil", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *good = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);
    struct endpoint c;
    client_connect(&c, &s, evil, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "Evil-Client");
    assert_false(last_conn(&s)->peer.cn_allowed);
    ep_close(&c);
    client_connect(&c, &s, good, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    assert_true(last_conn(&s)->peer.cn_allowed);
    ep_close(&c);
    server_stop(&s);
    tls_ctx_free(good);
    tls_ctx_free(evil);
    tls_ctx_free(sctx);
    world_free(&w);
}

static void test_no_client_cert(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *anon = mkctx(TLS_CLIENT, "ca.pem", NULL, NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *good = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);
    struct endpoint c;
    client_connect(&c, &s, anon, "127.0.0.1");
    assert_refused(&c, &s, "requires a client certificate", "no certificate");
    ep_close(&c);
    client_connect(&c, &s, good, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    ep_close(&c);
    server_stop(&s);
    tls_ctx_free(good);
    tls_ctx_free(anon);
    tls_ctx_free(sctx);
    world_free(&w);
}

/* A server ctx with the given client_auth (TiDB's MySQL port: one-way, or verify when
 * presented); ca NULL = no CA file. */
static struct tls_ctx *mkctx_auth(const char *ca, enum tls_client_auth auth)
{
    char cap[300], cp[300], kp[300], err[512];
    path_of(cap, sizeof cap, ca ? ca : "");
    path_of(cp, sizeof cp, "server.pem");
    path_of(kp, sizeof kp, "server-key.pem");
    struct tls_opts o = {.role = "test-server", .ca_path = ca ? cap : NULL, .cert_path = cp,
                         .key_path = kp, .client_auth = auth};
    struct tls_ctx *ctx = tls_ctx_new(TLS_SERVER, &o, err, sizeof err);
    if (!ctx)
        print_error("tls_ctx_new: %s\n", err);
    assert_non_null(ctx);
    return ctx;
}

/* OPTIONAL: no certificate is fine (cert_verified false); a good one is verified and its
 * subject and issuer known; one from another CA fails the handshake. NONE: nothing asked for,
 * even a client holding a certificate sends none, and the server needs no CA. A REQUIRED
 * server refuses the anonymous client in the same setup (test_no_client_cert). */
static void test_client_auth_optional_and_none(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *opt = mkctx_auth("ca.pem", TLS_AUTH_OPTIONAL);
    struct tls_ctx *none = mkctx_auth(NULL, TLS_AUTH_NONE);
    struct tls_ctx *anon = mkctx(TLS_CLIENT, "ca.pem", NULL, NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *good = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *other = mkctx(TLS_CLIENT, "ca.pem", "client-ca2", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, opt, 0);
    struct endpoint c;
    client_connect(&c, &s, anon, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "");
    assert_false(last_conn(&s)->peer.cert_verified);
    assert_string_equal(last_conn(&s)->peer.subject, "");
    ep_close(&c);
    client_connect(&c, &s, good, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    assert_true(last_conn(&s)->peer.cert_verified);
    assert_string_equal(last_conn(&s)->peer.subject, "/CN=TiDB-Server");
    assert_string_equal(last_conn(&s)->peer.issuer, "/CN=tisim test CA");
    assert_false(last_conn(&s)->peer.resumed);
    ep_close(&c);
    client_connect(&c, &s, good, "127.0.0.1"); /* resumed: still verified, names kept */
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    assert_true(last_conn(&s)->peer.resumed);
    assert_true(last_conn(&s)->peer.cert_verified);
    assert_string_equal(last_conn(&s)->peer.subject, "/CN=TiDB-Server");
    ep_close(&c);
    /* without a certificate: its own session resumes; a fresh client's full handshake does not
     * count as resumed (no verify callback ran in either) */
    client_connect(&c, &s, anon, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "");
    assert_true(last_conn(&s)->peer.resumed);
    ep_close(&c);
    struct tls_ctx *anon2 = mkctx(TLS_CLIENT, "ca.pem", NULL, NULL, 0, TLS_CN_HANDSHAKE);
    client_connect(&c, &s, anon2, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "");
    assert_false(last_conn(&s)->peer.resumed);
    ep_close(&c);
    tls_ctx_free(anon2);
    client_connect(&c, &s, other, "127.0.0.1");
    assert_refused(&c, &s, "unknown_ca", "client certificate rejected: ");
    ep_close(&c);
    server_stop(&s);

    struct server s2;
    server_start(&s2, &w, none, 0);
    client_connect(&c, &s2, good, "127.0.0.1");
    assert_good(&c, &s2, "PD-Server", "");
    assert_false(last_conn(&s2)->peer.cert_verified);
    ep_close(&c);
    server_stop(&s2);
    tls_ctx_free(other);
    tls_ctx_free(good);
    tls_ctx_free(anon);
    tls_ctx_free(none);
    tls_ctx_free(opt);
    world_free(&w);
}

static void test_expired_certs(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sgood = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *sold =
        mkctx(TLS_SERVER, "ca.pem", "server-expired", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cold =
        mkctx(TLS_CLIENT, "ca.pem", "client-expired", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cgood = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s1, s2;
    server_start(&s1, &w, sold, 0);
    server_start(&s2, &w, sgood, 0);
    struct endpoint c;

    /* expired server cert: the client refuses */
    client_connect(&c, &s1, cgood, "127.0.0.1");
    assert_refused(&c, &s1, "expired", NULL);
    assert_contains(c.peer.error, "the server's certificate is not trusted: certificate has "
                                  "expired");
    ep_close(&c);
    /* expired client cert: the server refuses, the client hears why */
    client_connect(&c, &s2, cold, "127.0.0.1");
    assert_refused(&c, &s2, "expired", "client certificate rejected: certificate has expired");
    assert_contains(c.peer.error, "certificate_expired");
    ep_close(&c);
    /* same setup, good certs */
    client_connect(&c, &s2, cgood, "127.0.0.1");
    assert_good(&c, &s2, "PD-Server", "TiDB-Server");
    ep_close(&c);
    server_stop(&s1);
    server_stop(&s2);
    tls_ctx_free(cgood);
    tls_ctx_free(cold);
    tls_ctx_free(sold);
    tls_ctx_free(sgood);
    world_free(&w);
}

static void test_san_mismatch(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server-noip", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);
    struct endpoint c;
    client_connect(&c, &s, cctx, "127.0.0.1");
    assert_refused(&c, &s, "does not match", NULL);
    assert_contains(c.peer.error, "127.0.0.1");
    ep_close(&c);

    /* same server, dialed by the name in its SAN (socket to 127.0.0.1, host "example.com") */
    memset(&c, 0, sizeof c);
    struct bufferevent *u = bufferevent_socket_new(w.base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bufferevent_socket_connect(u, (struct sockaddr *)&sin, sizeof sin), 0);
    struct bufferevent *bev = tls_bev_starttls(cctx, w.base, u, "example.com");
    assert_non_null(bev);
    ep_attach(&c, bev);
    RUN_UNTIL(&w, c.connected || c.error, WAIT_MS);
    RUN_UNTIL(&w, false, 10);
    ep_snapshot(last_conn(&s));
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    ep_close(&c);
    server_stop(&s);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

static void test_plaintext_on_tls_port(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);
    int fd = raw_connect(s.port);
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
    RUN_UNTIL(&w, s.n == 1 && s.conns[0].error, WAIT_MS);
    assert_true(s.conns[0].error);
    /* the log names plaintext and shows the first bytes, escaped; no HTTP talk here */
    assert_contains(s.conns[0].peer.error, "client sent plaintext instead of TLS (first bytes "
                                           "\"GET / HTTP/1.1\\x0d\\x0a\")");
    assert_null(strstr(s.conns[0].peer.error, "https"));
    /* a raw TLS port answers a plaintext peer with nothing but a closed connection */
    ep_close(&s.conns[0]);
    RUN_UNTIL(&w, false, 20);
    char buf[512] = "";
    assert_int_equal(recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT), 0);
    close(fd);

    /* a service may choose an answer in its protocol (the HTTPS server does) */
    fd = raw_connect(s.port);
    s.plaintext_reply = "HTTP/1.0 400 Bad Request\r\n\r\nHTTP request to an HTTPS server\n";
    assert_int_equal(send(fd, req, sizeof req - 1, 0), (ssize_t)(sizeof req - 1));
    RUN_UNTIL(&w, s.n == 2 && s.conns[1].error, WAIT_MS);
    assert_contains(s.conns[1].peer.error, "; use https://");
    ep_close(&s.conns[1]);
    RUN_UNTIL(&w, false, 20);
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, s.plaintext_reply);
    close(fd);
    s.plaintext_reply = NULL;

    /* garbage that is neither: binary junk */
    fd = raw_connect(s.port);
    static const unsigned char junk[] = {0x16, 0x03, 0x01, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff,
                                         0xff};
    assert_int_equal(send(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
    RUN_UNTIL(&w, s.n == 3 && s.conns[2].error, WAIT_MS);
    assert_true(s.conns[2].error);
    assert_contains(s.conns[2].peer.error, "TLS handshake failed");
    close(fd);

    /* the next good client is still served */
    struct endpoint c;
    client_connect(&c, &s, cctx, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    ep_close(&c);
    server_stop(&s);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

static void close_on_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                               int sl, void *arg)
{
    (void)l;
    (void)sa;
    (void)sl;
    (void)arg;
    evutil_closesocket(fd);
}

static void test_peer_closes_mid_handshake(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);

    /* client side of the server: half a ClientHello, then close */
    int fd = raw_connect(s.port);
    static const unsigned char part[] = {0x16, 0x03, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7c,
                                         0x03, 0x03};
    assert_int_equal(send(fd, part, sizeof part, 0), (ssize_t)sizeof part);
    RUN_UNTIL(&w, s.n == 1, WAIT_MS);
    close(fd);
    RUN_UNTIL(&w, s.conns[0].error, WAIT_MS);
    assert_true(s.conns[0].error);
    assert_contains(s.conns[0].peer.error, "closed the connection during the TLS handshake");

    /* server side: a listener that closes every connection at once */
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *closer =
        evconnlistener_new_bind(w.base, close_on_accept_cb, NULL,
                                LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, -1,
                                (struct sockaddr *)&sin, sizeof sin);
    socklen_t sl = sizeof sin;
    getsockname(evconnlistener_get_fd(closer), (struct sockaddr *)&sin, &sl);
    struct endpoint c;
    memset(&c, 0, sizeof c);
    ep_attach(&c, tls_bev_connect(cctx, w.base, "127.0.0.1", ntohs(sin.sin_port)));
    RUN_UNTIL(&w, c.error || c.connected, WAIT_MS);
    assert_true(c.error);
    assert_false(c.connected);
    assert_contains(c.peer.error, "during the TLS handshake");
    ep_close(&c);
    evconnlistener_free(closer);

    /* nobody listening: a clean connect error */
    memset(&c, 0, sizeof c);
    ep_attach(&c, tls_bev_connect(cctx, w.base, "127.0.0.1", ntohs(sin.sin_port)));
    RUN_UNTIL(&w, c.error || c.connected, WAIT_MS);
    assert_true(c.error);
    assert_contains(c.peer.error, "cannot connect to 127.0.0.1:");
    ep_close(&c);

    /* the server still serves */
    client_connect(&c, &s, cctx, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    ep_close(&c);
    server_stop(&s);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    tls_ctx_set_handshake_timeout(sctx, 200);
    struct server s;
    server_start(&s, &w, sctx, 0);
    int fd = raw_connect(s.port); /* connects, says nothing */
    double t0 = now_ms();
    RUN_UNTIL(&w, s.n == 1 && s.conns[0].error, WAIT_MS);
    double took = now_ms() - t0;
    assert_true(s.conns[0].error);
    assert_contains(s.conns[0].peer.error, "did not complete within 200 ms");
    assert_true(took >= 150 && took < 2000);
    close(fd);
    /* generous again for the good client (valgrind makes a handshake slow) */
    tls_ctx_set_handshake_timeout(sctx, 10000);
    struct endpoint c;
    client_connect(&c, &s, cctx, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    ep_close(&c);
    server_stop(&s);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

static void test_cert_rotation(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    make_cert("rot", "PD-Server", SERVER_SANS, 3, g_ca, 0, 0);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "rot", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *c1ctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *c2ctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);
    struct endpoint c1, c2;
    client_connect(&c1, &s, c1ctx, "127.0.0.1");
    assert_good(&c1, &s, "PD-Server", "TiDB-Server");

    /* rotate on disk: new key, new CN, same paths; the ctx is not recreated */
    make_cert("rot", "PD-Server-Rotated", SERVER_SANS, 3, g_ca, 0, 0);
    client_connect(&c2, &s, c2ctx, "127.0.0.1");
    assert_true(c2.connected);
    assert_string_equal(c2.peer.cn, "PD-Server-Rotated");

    /* the connection made before the rotation still works (its cert generation lives on) */
    c1.ngot = 0;
    bufferevent_write(c1.bev, "old", 3);
    RUN_UNTIL(&w, c1.ngot >= 3, WAIT_MS);
    assert_string_equal(c1.got, "old");

    /* a cert+key pair that does not match fails only the new connection */
    char cp[300], kp[300], other[300];
    path_of(cp, sizeof cp, "rot.pem");
    path_of(kp, sizeof kp, "rot-key.pem");
    path_of(other, sizeof other, "client-key.pem");
    FILE *in = fopen(other, "rb"), *out = fopen(kp, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    struct endpoint c3;
    tls_ctx_free(c2ctx);
    c2ctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    client_connect(&c3, &s, c2ctx, "127.0.0.1");
    assert_false(c3.connected);
    assert_true(last_conn(&s)->error);
    assert_contains(last_conn(&s)->peer.error, "do not belong together");
    ep_close(&c3);
    make_cert("rot", "PD-Server-Third", SERVER_SANS, 3, g_ca, 0, 0);
    client_connect(&c3, &s, c2ctx, "127.0.0.1");
    assert_true(c3.connected);
    assert_string_equal(c3.peer.cn, "PD-Server-Third");
    ep_close(&c3);
    ep_close(&c2);
    ep_close(&c1);
    server_stop(&s);
    tls_ctx_free(c2ctx);
    tls_ctx_free(c1ctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

static void test_session_resumption(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    char *allowed[] = {"Someone-Else"};
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *svc = mkctx(TLS_SERVER, "ca.pem", "server", allowed, 1, TLS_CN_SERVICE);
    struct tls_ctx *strict = mkctx(TLS_SERVER, "ca.pem", "server", allowed, 1, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);
    struct endpoint c;
    client_connect(&c, &s, cctx, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    assert_false(c.peer.resumed);
    assert_false(last_conn(&s)->peer.resumed);
    ep_close(&c);
    client_connect(&c, &s, cctx, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server"); /* CNs are known on a resumed session */
    assert_true(c.peer.resumed);
    assert_true(last_conn(&s)->peer.resumed);
    ep_close(&c);
    /* the counters /metrics shows: one full and one resumed handshake on each side */
    struct tls_stats st;
    tls_ctx_stats(sctx, &st);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.resumed, 1);
    assert_int_equal(st.failed, 0);
    tls_ctx_stats(cctx, &st);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.resumed, 1);

    /* resumed sessions go through the CN check: a service-mode server judges the CN of a
     * resumed session (the ticket comes from this server, so it resumes) */
    struct server s2;
    server_start(&s2, &w, svc, 0);
    client_connect(&c, &s2, cctx, "127.0.0.1");
    assert_good(&c, &s2, "PD-Server", "TiDB-Server");
    assert_false(last_conn(&s2)->peer.cn_allowed);
    ep_close(&c);
    client_connect(&c, &s2, cctx, "127.0.0.1");
    assert_good(&c, &s2, "PD-Server", "TiDB-Server");
    assert_true(last_conn(&s2)->peer.resumed);
    assert_false(last_conn(&s2)->peer.cn_allowed);
    ep_close(&c);

    /* a different server ctx on the same address cannot use the old ticket: full handshake,
     * and its allow-list refuses us */
    int port = s.port;
    server_stop(&s);
    server_start(&s, &w, strict, port);
    client_connect(&c, &s, cctx, "127.0.0.1");
    assert_refused(&c, &s, "access_denied", "not in the allow-list");
    assert_false(last_conn(&s)->peer.resumed);
    ep_close(&c);

    server_stop(&s);
    server_stop(&s2);
    tls_ctx_free(cctx);
    tls_ctx_free(strict);
    tls_ctx_free(svc);
    tls_ctx_free(sctx);
    world_free(&w);
}

/* ---- evhttp ---- */

struct http_result {
    bool done;
    int code;
    char body[512];
    size_t body_len;
    unsigned long body_sum;
    char error[TLS_REASON_LEN];
    bool resumed;
    char server_cn[256];
};

struct evhttp_client {
    struct evhttp_connection *evcon;
    struct http_result *res;
};

/* evhttp over the transport, as http.c glues them. */
static struct bufferevent *serve_tls(struct event_base *base, void *arg)
{
    return conn_server_bufferevent(base, arg, NULL);
}

static struct evhttp_connection *evhttp_tls_connection(struct tls_ctx *ctx,
                                                       struct event_base *base, const char *host,
                                                       int port)
{
    struct bufferevent *bev = tls_bev_client_new(ctx, base, host, port);
    assert_non_null(bev);
    struct evhttp_connection *evcon =
        evhttp_connection_base_bufferevent_new(base, NULL, bev, host, (unsigned short)port);
    assert_non_null(evcon);
    return evcon;
}

static void echo_handler(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const struct tls_peer *p = http_peer(req);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "hello %s", p ? p->cn : "(no TLS peer)");
    if (strcmp(evhttp_request_get_uri(req), "/close") == 0)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    if (strcmp(evhttp_request_get_uri(req), "/big") == 0) {
        /* 4 MB: more than the socket buffers hold, so the output waits for the kernel */
        evbuffer_drain(b, evbuffer_get_length(b));
        static char chunk[65536];
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = (char)('a' + i % 26);
        for (int i = 0; i < 64; i++)
            evbuffer_add(b, chunk, sizeof chunk);
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        /* answers with the size and a checksum of what it got */
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        unsigned long sum = 0;
        unsigned char *data = evbuffer_pullup(in, -1);
        for (size_t i = 0; i < n; i++)
            sum = sum * 31 + data[i];
        evbuffer_drain(b, evbuffer_get_length(b));
        evbuffer_add_printf(b, "got %zu sum %lu", n, sum);
    }
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void http_done(struct evhttp_request *req, void *arg)
{
    struct evhttp_client *hc = arg;
    struct http_result *r = hc->res;
    r->done = true;
    r->code = req ? evhttp_request_get_response_code(req) : 0;
    if (r->code > 0) {
        struct evbuffer *b = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(b);
        r->body_len = n;
        unsigned char *all = evbuffer_pullup(b, -1);
        for (size_t i = 0; i < n; i++)
            r->body_sum = r->body_sum * 31 + all[i];
        if (n >= sizeof r->body)
            n = sizeof r->body - 1;
        evbuffer_remove(b, r->body, n);
        r->body[n] = '\0';
        /* client side: evhttp detaches req from the connection before this callback */
        assert_null(http_peer(req));
        const struct tls_peer *p = http_connection_peer(hc->evcon);
        if (p) {
            r->resumed = p->resumed;
            snprintf(r->server_cn, sizeof r->server_cn, "%s", p->cn);
        }
    } else {
        const struct tls_peer *p = http_connection_peer(hc->evcon);
        snprintf(r->error, sizeof r->error, "%s", p ? p->error : "(no TLS peer)");
    }
}

static void http_do(struct world *w, struct evhttp_client *hc, enum evhttp_cmd_type cmd,
                    const char *uri, const void *body, size_t len, struct http_result *r)
{
    memset(r, 0, sizeof *r);
    hc->res = r;
    struct evhttp_request *req = evhttp_request_new(http_done, hc);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
    if (body)
        evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    assert_int_equal(evhttp_make_request(hc->evcon, req, cmd, uri), 0);
    RUN_UNTIL(w, r->done, WAIT_MS);
    if (!r->done)
        print_error("%s: no answer\n", uri);
    assert_true(r->done);
}

static void http_get(struct world *w, struct evhttp_client *hc, const char *uri,
                     struct http_result *r)
{
    http_do(w, hc, EVHTTP_REQ_GET, uri, NULL, 0, r);
}

static void test_evhttp_roundtrip(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    char *allowed[] = {"TiDB-Server"};
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", allowed, 1, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *evil = mkctx(TLS_CLIENT, "ca.pem", "evil", NULL, 0, TLS_CN_HANDSHAKE);
    struct evhttp *http = evhttp_new(w.base);
    evhttp_set_gencb(http, echo_handler, NULL);
    evhttp_set_bevcb(http, serve_tls, sctx);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    assert_non_null(bs);
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
    int port = ntohs(sin.sin_port);

    struct evhttp_client hc = {.evcon = evhttp_tls_connection(cctx, w.base, "127.0.0.1", port)};
    assert_non_null(hc.evcon);
    struct http_result r;
    http_get(&w, &hc, "/hello", &r);
    if (r.code != 200)
        print_error("error: %s\n", r.error);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "hello TiDB-Server");
    assert_string_equal(r.server_cn, "PD-Server");
    assert_false(r.resumed);
    /* keep-alive: the same TLS connection serves the next request */
    http_get(&w, &hc, "/again", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "hello TiDB-Server");
    assert_false(r.resumed);
    /* big transfers both ways on the same connection */
    http_get(&w, &hc, "/big", &r);
    assert_int_equal(r.code, 200);
    assert_int_equal(r.body_len, 64 * 65536);
    static unsigned char up[3 * 1024 * 1024 + 7];
    unsigned long sum = 0;
    for (size_t i = 0; i < sizeof up; i++) {
        up[i] = (unsigned char)(i * 7 + (i >> 12));
        sum = sum * 31 + up[i];
    }
    http_do(&w, &hc, EVHTTP_REQ_POST, "/upload", up, sizeof up, &r);
    assert_int_equal(r.code, 200);
    char want[128];
    snprintf(want, sizeof want, "got %zu sum %lu", sizeof up, sum);
    assert_string_equal(r.body, want);
    /* the server closes after this one; the next request reconnects and resumes */
    http_get(&w, &hc, "/close", &r);
    assert_int_equal(r.code, 200);
    http_get(&w, &hc, "/after-close", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "hello TiDB-Server");
    assert_true(r.resumed);

    /* a refused client: the request fails and the connection says why */
    struct evhttp_client bad = {.evcon = evhttp_tls_connection(evil, w.base, "127.0.0.1", port)};
    http_get(&w, &bad, "/hello", &r);
    assert_int_equal(r.code, 0);
    assert_contains(r.error, "access_denied");
    evhttp_connection_free(bad.evcon);

    /* plaintext HTTP on the TLS port: refused, no crash, nothing served */
    struct evhttp_connection *plain = evhttp_connection_base_new(w.base, NULL, "127.0.0.1",
                                                                 (unsigned short)port);
    struct evhttp_client ph = {.evcon = plain};
    http_get(&w, &ph, "/hello", &r);
    assert_true(r.code == 0 || r.code == 400);
    assert_true(strstr(r.body, "hello") == NULL);
    evhttp_connection_free(plain);

    /* still serving the good client */
    http_get(&w, &hc, "/last", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "hello TiDB-Server");

    evhttp_connection_free(hc.evcon);
    evhttp_free(http);
    tls_ctx_free(evil);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

/* The server drops an idle keep-alive connection; the client notices and the next request
 * reconnects (resuming the session) on the same evhttp_connection. */
static void test_evhttp_idle_close(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct evhttp *http = evhttp_new(w.base);
    evhttp_set_gencb(http, echo_handler, NULL);
    evhttp_set_timeout(http, 1);
    evhttp_set_bevcb(http, serve_tls, sctx);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    assert_non_null(bs);
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
    struct evhttp_client hc = {
        .evcon = evhttp_tls_connection(cctx, w.base, "127.0.0.1", ntohs(sin.sin_port))};
    struct http_result r;
    http_get(&w, &hc, "/one", &r);
    assert_int_equal(r.code, 200);
    assert_false(r.resumed);
    RUN_UNTIL(&w, false, 1600); /* the server's 1 s idle timeout closes it */
    http_get(&w, &hc, "/two", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "hello TiDB-Server");
    assert_true(r.resumed);
    evhttp_connection_free(hc.evcon);

    /* a server that is not up yet: the request fails with a clear reason, and the same
     * evhttp_connection works once the server listens */
    int port = ntohs(sin.sin_port);
    evhttp_free(http);
    hc.evcon = evhttp_tls_connection(cctx, w.base, "127.0.0.1", port);
    http_get(&w, &hc, "/early", &r);
    assert_int_equal(r.code, 0);
    assert_contains(r.error, "cannot connect to 127.0.0.1:");
    assert_contains(r.error, "refused");
    http = evhttp_new(w.base);
    evhttp_set_gencb(http, echo_handler, NULL);
    evhttp_set_bevcb(http, serve_tls, sctx);
    assert_int_equal(evhttp_bind_socket(http, "127.0.0.1", (unsigned short)port), 0);
    http_get(&w, &hc, "/later", &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "hello TiDB-Server");
    assert_true(r.resumed); /* same server ctx (ticket key): the refused attempt kept it */
    evhttp_connection_free(hc.evcon);
    evhttp_free(http);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}


/* ---------------------------------------------------------------------------------------- */
/* STARTTLS: a plaintext exchange, then TLS on the same connection                           */

struct st_side {
    struct world *w;
    struct tls_ctx *ctx;
    struct bufferevent *bev; /* plaintext first, then the TLS one */
    bool server;
    bool answer_first;       /* server: "+OK\n" in plaintext, then upgrade at once */
    bool upgraded, connected, error;
    size_t left_at_upgrade;  /* server: bytes behind the request line when upgrading */
    char got[256];
    size_t ngot;
    char error_text[TLS_REASON_LEN];
};

static void st_tls_read(struct bufferevent *bev, void *arg)
{
    struct st_side *x = arg;
    size_t n = bufferevent_read(bev, x->got + x->ngot, sizeof x->got - 1 - x->ngot);
    x->ngot += n;
    x->got[x->ngot] = '\0';
    if (x->server && strchr(x->got, '\n'))
        bufferevent_write(bev, "pong\n", 5);
}

static void st_tls_event(struct bufferevent *bev, short what, void *arg)
{
    struct st_side *x = arg;
    if (what & BEV_EVENT_CONNECTED) {
        x->connected = true;
        if (!x->server)
            bufferevent_write(bev, "ping\n", 5);
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
        const struct tls_peer *p = tls_bev_peer(bev);
        x->error = true;
        snprintf(x->error_text, sizeof x->error_text, "%s", p ? p->error : "");
    }
}

static void st_upgrade(struct st_side *x)
{
    if (x->server)
        x->left_at_upgrade = evbuffer_get_length(bufferevent_get_input(x->bev));
    struct bufferevent *t = tls_bev_starttls(x->ctx, x->w->base, x->bev,
                                             x->server ? NULL : "127.0.0.1");
    assert_non_null(t);
    x->bev = t;
    x->upgraded = true;
    bufferevent_setcb(t, st_tls_read, NULL, st_tls_event, x);
    bufferevent_enable(t, EV_READ | EV_WRITE);
}

/* The plaintext part: the server waits for "STARTTLS\n" (and answers "+OK\n" if asked to);
 * the client of an answer_first server waits for that answer. */
static void st_plain_read(struct bufferevent *bev, void *arg)
{
    struct st_side *x = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = 0;
    char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
    if (!line)
        return;
    if (x->server && strcmp(line, "STARTTLS") == 0) {
        if (x->answer_first)
            bufferevent_write(bev, "+OK\n", 4); /* queued: must go out before TLS */
        st_upgrade(x);
    } else if (!x->server && strcmp(line, "+OK") == 0) {
        st_upgrade(x);
    }
    free(line);
}

static void st_enable_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct st_side *x = arg;
    bufferevent_enable(x->bev, EV_READ);
}

/* A socketpair with a plaintext bufferevent at each end. */
static void st_pair(struct world *w, struct st_side *srv, struct st_side *cli)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    evutil_make_socket_nonblocking(sv[0]);
    evutil_make_socket_nonblocking(sv[1]);
    srv->w = cli->w = w;
    srv->server = true;
    srv->bev = bufferevent_socket_new(w->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    cli->bev = bufferevent_socket_new(w->base, sv[1], BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(srv->bev, st_plain_read, NULL, NULL, srv);
    bufferevent_setcb(cli->bev, st_plain_read, NULL, NULL, cli);
    bufferevent_enable(cli->bev, EV_READ | EV_WRITE);
}

static void st_free(struct st_side *x)
{
    if (x->bev)
        bufferevent_free(x->bev);
    x->bev = NULL;
}

/* MySQL's order: the client sends its request and its ClientHello without waiting. The server
 * reads late, so both arrive in ONE read: the hello behind the request must not be lost. The
 * client upgrades while its request is still queued: it must go out first. */
static void test_starttls_client_first_same_read(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct st_side srv = {.ctx = sctx}, cli = {.ctx = cctx};
    st_pair(&w, &srv, &cli);
    bufferevent_write(cli.bev, "STARTTLS\n", 9);
    assert_int_equal(evbuffer_get_length(bufferevent_get_output(cli.bev)), 9);
    st_upgrade(&cli); /* the request is still queued */
    struct timeval later = {0, 100 * 1000};
    event_base_once(w.base, -1, EV_TIMEOUT, st_enable_read, &srv, &later);
    RUN_UNTIL(&w, (cli.connected && strcmp(cli.got, "pong\n") == 0) || cli.error || srv.error,
              WAIT_MS);
    if (cli.error || srv.error)
        print_error("client: %s / server: %s\n", cli.error_text, srv.error_text);
    assert_true(srv.upgraded);
    assert_true(srv.left_at_upgrade > 0); /* the ClientHello came in the same read */
    assert_true(srv.connected);
    assert_true(cli.connected);
    assert_string_equal(srv.got, "ping\n");
    assert_string_equal(cli.got, "pong\n");
    const struct tls_peer *p = tls_bev_peer(srv.bev);
    assert_non_null(p);
    assert_string_equal(p->cn, "TiDB-Server");
    assert_string_equal(tls_bev_peer(cli.bev)->cn, "PD-Server");
    st_free(&cli);
    st_free(&srv);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

/* SMTP's order: the server answers in plaintext and upgrades at once, its answer still
 * queued; the client upgrades when it has read the answer. */
static void test_starttls_server_answers_first(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct st_side srv = {.ctx = sctx, .answer_first = true}, cli = {.ctx = cctx};
    st_pair(&w, &srv, &cli);
    bufferevent_enable(srv.bev, EV_READ | EV_WRITE);
    bufferevent_write(cli.bev, "STARTTLS\n", 9);
    RUN_UNTIL(&w, (cli.connected && strcmp(cli.got, "pong\n") == 0) || cli.error || srv.error,
              WAIT_MS);
    if (cli.error || srv.error)
        print_error("client: %s / server: %s\n", cli.error_text, srv.error_text);
    assert_true(cli.upgraded); /* it read "+OK" in plaintext */
    assert_true(cli.connected);
    assert_true(srv.connected);
    assert_string_equal(srv.got, "ping\n");
    assert_string_equal(cli.got, "pong\n");
    st_free(&cli);
    st_free(&srv);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

/* A peer that asks for TLS and then sends garbage: the upgraded side fails with a reason,
 * and a good upgrade on the same server ctx still works afterwards. */
static void test_starttls_garbage_after_upgrade(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    struct st_side srv = {.ctx = sctx}, cli = {.ctx = cctx};
    st_pair(&w, &srv, &cli);
    bufferevent_enable(srv.bev, EV_READ | EV_WRITE);
    bufferevent_write(cli.bev, "STARTTLS\nthis is not TLS at all\n", 32);
    RUN_UNTIL(&w, srv.error, WAIT_MS);
    assert_true(srv.upgraded);
    assert_true(srv.error);
    assert_false(srv.connected);
    assert_contains(srv.error_text, "client sent plaintext instead of TLS (first bytes \"this is "
                                    "not TLS ");
    st_free(&cli);
    st_free(&srv);

    struct st_side srv2 = {.ctx = sctx}, cli2 = {.ctx = cctx};
    st_pair(&w, &srv2, &cli2);
    bufferevent_enable(srv2.bev, EV_READ | EV_WRITE);
    bufferevent_write(cli2.bev, "STARTTLS\n", 9);
    st_upgrade(&cli2);
    RUN_UNTIL(&w, strcmp(cli2.got, "pong\n") == 0 || cli2.error || srv2.error, WAIT_MS);
    assert_string_equal(cli2.got, "pong\n");
    st_free(&cli2);
    st_free(&srv2);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

/* A session ticket issued while the client cert was valid must not let it in once the cert
 * has expired (mbedTLS skips certificate checks on resumption). */
static void test_resumed_session_after_expiry(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    time_t now = time(NULL);
    make_cert("short", "TiDB-Server", NULL, 0, g_ca, now - 60, now + 2);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", "short", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);
    struct endpoint c;
    client_connect(&c, &s, cctx, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    ep_close(&c);
    client_connect(&c, &s, cctx, "127.0.0.1"); /* resumes while still valid */
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    assert_true(last_conn(&s)->peer.resumed);
    ep_close(&c);
    while (time(NULL) <= now + 3)
        RUN_UNTIL(&w, false, 200);
    client_connect(&c, &s, cctx, "127.0.0.1");
    /* a resumed client finishes before the server does: it hears the alert right after */
    RUN_UNTIL(&w, c.error, WAIT_MS);
    assert_true(c.error);
    assert_contains(c.peer.error, "certificate_expired");
    assert_true(last_conn(&s)->error);
    assert_false(last_conn(&s)->peer.handshake_done);
    assert_contains(last_conn(&s)->peer.error,
                    "client certificate rejected: certificate has expired (resumed session)");
    ep_close(&c);
    server_stop(&s);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

/* A client cert signed by our CA with a subject certgen cannot write (openssl CLI). */
static void openssl_cert(const char *name, const char *subject)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-subj '%s' -keyout %s-key.pem -out %s.csr 2>/dev/null && "
             "openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial "
             "-days 2 -out %s.pem 2>/dev/null",
             g_dir, subject, name, name, name, name);
    assert_int_equal(system(cmd), 0);
}

/* A subject with two CNs: Go takes the last one, a naive walk the first; refuse both orders,
 * while the same CN alone is let in. */
static void test_two_common_names(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    openssl_cert("cn-first", "/CN=TiDB-Server/CN=Evil");
    openssl_cert("cn-last", "/CN=Evil/CN=TiDB-Server");
    char *allowed[] = {"TiDB-Server"};
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", allowed, 1, TLS_CN_HANDSHAKE);
    const char *names[] = {"cn-first", "cn-last"};
    struct server s;
    server_start(&s, &w, sctx, 0);
    struct endpoint c;
    for (size_t i = 0; i < 2; i++) {
        struct tls_ctx *cctx = mkctx(TLS_CLIENT, "ca.pem", names[i], NULL, 0, TLS_CN_HANDSHAKE);
        client_connect(&c, &s, cctx, "127.0.0.1");
        assert_false(c.connected);
        assert_contains(last_conn(&s)->peer.error, "client certificate rejected: its subject has "
                                                   "several Common Name attributes");
        ep_close(&c);
        tls_ctx_free(cctx);
    }
    struct tls_ctx *good = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
    client_connect(&c, &s, good, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", "TiDB-Server");
    ep_close(&c);
    struct tls_stats st;
    tls_ctx_stats(sctx, &st);
    assert_int_equal(st.failed, 2); /* counted by result, as /metrics shows them */
    assert_int_equal(st.full, 1);
    server_stop(&s);
    tls_ctx_free(good);
    tls_ctx_free(sctx);
    world_free(&w);
}

/* A leaf signed by ca.pem with any subject CN, written with mbedTLS directly: certgen and
 * openssl both refuse a CN over 64 characters (X.509's bound), a hostile CA need not. */
static void raw_cert(const char *name, const char *cn)
{
    char cap[300], kap[300], cp[300], kp[300], kn[80];
    path_of(cap, sizeof cap, "ca.pem");
    path_of(kap, sizeof kap, "ca-key.pem");
    snprintf(kn, sizeof kn, "%s.pem", name);
    path_of(cp, sizeof cp, kn);
    snprintf(kn, sizeof kn, "%s-key.pem", name);
    path_of(kp, sizeof kp, kn);
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_pk_context key, cakey;
    mbedtls_x509_crt ca;
    mbedtls_x509write_cert w;
    mbedtls_entropy_init(&ent);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_pk_init(&key);
    mbedtls_pk_init(&cakey);
    mbedtls_x509_crt_init(&ca);
    mbedtls_x509write_crt_init(&w);
    assert_int_equal(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0), 0);
    assert_int_equal(mbedtls_x509_crt_parse_file(&ca, cap), 0);
    assert_int_equal(mbedtls_pk_parse_keyfile(&cakey, kap, NULL), 0);
    assert_int_equal(mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
    assert_int_equal(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key),
                                         mbedtls_ctr_drbg_random, &drbg), 0);
    mbedtls_mpi serial;
    mbedtls_mpi_init(&serial);
    mbedtls_mpi_lset(&serial, 4242);
    mbedtls_x509write_crt_set_serial(&w, &serial);
    mbedtls_x509write_crt_set_subject_key(&w, &key);
    mbedtls_x509write_crt_set_issuer_key(&w, &cakey);
    /* set_subject_name stops at 256 bytes an attribute; the named-data list does not */
    mbedtls_asn1_named_data *d = mbedtls_asn1_store_named_data(
        &w.subject, MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN),
        (const unsigned char *)cn, strlen(cn));
    assert_non_null(d);
    d->val.tag = MBEDTLS_ASN1_UTF8_STRING;
    char issuer[256];
    assert_true(mbedtls_x509_dn_gets(issuer, sizeof issuer, &ca.subject) > 0);
    assert_int_equal(mbedtls_x509write_crt_set_issuer_name(&w, issuer), 0);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    assert_int_equal(mbedtls_x509write_crt_set_validity(&w, "20200101000000", "20991231235959"),
                     0);
    static unsigned char pem[4096];
    assert_int_equal(mbedtls_x509write_crt_pem(&w, pem, sizeof pem, mbedtls_ctr_drbg_random,
                                               &drbg), 0);
    FILE *f = fopen(cp, "w");
    assert_non_null(f);
    fputs((char *)pem, f);
    fclose(f);
    assert_int_equal(mbedtls_pk_write_key_pem(&key, pem, sizeof pem), 0);
    f = fopen(kp, "w");
    assert_non_null(f);
    fputs((char *)pem, f);
    fclose(f);
    mbedtls_mpi_free(&serial);
    mbedtls_x509write_crt_free(&w);
    mbedtls_x509_crt_free(&ca);
    mbedtls_pk_free(&cakey);
    mbedtls_pk_free(&key);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&ent);
}

/* A CN longer than the peer facts hold: cut, it could equal an allow-list entry (its first
 * 255 bytes); it is refused, while the entry's own holder is let in. */
static void test_overlong_common_name(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    char prefix[256], longcn[301];
    memset(prefix, 'A', 255);
    prefix[255] = '\0';
    snprintf(longcn, sizeof longcn, "%sEVIL-SUFFIX-MAKING-IT-LONGER-THAN-255-BYTES", prefix);
    raw_cert("long-cn", longcn);
    raw_cert("prefix-cn", prefix);
    char *allowed[] = {prefix};
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", allowed, 1, TLS_CN_HANDSHAKE);
    struct tls_ctx *evil = mkctx(TLS_CLIENT, "ca.pem", "long-cn", NULL, 0, TLS_CN_HANDSHAKE);
    struct tls_ctx *good = mkctx(TLS_CLIENT, "ca.pem", "prefix-cn", NULL, 0, TLS_CN_HANDSHAKE);
    struct server s;
    server_start(&s, &w, sctx, 0);
    struct endpoint c;
    client_connect(&c, &s, evil, "127.0.0.1");
    assert_false(c.connected);
    assert_contains(last_conn(&s)->peer.error, "client certificate rejected: its Common Name is "
                                               "longer than 255 bytes");
    ep_close(&c);
    client_connect(&c, &s, good, "127.0.0.1");
    assert_good(&c, &s, "PD-Server", prefix);
    ep_close(&c);
    server_stop(&s);
    tls_ctx_free(good);
    tls_ctx_free(evil);
    tls_ctx_free(sctx);
    world_free(&w);
}

/* Not a check: prints the CPU a full and a resumed handshake cost here (client and server
 * together, one process, over a bufferevent_pair). */
static void test_handshake_cost(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "ca.pem", "server", NULL, 0, TLS_CN_HANDSHAKE);
    enum { N = 20 };
    double full = 0, resumed = 0;
    struct tls_ctx *cctx = NULL;
    for (int i = 0; i < N; i++) {
        if (cctx)
            tls_ctx_free(cctx);
        cctx = mkctx(TLS_CLIENT, "ca.pem", "client", NULL, 0, TLS_CN_HANDSHAKE);
        struct endpoint c, sv;
        double t0 = cpu_ms();
        pair_connect(&w, sctx, cctx, "127.0.0.1", &c, &sv);
        full += cpu_ms() - t0;
        assert_true(c.connected);
        assert_false(c.peer.resumed);
        ep_close(&c);
        ep_close(&sv);
    }
    for (int i = 0; i < N; i++) {
        struct endpoint c, sv;
        double t0 = cpu_ms();
        pair_connect(&w, sctx, cctx, "127.0.0.1", &c, &sv);
        resumed += cpu_ms() - t0;
        assert_true(c.connected);
        assert_true(c.peer.resumed);
        ep_close(&c);
        ep_close(&sv);
    }
    printf("handshake CPU (client+server together): full %.2f ms, resumed %.2f ms\n",
           full / N, resumed / N);
    tls_ctx_free(cctx);
    tls_ctx_free(sctx);
    world_free(&w);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cn_allowed),
        cmocka_unit_test(test_suite_openssl_name),
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_good_handshake_loopback),
        cmocka_unit_test(test_good_handshake_pair_and_garbage),
        cmocka_unit_test(test_evhttp_roundtrip),
        cmocka_unit_test(test_evhttp_idle_close),
        cmocka_unit_test(test_client_trusts_other_ca),
        cmocka_unit_test(test_client_cert_other_ca),
        cmocka_unit_test(test_cn_not_in_allow_list),
        cmocka_unit_test(test_cn_service_mode),
        cmocka_unit_test(test_no_client_cert),
        cmocka_unit_test(test_client_auth_optional_and_none),
        cmocka_unit_test(test_expired_certs),
        cmocka_unit_test(test_san_mismatch),
        cmocka_unit_test(test_plaintext_on_tls_port),
        cmocka_unit_test(test_peer_closes_mid_handshake),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_cert_rotation),
        cmocka_unit_test(test_session_resumption),
        cmocka_unit_test(test_starttls_client_first_same_read),
        cmocka_unit_test(test_starttls_server_answers_first),
        cmocka_unit_test(test_starttls_garbage_after_upgrade),
        cmocka_unit_test(test_resumed_session_after_expiry),
        cmocka_unit_test(test_two_common_names),
        cmocka_unit_test(test_overlong_common_name),
        cmocka_unit_test(test_handshake_cost),
    };
    if (argc > 1) /* e.g. test_tls '*evhttp*' */
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
