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

/* When a millisecond's logical part is used up, the oracle waits for the clock (as real PD
 * does) instead of moving the physical part ahead of it. */
static void test_logical_overflow_waits_for_the_clock(void **state)
{
    (void)state;
    struct pd_tso t;
    pd_tso_reset(&t, 0);
    t.committed_hw = 10000;
    uint64_t a, b;
    assert_int_equal(pd_tso_next(&t, 100, PD_TSO_MAX_LOGICAL - 2, &a), PD_TSO_OK);
    assert_int_equal(pd_tso_next(&t, 100, 5, &b), PD_TSO_WAIT_CLOCK);
    assert_int_equal(pd_tso_ready_at(&t), 101);
    assert_int_equal(pd_tso_next(&t, 101, 5, &b), PD_TSO_OK);
    assert_true(b > a);
    assert_int_equal(b >> PD_TSO_LOGICAL_BITS, 101);
    assert_int_equal(pd_tso_next(&t, 101, 0, &b), PD_TSO_BAD_COUNT);
    assert_int_equal(pd_tso_next(&t, 101, PD_TSO_MAX_LOGICAL, &b), PD_TSO_BAD_COUNT);
}

/* A flood of the largest batches, with a clock that moves 1 ms every 3 requests: the physical
 * part never gets ahead of the clock (tolerance 0), and timestamps still strictly increase. */
static void test_flood_of_large_batches_never_runs_ahead_of_the_clock(void **state)
{
    (void)state;
    struct pd_tso t;
    pd_tso_reset(&t, 0);
    t.committed_hw = 1000000;
    uint64_t now = 5000, last = 0, ts;
    unsigned served = 0;
    for (int i = 0; i < 3000; i++) {
        if (i % 3 == 0)
            now++;
        enum pd_tso_result r = pd_tso_next(&t, now, PD_TSO_MAX_LOGICAL - 1, &ts);
        if (r == PD_TSO_WAIT_CLOCK) {
            assert_true(pd_tso_ready_at(&t) > now);
            continue;
        }
        assert_int_equal(r, PD_TSO_OK);
        assert_true(ts > last);
        last = ts;
        served++;
        assert_true((ts >> PD_TSO_LOGICAL_BITS) <= now);
    }
    assert_int_equal(served, 1000); /* one full batch per millisecond */
}

/* A new leader starts at the persisted high-water, ahead of its clock: it stays there (never
 * further) until the clock catches up. */
static void test_after_reset_ahead_of_the_clock_physical_stays_at_the_high_water(void **state)
{
    (void)state;
    struct pd_tso t;
    pd_tso_reset(&t, 8000);
    t.committed_hw = 8000 + PD_TSO_WINDOW_MS;
    uint64_t ts;
    int waits = 0;
    for (int i = 0; i < 100; i++) {
        enum pd_tso_result r = pd_tso_next(&t, 6000, PD_TSO_MAX_LOGICAL / 2, &ts);
        if (r == PD_TSO_WAIT_CLOCK)
            waits++;
        else
            assert_int_equal(ts >> PD_TSO_LOGICAL_BITS, 8000);
    }
    assert_int_equal(waits, 99);
    assert_int_equal(pd_tso_ready_at(&t), 8001);
    assert_int_equal(pd_tso_next(&t, 8001, 1, &ts), PD_TSO_OK);
    assert_int_equal(ts >> PD_TSO_LOGICAL_BITS, 8001);
}

static void test_refuses_at_the_committed_high_water(void **state)
{
    (void)state;
    struct pd_tso t;
    pd_tso_reset(&t, 0);
    t.committed_hw = 2000;
    uint64_t ts;
    assert_int_equal(pd_tso_next(&t, 1999, 1, &ts), 0);
    assert_int_equal(pd_tso_next(&t, 2000, 1, &ts), PD_TSO_NEED_HW);
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
    assert_int_equal(pd_tso_next(&fresh, 1000, 1, &ts), PD_TSO_NEED_HW); /* nothing before a new window */
    fresh.committed_hw = 4000 + PD_TSO_WINDOW_MS;
    assert_int_equal(pd_tso_next(&fresh, 1000, 1, &ts), 0);
    assert_true(ts > last_old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_increases_and_packs_physical_and_logical),
        cmocka_unit_test(test_clock_going_back_never_goes_back),
        cmocka_unit_test(test_logical_overflow_waits_for_the_clock),
        cmocka_unit_test(test_flood_of_large_batches_never_runs_ahead_of_the_clock),
        cmocka_unit_test(test_after_reset_ahead_of_the_clock_physical_stays_at_the_high_water),
        cmocka_unit_test(test_refuses_at_the_committed_high_water),
        cmocka_unit_test(test_new_leader_starts_above_old_leader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
