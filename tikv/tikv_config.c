#include "tikv_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"

#define TK_OFF(field) offsetof(struct tikv_config, field)

static const struct cfg_key tikv_keys[] = {
    {"pd", "endpoints", CFG_STRING_LIST, TK_OFF(pd_endpoints)},
    {"server", "addr", CFG_STRING, TK_OFF(addr)},
    {"server", "status-addr", CFG_STRING, TK_OFF(status_addr)},
    {"storage", "data-dir", CFG_STRING, TK_OFF(data_dir)},
    {"", "log-level", CFG_STRING, TK_OFF(log_level)},
    {"", "log-file", CFG_STRING, TK_OFF(log_file)},
    {"log", "level", CFG_STRING, TK_OFF(log_level)},
    {"log.file", "filename", CFG_STRING, TK_OFF(log_file)},
    {"security", "ca-path", CFG_STRING, TK_OFF(security.ca_path)},
    {"security", "cert-path", CFG_STRING, TK_OFF(security.cert_path)},
    {"security", "key-path", CFG_STRING, TK_OFF(security.key_path)},
    {"security", "cert-allowed-cn", CFG_STRING_LIST, TK_OFF(security.cert_allowed_cn)},
    {"security", "cipher-file", CFG_STRING, TK_OFF(security.cipher_file)},
};
#define N_TIKV_KEYS (sizeof tikv_keys / sizeof tikv_keys[0])

struct tikv_flags {
    const char *config, *pd, *addr, *status_addr, *data_dir, *log_file, *log_level;
    bool help, version;
};

static void usage(const struct flag *table, size_t n)
{
    printf("Usage: tikv-server [flags]\n\n"
           "tisim's TiKV: an encrypted, durable key-value store over mutual TLS (one store; replication is not built yet).\n\n");
    flags_usage(stdout, table, n);
    printf("\nTLS is on when [security] ca-path, cert-path and key-path are all set; then every\n"
           "--pd endpoint must be https (host:port alone means https) and callers must present\n"
           "a certificate signed by the CA whose Common Name is in cert-allowed-cn (when that\n"
           "list is not empty). [security] cipher-file turns on encryption at rest.\n");
}

static int apply_flags(struct tikv_config *c, const struct tikv_flags *f)
{
    int rc = 0;
    rc |= cfg_override(&c->addr, f->addr);
    rc |= cfg_override(&c->status_addr, f->status_addr);
    rc |= cfg_override(&c->data_dir, f->data_dir);
    rc |= cfg_override(&c->log_file, f->log_file);
    rc |= cfg_override(&c->log_level, f->log_level);
    if (f->pd)
        rc |= cfg_list_set_csv(&c->pd_endpoints, f->pd);
    return rc ? -1 : 0;
}

static int set_defaults(struct tikv_config *c)
{
    if (cfg_set_string(&c->addr, TIKV_DEFAULT_ADDR) != 0 ||
        cfg_set_string(&c->status_addr, TIKV_DEFAULT_STATUS_ADDR) != 0 ||
        cfg_set_string(&c->log_level, "info") != 0)
        return -1;
    return 0;
}

int tikv_config_load(struct tikv_config *c, int argc, char **argv, char *err, size_t errlen)
{
    struct tikv_flags f = {0};
    const struct flag table[] = {
        {"config", 'C', false, &f.config, NULL, "TOML config file (flags override it)"},
        {"pd", 0, false, &f.pd, NULL,
         "PD endpoints, comma-separated: host:port or https://host:port ([pd] endpoints)"},
        {"addr", 'A', false, &f.addr, NULL, "KV service address (default " TIKV_DEFAULT_ADDR ")"},
        {"status-addr", 0, false, &f.status_addr, NULL,
         "HTTPS status address (default " TIKV_DEFAULT_STATUS_ADDR ")"},
        {"data-dir", 's', false, &f.data_dir, NULL, "where data lives (required)"},
        {"log-file", 'f', false, &f.log_file, NULL, "log file (default stderr)"},
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
            printf("tikv-server (tisim) 0.1.0\n");
        return 1;
    }
    if (set_defaults(c) != 0)
        goto oom;
    if (f.config) {
        if (cfg_set_string(&c->config_file, f.config) != 0)
            goto oom;
        if (cfg_load(f.config, tikv_keys, N_TIKV_KEYS, c, err, errlen) != 0)
            return -1;
    }
    if (apply_flags(c, &f) != 0)
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static bool empty(const char *s)
{
    return !s || !*s;
}

static int check_security(struct tikv_config *c, char *err, size_t errlen)
{
    const char *const names[] = {"ca-path", "cert-path", "key-path"};
    const char *const values[] = {c->security.ca_path, c->security.cert_path, c->security.key_path};
    return cfg_security_paths(names, values, &c->tls, err, errlen);
}

/* One PD endpoint: a scheme-less one takes the scheme TLS implies. */
static int parse_pd_endpoint(const char *text, bool tls, struct url *u, char *err,
                             size_t errlen)
{
    char why[400];
    if (url_parse(text, false, u, why, sizeof why) != 0) {
        snprintf(err, errlen, "--pd: %s", why);
        return -1;
    }
    if (u->path[0] && strcmp(u->path, "/") != 0) {
        snprintf(err, errlen, "--pd %s: a PD endpoint has no path", text);
        return -1;
    }
    if (!u->scheme[0])
        snprintf(u->scheme, sizeof u->scheme, "%s", tls ? "https" : "http");
    if (tls && !url_is_https(u)) {
        snprintf(err, errlen,
                 "--pd %s: TLS is on ([security] ca-path is set), use https:// or host:port",
                 text);
        return -1;
    }
    if (!tls && url_is_https(u)) {
        snprintf(err, errlen,
                 "--pd %s: https needs TLS, set [security] ca-path, cert-path and key-path",
                 text);
        return -1;
    }
    return 0;
}

static int check_pd(struct tikv_config *c, char *err, size_t errlen)
{
    if (c->pd_endpoints.n == 0) {
        snprintf(err, errlen, "--pd is not set: give the PD endpoints ([pd] endpoints)");
        return -1;
    }
    if (c->pd_endpoints.n > TIKV_MAX_PD_ENDPOINTS) {
        snprintf(err, errlen, "--pd lists %zu endpoints; at most %d are supported",
                 c->pd_endpoints.n, TIKV_MAX_PD_ENDPOINTS);
        return -1;
    }
    for (size_t i = 0; i < c->pd_endpoints.n; i++)
        if (parse_pd_endpoint(c->pd_endpoints.items[i], c->tls, &c->pd_urls[i], err, errlen))
            return -1;
    c->n_pd = c->pd_endpoints.n;
    return 0;
}

/* "host:port", nothing more. */
static int parse_addr(const char *flag, const char *text, struct url *u, char *err,
                      size_t errlen)
{
    char why[400];
    if (empty(text)) {
        snprintf(err, errlen, "--%s is empty: give host:port", flag);
        return -1;
    }
    if (url_parse(text, false, u, why, sizeof why) != 0) {
        snprintf(err, errlen, "--%s: %s", flag, why);
        return -1;
    }
    if (u->scheme[0] || u->path[0]) {
        snprintf(err, errlen, "--%s %s: give host:port, without a scheme or a path", flag, text);
        return -1;
    }
    return 0;
}

int tikv_config_validate(struct tikv_config *c, char *err, size_t errlen)
{
    if (check_security(c, err, errlen) != 0 || check_pd(c, err, errlen) != 0 ||
        parse_addr("addr", c->addr, &c->addr_url, err, errlen) != 0 ||
        parse_addr("status-addr", c->status_addr, &c->status_url, err, errlen) != 0)
        return -1;
    if (empty(c->data_dir)) {
        snprintf(err, errlen, "--data-dir is not set ([storage] data-dir): it is required");
        return -1;
    }
    if (log_level_parse(c->log_level ? c->log_level : "", &c->level) != 0) {
        snprintf(err, errlen, "--log-level '%s': use debug, info, warn or error",
                 c->log_level ? c->log_level : "");
        return -1;
    }
    return 0;
}

void tikv_config_free(struct tikv_config *c)
{
    cfg_free(tikv_keys, N_TIKV_KEYS, c);
    free(c->config_file);
    memset(c, 0, sizeof *c);
}
