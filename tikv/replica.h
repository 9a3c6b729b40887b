/* replica.h — this store's replica of region 1: libraft driven by rio (our raft_io: the
 * store's event loop, its TLS, its sealed Raft log under <data-dir>/raft), applying committed
 * commands to the KV engine. docs/replication.md describes the design; this is its section 5
 * and 6 as built.
 *
 * Contract:
 * - replica_new opens <data-dir>/raft (rstore; sealed with the cipher keys when the store is
 *   encrypted, so a corrupt or wrong-key log fails here, at start-up) and nothing else: Raft
 *   starts when PD names this store as a peer of the region (replica_on_region).
 * - replica_on_region(r, store_id, region): PD's view of region 1 (register and heartbeat
 *   replies). The first call that lists this store starts Raft with server id = store id and
 *   address = this store's --addr. The store bootstraps the group (itself as the only voter)
 *   only when it is the region's only peer and has no Raft state yet; every other store
 *   starts with its log (empty or not) and waits for a leader. While this store leads, each
 *   call compares PD's peers with the Raft configuration and adds one missing peer at a time
 *   (raft_add, then raft_assign to voter once it has caught up); a peer that cannot catch up
 *   (unreachable, or refusing us) stays out, and the next call tries again.
 * - Writes: replica_write encodes ops as one command (u8 version 1 | u64 log index | the
 *   engine's op encoding) and proposes it. REPLICA_QUEUED: cb runs later, exactly once:
 *   RPC_OK once a majority holds it durable and the engine here applied it; RPC_NOT_LEADER
 *   when leadership was lost meanwhile (outcome unknown: retry; puts and deletes are
 *   idempotent); RPC_INTERNAL when the store is stopping. Otherwise replica_write returns
 *   at once: RPC_NOT_LEADER (msg and leader, the leader's address or "" when unknown),
 *   RPC_TOO_LARGE or RPC_BAD_REQUEST (over a limit), and cb never runs.
 * - Reads: replica_read returns RPC_OK when this store may serve a read now (it leads, has
 *   applied a barrier of its current term, and has applied everything committed), QUEUED
 *   when it must wait for a barrier first (cb runs as for writes), or RPC_NOT_LEADER.
 * - Applying: a command at or below the engine's applied index (a replay after restart) is
 *   skipped; a malformed one is logged and skipped; an engine failure is fatal (the process
 *   exits, as TiKV panics on a disk error, rather than run with Raft and the engine apart).
 *   Snapshots are the engine's whole key space (kv_engine_snapshot_write), taken every 4096
 *   entries or 64 MiB of commands with 512 entries kept behind; installing one goes through
 *   kv_engine_restore, and a restore failure is fatal for the same reason.
 * - Store-to-store RPC: replica_rpc_handler is the "raft_message" method (arg: the replica);
 *   replica_check_peer the peer hook for it (rio_check_peer, plus a record of refused
 *   callers for /status).
 * - replica_status_json: {"region_id","role","term","leader","applied_index",
 *   "commit_index","peers":[{"store_id","address","link","reason"}],"refused_callers":[...]}
 *   (link: up, down, refused, or idle: nothing sent to that peer yet). replica_leader_term: the term when this store leads
 *   (for PD's leader_of), else 0.
 * - replica_close runs raft_close and the loop until it completes, then frees everything;
 *   call it after the loop stopped serving clients and before the engine closes. One event
 *   loop thread.
 */
#ifndef TISIM_REPLICA_H
#define TISIM_REPLICA_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cipherfile.h"
#include "kv_engine.h"
#include "rpc.h"
#include "tikv_pd.h"
#include "tls.h"

#define REPLICA_REGION_ID 1
/* A command must fit one raft message, itself one RPC body, with room for the envelope. */
#define REPLICA_MAX_COMMAND (RPC_MAX_BODY - 64u * 1024)
#define REPLICA_QUEUED (-1)
#define REPLICA_FORMING_SEC 30

struct replica_opts {
    struct event_base *base;
    struct kv_engine *engine;
    const char *data_dir;
    const char *addr;                /* this store's --addr: its Raft address */
    const struct cipher_keys *keys;  /* NULL: a plaintext store */
    struct tls_ctx *client_tls;      /* the store's server cert as a client; NULL: no TLS */
    const char *own_cn;              /* the CN of that cert (also allowed as a peer) */
    char *const *allowed_cn;         /* cert-allowed-cn (not copied: must outlive the replica) */
    size_t n_allowed_cn;
    unsigned election_timeout_ms;    /* 0: 1000 */
    unsigned heartbeat_timeout_ms;   /* 0: 100 */
};

/* st: RPC_OK, RPC_NOT_LEADER (leader: its address or ""), RPC_INTERNAL; msg for errors. */
typedef void (*replica_cb)(int st, const char *msg, const char *leader, void *arg);

struct replica;

struct replica *replica_new(const struct replica_opts *o, char *err, size_t errlen);
void replica_on_region(struct replica *r, uint64_t store_id, const struct tikv_pd_region *region);
int replica_write(struct replica *r, const struct kv_op *ops, size_t n, replica_cb cb, void *arg,
                  char *msg, size_t msglen, const char **leader);
int replica_read(struct replica *r, replica_cb cb, void *arg, char *msg, size_t msglen,
                 const char **leader);
void replica_rpc_handler(struct rpc_call *call, const struct rpc_frame *req, void *arg);
enum rpc_status replica_check_peer(struct replica *r, const struct conn_peer *peer, char *msg,
                                   size_t msglen);
json_t *replica_status_json(struct replica *r);
uint64_t replica_leader_term(struct replica *r);
/* True while this store leads and the group is still forming: a peer PD lists is not a voter
 * yet, or (for REPLICA_FORMING_SEC after Raft started) PD lists fewer than 3 peers. The PD
 * link heartbeats faster meanwhile, so the leader learns of new peers in a fraction of a
 * second rather than at the next 2 s heartbeat. */
bool replica_forming(struct replica *r);
const char *replica_role(struct replica *r); /* "leader", "follower", "candidate", "none" */
void replica_close(struct replica *r);

#endif
