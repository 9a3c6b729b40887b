/* rpc.c — framed binary RPC: wire format, pipelined server, async client. See rpc.h. */
#include "rpc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "log.h"

/* ---- wire format ---- */

static const char *const status_names[] = {
    "OK", "NOT_FOUND", "UNAUTHENTICATED", "NOT_LEADER", "BAD_REQUEST", "TOO_LARGE", "INTERNAL",
};

const char *rpc_status_name(enum rpc_status st)
{
    return (unsigned)st <= RPC_STATUS_MAX ? status_names[st] : "UNKNOWN";
}

struct header {
    unsigned kind;
    uint16_t flags;
    uint64_t id;
    uint32_t body_len;
};

/* A hint for the reader of "bad magic": what the bytes look like instead. */
static const char *magic_hint(const unsigned char *p)
{
    if (p[0] == 0x16 && p[1] == 0x03)
        return " (is this TLS? this side speaks plaintext)";
    if (isupper(p[0]) && isupper(p[1]))
        return " (is this HTTP?)";
    return "";
}

/* Checks whatever prefix of the header has arrived, so that garbage is refused at once.
 * 1: complete and sound, 0: more needed, -1: broken (err). */
static int read_header(struct evbuffer *in, struct header *h, char *err, size_t errlen)
{
    unsigned char b[RPC_HEADER_LEN];
    ev_ssize_t n = evbuffer_copyout(in, b, sizeof b);
    if (n >= 2 && (b[0] << 8 | b[1]) != RPC_MAGIC) {
        snprintf(err, errlen, "bad magic 0x%02x%02x%s", b[0], b[1], magic_hint(b));
        return -1;
    }
    if (n >= 3 && b[2] != RPC_VERSION) {
        snprintf(err, errlen, "unsupported frame version %u (this side speaks %d)", b[2],
                 RPC_VERSION);
        return -1;
    }
    if (n >= 4 && b[3] != RPC_REQUEST && b[3] != RPC_RESPONSE) {
        snprintf(err, errlen, "bad frame kind %u (1 request, 2 response)", b[3]);
        return -1;
    }
    if (n < RPC_HEADER_LEN)
        return 0;
    h->kind = b[3];
    h->flags = (uint16_t)(b[4] << 8 | b[5]);
    h->id = bytes_get_be64(b + 6);
    h->body_len = bytes_get_be32(b + 14);
    if (h->body_len > RPC_MAX_BODY) {
        snprintf(err, errlen, "frame body of %u bytes is over the %u-byte limit", h->body_len,
                 RPC_MAX_BODY);
        return -1;
    }
    return 1;
}

/* Counts the body's fields, checking that they fill it exactly. -1 with err. */
static int count_fields(const unsigned char *body, uint32_t len, size_t *count, char *err,
                        size_t errlen)
{
    size_t n = 0;
    uint32_t pos = 0;
    while (pos < len) {
        if (n == RPC_MAX_FIELDS) {
            snprintf(err, errlen, "more than %u fields in a frame", RPC_MAX_FIELDS);
            return -1;
        }
        if (len - pos < 4) {
            snprintf(err, errlen, "truncated field %zu: %u byte(s) left for a 4-byte length", n,
                     len - pos);
            return -1;
        }
        uint32_t flen = bytes_get_be32(body + pos);
        pos += 4;
        if (flen > len - pos) {
            snprintf(err, errlen, "truncated field %zu: %u bytes declared, %u left in the body",
                     n, flen, len - pos);
            return -1;
        }
        pos += flen;
        n++;
    }
    *count = n;
    return 0;
}

static bool method_ok(const unsigned char *p, uint32_t len)
{
    if (len == 0 || len > RPC_METHOD_MAX)
        return false;
    for (uint32_t i = 0; i < len; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return false;
    return true;
}

/* Field 0 (and 1) of a request or response, into f. -1 with err. */
static int read_head_fields(struct rpc_frame *f, const struct rpc_buf *all, size_t n, char *err,
                            size_t errlen)
{
    if (f->kind == RPC_REQUEST) {
        if (n < 1 || !method_ok(all[0].data, (uint32_t)all[0].len)) {
            snprintf(err, errlen, "request %llu has no valid method name (field 0: 1 to %d "
                     "printable ASCII bytes)", (unsigned long long)f->id, RPC_METHOD_MAX);
            return -1;
        }
        memcpy(f->method, all[0].data, all[0].len);
        f->method[all[0].len] = '\0';
        return 0;
    }
    uint32_t st = n >= 2 && all[0].len == 4 ? bytes_get_be32(all[0].data) : UINT32_MAX;
    if (st > RPC_STATUS_MAX) {
        snprintf(err, errlen, "response %llu has no valid status (field 0: 4 bytes, 0 to %d) "
                 "and message (field 1)", (unsigned long long)f->id, RPC_STATUS_MAX);
        return -1;
    }
    f->status = (enum rpc_status)st;
    f->message = all[1];
    return 0;
}

/* One allocation: the frame, its field table, then the body the table points into. */
static struct rpc_frame *build_frame(const struct header *h, const unsigned char *body,
                                     size_t n, char *err, size_t errlen)
{
    size_t size = sizeof(struct rpc_frame) + n * sizeof(struct rpc_buf) + h->body_len;
    struct rpc_frame *f = calloc(1, size);
    if (!f) {
        snprintf(err, errlen, "out of memory for a frame of %u bytes", h->body_len);
        return NULL;
    }
    f->kind = (enum rpc_kind)h->kind;
    f->flags = h->flags;
    f->id = h->id;
    struct rpc_buf *all = (struct rpc_buf *)(f + 1);
    unsigned char *copy = (unsigned char *)(all + n);
    if (h->body_len)
        memcpy(copy, body, h->body_len);
    for (size_t i = 0, pos = 0; i < n; i++) {
        all[i].len = bytes_get_be32(copy + pos);
        all[i].data = copy + pos + 4;
        pos += 4 + all[i].len;
    }
    if (read_head_fields(f, all, n, err, errlen) != 0) {
        free(f);
        return NULL;
    }
    size_t skip = f->kind == RPC_REQUEST ? 1 : 2;
    f->fields = all + skip;
    f->nfields = n - skip;
    return f;
}

enum rpc_parse_result rpc_parse(struct evbuffer *in, struct rpc_frame **out, uint64_t *id,
                                char *err, size_t errlen)
{
    struct header h = {0};
    *out = NULL;
    int r = read_header(in, &h, err, errlen);
    *id = h.id; /* 0 unless the header was read (an oversized body's frame has its id) */
    if (r <= 0)
        return r == 0 ? RPC_PARSE_MORE : h.kind ? RPC_PARSE_TOO_LARGE : RPC_PARSE_ERROR;
    size_t total = RPC_HEADER_LEN + (size_t)h.body_len;
    if (evbuffer_get_length(in) < total)
        return RPC_PARSE_MORE;
    unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)total);
    size_t n = 0;
    if (!p) {
        snprintf(err, errlen, "out of memory for a frame of %u bytes", h.body_len);
        return RPC_PARSE_ERROR;
    }
    if (count_fields(p + RPC_HEADER_LEN, h.body_len, &n, err, errlen) == 0)
        *out = build_frame(&h, p + RPC_HEADER_LEN, n, err, errlen);
    evbuffer_drain(in, total);
    return *out ? RPC_PARSE_FRAME : RPC_PARSE_INVALID;
}

void rpc_frame_free(struct rpc_frame *f)
{
    free(f);
}

struct rpc_frame *rpc_frame_dup(const struct rpc_frame *f)
{
    size_t skip = f->kind == RPC_REQUEST ? 1 : 2;
    const struct rpc_buf *all = f->fields - skip;
    const unsigned char *body = (const unsigned char *)(all + skip + f->nfields);
    const unsigned char *end = body;
    for (size_t i = 0; i < skip + f->nfields; i++)
        end = (const unsigned char *)all[i].data + all[i].len;
    size_t size = (size_t)(end - (const unsigned char *)f);
    struct rpc_frame *d = malloc(size);
    if (!d)
        return NULL;
    memcpy(d, f, size);
    /* Rebase every pointer into the new block. */
    ptrdiff_t shift = (const unsigned char *)d - (const unsigned char *)f;
    struct rpc_buf *dall = (struct rpc_buf *)(d + 1);
    for (size_t i = 0; i < skip + f->nfields; i++)
        dall[i].data = (const unsigned char *)all[i].data + shift;
    d->fields = dall + skip;
    if (d->kind == RPC_RESPONSE)
        d->message = dall[1];
    return d;
}

void rpc_frame_message(const struct rpc_frame *f, char *buf, size_t len)
{
    if (!len)
        return;
    size_t n = f->message.len < len - 1 ? f->message.len : len - 1;
    if (n)
        memcpy(buf, f->message.data, n);
    buf[n] = '\0';
}

/* Appends header and fields; nothing when over the limits. */
static int encode(struct evbuffer *out, unsigned kind, uint64_t id, const struct rpc_buf *head,
                  size_t nhead, const struct rpc_buf *rest, size_t nrest)
{
    if (nhead + nrest > RPC_MAX_FIELDS)
        return -1;
    uint64_t body = 0;
    for (size_t i = 0; i < nhead; i++)
        body += 4 + (uint64_t)head[i].len;
    for (size_t i = 0; i < nrest; i++)
        body += 4 + (uint64_t)rest[i].len;
    if (body > RPC_MAX_BODY || evbuffer_expand(out, RPC_HEADER_LEN + (size_t)body) != 0)
        return -1;
    unsigned char h[RPC_HEADER_LEN] = {RPC_MAGIC >> 8, RPC_MAGIC & 0xff, RPC_VERSION,
                                       (unsigned char)kind, 0, 0};
    bytes_put_be64(h + 6, id);
    bytes_put_be32(h + 14, (uint32_t)body);
    int rc = evbuffer_add(out, h, sizeof h);
    for (size_t i = 0; i < nhead + nrest; i++) {
        const struct rpc_buf *b = i < nhead ? &head[i] : &rest[i - nhead];
        unsigned char len[4];
        bytes_put_be32(len, (uint32_t)b->len);
        rc |= evbuffer_add(out, len, 4);
        if (b->len)
            rc |= evbuffer_add(out, b->data, b->len);
    }
    return rc ? -1 : 0; /* cannot fail after evbuffer_expand */
}

int rpc_encode_request(struct evbuffer *out, uint64_t id, const char *method,
                       const struct rpc_buf *args, size_t nargs)
{
    if (!method || !method_ok((const unsigned char *)method, (uint32_t)strlen(method)))
        return -1;
    struct rpc_buf head = {method, strlen(method)};
    return encode(out, RPC_REQUEST, id, &head, 1, args, nargs);
}

int rpc_encode_response(struct evbuffer *out, uint64_t id, enum rpc_status st, const char *msg,
                        const struct rpc_buf *results, size_t nresults)
{
    unsigned char code[4];
    bytes_put_be32(code, (uint32_t)st);
    struct rpc_buf head[2] = {{code, 4}, {msg ? msg : "", msg ? strlen(msg) : 0}};
    return encode(out, RPC_RESPONSE, id, head, 2, results, nresults);
}

/* Appends to buf (always NUL-terminated); *pos counts what would have been written. */
__attribute__((format(printf, 4, 5))) static void appendf(char *buf, size_t len, size_t *pos,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + (*pos < len ? *pos : len - 1), *pos < len ? len - *pos : 1, fmt, ap);
    va_end(ap);
    *pos += n > 0 ? (size_t)n : 0;
}

/* Rust's {:?} of a str: quotes, backslash escapes, \u{..} for other control characters. */
static void rust_debug_str(char *buf, size_t len, size_t *pos, const char *s)
{
    appendf(buf, len, pos, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            appendf(buf, len, pos, "\\%c", ch);
        else if (ch == '\n' || ch == '\r' || ch == '\t')
            appendf(buf, len, pos, "\\%c", ch == '\n' ? 'n' : ch == '\r' ? 'r' : 't');
        else if (ch < 0x20 || ch == 0x7f)
            appendf(buf, len, pos, "\\u{%x}", ch);
        else
            appendf(buf, len, pos, "%c", ch);
    }
    appendf(buf, len, pos, "\"");
}

int rpc_cn_refusal(char *buf, size_t len, const char *cn, char *const *allowed, size_t n)
{
    if (!len)
        return -1;
    size_t pos = 0;
    buf[0] = '\0';
    appendf(buf, len, &pos,
            "Common name check fail, reason: x509_common_name from peer is %s, "
            "cert_allowed_cn: {",
            cn ? cn : "");
    for (size_t i = 0; i < n; i++) {
        if (i)
            appendf(buf, len, &pos, ", ");
        rust_debug_str(buf, len, &pos, allowed[i]);
    }
    appendf(buf, len, &pos, "}");
    return pos < len ? 0 : -1;
}

/* ---- server ---- */

/* The caller's facts, shared by its connection and its calls (which may outlive it). */
struct peer_ref {
    unsigned refs;
    struct conn_peer peer;
};

struct sconn {
    struct rpc_server *srv;
    struct bufferevent *bev;
    struct peer_ref *peer;
    struct rpc_call *calls; /* awaiting rpc_reply */
    unsigned inflight;
    bool paused;  /* reading stopped: max_inflight reached */
    bool closing; /* an error answer is going out; closed once it has */
    struct sconn *prev, *next;
};

struct rpc_call {
    struct sconn *conn; /* NULL once the connection has gone */
    struct peer_ref *peer;
    struct rpc_frame *req;
    struct rpc_call *prev, *next;
};

struct rpc_server {
    struct event_base *base;
    struct rpc_method *methods;
    size_t n_methods;
    rpc_peer_hook hook;
    void *hook_arg;
    unsigned max_inflight;
    struct conn_listener *listener;
    struct sconn *conns;
};

static void peer_unref(struct peer_ref *p)
{
    if (p && --p->refs == 0)
        free(p);
}

static void sconn_close(struct sconn *sc)
{
    for (struct rpc_call *c = sc->calls; c; c = c->next)
        c->conn = NULL; /* their replies are dropped */
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        sc->srv->conns = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    bufferevent_free(sc->bev);
    peer_unref(sc->peer);
    free(sc);
}

static void sconn_written(struct bufferevent *bev, void *arg)
{
    struct sconn *sc = arg;
    if (sc->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        sconn_close(sc);
}

/* The stream cannot go on: one answer with id (0: the connection itself), then close. */
static void sconn_fail(struct sconn *sc, uint64_t id, enum rpc_status st, const char *why)
{
    log_warnx("rpc: %s%s%s: %s; closing the connection", sc->peer->peer.addr,
              sc->peer->peer.cn[0] ? " CN " : "", sc->peer->peer.cn, why);
    sc->closing = true;
    bufferevent_disable(sc->bev, EV_READ);
    if (rpc_encode_response(bufferevent_get_output(sc->bev), id, st, why, NULL, 0) != 0)
        sconn_close(sc);
}

static const struct rpc_method *find_method(const struct rpc_server *s, const char *name)
{
    for (size_t i = 0; i < s->n_methods; i++)
        if (strcmp(s->methods[i].name, name) == 0)
            return &s->methods[i];
    return NULL;
}

static void dispatch(struct sconn *sc, struct rpc_frame *req)
{
    struct rpc_call *call = calloc(1, sizeof *call);
    if (!call) {
        rpc_encode_response(bufferevent_get_output(sc->bev), req->id, RPC_INTERNAL,
                            "out of memory", NULL, 0);
        rpc_frame_free(req);
        return;
    }
    call->conn = sc;
    call->peer = sc->peer;
    sc->peer->refs++;
    call->req = req;
    call->next = sc->calls;
    if (sc->calls)
        sc->calls->prev = call;
    sc->calls = call;
    sc->inflight++;
    const struct rpc_server *s = sc->srv;
    char msg[RPC_ERR_LEN] = "";
    enum rpc_status st = s->hook ? s->hook(&sc->peer->peer, req, s->hook_arg, msg, sizeof msg)
                                 : RPC_OK;
    const struct rpc_method *m = st == RPC_OK ? find_method(s, req->method) : NULL;
    if (st != RPC_OK) {
        rpc_reply(call, st, msg, NULL, 0);
    } else if (!m) {
        snprintf(msg, sizeof msg, "unknown method '%s'", req->method);
        rpc_reply(call, RPC_BAD_REQUEST, msg, NULL, 0);
    } else {
        m->fn(call, req, m->arg);
    }
}

static void sconn_read(struct bufferevent *bev, void *arg)
{
    struct sconn *sc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (!sc->closing) {
        if (sc->inflight >= sc->srv->max_inflight) {
            sc->paused = true; /* rpc_reply resumes */
            bufferevent_disable(bev, EV_READ);
            return;
        }
        struct rpc_frame *f;
        uint64_t id;
        char err[RPC_ERR_LEN];
        enum rpc_parse_result r = rpc_parse(in, &f, &id, err, sizeof err);
        if (r == RPC_PARSE_MORE)
            return;
        if (r == RPC_PARSE_TOO_LARGE) {
            sconn_fail(sc, id, RPC_TOO_LARGE, err);
            return;
        }
        if (r == RPC_PARSE_ERROR || (r == RPC_PARSE_INVALID && id == 0)) {
            sconn_fail(sc, 0, RPC_BAD_REQUEST, err);
            return;
        }
        if (r == RPC_PARSE_INVALID) {
            rpc_encode_response(bufferevent_get_output(bev), id, RPC_BAD_REQUEST, err, NULL, 0);
            continue;
        }
        if (f->kind != RPC_REQUEST || f->id == 0) {
            bool response = f->kind != RPC_REQUEST;
            rpc_frame_free(f);
            sconn_fail(sc, 0, RPC_BAD_REQUEST,
                       response ? "a response frame sent to a server" : "request id 0 is reserved");
            return;
        }
        dispatch(sc, f);
    }
}

static void sconn_event(struct bufferevent *bev, short what, void *arg)
{
    struct sconn *sc = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    size_t left = evbuffer_get_length(bufferevent_get_input(bev));
    if (left && !sc->closing)
        log_debug("rpc: %s left in the middle of a frame (%zu bytes unread)",
                  sc->peer->peer.addr, left);
    sconn_close(sc);
}

static void sconn_resume(struct sconn *sc)
{
    if (!sc->paused || sc->closing || sc->inflight >= sc->srv->max_inflight)
        return;
    sc->paused = false;
    bufferevent_enable(sc->bev, EV_READ);
    /* Frames already buffered arrive with no new read: parse them from the loop. */
    bufferevent_trigger(sc->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

int rpc_reply(struct rpc_call *call, enum rpc_status st, const char *msg,
              const struct rpc_buf *results, size_t nresults)
{
    struct sconn *sc = call->conn;
    int rc = 0;
    if (sc && !sc->closing) {
        struct evbuffer *out = bufferevent_get_output(sc->bev);
        rc = rpc_encode_response(out, call->req->id, st, msg, results, nresults);
        if (rc != 0)
            rpc_encode_response(out, call->req->id, RPC_INTERNAL,
                                "the reply is over the frame limits", NULL, 0);
    }
    if (sc) {
        if (call->prev)
            call->prev->next = call->next;
        else
            sc->calls = call->next;
        if (call->next)
            call->next->prev = call->prev;
        sc->inflight--;
        sconn_resume(sc);
    }
    peer_unref(call->peer);
    rpc_frame_free(call->req);
    free(call);
    return rc;
}

const struct rpc_frame *rpc_call_request(const struct rpc_call *call)
{
    return call->req;
}

const struct conn_peer *rpc_call_peer(const struct rpc_call *call)
{
    return &call->peer->peer;
}

bool rpc_call_orphaned(const struct rpc_call *call)
{
    return call->conn == NULL;
}

struct rpc_server *rpc_server_new(struct event_base *base, const struct rpc_server_opts *opts)
{
    struct rpc_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->methods = calloc(opts->n_methods ? opts->n_methods : 1, sizeof *s->methods);
    if (!s->methods) {
        free(s);
        return NULL;
    }
    memcpy(s->methods, opts->methods, opts->n_methods * sizeof *s->methods);
    s->n_methods = opts->n_methods;
    s->base = base;
    s->hook = opts->hook;
    s->hook_arg = opts->hook_arg;
    s->max_inflight = opts->max_inflight ? opts->max_inflight : RPC_DEFAULT_MAX_INFLIGHT;
    return s;
}

int rpc_server_adopt(struct rpc_server *s, struct bufferevent *bev, const struct conn_peer *peer)
{
    struct sconn *sc = calloc(1, sizeof *sc);
    struct peer_ref *p = sc ? malloc(sizeof *p) : NULL;
    if (!p) {
        log_warnx("rpc: out of memory: refusing a connection from %s", peer->addr);
        free(sc);
        bufferevent_free(bev);
        return -1;
    }
    p->refs = 1;
    p->peer = *peer;
    sc->srv = s;
    sc->bev = bev;
    sc->peer = p;
    sc->next = s->conns;
    if (s->conns)
        s->conns->prev = sc;
    s->conns = sc;
    bufferevent_setcb(bev, sconn_read, sconn_written, sconn_event, sc);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    /* A resumed TLS client sends its first request in the flight that ends the handshake:
     * it may already wait in the input, and no new read would announce it. */
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    return 0;
}

static void on_accept(struct bufferevent *bev, const struct conn_peer *peer, void *arg)
{
    rpc_server_adopt(arg, bev, peer);
}

int rpc_server_listen(struct rpc_server *s, const char *host, int port, struct tls_ctx *tls,
                      char *err, size_t errlen)
{
    if (s->listener) {
        snprintf(err, errlen, "the RPC server already listens on port %d",
                 conn_listener_port(s->listener));
        return -1;
    }
    s->listener = conn_listen(s->base, host, port, tls, on_accept, s, err, errlen);
    return s->listener ? 0 : -1;
}

int rpc_server_port(const struct rpc_server *s)
{
    return s->listener ? conn_listener_port(s->listener) : -1;
}

void rpc_server_free(struct rpc_server *s)
{
    if (!s)
        return;
    conn_listener_free(s->listener);
    while (s->conns)
        sconn_close(s->conns);
    free(s->methods);
    free(s);
}

/* ---- client ---- */

#define CLIENT_BUCKETS 1024u
#define WHERE_LEN 272 /* "[" 255-byte host "]:" port */
#define WHY_LEN (WHERE_LEN + RPC_ERR_LEN + 512)

struct pending {
    struct rpc_client *c;
    uint64_t id;
    rpc_reply_cb cb;
    void *arg;
    struct event *timer; /* NULL: no deadline */
    int timeout_ms;
    char method[RPC_METHOD_MAX + 1];
    struct pending *next; /* hash chain, or the list being failed */
};

enum client_state { CL_IDLE, CL_DIALING, CL_OPEN };

struct rpc_client {
    struct event_base *base;
    char host[256];
    int port;
    char where[WHERE_LEN]; /* "127.0.0.1:20160", for messages */
    struct tls_ctx *tls;
    int dial_timeout_ms;
    enum client_state state;
    struct conn_dial *dial;
    struct bufferevent *bev;
    struct evbuffer *queue; /* requests made while dialing */
    uint64_t next_id;
    size_t npending;
    struct pending *buckets[CLIENT_BUCKETS];
    unsigned depth; /* inside our callbacks: a free waits until they return */
    bool doomed;
};

static void client_destroy(struct rpc_client *c);

static void client_enter(struct rpc_client *c)
{
    c->depth++;
}

static void client_leave(struct rpc_client *c)
{
    if (--c->depth == 0 && c->doomed)
        client_destroy(c);
}

static struct pending *pending_take(struct rpc_client *c, uint64_t id)
{
    for (struct pending **pp = &c->buckets[id % CLIENT_BUCKETS]; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct pending *p = *pp;
            *pp = p->next;
            c->npending--;
            return p;
        }
    }
    return NULL;
}

/* Runs p's callback once and frees p. */
static void pending_finish(struct pending *p, const struct rpc_frame *resp, const char *err)
{
    if (p->timer)
        event_free(p->timer);
    rpc_reply_cb cb = p->cb;
    void *arg = p->arg;
    free(p);
    cb(resp, err, arg);
}

/* Every pending call fails with why; calls made from those callbacks are not among them. */
static void fail_all(struct rpc_client *c, const char *why)
{
    struct pending *list = NULL;
    for (unsigned i = 0; i < CLIENT_BUCKETS; i++) {
        while (c->buckets[i]) {
            struct pending *p = c->buckets[i];
            c->buckets[i] = p->next;
            p->next = list;
            list = p;
        }
    }
    c->npending = 0;
    while (list) {
        struct pending *p = list;
        list = p->next;
        pending_finish(p, NULL, why);
    }
}

static void client_disconnect(struct rpc_client *c)
{
    conn_dial_cancel(c->dial);
    c->dial = NULL;
    if (c->bev)
        bufferevent_free(c->bev);
    c->bev = NULL;
    evbuffer_drain(c->queue, evbuffer_get_length(c->queue));
    c->state = CL_IDLE;
}

static void connection_lost(struct rpc_client *c, const char *reason)
{
    char why[WHY_LEN];
    snprintf(why, sizeof why, "%s: connection lost: %s", c->where, reason);
    client_disconnect(c);
    fail_all(c, why);
}

static void client_response(struct rpc_client *c, struct rpc_frame *f)
{
    char msg[RPC_ERR_LEN];
    if (f->kind != RPC_RESPONSE || f->id == 0) {
        if (f->kind != RPC_RESPONSE)
            snprintf(msg, sizeof msg, "the server sent a request frame");
        else
            rpc_frame_message(f, msg, sizeof msg);
        rpc_frame_free(f);
        connection_lost(c, msg);
        return;
    }
    struct pending *p = pending_take(c, f->id);
    if (p)
        pending_finish(p, f, NULL);
    else
        log_debug("rpc: %s: a reply to call %llu, which has already failed", c->where,
                  (unsigned long long)f->id);
    rpc_frame_free(f);
}

static void client_read(struct bufferevent *bev, void *arg)
{
    struct rpc_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    client_enter(c);
    while (!c->doomed && c->bev == bev) {
        struct rpc_frame *f;
        uint64_t id;
        char err[RPC_ERR_LEN], why[RPC_ERR_LEN + 32];
        enum rpc_parse_result r = rpc_parse(in, &f, &id, err, sizeof err);
        if (r == RPC_PARSE_MORE)
            break;
        if (r != RPC_PARSE_FRAME) {
            snprintf(why, sizeof why, "bad frame from the server: %s", err);
            connection_lost(c, why);
            break;
        }
        client_response(c, f);
    }
    client_leave(c);
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    struct rpc_client *c = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    const struct tls_peer *t = tls_bev_peer(bev);
    char why[TLS_REASON_LEN];
    if (t && t->error[0])
        snprintf(why, sizeof why, "%s", t->error);
    else if (what & BEV_EVENT_EOF)
        snprintf(why, sizeof why, "the server closed the connection");
    else
        snprintf(why, sizeof why, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    client_enter(c);
    connection_lost(c, why);
    client_leave(c);
}

static void on_dialed(struct bufferevent *bev, const struct conn_peer *peer, const char *err,
                      void *arg)
{
    (void)peer;
    struct rpc_client *c = arg;
    c->dial = NULL;
    client_enter(c);
    if (!bev) {
        client_disconnect(c);
        fail_all(c, err);
    } else {
        c->bev = bev;
        c->state = CL_OPEN;
        bufferevent_setcb(bev, client_read, NULL, client_event, c);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
        if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
            bufferevent_trigger(bev, EV_READ,
                                BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
        bufferevent_write_buffer(bev, c->queue);
    }
    client_leave(c);
}

static void call_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pending *p = arg;
    struct rpc_client *c = p->c;
    char why[WHY_LEN];
    snprintf(why, sizeof why, "%s: no reply to %s within %d ms", c->where, p->method,
             p->timeout_ms);
    client_enter(c);
    pending_take(c, p->id);
    pending_finish(p, NULL, why);
    client_leave(c);
}

struct rpc_client *rpc_client_new(struct event_base *base, const char *host, int port,
                                  struct tls_ctx *tls, int dial_timeout_ms)
{
    struct rpc_client *c = calloc(1, sizeof *c);
    if (!c || !(c->queue = evbuffer_new())) {
        free(c);
        return NULL;
    }
    c->base = base;
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    snprintf(c->where, sizeof c->where, strchr(host, ':') ? "[%s]:%d" : "%s:%d", c->host, port);
    c->tls = tls;
    c->dial_timeout_ms = dial_timeout_ms > 0 ? dial_timeout_ms : 10000;
    c->next_id = 1;
    return c;
}

static int start_dial(struct rpc_client *c, char *err, size_t errlen)
{
    c->dial = conn_dial(c->base, c->host, c->port, c->tls, c->dial_timeout_ms, on_dialed, c,
                        err, errlen);
    if (!c->dial)
        return -1;
    c->state = CL_DIALING;
    return 0;
}

static struct pending *pending_new(struct rpc_client *c, const char *method, int timeout_ms,
                                   rpc_reply_cb cb, void *arg)
{
    struct pending *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (timeout_ms > 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        if (!(p->timer = evtimer_new(c->base, call_timeout, p)) || evtimer_add(p->timer, &tv)) {
            if (p->timer)
                event_free(p->timer);
            free(p);
            return NULL;
        }
    }
    p->c = c;
    p->cb = cb;
    p->arg = arg;
    p->timeout_ms = timeout_ms;
    snprintf(p->method, sizeof p->method, "%s", method);
    return p;
}

int rpc_client_call(struct rpc_client *c, const char *method, const struct rpc_buf *args,
                    size_t nargs, int timeout_ms, rpc_reply_cb cb, void *arg, char *err,
                    size_t errlen)
{
    if (c->doomed) {
        snprintf(err, errlen, "%s: the client is closing", c->where);
        return -1;
    }
    if (c->state == CL_IDLE && start_dial(c, err, errlen) != 0)
        return -1;
    struct evbuffer *out = c->state == CL_OPEN ? bufferevent_get_output(c->bev) : c->queue;
    struct pending *p = pending_new(c, method ? method : "", timeout_ms, cb, arg);
    if (!p || rpc_encode_request(out, c->next_id, method, args, nargs) != 0) {
        if (p && p->timer)
            event_free(p->timer);
        snprintf(err, errlen, "%s: cannot send %s: %s", c->where, method ? method : "(null)",
                 p ? "over the frame limits (or a bad method name)" : "out of memory");
        free(p);
        return -1;
    }
    p->id = c->next_id++;
    p->next = c->buckets[p->id % CLIENT_BUCKETS];
    c->buckets[p->id % CLIENT_BUCKETS] = p;
    c->npending++;
    return 0;
}

size_t rpc_client_pending(const struct rpc_client *c)
{
    return c->npending;
}

static void client_destroy(struct rpc_client *c)
{
    c->depth++; /* callbacks run below may call rpc_client_free again */
    client_disconnect(c);
    char why[WHY_LEN];
    snprintf(why, sizeof why, "%s: the client is closed", c->where);
    fail_all(c, why);
    evbuffer_free(c->queue);
    free(c);
}

void rpc_client_free(struct rpc_client *c)
{
    if (!c || c->doomed)
        return;
    c->doomed = true;
    if (c->depth == 0)
        client_destroy(c);
}
