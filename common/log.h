/* log.h — leveled logging for daemons and tools.
 *
 * Contract:
 * - log_open() picks the component name that prefixes every line, the minimum level, and the
 *   destination (a file opened for append, or stderr when path is NULL). Before log_open()
 *   everything at INFO and above goes to stderr with component "tisim"; the warnings and
 *   errors among those lines are also written into the file log_open() opens, so start-up
 *   warnings (unknown config keys) end up in the daemon's log too.
 * - Text lines: "[2026/11/27 20:57:35.123 +00:00] [INFO] [pd] message". Control characters
 *   in the message (it may carry bytes from the network) are escaped as \xNN, so one call is
 *   always one line.
 * - log_handshake() writes one JSON object per line (jansson-escaped) for every TLS handshake
 *   outcome, at INFO when it succeeded and WARN when it failed.
 * - Never pass secrets (key material, passwords) to these functions.
 */
#ifndef TISIM_LOG_H
#define TISIM_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Returns 0, or -1 with errno set when the file cannot be opened (logging stays on stderr). */
int log_open(const char *component, const char *path, enum log_level min_level);
void log_close(void);
/* "debug", "info", "warn"/"warning", "error" → 0; anything else → -1. */
int log_level_parse(const char *name, enum log_level *out);

/* Formats one line into err (when err is not NULL and errlen > 0) and returns -1: the shape of
 * every "-1 with err" failure path ("return errorf(err, errlen, "bad %s", x);"). */
int errorf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* As log_msg, then ": strerror(errno)" (errno as it was at the call). */
void log_msg_errno(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The OpenBSD daemon convention: the x variants do not append errno. */
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg_errno(LOG_WARN, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
/* Log at ERROR (fatal appends strerror(errno)), close the log and exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* One handshake outcome. Strings may be NULL (written as ""). */
struct log_handshake {
    const char *role;      /* who we are: "pd", "tikv", "pd-ctl" */
    const char *direction; /* "in": we accepted (TLS server side); "out": we dialed */
    const char *peer;      /* "127.0.0.1:51234" */
    const char *peer_cn;   /* subject CN of the peer's certificate, "" if none */
    bool ok;
    const char *reason;    /* why it failed, or "" */
    const char *version;   /* "TLSv1.2" */
    const char *suite;     /* "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256" */
    bool resumed;
};
void log_handshake(const struct log_handshake *h);

#endif
