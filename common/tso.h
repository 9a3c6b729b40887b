/* tso.h — PD timestamps (TSO): a 64-bit number, physical milliseconds since the Unix epoch
 * shifted left by 18 bits, OR the logical counter in the low 18 bits.
 *
 * Contract:
 * - tso_compose / tso_physical / tso_logical: as real PD's tsoutil (ComposeTS / ParseTS).
 * - tso_parse: a decimal uint64 as Go's strconv.ParseUint(s, 10, 64) takes it (digits only,
 *   no sign or spaces); -1 with err worded like Go's ("strconv.ParseUint: parsing \"x\":
 *   invalid syntax" / "value out of range").
 * - tso_format_time: the instant physical_ms in the local zone (TZ), formatted as Go's
 *   time.Time.String(): "2026-11-27 20:57:35.123 +0000 UTC" — the fraction loses trailing
 *   zeros and disappears when zero.
 * - tso_describe: what real `pd-ctl tso N` prints:
 *   "system:  <tso_format_time(physical)>\nlogic:  <logical>\n".
 */
#ifndef TISIM_TSO_H
#define TISIM_TSO_H

#include <stddef.h>
#include <stdint.h>

#define TSO_LOGICAL_BITS 18
#define TSO_LOGICAL_MASK ((UINT64_C(1) << TSO_LOGICAL_BITS) - 1)

uint64_t tso_compose(uint64_t physical_ms, uint64_t logical);
uint64_t tso_physical(uint64_t ts);
uint64_t tso_logical(uint64_t ts);
int tso_parse(const char *s, uint64_t *out, char *err, size_t errlen);
void tso_format_time(int64_t physical_ms, char *buf, size_t len);
void tso_describe(uint64_t ts, char *buf, size_t len);

#endif
