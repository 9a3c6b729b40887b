#include "tlsdial.h"

#include "url.h"
#include "x509util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 10000
#define MAX_HEADER_BYTES (64 * 1024)
#define MAX_BODY_BYTES (64 * 1024 * 1024)

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* One line, always. */
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

/* ---------------------------------------------------------------------------------------- */
/* HTTP response parsing                                                                    */

static const char *find_header_end(const char *buf, size_t len, size_t *hdr_len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n') {
            *hdr_len = i + 2;
            return buf + i + 2;
        }
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
            *hdr_len = i + 3;
            return buf + i + 3;
        }
    }
    return NULL;
}

/* Finds "\n" in [p, end); returns the line length without "\r\n", or -1. */
static long line_len(const char *p, const char *end, const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
        return -1;
    *next = nl + 1;
    const char *e = nl;
    if (e > p && e[-1] == '\r')
        e--;
    return (long)(e - p);
}

struct http_head {
    int status;
    bool chunked;
    bool has_length;
    unsigned long long length;
};

static int parse_head(const char *buf, size_t hdr_len, struct http_head *h, char *err,
                      size_t errlen)
{
    memset(h, 0, sizeof *h);
    const char *end = buf + hdr_len;
    const char *next;
    long n = line_len(buf, end, &next);
    /* "HTTP/1.1 200 OK" */
    if (n < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' ||
        !isdigit((unsigned char)buf[9]) || !isdigit((unsigned char)buf[10]) ||
        !isdigit((unsigned char)buf[11]) || (n > 12 && buf[12] != ' ')) {
        seterr(err, errlen, "the server's answer is not an HTTP response");
        return -1;
    }
    h->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (h->status < 100) {
        seterr(err, errlen, "the server's answer is not an HTTP response (status %d)", h->status);
        return -1;
    }
    const char *p = next;
    while (p < end) {
        n = line_len(p, end, &next);
        if (n <= 0)
            break;
        const char *colon = memchr(p, ':', (size_t)n);
        if (colon) {
            size_t nlen = (size_t)(colon - p);
            const char *v = colon + 1;
            const char *ve = p + n;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t vlen = (size_t)(ve - v);
            if (nlen == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
                /* The last coding decides; we only know chunked. */
                if (vlen >= 7 && strncasecmp(ve - 7, "chunked", 7) == 0)
                    h->chunked = true;
            } else if (nlen == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
                unsigned long long v_num = 0;
                if (vlen == 0 || vlen > 18) {
                    seterr(err, errlen, "the server sent an invalid Content-Length");
                    return -1;
                }
                for (size_t i = 0; i < vlen; i++) {
                    if (!isdigit((unsigned char)v[i])) {
                        seterr(err, errlen, "the server sent an invalid Content-Length");
                        return -1;
                    }
                    v_num = v_num * 10 + (unsigned)(v[i] - '0');
                }
                if (h->has_length && h->length != v_num) {
                    seterr(err, errlen, "the server sent conflicting Content-Length headers");
                    return -1;
                }
                h->has_length = true;
                h->length = v_num;
            }
        }
        p = next;
    }
    if (h->has_length && h->length > MAX_BODY_BYTES && !h->chunked) {
        seterr(err, errlen, "the server's response is too large (%llu bytes)", h->length);
        return -1;
    }
    return 0;
}

static int fill_resp(struct https_response *resp, int status, const char *body, size_t len,
                     char *err, size_t errlen)
{
    char *b = malloc(len + 1);
    if (!b) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    if (len)
        memcpy(b, body, len);
    b[len] = '\0';
    resp->status = status;
    resp->body = b;
    resp->body_len = len;
    return 1;
}

/* Decodes a chunked body from [p, end). Returns 1 complete, 0 need more, -1 malformed. The
 * decoded body goes to *out (heap) only when complete. */
static int parse_chunked(const char *p, const char *end, bool eof, char **out, size_t *out_len,
                         char *err, size_t errlen)
{
    /* First pass: validate and size. */
    size_t total = 0;
    const char *q = p;
    for (;;) {
        const char *next;
        long n = line_len(q, end, &next);
        if (n < 0) {
            if (end - q > 1024) {
                seterr(err, errlen, "the server sent a malformed chunked body");
                return -1;
            }
            goto need_more;
        }
        size_t size = 0;
        long i = 0;
        for (; i < n && isxdigit((unsigned char)q[i]); i++) {
            if (size > (SIZE_MAX >> 4) || size > MAX_BODY_BYTES) {
                seterr(err, errlen, "the server's response is too large");
                return -1;
            }
            int c = tolower((unsigned char)q[i]);
            size = size * 16 + (size_t)(isdigit(c) ? c - '0' : c - 'a' + 10);
        }
        if (i == 0 || (i < n && q[i] != ';' && q[i] != ' ' && q[i] != '\t')) {
            seterr(err, errlen, "the server sent a malformed chunked body");
            return -1;
        }
        if (size == 0)
            break; /* trailers, if any, are not needed */
        if (total + size > MAX_BODY_BYTES) {
            seterr(err, errlen, "the server's response is too large");
            return -1;
        }
        if ((size_t)(end - next) < size + 2) {
            /* Allow the final CRLF to be a bare LF only when complete data is present. */
            goto need_more;
        }
        if (next[size] == '\r' && next[size + 1] == '\n')
            q = next + size + 2;
        else if (next[size] == '\n')
            q = next + size + 1;
        else {
            seterr(err, errlen, "the server sent a malformed chunked body");
            return -1;
        }
        total += size;
    }
    /* Second pass: copy. */
    char *b = malloc(total + 1);
    if (!b) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    size_t o = 0;
    q = p;
    while (o < total) {
        const char *next = q;
        (void)line_len(q, end, &next);
        size_t size = strtoul(q, NULL, 16);
        memcpy(b + o, next, size);
        o += size;
        q = next + size + (next[size] == '\r' ? 2 : 1);
    }
    b[total] = '\0';
    *out = b;
    *out_len = total;
    return 1;

need_more:
    if (eof) {
        seterr(err, errlen, "the connection closed before the whole response arrived");
        return -1;
    }
    return 0;
}

int http_response_parse(const char *buf, size_t len, bool eof, struct https_response *resp,
                        char *err, size_t errlen)
{
    memset(resp, 0, sizeof *resp);
    for (;;) {
        size_t hdr_len = 0;
        const char *body = find_header_end(buf, len, &hdr_len);
        if (!body) {
            if (len >= 5 && (memcmp(buf, "HTTP/", 5) != 0)) {
                if ((unsigned char)buf[0] == 0x15 && (unsigned char)buf[1] == 0x03)
                    seterr(err, errlen, "the server answered with TLS: use an https:// URL");
                else
                    seterr(err, errlen, "the server's answer is not an HTTP response");
                return -1;
            }
            if (len > MAX_HEADER_BYTES) {
                seterr(err, errlen, "the server's response headers are too large");
                return -1;
            }
            if (eof) {
                if (len == 0)
                    seterr(err, errlen, "the server closed the connection without a response");
                else if ((unsigned char)buf[0] == 0x15 && len > 1 && (unsigned char)buf[1] == 0x03)
                    seterr(err, errlen, "the server answered with TLS: use an https:// URL");
                else
                    seterr(err, errlen, "the connection closed before the whole response arrived");
                return -1;
            }
            return 0;
        }
        struct http_head h;
        if (parse_head(buf, hdr_len, &h, err, errlen) < 0)
            return -1;
        const char *end = buf + len;
        if (h.status >= 100 && h.status < 200 && h.status != 101) {
            /* Interim response (100 Continue, 103 Early Hints): skip it. */
            buf = body;
            len = (size_t)(end - body);
            continue;
        }
        if (h.status == 204 || h.status == 304)
            return fill_resp(resp, h.status, "", 0, err, errlen);
        if (h.chunked) {
            char *out = NULL;
            size_t out_len = 0;
            int r = parse_chunked(body, end, eof, &out, &out_len, err, errlen);
            if (r == 1) {
                resp->status = h.status;
                resp->body = out;
                resp->body_len = out_len;
            }
            return r;
        }
        size_t have = (size_t)(end - body);
        if (h.has_length) {
            if (have >= h.length)
                return fill_resp(resp, h.status, body, (size_t)h.length, err, errlen);
            if (eof) {
                seterr(err, errlen,
                       "the connection closed before the whole response arrived "
                       "(%zu of %llu body bytes)", have, h.length);
                return -1;
            }
            return 0;
        }
        if (have > MAX_BODY_BYTES) {
            seterr(err, errlen, "the server's response is too large");
            return -1;
        }
        if (!eof)
            return 0;
        return fill_resp(resp, h.status, body, have, err, errlen);
    }
}

void https_response_free(struct https_response *resp)
{
    if (!resp)
        return;
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Connection                                                                               */

struct dial {
    int fd;
    int timeout_ms;
    const struct url *url;
    char where[300]; /* host:port for messages */
    bool tls;
    bool timed_out;
    int sys_errno;    /* errno of the last failed send/recv */
    int late_alert;   /* alert seen in the socket after a reset, or -1 */
    bool handshaking;
    mbedtls_ssl_context ssl;
};

static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int left = timeout_ms;
    for (;;) {
        int r = poll(&pfd, 1, left);
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -1;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        left = timeout_ms - (int)spent;
        if (left <= 0)
            return 0;
    }
}

/* A fatal alert from the server may arrive while we are still writing our flight; the write
 * then fails with a reset and mbedTLS never reads the alert. Peek for a plaintext alert
 * record (type 21, TLS 1.x, length 2) so the user still learns why. */
static void peek_alert(struct dial *d)
{
    if (!d->tls || !d->handshaking || d->late_alert >= 0)
        return;
    unsigned char b[7];
    ssize_t n = recv(d->fd, b, sizeof b, MSG_PEEK | MSG_DONTWAIT);
    if (n == 7 && b[0] == 0x15 && b[1] == 0x03 && b[3] == 0 && b[4] == 2 && b[5] == 2)
        d->late_alert = b[6];
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct dial *d = ctx;
    for (;;) {
        int r = wait_fd(d->fd, POLLOUT, d->timeout_ms);
        if (r == 0) {
            d->timed_out = true;
            return MBEDTLS_ERR_SSL_TIMEOUT;
        }
        if (r < 0) {
            d->sys_errno = errno;
            return MBEDTLS_ERR_NET_SEND_FAILED;
        }
        ssize_t n = send(d->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return (int)n;
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            continue;
        d->sys_errno = errno;
        if (errno == EPIPE || errno == ECONNRESET) {
            peek_alert(d);
            return MBEDTLS_ERR_NET_CONN_RESET;
        }
        return MBEDTLS_ERR_NET_SEND_FAILED;
    }
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct dial *d = ctx;
    for (;;) {
        int r = wait_fd(d->fd, POLLIN, d->timeout_ms);
        if (r == 0) {
            d->timed_out = true;
            return MBEDTLS_ERR_SSL_TIMEOUT;
        }
        if (r < 0) {
            d->sys_errno = errno;
            return MBEDTLS_ERR_NET_RECV_FAILED;
        }
        ssize_t n = recv(d->fd, buf, len, 0);
        if (n >= 0)
            return (int)n;
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            continue;
        d->sys_errno = errno;
        if (errno == ECONNRESET || errno == EPIPE)
            return MBEDTLS_ERR_NET_CONN_RESET;
        return MBEDTLS_ERR_NET_RECV_FAILED;
    }
}

static int tcp_connect(struct dial *d, char *err, size_t errlen)
{
    char port[8];
    snprintf(port, sizeof port, "%d", d->url->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_protocol = IPPROTO_TCP};
    struct addrinfo *res = NULL;
    int gr = getaddrinfo(d->url->host, port, &hints, &res);
    if (gr != 0) {
        seterr(err, errlen, "cannot connect to %s: cannot resolve host '%s': %s", d->where,
               d->url->host, gai_strerror(gr));
        return -1;
    }
    int last_errno = 0;
    bool timed_out = false;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, d->timeout_ms);
            if (w == 0) {
                timed_out = true;
                close(fd);
                continue;
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (w < 0)
                soerr = errno;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                soerr = errno;
            r = soerr ? -1 : 0;
            errno = soerr;
        }
        if (r < 0) {
            last_errno = errno;
            close(fd);
            continue;
        }
        /* Back to blocking; every read and write waits in poll() with the timeout. */
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        d->fd = fd;
        freeaddrinfo(res);
        return 0;
    }
    freeaddrinfo(res);
    if (last_errno)
        seterr(err, errlen, "cannot connect to %s: %s", d->where, strerror(last_errno));
    else if (timed_out)
        seterr(err, errlen, "cannot connect to %s: timed out after %d ms", d->where,
               d->timeout_ms);
    else
        seterr(err, errlen, "cannot connect to %s", d->where);
    return -1;
}

static int verify_cb(void *p, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    const struct dial *d = p;
    if (depth == 0 && !x509_host_matches(crt, d->url->host))
        *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    return 0;
}

static bool is_ip_literal(const char *host)
{
    unsigned char b[16];
    return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

/* Explains a failed handshake in one line. */
static void handshake_error(struct dial *d, int ret, const struct tls_files *files, char *err,
                            size_t errlen)
{
    char mb[160];
    bool presented = files->cert_path && *files->cert_path;
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        uint32_t flags = mbedtls_ssl_get_verify_result(&d->ssl);
        if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) {
            seterr(err, errlen, "the server's certificate is not trusted: it is not signed by "
                   "the CA in %s", files->ca_path);
        } else if (flags == MBEDTLS_X509_BADCERT_CN_MISMATCH) {
            seterr(err, errlen, "the server's certificate does not match host %s (it has no "
                   "subjectAltName for it)", d->url->host);
        } else {
            char why[256];
            tls_verify_reason(flags & ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH, why, sizeof why);
            seterr(err, errlen, "the server's certificate is not trusted: %s%s%s", why,
                   (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) ? "; it also does not match host "
                                                               : "",
                   (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) ? d->url->host : "");
        }
        return;
    }
    int alert = -1;
    if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && d->ssl.in_msg)
        alert = d->ssl.in_msg[1];
    else if (d->late_alert >= 0)
        alert = d->late_alert;
    if (alert < 0 && (ret == MBEDTLS_ERR_NET_CONN_RESET || ret == MBEDTLS_ERR_SSL_CONN_EOF)) {
        d->late_alert = -1;
        d->handshaking = true;
        peek_alert(d);
        alert = d->late_alert;
    }
    if (alert >= 0) {
        if (!presented && (alert == MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE ||
                           alert == MBEDTLS_SSL_ALERT_MSG_NO_CERT ||
                           alert == MBEDTLS_SSL_ALERT_MSG_BAD_CERT ||
                           alert == 116 /* certificate_required */)) {
            seterr(err, errlen, "the server requires a client certificate and we presented "
                   "none (TLS alert %s)",
                   alert == MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE ? "handshake_failure"
                   : alert == MBEDTLS_SSL_ALERT_MSG_NO_CERT         ? "no_certificate"
                   : alert == MBEDTLS_SSL_ALERT_MSG_BAD_CERT        ? "bad_certificate"
                                                                    : "certificate_required");
        } else {
            const char *why = tls_alert_reason(alert, true);
            if (strstr(why, "TLS alert"))
                seterr(err, errlen, "%s", why);
            else
                seterr(err, errlen, "%s (TLS alert %d)", why, alert);
        }
        return;
    }
    if (d->timed_out) {
        seterr(err, errlen, "TLS handshake with %s timed out after %d ms", d->where,
               d->timeout_ms);
        return;
    }
    if (ret == MBEDTLS_ERR_SSL_INVALID_RECORD || ret == MBEDTLS_ERR_SSL_BAD_HS_SERVER_HELLO ||
        ret == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE || ret == MBEDTLS_ERR_SSL_BAD_INPUT_DATA) {
        if (d->ssl.in_hdr && memcmp(d->ssl.in_hdr, "HTTP", 4) == 0) {
            seterr(err, errlen, "TLS handshake with %s failed: the server answered plain HTTP "
                   "(use an http:// URL, or enable TLS on the server)", d->where);
            return;
        }
    }
    if (ret == MBEDTLS_ERR_NET_CONN_RESET || ret == MBEDTLS_ERR_SSL_CONN_EOF) {
        seterr(err, errlen, "TLS handshake with %s failed: the server closed the connection%s",
               d->where,
               presented ? "" : " (it may require a client certificate)");
        return;
    }
    if (ret == MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE ||
        ret == MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION) {
        seterr(err, errlen, "TLS handshake with %s failed: no TLS 1.2 ECDHE AEAD cipher suite "
               "in common (%s)", d->where, tls_strerror(ret, mb, sizeof mb));
        return;
    }
    if (d->sys_errno && (ret == MBEDTLS_ERR_NET_SEND_FAILED || ret == MBEDTLS_ERR_NET_RECV_FAILED)) {
        seterr(err, errlen, "TLS handshake with %s failed: %s", d->where, strerror(d->sys_errno));
        return;
    }
    seterr(err, errlen, "TLS handshake with %s failed: %s", d->where,
           tls_strerror(ret, mb, sizeof mb));
}

static int conn_write_all(struct dial *d, const char *buf, size_t len, char *err, size_t errlen)
{
    size_t off = 0;
    while (off < len) {
        int n;
        size_t chunk = len - off > 16384 ? 16384 : len - off;
        if (d->tls)
            n = mbedtls_ssl_write(&d->ssl, (const unsigned char *)buf + off, chunk);
        else
            n = bio_send(d, (const unsigned char *)buf + off, chunk);
        if (n == MBEDTLS_ERR_SSL_WANT_WRITE || n == MBEDTLS_ERR_SSL_WANT_READ)
            continue;
        if (n <= 0) {
            char mb[128];
            if (d->timed_out)
                seterr(err, errlen, "sending the request to %s timed out after %d ms", d->where,
                       d->timeout_ms);
            else if (d->sys_errno)
                seterr(err, errlen, "sending the request to %s failed: %s", d->where,
                       strerror(d->sys_errno));
            else
                seterr(err, errlen, "sending the request to %s failed: %s", d->where,
                       tls_strerror(n, mb, sizeof mb));
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

/* Returns bytes read, 0 at end of stream, -1 on error (err set). */
static int conn_read(struct dial *d, char *buf, size_t len, char *err, size_t errlen)
{
    for (;;) {
        int n;
        if (d->tls)
            n = mbedtls_ssl_read(&d->ssl, (unsigned char *)buf, len);
        else
            n = bio_recv(d, (unsigned char *)buf, len);
        if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE)
            continue;
        if (n >= 0)
            return n;
        if (n == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || n == MBEDTLS_ERR_SSL_CONN_EOF ||
            n == MBEDTLS_ERR_NET_CONN_RESET)
            return 0;
        if (n == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE && d->ssl.in_msg) {
            int alert = d->ssl.in_msg[1];
            seterr(err, errlen, "reading the response from %s failed: %s", d->where,
                   tls_alert_reason(alert, true));
            return -1;
        }
        char mb[128];
        if (d->timed_out)
            seterr(err, errlen, "no response from %s within %d ms", d->where, d->timeout_ms);
        else if (d->sys_errno)
            seterr(err, errlen, "reading the response from %s failed: %s", d->where,
                   strerror(d->sys_errno));
        else
            seterr(err, errlen, "reading the response from %s failed: %s", d->where,
                   tls_strerror(n, mb, sizeof mb));
        return -1;
    }
}

static int load_tls_files(const struct tls_files *f, mbedtls_x509_crt *ca, mbedtls_x509_crt *crt,
                          mbedtls_pk_context *key, bool *have_cert, char *err, size_t errlen)
{
    char mb[128];
    *have_cert = false;
    if (!f || !f->ca_path || !*f->ca_path) {
        seterr(err, errlen, "an https URL needs a CA certificate file to verify the server");
        return -1;
    }
    int r = mbedtls_x509_crt_parse_file(ca, f->ca_path);
    if (r < 0) {
        seterr(err, errlen, "cannot read CA file %s: %s", f->ca_path,
               r == MBEDTLS_ERR_PK_FILE_IO_ERROR ? "cannot open or read the file"
                                                 : tls_strerror(r, mb, sizeof mb));
        return -1;
    }
    if (r > 0 && ca->raw.p == NULL) {
        seterr(err, errlen, "cannot read CA file %s: no valid certificate in it", f->ca_path);
        return -1;
    }
    bool has_cert = f->cert_path && *f->cert_path;
    bool has_key = f->key_path && *f->key_path;
    if (has_cert != has_key) {
        seterr(err, errlen, "a client certificate needs both a certificate file and a key file "
               "(%s given without %s)", has_cert ? "certificate" : "key",
               has_cert ? "key" : "certificate");
        return -1;
    }
    if (!has_cert)
        return 0;
    r = mbedtls_x509_crt_parse_file(crt, f->cert_path);
    if (r != 0) {
        seterr(err, errlen, "cannot read certificate file %s: %s", f->cert_path,
               r == MBEDTLS_ERR_X509_FILE_IO_ERROR ? "cannot open or read the file"
               : r > 0                             ? "it holds an invalid certificate"
                                                   : tls_strerror(r, mb, sizeof mb));
        return -1;
    }
    r = mbedtls_pk_parse_keyfile(key, f->key_path, NULL);
    if (r != 0) {
        const char *why;
        if (r == MBEDTLS_ERR_PK_FILE_IO_ERROR)
            why = "cannot open or read the file";
        else if (r == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || r == MBEDTLS_ERR_PK_PASSWORD_MISMATCH)
            why = "the key is protected by a password; an unencrypted key is needed";
        else
            why = "it holds no valid private key in PEM or DER form";
        seterr(err, errlen, "cannot read key file %s: %s", f->key_path, why);
        return -1;
    }
    if (mbedtls_pk_check_pair(&crt->pk, key) != 0) {
        seterr(err, errlen, "the key in %s does not belong to the certificate in %s",
               f->key_path, f->cert_path);
        return -1;
    }
    *have_cert = true;
    return 0;
}

static char *build_request(const struct url *u, const char *method, const char *path,
                           const char *body, size_t *out_len)
{
    char hostport[300];
    bool https = url_is_https(u);
    bool default_port = (https && u->port == 443) || (!https && u->port == 80);
    if (default_port)
        snprintf(hostport, sizeof hostport, strchr(u->host, ':') ? "[%s]" : "%s", u->host);
    else
        url_host_port(u, hostport, sizeof hostport);
    size_t blen = body ? strlen(body) : 0;
    bool send_len = body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                    strcmp(method, "PATCH") == 0;
#define REQ_HEAD "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tisim\r\nAccept: " \
                 "application/json, */*\r\nConnection: close\r\n"
    int n = snprintf(NULL, 0, REQ_HEAD, method, path, hostport);
    if (n < 0)
        return NULL;
    size_t cap = (size_t)n + blen + 128;
    char *req = malloc(cap);
    if (!req)
        return NULL;
    size_t o = (size_t)snprintf(req, cap, REQ_HEAD, method, path, hostport);
#undef REQ_HEAD
    if (body)
        o += (size_t)snprintf(req + o, cap - o, "Content-Type: application/json\r\n");
    if (send_len)
        o += (size_t)snprintf(req + o, cap - o, "Content-Length: %zu\r\n", blen);
    o += (size_t)snprintf(req + o, cap - o, "\r\n");
    if (blen)
        memcpy(req + o, body, blen);
    *out_len = o + blen;
    return req;
}

static bool token_ok(const char *s, bool path)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f)
            return false;
        if (!path && !isalpha(c))
            return false;
    }
    return true;
}

int https_request(const char *url, const char *method, const char *path, const char *body,
                  const struct tls_files *files, int timeout_ms, struct https_response *resp,
                  char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    memset(resp, 0, sizeof *resp);
    struct url u;
    if (!url || url_parse(url, false, &u, err, errlen) < 0) {
        if (!url)
            seterr(err, errlen, "empty URL");
        return -1;
    }
    bool tls = url_is_https(&u);
    if (!method)
        method = "GET";
    if (!path || !*path)
        path = "/";
    if (!token_ok(method, false) || !token_ok(path, true) || path[0] != '/') {
        seterr(err, errlen, "invalid HTTP method or path");
        return -1;
    }

    struct dial d;
    memset(&d, 0, sizeof d);
    d.fd = -1;
    d.timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
    d.url = &u;
    d.tls = tls;
    d.late_alert = -1;
    url_host_port(&u, d.where, sizeof d.where);

    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca, crt;
    mbedtls_pk_context key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_init(&d.ssl);
    mbedtls_ssl_config_init(&conf);
    mbedtls_x509_crt_init(&ca);
    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&key);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);

    int rc = -1;
    char *req = NULL;
    char *buf = NULL;
    char mb[128];

    if (tls) {
        bool have_cert;
        if (load_tls_files(files, &ca, &crt, &key, &have_cert, err, errlen) < 0)
            goto out;
        static const unsigned char pers[] = "tisim-tlsdial";
        int r = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, pers, sizeof pers - 1);
        if (r != 0) {
            seterr(err, errlen, "cannot seed the random generator: %s", tls_strerror(r, mb, sizeof mb));
            goto out;
        }
        r = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                        MBEDTLS_SSL_PRESET_DEFAULT);
        if (r != 0) {
            seterr(err, errlen, "TLS setup failed: %s", tls_strerror(r, mb, sizeof mb));
            goto out;
        }
        tls_conf_defaults(&conf, mbedtls_ctr_drbg_random, &drbg);
        mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
        mbedtls_ssl_conf_verify(&conf, verify_cb, &d);
        if (have_cert && (r = mbedtls_ssl_conf_own_cert(&conf, &crt, &key)) != 0) {
            seterr(err, errlen, "TLS setup failed: %s", tls_strerror(r, mb, sizeof mb));
            goto out;
        }
        if ((r = mbedtls_ssl_setup(&d.ssl, &conf)) != 0) {
            seterr(err, errlen, "TLS setup failed: %s", tls_strerror(r, mb, sizeof mb));
            goto out;
        }
        /* SNI and mbedTLS's own name check for DNS names; IP literals are checked only by
         * verify_cb (2.28 cannot match IP SANs, and SNI must not carry an IP). */
        if (!is_ip_literal(u.host) && (r = mbedtls_ssl_set_hostname(&d.ssl, u.host)) != 0) {
            seterr(err, errlen, "TLS setup failed: %s", tls_strerror(r, mb, sizeof mb));
            goto out;
        }
        mbedtls_ssl_set_bio(&d.ssl, &d, bio_send, bio_recv, NULL);
    }

    if (tcp_connect(&d, err, errlen) < 0)
        goto out;

    if (tls) {
        d.handshaking = true;
        int r;
        while ((r = mbedtls_ssl_handshake(&d.ssl)) != 0) {
            if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
                continue;
            handshake_error(&d, r, files, err, errlen);
            goto out;
        }
        d.handshaking = false;
    }

    size_t req_len = 0;
    req = build_request(&u, method, path, body, &req_len);
    if (!req) {
        seterr(err, errlen, "out of memory");
        goto out;
    }
    if (conn_write_all(&d, req, req_len, err, errlen) < 0)
        goto out;

    size_t cap = 16384, len = 0;
    buf = malloc(cap + 1);
    if (!buf) {
        seterr(err, errlen, "out of memory");
        goto out;
    }
    bool eof = false;
    for (;;) {
        char perr[200];
        int pr = http_response_parse(buf, len, eof, resp, perr, sizeof perr);
        if (pr == 1)
            break;
        if (pr < 0) {
            seterr(err, errlen, "bad response from %s: %s%s", d.where, perr,
                   !tls && len == 0 ? " (if it serves TLS, use an https:// URL)" : "");
            goto out;
        }
        if (cap - len < 4096) {
            if (cap >= (size_t)MAX_BODY_BYTES + MAX_HEADER_BYTES) {
                seterr(err, errlen, "bad response from %s: the response is too large", d.where);
                goto out;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                seterr(err, errlen, "out of memory");
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        int n = conn_read(&d, buf + len, cap - len, err, errlen);
        if (n < 0)
            goto out;
        if (n == 0)
            eof = true;
        len += (size_t)n;
    }
    if (tls)
        (void)mbedtls_ssl_close_notify(&d.ssl);
    rc = 0;

out:
    if (rc != 0)
        https_response_free(resp);
    free(req);
    free(buf);
    if (d.fd >= 0)
        close(d.fd);
    mbedtls_ssl_free(&d.ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(&crt);
    mbedtls_pk_free(&key);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    return rc;
}
