#include "daemon.h"

#include "tls.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* libevent's severities, in the order of enum log_level. */
static void on_libevent_log(int severity, const char *msg)
{
    enum log_level level = LOG_ERROR;
    if (severity == EVENT_LOG_DEBUG)
        level = LOG_DEBUG;
    else if (severity == EVENT_LOG_MSG)
        level = LOG_INFO;
    else if (severity == EVENT_LOG_WARN)
        level = LOG_WARN;
    log_msg(level, "libevent: %s", msg);
}

static void on_libevent_fatal(int err)
{
    fatalx("libevent: fatal error %d, exiting", err);
}

/* TISIM_EVENT_DEBUG=1: libevent checks every event it is handed. Only once per process. */
static void event_debug_switch(void)
{
    static bool enabled;
    const char *v = getenv("TISIM_EVENT_DEBUG");
    if (enabled || !v || !*v || strcmp(v, "0") == 0)
        return;
    event_enable_debug_mode();
    enabled = true;
    log_info("libevent debug mode on (TISIM_EVENT_DEBUG)");
}

/* Every connection is a descriptor: take all the hard limit allows. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        log_warn("getrlimit(RLIMIT_NOFILE)");
        return;
    }
    if (rl.rlim_cur >= rl.rlim_max) {
        log_debug("open files limit %llu (the hard limit)", (unsigned long long)rl.rlim_cur);
        return;
    }
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        log_warn("cannot raise the open files limit from %llu to %llu",
                 (unsigned long long)old, (unsigned long long)rl.rlim_max);
        return;
    }
    log_info("open files limit raised from %llu to %llu (the hard limit)",
             (unsigned long long)old, (unsigned long long)rl.rlim_cur);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    (void)what;
    const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    if (d->stopping)
        fatalx("received %s again while stopping, exiting now", name);
    log_info("received %s, stopping", name);
    daemon_stop(d);
}

static int open_log(struct daemon *d, const struct daemon_opts *o, char *err, size_t errlen)
{
    enum log_level level = LOG_INFO;
    const char *name = o->log_level ? o->log_level : "info";
    if (log_level_parse(name, &level) != 0) {
        snprintf(err, errlen, "unknown log level '%s' (debug, info, warn, error)", name);
        return -1;
    }
    if (log_open(o->component, o->log_file, level) != 0) {
        snprintf(err, errlen, "cannot open log file %s: %s", o->log_file, strerror(errno));
        return -1;
    }
    d->log_opened = true;
    return 0;
}

static int catch_signals(struct daemon *d, char *err, size_t errlen)
{
    static const int sigs[2] = {SIGINT, SIGTERM};
    for (size_t i = 0; i < 2; i++) {
        d->sig[i] = evsignal_new(d->base, sigs[i], on_signal, d);
        if (!d->sig[i] || evsignal_add(d->sig[i], NULL) != 0) {
            snprintf(err, errlen, "cannot catch %s", sigs[i] == SIGINT ? "SIGINT" : "SIGTERM");
            return -1;
        }
    }
    return 0;
}

int daemon_init(struct daemon *d, const struct daemon_opts *o, char *err, size_t errlen)
{
    *d = (struct daemon){0};
    if (open_log(d, o, err, errlen) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    event_set_log_callback(on_libevent_log);
    event_set_fatal_callback(on_libevent_fatal);
    event_debug_switch();
    raise_nofile();
    if (!(d->base = event_base_new())) {
        snprintf(err, errlen, "cannot create the event loop");
        return -1;
    }
    return catch_signals(d, err, errlen);
}

void daemon_on_stop(struct daemon *d, void (*cb)(void *arg), void *arg)
{
    d->on_stop = cb;
    d->on_stop_arg = arg;
}

void daemon_stop(struct daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    if (d->on_stop)
        d->on_stop(d->on_stop_arg);
    event_base_loopexit(d->base, NULL);
}

/* After the loop, a signal during cleanup acts as if nobody caught it. */
static void release_signals(struct daemon *d)
{
    for (size_t i = 0; i < 2; i++) {
        if (d->sig[i])
            event_free(d->sig[i]);
        d->sig[i] = NULL;
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

int daemon_run(struct daemon *d)
{
    int rc = event_base_dispatch(d->base);
    release_signals(d);
    return rc < 0 ? -1 : 0;
}

void daemon_free(struct daemon *d)
{
    release_signals(d);
    if (d->base)
        event_base_free(d->base);
    d->base = NULL;
    if (d->log_opened)
        log_close();
    d->log_opened = false;
}

/* Appends to buf at *o like snprintf; *o keeps counting past len so the caller sees a cut. */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t len, size_t *o,
                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*o < len ? buf + *o : NULL, *o < len ? len - *o : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        *o += (size_t)n;
}

/* ["A", "B"], quotes and backslashes in names escaped so an odd name is plain to see. */
static void append_list(char *buf, size_t len, size_t *o, char *const *items, size_t n)
{
    append(buf, len, o, "[");
    for (size_t i = 0; i < n; i++) {
        append(buf, len, o, "%s\"", i ? ", " : "");
        for (const char *p = items[i]; *p; p++)
            append(buf, len, o, (*p == '"' || *p == '\\') ? "\\%c" : "%c", *p);
        append(buf, len, o, "\"");
    }
    append(buf, len, o, "]");
}

static void append_cn_check(char *buf, size_t len, size_t *o, const struct daemon_security *s)
{
    if (!s->mutual)
        append(buf, len, o, "; no client certificate is asked for");
    else if (!s->cn_key)
        append(buf, len, o, "; no CN check: any certificate signed by the CA is let in");
    else if (s->n_allowed_cn == 0)
        append(buf, len, o,
               "; CN check OFF: %s is empty, any certificate signed by the CA is let in",
               s->cn_key);
    else {
        append(buf, len, o, "; CN check on: %s ", s->cn_key);
        append_list(buf, len, o, s->allowed_cn, s->n_allowed_cn);
    }
}

int daemon_security_line(char *buf, size_t len, const struct daemon_security *s)
{
    size_t o = 0;
    if (len)
        buf[0] = '\0';
    append(buf, len, &o, "security%s%s%s: ", s->surface ? " (" : "",
           s->surface ? s->surface : "", s->surface ? ")" : "");
    if (!s->tls) {
        append(buf, len, &o, "TLS OFF: plaintext, no authentication");
        return (int)o;
    }
    append(buf, len, &o, "TLS on (%s, CA %s, cert %s)", s->mutual ? "mutual" : "server only",
           s->ca_path ? s->ca_path : "(none)", s->cert_path ? s->cert_path : "(none)");
    append_cn_check(buf, len, &o, s);
    return (int)o;
}

/* A WARN when the daemon's own certificate is expired, not yet valid or expires within
 * DAEMON_CERT_WARN_DAYS: peers will refuse it (or soon will), and nothing else would say so
 * before the first handshake fails. */
static void warn_own_cert(const char *path)
{
    time_t from, to, now = time(NULL);
    char err[300], when[32];
    if (!path || tls_cert_file_validity(path, &from, &to, err, sizeof err) != 0)
        return; /* the TLS set-up reports an unreadable cert */
    struct tm tm;
    if (now >= to) {
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&to, &tm));
        log_warnx("own certificate %s has expired (on %s): peers will refuse it", path, when);
    } else if (now < from) {
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&from, &tm));
        log_warnx("own certificate %s is not valid yet (from %s): peers will refuse it", path,
                  when);
    } else if (to - now < DAEMON_CERT_WARN_DAYS * 86400L) {
        strftime(when, sizeof when, "%Y-%m-%d", gmtime_r(&to, &tm));
        log_warnx("own certificate %s expires in %ld days (%s)", path,
                  (long)((to - now) / 86400), when);
    }
}

void daemon_log_security(const struct daemon_security *s)
{
    char line[2048];
    int n = daemon_security_line(line, sizeof line, s);
    bool weak = !s->tls || (s->mutual && s->cn_key && s->n_allowed_cn == 0);
    log_msg(weak ? LOG_WARN : LOG_INFO, "%s%s", line, (size_t)n >= sizeof line ? "..." : "");
    if (s->tls)
        warn_own_cert(s->cert_path);
}
