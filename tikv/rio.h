/* rio.h — libraft's struct raft_io (version 1) for a TiKV store: the clock and tick on the
 * store's libevent loop, the Raft log on rstore (durable files), and messages to other stores
 * over the framed RPC (rpc.h) with mutual TLS. Also the codec of raft messages on that wire.
 *
 * Contract (see docs/replication.md, sections 2 and 3, for what libraft requires):
 * - rio_new takes an open rstore (rio owns it from then on, also on failure) and gives the
 *   struct raft_io to pass to raft_init. rio_free after raft_close's callback (or when raft
 *   was never started); it frees the rstore.
 * - Disk: one worker thread per rio (pthreads) writes the log. append seals the entries on the
 *   loop and queues them; truncate plans the cut and queues it in the same FIFO (after every
 *   append submitted before it, before any later one). Jobs of one loop turn reach the worker
 *   together; it writes every append queued before the next truncate and fdatasyncs once
 *   (group commit). Completions come back through a pipe watched by a libevent event (no
 *   evthread): append callbacks run on the loop, in submission order, after their fsync,
 *   never inside the call. After a failed write every later job fails (RAFT_IOERR).
 *   load and bootstrap run on the loop (before raft serves anything). set_term/set_vote stay
 *   synchronous on the loop, durable on return (libraft 0.15 sends right after them; once per
 *   election; they never wait behind queued log writes). close drains the queue (callbacks
 *   fire), joins the worker, then runs its callback from the loop. Snapshots are not supported yet:
 *   snapshot_put and snapshot_get return RAFT_NOTFOUND (set raft's snapshot threshold above
 *   any log the store will hold), load never returns a snapshot, recover is RAFT_NOTFOUND.
 * - Clock: tick every heartbeat interval from an EV_PERSIST timer; time is CLOCK_MONOTONIC in
 *   ms; random is xorshift64* seeded from getrandom (or opts.seed, for tests).
 * - Send: the message is encoded at once (raft's buffers are not kept) into a "raft_message"
 *   RPC to the destination's address, on one long-lived rpc_client per peer (dialed with
 *   opts.client_tls: the store's own server cert; TLS sessions resume). send returns 0 and its
 *   callback runs later, never inside the call: 0 once the peer's rio accepted the message (the
 *   RPC answered OK), RAFT_NOCONNECTION when it could not be delivered (unreachable, refused,
 *   no answer within RIO_CALL_TIMEOUT_MS, too many waiting), RAFT_CANCELED on close. An
 *   AppendEntries too big for one RPC body is cut to the prefix of entries that fits (a valid
 *   AppendEntries; raft sends the rest after the result). Link changes are logged once each:
 *   "raft link to store 2 (127.0.0.1:20161) refused: <the peer's answer>".
 * - Receive: rio_rpc_handler is the "raft_message" method (arg: the rio). It answers at once
 *   (OK; BAD_REQUEST for a malformed message; NOT_FOUND for another region, another store id,
 *   or a rio not started or closing) and hands the decoded message to raft's recv callback;
 *   an AppendEntries' entries share one raft_malloc'd batch (raft frees entries[0].batch).
 * - Peers: rio_check_peer is the server's check before a raft_message: with TLS, the caller's
 *   CN must be "TiKV-Server" or policy.own_cn, and in policy.allowed_cn when that list is not
 *   empty (the store's cert-allowed-cn, refused in TiKV's words). A refusal is
 *   UNAUTHENTICATED and one WARN line naming the peer's address and CN ("refused raft peer
 *   127.0.0.1:5123: CN "TiKV-Server" ..."), logged again only for another address.
 * - Codec: rio_msg_encode / rio_msg_decode, all integers big-endian (layout in rio.c). Decode
 *   checks every count against the bytes present before allocating, refuses unknown types,
 *   bad flags, trailing bytes; on success the message owns raft_malloc'd parts, which
 *   rio_msg_discard frees when the message is not handed to raft.
 * - One event loop thread calls rio; the worker is internal. rio_get_stats: counters the
 *   worker keeps (appends written, truncates, syncs), safe to read from the loop.
 */
#ifndef TISIM_RIO_H
#define TISIM_RIO_H

#include <event2/event.h>
#include <raft.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "rpc.h"
#include "rstore.h"

#define RIO_METHOD "raft_message"
#define RIO_ADDR_MAX 255
#define RIO_CALL_TIMEOUT_MS 2000
#define RIO_MAX_WAITING 256 /* sends waiting for an answer, per peer */
#define RIO_PEER_CN "TiKV-Server"

/* ---- codec ---- */

struct rio_env {
    uint64_t region_id;
    uint64_t from_id;
    uint64_t to_id;
    char from_addr[RIO_ADDR_MAX + 1];
};

/* Encodes m (m->server_id is the destination) into a malloc'd *out of at most max bytes.
 * *n_sent: the AppendEntries entries included (all others types: 0). -1 with err. */
int rio_msg_encode(const struct rio_env *env, const struct raft_message *m, size_t max,
                   uint8_t **out, size_t *len, unsigned *n_sent, char *err, size_t errlen);
/* Decodes into env and m (m->server_id = from, m->server_address = env->from_addr). */
int rio_msg_decode(const void *buf, size_t len, struct rio_env *env, struct raft_message *m,
                   char *err, size_t errlen);
/* Frees what a decoded message owns (entries and batch, snapshot conf and data). */
void rio_msg_discard(struct raft_message *m);

/* ---- peer check ---- */

struct rio_policy {
    const char *own_cn;      /* the CN of this store's cert, also allowed; NULL: none */
    char *const *allowed_cn; /* the store's cert-allowed-cn; n_allowed_cn 0: no list */
    size_t n_allowed_cn;
    char last_refused[64];   /* internal: the address last logged */
};

enum rpc_status rio_check_peer(struct rio_policy *p, const struct conn_peer *peer, char *msg,
                               size_t msglen);

/* ---- the raft_io ---- */

struct rio_opts {
    struct event_base *base;
    struct tls_ctx *client_tls; /* client ctx with the store's server cert; NULL: plaintext */
    uint64_t region_id;
    uint64_t seed; /* 0: from getrandom */
};

enum rio_link { RIO_LINK_NONE, RIO_LINK_UP, RIO_LINK_DOWN, RIO_LINK_REFUSED };

struct rio_link_info {
    uint64_t id;
    char addr[RIO_ADDR_MAX + 1];
    enum rio_link link;
    char reason[256];
};

struct rio;

struct rio *rio_new(const struct rio_opts *opts, struct rstore *store, char *err,
                    size_t errlen);
struct raft_io *rio_raft_io(struct rio *io);
void rio_free(struct rio *io);

struct rio_stats {
    uint64_t appends;   /* append requests written and synced */
    uint64_t truncates; /* truncations done */
    uint64_t syncs;     /* fdatasync/fsync calls on the log by the worker */
};
void rio_get_stats(struct rio *io, struct rio_stats *out);

/* The "raft_message" method handler; arg is the struct rio. */
void rio_rpc_handler(struct rpc_call *call, const struct rpc_frame *req, void *arg);

/* The peers this rio has sent to, up to max; returns how many were written. */
size_t rio_links(const struct rio *io, struct rio_link_info *out, size_t max);
const char *rio_link_name(enum rio_link l); /* "none", "up", "down", "refused" */

#endif
