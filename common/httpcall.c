#include "httpcall.h"

#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>
#include <poll.h>
#include <netdb.h>
#include <strings.h>

#include "http.h"
#include "tls.h"
#include "url.h"

/* The transport's own deadlines (TLS handshake, connect) fire at timeout_ms; ours fires a
 * little later, so that their more precise reason wins when both apply. */
#define HTTPCALL_GRACE_MS 250

struct call {
    struct event_base *base;
    bool done;
    bool timed_out;
    struct httpcall_response *resp;
    char *err;
    size_t errlen;
};

static int method_of(const char *name, enum evhttp_cmd_type *out)
{
    static const struct { const char *name; enum evhttp_cmd_type cmd; } methods[] = {
        {"GET", EVHTTP_REQ_GET},       {"POST", EVHTTP_REQ_POST}, {"PUT", EVHTTP_REQ_PUT},
        {"DELETE", EVHTTP_REQ_DELETE}, {"HEAD", EVHTTP_REQ_HEAD},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (name && strcasecmp(name, methods[i].name) == 0) {
            *out = methods[i].cmd;
            return 0;
        }
    }
    return -1;
}

static void on_reply(int status, const char *body, size_t body_len, const char *err, void *arg)
{
    struct call *c = arg;
    c->done = true;
    event_base_loopbreak(c->base);
    if (status == 0) {
        snprintf(c->err, c->errlen, "%s", err ? err : "request failed");
        return;
    }
    char *copy = malloc(body_len + 1);
    if (!copy) {
        snprintf(c->err, c->errlen, "out of memory for a reply of %zu bytes", body_len);
        return;
    }
    memcpy(copy, body, body_len);
    copy[body_len] = '\0';
    c->resp->status = status;
    c->resp->body = copy;
    c->resp->body_len = body_len;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct call *c = arg;
    c->timed_out = true;
    event_base_loopbreak(c->base);
}

/* A client ctx for an https URL; NULL with *tls_out NULL for http. -1 on error. */
static int make_tls(const struct url *u, const struct httpcall_tls *tls, const char *role,
                    int timeout_ms, struct tls_ctx **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!tls || !tls->ca_path)
        return 0; /* http_client_new refuses an https URL without TLS */
    if (!url_is_https(u)) {
        snprintf(err, errlen, "a CA is given for an http:// URL: use https://");
        return -1;
    }
    struct tls_opts opts = {
        .role = role ? role : "client",
        .ca_path = tls->ca_path,
        .cert_path = tls->cert_path,
        .key_path = tls->key_path,
    };
    *out = tls_ctx_new(TLS_CLIENT, &opts, err, errlen);
    if (!*out)
        return -1;
    tls_ctx_set_handshake_timeout(*out, timeout_ms);
    return 0;
}

/* Runs the loop until the reply or the deadline. */
static int wait_reply(struct call *c, struct event *deadline, int timeout_ms,
                      const char *host_port)
{
    struct timeval tv = {(timeout_ms + HTTPCALL_GRACE_MS) / 1000,
                         ((timeout_ms + HTTPCALL_GRACE_MS) % 1000) * 1000};
    if (evtimer_add(deadline, &tv) != 0 || event_base_dispatch(c->base) < 0) {
        snprintf(c->err, c->errlen, "%s: cannot run the event loop", host_port);
        return -1;
    }
    if (!c->done) {
        snprintf(c->err, c->errlen, "%s: no reply within %d ms", host_port, timeout_ms);
        return -1;
    }
    return c->resp->body ? 0 : -1;
}

/* evhttp loses the errno of a failed plaintext connect (it shuts the socket down first), so
 * a one-shot tool asks the kernel once more, blocking for at most timeout_ms: daemons never
 * call this. Returns the connect errno, 0 when it connects now. */
static int probe_connect(const struct url *u, int timeout_ms)
{
    char port[16];
    snprintf(port, sizeof port, "%d", u->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(u->host, port, &hints, &ai) != 0 || !ai)
        return 0;
    int e = 0;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        e = errno;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        socklen_t sl = sizeof e;
        if (e == EINPROGRESS)
            e = poll(&pfd, 1, timeout_ms) == 1 &&
                        getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) == 0
                    ? e
                    : ETIMEDOUT;
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return e;
}

/* "cannot connect to H:P" from a plaintext call gets its cause appended. */
static void explain_plain_connect_failure(const struct url *u, const char *host_port,
                                          int timeout_ms, char *err, size_t errlen)
{
    char bare[URL_HOST_PORT_LEN + 32];
    snprintf(bare, sizeof bare, "cannot connect to %s", host_port);
    if (strcmp(err, bare) != 0)
        return;
    int e = probe_connect(u, timeout_ms);
    if (e)
        snprintf(err, errlen, "%s: %s", bare, strerror(e));
}

int httpcall(const char *url, const char *method, const char *path, const char *body,
             const struct httpcall_tls *tls, const char *role, int timeout_ms,
             struct httpcall_response *resp, char *err, size_t errlen)
{
    memset(resp, 0, sizeof *resp);
    struct call c = {.resp = resp, .err = err, .errlen = errlen};
    struct tls_ctx *ctx = NULL;
    struct http_client *client = NULL;
    struct event *deadline = NULL;
    enum evhttp_cmd_type cmd;
    struct url u;
    char host_port[URL_HOST_PORT_LEN];
    int rc = -1;
    if (timeout_ms <= 0)
        timeout_ms = 10000;
    if (method_of(method, &cmd) != 0) {
        snprintf(err, errlen, "unsupported HTTP method '%s'", method ? method : "");
        goto out;
    }
    if (url_parse(url, true, &u, err, errlen) != 0 ||
        make_tls(&u, tls, role, timeout_ms, &ctx, err, errlen) != 0)
        goto out;
    url_host_port(&u, host_port, sizeof host_port);
    if (!(c.base = event_base_new()) || !(deadline = evtimer_new(c.base, on_deadline, &c))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    client = http_client_new(c.base, url, ctx, timeout_ms / 1000 + 2, err, errlen);
    if (!client)
        goto out;
    if (http_client_request(client, cmd, path, body, body ? strlen(body) : 0, on_reply, &c) !=
        0) {
        snprintf(err, errlen, "%s: cannot queue the request", host_port);
        goto out;
    }
    rc = wait_reply(&c, deadline, timeout_ms, host_port);
    if (rc != 0 && !ctx)
        explain_plain_connect_failure(&u, host_port, timeout_ms, err, errlen);
out:
    http_client_free(client);
    if (c.base)
        event_base_loop(c.base, EVLOOP_NONBLOCK); /* let closing connections finish */
    if (deadline)
        event_free(deadline);
    tls_ctx_free(ctx);
    if (c.base)
        event_base_free(c.base);
    if (rc != 0)
        httpcall_response_free(resp);
    return rc;
}

void httpcall_response_free(struct httpcall_response *resp)
{
    if (!resp)
        return;
    free(resp->body);
    memset(resp, 0, sizeof *resp);
}
