/* tikv_config.h — tikv-server's configuration: real TiKV's flags and TOML keys.
 *
 * Contract:
 * - tikv_config_load(argc, argv) applies defaults (--addr 127.0.0.1:20160, --status-addr
 *   127.0.0.1:20180, log level info), then the --config file (if any), then the command-line
 *   flags, which win. Flags: --pd, --addr, --status-addr, --data-dir, --config, --log-file,
 *   --log-level (-L), in every form common/flags.h takes ("--addr=x", "--addr x", "-addr x").
 * - TOML keys (as real TiKV names them): [pd] endpoints (list), [server] addr / status-addr,
 *   [storage] data-dir, log-level / log-file (top level, TiKV 4.x) and [log] level /
 *   [log.file] filename, and the [security] of TiDB's TLS guide: ca-path, cert-path, key-path,
 *   cert-allowed-cn (list), cipher-file. The guide's TiKV snippet loads verbatim. Unknown
 *   keys are warnings (common/config.h).
 * - --pd takes comma-separated endpoints, each "host:port", "http://host:port" or
 *   "https://host:port"; it replaces [pd] endpoints.
 * - tikv_config_validate() enforces the rules, each error one line naming the key:
 *   TLS is on when [security] ca-path, cert-path and key-path are all set; a partial set names
 *   the missing key. With TLS on every PD endpoint must be https (a scheme-less one means
 *   https), with TLS off an https endpoint is an error (a scheme-less one means http).
 *   --addr and --status-addr are host:port with a port from 1 to 65535 (no scheme, no path).
 *   --pd and --data-dir are required. --log-level is debug, info, warn(ing) or error.
 * - cipher-file is kept as a path only: loading and checking its contents is
 *   common/cipherfile's job, at start-up.
 * - Errors: -1 with one line in err. --help/--version return 1 after printing, so main exits 0.
 */
#ifndef TISIM_TIKV_CONFIG_H
#define TISIM_TIKV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "log.h"
#include "url.h"

#define TIKV_DEFAULT_ADDR "127.0.0.1:20160"
#define TIKV_DEFAULT_STATUS_ADDR "127.0.0.1:20180"
/* More PD endpoints than PD members can exist (PD_MAX_MEMBERS is 15) make no sense. */
#define TIKV_MAX_PD_ENDPOINTS 16

struct tikv_config {
    char *config_file;
    struct cfg_list pd_endpoints;
    char *addr;
    char *status_addr;
    char *data_dir;
    char *log_file;
    char *log_level;
    struct {
        char *ca_path;
        char *cert_path;
        char *key_path;
        struct cfg_list cert_allowed_cn;
        char *cipher_file;
    } security;

    /* Derived by tikv_config_validate. */
    bool tls;
    enum log_level level;
    struct url pd_urls[TIKV_MAX_PD_ENDPOINTS]; /* scheme always "http" or "https" */
    size_t n_pd;
    struct url addr_url, status_url;           /* scheme "", path "" */
};

/* 0: go on; 1: --help or --version was printed; -1: error in err. */
int tikv_config_load(struct tikv_config *c, int argc, char **argv, char *err, size_t errlen);
int tikv_config_validate(struct tikv_config *c, char *err, size_t errlen);
void tikv_config_free(struct tikv_config *c);

#endif
