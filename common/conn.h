/* conn.h — the connection layer: listen and dial, plaintext and TLS alike, and hand the
 * service a bufferevent plus the facts about the peer.
 *
 * Every service stands on it: TiKV's framed RPC and TiDB's MySQL port use conn_listen and
 * conn_dial directly; HTTP (http.c) hands the listening socket to evhttp
 * (conn_listener_evconnlistener) and builds each connection's bufferevent with
 * conn_server_bufferevent. The TLS itself is tls.c's; the MySQL port starts plaintext and
 * upgrades later with tls_bev_starttls.
 *
 * Contract:
 * - conn_listen binds host:port (port 0: a free port, see conn_listener_port); a host name is
 *   resolved once, blocking (listeners are made at start-up). With a server
 *   tls_ctx every connection is TLS and the service's callback runs once the handshake has
 *   completed (a failed handshake is logged by tls.c and never reaches the service); without
 *   one it runs at accept. The callback owns the bufferevent (no callbacks set, nothing
 *   enabled yet) and gets the peer's facts. The input may already hold the peer's first
 *   bytes (a resumed TLS client sends its first request with the end of the handshake);
 *   a read callback set in the callback is then run once from the next loop iteration.
 *   The same holds for conn_dial's bufferevent.
 * - Out of file descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM from accept), a listener stops
 *   accepting for CONN_ACCEPT_BACKOFF_MS rather than spin on the ready socket, and says so in
 *   the log at most once a second, with the number of refusals since the last line. Waiting
 *   peers stay in the kernel's backlog and are accepted when descriptors are free again.
 * - conn_dial connects to host:port (an IP literal or "localhost"), plaintext or TLS, and
 *   calls back once connected (TLS: handshake done) with the bufferevent, or with NULL and a
 *   one-line reason in the transport's words; never both, always exactly once, unless the
 *   dial is cancelled with conn_dial_cancel first. The deadline covers connect + handshake.
 * - conn_peer_get works on any bufferevent this layer (or tls.c) made, at any time.
 * - Not thread-safe: one event loop.
 */
#ifndef TISIM_CONN_H
#define TISIM_CONN_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stddef.h>

#include "tls.h"

#define CONN_ACCEPT_BACKOFF_MS 100

struct conn_peer {
    char addr[64];     /* "127.0.0.1:51234" */
    bool tls;          /* the rest is filled only when true */
    char cn[256];      /* subject CN of the peer's certificate */
    bool cn_allowed;   /* allow-list verdict (server side; true when the list is empty) */
    bool resumed;
    char version[16];  /* "TLSv1.2" */
    char suite[64];
};

struct conn_listener;
/* bev: the connection (the callee owns it). */
typedef void (*conn_accept_cb)(struct bufferevent *bev, const struct conn_peer *peer,
                               void *arg);

/* NULL with err ("cannot listen on 127.0.0.1:2379: Address already in use"). */
struct conn_listener *conn_listen(struct event_base *base, const char *host, int port,
                                  struct tls_ctx *tls, conn_accept_cb cb, void *arg, char *err,
                                  size_t errlen);
int conn_listener_port(const struct conn_listener *l);
/* For a protocol library that accepts itself (evhttp_bind_listener): the listening socket,
 * with the descriptor backoff. Call conn_listener_detach before handing it over: the library
 * then owns (and frees) the evconnlistener; conn_listener_free frees only the rest. */
struct evconnlistener *conn_listener_evconnlistener(struct conn_listener *l);
void conn_listener_detach(struct conn_listener *l);
/* Stops listening and frees the TLS handshakes still under way (the service never saw them). */
void conn_listener_free(struct conn_listener *l);

/* A server connection's bufferevent for a socket that is set later (bufferevent_setfd):
 * TLS with tls (plaintext_reply as tls_bev_set_plaintext_reply: not copied), plaintext
 * without. */
struct bufferevent *conn_server_bufferevent(struct event_base *base, struct tls_ctx *tls,
                                            const char *plaintext_reply);

struct conn_dial;
/* bev NULL: failed, err says why. */
typedef void (*conn_dial_cb)(struct bufferevent *bev, const struct conn_peer *peer,
                             const char *err, void *arg);
/* tls: a client ctx, or NULL for plaintext. NULL when the dial could not even start (err). */
struct conn_dial *conn_dial(struct event_base *base, const char *host, int port,
                            struct tls_ctx *tls, int timeout_ms, conn_dial_cb cb, void *arg,
                            char *err, size_t errlen);
/* The callback will not run; the connection, if any, is closed. */
void conn_dial_cancel(struct conn_dial *d);

/* The peer facts of bev (address from the socket; TLS facts when it is a TLS bufferevent). */
void conn_peer_get(struct bufferevent *bev, struct conn_peer *out);

#endif
