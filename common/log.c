#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static struct {
    char component[32];
    FILE *out; /* NULL means stderr */
    enum log_level min;
} g_log = {"tisim", NULL, LOG_INFO};

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int log_open(const char *component, const char *path, enum log_level min_level)
{
    snprintf(g_log.component, sizeof g_log.component, "%s", component ? component : "tisim");
    g_log.min = min_level;
    if (!path || !*path)
        return 0;
    FILE *f = fopen(path, "a");
    if (!f)
        return -1;
    setvbuf(f, NULL, _IOLBF, 0);
    log_close();
    g_log.out = f;
    return 0;
}

void log_close(void)
{
    if (g_log.out)
        fclose(g_log.out);
    g_log.out = NULL;
}

int log_level_parse(const char *name, enum log_level *out)
{
    static const struct { const char *name; enum log_level level; } names[] = {
        {"debug", LOG_DEBUG}, {"info", LOG_INFO},   {"warn", LOG_WARN},
        {"warning", LOG_WARN}, {"error", LOG_ERROR}, {"fatal", LOG_ERROR},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

static FILE *log_stream(void)
{
    return g_log.out ? g_log.out : stderr;
}

static void format_time(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y/%m/%d %H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03d +00:00", (int)(tv.tv_usec / 1000));
}

/* Copies src into dst escaping control bytes, so that a message is always one line. */
static void escape_controls(char *dst, size_t len, const char *src)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)src; *p && o + 5 < len; p++) {
        if (*p < 0x20 || *p == 0x7f)
            o += (size_t)snprintf(dst + o, len - o, "\\x%02x", *p);
        else
            dst[o++] = (char)*p;
    }
    dst[o] = '\0';
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < g_log.min)
        return;
    int saved_errno = errno;
    char raw[2048], msg[4096], when[48];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    escape_controls(msg, sizeof msg, raw);
    format_time(when, sizeof when);
    fprintf(log_stream(), "[%s] [%s] [%s] %s\n", when, level_names[level], g_log.component, msg);
    fflush(log_stream());
    errno = saved_errno;
}

/* JSON wants valid UTF-8; a peer's CN is arbitrary bytes. Keep printable ASCII only. */
static const char *ascii_only(char *dst, size_t len, const char *src)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)(src ? src : ""); *p && o + 1 < len; p++)
        dst[o++] = (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?';
    dst[o] = '\0';
    return dst;
}

void log_handshake(const struct log_handshake *h)
{
    char cn[256], reason[256];
    enum log_level level = h->ok ? LOG_INFO : LOG_WARN;
    if (level < g_log.min)
        return;
    char when[48];
    format_time(when, sizeof when);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}",
                          "time", when, "level", level_names[level], "component",
                          g_log.component, "event", "tls_handshake", "role",
                          h->role ? h->role : "", "direction",
                          h->direction ? h->direction : "", "peer", h->peer ? h->peer : "", "peer_cn",
                          ascii_only(cn, sizeof cn, h->peer_cn), "result", h->ok ? "ok" : "fail",
                          "reason", ascii_only(reason, sizeof reason, h->reason), "version",
                          h->version ? h->version : "", "cipher_suite",
                          h->suite ? h->suite : "", "resumed", h->resumed);
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (line) {
        fprintf(log_stream(), "%s\n", line);
        fflush(log_stream());
    }
    free(line);
    json_decref(o);
}
