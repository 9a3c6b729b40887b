/* kv_log.h — an append-only file of records, each sealed with AES-256-GCM (encrypted data
 * dir) or checksummed with CRC-32 (plaintext data dir). The storage engine's record log; any
 * other data file (a bulk-import file, a Raft log) can use the same format with its own
 * file id.
 *
 * File format (integers little-endian):
 *   header, 32 bytes: "TSKVLOG\0" | u32 version (1) | u32 flags (bit 0: encrypted)
 *                     | u64 file id | u32 0 | u32 CRC-32 of the 28 bytes before it
 *   records, from offset 32, each at offset `off`:
 *     u32 body_len | u32 CRC-32(file id u64 | off u64 | body_len u32) | body
 *     plaintext body: payload | u32 CRC-32(file id | off | payload)
 *     encrypted body: nonce (12) | AES-256-GCM ciphertext of payload | tag (16), with
 *                     AAD = file id u64 | off u64 | body_len u32
 *   Binding the file id and offset into the tag means a record copied to another place or
 *   another file fails authentication. The header CRC only locates records; it is not what
 *   makes them trustworthy.
 * Nonces: 8 random bytes drawn from CTR-DRBG (seeded from system entropy) when the log is
 *   opened, then a 32-bit counter per record; the prefix is drawn again when the counter
 *   wraps. Never derived from the offset: offsets are reused after a torn tail is cut.
 *
 * Contract:
 * - kv_log_open(): creates the file if absent (header written to a temp file, fsync, rename,
 *   fsync of the dir), else checks the header (version, encrypted flag equal to key != NULL,
 *   file id) and reads every record in order, passing its payload to fn (if fn returns -1,
 *   open fails with fn's err). A record that fails its check with no valid record after it
 *   is a torn tail: the file is cut there (ftruncate + fsync) and a WARN names the file, the
 *   offset and the bytes dropped. A bad record followed by a valid one is corruption: open
 *   fails with "data file PATH is corrupt at offset N: REASON" and nothing after it is
 *   returned. So is a complete record (its header checks out) that fails its check and is
 *   not the last thing in the file: only the record being written at a crash can be torn,
 *   because every record is synced before the next is written (this also keeps a wrong key
 *   from cutting a whole file). key: the 32-byte data key, or NULL for a plaintext log.
 * - The open file is locked (flock, exclusive): a second open of the same file, from this
 *   process or another, fails with "in use by another process (locked)".
 * - kv_log_append(): seals one record at the end of the file (pwrite, no sync). On a failed
 *   write the log is unusable (the tail is unknown until the next open): later calls fail.
 * - kv_log_sync(): fdatasync; acknowledge writes only after it returns 0. A failed sync is
 *   never retried: the log is unusable after it.
 * - Appends and syncs may run on a thread other than the one that opened the log, one thread
 *   at a time.
 * - kv_log_rename(): renames the open file to path (same directory) and fsyncs that directory,
 *   so the rename is durable on return; the log keeps its descriptor and lock and names path
 *   in its messages from then on. The storage engine's restore builds a whole new log beside
 *   the old one and renames it over it: after a crash either file is complete.
 * Functions returning int: 0 on success, -1 with one line in err otherwise.
 */
#ifndef TISIM_KV_LOG_H
#define TISIM_KV_LOG_H

#include <stddef.h>
#include <stdint.h>

#define KV_LOG_HEADER_LEN 32
#define KV_LOG_RECORD_OVERHEAD_PLAIN (8 + 4)
#define KV_LOG_RECORD_OVERHEAD_SEALED (8 + 12 + 16)
/* The largest payload a record may carry. */
#define KV_LOG_MAX_PAYLOAD (256u << 20)

struct kv_log;

/* payload: a verified record's contents, valid during the call; off: the record's offset. */
typedef int (*kv_log_record_fn)(const uint8_t *payload, size_t len, uint64_t off, void *arg,
                                char *err, size_t errlen);

int kv_log_open(const char *path, uint64_t file_id, const uint8_t *key, kv_log_record_fn fn,
                void *arg, struct kv_log **out, char *err, size_t errlen);
/* Reads an existing file without changing it (read-only, no lock, nothing created or cut):
 * as kv_log_open, but any record that fails its check is an error ("data file PATH is corrupt
 * at offset N: REASON"), torn or not. For files from elsewhere, such as a bulk-import file:
 * a wrong key fails at the first record with "authentication failed", a plaintext file where
 * a key is given (or the reverse) fails at offset 0. Records before a bad one have already
 * been passed to fn: stage them, and apply them only when kv_log_read returns 0. */
int kv_log_read(const char *path, uint64_t file_id, const uint8_t *key, kv_log_record_fn fn,
                void *arg, char *err, size_t errlen);
int kv_log_append(struct kv_log *log, const void *payload, size_t len, char *err,
                  size_t errlen);
int kv_log_sync(struct kv_log *log, char *err, size_t errlen);
/* The file's size: where the next record goes. */
uint64_t kv_log_size(const struct kv_log *log);
int kv_log_rename(struct kv_log *log, const char *path, char *err, size_t errlen);
const char *kv_log_path(const struct kv_log *log);
void kv_log_close(struct kv_log *log);

#endif
