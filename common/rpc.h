/* rpc.h — tisim's framed binary RPC: the wire format, a pipelined server and an async client
 * over the connection layer (conn.h: plaintext or mutual TLS). TiKV's KV service and the
 * store-to-store traffic use it; rpccall.h is the blocking one-shot call for the ctl tools.
 *
 * Wire format (version 1; every integer big-endian):
 *
 *   header, RPC_HEADER_LEN = 18 bytes
 *     u16 magic      0x5452 ("TR")
 *     u8  version    1
 *     u8  kind       1 request, 2 response
 *     u16 flags      0 (reserved: a receiver ignores them, a sender sends 0)
 *     u64 id         chosen by the client, echoed by the response; 0 is never a call's id:
 *                    a response with id 0 answers the connection itself (its stream was
 *                    unreadable) and the server closes it after sending
 *     u32 body_len   at most RPC_MAX_BODY
 *   body: fields, one after the other, filling body_len exactly
 *     u32 len, then len bytes                (at most RPC_MAX_FIELDS fields)
 *
 *   request:  field 0 is the method name (1..RPC_METHOD_MAX bytes, printable ASCII, e.g.
 *             "raw_get"); fields 1.. are its arguments (rpc_frame.fields).
 *   response: field 0 is the status, exactly 4 bytes (u32, enum rpc_status); field 1 the
 *             message (UTF-8, may be empty; the one line a tool prints on failure); fields
 *             2.. the results (rpc_frame.fields). NOT_LEADER carries the leader's address
 *             ("host:port", empty when unknown) as result 0.
 *
 * Contract:
 * - rpc_parse reads at most one frame from an evbuffer: FRAME (consumed; one allocation holds
 *   the frame, its field table and its body), MORE (nothing consumed), or an error with one
 *   line: ERROR / TOO_LARGE when the stream cannot go on (bad magic "bad magic 0x4745 (is this
 *   HTTP?)", unknown version or kind; "frame body of 100000000 bytes is over the
 *   8388608-byte limit"): nothing consumed, the connection is to be closed; INVALID when the header was sound but the body is not (a truncated field,
 *   too many fields, a missing or bad method/status): the frame is consumed and *id says
 *   which call it was, so the stream goes on. It never reads past what the buffer holds.
 * - rpc_encode_* append one frame to an evbuffer, or return -1 with nothing appended when it
 *   would break a limit (or on ENOMEM).
 * - Server: conn_listen connections (or any adopted bufferevent). Requests are dispatched as
 *   they arrive, many per connection (pipelined); each handler gets a call handle and answers
 *   with rpc_reply exactly once, now or later (after a disk sync), in any order. Before each
 *   request the peer hook (if any) may refuse it with a status and message. An unknown
 *   method gets BAD_REQUEST "unknown method 'x'". A reply to a connection that has gone
 *   away is dropped (the handle stays valid until rpc_reply). At most max_inflight requests
 *   per connection wait for a reply: beyond that the server stops reading that connection
 *   until replies go out. An unreadable stream (ERROR) gets one response with id 0 (status
 *   BAD_REQUEST, or TOO_LARGE with the frame's id for an oversized body) and is closed once
 *   it is sent; a frame cut short by EOF just closes. Other connections carry on.
 * - Client: one long-lived connection to host:port, dialed on the first call and again on the
 *   first call after it failed (a TLS session resumes through the ctx's cache). Calls are
 *   pipelined; each gets its callback exactly once: the response, or NULL and one line
 *   ("127.0.0.1:20160: connection lost: ...", "cannot connect to 127.0.0.1:20160:
 *   Connection refused", "127.0.0.1:20160: no reply to raw_get within 500 ms"). When the
 *   connection dies every pending call fails with the reason. A callback may make new calls
 *   and may free the client (the free then happens once the callback returns).
 * - The response or request a callback gets is valid only during the callback
 *   (rpc_frame_dup keeps a copy).
 * - Not thread-safe: one event loop.
 */
#ifndef TISIM_RPC_H
#define TISIM_RPC_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

#define RPC_MAGIC 0x5452u
#define RPC_VERSION 1
#define RPC_HEADER_LEN 18
#define RPC_MAX_BODY (8u * 1024 * 1024)
#define RPC_MAX_FIELDS 65536u
#define RPC_METHOD_MAX 64
#define RPC_DEFAULT_MAX_INFLIGHT 1024
#define RPC_ERR_LEN 512

enum rpc_kind { RPC_REQUEST = 1, RPC_RESPONSE = 2 };

enum rpc_status {
    RPC_OK = 0,
    RPC_NOT_FOUND = 1,
    RPC_UNAUTHENTICATED = 2,
    RPC_NOT_LEADER = 3,
    RPC_BAD_REQUEST = 4,
    RPC_TOO_LARGE = 5,
    RPC_INTERNAL = 6,
};
#define RPC_STATUS_MAX RPC_INTERNAL

/* "OK", "NOT_FOUND", ... ("UNKNOWN" otherwise). */
const char *rpc_status_name(enum rpc_status st);

/* A byte string: an argument to send, or a field of a parsed frame (not NUL-terminated). */
struct rpc_buf {
    const void *data;
    size_t len;
};

struct rpc_frame {
    enum rpc_kind kind;
    uint16_t flags;
    uint64_t id;
    char method[RPC_METHOD_MAX + 1]; /* request: NUL-terminated */
    enum rpc_status status;          /* response */
    struct rpc_buf message;          /* response */
    size_t nfields;                  /* arguments (request) or results (response) */
    struct rpc_buf *fields;
};

enum rpc_parse_result {
    RPC_PARSE_FRAME,     /* *out: a frame (free with rpc_frame_free) */
    RPC_PARSE_MORE,      /* incomplete: nothing consumed */
    RPC_PARSE_INVALID,   /* a sound header, a bad body: consumed; the stream goes on */
    RPC_PARSE_TOO_LARGE, /* body_len over RPC_MAX_BODY: nothing consumed; close */
    RPC_PARSE_ERROR,     /* not a frame header (bad magic, version, kind): close */
};

/* *id is the frame's id once its header has been read (FRAME, INVALID, TOO_LARGE), else 0.
 * err gets one line for INVALID, TOO_LARGE and ERROR. */
enum rpc_parse_result rpc_parse(struct evbuffer *in, struct rpc_frame **out, uint64_t *id,
                                char *err, size_t errlen);
void rpc_frame_free(struct rpc_frame *f);
struct rpc_frame *rpc_frame_dup(const struct rpc_frame *f);
/* The frame's message as a NUL-terminated string (cut at len-1). */
void rpc_frame_message(const struct rpc_frame *f, char *buf, size_t len);

int rpc_encode_request(struct evbuffer *out, uint64_t id, const char *method,
                       const struct rpc_buf *args, size_t nargs);
/* msg may be NULL (empty). */
int rpc_encode_response(struct evbuffer *out, uint64_t id, enum rpc_status st,
                        const char *msg, const struct rpc_buf *results, size_t nresults);

/* TiKV's refusal, exactly: "Common name check fail, reason: x509_common_name from peer is
 * CN, cert_allowed_cn: {"a", "b"}" (the list as Rust prints a HashSet<String>, in the given
 * order). Returns 0, or -1 when len is too small (buf then holds a cut line). */
int rpc_cn_refusal(char *buf, size_t len, const char *cn, char *const *allowed, size_t n);

/* ---- server ---- */

struct rpc_server;
struct rpc_call; /* one request awaiting its reply */

/* req (method, arguments) is valid until rpc_reply. */
typedef void (*rpc_handler_fn)(struct rpc_call *call, const struct rpc_frame *req, void *arg);

struct rpc_method {
    const char *name;
    rpc_handler_fn fn;
    void *arg;
};

/* Runs before each request's handler: RPC_OK lets it through; any other status refuses it
 * with the message written into msg. */
typedef enum rpc_status (*rpc_peer_hook)(const struct conn_peer *peer, const struct rpc_frame *req,
                                         void *arg, char *msg, size_t msglen);

struct rpc_server_opts {
    const struct rpc_method *methods; /* copied */
    size_t n_methods;
    rpc_peer_hook hook; /* NULL: every request goes through */
    void *hook_arg;
    unsigned max_inflight; /* 0: RPC_DEFAULT_MAX_INFLIGHT */
};

struct rpc_server *rpc_server_new(struct event_base *base, const struct rpc_server_opts *opts);
/* Listens with conn_listen (tls: a server ctx, or NULL for plaintext). -1 with err. */
int rpc_server_listen(struct rpc_server *s, const char *host, int port, struct tls_ctx *tls,
                      char *err, size_t errlen);
int rpc_server_port(const struct rpc_server *s);
/* Serves a connection made elsewhere (a conn_accept_cb can call it): the server owns bev. */
int rpc_server_adopt(struct rpc_server *s, struct bufferevent *bev, const struct conn_peer *peer);
/* Closes the listener and every connection; calls not answered yet stay valid until their
 * rpc_reply, which then drops the reply. Not from inside a handler. */
void rpc_server_free(struct rpc_server *s);

/* Answers the call and frees it (and its request). -1 when the reply could not be encoded
 * (over the limits): the caller then gets an INTERNAL error instead; the call is freed anyway. */
int rpc_reply(struct rpc_call *call, enum rpc_status st, const char *msg,
              const struct rpc_buf *results, size_t nresults);
/* The request being answered (valid until rpc_reply). */
const struct rpc_frame *rpc_call_request(const struct rpc_call *call);
/* The caller's facts; still valid after it left. */
const struct conn_peer *rpc_call_peer(const struct rpc_call *call);
/* True once the caller's connection has closed (the reply would be dropped). */
bool rpc_call_orphaned(const struct rpc_call *call);

/* ---- client ---- */

struct rpc_client;

/* resp NULL: the call failed, err says why. resp is valid during the callback only. */
typedef void (*rpc_reply_cb)(const struct rpc_frame *resp, const char *err, void *arg);

/* tls: a client ctx (the client does not own it), or NULL for plaintext. dial_timeout_ms
 * covers connect + handshake (0: 10000). NULL on ENOMEM. */
struct rpc_client *rpc_client_new(struct event_base *base, const char *host, int port,
                                  struct tls_ctx *tls, int dial_timeout_ms);
/* Queues a call (dialing first when there is no connection). timeout_ms 0: none. Returns 0
 * (cb will run, never from inside this function), or -1 with err (over the limits, ENOMEM):
 * cb will not run. */
int rpc_client_call(struct rpc_client *c, const char *method, const struct rpc_buf *args,
                    size_t nargs, int timeout_ms, rpc_reply_cb cb, void *arg, char *err,
                    size_t errlen);
/* Calls waiting for a reply. */
size_t rpc_client_pending(const struct rpc_client *c);
/* Fails every pending call ("client closed") and closes the connection. */
void rpc_client_free(struct rpc_client *c);

#endif
