/* Unit tests for kv_log on its own: the strict read of a file from elsewhere (bulk import). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kv_log.h"
#include "test_tikv_kv_util.h"

static char dir[64], path[128];
static struct cipher_keys key_a, key_b;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tisim-kvlog-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/import.sst", dir);
    kvt_keys(KVT_KEY_A, &key_a);
    kvt_keys(KVT_KEY_B, &key_b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tu_rm_rf(dir);
}

static int count_fn(const uint8_t *p, size_t len, uint64_t off, void *arg, char *err,
                    size_t errlen)
{
    (void)p;
    (void)len;
    (void)off;
    (void)err;
    (void)errlen;
    (*(int *)arg)++;
    return 0;
}

static void make_file(const struct cipher_keys *k)
{
    struct kv_log *log;
    char err[256];
    assert_int_equal(kv_log_open(path, 7, k ? k->data_key : NULL, NULL, NULL, &log, err,
                                 sizeof err), 0);
    assert_int_equal(kv_log_append(log, "first record", 12, err, sizeof err), 0);
    assert_int_equal(kv_log_append(log, "second record", 13, err, sizeof err), 0);
    assert_int_equal(kv_log_sync(log, err, sizeof err), 0);
    kv_log_close(log);
}

static void expect_read_fails(const struct cipher_keys *k, uint64_t id, const char *want,
                              int records_before)
{
    char err[256] = "";
    int n = 0;
    uint64_t before = kvt_hash_dir(dir);
    assert_int_equal(kv_log_read(path, id, k ? k->data_key : NULL, count_fn, &n, err, sizeof err),
                     -1);
    assert_contains(err, want);
    assert_int_equal(n, records_before);
    assert_true(before == kvt_hash_dir(dir));
}

static void test_strict_read(void **state)
{
    (void)state;
    make_file(&key_a);
    char err[256];
    int n = 0;
    assert_int_equal(kv_log_read(path, 7, key_a.data_key, count_fn, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    expect_read_fails(&key_b, 7, "is corrupt at offset 32: authentication failed", 0);
    expect_read_fails(NULL, 7, "is corrupt at offset 0: the file is encrypted, but plaintext "
                               "was expected", 0);
    expect_read_fails(&key_a, 8, "file id does not match", 0);
    /* A cut file is an error here, not a tail to cut. */
    off_t full = 0;
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    full = ftell(f);
    fclose(f);
    assert_int_equal(truncate(path, full - 3), 0);
    expect_read_fails(&key_a, 7, "record runs past the end of the file", 1);
}

static void test_plain_file_with_key(void **state)
{
    (void)state;
    make_file(NULL);
    char err[256];
    int n = 0;
    assert_int_equal(kv_log_read(path, 7, NULL, count_fn, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    expect_read_fails(&key_a, 7, "the file is plaintext, but encrypted data was expected", 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_strict_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_file_with_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
