/* kvbridge.h — TiDB's way to TiKV: blocking calls for the session workers, carried out on the
 * main event loop over long-lived, pooled connections (common/rpc.h over mutual TLS with the
 * cluster certificate, TLS sessions resumed). A statement never opens a connection of its own.
 *
 * Contract:
 * - kvbridge_new takes PD's endpoints (comma-separated URLs as tidb_config normalised them)
 *   and the cluster client tls ctx (NULL: plaintext). Nothing is dialed until the first call.
 * - kvbridge_call runs on any thread except the loop's and blocks until the call is answered:
 *   0 and *resp (free with rpc_frame_free) for any answer of the region's leader, including
 *   errors such as NOT_FOUND or UNAUTHENTICATED (the caller reads resp->status); -1 and one
 *   line in err when no leader answered within KVBRIDGE_DEADLINE_MS.
 *   On the loop: the leader is learned from PD (GET /pd/api/v1/region/id/1: its leader, else
 *   its first peer); a NOT_LEADER answer naming the leader moves the call there, one naming
 *   none (an election) retries every KVBRIDGE_RETRY_MS; a connection failure asks PD again.
 *   One rpc_client per store address, kept for the bridge's life.
 * - Convenience calls on top (same threads, same return convention, errors as one line):
 *   kvb_get (1 not found), kvb_put, kvb_delete, kvb_batch_put, kvb_scan.
 * - kvbridge_close (loop thread, at shutdown, before joining the workers): every pending call
 *   fails now and later calls fail at once ("TiDB is stopping"), so no worker waits for a
 *   loop that no longer runs. kvbridge_free on the loop thread, after every worker stopped
 *   calling.
 * - kvbridge_stats: calls made and answered with a NOT_LEADER hop, for /metrics.
 */
#ifndef TISIM_KVBRIDGE_H
#define TISIM_KVBRIDGE_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"
#include "tls.h"

#define KVBRIDGE_DEADLINE_MS 10000
#define KVBRIDGE_RETRY_MS 200
#define KVBRIDGE_CALL_TIMEOUT_MS 5000

struct kvbridge;

struct kvbridge *kvbridge_new(struct event_base *base, const char *pd_endpoints,
                              struct tls_ctx *tls, char *err, size_t errlen);
void kvbridge_close(struct kvbridge *b);
void kvbridge_free(struct kvbridge *b);
int kvbridge_call(struct kvbridge *b, const char *method, const struct rpc_buf *args, size_t n,
                  struct rpc_frame **resp, char *err, size_t errlen);

/* A value read by kvb_get / kvb_scan: malloc'd, the caller frees data. */
struct kvb_pair {
    uint8_t *key;
    size_t klen;
    uint8_t *val;
    size_t vlen;
};

/* 0 found (*val malloc'd), 1 not found, -1 error. */
int kvb_get(struct kvbridge *b, const void *key, size_t klen, uint8_t **val, size_t *vlen,
            char *err, size_t errlen);
int kvb_put(struct kvbridge *b, const void *key, size_t klen, const void *val, size_t vlen,
            char *err, size_t errlen);
int kvb_delete(struct kvbridge *b, const void *key, size_t klen, char *err, size_t errlen);
/* n pairs (keys[i], vals[i]) written atomically. */
int kvb_batch_put(struct kvbridge *b, const struct rpc_buf *keys, const struct rpc_buf *vals,
                  size_t n, char *err, size_t errlen);
/* n keys deleted atomically (missing ones are no error). */
int kvb_batch_delete(struct kvbridge *b, const struct rpc_buf *keys, size_t n, char *err,
                     size_t errlen);
/* Keys in [start, end) (end NULL/0: no end), at most limit; *out malloc'd array of *n pairs
 * (kvb_pairs_free). */
int kvb_scan(struct kvbridge *b, const void *start, size_t slen, const void *end, size_t elen,
             size_t limit, struct kvb_pair **out, size_t *n, char *err, size_t errlen);
void kvb_pairs_free(struct kvb_pair *p, size_t n);

struct kvbridge_stats {
    uint64_t calls, redirects, pd_lookups, failures;
};
void kvbridge_stats(struct kvbridge *b, struct kvbridge_stats *out);

#endif
