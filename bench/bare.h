/* bare.h — the reference: plain blocking mbedTLS, no libevent, no tisim transport.
 *
 * Contract:
 * - Server and client use the project's TLS settings (tls_conf_defaults: TLS 1.2, the same
 *   suites and curves), the same certificates, client certificate required and verified
 *   against the CA (VERIFY_REQUIRED both ways), session tickets (AES-256-GCM keys, 24 h, as
 *   common/tls.c), renegotiation off, TCP_NODELAY.
 * - bare_server follows a struct bench_plan (util.h): one connection at a time, each with its
 *   own mbedtls_ssl_context (set up and freed per connection, as the transport does).
 * - The client is what drives every server in the benchmark.
 */
#ifndef TISIM_BENCH_BARE_H
#define TISIM_BENCH_BARE_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

void bare_server(int lfd, const struct bench_certs *c, const struct bench_plan *p,
                 struct bench_result *r);

struct bare_client;
struct bare_client *bare_client_new(const struct bench_certs *c, char *err, size_t errlen);
void bare_client_free(struct bare_client *cl);
/* One connection to 127.0.0.1:port: handshake (offering the session of the previous
 * connection when resume is set), send "x", read "k". keep_fd != NULL: the TCP connection
 * stays open (its fd is stored there; the TLS state is freed), else close_notify and close.
 * Returns 0, or -1 with err set. */
int bare_client_once(struct bare_client *cl, int port, bool resume, int *keep_fd, char *err,
                     size_t errlen);
/* The suite the last handshake negotiated. */
const char *bare_client_suite(const struct bare_client *cl);

#endif
