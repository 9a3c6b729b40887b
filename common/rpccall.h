/* rpccall.h — one blocking RPC call over the shared transport, for the ctl tools.
 *
 * tikv-ctl makes one call and waits for it. rpccall runs the daemons' own RPC client (rpc.h)
 * over the daemons' own TLS (tls.h) on a private event_base until the reply arrives, as
 * httpcall.h does for HTTP, so a TLS fix or diagnosis reaches tools and daemons alike.
 *
 * Contract:
 * - addr: "host:port" ("[::1]:20160" for IPv6); a "https://" or "http://" prefix is accepted
 *   and must agree with tls (https needs a CA; a CA with http:// is an error, never a silent
 *   downgrade). host is an IP literal or "localhost".
 * - tls: NULL or tls->ca_path NULL means plaintext. cert_path/key_path may both be NULL (no
 *   client certificate). role names us in the transport's logs ("tikv-ctl").
 * - Returns 0 with *resp, the server's answer whatever its status (OK, NOT_FOUND,
 *   UNAUTHENTICATED with TiKV's sentence as the message...): the caller reads resp->status,
 *   rpc_frame_message and resp->fields, and frees it with rpc_frame_free. Returns -1 with one
 *   line in err in the transport's words ("cannot connect to 127.0.0.1:20160: Connection
 *   refused", "the server's certificate is not trusted: ...", "127.0.0.1:20160: connection
 *   lost: ...", "127.0.0.1:20160: no reply to raw_get within 5000 ms"), *resp NULL.
 * - The call returns within about timeout_ms (0: 10000) whatever the peer does; everything
 *   it allocates is freed before it returns.
 */
#ifndef TISIM_RPCCALL_H
#define TISIM_RPCCALL_H

#include <stddef.h>

#include "rpc.h"

struct rpccall_tls {
    const char *ca_path;   /* NULL: plaintext */
    const char *cert_path; /* NULL: no client certificate */
    const char *key_path;
};

int rpccall(const char *addr, const char *method, const struct rpc_buf *args, size_t nargs,
            const struct rpccall_tls *tls, const char *role, int timeout_ms,
            struct rpc_frame **resp, char *err, size_t errlen);

#endif
