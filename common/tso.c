#include "tso.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t tso_compose(uint64_t physical_ms, uint64_t logical)
{
    return (physical_ms << TSO_LOGICAL_BITS) | (logical & TSO_LOGICAL_MASK);
}

uint64_t tso_physical(uint64_t ts)
{
    return ts >> TSO_LOGICAL_BITS;
}

uint64_t tso_logical(uint64_t ts)
{
    return ts & TSO_LOGICAL_MASK;
}

int tso_parse(const char *s, uint64_t *out, char *err, size_t errlen)
{
    const char *text = s ? s : "";
    int invalid = text[0] == '\0';
    int overflow = 0;
    uint64_t v = 0;
    for (const char *p = text; *p && !invalid; p++) {
        if (*p < '0' || *p > '9') {
            invalid = 1;
            break;
        }
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = 1;
        else if (!overflow)
            v = v * 10 + d;
    }
    *out = 0;
    if (invalid || overflow) {
        if (err && errlen)
            snprintf(err, errlen, "strconv.ParseUint: parsing \"%.64s\": %s", text,
                     invalid ? "invalid syntax" : "value out of range");
        return -1;
    }
    *out = v;
    return 0;
}

void tso_format_time(int64_t physical_ms, char *buf, size_t len)
{
    /* Floor division, so instants before 1970 keep a positive millisecond part. */
    int64_t sec = physical_ms / 1000;
    int64_t ms = physical_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!localtime_r(&t, &tm)) {
        snprintf(buf, len, "(time out of range: %" PRId64 " ms)", physical_ms);
        return;
    }
    char frac[8] = "";
    if (ms) {
        snprintf(frac, sizeof frac, ".%03d", (int)ms);
        size_t n = strlen(frac);
        while (n > 1 && frac[n - 1] == '0')
            frac[--n] = '\0';
    }
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    off %= 100 * 3600; /* offsets are within +-26 h; keeps the format width bounded */
    const char *zone = tm.tm_zone && tm.tm_zone[0] ? tm.tm_zone : NULL;
    char zbuf[32];
    if (!zone) {
        /* Go writes the numeric offset when the zone has no abbreviation. */
        snprintf(zbuf, sizeof zbuf, "%c%02ld%02ld", sign, off / 3600, (off / 60) % 60);
        zone = zbuf;
    }
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d%s %c%02ld%02ld %s", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac, sign,
             off / 3600, (off / 60) % 60, zone);
}

void tso_describe(uint64_t ts, char *buf, size_t len)
{
    char when[96];
    tso_format_time((int64_t)tso_physical(ts), when, sizeof when);
    snprintf(buf, len, "system:  %s\nlogic:  %" PRIu64 "\n", when, tso_logical(ts));
}
