/* Unit tests for tso: composing/decoding PD timestamps and printing them as real pd-ctl. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tso.h"

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static void test_compose_and_split(void **state)
{
    (void)state;
    uint64_t ts = tso_compose(1714504872881ULL, 81921);
    assert_int_equal(ts, 449447165396598785ULL);
    assert_int_equal(tso_physical(ts), 1714504872881ULL);
    assert_int_equal(tso_logical(ts), 81921);
    /* the logical part never spills into the physical part */
    assert_int_equal(tso_compose(1, TSO_LOGICAL_MASK + 1), UINT64_C(1) << 18);
    assert_int_equal(tso_logical(UINT64_MAX), TSO_LOGICAL_MASK);
}

static void test_parse(void **state)
{
    (void)state;
    uint64_t v;
    char err[128];
    assert_int_equal(tso_parse("449447165396598785", &v, err, sizeof err), 0);
    assert_int_equal(v, 449447165396598785ULL);
    assert_int_equal(tso_parse("18446744073709551615", &v, err, sizeof err), 0);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(tso_parse("18446744073709551616", &v, err, sizeof err), -1);
    assert_string_equal(err, "strconv.ParseUint: parsing \"18446744073709551616\": value out of range");
    const char *bad[] = {"", "abc", "-1", "+1", " 1", "1 ", "0x10", "12a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tso_parse(bad[i], &v, err, sizeof err), -1);
        assert_non_null(strstr(err, "invalid syntax"));
    }
    assert_int_equal(tso_parse("abc", &v, err, sizeof err), -1);
    assert_string_equal(err, "strconv.ParseUint: parsing \"abc\": invalid syntax");
}

static void test_go_time_format(void **state)
{
    (void)state;
    char buf[96];
    set_tz("UTC");
    tso_format_time(1714504872881LL, buf, sizeof buf);
    assert_string_equal(buf, "2024-04-30 19:21:12.881 +0000 UTC");
    /* Go trims trailing zeros of the fraction, and drops it when zero. */
    tso_format_time(1714504872800LL, buf, sizeof buf);
    assert_string_equal(buf, "2024-04-30 19:21:12.8 +0000 UTC");
    tso_format_time(1714504872050LL, buf, sizeof buf);
    assert_string_equal(buf, "2024-04-30 19:21:12.05 +0000 UTC");
    tso_format_time(1714504872000LL, buf, sizeof buf);
    assert_string_equal(buf, "2024-04-30 19:21:12 +0000 UTC");
    tso_format_time(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01 00:00:00 +0000 UTC");
    /* A fixed zone written POSIX-style: abbreviation and offset as Go prints them. */
    set_tz("CST-8");
    tso_format_time(1714504872881LL, buf, sizeof buf);
    assert_string_equal(buf, "2024-05-01 03:21:12.881 +0800 CST");
    set_tz("XYZ+3:30");
    tso_format_time(1714504872881LL, buf, sizeof buf);
    assert_string_equal(buf, "2024-04-30 15:51:12.881 -0330 XYZ");
    set_tz("UTC");
}

static void test_describe(void **state)
{
    (void)state;
    char buf[256];
    set_tz("UTC");
    tso_describe(449447165396598785ULL, buf, sizeof buf);
    assert_string_equal(buf, "system:  2024-04-30 19:21:12.881 +0000 UTC\nlogic:  81921\n");
    tso_describe(0, buf, sizeof buf);
    assert_string_equal(buf, "system:  1970-01-01 00:00:00 +0000 UTC\nlogic:  0\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compose_and_split),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_go_time_format),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
