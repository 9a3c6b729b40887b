/* Unit tests for tablecodec: TiDB's key layout (order preserved by memcmp), datums, rows. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tablecodec.h"

static int cmp_keys(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* Row keys sort as their handles, negative before positive, and TiDB's exact bytes. */
static void test_row_keys(void **state)
{
    (void)state;
    int64_t hs[] = {INT64_MIN, -5, -1, 0, 1, 2, 255, 256, INT64_MAX};
    uint8_t prev[TC_ROW_KEY_LEN], k[TC_ROW_KEY_LEN];
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        tc_row_key(k, 42, hs[i]);
        if (i)
            assert_true(memcmp(prev, k, TC_ROW_KEY_LEN) < 0);
        int64_t h;
        assert_int_equal(tc_row_key_handle(k, sizeof k, 42, &h), 0);
        assert_true(h == hs[i]);
        assert_int_equal(tc_row_key_handle(k, sizeof k, 43, &h), -1); /* another table */
        memcpy(prev, k, sizeof k);
    }
    tc_row_key(k, 1, 1);
    const uint8_t want[] = {'t', 0x80, 0, 0, 0, 0, 0, 0, 1, '_', 'r', 0x80, 0, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(k, want, sizeof want);
    uint8_t lo[TC_PREFIX_LEN], hi[TC_PREFIX_LEN];
    tc_row_prefix(lo, 42, false);
    tc_row_prefix(hi, 42, true);
    tc_row_key(k, 42, INT64_MAX);
    assert_true(memcmp(lo, k, TC_PREFIX_LEN) <= 0 && memcmp(k, hi, TC_PREFIX_LEN) < 0);
}

/* Index entries: bytes datums keep memcmp order for every length, ints too; round trips. */
static void test_datums(void **state)
{
    (void)state;
    const char *vals[] = {"", "a", "a\0", "ab", "abcdefg", "abcdefgh", "abcdefgh\0", "abcdefghi",
                          "b", "ba"};
    size_t lens[] = {0, 1, 2, 2, 7, 8, 9, 9, 1, 2};
    struct tc_buf prev = {0};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        struct tc_buf b = {0};
        tc_index_prefix(&b, 7, 1);
        tc_datum_bytes(&b, vals[i], lens[i]);
        tc_datum_int(&b, 99);
        assert_false(b.oom);
        if (i)
            assert_true(cmp_keys(prev.p, prev.len, b.p, b.len) < 0);
        const uint8_t *p = b.p + TC_PREFIX_LEN + 8, *end = b.p + b.len;
        int kind;
        int64_t iv;
        uint8_t *s = NULL;
        size_t sl;
        assert_int_equal(tc_datum_decode(&p, end, &kind, &iv, &s, &sl), 0);
        assert_int_equal(kind, 2);
        assert_int_equal(sl, lens[i]);
        assert_memory_equal(s, vals[i], lens[i]);
        free(s);
        assert_int_equal(tc_datum_decode(&p, end, &kind, &iv, &s, &sl), 0);
        assert_int_equal(kind, 1);
        assert_int_equal(iv, 99);
        assert_true(p == end);
        assert_int_equal(tc_datum_decode(&p, end, &kind, &iv, &s, &sl), -1); /* nothing left */
        tc_buf_free(&prev);
        prev = b;
    }
    tc_buf_free(&prev);
    /* a cut group and a bad marker are errors */
    struct tc_buf b = {0};
    tc_datum_bytes(&b, "abcdefgh", 8);
    for (size_t cut = 0; cut < b.len; cut++) {
        const uint8_t *p = b.p;
        int kind;
        int64_t iv;
        uint8_t *s = NULL;
        size_t sl;
        assert_int_equal(tc_datum_decode(&p, b.p + cut, &kind, &iv, &s, &sl), -1);
    }
    b.p[9] = 0x10; /* marker claiming 239 pad bytes */
    const uint8_t *p = b.p;
    int kind;
    int64_t iv;
    uint8_t *s = NULL;
    size_t sl;
    assert_int_equal(tc_datum_decode(&p, b.p + b.len, &kind, &iv, &s, &sl), -1);
    tc_buf_free(&b);
}

static void test_rows(void **state)
{
    (void)state;
    struct tc_value in[3] = {{.kind = 1, .i = -7}, {.kind = 0}, {.kind = 2, .s = (const uint8_t *)"hello", .len = 5}};
    struct tc_buf b = {0};
    tc_row_encode(&b, in, 3);
    struct tc_value out[4];
    size_t n;
    assert_int_equal(tc_row_decode(b.p, b.len, out, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].kind, 1);
    assert_true(out[0].i == -7);
    assert_int_equal(out[1].kind, 0);
    assert_int_equal(out[2].len, 5);
    assert_memory_equal(out[2].s, "hello", 5);
    assert_int_equal(tc_row_decode(b.p, b.len, out, 2, &n), -1); /* more columns than room */
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(tc_row_decode(b.p, cut, out, 4, &n), -1);
    b.p[2] = 9; /* unknown kind */
    assert_int_equal(tc_row_decode(b.p, b.len, out, 4, &n), -1);
    tc_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_keys),
        cmocka_unit_test(test_datums),
        cmocka_unit_test(test_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
