/* tls.h — the mutual-TLS transport: mbedTLS under a libevent bufferevent, protocol-neutral.
 *
 * The rest of tisim sees only bufferevents and this header; it never includes mbedTLS. This
 * module knows nothing of HTTP, MySQL or RPC: the HTTP glue (evhttp) lives in http.c, the
 * listening/dialing in conn.c. docs/transport.md explains the libevent/mbedTLS pitfalls.
 *
 * Contract:
 * - struct tls_ctx holds one role's settings. The CA is read once by tls_ctx_new; the cert and
 *   key files are reread for each new connection when they changed on disk (keyed by
 *   inode/size/mtime), so rotation works without restart. A cert/key that cannot be read at
 *   connection time fails that connection only (logged), never the daemon. Every path must be
 *   a readable regular file; the error names the key and the path (never the contents).
 * - Server side: a client certificate signed by the CA is always required. The CN allow-list
 *   (empty = any cert of the CA) is checked either IN THE HANDSHAKE (TLS_CN_HANDSHAKE: a peer
 *   outside the list gets a fatal access_denied alert) or left to the service
 *   (TLS_CN_SERVICE: the handshake succeeds and tls_bev_peer()->cn_allowed says the verdict).
 *   A client certificate whose subject holds more than one CN is refused (which one counts
 *   is ambiguous: Go takes the last, a naive parser the first).
 * - After EVERY handshake, resumed ones included (mbedTLS skips the verify callback when a
 *   session resumes), the peer certificate's validity period and the allow-list are checked
 *   again: a session ticket never outlives its certificate.
 * - Client side: the server's chain must reach the CA and the dialed host (DNS name or IP
 *   literal) must match a SAN of its certificate; our own cert+key are presented.
 * - Sessions resume: servers issue session tickets; a client ctx remembers the last session
 *   per host:port and offers it.
 * - TLS 1.2, explicit ECDHE AEAD suites and curves (x509util.h tls_conf_defaults).
 * - A TLS bufferevent behaves like a socket bufferevent for its user, and reports
 *   BEV_EVENT_CONNECTED once the handshake has completed (both sides: the server's user
 *   learns the peer's CN from it), BEV_EVENT_ERROR when the handshake or the record layer
 *   fails, BEV_EVENT_EOF on close_notify or TCP close. Freeing it with a pending output first
 *   flushes and sends close_notify (best effort, without blocking).
 * - The user's write callback means "handed to the kernel" (as for a socket bufferevent), so
 *   freeing right after it loses nothing.
 * - STARTTLS (tls_bev_starttls): a plaintext connection becomes TLS in the middle. Bytes the
 *   plaintext side already received stay and are read as TLS (a ClientHello may arrive in the
 *   same read as the request before it); bytes already queued to send go out first, in order.
 * - Every handshake outcome, good or bad, is logged once through log_handshake(), with the
 *   peer's address, and on failure a reason in the user's words (which certificate, which
 *   check, which alert) -- the same words a ctl tool prints and a daemon logs.
 * - A handshake that does not complete in time (default 10 s, tls_ctx_set_handshake_timeout)
 *   fails with BEV_EVENT_ERROR; for tls_bev_connect the deadline includes the TCP connect.
 * - Bytes that are not TLS fail the connection: the log says the peer sent plaintext and shows
 *   its first bytes escaped; the peer gets nothing but a closed connection, unless the
 *   service set an answer for that case (tls_bev_set_plaintext_reply: the HTTPS server's
 *   "400 ... HTTP request to an HTTPS server"). Other connections are unaffected.
 * - Nothing blocks the event loop, except that a host NAME (not an IP literal) given to
 *   tls_bev_connect is resolved with blocking getaddrinfo: use IP literals or "localhost"
 *   between components.
 * - Not thread-safe: a ctx and its connections belong to one event loop thread. A ctx is
 *   reference-counted by its connections, so tls_ctx_free() with connections still open is
 *   fine.
 * - Daemons should ignore SIGPIPE (libevent's own socket writes can raise it).
 */
#ifndef TISIM_TLS_H
#define TISIM_TLS_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct tls_ctx;

enum tls_side { TLS_SERVER, TLS_CLIENT };
enum tls_cn_check { TLS_CN_HANDSHAKE, TLS_CN_SERVICE };
/* Server side: whether clients must present a certificate. REQUIRED (the default, every
 * cluster port): no certificate, no connection. OPTIONAL (TiDB's MySQL port with ssl-ca): a
 * certificate is asked for and, when one
 * comes, it must verify against the CA (else the handshake fails); without one the
 * connection goes on with tls_peer.cert_verified false. NONE (one-way TLS): none is asked
 * for, and ca_path may be NULL (TiDB's MySQL port without ssl-ca, its status port with an
 * empty cluster-verify-cn). */
enum tls_client_auth { TLS_AUTH_REQUIRED = 0, TLS_AUTH_OPTIONAL, TLS_AUTH_NONE };

struct tls_opts {
    const char *role;      /* who we are, for logs: "pd", "tikv", "tidb", "pd-ctl" */
    const char *ca_path;   /* PEM CA bundle, read once */
    const char *cert_path; /* PEM cert (chain), reread per connection; client: may be NULL */
    const char *key_path;  /* PEM private key, reread per connection (with cert_path) */
    /* Server side only: CN allow-list; n_allowed_cn == 0 lets in any cert of the CA. */
    char *const *allowed_cn;
    size_t n_allowed_cn;
    enum tls_cn_check cn_check;
    enum tls_client_auth client_auth; /* server side only */
};

/* NULL with err set ("cannot read CA /x/ca.pem: ...", "cert-path /x/a.pem: ...") on failure.
 * The cert and key are loaded once here too, so a bad config fails at start. */
struct tls_ctx *tls_ctx_new(enum tls_side side, const struct tls_opts *opts, char *err,
                            size_t errlen);
void tls_ctx_free(struct tls_ctx *ctx);

/* STARTTLS: upgrades plain (a connected or connecting socket bufferevent, or one end of a
 * bufferevent_pair in tests: create the pair with BEV_OPT_DEFER_CALLBACKS) to TLS, as the
 * ctx's side. What plain has received and not yet read is kept and read as TLS; what it has
 * queued to send goes out before the handshake. host is what the client dialed (NULL on the
 * server); a client's host is matched against the server certificate's SANs (IP literal or
 * DNS name) and keys the session cache.
 * The returned bufferevent owns plain (BEV_OPT_CLOSE_ON_FREE). NULL on ENOMEM (the caller
 * still owns plain then). Use only the returned bufferevent afterwards. */
struct bufferevent *tls_bev_starttls(struct tls_ctx *ctx, struct event_base *base,
                                     struct bufferevent *plain, const char *host);

/* Server: wrap an accepted fd (closed on failure); fd may be -1 when the socket is set
 * later with bufferevent_setfd (evhttp does that). Client: create a socket bufferevent,
 * connect to host:port (numeric host or name), and wrap it; a connect failure arrives as
 * BEV_EVENT_ERROR with tls_bev_peer()->error "cannot connect to host:port: ...". */
struct bufferevent *tls_bev_accept(struct tls_ctx *ctx, struct event_base *base,
                                   evutil_socket_t fd);
struct bufferevent *tls_bev_connect(struct tls_ctx *ctx, struct event_base *base,
                                    const char *host, int port);
/* Client: a TLS bufferevent over a socket bufferevent that is not connected yet; whoever
 * holds it connects it (bufferevent_socket_connect on the returned bufferevent, as evhttp
 * does), again after a close: each new TCP connection gets a new handshake that resumes
 * the session. */
struct bufferevent *tls_bev_client_new(struct tls_ctx *ctx, struct event_base *base,
                                       const char *host, int port);

/* Server: bytes sent to the peer when it speaks plaintext instead of TLS (NULL: none, the
 * default). Not copied: reply must outlive the connection (a string literal). For a service
 * whose plaintext clients deserve an answer in their protocol. */
int tls_bev_set_plaintext_reply(struct bufferevent *bev, const char *reply);
/* Sends close_notify now (once), ahead of a close the caller cannot hook otherwise (evhttp
 * shuts the socket down before the bufferevent is freed). No-op for a non-TLS bufferevent. */
void tls_bev_close_notify(struct bufferevent *bev);

#define TLS_REASON_LEN 512

/* Filled when BEV_EVENT_CONNECTED arrives (both sides). After BEV_EVENT_ERROR, error says
 * why, in words for the user. */
struct tls_peer {
    bool handshake_done;
    bool cn_allowed;       /* verdict of the allow-list (true when the list is empty) */
    bool resumed;
    char cn[256];          /* peer certificate's subject CN, "" if none */
    bool cert_verified;    /* the peer presented a certificate and it verified */
    char subject[512];     /* its subject, one-line form "/C=US/CN=x" (x509_dn_oneline) */
    char issuer[512];      /* its issuer, same form; both "" without a certificate */
    char addr[64];         /* "127.0.0.1:51234" */
    char version[16];      /* "TLSv1.2" */
    char suite[64];
    char error[TLS_REASON_LEN]; /* why the handshake or connection failed, "" if not */
};

/* Info about the TLS connection behind bev. NULL when bev is not one of ours (plaintext). */
const struct tls_peer *tls_bev_peer(struct bufferevent *bev);

/* Handshake deadline for connections started after the call (default 10000 ms): a peer that
 * does not complete the handshake in time gets BEV_EVENT_ERROR ("did not complete within"). */
void tls_ctx_set_handshake_timeout(struct tls_ctx *ctx, int ms);

/* The subject CN of the certificate in a PEM file (e.g. a daemon's own cert-path, so that
 * peer-only endpoints can admit the CN its peers present). -1 with err naming the file. */
int tls_cert_file_cn(const char *path, char *cn, size_t cnlen, char *err, size_t errlen);
/* The validity dates of the certificate in a PEM file as OpenSSL prints them (what MySQL's
 * Ssl_server_not_before/after show): "Jan  1 00:00:00 2026 GMT". -1 with err naming the file. */
int tls_cert_file_dates(const char *path, char *not_before, char *not_after, size_t len,
                        char *err, size_t errlen);
/* The same validity as Unix times (UTC). */
int tls_cert_file_validity(const char *path, time_t *not_before, time_t *not_after, char *err,
                           size_t errlen);

/* Handshake outcomes of a ctx's connections since it was made (for /metrics): completed in
 * full, completed by resumption, failed (refused, timed out, broken). */
struct tls_stats {
    unsigned long long full, resumed, failed;
};
void tls_ctx_stats(const struct tls_ctx *ctx, struct tls_stats *out);

/* Exact-match allow-list check; an empty list allows everyone. */
bool tls_cn_allowed(const char *cn, char *const *allowed, size_t n);

/* OpenSSL's name of a suite we offer, given mbedTLS's ("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"
 * -> "ECDHE-ECDSA-AES128-GCM-SHA256"): what MySQL servers show in Ssl_cipher and MySQL clients
 * print. Any other name comes back as given. */
const char *tls_suite_openssl_name(const char *suite);

#endif
