/* conn.c — listen and dial for plaintext and TLS services. See conn.h. */
#include "conn.h"

#include "log.h"
#include "url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct conn_listener {
    struct conn_listener *next; /* all live listeners: the error callback finds its own */
    struct event_base *base;
    struct evconnlistener *evl;
    bool evl_detached;          /* handed to evhttp, which frees it */
    struct event *resume;       /* re-enables accepting after a backoff */
    struct tls_ctx *tls;
    conn_accept_cb cb;
    void *arg;
    int port;
    time_t last_warn;
    unsigned long refused; /* accept failures since the last log line */
    struct pending_accept *pending; /* handshakes under way, freed with the listener */
};

static struct conn_listener *g_listeners;

/* A TLS connection waiting for its handshake before the service sees it. */
struct pending_accept {
    struct pending_accept *next, *prev;
    struct conn_listener *l;
    struct bufferevent *bev;
};

static void pending_unlink(struct pending_accept *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->l->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    free(p);
}

void conn_peer_get(struct bufferevent *bev, struct conn_peer *out)
{
    memset(out, 0, sizeof *out);
    const struct tls_peer *t = bev ? tls_bev_peer(bev) : NULL;
    if (t) {
        out->tls = true;
        snprintf(out->addr, sizeof out->addr, "%s", t->addr);
        snprintf(out->cn, sizeof out->cn, "%s", t->cn);
        out->cn_allowed = t->cn_allowed;
        out->resumed = t->resumed;
        snprintf(out->version, sizeof out->version, "%s", t->version);
        snprintf(out->suite, sizeof out->suite, "%s", t->suite);
        return;
    }
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        url_sockaddr_str((struct sockaddr *)&ss, out->addr, sizeof out->addr);
    else
        snprintf(out->addr, sizeof out->addr, "unknown");
}

/* ---- listening ---- */

/* A resumed client sends its first request in the flight that ends the handshake: it is in
 * the input already and no read event will announce it. So once the service has set its
 * callbacks, its read callback is run (deferred) when input waits. The reference taken
 * before the hand-over keeps bev's memory valid should the service free it at once
 * (bufferevent_free clears the callbacks, so nothing runs then). */
static void announce_early_input(struct bufferevent *bev)
{
    bufferevent_data_cb readcb = NULL;
    bufferevent_getcb(bev, &readcb, NULL, NULL, NULL);
    if (readcb && evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    bufferevent_decref(bev);
}

static void handshake_event(struct bufferevent *bev, short what, void *arg)
{
    struct pending_accept *p = arg;
    struct conn_listener *l = p->l;
    pending_unlink(p);
    if (what & BEV_EVENT_CONNECTED) {
        struct conn_peer peer;
        conn_peer_get(bev, &peer);
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        bufferevent_incref(bev);
        l->cb(bev, &peer, l->arg);
        announce_early_input(bev);
        return;
    }
    /* The handshake failed or the peer left: tls.c has logged why. */
    bufferevent_free(bev);
}

static void accept_tls(struct conn_listener *l, evutil_socket_t fd)
{
    struct pending_accept *p = calloc(1, sizeof *p);
    struct bufferevent *bev = p ? tls_bev_accept(l->tls, l->base, fd) : NULL;
    if (!bev) {
        if (!p)
            evutil_closesocket(fd);
        free(p);
        log_warnx("out of memory: refusing a connection on port %d", l->port);
        return;
    }
    p->l = l;
    p->bev = bev;
    p->next = l->pending;
    if (l->pending)
        l->pending->prev = p;
    l->pending = p;
    bufferevent_setcb(bev, NULL, NULL, handshake_event, p);
}

static void accept_plain(struct conn_listener *l, evutil_socket_t fd)
{
    struct bufferevent *bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        log_warnx("out of memory: refusing a connection on port %d", l->port);
        return;
    }
    struct conn_peer peer;
    conn_peer_get(bev, &peer);
    l->cb(bev, &peer, l->arg);
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)evl;
    (void)sa;
    (void)salen;
    struct conn_listener *l = arg;
    evutil_make_socket_closeonexec(fd);
    if (l->tls)
        accept_tls(l, fd);
    else
        accept_plain(l, fd);
}

static void resume_accepting(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn_listener *l = arg;
    evconnlistener_enable(l->evl);
}

static bool out_of_descriptors(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* evconnlistener's error callback: evhttp replaces the listener's user data with its own, so
 * the listener is found by its evconnlistener. */
static void on_accept_error(struct evconnlistener *evl, void *unused)
{
    (void)unused;
    int err = EVUTIL_SOCKET_ERROR();
    struct conn_listener *l = g_listeners;
    while (l && l->evl != evl)
        l = l->next;
    if (!l)
        return;
    l->refused++;
    time_t now = time(NULL);
    if (now != l->last_warn) {
        log_warnx("cannot accept connections on port %d: %s (%lu time(s) since the last "
                  "message); pausing accepts for %d ms",
                  l->port, evutil_socket_error_to_string(err), l->refused,
                  CONN_ACCEPT_BACKOFF_MS);
        l->last_warn = now;
        l->refused = 0;
    }
    if (!out_of_descriptors(err))
        return; /* transient: libevent retries on the next readiness */
    static const struct timeval backoff = {0, CONN_ACCEPT_BACKOFF_MS * 1000};
    evconnlistener_disable(evl);
    evtimer_add(l->resume, &backoff);
}

static int bind_port(struct evconnlistener *evl)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evconnlistener_get_fd(evl), (struct sockaddr *)&ss, &sl) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* An IP literal, or a name resolved once (blocking: listeners are made at start-up). */
static int parse_bind_addr(const char *host, int port, struct sockaddr_storage *ss,
                           socklen_t *sl)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, service, &hints, &ai) != 0 || !ai)
        return -1;
    memset(ss, 0, sizeof *ss);
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sl = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

struct conn_listener *conn_listen(struct event_base *base, const char *host, int port,
                                  struct tls_ctx *tls, conn_accept_cb cb, void *arg, char *err,
                                  size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    struct conn_listener *l = NULL;
    if (!host || port < 0 || port > 65535 || parse_bind_addr(host, port, &ss, &sl) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: no such address", host ? host : "(null)",
                 port);
        return NULL;
    }
    if (!(l = calloc(1, sizeof *l)) || !(l->resume = evtimer_new(base, resume_accepting, l))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    l->evl = evconnlistener_new_bind(base, on_accept, l,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                         LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED,
                                     128, (struct sockaddr *)&ss, (int)sl);
    if (!l->evl) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        goto fail;
    }
    l->base = base;
    l->tls = tls;
    l->cb = cb;
    l->arg = arg;
    l->port = bind_port(l->evl);
    evconnlistener_set_error_cb(l->evl, on_accept_error);
    l->next = g_listeners;
    g_listeners = l;
    if (cb)
        evconnlistener_enable(l->evl);
    return l;
fail:
    if (l && l->resume)
        event_free(l->resume);
    free(l);
    return NULL;
}

int conn_listener_port(const struct conn_listener *l)
{
    return l ? l->port : -1;
}

struct evconnlistener *conn_listener_evconnlistener(struct conn_listener *l)
{
    return l->evl;
}

void conn_listener_detach(struct conn_listener *l)
{
    l->evl_detached = true;
}

void conn_listener_free(struct conn_listener *l)
{
    if (!l)
        return;
    for (struct conn_listener **pp = &g_listeners; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    if (!l->evl_detached)
        evconnlistener_free(l->evl);
    while (l->pending) { /* handshakes under way: nobody will take them now */
        struct bufferevent *bev = l->pending->bev;
        pending_unlink(l->pending);
        bufferevent_free(bev);
    }
    event_free(l->resume);
    free(l);
}

/* A filter that refuses everything: what a server connection gets when TLS cannot be set up
 * for it, because evhttp serves PLAINTEXT when its bufferevent callback returns NULL. */
static enum bufferevent_filter_result refuse_all(struct evbuffer *src, struct evbuffer *dst,
                                                 ev_ssize_t limit,
                                                 enum bufferevent_flush_mode mode, void *arg)
{
    (void)dst;
    (void)limit;
    (void)mode;
    (void)arg;
    evbuffer_drain(src, evbuffer_get_length(src));
    return BEV_ERROR;
}

static void refuse_now(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bufferevent_trigger_event(arg, BEV_EVENT_ERROR | BEV_EVENT_READING, 0);
}

static struct bufferevent *refusing_bufferevent(struct event_base *base)
{
    struct bufferevent *u = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct bufferevent *bev =
        u ? bufferevent_filter_new(u, refuse_all, refuse_all, BEV_OPT_CLOSE_ON_FREE, NULL, NULL)
          : NULL;
    if (!bev) {
        if (u)
            bufferevent_free(u);
        return NULL;
    }
    static const struct timeval zero = {0, 0};
    event_base_once(base, -1, EV_TIMEOUT, refuse_now, bev, &zero);
    return bev;
}

struct bufferevent *conn_server_bufferevent(struct event_base *base, struct tls_ctx *tls,
                                            const char *plaintext_reply)
{
    if (!tls)
        return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct bufferevent *bev = tls_bev_accept(tls, base, -1);
    if (bev && (!plaintext_reply || tls_bev_set_plaintext_reply(bev, plaintext_reply) == 0))
        return bev;
    if (bev)
        bufferevent_free(bev);
    log_error("TLS: out of memory for a new connection; refusing it");
    bev = refusing_bufferevent(base);
    if (bev)
        return bev;
    /* Never hand evhttp NULL: it would serve the connection in plaintext. */
    fatalx("TLS: out of memory for a new connection; stopping rather than serving plaintext");
}

/* ---- dialing ---- */

struct conn_dial {
    struct bufferevent *bev;
    struct event *deadline;
    conn_dial_cb cb;
    void *arg;
    char where[300];
};

static void dial_free(struct conn_dial *d, bool close_bev)
{
    if (close_bev && d->bev)
        bufferevent_free(d->bev);
    if (d->deadline)
        event_free(d->deadline);
    free(d);
}

static void dial_fail(struct conn_dial *d, const char *why)
{
    conn_dial_cb cb = d->cb;
    void *arg = d->arg;
    char msg[TLS_REASON_LEN];
    snprintf(msg, sizeof msg, "%s", why);
    dial_free(d, true);
    cb(NULL, NULL, msg, arg);
}

static void dial_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn_dial *d = arg;
    if (what & BEV_EVENT_CONNECTED) {
        struct conn_peer peer;
        conn_peer_get(bev, &peer);
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        conn_dial_cb cb = d->cb;
        void *cb_arg = d->arg;
        dial_free(d, false);
        bufferevent_incref(bev);
        cb(bev, &peer, NULL, cb_arg);
        announce_early_input(bev);
        return;
    }
    const struct tls_peer *t = tls_bev_peer(bev);
    char why[TLS_REASON_LEN];
    if (t && t->error[0])
        snprintf(why, sizeof why, "%s", t->error);
    else
        snprintf(why, sizeof why, "cannot connect to %s: %s", d->where,
                 (what & BEV_EVENT_EOF) ? "connection closed"
                                        : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    dial_fail(d, why);
}

static void dial_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn_dial *d = arg;
    char why[TLS_REASON_LEN];
    snprintf(why, sizeof why, "cannot connect to %s: no answer in time", d->where);
    dial_fail(d, why);
}

struct conn_dial *conn_dial(struct event_base *base, const char *host, int port,
                            struct tls_ctx *tls, int timeout_ms, conn_dial_cb cb, void *arg,
                            char *err, size_t errlen)
{
    struct conn_dial *d = calloc(1, sizeof *d);
    if (!d || !(d->deadline = evtimer_new(base, dial_timeout, d))) {
        snprintf(err, errlen, "out of memory");
        free(d);
        return NULL;
    }
    d->cb = cb;
    d->arg = arg;
    snprintf(d->where, sizeof d->where, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    if (tls) {
        d->bev = tls_bev_connect(tls, base, host, port);
    } else {
        d->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (d->bev && bufferevent_socket_connect_hostname(d->bev, NULL, AF_UNSPEC, host, port)) {
            snprintf(err, errlen, "cannot connect to %s: %s", d->where,
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
            dial_free(d, true);
            return NULL;
        }
    }
    if (!d->bev) {
        snprintf(err, errlen, "out of memory");
        dial_free(d, false);
        return NULL;
    }
    bufferevent_setcb(d->bev, NULL, NULL, dial_event, d);
    /* A little after the TLS layer's own deadline, so its more precise reason wins. */
    int ms = (timeout_ms > 0 ? timeout_ms : 10000) + (tls ? 50 : 0);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(d->deadline, &tv);
    return d;
}

void conn_dial_cancel(struct conn_dial *d)
{
    if (d)
        dial_free(d, true);
}
