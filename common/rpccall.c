/* rpccall.c — one blocking RPC call on a private event loop. See rpccall.h. */
#include "rpccall.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tls.h"
#include "url.h"

/* The transport's own deadlines (connect, handshake) come first: their reasons are more
 * precise than "no reply". */
#define RPCCALL_GRACE_MS 250

struct call {
    struct event_base *base;
    bool done;
    struct rpc_frame **resp;
    char *err;
    size_t errlen;
};

static void on_reply(const struct rpc_frame *resp, const char *err, void *arg)
{
    struct call *c = arg;
    c->done = true;
    event_base_loopbreak(c->base);
    if (!resp) {
        snprintf(c->err, c->errlen, "%s", err);
        return;
    }
    *c->resp = rpc_frame_dup(resp);
    if (!*c->resp)
        snprintf(c->err, c->errlen, "out of memory for the reply");
}

/* addr → host and port; the scheme, if any, must agree with the TLS settings. */
static int parse_addr(const char *addr, bool with_tls, struct url *u, char *err, size_t errlen)
{
    if (url_parse(addr, false, u, err, errlen) != 0)
        return -1;
    if (u->scheme[0] && url_is_https(u) != with_tls) {
        snprintf(err, errlen, with_tls ? "a CA is given for an http:// address: use https://"
                                       : "an https:// address needs a CA (--ca-path)");
        return -1;
    }
    return 0;
}

static struct tls_ctx *make_tls(const struct rpccall_tls *tls, const char *role,
                                int timeout_ms, char *err, size_t errlen)
{
    struct tls_opts opts = {
        .role = role ? role : "client",
        .ca_path = tls->ca_path,
        .cert_path = tls->cert_path,
        .key_path = tls->key_path,
    };
    struct tls_ctx *ctx = tls_ctx_new(TLS_CLIENT, &opts, err, errlen);
    if (ctx)
        tls_ctx_set_handshake_timeout(ctx, timeout_ms);
    return ctx;
}

int rpccall(const char *addr, const char *method, const struct rpc_buf *args, size_t nargs,
            const struct rpccall_tls *tls, const char *role, int timeout_ms,
            struct rpc_frame **resp, char *err, size_t errlen)
{
    bool with_tls = tls && tls->ca_path;
    struct call c = {.resp = resp, .err = err, .errlen = errlen};
    struct tls_ctx *ctx = NULL;
    struct rpc_client *client = NULL;
    struct url u;
    *resp = NULL;
    if (timeout_ms <= 0)
        timeout_ms = 10000;
    if (parse_addr(addr, with_tls, &u, err, errlen) != 0 ||
        (with_tls && !(ctx = make_tls(tls, role, timeout_ms, err, errlen))))
        goto out;
    if (!(c.base = event_base_new()) ||
        !(client = rpc_client_new(c.base, u.host, u.port, ctx, timeout_ms))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (rpc_client_call(client, method, args, nargs, timeout_ms + RPCCALL_GRACE_MS, on_reply,
                        &c, err, errlen) != 0)
        goto out;
    while (!c.done && event_base_dispatch(c.base) == 0)
        ;
    if (!c.done)
        snprintf(err, errlen, "cannot run the event loop");
out:
    rpc_client_free(client); /* a call still pending fails here, into err */
    if (c.base)
        event_base_loop(c.base, EVLOOP_NONBLOCK); /* let the closing connection finish */
    tls_ctx_free(ctx);
    if (c.base)
        event_base_free(c.base);
    return *resp ? 0 : -1;
}
