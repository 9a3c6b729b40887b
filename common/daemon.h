/* daemon.h — the process layer every daemon (pd-server, tikv-server, tidb-server) stands on.
 *
 * Contract:
 * - daemon_init() does, in this order: opens the log (component, file, level), ignores
 *   SIGPIPE (a write to a closed socket returns EPIPE instead of killing the process), routes
 *   libevent's own messages into the log (debug→DEBUG, msg→INFO, warn→WARN, err→ERROR,
 *   prefixed "libevent: ") and its fatal errors through fatalx(), turns on libevent's debug
 *   mode when the environment has TISIM_EVENT_DEBUG=1 (before any event_base exists; it
 *   checks every event it is handed and is slow), raises the soft RLIMIT_NOFILE to the hard
 *   limit (logged at INFO when raised), creates the event_base and catches SIGINT and SIGTERM.
 *   It must run before any other event_base is created. Errors: -1 with one line in err.
 * - The first SIGINT/SIGTERM logs "received SIGTERM, stopping", runs the stop callback set by
 *   daemon_on_stop() (close listeners, save state) and makes the loop exit. A second one
 *   while the loop still runs exits at once (exit 1, logged); once daemon_run() has returned
 *   SIGINT/SIGTERM have their default action again, so a signal during cleanup kills.
 * - daemon_run() dispatches the loop until a stop (or until nothing is left to wait for) and
 *   returns 0, or -1 when the loop fails. daemon_free() releases what daemon_init() made
 *   (the event_base last: free the daemon's own events first) and closes the log.
 * - daemon_log_security() writes ONE line stating the security posture at start-up, so an
 *   empty or misspelled allow-list is visible: INFO when TLS and the CN check are on, WARN
 *   when TLS is off or the allow-list is empty.
 *   Then, with TLS, a WARN when the daemon's own certificate (cert_path) has expired, is not
 *   valid yet, or expires within DAEMON_CERT_WARN_DAYS days.
 */
#ifndef TISIM_DAEMON_H
#define TISIM_DAEMON_H

#define DAEMON_CERT_WARN_DAYS 30

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

struct event;
struct event_base;

struct daemon_opts {
    const char *component; /* prefixes every log line: "pd", "tikv", "tidb" */
    const char *log_file;  /* NULL or "" → stderr */
    const char *log_level; /* "debug", "info", "warn", "error"; NULL → "info" */
};

struct daemon {
    struct event_base *base;
    struct event *sig[2]; /* SIGINT, SIGTERM */
    void (*on_stop)(void *arg);
    void *on_stop_arg;
    bool stopping;
    bool log_opened;
};

int daemon_init(struct daemon *d, const struct daemon_opts *o, char *err, size_t errlen);
/* cb runs once, in the loop, on the first SIGINT/SIGTERM; the loop exits after it returns. */
void daemon_on_stop(struct daemon *d, void (*cb)(void *arg), void *arg);
int daemon_run(struct daemon *d);
/* As a signal would: runs the stop callback and makes the loop exit (for tests and for a
 * daemon that decides to stop by itself). */
void daemon_stop(struct daemon *d);
void daemon_free(struct daemon *d);

/* One TLS surface of a daemon. */
struct daemon_security {
    const char *surface; /* NULL for a daemon's only surface, else "MySQL clients", ... */
    bool tls;
    bool mutual;         /* peers must present a certificate signed by the CA */
    const char *ca_path, *cert_path;
    const char *cn_key;  /* the allow-list's config key: "cert-allowed-cn" ("cluster-verify-cn"
                          * in TiDB); NULL when the surface has no CN check at all */
    char *const *allowed_cn;
    size_t n_allowed_cn;
};
/* Writes the line (without a newline) into buf; returns what snprintf would (>= len: cut). */
int daemon_security_line(char *buf, size_t len, const struct daemon_security *s);
void daemon_log_security(const struct daemon_security *s);

#endif
