/* rstore.c — the Raft log store: sealed records in <dir>/meta, <dir>/log and <dir>/snap-<index>
 * (see rstore.h). */
#include "rstore.h"

#include <dirent.h>
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
#include "kv_file.h"

#define HDR_LEN 8
#define ENTRY_HDR 22 /* index u64, term u64, type u16, payload length u32 */
#define META_LEN 16
#define CRC_LEN 4
#define HDR_SALT 0xa5a5a5a5u
#define LOG_MAGIC "TSRAFTLG"
#define LOG_HDR_LEN 24 /* magic (8) | u64 logical offset of byte 24 | u32 check | u32 0 */
#define SNAP_FORMAT 1
#define SNAP_HDR 37 /* u8 format | u64 index, term, conf index, data length | u32 conf length */
#define SERVER_HDR 11 /* u64 id | u8 role | u16 address length */
#define COPY_BLOCK (1u << 20)

struct rstore {
    char *dir, *meta_path, *meta_tmp, *log_path;
    int logfd;
    struct rstore_sealer sealer; /* seal NULL: plaintext + CRC */
    struct rstore_sealer snap_sealer; /* for snapshot files (rio's worker) */
    uint64_t term, vote;
    uint64_t start;   /* index of the first entry (meaningful when n > 0) */
    uint64_t *offs;   /* offs[i]: logical offset of entry start + i */
    size_t n, cap;
    uint64_t end;     /* logical end of the last good record */
    /* Logical offsets (what the sealer binds, what offs and end hold) stay put when the log is
     * compacted into a new file: physical = logical - shift. A file that starts with the log
     * header (written by compaction) says where it starts; one without starts at 0. Used by
     * the writer side (write_at, cut, compaction) and by scans before the writer starts. */
    uint64_t shift;
    uint64_t data_start;  /* physical offset of the first record: LOG_HDR_LEN or 0 */
    uint64_t snap_index, snap_term; /* the latest snapshot planned (loop side); 0: none */
    uint64_t disk_snap;   /* the latest snapshot file written (writer side); 0: none */
    struct raft_snapshot *cached; /* read and checked at open, handed to the first get */
    uint64_t term_at_snap; /* while scanning: the term of entry snap_index, 0 if absent */
    char note[512];
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

/* Reads the record at physical offset off of a file of size bytes into *plain (malloc'd, *len
 * bytes), opened with sealer for offset off + shift. */
static enum rec read_record_with(const struct rstore_sealer *sealer, int fd, const char *file,
                                 uint64_t off, uint64_t shift, uint64_t size, uint8_t **plain,
                                 size_t *len, const char **why)
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
    if (sealed < sealer->overhead || sealed > RSTORE_MAX_RECORD + sealer->overhead)
        return *why = "record length out of range", REC_BAD;
    if (size - off - HDR_LEN < sealed)
        return *why = "record cut short", REC_TORN;
    uint8_t *in = malloc(sealed), *out = malloc(sealed - sealer->overhead + 1);
    enum rec r = REC_OK;
    if (in == NULL || out == NULL)
        *why = "out of memory", r = REC_BAD;
    else if (pread(fd, in, sealed, (off_t)(off + HDR_LEN)) != (ssize_t)sealed)
        *why = "short read", r = REC_BAD;
    else if (sealer->open(sealer->arg, file, off + shift, in, sealed, out) != 0) {
        *why = "record fails authentication (wrong key or corrupted)";
        r = off + HDR_LEN + sealed == size ? REC_TORN : REC_BAD;
    }
    free(in);
    if (r != REC_OK) {
        free(out);
        return r;
    }
    *plain = out;
    *len = sealed - sealer->overhead;
    return REC_OK;
}

static enum rec read_record(const struct rstore *s, int fd, const char *file, uint64_t off,
                            uint64_t size, uint8_t **plain, size_t *len, const char **why)
{
    return read_record_with(&s->sealer, fd, file, off, 0, size, plain, len, why);
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

static void add_note(struct rstore *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_note(struct rstore *s, const char *fmt, ...)
{
    size_t used = strlen(s->note);
    if (used > 0 && used + 2 < sizeof s->note)
        memcpy(s->note + used, "; ", 3), used += 2;
    va_list ap;
    va_start(ap, fmt);
    if (used < sizeof s->note &&
        vsnprintf(s->note + used, sizeof s->note - used, fmt, ap) >= (int)(sizeof s->note - used))
        memcpy(s->note + sizeof s->note - 4, "...", 4);
    va_end(ap);
}

/* Cuts the log file at physical offset off (a torn tail). */
static int cut_tail(struct rstore *s, uint64_t off, const char *why, char *err, size_t errlen)
{
    if (ftruncate(s->logfd, (off_t)off) != 0 || fsync(s->logfd) != 0) {
        set_err(err, errlen, "%s: cannot cut torn tail at offset %llu: %s", s->log_path,
                (unsigned long long)off, strerror(errno));
        return -1;
    }
    add_note(s, "log: torn tail cut at offset %llu (%s)", (unsigned long long)off, why);
    return 0;
}

/* The log header of a compacted log: where its records start, in logical offsets. */
static uint32_t log_hdr_check(const uint8_t *h)
{
    return kv_crc32(0, h, 16) ^ HDR_SALT;
}

static void put_log_header(uint8_t h[LOG_HDR_LEN], uint64_t first)
{
    memset(h, 0, LOG_HDR_LEN);
    memcpy(h, LOG_MAGIC, 8);
    bytes_put_be64(h + 8, first);
    bytes_put_be32(h + 16, log_hdr_check(h));
}

/* Sets shift and data_start from the file's first bytes. */
static int read_log_header(struct rstore *s, uint64_t size, char *err, size_t errlen)
{
    uint8_t h[LOG_HDR_LEN];
    s->shift = s->data_start = 0;
    if (size < 8 || pread(s->logfd, h, 8, 0) != 8 || memcmp(h, LOG_MAGIC, 8) != 0)
        return 0; /* records from offset 0 (a record's length never reads as the magic) */
    if (size < LOG_HDR_LEN || pread(s->logfd, h, LOG_HDR_LEN, 0) != LOG_HDR_LEN ||
        bytes_get_be32(h + 16) != log_hdr_check(h) || bytes_get_be64(h + 8) < LOG_HDR_LEN) {
        set_err(err, errlen, "%s: bad log header at offset 0", s->log_path);
        return -1;
    }
    s->data_start = LOG_HDR_LEN;
    s->shift = bytes_get_be64(h + 8) - LOG_HDR_LEN;
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
    uint64_t size = (uint64_t)st.st_size;
    if (read_log_header(s, size, err, errlen) != 0)
        return -1;
    uint64_t off = s->data_start;
    s->n = 0;
    s->term_at_snap = 0;
    while (off < size) {
        uint8_t *plain;
        size_t len;
        const char *why;
        enum rec r = read_record_with(&s->sealer, s->logfd, "log", off, s->shift, size, &plain,
                                      &len, &why);
        if (r == REC_TORN && repair)
            return s->end = off + s->shift, cut_tail(s, off, why, err, errlen);
        if (r != REC_OK) {
            set_err(err, errlen, "%s: %s at offset %llu", s->log_path, why,
                    (unsigned long long)off);
            return -1;
        }
        int rv = check_entry(s, off, plain, len, err, errlen);
        if (rv == 0 && s->n == 0)
            s->start = bytes_get_be64(plain);
        if (rv == 0 && s->snap_index && bytes_get_be64(plain) == s->snap_index)
            s->term_at_snap = bytes_get_be64(plain + 8);
        if (rv == 0 && c != NULL && collect_entry(c, s->n, plain, len) != 0)
            rv = -1, set_err(err, errlen, "%s: out of memory", s->log_path);
        if (rv == 0 && push_off(s, off + s->shift) != 0)
            rv = -1, set_err(err, errlen, "%s: out of memory", s->log_path);
        free(plain);
        if (rv != 0)
            return -1;
        off += HDR_LEN + len + s->sealer.overhead;
    }
    s->end = off + s->shift;
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

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rv = fsync(fd);
    close(fd);
    return rv;
}

static int write_all(int fd, const void *p, size_t len)
{
    return kv_file_write_all(fd, p, len);
}

/* ---- snapshots ------------------------------------------------------------------------- */

static void snap_name(char *buf, size_t len, uint64_t index, bool tmp)
{
    snprintf(buf, len, "snap-%llu%s", (unsigned long long)index, tmp ? ".tmp" : "");
}

/* The index of "snap-<index>" or "snap-<index>.tmp" (canonical digits); 0 when name is neither. */
static uint64_t snap_file_index(const char *name, bool *tmp)
{
    if (strncmp(name, "snap-", 5) != 0 || name[5] < '1' || name[5] > '9')
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(name + 5, &end, 10);
    *tmp = strcmp(end, ".tmp") == 0;
    return errno == 0 && (*end == '\0' || *tmp) ? (uint64_t)v : 0;
}

void rstore_snapshot_free(struct raft_snapshot *snap)
{
    if (!snap)
        return;
    raft_configuration_close(&snap->configuration);
    for (unsigned i = 0; i < snap->n_bufs; i++)
        raft_free(snap->bufs[i].base);
    raft_free(snap->bufs);
    raft_free(snap);
}

static size_t conf_size(const struct raft_configuration *c)
{
    size_t n = 4;
    for (unsigned i = 0; i < c->n; i++)
        n += SERVER_HDR + strlen(c->servers[i].address);
    return n;
}

static void conf_put(uint8_t *p, const struct raft_configuration *c)
{
    bytes_put_be32(p, c->n);
    p += 4;
    for (unsigned i = 0; i < c->n; i++) {
        size_t len = strlen(c->servers[i].address);
        bytes_put_be64(p, c->servers[i].id);
        p[8] = (uint8_t)c->servers[i].role;
        bytes_put_be16(p + 9, (uint16_t)len);
        memcpy(p + SERVER_HDR, c->servers[i].address, len);
        p += SERVER_HDR + len;
    }
}

static int conf_get(const uint8_t *p, size_t len, struct raft_configuration *c)
{
    raft_configuration_init(c);
    if (len < 4)
        return -1;
    uint32_t n = bytes_get_be32(p);
    p += 4, len -= 4;
    for (uint32_t i = 0; i < n; i++) {
        char addr[65536];
        if (len < SERVER_HDR || len - SERVER_HDR < bytes_get_be16(p + 9))
            return -1;
        uint16_t alen = bytes_get_be16(p + 9);
        memcpy(addr, p + SERVER_HDR, alen);
        addr[alen] = '\0';
        if (alen == 0 || p[8] > RAFT_SPARE || bytes_get_be64(p) == 0 ||
            raft_configuration_add(c, bytes_get_be64(p), addr, p[8]) != 0)
            return -1;
        p += SERVER_HDR + alen, len -= SERVER_HDR + alen;
    }
    return len == 0 ? 0 : -1;
}

/* Checks a snapshot header record and starts *out from it; NULL *why when it is good. */
static struct raft_snapshot *snap_from_header(const uint8_t *h, size_t len, uint64_t index,
                                              uint64_t file_size, uint64_t *data_len,
                                              const char **why)
{
    *why = "bad snapshot header";
    if (len < SNAP_HDR || h[0] != SNAP_FORMAT || bytes_get_be64(h + 1) != index ||
        bytes_get_be32(h + 33) != len - SNAP_HDR || bytes_get_be64(h + 25) > file_size)
        return NULL;
    struct raft_snapshot *snap = raft_calloc(1, sizeof *snap);
    *data_len = bytes_get_be64(h + 25);
    if (snap)
        snap->bufs = raft_calloc(1, sizeof *snap->bufs);
    if (snap && snap->bufs) {
        snap->n_bufs = 1;
        snap->bufs[0].base = raft_malloc(*data_len ? *data_len : 1);
        snap->bufs[0].len = *data_len;
    }
    if (!snap || !snap->bufs || !snap->bufs[0].base) {
        *why = "out of memory";
        rstore_snapshot_free(snap);
        return NULL;
    }
    snap->index = index;
    snap->term = bytes_get_be64(h + 9);
    snap->configuration_index = bytes_get_be64(h + 17);
    if (conf_get(h + SNAP_HDR, len - SNAP_HDR, &snap->configuration) != 0) {
        rstore_snapshot_free(snap);
        return NULL;
    }
    *why = NULL;
    return snap;
}

/* Reads the records of a snapshot file from off: the header, then the data. */
static struct raft_snapshot *snap_records(const struct rstore_sealer *sealer, int fd,
                                          const char *name, uint64_t index, uint64_t size,
                                          uint64_t *off, const char **why)
{
    uint8_t *plain;
    size_t len;
    uint64_t data_len, got = 0;
    if (read_record_with(sealer, fd, name, 0, 0, size, &plain, &len, why) != REC_OK)
        return NULL;
    struct raft_snapshot *snap = snap_from_header(plain, len, index, size, &data_len, why);
    free(plain);
    *off = snap ? HDR_LEN + len + sealer->overhead : 0;
    while (snap && !*why && got < data_len) {
        if (*off >= size) {
            *why = "snapshot data cut short";
            break;
        }
        if (read_record_with(sealer, fd, name, *off, 0, size, &plain, &len, why) != REC_OK)
            break;
        if (len <= data_len - got)
            memcpy((uint8_t *)snap->bufs[0].base + got, plain, len);
        else
            *why = "snapshot record runs past the snapshot's length";
        free(plain);
        if (*why)
            break;
        got += len;
        *off += HDR_LEN + len + sealer->overhead;
    }
    if (snap && !*why && *off != size)
        *why = "bytes after the snapshot's data";
    if (snap && *why) {
        rstore_snapshot_free(snap);
        snap = NULL;
    }
    return snap;
}

/* Reads and checks snap-<index> whole. Any bad record is an error naming file and offset (a
 * snapshot file is complete when it gets its name: there is no torn tail to cut). */
static struct raft_snapshot *read_snapshot(struct rstore *s, const struct rstore_sealer *sealer,
                                           uint64_t index, char *err, size_t errlen)
{
    char name[32];
    snap_name(name, sizeof name, index, false);
    char *path = join(s->dir, name);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    struct raft_snapshot *snap = NULL;
    if (fd < 0 || fstat(fd, &st) != 0) {
        set_err(err, errlen, "%s/%s: %s", s->dir, name, path ? strerror(errno) : "out of memory");
    } else {
        uint64_t off = 0;
        const char *why = NULL;
        snap = snap_records(sealer, fd, name, index, (uint64_t)st.st_size, &off, &why);
        if (!snap)
            set_err(err, errlen, "%s: %s at offset %llu", path, why ? why : "unreadable",
                    (unsigned long long)off);
    }
    if (fd >= 0)
        close(fd);
    free(path);
    return snap;
}

/* The latest snapshot file in the directory; removes older ones, and at open leftover temp
 * files (a write that a crash interrupted; at any other time a temp file is being written). */
static int find_snapshots(struct rstore *s, uint64_t *latest, bool at_open, char *err,
                          size_t errlen)
{
    DIR *d = opendir(s->dir);
    if (!d) {
        set_err(err, errlen, "%s: %s", s->dir, strerror(errno));
        return -1;
    }
    uint64_t found[64];
    size_t n = 0;
    *latest = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        bool tmp = false;
        uint64_t index = snap_file_index(de->d_name, &tmp);
        if (index && tmp && at_open && unlinkat(dirfd(d), de->d_name, 0) == 0)
            add_note(s, "%s: removed (a snapshot write that did not finish)", de->d_name);
        if (!index || tmp)
            continue;
        if (n < sizeof found / sizeof found[0])
            found[n++] = index;
        if (index > *latest)
            *latest = index;
    }
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snap_name(name, sizeof name, found[i], false);
        if (found[i] < *latest)
            unlinkat(dirfd(d), name, 0); /* a leftover is removed the next time */
    }
    closedir(d);
    return 0;
}

/* After a crash between a snapshot's rename and the log's compaction, the log may not continue
 * the snapshot (an install from the leader replaces the whole log): drop it then. */
static int match_snapshot(struct rstore *s, char *err, size_t errlen)
{
    if (!s->snap_index || s->n == 0 || s->start == s->snap_index + 1)
        return 0;
    uint64_t last = s->start + s->n - 1;
    if (s->start > s->snap_index + 1) {
        set_err(err, errlen, "%s: log starts at entry %llu, after snapshot %llu: entries "
                "missing at offset %llu", s->log_path, (unsigned long long)s->start,
                (unsigned long long)s->snap_index, (unsigned long long)s->data_start);
        return -1;
    }
    if (last >= s->snap_index && s->term_at_snap == s->snap_term)
        return 0;
    if (ftruncate(s->logfd, (off_t)s->data_start) != 0 || fsync(s->logfd) != 0) {
        set_err(err, errlen, "%s: cannot drop the log: %s", s->log_path, strerror(errno));
        return -1;
    }
    add_note(s, "log: entries %llu..%llu dropped: they do not continue snapshot %llu",
             (unsigned long long)s->start, (unsigned long long)last,
             (unsigned long long)s->snap_index);
    s->n = 0;
    s->end = s->data_start + s->shift;
    return 0;
}

/* At open: the latest snapshot, read and checked whole (kept for the first get); a log.tmp
 * left by a compaction a crash interrupted is removed (the log it was to replace is whole). */
static int open_snapshot(struct rstore *s, char *err, size_t errlen)
{
    uint64_t latest;
    char *tmp = join(s->dir, "log.tmp");
    if (tmp && unlink(tmp) == 0)
        add_note(s, "log.tmp: removed (a compaction that did not finish)");
    free(tmp);
    if (find_snapshots(s, &latest, true, err, errlen) != 0)
        return -1;
    if (!latest)
        return 0;
    s->cached = read_snapshot(s, &s->sealer, latest, err, errlen);
    if (!s->cached)
        return -1;
    s->snap_index = s->disk_snap = latest;
    s->snap_term = s->cached->term;
    return 0;
}

uint64_t rstore_snapshot_index(const struct rstore *s)
{
    return s->snap_index;
}

void rstore_set_snapshot_sealer(struct rstore *s, const struct rstore_sealer *sealer)
{
    if (sealer && sealer->seal && sealer->open)
        s->snap_sealer = *sealer;
}

int rstore_snapshot_get(struct rstore *s, struct raft_snapshot **out, char *err, size_t errlen)
{
    *out = NULL;
    if (s->cached) {
        *out = s->cached;
        s->cached = NULL;
        return 0;
    }
    if (!s->disk_snap)
        return 0;
    *out = read_snapshot(s, &s->snap_sealer, s->disk_snap, err, errlen);
    return *out ? 0 : -1;
}

int rstore_plan_snapshot(struct rstore *s, unsigned trailing, const struct raft_snapshot *snap,
                         struct rstore_snap_job *job, char *err, size_t errlen)
{
    *job = (struct rstore_snap_job){.index = snap->index, .term = snap->term,
                                    .conf_index = snap->configuration_index};
    if (snap->index <= s->snap_index || snap->term == 0) {
        set_err(err, errlen, "%s: snapshot %llu (term %llu) is not after snapshot %llu", s->dir,
                (unsigned long long)snap->index, (unsigned long long)snap->term,
                (unsigned long long)s->snap_index);
        return -1;
    }
    job->conf_len = conf_size(&snap->configuration);
    if (!(job->conf = malloc(job->conf_len))) {
        set_err(err, errlen, "%s: out of memory", s->dir);
        return -1;
    }
    conf_put(job->conf, &snap->configuration);
    size_t k = 0; /* entries dropped */
    if (s->n > 0 && trailing == 0)
        k = s->n;
    else if (s->n > 0 && snap->index > trailing && snap->index - trailing >= s->start)
        k = (size_t)(snap->index - trailing - s->start + 1) < s->n
                ? (size_t)(snap->index - trailing - s->start + 1) : s->n;
    if (k > 0) {
        job->compact = true;
        job->keep_off = k < s->n ? s->offs[k] : s->end;
        job->end = s->end;
        memmove(s->offs, s->offs + k, (s->n - k) * sizeof *s->offs);
        s->n -= k;
        s->start += k;
    }
    s->snap_index = snap->index;
    s->snap_term = snap->term;
    return 0;
}

void rstore_snap_job_free(struct rstore_snap_job *job)
{
    free(job->conf);
    job->conf = NULL;
}

/* Writes records through sealer for file name, from offset *off, into fd. */
static int write_record(const struct rstore_sealer *sealer, int fd, const char *name,
                        uint64_t *off, const uint8_t *plain, size_t len, uint8_t *out)
{
    uint32_t sealed = (uint32_t)(len + sealer->overhead);
    bytes_put_be32(out, sealed);
    bytes_put_be32(out + 4, hdr_check(sealed));
    if (sealer->seal(sealer->arg, name, *off, plain, len, out + HDR_LEN) != 0) {
        errno = EINVAL;
        return -1;
    }
    if (write_all(fd, out, HDR_LEN + sealed) != 0)
        return -1;
    *off += HDR_LEN + sealed;
    return 0;
}

static void snap_header(const struct rstore_snap_job *job, uint64_t data_len, uint8_t *h)
{
    h[0] = SNAP_FORMAT;
    bytes_put_be64(h + 1, job->index);
    bytes_put_be64(h + 9, job->term);
    bytes_put_be64(h + 17, job->conf_index);
    bytes_put_be64(h + 25, data_len);
    bytes_put_be32(h + 33, (uint32_t)job->conf_len);
    memcpy(h + SNAP_HDR, job->conf, job->conf_len);
}

/* The records of a snapshot: its header, then its data in chunks of RSTORE_SNAP_CHUNK. */
static int write_snap_records(const struct rstore_sealer *sealer, int fd, const char *name,
                              const struct rstore_snap_job *job, const struct raft_buffer *bufs,
                              unsigned n_bufs)
{
    uint64_t total = 0, off = 0;
    for (unsigned i = 0; i < n_bufs; i++)
        total += bufs[i].len;
    size_t room = SNAP_HDR + job->conf_len > RSTORE_SNAP_CHUNK ? SNAP_HDR + job->conf_len
                                                               : RSTORE_SNAP_CHUNK;
    uint8_t *plain = malloc(room), *out = malloc(HDR_LEN + room + sealer->overhead);
    int rv = plain && out ? 0 : -1;
    if (rv == 0) {
        snap_header(job, total, plain);
        rv = write_record(sealer, fd, name, &off, plain, SNAP_HDR + job->conf_len, out);
    }
    size_t fill = 0;
    for (unsigned i = 0; rv == 0 && i < n_bufs; i++) {
        for (size_t at = 0; rv == 0 && at < bufs[i].len;) {
            size_t n = bufs[i].len - at < RSTORE_SNAP_CHUNK - fill ? bufs[i].len - at
                                                                  : RSTORE_SNAP_CHUNK - fill;
            memcpy(plain + fill, (const uint8_t *)bufs[i].base + at, n);
            fill += n, at += n;
            if (fill == RSTORE_SNAP_CHUNK)
                rv = write_record(sealer, fd, name, &off, plain, fill, out), fill = 0;
        }
    }
    if (rv == 0 && fill > 0)
        rv = write_record(sealer, fd, name, &off, plain, fill, out);
    free(plain);
    free(out);
    return rv;
}

/* snap-<index>.tmp written and synced, renamed to snap-<index>, the directory synced. */
static int write_snapshot_file(struct rstore *s, const struct rstore_snap_job *job,
                               const struct raft_buffer *bufs, unsigned n_bufs, char *err,
                               size_t errlen)
{
    char name[32], tmpname[40];
    snap_name(name, sizeof name, job->index, false);
    snap_name(tmpname, sizeof tmpname, job->index, true);
    char *path = join(s->dir, name), *tmp = join(s->dir, tmpname);
    if (!path || !tmp)
        errno = ENOMEM;
    int fd = path && tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    int rv = fd >= 0 ? write_snap_records(&s->snap_sealer, fd, name, job, bufs, n_bufs) : -1;
    if (rv == 0 && fsync(fd) != 0)
        rv = -1;
    if (fd >= 0 && close(fd) != 0)
        rv = -1;
    if (rv == 0 && (rename(tmp, path) != 0 || fsync_dir(s->dir) != 0))
        rv = -1;
    if (rv != 0) {
        set_err(err, errlen, "%s/%s: cannot write snapshot: %s", s->dir, name, strerror(errno));
        if (tmp)
            unlink(tmp);
    }
    free(path);
    free(tmp);
    return rv;
}

/* Rewrites the log as log.tmp holding [keep_off, end) (logical offsets) after a log header,
 * renames it over the log and swaps the descriptor. The records are copied as they are: their
 * logical offsets, which the sealer binds, do not change. */
static int compact_log(struct rstore *s, uint64_t keep_off, uint64_t end, char *err,
                       size_t errlen)
{
    char *tmp = join(s->dir, "log.tmp");
    uint8_t *buf = malloc(COPY_BLOCK);
    int fd = tmp && buf ? open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    uint8_t h[LOG_HDR_LEN];
    put_log_header(h, keep_off);
    int rv = fd >= 0 && keep_off >= LOG_HDR_LEN ? write_all(fd, h, sizeof h) : -1;
    for (uint64_t at = keep_off; rv == 0 && at < end;) {
        size_t n = end - at < COPY_BLOCK ? (size_t)(end - at) : COPY_BLOCK;
        if (pread(s->logfd, buf, n, (off_t)(at - s->shift)) != (ssize_t)n ||
            write_all(fd, buf, n) != 0)
            rv = -1;
        at += n;
    }
    if (rv == 0 && (fsync(fd) != 0 || rename(tmp, s->log_path) != 0 || fsync_dir(s->dir) != 0))
        rv = -1;
    if (rv == 0) {
        close(s->logfd);
        s->logfd = fd;
        s->shift = keep_off - LOG_HDR_LEN;
        s->data_start = LOG_HDR_LEN;
    } else {
        set_err(err, errlen, "%s: cannot compact the log from offset %llu: %s", s->log_path,
                (unsigned long long)keep_off, errno ? strerror(errno) : "short read");
        if (fd >= 0)
            close(fd);
        if (tmp)
            unlink(tmp);
    }
    free(tmp);
    free(buf);
    return rv;
}

int rstore_put_snapshot(struct rstore *s, const struct rstore_snap_job *job,
                        const struct raft_buffer *bufs, unsigned n_bufs, char *err,
                        size_t errlen)
{
    errno = 0;
    if (write_snapshot_file(s, job, bufs, n_bufs, err, errlen) != 0)
        return -1;
    s->disk_snap = job->index;
    if (s->cached && s->cached->index < job->index) {
        rstore_snapshot_free(s->cached);
        s->cached = NULL;
    }
    errno = 0;
    if (job->compact && compact_log(s, job->keep_off, job->end, err, errlen) != 0)
        return -1;
    uint64_t latest;
    char ignored[64];
    find_snapshots(s, &latest, false, ignored, sizeof ignored); /* older ones: best effort */
    return 0;
}

int rstore_snapshot_put(struct rstore *s, unsigned trailing, const struct raft_snapshot *snap,
                        char *err, size_t errlen)
{
    struct rstore_snap_job job;
    if (rstore_plan_snapshot(s, trailing, snap, &job, err, errlen) != 0)
        return -1;
    int rv = rstore_put_snapshot(s, &job, snap->bufs, snap->n_bufs, err, errlen);
    rstore_snap_job_free(&job);
    return rv;
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
    s->snap_sealer = s->sealer;
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
    if (open_snapshot(s, err, errlen) != 0 || scan_log(s, NULL, true, err, errlen) != 0 ||
        match_snapshot(s, err, errlen) != 0)
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
    rstore_snapshot_free(s->cached);
    free(s->offs);
    free(s->dir), free(s->meta_path), free(s->meta_tmp), free(s->log_path);
    free(s);
}

const char *rstore_note(const struct rstore *s) { return s->note; }

uint64_t rstore_first_index(const struct rstore *s)
{
    return s->n ? s->start : s->snap_index + 1;
}

uint64_t rstore_last_index(const struct rstore *s)
{
    return s->n ? s->start + s->n - 1 : s->snap_index;
}

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
    *start = s->n ? s->start : s->snap_index + 1;
    *entries = c.entries, *n = s->n;
    return 0;
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
    if ((s->n > 0 || s->snap_index > 0) && first != rstore_last_index(s) + 1) {
        set_err(err, errlen, "%s: append at %llu, expected %llu", s->log_path,
                (unsigned long long)first, (unsigned long long)(rstore_last_index(s) + 1));
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
    if (pwrite(s->logfd, w->buf, w->len, (off_t)(w->off - s->shift)) != (ssize_t)w->len) {
        set_err(err, errlen, "%s: cannot append at offset %llu: %s", s->log_path,
                (unsigned long long)(w->off - s->shift), errno ? strerror(errno) : "short write");
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
    if (ftruncate(s->logfd, (off_t)(off - s->shift)) != 0 || fsync(s->logfd) != 0) {
        set_err(err, errlen, "%s: cannot truncate at offset %llu: %s", s->log_path,
                (unsigned long long)(off - s->shift), strerror(errno));
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
