/* tls.c — mutual TLS (mbedTLS 2.28) under libevent 2.1 bufferevents. See tls.h.
 *
 * Shape: a bufferevent_filter over the underlying bufferevent (a socket bufferevent, or one
 * end of a bufferevent_pair in tests). mbedTLS's BIO reads the underlying input evbuffer and
 * appends to the underlying output evbuffer; the filter's input/output callbacks only move
 * application data (mbedtls_ssl_read / mbedtls_ssl_write).
 *
 * The 2.1 filter has gaps (docs/transport.md), handled here:
 * - We take over the underlying's callbacks (bufferevent_getcb after bufferevent_filter_new,
 *   then bufferevent_setcb with our wrappers that forward to the filter's own ones). That
 *   lets us drive the handshake from the underlying's read callback whatever the user
 *   enabled, notice a (re)connected socket (evhttp reuses one bufferevent across TCP
 *   connections: bufferevent_setfd(-1) then bufferevent_socket_connect on the filter, which
 *   the filter forwards to the underlying), swallow the TCP-level CONNECTED, and find the
 *   connection state of a filter bufferevent without a global map (tls_bev_peer).
 * - CONNECTED (client), ERROR and EOF are triggered by us, deferred.
 * - Data added to the filter's output schedules a deferred flush (evhttp adds a reply while
 *   EV_WRITE is disabled, then enables it; the filter would never look at it again). The
 *   flush goes through the filter's normal write path, so it never "flushes" an empty
 *   output and never runs a spurious write callback.
 * - mbedtls_ssl_read is drained until WANT_READ; bytes refused with WANT_WRITE stay at the
 *   head of the source buffer and are offered again.
 * - Freeing the filter sends close_notify: the filter's context destructor runs while the
 *   underlying (and its fd) is still alive; it encrypts what the user left in the output,
 *   adds close_notify and writes the underlying output to the socket without blocking
 *   (MSG_NOSIGNAL|MSG_DONTWAIT, best effort). bufferevent_flush(bev, EV_WRITE, BEV_FINISHED)
 *   also sends close_notify.
 *
 * Server cert+key: one "generation" (parsed pair + its mbedtls_ssl_config) is cached in the
 * ctx, keyed by the files' dev/inode/size/mtime, and reference-counted: a connection keeps
 * the generation it started with (mbedtls_ssl_conf_own_cert stores pointers) while new
 * connections pick up a rotated pair. The CA and the ticket key live in the ctx, which is
 * reference-counted by its connections too.
 *
 * Not thread-safe: a ctx and its connections belong to one event loop thread.
 */
#include "tls.h"

#include "log.h"
#include "url.h"
#include "x509util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_struct.h>
#include <event2/util.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_internal.h> /* ssl.handshake->resume: no public API in 2.28 */
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define TLS_DEFAULT_HS_TIMEOUT_MS 10000
#define TLS_MAX_SESSIONS 64
#define TLS_REC_CHUNK 16384

/* ------------------------------------------------------------------------------------------ */
/* ctx, cert generations, client session cache                                                */

struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim;
};

struct tls_gen {
    int refcnt;
    struct tls_ctx *ctx;
    struct file_id cert_id, key_id;
    bool has_cert;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    mbedtls_ssl_config conf;
};

struct tls_sess {
    struct tls_sess *next;
    char key[320];
    mbedtls_ssl_session s;
};

struct tls_ctx {
    int refcnt;
    enum tls_side side;
    char *role, *ca_path, *cert_path, *key_path;
    char **allowed;
    size_t n_allowed;
    enum tls_cn_check cn_check;
    enum tls_client_auth client_auth;
    int hs_timeout_ms;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca;
    mbedtls_ssl_ticket_context ticket;
    struct tls_gen *gen;
    struct tls_sess *sessions;
    size_t n_sessions;
    struct tls_stats stats;
};

static void ctx_unref(struct tls_ctx *ctx);

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool file_id_get(const char *path, struct file_id *id)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtim = st.st_mtim;
    return true;
}

static bool file_id_eq(const struct file_id *a, const struct file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec;
}

/* mbedTLS's loader misreads a directory (an allocation of its "size") and says nothing of
 * permissions: check first that path is a readable regular file. */
static int check_file(const char *what, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0 || access(path, R_OK) != 0) {
        snprintf(err, errlen, "%s %s: cannot read it: %s", what, path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s %s: not a regular file%s", what, path,
                 S_ISDIR(st.st_mode) ? " (it is a directory)" : "");
        return -1;
    }
    return 0;
}

/* Parses a PEM file of certificates; err names what, the path and the cause. */
static int parse_crt_file(mbedtls_x509_crt *crt, const char *what, const char *path, char *err,
                          size_t errlen)
{
    char ebuf[160];
    if (check_file(what, path, err, errlen) != 0)
        return -1;
    int ret = mbedtls_x509_crt_parse_file(crt, path);
    if (ret > 0)
        snprintf(err, errlen, "%s %s: %d certificate(s) could not be parsed", what, path, ret);
    else if (ret < 0)
        snprintf(err, errlen, "%s %s: %s", what, path, tls_strerror(ret, ebuf, sizeof ebuf));
    return ret == 0 ? 0 : -1;
}

static void gen_unref(struct tls_gen *g)
{
    if (!g || --g->refcnt > 0)
        return;
    mbedtls_ssl_config_free(&g->conf);
    mbedtls_x509_crt_free(&g->cert);
    mbedtls_pk_free(&g->key);
    struct tls_ctx *ctx = g->ctx;
    free(g);
    ctx_unref(ctx);
}

/* Loads cert+key (if configured) and builds the ssl config for them. */
static struct tls_gen *gen_load(struct tls_ctx *ctx, char *err, size_t errlen)
{
    char ebuf[160];
    struct tls_gen *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->refcnt = 1;
    g->ctx = ctx;
    ctx->refcnt++;
    mbedtls_x509_crt_init(&g->cert);
    mbedtls_pk_init(&g->key);
    mbedtls_ssl_config_init(&g->conf);

    if (ctx->cert_path) {
        struct file_id c0, k0, c1, k1;
        bool ids = file_id_get(ctx->cert_path, &c0) && file_id_get(ctx->key_path, &k0);
        if (parse_crt_file(&g->cert, "cert-path", ctx->cert_path, err, errlen) != 0)
            goto fail;
        if (check_file("key-path", ctx->key_path, err, errlen) != 0)
            goto fail;
        int ret = mbedtls_pk_parse_keyfile(&g->key, ctx->key_path, NULL);
        if (ret != 0) {
            snprintf(err, errlen, "key-path %s: %s", ctx->key_path,
                     tls_strerror(ret, ebuf, sizeof ebuf));
            goto fail;
        }
        ret = mbedtls_pk_check_pair(&g->cert.pk, &g->key);
        if (ret != 0) {
            snprintf(err, errlen, "cert-path %s and key-path %s do not belong together: %s",
                     ctx->cert_path, ctx->key_path, tls_strerror(ret, ebuf, sizeof ebuf));
            goto fail;
        }
        /* Cache key: only when the files did not change while we read them. */
        if (ids && file_id_get(ctx->cert_path, &c1) && file_id_get(ctx->key_path, &k1) &&
            file_id_eq(&c0, &c1) && file_id_eq(&k0, &k1)) {
            g->cert_id = c0;
            g->key_id = k0;
        }
        g->has_cert = true;
    }

    int ret = mbedtls_ssl_config_defaults(
        &g->conf, ctx->side == TLS_SERVER ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
        MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) {
        snprintf(err, errlen, "TLS config: %s", tls_strerror(ret, ebuf, sizeof ebuf));
        goto fail;
    }
    tls_conf_defaults(&g->conf, mbedtls_ctr_drbg_random, &ctx->drbg);
    mbedtls_ssl_conf_authmode(&g->conf, ctx->client_auth == TLS_AUTH_NONE       ? MBEDTLS_SSL_VERIFY_NONE
                                        : ctx->client_auth == TLS_AUTH_OPTIONAL ? MBEDTLS_SSL_VERIFY_OPTIONAL
                                                                                : MBEDTLS_SSL_VERIFY_REQUIRED);
    if (ctx->ca_path)
        mbedtls_ssl_conf_ca_chain(&g->conf, &ctx->ca, NULL);
    if (g->has_cert) {
        ret = mbedtls_ssl_conf_own_cert(&g->conf, &g->cert, &g->key);
        if (ret != 0) {
            snprintf(err, errlen, "TLS config: %s", tls_strerror(ret, ebuf, sizeof ebuf));
            goto fail;
        }
    }
    if (ctx->side == TLS_SERVER)
        mbedtls_ssl_conf_session_tickets_cb(&g->conf, mbedtls_ssl_ticket_write,
                                            mbedtls_ssl_ticket_parse, &ctx->ticket);
    else
        mbedtls_ssl_conf_session_tickets(&g->conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
    mbedtls_ssl_conf_renegotiation(&g->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    return g;
fail:
    gen_unref(g);
    return NULL;
}

/* The generation for a new connection: the cached one unless the files changed on disk. */
static struct tls_gen *ctx_current_gen(struct tls_ctx *ctx, char *err, size_t errlen)
{
    if (ctx->gen && ctx->cert_path) {
        struct file_id c, k;
        if (!file_id_get(ctx->cert_path, &c) || !file_id_get(ctx->key_path, &k) ||
            !file_id_eq(&c, &ctx->gen->cert_id) || !file_id_eq(&k, &ctx->gen->key_id)) {
            struct tls_gen *g = gen_load(ctx, err, errlen);
            if (!g)
                return NULL; /* fails this connection; the next one tries again */
            gen_unref(ctx->gen);
            ctx->gen = g;
            log_info("TLS: loaded cert-path %s (changed on disk)", ctx->cert_path);
        }
    } else if (!ctx->gen) {
        ctx->gen = gen_load(ctx, err, errlen);
        if (!ctx->gen)
            return NULL;
    }
    ctx->gen->refcnt++;
    return ctx->gen;
}

static void ctx_unref(struct tls_ctx *ctx)
{
    if (!ctx || --ctx->refcnt > 0)
        return;
    struct tls_sess *s = ctx->sessions;
    while (s) {
        struct tls_sess *n = s->next;
        mbedtls_ssl_session_free(&s->s);
        free(s);
        s = n;
    }
    mbedtls_ssl_ticket_free(&ctx->ticket);
    mbedtls_x509_crt_free(&ctx->ca);
    mbedtls_ctr_drbg_free(&ctx->drbg);
    mbedtls_entropy_free(&ctx->entropy);
    for (size_t i = 0; i < ctx->n_allowed; i++)
        free(ctx->allowed[i]);
    free(ctx->allowed);
    free(ctx->role);
    free(ctx->ca_path);
    free(ctx->cert_path);
    free(ctx->key_path);
    free(ctx);
}

struct tls_ctx *tls_ctx_new(enum tls_side side, const struct tls_opts *opts, char *err,
                            size_t errlen)
{
    char ebuf[160];
    bool one_way = side == TLS_SERVER && opts && opts->client_auth == TLS_AUTH_NONE;
    if (!opts || (!opts->ca_path && !one_way)) {
        snprintf(err, errlen, "ca-path is not set");
        return NULL;
    }
    /* A server always presents a cert; a client may present none, but never half a pair. */
    bool wants_pair = side == TLS_SERVER || opts->cert_path || opts->key_path;
    if (wants_pair && (!opts->cert_path || !opts->key_path)) {
        snprintf(err, errlen, "%s is not set", opts->cert_path ? "key-path" : "cert-path");
        return NULL;
    }
    struct tls_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ctx->refcnt = 1;
    ctx->side = side;
    ctx->cn_check = opts->cn_check;
    ctx->client_auth = side == TLS_SERVER ? opts->client_auth : TLS_AUTH_REQUIRED;
    ctx->hs_timeout_ms = TLS_DEFAULT_HS_TIMEOUT_MS;
    mbedtls_entropy_init(&ctx->entropy);
    mbedtls_ctr_drbg_init(&ctx->drbg);
    mbedtls_x509_crt_init(&ctx->ca);
    mbedtls_ssl_ticket_init(&ctx->ticket);
    ctx->role = xstrdup(opts->role ? opts->role : "tisim");
    ctx->ca_path = xstrdup(opts->ca_path);
    ctx->cert_path = xstrdup(opts->cert_path);
    ctx->key_path = xstrdup(opts->key_path);
    if (!ctx->role || (opts->ca_path && !ctx->ca_path) || (opts->cert_path && !ctx->cert_path) ||
        (opts->key_path && !ctx->key_path))
        goto oom;
    if (opts->n_allowed_cn) {
        ctx->allowed = calloc(opts->n_allowed_cn, sizeof *ctx->allowed);
        if (!ctx->allowed)
            goto oom;
        for (size_t i = 0; i < opts->n_allowed_cn; i++) {
            ctx->allowed[i] = xstrdup(opts->allowed_cn[i] ? opts->allowed_cn[i] : "");
            if (!ctx->allowed[i])
                goto oom;
            ctx->n_allowed = i + 1;
        }
    }

    static const char pers[] = "tisim-tls";
    int ret = mbedtls_ctr_drbg_seed(&ctx->drbg, mbedtls_entropy_func, &ctx->entropy,
                                    (const unsigned char *)pers, sizeof pers - 1);
    if (ret != 0) {
        snprintf(err, errlen, "cannot seed the random generator: %s",
                 tls_strerror(ret, ebuf, sizeof ebuf));
        goto fail;
    }
    if (ctx->ca_path && parse_crt_file(&ctx->ca, "cannot read CA", ctx->ca_path, err, errlen) != 0)
        goto fail;
    if (side == TLS_SERVER) {
        ret = mbedtls_ssl_ticket_setup(&ctx->ticket, mbedtls_ctr_drbg_random, &ctx->drbg,
                                       MBEDTLS_CIPHER_AES_256_GCM, 86400);
        if (ret != 0) {
            snprintf(err, errlen, "cannot set up session tickets: %s",
                     tls_strerror(ret, ebuf, sizeof ebuf));
            goto fail;
        }
    }
    ctx->gen = gen_load(ctx, err, errlen);
    if (!ctx->gen)
        goto fail;
    return ctx;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    /* gen_load failed: it dropped its ctx reference already. */
    ctx_unref(ctx);
    return NULL;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (!ctx)
        return;
    /* Drop the cached generation's ctx reference too, unless connections still use it. */
    struct tls_gen *g = ctx->gen;
    ctx->gen = NULL;
    gen_unref(g);
    ctx_unref(ctx);
}

void tls_ctx_set_handshake_timeout(struct tls_ctx *ctx, int ms)
{
    if (ctx)
        ctx->hs_timeout_ms = ms > 0 ? ms : TLS_DEFAULT_HS_TIMEOUT_MS;
}

int tls_cert_file_cn(const char *path, char *cn, size_t cnlen, char *err, size_t errlen)
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    int ret = parse_crt_file(&crt, "cert-path", path, err, errlen) == 0 ? 0 : -1;
    if (ret == 0)
        x509_subject_cn(&crt, cn, cnlen);
    mbedtls_x509_crt_free(&crt);
    return ret;
}

static void format_x509_time(const mbedtls_x509_time *t, char *out, size_t len)
{
    static const char *const MON[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int m = t->mon >= 1 && t->mon <= 12 ? t->mon - 1 : 0;
    snprintf(out, len, "%s %2d %02d:%02d:%02d %d GMT", MON[m], t->day, t->hour, t->min, t->sec,
             t->year);
}

static time_t x509_time_unix(const mbedtls_x509_time *t)
{
    struct tm tm = {.tm_year = t->year - 1900, .tm_mon = t->mon - 1, .tm_mday = t->day,
                    .tm_hour = t->hour, .tm_min = t->min, .tm_sec = t->sec};
    return timegm(&tm);
}

int tls_cert_file_validity(const char *path, time_t *not_before, time_t *not_after, char *err,
                           size_t errlen)
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    int ret = parse_crt_file(&crt, "cert-path", path, err, errlen) == 0 ? 0 : -1;
    if (ret == 0) {
        *not_before = x509_time_unix(&crt.valid_from);
        *not_after = x509_time_unix(&crt.valid_to);
    }
    mbedtls_x509_crt_free(&crt);
    return ret;
}

int tls_cert_file_dates(const char *path, char *not_before, char *not_after, size_t len,
                        char *err, size_t errlen)
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    int ret = parse_crt_file(&crt, "cert-path", path, err, errlen) == 0 ? 0 : -1;
    if (ret == 0) {
        format_x509_time(&crt.valid_from, not_before, len);
        format_x509_time(&crt.valid_to, not_after, len);
    }
    mbedtls_x509_crt_free(&crt);
    return ret;
}

void tls_ctx_stats(const struct tls_ctx *ctx, struct tls_stats *out)
{
    *out = ctx->stats;
}

const char *tls_suite_openssl_name(const char *suite)
{
    static const char *const names[][2] = {
        {"TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
        {"TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
        {"TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
        {"TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
        {"TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
        {"TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    };
    for (size_t i = 0; suite && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(suite, names[i][0]) == 0)
            return names[i][1];
    return suite;
}

bool tls_cn_allowed(const char *cn, char *const *allowed, size_t n)
{
    if (n == 0)
        return true;
    if (!cn)
        return false;
    for (size_t i = 0; i < n; i++)
        if (allowed[i] && strcmp(cn, allowed[i]) == 0)
            return true;
    return false;
}

static struct tls_sess *sess_find(struct tls_ctx *ctx, const char *key)
{
    for (struct tls_sess *s = ctx->sessions; s; s = s->next)
        if (strcmp(s->key, key) == 0)
            return s;
    return NULL;
}

static void sess_store(struct tls_ctx *ctx, const char *key, mbedtls_ssl_context *ssl)
{
    struct tls_sess *s = sess_find(ctx, key);
    if (!s) {
        if (ctx->n_sessions >= TLS_MAX_SESSIONS) { /* drop the oldest (the tail) */
            struct tls_sess **pp = &ctx->sessions;
            while ((*pp)->next)
                pp = &(*pp)->next;
            mbedtls_ssl_session_free(&(*pp)->s);
            free(*pp);
            *pp = NULL;
            ctx->n_sessions--;
        }
        s = calloc(1, sizeof *s);
        if (!s)
            return;
        snprintf(s->key, sizeof s->key, "%s", key);
        mbedtls_ssl_session_init(&s->s);
        s->next = ctx->sessions;
        ctx->sessions = s;
        ctx->n_sessions++;
    } else {
        mbedtls_ssl_session_free(&s->s);
        mbedtls_ssl_session_init(&s->s);
    }
    if (mbedtls_ssl_get_session(ssl, &s->s) != 0) {
        mbedtls_ssl_session_free(&s->s);
        mbedtls_ssl_session_init(&s->s);
    }
}

static void sess_forget(struct tls_ctx *ctx, const char *key)
{
    for (struct tls_sess **pp = &ctx->sessions; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            struct tls_sess *s = *pp;
            *pp = s->next;
            mbedtls_ssl_session_free(&s->s);
            free(s);
            ctx->n_sessions--;
            return;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* connections                                                                                 */

enum conn_state {
    ST_IDLE,      /* client: waiting for the TCP connection */
    ST_HANDSHAKE, /* handshake in progress */
    ST_OPEN,      /* application data flows */
    ST_CLOSED,    /* close_notify or TCP close seen / sent; EOF reported */
    ST_FAILED,    /* error reported */
};

struct tls_conn {
    struct tls_ctx *ctx;
    struct tls_gen *gen;
    struct event_base *base;
    struct bufferevent *bev; /* the filter the user holds */
    struct bufferevent *u;   /* underlying */
    bufferevent_data_cb f_readcb, f_writecb;
    bufferevent_event_cb f_eventcb;
    void *f_arg;
    struct evbuffer_cb_entry *out_cb;
    struct event *timer;    /* handshake deadline */
    struct event *deferred; /* runs the work in todo from the next loop iteration */
    unsigned todo;          /* DO_* */
    short notify_what; /* events for the user, delivered from our own deferred callback */

    bool is_client;
    char *host; /* client: what was dialed */
    int port;   /* client: dialed port, 0 when unknown */
    bool have_sock;
    dev_t sock_dev;
    ino_t sock_ino;

    mbedtls_ssl_context ssl;
    bool ssl_ready;
    enum conn_state state;
    bool attempt_logged; /* one log_handshake per attempt */
    bool verify_called;
    bool resume_seen; /* mbedTLS's own resumption flag, read while the handshake runs */
    bool multi_cn; /* the client certificate's subject has several CNs */
    bool long_cn;  /* ... or a CN too long for peer.cn (never compared cut) */
    uint32_t verify_flags;
    bool close_sent;
    bool busy;         /* inside mbedTLS */
    bool flushing;     /* the filter's output path runs from our flush or a socket write */
    size_t pending_plain; /* head of the filter output already encrypted, not yet sent */
    evutil_socket_t nodelay_fd; /* the fd we set TCP_NODELAY on */
    bool setup_failed; /* server: no usable cert+key for this connection */
    unsigned char first[16]; /* the first bytes the peer sent, to recognise plaintext */
    size_t nfirst;
    const char *plaintext_reply; /* server: sent to a peer that speaks plaintext (not ours) */
    bool addr_known;       /* peer.addr came from getpeername */
    bool peer_gone;        /* a direct send found the connection reset */
    bool batching;         /* server handshake step: records wait for one send */
    struct tls_peer peer;
};

/* Work done from the next loop iteration, in this order (one event per connection for all
 * of it: each event costs memory on every idle connection). */
enum {
    DO_KICK = 1,     /* client: start the handshake on a transport that is already there */
    DO_READMORE = 2, /* mbedTLS holds decrypted records the user has not read yet */
    DO_NOTIFY = 4,   /* report notify_what to the user */
    DO_FLUSH = 8,    /* encrypt what the user queued */
};

static void conn_defer(struct tls_conn *c, unsigned what)
{
    c->todo |= what;
    event_active(c->deferred, EV_WRITE, 0);
}

static void u_readcb(struct bufferevent *u, void *arg);
static void u_writecb(struct bufferevent *u, void *arg);
static void u_eventcb(struct bufferevent *u, short what, void *arg);

/* False once the user freed the filter (bufferevent_free clears the underlying's callbacks);
 * the memory stays valid until the filter's finalizer, which frees us. */
static bool conn_alive(struct tls_conn *c)
{
    bufferevent_data_cb r = NULL;
    void *arg = NULL;
    bufferevent_getcb(c->u, &r, NULL, NULL, &arg);
    return r == u_readcb && arg == c;
}

static struct tls_conn *conn_of(struct bufferevent *bev)
{
    if (!bev)
        return NULL;
    struct bufferevent *u = bufferevent_get_underlying(bev);
    if (!u)
        return NULL;
    bufferevent_data_cb r = NULL;
    void *arg = NULL;
    bufferevent_getcb(u, &r, NULL, NULL, &arg);
    if (r != u_readcb || !arg)
        return NULL;
    struct tls_conn *c = arg;
    return c->bev == bev ? c : NULL;
}

/* The peer's address: from the socket as soon as there is one (evhttp sets the fd after
 * creating the bufferevent; a socket reset by the peer no longer has one), else what the
 * client dialed. */
static void conn_fill_addr(struct tls_conn *c)
{
    if (c->addr_known)
        return;
    evutil_socket_t fd = bufferevent_getfd(c->u);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        url_sockaddr_str((struct sockaddr *)&ss, c->peer.addr, sizeof c->peer.addr);
        c->addr_known = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
        return;
    }
    if (c->host && c->port)
        snprintf(c->peer.addr, sizeof c->peer.addr,
                 strchr(c->host, ':') ? "[%s]:%d" : "%s:%d", c->host, c->port);
    else if (c->host)
        snprintf(c->peer.addr, sizeof c->peer.addr, "%s", c->host);
    else if (bufferevent_pair_get_partner(c->u))
        snprintf(c->peer.addr, sizeof c->peer.addr, "in-process pair");
    else
        snprintf(c->peer.addr, sizeof c->peer.addr, "unknown (socket already closed)");
}

static void conn_session_key(struct tls_conn *c, char *buf, size_t len)
{
    int port = c->port;
    if (!port) {
        evutil_socket_t fd = bufferevent_getfd(c->u);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET)
                port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    snprintf(buf, len, "%s|%d", c->host ? c->host : "", port);
}

static void conn_log(struct tls_conn *c, bool ok)
{
    if (c->attempt_logged)
        return;
    c->attempt_logged = true;
    conn_fill_addr(c);
    if (ok && c->peer.resumed)
        c->ctx->stats.resumed++;
    else if (ok)
        c->ctx->stats.full++;
    else
        c->ctx->stats.failed++;
    struct log_handshake h = {
        .role = c->ctx->role,
        .direction = c->is_client ? "out" : "in",
        .peer = c->peer.addr,
        .peer_cn = c->peer.cn,
        .ok = ok,
        .reason = c->peer.error,
        .version = c->peer.version,
        .suite = c->peer.suite,
        .resumed = c->peer.resumed,
    };
    log_handshake(&h);
}

/* A socket bufferevent freezes the start of its output (only its own write callback may
 * drain it) and the end of its input: drain around that. */
static void buf_drain(struct evbuffer *b, size_t n)
{
    if (n == 0 || evbuffer_drain(b, n) == 0)
        return;
    evbuffer_unfreeze(b, 1);
    evbuffer_drain(b, n);
    evbuffer_freeze(b, 1);
}

static void buf_clear(struct evbuffer *b)
{
    buf_drain(b, evbuffer_get_length(b));
}

/* Writes the underlying output to the socket now, without blocking (best effort): used
 * before the connection goes away, so an alert or close_notify is not lost. */
static void conn_push_now(struct tls_conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->u);
    struct evbuffer *out = bufferevent_get_output(c->u);
    if (fd < 0)
        return;
    while (evbuffer_get_length(out) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(out, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            break;
        ssize_t n = send(fd, v.iov_base, v.iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0)
            break;
        buf_drain(out, (size_t)n);
    }
    if (evbuffer_get_length(out) > 0) /* the rest when the kernel takes it */
        bufferevent_enable(c->u, EV_WRITE);
}

/* Queues bytes for the socket. A server's transport writes with EV_WRITE off while nothing
 * is queued (a socket bufferevent with EV_WRITE on wakes up once per enable just to find its
 * output empty): turn it on whenever something waits. */
static int conn_queue(struct tls_conn *c, const void *data, size_t len)
{
    if (evbuffer_add(bufferevent_get_output(c->u), data, len) != 0)
        return -1;
    bufferevent_enable(c->u, EV_WRITE);
    return 0;
}

/* Reports an event to the user from the next loop iteration. Not bufferevent_trigger_event
 * directly: it drops the event when no callback is set yet (a connection that fails inside
 * tls_bev_starttls, before the user's bufferevent_setcb). */
static void conn_notify(struct tls_conn *c, short what)
{
    c->notify_what |= what;
    conn_defer(c, DO_NOTIFY);
}

/* The deadline's event exists only while a handshake may run: an idle connection does not
 * carry it. (Freeing a timer from its own callback is fine: libevent is done with it.) */
static void conn_disarm(struct tls_conn *c)
{
    if (c->timer)
        event_free(c->timer);
    c->timer = NULL;
}

/* A client's underlying may get a new socket later (evhttp): we notice it by its first
 * write callback, so keep EV_WRITE on (a socket bufferevent drops it on a write error). */
static void conn_watch_reconnect(struct tls_conn *c)
{
    if (c->is_client)
        bufferevent_enable(c->u, EV_WRITE);
}

/* Ends the connection with an error: logs the failed handshake attempt (once), pushes any
 * alert out, and reports BEV_EVENT_ERROR to the user (deferred). */
static void conn_fail(struct tls_conn *c, const char *reason)
{
    if (c->state == ST_FAILED || c->state == ST_CLOSED)
        return;
    enum conn_state was = c->state;
    c->state = ST_FAILED;
    snprintf(c->peer.error, sizeof c->peer.error, "%s", reason);
    conn_disarm(c);
    if (was == ST_HANDSHAKE)
        conn_log(c, false);
    else if (was == ST_OPEN)
        log_warnx("TLS connection with %s (%s) failed: %s", c->peer.addr,
                 c->peer.cn[0] ? c->peer.cn : "no CN", reason);
    conn_push_now(c);
    buf_clear(bufferevent_get_output(c->u));
    buf_clear(bufferevent_get_input(c->u));
    conn_watch_reconnect(c);
    if (c->is_client && was == ST_HANDSHAKE && c->host) {
        /* A session that led to a failure is not offered again. */
        char key[320];
        conn_session_key(c, key, sizeof key);
        sess_forget(c->ctx, key);
    }
    conn_notify(c, BEV_EVENT_ERROR | BEV_EVENT_READING);
}

static void conn_eof(struct tls_conn *c)
{
    if (c->state == ST_FAILED || c->state == ST_CLOSED)
        return;
    c->state = ST_CLOSED;
    conn_push_now(c); /* our close_notify reply, before the user frees us */
    conn_watch_reconnect(c);
    conn_disarm(c);
    conn_notify(c, BEV_EVENT_EOF | BEV_EVENT_READING);
}

/* Reads what the kernel holds for us into the transport's input now (a peer that has just
 * reset the connection may have sent an alert first that says why). */
static void conn_pull_input(struct tls_conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->u);
    struct evbuffer *in = bufferevent_get_input(c->u);
    evbuffer_unfreeze(in, 0);
    while (fd >= 0 && evbuffer_read(in, fd, TLS_REC_CHUNK) > 0)
        ;
    evbuffer_freeze(in, 0);
}

/* Records go straight to the kernel when nothing is queued ahead of them (so order is kept).
 * Queued, each flight would cost the socket bufferevent a write-event round trip (an epoll
 * change, a wakeup, another change): more than the resumed handshake's own work in system
 * calls. What the kernel does not take now is queued, and libevent writes it when it can. */
static int bio_send(void *arg, const unsigned char *buf, size_t len)
{
    struct tls_conn *c = arg;
    struct evbuffer *out = bufferevent_get_output(c->u);
    evutil_socket_t fd = bufferevent_getfd(c->u);
    size_t sent = 0;
    if (c->batching) { /* a server's handshake flight: one send after mbedTLS returns */
        if (evbuffer_add(out, buf, len) != 0)
            return MBEDTLS_ERR_SSL_ALLOC_FAILED;
        return (int)len;
    }
    if (fd >= 0 && c->state != ST_IDLE && !c->peer_gone && evbuffer_get_length(out) == 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent = (size_t)n;
        } else if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            /* Gone: mbedTLS's next read finds the alert it may have sent, or the close. */
            c->peer_gone = true;
            conn_pull_input(c);
            return (int)len;
        }
    }
    if (c->peer_gone)
        return (int)len;
    if (sent < len && conn_queue(c, buf + sent, len - sent) != 0)
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    return (int)len;
}

static int bio_recv(void *arg, unsigned char *buf, size_t len)
{
    struct tls_conn *c = arg;
    int n = evbuffer_remove(bufferevent_get_input(c->u), buf, len);
    if (n <= 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (c->nfirst < sizeof c->first) {
        size_t k = sizeof c->first - c->nfirst;
        if (k > (size_t)n)
            k = (size_t)n;
        memcpy(c->first + c->nfirst, buf, k);
        c->nfirst += k;
    }
    return n;
}

static int verify_cb(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    struct tls_conn *c = arg;
    c->verify_called = true;
    if (depth == 0) {
        bool cut = x509_subject_cn(crt, c->peer.cn, sizeof c->peer.cn) >= sizeof c->peer.cn;
        if (c->is_client) {
            if (!c->host || !x509_host_matches(crt, c->host))
                *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
        } else if (x509_subject_cn_count(crt) > 1 || cut) {
            *flags |= MBEDTLS_X509_BADCERT_OTHER;
            c->multi_cn = !cut;
            c->long_cn = cut;
        } else if (c->ctx->cn_check == TLS_CN_HANDSHAKE &&
                   !(*flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) &&
                   !tls_cn_allowed(c->peer.cn, c->ctx->allowed, c->ctx->n_allowed)) {
            /* (a certificate from another CA is refused for that, with unknown_ca: its CN
             * means nothing, and access_denied would send the operator to the wrong list) */
            /* mbedTLS 2.28 answers BADCERT_OTHER with a fatal access_denied alert. */
            *flags |= MBEDTLS_X509_BADCERT_OTHER;
        }
    }
    c->verify_flags |= *flags;
    return 0;
}

static bool looks_like_plaintext(const unsigned char *p, size_t n)
{
    if (n == 0)
        return false;
    if (p[0] >= 0x14 && p[0] <= 0x18) /* a TLS record type */
        return false;
    if (p[0] == 0x80 || p[0] == 0x00) /* SSLv2-style hello or binary */
        return false;
    for (size_t i = 0; i < n && i < 4; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return false;
    return true;
}

/* What a plaintext peer sent first, for the log: printable ASCII as is, the rest as \xNN. */
static void first_bytes_escaped(const struct tls_conn *c, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < c->nfirst && o + 5 < len; i++) {
        unsigned char ch = c->first[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            buf[o++] = (char)ch;
        else
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", ch);
    }
    buf[o] = '\0';
}

/* Why the server's certificate failed verification, in the words a ctl tool prints. */
static void server_cert_reason(const struct tls_conn *c, uint32_t flags, char *buf, size_t len)
{
    const char *host = c->host ? c->host : "unknown";
    if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) {
        snprintf(buf, len, "the server's certificate is not trusted: it is not signed by the CA "
                 "in %s", c->ctx->ca_path);
    } else if (flags == MBEDTLS_X509_BADCERT_CN_MISMATCH) {
        snprintf(buf, len, "the server's certificate does not match host %s (it has no "
                 "subjectAltName for it)", host);
    } else {
        bool mismatch = flags & MBEDTLS_X509_BADCERT_CN_MISMATCH;
        char why[256];
        tls_verify_reason(flags & ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH, why, sizeof why);
        snprintf(buf, len, "the server's certificate is not trusted: %s%s%s", why,
                 mismatch ? "; it also does not match host " : "", mismatch ? host : "");
    }
}

/* Why the client's certificate failed verification (server side). */
static void client_cert_reason(const struct tls_conn *c, uint32_t flags, char *buf, size_t len)
{
    if (c->multi_cn) {
        snprintf(buf, len, "client certificate rejected: its subject has several Common Name "
                 "attributes (ambiguous: only one is allowed)");
    } else if (c->long_cn) {
        snprintf(buf, len, "client certificate rejected: its Common Name is longer than %zu "
                 "bytes", sizeof c->peer.cn - 1);
    } else if (flags & MBEDTLS_X509_BADCERT_OTHER) {
        snprintf(buf, len, "client certificate rejected: its Common Name \"%s\" is not in the "
                 "allow-list", c->peer.cn);
    } else {
        char why[256];
        tls_verify_reason(flags, why, sizeof why);
        snprintf(buf, len, "client certificate rejected: %s", why);
    }
}

/* A fatal alert the peer sent us, in words. */
static void alert_reason(const struct tls_conn *c, int alert, char *buf, size_t len)
{
    bool presented = c->gen && c->gen->has_cert;
    if (c->is_client && !presented &&
        (alert == MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE ||
         alert == MBEDTLS_SSL_ALERT_MSG_NO_CERT || alert == MBEDTLS_SSL_ALERT_MSG_BAD_CERT ||
         alert == 116 /* certificate_required, TLS 1.3 servers */)) {
        snprintf(buf, len, "the server requires a client certificate and we presented none "
                 "(TLS alert %s)",
                 alert == MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE ? "handshake_failure"
                 : alert == MBEDTLS_SSL_ALERT_MSG_NO_CERT         ? "no_certificate"
                 : alert == MBEDTLS_SSL_ALERT_MSG_BAD_CERT        ? "bad_certificate"
                                                                  : "certificate_required");
        return;
    }
    snprintf(buf, len, "%s", tls_alert_reason(alert, c->is_client));
}

/* One sentence for a failed handshake, from our side's point of view. */
static void handshake_reason(struct tls_conn *c, int ret, char *buf, size_t len)
{
    char ebuf[160];
    const char *peer = c->is_client ? "server" : "client";
    uint32_t vr = c->ssl_ready ? mbedtls_ssl_get_verify_result(&c->ssl) : (uint32_t)-1;
    if (vr == (uint32_t)-1)
        vr = 0;
    if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && c->ssl.in_msg) {
        alert_reason(c, c->ssl.in_msg[1], buf, len);
    } else if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        if (c->is_client)
            server_cert_reason(c, c->verify_flags | vr, buf, len);
        else
            client_cert_reason(c, c->verify_flags | vr, buf, len);
    } else if (ret == MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE &&
               (vr & (MBEDTLS_X509_BADCERT_KEY_USAGE | MBEDTLS_X509_BADCERT_EXT_KEY_USAGE))) {
        char why[256];
        tls_verify_reason(vr, why, sizeof why);
        snprintf(buf, len, "%s certificate rejected: %s (%s)", peer, why,
                 c->is_client ? "a server certificate needs serverAuth"
                              : "a client certificate needs clientAuth");
    } else if (ret == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE ||
               (!c->is_client && ret == MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE &&
                c->peer.cn[0] == '\0')) {
        snprintf(buf, len, "client presented no certificate (a certificate signed by the CA is "
                 "required)");
    } else if (looks_like_plaintext(c->first, c->nfirst)) {
        char shown[sizeof c->first * 4 + 1];
        first_bytes_escaped(c, shown, sizeof shown);
        if (c->is_client)
            snprintf(buf, len, "the server answered in plaintext, not TLS (use an http:// URL, "
                     "or enable TLS on the server)");
        else
            snprintf(buf, len, "client sent plaintext instead of TLS (first bytes \"%s\")%s",
                     shown, c->plaintext_reply ? "; use https://" : "");
    } else if (c->nfirst > 0 && (c->first[0] < 0x14 || c->first[0] > 0x18)) {
        char shown[sizeof c->first * 4 + 1];
        first_bytes_escaped(c, shown, sizeof shown);
        snprintf(buf, len, "the %s sent bytes that are not TLS (first bytes \"%s\")", peer,
                 shown);
    } else if (ret == MBEDTLS_ERR_SSL_CONN_EOF) {
        snprintf(buf, len, "the %s closed the connection during the TLS handshake", peer);
    } else if (ret == MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE ||
               ret == MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION) {
        snprintf(buf, len, "no TLS 1.2 ECDHE AEAD cipher suite in common with the %s (%s)", peer,
                 tls_strerror(ret, ebuf, sizeof ebuf));
    } else {
        snprintf(buf, len, "TLS handshake failed: %s", tls_strerror(ret, ebuf, sizeof ebuf));
    }
}

static void conn_schedule_flush(struct tls_conn *c)
{
    if (c->deferred && evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        conn_defer(c, DO_FLUSH);
}

/* mbedTLS 2.28 keeps the peer's certificate in the session for the connection's whole life
 * (MBEDTLS_SSL_KEEP_PEER_CERTIFICATE): about 1.4 KB on every idle connection. Once the
 * handshake is over, what we need of it (CN, checks) is done; renegotiation is off and the
 * session ticket was written before the end of the handshake, so nothing reads it again. */
static void conn_drop_peer_cert(struct tls_conn *c)
{
#if defined(MBEDTLS_SSL_KEEP_PEER_CERTIFICATE)
    mbedtls_ssl_session *sess = c->ssl.session;
    if (sess && sess->peer_cert) {
        mbedtls_x509_crt_free(sess->peer_cert);
        mbedtls_free(sess->peer_cert);
        sess->peer_cert = NULL;
    }
#else
    (void)c;
#endif
}

#define HS_BAD_OPTIONAL_CERT 1 /* run_handshake: stopped on a client certificate that failed */

/* mbedtls_ssl_handshake's loop, step by step, to learn two things it does not tell: whether
 * the handshake resumes a session (handshake->resume, freed at the end), and, where a client
 * certificate is optional, whether the one presented failed verification -- mbedTLS's
 * VERIFY_OPTIONAL would carry on and send its Finished; we stop before that. */
static int run_handshake(struct tls_conn *c)
{
    while (c->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        int ret = mbedtls_ssl_handshake_step(&c->ssl);
        if (c->ssl.handshake)
            c->resume_seen = c->ssl.handshake->resume != 0;
        if (ret != 0)
            return ret;
        if (c->ctx->client_auth == TLS_AUTH_OPTIONAL && c->verify_called && c->verify_flags &&
            c->ssl.state > MBEDTLS_SSL_CLIENT_CERTIFICATE)
            return HS_BAD_OPTIONAL_CERT;
    }
    return 0;
}

static void refuse_optional_cert(struct tls_conn *c)
{
    char why[TLS_REASON_LEN], flags[256];
    tls_verify_reason(c->verify_flags, flags, sizeof flags);
    snprintf(why, sizeof why, "client certificate rejected: %s", flags);
    mbedtls_ssl_send_alert_message(&c->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                   (c->verify_flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
                                       ? MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA
                                       : (c->verify_flags & MBEDTLS_X509_BADCERT_EXPIRED)
                                             ? MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED
                                             : MBEDTLS_SSL_ALERT_MSG_BAD_CERT);
    conn_fail(c, why);
}

static void fill_cert_names(struct tls_conn *c, const mbedtls_x509_crt *pc)
{
    c->peer.cert_verified = pc != NULL && c->verify_flags == 0;
    c->peer.subject[0] = c->peer.issuer[0] = '\0';
    if (!pc)
        return;
    if (x509_dn_oneline(&pc->subject, c->peer.subject, sizeof c->peer.subject) >=
        sizeof c->peer.subject)
        c->peer.subject[0] = '\0'; /* never a cut name, which could match a prefix */
    if (x509_dn_oneline(&pc->issuer, c->peer.issuer, sizeof c->peer.issuer) >=
        sizeof c->peer.issuer)
        c->peer.issuer[0] = '\0';
}

static void handshake_done(struct tls_conn *c)
{
    const char *v = mbedtls_ssl_get_version(&c->ssl);
    const char *s = mbedtls_ssl_get_ciphersuite(&c->ssl);
    snprintf(c->peer.version, sizeof c->peer.version, "%s", v ? v : "");
    snprintf(c->peer.suite, sizeof c->peer.suite, "%s", s ? s : "");
    /* The verify callback runs on every full handshake with VERIFY_REQUIRED and never on an
     * abbreviated one. Where a client may send no certificate, mbedTLS's own flag decides (a
     * resumed handshake ends with the server's Finished, so it was read while running). */
    c->peer.resumed = c->ctx->client_auth == TLS_AUTH_REQUIRED ? !c->verify_called
                                                               : c->resume_seen;
    const mbedtls_x509_crt *pc = mbedtls_ssl_get_peer_cert(&c->ssl);
    c->peer.cn[0] = '\0';
    bool cn_cut = pc && x509_subject_cn(pc, c->peer.cn, sizeof c->peer.cn) >= sizeof c->peer.cn;
    fill_cert_names(c, pc);
    conn_fill_addr(c);

    /* Again after every handshake: mbedTLS skips the verify callback on resumption, and a
     * session ticket outlives the certificate it was issued for. */
    if (pc && (mbedtls_x509_time_is_past(&pc->valid_to) ||
               mbedtls_x509_time_is_future(&pc->valid_from))) {
        char why[TLS_REASON_LEN];
        snprintf(why, sizeof why, "%s certificate rejected: certificate %s%s",
                 c->is_client ? "server" : "client",
                 mbedtls_x509_time_is_past(&pc->valid_to) ? "has expired" : "is not yet valid",
                 c->peer.resumed ? " (resumed session)" : "");
        mbedtls_ssl_send_alert_message(&c->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                       MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED);
        conn_fail(c, why);
        return;
    }
    if (c->is_client) {
        c->peer.cn_allowed = true;
    } else {
        c->peer.cn_allowed = pc != NULL && !cn_cut &&
                             tls_cn_allowed(c->peer.cn, c->ctx->allowed, c->ctx->n_allowed);
        if (!pc && c->ctx->client_auth != TLS_AUTH_REQUIRED) {
            c->peer.cn_allowed = c->ctx->n_allowed == 0;
        } else if (!pc) {
            mbedtls_ssl_send_alert_message(&c->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                           MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE);
            conn_fail(c, "client presented no certificate (a certificate signed by the CA is "
                         "required)");
            return;
        }
        if (x509_subject_cn_count(pc) > 1) {
            char why[TLS_REASON_LEN];
            snprintf(why, sizeof why, "client certificate rejected: its subject has %d Common "
                     "Name attributes (ambiguous: only one is allowed)", x509_subject_cn_count(pc));
            mbedtls_ssl_send_alert_message(&c->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                           MBEDTLS_SSL_ALERT_MSG_BAD_CERT);
            conn_fail(c, why);
            return;
        }
        if (!c->peer.cn_allowed && c->ctx->cn_check == TLS_CN_HANDSHAKE) {
            char why[TLS_REASON_LEN];
            snprintf(why, sizeof why,
                     "client certificate rejected: its Common Name \"%s\" is not in the "
                     "allow-list%s",
                     c->peer.cn, c->peer.resumed ? " (resumed session)" : "");
            mbedtls_ssl_send_alert_message(&c->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                           MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED);
            conn_fail(c, why);
            return;
        }
    }
    c->state = ST_OPEN;
    c->peer.handshake_done = true;
    c->peer.error[0] = '\0';
    conn_disarm(c);
    conn_log(c, true);
    if (c->is_client) {
        char key[320];
        conn_session_key(c, key, sizeof key);
        sess_store(c->ctx, key, &c->ssl);
    }
    conn_drop_peer_cert(c);
    conn_notify(c, BEV_EVENT_CONNECTED);
    conn_schedule_flush(c);
}

/* Small records (handshake flights, RPCs) must not wait for delayed ACKs (Nagle): a resumed
 * handshake plus one request took 44 ms instead of under 1 ms without this. */
static void conn_nodelay(struct tls_conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->u);
    if (c->nodelay_fd == fd || fd < 0)
        return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails on non-TCP: fine */
    c->nodelay_fd = fd;
}

static void handshake_step(struct tls_conn *c)
{
    if (c->state != ST_HANDSHAKE)
        return;
    conn_nodelay(c);
    conn_fill_addr(c);
    if (c->setup_failed) {
        static const unsigned char alert[] = {MBEDTLS_SSL_MSG_ALERT, 3, 3, 0, 2,
                                              MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                              MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR};
        char why[sizeof c->peer.error];
        snprintf(why, sizeof why, "%s", c->peer.error);
        conn_queue(c, alert, sizeof alert);
        conn_fail(c, why);
        return;
    }
    c->busy = true;
    /* mbedTLS sends each record of a flight on its own; a server's EV_WRITE is off (see
     * conn_queue), so they can gather in the output and leave in one system call. */
    c->batching = !c->is_client && evbuffer_get_length(bufferevent_get_output(c->u)) == 0;
    int ret = run_handshake(c);
    c->batching = false;
    conn_push_now(c);
    c->busy = false;
    if (ret == HS_BAD_OPTIONAL_CERT) {
        refuse_optional_cert(c); /* as handshake_done refuses: outside mbedTLS's own calls */
        return;
    }
    if (ret == 0) {
        handshake_done(c);
        return;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
        return;
    /* Show a little more of what a non-TLS peer sent than mbedTLS consumed. */
    if (c->nfirst < sizeof c->first) {
        ev_ssize_t k = evbuffer_copyout(bufferevent_get_input(c->u), c->first + c->nfirst,
                                        sizeof c->first - c->nfirst);
        if (k > 0)
            c->nfirst += (size_t)k;
    }
    char why[TLS_REASON_LEN];
    handshake_reason(c, ret, why, sizeof why);
    if (ret == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE)
        mbedtls_ssl_send_alert_message(&c->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                       MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE);
    if (!c->is_client && c->plaintext_reply && looks_like_plaintext(c->first, c->nfirst)) {
        struct evbuffer *out = bufferevent_get_output(c->u);
        buf_clear(out);
        conn_queue(c, c->plaintext_reply, strlen(c->plaintext_reply));
    }
    conn_fail(c, why);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg);

static void conn_arm_timer(struct tls_conn *c)
{
    struct timeval tv = {c->ctx->hs_timeout_ms / 1000, (c->ctx->hs_timeout_ms % 1000) * 1000};
    if (!c->timer)
        c->timer = evtimer_new(c->base, timer_cb, c);
    if (c->timer)
        evtimer_add(c->timer, &tv);
}

/* (Re)starts a handshake on the current transport. What the transport holds stays: input
 * may already carry the peer's hello, output plaintext queued before STARTTLS. */
static void conn_start(struct tls_conn *c)
{
    char err[TLS_REASON_LEN];
    if (c->ssl_ready) {
        mbedtls_ssl_free(&c->ssl);
        c->ssl_ready = false;
    }
    gen_unref(c->gen);
    c->gen = NULL;
    char addr[sizeof c->peer.addr];
    memcpy(addr, c->peer.addr, sizeof addr);
    memset(&c->peer, 0, sizeof c->peer);
    if (c->addr_known)
        memcpy(c->peer.addr, addr, sizeof addr);
    c->attempt_logged = false;
    c->verify_called = false;
    c->resume_seen = false;
    c->multi_cn = false;
    c->long_cn = false;
    c->peer_gone = false;
    c->verify_flags = 0;
    c->close_sent = false;
    c->setup_failed = false;
    c->pending_plain = 0;
    c->nodelay_fd = -1; /* a new socket may reuse the old fd number */
    c->nfirst = 0;
    c->state = ST_HANDSHAKE;
    conn_fill_addr(c);

    c->gen = ctx_current_gen(c->ctx, err, sizeof err);
    if (!c->gen) {
        if (!c->is_client) {
            /* Answered when the ClientHello arrives (the fd may not even be set yet under
             * evhttp), with an internal_error alert rather than silence. */
            snprintf(c->peer.error, sizeof c->peer.error, "%s", err);
            c->setup_failed = true;
            conn_arm_timer(c);
            bufferevent_enable(c->bev, EV_READ);
            return;
        }
        conn_fail(c, err);
        return;
    }
    mbedtls_ssl_init(&c->ssl);
    c->ssl_ready = true;
    int ret = mbedtls_ssl_setup(&c->ssl, &c->gen->conf);
    if (ret != 0) {
        char ebuf[160];
        snprintf(err, sizeof err, "TLS setup failed: %s", tls_strerror(ret, ebuf, sizeof ebuf));
        conn_fail(c, err);
        return;
    }
    mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);
    mbedtls_ssl_set_verify(&c->ssl, verify_cb, c);
    if (c->is_client && c->host) {
        struct in6_addr tmp;
        bool is_ip = inet_pton(AF_INET, c->host, &tmp) == 1 ||
                     inet_pton(AF_INET6, c->host, &tmp) == 1;
        if (!is_ip) /* SNI; the name itself is checked in verify_cb (IP SANs too) */
            mbedtls_ssl_set_hostname(&c->ssl, c->host);
        char key[320];
        conn_session_key(c, key, sizeof key);
        struct tls_sess *s = sess_find(c->ctx, key);
        if (s)
            mbedtls_ssl_set_session(&c->ssl, &s->s);
    }
    conn_arm_timer(c);
    /* The handshake needs to read, whatever the user enabled (docs/transport.md). And a socket
     * bufferevent disables its own EV_READ on EOF and EV_WRITE on a write error: undo that
     * on a reused underlying (evhttp reconnects on the same bufferevent). A server writes
     * with EV_WRITE off while nothing is queued (conn_queue). */
    bufferevent_enable(c->u, c->is_client ? EV_READ | EV_WRITE : EV_READ);
    bufferevent_enable(c->bev, EV_READ);
    handshake_step(c);
}

/* Is the underlying's socket a new one (client reconnect under evhttp)? */
static bool conn_new_socket(struct tls_conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->u);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return false;
    if (c->have_sock && st.st_dev == c->sock_dev && st.st_ino == c->sock_ino)
        return false;
    c->have_sock = true;
    c->sock_dev = st.st_dev;
    c->sock_ino = st.st_ino;
    return true;
}

/* A new TCP connection under a client (first connect, or evhttp reconnecting on the same
 * bufferevent): what the previous one left in the buffers is stale. */
static void conn_connected(struct tls_conn *c)
{
    buf_clear(bufferevent_get_input(c->u));
    buf_clear(bufferevent_get_output(c->u));
    c->addr_known = false;
    evutil_socket_t fd = bufferevent_getfd(c->u);
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, (void *)&soerr, &sl) == 0 && soerr) {
        char why[TLS_REASON_LEN];
        snprintf(why, sizeof why, "cannot connect to %s:%d: %s", c->host ? c->host : "?",
                 c->port, evutil_socket_error_to_string(soerr));
        memset(&c->peer, 0, sizeof c->peer);
        c->state = ST_IDLE; /* no handshake was attempted: nothing to log */
        conn_fail(c, why);
        return;
    }
    conn_start(c);
}

/* ---- underlying callbacks (wrapping the filter's own) ---- */

static void u_readcb(struct bufferevent *u, void *arg)
{
    struct tls_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(u);
    if (c->busy) { /* re-entered (a pair without deferred callbacks): come back later */
        conn_defer(c, DO_READMORE);
        return;
    }
    if (c->state == ST_HANDSHAKE) {
        handshake_step(c);
        if (c->state == ST_HANDSHAKE)
            return;
        /* if now open, application data may follow the Finished message */
    }
    if (c->state == ST_OPEN)
        c->f_readcb(u, c->f_arg);
    else
        evbuffer_drain(in, evbuffer_get_length(in));
}

static void u_writecb(struct bufferevent *u, void *arg)
{
    struct tls_conn *c = arg;
    if (c->busy) { /* re-entered from our own BIO write (pairs): flush later */
        conn_defer(c, DO_FLUSH);
        return;
    }
    if (c->is_client && conn_new_socket(c)) {
        conn_connected(c);
        return;
    }
    if (c->state == ST_OPEN) {
        c->flushing = true;
        c->f_writecb(u, c->f_arg);
        c->flushing = false;
    }
}

static void u_eventcb(struct bufferevent *u, short what, void *arg)
{
    struct tls_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) { /* TCP only: ours comes after the handshake */
        if (c->is_client && conn_new_socket(c))
            conn_connected(c);
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    char why[TLS_REASON_LEN];
    switch (c->state) {
    case ST_IDLE:
        if (what & BEV_EVENT_ERROR) {
            snprintf(why, sizeof why, "cannot connect to %s:%d: %s", c->host ? c->host : "?",
                     c->port, evutil_socket_error_to_string(err));
            conn_fail(c, why);
        }
        return;
    case ST_HANDSHAKE:
        if (what & BEV_EVENT_EOF) {
            if (!c->is_client && c->nfirst == 0)
                snprintf(why, sizeof why, "the client closed the connection before sending "
                                          "anything");
            else
                snprintf(why, sizeof why,
                         "the %s closed the connection during the TLS handshake%s",
                         c->is_client ? "server" : "client",
                         c->is_client ? " (it may have refused our certificate)" : "");
        } else if (what & BEV_EVENT_TIMEOUT) {
            snprintf(why, sizeof why, "timeout during the TLS handshake");
        } else {
            snprintf(why, sizeof why, "connection error during the TLS handshake: %s",
                     evutil_socket_error_to_string(err));
        }
        conn_fail(c, why);
        return;
    case ST_OPEN:
        if (what & BEV_EVENT_EOF) {
            conn_eof(c);
        } else if (what & BEV_EVENT_ERROR) {
            snprintf(why, sizeof why, "connection error: %s", evutil_socket_error_to_string(err));
            c->state = ST_CLOSED; /* the user hears it from the filter's own forwarding */
            snprintf(c->peer.error, sizeof c->peer.error, "%s", why);
            conn_disarm(c);
            conn_watch_reconnect(c);
            c->f_eventcb(u, what, c->f_arg);
        } else {
            c->f_eventcb(u, what, c->f_arg);
        }
        return;
    default:
        return;
    }
}

/* ---- filter callbacks ---- */

static enum bufferevent_filter_result filter_in(struct evbuffer *src, struct evbuffer *dst,
                                                ev_ssize_t limit,
                                                enum bufferevent_flush_mode mode, void *arg)
{
    (void)mode;
    struct tls_conn *c = arg;
    if (c->state != ST_OPEN) {
        if (c->state != ST_HANDSHAKE)
            evbuffer_drain(src, evbuffer_get_length(src));
        return BEV_NEED_MORE;
    }
    size_t produced = 0;
    for (;;) {
        if (limit >= 0 && produced >= (size_t)limit) {
            if (mbedtls_ssl_check_pending(&c->ssl))
                conn_defer(c, DO_READMORE);
            break;
        }
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(dst, TLS_REC_CHUNK, &v, 1) < 1)
            break;
        size_t want = v.iov_len;
        if (limit >= 0 && want > (size_t)limit - produced)
            want = (size_t)limit - produced;
        c->busy = true;
        int ret = mbedtls_ssl_read(&c->ssl, v.iov_base, want);
        c->busy = false;
        if (ret > 0) {
            v.iov_len = (size_t)ret;
            evbuffer_commit_space(dst, &v, 1);
            produced += (size_t)ret;
            continue;
        }
        v.iov_len = 0;
        evbuffer_commit_space(dst, &v, 1);
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
            break;
        if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == 0) {
            if (!c->close_sent) {
                c->close_sent = true;
                mbedtls_ssl_close_notify(&c->ssl);
            }
            conn_eof(c);
            break;
        }
        char ebuf[160], why[256];
        if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && c->ssl.in_msg)
            snprintf(why, sizeof why, "TLS alert from the peer: %s",
                     tls_alert_reason(c->ssl.in_msg[1], c->is_client));
        else
            snprintf(why, sizeof why, "TLS record error: %s",
                     tls_strerror(ret, ebuf, sizeof ebuf));
        conn_fail(c, why);
        break;
    }
    return produced ? BEV_OK : BEV_NEED_MORE;
}

static enum bufferevent_filter_result filter_out(struct evbuffer *src, struct evbuffer *dst,
                                                 ev_ssize_t limit,
                                                 enum bufferevent_flush_mode mode, void *arg)
{
    (void)dst;
    struct tls_conn *c = arg;
    if (c->state == ST_FAILED || c->state == ST_CLOSED) {
        bool had = evbuffer_get_length(src) > 0;
        evbuffer_drain(src, evbuffer_get_length(src));
        if (had) /* libevent ignores BEV_ERROR: say it ourselves */
            conn_notify(c, BEV_EVENT_ERROR | BEV_EVENT_WRITING);
        return BEV_ERROR;
    }
    if (c->state != ST_OPEN)
        return BEV_NEED_MORE; /* flushed once the handshake is done */
    if (mode == BEV_NORMAL && !c->flushing) {
        /* Called synchronously from the user's evbuffer_add: encrypting now would run the
         * write callback before the user finished (evhttp writes the request, then sets the
         * callback that waits for "written"). Batch it into one deferred flush instead. */
        conn_schedule_flush(c);
        return BEV_NEED_MORE;
    }
    /* The user's write callback must mean "handed to the kernel", as with a socket
     * bufferevent: evhttp frees the connection (and shuts the socket down) right after the
     * last reply byte is "written". So plaintext leaves src only once its ciphertext has been
     * sent; until then it stays at the head of src (c->pending_plain bytes, already
     * encrypted), which also keeps the output from looking drained. */
    bool wait_kernel = mode == BEV_NORMAL;
    struct evbuffer *uout = bufferevent_get_output(c->u);
    size_t consumed = 0;
    conn_push_now(c);
    if (c->pending_plain && (!wait_kernel || evbuffer_get_length(uout) == 0)) {
        evbuffer_drain(src, c->pending_plain);
        consumed += c->pending_plain;
        c->pending_plain = 0;
    }
    while (evbuffer_get_length(src) > c->pending_plain) {
        if (wait_kernel && evbuffer_get_length(uout) > 0)
            break; /* the kernel is full: go on from u_writecb */
        if (limit >= 0 && consumed >= (size_t)limit)
            break;
        size_t n = evbuffer_get_length(src) - c->pending_plain;
        if (n > TLS_REC_CHUNK)
            n = TLS_REC_CHUNK;
        unsigned char *p = evbuffer_pullup(src, (ev_ssize_t)(c->pending_plain + n));
        if (!p)
            break;
        /* After WANT_WRITE mbedTLS must see the same bytes again: they stay at the head. */
        c->busy = true;
        int ret = mbedtls_ssl_write(&c->ssl, p + c->pending_plain, n);
        c->busy = false;
        if (ret > 0) {
            c->pending_plain += (size_t)ret;
            conn_push_now(c);
            if (!wait_kernel || evbuffer_get_length(uout) == 0) {
                evbuffer_drain(src, c->pending_plain);
                consumed += c->pending_plain;
                c->pending_plain = 0;
            }
            continue;
        }
        if (ret == MBEDTLS_ERR_SSL_WANT_WRITE || ret == MBEDTLS_ERR_SSL_WANT_READ)
            break;
        char ebuf[160], why[256];
        snprintf(why, sizeof why, "TLS write error: %s", tls_strerror(ret, ebuf, sizeof ebuf));
        conn_fail(c, why);
        return BEV_ERROR;
    }
    if (mode == BEV_FINISHED && evbuffer_get_length(src) == 0 && !c->close_sent) {
        c->close_sent = true;
        mbedtls_ssl_close_notify(&c->ssl);
        conn_push_now(c);
        return BEV_OK;
    }
    return consumed ? BEV_OK : BEV_NEED_MORE;
}

/* ---- our deferred events ---- */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tls_conn *c = arg;
    if (!conn_alive(c) || (c->state != ST_HANDSHAKE && c->state != ST_IDLE))
        return;
    char why[TLS_REASON_LEN];
    if (c->state == ST_IDLE)
        snprintf(why, sizeof why, "cannot connect to %s:%d: no answer within %d ms",
                 c->host ? c->host : "?", c->port, c->ctx->hs_timeout_ms);
    else
        snprintf(why, sizeof why, "TLS handshake did not complete within %d ms",
                 c->ctx->hs_timeout_ms);
    conn_fail(c, why);
}

static void kick(struct tls_conn *c)
{
    if (!conn_alive(c) || c->state != ST_IDLE)
        return;
    if (bufferevent_getfd(c->u) < 0 && !bufferevent_pair_get_partner(c->u))
        return; /* a socket bufferevent without a socket yet: start when it connects */
    conn_new_socket(c); /* remember the socket, if any */
    conn_start(c);
}

static void flush(struct tls_conn *c)
{
    if (!conn_alive(c) || c->state != ST_OPEN)
        return;
    /* Through the filter's normal path: it looks at EV_WRITE and a non-empty output itself,
     * so this never runs a spurious write callback. */
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 &&
        (bufferevent_get_enabled(c->bev) & EV_WRITE)) {
        c->flushing = true;
        c->f_writecb(c->u, c->f_arg);
        c->flushing = false;
    }
}

static void notify(struct tls_conn *c)
{
    short ev = c->notify_what;
    c->notify_what = 0;
    if (!conn_alive(c) || !ev)
        return;
    bufferevent_trigger_event(c->bev, ev, 0);
}

/* The user may free the connection from the notification; the memory stays valid until the
 * filter's finalizer (a later loop iteration), and each step checks conn_alive. */
static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tls_conn *c = arg;
    unsigned todo = c->todo;
    c->todo = 0;
    if (todo & DO_KICK)
        kick(c);
    if ((todo & DO_READMORE) && conn_alive(c))
        u_readcb(c->u, c);
    if (todo & DO_NOTIFY)
        notify(c);
    if (todo & DO_FLUSH)
        flush(c);
}

static void out_added_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct tls_conn *c = arg;
    if (info->n_added && c->state == ST_OPEN && c->deferred)
        conn_defer(c, DO_FLUSH);
}

void tls_bev_close_notify(struct bufferevent *bev)
{
    struct tls_conn *c = conn_of(bev);
    if (!c || c->state != ST_OPEN || !c->ssl_ready || c->close_sent)
        return;
    c->close_sent = true;
    mbedtls_ssl_close_notify(&c->ssl);
    conn_push_now(c);
}

int tls_bev_set_plaintext_reply(struct bufferevent *bev, const char *reply)
{
    struct tls_conn *c = conn_of(bev);
    if (!c)
        return -1;
    c->plaintext_reply = reply;
    return 0;
}

static void conn_free_events(struct tls_conn *c)
{
    struct event *events[] = {c->timer, c->deferred};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        if (events[i])
            event_free(events[i]);
}

/* Runs from the filter's finalizer: the underlying and its fd are still alive. */
static void conn_free(void *arg)
{
    struct tls_conn *c = arg;
    if (c->state == ST_OPEN && c->ssl_ready) {
        struct evbuffer *src = bufferevent_get_output(c->bev);
        evbuffer_drain(src, c->pending_plain); /* encrypted already */
        c->pending_plain = 0;
        while (evbuffer_get_length(src) > 0) { /* what the user left: send it if we can */
            size_t n = evbuffer_get_length(src);
            if (n > TLS_REC_CHUNK)
                n = TLS_REC_CHUNK;
            unsigned char *p = evbuffer_pullup(src, (ev_ssize_t)n);
            int ret = p ? mbedtls_ssl_write(&c->ssl, p, n) : -1;
            if (ret <= 0)
                break;
            evbuffer_drain(src, (size_t)ret);
        }
        if (!c->close_sent)
            mbedtls_ssl_close_notify(&c->ssl);
        conn_push_now(c);
    } else if (c->state == ST_HANDSHAKE && (!c->is_client || c->ssl_ready)) {
        snprintf(c->peer.error, sizeof c->peer.error,
                 "connection closed locally during the TLS handshake");
        conn_log(c, false);
    }
    /* libevent 2.1's filter re-arms its generic write timeout (BEV_RESET_GENERIC_WRITE_TIMEOUT)
     * after the finalizer has already cancelled it, and then frees the memory with the timer
     * still in the base's heap: a use-after-free found under valgrind. This runs last, just
     * before that free, so the timers go here. */
    event_del(&c->bev->ev_read);
    event_del(&c->bev->ev_write);
    if (c->out_cb)
        evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
    conn_free_events(c);
    if (c->ssl_ready)
        mbedtls_ssl_free(&c->ssl);
    gen_unref(c->gen);
    ctx_unref(c->ctx);
    free(c->host);
    free(c);
}

/* Server: the handshake starts now (waiting for the ClientHello). Client: wait_connect false
 * starts it from the next loop iteration (transport connected or connecting: tls_bev_starttls);
 * true waits for the TCP connection (tls_bev_connect, or evhttp's connect on the filter). */
static struct bufferevent *wrap(struct tls_ctx *ctx, struct event_base *base,
                                struct bufferevent *u, const char *host, int port,
                                bool wait_connect)
{
    struct tls_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ctx = ctx;
    c->base = base;
    c->u = u;
    c->is_client = ctx->side == TLS_CLIENT;
    c->port = port;
    c->state = ST_IDLE;
    c->nodelay_fd = -1;
    if (host && !(c->host = strdup(host))) {
        free(c);
        return NULL;
    }
    c->deferred = event_new(base, -1, 0, deferred_cb, c);
    struct bufferevent *bev = NULL;
    if (c->deferred)
        bev = bufferevent_filter_new(u, filter_in, filter_out, BEV_OPT_CLOSE_ON_FREE, conn_free,
                                     c);
    if (!bev) {
        conn_free_events(c);
        free(c->host);
        free(c);
        return NULL;
    }
    ctx->refcnt++;
    c->bev = bev;
    bufferevent_getcb(u, &c->f_readcb, &c->f_writecb, &c->f_eventcb, &c->f_arg);
    bufferevent_setcb(u, u_readcb, u_writecb, u_eventcb, c);
    c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), out_added_cb, c);

    if (!c->is_client) {
        conn_start(c);
    } else if (!wait_connect) {
        if (bufferevent_getfd(u) >= 0)
            conn_new_socket(c); /* STARTTLS: this socket is not a new connection */
        conn_defer(c, DO_KICK);
    }
    return bev;
}

struct bufferevent *tls_bev_starttls(struct tls_ctx *ctx, struct event_base *base,
                                     struct bufferevent *plain, const char *host)
{
    if (!ctx || !base || !plain)
        return NULL;
    return wrap(ctx, base, plain, host, 0, false);
}

/* The socket is set last, once the filter has enabled and suspended what it wanted: each of
 * those steps on a live socket is a system call (epoll_ctl), on no socket it is free. */
struct bufferevent *tls_bev_accept(struct tls_ctx *ctx, struct event_base *base,
                                   evutil_socket_t fd)
{
    struct bufferevent *u = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    struct bufferevent *bev = u ? wrap(ctx, base, u, NULL, 0, false) : NULL;
    if (!bev) {
        if (u)
            bufferevent_free(u);
        if (fd >= 0)
            evutil_closesocket(fd);
        return NULL;
    }
    bufferevent_disable(u, EV_WRITE); /* nothing to write yet: see conn_queue */
    if (fd >= 0)
        bufferevent_setfd(u, fd);
    return bev;
}

struct bufferevent *tls_bev_connect(struct tls_ctx *ctx, struct event_base *base,
                                    const char *host, int port)
{
    struct bufferevent *u = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!u)
        return NULL;
    struct bufferevent *bev = wrap(ctx, base, u, host, port, true);
    if (!bev) {
        bufferevent_free(u);
        return NULL;
    }
    /* The deadline covers the TCP connect too (evhttp has its own connect timeout). */
    conn_arm_timer(conn_of(bev));
    if (bufferevent_socket_connect_hostname(u, NULL, AF_UNSPEC, host, port) != 0) {
        struct tls_conn *c = conn_of(bev);
        char why[TLS_REASON_LEN];
        snprintf(why, sizeof why, "cannot connect to %s:%d: %s", host, port,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        conn_fail(c, why);
    }
    return bev;
}

struct bufferevent *tls_bev_client_new(struct tls_ctx *ctx, struct event_base *base,
                                       const char *host, int port)
{
    if (!ctx || !base || !host || port <= 0 || port > 65535)
        return NULL;
    struct bufferevent *u = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!u)
        return NULL;
    struct bufferevent *bev = wrap(ctx, base, u, host, port, true);
    if (!bev)
        bufferevent_free(u);
    return bev;
}

const struct tls_peer *tls_bev_peer(struct bufferevent *bev)
{
    struct tls_conn *c = conn_of(bev);
    return c ? &c->peer : NULL;
}
