#include "pd_tso.h"

void pd_tso_reset(struct pd_tso *t, uint64_t known_hw)
{
    t->physical = known_hw;
    t->logical = 0;
    t->committed_hw = known_hw;
}

enum pd_tso_result pd_tso_next(struct pd_tso *t, uint64_t now_ms, uint32_t count,
                               uint64_t *last_ts)
{
    if (count == 0 || count >= PD_TSO_MAX_LOGICAL)
        return PD_TSO_BAD_COUNT;
    uint64_t physical = t->physical;
    uint32_t logical = t->logical;
    if (now_ms > physical) {
        physical = now_ms;
        logical = 0;
    }
    if (physical >= t->committed_hw)
        return PD_TSO_NEED_HW;
    if (logical + count >= PD_TSO_MAX_LOGICAL)
        return PD_TSO_WAIT_CLOCK; /* only when the clock has not passed t->physical */
    logical += count;
    t->physical = physical;
    t->logical = logical;
    *last_ts = physical << PD_TSO_LOGICAL_BITS | logical;
    return PD_TSO_OK;
}

uint64_t pd_tso_ready_at(const struct pd_tso *t)
{
    return t->physical + 1;
}

uint64_t pd_tso_want_hw(const struct pd_tso *t, uint64_t now_ms)
{
    uint64_t base = now_ms > t->physical ? now_ms : t->physical;
    if (t->committed_hw > base + PD_TSO_RENEW_MS)
        return 0;
    return base + PD_TSO_WINDOW_MS;
}
