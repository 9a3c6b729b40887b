/* pd_config.h — pd-server's configuration: real PD's flags and TOML keys.
 *
 * Contract:
 * - pd_config_load(argc, argv) applies defaults, then the --config file (if any), then the
 *   command-line flags, which win. Flags take "--flag value", "--flag=value" and the Go-style
 *   single-dash forms real PD accepts.
 * - pd_config_validate() enforces the security rules: [security] cacert-path,
 *   cert-path and key-path are all set (TLS on) or all empty (TLS off); a partial set names the
 *   missing key; with TLS on every URL must be https://, with TLS off http://.
 * - Errors: -1 with one line in err ("--client-urls: bad URL 'x': ..."). --help/--version
 *   return 1 after printing, so main exits 0.
 */
#ifndef TISIM_PD_CONFIG_H
#define TISIM_PD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "url.h"

/* More members only slow elections down; real PD clusters run 3 or 5. */
#define PD_MAX_MEMBERS 15

struct pd_member_conf {
    char *name;
    struct url peer;
};

struct pd_config {
    char *config_file;
    char *name;
    char *data_dir;
    char *client_urls;
    char *peer_urls;
    char *advertise_client_urls;
    char *advertise_peer_urls;
    char *initial_cluster;
    char *log_file;
    char *log_level;
    long long max_replicas;
    struct {
        char *cacert_path;
        char *cert_path;
        char *key_path;
        struct cfg_list cert_allowed_cn;
    } security;

    /* Derived by pd_config_validate. */
    bool tls;
    struct url client_url, peer_url, advertise_client_url, advertise_peer_url;
    struct pd_member_conf *members; /* from initial-cluster, in the order given */
    size_t n_members;
    size_t self;                    /* index of this member in members */
};

/* 0: go on; 1: --help or --version was printed; -1: error in err. */
int pd_config_load(struct pd_config *c, int argc, char **argv, char *err, size_t errlen);
int pd_config_validate(struct pd_config *c, char *err, size_t errlen);
void pd_config_free(struct pd_config *c);

#endif
