#include "http.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "log.h"
#include "url.h"

/* What a plaintext HTTP client gets from an HTTPS port (as Go's net/http answers it). */
static const char plaintext_reply[] = "HTTP/1.0 400 Bad Request\r\n"
                                      "Content-Type: text/plain; charset=utf-8\r\n"
                                      "Connection: close\r\n\r\n"
                                      "Client sent an HTTP request to an HTTPS server.\n";

struct route {
    int methods;
    char *path;
    bool prefix;
    http_handler fn;
    void *arg;
};

struct http_server {
    struct evhttp *http;
    struct conn_listener *listener;
    struct tls_ctx *tls;
    struct route *routes;
    size_t n_routes;
    http_handler fallback;
    void *fallback_arg;
};

static bool route_matches(const struct route *r, const char *path, const char **rest)
{
    size_t n = strlen(r->path);
    if (r->prefix ? strncmp(path, r->path, n) != 0 : strcmp(path, r->path) != 0)
        return false;
    *rest = r->prefix ? path + n : "";
    return true;
}

/* evhttp shuts the socket's write side down before the bufferevent is freed, so a TLS
 * connection's close_notify must go out from evhttp's close callback, which runs first. */
static void on_evhttp_close(struct evhttp_connection *evcon, void *arg)
{
    (void)arg;
    tls_bev_close_notify(evhttp_connection_get_bufferevent(evcon));
}

static void send_close_notify_on_close(struct evhttp_connection *evcon)
{
    if (evcon && tls_bev_peer(evhttp_connection_get_bufferevent(evcon)))
        evhttp_connection_set_closecb(evcon, on_evhttp_close, NULL);
}

const struct tls_peer *http_connection_peer(struct evhttp_connection *evcon)
{
    return evcon ? tls_bev_peer(evhttp_connection_get_bufferevent(evcon)) : NULL;
}

const struct tls_peer *http_peer(struct evhttp_request *req)
{
    return http_connection_peer(req ? evhttp_request_get_connection(req) : NULL);
}

/* evhttp asks for each accepted connection's bufferevent; it must never get NULL for a TLS
 * server (it would serve plaintext): conn_server_bufferevent stops the daemon instead. */
static struct bufferevent *server_bufferevent(struct event_base *base, void *arg)
{
    struct http_server *s = arg;
    return conn_server_bufferevent(base, s->tls, plaintext_reply);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
    struct http_server *s = arg;
    send_close_notify_on_close(evhttp_request_get_connection(req));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path)
        path = "/";
    int method = (int)evhttp_request_get_command(req);
    bool path_known = false;
    for (size_t i = 0; i < s->n_routes; i++) {
        const char *rest;
        if (!route_matches(&s->routes[i], path, &rest))
            continue;
        path_known = true;
        if (s->routes[i].methods & method) {
            s->routes[i].fn(req, rest, s->routes[i].arg);
            return;
        }
    }
    if (s->fallback)
        s->fallback(req, path, s->fallback_arg);
    else if (path_known)
        http_reply_error(req, 405, "method not allowed on %s", path);
    else
        http_reply_error(req, 404, "no such API: %s", path);
}

struct http_server *http_server_new(struct event_base *base, const char *host, int port,
                                    struct tls_ctx *tls, char *err, size_t errlen)
{
    struct http_server *s = calloc(1, sizeof *s);
    if (!s || !(s->http = evhttp_new(base))) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    /* Every method reaches the router, which answers 405 in JSON (evhttp's own 501 is an
     * HTML page). */
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(s->http, HTTP_MAX_HEADERS_SIZE);
    evhttp_set_max_body_size(s->http, HTTP_MAX_BODY_SIZE);
    evhttp_set_timeout(s->http, HTTP_IDLE_TIMEOUT_SEC);
    evhttp_set_gencb(s->http, dispatch, s);
    s->tls = tls;
    evhttp_set_bevcb(s->http, server_bufferevent, s);
    s->listener = conn_listen(base, host, port, tls, NULL, NULL, err, errlen);
    if (!s->listener) {
        http_server_free(s);
        return NULL;
    }
    conn_listener_detach(s->listener); /* evhttp frees the evconnlistener */
    if (!evhttp_bind_listener(s->http, conn_listener_evconnlistener(s->listener))) {
        evconnlistener_free(conn_listener_evconnlistener(s->listener));
        snprintf(err, errlen, "cannot listen on %s:%d: out of memory", host, port);
        http_server_free(s);
        return NULL;
    }
    evconnlistener_enable(conn_listener_evconnlistener(s->listener));
    return s;
}

int http_server_port(const struct http_server *s)
{
    return s ? conn_listener_port(s->listener) : -1;
}

int http_server_route(struct http_server *s, int methods, const char *path, http_handler fn,
                      void *arg)
{
    struct route *r = realloc(s->routes, (s->n_routes + 1) * sizeof *r);
    if (!r)
        return -1;
    s->routes = r;
    r = &s->routes[s->n_routes];
    if (!(r->path = strdup(path)))
        return -1;
    r->methods = methods;
    r->prefix = path[0] && path[strlen(path) - 1] == '/';
    r->fn = fn;
    r->arg = arg;
    s->n_routes++;
    return 0;
}

void http_server_fallback(struct http_server *s, http_handler fn, void *arg)
{
    s->fallback = fn;
    s->fallback_arg = arg;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    if (s->http)
        evhttp_free(s->http);
    conn_listener_free(s->listener);
    for (size_t i = 0; i < s->n_routes; i++)
        free(s->routes[i].path);
    free(s->routes);
    free(s);
}

static void reply_text(struct evhttp_request *req, int status, const char *text)
{
    struct evbuffer *out = evbuffer_new();
    if (out)
        evbuffer_add(out, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json; charset=UTF-8");
    evhttp_send_reply(req, status, NULL, out);
    if (out)
        evbuffer_free(out);
}

void http_reply_json(struct evhttp_request *req, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY)
                      : NULL;
    json_decref(body);
    if (!text) {
        reply_text(req, 500, "\"out of memory\"\n");
        return;
    }
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (line) {
        line[n] = '\n';
        line[n + 1] = '\0';
        text = line;
    }
    reply_text(req, status, text);
    free(text);
}

void http_reply_error(struct evhttp_request *req, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_reply_json(req, status, json_string(msg));
}

json_t *http_request_json(struct evhttp_request *req, char *err, size_t errlen)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *data = (const char *)evbuffer_pullup(in, -1);
    json_error_t jerr;
    json_t *v = json_loadb(data ? data : "", len, 0, &jerr);
    if (!v)
        snprintf(err, errlen, "request body is not valid JSON: %s", jerr.text);
    return v;
}

char *http_query_param(struct evhttp_request *req, const char *name)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    struct evkeyvalq params;
    char *value = NULL;
    if (!query || evhttp_parse_query_str(query, &params) != 0)
        return NULL;
    const char *v = evhttp_find_header(&params, name);
    if (v)
        value = strdup(v);
    evhttp_clear_headers(&params);
    return value;
}

/* ---- client ---- */

struct pending {
    struct http_client *client;
    struct evhttp_request *req;
    http_client_cb cb;
    void *arg;
    enum evhttp_request_error error;
    bool failed;
    struct timespec started;
    struct pending *next;
};

struct http_client {
    struct evhttp_connection *conn;
    int timeout_sec;
    char host_port[URL_HOST_PORT_LEN];
    char *header_name, *header_value;
    struct pending *pending;
};

/* An evhttp client connection over TLS: evhttp connects (and reconnects after a close) the
 * bufferevent itself; each new TCP connection gets a handshake that resumes the session. */
static struct evhttp_connection *tls_connection_new(struct tls_ctx *tls, struct event_base *base,
                                                    const char *host, int port)
{
    struct bufferevent *bev = tls_bev_client_new(tls, base, host, port);
    if (!bev)
        return NULL;
    struct evhttp_connection *evcon =
        evhttp_connection_base_bufferevent_new(base, NULL, bev, host, (unsigned short)port);
    if (!evcon)
        bufferevent_free(bev);
    else
        evhttp_connection_set_closecb(evcon, on_evhttp_close, NULL);
    return evcon;
}

struct http_client *http_client_new(struct event_base *base, const char *base_url,
                                    struct tls_ctx *tls, int timeout_sec, char *err,
                                    size_t errlen)
{
    struct url u;
    if (url_parse(base_url, true, &u, err, errlen) != 0)
        return NULL;
    if (url_is_https(&u) && !tls) {
        snprintf(err, errlen, "%s is https but no TLS settings are configured", base_url);
        return NULL;
    }
    if (!url_is_https(&u) && tls) {
        snprintf(err, errlen, "%s: TLS is on, use an https:// URL", base_url);
        return NULL;
    }
    struct http_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    url_host_port(&u, c->host_port, sizeof c->host_port);
    c->conn = tls ? tls_connection_new(tls, base, u.host, u.port)
                  : evhttp_connection_base_new(base, NULL, u.host, (ev_uint16_t)u.port);
    if (!c->conn) {
        snprintf(err, errlen, "cannot create a connection to %s", c->host_port);
        free(c);
        return NULL;
    }
    c->timeout_sec = timeout_sec > 0 ? timeout_sec : 5;
    evhttp_connection_set_timeout(c->conn, c->timeout_sec);
    evhttp_connection_set_retries(c->conn, 0);
    return c;
}

int http_client_set_header(struct http_client *c, const char *name, const char *value)
{
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    free(c->header_name);
    free(c->header_value);
    c->header_name = n;
    c->header_value = v;
    return 0;
}

static void pending_unlink(struct pending *p)
{
    for (struct pending **pp = &p->client->pending; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            return;
        }
    }
}

static const char *request_error_text(enum evhttp_request_error e)
{
    switch (e) {
    case EVREQ_HTTP_TIMEOUT: return "timed out";
    case EVREQ_HTTP_EOF: return "connection closed before a reply";
    case EVREQ_HTTP_INVALID_HEADER: return "invalid reply";
    case EVREQ_HTTP_BUFFER_ERROR: return "connection failed";
    case EVREQ_HTTP_REQUEST_CANCEL: return "cancelled";
    case EVREQ_HTTP_DATA_TOO_LONG: return "reply too large";
    }
    return "failed";
}

static void on_request_error(enum evhttp_request_error e, void *arg)
{
    struct pending *p = arg;
    p->failed = true;
    p->error = e;
}

/* The most precise reason we can give: the TLS layer's, when the connection failed there. */
static double seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static bool is_connect_errno(int e)
{
    return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == ETIMEDOUT ||
           e == EADDRNOTAVAIL || e == ECONNRESET;
}

/* The most precise reason we can give: the TLS layer's, when the connection failed there.
 * evhttp reports a failed connect or a timeout while connecting (TLS handshake included)
 * without saying which, so the errno it leaves and the time spent tell them apart. */
static void failure_reason(struct pending *p, int sys_err, char *buf, size_t len)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(p->client->conn);
    const struct tls_peer *peer = bev ? tls_bev_peer(bev) : NULL;
    const char *where = p->client->host_port;
    if (peer && peer->error[0])
        snprintf(buf, len, "%s%s%s", strstr(peer->error, where) ? "" : where,
                 strstr(peer->error, where) ? "" : ": ", peer->error);
    else if (p->failed)
        snprintf(buf, len, "%s: %s", where, request_error_text(p->error));
    else if (seconds_since(&p->started) >= p->client->timeout_sec - 0.05)
        snprintf(buf, len, "%s: timed out: no answer within %d s", where,
                 p->client->timeout_sec);
    else if (is_connect_errno(sys_err))
        snprintf(buf, len, "cannot connect to %s: %s", where, strerror(sys_err));
    else
        snprintf(buf, len, "cannot connect to %s", where);
}

static void on_request_done(struct evhttp_request *req, void *arg)
{
    struct pending *p = arg;
    int sys_err = errno; /* what the failed connect left, if it failed */
    pending_unlink(p);
    int status = req ? evhttp_request_get_response_code(req) : 0;
    if (status == 0) {
        char reason[URL_HOST_PORT_LEN + sizeof ((struct tls_peer *)0)->error + 64];
        failure_reason(p, sys_err, reason, sizeof reason);
        p->cb(0, NULL, 0, reason, p->arg);
    } else {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        char *body = malloc(len + 1);
        if (body) {
            evbuffer_copyout(in, body, len);
            body[len] = '\0';
        }
        p->cb(status, body ? body : "", body ? len : 0, NULL, p->arg);
        free(body);
    }
    free(p);
}

int http_client_request(struct http_client *c, enum evhttp_cmd_type method, const char *path,
                        const char *body, size_t body_len, http_client_cb cb, void *arg)
{
    struct pending *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->client = c;
    clock_gettime(CLOCK_MONOTONIC, &p->started);
    p->cb = cb;
    p->arg = arg;
    struct evhttp_request *req = evhttp_request_new(on_request_done, p);
    if (!req) {
        free(p);
        return -1;
    }
    evhttp_request_set_error_cb(req, on_request_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", c->host_port);
    if (c->header_name)
        evhttp_add_header(h, c->header_name, c->header_value);
    if (body) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, body_len);
    }
    p->req = req;
    p->next = c->pending;
    c->pending = p;
    if (evhttp_make_request(c->conn, req, method, path) != 0) {
        /* evhttp freed req already. */
        pending_unlink(p);
        free(p);
        return -1;
    }
    return 0;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    /* evhttp frees pending requests without calling their callbacks. */
    evhttp_connection_free(c->conn);
    while (c->pending) {
        struct pending *p = c->pending;
        c->pending = p->next;
        free(p);
    }
    free(c->header_name);
    free(c->header_value);
    free(c);
}

void http_metrics_help(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void http_metrics_tls(struct evbuffer *b, const char *name, struct tls_ctx *ctx)
{
    struct tls_stats st;
    tls_ctx_stats(ctx, &st);
    evbuffer_add_printf(b,
                        "tisim_tls_handshakes_total{port=\"%s\",result=\"full\"} %llu\n"
                        "tisim_tls_handshakes_total{port=\"%s\",result=\"resumed\"} %llu\n"
                        "tisim_tls_handshakes_total{port=\"%s\",result=\"failed\"} %llu\n",
                        name, st.full, name, st.resumed, name, st.failed);
}

void http_reply_metrics(struct evhttp_request *req, struct evbuffer *b)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, NULL, b);
}
