/* kv_meta.h — a TiKV data dir's identity: <data-dir>/meta.json says whether the dir is
 * encrypted and, when it is, how to recognise its key.
 *
 * File (one JSON object, written once when the dir is first opened):
 *   {"format":"tisim-tikv-1","encrypted":true,"cipher":"aes-256-gcm","kdf":"hkdf-sha256",
 *    "key_check":"<32 hex digits>","created":"2026-11-28T10:00:00Z"}
 * cipher, kdf and key_check are present only when encrypted is true. key_check is the
 * cipher-file's key check value (cipherfile.h), never the key or the token.
 *
 * Contract:
 * - kv_meta_load(): 0 and *out filled; 1 when DIR/meta.json does not exist (a new dir);
 *   -1 with err naming the file and the field when it cannot be read or is not valid.
 * - kv_meta_admit(): whether keys (NULL: no cipher-file) may open a dir described by m.
 *   Refuses, with TiDB's limitations as the reason: a cipher-file on a plaintext dir
 *   ("encryption cannot be turned on ..."), no cipher-file on an encrypted dir ("encryption
 *   cannot be turned off ..."), a different key ("... (key check mismatch)"). Reads and
 *   writes nothing.
 * - kv_meta_create(): writes meta.json for keys (NULL: plaintext) atomically: a temp file,
 *   fsync, rename, fsync of the dir. The dir must exist.
 * - kv_meta_open(): load; if there is no meta.json, create it; otherwise admit. Call it
 *   before any data file is opened, so a refused key leaves the dir exactly as it was.
 *   The caller is responsible for refusing a dir that holds data files but no meta.json.
 * Functions returning int: 0 on success, -1 with one line in err otherwise.
 */
#ifndef TISIM_KV_META_H
#define TISIM_KV_META_H

#include <stdbool.h>
#include <stddef.h>

#include "cipherfile.h"

#define KV_META_FILE "meta.json"
#define KV_META_FORMAT "tisim-tikv-1"
#define KV_META_CIPHER "aes-256-gcm"
#define KV_META_KDF "hkdf-sha256"

struct kv_meta {
    bool encrypted;
    char cipher[16];                           /* "" when plaintext */
    char kdf[16];                              /* "" when plaintext */
    char key_check[CIPHERFILE_CHECK_HEX_LEN];  /* "" when plaintext */
    char created[32];                          /* RFC 3339, UTC */
};

int kv_meta_load(const char *dir, struct kv_meta *out, char *err, size_t errlen);
int kv_meta_admit(const char *dir, const struct kv_meta *m, const struct cipher_keys *keys,
                  char *err, size_t errlen);
int kv_meta_create(const char *dir, const struct cipher_keys *keys, struct kv_meta *out,
                   char *err, size_t errlen);
int kv_meta_open(const char *dir, const struct cipher_keys *keys, struct kv_meta *out, char *err,
                 size_t errlen);
/* "encrypted (aes-256-gcm, hkdf-sha256, key check 0a1b…)" or "plaintext": for tikv-ctl and
 * /status. Never prints the key. */
void kv_meta_describe(const struct kv_meta *m, char *buf, size_t len);

#endif
