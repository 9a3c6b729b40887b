#include "bare.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "x509util.h"

struct bare_tls {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca, cert;
    mbedtls_pk_context key;
    mbedtls_ssl_ticket_context ticket;
    mbedtls_ssl_config conf;
    bool verified; /* the verify callback ran in the current handshake: a full one */
    /* Records are gathered here and sent with one write per flight, as real TLS stacks do
     * (and as the transport does through its evbuffer); one connection uses it at a time. */
    unsigned char out[MBEDTLS_SSL_OUT_CONTENT_LEN + 1024];
    size_t out_len;
};

struct bare_conn {
    mbedtls_ssl_context ssl;
    mbedtls_net_context net;
    struct bare_tls *t;
};

static int flush_out(struct bare_conn *bc)
{
    struct bare_tls *t = bc->t;
    size_t off = 0;
    while (off < t->out_len) {
        int k = mbedtls_net_send(&bc->net, t->out + off, t->out_len - off);
        if (k <= 0) {
            t->out_len = 0;
            return k < 0 ? k : MBEDTLS_ERR_NET_SEND_FAILED;
        }
        off += (size_t)k;
    }
    t->out_len = 0;
    return 0;
}

static int bio_send(void *arg, const unsigned char *buf, size_t len)
{
    struct bare_conn *bc = arg;
    struct bare_tls *t = bc->t;
    if (t->out_len + len > sizeof t->out) {
        int ret = flush_out(bc);
        if (ret != 0)
            return ret;
    }
    if (len > sizeof t->out)
        return mbedtls_net_send(&bc->net, buf, len);
    memcpy(t->out + t->out_len, buf, len);
    t->out_len += len;
    return (int)len;
}

static int bio_recv(void *arg, unsigned char *buf, size_t len)
{
    struct bare_conn *bc = arg;
    int ret = flush_out(bc); /* our flight goes out before we wait for the answer */
    return ret != 0 ? ret : mbedtls_net_recv(&bc->net, buf, len);
}

static int fail_with(char *err, size_t errlen, const char *what, int ret)
{
    char e[128];
    mbedtls_strerror(ret, e, sizeof e);
    snprintf(err, errlen, "%s: %s", what, e);
    return -1;
}

static int verify_cb(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    (void)crt;
    (void)depth;
    (void)flags;
    ((struct bare_tls *)arg)->verified = true;
    return 0;
}

static void bare_tls_free(struct bare_tls *t)
{
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_ssl_ticket_free(&t->ticket);
    mbedtls_pk_free(&t->key);
    mbedtls_x509_crt_free(&t->cert);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
}

static int bare_tls_load(struct bare_tls *t, bool server, const struct bench_certs *c, char *err,
                         size_t errlen)
{
    static const char pers[] = "tisim-bench-bare";
    int ret = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
                                    (const unsigned char *)pers, sizeof pers - 1);
    if (ret != 0)
        return fail_with(err, errlen, "seed", ret);
    if ((ret = mbedtls_x509_crt_parse_file(&t->ca, c->ca)) != 0)
        return fail_with(err, errlen, c->ca, ret);
    const char *cert = server ? c->server_cert : c->client_cert;
    const char *key = server ? c->server_key : c->client_key;
    if ((ret = mbedtls_x509_crt_parse_file(&t->cert, cert)) != 0)
        return fail_with(err, errlen, cert, ret);
    if ((ret = mbedtls_pk_parse_keyfile(&t->key, key, NULL)) != 0)
        return fail_with(err, errlen, key, ret);
    if (server && (ret = mbedtls_ssl_ticket_setup(&t->ticket, mbedtls_ctr_drbg_random, &t->drbg,
                                                  MBEDTLS_CIPHER_AES_256_GCM, 86400)) != 0)
        return fail_with(err, errlen, "ticket setup", ret);
    return 0;
}

/* The settings common/tls.c uses (gen_load), without libevent or the transport around them. */
static int bare_tls_init(struct bare_tls *t, bool server, const struct bench_certs *c, char *err,
                         size_t errlen)
{
    memset(t, 0, sizeof *t);
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_x509_crt_init(&t->cert);
    mbedtls_pk_init(&t->key);
    mbedtls_ssl_ticket_init(&t->ticket);
    mbedtls_ssl_config_init(&t->conf);
    int ret = bare_tls_load(t, server, c, err, errlen);
    if (ret == 0 &&
        (ret = mbedtls_ssl_config_defaults(&t->conf,
                                           server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                           MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
        ret = fail_with(err, errlen, "config", ret);
    if (ret == 0) {
        tls_conf_defaults(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
        mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
        mbedtls_ssl_conf_verify(&t->conf, verify_cb, t);
        mbedtls_ssl_conf_renegotiation(&t->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
        if (server)
            mbedtls_ssl_conf_session_tickets_cb(&t->conf, mbedtls_ssl_ticket_write,
                                                mbedtls_ssl_ticket_parse, &t->ticket);
        else
            mbedtls_ssl_conf_session_tickets(&t->conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
        if ((ret = mbedtls_ssl_conf_own_cert(&t->conf, &t->cert, &t->key)) != 0)
            ret = fail_with(err, errlen, "own cert", ret);
    }
    if (ret != 0)
        bare_tls_free(t);
    return ret;
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int conn_setup(struct bare_tls *t, struct bare_conn *bc, char *err, size_t errlen)
{
    int ret = mbedtls_ssl_setup(&bc->ssl, &t->conf);
    if (ret != 0)
        return fail_with(err, errlen, "ssl setup", ret);
    bc->t = t;
    t->out_len = 0;
    mbedtls_ssl_set_bio(&bc->ssl, bc, bio_send, bio_recv, NULL);
    return 0;
}

static int handshake(struct bare_tls *t, struct bare_conn *bc, char *err, size_t errlen)
{
    int ret;
    t->verified = false;
    do
        ret = mbedtls_ssl_handshake(&bc->ssl);
    while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
    if (ret == 0)
        ret = flush_out(bc);
    if (ret != 0)
        return fail_with(err, errlen, "handshake", ret);
    return 0;
}

/* Reads one byte and answers with reply (server) or expects it (client). */
static int byte_exchange(struct bare_conn *bc, bool server, char *err, size_t errlen)
{
    unsigned char b = 0;
    int ret;
    if (!server && (ret = mbedtls_ssl_write(&bc->ssl, (const unsigned char *)"x", 1)) != 1)
        return fail_with(err, errlen, "write", ret);
    if ((ret = mbedtls_ssl_read(&bc->ssl, &b, 1)) != 1)
        return fail_with(err, errlen, "read", ret);
    if (server && (ret = mbedtls_ssl_write(&bc->ssl, (const unsigned char *)"k", 1)) != 1)
        return fail_with(err, errlen, "write", ret);
    if ((ret = flush_out(bc)) != 0)
        return fail_with(err, errlen, "write", ret);
    return 0;
}

static void conn_close(struct bare_conn *bc)
{
    mbedtls_ssl_free(&bc->ssl);
    mbedtls_net_free(&bc->net);
}

/* One accepted connection; a held one stays open in bc. Returns 0, 1 when this connection
 * failed (closed), -1 when accept failed. */
static int serve_one(struct bare_tls *t, int lfd, struct bare_conn *bc, bool hold,
                     struct bench_result *r)
{
    mbedtls_ssl_init(&bc->ssl);
    mbedtls_net_init(&bc->net);
    bc->net.fd = accept(lfd, NULL, NULL);
    if (bc->net.fd < 0) {
        snprintf(r->error, sizeof r->error, "accept failed");
        return -1;
    }
    nodelay(bc->net.fd);
    char err[sizeof r->error];
    if (conn_setup(t, bc, err, sizeof err) != 0 || handshake(t, bc, err, sizeof err) != 0 ||
        byte_exchange(bc, true, err, sizeof err) != 0) {
        if (!r->error[0])
            snprintf(r->error, sizeof r->error, "%s", err);
        r->failed++;
        conn_close(bc);
        return 1;
    }
    if (t->verified)
        r->full_seen++;
    else
        r->resumed_seen++;
    snprintf(r->suite, sizeof r->suite, "%s", mbedtls_ssl_get_ciphersuite(&bc->ssl));
    if (hold)
        return 0;
    unsigned char b;
    int ret;
    while ((ret = mbedtls_ssl_read(&bc->ssl, &b, 1)) > 0) /* until close_notify or EOF */
        ;
    if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) { /* answered, as the transport does */
        mbedtls_ssl_close_notify(&bc->ssl);
        flush_out(bc);
    }
    conn_close(bc);
    return 0;
}

void bare_server(int lfd, const struct bench_certs *c, const struct bench_plan *p,
                 struct bench_result *r)
{
    struct bare_tls t;
    if (bare_tls_init(&t, true, c, r->error, sizeof r->error) != 0) {
        r->failed = 1;
        return;
    }
    int hold_start = p->warm + p->full + p->resumed, total = hold_start + p->hold, n_held = 0;
    struct bare_conn **held = calloc((size_t)p->hold + 1, sizeof *held);
    struct bench_mark t0 = {0, 0, 0};
    for (int i = 0; held && i <= total; i++) {
        bench_phase(i, p, r, &t0);
        /* Each connection's state is allocated as it comes, as the transport does. */
        struct bare_conn *bc = i < total ? calloc(1, sizeof *bc) : NULL;
        int ret = bc ? serve_one(&t, lfd, bc, i >= hold_start, r) : -1;
        if (ret == 0 && i >= hold_start)
            held[n_held++] = bc;
        else
            free(bc);
        if (ret < 0)
            break;
    }
    for (int i = 0; i < n_held; i++) {
        conn_close(held[i]);
        free(held[i]);
    }
    free(held);
    close(lfd);
    bare_tls_free(&t);
}

struct bare_client {
    struct bare_tls t;
    mbedtls_ssl_session session;
    bool have_session;
    char suite[64];
};

struct bare_client *bare_client_new(const struct bench_certs *c, char *err, size_t errlen)
{
    struct bare_client *cl = calloc(1, sizeof *cl);
    if (!cl) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (bare_tls_init(&cl->t, false, c, err, errlen) != 0) {
        free(cl);
        return NULL;
    }
    mbedtls_ssl_session_init(&cl->session);
    return cl;
}

void bare_client_free(struct bare_client *cl)
{
    if (!cl)
        return;
    mbedtls_ssl_session_free(&cl->session);
    bare_tls_free(&cl->t);
    free(cl);
}

const char *bare_client_suite(const struct bare_client *cl)
{
    return cl->suite;
}

static void client_keep_session(struct bare_client *cl, struct bare_conn *bc)
{
    mbedtls_ssl_session_free(&cl->session);
    mbedtls_ssl_session_init(&cl->session);
    cl->have_session = mbedtls_ssl_get_session(&bc->ssl, &cl->session) == 0;
    snprintf(cl->suite, sizeof cl->suite, "%s", mbedtls_ssl_get_ciphersuite(&bc->ssl));
}

int bare_client_once(struct bare_client *cl, int port, bool resume, int *keep_fd, char *err,
                     size_t errlen)
{
    struct bare_conn bc;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    mbedtls_ssl_init(&bc.ssl);
    mbedtls_net_init(&bc.net);
    int ret = mbedtls_net_connect(&bc.net, "127.0.0.1", ps, MBEDTLS_NET_PROTO_TCP);
    if (ret != 0) {
        fail_with(err, errlen, "connect", ret);
    } else {
        nodelay(bc.net.fd);
        ret = conn_setup(&cl->t, &bc, err, errlen);
    }
    if (ret == 0) {
        ret = mbedtls_ssl_set_hostname(&bc.ssl, "localhost");
        if (ret == 0 && resume && cl->have_session)
            ret = mbedtls_ssl_set_session(&bc.ssl, &cl->session);
        if (ret != 0)
            fail_with(err, errlen, "session", ret);
    }
    if (ret == 0)
        ret = handshake(&cl->t, &bc, err, errlen);
    if (ret == 0) {
        client_keep_session(cl, &bc);
        ret = byte_exchange(&bc, false, err, errlen);
    }
    if (ret == 0 && keep_fd) {
        *keep_fd = bc.net.fd;
        bc.net.fd = -1;
    } else if (ret == 0) {
        mbedtls_ssl_close_notify(&bc.ssl);
        flush_out(&bc);
    }
    conn_close(&bc);
    return ret == 0 ? 0 : -1;
}
