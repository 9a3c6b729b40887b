/* tisim-bench — measures what DESIGN.md says matters for speed:
 *   handshake [--rsa] [-n N]   full vs resumed mutual-TLS handshakes through common/tls.c
 *                              (server in a child process, so its CPU is its own)
 *   pd URL --cacert CA --cert C --key K [-n N] [-c CONNS]
 *                              POST /pd/api/v1/tso over CONNS kept-alive HTTPS connections
 *                              (the way components talk), then N/10 requests that each open a
 *                              new connection (the way a one-shot client talks)
 * Prints figures; exit 1 only when the measurement itself failed. */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certgen.h"
#include "http.h"
#include "log.h"
#include "tls.h"

static double now_ms(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---- handshake ---- */

struct hs_server {
    struct event_base *base;
    struct tls_ctx *ctx;
    int expected, served, resumed;
    double last_cpu, full_cpu, resumed_cpu;
};

static void hs_server_read(struct bufferevent *b, void *arg)
{
    struct hs_server *s = arg;
    const struct tls_peer *p = tls_bev_peer(b);
    double cpu = now_ms(CLOCK_PROCESS_CPUTIME_ID), spent = cpu - s->last_cpu;
    s->last_cpu = cpu;
    if (p && p->resumed) {
        s->resumed_cpu += spent;
        s->resumed++;
    } else {
        s->full_cpu += spent;
    }
    evbuffer_drain(bufferevent_get_input(b), evbuffer_get_length(bufferevent_get_input(b)));
    bufferevent_write(b, "k", 1);
    if (++s->served == s->expected) {
        int full = s->served - s->resumed;
        printf("  server CPU per handshake: full %.2f ms (%d), resumed %.2f ms (%d)\n",
               full ? s->full_cpu / full : 0.0, full,
               s->resumed ? s->resumed_cpu / s->resumed : 0.0, s->resumed);
        fflush(stdout);
        event_base_loopexit(s->base, NULL);
    }
}

static void hs_server_event(struct bufferevent *b, short what, void *arg)
{
    (void)what;
    (void)arg;
    bufferevent_free(b);
}

static void hs_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)l;
    (void)sa;
    (void)len;
    struct hs_server *s = arg;
    struct bufferevent *b = tls_bev_accept(s->ctx, s->base, fd);
    if (!b)
        return;
    bufferevent_setcb(b, hs_server_read, NULL, hs_server_event, s);
    bufferevent_enable(b, EV_READ | EV_WRITE);
}

static void hs_serve(int lfd, struct tls_opts *o, int expected)
{
    char err[256];
    struct hs_server s = {.expected = expected};
    s.ctx = tls_ctx_new(TLS_SERVER, o, err, sizeof err);
    s.base = event_base_new();
    if (!s.ctx || !s.base) {
        fprintf(stderr, "tisim-bench: %s\n", err);
        _exit(1);
    }
    evutil_make_socket_nonblocking(lfd);
    struct evconnlistener *l =
        evconnlistener_new(s.base, hs_accept, &s, LEV_OPT_CLOSE_ON_FREE, -1, lfd);
    s.last_cpu = now_ms(CLOCK_PROCESS_CPUTIME_ID);
    event_base_dispatch(s.base);
    evconnlistener_free(l);
    tls_ctx_free(s.ctx);
    event_base_free(s.base);
    _exit(0);
}

struct hs_client {
    bool done, ok;
};

static void hs_client_event(struct bufferevent *b, short what, void *arg)
{
    struct hs_client *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        bufferevent_write(b, "x", 1);
        return;
    }
    c->done = true;
}

static void hs_client_read(struct bufferevent *b, void *arg)
{
    (void)b;
    struct hs_client *c = arg;
    c->ok = c->done = true;
}

/* One connection: connect, handshake, one byte each way. Returns wall ms or -1. */
static double hs_once(struct tls_ctx *ctx, struct event_base *base, int port)
{
    struct hs_client c = {0};
    double t0 = now_ms(CLOCK_MONOTONIC);
    struct bufferevent *b = tls_bev_connect(ctx, base, "127.0.0.1", port);
    if (!b)
        return -1;
    bufferevent_setcb(b, hs_client_read, NULL, hs_client_event, &c);
    bufferevent_enable(b, EV_READ | EV_WRITE);
    while (!c.done)
        event_base_loop(base, EVLOOP_ONCE);
    double t = now_ms(CLOCK_MONOTONIC) - t0;
    if (!c.ok)
        fprintf(stderr, "tisim-bench: handshake failed: %s\n", tls_bev_peer(b)->error);
    bufferevent_free(b);
    return c.ok ? t : -1;
}

static int listen_loopback(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        return -1;
    *port = ntohs(sin.sin_port);
    return fd;
}

static int bench_handshake(bool rsa, int n)
{
    char dir[] = "/tmp/tisim-bench-XXXXXX", err[256], ca[64], sc[80], sk[80], cc[80], ck[80];
    if (!mkdtemp(dir))
        return 1;
    struct certgen_pki_opts po = {.key_type = rsa ? CERTGEN_RSA_2048 : CERTGEN_EC_P256};
    if (certgen_pki(dir, &po, err, sizeof err) != 0) {
        fprintf(stderr, "tisim-bench: %s\n", err);
        return 1;
    }
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(sc, sizeof sc, "%s/pd-server.pem", dir);
    snprintf(sk, sizeof sk, "%s/pd-server-key.pem", dir);
    snprintf(cc, sizeof cc, "%s/tidb-server.pem", dir);
    snprintf(ck, sizeof ck, "%s/tidb-server-key.pem", dir);
    int port, lfd = listen_loopback(&port);
    if (lfd < 0)
        return 1;
    struct tls_opts so = {.role = "bench-server", .ca_path = ca, .cert_path = sc, .key_path = sk};
    struct tls_opts co = {.role = "bench-client", .ca_path = ca, .cert_path = cc, .key_path = ck};
    pid_t pid = fork();
    if (pid == 0)
        hs_serve(lfd, &so, 2 * n + 1);
    close(lfd);
    printf("handshake (%s certs, %d full + %d resumed, loopback):\n", rsa ? "RSA-2048" : "ECDSA P-256",
           n + 1, n);
    fflush(stdout);
    struct event_base *base = event_base_new();
    double full = 0, resumed = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        /* A fresh client ctx has no session to offer: a full handshake. */
        struct tls_ctx *ctx = tls_ctx_new(TLS_CLIENT, &co, err, sizeof err);
        double t = ctx ? hs_once(ctx, base, port) : -1;
        full += t;
        rc = t < 0;
        tls_ctx_free(ctx);
    }
    /* One ctx: after its first (full) handshake it offers the session each time. */
    struct tls_ctx *ctx = tls_ctx_new(TLS_CLIENT, &co, err, sizeof err);
    rc |= !ctx || hs_once(ctx, base, port) < 0;
    for (int i = 0; i < n && rc == 0; i++) {
        double t = hs_once(ctx, base, port);
        resumed += t;
        rc = t < 0;
    }
    tls_ctx_free(ctx);
    waitpid(pid, NULL, 0);
    printf("  client wall per connect+handshake+round trip: full %.2f ms, resumed %.2f ms\n",
           full / n, resumed / n);
    event_base_free(base);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "tisim-bench: could not remove %s\n", dir);
    return rc;
}

/* ---- pd ---- */

struct pd_run {
    struct event_base *base;
    int remaining, inflight, failed;
    double *lat;
    int n_lat;
    char last_error[300];
};

struct pd_req {
    struct pd_run *run;
    struct http_client *client;
    bool one_shot;
    double t0;
};

static void pd_send(struct pd_req *r);

static void pd_done(int status, const char *body, size_t len, const char *err, void *arg)
{
    (void)body;
    (void)len;
    struct pd_req *r = arg;
    struct pd_run *run = r->run;
    run->inflight--;
    if (status != 200) {
        run->failed++;
        snprintf(run->last_error, sizeof run->last_error, "%s", err ? err : "HTTP error");
    } else {
        run->lat[run->n_lat++] = now_ms(CLOCK_MONOTONIC) - r->t0;
    }
    if (run->remaining > 0 && !r->one_shot) {
        pd_send(r);
        return;
    }
    if (run->inflight == 0)
        event_base_loopexit(run->base, NULL);
}

static void pd_send(struct pd_req *r)
{
    r->run->remaining--;
    r->run->inflight++;
    r->t0 = now_ms(CLOCK_MONOTONIC);
    if (http_client_request(r->client, EVHTTP_REQ_POST, "/pd/api/v1/tso", NULL, 0, pd_done, r) != 0) {
        r->run->inflight--;
        r->run->failed++;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void pd_report(const char *what, struct pd_run *run, double wall)
{
    qsort(run->lat, (size_t)run->n_lat, sizeof *run->lat, cmp_double);
    double p50 = run->n_lat ? run->lat[run->n_lat / 2] : 0;
    double p99 = run->n_lat ? run->lat[(run->n_lat * 99) / 100] : 0;
    printf("  %-34s %6d ok %4d failed  %8.0f req/s  p50 %.2f ms  p99 %.2f ms\n", what, run->n_lat,
           run->failed, run->n_lat / (wall / 1000.0), p50, p99);
    if (run->failed)
        printf("    last error: %s\n", run->last_error);
}

static int bench_pd(const char *url, struct tls_opts *o, int n, int conns)
{
    char err[300];
    struct tls_ctx *tls = o->ca_path ? tls_ctx_new(TLS_CLIENT, o, err, sizeof err) : NULL;
    struct event_base *base = event_base_new();
    if ((o->ca_path && !tls) || !base) {
        fprintf(stderr, "tisim-bench: %s\n", err);
        return 1;
    }
    printf("pd %s: POST /pd/api/v1/tso\n", url);
    struct pd_run run = {.base = base, .remaining = n, .lat = calloc((size_t)n, sizeof(double))};
    struct pd_req *reqs = calloc((size_t)conns, sizeof *reqs);
    for (int i = 0; i < conns; i++) {
        reqs[i] = (struct pd_req){&run, http_client_new(base, url, tls, 10, err, sizeof err), false, 0};
        if (!reqs[i].client) {
            fprintf(stderr, "tisim-bench: %s\n", err);
            return 1;
        }
    }
    double t0 = now_ms(CLOCK_MONOTONIC);
    for (int i = 0; i < conns && run.remaining > 0; i++)
        pd_send(&reqs[i]);
    event_base_dispatch(base);
    char what[64];
    snprintf(what, sizeof what, "kept-alive, %d connection%s", conns, conns == 1 ? "" : "s");
    pd_report(what, &run, now_ms(CLOCK_MONOTONIC) - t0);
    for (int i = 0; i < conns; i++)
        http_client_free(reqs[i].client);

    /* New connection per request, each with a fresh TLS ctx (no session to resume). */
    int m = n / 10 ? n / 10 : 1;
    struct pd_run once = {.base = base, .lat = run.lat};
    t0 = now_ms(CLOCK_MONOTONIC);
    for (int i = 0; i < m; i++) {
        struct tls_ctx *fresh = o->ca_path ? tls_ctx_new(TLS_CLIENT, o, err, sizeof err) : NULL;
        struct pd_req r = {&once, http_client_new(base, url, fresh, 10, err, sizeof err), true, 0};
        once.remaining = 1;
        if (r.client) {
            pd_send(&r);
            event_base_dispatch(base);
            http_client_free(r.client);
        }
        tls_ctx_free(fresh);
    }
    pd_report("new connection + full handshake", &once, now_ms(CLOCK_MONOTONIC) - t0);
    free(run.lat);
    free(reqs);
    tls_ctx_free(tls);
    event_base_free(base);
    return run.failed || once.failed;
}

static int usage(void)
{
    fprintf(stderr, "usage: tisim-bench handshake [--rsa] [-n N]\n"
                    "       tisim-bench pd URL [--cacert CA --cert CERT --key KEY] [-n N] [-c CONNS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    log_open("bench", "/dev/null", LOG_ERROR);
    if (argc < 2)
        return usage();
    int n = 0, conns = 4;
    bool rsa = false;
    struct tls_opts o = {.role = "bench"};
    const char *url = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--rsa") == 0)
            rsa = true;
        else if (strcmp(a, "-n") == 0 && v && (n = atoi(v)) > 0)
            i++;
        else if (strcmp(a, "-c") == 0 && v && (conns = atoi(v)) > 0)
            i++;
        else if (strcmp(a, "--cacert") == 0 && v)
            o.ca_path = argv[++i];
        else if (strcmp(a, "--cert") == 0 && v)
            o.cert_path = argv[++i];
        else if (strcmp(a, "--key") == 0 && v)
            o.key_path = argv[++i];
        else if (!url && a[0] != '-')
            url = a;
        else
            return usage();
    }
    if (strcmp(argv[1], "handshake") == 0)
        return bench_handshake(rsa, n ? n : 100);
    if (strcmp(argv[1], "pd") == 0 && url)
        return bench_pd(url, &o, n ? n : 5000, conns);
    return usage();
}
