/* tikv_import.c — bulk files: written by tikv-ctl, read strictly by a store. See
 * tikv_import.h. */
#define _GNU_SOURCE /* memfd_create */
#include "tikv_import.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv_file.h"
#include "kv_log.h"

#define LOG_MAGIC "TSKVLOG" /* kv_log.h: the header's first 8 bytes (with the NUL) */
#define LOG_FLAGS_AT 12     /* kv_log.h: u32 flags, bit 0 encrypted */
/* The text tikv-ctl bulk-write reads: the largest record kv_log takes. */
#define BULK_MAX_INPUT KV_LOG_MAX_PAYLOAD

void tikv_import_batch_free(struct tikv_import_batch *b)
{
    for (size_t i = 0; i < b->nbufs; i++)
        free(b->bufs[i]);
    free(b->bufs);
    free(b->ops);
    memset(b, 0, sizeof *b);
}

static int push_op(struct tikv_import_batch *b, const void *key, size_t klen, const void *val,
                   size_t vlen)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        struct kv_op *ops = realloc(b->ops, cap * sizeof *ops);
        if (!ops)
            return -1;
        b->ops = ops;
        b->cap = cap;
    }
    b->ops[b->n++] = (struct kv_op){KV_OP_PUT, key, klen, val, vlen};
    return 0;
}

static int push_buf(struct tikv_import_batch *b, uint8_t *buf)
{
    if (b->nbufs == b->bufcap) {
        size_t cap = b->bufcap ? 2 * b->bufcap : 8;
        uint8_t **bufs = realloc(b->bufs, cap * sizeof *bufs);
        if (!bufs)
            return -1;
        b->bufs = bufs;
        b->bufcap = cap;
    }
    b->bufs[b->nbufs++] = buf;
    return 0;
}

/* ---- the engine's payload encoding ------------------------------------------------------- */

int tikv_import_encode_payload(const struct kv_op *ops, size_t n, uint8_t **out, size_t *len,
                               char *err, size_t errlen)
{
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += kv_engine_op_size(&ops[i]);
    uint8_t *p = total <= KV_LOG_MAX_PAYLOAD ? malloc(total) : NULL;
    if (!p) {
        snprintf(err, errlen, "cannot encode a record of %zu bytes (over the limit or out of "
                 "memory)", total);
        return -1;
    }
    uint8_t *at = p;
    *at++ = KV_ENGINE_PAYLOAD_VERSION;
    for (size_t i = 0; i < n; i++)
        at = kv_engine_encode_op(&ops[i], at);
    *out = p;
    *len = total;
    return 0;
}

/* A bulk file holds puts of non-empty keys within the engine's limits. */
static int check_bulk_op(const struct kv_op *op, void *arg)
{
    (void)arg;
    return op->type == KV_OP_PUT && op->klen > 0 && op->klen <= KV_ENGINE_MAX_KEY &&
                   op->vlen <= KV_ENGINE_MAX_VALUE
               ? 0
               : 1;
}

static int stage_op(const struct kv_op *op, void *arg)
{
    return push_op(arg, op->key, op->klen, op->val, op->vlen) != 0 ? -1 : 0;
}

int tikv_import_decode_payload(const uint8_t *p, size_t len, struct tikv_import_batch *b)
{
    if (len < 1 || p[0] != KV_ENGINE_PAYLOAD_VERSION ||
        kv_engine_each_op(p + 1, len - 1, check_bulk_op, NULL) != 0)
        return 1;
    uint8_t *copy = malloc(len);
    if (!copy || push_buf(b, copy) != 0) {
        free(copy);
        return -1;
    }
    memcpy(copy, p, len);
    return kv_engine_each_op(copy + 1, len - 1, stage_op, b) == 0 ? 0 : -1;
}

/* ---- text -------------------------------------------------------------------------------- */

struct keyline {
    const char *key;
    size_t klen;
    size_t line;
};

static int cmp_keyline(const void *a, const void *b)
{
    const struct keyline *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* A key for an error line: at most 40 bytes, anything unprintable as '?'. */
static void show_key(char out[48], const char *key, size_t klen)
{
    size_t n = klen < 40 ? klen : 40, i;
    for (i = 0; i < n; i++)
        out[i] = key[i] >= 0x20 && key[i] < 0x7f ? key[i] : '?';
    snprintf(out + i, 48 - i, "%s", klen > 40 ? "..." : "");
}

/* Refuses a key given twice, naming both lines. */
static int check_repeats(const struct tikv_import_batch *b, char *err, size_t errlen)
{
    struct keyline *k = malloc(b->n * sizeof *k);
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < b->n; i++)
        k[i] = (struct keyline){b->ops[i].key, b->ops[i].klen, i + 1};
    qsort(k, b->n, sizeof *k, cmp_keyline);
    int rc = 0;
    for (size_t i = 1; i < b->n && rc == 0; i++) {
        if (k[i].klen == k[i - 1].klen && memcmp(k[i].key, k[i - 1].key, k[i].klen) == 0) {
            char shown[48];
            show_key(shown, k[i].key, k[i].klen);
            snprintf(err, errlen, "line %zu: key '%s' repeats line %zu", k[i].line, shown,
                     k[i - 1].line);
            rc = -1;
        }
    }
    free(k);
    return rc;
}

static int parse_line(struct tikv_import_batch *b, const char *line, size_t len, size_t no,
                      char *err, size_t errlen)
{
    const char *tab = memchr(line, '\t', len);
    if (!tab) {
        snprintf(err, errlen, "line %zu: no tab between key and value (want KEY<TAB>VALUE)", no);
        return -1;
    }
    size_t klen = (size_t)(tab - line), vlen = len - klen - 1;
    if (klen == 0) {
        snprintf(err, errlen, "line %zu: empty key (TiKV has no empty key)", no);
        return -1;
    }
    if (klen > KV_ENGINE_MAX_KEY || vlen > KV_ENGINE_MAX_VALUE) {
        snprintf(err, errlen, "line %zu: a key of %zu bytes or a value of %zu bytes is over the "
                 "limit (%u / %u bytes)", no, klen, vlen, KV_ENGINE_MAX_KEY, KV_ENGINE_MAX_VALUE);
        return -1;
    }
    if (push_op(b, line, klen, tab + 1, vlen) != 0) {
        snprintf(err, errlen, "line %zu: out of memory", no);
        return -1;
    }
    return 0;
}

int tikv_import_parse_text(const char *text, size_t len, struct tikv_import_batch *b, char *err,
                           size_t errlen)
{
    memset(b, 0, sizeof *b);
    size_t no = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (parse_line(b, text + at, end - at, ++no, err, errlen) != 0)
            goto fail;
        at = end + 1;
    }
    if (b->n == 0) {
        snprintf(err, errlen, "no KEY<TAB>VALUE line");
        goto fail;
    }
    if (check_repeats(b, err, errlen) == 0)
        return 0;
fail:
    tikv_import_batch_free(b);
    return -1;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* Appends the batch as records of about TIKV_IMPORT_RECORD_BYTES, then syncs. */
static int append_records(struct kv_log *log, const struct tikv_import_batch *b, char *err,
                          size_t errlen)
{
    size_t start = 0;
    while (start < b->n) {
        size_t end = start, bytes = 0;
        while (end < b->n && (end == start || bytes < TIKV_IMPORT_RECORD_BYTES)) {
            bytes += kv_engine_op_size(&b->ops[end]);
            end++;
        }
        uint8_t *p;
        size_t len;
        if (tikv_import_encode_payload(b->ops + start, end - start, &p, &len, err, errlen) != 0)
            return -1;
        int rc = kv_log_append(log, p, len, err, errlen);
        free(p);
        if (rc != 0)
            return -1;
        start = end;
    }
    return kv_log_sync(log, err, errlen);
}

/* Renames tmp over path and makes it durable. */
static int publish(const char *tmp, const char *path, char *err, size_t errlen)
{
    if (chmod(tmp, 0600) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    return kv_file_fsync_dir(slash ? dir : ".", err, errlen);
}

int tikv_import_write(const char *path, const struct tikv_import_batch *b,
                      const struct cipher_keys *keys, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        snprintf(err, errlen, "path too long: %s", path);
        return -1;
    }
    if (unlink(tmp) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove the stale %s: %s", tmp, strerror(errno));
        return -1;
    }
    struct kv_log *log;
    if (kv_log_open(tmp, TIKV_IMPORT_FILE_ID, keys ? keys->data_key : NULL, NULL, NULL, &log,
                    err, errlen) != 0)
        return -1;
    int rc = append_records(log, b, err, errlen);
    kv_log_close(log);
    if (rc == 0)
        rc = publish(tmp, path, err, errlen);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* The whole of path into *out (NUL-terminated, for the parser's convenience). */
static int slurp(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    if (fd < 0 || fstat(fd, &st) != 0)
        goto fail;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > BULK_MAX_INPUT) {
        snprintf(err, errlen, "%s: not a regular file of at most %u bytes", path, BULK_MAX_INPUT);
        close(fd);
        return -1;
    }
    if (!(buf = malloc((size_t)st.st_size + 1)))
        goto fail;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto fail;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
fail:
    snprintf(err, errlen, "%s: %s", path, errno ? strerror(errno) : "changed while read");
    if (fd >= 0)
        close(fd);
    free(buf);
    return -1;
}

int tikv_import_bulk_write(const char *input, const char *output, const char *cipher_file,
                           size_t *n, char *err, size_t errlen)
{
    struct cipher_keys keys;
    char *text = NULL, why[400];
    size_t len;
    struct tikv_import_batch b = {0};
    int rc = slurp(input, &text, &len, err, errlen);
    if (rc == 0 && (rc = tikv_import_parse_text(text, len, &b, why, sizeof why)) != 0)
        snprintf(err, errlen, "--input %s: %s", input, why);
    if (rc == 0 && cipher_file)
        rc = cipherfile_load(cipher_file, &keys, err, errlen);
    if (rc == 0)
        rc = tikv_import_write(output, &b, cipher_file ? &keys : NULL, err, errlen);
    if (rc == 0)
        *n = b.n;
    if (cipher_file)
        cipherfile_keys_clear(&keys);
    tikv_import_batch_free(&b);
    free(text);
    return rc;
}

/* ---- reading ----------------------------------------------------------------------------- */

struct stage {
    struct tikv_import_batch b;
    bool seen;    /* a record passed its check */
    bool own_err; /* err was written by stage_record */
};

static int stage_record(const uint8_t *payload, size_t len, uint64_t off, void *arg, char *err,
                        size_t errlen)
{
    struct stage *s = arg;
    s->seen = true;
    int r = tikv_import_decode_payload(payload, len, &s->b);
    if (r == 0)
        return 0;
    s->own_err = true;
    snprintf(err, errlen, "the bulk file's record at offset %llu %s", (unsigned long long)off,
             r < 0 ? "cannot be loaded: out of memory"
                   : "is not a list of key-value pairs (puts of non-empty keys)");
    return -1;
}

/* 1 encrypted, 0 plaintext, -1 not a kv_log header (kv_log_read will say why). */
static int file_encrypted(const char *path)
{
    uint8_t h[LOG_FLAGS_AT + 4];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? pread(fd, h, sizeof h, 0) : -1;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)sizeof h || memcmp(h, LOG_MAGIC, sizeof LOG_MAGIC) != 0)
        return -1;
    return (h[LOG_FLAGS_AT] & 1u) != 0; /* u32 little-endian: bit 0 in the first byte */
}

/* kv_log_read's error, in the words of a bulk import. */
static void explain(const struct stage *s, const char *why, char *err, size_t errlen)
{
    const char *at = strstr(why, " is corrupt at offset ");
    if (s->own_err || !at)
        snprintf(err, errlen, "%s", why);
    else if (!s->seen && strstr(at, "authentication failed"))
        snprintf(err, errlen, "the bulk file was encrypted with a different key than the "
                 "cluster's cipher-file (authentication failed at offset %d)", KV_LOG_HEADER_LEN);
    else
        snprintf(err, errlen, "the bulk file%s", at);
}

int tikv_import_read(const char *path, const struct cipher_keys *keys,
                     struct tikv_import_batch *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    int enc = file_encrypted(path);
    if (enc == 0 && keys) {
        snprintf(err, errlen, "%s", TIKV_IMPORT_ERR_PLAINTEXT);
        return -1;
    }
    if (enc == 1 && !keys) {
        snprintf(err, errlen, "the bulk file is encrypted, but this cluster stores data in "
                 "plaintext: write it without --cipher-file");
        return -1;
    }
    struct stage s = {0};
    char why[600];
    int rc = kv_log_read(path, TIKV_IMPORT_FILE_ID, keys ? keys->data_key : NULL, stage_record,
                         &s, why, sizeof why);
    if (rc != 0) {
        explain(&s, why, err, errlen);
    } else if (s.b.n == 0) {
        snprintf(err, errlen, "the bulk file holds no keys");
        rc = -1;
    }
    if (rc != 0)
        tikv_import_batch_free(&s.b);
    else
        *b = s.b;
    return rc;
}

int tikv_import_read_bytes(const void *data, size_t len, const struct cipher_keys *keys,
                           struct tikv_import_batch *b, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    int fd = memfd_create("tikv-bulk-import", MFD_CLOEXEC);
    if (fd < 0 || kv_file_write_all(fd, data, len) != 0) {
        snprintf(err, errlen, "cannot stage the bulk file in memory: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rc = tikv_import_read(path, keys, b, err, errlen);
    close(fd);
    return rc;
}
