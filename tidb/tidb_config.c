/* tidb_config.c — tidb-server's configuration. See tidb_config.h. */
#include "tidb_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flags.h"

#define TD_OFF(field) offsetof(struct tidb_config, field)

static const struct cfg_key tidb_keys[] = {
    {"", "store", CFG_STRING, TD_OFF(store)},
    {"", "path", CFG_STRING, TD_OFF(path)},
    {"", "host", CFG_STRING, TD_OFF(host)},
    {"", "port", CFG_INT, TD_OFF(port)},
    {"status", "status-host", CFG_STRING, TD_OFF(status_host)},
    {"status", "status-port", CFG_INT, TD_OFF(status_port)},
    {"log", "level", CFG_STRING, TD_OFF(log_level)},
    {"log.file", "filename", CFG_STRING, TD_OFF(log_file)},
    {"security", "cluster-ssl-ca", CFG_STRING, TD_OFF(security.cluster_ssl_ca)},
    {"security", "cluster-ssl-cert", CFG_STRING, TD_OFF(security.cluster_ssl_cert)},
    {"security", "cluster-ssl-key", CFG_STRING, TD_OFF(security.cluster_ssl_key)},
    {"security", "cluster-verify-cn", CFG_STRING_LIST, TD_OFF(security.cluster_verify_cn)},
    {"security", "ssl-ca", CFG_STRING, TD_OFF(security.ssl_ca)},
    {"security", "ssl-cert", CFG_STRING, TD_OFF(security.ssl_cert)},
    {"security", "ssl-key", CFG_STRING, TD_OFF(security.ssl_key)},
    {"security", "require-secure-transport", CFG_BOOL, TD_OFF(security.require_secure_transport)},
};
#define N_TIDB_KEYS (sizeof tidb_keys / sizeof tidb_keys[0])

struct tidb_flags {
    const char *config, *store, *path, *port, *status, *host, *status_host, *log_file,
        *log_level;
    bool help, version;
};

static bool empty(const char *s)
{
    return !s || !*s;
}

static void usage(const struct flag *table, size_t n)
{
    printf("Usage: tidb-server [flags]\n\n"
           "tisim's TiDB: a MySQL-protocol server storing its rows in TiKV over mutual TLS.\n\n");
    flags_usage(stdout, table, n);
    printf("\nCluster TLS is on when [security] cluster-ssl-ca, cluster-ssl-cert and\n"
           "cluster-ssl-key are all set: TiDB then dials PD and TiKV with that certificate\n"
           "(--path host:port means https) and serves the status port over HTTPS, asking\n"
           "callers for a certificate only when cluster-verify-cn is not empty. MySQL clients\n"
           "get TLS when ssl-cert and ssl-key are set (ssl-ca verifies client certificates);\n"
           "require-secure-transport = true refuses plaintext logins.\n");
}

/* "-P 4000": a port from 1 to 65535, into *out. */
static int parse_port_flag(const char *flag, const char *text, long long *out, char *err,
                           size_t errlen)
{
    char *end = NULL;
    errno = 0;
    long v = text ? strtol(text, &end, 10) : 0;
    if (empty(text) || *end || errno || v < 1 || v > 65535) {
        snprintf(err, errlen, "%s '%s': give a port number from 1 to 65535", flag,
                 text ? text : "");
        return -1;
    }
    *out = v;
    return 0;
}

static int apply_flags(struct tidb_config *c, const struct tidb_flags *f, char *err,
                       size_t errlen)
{
    int rc = 0;
    rc |= cfg_override(&c->store, f->store);
    rc |= cfg_override(&c->path, f->path);
    rc |= cfg_override(&c->host, f->host);
    rc |= cfg_override(&c->status_host, f->status_host);
    rc |= cfg_override(&c->log_file, f->log_file);
    rc |= cfg_override(&c->log_level, f->log_level);
    if (rc) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (f->port && parse_port_flag("-P", f->port, &c->port, err, errlen) != 0)
        return -1;
    if (f->status && parse_port_flag("--status", f->status, &c->status_port, err, errlen) != 0)
        return -1;
    return 0;
}

static int set_defaults(struct tidb_config *c)
{
    c->port = TIDB_DEFAULT_PORT;
    c->status_port = TIDB_DEFAULT_STATUS_PORT;
    if (cfg_set_string(&c->store, "tikv") != 0 ||
        cfg_set_string(&c->host, TIDB_DEFAULT_HOST) != 0 ||
        cfg_set_string(&c->status_host, TIDB_DEFAULT_HOST) != 0 ||
        cfg_set_string(&c->log_level, "info") != 0)
        return -1;
    return 0;
}

int tidb_config_load(struct tidb_config *c, int argc, char **argv, char *err, size_t errlen)
{
    struct tidb_flags f = {0};
    const struct flag table[] = {
        {"config", 0, false, &f.config, NULL, "TOML config file (flags override it)"},
        {"store", 0, false, &f.store, NULL, "storage engine: tikv (the only one here)"},
        {"path", 0, false, &f.path, NULL,
         "PD endpoints, comma-separated: host:port or https://host:port"},
        {"P", 0, false, &f.port, NULL, "MySQL port (default 4000)"},
        {"status", 0, false, &f.status, NULL, "HTTP(S) status port (default 10080)"},
        {"host", 0, false, &f.host, NULL, "MySQL listening address (default " TIDB_DEFAULT_HOST
                                          "; real TiDB: 0.0.0.0)"},
        {"status-host", 0, false, &f.status_host, NULL,
         "status listening address (default " TIDB_DEFAULT_HOST ")"},
        {"log-file", 0, false, &f.log_file, NULL, "log file (default stderr)"},
        {"log-level", 'L', false, &f.log_level, NULL, "debug, info, warn, error"},
        {"help", 'h', true, NULL, &f.help, "show this help"},
        {"version", 'V', true, NULL, &f.version, "print version"},
    };
    const size_t n = sizeof table / sizeof table[0];
    memset(c, 0, sizeof *c);
    int pos = flags_parse(table, n, argc, argv, err, errlen);
    if (pos < 0)
        return -1;
    if (pos < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[pos]);
        return -1;
    }
    if (f.help || f.version) {
        if (f.help)
            usage(table, n);
        else
            printf("tidb-server (tisim) 0.1.0\n");
        return 1;
    }
    if (set_defaults(c) != 0 || (f.config && cfg_set_string(&c->config_file, f.config) != 0)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (f.config && cfg_load(f.config, tidb_keys, N_TIDB_KEYS, c, err, errlen) != 0)
        return -1;
    return apply_flags(c, &f, err, errlen);
}

/* ------------------------------------------------------------------------------------------ */
/* Validation                                                                                  */

static int check_store(const struct tidb_config *c, char *err, size_t errlen)
{
    const char *s = c->store ? c->store : "";
    if (strcmp(s, "tikv") == 0)
        return 0;
    if (strcmp(s, "unistore") == 0 || strcmp(s, "mocktikv") == 0)
        snprintf(err, errlen,
                 "--store %s: tisim has no embedded store; use --store tikv with --path "
                 "naming the PD endpoints",
                 s);
    else
        snprintf(err, errlen, "--store '%s': unknown store, use tikv", s);
    return -1;
}

static int check_cluster_tls(struct tidb_config *c, char *err, size_t errlen)
{
    const char *const names[] = {"cluster-ssl-ca", "cluster-ssl-cert", "cluster-ssl-key"};
    const char *const values[] = {c->security.cluster_ssl_ca, c->security.cluster_ssl_cert,
                                  c->security.cluster_ssl_key};
    if (cfg_security_paths(names, values, &c->cluster_tls, err, errlen) != 0)
        return -1;
    if (!c->cluster_tls && c->security.cluster_verify_cn.n > 0) {
        snprintf(err, errlen,
                 "[security] cluster-verify-cn is set but cluster TLS is off: set "
                 "cluster-ssl-ca, cluster-ssl-cert and cluster-ssl-key, or the list checks "
                 "nothing");
        return -1;
    }
    return 0;
}

static int check_client_tls(struct tidb_config *c, char *err, size_t errlen)
{
    bool cert = !empty(c->security.ssl_cert), key = !empty(c->security.ssl_key);
    if (cert != key) {
        snprintf(err, errlen,
                 "[security] %s is not set: ssl-cert and ssl-key must be set together to turn "
                 "client TLS on",
                 cert ? "ssl-key" : "ssl-cert");
        return -1;
    }
    c->client_tls = cert && key;
    c->client_verify = !empty(c->security.ssl_ca);
    if (c->client_verify && !c->client_tls) {
        snprintf(err, errlen,
                 "[security] ssl-ca is set without ssl-cert and ssl-key: ssl-ca only verifies "
                 "client certificates, set ssl-cert and ssl-key to turn client TLS on");
        return -1;
    }
    if (c->security.require_secure_transport && !c->client_tls) {
        snprintf(err, errlen,
                 "[security] require-secure-transport = true needs ssl-cert and ssl-key (real "
                 "TiDB refuses to start: \"Connections using insecure transport are prohibited "
                 "while --require_secure_transport=ON.\")");
        return -1;
    }
    return 0;
}

/* A TLS file named by [security] NAME must be a readable regular file. */
static int check_file(const char *name, const char *path, char *err, size_t errlen)
{
    if (empty(path))
        return 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "[security] %s %s: %s", name, path, strerror(errno));
        return -1;
    }
    int rc = fstat(fd, &st);
    close(fd);
    if (rc != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "[security] %s %s: not a regular file", name, path);
        return -1;
    }
    return 0;
}

static int check_files(const struct tidb_config *c, char *err, size_t errlen)
{
    const char *const names[] = {"cluster-ssl-ca", "cluster-ssl-cert", "cluster-ssl-key",
                                 "ssl-ca", "ssl-cert", "ssl-key"};
    const char *const paths[] = {c->security.cluster_ssl_ca, c->security.cluster_ssl_cert,
                                 c->security.cluster_ssl_key, c->security.ssl_ca,
                                 c->security.ssl_cert, c->security.ssl_key};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (check_file(names[i], paths[i], err, errlen) != 0)
            return -1;
    return 0;
}

/* One PD endpoint: a scheme-less one takes the scheme cluster TLS implies. */
static int parse_pd_endpoint(const char *text, bool tls, struct url *u, char *err,
                             size_t errlen)
{
    char why[400];
    if (url_parse(text, false, u, why, sizeof why) != 0) {
        snprintf(err, errlen, "--path: %s", why);
        return -1;
    }
    if (u->path[0] && strcmp(u->path, "/") != 0) {
        snprintf(err, errlen, "--path %s: a PD endpoint has no path", text);
        return -1;
    }
    if (!u->scheme[0])
        snprintf(u->scheme, sizeof u->scheme, "%s", tls ? "https" : "http");
    if (tls && !url_is_https(u)) {
        snprintf(err, errlen,
                 "--path %s: cluster TLS is on ([security] cluster-ssl-ca is set), use "
                 "https:// or host:port",
                 text);
        return -1;
    }
    if (!tls && url_is_https(u)) {
        snprintf(err, errlen,
                 "--path %s: https needs cluster TLS, set [security] cluster-ssl-ca, "
                 "cluster-ssl-cert and cluster-ssl-key",
                 text);
        return -1;
    }
    return 0;
}

static int check_path(struct tidb_config *c, char *err, size_t errlen)
{
    struct cfg_list eps = {0};
    int rc = -1;
    if (cfg_list_set_csv(&eps, c->path ? c->path : "") != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (eps.n == 0)
        snprintf(err, errlen,
                 "--path is not set: give the PD endpoints (host:port, comma-separated)");
    else if (eps.n > TIDB_MAX_PD_ENDPOINTS)
        snprintf(err, errlen, "--path lists %zu endpoints; at most %d are supported", eps.n,
                 TIDB_MAX_PD_ENDPOINTS);
    else
        rc = 0;
    for (size_t i = 0; rc == 0 && i < eps.n; i++)
        rc = parse_pd_endpoint(eps.items[i], c->cluster_tls, &c->pd_urls[i], err, errlen);
    c->n_pd = rc == 0 ? eps.n : 0;
    cfg_list_free(&eps);
    return rc;
}

/* A listening address: an IP literal or a name, without scheme or port. */
static int check_host(const char *flag, const char *host, char *err, size_t errlen)
{
    if (empty(host)) {
        snprintf(err, errlen, "%s is empty: give an address to listen on (e.g. 127.0.0.1)",
                 flag);
        return -1;
    }
    char text[300], why[400];
    struct url u;
    bool v6 = strchr(host, ':') != NULL && host[0] != '[';
    int w = snprintf(text, sizeof text, v6 ? "[%s]:1" : "%s:1", host);
    if (w < 0 || (size_t)w >= sizeof text || url_parse(text, false, &u, why, sizeof why) != 0 ||
        u.scheme[0] || u.path[0]) {
        snprintf(err, errlen, "%s '%.256s': give an IP address or a host name, without a "
                              "scheme or a port", flag, host);
        return -1;
    }
    return 0;
}

static int check_port(const char *what, long long port, char *err, size_t errlen)
{
    if (port >= 1 && port <= 65535)
        return 0;
    snprintf(err, errlen, "%s %lld: give a port number from 1 to 65535", what, port);
    return -1;
}

static int check_listeners(const struct tidb_config *c, char *err, size_t errlen)
{
    if (check_host("--host", c->host, err, errlen) != 0 ||
        check_host("--status-host", c->status_host, err, errlen) != 0 ||
        check_port("-P (port)", c->port, err, errlen) != 0 ||
        check_port("--status ([status] status-port)", c->status_port, err, errlen) != 0)
        return -1;
    if (c->port == c->status_port) {
        snprintf(err, errlen, "-P and --status are both %lld: the MySQL and status ports differ",
                 c->port);
        return -1;
    }
    return 0;
}

int tidb_config_validate(struct tidb_config *c, char *err, size_t errlen)
{
    if (check_store(c, err, errlen) != 0 || check_cluster_tls(c, err, errlen) != 0 ||
        check_client_tls(c, err, errlen) != 0 || check_files(c, err, errlen) != 0 ||
        check_path(c, err, errlen) != 0 || check_listeners(c, err, errlen) != 0)
        return -1;
    if (log_level_parse(c->log_level ? c->log_level : "", &c->level) != 0) {
        snprintf(err, errlen, "--log-level '%s': use debug, info, warn or error",
                 c->log_level ? c->log_level : "");
        return -1;
    }
    return 0;
}

void tidb_config_free(struct tidb_config *c)
{
    cfg_free(tidb_keys, N_TIDB_KEYS, c);
    free(c->config_file);
    memset(c, 0, sizeof *c);
}
