/* Unit tests for rstore, the Raft log store: what is written and synced comes back after a
 * reopen; truncate then append; a torn tail is cut and reported; a flipped byte elsewhere is
 * corruption naming the file and offset; a wrong key is refused before the log is touched.
 * Snapshots: put (trailing and installed) and get across reopens, data over many records, a
 * torn or flipped snapshot file refused naming file and offset, a wrong key on a snapshot,
 * log compaction then reload (append, truncate, torn tail, corruption, compaction again on
 * the compacted file), the loop/worker split, and a log that does not continue the snapshot
 * (a crash mid-install) dropped at open. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rstore.h"
#include "testutil.h"

struct fixture {
    char dir[64];
    char log[96];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/rstore-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->log, sizeof f->log, "%s/log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tu_rm_rf(f->dir);
    free(f);
    return 0;
}

/* A toy sealer: XOR with a key byte, then a tag binding key, offset and contents. Enough to
 * show that a wrong key fails and that sealing goes through the callbacks. */
struct toy_key {
    uint8_t k;
};

static uint32_t toy_tag(uint8_t k, uint64_t off, const uint8_t *p, size_t len)
{
    uint32_t h = 2166136261u ^ k ^ (uint32_t)(off * 31);
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static int toy_seal(void *arg, const char *file, uint64_t off, const void *in, size_t len,
                    void *out)
{
    uint8_t k = ((struct toy_key *)arg)->k, *o = out;
    (void)file;
    for (size_t i = 0; i < len; i++)
        o[i] = ((const uint8_t *)in)[i] ^ k;
    uint32_t t = toy_tag(k, off, in, len);
    memcpy(o + len, &t, 4);
    return 0;
}

static int toy_open(void *arg, const char *file, uint64_t off, const void *in, size_t len,
                    void *out)
{
    uint8_t k = ((struct toy_key *)arg)->k, *o = out;
    (void)file;
    size_t n = len - 4;
    for (size_t i = 0; i < n; i++)
        o[i] = ((const uint8_t *)in)[i] ^ k;
    uint32_t t;
    memcpy(&t, (const uint8_t *)in + n, 4);
    return t == toy_tag(k, off, o, n) ? 0 : -1;
}

static struct rstore *open_ok(struct fixture *f, const struct rstore_sealer *sealer)
{
    char err[256] = "";
    struct rstore *s = rstore_open(f->dir, sealer, err, sizeof err);
    if (s == NULL)
        fail_msg("rstore_open: %s", err);
    return s;
}

/* Appends entries first..first+n-1 whose payload is "entry-<index>-<tag>", then syncs. */
static void append_n(struct rstore *s, uint64_t first, unsigned n, const char *tag)
{
    char err[256] = "";
    for (unsigned i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof text, "entry-%llu-%s", (unsigned long long)(first + i), tag);
        struct raft_entry e = {.term = 1 + (first + i) / 4, .type = RAFT_COMMAND,
                               .buf = {text, strlen(text)}};
        if (rstore_append(s, first + i, &e, 1, err, sizeof err) != 0)
            fail_msg("append: %s", err);
    }
    assert_int_equal(rstore_sync(s, err, sizeof err), 0);
}

/* Loads and checks entries start..start+n-1 carry the payloads of tags[]. */
static void assert_log(struct rstore *s, uint64_t start, size_t n, const char *const *tags)
{
    uint64_t term, vote, got_start;
    struct raft_entry *e;
    size_t got_n;
    char err[256] = "";
    if (rstore_load(s, &term, &vote, &got_start, &e, &got_n, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    assert_int_equal(got_n, n);
    assert_int_equal(got_start, start);
    for (size_t i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof text, "entry-%llu-%s", (unsigned long long)(start + i), tags[i]);
        assert_int_equal(e[i].buf.len, strlen(text));
        assert_memory_equal(e[i].buf.base, text, strlen(text));
        assert_int_equal(e[i].term, 1 + (start + i) / 4);
        assert_int_equal(e[i].type, RAFT_COMMAND);
        assert_non_null(e[i].batch);
        assert_ptr_equal(e[i].batch, e[0].batch); /* one batch, as libraft's load expects */
    }
    if (n > 0)
        raft_free(e[0].batch);
    raft_free(e);
}

static void test_write_reopen(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct rstore *s = open_ok(f, NULL);
    assert_int_equal(rstore_last_index(s), 0);
    assert_log(s, 1, 0, NULL);
    assert_int_equal(rstore_set_meta(s, 7, 3, err, sizeof err), 0);
    append_n(s, 1, 5, "a");
    rstore_close(s);

    s = open_ok(f, NULL);
    assert_string_equal(rstore_note(s), "");
    assert_int_equal(rstore_last_index(s), 5);
    uint64_t term, vote, start;
    struct raft_entry *e;
    size_t n;
    assert_int_equal(rstore_load(s, &term, &vote, &start, &e, &n, err, sizeof err), 0);
    assert_int_equal(term, 7);
    assert_int_equal(vote, 3);
    raft_free(e[0].batch);
    raft_free(e);
    const char *tags[] = {"a", "a", "a", "a", "a"};
    assert_log(s, 1, 5, tags);
    /* a gap is refused */
    struct raft_entry gap = {.term = 9, .type = RAFT_COMMAND, .buf = {"x", 1}};
    assert_int_equal(rstore_append(s, 8, &gap, 1, err, sizeof err), -1);
    assert_contains(err, "append at 8, expected 6");
    rstore_close(s);
}

static void test_truncate_then_append(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct rstore *s = open_ok(f, NULL);
    append_n(s, 1, 6, "a");
    assert_int_equal(rstore_truncate(s, 4, err, sizeof err), 0);
    assert_int_equal(rstore_last_index(s), 3);
    append_n(s, 4, 3, "b");
    rstore_close(s);
    s = open_ok(f, NULL);
    const char *tags[] = {"a", "a", "a", "b", "b", "b"};
    assert_log(s, 1, 6, tags);
    /* truncating everything leaves an empty log that starts again where asked */
    assert_int_equal(rstore_truncate(s, 1, err, sizeof err), 0);
    rstore_close(s);
    s = open_ok(f, NULL);
    assert_log(s, 1, 0, NULL);
    rstore_close(s);
}

/* The split rio uses: everything planned first (as the loop does), then applied in plan order
 * (as the worker does), gives the log that append and truncate give. */
static void test_plan_then_apply(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct rstore *s = open_ok(f, NULL);
    char text[5][16];
    struct raft_entry e[5];
    for (unsigned i = 0; i < 5; i++) {
        snprintf(text[i], sizeof text[i], "entry-%u-%s", i < 4 ? i + 1 : 3, i < 4 ? "a" : "b");
        e[i] = (struct raft_entry){.term = 1 + (i < 4 ? i + 1 : 3) / 4, .type = RAFT_COMMAND,
                                   .buf = {text[i], strlen(text[i])}};
    }
    struct rstore_write w[5];
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(rstore_plan_append(s, 1 + i, &e[i], 1, &w[i], err, sizeof err), 0);
    uint64_t cut = 0;
    assert_int_equal(rstore_plan_truncate(s, 3, &cut), 1);
    assert_int_equal(cut, w[2].off);
    assert_int_equal(rstore_last_index(s), 2);
    assert_int_equal(rstore_plan_append(s, 3, &e[4], 1, &w[4], err, sizeof err), 0);
    assert_int_equal(w[4].off, cut); /* the new entry is sealed for the offset it will have */
    assert_int_equal(rstore_plan_truncate(s, 9, &cut), 0); /* nothing at or after 9 */
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(rstore_write_at(s, &w[i], err, sizeof err), 0);
    assert_int_equal(rstore_cut(s, w[2].off, err, sizeof err), 0);
    assert_int_equal(rstore_write_at(s, &w[4], err, sizeof err), 0);
    assert_int_equal(rstore_sync(s, err, sizeof err), 0);
    for (unsigned i = 0; i < 5; i++)
        free(w[i].buf);
    rstore_close(s);
    s = open_ok(f, NULL);
    const char *tags[] = {"a", "a", "b"};
    assert_log(s, 1, 3, tags);
    rstore_close(s);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* The last record half written (a write whose sync never finished): cut and reported, and the
 * index it held can be written again. */
static void test_torn_tail(void **state)
{
    struct fixture *f = *state;
    struct rstore *s = open_ok(f, NULL);
    append_n(s, 1, 2, "a");
    off_t two = file_size(f->log);
    append_n(s, 3, 1, "a");
    rstore_close(s);
    off_t full = file_size(f->log);
    assert_int_equal(truncate(f->log, full - 5), 0);
    s = open_ok(f, NULL);
    char want[96];
    snprintf(want, sizeof want, "log: torn tail cut at offset %lld", (long long)two);
    assert_contains(rstore_note(s), want);
    assert_int_equal(file_size(f->log), two);
    const char *tags[] = {"a", "a", "c"};
    assert_log(s, 1, 2, tags);
    append_n(s, 3, 1, "c");
    rstore_close(s);
    s = open_ok(f, NULL);
    assert_string_equal(rstore_note(s), "");
    assert_log(s, 1, 3, tags);
    rstore_close(s);

    /* zeros where records should be (the size grew, the data never landed): torn too */
    int fd = open(f->log, O_WRONLY | O_APPEND);
    uint8_t zeros[100] = {0};
    assert_int_equal(write(fd, zeros, sizeof zeros), (ssize_t)sizeof zeros);
    close(fd);
    s = open_ok(f, NULL);
    assert_contains(rstore_note(s), "torn tail");
    assert_log(s, 1, 3, tags);
    rstore_close(s);
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

/* A flipped byte in a record that is not the last is corruption: open fails naming the file
 * and offset, and the file is left as it was. */
static void test_flipped_byte(void **state)
{
    struct fixture *f = *state;
    struct rstore *s = open_ok(f, NULL);
    append_n(s, 1, 1, "a");
    off_t second = file_size(f->log);
    append_n(s, 2, 3, "a");
    rstore_close(s);
    rstore_close(open_ok(f, NULL)); /* the good case, same files */
    off_t size = file_size(f->log);
    flip_byte(f->log, second + 12);
    char err[256] = "", want[384];
    assert_null(rstore_open(f->dir, NULL, err, sizeof err));
    snprintf(want, sizeof want, "%s: record fails authentication (wrong key or corrupted) at "
             "offset %lld", f->log, (long long)second);
    assert_string_equal(err, want);
    assert_int_equal(file_size(f->log), size);
    /* a flipped length header is corruption too, not a torn tail */
    flip_byte(f->log, second + 12);
    flip_byte(f->log, second + 1);
    assert_null(rstore_open(f->dir, NULL, err, sizeof err));
    assert_contains(err, "bad record header at offset");
    assert_int_equal(file_size(f->log), size);
}

/* Records go through the sealer; the wrong key is refused at the meta record, before the log
 * is read or cut, even when the log is a single record. */
static void test_sealer_and_wrong_key(void **state)
{
    struct fixture *f = *state;
    struct toy_key good = {0x5a}, bad = {0x33};
    struct rstore_sealer sg = {4, toy_seal, toy_open, &good}, sb = {4, toy_seal, toy_open, &bad};
    char err[256] = "";
    struct rstore *s = open_ok(f, &sg);
    assert_int_equal(rstore_set_meta(s, 2, 1, err, sizeof err), 0);
    append_n(s, 1, 1, "secret");
    rstore_close(s);
    char *raw = tu_read_file(f->log);
    assert_non_null(raw);
    assert_null(strstr(raw, "secret")); /* sealed, not plaintext */
    free(raw);
    off_t size = file_size(f->log);
    assert_null(rstore_open(f->dir, &sb, err, sizeof err));
    assert_contains(err, "/meta: record fails authentication (wrong key or corrupted) at offset 0");
    assert_int_equal(file_size(f->log), size);
    s = open_ok(f, &sg);
    const char *tags[] = {"secret"};
    assert_log(s, 1, 1, tags);
    rstore_close(s);
}

/* ---- snapshots ---------------------------------------------------------------------------- */

struct snap_fixture {
    struct raft_snapshot snap;
    struct raft_buffer buf;
};

/* A snapshot at index/term whose configuration is two servers, over data (not copied). */
static void make_snap(struct snap_fixture *sf, uint64_t index, uint64_t term, const void *data,
                      size_t len)
{
    memset(sf, 0, sizeof *sf);
    sf->buf = (struct raft_buffer){(void *)data, len};
    sf->snap = (struct raft_snapshot){.index = index, .term = term, .configuration_index = 1,
                                      .bufs = &sf->buf, .n_bufs = 1};
    raft_configuration_init(&sf->snap.configuration);
    assert_int_equal(raft_configuration_add(&sf->snap.configuration, 1, "127.0.0.1:20160",
                                            RAFT_VOTER), 0);
    assert_int_equal(raft_configuration_add(&sf->snap.configuration, 3, "127.0.0.1:20162",
                                            RAFT_SPARE), 0);
}

static void put_snap(struct rstore *s, unsigned trailing, uint64_t index, uint64_t term,
                     const void *data, size_t len)
{
    struct snap_fixture sf;
    char err[256] = "";
    make_snap(&sf, index, term, data, len);
    if (rstore_snapshot_put(s, trailing, &sf.snap, err, sizeof err) != 0)
        fail_msg("snapshot put: %s", err);
    raft_configuration_close(&sf.snap.configuration);
}

/* The latest snapshot is index/term with the two servers and exactly data. */
static void assert_snap(struct rstore *s, uint64_t index, uint64_t term, const void *data,
                        size_t len)
{
    struct raft_snapshot *got;
    char err[256] = "";
    if (rstore_snapshot_get(s, &got, err, sizeof err) != 0)
        fail_msg("snapshot get: %s", err);
    assert_non_null(got);
    assert_int_equal(got->index, index);
    assert_int_equal(got->term, term);
    assert_int_equal(got->configuration_index, 1);
    assert_int_equal(got->configuration.n, 2);
    assert_int_equal(got->configuration.servers[0].id, 1);
    assert_string_equal(got->configuration.servers[0].address, "127.0.0.1:20160");
    assert_int_equal(got->configuration.servers[0].role, RAFT_VOTER);
    assert_int_equal(got->configuration.servers[1].id, 3);
    assert_int_equal(got->configuration.servers[1].role, RAFT_SPARE);
    assert_int_equal(got->n_bufs, 1);
    assert_int_equal(got->bufs[0].len, len);
    assert_memory_equal(got->bufs[0].base, data, len);
    rstore_snapshot_free(got);
}

static bool exists_in(const struct fixture *f, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    return access(path, F_OK) == 0;
}

static void copy_bytes(const char *path, const char *text)
{
    FILE *o = fopen(path, "wb");
    assert_non_null(o);
    assert_int_equal(fwrite(text, 1, strlen(text), o), strlen(text));
    fclose(o);
}

static const char *const g_tags[] = {"a", "a", "a", "a", "a", "a", "a", "a", "a", "a",
                                     "a", "a", "a", "a", "a", "a", "a", "a", "a", "a",
                                     "a", "a", "a", "a", "a", "a", "a", "a", "a", "a"};

/* A snapshot with trailing entries: the log keeps index - trailing + 1.., the snapshot comes
 * back after a reopen; an installed one (trailing 0) replaces the whole log and the next
 * append must follow it. */
static void test_snapshot_put_reopen(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct rstore *s = open_ok(f, NULL);
    assert_int_equal(rstore_snapshot_index(s), 0);
    struct raft_snapshot *none;
    assert_int_equal(rstore_snapshot_get(s, &none, err, sizeof err), 0);
    assert_null(none);
    assert_int_equal(rstore_set_meta(s, 5, 1, err, sizeof err), 0);
    append_n(s, 1, 20, "a");
    put_snap(s, 5, 15, 4, "state at 15", 11);
    assert_int_equal(rstore_last_index(s), 20);
    assert_log(s, 11, 10, g_tags);
    assert_snap(s, 15, 4, "state at 15", 11);
    rstore_close(s);

    /* what a crash mid-write leaves: removed at open, and said so */
    char junk[128];
    snprintf(junk, sizeof junk, "%s/snap-99.tmp", f->dir);
    copy_bytes(junk, "half a snapshot");
    snprintf(junk, sizeof junk, "%s/log.tmp", f->dir);
    copy_bytes(junk, "half a log");
    s = open_ok(f, NULL);
    assert_contains(rstore_note(s), "snap-99.tmp: removed (a snapshot write that did not finish)");
    assert_contains(rstore_note(s), "log.tmp: removed (a compaction that did not finish)");
    assert_false(exists_in(f, "snap-99.tmp"));
    assert_false(exists_in(f, "log.tmp"));
    rstore_close(s);
    s = open_ok(f, NULL);
    assert_string_equal(rstore_note(s), "");
    assert_int_equal(rstore_snapshot_index(s), 15);
    assert_snap(s, 15, 4, "state at 15", 11); /* the one read at open */
    assert_snap(s, 15, 4, "state at 15", 11); /* read again */
    assert_log(s, 11, 10, g_tags);
    append_n(s, 21, 5, "a");
    /* installed from a leader: the whole log goes */
    put_snap(s, 0, 30, 9, "state at 30", 11);
    assert_false(exists_in(f, "snap-15"));
    assert_true(exists_in(f, "snap-30"));
    assert_int_equal(rstore_last_index(s), 30);
    assert_log(s, 31, 0, NULL);
    struct raft_entry e = {.term = 9, .type = RAFT_COMMAND, .buf = {"x", 1}};
    assert_int_equal(rstore_append(s, 33, &e, 1, err, sizeof err), -1);
    assert_contains(err, "append at 33, expected 31");
    append_n(s, 31, 2, "a");
    /* an older snapshot is refused */
    struct snap_fixture sf;
    make_snap(&sf, 12, 3, "old", 3);
    assert_int_equal(rstore_snapshot_put(s, 0, &sf.snap, err, sizeof err), -1);
    assert_contains(err, "snapshot 12 (term 3) is not after snapshot 30");
    raft_configuration_close(&sf.snap.configuration);
    rstore_close(s);

    s = open_ok(f, NULL);
    assert_string_equal(rstore_note(s), "");
    assert_snap(s, 30, 9, "state at 30", 11);
    assert_log(s, 31, 2, g_tags);
    uint64_t term, vote, start;
    struct raft_entry *ents;
    size_t n;
    assert_int_equal(rstore_load(s, &term, &vote, &start, &ents, &n, err, sizeof err), 0);
    assert_int_equal(term, 5);
    assert_int_equal(vote, 1);
    raft_free(ents[0].batch);
    raft_free(ents);
    rstore_close(s);
}

/* Data over several records comes back byte for byte (here 3.5 chunks and a ragged end). */
static void test_snapshot_many_records(void **state)
{
    struct fixture *f = *state;
    size_t len = RSTORE_SNAP_CHUNK * 3 + RSTORE_SNAP_CHUNK / 2 + 7;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 2654435761u >> 13);
    struct rstore *s = open_ok(f, NULL);
    append_n(s, 1, 3, "a");
    put_snap(s, 1, 3, 1, data, len);
    rstore_close(s);
    s = open_ok(f, NULL);
    assert_snap(s, 3, 1, data, len);
    rstore_close(s);
    free(data);
}

/* The offset of the first data record of snap-<index> (after the header record). */
static off_t second_record(const char *path)
{
    int fd = open(path, O_RDONLY);
    uint8_t h[4];
    assert_int_equal(pread(fd, h, 4, 0), 4);
    close(fd);
    return 8 + (off_t)((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3]);
}

/* A snapshot file cut short or with a flipped byte is corruption naming the file and offset:
 * open fails and changes nothing (no torn tail is cut from a snapshot). */
static void test_snapshot_torn_and_flipped(void **state)
{
    struct fixture *f = *state;
    static uint8_t data[RSTORE_SNAP_CHUNK + 100];
    memset(data, 'd', sizeof data);
    struct rstore *s = open_ok(f, NULL);
    append_n(s, 1, 10, "a");
    put_snap(s, 2, 8, 3, data, sizeof data);
    rstore_close(s);
    rstore_close(open_ok(f, NULL)); /* the good case, same files */
    char snap[128], err[256] = "", want[384];
    snprintf(snap, sizeof snap, "%s/snap-8", f->dir);
    off_t size = file_size(snap), log_before = file_size(f->log);
    off_t rec1 = second_record(snap), rec2 = rec1 + 8 + RSTORE_SNAP_CHUNK + 4;

    flip_byte(snap, rec1 + 1000);
    assert_null(rstore_open(f->dir, NULL, err, sizeof err));
    snprintf(want, sizeof want, "%s: record fails authentication (wrong key or corrupted) at "
             "offset %lld", snap, (long long)rec1);
    assert_string_equal(err, want);
    flip_byte(snap, rec1 + 1000);

    assert_int_equal(truncate(snap, size + 3), 0); /* bytes after the data */
    assert_null(rstore_open(f->dir, NULL, err, sizeof err));
    snprintf(want, sizeof want, "%s: bytes after the snapshot's data at offset %lld", snap,
             (long long)size);
    assert_string_equal(err, want);
    assert_int_equal(truncate(snap, size - 5), 0); /* the last record cut short */
    assert_null(rstore_open(f->dir, NULL, err, sizeof err));
    snprintf(want, sizeof want, "%s: record cut short at offset %lld", snap, (long long)rec2);
    assert_string_equal(err, want);
    assert_int_equal(truncate(snap, rec2), 0); /* a whole record gone */
    assert_null(rstore_open(f->dir, NULL, err, sizeof err));
    snprintf(want, sizeof want, "%s: snapshot data cut short at offset %lld", snap,
             (long long)rec2);
    assert_string_equal(err, want);
    assert_int_equal(file_size(snap), rec2); /* nothing cut or changed */
    assert_int_equal(file_size(f->log), log_before);

    /* renamed to another index: its header says otherwise */
    char moved[128];
    snprintf(moved, sizeof moved, "%s/snap-9", f->dir);
    assert_int_equal(rename(snap, moved), 0);
    assert_null(rstore_open(f->dir, NULL, err, sizeof err));
    assert_contains(err, "snap-9: bad snapshot header at offset 0");
}

/* A snapshot's records go through the sealer: the wrong key fails on it (here no meta record
 * exists to fail first) with nothing changed; the right key reads it. */
static void test_snapshot_wrong_key(void **state)
{
    struct fixture *f = *state;
    struct toy_key good = {0x5a}, bad = {0x33};
    struct rstore_sealer sg = {4, toy_seal, toy_open, &good}, sb = {4, toy_seal, toy_open, &bad};
    struct rstore *s = open_ok(f, &sg);
    struct rstore_sealer sg2 = sg; /* a second instance for snapshots, as rio's worker has */
    rstore_set_snapshot_sealer(s, &sg2);
    put_snap(s, 0, 40, 2, "secret state", 12);
    rstore_close(s);
    char snap[128], err[256] = "";
    snprintf(snap, sizeof snap, "%s/snap-40", f->dir);
    char *raw = tu_read_file(snap);
    assert_non_null(raw);
    assert_null(strstr(raw, "secret"));
    free(raw);
    off_t size = file_size(snap);
    assert_null(rstore_open(f->dir, &sb, err, sizeof err));
    assert_contains(err, "snap-40: record fails authentication (wrong key or corrupted) at "
                         "offset 0");
    assert_int_equal(file_size(snap), size);
    s = open_ok(f, &sg);
    assert_snap(s, 40, 2, "secret state", 12);
    rstore_close(s);
}

/* Compaction rewrites the log behind a header; the kept records are copied as they are and
 * read back, and everything the log does afterwards (append, truncate, torn tail, corruption,
 * a second compaction) works on the compacted file. */
static void test_compaction_then_reload(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct rstore *s = open_ok(f, NULL);
    append_n(s, 1, 100, "a");
    off_t full = file_size(f->log);
    put_snap(s, 10, 80, 21, "s80", 3);
    assert_int_equal(rstore_last_index(s), 100);
    off_t compacted = file_size(f->log);
    assert_true(compacted < full / 3);
    assert_false(exists_in(f, "log.tmp"));
    rstore_close(s);

    s = open_ok(f, NULL);
    assert_string_equal(rstore_note(s), "");
    assert_log(s, 71, 30, g_tags);
    append_n(s, 101, 10, "a");
    assert_int_equal(rstore_truncate(s, 105, err, sizeof err), 0);
    append_n(s, 105, 3, "b");
    rstore_close(s);
    s = open_ok(f, NULL);
    const char *tags[37];
    for (int i = 0; i < 37; i++)
        tags[i] = i < 34 ? "a" : "b";
    assert_log(s, 71, 37, tags);
    off_t before_last = file_size(f->log);
    append_n(s, 108, 1, "c");
    rstore_close(s);

    /* a torn tail on the compacted file: cut at its physical offset */
    assert_int_equal(truncate(f->log, file_size(f->log) - 3), 0);
    s = open_ok(f, NULL);
    char want[160];
    snprintf(want, sizeof want, "log: torn tail cut at offset %lld", (long long)before_last);
    assert_contains(rstore_note(s), want);
    assert_log(s, 71, 37, tags);
    rstore_close(s);

    /* a flipped byte in a kept record: corruption at its physical offset */
    flip_byte(f->log, 24 + 10);
    assert_null(rstore_open(f->dir, NULL, err, sizeof err));
    snprintf(want, sizeof want, "%s: record fails authentication", f->log);
    assert_contains(err, want);
    assert_contains(err, "at offset 24");
    flip_byte(f->log, 24 + 10);
    flip_byte(f->log, 12); /* the header's offset */
    assert_null(rstore_open(f->dir, NULL, err, sizeof err));
    assert_contains(err, "bad log header at offset 0");
    flip_byte(f->log, 12);

    /* a second compaction, of a compacted log */
    s = open_ok(f, NULL);
    put_snap(s, 5, 100, 26, "s100", 4);
    rstore_close(s);
    s = open_ok(f, NULL);
    assert_log(s, 96, 12, tags + 25);
    assert_snap(s, 100, 26, "s100", 4);
    rstore_close(s);
}

/* The split rio uses: a snapshot planned between appends (the loop), then everything applied
 * in plan order (the worker), gives the same log. */
static void test_snapshot_plan_then_apply(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct rstore *s = open_ok(f, NULL);
    char text[12][24];
    struct raft_entry e[12];
    struct rstore_write w[12];
    for (unsigned i = 0; i < 12; i++) {
        snprintf(text[i], sizeof text[i], "entry-%u-a", i + 1);
        e[i] = (struct raft_entry){.term = 1 + (i + 1) / 4, .type = RAFT_COMMAND,
                                   .buf = {text[i], strlen(text[i])}};
    }
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(rstore_plan_append(s, 1 + i, &e[i], 1, &w[i], err, sizeof err), 0);
    struct snap_fixture sf;
    make_snap(&sf, 8, 3, "s8", 2);
    struct rstore_snap_job job;
    assert_int_equal(rstore_plan_snapshot(s, 2, &sf.snap, &job, err, sizeof err), 0);
    assert_true(job.compact);
    assert_int_equal(job.keep_off, w[6].off); /* entries from 7 are kept */
    for (unsigned i = 10; i < 12; i++)
        assert_int_equal(rstore_plan_append(s, 1 + i, &e[i], 1, &w[i], err, sizeof err), 0);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(rstore_write_at(s, &w[i], err, sizeof err), 0);
    assert_int_equal(rstore_sync(s, err, sizeof err), 0);
    assert_int_equal(rstore_put_snapshot(s, &job, sf.snap.bufs, 1, err, sizeof err), 0);
    for (unsigned i = 10; i < 12; i++)
        assert_int_equal(rstore_write_at(s, &w[i], err, sizeof err), 0);
    assert_int_equal(rstore_sync(s, err, sizeof err), 0);
    for (unsigned i = 0; i < 12; i++)
        free(w[i].buf);
    rstore_snap_job_free(&job);
    raft_configuration_close(&sf.snap.configuration);
    rstore_close(s);
    s = open_ok(f, NULL);
    assert_log(s, 7, 6, g_tags);
    assert_snap(s, 8, 3, "s8", 2);
    rstore_close(s);
}

static void copy_file(const char *from, const char *to)
{
    char *b = tu_read_file(from);
    assert_non_null(b);
    FILE *o = fopen(to, "wb");
    assert_non_null(o);
    off_t size = file_size(from);
    assert_int_equal(fwrite(b, 1, (size_t)size, o), (size_t)size);
    fclose(o);
    free(b);
}

/* A crash after an installed snapshot got its name but before the log was dropped: a log that
 * does not continue the snapshot is dropped at open; one that does is kept; one that starts
 * after it is corruption. */
static void test_log_against_snapshot(void **state)
{
    struct fixture *f = *state;
    char other[96], from[160], to[160], err[256] = "";
    snprintf(other, sizeof other, "%s/other", f->dir);
    struct rstore *o = rstore_open(other, NULL, err, sizeof err);
    assert_non_null(o);
    put_snap(o, 0, 20, 6, "s20", 3); /* entry 20 has term 6 in this history */
    rstore_close(o);
    snprintf(from, sizeof from, "%s/snap-20", other);
    snprintf(to, sizeof to, "%s/snap-20", f->dir);

    struct rstore *s = open_ok(f, NULL);
    append_n(s, 1, 10, "a"); /* ends before 20 */
    rstore_close(s);
    copy_file(from, to);
    s = open_ok(f, NULL);
    assert_contains(rstore_note(s), "log: entries 1..10 dropped: they do not continue snapshot 20");
    assert_log(s, 21, 0, NULL);
    append_n(s, 21, 2, "a");
    rstore_close(s);
    s = open_ok(f, NULL);
    assert_string_equal(rstore_note(s), "");
    assert_log(s, 21, 2, g_tags);
    rstore_close(s);

    /* a log holding entry 20 with another term: dropped too; with term 6: kept */
    unlink(to);
    unlink(f->log);
    s = open_ok(f, NULL);
    append_n(s, 1, 25, "a"); /* entry 20 has term 1 + 20 / 4 = 6 */
    rstore_close(s);
    copy_file(from, to);
    s = open_ok(f, NULL);
    assert_string_equal(rstore_note(s), "");
    assert_log(s, 1, 25, g_tags);
    rstore_close(s);
    unlink(to);
    o = rstore_open(other, NULL, err, sizeof err);
    put_snap(o, 0, 21, 9, "s21", 3); /* entry 21 has term 6 here, not 9 */
    rstore_close(o);
    snprintf(from, sizeof from, "%s/snap-21", other);
    snprintf(to, sizeof to, "%s/snap-21", f->dir);
    copy_file(from, to);
    s = open_ok(f, NULL);
    assert_contains(rstore_note(s), "log: entries 1..25 dropped: they do not continue snapshot 21");
    rstore_close(s);

    /* a log that starts after the snapshot's next index: entries are missing */
    unlink(to);
    unlink(f->log);
    s = open_ok(f, NULL);
    append_n(s, 30, 2, "a");
    rstore_close(s);
    copy_file(from, to);
    assert_null(rstore_open(f->dir, NULL, err, sizeof err));
    assert_contains(err, "log starts at entry 30, after snapshot 21: entries missing at offset 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_then_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_then_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealer_and_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_put_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_many_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_torn_and_flipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_then_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_plan_then_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_against_snapshot, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
