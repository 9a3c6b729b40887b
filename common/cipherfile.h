/* cipherfile.h — TiKV's `[security] cipher-file`: a hex token from which the keys that encrypt
 * a data dir are derived.
 *
 * Contract:
 * - cipherfile_parse() checks the text of a cipher-file and decodes it. Rules, checked in this
 *   order, each with its own error: not empty; one trailing newline ("\n" or "\r\n") allowed;
 *   every other byte a hex digit (the first that is not is named with its offset); an even
 *   number of hex digits; the decoded length a power of two; at most CIPHERFILE_MAX_TOKEN
 *   bytes decoded. Error texts never contain the token's digits.
 * - cipherfile_load() reads the file and parses it; every error is one line starting
 *   "cipher-file PATH: ". On success it derives the keys and wipes the token.
 * - cipherfile_derive(): HKDF-SHA256 with a salt naming tisim; two different info strings give
 *   a 32-byte data key (AES-256-GCM) and a separate 16-byte key check value. The check value
 *   is what a data dir stores to recognise its key; it reveals nothing about the key.
 *   Deterministic: the same token always gives the same keys.
 * - cipherfile_keys_clear() wipes a struct cipher_keys (mbedtls_platform_zeroize).
 * - cipherfile_random_hex(): nbytes from a CSPRNG (CTR-DRBG seeded from the system entropy
 *   source) as 2*nbytes lowercase hex digits and a NUL; outlen must be at least 2*nbytes+1.
 *   This is what `tikv-ctl random-hex --len N` prints.
 * Functions returning int return 0 on success, -1 with a message in err otherwise.
 */
#ifndef TISIM_CIPHERFILE_H
#define TISIM_CIPHERFILE_H

#include <stddef.h>
#include <stdint.h>

#define CIPHERFILE_MAX_TOKEN 1024
#define CIPHERFILE_KEY_LEN 32
#define CIPHERFILE_CHECK_LEN 16
/* The check value as hex, with its NUL. */
#define CIPHERFILE_CHECK_HEX_LEN (2 * CIPHERFILE_CHECK_LEN + 1)

struct cipher_keys {
    uint8_t data_key[CIPHERFILE_KEY_LEN];
    uint8_t key_check[CIPHERFILE_CHECK_LEN];
};

/* text/len: the file's bytes. token must hold CIPHERFILE_MAX_TOKEN bytes. No path in err. */
int cipherfile_parse(const char *text, size_t len, uint8_t *token, size_t *token_len, char *err,
                     size_t errlen);
int cipherfile_load(const char *path, struct cipher_keys *out, char *err, size_t errlen);
int cipherfile_derive(const uint8_t *token, size_t token_len, struct cipher_keys *out, char *err,
                      size_t errlen);
void cipherfile_keys_clear(struct cipher_keys *keys);
/* The key check value as lowercase hex (out: CIPHERFILE_CHECK_HEX_LEN bytes). */
void cipherfile_check_hex(const struct cipher_keys *keys, char out[CIPHERFILE_CHECK_HEX_LEN]);
int cipherfile_random_hex(size_t nbytes, char *out, size_t outlen, char *err, size_t errlen);

#endif
