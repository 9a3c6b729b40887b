/* tikv_kv.h — TiKV's KV service on --addr: raw get, put, delete, scan, batch put and batch
 * delete over the framed RPC (common/rpc.h), on the local engine (kv_engine.h), with real TiKV's CN check.
 *
 * Contract (methods; arguments and results are byte strings, keys never empty):
 *   raw_get    [key]                        OK [value] | NOT_FOUND "key not found"
 *   raw_put    [key, value]                 OK once durable
 *   raw_delete [key]                        OK once durable (deleting a missing key is OK)
 *   raw_batch_put [k1, v1, k2, v2, ...]     OK once all are durable, atomically
 *   raw_batch_delete [k1, k2, ...]          OK once all deletions are durable, atomically
 *   raw_scan   [start, end, limit]          OK [k1, v1, ...]: keys in [start, end) in order
 *              (end "" = no end; limit decimal 1..TIKV_KV_MAX_SCAN); stops early rather than
 *              exceed the RPC body limit
 *   status     []                           OK [JSON text of the status callback]
 *   ingest     [bulk file bytes]            OK "ingested N keys" [N]: a bulk file
 *              (tikv_import.h) read strictly with the store's keys (opts.keys) and applied as ONE atomic
 *              engine write once every record checks out; BAD_REQUEST with the reason
 *              (plaintext file for an encrypted store, another key, encrypted file for a
 *              plaintext store, corrupt or truncated) and nothing applied otherwise
 * - Every request from a TLS peer whose certificate CN is not in cert-allowed-cn is answered
 *   UNAUTHENTICATED with TiKV's words: "Common name check fail, reason: x509_common_name from
 *   peer is X, cert_allowed_cn: {"a", "b"}" (the handshake itself succeeds, as in real TiKV:
 *   the server ctx must use TLS_CN_SERVICE). An empty list lets everyone in.
 * - With a replica (opts.replica): a store that does not lead region 1 answers reads and
 *   writes NOT_LEADER with the leader's address as result 0 ("" when unknown); a write is
 *   answered OK once replicated to a majority (see replica.h). "status" is served anyway.
 * - Bad arguments get BAD_REQUEST naming what is wrong; an engine failure INTERNAL with its
 *   reason. Requests are pipelined: writes complete in order, replies go by id.
 * - Each request is counted by kind in the status port's /metrics (status may be NULL).
 * - tikv_kv_free closes the listener and connections; writes still on their way to disk are
 *   answered into the void when the engine closes afterwards (free this first, then the
 *   engine).
 */
#ifndef TISIM_TIKV_KV_H
#define TISIM_TIKV_KV_H

#include <event2/event.h>
#include <stddef.h>

#include "kv_engine.h"

struct replica;
#include "tikv_status.h"
#include "tls.h"

#define TIKV_KV_MAX_SCAN 10000

struct tikv_kv;

struct tikv_kv_opts {
    struct kv_engine *engine;
    /* The store's replica of region 1 (replica.h): writes are proposed through it, reads
     * served only by its leader, and "raft_message" (store-to-store) is served and checked
     * by it. NULL: a store without replication, writing to the engine directly. */
    struct replica *replica;
    char *const *allowed_cn; /* copied */
    size_t n_allowed_cn;
    struct tikv_status *status; /* counters; may be NULL */
    tikv_status_fn status_json; /* for the "status" method; may be NULL */
    void *status_arg;
    /* The store's cipher keys (copied; wiped by tikv_kv_free), with which "ingest" reads
     * bulk files; NULL for a plaintext store. An encrypted engine without them refuses
     * "ingest". */
    const struct cipher_keys *keys;
};

struct tikv_kv *tikv_kv_new(struct event_base *base, const struct tikv_kv_opts *o,
                            const char *host, int port, struct tls_ctx *tls, char *err,
                            size_t errlen);
int tikv_kv_port(const struct tikv_kv *kv);
void tikv_kv_free(struct tikv_kv *kv);

#endif
