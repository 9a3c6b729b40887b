/* Unit tests for kv_meta: a data dir's meta.json and TiDB's encryption limitations. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kv_meta.h"
#include "test_tikv_kv_util.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tisim-kvmeta-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return tu_rm_rf(dir);
}

static char *read_meta(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    return tu_read_file(path);
}

static void write_meta(const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_new_dir_plaintext(void **state)
{
    (void)state;
    struct kv_meta m;
    char err[256];
    assert_int_equal(kv_meta_load(dir, &m, err, sizeof err), 1);
    assert_int_equal(kv_meta_open(dir, NULL, &m, err, sizeof err), 0);
    assert_false(m.encrypted);
    char *text = read_meta();
    assert_non_null(text);
    assert_contains(text, "{\"format\": \"tisim-tikv-1\", \"encrypted\": false, \"created\": \"");
    assert_null(strstr(text, "key_check"));
    free(text);
    struct kv_meta again;
    assert_int_equal(kv_meta_load(dir, &again, err, sizeof err), 0);
    assert_false(again.encrypted);
    assert_string_equal(again.created, m.created);
    assert_int_equal(strlen(m.created), 20); /* 2026-11-28T10:00:00Z */
    /* No temp file is left behind. */
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/meta.json.tmp", dir);
    struct stat st;
    assert_int_not_equal(stat(tmp, &st), 0);
}

static void test_new_dir_encrypted(void **state)
{
    (void)state;
    struct cipher_keys k;
    kvt_keys(KVT_KEY_A, &k);
    struct kv_meta m;
    char err[256];
    assert_int_equal(kv_meta_open(dir, &k, &m, err, sizeof err), 0);
    char hex[CIPHERFILE_CHECK_HEX_LEN];
    cipherfile_check_hex(&k, hex);
    char *text = read_meta();
    assert_contains(text, "\"encrypted\": true, \"cipher\": \"aes-256-gcm\", \"kdf\": \"hkdf-sha256\"");
    assert_contains(text, hex);
    /* Neither the token nor the key is stored. */
    assert_null(strstr(text, "00112233"));
    char keyhex[2 * CIPHERFILE_KEY_LEN + 1];
    for (int i = 0; i < CIPHERFILE_KEY_LEN; i++)
        snprintf(keyhex + 2 * i, 3, "%02x", k.data_key[i]);
    assert_null(strstr(text, keyhex));
    free(text);
    struct kv_meta again;
    assert_int_equal(kv_meta_open(dir, &k, &again, err, sizeof err), 0); /* same key: admitted */
    assert_true(again.encrypted);
    assert_string_equal(again.key_check, hex);
    char desc[256];
    kv_meta_describe(&again, desc, sizeof desc);
    assert_contains(desc, "encrypted (cipher aes-256-gcm, kdf hkdf-sha256, key check ");
}

/* Opens dir with keys, expecting a refusal containing want, and the dir's bytes unchanged. */
static void expect_refused(const struct cipher_keys *keys, const char *want)
{
    uint64_t before = kvt_hash_dir(dir);
    struct kv_meta m;
    char err[512] = "";
    assert_int_equal(kv_meta_open(dir, keys, &m, err, sizeof err), -1);
    assert_contains(err, want);
    assert_contains(err, dir);
    assert_true(before == kvt_hash_dir(dir));
}

static void test_turn_on_refused(void **state)
{
    (void)state;
    struct kv_meta m;
    char err[256];
    assert_int_equal(kv_meta_open(dir, NULL, &m, err, sizeof err), 0);
    struct cipher_keys k;
    kvt_keys(KVT_KEY_A, &k);
    expect_refused(&k, "encryption cannot be turned on for an existing plaintext data dir");
    assert_int_equal(kv_meta_open(dir, NULL, &m, err, sizeof err), 0); /* the good case */
}

static void test_turn_off_refused(void **state)
{
    (void)state;
    struct cipher_keys k;
    kvt_keys(KVT_KEY_A, &k);
    struct kv_meta m;
    char err[256];
    assert_int_equal(kv_meta_open(dir, &k, &m, err, sizeof err), 0);
    expect_refused(NULL, "encryption cannot be turned off for the encrypted data dir");
    assert_int_equal(kv_meta_open(dir, &k, &m, err, sizeof err), 0);
}

static void test_wrong_key_refused(void **state)
{
    (void)state;
    struct cipher_keys a, b;
    kvt_keys(KVT_KEY_A, &a);
    kvt_keys(KVT_KEY_B, &b);
    struct kv_meta m;
    char err[256];
    assert_int_equal(kv_meta_open(dir, &a, &m, err, sizeof err), 0);
    expect_refused(&b, "the cipher-file does not match the key this data dir was encrypted with "
                       "(key check mismatch)");
    assert_int_equal(kv_meta_open(dir, &a, &m, err, sizeof err), 0);
}

static void test_bad_meta(void **state)
{
    (void)state;
    struct kv_meta m;
    char err[256];
    write_meta("not json");
    assert_int_equal(kv_meta_load(dir, &m, err, sizeof err), -1);
    assert_contains(err, "/meta.json: not a JSON object");
    write_meta("{\"format\":\"tisim-tikv-9\",\"encrypted\":false,\"created\":\"x\"}");
    assert_int_equal(kv_meta_load(dir, &m, err, sizeof err), -1);
    assert_contains(err, "field \"format\" is \"tisim-tikv-9\"");
    write_meta("{\"format\":\"tisim-tikv-1\",\"encrypted\":\"yes\",\"created\":\"x\"}");
    assert_int_equal(kv_meta_load(dir, &m, err, sizeof err), -1);
    assert_contains(err, "field \"encrypted\" is missing or not a boolean");
    write_meta("{\"format\":\"tisim-tikv-1\",\"encrypted\":true,\"cipher\":\"aes-256-gcm\","
               "\"kdf\":\"hkdf-sha256\",\"created\":\"x\"}");
    assert_int_equal(kv_meta_load(dir, &m, err, sizeof err), -1);
    assert_contains(err, "field \"key_check\" is missing");
    write_meta("{\"format\":\"tisim-tikv-1\",\"encrypted\":true,\"cipher\":\"aes-256-gcm\","
               "\"kdf\":\"hkdf-sha256\",\"key_check\":\"0011\",\"created\":\"x\"}");
    assert_int_equal(kv_meta_load(dir, &m, err, sizeof err), -1);
    assert_contains(err, "field \"key_check\" is not 32 lowercase hex digits");
    write_meta("{\"format\":\"tisim-tikv-1\",\"encrypted\":true,\"cipher\":\"sm4-ctr\","
               "\"kdf\":\"hkdf-sha256\",\"key_check\":\"0011\",\"created\":\"x\"}");
    assert_int_equal(kv_meta_load(dir, &m, err, sizeof err), -1);
    assert_contains(err, "field \"cipher\" is \"sm4-ctr\"");
    /* A bad meta.json is never replaced by kv_meta_open. */
    uint64_t before = kvt_hash_dir(dir);
    assert_int_equal(kv_meta_open(dir, NULL, &m, err, sizeof err), -1);
    assert_true(before == kvt_hash_dir(dir));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_dir_plaintext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_dir_encrypted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_turn_on_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_turn_off_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_meta, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
