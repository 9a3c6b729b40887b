/* cipherfile.c — see cipherfile.h. */
#include "cipherfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

/* The longest file that can hold a valid token: its hex digits and "\r\n". */
#define MAX_TEXT (2 * CIPHERFILE_MAX_TOKEN + 2)

static const char HKDF_SALT[] = "tisim tikv cipher-file v1";
static const char INFO_DATA_KEY[] = "tisim data key aes-256-gcm";
static const char INFO_KEY_CHECK[] = "tisim key check value";

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_power_of_two(size_t n)
{
    return n != 0 && (n & (n - 1)) == 0;
}

/* The length of text without its one allowed trailing newline. */
static size_t strip_newline(const char *text, size_t len)
{
    if (len >= 2 && text[len - 2] == '\r' && text[len - 1] == '\n')
        return len - 2;
    if (len >= 1 && text[len - 1] == '\n')
        return len - 1;
    return len;
}

static void describe_byte(unsigned char c, char *buf, size_t len)
{
    if (c >= 0x21 && c < 0x7f && c != '\'')
        snprintf(buf, len, "'%c'", c);
    else
        snprintf(buf, len, "byte 0x%02x", c);
}

int cipherfile_parse(const char *text, size_t len, uint8_t *token, size_t *token_len, char *err,
                     size_t errlen)
{
    size_t n = strip_newline(text, len);
    if (n == 0) {
        snprintf(err, errlen, "is empty (expected hex digits, e.g. from tikv-ctl random-hex)");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (hexval((unsigned char)text[i]) < 0) {
            char what[16];
            describe_byte((unsigned char)text[i], what, sizeof what);
            snprintf(err, errlen, "contains %s at offset %zu, not a hex digit", what, i);
            return -1;
        }
    }
    if (n % 2 != 0) {
        snprintf(err, errlen, "odd number of hex digits (%zu)", n);
        return -1;
    }
    size_t bytes = n / 2;
    if (!is_power_of_two(bytes)) {
        snprintf(err, errlen, "decoded length %zu bytes is not a power of two (max %d)", bytes,
                 CIPHERFILE_MAX_TOKEN);
        return -1;
    }
    if (bytes > CIPHERFILE_MAX_TOKEN) {
        snprintf(err, errlen, "decoded length %zu bytes is more than the maximum %d", bytes,
                 CIPHERFILE_MAX_TOKEN);
        return -1;
    }
    for (size_t i = 0; i < bytes; i++)
        token[i] = (uint8_t)(hexval((unsigned char)text[2 * i]) << 4 |
                             hexval((unsigned char)text[2 * i + 1]));
    *token_len = bytes;
    return 0;
}

/* Reads at most MAX_TEXT + 1 bytes of path into buf; *len gets the count. */
static int read_text(const char *path, char *buf, size_t *len, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "cannot stat: %s", strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
    } else if (st.st_size > MAX_TEXT) {
        snprintf(why, whylen,
                 "file is %lld bytes, too long for a key of at most %d bytes (%d hex digits)",
                 (long long)st.st_size, CIPHERFILE_MAX_TOKEN, 2 * CIPHERFILE_MAX_TOKEN);
    } else {
        size_t n = 0;
        ssize_t r;
        while (n <= MAX_TEXT && (r = read(fd, buf + n, MAX_TEXT + 1 - n)) > 0)
            n += (size_t)r;
        if (r < 0)
            snprintf(why, whylen, "cannot read: %s", strerror(errno));
        else if (n > MAX_TEXT)
            snprintf(why, whylen, "file grew while being read");
        else {
            *len = n;
            rc = 0;
        }
    }
    close(fd);
    return rc;
}

int cipherfile_load(const char *path, struct cipher_keys *out, char *err, size_t errlen)
{
    char text[MAX_TEXT + 1];
    uint8_t token[CIPHERFILE_MAX_TOKEN];
    size_t len = 0, token_len = 0;
    char why[160];
    int rc = read_text(path, text, &len, why, sizeof why);
    if (rc == 0)
        rc = cipherfile_parse(text, len, token, &token_len, why, sizeof why);
    if (rc == 0)
        rc = cipherfile_derive(token, token_len, out, why, sizeof why);
    if (rc != 0)
        snprintf(err, errlen, "cipher-file %s: %s", path, why);
    mbedtls_platform_zeroize(text, sizeof text);
    mbedtls_platform_zeroize(token, sizeof token);
    return rc;
}

int cipherfile_derive(const uint8_t *token, size_t token_len, struct cipher_keys *out, char *err,
                      size_t errlen)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    const uint8_t *salt = (const uint8_t *)HKDF_SALT;
    int rc = md ? mbedtls_hkdf(md, salt, strlen(HKDF_SALT), token, token_len,
                               (const uint8_t *)INFO_DATA_KEY, strlen(INFO_DATA_KEY),
                               out->data_key, sizeof out->data_key)
                : -1;
    if (rc == 0)
        rc = mbedtls_hkdf(md, salt, strlen(HKDF_SALT), token, token_len,
                          (const uint8_t *)INFO_KEY_CHECK, strlen(INFO_KEY_CHECK),
                          out->key_check, sizeof out->key_check);
    if (rc != 0) {
        cipherfile_keys_clear(out);
        snprintf(err, errlen, "HKDF-SHA256 key derivation failed (mbedTLS %d)", rc);
        return -1;
    }
    return 0;
}

void cipherfile_keys_clear(struct cipher_keys *keys)
{
    mbedtls_platform_zeroize(keys, sizeof *keys);
}

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void cipherfile_check_hex(const struct cipher_keys *keys, char out[CIPHERFILE_CHECK_HEX_LEN])
{
    to_hex(keys->key_check, CIPHERFILE_CHECK_LEN, out);
}

int cipherfile_random_hex(size_t nbytes, char *out, size_t outlen, char *err, size_t errlen)
{
    if (nbytes > (SIZE_MAX - 1) / 2 || outlen < 2 * nbytes + 1) {
        snprintf(err, errlen, "random-hex: no room for %zu bytes as hex", nbytes);
        return -1;
    }
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    static const char pers[] = "tisim random-hex";
    int rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
                                   (const unsigned char *)pers, strlen(pers));
    uint8_t chunk[MBEDTLS_CTR_DRBG_MAX_REQUEST];
    for (size_t done = 0; rc == 0 && done < nbytes;) {
        size_t n = nbytes - done < sizeof chunk ? nbytes - done : sizeof chunk;
        rc = mbedtls_ctr_drbg_random(&drbg, chunk, n);
        if (rc == 0)
            to_hex(chunk, n, out + 2 * done);
        done += n;
    }
    if (nbytes == 0)
        out[0] = '\0';
    mbedtls_platform_zeroize(chunk, sizeof chunk);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    if (rc != 0) {
        mbedtls_platform_zeroize(out, outlen);
        snprintf(err, errlen, "random-hex: the random generator failed (mbedTLS -0x%04x)",
                 (unsigned)-rc);
        return -1;
    }
    return 0;
}
