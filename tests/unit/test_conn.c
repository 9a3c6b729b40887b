/* test_conn.c — the connection layer: plaintext and TLS services on real loopback sockets,
 * the peer facts a service gets, dial failures in the transport's words, and the accept
 * backoff when the process runs out of file descriptors. */
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
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certgen.h"
#include "conn.h"
#include "daemon.h"
#include "log.h"
#include "testutil.h"
#include "tls.h"

#define WAIT_MS 5000

static char g_dir[200];

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", g_dir, name);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return tu_pki_dir(g_dir, sizeof g_dir, "conn", "TiKV-Control");
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_dir[0])
        tu_rm_rf(g_dir);
    return 0;
}

static struct tls_ctx *mkctx_check(enum tls_side side, const char *cert, char *const *allowed,
                                   size_t n_allowed, enum tls_cn_check check)
{
    struct tls_ctx *ctx = tu_tls_ctx(g_dir, side, cert, allowed, n_allowed, check);
    assert_non_null(ctx);
    return ctx;
}

static struct tls_ctx *mkctx(enum tls_side side, const char *cert, char *const *allowed,
                             size_t n_allowed)
{
    return mkctx_check(side, cert, allowed, n_allowed, TLS_CN_SERVICE);
}

/* ---- an echo service on the connection layer ---- */

struct service {
    int accepted;
    struct conn_peer last;
    struct bufferevent *conns[32];
};

static void echo_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

/* A peer that leaves frees its connection (and descriptor). */
static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    struct service *s = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    for (int i = 0; i < 32; i++)
        if (s->conns[i] == bev)
            s->conns[i] = NULL;
    bufferevent_free(bev);
}

static void on_accept(struct bufferevent *bev, const struct conn_peer *peer, void *arg)
{
    struct service *s = arg;
    s->last = *peer;
    if (s->accepted < 32)
        s->conns[s->accepted] = bev;
    s->accepted++;
    bufferevent_setcb(bev, echo_read, NULL, echo_event, s);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void service_free(struct service *s)
{
    for (int i = 0; i < s->accepted && i < 32; i++)
        if (s->conns[i])
            bufferevent_free(s->conns[i]);
}

struct dialer {
    bool done;
    struct bufferevent *bev;
    struct conn_peer peer;
    char err[512];
    char got[64];
};

static void dialer_read(struct bufferevent *bev, void *arg)
{
    struct dialer *d = arg;
    size_t n = strlen(d->got);
    bufferevent_read(bev, d->got + n, sizeof d->got - 1 - n);
}

static void on_dialed(struct bufferevent *bev, const struct conn_peer *peer, const char *err,
                      void *arg)
{
    struct dialer *d = arg;
    d->done = true;
    d->bev = bev;
    if (peer)
        d->peer = *peer;
    snprintf(d->err, sizeof d->err, "%s", err ? err : "");
    if (bev) {
        bufferevent_setcb(bev, dialer_read, NULL, NULL, d);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
        bufferevent_write(bev, "hello", 5);
    }
}

static void run_until(struct event_base *base, const bool *flag, int ms)
{
    double t0 = now_ms();
    while (!*flag && now_ms() - t0 < ms)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static void run_for(struct event_base *base, int ms)
{
    double t0 = now_ms();
    while (now_ms() - t0 < ms)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static void dial_and_echo(struct event_base *base, int port, struct tls_ctx *tls,
                          struct dialer *d)
{
    char err[256];
    memset(d, 0, sizeof *d);
    assert_non_null(conn_dial(base, "127.0.0.1", port, tls, 3000, on_dialed, d, err, sizeof err));
    run_until(base, &d->done, WAIT_MS);
    assert_true(d->done);
    if (!d->bev)
        return;
    double t0 = now_ms();
    while (strcmp(d->got, "hello") != 0 && now_ms() - t0 < WAIT_MS)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static void test_plain_service(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct service s = {0};
    char err[256];
    struct conn_listener *l = conn_listen(base, "127.0.0.1", 0, NULL, on_accept, &s, err,
                                          sizeof err);
    assert_non_null(l);
    int port = conn_listener_port(l);
    assert_true(port > 0);
    struct dialer d;
    dial_and_echo(base, port, NULL, &d);
    assert_non_null(d.bev);
    assert_string_equal(d.got, "hello");
    assert_false(d.peer.tls);
    assert_false(s.last.tls);
    assert_contains(s.last.addr, "127.0.0.1:");
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    assert_string_equal(d.peer.addr, want);
    bufferevent_free(d.bev);

    /* the same port twice: the error names it and the cause */
    assert_null(conn_listen(base, "127.0.0.1", port, NULL, on_accept, &s, err, sizeof err));
    assert_contains(err, "cannot listen on 127.0.0.1:");
    assert_contains(err, "Address already in use");
    assert_null(conn_listen(base, "no-such-host.invalid", 0, NULL, on_accept, &s, err,
                            sizeof err));
    assert_contains(err, "cannot listen on no-such-host.invalid:0: no such address");
    /* a name that resolves is fine */
    struct conn_listener *named = conn_listen(base, "localhost", 0, NULL, on_accept, &s, err,
                                              sizeof err);
    assert_non_null(named);
    conn_listener_free(named);

    service_free(&s);
    conn_listener_free(l);
    event_base_free(base);
}

static void test_tls_service_peer_facts(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    char *allowed[] = {"TiDB-Server"};
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "tikv-server", allowed, 1);
    struct tls_ctx *tidb = mkctx(TLS_CLIENT, "tidb-server", NULL, 0);
    struct tls_ctx *ctl = mkctx(TLS_CLIENT, "client", NULL, 0);
    struct service s = {0};
    char err[256];
    struct conn_listener *l = conn_listen(base, "127.0.0.1", 0, sctx, on_accept, &s, err,
                                          sizeof err);
    assert_non_null(l);
    int port = conn_listener_port(l);

    struct dialer d;
    dial_and_echo(base, port, tidb, &d);
    assert_string_equal(d.err, "");
    assert_string_equal(d.got, "hello");
    assert_true(d.peer.tls);
    assert_string_equal(d.peer.cn, "TiKV-Server");
    assert_string_equal(d.peer.version, "TLSv1.2");
    assert_true(s.last.tls);
    assert_string_equal(s.last.cn, "TiDB-Server");
    assert_true(s.last.cn_allowed);
    assert_contains(s.last.suite, "ECDHE");
    bufferevent_free(d.bev);

    /* resumed sessions: the first request may arrive with the end of the handshake, before
     * the service has a read callback; it must still be read */
    for (int i = 0; i < 20; i++) {
        dial_and_echo(base, port, tidb, &d);
        assert_true(d.peer.resumed);
        assert_string_equal(d.got, "hello");
        bufferevent_free(d.bev);
    }

    /* the service only sees connections whose handshake completed; the verdict of a CN
     * outside the list is the service's to act on (TiKV answers per request) */
    dial_and_echo(base, port, ctl, &d);
    assert_string_equal(d.got, "hello");
    assert_string_equal(s.last.cn, "TiKV-Control");
    assert_false(s.last.cn_allowed);
    assert_int_equal(s.accepted, 22);
    bufferevent_free(d.bev);

    /* plaintext on the TLS port: the dial "succeeds" at TCP level but the service never
     * sees it */
    struct dialer p;
    memset(&p, 0, sizeof p);
    assert_non_null(conn_dial(base, "127.0.0.1", port, NULL, 3000, on_dialed, &p, err,
                              sizeof err));
    run_until(base, &p.done, WAIT_MS);
    assert_non_null(p.bev);
    run_for(base, 200);
    assert_int_equal(s.accepted, 22);

    /* that handshake is still under way (the client sent nothing) when the listener goes:
     * the listener frees it (a tikv-server stopping while a client was half-way through its
     * handshake leaked it; ASan checks this path for double frees and leaks) */
    service_free(&s);
    conn_listener_free(l);
    bufferevent_free(p.bev);
    tls_ctx_free(ctl);
    tls_ctx_free(tidb);
    tls_ctx_free(sctx);
    event_base_free(base);
}

static void test_dial_failures(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct tls_ctx *tidb = mkctx(TLS_CLIENT, "tidb-server", NULL, 0);
    /* a port nobody listens on */
    struct service s = {0};
    char err[256];
    struct conn_listener *l = conn_listen(base, "127.0.0.1", 0, NULL, on_accept, &s, err,
                                          sizeof err);
    int port = conn_listener_port(l);
    conn_listener_free(l);
    struct dialer d;
    dial_and_echo(base, port, NULL, &d);
    assert_null(d.bev);
    assert_contains(d.err, "cannot connect to 127.0.0.1:");
    assert_contains(d.err, "refused");
    dial_and_echo(base, port, tidb, &d);
    assert_null(d.bev);
    assert_contains(d.err, "cannot connect to 127.0.0.1:");
    assert_contains(d.err, "refused");

    /* a handshake refused for the CN: the transport's words reach the dialer */
    char *allowed[] = {"PD-Server"};
    struct tls_ctx *strict = mkctx_check(TLS_SERVER, "pd-server", allowed, 1, TLS_CN_HANDSHAKE);
    struct tls_ctx *pd = mkctx(TLS_CLIENT, "pd-server", NULL, 0);
    l = conn_listen(base, "127.0.0.1", 0, strict, on_accept, &s, err, sizeof err);
    port = conn_listener_port(l);
    dial_and_echo(base, port, tidb, &d);
    assert_null(d.bev);
    assert_string_equal(d.err, "the server refused our certificate: its Common Name is not in "
                               "the server's allow-list (TLS alert access_denied)");
    dial_and_echo(base, port, pd, &d); /* the good case, same server */
    assert_string_equal(d.got, "hello");
    assert_string_equal(s.last.cn, "PD-Server");
    bufferevent_free(d.bev);
    assert_int_equal(s.accepted, 1);
    service_free(&s);
    conn_listener_free(l);
    tls_ctx_free(pd);
    tls_ctx_free(strict);
    tls_ctx_free(tidb);
    event_base_free(base);
}

/* A child process with a tiny descriptor limit serves a plaintext echo service and logs to a
 * file; the parent fills its descriptors with idle connections. The child must not spin on
 * accept (its log stays small: one line a second at most), and must serve again once the
 * idle connections go away. */
static void test_accept_backoff_out_of_fds(void **state)
{
    (void)state;
    char logpath[300];
    path_of(logpath, sizeof logpath, "backoff.log");
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        close(ready[0]);
        struct rlimit rl = {24, 24};
        setrlimit(RLIMIT_NOFILE, &rl);
        /* as a daemon runs: libevent's own warnings go into the log too */
        struct daemon dmn;
        struct daemon_opts o = {.component = "backoff", .log_file = logpath};
        char err[256];
        if (daemon_init(&dmn, &o, err, sizeof err) != 0)
            _exit(3);
        struct event_base *base = dmn.base;
        struct service s = {0};
        struct conn_listener *l = conn_listen(base, "127.0.0.1", 0, NULL, on_accept, &s, err,
                                              sizeof err);
        int port = l ? conn_listener_port(l) : -1;
        if (write(ready[1], &port, sizeof port) != sizeof port)
            _exit(2);
        event_base_dispatch(base);
        _exit(0);
    }
    close(ready[1]);
    int port = -1;
    assert_int_equal(read(ready[0], &port, sizeof port), (ssize_t)sizeof port);
    close(ready[0]);
    assert_true(port > 0);

    int idle[64];
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    for (int i = 0; i < 64; i++) {
        idle[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(idle[i], (struct sockaddr *)&sin, sizeof sin), 0);
    }
    usleep(2500 * 1000); /* let it try to accept what it cannot */
    for (int i = 0; i < 64; i++)
        close(idle[i]);

    /* served again: a new client gets its echo */
    struct event_base *base = event_base_new();
    struct dialer d;
    double t0 = now_ms();
    do {
        dial_and_echo(base, port, NULL, &d);
        if (d.bev)
            bufferevent_free(d.bev);
    } while (strcmp(d.got, "hello") != 0 && now_ms() - t0 < WAIT_MS);
    assert_string_equal(d.got, "hello");
    event_base_free(base);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);

    FILE *f = fopen(logpath, "r");
    assert_non_null(f);
    char line[1024];
    int lines = 0, mentions = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        if (strstr(line, "cannot accept connections on port") &&
            strstr(line, "Too many open files"))
            mentions++;
    }
    fclose(f);
    if (lines > 8)
        print_error("%d log lines in 2.5 s: accept spins\n", lines);
    assert_true(mentions >= 1); /* it said why */
    assert_true(lines <= 8);    /* ...at most once a second, not in a loop */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_service),
        cmocka_unit_test(test_tls_service_peer_facts),
        cmocka_unit_test(test_dial_failures),
        cmocka_unit_test(test_accept_backoff_out_of_fds),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
