/* Unit tests for rseal, the AES-256-GCM sealer of the Raft log store: entries written through
 * a real rstore come back after a reopen with a fresh sealer; the files hold none of the
 * plaintext (a plaintext store holding it shows the check can fail); a wrong key is refused at
 * the meta record with nothing changed; a flipped byte in the middle of the log is corruption
 * naming the file and offset, in the last record a torn tail that is cut; a record copied to
 * another offset or opened under another file name fails; nonces never repeat, also across
 * the counter's wrap. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "rseal.h"
#include "rstore.h"
#include "test_tikv_kv_util.h"

#define SECRET "ZebraQuokka-4f1d raft payload"
#define TERM 0x1122334455667788ull
#define VOTE 0x0102030405060708ull
#define BIG_LEN (100 * 1024)

struct fixture {
    char dir[64];
    char log[96], meta[96];
    struct cipher_keys key_a, key_b;
    struct rseal *ra;
};

static struct rseal *new_rseal(const struct cipher_keys *k)
{
    char err[256] = "";
    struct rseal *r = rseal_new(k, err, sizeof err);
    if (r == NULL)
        fail_msg("rseal_new: %s", err);
    return r;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/tisim-rseal-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->log, sizeof f->log, "%s/log", f->dir);
    snprintf(f->meta, sizeof f->meta, "%s/meta", f->dir);
    kvt_keys(KVT_KEY_A, &f->key_a);
    kvt_keys(KVT_KEY_B, &f->key_b);
    f->ra = new_rseal(&f->key_a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rseal_free(f->ra);
    tu_rm_rf(f->dir);
    free(f);
    return 0;
}

static struct rstore *open_ok(const char *dir, struct rseal *r)
{
    char err[256] = "";
    struct rstore_sealer sealer = rseal_sealer(r);
    struct rstore *s = rstore_open(dir, r ? &sealer : NULL, err, sizeof err);
    if (s == NULL)
        fail_msg("rstore_open: %s", err);
    return s;
}

/* The payload of entry i: "entry-<i>-<tag>", SECRET for tag "secret". */
static void payload(char *text, size_t len, uint64_t i, const char *tag)
{
    if (strcmp(tag, "secret") == 0)
        snprintf(text, len, "%s", SECRET);
    else
        snprintf(text, len, "entry-%llu-%s", (unsigned long long)i, tag);
}

/* Appends entries first..first+n-1 carrying payload(i, tags[i - first]), then syncs. */
static void append_n(struct rstore *s, uint64_t first, unsigned n, const char *const *tags)
{
    char err[256] = "";
    for (unsigned i = 0; i < n; i++) {
        char text[64];
        payload(text, sizeof text, first + i, tags[i]);
        struct raft_entry e = {.term = 1 + (first + i) / 4, .type = RAFT_COMMAND,
                               .buf = {text, strlen(text)}};
        if (rstore_append(s, first + i, &e, 1, err, sizeof err) != 0)
            fail_msg("append: %s", err);
    }
    assert_int_equal(rstore_sync(s, err, sizeof err), 0);
}

/* Loads and checks term, vote and entries 1..n with payload(i, tags[i - 1]). */
static void assert_log(struct rstore *s, size_t n, const char *const *tags)
{
    uint64_t term, vote, start;
    struct raft_entry *e;
    size_t got;
    char err[256] = "";
    if (rstore_load(s, &term, &vote, &start, &e, &got, err, sizeof err) != 0)
        fail_msg("load: %s", err);
    assert_int_equal(term, TERM);
    assert_int_equal(vote, VOTE);
    assert_int_equal(got, n);
    assert_int_equal(start, 1);
    for (size_t i = 0; i < n; i++) {
        char text[64];
        payload(text, sizeof text, i + 1, tags[i]);
        assert_int_equal(e[i].buf.len, strlen(text));
        assert_memory_equal(e[i].buf.base, text, strlen(text));
        assert_int_equal(e[i].term, 1 + (i + 1) / 4);
        assert_int_equal(e[i].type, RAFT_COMMAND);
    }
    if (n > 0)
        raft_free(e[0].batch);
    raft_free(e);
}

/* Meta (TERM, VOTE) and entries 1..n; returns in offs[i] the offset of entry i + 1 and in
 * offs[n] the end of the log. */
static void write_store(const char *dir, struct rseal *r, unsigned n, const char *const *tags,
                        off_t *offs)
{
    char err[256] = "", log[96];
    snprintf(log, sizeof log, "%s/log", dir);
    struct rstore *s = open_ok(dir, r);
    assert_int_equal(rstore_set_meta(s, TERM, VOTE, err, sizeof err), 0);
    struct stat st;
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(stat(log, &st), 0);
        offs[i] = st.st_size;
        append_n(s, i + 1, 1, tags + i);
    }
    assert_int_equal(stat(log, &st), 0);
    offs[n] = st.st_size;
    rstore_close(s);
}

/* Whether the file at path holds the n bytes of needle anywhere. */
static bool file_has(const char *path, const void *needle, size_t n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint8_t *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t len = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    bool found = false;
    for (size_t i = 0; !found && i + n <= len; i++)
        found = memcmp(buf + i, needle, n) == 0;
    free(buf);
    return found;
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static const char *const TAGS[] = {"a", "a", "secret", "a", "a"};

/* Through a real rstore: meta and entries come back after a reopen with another rseal of the
 * same key (a restart: new nonce prefix), a big entry too, and appends go on after it. */
static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    off_t offs[6];
    write_store(f->dir, f->ra, 5, TAGS, offs);
    assert_int_equal(offs[1] - offs[0], 8 + 22 + strlen("entry-1-a") + RSEAL_OVERHEAD);

    struct rseal *again = new_rseal(&f->key_a);
    struct rstore *s = open_ok(f->dir, again);
    assert_string_equal(rstore_note(s), "");
    assert_int_equal(rstore_last_index(s), 5);
    assert_log(s, 5, TAGS);
    uint8_t *big = malloc(BIG_LEN);
    assert_non_null(big);
    for (size_t i = 0; i < BIG_LEN; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    struct raft_entry e = {.term = 9, .type = RAFT_COMMAND, .buf = {big, BIG_LEN}};
    char err[256] = "";
    assert_int_equal(rstore_append(s, 6, &e, 1, err, sizeof err), 0);
    assert_int_equal(rstore_sync(s, err, sizeof err), 0);
    rstore_close(s);

    s = open_ok(f->dir, f->ra);
    uint64_t term, vote, start;
    struct raft_entry *got;
    size_t n;
    assert_int_equal(rstore_load(s, &term, &vote, &start, &got, &n, err, sizeof err), 0);
    assert_int_equal(n, 6);
    assert_int_equal(got[5].term, 9);
    assert_int_equal(got[5].buf.len, BIG_LEN);
    assert_memory_equal(got[5].buf.base, big, BIG_LEN);
    raft_free(got[0].batch);
    raft_free(got);
    rstore_close(s);
    rseal_free(again);
    free(big);
}

/* The sealed files hold neither SECRET nor the meta's plaintext; the same store written
 * without a sealer holds both (the check can fail). */
static void test_no_plaintext(void **state)
{
    struct fixture *f = *state;
    char plain_dir[96], plain_log[128], plain_meta[128];
    snprintf(plain_dir, sizeof plain_dir, "%s/plain", f->dir);
    snprintf(plain_log, sizeof plain_log, "%s/log", plain_dir);
    snprintf(plain_meta, sizeof plain_meta, "%s/meta", plain_dir);
    uint8_t meta_plain[16];
    bytes_put_be64(meta_plain, TERM), bytes_put_be64(meta_plain + 8, VOTE);
    off_t offs[6];

    write_store(plain_dir, NULL, 5, TAGS, offs);
    assert_true(file_has(plain_log, SECRET, strlen(SECRET)));
    assert_true(file_has(plain_meta, meta_plain, sizeof meta_plain));

    write_store(f->dir, f->ra, 5, TAGS, offs);
    assert_false(file_has(f->log, SECRET, strlen(SECRET)));
    assert_false(file_has(f->log, "entry-", 6));
    assert_false(file_has(f->meta, meta_plain, sizeof meta_plain));
    assert_false(file_has(f->meta, meta_plain, 8)); /* not even the term */
}

/* Another token's key fails rstore_open at the meta record, naming it, and the directory is
 * unchanged; the right key still opens everything. */
static void test_wrong_key(void **state)
{
    struct fixture *f = *state;
    off_t offs[6];
    write_store(f->dir, f->ra, 5, TAGS, offs);
    uint64_t before = kvt_hash_dir(f->dir);
    struct rseal *rb = new_rseal(&f->key_b);
    struct rstore_sealer sb = rseal_sealer(rb);
    char err[256] = "", want[384];
    assert_null(rstore_open(f->dir, &sb, err, sizeof err));
    snprintf(want, sizeof want,
             "%s: record fails authentication (wrong key or corrupted) at offset 0", f->meta);
    assert_string_equal(err, want);
    assert_int_equal(kvt_hash_dir(f->dir), before);
    rseal_free(rb);

    struct rstore *s = open_ok(f->dir, f->ra);
    assert_string_equal(rstore_note(s), "");
    assert_log(s, 5, TAGS);
    rstore_close(s);
    assert_int_equal(kvt_hash_dir(f->dir), before);
}

/* A flipped byte in the nonce, ciphertext or tag of a record in the middle of the log is
 * corruption: open fails naming the log and the record's offset, and changes nothing. */
static void test_flipped_middle(void **state)
{
    struct fixture *f = *state;
    off_t offs[6];
    write_store(f->dir, f->ra, 5, TAGS, offs);
    off_t at[] = {offs[2] + 8 + 3, offs[2] + 8 + RSEAL_NONCE_LEN + 5, offs[3] - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        rstore_close(open_ok(f->dir, f->ra)); /* the good case, same files */
        flip_byte(f->log, at[i]);
        uint64_t before = kvt_hash_dir(f->dir);
        char err[256] = "", want[384];
        struct rstore_sealer sa = rseal_sealer(f->ra);
        assert_null(rstore_open(f->dir, &sa, err, sizeof err));
        snprintf(want, sizeof want,
                 "%s: record fails authentication (wrong key or corrupted) at offset %lld",
                 f->log, (long long)offs[2]);
        assert_string_equal(err, want);
        assert_int_equal(kvt_hash_dir(f->dir), before);
        flip_byte(f->log, at[i]);
    }
    struct rstore *s = open_ok(f->dir, f->ra);
    assert_log(s, 5, TAGS);
    rstore_close(s);
}

/* A flipped byte in the last record is a torn tail (rstore's rule: a record that fails to open
 * and ends the file): cut and reported with its offset; the entries before it come back. */
static void test_flipped_last(void **state)
{
    struct fixture *f = *state;
    off_t offs[6];
    write_store(f->dir, f->ra, 5, TAGS, offs);
    flip_byte(f->log, offs[4] + 8 + RSEAL_NONCE_LEN + 2);
    struct rstore *s = open_ok(f->dir, f->ra);
    char want[160];
    snprintf(want, sizeof want,
             "log: torn tail cut at offset %lld (record fails authentication (wrong key or "
             "corrupted))",
             (long long)offs[4]);
    assert_string_equal(rstore_note(s), want);
    assert_int_equal(file_size(f->log), offs[4]);
    assert_int_equal(rstore_last_index(s), 4);
    assert_log(s, 4, TAGS);
    /* entry 5 is written again at the same offset with a fresh nonce */
    append_n(s, 5, 1, TAGS + 4);
    rstore_close(s);
    s = open_ok(f->dir, f->ra);
    assert_string_equal(rstore_note(s), "");
    assert_log(s, 5, TAGS);
    rstore_close(s);
}

/* Record 2 copied over record 3 (same length, a valid record of this key) fails to open at
 * its new offset: the offset is bound into the tag. */
static void test_moved_record(void **state)
{
    struct fixture *f = *state;
    static const char *const same[] = {"a", "a", "a", "a", "a"};
    off_t offs[6];
    write_store(f->dir, f->ra, 5, same, offs);
    size_t len = (size_t)(offs[2] - offs[1]);
    assert_int_equal(offs[3] - offs[2], len);
    uint8_t *rec = malloc(len);
    assert_non_null(rec);
    int fd = open(f->log, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, rec, len, offs[1]), (ssize_t)len);
    assert_int_equal(pwrite(fd, rec, len, offs[2]), (ssize_t)len);
    close(fd);
    free(rec);
    char err[256] = "", want[384];
    struct rstore_sealer sa = rseal_sealer(f->ra);
    assert_null(rstore_open(f->dir, &sa, err, sizeof err));
    snprintf(want, sizeof want,
             "%s: record fails authentication (wrong key or corrupted) at offset %lld", f->log,
             (long long)offs[2]);
    assert_string_equal(err, want);
}

/* Seals "hello raft" for (file, off) into out (len + RSEAL_OVERHEAD bytes). */
static void seal_ok(struct rseal *r, const char *file, uint64_t off, uint8_t *out)
{
    struct rstore_sealer s = rseal_sealer(r);
    assert_int_equal(s.seal(s.arg, file, off, "hello raft", 10, out), 0);
}

/* Opens rec for (file, off): the return code; on failure out must be all zeros. */
static int open_rec(struct rseal *r, const char *file, uint64_t off, const uint8_t *rec,
                    size_t len, uint8_t *out)
{
    struct rstore_sealer s = rseal_sealer(r);
    memset(out, 0xaa, len - RSEAL_OVERHEAD);
    int rv = s.open(s.arg, file, off, rec, len, out);
    for (size_t i = 0; rv != 0 && i < len - RSEAL_OVERHEAD; i++)
        assert_int_equal(out[i], 0);
    return rv;
}

/* Directly: the record opens only for its own file, offset and key, whole and unmodified. */
static void test_open_context(void **state)
{
    struct fixture *f = *state;
    uint8_t rec[10 + RSEAL_OVERHEAD], out[10 + RSEAL_OVERHEAD];
    seal_ok(f->ra, "log", 4096, rec);
    assert_int_equal(open_rec(f->ra, "log", 4096, rec, sizeof rec, out), 0);
    assert_memory_equal(out, "hello raft", 10);
    assert_int_equal(open_rec(f->ra, "log", 4097, rec, sizeof rec, out), -1);
    assert_int_equal(open_rec(f->ra, "log", 4096ull << 32, rec, sizeof rec, out), -1);
    assert_int_equal(open_rec(f->ra, "meta", 4096, rec, sizeof rec, out), -1);
    assert_int_equal(open_rec(f->ra, "lo", 4096, rec, sizeof rec, out), -1);
    struct rseal *rb = new_rseal(&f->key_b);
    assert_int_equal(open_rec(rb, "log", 4096, rec, sizeof rec, out), -1);
    rseal_free(rb);
    for (size_t i = 0; i < sizeof rec; i++) {
        rec[i] ^= 1;
        assert_int_equal(open_rec(f->ra, "log", 4096, rec, sizeof rec, out), -1);
        rec[i] ^= 1;
    }
    assert_int_equal(open_rec(f->ra, "log", 4096, rec, sizeof rec - 1, out), -1);
    struct rstore_sealer s = rseal_sealer(f->ra);
    assert_int_equal(s.open(s.arg, "log", 0, rec, RSEAL_OVERHEAD - 1, out), -1);
    /* the good case again, after all that */
    assert_int_equal(open_rec(f->ra, "log", 4096, rec, sizeof rec, out), 0);
    assert_memory_equal(out, "hello raft", 10);
    /* a file name too long for the AAD is refused, not cut (out zeroed on open) */
    char name[RSEAL_MAX_FILE + 2];
    memset(name, 'x', sizeof name - 1), name[sizeof name - 1] = '\0';
    assert_int_equal(s.seal(s.arg, name, 0, "hello raft", 10, rec), -1);
    assert_int_equal(open_rec(f->ra, name, 0, rec, sizeof rec, out), -1);
    name[RSEAL_MAX_FILE] = '\0';
    seal_ok(f->ra, name, 0, rec);
    assert_int_equal(open_rec(f->ra, name, 0, rec, sizeof rec, out), 0);
}

/* Two seals of the same plaintext at the same place differ (nonce and ciphertext), and both
 * open; a second rseal of the same key draws another prefix. */
static void test_nonces_differ(void **state)
{
    struct fixture *f = *state;
    uint8_t a[10 + RSEAL_OVERHEAD], b[sizeof a], c[sizeof a], out[sizeof a];
    seal_ok(f->ra, "log", 64, a);
    seal_ok(f->ra, "log", 64, b);
    assert_memory_not_equal(a, b, RSEAL_NONCE_LEN);
    assert_memory_not_equal(a + RSEAL_NONCE_LEN, b + RSEAL_NONCE_LEN, 10);
    assert_memory_equal(a, b, 8); /* same prefix, next counter */
    assert_int_equal(bytes_get_be32(b + 8), bytes_get_be32(a + 8) + 1);
    assert_int_equal(open_rec(f->ra, "log", 64, a, sizeof a, out), 0);
    assert_memory_equal(out, "hello raft", 10);
    assert_int_equal(open_rec(f->ra, "log", 64, b, sizeof b, out), 0);
    assert_memory_equal(out, "hello raft", 10);
    struct rseal *r2 = new_rseal(&f->key_a);
    seal_ok(r2, "log", 64, c);
    assert_memory_not_equal(a, c, 8);
    assert_int_equal(open_rec(f->ra, "log", 64, c, sizeof c, out), 0);
    rseal_free(r2);
}

/* When the counter wraps, the prefix is drawn again: no nonce repeats. The counter never
 * moves back. */
static void test_counter_wrap(void **state)
{
    struct fixture *f = *state;
    uint8_t a[10 + RSEAL_OVERHEAD], b[sizeof a], c[sizeof a], out[sizeof a];
    rseal_advance_counter(f->ra, UINT32_MAX - 1);
    seal_ok(f->ra, "log", 0, a);
    assert_int_equal(bytes_get_be32(a + 8), UINT32_MAX - 1);
    seal_ok(f->ra, "log", 0, b);
    assert_int_equal(bytes_get_be32(b + 8), 0);
    assert_memory_not_equal(a, b, 8);
    rseal_advance_counter(f->ra, 0); /* backwards: ignored */
    seal_ok(f->ra, "log", 0, c);
    assert_int_equal(bytes_get_be32(c + 8), 1);
    assert_memory_equal(b, c, 8);
    assert_int_equal(open_rec(f->ra, "log", 0, a, sizeof a, out), 0);
    assert_int_equal(open_rec(f->ra, "log", 0, b, sizeof b, out), 0);
    assert_int_equal(open_rec(f->ra, "log", 0, c, sizeof c, out), 0);
    assert_memory_equal(out, "hello raft", 10);
}

static void test_sealer_shape(void **state)
{
    struct fixture *f = *state;
    struct rstore_sealer s = rseal_sealer(f->ra);
    assert_int_equal(s.overhead, 28);
    assert_ptr_equal(s.arg, f->ra);
    assert_non_null(s.seal);
    assert_non_null(s.open);
    rseal_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_plaintext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_context, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonces_differ, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealer_shape, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
