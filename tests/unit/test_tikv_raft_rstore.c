/* Unit tests for rstore, the Raft log store: what is written and synced comes back after a
 * reopen; truncate then append; a torn tail is cut and reported; a flipped byte elsewhere is
 * corruption naming the file and offset; a wrong key is refused before the log is touched. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_then_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plan_then_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealer_and_wrong_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
