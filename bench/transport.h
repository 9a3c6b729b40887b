/* transport.h — the project's transport under test: common/tls.c (tls_bev_accept) in a
 * libevent loop, configured as a daemon configures it (CN allow-list checked in the
 * handshake, handshake lines logged at INFO to a file).
 *
 * Contract: transport_server follows a struct bench_plan (util.h) with the same bookkeeping as
 * bare_server, so their figures compare: per connection it reads "x", answers "k", and frees
 * the bufferevent when the client closes (held connections stay until the end).
 */
#ifndef TISIM_BENCH_TRANSPORT_H
#define TISIM_BENCH_TRANSPORT_H

#include "util.h"

void transport_server(int lfd, const struct bench_certs *c, const struct bench_plan *p,
                      struct bench_result *r);

#endif
