/* kv_engine.h — TiKV's local storage engine: every key and value in an ordered in-memory
 * index, made durable by an append-only record log (kv_log.h) under the data dir, encrypted
 * with the cipher-file's key when there is one.
 *
 * Data dir layout: meta.json (kv_meta.h), kv.log (kv_log.h format, file id 1; kv.log.new only
 * while a restore writes it). One record
 * per group commit holds the operations of every write in it, each encoded as
 *   u8 op (1 put, 2 delete) | u32 key length | u32 value length | key | value
 * (little-endian, after a u8 payload version 1), so a write's operations reach the disk all
 * together or not at all.
 *
 * Contract:
 * - kv_engine_open(): creates dir (one level) if needed; refuses a dir that holds kv.log but
 *   no meta.json; checks meta.json against keys (kv_meta_open: TiDB's encryption limitations,
 *   the dir untouched on refusal) before any data file is opened; replays kv.log into the
 *   index (a torn tail is cut with a WARN, corruption fails the open naming file and offset);
 *   takes an exclusive lock on kv.log (a second process gets "in use"); starts the sync
 *   thread. keys: NULL for a plaintext dir.
 * - kv_engine_write(): queues ops (copied) as one atomic write and returns 0; done(0, NULL,
 *   arg) runs later on the event loop, after the write's record is on disk (fdatasync) and
 *   the index shows it. Writes queued while a sync runs share the next sync (group commit).
 *   On a write or sync error done(-1, reason, arg) runs, and every later write is refused.
 *   Returns -1 with err, and never calls done, when the write is refused at once (no ops,
 *   a key over KV_ENGINE_MAX_KEY, a value over KV_ENGINE_MAX_VALUE, the engine failed or
 *   is closing). Writes complete in the order they were queued.
 * - kv_engine_apply() is Raft's state machine (tikv/replica.h): ops (encoded, without the
 *   version byte) go into the index at once, so reads see them on return, and one record
 *   carrying `index` (the command's Raft log index) is queued for the group commit, which
 *   acknowledges no one: the command is durable in the Raft log already. Such records have
 *   payload version 2: u8 2 | u64 applied index | ops. kv_engine_applied_index() is the
 *   highest index applied (after open: the highest made durable), so a replay of the Raft log
 *   after a restart skips commands at or below it.
 * - Snapshots (Raft's fsm->snapshot and fsm->restore): kv_engine_snapshot_write() serializes
 *   the whole key space into a buffer of exactly kv_engine_snapshot_size() bytes (the caller
 *   allocates it, with raft_malloc for Raft):
 *     u8 KV_ENGINE_SNAPSHOT_VERSION | u64 applied index | u64 pairs | pairs as put ops
 *     (the op encoding above) | u32 CRC-32 of everything before it     (little-endian)
 *   The applied index written is the higher of `index` (Raft's, when it takes the snapshot)
 *   and the engine's own (ahead of Raft while Raft replays its log after a restart).
 *   kv_engine_restore() replaces the engine's contents with a snapshot's and sets the applied
 *   index to the snapshot's: it checks the snapshot's checksum, and when its index is past the
 *   engine's, its pairs, building the new index first (nothing changes when the snapshot is
 *   malformed: -1), waits for queued writes to be durable and answered, writes the pairs as
 *   a new kv.log beside the old one (kv.log.new, fsync), renames it over kv.log and fsyncs
 *   the directory. A kill -9 at any moment leaves
 *   the old contents or the new, never a mix; an unfinished kv.log.new is removed at the
 *   next open or restore. Returns 0 (restored), 1 when the engine's applied index is at or
 *   past the snapshot's (nothing to do: its contents are the snapshot's or later ones), -1
 *   with err. Blocking: it runs on the loop and waits for its own writes and fsyncs.
 * - Reads (get, scan, count) are synchronous, from memory, and see only acknowledged writes
 *   (and applied commands).
 *   get's *val points into the index: valid until control returns to the event loop.
 *   scan: keys in [start, end) in order (end NULL: no upper bound), at most limit (0: all).
 * - kv_engine_close(): waits for queued writes to become durable, runs their callbacks (from
 *   inside close), stops the thread and frees everything. Do not write from those callbacks,
 *   and do not close the engine from inside a write callback (close from a timer or signal
 *   event instead).
 * - The engine belongs to one event loop thread: call everything from that thread. The sync
 *   thread reports back through a pipe watched by an event, so libevent needs no threading
 *   support.
 */
#ifndef TISIM_KV_ENGINE_H
#define TISIM_KV_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cipherfile.h"
#include "kv_index.h"

struct event_base;
struct kv_engine;

#define KV_ENGINE_LOG_FILE "kv.log"
#define KV_ENGINE_MAX_KEY (64u << 10)
#define KV_ENGINE_MAX_VALUE (8u << 20)

enum kv_op_type { KV_OP_PUT = 1, KV_OP_DELETE = 2 };

struct kv_op {
    enum kv_op_type type;
    const void *key;
    size_t klen;
    const void *val; /* KV_OP_PUT only */
    size_t vlen;
};

/* The payload codec, shared with bulk files (tikv_import.h): a payload is one byte
 * KV_ENGINE_PAYLOAD_VERSION, then each operation as described at the top. */
#define KV_ENGINE_PAYLOAD_VERSION 1
#define KV_ENGINE_OP_HDR 9 /* u8 op | u32 key length | u32 value length */
size_t kv_engine_op_size(const struct kv_op *op);
/* Writes op at p (kv_engine_op_size(op) bytes); returns the byte after it. */
uint8_t *kv_engine_encode_op(const struct kv_op *op, uint8_t *p);
/* Calls fn for each operation of the bytes after a payload's version byte, in order (op's
 * pointers into p). 0; 1 when malformed (cut short, unknown op, a delete with a value);
 * else fn's nonzero return, which stops the walk. */
typedef int (*kv_op_fn)(const struct kv_op *op, void *arg);
int kv_engine_each_op(const uint8_t *p, size_t len, kv_op_fn fn, void *arg);

/* status 0: durable; -1: failed, err says why (valid during the call). */
typedef void (*kv_write_cb)(int status, const char *err, void *arg);

struct kv_engine_stats {
    bool encrypted;
    uint64_t keys;      /* keys in the index */
    uint64_t bytes;     /* bytes of keys and values in the index */
    uint64_t log_bytes; /* size of kv.log */
    uint64_t writes;    /* writes made durable since open */
    uint64_t syncs;     /* fdatasync calls since open (writes / syncs: the group commit) */
};

int kv_engine_open(struct event_base *base, const char *dir, const struct cipher_keys *keys,
                   struct kv_engine **out, char *err, size_t errlen);
int kv_engine_write(struct kv_engine *e, const struct kv_op *ops, size_t n, kv_write_cb done,
                    void *arg, char *err, size_t errlen);
/* 0 and *val, *vlen set when found, 1 when not. */
/* 0 when ops (encoded, no version byte) are well formed and within the record limit. */
int kv_engine_check_ops(const uint8_t *ops, size_t len);
int kv_engine_apply(struct kv_engine *e, uint64_t index, const uint8_t *ops, size_t len,
                    char *err, size_t errlen);
uint64_t kv_engine_applied_index(const struct kv_engine *e);
#define KV_ENGINE_SNAPSHOT_VERSION 1
size_t kv_engine_snapshot_size(const struct kv_engine *e);
int kv_engine_snapshot_write(struct kv_engine *e, uint64_t index, uint8_t *buf, size_t len,
                             char *err, size_t errlen);
int kv_engine_restore(struct kv_engine *e, const uint8_t *buf, size_t len, char *err,
                      size_t errlen);
int kv_engine_get(struct kv_engine *e, const void *key, size_t klen, const void **val,
                  size_t *vlen);
size_t kv_engine_scan(struct kv_engine *e, const void *start, size_t slen, const void *end,
                      size_t elen, size_t limit, kv_index_fn fn, void *arg);
void kv_engine_stats(struct kv_engine *e, struct kv_engine_stats *out);
void kv_engine_close(struct kv_engine *e);

#endif
