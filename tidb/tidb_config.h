/* tidb_config.h — tidb-server's configuration: real TiDB's flags and TOML keys.
 *
 * Contract:
 * - tidb_config_load(argc, argv) applies defaults (--store tikv, --host 127.0.0.1, -P 4000,
 *   --status 10080, --status-host 127.0.0.1, log level info), then the --config file (if
 *   any), then the command-line flags, which win. Flags, as real TiDB names them: --store,
 *   --path, -P (MySQL port), --status (status port), --host, --status-host, --config,
 *   --log-file, -L / --log-level, in every form common/flags.h takes ("-P 4000", "-P=4000",
 *   "--status=10080").
 * - Defaults that differ from real TiDB, on purpose: --host and --status-host are 127.0.0.1
 *   (real TiDB: 0.0.0.0), because root has an empty password at first start and PD and TiKV
 *   here also listen on loopback unless told; "--host 0.0.0.0" gives real TiDB's behaviour.
 *   --store defaults to tikv (real TiDB: unistore), the only store there is.
 * - TOML keys (as real TiDB names them): top level store, path (PD endpoints), host, port;
 *   [status] status-host, status-port; [log] level, [log.file] filename; and [security]:
 *   cluster-ssl-ca, cluster-ssl-cert, cluster-ssl-key, cluster-verify-cn (a list: one line
 *   or the guide's multi-line form), ssl-ca, ssl-cert, ssl-key, require-secure-transport
 *   (bool). TiDB's TLS guide's snippets load verbatim. Unknown keys are warnings.
 * - --path takes comma-separated PD endpoints, each "host:port", "http://host:port" or
 *   "https://host:port" (as tikv-server's --pd): a scheme-less one means https when cluster
 *   TLS is on, http when it is off; http:// with cluster TLS on, or https:// with it off, is
 *   an error.
 * - tidb_config_validate() enforces the rules, each error one line naming the key or flag:
 *   --store is tikv ("unistore" and "mocktikv", real TiDB's embedded stores, are refused);
 *   --path is set; cluster TLS is on when cluster-ssl-ca, -cert and -key are all set (some
 *   but not all names the missing key); cluster-verify-cn needs cluster TLS (a list that
 *   would check nothing is refused rather than ignored); client TLS is on when ssl-cert and
 *   ssl-key are both set (one alone names the other; ssl-ca alone is an error: it only
 *   turns on verification of client certs); require-secure-transport needs client TLS
 *   (real TiDB refuses to start that way, with MySQL error 3159 "Connections using insecure
 *   transport are prohibited while --require_secure_transport=ON."); every TLS file set
 *   must be a readable regular file (the error names the key and the path); ports are 1 to
 *   65535 and differ; hosts are IP literals or names (no scheme, no port); --log-level is
 *   debug, info, warn(ing) or error.
 * - Errors: -1 with one line in err. --help/--version return 1 after printing, so main exits 0.
 */
#ifndef TISIM_TIDB_CONFIG_H
#define TISIM_TIDB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "log.h"
#include "url.h"

#define TIDB_DEFAULT_HOST "127.0.0.1"
#define TIDB_DEFAULT_PORT 4000
#define TIDB_DEFAULT_STATUS_PORT 10080
#define TIDB_MAX_PD_ENDPOINTS 16

struct tidb_config {
    char *config_file;
    char *store;
    char *path;          /* PD endpoints, comma-separated */
    char *host;
    long long port;
    char *status_host;
    long long status_port;
    char *log_file;
    char *log_level;
    struct {
        char *cluster_ssl_ca;
        char *cluster_ssl_cert;
        char *cluster_ssl_key;
        struct cfg_list cluster_verify_cn;
        char *ssl_ca;
        char *ssl_cert;
        char *ssl_key;
        bool require_secure_transport;
    } security;

    /* Derived by tidb_config_validate. */
    bool cluster_tls;   /* cluster-ssl-ca/-cert/-key: dial PD/TiKV, serve the status port */
    bool client_tls;    /* ssl-cert/-key: the MySQL port offers TLS */
    bool client_verify; /* ssl-ca: client certificates are verified when presented */
    enum log_level level;
    struct url pd_urls[TIDB_MAX_PD_ENDPOINTS]; /* scheme always "http" or "https" */
    size_t n_pd;
};

/* 0: go on; 1: --help or --version was printed; -1: error in err. */
int tidb_config_load(struct tidb_config *c, int argc, char **argv, char *err, size_t errlen);
int tidb_config_validate(struct tidb_config *c, char *err, size_t errlen);
void tidb_config_free(struct tidb_config *c);

#endif
