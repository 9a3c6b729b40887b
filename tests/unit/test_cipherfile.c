/* Unit tests for cipherfile: the cipher-file rules one by one, HKDF determinism, random-hex. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cipherfile.h"
#include "testutil.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tisim-cipherfile-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return tu_rm_rf(tmpdir);
}

/* Writes content (len bytes) to tmpdir/name; returns the path (static buffer). */
static const char *write_file(const char *name, const char *content, size_t len)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* n hex digits (a repeating pattern). Caller frees. */
static char *hex_digits(size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = "0123456789abcdefABCDEF"[i % 22];
    s[n] = '\0';
    return s;
}

/* Loads content as a cipher-file; returns the rc, err gets the message. */
static int load(const char *content, size_t len, char *err, size_t errlen)
{
    const char *path = write_file("cipher", content, len);
    struct cipher_keys k;
    int rc = cipherfile_load(path, &k, err, errlen);
    cipherfile_keys_clear(&k);
    return rc;
}

static void expect_error(const char *content, const char *want)
{
    char err[256] = "";
    assert_int_equal(load(content, strlen(content), err, sizeof err), -1);
    assert_contains(err, want);
    char prefix[160];
    snprintf(prefix, sizeof prefix, "cipher-file %s/cipher: ", tmpdir);
    assert_contains(err, prefix);
}

static void expect_ok(const char *content)
{
    char err[256] = "";
    int rc = load(content, strlen(content), err, sizeof err);
    if (rc != 0)
        print_error("unexpected error: %s\n", err);
    assert_int_equal(rc, 0);
}

static void test_valid_files(void **state)
{
    (void)state;
    char *h = hex_digits(2048);
    expect_ok(h); /* 1024 bytes: the maximum */
    char buf[2100];
    snprintf(buf, sizeof buf, "%s\n", h);
    expect_ok(buf);
    snprintf(buf, sizeof buf, "%s\r\n", h);
    expect_ok(buf);
    expect_ok("00");             /* 1 byte is 2^0 */
    expect_ok("0123456789abcDEF"); /* 8 bytes, mixed case */
    free(h);
}

static void test_empty(void **state)
{
    (void)state;
    expect_error("", "is empty");
    expect_error("\n", "is empty");
    expect_error("\r\n", "is empty");
}

static void test_not_hex(void **state)
{
    (void)state;
    expect_error("0123456789abcdef0g", "contains 'g' at offset 17, not a hex digit");
    expect_error("0011 2233", "contains byte 0x20 at offset 4, not a hex digit");
    expect_error("0011\n\n", "contains byte 0x0a at offset 4");   /* only one newline */
    expect_error("0011\r", "contains byte 0x0d at offset 4");     /* a lone CR */
    expect_error("0x0011", "contains 'x' at offset 1");
}

static void test_odd_digits(void **state)
{
    (void)state;
    char *h = hex_digits(255);
    expect_error(h, "odd number of hex digits (255)");
    expect_error("abc\n", "odd number of hex digits (3)");
    free(h);
}

static void test_not_power_of_two(void **state)
{
    (void)state;
    char *h = hex_digits(200);
    expect_error(h, "decoded length 100 bytes is not a power of two");
    free(h);
    expect_error("001122", "decoded length 3 bytes is not a power of two");
}

static void test_too_long(void **state)
{
    (void)state;
    char *h = hex_digits(4096); /* 2048 bytes: a power of two, but over the maximum */
    expect_error(h, "too long for a key of at most 1024 bytes");
    free(h);
    /* The decoded-length rule itself, without the file-size guard. */
    char err[128];
    uint8_t tok[4 * CIPHERFILE_MAX_TOKEN]; /* room, so a missing check fails cleanly */
    size_t n;
    h = hex_digits(4096);
    assert_int_equal(cipherfile_parse(h, 4096, tok, &n, err, sizeof err), -1);
    assert_string_equal(err, "decoded length 2048 bytes is more than the maximum 1024");
    free(h);
}

static void test_missing_file(void **state)
{
    (void)state;
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/nope", tmpdir);
    struct cipher_keys k;
    assert_int_equal(cipherfile_load(path, &k, err, sizeof err), -1);
    assert_contains(err, "cannot open: No such file or directory");
    assert_contains(err, path);
}

static void test_error_hides_token(void **state)
{
    (void)state;
    char err[256];
    const char *secret = "deadbeefcafebabe1";
    assert_int_equal(load(secret, strlen(secret), err, sizeof err), -1);
    assert_null(strstr(err, "deadbeef"));
}

static void test_derive_deterministic(void **state)
{
    (void)state;
    struct cipher_keys a, b, c;
    char err[128];
    assert_int_equal(load("00112233445566778899aabbccddeeff\n", 33, err, sizeof err), 0);
    const char *p = write_file("k1", "00112233445566778899aabbccddeeff\n", 33);
    assert_int_equal(cipherfile_load(p, &a, err, sizeof err), 0);
    p = write_file("k2", "00112233445566778899AABBCCDDEEFF", 32); /* same bytes */
    assert_int_equal(cipherfile_load(p, &b, err, sizeof err), 0);
    p = write_file("k3", "00112233445566778899aabbccddeefe", 32); /* one bit differs */
    assert_int_equal(cipherfile_load(p, &c, err, sizeof err), 0);
    assert_memory_equal(a.data_key, b.data_key, CIPHERFILE_KEY_LEN);
    assert_memory_equal(a.key_check, b.key_check, CIPHERFILE_CHECK_LEN);
    assert_memory_not_equal(a.key_check, c.key_check, CIPHERFILE_CHECK_LEN);
    assert_memory_not_equal(a.data_key, c.data_key, CIPHERFILE_KEY_LEN);
    /* The check value is not a prefix of the key. */
    assert_memory_not_equal(a.data_key, a.key_check, CIPHERFILE_CHECK_LEN);
    char hex[CIPHERFILE_CHECK_HEX_LEN];
    cipherfile_check_hex(&a, hex);
    assert_int_equal(strlen(hex), 32);
    assert_int_equal(strspn(hex, "0123456789abcdef"), 32);
    cipherfile_keys_clear(&a);
    static const uint8_t zero[sizeof a] = {0};
    assert_memory_equal(&a, zero, sizeof a);
}

static void test_random_hex(void **state)
{
    (void)state;
    char a[513], b[513], err[128];
    assert_int_equal(cipherfile_random_hex(256, a, sizeof a, err, sizeof err), 0);
    assert_int_equal(cipherfile_random_hex(256, b, sizeof b, err, sizeof err), 0);
    assert_int_equal(strlen(a), 512);
    assert_int_equal(strspn(a, "0123456789abcdef"), 512);
    assert_string_not_equal(a, b);
    /* What it prints is a valid cipher-file. */
    uint8_t tok[CIPHERFILE_MAX_TOKEN];
    size_t n;
    assert_int_equal(cipherfile_parse(a, strlen(a), tok, &n, err, sizeof err), 0);
    assert_int_equal(n, 256);
    /* 2000 bytes: more than one DRBG request. */
    char *big = malloc(4001);
    assert_non_null(big);
    assert_int_equal(cipherfile_random_hex(2000, big, 4001, err, sizeof err), 0);
    assert_int_equal(strlen(big), 4000);
    free(big);
    assert_int_equal(cipherfile_random_hex(256, a, 512, err, sizeof err), -1);
    assert_contains(err, "no room");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_files),       cmocka_unit_test(test_empty),
        cmocka_unit_test(test_not_hex),           cmocka_unit_test(test_odd_digits),
        cmocka_unit_test(test_not_power_of_two),  cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_missing_file),      cmocka_unit_test(test_error_hides_token),
        cmocka_unit_test(test_derive_deterministic), cmocka_unit_test(test_random_hex),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
