/* tls.h — the mutual-TLS transport: mbedTLS under a libevent bufferevent.
 *
 * The rest of tisim (pd/, tikv/, tidb/, the http helper) sees only bufferevents and this
 * header; it never includes mbedTLS. See DESIGN.md "Security rules" and TECH-NOTES.md.
 *
 * Contract:
 * - struct tls_ctx holds one role's settings. The CA is read once by tls_ctx_new; the cert and
 *   key files are reread for each new connection when they changed on disk (keyed by
 *   inode/size/mtime), so rotation works without restart. A cert/key that cannot be read at
 *   connection time fails that connection only (logged), never the daemon.
 * - Server side: a client certificate signed by the CA is always required. The CN allow-list
 *   (empty = any cert of the CA) is checked either IN THE HANDSHAKE (TLS_CN_HANDSHAKE: a peer
 *   outside the list gets a fatal access_denied alert) or left to the service
 *   (TLS_CN_SERVICE: the handshake succeeds and tls_bev_peer()->cn_allowed says the verdict).
 *   The list is checked again after every handshake, because mbedTLS skips the verify callback
 *   on resumed sessions.
 * - Client side: the server's chain must reach the CA and the dialed host (DNS name or IP
 *   literal) must match a SAN of its certificate; our own cert+key are presented.
 * - Sessions resume: servers issue session tickets; a client ctx remembers the last session
 *   per host:port and offers it.
 * - TLS 1.2, explicit ECDHE AEAD suites and curves (x509util.h tls_conf_defaults).
 * - A wrapped bufferevent behaves like a socket bufferevent for its user: it reports
 *   BEV_EVENT_CONNECTED once the handshake has completed (client side), BEV_EVENT_ERROR when
 *   the handshake or the record layer fails, BEV_EVENT_EOF on close_notify or TCP close. It
 *   works under evhttp as server (tls_evhttp_serve) and client (tls_evhttp_connection_new).
 *   Freeing it with a pending output first flushes and sends close_notify (BEV_FINISHED).
 * - The user's write callback means "handed to the kernel" (as for a socket bufferevent), so
 *   freeing right after it (evhttp "Connection: close") loses nothing.
 * - Every handshake outcome, good or bad, is logged once through log_handshake().
 * - A handshake that does not complete in time (default 10 s, tls_ctx_set_handshake_timeout)
 *   fails with BEV_EVENT_ERROR; for tls_bev_connect the deadline includes the TCP connect.
 * - Bytes that are not TLS fail the connection (a plaintext HTTP request gets a plaintext
 *   "400 ... HTTP request to an HTTPS server" answer first); other connections are unaffected.
 * - Nothing blocks the event loop, except that a host NAME (not an IP literal) given to
 *   tls_bev_connect / tls_evhttp_connection_new is resolved with blocking getaddrinfo, as
 *   evhttp does without an evdns_base: use IP literals or "localhost" between components.
 * - Not thread-safe: a ctx and its connections belong to one event loop thread. A ctx is
 *   reference-counted by its connections, so tls_ctx_free() with connections still open is
 *   fine; an evhttp served with tls_evhttp_serve() must be freed before its ctx.
 * - Daemons should ignore SIGPIPE (libevent's own socket writes can raise it).
 */
#ifndef TISIM_TLS_H
#define TISIM_TLS_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stddef.h>

struct tls_ctx;

enum tls_side { TLS_SERVER, TLS_CLIENT };
enum tls_cn_check { TLS_CN_HANDSHAKE, TLS_CN_SERVICE };

struct tls_opts {
    const char *role;      /* who we are, for logs: "pd", "tikv", "tidb", "pd-ctl" */
    const char *ca_path;   /* PEM CA bundle, read once */
    const char *cert_path; /* PEM cert (chain), reread per connection; client: may be NULL */
    const char *key_path;  /* PEM private key, reread per connection (with cert_path) */
    /* Server side only: CN allow-list; n_allowed_cn == 0 lets in any cert of the CA. */
    char *const *allowed_cn;
    size_t n_allowed_cn;
    enum tls_cn_check cn_check;
};

/* NULL with err set ("cannot read CA /x/ca.pem: ...", "cert-path /x/a.pem: ...") on failure.
 * The cert and key are loaded once here too, so a bad config fails at start. */
struct tls_ctx *tls_ctx_new(enum tls_side side, const struct tls_opts *opts, char *err,
                            size_t errlen);
void tls_ctx_free(struct tls_ctx *ctx);

/* Wraps underlying (a connected or connecting socket bufferevent, or one end of a
 * bufferevent_pair in tests: create the pair with BEV_OPT_DEFER_CALLBACKS) in TLS. host is
 * what the client dialed (NULL on the server); a client's host is matched against the server
 * certificate's SANs (IP literal or DNS name) and keys the session cache.
 * The returned bufferevent owns underlying (BEV_OPT_CLOSE_ON_FREE). NULL on ENOMEM (the caller
 * still owns underlying then). Do not change underlying's callbacks afterwards. */
struct bufferevent *tls_bev_wrap(struct tls_ctx *ctx, struct event_base *base,
                                 struct bufferevent *underlying, const char *host);

/* Server: wrap an accepted fd (closed on failure). Client: create a socket bufferevent,
 * connect to host:port (numeric host or name), and wrap it; a connect failure arrives as
 * BEV_EVENT_ERROR with tls_bev_peer()->error "cannot connect to host:port: ...". */
struct bufferevent *tls_bev_accept(struct tls_ctx *ctx, struct event_base *base,
                                   evutil_socket_t fd);
struct bufferevent *tls_bev_connect(struct tls_ctx *ctx, struct event_base *base,
                                    const char *host, int port);

/* Serve HTTPS: every connection evhttp accepts is wrapped in TLS with ctx. */
void tls_evhttp_serve(struct evhttp *http, struct tls_ctx *ctx);
/* Makes evhttp send close_notify when it closes this server-side connection (evhttp shuts
 * the socket down before the bufferevent goes away). Cheap; call it for each request. Client
 * connections from tls_evhttp_connection_new have it already. */
void tls_evhttp_close_notify_on_close(struct evhttp_connection *evcon);
/* An evhttp client connection over TLS to host:port (keep-alive, reused by evhttp). When the
 * server closes it, evhttp reconnects on the next request; the new TLS connection resumes
 * the session. */
struct evhttp_connection *tls_evhttp_connection_new(struct tls_ctx *ctx, struct event_base *base,
                                                    const char *host, int port);

/* Server side: there is no BEV_EVENT_CONNECTED (as for an accepted socket); handshake_done
 * says the handshake completed. Client side: filled when BEV_EVENT_CONNECTED arrives. After
 * BEV_EVENT_ERROR, error says why. */
struct tls_peer {
    bool handshake_done;
    bool cn_allowed;       /* verdict of the allow-list (true when the list is empty) */
    bool resumed;
    char cn[256];          /* peer certificate's subject CN, "" if none */
    char addr[64];         /* "127.0.0.1:51234" */
    char version[16];      /* "TLSv1.2" */
    char suite[64];
    char error[256];       /* why the handshake or connection failed, "" if it did not */
};

/* Info about the TLS connection behind bev: bev itself, or the bufferevent of an evhttp
 * connection. NULL when bev is not one of ours. tls_evhttp_peer() is for server handlers
 * (the request's connection is the client's); in a client's request callback evhttp has
 * already detached req from its connection, so use tls_evhttp_connection_peer(evcon). */
const struct tls_peer *tls_bev_peer(struct bufferevent *bev);
const struct tls_peer *tls_evhttp_peer(struct evhttp_request *req);

/* The same for an evhttp client connection (tls_evhttp_connection_new). Use this in a request
 * callback that got a failed request: evhttp has already detached req from its connection
 * then, so tls_evhttp_peer(req) is NULL, but the connection keeps the reason in ->error until
 * it reconnects. */
const struct tls_peer *tls_evhttp_connection_peer(struct evhttp_connection *evcon);

/* Handshake deadline for connections started after the call (default 10000 ms): a peer that
 * does not complete the handshake in time gets BEV_EVENT_ERROR ("did not complete within"). */
void tls_ctx_set_handshake_timeout(struct tls_ctx *ctx, int ms);

/* Exact-match allow-list check; an empty list allows everyone. */
bool tls_cn_allowed(const char *cn, char *const *allowed, size_t n);

#endif
