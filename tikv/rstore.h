/* rstore.h — the Raft log store of a TiKV store: term, vote and log entries in files under one
 * directory, every record sealed (encrypted and authenticated) through a pluggable sealer.
 * Plain blocking file code; tests call it directly. rio (the raft_io) plans writes on its
 * loop thread and applies them on its worker thread (the split below).
 *
 * Files: <dir>/meta holds one record {term, vote}, replaced atomically (meta.tmp, fsync,
 * rename, fsync of the directory). <dir>/log holds records {index, term, type, payload}, one
 * per entry, indexes consecutive from the first. <dir>/snap-<index> holds the latest snapshot:
 * a header record {u8 format 1, index, term, configuration index, data length, u32 length of
 * the configuration, the configuration (u32 n, n x {u64 id, u8 role, u16 length, address})},
 * then the data in records of at most RSTORE_SNAP_CHUNK bytes. Integers big-endian.
 *
 * Record framing: u32 sealed length, u32 check of that length, then the sealed bytes. The
 * sealer gets the file name and the record's offset as context, so a record copied to another
 * place fails to open. Without a sealer a record is its plaintext plus a CRC-32.
 * Offsets in the log are logical: a compacted log starts with a 24-byte header ("TSRAFTLG",
 * u64 logical offset of byte 24, u32 check, u32 0) and its records keep the offsets they were
 * sealed for, so compaction copies them without opening them. A log without the header (never
 * compacted) starts at offset 0. Errors and notes name physical file offsets.
 *
 * Contract:
 * - rstore_open creates the directory and files when missing. The meta record must open
 *   (a wrong key fails here, before the log is touched). In the log, a record that is cut
 *   short, or fails to open and ends the file, or a header of zeros followed only by zeros, is
 *   a torn tail (a write whose sync never finished): it is cut off the file (truncate + fsync)
 *   and rstore_note says so, naming the file and offset. Any other bad record, or an index
 *   out of sequence, is corruption: rstore_open fails with one line naming the file and
 *   offset, and changes nothing.
 * - rstore_load returns the log on disk in libraft's load shape: entries in one raft_malloc'd
 *   array whose buffers point into one raft_malloc'd batch (the caller, libraft, frees both);
 *   NULL and 0 when the log is empty; start is the first index (when the log is empty: the
 *   snapshot's index + 1, or 1 without one). Call it before the writer thread runs.
 * - Snapshots. rstore_open reads and checks the latest snap-<index> whole (any bad or missing
 *   record is corruption: one line naming the file and offset; a snapshot file gets its name
 *   only once complete, so there is no torn tail to cut), removes older ones and leftover
 *   snap-*.tmp and log.tmp (noted), and keeps it for the first rstore_snapshot_get
 *   (libraft's load).
 *   If the log does not continue the snapshot (no entry at its index with its term, and it
 *   does not start right after it: a crash between an install's rename and the log's drop),
 *   the log is dropped (noted). A log that starts after snapshot index + 1 is corruption.
 * - rstore_snapshot_put(trailing, snapshot) = plan + put: rstore_plan_snapshot (loop) encodes
 *   the configuration and drops entries up to index - trailing (all of them when trailing is
 *   0) from the index; rstore_put_snapshot (writer) writes snap-<index>.tmp through the
 *   snapshot sealer, fsyncs, renames it to snap-<index>, fsyncs the directory, then compacts
 *   the log when entries were dropped (the kept records copied into log.tmp behind the
 *   header, fsync, rename over log, fsync of the directory), then removes older snapshots.
 *   After a crash at any point the previous snapshot or the new one is whole, and the log
 *   holds at least what the snapshot does not. rstore_snapshot_get returns the latest
 *   snapshot (raft_malloc'd, one buffer; rstore_snapshot_free or libraft frees it), NULL
 *   when there is none. rstore_last_index is the snapshot's index when the log is empty; the
 *   next append must then be that index + 1.
 * - Sealers: the main sealer seals on the loop thread (appends, meta). The snapshot sealer
 *   (rstore_set_snapshot_sealer; default the main one) seals and opens snapshot files in
 *   rstore_put_snapshot and rstore_snapshot_get, on the writer thread: give it its own
 *   instance when the sealer keeps state (rseal: one seal at a time per instance).
 * - rstore_append writes entries first.. (first must be last index + 1, or any index when the
 *   log is empty); they are durable only after rstore_sync. rstore_truncate(i) removes
 *   entries >= i and is durable on return. rstore_set_meta is durable on return.
 * - Split for a writer thread: rstore_plan_append seals the records (at the offsets they will
 *   have) into a malloc'd w->buf and updates the in-memory index; rstore_plan_truncate updates
 *   the index and gives the offset to cut at (1), or 0 when there is nothing to cut. Those run
 *   on one thread (rio's loop), with rstore_set_meta, rstore_last_index and rstore_load.
 *   rstore_write_at (pwrite of a planned write), rstore_cut (ftruncate + fsync) and
 *   rstore_sync touch only the log file, so another thread (rio's worker) may run them, in
 *   the order they were planned; so may rstore_put_snapshot and rstore_snapshot_get.
 *   rstore_append = plan + write_at, rstore_truncate = plan + cut. A failed write_at, cut or
 *   put leaves the files behind the index: stop using the store.
 * - Errors: -1 and one line in err. Otherwise not thread-safe: one caller at a time.
 */
#ifndef TISIM_RSTORE_H
#define TISIM_RSTORE_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RSTORE_MAX_RECORD (64u * 1024 * 1024)
#define RSTORE_SNAP_CHUNK (1u << 20) /* snapshot data bytes per record */

/* Seals records; NULL (or NULL functions) means plaintext + CRC-32. */
struct rstore_sealer {
    size_t overhead; /* bytes seal adds to a record */
    /* out: len + overhead bytes. 0 or -1. */
    int (*seal)(void *arg, const char *file, uint64_t off, const void *in, size_t len,
                void *out);
    /* in: len bytes (len >= overhead); out: len - overhead bytes. -1: fails to open. */
    int (*open)(void *arg, const char *file, uint64_t off, const void *in, size_t len,
                void *out);
    void *arg;
};

struct rstore;

struct rstore *rstore_open(const char *dir, const struct rstore_sealer *sealer, char *err,
                           size_t errlen);
void rstore_close(struct rstore *s);

/* What rstore_open repaired ("" when nothing): "log: torn tail cut at offset 123". */
const char *rstore_note(const struct rstore *s);

int rstore_load(struct rstore *s, uint64_t *term, uint64_t *vote, uint64_t *start,
                struct raft_entry **entries, size_t *n, char *err, size_t errlen);
uint64_t rstore_last_index(const struct rstore *s); /* empty: the snapshot's index, or 0 */
uint64_t rstore_first_index(const struct rstore *s); /* empty: rstore_last_index + 1 */

int rstore_set_meta(struct rstore *s, uint64_t term, uint64_t vote, char *err, size_t errlen);
int rstore_append(struct rstore *s, uint64_t first, const struct raft_entry *entries, unsigned n,
                  char *err, size_t errlen);
int rstore_sync(struct rstore *s, char *err, size_t errlen);
int rstore_truncate(struct rstore *s, uint64_t index, char *err, size_t errlen);

/* A planned write: buf (malloc'd, the caller frees it) goes at offset off of the log. */
struct rstore_write {
    uint8_t *buf;
    size_t len;
    uint64_t off;
};

int rstore_plan_append(struct rstore *s, uint64_t first, const struct raft_entry *entries,
                       unsigned n, struct rstore_write *w, char *err, size_t errlen);
int rstore_write_at(struct rstore *s, const struct rstore_write *w, char *err, size_t errlen);
int rstore_plan_truncate(struct rstore *s, uint64_t index, uint64_t *off);
int rstore_cut(struct rstore *s, uint64_t off, char *err, size_t errlen);

/* ---- snapshots ---- */

void rstore_set_snapshot_sealer(struct rstore *s, const struct rstore_sealer *sealer);
uint64_t rstore_snapshot_index(const struct rstore *s); /* the latest planned; 0: none */
int rstore_snapshot_put(struct rstore *s, unsigned trailing, const struct raft_snapshot *snap,
                        char *err, size_t errlen);
int rstore_snapshot_get(struct rstore *s, struct raft_snapshot **out, char *err, size_t errlen);
void rstore_snapshot_free(struct raft_snapshot *snap);

/* A planned snapshot put: what the writer needs besides the snapshot's data. */
struct rstore_snap_job {
    uint64_t index, term, conf_index;
    uint8_t *conf; /* encoded configuration (malloc'd) */
    size_t conf_len;
    bool compact;      /* entries were dropped: rewrite the log */
    uint64_t keep_off; /* logical offset of the first record kept (end: none kept) */
    uint64_t end;      /* logical end of the log when planned */
};

int rstore_plan_snapshot(struct rstore *s, unsigned trailing, const struct raft_snapshot *snap,
                         struct rstore_snap_job *job, char *err, size_t errlen);
/* bufs: the snapshot's data (unchanged until this returns). */
int rstore_put_snapshot(struct rstore *s, const struct rstore_snap_job *job,
                        const struct raft_buffer *bufs, unsigned n_bufs, char *err,
                        size_t errlen);
void rstore_snap_job_free(struct rstore_snap_job *job);

#endif
