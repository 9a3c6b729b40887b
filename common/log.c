#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#define EARLY_LINES 64

static struct {
    char component[32];
    FILE *out; /* NULL means stderr */
    enum log_level min;
    bool opened; /* log_open has run: no more early lines are kept */
    char *early[EARLY_LINES]; /* lines written before log_open, replayed into its file */
    size_t n_early;
} g_log = {"tisim", NULL, LOG_INFO, false, {NULL}, 0};

static void keep_early(const char *line)
{
    if (g_log.opened || g_log.n_early >= EARLY_LINES)
        return;
    char *copy = strdup(line);
    if (copy)
        g_log.early[g_log.n_early++] = copy;
}

/* Start-up lines (config warnings, ...) also belong in the log file the config names. */
static void replay_early(FILE *f)
{
    for (size_t i = 0; i < g_log.n_early; i++) {
        if (f)
            fputs(g_log.early[i], f);
        free(g_log.early[i]);
    }
    g_log.n_early = 0;
}

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int log_open(const char *component, const char *path, enum log_level min_level)
{
    snprintf(g_log.component, sizeof g_log.component, "%s", component ? component : "tisim");
    g_log.min = min_level;
    g_log.opened = true;
    if (!path || !*path) {
        replay_early(NULL); /* they went to stderr already */
        return 0;
    }
    FILE *f = fopen(path, "a");
    if (!f) {
        replay_early(NULL);
        return -1;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    if (g_log.out)
        fclose(g_log.out);
    g_log.out = f;
    replay_early(f);
    return 0;
}

void log_close(void)
{
    replay_early(NULL);
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

/* Formats one line (control bytes escaped) and writes it; with_errno appends strerror. */
static void log_vwrite(enum log_level level, bool with_errno, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void log_vwrite(enum log_level level, bool with_errno, const char *fmt, va_list ap)
{
    if (level < g_log.min)
        return;
    int saved_errno = errno;
    char raw[2048], msg[4096], when[48];
    int n = vsnprintf(raw, sizeof raw, fmt, ap);
    if (with_errno && n >= 0 && (size_t)n < sizeof raw)
        snprintf(raw + n, sizeof raw - (size_t)n, ": %s", strerror(saved_errno));
    escape_controls(msg, sizeof msg, raw);
    format_time(when, sizeof when);
    char line[sizeof msg + 128];
    snprintf(line, sizeof line, "[%s] [%s] [%s] %s\n", when, level_names[level], g_log.component,
             msg);
    fputs(line, log_stream());
    fflush(log_stream());
    if (level >= LOG_WARN)
        keep_early(line);
    errno = saved_errno;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, false, fmt, ap);
    va_end(ap);
}

void log_msg_errno(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, true, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(LOG_ERROR, true, fmt, ap);
    va_end(ap);
    log_close();
    exit(1);
}

void fatalx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(LOG_ERROR, false, fmt, ap);
    va_end(ap);
    log_close();
    exit(1);
}

/* Appends "name":"value" to line at *o as a JSON string. JSON wants valid UTF-8 and a peer's
 * CN is arbitrary bytes: printable ASCII is kept (quote and backslash escaped), anything
 * else becomes '?'. Written by hand rather than with jansson: this runs on every handshake,
 * and building and freeing a JSON tree cost as much as a third of a resumed handshake. */
static void json_field(char *line, size_t len, size_t *o, const char *name, const char *value)
{
    *o += (size_t)snprintf(line + *o, *o < len ? len - *o : 0, "%s\"%s\":\"",
                           *o > 1 ? "," : "", name);
    for (const unsigned char *p = (const unsigned char *)(value ? value : "");
         *p && *o + 4 < len; p++) {
        if (*p == '"' || *p == '\\')
            line[(*o)++] = '\\';
        line[(*o)++] = (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?';
    }
    if (*o + 2 < len)
        line[(*o)++] = '"';
    line[*o < len ? *o : len - 1] = '\0';
}

void log_handshake(const struct log_handshake *h)
{
    enum log_level level = h->ok ? LOG_INFO : LOG_WARN;
    if (level < g_log.min)
        return;
    char when[48], line[2048] = "{";
    size_t o = 1;
    format_time(when, sizeof when);
    json_field(line, sizeof line, &o, "time", when);
    json_field(line, sizeof line, &o, "level", level_names[level]);
    json_field(line, sizeof line, &o, "component", g_log.component);
    json_field(line, sizeof line, &o, "event", "tls_handshake");
    json_field(line, sizeof line, &o, "role", h->role);
    json_field(line, sizeof line, &o, "direction", h->direction);
    json_field(line, sizeof line, &o, "peer", h->peer);
    json_field(line, sizeof line, &o, "peer_cn", h->peer_cn);
    json_field(line, sizeof line, &o, "result", h->ok ? "ok" : "fail");
    json_field(line, sizeof line, &o, "reason", h->reason);
    json_field(line, sizeof line, &o, "version", h->version);
    json_field(line, sizeof line, &o, "cipher_suite", h->suite);
    if (o + 20 < sizeof line)
        snprintf(line + o, sizeof line - o, ",\"resumed\":%s}\n", h->resumed ? "true" : "false");
    fputs(line, log_stream());
    fflush(log_stream());
}

int errorf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        if (n < 0)
            err[0] = '\0';
    }
    return -1;
}
