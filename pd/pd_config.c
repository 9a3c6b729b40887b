#include "pd_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"

#define PD_OFF(field) offsetof(struct pd_config, field)

static const struct cfg_key pd_keys[] = {
    {"", "name", CFG_STRING, PD_OFF(name)},
    {"", "data-dir", CFG_STRING, PD_OFF(data_dir)},
    {"", "client-urls", CFG_STRING, PD_OFF(client_urls)},
    {"", "peer-urls", CFG_STRING, PD_OFF(peer_urls)},
    {"", "advertise-client-urls", CFG_STRING, PD_OFF(advertise_client_urls)},
    {"", "advertise-peer-urls", CFG_STRING, PD_OFF(advertise_peer_urls)},
    {"", "initial-cluster", CFG_STRING, PD_OFF(initial_cluster)},
    {"log", "level", CFG_STRING, PD_OFF(log_level)},
    {"log.file", "filename", CFG_STRING, PD_OFF(log_file)},
    {"replication", "max-replicas", CFG_INT, PD_OFF(max_replicas)},
    {"security", "cacert-path", CFG_STRING, PD_OFF(security.cacert_path)},
    {"security", "cert-path", CFG_STRING, PD_OFF(security.cert_path)},
    {"security", "key-path", CFG_STRING, PD_OFF(security.key_path)},
    {"security", "cert-allowed-cn", CFG_STRING_LIST, PD_OFF(security.cert_allowed_cn)},
};
#define N_PD_KEYS (sizeof pd_keys / sizeof pd_keys[0])

struct pd_flags {
    const char *config, *name, *data_dir, *client_urls, *peer_urls, *adv_client, *adv_peer,
        *initial_cluster, *log_file, *log_level, *cacert, *cert, *key, *allowed_cn;
    bool help, version;
};

static void usage(const struct flag *table, size_t n)
{
    printf("Usage: pd-server [flags]\n\n"
           "tisim's Placement Driver: cluster metadata, TSO and store registry over HTTPS.\n\n");
    flags_usage(stdout, table, n);
    printf("\nTLS is on when [security] cacert-path, cert-path and key-path are all set; then\n"
           "every URL must be https:// and peers must present a certificate signed by the CA\n"
           "whose Common Name is in cert-allowed-cn (when that list is not empty).\n");
}

static int apply_flags(struct pd_config *c, const struct pd_flags *f)
{
    int rc = 0;
    rc |= cfg_override(&c->name, f->name);
    rc |= cfg_override(&c->data_dir, f->data_dir);
    rc |= cfg_override(&c->client_urls, f->client_urls);
    rc |= cfg_override(&c->peer_urls, f->peer_urls);
    rc |= cfg_override(&c->advertise_client_urls, f->adv_client);
    rc |= cfg_override(&c->advertise_peer_urls, f->adv_peer);
    rc |= cfg_override(&c->initial_cluster, f->initial_cluster);
    rc |= cfg_override(&c->log_file, f->log_file);
    rc |= cfg_override(&c->log_level, f->log_level);
    rc |= cfg_override(&c->security.cacert_path, f->cacert);
    rc |= cfg_override(&c->security.cert_path, f->cert);
    rc |= cfg_override(&c->security.key_path, f->key);
    if (f->allowed_cn)
        rc |= cfg_list_set_csv(&c->security.cert_allowed_cn, f->allowed_cn);
    return rc ? -1 : 0;
}

int pd_config_load(struct pd_config *c, int argc, char **argv, char *err, size_t errlen)
{
    struct pd_flags f = {0};
    const struct flag table[] = {
        {"config", 0, false, &f.config, NULL, "TOML config file (flags override it)"},
        {"name", 0, false, &f.name, NULL, "this member's name (default \"pd\")"},
        {"data-dir", 0, false, &f.data_dir, NULL, "where state lives (default \"default.NAME\")"},
        {"client-urls", 0, false, &f.client_urls, NULL, "URL for clients (default http://127.0.0.1:2379)"},
        {"peer-urls", 0, false, &f.peer_urls, NULL, "URL for other PD members (default http://127.0.0.1:2380)"},
        {"advertise-client-urls", 0, false, &f.adv_client, NULL, "client URL told to others"},
        {"advertise-peer-urls", 0, false, &f.adv_peer, NULL, "peer URL told to others"},
        {"initial-cluster", 0, false, &f.initial_cluster, NULL, "name=peer-url,... of all members"},
        {"log-file", 0, false, &f.log_file, NULL, "log file (default stderr)"},
        {"log-level", 'L', false, &f.log_level, NULL, "debug, info, warn, error"},
        {"cacert", 0, false, &f.cacert, NULL, "CA file ([security] cacert-path)"},
        {"cert", 0, false, &f.cert, NULL, "certificate file ([security] cert-path)"},
        {"key", 0, false, &f.key, NULL, "private key file ([security] key-path)"},
        {"cert-allowed-cn", 0, false, &f.allowed_cn, NULL, "comma-separated CN allow-list"},
        {"help", 'h', true, NULL, &f.help, "show this help"},
        {"version", 'V', true, NULL, &f.version, "print version"},
    };
    const size_t n = sizeof table / sizeof table[0];
    memset(c, 0, sizeof *c);
    c->max_replicas = 3;
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
            printf("pd-server (tisim) 0.1.0\n");
        return 1;
    }
    if (cfg_set_string(&c->name, "pd") != 0 ||
        cfg_set_string(&c->client_urls, "http://127.0.0.1:2379") != 0 ||
        cfg_set_string(&c->peer_urls, "http://127.0.0.1:2380") != 0 ||
        cfg_set_string(&c->log_level, "info") != 0)
        goto oom;
    if (f.config) {
        if (cfg_set_string(&c->config_file, f.config) != 0)
            goto oom;
        if (cfg_load(f.config, pd_keys, N_PD_KEYS, c, err, errlen) != 0)
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

static int check_security(struct pd_config *c, char *err, size_t errlen)
{
    const char *const names[] = {"cacert-path", "cert-path", "key-path"};
    const char *const values[] = {c->security.cacert_path, c->security.cert_path, c->security.key_path};
    return cfg_security_paths(names, values, &c->tls, err, errlen);
}

static int parse_one_url(const char *flag, const char *value, bool tls, struct url *u,
                         char *err, size_t errlen)
{
    char why[300];
    if (strchr(value, ',')) {
        snprintf(err, errlen, "--%s %s: only one URL is supported", flag, value);
        return -1;
    }
    if (url_parse(value, true, u, why, sizeof why) != 0) {
        snprintf(err, errlen, "--%s: %s", flag, why);
        return -1;
    }
    if (tls && !url_is_https(u)) {
        snprintf(err, errlen,
                 "--%s %s: TLS is on ([security] cacert-path is set), use an https:// URL", flag,
                 value);
        return -1;
    }
    if (!tls && url_is_https(u)) {
        snprintf(err, errlen,
                 "--%s %s: https needs TLS, set [security] cacert-path, cert-path and key-path",
                 flag, value);
        return -1;
    }
    return 0;
}

static int add_member(struct pd_config *c, const char *name, size_t name_len, const char *url,
                      char *err, size_t errlen)
{
    struct pd_member_conf *m = realloc(c->members, (c->n_members + 1) * sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->members = m;
    m = &c->members[c->n_members];
    memset(m, 0, sizeof *m);
    if (!(m->name = strndup(name, name_len))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->n_members++;
    for (size_t i = 0; i + 1 < c->n_members; i++) {
        if (strcmp(c->members[i].name, m->name) == 0) {
            snprintf(err, errlen, "--initial-cluster: member '%s' is listed twice", m->name);
            return -1;
        }
    }
    return parse_one_url("initial-cluster", url, c->tls, &m->peer, err, errlen);
}

/* "pd1=https://127.0.0.1:2380,pd2=https://127.0.0.1:2382" */
static int parse_initial_cluster(struct pd_config *c, const char *text, char *err, size_t errlen)
{
    char *copy = strdup(text), *save = NULL;
    int rc = copy ? 0 : -1;
    for (char *item = copy ? strtok_r(copy, ",", &save) : NULL; item && rc == 0;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq || eq == item) {
            snprintf(err, errlen, "--initial-cluster: '%s' is not name=peer-url", item);
            rc = -1;
            break;
        }
        rc = add_member(c, item, (size_t)(eq - item), eq + 1, err, errlen);
    }
    free(copy);
    if (rc == 0 && c->n_members == 0) {
        snprintf(err, errlen, "--initial-cluster is empty");
        rc = -1;
    }
    if (rc == 0 && c->n_members > PD_MAX_MEMBERS) {
        snprintf(err, errlen, "--initial-cluster lists %zu members; at most %d are supported",
                 c->n_members, PD_MAX_MEMBERS);
        rc = -1;
    }
    return rc;
}

static int find_self(struct pd_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->n_members; i++) {
        if (strcmp(c->members[i].name, c->name) == 0) {
            c->self = i;
            return 0;
        }
    }
    snprintf(err, errlen, "--initial-cluster does not list this member's --name '%s'", c->name);
    return -1;
}

int pd_config_validate(struct pd_config *c, char *err, size_t errlen)
{
    if (check_security(c, err, errlen) != 0)
        return -1;
    if (parse_one_url("client-urls", c->client_urls, c->tls, &c->client_url, err, errlen) != 0 ||
        parse_one_url("peer-urls", c->peer_urls, c->tls, &c->peer_url, err, errlen) != 0)
        return -1;
    const char *adv_client = empty(c->advertise_client_urls) ? c->client_urls
                                                             : c->advertise_client_urls;
    const char *adv_peer = empty(c->advertise_peer_urls) ? c->peer_urls : c->advertise_peer_urls;
    if (parse_one_url("advertise-client-urls", adv_client, c->tls, &c->advertise_client_url, err,
                      errlen) != 0 ||
        parse_one_url("advertise-peer-urls", adv_peer, c->tls, &c->advertise_peer_url, err,
                      errlen) != 0)
        return -1;
    if (empty(c->data_dir)) {
        char dir[300];
        snprintf(dir, sizeof dir, "default.%s", c->name);
        if (cfg_set_string(&c->data_dir, dir) != 0)
            return -1;
    }
    if (empty(c->initial_cluster)) {
        char ic[600];
        snprintf(ic, sizeof ic, "%s=%s", c->name, adv_peer);
        if (cfg_set_string(&c->initial_cluster, ic) != 0)
            return -1;
    }
    if (parse_initial_cluster(c, c->initial_cluster, err, errlen) != 0)
        return -1;
    if (c->max_replicas < 1) {
        snprintf(err, errlen, "[replication] max-replicas must be at least 1");
        return -1;
    }
    return find_self(c, err, errlen);
}

void pd_config_free(struct pd_config *c)
{
    cfg_free(pd_keys, N_PD_KEYS, c);
    free(c->config_file);
    for (size_t i = 0; i < c->n_members; i++)
        free(c->members[i].name);
    free(c->members);
    memset(c, 0, sizeof *c);
}
