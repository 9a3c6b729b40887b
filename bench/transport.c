#include "transport.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "tls.h"

struct tp_server {
    struct event_base *base;
    struct tls_ctx *ctx;
    const struct bench_plan *p;
    struct bench_result *r;
    int hold_start;        /* connections before the held ones */
    int closed, served;    /* closed by the client; byte received */
    struct bufferevent **held;
    int n_held;
    struct event *settle;  /* lets the last held connection go idle before sampling memory */
    struct bench_mark t0;
};

static void tp_settled(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tp_server *s = arg;
    bench_phase(s->hold_start + s->n_held, s->p, s->r, &s->t0);
    event_base_loopexit(s->base, NULL);
}

/* A held connection that ends before the sample: forget it. */
static void tp_held_event(struct bufferevent *b, short what, void *arg)
{
    struct tp_server *s = arg;
    if (what == BEV_EVENT_CONNECTED)
        return;
    for (int i = 0; i < s->n_held; i++)
        if (s->held[i] == b)
            s->held[i] = NULL;
    bufferevent_free(b);
}

static void tp_read(struct bufferevent *b, void *arg)
{
    struct tp_server *s = arg;
    struct evbuffer *in = bufferevent_get_input(b);
    evbuffer_drain(in, evbuffer_get_length(in));
    const struct tls_peer *peer = tls_bev_peer(b);
    if (peer->resumed)
        s->r->resumed_seen++;
    else
        s->r->full_seen++;
    snprintf(s->r->suite, sizeof s->r->suite, "%s", peer->suite);
    bufferevent_write(b, "k", 1);
    if (++s->served <= s->hold_start)
        return;
    s->held[s->n_held++] = b;
    bufferevent_setcb(b, NULL, NULL, tp_held_event, s);
    if (s->n_held == s->p->hold) {
        struct timeval tv = {0, 200 * 1000};
        evtimer_add(s->settle, &tv);
    }
}

static void tp_event(struct bufferevent *b, short what, void *arg)
{
    struct tp_server *s = arg;
    if (what == BEV_EVENT_CONNECTED) /* the handshake is done: wait for the byte */
        return;
    if (what & BEV_EVENT_ERROR) {
        s->r->failed++;
        if (!s->r->error[0])
            snprintf(s->r->error, sizeof s->r->error, "%.300s", tls_bev_peer(b)->error);
    }
    bufferevent_free(b);
    if (++s->closed > s->hold_start)
        return;
    bench_phase(s->closed, s->p, s->r, &s->t0);
    if (s->closed == s->hold_start && s->p->hold == 0)
        event_base_loopexit(s->base, NULL);
}

static void tp_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)l;
    (void)sa;
    (void)len;
    struct tp_server *s = arg;
    struct bufferevent *b = tls_bev_accept(s->ctx, s->base, fd);
    if (!b) {
        s->r->failed++;
        return;
    }
    bufferevent_setcb(b, tp_read, NULL, tp_event, s);
    bufferevent_enable(b, EV_READ | EV_WRITE);
}

static void tp_run(struct tp_server *s, int lfd)
{
    evutil_make_socket_nonblocking(lfd);
    struct evconnlistener *l =
        evconnlistener_new(s->base, tp_accept, s, LEV_OPT_CLOSE_ON_FREE, -1, lfd);
    if (!l) {
        snprintf(s->r->error, sizeof s->r->error, "cannot listen");
        s->r->failed = 1;
        close(lfd);
        return;
    }
    bench_phase(0, s->p, s->r, &s->t0);
    event_base_dispatch(s->base);
    evconnlistener_free(l);
}

void transport_server(int lfd, const struct bench_certs *c, const struct bench_plan *p,
                      struct bench_result *r)
{
    static char *const allowed[] = {"TiDB-Server"};
    struct tls_opts o = {.role = "bench", .ca_path = c->ca, .cert_path = c->server_cert,
                         .key_path = c->server_key, .allowed_cn = allowed, .n_allowed_cn = 1,
                         .cn_check = TLS_CN_HANDSHAKE};
    struct tp_server s = {.p = p, .r = r, .hold_start = p->warm + p->full + p->resumed};
    enum log_level level = p->log_warn_only ? LOG_WARN : LOG_INFO;
    if (p->log_path && log_open("bench-server", p->log_path, level) != 0)
        fprintf(stderr, "tisim-bench: cannot open %s\n", p->log_path);
    s.ctx = tls_ctx_new(TLS_SERVER, &o, r->error, sizeof r->error);
    s.base = event_base_new();
    s.held = calloc((size_t)p->hold + 1, sizeof *s.held);
    s.settle = s.base ? evtimer_new(s.base, tp_settled, &s) : NULL;
    if (s.ctx && s.base && s.held && s.settle) {
        tp_run(&s, lfd);
    } else {
        r->failed = 1;
        close(lfd);
    }
    for (int i = 0; i < s.n_held; i++)
        if (s.held[i])
            bufferevent_free(s.held[i]);
    free(s.held);
    if (s.settle)
        event_free(s.settle);
    tls_ctx_free(s.ctx);
    if (s.base)
        event_base_free(s.base);
}
