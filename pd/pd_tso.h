/* pd_tso.h — the timestamp oracle: ts = physical_ms << 18 | logical, strictly increasing.
 *
 * Contract:
 * - Only the leader allocates. pd_tso_reset() is called when a member becomes leader, with
 *   the highest high-water any earlier leader could have used (replicated/persisted), so new
 *   timestamps are above every timestamp ever handed out.
 * - pd_tso_next() hands out count consecutive timestamps and returns the last one.
 *   PD_TSO_NEED_HW: the physical part would reach the committed high-water: the caller must
 *   first persist/replicate a higher one (pd_tso_want_hw tells which) and retry.
 *   PD_TSO_WAIT_CLOCK: the logical part of the current millisecond is used up; as real PD
 *   does, the oracle waits for the clock instead of running ahead of it: retry once the clock
 *   reaches pd_tso_ready_at().
 * - The physical part never passes max(wall clock, the high-water given to pd_tso_reset):
 *   it moves to the clock when the clock is ahead, and otherwise stays put.
 * - A clock that goes backwards never makes timestamps go backwards.
 */
#ifndef TISIM_PD_TSO_H
#define TISIM_PD_TSO_H

#include <stdint.h>

#define PD_TSO_LOGICAL_BITS 18
#define PD_TSO_MAX_LOGICAL (1u << PD_TSO_LOGICAL_BITS)
/* Timestamps are JSON integers (int64): the physical part must stay below 2^45 ms. */
#define PD_TSO_MAX_PHYSICAL ((UINT64_C(1) << (63 - PD_TSO_LOGICAL_BITS)) - 1)
/* How far ahead of the clock the high-water is kept, and when it is renewed. */
#define PD_TSO_WINDOW_MS 3000
#define PD_TSO_RENEW_MS 1000

enum pd_tso_result {
    PD_TSO_OK = 0,
    PD_TSO_BAD_COUNT = -1,  /* count is 0 or >= PD_TSO_MAX_LOGICAL */
    PD_TSO_NEED_HW = -2,    /* the committed high-water is too close */
    PD_TSO_WAIT_CLOCK = -3, /* this millisecond is used up; retry at pd_tso_ready_at() */
};

struct pd_tso {
    uint64_t physical;     /* of the last timestamp handed out */
    uint32_t logical;
    uint64_t committed_hw; /* physical must stay below this */
};

void pd_tso_reset(struct pd_tso *t, uint64_t known_hw);
enum pd_tso_result pd_tso_next(struct pd_tso *t, uint64_t now_ms, uint32_t count,
                               uint64_t *last_ts);
/* The wall-clock millisecond from which a PD_TSO_WAIT_CLOCK request can be served. */
uint64_t pd_tso_ready_at(const struct pd_tso *t);
/* 0 when the committed high-water is far enough ahead, else the high-water to commit. */
uint64_t pd_tso_want_hw(const struct pd_tso *t, uint64_t now_ms);

#endif
