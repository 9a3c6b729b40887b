/* kv_log.c — see kv_log.h. */
#include "kv_log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/platform_util.h>

#include "bytes.h"
#include "kv_crc.h"
#include "kv_file.h"
#include "log.h"

#define MAGIC "TSKVLOG"
#define VERSION 1
#define FLAG_ENCRYPTED 1u
#define REC_HDR 8
#define NONCE_LEN 12
#define TAG_LEN 16
#define AAD_LEN 20

struct kv_log {
    char path[PATH_MAX];
    int fd;
    uint64_t file_id;
    uint64_t size;
    bool encrypted;
    bool broken;
    bool strict; /* kv_log_read: every bad record is an error, nothing is cut */
    mbedtls_gcm_context gcm;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    uint8_t nonce_prefix[8];
    uint32_t counter;
    uint8_t *scratch;
    size_t scratch_cap;
};

/* file id | off | body_len: the record header's CRC input and the GCM AAD. */
static void record_aad(uint8_t aad[AAD_LEN], uint64_t file_id, uint64_t off, uint32_t body_len)
{
    bytes_put_le64(aad, file_id);
    bytes_put_le64(aad + 8, off);
    bytes_put_le32(aad + 16, body_len);
}

static uint32_t header_crc(uint64_t file_id, uint64_t off, uint32_t body_len)
{
    uint8_t aad[AAD_LEN];
    record_aad(aad, file_id, off, body_len);
    return kv_crc32(0, aad, sizeof aad);
}

static uint32_t payload_crc(uint64_t file_id, uint64_t off, const uint8_t *p, size_t len)
{
    uint8_t pre[16];
    bytes_put_le64(pre, file_id);
    bytes_put_le64(pre + 8, off);
    return kv_crc32(kv_crc32(0, pre, sizeof pre), p, len);
}

static uint32_t body_len_for(const struct kv_log *log, size_t payload)
{
    return (uint32_t)(payload + (log->encrypted ? NONCE_LEN + TAG_LEN : 4));
}

static int grow_scratch(struct kv_log *log, size_t need)
{
    if (need <= log->scratch_cap)
        return 0;
    size_t cap = log->scratch_cap ? log->scratch_cap : 4096;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(log->scratch, cap);
    if (!p)
        return -1;
    log->scratch = p;
    log->scratch_cap = cap;
    return 0;
}

/* ---- reading ---------------------------------------------------------------------------- */

struct record {
    const uint8_t *payload;
    size_t len;
    uint64_t next;
};

/* Checks the record at off. 0 with *r filled, or -1 with *why. */
static int check_record(struct kv_log *log, const uint8_t *map, uint64_t size, uint64_t off,
                        struct record *r, const char **why)
{
    if (size - off < REC_HDR) {
        *why = "record header cut short";
        return -1;
    }
    const uint8_t *h = map + off;
    uint32_t body_len = bytes_get_le32(h);
    if (bytes_get_le32(h + 4) != header_crc(log->file_id, off, body_len)) {
        *why = "record header check failed";
        return -1;
    }
    size_t min = log->encrypted ? NONCE_LEN + TAG_LEN : 4;
    if (body_len < min || body_len - min > KV_LOG_MAX_PAYLOAD) {
        *why = "record length out of range";
        return -1;
    }
    if (size - off - REC_HDR < body_len) {
        *why = "record runs past the end of the file";
        return -1;
    }
    const uint8_t *body = h + REC_HDR;
    r->len = body_len - min;
    r->next = off + REC_HDR + body_len;
    if (!log->encrypted) {
        r->payload = body;
        if (bytes_get_le32(body + r->len) != payload_crc(log->file_id, off, body, r->len)) {
            *why = "checksum mismatch";
            return -1;
        }
        return 0;
    }
    if (grow_scratch(log, r->len + 1) != 0) {
        *why = "out of memory";
        return -1;
    }
    uint8_t aad[AAD_LEN];
    record_aad(aad, log->file_id, off, body_len);
    if (mbedtls_gcm_auth_decrypt(&log->gcm, r->len, body, NONCE_LEN, aad, sizeof aad,
                                 body + NONCE_LEN + r->len, TAG_LEN, body + NONCE_LEN,
                                 log->scratch) != 0) {
        *why = "authentication failed";
        return -1;
    }
    r->payload = log->scratch;
    return 0;
}

/* Whether any offset after bad holds a record that passes its check. */
static bool valid_record_after(struct kv_log *log, const uint8_t *map, uint64_t size,
                               uint64_t bad)
{
    struct record r;
    const char *why;
    for (uint64_t o = bad + 1; o + REC_HDR <= size; o++) {
        const uint8_t *h = map + o;
        if (bytes_get_le32(h + 4) != header_crc(log->file_id, o, bytes_get_le32(h)))
            continue;
        if (check_record(log, map, size, o, &r, &why) == 0)
            return true;
    }
    return false;
}

/* Only the record being written when the process or machine died can be torn: each record
 * is synced before the next one is written, so bytes after a complete record were written
 * after it was durable. A record whose header checks out, that ends before the end of the
 * file and still fails its check is therefore corruption (or a wrong key), never a tail to
 * cut. */
static bool could_be_torn(const struct kv_log *log, const uint8_t *map, uint64_t off)
{
    if (log->size - off < REC_HDR)
        return true;
    uint32_t body_len = bytes_get_le32(map + off);
    if (bytes_get_le32(map + off + 4) != header_crc(log->file_id, off, body_len))
        return true;
    return off + REC_HDR + body_len >= log->size;
}

static int cut_tail(struct kv_log *log, uint64_t off, const char *why, char *err, size_t errlen)
{
    if (ftruncate(log->fd, (off_t)off) != 0 || fsync(log->fd) != 0) {
        snprintf(err, errlen, "data file %s: cannot cut its torn tail at offset %llu: %s",
                 log->path, (unsigned long long)off, strerror(errno));
        return -1;
    }
    log_warnx("data file %s: torn tail at offset %llu (%s): dropped %llu bytes", log->path,
              (unsigned long long)off, why, (unsigned long long)(log->size - off));
    log->size = off;
    return 0;
}

static int read_records(struct kv_log *log, const uint8_t *map, kv_log_record_fn fn, void *arg,
                        char *err, size_t errlen)
{
    uint64_t off = KV_LOG_HEADER_LEN;
    while (off < log->size) {
        struct record r;
        const char *why = NULL;
        if (check_record(log, map, log->size, off, &r, &why) != 0) {
            if (log->strict || !could_be_torn(log, map, off) ||
                valid_record_after(log, map, log->size, off)) {
                snprintf(err, errlen, "data file %s is corrupt at offset %llu: %s", log->path,
                         (unsigned long long)off, why);
                return -1;
            }
            return cut_tail(log, off, why, err, errlen);
        }
        if (fn && fn(r.payload, r.len, off, arg, err, errlen) != 0)
            return -1;
        off = r.next;
    }
    return 0;
}

static int check_header(const struct kv_log *log, const uint8_t *h, uint64_t want_id, char *err,
                        size_t errlen)
{
    const char *why = NULL;
    if (memcmp(h, MAGIC, 8) != 0)
        why = "not a tisim data file (bad magic)";
    else if (bytes_get_le32(h + 28) != kv_crc32(0, h, 28))
        why = "header checksum mismatch";
    else if (bytes_get_le32(h + 8) != VERSION)
        why = "unknown format version";
    else if (bytes_get_le64(h + 16) != want_id)
        why = "file id does not match (a data file from elsewhere?)";
    else if (((bytes_get_le32(h + 12) & FLAG_ENCRYPTED) != 0) != log->encrypted)
        why = log->encrypted ? "the file is plaintext, but encrypted data was expected"
                             : "the file is encrypted, but plaintext was expected";
    if (!why)
        return 0;
    snprintf(err, errlen, "data file %s is corrupt at offset 0: %s", log->path, why);
    return -1;
}

static int load_existing(struct kv_log *log, kv_log_record_fn fn, void *arg, char *err,
                         size_t errlen)
{
    struct stat st;
    if (fstat(log->fd, &st) != 0) {
        snprintf(err, errlen, "data file %s: cannot stat: %s", log->path, strerror(errno));
        return -1;
    }
    log->size = (uint64_t)st.st_size;
    if (log->size < KV_LOG_HEADER_LEN) {
        snprintf(err, errlen, "data file %s is corrupt at offset 0: header cut short (%llu bytes)",
                 log->path, (unsigned long long)log->size);
        return -1;
    }
    uint8_t *map = mmap(NULL, log->size, PROT_READ, MAP_PRIVATE, log->fd, 0);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "data file %s: cannot map: %s", log->path, strerror(errno));
        return -1;
    }
    uint64_t mapped = log->size;
    int rc = check_header(log, map, log->file_id, err, errlen);
    if (rc == 0)
        rc = read_records(log, map, fn, arg, err, errlen);
    munmap(map, mapped);
    return rc;
}

/* ---- creating and writing --------------------------------------------------------------- */

static int write_all_at(int fd, const uint8_t *p, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int create_file(struct kv_log *log, char *err, size_t errlen)
{
    uint8_t h[KV_LOG_HEADER_LEN] = {0};
    memcpy(h, MAGIC, 8);
    bytes_put_le32(h + 8, VERSION);
    bytes_put_le32(h + 12, log->encrypted ? FLAG_ENCRYPTED : 0);
    bytes_put_le64(h + 16, log->file_id);
    bytes_put_le32(h + 28, kv_crc32(0, h, 28));
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", log->path);
    char *slash = strrchr(dir, '/');
    const char *name = slash ? slash + 1 : dir;
    if (slash)
        *slash = '\0';
    return kv_file_write_atomic(slash ? dir : ".", name, h, sizeof h, err, errlen);
}

static int init_crypto(struct kv_log *log, const uint8_t *key, char *err, size_t errlen)
{
    static const char pers[] = "tisim kv_log nonce";
    int rc = mbedtls_gcm_setkey(&log->gcm, MBEDTLS_CIPHER_ID_AES, key, 256);
    if (rc == 0)
        rc = mbedtls_ctr_drbg_seed(&log->drbg, mbedtls_entropy_func, &log->entropy,
                                   (const unsigned char *)pers, strlen(pers));
    if (rc == 0)
        rc = mbedtls_ctr_drbg_random(&log->drbg, log->nonce_prefix, sizeof log->nonce_prefix);
    if (rc != 0)
        snprintf(err, errlen, "data file %s: cannot set up AES-256-GCM (mbedTLS -0x%04x)",
                 log->path, (unsigned)-rc);
    return rc == 0 ? 0 : -1;
}

static struct kv_log *log_new(const char *path, uint64_t file_id, bool encrypted)
{
    struct kv_log *log = calloc(1, sizeof *log);
    if (!log)
        return NULL;
    snprintf(log->path, sizeof log->path, "%s", path);
    log->fd = -1;
    log->file_id = file_id;
    log->encrypted = encrypted;
    mbedtls_gcm_init(&log->gcm);
    mbedtls_entropy_init(&log->entropy);
    mbedtls_ctr_drbg_init(&log->drbg);
    return log;
}

int kv_log_open(const char *path, uint64_t file_id, const uint8_t *key, kv_log_record_fn fn,
                void *arg, struct kv_log **out, char *err, size_t errlen)
{
    struct kv_log *log = strlen(path) < PATH_MAX ? log_new(path, file_id, key != NULL) : NULL;
    if (!log) {
        snprintf(err, errlen, "data file %s: path too long or out of memory", path);
        return -1;
    }
    int exists = kv_file_exists(path, err, errlen);
    int rc = exists < 0 ? -1 : 0;
    if (rc == 0 && key)
        rc = init_crypto(log, key, err, errlen);
    if (rc == 0 && exists == 0)
        rc = create_file(log, err, errlen);
    if (rc == 0) {
        log->fd = open(path, O_RDWR | O_CLOEXEC);
        if (log->fd < 0) {
            snprintf(err, errlen, "data file %s: cannot open: %s", path, strerror(errno));
            rc = -1;
        } else if (flock(log->fd, LOCK_EX | LOCK_NB) != 0) {
            snprintf(err, errlen, "data file %s: %s", path,
                     errno == EWOULDBLOCK ? "in use by another process (locked)" : strerror(errno));
            rc = -1;
        }
    }
    if (rc == 0)
        rc = load_existing(log, fn, arg, err, errlen);
    if (rc != 0) {
        kv_log_close(log);
        return -1;
    }
    *out = log;
    return 0;
}

int kv_log_read(const char *path, uint64_t file_id, const uint8_t *key, kv_log_record_fn fn,
                void *arg, char *err, size_t errlen)
{
    struct kv_log *log = strlen(path) < PATH_MAX ? log_new(path, file_id, key != NULL) : NULL;
    if (!log) {
        snprintf(err, errlen, "data file %s: path too long or out of memory", path);
        return -1;
    }
    log->strict = true;
    int rc = key ? init_crypto(log, key, err, errlen) : 0;
    if (rc == 0) {
        log->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (log->fd < 0) {
            snprintf(err, errlen, "data file %s: cannot open: %s", path, strerror(errno));
            rc = -1;
        }
    }
    if (rc == 0)
        rc = load_existing(log, fn, arg, err, errlen);
    kv_log_close(log);
    return rc;
}

static int next_nonce(struct kv_log *log, uint8_t nonce[NONCE_LEN])
{
    if (log->counter == UINT32_MAX) {
        if (mbedtls_ctr_drbg_random(&log->drbg, log->nonce_prefix, sizeof log->nonce_prefix))
            return -1;
        log->counter = 0;
    }
    memcpy(nonce, log->nonce_prefix, 8);
    bytes_put_le32(nonce + 8, log->counter++);
    return 0;
}

/* Builds the record for payload at offset log->size into scratch. */
static int seal(struct kv_log *log, const uint8_t *payload, size_t len, uint32_t body_len)
{
    uint8_t *rec = log->scratch;
    uint64_t off = log->size;
    bytes_put_le32(rec, body_len);
    bytes_put_le32(rec + 4, header_crc(log->file_id, off, body_len));
    uint8_t *body = rec + REC_HDR;
    if (!log->encrypted) {
        if (len)
            memcpy(body, payload, len);
        bytes_put_le32(body + len, payload_crc(log->file_id, off, payload, len));
        return 0;
    }
    uint8_t aad[AAD_LEN];
    record_aad(aad, log->file_id, off, body_len);
    if (next_nonce(log, body) != 0)
        return -1;
    return mbedtls_gcm_crypt_and_tag(&log->gcm, MBEDTLS_GCM_ENCRYPT, len, body, NONCE_LEN, aad,
                                     sizeof aad, payload, body + NONCE_LEN, TAG_LEN,
                                     body + NONCE_LEN + len) == 0 ? 0 : -1;
}

int kv_log_append(struct kv_log *log, const void *payload, size_t len, char *err, size_t errlen)
{
    if (log->broken) {
        snprintf(err, errlen, "data file %s: unusable after an earlier write error", log->path);
        return -1;
    }
    if (len > KV_LOG_MAX_PAYLOAD) {
        snprintf(err, errlen, "data file %s: record of %zu bytes is over the limit", log->path,
                 len);
        return -1;
    }
    uint32_t body_len = body_len_for(log, len);
    size_t total = REC_HDR + (size_t)body_len;
    if (grow_scratch(log, total) != 0 || seal(log, payload, len, body_len) != 0) {
        snprintf(err, errlen, "data file %s: cannot build a record (out of memory?)", log->path);
        return -1;
    }
    if (write_all_at(log->fd, log->scratch, total, log->size) != 0) {
        snprintf(err, errlen, "data file %s: write failed: %s", log->path, strerror(errno));
        log->broken = true;
        return -1;
    }
    log->size += total;
    return 0;
}

int kv_log_sync(struct kv_log *log, char *err, size_t errlen)
{
    if (!log->broken && fdatasync(log->fd) == 0)
        return 0;
    snprintf(err, errlen, "data file %s: sync failed: %s", log->path,
             log->broken ? "unusable after an earlier error" : strerror(errno));
    log->broken = true;
    return -1;
}

uint64_t kv_log_size(const struct kv_log *log)
{
    return log->size;
}

int kv_log_rename(struct kv_log *log, const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        snprintf(err, errlen, "data file %s: path too long", path);
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (rename(log->path, path) != 0) {
        snprintf(err, errlen, "data file %s: cannot rename to %s: %s", log->path, path,
                 strerror(errno));
        return -1;
    }
    snprintf(log->path, sizeof log->path, "%s", path);
    return kv_file_fsync_dir(slash ? dir : ".", err, errlen);
}

const char *kv_log_path(const struct kv_log *log)
{
    return log->path;
}

void kv_log_close(struct kv_log *log)
{
    if (!log)
        return;
    if (log->fd >= 0)
        close(log->fd);
    mbedtls_gcm_free(&log->gcm);
    mbedtls_ctr_drbg_free(&log->drbg);
    mbedtls_entropy_free(&log->entropy);
    if (log->scratch)
        mbedtls_platform_zeroize(log->scratch, log->scratch_cap);
    free(log->scratch);
    free(log);
}
