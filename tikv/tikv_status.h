/* tikv_status.h — TiKV's status port: GET /status and GET /metrics over HTTPS, and TiKV's
 * certificate role check on everything else.
 *
 * Contract:
 * - tikv_status_new serves host:port (port 0: a free one, see tikv_status_port) with tls, a
 *   TLS_SERVER ctx made with cn_check TLS_CN_SERVICE and the store's cert-allowed-cn (NULL:
 *   plain HTTP, TLS off). As real TiKV does, a caller whose certificate CN is not in the
 *   list still completes the handshake; it may read /metrics and /status, and gets HTTP 403
 *   with the body "certificate role error" on every other path. Unknown paths are 404 for
 *   allowed callers.
 * - GET /status answers the JSON object the daemon's callback builds (store id, PD, role,
 *   encryption, key count, replication links), pretty-printed like the rest of the APIs.
 * - GET /metrics answers Prometheus text format (version 0.0.4):
 *     tikv_kv_requests_total{kind="get"} N          requests served, by kind
 *     tisim_tls_handshakes_total{port="kv",result="full|resumed|failed"} N
 *   for every tls ctx registered with tikv_status_watch_tls (the KV port's, the status
 *   port's own...). Counters only grow.
 * - tikv_status_count bumps a request counter (kinds are short literals: "get", "put", ...;
 *   at most TIKV_STATUS_MAX_KINDS distinct ones, the rest are counted as "other").
 */
#ifndef TISIM_TIKV_STATUS_H
#define TISIM_TIKV_STATUS_H

#include <event2/event.h>
#include <jansson.h>
#include <stddef.h>

#include "tls.h"

#define TIKV_STATUS_MAX_KINDS 16
#define TIKV_STATUS_MAX_TLS 4

struct tikv_status;
/* Returns a new JSON object for GET /status (ownership passes to the caller). */
typedef json_t *(*tikv_status_fn)(void *arg);

struct tikv_status *tikv_status_new(struct event_base *base, const char *host, int port,
                                    struct tls_ctx *tls, tikv_status_fn status, void *arg,
                                    char *err, size_t errlen);
int tikv_status_port(const struct tikv_status *s);
/* Reports ctx's handshake counters under port="name" in /metrics. -1 when full. */
int tikv_status_watch_tls(struct tikv_status *s, const char *name, struct tls_ctx *ctx);
void tikv_status_count(struct tikv_status *s, const char *kind);
void tikv_status_free(struct tikv_status *s);

#endif
