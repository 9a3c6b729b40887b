/* tikv_status.c — TiKV's status port. See tikv_status.h. */
#include "tikv_status.h"

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

struct counter {
    const char *kind; /* a literal from the caller */
    unsigned long long n;
};

struct watched_tls {
    const char *name;
    struct tls_ctx *ctx;
};

struct tikv_status {
    struct http_server *http;
    tikv_status_fn status;
    void *status_arg;
    struct counter counters[TIKV_STATUS_MAX_KINDS];
    size_t n_counters;
    unsigned long long other;
    struct watched_tls tls[TIKV_STATUS_MAX_TLS];
    size_t n_tls;
};

/* Real TiKV lets any certificate of the CA read /metrics and /status, and answers the rest
 * with this when the CN is not in cert-allowed-cn. */
static bool role_allowed(struct evhttp_request *req)
{
    const struct tls_peer *p = http_peer(req);
    return p == NULL || p->cn_allowed; /* NULL: plain HTTP, TLS off */
}

static void reply_text(struct evhttp_request *req, int code, const char *type, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    if (b)
        evbuffer_add(b, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    evhttp_send_reply(req, code, NULL, b);
    if (b)
        evbuffer_free(b);
}

/* /status and /metrics take every method, so that a wrong one gets 405 rather than the
 * fallback's role check or 404. */
#define ANY_METHOD                                                                            \
    (EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD | \
     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH)

static bool only_get(struct evhttp_request *req)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET)
        return true;
    http_reply_error(req, 405, "method not allowed on %s", evhttp_request_get_uri(req));
    return false;
}

static void handle_status(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct tikv_status *s = arg;
    if (!only_get(req))
        return;
    json_t *body = s->status ? s->status(s->status_arg) : json_object();
    if (!body) {
        http_reply_error(req, 500, "cannot build the status");
        return;
    }
    http_reply_json(req, 200, body);
}

static void handle_metrics(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct tikv_status *s = arg;
    if (!only_get(req))
        return;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        http_reply_error(req, 500, "out of memory");
        return;
    }
    http_metrics_help(b, "tikv_kv_requests_total", "counter", "KV requests served, by kind.");
    for (size_t i = 0; i < s->n_counters; i++)
        evbuffer_add_printf(b, "tikv_kv_requests_total{kind=\"%s\"} %llu\n",
                            s->counters[i].kind, s->counters[i].n);
    if (s->other)
        evbuffer_add_printf(b, "tikv_kv_requests_total{kind=\"other\"} %llu\n", s->other);
    http_metrics_help(b, "tisim_tls_handshakes_total", "counter",
                      "TLS handshakes by port and result.");
    for (size_t i = 0; i < s->n_tls; i++)
        http_metrics_tls(b, s->tls[i].name, s->tls[i].ctx);
    http_reply_metrics(req, b);
    evbuffer_free(b);
}

/* Every other path: the role check first, as real TiKV does. */
static void handle_other(struct evhttp_request *req, const char *path, void *arg)
{
    (void)arg;
    if (!role_allowed(req)) {
        reply_text(req, 403, "text/plain; charset=utf-8", "certificate role error");
        return;
    }
    http_reply_error(req, 404, "no such API: %s", path);
}

struct tikv_status *tikv_status_new(struct event_base *base, const char *host, int port,
                                    struct tls_ctx *tls, tikv_status_fn status, void *arg,
                                    char *err, size_t errlen)
{
    struct tikv_status *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->status = status;
    s->status_arg = arg;
    s->http = http_server_new(base, host, port, tls, err, errlen);
    if (!s->http || http_server_route(s->http, ANY_METHOD, "/status", handle_status, s) ||
        http_server_route(s->http, ANY_METHOD, "/metrics", handle_metrics, s)) {
        if (s->http)
            snprintf(err, errlen, "out of memory");
        tikv_status_free(s);
        return NULL;
    }
    http_server_fallback(s->http, handle_other, s);
    return s;
}

int tikv_status_port(const struct tikv_status *s)
{
    return s ? http_server_port(s->http) : -1;
}

int tikv_status_watch_tls(struct tikv_status *s, const char *name, struct tls_ctx *ctx)
{
    if (s->n_tls >= TIKV_STATUS_MAX_TLS || !ctx)
        return -1;
    s->tls[s->n_tls++] = (struct watched_tls){name, ctx};
    return 0;
}

void tikv_status_count(struct tikv_status *s, const char *kind)
{
    for (size_t i = 0; i < s->n_counters; i++) {
        if (strcmp(s->counters[i].kind, kind) == 0) {
            s->counters[i].n++;
            return;
        }
    }
    if (s->n_counters < TIKV_STATUS_MAX_KINDS)
        s->counters[s->n_counters++] = (struct counter){kind, 1};
    else
        s->other++;
}

void tikv_status_free(struct tikv_status *s)
{
    if (!s)
        return;
    http_server_free(s->http);
    free(s);
}
