/* rseal.c — AES-256-GCM sealer for the Raft log store (see rseal.h). */
#include "rseal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/platform_util.h>

#include "bytes.h"

#define DOMAIN "tisim raft v1"
#define DOMAIN_LEN (sizeof DOMAIN - 1)
#define AAD_MAX (DOMAIN_LEN + 2 + RSEAL_MAX_FILE + 8)
#define PREFIX_LEN 8

struct rseal {
    mbedtls_gcm_context seal_gcm; /* used by seal only */
    mbedtls_gcm_context open_gcm; /* used by open only */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg; /* nonce prefixes, seal only */
    uint8_t prefix[PREFIX_LEN];
    uint32_t counter;
};

/* DOMAIN | u16 name length | name | u64 off, all BE; returns its length, 0 if name is too long. */
static size_t record_aad(uint8_t aad[AAD_MAX], const char *file, uint64_t off)
{
    size_t n = strlen(file);
    if (n > RSEAL_MAX_FILE)
        return 0;
    memcpy(aad, DOMAIN, DOMAIN_LEN);
    bytes_put_be16(aad + DOMAIN_LEN, (uint16_t)n);
    memcpy(aad + DOMAIN_LEN + 2, file, n);
    bytes_put_be64(aad + DOMAIN_LEN + 2 + n, off);
    return DOMAIN_LEN + 2 + n + 8;
}

static int next_nonce(struct rseal *r, uint8_t nonce[RSEAL_NONCE_LEN])
{
    if (r->counter == UINT32_MAX) {
        if (mbedtls_ctr_drbg_random(&r->drbg, r->prefix, sizeof r->prefix) != 0)
            return -1;
        r->counter = 0;
    }
    memcpy(nonce, r->prefix, PREFIX_LEN);
    bytes_put_be32(nonce + PREFIX_LEN, r->counter++);
    return 0;
}

static int rseal_seal(void *arg, const char *file, uint64_t off, const void *in, size_t len,
                      void *out)
{
    struct rseal *r = arg;
    uint8_t aad[AAD_MAX], *o = out;
    size_t aad_len = record_aad(aad, file, off);
    if (aad_len == 0 || next_nonce(r, o) != 0)
        return -1;
    return mbedtls_gcm_crypt_and_tag(&r->seal_gcm, MBEDTLS_GCM_ENCRYPT, len, o, RSEAL_NONCE_LEN,
                                     aad, aad_len, in, o + RSEAL_NONCE_LEN, RSEAL_TAG_LEN,
                                     o + RSEAL_NONCE_LEN + len) == 0
               ? 0
               : -1;
}

static int rseal_open(void *arg, const char *file, uint64_t off, const void *in, size_t len,
                      void *out)
{
    struct rseal *r = arg;
    const uint8_t *i = in;
    uint8_t aad[AAD_MAX];
    if (len < RSEAL_OVERHEAD)
        return -1;
    size_t n = len - RSEAL_OVERHEAD, aad_len = record_aad(aad, file, off);
    if (aad_len != 0 &&
        mbedtls_gcm_auth_decrypt(&r->open_gcm, n, i, RSEAL_NONCE_LEN, aad, aad_len,
                                 i + RSEAL_NONCE_LEN + n, RSEAL_TAG_LEN, i + RSEAL_NONCE_LEN,
                                 out) == 0)
        return 0;
    if (n > 0)
        mbedtls_platform_zeroize(out, n);
    return -1;
}

static int setup(struct rseal *r, const struct cipher_keys *keys)
{
    static const char pers[] = "tisim raft nonce";
    int rc = mbedtls_gcm_setkey(&r->seal_gcm, MBEDTLS_CIPHER_ID_AES, keys->data_key, 256);
    if (rc == 0)
        rc = mbedtls_gcm_setkey(&r->open_gcm, MBEDTLS_CIPHER_ID_AES, keys->data_key, 256);
    if (rc == 0)
        rc = mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy,
                                   (const unsigned char *)pers, sizeof pers - 1);
    if (rc == 0)
        rc = mbedtls_ctr_drbg_random(&r->drbg, r->prefix, sizeof r->prefix);
    return rc;
}

struct rseal *rseal_new(const struct cipher_keys *keys, char *err, size_t errlen)
{
    struct rseal *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errlen, "raft log sealer: out of memory");
        return NULL;
    }
    mbedtls_gcm_init(&r->seal_gcm);
    mbedtls_gcm_init(&r->open_gcm);
    mbedtls_entropy_init(&r->entropy);
    mbedtls_ctr_drbg_init(&r->drbg);
    int rc = setup(r, keys);
    if (rc != 0) {
        snprintf(err, errlen, "raft log sealer: cannot set up AES-256-GCM (mbedTLS -0x%04x)",
                 (unsigned)-rc);
        rseal_free(r);
        return NULL;
    }
    return r;
}

void rseal_free(struct rseal *r)
{
    if (r == NULL)
        return;
    mbedtls_gcm_free(&r->seal_gcm);
    mbedtls_gcm_free(&r->open_gcm);
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->entropy);
    mbedtls_platform_zeroize(r, sizeof *r);
    free(r);
}

struct rstore_sealer rseal_sealer(struct rseal *r)
{
    return (struct rstore_sealer){.overhead = RSEAL_OVERHEAD, .seal = rseal_seal,
                                  .open = rseal_open, .arg = r};
}

void rseal_advance_counter(struct rseal *r, uint32_t counter)
{
    if (counter > r->counter)
        r->counter = counter;
}
