/* rseal.h — AES-256-GCM sealing of the Raft log store's records: the struct rstore_sealer that
 * encrypts and authenticates <data-dir>/raft/meta and <data-dir>/raft/log with the data key
 * derived from the store's cipher-file.
 *
 * Who calls it: the code that opens a store's Raft log makes one rseal from the cipher keys,
 * passes rseal_sealer() to rstore_open, and frees the rseal after rstore_close. rstore calls
 * seal when it writes a record (rstore_plan_append and rstore_set_meta, on rio's loop thread)
 * and open when it reads one back (rstore_open).
 *
 * Sealed record (what rstore frames and stores), RSEAL_OVERHEAD = 28 bytes more than the
 * plaintext:
 *   nonce (12) | AES-256-GCM ciphertext (as long as the plaintext) | tag (16)
 *   AAD = "tisim raft v1" | u16 BE length of the file name | the file name ("meta", "log")
 *         | u64 BE offset of the record in that file
 * The tag binds the record to its file and offset: a record copied to another offset or file
 * fails to open, as does any flipped byte or another key.
 * Nonce: an 8-byte prefix drawn from CTR-DRBG (seeded from the system entropy source) in
 * rseal_new, then a u32 BE counter, one per seal; the prefix is drawn again when the counter
 * wraps. Never derived from the offset: rstore reuses offsets after a torn tail is cut or the
 * log is truncated.
 *
 * Contract:
 * - rseal_new() keeps the AES key schedule of keys->data_key (32 bytes), not the caller's
 *   struct: the caller may wipe its keys right after. NULL with one line in err on failure.
 * - seal: out gets len + RSEAL_OVERHEAD bytes; 0, or -1 (file name longer than
 *   RSEAL_MAX_FILE, DRBG or GCM failure). in and out must not overlap.
 * - open: in is a sealed record of len bytes; out gets len - RSEAL_OVERHEAD bytes of
 *   plaintext and 0 is returned only when the tag checks out for this key, file and offset.
 *   Otherwise -1 and out is zeroed: no unauthenticated plaintext ever reaches the caller.
 * - Threads: seal and open each have their own GCM context and seal alone uses the DRBG, so
 *   seal may run on one thread while open runs on another; each of them one thread at a time.
 *   rseal_free only after the last seal and open returned (after rstore_close).
 * - rseal_free() frees the contexts and wipes the key schedules and the nonce state
 *   (mbedtls_platform_zeroize). NULL is a no-op.
 */
#ifndef TISIM_RSEAL_H
#define TISIM_RSEAL_H

#include <stddef.h>
#include <stdint.h>

#include "cipherfile.h"
#include "rstore.h"

#define RSEAL_NONCE_LEN 12
#define RSEAL_TAG_LEN 16
#define RSEAL_OVERHEAD (RSEAL_NONCE_LEN + RSEAL_TAG_LEN)
#define RSEAL_MAX_FILE 64 /* longest file name bound into the AAD */

struct rseal;

struct rseal *rseal_new(const struct cipher_keys *keys, char *err, size_t errlen);
void rseal_free(struct rseal *r);

/* The sealer for rstore_open: overhead RSEAL_OVERHEAD, arg r. r must outlive the store. */
struct rstore_sealer rseal_sealer(struct rseal *r);

/* Tests only: moves the nonce counter forward to counter (never back, so no nonce can repeat
 * under the current prefix), to reach the wrap without 2^32 seals. */
void rseal_advance_counter(struct rseal *r, uint32_t counter);

#endif
