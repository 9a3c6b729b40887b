/* http.h — HTTP(S) with JSON bodies over evhttp, for daemons (server and client side).
 *
 * Contract:
 * - http_server_new binds an evhttp server to host:port (port 0: a free one, see
 *   http_server_port) through the connection layer (conn.h: the listening socket and its
 *   out-of-descriptors backoff, each connection's bufferevent). With a tls_ctx every
 *   connection is TLS, and a client that speaks plain HTTP to it gets "400 ... Client sent
 *   an HTTP request to an HTTPS server" (the transport's plaintext answer, set only here);
 *   without one it is plain HTTP. Requests are limited: headers (request line included) to
 *   HTTP_MAX_HEADERS_SIZE, bodies to HTTP_MAX_BODY_SIZE (libevent answers 413 beyond), an
 *   idle or slow connection is closed after HTTP_IDLE_TIMEOUT_SEC. Routes are matched
 *   in the order added: exact path, or prefix when the route ends with '/'. Unmatched paths
 *   get 404, a matched path with another method 405. Handlers run on the event loop.
 * - Replies: http_reply_json sends the JSON pretty-printed (2-space indent, as real PD does)
 *   and takes ownership of body; http_reply_error sends a JSON string with the message, as
 *   real PD's API does for errors.
 * - http_client is one keep-alive connection to a base URL (reused for every request;
 *   evhttp reconnects after a failure). The callback gets the status (0 when the request did
 *   not complete) and the raw body, or an error sentence that names the cause (including the
 *   TLS reason, e.g. the peer refused our certificate's CN). Requests time out.
 */
#ifndef TISIM_HTTP_H
#define TISIM_HTTP_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stddef.h>

#include "tls.h"

#define HTTP_MAX_HEADERS_SIZE (16 * 1024)
#define HTTP_MAX_BODY_SIZE (1024 * 1024)
#define HTTP_IDLE_TIMEOUT_SEC 30

struct http_server;

/* rest: the part of the path after a prefix route ("" for exact routes). */
typedef void (*http_handler)(struct evhttp_request *req, const char *rest, void *arg);

struct http_server *http_server_new(struct event_base *base, const char *host, int port,
                                    struct tls_ctx *tls, char *err, size_t errlen);
int http_server_port(const struct http_server *s);
/* methods: a mask of EVHTTP_REQ_GET | EVHTTP_REQ_POST ... */
int http_server_route(struct http_server *s, int methods, const char *path, http_handler fn,
                      void *arg);
/* Called for requests no route takes, instead of 404 (e.g. to forward them). */
void http_server_fallback(struct http_server *s, http_handler fn, void *arg);
void http_server_free(struct http_server *s);

void http_reply_json(struct evhttp_request *req, int status, json_t *body);
void http_reply_error(struct evhttp_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The request body as JSON, or NULL with err set ("request body is not valid JSON: ..."). */
json_t *http_request_json(struct evhttp_request *req, char *err, size_t errlen);
/* The first value of a query parameter, or NULL. Caller frees. */
char *http_query_param(struct evhttp_request *req, const char *name);

/* The TLS facts of a server request's connection (NULL for plain HTTP). In a client's
 * request callback evhttp has already detached req from its connection: use
 * http_connection_peer(evcon) there; after a failure ->error keeps the reason until the
 * connection reconnects. */
/* Prometheus text (version 0.0.4) for the status ports' /metrics. */
void http_metrics_help(struct evbuffer *b, const char *name, const char *type, const char *help);
/* tisim_tls_handshakes_total{port="name",result="full|resumed|failed"} of ctx. */
void http_metrics_tls(struct evbuffer *b, const char *name, struct tls_ctx *ctx);
/* Sends b as a 200 Prometheus text answer (b stays the caller's). */
void http_reply_metrics(struct evhttp_request *req, struct evbuffer *b);

const struct tls_peer *http_peer(struct evhttp_request *req);
const struct tls_peer *http_connection_peer(struct evhttp_connection *evcon);

struct http_client;
typedef void (*http_client_cb)(int status, const char *body, size_t body_len, const char *err,
                               void *arg);

/* base_url: "https://127.0.0.1:2379"; tls required for https, ignored for http. */
struct http_client *http_client_new(struct event_base *base, const char *base_url,
                                    struct tls_ctx *tls, int timeout_sec, char *err,
                                    size_t errlen);
/* A header sent with every request of this client (e.g. who forwards). Copies both. */
int http_client_set_header(struct http_client *c, const char *name, const char *value);
/* body may be NULL. Returns 0, or -1 when the request could not be queued (cb not called). */
int http_client_request(struct http_client *c, enum evhttp_cmd_type method, const char *path,
                        const char *body, size_t body_len, http_client_cb cb, void *arg);
/* Pending callbacks are not called after this. */
void http_client_free(struct http_client *c);

#endif
