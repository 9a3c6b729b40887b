/* Unit tests for the storage engine (kv_engine over kv_log, kv_index, kv_meta): round trips,
 * scans, atomic batches, torn tails, corruption, keys, encryption at rest and kill -9; Raft's
 * snapshot and restore (the whole key space moved, durable, a damaged snapshot refused, a
 * kill -9 during a restore leaving the old or the new contents, never a mix). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bytes.h"
#include "kv_crc.h"
#include "kv_engine.h"
#include "kv_meta.h"
#include "test_tikv_kv_util.h"

#define OP_HDR_FOR_TEST 9 /* u8 op | u32 key length | u32 value length */

static char dir[64];
static char logpath[128];
static struct event_base *base;
static struct cipher_keys key_a, key_b;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tisim-kvengine-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(logpath, sizeof logpath, "%s/kv.log", dir);
    kvt_keys(KVT_KEY_A, &key_a);
    kvt_keys(KVT_KEY_B, &key_b);
    base = event_base_new();
    return base ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    event_base_free(base);
    return tu_rm_rf(dir);
}

/* ---- helpers ----------------------------------------------------------------------------- */

struct waiter {
    int done;
    int status;
};

static void on_done(int status, const char *err, void *arg)
{
    struct waiter *w = arg;
    (void)err;
    w->done++;
    w->status = status;
}

static struct kv_engine *open_ok(const struct cipher_keys *keys)
{
    struct kv_engine *e = NULL;
    char err[512] = "";
    int rc = kv_engine_open(base, dir, keys, &e, err, sizeof err);
    if (rc != 0)
        print_error("open: %s\n", err);
    assert_int_equal(rc, 0);
    return e;
}

/* Opens expecting a failure whose message contains want; returns the message (static). */
static const char *open_fails(const struct cipher_keys *keys, const char *want)
{
    static char err[512];
    struct kv_engine *e = NULL;
    assert_int_equal(kv_engine_open(base, dir, keys, &e, err, sizeof err), -1);
    assert_null(e);
    assert_contains(err, want);
    return err;
}

static void write_sync(struct kv_engine *e, const struct kv_op *ops, size_t n)
{
    struct waiter w = {0, 0};
    char err[256];
    assert_int_equal(kv_engine_write(e, ops, n, on_done, &w, err, sizeof err), 0);
    while (!w.done)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(w.status, 0);
}

static void put(struct kv_engine *e, const char *k, const char *v)
{
    struct kv_op op = {KV_OP_PUT, k, strlen(k), v, strlen(v)};
    write_sync(e, &op, 1);
}

static void del(struct kv_engine *e, const char *k)
{
    struct kv_op op = {KV_OP_DELETE, k, strlen(k), NULL, 0};
    write_sync(e, &op, 1);
}

static void expect_kv(struct kv_engine *e, const char *k, const char *want)
{
    const void *v;
    size_t n;
    int rc = kv_engine_get(e, k, strlen(k), &v, &n);
    if (!want) {
        assert_int_equal(rc, 1);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(v, want, n);
}

static uint64_t log_size(struct kv_engine *e)
{
    struct kv_engine_stats st;
    kv_engine_stats(e, &st);
    return st.log_bytes;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

/* Three writes, each its own record; offs[i] = where record i starts, offs[3] = the end. */
static void three_records(const struct cipher_keys *keys, uint64_t offs[4])
{
    struct kv_engine *e = open_ok(keys);
    offs[0] = log_size(e);
    put(e, "k1", "value one");
    offs[1] = log_size(e);
    put(e, "k2", "value two");
    offs[2] = log_size(e);
    put(e, "k3", "value three");
    offs[3] = log_size(e);
    kv_engine_close(e);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_crc32(void **state)
{
    (void)state;
    assert_int_equal(kv_crc32(0, "123456789", 9), 0xCBF43926u); /* the standard check value */
    assert_int_equal(kv_crc32(kv_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
    assert_int_equal(kv_crc32(0, "", 0), 0);
}

static void round_trip(const struct cipher_keys *keys)
{
    struct kv_engine *e = open_ok(keys);
    put(e, "a", "1");
    put(e, "b", "2");
    put(e, "a", "3"); /* overwrite */
    del(e, "b");
    del(e, "never-there");
    put(e, "", "empty key");
    put(e, "empty value", "");
    expect_kv(e, "a", "3");
    expect_kv(e, "b", NULL);
    kv_engine_close(e);
    e = open_ok(keys);
    expect_kv(e, "a", "3");
    expect_kv(e, "b", NULL);
    expect_kv(e, "", "empty key");
    expect_kv(e, "empty value", "");
    struct kv_engine_stats st;
    kv_engine_stats(e, &st);
    assert_int_equal(st.keys, 3);
    assert_int_equal(st.encrypted, keys != NULL);
    kv_engine_close(e);
}

static void test_round_trip_plain(void **state)
{
    (void)state;
    round_trip(NULL);
}

static void test_round_trip_encrypted(void **state)
{
    (void)state;
    round_trip(&key_a);
}

struct collect {
    char keys[64][16];
    size_t n;
};

static int collect_fn(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    (void)v;
    (void)vl;
    struct collect *c = arg;
    snprintf(c->keys[c->n++], sizeof c->keys[0], "%.*s", (int)kl, (const char *)k);
    return 0;
}

static void expect_scan(struct kv_engine *e, const char *from, const char *to, size_t limit,
                        const char *want)
{
    struct collect c = {.n = 0};
    size_t n = kv_engine_scan(e, from, strlen(from), to, to ? strlen(to) : 0, limit, collect_fn,
                              &c);
    assert_int_equal(n, c.n);
    char got[1024] = "";
    for (size_t i = 0; i < c.n; i++) {
        strcat(got, c.keys[i]);
        strcat(got, i + 1 < c.n ? "," : "");
    }
    assert_string_equal(got, want);
}

static void test_scan_order_and_limits(void **state)
{
    (void)state;
    struct kv_engine *e = open_ok(NULL);
    const char *keys[] = {"m", "b", "ab", "a", "z", "c", "b0", "y", "aa"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        put(e, keys[i], "v");
    expect_scan(e, "", NULL, 0, "a,aa,ab,b,b0,c,m,y,z");
    expect_scan(e, "b", "y", 0, "b,b0,c,m");           /* end excluded */
    expect_scan(e, "b", "y", 2, "b,b0");               /* limit */
    expect_scan(e, "a", "b", 10, "a,aa,ab");
    expect_scan(e, "aa", "aa", 0, "");                 /* empty range */
    expect_scan(e, "zz", NULL, 0, "");
    expect_scan(e, "b1", NULL, 1, "c");                /* start between keys */
    del(e, "c");
    expect_scan(e, "b1", NULL, 1, "m");
    kv_engine_close(e);
    e = open_ok(NULL); /* the same order after a rebuild */
    expect_scan(e, "", NULL, 0, "a,aa,ab,b,b0,m,y,z");
    kv_engine_close(e);
}

static void test_many_keys(void **state)
{
    (void)state;
    struct kv_engine *e = open_ok(&key_a);
    /* 2000 keys in one batch and 1000 deletes in another. */
    static struct kv_op ops[2000];
    static char names[2000][16];
    for (int i = 0; i < 2000; i++) {
        snprintf(names[i], sizeof names[i], "key%05d", (i * 7919) % 2000);
        ops[i] = (struct kv_op){KV_OP_PUT, names[i], strlen(names[i]), names[i], strlen(names[i])};
    }
    write_sync(e, ops, 2000);
    for (int i = 0; i < 1000; i++)
        ops[i] = (struct kv_op){KV_OP_DELETE, names[2 * i], strlen(names[2 * i]), NULL, 0};
    write_sync(e, ops, 1000);
    kv_engine_close(e);
    e = open_ok(&key_a);
    struct kv_engine_stats st;
    kv_engine_stats(e, &st);
    assert_int_equal(st.keys, 1000);
    kv_engine_close(e);
}

static void test_batch_atomic(void **state)
{
    (void)state;
    struct kv_engine *e = open_ok(&key_a);
    put(e, "before", "x");
    uint64_t start = log_size(e);
    struct kv_op ops[50];
    char names[50][8];
    for (int i = 0; i < 50; i++) {
        snprintf(names[i], sizeof names[i], "b%02d", i);
        ops[i] = (struct kv_op){KV_OP_PUT, names[i], strlen(names[i]), "v", 1};
    }
    write_sync(e, ops, 50);
    uint64_t end = log_size(e);
    kv_engine_close(e);
    /* A crash that left half the batch's record on disk. */
    assert_int_equal(truncate(logpath, (off_t)(start + (end - start) / 2)), 0);
    e = open_ok(&key_a);
    expect_kv(e, "before", "x");
    for (int i = 0; i < 50; i++)
        expect_kv(e, names[i], NULL);
    assert_int_equal(log_size(e), start);
    kv_engine_close(e);
    assert_int_equal(file_size(logpath), (off_t)start); /* the tail was cut on disk */
}

static void torn_tail(const struct cipher_keys *keys)
{
    uint64_t offs[4];
    three_records(keys, offs);
    /* The last record cut short. */
    assert_int_equal(truncate(logpath, (off_t)(offs[2] + 10)), 0);
    struct kv_engine *e = open_ok(keys);
    expect_kv(e, "k1", "value one");
    expect_kv(e, "k2", "value two");
    expect_kv(e, "k3", NULL);
    put(e, "k4", "value four"); /* appends go where the cut was */
    uint64_t end = log_size(e);
    kv_engine_close(e);
    assert_int_equal(file_size(logpath), (off_t)end);
    /* Garbage after the last record. */
    int fd = open(logpath, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    char junk[100];
    memset(junk, 0xAB, sizeof junk);
    assert_int_equal(write(fd, junk, sizeof junk), sizeof junk);
    close(fd);
    e = open_ok(keys);
    expect_kv(e, "k4", "value four");
    assert_int_equal(log_size(e), end);
    kv_engine_close(e);
    assert_int_equal(file_size(logpath), (off_t)end);
}

static void test_torn_tail_plain(void **state)
{
    (void)state;
    torn_tail(NULL);
}

static void test_torn_tail_encrypted(void **state)
{
    (void)state;
    torn_tail(&key_a);
}

static void flipped_middle(const struct cipher_keys *keys, const char *reason)
{
    uint64_t offs[4];
    three_records(keys, offs);
    flip_byte(logpath, (off_t)(offs[1] + 8 + 13)); /* inside the second record's body */
    uint64_t before = kvt_hash_dir(dir);
    char want[256];
    snprintf(want, sizeof want, "data file %s is corrupt at offset %llu: %s", logpath,
             (unsigned long long)offs[1], reason);
    open_fails(keys, want);
    assert_true(before == kvt_hash_dir(dir)); /* nothing cut, nothing written */
    /* A flipped length in the record header is found too. */
    flip_byte(logpath, (off_t)(offs[1] + 8 + 13));
    flip_byte(logpath, (off_t)offs[1]);
    snprintf(want, sizeof want, "data file %s is corrupt at offset %llu: record header check failed",
             logpath, (unsigned long long)offs[1]);
    open_fails(keys, want);
    flip_byte(logpath, (off_t)offs[1]);
    struct kv_engine *e = open_ok(keys); /* the good case: all three back */
    expect_kv(e, "k2", "value two");
    expect_kv(e, "k3", "value three");
    kv_engine_close(e);
}

static void test_flipped_byte_plain(void **state)
{
    (void)state;
    flipped_middle(NULL, "checksum mismatch");
}

static void test_flipped_byte_encrypted(void **state)
{
    (void)state;
    flipped_middle(&key_a, "authentication failed");
}

static void test_flipped_last_record_is_torn(void **state)
{
    (void)state;
    uint64_t offs[4];
    three_records(&key_a, offs);
    flip_byte(logpath, (off_t)(offs[2] + 8 + 13)); /* the last record: what a torn write leaves */
    struct kv_engine *e = open_ok(&key_a);
    expect_kv(e, "k2", "value two");
    expect_kv(e, "k3", NULL);
    kv_engine_close(e);
    assert_int_equal(file_size(logpath), (off_t)offs[2]);
}

static void test_foreign_key_never_cuts(void **state)
{
    (void)state;
    /* Records sealed with key A in a dir whose meta.json says key B (a swapped meta.json):
     * the first record fails authentication and is not the last one, so the open fails and
     * nothing is cut. */
    uint64_t offs[4];
    three_records(&key_a, offs);
    char meta[128], err[256];
    snprintf(meta, sizeof meta, "%s/meta.json", dir);
    assert_int_equal(unlink(meta), 0);
    struct kv_meta m;
    assert_int_equal(kv_meta_create(dir, &key_b, &m, err, sizeof err), 0);
    uint64_t before = kvt_hash_dir(dir);
    open_fails(&key_b, "is corrupt at offset 32: authentication failed");
    assert_true(before == kvt_hash_dir(dir));
    assert_int_equal(file_size(logpath), (off_t)offs[3]);
}

static void test_moved_record_fails(void **state)
{
    (void)state;
    /* Two records of equal length swapped: each passes GCM only at its own offset. */
    uint64_t offs[4];
    struct kv_engine *e = open_ok(&key_a);
    offs[0] = log_size(e);
    put(e, "k1", "AAAA");
    offs[1] = log_size(e);
    put(e, "k1", "BBBB");
    offs[2] = log_size(e);
    put(e, "k9", "tail");
    kv_engine_close(e);
    size_t len = (size_t)(offs[1] - offs[0]);
    assert_int_equal(offs[2] - offs[1], len);
    char a[256], b[256];
    int fd = open(logpath, O_RDWR);
    assert_int_equal(pread(fd, a, len, (off_t)offs[0]), (ssize_t)len);
    assert_int_equal(pread(fd, b, len, (off_t)offs[1]), (ssize_t)len);
    /* Keep each header (its CRC binds the offset) but swap the bodies. */
    assert_int_equal(pwrite(fd, b + 8, len - 8, (off_t)offs[0] + 8), (ssize_t)(len - 8));
    assert_int_equal(pwrite(fd, a + 8, len - 8, (off_t)offs[1] + 8), (ssize_t)(len - 8));
    close(fd);
    open_fails(&key_a, "is corrupt at offset 32: authentication failed");
}

static void test_limitations(void **state)
{
    (void)state;
    struct kv_engine *e = open_ok(&key_a);
    put(e, "k", "v");
    kv_engine_close(e);
    uint64_t before = kvt_hash_dir(dir);
    open_fails(&key_b, "the cipher-file does not match the key this data dir was encrypted "
                       "with (key check mismatch)");
    open_fails(NULL, "encryption cannot be turned off");
    assert_true(before == kvt_hash_dir(dir));
    e = open_ok(&key_a);
    expect_kv(e, "k", "v");
    kv_engine_close(e);
    /* A plaintext dir refuses a key. */
    tu_rm_rf(dir);
    e = open_ok(NULL);
    put(e, "k", "v");
    kv_engine_close(e);
    before = kvt_hash_dir(dir);
    open_fails(&key_a, "encryption cannot be turned on");
    assert_true(before == kvt_hash_dir(dir));
    /* kv.log without meta.json: no guessing. */
    char meta[128];
    snprintf(meta, sizeof meta, "%s/meta.json", dir);
    assert_int_equal(unlink(meta), 0);
    before = kvt_hash_dir(dir);
    open_fails(NULL, "holds kv.log but no meta.json");
    assert_true(before == kvt_hash_dir(dir));
}

static void test_in_use(void **state)
{
    (void)state;
    struct kv_engine *e = open_ok(NULL);
    open_fails(NULL, "in use by another process (locked)");
    kv_engine_close(e);
    e = open_ok(NULL);
    kv_engine_close(e);
}

static void test_refused_writes(void **state)
{
    (void)state;
    struct kv_engine *e = open_ok(NULL);
    char err[256];
    struct waiter w = {0, 0};
    static char big[KV_ENGINE_MAX_KEY + 1];
    struct kv_op op = {KV_OP_PUT, big, sizeof big, "v", 1};
    assert_int_equal(kv_engine_write(e, &op, 1, on_done, &w, err, sizeof err), -1);
    assert_contains(err, "over the limit");
    assert_int_equal(kv_engine_write(e, &op, 0, on_done, &w, err, sizeof err), -1);
    op.klen = KV_ENGINE_MAX_KEY; /* the largest key is fine */
    write_sync(e, &op, 1);
    assert_int_equal(w.done, 0);
    kv_engine_close(e);
}

/* A distinctive value is nowhere in the data dir's bytes when encrypted, and is when not. */
static int dir_contains(const char *needle)
{
    char *files[] = {"kv.log", "meta.json"};
    for (size_t i = 0; i < 2; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static char buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        for (size_t j = 0; j + strlen(needle) <= n; j++)
            if (memcmp(buf + j, needle, strlen(needle)) == 0)
                return 1;
    }
    return 0;
}

static void test_encrypted_at_rest(void **state)
{
    (void)state;
    static const char secret[] = "DISTINCTIVE-VALUE-7f3a9c";
    static const char secret_key[] = "DISTINCTIVE-KEY-51be20";
    struct kv_engine *e = open_ok(&key_a);
    put(e, secret_key, secret);
    kv_engine_close(e);
    assert_false(dir_contains(secret));
    assert_false(dir_contains(secret_key));
    tu_rm_rf(dir);
    e = open_ok(NULL);
    put(e, secret_key, secret);
    kv_engine_close(e);
    assert_true(dir_contains(secret)); /* the check can fail */
    assert_true(dir_contains(secret_key));
}

static void test_group_commit(void **state)
{
    (void)state;
    struct kv_engine *e = open_ok(&key_a);
    enum { N = 64 };
    struct waiter w[N];
    char names[N][8], err[256];
    /* The first write is large (8 MB to seal and sync), so the sync thread is busy with it
     * while the other 63 are queued: they must share syncs rather than take one each. */
    static char big[KV_ENGINE_MAX_VALUE];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < N; i++) {
        w[i] = (struct waiter){0, 0};
        snprintf(names[i], sizeof names[i], "g%02d", i);
        struct kv_op op = {KV_OP_PUT, names[i], strlen(names[i]), names[i], strlen(names[i])};
        if (i == 0) {
            op.val = big;
            op.vlen = sizeof big;
        }
        assert_int_equal(kv_engine_write(e, &op, 1, on_done, &w[i], err, sizeof err), 0);
    }
    /* Nothing is visible before its acknowledgement. */
    expect_kv(e, "g63", NULL);
    int done = 0;
    while (done < N) {
        event_base_loop(base, EVLOOP_ONCE);
        for (done = 0; done < N && w[done].done; done++)
            ;
    }
    for (int i = 1; i < N; i++) {
        assert_int_equal(w[i].done, 1);
        assert_int_equal(w[i].status, 0);
        expect_kv(e, names[i], names[i]);
    }
    struct kv_engine_stats st;
    kv_engine_stats(e, &st);
    print_message("group commit: %llu writes in %llu syncs\n", (unsigned long long)st.writes,
                  (unsigned long long)st.syncs);
    assert_int_equal(st.writes, N);
    assert_true(st.syncs <= N / 2);
    kv_engine_close(e);
}

static void test_close_flushes(void **state)
{
    (void)state;
    struct kv_engine *e = open_ok(NULL);
    struct waiter w = {0, 0};
    char err[256];
    struct kv_op op = {KV_OP_PUT, "late", 4, "v", 1};
    assert_int_equal(kv_engine_write(e, &op, 1, on_done, &w, err, sizeof err), 0);
    kv_engine_close(e); /* no loop turn: close must finish the write and tell us */
    assert_int_equal(w.done, 1);
    assert_int_equal(w.status, 0);
    e = open_ok(NULL);
    expect_kv(e, "late", "v");
    kv_engine_close(e);
}

/* Raft's apply path: visible at once, durable with its index, so a replay after a restart
 * knows what to skip; plain writes in between keep the highest index. */
static void test_apply_index(void **state)
{
    (void)state;
    struct kv_engine *e = open_ok(&key_a);
    assert_int_equal(kv_engine_applied_index(e), 0);
    struct kv_op ops[2] = {{KV_OP_PUT, "a", 1, "one", 3}, {KV_OP_PUT, "b", 1, "two", 3}};
    uint8_t buf[64];
    uint8_t *end = kv_engine_encode_op(&ops[1], kv_engine_encode_op(&ops[0], buf));
    char err[256];
    assert_int_equal(kv_engine_apply(e, 7, buf, (size_t)(end - buf), err, sizeof err), 0);
    expect_kv(e, "a", "one"); /* no loop turn: applied on return */
    expect_kv(e, "b", "two");
    assert_int_equal(kv_engine_applied_index(e), 7);
    struct kv_op del_a = {KV_OP_DELETE, "a", 1, NULL, 0};
    end = kv_engine_encode_op(&del_a, buf);
    assert_int_equal(kv_engine_apply(e, 9, buf, (size_t)(end - buf), err, sizeof err), 0);
    put(e, "plain", "write"); /* a direct write after it: shares or follows its record */
    /* malformed commands are refused whole, nothing applied, the index unchanged */
    buf[0] = 77;
    assert_int_equal(kv_engine_apply(e, 10, buf, (size_t)(end - buf), err, sizeof err), -1);
    assert_contains(err, "command 10 is malformed");
    assert_int_equal(kv_engine_check_ops(buf, 3), -1);
    assert_int_equal(kv_engine_applied_index(e), 9);
    kv_engine_close(e);

    e = open_ok(&key_a);
    assert_int_equal(kv_engine_applied_index(e), 9); /* what a replay skips up to */
    expect_kv(e, "a", NULL);
    expect_kv(e, "b", "two");
    expect_kv(e, "plain", "write");
    kv_engine_close(e);
}

/* ---- snapshot and restore ---------------------------------------------------------------- */

static uint8_t *take_snapshot(struct kv_engine *e, uint64_t index, size_t *len)
{
    char err[256];
    *len = kv_engine_snapshot_size(e);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    if (kv_engine_snapshot_write(e, index, buf, *len, err, sizeof err) != 0)
        fail_msg("snapshot: %s", err);
    return buf;
}

static uint64_t key_count(struct kv_engine *e)
{
    struct kv_engine_stats st;
    kv_engine_stats(e, &st);
    return st.keys;
}

static void apply_put(struct kv_engine *e, uint64_t index, const char *k, const char *v)
{
    struct kv_op op = {KV_OP_PUT, k, strlen(k), v, strlen(v)};
    uint8_t buf[256];
    uint8_t *end = kv_engine_encode_op(&op, buf);
    char err[256];
    assert_int_equal(kv_engine_apply(e, index, buf, (size_t)(end - buf), err, sizeof err), 0);
}

/* The whole key space moves from one engine to another: the target ends with exactly the
 * source's pairs and applied index, durably, and keeps working; an older snapshot is a no-op;
 * a damaged one changes nothing. */
static void snapshot_restore(const struct cipher_keys *keys)
{
    char err[256];
    struct kv_engine *src = open_ok(keys);
    put(src, "", "empty key");
    put(src, "empty value", "");
    put(src, "gone", "soon");
    del(src, "gone");
    apply_put(src, 12, "applied", "by raft");
    size_t len;
    uint8_t *snap = take_snapshot(src, 10, &len); /* raft at 10, the engine at 12: 12 wins */
    assert_int_equal(bytes_get_le64(snap + 1), 12);
    kv_engine_close(src);

    char other[128];
    snprintf(other, sizeof other, "%s/b", dir);
    struct kv_engine *dst = NULL;
    assert_int_equal(kv_engine_open(base, other, keys, &dst, err, sizeof err), 0);
    put(dst, "old", "contents");
    apply_put(dst, 3, "applied", "earlier");
    /* damaged: refused whole, nothing changed */
    snap[20] ^= 0x40;
    assert_int_equal(kv_engine_restore(dst, snap, len, err, sizeof err), -1);
    assert_contains(err, "bad version or checksum");
    expect_kv(dst, "old", "contents");
    assert_int_equal(kv_engine_applied_index(dst), 3);
    snap[20] ^= 0x40;
    /* the good one */
    if (kv_engine_restore(dst, snap, len, err, sizeof err) != 0)
        fail_msg("restore: %s", err);
    assert_int_equal(kv_engine_applied_index(dst), 12);
    assert_int_equal(key_count(dst), 3);
    expect_kv(dst, "old", NULL);
    expect_kv(dst, "applied", "by raft");
    expect_kv(dst, "", "empty key");
    expect_kv(dst, "empty value", "");
    /* the same snapshot again: the engine is there already */
    assert_int_equal(kv_engine_restore(dst, snap, len, err, sizeof err), 1);
    put(dst, "after", "restore"); /* the new kv.log takes writes */
    kv_engine_close(dst);
    char leftover[192];
    snprintf(leftover, sizeof leftover, "%s/kv.log.new", other);
    assert_int_equal(access(leftover, F_OK), -1);

    assert_int_equal(kv_engine_open(base, other, keys, &dst, err, sizeof err), 0);
    assert_int_equal(kv_engine_applied_index(dst), 12);
    assert_int_equal(key_count(dst), 4);
    expect_kv(dst, "old", NULL);
    expect_kv(dst, "applied", "by raft");
    expect_kv(dst, "after", "restore");
    /* a snapshot of the restored engine is byte for byte the one restored, plus "after" */
    size_t len2;
    uint8_t *again = take_snapshot(dst, 0, &len2);
    assert_int_equal(len2, len + OP_HDR_FOR_TEST + strlen("after") + strlen("restore"));
    free(again);
    kv_engine_close(dst);
    free(snap);
}

static void test_snapshot_restore_plain(void **state)
{
    (void)state;
    snapshot_restore(NULL);
}

static void test_snapshot_restore_encrypted(void **state)
{
    (void)state;
    snapshot_restore(&key_a);
    /* the restored file is sealed: no value in the clear */
    char path[128];
    snprintf(path, sizeof path, "%s/b/kv.log", dir);
    char *raw = tu_read_file(path);
    assert_non_null(raw);
    assert_null(strstr(raw, "by raft"));
    free(raw);
}

/* ---- kill -9 during a restore -------------------------------------------------------------- */

#define R_OLD 2000
#define R_NEW 30000

static void fill(struct kv_engine *e, const char *prefix, int n)
{
    static struct kv_op ops[1000];
    static char names[1000][32], vals[1000][256];
    for (int i = 0; i < n; i += 1000) {
        int k = n - i < 1000 ? n - i : 1000;
        for (int j = 0; j < k; j++) {
            snprintf(names[j], sizeof names[j], "%s-%06d", prefix, i + j);
            snprintf(vals[j], sizeof vals[j], "%s-value-%0200d", prefix, i + j);
            ops[j] = (struct kv_op){KV_OP_PUT, names[j], strlen(names[j]), vals[j],
                                    strlen(vals[j])};
        }
        write_sync(e, ops, (size_t)k);
    }
}

/* 1: every old pair and nothing else; 2: every new pair and the snapshot's index. */
static int which_contents(struct kv_engine *e)
{
    char name[32];
    const void *v;
    size_t vl;
    uint64_t keys = key_count(e);
    if (keys == R_OLD) {
        for (int i = 0; i < R_OLD; i++) {
            snprintf(name, sizeof name, "old-%06d", i);
            assert_int_equal(kv_engine_get(e, name, strlen(name), &v, &vl), 0);
        }
        return 1;
    }
    assert_int_equal(keys, R_NEW);
    assert_int_equal(kv_engine_applied_index(e), 777);
    for (int i = 0; i < R_NEW; i++) {
        snprintf(name, sizeof name, "new-%06d", i);
        assert_int_equal(kv_engine_get(e, name, strlen(name), &v, &vl), 0);
    }
    return 2;
}

static void restore_child(int fd, const uint8_t *snap, size_t len)
{
    struct event_base *b = event_base_new();
    struct kv_engine *e;
    char err[512];
    if (!b || kv_engine_open(b, dir, &key_a, &e, err, sizeof err) != 0)
        _exit(2);
    char one = 1;
    if (write(fd, &one, 1) != 1)
        _exit(3);
    int rc = kv_engine_restore(e, snap, len, err, sizeof err);
    if (write(fd, &one, 1) != 1)
        _exit(4);
    kv_engine_close(e);
    _exit(rc == 0 ? 0 : 5);
}

/* A child restores a snapshot of 30000 pairs over 2000 others and is killed at a random moment
 * of it: every reopen finds one whole set or the other. */
static void test_restore_kill9(void **state)
{
    (void)state;
    char other[128];
    snprintf(other, sizeof other, "%s/src", dir);
    struct kv_engine *src = NULL;
    char err[256];
    assert_int_equal(kv_engine_open(base, other, &key_a, &src, err, sizeof err), 0);
    fill(src, "new", R_NEW);
    size_t len;
    uint8_t *snap = take_snapshot(src, 777, &len);
    kv_engine_close(src);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    int seen[3] = {0, 0, 0}, last = 2;
    for (int round = 0; round < 8; round++) {
        struct kv_engine *e;
        if (last == 2) { /* each round starts from the old set */
            char keep[128];
            snprintf(keep, sizeof keep, "%s/kv.log", dir);
            unlink(keep);
            snprintf(keep, sizeof keep, "%s/meta.json", dir);
            unlink(keep);
            e = open_ok(&key_a);
            fill(e, "old", R_OLD);
            kv_engine_close(e);
        }
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            restore_child(p[1], snap, len);
        }
        close(p[1]);
        char c;
        assert_int_equal(read(p[0], &c, 1), 1); /* the child is about to restore */
        usleep((useconds_t)(rand_r(&seed) % 150000));
        kill(pid, SIGKILL);
        close(p[0]);
        int wstatus;
        assert_int_equal(waitpid(pid, &wstatus, 0), pid);
        e = open_ok(&key_a);
        last = which_contents(e);
        seen[last]++;
        kv_engine_close(e);
    }
    print_message("restore killed 8 times: %d left the old contents, %d the new\n", seen[1],
                  seen[2]);
    free(snap);
}

/* ---- kill -9 ----------------------------------------------------------------------------- */

struct child {
    struct kv_engine *e;
    int fd;
    int round;
    uint32_t next;
    char names[16][32];
    char vals[16][128];
};

static void child_submit(struct child *c, int slot);

struct slot {
    struct child *c;
    int i;
    uint32_t id;
};
static struct slot slots[16];

static void slot_done(int status, const char *err, void *arg)
{
    struct slot *s = arg;
    (void)err;
    if (status != 0)
        _exit(3);
    if (write(s->c->fd, &s->id, sizeof s->id) != sizeof s->id)
        _exit(4);
    child_submit(s->c, s->i);
}

static void child_submit(struct child *c, int i)
{
    uint32_t id = c->next++;
    snprintf(c->names[i], sizeof c->names[i], "r%d-%08u", c->round, id);
    snprintf(c->vals[i], sizeof c->vals[i], "value-%u-%0100u", id, id);
    slots[i] = (struct slot){c, i, id};
    struct kv_op op = {KV_OP_PUT, c->names[i], strlen(c->names[i]), c->vals[i], strlen(c->vals[i])};
    char err[256];
    if (kv_engine_write(c->e, &op, 1, slot_done, &slots[i], err, sizeof err) != 0)
        _exit(5);
}

static void run_child(int fd, int round, const struct cipher_keys *keys)
{
    struct event_base *b = event_base_new();
    struct child c = {.fd = fd, .round = round};
    char err[512];
    if (!b || kv_engine_open(b, dir, keys, &c.e, err, sizeof err) != 0)
        _exit(2);
    for (int i = 0; i < 16; i++)
        child_submit(&c, i);
    event_base_dispatch(b);
    _exit(0);
}

static void crash_round(int round, const struct cipher_keys *keys, unsigned *seed)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        run_child(p[1], round, keys);
    }
    close(p[1]);
    static uint8_t acked[1 << 20];
    memset(acked, 0, sizeof acked);
    uint32_t id, count = 0, kill_after = 50 + (uint32_t)(rand_r(seed) % 400);
    while (count < kill_after && read(p[0], &id, sizeof id) == sizeof id) {
        acked[id] = 1;
        count++;
    }
    usleep((useconds_t)(rand_r(seed) % 3000));
    kill(pid, SIGKILL);
    while (read(p[0], &id, sizeof id) == sizeof id) { /* acks sent before the kill */
        acked[id] = 1;
        count++;
    }
    close(p[0]);
    int wstatus;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    assert_true(WIFSIGNALED(wstatus)); /* it was still writing when killed */
    struct kv_engine *e = open_ok(keys);
    uint32_t found = 0;
    for (uint32_t i = 0; i < sizeof acked; i++) {
        if (!acked[i])
            continue;
        char name[32], val[128];
        snprintf(name, sizeof name, "r%d-%08u", round, i);
        snprintf(val, sizeof val, "value-%u-%0100u", i, i);
        expect_kv(e, name, val);
        found++;
    }
    assert_int_equal(found, count);
    print_message("crash round %d: %u acknowledged writes, all present after kill -9\n", round,
                  count);
    kv_engine_close(e);
}

static void test_kill9(void **state)
{
    (void)state;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    for (int round = 0; round < 3; round++)
        crash_round(round, NULL, &seed);
    tu_rm_rf(dir);
    for (int round = 0; round < 3; round++)
        crash_round(round, &key_a, &seed);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_crc32), T(test_round_trip_plain),     T(test_round_trip_encrypted), T(test_scan_order_and_limits),
        T(test_many_keys),            T(test_batch_atomic),         T(test_torn_tail_plain),
        T(test_torn_tail_encrypted),  T(test_flipped_byte_plain),   T(test_flipped_byte_encrypted),
        T(test_moved_record_fails),   T(test_flipped_last_record_is_torn),
        T(test_foreign_key_never_cuts),   T(test_limitations),          T(test_in_use),
        T(test_refused_writes),       T(test_encrypted_at_rest),    T(test_group_commit),
        T(test_close_flushes),        T(test_apply_index),          T(test_kill9),
        T(test_snapshot_restore_plain), T(test_snapshot_restore_encrypted),
        T(test_restore_kill9),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
