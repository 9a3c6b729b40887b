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
 *   fire), joins the worker, then runs its callback from the loop. recover is RAFT_NOTFOUND.
 * - Snapshots: snapshot_put plans on the loop (rstore_plan_snapshot: the log index drops the
 *   entries the snapshot covers, up to index - trailing, or all with trailing 0) and queues
 *   the write in the same FIFO as appends and truncates: it takes effect after every earlier
 *   one and before any later one. The worker writes snap-<index> (reading raft's data
 *   buffers, which raft keeps unchanged until the callback), then compacts the log; the
 *   callback runs on the loop after both are durable. snapshot_get is queued in the FIFO too
 *   (so it sees every put before it); the worker reads the latest snapshot and the callback
 *   gets it raft_malloc'd. load returns the snapshot rstore read at open and the log after
 *   it. The worker seals and opens snapshot files with rstore's snapshot sealer: give rstore
 *   its own instance (rstore_set_snapshot_sealer) before rio_new when the sealer has state.
 * - Clock: tick every heartbeat interval from an EV_PERSIST timer; time is CLOCK_MONOTONIC in
 *   ms; random is xorshift64* seeded from getrandom (or opts.seed, for tests).
 * - Send: the message is encoded at once (raft's buffers are not kept) into a "raft_message"
 *   RPC to the destination's address, on one long-lived rpc_client per peer (dialed with
 *   opts.client_tls: the store's own server cert; TLS sessions resume). send returns 0 and its
 *   callback runs later, never inside the call: 0 once the peer's rio accepted the message (the
 *   RPC answered OK), RAFT_NOCONNECTION when it could not be delivered (unreachable, refused,
 *   no answer within RIO_CALL_TIMEOUT_MS, too many waiting), RAFT_CANCELED on close. An
 *   AppendEntries too big for one RPC body is cut to the prefix of entries that fits (a valid
 *   AppendEntries; raft sends the rest after the result). An InstallSnapshot whose data is
 *   over opts.snapshot_chunk (RIO_SNAPSHOT_CHUNK, 4 MiB) goes as RIO_MSG_CHUNK messages of at
 *   most that much data, RIO_SNAPSHOT_WINDOW in flight, each sent once the peer answered an
 *   earlier one, then RIO_MSG_DONE with the rest; its callback runs once DONE is answered (0),
 *   or as soon as any part fails (RAFT_NOCONNECTION; raft sends the snapshot again later).
 *   Link changes are logged once each:
 *   "raft link to store 2 (127.0.0.1:20161) refused: <the peer's answer>".
 * - Receive: rio_rpc_handler is the "raft_message" method (arg: the rio). It answers at once
 *   (OK; BAD_REQUEST for a malformed message; NOT_FOUND for another region, another store id,
 *   or a rio not started or closing) and hands the decoded message to raft's recv callback;
 *   an AppendEntries' entries share one raft_malloc'd batch (raft frees entries[0].batch).
 *   Chunks go into one raft_malloc'd buffer per sending peer (at most RIO_SNAPSHOT_MAX bytes,
 *   in order: a chunk that does not continue the transfer is BAD_REQUEST and the transfer is
 *   dropped; a new transfer from that peer replaces an unfinished one; one idle for
 *   RIO_SNAPSHOT_IDLE_MS is dropped at a tick); DONE with every byte received hands raft the
 *   InstallSnapshot with that buffer as its data. Chunks and DONE travel on "raft_message",
 *   so the server's peer check for that method (rio_check_peer) covers them unchanged.
 * - Peers: rio_check_peer is the server's check before a raft_message: with TLS, the caller's
 *   CN must be "TiKV-Server" or policy.own_cn, and in policy.allowed_cn when that list is not
 *   empty (the store's cert-allowed-cn, refused in TiKV's words). A refusal is
 *   UNAUTHENTICATED and one WARN line naming the peer's address and CN ("refused raft peer
 *   127.0.0.1:5123: CN "TiKV-Server" ..."), logged again only for another address.
 * - Codec: rio_msg_encode / rio_msg_decode, all integers big-endian (layout in rio.c). Decode
 *   checks every count against the bytes present before allocating, refuses unknown types,
 *   bad flags, trailing bytes; on success the message owns raft_malloc'd parts, which
 *   rio_msg_discard frees when the message is not handed to raft.
 * - One event loop thread calls rio; the worker is internal. rio_get_stats: counters (the
 *   worker's: appends written, truncates, syncs, snapshots put and read; the loop's: snapshots
 *   and chunks sent and received), safe to read from the loop.
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
#define RIO_SNAPSHOT_CHUNK (4u << 20) /* snapshot data per chunk; bigger ones go chunked */
#define RIO_SNAPSHOT_WINDOW 2           /* chunks in flight per transfer */
#define RIO_SNAPSHOT_MAX (16ull << 30)  /* the largest snapshot a store accepts */
#define RIO_SNAPSHOT_IDLE_MS 30000      /* a transfer with no chunk for this long is dropped */
#define RIO_MAX_ASSEMBLIES 8            /* transfers being received at once (one per peer) */

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

/* rio's own message types on the same method, for an InstallSnapshot whose data does not fit
 * one RPC body: chunks of the data, then "done" with the rest of the InstallSnapshot. */
#define RIO_MSG_CHUNK 100
#define RIO_MSG_DONE 101

struct rio_chunk {
    uint64_t xfer;  /* the sender's transfer id */
    uint64_t off;   /* where data goes in the snapshot's data */
    uint64_t total; /* the snapshot data's length */
    const uint8_t *data;
    size_t len;
};

/* The type byte of an encoded message (a RAFT_IO_* or RIO_MSG_*), 0 when too short. */
unsigned rio_msg_type(const void *buf, size_t len);
int rio_chunk_encode(const struct rio_env *env, const struct rio_chunk *c, uint8_t **out,
                     size_t *len, char *err, size_t errlen);
/* c->data points into buf. */
int rio_chunk_decode(const void *buf, size_t len, struct rio_env *env, struct rio_chunk *c,
                     char *err, size_t errlen);
/* m: an InstallSnapshot; its data is left out (sent as chunks), its length sent as total. */
int rio_done_encode(const struct rio_env *env, const struct raft_message *m, uint64_t xfer,
                    uint8_t **out, size_t *len, char *err, size_t errlen);
/* m: an InstallSnapshot without data (m owns its conf); total: the data's length. */
int rio_done_decode(const void *buf, size_t len, struct rio_env *env, struct raft_message *m,
                    uint64_t *xfer, uint64_t *total, char *err, size_t errlen);

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
    size_t snapshot_chunk; /* 0: RIO_SNAPSHOT_CHUNK (tests make it smaller) */
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
    uint64_t snapshot_puts; /* snapshots written (taken here or installed from a leader) */
    uint64_t snapshot_gets; /* snapshots read back to be sent */
    uint64_t snapshots_sent;     /* InstallSnapshot sends delivered (answered OK) */
    uint64_t snapshot_chunks_sent;
    uint64_t snapshots_received; /* InstallSnapshot handed to raft (whole or assembled) */
    uint64_t snapshot_chunks_received;
};
void rio_get_stats(struct rio *io, struct rio_stats *out);

/* The "raft_message" method handler, also for RIO_MSG_CHUNK and RIO_MSG_DONE; arg: the rio. */
void rio_rpc_handler(struct rpc_call *call, const struct rpc_frame *req, void *arg);

/* The peers this rio has sent to, up to max; returns how many were written. */
size_t rio_links(const struct rio *io, struct rio_link_info *out, size_t max);
const char *rio_link_name(enum rio_link l); /* "none", "up", "down", "refused" */

#endif
