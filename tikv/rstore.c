/* rstore.c — the Raft log store: sealed records in <dir>/meta and <dir>/log (see rstore.h). */
#include "rstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "kv_crc.h"

#define HDR_LEN 8
#define ENTRY_HDR 22 /* index u64, term u64, type u16, payload length u32 */
#define META_LEN 16
#define CRC_LEN 4
#define HDR_SALT 0xa5a5a5a5u

struct rstore {
    char *dir, *meta_path, *meta_tmp, *log_path;
    int logfd;
    struct rstore_sealer sealer; /* seal NULL: plaintext + CRC */
    uint64_t term, vote;
    uint64_t start;   /* index of the first entry (meaningful when n > 0) */
    uint64_t *offs;   /* offs[i]: offset of entry start + i */
    size_t n, cap;
    uint64_t end;     /* end of the last good record */
    char note[160];
};

/* Entries read back by a scan (rstore_load). */
struct collect {
    struct raft_entry *entries;
    size_t *pay_off;
    uint8_t *batch;
    size_t batch_len, cap;
};

enum rec { REC_OK, REC_TORN, REC_BAD };

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(err, errlen, fmt, ap) >= (int)errlen && errlen > 4)
        memcpy(err + errlen - 4, "...", 4); /* a cut line says so */
    va_end(ap);
}

static uint32_t hdr_check(uint32_t len)
{
    uint8_t b[4];
    bytes_put_be32(b, len);
    return kv_crc32(0, b, 4) ^ HDR_SALT;
}

/* Default sealing: the plaintext, then a CRC of (file offset, plaintext). */
static uint32_t plain_crc(uint64_t off, const void *in, size_t len)
{
    uint8_t o[8];
    bytes_put_be64(o, off);
    return kv_crc32(kv_crc32(0, o, 8), in, len);
}

static int plain_seal(void *arg, const char *file, uint64_t off, const void *in, size_t len,
                      void *out)
{
    (void)arg, (void)file;
    memcpy(out, in, len);
    bytes_put_be32((uint8_t *)out + len, plain_crc(off, in, len));
    return 0;
}

static int plain_open(void *arg, const char *file, uint64_t off, const void *in, size_t len,
                      void *out)
{
    (void)arg, (void)file;
    size_t n = len - CRC_LEN;
    if (bytes_get_be32((const uint8_t *)in + n) != plain_crc(off, in, n))
        return -1;
    memcpy(out, in, n);
    return 0;
}

/* Appends one framed, sealed record of plain to buf at file offset off; returns its size or 0
 * (ENOMEM, sealer failure). */
static size_t frame_record(const struct rstore *s, const char *file, uint64_t off,
                           const void *plain, size_t len, uint8_t *out)
{
    uint32_t sealed = (uint32_t)(len + s->sealer.overhead);
    bytes_put_be32(out, sealed);
    bytes_put_be32(out + 4, hdr_check(sealed));
    if (s->sealer.seal(s->sealer.arg, file, off, plain, len, out + HDR_LEN) != 0)
        return 0;
    return HDR_LEN + sealed;
}

static bool all_zero(int fd, uint64_t off, uint64_t size)
{
    uint8_t b[4096];
    while (off < size) {
        size_t want = size - off < sizeof b ? (size_t)(size - off) : sizeof b;
        ssize_t got = pread(fd, b, want, (off_t)off);
        if (got <= 0)
            return false;
        for (ssize_t i = 0; i < got; i++)
            if (b[i] != 0)
                return false;
        off += (uint64_t)got;
    }
    return true;
}

/* Reads the record at off of a file of size bytes into *plain (malloc'd, *len bytes). */
static enum rec read_record(const struct rstore *s, int fd, const char *file, uint64_t off,
                            uint64_t size, uint8_t **plain, size_t *len, const char **why)
{
    uint8_t hdr[HDR_LEN];
    *plain = NULL;
    if (size - off < HDR_LEN || pread(fd, hdr, HDR_LEN, (off_t)off) != HDR_LEN)
        return *why = "record header cut short", REC_TORN;
    uint32_t sealed = bytes_get_be32(hdr);
    if (bytes_get_be32(hdr + 4) != hdr_check(sealed)) {
        *why = "bad record header";
        return all_zero(fd, off, size) ? REC_TORN : REC_BAD;
    }
    if (sealed < s->sealer.overhead || sealed > RSTORE_MAX_RECORD + s->sealer.overhead)
        return *why = "record length out of range", REC_BAD;
    if (size - off - HDR_LEN < sealed)
        return *why = "record cut short", REC_TORN;
    uint8_t *in = malloc(sealed), *out = malloc(sealed - s->sealer.overhead + 1);
    enum rec r = REC_OK;
    if (in == NULL || out == NULL)
        *why = "out of memory", r = REC_BAD;
    else if (pread(fd, in, sealed, (off_t)(off + HDR_LEN)) != (ssize_t)sealed)
        *why = "short read", r = REC_BAD;
    else if (s->sealer.open(s->sealer.arg, file, off, in, sealed, out) != 0) {
        *why = "record fails authentication (wrong key or corrupted)";
        r = off + HDR_LEN + sealed == size ? REC_TORN : REC_BAD;
    }
    free(in);
    if (r != REC_OK) {
        free(out);
        return r;
    }
    *plain = out;
    *len = sealed - s->sealer.overhead;
    return REC_OK;
}

static int push_off(struct rstore *s, uint64_t off)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        uint64_t *p = realloc(s->offs, cap * sizeof *p);
        if (p == NULL)
            return -1;
        s->offs = p, s->cap = cap;
    }
    s->offs[s->n++] = off;
    return 0;
}

static int collect_entry(struct collect *c, size_t i, const uint8_t *plain, size_t len)
{
    if (c->batch_len + len > c->cap) {
        size_t cap = (c->cap + len) * 2;
        void *b = raft_realloc(c->batch, cap ? cap : 1);
        if (b == NULL)
            return -1;
        c->batch = b, c->cap = cap;
    }
    struct raft_entry *e = raft_realloc(c->entries, (i + 1) * sizeof *e);
    if (e != NULL)
        c->entries = e;
    size_t *po = realloc(c->pay_off, (i + 1) * sizeof *po);
    if (po != NULL)
        c->pay_off = po;
    if (e == NULL || po == NULL)
        return -1;
    e[i] = (struct raft_entry){.term = bytes_get_be64(plain + 8), .type = bytes_get_be16(plain + 16),
                               .buf.len = len - ENTRY_HDR};
    po[i] = c->batch_len;
    memcpy(c->batch + c->batch_len, plain + ENTRY_HDR, len - ENTRY_HDR);
    c->batch_len += len - ENTRY_HDR;
    return 0;
}

/* Checks one entry record's plaintext; -1 with err when it is not the next entry. */
static int check_entry(const struct rstore *s, uint64_t off, const uint8_t *plain, size_t len,
                       char *err, size_t errlen)
{
    if (len < ENTRY_HDR || bytes_get_be32(plain + 18) != len - ENTRY_HDR) {
        set_err(err, errlen, "%s: corrupted entry record at offset %llu", s->log_path,
                (unsigned long long)off);
        return -1;
    }
    uint64_t index = bytes_get_be64(plain);
    if (s->n > 0 && index != s->start + s->n) {
        set_err(err, errlen, "%s: entry %llu at offset %llu, expected %llu", s->log_path,
                (unsigned long long)index, (unsigned long long)off,
                (unsigned long long)(s->start + s->n));
        return -1;
    }
    return 0;
}

/* Cuts the log file at off (a torn tail). */
static int cut_tail(struct rstore *s, uint64_t off, const char *why, char *err, size_t errlen)
{
    if (ftruncate(s->logfd, (off_t)off) != 0 || fsync(s->logfd) != 0) {
        set_err(err, errlen, "%s: cannot cut torn tail at offset %llu: %s", s->log_path,
                (unsigned long long)off, strerror(errno));
        return -1;
    }
    set_err(s->note, sizeof s->note, "log: torn tail cut at offset %llu (%s)",
            (unsigned long long)off, why);
    return 0;
}

/* Reads the whole log: rebuilds the offsets, and fills c when given. A torn tail is cut only
 * when repair is set. */
static int scan_log(struct rstore *s, struct collect *c, bool repair, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(s->logfd, &st) != 0) {
        set_err(err, errlen, "%s: %s", s->log_path, strerror(errno));
        return -1;
    }
    uint64_t size = (uint64_t)st.st_size, off = 0;
    s->n = 0;
    while (off < size) {
        uint8_t *plain;
        size_t len;
        const char *why;
        enum rec r = read_record(s, s->logfd, "log", off, size, &plain, &len, &why);
        if (r == REC_TORN && repair)
            return s->end = off, cut_tail(s, off, why, err, errlen);
        if (r != REC_OK) {
            set_err(err, errlen, "%s: %s at offset %llu", s->log_path, why,
                    (unsigned long long)off);
            return -1;
        }
        int rv = check_entry(s, off, plain, len, err, errlen);
        if (rv == 0 && s->n == 0)
            s->start = bytes_get_be64(plain);
        if (rv == 0 && c != NULL && collect_entry(c, s->n, plain, len) != 0)
            rv = -1, set_err(err, errlen, "%s: out of memory", s->log_path);
        if (rv == 0 && push_off(s, off) != 0)
            rv = -1, set_err(err, errlen, "%s: out of memory", s->log_path);
        free(plain);
        if (rv != 0)
            return -1;
        off += HDR_LEN + len + s->sealer.overhead;
    }
    s->end = off;
    return 0;
}

static int load_meta(struct rstore *s, char *err, size_t errlen)
{
    int fd = open(s->meta_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0; /* a new store: term 0, no vote */
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        set_err(err, errlen, "%s: %s", s->meta_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    uint8_t *plain = NULL;
    size_t len = 0;
    const char *why;
    enum rec r = read_record(s, fd, "meta", 0, (uint64_t)st.st_size, &plain, &len, &why);
    close(fd);
    if (r == REC_OK && len == META_LEN) {
        s->term = bytes_get_be64(plain), s->vote = bytes_get_be64(plain + 8);
        free(plain);
        return 0;
    }
    free(plain);
    set_err(err, errlen, "%s: %s at offset 0", s->meta_path, r == REC_OK ? "bad meta record" : why);
    return -1;
}

static char *join(const char *dir, const char *name)
{
    size_t d = strlen(dir), n = strlen(name);
    char *p = malloc(d + n + 2);
    if (p != NULL) {
        memcpy(p, dir, d);
        p[d] = '/';
        memcpy(p + d + 1, name, n + 1);
    }
    return p;
}

struct rstore *rstore_open(const char *dir, const struct rstore_sealer *sealer, char *err,
                           size_t errlen)
{
    struct rstore *s = calloc(1, sizeof *s);
    if (s == NULL || (s->dir = strdup(dir)) == NULL || !(s->meta_path = join(dir, "meta")) ||
        !(s->meta_tmp = join(dir, "meta.tmp")) || !(s->log_path = join(dir, "log"))) {
        set_err(err, errlen, "%s: out of memory", dir);
        goto fail;
    }
    s->logfd = -1;
    s->sealer = (sealer && sealer->seal && sealer->open)
                    ? *sealer
                    : (struct rstore_sealer){CRC_LEN, plain_seal, plain_open, NULL};
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        set_err(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (load_meta(s, err, errlen) != 0)
        goto fail;
    s->logfd = open(s->log_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->logfd < 0) {
        set_err(err, errlen, "%s: %s", s->log_path, strerror(errno));
        goto fail;
    }
    if (scan_log(s, NULL, true, err, errlen) != 0)
        goto fail;
    return s;
fail:
    rstore_close(s);
    return NULL;
}

void rstore_close(struct rstore *s)
{
    if (s == NULL)
        return;
    if (s->logfd >= 0)
        close(s->logfd);
    free(s->offs);
    free(s->dir), free(s->meta_path), free(s->meta_tmp), free(s->log_path);
    free(s);
}

const char *rstore_note(const struct rstore *s) { return s->note; }

uint64_t rstore_last_index(const struct rstore *s) { return s->n ? s->start + s->n - 1 : 0; }

int rstore_load(struct rstore *s, uint64_t *term, uint64_t *vote, uint64_t *start,
                struct raft_entry **entries, size_t *n, char *err, size_t errlen)
{
    struct collect c = {0};
    if (scan_log(s, &c, false, err, errlen) != 0) {
        raft_free(c.entries), raft_free(c.batch), free(c.pay_off);
        return -1;
    }
    for (size_t i = 0; i < s->n; i++) {
        c.entries[i].buf.base = c.batch + c.pay_off[i];
        c.entries[i].batch = c.batch;
    }
    free(c.pay_off);
    if (s->n == 0)
        raft_free(c.batch), c.entries = NULL;
    *term = s->term, *vote = s->vote;
    *start = s->n ? s->start : 1;
    *entries = c.entries, *n = s->n;
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rv = fsync(fd);
    close(fd);
    return rv;
}

int rstore_set_meta(struct rstore *s, uint64_t term, uint64_t vote, char *err, size_t errlen)
{
    uint8_t plain[META_LEN], rec[HDR_LEN + META_LEN + 64];
    if (s->sealer.overhead > 64) {
        set_err(err, errlen, "%s: sealer overhead too large", s->meta_path);
        return -1;
    }
    bytes_put_be64(plain, term), bytes_put_be64(plain + 8, vote);
    size_t len = frame_record(s, "meta", 0, plain, META_LEN, rec);
    int fd = len ? open(s->meta_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    bool ok = fd >= 0 && write(fd, rec, len) == (ssize_t)len && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok || rename(s->meta_tmp, s->meta_path) != 0 || fsync_dir(s->dir) != 0) {
        set_err(err, errlen, "%s: cannot write: %s", s->meta_path,
                len ? strerror(errno) : "sealing failed");
        return -1;
    }
    s->term = term, s->vote = vote;
    return 0;
}

int rstore_plan_append(struct rstore *s, uint64_t first, const struct raft_entry *entries,
                       unsigned n, struct rstore_write *w, char *err, size_t errlen)
{
    if (s->n > 0 && first != s->start + s->n) {
        set_err(err, errlen, "%s: append at %llu, expected %llu", s->log_path,
                (unsigned long long)first, (unsigned long long)(s->start + s->n));
        return -1;
    }
    size_t total = 0, used = 0, n0 = s->n;
    for (unsigned i = 0; i < n; i++)
        total += HDR_LEN + ENTRY_HDR + entries[i].buf.len + s->sealer.overhead;
    uint8_t *out = malloc(total ? total : 1), *plain = NULL;
    int rv = out ? 0 : -1;
    for (unsigned i = 0; rv == 0 && i < n; i++) {
        const struct raft_entry *e = &entries[i];
        if (e->buf.len > RSTORE_MAX_RECORD - ENTRY_HDR || !(plain = malloc(ENTRY_HDR + e->buf.len))) {
            rv = -1;
            break;
        }
        bytes_put_be64(plain, first + i), bytes_put_be64(plain + 8, e->term), bytes_put_be16(plain + 16, e->type);
        bytes_put_be32(plain + 18, (uint32_t)e->buf.len);
        memcpy(plain + ENTRY_HDR, e->buf.base, e->buf.len);
        size_t len = frame_record(s, "log", s->end + used, plain, ENTRY_HDR + e->buf.len,
                                  out + used);
        free(plain);
        if (len == 0 || push_off(s, s->end + used) != 0)
            rv = -1;
        used += len;
    }
    if (rv != 0) {
        free(out);
        s->n = n0;
        set_err(err, errlen, "%s: cannot seal %u entries at offset %llu: %s", s->log_path, n,
                (unsigned long long)s->end, out ? "sealing failed" : "out of memory");
        return -1;
    }
    if (n0 == 0 && n > 0)
        s->start = first;
    *w = (struct rstore_write){.buf = out, .len = used, .off = s->end};
    s->end += used;
    return 0;
}

int rstore_write_at(struct rstore *s, const struct rstore_write *w, char *err, size_t errlen)
{
    if (pwrite(s->logfd, w->buf, w->len, (off_t)w->off) != (ssize_t)w->len) {
        set_err(err, errlen, "%s: cannot append at offset %llu: %s", s->log_path,
                (unsigned long long)w->off, errno ? strerror(errno) : "short write");
        return -1;
    }
    return 0;
}

int rstore_append(struct rstore *s, uint64_t first, const struct raft_entry *entries, unsigned n,
                  char *err, size_t errlen)
{
    size_t n0 = s->n;
    uint64_t start0 = s->start, end0 = s->end;
    struct rstore_write w;
    if (rstore_plan_append(s, first, entries, n, &w, err, errlen) != 0)
        return -1;
    errno = 0;
    int rv = rstore_write_at(s, &w, err, errlen);
    free(w.buf);
    if (rv != 0)
        s->n = n0, s->start = start0, s->end = end0;
    return rv;
}

int rstore_sync(struct rstore *s, char *err, size_t errlen)
{
    if (fdatasync(s->logfd) != 0) {
        set_err(err, errlen, "%s: sync: %s", s->log_path, strerror(errno));
        return -1;
    }
    return 0;
}

int rstore_plan_truncate(struct rstore *s, uint64_t index, uint64_t *off)
{
    if (s->n == 0 || index > rstore_last_index(s))
        return 0;
    size_t keep = index > s->start ? (size_t)(index - s->start) : 0;
    *off = s->offs[keep];
    s->n = keep;
    s->end = *off;
    return 1;
}

int rstore_cut(struct rstore *s, uint64_t off, char *err, size_t errlen)
{
    if (ftruncate(s->logfd, (off_t)off) != 0 || fsync(s->logfd) != 0) {
        set_err(err, errlen, "%s: cannot truncate at offset %llu: %s", s->log_path,
                (unsigned long long)off, strerror(errno));
        return -1;
    }
    return 0;
}

int rstore_truncate(struct rstore *s, uint64_t index, char *err, size_t errlen)
{
    size_t n0 = s->n;
    uint64_t end0 = s->end, off;
    if (rstore_plan_truncate(s, index, &off) == 0)
        return 0;
    if (rstore_cut(s, off, err, errlen) != 0) {
        s->n = n0, s->end = end0;
        return -1;
    }
    return 0;
}
