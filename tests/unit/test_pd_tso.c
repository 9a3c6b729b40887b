/* test_pd_tso.c — the timestamp oracle: strictly increasing, bounded by the committed
 * high-water, safe across leader changes and clocks that go backwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pd_tso.h"

static void test_increases_and_packs_physical_and_logical(void **state)
{
    (void)state;
    struct pd_tso t;
    pd_tso_reset(&t, 1000);
    t.committed_hw = 5000;
    uint64_t a, b, c;
    assert_int_equal(pd_tso_next(&t, 2000, 1, &a), 0);
    assert_int_equal(a >> PD_TSO_LOGICAL_BITS, 2000);
    assert_int_equal(a & (PD_TSO_MAX_LOGICAL - 1), 1);
    assert_int_equal(pd_tso_next(&t, 2000, 1, &b), 0);
    assert_true(b > a);
    assert_int_equal(pd_tso_next(&t, 2001, 10, &c), 0);
    assert_true(c > b);
    assert_int_equal(c >> PD_TSO_LOGICAL_BITS, 2001);
    assert_int_equal(c & (PD_TSO_MAX_LOGICAL - 1), 10); /* the last of a batch of 10 */
}

static void test_clock_going_back_never_goes_back(void **state)
{
    (void)state;
    struct pd_tso t;
    pd_tso_reset(&t, 0);
    t.committed_hw = 10000;
    uint64_t a, b;
    assert_int_equal(pd_tso_next(&t, 5000, 1, &a), 0);
    assert_int_equal(pd_tso_next(&t, 3000, 1, &b), 0);
    assert_true(b > a);
}

static void test_logical_overflow_moves_physical_on(void **state)
{
    (void)state;
    struct pd_tso t;
    pd_tso_reset(&t, 0);
    t.committed_hw = 10000;
    uint64_t a, b;
    assert_int_equal(pd_tso_next(&t, 100, PD_TSO_MAX_LOGICAL - 2, &a), 0);
    assert_int_equal(pd_tso_next(&t, 100, 5, &b), 0);
    assert_true(b > a);
    assert_int_equal(b >> PD_TSO_LOGICAL_BITS, 101);
    assert_int_equal(pd_tso_next(&t, 100, 0, &b), -1);
    assert_int_equal(pd_tso_next(&t, 100, PD_TSO_MAX_LOGICAL, &b), -1);
}

static void test_refuses_at_the_committed_high_water(void **state)
{
    (void)state;
    struct pd_tso t;
    pd_tso_reset(&t, 0);
    t.committed_hw = 2000;
    uint64_t ts;
    assert_int_equal(pd_tso_next(&t, 1999, 1, &ts), 0);
    assert_int_equal(pd_tso_next(&t, 2000, 1, &ts), -1);
    /* Asking for a window: ahead of the clock by the window size. */
    assert_int_equal(pd_tso_want_hw(&t, 2000), 2000 + PD_TSO_WINDOW_MS);
    t.committed_hw = 2000 + PD_TSO_WINDOW_MS;
    assert_int_equal(pd_tso_want_hw(&t, 2000), 0);
    assert_int_equal(pd_tso_next(&t, 2000, 1, &ts), 0);
}

/* A new leader starts from the replicated high-water: above everything the old one issued. */
static void test_new_leader_starts_above_old_leader(void **state)
{
    (void)state;
    struct pd_tso old, fresh;
    pd_tso_reset(&old, 0);
    old.committed_hw = 4000;
    uint64_t last_old = 0, ts;
    while (pd_tso_next(&old, 3999, 1000, &ts) == 0)
        last_old = ts;
    assert_true(last_old > 0);
    pd_tso_reset(&fresh, old.committed_hw); /* the clock here lags behind: 1000 */
    assert_int_equal(pd_tso_next(&fresh, 1000, 1, &ts), -1); /* nothing before a new window */
    fresh.committed_hw = 4000 + PD_TSO_WINDOW_MS;
    assert_int_equal(pd_tso_next(&fresh, 1000, 1, &ts), 0);
    assert_true(ts > last_old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_increases_and_packs_physical_and_logical),
        cmocka_unit_test(test_clock_going_back_never_goes_back),
        cmocka_unit_test(test_logical_overflow_moves_physical_on),
        cmocka_unit_test(test_refuses_at_the_committed_high_water),
        cmocka_unit_test(test_new_leader_starts_above_old_leader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
