/* pd_tso.h — the timestamp oracle: ts = physical_ms << 18 | logical, strictly increasing.
 *
 * Contract:
 * - Only the leader allocates. pd_tso_reset() is called when a member becomes leader, with
 *   the highest high-water any earlier leader could have used (replicated/persisted), so new
 *   timestamps are above every timestamp ever handed out.
 * - pd_tso_next() hands out count consecutive timestamps and returns the last one; it refuses
 *   (returns -1) when the physical part would reach the committed high-water: the caller must
 *   first persist/replicate a higher one (pd_tso_want_hw tells which) and retry.
 * - A clock that goes backwards never makes timestamps go backwards.
 */
#ifndef TISIM_PD_TSO_H
#define TISIM_PD_TSO_H

#include <stdint.h>

#define PD_TSO_LOGICAL_BITS 18
#define PD_TSO_MAX_LOGICAL (1u << PD_TSO_LOGICAL_BITS)
/* How far ahead of the clock the high-water is kept, and when it is renewed. */
#define PD_TSO_WINDOW_MS 3000
#define PD_TSO_RENEW_MS 1000

struct pd_tso {
    uint64_t physical;     /* of the last timestamp handed out */
    uint32_t logical;
    uint64_t committed_hw; /* physical must stay below this */
};

void pd_tso_reset(struct pd_tso *t, uint64_t known_hw);
int pd_tso_next(struct pd_tso *t, uint64_t now_ms, uint32_t count, uint64_t *last_ts);
/* 0 when the committed high-water is far enough ahead, else the high-water to commit. */
uint64_t pd_tso_want_hw(const struct pd_tso *t, uint64_t now_ms);

#endif
