/* test_tikv_import.c — bulk import files: `key<TAB>value` text parsing (the line named on
 * every refusal), writing (atomic, 0600, plaintext or encrypted), the store's strict read
 * (plaintext, encrypted, wrong key, plaintext into an encrypted store and the reverse, garbage,
 * truncated, flipped, another file's id: refused with nothing returned), and the proof that the
 * records are the engine's own kv.log payloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "kv_engine.h"
#include "kv_log.h"
#include "kv_meta.h"
#include "test_tikv_kv_util.h"
#include "tikv_import.h"

static char dir[64];
static char bulk[128];
static struct cipher_keys key_a, key_b;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tisim-import-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(bulk, sizeof bulk, "%s/data.bulk", dir);
    kvt_keys(KVT_KEY_A, &key_a);
    kvt_keys(KVT_KEY_B, &key_b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tu_rm_rf(dir);
}

static void parse_ok(const char *text, struct tikv_import_batch *b)
{
    char err[256] = "";
    int rc = tikv_import_parse_text(text, strlen(text), b, err, sizeof err);
    if (rc != 0)
        print_error("parse: %s\n", err);
    assert_int_equal(rc, 0);
}

static void expect_op(const struct tikv_import_batch *b, size_t i, const char *k, const char *v)
{
    assert_true(i < b->n);
    assert_int_equal(b->ops[i].type, KV_OP_PUT);
    assert_int_equal(b->ops[i].klen, strlen(k));
    assert_memory_equal(b->ops[i].key, k, strlen(k));
    assert_int_equal(b->ops[i].vlen, strlen(v));
    assert_memory_equal(b->ops[i].val, v, strlen(v));
}

/* ---- text -------------------------------------------------------------------------------- */

static void test_parse_text(void **state)
{
    (void)state;
    struct tikv_import_batch b;
    /* the value keeps its tabs; an empty value is a value; the last line may lack '\n' */
    parse_ok("user:1\tAlice\nuser:2\ta\tb\t\nuser:3\t\nk 4\t v ", &b);
    assert_int_equal(b.n, 4);
    expect_op(&b, 0, "user:1", "Alice");
    expect_op(&b, 1, "user:2", "a\tb\t");
    expect_op(&b, 2, "user:3", "");
    expect_op(&b, 3, "k 4", " v ");
    tikv_import_batch_free(&b);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"a\t1\n\tnokey\n", "line 2: empty key (TiKV has no empty key)"},
        {"a\t1\nb\t2\nno tab here\n", "line 3: no tab between key and value (want KEY<TAB>VALUE)"},
        {"a\t1\n\nb\t2\n", "line 2: no tab"},
        {"a\t1\nb\t2\nc\t3\nb\t4\n", "line 4: key 'b' repeats line 2"},
        {"", "no KEY<TAB>VALUE line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        assert_int_equal(tikv_import_parse_text(bad[i].text, strlen(bad[i].text), &b, err,
                                                sizeof err), -1);
        assert_contains(err, bad[i].want);
        assert_null(b.ops);
        assert_int_equal(b.n, 0);
    }
}

static void test_parse_limits(void **state)
{
    (void)state;
    size_t klen = KV_ENGINE_MAX_KEY + 1;
    char *text = malloc(klen + 8);
    assert_non_null(text);
    memset(text, 'k', klen);
    memcpy(text + klen, "\tv\n", 4);
    struct tikv_import_batch b;
    char err[256];
    assert_int_equal(tikv_import_parse_text(text, strlen(text), &b, err, sizeof err), -1);
    assert_contains(err, "line 1: a key of 65537 bytes");
    text[1] = '\t'; /* a key of one byte, a long value: fine */
    assert_int_equal(tikv_import_parse_text(text, strlen(text), &b, err, sizeof err), 0);
    tikv_import_batch_free(&b);
    free(text);
}

/* ---- writing and reading ----------------------------------------------------------------- */

/* 300 pairs with 1 KB values: several records. */
static char *many_pairs_text(void)
{
    size_t cap = 300 * 1100;
    char *t = malloc(cap), *p = t;
    assert_non_null(t);
    for (int i = 0; i < 300; i++) {
        p += sprintf(p, "bulk:%03d\t", i);
        memset(p, 'a' + i % 26, 1000);
        p += 1000;
        *p++ = '\n';
    }
    *p = '\0';
    return t;
}

static void write_ok(const char *text, const struct cipher_keys *keys)
{
    struct tikv_import_batch b;
    char err[512] = "";
    parse_ok(text, &b);
    int rc = tikv_import_write(bulk, &b, keys, err, sizeof err);
    if (rc != 0)
        print_error("write: %s\n", err);
    assert_int_equal(rc, 0);
    tikv_import_batch_free(&b);
}

static void read_fails(const struct cipher_keys *keys, const char *want)
{
    struct tikv_import_batch b;
    char err[512] = "";
    assert_int_equal(tikv_import_read(bulk, keys, &b, err, sizeof err), -1);
    assert_contains(err, want);
    assert_null(strchr(err, '\n'));
    assert_int_equal(b.n, 0); /* nothing to apply */
    assert_null(b.ops);
}

static size_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (size_t)st.st_size;
}

static bool file_contains(const char *path, const char *needle)
{
    size_t n = file_size(path), m = strlen(needle);
    char *buf = malloc(n + 1);
    FILE *f = fopen(path, "rb");
    assert_non_null(buf);
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, n, f), n);
    fclose(f);
    bool found = false;
    for (size_t i = 0; i + m <= n && !found; i++)
        found = memcmp(buf + i, needle, m) == 0;
    free(buf);
    return found;
}

static void test_plaintext_round_trip(void **state)
{
    (void)state;
    char *text = many_pairs_text();
    write_ok(text, NULL);
    struct stat st;
    assert_int_equal(stat(bulk, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(file_contains(bulk, "bulk:123")); /* plaintext: the keys are there */

    struct tikv_import_batch b;
    char err[512] = "";
    assert_int_equal(tikv_import_read(bulk, NULL, &b, err, sizeof err), 0);
    assert_int_equal(b.n, 300);
    assert_true(b.nbufs > 1); /* several records */
    assert_int_equal(b.ops[123].klen, 8);
    assert_memory_equal(b.ops[123].key, "bulk:123", 8);
    assert_int_equal(b.ops[123].vlen, 1000);
    assert_int_equal(((const char *)b.ops[123].val)[999], 'a' + 123 % 26);
    tikv_import_batch_free(&b);
    free(text);
    /* only the output is left: no temp file */
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", bulk, (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);
}

static void test_encrypted_round_trip(void **state)
{
    (void)state;
    write_ok("secret:1\tdistinctive-BULK-value-91\nsecret:2\ttwo\n", &key_a);
    assert_false(file_contains(bulk, "distinctive-BULK-value-91"));
    assert_false(file_contains(bulk, "secret:1"));
    struct tikv_import_batch b;
    char err[512] = "";
    assert_int_equal(tikv_import_read(bulk, &key_a, &b, err, sizeof err), 0);
    assert_int_equal(b.n, 2);
    expect_op(&b, 0, "secret:1", "distinctive-BULK-value-91");
    expect_op(&b, 1, "secret:2", "two");
    tikv_import_batch_free(&b);
}

static void test_wrong_key(void **state)
{
    (void)state;
    write_ok("secret:1\tv1\n", &key_b);
    read_fails(&key_a, "the bulk file was encrypted with a different key than the cluster's "
                       "cipher-file (authentication failed at offset 32)");
    struct tikv_import_batch b; /* the good case in the same setup */
    char err[512];
    assert_int_equal(tikv_import_read(bulk, &key_b, &b, err, sizeof err), 0);
    tikv_import_batch_free(&b);
}

static void test_plaintext_into_encrypted_and_back(void **state)
{
    (void)state;
    write_ok("k\tv\n", NULL);
    read_fails(&key_a, "the cluster stores data encrypted: the bulk file must be encrypted with "
                       "the cluster's cipher-file (tikv-ctl bulk-write --cipher-file)");
    write_ok("k\tv\n", &key_a);
    read_fails(NULL, "the bulk file is encrypted, but this cluster stores data in plaintext: "
                     "write it without --cipher-file");
    struct tikv_import_batch b;
    char err[512];
    assert_int_equal(tikv_import_read(bulk, &key_a, &b, err, sizeof err), 0);
    tikv_import_batch_free(&b);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_garbage(void **state)
{
    (void)state;
    const char *text = "user:1\tAlice\nuser:2\tBob\nuser:3\tCarol\n"; /* not a bulk file */
    write_bytes(bulk, text, strlen(text));
    read_fails(NULL, "the bulk file is corrupt at offset 0: not a tisim data file (bad magic)");
    read_fails(&key_a, "the bulk file is corrupt at offset 0: not a tisim data file");
    write_bytes(bulk, "TSKVLOG", 8);
    read_fails(NULL, "the bulk file is corrupt at offset 0: header cut short (8 bytes)");
}

/* Cuts or flips a multi-record file: refused, though records before the damage were sound. */
static void test_truncated_and_flipped(void **state)
{
    (void)state;
    char *text = many_pairs_text();
    for (int enc = 0; enc < 2; enc++) {
        const struct cipher_keys *k = enc ? &key_a : NULL;
        write_ok(text, k);
        size_t size = file_size(bulk);
        assert_int_equal(truncate(bulk, (off_t)(size - 100)), 0);
        read_fails(k, "record runs past the end of the file");
        read_fails(k, "the bulk file is corrupt at offset ");

        write_ok(text, k);
        int fd = open(bulk, O_RDWR);
        assert_true(fd >= 0);
        uint8_t byte;
        off_t at = (off_t)(size - 500);
        assert_int_equal(pread(fd, &byte, 1, at), 1);
        byte ^= 0x20;
        assert_int_equal(pwrite(fd, &byte, 1, at), 1);
        close(fd);
        read_fails(k, enc ? "authentication failed" : "checksum mismatch");
    }
    free(text);
}

static void test_read_bytes(void **state)
{
    (void)state;
    write_ok("a\t1\nb\t2\nc\t3\n", &key_a);
    size_t n = file_size(bulk);
    uint8_t *buf = malloc(n);
    FILE *f = fopen(bulk, "rb");
    assert_non_null(buf);
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, n, f), n);
    fclose(f);
    struct tikv_import_batch b;
    char err[512] = "";
    assert_int_equal(tikv_import_read_bytes(buf, n, &key_a, &b, err, sizeof err), 0);
    assert_int_equal(b.n, 3);
    expect_op(&b, 2, "c", "3");
    tikv_import_batch_free(&b);
    assert_int_equal(tikv_import_read_bytes(buf, n, &key_b, &b, err, sizeof err), -1);
    assert_contains(err, "encrypted with a different key");
    assert_int_equal(tikv_import_read_bytes(buf, n, NULL, &b, err, sizeof err), -1);
    assert_contains(err, "the bulk file is encrypted, but this cluster stores data in plaintext");
    assert_int_equal(tikv_import_read_bytes(buf, n - 7, &key_a, &b, err, sizeof err), -1);
    assert_contains(err, "the bulk file is corrupt at offset 32");
    assert_null(strstr(err, "/proc/")); /* no staging path in the user's line */
    assert_int_equal(tikv_import_read_bytes("garbage", 7, NULL, &b, err, sizeof err), -1);
    assert_contains(err, "the bulk file is corrupt at offset 0");
    free(buf);
}

static void test_bulk_write(void **state)
{
    (void)state;
    char input[128], cipher[128], err[512] = "";
    snprintf(input, sizeof input, "%s/input.tsv", dir);
    snprintf(cipher, sizeof cipher, "%s/cipher-file", dir);
    write_bytes(cipher, KVT_KEY_A "\n", strlen(KVT_KEY_A) + 1);
    write_bytes(input, "x\t1\ny\t2\n", 8);
    size_t n = 0;
    assert_int_equal(tikv_import_bulk_write(input, bulk, cipher, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    struct tikv_import_batch b;
    assert_int_equal(tikv_import_read(bulk, &key_a, &b, err, sizeof err), 0); /* the same key */
    tikv_import_batch_free(&b);

    /* a refusal names the input and the line, and leaves the output as it was */
    size_t size = file_size(bulk);
    write_bytes(input, "x\t1\nno-tab\n", 11);
    assert_int_equal(tikv_import_bulk_write(input, bulk, cipher, &n, err, sizeof err), -1);
    assert_contains(err, "--input ");
    assert_contains(err, "input.tsv: line 2: no tab between key and value");
    assert_int_equal(file_size(bulk), size);
    write_bytes(input, "x\t1\n", 4);
    write_bytes(cipher, "abc\n", 4);
    assert_int_equal(tikv_import_bulk_write(input, bulk, cipher, &n, err, sizeof err), -1);
    assert_contains(err, "cipher-file ");
    assert_int_equal(file_size(bulk), size);
    char nodir[160];
    snprintf(nodir, sizeof nodir, "%s/no/such/out.bulk", dir);
    assert_int_equal(tikv_import_bulk_write(input, nodir, NULL, &n, err, sizeof err), -1);
    assert_contains(err, "no/such/out.bulk");
}

/* ---- the engine's own format ------------------------------------------------------------- */

static void on_written(int status, const char *err, void *arg)
{
    (void)err;
    *(int *)arg = status == 0 ? 1 : 2;
}

static int decode_fn(const uint8_t *payload, size_t len, uint64_t off, void *arg, char *err,
                     size_t errlen)
{
    (void)off;
    if (tikv_import_decode_payload(payload, len, arg) == 0)
        return 0;
    snprintf(err, errlen, "not decoded");
    return -1;
}

/* A payload encoded here, appended to a data dir's kv.log (file id 1), is replayed by the
 * engine; and a kv.log written by the engine decodes here. */
static void test_engine_payload_format(void **state)
{
    (void)state;
    char data[128], logpath[160], err[512] = "";
    snprintf(data, sizeof data, "%s/engine", dir);
    snprintf(logpath, sizeof logpath, "%s/kv.log", data);
    assert_int_equal(mkdir(data, 0700), 0);
    struct kv_meta m;
    assert_int_equal(kv_meta_create(data, &key_a, &m, err, sizeof err), 0);
    struct tikv_import_batch b;
    parse_ok("eng:1\tone\neng:2\ttwo\n", &b);
    uint8_t *p;
    size_t len;
    assert_int_equal(tikv_import_encode_payload(b.ops, b.n, &p, &len, err, sizeof err), 0);
    tikv_import_batch_free(&b);
    struct kv_log *log;
    assert_int_equal(kv_log_open(logpath, 1, key_a.data_key, NULL, NULL, &log, err, sizeof err),
                     0);
    assert_int_equal(kv_log_append(log, p, len, err, sizeof err), 0);
    assert_int_equal(kv_log_sync(log, err, sizeof err), 0);
    kv_log_close(log);
    free(p);

    struct event_base *base = event_base_new();
    struct kv_engine *e = NULL;
    assert_int_equal(kv_engine_open(base, data, &key_a, &e, err, sizeof err), 0);
    const void *v;
    size_t vlen;
    assert_int_equal(kv_engine_get(e, "eng:2", 5, &v, &vlen), 0);
    assert_int_equal(vlen, 3);
    assert_memory_equal(v, "two", 3);
    /* the other way: a write made by the engine decodes with this module */
    struct kv_op op = {KV_OP_PUT, "eng:3", 5, "three", 5};
    int done = 0;
    assert_int_equal(kv_engine_write(e, &op, 1, on_written, &done, err, sizeof err), 0);
    while (!done)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(done, 1);
    kv_engine_close(e);
    event_base_free(base);

    memset(&b, 0, sizeof b);
    assert_int_equal(kv_log_read(logpath, 1, key_a.data_key, decode_fn, &b, err, sizeof err), 0);
    assert_int_equal(b.n, 3);
    expect_op(&b, 0, "eng:1", "one");
    expect_op(&b, 2, "eng:3", "three");
    tikv_import_batch_free(&b);
}

/* A kv.log record is not a bulk record: another file id. */
static void test_other_file_id(void **state)
{
    (void)state;
    struct kv_log *log;
    char err[512] = "";
    uint8_t payload[] = {1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 'k', 'v'};
    assert_int_equal(kv_log_open(bulk, 1, NULL, NULL, NULL, &log, err, sizeof err), 0);
    assert_int_equal(kv_log_append(log, payload, sizeof payload, err, sizeof err), 0);
    kv_log_close(log);
    read_fails(NULL, "the bulk file is corrupt at offset 0: file id does not match");
    unlink(bulk);
    /* the same payload under the bulk file id is read */
    assert_int_equal(kv_log_open(bulk, TIKV_IMPORT_FILE_ID, NULL, NULL, NULL, &log, err,
                                 sizeof err), 0);
    assert_int_equal(kv_log_append(log, payload, sizeof payload, err, sizeof err), 0);
    kv_log_close(log);
    struct tikv_import_batch b;
    assert_int_equal(tikv_import_read(bulk, NULL, &b, err, sizeof err), 0);
    expect_op(&b, 0, "k", "v");
    tikv_import_batch_free(&b);
    /* a delete, an empty key: authentic records that are not bulk pairs */
    unlink(bulk);
    uint8_t del[] = {1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 'k'};
    assert_int_equal(kv_log_open(bulk, TIKV_IMPORT_FILE_ID, NULL, NULL, NULL, &log, err,
                                 sizeof err), 0);
    assert_int_equal(kv_log_append(log, payload, sizeof payload, err, sizeof err), 0);
    assert_int_equal(kv_log_append(log, del, sizeof del, err, sizeof err), 0);
    kv_log_close(log);
    read_fails(NULL, "is not a list of key-value pairs");
    unlink(bulk);
    /* header only: no keys */
    assert_int_equal(kv_log_open(bulk, TIKV_IMPORT_FILE_ID, NULL, NULL, NULL, &log, err,
                                 sizeof err), 0);
    kv_log_close(log);
    read_fails(NULL, "the bulk file holds no keys");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_text),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test_setup_teardown(test_plaintext_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encrypted_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plaintext_into_encrypted_and_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_flipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_payload_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_file_id, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
